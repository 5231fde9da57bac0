"""The control endpoint: ``GET /status`` (JSON snapshot), ``GET /metrics`` (Prometheus text), ``GET /healthz``.

HTTP/1.1 on a unix socket (default ``/run/pyvrrpd/control.sock``) and, if asked, on a TCP address (loopback
unless told otherwise), served with anyio streams: three GET routes need no web framework, and aiohttp
cost the daemon 13 MB of its ~53 MB RSS and 0.16-0.4 s of start-up (bench/README.md, import budget). It is a subsystem of the daemon root like VRRP: ``run`` starts the listeners and
reports ready, ``reconfigure`` has nothing to change, ``snapshot`` counts requests. Every answer renders the
root's one snapshot, so ``/status``, ``/metrics``, ``pyvrrpd status`` and the dump files cannot disagree.

Bad clients cost them, not the VRRP loop: requests have small size limits (4xx, then the connection is
closed, for an oversized line, too many headers or a body over 1 KiB), idle keep-alive connections are
closed after a few seconds, a request must arrive whole within REQUEST_SECONDS of the connection going
idle (a slowloris client trickling one byte at a time is cut off: a total deadline, not an idle timer), an answer the client does not read within
SEND_SECONDS is dropped with the connection, at most 64 connections are open at once, anything but GET/HEAD
is 405, and a handler never awaits anything slow (the snapshot is built synchronously from counters in
memory). Each of these is counted (``bad_requests`` by status, ``refused_connections``, ``timeouts`` by
kind) in the snapshot and in ``/metrics``.

The request head is parsed by pure functions (:func:`parse_request_line`, :func:`parse_headers`,
:func:`parse_request`) that the server and the fuzzers (tests, ``bench/fuzz.py``) share.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.buffered import BufferedByteReceiveStream

DEFAULT_SOCKET = "/run/pyvrrpd/control.sock"
CLEANUP_SECONDS = 2.0
MAX_LINE = 4096  # request line and each header line
MAX_BODY = 1024  # GET bodies are ignored; anything larger is refused
MAX_HEADERS = 64
# a request must be whole this long after its connection went idle (opened, or its last answer sent): a
# slow one is dropped with the connection however often it sends a byte, an idle one is closed
REQUEST_SECONDS = KEEPALIVE_SECONDS = 5.0
SEND_SECONDS = 5.0  # an answer the client does not read within this is dropped with the connection
LINGER_SECONDS, LINGER_READS = 1.0, 64  # see _linger
MAX_CONNECTIONS = 64  # beyond this many open at once, new ones are closed at once
_TEXT = "text/plain; charset=utf-8"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port); ValueError with a sentence otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"'{text}': expected HOST:PORT, for example 127.0.0.1:9650")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise ValueError(f"'{text}': the port must be 1-65535")
    return host, number


class ControlServer:
    name = "control"

    def __init__(self, snapshot: Callable[[], dict] = dict, *, unix_path: str | None = DEFAULT_SOCKET,
                 tcp: tuple[str, int] | None = None, healthy: Callable[[], str | None] | None = None,
                 log=None) -> None:
        self._snapshot = snapshot
        self._healthy = healthy or (lambda: None)
        self.listening: list[str] = []
        self.unix_path = unix_path
        self.tcp = tcp
        self.log = log
        self.requests: Counter[str] = Counter()
        self.errors = 0
        self.bad_requests: Counter[str] = Counter()  # by the status answered: "400", "413", "431", ...
        self.timeouts: Counter[str] = Counter()  # "request" (unfinished in time), "answer" (not read in time)
        self.refused_connections = 0  # over MAX_CONNECTIONS (or accept failing)
        self.connections = 0  # accepted, in all
        self._connections = 0

    def attach(self, snapshot: Callable[[], dict], healthy: Callable[[], str | None]) -> None:
        """What to serve: the daemon root's snapshot and health (the root is made after its subsystems)."""
        self._snapshot, self._healthy = snapshot, healthy

    def snapshot(self) -> dict:
        return {"listening": list(self.listening), "socket": self.unix_path, "tcp": f"{self.tcp[0]}:{self.tcp[1]}" if self.tcp else None,
                "open_connections": self._connections,
                "counters": {"requests": dict(self.requests), "errors": self.errors,
                             "bad_requests": dict(self.bad_requests), "timeouts": dict(self.timeouts),
                             "refused_connections": self.refused_connections, "connections": self.connections}}

    async def reconfigure(self, config) -> str | None:
        return None  # the listeners come from the command line, not the config

    # -- HTTP ---------------------------------------------------------------------------------------

    def _answer(self, method: str, target: str) -> tuple[int, str, str]:
        """(status, content type, body) for a well-formed request."""
        if method not in ("GET", "HEAD"):
            return 405, _TEXT, "only GET and HEAD\n"
        path = target.partition("?")[0]
        if path == "/status":
            self.requests["status"] += 1
            return 200, "application/json", json.dumps(self._snapshot(), default=str)
        if path == "/metrics":
            from pyvrrpd.observe.metrics import render

            self.requests["metrics"] += 1
            return 200, "text/plain; version=0.0.4; charset=utf-8", render(self._snapshot())
        if path == "/healthz":
            self.requests["healthz"] += 1
            problem = self._healthy()
            return (503, _TEXT, f"{problem}\n") if problem else (200, _TEXT, "ok\n")
        return 404, _TEXT, "not found: /status, /metrics or /healthz\n"

    async def _serve(self, stream: anyio.abc.ByteStream) -> None:
        """One connection: requests in turn (keep-alive) until the client closes, asks to close, idles
        for KEEPALIVE_SECONDS, is too slow (REQUEST_SECONDS for a whole request, SEND_SECONDS to take an answer),
        or sends something we refuse (answered 4xx, then closed)."""
        if self._connections >= MAX_CONNECTIONS:
            self.errors += 1
            self.refused_connections += 1
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            return
        self._connections += 1
        self.connections += 1
        reader = BufferedByteReceiveStream(stream)
        try:
            async with stream:
                while True:
                    request = await self._next_request(reader)
                    if request is None:
                        return  # closed, idle or too slow: nothing to answer
                    method, keep = "GET", False
                    if isinstance(request, int):
                        code, kind, body = request, _TEXT, f"{_REASONS[request]}\n"
                    else:
                        method, keep = request.method, request.keep
                        try:
                            code, kind, body = self._answer(method, request.target)
                        except Exception as exc:  # noqa: BLE001 - a bug in a snapshot costs this answer only
                            code, kind, body, keep = 500, _TEXT, "internal error\n", False
                            if self.log is not None:
                                self.log.error(f"control endpoint: {request.target}: {type(exc).__name__}: {exc}")
                        keep = keep and code != 405
                    if code >= 400 and code != 503:
                        self.errors += 1
                        self.requests["rejected"] += 1
                        if code < 500:
                            self.bad_requests[str(code)] += 1
                    data = body.encode()
                    head = (f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: {kind}\r\n"
                            f"Content-Length: {len(data)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n")
                    with anyio.move_on_after(SEND_SECONDS) as sending:
                        await stream.send(head.encode() + (b"" if method == "HEAD" else data))
                    if sending.cancelled_caught:
                        self.timeouts["answer"] += 1  # a client that does not read: drop it
                        return
                    if not keep:
                        if code >= 400:
                            await _linger(stream)
                        return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass  # the client went away
        finally:
            self._connections -= 1

    async def _next_request(self, reader: BufferedByteReceiveStream) -> Request | int | None:
        """The next request, whole within REQUEST_SECONDS of the connection becoming idle (its opening or
        the previous answer): a slowloris client that trickles bytes is cut off, however often it sends."""
        progress = _Progress()
        with anyio.move_on_after(REQUEST_SECONDS):
            return await _read_request(reader, progress)
        if progress.started or reader.buffer:
            self.timeouts["request"] += 1  # begun, never finished
        return None  # else an idle keep-alive connection: closed, not counted

    # -- life cycle -----------------------------------------------------------------------------

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        listeners: list[anyio.abc.SocketListener] = []
        try:
            if self.unix_path:
                try:
                    _prepare_socket_path(self.unix_path)
                    listeners.append(await anyio.create_unix_listener(self.unix_path, mode=0o660))
                    self.listening.append(self.unix_path)
                except OSError as exc:
                    self._cannot(self.unix_path, exc)
            if self.tcp:
                where = f"{self.tcp[0]}:{self.tcp[1]}"
                try:
                    tcp = await anyio.create_tcp_listener(local_host=self.tcp[0], local_port=self.tcp[1])
                    listeners += tcp.listeners
                    self.listening.append(where)
                except OSError as exc:
                    self._cannot(where, exc)
            if self.log is not None and self.listening:
                self.log.info(f"control endpoint listening on {', '.join(self.listening)}")
            async with anyio.create_task_group() as tg:
                for listener in listeners:
                    tg.start_soon(self._accept, listener, tg)
                task_status.started()
                await anyio.sleep_forever()  # also with no listener: the subsystem runs until stopped
        finally:
            with anyio.move_on_after(CLEANUP_SECONDS, shield=True):
                for listener in listeners:
                    await listener.aclose()
            if self.unix_path in self.listening:
                try:
                    os.unlink(self.unix_path)
                except OSError:
                    pass

    async def _accept(self, listener: anyio.abc.SocketListener, tg: anyio.abc.TaskGroup) -> None:
        raw = listener.extra(anyio.abc.SocketAttribute.raw_socket)
        unix = raw.family == socket.AF_UNIX
        while True:
            try:
                stream = await (_accept_unix(raw) if unix else listener.accept())
            except OSError:  # out of file descriptors and the like: count it, let it pass, go on
                self.errors += 1
                self.refused_connections += 1
                await anyio.sleep(0.1)
                continue
            tg.start_soon(self._serve, stream)

    def _cannot(self, where: str, exc: OSError) -> None:
        """Not being able to listen costs the status endpoint, never VRRP: log it, count it, run on."""
        self.errors += 1
        if self.log is not None:
            self.log.error(f"control endpoint: cannot listen on {where}: {exc.strerror or exc}; "
                           "running without it (pyvrrpd status will not reach this daemon)")


