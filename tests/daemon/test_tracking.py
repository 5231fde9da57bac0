"""daemon.tracking: the trackers subsystem.

Scripts and links run under trio's MockClock (autojump) with a fake script runner and a fake link
source: seconds of tracking time in milliseconds, rise/fall counted at exact times. Files and
processes use the real kernel (inotify, /proc, the process connector) in real time.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from trio.testing import MockClock

from pyvrrpd.config.load import load
from pyvrrpd.core.tracking import Tracker
from pyvrrpd.daemon.scripts import Outcome
from pyvrrpd.daemon.tracking import Trackers, plan_tracking, tracked_interfaces, tracked_scripts
from tests.daemon.fakes import Log

GLOBAL = "global_defs {\n    script_user root\n    enable_script_security\n}\n"


def config(tmp_path: Path, text: str):
    path = tmp_path / "keepalived.conf"
    path.write_text(GLOBAL + text)
    loaded = load(str(path), host_checks=False)
    assert loaded.config is not None and loaded.ok, [str(d) for d in loaded.diagnostics]
    return loaded.config


def instance(name: str, vrid: int, tracks: str = "", priority: int = 100) -> str:
    return f"""vrrp_instance {name} {{
    interface lan0
    virtual_router_id {vrid}
    priority {priority}
    virtual_ipaddress {{
        198.51.100.{vrid}
    }}
{tracks}
}}
"""


class Sink:
    """Records every TrackSink call with the (virtual) time."""

    def __init__(self):
        self.calls: list[tuple[float, str, str, str, object]] = []

    def set_fault(self, instance, source, reason):
        self.calls.append((anyio.current_time(), instance, source, "fault", reason))

    def set_priority_delta(self, instance, source, delta):
        self.calls.append((anyio.current_time(), instance, source, "delta", delta))

    def history(self, instance, source, kind):
        return [(round(t, 3), v) for t, i, s, k, v in self.calls if (i, s, k) == (instance, source, kind)]


class FakeRunner:
    """Scripted outcomes per command name: a list of exit statuses (repeating the last), each run
    taking `duration` virtual seconds."""

    def __init__(self, plans: dict[str, list[int]], duration: float = 0.01):
        self.plans = plans
        self.duration = duration
        self.calls: list[tuple[float, tuple[str, ...]]] = []

    async def run_command(self, command, *, timeout):
        self.calls.append((anyio.current_time(), command.argv))
        await anyio.sleep(self.duration)
        statuses = self.plans[command.argv[0]]
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        return Outcome(command.argv, status=status)

    def snapshot(self):
        return {}


class FakeLinks:
    def __init__(self, initial: dict[str, bool | None]):
        self.initial = initial
        self.send, self.receive = anyio.create_memory_object_stream(100)

    @asynccontextmanager
    async def watch(self, names):
        links = self

        class Watch:
            initial = dict(links.initial)

            def __aiter__(self):
                return links.receive.__aiter__()

        yield Watch()


@pytest.fixture
def anyio_backend():
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


async def run_for(trackers: Trackers, seconds: float) -> float:
    """Run the trackers for `seconds`; return the start time."""
    async with anyio.create_task_group() as tg:
        t0 = anyio.current_time()
        await tg.start(trackers.run)
        await anyio.sleep(seconds)
        tg.cancel_scope.cancel()
    return t0


# --------------------------------------------------------------------------- plan / adapters


def test_plan_takes_weights_from_instances_and_groups(tmp_path):
    cfg = config(tmp_path, """
vrrp_script chk {
    script "/bin/true"
    weight -20
}
vrrp_script unused {
    script "/bin/true"
}
""" + instance("VI_1", 1, "    track_script {\n        chk weight 30 reverse\n    }\n    track_interface {\n        eth9\n    }")
      + instance("VI_2", 2, "    track_script {\n        chk\n    }")
      + instance("VI_3", 3) + """
