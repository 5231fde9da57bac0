"""The Effects port of one instance: turn the router's actions into packets, netlink changes and log lines.

Rules this file keeps:

* ``apply()`` never raises for kernel or network trouble: every NetError is counted in ``InstanceStats``
  and logged (rate-limited where it can repeat every advert interval).
* A VIP must never stay on a backup: removal is retried once and a failure is logged as an error.
* GARP/NA bursts run as background tasks in the instance's task group, so pacing
  (vrrp_garp_interval / vrrp_gna_interval) never delays the state machine; releasing the addresses
  cancels any burst still running.
* Log lines keep keepalived's words with the ``(<instance>) `` prefix; structured fields come on top.
* State changes, priority changes, notices and sync-group wishes also go to the instance's ``listener``
  (notifications, sync groups), which hears ``flushed()`` once all the actions of one input are carried
  out: notify scripts start after the VIPs are in place, as keepalived's do.
* A VIP two instances list (by address and interface) is deleted only when no master of the VRRP
  subsystem holds it any more (``Holders``): moving a VIP from one instance to another in one reload,
  or a new instance's start-up clean-up, never takes it from the master that has it.
* A reload (``reload()``) changes in the kernel only what differs between a master's old and new plan.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio
from anyio.abc import TaskGroup

from pyvrrpd.core.actions import (
    Action,
    AdvertReason,
    ClaimAddresses,
    Discard,
    Discarded,
    GarpReason,
    Notice,
    NoticeKind,
    PriorityChanged,
    ReleaseAddresses,
    SendAdvert,
    SendGratuitous,
    State,
    StateChanged,
    Transition,
    WantMaster,
)
from pyvrrpd.core.frames import gratuitous_arp, unsolicited_na
from pyvrrpd.core.packet import Advertisement, encode
from pyvrrpd.daemon.plan import InstancePlan, IPAddress
from pyvrrpd.daemon.ratelimit import RateLimit
from pyvrrpd.net.errors import NetError
from pyvrrpd.net.link import PacketSender, link_info, open_packet_sender
from pyvrrpd.net.specs import AddressSpec, RouteSpec, RuleSpec

# Discards that are part of normal operation (a preempting backup, packets during FAULT) log at info.
_ROUTINE_DISCARDS = {Discard.LOWER_PRIORITY, Discard.NOT_RUNNING}
_WARNING_NOTICES = {NoticeKind.OWN_ADDRESS, NoticeKind.BOTH_OWNERS, NoticeKind.RIVAL_MASTER}


class AddressPort(Protocol):
    """The part of net.netlink.Netlink the effects use (a recording fake in tests)."""

    async def add_address(self, spec: AddressSpec, dev: str | None = None) -> bool: ...
    async def del_address(self, spec: AddressSpec, dev: str | None = None) -> bool: ...
    async def add_route(self, spec: RouteSpec) -> bool: ...
    async def del_route(self, spec: RouteSpec) -> bool: ...
    async def add_rule(self, spec: RuleSpec) -> bool: ...
    async def del_rule(self, spec: RuleSpec) -> bool: ...


class Listener(Protocol):
    """Who follows an instance's state: the VRRP subsystem's notifications and sync groups."""

    def action(self, action: Action) -> None:
        """A StateChanged, PriorityChanged, Notice or WantMaster, in the order the router gave them."""

    def flushed(self) -> None:
        """Every action of the current input is carried out."""


class BlockPort(Protocol):
    """Accept_Mode off: drop IP traffic to a master's VIPs (``net.firewall.Firewall`` in production)."""

    async def block(self, owner: str, addresses) -> None: ...
    async def unblock(self, owner: str) -> None: ...


class AdvertSocket(Protocol):
    async def send(self, message: bytes, dst: IPAddress, *, src: IPAddress | None = None, ttl: int = 255) -> None: ...


