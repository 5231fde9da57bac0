"""daemon.notify: real scripts and FIFOs, real time (short timeouts) on the asyncio backend."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest

from pyvrrpd.daemon.notify import FifoSettings, FifoSpec, Notifier, NotifyScripts, fifo_line
from pyvrrpd.daemon.scripts import Command, ScriptRunner
from tests.daemon.fakes import Log

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def recorder(tmp_path: Path, delay: float = 0.05) -> tuple[Path, Path]:
    """A script that appends 'start ARGS' and, `delay` s later, 'end ARGS' to a log file."""
    log = tmp_path / "calls.log"
    script = tmp_path / "rec.sh"
    script.write_text(f'#!/bin/sh\necho "start $*" >> {log}\nsleep {delay}\necho "end $*" >> {log}\n')
    script.chmod(0o755)
    return script, log


def scripts_for(script: Path) -> NotifyScripts:
    def c(*args):
        return Command((str(script), *args))
    return NotifyScripts(master=c("master"), backup=c("backup"), fault=c("fault"), stop=c("stop"),
                         generic=c("generic"))


async def wait_for_lines(path: Path, count: int, limit: float = 10.0) -> list[str]:
    with anyio.fail_after(limit):
        while True:
            lines = path.read_text().splitlines() if path.exists() else []
            if len(lines) >= count:
                return lines
            await anyio.sleep(0.02)


async def test_scripts_run_in_transition_order_with_keepalived_arguments(tmp_path):
    script, log = recorder(tmp_path)
    notifier = Notifier(FifoSettings())
    scripts = scripts_for(script)
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        for state, prio in (("BACKUP", 150), ("MASTER", 150), ("FAULT", 150), ("BACKUP", 100)):
            notifier.transition("INSTANCE", "VI_1", state, prio, scripts)
        lines = await wait_for_lines(log, 16)
        tg.cancel_scope.cancel()
    calls = [line.split(" ", 1) for line in lines]
    # strictly one at a time: every start is followed by its own end
    assert [c[0] for c in calls] == ["start", "end"] * 8
    assert [c[1] for c in calls[::2]] == [
        "backup", "generic INSTANCE VI_1 BACKUP 150",
        "master", "generic INSTANCE VI_1 MASTER 150",
        "fault", "generic INSTANCE VI_1 FAULT 150",
        "backup", "generic INSTANCE VI_1 BACKUP 100",
    ]
    assert notifier.counters["scripts_succeeded"] == 8


async def test_groups_get_priority_0_and_deleted_is_fault_without_notify_deleted(tmp_path):
    script, log = recorder(tmp_path, delay=0)
    notifier = Notifier(FifoSettings())
    generic = NotifyScripts(generic=Command((str(script),)))
    with_deleted = NotifyScripts(generic=Command((str(script),)), notify_deleted=True)
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        notifier.transition("GROUP", "G1", "MASTER", 200, generic)
        notifier.transition("INSTANCE", "VI_1", "DELETED", 100, generic)
        notifier.transition("INSTANCE", "VI_2", "DELETED", 100, with_deleted)
        lines = await wait_for_lines(log, 6)
        tg.cancel_scope.cancel()
    assert sorted(line for line in lines if line.startswith("start")) == [
        "start GROUP G1 MASTER 0", "start INSTANCE VI_1 FAULT 100", "start INSTANCE VI_2 DELETED 100"]


async def test_a_hung_script_is_killed_and_never_delays_a_transition(tmp_path):
    script, log = recorder(tmp_path, delay=0)
    hung = tmp_path / "hung.sh"
    hung.write_text("#!/bin/sh\nsleep 30\n")
    hung.chmod(0o755)
    scripts = NotifyScripts(master=Command((str(hung),)), backup=Command((str(script), "backup")))
    notifier = Notifier(FifoSettings(), timeout=0.3, runner=ScriptRunner(kill_grace=0.2), log=Log())
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        t0 = time.monotonic()
        notifier.transition("INSTANCE", "VI_1", "MASTER", 150, scripts)
        notifier.transition("INSTANCE", "VI_1", "BACKUP", 100, scripts)
        assert time.monotonic() - t0 < 0.25  # queued, not run (the script would take 30 s)
        await wait_for_lines(log, 2)
        elapsed = time.monotonic() - t0
        tg.cancel_scope.cancel()
    assert 0.3 <= elapsed < 3
    assert notifier.counters["scripts_timed_out"] == 1 and notifier.counters["scripts_succeeded"] == 1
    assert any("timed_out" in e for e in notifier.log.events("warning"))


async def test_stop_notifications_queued_at_stop_still_run(tmp_path):
    script, log = recorder(tmp_path, delay=0)
    notifier = Notifier(FifoSettings())
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        tg.cancel_scope.cancel()
        notifier.transition("INSTANCE", "VI_1", "STOP", 150, scripts_for(script))
    assert [line for line in log.read_text().splitlines() if line.startswith("start")] == [
        "start stop", "start generic INSTANCE VI_1 STOP 150"]


async def test_a_script_running_at_stop_finishes_and_the_queue_after_it_runs(tmp_path):
    script, log = recorder(tmp_path, delay=0.3)
    notifier = Notifier(FifoSettings())
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        notifier.transition("INSTANCE", "VI_1", "STOP", 150, scripts_for(script))
        await wait_for_lines(log, 1)  # "start stop": running when the subsystem is stopped
        tg.cancel_scope.cancel()
    assert log.read_text().splitlines() == ["start stop", "end stop", "start generic INSTANCE VI_1 STOP 150",
                                            "end generic INSTANCE VI_1 STOP 150"]


async def test_the_drain_time_bounds_the_stop(tmp_path):
    script, log = recorder(tmp_path, delay=5)
    notifier = Notifier(FifoSettings(), drain_limit=0.3, stop_timeout=10, log=Log())
    t0 = time.monotonic()
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        notifier.transition("INSTANCE", "VI_1", "STOP", 150, scripts_for(script))
        await wait_for_lines(log, 1)
        tg.cancel_scope.cancel()
    assert time.monotonic() - t0 < 3
    assert log.read_text().splitlines() == ["start stop"]  # killed at the drain time


async def test_fifo_gets_keepalived_lines_exactly(tmp_path):
    vrrp, both, lvs = (str(tmp_path / n) for n in ("vrrp.fifo", "notify.fifo", "lvs.fifo"))
    notifier = Notifier(FifoSettings(notify=FifoSpec(both), vrrp=FifoSpec(vrrp), lvs=FifoSpec(lvs)))
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        readers = {p: os.open(p, os.O_RDONLY | os.O_NONBLOCK) for p in (vrrp, both, lvs)}
        notifier.transition("INSTANCE", "VI_1", "BACKUP", 150, None)
        notifier.transition("INSTANCE", "VI_1", "MASTER", 150, None)
        notifier.transition("GROUP", "G1", "MASTER", 150, None)
        notifier.event("VI_1", "MASTER_RX_LOWER_PRI", 150)
        notifier.lvs("RS [203.0.113.11]:tcp:80 [198.51.100.100]:tcp:80 UP")
        got = {p: os.read(fd, 4096) for p, fd in readers.items()}
        for fd in readers.values():
            os.close(fd)
        tg.cancel_scope.cancel()
    vrrp_lines = (b'INSTANCE "VI_1" BACKUP 150\nINSTANCE "VI_1" MASTER 150\nGROUP "G1" MASTER 0\n'
                  b'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 150\n')
    lvs_line = b"RS [203.0.113.11]:tcp:80 [198.51.100.100]:tcp:80 UP\n"
    assert got[vrrp] == vrrp_lines
    assert got[both] == vrrp_lines + lvs_line
    assert got[lvs] == lvs_line
    assert not any(os.path.exists(p) for p in (vrrp, both, lvs))  # we created them, we removed them


async def test_a_fifo_nobody_reads_never_blocks(tmp_path):
    path = str(tmp_path / "vrrp.fifo")
    notifier = Notifier(FifoSettings(vrrp=FifoSpec(path)))
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        t0 = time.monotonic()
        for i in range(5000):
            notifier.transition("INSTANCE", "VI_1", "MASTER" if i % 2 else "BACKUP", 100, None)
        assert time.monotonic() - t0 < 2
        tg.cancel_scope.cancel()
    fifo = notifier.snapshot()["fifos"]["vrrp"]["counters"]
    assert fifo["written"] > 0 and fifo["dropped"] > 0 and fifo["written"] + fifo["dropped"] == 5000
    assert notifier.counters["fifo_dropped"] == fifo["dropped"]


async def test_fifo_reader_script_gets_the_fifo_name_and_the_lines(tmp_path):
    path = str(tmp_path / "n.fifo")
    out = tmp_path / "seen"
    reader = Command(("/bin/sh", "-c", f'exec cat "$1" > {out}', "sh"))
    notifier = Notifier(FifoSettings(vrrp=FifoSpec(path, script=reader)))
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        notifier.transition("INSTANCE", "VI_1", "MASTER", 150, None)
        assert await wait_for_lines(out, 1) == ['INSTANCE "VI_1" MASTER 150']
        tg.cancel_scope.cancel()
    assert not notifier.runner.running and not os.path.exists(path)


async def test_a_path_that_is_not_a_fifo_is_refused(tmp_path):
    regular = tmp_path / "file"
    regular.write_text("x")
    log = Log()
    notifier = Notifier(FifoSettings(vrrp=FifoSpec(str(regular)), notify=FifoSpec(str(tmp_path / "no/such/dir/f"))),
                        log=log)
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        notifier.transition("INSTANCE", "VI_1", "MASTER", 150, None)
        tg.cancel_scope.cancel()
    assert regular.read_text() == "x"
    warnings = log.events("warning")
    assert f"notify fifo {regular} is not a fifo; not using it" in warnings
    assert any(w.startswith(f"cannot create notify fifo {tmp_path}/no/such/dir/f: ") for w in warnings)


async def test_a_flapping_instance_is_capped(tmp_path):
    script, _ = recorder(tmp_path, delay=0)
    notifier = Notifier(FifoSettings(), queue_limit=3, log=Log())
    for i in range(10):  # not running yet: queued, then capped
        notifier.transition("INSTANCE", "VI_1", "MASTER", 100, NotifyScripts(master=Command((str(script),))))
    assert notifier.counters["queued"] == 3 and notifier.counters["queue_full_dropped"] == 7


def test_fifo_line():
    assert fifo_line("INSTANCE", "VI_1", "MASTER", 150) == 'INSTANCE "VI_1" MASTER 150\n'


async def test_checkers_only_reload_compares_only_the_checkers_fifos(tmp_path):
    """-C with vrrp_notify_fifo in global_defs: a SIGHUP with nothing changed (or only the VRRP FIFO, which
    -C does not open) is no FIFO change; a change of a FIFO the checkers write still is one."""
    from pyvrrpd import cli
    from pyvrrpd.config.load import load
    from pyvrrpd.daemon.root import build_subsystems
    from pyvrrpd.observe import logs

    path = tmp_path / "keepalived.conf"

    def config(vrrp_fifo: str, lvs_fifo: str):
        path.write_text(f"global_defs {{\n notify_fifo {tmp_path / 'all.fifo'}\n vrrp_notify_fifo {vrrp_fifo}\n"
                        f" lvs_notify_fifo {lvs_fifo}\n}}\n"
                        "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 51\n priority 100\n"
                        f" notify_master {tmp_path / 'master.sh'}\n virtual_ipaddress {{ 198.51.100.100 }}\n}}\n"
                        "virtual_server 198.51.100.100 80 {\n protocol TCP\n real_server 203.0.113.1 80 {\n }\n}\n")
        return load(str(path), host_checks=False).config

    first = config(str(tmp_path / "vrrp.fifo"), str(tmp_path / "lvs.fifo"))
    notifier, _lvs = build_subsystems(cli.build_parser().parse_args(["-C"]), first, logs.get("test"))
    assert notifier.settings.vrrp is None and notifier.table.scripts == {} and notifier.mailer is None
    assert await notifier.reconfigure(first) is None
    assert await notifier.reconfigure(config(str(tmp_path / "other.fifo"), str(tmp_path / "lvs.fifo"))) is None
    assert notifier.table.scripts == {}  # no VRRP script under -C, before or after the reload
    changed = await notifier.reconfigure(config(str(tmp_path / "other.fifo"), str(tmp_path / "lvs2.fifo")))
    assert changed == "notify FIFO settings changed; restart the notify subsystem"

    # without -C the VRRP FIFO is the notifier's: its change is one
    notifier = build_subsystems(cli.build_parser().parse_args([]), first, logs.get("test"))[0]
    assert notifier.name == "notify" and notifier.settings.vrrp.path == str(tmp_path / "vrrp.fifo")
    assert await notifier.reconfigure(first) is None
    assert await notifier.reconfigure(config(str(tmp_path / "other.fifo"), str(tmp_path / "lvs.fifo"))) == changed
