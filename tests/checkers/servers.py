"""Small misbehaving servers on loopback, run in the test's own event loop (anyio, asyncio backend).

Every server binds 127.0.0.1 (or ::1) on a free port and is closed when its ``async with`` ends.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from anyio.abc import SocketStream

from pyvrrpd.checkers import RealServerEvent, RealServerKey

Handler = Callable[[SocketStream], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_server(handler: Handler, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A TCP listener; each connection goes to ``handler``. Yields the port."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def guarded(stream: SocketStream) -> None:
        async with stream:
            try:
                await handler(stream)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
                pass

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, guarded)
            try:
                yield port
            finally:
                tg.cancel_scope.cancel()
    finally:
        await listener.aclose()


async def read_request(stream: SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    return data


def http_reply(body: bytes, status: str = "200 OK", headers: str = "", length: bool = True) -> bytes:
    head = f"HTTP/1.0 {status}\r\nServer: test\r\n{headers}"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def http_handler(reply: bytes, seen: list | None = None) -> Handler:
    async def handle(stream: SocketStream) -> None:
        req = await read_request(stream)
        if seen is not None:
            seen.append(req)
        await stream.send(reply)

    return handle


def streaming(body: bytes) -> Handler:
    """Answer 200 with ``body`` sent in 64 KiB pieces, no Content-Length (a large body)."""

    async def handle(stream: SocketStream) -> None:
        await read_request(stream)
        await stream.send(b"HTTP/1.0 200 OK\r\n\r\n")
        for i in range(0, len(body), 1 << 16):
            await stream.send(body[i:i + (1 << 16)])

    return handle


async def garbage(stream: SocketStream) -> None:
    """Answer a request with bytes that are not HTTP."""
    await read_request(stream)
    await stream.send(bytes(range(256)) * 8 + b"\r\n\r\n")


async def reset(stream: SocketStream) -> None:
    """Close with a TCP RST."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def hang(stream: SocketStream) -> None:
    await anyio.sleep(3600)


@contextlib.asynccontextmanager
async def udp_server(handler: Callable[[bytes], bytes | None], host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A UDP socket answering each datagram with ``handler(data)`` (None: no answer)."""
    udp = await anyio.create_udp_socket(local_host=host, local_port=0)
    port = udp.extra(anyio.abc.SocketAttribute.local_port)

    async def serve() -> None:
        async for data, addr in udp:
            reply = handler(data)
            if reply is not None:
                await udp.sendto(reply, addr[0], addr[1])

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            try:
                yield port
            finally:
                tg.cancel_scope.cancel()
    finally:
        await udp.aclose()


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class RecordingSink:
    """A HealthSink that remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[RealServerKey, bool, int | None]] = []
        self.events: list[RealServerEvent] = []
        self.state: dict[RealServerKey, tuple[bool, int | None]] = {}

    def set_health(self, rs: RealServerKey, up: bool, weight: int | None = None) -> None:
        self.calls.append((rs, up, weight))
        self.state[rs] = (up, weight)

    def notify(self, event: RealServerEvent) -> None:
        self.events.append(event)
