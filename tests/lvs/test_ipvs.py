"""The IPVS adapter's attribute encoding (the kernel itself is tested in tests/kernel) and the fake."""

from __future__ import annotations

import errno
import socket
import struct
import sys
from ipaddress import ip_address

import anyio
import pytest

from pyvrrpd.lvs import diff as d
from pyvrrpd.lvs import ipvs
from pyvrrpd.lvs import wire as w
from pyvrrpd.lvs.table import DROUTE, TUNNEL, Destination, DestKey, Service, ServiceKey, Table
from pyvrrpd.net.errors import NetError

S4 = ServiceKey(4, 6, ip_address("198.51.100.100"), 80)
S6 = ServiceKey(6, 6, ip_address("2001:db8:1::100"), 80)
F6 = ServiceKey(6, fwmark=9)
SERVICES = [Service(S4, "rr", 1, 300, 0xFFFFFF00, None), Service(S6, "sh", 0x18, 0, 128, None),
            Service(F6, "wlc", 0, 0, 128, "sip")]
DESTS = [
    Destination(DestKey(ip_address("203.0.113.11"), 80), 5, 0, 100, 10),
    Destination(DestKey(ip_address("2001:db8::11"), 0), 0, DROUTE),
    Destination(DestKey(ip_address("203.0.113.11"), 80), 1, TUNNEL, tun_type=1, tun_port=6080, tun_flags=1),
]


@pytest.mark.parametrize("svc", SERVICES)
def test_service_attributes_round_trip(svc):
    raw = w.attrs(w.service_attrs(svc))
    assert w.SVC_NETMASK in raw  # always sent (pyroute2 bug 3)
    back = w.decode_service(raw)
    assert back == svc


@pytest.mark.parametrize("dest", DESTS)
def test_dest_attributes_round_trip(dest):
    assert w.decode_dest(w.attrs(w.dest_attrs(dest)), 4) == dest


@pytest.mark.parametrize(("af", "mask", "raw"), [
    (4, 0xFFFFFFFF, b"\xff\xff\xff\xff"), (4, 0xFFFFFF00, b"\xff\xff\xff\x00"),
    (6, 128, (128).to_bytes(4, sys.byteorder)), (6, 64, (64).to_bytes(4, sys.byteorder)),
])
def test_netmask_bytes(af, mask, raw):
    assert w.netmask_bytes(af, mask) == raw


def _pyroute2_bytes(cmd: int, flags: int, attrs: list) -> bytes:
    from pyroute2.netlink.generic.ipvs import ipvsmsg

    msg = ipvsmsg()
    msg["cmd"], msg["version"] = cmd, 1
    msg["attrs"] = attrs
    msg["header"]["type"], msg["header"]["flags"], msg["header"]["sequence_number"] = 30, flags, 7
    msg.encode()
    return bytes(msg.data[:msg["header"]["length"]])


def test_same_bytes_as_pyroute2_for_a_destination_command():
    """The codec writes what pyroute2's general encoder writes (the layout is checked, not just our reading)."""
    dest = DESTS[0]
    ours = ipvs.request(30, 7, d.EditDest(S4, dest))
    theirs = _pyroute2_bytes(6, 0x5, [
        ("IPVS_CMD_ATTR_SERVICE", {"attrs": [("IPVS_SVC_ATTR_AF", socket.AF_INET), ("IPVS_SVC_ATTR_PROTOCOL", 6),
                                             ("IPVS_SVC_ATTR_ADDR", "198.51.100.100"), ("IPVS_SVC_ATTR_PORT", 80)]}),
        ("IPVS_CMD_ATTR_DEST", {"attrs": [("IPVS_DEST_ATTR_ADDR_FAMILY", socket.AF_INET),
                                          ("IPVS_DEST_ATTR_ADDR", "203.0.113.11"), ("IPVS_DEST_ATTR_PORT", 80),
                                          ("IPVS_DEST_ATTR_FWD_METHOD", 0), ("IPVS_DEST_ATTR_WEIGHT", 5),
                                          ("IPVS_DEST_ATTR_U_THRESH", 100), ("IPVS_DEST_ATTR_L_THRESH", 10)]}),
    ])
    assert ours == theirs


