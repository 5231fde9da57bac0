"""No silent skips in CI: with CI=true a skipped test fails the run unless the allow-list names it.

A pytest plugin; ./scripts/test loads it (`-p tests.ci_skips`). The allow-list, tests/ci-allowed-skips.txt
unless --allowed-skips names another file, has one entry a line: a test's node id (without a
parametrization id it covers every case), then, after white space, a text the skip reason must contain;
`#` starts a comment. A skip that no entry allows — of a test, one case, or a whole module at
collection — is listed at the end of the run, before pytest's closing summary line, and the exit
status becomes 1. An expected failure (xfail) is not a skip. Without CI=true nothing changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).with_name("ci-allowed-skips.txt")


@dataclass(frozen=True)
class Allowed:
    nodeid: str
    reason: str

    def allows(self, nodeid: str, reason: str) -> bool:
        return (nodeid == self.nodeid or nodeid.startswith(self.nodeid + "[")) and self.reason in reason


def read_allowlist(path: Path) -> list[Allowed]:
    """The entries of an allow-list file; a line without a reason is an error (pytest.UsageError)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise pytest.UsageError(f"cannot read the allow-list of skips: {exc}") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        nodeid, _, reason = line.partition(" ")
        if not reason.strip():
            raise pytest.UsageError(f"{path}:{number}: an allowed skip needs a node id and a reason: {line!r}")
        entries.append(Allowed(nodeid, reason.strip()))
    return entries


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


class SkipPolicy:
    def __init__(self, allowed: list[Allowed], source: Path) -> None:
        self.allowed = allowed
        self.source = source
        self.refused: list[tuple[str, str]] = []  # (node id, reason)

    def check(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        reason = skip_reason(report)
        if not any(entry.allows(report.nodeid, reason) for entry in self.allowed):
            self.refused.append((report.nodeid, reason))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.check(report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self.check(report)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.refused:
            return
        terminalreporter.section("skips not allowed in CI", sep="=", red=True, bold=True)
        for nodeid, reason in self.refused:
            terminalreporter.line(f"SKIPPED {nodeid} - {reason}")
        terminalreporter.line(f"CI=true: {len(self.refused)} skip(s) not on the allow-list {self.source}; "
                              "install what the test needs (scripts/setup) or fix the test")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.refused and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--allowed-skips", default=str(ALLOWLIST), metavar="FILE",
                     help="with CI=true, the skips that do not fail the run (default: %(default)s)")


def pytest_configure(config: pytest.Config) -> None:
    if in_ci():
        source = Path(config.getoption("allowed_skips"))
        config.pluginmanager.register(SkipPolicy(read_allowlist(source), source), "ci-skip-policy")
