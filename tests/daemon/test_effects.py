"""InstanceEffects against recording fakes: what goes on the wire, into netlink and into the log."""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import replace

import anyio
import pytest

from pyvrrpd.core.actions import (
    AdvertReason,
    ClaimAddresses,
    Discard,
    Discarded,
    GarpReason,
    Notice,
    NoticeKind,
    ReleaseAddresses,
    SendAdvert,
    SendGratuitous,
    State,
    StateChanged,
    Transition,
)
from pyvrrpd.core.frames import gratuitous_arp, unsolicited_na
from pyvrrpd.core.packet import ADVERTISEMENT, Advertisement, ChecksumForm, decode
from pyvrrpd.core.router import RouterConfig
from pyvrrpd.daemon.effects import Holders, InstanceEffects
from pyvrrpd.daemon.plan import InstancePlan
from pyvrrpd.daemon.ratelimit import RateLimit
from pyvrrpd.net.errors import NetError
from pyvrrpd.net.specs import AddressSpec, RouteSpec, RuleSpec

from tests.daemon.fakes import Log

ip = ipaddress.ip_address
SOURCE = ip("198.51.100.11")
VIP = ip("198.51.100.100")
VIP6 = ip("2001:db8:1::100")
MAC = bytes.fromhex("020000000011")


def make_plan(**changes) -> InstancePlan:
    router = RouterConfig(name="VI_1", vrid=51, source=SOURCE, addresses=(VIP,), version=3, advert_int_us=100_000)
    plan = InstancePlan(
        name="VI_1", vrid=51, family=4, interface="lan0", router=router, src_ip=None,
        group=ip("224.0.0.18"), peers=(), peer_ttl={}, ttl=255, pseudo_header=True, old_unicast_checksum=False,
        addresses=(AddressSpec(ipaddress.ip_interface("198.51.100.100/32"), dev="lan0"),
                   AddressSpec(ipaddress.ip_interface("2001:db8:1::100/128"), dev="lan0")),
        routes=(RouteSpec(dst=ipaddress.ip_network("203.0.113.0/24"), via=ip("198.51.100.1")),),
        rules=(RuleSpec(src=ipaddress.ip_network("203.0.113.0/24"), table=100, priority=10),),
        vmac=None, garp_interval_us=0, gna_interval_us=0, rcvbuf=None,
    )
    return replace(plan, **changes)


class FakeNetlink:
    def __init__(self, fail: dict[str, int] | None = None):
        self.calls: list[tuple[str, str]] = []
        self.fail = dict(fail or {})  # operation → how many calls fail before it works

    async def _call(self, op, spec):
        self.calls.append((op, str(spec)))
        if self.fail.get(op):
            self.fail[op] -= 1
            raise NetError(op, target=str(spec), errno=errno.EBUSY)
        return True

    async def add_address(self, spec, dev=None):
        return await self._call("add address", spec)

    async def del_address(self, spec, dev=None):
        return await self._call("delete address", spec)

    async def add_route(self, spec):
        return await self._call("add route", spec)

    async def del_route(self, spec):
        return await self._call("delete route", spec)

    async def add_rule(self, spec):
        return await self._call("add rule", spec)

    async def del_rule(self, spec):
        return await self._call("delete rule", spec)


class FakeSocket:
    def __init__(self, error: NetError | None = None):
        self.sent: list[tuple[bytes, object, object, int]] = []
        self.error = error

    async def send(self, message, dst, *, src=None, ttl=255):
        if self.error:
            raise self.error
        self.sent.append((message, dst, src, ttl))


class FakeFrames:
    def __init__(self):
        self.sent: list[tuple[float, str, bytes]] = []

    def mac(self, ifname):
        return MAC

    def forwarding(self, ifname):
        return False

    async def send(self, ifname, frame):
        self.sent.append((anyio.current_time(), ifname, frame))


def effects(plan=None, *, sock=None, netlink=None, frames=None, log=None, clock=None):
    return InstanceEffects(plan or make_plan(), netlink=netlink or FakeNetlink(), tx=lambda: sock,
                           frames=frames or FakeFrames(), log=log or Log(),
                           ratelimit=RateLimit(clock=clock) if clock else None)


def advert(priority=150, version=3):
    auth = bytes(8) if version == 2 else b""
    return Advertisement(version, ADVERTISEMENT, 51, priority, 1, 0, 10 if version == 3 else 1, 0, (VIP,), auth)


