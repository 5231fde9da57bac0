"""The trackers subsystem: vrrp_script, track_interface, track_file and vrrp_track_process, feeding
FAULT reasons and priority deltas to the VRRP subsystem through its ``TrackSink``.

* **vrrp_script** — each script runs once per ``interval`` however many instances track it, never
  twice at once (a run still going at the next tick skips that tick, counted and logged like
  keepalived's "skipping run"), killed at ``timeout``. The first runs are spread over the first
  second (script i of n starts at i/n × min(interval, 1 s)) so a config with many scripts does not
  fork them all at once; after that each keeps its own period. Results go through the rise/fall
  hysteresis of ``core.tracking.ScriptResult``; until the first result an unweighted tracker keeps
  its instance in FAULT with the reason "no result yet" (keepalived holds the instance in INIT).
  An unused vrrp_script is not run ("Warning - script NAME is not used").
* **track_interface** — link events from the kernel (``LinkMonitor``), after an initial read of
  each tracked interface. Up means IFF_UP and IFF_RUNNING; a deleted interface is down.
* **track_file** — read at start (after ``init_file``), then on every inotify event for the file's
  directory (close after write, delete, move in or out), as keepalived; a file that goes away
  reads as 0. If inotify cannot be set up, the files are polled every second.
* **vrrp_track_process** — a /proc scan at start, then the kernel's process-events connector
  (fork, exec, name change, exit). Where the connector is unavailable (any network namespace but
  the initial one, no CAP_NET_ADMIN) the trackers scan /proc every second instead; the snapshot
  says which source is in use.
* **track_bfd** is accepted and ignored (BFD is not supported yet); it is logged once.

Which instance tracks what, with which weight, comes from the config through the adapter functions
``tracked_scripts`` / ``tracked_interfaces`` / ``tracked_files`` / ``tracked_processes`` (the only
code that reads the model's track_* fields). Sync-group tracking applies to every member; an
instance's own unweighted entry wins over its group's for the same object, as in keepalived.
"""

from __future__ import annotations

import math
import os
import stat
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from pyvrrpd.core.tracking import (
    COMM_LEN,
    Delta,
    Fact,
    Fault,
    ProcessQuorum,
    ScriptResult,
    Tracker,
    file_facts,
    parse_file_value,
    process_matches,
    source_name,
    updown_facts,
)
from pyvrrpd.daemon import watchers
from pyvrrpd.daemon.ratelimit import RateLimit
from pyvrrpd.daemon.scripts import Command, Outcome, ScriptRunner, command_from_config

SECOND = 1_000_000
SPREAD = 1.0  # seconds over which the first runs of the scripts are spread
RETRY = 1.0  # seconds before reopening a failed link monitor or process connector
POLL = 1.0  # seconds between polls when inotify or the process connector is unavailable
HONOR_INIT_FAIL = False  # keepalived 2.2.7 ignores init_fail on a tracked script (verified); see ScriptResult


class TrackSink(Protocol):
    """What the trackers feed (the VRRP subsystem implements it)."""

    def set_fault(self, instance: str, source: str, reason: str | None) -> None: ...

    def set_priority_delta(self, instance: str, source: str, delta: int) -> None: ...


# --------------------------------------------------------------------------- config adapters

_TRACK_FIELDS = {"script": "track_scripts", "interface": "track_interfaces", "file": "track_files",
                 "process": "track_processes", "bfd": "track_bfds"}


def _tracks_of(obj, kind: str) -> tuple:
    """The one read of a vrrp_instance's or vrrp_sync_group's track_* entries (name, weight, reverse)."""
    return getattr(obj, _TRACK_FIELDS[kind])


def _trackers(config, kind: str) -> dict[str, tuple[Tracker, ...]]:
    out: dict[str, dict[str, Tracker]] = {}
    for inst in config.instances:
        for t in _tracks_of(inst, kind):
            out.setdefault(t.name, {})[inst.name] = Tracker(inst.name, t.weight, t.reverse)
    for group in config.sync_groups:
        for t in _tracks_of(group, kind):
            for member in group.members:
                own = out.setdefault(t.name, {}).get(member)
                if own is not None and own.weight == 0:
                    continue  # the instance's unweighted entry wins
                out[t.name][member] = Tracker(member, t.weight, t.reverse)
    return {name: tuple(by_instance.values()) for name, by_instance in out.items()}