vrrp_sync_group G {
    group {
        VI_2
        VI_3
    }
    track_script {
        chk
    }
    sync_group_tracking_weight
}
""")
    assert tracked_scripts(cfg) == {"chk": (Tracker("VI_1", 30, True), Tracker("VI_2", -20), Tracker("VI_3", -20))}
    assert tracked_interfaces(cfg) == {"eth9": (Tracker("VI_1"),)}
    plan = plan_tracking(cfg)
    assert set(plan.scripts) == {"chk"} and plan.scripts["chk"].interval == 1.0
    assert "Warning - script unused is not used" in plan.notes


# --------------------------------------------------------------------------- scripts


SCRIPT_CFG = """
vrrp_script chk {
    script "/usr/local/bin/chk arg"
    interval 1
    rise 2
    fall 2
}
vrrp_script weighted {
    script "/usr/local/bin/weighted"
    interval 1
    weight -20
}
""" + instance("VI_1", 1, "    track_script {\n        chk\n        weighted\n    }") \
    + instance("VI_2", 2, "    track_script {\n        chk\n    }")


@pytest.mark.anyio
async def test_rise_and_fall_counted_exactly_and_one_run_per_interval(tmp_path):
    sink = Sink()
    # chk: ok ok fail fail ok ok ...; weighted: fails first, then succeeds
    runner = FakeRunner({"/usr/local/bin/chk": [0, 0, 1, 1, 0, 0], "/usr/local/bin/weighted": [1, 1, 0]})
    trackers = Trackers(config(tmp_path, SCRIPT_CFG), sink, runner=runner, log=Log())
    t0 = await run_for(trackers, 9.9)
    src = "script:chk"
    # no result yet → FAULT; the first success decides; 2 failures (t=2, t=3) → FAULT at t=3;
    # 2 successes (t=4, t=5) → clear at t=5 (+ the fake's 10 ms run time)
    expect = [(0, "VRRP_Script(chk) has no result yet"), (0.01, None), (3.01, "VRRP_Script(chk) failed"), (5.01, None)]
    for inst in ("VI_1", "VI_2"):
        assert [(round(t - t0, 3), v) for t, v in sink.history(inst, src, "fault")] == expect
    assert [(round(t - t0, 3), v) for t, v in sink.history("VI_1", "script:weighted", "delta")] == [
        (0, 0), (0.5 + 0.01, -20), (2.5 + 0.01, 0)]  # second script's runs start 0.5 s later (spread)
    chk_runs = [round(t - t0, 3) for t, argv in runner.calls if argv[0] == "/usr/local/bin/chk"]
    assert chk_runs == [float(i) for i in range(10)]  # once per interval for both instances
    snap = trackers.snapshot()["scripts"]["chk"]
    assert snap["state"] == "up" and snap["counters"]["runs"] == 10 and snap["tracked_by"] == ["VI_1", "VI_2"]
    log = trackers.log.events()
    assert "VRRP_Script(chk) failed (exited with status 1)" in log
    assert "Script `chk` now returning 1" in log and "Script `chk` now returning 0" in log
    assert log.count("VRRP_Script(chk) succeeded") == 2


@pytest.mark.anyio
async def test_a_script_still_running_at_the_next_tick_skips_it(tmp_path):
    sink = Sink()
    runner = FakeRunner({"/usr/local/bin/chk": [0], "/usr/local/bin/weighted": [0]}, duration=2.5)
    trackers = Trackers(config(tmp_path, SCRIPT_CFG), sink, runner=runner, log=Log())
    t0 = await run_for(trackers, 9.9)
    chk_runs = [round(t - t0, 3) for t, argv in runner.calls if argv[0] == "/usr/local/bin/chk"]
    assert chk_runs == [0, 3, 6, 9]  # never two at once
    assert trackers.snapshot()["scripts"]["chk"]["counters"]["skipped"] == 6
    assert "Track script chk is already running, expect idle - skipping run" in trackers.log.events()


@pytest.mark.anyio
async def test_a_script_that_cannot_run_is_a_failure_and_logged_rate_limited(tmp_path):
    sink = Sink()

    class Broken(FakeRunner):
        async def run_command(self, command, *, timeout):
            self.calls.append((anyio.current_time(), command.argv))
            return Outcome(command.argv, error=f"{command.argv[0]}: no such file")

    trackers = Trackers(config(tmp_path, SCRIPT_CFG), sink, runner=Broken({}), log=Log())
    await run_for(trackers, 5)
    assert sink.history("VI_1", "script:chk", "fault")[-1][1] == "VRRP_Script(chk) failed"
    assert "VRRP_Script(chk) failed (cannot run: /usr/local/bin/chk: no such file)" in trackers.log.events()
    assert trackers.log.events("warning").count("VRRP_Script(chk) cannot run: /usr/local/bin/chk: no such file") == 1


@pytest.mark.anyio
async def test_reconfigure_keeps_results_and_clears_what_is_no_longer_tracked(tmp_path):
    sink = Sink()
    runner = FakeRunner({"/usr/local/bin/chk": [1], "/usr/local/bin/weighted": [1]})
    trackers = Trackers(config(tmp_path, SCRIPT_CFG), sink, runner=runner, log=Log())
    smaller = config(tmp_path, SCRIPT_CFG.replace("        weighted\n", ""))
    async with anyio.create_task_group() as tg:
        await tg.start(trackers.run)
        await anyio.sleep(2)
        assert sink.history("VI_1", "script:weighted", "delta")[-1][1] == -20
        assert await trackers.reconfigure(smaller) is None
        await anyio.sleep(0.001)
        assert sink.history("VI_1", "script:weighted", "delta")[-1][1] == 0  # withdrawn
        calls = len(sink.calls)
        await anyio.sleep(0.001)
        tg.cancel_scope.cancel()
    assert sink.history("VI_1", "script:chk", "fault")[-1][1] == "VRRP_Script(chk) failed"
    assert len(sink.calls) == calls  # chk's result was kept: no new "no result yet"


# --------------------------------------------------------------------------- interfaces


@pytest.mark.anyio
async def test_track_interface_down_gone_and_weighted(tmp_path):
    cfg = config(tmp_path, instance("VI_1", 1, "    track_interface {\n        eth1\n        eth2 weight -10\n"
                                               "        eth3 weight 0 reverse\n    }"))
    sink = Sink()
    links = FakeLinks({"eth1": True, "eth2": False, "eth3": None})
    trackers = Trackers(cfg, sink, links=links, log=Log())
    async with anyio.create_task_group() as tg:
        await tg.start(trackers.run)
        assert sink.history("VI_1", "link:eth1", "fault") == [(0, None)]
        assert sink.history("VI_1", "link:eth2", "delta") == [(0, -10)]
        assert sink.history("VI_1", "link:eth3", "fault") == [(0, None)]  # reverse: down is fine
        for name, up in (("eth1", False), ("eth1", None), ("eth1", True), ("eth2", True), ("eth3", True),
                         ("lo", False)):
            await links.send.send((name, up))
            await anyio.sleep(1)
        tg.cancel_scope.cancel()
    assert sink.history("VI_1", "link:eth1", "fault") == [
        (0, None), (0, "tracked interface eth1 is down"), (1, "tracked interface eth1 is gone"), (2, None)]
    assert sink.history("VI_1", "link:eth2", "delta") == [(0, -10), (3, 0)]
    assert sink.history("VI_1", "link:eth3", "fault") == [(0, None), (4, "tracked interface eth3 is up (reverse)")]
    assert trackers.snapshot()["interfaces"] == {"eth1": "up", "eth2": "up", "eth3": "up"}
    assert "Netlink reports eth1 down" in trackers.log.events() and "Interface eth1 deleted" in trackers.log.events()


@pytest.mark.anyio
async def test_a_failing_link_monitor_is_reopened(tmp_path):
    cfg = config(tmp_path, instance("VI_1", 1, "    track_interface {\n        eth1\n    }"))
    sink = Sink()

    class Flaky(FakeLinks):
        opened = 0

        @asynccontextmanager
        async def watch(self, names):
            Flaky.opened += 1
            if Flaky.opened == 1:
                raise OSError(105, "No buffer space available")
            async with super().watch(names) as w:
                yield w

    trackers = Trackers(cfg, sink, links=Flaky({"eth1": False}), log=Log())
    async with anyio.create_task_group() as tg:
        await tg.start(trackers.run)
        await anyio.sleep(1.5)
        tg.cancel_scope.cancel()
    assert Flaky.opened == 2
    assert sink.history("VI_1", "link:eth1", "fault") == [(1, "tracked interface eth1 is down")]
    assert trackers.counters["link_monitor_errors"] == 1


# --------------------------------------------------------------------------- files (real inotify)


async def until(condition, limit: float = 5.0):
    with anyio.fail_after(limit):
        while not condition():
            await anyio.sleep(0.02)


FILE_CFG = """
track_file f0 {
    file "%s"
    weight 0
}
track_file fw {
    file "%s"
    weight 2
    init_file 5 overwrite
}
""" + instance("VI_1", 1, "    track_file {\n        f0\n        fw\n    }")


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "poll"])
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_track_file_values_and_events(tmp_path, inotify):
    f0, fw = tmp_path / "f0", tmp_path / "fw"
    fw.write_text("100\n")  # init_file ... overwrite replaces it
    cfg = config(tmp_path, FILE_CFG % (f0, fw))
    sink = Sink()
    trackers = Trackers(cfg, sink, log=Log(), inotify=inotify)

    def last(source, kind):
        h = sink.history("VI_1", source, kind)
        return h[-1][1] if h else "-"

    async with anyio.create_task_group() as tg:
        await tg.start(trackers.run)
        assert fw.read_text() == "5\n"
        assert last("file:fw", "delta") == 10 and last("file:f0", "fault") is None  # missing file: 0
        f0.write_text("garbage\n")  # no digits: 0
        await anyio.sleep(0.3 if inotify else 1.5)
        assert last("file:f0", "fault") is None
        f0.write_text("3\n")
        await until(lambda: last("file:f0", "fault") == "tracked file f0 has value 3")
        fw.write_text("-200\n")
        await until(lambda: last("file:fw", "fault") == "tracked file fw has value -200")
        assert last("file:fw", "delta") == 0
        fw.write_text("99999999999999\n")  # outside int: ignored, the last value stays
        await until(lambda: trackers.snapshot()["files"]["fw"]["counters"].get("invalid"))
        assert last("file:fw", "fault") == "tracked file fw has value -200"
        moved = tmp_path / "fw.new"
        moved.write_text("0x10\n")
        moved.rename(fw)  # moved in: 16 × 2
        await until(lambda: last("file:fw", "delta") == 32)
        assert last("file:fw", "fault") is None
        f0.unlink()  # gone: 0
        await until(lambda: last("file:f0", "fault") is None)
        tg.cancel_scope.cancel()
    assert trackers.snapshot()["file_watch"] == ("inotify" if inotify else "poll")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_track_file_in_a_missing_directory_is_removed(tmp_path):
    cfg = config(tmp_path, FILE_CFG % (tmp_path / "nodir" / "f0", tmp_path / "fw"))
    sink = Sink()
    trackers = Trackers(cfg, sink, log=Log())
    async with anyio.create_task_group() as tg:
        await tg.start(trackers.run)
        tg.cancel_scope.cancel()
    assert "Track file directory for f0 does not exist - removing" in trackers.log.events("warning")
    assert sink.history("VI_1", "file:f0", "fault") == []


# --------------------------------------------------------------------------- processes (real /proc)


@pytest.mark.parametrize("connector", [True, False], ids=["connector", "scan"])
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_track_process_quorum_follows_real_processes(tmp_path, connector):
    name = f"pvt{os.getpid() % 100000}{'c' if connector else 's'}"
    binary = tmp_path / name
    shutil.copy("/bin/sleep", binary)
    cfg = config(tmp_path, f"""
