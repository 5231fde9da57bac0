"""Chaos for LVS: one pyvrrpd (``-C``, the LVS subsystem) on a real IPVS kernel, real servers in namespaces,
a seeded random schedule of faults, and the invariants that must hold (docs/reliability.md explains them).

    sudo .venv/bin/python -m tests.kernel.lvs_chaos --seed 2 --events 200      # boots the VM itself
    sudo .venv/bin/python -m tests.kernel.lvs_chaos --seed 2 --events 200 --list

The host has no ip_vs: run on the host, the command boots the IPVS VM (tests/kernel/vm.py) and runs
itself inside it (``--guest``); the guest test tests/kernel/guest/guest_lvs_chaos.py runs a short
schedule in the suite's VM run.

The lab: namespaces a, b, c (203.0.113.2-4) on a bridge with the director (203.0.113.1, the VM's own
namespace). Virtual servers: VS1 NAT wrr (TCP_CHECK, one real server inhibit_on_failure, a third one
added and removed by reloads), VS2 DR rr on port 8080 (HTTP_GET, one inhibit_on_failure), VS3 NAT with
quorum 3, hysteresis 0 and a sorry server (a TCP_CHECK and a MISC_CHECK real server of weight 2), VS4 DR
(TCP_CHECK; added and removed by reloads). A foreign service the daemon does not own is in the table
all along: the daemon must never touch it.

The schedule is a pure function of (seed, count): the generator runs the model (health of each real
server endpoint, the config's variant), so a run replays exactly. Events: a real server down or up
(its TCP listener closed or opened again, its HTTP path answering 500 or 200, its MISC script exiting
1 or 0), SIGHUP with the config unchanged, SIGHUP with a change (weights edited, a real server added or
removed, a virtual server added or removed), kill -9 then a new daemon, SIGTERM then a new daemon,
``ipvsadm -d`` of a destination behind the daemon's back. The run ends with every real server up,
SIGTERM and a last look.

Invariants: after each event the kernel's table (``ipvsadm -Sn``) equals the model's (config x health,
with inhibit_on_failure, quorum and the sorry server) within a bound (the event's checker timers, or
the resync interval for a repair, plus SLACK for the emulated machine); a sampler thread reads
/proc/net/ip_vs every ~30 ms all along and must never miss an entry that the model has both before and
after the event, nor see it at another weight when the model's weight is the same before and after (a
reload or a restart never makes a healthy real server disappear or drop to weight 0, even briefly; a
starting checker's first verdict is the one exception: a new daemon takes every real server as up until
its first check, as keepalived does); SIGTERM leaves only the foreign service; no traceback in a log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

DIRECTOR = "203.0.113.1/25"
HOSTS = {"a": "203.0.113.2", "b": "203.0.113.3", "c": "203.0.113.4"}
HOST_OF = {a: h for h, a in HOSTS.items()}
SORRY = "203.0.113.5"
FOREIGN = ("198.51.100.99:80", "203.0.113.9:80")  # a service (and destination) pyvrrpd does not own
VS1, VS2, VS3, VS4 = "198.51.100.30:80", "198.51.100.31:8080", "198.51.100.32:80", "198.51.100.33:8081"
QUORUM = 3

# endpoint -> (checker, host, port); health is a property of the endpoint, whatever the config says
ENDPOINTS = {
    "a:80": ("tcp", "a", 80), "b:80": ("tcp", "b", 80), "c:80": ("tcp", "c", 80),
    "a:8080": ("http", "a", 8080), "b:8080": ("http", "b", 8080),
    "a:81": ("tcp", "a", 81), "c:81": ("misc", "c", 81), "c:8081": ("tcp", "c", 8081),
}
CHANGES = ("weights", "rs", "vs")  # what a reload with a change toggles
KINDS = {"flip": 10, "reload": 1, "reload_change": 3, "kill": 1, "term": 1, "ipvsadm_d": 1}

SLACK = 8.0  # seconds the emulated VM may add to a bound
START_TIMEOUT = 120.0
MISC_TIMEOUT = 10
BOUNDS = {"tcp": 1 + 1, "http": 1 + 1, "misc": 1 + MISC_TIMEOUT}  # delay_loop + connect/misc timeout
RELOAD_BOUND = 20.0  # the reload's parse in a thread of the daemon, under emulation
RESYNC = 10.0  # pyvrrpd.lvs.reconciler.RESYNC_INTERVAL: an ipvsadm -d is repaired at the next full pass
SAMPLE_EVERY = 0.03


# -- the model -------------------------------------------------------------------------------------

@dataclass
class Model:
    """Health of every endpoint and the config's variant (a set of CHANGES toggled on)."""

    health: dict[str, bool] = field(default_factory=lambda: {e: True for e in ENDPOINTS})
    variant: frozenset = frozenset()

    def copy(self) -> Model:
        return Model(dict(self.health), self.variant)

    def servers(self) -> dict[str, tuple[str, str, list[tuple[str, int, bool]]]]:
        """vs -> (scheduler, forwarding flag, [(endpoint, weight, inhibit_on_failure)]), as configured."""
        heavy = "weights" in self.variant
        out = {
            VS1: ("wrr", "-m", [("a:80", 5 if heavy else 3, False), ("b:80", 2, True)]
                  + ([("c:80", 1, False)] if "rs" in self.variant else [])),
            VS2: ("rr", "-g", [("a:8080", 1, False), ("b:8080", 1, True)]),
            VS3: ("wrr", "-m", [("a:81", 3 if heavy else 2, False), ("c:81", 2, False)]),
        }
        if "vs" in self.variant:
            out[VS4] = ("rr", "-g", [("c:8081", 1, False)])
        return out

    def configured(self) -> list[str]:
        return [e for _, _, rss in self.servers().values() for e, _, _ in rss]

    def table(self, assume_up: frozenset | set = frozenset()) -> list[str]:
        """The expected ``ipvsadm -Sn`` lines, sorted; endpoints in ``assume_up`` count as healthy."""
        lines = [f"-A -t {FOREIGN[0]} -s rr", f"-a -t {FOREIGN[0]} -r {FOREIGN[1]} -m -w 1"]
        for vs, (sched, fwd, rss) in self.servers().items():
            lines.append(f"-A -t {vs} -s {sched}")
            up = [(e, w) for e, w, _ in rss if self.health[e] or e in assume_up]
            quorum_down = vs == VS3 and sum(w for _, w in up) < QUORUM
            if quorum_down:
                lines.append(f"-a -t {vs} -r {SORRY}:80 {fwd} -w 1")
            for e, w, inhibit in rss:
                rs = f"{HOSTS[ENDPOINTS[e][1]]}:{ENDPOINTS[e][2]}"
                if (e, w) in up and not quorum_down:
                    lines.append(f"-a -t {vs} -r {rs} {fwd} -w {w}")
                elif inhibit and (e, w) not in up:
                    lines.append(f"-a -t {vs} -r {rs} {fwd} -w 0")
        return sorted(lines)


