"""The daemon root with recording subsystems under the fake clock: start and stop order, failures,
reload, snapshot, signals and the pid file."""

from __future__ import annotations

import json
import os
import signal
import threading
from types import SimpleNamespace

import anyio
import pytest

from pyvrrpd.config.diagnostics import Source, Span, error, warning
from pyvrrpd.config.load import Loaded
from pyvrrpd.daemon.root import EXIT_FAILURE, EXIT_OK, Root
from pyvrrpd.daemon.subsystem import SubsystemError

from tests.daemon.fakes import Log

CONFIG = SimpleNamespace(instances=(), name="old")
NEW = SimpleNamespace(instances=(), name="new")
SPAN = Span(Source("/etc/keepalived/keepalived.conf"), 7, 5)


class Recorder:
    """A subsystem that records its life in a shared list."""

    def __init__(self, name: str, events: list, *, startup: float = 0.1, cleanup: float = 0.5,
                 fail: str | None = None, answer: str | None = None, returns: bool = False) -> None:
        self.name, self.events = name, events
        self.startup, self.cleanup, self.fail, self.answer, self.returns = startup, cleanup, fail, answer, returns
        self.configs: list = []

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        self.events.append(("start", self.name, anyio.current_time()))
        try:
            await anyio.sleep(self.startup)
            if self.fail:
                raise SubsystemError(self.fail)
            task_status.started()
            self.events.append(("ready", self.name, anyio.current_time()))
            if self.returns:
                return
            await anyio.sleep_forever()
        finally:
            with anyio.move_on_after(5, shield=True):
                await anyio.sleep(self.cleanup)
                self.events.append(("stopped", self.name, anyio.current_time()))

    async def reconfigure(self, config) -> str | None:
        self.configs.append(config)
        return self.answer

    def snapshot(self) -> dict:
        return {"configs": len(self.configs), "name": self.name}


def make_root(*subsystems, load=None, pid_file=None) -> tuple[Root, Log]:
    log = Log()
    root = Root(CONFIG, subsystems, log=log, load=load or (lambda: Loaded(NEW, ())), pid_file=pid_file,
                config_file="/etc/keepalived/keepalived.conf")
    return root, log


def kinds(events) -> list[tuple[str, str]]:
    return [(kind, name) for kind, name, _ in events]


async def run_until(root: Root, action, *, after: float = 10):
    """Run the root, do `action` `after` seconds in, then stop it; the exit status."""
    result = {}

    async def main():
        result["code"] = await root.run()

    async with anyio.create_task_group() as tg:
        tg.start_soon(main)
        await anyio.sleep(after)
        if action is not None:
            await action()
        root.request_stop()
    return result["code"]


@pytest.mark.anyio
async def test_subsystems_start_in_order_and_stop_in_reverse_each_finished_first():
    events: list = []
    a, b, c = (Recorder(name, events) for name in ("lvs", "vrrp", "trackers"))
    root, log = make_root(a, b, c)
    assert await run_until(root, None) == EXIT_OK
    assert kinds(events) == [("start", "lvs"), ("ready", "lvs"), ("start", "vrrp"), ("ready", "vrrp"),
                             ("start", "trackers"), ("ready", "trackers"),
                             ("stopped", "trackers"), ("stopped", "vrrp"), ("stopped", "lvs")]
    stops = [t for kind, _, t in events if kind == "stopped"]
    assert stops[1] - stops[0] == pytest.approx(0.5) and stops[2] - stops[1] == pytest.approx(0.5)
    assert log.events("info")[0].startswith("Starting pyvrrpd v") and log.events("info")[-1].startswith("Stopped")


@pytest.mark.anyio
async def test_a_subsystem_that_cannot_start_stops_the_others_and_exits_1():
    events: list = []
    a, b, c = Recorder("a", events), Recorder("b", events, fail="cannot open a netlink socket"), Recorder("c", events)
    root, log = make_root(a, b, c)
    assert await run_until(root, None) == EXIT_FAILURE
    assert kinds(events) == [("start", "a"), ("ready", "a"), ("start", "b"), ("stopped", "b"), ("stopped", "a")]
    assert "b: cannot open a netlink socket" in log.events("error")


@pytest.mark.anyio
async def test_a_subsystem_that_ends_by_itself_stops_the_daemon():
    events: list = []
    root, log = make_root(Recorder("a", events), Recorder("b", events, returns=True))
    assert await run_until(root, None) == EXIT_FAILURE
    assert log.events("error") == ["the b subsystem stopped by itself"]
    assert kinds(events)[-1] == ("stopped", "a")


@pytest.mark.anyio
async def test_stop_during_a_long_start_does_not_wait_for_it():
    events: list = []
    slow = Recorder("slow", events, startup=3600, cleanup=0)
    root, _ = make_root(Recorder("a", events, cleanup=0), slow, Recorder("never", events))
    t0 = anyio.current_time()
    assert await run_until(root, None, after=1) == EXIT_OK
    assert anyio.current_time() - t0 < 2
    assert kinds(events) == [("start", "a"), ("ready", "a"), ("start", "slow"), ("stopped", "slow"),
                             ("stopped", "a")]


