"""The IPVS table pyvrrpd wants: a pure function of the config and the health of each real server.

Nothing here touches the kernel, reads a clock or logs. :func:`desired` takes the virtual servers of
the config, the health of each real server and the quorum state of each virtual server from the
previous computation, and returns the table as plain frozen values plus the quorum transitions
(events whose scripts someone else runs). keepalived 2.2.7's rules, restated:

* a real server that is down is removed, or kept with weight 0 when ``inhibit_on_failure`` is set;
* a real server that has not been checked yet is up, unless one of its checkers has ``alpha``;
  a real server without checkers is always up;
* ``misc_dynamic`` gives an up real server a weight of its own (the "effective weight"), which
  IPVS gets and the quorum counts;
* quorum: weight_sum is the sum of the effective weights of the live real servers. It is gained
  when weight_sum >= quorum + hysteresis and lost when weight_sum == 0 or weight_sum < quorum -
  hysteresis. At start the state is "up" iff weight_sum >= quorum + hysteresis;
* while the quorum is down and there is a sorry server, the sorry server (weight 1) replaces the
  live real servers (inhibited ones stay with weight 0); ``sorry_server_inhibit`` keeps the sorry
  server in the table with weight 0 while it is not needed;
* a ``virtual_server_group`` makes one IPVS service per address of each range (IPv4: the last
  octet counts up; IPv6: the last 16 bits) and per fwmark, all with the same real servers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from pyvrrpd.config import model as m

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PROTOCOLS = {"TCP": 6, "UDP": 17, "SCTP": 132}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}

# Forwarding methods (IP_VS_CONN_F_*), the kernel's numbers.
MASQ, LOCAL, TUNNEL, DROUTE = 0, 1, 2, 3
FWD_OF_KIND = {m.LbKind.NAT: MASQ, m.LbKind.DR: DROUTE, m.LbKind.TUN: TUNNEL}
FWD_NAMES = {MASQ: "Masq", LOCAL: "Local", TUNNEL: "Tunnel", DROUTE: "Route"}

# Service flags (IP_VS_SVC_F_*).
F_PERSISTENT, F_HASHED, F_ONEPACKET, F_SCHED1, F_SCHED2, F_SCHED3 = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
FLAG_BITS = {
    "ops": F_ONEPACKET,
    "flag-1": F_SCHED1, "sh-fallback": F_SCHED1, "mh-fallback": F_SCHED1,
    "flag-2": F_SCHED2, "sh-port": F_SCHED2, "mh-port": F_SCHED2,
    "flag-3": F_SCHED3,
}
# The kernel sets HASHED on every service it holds: it is never part of what is compared.
FLAGS_COMPARED = 0xFFFF & ~F_HASHED

NETMASK4_HOST = 0xFFFFFFFF  # IPv4: a 32-bit mask; IPv6: a prefix length (keepalived sends 128)
NETMASK6_HOST = 128
SORRY_WEIGHT = 1


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ServiceKey:
    """What identifies an IPVS service: (af, protocol, addr, port), or (af, fwmark)."""

    af: int  # 4 or 6
    protocol: int = 0  # IPPROTO_*; 0 for a fwmark service
    addr: IPAddress | None = None
    port: int = 0
    fwmark: int = 0
    # IPv4Address.__hash__ formats a hex string: too slow for big tables; keys hash once
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        addr = None if self.addr is None else int(self.addr)
        object.__setattr__(self, "_hash", hash((self.af, self.protocol, addr, self.port, self.fwmark)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:  # ipvsadm's words: "TCP 198.51.100.100:80", "FWM 1 IPv6"
        if self.fwmark:
            return f"FWM {self.fwmark}" + (" IPv6" if self.af == 6 else "")
        return f"{PROTOCOL_NAMES.get(self.protocol, str(self.protocol))} {_hostport(self.addr, self.port)}"


@dataclass(frozen=True, slots=True)
class Service:
    key: ServiceKey
    scheduler: str = "wlc"
    flags: int = 0  # IP_VS_SVC_F_* without HASHED; PERSISTENT iff timeout
    timeout: int = 0  # persistence, seconds
    netmask: int = NETMASK4_HOST  # IPv4: a 32-bit mask; IPv6: a prefix length
    pe_name: str | None = None

    def __str__(self) -> str:
        text = f"{self.key} {self.scheduler}"
        if self.timeout:
            text += f" persistent {self.timeout}"
        return text


@dataclass(frozen=True, slots=True)
class DestKey:
    addr: IPAddress
    port: int = 0
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((int(self.addr), self.addr.version, self.port)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return _hostport(self.addr, self.port)


@dataclass(frozen=True, slots=True)
class Destination:
    key: DestKey
    weight: int = 1
    fwd: int = MASQ
    u_thresh: int = 0
    l_thresh: int = 0
    tun_type: int = 0  # IP_VS_CONN_F_TUNNEL_TYPE_*: 0 IPIP, 1 GUE, 2 GRE
    tun_port: int = 0
    tun_flags: int = 0

    def __str__(self) -> str:
        return f"{self.key} {FWD_NAMES.get(self.fwd, self.fwd)} {self.weight}"


# Fast constructors for the two values a table holds by the ten thousand (a dump, a config): a frozen
# dataclass's __init__ sets every field through object.__setattr__, about three times slower than
# setting the slots directly. They make values equal to (and hashing as) the classes' own constructors.
_new = object.__new__
_DK_SLOTS = tuple(DestKey.__dict__[name].__set__ for name in ("addr", "port", "_hash"))
_DEST_SLOTS = tuple(Destination.__dict__[name].__set__
                    for name in ("key", "weight", "fwd", "u_thresh", "l_thresh", "tun_type", "tun_port", "tun_flags"))


def dest_key(addr: IPAddress, port: int = 0) -> DestKey:
    """``DestKey(addr, port)``, faster."""
    key = _new(DestKey)
    set_addr, set_port, set_hash = _DK_SLOTS
    set_addr(key, addr)
    set_port(key, port)
    set_hash(key, hash((int(addr), addr.version, port)))
    return key


def dest(key: DestKey, weight: int, fwd: int, u_thresh: int = 0, l_thresh: int = 0, tun_type: int = 0,
         tun_port: int = 0, tun_flags: int = 0) -> Destination:
    """``Destination(...)`` with every field given in order, faster."""
    d = _new(Destination)
    s_key, s_weight, s_fwd, s_u, s_l, s_type, s_port, s_flags = _DEST_SLOTS
    s_key(d, key)
    s_weight(d, weight)
    s_fwd(d, fwd)
    s_u(d, u_thresh)
    s_l(d, l_thresh)
    s_type(d, tun_type)
    s_port(d, tun_port)
    s_flags(d, tun_flags)
    return d


@dataclass(frozen=True, slots=True)
class Table:
    """A whole IPVS table (or the part of it someone owns)."""

    services: Mapping[ServiceKey, Service] = field(default_factory=dict)
    dests: Mapping[tuple[ServiceKey, DestKey], Destination] = field(default_factory=dict)

    def dests_of(self, key: ServiceKey) -> list[Destination]:
        return [d for (s, _), d in self.dests.items() if s == key]

    def __len__(self) -> int:
        return len(self.services) + len(self.dests)


@dataclass(frozen=True, slots=True)
class RsId:
    """Names one real server of one virtual server: what health updates are keyed by."""

    vs: str  # vs_name() of its virtual server
    address: IPAddress
    port: int = 0  # 0: the real server has no port

    def __str__(self) -> str:
        return f"{_hostport(self.address, self.port)} of VS {self.vs}"


@dataclass(frozen=True, slots=True)
class RsHealth:
    """A real server's health: up or down, and (MISC_CHECK misc_dynamic) a weight of its own."""

    up: bool
    weight: int | None = None  # None: the configured weight


