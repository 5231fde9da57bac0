"""SIGHUP on real `pyvrrpd` processes in the namespace lab (d1 = .11, d2 = .12), VRRPv3 at 0.1 s.

What a reload must not do is read from the wire and the kernel: the adverts on the lab's bridge with
the kernel's receive times (tests/net/adverts.py, run in the bridge's namespace), the addresses in each
node (`ip addr`, and `ip monitor address` for a VIP that must not flap), and the daemons' JSON logs
for transitions and reload results. Waits are bounded; the advert stream is checked for a missing
advert (a silence of two intervals), a second timer (a median gap below the interval) and, in the
fifty-SIGHUPs test, a restarted timer (from a reload to the next advert as long as the daemon's usual gap,
measured just before the reloads, instead of half an interval less), not for speed.

The machine may be loaded (other suites, VMs): a stall probe (tests/net/chaos.py) notes when this process
woke up late. A silence is the machine's, not the daemon's, when the probe lost its excess too or the
capture delivered the adverts after it in a burst (a starved softirq), as in the chaos harness and the
status API abuse test. A daemon that stops advertising while the machine runs on still fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.net.chaos import StallProbe
from tests.net.lab import Lab, wait_for
from tests.net.test_daemon_pair import MARGIN, STARTUP, V3, Daemon, holds, log_time, wait_master

pytestmark = pytest.mark.net

RECORDER = Path(__file__).with_name("adverts.py")
INTERVAL = V3.interval
MEDIAN_SLACK = 0.01  # s; a second timer halves the median gap: the median stays above INTERVAL - this
RESTART_SLACK = INTERVAL / 4  # half of what a timer restarted at each reload adds to the wait for an advert
BURST = 0.03  # three adverts of one VRID within this long were queued by the machine, not sent so
VIP1, VIP2 = "198.51.100.100", "198.51.100.101"


def instance(name: str, vrid: int, vip: str, priority: int, extra: str = "") -> str:
    return f"""