async def _accept_unix(listener: socket.socket) -> UnixStream:
    conn, _ = await asyncio.get_running_loop().sock_accept(listener)
    conn.setblocking(False)
    return UnixStream(conn)


class UnixStream(anyio.abc.ByteStream):
    """A unix connection read and written with asyncio's ``sock_recv``/``sock_sendall`` (the daemon runs
    anyio on asyncio) instead of anyio's own unix streams. anyio 4.16's raw-socket streams and listener
    wait on a future that a reader callback resolves; when a deadline or the daemon's stop cancels a read
    just as the client's bytes (or its close) arrive, the callback runs on the cancelled future and asyncio
    logs "Exception in callback ... InvalidStateError" with a traceback (a suite run hit it at the end of
    a test, the slow client closing as the server was stopped; anyio issue 1267 is its close-side twin).
    asyncio's sock_* calls check the future before resolving it. TCP connections go through anyio's
    transport-based streams, which do not have the race."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._sock.fileno() < 0:
            raise anyio.ClosedResourceError
        data = await asyncio.get_running_loop().sock_recv(self._sock, max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        if self._sock.fileno() < 0:
            raise anyio.ClosedResourceError
        await asyncio.get_running_loop().sock_sendall(self._sock, item)

    async def send_eof(self) -> None:
        self._sock.shutdown(socket.SHUT_WR)

    async def aclose(self) -> None:
        self._sock.close()
        await anyio.lowlevel.checkpoint()


def _prepare_socket_path(path: str) -> None:
    """Make the socket's directory; remove a stale socket left by a crashed run (never a regular file)."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: left by a run that died
            return
    raise OSError(f"{path}: another daemon is listening there (give each daemon its own --control-socket)")


