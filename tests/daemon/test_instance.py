"""The anyio driver under trio's MockClock (autojump): real loop, virtual time, exact deadlines."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import anyio
import pytest

from pyvrrpd.core.actions import ClaimAddresses, ReleaseAddresses, SendAdvert, State, StateChanged
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.daemon.instance import Inbox, Packet, Reconfigure, SetFault, SetPriorityDelta, SyncMove, run_instance

VIP = ipaddress.ip_address("198.51.100.100")


class Wire:
    """Effects for a router on a two-node in-memory LAN: adverts go to the other inboxes."""

    def __init__(self, name: str, log: list, peers: dict):
        self.name, self.log, self.peers = name, log, peers
        self.muted = False
        self.batches: list[int] = []  # len(log) at the end of each batch of actions

    async def apply(self, action) -> None:
        self.log.append((anyio.current_time(), self.name, action))
        if isinstance(action, SendAdvert) and not self.muted:
            for name, (inbox, src) in self.peers.items():
                if name != self.name:
                    inbox.send_nowait(Packet(action.advert, self.peers[self.name][1]))

    def flushed(self) -> None:
        self.batches.append(len(self.log))


def router(name: str, last_octet: int, priority: int) -> VirtualRouter:
    return VirtualRouter(RouterConfig(
        name=name, vrid=51, priority=priority,
        source=ipaddress.ip_address(f"198.51.100.{last_octet}"), addresses=(VIP,),
    ))


def alone() -> tuple[list, Inbox, VirtualRouter, Wire]:
    """d1 (priority 150) on a LAN of its own: (action log, inbox, router, effects)."""
    log: list = []
    inbox = Inbox(10)
    return log, inbox, router("d1", 11, 150), Wire("d1", log, {"d1": (inbox, ipaddress.ip_address("198.51.100.11"))})


def became_master(log, name):
    return [t for t, n, a in log if n == name and isinstance(a, StateChanged) and a.new is State.MASTER]


@pytest.mark.anyio
async def test_backup_takes_over_at_master_down_interval_exactly():
    log: list = []
    peers: dict = {}
    streams = {}
    for name, octet in (("d1", 11), ("d2", 12)):
        streams[name] = inbox = Inbox(100)
        peers[name] = (inbox, ipaddress.ip_address(f"198.51.100.{octet}"))
    d1, d2 = router("d1", 11, 150), router("d2", 12, 100)
    w1, w2 = Wire("d1", log, peers), Wire("d2", log, peers)
    async with anyio.create_task_group() as tg:
        t0 = anyio.current_time()
        await tg.start(run_instance, d1, streams["d1"], w1)
        await tg.start(run_instance, d2, streams["d2"], w2)
        await anyio.sleep(10)
        assert d1.state is State.MASTER and d2.state is State.BACKUP
        # d1 dies silently (kill -9): its adverts stop.
        w1.muted = True
        last_advert = max(t for t, n, a in log if n == "d1" and isinstance(a, SendAdvert))
        await anyio.sleep(5)
        assert d2.state is State.MASTER
        # 3 x 1 s + (256 - 100) / 256 s after d1's last advert, to the microsecond
        assert became_master(log, "d2")[0] - last_advert == pytest.approx(3.609375, abs=1e-6)
        tg.cancel_scope.cancel()
    assert became_master(log, "d1")[0] - t0 == pytest.approx(3 + (256 - 150) / 256, abs=1e-6)


@pytest.mark.anyio
async def test_cancel_sends_priority_zero_and_releases_vips_shielded():
    log, inbox, d1, wire = alone()
    async with anyio.create_task_group() as tg:
        await tg.start(run_instance, d1, inbox, wire)
        await anyio.sleep(5)
        assert d1.state is State.MASTER
        tg.cancel_scope.cancel()
    actions = [a for _, n, a in log]
    zero = [a for a in actions if isinstance(a, SendAdvert) and a.priority == 0]
    assert zero, "no priority-0 advert on stop"
    assert isinstance(actions[-1], (ReleaseAddresses, StateChanged))
    assert any(isinstance(a, ReleaseAddresses) for a in actions[actions.index(zero[0]):])
    assert any(isinstance(a, ClaimAddresses) for a in actions)


@pytest.mark.anyio
async def test_fault_from_inbox_gives_up_mastership():
    log, inbox, d1, wire = alone()
    async with anyio.create_task_group() as tg:
        await tg.start(run_instance, d1, inbox, wire)
        await anyio.sleep(5)
        inbox.put(SetFault("link:lan0", "link down"))
        await anyio.sleep(0.1)
        assert d1.state is State.FAULT
        inbox.put(SetFault("link:lan0", None))
        await anyio.sleep(5)
        assert d1.state is State.MASTER
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_closed_inbox_stops_the_instance_cleanly():
    log, inbox, d1, wire = alone()
    async with anyio.create_task_group() as tg:
        await tg.start(run_instance, d1, inbox, wire)
        await anyio.sleep(5)
        inbox.close()
    assert d1.state is State.INITIALIZE


@pytest.mark.anyio
async def test_fault_sources_deltas_and_reconfigure_go_through_the_inbox():
    log, inbox, d1, wire = alone()
    async with anyio.create_task_group() as tg:
        await tg.start(run_instance, d1, inbox, wire)
        await anyio.sleep(5)
        inbox.put(SetFault("link:lan0", "link down"))
        inbox.put(SetFault("script:chk", "exit status 1"))
        inbox.put(SetFault("link:lan0", None))
        await anyio.sleep(5)
        assert d1.state is State.FAULT and d1.faults == {"script:chk": "exit status 1"}
        inbox.put(SetPriorityDelta("file:flag", -20))
        inbox.put(SetFault("script:chk", None))
        new = replace(d1.config, source=ipaddress.ip_address("198.51.100.21"))
        inbox.put(Reconfigure(new))
        await anyio.sleep(5)
        assert d1.state is State.MASTER and d1.priority == 130 and d1.config is new
        assert [a.advert.priority for _, _, a in log if isinstance(a, SendAdvert)][-1] == 130
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_sync_moves_go_through_the_inbox_and_each_batch_ends_with_flushed():
    log, inbox, d1, wire = alone()
    d1 = VirtualRouter(replace(d1.config, sync_group=True))
    async with anyio.create_task_group() as tg:
        await tg.start(run_instance, d1, inbox, wire)
        assert wire.batches == [len(log)]  # the initial state is one batch
        await anyio.sleep(5)
        assert d1.state is State.BACKUP and d1.wants_master  # its group has not agreed
        inbox.put(SyncMove(State.MASTER))
        await anyio.sleep(0.1)
        assert d1.state is State.MASTER
        claim = next(i for i, (_, _, a) in enumerate(log) if isinstance(a, ClaimAddresses))
        assert any(b > claim for b in wire.batches)  # notified after the VIPs are set
        inbox.put(SyncMove(State.BACKUP))
        await anyio.sleep(0.1)
        assert d1.state is State.BACKUP
        tg.cancel_scope.cancel()
    assert wire.batches[-1] == len(log)  # the stop too
