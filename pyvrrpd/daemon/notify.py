"""Notifications in keepalived's calling convention: notify scripts and notify FIFOs.

The VRRP subsystem calls ``Notifier.transition(kind, name, new_state, priority, scripts)`` after each
state change of an instance (kind ``INSTANCE``) or sync group (``GROUP``). The call never blocks:

* the FIFO line — ``INSTANCE "VI_1" MASTER 150`` + ``\\n``, priority 0 for groups — is written at once
  with a non-blocking write to ``notify_fifo`` and ``vrrp_notify_fifo`` (each that is configured), so
  FIFO readers see every change in order. A FIFO nobody reads fills up; further lines are dropped and
  counted, never waited for;
* the scripts are queued: first the state's own script (``notify_master``, ``notify_backup``,
  ``notify_fault``, ``notify_stop``, ``notify_deleted``) with only its configured arguments, then the
  generic ``notify`` script with ``INSTANCE|GROUP NAME STATE PRIORITY`` appended. One queue per
  instance or group: its scripts run one at a time in transition order, never concurrently (keepalived
  forks them all at once, so they can overtake each other — the reason its maintainers point users to
  the FIFO). Different instances' queues run in parallel.

A notify script is killed at ``timeout`` (STOP scripts at ``stop_timeout``: 1 s, as keepalived does)
and its queue moves on; the state machine never waits for it. ``DELETED`` (an instance removed by a
reload) is reported as ``FAULT`` unless the instance has ``notify_deleted``, as in keepalived.

The FIFOs are created if missing (mode 0644, removed again at stop if we created them) and opened
read-write and non-blocking, so opening never waits for a reader; a path that is not a FIFO is
refused. ``notify_fifo_script``/``vrrp_notify_fifo_script`` run for as long as the daemon does, with
the FIFO's name as their last argument. ``lvs()`` writes the checker lines (``notify_fifo`` and
``lvs_notify_fifo``) for the LVS subsystem.

At stop, queued notifications (the STOP scripts, typically) still run, within ``drain_limit``
seconds; stop this subsystem after the VRRP subsystem so its STOP notifications are queued first.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import stat
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Literal

import anyio
import anyio.lowlevel

from pyvrrpd.daemon.scripts import Command, ScriptRunner, command_from_config, refusal
from pyvrrpd.daemon.smtp import Mailer, smtp_settings

NOTIFY_TIMEOUT = 30.0  # seconds a notify script may run before it is killed
STOP_TIMEOUT = 1.0  # keepalived gives notify_stop and "notify ... STOP" 1 s
DRAIN_LIMIT = 5.0  # seconds the queued notifications may take at stop
QUEUE_LIMIT = 64  # pending notifications per instance or group; more are dropped and counted
FIFO_MODE = 0o644  # keepalived: S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH

Kind = Literal["INSTANCE", "GROUP"]
STATES = ("MASTER", "BACKUP", "FAULT", "STOP", "DELETED")
EVENTS = ("MASTER_RX_LOWER_PRI", "MASTER_PRIORITY", "BACKUP_PRIORITY")


@dataclass(frozen=True, slots=True)
class NotifyScripts:
    """An instance's or sync group's notify scripts (None: not configured)."""

    master: Command | None = None
    backup: Command | None = None
    fault: Command | None = None
    stop: Command | None = None
    deleted: Command | None = None
    generic: Command | None = None  # "notify": gets INSTANCE|GROUP NAME STATE PRIORITY appended
    master_rx_lower_pri: Command | None = None
    notify_deleted: bool = False  # report DELETED (not FAULT) for an instance a reload removed
    smtp_alert: bool = False  # mail each new state (needs a Mailer)

    def for_state(self, state: str) -> Command | None:
        return {"MASTER": self.master, "BACKUP": self.backup, "FAULT": self.fault, "STOP": self.stop,
                "DELETED": self.deleted}.get(state)


def _command(script, global_defs, refused: list[str] | None = None) -> Command | None:
    """The Command for a config Script, or None: none configured, or refused by script security (the
    reason goes to ``refused``)."""
    if script is None:
        return None
    command = command_from_config(script, global_defs)
    insecure = refusal(command, global_defs.enable_script_security)
    if insecure is not None:
        if refused is not None:
            refused.append(f"{insecure}; enable_script_security is set, so it is not run")
        return None
    return command


def instance_notify_scripts(instance, global_defs, refused: list[str] | None = None) -> NotifyScripts:
    """Adapter: a config ``VrrpInstance``'s notify_* fields as NotifyScripts."""
    def cmd(script):
        return _command(script, global_defs, refused)
    n = instance.notify
    return NotifyScripts(
        master=cmd(n.master), backup=cmd(n.backup), fault=cmd(n.fault), stop=cmd(n.stop), deleted=cmd(n.deleted),
        generic=cmd(n.any_state), master_rx_lower_pri=cmd(n.master_rx_lower_pri),
        notify_deleted=n.deleted is not None, smtp_alert=instance.smtp_alert,
    )