vrrp_track_process p {{
    process {name}
    quorum 2
    quorum_max 3
}}
""" + instance("VI_1", 1, "    track_process {\n        p\n    }"))
    sink = Sink()
    trackers = Trackers(cfg, sink, log=Log(), connector=connector)
    procs: list[subprocess.Popen] = []

    def fault():
        return sink.history("VI_1", "process:p", "fault")[-1][1]

    try:
        procs.append(subprocess.Popen([str(binary), "60"]))
        await anyio.sleep(0.2)
        async with anyio.create_task_group() as tg:
            await tg.start(trackers.run)
            assert fault() == "tracked process p has no quorum (1 running)"
            procs.append(subprocess.Popen([str(binary), "60"]))
            await until(lambda: fault() is None)
            for _ in range(2):
                procs.append(subprocess.Popen([str(binary), "60"]))
            await until(lambda: fault() == "tracked process p has no quorum (4 running)")  # over quorum_max
            for p in procs[:3]:
                p.send_signal(signal.SIGKILL)
                p.wait()
            await until(lambda: fault() == "tracked process p has no quorum (1 running)")
            tg.cancel_scope.cancel()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    source = trackers.snapshot()["process_source"]
    assert source == ("connector" if connector else "scan")
    assert "Quorum gained for tracked process p" in trackers.log.events()


def test_snapshot_is_json_able_before_start(tmp_path):
    import json
    trackers = Trackers(config(tmp_path, SCRIPT_CFG), Sink(), runner=FakeRunner({}), log=Log())
    assert json.loads(json.dumps(trackers.snapshot()))["scripts"] == {}


@pytest.mark.anyio
async def test_terminate_delay_under_the_fake_clock(tmp_path):
    from pyvrrpd.daemon.watchers import ProcInfo

    cfg = config(tmp_path, """
