"""AF_PACKET frame sending (GARP, unsolicited NA) and interface facts, checked with a sniffer in the peer."""

from __future__ import annotations

import ipaddress

import pytest

from pyvrrpd.net.constants import ETH_P_ARP, ETH_P_IPV6
from tests.net.packets import garp, unsolicited_na

pytestmark = pytest.mark.net

VIP4 = ipaddress.IPv4Address("198.51.100.100")
VIP6 = ipaddress.IPv6Address("2001:db8:1::100")


def test_interface_facts_agree_with_the_kernel(lab, agent):
    [info] = agent.run("d1", "linkinfo", "lan0")
    mac = lab.run("d1", ["cat", "/sys/class/net/lan0/address"]).stdout.strip().replace(":", "")
    index = int(lab.run("d1", ["cat", "/sys/class/net/lan0/ifindex"]).stdout)
    assert (info["index"], info["mac"], info["up"], info["running"]) == (index, mac, True, True)
    assert (info["nl_index"], info["nl_mac"], info["nl_up"], info["nl_running"]) == (index, mac, True, True)
    assert info["ipv4"] == "198.51.100.11"
    assert ipaddress.IPv6Address(info["ipv6_link_local"]).is_link_local


def test_garp_reaches_the_peer(agent):
    mac = bytes.fromhex(agent.run("d1", "linkinfo", "lan0")[0]["mac"])
    frame = garp(mac, VIP4)
    sniffer = agent.start("d2", "sniff", "lan0", str(ETH_P_ARP), "--contains", VIP4.packed.hex())
    assert agent.run("d1", "frame", "lan0", frame.hex()) == [{"sent": True}]
    [seen] = sniffer.finish()
    assert bytes.fromhex(seen["frame"])[: len(frame)] == frame
    assert seen["pkttype"] == 1  # PACKET_BROADCAST


def test_unsolicited_na_reaches_the_peer(agent):
    mac = bytes.fromhex(agent.run("d1", "linkinfo", "lan0")[0]["mac"])
    frame = unsolicited_na(mac, VIP6)
    sniffer = agent.start("d2", "sniff", "lan0", str(ETH_P_IPV6), "--contains", frame[54:].hex())
    agent.run("d1", "frame", "lan0", frame.hex())
    [seen] = sniffer.finish()
    assert bytes.fromhex(seen["frame"]) == frame
    assert seen["pkttype"] == 2  # PACKET_MULTICAST
