"""daemon.scripts: real processes, real time (short timeouts) on the asyncio backend."""

from __future__ import annotations

import os
import signal
import time

import anyio
import pytest

from pyvrrpd.daemon.scripts import ScriptRunner, check_command, is_executable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def runner():
    return ScriptRunner(output_cap=1024, kill_grace=0.3, stop_grace=0.3)


def dead(pid: int) -> bool:
    """The process no longer runs: gone, or a zombie waiting for its (new) parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def gone(pgid: int) -> bool:
    """Every process of the group has stopped running (waiting up to 1 s for SIGKILL to land)."""
    for _ in range(100):
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        members = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(pid)
        if not members:
            return True
        time.sleep(0.01)
    return False


async def test_true_succeeds(runner):
    out = await runner.run(["/bin/true"], timeout=5)
    assert out.ok and out.status == 0 and out.describe() == "succeeded"
    assert runner.counters["succeeded"] == 1


async def test_false_fails_with_its_status(runner):
    out = await runner.run(["/bin/false"], timeout=5)
    assert not out.ok and out.status == 1
    assert out.describe() == "failed (exited with status 1)"
    assert runner.counters["failed"] == 1


async def test_a_name_is_looked_up_in_path(runner):
    assert (await runner.run(["true"], timeout=5)).ok
    out = await runner.run(["no-such-command-pyvrrpd"], timeout=5)
    assert out.error == "no-such-command-pyvrrpd: not found in PATH"


async def test_arguments_are_passed_without_a_shell(runner):
    out = await runner.run(["/bin/echo", "a b", "$HOME", "*"], timeout=5)
    assert out.output == b"a b $HOME *\n"


async def test_sleep_past_timeout_is_terminated_and_reaped(runner):
    t0 = anyio.current_time()
    out = await runner.run(["/bin/sleep", "30"], timeout=0.2)
    assert out.timed_out and not out.ok and out.describe() == "timed_out"
    assert out.status is None and out.signal is None
    assert anyio.current_time() - t0 < 2
    assert gone(out.pid)
    assert runner.counters["timed_out"] == 1 and not runner.running


async def test_a_script_ignoring_sigterm_gets_sigkill_with_its_children(runner, tmp_path):
    child = tmp_path / "child.pid"
    script = f"trap '' TERM; sleep 30 & echo $! > {child}; wait; sleep 30"
    t0 = anyio.current_time()
    out = await runner.run(["/bin/sh", "-c", script], timeout=0.2)
    assert out.timed_out
    assert 0.4 < anyio.current_time() - t0 < 3  # timeout + kill grace
    assert gone(out.pid)
    assert dead(int(child.read_text()))


async def test_a_script_that_handles_sigterm_counts_by_its_exit_status(runner):
    out = await runner.run(["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 30 & wait"], timeout=0.2)
    assert out.ok and not out.timed_out  # as in keepalived: it exited, status 0


async def test_killed_by_a_signal(runner):
    out = await runner.run(["/bin/sh", "-c", "kill -9 $$"], timeout=5)
    assert out.signal == signal.SIGKILL and not out.timed_out and out.status is None
    assert out.describe() == "failed (due to signal 9)"
    assert runner.counters["signalled"] == 1


async def test_a_flood_of_output_is_drained_and_capped(runner):
    size = 5_000_000
    out = await runner.run(["/bin/sh", "-c", f"head -c {size} /dev/zero; echo tail >&2"], timeout=20)
    assert out.ok
    assert len(out.output) == 1024 and out.output.endswith(b"tail\n")
    assert out.output_dropped == size + 5 - 1024
    assert runner.counters["output_truncated"] == 1


async def test_a_missing_path_is_a_clear_failure(runner):
    out = await runner.run(["/nonexistent/pyvrrpd-check"], timeout=5)
    assert out.error == "/nonexistent/pyvrrpd-check: no such file"
    assert not out.ok and out.describe() == "failed (cannot run: /nonexistent/pyvrrpd-check: no such file)"
    assert runner.counters["cannot_run"] == 1


async def test_a_non_executable_file_is_a_clear_failure(runner, tmp_path):
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    out = await runner.run([str(script)], timeout=5)
    assert out.error == f"{script}: not executable for uid:gid {os.geteuid()}:{os.getegid()}"
    directory = await runner.run([str(tmp_path)], timeout=5)
    assert directory.error == f"{tmp_path}: not a regular file"
    assert runner.counters["cannot_run"] == 2


async def test_exec_failure_is_a_clear_failure(runner, tmp_path):
    script = tmp_path / "noshebang"
    script.write_bytes(b"\x7fELF garbage")
    script.chmod(0o755)
    out = await runner.run([str(script)], timeout=5)
    assert out.error is not None and out.error.startswith(f"{script}: ")
    assert runner.counters["cannot_run"] == 1


async def test_runs_as_the_given_user(runner):
    out = await runner.run(["/bin/sh", "-c", "id -u; id -g; id -G"], timeout=5, user="nobody")
    assert out.ok
    uid, gid, groups = out.output.decode().split("\n")[:3]
    assert uid == "65534" and groups == gid  # the user's group; root's supplementary groups cleared
    out = await runner.run(["/usr/bin/id", "-g"], timeout=5, user="nobody", group="daemon")
    assert out.output.strip() == b"1"
    bad = await runner.run(["/bin/true"], timeout=5, user="no-such-user-pyvrrpd")
    assert bad.error == "unknown user no-such-user-pyvrrpd"


async def test_cancelling_the_caller_kills_and_reaps(runner):
    pids = []

    async def call():
        await runner.run(["/bin/sleep", "30"], timeout=None)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await anyio.sleep(0.2)
        pids = list(runner.running)
        tg.cancel_scope.cancel()
    assert len(pids) == 1 and gone(pids[0]) and not runner.running


async def test_a_background_child_holding_the_pipe_does_not_hang_the_run(runner, tmp_path):
    child = tmp_path / "child.pid"
    t0 = anyio.current_time()
    out = await runner.run(["/bin/sh", "-c", f"sleep 30 & echo $! > {child}; exit 3"], timeout=5)
    try:
        assert out.status == 3 and anyio.current_time() - t0 < 2
    finally:
        os.kill(int(child.read_text()), signal.SIGKILL)


def test_check_command_and_is_executable(tmp_path):
    f = tmp_path / "x"
    f.write_text("")
    f.chmod(0o750)
    st = f.stat()
    assert is_executable(st, 0, 0)
    assert is_executable(st, st.st_uid, 1234)
    assert is_executable(os.stat_result((0o100010, 0, 0, 0, 1000, 50, 0, 0, 0, 0)), 2000, 50)
    assert not is_executable(os.stat_result((0o100010, 0, 0, 0, 1000, 50, 0, 0, 0, 0)), 2000, 51)
    assert not is_executable(os.stat_result((0o100100, 0, 0, 0, 1000, 50, 0, 0, 0, 0)), 2000, 50)
    assert check_command([], 0, 0)[1] == "empty command"
    assert check_command([""], 0, 0)[1] == "empty command"
    assert check_command([str(f)], 0, 0) == (str(f), None)
