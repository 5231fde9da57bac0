"""Soak: one pyvrrpd master with 100 VRRPv3 instances at 0.1 s and 1,000 TCP_CHECKs, for an hour.

A lab of three nodes on one bridge: d1 runs pyvrrpd (VRIDs 1-100, one VIP 203.0.113.V/32 each, MASTER,
advert_int 0.1; 10 virtual servers x 100 real servers, each a TCP_CHECK every --delay-loop seconds); rs holds
the 1,000 real servers (one process, one listening socket per port 20000-20999 on 198.51.100.13: it accepts
and closes, and counts what it accepted); d2 records the adverts with kernel receive timestamps (AF_PACKET,
SO_TIMESTAMPNS; its drops from PACKET_STATISTICS are reported, so a lost capture never passes for a silent
daemon). The host has no IPVS: the daemon runs unchanged and, finding no ip_vs generic netlink family,
logs that error and programs the reconciler's in-memory table instead (its own fallback, as in
bench/vrrp_scale.py --full): the checkers really connect and the health changes go through the reconciler
as on a director; only the kernel's table is absent.

After the VIPs are up and a warm-up (--warmup, default 60 s: every checker has run and the second GARP
burst is over) the window of --seconds (default 3600) starts. Measured:

* memory: RSS and PSS of the daemon at the start of the window and at its end, sampled every minute between;
  growth % from start to end;
* adverts: |gap - 100 ms| between consecutive adverts of each VRID, p50 / p99 / max, over the whole window
  (a histogram in 10 us buckets: an hour is 3.6 million gaps), and per minute;
* missed adverts: times a VRID was silent for over 1.5 intervals (150 ms), the window's edges included;
* checks per second (connections the real servers accepted), the daemon's CPU (utime+stime over wall time)
  and its time waiting for a CPU (/proc/PID/schedstat), the load average;
* the machine's stalls: a thread of the driver, scheduled as the daemon (SCHED_RR N with --rt-priority),
  sleeps 10 ms at a time and notes every wake-up over 30 ms late; each silence over 1.5 intervals is
  kept with its time (the first 500) and the time the probe lost inside it, to tell the machine's stalls
  from the daemon's (reported, not part of the verdict: the probe samples one CPU, the daemon may run on
  the other).

    sudo .venv/bin/python bench/soak.py [--seconds 3600] [--rt-priority N] [--starve] [--json FILE]

--rt-priority N puts `vrrp_rt_priority N` in global_defs (the daemon then runs SCHED_RR, see
docs/operations.md "Scheduling"). --starve runs the daemon under `nice -n 19` and one busy loop per core
at nice 0 (in the root namespace, no traffic) for the whole window; run it with and without --rt-priority.

Verdict (exit 0 only if all hold): the daemon ran the whole window, every VRID seen, RSS growth < 5 %,
jitter p99 < 5 ms, 0 missed adverts, the capture dropped nothing.
"""

from __future__ import annotations

import argparse
import collections
import compileall
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import Check, verdict  # noqa: E402

INTERVAL = 0.1
SETTLE = 6.5
INSTANCES = 100
VIRTUAL_SERVERS = 10
PER_VS = 100
BASE_PORT = 20000
ETH_P_IP = 0x0800
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SOL_PACKET, PACKET_STATISTICS = 263, 6
PACKET_OUTGOING = 4
BUCKET_US = 10  # histogram resolution of |gap - interval|
TARGET_RSS_GROWTH = 5.0  # %
TARGET_P99_MS = 5.0
MAX_SILENCES = 500  # silences over 1.5 intervals kept with their times, for the stall probe's comparison