def test_same_bytes_as_pyroute2_for_a_service_command():
    svc = SERVICES[0]
    ours = ipvs.request(30, 7, d.EditService(svc))
    theirs = _pyroute2_bytes(2, 0x5, [
        ("IPVS_CMD_ATTR_SERVICE", {"attrs": [
            ("IPVS_SVC_ATTR_AF", socket.AF_INET), ("IPVS_SVC_ATTR_PROTOCOL", 6),
            ("IPVS_SVC_ATTR_ADDR", "198.51.100.100"), ("IPVS_SVC_ATTR_PORT", 80), ("IPVS_SVC_ATTR_SCHED_NAME", "rr"),
            ("IPVS_SVC_ATTR_FLAGS", {"flags": 1, "mask": 0xFFFFFFFF}), ("IPVS_SVC_ATTR_TIMEOUT", 300),
            ("IPVS_SVC_ATTR_NETMASK", "255.255.255.0")]}),
    ])
    assert ours == theirs


def test_tunnel_attributes_bytes():
    """GUE port 6080 with csum: TUN_TYPE u8 1, TUN_PORT 6080 in network order, TUN_FLAGS u16 1 (the kernel's
    IPVS_DEST_ATTR_TUN_* = 13, 14, 15), after the forwarding method TUNNEL (2)."""
    raw = w.dest_attrs(DESTS[2])
    assert raw.endswith(
        b"\x05\x00\x0d\x00\x01\x00\x00\x00"  # TUN_TYPE: len 5, u8 1, padded to 8
        b"\x06\x00\x0e\x00\x17\xc0\x00\x00"  # TUN_PORT: len 6, be16 6080 (0x17c0), padded
        b"\x06\x00\x0f\x00\x01\x00\x00\x00"  # TUN_FLAGS: len 6, u16 1 (csum), padded
    )
    assert struct.pack("=HHI", 8, w.DEST_FWD, TUNNEL) in raw
    plain = w.dest_attrs(DESTS[0])  # not a tunnel: no tunnel attributes (kernels before 5.2 know none)
    assert not {w.DEST_TUN_TYPE, w.DEST_TUN_PORT, w.DEST_TUN_FLAGS} & set(w.attrs(plain))


def test_same_bytes_as_pyroute2_for_a_tunnel_destination():
    dest = Destination(DestKey(ip_address("203.0.113.11"), 80), 1, TUNNEL, tun_type=2, tun_port=0, tun_flags=1)
    ours = ipvs.request(30, 7, d.AddDest(S4, dest))
    theirs = _pyroute2_bytes(5, 0x605, [
        ("IPVS_CMD_ATTR_SERVICE", {"attrs": [("IPVS_SVC_ATTR_AF", socket.AF_INET), ("IPVS_SVC_ATTR_PROTOCOL", 6),
                                             ("IPVS_SVC_ATTR_ADDR", "198.51.100.100"), ("IPVS_SVC_ATTR_PORT", 80)]}),
        ("IPVS_CMD_ATTR_DEST", {"attrs": [("IPVS_DEST_ATTR_ADDR_FAMILY", socket.AF_INET),
                                          ("IPVS_DEST_ATTR_ADDR", "203.0.113.11"), ("IPVS_DEST_ATTR_PORT", 80),
                                          ("IPVS_DEST_ATTR_FWD_METHOD", TUNNEL), ("IPVS_DEST_ATTR_WEIGHT", 1),
                                          ("IPVS_DEST_ATTR_U_THRESH", 0), ("IPVS_DEST_ATTR_L_THRESH", 0),
                                          ("IPVS_DEST_ATTR_TUN_TYPE", 2), ("IPVS_DEST_ATTR_TUN_PORT", 0),
                                          ("IPVS_DEST_ATTR_TUN_FLAGS", 1)]}),
    ])
    assert ours == theirs


@pytest.mark.parametrize("dest", DESTS)
@pytest.mark.parametrize("service", [S4, S6, F6])
def test_the_fast_destination_message_is_the_general_one(service, dest):
    for cmd, flags in ((w.CMD_NEW_DEST, 0x605), (w.CMD_SET_DEST, 0x5)):
        general = w.message(30, cmd, flags, 7, w.nested_service_key(service) + w.nest(w.ATTR_DEST, w.dest_attrs(dest)))
        assert w.dest_message(30, cmd, flags, 7, service, dest) == general


