"""The VRRP chaos harness (tests/net/chaos.py): its schedule and invariant checks on made-up data, and short
real schedules in the namespace lab (three pyvrrpd; two pyvrrpd and keepalived 2.2.7). The long schedule is
a documented command (docs/reliability.md). PYVRRPD_CHAOS_SEED=N runs the lab tests with another seed."""

from __future__ import annotations

import json
import os

import pytest

from tests.net import chaos
from tests.net.chaos import BASE, BUMP, HEALS, VIPS, WEIGHT, Chaos, Model, schedule
from tests.net.lab import Advert

SEED = int(os.environ.get("PYVRRPD_CHAOS_SEED", "1"))


# -- the schedule and the checks, without a lab --------------------------------------------------

@pytest.mark.parametrize("variant", ["pyvrrpd", "mixed"])
def test_the_schedule_replays_and_ends_healed(variant):
    events = schedule(7, 200, variant)
    assert events == schedule(7, 200, variant)
    prefix = schedule(7, 50, variant)  # a shorter run is the same run, healed earlier
    assert [e for e in events[:50]] == prefix[:50]
    assert events != schedule(8, 200, variant)
    models = {n: Model(impl) for n, impl in zip(chaos.ROUTERS, chaos.VARIANTS[variant])}
    for event in events:
        m = models[event.node]
        if event.kind in HEALS.values():
            assert HEALS[m.impairment] == event.kind, event
        else:
            assert m.impairment is None, event  # one impairment per router at a time
        chaos.apply_model(models, event)
        assert sum(m.impairment == "isolated" for m in models.values()) <= 1
        assert sum(m.impairment is not None for m in models.values()) <= 2
    assert all(m.impairment is None for m in models.values())
    assert {e.kind for e in events} >= set(chaos.KINDS) | set(HEALS.values())


def test_no_two_routers_can_share_a_priority():
    for vrid in VIPS:
        possible = [{BASE[n][vrid] + b + w for b in (0, BUMP) for w in (0, WEIGHT)} for n in BASE]
        assert sum(len(p) for p in possible) == len(set().union(*possible)), vrid


class FakeWatch:
    def __init__(self, adverts):
        self._adverts = sorted(adverts, key=lambda a: a.t)  # the capture's order

    def adverts(self):
        return list(self._adverts)

    def summary(self, since):
        return "fake"


def adverts(node, vrid, start, stop, prio=100, step=0.1):
    return [Advert(t=start + i * step, mac="", src="", version=3, vrid=vrid, prio=prio, node=node)
            for i in range(round((stop - start) / step))]


def harness(tmp_path, stream) -> Chaos:
    run = Chaos(1, 5, "pyvrrpd", tmp_path)
    run.watch = FakeWatch(stream)
    run.report.done = 1
    run.t0 = 100.0
    for node in chaos.ROUTERS:
        run.health[node] = [(100.0, True)]
    return run


def test_a_gap_while_a_router_was_healthy_is_a_violation(tmp_path):
    stream = adverts("r1", 61, 100, 101) + adverts("r3", 61, 102, 103) + adverts("r2", 62, 100, 103)
    run = harness(tmp_path, stream)
    run.check_gaps()
    assert len(run.report.violations) == 1 and "VRID 61: no master in the main partition for 1.100 s" in run.report.violations[0]


def test_a_gap_that_ends_in_a_delivery_burst_is_the_machine(tmp_path):
    burst = [Advert(t=101.6 + i * 0.005, mac="", src="", version=3, vrid=61, prio=100, node="r1") for i in range(3)]
    run = harness(tmp_path, adverts("r1", 61, 100, 101) + burst + adverts("r1", 61, 101.7, 103))
    assert run.stalled(101.0, 102.0) and not run.stalled(100.0, 101.0)
    run.check_gaps()
    assert run.report.violations == [] and run.report.figures["stall_gaps"] == 1


def test_a_gap_the_machine_stalled_through_is_counted_not_failed(tmp_path):
    run = harness(tmp_path, adverts("r1", 61, 100, 101) + adverts("r3", 61, 102, 103))
    run.probe = chaos.StallProbe(limit=0)  # ends at once; its record is made up
    run.probe.stalls = [(100.95, 101.9)]
    run.check_gaps()
    assert run.report.violations == [] and run.report.figures["stall_gaps"] == 1
    run.probe.stalls = [(100.95, 101.0)]  # 50 ms of stall do not explain a gap of 1.1 s
    run.check_gaps()
    assert len(run.report.violations) == 1