vrrp_instance {name} {{
    state BACKUP
    interface lan0
    virtual_router_id {vrid}
    priority {priority}
    advert_int {INTERVAL:g}
    {extra}
    virtual_ipaddress {{
        {vip}/32 dev lan0
    }}
}}
"""


def conf(node: str, *instances: str) -> str:
    return f"global_defs {{\n    router_id {node}\n    vrrp_version 3\n}}\n" + "".join(instances)


class RunDelay:
    """How long a daemon's threads waited for a CPU while runnable (/proc/PID/task/*/schedstat, second
    field), sampled every 10 ms by a thread: the time the machine's load took from that daemon itself.
    Bounded: ends on stop(), when the process is gone, or after `limit` seconds."""

    TICK = 0.01

    def __init__(self, pid: int, limit: float = 300.0) -> None:
        self.pid = pid
        self._last: dict[str, float] = {}
        self._total = 0.0
        self._read()
        self.samples: list[tuple[float, float]] = [(time.time(), 0.0)]  # (time.time(), seconds waited so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(limit,), name="run delay", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                waited = int(Path(f"/proc/{self.pid}/task/{tid}/schedstat").read_text().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                continue
            if waited > self._last.get(tid, waited):  # a thread's first reading is its baseline
                self._total += waited - self._last[tid]
            self._last[tid] = waited

    def _run(self, limit: float) -> None:
        end = time.monotonic() + limit
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                self._read()
            except OSError:  # the daemon has exited
                return
            self.samples.append((time.time(), self._total))
            time.sleep(self.TICK)

    def within(self, start: float, end: float) -> float:
        """Seconds waited for a CPU between the first sample from `start` and the last one up to `end`
        (rounded inwards: never more than the daemon waited inside [start, end])."""
        inside = [v for t, v in list(self.samples) if start <= t <= end]
        return inside[-1] - inside[0] if inside else 0.0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)


class Watch:
    """Every VRRP advert on the lab's bridge from now on, with the kernel's receive time; and the machine's
    stalls meanwhile (a StallProbe, and with follow() the time a daemon waited for a CPU)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.log = lab.workdir / "adverts.log"
        argv = ["ip", "netns", "exec", lab.lan, sys.executable, str(RECORDER), "--iface", "br0", "--timeout", "300"]
        with open(self.log, "ab") as out:  # the lab kills what is left in its namespaces on tear-down
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(lambda: self.proc.poll() is not None or '"ready"' in self.log.read_text(), timeout=10,
                 what="the advert recorder")
        assert self.proc.poll() is None, self.log.read_text()
        self.probe = StallProbe(limit=300)
        self.delay: RunDelay | None = None

    def follow(self, pid: int) -> None:
        """Sample how long the daemon `pid` waits for a CPU (see machine_lost)."""
        self.delay = RunDelay(pid)

    def adverts(self, node: str, vrid: int, since: float, until: float | None = None) -> list[dict]:
        src = self.lab.ipv4(node)
        lines = [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith('{"t"')]
        return [a for a in lines if a["src"] == src and a["vrid"] == vrid and a["t"] >= since
                and (until is None or a["t"] <= until)]

    def caught_up(self, node: str, vrid: int, t: float, timeout: float = 10) -> None:
        """Wait (bounded) until the recorder wrote an advert of `node` for `vrid` received after `t`: on a
        loaded machine it lags behind the wire."""
        wait_for(lambda: self.adverts(node, vrid, t), timeout=timeout, what=f"{node}'s advert for VRID {vrid} "
                 f"after {t:.3f} in the capture")

    def machine_lost(self, start: float, end: float, need: float, times: list[float]) -> bool:
        """Did the machine, not the daemon, make [start, end] longer by `need` s: the stall probe lost that
        much meanwhile, or the followed daemon waited that long for a CPU while runnable, or the adverts
        right after `end` came in a burst (queued while the capture starved)?"""
        after = [t for t in times if t >= end][:3]
        return (self.probe.within(start, end) >= need
                or (self.delay is not None and self.delay.within(start, end) >= need)
                or (len(after) == 3 and after[2] - after[0] < BURST))

    def assert_steady(self, node: str, vrid: int, since: float, until: float) -> list[float]:
        """`node` kept advertising `vrid` over [since, until]: no advert missing (every time without one,
        the window's edges included, is under two intervals, unless the machine stalled that long) and no
        second timer (the median gap is not below the interval; a loaded machine only makes gaps longer).
        Returns the advert times."""
        self.caught_up(node, vrid, until)
        everything = [a["t"] for a in self.adverts(node, vrid, since) if a["prio"]]
        times = [t for t in everything if t <= until]
        silences = [(a, b) for a, b in zip([since] + times, times + [until])]
        long = [(round(a - since, 3), round(b - a, 3)) for a, b in silences
                if b - a >= 2 * INTERVAL and not self.machine_lost(a, b, b - a - 2 * INTERVAL, everything)]
        gaps = sorted(b - a for a, b in zip(times, times[1:]))
        median = gaps[len(gaps) // 2]
        stalls = [(a, b) for a, b in self.probe.stalls if a < until and b > since]
        print(f"{node}'s adverts for VRID {vrid}: {len(times)}, median gap {median * 1000:.1f} ms, longest silence "
              f"{max(b - a for a, b in silences) * 1000:.1f} ms; machine stalls {len(stalls)} "
              f"({self.probe.within(since, until) * 1000:.0f} ms)"
              + (f", the daemon waited {self.delay.within(since, until) * 1000:.0f} ms for a CPU" if self.delay else "")
              + f"; load {load()}")
        assert not long, f"{node}, VRID {vrid}: silences of 2 intervals or more the machine did not explain " \
                         f"(s from the start, length): {long}; load {load()}"
        assert median >= INTERVAL - MEDIAN_SLACK, f"{node}, VRID {vrid}: median gap {median:.4f} s: two timers?"
        return times

    def stop(self) -> None:
        self.probe.stop()
        if self.delay is not None:
            self.delay.stop()
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)


def load() -> list[str]:
    return open("/proc/loadavg").read().split()[:3]


