"""The checkers subsystem: every probe on its schedule, results into real server health.

* **Shared probes.** Checkers that would do exactly the same thing — same kind, same target
  (address, port, bind options) and the same parameters, retry settings included — run once; the
  result feeds every real server that has such a checker (the same real server behind many
  virtual servers costs one probe, not one per virtual server).
* **Spread.** The first run of the n-th probe is at ``1 s + phase x warmup`` with phases spread
  evenly (golden-ratio sequence) instead of keepalived's random draw; after that each probe keeps
  its own rhythm (``delay_loop`` after it finished), so probes never fire in bursts. One
  dispatcher task keeps the probes' next runs in a heap and starts a task per run: a probe has a
  task only while it runs.
* **Bounded.** Every probe has its own timeouts; beyond them (plus a margin) the watchdog cuts it
  short. A global limit (from the open-files limit) caps the probes in flight.
* **Progress is visible.** Each probe records when it last started and completed; a watchdog
  notices a probe running past its limit or a loop not waking for its deadline, logs it once
  (``checker stuck``), counts it and shows ``stuck`` in :meth:`Checkers.snapshot` until it
  moves again.

Health leaves through a :class:`pyvrrpd.checkers.HealthSink`.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import resource
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields

import anyio

from pyvrrpd.checkers import HealthSink, RealServerEvent, RealServerKey, real_server_keys, rs_fmt, rs_label
from pyvrrpd.checkers.dns import probe_dns
from pyvrrpd.checkers.http import STEPS, HttpProbe, client_context
from pyvrrpd.checkers.misc import KILL_WAIT, TERM_GRACE, run_misc, script_account
from pyvrrpd.checkers.net import ProbeError, Result, Target, os_error, probe_tcp
from pyvrrpd.checkers.smtp import probe_smtp
from pyvrrpd.checkers.state import (Checker, RealServerHealth, Style, Timing, down_set, file_check_state,
                                    parse_track_value)
from pyvrrpd.checkers.udp import parse_pattern, probe_ping, probe_udp
from pyvrrpd.config import model as m
from pyvrrpd.observe import logs
from pyvrrpd.observe.metrics import Histogram

GOLDEN = 0.6180339887498949
MARGIN = 1.0  # beyond a probe's own timeouts, before it is cut short
STUCK_GRACE = 5.0  # how far past its limit or deadline a probe may be before it counts as stuck
WATCHDOG_PERIOD = 1.0
FILE_POLL = 1.0
LATENESS_SAMPLES = 20_000

_US = 1e-6
_KINDS = {
    m.TcpCheck: "TCP_CHECK", m.SslCheck: "SSL_GET", m.HttpCheck: "HTTP_GET", m.SmtpCheck: "SMTP_CHECK",
    m.DnsCheck: "DNS_CHECK", m.UdpCheck: "UDP_CHECK", m.PingCheck: "PING_CHECK", m.MiscCheck: "MISC_CHECK",
}


@dataclass(slots=True)
class Probe:
    """One shared probe, its schedule and what it feeds."""

    key: tuple
    name: str
    kind: str
    run: Callable[[int], Awaitable[Result]]  # url index -> result
    machine: Checker
    limit: float
    dynamic: bool = False  # MISC_CHECK misc_dynamic
    log_all: bool = False  # log_all_failures: every failed attempt at info level
    users: list[tuple[RealServerKey, int]] = field(default_factory=list)  # (real server, checker index)
    active: bool = False  # scheduled: started and not removed by a reconfigure
    run_scope: anyio.CancelScope | None = None  # the running probe's
    running: bool = False
    last_started: float | None = None
    last_completed: float | None = None
    last: Result | None = None
    stuck: bool = False
    failures: collections.Counter | None = None  # by reason; made on the first failure (an empty one is 89 B)
    latency: Histogram = field(default_factory=Histogram)  # how long each check took, timeouts included


@dataclass(slots=True)
class FileUse:
    rs: RealServerKey
    index: int
    weight: int
    reverse: bool = False


@dataclass(slots=True)
class Server:
    vs: m.VirtualServer
    rs: m.RealServer
    keys: tuple[tuple | None, ...]  # per checker: its probe key (None: FILE_CHECK)
    health: RealServerHealth


@dataclass(slots=True)
class Plan:
    probes: dict[tuple, Probe]
    servers: dict[RealServerKey, Server]
    files: dict[str, tuple[str, list[FileUse]]]  # track_file name -> (path, uses)
    warnings: list[str]


def _value_key(obj: object) -> object:
    """A hashable key of a model value without its spans."""
    if isinstance(obj, m._Value):  # noqa: SLF001 - the model's own base
        return (type(obj).__name__,) + tuple(
            _value_key(getattr(obj, f.name)) for f in fields(obj) if f.name != "span"
        )
    if isinstance(obj, tuple):
        return tuple(_value_key(x) for x in obj)
    return obj


def _target(ck: m.ConnectChecker, rs: m.RealServer) -> Target:
    return Target(
        address=ck.connect_ip if ck.connect_ip is not None else rs.address,
        port=ck.connect_port if ck.connect_port is not None else rs.port,
        timeout=ck.connect_timeout_us * _US,
        bindto=ck.bindto,
        bind_port=ck.bind_port,
        bind_if=ck.bind_if,
        fwmark=ck.fwmark,
    )


def _timing(ck: m.Checker, urls: int = 1, fast_recovery: bool = False) -> Timing:
    return Timing(delay_loop=ck.delay_loop_us * _US, delay_before_retry=ck.delay_before_retry_us * _US,
                  retry=ck.retry, warmup=ck.warmup_us * _US, alpha=ck.alpha, urls=urls, fast_recovery=fast_recovery)


class _Builder:
    """Config -> Plan: one Probe per distinct check, one Server per real server."""

    def __init__(self, config: m.Config, tls: Callable[[], ssl.SSLContext]) -> None:
        self.config = config
        self.tls = tls
        self.plan = Plan({}, {}, {}, [])
        self.track_files = {tf.name: tf for tf in config.track_files}
        self.shared: dict = {}  # one object per distinct checker settings key and Timing (_share)

    def _share(self, value):
        """``value``, or an equal one this build already made: 10,000 real servers with the same
        checker settings hold one settings key and one Timing instead of 10,000 of each (-3.4 MiB)."""
        return self.shared.setdefault(value, value)

    def build(self) -> Plan:
        for vs, rs, key in real_server_keys(self.config):
            keys: list[tuple | None] = []
            down: set[int] = set()
            for ck in rs.checkers:
                index = len(keys)
                if isinstance(ck, m.FileCheck):
                    self._file(ck, key, index)
                    keys.append(None)
                    continue
                if isinstance(ck, m.BfdCheck):
                    self._warn(f"{key}: BFD_CHECK is not supported; this checker is ignored")
                    continue
                probe = self._probe(ck, vs, rs, key)
                if probe is None:
                    continue
                probe.users.append((key, index))
                keys.append(probe.key)
                if not probe.machine.is_up:
                    down.add(index)
            self.plan.servers[key] = Server(vs, rs, tuple(keys), RealServerHealth(rs.weight, len(keys), down))
        return self.plan

    def _warn(self, text: str) -> None:
        if text not in self.plan.warnings:
            self.plan.warnings.append(text)

    def _file(self, ck: m.FileCheck, key: RealServerKey, index: int) -> None:
        tf = self.track_files.get(ck.track_file)
        if tf is None:
            self._warn(f"{key}: FILE_CHECK track_file {ck.track_file} is not defined; it counts as value 0")
            path = ""
        else:
            path = tf.path
        self.plan.files.setdefault(ck.track_file, (path, []))[1].append(FileUse(key, index, ck.weight, ck.reverse))

    def _probe(self, ck: m.AnyChecker, vs: m.VirtualServer, rs: m.RealServer, key: RealServerKey) -> Probe | None:
        kind = _KINDS[type(ck)]
        if isinstance(ck, m.MiscCheck):
            timeout = (ck.timeout_us if ck.timeout_us is not None else vs.delay_loop_us) * _US
            account = script_account(ck.script, self.config.global_defs)
            pkey = (kind, self._share(_value_key(ck)), timeout, account)
            if pkey not in self.plan.probes:
                run = _one(run_misc, ck.script, timeout, dynamic=ck.dynamic, account=account)
                self.plan.probes[pkey] = Probe(pkey, f"{kind} {ck.script.argv[0]}", kind, run,
                                               Checker(self._share(_timing(ck)), Style.MISC),
                                               timeout + TERM_GRACE + KILL_WAIT + MARGIN, dynamic=ck.dynamic,
                                               log_all=ck.log_all_failures)
            return self.plan.probes[pkey]
        target = _target(ck, rs)
        needs_port = not isinstance(ck, m.PingCheck)
        if needs_port and target.port is None:
            self._warn(f"{key}: {kind} has no port to connect to (no connect_port, and the real server has none); "
                       "this checker is ignored")
            return None
        extra: tuple = ()
        if isinstance(ck, m.HttpCheck):
            vhost = ck.virtualhost or rs.virtualhost or vs.virtualhost  # (a url's own comes first)
            extra = (vhost, _value_key(self.config.ssl) if isinstance(ck, m.SslCheck) else None)
        pkey = (kind, target, self._share(_value_key(ck))) + extra
        if pkey in self.plan.probes:
            return self.plan.probes[pkey]
        t = target.timeout
        style, limit, timing = Style.GATED, t + MARGIN, self._share(_timing(ck))
        if isinstance(ck, m.TcpCheck):
            run, style = _one(probe_tcp, target), Style.TCP
        elif isinstance(ck, m.HttpCheck):
            probe = HttpProbe.make(target, ck, extra[0], self.tls() if isinstance(ck, m.SslCheck) else None)
            run, style, limit = probe, Style.HTTP, STEPS * t + MARGIN
            timing = self._share(_timing(ck, len(ck.urls), ck.fast_recovery))
        elif isinstance(ck, m.SmtpCheck):
            run, style, limit = _one(probe_smtp, target, ck.helo_name), Style.SMTP, 6 * t + MARGIN
        elif isinstance(ck, m.DnsCheck):
            run = _one(probe_dns, target, ck.name, ck.type)
        elif isinstance(ck, m.UdpCheck):
            pattern = parse_pattern(ck.require_reply) if ck.require_reply else None
            run = _one(probe_udp, target, ck.payload, pattern, require_reply=ck.reply_required or pattern is not None,
                       min_len=ck.min_reply_length, max_len=ck.max_reply_length)
        else:
            run = _one(probe_ping, target)
        probe = Probe(pkey, f"{kind} {target}", kind, run, Checker(timing, style), limit, log_all=ck.log_all_failures)
        self.plan.probes[pkey] = probe
        return probe


class _one:  # noqa: N801 - used as the function it replaced
    """A probe with a single thing to check (all but HTTP_GET/SSL_GET): the url index is unused.

    A slotted callable rather than a closure: 100 B a probe instead of 450 B (the function, its
    cells and an empty ``kw`` dict each); 10,000 TCP_CHECKs: -3.3 MiB.
    """

    __slots__ = ("fn", "args", "kw")

    def __init__(self, fn: Callable[..., Awaitable[Result]], *args: object, **kw: object) -> None:
        self.fn = fn
        self.args = args
        self.kw = kw or None

    def __call__(self, url: int) -> Awaitable[Result]:
        return self.fn(*self.args, **self.kw) if self.kw else self.fn(*self.args)


class Gate:
    """At most ``limit`` probes in flight, first come first served; costs nothing below the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside = 0
        self.waiting: collections.deque[anyio.Event] = collections.deque()

    def try_enter(self) -> bool:
        if self.inside < self.limit and not self.waiting:
            self.inside += 1
            return True
        return False

    async def enter(self) -> None:
        event = anyio.Event()
        self.waiting.append(event)
        try:
            await event.wait()  # leave() handed its place over
        except BaseException:
            if event.is_set():
                self.leave()
            else:
                self.waiting.remove(event)
            raise

    def leave(self) -> None:
        if self.waiting:
            self.waiting.popleft().set()
        else:
            self.inside -= 1


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one; the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class Checkers:
    """The checkers subsystem (run / reconfigure / snapshot), reporting to a HealthSink."""

    name = "checkers"

    def __init__(self, config: m.Config, sink: HealthSink, *, log=None) -> None:
        self.config = config
        self.sink = sink
        self.log = log or logs.get("pyvrrpd.checkers")
        self.plan: Plan | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._gate: Gate | None = None
        self._tls: ssl.SSLContext | None = None
        self._started = 0  # probes started so far (their phase index)
        # The probes' next runs, (due, n, probe), for one dispatcher task that starts a task per run.
        # A long-lived task per probe cost 5.8 KB each with anyio 4.16 (a task handle, an event and a
        # cancel scope per task): 58 MB for 10,000 probes (bench/checkers.py, bench/README.md).
        self._due: list[tuple[float, int, Probe]] = []
        self._order = itertools.count()
        self._nap: anyio.CancelScope | None = None  # the dispatcher's sleep, cut short by an earlier due
        self.counters: collections.Counter = collections.Counter()
        self.lateness: collections.deque[float] = collections.deque(maxlen=LATENESS_SAMPLES)
        self.started_at: float | None = None
        # ha_suspend: labels of the virtual servers whose checkers are suspended (their address is not on
        # this host). Set before run() by the owner (pyvrrpd.daemon.lvs), then changed with suspend().
        self.suspended: set[str] = set()

    # ------------------------------------------------------------------ life cycle

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        limit = raise_open_files_limit()
        self._gate = Gate(max(16, min(limit - 256, 50_000)))
        self.started_at = anyio.current_time()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self.plan = self._build(self.config)
                self._read_files(initial=True)
                for key, server in self.plan.servers.items():
                    self.sink.set_health(key, server.health.alive, server.health.effective_weight())
                    if key.vs in self.suspended:
                        name = rs_fmt(server.vs, key.address, key.port)
                        self.log.info(f"Deactivating healthchecker for service {name} for VS {key.vs} "
                                      "(ha_suspend: its address is not on this host)")
                for probe in self.plan.probes.values():
                    self._start(probe)
                tg.start_soon(self._dispatch, name="checkers dispatcher")
                tg.start_soon(self._watchdog, name="checkers watchdog")
                if self.plan.files:
                    tg.start_soon(self._watch_files, name="checkers FILE_CHECK")
                self.log.info("checkers started", probes=len(self.plan.probes), real_servers=len(self.plan.servers))
                task_status.started()
                await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                self._omega()
            self._tg = None

    async def reconfigure(self, config: m.Config) -> str | None:
        if self._tg is None or self.plan is None:
            self.config = config
            return None
        if config.ssl != self.config.ssl:
            self._tls = None
        self.config = config  # (the SSL_GET context is made from it)
        old, new = self.plan, self._build(config)
        for key, probe in old.probes.items():
            if key in new.probes:  # same check: keep its schedule and state, take the new users
                kept = new.probes[key]
                probe.users = kept.users
                new.probes[key] = probe
            elif probe.active:
                probe.active = False  # its next run is dropped when due; a run under way is cut short
                if probe.run_scope is not None:
                    probe.run_scope.cancel()
        self.plan = new
        for key, server in new.servers.items():  # health from the probes' actual states
            server.health.down = down_set(i for i, pkey in enumerate(server.keys)
                                          if pkey is not None and not new.probes[pkey].machine.is_up)
            before = old.servers.get(key)
            if before is not None and before.keys == server.keys:
                server.health.dynamic, server.health.offsets = before.health.dynamic, before.health.offsets
                if key.vs in self.suspended:  # ha_suspend: its state stays frozen through a reload
                    server.health.down = before.health.down
        self._read_files(initial=True)
        for key, server in new.servers.items():
            before = old.servers.get(key)
            if before is None or before.health.alive != server.health.alive or \
                    before.health.effective_weight() != server.health.effective_weight() or \
                    before.rs.weight != server.rs.weight:
                self.sink.set_health(key, server.health.alive, server.health.effective_weight())
        for probe in new.probes.values():
            if not probe.active:
                self._start(probe)
        if new.files and not old.files:
            self._tg.start_soon(self._watch_files, name="checkers FILE_CHECK")
        self.log.info("checkers reconfigured", probes=len(new.probes), real_servers=len(new.servers))
        return None

    def _build(self, config: m.Config) -> Plan:
        plan = _Builder(config, self._tls_context).build()
        for text in plan.warnings:
            self.log.warning(text)
        return plan

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            try:
                self._tls = client_context(self.config.ssl)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self.log.error("SSL block: cannot load the client certificate, key or CA; SSL_GET runs without them",
                               error=str(exc))
                self._tls = client_context(None)
        return self._tls

    def _start(self, probe: Probe) -> None:
        assert self._tg is not None
        phase = (self._started * GOLDEN) % 1.0
        self._started += 1
        probe.machine.start(anyio.current_time(), phase)
        probe.active = True
        self._schedule(probe)

    # ------------------------------------------------------------------ the probe runs

    def _schedule(self, probe: Probe) -> None:
        due = probe.machine.due
        heapq.heappush(self._due, (due, next(self._order), probe))
        if self._nap is not None and due < self._nap.deadline:
            self._nap.cancel()  # the dispatcher sleeps past this one: wake it

    async def _dispatch(self) -> None:
        """Start each probe's run when it is due (one task per run, only while it runs)."""
        assert self._tg is not None
        due = self._due
        while True:
            now = anyio.current_time()
            while due and due[0][0] <= now:
                _, _, probe = heapq.heappop(due)
                if not probe.active:
                    continue
                if self.suspended and probe.users and all(key.vs in self.suspended for key, _ in probe.users):
                    # ha_suspend: keepalived's disabled checker just looks again delay_loop later
                    probe.machine.due = now + max(probe.machine.timing.delay_loop, 1e-3)
                    self.counters["suspended_runs"] += 1
                    self._schedule(probe)
                    continue
                self._tg.start_soon(self._run, probe, name=probe.name)
            with anyio.CancelScope(deadline=due[0][0] if due else math.inf) as self._nap:
                await anyio.sleep_forever()
            self._nap = None

    async def _run(self, probe: Probe) -> None:
        machine = probe.machine
        started = anyio.current_time()
        self.lateness.append(started - machine.due)
        probe.running, probe.last_started = True, started
        result = await self._probe(probe)
        probe.running = False
        if not probe.active:
            return  # removed by a reconfigure while it ran
        now = probe.last_completed = anyio.current_time()
        self._apply(probe, result, started, now)
        self._schedule(probe)

    async def _probe(self, probe: Probe) -> Result:
        gate = self._gate
        assert gate is not None
        if not gate.try_enter():
            await gate.enter()
        try:
            with anyio.CancelScope() as probe.run_scope:  # the watchdog cancels it past probe.limit
                return await probe.run(probe.machine.url)
            return Result(False, "timeout", f"no result within {probe.limit:g} s")
        except ProbeError as exc:
            return exc.result()
        except OSError as exc:
            return os_error(exc, "probe").result()
        except Exception as exc:  # a bug must not stop the loop: count it, log it, go on
            return Result(False, "internal-error", f"{type(exc).__name__}: {exc}")
        finally:
            probe.run_scope = None
            gate.leave()

    def _apply(self, probe: Probe, result: Result, started: float, now: float) -> None:
        probe.last = result
        probe.latency.observe(now - started)
        self.counters["checks"] += 1
        if not result.ok:
            if probe.failures is None:
                probe.failures = collections.Counter()
            probe.failures[result.reason] += 1
            self.counters["failed:" + result.reason] += 1
            if result.reason == "internal-error":
                self.log.error("checker internal error", checker=probe.name, error=result.detail)
            elif probe.log_all:
                self.log.info("check failed", checker=probe.name, reason=result.reason, detail=result.detail)
            else:
                self.log.debug("check failed", checker=probe.name, reason=result.reason, detail=result.detail)
        change = probe.machine.record(result.ok, now, started)
        if change is not None:
            self.counters["up" if change.up else "down"] += 1
            if change.up:
                self.log.info(f"{probe.name} succeeded on service", checker=probe.name)
            else:
                retries = f" after {change.after_retries} retries" if change.after_retries else ""
                self.log.warning(f"{probe.name} failed{retries}", checker=probe.name, reason=result.reason,
                                 detail=result.detail)
        assert self.plan is not None
        if change is None and not probe.dynamic:
            return
        for key, index in probe.users:
            server = self.plan.servers.get(key)
            if server is None or key.vs in self.suspended:  # ha_suspend: its state is frozen
                continue
            weight_changed = probe.dynamic and result.ok and server.health.set_dynamic(result.weight)
            alive_changed = change is not None and server.health.set_checker(index, change.up)
            if alive_changed or weight_changed:
                why = f"{probe.name}: {result.detail or ('succeeded' if result.ok else result.reason)}"
                self._report(key, server, alive_changed, weight_changed, why)

    def _report(self, key: RealServerKey, server: Server, alive_changed: bool, weight_changed: bool, why: str) -> None:
        if not (alive_changed or weight_changed):
            return
        h = server.health
        weight = h.effective_weight()
        self.sink.set_health(key, h.alive, weight)
        if alive_changed:
            self.log.info(f"real server {rs_label(key.address, key.port)} of VS {key.vs} is {'up' if h.alive else 'down'}",
                          reason=why)
            script = server.rs.notify_up if h.alive else server.rs.notify_down
            self.sink.notify(RealServerEvent(key, h.alive, weight, script, why))

    # ------------------------------------------------------------------ ha_suspend

    def suspend(self, vs: str, active: bool) -> None:
        """ha_suspend: the checkers of virtual server ``vs`` (its label) stop (``active`` False) or resume.

        Suspended, its real servers keep their state (nothing in the IPVS table changes) and its checks
        do not run unless another virtual server shares them. Resumed, each real server takes the state
        of its checks as they are now (a check shared with a running virtual server may have moved on)."""
        if not active:
            if vs in self.suspended:
                return
            self.suspended.add(vs)
        elif vs in self.suspended:
            self.suspended.discard(vs)
        else:
            return
        self.counters["suspended" if not active else "resumed"] += 1
        if self.plan is None:
            return
        for key, server in self.plan.servers.items():
            if key.vs != vs:
                continue
            self.log.info(f"{'Activating' if active else 'Suspending'} healthchecker for service "
                          f"{rs_fmt(server.vs, key.address, key.port)} for VS {vs}")
            if not active:
                continue
            alive_changed = False
            for index, pkey in enumerate(server.keys):
                probe = self.plan.probes.get(pkey) if pkey is not None else None
                if probe is not None:
                    alive_changed |= server.health.set_checker(index, probe.machine.is_up)
            self._report(key, server, alive_changed, False, "checks resumed (ha_suspend)")

    # ------------------------------------------------------------------ FILE_CHECK

    def _read_files(self, initial: bool = False) -> None:
        assert self.plan is not None
        for name, (path, uses) in self.plan.files.items():
            value = 0
            if path:
                try:
                    with open(path, "rb") as f:
                        raw = f.read(127)
                except OSError:
                    raw = b""
                parsed = parse_track_value(raw)
                if parsed is None:
                    self.log.warning("track_file value out of range; ignored", track_file=name, path=path)
                    continue
                value = parsed
            for use in uses:
                server = self.plan.servers.get(use.rs)
                if server is None:
                    continue
                up, offset = file_check_state(value, use.weight, use.reverse)
                alive_changed = server.health.set_checker(use.index, up)
                weight_changed = server.health.set_offset(use.index, offset)
                if not initial:
                    self._report(use.rs, server, alive_changed, weight_changed, f"FILE_CHECK {name} = {value}")

    async def _watch_files(self) -> None:
        while self.plan is not None and self.plan.files:
            await anyio.sleep(FILE_POLL)
            self._read_files()

    # ------------------------------------------------------------------ watchdog, stop, snapshot

    async def _watchdog(self) -> None:
        while True:
            await anyio.sleep(WATCHDOG_PERIOD)
            self.check_progress(anyio.current_time())

    def check_progress(self, now: float) -> list[Probe]:
        """Mark and log probes that stopped making progress; returns the stuck ones."""
        assert self.plan is not None
        stuck = []
        for probe in self.plan.probes.values():
            if not probe.active:
                continue
            if probe.running:
                late = now - (probe.last_started or now) - probe.limit
                if late > 0 and probe.run_scope is not None:
                    probe.run_scope.cancel()  # its own timeouts should have ended it: cut it short
            else:
                late = now - probe.machine.due
            if late > STUCK_GRACE:
                stuck.append(probe)
                if not probe.stuck:
                    probe.stuck = True
                    self.counters["stuck"] += 1
                    self.log.error("checker stuck: no progress", checker=probe.name,
                                   last_completed_ago=None if probe.last_completed is None
                                   else round(now - probe.last_completed, 3),
                                   running=probe.running)
            elif probe.stuck:
                probe.stuck = False
                self.log.info("checker moving again", checker=probe.name)
        return stuck

    def _omega(self) -> None:
        """keepalived's omega: at stop, the notify_down of every alive real server."""
        if self.plan is None:
            return
        for key, server in self.plan.servers.items():
            if server.vs.omega and server.health.alive:
                self.sink.notify(RealServerEvent(key, False, server.health.effective_weight(),
                                                 server.rs.notify_down, "shutting down (omega)"))

    def snapshot(self) -> dict:
        now = anyio.current_time() if self._tg is not None else None
        plan = self.plan
        probes, servers = [], []
        if plan is not None:
            for p in plan.probes.values():
                probes.append({
                    "name": p.name, "kind": p.kind, "up": p.machine.is_up, "due": p.machine.due,
                    "running": p.running, "stuck": p.stuck,
                    "last_started": p.last_started, "last_completed": p.last_completed,
                    "last_completed_ago": None if now is None or p.last_completed is None
                    else round(now - p.last_completed, 3),
                    "last_result": None if p.last is None else
                    {"ok": p.last.ok, "reason": p.last.reason, "detail": p.last.detail},
                    "attempts": p.machine.attempts, "failures": dict(p.failures or {}),
                    "latency": p.latency.snapshot(),
                    "real_servers": [str(k) for k, _ in p.users],
                })
            for key, s in plan.servers.items():
                servers.append({
                    "vs": key.vs, "address": str(key.address), "port": key.port, "alive": s.health.alive,
                    "weight": s.health.effective_weight(), "configured_weight": s.rs.weight,
                    "down_checkers": sorted(s.health.down),
                })
        return {
            "probes": probes,
            "real_servers": servers,
            "counters": dict(self.counters),
            "suspended": sorted(self.suspended),
            "lateness": lateness_summary(self.lateness),
            "warnings": list(plan.warnings) if plan else [],
        }


def lateness_summary(samples) -> dict:
    """p50/p99/max of probe start lateness against the schedule, in milliseconds."""
    if not samples:
        return {"samples": 0}
    data = sorted(samples)

    def pct(q: float) -> float:
        return round(data[min(len(data) - 1, math.ceil(q * len(data)) - 1)] * 1000, 3)

    return {"samples": len(data), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(data[-1] * 1000, 3)}
