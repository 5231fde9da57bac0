"""MISC_CHECK: run ``misc_path`` as keepalived 2.2.7 does, and judge its exit status.

* The command is executed directly from its words (no shell: keepalived does not use one either),
  in a new session (its own process group), as ``user`` (else ``script_user``, else
  ``keepalived_script`` if that account exists, else root), stdin from /dev/null.
* Exit 0: success. With ``misc_dynamic``, exit 2..255: success with weight ``status - 2``.
  Anything else, or death by a signal: failure.
* At ``misc_timeout`` (default: the virtual server's ``delay_loop``) the group gets SIGTERM, 2 s
  later SIGKILL; after a SIGTERM'd exit the rest of the group is killed too. A timed-out script
  is a failure (``timeout``). The process is always reaped.
* keepalived discards the script's output. pyvrrpd keeps the first 4 KiB of stdout+stderr for the
  failure log and reads at most 1 MiB: then it closes the pipe, so a script that floods its
  output gets EPIPE/SIGPIPE (``output-flood`` when it then fails).
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess

import anyio

from pyvrrpd.checkers.net import OK, Result
from pyvrrpd.config import model as m

KEEP = 4096
FLOOD = 1024 * 1024
TERM_GRACE = 2.0
KILL_WAIT = 10.0


def script_account(script: m.Script, defaults: m.GlobalDefs | None) -> tuple[str | None, str | None]:
    """(user, group) the script runs as; (None, None) = as ourselves."""
    user, group = script.user, script.group
    if user is None and defaults is not None and defaults.script_user:
        user, group = defaults.script_user, defaults.script_group
    if user is None:
        try:
            pwd.getpwnam("keepalived_script")
            user = "keepalived_script"
        except KeyError:
            user = "root"
    try:
        me = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        me = None
    if user == me and group is None:
        return None, None
    return user, group


class _Output:
    """The script's stdout+stderr, from a pipe of our own (so that closing it really closes it)."""

    def __init__(self) -> None:
        self.kept = bytearray()
        self.total = 0
        self.flooded = False
        self.done = anyio.Event()
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.read_fd, False)

    async def drain(self) -> None:
        try:
            while True:
                await anyio.wait_readable(self.read_fd)
                try:
                    chunk = os.read(self.read_fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                self.total += len(chunk)
                if len(self.kept) < KEEP:
                    self.kept += chunk[: KEEP - len(self.kept)]
                if self.total > FLOOD:
                    self.flooded = True
                    break
        except OSError:
            pass
        finally:
            self.done.set()
            self.close()

    def close(self) -> None:
        for name in ("read_fd", "write_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)

    def text(self) -> str:
        out = self.kept.decode("utf-8", "replace").strip()
        return out.replace("\n", " | ")[:300]


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def run_misc(script: m.Script, timeout: float, *, dynamic: bool = False,
                   account: tuple[str | None, str | None] = (None, None)) -> Result:
    user, group = account
    out = _Output()
    try:
        extra = {}
        if user is not None:
            extra = {"user": user, "group": group or pwd.getpwnam(user).pw_gid, "extra_groups": []}
        process = await anyio.open_process(list(script.argv), stdin=subprocess.DEVNULL, stdout=out.write_fd,
                                           stderr=out.write_fd, start_new_session=True, **extra)
    except (OSError, KeyError, ValueError) as exc:
        out.close()
        return Result(False, "exec-error", f"cannot run {script.argv[0]}: {exc}")
    os.close(out.write_fd)
    out.write_fd = -1
    timed_out = False
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(out.drain)
            with anyio.move_on_after(timeout) as scope:
                await process.wait()
            if scope.cancelled_caught:
                timed_out = True
                _kill_group(process.pid, signal.SIGTERM)
                with anyio.move_on_after(TERM_GRACE):
                    await process.wait()
                if process.returncode is None:
                    _kill_group(process.pid, signal.SIGKILL)
            if process.returncode == -signal.SIGTERM or timed_out:
                _kill_group(process.pid, signal.SIGKILL)  # what the script left behind
            with anyio.move_on_after(0.2):  # the rest of its output, unless a child still holds the pipe
                await out.done.wait()
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                _kill_group(process.pid, signal.SIGKILL)
                with anyio.move_on_after(KILL_WAIT):
                    await process.wait()
            await process.aclose()
        out.close()
    return judge_exit(process.returncode, script, dynamic=dynamic, timed_out=timed_out, output=out)


def judge_exit(code: int | None, script: m.Script, *, dynamic: bool, timed_out: bool = False,
               output: _Output | None = None) -> Result:
    """keepalived's reading of a MISC_CHECK exit status."""
    name = script.argv[0]
    said = f" (output: {output.text()})" if output is not None and output.kept.strip() else ""
    if timed_out:
        return Result(False, "timeout", f"{name} timed out{said}")
    if code is None:
        return Result(False, "timeout", f"{name} did not terminate after SIGKILL")
    if code == 0:
        return OK
    if dynamic and 2 <= code <= 255:
        return Result(True, weight=code - 2)
    if output is not None and output.flooded:
        return Result(False, "output-flood", f"{name} wrote over {FLOOD} bytes and failed ({_status(code)})")
    if code < 0:
        return Result(False, "signal", f"{name} {_status(code)}{said}")
    return Result(False, "exit-status", f"{name} {_status(code)}{said}")


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"died of signal {signal.Signals(-code).name}"
        except ValueError:
            return f"died of signal {-code}"
    return f"exited with status {code}"
