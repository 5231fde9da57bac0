"""At most one log line per key and period, so a flood of bad packets cannot flood the log."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable


class RateLimit:
    def __init__(self, period: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._pending: Counter[Hashable] = Counter()

    def __call__(self, key: Hashable) -> int:
        """Count one event: 0 means stay quiet; n > 0 means log now, the line standing for n events."""
        now = self._clock()
        self._pending[key] += 1
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            return 0
        self._last[key] = now
        return self._pending.pop(key)
