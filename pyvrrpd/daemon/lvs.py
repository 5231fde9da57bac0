"""The LVS subsystem of the daemon root: the health checkers feeding the IPVS reconciler.

    checkers (pyvrrpd.checkers)  --set_health(RealServerKey)-->  this module  --set_health(RsId)-->
    IPVS reconciler (pyvrrpd.lvs.reconciler)  --netlink-->  the kernel's IPVS table

keepalived runs these two as its checker process (``-C``); pyvrrpd runs them as one subsystem, so ``-C``
runs exactly this and ``-P`` leaves it out. The reconciler starts first (it adopts the kernel's table
before any health is known), then the checkers; both stop together, the reconciler removing what it owns
(shielded) unless ``lvs_flush_on_stop``/keep-on-stop say otherwise.

This module is the only place that knows both sides' names for a real server: the checkers call it
``RealServerKey(vs label, address, port)``, the reconciler ``RsId(vs name, address, port)``; both are made
from the same config in the same order, so one zip maps them. notify_up/notify_down scripts run here,
never blocking a check, each killed at its timeout; so do the virtual servers' quorum_up/quorum_down
scripts. Scripts that come up while the subsystem stops (``omega``: notify_down of every alive real
server, quorum_down of every virtual server with its quorum) run after the table is released, shielded
and time-boxed (``STOP_SCRIPTS_SECONDS``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
import anyio.lowlevel

from pyvrrpd.checkers import RealServerEvent, RealServerKey, real_server_keys, rs_fmt, rs_label
from pyvrrpd.checkers.scheduler import Checkers
from pyvrrpd.config import model
from pyvrrpd.config.model import Script
from pyvrrpd.daemon.scripts import ScriptRunner, command_from_config
from pyvrrpd.lvs import table as t
from pyvrrpd.lvs.ipvs import IpvsPort
from pyvrrpd.lvs.reconciler import LvsSubsystem
from pyvrrpd.lvs.suspend import Suspension, watched_addresses
from pyvrrpd.observe.metrics import merge_histograms

NOTIFY_SECONDS = 30.0  # a notify_up/notify_down script still running after this is killed
STOP_SCRIPTS_SECONDS = 10.0  # the scripts of the stop (omega) all end within this, or are killed
ADDRESS_RETRY_SECONDS = 1.0  # the address watch (ha_suspend) reopens after an error this much later


class AddressWatch(Protocol):
    initial: list[model.IPAddress]  # every address on every interface (one entry per interface carrying it)

    def __aiter__(self) -> AsyncIterator[tuple[bool, model.IPAddress]]: ...  # (added, address)


class AddressSource(Protocol):
    def watch(self):  # -> AsyncContextManager[AddressWatch]
        ...


class NetlinkAddresses:
    """The production AddressSource: the link monitor's address events, and a dump of every address read
    after subscribing (so no change falls in between). Tentative IPv6 addresses do not count yet."""

    @asynccontextmanager
    async def watch(self):
        from pyvrrpd.net.constants import IFA_F_DADFAILED, IFA_F_TENTATIVE
        from pyvrrpd.net.netlink import AddressEvent, LinkMonitor, Netlink

        async with LinkMonitor() as monitor:
            async with Netlink() as nl:
                initial = [a.address.ip for a in await nl.all_addresses()
                           if not a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)]

            class Watch:
                def __init__(self) -> None:
                    self.initial = initial

                async def __aiter__(self):
                    async for event in monitor:
                        if isinstance(event, AddressEvent):
                            yield event.kind == "added", event.address.ip

            yield Watch()


def rs_fifo_label(vs: model.VirtualServer, key: RealServerKey) -> str:
    """keepalived's FMT_RS for the FIFO, the mails and the log: ``[203.0.113.11]:tcp:80``,
    ``[203.0.113.11]:none:80`` for a fwmark service (see ``checkers.rs_fmt``)."""
    return rs_fmt(vs, key.address, key.port)


def rs_line(vs: model.VirtualServer, key: RealServerKey, up: bool) -> str:
    """The checker FIFO line of a real server's change (keepalived's notify_fifo_rs)."""
    return f"RS {rs_fifo_label(vs, key)} {key.vs} {'UP' if up else 'DOWN'}\n"


def vs_line(label: str, up: bool) -> str:
    """The checker FIFO line of a virtual server's quorum change (keepalived's notify_fifo_vs)."""
    return f"VS {label} {'UP' if up else 'DOWN'}\n"


def vs_alert(router_id: str, label: str, event: t.QuorumChange, vs: model.VirtualServer,
             stopping: bool = False) -> tuple[str, str]:
    """keepalived's (subject, body) of a virtual server's quorum mail (do_vs_notifies)."""
    if stopping:
        return f"[{router_id}] Virtualserver {label} - DOWN", "=> Shutting down <="
    what = ("Starting with quorum up" if event.at_start else "Gained quorum") if event.up else \
        ("Starting with quorum down" if event.at_start else "Lost quorum")
    body = f"=> {what} {vs.quorum}+{vs.hysteresis}={event.threshold} <= {event.weight_sum} <="
    return f"[{router_id}] Virtualserver {label} - {'UP' if event.up else 'DOWN'}", body


def rs_alert(router_id: str, vs: model.VirtualServer, key: RealServerKey, up: bool, why: str) -> tuple[str, str]:
    """keepalived's (subject, body) of a real server's mail (smtp_alert SMTP_MSG_RS)."""
    subject = f"[{router_id}] Realserver {rs_fifo_label(vs, key)} of virtual server {key.vs} - {'UP' if up else 'DOWN'}"
    return subject, f"=> CHECK {'succeed' if up else 'failed'} on service ({why}) <="


def labelled(config: model.Config) -> Iterable[tuple[str, model.VirtualServer]]:
    """Every virtual server with its label (the checkers' RealServerKey.vs)."""
    seen: dict[str, model.VirtualServer] = {}
    for vs, _, key in real_server_keys(config):
        seen.setdefault(key.vs, vs)
    return seen.items()


def key_map(config: model.Config) -> dict[RealServerKey, t.RsId]:
    """The checkers' key of every real server → the reconciler's id of the same real server."""
    ids = [rs for rs, _, _ in t.rs_ids(config.virtual_servers)]
    keys = [key for _, _, key in real_server_keys(config)]
    return dict(zip(keys, ids, strict=True))


class Lvs:
    """The daemon root's ``lvs`` subsystem (run / reconfigure / snapshot), and the checkers' HealthSink."""

    name = "lvs"

    def __init__(self, config: model.Config, log, *, port: IpvsPort | None = None,
                 release_on_stop: bool = True, addresses: AddressSource | None = None,
                 fifo: Callable[[str], None] | None = None, mailer=None) -> None:
        self.config = config
        self.log = log.bind(subsystem=self.name)
        self.ipvs = LvsSubsystem(config, port=port, release_on_stop=release_on_stop, on_event=self.quorum_event)
        self.checkers = Checkers(config, self, log=self.log)
        self._keys = key_map(config)
        self._tg = None
        self._at_stop: list[tuple[model.Script, str]] = []  # scripts that came up while stopping
        self.scripts = ScriptRunner()
        self.addresses = addresses  # None: netlink, made when a virtual server has ha_suspend
        self.suspension: Suspension | None = None
        self._watching = False  # the address watch task runs
        self.fifo = fifo  # writes a checker line to notify_fifo / lvs_notify_fifo (the notify subsystem's)
        self.mailer = mailer  # the notify subsystem's kind of Mailer (the root makes it when wants_mail())
        self._names(config)
        self.address_watch_errors = 0

    # -- the checkers' HealthSink ----------------------------------------------------------------

    def set_health(self, rs: RealServerKey, up: bool, weight: int | None = None) -> None:
        rid = self._keys.get(rs)
        if rid is not None:  # else a real server of a config being replaced
            self.ipvs.set_health(rid, up, weight)

    def _names(self, config: model.Config) -> None:
        self._vs_of: dict[str, model.VirtualServer] = dict(labelled(config))  # label -> virtual server
        self._label_of: dict[str, str] = {}  # the reconciler's name -> label
        for label, vs in self._vs_of.items():
            self._label_of.setdefault(t.vs_name(vs), label)

    def notify(self, event: RealServerEvent) -> None:
        verb = "up" if event.up else "down"
        vs = self._vs_of.get(event.key.vs)
        if vs is not None:
            if self.fifo is not None:
                self.fifo(rs_line(vs, event.key, event.up))
            rs = next((r for r in vs.real_servers if r.address == event.key.address and r.port == event.key.port), None)
            if self.mailer is not None and rs is not None and rs.smtp_alert:
                router_id = self.mailer.settings.router_id
                if event.reason == "shutting down (omega)":
                    subject = rs_alert(router_id, vs, event.key, False, "")[0]
                    self.mailer.alert(subject, "=> Shutting down <=")
                else:
                    self.mailer.alert(*rs_alert(router_id, vs, event.key, event.up, event.reason))
        name = rs_fifo_label(vs, event.key) if vs is not None else rs_label(event.key.address, event.key.port)
        self.log.info(f"{'Adding' if event.up else 'Removing'} service {name} {'to' if event.up else 'from'} "
                      f"VS {event.key.vs}", reason=event.reason, health=verb)
        if event.script is not None:
            self._start_script(event.script, f"notify_{verb} script for {event.key}")

    def quorum_event(self, event: t.QuorumChange) -> None:
        """The reconciler's quorum change (gained, lost, or lost at stop with ``omega``): its script, the
        checker FIFO line and the mail (``smtp_alert``)."""
        label = self._label_of.get(event.vs)
        vs = self._vs_of.get(label) if label is not None else None
        if vs is not None:
            if self.fifo is not None:
                self.fifo(vs_line(label, event.up))
            if self.mailer is not None and vs.smtp_alert:
                self.mailer.alert(*vs_alert(self.mailer.settings.router_id, label, event, vs,
                                            stopping=self.ipvs.stopping))
        if event.script is not None:
            self._start_script(event.script, f"quorum_{'up' if event.up else 'down'} script for VS {event.vs}")

    def _start_script(self, script: model.Script, what: str) -> None:
        if self._tg is None:
            self._at_stop.append((script, what))
        else:
            self._tg.start_soon(self._script_task, script, what, name=what)

    async def _script_task(self, script: model.Script, what: str) -> None:
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except anyio.get_cancelled_exc_class():  # started while stopping (omega): run once the table is released
            self._at_stop.append((script, what))
            raise
        await self._run_script(script, what)

    async def _run_script(self, script: model.Script, what: str, timeout: float = NOTIFY_SECONDS) -> None:
        command = command_from_config(script, self.config.global_defs)
        outcome = await self.scripts.run_command(command, timeout=timeout)
        if not outcome.ok:
            self.log.warning(f"{what} {outcome.describe()}", output=outcome.output_text())

    # -- the subsystem life cycle ----------------------------------------------------------------

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self.mailer is not None:
                    tg.start_soon(self.mailer.run, name="LVS smtp alerts")
                await tg.start(self.ipvs.run, name="IPVS reconciler")
                if watched_addresses(labelled(self.config), self.config.virtual_server_groups):
                    await tg.start(self._watch_addresses, name="ha_suspend addresses")
                await tg.start(self.checkers.run, name="checkers")
                task_status.started()
        finally:
            self._tg = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_SCRIPTS_SECONDS):
                if self.mailer is not None:  # the stop's mails (omega) still go, within the time box
                    self.mailer.close()
                    async with anyio.create_task_group() as drains:
                        drains.start_soon(self.mailer.run)
                        await self._run_stop_scripts()
                else:
                    await self._run_stop_scripts()

    async def _watch_addresses(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        """ha_suspend: follow the host's addresses and suspend or resume the checkers of the virtual servers
        that watch them. Events lost (or the watch failing) mean a reopen and a fresh look at every address;
        if the first look fails, the checkers run (as if every address were there) until it succeeds."""
        from pyvrrpd.net.errors import NetError

        self._watching = True
        if self.addresses is None:
            self.addresses = NetlinkAddresses()
        started = False
        while True:
            try:
                async with self.addresses.watch() as watch:
                    watched = watched_addresses(labelled(self.config), self.config.virtual_server_groups)
                    if self.suspension is None:
                        self.suspension = Suspension(watched, watch.initial)
                        self.checkers.suspended = set(self.suspension.suspended)
                    else:
                        self._apply_suspension(self.suspension.resync(watch.initial))
                    if not started:
                        started = True
                        task_status.started()
                    async for added, address in watch:
                        self._apply_suspension(self.suspension.address(added, address))
            except (NetError, OSError) as exc:
                self.log.warning(f"ha_suspend: address watch: {exc}; reopening in {ADDRESS_RETRY_SECONDS:g} s")
                self.address_watch_errors += 1
                if not started:
                    started = True
                    task_status.started()
            await anyio.sleep(ADDRESS_RETRY_SECONDS)

    def _apply_suspension(self, changes) -> None:
        for change in changes:
            self.checkers.suspend(change.vs, change.active)

    async def _run_stop_scripts(self) -> None:
        pending, self._at_stop = self._at_stop, []
        if pending:
            async with anyio.create_task_group() as tg:
                for script, what in pending:
                    tg.start_soon(self._run_script, script, what, STOP_SCRIPTS_SECONDS, name=what)

    async def reconfigure(self, config: model.Config) -> str | None:
        """The reconciler keeps the kernel's entries and the health of unchanged real servers; the checkers
        keep the state of unchanged checks (a failed real server is not re-added by a reload)."""
        self.config = config
        self._keys = key_map(config)
        self._names(config)
        why = await self.ipvs.reconfigure(config)
        why = why or await self.checkers.reconfigure(config)
        watched = watched_addresses(labelled(config), config.virtual_server_groups)
        if self.suspension is not None:
            self.suspension = Suspension(watched, self.suspension.counts.elements())
            now = self.suspension.suspended
            for vs in set(self.checkers.suspended) - now:
                self.checkers.suspend(vs, True)
            for vs in now - self.checkers.suspended:
                self.checkers.suspend(vs, False)
        elif watched and self._tg is not None and not self._watching:
            self._tg.start_soon(self._watch_addresses, name="ha_suspend addresses")
        return why

    def snapshot(self) -> dict:
        ipvs, checkers = self.ipvs.snapshot(), self.checkers.snapshot()
        return {"virtual_servers": self._virtual_servers(checkers), "ipvs": ipvs, "checkers": checkers,
                "counters": {**{f"notify_{k}": n for k, n in self.scripts.counters.items()},
                             "address_watch_errors": self.address_watch_errors},
                "smtp": self.mailer.snapshot() if self.mailer is not None else None}

    def _virtual_servers(self, checkers: dict) -> list[dict]:
        """One entry per virtual_server, in the shape the status table and /metrics render."""
        quorum = self.ipvs.quorum or {}
        ago: dict[str, float] = {}  # seconds since a check of the real server last completed
        fed_by: dict[str, list[dict]] = {}  # the probes feeding each real server
        for probe in checkers.get("probes", ()):
            for user in probe.get("real_servers", ()):
                fed_by.setdefault(user, []).append(probe)
                if probe.get("last_completed_ago") is not None:
                    ago[user] = min(ago.get(user, float("inf")), probe["last_completed_ago"])
        out: dict[str, dict] = {}
        for vs, rs, key in real_server_keys(self.config):
            entry = out.setdefault(key.vs, {"name": key.vs, "quorum_up": quorum.get(t.vs_name(vs), True),
                                            "real_servers": []})
            health = self.ipvs.health.get(self._keys[key])
            entry["real_servers"].append({
                "name": rs_label(key.address, key.port),
                "up": None if health is None else health.up,
                "weight": rs.weight if health is None or health.weight is None else health.weight,
                "last_check_ago": ago.get(str(key)),
                **_check_figures(fed_by.get(str(key), ())),
            })
        return list(out.values())


def wants_mail(config: model.Config) -> bool:
    """Whether a virtual or real server has ``smtp_alert`` (the root then gives the subsystem a Mailer)."""
    return any(vs.smtp_alert or any(rs.smtp_alert for rs in vs.real_servers) for vs in config.virtual_servers)


def _check_figures(probes) -> dict:
    """A real server's checks from the probes that feed it: failures by reason and the latency histogram
    (a probe shared by several real servers counts for each of them)."""
    if not probes:
        return {}
    failures: dict[str, int] = {}
    for p in probes:
        for reason, n in (p.get("failures") or {}).items():
            failures[reason] = failures.get(reason, 0) + n
    latency = merge_histograms(p["latency"] for p in probes if "latency" in p)
    return {"counters": {"check_failures": failures}, "check_latency": latency}