@pytest.mark.anyio
async def test_multicast_advert_checksum_includes_the_pseudo_header():
    sock = FakeSocket()
    e = effects(sock=sock)
    await e.apply(SendAdvert(advert(), AdvertReason.PERIODIC))
    [(message, dst, src, ttl)] = sock.sent
    assert (dst, src, ttl) == (ip("224.0.0.18"), SOURCE, 255)
    got = decode(message, family=4, src=SOURCE, dst=dst, ttl=255)
    assert got == advert() and got.checksum_form is ChecksumForm.PSEUDO_HEADER
    assert e.stats.adverts_sent == 1


@pytest.mark.anyio
async def test_an_advert_is_encoded_once_and_again_for_a_new_source():
    sock = FakeSocket()
    e = effects(sock=sock)
    periodic = advert()  # the router hands out the same object while nothing in it changes
    await e.apply(SendAdvert(periodic, AdvertReason.PERIODIC))
    await e.apply(SendAdvert(periodic, AdvertReason.PERIODIC))
    assert sock.sent[1][0] is sock.sent[0][0]
    e.source = ip("198.51.100.21")  # the interface's primary address changed
    await e.apply(SendAdvert(periodic, AdvertReason.PERIODIC))
    await e.apply(SendAdvert(advert(priority=0), AdvertReason.SHUTDOWN))
    (new_source, dst, src, _), (zero, _, _, _) = sock.sent[2:]
    assert src == ip("198.51.100.21") and new_source != sock.sent[0][0]
    assert decode(new_source, family=4, src=src, dst=dst, ttl=255).checksum_form is ChecksumForm.PSEUDO_HEADER
    assert decode(zero, family=4, src=src, dst=dst, ttl=255).priority == 0


@pytest.mark.anyio
async def test_rfc9568_checksum_when_pseudo_header_is_off():
    sock = FakeSocket()
    await effects(make_plan(pseudo_header=False), sock=sock).apply(SendAdvert(advert(), AdvertReason.PERIODIC))
    got = decode(sock.sent[0][0], family=4, src=SOURCE, dst=ip("224.0.0.18"), ttl=255)
    assert got.checksum_form is ChecksumForm.MESSAGE


@pytest.mark.anyio
async def test_unicast_sends_one_copy_per_peer_with_unicast_ttl():
    peers = (ip("198.51.100.12"), ip("198.51.100.13"))
    sock = FakeSocket()
    await effects(make_plan(peers=peers, ttl=10), sock=sock).apply(SendAdvert(advert(), AdvertReason.PERIODIC))
    assert [(dst, ttl) for _, dst, _, ttl in sock.sent] == [(peers[0], 10), (peers[1], 10)]
    for message, dst, _, _ in sock.sent:
        assert decode(message, family=4, src=SOURCE, dst=dst, ttl=10, unicast=True).checksum_form \
            is ChecksumForm.PSEUDO_HEADER


@pytest.mark.anyio
async def test_old_unicast_checksum_uses_the_group_in_the_pseudo_header():
    peer = ip("198.51.100.12")
    sock = FakeSocket()
    e = effects(make_plan(peers=(peer,), old_unicast_checksum=True), sock=sock)
    await e.apply(SendAdvert(advert(), AdvertReason.PERIODIC))
    got = decode(sock.sent[0][0], family=4, src=SOURCE, dst=peer, ttl=255, unicast=True)
    assert got.checksum_form is ChecksumForm.OLD_UNICAST


@pytest.mark.anyio
async def test_priority_zero_is_logged_and_send_errors_are_counted_not_raised():
    log = Log()
    e = effects(sock=FakeSocket(NetError("send advert", ifname="lan0", errno=errno.ENETDOWN)), log=log)
    await e.apply(SendAdvert(advert(priority=0), AdvertReason.SHUTDOWN))
    await e.apply(SendAdvert(advert(), AdvertReason.PERIODIC))
    assert e.stats.advert_errors == 2 and e.stats.adverts_sent == 0
    assert log.events("info") == ["(VI_1) sent 0 priority"]
    assert len(log.events("error")) == 1  # the second failure (same errno) is rate-limited
    no_socket = effects(sock=None)
    await no_socket.apply(SendAdvert(advert(), AdvertReason.PERIODIC))
    assert no_socket.stats.adverts_unsent == 1


@pytest.mark.anyio
async def test_claim_adds_every_address_then_routes_then_rules_despite_errors():
    netlink = FakeNetlink(fail={"add address": 1})
    log = Log()
    e = effects(netlink=netlink, log=log)
    await e.apply(ClaimAddresses((VIP,), accept=True))
    assert netlink.calls == [("add address", "198.51.100.100/32"), ("add address", "2001:db8:1::100/128"),
                             ("add route", "203.0.113.0/24 via 198.51.100.1"),
                             ("add rule", "from 203.0.113.0/24 table 100 priority 10")]
    assert e.stats.address_errors["add address"] == 1
    assert log.events("info") == ["(VI_1) setting VIPs."] and len(log.events("error")) == 1


