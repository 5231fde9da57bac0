"""Benchmark: 100 VRRPv3 instances at 0.1 s on one master — advert jitter, CPU and memory.

One daemon (pyvrrpd, then keepalived 2.2.7 on the same config) runs alone in lab node d1 with
VRIDs 1-100, each with one VIP 203.0.113.V/32, state MASTER, priority 150. Once all VIPs are up and
6.5 s have passed (beyond the second GARP burst), this script re-runs itself in node d2 as a sniffer
(AF_PACKET, kernel receive timestamps) for a 20 s window, while CPU (utime+stime from /proc/PID/stat)
is read before and after that window and memory (VmRSS, Pss) at its end. Each daemon is measured
--runs times (default 3), the daemons in ABBA order (pyvrrpd, keepalived, keepalived, pyvrrpd, ...),
each run with a fresh start. Reported per daemon, as the median over its runs:

* jitter: |gap - 100 ms| between consecutive adverts of each VRID, p50 / p99 / max, and the mean gap;
* silences: times a VRID sent nothing for over 1.5 intervals (150 ms), the window's edges included;
* CPU: ms of CPU per 1,000 adverts sent and % of one core;
* memory: RSS (and PSS) summed over the daemon's processes (keepalived has a parent and a VRRP child).

Verdict on pyvrrpd (exit 0 only if all hold; keepalived is shown for reference): every run measured,
every VRID seen in every run, no silence over 1.5 intervals in any run, and jitter p99 <= 5 ms
(median of the runs).

    sudo .venv/bin/python bench/vrrp_scale.py [--instances 100] [--seconds 20] [--runs 3] \
        [--daemons pyvrrpd,keepalived] [--full] [--json FILE]

With --full the config also has what starts the tracking and LVS subsystems, idle (a vrrp_script every
60 s tracked by every instance, one virtual server checked every 60 s); pyvrrpd's status endpoint runs in
both cases (it is on by default).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import Check, abba, cell, median, table, verdict  # noqa: E402

INTERVAL = 0.1
SETTLE = 6.5
ETH_P_IP = 0x0800
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PACKET_OUTGOING = 4


def config(instances: int, full: bool = False) -> str:
    """The instances; with `full`, also what makes the tracking and LVS subsystems run, idle: a
    vrrp_script every 60 s tracked by every instance, and one virtual server whose one
    real server is checked every 60 s (the status endpoint runs in both cases: it is on by default)."""
    out = ["global_defs {", "    router_id d1", "    vrrp_version 3", "    enable_script_security",
           "    script_user root", "}"]
    track = []
    if full:
        out += ["vrrp_script chk_idle {", "    script \"/bin/true\"", "    interval 60", "}"]
        track = ["    track_script {", "        chk_idle", "    }"]
    for vrid in range(1, instances + 1):
        out += [f"vrrp_instance VI_{vrid} {{", "    state MASTER", "    interface lan0",
                f"    virtual_router_id {vrid}", "    priority 150", f"    advert_int {INTERVAL:g}",
                "    virtual_ipaddress {", f"        203.0.113.{vrid}/32 dev lan0", "    }", *track, "}"]
    if full:
        out += ["virtual_server 203.0.113.1 80 {", "    delay_loop 60", "    lb_algo rr", "    lb_kind DR",
                "    protocol TCP", "    real_server 198.51.100.12 80 {", "        weight 1",
                "        TCP_CHECK {", "            connect_timeout 3", "        }", "    }", "}"]
    return "\n".join(out) + "\n"


# -- sniffer (runs inside d2) -------------------------------------------------------------------

def sniff(iface: str, seconds: float) -> dict:
    """Kernel-timestamped VRRP adverts per VRID for `seconds`; returns gap statistics.

    A silence is the time without an advert of one VRID: between two of its adverts, and also from
    the start of the window to its first advert and from its last to the end, so a VRID that stops
    for the rest of the window counts. Jitter uses only the gaps between two adverts.
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))  # IP header first
    sock.bind((iface, 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.settimeout(0.2)
    stamps: dict[int, list[float]] = {}
    t_start = time.time()  # the kernel stamps are CLOCK_REALTIME too
    end = time.monotonic() + seconds
    while True:
        draining = time.monotonic() >= end  # past the window: read what is queued, then stop
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
                      for sec, nsec in [struct.unpack("@qq", data[:16])]), None)
        stamps.setdefault(frame[ihl + 1], []).append(stamp if stamp is not None else time.time())
    t_end = t_start + seconds
    stamps = {vrid: [t for t in ts if t <= t_end] for vrid, ts in stamps.items()}
    gaps = [b - a for ts in stamps.values() for a, b in zip(ts, ts[1:])]
    silences = gaps + [t for ts in stamps.values() if ts for t in (ts[0] - t_start, t_end - ts[-1])]
    devs = sorted(abs(g - INTERVAL) for g in gaps)

    def pct(q: float) -> float | None:
        return round(devs[min(len(devs) - 1, int(q * len(devs)))] * 1000, 3) if devs else None

    return {"vrids": sum(1 for ts in stamps.values() if ts), "adverts": sum(len(ts) for ts in stamps.values()),
            "seconds": seconds, "gap_mean_ms": round(sum(gaps) / len(gaps) * 1000, 3) if gaps else None,
            "dev_p50_ms": pct(0.50), "dev_p99_ms": pct(0.99), "dev_max_ms": pct(1.0),
            "silence_max_ms": round(max(silences) * 1000, 3) if silences else None,
            "silences_over_1_5": sum(1 for g in silences if g > 1.5 * INTERVAL)}


