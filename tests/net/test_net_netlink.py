"""Netlink adapter in a lab node: idempotent VIPs, routes and rules, VMAC links, the event monitor."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.net


def test_vips_are_idempotent_listed_and_cleaned(agent):
    [r] = agent.run("d1", "vips")
    # add twice each: 198.51.100.100/32 label lan0:vip, 2001:db8:1::100/128, then 203.0.113.101/24 brd + scope link
    assert r["adds"] == [True, False, True, False, True]
    listed = {address: (flags, label, scope) for address, flags, label, scope in r["listed"]}
    assert listed["198.51.100.100/32"] == (0x80, "lan0:vip", 0)  # IFA_F_PERMANENT
    assert listed["2001:db8:1::100/128"][0] & 0x02  # IFA_F_NODAD
    assert listed["203.0.113.101/24"][2] == 253  # scope link
    assert "inet 203.0.113.101/24 brd 203.0.113.255 scope link" in r["shown"]
    assert "inet6 2001:db8:1::100/128 scope global nodad" in r["shown"]
    # The interface's own addresses, never a VIP.
    assert r["primary"] == "198.51.100.11" and r["ll"].startswith("fe80::")
    assert r["cleaned"] == [True, True, True]
    assert r["dels"] == [False, False, False]  # already gone: success, not an error
    assert sorted(r["after"]) == sorted(["198.51.100.11/24", "2001:db8:1::11/64", r["ll"] + "/64"])
    no_dev, bad_scope = r["errors"]
    assert no_dev["message"] == "add address 198.51.100.100/32 on nosuch0: No such device (ENODEV)"
    assert (bad_scope["op"], bad_scope["ifname"], bad_scope["target"], bad_scope["errno"]) == (
        "add address", "lan0", "198.51.100.102/24", 22)
    assert r["del_missing_dev"] is False


def test_routes_and_rules_are_idempotent(agent):
    [r] = agent.run("d1", "routes")
    assert r["adds"] == [[True, False]] * 4 and r["dels"] == [[True, False]] * 4
    assert r["rule_adds"] == [[True, False]] * 3 and r["rule_dels"] == [[True, False]] * 3
    shown = r["shown"]
    assert "10.0.0.0/8 via 198.51.100.1 dev lan0 proto static" in shown["v4"]
    assert "203.0.113.0/24 dev lan0 table 1000 proto static scope link src 198.51.100.11 metric 7" in shown["v4"]
    assert "blackhole 203.0.113.128/25" in shown["v4"]
    assert "default via 2001:db8:1::1 dev lan0" in shown["v6"]
    assert "100:\tfrom 198.51.100.100 lookup 1000" in shown["rules4"]
    assert "from all fwmark 0x10/0xff lookup 1000" in shown["rules4"]
    assert "from all to 2001:db8:2::/48 iif lan0 lookup 1000" in shown["rules6"]
    after = r["after"]
    assert "1000" not in after["v4"] and "10.0.0.0" not in after["v4"] and "blackhole" not in after["v4"]
    assert "1000" not in after["rules4"] and "1000" not in after["rules6"]
    [unreachable] = r["errors"]
    assert unreachable["message"] == "add route 10.1.0.0/16 via 203.0.113.1: Network is unreachable (ENETUNREACH)"


def test_vmac_macvlan_created_configured_and_removed(agent):
    [r] = agent.run("d1", "vmac")
    assert r["mac"] == "00005e000133" and r["v6_mac"] == "00005e000234"
    assert r["again_index"] == r["index"]  # adopting an existing matching macvlan
    details = r["details"]
    assert "vrrp.51@lan0" in details and "link/ether 00:00:5e:00:01:33" in details
    assert "macvlan mode bridge" in details and "addrgenmode random" in details and "UP" in details
    assert r["sysctls"] == {"arp_ignore": "1", "accept_local": "1", "rp_filter": "0", "promote_secondaries": "1"}
    assert r["parent"] == {"arp_ignore": "1", "arp_filter": "1"}
    assert r["saved"] == {"net/ipv4/conf/lan0/arp_ignore": r["before"]["arp_ignore"],
                          "net/ipv4/conf/lan0/arp_filter": r["before"]["arp_filter"]}
    assert r["restored"] == r["before"]
    taken, not_macvlan = r["errors"]
    assert taken["errno"] == 17 and "not a macvlan on lan0" in taken["message"]
    assert not_macvlan["message"] == "delete vmac on lan0: refusing: it is a veth interface, not a macvlan"
    assert r["deleted"] == [True, False, True]
    assert "vrrp" not in r["links"]


def test_ha_suspend_address_source_sees_the_addresses_and_their_changes(agent):
    [r] = agent.run("d1", "addresses")
    assert "198.51.100.11" in r["initial"] and "127.0.0.1" in r["initial"] and "198.51.100.78" not in r["initial"]
    assert [e for e in r["events"] if e[1] == "198.51.100.78"] == [[True, "198.51.100.78"], [False, "198.51.100.78"]]


def test_monitor_reports_link_and_address_changes(agent):
    [r] = agent.run("d1", "monitor")
    events = [(e["type"], e["kind"], e.get("name") or e.get("ifname"), e.get("address") or e.get("old_name"))
              for e in r["events"]]
    expected = [
        ("AddressEvent", "added", "lan0", "198.51.100.77/32"),
        ("LinkEvent", "down", "lan0", "None"),
        ("LinkEvent", "up", "lan0", "None"),
        ("LinkEvent", "added", "mon0", "None"),
        ("LinkEvent", "renamed", "mon1", "mon0"),
        ("LinkEvent", "deleted", "mon1", "None"),
        ("AddressEvent", "removed", "lan0", "198.51.100.77/32"),
    ]
    # IPv6 addresses may come and go with the link in between; the rest must appear in this order.
    assert [e for e in events if e[0] == "LinkEvent" or "198.51.100.77" in e[3]] == expected
