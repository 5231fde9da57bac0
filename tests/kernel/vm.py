"""Run a command in a throw-away VM with a real IPVS kernel (test-environment.md §7).

virtme-ng boots the newest Debian kernel under /boot with QEMU in TCG mode (``--disable-kvm``:
nested KVM hangs here) and the host's root filesystem over 9p, read-only, so the worktree and its
venv are visible inside. Only ``out`` (a ``--rwdir``) writes back to the host. qemu's console is
read through a pipe, never a regular file (qemu truncates it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"


class VmError(RuntimeError):
    pass


def kernel() -> Path:
    """The newest /boot/vmlinuz-* whose modules are installed (the version is never hard-coded)."""
    def version(p: Path) -> list:
        return [int(x) if x.isdigit() else x for x in re.split(r"[.-]", p.name.removeprefix("vmlinuz-"))]

    found = [p for p in Path("/boot").glob("vmlinuz-*")
             if (Path("/lib/modules") / p.name.removeprefix("vmlinuz-")).is_dir()]
    if not found:
        raise VmError("no /boot/vmlinuz-* with modules under /lib/modules: run ./scripts/setup (linux-image-amd64)")
    return max(found, key=lambda p: [str(x) for x in version(p)])


def vng() -> Path:
    path = VENV_BIN / "vng"
    if not path.exists():
        raise VmError(f"{path} is missing: run ./scripts/setup (virtme-ng)")
    for tool in ("qemu-system-x86_64", "busybox", "ipvsadm"):
        if shutil.which(tool) is None and not Path("/usr/bin", tool).exists() and not Path("/bin", tool).exists():
            raise VmError(f"{tool} is missing: run ./scripts/setup")
    return path


def precompile() -> None:
    """Write the project's bytecode on the host: the guest sees the worktree read-only, so without it
    every Python start in the VM compiles pyvrrpd from source again (tens of seconds under TCG)."""
    subprocess.run([str(VENV_BIN / "python"), "-m", "compileall", "-q", "-j", "0", str(ROOT / "pyvrrpd"),
                    str(ROOT / "tests"), str(ROOT / "scripts")], stdout=subprocess.DEVNULL, timeout=300)


def run_in_vm(script: str, out: Path, *, timeout: float = 480, memory: str = "2G",
              echo: TextIO | None = None) -> subprocess.CompletedProcess:
    """Boot the VM, run ``script`` (shell text) as root in it, return qemu's console output.

    ``out`` is shared read-write with the guest (its path is the same inside); the script is written
    there. The guest cannot reach any network: it has only ``lo``. ``echo``: also copy the console to
    this stream line by line as it comes (the demo shows the guest's output live).
    """
    out.mkdir(parents=True, exist_ok=True)
    precompile()
    path = out / "guest.sh"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}")
    cmd = ["timeout", "--foreground", "-k", "10", str(int(timeout)), str(vng()), "--run", str(kernel()),
           "--force-9p", "--disable-kvm", "--user", "root", "--memory", memory, "--cpus", "2",
           "--rwdir", str(out), "--cwd", str(ROOT), "--exec", str(path)]
    if echo is None:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=env, text=True, errors="replace", timeout=timeout + 30)
    else:  # `timeout` above bounds the run; the pipe ends when qemu does
        lines = []
        with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=env, text=True, errors="replace") as popen:
            for line in popen.stdout:
                lines.append(line)
                echo.write(line)
                echo.flush()
        proc = subprocess.CompletedProcess(cmd, popen.returncode, "".join(lines))
    (out / "console.log").write_text(proc.stdout)
    return proc


if __name__ == "__main__":  # python tests/kernel/vm.py 'ipvsadm -Ln'
    result = run_in_vm(" ".join(sys.argv[1:]) or "uname -a", Path("/tmp") / f"pyvrrpd-vm-{os.getpid()}")
    sys.stdout.write(result.stdout)
    sys.exit(result.returncode)
