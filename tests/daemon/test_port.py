"""Port.handle(): decode, count, demultiplex by VRID and unicast peer, never block on a full inbox."""

from __future__ import annotations

import ipaddress
import struct

import anyio
import pytest

from pyvrrpd.core.packet import ADVERTISEMENT, Advertisement, Reason, encode
from pyvrrpd.daemon.instance import Packet
from pyvrrpd.daemon.port import Member, Port
from pyvrrpd.net.vrrp_socket import Received

from tests.daemon.fakes import Log

ip = ipaddress.ip_address
GROUP = ip("224.0.0.18")
PEER = ip("198.51.100.12")
OTHER = ip("198.51.100.13")
LOCAL = ip("198.51.100.11")


def packet(vrid=51, src=PEER, dst=GROUP, ttl=255, payload=None) -> Received:
    if payload is None:
        adv = Advertisement(3, ADVERTISEMENT, vrid, 100, 1, 0, 10, 0, (ip("198.51.100.100"),), b"")
        payload = encode(adv, family=4, src=src, dst=dst)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, ttl, 112, 0, src.packed, dst.packed)
    return Received(header + payload, src, dst, ttl, 2)


def member(name, vrid=51, peers=(), size=4, peer_ttl=None):
    send, receive = anyio.create_memory_object_stream(size)
    return Member(name, vrid, frozenset(peers), peer_ttl or {}, send), receive


@pytest.mark.anyio
async def test_demultiplexes_by_vrid_and_counts_unknown_vrids():
    log = Log()
    port = Port("lan0", 4, log=log)
    m51, inbox51 = member("VI_1")
    m52, inbox52 = member("VI_2", vrid=52)
    port.add(m51, GROUP)
    port.add(m52, GROUP)
    port.handle(packet(vrid=52))
    port.handle(packet(vrid=99))
    item = inbox52.receive_nowait()
    assert isinstance(item, Packet) and item.advert.vrid == 52 and item.source == PEER
    with pytest.raises(anyio.WouldBlock):
        inbox51.receive_nowait()
    assert (port.stats.received, port.stats.delivered, port.stats.unknown_vrid) == (2, 1, 1)
    assert log.lines == []  # unknown VRIDs are logged only with log_unknown_vrids
    verbose = Port("lan0", 4, log=log, log_unknown_vrids=True)
    verbose.handle(packet(vrid=99))
    assert log.events("warning") == ["Unknown VRID(99) received on interface(lan0). ignoring..."]


@pytest.mark.anyio
async def test_decode_errors_counted_carp_never_logged():
    log = Log()
    port = Port("lan0", 4, log=log)
    carp = bytes([0x21, 51, 0, 7, 0, 1, 0, 0]) + bytes(28)  # CARP advert: 36 bytes, authlen 7
    port.handle(packet(payload=carp))
    port.handle(packet(ttl=1))
    port.handle(packet(ttl=1))
    assert port.stats.decode_errors == {Reason.FOREIGN_CARP: 1, Reason.BAD_TTL: 2}
    assert log.events("warning") == [
        "invalid VRRP packet from 198.51.100.12: invalid TTL/HL. Received 1 and expect 255"]


@pytest.mark.anyio
async def test_shared_vrid_goes_to_the_instance_of_the_source_peer():
    port = Port("lan0", 4, log=Log())
    a, inbox_a = member("A", peers=(PEER,))
    b, inbox_b = member("B", peers=(OTHER,))
    port.add(a, None)
    port.add(b, None)
    port.handle(packet(src=OTHER, dst=LOCAL))
    assert inbox_b.receive_nowait().source == OTHER
    port.handle(packet(src=ip("198.51.100.99"), dst=LOCAL))
    assert port.stats.unknown_peer == 1


