"""From the config model to what the daemon runs: a RouterConfig plus the adapter settings of each instance.

Pure: no kernel access, no anyio (``tests/test_layering.py`` checks it imports nothing that does), so the
mapping is unit-tested, and ``pyvrrpd --check-config`` runs the same planning as the daemon: what the daemon
would refuse to start with (``plan_instances``' diagnostics, each with the span of the instance, route or
rule concerned) the check reports as errors, and the daemon refuses it before anything touches the network.

What is decided here, and why:

* The VRRP source address is ``unicast_src_ip``/``mcast_src_ip`` if configured; otherwise it is only known
  at run time (the interface's primary IPv4 address, VIPs excluded, or its IPv6 link-local address), so
  ``router_config()`` takes it as an argument and the VRRP subsystem resolves it (``check_link()``).
* With ``use_vmac`` the VIPs that would go on the base interface go on the macvlan instead, and adverts
  leave from the macvlan unless ``vmac_xmit_base``.
* ``virtual_ipaddress_excluded`` may hold addresses of the other family (the usual way to float IPv6
  addresses with a VRRPv2 instance). The core only takes same-family addresses, so the others live only in
  ``InstancePlan.addresses``, which the effects add, remove and announce as a whole.
* Strict mode, ``vrrp_min_garp`` and the global defaults are already folded into the model by the config
  builder; this module only carries the values over. What this version does not act on yet is warned about
  by the config check (the keyword table), not here.
* Members of a ``vrrp_sync_group`` run with ``RouterConfig.sync_group`` (they become master only with their
  group) and keepalived's start-up rule: ``state MASTER`` counts only if every member is an address owner
  configured MASTER; otherwise they all start as BACKUP (``core.tracking.sync_initial_states``).
* Whether an instance can run on its interface right now (``check_link()``) is a pure function of what the
  link monitor saw; the VRRP subsystem turns its answer into a fault reason with source ``link:IFNAME``.
* A reload (``diff_plans()``) compares plans, not model objects: a plan holds exactly what the VRRP
  subsystem runs, while the model also holds spans (a comment added above an instance moves them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace

from pyvrrpd.config import model
from pyvrrpd.config.diagnostics import Diagnostic, Span, error
from pyvrrpd.core.actions import State
from pyvrrpd.core.frames import virtual_mac
from pyvrrpd.core.router import RouterConfig
from pyvrrpd.core.tracking import sync_initial_states
from pyvrrpd.net.specs import SCOPES, AddressSpec, RouteSpec, RuleSpec, SpecError, parse_route, parse_rule

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Until the interface has an address the router needs some source; it stays in FAULT meanwhile.
UNSPECIFIED = {4: ipaddress.IPv4Address(0), 6: ipaddress.IPv6Address(0)}
VRRP_TTL = 255
# keepalived-only words in virtual_routes / virtual_rules lines that the kernel specs do not take:
# flags, and keywords followed by a value.
_ANNOTATIONS = frozenset({"no_track", "inet", "inet6"})
_ANNOTATIONS_WITH_VALUE = frozenset({"track_group", "protocol"})


REFUSED = "pyvrrpd refuses to start with this configuration"


class PlanError(ValueError):
    """The configuration is valid keepalived but cannot run in pyvrrpd (yet); the message says why."""

    def __init__(self, message: str, span: Span | None = None) -> None:
        super().__init__(message)
        self.span = span

    def diagnostic(self) -> Diagnostic:
        return error(self.span, str(self), REFUSED)


@dataclass(frozen=True, slots=True)
class VmacPlan:
    name: str
    mac: bytes
    parent: str
    xmit_base: bool  # adverts leave from the parent interface (vmac_xmit_base)


@dataclass(frozen=True, slots=True)
class InstancePlan:
    """Everything the VRRP subsystem and the effects need for one vrrp_instance."""

    name: str
    vrid: int
    family: int  # 4 or 6
    interface: str  # the base interface: adverts are received there
    router: RouterConfig  # with the configured source, or UNSPECIFIED until resolved
    src_ip: IPAddress | None  # configured unicast_src_ip / mcast_src_ip
    group: IPAddress  # multicast destination (mcast_dst_ip or vrrp_mcast_group4/6)
    peers: tuple[IPAddress, ...]  # unicast peers; empty means multicast
    peer_ttl: dict[IPAddress, tuple[int, int]]  # per-peer (min_ttl, max_ttl), only where restricted
    ttl: int  # TTL / hop limit of our adverts (unicast_ttl)
    pseudo_header: bool  # VRRPv3 over IPv4: checksum with the pseudo-header (keepalived 2.2.7's default)
    old_unicast_checksum: bool  # unicast v3 checksum computed with the multicast group (keepalived < 1.3.6)
    addresses: tuple[AddressSpec, ...]  # VIPs then excluded VIPs, each with its interface
    routes: tuple[RouteSpec, ...]
    rules: tuple[RuleSpec, ...]
    vmac: VmacPlan | None
    garp_interval_us: int  # pause between gratuitous ARPs (vrrp_garp_interval)
    gna_interval_us: int  # pause between unsolicited NAs (vrrp_gna_interval)
    rcvbuf: int | None  # kernel_rx_buf_size

    @property
    def xmit_interface(self) -> str:
        """Where adverts leave: the macvlan with use_vmac (unless vmac_xmit_base), else the base interface."""
        return self.vmac.name if self.vmac is not None and not self.vmac.xmit_base else self.interface

    @property
    def vip_ips(self) -> frozenset[IPAddress]:
        return frozenset(spec.address.ip for spec in self.addresses)

    def with_source(self, source: IPAddress) -> RouterConfig:
        return replace(self.router, source=source)


def pick_source(plan: InstancePlan, ipv4: ipaddress.IPv4Address | None,
                ipv6_link_local: ipaddress.IPv6Address | None) -> IPAddress | None:
    """The advert source: configured, else the interface's primary IPv4 address or IPv6 link-local."""
    if plan.src_ip is not None:
        return plan.src_ip
    return ipv4 if plan.family == 4 else ipv6_link_local


