"""Typed, immutable model of a keepalived 2.2.7 configuration.

Everything here is plain data: frozen slotted dataclasses built by
:func:`pyvrrpd.config.build.build`. Conventions:

* every time is an ``int`` in microseconds (fields end in ``_us``);
* every object carries ``span``, the place of the keyword (or value-block line)
  it came from, so diagnostics and runtime logs can point at the config line.
  Spans take no part in ``==`` and hashing: two loads of one file (or of the same
  text in another file, or moved to other lines) give equal models, so a reload
  can tell what changed by comparing objects;
* defaults are keepalived 2.2.7's; values inherited from an outer block
  (global_defs -> instance, virtual_server -> real_server -> checker) are
  already resolved, so consumers never look outwards;
* sequences are tuples, never lists.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import MISSING, FrozenInstanceError, dataclass, field, fields
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from operator import attrgetter

from pyvrrpd.config.diagnostics import Span

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

SECOND = 1_000_000  # microseconds

VRRP_MCAST_GROUP4 = IPv4Address("224.0.0.18")
VRRP_MCAST_GROUP6 = IPv6Address("ff02::12")
DEFAULT_PRIORITY = 100
OWNER_PRIORITY = 255


class State(enum.Enum):
    MASTER = "MASTER"
    BACKUP = "BACKUP"


class AuthType(enum.Enum):
    PASS = "PASS"
    AH = "AH"


class TrackKind(enum.Enum):
    """What a ``track_*`` entry names: the keyword's suffix (``track_interface`` -> INTERFACE)."""

    INTERFACE = "interface"  # a network interface: down means failed
    SCRIPT = "script"  # a vrrp_script
    FILE = "file"  # a track_file (its value times the weight)
    PROCESS = "process"  # a vrrp_track_process
    BFD = "bfd"  # a bfd_instance


class LbKind(enum.Enum):
    """IPVS forwarding method (``lb_kind`` / ``lvs_method``)."""

    NAT = "NAT"
    DR = "DR"
    TUN = "TUN"


class _Value:
    """Base of the model classes: the methods ``dataclass()`` would write, written once.

    ``dataclass()`` compiles ``__init__``, ``__repr__``, ``__eq__``, ``__hash__`` and a
    frozen class's ``__setattr__``/``__delattr__`` for every class at import (20 ms for
    the classes here, paid by every ``--check-config``). These give the same results:
    immutability (assignment raises FrozenInstanceError), and repr, ``==`` and hash from
    the fields' values (``==`` and hash leave out the fields marked ``compare=False``:
    the spans). ``__init__`` is compiled per class, on its first use (see
    :func:`_first_init`).
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __getstate__(self) -> list:  # copy and pickle, as for a frozen slotted dataclass
        return [getattr(self, f.name) for f in fields(self)]

    def __setstate__(self, state: list) -> None:
        for f, value in zip(fields(self), state):
            object.__setattr__(self, f.name, value)

    def __repr__(self) -> str:
        shape = _shape(type(self))
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(shape.shown, shape.shown_values(self)))
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        values = _shape(type(self)).compared_values
        return values(self) == values(other)

    def __hash__(self) -> int:
        return hash(_shape(type(self)).compared_values(self))


class _Shape:
    """The fields a model class shows in repr and compares, and getters of their values."""

    __slots__ = ("shown", "shown_values", "compared_values")

    def __init__(self, cls: type) -> None:
        self.shown = tuple(f.name for f in fields(cls) if f.repr)
        self.shown_values = _getter(self.shown)
        self.compared_values = _getter(tuple(f.name for f in fields(cls) if f.compare))


def _getter(names: tuple[str, ...]) -> Callable[[object], tuple]:
    """A function giving the values of the named attributes as a tuple."""
    if len(names) == 1:
        return lambda obj: (getattr(obj, names[0]),)
    return attrgetter(*names) if names else (lambda obj: ())


_SHAPES: dict[type, _Shape] = {}


def _shape(cls: type) -> _Shape:
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = _SHAPES[cls] = _Shape(cls)
    return shape


def _first_init(self: _Value, **values: object) -> None:
    """Every model class's ``__init__`` until the class is first used: it compiles the
    class's own and puts it in place. (A config uses a few of the classes here.)"""
    cls = type(self)
    cls.__init__ = init = _compile_init(cls)
    init(self, **values)


