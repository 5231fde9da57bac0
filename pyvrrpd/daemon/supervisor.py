"""The daemon: load the config, run every vrrp_instance until SIGTERM/SIGINT, stop like keepalived does.

Task tree (one anyio task group, asyncio backend because pyroute2 is asyncio-only):

    signals        SIGTERM/SIGINT cancel everything; SIGHUP is logged (reload comes later)
    link monitor   interface added/up/down/deleted/renamed and address changes → re-check the
                   interfaces concerned: (re)open sockets, (re)create VMACs, set or clear FAULT
    port readers   one per (interface, family): decode + demultiplex into the instances' inboxes
    instances      daemon.instance.run_instance per vrrp_instance, each in its own task group that
                   also holds its GARP bursts; on cancel each master sends priority 0 and removes
                   its VIPs (shielded, time-boxed, in run_instance)

After the task group ends (all instances stopped), VMACs are deleted and the parents' sysctls restored.
An instance whose interface is missing, down, without a usable source address, or whose VMAC cannot be
created runs in FAULT and recovers when the link monitor sees the problem go away.
"""

from __future__ import annotations

import argparse
import errno
import gc
import ipaddress
import os
import signal
import sys
from dataclasses import dataclass

import anyio

from pyvrrpd import __version__
from pyvrrpd.config import model
from pyvrrpd.core.router import OWNER_PRIORITY, VirtualRouter
from pyvrrpd.daemon.effects import FrameSenders, InstanceEffects
from pyvrrpd.daemon.instance import Inbox, SetFault, run_instance
from pyvrrpd.daemon.plan import InstancePlan, IPAddress, PlanError, pick_source, plan_instances
from pyvrrpd.daemon.port import Member, Port
from pyvrrpd.net.errors import NetError
from pyvrrpd.net.firewall import Firewall
from pyvrrpd.net.link import link_info
from pyvrrpd.net.specs import SCOPES, AddressSpec
from pyvrrpd.net.netlink import AddressEvent, Interface, LinkEvent, LinkMonitor, Netlink, write_sysctl
from pyvrrpd.net.vrrp_socket import VrrpSocket, open_vrrp_socket

EXIT_OK = 0
EXIT_FAILURE = 1
INBOX_SIZE = 64  # adverts waiting for one instance; more are dropped and counted
SEND_ONLY_RCVBUF = 4096  # VMAC transmit sockets never read
MONITOR_RETRY_SECONDS = 1.0
CLEANUP_SECONDS = 5.0  # time box for deleting VMACs on exit


@dataclass(eq=False)
class Instance:
    """One running vrrp_instance and what the supervisor knows about it."""

    plan: InstancePlan
    router: VirtualRouter
    effects: InstanceEffects
    port: Port
    inbox: Inbox
    problem: str | None = None  # why it is (or would be) in FAULT; None when it can run
    started: bool = False
    vmac_tx: VrrpSocket | None = None  # adverts from the VMAC (use_vmac without vmac_xmit_base)

    def tx(self) -> VrrpSocket | None:
        vmac = self.plan.vmac
        return self.vmac_tx if vmac is not None and not vmac.xmit_base else self.port.sock


def run_daemon(args: argparse.Namespace) -> int:
    """`pyvrrpd -f FILE`: run in the foreground until SIGTERM/SIGINT. Returns the exit code."""
    from pyvrrpd.config.diagnostics import Severity, render_all
    from pyvrrpd.config.load import load
    from pyvrrpd.observe import logs

    logs.configure(args.log_format, args.log_level)
    log = logs.get("pyvrrpd")
    if args.checkers_only:
        sys.stderr.write("pyvrrpd: the health-checker subsystem (-C) is not supported yet; nothing to run\n")
        return EXIT_FAILURE
    loaded = load(args.file, config_id=args.config_id, host_checks=not args.no_host_checks)
    if loaded.config is None or not loaded.ok:
        color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
        sys.stderr.write(render_all(loaded.diagnostics, color=color) + "\n")
        sys.stderr.write(f"{args.file}: {loaded.errors} error(s); not starting\n")
        return EXIT_FAILURE
    for diag in loaded.diagnostics:
        if diag.severity is Severity.WARNING:
            log.warning(f"config: {diag.message}", where=str(diag.span) if diag.span else args.file)
    try:
        plans = plan_instances(loaded.config)
    except PlanError as exc:
        sys.stderr.write(f"pyvrrpd: {args.file}: {exc}; not starting\n")
        return EXIT_FAILURE
    return anyio.run(Daemon(loaded.config, plans, log, pid_file=args.pid).run, backend="asyncio")


