"""The VRRP subsystem without the kernel: built from a config, fed through TrackSink, link checks, snapshot."""

from __future__ import annotations

import ipaddress
import json
import textwrap
from types import SimpleNamespace

import anyio
import pytest

from pyvrrpd.config.load import load
from pyvrrpd.core.actions import State
from pyvrrpd.daemon.instance import Reconfigure, SetFault, SetPriorityDelta
from pyvrrpd.daemon.subsystem import Subsystem, TrackSink
from pyvrrpd.daemon.vrrp import Vrrp

from tests.daemon.fakes import Log

ip = ipaddress.ip_address
CONF = """
vrrp_instance VI_1 {
    interface lan0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        198.51.100.100
    }
}
vrrp_instance VI_6 {
    interface lan0
    virtual_router_id 52
    virtual_ipaddress {
        2001:db8:1::100/128
    }
}
"""


def make(tmp_path) -> tuple[Vrrp, Log]:
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(CONF))
    loaded = load(str(path), host_checks=False)
    assert loaded.ok, loaded.diagnostics
    log = Log()
    return Vrrp(loaded.config, log), log


def link(up=True, running=True, ipv4="198.51.100.11", ipv6="fe80::11"):
    return SimpleNamespace(up=up, running=running, ipv4=ip(ipv4) if ipv4 else None,
                           ipv6_link_local=ip(ipv6) if ipv6 else None)


@pytest.mark.anyio
async def test_it_is_a_subsystem_and_a_track_sink(tmp_path):
    vrrp, _ = make(tmp_path)
    for method in ("run", "reconfigure", "snapshot"):
        assert callable(getattr(vrrp, method)) and hasattr(Subsystem, method)
    for method in ("set_fault", "set_priority_delta"):
        assert callable(getattr(vrrp, method)) and hasattr(TrackSink, method)
    assert vrrp.name == "vrrp" and await vrrp.reconfigure(vrrp.config) is None


@pytest.mark.anyio
async def test_snapshot_is_json_and_has_what_each_instance_knows(tmp_path):
    vrrp, _ = make(tmp_path)
    snap = vrrp.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    first, second = snap["instances"]
    assert {k: first[k] for k in ("name", "vrid", "interface", "family", "version", "state", "base_priority",
                                  "effective_priority", "faults", "master_address")} == {
        "name": "VI_1", "vrid": 51, "interface": "lan0", "family": 4, "version": 2, "state": "INIT",
        "base_priority": 150, "effective_priority": 150, "faults": {}, "master_address": None}
    assert (second["name"], second["family"], second["version"]) == ("VI_6", 6, 3)
    counters = first["counters"]
    assert counters["router"]["adverts_rx"] == 0 and counters["router"]["discarded"] == {}
    assert counters["effects"]["adverts_sent"] == 0 and counters["port"]["received"] == 0


@pytest.mark.anyio
async def test_track_sink_before_the_start_decides_the_initial_state(tmp_path):
    vrrp, log = make(tmp_path)
    vrrp.set_fault("VI_1", "script:chk", "exit status 1")
    vrrp.set_priority_delta("VI_6", "file:weight", -30)
    vrrp.set_fault("VI_9", "script:chk", "exit status 1")
    vi1, vi6 = vrrp.instances
    assert vi1.router.faults == {"script:chk": "exit status 1"} and vi6.router.priority == 70
    assert log.events("warning") == ["no vrrp_instance VI_9; SetFault ignored"]
    vi1.router.startup(anyio.current_time())
    assert vi1.router.state is State.FAULT  # "Entering FAULT STATE (init)"
    snap = vrrp.snapshot()["instances"]
    assert snap[0]["faults"] == {"script:chk": "exit status 1"} and snap[1]["effective_priority"] == 70
    assert snap[0]["state"] == "FAULT" and snap[1]["state"] == "INIT"


@pytest.mark.anyio
async def test_track_sink_goes_through_the_inbox_once_the_instance_runs(tmp_path):
    vrrp, _ = make(tmp_path)
    vi1 = vrrp.instances[0]
    vi1.started = True
    vrrp.set_fault("VI_1", "script:chk", None)
    vrrp.set_priority_delta("VI_1", "script:chk", 5)
    assert await vi1.inbox.receive(None) == SetFault("script:chk", None)
    assert await vi1.inbox.receive(None) == SetPriorityDelta("script:chk", 5)
    vi1.inbox.close()
    vrrp.set_fault("VI_1", "script:chk", "gone")  # a stopped instance: nothing to do, no error


@pytest.mark.anyio
async def test_link_check_sets_the_source_and_the_link_fault(tmp_path):
    vrrp, log = make(tmp_path)
    vi1, vi6 = vrrp.instances
    for inst, iface in ((vi1, link(ipv4=None)), (vi6, link())):
        vrrp._set_link_problem(inst, await vrrp._check(inst, iface, None))
    assert vi1.router.faults == {"link:lan0": "interface lan0 has no IPv4 address to send adverts from"}
    assert vi6.router.faults == {} and vi6.router.config.source == ip("fe80::11")
    assert vi6.effects.source == ip("fe80::11")
    assert log.events("warning") == ["(VI_1) interface lan0 has no IPv4 address to send adverts from"]
    assert "(VI_6) advert source address fe80::11" in log.events("info")
    # Running: a new address reconfigures the router through the inbox, the fault clears the same way.
    vi1.started = True
    vrrp._set_link_problem(vi1, await vrrp._check(vi1, link(ipv4="198.51.100.21"), None))
    assert await vi1.inbox.receive(None) == Reconfigure(vi1.plan.with_source(ip("198.51.100.21")))
    assert await vi1.inbox.receive(None) == SetFault("link:lan0", None)
    assert "(VI_1) lan0 is usable again" in log.events("info")
    # The same answer again changes nothing and logs nothing.
    lines = len(log.lines)
    vrrp._set_link_problem(vi1, await vrrp._check(vi1, link(ipv4="198.51.100.21"), None))
    assert len(log.lines) == lines
