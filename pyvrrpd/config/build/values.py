"""Values every section reads: numbers, timers, booleans, addresses, ports, commands.

Each reader takes the :class:`Report` and reports a bad value itself, where keepalived
2.2.7 reports it, saying what is used instead.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable

from pyvrrpd.config import model as m
from pyvrrpd.config.diagnostics import Diagnostic, Severity, Span, not_supported
from pyvrrpd.config.lexer import Word
from pyvrrpd.config.parser import Node

SECOND = m.SECOND
IFNAMSIZ = 16
IPVS_WEIGHT_LIMIT = 65535
LVS_MAX_TIMEOUT = 86400 * 31
UINT32_MAX = 2**32 - 1
RT_PRIORITY_MAX = 99  # sched_get_priority_max(SCHED_RR) on Linux
LVS_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq")
LVS_FLAGS = ("hashed", "ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback")
DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA")
SCOPES = ("site", "link", "host", "nowhere", "global")
RULE_START_PRIORITY = 16384


# --------------------------------------------------------------------------- reporting


class Report:
    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        # (name, where) -> [span, uses, notes] of what is accepted but not supported yet
        self.unsupported: dict[tuple[str, str], list] = {}

    def error(self, span: Span | None, message: str, *notes: str) -> None:
        self.items.append(Diagnostic(Severity.ERROR, span, message, notes))

    def warn(self, span: Span | None, message: str, *notes: str) -> None:
        self.items.append(Diagnostic(Severity.WARNING, span, message, notes))

    def note(self, span: Span | None, message: str, *notes: str) -> None:
        self.items.append(Diagnostic(Severity.NOTE, span, message, notes))

    def host(self, span: Span | None, message: str) -> None:
        """A warning whose truth depends on the machine running the check."""
        self.items.append(Diagnostic(Severity.WARNING, span, f"{message} (host check)", ()))

    def not_supported(self, span: Span | None, name: str, where: str, *notes: str) -> None:
        """Something pyvrrpd reads but does not act on yet: one warning per config, at its
        first use (as the parser reports keywords), made by :meth:`finish`."""
        entry = self.unsupported.get((name, where))
        if entry is None:
            self.unsupported[(name, where)] = [span, 1, notes]
        else:
            entry[1] += 1

    def finish(self) -> list[Diagnostic]:
        for (name, where), (span, uses, notes) in self.unsupported.items():
            self.items.append(not_supported(span, name, where, uses, *notes))
        self.unsupported.clear()
        return self.items


# --------------------------------------------------------------------------- value readers

NEWER_KEYWORD = (
    "`{}` is a keyword of keepalived versions after 2.2.7: pyvrrpd acts on it, "
    "keepalived 2.2.7 reading this file would report it unknown"
)


def fmt_seconds(us: int) -> str:
    """1500000 -> '1.5', 3000000 -> '3'."""
    whole, frac = divmod(us, SECOND)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else str(whole)


_INT_RE = re.compile(r"[+-]?[0-9]+")
_DEC_RE = re.compile(r"\+?(?P<whole>[0-9]*)(?:\.(?P<frac>[0-9]*))?")


@functools.lru_cache(maxsize=4096)
def parse_int(text: str) -> int | None:
    """Base-10 integer as keepalived's read_*_strvec accept it, else None."""
    return int(text) if _INT_RE.fullmatch(text) else None


@functools.lru_cache(maxsize=4096)
def parse_decimal_us(text: str) -> tuple[int, bool] | None:
    """Decimal seconds -> (microseconds, rounded). Rounded means more than 6 places."""
    mt = _DEC_RE.fullmatch(text)
    if not mt or not (mt["whole"] or mt["frac"]):
        return None
    whole = int(mt["whole"] or 0)
    frac = mt["frac"] or ""
    rounded = len(frac) > 6
    us = int((frac + "000000")[:6])
    if rounded and frac[6] >= "5":
        us += 1
    return whole * SECOND + us, rounded


def read_int(r: Report, word: Word, lo: int, hi: int, what: str, fallback: str) -> int | None:
    """An integer in [lo, hi]; otherwise one warning naming what is used instead."""
    value = parse_int(word.text)
    if value is None:
        r.warn(word.span, f"{what} '{word.text}' is not a base-10 number; {fallback}")
        return None
    if not lo <= value <= hi:
        r.warn(word.span, f"{what} {word.text} is outside the range [{lo}, {hi}]; {fallback}")
        return None
    return value


