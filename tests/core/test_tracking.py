"""core.tracking: keepalived 2.2.7's tracking arithmetic as tables of cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvrrpd.core.tracking import (
    FAULT_STATUS,
    Delta,
    Fault,
    Member,
    ProcessQuorum,
    ScriptResult,
    Tracker,
    file_facts,
    file_status,
    parse_file_value,
    process_matches,
    source_name,
    sync_group_faults,
    sync_initial_states,
    sync_transition,
    unweighted_fault,
    updown_facts,
    weighted_delta,
)

# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("up, weight, reverse, delta", [
    (True, 20, False, 20), (False, 20, False, 0),     # positive weight: added while up
    (True, -20, False, 0), (False, -20, False, -20),  # negative weight: applied while down
    (True, 20, True, -20), (False, 20, True, 0),      # reverse negates the adjustment
    (True, -20, True, 0), (False, -20, True, 20),
    (True, 253, False, 253), (False, -253, False, -253),
])
def test_weighted_delta(up, weight, reverse, delta):
    assert weighted_delta(up, weight, reverse) == delta


@pytest.mark.parametrize("up, reverse, fault", [(True, False, False), (False, False, True),
                                                (True, True, True), (False, True, False)])
def test_unweighted_fault_and_weight_0_reverse(up, reverse, fault):
    assert unweighted_fault(up, reverse) is fault


def test_updown_facts_for_mixed_trackers():
    trackers = [Tracker("VI_1"), Tracker("VI_2", weight=-30), Tracker("VI_3", weight=0, reverse=True)]
    src = source_name("script", "chk")
    assert src == "script:chk"
    down = updown_facts(src, False, trackers, down_reason="failed", up_reason="succeeded")
    assert down == [Fault("VI_1", src, "failed"), Delta("VI_2", src, -30), Fault("VI_3", src, None)]
    up = updown_facts(src, True, trackers, down_reason="failed", up_reason="succeeded")
    assert up == [Fault("VI_1", src, None), Delta("VI_2", src, 0), Fault("VI_3", src, "succeeded")]
    pending = updown_facts(src, None, trackers, down_reason="failed", up_reason="succeeded")
    assert pending == [Fault("VI_1", src, "no result yet"), Delta("VI_2", src, 0),
                       Fault("VI_3", src, "no result yet")]


# --------------------------------------------------------------------------- vrrp_script hysteresis


def run(results: str, rise: int, fall: int, init_fail: bool = False) -> str:
    """Feed results ('s' success, 'f' failure); return the state after each: U up, D down, ? unknown,
    lowercase when it did not change on that result."""
    r = ScriptResult(rise, fall, init_fail=init_fail)
    out = []
    for ch in results:
        changed = r.record(ch == "s")
        letter = {True: "U", False: "D", None: "?"}[r.up]
        out.append(letter if changed else letter.lower())
    return "".join(out)


@pytest.mark.parametrize("results, rise, fall, init_fail, states", [
    # the first result decides at once, whatever rise and fall are
    ("s", 3, 2, False, "U"),
    ("f", 3, 2, False, "D"),
    ("sss", 1, 1, False, "Uuu"),
    # fall: exactly `fall` consecutive failures to go down
    ("sfff", 1, 3, False, "UuuD"),
    ("sffsff", 1, 3, False, "Uuuuuu"),  # a success in between refills the counter
    ("sffsfff", 1, 3, False, "UuuuuuD"),
    # rise: exactly `rise` consecutive successes to come back
    ("fsss", 3, 1, False, "DddU"),
    ("fssfsss", 3, 1, False, "DdddddU"),  # a failure on the way resets the count
    ("fssfss", 3, 1, False, "Dddddd"),
    # up and down again, rise 2 fall 2
    ("sffssff", 2, 2, False, "UuDdUuD"),
    # init_fail: starts down and needs `rise` successes, a failure is not a change
    ("f", 3, 2, True, "d"),
    ("sss", 3, 2, True, "ddU"),
    ("ssfsss", 3, 2, True, "dddddU"),
    ("s", 1, 1, True, "U"),
])
def test_rise_fall_counted_exactly(results, rise, fall, init_fail, states):
    assert run(results, rise, fall, init_fail) == states


def test_unknown_until_the_first_result():
    r = ScriptResult(5, 5)
    assert r.up is None
    assert r.record(True) and r.up is True


@given(rise=st.integers(1, 6), fall=st.integers(1, 6), results=st.lists(st.booleans(), max_size=40))
def test_hysteresis_matches_a_run_length_model(rise, fall, results):
    """Model: after the first result, the state flips to up after `rise` consecutive successes and
    to down after `fall` consecutive failures (counted from the last flip or the last opposite result)."""
    r = ScriptResult(rise, fall)
    state = None
    streak_ok = streak_ko = 0
    for i, ok in enumerate(results):
        r.record(ok)
        streak_ok, streak_ko = (streak_ok + 1, 0) if ok else (0, streak_ko + 1)
        if i == 0:
            state = ok
        elif state is False and streak_ok >= rise:
            state = True
        elif state is True and streak_ko >= fall:
            state = False
        assert r.up is state
        assert 0 <= r.count <= rise + fall - 1


# --------------------------------------------------------------------------- track_file


@pytest.mark.parametrize("data, value", [
    (b"0\n", 0), (b"1\n", 1), (b"-5\n", -5), (b"  +7 trailing words", 7), (b"\t\n 42", 42),
    (b"0x1F", 31), (b"0X1f\n", 31), (b"010", 8), (b"08", 0), (b"0x", 0), (b"0xg", 0),
    (b"", 0), (b"garbage", 0), (b"-", 0), (b"\x00\x01\xff", 0), (b"12\x0034", 12),
    (b"2147483647", 2**31 - 1), (b"-2147483648", -(2**31)),
    (b"2147483648", None), (b"99999999999999999999999999", None), (b"-9223372036854775809", None),
    (b" " * 126 + b"9", 9), (b" " * 127 + b"9", 0),  # only the first 127 bytes are read
    ("٣".encode(), 0),  # non-ASCII digits are not digits
])
def test_parse_file_value_is_strtol_base_0(data, value):
    assert parse_file_value(data) == value


@given(st.binary(max_size=300))
def test_parse_file_value_never_raises(data):
    value = parse_file_value(data)
    assert value is None or -(2**31) <= value <= 2**31 - 1


@pytest.mark.parametrize("value, weight, reverse, status", [
    (0, 0, False, 0), (1, 0, False, FAULT_STATUS), (-3, 0, False, FAULT_STATUS),  # weight 0: non-zero = FAULT
    (0, 0, True, FAULT_STATUS), (5, 0, True, 0),  # weight 0 reverse: zero = FAULT
    (10, 1, False, 10), (10, -2, False, -20), (10, 2, True, -20),
    (300, 1, False, 253), (-300, 1, False, FAULT_STATUS),  # clamped to -254..253
    (-253, 1, False, -253), (-254, 1, False, FAULT_STATUS), (-127, 2, False, FAULT_STATUS),
    (1, 254, False, 253), (-1, 254, False, FAULT_STATUS), (2**31 - 1, 254, False, 253),
])
def test_file_status(value, weight, reverse, status):
    assert file_status(value, weight, reverse) == status


def test_file_facts_fault_takes_the_contribution_out():
    src = "file:f"
    trackers = [Tracker("VI_1", weight=0), Tracker("VI_2", weight=5), Tracker("VI_3", weight=-1)]
    assert file_facts(src, 0, trackers, name="f") == [
        Fault("VI_1", src, None), Fault("VI_2", src, None), Delta("VI_2", src, 0),
        Fault("VI_3", src, None), Delta("VI_3", src, 0)]
    assert file_facts(src, 254, trackers, name="f") == [
        Fault("VI_1", src, "tracked file f has value 254"), Fault("VI_2", src, None), Delta("VI_2", src, 253),
        Fault("VI_3", src, "tracked file f has value 254"), Delta("VI_3", src, 0)]


# --------------------------------------------------------------------------- track_process


@pytest.mark.parametrize("name, params, match, full, comm, argv, ok", [
    ("nginx", (), None, False, "nginx", ["nginx: master"], True),
    ("ssh", (), None, False, "sshd", ["/usr/sbin/sshd"], False),  # exact, not a regex
    ("nginx", (), None, False, "nginx", None, True),  # argv not needed without full_command
    ("/usr/sbin/haproxy", (), None, True, "haproxy", ["/usr/sbin/haproxy", "-f", "x"], True),
    ("/usr/sbin/haproxy", (), None, True, "haproxy", ["haproxy", "-f", "x"], False),
    ("/bin/app", ("-f", "x"), "exact", True, "app", ["/bin/app", "-f", "x"], True),
    ("/bin/app", ("-f", "x"), "exact", True, "app", ["/bin/app", "-f", "x", "-v"], False),
    ("/bin/app", ("-f",), "partial", True, "app", ["/bin/app", "-f", "x", "-v"], True),
    ("/bin/app", ("-f", "y"), "partial", True, "app", ["/bin/app", "-f", "x"], False),
    ("/bin/app", ("-f", "/etc/a"), "initial", True, "app", ["/bin/app", "-f", "/etc/a.conf"], True),
    ("/bin/app", ("-f", "/etc/a"), "initial", True, "app", ["/bin/app", "-g", "/etc/a.conf"], False),
    ("/bin/app", (), "exact", True, "app", ["/bin/app"], True),  # param_match alone: no arguments
    ("/bin/app", (), "exact", True, "app", ["/bin/app", "-d"], False),
    ("/bin/app", (), "partial", True, "app", ["/bin/app", "-d"], True),
    ("/bin/app", (), None, True, "app", [], False),  # a zombie or kernel thread: empty cmdline
])
def test_process_matches(name, params, match, full, comm, argv, ok):
    assert process_matches(name, params, match, full, comm, argv) is ok


def test_quorum_range():
    q = ProcessQuorum(quorum=2, quorum_max=3)
    assert [q.in_quorum(n) for n in range(5)] == [False, False, True, True, False]
    q0 = ProcessQuorum(quorum=1, quorum_max=0)  # quorum_max 0: down while any runs (keepalived allows it)
    assert not q0.in_quorum(0) and not q0.in_quorum(1)
    q.start(2)
    assert q.up and q.get_timer() is None


def test_quorum_changes_at_once_without_delays():
    q = ProcessQuorum(quorum=1)
    q.start(0)
    assert not q.up
    assert q.update(1, 10.0, "fork") and q.up
    assert not q.update(2, 11.0, "fork")
    assert not q.update(1, 12.0, "exit")
    assert q.update(0, 13.0, "exit") and not q.up


def test_terminate_delay_debounces_a_restart():
    q = ProcessQuorum(quorum=1, terminate_delay=2.0, fork_delay=1.0)
    q.start(1)
    assert not q.update(0, 10.0, "exit") and q.up  # lost: wait 2 s
    assert q.get_timer() == 12.0
    assert not q.update(1, 11.0, "other") and q.up  # came back in time: nothing happened
    assert q.get_timer() is None
    assert not q.update(0, 20.0, "exit")
    assert not q.handle_timer(21.9)
    assert q.handle_timer(22.0) and not q.up and q.get_timer() is None


def test_fork_delay_and_exec_is_immediate():
    q = ProcessQuorum(quorum=2, fork_delay=1.5)
    q.start(1)
    assert not q.update(2, 5.0, "fork") and q.get_timer() == 6.5
    assert q.handle_timer(6.5) and q.up
    q.start(1)
    assert q.update(2, 7.0, "other") and q.up  # an exec into the name: no delay
    q.start(2)
    assert q.update(1, 8.0, "other") and not q.up  # an exec away from the name: no terminate delay


def test_quorum_timer_follows_the_count_at_expiry():
    q = ProcessQuorum(quorum=1, quorum_max=1, fork_delay=1.0)
    q.start(0)
    assert not q.update(1, 0.0, "fork")
    assert not q.update(2, 0.5, "fork")  # over quorum_max before the delay ended
    assert not q.handle_timer(1.0) and not q.up


# --------------------------------------------------------------------------- sync groups


def members(**spec):
    return {name: Member(*value) if isinstance(value, tuple) else Member(value) for name, value in spec.items()}


def test_one_member_fault_puts_the_group_in_fault():
    m = members(A=("FAULT", False, True), B="MASTER", C="BACKUP", D="FAULT")
    plan = sync_transition("G", "MASTER", m, "A", "FAULT")
    assert plan.allowed and plan.group_state == "FAULT"
    assert plan.force == {"B": "FAULT", "C": "FAULT"}
    assert plan.log == "VRRP_Group(G) Syncing instances to FAULT state"
    again = sync_transition("G", "FAULT", m, "D", "FAULT")
    assert again.force == {} and again.log is None


def test_master_needs_every_member_to_want_it():
    m = members(A=("BACKUP", True), B=("BACKUP", False))
    wait = sync_transition("G", "BACKUP", m, "A", "MASTER")
    assert not wait.allowed and wait.group_state == "BACKUP" and wait.force == {}
    m = members(A=("BACKUP", True), B=("BACKUP", True), C="MASTER")
    go = sync_transition("G", "BACKUP", m, "A", "MASTER")
    assert go.allowed and go.group_state == "MASTER" and go.force == {"B": "MASTER"}
    assert go.log == "VRRP_Group(G) Syncing instances to MASTER state"
    # once the group is MASTER, a member (re)becoming master needs nobody's consent
    assert sync_transition("G", "MASTER", members(A="BACKUP", B="MASTER"), "A", "MASTER") == \
        sync_transition("G", "MASTER", members(A="BACKUP", B="BACKUP"), "A", "MASTER")


def test_backup_pulls_the_others_but_not_a_faulted_one():
    m = members(A="BACKUP", B="MASTER", C=("FAULT", False, False), D=("FAULT", False, True))
    plan = sync_transition("G", "MASTER", m, "A", "BACKUP")
    assert plan.group_state == "BACKUP" and plan.force == {"B": "BACKUP", "C": "BACKUP"}
    assert plan.log == "VRRP_Group(G) Syncing instances to BACKUP state"
    assert sync_transition("G", "BACKUP", m, "A", "BACKUP").force == {}


def test_group_fault_reasons_clear_only_when_no_member_has_its_own():
    m = members(A=("FAULT", False, True), B="BACKUP", C="BACKUP")
    assert sync_group_faults("G", m) == {"A": None, "B": "sync group G: A in FAULT", "C": "sync group G: A in FAULT"}
    m = members(A=("FAULT", False, True), B=("FAULT", False, True), C="BACKUP")
    assert sync_group_faults("G", m) == {"A": "sync group G: B in FAULT", "B": "sync group G: A in FAULT",
                                         "C": "sync group G: A, B in FAULT"}
    assert set(sync_group_faults("G", members(A="FAULT", B="BACKUP")).values()) == {None}


@pytest.mark.parametrize("spec, want", [
    ({"A": ("MASTER", 255), "B": ("MASTER", 255)}, "MASTER"),
    ({"A": ("MASTER", 255), "B": ("MASTER", 200)}, "BACKUP"),
    ({"A": ("MASTER", 150), "B": ("BACKUP", 100)}, "BACKUP"),
    ({"A": ("BACKUP", 255), "B": ("MASTER", 255)}, "BACKUP"),
])
def test_state_master_in_a_group_at_start_up(spec, want):
    assert set(sync_initial_states(spec).values()) == {want}