@dataclass(frozen=True, slots=True)
class QuorumChange:
    """A virtual server gained or lost its quorum: run its quorum_up / quorum_down script."""

    vs: str
    up: bool
    weight_sum: int
    threshold: int
    script: m.Script | None
    at_start: bool = False

    @property
    def text(self) -> str:  # keepalived's words
        if self.up:
            return f"Gained quorum {self.threshold}<={self.weight_sum} for VS {self.vs}"
        what = "Starting with quorum down" if self.at_start else "Lost quorum"
        return f"{what} {self.weight_sum}<{self.threshold} for VS {self.vs}"


@dataclass(frozen=True, slots=True)
class Desired:
    table: Table
    quorum: Mapping[str, bool]  # vs name -> quorum up
    events: tuple[QuorumChange, ...] = ()
    # every key this config could ever program: what the reconciler owns
    owned_services: frozenset[ServiceKey] = frozenset()
    owned_dests: frozenset[tuple[ServiceKey, DestKey]] = frozenset()


def _hostport(addr: IPAddress | None, port: int) -> str:
    host = f"[{addr}]" if addr is not None and addr.version == 6 else str(addr)
    return f"{host}:{port}"


# --------------------------------------------------------------------------- naming


def vs_name(vs: m.VirtualServer) -> str:
    """A virtual server's name in logs, events and RsId: "TCP 198.51.100.100:80", "FWM 1", "group G TCP"."""
    if vs.group is not None:
        return f"group {vs.group}" + (f" {vs.protocol}" if vs.protocol else "")
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}" + (" IPv6" if vs.ip_family == 6 else "")
    return f"{vs.protocol or 'UDP'} {_hostport(vs.address, vs.port or 0)}"


