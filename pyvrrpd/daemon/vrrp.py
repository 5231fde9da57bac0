"""The VRRP subsystem: every vrrp_instance of the config, with its sockets, VMACs and firewall rules.

Task tree (inside the root's task group; asyncio backend because pyroute2 is asyncio-only):

    link monitor   interface added/up/down/deleted/renamed and address changes → re-check the
                   interfaces concerned: (re)open sockets, (re)create VMACs, set or clear the
                   instance's fault reason from source ``link:IFNAME``
    port readers   one per (interface, family): decode + demultiplex into the instances' inboxes
    instances      daemon.instance.run_instance per vrrp_instance, each in its own task group that
                   also holds its GARP bursts; on cancel each master sends priority 0 and removes
                   its VIPs (shielded, time-boxed, in run_instance)

After the instances have stopped, VMACs are deleted, the parents' sysctls restored and the firewall
tables removed (shielded, time-boxed). An instance whose interface is missing, down, without a usable
source address, or whose VMAC cannot be created runs in FAULT and recovers when the link monitor sees the
problem go away. Whether the interface is usable is decided by the pure ``plan.check_link``; this module
only carries out what follows (sockets, VMACs, the router's new source).

State changes go to ``sync.Reporter`` (through each instance's effects): notifications through the
``NotifySink`` the root hands in, and the sync groups' rules; every fault reason sent to an instance goes
there too.

The routers, inboxes, ports and effects are built in ``__init__`` (no kernel access), so fault reasons and
priority deltas that trackers send through the ``TrackSink`` methods before ``run`` decide each instance's
initial state, and ``snapshot()`` answers from the start.

A reload (``reconfigure``) applies the pure ``plan.diff_plans`` of the running and the new plans:
unchanged instances are not touched at all; removed ones stop as on SIGTERM (priority 0, VIPs released)
and leave their port; changed ones get their new plan through their inbox (``instance.Reload``: same
state, same timers, the kernel differences of a master applied by the effects), and their port
membership if it changed; new ones start as at start-up. An instance that cannot take its new plan while
running (another VRRP version or VMAC) is stopped and started again.
"""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import dataclass, field, fields

import anyio

from pyvrrpd.config import model
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.daemon.effects import FrameSenders, Holders, InstanceEffects
from pyvrrpd.daemon.instance import (
    SHUTDOWN_SECONDS,
    Inbox,
    InboxItem,
    Reconfigure,
    Reload,
    SetFault,
    SetPriorityDelta,
    feed,
    run_instance,
)
from pyvrrpd.daemon.plan import InstancePlan, IPAddress, PlanDiff, check_link, diff_plans, plan_instances
from pyvrrpd.daemon.port import Member, Port
from pyvrrpd.daemon.subsystem import NotifySink, SubsystemError
from pyvrrpd.daemon.sync import Reporter, sync_groups
from pyvrrpd.net.errors import NetError
from pyvrrpd.net.firewall import Firewall
from pyvrrpd.net.link import link_info
from pyvrrpd.net.netlink import AddressEvent, Interface, LinkEvent, LinkMonitor, Netlink, write_sysctl
from pyvrrpd.net.specs import SCOPES, AddressSpec
from pyvrrpd.net.vrrp_socket import VrrpSocket, open_vrrp_socket

INBOX_SIZE = 64  # adverts waiting for one instance; more are dropped and counted
SEND_ONLY_RCVBUF = 4096  # VMAC transmit sockets never read
MONITOR_RETRY_SECONDS = 1.0
CLEANUP_SECONDS = 5.0  # time box for deleting VMACs and firewall tables on exit
STALL_SECONDS = 1.0  # an instance this far behind its own deadline is unhealthy
RELOAD_SECONDS = SHUTDOWN_SECONDS + 1.0  # time box for one step of a reload (stopping, changing instances)


