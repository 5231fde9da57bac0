"""The IPVS adapter's attribute encoding (the kernel itself is tested in tests/kernel) and the fake."""

from __future__ import annotations

import errno
import socket
from ipaddress import ip_address

import anyio
import pytest

from pyvrrpd.lvs import diff as d
from pyvrrpd.lvs import ipvs
from pyvrrpd.lvs.table import DROUTE, TUNNEL, Destination, DestKey, Service, ServiceKey, Table
from pyvrrpd.net.errors import NetError

S4 = ServiceKey(4, 6, ip_address("198.51.100.100"), 80)
S6 = ServiceKey(6, 6, ip_address("2001:db8:1::100"), 80)
F6 = ServiceKey(6, fwmark=9)


@pytest.mark.parametrize(("af", "mask", "text"), [
    (4, 0xFFFFFFFF, "255.255.255.255"), (4, 0xFFFFFF00, "255.255.255.0"),
    (6, 128, socket.inet_ntoa((128).to_bytes(4, "little" if socket.htons(1) != 1 else "big"))),
    (6, 64, socket.inet_ntoa((64).to_bytes(4, "little" if socket.htons(1) != 1 else "big"))),
])
def test_netmask_round_trip(af, mask, text):
    assert ipvs.encode_netmask(af, mask) == text
    assert ipvs.decode_netmask(af, text) == mask


def test_netmask_missing_means_host():
    assert ipvs.decode_netmask(4, None) == 0xFFFFFFFF and ipvs.decode_netmask(6, "") == 128


@pytest.mark.parametrize("svc", [
    Service(S4, "rr", 1, 300, 0xFFFFFF00, None),
    Service(S6, "sh", 0x18, 0, 128, None),
    Service(F6, "wlc", 0, 0, 128, "sip"),
])
def test_service_attributes_round_trip(svc):
    attrs = dict(ipvs.service_attrs(svc))
    attrs["IPVS_SVC_ATTR_FLAGS"] = {"flags": svc.flags | 2, "mask": 0xFFFFFFFF}  # the kernel adds HASHED
    back = ipvs.service_from_attrs(attrs)
    assert d.same_service(back, svc) and back.key == svc.key
    assert "IPVS_SVC_ATTR_NETMASK" in attrs  # always sent (pyroute2 bug 3)


@pytest.mark.parametrize("dest", [
    Destination(DestKey(ip_address("203.0.113.11"), 80), 5, 0, 100, 10),
    Destination(DestKey(ip_address("2001:db8::11"), 0), 0, DROUTE),
    Destination(DestKey(ip_address("203.0.113.11"), 80), 1, TUNNEL, tun_type=1, tun_port=6080, tun_flags=1),
])
def test_dest_attributes_round_trip(dest):
    attrs = dict(ipvs.dest_attrs(dest))
    assert ipvs.dest_from_attrs(attrs) == dest
    if dest.tun_type:
        assert attrs["IPVS_DEST_ATTR_TUN_PORT"] == socket.htons(6080)


def test_fake_applies_and_refuses_like_the_kernel():
    async def main():
        fake = ipvs.FakeIpvs()
        svc = Service(S4)
        await fake.apply(d.AddService(svc))
        with pytest.raises(NetError) as exc:
            await fake.apply(d.AddService(svc))
        assert exc.value.errno == errno.EEXIST
        assert str(exc.value) == "ipvs add service TCP 198.51.100.100:80 wlc: File exists (EEXIST)"
        dest = Destination(DestKey(ip_address("203.0.113.11"), 80))
        await fake.apply(d.AddDest(S4, dest))
        assert await fake.dump() == Table({S4: svc}, {(S4, dest.key): dest})
        fake.fail = lambda op: errno.ENOMEM if isinstance(op, d.DelDest) else None
        with pytest.raises(NetError) as exc:
            await fake.apply(d.DelDest(S4, dest.key))
        assert exc.value.errno == errno.ENOMEM and "203.0.113.11:80" in str(exc.value)
        assert fake.log == [d.AddService(svc), d.AddDest(S4, dest)]
        await fake.close()
        assert fake.closed

    anyio.run(main)


def test_open_without_ip_vs_is_a_clear_error():
    """This host's kernel has no ip_vs (test-environment.md §1): opening fails with a NetError."""
    async def main():
        try:
            port = await ipvs.KernelIpvs.open()
        except NetError as exc:
            assert "IPVS unavailable" in str(exc)
        else:  # a host with ip_vs: the dump works
            await port.dump()
            await port.close()

    anyio.run(main)


class _Msg(dict):
    def get(self, key, default=None):
        return dict.get(self, key, default)


class _GarbageSock:
    """Answers a dump with messages a broken or newer kernel might send."""

    def __init__(self, services, dests=()):
        self.services, self.dests = services, dests

    async def service(self, command, service=None):
        return [_Msg({"IPVS_CMD_ATTR_SERVICE": {"attrs": a}}) for a in self.services]

    async def dest(self, command, service, dest=None):
        return [_Msg({"IPVS_CMD_ATTR_DEST": {"attrs": a}}) for a in self.dests]

    def close(self):
        pass


GOOD_SVC = [("IPVS_SVC_ATTR_AF", socket.AF_INET), ("IPVS_SVC_ATTR_PROTOCOL", 6),
            ("IPVS_SVC_ATTR_ADDR", "198.51.100.100"), ("IPVS_SVC_ATTR_PORT", 80)]


@pytest.mark.parametrize(("services", "dests"), [
    ([[("IPVS_SVC_ATTR_AF", 99)]], []),  # unknown family
    ([[("IPVS_SVC_ATTR_AF", socket.AF_INET), ("IPVS_SVC_ATTR_ADDR", "not an address")]], []),
    ([[("IPVS_SVC_ATTR_AF", socket.AF_INET)]], []),  # no address, no fwmark
    ([[("garbage",)]], []),
    ([GOOD_SVC], [[("IPVS_DEST_ATTR_PORT", 80)]]),  # a destination without an address
    ([GOOD_SVC], [[("IPVS_DEST_ATTR_ADDR", b"\xff\x00")]]),
])
def test_a_garbage_dump_is_a_net_error(services, dests):
    async def main():
        with pytest.raises(NetError) as exc:
            await ipvs.KernelIpvs(_GarbageSock(services, dests)).dump()
        assert str(exc.value).startswith("ipvs dump")

    anyio.run(main)


def test_a_dump_without_optional_attributes_uses_defaults():
    async def main():
        table = await ipvs.KernelIpvs(_GarbageSock([GOOD_SVC], [[("IPVS_DEST_ATTR_ADDR", "203.0.113.11")]])).dump()
        (svc,) = table.services.values()
        assert (svc.scheduler, svc.netmask, svc.timeout) == ("", 0xFFFFFFFF, 0)
        (dest,) = table.dests.values()
        assert (str(dest.key), dest.weight, dest.fwd) == ("203.0.113.11:0", 0, 0)

    anyio.run(main)