def rs_id(vs: m.VirtualServer, rs: m.RealServer) -> RsId:
    return RsId(vs_name(vs), rs.address, rs.port or 0)


def rs_ids(config_vss: Iterable[m.VirtualServer]) -> Iterator[tuple[RsId, m.VirtualServer, m.RealServer]]:
    for vs in config_vss:
        name = vs_name(vs)
        for rs in vs.real_servers:
            yield RsId(name, rs.address, rs.port or 0), vs, rs


def initial_health(rs: m.RealServer) -> RsHealth:
    """Before any check: up, unless a checker has alpha (keepalived starts such checkers failed)."""
    return RsHealth(up=not any(_alpha(ck) for ck in rs.checkers))


def _alpha(checker: m.AnyChecker) -> bool:
    if isinstance(checker, m.FileCheck):
        return False
    return checker.alpha


# --------------------------------------------------------------------------- services of a virtual server


def service_keys(vs: m.VirtualServer, groups: Mapping[str, m.VirtualServerGroup]) -> list[ServiceKey]:
    """The IPVS services one virtual server makes (a group makes one per address and fwmark)."""
    protocol = PROTOCOLS.get(vs.protocol or "", 0)
    family = vs.ip_family or 4
    if vs.fwmark is not None:
        return [ServiceKey(af=family, fwmark=vs.fwmark)]
    if vs.group is None:
        assert vs.address is not None
        return [ServiceKey(af=vs.address.version, protocol=protocol or 17, addr=vs.address, port=vs.port or 0)]
    group = groups.get(vs.group)
    if group is None:
        return []
    keys = []
    for e in group.entries:
        if e.fwmark is not None:
            keys.append(ServiceKey(af=family, fwmark=e.fwmark))
            continue
        assert e.address is not None
        for addr in _range(e.address, e.last):
            keys.append(ServiceKey(af=addr.version, protocol=protocol or 17, addr=addr, port=e.port or 0))
    return keys


def _range(first: IPAddress, last: IPAddress | None) -> Iterator[IPAddress]:
    if last is None or int(last) <= int(first):
        yield first
        return
    for value in range(int(first), int(last) + 1):
        yield ipaddress.ip_address(value) if first.version == 4 else ipaddress.IPv6Address(value)


def service_attrs(vs: m.VirtualServer, key: ServiceKey) -> Service:
    flags = 0
    for name in vs.flags:
        flags |= FLAG_BITS.get(name, 0)
    timeout = vs.persistence_timeout or 0
    if timeout:
        flags |= F_PERSISTENT
    netmask = NETMASK6_HOST if key.af == 6 else NETMASK4_HOST
    if timeout and vs.persistence_granularity:
        netmask = parse_granularity(vs.persistence_granularity, key.af) or netmask
    return Service(key=key, scheduler=vs.lb_algo, flags=flags, timeout=timeout, netmask=netmask,
                   pe_name=vs.persistence_engine)