@dataclass(frozen=True, slots=True)
class LinkCheck:
    reason: str | None  # why the instance cannot run on its interface now; None: it can
    source: IPAddress | None  # the advert source to use; None while there is none


def check_link(plan: InstancePlan, link, socket_problem: str | None = None) -> LinkCheck:
    """Whether the instance can run on its base interface now, and with which advert source.

    ``link`` is what the link monitor knows about the base interface (``net.netlink.Interface``; any object
    with ``up``, ``running``, ``ipv4`` and ``ipv6_link_local``), None when it does not exist.
    ``socket_problem`` says why its VRRP socket could not be opened, if it could not. (A VMAC the instance
    needs is checked after this, once created.)
    """
    name = plan.interface
    if link is None:
        return LinkCheck(f"interface {name} does not exist", None)
    if not link.up:
        return LinkCheck(f"interface {name} is down", None)
    if not link.running:
        return LinkCheck(f"interface {name} has no carrier", None)
    source = pick_source(plan, link.ipv4, link.ipv6_link_local)
    if source is None:
        kind = "IPv4 address" if plan.family == 4 else "IPv6 link-local address"
        return LinkCheck(f"interface {name} has no {kind} to send adverts from", None)
    return LinkCheck(socket_problem, source)


# -- reload ---------------------------------------------------------------------------------------

def instance_key(plan: InstancePlan) -> tuple:
    """Who an instance is across a reload, as keepalived matches them: VRID, address family, interface,
    unicast or multicast, and the configured source address. Not the name: a renamed instance keeps
    running."""
    return plan.vrid, plan.family, plan.interface, bool(plan.peers), plan.src_ip


