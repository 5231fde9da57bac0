"""What was seen on the wire → a report with findings. Pure: observations, the config and the local
daemon's states in; a ``Report`` out. Every finding says what was seen, why it matters in plain words, and
what to do.

Routers are grouped per interface, address family and VRID (a virtual router). Within a group:

* **two masters**: two routers each sent at least two non-zero-priority adverts while the other was
  advertising too (a takeover, where one stops as the other starts, is not that);
* **mismatches** between the routers heard, and this host's config (``-f``): version, interval,
  authentication, VIP list and the VRRPv3-over-IPv4 checksum form, each a reason for routers to discard
  each other's adverts; they are named as the causes of two masters;
* equal priorities; TTL or hop limit not 255; a configured instance that hears no other router.

Per VIP probed: more than one MAC answering (this host counts when it holds the address), a single MAC
that is not the master's, or nobody answering while a master advertises it. Malformed protocol-112 frames,
CARP, and (with a config) VRIDs of other clusters are reported too.

Severity decides the exit status: a split brain (two masters, or a VIP held by two hosts) gives 1, any
warning 2, info alone (another cluster's VRIDs, CARP on the segment) leaves it at 0.
"""

from __future__ import annotations

import enum
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from pyvrrpd.core.packet import ChecksumForm, IPAddress
from pyvrrpd.diagnose.expected import AUTH_AH, AUTH_NONE, AUTH_PASS, Expected
from pyvrrpd.diagnose.wire import Answer, Heard, Malformed, Observation

EXIT_HEALTHY, EXIT_SPLIT_BRAIN, EXIT_FINDINGS, EXIT_CANNOT_RUN = 0, 1, 2, 3
MIN_LISTEN_S = 3.0
MAX_LISTEN_S = 60.0
ADVERTS_PER_LISTEN = 3  # listen for three of the slowest intervals
CURRENT_SLACK_S = 1.0  # a master is current if heard within 3 intervals + this of the end
MIN_SWITCHES = 4  # ABABA: two routers taking turns, not a takeover


class Severity(enum.StrEnum):
    SPLIT_BRAIN = "split_brain"
    WARNING = "warning"
    INFO = "info"


class Kind(enum.StrEnum):
    TWO_MASTERS = "two_masters"
    VIP_MULTIPLE_MACS = "vip_multiple_macs"
    VERSION_MISMATCH = "version_mismatch"
    INTERVAL_MISMATCH = "interval_mismatch"
    AUTH_MISMATCH = "auth_mismatch"
    VIP_LIST_MISMATCH = "vip_list_mismatch"
    CHECKSUM_FORM_MISMATCH = "checksum_form_mismatch"
    EQUAL_PRIORITIES = "equal_priorities"
    TTL_NOT_255 = "ttl_not_255"
    VIP_WRONG_MAC = "vip_wrong_mac"
    VIP_UNANSWERED = "vip_unanswered"
    NO_PEER_ADVERTS = "no_peer_adverts"
    MALFORMED = "malformed_frames"
    CARP = "carp"
    FOREIGN_VRIDS = "foreign_vrids"


SEVERITY: dict[Kind, Severity] = {
    Kind.TWO_MASTERS: Severity.SPLIT_BRAIN,
    Kind.VIP_MULTIPLE_MACS: Severity.SPLIT_BRAIN,
    Kind.CARP: Severity.INFO,
    Kind.FOREIGN_VRIDS: Severity.INFO,
}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    where: str  # "lan0 IPv4 VRID 51", "198.51.100.100 on lan0", "lan0"
    summary: str  # what was seen, one line
    explanation: str  # why it matters, plain words
    action: str  # what to do
    details: dict = field(default_factory=dict, compare=False)

    @property
    def severity(self) -> Severity:
        return SEVERITY.get(self.kind, Severity.WARNING)

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "severity": self.severity.value, "where": self.where,
                "summary": self.summary, "explanation": self.explanation, "action": self.action,
                "details": self.details}


@dataclass(frozen=True)
class Capture:
    """Everything the capture saw and knows about this host; times are the capture's clock (seconds)."""

    interfaces: tuple[str, ...]
    start: float
    end: float
    observations: tuple[Observation, ...] = ()
    probe_start: float | None = None  # answers count from here on
    probed: tuple[tuple[str, IPAddress], ...] = ()  # (interface, address) probed with ARP / NS
    host_macs: Mapping[str, str] = field(default_factory=dict)  # every local interface → its MAC
    host_addresses: Mapping[IPAddress, str] = field(default_factory=dict)  # local address → interface
    notes: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        """Listening and probing."""
        return max(self.end - self.start, 0.0)

    @property
    def listened(self) -> float:
        """Listening before the probes."""
        return max((self.probe_start if self.probe_start is not None else self.end) - self.start, 0.0)


