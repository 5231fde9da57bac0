"""The daemon root: the process around the subsystems.

    pyvrrpd -f FILE  →  run_daemon(): load + verdict (the same check as --check-config), then Root.run()

The root owns what belongs to the process, and nothing else:

* the config: loaded at start (any error: the diagnostics on stderr, exit 1, nothing touched) and again on
  SIGHUP, in a worker thread so the event loop never waits for it;
* the signals: SIGTERM/SIGINT stop, SIGHUP reloads (SIGUSR1/SIGUSR2 are not handled yet);
* the pid file, written once the signal handlers are in place and removed on exit;
* the subsystems (``daemon/subsystem.py``): started one after the other in one task group, each in its
  own cancel scope, and stopped in reverse order, each one finished before the next is cancelled, so
  VRRP gives up its VIPs before the LVS rules behind them go (once there is an LVS subsystem);
* one read-only snapshot: process information plus every subsystem's own snapshot under its name.

A reload parses the file into a new model; with any error the running config stays and every diagnostic
is logged. Otherwise each subsystem is asked to ``reconfigure`` and applies the difference itself (VRRP:
``plan.diff_plans``); one that answers why not keeps its running config, and the root logs that.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from pyvrrpd import __version__, collector
from pyvrrpd.config import model
from pyvrrpd.config.diagnostics import Severity
from pyvrrpd.config.load import Loaded
from pyvrrpd.daemon import scheduling
from pyvrrpd.daemon.memory import release_free_memory
from pyvrrpd.daemon.subsystem import Subsystem, SubsystemError, TeeNotify
from pyvrrpd.observe import sdnotify

EXIT_OK = 0
EXIT_FAILURE = 1
PROCESS = "process"  # the snapshot's key for the root's own information
LOOP_LAG_LIMIT = 1.0  # s: an event loop this late is unhealthy (no WATCHDOG=1, /healthz 503)


def _dump_signals() -> dict:
    from pyvrrpd.observe import dumps

    return {signal.SIGUSR1: ("data", dumps.DATA_FILE, dumps.render_data),
            signal.SIGUSR2: ("stats", dumps.STATS_FILE, dumps.render_stats),
            signal.SIGRTMIN + 2: ("as json", dumps.JSON_FILE, dumps.render_json)}


DUMPS = _dump_signals()  # signal → (what, file name, renderer), as keepalived's SIGUSR1/SIGUSR2/SIGRTMIN+2


@dataclass(eq=False)
class _Entry:
    """One subsystem as the root runs it."""

    sub: Subsystem
    scope: anyio.CancelScope | None = None  # made when it is hosted (a scope needs the event loop)
    done: anyio.Event = field(default_factory=anyio.Event)
    hosted: bool = False  # its task exists
    started: bool = False  # it called task_status.started()


class _Status:
    """Forwards ``started()`` once; lets the root release a waiting ``tg.start()`` if the subsystem ends
    (stopped early, or failed) before it was ready."""

    def __init__(self, entry: _Entry, inner) -> None:
        self._entry, self._inner = entry, inner

    def started(self, value=None) -> None:
        if not self._entry.started:
            self._entry.started = True
            self._inner.started(value)


class Root:
    def __init__(self, config: model.Config, subsystems: Sequence[Subsystem], *, log,
                 load: Callable[[], Loaded], pid_file: str | None = None, config_file: str = "",
                 dump_dir: str | None = None) -> None:
        """``load`` loads and checks the config file again (for SIGHUP); it runs in a worker thread."""
        names = [sub.name for sub in subsystems]
        if len(set(names)) != len(names) or PROCESS in names:
            raise ValueError(f"subsystem names must be unique and not {PROCESS!r}: {names}")
        self.config = config
        self.log = log
        self.pid_file = pid_file
        self.config_file = config_file
        self._load = load
        self._entries = [_Entry(sub) for sub in subsystems]
        self._stop = anyio.Event()
        self._exit = EXIT_OK
        self._state = "starting"
        self._started_at: float | None = None
        self._tg = None
        self._reload_scope: anyio.CancelScope | None = None
        self._reload_again = False
        self._reloads: dict = {"requested": 0, "applied": 0, "refused": 0, "failed": 0, "last_result": None,
                               "last_time": None}
        self._loop_lag = 0.0
        self.dump_dir = dump_dir
        self.scheduling: dict = {}  # what pyvrrpd.daemon.scheduling applied, set by run_daemon

    # -- the process ------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or a subsystem fails); the exit status."""
        log = self.log
        self._started_at = time.time()
        log.info(f"Starting pyvrrpd v{__version__}", pid=os.getpid(), instances=len(self.config.instances))
        # Installed first: from here on SIGTERM/SIGINT mean "stop cleanly", never "die". The pid file
        # is written after it, so whoever waits for the pid file may signal at once.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP, *DUMPS) as signals:
            if not self._write_pid_file():
                return EXIT_FAILURE
            try:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    tg.start_soon(self._signals, signals, name="signals")
                    await self._run_subsystems()
                    tg.cancel_scope.cancel()  # the signal and watchdog tasks
            finally:
                self._remove_pid_file()
        log.info(f"Stopped pyvrrpd v{__version__}")
        return self._exit

    async def _run_subsystems(self) -> None:
        tg = self._tg
        for entry in self._entries:
            if self._stop.is_set():
                break
            entry.scope = anyio.CancelScope()
            entry.hosted = True
            await tg.start(self._host, entry, name=f"subsystem {entry.sub.name}")
        if not self._stop.is_set():
            self._state = "running"
            sdnotify.ready(self._status_line())
            interval = sdnotify.watchdog_interval()
            if interval is not None:
                tg.start_soon(self._watchdog, interval, name="watchdog")
            # What exists now (config model, plans, pyroute2, routers) lives as long as the daemon: keep it
            # out of the cyclic collector's sight, so no full collection rescans it between two adverts.
            collector.freeze()
            release_free_memory()  # what loading the config freed (bench/checkers.py: -1.5 MiB RSS)
        await self._stop.wait()
        self._state = "stopping"
        sdnotify.stopping()
        for entry in reversed(self._entries):
            if entry.hosted:
                entry.scope.cancel()
                await entry.done.wait()

    async def _host(self, entry: _Entry, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        sub = entry.sub
        try:
            with entry.scope:
                await sub.run(task_status=_Status(entry, task_status))
            if not entry.scope.cancel_called:
                self._fail(f"the {sub.name} subsystem stopped by itself")
        except SubsystemError as exc:
            self._fail(f"{sub.name}: {exc}")
        finally:
            entry.done.set()
            _Status(entry, task_status).started()  # a tg.start() still waiting must return

    def _fail(self, message: str) -> None:
        self.log.error(message)
        self._exit = EXIT_FAILURE
        self.request_stop()

    def request_stop(self) -> None:
        """Stop every subsystem, in reverse order of start, then return from run()."""
        self._stop.set()
        if self._reload_scope is not None:
            self._reload_scope.cancel()
        for entry in self._entries:
            if entry.hosted and not entry.started:
                entry.scope.cancel()  # still starting (a start-up delay, say): do not wait for it

    async def _signals(self, signals) -> None:
        async for signum in signals:
            if self._stop.is_set():
                continue
            if signum == signal.SIGHUP:
                self.request_reload()
                continue
            if signum in DUMPS:
                self.dump(signum)
                continue
            self.log.info("Stopping", signal=signal.Signals(signum).name)
            self.request_stop()

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

    def _remove_pid_file(self) -> None:
        if self.pid_file:
            try:
                os.unlink(self.pid_file)
            except OSError:
                pass

    # -- reload -----------------------------------------------------------------------------------

    def request_reload(self) -> None:
        """SIGHUP: reload in the background; one that comes during a reload runs once that one is over."""
        if self._stop.is_set() or self._tg is None:
            return
        if self._reload_scope is not None:
            self._reload_again = True
            return
        self._reload_scope = anyio.CancelScope()
        self._tg.start_soon(self._reloads_task, self._reload_scope, name="reload")

    async def _reloads_task(self, scope: anyio.CancelScope) -> None:
        try:
            with scope:
                while True:
                    self._reload_again = False
                    await self.reload()
                    if not self._reload_again:
                        break
        finally:
            self._reload_scope = None

    async def reload(self) -> bool:
        """Load the config again and hand it to every running subsystem. True if all of them took it."""
        log = self.log
        self._reloads["requested"] += 1
        self._reloads["last_time"] = time.time()
        log.info("Reloading", file=self.config_file)
        sdnotify.reloading()
        result = "failed"
        try:
            result = await self._reload(log)
            release_free_memory()  # the reload's text, tree and drafts, and what the old config held
        finally:
            self._reloads[result] += 1
            self._reloads["last_result"] = result
            if not self._stop.is_set():
                sdnotify.ready(self._status_line())
        return result == "applied"

    async def _reload(self, log) -> str:
        """"applied", "refused" (a subsystem kept its config) or "failed" (the new config has errors)."""
        loaded = await anyio.to_thread.run_sync(self._load, abandon_on_cancel=True)
        if loaded.config is None or not loaded.ok:
            for diag in loaded.diagnostics:
                if diag.severity is not Severity.NOTE:
                    level = log.error if diag.severity is Severity.ERROR else log.warning
                    level(f"config: {diag.message}", where=str(diag.span) if diag.span else self.config_file)
            log.error(f"reload: {loaded.errors} error(s) in {self.config_file}; keeping the running configuration")
            return "failed"
        _log_warnings(log, loaded, self.config_file)
        loaded = loaded.without_text()
        applied = True
        for entry in self._entries:
            if not entry.started or entry.done.is_set():
                continue
            try:
                why = await entry.sub.reconfigure(loaded.config)
            except SubsystemError as exc:
                why = str(exc)
            if why is None:
                log.info(f"{entry.sub.name}: reconfigured")
            else:
                log.info(f"{entry.sub.name}: {why}; keeping the running configuration")
                applied = False
        if applied:
            self.config = loaded.config
        return "applied" if applied else "refused"

    # -- health, systemd, dumps ------------------------------------------------------------------

    def health(self) -> str | None:
        """None while every subsystem keeps up; else why not (for WATCHDOG=1 and /healthz)."""
        if self._loop_lag > LOOP_LAG_LIMIT:
            return f"event loop late by {self._loop_lag:.2f} s"
        for entry in self._entries:
            check = getattr(entry.sub, "health", None)
            problem = check() if check is not None and entry.started and not entry.done.is_set() else None
            if problem:
                return f"{entry.sub.name}: {problem}"
        return None

    async def _watchdog(self, interval: float) -> None:
        """WATCHDOG=1 every half WatchdogSec, but only while healthy: a stuck loop gets no ping, and systemd
        restarts the daemon. The loop's own lateness is measured on the way."""
        while True:
            before = anyio.current_time()
            await anyio.sleep(interval)
            self._loop_lag = max(0.0, anyio.current_time() - before - interval)
            problem = self.health()
            if problem is None:
                sdnotify.notify("WATCHDOG=1")
            else:
                self.log.warning(f"not pinging the systemd watchdog: {problem}")

    def _status_line(self) -> str:
        return ", ".join(f"{e.sub.name} running" for e in self._entries if e.started and not e.done.is_set()) \
            or "no subsystem running"

    def dump(self, signum: int) -> str | None:
        """SIGUSR1/SIGUSR2/SIGRTMIN+2: write keepalived's dump file; its path, or None if it could not."""
        from pyvrrpd.observe import dumps

        what, name, render = DUMPS[signum]
        path = os.path.join(dumps.dump_dir(self.dump_dir), name)
        self.log.info(f"Printing VRRP {what} for process({os.getpid()}) on signal", file=path)
        try:
            dumps.write(path, render(self.snapshot()))
        except OSError as exc:
            self.log.error(f"cannot write {path}: {exc.strerror or exc}")
            return None
        return path

    # -- what it knows ----------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Read-only and JSON-able: {"process": {...}, <subsystem name>: <its snapshot>, ...}."""
        now = time.time()
        snap: dict = {PROCESS: {
            "name": "pyvrrpd",
            "pid": os.getpid(),
            "version": __version__,
            "config": self.config_file,
            "state": self._state,
            "start_time": self._started_at,
            "uptime": None if self._started_at is None else now - self._started_at,
            "subsystems": [e.sub.name for e in self._entries],
            "reloads": dict(self._reloads),
            "health": self.health(),
            "scheduling": self.scheduling,
        }}
        for entry in self._entries:
            snap[entry.sub.name] = entry.sub.snapshot()
        return snap


def _log_warnings(log, loaded: Loaded, where: str) -> None:
    for diag in loaded.diagnostics:
        if diag.severity is Severity.WARNING:
            log.warning(f"config: {diag.message}", where=str(diag.span) if diag.span else where)


def load_checked(args: argparse.Namespace) -> Loaded:
    """The config as the daemon takes it: loaded like --check-config does, with the daemon's verdict."""
    from pyvrrpd.config.load import load
    from pyvrrpd.daemon.verdict import verdict

    return verdict(load(args.file, config_id=args.config_id, host_checks=not args.no_host_checks))


def build_subsystems(args: argparse.Namespace, config: model.Config, log) -> list[Subsystem]:
    """The subsystems to run, in start order (they stop in reverse). ``-P`` asks for keepalived's VRRP
    process, which is all of these; ``-C`` for the checkers only.

    * notify first, stopped last: it is VRRP's ``NotifySink``, and the STOP notifications VRRP sends as it
      stops still run; it also writes the checkers' FIFO lines (with ``-C`` it runs for those alone, when
      ``notify_fifo``/``lvs_notify_fifo`` is set);
    * the trackers before VRRP, with VRRP as their ``TrackSink``: what they know at start (a tracked
      interface down, a script without a result yet) decides each instance's initial state, as in
      keepalived; they stop after VRRP has sent its priority-0 adverts;
    * VRRP.

    The LVS subsystem (checkers into the IPVS reconciler) comes before VRRP and stops after it: the IPVS
    table is in place before a VIP attracts traffic and goes after the VIPs; the control API (it reads
    ``Root.snapshot``) is appended last by run_daemon.
    """
    subsystems: list[Subsystem] = []
    notifier = None
    gd = config.global_defs
    if not args.checkers_only or (config.virtual_servers and (gd.notify_fifo or gd.lvs_notify_fifo)):
        from pyvrrpd.daemon.notify import Notifier

        # -C: only the checker lines (notify_fifo, lvs_notify_fifo), no VRRP scripts, FIFO or mail
        notifier = Notifier.for_config(config, log=log.bind(subsystem=Notifier.name), vrrp=not args.checkers_only)
        subsystems.append(notifier)  # first: it writes the LVS FIFO lines until the LVS subsystem has stopped
    if not args.vrrp:
        if config.virtual_servers:
            from pyvrrpd.daemon.lvs import Lvs, wants_mail
            from pyvrrpd.daemon.notify import Mailer, smtp_settings

            mail = smtp_settings(gd) if wants_mail(config) else None
            # the IPVS table is in place before a VIP attracts traffic; -I keeps it on stop
            subsystems.append(Lvs(config, log, release_on_stop=not getattr(args, "dont_release_ipvs", False),
                                  fifo=notifier.lvs if notifier is not None else None,
                                  mailer=Mailer(mail, log=log.bind(subsystem="lvs")) if mail is not None else None))
        elif args.checkers_only:
            log.warning("-C/--check: no virtual_server in the configuration; no checker to run")
    if not args.checkers_only:
        from pyvrrpd.daemon.tracking import Trackers
        from pyvrrpd.daemon.vrrp import Vrrp

        assert notifier is not None
        sinks: list = [notifier]
        if config.global_defs.lvs_sync_daemon:  # keepalived runs it in its VRRP process
            from pyvrrpd.daemon.syncd import SyncDaemon

            syncd = SyncDaemon(config, log)
            if syncd.settings is not None:
                sinks.append(syncd)
                subsystems.append(syncd)  # stops after VRRP, so it sees the instance's STOP
        vrrp = Vrrp(config, log, notify=notifier if len(sinks) == 1 else TeeNotify(*sinks),
                    release_on_stop=not getattr(args, "dont_release_vrrp", False))
        trackers = Trackers(config, vrrp, log=log.bind(subsystem=Trackers.name))
        subsystems += [trackers, vrrp]
    return subsystems


def run_daemon(args: argparse.Namespace) -> int:
    """`pyvrrpd -f FILE`: run in the foreground until SIGTERM/SIGINT. Returns the exit status."""
    from pyvrrpd.config.diagnostics import render_all
    from pyvrrpd.observe import logs

    logs.configure(args.log_format, args.log_level)
    log = logs.get("pyvrrpd")
    if args.checkers_only and args.vrrp:
        sys.stderr.write("pyvrrpd: -P/--vrrp and -C/--check exclude each other\n")
        return EXIT_FAILURE
    loaded = load_checked(args)
    if loaded.config is None or not loaded.ok:
        color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
        sys.stderr.write(render_all(loaded.diagnostics, color=color) + "\n")
        sys.stderr.write(f"{args.file}: {loaded.errors} error(s); not starting\n")
        return EXIT_FAILURE
    _log_warnings(log, loaded, args.file)
    # This frame lives as long as the daemon: keep the config, not the text it came from.
    loaded = loaded.without_text()
    try:
        subsystems = build_subsystems(args, loaded.config, log)
    except SubsystemError as exc:
        sys.stderr.write(f"pyvrrpd: {args.file}: {exc}; not starting\n")
        return EXIT_FAILURE
    control = _control_server(args, log)
    if control is not None:
        subsystems.append(control)
    if args.umask is not None:
        os.umask(args.umask)
    root = Root(loaded.config, subsystems, log=log, load=functools.partial(load_checked, args),
                pid_file=args.pid, config_file=args.file, dump_dir=args.dump_dir)
    if control is not None:
        control.attach(root.snapshot, root.health)
    # keepalived's vrrp_* (or, under -C, checker_*) scheduling keywords, before the event loop and its threads
    policy = scheduling.plan(loaded.config.global_defs, vrrp_runs=not args.checkers_only)
    root.scheduling = scheduling.apply(policy, log.bind(subsystem="scheduling"))
    return anyio.run(root.run, backend="asyncio")


def _control_server(args: argparse.Namespace, log):
    """The /status and /metrics endpoint on --control-socket (default under /run/pyvrrpd) and --listen."""
    from pyvrrpd.observe.control import DEFAULT_SOCKET, ControlServer

    path = args.control_socket or DEFAULT_SOCKET
    if path == "none":
        path = None
    if path is None and args.listen is None:
        return None
    return ControlServer(unix_path=path, tcp=args.listen, log=log)
