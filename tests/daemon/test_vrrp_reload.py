"""Reload of the VRRP subsystem (``Vrrp.reconfigure``) with a fake kernel under the fake clock: what each
kind of change does to the instances, the wire and netlink, and what it leaves alone."""

from __future__ import annotations

import contextlib
import ipaddress

import anyio
import pytest

from pyvrrpd.core.actions import Discard, State
from pyvrrpd.core.packet import ADVERTISEMENT, Advertisement
from pyvrrpd.daemon.vrrp import Vrrp

from tests.daemon.fakes import Log
from tests.daemon.test_plan import load_config
from tests.daemon.kernel import FakeKernel

INTERVAL = 0.1
ip = ipaddress.ip_address


def instance(name: str, vrid: int, vips: str, *, priority: int = 150, extra: str = "",
             interface: str = "lan0") -> str:
    lines = "\n".join(f"        {v} dev {interface}" for v in vips.split())
    return f"""
vrrp_instance {name} {{
    interface {interface}
    virtual_router_id {vrid}
    priority {priority}
    advert_int {INTERVAL}
    {extra}
    virtual_ipaddress {{
{lines}
    }}
}}
"""


HEAD = "global_defs {\n    vrrp_version 3\n}\n"
VI_1 = instance("VI_1", 51, "198.51.100.100/32")
VI_2 = instance("VI_2", 52, "198.51.100.101/32")
BOTH = HEAD + VI_1 + VI_2


@pytest.fixture
def kernel(monkeypatch) -> FakeKernel:
    return FakeKernel().install(monkeypatch)


@contextlib.asynccontextmanager
async def running(vrrp: Vrrp):
    async with anyio.create_task_group() as tg:
        await tg.start(vrrp.run)
        yield vrrp
        tg.cancel_scope.cancel()


def subsystem(tmp_path, text: str = BOTH) -> tuple[Vrrp, Log]:
    """The subsystem on ``text``, not yet running."""
    log = Log()
    return Vrrp(load_config(tmp_path, text), log), log


def states(vrrp: Vrrp) -> dict[str, str]:
    return {inst.plan.name: inst.router.state.value for inst in vrrp.instances}


def gaps(kernel: FakeKernel, vrid: int, since: float, until: float) -> set[float]:
    """The distinct gaps (µs-rounded) between the non-zero-priority adverts of ``vrid`` in a window."""
    times = [s.t for s in kernel.adverts(vrid, since) if s.priority and s.t <= until]
    return {round(b - a, 6) for a, b in zip(times, times[1:])}


def advert(vrid: int, priority: int, *vips: str) -> Advertisement:
    return Advertisement(3, ADVERTISEMENT, vrid, priority, len(vips), 0, 10, 0, tuple(ip(v) for v in vips), b"")


# -- unchanged ------------------------------------------------------------------------------------------

@pytest.mark.anyio
@pytest.mark.parametrize("text", [BOTH, "# a comment moves every span\n\n" + BOTH], ids=["same", "comment"])
async def test_an_unchanged_config_touches_nothing(tmp_path, kernel, text):
    vrrp, log = subsystem(tmp_path)
    async with running(vrrp):
        await anyio.sleep(1)
        assert states(vrrp) == {"VI_1": "MASTER", "VI_2": "MASTER"}
        routers = [inst.router for inst in vrrp.instances]
        calls, lines = len(kernel.calls), len(log.lines)
        before = anyio.current_time()
        for _ in range(50):
            assert await vrrp.reconfigure(load_config(tmp_path, text)) is None
            await anyio.sleep(0.013)
        await anyio.sleep(0.5)
        assert kernel.calls[calls:] == [] and log.lines[lines:] == []  # no netlink call, not a log line
        assert [inst.router for inst in vrrp.instances] == routers
        assert all(inst.router.stats.transitions == 2 for inst in vrrp.instances)  # INIT → BACKUP → MASTER
        for vrid in (51, 52):
            assert gaps(kernel, vrid, before - INTERVAL, anyio.current_time()) == {INTERVAL}