def group_notify_scripts(group, global_defs, refused: list[str] | None = None) -> NotifyScripts:
    """Adapter: a config ``SyncGroup``'s notify_* fields as NotifyScripts (groups have no notify_deleted)."""
    def cmd(script):
        return _command(script, global_defs, refused)
    gd = global_defs
    default_alert = gd.smtp_alert_vrrp if gd.smtp_alert_vrrp is not None else gd.smtp_alert
    n = group.notify
    return NotifyScripts(master=cmd(n.master), backup=cmd(n.backup), fault=cmd(n.fault), stop=cmd(n.stop),
                         generic=cmd(n.any_state), smtp_alert=group.smtp_alert or bool(default_alert))


@dataclass(frozen=True, slots=True)
class NotifyTable:
    """What each instance and sync group is notified with, by (kind, name), for ``notify_state``."""

    scripts: dict[tuple[str, str], NotifyScripts] = field(default_factory=dict)
    priority_changes: frozenset[str] = frozenset()  # instances with notify_priority_changes (or their group)
    refused: tuple[str, ...] = ()  # scripts not run (script security), for the log


def notify_table(config) -> NotifyTable:
    """Adapter: every instance's and sync group's notify scripts and options."""
    gd = config.global_defs
    refused: list[str] = []
    scripts = {("INSTANCE", i.name): instance_notify_scripts(i, gd, refused) for i in config.instances}
    scripts.update({("GROUP", g.name): group_notify_scripts(g, gd, refused) for g in config.sync_groups})
    changes = {i.name for i in config.instances if i.notify_priority_changes}
    changes.update(m for g in config.sync_groups if g.notify_priority_changes for m in g.members)
    return NotifyTable(scripts, frozenset(changes), tuple(refused))


@dataclass(frozen=True, slots=True)
class FifoSpec:
    path: str
    script: Command | None = None  # the reader keepalived starts, FIFO name appended
    user: str | None = None  # owner of a FIFO we create
    group: str | None = None


@dataclass(frozen=True, slots=True)
class FifoSettings:
    notify: FifoSpec | None = None  # notify_fifo: VRRP and LVS lines
    vrrp: FifoSpec | None = None  # vrrp_notify_fifo
    lvs: FifoSpec | None = None  # lvs_notify_fifo


def fifo_settings(global_defs, refused: list[str] | None = None, *, vrrp: bool = True) -> FifoSettings:
    """Adapter: global_defs' notify_fifo, vrrp_notify_fifo and lvs_notify_fifo (and their scripts).
    ``vrrp=False`` (``-C``, no VRRP in this process): vrrp_notify_fifo is not this process's."""
    def spec(path, script):
        if path is None:
            return None
        return FifoSpec(path, _command(script, global_defs, refused))
    gd = global_defs
    return FifoSettings(notify=spec(gd.notify_fifo, gd.notify_fifo_script),
                        vrrp=spec(gd.vrrp_notify_fifo, gd.vrrp_notify_fifo_script) if vrrp else None,
                        lvs=spec(gd.lvs_notify_fifo, gd.lvs_notify_fifo_script))


def fifo_line(kind: Kind, name: str, state: str, priority: int) -> str:
    """keepalived's VRRP FIFO line: ``INSTANCE "VI_1" MASTER 150\\n`` (groups: priority 0)."""
    return f'{kind} "{name}" {state} {priority}\n'