@pytest.mark.anyio
async def test_dont_release_vrrp_keeps_the_addresses_and_sends_no_priority_zero_on_stop():
    """-V/--dont-release-vrrp: the stop's priority-0 advert and release are skipped; other releases (a
    master going to BACKUP or FAULT) still happen."""
    netlink, sock, log = FakeNetlink(), FakeSocket(), Log()
    e = effects(netlink=netlink, sock=sock, log=log)
    e.keep_on_stop = True
    await e.apply(SendAdvert(advert(priority=0), AdvertReason.SHUTDOWN))
    await e.apply(ReleaseAddresses((VIP,), Transition.SHUTDOWN))
    assert netlink.calls == [] and sock.sent == [] and e.stats.adverts_sent == 0
    assert log.events("info") == ["(VI_1) keeping its virtual addresses, routes and rules on stop "
                                  "(--dont-release-vrrp)"]
    await e.apply(ReleaseAddresses((VIP,), Transition.FAULT))
    assert [op for op, _ in netlink.calls][-1] == "delete address"


@pytest.mark.anyio
async def test_release_retries_once_and_reports_what_stays():
    netlink = FakeNetlink(fail={"delete address": 3})  # the first VIP fails twice, the second once
    log = Log()
    e = effects(netlink=netlink, log=log)
    await e.apply(ReleaseAddresses((VIP,), Transition.SHUTDOWN))
    assert [op for op, _ in netlink.calls] == ["delete rule", "delete route"] + ["delete address"] * 4
    assert e.stats.release_failures == 1
    assert any("could not delete address 198.51.100.100/32 even on retry" in line for line in log.events("error"))


@pytest.mark.anyio
async def test_gratuitous_burst_covers_both_families():
    frames = FakeFrames()
    log = Log()
    e = effects(frames=frames, log=log)
    await e.apply(SendGratuitous((VIP,), 2, GarpReason.TAKEOVER))
    expected = [gratuitous_arp(MAC, VIP), unsolicited_na(MAC, VIP6)] * 2
    assert [frame for _, _, frame in frames.sent] == expected
    assert e.stats.gratuitous_sent == 4
    assert log.events("info") == ["(VI_1) Sending/queueing gratuitous ARPs on lan0 for 198.51.100.100",
                                  "(VI_1) Sending/queueing unsolicited neighbour adverts on lan0 for 2001:db8:1::100"]


@pytest.mark.anyio
async def test_paced_burst_runs_in_the_background_and_release_stops_it():
    frames = FakeFrames()
    e = effects(make_plan(garp_interval_us=100_000, gna_interval_us=100_000), frames=frames)
    async with anyio.create_task_group() as tg:
        e.task_group = tg
        start = anyio.current_time()
        await e.apply(SendGratuitous((VIP,), 5, GarpReason.TAKEOVER))
        assert anyio.current_time() == start  # apply() did not wait for the pacing
        await anyio.sleep(0.25)
        await e.apply(ReleaseAddresses((VIP,), Transition.HIGHER_PRIORITY))
    assert [round(t - start, 6) for t, _, _ in frames.sent] == [0.0, 0.1, 0.2]


@pytest.mark.anyio
async def test_log_lines_use_keepalived_words_and_rate_limits():
    now = [0.0]
    log = Log()
    e = effects(log=log, clock=lambda: now[0])
    await e.apply(StateChanged(State.BACKUP, State.MASTER, Transition.MASTER_DOWN))
    for _ in range(3):
        await e.apply(Discarded(Discard.AUTH_FAILURE, "received an invalid passwd!", ip("198.51.100.12")))
    now[0] = 11.0
    await e.apply(Discarded(Discard.AUTH_FAILURE, "received an invalid passwd!", ip("198.51.100.12")))
    await e.apply(Notice(NoticeKind.PRIORITY_ZERO, "Backup received priority 0 advertisement"))
    assert log.lines[0] == ("info", "(VI_1) Entering MASTER STATE",
                            {"old": "BACKUP", "new": "MASTER", "reason": "master_down"})
    warnings = [(event, fields["count"]) for level, event, fields in log.lines if level == "warning"]
    assert warnings == [("(VI_1) received an invalid passwd!", 1), ("(VI_1) received an invalid passwd!", 3)]
    assert log.events("info")[-1] == "(VI_1) Backup received priority 0 advertisement"
    assert e.stats.notices[NoticeKind.PRIORITY_ZERO] == 1


