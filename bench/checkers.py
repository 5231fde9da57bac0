"""Benchmark: the checkers subsystem keeping 10,000 TCP_CHECKs at delay_loop 5 on schedule.

1,000 virtual servers x 10 real servers, every real server a distinct 127.x.y.z address with a
TCP_CHECK (delay_loop 5, connect_timeout 3): 2,000 checks a second. Everything runs in a fresh
network namespace holding only `lo` (`unshare -n`, so nothing reaches a real interface): one
listener process accepts and closes the connections (SO_REUSEPORT sockets on port 9000, one
thread each); the checkers run in this process with a recording HealthSink (no IPVS), and, as in
the daemon, the garbage collector is frozen once they run. After a warm-up of one delay_loop the
bench measures, over a window: checks completed per second,
lateness of each probe's start against its schedule (p50/p99/max), CPU of the checker process
(user+system over wall time), its RSS, and how long it waited for a CPU (run-queue time from
/proc/self/schedstat: lateness on a busy host comes from there, not from the checkers).
Target: the schedule kept (>= 98 % of 2,000 checks/s, p99 lateness small against delay_loop) on
at most 0.3 of a core, with an RSS of at most 60 MiB.

    sudo .venv/bin/python bench/checkers.py [--servers 10000] [--seconds 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PORT = 9000
DELAY_LOOP = 5
TARGET_RATE_SHARE = 0.98
TARGET_CPU = 0.3  # of one core (issue 11)
TARGET_RSS_MIB = 60


def address(i: int) -> str:
    """The i-th real server: 127.1.0.1, 127.1.0.2, ... (250 a /24)."""
    return f"127.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}"


def generate(n: int, per_vs: int = 10) -> str:
    out = ["global_defs {", "    router_id bench", "}", ""]
    for v in range(0, n, per_vs):
        out += [f"virtual_server 127.255.{v // per_vs // 250}.{1 + v // per_vs % 250} 80 {{",
                f"    delay_loop {DELAY_LOOP}", "    lb_algo rr", "    lb_kind NAT", "    protocol TCP"]
        for i in range(v, min(v + per_vs, n)):
            out += [f"    real_server {address(i)} {PORT} {{",
                    "        TCP_CHECK {", "            connect_timeout 3", "        }", "    }"]
        out.append("}")
    return "\n".join(out) + "\n"


LISTENER = r"""
import socket, sys, threading
def serve(s):
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            continue
        c.close()
threads = []
for _ in range(int(sys.argv[2])):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("0.0.0.0", int(sys.argv[1])))   # inside a namespace of its own: only lo exists
    s.listen(4096)
    t = threading.Thread(target=serve, args=(s,), daemon=True)
    t.start()
    threads.append(t)
