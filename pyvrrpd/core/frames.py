"""Ethernet frames announcing a VIP after a takeover, as keepalived 2.2.7 sends them.

Pure byte builders; the adapter writes the result to an ``AF_PACKET`` socket bound to the interface.
``virtual_mac`` gives the RFC 5798 §7.3 virtual router MAC (the source of these frames with use_vmac).

* Gratuitous ARP: an ARP *request* (op 1) broadcast, sender = target = VIP, sender MAC = the
  interface (or virtual) MAC, target MAC zero (RFC 9568 errata 7947/7949).
* Unsolicited Neighbor Advertisement: Ethernet + IPv6 + ICMPv6 from the VIP to ff02::1 with hop
  limit 255, flags Override (+ Router when the host forwards), Target Link-Layer Address = MAC.
"""

from __future__ import annotations

import ipaddress
from struct import Struct

from pyvrrpd.core.packet import checksum

_ETHER = Struct("!6s6sH")
_ARP = Struct("!HHBBH6s4s6s4s")
_IP6 = Struct("!IHBB16s16s")  # version|class|flow, payload length, next header, hop limit, src, dst
_NA = Struct("!BBHI16sBB6s")  # type, code, checksum, flags, target, option type, option length, MAC
_PSEUDO6 = Struct("!16s16sI3xB")

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
_BROADCAST = b"\xff" * 6
_ALL_NODES = ipaddress.IPv6Address("ff02::1")
_ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
_ICMPV6 = 58
_NEIGHBOR_ADVERTISEMENT = 136
_FLAG_ROUTER = 0x80000000
_FLAG_OVERRIDE = 0x20000000
_OPT_TARGET_LLADDR = 2



def virtual_mac(vrid: int, version: int = 4) -> bytes:
    """RFC 5798 virtual router MAC: 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6)."""
    if not 1 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} is out of range 1-255")
    return bytes((0, 0, 0x5E, 0, 1 if version == 4 else 2, vrid))


def mac_bytes(mac: str | bytes) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` (as pyroute2 reports it) or 6 raw bytes → 6 raw bytes."""
    raw = bytes.fromhex(mac.replace(":", "").replace("-", "")) if isinstance(mac, str) else bytes(mac)
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def gratuitous_arp(mac: str | bytes, vip: ipaddress.IPv4Address) -> bytes:
    """42-byte gratuitous ARP request frame for ``vip`` from ``mac`` (the NIC pads it to 60)."""
    sha = mac_bytes(mac)
    ip = vip.packed
    return _ETHER.pack(_BROADCAST, sha, ETH_P_ARP) + _ARP.pack(1, 0x0800, 6, 4, 1, sha, ip, bytes(6), ip)


def unsolicited_na(mac: str | bytes, vip: ipaddress.IPv6Address, *, router: bool = False) -> bytes:
    """86-byte unsolicited Neighbor Advertisement frame for ``vip`` (Override; Router if asked)."""
    lladdr = mac_bytes(mac)
    src, dst = vip.packed, _ALL_NODES.packed
    flags = _FLAG_OVERRIDE | (_FLAG_ROUTER if router else 0)
    icmp = _NA.pack(_NEIGHBOR_ADVERTISEMENT, 0, 0, flags, src, _OPT_TARGET_LLADDR, 1, lladdr)
    cks = checksum(icmp, _PSEUDO6.pack(src, dst, len(icmp), _ICMPV6))
    icmp = icmp[:2] + cks.to_bytes(2, "big") + icmp[4:]
    ip6 = _IP6.pack(6 << 28, len(icmp), _ICMPV6, 255, src, dst)
    return _ETHER.pack(_ALL_NODES_MAC, lladdr, ETH_P_IPV6) + ip6 + icmp