@pytest.mark.anyio
async def test_rival_masters_are_a_rate_limited_warning():
    now = [0.0]
    log = Log()
    e = effects(log=log, clock=lambda: now[0])
    for t in (0.0, 1.0, 2.0, 10.5):
        now[0] = t
        await e.apply(Notice(NoticeKind.RIVAL_MASTER, "advert with priority 100 from 198.51.100.12 while we are "
                             "master (another master on this VRID: split brain?)"))
    warnings = [fields["count"] for level, event, fields in log.lines if level == "warning" and "split brain" in event]
    assert warnings == [1, 3]
    assert e.stats.notices[NoticeKind.RIVAL_MASTER] == 4


class FakeFirewall:
    def __init__(self, error=None):
        self.calls: list[tuple] = []
        self.error = error

    async def block(self, owner, addresses):
        if self.error:
            raise self.error
        self.calls.append(("block", owner, frozenset(addresses)))

    async def unblock(self, owner):
        self.calls.append(("unblock", owner))


@pytest.mark.anyio
async def test_no_accept_blocks_the_vips_while_master_and_unblocks_on_release():
    fw = FakeFirewall()
    e = InstanceEffects(make_plan(), netlink=FakeNetlink(), tx=lambda: None, frames=FakeFrames(), log=Log(),
                        firewall=fw)
    await e.apply(ClaimAddresses((VIP,), accept=True))
    assert fw.calls == []
    await e.apply(ClaimAddresses((VIP,), accept=False))
    assert fw.calls == [("block", e.plan.name, frozenset(spec.address.ip for spec in e.plan.addresses))]
    await e.apply(ReleaseAddresses((VIP,), Transition.SHUTDOWN))
    assert fw.calls[-1] == ("unblock", e.plan.name)


@pytest.mark.anyio
async def test_a_firewall_error_is_logged_and_counted_not_raised():
    from pyvrrpd.net.errors import NetError

    log = Log()
    e = InstanceEffects(make_plan(), netlink=FakeNetlink(), tx=lambda: None, frames=FakeFrames(), log=log,
                        firewall=FakeFirewall(NetError("install nftables rules", errno=1)))
    await e.apply(ClaimAddresses((VIP,), accept=False))
    assert e.stats.address_errors["block traffic to VIPs"] == 1
    assert log.events("error")


# -- reload: a master changes only what differs ------------------------------------------------------

VIP2 = ip("198.51.100.101")


def spec(text: str, dev: str = "lan0", **kw) -> AddressSpec:
    return AddressSpec(ipaddress.ip_interface(text), dev=dev, **kw)


def with_vips(plan: InstancePlan, *texts: str, **router_changes) -> InstancePlan:
    """``plan`` with the VIPs ``texts`` (first family only in the router's list) and router changes."""
    specs = tuple(spec(t) for t in texts)
    router = replace(plan.router, addresses=tuple(s.address.ip for s in specs if s.address.version == 4),
                     **router_changes)
    return replace(plan, addresses=specs, router=router)


@pytest.mark.anyio
async def test_reload_of_a_master_touches_only_the_differences():
    netlink, frames, log = FakeNetlink(), FakeFrames(), Log()
    old = with_vips(make_plan(), "198.51.100.100/32", "2001:db8:1::100/128")
    e = effects(old, netlink=netlink, frames=frames, log=log)
    new = replace(with_vips(old, "198.51.100.100/32", "198.51.100.101/32"),
                  routes=old.routes + (RouteSpec(dst=ipaddress.ip_network("203.0.113.128/25"), dev="lan0"),))
    await e.reload(new, master=True)
    assert e.plan is new
    assert netlink.calls == [("delete address", "2001:db8:1::100/128"), ("add address", "198.51.100.101/32"),
                             ("add route", "203.0.113.128/25 dev lan0")]
    # Only the new VIP is announced, garp_master_repeat (5) times.
    assert [frame for _, _, frame in frames.sent] == [gratuitous_arp(MAC, VIP2)] * 5
    assert "(VI_1) reload: removing VIP 2001:db8:1::100/128, adding VIP 198.51.100.101/32, adding route " \
           "203.0.113.128/25 dev lan0" in log.events("info")
    # The same plan again: nothing at all.
    netlink.calls.clear()
    await e.reload(new, master=True)
    assert netlink.calls == [] and len(frames.sent) == 5