_FACTORY = object()  # the default of a field with a default_factory


def _compile_init(cls: type) -> Callable[..., None]:
    """The keyword-only ``__init__`` dataclass() writes, except that it stores each value
    with its slot's setter (which goes past ``__setattr__``, in half the time of
    ``object.__setattr__``): a large config makes tens of thousands of model objects."""
    env: dict[str, object] = {"_FACTORY": _FACTORY}
    params, body = [], []
    for i, f in enumerate(fields(cls)):
        env[f"_set{i}"] = getattr(cls, f.name).__set__
        if f.default is not MISSING:
            env[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        elif f.default_factory is not MISSING:
            env[f"_factory{i}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            body.append(f"    if {f.name} is _FACTORY:\n        {f.name} = _factory{i}()")
        else:
            params.append(f.name)
        body.append(f"    _set{i}(self, {f.name})")
    exec(f"def __init__(self, *, {', '.join(params)}) -> None:\n" + "\n".join(body), env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


_dataclass = dataclass(slots=True, kw_only=True, init=False, repr=False, eq=False)


def _frozen(cls: type) -> type:
    """A model class: a slotted dataclass with _Value's methods and a compiled ``__init__``.

    (Not ``frozen=True``: _Value is immutable itself, and dataclass() would compile three
    methods for the class at import.)
    """
    cls = _dataclass(cls)
    cls.__init__ = _first_init  # every class its own: a compiled __init__ fits one class only
    return cls


def _place():
    """The ``span`` field: where an object was configured, not what it is (not compared)."""
    return field(compare=False)


# --------------------------------------------------------------------------- shared pieces


@_frozen
class Script(_Value):
    """A command keepalived would fork: argv plus the account it runs as.

    ``user``/``group`` are None when the default script user applies
    (``script_user``, else ``keepalived_script`` if it exists, else root).
    """

    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None
    span: Span = _place()


@_frozen
class Track(_Value):
    """One line of a ``track_interface``/``track_script``/``track_file``/``track_process``/
    ``track_bfd`` block of an instance or a sync group.

    ``weight`` 0 means "a failure puts the instance in FAULT"; otherwise the
    weight changes the priority (``reverse`` turns the change around). The weight
    is already resolved: the line's own, else the tracked object's.
    """

    kind: TrackKind
    name: str  # the interface, or the vrrp_script/track_file/... name
    weight: int = 0
    reverse: bool = False
    span: Span = _place()


@_frozen
class Notify(_Value):
    """The notify scripts of an instance or a sync group, one per event (None: none).

    ``deleted`` and ``master_rx_lower_pri`` exist for instances only.
    """

    master: Script | None = None  # notify_master
    backup: Script | None = None  # notify_backup
    fault: Script | None = None  # notify_fault
    stop: Script | None = None  # notify_stop
    deleted: Script | None = None  # notify_deleted
    master_rx_lower_pri: Script | None = None  # notify_master_rx_lower_pri
    any_state: Script | None = None  # notify: every state change, with the new state as an argument

    @property
    def scripts(self) -> tuple[tuple[str, Script], ...]:
        """(keyword, script) of each configured script, in keepalived's keyword order."""
        return tuple((NOTIFY_KEYWORDS[f.name], getattr(self, f.name)) for f in fields(self)
                     if getattr(self, f.name) is not None)


#: Notify field -> the keyword that sets it.
NOTIFY_KEYWORDS = {
    "master": "notify_master",
    "backup": "notify_backup",
    "fault": "notify_fault",
    "stop": "notify_stop",
    "deleted": "notify_deleted",
    "master_rx_lower_pri": "notify_master_rx_lower_pri",
    "any_state": "notify",
}


@_frozen
class VirtualAddress(_Value):
    """A ``virtual_ipaddress``/``_excluded``/``static_ipaddress`` line."""

    address: IPInterface  # address with prefix (default /32 or /128)
    broadcast: IPv4Address | None = None
    dev: str | None = None  # None: the instance's interface
    scope: str | None = None
    label: str | None = None
    peer: IPInterface | None = None
    home: bool = False
    nodad: bool = False
    mngtmpaddr: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    no_track: bool = False
    use_vmac: bool = False
    preferred_lft: int | None = None  # seconds; None: kernel default (forever)
    track_group: str | None = None
    span: Span = _place()


@_frozen
class Route(_Value):
    """A ``virtual_routes``/``static_routes`` line: ``ip route`` syntax, kept as words."""

    words: tuple[str, ...]
    family: int = 4
    destination: IPInterface | None = None  # None for "default"
    via: IPAddress | None = None
    dev: str | None = None
    table: str | None = None
    no_track: bool = False
    track_group: str | None = None
    span: Span = _place()


@_frozen
class Rule(_Value):
    """A ``virtual_rules``/``static_rules`` line: ``ip rule`` syntax, kept as words."""

    words: tuple[str, ...]
    family: int = 4
    from_: IPInterface | None = None
    to: IPInterface | None = None
    table: str | None = None
    preference: int | None = None
    iif: str | None = None
    oif: str | None = None
    no_track: bool = False
    track_group: str | None = None
    span: Span = _place()


# --------------------------------------------------------------------------- global_defs


@_frozen
class GlobalDefs(_Value):
    """The ``global_defs`` block: process-wide settings and the VRRP defaults instances inherit."""

    router_id: str | None = None  # None: the host name
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    smtp_server: str | None = None
    smtp_port: int = 25
    smtp_helo_name: str | None = None
    smtp_connect_timeout_us: int = 30 * SECOND
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    # VRRP defaults that instances inherit
    vrrp_version: int = 2
    vrrp_mcast_group4: IPv4Address = VRRP_MCAST_GROUP4
    vrrp_mcast_group6: IPv6Address = VRRP_MCAST_GROUP6
    vrrp_garp_master_delay_us: int = 5 * SECOND
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh_us: int = 0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_lower_prio_delay_us: int = 5 * SECOND  # = master delay unless set
    vrrp_garp_lower_prio_repeat: int = 5  # = master repeat unless set
    vrrp_garp_interval_us: int = 0
    vrrp_gna_interval_us: int = 0
    vrrp_min_garp: bool = False
    vrrp_down_timer_adverts: int = 3
    vrrp_lower_prio_no_advert: bool = False
    vrrp_higher_prio_send_advert: bool = False
    vrrp_strict: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_startup_delay_us: int = 0
    log_unknown_vrids: bool = False
    v3_checksum_as_v2: bool = False  # RFC 9568 IPv4 VRRPv3 checksum (newer keepalived keyword)
    vrrp_notify_priority_changes: bool = False
    dynamic_interfaces: bool = False
    default_interface: str | None = None
    # scripts
    script_user: str | None = None
    script_group: str | None = None
    enable_script_security: bool = False
    notify_fifo: str | None = None
    notify_fifo_script: Script | None = None
    vrrp_notify_fifo: str | None = None
    vrrp_notify_fifo_script: Script | None = None
    lvs_notify_fifo: str | None = None
    lvs_notify_fifo_script: Script | None = None
    startup_script: Script | None = None
    startup_script_timeout_us: int = 10 * SECOND
    shutdown_script: Script | None = None
    shutdown_script_timeout_us: int = 10 * SECOND
    # LVS
    lvs_flush: bool = False
    lvs_timeouts: tuple[int, int, int] = (0, 0, 0)  # tcp, tcpfin, udp, seconds; 0: the kernel's is kept
    lvs_flush_on_stop: str | None = None  # None, "FULL" or "VS"
    lvs_sync_daemon: tuple[str, ...] = ()  # raw words after the keyword
    checker_log_all_failures: bool = False
    # process scheduling (pyvrrpd.daemon.scheduling): the vrrp_* set when VRRP runs, checker_* under -C
    vrrp_priority: int | None = None  # nice value, -20..19
    vrrp_rt_priority: int | None = None  # SCHED_RR priority, 1..99
    vrrp_no_swap: bool = False  # mlockall
    vrrp_cpu_affinity: tuple[int, ...] = ()
    checker_priority: int | None = None
    checker_rt_priority: int | None = None
    checker_no_swap: bool = False
    checker_cpu_affinity: tuple[int, ...] = ()
    span: Span | None = field(default=None, compare=False)  # None when the config has no global_defs block


# --------------------------------------------------------------------------- VRRP side


@_frozen
class VrrpScript(_Value):
    """A ``vrrp_script`` block."""

    name: str
    script: Script
    interval_us: int = SECOND
    timeout_us: int = SECOND  # = interval unless set
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    init_fail: bool = False
    span: Span = _place()


@_frozen
class TrackFile(_Value):
    """A ``track_file`` (or deprecated ``vrrp_track_file``) block."""

    name: str
    path: str
    weight: int = 1
    weight_reverse: bool = False
    init_value: int | None = None  # from init_file; None: don't create/initialise
    init_overwrite: bool = False
    span: Span = _place()


@_frozen
class TrackProcess(_Value):
    """A ``vrrp_track_process`` block."""

    name: str
    process: str
    params: tuple[str, ...] = ()
    param_match: str | None = None  # None, "exact", "initial", "partial"
    full_command: bool = False
    weight: int = 0
    weight_reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    terminate_delay_us: int = 0
    fork_delay_us: int = 0
    span: Span = _place()


@_frozen
class UnicastPeer(_Value):
    """A ``unicast_peer`` line: the peer's address and the TTL range accepted from it."""

    address: IPAddress
    min_ttl: int = 0
    max_ttl: int = 255
    span: Span = _place()


@_frozen
class VrrpInstance(_Value):
    """A ``vrrp_instance`` block, completed: defaults and corrections applied."""

    name: str
    interface: str | None = None
    vrid: int  # 1..255 (an instance without a valid VRID is not built)
    state: State = State.BACKUP
    priority: int = DEFAULT_PRIORITY
    advert_int_us: int = SECOND
    version: int = 2
    family: int = 4
    vips: tuple[VirtualAddress, ...] = ()
    excluded_vips: tuple[VirtualAddress, ...] = ()
    virtual_routes: tuple[Route, ...] = ()
    virtual_rules: tuple[Rule, ...] = ()
    unicast_peers: tuple[UnicastPeer, ...] = ()
    src_ip: IPAddress | None = None  # from unicast_src_ip or mcast_src_ip
    mcast_dst_ip: IPAddress | None = None
    unicast_ttl: int | None = None
    unicast_fault_no_peer: bool = False
    check_unicast_src: bool = False
    old_unicast_checksum: bool = False  # pre-1.3.6 keepalived's unicast VRRPv3 checksum
    v3_checksum_as_v2: bool = False  # RFC 9568 IPv4 VRRPv3 checksum (newer keepalived keyword)
    track_src_ip: bool = False
    nopreempt: bool = False
    preempt_delay_us: int = 0
    accept: bool | None = None  # None: not configured (see accept_mode)
    strict: bool = False
    skip_check_adv_addr: bool = False
    dont_track_primary: bool = False
    promote_secondaries: bool = False
    use_vmac: bool = False
    vmac_name: str | None = None
    vmac_mac: str | None = None
    vmac_xmit_base: bool = False
    use_vmac_addr: bool = False
    garp_master_delay_us: int = 5 * SECOND
    garp_master_repeat: int = 5
    garp_master_refresh_us: int = 0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay_us: int = 5 * SECOND
    garp_lower_prio_repeat: int = 5
    garp_extra_if_us: int | None = None
    down_timer_adverts: int = 3
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    auth_type: AuthType | None = None
    auth_pass: str | None = None  # at most 8 characters
    tracks: tuple[Track, ...] = ()  # in config order
    notify: Notify = field(default_factory=Notify)
    notify_priority_changes: bool = False
    smtp_alert: bool = False
    debug: int = 0
    kernel_rx_buf_size: int | None = None
    sync_group: str | None = None
    span: Span = _place()

    @property
    def unicast(self) -> bool:
        return bool(self.unicast_peers)

    @property
    def accept_mode(self) -> bool:
        """Whether a master accepts traffic for its VIPs: keepalived's default is on,
        except in strict mode."""
        return (not self.strict) if self.accept is None else self.accept


@_frozen
class SyncGroup(_Value):
    """A ``vrrp_sync_group``: instances that change state together."""

    name: str
    members: tuple[str, ...] = ()  # instance names that exist
    tracks: tuple[Track, ...] = ()  # in config order
    notify: Notify = field(default_factory=Notify)
    smtp_alert: bool = False
    tracking_weight: bool = False  # sync_group_tracking_weight / global_tracking
    notify_priority_changes: bool = False
    span: Span = _place()


@_frozen
class GarpGroup(_Value):
    """A ``garp_group`` block: gratuitous ARP/NA pacing for a set of interfaces."""

    garp_interval_us: int | None = None
    gna_interval_us: int | None = None
    interfaces: tuple[str, ...] = ()
    span: Span = _place()


@_frozen
class BfdInstance(_Value):
    """A ``bfd_instance`` block."""

    name: str
    neighbor_ip: IPAddress
    source_ip: IPAddress | None = None
    min_rx_us: int = 10_000
    min_tx_us: int = 10_000
    idle_tx_us: int = 1 * SECOND
    multiplier: int = 5
    passive: bool = False
    ttl: int | None = None
    max_hops: int | None = None
    weight: int = 0
    vrrp: bool = True  # False when only "checker" is given
    checker: bool = True  # False when only "vrrp" is given
    span: Span = _place()


# --------------------------------------------------------------------------- LVS side


@_frozen
class Url(_Value):
    """A ``url`` block of an HTTP_GET/SSL_GET checker."""

    path: str = "/"
    digest: str | None = None  # 32 lowercase hex digits
    status_codes: tuple[tuple[int, int], ...] = ((200, 299),)  # inclusive ranges
    virtualhost: str | None = None
    regex: str | None = None
    regex_no_match: bool = False
    regex_options: tuple[str, ...] = ()
    regex_min_offset: int | None = None
    regex_max_offset: int | None = None
    span: Span = _place()


@_frozen
class Checker(_Value):
    """Fields every checker with a retry loop has (values already inherited)."""

    retry: int = 1
    delay_before_retry_us: int = SECOND
    warmup_us: int = 60 * SECOND
    delay_loop_us: int = 60 * SECOND
    alpha: bool = False
    log_all_failures: bool = False
    span: Span = _place()


@_frozen
class ConnectChecker(Checker):
    """Checkers that open a connection (all but MISC/FILE/BFD)."""

    connect_ip: IPAddress | None = None  # None: the real server's address
    connect_port: int | None = None  # None: the real server's port
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout_us: int = 5 * SECOND


@_frozen
class TcpCheck(ConnectChecker):
    """A ``TCP_CHECK``: the connection succeeds."""


@_frozen
class HttpCheck(ConnectChecker):
    """An ``HTTP_GET``: each url answers with an accepted status (and digest or regex)."""

    urls: tuple[Url, ...] = ()
    virtualhost: str | None = None
    http_protocol: str = "1.0"  # "1.0", "1.0C" or "1.1"
    enable_sni: bool = False
    fast_recovery: bool = False


@_frozen
class SslCheck(HttpCheck):
    """An ``SSL_GET``: HTTP_GET over TLS."""


@_frozen
class SmtpCheck(ConnectChecker):
    """An ``SMTP_CHECK``: the server answers HELO (one checker per ``host`` block)."""

    helo_name: str | None = None


@_frozen
class DnsCheck(ConnectChecker):
    """A ``DNS_CHECK``: the server answers a query."""

    type: str = "SOA"
    name: str = "."


@_frozen
class UdpCheck(ConnectChecker):
    """A ``UDP_CHECK``: the payload gets no ICMP error (or the required reply)."""

    payload: bytes | None = None
    require_reply: str | None = None  # hex with X wildcards, as written
    reply_required: bool = False  # require_reply given, with or without a pattern: a reply must come
    min_reply_length: int = 0
    max_reply_length: int | None = None


@_frozen
class PingCheck(ConnectChecker):
    """A ``PING_CHECK``: the address answers ICMP echo."""


@_frozen
class MiscCheck(Checker):
    """A ``MISC_CHECK``: a script's exit status."""

    script: Script
    timeout_us: int | None = None  # None: delay_loop
    dynamic: bool = False


@_frozen
class FileCheck(_Value):
    """A ``FILE_CHECK``: the value of a ``track_file``, times ``weight`` (negated with ``reverse``).
    Without a weight of its own (or with 0) it has the track_file's weight and reverse."""

    track_file: str
    weight: int = 1
    reverse: bool = False
    span: Span = _place()


@_frozen
class BfdCheck(_Value):
    """A ``BFD_CHECK``: the state of a ``bfd_instance``."""

    name: str
    alpha: bool = False
    span: Span = _place()


AnyChecker = (
    TcpCheck | HttpCheck | SslCheck | SmtpCheck | DnsCheck | UdpCheck | PingCheck | MiscCheck | FileCheck | BfdCheck
)


@_frozen
class Tunnel(_Value):
    """The options of ``lvs_method TUN type {ipip|gue port N|gre} [nocsum|csum|remcsum]``."""

    type: str = "ipip"  # "ipip", "gue" or "gre"
    port: int = 0  # gue only: the UDP port of the encapsulation
    csum: str = "nocsum"  # "nocsum", "csum" or "remcsum" (gue; gre has no remcsum, ipip none)
    span: Span = _place()


@_frozen
class SorryServer(_Value):
    """A ``sorry_server``: used when no real server is up."""

    address: IPAddress
    port: int | None = None
    lb_kind: LbKind = LbKind.NAT
    tunnel: Tunnel | None = None  # TUN with options (None: ipip)
    inhibit: bool = False
    span: Span = _place()


@_frozen
class RealServer(_Value):
    """A ``real_server`` block, with values inherited from its virtual server resolved."""

    address: IPAddress
    port: int | None = None  # NAT with no port: the virtual server's port
    weight: int = 1
    lb_kind: LbKind = LbKind.NAT
    tunnel: Tunnel | None = None  # TUN with options (None: ipip)
    inhibit_on_failure: bool = False
    alpha: bool = False
    uthreshold: int | None = None
    lthreshold: int | None = None
    retry: int | None = None  # None: each checker's own default
    delay_before_retry_us: int | None = None
    warmup_us: int | None = None
    connect_timeout_us: int = 5 * SECOND
    delay_loop_us: int = 60 * SECOND
    notify_up: Script | None = None
    notify_down: Script | None = None
    smtp_alert: bool = True
    virtualhost: str | None = None
    checkers: tuple[AnyChecker, ...] = ()
    span: Span = _place()


@_frozen
class VirtualServerGroupEntry(_Value):
    """One line of a ``virtual_server_group``: an address (range) and port, or a fwmark."""

    address: IPAddress | None = None
    last: IPAddress | None = None  # end of an address range, inclusive
    port: int | None = None
    fwmark: int | None = None
    span: Span = _place()


@_frozen
class VirtualServerGroup(_Value):
    """A ``virtual_server_group`` block."""

    name: str
    entries: tuple[VirtualServerGroupEntry, ...] = ()
    span: Span = _place()


@_frozen
class VirtualServer(_Value):
    """A ``virtual_server``: exactly one of address, fwmark or group is set."""

    address: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None
    group: str | None = None
    ip_family: int | None = None
    protocol: str | None = None  # "TCP", "UDP", "SCTP"; None for fwmark services
    lb_algo: str = "wlc"
    lb_kind: LbKind = LbKind.NAT
    tunnel: Tunnel | None = None  # TUN with options (None: ipip); real servers without a method inherit it
    flags: tuple[str, ...] = ()  # hashed, ops, flag-1.., sh-port, ...
    delay_loop_us: int = 60 * SECOND
    connect_timeout_us: int = 5 * SECOND
    retry: int | None = None
    delay_before_retry_us: int | None = None
    warmup_us: int | None = None
    persistence_timeout: int | None = None  # seconds
    persistence_granularity: str | None = None
    persistence_engine: str | None = None
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: Script | None = None
    quorum_down: Script | None = None
    alpha: bool = False
    omega: bool = False
    inhibit_on_failure: bool = False
    ha_suspend: bool = False
    virtualhost: str | None = None
    smtp_alert: bool = False
    sorry_server: SorryServer | None = None
    real_servers: tuple[RealServer, ...] = ()
    span: Span = _place()


@_frozen
class SslConfig(_Value):
    """The top-level ``SSL`` block (client certificates for SSL_GET)."""

    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    span: Span = _place()


# --------------------------------------------------------------------------- the whole file


@_frozen
class Config(_Value):
    """A whole configuration: everything :func:`pyvrrpd.config.build.build` made of it."""

    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    track_files: tuple[TrackFile, ...] = ()
    track_processes: tuple[TrackProcess, ...] = ()
    sync_groups: tuple[SyncGroup, ...] = ()
    instances: tuple[VrrpInstance, ...] = ()
    garp_groups: tuple[GarpGroup, ...] = ()
    static_addresses: tuple[VirtualAddress, ...] = ()
    static_routes: tuple[Route, ...] = ()
    static_rules: tuple[Rule, ...] = ()
    bfd_instances: tuple[BfdInstance, ...] = ()
    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()
    ssl: SslConfig | None = None
