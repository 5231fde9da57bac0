"""lvs_sync_daemon: the settings, the decision (pyvrrpd.lvs.syncd) and the subsystem against a fake IPVS."""

from __future__ import annotations

import ipaddress
import textwrap

import anyio
import pytest

from pyvrrpd.config.load import load
from pyvrrpd.daemon.subsystem import TeeNotify
from pyvrrpd.daemon.syncd import SyncDaemon
from pyvrrpd.lvs import wire as w
from pyvrrpd.lvs.ipvs import FakeIpvs
from pyvrrpd.lvs.syncd import BACKUP, MASTER, SyncdConfig, steps, sync_config, wanted
from pyvrrpd.observe import logs

INSTANCE = """
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress { 198.51.100.100 }
}
"""


def _config(tmp_path, line: str):
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(f"global_defs {{\n    {line}\n}}\n{INSTANCE}"))
    loaded = load(str(path), host_checks=False)
    assert loaded.config is not None
    return loaded.config


@pytest.mark.parametrize("line, expected", [
    ("lvs_sync_daemon eth1 VI_1", SyncdConfig("eth1", "VI_1", 51)),
    ("lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8848 ttl 3 group 239.1.2.3",
     SyncdConfig("eth1", "VI_1", 7, 1400, 8848, 3, ipaddress.ip_address("239.1.2.3"))),
    ("lvs_sync_daemon eth1 VI_1 9", SyncdConfig("eth1", "VI_1", 9)),  # legacy: the sync id third
    ("lvs_sync_daemon eth1 inst VI_1 id 300", SyncdConfig("eth1", "VI_1", 51)),  # out of range: the default
    ("lvs_sync_daemon eth1 id 4 inst VI_1 ttl 2", SyncdConfig("eth1", "VI_1", 4, ttl=2)),
])
def test_settings(tmp_path, line, expected):
    assert sync_config(_config(tmp_path, line)) == (expected, [])


def test_an_unknown_instance_clears_the_setting(tmp_path):
    settings, notes = sync_config(_config(tmp_path, "lvs_sync_daemon eth1 VI_9"))
    assert settings is None
    assert notes == ["Unable to find vrrp instance VI_9 for lvs_syncd - clearing lvs_syncd config"]


def test_the_role_follows_the_state_and_the_other_role_stops_first():
    assert [wanted(x) for x in ("MASTER", "BACKUP", "FAULT", "STOP", "DELETED")] == \
        [MASTER, BACKUP, BACKUP, None, None]
    assert steps(frozenset(), BACKUP) == [("start", BACKUP)]
    assert steps(frozenset([BACKUP]), MASTER) == [("stop", BACKUP), ("start", MASTER)]
    assert steps(frozenset([MASTER]), BACKUP) == [("stop", MASTER), ("start", BACKUP)]
    assert steps(frozenset([MASTER]), MASTER) == []
    assert steps(frozenset([MASTER, BACKUP]), None) == [("stop", BACKUP), ("stop", MASTER)]


def test_daemon_messages_encode_and_decode():
    attrs = w.daemon_attrs(1, "eth1", 51, maxlen=1400, port=8848, ttl=3, group=ipaddress.ip_address("239.1.2.3"))
    decoded = w.decode_daemon(w.attrs(w.attrs(attrs)[w.ATTR_DAEMON]))
    assert decoded == {"state": 1, "ifname": "eth1", "syncid": 51, "maxlen": 1400, "port": 8848, "ttl": 3,
                       "group": "239.1.2.3"}
    assert w.attrs(w.attrs(w.daemon_attrs(2))[w.ATTR_DAEMON]).keys() == {w.DAEMON_STATE}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_subsystem_follows_the_instance_and_stops_on_exit(tmp_path):
    config = _config(tmp_path, "lvs_sync_daemon eth1 VI_1 id 5")
    fake = FakeIpvs()
    fake.sync_daemons[2] = {"state": 2, "ifname": "old0", "syncid": 1}  # left by an earlier run
    syncd = SyncDaemon(config, logs.get("test"), port=fake)

    class Other:
        states: list = []

        def notify_state(self, *args):
            self.states.append(args)

        def notify_event(self, *args):
            pass

    tee = TeeNotify(Other(), syncd)

    async def until(cond):
        with anyio.fail_after(5):
            while not cond():
                await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        await tg.start(syncd.run)
        tee.notify_state("INSTANCE", "VI_1", "BACKUP", 100)
        tee.notify_state("INSTANCE", "VI_2", "MASTER", 100)  # another instance: ignored
        await until(lambda: syncd.running == {BACKUP})
        assert await fake.daemons() == [{"state": 2, "ifname": "eth1", "syncid": 5}]  # replaced
        tee.notify_state("INSTANCE", "VI_1", "MASTER", 100)
        await until(lambda: syncd.running == {MASTER})
        assert [d["state"] for d in await fake.daemons()] == [1]
        tee.notify_state("INSTANCE", "VI_1", "FAULT", 0)
        await until(lambda: syncd.running == {BACKUP})
        assert syncd.snapshot()["running"] == [BACKUP] and syncd.snapshot()["instance_state"] == "FAULT"
        tg.cancel_scope.cancel()
    assert fake.sync_daemons == {} and Other.states[0] == ("INSTANCE", "VI_1", "BACKUP", 100)