@dataclass(frozen=True, slots=True)
class PlanDiff:
    """What a reload does to each instance. Pairs are (running plan, new plan), in the new config's order;
    the plans are the objects given to ``diff_plans``."""

    unchanged: tuple[tuple[InstancePlan, InstancePlan], ...]  # equal plans: not touched at all
    changed: tuple[tuple[InstancePlan, InstancePlan], ...]  # kept running (state, timers) with the new plan
    replaced: tuple[tuple[InstancePlan, InstancePlan, str], ...]  # (running, new, why): stopped, then started
    removed: tuple[InstancePlan, ...]  # stopped as on SIGTERM
    added: tuple[InstancePlan, ...]  # started as at start-up

    @property
    def empty(self) -> bool:
        """Nothing to do: every instance is unchanged."""
        return not (self.changed or self.replaced or self.removed or self.added)


def replace_reason(running: InstancePlan, new: InstancePlan) -> str | None:
    """Why a matched instance cannot take its new plan while running (None: it can)."""
    if running.router.version != new.router.version:
        return f"VRRP version {running.router.version} -> {new.router.version}"
    if running.vmac != new.vmac:
        return "use_vmac changed"
    return None


def diff_plans(running: Sequence[InstancePlan], new: Sequence[InstancePlan]) -> PlanDiff:
    """Match the new plans to the running ones by ``instance_key`` and say what happens to each.

    Within one key (several unicast instances may share a VRID on an interface) a running instance of
    the same name is matched first, then the others in config order. A matched pair is unchanged when
    the plans are equal, changed when the instance can take the new plan while it runs, and replaced
    (stopped, then started) when it cannot: another VRRP version or another VMAC.
    """
    waiting: dict[tuple, list[InstancePlan]] = {}
    for plan in running:
        waiting.setdefault(instance_key(plan), []).append(plan)
    matches: list[tuple[InstancePlan | None, InstancePlan]] = []
    for plan in new:
        candidates = waiting.get(instance_key(plan), [])
        same_name = next((p for p in candidates if p.name == plan.name), None)
        matches.append((same_name, plan))
        if same_name is not None:
            candidates.remove(same_name)
    for i, (old, plan) in enumerate(matches):
        candidates = waiting.get(instance_key(plan), [])
        if old is None and candidates:
            matches[i] = (candidates.pop(0), plan)
    unchanged, changed, replaced, added = [], [], [], []
    for old, plan in matches:
        if old is None:
            added.append(plan)
        elif old == plan:
            unchanged.append((old, plan))
        elif (why := replace_reason(old, plan)) is not None:
            replaced.append((old, plan, why))
        else:
            changed.append((old, plan))
    removed = tuple(p for p in running if any(p is q for q in waiting[instance_key(p)]))  # left unmatched
    return PlanDiff(tuple(unchanged), tuple(changed), tuple(replaced), removed, tuple(added))


def router_config(inst: model.VrrpInstance, source: IPAddress) -> RouterConfig:
    """Map one built vrrp_instance to the core's RouterConfig. Raises PlanError if it cannot run."""
    if inst.auth_type is model.AuthType.AH:  # a config error already; kept as a guard
        raise PlanError(f"vrrp_instance {inst.name}: AH authentication is not supported", inst.span)
    same_family = [v.address.ip for v in inst.excluded_vips if v.address.version == inst.family]
    auth = inst.auth_type is model.AuthType.PASS and inst.version == 2
    try:
        return RouterConfig(
            name=inst.name,
            vrid=inst.vrid,
            source=source,
            addresses=tuple(v.address.ip for v in inst.vips),
            version=inst.version,
            priority=inst.priority,
            advert_int_us=inst.advert_int_us,
            initial_state=State.MASTER if inst.state is model.State.MASTER else State.BACKUP,
            excluded_addresses=tuple(same_family),
            nopreempt=inst.nopreempt,
            preempt_delay_us=inst.preempt_delay_us,
            accept=inst.accept_mode,
            down_timer_adverts=inst.down_timer_adverts,
            auth_type=1 if auth else 0,
            auth_pass=(inst.auth_pass or "").encode()[:8] if auth else b"",
            unicast_peers=tuple(p.address for p in inst.unicast_peers),
            # keepalived checks the source against the peers whenever a peer has a TTL range too.
            check_unicast_src=inst.check_unicast_src or any(_ttl_range(p) for p in inst.unicast_peers),
            skip_check_adv_addr=inst.skip_check_adv_addr,
            lower_prio_no_advert=inst.lower_prio_no_advert,
            higher_prio_send_advert=inst.higher_prio_send_advert,
            garp_master_delay_us=inst.garp_master_delay_us,
            garp_master_repeat=inst.garp_master_repeat,
            garp_master_refresh_us=inst.garp_master_refresh_us,
            garp_master_refresh_repeat=inst.garp_master_refresh_repeat,
            garp_lower_prio_delay_us=inst.garp_lower_prio_delay_us,
            garp_lower_prio_repeat=inst.garp_lower_prio_repeat,
        )
    except ValueError as exc:
        raise PlanError(str(exc), inst.span) from None


