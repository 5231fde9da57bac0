"""The status API under abuse does not touch VRRP: a pyvrrpd master with four VRRPv3 instances at 0.1 s, its
adverts captured on the bridge (another namespace), while tests/net/control_abuser.py hammers the control
socket from the daemon's namespace (hundreds of connections, garbage, huge headers, slowloris, clients that
never read). Functional invariants only: no advert gap over Master_Down_Interval for any VRID, /status still
answers, the counters counted, no traceback in the log, every abusive connection closed by the daemon. The
advert jitter with and without abuse is printed (and written to control-abuse.json), not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyvrrpd.observe import status
from tests.net.chaos import StallProbe
from tests.net.lab import AdvertWatch, master_down_interval, wait_for
from tests.net.test_daemon_pair import Daemon

pytestmark = pytest.mark.net

ABUSER = Path(__file__).with_name("control_abuser.py")
VRIDS = (51, 52, 53, 54)
INTERVAL, PRIORITY = 0.1, 150
QUIET = 8.0  # seconds of adverts measured before the abuse


def config() -> str:
    blocks = "".join(f"""
vrrp_instance VI_{vrid} {{
    state MASTER
    interface lan0
    virtual_router_id {vrid}
    priority {PRIORITY}
    advert_int {INTERVAL:g}
    virtual_ipaddress {{
        198.51.100.{vrid + 100}/32 dev lan0
    }}
}}
""" for vrid in VRIDS)
    return f"global_defs {{\n    router_id d1\n    vrrp_version 3\n}}\n{blocks}"


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gaps(adverts, vrid: int, start: float, end: float) -> list[float]:
    times = [a.t for a in adverts if a.vrid == vrid and a.node == "d1" and start <= a.t <= end]
    return [b - a for a, b in zip(times, times[1:])]


def jitter(adverts, start: float, end: float) -> dict:
    """|interval - advert_int| over every VRID's adverts in [start, end]: p50, p99, max (ms), and the longest gap."""
    late = sorted(abs(g - INTERVAL) for v in VRIDS for g in gaps(adverts, v, start, end))
    if not late:
        return {"adverts": 0}
    pick = lambda q: round(late[min(len(late) - 1, int(q * len(late)))] * 1000, 2)  # noqa: E731
    return {"adverts": len(late), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(late[-1] * 1000, 2),
            "longest_gap_ms": round(max(g for v in VRIDS for g in gaps(adverts, v, start, end)) * 1000, 2)}


def test_control_socket_abuse_leaves_vrrp_alone(lab):
    control = str(lab.workdir / "d1.sock")
    watch = AdvertWatch(lab, timeout=180)
    d1 = Daemon(lab, "d1", config(), "abuse", args=("--control-socket", control))
    for vrid in VRIDS:
        watch.wait(f"adverts of VRID {vrid}", lambda a, v=vrid: a.vrid == v and a.node == "d1", since=0,
                   timeout=30, count=5)
    wait_for(lambda: status.fetch(control, "/healthz") == "ok\n", timeout=10, what="/healthz ok")

    pid = int(d1.pid_file.read_text())
    # the machine's own stalls (a shared CI box): a gap the probe saw the machine lose is not the daemon's
    probe = StallProbe(limit=300)
    quiet_start, cpu0 = time.time(), cpu_seconds(pid)
    time.sleep(QUIET)
    quiet_end = abuse_start = time.time()
    cpu1 = cpu_seconds(pid)
    # niced: what is measured is the daemon's handling of the abuse, not the abuser's own threads competing
    # with it for the CPU (the daemon spends ~0.2 s of CPU on all of it)
    out = lab.run("d1", ["nice", "-n", "19", sys.executable, str(ABUSER), "--socket", control, "--seed", "1"],
                  timeout=120)
    abuse_end, cpu2 = time.time(), cpu_seconds(pid)
    time.sleep(1.0)  # the adverts of the last moments reach the capture
    probe.stop()
    tallies = {t["kind"]: t for t in map(json.loads, out.stdout.splitlines())}
    adverts = watch.adverts()
    figures = {"quiet": jitter(adverts, quiet_start, quiet_end), "abuse": jitter(adverts, abuse_start, abuse_end),
               "daemon_cpu_seconds": {"quiet": round(cpu1 - cpu0, 2), "abuse": round(cpu2 - cpu1, 2)},
               "load": open("/proc/loadavg").read().split()[:3],
               "machine_stalls": {"count": len(probe.stalls), "total_s": round(sum(b - a for a, b in probe.stalls), 3)},
               "abuse_seconds": round(abuse_end - abuse_start, 1), "abusers": tallies,
               "control": json.loads(status.fetch(control))["control"]["counters"]}
    (lab.workdir / "control-abuse.json").write_text(json.dumps(figures, indent=1))
    print(f"\ncontrol abuse: jitter quiet {figures['quiet']} / under abuse {figures['abuse']}", file=sys.stderr)
    print(f"control abuse: {json.dumps(tallies)}\ncontrol counters: {json.dumps(figures['control'])}",
          file=sys.stderr)

    # VRRP: no gap over Master_Down_Interval for any VRID, from before the abuse to after it, unless the
    # stall probe (a thread of this process, not niced) lost the excess too: then the machine stalled, not the daemon
    limit = master_down_interval(3, INTERVAL, PRIORITY)
    for vrid in VRIDS:
        times = [a.t for a in adverts if a.vrid == vrid and a.node == "d1" and quiet_start <= a.t <= abuse_end + 0.5]
        long = [(round(a - abuse_start, 3), round(b - a, 3)) for a, b in zip(times, times[1:])
                if b - a >= limit and probe.within(a, b) < b - a - limit]
        assert times and not long, f"VRID {vrid}: advert gaps over {limit:.3f} s (at s from the abuse's start, " \
                                   f"length): {long}; load {open('/proc/loadavg').read().split()[:3]}; daemon CPU " \
                                   f"{cpu1 - cpu0:.2f} s in {quiet_end - quiet_start:.1f} s quiet, {cpu2 - cpu1:.2f} s " \
                                   f"in {abuse_end - abuse_start:.1f} s of abuse"
    d1.check_running()

    # the daemon still answers, and counted what it refused
    snap = json.loads(status.fetch(control))
    assert all(i["state"] == "MASTER" for i in snap["vrrp"]["instances"])
    counters = snap["control"]["counters"]
    assert counters["refused_connections"] > 0 and counters["timeouts"].get("request", 0) > 0
    assert counters["timeouts"].get("answer", 0) > 0 and sum(counters["bad_requests"].values()) > 0
    metrics = status.fetch(control, "/metrics")
    assert "pyvrrpd_control_timeouts_total{kind=\"request\"}" in metrics
    assert "pyvrrpd_control_refused_connections_total" in metrics

    # every abusive connection was closed by the daemon (none outlived the abuser's own bound)
    for kind, tally in tallies.items():
        assert tally["connections"] > 0 and tally["closed_by_server"] == tally["connections"], (kind, tally)
    assert all(code in (400, 413, 431) for code in tallies["garbage"]["codes"] + tallies["huge"]["codes"])
    assert tallies["slowloris"]["seconds"] < 20  # cut off by the request deadline, not by our giving up

    assert "Traceback" not in d1.text()
    assert d1.stop() == 0

