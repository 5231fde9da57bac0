"""The CI skip policy (tests/ci_skips.py) on a small suite of its own, run by pytest in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ci_skips

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = '''
import pytest

def test_passes():
    pass

@pytest.mark.skip(reason="root can read anything")
def test_allowed():
    pass

@pytest.mark.skip(reason="keepalived is not installed")
def test_refused():
    pass

@pytest.mark.skip(reason="FRR is not installed")
def test_allowed_for_another_reason():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_case(n):
    if n == 2:
        pytest.skip("no VM")

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_failure():
    assert False
'''
ALLOWED = """\
# comment lines and blank lines are ignored

test_sample.py::test_allowed root can read anything  # a trailing comment
test_sample.py::test_allowed_for_another_reason keepalived
"""
SUMMARY = re.compile(r"^\d+ failed|^\d+ passed|^\d+ skipped|^no tests ran")


def run(tmp_path: Path, ci: str | None, allowed: str | None = ALLOWED) -> subprocess.CompletedProcess:
    """pytest with the plugin over the sample suite; `allowed` None: no allow-list file."""
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "test_module_skip.py").write_text(
        'import pytest\npytest.skip("../shared is absent", allow_module_level=True)\n')
    if allowed is not None:
        (tmp_path / "allowed.txt").write_text(allowed)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env |= {"PYTHONPATH": str(ROOT), **({"CI": ci} if ci is not None else {})}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.ci_skips",
            "--allowed-skips", str(tmp_path / "allowed.txt"), str(tmp_path)]
    return subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def test_in_ci_a_skip_off_the_list_fails_the_run(tmp_path):
    proc = run(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    refused = re.findall(r"^SKIPPED (\S+) - (.*)$", proc.stdout, re.MULTILINE)
    assert refused == [
        ("test_module_skip.py", "../shared is absent"),
        ("test_sample.py::test_refused", "keepalived is not installed"),
        ("test_sample.py::test_allowed_for_another_reason", "FRR is not installed"),
        ("test_sample.py::test_case[2]", "no VM"),
    ], proc.stdout
    assert "CI=true: 4 skip(s) not on the allow-list" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert SUMMARY.match(last) and "2 passed" in last and "5 skipped" in last and "1 xfailed" in last, last


def test_in_ci_allowed_skips_pass(tmp_path):
    allowed = ALLOWED + ("test_sample.py::test_refused keepalived\ntest_sample.py::test_case no VM\n"
                         "test_sample.py::test_allowed_for_another_reason FRR\ntest_module_skip.py ../shared\n")
    proc = run(tmp_path, "true", allowed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skips not allowed" not in proc.stdout


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_outside_ci_skips_are_only_reported(tmp_path, ci):
    proc = run(tmp_path, ci)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skips not allowed" not in proc.stdout


@pytest.mark.parametrize("allowed, message", [
    ("test_sample.py::test_allowed\n", "allowed.txt:1: an allowed skip needs a node id and a reason"),
    (None, "cannot read the allow-list of skips"),
])
def test_a_broken_allow_list_is_a_usage_error(tmp_path, allowed, message):
    proc = run(tmp_path, "true", allowed)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert message in proc.stderr


def test_the_allow_list_names_tests_that_exist():
    entries = ci_skips.read_allowlist(ci_skips.ALLOWLIST)
    assert entries, "the allow-list is empty: remove it from tests/ci_skips.py instead"
    for entry in entries:
        path, _, name = entry.nodeid.partition("::")
        assert (ROOT / path).is_file() and f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), entry