def plan_instances(config: model.Config) -> tuple[list[InstancePlan], list[Diagnostic]]:
    """Plans for the vrrp_instances that can run, and an error diagnostic for each one that cannot.

    The daemon starts only when the list of diagnostics is empty; ``--check-config`` reports them.
    """
    plans, problems = [], []
    taken_vmacs = {i.vmac_name for i in config.instances if i.vmac_name}
    for inst in config.instances:
        plan, errors = _plan(inst, config.global_defs, taken_vmacs)
        problems.extend(exc.diagnostic() for exc in errors)
        if plan is None:
            continue
        if plan.vmac is not None:
            taken_vmacs.add(plan.vmac.name)
        plans.append(plan)
    return _in_sync_groups(plans, config.sync_groups), problems


def _in_sync_groups(plans: list[InstancePlan], groups) -> list[InstancePlan]:
    """Sync-group members wait for their group before becoming master, and start by its rule."""
    by_name = {p.name: p for p in plans}
    for group in groups:
        members = [by_name[n] for n in group.members if n in by_name]
        start = sync_initial_states({p.name: (p.router.initial_state.value, p.router.priority) for p in members})
        for p in members:
            by_name[p.name] = replace(p, router=replace(p.router, sync_group=True, initial_state=State(start[p.name])))
    return [by_name[p.name] for p in plans]


def plan_instance(inst: model.VrrpInstance, gd: model.GlobalDefs,
                  taken_vmacs: AbstractSet[str] = frozenset()) -> InstancePlan:
    """The plan for one instance; `taken_vmacs` are VMAC names other instances use. PlanError (the first
    problem) if it cannot run."""
    plan, errors = _plan(inst, gd, taken_vmacs)
    if errors:
        raise errors[0]
    return plan


def _attempt(errors: list[PlanError], make, *args):
    try:
        return make(*args)
    except PlanError as exc:
        errors.append(exc)
        return None


