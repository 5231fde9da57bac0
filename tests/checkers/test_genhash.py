"""``pyvrrpd genhash`` prints what keepalived's genhash prints, for the same server."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socketserver
import subprocess
import threading

import pytest

from pyvrrpd import cli
from pyvrrpd.checkers.genhash import main
from tests.checkers.servers import free_port

PAGES = {
    b"/index.html": b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n",
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld\n\r\n0\r\n\r\n",
    b"/missing": b"HTTP/1.0 404 Not Found\r\nContent-Length: 4\r\n\r\nnope",
    b"/nolength": b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100_000,
}


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            data += chunk
        self.server.requests.append(data)
        path = data.split(b" ")[1]
        self.request.sendall(PAGES.get(path, PAGES[b"/missing"]))


@contextlib.contextmanager
def web():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_digest_of_the_body(capsys):
    with web() as s:
        port = str(s.server_address[1])
        code, out, _ = run(capsys, "-s", "127.0.0.1", "-p", port, "-u", "/index.html")
        assert (code, out) == (0, hashlib.md5(b"hello world\n").hexdigest() + "\n")
        assert run(capsys, f"http://127.0.0.1:{port}/index.html")[:2] == (0, out)
        assert cli.main(["genhash", "-s", "127.0.0.1", "-p", port, "-u", "/index.html"]) == 0
        assert capsys.readouterr().out == out


def test_failures_and_notes(capsys):
    code, out, err = run(capsys, "-s", "127.0.0.1", "-p", str(free_port()), "-u", "/")
    assert (code, out) == (1, "") and "refused" in err
    with web() as s:
        code, out, err = run(capsys, "-s", "127.0.0.1", "-p", str(s.server_address[1]), "-u", "/missing")
    assert code == 0 and out == hashlib.md5(b"nope").hexdigest() + "\n" and "status 404" in err
    with pytest.raises(SystemExit):
        main(["ftp://x/y"])
    capsys.readouterr()


def test_virtualhost_and_protocol_reach_the_request(capsys):
    with web() as s:
        port = str(s.server_address[1])
        run(capsys, "-s", "127.0.0.1", "-p", port, "-u", "/index.html", "-V", "www.example.com", "-P", "1.1")
    assert s.requests == [b"GET /index.html HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
                          b"Host: www.example.com\r\n\r\n"]


@pytest.mark.parametrize("path,protocol", [("/index.html", "1.0"), ("/chunked", "1.1"), ("/nolength", "1.0"),
                                           ("/missing", "1.0")])
def test_same_digest_as_keepalived_genhash(capsys, path, protocol):
    keepalived = shutil.which("genhash")
    assert keepalived, "keepalived's genhash is installed by scripts/setup (Debian package keepalived)"
    with web() as s:
        port = str(s.server_address[1])
        theirs = subprocess.run([keepalived, "-s", "127.0.0.1", "-p", port, "-u", path, "-P", protocol.lower()],
                                capture_output=True, text=True, timeout=20)
        code, ours, _ = run(capsys, "-s", "127.0.0.1", "-p", port, "-u", path, "-P", protocol)
    assert code == 0
    assert ours == theirs.stdout
    assert s.requests[0] == s.requests[1]  # byte for byte the same request
