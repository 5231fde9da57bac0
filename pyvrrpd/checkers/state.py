"""A checker's retry logic and a real server's health, as keepalived 2.2.7 decides them (sans-I/O).

Standard library only, no clock: ``now`` (seconds, monotonic) comes in, the next deadline
(:attr:`Checker.due`) and state changes come out. The scheduler runs the probe when the deadline
comes and feeds the result back with :meth:`Checker.record`.

keepalived's rules (check_tcp.c, check_udp.c, check_ping.c, check_dns.c, check_smtp.c,
check_misc.c, check_http.c; reference facts §5.1):

* A checker starts **up**, or **down** with ``alpha``. Its first run comes ``BOOTSTRAP`` (1 s)
  plus a share of ``warmup`` after start (keepalived: a random share; here the scheduler's phase,
  so checks spread evenly instead of clumping).
* Until it has run once, one failure is enough: a checker's retry counter starts used up
  (``retry_it = retry``), except SMTP_CHECK's, whose every round starts afresh.
* Once up, a check fails the checker only after ``retry + 1`` failed attempts in a row,
  ``delay_before_retry`` apart; a success in between resets the count.
* A success brings a down checker up at once. After a completed round the next check is
  ``delay_loop`` later.
* While down: TCP_CHECK and SMTP_CHECK still retry (``delay_before_retry`` apart, then
  ``delay_loop``); UDP_CHECK, PING_CHECK, DNS_CHECK and MISC_CHECK just wait ``delay_loop``.
* MISC_CHECK times its next run from the start of the last one, the others from its end.
* HTTP_GET / SSL_GET check one url per round (``delay_loop`` apart); the checker is up once all
  urls passed in one pass. A url failing ``retry + 1`` times takes it down and becomes the
  *failed url*, rechecked every ``max(delay_loop, delay_before_retry)``; once it passes, all urls
  are checked again from the first. ``fast_recovery`` runs the next url at once while the
  checker has not completed a pass or is down without a failed url.

A real server is alive when **all** its checkers are up.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

BOOTSTRAP = 1.0  # keepalived's BOOTSTRAP_DELAY: the first check never runs sooner
MISC_MIN_GAP = 1e-6  # keepalived schedules an overdue MISC_CHECK 1 µs later


class Style(enum.Enum):
    """Which keepalived retry rules a checker follows."""

    TCP = "tcp"  # TCP_CHECK
    SMTP = "smtp"  # SMTP_CHECK: TCP's rules, every round starting with no retries used
    GATED = "gated"  # UDP_CHECK, PING_CHECK, DNS_CHECK: retries only while up
    MISC = "misc"  # MISC_CHECK: GATED, timed from the start of the last run
    HTTP = "http"  # HTTP_GET, SSL_GET: one url per round, failed url, fast_recovery


@dataclass(frozen=True, slots=True)
class Timing:
    """A checker's settings, in seconds (the model's microseconds / 1e6)."""

    delay_loop: float
    delay_before_retry: float
    retry: int
    warmup: float
    alpha: bool = False
    urls: int = 1  # HTTP_GET / SSL_GET: how many url blocks
    fast_recovery: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """The checker went up or down."""

    up: bool
    after_retries: int  # how many retries failed before it went down (0 when up)


class Checker:
    """One checker's state machine: when to probe next, and whether it is up."""

    __slots__ = ("timing", "style", "is_up", "has_run", "retry_it", "url", "failed_url", "due", "attempts")

    def __init__(self, timing: Timing, style: Style) -> None:
        if timing.urls < 1:
            raise ValueError("a checker has at least one url")
        self.timing = timing
        self.style = style
        self.is_up = not timing.alpha
        self.has_run = False
        self.retry_it = 0 if style is Style.SMTP else timing.retry  # "one failure is enough initially"
        self.url = 0  # HTTP: the url the next probe checks
        self.failed_url: int | None = None  # HTTP
        self.due = 0.0
        self.attempts = 0

    def start(self, now: float, phase: float) -> None:
        """Schedule the first probe; ``phase`` in [0, 1) picks the point within the warmup
        (within the bootstrap second when there is no warmup)."""
        t = self.timing
        if t.warmup > 0:
            self.due = now + BOOTSTRAP + phase * t.warmup
        else:
            self.due = now + BOOTSTRAP * phase

    def record(self, ok: bool, now: float, started: float | None = None) -> Change | None:
        """Feed one probe's result (``started``: when the probe began, for MISC_CHECK's timing).
        Sets :attr:`due` and returns the change of state, if any."""
        self.attempts += 1
        if self.style is Style.HTTP:
            return self._http(ok, now)
        t, was_up = self.timing, self.is_up
        change: Change | None = None
        if ok:
            self.retry_it = 0
            if not self.is_up or not self.has_run:
                self.is_up = True
            delay = t.delay_loop
        elif self.style in (Style.TCP, Style.SMTP):
            if self.retry_it >= t.retry:
                delay = t.delay_loop
                if self.is_up or not self.has_run:
                    self.is_up = False
                self.retry_it = 0
            else:
                delay = t.delay_before_retry
                self.retry_it += 1
        else:  # GATED, MISC
            if (self.is_up or not self.has_run) and self.retry_it >= t.retry:
                self.retry_it = 0
                self.is_up = False
                delay = t.delay_loop
            elif self.is_up:
                self.retry_it += 1
                delay = t.delay_before_retry
            else:
                delay = t.delay_loop
        if self.is_up != was_up:
            change = Change(up=self.is_up, after_retries=0 if self.is_up else t.retry if self.has_run else 0)
        self.has_run = True
        if self.style is Style.MISC:
            base = now if started is None else started
            self.due = max(base + (t.delay_before_retry if self.retry_it else t.delay_loop), now + MISC_MIN_GAP)
        else:
            self.due = now + delay
        return change

    def _http(self, ok: bool, now: float) -> Change | None:
        t, was_up, was_run = self.timing, self.is_up, self.has_run
        if ok:
            self.url += 1
            self.retry_it = 0
            done = self.url >= t.urls
            if done and self.failed_url is None:
                if not self.is_up or not self.has_run:
                    self.is_up = True
                    self.has_run = True
                self.url = 0
            elif self.failed_url is not None:  # the failed url passes: check them all again
                self.failed_url = None
                self.url = 0
            delay = t.delay_loop
            if not self.has_run:
                self.retry_it = t.retry
        else:
            if self.is_up or not self.has_run:
                self.has_run = True
                self.retry_it += 1
                if self.retry_it > t.retry:
                    self.is_up = False
                    self.failed_url = self.url
            delay = max(t.delay_before_retry, t.delay_loop) if self.failed_url is not None else t.delay_before_retry
        if t.fast_recovery and (not self.has_run or (not self.is_up and self.failed_url is None)):
            delay = 0.0
        self.due = now + delay
        if self.is_up == was_up:
            return None
        return Change(up=self.is_up, after_retries=0 if self.is_up else t.retry if was_run else 0)

    def snapshot(self) -> dict:
        return {"up": self.is_up, "has_run": self.has_run, "retry_it": self.retry_it, "url": self.url,
                "failed_url": self.failed_url, "due": self.due, "attempts": self.attempts}