async def _linger(stream: anyio.abc.ByteStream) -> None:
    """After refusing a request: end our side and drop what the client still sends, for a short while.
    Closing with its data unread would reset the connection, and the client would never read the 4xx."""
    try:
        await stream.send_eof()
        with anyio.move_on_after(LINGER_SECONDS):
            for _ in range(LINGER_READS):
                await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass


@dataclass(frozen=True, slots=True)
class Request:
    """A request head we answer: its method, target, whether the connection stays open, and how many
    body bytes follow (read and dropped)."""

    method: str
    target: str
    keep: bool
    length: int = 0


def parse_request_line(line: bytes) -> tuple[str, str, bool] | int:
    """``METHOD /target HTTP/1.x`` (without its CRLF) -> (method, target, keep-alive by default); 400 otherwise."""
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1") or not parts[1].startswith(b"/"):
        return 400
    method, target, version = parts
    if not (method.isalpha() and target.isascii()):  # bytes: ASCII letters only
        return 400
    return method.decode("ascii"), target.decode("ascii"), version == b"HTTP/1.1"


def parse_headers(lines: list[bytes], keep: bool) -> tuple[bool, int] | int:
    """Header lines (without CRLF, at most MAX_HEADERS) -> (keep-alive, body length); a 4xx otherwise."""
    length = 0
    for line in lines:
        name, colon, value = line.partition(b":")
        name, value = name.lower(), value.strip(b" \t").lower()
        if not colon or not name or name != name.strip():
            return 400
        if name == b"content-length":
            if not (value.isdigit() and len(value) <= 9):  # bytes.isdigit: ASCII 0-9 only, no sign, no _
                return 400 if not value.isdigit() else 413
            length = int(value)
        elif name == b"transfer-encoding":
            return 400  # a GET has no body to chunk
        elif name == b"connection":
            keep = b"close" not in value and (keep or b"keep-alive" in value)
    if length > MAX_BODY:
        return 413
    return keep, length