def test_fast_constructors_make_the_same_values():
    from pyvrrpd.lvs import table as t

    for addr, port in ((ip_address("203.0.113.11"), 80), (ip_address("2001:db8::11"), 0)):
        key = t.dest_key(addr, port)
        assert key == DestKey(addr, port) and hash(key) == hash(DestKey(addr, port))
        fast, slow = t.dest(key, 3, TUNNEL, 1, 2, 1, 6080, 1), Destination(DestKey(addr, port), 3, TUNNEL, 1, 2, 1, 6080, 1)
        assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)


def test_set_timeouts_message_bytes():
    """lvs_timeouts: IPVS_CMD_SET_CONFIG (12) with the three u32 timeouts (attributes 4, 5, 6)."""
    raw = ipvs.request(30, 7, d.SetTimeouts(900, 0, 60))
    assert raw == (struct.pack("=IHHII", 44, 30, 0x5, 7, 0) + bytes([12, 1, 0, 0])
                   + struct.pack("=HHI", 8, 4, 900) + struct.pack("=HHI", 8, 5, 0) + struct.pack("=HHI", 8, 6, 60))


@pytest.mark.parametrize("op", [
    d.AddService(SERVICES[1]), d.DelService(F6), d.AddDest(S6, DESTS[1]), d.DelDest(S4, DESTS[0].key), d.Flush(),
])
def test_requests_parse_back(op):
    (msg,) = w.messages(ipvs.request(30, 9, op))
    kind, flags, seq, payload = msg
    assert (kind, seq) == (30, 9) and flags & w.NLM_F_ACK
    top = w.genl_attrs(payload)
    if isinstance(op, d.Flush):
        assert top == {}
    else:
        key = w.decode_service(w.attrs(top[w.ATTR_SERVICE]))
        assert key.key == (op.service.key if isinstance(op, d.AddService) else op.key if isinstance(op, d.DelService)
                           else op.service)


@pytest.mark.parametrize("garbage", [
    b"", b"\x00", b"\x04\x00\x01", b"\xff\xff\x01\x00abcd", b"\x03\x00\x01\x00",
    b"\x08\x00\x01\x00\x63\x00\x00\x00",  # af 99
    b"\x06\x00\x01\x00\x02\x00\x00\x00\x05\x00\x03\x00\x01\x00\x00\x00",  # AF_INET, 1-byte address
])
def test_garbage_service_attributes_are_wire_errors(garbage):
    with pytest.raises(w.WireError):
        w.decode_service(w.attrs(garbage))


@pytest.mark.parametrize("garbage", [b"\x10\x00\x00\x00", b"\xff" * 20, b"\x20\x00\x00\x00" + b"\x00" * 12])
def test_garbage_netlink_datagrams_are_wire_errors(garbage):
    with pytest.raises(w.WireError):
        w.messages(garbage)


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


def test_fake_deletes_a_service_with_its_destinations_even_ones_added_behind_its_back():
    async def main():
        a, b, c = (Destination(DestKey(ip_address(f"203.0.113.{i}"), 80)) for i in (11, 12, 13))
        fake = ipvs.FakeIpvs(Table({S4: Service(S4), S6: Service(S6)}, {(S4, a.key): a, (S6, a.key): a}))
        await fake.apply(d.AddDest(S4, b))
        fake.dests[(S4, c.key)] = c  # as a test does: someone's ipvsadm -a
        del fake.dests[(S4, a.key)]
        assert await fake.apply_many([d.DelService(S4)]) == [None]
        assert fake.table == Table({S6: Service(S6)}, {(S6, a.key): a})
        await fake.apply(d.AddService(Service(S4)))  # back, empty
        assert fake.table == Table({S4: Service(S4), S6: Service(S6)}, {(S6, a.key): a})

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



