"""Link layer: send ready-made Ethernet frames (gratuitous ARP, unsolicited NA) and read an interface's
MAC, index and flags.

Frames come from the core's builders; this module adds nothing to them. The sender is an AF_PACKET socket
opened with protocol 0, which the kernel never delivers received frames to, so it needs no drain.
Interface facts are read with ioctls on a socket, which always answer for the caller's network namespace
(unlike /sys, which shows whichever namespace it was mounted from).
"""

from __future__ import annotations

import fcntl
import socket
import struct
from dataclasses import dataclass

import anyio

from .constants import IFF_RUNNING, IFF_UP, IFNAMSIZ, SIOCGIFFLAGS, SIOCGIFHWADDR
from .errors import NetError


@dataclass(frozen=True, slots=True)
class LinkInfo:
    name: str
    index: int
    mac: bytes  # 6 bytes
    flags: int  # IFF_* bits

    @property
    def up(self) -> bool:
        """Administratively up (IFF_UP)."""
        return bool(self.flags & IFF_UP)

    @property
    def running(self) -> bool:
        """Carrier present / operationally up (IFF_RUNNING)."""
        return bool(self.flags & IFF_RUNNING)


def link_info(ifname: str) -> LinkInfo:
    """Read index, MAC and flags of `ifname`; NetError (ENODEV) if it does not exist."""
    name = ifname.encode()
    if not name or len(name) >= IFNAMSIZ:
        raise NetError("read interface", ifname=ifname, detail=f"interface names are 1-{IFNAMSIZ - 1} bytes")
    request = struct.pack("16s16x", name)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            hwaddr = fcntl.ioctl(sock, SIOCGIFHWADDR, request)  # ENODEV if there is no such interface
            flags = fcntl.ioctl(sock, SIOCGIFFLAGS, request)
            index = socket.if_nametoindex(ifname)
    except OSError as exc:
        raise NetError.wrap(exc, "read interface", ifname=ifname) from None
    # struct ifreq: 16-byte name, then a union: sockaddr {u16 family; u8 data[14]} or short flags.
    return LinkInfo(name=ifname, index=index, mac=hwaddr[18:24], flags=struct.unpack_from("@H", flags, 16)[0])


class PacketSender:
    """AF_PACKET socket bound to one interface. Create with `open_packet_sender()`."""

    def __init__(self, sock: socket.socket, ifname: str, ifindex: int) -> None:
        self._sock = sock
        self.ifname = ifname
        self.ifindex = ifindex
        self._closed = False

    async def send(self, frame: bytes) -> None:
        """Send one complete Ethernet frame (destination MAC first)."""
        try:
            try:
                self._sock.send(frame)
            except BlockingIOError:
                # The device queue is full: wait for room once (bursts are at most a few hundred frames).
                await anyio.wait_writable(self._sock)
                self._sock.send(frame)
        except OSError as exc:
            raise NetError.wrap(exc, "send frame", ifname=self.ifname, target=f"({len(frame)} bytes)") from None

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            anyio.notify_closing(self._sock)
            self._sock.close()

    async def __aenter__(self) -> PacketSender:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()


def open_packet_sender(ifname: str) -> PacketSender:
    """Open a frame sender on `ifname` (the VMAC interface when use_vmac is set)."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, 0)
    except OSError as exc:
        raise NetError.wrap(exc, "open packet socket", ifname=ifname) from None
    try:
        sock.bind((ifname, 0))
        ifindex = socket.if_nametoindex(ifname)
    except OSError as exc:
        sock.close()
        raise NetError.wrap(exc, "open packet socket", ifname=ifname) from None
    return PacketSender(sock, ifname, ifindex)
