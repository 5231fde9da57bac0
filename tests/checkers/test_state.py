"""keepalived's retry rules as tables: (time, probe result) -> (up?, change, next deadline)."""

from __future__ import annotations

import pytest

from pyvrrpd.checkers.state import (
    BOOTSTRAP,
    Change,
    Checker,
    RealServerHealth,
    Style,
    Timing,
    file_check_state,
)

UP, DOWN = Change(True, 0), Change(False, 0)


def down_after(retries: int) -> Change:
    return Change(False, retries)


# Each step: (now, ok, expected is_up afterwards, expected change, expected due)
CASES = {
    "tcp: first failure is enough, then retry+1 failures, recovery on the first success": (
        Style.TCP, Timing(delay_loop=5, delay_before_retry=1, retry=1, warmup=0), [
            (0.0, False, False, DOWN, 5.0),
            (5.0, False, False, None, 6.0),     # down, but TCP_CHECK still retries
            (6.0, False, False, None, 11.0),    # retries used up: back to delay_loop
            (11.0, True, True, UP, 16.0),
            (16.0, False, True, None, 17.0),    # first failure of an up checker: a retry
            (17.0, True, True, None, 22.0),     # success in between resets the count
            (22.0, False, True, None, 23.0),
            (23.0, False, False, down_after(1), 28.0),
        ]),
    "tcp retry 0: every failure counts": (
        Style.TCP, Timing(delay_loop=2, delay_before_retry=1, retry=0, warmup=0), [
            (0.0, True, True, None, 2.0),
            (2.0, False, False, DOWN, 4.0),
            (4.0, True, True, UP, 6.0),
        ]),
    "tcp retry 3: down after 4 failed attempts": (
        Style.TCP, Timing(delay_loop=10, delay_before_retry=2, retry=3, warmup=0), [
            (0.0, True, True, None, 10.0),
            (10.0, False, True, None, 12.0),
            (12.0, False, True, None, 14.0),
            (14.0, False, True, None, 16.0),
            (16.0, False, False, down_after(3), 26.0),
        ]),
    "alpha: starts down, up on the first success": (
        Style.TCP, Timing(delay_loop=5, delay_before_retry=1, retry=2, warmup=0, alpha=True), [
            (0.0, False, False, None, 5.0),
            (5.0, True, True, UP, 10.0),
            (10.0, False, True, None, 11.0),
        ]),
    "gated (UDP/PING/DNS): no retries while down": (
        Style.GATED, Timing(delay_loop=6, delay_before_retry=2, retry=2, warmup=0), [
            (0.0, True, True, None, 6.0),
            (6.0, False, True, None, 8.0),
            (8.0, False, True, None, 10.0),
            (10.0, False, False, down_after(2), 16.0),
            (16.0, False, False, None, 22.0),
            (22.0, True, True, UP, 28.0),
        ]),
    "gated: first failure is enough": (
        Style.GATED, Timing(delay_loop=6, delay_before_retry=2, retry=3, warmup=0), [
            (0.0, False, False, DOWN, 6.0),
        ]),
    "smtp: even the first round uses its retries": (
        Style.SMTP, Timing(delay_loop=5, delay_before_retry=1, retry=1, warmup=0), [
            (0.0, False, True, None, 1.0),
            (1.0, False, False, down_after(1), 6.0),
            (6.0, False, False, None, 7.0),
            (7.0, True, True, UP, 12.0),
        ]),
    "http, 2 urls: one url per round, a failed url, then all urls again": (
        Style.HTTP, Timing(delay_loop=5, delay_before_retry=3, retry=1, warmup=0, urls=2), [
            (0.0, True, True, None, 5.0),       # url 0
            (5.0, False, False, DOWN, 10.0),    # url 1 fails before a full pass: down at once
            (10.0, False, False, None, 15.0),   # failed url again (delay_loop >= delay_before_retry)
            (15.0, True, False, None, 20.0),    # failed url passes: start over from url 0
            (20.0, True, False, None, 25.0),    # url 0
            (25.0, True, True, UP, 30.0),       # url 1: a whole pass, up
            (30.0, False, True, None, 33.0),    # url 0 fails once: retry after delay_before_retry
            (33.0, False, False, down_after(1), 38.0),
        ]),
    "http: failed url rechecked every max(delay_loop, delay_before_retry)": (
        Style.HTTP, Timing(delay_loop=2, delay_before_retry=7, retry=0, warmup=0), [
            (0.0, False, False, DOWN, 7.0),
            (7.0, False, False, None, 14.0),
            (14.0, True, False, None, 16.0),    # passes: all urls once more before it is up
            (16.0, True, True, UP, 18.0),
        ]),
    "http alpha + fast_recovery: urls back to back until the first pass": (
        Style.HTTP, Timing(delay_loop=5, delay_before_retry=3, retry=1, warmup=0, urls=2, alpha=True,
                           fast_recovery=True), [
            (0.0, True, False, None, 0.0),
            (0.5, True, True, UP, 5.5),
            (5.5, True, True, None, 10.5),
        ]),
}


