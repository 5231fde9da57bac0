"""The LVS subsystem: keeps the kernel's IPVS table equal to the desired one.

    lvs = LvsSubsystem(config)                      # port: the kernel (KernelIpvs) unless given
    await task_group.start(lvs.run)                 # adopts the table, programs it, then returns
    lvs.set_health(rs_id(vs, rs), up=False)         # from the checkers, at any time (sync, cheap)
    lvs.set_health(rs_id(vs, rs), up=True, weight=7)  # MISC_CHECK misc_dynamic

Rules (docs/lvs.md):

* **One desired table.** It is :func:`pyvrrpd.lvs.table.desired` of the config, the health of every
  real server and the quorum states; it is recomputed on every health change and every pass.
* **Passes.** A change (a health change, a reload) triggers an *incremental* pass: the operations
  are computed against the table the subsystem believes the kernel has (no dump). Every
  ``resync_interval`` seconds, and after any kernel error, a *full* pass dumps the kernel's table
  first, so an entry deleted or changed behind pyvrrpd's back (``ipvsadm -d``) is put back, and
  logged as a repair.
* **Adoption.** The first pass is a full one: entries already in the kernel that match the config
  are kept as they are (edited in place if their attributes differ), so a restart never removes a
  healthy real server for a moment. ``lvs_flush`` flushes the whole table first instead.
* **Ownership.** Only entries the config can make are ever changed or removed (see
  :func:`pyvrrpd.lvs.diff.diff`); after a reload, the entries of the old config stay owned until
  they are gone from the kernel.
* **Errors** are logged with the entry and errno, counted, and retried by a full pass after
  ``retry_delay`` (doubling up to ``resync_interval``); they are never fatal.
* **Timeouts.** ``lvs_timeouts`` (tcp, tcpfin, udp) are set at the first pass and again at the first
  pass after each reload, as keepalived does at start and reload; a failure is retried at the next pass.
* **Stop** (cancellation, i.e. SIGTERM): everything owned is removed (destinations, then
  services; a service's DelService takes its destinations with it), shielded and time-boxed; ``lvs_flush_on_stop`` flushes the table instead;
  ``release_on_stop=False`` (keepalived's ``-I``) leaves it all in place.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel

from pyvrrpd.collector import burst
from pyvrrpd.config import model
from pyvrrpd.lvs import diff as d
from pyvrrpd.lvs import table as t
from pyvrrpd.lvs.ipvs import FakeIpvs, IpvsPort, KernelIpvs
from pyvrrpd.net.errors import NetError
from pyvrrpd.observe import logs

RESYNC_INTERVAL = 10.0  # seconds between full passes (dump + repair)
RETRY_DELAY = 1.0  # first retry after a kernel error
STOP_SECONDS = 30.0  # time box for removing what pyvrrpd owns on stop
DUMP_SHARE = 50  # the resync interval is at least this many times the last dump's duration
BATCH = 64  # operations sent in one datagram, and between two checkpoints (the kernel answers at once)
ERROR_LOG_LIMIT = 20  # kernel errors logged per pass; the rest are counted


@dataclass
class Counters:
    passes: int = 0
    full_passes: int = 0
    operations: int = 0  # applied successfully
    errors: int = 0  # failed kernel operations
    repairs: int = 0  # operations a full pass needed although nothing changed: someone touched the table
    health_updates: int = 0
    quorum_changes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class LvsSubsystem:
    """The daemon root's LVS subsystem (run / reconfigure / snapshot) and the checkers' health sink."""

    name = "lvs"

    def __init__(
        self,
        config: model.Config,
        *,
        port: IpvsPort | None = None,
        open_port: Callable[[], Awaitable[IpvsPort]] | None = None,
        release_on_stop: bool = True,
        resync_interval: float = RESYNC_INTERVAL,
        retry_delay: float = RETRY_DELAY,
        on_event: Callable[[t.QuorumChange], None] | None = None,
    ) -> None:
        self._config = config
        self._port = port
        self._open_port = open_port or KernelIpvs.open
        self.kernel = port is not None and not isinstance(port, FakeIpvs)
        self.release_on_stop = release_on_stop
        self.stopping = False
        self.resync_interval = resync_interval
        self.retry_delay = retry_delay
        self.on_event = on_event
        self.log = logs.get("pyvrrpd.lvs")
        self.counters = Counters()
        self.health: dict[t.RsId, t.RsHealth] = {}
        self._memo: dict = {}  # table.desired()'s, for the current config
        self.quorum: dict[str, bool] | None = None
        self.actual = t.Table()  # what the kernel is believed to hold
        self.desired = t.desired((), (), {})
        self._old_owned: tuple[set, set] = (set(), set())  # owned by a previous config, until gone
        self._wake: anyio.Event | None = None  # made in run(): an anyio Event needs the event loop
        self._full_due = True
        self._timeouts_due = any(config.global_defs.lvs_timeouts)  # lvs_timeouts to set at the next pass
        self._next_retry = RETRY_DELAY
        self.last_error: str | None = None
        self.dump_seconds = 0.0  # how long the last full dump took
        self.last_pass: float | None = None  # wall clock, for the snapshot
        self.events: list[dict] = []  # the last quorum changes, for the snapshot

    # ------------------------------------------------------------------ the checkers' interface

    def set_health(self, rs: t.RsId, up: bool, weight: int | None = None) -> None:
        """A real server's health changed: ``up``, and for MISC_CHECK ``misc_dynamic`` its weight
        (None: the configured weight). Cheap and synchronous; the table follows at once (the next
        incremental pass). Unknown real servers are ignored (a checker of a removed config)."""
        new = t.RsHealth(up, weight)
        old = self.health.get(rs)
        if old == new:
            return
        self.health[rs] = new
        self.counters.health_updates += 1
        self.log.info("Real server " + ("up" if up else "down"), rs=str(rs), weight=weight)
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ Subsystem

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        if self._port is None:
            try:
                self._port = await self._open_port()
                self.kernel = True
            except NetError as exc:
                self.log.error(f"{exc}; programming an in-memory table instead", errno=exc.errno)
                self._port = FakeIpvs()
                self.kernel = False
        try:
            if self._config.global_defs.lvs_flush:
                await self._apply([d.Flush()], "lvs_flush")
            await self._pass()
            task_status.started()
            while True:
                wake = self._wake
                assert wake is not None
                with anyio.move_on_after(self._next_wait()) as scope:
                    await wake.wait()
                if scope.cancelled_caught:  # the resync interval (or a retry delay) is over
                    self._full_due = True
                await self._pass()
        finally:
            with anyio.move_on_after(STOP_SECONDS, shield=True):
                await self._stop()

    async def reconfigure(self, config: model.Config) -> str | None:
        """Take a new config: entries of the old one that are gone are removed, the rest are kept
        (health, quorum states and the kernel's entries carry over)."""
        old = self.desired
        groups_same = config.virtual_server_groups == self._config.virtual_server_groups
        self._config = config
        self._memo = t.carry_memo(self._memo, config.virtual_servers) if groups_same else {}
        names = {rs for rs, _, _ in t.rs_ids(config.virtual_servers)}
        self.health = {k: v for k, v in self.health.items() if k in names}
        self._old_owned[0].update(old.owned_services)
        self._old_owned[1].update(old.owned_dests)
        # an incremental pass, like a health change: no dump, so a reload that changes one real server
        # costs one netlink operation (the periodic full pass still repairs drift)
        self._timeouts_due = any(config.global_defs.lvs_timeouts)  # set again, as keepalived does on reload
        if self._wake is not None:
            self._wake.set()
        return None

    def snapshot(self) -> dict:
        c = self.counters
        return {
            "kernel": self.kernel,
            "services": len(self.desired.table.services),
            "destinations": len(self.desired.table.dests),
            "quorum": dict(self.quorum or {}),
            "real_servers": {str(k): {"up": v.up, "weight": v.weight} for k, v in self.health.items()},
            "counters": {
                "passes": c.passes, "full_passes": c.full_passes, "operations": c.operations,
                "errors": c.errors, "repairs": c.repairs, "health_updates": c.health_updates,
                "quorum_changes": c.quorum_changes, "by_kind": dict(c.by_kind),
            },
            "last_error": self.last_error,
            "last_pass": self.last_pass,
            "dump_seconds": round(self.dump_seconds, 6),
            "events": list(self.events),
        }

    # ------------------------------------------------------------------ passes

    def _next_wait(self) -> float:
        if self.last_error is not None:
            return self._next_retry
        # a huge table: full passes take at most ~2 % of the time
        return max(self.resync_interval, DUMP_SHARE * self.dump_seconds)

    def _compute(self) -> t.Desired:
        cfg = self._config
        want = t.desired(cfg.virtual_servers, cfg.virtual_server_groups, self.health, self.quorum, self._memo)
        self.quorum = dict(want.quorum)
        for ev in want.events:
            self.counters.quorum_changes += 1
            self.log.info(ev.text, vs=ev.vs, quorum_up=ev.up)
            self.events = (self.events + [{"vs": ev.vs, "up": ev.up, "text": ev.text}])[-20:]
            if self.on_event is not None:
                self.on_event(ev)
        self.desired = want
        return want

    def _owned(self, want: t.Desired) -> tuple[set, set]:
        return set(want.owned_services) | self._old_owned[0], set(want.owned_dests) | self._old_owned[1]

    async def _pass(self) -> None:
        """One pass: recompute, compare with the kernel's table (dumped if due), apply."""
        assert self._port is not None
        had_error = self.last_error is not None
        full = self._full_due or had_error
        self.last_error = None
        self._wake = anyio.Event()
        if self._timeouts_due:
            tcp, tcpfin, udp = self._config.global_defs.lvs_timeouts
            self._timeouts_due = not await self._apply([d.SetTimeouts(tcp, tcpfin, udp)], "lvs_timeouts")
        with burst():
            want = self._compute()
        if full:
            t0 = anyio.current_time()
            try:
                dumped = await self._port.dump()
                self.dump_seconds = anyio.current_time() - t0
            except NetError as exc:
                self._error(exc, "dump")
                self._backoff(had_error)
                return
            with burst():
                # what a pass would do if the kernel held what we believe: the rest is a repair
                expected = d.diff(want.table, self.actual, *self._owned(want)) if self.counters.full_passes else []
            self.actual = dumped
            self.counters.full_passes += 1
        with burst():
            owned_s, owned_d = self._owned(want)
            ops = d.diff(want.table, self.actual, owned_s, owned_d)
        if full and self.counters.full_passes > 1:
            known = set(expected)
            repairs = [op for op in ops if op not in known]
            for op in repairs:
                self.log.warning(f"IPVS entry changed behind our back; repairing: {op}")
            self.counters.repairs += len(repairs)
        self.counters.passes += 1
        self._full_due = False
        ok = await self._apply(ops, "full" if full else "change")
        self.last_pass = time.time()
        if not ok:
            self._backoff(had_error)
        else:
            self._next_retry = self.retry_delay
            # entries of an old config are no longer owned once gone from the kernel
            self._old_owned = (
                {k for k in self._old_owned[0] if k in self.actual.services},
                {k for k in self._old_owned[1] if k in self.actual.dests},
            )

    async def _apply(self, ops: list[d.Operation], why: str) -> bool:
        assert self._port is not None
        failed = 0
        done: list[d.Operation] = []
        for start in range(0, len(ops), BATCH):
            batch = ops[start:start + BATCH]
            if start:
                await anyio.lowlevel.checkpoint()  # a big table must not stall the checkers
            results = await self._port.apply_many(batch)
            if not any(results):  # (the common case, without a loop over the batch)
                done += batch
                if len(ops) <= 50:
                    for op in batch:
                        self.log.info(str(op), reason=why)
                continue
            for op, err in zip(batch, results):
                if err is not None:
                    failed += 1
                    if failed <= ERROR_LOG_LIMIT:
                        self._error(err, why)
                    else:
                        self.counters.errors += 1
                    continue
                done.append(op)
                if len(ops) <= 50:
                    self.log.info(str(op), reason=why)
        if len(ops) > 50:
            self.log.info(f"applied {len(ops) - failed} IPVS operations", reason=why, failed=failed)
        self.counters.operations += len(done)
        by_kind = self.counters.by_kind
        for kind, count in Counter(map(type, done)).items():  # (one dict update per kind, not per operation)
            by_kind[kind.__name__] = by_kind.get(kind.__name__, 0) + count
        with burst():
            self.actual = self._after(done)
        if failed:
            self._full_due = True
        return not failed

    def _after(self, done: list[d.Operation]) -> t.Table:
        """The table the kernel holds now, from the one before and the operations it carried out."""
        services, dests = dict(self.actual.services), dict(self.actual.dests)
        removing = (d.DelService, d.DelDest, d.Flush)
        first_removal = next((i for i, op in enumerate(done) if isinstance(op, removing)), len(done))
        if any(not isinstance(op, removing) for op in done[first_removal:]):  # not diff()'s order: one by one
            for op in done:
                try:
                    d.apply_one(services, dests, op)
                except d.OpError:
                    self._full_due = True
            return t.Table(services, dests)
        adds = done[:first_removal]
        services.update((op.service.key, op.service) for op in adds if isinstance(op, (d.AddService, d.EditService)))
        dests.update(((op.service, op.dest.key), op.dest) for op in adds if isinstance(op, (d.AddDest, d.EditDest)))
        gone: set[t.ServiceKey] = set()  # deleted services: the kernel deleted their destinations too
        for op in done[first_removal:]:
            if type(op) is d.DelService and op.key in services:
                del services[op.key]
                gone.add(op.key)
                continue
            try:
                d.apply_one(services, dests, op)
            except d.OpError:  # the cache was stale; the next full pass corrects it
                self._full_due = True
        if gone:  # (one scan for them all: apply_one's scan per service would be quadratic)
            dests = {k: v for k, v in dests.items() if k[0] not in gone}
        return t.Table(services, dests)

    def _backoff(self, again: bool) -> None:
        self._next_retry = min(self._next_retry * 2, self.resync_interval) if again else self.retry_delay

    def _error(self, exc: NetError, why: str) -> None:
        self.counters.errors += 1
        self.last_error = str(exc)
        self.log.error(str(exc), errno=exc.errno, reason=why)

    async def _stop(self) -> None:
        self.stopping = True  # the quorum events from here on are the stop's (omega)
        if self._port is None:
            return
        try:
            for vs in self._config.virtual_servers:
                if vs.omega and self.quorum and self.quorum.get(t.vs_name(vs)):
                    ev = t.QuorumChange(t.vs_name(vs), False, 0, vs.quorum - vs.hysteresis, vs.quorum_down)
                    self.log.info(f"Shutting down VS {ev.vs}", vs=ev.vs)
                    if self.on_event is not None:
                        self.on_event(ev)
            if not self.release_on_stop:
                self.log.info("Leaving the IPVS table in place on stop")
                return
            if self._config.global_defs.lvs_flush_on_stop == "FULL":
                await self._apply([d.Flush()], "stop")
                return
            try:
                self.actual = await self._port.dump()
            except NetError as exc:
                self._error(exc, "stop")
            ops = d.diff(t.Table(), self.actual, *self._owned(self.desired))
            await self._apply(ops, "stop")
        finally:
            await self._port.close()