def wait_after(times: list[float], moment: float) -> float | None:
    """How long after `moment` the next advert came (None if none was recorded)."""
    return next((t - moment for t in times if t > moment), None)


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


@pytest.fixture
def watch(lab):
    w = Watch(lab)
    yield w
    w.stop()


def reload(daemon: Daemon, text: str | bytes, expect: str = "vrrp: reconfigured", timeout: float = 10) -> dict:
    """Write the daemon's config file, SIGHUP it and wait for the reload's result in its log."""
    conf_file = daemon.log.with_suffix(".conf")
    conf_file.write_bytes(text) if isinstance(text, bytes) else conf_file.write_text(text)
    mark = daemon.mark()
    daemon.proc.send_signal(signal.SIGHUP)
    return daemon.wait_log(expect, timeout=timeout, since=mark)


def transitions(daemon: Daemon, since: int = 0) -> list[str]:
    return [e["event"] for e in daemon.find("Entering", since)]


def test_fifty_sighups_with_an_unchanged_config_change_nothing(lab, watch):
    text = conf("d1", instance("VI_1", 51, VIP1, 150))
    d1 = Daemon(lab, "d1", text, "a")
    d2 = Daemon(lab, "d2", conf("d2", instance("VI_1", 51, VIP1, 100)), "a")
    for daemon in (d1, d2):
        daemon.started()  # the protocol's timeouts count from there, not from the spawn (imports take seconds)
    watch.follow(int(d1.pid_file.read_text()))  # how long d1 waits for a CPU: the machine's share of a silence
    wait_master(lab, "d1", VIP1, 2 * V3.master_down() + MARGIN, d1, d2)
    time.sleep(5 * INTERVAL)  # past the takeover's adverts and GARPs
    quiet = time.time()
    time.sleep(20 * INTERVAL)  # the daemon's usual gap on this machine now, for the restarted-timer check
    marks, start = (d1.mark(), d2.mark()), time.time()
    done = [log_time(reload(d1, text, timeout=STARTUP)) for _ in range(50)]
    end = time.time()
    # d1 master, advertising on its own schedule all along, through the reloads
    times = watch.assert_steady("d1", 51, quiet, end)
    assert transitions(d1, marks[0]) == []
    # A timer restarted at each reload sends its next advert a whole interval after it (plus the lateness
    # the usual gap has on this machine now, the timer being relative): the waits from a reload to the next
    # advert are about the usual gap. An untouched timer's reloads fall anywhere in its period: the waits
    # are about half an interval less.
    usual = median([b - a for a, b in zip(times, times[1:]) if b <= start])
    waits = [w for w in (wait_after(times, t) for t in done) if w is not None]
    print(f"from a reload to the next advert: median {median(waits) * 1000:.1f} ms of {len(waits)}; usual gap "
          f"before the reloads {usual * 1000:.1f} ms")
    assert median(waits) < usual - RESTART_SLACK, "the advert timer restarts at a reload"
    # d2 stays backup unless the machine starved it (or d1) of a whole Master_Down_Interval: then d1, at
    # the higher priority, stays master and d2 goes back
    down = V3.master_down()
    for event in d2.find("Entering MASTER STATE", marks[1]):
        t = log_time(event)
        assert watch.probe.within(t - down - 1.0, t) >= down - 2 * INTERVAL, \
            f"d2 became master at {t - start:.3f} s from the start, the machine did not stall: {event}"
    wait_master(lab, "d1", VIP1, down + MARGIN, d1, d2)
    assert not d1.find("error", marks[0]) and len(d1.find("vrrp: reconfigured", marks[0])) == 50
    assert d1.stop() == 0 and d2.stop() == 0


