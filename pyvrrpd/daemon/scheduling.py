"""The process scheduling keepalived's ``*_priority``, ``*_rt_priority``, ``*_no_swap`` and ``*_cpu_affinity`` ask for.

keepalived runs VRRP and the checkers in two child processes, each with its own keywords. pyvrrpd is one
process, so one set applies to it: the ``vrrp_*`` keywords when VRRP runs (the default, and ``-P``), the
``checker_*`` keywords when only the checkers run (``-C``). Adverts are what must not be late, so a process
that sends them is scheduled as VRRP asks.

* ``*_rt_priority N`` (1-99): SCHED_RR at priority N, for every thread of the process (the threads that
  exist now, and, by inheritance, those started later: anyio's worker threads, pyroute2's). As in
  keepalived, a real-time priority wins over a nice value: ``*_priority`` is then not applied.
* ``*_priority N`` (-20..19): the nice value of the process (setpriority(PRIO_PROCESS)).
* ``*_no_swap``: mlockall(MCL_CURRENT | MCL_FUTURE), so no page of the daemon waits on swap.
* ``*_cpu_affinity CPUS``: sched_setaffinity of every thread.

Applied once, before the event loop starts. Whatever the kernel refuses (EPERM without CAP_SYS_NICE, no
real-time budget in a cgroup, RLIMIT_MEMLOCK, a CPU that does not exist) is one warning naming the keyword
and the errno, never fatal: the daemon runs on with the scheduling it has. The decisions are pure
(:func:`plan`); :func:`apply` performs them through a small :class:`Syscalls` seam the tests fake.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyvrrpd.config import model

MCL_CURRENT, MCL_FUTURE = 1, 2


@dataclass(frozen=True)
class Policy:
    """What to ask of the kernel; `source` is the keyword prefix it came from ("vrrp" or "checker")."""

    source: str
    rt_priority: int | None = None
    nice: int | None = None
    no_swap: bool = False
    cpus: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return self.rt_priority is None and self.nice is None and not self.no_swap and not self.cpus


def plan(gd: model.GlobalDefs, *, vrrp_runs: bool) -> Policy:
    """The policy for this process: the vrrp_* keywords when VRRP runs in it, else the checker_* ones."""
    source = "vrrp" if vrrp_runs else "checker"
    rt = getattr(gd, f"{source}_rt_priority")
    return Policy(source=source, rt_priority=rt, nice=None if rt is not None else getattr(gd, f"{source}_priority"),
                  no_swap=getattr(gd, f"{source}_no_swap"), cpus=tuple(getattr(gd, f"{source}_cpu_affinity")))


def _mlockall(flags: int) -> None:
    # The C library the interpreter runs on, by its own symbols: ctypes.util.find_library() would
    # import shutil, tempfile, lzma, bz2... into every daemon (+1.0 MB RSS) and run ldconfig.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _threads() -> list[int]:
    """The thread ids of this process (its main thread's id is the pid)."""
    try:
        return sorted(int(t) for t in os.listdir("/proc/self/task"))
    except OSError:
        return [0]


@dataclass
class Syscalls:
    """The kernel calls :func:`apply` makes; replaced by fakes in the tests."""

    threads: Callable[[], list[int]] = _threads
    sched_setscheduler: Callable[[int, int, os.sched_param], None] = os.sched_setscheduler
    setpriority: Callable[[int, int, int], None] = os.setpriority
    sched_setaffinity: Callable[[int, Sequence[int]], None] = os.sched_setaffinity
    mlockall: Callable[[int], None] = _mlockall


def _why(exc: OSError) -> str:
    name = _errno.errorcode.get(exc.errno or 0, "error")
    hint = {_errno.EPERM: "needs root or CAP_SYS_NICE (CAP_IPC_LOCK for no_swap) and, for SCHED_RR, a real-time "
                          "budget (a cgroup's cpu.rt_runtime_us, or RLIMIT_RTPRIO)",
            _errno.ENOMEM: "RLIMIT_MEMLOCK is too low",
            _errno.EINVAL: "a value the kernel does not accept (a CPU that does not exist?)"}.get(exc.errno or 0)
    return f"{name}: {exc.strerror or exc}" + (f" ({hint})" if hint else "")


def apply(policy: Policy, log, sys: Syscalls | None = None) -> dict:
    """Ask the kernel for `policy`; a refusal is a warning. Returns what was applied, by keyword, and the
    failures, for the log and /status."""
    sys = sys or Syscalls()
    applied: dict = {"source": policy.source}
    failed: dict = {}
    if policy.empty:
        return applied

    def each_thread(kw: str, call: Callable[[int], None]) -> None:
        for tid in sys.threads():
            try:
                call(tid)
            except ProcessLookupError:  # the thread ended meanwhile
                continue
            except OSError as exc:
                failed[kw] = _why(exc)
                log.warning(f"{policy.source}_{kw}: not applied: {_why(exc)}; running with the default scheduling",
                            keyword=f"{policy.source}_{kw}", errno=exc.errno)
                return
        applied[kw] = True

    if policy.cpus:
        each_thread("cpu_affinity", lambda tid: sys.sched_setaffinity(tid, policy.cpus))
        if applied.get("cpu_affinity"):
            applied["cpu_affinity"] = list(policy.cpus)
    if policy.rt_priority is not None:
        param = os.sched_param(policy.rt_priority)
        each_thread("rt_priority", lambda tid: sys.sched_setscheduler(tid, os.SCHED_RR, param))
        if applied.get("rt_priority"):
            applied["rt_priority"] = policy.rt_priority
    elif policy.nice is not None:
        try:
            sys.setpriority(os.PRIO_PROCESS, 0, policy.nice)
            applied["priority"] = policy.nice
        except OSError as exc:
            failed["priority"] = _why(exc)
            log.warning(f"{policy.source}_priority: not applied: {_why(exc)}", keyword=f"{policy.source}_priority",
                        errno=exc.errno)
    if policy.no_swap:
        try:
            sys.mlockall(MCL_CURRENT | MCL_FUTURE)
            applied["no_swap"] = True
        except OSError as exc:
            failed["no_swap"] = _why(exc)
            log.warning(f"{policy.source}_no_swap: not applied: {_why(exc)}", keyword=f"{policy.source}_no_swap",
                        errno=exc.errno)
    if failed:
        applied["failed"] = failed
    log.info("Process scheduling", **{k: v for k, v in applied.items() if k != "failed"})
    return applied