def config(rs_addr: str, delay_loop: int, rt_priority: int | None) -> str:
    out = ["global_defs {", "    router_id d1", "    vrrp_version 3"]
    if rt_priority is not None:
        out.append(f"    vrrp_rt_priority {rt_priority}")
    out.append("}")
    for vrid in range(1, INSTANCES + 1):
        out += [f"vrrp_instance VI_{vrid} {{", "    state MASTER", "    interface lan0",
                f"    virtual_router_id {vrid}", "    priority 150", f"    advert_int {INTERVAL:g}",
                "    virtual_ipaddress {", f"        203.0.113.{vrid}/32 dev lan0", "    }", "}"]
    for v in range(VIRTUAL_SERVERS):
        out += [f"virtual_server 203.0.113.{201 + v} 80 {{", f"    delay_loop {delay_loop}", "    lb_algo rr",
                "    lb_kind NAT", "    protocol TCP"]
        for i in range(v * PER_VS, (v + 1) * PER_VS):
            out += [f"    real_server {rs_addr} {BASE_PORT + i} {{", "        TCP_CHECK {",
                    "            connect_timeout 3", "        }", "    }"]
        out.append("}")
    return "\n".join(out) + "\n"


# -- the real servers (run inside rs) -----------------------------------------------------------

def serve(ports: int, count_file: str, seconds: float) -> int:
    """One listening socket per port; accept and close; the running count of accepts in `count_file`."""
    import selectors

    sel = selectors.DefaultSelector()
    for i in range(ports):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", BASE_PORT + i))
        s.listen(64)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    accepted, next_write, end = 0, 0.0, time.monotonic() + seconds
    print("ready", flush=True)
    while time.monotonic() < end:
        for key, _ in sel.select(0.5):
            try:
                conn, _ = key.fileobj.accept()
                conn.close()
                accepted += 1
            except OSError:
                pass
        if time.monotonic() >= next_write:
            Path(count_file + ".tmp").write_text(str(accepted))
            os.replace(count_file + ".tmp", count_file)
            next_write = time.monotonic() + 1
    return 0


# -- the capture (runs inside d2) ---------------------------------------------------------------