# -- changed ---------------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_a_changed_master_keeps_state_and_timers_and_changes_only_what_differs(tmp_path, kernel):
    vrrp, log = subsystem(tmp_path)
    async with running(vrrp):
        await anyio.sleep(1)
        vi1, vi2 = vrrp.instances
        vrrp.set_priority_delta("VI_1", "script:chk", -10)
        vrrp.set_fault("VI_1", "script:other", None)
        await anyio.sleep(0.05)
        calls, t = len(kernel.calls), anyio.current_time()
        new = HEAD + instance("VI_1", 51, "198.51.100.100/32 198.51.100.102/32", priority=120) + VI_2
        assert await vrrp.reconfigure(load_config(tmp_path, new)) is None
        assert kernel.ops(calls) == [("add address", "198.51.100.102/32")]
        await anyio.sleep(1)
        assert vrrp.instances == [vi1, vi2] and states(vrrp) == {"VI_1": "MASTER", "VI_2": "MASTER"}
        assert vi1.router.stats.transitions == 2
        assert vi1.router.priority_deltas == {"script:chk": -10} and vi1.router.priority == 110
        after = [s for s in kernel.adverts(51, t)]
        assert {s.priority for s in after[1:]} == {110}
        assert set(after[-1].advert.addresses) == {ip("198.51.100.100"), ip("198.51.100.102")}
        for vrid in (51, 52):
            assert gaps(kernel, vrid, t - INTERVAL, anyio.current_time()) == {INTERVAL}
        garps = [f for tf, _, f in kernel.frames if tf >= t]
        assert len(garps) == 5 and all(ip("198.51.100.102").packed in f for f in garps)
        assert "(VI_1) reload: adding VIP 198.51.100.102/32" in log.events("info")
        snap = {i["name"]: i for i in vrrp.snapshot()["instances"]}
        assert snap["VI_1"]["base_priority"] == 120 and snap["VI_1"]["effective_priority"] == 110


@pytest.mark.anyio
async def test_a_changed_backup_gets_no_netlink_call(tmp_path, kernel):
    vrrp, _ = subsystem(tmp_path, HEAD + VI_1)
    async with running(vrrp):
        for _ in range(20):  # a peer with priority 200 is master
            kernel.deliver("lan0", advert(51, 200, "198.51.100.100"), "198.51.100.12")
            await anyio.sleep(INTERVAL)
        assert states(vrrp) == {"VI_1": "BACKUP"}
        calls = len(kernel.calls)
        new = HEAD + instance("VI_1", 51, "198.51.100.100/32 198.51.100.102/32", priority=100)
        assert await vrrp.reconfigure(load_config(tmp_path, new)) is None
        assert kernel.ops(calls) == [] and states(vrrp) == {"VI_1": "BACKUP"}
        assert vrrp.instances[0].router.base_priority == 100


@pytest.mark.anyio
async def test_a_rename_keeps_the_instance_and_tracking_follows_the_new_name(tmp_path, kernel):
    vrrp, log = subsystem(tmp_path)
    async with running(vrrp):
        await anyio.sleep(1)
        vi1 = vrrp.instances[0]
        vrrp.set_priority_delta("VI_1", "script:chk", -20)
        await anyio.sleep(0.05)
        calls, t = len(kernel.calls), anyio.current_time()
        assert await vrrp.reconfigure(load_config(tmp_path, BOTH.replace("VI_1", "WEB"))) is None
        assert kernel.ops(calls) == []
        assert vrrp.instances[0] is vi1 and vi1.plan.name == "WEB" and vi1.router.config.name == "WEB"
        assert vi1.router.state is State.MASTER and vi1.router.priority_deltas == {"script:chk": -20}
        assert "(WEB) was VI_1: renamed by the reload" in log.events("info")
        vrrp.set_priority_delta("WEB", "script:chk", -30)
        vrrp.set_fault("VI_1", "script:chk", "gone")  # the old name: ignored
        await anyio.sleep(0.5)
        assert vi1.router.priority == 120 and vi1.router.faults == {}
        assert "no vrrp_instance VI_1; SetFault ignored" in log.events("warning")
        assert [i["name"] for i in vrrp.snapshot()["instances"]] == ["WEB", "VI_2"]
        assert gaps(kernel, 51, t - INTERVAL, anyio.current_time()) == {INTERVAL}