def weights(lines: list[str]) -> dict[str, int | None]:
    """What the sampler can see of a table: ``VS`` per service (None) and ``VS RS`` per destination (its
    weight)."""
    out: dict[str, int | None] = {}
    for line in lines:
        w = line.split()
        out[w[2] if w[0] == "-A" else f"{w[2]} {w[4]}"] = None if w[0] == "-A" else int(w[-1])
    return out


def presence(lines: list[str]) -> set[str]:
    return set(weights(lines))


@dataclass(frozen=True)
class Event:
    kind: str
    target: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.target}".strip()


def apply_model(m: Model, e: Event) -> None:
    if e.kind == "flip":
        m.health[e.target] = not m.health[e.target]
    elif e.kind == "reload_change":
        m.variant = m.variant ^ {e.target}


def schedule(seed: int, count: int) -> list[Event]:
    """``count`` random events, then an ``up`` for every endpoint still down; deterministic in the args."""
    rng = random.Random(f"lvs/{seed}")
    m = Model()
    events = []
    for _ in range(count):
        kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        if kind == "flip":
            target = rng.choice(m.configured())
        elif kind == "reload_change":
            target = rng.choice(CHANGES)
        elif kind == "ipvsadm_d":
            dests = [line for line in m.table() if line.startswith("-a") and FOREIGN[0] not in line]
            w = rng.choice(dests).split()
            target = f"{w[2]} {w[4]}"
        else:
            target = ""
        events.append(Event(kind, target))
        apply_model(m, events[-1])
    for e in ENDPOINTS:
        if not m.health[e]:
            events.append(Event("flip", e))
            apply_model(m, events[-1])
    return events


