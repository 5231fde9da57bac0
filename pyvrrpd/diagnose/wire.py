"""Captured Ethernet frames → what diagnose observes. Pure: bytes in, an observation (or None) out.

VRRP is decoded with the daemon's own codec (``pyvrrpd.core.packet``), so diagnose and the daemon agree on
what is well-formed. Two differences, both deliberate: the TTL/hop-limit check is left out of the decoding
(an advert that crossed a router is reported with its TTL rather than dropped), and the checksum form that
matched is kept for the comparison between routers.

Every input gives a ``Heard`` (a well-formed advert), a ``Malformed`` (protocol 112 that is not a valid VRRP
advert, with the codec's reason), an ``Answer`` (an ARP reply or a Neighbor Advertisement: who holds an
address), or None (anything else). Nothing raises.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from struct import Struct

from pyvrrpd.core.packet import PROTO_VRRP, Advertisement, DecodeError, IPAddress, decode, decode_ipv4_packet

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
VLAN_TAGS = (0x8100, 0x88A8)
ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
ND_OPT_TARGET_LLADDR = 2

_ETH = Struct("!6s6sH")
_ARP = Struct("!HHBBH6s4s6s4s")


@dataclass(frozen=True, slots=True)
class Heard:
    """One well-formed VRRP advert as seen on ``iface`` at ``t`` (seconds, the capture's clock)."""

    t: float
    iface: str
    mac: str  # Ethernet source
    src: IPAddress
    dst: IPAddress
    ttl: int  # TTL or hop limit
    advert: Advertisement

    @property
    def family(self) -> int:
        return self.src.version


@dataclass(frozen=True, slots=True)
class Malformed:
    """IP protocol 112 that is not a valid VRRP advert; ``reason`` is the codec's label."""

    t: float
    iface: str
    mac: str
    family: int
    src: IPAddress | None  # None when even the IP header is broken
    vrid: int | None  # the second byte of the VRRP header, when there is one
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Answer:
    """An ARP reply or a Neighbor Advertisement: ``mac`` says it holds ``address``."""

    t: float
    iface: str
    address: IPAddress
    mac: str


Observation = Heard | Malformed | Answer


def format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def parse_frame(frame: bytes, iface: str, t: float) -> Observation | None:
    """One captured Ethernet frame (VLAN tags allowed) → an observation, or None if it is none of ours."""
    if len(frame) < _ETH.size:
        return None
    _, src_mac, ethertype = _ETH.unpack_from(frame)
    offset = _ETH.size
    for _ in range(2):  # 802.1Q / 802.1ad tags, at most two
        if ethertype not in VLAN_TAGS or len(frame) < offset + 4:
            break
        ethertype = int.from_bytes(frame[offset + 2:offset + 4], "big")
        offset += 4
    payload = frame[offset:]
    mac = format_mac(src_mac)
    if ethertype == ETH_P_IP:
        return _ipv4(payload, iface, t, mac)
    if ethertype == ETH_P_IPV6:
        return _ipv6(payload, iface, t, mac)
    if ethertype == ETH_P_ARP:
        return _arp(payload, iface, t)
    return None


def _ipv4(data: bytes, iface: str, t: float, mac: str) -> Observation | None:
    if len(data) >= 10 and data[9] != PROTO_VRRP:
        return None
    try:
        adv, src, dst = decode_ipv4_packet(data, unicast=True)  # TTL: reported, not a reason to drop
    except DecodeError as exc:
        src_ip = ipaddress.IPv4Address(data[12:16]) if len(data) >= 20 else None
        ihl = (data[0] & 0x0F) * 4 if data else 0
        vrid = data[ihl + 1] if ihl >= 20 and len(data) > ihl + 1 else None
        return Malformed(t, iface, mac, 4, src_ip, vrid, exc.reason.value, exc.detail)
    return Heard(t, iface, mac, src, dst, data[8], adv)


def _ipv6(data: bytes, iface: str, t: float, mac: str) -> Observation | None:
    if len(data) < 40 or data[0] >> 4 != 6:
        if len(data) > 6 and data[6] == PROTO_VRRP:
            return Malformed(t, iface, mac, 6, None, None, "bad_ip_header",
                             f"not a valid IPv6 header ({len(data)} bytes)")
        return None
    next_header, hop_limit = data[6], data[7]
    src, dst = ipaddress.IPv6Address(data[8:24]), ipaddress.IPv6Address(data[24:40])
    length = int.from_bytes(data[4:6], "big")
    body = data[40:40 + length]
    if next_header == ICMPV6:
        return _neighbor_advert(body, iface, t, mac)
    if next_header != PROTO_VRRP:
        return None
    vrid = body[1] if len(body) > 1 else None
    if len(body) < length:
        return Malformed(t, iface, mac, 6, src, vrid, "bad_ip_length",
                         f"payload length {length} but only {len(body)} bytes received")
    try:
        adv = decode(body, family=6, src=src, dst=dst, ttl=hop_limit, unicast=True)
    except DecodeError as exc:
        return Malformed(t, iface, mac, 6, src, vrid, exc.reason.value, exc.detail)
    return Heard(t, iface, mac, src, dst, hop_limit, adv)


def _neighbor_advert(icmp: bytes, iface: str, t: float, mac: str) -> Answer | None:
    if len(icmp) < 24 or icmp[0] != ND_NEIGHBOR_ADVERT:
        return None
    target = ipaddress.IPv6Address(icmp[8:24])
    holder = mac
    i = 24
    while i + 2 <= len(icmp):  # options: type, length in units of 8 bytes
        opt_type, opt_len = icmp[i], icmp[i + 1] * 8
        if opt_len == 0:
            break
        if opt_type == ND_OPT_TARGET_LLADDR and opt_len >= 8 and i + 8 <= len(icmp):
            holder = format_mac(icmp[i + 2:i + 8])
            break
        i += opt_len
    return Answer(t, iface, target, holder)


def _arp(data: bytes, iface: str, t: float) -> Answer | None:
    if len(data) < _ARP.size:
        return None
    htype, ptype, hlen, plen, op, sha, spa, _, _ = _ARP.unpack_from(data)
    if (htype, ptype, hlen, plen, op) != (1, ETH_P_IP, 6, 4, 2):  # Ethernet/IPv4 replies only
        return None
    return Answer(t, iface, ipaddress.IPv4Address(spa), format_mac(sha))