@pytest.mark.anyio
async def test_unicast_peers_change_the_port_membership(tmp_path, kernel):
    unicast = "check_unicast_src\n    unicast_src_ip 198.51.100.11\n    unicast_peer {\n        198.51.100.12\n    }"
    vrrp, _ = subsystem(tmp_path, HEAD + instance("VI_1", 51, "198.51.100.100/32", extra=unicast))
    async with running(vrrp):
        await anyio.sleep(1)
        port = vrrp.ports[("lan0", 4)]
        new = HEAD + instance("VI_1", 51, "198.51.100.100/32", extra=unicast.replace(".12", ".13"))
        assert await vrrp.reconfigure(load_config(tmp_path, new)) is None
        t = anyio.current_time()
        await anyio.sleep(0.35)
        assert {s.dst for s in kernel.adverts(51, t)} == {ip("198.51.100.13")}
        vi1 = vrrp.instances[0]
        assert vi1.member.peers == {ip("198.51.100.13")} and port._members[51] == [vi1.member]
        assert vi1.router.config.unicast_peers == (ip("198.51.100.13"),)
        # check_unicast_src: the router now takes adverts from the new peer only.
        kernel.deliver("lan0", advert(51, 100, "198.51.100.100"), "198.51.100.12", dst="198.51.100.11")
        kernel.deliver("lan0", advert(51, 100, "198.51.100.100"), "198.51.100.13", dst="198.51.100.11")
        await anyio.sleep(0.01)
        assert dict(vi1.router.stats.discarded) == {Discard.UNICAST_SOURCE: 1}


@pytest.mark.anyio
async def test_a_new_multicast_group_is_joined_on_the_open_socket(tmp_path, kernel):
    vrrp, _ = subsystem(tmp_path, HEAD + VI_1)
    async with running(vrrp):
        await anyio.sleep(0.5)
        sock = kernel.socket("lan0")
        new = HEAD + instance("VI_1", 51, "198.51.100.100/32", extra="mcast_dst_ip 224.0.0.19")
        assert await vrrp.reconfigure(load_config(tmp_path, new)) is None
        assert ip("224.0.0.19") in sock.groups and not sock.closed
        t = anyio.current_time()
        await anyio.sleep(0.25)
        assert {s.dst for s in kernel.adverts(51, t)} == {ip("224.0.0.19")}


@pytest.mark.anyio
async def test_accept_mode_change_of_a_master(tmp_path, kernel):
    vrrp, _ = subsystem(tmp_path, HEAD + VI_1)
    async with running(vrrp):
        await anyio.sleep(1)
        calls = len(kernel.calls)
        new = HEAD + instance("VI_1", 51, "198.51.100.100/32", extra="no_accept")
        assert await vrrp.reconfigure(load_config(tmp_path, new)) is None
        # The firewall is opened for the first instance that needs it, then the VIP is blocked.
        assert kernel.ops(calls) == [("open firewall", ""), ("block", "VI_1 ['198.51.100.100']")]
        calls = len(kernel.calls)
        assert await vrrp.reconfigure(load_config(tmp_path, HEAD + VI_1)) is None
        assert kernel.ops(calls) == [("unblock", "VI_1")]


# -- removed ---------------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_a_removed_master_stops_as_on_sigterm_and_the_other_is_not_touched(tmp_path, kernel):
    vrrp, log = subsystem(tmp_path, HEAD + VI_1 + instance("VI_3", 53, "203.0.113.100/32", interface="lan1"))
    async with running(vrrp):
        await anyio.sleep(1)
        vi1, vi3 = vrrp.instances
        assert kernel.open_sockets() == [("lan0", 4), ("lan1", 4)]
        calls, t = len(kernel.calls), anyio.current_time()
        assert await vrrp.reconfigure(load_config(tmp_path, HEAD + VI_1)) is None
        assert kernel.ops(calls) == [("delete address", "203.0.113.100/32")]
        [goodbye] = [s for s in kernel.adverts(53, t)]
        assert goodbye.priority == 0 and goodbye.ifname == "lan1"
        assert vi3.done.is_set() and vi3.router.state is State.INITIALIZE
        assert kernel.open_sockets() == [("lan0", 4)] and ("lan1", 4) not in vrrp.ports  # port closed
        assert "(VI_3) sent 0 priority" in log.events("info")
        await anyio.sleep(1)
        assert vrrp.instances == [vi1] and vi1.router.state is State.MASTER
        assert gaps(kernel, 51, t - INTERVAL, anyio.current_time()) == {INTERVAL}
        assert [i["name"] for i in vrrp.snapshot()["instances"]] == ["VI_1"]
        vrrp.set_fault("VI_3", "script:chk", "down")  # a removed instance: ignored
        assert "no vrrp_instance VI_3; SetFault ignored" in log.events("warning")


