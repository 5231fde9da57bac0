"""Benchmark: failover time of a pyvrrpd pair against a keepalived 2.2.7 pair, same lab, same run.

Method: test-environment.md §6. Directors d1 (state MASTER, priority 150) and d2 (BACKUP, 100) and a
client c1 share a bridge in a namespace lab. For every run the pair is started afresh (d2 first),
d1 must hold the VIP(s) and d2 not, then 6.5 s pass (beyond the second GARP burst) before
tests/net/probe.py, inside c1, signals d1 at a random phase and times, by source MAC, when c1's
traffic reaches d2. kill -9 hits the VRRP process first (keepalived's child from -r), then the
parent; SIGTERM goes to the parent. After a kill -9 the stale VIP is deleted from d1. The two daemons
run in ABBA order (keepalived, pyvrrpd, pyvrrpd, keepalived, ...) so drift on the machine hits both alike.

Times are taken in a frame free of the random phase: for kill -9 from d1's last advert before the
signal (expect Master_Down_Interval + ~10 ms; from the signal it would be uniform over
[MDI - advert, MDI]), for SIGTERM from the signal (expect Skew_Time + GARP + one 10 ms probe tick).

Verdict, per scenario (exit 0 only if every check holds):
* every run of each daemon takes over: IPv4 (and IPv6) traffic reaches d2 and d2 sends a GARP; a run
  with no takeover, or one that could not be measured, fails the verdict;
* pyvrrpd's median time until traffic reaches d2 <= keepalived's + 10 ms: the probe sends one echo
  every 10 ms, so the moment traffic moved is seen up to one tick late;
* pyvrrpd's median time to d2's first GARP <= keepalived's, with no tolerance: GARPs are stamped by
  the kernel on receipt, so this tells apart what the 10 ms tick cannot.

    sudo .venv/bin/python bench/failover.py [--runs 5] [--scenarios v2-kill,v3-term] \
        [--daemons keepalived,pyvrrpd] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import Check, abba, median, spread, table, verdict, versus  # noqa: E402
from tests.net.lab import Lab, LabError, Peer, start_daemon, vrrp_config, wait_for  # noqa: E402
from tests.net.probe import TICK  # noqa: E402

PROBE = ROOT / "tests" / "net" / "probe.py"
NODES = {"d1": 11, "d2": 12, "c1": 50}
VIP4, VIP6 = "198.51.100.100", "2001:db8:1::100"
SETTLE = 6.5  # past the second GARP burst (garp_master_delay 5 s)
MASTER_PRIO, BACKUP_PRIO = 150, 100
DAEMONS = ("keepalived", "pyvrrpd")


@dataclass(frozen=True)
class Scenario:
    version: int
    advert_int: float
    signal: str  # KILL or TERM
    ipv6: bool

    @property
    def skew(self) -> float:
        """Skew_Time of the backup (v2 does not scale with the interval, v3 does)."""
        return (256 - BACKUP_PRIO) / 256 * (1.0 if self.version == 2 else self.advert_int)

    @property
    def mdi(self) -> float:
        return 3 * self.advert_int + self.skew

    @property
    def expected(self) -> float:
        """The formula, shown next to the figures (not rated): MDI or Skew_Time + one probe tick."""
        return (self.mdi if self.signal == "KILL" else self.skew) + 0.010


SCENARIOS = {
    "v2-kill": Scenario(2, 1.0, "KILL", False),
    "v2-term": Scenario(2, 1.0, "TERM", False),
    "v3-kill": Scenario(3, 0.1, "KILL", True),
    "v3-term": Scenario(3, 0.1, "TERM", True),
}


def vips(sc: Scenario) -> set[str]:
    return {VIP4, VIP6} if sc.ipv6 else {VIP4}


def configs(sc: Scenario) -> tuple[str, str]:
    common = dict(version=sc.version, advert_int=sc.advert_int, vip=f"{VIP4}/32",
                  vip6=f"{VIP6}/128" if sc.ipv6 else None)
    return (vrrp_config("d1", state="MASTER", priority=MASTER_PRIO, **common),
            vrrp_config("d2", state="BACKUP", priority=BACKUP_PRIO, **common))


def remove_stale_vips(lab: Lab, node: str) -> None:
    held = lab.addresses(node)
    for vip, plen in ((VIP4, 32), (VIP6, 128)):
        if vip in held:
            lab.run(node, ["ip", "addr", "del", f"{vip}/{plen}", "dev", "lan0"], check=False)


def run_once(lab: Lab, impl: str, sc: Scenario, macs: dict[str, str], events: bool) -> dict:
    """Start the pair, wait for a settled master, let the probe signal it; always stop both."""
    master_conf, backup_conf = configs(sc)
    peers: list[Peer] = []
    try:
        peers.append(start_daemon(impl, lab, "d2", backup_conf))
        master = start_daemon(impl, lab, "d1", master_conf)
        peers.append(master)
        want = vips(sc)
        wait_for(lambda: want <= lab.addresses("d1") and not want & lab.addresses("d2"),
                 timeout=sc.mdi + 10, what=f"{impl} d1 to hold {sorted(want)}")
        time.sleep(SETTLE)
        pids = master.crash_pids() if sc.signal == "KILL" else [master.process.pid]
        argv = ["--vip", VIP4, "--master-mac", macs["d1"], "--backup-mac", macs["d2"], "--signal", sc.signal,
                "--advert-int", f"{sc.advert_int:g}", "--timeout", "15"]
        argv += ["--vip6", VIP6] if sc.ipv6 else []
        argv += ["--events"] if events else []
        for pid in pids:
            argv += ["--pid", str(pid)]
        probe = lab.python("c1", PROBE, *argv, timeout=25, check=False)
        lines = [line for line in probe.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise LabError(f"probe printed nothing (exit {probe.returncode}): {probe.stderr.strip()}")
        return json.loads(lines[-1])
    finally:
        for peer in reversed(peers):
            peer.stop()
        for node in ("d1", "d2"):
            remove_stale_vips(lab, node)


def measured(sc: Scenario, run: dict, key: str) -> float | None:
    """Time of the backup's first `key` event in the scenario's frame: from d1's last advert before
    the signal for a kill (phase-free), from the signal for a stop. None when either was not seen."""
    t = run.get(key)
    if sc.signal == "TERM" or t is None:
        return t
    last = run.get("master_last_advert6" if key in ("echo6", "na") else "master_last_advert")
    return None if last is None else round(t - last, 4)


def failure(sc: Scenario, run: dict) -> str | None:
    """Why a run gave no takeover figure, or None when it did."""
    if "error" in run:
        return run["error"]
    if not run["signalled"]:
        return "d1 never answered steadily, no signal sent"
    for key, what in (("echo", "no IPv4 traffic via d2"), ("echo6", "no IPv6 traffic via d2"),
                      ("garp", "no GARP from d2")):
        if (key != "echo6" or sc.ipv6) and measured(sc, run, key) is None:
            return what + ("" if run.get(key) is None else " (no advert from d1 seen before the signal)")
    return None


def report(results: dict[str, dict[str, list[dict]]]) -> tuple[list[dict], list[Check]]:
    """Print the table; return its rows and the checks of the verdict."""
    rows, checks = [], []
    for name, by_impl in results.items():
        sc = SCENARIOS[name]
        frame = "from d1's last advert" if sc.signal == "KILL" else "from the signal"
        med: dict[str, dict[str, float]] = {}
        for impl, runs in by_impl.items():
            good = [r for r in runs if failure(sc, r) is None]
            failed = [f"run {i + 1}: {why}" for i, r in enumerate(runs) if (why := failure(sc, r))]
            checks.append(Check(f"{name} {impl} takes over in every run", bool(runs) and not failed,
                                f"{len(good)} of {len(runs)}" + "".join(f"; {f}" for f in failed)))
            stats = {k: spread(measured(sc, r, k) for r in good) for k in ("echo", "garp", "advert", "echo6")}
            med[impl] = {k: s.median for k, s in stats.items() if s}
            rows.append({"scenario": name, "daemon": impl, "runs": len(runs), "takeovers": len(good),
                         "frame": frame, "formula": round(sc.expected, 3), "lost": median(r["lost"] for r in good),
                         **stats})
        mine, ka = med.get("pyvrrpd", {}), med.get("keepalived", {})
        checks.append(versus(f"{name} traffic via d2 {frame}, median", mine.get("echo"), ka.get("echo"),
                             slack=TICK, slack_why="one probe tick: an echo goes out every 10 ms, so traffic "
                             "that moved is seen up to 10 ms late"))
        checks.append(versus(f"{name} d2's first GARP {frame}, median", mine.get("garp"), ka.get("garp")))
    table(("scenario", "daemon", "takeovers", "times", "traffic via d2 s: med / min / max",
           "d2's 1st GARP s: med / min / max", "d2's 1st advert s: med", "ICMPv6 via d2 s: med / min / max",
           "lost echoes: med", "formula s"),
          [(r["scenario"], r["daemon"], f"{r['takeovers']} of {r['runs']}", r["frame"], r["echo"], r["garp"],
            r["advert"] and r["advert"].median, r["echo6"], None if r["lost"] is None else f"{r['lost']:g}",
            r["formula"]) for r in rows])
    return rows, checks


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per scenario and daemon (1-50)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    p.add_argument("--daemons", default=",".join(DAEMONS), help="comma list of keepalived, pyvrrpd")
    p.add_argument("--json", metavar="FILE", help="write every probe result, the summary and the verdict here")
    p.add_argument("--events", action="store_true", help="keep the adverts/GARPs/NAs around each signal")
    p.add_argument("--workdir", help="keep logs and configs here (default: a temporary directory)")
    args = p.parse_args()
    names = [n for n in args.scenarios.split(",") if n]
    impls = [d for d in args.daemons.split(",") if d]
    if not 1 <= args.runs <= 50 or set(names) - SCENARIOS.keys() or set(impls) - set(DAEMONS):
        p.error("bad --runs, --scenarios or --daemons")
    if os.geteuid() != 0 or ("keepalived" in impls and shutil.which("keepalived") is None):
        print("needs root, ip netns and keepalived", file=sys.stderr)
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="pyvrrpd-failover-"))
    results: dict[str, dict[str, list[dict]]] = {n: {i: [] for i in impls} for n in names}
    t0 = time.monotonic()
    with Lab(NODES, workdir=workdir) as lab:
        macs = {node: lab.mac(node) for node in ("d1", "d2")}
        for name in names:
            for run, impl in abba(impls, args.runs):
                try:
                    r = run_once(lab, impl, SCENARIOS[name], macs, args.events)
                except (LabError, subprocess.TimeoutExpired) as e:
                    r = {"error": f"{type(e).__name__}: {e}"}
                results[name][impl].append(r)
                print(f"# {name} {impl} run {run + 1}: "
                      + (r["error"] if "error" in r else
                         f"via d2 {r['echo']} s, from last advert {r['from_last_advert']} s, advert {r['advert']}, "
                         f"garp {r['garp']}, echo6 {r['echo6']}, lost {r['lost']}"), file=sys.stderr, flush=True)
    print(f"# {sum(len(v) for d in results.values() for v in d.values())} runs in {time.monotonic() - t0:.0f} s "
          f"(ABBA order); logs in {workdir}", file=sys.stderr)
    rows, checks = report(results)
    status = verdict(checks)
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": rows, "checks": checks, "runs": results}, indent=1,
                                              default=lambda o: o.__dict__) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
