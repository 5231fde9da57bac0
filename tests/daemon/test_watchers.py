"""daemon.watchers: parsers fed garbage, /proc reading on a fake tree, the real connector and inotify."""

from __future__ import annotations

import os
import struct
import subprocess

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvrrpd.daemon import watchers
from pyvrrpd.daemon.watchers import (
    CN_IDX_PROC,
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    Inotify,
    ProcConnector,
    ProcEvent,
    parse_inotify,
    parse_proc_events,
    read_process,
    read_track_file,
    scan_processes,
)


def proc_msg(what: int, body: bytes, idx: int = CN_IDX_PROC, ack: int = 0) -> bytes:
    payload = struct.pack("=IIIIHH", idx, 1, 0, ack, 16 + len(body), 0) + struct.pack("=IIQ", what, 0, 0) + body
    return struct.pack("=IHHII", 16 + len(payload), 3, 0, 0, 0) + payload


def test_parse_proc_events():
    data = (proc_msg(PROC_EVENT_FORK, struct.pack("=iiii", 1, 1, 200, 200))
            + proc_msg(PROC_EVENT_FORK, struct.pack("=iiii", 1, 1, 201, 200))  # a thread: skipped
            + proc_msg(PROC_EVENT_EXEC, struct.pack("=ii", 200, 200))
            + proc_msg(PROC_EVENT_EXIT, struct.pack("=iiII", 200, 200, 0, 17))
            + proc_msg(PROC_EVENT_EXIT, struct.pack("=iiII", 7, 200, 0, 17))  # a thread's exit: skipped
            + proc_msg(PROC_EVENT_EXEC, struct.pack("=ii", 5, 5), idx=99)  # another connector: skipped
            + proc_msg(PROC_EVENT_EXEC, struct.pack("=ii", 5, 5), ack=1)
            + proc_msg(PROC_EVENT_EXEC, b"\x01"))  # too short: skipped
    assert list(parse_proc_events(data)) == [ProcEvent("fork", 200, 1), ProcEvent("exec", 200), ProcEvent("exit", 200)]


@given(st.binary(max_size=400))
def test_parse_proc_events_never_raises(data):
    list(parse_proc_events(data))


def test_parse_inotify_with_a_truncated_tail():
    one = struct.pack("=iIII", 1, watchers.IN_CLOSE_WRITE, 0, 16) + b"file\0".ljust(16, b"\0")
    events = list(parse_inotify(one + one[:20]))
    assert [(e.wd, e.mask, e.name) for e in events] == [(1, watchers.IN_CLOSE_WRITE, "file")]


@given(st.binary(max_size=200))
def test_parse_inotify_never_raises(data):
    list(parse_inotify(data))


def test_read_process_on_a_fake_proc(tmp_path):
    def proc(pid, stat, cmdline=b""):
        d = tmp_path / str(pid)
        d.mkdir()
        (d / "stat").write_bytes(stat)
        (d / "cmdline").write_bytes(cmdline)

    proc(10, b"10 (nginx: a) b) S 1 10 10 0", b"nginx: master\0-g\0")  # ')' inside the name
    proc(11, b"11 (dead) Z 1 11 11 0")  # zombie
    proc(12, b"garbage")
    proc(13, b"13 (x) S notanumber")
    proc(14, b"14 (kthread) S 2 0 0 0")  # kernel thread: empty cmdline
    (tmp_path / "self").mkdir()
    info = read_process(10, cmdline=True, proc=str(tmp_path))
    assert info == watchers.ProcInfo(10, 1, "nginx: a) b", ("nginx: master", "-g"))
    assert read_process(11, cmdline=False, proc=str(tmp_path)) is None
    assert read_process(99, cmdline=False, proc=str(tmp_path)) is None
    assert set(scan_processes(cmdline=True, proc=str(tmp_path))) == {10, 14}
    assert scan_processes(cmdline=True, proc=str(tmp_path))[14].argv == ()
    assert scan_processes(cmdline=False, proc=str(tmp_path / "missing")) == {}


def test_read_track_file(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"7" * 500)
    assert read_track_file(str(f)) == b"7" * 127
    assert read_track_file(str(tmp_path / "missing")) == b""
    assert read_track_file(str(tmp_path)) == b""  # a directory


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_inotify_reports_a_write_and_a_delete(tmp_path):
    notify = Inotify()
    try:
        wd = notify.add_watch(str(tmp_path))
        (tmp_path / "f").write_text("1\n")
        (tmp_path / "f").unlink()
        seen = []
        with anyio.fail_after(5):
            while not any(e.mask & watchers.IN_DELETE for e in seen):
                seen += await notify.events()
        assert {e.wd for e in seen} == {wd} and {e.name for e in seen} == {"f"}
        assert any(e.mask & watchers.IN_CLOSE_WRITE for e in seen)
        with pytest.raises(OSError):
            notify.add_watch(str(tmp_path / "missing"))
    finally:
        notify.close()


@pytest.mark.anyio
async def test_connector_sees_fork_exec_exit():
    connector = ProcConnector()
    connector.open()  # the test machine runs tests in the initial network namespace
    try:
        proc = subprocess.Popen(["/bin/true"])
        proc.wait()
        seen: list[ProcEvent] = []
        with anyio.fail_after(5):
            while not any(e.kind == "exit" and e.pid == proc.pid for e in seen):
                seen += await connector.events()
        kinds = [e.kind for e in seen if e.pid == proc.pid]
        assert kinds[:1] == ["fork"] and "exec" in kinds and kinds[-1] == "exit"
        assert next(e for e in seen if e.pid == proc.pid).parent == os.getpid()
    finally:
        connector.close()