@pytest.mark.anyio
async def test_removing_one_of_two_instances_on_a_port_keeps_the_socket(tmp_path, kernel):
    vrrp, _ = subsystem(tmp_path)
    async with running(vrrp):
        await anyio.sleep(1)
        sock = kernel.socket("lan0")
        calls, t = len(kernel.calls), anyio.current_time()
        assert await vrrp.reconfigure(load_config(tmp_path, HEAD + VI_1)) is None
        assert kernel.ops(calls) == [("delete address", "198.51.100.101/32")]
        assert not sock.closed and kernel.open_sockets() == [("lan0", 4)]
        await anyio.sleep(0.5)
        assert gaps(kernel, 51, t - INTERVAL, anyio.current_time()) == {INTERVAL}
        # VI_2's adverts are now unknown to this host.
        port = vrrp.ports[("lan0", 4)]
        kernel.deliver("lan0", advert(52, 100, "198.51.100.101"), "198.51.100.12")
        await anyio.sleep(0.01)
        assert port.stats.unknown_vrid == 1


# -- added -----------------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_an_added_instance_starts_like_at_start_up(tmp_path, kernel):
    vrrp, log = subsystem(tmp_path, HEAD + VI_1)
    async with running(vrrp):
        await anyio.sleep(1)
        vi1 = vrrp.instances[0]
        calls, t = len(kernel.calls), anyio.current_time()
        vi3 = instance("VI_3", 53, "203.0.113.100/32", interface="lan1")
        assert await vrrp.reconfigure(load_config(tmp_path, HEAD + VI_1 + vi3)) is None
        # Its interface was read, its socket opened, stale VIPs released (it starts in BACKUP).
        assert kernel.calls[calls:] == [("read interface", "lan1"), ("delete address", "203.0.113.100/32")]
        assert kernel.open_sockets() == [("lan0", 4), ("lan1", 4)]
        assert "(VI_3) Entering BACKUP STATE (init)" in log.events("info")
        await anyio.sleep(1)
        assert states(vrrp) == {"VI_1": "MASTER", "VI_3": "MASTER"} and vrrp.instances[0] is vi1
        assert kernel.adverts(53)[0].ifname == "lan1"
        assert gaps(kernel, 51, t - INTERVAL, anyio.current_time()) == {INTERVAL}
        # The new port has a reader: a higher-priority master on lan1 is heard.
        for _ in range(5):
            kernel.deliver("lan1", advert(53, 200, "203.0.113.100"), "203.0.113.12")
            await anyio.sleep(INTERVAL)
        assert states(vrrp)["VI_3"] == "BACKUP"


@pytest.mark.anyio
async def test_a_version_change_restarts_the_instance(tmp_path, kernel):
    vrrp, log = subsystem(tmp_path, HEAD + VI_1)
    async with running(vrrp):
        await anyio.sleep(1)
        old = vrrp.instances[0]
        t = anyio.current_time()
        v2 = "global_defs {\n    vrrp_version 2\n}\n" + VI_1.replace(f"advert_int {INTERVAL}", "advert_int 1")
        assert await vrrp.reconfigure(load_config(tmp_path, v2)) is None
        assert "(VI_1) restarted by the reload: VRRP version 3 -> 2" in log.events("info")
        assert old.done.is_set() and [s.priority for s in kernel.adverts(51, t)] == [0]
        new = vrrp.instances[0]
        assert new is not old and new.router.config.version == 2 and new.router.state is State.BACKUP


# -- what does not apply --------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_a_config_that_cannot_run_is_refused_and_nothing_changes(tmp_path, kernel):
    vrrp, _ = subsystem(tmp_path)
    async with running(vrrp):
        await anyio.sleep(0.5)
        calls = len(kernel.calls)
        # keepalived runs it; pyvrrpd cannot (the root's check refuses it before; this is the guard).
        bad = BOTH.replace("advert_int", "virtual_routes {\n        203.0.113.0/24 dev lan0 realms 5\n    }\n"
                           "    advert_int", 1)
        why = await vrrp.reconfigure(load_config(tmp_path, bad))
        assert why is not None and "virtual_routes" in why
        assert kernel.calls[calls:] == [] and [i.plan.name for i in vrrp.instances] == ["VI_1", "VI_2"]


@pytest.mark.anyio
async def test_changes_need_a_running_subsystem(tmp_path, kernel):
    vrrp, _ = subsystem(tmp_path)
    assert await vrrp.reconfigure(load_config(tmp_path, BOTH)) is None  # nothing to do
    assert await vrrp.reconfigure(load_config(tmp_path, HEAD + VI_1)) == "the VRRP subsystem is not running"
    assert [i.plan.name for i in vrrp.instances] == ["VI_1", "VI_2"]