class NotifyFifo:
    """One notify FIFO, written without ever blocking."""

    def __init__(self, spec: FifoSpec) -> None:
        self.spec = spec
        self.fd: int | None = None
        self.created = False
        self.problem: str | None = None
        self.counters: Counter[str] = Counter()

    def open(self) -> str | None:
        """Create (if missing) and open the FIFO; None, or why it cannot be used."""
        path = self.spec.path
        try:
            os.mkfifo(path, FIFO_MODE)
            self.created = True
        except FileExistsError:
            pass
        except OSError as exc:
            return self._fail(f"cannot create notify fifo {path}: {_why(exc)}")
        if self.created and (self.spec.user is not None or self.spec.group is not None):
            try:
                shutil.chown(path, self.spec.user, self.spec.group)
            except (OSError, LookupError) as exc:
                self.problem = f"cannot set the owner of notify fifo {path}: {_why(exc)}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            self._unlink()
            return self._fail(f"cannot open notify fifo {path}: {_why(exc)}")
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            return self._fail(f"notify fifo {path} is not a fifo; not using it")
        self.fd = fd
        return None

    def write(self, line: str) -> bool:
        """Write one line (<= PIPE_BUF, so all or nothing); False when it was dropped."""
        if self.fd is None:
            self.counters["dropped"] += 1
            return False
        try:
            os.write(self.fd, line.encode())
        except BlockingIOError:
            self.counters["dropped"] += 1  # nobody reads and the pipe is full
            return False
        except OSError:
            self.counters["errors"] += 1
            return False
        self.counters["written"] += 1
        return True

    def close(self) -> None:
        self._unlink()  # first, so a reader looping on re-open cannot re-open it
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _unlink(self) -> None:
        if self.created:
            try:
                os.unlink(self.spec.path)
            except OSError:
                pass
            self.created = False

    def _fail(self, problem: str) -> str:
        self.problem = problem
        self.counters["open_failures"] += 1
        return problem

    def snapshot(self) -> dict:
        return {"path": self.spec.path, "open": self.fd is not None, "problem": self.problem,
                "counters": dict(self.counters)}


@dataclass(slots=True)
class _Job:
    what: str  # "STATE" or the event, for the log
    commands: list[Command] = field(default_factory=list)
    timeout: float = NOTIFY_TIMEOUT


