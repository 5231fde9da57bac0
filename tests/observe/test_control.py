"""The control endpoint over a real unix socket, the `pyvrrpd status` client, sd_notify, the unit file."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pyvrrpd.observe import sdnotify, status
from pyvrrpd.observe.control import ControlServer, parse_listen
from tests.observe.snapshots import SNAPSHOT

ROOT = Path(__file__).resolve().parents[2]


def _raw(path: str, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)


def _code(response: bytes) -> int:
    """The status code of a raw HTTP response (aiohttp answers unparsable requests as HTTP/1.0)."""
    return int(response.split(b" ", 2)[1])


async def _serve(path: str, check, healthy=None) -> ControlServer:
    server = ControlServer(lambda: SNAPSHOT, unix_path=path, healthy=healthy)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        await anyio.to_thread.run_sync(check)
        tg.cancel_scope.cancel()
    assert not os.path.exists(path)  # removed on stop
    return server


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_status_metrics_healthz(tmp_path, anyio_backend):
    path = str(tmp_path / "run" / "control.sock")

    def check():
        assert json.loads(status.fetch(path)) == json.loads(json.dumps(SNAPSHOT))
        names = {f.name for f in text_string_to_metric_families(status.fetch(path, "/metrics"))}
        assert "pyvrrpd_vrrp_state" in names
        assert status.fetch(path, "/healthz") == "ok\n"
        with pytest.raises(ValueError, match="404"):
            status.fetch(path, "/nothing")

    server = await _serve(path, check)
    assert server.requests["status"] == 1 and server.requests["metrics"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_healthz_reports_a_problem(tmp_path, anyio_backend):
    path = str(tmp_path / "c.sock")

    def check():
        with pytest.raises(ValueError, match="503"):
            status.fetch(path, "/healthz")

    await _serve(path, check, healthy=lambda: "VRRP loop late by 2.0 s")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_garbage_requests_get_4xx_and_the_server_keeps_serving(tmp_path, anyio_backend):
    path = str(tmp_path / "c.sock")

    def check():
        assert _code(_raw(path, b"\x00\xff garbage\r\n\r\n")) == 400
        huge = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
        assert _code(_raw(path, huge)) in (400, 431)
        post = b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        assert _code(_raw(path, post)) == 405
        body = b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n" + b"x" * 100_000
        assert _code(_raw(path, body)) in (200, 413)  # a GET body is refused or ignored, never a crash
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:  # a client that never finishes
            slow.connect(path)
            slow.sendall(b"GET /sta")
            assert json.loads(status.fetch(path))["process"]["pid"] == 4242  # others are still served

    await _serve(path, check)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_stale_socket_is_replaced_but_a_live_one_is_not(tmp_path, anyio_backend):
    path = str(tmp_path / "c.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # a socket file nobody listens on, as a killed daemon leaves it
    await _serve(path, lambda: status.fetch(path))

    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen()
    try:
        server = ControlServer(lambda: {}, unix_path=path)
        async with anyio.create_task_group() as tg:  # it runs on without the socket: never fatal
            await tg.start(server.run)
            tg.cancel_scope.cancel()
        assert server.errors == 1 and server.listening == [] and os.path.exists(path)
    finally:
        live.close()


def test_status_command_when_no_daemon(tmp_path, capsys):
    assert status.main(["--control-socket", str(tmp_path / "none.sock")]) == status.EXIT_NOT_RUNNING
    assert "cannot reach the daemon" in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [("127.0.0.1:9650", ("127.0.0.1", 9650)), ("[::1]:80", ("::1", 80))])
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9650", ":80", "127.0.0.1:0", "127.0.0.1:x", "h:70000"])
def test_parse_listen_rejects(text):
    with pytest.raises(ValueError):
        parse_listen(text)


def test_sd_notify_to_a_fake_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
        sink.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert sdnotify.ready("2 instances")
        assert sink.recv(4096).decode().split("\n") == ["READY=1", "STATUS=2 instances", f"MAINPID={os.getpid()}"]
        assert sdnotify.reloading()
        fields = sink.recv(4096).decode().split("\n")
        assert fields[0] == "RELOADING=1" and fields[1].startswith("MONOTONIC_USEC=")
        assert sdnotify.notify("WATCHDOG=1") and sink.recv(4096) == b"WATCHDOG=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sdnotify.ready("x")


def test_sd_notify_abstract_socket(monkeypatch):
    name = f"pyvrrpd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
        sink.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.stopping()
        assert sink.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


@pytest.mark.parametrize("usec, pid, expected", [("10000000", None, 5.0), ("10000000", "1", None), ("0", None, None),
                                                 ("junk", None, None), (None, None, None)])
def test_watchdog_interval(monkeypatch, usec, pid, expected):
    for key, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    assert sdnotify.watchdog_interval() == expected


def test_unit_file_verifies(tmp_path):
    exe = shutil.which("pyvrrpd", path=os.path.dirname(sys.executable))
    assert exe, "the venv's pyvrrpd script"
    unit = tmp_path / "pyvrrpd.service"
    unit.write_text((ROOT / "systemd" / "pyvrrpd.service").read_text().replace("/usr/local/bin/pyvrrpd", exe))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    text = unit.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Conflicts=keepalived.service"):
        assert line in text.splitlines()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_http_edges_keep_alive_head_and_more_garbage(tmp_path, anyio_backend):
    path = str(tmp_path / "c.sock")

    def check():
        get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        two = _raw(path, get + get.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        assert two.count(b"HTTP/1.1 200 OK") == 2 and two.endswith(b"ok\n")  # keep-alive, then close
        head = _raw(path, b"HEAD /status HTTP/1.0\r\n\r\n")  # HTTP/1.0: closed after one answer
        assert _code(head) == 200 and head.endswith(b"\r\n\r\n") and b"Content-Length: " in head
        assert _code(_raw(path, b"GET /status HTTP/1.1\r\n" + b"X-A: b\r\n" * 100 + b"\r\n")) == 431
        assert _code(_raw(path, b"GET /status HTTP/1.1\r\nContent-Length: -1\r\n\r\n")) == 400
        assert _code(_raw(path, b"GET /status HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")) == 400
        assert _code(_raw(path, b"GET /status HTTP/2.0\r\n\r\n")) == 400
        assert _code(_raw(path, b"GET status HTTP/1.1\r\n\r\n")) == 400
        assert _code(_raw(path, b"GET /status HTTP/1.1\r\nno colon\r\n\r\n")) == 400
        assert _code(_raw(path, b"GET /\xff HTTP/1.1\r\n\r\n")) == 400
        assert _code(_raw(path, b"GET /nothing?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n")) == 404
        assert _raw(path, b"", timeout=1.0) == b""  # a client that connects and closes: no answer, no error
        assert json.loads(status.fetch(path))["process"]["pid"] == 4242  # still serving

    server = await _serve(path, check)
    assert server.requests["rejected"] == 8 and server.errors == 8


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_failing_snapshot_costs_one_answer(tmp_path, anyio_backend):
    path = str(tmp_path / "c.sock")

    def broken() -> dict:
        raise RuntimeError("bug")

    server = ControlServer(broken, unix_path=path)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        answer = await anyio.to_thread.run_sync(_raw, path, b"GET /status HTTP/1.1\r\n\r\n")
        assert _code(answer) == 500
        healthz = await anyio.to_thread.run_sync(_raw, path, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert _code(healthz) == 200
        tg.cancel_scope.cancel()
