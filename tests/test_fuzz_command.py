"""bench/fuzz.py, the coverage-guided fuzzer (atheris): each target runs a few hundred inputs cleanly, a
planted crash exits non-zero with the input saved, and --replay runs a saved input again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "bench" / "fuzz.py"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FUZZ), "--artifacts", str(tmp_path / "art"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("target", ["packet", "config", "control", "checkers"])
def test_each_target_runs_clean(tmp_path: Path, target: str) -> None:
    result = run(tmp_path, "--target", target, "--runs", "300", "--seed", "7")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"fuzz: target={target} inputs=300 ") and "exit=0" in summary
    assert not (tmp_path / "art").exists() or not list((tmp_path / "art").iterdir())


def test_a_crash_exits_non_zero_with_the_input_saved_and_replays(tmp_path: Path) -> None:
    result = run(tmp_path, "--target", "selftest", "--runs", "100")
    assert result.returncode == 1 and "planted crash" in result.stdout + result.stderr
    [crash] = (tmp_path / "art").iterdir()
    assert crash.name.startswith("crash-") and crash.read_bytes().startswith(b"FUZZ")
    replay = run(tmp_path, "--target", "selftest", "--replay", str(crash))
    assert replay.returncode == 1 and "RuntimeError: planted crash" in replay.stderr
    seed = tmp_path / "ok"
    seed.write_bytes(b"GET /status HTTP/1.1\r\n\r\n")
    assert run(tmp_path, "--target", "control", "--replay", str(seed)).returncode == 0
