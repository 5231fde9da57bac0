"""Hand-made packets for the lab tests, built here (not with pyvrrpd.core) so the adapters are tested
against independent bytes."""

from __future__ import annotations

import ipaddress
import struct

# reference/python-stack.md §9.2: v2, VRID 51, priority 150, 198.51.100.100, adv 1 s (keepalived's wire bytes)
ADVERT_V2 = bytes.fromhex("21339601" "00011e32" "c6336464" "0000000000000000")
# v3 IPv6, VRID 52, priority 150, adv 10 cs, 2001:db8:1::100; its checksum depends on the source, which
# differs in the lab, so the sending kernel (IPV6_CHECKSUM) rewrites it.
ADVERT_V3_6 = bytes.fromhex("31349601" "000a2501" "20010db8000100000000000000000100")


def checksum(data: bytes) -> int:
    """Internet checksum; 0 when run over data that includes a correct checksum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header6(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, length: int, proto: int) -> bytes:
    return src.packed + dst.packed + struct.pack("!I3xB", length, proto)


def garp(mac: bytes, vip: ipaddress.IPv4Address) -> bytes:
    """Gratuitous ARP request: broadcast, sender = target = VIP (RFC 9568 errata 7947/7949)."""
    return (b"\xff" * 6 + mac + b"\x08\x06"
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + vip.packed + b"\0" * 6 + vip.packed)


def unsolicited_na(mac: bytes, vip: ipaddress.IPv6Address) -> bytes:
    """Unsolicited NA from the VIP to ff02::1 with Override set and the target link-layer address option."""
    dst = ipaddress.IPv6Address("ff02::1")
    icmp = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + vip.packed + bytes((2, 1)) + mac
    icmp = icmp[:2] + struct.pack("!H", checksum(pseudo_header6(vip, dst, len(icmp), 58) + icmp)) + icmp[4:]
    ipv6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + vip.packed + dst.packed
    return b"\x33\x33\x00\x00\x00\x01" + mac + b"\x86\xdd" + ipv6 + icmp
