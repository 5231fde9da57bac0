"""One VRRP socket per (interface, family), shared by the instances on it: receive, decode, demultiplex.

The reader never blocks on an instance: each instance has a bounded inbox, and a full inbox drops the
packet and counts it (a stuck instance must not stall the others). Decode errors are counted per reason;
CARP packets are counted but never logged (CARP shares protocol 112 and is normal on mixed networks);
everything else is logged at most once per reason per 10 s with the number of packets it stands for.

The socket is opened when the interface exists and reopened when it comes back with a new index
(``ensure_open``); while there is none the reader waits. Instances come and go with ``add`` and ``remove``
(a reload): a group a new member needs is joined at once; one no member needs any more stays joined
until the socket is next opened (its adverts are then counted as unknown VRIDs), and ``empty`` tells the
owner when the port can be closed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import anyio

from pyvrrpd.core.packet import ChecksumForm, DecodeError, Reason, decode, decode_ipv4_packet
from pyvrrpd.daemon.instance import Inbox, Packet
from pyvrrpd.daemon.plan import IPAddress
from pyvrrpd.daemon.ratelimit import RateLimit
from pyvrrpd.net.errors import NetError
from pyvrrpd.net.vrrp_socket import Received, VrrpSocket, open_vrrp_socket

DEFAULT_RCVBUF = 1 << 20
RECEIVE_ERROR_PAUSE = 0.01  # after a failed recvmsg, so a persistent error cannot spin the loop


@dataclass
class SocketStats:
    received: int = 0
    delivered: int = 0
    decode_errors: Counter[Reason] = field(default_factory=Counter)
    checksum_forms: Counter[ChecksumForm] = field(default_factory=Counter)  # accepted IPv4 VRRPv3 adverts
    unknown_vrid: int = 0
    unknown_peer: int = 0  # VRID shared by unicast instances, source in none of their peer lists
    wrong_destination: int = 0  # multicast for a unicast instance or the other way round
    ttl_out_of_range: int = 0  # unicast_peer min_ttl / max_ttl
    inbox_full: int = 0
    receive_errors: int = 0
    opened: int = 0


@dataclass(eq=False)
class Member:
    """An instance as the reader sees it."""

    name: str
    vrid: int
    peers: frozenset[IPAddress]
    peer_ttl: dict[IPAddress, tuple[int, int]]
    inbox: Inbox


class Port:
    def __init__(self, ifname: str, family: int, *, log, log_unknown_vrids: bool = False,
                 ratelimit: RateLimit | None = None) -> None:
        self.ifname = ifname
        self.family = family
        self.groups: set[IPAddress] = set()  # joined when any member is multicast
        self.rcvbuf = DEFAULT_RCVBUF
        self.sock: VrrpSocket | None = None
        self.stats = SocketStats()
        self._members: dict[int, list[Member]] = {}
        self._wants: dict[Member, tuple[IPAddress | None, int | None]] = {}  # member → (group, rcvbuf)
        self._log = log.bind(interface=ifname, family=family)
        self.log_unknown_vrids = log_unknown_vrids
        self._limit = ratelimit or RateLimit()
        self._opened = anyio.Event()

    def add(self, member: Member, group: IPAddress | None, rcvbuf: int | None = None) -> None:
        """Register an instance; `group` is its multicast destination (None for unicast instances).

        With the socket open, a new group is joined at once (NetError if the kernel refuses)."""
        self._members.setdefault(member.vrid, []).append(member)
        self._wants[member] = (group, rcvbuf)
        if group is not None and group not in self.groups:
            self.groups.add(group)
            if self.sock is not None:
                self.sock.join(group)
        if rcvbuf:
            self.rcvbuf = max(self.rcvbuf, rcvbuf)

    def remove(self, member: Member) -> None:
        """Unregister an instance: its adverts are unknown VRIDs from now on. Removing one that is not
        registered does nothing."""
        if self._wants.pop(member, None) is None:
            return
        same_vrid = self._members[member.vrid]
        same_vrid.remove(member)
        if not same_vrid:
            del self._members[member.vrid]
        wants = self._wants.values()
        self.groups = {group for group, _ in wants if group is not None}
        self.rcvbuf = max([DEFAULT_RCVBUF, *(rcvbuf for _, rcvbuf in wants if rcvbuf)])

    @property
    def empty(self) -> bool:
        """No instance uses this port any more."""
        return not self._wants

    # -- socket lifecycle ---------------------------------------------------------------------

    async def ensure_open(self, ifindex: int) -> None:
        """Open the socket, or reopen it if the interface was re-created (new index). Raises NetError."""
        if self.sock is not None and self.sock.ifindex == ifindex:
            return
        await self.close()
        self.sock = open_vrrp_socket(self.ifname, self.family, groups=tuple(self.groups), rcvbuf=self.rcvbuf)
        self.stats.opened += 1
        self._opened.set()

    async def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            self._opened = anyio.Event()
            await sock.aclose()

    # -- receiving ----------------------------------------------------------------------------

    async def run(self) -> None:
        """The reader: forever, while the daemon runs."""
        while True:
            sock = self.sock
            if sock is None:
                await self._opened.wait()
                continue
            try:
                received = await sock.receive()
            except anyio.ClosedResourceError:
                continue  # closed by ensure_open()/close(); the loop picks up the new socket
            except NetError as exc:
                self.stats.receive_errors += 1
                count = self._limit(("receive", exc.errno))
                if count:
                    self._log.error(f"{exc}", count=count)
                await anyio.sleep(RECEIVE_ERROR_PAUSE)
                continue
            self.handle(received)

    def handle(self, pkt: Received) -> None:
        """Decode one packet and hand it to its instance's inbox (or count why not)."""
        self.stats.received += 1
        unicast = not pkt.dst.is_multicast
        try:
            if self.family == 4:
                adv, src, _ = decode_ipv4_packet(pkt.payload, unicast=unicast)
            else:
                adv, src = decode(pkt.payload, family=6, src=pkt.src, dst=pkt.dst, ttl=pkt.ttl,
                                  unicast=unicast), pkt.src
        except DecodeError as exc:
            self.stats.decode_errors[exc.reason] += 1
            if exc.reason is not Reason.FOREIGN_CARP:
                self._rate_limited(("decode", exc.reason), f"invalid VRRP packet from {pkt.src}: {exc.detail}",
                                   reason=exc.reason.value)
            return
        if adv.checksum_form is not None:
            self.stats.checksum_forms[adv.checksum_form] += 1
        members = self._members.get(adv.vrid)
        if not members:
            self.stats.unknown_vrid += 1
            if self.log_unknown_vrids:
                self._rate_limited(("vrid", adv.vrid), f"Unknown VRID({adv.vrid}) received on interface"
                                   f"({self.ifname}). ignoring...", source=str(src))
            return
        member = _pick(members, src)
        if member is None:
            self.stats.unknown_peer += 1
            self._rate_limited(("peer", adv.vrid), f"advert for VRID {adv.vrid} from {src}, which is no "
                               "instance's unicast peer; ignoring", source=str(src))
            return
        if unicast != bool(member.peers):
            self.stats.wrong_destination += 1
            want, got = ("unicast", "multicast") if member.peers else ("multicast", "unicast")
            self._rate_limited(("destination", member.name),
                               f"({member.name}) Expected {want} packet but received {got} packet",
                               source=str(src))
            return
        limits = member.peer_ttl.get(src) if unicast else None
        if limits is not None and not limits[0] <= pkt.ttl <= limits[1]:
            self.stats.ttl_out_of_range += 1
            self._rate_limited(("ttl", member.name), f"({member.name}) advert from {src} with TTL {pkt.ttl}, "
                               f"outside {limits[0]}-{limits[1]}; ignoring", source=str(src))
            return
        try:
            member.inbox.send_nowait(Packet(adv, src))
        except anyio.WouldBlock:
            self.stats.inbox_full += 1
            self._rate_limited(("inbox", member.name), f"({member.name}) is not keeping up; advert from "
                               f"{src} dropped", source=str(src))
        except anyio.ClosedResourceError:
            pass  # the instance is stopping
        else:
            self.stats.delivered += 1

    def _rate_limited(self, key, text: str, **fields) -> None:
        count = self._limit(key)
        if count:
            self._log.warning(text, count=count, **fields)


def _pick(members: list[Member], src: IPAddress) -> Member | None:
    """The instance an advert is for: by VRID, then (several instances on one VRID) by unicast peer."""
    if len(members) == 1:
        return members[0]
    for member in members:
        if src in member.peers:
            return member
    for member in members:
        if not member.peers:
            return member
    return None