def parse_head(request_line: bytes, header_lines: list[bytes]) -> Request | int:
    """A whole request head (request line, header lines, without CRLFs) -> Request or a 4xx status."""
    first = parse_request_line(request_line)
    if isinstance(first, int):
        return first
    if len(header_lines) > MAX_HEADERS:
        return 431
    rest = parse_headers(header_lines, first[2])
    if isinstance(rest, int):
        return rest
    return Request(first[0], first[1], rest[0], rest[1])


def parse_request(data: bytes) -> tuple[Request | int | None, int]:
    """The first request in ``data`` as the server reads it, without I/O: (Request, bytes used), (4xx, bytes
    used), or (None, 0) when ``data`` does not hold a whole request yet (the server would read on). A line
    (request line or header, without its CRLF) over MAX_LINE bytes is refused: 400 or 431."""
    lines: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0 or end - pos > MAX_LINE:
            if end < 0 and len(data) - pos < MAX_LINE + 2:
                return None, 0  # the server reads on
            return (431 if lines else 400), len(data) if end < 0 else end + 2
        line = data[pos:end]
        pos = end + 2
        if not lines:
            lines.append(line)
            first = parse_request_line(line)
            if isinstance(first, int):
                return first, pos
            continue
        if not line:
            break
        lines.append(line)
        if len(lines) > MAX_HEADERS + 1:
            return 431, pos
    head = parse_head(lines[0], lines[1:])
    if isinstance(head, int):
        return head, pos
    if len(data) - pos < head.length:
        return None, 0
    return head, pos + head.length


class _Progress:
    """Whether the request being read has begun (a slow request, not an idle keep-alive connection)."""

    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = False


async def _line(reader: BufferedByteReceiveStream) -> bytes:
    """The next line without its CRLF; DelimiterNotFound when it is over MAX_LINE bytes (however it was chunked)."""
    line = await reader.receive_until(b"\r\n", MAX_LINE + 2)
    if len(line) > MAX_LINE:
        raise anyio.DelimiterNotFound(MAX_LINE)
    return line


async def _read_request(reader: BufferedByteReceiveStream, progress: _Progress | None = None) -> Request | int | None:
    """The next request, its body read and dropped; a 4xx status for a request we refuse; None when the
    client closed. The rules of :func:`parse_request`, applied as the bytes come."""
    progress = progress or _Progress()
    try:
        request_line = await _line(reader)
    except anyio.IncompleteRead:
        return None
    except anyio.DelimiterNotFound:
        return 400
    progress.started = True
    first = parse_request_line(request_line)
    if isinstance(first, int):
        return first
    headers: list[bytes] = []
    try:
        while line := await _line(reader):
            headers.append(line)
            if len(headers) > MAX_HEADERS:
                return 431
        head = parse_head(request_line, headers)
        if isinstance(head, int):
            return head
        await reader.receive_exactly(head.length)
    except anyio.DelimiterNotFound:
        return 431
    except anyio.IncompleteRead:
        return None
    return head