def sniff(iface: str, seconds: float) -> dict:
    """Kernel-timestamped adverts per VRID for `seconds`, reduced as they come (an hour is 3.6 M gaps)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    sock.bind((iface, 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # reading resets the counters: count from here
    sock.settimeout(0.2)
    hist: collections.Counter[int] = collections.Counter()
    minutes: list[dict] = []
    minute_hist: collections.Counter[int] = collections.Counter()
    minute_missed = 0
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    adverts = missed = 0
    longest = 0.0
    silences: list[dict] = []  # the first MAX_SILENCES over 1.5 intervals: when (CLOCK_REALTIME), how long, VRID
    t_start = time.time()
    t_end = t_start + seconds
    next_minute = t_start + 60
    end = time.monotonic() + seconds
    drops = 0
    while True:
        draining = time.monotonic() >= end
        if draining:
            sock.setblocking(False)
        try:
            frame, anc, _flags, addr = sock.recvmsg(2048, 64)
        except (TimeoutError, BlockingIOError):
            if draining:
                break
            continue
        if addr[2] == PACKET_OUTGOING or len(frame) < 24 or frame[9] != 112:
            continue
        ihl = (frame[0] & 0x0F) * 4
        if len(frame) < ihl + 4 or frame[ihl + 2] == 0:
            continue
        stamp = next((sec + nsec / 1e9 for level, kind, data in anc
                      if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS
                      for sec, nsec in [struct.unpack("@qq", data[:16])]), None) or time.time()
        if stamp > t_end:
            continue
        while stamp >= next_minute:  # a minute is over: its own p99 and silences
            minutes.append(_summary(minute_hist) | {"missed": minute_missed})
            minute_hist, minute_missed = collections.Counter(), 0
            next_minute += 60
        vrid = frame[ihl + 1]
        adverts += 1
        prev = last.get(vrid)
        if prev is None:
            first[vrid] = stamp
        else:
            gap = stamp - prev
            bucket = int(abs(gap - INTERVAL) * 1e6) // BUCKET_US
            hist[bucket] += 1
            minute_hist[bucket] += 1
            longest = max(longest, gap)
            if gap > 1.5 * INTERVAL:
                missed += 1
                minute_missed += 1
                if len(silences) < MAX_SILENCES:
                    silences.append({"t": round(prev, 6), "ms": round(gap * 1000, 3), "vrid": vrid})
        last[vrid] = stamp
    packets, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    edges = [t - t_start for t in first.values()] + [t_end - t for t in last.values()]
    missed += sum(1 for e in edges if e > 1.5 * INTERVAL)
    longest = max([longest, *edges])
    return {"seconds": seconds, "vrids": len(last), "adverts": adverts, **_summary(hist),
            "missed": missed, "longest_silence_ms": round(longest * 1000, 3), "capture_drops": drops,
            "minutes": minutes, "silences": silences}


def _summary(hist: collections.Counter) -> dict:
    n = sum(hist.values())
    if not n:
        return {"gaps": 0, "dev_p50_ms": None, "dev_p99_ms": None, "dev_max_ms": None}
    out, seen, keys = {}, 0, sorted(hist)
    targets = [("dev_p50_ms", 0.5), ("dev_p99_ms", 0.99)]
    for k in keys:
        seen += hist[k]
        while targets and seen >= targets[0][1] * n:
            out[targets.pop(0)[0]] = round((k + 1) * BUCKET_US / 1000, 3)  # the bucket's upper edge
    out["dev_max_ms"] = round((keys[-1] + 1) * BUCKET_US / 1000, 3)
    return {"gaps": n, **out}


# -- the driver (root namespace: starts the lab, reads /proc) ----------------------------------

def proc_sample(pid: int) -> dict:
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    rss = pss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
    waited = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    return {"t": time.monotonic(), "cpu_s": (int(fields[11]) + int(fields[12])) / ticks, "rss_kb": rss,
            "pss_kb": pss, "waited_s": waited, "threads": int(fields[17]), "nice": int(fields[16]),
            "policy": int(fields[38]), "rt_priority": int(fields[37]), "load": os.getloadavg()}


def stall_probe(rt_priority: int | None, limit: float):
    """The chaos harness's stall probe (tests/net/chaos.py: a thread that sleeps 10 ms at a time and notes
    every wake-up over 30 ms late), scheduled as the daemon (SCHED_RR N with --rt-priority): what the
    machine takes from a task scheduled like the daemon (the hypervisor, the kernel). A silence of the
    daemon's adverts the probe lost too is the machine's; one it did not is the daemon's own, or of the
    other CPU. Bounded: ends on stop() or after `limit` s."""
    import threading

    from tests.net.chaos import StallProbe

    class Probe(StallProbe):
        def __init__(self) -> None:
            self.rt_priority, self.policy_error = rt_priority, None
            super().__init__(limit)

        def _run(self, limit: float) -> None:
            if self.rt_priority is not None:
                try:
                    os.sched_setscheduler(threading.get_native_id(), os.SCHED_RR, os.sched_param(self.rt_priority))
                except OSError as e:
                    self.policy_error = str(e)
            super()._run(limit)

        def report(self, silences: list[dict]) -> dict:
            """The probe's stalls, and each recorded silence with the time the probe lost inside it."""
            for s in silences:
                s["probe_lost_ms"] = round(self.within(s["t"], s["t"] + s["ms"] / 1000) * 1000, 1)
            lengths = [b - a for a, b in self.stalls]
            return {"rt_priority": self.rt_priority, "policy_error": self.policy_error, "count": len(lengths),
                    "total_s": round(sum(lengths), 3), "longest_ms": round(max(lengths, default=0) * 1000, 1),
                    "silences_the_probe_lost_half_of": sum(1 for s in silences
                                                           if s["probe_lost_ms"] >= s["ms"] / 2)}

    return Probe()


