"""From the config model to what the daemon runs: a RouterConfig plus the adapter settings of each instance.

Pure (no kernel access), so the mapping is unit-tested and a config the daemon cannot run is refused at
startup with one clear message (``PlanError``), before anything touches the network.

What is decided here, and why:

* The VRRP source address is ``unicast_src_ip``/``mcast_src_ip`` if configured; otherwise it is only known
  at run time (the interface's primary IPv4 address, VIPs excluded, or its IPv6 link-local address), so
  ``router_config()`` takes it as an argument and the supervisor resolves it (``pick_source()``).
* With ``use_vmac`` the VIPs that would go on the base interface go on the macvlan instead, and adverts
  leave from the macvlan unless ``vmac_xmit_base``.
* ``virtual_ipaddress_excluded`` may hold addresses of the other family (the usual way to float IPv6
  addresses with a VRRPv2 instance). The core only takes same-family addresses, so the others live only in
  ``InstancePlan.addresses``, which the effects add, remove and announce as a whole.
* Strict mode, ``vrrp_min_garp`` and the global defaults are already folded into the model by the config
  builder; this module only carries the values over.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace

from pyvrrpd.config import model
from pyvrrpd.core.actions import State
from pyvrrpd.core.router import RouterConfig
from pyvrrpd.net.netlink import virtual_mac
from pyvrrpd.net.specs import SCOPES, AddressSpec, RouteSpec, RuleSpec, SpecError, parse_route, parse_rule

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Until the interface has an address the router needs some source; it stays in FAULT meanwhile.
UNSPECIFIED = {4: ipaddress.IPv4Address(0), 6: ipaddress.IPv6Address(0)}
VRRP_TTL = 255
# keepalived-only words in virtual_routes / virtual_rules lines that the kernel specs do not take:
# flags, and keywords followed by a value.
_ANNOTATIONS = frozenset({"no_track", "inet", "inet6"})
_ANNOTATIONS_WITH_VALUE = frozenset({"track_group", "protocol"})


class PlanError(ValueError):
    """The configuration is valid keepalived but cannot run in pyvrrpd (yet); the message says why."""


@dataclass(frozen=True, slots=True)
class VmacPlan:
    name: str
    mac: bytes
    parent: str
    xmit_base: bool  # adverts leave from the parent interface (vmac_xmit_base)


@dataclass(frozen=True, slots=True)
class InstancePlan:
    """Everything the supervisor and the effects need for one vrrp_instance."""

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
    ignored: tuple[str, ...]  # configured features this version does not act on (logged once at start)

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


def router_config(inst: model.VrrpInstance, source: IPAddress) -> RouterConfig:
    """Map one built vrrp_instance to the core's RouterConfig. Raises PlanError if it cannot run."""
    if inst.auth_type is model.AuthType.AH:
        raise PlanError(f"vrrp_instance {inst.name}: AH authentication is not supported")
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
        raise PlanError(str(exc)) from None


def plan_instances(config: model.Config) -> list[InstancePlan]:
    """Plans for every vrrp_instance; PlanError naming every instance that cannot run."""
    plans, problems = [], []
    taken_vmacs = {i.vmac_name for i in config.instances if i.vmac_name}
    for inst in config.instances:
        try:
            plan = plan_instance(inst, config.global_defs, taken_vmacs)
        except PlanError as exc:
            problems.append(str(exc))
            continue
        if plan.vmac is not None:
            taken_vmacs.add(plan.vmac.name)
        plans.append(plan)
    if problems:
        raise PlanError("; ".join(problems))
    return plans


def plan_instance(inst: model.VrrpInstance, gd: model.GlobalDefs,
                  taken_vmacs: AbstractSet[str] = frozenset()) -> InstancePlan:
    """The plan for one instance; `taken_vmacs` are VMAC names other instances use."""
    if inst.interface is None:
        raise PlanError(f"vrrp_instance {inst.name}: an 'interface' is required")
    source = inst.src_ip if inst.src_ip is not None else UNSPECIFIED[inst.family]
    router = router_config(inst, source)
    vmac = _vmac(inst, taken_vmacs) if inst.use_vmac else None
    vip_dev = vmac.name if vmac is not None else inst.interface
    addresses = tuple(_address(v, inst, vip_dev) for v in inst.vips + inst.excluded_vips)
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
        routes=tuple(_route(r, inst) for r in inst.virtual_routes),
        rules=tuple(_rule(r, inst) for r in inst.virtual_rules),
        vmac=vmac,
        garp_interval_us=gd.vrrp_garp_interval_us,
        gna_interval_us=gd.vrrp_gna_interval_us,
        rcvbuf=inst.kernel_rx_buf_size,
        ignored=_ignored(inst),
    )


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
                        "give use_vmac a name")
    return VmacPlan(name=name, mac=mac, parent=inst.interface, xmit_base=inst.vmac_xmit_base)


def _address(v: model.VirtualAddress, inst: model.VrrpInstance, vip_dev: str) -> AddressSpec:
    dev = v.dev or inst.interface
    if dev == inst.interface:
        dev = vip_dev  # with use_vmac, VIPs of the base interface live on the macvlan
    scope = SCOPES["global"]
    if v.scope is not None:
        scope = SCOPES[v.scope] if v.scope in SCOPES else int(v.scope)
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
        raise PlanError(f"vrrp_instance {inst.name}: virtual_routes '{' '.join(route.words)}' "
                        f"({route.span}): {exc}") from None


def _rule(rule: model.Rule, inst: model.VrrpInstance) -> RuleSpec:
    try:
        spec = parse_rule(_strip(rule.words))
    except SpecError as exc:
        raise PlanError(f"vrrp_instance {inst.name}: virtual_rules '{' '.join(rule.words)}' "
                        f"({rule.span}): {exc}") from None
    # The builder assigns keepalived's automatic preference and knows the family of "inet6" rules.
    return replace(spec, version=rule.family,
                   priority=spec.priority if spec.priority is not None else rule.preference)


def _ignored(inst: model.VrrpInstance) -> tuple[str, ...]:
    """Configured features that this version does not act on, for one warning at startup."""
    out = []
    for field, keyword in (("track_interfaces", "track_interface"), ("track_scripts", "track_script"),
                           ("track_files", "track_file"), ("track_processes", "track_process"),
                           ("track_bfds", "track_bfd")):
        if getattr(inst, field):
            out.append(keyword)
    for field in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted", "notify",
                  "notify_master_rx_lower_pri"):
        if getattr(inst, field) is not None:
            out.append(field)
    if inst.sync_group:
        out.append(f"vrrp_sync_group {inst.sync_group}")
    if inst.track_src_ip:
        out.append("track_src_ip")
    if inst.unicast_fault_no_peer and not inst.unicast_peers:
        out.append("unicast_fault_no_peer")
    for v in inst.vips + inst.excluded_vips:
        extras = [name for name in ("home", "mngtmpaddr", "noprefixroute", "autojoin") if getattr(v, name)]
        if v.preferred_lft is not None:
            extras.append("preferred_lft")
        if extras:
            out.append(f"{' '.join(extras)} on {v.address}")
    return tuple(out)
