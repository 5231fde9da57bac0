"""What the benchmarks share: the run order, medians, the table and the verdict.

A benchmark builds a list of Checks (each one a target from bench/README.md, with the numbers that
decide it), prints them with `verdict()` and exits with what it returns: 0 when every check holds,
1 otherwise.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def abba(names: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """(round, name) in ABBA order: every round runs each name once, odd rounds in reverse, so
    neither always goes first and drift on the machine (load, warm caches) hits both alike."""
    return [(r, name) for r in range(rounds) for name in (names if r % 2 == 0 else names[::-1])]


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.3f} / {self.low:.3f} / {self.high:.3f}"


def spread(values: Iterable[float | None]) -> Spread | None:
    """Median, min and max of the values that are not None; None when there are none."""
    seen = [v for v in values if v is not None]
    return Spread(statistics.median(seen), min(seen), max(seen)) if seen else None


def median(values: Iterable[float | None]) -> float | None:
    seen = [v for v in values if v is not None]
    return statistics.median(seen) if seen else None


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A Markdown table on stdout (None prints as '-', floats with 3 decimals)."""
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str


def versus(what: str, ours: float | None, theirs: float | None, *, unit: str = "s",
           factor: float = 1.0, slack: float = 0.0, slack_why: str = "") -> Check:
    """pyvrrpd's median `ours` against keepalived's `theirs`: ok iff ours <= factor x theirs + slack.

    A missing side fails (nothing to rate). The detail gives both values, the ratio, the difference
    and the bound, and why there is any slack.
    """
    if ours is None or theirs is None:
        missing = "pyvrrpd" if ours is None else "keepalived"
        return Check(what, False, f"no {missing} figure to rate")
    bound = factor * theirs + slack
    target = f"<= {factor:g}x keepalived" + (f" + {slack * 1000:g} ms ({slack_why})" if slack else "")
    ratio = f"{ours / theirs:.2f}x" if theirs else "-"
    ok = ours <= bound + 1e-9  # float rounding only: the figures carry 0.1 ms at best
    return Check(what, ok, f"pyvrrpd {ours:.3f} {unit}, keepalived {theirs:.3f} {unit}: "
                 f"ratio {ratio}, {'+' if ours >= theirs else '-'}{abs(ours - theirs) * 1000:.1f} ms; "
                 f"target {target}")


def verdict(checks: Sequence[Check]) -> int:
    """Print one line per check and a last verdict line; 0 when all hold, else 1."""
    print()
    for c in checks:
        print(f"{'ok    ' if c.ok else 'FAILED'}  {c.what}: {c.detail}")
    failed = sum(1 for c in checks if not c.ok)
    print(f"verdict: {'FAILED' if failed or not checks else 'ok'} "
          f"({len(checks) - failed} of {len(checks)} checks hold)")
    return 1 if failed or not checks else 0
