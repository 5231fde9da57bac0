"""Kernel tests: every test in tests/kernel/guest runs inside ONE VM with a real IPVS kernel.

The VM boots once per test run (module fixture); inside it one pytest process runs all guest tests
(a Python start costs seconds under TCG) and writes a JUnit file back; each guest test is reported
here as a test of its own. Needs root, qemu, a Debian kernel, busybox-static, ipvsadm, keepalived
and virtme-ng, which ./scripts/setup installs: a missing piece is a failure, never a skip.
"""

from __future__ import annotations

import ast
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.kernel.vm import ROOT, run_in_vm

GUEST = Path(__file__).parent / "guest"
VM_TIMEOUT = 1100  # the whole VM run took 449-531 s at load average 14 (7 sessions on 2 cores); with the
# LVS chaos schedule (guest_lvs_chaos.py, 76 s of it) 840 s at load average 14 beside another VM
pytestmark = pytest.mark.timeout(VM_TIMEOUT + 120)  # the VM boots in the first test's set-up


def guest_tests() -> list[str]:
    """'file::function' of every test function in tests/kernel/guest/guest_*.py (read, not imported)."""
    names = []
    for path in sorted(GUEST.glob("guest_*.py")):
        tree = ast.parse(path.read_text())
        names += [f"{path.stem}::{n.name}" for n in tree.body
                  if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")]
    return names


GUEST_SCRIPT = """
set -u
# the guest sees the worktree read-only: run_in_vm() compiles the project's byte code on the host first
# (tests/kernel/vm.py precompile), so every Python the tests start finds it compiled (about 20 s less per
# start under TCG); the standard library's and the venv's byte code come from their installation
export PYVRRPD_KERNEL_OUT={out}
modprobe ip_vs
start=$(cut -d' ' -f1 /proc/uptime)
echo "guest: booted at ${{start}} s uptime"
{python} -m pytest -q -p no:cacheprovider -o python_files='guest_*.py' -o addopts='' \
    --junitxml={out}/junit.xml {guest} > {out}/pytest.log 2>&1
echo $? > {out}/rc
echo "guest: done at $(cut -d' ' -f1 /proc/uptime) s uptime"
"""


@pytest.fixture(scope="module")
def vm_results(tmp_path_factory) -> dict[str, tuple[str, str]]:
    assert os.geteuid() == 0, "the kernel tests need root (qemu, namespaces inside the VM)"
    out = tmp_path_factory.mktemp("vm")
    script = GUEST_SCRIPT.format(out=out, python=ROOT / ".venv" / "bin" / "python", guest=GUEST)
    t0 = time.monotonic()
    proc = run_in_vm(script, out, timeout=VM_TIMEOUT)
    elapsed = time.monotonic() - t0
    log = (out / "pytest.log").read_text() if (out / "pytest.log").exists() else ""
    print(f"\nkernel VM: {elapsed:.1f} s wall time; guest pytest says: {log.strip().splitlines()[-1:]}")
    junit = out / "junit.xml"
    if not junit.exists():
        pytest.fail(f"the VM run produced no JUnit file (rc {proc.returncode}); console:\n{proc.stdout[-4000:]}\n"
                    f"pytest log:\n{log[-4000:]}")
    results: dict[str, tuple[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = case.get("name", "").split("[", 1)[0]
        outcome, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, text = "failed", (child.get("message") or "") + "\n" + (child.text or "")
            elif child.tag == "skipped":
                outcome, text = "skipped", child.get("message") or ""
        key = f"{module}::{name}"
        if results.get(key, ("passed",))[0] == "passed":  # a parametrized test fails if any case fails
            results[key] = (outcome, text)
    return results


@pytest.mark.parametrize("name", guest_tests())
def test_in_vm(vm_results, name):
    assert name in vm_results, f"{name} did not run in the VM (collection error?)"
    outcome, text = vm_results[name]
    assert outcome == "passed", f"{name} {outcome} in the VM:\n{text[-6000:]}"