class FramePort(Protocol):
    """Link-layer output for GARP/NA (``FrameSenders`` in production)."""

    def mac(self, ifname: str) -> bytes: ...
    def forwarding(self, ifname: str) -> bool: ...
    async def send(self, ifname: str, frame: bytes) -> None: ...


@dataclass
class InstanceStats:
    """What the effects did for one instance (the router's own counters are ``VirtualRouter.stats``)."""

    adverts_sent: int = 0
    advert_errors: int = 0
    adverts_unsent: int = 0  # no socket (interface gone); the instance is in FAULT or about to be
    gratuitous_sent: int = 0
    gratuitous_errors: int = 0
    address_errors: Counter[str] = field(default_factory=Counter)  # "add address", "delete route", ...
    release_failures: int = 0  # a VIP/route/rule that could not be removed even on retry
    notices: Counter[NoticeKind] = field(default_factory=Counter)


class Holders:
    """Which masters hold each virtual address, by (address, interface); shared by the instances of one
    VRRP subsystem."""

    def __init__(self) -> None:
        self._owners: dict[tuple[IPAddress, str | None], set[str]] = {}

    def hold(self, owner: str, specs) -> None:
        for spec in specs:
            self._owners.setdefault(_where(spec), set()).add(owner)

    def let_go(self, owner: str, specs) -> list[AddressSpec]:
        """``owner`` gives up ``specs``: the ones no other master holds, to be deleted."""
        out = []
        for spec in specs:
            owners = self._owners.get(_where(spec), set())
            owners.discard(owner)
            if not owners:
                self._owners.pop(_where(spec), None)
                out.append(spec)
        return out

    def rename(self, old: str, new: str) -> None:
        for owners in self._owners.values():
            if old in owners:
                owners.discard(old)
                owners.add(new)


def _where(spec: AddressSpec) -> tuple[IPAddress, str | None]:
    return spec.address.ip, spec.dev


class FrameSenders:
    """One AF_PACKET sender per interface, opened on first use and reopened after an error."""

    def __init__(self) -> None:
        self._senders: dict[str, PacketSender] = {}

    def mac(self, ifname: str) -> bytes:
        return link_info(ifname).mac

    def forwarding(self, ifname: str) -> bool:
        """IPv6 forwarding on: unsolicited NAs carry the Router flag, as keepalived's do."""
        try:
            with open(f"/proc/sys/net/ipv6/conf/{ifname}/forwarding") as f:
                return f.read().strip() == "1"
        except OSError:
            return False

    async def send(self, ifname: str, frame: bytes) -> None:
        sender = self._senders.get(ifname)
        if sender is None:
            sender = self._senders[ifname] = open_packet_sender(ifname)
        try:
            await sender.send(frame)
        except NetError:
            del self._senders[ifname]
            await sender.aclose()
            raise

    async def aclose(self) -> None:
        senders, self._senders = list(self._senders.values()), {}
        for sender in senders:
            await sender.aclose()