print("ready", flush=True)
sys.stdin.read()
"""


class Sink:
    def __init__(self) -> None:
        self.calls = 0
        self.down = 0
        self.events = 0

    def set_health(self, rs, up, weight=None) -> None:
        self.calls += 1
        self.down += not up

    def notify(self, event) -> None:
        self.events += 1


def gc_pauses() -> list[float]:
    """Durations of the garbage collector's full (generation 2) collections, as they happen."""
    pauses: list[float] = []
    started = [0.0]

    def timer(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(timer)
    return pauses


def runqueue_wait() -> float:
    """Seconds this process spent runnable but waiting for a CPU (the host's other load)."""
    with open("/proc/self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def inside(args: argparse.Namespace) -> dict:
    import anyio

    from pyvrrpd.checkers.scheduler import Checkers, lateness_summary
    from pyvrrpd.config.load import load
    from pyvrrpd.daemon.memory import release_free_memory
    from pyvrrpd.observe import logs

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    assert [n for _, n in socket.if_nameindex()] == ["lo"], "not in a namespace of our own"
    listener = subprocess.Popen([sys.executable, "-c", LISTENER, str(PORT), str(args.listeners)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "ready"
        path = f"/tmp/pyvrrpd-bench-checkers-{os.getpid()}.conf"
        with open(path, "w") as f:
            f.write(generate(args.servers))
        rss_imports = rss_mib()
        loaded = load(path, host_checks=False)
        rss_loaded = rss_mib()
        os.unlink(path)
        assert loaded.ok, "generated config does not load"
        loaded = loaded.without_text()  # as the daemon keeps it once it runs
        logs.configure("json", "warning")
        pauses = gc_pauses()
        sink = Sink()
        result: dict = {}

        async def main() -> None:
            checkers = Checkers(loaded.config, sink)
            checkers.lateness = collections.deque(maxlen=int(args.servers / DELAY_LOOP * (args.seconds + 10)))
            async with anyio.create_task_group() as tg:
                await tg.start(checkers.run)
                gc.collect()  # as the daemon root does once its subsystems run: the long-lived
                gc.freeze()  # config and plan stay out of the cyclic collector's sight,
                release_free_memory()  # and the C heap's free pages go back to the system
                rss_started = rss_mib()
                await anyio.sleep(DELAY_LOOP + 2)  # every probe has run once
                checkers.lateness.clear()
                pauses.clear()
                n0, c0, t0, w0 = checkers.counters["checks"], cpu_seconds(), time.monotonic(), runqueue_wait()
                await anyio.sleep(args.seconds)
                n1, c1, t1, w1 = checkers.counters["checks"], cpu_seconds(), time.monotonic(), runqueue_wait()
                rss_running = rss_mib()  # before the snapshot below, which builds 20,000 dicts at once
                snap = checkers.snapshot()
                result.update(
                    servers=args.servers, probes=len(snap["probes"]), seconds=round(t1 - t0, 2),
                    checks_per_s=round((n1 - n0) / (t1 - t0), 1),
                    target_checks_per_s=args.servers / DELAY_LOOP,
                    lateness=lateness_summary(checkers.lateness),
                    cpu_share=round((c1 - c0) / (t1 - t0), 3), rss_mib=round(rss_running, 1),
                    rss_stages_mib={"imports": round(rss_imports, 1), "config loaded": round(rss_loaded, 1),
                                    "checkers started": round(rss_started, 1),
                                    "after a snapshot of every probe": round(rss_mib(), 1)},
                    waited_for_cpu_s=round(w1 - w0, 3), load_average=os.getloadavg(),
                    failures={k: v for k, v in checkers.counters.items() if k.startswith("failed:")},
                    stuck=checkers.counters.get("stuck", 0),
                    gc_pause_max_ms=round(max(pauses, default=0) * 1000, 1), gc_collections=len(pauses),
                    sink_calls=sink.calls, real_servers_down=sum(1 for s in snap["real_servers"] if not s["alive"]),
                )
                tg.cancel_scope.cancel()

        anyio.run(main, backend="asyncio")
        return result
    finally:
        listener.stdin.close()
        listener.terminate()
        listener.wait(10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=30.0, help="measuring window after the warm-up")
    p.add_argument("--listeners", type=int, default=2, help="accepting threads in the listener process")
    p.add_argument("--json", help="also write the result to this file")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.inside:
        if os.geteuid() != 0:
            print("bench/checkers.py needs root (it runs in a network namespace of its own)", file=sys.stderr)
            return 2
        cmd = ["unshare", "--net", "--", sys.executable, os.path.abspath(__file__), "--inside",
               "--servers", str(args.servers), "--seconds", str(args.seconds), "--listeners", str(args.listeners)]
        if args.json:
            cmd += ["--json", args.json]
        return subprocess.run(cmd, timeout=args.seconds + 600).returncode
    r = inside(args)
    rate_ok = r["checks_per_s"] >= TARGET_RATE_SHARE * r["target_checks_per_s"]
    cpu_ok = r["cpu_share"] <= TARGET_CPU
    rss_ok = r["rss_mib"] <= TARGET_RSS_MIB
    r["verdict"] = {"schedule_kept": rate_ok, "cpu_within_0_3_core": cpu_ok, "rss_within_60_mib": rss_ok}
    print(json.dumps(r, indent=2))
    print(f"checks/s {r['checks_per_s']} (schedule {r['target_checks_per_s']:.0f}), lateness p99 "
          f"{r['lateness'].get('p99_ms')} ms, CPU {r['cpu_share'] * 100:.1f} % of a core, RSS {r['rss_mib']} MiB, "
          f"waited {r['waited_for_cpu_s']} s for a CPU: "
          f"{'OK' if rate_ok and cpu_ok and rss_ok else 'TARGET MISSED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0 if rate_ok and cpu_ok and rss_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