def thread_policies(pid: int) -> list[int]:
    """The scheduling policy of every thread of `pid` (0 other, 2 SCHED_RR)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out.append(int(Path(f"/proc/{pid}/task/{tid}/stat").read_text().rpartition(")")[2].split()[38]))
        except (OSError, IndexError, ValueError):
            pass
    return out


def status(sock_path: Path) -> dict:
    """GET /status on the daemon's control socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(sock_path))
        s.sendall(b"GET /status HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])


BUSY = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


def soak(lab, args, workdir: Path) -> dict:
    from tests.net.lab import DAEMON_WRAPPER, wait_for  # noqa: F401 (the lab's wrapper: private /run)

    rs_addr = lab.ipv4("rs")
    count_file = workdir / "accepted"
    total = args.warmup + args.seconds + 120
    servers = lab.spawn("rs", [sys.executable, __file__, "--serve", "--seconds", f"{total:g}",
                               "--count-file", str(count_file)], workdir / "rs.log")
    wait_for(lambda: count_file.exists() or servers.poll() is not None, timeout=30, what="the real servers")
    conf = workdir / "pyvrrpd-d1.conf"
    conf.write_text(config(rs_addr, args.delay_loop, args.rt_priority))
    ctl = workdir / "ctl.sock"
    pid_file = workdir / "pyvrrpd-d1.pid"
    argv = [*(["nice", "-n", "19"] if args.starve else []), sys.executable, "-m", "pyvrrpd", "-f", str(conf),
            "-p", str(pid_file), "--control-socket", str(ctl), "--log-level", "warning"]
    daemon = lab.spawn("d1", argv, workdir / "pyvrrpd-d1.log", daemon=True)
    busy: list[subprocess.Popen] = []
    result: dict = {"rt_priority": args.rt_priority, "starve": args.starve, "delay_loop": args.delay_loop,
                    "real_servers": VIRTUAL_SERVERS * PER_VS, "instances": INSTANCES}
    try:
        vips = {f"203.0.113.{v}" for v in range(1, INSTANCES + 1)}
        wait_for(lambda: daemon.poll() is None and vips <= lab.addresses("d1"), timeout=60, interval=0.5,
                 what="the 100 VIPs")
        pid = daemon.pid
        snap = status(ctl)
        result["scheduling"] = snap.get("process", {}).get("scheduling")
        if args.starve:
            cores = os.cpu_count() or 1
            busy = [subprocess.Popen([sys.executable, "-c", BUSY, f"{args.warmup + args.seconds + 60:g}"])
                    for _ in range(cores)]
            result["busy_loops"] = cores
        time.sleep(max(args.warmup, SETTLE))
        sniffer = subprocess.Popen(["ip", "netns", "exec", lab.ns("d2"), sys.executable, __file__, "--sniff",
                                    "--seconds", f"{args.seconds:g}"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # the capture is open (its window starts at its own clock)
        probe = stall_probe(args.rt_priority, args.seconds + 120)
        accepted0 = int(count_file.read_text())
        samples = [proc_sample(pid)]
        result["thread_policies_start"] = thread_policies(pid)
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            time.sleep(min(60.0, max(0.0, end - time.monotonic())))
            if daemon.poll() is not None:
                break
            samples.append(proc_sample(pid))
            s = samples[-1]
            print(f"# {s['t'] - samples[0]['t']:6.0f} s: RSS {s['rss_kb'] / 1024:.1f} MiB, PSS "
                  f"{s['pss_kb'] / 1024:.1f} MiB, CPU {(s['cpu_s'] - samples[0]['cpu_s']) / max(1e-9, s['t'] - samples[0]['t']) * 100:.1f} %, "
                  f"load {' '.join(f'{x:.2f}' for x in s['load'])}", file=sys.stderr, flush=True)
        accepted1 = int(count_file.read_text())
        result["daemon_alive_at_end"] = daemon.poll() is None
        if result["daemon_alive_at_end"]:
            result["thread_policies_end"] = thread_policies(pid)
            try:
                lvs = status(ctl).get("lvs", {})
                result["ipvs"] = {k: v for k, v in lvs.get("ipvs", {}).items() if not isinstance(v, (list, dict))}
            except (OSError, ValueError) as e:
                result["ipvs"] = {"error": str(e)}
        out, _ = sniffer.communicate(timeout=60)
        probe.stop()
        capture = json.loads(out.splitlines()[-1])
        result["stall_probe"] = probe.report(capture["silences"])
    finally:
        for p in busy:
            p.kill()
            p.wait(10)
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(10)
        servers.kill()
        servers.wait(10)
    first, final = samples[0], samples[-1]
    wall = final["t"] - first["t"]
    result.update(
        window_s=round(wall, 1), capture=capture,
        rss_start_mib=round(first["rss_kb"] / 1024, 2), rss_end_mib=round(final["rss_kb"] / 1024, 2),
        pss_start_mib=round(first["pss_kb"] / 1024, 2), pss_end_mib=round(final["pss_kb"] / 1024, 2),
        rss_growth_pct=round((final["rss_kb"] - first["rss_kb"]) / first["rss_kb"] * 100, 2),
        pss_growth_pct=round((final["pss_kb"] - first["pss_kb"]) / first["pss_kb"] * 100, 2),
        cpu_percent=round((final["cpu_s"] - first["cpu_s"]) / wall * 100, 1) if wall else None,
        waited_for_cpu_s=round(final["waited_s"] - first["waited_s"], 2),
        checks_per_s=round((accepted1 - accepted0) / wall, 1) if wall else None,
        checks_per_s_schedule=VIRTUAL_SERVERS * PER_VS / args.delay_loop,
        load_start=first["load"], load_end=final["load"], policy=final["policy"], nice=final["nice"],
        threads=final["threads"],
        samples=[{"t": round(s["t"] - first["t"]), "rss_mib": round(s["rss_kb"] / 1024, 2),
                  "pss_mib": round(s["pss_kb"] / 1024, 2), "load1": s["load"][0]} for s in samples],
    )
    return result


def rate(r: dict, args) -> list[Check]:
    c = r["capture"]
    checks = [
        Check("daemon ran the whole window", r.get("daemon_alive_at_end", False), f"window {r['window_s']} s"),
        Check("every VRID seen", c["vrids"] == INSTANCES, f"{c['vrids']} of {INSTANCES}"),
        Check(f"RSS growth < {TARGET_RSS_GROWTH:g} %", r["rss_growth_pct"] < TARGET_RSS_GROWTH,
              f"{r['rss_start_mib']} -> {r['rss_end_mib']} MiB ({r['rss_growth_pct']:+.2f} %); PSS "
              f"{r['pss_start_mib']} -> {r['pss_end_mib']} MiB ({r['pss_growth_pct']:+.2f} %)"),
        Check(f"advert jitter p99 < {TARGET_P99_MS:g} ms", c["dev_p99_ms"] is not None
              and c["dev_p99_ms"] < TARGET_P99_MS,
              f"|gap - 100 ms| p50 {c['dev_p50_ms']} / p99 {c['dev_p99_ms']} / max {c['dev_max_ms']} ms over "
              f"{c['gaps']} gaps"),
        Check("no missed advert (silence > 150 ms)", c["missed"] == 0,
              f"{c['missed']} silences over 150 ms, longest {c['longest_silence_ms']} ms"),
        Check("the capture dropped nothing", c["capture_drops"] == 0, f"{c['capture_drops']} dropped"),
    ]
    if args.rt_priority is not None:
        ok = r.get("policy") == 2 and set(r.get("thread_policies_end") or [0]) == {2}
        checks.append(Check(f"SCHED_RR {args.rt_priority} on every thread", ok,
                            f"policies per thread {sorted(set(r.get('thread_policies_end') or []))} "
                            f"(2 = SCHED_RR); daemon says {r.get('scheduling')}"))
    return checks


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3600.0, help="measurement window, 30-7200 s")
    p.add_argument("--warmup", type=float, default=60.0, help="after the VIPs are up, before the window")
    p.add_argument("--delay-loop", type=int, default=5, help="TCP_CHECK delay_loop (1,000 checks every N s)")
    p.add_argument("--rt-priority", type=int, help="vrrp_rt_priority N in the config (1-99)")
    p.add_argument("--starve", action="store_true", help="daemon at nice 19, a busy loop per core at nice 0")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--workdir")
    p.add_argument("--sniff", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--count-file", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sniff:
        print(json.dumps(sniff("lan0", args.seconds)), flush=True)
        return 0
    if args.serve:
        return serve(VIRTUAL_SERVERS * PER_VS, args.count_file, args.seconds)
    if not (30 <= args.seconds <= 7200 and 0 <= args.warmup <= 600 and 1 <= args.delay_loop <= 3600
            and (args.rt_priority is None or 1 <= args.rt_priority <= 99)):
        p.error("bad --seconds, --warmup, --delay-loop or --rt-priority")
    if os.geteuid() != 0:
        print("needs root and ip netns", file=sys.stderr)
        return 2
    from tests.net.lab import Lab, LabError

    compileall.compile_dir(str(ROOT / "pyvrrpd"), quiet=1)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="pyvrrpd-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# soak: {INSTANCES} VRIDs at {INTERVAL:g} s, {VIRTUAL_SERVERS * PER_VS} TCP_CHECKs every "
          f"{args.delay_loop} s, {args.seconds:g} s window after {args.warmup:g} s warm-up; rt_priority "
          f"{args.rt_priority}, starve {args.starve}; load {os.getloadavg()}; logs in {workdir}",
          file=sys.stderr, flush=True)
    with Lab({"d1": 11, "d2": 12, "rs": 13}, workdir=workdir) as lab:
        try:
            r = soak(lab, args, workdir)
        except (LabError, subprocess.TimeoutExpired, OSError, ValueError, IndexError) as e:
            print(f"soak failed: {type(e).__name__}: {e}", file=sys.stderr)
            checks = [Check("soak ran", False, f"{type(e).__name__}: {e}")]
            return verdict(checks)
    c = r["capture"]
    print(f"# {r['window_s']} s window; load {r['load_start']} -> {r['load_end']}")
    print("| variant | adverts | |dev| ms p50 / p99 / max | missed | RSS MiB start -> end (growth) | "
          "PSS MiB start -> end | checks/s (schedule) | CPU % core | waited for CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    variant = (f"rt_priority {r['rt_priority']}" if r["rt_priority"] else "default scheduling") + \
        (", starved at nice 19" if r["starve"] else "")
    print(f"| {variant} | {c['adverts']} | {c['dev_p50_ms']} / {c['dev_p99_ms']} / {c['dev_max_ms']} | {c['missed']} | "
          f"{r['rss_start_mib']} -> {r['rss_end_mib']} ({r['rss_growth_pct']:+.2f} %) | {r['pss_start_mib']} -> "
          f"{r['pss_end_mib']} | {r['checks_per_s']} ({r['checks_per_s_schedule']:g}) | {r['cpu_percent']} | "
          f"{r['waited_for_cpu_s']} |")
    sp = r["stall_probe"]
    print(f"# stall probe (SCHED_RR {sp['rt_priority']} if set; {sp['policy_error'] or 'as asked'}): {sp['count']} "
          f"stalls over 30 ms, {sp['total_s']} s in all, longest {sp['longest_ms']} ms; "
          f"{sp['silences_the_probe_lost_half_of']} of {len(c['silences'])} recorded silences over 150 ms had "
          "the probe lose at least half their length (the machine's, not the daemon's)")
    checks = rate(r, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"result": r, "checks": checks}, indent=1,
                                              default=lambda o: o.__dict__) + "\n")
    return verdict(checks)


if __name__ == "__main__":
    sys.exit(main())
