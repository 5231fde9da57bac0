"""Pure parts of the adapters: spec parsers, NetError messages, virtual MACs. No root needed."""

from __future__ import annotations

import errno
import ipaddress

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from pyvrrpd.net.errors import NetError
from pyvrrpd.net.netlink import virtual_mac, write_sysctl
from pyvrrpd.net.specs import AddressSpec, RouteSpec, RuleSpec, SpecError, parse_address, parse_route, parse_rule

ip = ipaddress.ip_address
net = ipaddress.ip_network


def test_parse_address_defaults_and_options():
    assert parse_address(["198.51.100.100"]) == AddressSpec(ipaddress.ip_interface("198.51.100.100/32"))
    assert parse_address(["2001:db8:1::100"]).address.network.prefixlen == 128
    spec = parse_address("198.51.100.100/24 brd + dev lan0 scope link label lan0:1 peer 198.51.100.200".split())
    assert spec == AddressSpec(address=ipaddress.ip_interface("198.51.100.100/24"), dev="lan0",
                               broadcast=ip("198.51.100.255"), scope=253, label="lan0:1", peer=ip("198.51.100.200"))
    assert parse_address(["203.0.113.1/24", "broadcast", "203.0.113.127", "scope", "200"]).scope == 200
    assert str(spec) == "198.51.100.100/24"


@pytest.mark.parametrize("words, message", [
    ([], "empty"),
    (["198.51.100.300"], "not an IP address"),
    (["198.51.100.1", "no_track"], "unsupported word 'no_track'"),
    (["198.51.100.1", "dev"], "'dev' needs a value"),
    (["2001:db8::1", "brd", "+"], "brd only applies to IPv4"),
    (["198.51.100.1", "peer", "2001:db8::1"], "not an IPv4 address"),
    (["198.51.100.1", "scope", "galaxy"], "scope 'galaxy' is not a number"),
    (["198.51.100.1", "scope", "256"], "out of range"),
])
def test_parse_address_errors(words, message):
    with pytest.raises(SpecError, match=message):
        parse_address(words)


@pytest.mark.parametrize("line, expected", [
    ("10.0.0.0/8 via 198.51.100.1 dev lan0", RouteSpec(net("10.0.0.0/8"), via=ip("198.51.100.1"), dev="lan0")),
    ("to 203.0.113.0/24 gw 198.51.100.1 table 100 metric 5 onlink",
     RouteSpec(net("203.0.113.0/24"), via=ip("198.51.100.1"), table=100, metric=5, onlink=True)),
    ("src 198.51.100.100 to 0.0.0.0/0 via 198.51.100.1 table 103",
     RouteSpec(net("0.0.0.0/0"), via=ip("198.51.100.1"), src=ip("198.51.100.100"), table=103)),
    ("default via inet6 2001:db8:1::1 dev lan0", RouteSpec(net("::/0"), via=ip("2001:db8:1::1"), dev="lan0")),
    ("default via 2001:db8:1::1", RouteSpec(net("::/0"), via=ip("2001:db8:1::1"))),
    ("default dev lan0", RouteSpec(net("0.0.0.0/0"), dev="lan0")),
    ("2001:db8:2::/64 dev lan0 src 2001:db8:1::100 priority 256",
     RouteSpec(net("2001:db8:2::/64"), dev="lan0", src=ip("2001:db8:1::100"), metric=256)),
    ("203.0.113.0/24 dev lan0 scope link table main", RouteSpec(net("203.0.113.0/24"), dev="lan0", scope=253)),
    ("blackhole 203.0.113.128/25 table local", RouteSpec(net("203.0.113.128/25"), type="blackhole", table=255)),
    ("unreachable 203.0.113.7", RouteSpec(net("203.0.113.7/32"), type="unreachable")),
])
def test_parse_route(line, expected):
    assert parse_route(line.split()) == expected