# -- the driver (root namespace: only starts the lab and reads /proc) ---------------------------

def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def memory_kb(pids: list[int]) -> tuple[int, int]:
    rss = pss = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
    return rss, pss


def measure(lab, impl: str, instances: int, seconds: float, full: bool = False) -> dict:
    from tests.net.lab import start_daemon, wait_for

    vips = {f"203.0.113.{v}" for v in range(1, instances + 1)}
    peer = start_daemon(impl, lab, "d1", config(instances, full))
    try:
        t_start = time.monotonic()
        wait_for(lambda: vips <= lab.addresses("d1"), timeout=30, interval=0.2, what=f"{impl}'s {instances} VIPs")
        up = time.monotonic() - t_start
        time.sleep(SETTLE)
        pids = peer.crash_pids()
        cpu0, t0 = cpu_seconds(pids), time.monotonic()
        out = lab.python("d2", __file__, "--sniff", "--seconds", f"{seconds:g}", timeout=seconds + 20)
        cpu1, t1 = cpu_seconds(pids), time.monotonic()
        rss, pss = memory_kb(pids)
    finally:
        peer.stop(timeout=15)
        leftover = vips & lab.addresses("d1")
        for vip in leftover:
            lab.run("d1", ["ip", "addr", "del", f"{vip}/32", "dev", "lan0"], check=False)
    result = json.loads(out.stdout.splitlines()[-1])
    sent = result["adverts"] / result["seconds"] * (t1 - t0)  # the CPU window is a bit longer than the sniff
    result.update(daemon=impl, instances=instances, vips_up_s=round(up, 2), processes=len(pids),
                  cpu_ms_per_1000_adverts=round((cpu1 - cpu0) * 1000 / (sent / 1000), 1) if sent else None,
                  cpu_percent=round((cpu1 - cpu0) / (t1 - t0) * 100, 1), rss_mb=round(rss / 1024, 1),
                  pss_mb=round(pss / 1024, 1), vips_left_after_stop=len(leftover))
    return result


def summary_row(impl: str, runs: list[dict]) -> tuple:
    """One table row: medians over the measured runs, except the worst VRID count and silence."""
    ok = [r for r in runs if "error" not in r]

    def med(key: str, digits: int = 1) -> str:
        value = median(r[key] for r in ok)
        return "-" if value is None else f"{value:.{digits}f}"

    return (impl, f"{len(ok)} of {len(runs)}", min((r["vrids"] for r in ok), default=None), med("adverts", 0),
            med("gap_mean_ms", 3), " / ".join(med(k, 3) for k in ("dev_p50_ms", "dev_p99_ms", "dev_max_ms")),
            sum(r["silences_over_1_5"] for r in ok) if ok else None,
            max((r["silence_max_ms"] or 0.0 for r in ok), default=None),
            med("cpu_ms_per_1000_adverts"), med("cpu_percent"), med("rss_mb"), med("pss_mb"))


