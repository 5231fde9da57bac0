"""The advert recorder's frame parser (tests/net/adverts.py): adverts over IPv4 and IPv6, and garbage."""

from __future__ import annotations

import ipaddress
import os
import struct

import pytest

from tests.net import adverts
from tests.net.packets import ADVERT_V2, ADVERT_V3_6

MAC = bytes.fromhex("020000000011")


def ipv4_frame(payload: bytes, proto: int = 112, src: str = "198.51.100.11") -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, 255, proto, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address("224.0.0.18").packed)
    return bytes.fromhex("01005e000012") + MAC + b"\x08\x00" + header + payload


def ipv6_frame(payload: bytes, next_header: int = 112, src: str = "fe80::11") -> bytes:
    header = (struct.pack("!IHBB", 6 << 28, len(payload), next_header, 255) + ipaddress.IPv6Address(src).packed
              + ipaddress.IPv6Address("ff02::12").packed)
    return bytes.fromhex("333300000012") + MAC + b"\x86\xdd" + header + payload


def test_a_v2_advert_over_ipv4():
    assert adverts.parse(ipv4_frame(ADVERT_V2)) == {
        "mac": "02:00:00:00:00:11", "src": "198.51.100.11", "version": 2, "vrid": 51, "prio": 150}


def test_a_v3_advert_over_ipv6_and_priority_zero():
    zero = ADVERT_V3_6[:2] + b"\x00" + ADVERT_V3_6[3:]
    assert adverts.parse(ipv6_frame(zero)) == {
        "mac": "02:00:00:00:00:11", "src": "fe80::11", "version": 3, "vrid": 52, "prio": 0}


@pytest.mark.parametrize("frame", [
    b"", b"\x00" * 13, b"\xff" * 14,  # shorter than an Ethernet header / nothing behind it
    ipv4_frame(ADVERT_V2)[:33],  # IPv4 header cut short
    ipv4_frame(b"\x21\x33\x96"),  # VRRP header cut short
    ipv6_frame(b"\x31\x34"),
    ipv4_frame(ADVERT_V2, proto=1),  # ICMP, not VRRP
    ipv6_frame(ADVERT_V3_6, next_header=58),
    bytes.fromhex("ffffffffffff") + MAC + b"\x08\x06" + b"\x00" * 28,  # ARP
], ids=["empty", "13-bytes", "bare-ethernet", "short-ipv4", "short-vrrp4", "short-vrrp6", "icmp", "icmpv6", "arp"])
def test_anything_else_is_ignored(frame):
    assert adverts.parse(frame) is None


def test_random_bytes_never_raise():
    rng = [os.urandom(n) for n in (0, 1, 14, 20, 34, 54, 60, 200) for _ in range(50)]
    ipv4 = [b"\x00" * 12 + b"\x08\x00" + b"\x4f" + os.urandom(40) for _ in range(50)]  # IHL beyond the data
    for frame in rng + ipv4:
        result = adverts.parse(frame)
        assert result is None or set(result) == {"mac", "src", "version", "vrid", "prio"}