_NO_OFFSETS: Mapping[int, int] = MappingProxyType({})
_NONE_DOWN: frozenset[int] = frozenset()


def down_set(indexes: Iterable[int] | None) -> frozenset[int]:
    """The checkers that are down, as RealServerHealth keeps them (the shared empty set when none)."""
    down = frozenset(indexes or ())
    return down if down else _NONE_DOWN


class RealServerHealth:
    """One real server: alive when all its checkers are up; its weight from MISC_CHECK
    (``misc_dynamic``) and FILE_CHECK results.

    ``down`` and ``offsets`` are replaced, never changed in place: a healthy real server without
    FILE_CHECK shares the empty ones instead of an empty set (216 B) and dict (64 B) of its own
    (10,000 real servers: -2.7 MiB).
    """

    __slots__ = ("weight", "down", "dynamic", "offsets")

    def __init__(self, weight: int, checkers: int, initially_down: set[int] | None = None) -> None:
        self.weight = weight  # configured
        self.down: frozenset[int] = down_set(initially_down)  # indexes of the checkers that are down
        self.dynamic: int | None = None  # MISC_CHECK misc_dynamic: exit status - 2
        self.offsets: Mapping[int, int] = _NO_OFFSETS  # FILE_CHECK: value x weight, per checker
        if any(not 0 <= i < checkers for i in self.down):
            raise ValueError("checker index out of range")

    @property
    def alive(self) -> bool:
        return not self.down

    def effective_weight(self) -> int | None:
        """None when nothing changed the configured weight; else clamped to 0..65535."""
        if self.dynamic is None and not self.offsets:
            return None
        base = self.weight if self.dynamic is None else self.dynamic
        return min(max(base + sum(self.offsets.values()), 0), 65535)

    def set_checker(self, index: int, up: bool) -> bool:
        """Record a checker's state; True when the server's aliveness changed."""
        was = self.alive
        if up:
            if index in self.down:
                self.down = down_set(self.down - {index})
        elif index not in self.down:
            self.down = self.down | {index}
        return self.alive != was

    def set_dynamic(self, weight: int | None) -> bool:
        """A MISC_CHECK with misc_dynamic succeeded (None: exit 0, the configured weight).
        True when the effective weight changed."""
        before = self.effective_weight()
        self.dynamic = weight
        return self.effective_weight() != before

    def set_offset(self, index: int, offset: int) -> bool:
        """A FILE_CHECK's weight offset; True when the effective weight changed."""
        before = self.effective_weight()
        if offset:
            self.offsets = {**self.offsets, index: offset}
        elif index in self.offsets:
            self.offsets = {i: o for i, o in self.offsets.items() if i != index}
        return self.effective_weight() != before