def test_a_broken_config_keeps_the_running_one(lab, watch):
    text = conf("d1", instance("VI_1", 51, VIP1, 150))
    d1 = Daemon(lab, "d1", text, "a")
    d1.started()  # the protocol's timeouts count from there, not from the spawn
    wait_master(lab, "d1", VIP1, V3.master_down() + MARGIN, d1)
    mark, start = d1.mark(), time.time()
    reload(d1, text.replace("virtual_router_id 51", "virtual_router_id 300"),
           expect="reload: 1 error(s) in")
    assert d1.find("config: vrrp_instance VI_1: virtual_router_id '300' is invalid", mark)
    reload(d1, bytes(range(256)) * 4, expect="reload: 1 error(s) in")  # not text at all
    assert d1.find("is not a text file", mark)
    time.sleep(3 * INTERVAL)
    d1.check_running()
    assert holds(lab, "d1", VIP1) and transitions(d1, mark) == []
    watch.assert_steady("d1", 51, start, time.time())
    # Still reloadable: the fixed file applies.
    since = time.time()
    reload(d1, text.replace("priority 150", "priority 140"))
    wait_for(lambda: [a for a in watch.adverts("d1", 51, since) if a["prio"] == 140], timeout=MARGIN,
             what="d1's adverts at priority 140")
    assert d1.stop() == 0


def test_a_changed_priority_takes_effect(lab, watch):
    d1_conf = conf("d1", instance("VI_1", 51, VIP1, 150))
    d1 = Daemon(lab, "d1", d1_conf, "a")
    d2 = Daemon(lab, "d2", conf("d2", instance("VI_1", 51, VIP1, 100)), "a")
    for daemon in (d1, d2):
        daemon.started()  # the protocol's timeouts count from there, not from the spawn
    wait_master(lab, "d1", VIP1, 2 * V3.master_down() + MARGIN, d1, d2)
    # Below the backup: d1 keeps advertising as master at 50, d2 preempts.
    marks = (d1.mark(), d2.mark())
    reload(d1, d1_conf.replace("priority 150", "priority 50"))
    wait_master(lab, "d2", VIP1, V3.master_down() + MARGIN, d1, d2)
    assert d2.wait_log("Entering MASTER STATE", since=marks[1])["reason"] == "preempt"
    assert d1.wait_log("Entering BACKUP STATE", since=marks[0])["reason"] == "higher_priority"
    # Back above it, with nopreempt: d1 stays backup.
    mark = d1.mark()
    reload(d1, d1_conf.replace("priority 150", "priority 150\n    nopreempt"))
    with pytest.raises(TimeoutError):
        wait_for(lambda: holds(lab, "d1", VIP1), timeout=5 * V3.master_down(), what="d1 to take over")
    assert transitions(d1, mark) == []
    # Without nopreempt: d1 preempts.
    reload(d1, d1_conf)
    wait_master(lab, "d1", VIP1, V3.master_down() + MARGIN, d1, d2)
    assert d1.wait_log("Entering MASTER STATE", since=mark)["reason"] == "preempt"
    assert d1.stop() == 0 and d2.stop() == 0


def test_a_removed_instance_says_goodbye_and_the_other_keeps_its_vip(lab, watch):
    vi1, vi2 = instance("VI_1", 51, VIP1, 150), instance("VI_2", 52, VIP2, 150)
    d1 = Daemon(lab, "d1", conf("d1", vi1, vi2), "a")
    d2 = Daemon(lab, "d2", conf("d2", instance("VI_1", 51, VIP1, 100), instance("VI_2", 52, VIP2, 100)), "a")
    for daemon in (d1, d2):
        daemon.started()  # the protocol's timeouts count from there, not from the spawn
    wait_master(lab, "d1", VIP1, 2 * V3.master_down() + MARGIN, d1, d2)
    wait_master(lab, "d1", VIP2, MARGIN, d1, d2)
    monitor_log = lab.workdir / "ip-monitor-d1.log"
    monitor = lab.spawn("d1", ["ip", "-o", "monitor", "address"], monitor_log)
    time.sleep(0.5)  # ip monitor subscribed
    marks, start = (d1.mark(), d2.mark()), time.time()
    reload(d1, conf("d1", vi1))
    # VI_2 leaves as on SIGTERM: priority 0, VIP removed; d2 takes VRID 52 over after Skew_Time.
    assert d1.find("(VI_2) sent 0 priority", marks[0]) and d1.find("(VI_2) removing VIPs.", marks[0])
    wait_for(lambda: [a for a in watch.adverts("d1", 52, start) if a["prio"] == 0], timeout=MARGIN,
             what="d1's priority-0 advert for VRID 52")
    wait_master(lab, "d2", VIP2, V3.master_down() + MARGIN, d1, d2)
    assert d2.wait_log("(VI_2) Entering MASTER STATE", since=marks[1])["reason"] == "priority_zero"
    time.sleep(5 * INTERVAL)
    end = time.time()
    monitor.terminate()
    monitor.wait(timeout=5)
    events = monitor_log.read_text()
    assert "Deleted" in events and f"{VIP2}/32" in events, events
    assert f"{VIP1}/" not in events, events  # VI_1's VIP never left
    watch.assert_steady("d1", 51, start, end)
    assert [e for e in transitions(d1, marks[0]) if "VI_1" in e] == []
    assert [e for e in transitions(d2, marks[1]) if "VI_1" in e] == []
    assert d1.stop() == 0 and d2.stop() == 0