def _kernel_answering(*datagrams: bytes) -> tuple[ipvs.KernelIpvs, socket.socket]:
    """A KernelIpvs on one end of a datagram socket pair; the other end has queued the 'kernel's' answers."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    for data in datagrams:
        theirs.send(data)
    return ipvs.KernelIpvs(ours, 30), theirs


def _reply(seq: int, kind: int, body: bytes) -> bytes:
    return w.message(kind, 1, 2, seq, body) if kind >= 16 else (
        struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0) + body)


@pytest.mark.parametrize("answer", [
    b"\x01\x02\x03",  # not a netlink message
    _reply(1, 30, w.nest(w.ATTR_SERVICE, b"\x08\x00\x01\x00\x63\x00\x00\x00")),  # af 99
    _reply(1, 30, w.nest(w.ATTR_DEST, b"")),  # no service attribute
    _reply(1, 2, b"\x01"),  # a short error message
])
def test_a_garbage_dump_is_a_net_error(answer):
    async def main():
        k, peer = _kernel_answering(answer, _reply(1, w.NLMSG_DONE, b"\0\0\0\0"))
        with pytest.raises(NetError) as exc:
            await k.dump()
        assert str(exc.value).startswith("ipvs dump")
        await k.close()
        peer.close()

    anyio.run(main)


def test_kernel_errors_become_net_errors_with_the_entry():
    async def main():
        k, peer = _kernel_answering(_reply(99, 2, struct.pack("=i", -1)),  # a stale answer, skipped
                                    _reply(1, 2, struct.pack("=i", -errno.EEXIST)))
        with pytest.raises(NetError) as exc:
            await k.apply(d.AddService(SERVICES[0]))
        assert exc.value.errno == errno.EEXIST and "TCP 198.51.100.100:80" in str(exc.value)
        peer.send(_reply(2, 2, struct.pack("=i", 0)))
        await k.apply(d.DelService(S4))  # acknowledged
        peer.recv(4096)
        sent2 = peer.recv(4096)
        assert w.messages(sent2)[0][2] == 2
        await k.close()
        peer.close()

    anyio.run(main)


def test_apply_many_sends_one_datagram_and_matches_each_answer():
    async def main():
        acks = (_reply(2, 2, struct.pack("=i", -errno.ENOENT)) + _reply(77, 2, struct.pack("=i", 0))
                + _reply(1, 2, struct.pack("=i", 0)) + _reply(3, 2, struct.pack("=i", 0)))
        k, peer = _kernel_answering(acks)
        ops = [d.AddService(SERVICES[0]), d.DelDest(S4, DESTS[0].key), d.AddDest(S4, DESTS[0])]
        errs = await k.apply_many(ops)
        assert errs[0] is None and errs[2] is None
        assert errs[1].errno == errno.ENOENT and "203.0.113.11:80" in str(errs[1])
        sent = w.messages(peer.recv(65536))
        assert [seq for _, _, seq, _ in sent] == [1, 2, 3]  # all three in one datagram
        # only the last asks for an acknowledgement: the kernel answers the others only when they fail
        assert [bool(flags & w.NLM_F_ACK) for _, flags, _, _ in sent] == [False, False, True]
        assert sent[0][1] & w.NLM_F_CREATE_EXCL == w.NLM_F_CREATE_EXCL
        peer.close()  # the 'kernel' is gone: every operation fails with a clear error
        errs = await k.apply_many([d.Flush()])
        assert errs[0] is not None and "flush" in str(errs[0])
        await k.close()

    anyio.run(main)


def test_apply_many_reads_until_the_last_operations_answer():
    async def main():
        # the kernel answers the second operation (it failed) and the third (it asked); the first, which
        # succeeded without asking, gets no answer at all
        k, peer = _kernel_answering(_reply(2, 2, struct.pack("=i", -errno.ESRCH)), _reply(3, 2, struct.pack("=i", 0)))
        ops = [d.AddService(SERVICES[0]), d.DelDest(S4, DESTS[0].key), d.AddDest(S4, DESTS[0])]
        errs = await k.apply_many(ops)
        assert errs[0] is None and errs[2] is None and errs[1].errno == errno.ESRCH
        assert await k.apply_many([]) == []
        await k.close()
        peer.close()

    anyio.run(main)


def test_request_without_ack_differs_only_in_the_flag():
    op = d.AddDest(S4, DESTS[0])
    (with_ack,), (without,) = w.messages(ipvs.request(30, 4, op)), w.messages(ipvs.request(30, 4, op, ack=False))
    assert with_ack[1] == without[1] | w.NLM_F_ACK and not without[1] & w.NLM_F_ACK
    assert bytes(with_ack[3]) == bytes(without[3])