def read_timer(r: Report, word: Word, lo_us: int, hi_us: int | None, what: str, fallback: str) -> int | None:
    """Decimal seconds with up to 6 places -> microseconds in [lo_us, hi_us]."""
    parsed = parse_decimal_us(word.text)
    if parsed is None:
        r.warn(word.span, f"{what} '{word.text}' is not a number of seconds; {fallback}")
        return None
    us, rounded = parsed
    if us < lo_us or (hi_us is not None and us > hi_us):
        lo = fmt_seconds(lo_us)
        limits = f"at least {lo}s" if hi_us is None else f"in [{lo}, {fmt_seconds(hi_us)}]s"
        r.warn(word.span, f"{what} {word.text} must be {limits}; {fallback}")
        return None
    if rounded:
        r.warn(word.span, f"{what} '{word.text}' has more than 6 decimal places; rounded to {fmt_seconds(us)}s")
    return us


def int_in(text: str, lo: int, hi: int) -> int | None:
    """``text`` as an integer in [lo, hi], else None: :func:`int_arg`'s check without its
    message, for hot callers that format the message only when this fails."""
    value = parse_int(text)
    return value if value is not None and lo <= value <= hi else None


def timer_in(text: str, lo_us: int, hi_us: int | None) -> int | None:
    """``text`` as seconds in [lo_us, hi_us] microseconds with at most 6 decimal places,
    else None: :func:`timer_arg`'s check without its message (see :func:`int_in`)."""
    parsed = parse_decimal_us(text)
    if parsed is not None and not parsed[1] and lo_us <= parsed[0] and (hi_us is None or parsed[0] <= hi_us):
        return parsed[0]
    return None


def int_arg(r: Report, node: Node, lo: int, hi: int, what: str, fallback: str) -> int | None:
    """:func:`read_int` of a statement's first argument."""
    value = int_in(node.texts[1], lo, hi)
    return value if value is not None else read_int(r, node.words[1], lo, hi, what, fallback)


def timer_arg(r: Report, node: Node, lo_us: int, hi_us: int | None, what: str, fallback: str) -> int | None:
    """:func:`read_timer` of a statement's first argument."""
    value = timer_in(node.texts[1], lo_us, hi_us)
    return value if value is not None else read_timer(r, node.words[1], lo_us, hi_us, what, fallback)


_TRUE = ("true", "on", "yes")
_FALSE = ("false", "off", "no")


def read_bool(r: Report, node: Node, what: str, fallback: str = "ignoring it") -> bool | None:
    """``keyword`` alone means true; otherwise exactly true|on|yes|false|off|no."""
    if len(node.texts) < 2:
        return True
    text = node.texts[1]
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    r.warn(node.words[1].span, f"{what}: '{text}' is not one of true|on|yes|false|off|no (lowercase); {fallback}")
    return None


@functools.lru_cache(maxsize=4096)
def parse_ip(text: str) -> m.IPAddress | None:
    """A plain IPv4/IPv6 address as inet_pton accepts it (no prefix, no zone)."""
    if "%" in text or "/" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_prefix(text: str) -> tuple[m.IPAddress | None, int | None, str | None]:
    """'addr[/len]' -> (address, prefix len or None if absent, bad prefix text)."""
    addr_text, slash, plen_text = text.partition("/")
    addr = parse_ip(addr_text)
    if addr is None:
        return None, None, None
    if not slash:
        return addr, None, None
    plen = parse_int(plen_text)
    if plen is None or not 0 <= plen <= addr.max_prefixlen or plen_text.startswith(("+", "-")):
        return addr, None, plen_text
    return addr, plen, None


@functools.lru_cache(maxsize=4096)
def parse_port(text: str) -> int | None:
    value = parse_int(text)
    return value if value is not None and 0 <= value <= 65535 and text.isdigit() else None


def block_words(items: Iterable[tuple[Word, ...]]) -> list[Word]:
    """All words of a value block, line by line (keepalived's read_value_block)."""
    return [w for item in items for w in item]


def split_command(text: str) -> list[str]:
    """Split a script command line the way keepalived re-tokenizes it.

    Single and double quotes group words; a backslash escapes the next
    character (outside single quotes).
    """
    argv: list[str] = []
    cur: list[str] = []
    have = False
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                i += 1
                cur.append(text[i])
            else:
                cur.append(ch)
        elif ch in "'\"":
            quote, have = ch, True
        elif ch == "\\" and i + 1 < len(text):
            i += 1
            cur.append(text[i])
            have = True
        elif ch in " \t\f\n\r\v":
            if have or cur:
                argv.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(ch)
        i += 1
    if have or cur:
        argv.append("".join(cur))
    return argv


def arg(node: Node, i: int = 1) -> str | None:
    """The text of word ``i`` of a statement, None if there is no such word.

    Values are read from ``Node.texts``; ``Node.words`` (built on first use) only
    serve for the spans of diagnostics.
    """
    texts = node.texts
    return texts[i] if len(texts) > i else None