@pytest.mark.anyio
async def test_multicast_instance_rejects_unicast_and_the_other_way_round():
    log = Log()
    port = Port("lan0", 4, log=log)
    mcast, _ = member("M")
    ucast, _ = member("U", vrid=52, peers=(PEER,))
    port.add(mcast, GROUP)
    port.add(ucast, None)
    port.handle(packet(dst=LOCAL))
    port.handle(packet(vrid=52))
    assert port.stats.wrong_destination == 2 and port.stats.delivered == 0
    assert log.events("warning") == ["(M) Expected multicast packet but received unicast packet",
                                     "(U) Expected unicast packet but received multicast packet"]


@pytest.mark.anyio
async def test_unicast_peer_ttl_range():
    port = Port("lan0", 4, log=Log())
    m, inbox = member("U", peers=(PEER,), peer_ttl={PEER: (250, 255)})
    port.add(m, None)
    port.handle(packet(dst=LOCAL, ttl=64))
    port.handle(packet(dst=LOCAL, ttl=254))
    assert port.stats.ttl_out_of_range == 1 and inbox.receive_nowait().source == PEER


@pytest.mark.anyio
async def test_full_inbox_drops_instead_of_blocking():
    log = Log()
    port = Port("lan0", 4, log=log)
    m, _ = member("VI_1", size=2)
    port.add(m, GROUP)
    for _ in range(5):
        port.handle(packet())
    assert (port.stats.delivered, port.stats.inbox_full) == (2, 3)
    assert log.events("warning") == ["(VI_1) is not keeping up; advert from 198.51.100.12 dropped"]



@pytest.mark.anyio
async def test_checksum_form_of_accepted_v3_ipv4_adverts_is_counted():
    from pyvrrpd.core.packet import ChecksumForm

    port = Port("lan0", 4, log=Log())
    m51, _ = member("VI_1", size=8)
    port.add(m51, GROUP)
    adv = Advertisement(3, ADVERTISEMENT, 51, 100, 1, 0, 10, 0, (ip("198.51.100.100"),), b"")
    port.handle(packet())  # pseudo-header form, as keepalived 2.2.7 sends
    port.handle(packet(payload=encode(adv, family=4, src=PEER, dst=GROUP, pseudo_header=False)))  # RFC 9568
    assert port.stats.checksum_forms == {ChecksumForm.PSEUDO_HEADER: 1, ChecksumForm.MESSAGE: 1}


@pytest.mark.anyio
async def test_remove_unregisters_a_member_and_forgets_what_only_it_needed():
    port = Port("lan0", 4, log=Log())
    m1, inbox1 = member("VI_1")
    m2, inbox2 = member("VI_2", vrid=52)
    other_group = ip("224.0.0.99")
    port.add(m1, GROUP, rcvbuf=4 << 20)
    port.add(m2, other_group)
    assert port.groups == {GROUP, other_group} and port.rcvbuf == 4 << 20
    port.remove(m1)
    port.remove(m1)  # twice: nothing happens
    assert port.groups == {other_group} and port.rcvbuf == 1 << 20 and not port.empty
    port.handle(packet(vrid=51))
    port.handle(packet(vrid=52))
    assert port.stats.unknown_vrid == 1 and port.stats.delivered == 1
    assert inbox2.receive_nowait().advert.vrid == 52
    with pytest.raises(anyio.WouldBlock):
        inbox1.receive_nowait()
    port.remove(m2)
    assert port.empty and port.groups == set()


@pytest.mark.anyio
async def test_add_joins_a_new_group_on_an_open_socket():
    class Sock:
        joined: list = []

        def join(self, group):
            self.joined.append(group)

    port = Port("lan0", 4, log=Log())
    port.add(member("VI_1")[0], GROUP)
    port.sock = Sock()
    port.add(member("VI_2", vrid=52)[0], GROUP)
    port.add(member("VI_3", vrid=53)[0], ip("224.0.0.99"))
    port.add(member("VI_4", vrid=54, peers=(PEER,))[0], None)
    assert port.sock.joined == [ip("224.0.0.99")]
    port.sock = None
