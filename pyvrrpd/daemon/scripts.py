"""Running keepalived's scripts: vrrp_script checks, notify scripts and FIFO readers.

One call, ``ScriptRunner.run(argv, timeout=...)``, runs one command the way keepalived does and
always comes back with an ``Outcome`` — never an exception for a bad script:

* **no shell**: the argv the config builder made is exec'd directly (keepalived 2.2.7 execs the
  words of ``script "..."`` too); a name without ``/`` is looked up in ``$PATH``;
* **as the script user**: ``user``/``group`` (the group defaults to the user's own group, and the
  supplementary groups are cleared, as keepalived does); None runs as the daemon's own user;
* **in its own process group** (a new session), so a timeout reaches the script's children too;
* **killed at its timeout** like keepalived: SIGTERM to the process group, SIGKILL 2 s later if it
  is still there, and after a SIGTERM'd script dies its whole group gets SIGKILL. A script that dies
  of the signal we sent it has *timed out*; one that handles SIGTERM and exits counts by its exit
  status, as in keepalived;
* **always reaped**, also when the caller is cancelled (daemon stop): SIGTERM, 1 s, SIGKILL;
* **output drained and capped**: stdout and stderr go to one pipe that is read continuously; the last
  ``output_cap`` bytes are kept for the log, the rest is counted and dropped, so a script printing
  megabytes costs one log line, not memory (keepalived sends script output to /dev/null);
* a missing, non-executable or unrunnable command is an ``Outcome`` with ``error`` set and a counter,
  checked before forking and again if exec fails. keepalived's child exits 0 when exec fails (the
  check "succeeds"); pyvrrpd counts it as a failure — the safe reading of a check that cannot run.

keepalived also sets PR_SET_PDEATHSIG on its script children; anyio cannot, so pyvrrpd relies on
the shielded kill-and-reap above when it stops (a ``kill -9`` of the daemon leaves running scripts
to finish on their own).
"""

from __future__ import annotations

import math
import os
import grp
import pwd
import shutil
import signal
import stat
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

OUTPUT_CAP = 4096  # bytes of a script's output kept for the log (the tail)
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL at a timeout (keepalived: 2 s)
STOP_GRACE = 1.0  # seconds between SIGTERM and SIGKILL when the caller is cancelled (keepalived: 1 s)
REAP_LIMIT = 10.0  # seconds to wait for a SIGKILLed script to go (keepalived: 10 s, then it gives up)
DRAIN_GRACE = 0.2  # seconds a child of an exited script may keep its output pipe open


DEFAULT_SCRIPT_USER = "keepalived_script"  # keepalived's default script user, when it exists


@dataclass(frozen=True, slots=True)
class Command:
    """A command to run and the account to run it as (None: the daemon's own)."""

    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None

    def with_args(self, *args: str) -> Command:
        return Command(self.argv + args, self.user, self.group)


def command_from_config(script, global_defs) -> Command:
    """The Command for a config ``Script``: its own user and group, else ``script_user`` [group]
    from global_defs, else ``keepalived_script`` if that user exists, else the daemon's user."""
    if script.user is not None:
        return Command(tuple(script.argv), script.user, script.group)
    if global_defs.script_user is not None:
        return Command(tuple(script.argv), global_defs.script_user, global_defs.script_group)
    try:
        pwd.getpwnam(DEFAULT_SCRIPT_USER)
    except KeyError:
        return Command(tuple(script.argv))
    return Command(tuple(script.argv), DEFAULT_SCRIPT_USER)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run ended. Exactly one of: ``error`` (it could not run), ``timed_out``, ``signal``
    (it died of a signal we did not send), ``status`` (its exit status)."""

    argv: tuple[str, ...]
    status: int | None = None
    signal: int | None = None
    timed_out: bool = False
    error: str | None = None
    output: bytes = b""  # the last OUTPUT_CAP bytes of stdout + stderr
    output_dropped: int = 0  # bytes of output beyond the cap
    duration: float = 0.0
    pid: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 0 and not self.timed_out and self.error is None

    @property
    def result(self) -> str:
        """keepalived's word for the result: ``succeeded``, ``failed`` or ``timed_out``."""
        return "succeeded" if self.ok else "timed_out" if self.timed_out else "failed"

    @property
    def reason(self) -> str | None:
        """keepalived's parenthesised detail of a failure, e.g. ``exited with status 1``."""
        if self.error is not None:
            return f"cannot run: {self.error}"
        if self.signal is not None:
            return f"due to signal {self.signal}"
        if self.status:
            return f"exited with status {self.status}"
        return None

    def describe(self) -> str:
        """``succeeded``, ``timed_out``, ``failed (exited with status 1)``, ``failed (due to signal 9)``."""
        reason = self.reason
        return f"{self.result} ({reason})" if reason and not self.timed_out else self.result

    def output_text(self, limit: int = 200) -> str:
        """The end of the output as one line for a log field."""
        text = self.output.decode("utf-8", "replace").strip().replace("\n", " | ")
        return text[-limit:]


def is_executable(st: os.stat_result, uid: int, gid: int) -> bool:
    """Whether ``uid``/``gid`` may execute the file (root: any x bit), as keepalived checks it."""
    if uid == 0:
        return bool(st.st_mode & 0o111)
    if uid == st.st_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if gid == st.st_gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def resolve_account(user: str | None, group: str | None) -> tuple[int, int] | str:
    """(uid, gid) to run as — the daemon's own when ``user`` is None, the user's group when
    ``group`` is None — or why not (an unknown user or group)."""
    if user is None:
        uid, gid = os.geteuid(), os.getegid()
    else:
        try:
            entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
        except (KeyError, OverflowError):
            return f"unknown user {user}"
        uid, gid = entry.pw_uid, entry.pw_gid
    if group is not None:
        try:
            gid = (grp.getgrnam(group) if not group.isdigit() else grp.getgrgid(int(group))).gr_gid
        except (KeyError, OverflowError):
            return f"unknown group {group}"
    return uid, gid


