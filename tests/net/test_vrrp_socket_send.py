"""VrrpSocket.send() over a recording stand-in for the raw socket: headers, control data, checks. No root needed."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from pyvrrpd.net.errors import NetError
from pyvrrpd.net.vrrp_socket import VrrpSocket

ip = ipaddress.ip_address
MESSAGE = bytes(range(16))


class RawSocket:
    def __init__(self):
        self.sent: list[tuple] = []

    def sendto(self, data, address):
        self.sent.append((data, address))

    def sendmsg(self, buffers, ancillary, flags, address):
        self.sent.append((b"".join(buffers), ancillary, address))


@pytest.mark.anyio
async def test_ipv4_header_follows_source_destination_and_ttl():
    raw = RawSocket()
    sock = VrrpSocket(raw, "lan0", 7, 4, ip("198.51.100.11"))
    await sock.send(MESSAGE, ip("224.0.0.18"))
    await sock.send(MESSAGE, "224.0.0.18")  # strings still work
    sock.source = ip("198.51.100.21")  # the interface's primary address changed
    await sock.send(MESSAGE, ip("224.0.0.18"))
    await sock.send(MESSAGE[:8], ip("198.51.100.12"), src=ip("198.51.100.99"), ttl=10)
    headers = [struct.unpack("!BBHHHBBH4s4s", data[:20]) for data, _ in raw.sent]
    group, src1, src2, src9, peer = (ip(a).packed for a in ("224.0.0.18", "198.51.100.11", "198.51.100.21",
                                                            "198.51.100.99", "198.51.100.12"))
    assert headers == [(0x45, 0xC0, 36, 0, 0, 255, 112, 0, src1, group)] * 2 + [
        (0x45, 0xC0, 36, 0, 0, 255, 112, 0, src2, group), (0x45, 0xC0, 28, 0, 0, 10, 112, 0, src9, peer)]
    assert [data[20:] for data, _ in raw.sent] == [MESSAGE] * 3 + [MESSAGE[:8]]
    assert [address for _, address in raw.sent] == [("224.0.0.18", 0)] * 3 + [("198.51.100.12", 0)]


@pytest.mark.anyio
async def test_ipv6_source_and_hop_limit_go_in_control_messages():
    raw = RawSocket()
    sock = VrrpSocket(raw, "lan0", 7, 6, ip("fe80::11"))
    await sock.send(MESSAGE, ip("ff02::12"))
    await sock.send(MESSAGE, ip("fe80::12"), ttl=10)
    pktinfo = ip("fe80::11").packed + struct.pack("@I", 7)
    hops = struct.pack("@i", 10)
    assert raw.sent == [
        (MESSAGE, ((socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo),), ("ff02::12", 0, 0, 7)),
        (MESSAGE, ((socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo), (socket.IPPROTO_IPV6,
                   socket.IPV6_HOPLIMIT, hops)), ("fe80::12", 0, 0, 7)),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("dst, kw, detail", [
    ("not-an-address", {}, "not an IP address"),
    ("ff02::12", {}, "not an IPv4 address"),
    ("224.0.0.18", {"src": "fe80::1"}, "not an IPv4 address"),
    ("224.0.0.18", {"ttl": 0}, "TTL 0 is not 1-255"),
])
async def test_bad_input_is_refused_every_time(dst, kw, detail):
    raw = RawSocket()
    sock = VrrpSocket(raw, "lan0", 7, 4, ip("198.51.100.11"))
    for _ in range(2):  # a refused destination is never remembered as a good one
        with pytest.raises(NetError, match=detail):
            await sock.send(MESSAGE, dst, **kw)
    assert raw.sent == []