def listen_seconds(configured_us: Iterable[int] = (), heard_us: Iterable[int] = (),
                   maximum: float = MAX_LISTEN_S) -> float:
    """Default listening time: three of the slowest intervals (configured or heard), 3 s at least,
    ``maximum`` at most."""
    slowest = max([*configured_us, *heard_us], default=0)
    return min(max(MIN_LISTEN_S, ADVERTS_PER_LISTEN * slowest / 1e6), maximum)


# --------------------------------------------------------------------------- per router


@dataclass
class Advertiser:
    """One router heard on one virtual router: its adverts in order."""

    iface: str
    family: int
    vrid: int
    src: IPAddress
    mac: str
    this_host: bool
    adverts: list[Heard] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.src} (this host)" if self.this_host else str(self.src)

    @property
    def latest(self) -> Heard:
        """The last non-zero-priority advert (what the router claims as master), else the last."""
        for h in reversed(self.adverts):
            if h.advert.priority:
                return h
        return self.adverts[-1]

    @property
    def claim_times(self) -> list[float]:
        return [h.t for h in self.adverts if h.advert.priority]

    def per_second(self) -> float:
        if len(self.adverts) < 2:
            return 0.0
        span = self.adverts[-1].t - self.adverts[0].t
        return round((len(self.adverts) - 1) / span, 2) if span > 0 else 0.0

    def is_current_master(self, end: float, holders: AbstractSet[str] = frozenset()) -> bool:
        """Its last advert claims mastership, and it was recent or this router holds a VIP now."""
        last = self.adverts[-1]
        if not last.advert.priority:
            return False
        return self.mac in holders or last.t >= end - (3 * last.advert.interval_us / 1e6 + CURRENT_SLACK_S)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the routers of one VRID must agree on, from an advert or from the config."""

    label: str
    version: int
    priority: int
    interval_us: int
    auth_type: int
    auth_data: bytes
    vips: frozenset
    checksum_form: ChecksumForm | None
    family: int
    from_config: bool = False


def _facts(a: Advertiser) -> Facts:
    adv = a.latest.advert
    form = adv.checksum_form if adv.version == 3 and a.family == 4 else None
    return Facts(a.label, adv.version, adv.priority, adv.interval_us, adv.auth_type,
                 adv.auth_data if adv.auth_type == AUTH_PASS else b"", frozenset(adv.addresses), form, a.family)


def _config_facts(e: Expected) -> Facts:
    return Facts(f"this host's config ({e.name})", e.version, e.priority, e.interval_us,
                 e.auth_type if e.version == 2 else AUTH_NONE,
                 e.auth_data if e.version == 2 and e.auth_type == AUTH_PASS else b"",
                 e.vips, e.checksum_form, e.family, from_config=True)


# --------------------------------------------------------------------------- wording


def where(iface: str, family: int, vrid: int) -> str:
    return f"{iface} IPv{family} VRID {vrid}"


def seconds(us: int) -> str:
    return f"{us / 1e6:g} s"


FORM_WORDS = {
    ChecksumForm.PSEUDO_HEADER: "RFC 5798 (with IPv4 pseudo-header)",
    ChecksumForm.MESSAGE: "RFC 9568 (message only)",
    ChecksumForm.OLD_UNICAST: "pre-1.3.6 keepalived unicast form",
}


class _Passwords:
    """Names passwords A, B, ... in order of appearance, so the report never prints one."""

    def __init__(self) -> None:
        self._names: dict[bytes, str] = {}

    def auth(self, auth_type: int, data: bytes) -> str:
        if auth_type == AUTH_NONE:
            return "none"
        if auth_type == AUTH_AH:
            return "AH"
        if auth_type != AUTH_PASS:
            return f"type {auth_type}"
        name = self._names.setdefault(data, chr(ord("A") + len(self._names) % 26))
        return f"PASS, password {name}"


_MISMATCH_TEXT: dict[Kind, tuple[str, str, str]] = {
    # kind: (what differs, why it matters, what to do)
    Kind.VERSION_MISMATCH: (
        "VRRP version",
        "A router discards adverts of the other VRRP version (keepalived logs \"wrong version\"), so routers "
        "of different versions never hear each other and each of them becomes master.",
        "Use one version on every router of this VRID: vrrp_version in global_defs or version in the "
        "vrrp_instance (VRRPv3 is needed for IPv6 and for intervals under a second).",
    ),
    Kind.INTERVAL_MISMATCH: (
        "advertisement interval",
        "",  # depends on the versions involved, see _interval_why
        "Set the same advert_int on every router of this VRID.",
    ),
    Kind.AUTH_MISMATCH: (
        "authentication",
        "VRRPv2 routers discard adverts whose authentication type or password is not their own (keepalived: "
        "\"received an invalid passwd!\", \"received a 0 auth, expecting 1!\"), so each of them becomes master. "
        "The password travels in clear text in every advert; this report names passwords A, B, ... instead "
        "of printing them.",
        "Use the same authentication block (auth_type and auth_pass; only the first 8 characters count) on "
        "every router of this VRID, or none on all of them.",
    ),
    Kind.VIP_LIST_MISMATCH: (
        "VIP list",
        "keepalived 2.2.7 discards adverts whose VIP list is not exactly its own (\"ip address associated "
        "with VRID ... not present in MASTER advert\"), so each router becomes master. This is also what "
        "another cluster using the same VRID on this segment looks like.",
        "Make virtual_ipaddress the same on every router of this VRID (addresses that need not be "
        "advertised belong in virtual_ipaddress_excluded), or give the other cluster its own VRID.",
    ),
    Kind.CHECKSUM_FORM_MISMATCH: (
        "VRRPv3 checksum form",
        "VRRPv3 over IPv4 has two checksum forms: RFC 5798's includes an IPv4 pseudo-header (keepalived "
        "2.2.7 and FRR by default), RFC 9568's covers the VRRP message only (keepalived's v3_checksum_as_v2, "
        "Cisco, Juniper, FRR with no checksum-with-ipv4-pseudoheader). A router that expects one form discards "
        "adverts in the other (\"Invalid VRRPv3 checksum\"), so each of them becomes master. pyvrrpd accepts "
        "both forms, but its peers may not.",
        "Use one form on every router of this VRID: set v3_checksum_as_v2 on all of them or on none "
        "(FRR: checksum-with-ipv4-pseudoheader).",
    ),
}


def _interval_why(versions: set[int]) -> str:
    if 2 in versions:
        return ("VRRPv2 routers discard adverts whose interval is not their own (keepalived: "
                "\"advertisement interval mismatch\"), so each of them becomes master.")
    return ("VRRPv3 routers accept adverts with another interval (a backup follows its master's), so this "
            "alone does not split the pair; but how fast a backup takes over then depends on who is "
            "master, and keepalived logs \"advertisement interval mismatch\" for every advert.")


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    capture: Capture
    findings: list[Finding]
    groups: list[dict]
    vips: list[dict]
    malformed: list[dict]
    config: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        severities = {f.severity for f in self.findings}
        if Severity.SPLIT_BRAIN in severities:
            return EXIT_SPLIT_BRAIN
        if Severity.WARNING in severities:
            return EXIT_FINDINGS
        return EXIT_HEALTHY

    @property
    def verdict(self) -> str:
        return {EXIT_SPLIT_BRAIN: "split brain", EXIT_FINDINGS: "findings", EXIT_HEALTHY: "healthy"}[
            self.exit_status]

    def to_dict(self) -> dict:
        cap = self.capture
        return {
            "format": "pyvrrpd-diagnose/1",
            "verdict": self.verdict,
            "exit_status": self.exit_status,
            "interfaces": list(cap.interfaces),
            "listened_s": round(cap.listened, 2),
            "probed_s": round(cap.duration - cap.listened, 2),
            "config": self.config,
            "routers": self.groups,
            "vips": self.vips,
            "malformed": self.malformed,
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(cap.notes) + self.notes,
        }


def analyse(cap: Capture, expected: Sequence[Expected] = (), local_states: Mapping[str, str] | None = None,
            *, config: str | None = None) -> Report:
    """The whole analysis; ``local_states`` is instance name → state from the local daemon (None: unknown)."""
    local_macs = set(cap.host_macs.values())
    routers: dict[tuple, Advertiser] = {}
    for obs in cap.observations:
        if isinstance(obs, Heard):
            key = (obs.iface, obs.family, obs.advert.vrid, obs.src, obs.mac)
            a = routers.get(key)
            if a is None:
                this_host = obs.mac in local_macs or obs.src in cap.host_addresses
                a = routers[key] = Advertiser(obs.iface, obs.family, obs.advert.vrid, obs.src, obs.mac, this_host)
            a.adverts.append(obs)
    by_group: dict[tuple[str, int, int], list[Advertiser]] = defaultdict(list)
    for a in sorted(routers.values(), key=lambda r: (r.src.version, r.src, r.mac)):
        by_group[(a.iface, a.family, a.vrid)].append(a)
    malformed = [o for o in cap.observations if isinstance(o, Malformed)]
    configured = {e.key: e for e in expected if e.iface in cap.interfaces}

    holders = _holders(cap)
    passwords = _Passwords()
    findings: list[Finding] = []
    groups: list[dict] = []
    for key in sorted(set(by_group) | set(configured)):
        g = _Group(key, by_group.get(key, []), configured.get(key), local_states, cap, malformed, passwords,
                   holders)
        findings.extend(g.findings())
        groups.append(g.summary())
    vips = _vips(cap, by_group, configured, holders, findings)
    findings.extend(_malformed_findings(malformed))
    findings.extend(_foreign_vrids(by_group, configured))
    order = {Severity.SPLIT_BRAIN: 0, Severity.WARNING: 1, Severity.INFO: 2}
    findings.sort(key=lambda f: order[f.severity])  # stable: keeps each group's order
    return Report(cap, findings, groups, vips, _malformed_table(malformed), config=config)


class _Group:
    """One virtual router (interface, family, VRID): its routers, config and findings."""

    def __init__(self, key: tuple[str, int, int], routers: list[Advertiser], expected: Expected | None,
                 local_states: Mapping[str, str] | None, cap: Capture, malformed: list[Malformed],
                 passwords: _Passwords, holders: Mapping[tuple[str, IPAddress], list[str]]) -> None:
        self.iface, self.family, self.vrid = key
        self.where = where(*key)
        self.routers = routers
        self.expected = expected
        self.cap = cap
        self.passwords = passwords
        self.participants = [_facts(a) for a in routers] + ([_config_facts(expected)] if expected else [])
        vips = {v for a in routers for v in a.latest.advert.addresses} | (expected.vips if expected else set())
        # MACs that answered for a VIP of this virtual router (this host's when it holds one)
        self.holders = {mac for v in vips for mac in holders.get((self.iface, v), ())}
        self.current = [a for a in routers if a.is_current_master(cap.end, self.holders)]
        # This host holds a VIP of an instance configured here but sends no advert for it: it acts as master
        # all the same (a keepalived master can fall silent, see _simultaneous_masters; or a daemon died and
        # left its VIPs behind).
        mine = sorted(self.holders & set(cap.host_macs.values()))
        self.silent_here = expected is not None and bool(mine) and not any(a.this_host for a in routers)
        self.masters = [_router_ref(a) for a in _simultaneous_masters(routers, self.holders)]
        others = [_router_ref(a) for a in self.current if not a.this_host]
        if self.silent_here and others:
            me = {"source": "this host", "mac": mine[0], "priority": expected.priority,  # type: ignore[union-attr]
                  "this_host": True, "silent": True}
            self.masters = [me] + (self.masters or others)
        self.local_state = self._local_state(local_states)
        self.broken = sum(1 for m in malformed
                          if (m.iface, m.family, m.vrid) == key and m.reason != "foreign_carp")

    # -- findings -------------------------------------------------------------------------------

    def findings(self) -> list[Finding]:
        mismatches = self._mismatches()
        ttl = self._ttl()
        causes = [f.kind for f in mismatches if self._is_cause(f)]
        if ttl is not None and ttl.details["multicast"]:
            causes.append(Kind.TTL_NOT_255)
        if self.broken:
            causes.append(Kind.MALFORMED)
        out = [self._two_masters(causes)] if len(self.masters) > 1 else []
        out += mismatches
        out += [f for f in (self._equal_priorities(), ttl, self._no_peer()) if f is not None]
        return out

    def _is_cause(self, f: Finding) -> bool:
        if f.kind is Kind.INTERVAL_MISMATCH:
            return 2 in {p.version for p in self.participants}
        return True

    def _two_masters(self, causes: list[Kind]) -> Finding:
        names = ", ".join(
            f"this host (holds the VIPs, sends no adverts; configured priority {m['priority']})" if m.get("silent")
            else f"{m['source']} ({'this host, ' * m['this_host']}priority {m['priority']}, MAC {m['mac']})"
            for m in self.masters)
        base = ("More than one router acts as master for this virtual router at the same time (sends adverts "
                "with a non-zero priority, or holds its VIPs), so each of them answers ARP/ND for the VIPs: "
                "clients' traffic goes to whichever answered them last.")
        if any(m.get("silent") for m in self.masters):
            base += (" This host holds the VIPs without advertising them: its daemon is master but silent "
                     "(keepalived stops sending while it keeps receiving adverts it rejects, when the other "
                     "master's interval is shorter), or its daemon died and left the VIPs behind.")
        if causes:
            words = ", ".join(_CAUSE_WORDS[c] for c in causes)
            why = f"{base} They stay masters because each discards the other's adverts: {words} (see below)."
            do = ("Fix what is named below so the routers agree; then they hear each other and the one with "
                  "the lower priority becomes backup.")
        else:
            why = (f"{base} Their adverts agree on everything a router checks, so they do not reach each other: "
                   "something on or between the routers drops VRRP (IP protocol 112 to 224.0.0.18 or ff02::12) "
                   "- a host firewall (this capture sees packets before the firewall does), a switch or virtual "
                   "network that filters multicast - or one of them was frozen (a paused VM, CPU starvation) "
                   "long enough to miss the other's adverts.")
            do = ("On each router check with `tcpdump -ni IFACE ip proto 112 or ip6 proto 112` that the other's "
                  "adverts arrive; allow IP protocol 112 in the firewalls; where the network cannot carry "
                  "multicast, configure unicast_peer on both.")
        return Finding(Kind.TWO_MASTERS, self.where, f"{len(self.masters)} masters at once: {names}", why, do,
                       {"masters": self.masters, "causes": [c.value for c in causes]})

    def _mismatches(self) -> list[Finding]:
        out = []
        ps = self.participants
        checks: list[tuple[Kind, list[Facts], object]] = [
            (Kind.VERSION_MISMATCH, ps, lambda p: f"v{p.version}"),
            (Kind.INTERVAL_MISMATCH, ps, lambda p: seconds(p.interval_us)),
            (Kind.AUTH_MISMATCH, [p for p in ps if p.version == 2],
             lambda p: self.passwords.auth(p.auth_type, p.auth_data)),
            (Kind.VIP_LIST_MISMATCH, ps, lambda p: ", ".join(map(str, sorted(p.vips))) or "(none)"),
            (Kind.CHECKSUM_FORM_MISMATCH, [p for p in ps if p.checksum_form is not None],
             lambda p: FORM_WORDS[p.checksum_form]),
        ]
        for kind, who, value in checks:
            by_value: dict[str, list[str]] = {}
            for p in who:
                by_value.setdefault(value(p), []).append(p.label)  # type: ignore[operator]
            if len(by_value) < 2:
                continue
            what, why, do = _MISMATCH_TEXT[kind]
            if kind is Kind.INTERVAL_MISMATCH:
                why = _interval_why({p.version for p in who})
            summary = f"{what} differs: " + "; ".join(f"{v} from {', '.join(names)}" for v, names in by_value.items())
            out.append(Finding(kind, self.where, summary, why, do,
                               {"values": [{"value": v, "routers": names} for v, names in by_value.items()]}))
        return out

    def _equal_priorities(self) -> Finding | None:
        # The local daemon's advertised priority may differ from its config (tracking), so the config
        # counts only when this host is not advertising.
        local_heard = any(a.this_host for a in self.routers)
        who = [p for p in self.participants if p.priority and not (p.from_config and local_heard)]
        by_priority: dict[int, list[str]] = defaultdict(list)
        for p in who:
            by_priority[p.priority].append(p.label)
        tied = {prio: names for prio, names in by_priority.items() if len(names) > 1}
        if not tied:
            return None
        summary = "; ".join(f"{' and '.join(names)} both have priority {prio}" for prio, names in tied.items())
        return Finding(
            Kind.EQUAL_PRIORITIES, self.where, summary,
            "With equal priorities the higher IP address wins the election, so which router is master depends "
            "on addresses and start-up timing rather than on your intent; keepalived's authors advise a "
            "distinct priority on every router. Two routers at 255 both claim to own the addresses.",
            "Give every router of this VRID its own priority (for example 150 and 100).",
            {"priorities": {str(prio): names for prio, names in tied.items()}})

    def _ttl(self) -> Finding | None:
        bad = []
        multicast = False
        for a in self.routers:
            ttls = sorted({h.ttl for h in a.adverts if h.ttl != 255})
            if ttls:
                mc = any(h.dst.is_multicast for h in a.adverts if h.ttl != 255)
                multicast = multicast or mc
                bad.append({"router": a.label, "ttl": ttls, "multicast": mc})
        if not bad:
            return None
        summary = "; ".join(f"{b['router']} arrives with TTL/hop limit {', '.join(map(str, b['ttl']))}" for b in bad)
        return Finding(
            Kind.TTL_NOT_255, self.where, summary,
            "VRRP adverts are sent with TTL (IPv6: hop limit) 255 and receivers discard multicast adverts with "
            "anything else (keepalived: \"invalid TTL/HL\"), so a lower value means the advert crossed a router "
            "(the routers are not on one segment) or something rewrote it. keepalived accepts unicast adverts "
            "with any TTL.",
            "Put the routers of one VRID on one layer-2 segment; across routed networks use unicast_peer.",
            {"routers": bad, "multicast": multicast})

    def _no_peer(self) -> Finding | None:
        e = self.expected
        if e is None or any(not a.this_host for a in self.routers):
            return None
        listened = f"{self.cap.duration:.1f} s"
        return Finding(
            Kind.NO_PEER_ADVERTS, self.where,
            f"{e.name}: no advert from any other router in {listened}; local daemon: {self.local_state}",
            "The routers of a VRRP pair must hear each other. If the peer is running, its adverts do not reach "
            "this host: multicast is blocked (a firewall dropping IP protocol 112, a switch or cloud network "
            "that does not carry multicast), so both of them act as master. If nobody is master at all, the "
            "VIPs are not served.",
            "Check on the peer that its daemon runs (and what state it is in); capture there with `tcpdump -ni "
            "IFACE ip proto 112 or ip6 proto 112`; allow IP protocol 112 between the routers, or use "
            "unicast_peer.",
            {"instance": e.name, "local_state": self.local_state})

    # -- summary --------------------------------------------------------------------------------

    def _local_state(self, local_states: Mapping[str, str] | None) -> str | None:
        e = self.expected
        if e is not None and local_states is not None and e.name in local_states:
            return local_states[e.name]
        if any(a.this_host for a in self.current):
            return "MASTER (this host sends adverts)"
        if self.silent_here:
            return "MASTER (this host holds the VIPs, but sends no adverts)"
        if e is None:
            return None  # not ours: no config says this host takes part
        return ("unknown (pyvrrpd has no status interface yet; this host sends no adverts, so it is BACKUP, "
                "FAULT or not running)")

    def summary(self) -> dict:
        master_refs = {id(a) for a in self.current}
        return {
            "interface": self.iface, "family": self.family, "vrid": self.vrid,
            "instance": self.expected.name if self.expected else None,
            "local_state": self.local_state,
            "masters": [a.label for a in self.current],
            "advertisers": [self._router(a, id(a) in master_refs) for a in self.routers],
        }

    def _router(self, a: Advertiser, master: bool) -> dict:
        adv = a.latest.advert
        form = adv.checksum_form.value if adv.checksum_form and adv.version == 3 and a.family == 4 else None
        return {
            "source": str(a.src), "mac": a.mac, "this_host": a.this_host, "master": master,
            "version": adv.version, "priority": adv.priority, "interval_s": adv.interval_us / 1e6,
            "auth": self.passwords.auth(adv.auth_type, adv.auth_data) if adv.version == 2 else None,
            "vips": [str(v) for v in adv.addresses],
            "ttl": sorted({h.ttl for h in a.adverts}),
            "checksum_form": form,
            "adverts": len(a.adverts),
            "priority_zero": sum(1 for h in a.adverts if not h.advert.priority),
            "per_second": a.per_second(),
        }


_CAUSE_WORDS = {
    Kind.VERSION_MISMATCH: "different VRRP versions",
    Kind.INTERVAL_MISMATCH: "different advertisement intervals",
    Kind.AUTH_MISMATCH: "different authentication",
    Kind.VIP_LIST_MISMATCH: "different VIP lists",
    Kind.CHECKSUM_FORM_MISMATCH: "different VRRPv3 checksum forms",
    Kind.TTL_NOT_255: "adverts arriving with a TTL other than 255",
    Kind.MALFORMED: "malformed adverts",
}


def _router_ref(a: Advertiser) -> dict:
    return {"source": str(a.src), "mac": a.mac, "priority": a.latest.advert.priority, "this_host": a.this_host}


def _simultaneous_masters(routers: list[Advertiser], holders: AbstractSet[str]) -> list[Advertiser]:
    """Routers that claimed mastership at the same time as another. A pair counts when their
    non-zero-priority adverts alternate at least MIN_SWITCHES times (a takeover switches once, twice
    with an advert in flight), or when both hold a VIP of this virtual router now and neither stepped
    down with priority 0. The second is for keepalived: a master resets its advert timer on every
    advert it receives, even one it rejects, so two keepalived masters send about one advert per
    interval between them, in no regular order."""
    claiming = [a for a in routers if a.claim_times and a.adverts[-1].advert.priority]
    both: list[Advertiser] = []
    for i, a in enumerate(claiming):
        for b in claiming[i + 1:]:
            if _switches(a.claim_times, b.claim_times) >= MIN_SWITCHES or (a.mac in holders and b.mac in holders):
                both += [r for r in (a, b) if r not in both]
    return both


def _switches(ta: list[float], tb: list[float]) -> int:
    """How often the sender changes in the merged, time-ordered sequence of two routers' adverts."""
    merged = sorted([(t, 0) for t in ta] + [(t, 1) for t in tb])
    return sum(1 for (_, x), (_, y) in zip(merged, merged[1:]) if x != y)