def parse_granularity(text: str, af: int) -> int | None:
    """persistence_granularity: an IPv4 mask ("255.255.255.0") or a prefix length ("24", "/64")."""
    text = text.strip().lstrip("/")
    try:
        if af == 4:
            if "." in text:
                return int(ipaddress.IPv4Address(text))
            plen = int(text)
            return int(ipaddress.IPv4Network(f"0.0.0.0/{plen}").netmask) if 1 <= plen <= 32 else None
        plen = int(text)
    except (ValueError, ipaddress.AddressValueError):
        return None
    return plen if 1 <= plen <= 128 else None


# Tunnel types (IP_VS_CONN_F_TUNNEL_TYPE_*) and encapsulation flags (IP_VS_TUNNEL_ENCAP_FLAG_*).
TUN_TYPES = {"ipip": 0, "gue": 1, "gre": 2}
TUN_CSUM_FLAGS = {"nocsum": 0, "csum": 1, "remcsum": 2}


def destination(rs: m.RealServer | m.SorryServer, weight: int) -> Destination:
    u_thresh, l_thresh = (rs.uthreshold or 0, rs.lthreshold or 0) if type(rs) is m.RealServer else (0, 0)
    kind, key = rs.lb_kind, dest_key(rs.address, rs.port or 0)
    # (no FWD_OF_KIND[kind]: an Enum hashes in Python, slowly)
    if kind is _NAT:
        return dest(key, weight, MASQ, u_thresh, l_thresh)
    if kind is _DR or rs.tunnel is None:
        return dest(key, weight, DROUTE if kind is _DR else TUNNEL, u_thresh, l_thresh)
    tun = rs.tunnel
    return dest(key, weight, TUNNEL, u_thresh, l_thresh, TUN_TYPES[tun.type], tun.port, TUN_CSUM_FLAGS[tun.csum])


_NAT, _DR = m.LbKind.NAT, m.LbKind.DR


# --------------------------------------------------------------------------- the table


def effective_weight(rs: m.RealServer, health: RsHealth) -> int:
    weight = rs.weight if health.weight is None else health.weight
    return max(0, min(weight, 65535))


@dataclass(slots=True)
class _Static:
    """What a virtual server contributes whatever the health: computed once per config (see ``memo``)."""

    vs: m.VirtualServer
    name: str
    keys: list[ServiceKey]
    services: list[Service]
    real: list[tuple[m.RealServer, RsId, Destination]]  # with the configured weight
    initial_up: list[bool]  # of each real server before its first check
    sorry_on: Destination | None
    sorry_off: Destination | None
    owned_dests: list[tuple[ServiceKey, DestKey]]
    # the table's entries while every real server is up with its configured weight (the common case)
    all_up: list[tuple[tuple[ServiceKey, DestKey], Destination]]


def _static(vs: m.VirtualServer, groups: Mapping[str, m.VirtualServerGroup]) -> _Static:
    name = vs_name(vs)
    keys = service_keys(vs, groups)
    real = [(rs, RsId(name, rs.address, rs.port or 0), destination(rs, rs.weight)) for rs in vs.real_servers]
    up_dests = [dest for _, _, dest in real]
    dest_keys = [dest.key for dest in up_dests]
    sorry_on = sorry_off = None
    if vs.sorry_server is not None:
        sorry_on, sorry_off = destination(vs.sorry_server, SORRY_WEIGHT), destination(vs.sorry_server, 0)
        if vs.sorry_server.inhibit and sorry_off.key not in dest_keys:
            up_dests.append(sorry_off)  # kept with weight 0 while not needed
        dest_keys.append(sorry_on.key)
    all_up = [((key, dest.key), dest) for key in keys for dest in up_dests]
    return _Static(vs, name, keys, [service_attrs(vs, key) for key in keys], real,
                   [not any(_alpha(ck) for ck in rs.checkers) for rs in vs.real_servers], sorry_on, sorry_off,
                   [(key, dk) for key in keys for dk in dest_keys], all_up)


def carry_memo(memo: dict, config_vss: Iterable[m.VirtualServer]) -> dict:
    """A memo for a new config (same virtual_server_groups) that keeps what :func:`desired` computed for the
    virtual servers that did not change (model values compare without their spans), so a reload of a big
    config recomputes only the virtual servers it changed."""
    old = {st.name: st for key, st in memo.items() if key != "owned"}
    new: dict = {}
    for vs in config_vss:
        st = old.get(vs_name(vs))
        if st is not None and st.vs == vs:
            new[id(vs)] = replace(st, vs=vs)
    return new