@pytest.mark.parametrize("line, message", [
    ("via 198.51.100.1", "no destination"),
    ("10.0.0.1/8 via 198.51.100.1", "not a network prefix"),
    ("10.0.0.0/8 via 2001:db8::1", "mix IPv4 and IPv6"),
    ("default via inet 2001:db8::1", "not an IPv4 address"),
    ("10.0.0.0/8 nexthop via 198.51.100.1", "unsupported word 'nexthop'"),
    ("10.0.0.0/8 table 0", "out of range"),
    ("10.0.0.0/8 table", "'table' needs a value"),
    ("10.0.0.0/8 metric x", "metric 'x' is not a number"),
])
def test_parse_route_errors(line, message):
    with pytest.raises(SpecError, match=message):
        parse_route(line.split())


@pytest.mark.parametrize("line, expected", [
    ("from 198.51.100.100 table 102 preference 16384",
     RuleSpec(src=net("198.51.100.100/32"), table=102, priority=16384)),
    ("from 203.0.113.0/24 to 198.51.100.0/26 table 51 dev lan0 pref 7",
     RuleSpec(src=net("203.0.113.0/24"), dst=net("198.51.100.0/26"), table=51, iif="lan0", priority=7)),
    ("to 2001:db8:2::/48 lookup 1000 iif lan0 oif lan1",
     RuleSpec(version=6, dst=net("2001:db8:2::/48"), table=1000, iif="lan0", oif="lan1")),
    ("from all fwmark 0x10/0xff lookup 123 priority 1000",
     RuleSpec(fwmark=0x10, fwmask=0xFF, table=123, priority=1000)),
    ("iif vrrp.51 table 51", RuleSpec(iif="vrrp.51", table=51)),
    ("from default to 198.51.100.0/24", RuleSpec(dst=net("198.51.100.0/24"))),
])
def test_parse_rule(line, expected):
    assert parse_rule(line.split()) == expected


@pytest.mark.parametrize("line, message", [
    ("from 198.51.100.0/24 to 2001:db8::/32", "mixes IPv4 and IPv6"),
    ("from 198.51.100.0/24 uidrange 1-2", "unsupported word 'uidrange'"),
    ("fwmark x table 1", "fwmark 'x' is not a number"),
])
def test_parse_rule_errors(line, message):
    with pytest.raises(SpecError, match=message):
        parse_rule(line.split())


def test_specs_print_as_ip_syntax():
    assert str(parse_route("10.0.0.0/8 via 198.51.100.1 dev lan0 table 7 metric 5 onlink".split())) == \
        "10.0.0.0/8 via 198.51.100.1 dev lan0 metric 5 table 7 onlink"
    assert str(parse_route("blackhole default".split())) == "blackhole default"
    assert str(parse_rule("from 198.51.100.0/24 fwmark 16/255 table 9 pref 3".split())) == \
        "from 198.51.100.0/24 fwmark 0x10/0xff table 9 priority 3"


def test_net_error_messages():
    err = NetError.wrap(NetlinkError(errno.EEXIST, "File exists"), "add address", ifname="lan0",
                        target="198.51.100.100/32")
    assert (err.errno, str(err)) == (17, "add address 198.51.100.100/32 on lan0: File exists (EEXIST)")
    err = NetError.wrap(OSError(errno.ENETDOWN, "down"), "send advert", ifname="lan0")
    assert str(err) == "send advert on lan0: Network is down (ENETDOWN)"
    assert str(NetError.wrap(ValueError("bad input"), "add route")) == "add route: bad input"
    assert str(NetError("open", ifname="x", detail="why")) == "open on x: why"


def test_virtual_mac():
    assert virtual_mac(51) == bytes.fromhex("00005e000133")
    assert virtual_mac(52, 6) == bytes.fromhex("00005e000234")
    with pytest.raises(ValueError):
        virtual_mac(0)


@pytest.mark.parametrize("key", ["kernel/hostname", "net/../kernel/hostname", "net//x", "/net/ipv4"])
def test_write_sysctl_only_touches_net_keys(key):
    with pytest.raises(NetError, match="must be a net/"):
        write_sysctl(key, 1)