def config_text(m: Model, workdir: Path) -> str:
    def block(head: str, *body: str) -> str:
        return "\n".join([head + " {", *body, "}"])

    def checker(e: str) -> str:
        kind, host, port = ENDPOINTS[e]
        if kind == "tcp":
            return block("TCP_CHECK", "connect_timeout 1", "retry 0")
        if kind == "http":
            return block("HTTP_GET", block("url", f"path /{host}{port}", "status_code 200"),
                         "connect_timeout 1", "retry 0")
        return block("MISC_CHECK", f'misc_path "/bin/sh {workdir}/misc.sh {workdir}/misc-{host}{port}"',
                     f"misc_timeout {MISC_TIMEOUT}")

    out = []
    for vs, (sched, fwd, rss) in m.servers().items():
        vip, port = vs.split(":")
        extra = ["quorum 3", "hysteresis 0", f"sorry_server {SORRY} 80"] if vs == VS3 else []
        out.append(block(f"virtual_server {vip} {port}", "delay_loop 1", f"lb_algo {sched}",
                         f"lb_kind {'NAT' if fwd == '-m' else 'DR'}", "protocol TCP", *extra, *(
                             block(f"real_server {HOSTS[ENDPOINTS[e][1]]} {ENDPOINTS[e][2]}", f"weight {w}",
                                   *(["inhibit_on_failure"] if inhibit else []), checker(e))
                             for e, w, inhibit in rss)))
    return "\n".join(out) + "\n"


# -- a run (inside the VM) -------------------------------------------------------------------------

@dataclass
class Report:
    seed: int
    count: int
    events: list[Event]
    violations: list[str] = field(default_factory=list)
    done: int = 0
    figures: dict = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def replay(self) -> str:
        return f"sudo .venv/bin/python -m tests.kernel.lvs_chaos --seed {self.seed} --events {self.count}"

    def text(self) -> str:
        """The verdict and replay command, the violations, the figures, every event with its settle time."""
        unreached = [f"#{i} {e}" for i, e in enumerate(self.events[self.done:], self.done)]
        lines = [f"lvs chaos {'PASSED' if self.ok else 'FAILED'}: seed {self.seed}, {self.done}/{len(self.events)} "
                 f"events; replay: {self.replay()}", "figures: " + json.dumps(self.figures, sort_keys=True)]
        for title, items in (("violations", self.violations), ("events", self.log), ("not reached", unreached)):
            if items:
                lines.append(f"{title}:")
                lines.extend("  " + item for item in items)
        return "\n".join(lines)


def read_proc() -> dict[str, int | None]:
    """/proc/net/ip_vs as ``weights`` (no process to start: fast enough to sample all along)."""
    from tests.kernel.guest.guest_daemon import proc_table
    out: dict[str, int | None] = {}
    for entry in proc_table():
        words = entry.split()
        out[" ".join(words[:2])] = int(words[2]) if len(words) > 2 else None
    return out


