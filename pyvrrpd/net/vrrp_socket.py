"""Raw IP protocol 112 sockets: one per (interface, address family), moving already-encoded adverts.

The socket neither encodes nor decodes VRRP. `send()` takes the VRRP message bytes from the core's codec;
`receive()` returns what the kernel delivered plus the metadata the core's checks need (TTL / hop limit,
source, destination, interface). One task at a time may wait in `receive()` (anyio's rule for
`wait_readable`).

IPv4 sending uses IP_HDRINCL: we write the 20-byte IP header ourselves (TOS 0xc0, TTL 255, protocol 112,
id 0, the source address), as keepalived does. Chosen over "let the kernel build the header" because:
  * the source address is set per packet without bind(). A raw IPv4 socket bound to an address only
    receives packets *destined* to that address, so binding to the source would cut off multicast
    reception; with HDRINCL one socket sends and receives, and a changed primary address, mcast_src_ip or
    unicast_src_ip needs no re-bind;
  * the source the core used for the VRRPv3 pseudo-header checksum is by construction the one on the wire;
  * multicast and unicast get TTL 255 from the same place (IP_MULTICAST_TTL does not apply to unicast).
The kernel still fills in the IP checksum and the total length, and replaces id 0 by its own choice
(raw(7)); a zero source address would also be filled in from the route.

IPv6 has no HDRINCL: hop limits are socket options, the source (the interface's link-local address) goes in
an IPV6_PKTINFO control message per packet, and IPV6_CHECKSUM=6 makes the kernel write the pseudo-header
checksum on send and drop packets with a bad one on receive.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import anyio
from anyio.lowlevel import checkpoint

from .constants import IP_MULTICAST_ALL, IP_PKTINFO, IPPROTO_VRRP, IPV6_MULTICAST_ALL, SO_RCVBUFFORCE
from .errors import NetError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

VRRP_GROUP4 = ipaddress.IPv4Address("224.0.0.18")
VRRP_GROUP6 = ipaddress.IPv6Address("ff02::12")
VRRP_TTL = 255
VRRP_TOS = 0xC0  # DSCP CS6 (network control), IPv4 TOS and IPv6 traffic class

_RECV_SIZE = 65535  # an IP packet can never be larger, so MSG_TRUNC cannot happen
_ANC_SIZE = socket.CMSG_SPACE(32) * 2  # in6_pktinfo (20 bytes) + hop limit (4), or in_pktinfo (12)
_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
_MAX_UNWAITED = 16  # receive() yields at least once per this many packets
_MAX_ROUTES = 256  # cached send() destinations per socket; the cache starts over beyond that


@dataclass(frozen=True, slots=True)
class Received:
    """One packet as the kernel delivered it.

    `payload` is the whole IP packet (header included) for IPv4 — so the decoder can check TTL and the IP
    total length itself — and only the VRRP message for IPv6 (raw IPv6 sockets never see the header).
    """

    payload: bytes
    src: IPAddress
    dst: IPAddress
    ttl: int  # IPv4 TTL or IPv6 hop limit
    ifindex: int


class VrrpSocket:
    """Raw protocol-112 socket bound to one interface. Create with `open_vrrp_socket()`."""

    def __init__(self, sock: socket.socket, ifname: str, ifindex: int, version: Literal[4, 6],
                 source: IPAddress | None) -> None:
        self._sock = sock
        self.ifname = ifname
        self.ifindex = ifindex
        self.version = version
        # Default source for send(); update it when the interface's primary / link-local address changes.
        self.source = source
        self._closed = False
        self._unwaited = 0  # packets receive() returned since it last waited or yielded
        self._routes: dict[tuple, tuple] = {}  # (dst, source, ttl, length) as given to send() → see _route()

    def join(self, group: IPAddress | str) -> None:
        """Join a multicast group on this interface only."""
        group = _ip(group, "join multicast group", self.ifname)
        if group.version != self.version or not group.is_multicast:
            raise NetError("join multicast group", ifname=self.ifname, target=str(group),
                           detail=f"not an IPv{self.version} multicast address")
        try:
            if self.version == 4:
                mreqn = struct.pack("4s4si", group.packed, b"\0" * 4, self.ifindex)
                self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            else:
                mreq = group.packed + struct.pack("@I", self.ifindex)
                self._sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        except OSError as exc:
            raise NetError.wrap(exc, "join multicast group", ifname=self.ifname, target=str(group)) from None

    async def send(self, message: bytes, dst: IPAddress | str, *, src: IPAddress | str | None = None,
                   ttl: int = VRRP_TTL) -> None:
        """Send one encoded VRRP message to `dst` (the group, or one unicast peer: call once per peer).

        `src` overrides `self.source` (e.g. an instance's unicast_src_ip); `ttl` is for `unicast_ttl`.
        """
        source = self.source if src is None else src
        key = (dst, source, ttl, len(message))
        route = self._routes.get(key)
        if route is None:
            route = self._route(key)
        target, header, address, ancillary = route
        try:
            try:
                self._transmit(header, message, address, ancillary)
            except BlockingIOError:
                # A raw socket's send buffer only fills under extreme load; wait for room once, then give up.
                await anyio.wait_writable(self._sock)
                self._transmit(header, message, address, ancillary)
        except OSError as exc:
            raise NetError.wrap(exc, "send advert", ifname=self.ifname, target=target) from None

    def _transmit(self, header: bytes, message: bytes, address: tuple, ancillary: tuple) -> None:
        if self.version == 4:
            self._sock.sendto(header + message, address)
        else:
            self._sock.sendmsg([message], ancillary, 0, address)

    def _route(self, key: tuple) -> tuple:
        """Check send()'s (dst, source, ttl, length) and build what every send with them repeats; cached.

        The periodic adverts of all instances on a socket share a few of these, so the per-send work is
        a dict look-up instead of parsing addresses and packing headers (measured: most of send()).
        """
        dst, source, ttl, length = key
        dst = _ip(dst, "send advert", self.ifname)
        if source is not None:
            source = _ip(source, "send advert", self.ifname)
        target = f"{source or 'auto'} -> {dst}"
        if dst.version != self.version or (source is not None and source.version != self.version):
            raise NetError("send advert", ifname=self.ifname, target=target,
                           detail=f"not an IPv{self.version} address")
        if not 1 <= ttl <= 255:
            raise NetError("send advert", ifname=self.ifname, target=str(dst), detail=f"TTL {ttl} is not 1-255")
        header, ancillary = b"", ()
        if self.version == 4:
            header = _IPV4_HEADER.pack(0x45, VRRP_TOS, 20 + length, 0, 0, ttl, IPPROTO_VRRP, 0,
                                       source.packed if source is not None else b"\0" * 4, dst.packed)
            address: tuple = (str(dst), 0)
        else:
            if source is not None:
                pktinfo = source.packed + struct.pack("@I", self.ifindex)
                ancillary += ((socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo),)
            if ttl != VRRP_TTL:
                ancillary += ((socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("@i", ttl)),)
            address = (str(dst), 0, 0, self.ifindex)
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        route = self._routes[key] = (target, header, address, ancillary)
        return route

    async def receive(self) -> Received:
        """The next packet, waiting for one if none is queued. A NetError here concerns this one call; the
        socket stays usable.

        A queued packet is read without waiting for readability first: the adverts of many instances
        arrive in bursts, and every wait costs an event-loop round (epoll_ctl twice, epoll_wait, a task
        switch). After _MAX_UNWAITED packets read that way it yields once, so a flood cannot starve
        the other tasks.
        """
        if self._unwaited >= _MAX_UNWAITED:
            self._unwaited = 0
            await checkpoint()
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                data, ancdata, _flags, addr = self._sock.recvmsg(_RECV_SIZE, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                self._unwaited = 0
                await anyio.wait_readable(self._sock)
                continue
            except OSError as exc:
                raise NetError.wrap(exc, "receive advert", ifname=self.ifname) from None
            self._unwaited += 1
            if self.version == 4:
                return self._parse4(data, ancdata, addr)
            return self._parse6(data, ancdata, addr)

    def _parse4(self, data: bytes, ancdata, addr) -> Received:
        ifindex = self.ifindex
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 4:
                ifindex = struct.unpack_from("@i", value)[0]
        # The kernel only delivers packets with a complete IPv4 header to raw sockets.
        return Received(payload=data, src=ipaddress.IPv4Address(addr[0]),
                        dst=ipaddress.IPv4Address(data[16:20]), ttl=data[8], ifindex=ifindex)

    def _parse6(self, data: bytes, ancdata, addr) -> Received:
        ttl, ifindex, dst = -1, self.ifindex, ipaddress.IPv6Address(0)
        for level, kind, value in ancdata:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                ttl = struct.unpack_from("@i", value)[0]
            elif kind == socket.IPV6_PKTINFO and len(value) >= 20:
                dst = ipaddress.IPv6Address(value[:16])
                ifindex = struct.unpack_from("@I", value, 16)[0]
        src = ipaddress.IPv6Address(addr[0].split("%", 1)[0])
        return Received(payload=data, src=src, dst=dst, ttl=ttl, ifindex=ifindex)

    async def aclose(self) -> None:
        """Close; a task blocked in receive() gets anyio.ClosedResourceError."""
        if not self._closed:
            self._closed = True
            anyio.notify_closing(self._sock)
            self._sock.close()

    async def __aenter__(self) -> VrrpSocket:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()


def open_vrrp_socket(ifname: str, version: Literal[4, 6], *,
                     groups: Iterable[IPAddress | str] | None = None,
                     source: IPAddress | str | None = None,
                     rcvbuf: int = 1 << 20) -> VrrpSocket:
    """Open the VRRP socket for (`ifname`, IP `version`).

    `groups`: multicast groups to join on this interface; None means the standard VRRP group
    (224.0.0.18 / ff02::12), an empty iterable means none (unicast peers only).
    `source`: the default source address — the interface's primary IPv4 address (or mcast_src_ip /
    unicast_src_ip), the link-local address for IPv6. None lets the kernel choose; the driver should pass
    it, since VRRPv3 over IPv4 needs it for the checksum.
    """
    if version not in (4, 6):
        raise NetError("open VRRP socket", ifname=ifname, detail=f"IP version must be 4 or 6, not {version!r}")
    try:
        ifindex = socket.if_nametoindex(ifname)
    except OSError:
        raise NetError("open VRRP socket", ifname=ifname, errno=errno.ENODEV) from None
    source = _ip(source, "open VRRP socket", ifname) if source is not None else None
    if source is not None and source.version != version:
        raise NetError("open VRRP socket", ifname=ifname, target=str(source), detail=f"not an IPv{version} address")
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    try:
        sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, IPPROTO_VRRP)
    except OSError as exc:
        raise NetError.wrap(exc, "open VRRP socket", ifname=ifname) from None
    vsock = VrrpSocket(sock, ifname, ifindex, version, source)
    try:
        _configure(sock, ifname, ifindex, version, rcvbuf)
        default = VRRP_GROUP4 if version == 4 else VRRP_GROUP6
        for group in (default,) if groups is None else groups:
            vsock.join(group)
    except OSError as exc:
        sock.close()
        raise NetError.wrap(exc, "configure VRRP socket", ifname=ifname) from None
    except NetError:
        sock.close()
        raise
    return vsock


def _ip(value: IPAddress | str, op: str, ifname: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise NetError(op, ifname=ifname, target=str(value), detail="not an IP address") from None


def _configure(sock: socket.socket, ifname: str, ifindex: int, version: int, rcvbuf: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)  # not capped by net.core.rmem_max
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if version == 4:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        # Only groups joined by this socket: without this an INADDR_ANY raw socket gets every group
        # joined by any socket on the host.
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("4s4si", b"\0" * 4, b"\0" * 4, ifindex))
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 6)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, VRRP_TOS)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
