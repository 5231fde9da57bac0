"""Notifications and sync groups (daemon/sync.py) on an in-memory LAN under the fake clock.

Two nodes, each with instances VI_1 (VRID 1) and VI_2 (VRID 2), optionally in a sync group G: routers
driven by the real driver (run_instance), adverts delivered to the other node's instance with the same
VRID, and a Reporter per node recording what it notifies.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import anyio
import pytest

from pyvrrpd.core.actions import SendAdvert, State
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.core.tracking import PENDING
from pyvrrpd.daemon.instance import Inbox, Packet, SetFault, SetPriorityDelta, SyncMove, feed, run_instance
from pyvrrpd.daemon.plan import plan_instances
from pyvrrpd.daemon.sync import Reporter, sync_groups

from tests.daemon.fakes import Log

VIP = {1: ipaddress.ip_address("198.51.100.101"), 2: ipaddress.ip_address("198.51.100.102")}
NAMES = {1: "VI_1", 2: "VI_2"}


class Notes:
    """A NotifySink that records (kind, name, state, priority) and (event, name, priority)."""

    def __init__(self) -> None:
        self.states: list[tuple[str, str, str, int]] = []
        self.events: list[tuple[str, str, int]] = []

    def notify_state(self, kind, name, state, priority) -> None:
        self.states.append((kind, name, state, priority))

    def notify_event(self, name, event, priority) -> None:
        self.events.append((event, name, priority))

    def of(self, kind: str, name: str) -> list[str]:
        return [s for k, n, s, _ in self.states if (k, n) == (kind, name)]


class Node:
    def __init__(self, name: str, octet: int, priority: int, lan: list, *, group: bool, version: int = 3,
                 preempt: bool = True) -> None:
        self.name = name
        self.source = ipaddress.ip_address(f"198.51.100.{octet}")
        self.lan = lan
        self.notes = Notes()
        self.routers = {
            n: VirtualRouter(RouterConfig(name=n, vrid=vrid, source=self.source, addresses=(VIP[vrid],),
                                          version=version, priority=priority,
                                          advert_int_us=100_000 if version == 3 else 1_000_000,
                                          nopreempt=not preempt, sync_group=group))
            for vrid, n in NAMES.items()}
        self.inboxes = {n: Inbox(100) for n in self.routers}
        self.started: set[str] = set()
        self.dropped: set[str] = set()  # instances whose adverts get lost
        groups = {"G": (tuple(self.routers), False)} if group else {}
        self.reporter = Reporter(list(self.routers), groups, self.notes, self.send, self.routers.__getitem__, Log())
        lan.append(self)

    def send(self, name: str, item) -> None:
        """What Vrrp._send does: report fault reasons, then the inbox (or the router before the start)."""
        if isinstance(item, SetFault):
            self.reporter.fault(name, item.source, item.reason)
        if name in self.started:
            try:
                self.inboxes[name].put(item)
            except anyio.ClosedResourceError:
                pass
        else:
            feed(self.routers[name], item, anyio.current_time())

    def state(self) -> dict[str, str]:
        return {n: r.state.value for n, r in self.routers.items()}

    async def run(self, tg) -> None:
        for name, router in self.routers.items():
            self.started.add(name)
            await tg.start(run_instance, router, self.inboxes[name], Effects(self, name))


class Effects:
    def __init__(self, node: Node, name: str) -> None:
        self.node, self.name = node, name
        self.listener = node.reporter.listener(lambda: name)

    async def apply(self, action) -> None:
        node = self.node
        if isinstance(action, SendAdvert) and self.name not in node.dropped:
            for other in node.lan:
                if other is not node:
                    try:
                        other.inboxes[self.name].send_nowait(Packet(action.advert, node.source))
                    except anyio.ClosedResourceError:
                        pass
        if type(action).__name__ in ("StateChanged", "PriorityChanged", "Notice", "WantMaster"):
            self.listener.action(action)

    def flushed(self) -> None:
        self.listener.flushed()


async def pair(tg, *, group: bool = True, preempt: bool = True) -> tuple[Node, Node]:
    lan: list = []
    a, b = Node("a", 11, 150, lan, group=group, preempt=preempt), Node("b", 12, 100, lan, group=group)
    await a.run(tg)
    await b.run(tg)
    await anyio.sleep(2)
    assert a.state() == {"VI_1": "MASTER", "VI_2": "MASTER"} and b.state() == {"VI_1": "BACKUP", "VI_2": "BACKUP"}
    return a, b


@pytest.mark.anyio
async def test_one_member_failing_moves_the_whole_group_and_back():
    async with anyio.create_task_group() as tg:
        a, b = await pair(tg)
        a.send("VI_1", SetFault("script:chk", "VRRP_Script(chk) failed"))
        await anyio.sleep(0.01)
        # FAULT together: VI_2 follows with the group's reason
        assert a.state() == {"VI_1": "FAULT", "VI_2": "FAULT"}
        assert a.routers["VI_2"].faults == {"group:G": "sync group G: VI_1 in FAULT"}
        # The peer got priority 0 for both and takes over both within Skew_Time (v3 0.1 s: < 0.1 s)
        await anyio.sleep(0.2)
        assert b.state() == {"VI_1": "MASTER", "VI_2": "MASTER"}
        a.send("VI_1", SetFault("script:chk", None))
        await anyio.sleep(2)
        assert a.state() == {"VI_1": "MASTER", "VI_2": "MASTER"}  # preempted back, together
        assert b.state() == {"VI_1": "BACKUP", "VI_2": "BACKUP"}
        tg.cancel_scope.cancel()
    assert a.notes.of("GROUP", "G") == ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "STOP"]
    assert a.notes.of("INSTANCE", "VI_2") == ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "STOP"]
    assert b.notes.of("GROUP", "G") == ["BACKUP", "MASTER", "BACKUP", "STOP"]
    assert ("GROUP", "G", "MASTER", 0) in a.notes.states  # groups carry priority 0
    assert ("INSTANCE", "VI_1", "MASTER", 150) in a.notes.states


@pytest.mark.anyio
async def test_a_member_alone_may_not_become_master():
    async with anyio.create_task_group() as tg:
        a, b = await pair(tg)
        # Only VI_1's master goes silent (its adverts for VRID 1 stop): b's VI_1 wants to be master, but
        # b's VI_2 still hears a master, so the group stays BACKUP ("prefer backup to avoid thrashing").
        a.dropped.add("VI_1")
        await anyio.sleep(3)
        assert b.state() == {"VI_1": "BACKUP", "VI_2": "BACKUP"}
        assert b.routers["VI_1"].wants_master and not b.routers["VI_2"].wants_master
        # Now VI_2's adverts get lost too: both want to be master, and the group moves.
        a.dropped.add("VI_2")
        await anyio.sleep(1)
        assert b.state() == {"VI_1": "MASTER", "VI_2": "MASTER"}
        tg.cancel_scope.cancel()
    assert b.notes.of("GROUP", "G") == ["BACKUP", "MASTER", "STOP"]


@pytest.mark.anyio
async def test_without_a_group_instances_move_alone():
    async with anyio.create_task_group() as tg:
        a, b = await pair(tg, group=False)
        a.send("VI_1", SetFault("link:lan0", "interface lan0 is down"))
        await anyio.sleep(0.5)
        assert a.state() == {"VI_1": "FAULT", "VI_2": "MASTER"}
        assert b.state() == {"VI_1": "MASTER", "VI_2": "BACKUP"}
        tg.cancel_scope.cancel()
    assert a.notes.of("GROUP", "G") == []


@pytest.mark.anyio
async def test_a_script_without_a_result_is_silent_like_keepalived_init():
    lan: list = []
    a = Node("a", 11, 150, lan, group=True)
    # The trackers start first: a script tracked unweighted has no result yet.
    a.send("VI_1", SetFault("script:chk", f"VRRP_Script(chk) has {PENDING}"))
    assert a.routers["VI_2"].faults == {"group:G": f"sync group G: VI_1 has {PENDING}"}
    async with anyio.create_task_group() as tg:
        await a.run(tg)
        await anyio.sleep(1)
        assert a.state() == {"VI_1": "FAULT", "VI_2": "FAULT"}
        assert a.notes.states == []  # nothing notified while waiting
        a.send("VI_1", SetFault("script:chk", "VRRP_Script(chk) failed"))  # the first result: a failure
        await anyio.sleep(0.1)
        assert a.notes.states == [("INSTANCE", "VI_1", "FAULT", 150), ("GROUP", "G", "FAULT", 0),
                                  ("INSTANCE", "VI_2", "FAULT", 150)]
        a.send("VI_1", SetFault("script:chk", None))
        await anyio.sleep(2)
        assert a.state() == {"VI_1": "MASTER", "VI_2": "MASTER"}
        tg.cancel_scope.cancel()
    assert a.notes.of("GROUP", "G") == ["FAULT", "BACKUP", "MASTER", "STOP"]


@pytest.mark.anyio
async def test_a_first_success_goes_straight_to_backup():
    lan: list = []
    a = Node("a", 11, 150, lan, group=False)
    a.send("VI_1", SetFault("script:chk", f"VRRP_Script(chk) has {PENDING}"))
    async with anyio.create_task_group() as tg:
        await a.run(tg)
        await anyio.sleep(0.05)
        a.send("VI_1", SetFault("script:chk", None))
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert a.notes.of("INSTANCE", "VI_1") == ["BACKUP", "STOP"]
    assert a.notes.of("INSTANCE", "VI_2") == ["BACKUP", "STOP"]


@pytest.mark.anyio
async def test_priority_changes_and_lower_priority_adverts_are_events():
    async with anyio.create_task_group() as tg:
        a, b = await pair(tg, group=False)
        a.send("VI_1", SetPriorityDelta("script:chk", -10))
        await anyio.sleep(0.05)
        assert a.routers["VI_1"].priority == 140
        # b claims VI_2 as master with its lower priority: a, master, hears a lower priority.
        b.send("VI_2", SyncMove(State.MASTER))
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert ("MASTER_PRIORITY", "VI_1", 140) in a.notes.events
    assert ("MASTER_RX_LOWER_PRI", "VI_2", 150) in a.notes.events


@pytest.mark.anyio
async def test_a_reload_that_removes_a_member_notifies_deleted_and_frees_the_group():
    lan: list = []
    a = Node("a", 11, 150, lan, group=True)
    async with anyio.create_task_group() as tg:
        await a.run(tg)
        await anyio.sleep(1)
        a.send("VI_2", SetFault("link:lan1", "interface lan1 is down"))
        await anyio.sleep(0.1)
        assert a.state() == {"VI_1": "FAULT", "VI_2": "FAULT"}
        # the reload removes VI_2: it stops (DELETED), and VI_1 is in no group any more
        a.reporter.deleting(["VI_2"])
        a.inboxes["VI_2"].close()
        await anyio.sleep(0.1)
        a.reporter.reconfigure(["VI_1"], {}, {})
        await anyio.sleep(1)
        assert a.routers["VI_1"].faults == {} and a.state()["VI_1"] != "FAULT"
        tg.cancel_scope.cancel()
    assert ("INSTANCE", "VI_2", "DELETED", 150) in a.notes.states
    assert ("INSTANCE", "VI_2", "STOP", 150) not in a.notes.states
    assert a.reporter.snapshot() == {}


@pytest.mark.anyio
async def test_a_renamed_instance_keeps_what_the_reporter_knows():
    lan: list = []
    a = Node("a", 11, 150, lan, group=True)
    a.send("VI_2", SetFault("script:chk", "VRRP_Script(chk) failed"))
    assert a.reporter.snapshot()["G"]["members"] == ["VI_1", "VI_2"]
    a.routers["VI_9"] = a.routers.pop("VI_2")
    a.reporter.reconfigure(["VI_1", "VI_9"], {"G": (("VI_1", "VI_9"), False)}, {"VI_2": "VI_9"})
    # VI_9's own fault is still known: VI_1 keeps the group's reason, now naming VI_9
    assert a.routers["VI_1"].faults == {"group:G": "sync group G: VI_9 in FAULT"}


def test_the_start_up_rule_and_the_group_flag_come_from_the_plan(tmp_path):
    from pyvrrpd.config.load import load

    conf = tmp_path / "k.conf"
    body = """
vrrp_sync_group G {{ group {{ VI_1 VI_2 }} }}
vrrp_instance VI_1 {{ interface lan0
    virtual_router_id 1
    state MASTER
    priority 255
    virtual_ipaddress {{ 198.51.100.101 }} }}
vrrp_instance VI_2 {{ interface lan0
    virtual_router_id 2
    state MASTER
    priority {p}
    virtual_ipaddress {{ 198.51.100.102 }} }}
vrrp_instance VI_3 {{ interface lan0
    virtual_router_id 3
    state MASTER
    priority 255
    virtual_ipaddress {{ 198.51.100.103 }} }}
"""
    for p2, expect in ((255, State.MASTER), (200, State.BACKUP)):
        conf.write_text(body.format(p=p2))
        loaded = load(str(conf), host_checks=False)
        plans, problems = plan_instances(loaded.config)
        assert not problems
        by = {p.name: p.router for p in plans}
        assert by["VI_1"].initial_state is expect and by["VI_1"].sync_group
        assert by["VI_3"].initial_state is State.MASTER and not by["VI_3"].sync_group
        assert sync_groups(loaded.config, plans) == {"G": (("VI_1", "VI_2"), expect is State.MASTER)}
        replace(by["VI_1"])  # still a valid RouterConfig