def file_check_state(value: int, weight: int, reverse: bool = False) -> tuple[bool, int]:
    """FILE_CHECK: a tracked file's value -> (up, weight offset), as keepalived's track_file.

    Weight 0: the checker is down when the value is non-zero (with ``reverse``, when it is 0).
    Otherwise the checker stays up and ``value x weight`` (negated with ``reverse``) is added to
    the real server's weight; only an offset at or below -2**31 takes it down.
    """
    sign = -1 if reverse else 1
    if weight == 0:
        down = (value != 0) if sign == 1 else (value == 0)
        return (not down, 0)
    offset = value * weight * sign
    if offset <= -(2**31):
        return (False, 0)
    return (True, min(offset, 2**31 - 1))


def parse_track_value(data: bytes) -> int | None:
    """A tracked file's value as keepalived reads it (``strtol(buf, NULL, 0)`` of the first 127
    bytes): leading blanks, a sign, a ``0x``/``0`` prefix, digits up to the first non-digit;
    no digits at all is 0. None when the number is outside -2**31..2**31 (keepalived ignores it)."""
    text = data[:127].decode("latin-1").lstrip(" \t\n\r\f\v")
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    base, digits = 10, "0123456789"
    if text[:2].lower() == "0x" and text[2:3].lower() in "0123456789abcdef" and text[2:3]:
        base, digits, text = 16, "0123456789abcdef", text[2:]
    elif text[:1] == "0":
        base, digits = 8, "01234567"
    n = 0
    for ch in text.lower():
        if ch not in digits:
            break
        n = n * base + digits.index(ch)
    value = sign * n
    if not -(2**31) <= value <= 2**31:
        return None
    return value