class Notifier:
    """The notify subsystem (see the module docstring). ``run()`` opens the FIFOs and starts their
    reader scripts; ``transition()``/``event()``/``lvs()`` may be called at any time."""

    name = "notify"

    def __init__(self, fifos: FifoSettings, *, runner: ScriptRunner | None = None, log=None, mailer=None,
                 table: NotifyTable | None = None, timeout: float = NOTIFY_TIMEOUT, stop_timeout: float = STOP_TIMEOUT,
                 drain_limit: float = DRAIN_LIMIT, queue_limit: int = QUEUE_LIMIT, vrrp: bool = True) -> None:
        self.settings = fifos
        self.vrrp = vrrp  # False with -C: only the checkers' FIFO lines, no VRRP scripts, FIFO or mail
        self.table = table or NotifyTable()
        self.runner = runner or ScriptRunner()
        self.log = log
        self.mailer = mailer  # smtp.Mailer, or None when no mail can be sent
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self.drain_limit = drain_limit
        self.queue_limit = queue_limit
        self.counters: Counter[str] = Counter()
        self._fifos: dict[str, NotifyFifo] = {}  # "notify", "vrrp", "lvs" → open FIFO
        self._queues: dict[tuple[str, str], deque[_Job]] = {}
        self._busy: set[tuple[str, str]] = set()
        self._shields: set[anyio.CancelScope] = set()  # of the running drains: at stop they get the drain time
        self._stop_deadline: float | None = None
        self._tg = None
        self._last: dict[tuple[str, str], dict] = {}  # last script outcome per instance/group

    @classmethod
    def for_config(cls, config, log=None, *, vrrp: bool = True) -> Notifier:
        """The notifier the daemon runs: the config's FIFOs, scripts and mail settings. ``vrrp=False``
        (``-C``): only notify_fifo and lvs_notify_fifo, for the checkers' lines; no VRRP script or mail."""
        gd = config.global_defs
        mail = smtp_settings(gd) if vrrp else None
        table = notify_table(config) if vrrp else NotifyTable()
        refused = list(table.refused)
        fifos = fifo_settings(gd, refused, vrrp=vrrp)
        return cls(fifos, log=log, mailer=Mailer(mail, log=log) if mail is not None else None,
                   table=replace(table, refused=tuple(refused)), vrrp=vrrp)

    # -- the API for the VRRP (and LVS) subsystems ---------------------------------------------

    def notify_state(self, kind: Kind, name: str, state: str, priority: int) -> None:
        """``NotifySink``: a state change of an instance or group, with the scripts the config gives it."""
        self.transition(kind, name, state, priority, self.table.scripts.get((kind, name)))

    def notify_event(self, name: str, event: str, priority: int) -> None:
        """``NotifySink``: MASTER_RX_LOWER_PRI (always; with notify_master_rx_lower_pri if configured), or
        MASTER_PRIORITY/BACKUP_PRIORITY for an instance with notify_priority_changes."""
        if event == "MASTER_RX_LOWER_PRI":
            scripts = self.table.scripts.get(("INSTANCE", name))
            self.event(name, event, priority, scripts.master_rx_lower_pri if scripts is not None else None)
        elif name in self.table.priority_changes:
            self.event(name, event, priority)

    def transition(self, kind: Kind, name: str, new_state: str, priority: int,
                   scripts: NotifyScripts | None) -> None:
        """Report a state change (never blocks): FIFO line now, scripts queued in order."""
        state = new_state
        if state == "DELETED" and not (scripts is not None and scripts.notify_deleted):
            state = "FAULT"
        prio = priority if kind == "INSTANCE" else 0
        self._vrrp_line(fifo_line(kind, name, state, prio))
        self.counters["transitions"] += 1
        if scripts is None:
            return
        if scripts.smtp_alert and self.mailer is not None:
            self.mailer.state_alert(kind, name, state)
        job = _Job(state, timeout=self.stop_timeout if state == "STOP" else self.timeout)
        specific = scripts.for_state(state)
        if specific is not None:
            job.commands.append(specific)
        if scripts.generic is not None:
            job.commands.append(scripts.generic.with_args(kind, name, state, str(prio)))
        if job.commands:
            self._enqueue((kind, name), job)

    def event(self, name: str, event: str, priority: int, script: Command | None = None) -> None:
        """An instance event that is not a state change: ``MASTER_RX_LOWER_PRI`` (runs
        notify_master_rx_lower_pri, if given, with its own arguments only), or with
        notify_priority_changes ``MASTER_PRIORITY``/``BACKUP_PRIORITY`` (FIFO only)."""
        self._vrrp_line(fifo_line("INSTANCE", name, event, priority))
        self.counters["events"] += 1
        if script is not None:
            self._enqueue(("INSTANCE", name), _Job(event, [script], self.timeout))

    def lvs(self, line: str) -> None:
        """A checker line (``VS [..]:tcp:80 UP``, ``RS [..]:tcp:80 [..]:tcp:80 DOWN``) for the LVS FIFOs."""
        for key in ("notify", "lvs"):
            fifo = self._fifos.get(key)
            if fifo is not None:
                fifo.write(line if line.endswith("\n") else line + "\n")

    # -- Subsystem life cycle -----------------------------------------------------------------

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        # The queues run in a task group of their own, each drain shielded: at stop a script that is
        # running finishes (within the drain time) instead of being killed, and what is queued runs after it.
        try:
            async with anyio.create_task_group() as drains:
                self._tg = drains
                try:
                    async with anyio.create_task_group() as tg:
                        for line in self.table.refused:
                            self._warn(line)
                        self._open_fifos(tg)
                        if self.mailer is not None:
                            tg.start_soon(self.mailer.run)
                        for key, queue in self._queues.items():  # queued before we started
                            if queue and key not in self._busy:
                                self._start(key)
                        task_status.started()
                        await anyio.sleep_forever()
                finally:
                    self._stopping(drains)
        finally:
            self._tg = None
            dropped = sum(len(q) for q in self._queues.values())
            if dropped:
                self.counters["dropped_at_stop"] += dropped
                self._warn(f"notify: {dropped} queued notification(s) not run at stop")
            for fifo in self._fifos.values():
                fifo.close()

    def _open_fifos(self, tg) -> None:
        for key in ("notify", "vrrp", "lvs"):
            spec = getattr(self.settings, key)
            if spec is None:
                continue
            fifo = NotifyFifo(spec)
            problem = fifo.open()
            if problem is not None:
                self._warn(problem)
                continue
            self._fifos[key] = fifo
            if spec.script is not None:
                tg.start_soon(self._fifo_reader, fifo, spec.script.with_args(spec.path))

    def _stopping(self, drains) -> None:
        """The drain time starts: running and queued notifications (and mails) get that long."""
        self._stop_deadline = anyio.current_time() + self.drain_limit
        for scope in self._shields:
            scope.deadline = self._stop_deadline
        if self.mailer is not None:  # the mails queued so far (the STOP ones) still go
            self.mailer.close()
            drains.start_soon(self._shielded, self.mailer.run)

    async def _shielded(self, work) -> None:
        """Run ``work`` through a stop of this subsystem, but not past the drain time once it stops."""
        with anyio.CancelScope(shield=True) as scope:
            if self._stop_deadline is not None:
                scope.deadline = self._stop_deadline
            self._shields.add(scope)
            try:
                await work()
            finally:
                self._shields.discard(scope)

    async def reconfigure(self, config) -> str | None:
        """The new scripts apply from the next notification (an instance or group the reload removed keeps its
        old ones, for its DELETED notification); new FIFO settings need a restart of this subsystem."""
        table = notify_table(config) if self.vrrp else NotifyTable()
        self.table = NotifyTable({**self.table.scripts, **table.scripts}, table.priority_changes)
        new = fifo_settings(config.global_defs, vrrp=self.vrrp)  # as for_config: -C has no VRRP FIFO
        return None if new == self.settings else "notify FIFO settings changed; restart the notify subsystem"

    def snapshot(self) -> dict:
        return {
            "counters": dict(self.counters),
            "runner": self.runner.snapshot(),
            "smtp": self.mailer.snapshot() if self.mailer is not None else None,
            "fifos": {key: fifo.snapshot() for key, fifo in self._fifos.items()},
            "pending": {f"{k} {n}": len(q) for (k, n), q in self._queues.items() if q},
            "last": {f"{k} {n}": v for (k, n), v in self._last.items()},
        }

    # -- internals ------------------------------------------------------------------------------

    def _vrrp_line(self, line: str) -> None:
        for key in ("notify", "vrrp"):
            fifo = self._fifos.get(key)
            if fifo is not None and not fifo.write(line):
                self.counters["fifo_dropped"] += 1

    def _enqueue(self, key: tuple[str, str], job: _Job) -> None:
        queue = self._queues.setdefault(key, deque())
        if len(queue) >= self.queue_limit:
            self.counters["queue_full_dropped"] += 1
            self._warn(f"notify: {key[0]} {key[1]}: {len(queue)} notifications pending; dropping {job.what}")
            return
        queue.append(job)
        self.counters["queued"] += 1
        if self._tg is not None and key not in self._busy:
            self._start(key)

    def _start(self, key: tuple[str, str]) -> None:
        self._busy.add(key)
        self._tg.start_soon(self._shielded, functools.partial(self._drain, key), name=f"notify {key[0]} {key[1]}")

    async def _drain(self, key: tuple[str, str]) -> None:
        try:
            queue = self._queues[key]
            while queue:
                await anyio.lowlevel.checkpoint()  # cancelled before starting: the job stays queued
                job = queue.popleft()
                for command in job.commands:
                    outcome = await self.runner.run_command(command, timeout=job.timeout)
                    self.counters["scripts_" + outcome.result] += 1
                    self._last[key] = {"state": job.what, "argv": list(command.argv), "result": outcome.describe()}
                    if not outcome.ok:
                        self._warn(f"notify script for {key[0]} {key[1]} {job.what} {outcome.describe()}",
                                   argv=list(command.argv), output=outcome.output_text())
        finally:
            self._busy.discard(key)

    async def _fifo_reader(self, fifo: NotifyFifo, command: Command) -> None:
        outcome = await self.runner.run_command(command, timeout=None)
        self.counters["fifo_script_exits"] += 1
        self._warn(f"notify fifo script for {fifo.spec.path} exited: {outcome.describe()}",
                   argv=list(command.argv), output=outcome.output_text())

    def _warn(self, text: str, **fields) -> None:
        if self.log is not None:
            self.log.warning(text, **fields)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.strerror} (errno {errno.errorcode.get(exc.errno, exc.errno)})"
    return str(exc)


__all__ = ["Notifier", "NotifyScripts", "NotifyFifo", "FifoSettings", "FifoSpec", "fifo_line", "fifo_settings",
           "instance_notify_scripts", "group_notify_scripts", "STATES", "EVENTS"]