def rate(rows: list[dict], instances: int) -> list[Check]:
    """The checks of the verdict, on pyvrrpd's runs (keepalived's are the reference, not rated)."""
    mine = [r for r in rows if r["daemon"] == "pyvrrpd"]
    if not mine:
        return [Check("pyvrrpd runs", False, "pyvrrpd was not run: nothing to rate")]
    p99 = median(r.get("dev_p99_ms") for r in mine)
    return [
        Check("pyvrrpd measured in every run", not any("error" in r for r in mine),
              "; ".join(f"run {i + 1}: {r['error']}" for i, r in enumerate(mine) if "error" in r) or "yes"),
        Check("every VRID seen in every run", all(r.get("vrids") == instances for r in mine),
              f"VRIDs seen per run {[r.get('vrids') for r in mine]} of {instances}"),
        Check("no VRID silent over 1.5 intervals (150 ms)", all(r.get("silences_over_1_5") == 0 for r in mine),
              f"silences over 150 ms per run {[r.get('silences_over_1_5') for r in mine]}, longest "
              f"{[r.get('silence_max_ms') for r in mine]} ms"),
        Check("advert jitter p99 <= 5 ms, median of runs", p99 is not None and p99 <= 5,
              f"p99 per run {[r.get('dev_p99_ms') for r in mine]} ms, median {cell(p99)} ms"),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--instances", type=int, default=100, help="1-255")
    p.add_argument("--seconds", type=float, default=20.0, help="measurement window, 2-120 s")
    p.add_argument("--runs", type=int, default=3, help="runs of each daemon, in ABBA order (1-20)")
    p.add_argument("--daemons", default="pyvrrpd,keepalived")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--full", action="store_true",
                   help="also a tracked vrrp_script and a virtual server (tracking and LVS subsystems, idle)")
    p.add_argument("--workdir")
    p.add_argument("--sniff", action="store_true", help=argparse.SUPPRESS)  # internal: the d2 side
    p.add_argument("--iface", default="lan0", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not (1 <= args.instances <= 255 and 2 <= args.seconds <= 120 and 1 <= args.runs <= 20):
        p.error("bad --instances, --seconds or --runs")
    if args.sniff:
        print(json.dumps(sniff(args.iface, args.seconds)), flush=True)
        return 0
    impls = [d for d in args.daemons.split(",") if d]
    if set(impls) - {"pyvrrpd", "keepalived"}:
        p.error("bad --daemons")
    if os.geteuid() != 0 or ("keepalived" in impls and shutil.which("keepalived") is None):
        print("needs root, ip netns and keepalived", file=sys.stderr)
        return 2
    from tests.net.lab import Lab, LabError

    # Byte-compiled, as an installed package is: with PYTHONDONTWRITEBYTECODE=1 a development tree would be
    # compiled at every start, which measures CPython's compiler rather than pyvrrpd.
    compileall.compile_dir(str(ROOT / "pyvrrpd"), quiet=1)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="pyvrrpd-scale-"))
    rows = []
    with Lab({"d1": 11, "d2": 12}, workdir=workdir) as lab:
        for run, impl in abba(impls, args.runs):
            try:
                rows.append(measure(lab, impl, args.instances, args.seconds, args.full))
            except (LabError, subprocess.TimeoutExpired, OSError, ValueError, IndexError) as e:
                rows.append({"daemon": impl, "error": f"{type(e).__name__}: {e}"})
            print(f"# {impl} run {run + 1}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    print(f"# {args.instances} VRIDs at {INTERVAL:g} s, {args.seconds:g} s window, {args.runs} runs each "
          "(ABBA order); medians over the runs")
    table(("daemon", "runs measured", "VRIDs seen: min", "adverts", "mean gap ms", "|dev| ms: p50 / p99 / max",
           "silences > 150 ms: total", "longest silence ms", "CPU ms / 1000 adverts", "% core", "RSS MB", "PSS MB"),
          [summary_row(impl, [r for r in rows if r["daemon"] == impl]) for impl in impls])
    print(f"# logs in {workdir}", file=sys.stderr)
    checks = rate(rows, args.instances)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows, "checks": checks}, indent=1,
                                              default=lambda o: o.__dict__) + "\n")
    return verdict(checks)


if __name__ == "__main__":
    sys.exit(main())
