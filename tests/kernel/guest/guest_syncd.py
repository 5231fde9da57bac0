"""lvs_sync_daemon on the real kernel (runs inside the VM): the netlink adapter's NEW/DEL/GET_DAEMON checked
with `ipvsadm -L --daemon`, and the subsystem following an instance's states."""

from __future__ import annotations

import asyncio
import ipaddress
import textwrap

import anyio

from pyvrrpd.config.load import load
from pyvrrpd.daemon.syncd import SyncDaemon
from pyvrrpd.lvs.ipvs import KernelIpvs
from pyvrrpd.observe import logs
from tests.kernel.guest.helpers import sh

IFNAME = "syncd0"


def _interface() -> str:
    """A multicast-capable interface with an address for the sync daemons (a dummy link)."""
    sh("ip", "link", "del", IFNAME, check=False)
    sh("ip", "link", "add", IFNAME, "type", "dummy")
    sh("ip", "link", "set", IFNAME, "multicast", "on", "up")
    sh("ip", "addr", "add", "198.51.100.61/24", "dev", IFNAME)
    return IFNAME


def _daemons() -> str:
    return sh("ipvsadm", "-L", "--daemon")


def test_adapter_starts_lists_and_stops_sync_daemons():
    ifname = _interface()

    async def body():
        k = await KernelIpvs.open()
        try:
            await k.start_daemon(1, ifname, 51, port=8848, ttl=2, group=ipaddress.ip_address("239.0.0.81"))
            await k.start_daemon(2, ifname, 52)
            listed = sorted((d["state"], d["ifname"], d["syncid"]) for d in await k.daemons())
            text = _daemons()
            await k.stop_daemon(1)
            await k.stop_daemon(2)
            return listed, text, await k.daemons(), _daemons()
        finally:
            await k.close()

    try:
        listed, text, after, text_after = asyncio.run(body())
    finally:
        sh("ipvsadm", "--stop-daemon", "master", check=False)
        sh("ipvsadm", "--stop-daemon", "backup", check=False)
        sh("ip", "link", "del", IFNAME, check=False)
    assert listed == [(1, ifname, 51), (2, ifname, 52)]
    assert f"master sync daemon (mcast={ifname}, syncid=51" in text
    assert f"backup sync daemon (mcast={ifname}, syncid=52" in text
    assert after == [] and "sync daemon" not in text_after


def test_subsystem_follows_the_instance(tmp_path):
    ifname = _interface()
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(f"""
        global_defs {{
            lvs_sync_daemon {ifname} VI_1 id 9
        }}
        vrrp_instance VI_1 {{
            interface {ifname}
            virtual_router_id 51
            priority 100
            virtual_ipaddress {{ 198.51.100.100 }}
        }}
    """))
    config = load(str(path), host_checks=False).config
    seen = {}

    async def body():
        syncd = SyncDaemon(config, logs.get("test"))

        async def until(cond):
            with anyio.fail_after(30):
                while not cond():
                    await anyio.sleep(0.05)

        async with anyio.create_task_group() as tg:
            await tg.start(syncd.run)
            syncd.notify_state("INSTANCE", "VI_1", "BACKUP", 100)
            await until(lambda: syncd.running == {"backup"})
            seen["backup"] = _daemons()
            syncd.notify_state("INSTANCE", "VI_1", "MASTER", 100)
            await until(lambda: syncd.running == {"master"})
            seen["master"] = _daemons()
            tg.cancel_scope.cancel()
        seen["stopped"] = _daemons()
        seen["errors"] = syncd.counters["errors"]

    try:
        anyio.run(body, backend="asyncio")
    finally:
        sh("ipvsadm", "--stop-daemon", "master", check=False)
        sh("ipvsadm", "--stop-daemon", "backup", check=False)
        sh("ip", "link", "del", IFNAME, check=False)
    assert f"backup sync daemon (mcast={ifname}, syncid=9" in seen["backup"]
    assert "master" not in seen["backup"]
    assert f"master sync daemon (mcast={ifname}, syncid=9" in seen["master"]
    assert "backup" not in seen["master"]
    assert "sync daemon" not in seen["stopped"] and seen["errors"] == 0
