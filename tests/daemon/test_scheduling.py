"""keepalived's scheduling keywords (vrrp_rt_priority and friends): the config, the pure plan, apply()
with faked syscalls, and one real check as root in a subprocess."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from pyvrrpd.config import model
from pyvrrpd.config.load import load
from pyvrrpd.daemon.scheduling import MCL_CURRENT, MCL_FUTURE, Policy, Syscalls, apply, plan

from tests.daemon.fakes import Log


def _load(tmp_path, body: str):
    path = tmp_path / "keepalived.conf"
    path.write_text("global_defs {\n" + textwrap.indent(textwrap.dedent(body), "    ") + "}\n")
    return load(str(path), host_checks=False)


def test_keywords_reach_the_model(tmp_path):
    loaded = _load(tmp_path, """\
        vrrp_rt_priority 10
        vrrp_priority -5
        vrrp_no_swap
        vrrp_cpu_affinity 0 2-3
        checker_priority 5
        checker_rt_priority 120
        """)
    g = loaded.config.global_defs
    assert (g.vrrp_rt_priority, g.vrrp_priority, g.vrrp_no_swap, g.vrrp_cpu_affinity) == (10, -5, True, (0, 2, 3))
    assert (g.checker_priority, g.checker_rt_priority, g.checker_no_swap) == (5, 99, False)
    assert any("outside [1, 99]; using 99" in d.message for d in loaded.diagnostics)


def test_bad_values_are_warnings_and_ignored(tmp_path):
    loaded = _load(tmp_path, """\
        vrrp_priority 40
        vrrp_cpu_affinity 1 x
        vrrp_rt_priority ten
        """)
    g = loaded.config.global_defs
    assert loaded.ok and (g.vrrp_priority, g.vrrp_cpu_affinity, g.vrrp_rt_priority) == (None, (), None)
    assert len(loaded.diagnostics) == 3


def test_plan_takes_vrrp_keywords_when_vrrp_runs_else_checker_ones():
    gd = model.GlobalDefs(vrrp_rt_priority=10, vrrp_priority=-5, checker_priority=5, checker_no_swap=True)
    assert plan(gd, vrrp_runs=True) == Policy("vrrp", rt_priority=10, nice=None)  # rt wins over nice
    assert plan(gd, vrrp_runs=False) == Policy("checker", nice=5, no_swap=True)
    assert plan(model.GlobalDefs(), vrrp_runs=True).empty


class Fake:
    def __init__(self, fail: dict | None = None, tids=(100, 101, 102)):
        self.calls: list = []
        self.fail = fail or {}
        self.tids = list(tids)

    def _call(self, name, *args):
        self.calls.append((name, *args))
        if name in self.fail:
            raise OSError(self.fail[name], os.strerror(self.fail[name]))

    def syscalls(self) -> Syscalls:
        return Syscalls(
            threads=lambda: self.tids,
            sched_setscheduler=lambda tid, policy, param: self._call("sched", tid, policy, param.sched_priority),
            setpriority=lambda which, who, nice: self._call("nice", which, who, nice),
            sched_setaffinity=lambda tid, cpus: self._call("affinity", tid, tuple(cpus)),
            mlockall=lambda flags: self._call("mlockall", flags),
        )


def test_rt_priority_on_every_thread_and_the_rest():
    fake, log = Fake(), Log()
    applied = apply(Policy("vrrp", rt_priority=10, no_swap=True, cpus=(0, 1)), log, fake.syscalls())
    assert [c for c in fake.calls if c[0] == "sched"] == [("sched", t, os.SCHED_RR, 10) for t in (100, 101, 102)]
    assert ("mlockall", MCL_CURRENT | MCL_FUTURE) in fake.calls
    assert [c for c in fake.calls if c[0] == "affinity"] == [("affinity", t, (0, 1)) for t in (100, 101, 102)]
    assert not [c for c in fake.calls if c[0] == "nice"]
    assert applied == {"source": "vrrp", "rt_priority": 10, "no_swap": True, "cpu_affinity": [0, 1]}
    assert log.events("warning") == []


def test_nice_when_no_rt_priority():
    fake = Fake()
    applied = apply(Policy("checker", nice=5), Log(), fake.syscalls())
    assert fake.calls == [("nice", os.PRIO_PROCESS, 0, 5)] and applied["priority"] == 5


def test_refusals_are_warnings_never_fatal():
    fake, log = Fake(fail={"sched": errno.EPERM, "mlockall": errno.ENOMEM}), Log()
    applied = apply(Policy("vrrp", rt_priority=10, no_swap=True), log, fake.syscalls())
    assert [c for c in fake.calls if c[0] == "sched"] == [("sched", 100, os.SCHED_RR, 10)]  # stops at the first
    assert set(applied["failed"]) == {"rt_priority", "no_swap"} and "rt_priority" not in applied
    warnings = log.events("warning")
    assert len(warnings) == 2 and "vrrp_rt_priority: not applied: EPERM" in warnings[0]
    assert "CAP_SYS_NICE" in warnings[0] and "RLIMIT_MEMLOCK" in warnings[1]


def test_a_thread_that_ended_meanwhile_is_skipped():
    fake = Fake(fail={"sched": errno.ESRCH})
    applied = apply(Policy("vrrp", rt_priority=3), Log(), fake.syscalls())
    assert applied.get("rt_priority") == 3 and "failed" not in applied


def test_nothing_asked_nothing_done():
    fake = Fake()
    assert apply(Policy("vrrp"), Log(), fake.syscalls()) == {"source": "vrrp"} and fake.calls == []


REAL = """
import json, os, sys, threading
from tests.daemon.fakes import Log
from pyvrrpd.daemon import scheduling
before = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
before.start()  # a thread that exists already: set by its tid
applied = scheduling.apply(scheduling.Policy("vrrp", rt_priority=7, no_swap=True), Log())
seen = {}
def child():
    seen["child"] = os.sched_getscheduler(0)  # a thread started later inherits it
t = threading.Thread(target=child)
t.start(); t.join()
pols = [int(open(f"/proc/self/task/{tid}/stat").read().rpartition(")")[2].split()[38])
        for tid in os.listdir("/proc/self/task")]
print(json.dumps({"applied": applied, "main": os.sched_getscheduler(0),
                  "prio": os.sched_getparam(0).sched_priority, "child": seen["child"], "threads": pols}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_RR needs root (CAP_SYS_NICE); run as root")
def test_real_sched_rr_as_root():
    """The real syscalls, in a subprocess (the test process keeps its scheduling): SCHED_RR on the main
    thread, a thread that existed and one started afterwards."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", REAL], capture_output=True, text=True, timeout=60, cwd=root,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.splitlines()[-1])
    if "failed" in r["applied"]:  # a container without a real-time budget: the warning path, not a crash
        pytest.fail(f"the kernel refused SCHED_RR as root: {r['applied']['failed']}")
    assert r["applied"] == {"source": "vrrp", "rt_priority": 7, "no_swap": True}
    assert (r["main"], r["prio"], r["child"]) == (os.SCHED_RR, 7, os.SCHED_RR)
    assert set(r["threads"]) == {os.SCHED_RR}

