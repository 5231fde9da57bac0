"""Timer arithmetic: keepalived 2.2.7's integer microseconds (keepalived-facts.md §4.1 table)."""

from __future__ import annotations

import pytest

from pyvrrpd.core.timers import master_down_interval, skew_time

# (version, advert interval µs, priority) → (skew µs, Master_Down_Interval µs)
CASES = [
    (2, 1_000_000, 100, 609_375, 3_609_375),
    (2, 1_000_000, 200, 218_750, 3_218_750),
    (2, 1_000_000, 254, 7_812, 3_007_812),
    (2, 2_000_000, 100, 609_375, 6_609_375),  # v2 skew does not scale with advert_int
    (3, 1_000_000, 100, 609_375, 3_609_375),
    (3, 1_000_000, 200, 218_750, 3_218_750),
    (3, 500_000, 100, 304_687, 1_804_687),
    (3, 100_000, 100, 60_937, 360_937),  # 360.9375 ms exactly; keepalived truncates the half µs
    (3, 100_000, 200, 21_875, 321_875),
    (3, 50_000, 100, 30_468, 180_468),
    (3, 10_000, 100, 6_093, 36_093),
    (3, 10_000, 200, 2_187, 32_187),
    (3, 10_000, 254, 78, 30_078),  # FRR's integer centiseconds would give 0 skew here
]


@pytest.mark.parametrize(("version", "interval", "priority", "skew", "mdi"), CASES)
def test_keepalived_values(version: int, interval: int, priority: int, skew: int, mdi: int) -> None:
    assert skew_time(priority, interval, version) == skew
    assert master_down_interval(priority, interval, version) == mdi


def test_down_timer_adverts_multiplies_the_interval() -> None:
    assert master_down_interval(100, 1_000_000, 2, down_timer_adverts=5) == 5_609_375
    assert master_down_interval(100, 100_000, 3, down_timer_adverts=1) == 160_937
