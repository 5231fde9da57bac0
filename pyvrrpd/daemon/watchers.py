"""Kernel sources for the trackers: inotify for track files, /proc and the process-events connector
for tracked processes. Thin and anyio-only (``anyio.wait_readable`` on plain file descriptors), so
the trackers run under trio's MockClock in tests too.

* ``Inotify`` — inotify through libc (ctypes): ``inotify_init1``, ``inotify_add_watch`` and parsed
  ``struct inotify_event`` records.
* ``read_track_file`` — keepalived reads at most 127 bytes, non-blocking; a missing or unreadable
  file reads as b"" (value 0).
* ``scan_processes`` — one pass over /proc: pid, parent, name (``comm``, from /proc/PID/stat) and,
  when asked for, the command line; zombies are skipped, as keepalived skips them.
* ``ProcConnector`` — the kernel's process-events connector (NETLINK_CONNECTOR, CN_IDX_PROC):
  fork, exec, name change and exit of every process, as they happen. It needs CAP_NET_ADMIN and
  exists only in the initial network namespace; anywhere else opening it fails and the trackers
  fall back to scanning /proc once a second.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import anyio

from pyvrrpd.core.tracking import FILE_READ_LIMIT

# inotify(7)
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ISDIR = 0x40000000
IN_MOVE = IN_MOVED_FROM | IN_MOVED_TO
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCH_MASK = IN_CLOSE_WRITE | IN_DELETE | IN_MOVE  # keepalived's mask for a track file's directory
_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len

# connector(4) and linux/cn_proc.h
NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
PROC_CN_MCAST_LISTEN, PROC_CN_MCAST_IGNORE = 1, 2
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_COMM = 0x00000200
PROC_EVENT_EXIT = 0x80000000
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_PROC_EVENT = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
_PIDS2 = struct.Struct("=ii")
_PIDS4 = struct.Struct("=iiii")


@dataclass(frozen=True, slots=True)
class InotifyEvent:
    wd: int
    mask: int
    name: str


class Inotify:
    """An inotify instance. ``Inotify()`` raises OSError when the kernel refuses (limits, no inotify)."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), "inotify_init1")
        self.fd = fd

    def add_watch(self, path: str, mask: int = WATCH_MASK) -> int:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(mask))
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
        return wd

    async def events(self) -> list[InotifyEvent]:
        """The next batch of events (waits for at least one)."""
        while True:
            await anyio.wait_readable(self.fd)
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            return list(parse_inotify(data))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def parse_inotify(data: bytes) -> Iterator[InotifyEvent]:
    """``struct inotify_event`` records; a truncated tail is ignored."""
    offset = 0
    while offset + _EVENT.size <= len(data):
        wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
        if offset + _EVENT.size + length > len(data):
            return
        raw = data[offset + _EVENT.size: offset + _EVENT.size + length]
        offset += _EVENT.size + length
        yield InotifyEvent(wd, mask, os.fsdecode(raw.split(b"\0", 1)[0]))


def read_track_file(path: str) -> bytes:
    """The first 127 bytes of a track file, b"" when it is missing or unreadable (value 0)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.read(fd, FILE_READ_LIMIT)
    except OSError:
        return b""
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True, slots=True)
class ProcInfo:
    pid: int
    ppid: int
    comm: str
    argv: tuple[str, ...] | None  # None when the command line was not read


def read_process(pid: int, *, cmdline: bool, proc: str = "/proc") -> ProcInfo | None:
    """One process, or None if it is gone, a zombie or unreadable."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            stat = f.read(4096)
    except OSError:
        return None
    open_paren, close_paren = stat.find(b"("), stat.rfind(b")")
    if open_paren < 0 or close_paren < open_paren:
        return None
    rest = stat[close_paren + 1:].split()
    if len(rest) < 2 or rest[0] in (b"Z", b"X"):
        return None
    try:
        ppid = int(rest[1])
    except ValueError:
        return None
    comm = stat[open_paren + 1:close_paren].decode("utf-8", "replace")
    argv = None
    if cmdline:
        try:
            with open(f"{proc}/{pid}/cmdline", "rb") as f:
                raw = f.read(65536)
        except OSError:
            return None
        argv = tuple(os.fsdecode(a) for a in raw.split(b"\0")[:-1]) if raw else ()
    return ProcInfo(pid, ppid, comm, argv)