@pytest.mark.anyio
async def test_reload_of_a_backup_only_takes_the_plan():
    netlink, frames = FakeNetlink(), FakeFrames()
    e = effects(netlink=netlink, frames=frames)
    new = replace(with_vips(e.plan, "198.51.100.101/32"), ttl=10)
    await e.reload(new, master=False)
    assert e.plan is new and netlink.calls == [] and frames.sent == []


@pytest.mark.anyio
async def test_reload_sends_the_next_advert_with_the_new_plan():
    sock = FakeSocket()
    e = effects(sock=sock)
    periodic = advert()
    await e.apply(SendAdvert(periodic, AdvertReason.PERIODIC))
    await e.reload(replace(e.plan, ttl=10, peers=(ip("198.51.100.12"),)), master=False)
    await e.apply(SendAdvert(periodic, AdvertReason.PERIODIC))  # the cached encoding is not reused
    assert [(dst, ttl) for _, dst, _, ttl in sock.sent] == [(ip("224.0.0.18"), 255), (ip("198.51.100.12"), 10)]


@pytest.mark.anyio
async def test_reload_accept_mode_blocks_before_adding_and_unblocks_after():
    fw, netlink = FakeFirewall(), FakeNetlink()
    order: list = []
    netlink.calls = order
    fw.calls = order
    e = InstanceEffects(with_vips(make_plan(), "198.51.100.100/32"), netlink=netlink, tx=lambda: None,
                        frames=FakeFrames(), log=Log(), firewall=fw)
    await e.apply(ClaimAddresses((VIP,), accept=True))
    order.clear()
    no_accept = with_vips(e.plan, "198.51.100.100/32", "198.51.100.101/32", accept=False)
    await e.reload(no_accept, master=True)
    assert order == [("block", "VI_1", frozenset({VIP, VIP2})), ("add address", "198.51.100.101/32")]
    order.clear()
    # no_accept, a VIP leaves: blocked until it is gone, then the block shrinks.
    smaller = with_vips(e.plan, "198.51.100.101/32", accept=False)
    await e.reload(smaller, master=True)
    assert order == [("delete address", "198.51.100.100/32"), ("block", "VI_1", frozenset({VIP2}))]
    order.clear()
    await e.reload(with_vips(e.plan, "198.51.100.101/32", accept=True), master=True)
    assert order == [("unblock", "VI_1")]
    order.clear()
    # Renamed while blocking: the new name blocks first, then the old one is freed.
    await e.reload(with_vips(e.plan, "198.51.100.101/32", accept=False), master=True)
    order.clear()
    await e.reload(replace(e.plan, name="WEB", router=replace(e.plan.router, name="WEB")), master=True)
    assert order == [("block", "WEB", frozenset({VIP2})), ("unblock", "VI_1")]


@pytest.mark.anyio
async def test_a_vip_two_instances_hold_stays_until_neither_does():
    """Holders: a VIP moved from one instance to another in one reload stays whichever goes first, and a
    new instance's start-up clean-up does not take a VIP from the master that holds it."""
    holders, netlink = Holders(), FakeNetlink()
    a = InstanceEffects(with_vips(make_plan(), "198.51.100.100/32", "198.51.100.101/32"), netlink=netlink,
                        tx=lambda: None, frames=FakeFrames(), log=Log(), holders=holders)
    b_plan = replace(with_vips(make_plan(), "198.51.100.102/32"), name="VI_2", vrid=52)
    b = InstanceEffects(b_plan, netlink=netlink, tx=lambda: None, frames=FakeFrames(), log=Log(), holders=holders)
    await a.apply(ClaimAddresses((VIP, VIP2), accept=True))
    await b.apply(ClaimAddresses((ip("198.51.100.102"),), accept=True))
    netlink.calls.clear()
    # .101 moves from a to b; b takes its new plan first.
    await b.reload(with_vips(b.plan, "198.51.100.102/32", "198.51.100.101/32"), master=True)
    await a.reload(with_vips(a.plan, "198.51.100.100/32"), master=True)
    assert netlink.calls == [("add address", "198.51.100.101/32")]  # a's removal left it to b
    # A new instance listing .100 starts (BACKUP: it releases stale VIPs): a keeps .100.
    c = InstanceEffects(replace(with_vips(make_plan(), "198.51.100.100/32"), name="VI_3", vrid=53, routes=(),
                                rules=()), netlink=netlink, tx=lambda: None, frames=FakeFrames(), log=Log(),
                        holders=holders)
    netlink.calls.clear()
    await c.apply(ReleaseAddresses((VIP,), Transition.INIT))
    assert netlink.calls == []
    await a.apply(ReleaseAddresses((VIP,), Transition.SHUTDOWN))
    assert ("delete address", "198.51.100.100/32") in netlink.calls