@pytest.mark.anyio
async def test_snapshot_has_the_process_and_every_subsystem_and_is_json():
    events: list = []
    root, _ = make_root(Recorder("vrrp", events), Recorder("lvs", events))
    snaps = []

    async def look():
        snaps.append(root.snapshot())

    await run_until(root, look)
    [snap] = snaps
    assert json.loads(json.dumps(snap)) == snap
    assert set(snap) == {"process", "vrrp", "lvs"}
    assert snap["vrrp"] == {"configs": 0, "name": "vrrp"}
    process = snap["process"]
    assert process["pid"] == os.getpid() and process["state"] == "running"
    assert process["subsystems"] == ["vrrp", "lvs"] and process["reloads"]["requested"] == 0


def test_subsystem_names_are_unique_and_not_process():
    with pytest.raises(ValueError):
        make_root(Recorder("vrrp", []), Recorder("vrrp", []))
    with pytest.raises(ValueError):
        make_root(Recorder("process", []))


@pytest.mark.anyio
async def test_reload_with_errors_keeps_the_running_config_and_logs_every_diagnostic():
    events: list = []
    sub = Recorder("vrrp", events)
    bad = Loaded(None, (error(SPAN, "priority 300 is not in 1-255"), warning(SPAN, "unknown keyword 'priorty'")))
    root, log = make_root(sub, load=lambda: bad)

    async def reload():
        assert await root.reload() is False

    await run_until(root, reload)
    assert root.config is CONFIG and sub.configs == []
    assert ("error", "config: priority 300 is not in 1-255", {"where": str(SPAN)}) in log.lines
    assert ("warning", "config: unknown keyword 'priorty'", {"where": str(SPAN)}) in log.lines
    assert log.events("error")[-1] == ("reload: 1 error(s) in /etc/keepalived/keepalived.conf; keeping the "
                                       "running configuration")
    reloads = root.snapshot()["process"]["reloads"]
    assert {k: reloads[k] for k in ("requested", "applied", "refused", "failed", "last_result")} == \
        {"requested": 1, "applied": 0, "refused": 0, "failed": 1, "last_result": "failed"}


@pytest.mark.anyio
async def test_reload_hands_the_new_config_to_every_subsystem():
    events: list = []
    vrrp, lvs = Recorder("vrrp", events, answer="reload is not supported yet"), Recorder("lvs", events)
    threads = []

    def load():
        threads.append(threading.get_ident())
        return Loaded(NEW, (warning(SPAN, "accepted but not supported yet"),))

    root, log = make_root(vrrp, lvs, load=load)
    results = []

    async def reload():
        results.append(await root.reload())
        vrrp.answer = None
        results.append(await root.reload())

    await run_until(root, reload)
    assert threads and threading.get_ident() not in threads  # loaded in a worker thread
    assert vrrp.configs == [NEW, NEW] and lvs.configs == [NEW, NEW]
    assert results == [False, True] and root.config is NEW
    assert "vrrp: reload is not supported yet; keeping the running configuration" in log.events("info")
    assert "config: accepted but not supported yet" in log.events("warning")
    assert log.events("info").count("lvs: reconfigured") == 2
    reloads = root.snapshot()["process"]["reloads"]
    assert {k: reloads[k] for k in ("requested", "applied", "refused", "failed", "last_result")} == \
        {"requested": 2, "applied": 1, "refused": 1, "failed": 0, "last_result": "applied"}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # real signals and a real worker thread: real time
async def test_signals_pid_file_and_a_second_sighup_during_a_reload(tmp_path, anyio_backend):
    events: list = []
    pid_file = tmp_path / "pyvrrpd.pid"
    entered, release = threading.Event(), threading.Event()

    def load():  # the first load waits until the second SIGHUP has come
        entered.set()
        release.wait(10)
        return Loaded(NEW, ())

    sub = Recorder("vrrp", events, answer="reload is not supported yet")
    twice = anyio.Event()
    reconfigure = sub.reconfigure

    async def counting(config):
        answer = await reconfigure(config)
        if len(sub.configs) == 2:
            twice.set()
        return answer

    sub.reconfigure = counting
    root, log = make_root(sub, load=load, pid_file=str(pid_file))
    codes = []

    async def main():
        codes.append(await root.run())

    async def until(condition, what: str) -> None:
        with anyio.fail_after(10):
            while not condition():
                await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(main)
        await until(lambda: pid_file.exists() and root._state == "running", "the pid file")
        assert pid_file.read_text() == f"{os.getpid()}\n"
        os.kill(os.getpid(), signal.SIGHUP)
        assert await anyio.to_thread.run_sync(entered.wait, 10)
        os.kill(os.getpid(), signal.SIGHUP)
        await until(lambda: root._reload_again, "the second SIGHUP queued behind the first")
        release.set()
        with anyio.fail_after(10):
            await twice.wait()
        os.kill(os.getpid(), signal.SIGTERM)
    assert codes == [EXIT_OK] and not pid_file.exists()
    assert kinds(events)[-1] == ("stopped", "vrrp")
    assert ("info", "Stopping", {"signal": "SIGTERM"}) in log.lines
    assert log.events("info").count("Reloading") == 2


@pytest.mark.anyio
async def test_an_unwritable_pid_file_is_an_error_before_anything_starts(tmp_path):
    events: list = []
    root, log = make_root(Recorder("vrrp", events), pid_file=str(tmp_path / "missing" / "pyvrrpd.pid"))
    assert await root.run() == EXIT_FAILURE
    assert events == [] and log.events("error")[0].startswith("cannot write pid file")