# --------------------------------------------------------------------------- VIPs


def _holders(cap: Capture) -> dict[tuple[str, IPAddress], list[str]]:
    """(interface, probed address) → the MACs holding it: those that answered the probe, and this host's
    own when the address is on one of its interfaces (a host does not answer its own probe)."""
    out: dict[tuple[str, IPAddress], list[str]] = {target: [] for target in cap.probed}
    if cap.probe_start is not None:
        for o in cap.observations:
            macs = out.get((o.iface, o.address)) if isinstance(o, Answer) and o.t >= cap.probe_start else None
            if macs is not None and o.mac not in macs:  # type: ignore[union-attr]
                macs.append(o.mac)  # type: ignore[union-attr]
    for (_, vip), macs in out.items():
        mine = cap.host_macs.get(cap.host_addresses.get(vip, ""))
        if mine and mine not in macs:
            macs.append(mine)
    return out


def _vips(cap: Capture, by_group: Mapping[tuple, list[Advertiser]], configured: Mapping[tuple, Expected],
          holders: Mapping[tuple[str, IPAddress], list[str]], findings: list[Finding]) -> list[dict]:
    out = []
    for iface, vip in cap.probed:
        macs = holders[(iface, vip)]
        held_on = cap.host_addresses.get(vip)
        family = vip.version
        groups = {k: rs for k, rs in by_group.items()
                  if k[0] == iface and k[1] == family and any(vip in r.latest.advert.addresses for r in rs)}
        for k, e in configured.items():
            if k[0] == iface and vip in e.vips:
                groups.setdefault(k, by_group.get(k, []))
        masters = [a for rs in groups.values() for a in rs if a.is_current_master(cap.end, set(macs))]
        whose = {a.mac: a for rs in groups.values() for a in rs}
        virtual = {_virtual_mac(k[2], family) for k in groups}
        place = f"{vip} on {iface}"

        def who(mac: str) -> str:
            a = whose.get(mac)
            parts = [mac]
            if a is not None:
                parts.append(f"({a.src}{', this host' * a.this_host}{', master' * (a in masters)})")
            elif held_on is not None and mac == cap.host_macs.get(held_on):
                parts.append("(this host)")
            elif mac in virtual:
                parts.append("(VRRP virtual MAC)")
            return " ".join(parts)

        out.append({"interface": iface, "address": str(vip), "held_by": macs,
                    "held_by_this_host": held_on is not None,
                    "masters": [a.label for a in masters]})
        if len(macs) > 1:
            findings.append(Finding(
                Kind.VIP_MULTIPLE_MACS, place,
                f"held by {len(macs)} MACs: " + ", ".join(who(m) for m in macs),
                "More than one host claims this address, so neighbours' ARP/ND caches flip between them and "
                "connections break. Either two routers are master at once (a keepalived master can hold the "
                "VIPs without advertising: it stops sending while it keeps receiving adverts it rejects), or an "
                "old master still holds the address (a VRRP daemon killed with kill -9 leaves its VIPs on the "
                "interface).",
                "Find the host behind each MAC (the routers table names those that send adverts). On a host "
                "that should not hold the address, remove it (`ip addr del ADDRESS/PREFIX dev IFACE`) or restart "
                "its VRRP daemon so that it cleans up; if two masters are reported, fix that first.",
                {"macs": macs, "masters": [_router_ref(a) for a in masters]}))
        elif len(macs) == 1 and len(masters) == 1 and macs[0] not in {masters[0].mac} | virtual:
            m = masters[0]
            findings.append(Finding(
                Kind.VIP_WRONG_MAC, place,
                f"answered by {who(macs[0])}, but the master {m.label} sends its adverts from {m.mac}",
                "The host that answers for the address is not the router that advertises it, so traffic for the "
                "VIP goes to a host that is not master: a stale address on a former master, or another device "
                "configured with the same address.",
                "Find the host with that MAC and remove the address there; check that the master holds it.",
                {"mac": macs[0], "master": _router_ref(m)}))
        elif not macs and masters:
            findings.append(Finding(
                Kind.VIP_UNANSWERED, place,
                f"advertised by {', '.join(a.label for a in masters)} but nobody answered ARP/ND for it",
                "The master advertises this address, but no host answered the probe, so clients cannot reach "
                "it: the master did not add it (see its log), or it does not answer for it (arp_ignore, "
                "arp_filter; a no_accept firewall does not block ARP).",
                "On the master check `ip addr show dev IFACE` for the address and its arp_ignore / arp_announce "
                "settings.",
                {"masters": [_router_ref(a) for a in masters]}))
    return out


