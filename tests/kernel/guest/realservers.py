"""Real servers for the guest tests: network namespaces on a bridge, and small TCP/HTTP servers.

A Python start costs seconds under the VM's emulation, so the servers are threads of the test process:
a listening socket made by a thread that has entered a namespace stays in that namespace, whoever
serves it later. Every namespace, link and thread made here is removed by ``Lab.close``, also when a
test fails.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from ipaddress import ip_address

from tests.kernel.guest.helpers import sh

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

BODY = b"hello 42\n"
ROUTES = {"/ok": (200, BODY), "/err": (500, b"internal error\n")}  # HTTP path -> status, body


def listen_in(ns: str, address: str, port: int) -> socket.socket:
    """A listening TCP socket made inside network namespace ``ns`` (made by a thread of its own, which
    enters the namespace and ends; the socket stays there)."""
    made: dict = {}

    def make() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
            finally:
                os.close(fd)
            s = socket.socket(socket.AF_INET6 if ip_address(address).version == 6 else socket.AF_INET)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
            s.listen(64)
            s.settimeout(0.2)
            made["socket"] = s
        except BaseException as exc:  # handed to the caller
            made["error"] = exc

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]
    return made["socket"]


class Server:
    """One listener served by one thread: ``http`` answers GET by path (``ROUTES``, else 404), plain TCP
    accepts and closes."""

    def __init__(self, ns: str, address: str, port: int, http: bool) -> None:
        self.sock = listen_in(ns, address, port)
        self.http = http
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name=f"server {address}:{port}", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                if self.http:
                    self._answer(conn)

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        conn.settimeout(2)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 8192:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            parts = data.split(b" ", 2)
            path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
            status, body = ROUTES.get(path, (404, b"not found\n"))
            conn.sendall(f"HTTP/1.0 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
                         .encode() + body)
        except OSError:
            pass

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()

    @staticmethod
    def close_all(servers: list[Server]) -> None:
        for server in servers:  # all threads told first: they end within one accept timeout together
            server.stopping.set()
        for server in servers:
            server.close()


class Lab:
    """Namespaces ``PREFIX-NAME`` each with ``eth0`` at one address, on bridge ``PREFIX0`` with the
    director's address (here, in the VM's own namespace), and the servers in them."""

    def __init__(self, prefix: str, director: str, hosts: dict[str, str]) -> None:
        self.prefix, self.director, self.hosts = prefix, director, hosts  # name -> address/len
        self.bridge = f"{prefix}0"
        self.servers: dict[tuple[str, int], Server] = {}

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def address(self, name: str) -> str:
        return self.hosts[name].split("/")[0]

    def open(self) -> Lab:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", self.director, "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i, (name, cidr) in enumerate(self.hosts.items()):
            ns, veth = self.ns(name), f"{self.prefix}v{i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", self.bridge, "up")
            sh("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        return self

    def close(self) -> None:
        Server.close_all(list(self.servers.values()))
        self.servers.clear()
        for name in self.hosts:  # a namespace goes with its end of the veth, and the other end with it
            sh("ip", "netns", "del", self.ns(name), check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        leftover = [line for line in sh("ip", "-o", "link").splitlines() if f" {self.prefix}v" in line]
        for line in leftover:  # a veth whose namespace went without it (should not happen)
            sh("ip", "link", "del", line.split(":")[1].strip().split("@")[0], check=False)

    def serve(self, name: str, port: int, *, http: bool = False) -> None:
        """Start answering on the host's address and ``port``."""
        key = (self.address(name), port)
        assert key not in self.servers, f"{key} already served"
        self.servers[key] = Server(self.ns(name), key[0], port, http)

    def stop(self, name: str, port: int) -> None:
        """Stop answering: the listener is closed, connections are refused."""
        self.servers.pop((self.address(name), port)).close()

    def link(self, name: str, up: bool) -> None:
        """The host's link down (its packets go nowhere: connections time out) or up again."""
        sh("ip", "-n", self.ns(name), "link", "set", "eth0", "up" if up else "down")