vrrp_track_process p {
    process nginx
    terminate_delay 2.5
}
""" + instance("VI_1", 1, "    track_process {\n        p\n    }"))
    table = {10: ProcInfo(10, 1, "nginx", None)}
    sink = Sink()
    trackers = Trackers(cfg, sink, log=Log(), connector=False, scan=lambda cmdline: dict(table))
    async with anyio.create_task_group() as tg:
        t0 = anyio.current_time()
        await tg.start(trackers.run)
        await anyio.sleep(0.5)
        table.clear()  # nginx exits (the scan at t=1 sees it), is back at t=2.5, before the delay ends
        await anyio.sleep(2)
        table[11] = ProcInfo(11, 1, "nginx", None)
        await anyio.sleep(3)
        table.clear()  # gone at the scan at t=6, for good: FAULT at 6 + 2.5
        await anyio.sleep(4)
        table[12] = ProcInfo(12, 1, "nginx", None)  # started again: up at the next scan (t=10), no delay
        await anyio.sleep(1)
        tg.cancel_scope.cancel()
    assert [(round(t - t0, 3), v) for t, v in sink.history("VI_1", "process:p", "fault")] == [
        (0, None), (8.5, "tracked process p has no quorum (0 running)"), (10.0, None)]


@pytest.mark.anyio
async def test_a_reload_with_the_same_config_changes_nothing(tmp_path):
    cfg = config(tmp_path, SCRIPT_CFG.replace("        weighted\n", "        weighted\n    }\n    track_interface {\n"
                                                                   "        eth1\n        eth2 weight 5\n"))
    sink = Sink()
    links = FakeLinks({"eth1": False, "eth2": True})
    runner = FakeRunner({"/usr/local/bin/chk": [1], "/usr/local/bin/weighted": [1]})
    trackers = Trackers(cfg, sink, runner=runner, links=links, log=Log())
    async with anyio.create_task_group() as tg:
        await tg.start(trackers.run)
        await anyio.sleep(2)
        before = list(sink.calls)
        assert ("link:eth1", "tracked interface eth1 is down") in [(s, v) for _, i, s, k, v in before if k == "fault"]
        await trackers.reconfigure(cfg)
        await anyio.sleep(0.001)
        assert sink.calls == before  # nothing withdrawn, nothing re-sent
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_reload_keeps_file_facts_and_does_not_overwrite(tmp_path):
    f0, fw = tmp_path / "f0", tmp_path / "fw"
    f0.write_text("1\n")
    cfg = config(tmp_path, FILE_CFG % (f0, fw))
    sink = Sink()
    trackers = Trackers(cfg, sink, log=Log())
    async with anyio.create_task_group() as tg:
        await tg.start(trackers.run)
        fw.write_text("7\n")
        await until(lambda: sink.history("VI_1", "file:fw", "delta")[-1][1] == 14)
        before = list(sink.calls)
        await trackers.reconfigure(cfg)
        await anyio.sleep(0.2)
        assert sink.calls == before and fw.read_text() == "7\n"  # init_file ... overwrite: not on a reload
        tg.cancel_scope.cancel()
