"""VRRP raw sockets between two lab nodes: multicast and unicast, IPv4 and IPv6, TTL/hop limit, sources."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from tests.net.packets import ADVERT_V2, ADVERT_V3_6, checksum, pseudo_header6

pytestmark = pytest.mark.net


def lan0_index(lab, node: str) -> int:
    return int(lab.run(node, ["cat", "/sys/class/net/lan0/ifindex"]).stdout)


def test_ipv4_multicast_advert(lab, agent):
    listener = agent.start("d2", "recv", "lan0", "4", "--unjoined")
    sent = agent.run("d1", "send", "lan0", "4", "224.0.0.18", ADVERT_V2.hex())
    [pkt, leak] = listener.finish()
    payload = bytes.fromhex(pkt["payload"])
    assert sent == [{"source": "198.51.100.11"}]
    assert payload[20:] == ADVERT_V2
    assert (pkt["src"], pkt["dst"], pkt["ttl"]) == ("198.51.100.11", "224.0.0.18", 255)
    assert pkt["ifindex"] == lan0_index(lab, "d2")
    # Our own IPv4 header: version/IHL, TOS 0xc0, total length, TTL 255, protocol 112, addresses.
    assert payload[0] == 0x45 and payload[1] == 0xC0 and payload[8] == 255 and payload[9] == 112
    assert struct.unpack("!H", payload[2:4])[0] == len(payload) == 40
    assert payload[12:16] == ipaddress.IPv4Address("198.51.100.11").packed
    assert checksum(payload[:20]) == 0  # the kernel filled in the header checksum
    # IP_MULTICAST_ALL=0: a socket on the same host that joined no group gets no group traffic.
    assert leak == {"unjoined_leak": False}


def test_ipv6_multicast_advert(lab, agent):
    listener = agent.start("d2", "recv", "lan0", "6")
    [sent] = agent.run("d1", "send", "lan0", "6", "ff02::12", ADVERT_V3_6.hex())
    [pkt] = listener.finish()
    payload = bytes.fromhex(pkt["payload"])
    src = ipaddress.IPv6Address(pkt["src"])
    assert src.is_link_local and str(src) == sent["source"]
    assert (pkt["dst"], pkt["ttl"]) == ("ff02::12", 255)
    assert pkt["ifindex"] == lan0_index(lab, "d2")
    assert payload[:6] == ADVERT_V3_6[:6] and payload[8:] == ADVERT_V3_6[8:]
    pseudo = pseudo_header6(src, ipaddress.IPv6Address("ff02::12"), len(payload), 112)
    assert checksum(pseudo + payload) == 0  # rewritten by the sender's kernel for the real source


def test_unicast_to_peer_with_ttl_override(lab, agent):
    listener4 = agent.start("d2", "recv", "lan0", "4", "--unicast", "--count", "2")
    listener6 = agent.start("d2", "recv", "lan0", "6", "--unicast", "--count", "2")
    agent.run("d1", "send", "lan0", "4", "198.51.100.12", ADVERT_V2.hex(), "--ttl", "255", "--ttl", "7")
    agent.run("d1", "send", "lan0", "6", "2001:db8:1::12", ADVERT_V3_6.hex(), "--src", "2001:db8:1::11",
              "--ttl", "255", "--ttl", "7")
    got4, got6 = listener4.finish(), listener6.finish()
    assert [(p["src"], p["dst"], p["ttl"]) for p in got4] == [("198.51.100.11", "198.51.100.12", 255),
                                                           ("198.51.100.11", "198.51.100.12", 7)]
    assert all(bytes.fromhex(p["payload"])[20:] == ADVERT_V2 for p in got4)
    assert [(p["src"], p["dst"], p["ttl"]) for p in got6] == [("2001:db8:1::11", "2001:db8:1::12", 255),
                                                           ("2001:db8:1::11", "2001:db8:1::12", 7)]


def test_kernel_errors_come_back_as_net_errors(agent):
    [errors] = agent.run("d1", "errors")
    for name in ("vrrp_socket", "link_info", "packet_sender"):
        assert errors[name]["ifname"] == "nosuch0" and errors[name]["errno"] == 19, name  # ENODEV
        assert "nosuch0" in errors[name]["message"] and "ENODEV" in errors[name]["message"]
    assert errors["foreign_source6"]["op"] == "send advert"
    assert errors["foreign_source6"]["target"] == "2001:db8:9::1 -> ff02::12"
    assert errors["foreign_source6"]["errno"] in (22, 99)  # EINVAL / EADDRNOTAVAIL: not a local address
    assert errors["short_frame"]["op"] == "send frame" and errors["short_frame"]["errno"] == 22
    assert errors["wrong_family"]["message"] == "send advert auto -> 224.0.0.18 on lan0: not an IPv6 address"