class Sampler:
    """Reads /proc/net/ip_vs every SAMPLE_EVERY seconds until stopped (bounded by ``limit`` seconds); an
    entry of ``must`` missing from a sample, or at another weight than ``must`` says (None: any), is noted
    with the event it happened in."""

    def __init__(self, limit: float) -> None:
        self.lock = threading.Lock()
        self.must: dict[str, int | None] = {}
        self.event = "start"
        self.samples = 0
        self.misses: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(limit,), name="ip_vs sampler", daemon=True)
        self._thread.start()

    def set(self, must: dict[str, int | None], event: str) -> None:
        with self.lock:
            self.must, self.event = dict(must), event

    def _run(self, limit: float) -> None:
        end = time.monotonic() + limit
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                seen = read_proc()
            except OSError:
                seen = None
            with self.lock:
                if seen is not None:
                    self.samples += 1
                    gone = sorted(k for k in self.must if k not in seen)
                    moved = sorted(f"{k} at weight {seen[k]}, not {w}" for k, w in self.must.items()
                                   if w is not None and k in seen and seen[k] != w)
                    if gone or moved:
                        if len(self.misses) < 50:
                            self.misses.append(f"during {self.event}: " + "; ".join(
                                ([f"{gone} missing"] if gone else []) + moved))
                        for k in gone + [m.split(" at weight")[0] for m in moved]:
                            del self.must[k]  # noted once per event
            self._stop.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class LvsChaos:
    """Runs one schedule in a fresh lab; ``run()`` returns the Report (violations are data)."""

    MAX_VIOLATIONS = 20

    def __init__(self, seed: int, count: int, workdir: Path) -> None:
        self.seed, self.count, self.workdir = seed, count, Path(workdir)
        self.events = schedule(seed, count)
        self.report = Report(seed, count, self.events)
        self.model = Model()
        self.conf = self.workdir / "keepalived.conf"
        self.daemon = None
        self.starts = 0
        self.logs: list[Path] = []
        self.t0_run = time.monotonic()
        self.misses_seen = 0

    def violation(self, text: str) -> None:
        when = f"after #{self.report.done - 1} {self.events[self.report.done - 1]}" if self.report.done else "at start"
        self.report.violations.append(f"{when}: {text}")
        print(f"lvs chaos: VIOLATION {when}: {text}", file=sys.stderr, flush=True)

    # -- the world --------------------------------------------------------------------------------

    def set_health(self, endpoint: str, up: bool) -> None:
        from tests.kernel.guest import realservers
        kind, host, port = ENDPOINTS[endpoint]
        if kind == "tcp":
            if up:
                self.lab.serve(host, port)
            else:
                self.lab.stop(host, port)
        elif kind == "http":
            realservers.ROUTES[f"/{host}{port}"] = (200, b"ok\n") if up else (500, b"failing\n")
        else:
            (self.workdir / f"misc-{host}{port}").write_text("0\n" if up else "1\n")

    def start_daemon(self) -> None:
        from tests.kernel.guest.guest_daemon import Forked
        self.starts += 1
        log = self.workdir / f"pyvrrpd-{self.starts}.log"
        log.write_text("")
        self.logs.append(log)
        argv = ["-C", "-n", "-f", str(self.conf), "--control-socket", "none", "--log-format", "json",
                "-p", str(self.workdir / "pyvrrpd.pid")]
        self.daemon = Forked(argv, log, [s.sock for s in self.lab.servers.values()])
        deadline = time.monotonic() + START_TIMEOUT
        while "checkers started" not in self.log():
            if self.daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited ({self.daemon.returncode}):\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the daemon did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.logs[-1].read_text(errors="replace") if self.logs else ""

    def stop_daemon(self, sig: int) -> int | None:
        self.daemon.send_signal(sig)
        try:
            return self.daemon.wait(40)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired; a daemon that hangs is killed
            self.daemon.kill()
            self.daemon.wait(10)
            self.violation(f"the daemon did not exit within 40 s of signal {sig}")
            return None

    def reloads_done(self) -> int:
        return sum(": reconfigured" in line or "keeping the running configuration" in line
                   for line in self.log().splitlines())

    def table(self) -> list[str]:
        from tests.kernel.guest.helpers import saved
        return saved()

    # -- events -----------------------------------------------------------------------------------

    def apply(self, event: Event, before: Model, after: Model) -> tuple[float, list[str]]:
        """Do ``event``; return its settle bound and the endpoints whose first check must be seen in the
        log (a new daemon, or a reload's new real server, takes them as up until then)."""
        kind = event.kind
        if kind == "flip":
            self.set_health(event.target, after.health[event.target])
            return BOUNDS[ENDPOINTS[event.target][0]], []
        if kind in ("reload", "reload_change"):
            if kind == "reload_change":
                self.conf.write_text(config_text(after, self.workdir))
            n = self.reloads_done()
            self.daemon.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + RELOAD_BOUND + SLACK
            while self.reloads_done() == n and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.reloads_done() == n:
                self.violation("the reload was not done within its bound")
            new = set(after.configured()) - set(before.configured())
            return self.first_checks_bound(new, after), [e for e in new if not after.health[e]]
        if kind in ("kill", "term"):
            code = self.stop_daemon(signal.SIGKILL if kind == "kill" else signal.SIGTERM)
            if kind == "term":
                if code != 0:
                    self.violation(f"pyvrrpd exited {code} on SIGTERM")
                if (left := self.table()) != sorted(line for line in before.table() if FOREIGN[0] in line):
                    self.violation(f"SIGTERM left {left}, not just the foreign service")
            self.start_daemon()
            down = [e for e in after.configured() if not after.health[e]]
            return self.first_checks_bound(set(after.configured()), after), down
        if kind == "ipvsadm_d":
            from tests.kernel.guest.helpers import sh
            vs, rs = event.target.split()
            sh("ipvsadm", "-d", "-t", vs, "-r", rs)
            return RESYNC + 2, []
        raise ValueError(kind)

    @staticmethod
    def first_checks_bound(endpoints: set[str], m: Model) -> float:
        return max([BOUNDS[ENDPOINTS[e][0]] for e in endpoints] + [2.0])

    def must_stay(self, event: Event, before: Model, after: Model) -> dict[str, int | None]:
        """What the sampler must see all through ``event``: in the model before and after it; a restart's
        or a reload's new checkers take their real servers as up at first, so what that takes away (the
        sorry server) is excused; the destination an ``ipvsadm -d`` deletes is excused too. An entry whose
        weight is the same in all of these must keep that weight all along (a healthy real server must not
        go to weight 0 for a moment either); else any weight will do."""
        if event.kind == "term":
            return weights([line for line in before.table() if FOREIGN[0] in line])
        tables = [weights(before.table()), weights(after.table())]
        if event.kind == "kill":
            tables.append(weights(after.table(set(after.configured()))))
        elif event.kind in ("reload", "reload_change"):
            tables.append(weights(after.table(set(after.configured()) - set(before.configured()))))
        keep = {k: w if all(t[k] == w for t in tables) else None for k, w in tables[0].items()
                if all(k in t for t in tables)}
        if event.kind == "ipvsadm_d":
            keep.pop(event.target, None)
        return keep

    def downs(self) -> dict[str, int]:
        """How many times the running daemon has logged each endpoint down."""
        lines = [line for line in self.log().splitlines() if "Real server down" in line]
        return {e: sum(f'"{HOSTS[host]}:{port} of VS' in line for line in lines)
                for e, (_, host, port) in ENDPOINTS.items()}

    def settle(self, want: list[str], bound: float, first: list[str], t0: float,
               downs: dict[str, int] | None = None) -> float | None:
        """Wait until the table equals ``want`` (after the first verdicts on ``first`` are in the log: a
        "Real server down" beyond the ``downs`` counted before the event); the seconds it took from
        ``t0``, or None (a violation) past ``bound + SLACK``."""
        deadline = t0 + bound + SLACK
        pending = set(first)
        table: list[str] = []
        while time.monotonic() < deadline:
            if pending:
                now = self.downs()
                pending = {e for e in pending if now[e] <= (downs or {}).get(e, 0)}
            if not pending:
                table = self.table()
                if table == want:
                    return time.monotonic() - t0
            time.sleep(0.15)
        table = self.table()
        missing, extra = sorted(set(want) - set(table)), sorted(set(table) - set(want))
        self.violation(f"not settled within {bound:g} + {SLACK:g} s: missing {missing}, unexpected {extra}"
                       + (f", no first check seen for {sorted(pending)}" if pending else ""))
        return None

    def run(self) -> Report:
        from tests.kernel.guest.helpers import flush, sh
        from tests.kernel.guest.realservers import ROUTES, Lab
        started = time.monotonic()
        self.report.figures["load_avg_start"] = round(os.getloadavg()[0], 2)
        cpu0 = os.times()
        routes = dict(ROUTES)
        self.lab = Lab("lvc", DIRECTOR, {h: f"{a}/25" for h, a in HOSTS.items()})
        sampler = None
        try:
            flush()
            sh("ipvsadm", "-A", "-t", FOREIGN[0], "-s", "rr")
            sh("ipvsadm", "-a", "-t", FOREIGN[0], "-r", FOREIGN[1], "-m", "-w", "1")
            (self.workdir / "misc.sh").write_text('read code < "$1"\nexit $code\n')
            self.lab.open()
            for e, (kind, host, port) in ENDPOINTS.items():
                if kind == "http":  # the listener stays; its path answers 200 or 500
                    self.lab.serve(host, port, http=True)
                self.set_health(e, True)
            self.conf.write_text(config_text(self.model, self.workdir))
            self.start_daemon()
            sampler = Sampler(limit=3600 * 6)
            t_run = self.t0_run = time.monotonic()
            self.settle(self.model.table(), 2.0, [], time.monotonic())
            time.sleep(3)  # the first checks are in (a failing one would show now, not in an event)
            self.settle(self.model.table(), 2.0, [], time.monotonic())
            self._events(sampler)
            self.finish(sampler)
            self.report.figures["run_s"] = round(time.monotonic() - t_run, 1)
        except (OSError, RuntimeError, TimeoutError, AssertionError) as exc:
            self.violation(f"harness error: {type(exc).__name__}: {exc}")
            self.report.figures["harness_error"] = True
        finally:
            if sampler is not None:
                sampler.stop()
                self.report.figures["sampler"] = {"samples": sampler.samples, "misses": len(sampler.misses)}
            if self.daemon is not None and self.daemon.poll() is None:
                self.daemon.kill()
                self.daemon.wait(10)
            self.lab.close()
            ROUTES.clear()
            ROUTES.update(routes)
            flush()
            cpu = os.times()
            self.report.figures["wall_s"] = round(time.monotonic() - started, 1)
            self.report.figures["cpu_s_harness"] = round(cpu.user + cpu.system - cpu0.user - cpu0.system, 1)
            self.report.figures["cpu_s_daemons"] = round(cpu.children_user + cpu.children_system
                                                         - cpu0.children_user - cpu0.children_system, 1)
            self.report.figures["load_avg_end"] = round(os.getloadavg()[0], 2)
        return self.report

    def _events(self, sampler: Sampler) -> None:
        kinds: dict[str, int] = {}
        settles: dict[str, list[float]] = {}
        for i, event in enumerate(self.events):
            self.report.done = i + 1
            before = self.model.copy()
            after = self.model.copy()
            apply_model(after, event)
            sampler.set(self.must_stay(event, before, after), f"#{i} {event}")
            t0 = time.monotonic()
            self.report.log.append(f"#{i} +{t0 - self.t0_run:.1f} s {event}")
            downs = {} if event.kind in ("kill", "term") else self.downs()  # a new daemon: a new log
            bound, first = self.apply(event, before, after)
            self.model = after
            took = self.settle(after.table(), bound + (time.monotonic() - t0), first, t0, downs)
            self.report.log[-1] += f": settled in {took:.2f} s" if took is not None else ": NOT SETTLED"
            print(f"lvs chaos: {self.report.log[-1]}", flush=True)
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
            if took is not None:
                settles.setdefault(event.kind, []).append(took)
            with sampler.lock:
                new = sampler.misses[self.misses_seen:]
                self.misses_seen = len(sampler.misses)
            for miss in new:
                self.violation(f"sampler: {miss}")
            if len(self.report.violations) >= self.MAX_VIOLATIONS:
                self.report.violations.append("too many violations; stopped")
                break
        self.report.figures["kinds"] = kinds
        self.report.figures["settle_s"] = {
            k: {"n": len(v), "median": round(sorted(v)[len(v) // 2], 2), "max": round(max(v), 2)}
            for k, v in sorted(settles.items())}

    def finish(self, sampler: Sampler) -> None:
        """SIGTERM: only the foreign service is left; no log holds a traceback."""
        sampler.set(weights([line for line in self.model.table() if FOREIGN[0] in line]), "the final SIGTERM")
        code = self.stop_daemon(signal.SIGTERM)
        if code != 0:
            self.violation(f"pyvrrpd exited {code} on the final SIGTERM")
        foreign = sorted(line for line in self.model.table() if FOREIGN[0] in line)
        if (left := self.table()) != foreign:
            self.violation(f"after SIGTERM the table is {left}, not just the foreign service")
        errors = 0
        for log in self.logs:
            text = log.read_text(errors="replace")
            if "Traceback" in text:
                self.violation(f"a traceback in {log}")
            errors += sum('"level": "error"' in line or '"level": "critical"' in line for line in text.splitlines())
        self.report.figures["error_log_lines"] = errors
        self.report.figures["daemon_starts"] = self.starts


def run_in_guest(seed: int, count: int, workdir: Path) -> int:
    # what the daemon imports, imported once here: a forked daemon then starts in about a second
    import pyvrrpd.cli  # noqa: F401
    import pyvrrpd.daemon.lvs  # noqa: F401
    import pyvrrpd.daemon.root  # noqa: F401
    print(f"lvs chaos: seed {seed}, {count} events, workdir {workdir}", flush=True)
    report = LvsChaos(seed, count, workdir).run()
    print(report.text(), flush=True)
    if report.figures.get("harness_error"):
        return 2
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="LVS chaos on a real IPVS kernel, in the VM (docs/reliability.md)")
    p.add_argument("--seed", type=int, default=None, help="schedule seed (default: random, printed)")
    p.add_argument("--events", type=int, default=200, help="random events, 1..2000")
    p.add_argument("--workdir", type=Path, default=None, help="config, logs and report (default: a new /tmp dir)")
    p.add_argument("--list", action="store_true", help="print the schedule and exit")
    p.add_argument("--guest", action="store_true", help="run here (inside the VM: needs ip_vs); else boot the VM")
    args = p.parse_args(argv)
    if not 1 <= args.events <= 2000:
        p.error("--events must be within 1..2000")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    if args.list:
        print("\n".join(f"#{i} {e}" for i, e in enumerate(schedule(seed, args.events))))
        return 0
    import tempfile
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pyvrrpd-lvs-chaos-"))
    if args.guest:
        return run_in_guest(seed, args.events, workdir)
    from tests.kernel.vm import ROOT, VmError, run_in_vm
    script = (f"modprobe ip_vs\ncd {ROOT}\n{ROOT / '.venv' / 'bin' / 'python'} -m tests.kernel.lvs_chaos --guest "
              f"--seed {seed} --events {args.events} --workdir {workdir}/guest > {workdir}/report.txt 2>&1\n"
              f"echo $? > {workdir}/rc\n")
    (workdir / "guest").mkdir(parents=True, exist_ok=True)
    print(f"lvs chaos: seed {seed}, {args.events} events; booting the VM (workdir {workdir})", flush=True)
    t0 = time.monotonic()
    try:
        run_in_vm(script, workdir, timeout=300 + 30 * args.events)
    except (VmError, OSError) as exc:
        print(f"lvs chaos: ERROR: {exc}", file=sys.stderr)
        return 2
    report = workdir / "report.txt"
    print(report.read_text() if report.exists() else "(no report from the guest)")
    print(f"lvs chaos: VM run {time.monotonic() - t0:.1f} s wall time (boot included); workdir {workdir}")
    rc = workdir / "rc"
    return int(rc.read_text()) if rc.exists() and rc.read_text().strip().isdigit() else 2


if __name__ == "__main__":
    sys.exit(main())
