"""GARP and unsolicited NA frames, byte for byte against scapy."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from pyvrrpd.core.frames import gratuitous_arp, mac_bytes, unsolicited_na, virtual_mac

macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


@given(mac=macs, vip=st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_gratuitous_arp_matches_scapy(mac: str, vip: ipaddress.IPv4Address) -> None:
    expected = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / ARP(
        op=1, hwsrc=mac, psrc=str(vip), hwdst="00:00:00:00:00:00", pdst=str(vip))
    assert gratuitous_arp(mac, vip) == bytes(expected)


@given(mac=macs, vip=st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address), router=st.booleans())
def test_unsolicited_na_matches_scapy(mac: str, vip: ipaddress.IPv6Address, router: bool) -> None:
    expected = (Ether(dst="33:33:00:00:00:01", src=mac)
                / IPv6(src=str(vip), dst="ff02::1", hlim=255)
                / ICMPv6ND_NA(R=int(router), S=0, O=1, tgt=str(vip))
                / ICMPv6NDOptDstLLAddr(lladdr=mac))
    assert unsolicited_na(mac, vip, router=router) == bytes(expected)


def test_unsolicited_na_as_keepalived_sends_it() -> None:
    frame = Ether(unsolicited_na("02:00:5e:10:00:01", ipaddress.IPv6Address("2001:db8:1::100")))
    na = frame[ICMPv6ND_NA]
    assert (frame[IPv6].hlim, frame[IPv6].dst, na.R, na.S, na.O) == (255, "ff02::1", 0, 0, 1)
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == "02:00:5e:10:00:01"


def test_mac_forms() -> None:
    assert mac_bytes("00:00:5E:00:01:33") == mac_bytes(b"\x00\x00\x5e\x00\x01\x33") == bytes.fromhex("00005e000133")
    with pytest.raises(ValueError):
        mac_bytes("00:00:5e")


def test_virtual_mac_is_rfc_5798s():
    assert virtual_mac(51) == bytes.fromhex("00005e000133")
    assert virtual_mac(255, 6) == bytes.fromhex("00005e0002ff")
    for vrid in (0, 256, -1):
        with pytest.raises(ValueError, match="out of range"):
            virtual_mac(vrid)