def tracked_scripts(config) -> dict[str, tuple[Tracker, ...]]:
    """vrrp_script name → the instances tracking it (track_script of instances and sync groups)."""
    return _trackers(config, "script")


def tracked_interfaces(config) -> dict[str, tuple[Tracker, ...]]:
    """Interface name → the instances tracking it (track_interface)."""
    return _trackers(config, "interface")


def tracked_files(config) -> dict[str, tuple[Tracker, ...]]:
    """track_file name → the instances tracking it."""
    return _trackers(config, "file")


def tracked_processes(config) -> dict[str, tuple[Tracker, ...]]:
    """vrrp_track_process name → the instances tracking it."""
    return _trackers(config, "process")


def tracked_bfds(config) -> dict[str, tuple[Tracker, ...]]:
    return _trackers(config, "bfd")


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class ScriptPlan:
    name: str
    command: Command
    interval: float
    timeout: float
    rise: int
    fall: int
    init_fail: bool
    trackers: tuple[Tracker, ...]

    def identity(self) -> tuple:
        """What must stay the same for a reload to keep the script's result."""
        return (self.command, self.rise, self.fall)


@dataclass(frozen=True, slots=True)
class FilePlan:
    name: str
    path: str
    init_value: int | None
    init_overwrite: bool
    trackers: tuple[Tracker, ...]


@dataclass(frozen=True, slots=True)
class ProcessPlan:
    name: str
    process: str
    params: tuple[str, ...]
    param_match: str | None
    full_command: bool
    quorum: int
    quorum_max: int | None
    fork_delay: float
    terminate_delay: float
    trackers: tuple[Tracker, ...]

    def matches(self, info: watchers.ProcInfo) -> bool:
        return process_matches(self.process, self.params, self.param_match, self.full_command, info.comm, info.argv)


@dataclass(frozen=True, slots=True)
class TrackingPlan:
    scripts: dict[str, ScriptPlan] = field(default_factory=dict)
    interfaces: dict[str, tuple[Tracker, ...]] = field(default_factory=dict)
    files: dict[str, FilePlan] = field(default_factory=dict)
    processes: dict[str, ProcessPlan] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # log lines about what is not tracked and why


def plan_tracking(config) -> TrackingPlan:
    """What to track for ``config``: only objects some instance or sync group tracks."""
    gd = config.global_defs
    notes: list[str] = []
    by_script = tracked_scripts(config)
    scripts = {}
    for vs in config.vrrp_scripts:
        trackers = by_script.get(vs.name)
        if not trackers:
            notes.append(f"Warning - script {vs.name} is not used")
            continue
        scripts[vs.name] = ScriptPlan(
            vs.name, command_from_config(vs.script, gd), vs.interval_us / SECOND, vs.timeout_us / SECOND,
            vs.rise, vs.fall, vs.init_fail and HONOR_INIT_FAIL, trackers)
    by_file = tracked_files(config)
    files = {tf.name: FilePlan(tf.name, tf.path, tf.init_value, tf.init_overwrite, by_file[tf.name])
             for tf in config.track_files if by_file.get(tf.name)}
    by_process = tracked_processes(config)
    processes = {}
    for tp in config.track_processes:
        trackers = by_process.get(tp.name)
        if not trackers:
            continue
        if not tp.full_command and len(tp.process) > COMM_LEN:
            notes.append(f"vrrp_track_process {tp.name}: process name {tp.process} is longer than the kernel's "
                         f"{COMM_LEN}-character process name, so it never matches; use full_command")
        processes[tp.name] = ProcessPlan(
            tp.name, tp.process, tuple(tp.params), tp.param_match, tp.full_command, tp.quorum, tp.quorum_max,
            tp.fork_delay_us / SECOND, tp.terminate_delay_us / SECOND, trackers)
    for name in tracked_bfds(config):
        notes.append(f"track_bfd {name}: BFD is not supported yet; not tracked")
    return TrackingPlan(scripts, tracked_interfaces(config), files, processes, tuple(notes))


# --------------------------------------------------------------------------- link events