def scan_processes(*, cmdline: bool, proc: str = "/proc") -> dict[int, ProcInfo]:
    """Every running process (zombies skipped) in one pass over /proc."""
    out: dict[int, ProcInfo] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return out
    for name in names:
        if not name.isdigit() or name[0] == "0":
            continue
        info = read_process(int(name), cmdline=cmdline, proc=proc)
        if info is not None:
            out[info.pid] = info
    return out


@dataclass(frozen=True, slots=True)
class ProcEvent:
    kind: str  # "fork", "exec", "comm", "exit"
    pid: int  # the process (for fork: the child)
    parent: int = 0  # for fork: the parent


class ProcConnector:
    """The process-events connector. ``open()`` raises OSError where it is unavailable; ``events()``
    raises OSError(ENOBUFS) when the kernel dropped events (rescan /proc then)."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None

    def open(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                             NETLINK_CONNECTOR)
        try:
            sock.bind((0, CN_IDX_PROC))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.send(self._listen(PROC_CN_MCAST_LISTEN))
        except OSError:
            sock.close()
            raise
        self.sock = sock

    @staticmethod
    def _listen(op: int) -> bytes:
        body = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0) + struct.pack("=I", op)
        return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), NLMSG_DONE, 0, 0, 0) + body

    async def events(self) -> list[ProcEvent]:
        """The next batch of fork/exec/comm/exit events of processes (threads are left out)."""
        assert self.sock is not None
        while True:
            await anyio.wait_readable(self.sock)
            try:
                data, (nl_pid, _groups) = self.sock.recvfrom(65536)
            except BlockingIOError:
                continue
            if nl_pid != 0:
                continue  # not from the kernel
            events = list(parse_proc_events(data))
            if events:
                return events

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.send(self._listen(PROC_CN_MCAST_IGNORE))
            except OSError:
                pass
            self.sock.close()
            self.sock = None


def parse_proc_events(data: bytes) -> Iterator[ProcEvent]:
    """Process events in a netlink datagram; malformed or foreign messages are skipped."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return
        msg = data[offset + _NLMSGHDR.size: offset + length]
        offset += (length + 3) & ~3
        if kind in (NLMSG_NOOP, NLMSG_ERROR) or len(msg) < _CN_MSG.size + _PROC_EVENT.size:
            continue
        idx, val, _seq, ack, _len, _fl = _CN_MSG.unpack_from(msg)
        if idx != CN_IDX_PROC or val != CN_VAL_PROC or ack:
            continue
        what, _cpu, _ts = _PROC_EVENT.unpack_from(msg, _CN_MSG.size)
        body = msg[_CN_MSG.size + _PROC_EVENT.size:]
        if what == PROC_EVENT_FORK and len(body) >= _PIDS4.size:
            _ppid, parent_tgid, child_pid, child_tgid = _PIDS4.unpack_from(body)
            if child_pid == child_tgid:  # a new process, not a thread
                yield ProcEvent("fork", child_tgid, parent_tgid)
        elif what in (PROC_EVENT_EXEC, PROC_EVENT_COMM, PROC_EVENT_EXIT) and len(body) >= _PIDS2.size:
            pid, tgid = _PIDS2.unpack_from(body)
            if pid == tgid:
                yield ProcEvent({PROC_EVENT_EXEC: "exec", PROC_EVENT_COMM: "comm", PROC_EVENT_EXIT: "exit"}[what], tgid)


def connector_unavailable(exc: OSError) -> bool:
    """Whether an OSError from ProcConnector.open() means "not here" (another network namespace,
    no CONFIG_PROC_EVENTS, no CAP_NET_ADMIN) rather than a passing failure."""
    return exc.errno in (errno.EPROTONOSUPPORT, errno.EPERM, errno.EACCES, errno.ECONNREFUSED, errno.ENOENT)
