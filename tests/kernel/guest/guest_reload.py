"""SIGHUP on a whole `pyvrrpd -C` driving the real kernel's IPVS table (runs inside the VM).

One daemon, one config, one reload with an edited config (a weight changed, a real server and a virtual
server removed, others added, a failed real server left as it is), then one reload with a broken config.
While the reloads happen the test samples /proc/net/ip_vs as fast as it can: the healthy real servers
that stay in the config must be there in every sample.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tests.kernel.guest.helpers import flush, saved

ROOT = Path(__file__).resolve().parents[3]
VS1, VS2, VS3 = "198.51.100.100:80", "198.51.100.101:443", "198.51.100.102:80"


def real_server(address: str, port: int, weight: int, check_port: int) -> str:
    return f"""
    real_server {address} {port} {{
        weight {weight}
        TCP_CHECK {{
            connect_ip 127.0.0.1
            connect_port {check_port}
            connect_timeout 1
            retry 0
        }}
    }}"""


def virtual_server(vs: str, *servers: str) -> str:
    address, port = vs.split(":")
    return (f"virtual_server {address} {port} {{\n    delay_loop 1\n    lb_algo wrr\n    lb_kind NAT\n"
            f"    protocol TCP\n{''.join(servers)}\n}}\n")


def ip_vs() -> set[tuple[str, str, int]]:
    """(service, real server, weight) of every destination, read from /proc/net/ip_vs (no process to start:
    fast enough to sample while the daemon reloads)."""
    out = set()
    service = ""
    with open("/proc/net/ip_vs") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] in ("TCP", "UDP"):
                service = _hexaddr(fields[1])
            elif fields and fields[0] == "->" and ":" in fields[1] and fields[1] != "RemoteAddress:Port":
                out.add((service, _hexaddr(fields[1]), int(fields[3])))
    return out


def _hexaddr(text: str) -> str:
    addr, port = text.split(":")
    return f"{IPv4Address(int(addr, 16))}:{int(port, 16)}"


def wait(condition, what: str, timeout: float, samples: list | None = None):
    """Poll /proc/net/ip_vs until condition(table) holds; every sample is kept in ``samples``."""
    deadline = time.monotonic() + timeout
    while True:
        table = ip_vs()
        if samples is not None:
            samples.append(table)
        if condition(table):
            return table
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s; table {sorted(table)}\n{daemon_log()}")
        time.sleep(0.01)


LOG: list[Path] = []


def events(log: Path, after: str) -> list[dict]:
    """The daemon's JSON log lines from the last one whose event is ``after``."""
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == after:
            lines = []
        lines.append(entry)
    return lines


def daemon_log() -> str:
    return LOG[0].read_text(errors="replace")[-3000:] if LOG and LOG[0].exists() else ""


@pytest.fixture
def listeners():
    socks = []
    for _ in range(4):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1024)
        socks.append(s)
    yield [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()


@pytest.fixture(autouse=True)
def clean():
    flush()
    yield
    flush()


def test_sighup_applies_the_difference_without_a_healthy_real_server_leaving(tmp_path, listeners):
    up1, up2, up3, up4 = listeners
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    down = dead.getsockname()[1]
    dead.close()  # nothing listens there: its checks are refused
    conf, pid_file, log = tmp_path / "keepalived.conf", tmp_path / "pyvrrpd.pid", tmp_path / "pyvrrpd.log"
    conf.write_text(
        virtual_server(VS1, real_server("203.0.113.11", 80, 1, up1), real_server("203.0.113.12", 80, 2, up2),
                       real_server("203.0.113.13", 80, 1, down), real_server("203.0.113.14", 80, 1, up3))
        + virtual_server(VS2, real_server("203.0.113.21", 443, 1, up4)))
    LOG[:] = [log]
    argv = [sys.executable, "-m", "pyvrrpd", "-C", "-f", str(conf), "-p", str(pid_file), "--control-socket",
            "none", "--log-format", "json", "--dump-dir", str(tmp_path)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
    t0 = time.monotonic()
    try:
        # a Python start under TCG takes seconds: the daemon is up once it wrote its pid file
        while not (pid_file.exists() and pid_file.read_text().strip() == str(proc.pid)):
            assert proc.poll() is None and time.monotonic() - t0 < 120, log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        print(f"daemon started in {time.monotonic() - t0:.1f} s")
        start = {(VS1, "203.0.113.11:80", 1), (VS1, "203.0.113.12:80", 2), (VS1, "203.0.113.14:80", 1),
                 (VS2, "203.0.113.21:443", 1)}
        wait(lambda t: t == start, "the table programmed and the dead real server out", 30)

        # .12's weight 2 -> 5, .14 removed, .15 added, the second virtual server replaced by a third; .13 still dead
        conf.write_text(
            virtual_server(VS1, real_server("203.0.113.11", 80, 1, up1), real_server("203.0.113.12", 80, 5, up2),
                           real_server("203.0.113.13", 80, 1, down), real_server("203.0.113.15", 80, 1, up3))
            + virtual_server(VS3, real_server("203.0.113.31", 80, 1, up4)))
        samples: list[set] = []
        os.kill(proc.pid, signal.SIGHUP)
        after = {(VS1, "203.0.113.11:80", 1), (VS1, "203.0.113.12:80", 5), (VS1, "203.0.113.15:80", 1),
                 (VS3, "203.0.113.31:80", 1)}
        wait(lambda t: t == after, "the reload applied", 20, samples)
        settle = time.monotonic() + 3  # three more rounds of checks: .13 stays out, nobody leaves
        wait(lambda t: time.monotonic() > settle, "", 10, samples)
        for table in samples:
            served = {rs for vs, rs, _ in table if vs == VS1}
            assert {"203.0.113.11:80", "203.0.113.12:80"} <= served, f"a healthy real server left: {sorted(table)}"
            assert "203.0.113.13:80" not in served, "the failed real server was re-added by the reload"
            assert (VS1, "203.0.113.12:80", 2) in table or (VS1, "203.0.113.12:80", 5) in table
        assert samples[-1] == after
        # and between two samples: what the daemon did to the kernel on reload, from its own log
        done = [e["event"] for e in events(log, after="Reloading") if e.get("reason") == "change"]
        assert "edit 203.0.113.12:80 Masq 5 of TCP 198.51.100.100:80" in done, done
        assert not [e for e in done if e.split(" ")[0] in ("add", "delete") and
                    e.split(" ")[1] in ("203.0.113.11:80", "203.0.113.12:80", "203.0.113.13:80")], done
        assert "delete 203.0.113.14:80 from TCP 198.51.100.100:80" in done, done
        assert sorted(saved()) == sorted([
            "-A -t 198.51.100.100:80 -s wrr", "-a -t 198.51.100.100:80 -r 203.0.113.11:80 -m -w 1",
            "-a -t 198.51.100.100:80 -r 203.0.113.12:80 -m -w 5", "-a -t 198.51.100.100:80 -r 203.0.113.15:80 -m -w 1",
            "-A -t 198.51.100.102:80 -s wrr", "-a -t 198.51.100.102:80 -r 203.0.113.31:80 -m -w 1"])

        # a broken config: the running one stays, the table is not touched
        conf.write_text("virtual_server 198.51.100.100 80 {\n    lb_algo\n")
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while b"keeping the running configuration" not in log.read_bytes():
            assert time.monotonic() < deadline and proc.poll() is None, daemon_log()
            time.sleep(0.05)
        assert ip_vs() == after and proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, daemon_log()
    assert saved() == [], "pyvrrpd left entries behind on stop"
    assert "Traceback" not in log.read_text(errors="replace"), daemon_log()