def desired(
    config_vss: Iterable[m.VirtualServer],
    groups: Mapping[str, m.VirtualServerGroup] | Iterable[m.VirtualServerGroup],
    health: Mapping[RsId, RsHealth],
    quorum: Mapping[str, bool] | None = None,
    memo: dict | None = None,
) -> Desired:
    """The IPVS table for these virtual servers given each real server's health.

    ``quorum`` is the previous result's ``quorum`` (None at start): the hysteresis needs it.
    A real server missing from ``health`` has its :func:`initial_health`. ``memo``, a dict the caller
    keeps for as long as the config does, saves what does not depend on health between calls.
    """
    if not isinstance(groups, Mapping):
        groups = {g.name: g for g in groups}
    memo = {} if memo is None else memo
    services: dict[ServiceKey, Service] = {}
    dests: dict[tuple[ServiceKey, DestKey], Destination] = {}
    new_quorum: dict[str, bool] = {}
    events: list[QuorumChange] = []
    statics = []
    for vs in config_vss:
        st = memo.get(id(vs))
        if st is None or st.vs is not vs:
            st = memo[id(vs)] = _static(vs, groups)
        if st.keys:
            statics.append(st)
    owned = memo.get("owned")
    if owned is None or owned[0] != [id(st) for st in statics]:
        owned = memo["owned"] = ([id(st) for st in statics], frozenset(k for st in statics for k in st.keys),
                                 frozenset(k for st in statics for k in st.owned_dests))

    for st in statics:
        vs, name = st.vs, st.name
        states = []
        weight_sum = 0
        all_up = True  # every real server up with its configured weight
        for (rs, rid, dest), up in zip(st.real, st.initial_up):
            h = health.get(rid) if health else None
            if h is not None:
                up = h.up
                if h.weight is not None:
                    w = effective_weight(rs, h)
                    if w != dest.weight:
                        dest = replace(dest, weight=w)
                        all_up = False
            states.append((rs, up, dest))
            if up:
                weight_sum += dest.weight
            else:
                all_up = False

        up, event = _quorum(vs, name, weight_sum, None if quorum is None else quorum.get(name))
        new_quorum[name] = up
        if event is not None:
            events.append(event)
        sorry_active = st.sorry_on is not None and not up
        for key, svc in zip(st.keys, st.services):
            services.setdefault(key, svc)  # a service two virtual servers make: the first one's attributes
        if all_up and not sorry_active:
            dests.update(st.all_up)
            continue

        vs_dests: dict[DestKey, Destination] = {}
        for rs, alive, dest in states:
            if alive and not sorry_active:
                vs_dests[dest.key] = dest
            elif rs.inhibit_on_failure:
                vs_dests[dest.key] = replace(dest, weight=0)
        if st.sorry_on is not None and st.sorry_off is not None:
            if sorry_active:
                vs_dests[st.sorry_on.key] = st.sorry_on
            elif vs.sorry_server is not None and vs.sorry_server.inhibit and st.sorry_off.key not in vs_dests:
                vs_dests[st.sorry_off.key] = st.sorry_off

        for key in st.keys:
            for dk, dest in vs_dests.items():
                dests[(key, dk)] = dest

    return Desired(Table(services, dests), new_quorum, tuple(events), owned[1], owned[2])


def _quorum(vs: m.VirtualServer, name: str, weight_sum: int, was_up: bool | None) -> tuple[bool, QuorumChange | None]:
    q, h = vs.quorum, vs.hysteresis
    if was_up is None:  # start: up iff the sum reaches quorum + hysteresis
        up = weight_sum >= q + h
        if not up and vs.sorry_server is not None:  # keepalived announces it only when it adds the sorry server
            return False, QuorumChange(name, False, weight_sum, q - h, vs.quorum_down, at_start=True)
        return up, None
    if not was_up and weight_sum >= q + h:
        return True, QuorumChange(name, True, weight_sum, q + h, vs.quorum_up)
    if was_up and (weight_sum == 0 or weight_sum < q - h):
        return False, QuorumChange(name, False, weight_sum, q - h, vs.quorum_down)
    return was_up, None