class Daemon:
    def __init__(self, config: model.Config, plans: list[InstancePlan], log, *, pid_file: str | None = None) -> None:
        self.config = config
        self.plans = plans
        self.log = log
        self.pid_file = pid_file
        self.instances: list[Instance] = []
        self.ports: dict[tuple[str, int], Port] = {}
        self.frames = FrameSenders()
        self._vips: frozenset[IPAddress] = frozenset().union(*(p.vip_ips for p in plans))
        self._by_interface: dict[str, list[Instance]] = {}  # base interface → its instances
        self._watched: dict[str, str] = {}  # interface or VMAC name → base interface to re-check
        self._vmacs: list[str] = []  # VMACs created or adopted by us, deleted on exit
        self._parent_sysctls: dict[str, dict[str, str]] = {}  # parent → sysctls before the first VMAC
        self._refresh_lock = anyio.Lock()  # one re-check at a time (start-up and the link monitor)
        self._netlink: Netlink | None = None
        self.firewall: Firewall | None = None  # only when some instance does not accept (no_accept)

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> int:
        log = self.log
        log.info(f"Starting pyvrrpd v{__version__}", pid=os.getpid(), instances=len(self.plans))
        self._log_unsupported()
        # Installed first: from here on SIGTERM/SIGINT mean "stop cleanly", never "die". The pid file
        # is written after it, so whoever waits for the pid file may signal at once.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            if not self._write_pid_file():
                return EXIT_FAILURE
            try:
                try:
                    self._netlink = Netlink()
                except Exception as exc:  # pyroute2 raises assorted errors when netlink is unavailable
                    log.error(f"cannot open a netlink socket: {exc}")
                    return EXIT_FAILURE
                async with self._netlink:
                    try:
                        async with anyio.create_task_group() as tg:
                            tg.start_soon(self._signals, signals, tg.cancel_scope, name="signals")
                            await self._start(tg)
                    finally:
                        with anyio.move_on_after(CLEANUP_SECONDS, shield=True):
                            await self._cleanup()
            finally:
                if self.pid_file:
                    try:
                        os.unlink(self.pid_file)
                    except OSError:
                        pass
        log.info(f"Stopped pyvrrpd v{__version__}")
        return EXIT_OK

    def _write_pid_file(self) -> bool:
        if not self.pid_file:
            return True
        try:
            with open(self.pid_file, "w") as f:
                f.write(f"{os.getpid()}\n")
        except OSError as exc:
            self.log.error(f"cannot write pid file {self.pid_file}: {exc.strerror}")
            return False
        return True

    async def _start(self, tg) -> None:
        if any(not p.router.accept and p.router.priority != OWNER_PRIORITY for p in self.plans):
            firewall = Firewall()
            try:
                await firewall.open()
                self.firewall = firewall
            except NetError as exc:
                self.log.error(f"{exc}: no_accept cannot be enforced, masters will accept traffic to their VIPs")
        self._build()
        await tg.start(self._monitor, name="link monitor")  # before the first look, so no change is missed
        for base in self._by_interface:
            await self._refresh(base)
        delay = self.config.global_defs.vrrp_startup_delay_us
        if delay:
            self.log.info(f"Delaying startup for {delay / 1e6:g} seconds")
            await anyio.sleep(delay / 1e6)
        # What exists now (config model, plans, pyroute2, routers) lives as long as the daemon: keep it
        # out of the cyclic collector's sight, so no full collection rescans it between two adverts.
        gc.collect()
        gc.freeze()
        for port in self.ports.values():
            tg.start_soon(port.run, name=f"reader {port.ifname} IPv{port.family}")
        for inst in self.instances:
            await tg.start(self._run_instance, inst, name=f"instance {inst.plan.name}")
        if not self.instances:
            self.log.warning("no vrrp_instance in the configuration; idle until stopped")

    def _build(self) -> None:
        gd = self.config.global_defs
        log_unknown = gd.log_unknown_vrids
        for plan in self.plans:
            key = (plan.interface, plan.family)
            port = self.ports.get(key)
            if port is None:
                port = self.ports[key] = Port(plan.interface, plan.family, log=self.log,
                                              log_unknown_vrids=log_unknown)
            inbox = Inbox(INBOX_SIZE)
            ilog = self.log.bind(instance=plan.name, vrid=plan.vrid, interface=plan.interface, family=plan.family)
            effects = InstanceEffects(plan, netlink=self._netlink, tx=lambda: None, frames=self.frames, log=ilog,
                                      firewall=self.firewall)
            inst = Instance(plan, VirtualRouter(plan.router), effects, port, inbox)
            effects.tx = inst.tx
            port.add(Member(plan.name, plan.vrid, frozenset(plan.peers), plan.peer_ttl, inbox),
                     None if plan.peers else plan.group, plan.rcvbuf)
            self.instances.append(inst)
            self._by_interface.setdefault(plan.interface, []).append(inst)
            self._watched[plan.interface] = plan.interface
            if plan.vmac is not None:
                self._watched[plan.vmac.name] = plan.interface

    async def _run_instance(self, inst: Instance, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            inst.effects.task_group = tg
            if inst.problem is not None:
                # → "Entering FAULT STATE (init)"
                inst.router.set_fault(f"link:{inst.plan.interface}", inst.problem, anyio.current_time())
            inst.started = True
            await tg.start(run_instance, inst.router, inst.inbox, inst.effects)
            task_status.started()

    async def _signals(self, signals, scope: anyio.CancelScope) -> None:
        async for signum in signals:
            if signum == signal.SIGHUP:
                self.log.info("reload is not supported yet; keeping the running configuration")
                continue
            self.log.info("Stopping", signal=signal.Signals(signum).name)
            scope.cancel()
            return

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
        if self._netlink is None:
            return
        for name in self._vmacs:
            try:
                await self._netlink.delete_vmac(name)
                self.log.info(f"deleted VMAC interface {name}")
            except NetError as exc:
                self.log.error(f"cannot delete VMAC interface {name}: {exc}")
        for parent, sysctls in self._parent_sysctls.items():
            for key, value in sysctls.items():
                try:
                    write_sysctl(key, value)
                except NetError as exc:
                    self.log.warning(f"cannot restore {key} on {parent}: {exc}")

    def _log_unsupported(self) -> None:
        config = self.config
        for plan in self.plans:
            if plan.ignored:
                self.log.warning(f"({plan.name}) not supported yet, ignored: {', '.join(plan.ignored)}",
                                 instance=plan.name)
        if config.virtual_servers:
            self.log.warning(f"LVS is not supported yet: {len(config.virtual_servers)} virtual_server "
                             "block(s) ignored")
        for what, items in (("static_ipaddress", config.static_addresses), ("static_routes", config.static_routes),
                            ("static_rules", config.static_rules), ("vrrp_script", config.vrrp_scripts),
                            ("bfd_instance", config.bfd_instances)):
            if items:
                self.log.warning(f"{what} is not supported yet; ignored")

    # -- interfaces ---------------------------------------------------------------------------

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
        """Re-check one base interface: sockets, source addresses, VMACs, and FAULT of its instances."""
        async with self._refresh_lock:
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
            for inst in self._by_interface[base]:
                problem = await self._check(inst, iface, port_problem.get(inst.plan.family))
                await self._set_problem(inst, problem)

    async def _check(self, inst: Instance, iface: Interface | None, port_problem: str | None) -> str | None:
        """Why the instance cannot run on this interface now (None: it can); also updates its source."""
        plan = inst.plan
        if iface is None:
            return f"interface {plan.interface} does not exist"
        if not iface.up:
            return f"interface {plan.interface} is down"
        if not iface.running:
            return f"interface {plan.interface} has no carrier"
        source = pick_source(plan, iface.ipv4, iface.ipv6_link_local)
        if source is None:
            kind = "IPv4 address" if plan.family == 4 else "IPv6 link-local address"
            return f"interface {plan.interface} has no {kind} to send adverts from"
        self._set_source(inst, source)
        if port_problem is not None:
            return port_problem
        if plan.vmac is not None:
            return await self._ensure_vmac(inst)
        return None

    def _set_source(self, inst: Instance, source: IPAddress) -> None:
        if inst.effects.source == source:
            return
        inst.effects.source = source
        # The core reads config.source on every use; only the source differs between the two configs.
        inst.router.config = inst.plan.with_source(source)
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

    async def _set_problem(self, inst: Instance, problem: str | None) -> None:
        old, inst.problem = inst.problem, problem
        log, name = inst.effects.log, inst.plan.name
        if not inst.started:
            if problem is not None and problem != old:
                log.warning(f"({name}) {problem}", problem=problem)
            return  # _run_instance starts it in FAULT if there is a problem by then
        if problem == old:
            return
        if problem is not None:
            log.warning(f"({name}) {problem}", problem=problem)
        else:
            log.info(f"({name}) {inst.plan.interface} is usable again")
        if (old is None) != (problem is None):
            try:
                inst.inbox.put(SetFault(f"link:{inst.plan.interface}", problem))
            except anyio.ClosedResourceError:
                pass  # the instance has stopped
