"""Differential test against keepalived 2.2.7 (test-environment.md §9), inside the VM.

For every config in tests/kernel/configs: pyvrrpd's subsystem programs a fresh table from the config
and a fixed health map, then keepalived (checker process only) programs a fresh table from the same
config with checkers that give the same verdicts (MISC_CHECK /bin/false fails, /bin/true passes,
``misc_dynamic`` with ``exit N`` gives weight N-2, HTTP_GET/TCP_CHECK reach real web servers in
namespaces). ``ipvsadm -Sn`` must be identical.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from pyvrrpd.config import model as m
from pyvrrpd.config.load import load
from pyvrrpd.lvs import table as t
from pyvrrpd.lvs.reconciler import LvsSubsystem
from tests.kernel.guest.helpers import flush, saved, sh

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.conf"))
SETTLE_TIMEOUT = 25.0


def verdict(rs: m.RealServer) -> t.RsHealth:
    """The health keepalived's checkers will find for this real server (see the module docstring)."""
    weight = None
    for ck in rs.checkers:
        if isinstance(ck, m.MiscCheck):
            argv = ck.script.argv
            if argv[0] == "/bin/false":
                return t.RsHealth(False)
            code = re.fullmatch(r"exit (\d+)", argv[-1]) if argv[0] == "/bin/sh" else None
            if ck.dynamic and code and int(code.group(1)) >= 2:
                weight = int(code.group(1)) - 2
    return t.RsHealth(True, weight)


@pytest.fixture(scope="module")
def web_servers(tmp_path_factory):
    """Namespaces rs1/rs2 (203.0.113.11/.12) with busybox httpd, on a bridge with the director (here)."""
    root = tmp_path_factory.mktemp("www")
    (root / "index.html").write_text("hello from a real server\n")
    procs = []
    sh("ip", "link", "add", "br0", "type", "bridge")
    sh("ip", "addr", "add", "203.0.113.1/24", "dev", "br0")
    sh("ip", "link", "set", "br0", "up")
    try:
        for i in (1, 2):
            ns, addr = f"rs{i}", f"203.0.113.1{i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", f"v{i}", "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", f"{addr}:80",
                                           "-h", str(root)]))
        for addr in ("203.0.113.11", "203.0.113.12"):
            for _ in range(100):
                try:
                    socket.create_connection((addr, 80), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise AssertionError(f"web server {addr} never answered")
        yield
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        for i in (1, 2):
            sh("ip", "netns", "del", f"rs{i}", check=False)
        sh("ip", "link", "del", "br0", check=False)


@pytest.fixture(autouse=True)
def clean():
    flush()
    yield
    flush()


def pyvrrpd_table(config: m.Config) -> list[str]:
    lvs = LvsSubsystem(config)
    for rs_id, vs, rs in t.rs_ids(config.virtual_servers):
        lvs.health[rs_id] = verdict(rs)
    seen: dict[str, list[str]] = {}

    async def main():
        async with anyio.create_task_group() as tg:
            await tg.start(lvs.run)
            seen["table"] = saved()
            tg.cancel_scope.cancel()

    asyncio.run(main())
    assert lvs.kernel and lvs.counters.errors == 0, lvs.snapshot()
    assert saved() == [], "pyvrrpd left entries behind on stop"
    return seen["table"]


def keepalived_table(conf: Path, tmp: Path, expected: list[str]) -> list[str]:
    test = subprocess.run(["keepalived", "-t", "-f", str(conf)], capture_output=True, text=True, timeout=60)
    assert test.returncode == 0, f"keepalived -t refuses {conf.name}: {test.stderr}"
    log = open(tmp / "keepalived.log", "w")
    proc = subprocess.Popen(["keepalived", "-n", "-l", "-D", "-C", "-f", str(conf), "-p", str(tmp / "ka.pid"),
                             "-c", str(tmp / "ka-check.pid")], stdout=log, stderr=subprocess.STDOUT)
    try:
        got: list[str] = []
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            got = saved()
            if got == expected:
                time.sleep(1.5)  # and it stays so (no late change)
                got = saved()
                break
            time.sleep(0.25)
        return got
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.mark.parametrize("conf", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_same_table_as_keepalived(conf, tmp_path, web_servers):
    loaded = load(str(conf), host_checks=False)
    assert loaded.ok, [str(x) for x in loaded.diagnostics]
    ours = pyvrrpd_table(loaded.config)
    assert ours, "pyvrrpd programmed nothing"
    theirs = keepalived_table(conf, tmp_path, ours)
    log = (tmp_path / "keepalived.log").read_text()
    assert theirs == ours, (f"{conf.name}: keepalived's table differs\n--- keepalived\n" + "\n".join(theirs)
                            + "\n--- pyvrrpd\n" + "\n".join(ours) + "\n--- keepalived log\n" + log[-3000:])
    assert os.path.exists(tmp_path / "keepalived.log")