def test_an_added_instance_starts(lab, watch):
    vi1 = instance("VI_1", 51, VIP1, 150)
    d1 = Daemon(lab, "d1", conf("d1", vi1), "a")
    d1.started()  # the protocol's timeouts count from there, not from the spawn
    wait_master(lab, "d1", VIP1, V3.master_down() + MARGIN, d1)
    mark, start = d1.mark(), time.time()
    reload(d1, conf("d1", vi1, instance("VI_2", 52, VIP2, 150)))
    d1.wait_log("(VI_2) Entering BACKUP STATE (init)", since=mark)
    wait_master(lab, "d1", VIP2, V3.master_down() + MARGIN, d1)
    assert d1.wait_log("(VI_2) Entering MASTER STATE", since=mark)["reason"] == "master_down"
    wait_for(lambda: watch.adverts("d1", 52, start), timeout=MARGIN, what="d1's adverts for VRID 52")
    time.sleep(3 * INTERVAL)
    watch.assert_steady("d1", 51, start, time.time())
    assert [e for e in transitions(d1, mark) if "VI_1" in e] == []
    assert d1.stop() == 0 and not holds(lab, "d1", VIP1) and not holds(lab, "d1", VIP2)


def test_use_vmac_a_removed_instance_deletes_its_macvlan_and_a_change_restarts(lab, watch):
    vi1 = instance("VI_1", 51, VIP1, 150, extra="use_vmac")
    vi2 = instance("VI_2", 52, VIP2, 150)
    d1 = Daemon(lab, "d1", conf("d1", vi1, vi2), "a")
    d1.started()  # the protocol's timeouts count from there, not from the spawn
    wait_master(lab, "d1", VIP1, V3.master_down() + MARGIN, d1, dev="vrrp.51")
    wait_master(lab, "d1", VIP2, MARGIN, d1, dev="lan0")
    mark, start = d1.mark(), time.time()
    reload(d1, conf("d1", vi2))
    assert lab.run("d1", ["ip", "link", "show", "vrrp.51"], check=False).returncode != 0
    assert d1.find("deleted VMAC interface vrrp.51", mark) and not holds(lab, "d1", VIP1)
    time.sleep(3 * INTERVAL)
    watch.assert_steady("d1", 52, start, time.time())
    # use_vmac on: another VMAC, so the instance stops (priority 0) and starts again on it.
    mark = d1.mark()
    reload(d1, conf("d1", instance("VI_2", 52, VIP2, 150, extra="use_vmac")))
    assert d1.find("(VI_2) restarted by the reload: use_vmac changed", mark)
    wait_master(lab, "d1", VIP2, V3.master_down() + MARGIN, d1, dev="vrrp.52")
    assert not holds(lab, "d1", VIP2, dev="lan0")
    assert d1.stop() == 0
    assert lab.run("d1", ["ip", "link", "show", "vrrp.52"], check=False).returncode != 0