def test_a_gap_without_a_healthy_router_is_not(tmp_path):
    stream = adverts("r1", 61, 100, 101) + adverts("r1", 61, 102, 103)
    run = harness(tmp_path, stream)
    for node in chaos.ROUTERS:
        run.health[node] += [(100.95, False), (101.9, True)]  # all paused, all back 0.1 s before r1 speaks
    run.check_gaps()
    assert run.report.violations == []
    assert run.report.figures["worst_gap_s"] == pytest.approx(1.1, abs=0.01)


def test_a_takeover_within_master_down_interval_is_fine(tmp_path):
    stream = adverts("r1", 61, 100, 101) + adverts("r3", 61, 100.9 + chaos.mdi(110), 102)
    run = harness(tmp_path, stream)
    run.check_gaps()
    assert run.report.violations == []


def test_each_partition_needs_its_own_master(tmp_path):
    # r1 (the master) is isolated at 100.55 and goes on alone; r3 takes over the rest in time, but r2
    # (isolated later) waits a whole second before it becomes master of its partition of one
    stream = (adverts("r1", 61, 100, 103) + adverts("r3", 61, 100.5 + chaos.mdi(110), 103)
              + adverts("r2", 61, 102.2, 103))
    run = harness(tmp_path, stream)
    run.isolations = [["r1", 100.55, 101.05], ["r2", 101.1, None]]
    run.check_gaps()
    found = [v for v in run.report.violations if "VRID 61" in v]  # (VRID 62 had no master anywhere)
    assert len(found) == 1 and "no master in r2's partition for 1.100 s" in found[0], found
    # without r3 the main partition had no master while r2 and r3 were healthy
    run = harness(tmp_path, adverts("r1", 61, 100, 103))
    run.isolations = [["r1", 100.55, 101.05]]
    run.check_gaps()
    found = [v for v in run.report.violations if "VRID 61" in v]
    assert len(found) == 1 and "in the main partition" in found[0], found


def test_two_masters_after_a_heal_must_resolve_within_an_advert_interval_and_skew(tmp_path):
    late = adverts("r1", 61, 100, 102, prio=150) + adverts("r3", 61, 100.05, 100.45, prio=110)
    run = harness(tmp_path, late)
    run.check_heal(100.0, 102.0)
    assert len(run.report.violations) == 1 and "r3 still sent adverts" in run.report.violations[0]
    quick = adverts("r1", 61, 100, 102, prio=150) + adverts("r3", 61, 100.05, 100.12, prio=110)
    run = harness(tmp_path, quick)
    run.check_heal(100.0, 102.0)
    assert run.report.violations == [] and run.report.figures["heal_s"] == [0.05]


def test_the_report_names_the_seed_and_the_events(tmp_path):
    run = harness(tmp_path, [])
    run.violation("something broke")
    text = run.report.text()
    assert text.startswith("chaos FAILED: variant pyvrrpd, seed 1, 1/")
    assert "--seed 1 --events 5 --variant pyvrrpd" in text and "something broke" in text
    assert "not reached:" in text


def test_brief_masters_are_counted_from_the_log():
    def line(t, event, instance="VI_A"):
        return json.dumps({"instance": instance, "event": event, "timestamp": f"2026-12-05T12:00:{t:09.6f}Z"})
    log = "\n".join([line(1.0, "(VI_A) Entering MASTER STATE"), line(1.02, "(VI_A) Entering BACKUP STATE"),
                     line(2.0, "(VI_B) Entering MASTER STATE", "VI_B"), line(1.5, "(VI_A) Entering MASTER STATE"),
                     line(3.0, "(VI_A) Entering FAULT STATE"), line(3.5, "(VI_B) Entering BACKUP STATE", "VI_B"),
                     "not json", '{"event": "Entering MASTER STATE", "timestamp": "garbage"}'])
    assert chaos.brief_masters(log) == 1


@pytest.mark.parametrize("argv", [["--events", "0"], ["--events", "x"], ["--variant", "nope"], ["--seed", "1.5"]])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        chaos.main(argv)
    assert exc.value.code == 2


# -- real daemons ------------------------------------------------------------------------------------

def run_chaos(tmp_path, count: int, variant: str) -> None:
    report = Chaos(SEED, count, variant, tmp_path).run()
    print(report.text())
    assert report.ok, report.text()


@pytest.mark.net
def test_chaos_three_pyvrrpd(tmp_path):
    run_chaos(tmp_path, 30, "pyvrrpd")


@pytest.mark.net
@pytest.mark.interop
def test_chaos_two_pyvrrpd_and_keepalived(tmp_path):
    run_chaos(tmp_path, 15, "mixed")
