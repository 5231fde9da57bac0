"""A real pyvrrpd in the lab, seen the way an operator and systemd see it: READY/WATCHDOG/RELOADING/STOPPING
on a fake NOTIFY_SOCKET, `pyvrrpd status`, /metrics, the keepalived-style dump files on signals, and garbage
on the control socket that changes nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pyvrrpd.observe import status
from tests.net.lab import wait_for
from tests.net.test_daemon_pair import PYVRRPD, V3, VIP4, Daemon, config, holds, wait_master, MARGIN

pytestmark = pytest.mark.net


class Notifications:
    """A fake systemd: the datagrams the daemon sends to $NOTIFY_SOCKET."""

    def __init__(self, path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[list[str]] = []

    def drain(self) -> list[list[str]]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode().split("\n"))
            except (socket.timeout, BlockingIOError):
                return self.messages

    def wait(self, first_field: str, timeout: float, after: int = 0) -> list[str]:
        def found():
            return next((m for m in self.drain()[after:] if m[0] == first_field), None)
        return wait_for(found, timeout=timeout, what=f"{first_field} on NOTIFY_SOCKET")

    def close(self) -> None:
        self.sock.close()


def _raw(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(data)
        return s.recv(65536)


def test_systemd_status_metrics_and_dumps(lab, tmp_path):
    sd = Notifications(tmp_path / "notify")
    control = str(lab.workdir / "d1.sock")
    dumps = lab.workdir / "dumps"
    dumps.mkdir()
    try:
        d1 = Daemon(lab, "d1", config(lab, "d1", V3, 150), "ops",
                    args=("--control-socket", control, "--dump-dir", str(dumps)),
                    env={"NOTIFY_SOCKET": sd.path, "WATCHDOG_USEC": "400000"})
        ready = sd.wait("READY=1", timeout=10)
        assert "STATUS=notify running, trackers running, vrrp running, control running" in ready
        wait_master(lab, "d1", VIP4, V3.master_down() + MARGIN, d1)

        # pyvrrpd status, as an operator runs it (over the control socket, from outside the namespace)
        out = subprocess.run([PYVRRPD, "status", "--control-socket", control], capture_output=True, text=True,
                             timeout=10)
        assert out.returncode == 0, out.stderr
        row = next(line for line in out.stdout.splitlines() if line.startswith("VI_1"))
        assert row.split()[:5] == ["VI_1", "51", "lan0", "v3/IPv4", "MASTER"]
        snap = json.loads(subprocess.run([PYVRRPD, "status", "--control-socket", control, "--json"],
                                         capture_output=True, text=True, timeout=10, check=True).stdout)
        inst = snap["vrrp"]["instances"][0]
        assert (inst["state"], inst["effective_priority"], inst["vips"]) == ("MASTER", 150, [f"{VIP4}/32"])
        assert snap["process"]["health"] is None

        samples = {(s.name, s.labels.get("state")): s.value
                   for f in text_string_to_metric_families(status.fetch(control, "/metrics")) for s in f.samples}
        assert samples[("pyvrrpd_vrrp_state", "MASTER")] == 1
        assert samples[("pyvrrpd_vrrp_adverts_tx_total", None)] > 0
        assert status.fetch(control, "/healthz") == "ok\n"

        # the watchdog is pinged while healthy
        mark = len(sd.drain())
        sd.wait("WATCHDOG=1", timeout=5, after=mark)

        # garbage on the control socket: a 4xx, and VRRP does not notice
        assert _raw(control, b"\x16\x03\x01 not http\r\n\r\n").split(b" ")[1] == b"400"
        assert _raw(control, b"GET /status HTTP/1.1\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n").split(b" ")[1] \
            in (b"400", b"431")
        assert len(d1.find("Entering MASTER STATE")) == 1 and len(d1.find("Entering BACKUP STATE")) == 1

        # keepalived's dump signals
        for sig, name in ((signal.SIGUSR1, "keepalived.data"), (signal.SIGUSR2, "keepalived.stats"),
                          (signal.SIGRTMIN + 2, "keepalived.json")):
            d1.proc.send_signal(sig)
            wait_for(lambda: (dumps / name).exists(), timeout=5, what=name)
        data = json.loads((dumps / "keepalived.json").read_text())
        assert (data[0]["data"]["iname"], data[0]["data"]["state"], data[0]["data"]["vrid"]) == ("VI_1", 2, 51)
        assert data[0]["stats"]["advert_sent"] > 0
        assert "VRRP Instance: VI_1" in (dumps / "keepalived.stats").read_text()
        assert " VRRP Instance = VI_1" in (dumps / "keepalived.data").read_text()
        d1.wait_log("Printing VRRP as json")

        # reload: RELOADING=1, then READY=1 again
        mark = len(sd.drain())
        d1.proc.send_signal(signal.SIGHUP)
        sd.wait("RELOADING=1", timeout=10, after=mark)
        sd.wait("READY=1", timeout=10, after=mark)

        mark = len(sd.drain())
        assert d1.stop() == 0
        sd.wait("STOPPING=1", timeout=5, after=mark)
        assert not holds(lab, "d1", VIP4)
        wait_for(lambda: not os.path.exists(control), timeout=5, what="control socket removed")
    finally:
        sd.close()


def test_status_when_nothing_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pyvrrpd", "status", "--control-socket", str(tmp_path / "x.sock")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 3 and "cannot reach the daemon" in out.stderr