@pytest.mark.parametrize("name", CASES)
def test_retry_rules(name):
    style, timing, steps = CASES[name]
    c = Checker(timing, style)
    c.start(0.0, 0.0)
    assert c.due == 0.0
    for i, (now, ok, up, change, due) in enumerate(steps):
        got = c.record(ok, now)
        assert (c.is_up, got, c.due) == (up, change, pytest.approx(due)), f"step {i} at t={now}"


def test_misc_times_from_the_start_of_the_last_run():
    c = Checker(Timing(delay_loop=5, delay_before_retry=1, retry=1, warmup=0), Style.MISC)
    c.record(True, now=12.0, started=10.0)
    assert c.due == 15.0
    c.record(False, now=16.0, started=15.0)  # up, first failure: a retry delay_before_retry after the start
    assert c.due == pytest.approx(16.0 + 1e-6) and c.is_up
    assert c.record(False, now=40.0, started=39.5) == down_after(1)
    assert c.due == 44.5


def test_misc_down_runs_every_delay_loop():
    c = Checker(Timing(delay_loop=5, delay_before_retry=1, retry=3, warmup=0), Style.MISC)
    assert c.record(False, now=1.0, started=0.0) == DOWN
    assert c.record(False, now=6.0, started=5.0) is None
    assert c.due == 10.0 and c.retry_it == 0


@pytest.mark.parametrize("warmup,phase,due", [
    (10.0, 0.0, BOOTSTRAP),
    (10.0, 0.5, BOOTSTRAP + 5.0),
    (0.0, 0.25, 0.25 * BOOTSTRAP),  # no warmup: spread within the bootstrap second
])
def test_first_run_within_warmup(warmup, phase, due):
    c = Checker(Timing(delay_loop=60, delay_before_retry=1, retry=1, warmup=warmup), Style.TCP)
    c.start(100.0, phase)
    assert c.due == pytest.approx(100.0 + due)


def test_a_checker_needs_a_url():
    with pytest.raises(ValueError):
        Checker(Timing(delay_loop=1, delay_before_retry=1, retry=1, warmup=0, urls=0), Style.HTTP)


def test_real_server_alive_only_when_all_checkers_are_up():
    rs = RealServerHealth(weight=3, checkers=2)
    assert rs.alive and rs.effective_weight() is None
    assert rs.set_checker(0, False) is True
    assert rs.set_checker(1, False) is False  # already dead
    assert rs.set_checker(0, True) is False   # checker 1 still down
    assert rs.set_checker(1, True) is True and rs.alive


def test_real_server_starting_down_with_alpha():
    rs = RealServerHealth(weight=1, checkers=3, initially_down={0, 2})
    assert not rs.alive
    rs.set_checker(0, True)
    assert not rs.alive
    assert rs.set_checker(2, True)
    with pytest.raises(ValueError):
        RealServerHealth(weight=1, checkers=1, initially_down={1})


def test_real_server_weights():
    rs = RealServerHealth(weight=10, checkers=3)
    assert rs.set_dynamic(4) and rs.effective_weight() == 4    # misc_dynamic exit 6
    assert rs.set_offset(1, -3) and rs.effective_weight() == 1  # FILE_CHECK offset
    assert rs.set_offset(2, -100) and rs.effective_weight() == 0  # clamped at 0
    rs.set_offset(2, 0)
    assert rs.set_dynamic(None) and rs.effective_weight() == 7  # exit 0: configured weight again
    assert rs.set_dynamic(None) is False
    rs.set_offset(1, 70000)
    assert rs.effective_weight() == 65535


@pytest.mark.parametrize("value,weight,reverse,expected", [
    (0, 0, False, (True, 0)),
    (1, 0, False, (False, 0)),
    (-5, 0, False, (False, 0)),
    (0, 0, True, (False, 0)),
    (3, 0, True, (True, 0)),
    (5, 2, False, (True, 10)),
    (5, 2, True, (True, -10)),
    (-(2**30), 4, False, (False, 0)),
    (2**30, 4, False, (True, 2**31 - 1)),
])
def test_file_check_state(value, weight, reverse, expected):
    assert file_check_state(value, weight, reverse) == expected


def test_state_is_sans_io():
    """checkers/state.py follows the core's rule: standard library only, no clock, I/O or logging."""
    import sys

    from tests.test_layering import FORBIDDEN, imports

    for name in imports("pyvrrpd.checkers.state"):
        top = name.split(".")[0]
        assert (top in sys.stdlib_module_names and top not in FORBIDDEN) or name.startswith("pyvrrpd.checkers"), name