@dataclass(eq=False)
class Instance:
    """One running vrrp_instance and what the VRRP subsystem knows about it."""

    plan: InstancePlan
    router: VirtualRouter
    effects: InstanceEffects
    port: Port
    inbox: Inbox
    member: Member  # how its port's reader knows it
    link_problem: str | None = None  # the reason given for source "link:IFNAME"; None when it can run
    started: bool = False
    vmac_tx: VrrpSocket | None = None  # adverts from the VMAC (use_vmac without vmac_xmit_base)
    done: anyio.Event = field(default_factory=anyio.Event)  # its task has ended
    scope: anyio.CancelScope | None = None  # its task group's, once it runs

    @property
    def link_source(self) -> str:
        return f"link:{self.plan.interface}"

    def tx(self) -> VrrpSocket | None:
        vmac = self.plan.vmac
        return self.vmac_tx if vmac is not None and not vmac.xmit_base else self.port.sock


class Vrrp:
    """The VRRP subsystem (``daemon.subsystem.Subsystem``) and the ``TrackSink`` the trackers feed."""

    name = "vrrp"

    def __init__(self, config: model.Config, log, *, notify: NotifySink | None = None,
                 release_on_stop: bool = True) -> None:
        self.release_on_stop = release_on_stop  # False: -V/--dont-release-vrrp (VIPs and VMACs stay on stop)
        plans, problems = plan_instances(config)
        if problems:  # the root starts only configs that plan cleanly (daemon.verdict)
            raise SubsystemError("; ".join(d.message for d in problems))
        self.config = config
        self.plans = plans
        self.log = log.bind(subsystem=self.name)
        self.instances: list[Instance] = []
        self.ports: dict[tuple[str, int], Port] = {}
        self.frames = FrameSenders()
        self.firewall: Firewall | None = None  # only when some instance does not accept (no_accept)
        self.holders = Holders()  # which master holds which VIP (one VIP may be listed by two instances)
        self._vips: frozenset[IPAddress] = frozenset()
        self._by_name: dict[str, Instance] = {}
        self._by_interface: dict[str, list[Instance]] = {}  # base interface → its instances
        self._watched: dict[str, str] = {}  # interface or VMAC name → base interface to re-check
        self._vmacs: list[str] = []  # VMACs created or adopted by us, deleted on exit
        self._parent_sysctls: dict[str, dict[str, str]] = {}  # parent → sysctls before the first VMAC
        self._refresh_lock = anyio.Lock()  # one re-check or reload at a time (with the link monitor)
        self._netlink: Netlink | None = None
        self._tg = None  # the task group of run(): instances and readers started on a reload go there
        self._readers: dict[tuple[str, int], anyio.CancelScope] = {}
        self.reports = Reporter([p.name for p in plans], sync_groups(config, plans), notify, self._send_to,
                                self._router_of, self.log)
        self.instances = [self._build(plan) for plan in plans]
        self._index()

    def _build(self, plan: InstancePlan) -> Instance:
        """A new instance, registered with its port (made if needed); nothing touches the kernel."""
        key = (plan.interface, plan.family)
        port = self.ports.get(key)
        if port is None:
            port = self.ports[key] = Port(plan.interface, plan.family, log=self.log,
                                          log_unknown_vrids=self.config.global_defs.log_unknown_vrids)
        effects = InstanceEffects(plan, netlink=self._netlink, tx=lambda: None, frames=self.frames,
                                  log=self._instance_log(plan), firewall=self.firewall, holders=self.holders)
        inbox = Inbox(INBOX_SIZE)
        inst = Instance(plan, VirtualRouter(plan.router), effects, port, inbox, _member(plan, inbox))
        effects.tx = inst.tx
        effects.keep_on_stop = not self.release_on_stop
        effects.listener = self.reports.listener(lambda: effects.plan.name)
        self._join(inst)
        return inst

    def _instance_log(self, plan: InstancePlan):
        return self.log.bind(instance=plan.name, vrid=plan.vrid, interface=plan.interface, family=plan.family)

    def _join(self, inst: Instance) -> None:
        plan = inst.plan
        try:
            inst.port.add(inst.member, None if plan.peers else plan.group, plan.rcvbuf)
        except NetError as exc:  # a new multicast group on an open socket
            inst.effects.log.error(f"({plan.name}) {exc}; adverts to {plan.group} are not received")

    def _index(self) -> None:
        """The look-ups, from ``self.instances``."""
        self._vips = frozenset().union(*(inst.plan.vip_ips for inst in self.instances))
        self._by_name = {inst.plan.name: inst for inst in self.instances}
        self._by_interface = {}
        self._watched = {}
        for inst in self.instances:
            plan = inst.plan
            self._by_interface.setdefault(plan.interface, []).append(inst)
            self._watched[plan.interface] = plan.interface
            if plan.vmac is not None:
                self._watched[plan.vmac.name] = plan.interface

    # -- the subsystem life cycle ---------------------------------------------------------------

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        try:
            self._netlink = Netlink()
        except Exception as exc:  # pyroute2 raises assorted errors when netlink is unavailable
            raise SubsystemError(f"cannot open a netlink socket: {exc}") from None
        for inst in self.instances:
            inst.effects.netlink = self._netlink
        async with self._netlink:
            try:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    await self._start(tg)
                    task_status.started()
            finally:
                self._tg = None
                with anyio.move_on_after(CLEANUP_SECONDS, shield=True):
                    await self._cleanup()

    async def reconfigure(self, config: model.Config) -> str | None:
        """Apply a new config without touching what did not change (see the module's docstring)."""
        plans, problems = plan_instances(config)
        if problems:  # the root reloads only configs that plan cleanly (daemon.verdict); a guard
            return "; ".join(d.message for d in problems)
        diff = diff_plans([inst.plan for inst in self.instances], plans)
        if not diff.empty and self._tg is None:
            return "the VRRP subsystem is not running"
        self.config, self.plans = config, plans
        for port in self.ports.values():
            port.log_unknown_vrids = config.global_defs.log_unknown_vrids
        self.reports.deleting(p.name for p in diff.removed)
        if not diff.empty:
            async with self._refresh_lock:  # the link monitor waits meanwhile
                await self._apply(diff)
        self.reports.reconfigure([p.name for p in plans], sync_groups(config, plans),
                                 {old.name: new.name for old, new in diff.changed if old.name != new.name})
        return None

    def health(self) -> str | None:
        """None while every running instance keeps its timer; else the first one that has fallen behind
        (a stuck event loop or driver: no WATCHDOG=1 for systemd, 503 on /healthz)."""
        now = anyio.current_time()
        for inst in self.instances:
            deadline = inst.router.get_timer() if inst.started else None
            if deadline is not None and now - deadline > STALL_SECONDS:
                return f"({inst.plan.name}) {now - deadline:.1f} s behind its timer"
        return None

    def snapshot(self) -> dict:
        return {"instances": [_instance_snapshot(inst) for inst in self.instances],
                "sync_groups": self.reports.snapshot()}

    async def _start(self, tg) -> None:
        await self._ensure_firewall()
        await tg.start(self._monitor, name="link monitor")  # before the first look, so no change is missed
        for base in self._by_interface:
            await self._refresh(base)
        delay = self.config.global_defs.vrrp_startup_delay_us
        if delay:
            self.log.info(f"Delaying startup for {delay / 1e6:g} seconds")
            await anyio.sleep(delay / 1e6)
        for port in self.ports.values():
            self._start_reader(port)
        for inst in self.instances:
            await tg.start(self._run_instance, inst, name=f"instance {inst.plan.name}")
        if not self.instances:
            self.log.warning("no vrrp_instance in the configuration; idle until stopped")

    async def _ensure_firewall(self) -> None:
        """Open the firewall once some instance does not accept (no_accept); the effects use it from then on."""
        if self.firewall is not None or all(p.router.accepts for p in self.plans):
            return
        firewall = Firewall()
        try:
            await firewall.open()
        except NetError as exc:
            self.log.error(f"{exc}: no_accept cannot be enforced, masters will accept traffic to their VIPs")
            return
        self.firewall = firewall
        for inst in self.instances:
            inst.effects.firewall = firewall

    def _start_reader(self, port: Port) -> None:
        scope = self._readers[(port.ifname, port.family)] = anyio.CancelScope()
        self._tg.start_soon(self._read, port, scope, name=f"reader {port.ifname} IPv{port.family}")

    @staticmethod
    async def _read(port: Port, scope: anyio.CancelScope) -> None:
        with scope:
            await port.run()

    async def _run_instance(self, inst: Instance, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        try:
            async with anyio.create_task_group() as tg:
                inst.scope = tg.cancel_scope
                inst.effects.task_group = tg
                inst.started = True  # from here on, inputs go through the inbox
                # A fault reason set before this point makes it "Entering FAULT STATE (init)".
                await tg.start(self._drive, inst, tg.cancel_scope)
                task_status.started()
        finally:
            inst.done.set()

    @staticmethod
    async def _drive(inst: Instance, scope: anyio.CancelScope, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        await run_instance(inst.router, inst.inbox, inst.effects, task_status=task_status)
        scope.cancel()  # its inbox was closed (a reload removed it): its GARP bursts end too

    # -- reload -----------------------------------------------------------------------------------

    async def _apply(self, diff: PlanDiff) -> None:
        """Removed (and replaced) instances stop first, then changed ones take their new plans, then new
        ones start: a VIP that moves to another instance leaves before it comes."""
        by_plan = {id(inst.plan): inst for inst in self.instances}
        for old, new, why in diff.replaced:
            by_plan[id(old)].effects.log.info(f"({old.name}) restarted by the reload: {why}")
        await self._stop([by_plan[id(old)] for old in diff.removed + tuple(o for o, _, _ in diff.replaced)])
        await self._ensure_firewall()
        await self._change([(by_plan[id(old)], new) for old, new in diff.changed])
        added = {id(new): self._build(new) for new in diff.added + tuple(n for _, n, _ in diff.replaced)}
        kept = {id(new): by_plan[id(old)] for old, new in diff.unchanged + diff.changed}
        self.instances = [kept.get(id(plan)) or added[id(plan)] for plan in self.plans]
        self._index()
        await self._start_new(list(added.values()))

    async def _stop(self, gone: list[Instance]) -> None:
        """Stop as on SIGTERM (priority 0 from a master, its VIPs released), then leave the port, closing
        the socket when no instance is left on it; delete the instance's VMAC."""
        for inst in gone:
            inst.effects.log.info(f"({inst.plan.name}) removed by the reload; stopping")
            inst.effects.keep_on_stop = False  # -V keeps addresses when the daemon stops, not on a reload
            inst.inbox.close()
        for inst in gone:
            with anyio.move_on_after(RELOAD_SECONDS):
                await inst.done.wait()
            if not inst.done.is_set():
                inst.effects.log.error(f"({inst.plan.name}) did not stop in {RELOAD_SECONDS:g} s; cancelled")
                if inst.scope is not None:
                    inst.scope.cancel()
        for inst in gone:
            if inst.vmac_tx is not None:
                await inst.vmac_tx.aclose()
                inst.vmac_tx = None
            port = inst.port
            port.remove(inst.member)
            if port.empty:
                await port.close()
                key = (port.ifname, port.family)
                del self.ports[key]
                reader = self._readers.pop(key, None)
                if reader is not None:
                    reader.cancel()
            if inst.plan.vmac is not None:
                await self._delete_vmac(inst.plan.vmac.name)

    async def _change(self, changes: list[tuple[Instance, InstancePlan]]) -> None:
        """Hand each instance its new plan through its inbox and wait until all have taken it."""
        waiting = []
        for inst, new in changes:
            old = inst.plan
            if new.name != old.name:
                inst.effects.log = self._instance_log(new)
                inst.effects.log.info(f"({new.name}) was {old.name}: renamed by the reload")
            inst.plan = new
            if _membership(new) != _membership(old):
                inst.port.remove(inst.member)
                inst.member = _member(new, inst.inbox)
                self._join(inst)
            done = anyio.Event()
            self._send(inst, Reload(new, new.with_source(inst.effects.source), done))
            waiting.append((inst, done))
        for inst, done in waiting:
            with anyio.move_on_after(RELOAD_SECONDS):
                await done.wait()
            if not done.is_set():
                inst.effects.log.warning(f"({inst.plan.name}) has not taken its new configuration after "
                                         f"{RELOAD_SECONDS:g} s")

    async def _start_new(self, new: list[Instance]) -> None:
        """Start instances as at start-up: interface checked, socket opened (a new port gets a reader)."""
        for inst in new:
            inst.effects.log.info(f"({inst.plan.name}) added by the reload; starting")
            key = (inst.plan.interface, inst.plan.family)
            if key not in self._readers:
                self._start_reader(self.ports[key])
        for base in dict.fromkeys(inst.plan.interface for inst in new):
            await self._recheck(base, [inst for inst in new if inst.plan.interface == base])
        for inst in new:
            await self._tg.start(self._run_instance, inst, name=f"instance {inst.plan.name}")

    async def _delete_vmac(self, name: str) -> None:
        if name not in self._vmacs:
            return
        self._vmacs.remove(name)
        try:
            await self._netlink.delete_vmac(name)
            self.log.info(f"deleted VMAC interface {name}")
        except NetError as exc:
            self.log.error(f"cannot delete VMAC interface {name}: {exc}")

    async def _cleanup(self) -> None:
        for inst in self.instances:
            if inst.vmac_tx is not None:
                await inst.vmac_tx.aclose()
        for port in self.ports.values():
            await port.close()
        await self.frames.aclose()
        if self.firewall is not None:
            try:
                await self.firewall.aclose()
            except NetError as exc:
                self.log.error(f"{exc}: remove the nftables tables 'pyvrrpd' by hand")
        if not self.release_on_stop:  # -V: the VIPs on a VMAC stay, so does the VMAC (and its parent's sysctls)
            if self._vmacs:
                self.log.info("keeping the VMAC interfaces on stop (--dont-release-vrrp)", vmacs=list(self._vmacs))
            return
        for name in list(self._vmacs):
            await self._delete_vmac(name)
        for parent, sysctls in self._parent_sysctls.items():
            for key, value in sysctls.items():
                try:
                    write_sysctl(key, value)
                except NetError as exc:
                    self.log.warning(f"cannot restore {key} on {parent}: {exc}")

    # -- TrackSink --------------------------------------------------------------------------------

    def set_fault(self, instance: str, source: str, reason: str | None) -> None:
        self._deliver(instance, SetFault(source, reason))

    def set_priority_delta(self, instance: str, source: str, delta: int) -> None:
        self._deliver(instance, SetPriorityDelta(source, delta))

    def _router_of(self, name: str) -> VirtualRouter | None:
        inst = self._by_name.get(name)
        return inst.router if inst is not None else None

    def _send_to(self, name: str, item: InboxItem) -> None:
        inst = self._by_name.get(name)
        if inst is not None:
            self._send(inst, item)

    def _deliver(self, name: str, item: InboxItem) -> None:
        inst = self._by_name.get(name)
        if inst is None:
            self.log.warning(f"no vrrp_instance {name}; {type(item).__name__} ignored", instance=name)
            return
        self._send(inst, item)

    def _send(self, inst: Instance, item: InboxItem) -> None:
        """Through the inbox once the instance runs; before that, to the router itself (which only records
        it, so that startup() can begin in FAULT). Fault reasons are reported first (sync groups)."""
        if isinstance(item, SetFault):
            self.reports.fault(inst.plan.name, item.source, item.reason)
        if not inst.started:
            feed(inst.router, item, anyio.current_time())
            return
        try:
            inst.inbox.put(item)
        except anyio.ClosedResourceError:
            pass  # the instance has stopped

    # -- interfaces -------------------------------------------------------------------------------

    async def _monitor(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        """Follow link and address changes; after a lost event (ENOBUFS) reopen and re-check everything."""
        ready = False
        while True:
            try:
                async with LinkMonitor() as events:
                    if ready:  # events may have been lost: look at everything again
                        self._netlink.forget()
                        for base in self._by_interface:
                            await self._refresh(base)
                    else:
                        ready = True
                        task_status.started()
                    async for event in events:
                        await self._on_event(event)
            except NetError as exc:
                self.log.warning(f"link monitor: {exc}; reopening in {MONITOR_RETRY_SECONDS:g} s")
                if not ready:
                    ready = True
                    task_status.started()
                await anyio.sleep(MONITOR_RETRY_SECONDS)

    async def _on_event(self, event: LinkEvent | AddressEvent) -> None:
        if isinstance(event, LinkEvent):
            if event.kind in ("added", "deleted", "renamed"):
                for name in {event.name, event.old_name} - {None}:
                    self._netlink.forget(name)
            bases = {self._watched.get(event.name), self._watched.get(event.old_name)} - {None}
        elif event.ifname in self._by_interface and event.address.ip not in self._vips:
            bases = {event.ifname}  # the primary address or link-local (the advert source) may have changed
        else:
            return
        for base in bases:
            await self._refresh(base)

    async def _refresh(self, base: str) -> None:
        """Re-check one base interface: sockets, source addresses, VMACs, and the link fault of its instances."""
        async with self._refresh_lock:
            await self._recheck(base, self._by_interface.get(base, []))

    async def _recheck(self, base: str, instances: list[Instance]) -> None:
        """_refresh for the given instances on ``base`` (its sockets are checked either way)."""
        assert self._netlink is not None
        try:
            iface = await self._netlink.interface(base, exclude=self._vips)
        except NetError as exc:
            if exc.errno != errno.ENODEV:
                self.log.error(f"cannot read interface {base}: {exc}")
                return
            iface = None
        port_problem: dict[int, str] = {}
        for family in (4, 6):
            port = self.ports.get((base, family))
            if port is None:
                continue
            if iface is None:
                await port.close()
                continue
            try:
                await port.ensure_open(iface.index)
            except NetError as exc:
                port_problem[family] = str(exc)
                self.log.error(f"cannot open the VRRP socket: {exc}", interface=base, family=family)
        for inst in instances:
            problem = await self._check(inst, iface, port_problem.get(inst.plan.family))
            self._set_link_problem(inst, problem)

    async def _check(self, inst: Instance, iface: Interface | None, port_problem: str | None) -> str | None:
        """Why the instance cannot run on this interface now (None: it can); carries out what follows:
        the router's new source address, the VMAC and its socket."""
        verdict = check_link(inst.plan, iface, port_problem)
        if verdict.source is not None:
            self._set_source(inst, verdict.source)
        if verdict.reason is not None or inst.plan.vmac is None:
            return verdict.reason
        return await self._ensure_vmac(inst)

    def _set_source(self, inst: Instance, source: IPAddress) -> None:
        if inst.effects.source == source:
            return
        inst.effects.source = source
        self._send(inst, Reconfigure(inst.plan.with_source(source)))
        inst.effects.log.info(f"({inst.plan.name}) advert source address {source}", source=str(source))

    async def _ensure_vmac(self, inst: Instance) -> str | None:
        """Create (or adopt) the instance's macvlan and its transmit socket; a problem string on failure."""
        assert self._netlink is not None
        vmac = inst.plan.vmac
        try:
            info = link_info(vmac.name)
        except NetError:
            info = None
        if info is None or vmac.name not in self._vmacs:
            try:
                created = await self._netlink.create_vmac(vmac.parent, vmac.name, inst.plan.vrid,
                                                          version=inst.plan.family, mac=vmac.mac)
            except NetError as exc:
                return f"cannot create VMAC interface {vmac.name}: {exc}"
            self._parent_sysctls.setdefault(vmac.parent, created.parent_sysctls)
            if vmac.name not in self._vmacs:
                self._vmacs.append(vmac.name)
            inst.effects.log.info(f"({inst.plan.name}) VMAC interface {vmac.name} on {vmac.parent} with MAC "
                                   f"{created.mac.hex(':')}")
            try:
                info = link_info(vmac.name)
            except NetError as exc:
                return f"VMAC interface {vmac.name}: {exc}"
        if not (info.up and info.running):
            return f"VMAC interface {vmac.name} is down"
        if vmac.xmit_base:
            return None
        if inst.plan.family == 6:
            # IPv6 adverts leave with the base interface's link-local source, which must be an address
            # of the sending interface: give the macvlan a copy (keepalived does the same).
            local = AddressSpec(ipaddress.ip_interface(f"{inst.effects.source}/64"), scope=SCOPES["link"])
            try:
                await self._netlink.add_address(local, vmac.name)
            except NetError as exc:
                return f"cannot add {local} to VMAC interface {vmac.name}: {exc}"
        if inst.vmac_tx is None or inst.vmac_tx.ifindex != info.index:
            if inst.vmac_tx is not None:
                await inst.vmac_tx.aclose()
                inst.vmac_tx = None
            try:
                inst.vmac_tx = open_vrrp_socket(vmac.name, inst.plan.family, groups=(), rcvbuf=SEND_ONLY_RCVBUF)
            except NetError as exc:
                return f"cannot open the VRRP socket on {vmac.name}: {exc}"
        return None

    def _set_link_problem(self, inst: Instance, problem: str | None) -> None:
        old, inst.link_problem = inst.link_problem, problem
        if problem == old:
            return
        log, name = inst.effects.log, inst.plan.name
        if problem is not None:
            log.warning(f"({name}) {problem}", problem=problem)
        elif inst.started:
            log.info(f"({name}) {inst.plan.interface} is usable again")
        self._send(inst, SetFault(inst.link_source, problem))


def _instance_snapshot(inst: Instance) -> dict:
    router, plan = inst.router, inst.plan
    config = router.config
    master = router.master_address
    return {
        "name": plan.name,
        "vrid": plan.vrid,
        "interface": plan.interface,
        "family": plan.family,
        "version": router.config.version,
        "state": router.state.value,
        "base_priority": router.base_priority,
        "effective_priority": router.priority,
        "priority_deltas": router.priority_deltas,
        "faults": router.faults,
        "master_address": None if master is None else str(master),
        "master_priority": router.master_priority,
        "source": str(router.config.source),
        "vips": [str(spec.address) for spec in plan.addresses],
        "vmac": plan.vmac.name if plan.vmac is not None else None,
        "advert_int_us": config.advert_int_us,
        "master_advert_int_us": router.master_adver_int_us,
        "accept": config.accept,
        "nopreempt": config.nopreempt,
        "preempt_delay_us": config.preempt_delay_us,
        "auth_type": "PASS" if config.auth_type == 1 else None,  # never the password itself
        "skip_check_adv_addr": config.skip_check_adv_addr,
        "lower_prio_no_advert": config.lower_prio_no_advert,
        "higher_prio_send_advert": config.higher_prio_send_advert,
        "garp_master_delay_us": config.garp_master_delay_us,
        "garp_master_repeat": config.garp_master_repeat,
        "garp_master_refresh_us": config.garp_master_refresh_us,
        "garp_master_refresh_repeat": config.garp_master_refresh_repeat,
        "garp_lower_prio_delay_us": config.garp_lower_prio_delay_us,
        "garp_lower_prio_repeat": config.garp_lower_prio_repeat,
        "counters": {
            "router": _counters(router.stats),
            "effects": _counters(inst.effects.stats),
            "port": _counters(inst.port.stats),
        },
    }


def _counters(stats) -> dict:
    """A stats dataclass as plain JSON-able values: Counters become dicts keyed by the enum's value."""
    out = {}
    for f in fields(stats):
        value = getattr(stats, f.name)
        out[f.name] = {str(k): n for k, n in value.items()} if isinstance(value, dict) else value
    return out


def _member(plan: InstancePlan, inbox: Inbox) -> Member:
    return Member(plan.name, plan.vrid, frozenset(plan.peers), plan.peer_ttl, inbox)


def _membership(plan: InstancePlan) -> tuple:
    """What the port's reader needs of an instance: a change means leaving the port and joining again."""
    return plan.name, frozenset(plan.peers), plan.peer_ttl, None if plan.peers else plan.group, plan.rcvbuf