class LinkWatch(Protocol):
    initial: dict[str, bool | None]  # tracked interface → up (IFF_UP and IFF_RUNNING), None if missing

    def __aiter__(self) -> AsyncIterator[tuple[str, bool | None]]: ...


class LinkSource(Protocol):
    def watch(self, names: Collection[str]):  # -> AsyncContextManager[LinkWatch]
        ...


class NetlinkLinks:
    """The production LinkSource: pyroute2's LinkMonitor for events, Netlink.interface() for the
    initial state (read after subscribing, so no change falls in between). asyncio only."""

    @asynccontextmanager
    async def watch(self, names: Collection[str]):
        from pyvrrpd.net.errors import NetError
        from pyvrrpd.net.netlink import LinkEvent, LinkMonitor, Netlink

        async with LinkMonitor() as monitor:
            initial: dict[str, bool | None] = {}
            async with Netlink() as nl:
                for name in names:
                    try:
                        iface = await nl.interface(name)
                    except NetError:
                        initial[name] = None
                    else:
                        initial[name] = iface.up and iface.running

            class Watch:
                def __init__(self) -> None:
                    self.initial = initial

                async def __aiter__(self):
                    async for event in monitor:
                        if not isinstance(event, LinkEvent):
                            continue
                        if event.kind == "deleted":
                            yield event.name, None
                        elif event.kind == "renamed":
                            yield event.old_name, None
                            yield event.name, event.up
                        else:
                            yield event.name, event.up

            yield Watch()


# --------------------------------------------------------------------------- runtime state


@dataclass(slots=True)
class ScriptState:
    plan: ScriptPlan
    result: ScriptResult
    last: Outcome | None = None
    last_run: float | None = None
    last_status: int | None = None
    counters: Counter = field(default_factory=Counter)


@dataclass(slots=True)
class FileState:
    plan: FilePlan
    path: str | None = None  # resolved; None when the file is not tracked (bad directory)
    value: int = 0
    last_read: float | None = None
    signature: tuple | None = None  # for polling: (inode, size, mtime) or None when missing
    counters: Counter = field(default_factory=Counter)


@dataclass(slots=True)
class ProcessState:
    plan: ProcessPlan
    quorum: ProcessQuorum
    pids: set[int] = field(default_factory=set)


class _Quiet:
    def __getattr__(self, level):
        return lambda event, **fields: None


# --------------------------------------------------------------------------- the subsystem