def _plan(inst: model.VrrpInstance, gd: model.GlobalDefs,
          taken_vmacs: AbstractSet[str]) -> tuple[InstancePlan | None, list[PlanError]]:
    """The plan, or None and every problem found (each route or rule line is checked)."""
    if inst.interface is None:
        return None, [PlanError(f"vrrp_instance {inst.name}: an 'interface' is required", inst.span)]
    errors: list[PlanError] = []
    source = inst.src_ip if inst.src_ip is not None else UNSPECIFIED[inst.family]
    router = _attempt(errors, router_config, inst, source)
    vmac = _attempt(errors, _vmac, inst, taken_vmacs) if inst.use_vmac else None
    vip_dev = vmac.name if vmac is not None else inst.interface
    addresses = tuple(_attempt(errors, _address, v, inst, vip_dev) for v in inst.vips + inst.excluded_vips)
    routes = tuple(_attempt(errors, _route, r, inst) for r in inst.virtual_routes)
    rules = tuple(_attempt(errors, _rule, r, inst) for r in inst.virtual_rules)
    if errors:
        return None, errors
    group = inst.mcast_dst_ip or (gd.vrrp_mcast_group4 if inst.family == 4 else gd.vrrp_mcast_group6)
    return InstancePlan(
        name=inst.name,
        vrid=inst.vrid,
        family=inst.family,
        interface=inst.interface,
        router=router,
        src_ip=inst.src_ip,
        group=group,
        peers=tuple(p.address for p in inst.unicast_peers),
        peer_ttl={p.address: (p.min_ttl, p.max_ttl) for p in inst.unicast_peers if _ttl_range(p)},
        ttl=inst.unicast_ttl if inst.unicast_peers and inst.unicast_ttl else VRRP_TTL,
        pseudo_header=not (inst.v3_checksum_as_v2 or gd.v3_checksum_as_v2),
        old_unicast_checksum=bool(inst.unicast_peers) and inst.old_unicast_checksum,
        addresses=addresses,
        routes=routes,
        rules=rules,
        vmac=vmac,
        garp_interval_us=gd.vrrp_garp_interval_us,
        gna_interval_us=gd.vrrp_gna_interval_us,
        rcvbuf=inst.kernel_rx_buf_size,
    ), []


def _ttl_range(peer: model.UnicastPeer) -> bool:
    return peer.min_ttl != 0 or peer.max_ttl != 255


def _vmac(inst: model.VrrpInstance, taken: AbstractSet[str]) -> VmacPlan:
    mac = bytes.fromhex(inst.vmac_mac.replace(":", "")) if inst.vmac_mac else virtual_mac(inst.vrid, inst.family)
    name = inst.vmac_name
    if name is None:
        name = f"vrrp.{inst.vrid}"
        if inst.family == 6 and name in taken:  # keepalived's fallback when the IPv4 name is in use
            name = f"vrrp6.{inst.vrid}"
    if name in taken and name != inst.vmac_name:
        raise PlanError(f"vrrp_instance {inst.name}: VMAC name {name} is used by another instance; "
                        "give use_vmac a name", inst.span)
    return VmacPlan(name=name, mac=mac, parent=inst.interface, xmit_base=inst.vmac_xmit_base)


def _address(v: model.VirtualAddress, inst: model.VrrpInstance, vip_dev: str) -> AddressSpec:
    dev = v.dev or inst.interface
    if dev == inst.interface:
        dev = vip_dev  # with use_vmac, VIPs of the base interface live on the macvlan
    scope = SCOPES["global"]
    if v.scope is not None:
        try:
            scope = SCOPES[v.scope] if v.scope in SCOPES else int(v.scope)
        except ValueError:  # the config builder checks it; a guard
            raise PlanError(f"vrrp_instance {inst.name}: scope {v.scope!r} of {v.address} is not "
                            "global, site, link, host, nowhere or 0-255", v.span) from None
    return AddressSpec(address=v.address, dev=dev, broadcast=v.broadcast, scope=scope, label=v.label,
                       peer=v.peer.ip if v.peer is not None else None)


def _strip(words: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in _ANNOTATIONS_WITH_VALUE:
            skip = True
        elif word not in _ANNOTATIONS:
            out.append(word)
    return out


def _route(route: model.Route, inst: model.VrrpInstance) -> RouteSpec:
    try:
        return parse_route(_strip(route.words))
    except SpecError as exc:
        raise PlanError(f"vrrp_instance {inst.name}: virtual_routes '{' '.join(route.words)}': {exc}",
                        route.span) from None


def _rule(rule: model.Rule, inst: model.VrrpInstance) -> RuleSpec:
    try:
        spec = parse_rule(_strip(rule.words))
    except SpecError as exc:
        raise PlanError(f"vrrp_instance {inst.name}: virtual_rules '{' '.join(rule.words)}': {exc}",
                        rule.span) from None
    # The builder assigns keepalived's automatic preference and knows the family of "inet6" rules.
    return replace(spec, version=rule.family,
                   priority=spec.priority if spec.priority is not None else rule.preference)
