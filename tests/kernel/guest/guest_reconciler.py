"""The LVS subsystem driving the real kernel (runs inside the VM)."""

from __future__ import annotations

import asyncio
import textwrap
from ipaddress import ip_address as ip
from pathlib import Path

import anyio
import pytest

from pyvrrpd.config.load import load
from pyvrrpd.lvs import diff as d
from pyvrrpd.lvs.ipvs import KernelIpvs
from pyvrrpd.lvs.reconciler import LvsSubsystem
from pyvrrpd.lvs.table import RsId
from tests.kernel.guest.helpers import flush, saved, sh

CONF = """
virtual_server 198.51.100.100 80 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 203.0.113.11 80 {
        weight 3
        MISC_CHECK { misc_path /bin/true }
    }
    real_server 203.0.113.12 80 {
        weight 2
        inhibit_on_failure
        MISC_CHECK { misc_path /bin/true }
    }
}
virtual_server fwmark 5 {
    lb_algo rr
    lb_kind DR
    real_server 203.0.113.21 { }
}
"""
VS = "TCP 198.51.100.100:80"
ID11, ID12 = RsId(VS, ip("203.0.113.11"), 80), RsId(VS, ip("203.0.113.12"), 80)
OURS = sorted([
    "-A -t 198.51.100.100:80 -s wrr",
    "-a -t 198.51.100.100:80 -r 203.0.113.11:80 -m -w 3",
    "-a -t 198.51.100.100:80 -r 203.0.113.12:80 -m -w 2",
    "-A -f 5 -s rr",
    "-a -f 5 -r 203.0.113.21:0 -g -w 1",
])


@pytest.fixture(autouse=True)
def clean():
    flush()
    yield
    flush()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(CONF))
    loaded = load(str(path), host_checks=False)
    assert loaded.ok, loaded.diagnostics
    return loaded.config


class Watched:
    """The kernel port, checked after every operation: the given lines must never be missing."""

    def __init__(self, port: KernelIpvs, must_stay: list[str]) -> None:
        self.port, self.must_stay, self.ops = port, must_stay, []

    async def dump(self):
        return await self.port.dump()

    async def apply(self, op):
        await self.port.apply(op)
        self.ops.append(op)
        now = saved()
        missing = [line for line in self.must_stay if line not in now]
        assert not missing, f"after {op}: {missing} missing"

    async def apply_many(self, ops):
        results = []
        for op in ops:  # one at a time, to look at the kernel's table after each
            await self.apply(op)
            results.append(None)
        return results

    async def close(self):
        await self.port.close()


async def running(lvs, body):
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        try:
            await body()
        finally:
            tg.cancel_scope.cancel()


def go(lvs, body=None):
    async def nothing():
        return None

    asyncio.run(running(lvs, body or nothing))


def test_programs_an_empty_table_and_removes_it_on_stop(config):
    seen = {}

    async def open_port():
        return Watched(await KernelIpvs.open(), [])

    lvs = LvsSubsystem(config, open_port=open_port)

    async def body():
        seen["table"] = saved()
        lvs._port.ops.clear()

    go(lvs, body)
    assert seen["table"] == OURS
    # the kernel's DEL_SERVICE deletes the service's destinations with it: one operation per service
    assert sorted(map(str, lvs._port.ops)) == ["delete service FWM 5", "delete service TCP 198.51.100.100:80"]
    assert saved() == []


def test_adopts_an_existing_table_without_a_moment_missing(config):
    for line in OURS:
        sh("ipvsadm", *line.split())
    sh("ipvsadm", "-e", "-t", "198.51.100.100:80", "-r", "203.0.113.12:80", "-m", "-w", "9")  # stale weight
    must_stay = [line for line in OURS if "203.0.113.12" not in line]

    async def body():
        watched = lvs._port
        assert [type(op) for op in watched.ops] == [d.EditDest]  # one in-place edit, nothing removed
        assert saved() == OURS
        watched.must_stay = []  # stopping removes everything

    async def open_port():
        return Watched(await KernelIpvs.open(), must_stay)

    lvs = LvsSubsystem(config, open_port=open_port)
    go(lvs, body)


def test_weight_edit_is_one_in_place_operation(config):
    async def open_port():
        return Watched(await KernelIpvs.open(), [])

    lvs = LvsSubsystem(config, open_port=open_port)

    async def body():
        lvs._port.ops.clear()
        lvs.set_health(ID11, True, weight=7)  # MISC_CHECK misc_dynamic
        await anyio.sleep(0.5)
        assert [str(op) for op in lvs._port.ops] == ["edit 203.0.113.11:80 Masq 7 of TCP 198.51.100.100:80"]
        assert "-a -t 198.51.100.100:80 -r 203.0.113.11:80 -m -w 7" in saved()
        lvs.set_health(ID12, False)  # inhibit_on_failure: weight 0
        lvs.set_health(ID11, False)  # removed
        await anyio.sleep(0.5)
        now = saved()
        assert "-a -t 198.51.100.100:80 -r 203.0.113.12:80 -m -w 0" in now
        assert not any("203.0.113.11" in line for line in now)

    go(lvs, body)


def test_ipvsadm_d_behind_its_back_is_repaired(config):
    lvs = LvsSubsystem(config, resync_interval=1.0)

    async def body():
        sh("ipvsadm", "-d", "-t", "198.51.100.100:80", "-r", "203.0.113.11:80")
        sh("ipvsadm", "-D", "-f", "5")
        for _ in range(50):
            await anyio.sleep(0.2)
            if saved() == OURS:
                break
        assert saved() == OURS
        assert lvs.counters.repairs >= 3

    go(lvs, body)


def test_entries_it_does_not_own_are_untouched(config):
    sh("ipvsadm", "-A", "-t", "198.51.100.200:443", "-s", "sh")
    sh("ipvsadm", "-a", "-t", "198.51.100.200:443", "-r", "203.0.113.11:443", "-g", "-w", "4")
    sh("ipvsadm", "-A", "-t", "198.51.100.100:80", "-s", "wrr")
    sh("ipvsadm", "-a", "-t", "198.51.100.100:80", "-r", "203.0.113.77:80", "-m", "-w", "5")  # in our service
    foreign = ["-A -t 198.51.100.200:443 -s sh", "-a -t 198.51.100.200:443 -r 203.0.113.11:443 -g -w 4",
               "-a -t 198.51.100.100:80 -r 203.0.113.77:80 -m -w 5"]

    async def body():
        now = saved()
        assert all(line in now for line in foreign + OURS)

    go(LvsSubsystem(config, resync_interval=0.5), body)
    # on stop only ours went; our service stays for the foreign destination in it
    assert saved() == sorted(foreign + ["-A -t 198.51.100.100:80 -s wrr"])


def test_keeps_the_table_when_told_to(config):
    go(LvsSubsystem(config, release_on_stop=False))
    assert saved() == OURS


def test_the_module_path_is_the_worktree():
    assert Path(d.__file__).resolve().is_relative_to(Path(__file__).resolve().parents[3])