def _virtual_mac(vrid: int, family: int) -> str:
    return f"00:00:5e:00:0{1 if family == 4 else 2}:{vrid:02x}"


# --------------------------------------------------------------------------- the rest of the segment


def _malformed_table(malformed: list[Malformed]) -> list[dict]:
    counts: Counter[tuple] = Counter()
    detail: dict[tuple, str] = {}
    for m in malformed:
        key = (m.iface, str(m.src) if m.src is not None else None, m.mac, m.reason)
        counts[key] += 1
        detail.setdefault(key, m.detail)
    return [{"interface": k[0], "source": k[1], "mac": k[2], "reason": k[3], "count": n, "detail": detail[k]}
            for k, n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][3], str(kv[0][1]), kv[0][2]))]


def _malformed_findings(malformed: list[Malformed]) -> list[Finding]:
    out = []
    carp = [m for m in malformed if m.reason == "foreign_carp"]
    bad = [m for m in malformed if m.reason != "foreign_carp"]
    if bad:
        table = _malformed_table(bad)
        summary = f"{len(bad)} malformed VRRP frame(s): " + "; ".join(
            f"{r['count']} x {r['reason']} from {r['source'] or r['mac']}" for r in table)
        out.append(Finding(
            Kind.MALFORMED, ", ".join(sorted({m.iface for m in bad})), summary,
            "These IP protocol 112 frames are not valid VRRP adverts; the daemon drops them the same way (and "
            "counts them by reason). A bad checksum from a router points to a checksum-form or implementation "
            "problem; truncated or garbage frames to a broken sender or a device that rewrites frames.",
            "Find the sources listed; look at their frames with `tcpdump -ni IFACE -X ip proto 112 or ip6 "
            "proto 112`.",
            {"frames": table}))
    if carp:
        sources = sorted({str(m.src) for m in carp})
        out.append(Finding(
            Kind.CARP, ", ".join(sorted({m.iface for m in carp})),
            f"CARP adverts from {', '.join(sources)}",
            "CARP (OpenBSD, ucarp) uses IP protocol 112 and 224.0.0.18 like VRRP. VRRP routers ignore it; it "
            "only matters if its vhid is meant to be one of your VRIDs.",
            "Nothing, unless that host should run VRRP.",
            {"sources": sources}))
    return out


def _foreign_vrids(by_group: Mapping[tuple, list[Advertiser]], configured: Mapping[tuple, Expected]) -> list[Finding]:
    out = []
    for iface in sorted({k[0] for k in configured}):
        foreign = sorted(k for k in by_group if k[0] == iface and k not in configured)
        if not foreign:
            continue
        listed = ", ".join(f"IPv{f} VRID {v} (from {', '.join(a.label for a in by_group[(i, f, v)])})"
                           for i, f, v in foreign)
        out.append(Finding(
            Kind.FOREIGN_VRIDS, iface, f"VRIDs not in the config: {listed}",
            "Another cluster shares this segment. That is harmless while the VRIDs differ; one VRID used by two "
            "clusters on one segment makes their routers discard each other's adverts (VIP list mismatch) and "
            "both become master.",
            "Keep VRIDs unique per segment and family.",
            {"vrids": [{"family": f, "vrid": v} for _, f, v in foreign]}))
    return out