class Trackers:
    """The trackers subsystem (Subsystem: run / reconfigure / snapshot)."""

    name = "trackers"

    def __init__(self, config, sink: TrackSink, *, runner: ScriptRunner | None = None,
                 links: LinkSource | None = None, log=None, spread: float = SPREAD,
                 inotify: bool = True, connector: bool = True,
                 scan: Callable[..., dict[int, watchers.ProcInfo]] = watchers.scan_processes,
                 read_process: Callable[..., watchers.ProcInfo | None] = watchers.read_process) -> None:
        self.plan = plan_tracking(config)
        self.sink = sink
        self.runner = runner or ScriptRunner()
        self.link_source: LinkSource = links or NetlinkLinks()
        self.log = log or _Quiet()
        self.spread = spread
        self.use_inotify = inotify
        self.use_connector = connector
        self._scan = scan
        self._read_process = read_process
        self.counters: Counter[str] = Counter()
        self._sent: dict[tuple[str, str, str], object] = {}
        self._touched: set[tuple[str, str, str]] | None = None
        self._scripts: dict[str, ScriptState] = {}
        self._links: dict[str, bool | None] = {}
        self._files: dict[str, FileState] = {}
        self._processes: dict[str, ProcessState] = {}
        self._file_watch = "none"
        self._process_source = "none"
        self._restart = anyio.Event()
        self._proc_wake = anyio.Event()
        self._reload = False
        self._cannot_run = RateLimit(60.0, clock=anyio.current_time)

    # -- Subsystem -------------------------------------------------------------------------------

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            self._restart = anyio.Event()
            async with anyio.create_task_group() as tg:
                for note in self.plan.notes:
                    self.log.warning(note)
                self._touched = set()
                await self._start(tg)
                for key in set(self._sent) - self._touched:  # tracked before a reload, not now
                    self._clear(key)
                self._touched = None
                if not started:
                    started = True
                    task_status.started()
                await self._restart.wait()
                tg.cancel_scope.cancel()
            self._reload = True

    async def reconfigure(self, config) -> str | None:
        self.plan = plan_tracking(config)
        self._restart.set()
        return None

    def snapshot(self) -> dict:
        def script(st: ScriptState) -> dict:
            return {"state": {True: "up", False: "down", None: "unknown"}[st.result.up],
                    "last_result": st.last.describe() if st.last else None,
                    "last_output": st.last.output_text() if st.last and not st.last.ok else None,
                    "last_run": st.last_run, "interval": st.plan.interval, "timeout": st.plan.timeout,
                    "rise": st.plan.rise, "fall": st.plan.fall, "counter": st.result.count,
                    "tracked_by": [t.instance for t in st.plan.trackers], "counters": dict(st.counters)}

        return {
            "scripts": {name: script(st) for name, st in self._scripts.items()},
            "interfaces": {name: {True: "up", False: "down", None: "gone"}[self._links[name]]
                           if name in self._links else "unknown" for name in self.plan.interfaces},
            "files": {name: {"path": st.path, "value": st.value, "last_read": st.last_read,
                             "counters": dict(st.counters)} for name, st in self._files.items()},
            "file_watch": self._file_watch,
            "processes": {name: {"count": len(st.pids), "up": st.quorum.up, "pids": sorted(st.pids),
                                 "pending_change_at": st.quorum.get_timer()}
                          for name, st in self._processes.items()},
            "process_source": self._process_source,
            "counters": dict(self.counters),
            "runner": self.runner.snapshot(),
        }

    # -- start-up ---------------------------------------------------------------------------------

    async def _start(self, tg) -> None:
        plan = self.plan
        old = self._scripts
        self._scripts = {}
        for name, sp in plan.scripts.items():
            st = old.get(name)
            if st is None or st.plan.identity() != sp.identity():
                st = ScriptState(sp, ScriptResult(sp.rise, sp.fall, init_fail=sp.init_fail))
            st.plan = sp
            self._scripts[name] = st
        ordered = sorted(self._scripts.values(), key=lambda s: s.plan.name)
        for i, st in enumerate(ordered):
            self._emit(self._script_facts(st))
            offset = i / len(ordered) * min(st.plan.interval, self.spread)
            tg.start_soon(self._script_loop, st, offset, name=f"vrrp_script {st.plan.name}")
        if plan.files:
            self._start_files()
            tg.start_soon(self._watch_files, name="track files")
        if plan.interfaces:
            await tg.start(self._watch_links, name="tracked interfaces")
        if plan.processes:
            await tg.start(self._watch_processes, name="tracked processes")

    # -- facts --------------------------------------------------------------------------------------

    def _emit(self, facts: Iterable[Fact]) -> None:
        for fact in facts:
            if isinstance(fact, Fault):
                key, value = (fact.instance, fact.source, "fault"), fact.reason
            else:
                key, value = (fact.instance, fact.source, "delta"), fact.delta
            if self._touched is not None:
                self._touched.add(key)
            if key in self._sent and self._sent[key] == value:
                continue
            self._sent[key] = value
            self.counters["facts"] += 1
            if isinstance(fact, Fault):
                self.sink.set_fault(fact.instance, fact.source, fact.reason)
            else:
                self.sink.set_priority_delta(fact.instance, fact.source, fact.delta)

    def _clear(self, key: tuple[str, str, str]) -> None:
        instance, source, kind = key
        value = self._sent.pop(key)
        if kind == "fault" and value is not None:
            self.sink.set_fault(instance, source, None)
        elif kind == "delta" and value:
            self.sink.set_priority_delta(instance, source, 0)

    # -- scripts ------------------------------------------------------------------------------------

    def _script_facts(self, st: ScriptState) -> list[Fact]:
        name = st.plan.name
        return updown_facts(source_name("script", name), st.result.up, st.plan.trackers,
                            down_reason=f"VRRP_Script({name}) failed", up_reason=f"VRRP_Script({name}) succeeded",
                            pending_reason=f"VRRP_Script({name}) has no result yet")

    async def _script_loop(self, st: ScriptState, offset: float) -> None:
        await anyio.sleep(offset)
        due = anyio.current_time()
        interval = st.plan.interval
        while True:
            st.last_run = anyio.current_time()
            st.counters["runs"] += 1
            outcome = await self.runner.run_command(st.plan.command, timeout=st.plan.timeout)
            self._script_outcome(st, outcome)
            due += interval
            now = anyio.current_time()
            if now > due:
                missed = math.ceil((now - due) / interval)
                due += missed * interval
                st.counters["skipped"] += missed
                self.log.info(f"Track script {st.plan.name} is already running, expect idle - skipping run")
            await anyio.sleep_until(due)

    def _script_outcome(self, st: ScriptState, outcome: Outcome) -> None:
        name = st.plan.name
        st.last = outcome
        st.counters[outcome.result] += 1
        if outcome.error is not None:
            st.counters["cannot_run"] += 1
            n = self._cannot_run(name)
            if n:
                self.log.warning(f"VRRP_Script({name}) cannot run: {outcome.error}", script=name, times=n)
        if outcome.status is not None and outcome.status != st.last_status:
            self.log.info(f"Script `{name}` now returning {outcome.status}")
            st.last_status = outcome.status
        if st.result.record(outcome.ok):
            fields = {"output": outcome.output_text()} if not outcome.ok and outcome.output else {}
            self.log.info(f"VRRP_Script({name}) {outcome.describe()}", **fields)
            self._emit(self._script_facts(st))

    # -- interfaces ----------------------------------------------------------------------------------

    async def _watch_links(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        names = set(self.plan.interfaces)
        started = False
        while True:
            try:
                async with self.link_source.watch(names) as watch:
                    for name in sorted(names):
                        self._link(name, watch.initial.get(name), initial=True)
                    if not started:
                        started = True
                        task_status.started()
                    async for name, up in watch:
                        if name in names:
                            self._link(name, up)
            except Exception as exc:  # NetError, OSError: the monitor failed or lost events
                self.counters["link_monitor_errors"] += 1
                self.log.warning(f"tracked interfaces: link monitor failed ({exc}); reopening", error=str(exc))
            if not started:  # keep what was known before a reload until the monitor works again
                for name in sorted(names & set(self._links)):
                    self._link(name, self._links[name], initial=True)
                started = True
                task_status.started()
            await anyio.sleep(RETRY)

    def _link(self, name: str, up: bool | None, initial: bool = False) -> None:
        """A tracked interface's state; ``initial``: read at (re)start, facts sent even if unchanged."""
        known = name in self._links
        changed = not known or self._links[name] != up
        if not changed and not initial:
            return
        self._links[name] = up
        if changed and (known or not up):
            self.log.info(f"Interface {name} deleted" if up is None else f"Netlink reports {name} {'up' if up else 'down'}")
        if changed and not initial:
            self.counters["link_changes"] += 1
        state = "gone" if up is None else "down"
        self._emit(updown_facts(source_name("link", name), bool(up), self.plan.interfaces[name],
                                down_reason=f"tracked interface {name} is {state}",
                                up_reason=f"tracked interface {name} is up (reverse)"))

    # -- files ---------------------------------------------------------------------------------------

    def _start_files(self) -> None:
        old = self._files
        self._files = {}
        for name, fp in self.plan.files.items():
            st = FileState(fp)
            prev = old.get(name)
            if prev is not None and prev.plan.path == fp.path:
                st.value = prev.value
            self._init_file(fp)
            st.path = self._resolve(fp)
            self._files[name] = st
            if st.path is not None:
                self._read_file(st, initial=True)

    def _init_file(self, fp: FilePlan) -> None:
        """init_file [VALUE] [overwrite]: write VALUE if the file is missing, or always with
        overwrite — except that a reload never overwrites an existing file."""
        if fp.init_value is None:
            return
        try:
            st = os.stat(fp.path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            self.log.warning(f"Unable to initialise track file {fp.name}: {exc.strerror}")
            return
        if st is not None:
            if not fp.init_overwrite or self._reload:
                return
            if not stat.S_ISREG(st.st_mode):
                self.log.warning(f"Cannot initialise track file {fp.name} - it is not a regular file")
                return
        try:
            with open(fp.path, "w") as f:
                f.write(f"{fp.init_value}\n")
        except OSError as exc:
            self.log.warning(f"Unable to initialise track file {fp.name}: {exc.strerror}")

    def _resolve(self, fp: FilePlan) -> str | None:
        path = os.path.realpath(fp.path) if os.path.exists(fp.path) else None
        if path is not None:
            return path
        directory = os.path.dirname(fp.path) or "."
        if not os.path.isdir(directory):
            self.log.warning(f"Track file directory for {fp.name} does not exist - removing")
            self.counters["files_removed"] += 1
            return None
        return os.path.join(os.path.realpath(directory), os.path.basename(fp.path))

    def _read_file(self, st: FileState, *, initial: bool = False, gone: bool = False) -> None:
        st.last_read = anyio.current_time()
        st.counters["reads"] += 1
        value = 0 if gone else parse_file_value(watchers.read_track_file(st.path))
        if value is None:
            st.counters["invalid"] += 1
            self.log.warning(f"Invalid number read from {st.path} - ignoring", file=st.plan.name)
            if not initial:
                return
            value = st.value
        if value == st.value and not initial:
            return
        st.value = value
        self._emit(file_facts(source_name("file", st.plan.name), value, st.plan.trackers, name=st.plan.name))

    async def _watch_files(self) -> None:
        tracked = [st for st in self._files.values() if st.path is not None]
        if not tracked:
            return
        notify = None
        if self.use_inotify:
            try:
                notify = watchers.Inotify()
                by_wd: dict[int, list[FileState]] = {}
                for st in tracked:
                    by_wd.setdefault(notify.add_watch(os.path.dirname(st.path)), []).append(st)
            except OSError as exc:
                if notify is not None:
                    notify.close()
                notify = None
                self.log.warning(f"track files: inotify unavailable ({exc.strerror or exc}); polling every {POLL:g} s")
        if notify is None:
            self._file_watch = "poll"
            await self._poll_files(tracked)
            return
        self._file_watch = "inotify"
        try:
            while True:
                for event in await notify.events():
                    if event.mask & watchers.IN_Q_OVERFLOW:
                        self.counters["inotify_overflows"] += 1
                        for st in tracked:
                            self._read_file(st, gone=not os.path.exists(st.path))
                        continue
                    if event.mask & watchers.IN_ISDIR:
                        continue
                    for st in by_wd.get(event.wd, ()):
                        if os.path.basename(st.path) != event.name:
                            continue
                        if event.mask & (watchers.IN_MOVED_FROM | watchers.IN_DELETE):
                            self._read_file(st, gone=True)
                        elif event.mask & (watchers.IN_CLOSE_WRITE | watchers.IN_MOVED_TO):
                            self._read_file(st)
        finally:
            notify.close()

    async def _poll_files(self, tracked: list[FileState]) -> None:
        for st in tracked:
            st.signature = _signature(st.path)
        while True:
            await anyio.sleep(POLL)
            for st in tracked:
                sig = _signature(st.path)
                if sig != st.signature:
                    st.signature = sig
                    self._read_file(st, gone=sig is None)

    # -- processes ----------------------------------------------------------------------------------

    async def _watch_processes(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        plans = self.plan.processes
        old = self._processes
        self._processes = {}
        for name, pp in plans.items():
            q = ProcessQuorum(pp.quorum, pp.quorum_max, fork_delay=pp.fork_delay, terminate_delay=pp.terminate_delay)
            self._processes[name] = ProcessState(pp, q)
        cmdline = any(pp.full_command or pp.param_match is not None for pp in plans.values())
        connector = None
        if self.use_connector:
            connector = watchers.ProcConnector()
            try:
                connector.open()  # before the scan, so no change falls in between
            except OSError as exc:
                connector = None
                self.log.info(f"tracked processes: process events unavailable ({exc.strerror or exc}); "
                              f"scanning /proc every {POLL:g} s")
        self._process_source = "connector" if connector is not None else "scan"
        table = self._scan(cmdline=cmdline)
        for name, st in self._processes.items():
            st.pids = {pid for pid, info in table.items() if st.plan.matches(info)}
            st.quorum.start(len(st.pids))
            prev = old.get(name)
            if prev is None or prev.quorum.up != st.quorum.up:
                self._quorum_log(st)
            self._emit(self._process_facts(st))
        task_status.started()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._process_timers)
                if connector is not None:
                    await self._follow_connector(connector, cmdline)
                else:
                    await self._poll_processes(table, cmdline)
        finally:
            if connector is not None:
                connector.close()

    def _process_facts(self, st: ProcessState) -> list[Fact]:
        name = st.plan.name
        return updown_facts(source_name("process", name), st.quorum.up, st.plan.trackers,
                            down_reason=f"tracked process {name} has no quorum ({len(st.pids)} running)",
                            up_reason=f"tracked process {name} has quorum (reverse)")

    def _quorum_log(self, st: ProcessState) -> None:
        self.log.info(f"Quorum {'gained' if st.quorum.up else 'lost'} for tracked process {st.plan.name}")

    def _count(self, st: ProcessState, cause: str) -> None:
        if st.quorum.update(len(st.pids), anyio.current_time(), cause):
            self._quorum_log(st)
        elif st.quorum.get_timer() is not None:
            self._proc_wake.set()
        self._emit(self._process_facts(st))  # also when only the count in the reason changed

    async def _process_timers(self) -> None:
        while True:
            due = min((t for st in self._processes.values() if (t := st.quorum.get_timer()) is not None),
                      default=math.inf)
            with anyio.CancelScope(deadline=due):
                await self._proc_wake.wait()
            if self._proc_wake.is_set():
                self._proc_wake = anyio.Event()
            now = anyio.current_time()
            for st in self._processes.values():
                if st.quorum.handle_timer(now):
                    self._quorum_log(st)
                    self._emit(self._process_facts(st))

    async def _follow_connector(self, connector: watchers.ProcConnector, cmdline: bool) -> None:
        while True:
            try:
                events = await connector.events()
            except OSError as exc:  # ENOBUFS: events were lost; settle, then rescan
                self.counters["process_events_lost"] += 1
                self.log.warning(f"tracked processes: process events lost ({exc.strerror or exc}); rescanning /proc")
                await anyio.sleep(RETRY)
                self._rescan(self._scan(cmdline=cmdline))
                continue
            for event in events:
                self.counters["process_events"] += 1
                self._process_event(event, cmdline)

    def _process_event(self, event: watchers.ProcEvent, cmdline: bool) -> None:
        if event.kind == "exit":
            for st in self._processes.values():
                if event.pid in st.pids:
                    st.pids.discard(event.pid)
                    self._count(st, "exit")
            return
        if event.kind == "fork":
            for st in self._processes.values():  # a tracked process's child counts too (same name)
                if event.parent in st.pids and event.pid not in st.pids:
                    st.pids.add(event.pid)
                    self._count(st, "fork")
            return
        info = self._read_process(event.pid, cmdline=cmdline)  # exec or name change: look again
        for st in self._processes.values():
            now_matches = info is not None and st.plan.matches(info)
            if now_matches != (event.pid in st.pids):
                (st.pids.add if now_matches else st.pids.discard)(event.pid)
                self._count(st, "other")

    async def _poll_processes(self, table: dict[int, watchers.ProcInfo], cmdline: bool) -> None:
        while True:
            await anyio.sleep(POLL)
            self._rescan(self._scan(cmdline=cmdline))

    def _rescan(self, table: dict[int, watchers.ProcInfo]) -> None:
        for st in self._processes.values():
            matched = {pid for pid, info in table.items() if st.plan.matches(info)}
            if matched == st.pids:
                continue
            removed, added = st.pids - matched, matched - st.pids
            cause = "other"
            if len(matched) < len(st.pids) and any(pid not in table for pid in removed):
                cause = "exit"
            elif len(matched) > len(st.pids) and any(table[pid].ppid in st.pids for pid in added):
                cause = "fork"
            st.pids = matched
            self._count(st, cause)


def _signature(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


__all__ = ["Trackers", "TrackSink", "TrackingPlan", "plan_tracking", "tracked_scripts", "tracked_interfaces",
           "tracked_files", "tracked_processes", "NetlinkLinks", "Delta", "Fault"]
