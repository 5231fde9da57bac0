"""What every network probe shares: the target, the result, sockets with keepalived's options.

A probe never raises for a bad real server: it returns a :class:`Result` whose ``reason`` is a
short fixed word (a metrics label: ``refused``, ``timeout``, ``reset``, ``status``...) and whose
``detail`` is the sentence for the log.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio

from pyvrrpd.config import model as m


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    reason: str = "ok"
    detail: str = ""
    weight: int | None = None  # MISC_CHECK with misc_dynamic: exit status - 2 (None: exit 0)


OK = Result(True)


class ProbeError(Exception):
    """A probe step failed; carries the Result's reason and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    def result(self) -> Result:
        return Result(False, self.reason, self.detail)


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how a checker connects (``connect_ip``/``connect_port`` or the real server's,
    ``bindto``, ``bind_port``, ``bind_if``, ``fwmark``) and its ``connect_timeout`` in seconds."""

    address: m.IPAddress
    port: int | None
    timeout: float
    bindto: m.IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None

    @property
    def family(self) -> int:
        return socket.AF_INET6 if self.address.version == 6 else socket.AF_INET

    def sockaddr(self, port: int | None = None) -> tuple:
        return (str(self.address), self.port if port is None else port)

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port or 0}"


# errno -> reason word
_REASONS = {
    errno.ECONNREFUSED: "refused",
    errno.ETIMEDOUT: "timeout",
    errno.ECONNRESET: "reset",
    errno.ECONNABORTED: "reset",
    errno.EPIPE: "reset",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "unreachable",
    errno.EHOSTDOWN: "unreachable",
    errno.ENETDOWN: "unreachable",
    errno.EADDRNOTAVAIL: "bind-error",
}


def os_error(exc: OSError, doing: str) -> ProbeError:
    code = exc.errno or 0
    reason = _REASONS.get(code, "socket-error")
    text = os.strerror(code) if code else str(exc)
    return ProbeError(reason, f"{doing}: {text}")


def new_socket(target: Target, kind: int, proto: int = 0) -> socket.socket:
    """A non-blocking socket with the checker's fwmark, bind_if, bindto and bind_port."""
    try:
        sock = socket.socket(target.family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    except OSError as exc:
        raise os_error(exc, "cannot create a socket") from None
    try:
        if target.fwmark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, target.fwmark)
        if target.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, target.bind_if.encode())
        if target.bindto is not None or target.bind_port:
            if target.bindto is not None and target.bindto.version != target.address.version:
                raise ProbeError("bind-error", f"bindto {target.bindto} is not the family of {target.address}")
            any_addr = "::" if target.family == socket.AF_INET6 else "0.0.0.0"
            sock.bind((str(target.bindto) if target.bindto is not None else any_addr, target.bind_port or 0))
    except BaseException as exc:
        sock.close()
        if isinstance(exc, OSError):
            raise ProbeError("bind-error", f"cannot bind the checker's socket: {os.strerror(exc.errno or 0)}") from None
        raise
    return sock


async def connect(target: Target, kind: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
    """A connected socket, or ProbeError (``timeout`` after ``connect_timeout``)."""
    if target.port is None and kind == socket.SOCK_STREAM:
        raise ProbeError("no-port", "no port to connect to (set connect_port)")
    sock = new_socket(target, kind, proto)
    try:
        rc = sock.connect_ex(target.sockaddr())
        if rc == errno.EINPROGRESS:
            rc = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if not rc and not _connected(sock):  # (on loopback the handshake is over already)
                with anyio.fail_after(target.timeout):
                    await anyio.wait_writable(sock)
                rc = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if rc:
            raise os_error(OSError(rc, os.strerror(rc)), f"connect to {target}")
    except BaseException as exc:
        sock.close()
        if isinstance(exc, TimeoutError):
            raise ProbeError("timeout", f"no connection to {target} within {target.timeout:g} s") from None
        raise
    return sock


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


@contextmanager
def talking(target: Target, what: str = "") -> Iterator[None]:
    """Turn what a conversation with the server can raise into ProbeError: a step that took
    longer than connect_timeout (``timeout``), a broken or reset connection, a socket error."""
    try:
        yield
    except TimeoutError:
        raise ProbeError("timeout", f"{what or target} did not answer within {target.timeout:g} s") from None
    except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLError):
            raise ProbeError("tls-error", f"TLS with {target}: {cause.reason or cause}") from None
        if isinstance(cause, OSError):
            raise os_error(cause, f"talking to {target}") from None
        raise ProbeError("reset", f"the connection to {target} broke") from None
    except ssl.SSLError as exc:
        raise ProbeError("tls-error", f"TLS with {target}: {exc.reason or exc}") from None
    except OSError as exc:
        raise os_error(exc, f"talking to {target}") from None


async def receive(sock: socket.socket, size: int, doing: str) -> tuple[bytes, tuple]:
    """The next datagram on a non-blocking socket and where it came from."""
    while True:
        await anyio.wait_readable(sock)
        try:
            return sock.recvfrom(size)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise os_error(exc, doing) from None


async def probe_tcp(target: Target) -> Result:
    """TCP_CHECK: the connection is accepted."""
    sock = await connect(target)
    sock.close()
    return OK
