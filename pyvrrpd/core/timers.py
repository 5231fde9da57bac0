"""VRRP timer arithmetic in integer microseconds, exactly as keepalived 2.2.7 computes it.

keepalived keeps every interval in µs (``TIMER_HZ`` = 1,000,000) and truncates like C integer
division, so these values (not the RFC's real-number formulas, nor FRR's integer centiseconds) are
what a keepalived peer will do. Examples: v2 priority 100 at 1 s → Skew_Time 609,375 µs and
Master_Down_Interval 3,609,375 µs; v3 priority 100 at 10 cs → skew 60,937 µs (the exact value
60,937.5 is truncated) and Master_Down_Interval 360,937 µs.
"""

from __future__ import annotations

SECOND_US = 1_000_000
CENTISECOND_US = 10_000
DOWN_TIMER_ADVERTS = 3  # keepalived's down_timer_adverts default (the RFC's fixed "3")


def skew_time(priority: int, master_adver_int_us: int, version: int) -> int:
    """Skew_Time in µs: v2 ``(256-p)·1s/256``; v3 ``(256-p)·Master_Adver_Interval/256``."""
    if version == 2:
        # v2 skew is (256 - priority)/256 of one second whatever advert_int is (RFC 3768).
        return (256 - priority) * SECOND_US // 256
    # (256-p) * cs * 10,000 / 256, written * 625 / 16 as keepalived does (its uint32 must not overflow).
    return (256 - priority) * (master_adver_int_us // CENTISECOND_US) * 625 // 16


def master_down_interval(
    priority: int, master_adver_int_us: int, version: int, down_timer_adverts: int = DOWN_TIMER_ADVERTS
) -> int:
    """Master_Down_Interval in µs: ``down_timer_adverts · Master_Adver_Interval + Skew_Time``."""
    return down_timer_adverts * master_adver_int_us + skew_time(priority, master_adver_int_us, version)