class InstanceEffects:
    """Effects for one instance. The VRRP subsystem sets ``netlink`` and ``firewall`` when it starts, and
    updates ``source`` (and ``tx``, ``task_group``) while it runs."""

    def __init__(self, plan: InstancePlan, *, netlink: AddressPort | None, tx: Callable[[], AdvertSocket | None],
                 frames: FramePort, log, ratelimit: RateLimit | None = None,
                 firewall: BlockPort | None = None, holders: Holders | None = None) -> None:
        # `log` is a structlog logger bound to the instance's fields; `tx` gives the socket to send on.
        self.plan = plan
        self.source: IPAddress = plan.router.source
        self.tx = tx
        self.log = log
        self.task_group: TaskGroup | None = None  # None: bursts run inline (tests)
        self.stats = InstanceStats()
        self.netlink = netlink  # None only until the VRRP subsystem has opened its netlink socket
        # keepalived's -V/--dont-release-vrrp: when the daemon stops, no priority-0 advert and the VIPs,
        # routes and rules stay (an instance removed by a reload still releases them)
        self.keep_on_stop = False
        self._frames = frames
        self.firewall = firewall  # None: every instance accepts (nothing to block)
        self.listener: Listener | None = None  # set by the VRRP subsystem
        self.holders = holders or Holders()
        self._blocked: frozenset[IPAddress] = frozenset()  # what the firewall drops for this instance
        self._limit = ratelimit or RateLimit()
        self._bursts: set[anyio.CancelScope] = set()
        self._encoded: tuple[Advertisement, IPAddress, tuple[tuple[IPAddress, bytes], ...]] | None = None

    async def apply(self, action: Action) -> None:
        if self.keep_on_stop and self._kept(action):
            return
        match action:
            case SendAdvert():
                await self._send_advert(action)
            case ClaimAddresses():
                await self._claim(action)
            case ReleaseAddresses():
                await self._release(action)
            case SendGratuitous():
                await self._gratuitous(action)
            case StateChanged():
                level = self.log.warning if action.new is State.FAULT else self.log.info
                level(self._text(action), old=action.old.value, new=action.new.value, reason=action.reason.value)
                self._tell(action)
            case PriorityChanged():
                self.log.info(self._text(action), old_priority=action.old, new_priority=action.new)
                self._tell(action)
            case WantMaster():
                self.log.debug(self._text(action), reason=action.reason.value)
                self._tell(action)
            case Discarded():
                count = self._limit(("discard", action.reason))
                if count:
                    level = self.log.info if action.reason in _ROUTINE_DISCARDS else self.log.warning
                    level(self._text(action), reason=action.reason.value, source=str(action.source), count=count)
            case Notice():
                self.stats.notices[action.kind] += 1
                count = self._limit(("notice", action.kind))
                if count:
                    level = self.log.warning if action.kind in _WARNING_NOTICES else self.log.info
                    level(self._text(action), kind=action.kind.value, count=count)
                self._tell(action)

    def _tell(self, action: Action) -> None:
        if self.listener is not None:
            self.listener.action(action)

    def flushed(self) -> None:
        if self.listener is not None:
            self.listener.flushed()

    def _text(self, action: Action) -> str:
        return f"({self.plan.name}) {action.text}"

    # -- adverts ------------------------------------------------------------------------------

    async def _send_advert(self, action: SendAdvert) -> None:
        plan = self.plan
        if action.advert.priority == 0:
            self.log.info(self._text(action), reason=action.reason.value)
        elif action.reason is not AdvertReason.PERIODIC:
            self.log.debug(self._text(action), reason=action.reason.value)
        sock = self.tx()
        if sock is None:
            self.stats.adverts_unsent += 1
            return
        for dst, message in self._encode(action.advert):
            try:
                await sock.send(message, dst, src=self.source, ttl=plan.ttl)
            except NetError as exc:
                self.stats.advert_errors += 1
                count = self._limit(("send advert", exc.errno))
                # Leaving MASTER for FAULT usually means the link is down: expected to fail.
                level = self.log.info if action.reason is AdvertReason.FAULT else self.log.error
                if count:
                    level(f"({plan.name}) cannot send advert: {exc}", count=count)
            else:
                self.stats.adverts_sent += 1

    def _encode(self, advert: Advertisement) -> tuple[tuple[IPAddress, bytes], ...]:
        """The advert's bytes per destination. The router hands out the same Advertisement object for
        every periodic advert while nothing in it changes, so this encodes once, not every interval."""
        cached = self._encoded
        if cached is not None and cached[0] is advert and cached[1] is self.source:
            return cached[2]
        plan = self.plan
        messages = []
        for dst in plan.peers or (plan.group,):
            # keepalived < 1.3.6 put the multicast group into the unicast v3 pseudo-header.
            checksum_dst = plan.group if plan.old_unicast_checksum else dst
            messages.append((dst, encode(advert, family=plan.family, src=self.source, dst=checksum_dst,
                                         pseudo_header=plan.pseudo_header)))
        self._encoded = (advert, self.source, tuple(messages))
        return self._encoded[2]

    # -- addresses, routes, rules -------------------------------------------------------------

    async def _claim(self, action: ClaimAddresses) -> None:
        self.log.info(self._text(action))
        plan = self.plan
        if not action.accept:
            # Block before the VIPs exist, so no packet to a VIP is ever accepted in between.
            await self._block(_ips(plan.addresses))
        await self._add(plan.addresses, plan.routes, plan.rules)

    async def _add(self, addresses, routes, rules) -> None:
        self.holders.hold(self.plan.name, addresses)
        for spec in addresses:
            await self._change("add address", self.netlink.add_address, spec)
        for route in routes:
            await self._change("add route", self.netlink.add_route, route)
        for rule in rules:
            await self._change("add rule", self.netlink.add_rule, rule)

    async def _delete(self, addresses, routes, rules) -> None:
        """Rules, routes, then the addresses no other master holds; each retried once."""
        for rule in rules:
            await self._remove("delete rule", self.netlink.del_rule, rule)
        for route in routes:
            await self._remove("delete route", self.netlink.del_route, route)
        for spec in self.holders.let_go(self.plan.name, addresses):
            await self._remove("delete address", self.netlink.del_address, spec)

    async def _block(self, addresses: frozenset[IPAddress]) -> None:
        """Drop traffic to ``addresses`` (none: stop dropping) for this instance; nothing without a firewall."""
        if self.firewall is None:
            return
        self._blocked = addresses
        if addresses:
            await self._change("block traffic to VIPs", functools.partial(self.firewall.block, self.plan.name),
                               addresses)
        else:
            await self._remove("unblock traffic to VIPs", self.firewall.unblock, self.plan.name)

    def _kept(self, action: Action) -> bool:
        """-V/--dont-release-vrrp: what the stop would do that is skipped (logged once)."""
        if isinstance(action, SendAdvert) and action.reason is AdvertReason.SHUTDOWN:
            return True
        if isinstance(action, ReleaseAddresses) and action.reason is Transition.SHUTDOWN:
            self.log.info(f"({self.plan.name}) keeping its virtual addresses, routes and rules on stop "
                          "(--dont-release-vrrp)")
            return True
        return False

    async def _release(self, action: ReleaseAddresses) -> None:
        for scope in self._bursts:
            scope.cancel()  # no more GARPs for addresses we are giving up
        self.log.info(self._text(action), reason=action.reason.value)
        plan = self.plan
        await self._delete(plan.addresses, plan.routes, plan.rules)
        await self._block(frozenset())

    async def reload(self, plan: InstancePlan, master: bool) -> None:
        """Run with a reloaded instance's new ``plan`` (same VRID, family, interface, VMAC).

        A master changes in the kernel only what differs: the VIPs, routes and rules that left go
        (rules first), the new ones come (addresses first) and are announced with gratuitous ARPs /
        NAs, and the firewall follows a new Accept_Mode or address list; traffic to a VIP that
        does not accept is blocked before the VIP is added. Nothing the two plans share is touched.
        """
        old, self.plan = self.plan, plan
        self._encoded = None
        if old.name != plan.name:
            self.holders.rename(old.name, plan.name)
        if not master:
            return
        gone = [[x for x in o if x not in n] for o, n in _parts(old, plan)]
        new = [[x for x in n if x not in o] for o, n in _parts(old, plan)]
        block = frozenset() if plan.router.accepts else _ips(plan.addresses)
        changes = [f"{verb} {kind} {x}" for verb, parts in (("removing", gone), ("adding", new))
                   for kind, xs in zip(("VIP", "route", "rule"), parts) for x in xs]
        if old.router.accepts != plan.router.accepts:
            changes.append(f"Accept_Mode {'on' if plan.router.accepts else 'off'}")
        if changes:
            self.log.info(f"({plan.name}) reload: {', '.join(changes)}")
        blocked = self._blocked
        if block - blocked or (blocked and old.name != plan.name):
            await self._block(blocked | block)  # under the new name first, then free the old one
            if old.name != plan.name:
                await self._remove("unblock traffic to VIPs", self.firewall.unblock, old.name)
        await self._delete(*gone)
        await self._add(*new)
        if block != self._blocked:
            await self._block(block)
        count = plan.router.garp_master_repeat
        if new[0] and count:
            await self._announce(new[0], count, GarpReason.RELOAD)

    async def _change(self, op: str, call, spec) -> bool:
        try:
            await call(spec)
        except NetError as exc:
            self.stats.address_errors[op] += 1
            self.log.error(f"({self.plan.name}) {exc}", op=op, target=str(spec))
            return False
        return True

    async def _remove(self, op: str, call, spec) -> None:
        if await self._change(op, call, spec) or await self._change(op, call, spec):
            return
        self.stats.release_failures += 1
        self.log.error(f"({self.plan.name}) could not {op} {spec} even on retry; "
                        "it may still be configured on this host, remove it by hand", op=op, target=str(spec))

    # -- gratuitous ARP / unsolicited NA -------------------------------------------------------

    async def _gratuitous(self, action: SendGratuitous) -> None:
        # All addresses of the plan (also excluded VIPs of the other family).
        await self._announce(self.plan.addresses, action.count, action.reason)

    async def _announce(self, specs, count: int, reason: GarpReason) -> None:
        targets: dict[str, list[IPAddress]] = {}  # by interface
        for spec in specs:
            targets.setdefault(spec.dev, []).append(spec.address.ip)
        for ifname, addresses in targets.items():
            for version, what in ((4, "gratuitous ARPs"), (6, "unsolicited neighbour adverts")):
                listed = ", ".join(str(a) for a in addresses if a.version == version)
                if listed:
                    self.log.info(f"({self.plan.name}) Sending/queueing {what} on {ifname} for {listed}",
                                  count=count, reason=reason.value)
        if self.task_group is None:
            await self._burst(targets, count, anyio.CancelScope())
        else:
            scope = anyio.CancelScope()
            self._bursts.add(scope)
            self.task_group.start_soon(self._burst, targets, count, scope, name=f"garp {self.plan.name}")

    async def _burst(self, targets: dict[str, list[IPAddress]], count: int, scope: anyio.CancelScope) -> None:
        plan = self.plan
        try:
            with scope:
                frames = []
                for ifname, addresses in targets.items():
                    try:
                        mac = self._frames.mac(ifname)
                        router = self._frames.forwarding(ifname)
                    except NetError as exc:
                        self._gratuitous_failed(exc, len(addresses) * count)
                        continue
                    for ip in addresses:
                        if isinstance(ip, ipaddress.IPv4Address):
                            frames.append((ifname, gratuitous_arp(mac, ip), plan.garp_interval_us))
                        else:
                            frames.append((ifname, unsolicited_na(mac, ip, router=router), plan.gna_interval_us))
                for _ in range(count):
                    for ifname, frame, pause_us in frames:
                        try:
                            await self._frames.send(ifname, frame)
                        except NetError as exc:
                            self._gratuitous_failed(exc, 1)
                        else:
                            self.stats.gratuitous_sent += 1
                        if pause_us:
                            await anyio.sleep(pause_us / 1_000_000)
        finally:
            self._bursts.discard(scope)

    def _gratuitous_failed(self, exc: NetError, frames: int) -> None:
        self.stats.gratuitous_errors += frames
        count = self._limit(("gratuitous", exc.errno))
        if count:
            self.log.error(f"({self.plan.name}) cannot send gratuitous ARP/NA: {exc}", count=count)


def _ips(specs) -> frozenset[IPAddress]:
    return frozenset(spec.address.ip for spec in specs)


def _parts(old: InstancePlan, new: InstancePlan):
    """(old, new) addresses, routes and rules."""
    return (old.addresses, new.addresses), (old.routes, new.routes), (old.rules, new.rules)
