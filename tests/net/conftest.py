"""Fixtures for the kernel-adapter tests: a two-node namespace lab and a runner for nsagent.py in it.

Tests marked `net` need root and `ip netns`; without them they are skipped with the reason (a user's
unprivileged run; with CI=true, ./scripts/test fails on such a skip). The pure tests in this folder
(spec parsers, error formatting, the advert parser) run everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.net.lab import Lab, LabError, wait_for

HERE = Path(__file__).parent
AGENT = HERE / "nsagent.py"


def _lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    try:
        subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns` is unavailable: {exc}"
    return None


def pytest_collection_modifyitems(config, items) -> None:
    reason = _lab_unavailable()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("net") and HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=f"namespace lab: {reason}"))


@pytest.fixture
def lab(tmp_path):
    """Two nodes, d1 (198.51.100.11) and d2 (198.51.100.12), on one bridge; always torn down."""
    with Lab({"d1": 11, "d2": 12}, workdir=tmp_path) as lab:
        yield lab


class Agent:
    """Runs nsagent.py commands in lab nodes and parses their JSON-lines output."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._count = 0

    def run(self, node: str, *args: str, timeout: float = 15) -> list[dict]:
        result = self.lab.python(node, AGENT, *args, timeout=timeout, check=False)
        if result.returncode != 0:
            raise LabError(f"nsagent {' '.join(args)} in {node} exited {result.returncode}:\n"
                           f"{result.stdout}{result.stderr}")
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def start(self, node: str, *args: str) -> Listener:
        """Start a long-running command (a listener) and wait until it reports ready."""
        self._count += 1
        log = self.lab.workdir / f"agent-{node}-{self._count}.log"
        proc = self.lab.spawn(node, [sys.executable, str(AGENT), *args], log)
        listener = Listener(proc, log)
        wait_for(lambda: listener.lines() and listener.lines()[0].get("ready") or proc.poll() is not None,
                 timeout=10, what=f"nsagent {args[0]} in {node} to be ready")
        if proc.poll() is not None and not listener.lines():
            raise LabError(f"nsagent {' '.join(args)} in {node} died:\n{log.read_text()}")
        return listener


class Listener:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc = proc
        self.log = log

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def finish(self, timeout: float = 10) -> list[dict]:
        """Wait for the command's own bounded timeout or completion; return its output after 'ready'."""
        self.proc.wait(timeout=timeout)
        if self.proc.returncode != 0:
            raise LabError(f"listener exited {self.proc.returncode}:\n{self.log.read_text()}")
        return [line for line in self.lines()[1:] if "done" not in line]


@pytest.fixture
def agent(lab):
    return Agent(lab)