def check_command(argv: Sequence[str], uid: int, gid: int) -> tuple[str, str | None]:
    """(the path to exec, why it cannot run or None). A name without ``/`` is looked up in ``$PATH``."""
    if not argv or not argv[0]:
        return "", "empty command"
    path = argv[0]
    if "/" not in path:
        found = shutil.which(path)
        if found is None:
            return path, f"{path}: not found in PATH"
        path = found
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return path, f"{path}: no such file"
    except OSError as exc:
        return path, f"{path}: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return path, f"{path}: not a regular file"
    if not is_executable(st, uid, gid):
        return path, f"{path}: not executable for uid:gid {uid}:{gid}"
    return path, None


class ScriptRunner:
    """Runs scripts (see the module docstring) and counts what happened.

    ``counters``: runs, succeeded, failed, timed_out, signalled (died of a signal we did not send),
    cannot_run (missing, not executable, exec failed, unknown user), output_truncated.
    """

    def __init__(self, *, output_cap: int = OUTPUT_CAP, kill_grace: float = KILL_GRACE,
                 stop_grace: float = STOP_GRACE) -> None:
        self.output_cap = output_cap
        self.kill_grace = kill_grace
        self.stop_grace = stop_grace
        self.counters: Counter[str] = Counter()
        self.running: dict[int, tuple[str, ...]] = {}  # pid -> argv, for the snapshot

    async def run_command(self, command: Command, *, timeout: float | None) -> Outcome:
        return await self.run(command.argv, timeout=timeout, user=command.user, group=command.group)

    async def run(self, argv: Sequence[str], *, timeout: float | None, user: str | None = None,
                  group: str | None = None) -> Outcome:
        """Run ``argv`` to completion (or ``timeout`` seconds, None: no limit) and report how it ended."""
        argv = tuple(argv)
        self.counters["runs"] += 1
        account = resolve_account(user, group)
        if isinstance(account, str):
            return self._cannot_run(argv, account)
        uid, gid = account
        path, problem = check_command(argv, uid, gid)
        if problem is not None:
            return self._cannot_run(argv, problem)
        ids: dict = {}
        if user is not None or group is not None:
            ids = {"user": uid, "group": gid, "extra_groups": []}
        start = anyio.current_time()
        try:
            proc = await anyio.open_process(
                (path, *argv[1:]), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, **ids)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return self._cannot_run(argv, f"{path}: {detail}")
        self.running[proc.pid] = argv
        tail = bytearray()
        dropped = 0
        signalled = False
        drained = anyio.Event()

        async def drain() -> None:
            nonlocal dropped
            try:
                async for chunk in proc.stdout:
                    tail.extend(chunk)
                    if len(tail) > self.output_cap:
                        excess = len(tail) - self.output_cap
                        dropped += excess
                        del tail[:excess]
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            finally:
                drained.set()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                with anyio.move_on_after(math.inf if timeout is None else timeout) as waited:
                    await proc.wait()
                if waited.cancelled_caught:
                    signalled = True
                    await self._terminate(proc, self.kill_grace)
                with anyio.move_on_after(DRAIN_GRACE):
                    await drained.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if proc.returncode is None:  # cancelled: the daemon is stopping
                    await self._terminate(proc, self.stop_grace)
                if signalled or proc.returncode is None:
                    _killpg(proc.pid, signal.SIGKILL)  # the children of a script we had to stop
                self.running.pop(proc.pid, None)
                if proc.returncode is not None:
                    await proc.aclose()
        rc = proc.returncode
        outcome = Outcome(
            argv, pid=proc.pid, output=bytes(tail), output_dropped=dropped, duration=anyio.current_time() - start,
            timed_out=signalled and rc is not None and rc < 0,
            status=rc if rc is not None and rc >= 0 else None,
            signal=-rc if rc is not None and rc < 0 and not signalled else None,
            error=None if rc is not None else "did not terminate after SIGKILL",
        )
        self._count(outcome)
        return outcome

    async def _terminate(self, proc, grace: float) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` s, wait (bounded) for the process."""
        _killpg(proc.pid, signal.SIGTERM)
        with anyio.move_on_after(grace):
            await proc.wait()
        if proc.returncode is None:
            _killpg(proc.pid, signal.SIGKILL)
            with anyio.move_on_after(REAP_LIMIT):
                await proc.wait()

    def _cannot_run(self, argv: tuple[str, ...], why: str) -> Outcome:
        outcome = Outcome(argv, error=why)
        self._count(outcome)
        return outcome

    def _count(self, outcome: Outcome) -> None:
        if outcome.error is not None:
            self.counters["cannot_run"] += 1
        elif outcome.ok:
            self.counters["succeeded"] += 1
        elif outcome.timed_out:
            self.counters["timed_out"] += 1
        elif outcome.signal is not None:
            self.counters["signalled"] += 1
        else:
            self.counters["failed"] += 1
        if outcome.output_dropped:
            self.counters["output_truncated"] += 1

    def snapshot(self) -> dict:
        return {"counters": dict(self.counters), "running": [list(a) for a in self.running.values()]}


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
