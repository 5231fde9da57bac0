"""VirtualRouter rules, table-driven: (state, input, now) → (state, actions, next timer).

Each case starts a router in a known state at a known time (``Setup``), feeds one input and checks
the resulting state, the actions as short strings, and ``get_timer()``. Times are µs integers in
the table and seconds at the API, as the daemon will use it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable

import pytest

from pyvrrpd.core.actions import (
    Action,
    ClaimAddresses,
    Discard,
    Discarded,
    Notice,
    PriorityChanged,
    ReleaseAddresses,
    SendAdvert,
    SendGratuitous,
    State,
    StateChanged,
    WantMaster,
)
from pyvrrpd.core.packet import Advertisement
from pyvrrpd.core.router import TRANSITIONS, RouterConfig, VirtualRouter, state_diagram

A = ipaddress.ip_address
OURS = A("198.51.100.11")
LOWER, HIGHER = A("198.51.100.10"), A("198.51.100.12")
VIP = A("198.51.100.100")
S = 1_000_000  # µs
T0 = 100 * S  # every router starts at t = 100 s
MDI_100 = 3_609_375  # v2, priority 100, 1 s
SKEW_100 = 609_375


def config(**kw: object) -> RouterConfig:
    base: dict[str, object] = dict(name="VI_1", vrid=51, source=OURS, addresses=(VIP,))
    base.update(kw)
    return RouterConfig(**base)  # type: ignore[arg-type]


def advert(priority: int, *, version: int = 2, vrid: int = 51, interval: int | None = None,
           addresses: tuple = (VIP,), count: int | None = None, auth_type: int = 0,
           auth_data: bytes = bytes(8)) -> Advertisement:
    if version == 3:
        return Advertisement(3, 1, vrid, priority, len(addresses) if count is None else count, 0,
                             10 if interval is None else interval, 0, addresses, b"")
    return Advertisement(2, 1, vrid, priority, len(addresses) if count is None else count, auth_type,
                         1 if interval is None else interval, 0, addresses, auth_data)


def short(action: Action) -> str:
    """One action as a short string for the tables."""
    match action:
        case StateChanged(old, new, reason):
            return f"state {old.value}->{new.value} {reason.value}"
        case SendAdvert(adv, reason):
            return f"advert {adv.priority} {reason.value}"
        case ClaimAddresses():
            return "claim"
        case ReleaseAddresses(_, reason):
            return f"release {reason.value}"
        case SendGratuitous(_, count, reason):
            return f"garp {count} {reason.value}"
        case PriorityChanged(old, new):
            return f"priority {old}->{new}"
        case Discarded(reason):
            return f"discard {reason.value}"
        case Notice(kind):
            return f"notice {kind.value}"
        case WantMaster(reason):
            return f"want master {reason.value}"
    raise AssertionError(action)


def drain(r: VirtualRouter) -> list[Action]:
    out = []
    while (a := r.next_action()) is not None:
        out.append(a)
    return out


def timer_us(r: VirtualRouter) -> int | None:
    t = r.get_timer()
    return None if t is None else round(t * S)


# ---- setups: a router in a known state, and the time it got there (µs) --------------------------

Setup = Callable[..., tuple[VirtualRouter, int]]


def initial(**kw: object) -> tuple[VirtualRouter, int]:
    return VirtualRouter(config(**kw)), T0


def backup(**kw: object) -> tuple[VirtualRouter, int]:
    """Started at T0: BACKUP, down timer at T0 + Master_Down_Interval."""
    r, t = initial(**kw)
    r.startup(t / S)
    drain(r)
    return r, t


def master(**kw: object) -> tuple[VirtualRouter, int]:
    """Started at T0 and MASTER once its down timer fired."""
    r, _ = backup(**kw)
    t = timer_us(r)
    assert t is not None
    r.handle_timer(t / S)
    drain(r)
    assert r.state is State.MASTER
    return r, t


def fault(**kw: object) -> tuple[VirtualRouter, int]:
    r, t = backup(**kw)
    r.set_fault("link:lan0", "interface lan0 is down", t / S)
    drain(r)
    return r, t


@dataclass
class Case:
    name: str
    setup: Setup
    kw: dict = field(default_factory=dict)
    do: Callable[[VirtualRouter, float], None] = lambda r, now: None
    dt: int = 0  # input time, µs after the setup's time
    state: State = State.BACKUP
    actions: tuple[str, ...] = ()
    timer: int | None = None  # µs after the setup's time; None: no timer


def rx(priority: int, src: ipaddress.IPv4Address = HIGHER, **kw: object) -> Callable[[VirtualRouter, float], None]:
    return lambda r, now: r.receive(advert(priority, **kw), src, now)  # type: ignore[arg-type]


def timer(r: VirtualRouter, now: float) -> None:
    r.handle_timer(now)


GARP5 = ("garp 5 takeover",)
TAKEOVER = ("advert 100 takeover", "claim", *GARP5)

CASES = [
    # RFC 5798 §6.4.1 Initialize, keepalived 2.2.7 startup
    Case("startup → backup, stale VIPs removed", initial, do=lambda r, now: r.startup(now),
         actions=("state INIT->BACKUP init", "release init"), timer=MDI_100),
    Case("startup v3 10 cs", initial, {"version": 3, "advert_int_us": 100_000},
         do=lambda r, now: r.startup(now), actions=("state INIT->BACKUP init", "release init"), timer=360_937),
    Case("startup owner (state MASTER, 255): 1 µs, no VIP removal", initial,
         {"priority": 255, "initial_state": State.MASTER}, do=lambda r, now: r.startup(now),
         actions=("state INIT->BACKUP init",), timer=1),
    Case("startup state MASTER prio 150: full down interval (2.2.7 measured 3.41 s)", initial,
         {"priority": 150, "initial_state": State.MASTER}, do=lambda r, now: r.startup(now),
         actions=("state INIT->BACKUP init", "release init"), timer=3_414_062),
    Case("startup with fault", initial, do=lambda r, now: (r.set_fault("link:lan0", "interface lan0 is down", now), r.startup(now)),
         state=State.FAULT, actions=("state INIT->FAULT init_fault", "release init_fault")),
    Case("startup twice is a no-op", backup, do=lambda r, now: r.startup(now), timer=MDI_100),
    # §6.4.2 Backup
    Case("down timer fires → master", backup, do=timer, dt=MDI_100, state=State.MASTER,
         actions=("state BACKUP->MASTER master_down", *TAKEOVER), timer=MDI_100 + S),
    Case("timer called early does nothing", backup, do=timer, dt=MDI_100 - 1, timer=MDI_100),
    Case("owner times out 1 µs after startup", backup, {"priority": 255, "initial_state": State.MASTER},
         do=timer, dt=1, state=State.MASTER,
         actions=("state BACKUP->MASTER address_owner", "advert 255 takeover", "claim", *GARP5), timer=1 + S),
    Case("higher priority advert resets the down timer", backup, do=rx(150), dt=2 * S, timer=2 * S + MDI_100),
    Case("equal priority advert resets it too", backup, do=rx(100, LOWER), dt=2 * S, timer=2 * S + MDI_100),
    Case("lower priority: discarded, timer keeps running (preempt)", backup, do=rx(50), dt=2 * S,
         actions=("discard lower_priority",), timer=MDI_100),
    Case("nopreempt accepts a lower priority master", backup, {"nopreempt": True}, do=rx(50), dt=2 * S,
         timer=2 * S + MDI_100),
    Case("priority 0 → take over after Skew_Time", backup, do=rx(0), dt=2 * S,
         actions=("notice priority_zero",), timer=2 * S + SKEW_100),
    Case("preempt_delay runs from startup: lower advert accepted", backup, {"preempt_delay_us": 10 * S},
         do=rx(50), dt=2 * S, timer=2 * S + MDI_100),
    Case("preempt_delay over: lower advert discarded", backup, {"preempt_delay_us": 10 * S},
         do=rx(50), dt=10 * S, actions=("discard lower_priority",), timer=MDI_100),
    Case("higher advert stops a running preempt_delay", backup, {"preempt_delay_us": 10 * S},
         do=rx(150), dt=2 * S, actions=("notice preempt_delay_stopped",), timer=2 * S + MDI_100),
    Case("v3 backup adopts the master's interval", backup, {"version": 3, "advert_int_us": 100_000},
         do=rx(150, version=3, interval=20), dt=S,
         actions=("notice interval_mismatch", "notice interval_updated"), timer=S + 3 * 200_000 + 121_875),
    Case("a priority delta shifts the down timer by the skew change", backup,
         do=lambda r, now: r.set_priority_delta("script:chk", 100, now), dt=S, actions=("priority 100->200",),
         timer=MDI_100 - SKEW_100 + 218_750),
    Case("backup → fault", backup, do=lambda r, now: r.set_fault("link:lan0", "interface lan0 is down", now), dt=S, state=State.FAULT,
         actions=("state BACKUP->FAULT fault",)),
    Case("backup shutdown", backup, do=lambda r, now: r.shutdown(now), dt=S, state=State.INITIALIZE,
         actions=("state BACKUP->INIT shutdown",)),
    # §6.4.3 Master
    Case("Adver_Timer → periodic advert", master, do=timer, dt=S, state=State.MASTER,
         actions=("advert 100 periodic",), timer=2 * S),
    Case("higher priority → backup", master, do=rx(150, LOWER), dt=S // 2,
         actions=("notice higher_priority", "state MASTER->BACKUP higher_priority", "release higher_priority"),
         timer=S // 2 + MDI_100),
    Case("equal priority, higher address → backup", master, do=rx(100, HIGHER), dt=S // 2,
         actions=("notice higher_priority", "state MASTER->BACKUP higher_address", "release higher_address"),
         timer=S // 2 + MDI_100),
    Case("equal priority, lower address → forcing new election", master, do=rx(100, LOWER), dt=S // 2,
         state=State.MASTER, actions=("notice lower_priority", "advert 100 force_election",
                                      "garp 5 lower_priority"), timer=S // 2 + S),
    Case("lower priority → advert at once + garp_lower_prio", master, do=rx(50), dt=S // 2, state=State.MASTER,
         actions=("notice lower_priority", "advert 100 force_election", "garp 5 lower_priority"),
         timer=S // 2 + S),
    Case("lower_prio_no_advert", master, {"lower_prio_no_advert": True, "garp_lower_prio_repeat": 0},
         do=rx(50), dt=S // 2, state=State.MASTER, actions=("notice lower_priority",), timer=S),
    Case("priority 0 → answer at once", master, do=rx(0), dt=S // 2, state=State.MASTER,
         actions=("advert 100 priority_zero_reply", "notice priority_zero"), timer=S // 2 + S),
    Case("higher_prio_send_advert", master, {"higher_prio_send_advert": True}, do=rx(150), dt=S // 2,
         actions=("advert 100 higher_priority_reply", "notice higher_priority",
                  "state MASTER->BACKUP higher_priority", "release higher_priority"), timer=S // 2 + MDI_100),
    Case("equal priority from our own address", master, do=rx(100, OURS), dt=S // 2, state=State.MASTER,
         actions=("notice own_address",), timer=S),
    Case("two address owners: the lower address backs off", master, {"priority": 255}, do=rx(255, HIGHER),
         dt=S // 2, actions=("notice both_owners", "notice higher_priority",
                             "state MASTER->BACKUP higher_address", "release higher_address"),
         timer=S // 2 + 3 * S + 3_906),
    Case("v3 master adopts the interval of the master it yields to", master,
         {"version": 3, "advert_int_us": 100_000}, do=rx(150, version=3, interval=20), dt=0,
         actions=("notice interval_mismatch", "notice higher_priority", "notice interval_updated",
                  "state MASTER->BACKUP higher_priority", "release higher_priority"), timer=3 * 200_000 + 121_875),
    Case("delayed GARP burst garp_master_delay after takeover", master, do=timer, dt=5 * S, state=State.MASTER,
         actions=("garp 5 delayed", "advert 100 periodic"), timer=6 * S),
    Case("garp_master_refresh", master, {"garp_master_refresh_us": 3 * S, "garp_master_delay_us": 0},
         do=timer, dt=3 * S, state=State.MASTER, actions=("garp 1 refresh", "advert 100 periodic"), timer=4 * S),
    Case("master shutdown sends priority 0", master, do=lambda r, now: r.shutdown(now), dt=S // 2,
         state=State.INITIALIZE, actions=("state MASTER->INIT shutdown", "advert 0 shutdown", "release shutdown")),
    Case("master → fault sends priority 0", master, do=lambda r, now: r.set_fault("link:lan0", "interface lan0 is down", now), dt=S // 2,
         state=State.FAULT, actions=("state MASTER->FAULT fault", "advert 0 fault", "release fault")),
    Case("master priority change is only advertised", master, do=lambda r, now: r.set_priority_delta("script:chk", -10, now),
         dt=S // 2, state=State.MASTER, actions=("priority 100->90",), timer=S),
    # Fault
    Case("fault cleared → backup", fault, do=lambda r, now: r.set_fault("link:lan0", None, now), dt=S,
         actions=("state FAULT->BACKUP fault_cleared",), timer=S + MDI_100),
    Case("owner's fault cleared → master at once", fault, {"priority": 255, "initial_state": State.MASTER},
         do=lambda r, now: r.set_fault("link:lan0", None, now), dt=S, state=State.MASTER,
         actions=("state FAULT->MASTER fault_cleared_owner", "advert 255 takeover", "claim", *GARP5), timer=2 * S),
    Case("adverts ignored in fault", fault, do=rx(150), dt=S, state=State.FAULT,
         actions=("discard not_running",)),
    Case("fault shutdown", fault, do=lambda r, now: r.shutdown(now), dt=S, state=State.INITIALIZE,
         actions=("state FAULT->INIT shutdown",)),
    Case("shutdown before startup is a no-op", initial, do=lambda r, now: r.shutdown(now),
         state=State.INITIALIZE),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    r, start = case.setup(**case.kw)
    case.do(r, (start + case.dt) / S)
    assert r.state is case.state
    assert tuple(map(short, drain(r))) == case.actions
    assert timer_us(r) == (None if case.timer is None else start + case.timer)


# ---- semantic checks: one Discard reason each ---------------------------------------------------

PASS = {"auth_type": 1, "auth_pass": b"secret"}
CHECKS = [
    ("wrong VRID", {}, advert(150, vrid=52), HIGHER, Discard.WRONG_VRID),
    ("version mismatch", {}, advert(150, version=3), HIGHER, Discard.VERSION_MISMATCH),
    ("invalid auth type", {}, advert(150, auth_type=3), HIGHER, Discard.AUTH_TYPE_INVALID),
    ("auth type mismatch", PASS, advert(150), HIGHER, Discard.AUTH_TYPE_MISMATCH),
    ("wrong password", PASS, advert(150, auth_type=1, auth_data=b"guess\0\0\0"), HIGHER, Discard.AUTH_FAILURE),
    ("v2 interval mismatch", {}, advert(150, interval=2), HIGHER, Discard.INTERVAL_MISMATCH),
    ("address count (2.2.7: KO)", {}, advert(150, addresses=(VIP, A("198.51.100.101"))), HIGHER,
     Discard.ADDRESS_COUNT),
    ("address list", {}, advert(150, addresses=(A("198.51.100.101"),)), HIGHER, Discard.ADDRESS_LIST),
    ("unicast source not a peer", {"unicast_peers": (LOWER,), "check_unicast_src": True}, advert(150), HIGHER,
     Discard.UNICAST_SOURCE),
]


@pytest.mark.parametrize(("kw", "adv", "src", "reason"), [c[1:] for c in CHECKS], ids=[c[0] for c in CHECKS])
def test_semantic_check(kw: dict, adv: Advertisement, src: ipaddress.IPv4Address, reason: Discard) -> None:
    r, _ = backup(**kw)
    r.receive(adv, src, (T0 + S) / S)
    (action,) = drain(r)
    assert isinstance(action, Discarded) and action.reason is reason and action.source == src and action.text
    assert r.stats.discarded == {reason: 1} and r.stats.adverts_rx == 1
    assert timer_us(r) == T0 + MDI_100  # a rejected advert never resets the down timer


def test_good_password_accepted() -> None:
    r, _ = backup(**PASS)
    r.receive(advert(150, auth_type=1, auth_data=b"secret\0\0"), HIGHER, (T0 + S) / S)
    assert drain(r) == [] and timer_us(r) == T0 + S + MDI_100


def test_skip_check_adv_addr_trusts_only_the_current_master() -> None:
    r, _ = backup(skip_check_adv_addr=True)
    r.receive(advert(150), HIGHER, (T0 + S) / S)  # learn the master
    wrong = advert(150, addresses=(A("198.51.100.101"),))
    r.receive(wrong, HIGHER, (T0 + 2 * S) / S)
    assert drain(r) == []
    r.receive(wrong, LOWER, (T0 + 3 * S) / S)
    assert [short(a) for a in drain(r)] == ["discard address_list_mismatch"]


def test_unicast_peer_accepted() -> None:
    r, _ = backup(unicast_peers=(HIGHER,), check_unicast_src=True)
    r.receive(advert(150), HIGHER, (T0 + S) / S)
    assert drain(r) == [] and r.master_address == HIGHER and r.master_priority == 150


# ---- multi-step rules ---------------------------------------------------------------------------

def test_preemption_happens_when_the_down_timer_fires() -> None:
    r, _ = backup(priority=150)
    for k in range(1, 4):
        r.receive(advert(100), HIGHER, (T0 + k * S) / S)
    assert [short(a) for a in drain(r)] == ["discard lower_priority"] * 3
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert r.state is State.MASTER
    assert short(drain(r)[0]) == "state BACKUP->MASTER preempt"
    assert r.stats.become_master == 1


def test_preempt_delay_restarts_after_leaving_master() -> None:
    r, t = master(preempt_delay_us=10 * S)
    now = t + S
    r.receive(advert(150), HIGHER, now / S)
    drain(r)
    r.receive(advert(50), HIGHER, (now + S) / S)  # first lower advert starts the delay and is accepted
    assert [short(a) for a in drain(r)] == ["notice preempt_delay_started"]
    assert timer_us(r) == now + S + MDI_100


def test_priority_zero_then_timer_reports_peer_stopped() -> None:
    r, _ = backup()
    r.receive(advert(0), HIGHER, (T0 + S) / S)
    drain(r)
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert short(drain(r)[0]) == "state BACKUP->MASTER priority_zero"
    assert r.stats.priority_zero_rx == 1


def test_a_sync_group_member_waits_for_its_group_before_becoming_master() -> None:
    r, _ = backup(sync_group=True)
    due = timer_us(r)
    assert due == T0 + MDI_100
    r.handle_timer(due / S)
    assert [short(a) for a in drain(r)] == ["want master master_down"]
    assert r.state is State.BACKUP and r.wants_master
    assert timer_us(r) == due + MDI_100  # asks again after another Master_Down_Interval
    r.handle_timer((due + MDI_100) / S)
    assert [short(a) for a in drain(r)] == ["want master master_down"]
    r.sync_master((due + MDI_100 + 1) / S)
    assert [short(a) for a in drain(r)][:2] == ["state BACKUP->MASTER master_down", "advert 100 takeover"]
    assert not r.wants_master


def test_an_advert_from_a_master_ends_a_members_wish_to_be_master() -> None:
    r, _ = backup(sync_group=True)
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    drain(r)
    r.receive(advert(150), HIGHER, (T0 + 4 * S) / S)
    assert not r.wants_master
    assert timer_us(r) == T0 + 4 * S + MDI_100


def test_the_group_moves_members_that_did_not_ask() -> None:
    r, t = backup(sync_group=True)
    r.sync_master((t + S) / S)  # another member's wish pulls this one along
    assert short(drain(r)[0]) == "state BACKUP->MASTER sync_group"
    r.sync_master((t + 2 * S) / S)  # already master: nothing
    assert drain(r) == []
    r.sync_backup((t + 3 * S) / S)
    assert [short(a) for a in drain(r)] == ["state MASTER->BACKUP sync_group", "release sync_group"]
    assert r.state is State.BACKUP and timer_us(r) == t + 3 * S + MDI_100
    f, t = fault(sync_group=True)
    f.sync_master((t + S) / S)
    f.sync_backup((t + S) / S)
    assert f.state is State.FAULT and drain(f) == []


def test_lower_priority_garp_burst_repeats_after_delay() -> None:
    r, t = master(garp_master_delay_us=0)
    now = t + S // 2
    r.receive(advert(50), HIGHER, now / S)
    drain(r)
    r.handle_timer((now + 5 * S) / S)
    assert "garp 5 lower_priority_delayed" in [short(a) for a in drain(r)]


# ---- fault reasons and priority deltas: (setup, inputs) → (state, effective priority, actions) ----------

LINK, SCRIPT, FILE = "link:lan0", "script:chk", "file:flag"


@dataclass
class TrackCase:
    name: str
    setup: Setup
    kw: dict = field(default_factory=dict)
    # ("fault", source, reason | None) or ("delta", source, delta), fed one after the other
    inputs: tuple = ()
    state: State = State.BACKUP
    priority: int = 100
    actions: tuple[str, ...] = ()
    faults: dict = field(default_factory=dict)


OWNER = {"priority": 255, "initial_state": State.MASTER}
TRACK_CASES = [
    TrackCase("one fault source → fault", backup, inputs=(("fault", LINK, "down"),), state=State.FAULT,
              actions=("state BACKUP->FAULT fault",), faults={LINK: "down"}),
    TrackCase("a second source does not transition again", backup,
              inputs=(("fault", LINK, "down"), ("fault", SCRIPT, "failed")), state=State.FAULT,
              actions=("state BACKUP->FAULT fault",), faults={LINK: "down", SCRIPT: "failed"}),
    TrackCase("clearing one of two sources keeps FAULT", backup,
              inputs=(("fault", LINK, "down"), ("fault", SCRIPT, "failed"), ("fault", LINK, None)),
              state=State.FAULT, actions=("state BACKUP->FAULT fault",), faults={SCRIPT: "failed"}),
    TrackCase("clearing the last source leaves FAULT", backup,
              inputs=(("fault", LINK, "down"), ("fault", SCRIPT, "failed"), ("fault", LINK, None),
                      ("fault", SCRIPT, None)),
              actions=("state BACKUP->FAULT fault", "state FAULT->BACKUP fault_cleared")),
    TrackCase("a new reason from the same source changes only the reason", backup,
              inputs=(("fault", LINK, "down"), ("fault", LINK, "no carrier")), state=State.FAULT,
              actions=("state BACKUP->FAULT fault",), faults={LINK: "no carrier"}),
    TrackCase("clearing a source that never reported is a no-op", backup, inputs=(("fault", SCRIPT, None),)),
    TrackCase("master: the first reason sends priority 0", master, inputs=(("fault", SCRIPT, "failed"),),
              state=State.FAULT, actions=("state MASTER->FAULT fault", "advert 0 fault", "release fault"),
              faults={SCRIPT: "failed"}),
    TrackCase("a fault before startup starts in FAULT", initial,
              inputs=(("fault", LINK, "down"), ("start",)), state=State.FAULT,
              actions=("state INIT->FAULT init_fault", "release init_fault"), faults={LINK: "down"}),
    TrackCase("a fault cleared before startup starts in BACKUP", initial,
              inputs=(("fault", LINK, "down"), ("fault", LINK, None), ("start",)),
              actions=("state INIT->BACKUP init", "release init")),
    TrackCase("deltas sum", backup, inputs=(("delta", SCRIPT, -20), ("delta", FILE, 5)), priority=85,
              actions=("priority 100->80", "priority 80->85")),
    TrackCase("a zero delta removes the source", backup, inputs=(("delta", SCRIPT, -20), ("delta", SCRIPT, 0)),
              actions=("priority 100->80", "priority 80->100")),
    TrackCase("a delta replaces the same source's old one", backup,
              inputs=(("delta", SCRIPT, -20), ("delta", SCRIPT, -30)), priority=70,
              actions=("priority 100->80", "priority 80->70")),
    TrackCase("the sum clamps at 254", backup, inputs=(("delta", SCRIPT, 200), ("delta", FILE, 100)), priority=254,
              actions=("priority 100->254",)),
    TrackCase("the sum clamps at 1", backup, inputs=(("delta", SCRIPT, -99), ("delta", FILE, -200)), priority=1,
              actions=("priority 100->1",)),
    TrackCase("clamped deltas still count when one goes", backup,
              inputs=(("delta", SCRIPT, 200), ("delta", FILE, -100), ("delta", SCRIPT, 0)), priority=1,
              actions=("priority 100->254", "priority 254->200", "priority 200->1")),
    TrackCase("the owner's priority is never adjusted", master, OWNER,
              inputs=(("delta", SCRIPT, -100), ("delta", FILE, 10)), state=State.MASTER, priority=255),
    TrackCase("the owner does go to FAULT", master, OWNER, inputs=(("fault", LINK, "down"),), state=State.FAULT,
              priority=255, actions=("state MASTER->FAULT fault", "advert 0 fault", "release fault"),
              faults={LINK: "down"}),
    TrackCase("a delta in FAULT applies, nothing else happens", fault, inputs=(("delta", SCRIPT, -10),),
              state=State.FAULT, priority=90, actions=("priority 100->90",), faults={LINK: "interface lan0 is down"}),
]


@pytest.mark.parametrize("case", TRACK_CASES, ids=[c.name for c in TRACK_CASES])
def test_fault_reasons_and_priority_deltas(case: TrackCase) -> None:
    r, t = case.setup(**case.kw)
    now = (t + S) / S
    for kind, *args in case.inputs:
        if kind == "fault":
            r.set_fault(*args, now)
        elif kind == "delta":
            r.set_priority_delta(*args, now)
        else:
            r.startup(now)
    assert r.state is case.state
    assert r.priority == case.priority and r.base_priority == case.kw.get("priority", 100)
    assert tuple(map(short, drain(r))) == case.actions
    assert r.faults == case.faults


def test_master_with_a_lower_effective_priority_keeps_advertising_it() -> None:
    r, t = master(priority=150)
    r.set_priority_delta("script:chk", -60, (t + S // 2) / S)
    assert [short(a) for a in drain(r)] == ["priority 150->90"]
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert r.state is State.MASTER and [short(a) for a in drain(r)] == ["advert 90 periodic"]
    # A backup of priority 100 hears it and preempts by the normal rules (tests/core/test_election.py).


def test_reconfigure_keeps_the_state_and_applies_the_new_values() -> None:
    r, t = master(priority=150)
    new = config(priority=120, source=HIGHER, advert_int_us=2 * S)
    r.set_priority_delta("script:chk", -10, (t + 1) / S)
    drain(r)
    r.reconfigure(new, (t + 2) / S)
    assert r.config is new and r.state is State.MASTER
    assert r.priority == 110 and r.master_address == HIGHER
    assert [short(a) for a in drain(r)] == ["priority 140->110"]
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    [advert_action] = [a for a in drain(r) if isinstance(a, SendAdvert)]
    assert advert_action.advert.priority == 110 and advert_action.advert.adver_int == 2
    assert timer_us(r) == t + S + 2 * S  # the next advert comes at the new interval
    # The source is also the tie-break: an equal-priority advert from a lower address is answered.
    r.receive(advert(110, interval=2), OURS, r.get_timer() - 0.5)  # type: ignore[operator]
    assert "notice lower_priority" in [short(a) for a in drain(r)]


def test_reconfigure_refuses_another_instance() -> None:
    r, _ = backup()
    for bad in ({"vrid": 52}, {"version": 3, "advert_int_us": S}):
        with pytest.raises(ValueError, match="reconfigure cannot change"):
            r.reconfigure(config(**bad), T0 / S)
    assert r.config == config()


def test_a_renamed_instance_keeps_its_state_timers_faults_and_deltas() -> None:
    """keepalived matches instances across a reload by VRID, family, interface, unicast and source
    address, not by name: a rename is the same instance."""
    r, t = master(priority=150)
    r.set_priority_delta("script:chk", -10, (t + 1) / S)
    r.set_fault("script:other", None, (t + 1) / S)
    drain(r)
    due = r.get_timer()
    r.reconfigure(config(name="WEB", priority=150), (t + 2) / S)
    assert r.config.name == "WEB" and r.state is State.MASTER and r.get_timer() == due
    assert r.priority_deltas == {"script:chk": -10} and r.priority == 140 and drain(r) == []
    b, _ = backup()
    b.set_fault("script:chk", "exit status 1", T0 / S)
    b.reconfigure(config(name="WEB"), (T0 + 1) / S)
    assert b.state is State.FAULT and b.faults == {"script:chk": "exit status 1"}


def test_master_adverts_carry_config_and_effective_priority() -> None:
    r, _ = master(priority=150, addresses=(VIP, A("198.51.100.101")), excluded_addresses=(A("203.0.113.5"),),
               auth_type=1, auth_pass=b"pw")
    r.set_priority_delta("script:chk", -30, r.get_timer())  # type: ignore[arg-type]
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    (send, *_) = [a for a in drain(r) if isinstance(a, SendAdvert)]
    assert send.advert == advert(120, addresses=(VIP, A("198.51.100.101")), auth_type=1, auth_data=b"pw" + bytes(6))
    r.shutdown(r.get_timer())  # type: ignore[arg-type]
    release = next(a for a in drain(r) if isinstance(a, ReleaseAddresses))
    assert release.addresses == (VIP, A("198.51.100.101"), A("203.0.113.5"))


def test_action_texts_read_like_keepalived() -> None:
    r, t = master()
    r.receive(advert(150), HIGHER, (t + 1) / S)
    texts = [a.text for a in drain(r)]
    assert texts == ["Master received advert from 198.51.100.12 with higher priority 150, ours 100",
                     "Entering BACKUP STATE", "removing VIPs."]
    r.receive(advert(50), LOWER, (t + 2) / S)
    assert drain(r)[0].text == "received lower priority (50) advert from 198.51.100.10 - discarding"


def test_stats_count_the_life_of_a_master() -> None:
    r, _ = master()
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    r.receive(advert(150), HIGHER, r.get_timer())  # type: ignore[arg-type]
    s = r.stats
    assert (s.adverts_tx, s.adverts_rx, s.become_master, s.release_master, s.transitions) == (2, 1, 1, 1, 3)


def test_config_rejects_impossible_values() -> None:
    for bad in ({"vrid": 0}, {"priority": 0}, {"version": 4}, {"advert_int_us": 1_500_000},
                {"version": 3, "advert_int_us": 5_000}, {"source": A("fe80::1")},
                {"auth_type": 1, "auth_pass": b"123456789"}, {"down_timer_adverts": 0},
                {"addresses": (A("2001:db8::1"),)}, {"initial_state": State.FAULT}):
        with pytest.raises(ValueError, match="VI_1"):
            config(**bad)


def test_transition_table_is_complete_and_drawn() -> None:
    assert {old for old, _ in TRANSITIONS} == set(State)
    assert {new for new in TRANSITIONS.values()} == set(State)
    diagram = state_diagram()
    assert diagram.startswith("stateDiagram-v2\n")
    assert all(f"{old.value} --> {new.value}: {why.value}" in diagram for (old, why), new in TRANSITIONS.items())


def test_periodic_adverts_reuse_one_advertisement_until_something_in_it_changes() -> None:
    """Adapters cache the encoding by identity; a changed priority or config must give a new object."""
    r = VirtualRouter(config(priority=255, initial_state=State.MASTER))
    r.startup(T0 / S)
    r.handle_timer(r.get_timer())
    first = [a.advert for a in drain(r) if isinstance(a, SendAdvert)]
    r.handle_timer(r.get_timer())
    r.handle_timer(r.get_timer())
    periodic = [a.advert for a in drain(r) if isinstance(a, SendAdvert)]
    assert len(first) == 1 and len(periodic) == 2
    assert periodic[0] is first[0] and periodic[1] is first[0]
    backup = VirtualRouter(config(priority=100, initial_state=State.BACKUP))
    backup.startup(T0 / S)
    backup.handle_timer(backup.get_timer())  # no master heard: takes over
    [taken] = [a.advert for a in drain(backup) if isinstance(a, SendAdvert)]
    backup.set_priority_delta("script:chk", -10, backup.get_timer())
    backup.reconfigure(config(priority=100, initial_state=State.BACKUP, source=HIGHER), backup.get_timer())
    backup.handle_timer(backup.get_timer())
    [after] = [a.advert for a in drain(backup) if isinstance(a, SendAdvert)]
    assert after.priority == 90 and taken.priority == 100 and after is not taken
    backup.handle_timer(backup.get_timer())
    [same] = [a.advert for a in drain(backup) if isinstance(a, SendAdvert)]
    assert same is after
    backup.reconfigure(config(priority=100, initial_state=State.BACKUP, source=OURS), backup.get_timer())
    backup.handle_timer(backup.get_timer())
    [renewed] = [a.advert for a in drain(backup) if isinstance(a, SendAdvert)]
    assert renewed == after and renewed is not after
