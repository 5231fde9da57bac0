"""Node tree -> :class:`~pyvrrpd.config.model.Config` plus semantic diagnostics.

The parser has already checked structure (known keywords, braces, missing
parameters, deprecated spellings). This module reads *values* with keepalived
2.2.7's rules and applies its config-time semantics (defaults, inheritance,
corrections), reporting each problem where keepalived reports it:

* an ERROR means the object cannot run (an instance without a VRID, a virtual
  server with a bad address, two instances on the same VRID and interface);
* a WARNING means keepalived also warns and runs, and the message says which
  value is used instead;
* checks that depend on the machine (interfaces, users, script files) go
  through a :class:`Host`; they are warnings that say "(host check)", and
  ``host=None`` skips them.

Diagnostics sit on the line keepalived 2.2.7 uses for the same problem: the
keyword's line, the value-block line, or the block's closing ``}`` for checks
keepalived makes when a block ends. The wording is pyvrrpd's own.
"""

from __future__ import annotations

import _socket  # for if_nameindex(): importing socket.py costs 5 ms (its IntEnums) at every start
import functools
import grp
import ipaddress
import os
import pwd
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyvrrpd.config import model as m
from pyvrrpd.config.diagnostics import Diagnostic, Severity, Span
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


# --------------------------------------------------------------------------- the host


class Host:
    """What the build may ask about the machine it runs on.

    Every answer may be None ("cannot tell"), which skips the check; this base
    class cannot tell anything. (A base class, not a typing.Protocol: importing
    typing would cost 3 ms at every start.)
    """

    def interface_exists(self, name: str) -> bool | None:
        """Whether a network interface of that name exists here."""
        return None

    def user_problem(self, user: str, group: str | None) -> str | None:
        """Why scripts cannot run as user[:group] here, or None if they can."""
        return None

    def script_problem(self, argv0: str, user: str) -> str | None:
        """Why argv0 cannot be run (safely) as user here, or None if fine."""
        return None

    def name_resolves(self, name: str) -> bool | None:
        """Whether a host name (e.g. smtp_server) resolves here."""
        return None


_UNKNOWN = object()


def _remembered(method):
    """A LocalHost question asked once per distinct arguments: a config may run the same
    script as the same user hundreds of times, and each check reads /etc/passwd and /etc/group."""

    @functools.wraps(method)
    def ask(self, *args):
        key = (method.__name__, args)
        answer = self._answers.get(key, _UNKNOWN)
        if answer is _UNKNOWN:
            answer = self._answers[key] = method(self, *args)
        return answer

    return ask


class LocalHost(Host):
    """The machine this process runs on, as it is when the object is made.

    Interfaces come from if_nameindex(), so the answer depends on the
    network namespace the command runs in.
    """

    def __init__(self) -> None:
        self._answers: dict[tuple, object] = {}
        try:
            self._ifnames: frozenset[str] | None = frozenset(name for _, name in _socket.if_nameindex())
        except OSError:
            self._ifnames = None

    def interface_exists(self, name: str) -> bool | None:
        return None if self._ifnames is None else name in self._ifnames

    @_remembered
    def user_problem(self, user: str, group: str | None) -> str | None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"user {user} does not exist on this host"
        if group is not None:
            try:
                grp.getgrnam(group)
            except KeyError:
                return f"group {group} does not exist on this host"
        return None

    @_remembered
    def script_problem(self, argv0: str, user: str) -> str | None:
        path = argv0
        if "/" not in path:
            for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
                if d and os.path.isfile(os.path.join(d, path)):
                    path = os.path.join(d, path)
                    break
            else:
                return f"script {argv0} is not in PATH on this host"
        try:
            st = os.stat(path)
        except OSError as e:
            return f"script {argv0} cannot be accessed on this host ({e.strerror})"
        try:
            pw = pwd.getpwnam(user)
            uid, gids = pw.pw_uid, {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
        except KeyError:
            return None
        if uid == 0:
            executable = bool(st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
        elif st.st_uid == uid:
            executable = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in gids:
            executable = bool(st.st_mode & stat.S_IXGRP)
        else:
            executable = bool(st.st_mode & stat.S_IXOTH)
        if not stat.S_ISREG(st.st_mode) or not executable:
            return f"script {argv0} is not executable by {user} on this host"
        if uid == 0:
            unsafe = _unsafe_component(os.path.realpath(path))
            if unsafe:
                return f"unsafe permissions for script {argv0} run as root: {unsafe} is writable by non-root users"
        return None

    @_remembered
    def name_resolves(self, name: str) -> bool | None:
        try:
            import socket  # rarely needed (smtp_server): not worth importing at every start

            socket.getaddrinfo(name, None)
        except (OSError, UnicodeError):
            return False
        return True


def _unsafe_component(path: str) -> str | None:
    """First path component a non-root user could modify (keepalived's check_security)."""
    parts = path.split("/")
    for i in range(len(parts), 0, -1):
        p = "/".join(parts[:i]) or "/"
        try:
            st = os.stat(p)
        except OSError:
            return None
        if st.st_uid != 0:
            return p
        is_dir = stat.S_ISDIR(st.st_mode)
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (is_dir and st.st_mode & stat.S_ISVTX):
            return p
    return None


@dataclass(frozen=True)
class StaticHost(Host):
    """A host described by data: for tests, and for checking a config against
    another machine (e.g. keepalived's corpus namespace, which has only ``lo``).

    ``scripts`` maps argv0 to a problem text (None = fine); names not in it
    are not checked.
    """

    interfaces: frozenset[str] = frozenset({"lo"})
    users: frozenset[str] = frozenset({"root"})
    groups: frozenset[str] = frozenset({"root"})
    scripts: dict[str, str | None] = field(default_factory=dict)
    names: frozenset[str] = frozenset({"localhost"})

    def interface_exists(self, name: str) -> bool | None:
        return name in self.interfaces

    def user_problem(self, user: str, group: str | None) -> str | None:
        if user not in self.users:
            return f"user {user} does not exist on this host"
        if group is not None and group not in self.groups:
            return f"group {group} does not exist on this host"
        return None

    def script_problem(self, argv0: str, user: str) -> str | None:
        return self.scripts.get(argv0)

    def name_resolves(self, name: str) -> bool | None:
        return name in self.names


# --------------------------------------------------------------------------- reporting


class _Report:
    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, span: Span | None, message: str, *notes: str) -> None:
        self.items.append(Diagnostic(Severity.ERROR, span, message, notes))

    def warn(self, span: Span | None, message: str, *notes: str) -> None:
        self.items.append(Diagnostic(Severity.WARNING, span, message, notes))

    def note(self, span: Span | None, message: str, *notes: str) -> None:
        self.items.append(Diagnostic(Severity.NOTE, span, message, notes))

    def host(self, span: Span | None, message: str) -> None:
        """A warning whose truth depends on the machine running the check."""
        self.items.append(Diagnostic(Severity.WARNING, span, f"{message} (host check)", ()))


# --------------------------------------------------------------------------- value readers

_NEWER_KEYWORD = (
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


def read_int(r: _Report, word: Word, lo: int, hi: int, what: str, fallback: str) -> int | None:
    """An integer in [lo, hi]; otherwise one warning naming what is used instead."""
    value = parse_int(word.text)
    if value is None:
        r.warn(word.span, f"{what} '{word.text}' is not a base-10 number; {fallback}")
        return None
    if not lo <= value <= hi:
        r.warn(word.span, f"{what} {word.text} is outside the range [{lo}, {hi}]; {fallback}")
        return None
    return value


def read_timer(r: _Report, word: Word, lo_us: int, hi_us: int | None, what: str, fallback: str) -> int | None:
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


def int_arg(r: _Report, node: Node, lo: int, hi: int, what: str, fallback: str) -> int | None:
    """:func:`read_int` of a statement's first argument."""
    value = int_in(node.texts[1], lo, hi)
    return value if value is not None else read_int(r, node.words[1], lo, hi, what, fallback)


def timer_arg(r: _Report, node: Node, lo_us: int, hi_us: int | None, what: str, fallback: str) -> int | None:
    """:func:`read_timer` of a statement's first argument."""
    value = timer_in(node.texts[1], lo_us, hi_us)
    return value if value is not None else read_timer(r, node.words[1], lo_us, hi_us, what, fallback)


_TRUE = ("true", "on", "yes")
_FALSE = ("false", "off", "no")


def read_bool(r: _Report, node: Node, what: str, fallback: str = "ignoring it") -> bool | None:
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


def _words(items: Iterable[tuple[Word, ...]]) -> list[Word]:
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


# --------------------------------------------------------------------------- addresses, routes, rules

_VIP_FLAGS = {
    "home": "home",
    "-nodad": "nodad",
    "mngtmpaddr": "mngtmpaddr",
    "noprefixroute": "noprefixroute",
    "autojoin": "autojoin",
    "no_track": "no_track",
}


def build_address(
    r: _Report, host: Host | None, item: tuple[Word, ...], *, static: bool, owner: str
) -> m.VirtualAddress | None:
    """One ``virtual_ipaddress``-style line (keepalived's alloc_ipaddress); owner prefixes messages."""
    first = item[0]
    addr, plen, bad_plen = parse_prefix(first.text)
    if addr is None:
        r.warn(first.span, f"{owner}: '{first.text}' is not a valid IP address; this address is ignored")
        return None
    if bad_plen is not None:
        r.warn(first.span, f"{owner}: invalid prefix length '{bad_plen}' for {addr}; using /{addr.max_prefixlen}")
    prefix = addr.max_prefixlen if plen is None else plen
    kw: dict = {"span": first.span}
    brd_mode: str | None = None
    peer: m.IPInterface | None = None
    i = 1
    while i < len(item):
        opt = item[i].text
        needs_value = opt in ("dev", "scope", "broadcast", "brd", "label", "peer", "preferred_lft") or (
            static and opt == "track_group"
        )
        if needs_value and i + 1 >= len(item):
            r.warn(item[i].span, f"{owner}: '{opt}' needs a value for address {first.text}; this address is ignored")
            return None
        value = item[i + 1] if needs_value else None
        if opt == "dev":
            if "dev" in kw:
                r.warn(value.span, f"{owner}: device given twice for address {first.text}; this address is ignored")
                return None
            kw["dev"] = value.text
            if host is not None and host.interface_exists(value.text) is False:
                r.host(value.span, f"{owner}: interface {value.text} for address {first.text} "
                                   "does not exist on this host")
        elif opt == "scope":
            if value.text in SCOPES or (parse_int(value.text) is not None and 0 <= int(value.text) <= 255):
                kw["scope"] = value.text
            else:
                r.warn(value.span, f"{owner}: invalid scope '{value.text}' for address {first.text}; scope ignored")
        elif opt in ("broadcast", "brd"):
            if addr.version == 6:
                r.warn(value.span, f"{owner}: IPv6 address {first.text} cannot have a broadcast address; "
                                   "this address is ignored")
                return None
            if value.text in ("+", "-"):
                brd_mode = value.text
            else:
                brd = parse_ip(value.text)
                if brd is None or brd.version != 4:
                    r.warn(value.span, f"{owner}: invalid broadcast address '{value.text}'; this address is ignored")
                    return None
                kw["broadcast"] = brd
        elif opt == "label":
            kw["label"] = value.text[: IFNAMSIZ - 1]
        elif opt == "peer":
            if peer is not None:
                r.warn(value.span, f"{owner}: peer {value.text}: a peer is already given; ignored")
            else:
                paddr, pplen, pbad = parse_prefix(value.text)
                if paddr is None or pbad is not None:
                    r.warn(value.span, f"{owner}: invalid peer address '{value.text}'; peer ignored")
                elif paddr.version != addr.version:
                    r.warn(value.span, f"{owner}: peer address {value.text} is not the same IP version "
                                       f"as {first.text}; peer ignored")
                else:
                    if plen is not None and plen != addr.max_prefixlen:
                        r.warn(value.span, f"{owner}: a prefix length on {first.text} is ignored when a peer is given")
                    prefix = paddr.max_prefixlen if pplen is None else pplen
                    peer = ipaddress.ip_interface(f"{paddr}/{prefix}")
        elif opt == "preferred_lft":
            if value.text == "forever":
                kw["preferred_lft"] = None
            else:
                lft = read_int(r, value, 0, UINT32_MAX, "preferred_lft", "ignoring it")
                if lft is not None:
                    kw["preferred_lft"] = lft
        elif opt == "track_group" and static:
            kw["track_group"] = value.text
        elif opt == "use_vmac" and not static:
            kw["use_vmac"] = True
        elif opt in _VIP_FLAGS:
            kw[_VIP_FLAGS[opt]] = True
        else:
            r.warn(item[i].span, f"{owner}: unknown option '{opt}' for address {first.text}; ignored")
        i += 2 if needs_value else 1
    if peer is not None:
        kw["peer"] = peer
        if "broadcast" in kw or brd_mode:
            r.warn(first.span, f"{owner}: address {first.text} has both a peer and a broadcast address; "
                               "broadcast ignored")
            kw.pop("broadcast", None)
            brd_mode = None
    if brd_mode is not None:
        if prefix <= 30:
            net = ipaddress.ip_network(f"{peer.ip if peer else addr}/{prefix}", strict=False)
            kw["broadcast"] = net.broadcast_address if brd_mode == "+" else net.network_address
        else:
            r.warn(first.span, f"{owner}: prefix length /{prefix} is too long for a broadcast address; "
                               "broadcast ignored")
    if addr.version == 6:
        if "scope" in kw:
            r.warn(first.span, f"{owner}: a scope cannot be set for IPv6 address {first.text}; scope ignored")
            del kw["scope"]
        if "label" in kw:
            r.warn(first.span, f"{owner}: a label cannot be set for IPv6 address {first.text}; label ignored")
            del kw["label"]
    kw["address"] = ipaddress.ip_interface(f"{addr}/{prefix}")
    return m.VirtualAddress(**kw)


def _route_dest(text: str) -> m.IPInterface | None | bool:
    """parse_route(): 'default', 'default6' or addr[/len]; False if invalid."""
    if text in ("default", "default6", "all", "any"):
        return None
    addr, plen, bad = parse_prefix(text)
    if addr is None or bad is not None:
        return False
    return ipaddress.ip_interface(f"{addr}/{addr.max_prefixlen if plen is None else plen}")


_ROUTE_ARG = frozenset(
    "src from tos dsfield table protocol scope metric priority preference dev oif expires hoplimit window "
    "initcwnd initrwnd features quickack pref ttl-propagate fastopen_no_cookie realms track_group".split()
)
_ROUTE_LOCKABLE = frozenset("mtu advmss rtt rttvar reordering cwnd ssthresh rto_min congctl".split())
_ROUTE_TYPES = frozenset("unicast local broadcast multicast throw unreachable prohibit blackhole nat anycast".split())
_RULE_ARG = frozenset(
    "from to table lookup preference order priority tos dsfield fwmark realms suppress_prefixlength sup_pl "
    "suppress_ifgroup sup_group dev iif oif tunnel-id uidrange protocol ipproto sport dport track_group goto".split()
)
_RULE_ACTIONS = frozenset("blackhole unreachable prohibit nop".split())


def build_route(
    r: _Report, host: Host | None, item: tuple[Word, ...], *, static: bool, owner: str
) -> m.Route | None:
    """One ``virtual_routes``/``static_routes`` line (keepalived's alloc_route, simplified)."""
    words = [w.text for w in item]
    kw: dict = {"words": tuple(words), "span": item[0].span}
    family: int | None = None
    dest_text = None
    protocol = None
    i = 0

    def fam(v: int) -> bool:
        nonlocal family
        if family is None:
            family = v
        if family != v:
            r.warn(item[0].span, f"{owner}: route {' '.join(words)} mixes IPv4 and IPv6; route ignored")
            return False
        return True

    while i < len(item):
        opt = words[i]
        if opt in ("inet", "inet6"):
            if not fam(6 if opt == "inet6" else 4):
                return None
            i += 1
            continue
        if opt == "nexthop" or opt == "or":
            break  # multipath: kept as words
        if opt in ("no_track", "onlink"):
            if opt == "no_track":
                kw["no_track"] = True
            i += 1
            continue
        if opt in ("via", "gw"):
            if opt == "gw":
                r.warn(item[i].span, f"{owner}: 'gw' in routes is deprecated; use 'via'")
            i += 1
            if i < len(item) and words[i] in ("inet", "inet6"):
                i += 1
            via = parse_ip(words[i]) if i < len(item) else None
            if via is None:
                where = item[min(i, len(item) - 1)].span
                r.warn(where, f"{owner}: invalid route via address in '{' '.join(words)}'; route ignored")
                return None
            if not fam(via.version):
                return None
            kw["via"] = via
            i += 1
            continue
        if opt in _ROUTE_LOCKABLE:
            i += 1
            if i < len(item) and words[i] == "lock":
                i += 1
            i += 1
            continue
        if opt == "as":
            i += 2 if i + 1 < len(item) and words[i + 1] == "to" else 1
            i += 1
            continue
        if opt in _ROUTE_ARG:
            if i + 1 >= len(item):
                r.warn(item[i].span, f"{owner}: route option '{opt}' has no value; route ignored")
                return None
            value = item[i + 1]
            if opt in ("dev", "oif"):
                kw["dev"] = value.text
                if host is not None and host.interface_exists(value.text) is False:
                    r.host(value.span, f"{owner}: interface {value.text} of this route does not exist on this host")
            elif opt == "table":
                kw["table"] = value.text
            elif opt == "protocol":
                protocol = value.text
            elif opt == "track_group":
                if static:
                    kw["track_group"] = value.text
                else:
                    r.warn(item[i].span, f"{owner}: track_group is only valid for static routes; ignored")
            elif opt == "src":
                src = parse_ip(value.text)
                if src is None:
                    r.warn(value.span, f"{owner}: invalid route src address '{value.text}'; route ignored")
                    return None
                if not fam(src.version):
                    return None
            i += 2
            continue
        # otherwise: [to] [TYPE] destination
        if opt == "to":
            i += 1
        if i < len(item) and words[i] in _ROUTE_TYPES:
            i += 1
        if i >= len(item):
            r.warn(item[-1].span, f"{owner}: route '{' '.join(words)}' has no destination; route ignored")
            return None
        dest = _route_dest(words[i])
        if dest is False:
            r.warn(item[i].span, f"{owner}: unknown route keyword or invalid destination '{words[i]}'; route ignored")
            return None
        dest_text = words[i]
        if dest is not None:
            if not fam(dest.version):
                return None
            kw["destination"] = dest
        i += 1
    if dest_text is None:
        r.warn(item[0].span, f"{owner}: route '{' '.join(words)}' has no destination; route ignored")
        return None
    if not kw.get("no_track"):
        if protocol is not None and protocol not in ("keepalived", "18"):
            r.warn(item[0].span, f"{owner}: route {dest_text}: a tracked route must use protocol keepalived; "
                                 "protocol reset")
        if "dev" not in kw:
            r.warn(item[0].span, f"{owner}: route {dest_text} has no 'dev', so it cannot be tracked; not tracking it")
            kw["no_track"] = True
    kw["family"] = family or 4
    return m.Route(**kw)


def build_rule(
    r: _Report, host: Host | None, item: tuple[Word, ...], *, static: bool, owner: str, next_pref: dict[int, int]
) -> m.Rule | None:
    """One ``virtual_rules``/``static_rules`` line (keepalived's alloc_rule, simplified)."""
    words = [w.text for w in item]
    kw: dict = {"words": tuple(words), "span": item[0].span}
    family: int | None = None
    action = False
    i = 0
    while i < len(item):
        opt = words[i]
        if opt in ("inet", "inet6"):
            v = 6 if opt == "inet6" else 4
            if family not in (None, v):
                r.warn(item[i].span, f"{owner}: rule '{' '.join(words)}' mixes IPv4 and IPv6; rule ignored")
                return None
            family = v
            i += 1
            continue
        if opt in ("not", "no_track", "l3mdev", "nop"):
            if opt == "no_track":
                kw["no_track"] = True
            action = action or opt in ("l3mdev", "nop")
            i += 1
            continue
        if opt == "type":
            i += 1
            opt = words[i] if i < len(item) else ""
        if opt in _RULE_ACTIONS:
            action = True
            i += 1
            continue
        if opt in _RULE_ARG:
            if i + 1 >= len(item):
                r.warn(item[i].span, f"{owner}: rule option '{opt}' has no value; rule ignored")
                return None
            value = item[i + 1]
            if opt in ("from", "to"):
                a = _route_dest(value.text)
                if a is False:
                    r.warn(value.span, f"{owner}: invalid rule {opt} address '{value.text}'; rule ignored")
                    return None
                if a is not None:
                    if family not in (None, a.version):
                        r.warn(value.span, f"{owner}: rule '{' '.join(words)}' mixes IPv4 and IPv6; rule ignored")
                        return None
                    family = a.version
                    kw["from_" if opt == "from" else "to"] = a
            elif opt in ("table", "lookup"):
                kw["table"] = value.text
                action = True
            elif opt == "goto":
                action = True
            elif opt in ("preference", "order", "priority"):
                pref = parse_int(value.text)
                if pref is None or not 0 <= pref <= UINT32_MAX:
                    r.warn(value.span, f"{owner}: invalid rule preference '{value.text}'; rule ignored")
                    return None
                kw["preference"] = pref
            elif opt in ("dev", "iif", "oif"):
                kw["oif" if opt == "oif" else "iif"] = value.text
                if host is not None and host.interface_exists(value.text) is False:
                    r.host(value.span, f"{owner}: interface {value.text} for rule does not exist on this host")
            elif opt == "track_group":
                if static:
                    kw["track_group"] = value.text
            i += 2
            continue
        r.warn(item[i].span, f"{owner}: unknown rule option '{opt}'; rule ignored")
        return None
    if not action:
        r.warn(item[0].span, f"{owner}: rule '{' '.join(words)}' has no action (table, goto, nop, ...); rule ignored")
        return None
    kw["family"] = family or 4
    if "preference" not in kw:
        pref = next_pref[kw["family"]]
        next_pref[kw["family"]] = pref - 1
        kw["preference"] = pref
        r.warn(item[0].span, f"{owner}: rule has no preference; using {pref}, which is probably not what you want")
    return m.Rule(**kw)


# --------------------------------------------------------------------------- the builder


def build(
    root: Node, *, host: Host | None = None, keep: list | None = None
) -> tuple[m.Config, list[Diagnostic]]:
    """Build the model from the parser's tree. Never raises for bad input.

    ``keep``: a list that gets the builder's drafts instead of their being freed (see
    :func:`pyvrrpd.config.load.load`).
    """
    b = _Builder(host)
    config = b.run(root)
    if keep is not None:
        keep.append(b)
    return config, b.r.items


def _arg(node: Node, i: int = 1) -> str | None:
    """The text of word ``i`` of a statement, None if there is no such word.

    Values are read from ``Node.texts``; ``Node.words`` (built on first use) only
    serve for the spans of diagnostics.
    """
    texts = node.texts
    return texts[i] if len(texts) > i else None


class _ScriptUse:
    """A kept script, for the end-of-build security checks."""

    __slots__ = ("subsystem", "script", "user")

    def __init__(self, subsystem: str, script: m.Script, user: str) -> None:
        self.subsystem = subsystem  # "vrrp", "checker" or "parent": keepalived's process that runs it
        self.script = script
        self.user = user  # effective account


class _Builder:
    def __init__(self, host: Host | None) -> None:
        self.host = host
        self.ifhost = host  # None when interface checks are off (dynamic_interfaces)
        self.r = _Report()
        self.gd: m.GlobalDefs = m.GlobalDefs()
        # default script user: (user, group) from script_user, its failure, per-subsystem failures
        self.script_user: tuple[str, str | None] | None = None
        self.script_user_failed = False
        self.script_security = False
        self.default_user_failed: dict[str, bool] = {}
        self.script_uses: list[_ScriptUse] = []
        # objects referenced by name, in definition order (keepalived resolves at parse time)
        self.vrrp_scripts: dict[str, m.VrrpScript] = {}
        self.vrrp_script_defs: dict[str, tuple[int, Span]] = {}
        self.track_files: dict[str, m.TrackFile] = {}
        self.track_file_defs: dict[str, tuple[int, Span]] = {}
        self.track_processes: dict[str, m.TrackProcess] = {}
        self.track_process_defs: dict[str, tuple[int, Span]] = {}
        self.bfds: dict[str, m.BfdInstance] = {}
        self.bfd_defs: dict[str, tuple[int, Span]] = {}
        self.top_index = 0
        self.instances: list[m.VrrpInstance] = []
        self.instance_names: dict[str, Span] = {}
        self.drafts: list[_InstanceDraft] = []
        self.vmac_names: dict[str, str] = {}
        self.sync_drafts: list[_SyncDraft] = []
        self.member_of: dict[str, _SyncDraft] = {}
        self.garp_groups: list[m.GarpGroup] = []
        self.static_addresses: list[m.VirtualAddress] = []
        self.static_routes: list[m.Route] = []
        self.static_rules: list[m.Rule] = []
        self.vsgs: dict[str, m.VirtualServerGroup] = {}
        self.vs_drafts: list[_VsDraft] = []
        self.vss: list[m.VirtualServer] = []
        self.ssl: m.SslConfig | None = None
        self.next_rule_pref = {4: RULE_START_PRIORITY, 6: RULE_START_PRIORITY}
        # checker statements repeat ("connect_timeout 3"): texts -> (field, value) of each
        # one read without a message, so the next of its kind is a dict lookup
        self.common_read: dict[tuple[str, ...], tuple[str, object]] = {}

    # ------------------------------------------------------------------ driver

    def run(self, root: Node) -> m.Config:
        tops = root.children
        # keepalived reads global_defs before anything that needs a script user
        # (configs put it first); read the script settings up front.
        for node in tops:
            if node.keyword == "global_defs":
                self._prescan_script_user(node)
        for index, node in enumerate(tops):
            kw = node.keyword
            names = {
                "vrrp_script": "vrrp_script",
                "track_file": "track_file",
                "vrrp_track_file": "track_file",
                "vrrp_track_process": "vrrp_track_process",
                "bfd_instance": "bfd_instance",
            }
            if kw in names and len(node.texts) >= 2:
                store = {
                    "vrrp_script": self.vrrp_script_defs,
                    "track_file": self.track_file_defs,
                    "vrrp_track_process": self.track_process_defs,
                    "bfd_instance": self.bfd_defs,
                }[names[kw]]
                store.setdefault(node.texts[1], (index, node.span))
        for self.top_index, node in enumerate(tops):
            self._top(node)
        sync_groups = self._sync_groups()
        self._cross_instance_checks()
        self._virtual_servers()
        self._script_checks()
        return m.Config(
            global_defs=self.gd,
            vrrp_scripts=tuple(self.vrrp_scripts.values()),
            track_files=tuple(self.track_files.values()),
            track_processes=tuple(self.track_processes.values()),
            sync_groups=sync_groups,
            instances=tuple(self.instances),
            garp_groups=tuple(self.garp_groups),
            static_addresses=tuple(self.static_addresses),
            static_routes=tuple(self.static_routes),
            static_rules=tuple(self.static_rules),
            bfd_instances=tuple(self.bfds.values()),
            virtual_server_groups=tuple(self.vsgs.values()),
            virtual_servers=tuple(self.vss),
            ssl=self.ssl,
        )

    def _top(self, node: Node) -> None:
        kw = node.keyword
        if kw == "global_defs":
            self.gd = self._global_defs(node)
        elif kw == "vrrp_script":
            self._vrrp_script(node)
        elif kw in ("track_file", "vrrp_track_file"):
            self._track_file(node)
        elif kw == "vrrp_track_process":
            self._track_process(node)
        elif kw == "vrrp_sync_group":
            self._sync_group(node)
        elif kw == "vrrp_instance":
            self._instance(node)
        elif kw == "garp_group":
            self._garp_group(node)
        elif kw == "static_ipaddress":
            for item in node.items:
                a = build_address(self.r, self.ifhost, item, static=True, owner="static_ipaddress")
                if a is not None:
                    self.static_addresses.append(a)
        elif kw == "static_routes":
            for item in node.items:
                rt = build_route(self.r, self.ifhost, item, static=True, owner="static_routes")
                if rt is not None:
                    self.static_routes.append(rt)
        elif kw == "static_rules":
            for item in node.items:
                ru = build_rule(self.r, self.ifhost, item, static=True, owner="static_rules",
                                next_pref=self.next_rule_pref)
                if ru is not None:
                    self.static_rules.append(ru)
        elif kw == "linkbeat_interfaces":
            for item in node.items:
                self._host_interface(item[0], f"interface {item[0].text} in linkbeat_interfaces")
        elif kw == "interface_up_down_delays":
            for item in node.items:
                self._host_interface(item[0], f"interface {item[0].text} in interface_up_down_delays")
                self._up_down_delays(item)
        elif kw == "bfd_instance":
            self._bfd_instance(node)
        elif kw == "SSL":
            self._ssl(node)
        elif kw == "virtual_server_group":
            self._vsg(node)
        elif kw == "virtual_server":
            self._virtual_server(node)

    def _host_interface(self, word: Word, what: str) -> bool:
        """Report a host-check warning if the interface is missing; True if it may exist."""
        if self.ifhost is not None and self.ifhost.interface_exists(word.text) is False:
            self.r.host(word.span, f"{what} does not exist on this host")
            return False
        return True

    def _ifname(self, word: Word, what: str) -> str | None:
        if len(word.text) >= IFNAMSIZ:
            self.r.warn(word.span, f"{what} name '{word.text}' is longer than {IFNAMSIZ - 1} characters; ignored")
            return None
        return word.text

    def _up_down_delays(self, item: tuple[Word, ...]) -> None:
        for w in item[1:3]:
            read_timer(self.r, w, 0, 255 * SECOND, f"interface {item[0].text} up/down delay", "ignoring the delays")

    # ------------------------------------------------------------------ scripts

    def _prescan_script_user(self, gd: Node) -> None:
        for c in gd.children:
            if c.keyword == "dynamic_interfaces":
                self.ifhost = None  # keepalived accepts interfaces that appear later
            elif c.keyword == "enable_script_security":
                self.script_security = True
            elif c.keyword == "script_user" and len(c.texts) >= 2:
                user, group = c.texts[1], (c.texts[2] if len(c.texts) > 2 else None)
                self.script_user = (user, group)
                self.script_user_failed = (
                    self.host is not None and self.host.user_problem(user, group) is not None
                )

    def _default_user(self, subsystem: str, span: Span) -> str | None:
        """The account a script without its own user runs as, or None if there is none.

        keepalived: script_user if set; else keepalived_script if that user
        exists; else root, unless enable_script_security forbids it.
        """
        if self.script_user is not None:
            return None if self.script_user_failed else self.script_user[0]
        if self.host is None:
            return "root"
        if self.host.user_problem("keepalived_script", None) is None:
            return "keepalived_script"
        if not self.script_security:
            return "root"
        if not self.default_user_failed.get(subsystem):
            self.default_user_failed[subsystem] = True
            self.r.host(
                span,
                "enable_script_security is set, script_user is not and user keepalived_script "
                "does not exist on this host, so scripts without their own user cannot run",
            )
        return None

    def _command(self, node: Node, what: str, *, user_words: bool) -> tuple[list[str], str | None, str | None] | None:
        """argv and explicit user/group of a script keyword; None if there is no command."""
        cmd = _arg(node)
        if cmd is None:
            return None
        argv = split_command(cmd)
        if not argv:
            self.r.warn(node.words[1].span, f"{what}: empty command; ignored")
            return None
        user = group = None
        if user_words:
            if len(node.texts) > 2:
                user = node.texts[2]
            if len(node.texts) > 3:
                group = node.texts[3]
        elif len(node.texts) > 2:
            self.r.warn(
                node.words[2].span,
                f"{what}: words after the command are ignored; put the command and its arguments in quotes",
            )
        return argv, user, group

    def _notify_script(self, node: Node, subsystem: str, what: str) -> m.Script | None:
        """A notify-style script keyword: 'KEYWORD "command args" [user [group]]'."""
        parsed = self._command(node, what, user_words=True)
        if parsed is None:
            return None
        argv, user, group = parsed
        script = m.Script(argv=tuple(argv), user=user, group=group, span=node.span)
        if user is not None:
            problem = self.host.user_problem(user, group) if self.host is not None else None
            if problem is not None:
                self.r.host(
                    node.words[2].span,
                    f"{what}: {problem}; the script is ignored (words after the command are the user "
                    "and group to run it as; quote the command to pass arguments)",
                )
                return None
            effective = user
        else:
            effective = self._default_user(subsystem, node.span)
            if effective is None:
                self.r.host(node.span, f"{what}: no user to run {argv[0]} as on this host; the script is ignored")
                return None
        self.script_uses.append(_ScriptUse(subsystem, script, effective))
        return script

    def _script_checks(self) -> None:
        """Host problems of each kept script, and keepalived's SECURITY VIOLATION check."""
        if self.host is not None:
            for use in self.script_uses:
                problem = self.host.script_problem(use.script.argv[0], use.user)
                if problem is not None:
                    self.r.host(use.script.span, problem)
        if self.script_security:
            return
        names = {"vrrp": "VRRP", "checker": "checker", "parent": "startup/shutdown"}
        for subsystem in ("parent", "vrrp", "checker"):
            root_uses = [u for u in self.script_uses if u.subsystem == subsystem and u.user == "root"]
            if root_uses:
                unsure = "" if self.host is not None or self.script_user else " (unless user keepalived_script exists)"
                self.r.warn(
                    root_uses[0].script.span,
                    f"SECURITY: {names[subsystem]} scripts run as root{unsure} but enable_script_security "
                    "is not set; keepalived reports a security violation",
                    "set enable_script_security (and script_user) in global_defs",
                )

    # ------------------------------------------------------------------ global_defs

    def _global_defs(self, node: Node) -> m.GlobalDefs:
        r = self.r
        g: dict = {"span": node.span}
        emails: list[str] = []
        nftables_seen = False
        lower_prio_delay = lower_prio_repeat = None
        sync_daemon_seen = False
        for c in node.children:
            kw, a = c.keyword, _arg(c)
            if kw == "router_id" and a is not None:
                g["router_id"] = a
            elif kw == "notification_email":
                words = _words(c.items)
                if not words:
                    r.warn(c.end or c.span, "notification_email block is empty")
                emails.extend(w.text for w in words)
            elif kw == "notification_email_from" and a is not None:
                g["notification_email_from"] = a
            elif kw == "smtp_server" and a is not None:
                g["smtp_server"] = a
                if parse_ip(a) is None and self.host is not None and self.host.name_resolves(a) is False:
                    r.host(c.words[1].span, f"smtp_server {a} does not resolve on this host, so no email can be sent")
                port = _arg(c, 2)
                if port is not None:
                    p = parse_port(port)
                    if p is None or p == 0:
                        r.warn(c.words[2].span, f"smtp_server port '{port}' is invalid; smtp_server ignored")
                        g.pop("smtp_server")
                    else:
                        g["smtp_port"] = p
            elif kw == "smtp_helo_name" and a is not None:
                g["smtp_helo_name"] = a
            elif kw == "smtp_connect_timeout" and a is not None:
                v = int_arg(r, c, 0, UINT32_MAX // SECOND, "smtp_connect_timeout", "using 30s")
                if v == 0:
                    r.warn(c.words[1].span, "smtp_connect_timeout must be greater than 0; using 1s")
                    v = 1
                if v is not None:
                    g["smtp_connect_timeout_us"] = v * SECOND
            elif kw in ("smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker", "checker_log_all_failures"):
                v = read_bool(r, c, kw)
                if v is not None:
                    g[kw] = v
            elif kw == "vrrp_version" and a is not None:
                v = int_arg(r, c, 2, 3, "vrrp_version", "using 2")
                if v is not None:
                    g["vrrp_version"] = v
            elif kw in ("vrrp_mcast_group4", "vrrp_mcast_group6") and a is not None:
                ip = parse_ip(a)
                version = 4 if kw.endswith("4") else 6
                if ip is None or ip.version != version or not ip.is_multicast:
                    r.warn(c.words[1].span, f"{kw} '{a}' is not an IPv{version} multicast address; using the default")
                else:
                    g[kw] = ip
            elif (
                kw in ("vrrp_garp_master_delay", "vrrp_garp_master_refresh", "vrrp_garp_lower_prio_delay")
                and a is not None
            ):
                v = int_arg(r, c, 0, UINT32_MAX // SECOND, kw, "ignoring it")
                if v is not None:
                    field_name = {
                        "vrrp_garp_master_delay": "vrrp_garp_master_delay_us",
                        "vrrp_garp_master_refresh": "vrrp_garp_master_refresh_us",
                        "vrrp_garp_lower_prio_delay": "vrrp_garp_lower_prio_delay_us",
                    }[kw]
                    g[field_name] = v * SECOND
                    if kw == "vrrp_garp_lower_prio_delay":
                        lower_prio_delay = v * SECOND
            elif kw in ("vrrp_garp_master_repeat", "vrrp_garp_master_refresh_repeat") and a is not None:
                v = int_arg(r, c, 0, UINT32_MAX, kw, "ignoring it")
                if v == 0:
                    r.warn(c.words[1].span, f"{kw} must be greater than 0; using 1")
                    v = 1
                if v is not None:
                    g[kw] = v
            elif kw == "vrrp_garp_lower_prio_repeat" and a is not None:
                v = int_arg(r, c, 0, 2**31 - 1, kw, "ignoring it")
                if v is not None:
                    lower_prio_repeat = g[kw] = v
            elif kw in ("vrrp_garp_interval", "vrrp_gna_interval") and a is not None:
                v = timer_arg(r, c, 1, UINT32_MAX, kw, "ignoring it")
                if v is not None:
                    g[kw + "_us"] = v
            elif kw in ("log_unknown_vrids", "v3_checksum_as_v2"):
                g[kw] = True
                if kw == "v3_checksum_as_v2":
                    r.note(c.span, _NEWER_KEYWORD.format(kw))
            elif kw == "vrrp_min_garp":
                if read_bool(r, c, kw):
                    g["vrrp_min_garp"] = True
                    if g.get("vrrp_garp_master_repeat", 5) == 5:
                        g["vrrp_garp_master_repeat"] = 1
                    if g.get("vrrp_garp_master_refresh_repeat", 1) == 1:
                        g["vrrp_garp_master_refresh_repeat"] = 0
                    if g.get("vrrp_garp_master_delay_us", 5 * SECOND) == 5 * SECOND:
                        g["vrrp_garp_master_delay_us"] = 0
            elif kw == "vrrp_down_timer_adverts" and a is not None:
                v = int_arg(r, c, 1, 100, kw, "using 3")
                if v is not None:
                    g[kw] = v
            elif kw in ("vrrp_lower_prio_no_advert", "vrrp_higher_prio_send_advert", "vrrp_notify_priority_changes"):
                v = read_bool(r, c, kw)
                if v is not None:
                    g[kw] = v
            elif kw in ("vrrp_strict", "vrrp_check_unicast_src", "vrrp_skip_check_adv_addr", "lvs_flush"):
                g[kw] = True
            elif kw == "vrrp_startup_delay" and a is not None:
                v = timer_arg(r, c, 0, 3600 * SECOND, kw, "ignoring it")
                if v is not None:
                    g["vrrp_startup_delay_us"] = v
            elif kw == "dynamic_interfaces":
                g["dynamic_interfaces"] = True
                if a is not None and a != "allow_if_changes":
                    r.warn(c.words[1].span, f"unknown dynamic_interfaces option '{a}'; ignored")
            elif kw == "default_interface" and a is not None:
                g["default_interface"] = a
                self._host_interface(c.words[1], f"default_interface {a}")
            elif kw == "script_user" and a is not None:
                g["script_user"] = a
                g["script_group"] = c.texts[2] if len(c.texts) > 2 else None
                if self.script_user_failed and self.host is not None:
                    problem = self.host.user_problem(a, g["script_group"])
                    r.host(c.words[1].span, f"script_user: {problem}; scripts without their own user cannot run")
            elif kw == "enable_script_security":
                g["enable_script_security"] = True
            elif kw in ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo") and a is not None:
                g[kw] = a
            elif kw in ("notify_fifo_script", "vrrp_notify_fifo_script", "lvs_notify_fifo_script"):
                subsystem = {"vrrp": "vrrp", "lvs_": "checker"}.get(kw[:4], "vrrp")
                g[kw] = self._notify_script(c, subsystem, kw)
            elif kw in ("startup_script", "shutdown_script"):
                if a is None:
                    r.warn(c.span, f"{kw} has no command; ignored")
                else:
                    g[kw] = self._notify_script(c, "parent", kw)
            elif kw in ("startup_script_timeout", "shutdown_script_timeout") and a is not None:
                v = int_arg(r, c, 1, 1000, kw, "using 10s")
                if v is not None:
                    g[kw + "_us"] = v * SECOND
            elif kw in ("lvs_flush_on_stop", "lvs_flush_onstop"):
                if a is None:
                    g["lvs_flush_on_stop"] = "FULL"
                elif a == "VS":
                    g["lvs_flush_on_stop"] = "VS"
                else:
                    r.warn(c.words[1].span, f"unknown lvs_flush_on_stop type '{a}'; ignored")
            elif kw == "lvs_sync_daemon":
                if sync_daemon_seen:
                    r.warn(c.span, "lvs_sync_daemon is given twice; this one is ignored")
                    continue
                sync_daemon_seen = True
                self._lvs_sync_daemon(c)
                g["lvs_sync_daemon"] = tuple(w.text for w in c.words[1:])
            elif kw in ("vrrp_rt_priority", "checker_rt_priority", "bfd_rt_priority") and a is not None:
                v = parse_int(a)
                if v is None:
                    r.warn(c.words[1].span, f"{kw} '{a}' is not a base-10 number; ignored")
                elif not 1 <= v <= RT_PRIORITY_MAX:
                    clamp = min(max(v, 1), RT_PRIORITY_MAX)
                    r.warn(c.words[1].span, f"{kw} {v} is outside [1, {RT_PRIORITY_MAX}]; using {clamp}")
            elif kw in ("vrrp_priority", "checker_priority", "bfd_priority") and a is not None:
                int_arg(r, c, -20, 19, kw, "ignoring it")
            elif kw in ("nftables", "vrrp_iptables"):
                if nftables_seen:
                    r.warn(c.span, f"{kw}: a firewall table is already configured; ignored")
                nftables_seen = True
                if kw == "vrrp_iptables":
                    r.warn(
                        c.span,
                        "vrrp_iptables: keepalived 2.2.7 (Debian build) has no iptables support and uses "
                        "nftables instead; use 'nftables'",
                    )
            elif kw in ("vrrp_garp_extra_if", "vrrp_vmac_garp_intvl"):
                self._garp_extra_if(c, 1)
        if lower_prio_delay is None:
            g["vrrp_garp_lower_prio_delay_us"] = g.get("vrrp_garp_master_delay_us", 5 * SECOND)
        if lower_prio_repeat is None:
            g["vrrp_garp_lower_prio_repeat"] = g.get("vrrp_garp_master_repeat", 5)
        g["notification_email"] = tuple(emails)
        return m.GlobalDefs(**g)

    def _lvs_sync_daemon(self, c: Node) -> None:
        r, words = self.r, c.words
        if len(words) >= 2:
            self._ifname(words[1], "lvs_sync_daemon interface")
        limits = {"id": (0, 255), "maxlen": (1, 65535 - 20 - 8), "port": (1, 65535), "ttl": (1, 255)}
        i = 2
        while i < len(words):
            opt = words[i].text
            if opt in limits or opt in ("inst", "group"):
                if i + 1 >= len(words):
                    r.warn(words[i].span, f"lvs_sync_daemon: no value for '{opt}'; ignored")
                    break
                v = words[i + 1]
                if opt in limits:
                    read_int(r, v, *limits[opt], f"lvs_sync_daemon {opt}", "ignoring it")
                elif opt == "group":
                    ip = parse_ip(v.text)
                    if ip is None or not ip.is_multicast:
                        r.warn(v.span, f"lvs_sync_daemon group '{v.text}' is not a multicast address; ignored")
                i += 2
            elif i in (2, 3):  # legacy: lvs_sync_daemon IF VRRP_INSTANCE [SYNC_ID]
                i += 1
            else:
                r.warn(words[i].span, f"unknown lvs_sync_daemon option '{opt}'; ignored")
                i += 1

    def _garp_extra_if(self, c: Node, minimum: int) -> int | None:
        delay = None
        for w in c.words[1:]:
            if w.text == "all":
                continue
            delay = read_int(self.r, w, minimum, 86400, c.keyword, "ignoring it")
            if delay is None:
                return None
        if delay is None:
            self.r.warn(c.span, f"{c.keyword} has no interval; ignored")
        return None if delay is None else delay * SECOND

    # ------------------------------------------------------------------ tracked objects

    def _duplicate(self, node: Node, kind: str, seen: dict) -> bool:
        if len(node.texts) < 2:
            return True
        name = node.texts[1]
        if name in seen:
            self.r.warn(node.span, f"{kind} {name} is defined twice; this definition is ignored")
            return True
        return False

    def _vrrp_script(self, node: Node) -> None:
        if self._duplicate(node, "vrrp_script", self.vrrp_scripts):
            return
        r, name = self.r, node.texts[1]
        kw: dict = {"name": name, "span": node.span}
        argv: list[str] | None = None
        user = group = None
        removed = False
        timeout_set = False
        for c in node.children:
            a = _arg(c)
            if c.keyword == "script":
                parsed = self._command(c, f"vrrp_script {name}", user_words=False)
                if parsed is not None:
                    argv = parsed[0]
            elif c.keyword in ("interval", "timeout") and a is not None:
                v = int_arg(r, c, 0, UINT32_MAX // SECOND, f"vrrp_script {name} {c.keyword}", "ignoring it")
                if v == 0:
                    r.warn(c.words[1].span, f"vrrp_script {name} {c.keyword} must be greater than 0; using 1s")
                    v = 1
                if v is not None:
                    kw[c.keyword + "_us"] = v * SECOND
                    timeout_set = timeout_set or c.keyword == "timeout"
            elif c.keyword == "weight" and a is not None:
                v = int_arg(r, c, -253, 253, f"vrrp_script {name} weight", "using 0")
                kw["weight"] = 0 if v is None else v
                rev = _arg(c, 2)
                if rev is not None:
                    if rev == "reverse":
                        kw["weight_reverse"] = True
                    else:
                        r.warn(c.words[2].span, f"vrrp_script {name}: unknown weight option '{rev}'; ignored")
            elif c.keyword in ("rise", "fall") and a is not None:
                v = int_arg(r, c, 1, 2**31 - 1, f"vrrp_script {name} {c.keyword}", "using 1")
                kw[c.keyword] = 1 if v is None else v
            elif c.keyword == "user" and a is not None:
                user, group = a, (c.texts[2] if len(c.texts) > 2 else None)
                problem = self.host.user_problem(user, group) if self.host is not None else None
                removed = problem is not None
                if removed:
                    r.host(c.words[1].span, f"vrrp_script {name}: {problem}; the script cannot run")
            elif c.keyword == "init_fail":
                kw["init_fail"] = True
        end = node.end or node.span
        if not argv:
            r.warn(end, f"vrrp_script {name} has no 'script'; it is removed")
            return
        if removed:
            return
        effective = user
        if user is None:
            effective = self._default_user("vrrp", end)
            if effective is None:
                r.host(end, f"vrrp_script {name}: no user to run it as on this host; it is removed")
                return
        if not timeout_set:
            kw["timeout_us"] = kw.get("interval_us", SECOND)
        kw["script"] = m.Script(argv=tuple(argv), user=user, group=group, span=node.span)
        self.script_uses.append(_ScriptUse("vrrp", kw["script"], effective))
        self.vrrp_scripts[name] = m.VrrpScript(**kw)

    def _track_file(self, node: Node) -> None:
        if self._duplicate(node, "track_file", self.track_files):
            return
        r, name = self.r, node.texts[1]
        kw: dict = {"name": name, "span": node.span}
        for c in node.children:
            a = _arg(c)
            if c.keyword == "file" and a is not None:
                kw["path"] = a
            elif c.keyword == "weight" and a is not None:
                v = int_arg(r, c, -254, 254, f"track_file {name} weight", "using 1")
                if v is not None:
                    kw["weight"] = v
                rev = _arg(c, 2)
                if rev is not None:
                    if rev == "reverse":
                        kw["weight_reverse"] = True
                    else:
                        r.warn(c.words[2].span, f"track_file {name}: unknown weight option '{rev}'; ignored")
            elif c.keyword == "init_file":
                kw["init_value"] = 0
                for w in c.words[1:]:
                    if w.text == "overwrite":
                        kw["init_overwrite"] = True
                    else:
                        v = read_int(r, w, -(2**31), 2**31 - 1, f"track_file {name} init_file value", "using 0")
                        kw["init_value"] = 0 if v is None else v
        if "path" not in kw:
            r.warn(node.end or node.span, f"track_file {name} has no 'file'; it is ignored")
            return
        self.track_files[name] = m.TrackFile(**kw)

    def _track_process(self, node: Node) -> None:
        if self._duplicate(node, "vrrp_track_process", self.track_processes):
            return
        r, name = self.r, node.texts[1]
        kw: dict = {"name": name, "span": node.span}
        for c in node.children:
            a = _arg(c)
            if c.keyword == "process" and a is not None:
                if "process" in kw:
                    r.warn(c.span, f"vrrp_track_process {name}: process already set; ignored")
                    continue
                kw["process"] = a
                if len(c.texts) > 2:
                    kw["params"] = tuple(w.text for w in c.words[2:])
                    kw.setdefault("param_match", "exact")
                    kw["full_command"] = True
            elif c.keyword == "param_match":
                if a is None:
                    kw["param_match"] = "exact"
                elif a in ("initial", "partial"):
                    kw["param_match"] = a
                else:
                    r.warn(c.words[1].span, f"vrrp_track_process {name}: invalid param_match '{a}'; ignored")
                    continue
                kw["full_command"] = True
            elif c.keyword == "weight" and a is not None:
                v = int_arg(r, c, -254, 254, f"vrrp_track_process {name} weight", "ignoring it")
                if v is not None:
                    kw["weight"] = v
                    rev = _arg(c, 2)
                    if rev is not None and rev == "reverse":
                        kw["weight_reverse"] = True
                    elif rev is not None:
                        r.warn(c.words[2].span, f"vrrp_track_process {name}: unknown weight option '{rev}'; ignored")
            elif c.keyword == "quorum" and a is not None:
                v = int_arg(r, c, 1, 65535, f"vrrp_track_process {name} quorum", "ignoring it")
                if v is not None:
                    kw["quorum"] = v
            elif c.keyword == "quorum_max" and a is not None:
                v = int_arg(r, c, 0, 65535, f"vrrp_track_process {name} quorum_max", "ignoring it")
                if v is not None:
                    kw["quorum_max"] = v
            elif c.keyword in ("delay", "terminate_delay", "fork_delay") and a is not None:
                v = timer_arg(r, c, 1, 3600 * SECOND, f"vrrp_track_process {name} {c.keyword}", "ignoring it")
                if v is not None:
                    if c.keyword != "fork_delay":
                        kw["terminate_delay_us"] = v
                    if c.keyword != "terminate_delay":
                        kw["fork_delay_us"] = v
            elif c.keyword == "full_command":
                kw["full_command"] = True
        if "process" not in kw:
            r.warn(node.end or node.span, f"vrrp_track_process {name} has no 'process'; it is ignored")
            return
        self.track_processes[name] = m.TrackProcess(**kw)

    def _bfd_instance(self, node: Node) -> None:
        if self._duplicate(node, "bfd_instance", self.bfds):
            return
        r, name = self.r, node.texts[1]
        kw: dict = {"name": name, "span": node.span}
        for c in node.children:
            a, k = _arg(c), c.keyword
            if k in ("neighbor_ip", "neighbour_ip", "source_ip") and a is not None:
                ip = parse_ip(a)
                if ip is None:
                    r.warn(c.words[1].span, f"bfd_instance {name}: '{a}' is not a valid IP address; ignored")
                else:
                    kw["source_ip" if k == "source_ip" else "neighbor_ip"] = ip
            elif k in ("min_rx", "min_tx", "idle_tx") and a is not None:
                v = int_arg(r, c, 1, UINT32_MAX // 1000, f"bfd_instance {name} {k} (ms)", "using the default")
                if v is not None:
                    kw[k + "_us"] = v * 1000
            elif k == "multiplier" and a is not None:
                v = int_arg(r, c, 1, 255, f"bfd_instance {name} multiplier", "using 5")
                if v is not None:
                    kw["multiplier"] = v
            elif k in ("ttl", "hoplimit", "max_hops") and a is not None:
                v = int_arg(r, c, 0 if k == "max_hops" else 1, 255, f"bfd_instance {name} {k}", "ignoring it")
                if v is not None:
                    kw["max_hops" if k == "max_hops" else "ttl"] = v
            elif k == "weight" and a is not None:
                v = int_arg(r, c, -253, 253, f"bfd_instance {name} weight", "using 0")
                if v is not None:
                    kw["weight"] = v
            elif k == "passive":
                kw["passive"] = True
            elif k in ("vrrp", "checker"):
                kw.setdefault("vrrp", False)
                kw.setdefault("checker", False)
                kw[k] = True
        ip = kw.get("neighbor_ip")
        if ip is None:
            r.warn(node.end or node.span, f"bfd_instance {name} has no neighbor_ip; the instance is disabled")
            return
        src = kw.get("source_ip")
        if src is not None and src.version != ip.version:
            r.warn(node.span, f"bfd_instance {name}: source_ip and neighbor_ip are different IP versions; "
                              "source ignored")
            del kw["source_ip"]
        self.bfds[name] = m.BfdInstance(**kw)

    def _garp_group(self, node: Node) -> None:
        r = self.r
        kw: dict = {"span": node.span}
        interfaces: list[str] = []
        for c in node.children:
            a = _arg(c)
            if c.keyword in ("garp_interval", "gna_interval") and a is not None:
                v = timer_arg(r, c, 0, 2**31 - 1, f"garp_group {c.keyword}", "ignoring it")
                if v is not None:
                    kw[c.keyword + "_us"] = v
            elif c.keyword == "interface" and a is not None:
                if self._host_interface(c.words[1], f"interface {a} in garp_group"):
                    interfaces.append(a)
            elif c.keyword == "interfaces":
                words = _words(c.items)
                if not words:
                    r.warn(c.end or c.span, "garp_group interfaces block is empty")
                for w in words:
                    if self.ifhost is not None and self.ifhost.interface_exists(w.text) is False:
                        r.host(c.end or w.span, f"interface {w.text} in garp_group does not exist on this host")
                    interfaces.append(w.text)
        if "garp_interval_us" not in kw and "gna_interval_us" not in kw:
            r.warn(node.end or node.span, "garp_group has neither garp_interval nor gna_interval; it is removed")
            return
        kw["interfaces"] = tuple(interfaces)
        self.garp_groups.append(m.GarpGroup(**kw))

    def _ssl(self, node: Node) -> None:
        if self.ssl is not None:
            self.r.warn(node.span, "SSL block given twice; this one replaces the first")
        kw: dict = {"span": node.span}
        for c in node.children:
            a = _arg(c)
            if c.keyword in ("password", "ca", "certificate", "key") and a is not None:
                kw[c.keyword] = a
        self.ssl = m.SslConfig(**kw)

    # ------------------------------------------------------------------ track_* value blocks

    def _tracks(self, node: Node, owner: str, kind: str) -> tuple[m.Track, ...]:
        """One track_interface/track_script/track_file/track_process/track_bfd block."""
        r = self.r
        out: list[m.Track] = []
        label = "track_" + kind
        for item in node.items:
            name_w = item[0]
            name = name_w.text
            if kind == "interface":
                self._host_interface(name_w, f"{owner}: tracked interface {name}")
                weight, reverse, limit = 0, False, 254
            else:
                found, defs = {
                    "script": (self.vrrp_scripts, self.vrrp_script_defs),
                    "file": (self.track_files, self.track_file_defs),
                    "process": (self.track_processes, self.track_process_defs),
                    "bfd": (self.bfds, self.bfd_defs),
                }[kind]
                obj = found.get(name)
                if obj is None and kind == "bfd" and name in defs and defs[name][0] < self.top_index:
                    obj = m.Track(name=name, span=name_w.span)  # keepalived tracks even a disabled bfd_instance
                if obj is None:
                    defined = defs.get(name)
                    if defined is None:
                        why = "is not defined"
                    elif defined[0] > self.top_index:
                        why = f"is defined later ({defined[1]}); keepalived needs it defined before use"
                    else:
                        why = "was removed (see its own diagnostics)"
                    r.warn(name_w.span, f"{owner}: {label} {name} {why}; ignored")
                    continue
                weight = getattr(obj, "weight", 0)
                reverse = getattr(obj, "weight_reverse", False)
                limit = 253 if kind == "bfd" else 254
            if any(t.name == name for t in out):
                r.warn(name_w.span, f"{owner}: {label} {name} is listed twice; ignored")
                continue
            if len(item) >= 2:
                if item[1].text != "weight":
                    r.warn(item[1].span, f"{owner}: unknown {label} option '{item[1].text}'; {name} ignored")
                    continue
                if len(item) == 2:
                    r.warn(item[1].span, f"{owner}: {label} {name} has 'weight' without a value; ignored")
                    continue
                v = read_int(r, item[2], -limit, limit, f"{owner}: {label} {name} weight",
                             "using 0" if kind == "interface" else f"using {weight}")
                if v is not None:
                    if abs(v) == 254 and kind in ("interface", "script"):
                        r.warn(item[2].span, f"{owner}: {label} {name} weight {v} is not allowed; "
                                             f"using {v // 254 * 253}")
                        v = v // 254 * 253
                    weight = v
                elif kind == "interface":
                    weight = 0
                if len(item) >= 4:
                    opt = item[3].text
                    if opt == "reverse" or (opt == "noreverse" and kind != "interface"):
                        reverse = opt == "reverse"
                    else:
                        r.warn(item[3].span, f"{owner}: unknown {label} {name} weight option '{opt}'; ignored")
            out.append(m.Track(name=name, weight=weight, reverse=reverse, span=name_w.span))
        return tuple(out)

    # ------------------------------------------------------------------ vrrp_instance: parsing

    def _instance(self, node: Node) -> None:
        r = self.r
        if len(node.texts) != 2:
            r.error(node.span, "vrrp_instance needs exactly one name; this block is ignored")
            return
        name = node.texts[1]
        if name in self.instance_names:
            r.error(node.span, f"vrrp_instance {name} is already defined ({self.instance_names[name]}); "
                               "this definition is ignored")
            return
        self.instance_names[name] = node.span
        d = _InstanceDraft(name, node, f"vrrp_instance {name}")
        for c in node.children:
            self._instance_keyword(d, c)
        self._instance_end(d)
        self.drafts.append(d)

    def _set_family(self, d: "_InstanceDraft", version: int, span: Span, what: str) -> bool:
        if d.family is None:
            d.family = version
            return True
        if d.family != version:
            self.r.warn(span, f"{d.owner}: {what} is IPv{version} but the instance is IPv{d.family}; ignored")
            return False
        return True

    def _instance_keyword(self, d: "_InstanceDraft", c: Node) -> None:
        r, kw, a, k = self.r, d.kw, _arg(c), c.keyword
        owner = d.owner
        if k == "state" and a is not None:
            if a == "MASTER":
                d.state = m.State.MASTER
            elif a == "BACKUP":
                if d.state is m.State.MASTER:
                    r.warn(c.words[1].span, f"{owner}: state was already set to MASTER; BACKUP ignored")
                else:
                    d.state = m.State.BACKUP
            else:
                r.warn(c.words[1].span,
                       f"{owner}: unknown state '{a}' (only MASTER or BACKUP, upper case); using BACKUP")
                d.state = m.State.BACKUP
        elif k == "interface" and a is not None:
            ifname = self._ifname(c.words[1], f"{owner}: interface")
            if ifname is not None:
                kw["interface"] = ifname
                d.interface_missing = not self._host_interface(c.words[1], f"interface {ifname} of {owner}")
        elif k == "virtual_router_id" and a is not None:
            vrid = parse_int(a)
            if vrid is None or not 1 <= vrid <= 255:
                r.error(c.words[1].span, f"{owner}: virtual_router_id '{a}' is invalid (must be 1-255); "
                                "the instance cannot run")
                d.vrid_bad = True
            else:
                kw["vrid"] = vrid
        elif k == "priority" and a is not None:
            v = int_arg(r, c, 1, 255, f"{owner}: priority", "using the default 100")
            d.priority = m.DEFAULT_PRIORITY if v is None else v
        elif k == "advert_int" and a is not None:
            v = timer_arg(r, c, SECOND // 100, 255 * SECOND, f"{owner}: advert_int", "using 1s")
            if v is not None:
                kw["advert_int_us"] = v
        elif k == "version" and a is not None:
            v = int_arg(r, c, 2, 3, f"{owner}: version", "ignoring it")
            if v is not None:
                if (d.version is not None and d.version != v) or (v == 2 and d.family == 6):
                    r.warn(c.words[1].span, f"{owner}: version {v} conflicts with the version already configured "
                                   f"or implied ({d.version or 3}); ignored")
                else:
                    d.version = v
        elif k == "native_ipv6":
            if d.family == 4:
                r.warn(c.span, f"{owner}: native_ipv6 with IPv4 addresses; ignored")
            else:
                d.family, d.version = 6, 3
        elif k == "virtual_ipaddress":
            for item in c.items:
                vip = build_address(r, self.ifhost, item, static=False, owner=d.owner)
                if vip is not None and self._set_family(d, vip.address.version, vip.span, f"address {item[0].text}"):
                    d.vips.append(vip)
        elif k == "virtual_ipaddress_excluded":
            for item in c.items:
                vip = build_address(r, self.ifhost, item, static=False, owner=d.owner)
                if vip is not None:
                    d.evips.append(vip)
        elif k == "virtual_routes":
            for item in c.items:
                rt = build_route(r, self.ifhost, item, static=False, owner=d.owner)
                if rt is not None:
                    d.routes.append(rt)
        elif k == "virtual_rules":
            for item in c.items:
                ru = build_rule(r, self.ifhost, item, static=False, owner=d.owner, next_pref=self.next_rule_pref)
                if ru is not None:
                    d.rules.append(ru)
        elif k == "unicast_peer":
            d.unicast_configured = True
            for item in c.items:
                self._unicast_peer(d, item)
        elif k in ("unicast_src_ip", "mcast_src_ip") and a is not None:
            if k == "unicast_src_ip":
                d.unicast_configured = True
            ip = parse_ip(a)
            if ip is None:
                r.warn(c.words[1].span, f"{owner}: {k} '{a}' is not a valid IP address; ignored")
            elif self._set_family(d, ip.version, c.words[1].span, f"{k} {a}"):
                kw["src_ip"] = ip
        elif k == "mcast_dst_ip" and a is not None:
            ip = parse_ip(a)
            if ip is None:
                r.warn(c.words[1].span, f"{owner}: mcast_dst_ip '{a}' is not a valid IP address; ignored")
            elif not ip.is_multicast or (ip.version == 6 and ip.packed[1] & 0x0F != 2):
                scope = " link-local" if ip.version == 6 else ""
                r.warn(c.words[1].span, f"{owner}: mcast_dst_ip {a} is not a{scope} multicast address; ignored")
            elif self._set_family(d, ip.version, c.words[1].span, f"mcast_dst_ip {a}"):
                kw["mcast_dst_ip"] = ip
        elif k == "unicast_ttl" and a is not None:
            v = int_arg(r, c, 0, 255, f"{owner}: unicast_ttl", "ignoring it")
            if v is not None:
                kw["unicast_ttl"] = v
        elif k == "unicast_fault_no_peer":
            d.unicast_configured = True
            kw["unicast_fault_no_peer"] = True
        elif k == "check_unicast_src":
            d.unicast_configured = True
            kw["check_unicast_src"] = True
        elif k == "old_unicast_checksum":
            d.unicast_configured = True
            arg = c.words[1].text if len(c.words) > 1 else None
            kw["old_unicast_checksum"] = arg != "never"
        elif k == "v3_checksum_as_v2":
            r.note(c.span, _NEWER_KEYWORD.format(k))
            v = read_bool(r, c, k) if len(c.words) > 1 else True
            if v is not None:
                kw["v3_checksum_as_v2"] = v
        elif k == "track_src_ip":
            kw["track_src_ip"] = True
        elif k == "nopreempt":
            d.nopreempt = True
        elif k == "preempt":
            d.nopreempt = False
        elif k == "preempt_delay" and a is not None:
            v = timer_arg(r, c, 0, 1000 * SECOND, f"{owner}: preempt_delay", "using 0")
            d.preempt_delay_us = 0 if v is None else v
        elif k in ("accept", "no_accept"):
            d.accept = k == "accept"
        elif k == "skip_check_adv_addr":
            v = read_bool(r, c, f"{owner}: skip_check_adv_addr")
            if v is not None:
                kw["skip_check_adv_addr"] = v
        elif k == "strict_mode":
            v = read_bool(r, c, f"{owner}: strict_mode")
            if v is not None:
                d.strict = v
        elif k in ("dont_track_primary", "promote_secondaries", "use_vmac_addr", "vmac_xmit_base"):
            kw[k] = True
        elif k == "debug" and a is not None:
            v = int_arg(r, c, 0, 4, f"{owner}: debug", "ignoring it")
            if v is not None:
                kw["debug"] = v
        elif k == "kernel_rx_buf_size" and a is not None:
            v = int_arg(r, c, 0, UINT32_MAX, f"{owner}: kernel_rx_buf_size", "ignoring it")
            if v is not None:
                kw["kernel_rx_buf_size"] = v
        elif k in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted", "notify",
                   "notify_master_rx_lower_pri"):
            if k in kw:
                r.warn(c.span, f"{owner}: {k} is already given; ignored")
            elif a is not None:
                kw[k] = self._notify_script(c, "vrrp", f"{owner}: {k}")
        elif k in ("smtp_alert", "notify_priority_changes"):
            v = read_bool(r, c, f"{owner}: {k}")
            if v is not None:
                kw[k] = v
        elif k in ("garp_master_delay", "garp_lower_prio_delay", "garp_master_refresh") and a is not None:
            v = int_arg(r, c, 0, UINT32_MAX // SECOND, f"{owner}: {k}", "ignoring it")
            if v is not None:
                d.garp[k + "_us"] = v * SECOND
        elif k in ("garp_master_repeat", "garp_master_refresh_repeat", "garp_lower_prio_repeat") and a is not None:
            v = int_arg(r, c, 0, 2**31 - 1, f"{owner}: {k}", "ignoring it")
            if v == 0 and k != "garp_lower_prio_repeat":
                r.warn(c.words[1].span, f"{owner}: {k} must be greater than 0; using 1")
                v = 1
            if v is not None:
                d.garp[k] = v
        elif k == "down_timer_adverts" and a is not None:
            v = int_arg(r, c, 1, 100, f"{owner}: down_timer_adverts", "using the global value")
            if v is not None:
                kw["down_timer_adverts"] = v
        elif k in ("garp_extra_if", "vmac_garp_intvl"):
            v = self._garp_extra_if(c, 0)
            if v is not None:
                kw["garp_extra_if_us"] = v
        elif k in ("lower_prio_no_advert", "higher_prio_send_advert"):
            v = read_bool(r, c, f"{owner}: {k}")
            if v is not None:
                d.adverts[k] = v
        elif k == "use_vmac":
            self._use_vmac(d, c)
        elif k == "authentication":
            for ac in c.children:
                aa = _arg(ac)
                if ac.keyword == "auth_type" and aa is not None:
                    if aa in ("PASS", "AH"):
                        d.auth_type = m.AuthType(aa)
                    else:
                        r.warn(ac.words[1].span, f"{owner}: unknown auth_type '{aa}' (PASS or AH); ignored")
                elif ac.keyword == "auth_pass" and aa is not None:
                    d.auth_pass = aa
                    if len(aa) > 8:
                        r.warn(ac.words[1].span, f"{owner}: auth_pass is longer than 8 characters; "
                                        f"only the first 8 are used")
                        d.auth_pass = aa[:8]
        elif k == "track_interface":
            d.tracks["track_interfaces"] += self._tracks(c, owner, "interface")
        elif k == "track_script":
            d.tracks["track_scripts"] += self._tracks(c, owner, "script")
        elif k == "track_file":
            d.tracks["track_files"] += self._tracks(c, owner, "file")
        elif k == "track_process":
            d.tracks["track_processes"] += self._tracks(c, owner, "process")
        elif k == "track_bfd":
            d.tracks["track_bfds"] += self._tracks(c, owner, "bfd")

    def _unicast_peer(self, d: "_InstanceDraft", item: tuple[Word, ...]) -> None:
        r = self.r
        ip = parse_ip(item[0].text)
        if ip is None:
            r.warn(item[0].span, f"{d.owner}: unicast peer '{item[0].text}' is not a valid IP address; ignored")
            return
        if not self._set_family(d, ip.version, item[0].span, f"unicast peer {item[0].text}"):
            return
        peer: dict = {"address": ip, "span": item[0].span}
        i = 1
        while i < len(item):
            opt = item[i].text
            if i + 1 >= len(item):
                r.warn(item[i].span, f"{d.owner}: unicast peer option '{opt}' has no value; ignored")
                break
            if opt not in ("min_ttl", "max_ttl"):
                r.warn(item[i].span, f"{d.owner}: unknown unicast_peer option '{opt}'; rest of line ignored")
                break
            v = read_int(r, item[i + 1], 0, 255, f"{d.owner}: unicast peer {opt}", "ignoring it")
            if v is not None:
                peer[opt] = v
                d.kw["check_unicast_src"] = True
            i += 2
        if peer.get("min_ttl", 0) > peer.get("max_ttl", 255):
            r.warn(item[0].span, f"{d.owner}: unicast peer {ip}: min_ttl > max_ttl, so every packet "
                                 "from it is discarded")
        if any(p.address == ip for p in d.peers):
            r.warn(item[0].span, f"{d.owner}: unicast peer {ip} is listed twice")
        d.peers.append(m.UnicastPeer(**peer))

    def _use_vmac(self, d: "_InstanceDraft", c: Node) -> None:
        r, kw = self.r, d.kw
        kw["use_vmac"] = True
        words = c.words[1:]
        i = 0
        while i < len(words):
            w = words[i]
            if ":" in w.text:
                if "vmac_mac" in kw:
                    r.warn(w.span, f"{d.owner}: use_vmac MAC address given twice; ignored")
                elif not re.fullmatch(r"[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2}){4,5}:?", w.text):
                    r.warn(w.span, f"{d.owner}: use_vmac '{w.text}' is not a valid MAC address; ignored")
                elif int(w.text.split(":")[0], 16) & 1:
                    r.warn(w.span, f"{d.owner}: use_vmac MAC {w.text} is a multicast address; ignored")
                else:
                    kw["vmac_mac"] = w.text.lower()
            elif w.text == "name" and i + 1 < len(words):
                i += 1
                continue
            elif "vmac_name" in kw:
                r.warn(w.span, f"{d.owner}: use_vmac interface name given twice; ignored")
            elif len(w.text) >= IFNAMSIZ or w.text in (".", "..") or "/" in w.text:
                r.warn(w.span, f"{d.owner}: use_vmac name '{w.text}' is too long or invalid; ignored")
            elif w.text in self.vmac_names:
                r.warn(w.span, f"{d.owner}: vrrp_instance {self.vmac_names[w.text]} already uses the VMAC "
                               f"name {w.text}; name ignored")
            else:
                kw["vmac_name"] = w.text
                self.vmac_names[w.text] = d.name
            i += 1

    def _instance_end(self, d: "_InstanceDraft") -> None:
        """keepalived's checks when the vrrp_instance block closes (reported at its '}')."""
        r, kw = self.r, d.kw
        end = d.node.end or d.node.span
        if d.unicast_configured and kw.get("use_vmac"):
            if "interface" not in kw:
                r.warn(end, f"{d.owner}: use_vmac with unicast needs 'interface'; use_vmac cleared")
                kw["use_vmac"] = False
                kw.pop("vmac_name", None)
            elif d.interface_missing:
                r.host(end, f"{d.owner}: use_vmac with unicast needs interface {kw['interface']}, which does "
                            "not exist on this host; keepalived would clear use_vmac")
            elif not kw.get("vmac_xmit_base"):
                r.warn(end, f"{d.owner}: use_vmac with unicast requires vmac_xmit_base; setting it")
                kw["vmac_xmit_base"] = True
        if "unicast_ttl" in kw and not d.peers:
            r.warn(end, f"{d.owner}: unicast_ttl without unicast peers; ignored")
            del kw["unicast_ttl"]

    # ------------------------------------------------------------------ vrrp_sync_group

    def _sync_group(self, node: Node) -> None:
        """Parse a sync group now (its tracks and scripts resolve in file order);
        its members are resolved once every instance is known."""
        r = self.r
        if len(node.texts) != 2:
            r.warn(node.span, "vrrp_sync_group needs exactly one name; this block is ignored")
            return
        name = node.texts[1]
        if any(s.name == name for s in self.sync_drafts):
            r.warn(node.span, f"vrrp_sync_group {name} is already defined; this definition is ignored")
            return
        owner = f"vrrp_sync_group {name}"
        s = _SyncDraft(name, node)
        for c in node.children:
            k = c.keyword
            if k == "group":
                if s.members is not None:
                    r.warn(c.span, f"{owner}: group is already given; ignored")
                    continue
                s.members = _words(c.items)
                if not s.members:
                    r.warn(c.end or c.span, f"{owner}: the group block is empty")
            elif k in ("track_interface", "track_script", "track_file", "track_process", "track_bfd"):
                kind = k[len("track_"):]
                field_name = {"interface": "track_interfaces", "script": "track_scripts", "file": "track_files",
                              "process": "track_processes", "bfd": "track_bfds"}[kind]
                s.kw[field_name] = s.kw.get(field_name, ()) + self._tracks(c, owner, kind)
            elif k in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"):
                if k in s.kw:
                    r.warn(c.span, f"{owner}: {k} is already given; ignored")
                elif _arg(c) is not None:
                    s.kw[k] = self._notify_script(c, "vrrp", f"{owner}: {k}")
            elif k in ("smtp_alert", "notify_priority_changes"):
                v = read_bool(r, c, f"{owner}: {k}")
                if v is not None:
                    s.kw[k] = v
            elif k in ("sync_group_tracking_weight", "global_tracking"):
                s.kw["tracking_weight"] = True
        self.sync_drafts.append(s)

    def _resolve_sync_members(self) -> None:
        """Which instances belong to which sync group (keepalived's vrrp_sync_set_group)."""
        r = self.r
        names = {d.name for d in self.drafts}
        for s in self.sync_drafts:
            owner = f"vrrp_sync_group {s.name}"
            for w in s.members or ():
                if w.text not in names:
                    r.warn(w.span, f"{owner}: vrrp_instance {w.text} does not exist; ignored")
                elif w.text in self.member_of:
                    r.warn(w.span, f"{owner}: vrrp_instance {w.text} is already in vrrp_sync_group "
                                   f"{self.member_of[w.text].name}; ignored")
                elif w.text in s.valid:
                    r.warn(w.span, f"{owner}: vrrp_instance {w.text} is listed twice")
                else:
                    s.valid.append(w.text)
                    self.member_of[w.text] = s
            if not s.valid:
                r.warn(s.node.span, f"{owner} has no valid members; it is removed")
            elif len(s.valid) == 1:
                r.warn(s.node.span, f"{owner} has only one member ({s.valid[0]}), which is probably not "
                                    "what you want")

    def _sync_groups(self) -> tuple[m.SyncGroup, ...]:
        self._resolve_sync_members()
        for d in self.drafts:
            inst = self._complete(d)
            if inst is not None:
                self.instances.append(inst)
        out = []
        by_name = {i.name: i for i in self.instances}
        for s in self.sync_drafts:
            members = [n for n in s.valid if n in by_name]
            if not members:
                continue
            kw = dict(s.kw)
            if any(by_name[n].priority == m.OWNER_PRIORITY for n in members):
                for field_name in ("track_interfaces", "track_scripts", "track_files", "track_bfds"):
                    tracks = kw.get(field_name, ())
                    for t in tracks:
                        if t.weight:
                            self.r.warn(t.span, f"vrrp_sync_group {s.name}: {t.name} cannot have a weight because "
                                                "a member has priority 255; using weight 0")
                    kw[field_name] = tuple(
                        m.Track(name=t.name, weight=0, reverse=t.reverse, span=t.span) for t in tracks
                    )
            out.append(m.SyncGroup(name=s.name, members=tuple(members), span=s.node.span, **kw))
        return tuple(out)

    # ------------------------------------------------------------------ vrrp_instance: completion

    def _complete(self, d: "_InstanceDraft") -> m.VrrpInstance | None:
        """keepalived's vrrp_complete_instance: defaults, corrections, fatal checks."""
        r, kw, gd, owner, span = self.r, d.kw, self.gd, d.owner, d.node.span
        strict = gd.vrrp_strict if d.strict is None else d.strict
        version = d.version
        if d.family == 6 and version == 2:
            r.warn(span, f"{owner}: VRRP version 2 does not support IPv6; using version 3")
            version = 3
        family = d.family or 4
        if version is None:
            version = 3 if family == 6 else gd.vrrp_version
        ok = True
        if "vrid" not in kw:
            if not d.vrid_bad:
                r.error(span, f"{owner} has no virtual_router_id; the instance cannot run")
            ok = False
        if "interface" not in kw:
            if not d.peers:
                r.error(span, f"{owner} has no 'interface' (and no unicast peers); the instance cannot run")
                ok = False
            else:
                r.warn(span, f"{owner}: unicast without 'interface' is rejected by keepalived 2.2.7 (#2270)")
        if d.unicast_configured and not d.peers and not kw.get("unicast_fault_no_peer"):
            r.warn(span, f"{owner}: unicast keywords are given but there are no unicast peers; using multicast")
        if not d.vips:
            if version == 3 or family == 6 or strict:
                why = "strict mode" if strict else "VRRPv3" if version == 3 else "IPv6"
                r.error(span, f"{owner} has no virtual_ipaddress, which {why} requires; the instance cannot run")
                ok = False
            else:
                r.warn(span, f"{owner} has no virtual_ipaddress")
        if strict and d.peers:
            r.error(span, f"{owner}: unicast peers are not allowed in strict mode; the instance cannot run")
            ok = False
        if not ok:
            return None

        priority, state = d.priority, d.state
        if priority is None:
            priority = m.OWNER_PRIORITY if state is m.State.MASTER else m.DEFAULT_PRIORITY
        if state is None:
            state = m.State.MASTER if priority == m.OWNER_PRIORITY else m.State.BACKUP
        elif strict and (state is m.State.MASTER) != (priority == m.OWNER_PRIORITY):
            state = m.State.MASTER if priority == m.OWNER_PRIORITY else m.State.BACKUP
            r.warn(span, f"{owner}: strict mode needs state MASTER exactly when priority is 255; using {state.value}")

        auth_type = d.auth_type
        if auth_type is not None:
            drop = None
            if strict:
                drop = "strict mode does not allow authentication"
            elif version == 3:
                drop = "VRRP version 3 has no authentication"
            elif not d.auth_pass:
                drop = "authentication has no auth_pass"
            elif family == 6 and auth_type is m.AuthType.AH:
                drop = "AH authentication does not work with IPv6"
            if drop:
                r.warn(span, f"{owner}: {drop}; authentication ignored")
                auth_type = None
            elif auth_type is m.AuthType.AH and state is m.State.MASTER and priority != m.OWNER_PRIORITY:
                r.warn(span, f"{owner}: initial state MASTER does not work with AH authentication; using BACKUP")
                state = m.State.BACKUP

        if family == 6 and not d.peers and not d.vips[0].address.ip.is_link_local:
            # RFC 5798 wants it; keepalived 2.2.7 insists only in strict mode (verified: -t exits 0).
            say = r.warn if strict else r.note
            say(d.vips[0].span, f"{owner}: the first IPv6 virtual_ipaddress should be link-local "
                                f"(fe80::/10, RFC 5798); {d.vips[0].address.ip} is not")
        vips, evips = d.vips, d.evips
        if len(vips) > 255:
            r.warn(span, f"{owner}: {len(vips)} virtual addresses do not fit in an advert (max 255); "
                         "the rest are treated as virtual_ipaddress_excluded")
            vips, evips = vips[:255], vips[255:] + evips

        nopreempt, preempt_delay = d.nopreempt, d.preempt_delay_us
        if priority == m.OWNER_PRIORITY and nopreempt:
            r.warn(span, f"{owner}: nopreempt does not work with priority 255; nopreempt cleared")
            nopreempt = False
        if state is m.State.MASTER:
            if nopreempt:
                r.warn(span, f"{owner}: nopreempt does not work with initial state MASTER; nopreempt cleared")
                nopreempt = False
            if preempt_delay:
                r.warn(span, f"{owner}: preempt_delay does not work with initial state MASTER; cleared")
                preempt_delay = 0
        if preempt_delay and strict:
            r.warn(span, f"{owner}: preempt_delay is not allowed in strict mode; cleared")
            preempt_delay = 0
        if preempt_delay and nopreempt:
            r.warn(span, f"{owner}: preempt_delay does nothing with nopreempt; cleared")
            preempt_delay = 0

        accept = d.accept
        if accept and priority != m.OWNER_PRIORITY and strict and version == 2:
            r.warn(span, f"{owner}: accept mode with VRRPv2 breaks RFC 3768 in strict mode; accept cleared")
            accept = False

        garp = {
            "garp_master_delay_us": gd.vrrp_garp_master_delay_us,
            "garp_master_repeat": gd.vrrp_garp_master_repeat,
            "garp_master_refresh_us": gd.vrrp_garp_master_refresh_us,
            "garp_master_refresh_repeat": gd.vrrp_garp_master_refresh_repeat,
        }
        garp.update({k: v for k, v in d.garp.items() if k in garp})
        for k, g_value in (("garp_lower_prio_repeat", gd.vrrp_garp_lower_prio_repeat),
                           ("garp_lower_prio_delay_us", gd.vrrp_garp_lower_prio_delay_us)):
            if k not in d.garp:
                garp[k] = 0 if strict else g_value
            elif strict and d.garp[k]:
                r.warn(span, f"{owner}: strict mode sends no repeated gratuitous ARPs; "
                             f"{k.removesuffix('_us')} reset to 0")
                garp[k] = 0
            else:
                garp[k] = d.garp[k]
        lower = d.adverts.get("lower_prio_no_advert")
        if lower is None:
            lower = True if strict else gd.vrrp_lower_prio_no_advert
        elif strict and not lower:
            r.warn(span, f"{owner}: strict mode needs lower_prio_no_advert; setting it")
            lower = True
        higher = d.adverts.get("higher_prio_send_advert")
        if higher is None:
            higher = False if strict else gd.vrrp_higher_prio_send_advert
        elif strict and higher:
            r.warn(span, f"{owner}: strict mode does not allow higher_prio_send_advert; cleared")
            higher = False

        adv = kw.get("advert_int_us", SECOND)
        if version == 2 and adv % SECOND:
            rounded = max(SECOND, (adv + SECOND // 2) // SECOND * SECOND)
            r.warn(span, f"{owner}: VRRPv2 advert_int must be whole seconds; {fmt_seconds(adv)}s rounded "
                         f"to {fmt_seconds(rounded)}s")
            adv = rounded
        elif version == 3:
            centi = SECOND // 100
            if adv >= 4096 * centi:
                r.warn(span, f"{owner}: VRRPv3 advert_int {fmt_seconds(adv)}s is above 40.95s; using 40.95s")
                adv = 4095 * centi
            elif adv % centi:
                rounded = max(centi, (adv + centi // 2) // centi * centi)
                r.warn(span, f"{owner}: VRRPv3 advert_int must be a multiple of 10ms; {fmt_seconds(adv)}s "
                             f"rounded to {fmt_seconds(rounded)}s")
                adv = rounded
        kw["advert_int_us"] = adv

        if "src_ip" not in kw:
            kw["track_src_ip"] = False
        if kw.get("use_vmac"):
            if strict and kw.get("vmac_xmit_base"):
                r.warn(span, f"{owner}: vmac_xmit_base is not allowed in strict mode; cleared")
                kw["vmac_xmit_base"] = False
            if kw.get("promote_secondaries"):
                r.warn(span, f"{owner}: promote_secondaries is automatic with use_vmac; ignored")
                kw["promote_secondaries"] = False
        elif kw.get("vmac_xmit_base"):
            r.warn(span, f"{owner}: vmac_xmit_base only works with use_vmac; cleared")
            kw["vmac_xmit_base"] = False

        tracks = {k: list(v) for k, v in d.tracks.items()}
        own = kw.get("interface")
        for t in list(tracks["track_interfaces"]):
            if t.name == own:
                r.warn(t.span, f"{owner}: tracking its own interface {own} is implicit; track_interface ignored")
                tracks["track_interfaces"].remove(t)
        sync = self.member_of.get(d.name)
        sync_fixed = sync is not None and not sync.kw.get("tracking_weight")
        if sync_fixed or priority == m.OWNER_PRIORITY:
            why = f"it is in vrrp_sync_group {sync.name}" if sync_fixed else "its priority is 255"
            for key, label in (("track_interfaces", "tracked interface"), ("track_scripts", "tracked script"),
                               ("track_files", "tracked file"), ("track_bfds", "tracked bfd")):
                kept = []
                for t in tracks[key]:
                    if not t.weight:
                        kept.append(t)
                    elif key == "track_interfaces" and sync_fixed or key == "track_files" and t.weight == 1:
                        r.warn(t.span, f"{owner}: {label} {t.name}: weight ignored because {why}; using weight 0")
                        kept.append(m.Track(name=t.name, weight=0, reverse=t.reverse, span=t.span))
                    else:
                        r.warn(t.span, f"{owner}: {label} {t.name} has a weight, which is not allowed "
                                       f"because {why}; ignored")
                tracks[key] = kept

        kw.update(garp)
        kw.update({k: tuple(v) for k, v in tracks.items()})
        kw.setdefault("down_timer_adverts", gd.vrrp_down_timer_adverts)
        kw.setdefault("check_unicast_src", gd.vrrp_check_unicast_src)
        if not kw.get("skip_check_adv_addr"):
            kw["skip_check_adv_addr"] = gd.vrrp_skip_check_adv_addr
        kw.setdefault("notify_priority_changes", gd.vrrp_notify_priority_changes)
        if "smtp_alert" not in kw:
            kw["smtp_alert"] = bool(gd.smtp_alert_vrrp if gd.smtp_alert_vrrp is not None else gd.smtp_alert)
        kw.update(
            name=d.name, span=span, state=state, priority=priority, version=version, family=family,
            vips=tuple(vips), excluded_vips=tuple(evips), virtual_routes=tuple(d.routes),
            virtual_rules=tuple(d.rules), unicast_peers=tuple(d.peers), nopreempt=nopreempt,
            preempt_delay_us=preempt_delay, accept=accept, strict=strict, lower_prio_no_advert=lower,
            higher_prio_send_advert=higher, auth_type=auth_type,
            auth_pass=d.auth_pass if auth_type is m.AuthType.PASS else None,
            sync_group=sync.name if sync is not None else None,
        )
        return m.VrrpInstance(**kw)

    def _cross_instance_checks(self) -> None:
        """Two instances on one (interface, VRID, family) cannot both run."""
        seen: dict[tuple[str, int, int], m.VrrpInstance] = {}
        for inst in self.instances:
            if inst.interface is None:
                continue
            key = (inst.interface, inst.vrid, inst.family)
            other = seen.get(key)
            if other is None:
                seen[key] = inst
                continue
            where = f"VRID {inst.vrid} on {inst.interface} for IPv{inst.family}"
            peers_a = {p.address for p in inst.unicast_peers}
            peers_b = {p.address for p in other.unicast_peers}
            if peers_a and peers_b and not peers_a & peers_b:
                self.r.warn(inst.span, f"vrrp_instance {inst.name} shares {where} with vrrp_instance {other.name} "
                                       "using other unicast peers; keepalived 2.2.7 rejects this")
            else:
                self.r.error(inst.span, f"vrrp_instance {inst.name} uses {where}, like vrrp_instance {other.name} "
                                        f"({other.span}); the instances cannot run")

    # ------------------------------------------------------------------ LVS: virtual_server_group

    def _vsg(self, node: Node) -> None:
        r = self.r
        if len(node.texts) < 2:
            return
        name = node.texts[1]
        if name in self.vsgs:
            r.warn(node.span, f"virtual_server_group {name} is defined twice; this definition is ignored")
            return
        entries = []
        for item in node.items:
            e = self._vsg_entry(name, item)
            if e is not None:
                entries.append(e)
        if not entries:
            r.warn(node.end or node.span, f"virtual_server_group {name} has no valid entries; it is removed")
            return
        self.vsgs[name] = m.VirtualServerGroup(name=name, entries=tuple(entries), span=node.span)

    def _vsg_entry(self, group: str, item: tuple[Word, ...]) -> m.VirtualServerGroupEntry | None:
        r, first = self.r, item[0]
        owner = f"virtual_server_group {group}"
        if first.text == "fwmark":
            if len(item) < 2:
                r.warn(first.span, f"{owner}: fwmark without a value; ignored")
                return None
            v = read_int(r, item[1], 0, UINT32_MAX, f"{owner}: fwmark", "entry ignored")
            return None if v is None else m.VirtualServerGroupEntry(fwmark=v, span=first.span)
        text, _, last_text = first.text.partition("-")
        addr = parse_ip(text)
        if addr is None:
            r.warn(first.span, f"{owner}: '{first.text}' is not a valid address or range; entry ignored")
            return None
        last = None
        if last_text:
            digits = re.match(r"[0-9]+" if addr.version == 4 else r"[0-9A-Fa-f]+", last_text)
            if digits is None:
                r.warn(first.span, f"{owner}: invalid range end in '{first.text}'; entry ignored")
                return None
            if digits.end() != len(last_text):
                r.warn(first.span, f"{owner}: range '{first.text}' has extra characters at the end "
                                   f"'{last_text[digits.end():]}'; they are ignored")
            end_value = int(digits.group(), 10 if addr.version == 4 else 16)
            unit = 256 if addr.version == 4 else 65536
            base = int(addr) - int(addr) % unit
            if end_value >= unit or base + end_value < int(addr):
                r.warn(first.span, f"{owner}: invalid range '{first.text}'; entry ignored")
                return None
            last = ipaddress.ip_address(base + end_value)
        port = None
        if len(item) >= 2:
            port = parse_port(item[1].text)
            if port is None:
                r.warn(item[1].span, f"{owner}: invalid port '{item[1].text}'; entry ignored")
                return None
            port = port or None
        return m.VirtualServerGroupEntry(address=addr, last=last, port=port, span=first.span)

    # ------------------------------------------------------------------ LVS: virtual_server

    def _virtual_server(self, node: Node) -> None:
        r = self.r
        t = node.texts
        kw: dict = {"span": node.span}
        if len(t) >= 3 and t[1] == "group":
            kw["group"] = t[2]
        elif len(t) >= 3 and t[1] == "fwmark":
            v = parse_int(t[2])
            if v is None or not 0 <= v <= UINT32_MAX:
                r.error(node.words[2].span, f"virtual_server fwmark '{t[2]}' is invalid; "
                                            "this virtual_server is ignored")
                return
            kw["fwmark"] = v
        elif len(t) >= 2:
            addr = parse_ip(t[1])
            port = parse_port(t[2]) if len(t) >= 3 else 0
            if addr is None or port is None:
                shown = " ".join(t[1:3])
                r.error(node.span, f"virtual_server '{shown}' is not a valid address [port]; "
                                   "this virtual_server is ignored")
                return
            kw["address"], kw["port"] = addr, port or None
        else:
            return
        d = _VsDraft(kw, "virtual_server " + " ".join(t[1:3]), node)
        for c in node.children:
            self._vs_keyword(d, c)
        self._vs_end(d)
        self.vs_drafts.append(d)

    def _vs_keyword(self, d: "_VsDraft", c: Node) -> None:
        k = c.keyword
        if k == "real_server":  # first: the most common keyword by far
            self._real_server(d, c)
            return
        r, kw, a, owner = self.r, d.kw, _arg(c), d.label
        if k == "ip_family" and a is not None:
            if a in ("inet", "inet6"):
                fam = 4 if a == "inet" else 6
                if d.family is not None and d.family != fam:
                    r.warn(c.words[1].span, f"{owner}: ip_family {a} conflicts with the servers' family; ignored")
                else:
                    d.family = kw["ip_family"] = fam
            else:
                r.warn(c.words[1].span, f"{owner}: unknown ip_family '{a}' (inet or inet6); ignored")
        elif k in ("delay_loop", "connect_timeout", "delay_before_retry", "warmup") and a is not None:
            lo = 1 if k in ("delay_loop", "connect_timeout") else 0
            v = timer_arg(r, c, lo, None, f"{owner}: {k}", "ignoring it")
            if v is not None:
                kw[k + "_us"] = v
        elif k == "retry" and a is not None:
            v = int_arg(r, c, 1, UINT32_MAX, f"{owner}: retry", "ignoring it")
            if v is not None:
                kw["retry"] = v
        elif k in ("lb_algo", "lvs_sched") and a is not None:
            if a in LVS_SCHEDULERS:
                kw["lb_algo"] = a
            else:
                r.warn(c.words[1].span, f"{owner}: unknown scheduler '{a}' ({', '.join(LVS_SCHEDULERS)}); ignored")
        elif k in LVS_FLAGS:
            if k.startswith(("sh-", "mh-")) and kw.get("lb_algo") != k[:2]:
                r.warn(c.span, f"{owner}: {k} only applies to the {k[:2]} scheduler; ignored")
            else:
                d.flags.append(k)
        elif k in ("lb_kind", "lvs_method") and a is not None:
            kind = self._lb_kind(c, owner)
            if kind is not None:
                kw["lb_kind"] = kind
        elif k == "persistence_timeout":
            if a is None:
                kw["persistence_timeout"] = 360
            else:
                v = int_arg(r, c, 1, LVS_MAX_TIMEOUT, f"{owner}: persistence_timeout", "ignoring it")
                if v is not None:
                    kw["persistence_timeout"] = v
        elif k == "persistence_granularity" and a is not None:
            kw["persistence_granularity"] = a
            kw.setdefault("persistence_timeout", 360)
        elif k == "persistence_engine" and a is not None:
            kw["persistence_engine"] = a
        elif k == "protocol" and a is not None:
            if a.upper() in ("TCP", "UDP", "SCTP"):
                kw["protocol"] = a.upper()
            else:
                r.warn(c.words[1].span, f"{owner}: unknown protocol '{a}' (TCP, UDP or SCTP); ignored")
        elif k in ("ha_suspend", "alpha", "omega", "inhibit_on_failure"):
            kw[k] = True
        elif k == "smtp_alert":
            v = read_bool(r, c, f"{owner}: smtp_alert")
            if v is not None:
                kw["smtp_alert"] = v
        elif k == "virtualhost" and a is not None:
            kw["virtualhost"] = a
        elif k in ("quorum_up", "quorum_down"):
            if k in kw:
                r.warn(c.span, f"{owner}: {k} is already given; ignored")
            elif a is not None:
                kw[k] = self._notify_script(c, "checker", f"{owner}: {k}")
        elif k == "quorum" and a is not None:
            v = int_arg(r, c, 1, UINT32_MAX, f"{owner}: quorum", "using 1")
            kw["quorum"] = 1 if v is None else v
        elif k == "hysteresis" and a is not None:
            v = int_arg(r, c, 0, UINT32_MAX, f"{owner}: hysteresis", "ignoring it")
            if v is not None:
                kw["hysteresis"] = v
        elif k == "weight" and a is not None:
            v = int_arg(r, c, 1, IPVS_WEIGHT_LIMIT, f"{owner}: weight", "ignoring it")
            if v is not None:
                d.weight = v
        elif k == "sorry_server" and a is not None:
            addr = parse_ip(a)
            port = parse_port(c.texts[2]) if len(c.texts) > 2 else 0
            if addr is None or port is None:
                r.warn(c.words[1].span, f"{owner}: invalid sorry_server address '{a}'; ignored")
            else:
                d.sorry = {"address": addr, "port": port or None, "span": c.span}
        elif k == "sorry_server_inhibit":
            if d.sorry is None:
                r.warn(c.span, f"{owner}: sorry_server_inhibit before (or without) sorry_server; ignored")
            else:
                d.sorry["inhibit"] = True
        elif k == "sorry_server_lvs_method":
            if d.sorry is None:
                r.warn(c.span, f"{owner}: sorry_server_lvs_method without sorry_server; ignored")
            elif a is not None:
                kind = self._lb_kind(c, owner)
                if kind is not None:
                    d.sorry["lb_kind"] = kind

    def _lb_kind(self, c: Node, owner: str) -> m.LbKind | None:
        a = c.texts[1]
        if a not in ("NAT", "DR", "TUN"):
            self.r.warn(c.words[1].span,
                        f"{owner}: unknown forwarding method '{a}' (NAT, DR or TUN, upper case); ignored")
            return None
        if a != "TUN" and len(c.texts) > 2:
            self.r.warn(c.words[2].span, f"{owner}: '{c.texts[2]}' is only valid after TUN; ignored")
        return m.LbKind(a)

    def _vs_end(self, d: "_VsDraft") -> None:
        """keepalived's check when the virtual_server block closes: the sorry server's family."""
        if d.sorry is None or d.sorry.get("lb_kind", d.kw.get("lb_kind")) is m.LbKind.TUN:
            return
        fam = d.sorry["address"].version
        vs_family = d.version if "address" in d.kw else d.family
        if vs_family is not None and vs_family != fam:
            self.r.warn(d.node.end or d.node.span, f"{d.label}: sorry_server {d.sorry['address']} is not the same "
                                                  "IP version as the virtual server; it is ignored")
            d.sorry = None
        elif d.family is None:
            d.family = fam

    # ------------------------------------------------------------------ LVS: real_server and checkers

    def _real_server(self, d: "_VsDraft", c: Node) -> None:
        r, t = self.r, c.texts
        if len(t) < 2:
            return
        addr = parse_ip(t[1])
        port = parse_port(t[2]) if len(t) > 2 else 0
        if addr is None or port is None:
            r.error(c.span, f"{d.label}: real_server '{' '.join(t[1:3])}' is not a valid address [port]; "
                            "this real_server is ignored")
            return
        rs = _RsDraft({"address": addr, "port": port or None, "span": c.span}, d.label, t)
        rs_keyword, checker = self._rs_keyword, self._checker
        for cc in c.children:
            if cc.keyword in _CHECKERS:
                checker(rs, cc)
            else:
                rs_keyword(rs, cc)
        # keepalived's check when the real_server block closes
        vkw = d.kw
        kind = rs.kw.get("lb_kind") or vkw.get("lb_kind")
        if kind is not _TUN:
            version = addr.version
            if d.family is None and "address" not in vkw:
                d.family = version
            vs_family = d.version if "address" in vkw else d.family
            if vs_family is not None and vs_family != version:
                r.error(c.end or c.span, f"{rs.owner} is not the same IP version as the virtual server; "
                                         "this real_server is ignored")
                return
        d.real_servers.append(rs)

    def _rs_keyword(self, rs: "_RsDraft", c: Node) -> None:
        """A real_server keyword other than a checker."""
        k = c.keyword
        r, kw, a = self.r, rs.kw, _arg(c)
        if k == "weight" and a is not None:
            v = int_in(a, 0, IPVS_WEIGHT_LIMIT)
            if v is None:
                v = read_int(r, c.words[1], 0, IPVS_WEIGHT_LIMIT, f"{rs.owner}: weight", "ignoring it")
            if v is not None:
                kw["weight"] = v
        elif k == "lvs_method" and a is not None:
            kind = self._lb_kind(c, rs.owner)
            if kind is not None:
                kw["lb_kind"] = kind
        elif k in ("uthreshold", "lthreshold") and a is not None:
            v = int_arg(r, c, 0, UINT32_MAX, f"{rs.owner}: {k}", "ignoring it")
            if v is not None:
                kw[k] = v
        elif k in ("inhibit_on_failure", "alpha", "smtp_alert"):
            v = read_bool(r, c, f"{rs.owner}: {k}")
            if v is not None:
                kw[k] = v
        elif k in ("notify_up", "notify_down"):
            if k in kw:
                r.warn(c.span, f"{rs.owner}: {k} is already given; ignored")
            elif a is not None:
                kw[k] = self._notify_script(c, "checker", f"{rs.owner}: {k}")
        elif k == "retry" and a is not None:
            v = int_arg(r, c, 1, UINT32_MAX, f"{rs.owner}: retry", "ignoring it")
            if v is not None:
                kw["retry"] = v
        elif k in ("delay_before_retry", "warmup", "connect_timeout", "delay_loop") and a is not None:
            lo = 1 if k in ("delay_loop", "connect_timeout") else 0
            v = timer_arg(r, c, lo, None, f"{rs.owner}: {k}", "ignoring it")
            if v is not None:
                kw[k + "_us"] = v
        elif k == "virtualhost" and a is not None:
            kw["virtualhost"] = a

    def _checker(self, rs: "_RsDraft", c: Node) -> None:
        cls = _CHECKERS[c.keyword]
        ck = _CheckerDraft(cls, {"span": c.span}, rs, c.keyword)
        if cls is m.FileCheck or cls is m.BfdCheck:
            self._simple_checker(rs, ck, c)
            return
        common = self._checker_common
        for cc in c.children:
            if common(ck, cc):
                continue
            if cls is m.MiscCheck:
                self._misc_keyword(ck, cc)
            elif cls in _HTTP_CHECKS:
                self._http_keyword(ck, cc)
            elif cls is m.SmtpCheck:
                if cc.keyword == "helo_name" and _arg(cc) is not None:
                    ck.kw["helo_name"] = cc.texts[1]
                elif cc.keyword == "host":
                    host_ck = _CheckerDraft(cls, {"span": cc.span}, rs, c.keyword)
                    for hc in cc.children:
                        self._checker_common(host_ck, hc)
                    ck.extra.append(host_ck)
            elif cls is m.DnsCheck:
                self._dns_keyword(ck, cc)
            elif cls is m.UdpCheck:
                self._udp_keyword(ck, cc)
        if cls is m.MiscCheck and not self._misc_end(ck, c):
            return
        if cls in _HTTP_CHECKS and not ck.kw.get("urls"):
            self.r.warn(c.end or c.span, f"{ck.owner} has no url; this checker is ignored")
            return
        if cls is m.SmtpCheck and ck.extra:
            for extra in ck.extra:
                extra.kw = {**{k: v for k, v in ck.kw.items() if k != "span"}, **extra.kw}
            rs.checkers.extend(ck.extra)
            return
        rs.checkers.append(ck)

    def _checker_common(self, ck: "_CheckerDraft", c: Node) -> bool:
        """Keywords shared by the checkers (see _COMMON); False if c is not one of them."""
        k = c.keyword
        spec = _COMMON.get(k)
        if spec is None or (ck.cls is m.MiscCheck and k in _CONNECT_ONLY):
            return False
        t = c.texts
        read = self.common_read.get(t)
        if read is not None:
            ck.kw[read[0]] = read[1]
            return True
        how, field, lo, hi = spec
        r = self.r
        reported = len(r.items)
        if how is _BOOL:
            v = read_bool(r, c, f"{ck.owner}: {k}")
        elif len(t) < 2:
            return False
        elif how is _TIMER:
            v = timer_in(t[1], lo, hi)
            if v is None:
                v = read_timer(r, c.words[1], lo, hi, f"{ck.owner}: {k}", "ignoring it")
        elif how is _INT:
            v = int_in(t[1], lo, hi)
            if v is None:
                v = read_int(r, c.words[1], lo, hi, f"{ck.owner}: {k}", "ignoring it")
        elif how is _PORT:
            v = parse_port(t[1]) or None
            if v is None:
                r.warn(c.words[1].span, f"{ck.owner}: {k} '{t[1]}' is not a valid port; ignored")
        elif how is _IP:
            v = parse_ip(t[1])
            if v is None:
                r.warn(c.words[1].span, f"{ck.owner}: {k} '{t[1]}' is not a valid IP address; ignored")
        else:  # bind_if
            v = t[1]
            self._host_interface(c.words[1], f"{ck.owner}: bind_if {v}")
        if v is not None:
            ck.kw[field] = v
            if len(r.items) == reported:
                self.common_read[t] = (field, v)
        return True

    def _simple_checker(self, rs: "_RsDraft", ck: "_CheckerDraft", c: Node) -> None:
        r, kw, owner = self.r, ck.kw, ck.owner
        for cc in c.children:
            a = _arg(cc)
            if cc.keyword == "track_file" and a is not None:
                if a not in self.track_files:
                    r.warn(cc.words[1].span, f"{owner}: track_file {a} is not defined (before this point); ignored")
                else:
                    kw["track_file"] = a
            elif cc.keyword == "weight" and a is not None:
                v = int_arg(r, cc, -254, 254, f"{owner}: weight", "using 1")
                if v is not None:
                    kw["weight"] = v
            elif cc.keyword == "name" and a is not None:
                if a not in self.bfd_defs or self.bfd_defs[a][0] > self.top_index:
                    r.warn(cc.words[1].span, f"{owner}: bfd_instance {a} is not defined (before this point); ignored")
                else:
                    kw["name"] = a
            elif cc.keyword == "alpha":
                v = read_bool(r, cc, f"{owner}: alpha")
                if v is not None:
                    kw["alpha"] = v
        needed = "track_file" if ck.cls is m.FileCheck else "name"
        if needed not in kw:
            r.warn(c.end or c.span, f"{owner} has no valid {needed}; this checker is ignored")
            return
        rs.checkers.append(ck)

    def _misc_keyword(self, ck: "_CheckerDraft", c: Node) -> None:
        r, kw, a, owner = self.r, ck.kw, _arg(c), ck.owner
        if c.keyword == "misc_path":
            parsed = self._command(c, f"{owner}: misc_path", user_words=False)
            if parsed is not None:
                ck.argv = parsed[0]
        elif c.keyword == "misc_timeout" and a is not None:
            v = int_arg(r, c, 1, UINT32_MAX // SECOND, f"{owner}: misc_timeout", "using delay_loop")
            if v is not None:
                kw["timeout_us"] = v * SECOND
        elif c.keyword == "misc_dynamic":
            kw["dynamic"] = True
        elif c.keyword == "user" and a is not None:
            ck.user = (a, c.texts[2] if len(c.texts) > 2 else None)
            problem = self.host.user_problem(*ck.user) if self.host is not None else None
            if problem is not None:
                r.host(c.words[1].span, f"{owner}: {problem}; this checker is removed")
                ck.removed = True

    def _misc_end(self, ck: "_CheckerDraft", c: Node) -> bool:
        end = c.end or c.span
        if not ck.argv:
            self.r.warn(end, f"{ck.owner} has no misc_path; this checker is ignored")
            return False
        if ck.removed:
            return False
        user, group = ck.user if ck.user else (None, None)
        effective = user or self._default_user("checker", end)
        if effective is None:
            self.r.host(end, f"{ck.owner}: no user to run {ck.argv[0]} as on this host; this checker is removed")
            return False
        script = m.Script(argv=tuple(ck.argv), user=user, group=group, span=c.span)
        self.script_uses.append(_ScriptUse("checker", script, effective))
        ck.kw["script"] = script
        return True

    def _http_keyword(self, ck: "_CheckerDraft", c: Node) -> None:
        r, kw, k, a, owner = self.r, ck.kw, c.keyword, _arg(c), ck.owner
        if k == "url":
            url = self._url(c, owner)
            if url is not None:
                kw["urls"] = kw.get("urls", ()) + (url,)
        elif k == "virtualhost" and a is not None:
            kw["virtualhost"] = a
        elif k == "http_protocol" and a is not None:
            if a in ("1.0", "1.0C", "1.1"):
                kw["http_protocol"] = a
            else:
                r.warn(c.words[1].span, f"{owner}: unknown http_protocol '{a}' (1.0, 1.0C or 1.1); ignored")
        elif k in ("enable_sni", "fast_recovery"):
            v = read_bool(r, c, f"{owner}: {k}")
            if v is not None:
                kw[k] = v

    def _url(self, node: Node, owner: str) -> m.Url | None:
        r = self.r
        kw: dict = {"span": node.span}
        codes: list[tuple[int, int]] = []
        for c in node.children:
            k, a = c.keyword, _arg(c)
            if k == "path" and a is not None:
                kw["path"] = a
            elif k == "digest" and a is not None:
                if len(a) != 32:
                    r.warn(c.words[1].span, f"{owner}: digest '{a}' has {len(a)} characters instead of 32; ignored")
                elif not re.fullmatch(r"[0-9A-Fa-f]{32}", a):
                    r.warn(c.words[1].span, f"{owner}: digest '{a}' is not hexadecimal; ignored")
                else:
                    kw["digest"] = a.lower()
            elif k == "status_code":
                for w in c.words[1:]:
                    lo_t, _, hi_t = w.text.partition("-")
                    lo, hi = parse_int(lo_t), parse_int(hi_t) if hi_t else parse_int(lo_t)
                    if lo is None or hi is None or not 100 <= lo <= hi <= 599:
                        r.warn(w.span, f"{owner}: status_code '{w.text}' is not a code (100-599) or range; ignored")
                    else:
                        codes.append((lo, hi))
            elif k == "virtualhost" and a is not None:
                kw["virtualhost"] = a
            elif k == "regex" and a is not None:
                try:
                    re.compile(a)
                except re.error as e:
                    r.warn(c.words[1].span, f"{owner}: regex '{a}' does not compile ({e}); it may still be valid PCRE2")
                kw["regex"] = a
            elif k == "regex_no_match":
                kw["regex_no_match"] = True
            elif k == "regex_options":
                kw["regex_options"] = tuple(w.text for w in c.words[1:])
            elif k in ("regex_min_offset", "regex_max_offset") and a is not None:
                v = int_arg(r, c, 0, UINT32_MAX, f"{owner}: {k}", "ignoring it")
                if v is not None:
                    kw[k] = v
        if "path" not in kw:
            r.warn(node.end or node.span, f"{owner}: url has no path; this url is ignored")
            return None
        if codes:
            kw["status_codes"] = tuple(codes)
        return m.Url(**kw)

    def _dns_keyword(self, ck: "_CheckerDraft", c: Node) -> None:
        a = _arg(c)
        if c.keyword == "type" and a is not None:
            if a.upper() in DNS_TYPES:
                ck.kw["type"] = a.upper()
            else:
                self.r.warn(c.words[1].span, f"{ck.owner}: unknown DNS type '{a}' ({', '.join(DNS_TYPES)}); using SOA")
        elif c.keyword == "name" and a is not None:
            ck.kw["name"] = a

    def _udp_keyword(self, ck: "_CheckerDraft", c: Node) -> None:
        r, kw, k, a, owner = self.r, ck.kw, c.keyword, _arg(c), ck.owner
        if k == "payload" and a is not None:
            try:
                kw["payload"] = bytes.fromhex(a)
            except ValueError:
                r.warn(c.words[1].span, f"{owner}: payload '{a}' is not hexadecimal bytes; ignored")
        elif k == "require_reply" and a is not None:
            if re.fullmatch(r"([0-9A-Fa-fXx]{2})+", a):
                kw["require_reply"] = a
            else:
                r.warn(c.words[1].span, f"{owner}: require_reply '{a}' is not hexadecimal bytes (X = any); ignored")
        elif k in ("min_reply_length", "max_reply_length") and a is not None:
            v = int_arg(r, c, 0, 65535, f"{owner}: {k}", "ignoring it")
            if v is not None:
                kw[k] = v

    # ------------------------------------------------------------------ LVS: validation

    def _virtual_servers(self) -> None:
        for d in self.vs_drafts:
            vs = self._vs_validate(d)
            if vs is not None:
                self.vss.append(vs)

    def _vs_validate(self, d: "_VsDraft") -> m.VirtualServer | None:
        """keepalived's validate_check_config for one virtual server."""
        r, kw, span, owner = self.r, d.kw, d.node.span, d.label
        group = self.vsgs.get(kw["group"]) if "group" in kw else None
        if "group" in kw and group is None:
            r.error(span, f"{owner}: virtual_server_group {kw['group']} is not defined; "
                          "this virtual_server is ignored")
            return None
        if not d.real_servers:
            r.warn(span, f"{owner} has no real servers; it is ignored")
            return None
        group_addrs = [e for e in group.entries if e.fwmark is None] if group else []
        group_marks = [e for e in group.entries if e.fwmark is not None] if group else []
        fwmark_vs = "fwmark" in kw or (group is not None and not group_addrs)
        if kw.get("ha_suspend") and ("fwmark" in kw or group_marks):
            r.warn(span, f"{owner}: ha_suspend cannot be used with fwmarks; cleared")
            kw["ha_suspend"] = False
        if group_addrs or (group is None and "fwmark" not in kw):
            if "protocol" not in kw:
                r.warn(span, f"{owner} has no protocol; using UDP (the kernel's default)")
                kw["protocol"] = "UDP"
            if "ops" in d.flags and kw["protocol"] != "UDP":
                r.warn(span, f"{owner}: one-packet scheduling (ops) needs UDP; cleared")
                d.flags.remove("ops")
            no_port = (group is None and not kw.get("port")) or any(not e.port for e in group_addrs)
            if no_port and not kw.get("persistence_timeout"):
                r.warn(span, f"{owner}: a service without a port must be persistent; using persistence_timeout 360")
                kw["persistence_timeout"] = 360
        if fwmark_vs and "protocol" in kw:
            r.warn(span, f"{owner}: protocol is ignored for fwmark services")
            del kw["protocol"]
        if "lb_algo" not in kw:
            r.warn(span, f"{owner} has no lb_algo/lvs_sched; using wlc")
        vs_kind = kw.get("lb_kind")
        kinds_needed = [rs for rs in d.real_servers if "lb_kind" not in rs.kw]
        if vs_kind is None and (kinds_needed or (d.sorry is not None and "lb_kind" not in d.sorry)):
            r.warn(span, f"{owner} has no lb_kind/lvs_method; using NAT")
        vs_kind = vs_kind or m.LbKind.NAT
        kw["lb_kind"] = vs_kind
        vs_port = kw.get("port")

        # what a real server inherits from its virtual server, unless it sets it itself
        inherited = {
            "lb_kind": vs_kind,
            "alpha": kw.get("alpha", False),
            "inhibit_on_failure": kw.get("inhibit_on_failure", False),
            "connect_timeout_us": kw.get("connect_timeout_us", 5 * SECOND),
            "delay_loop_us": kw.get("delay_loop_us", 60 * SECOND),
            "weight": d.weight,
        }
        for key in ("retry", "delay_before_retry_us", "warmup_us"):
            if kw.get(key) is not None:
                inherited[key] = kw[key]
        g = self.gd.smtp_alert_checker if self.gd.smtp_alert_checker is not None else self.gd.smtp_alert
        inherited["smtp_alert"] = True if g is None else g

        rss: list[m.RealServer] = []
        seen: set[tuple[type, int, int | None]] = set()
        weight_sum = 0
        finish_checker, real_server = self._finish_checker, m.RealServer
        for rs in d.real_servers:
            rkw = rs.kw
            address = rkw["address"]
            known = len(seen)
            seen.add((type(address), int(address), rkw["port"]))  # (hashing an IP address is slow)
            if len(seen) == known:
                r.warn(rkw["span"], f"{rs.owner} is a duplicate; ignored")
                continue
            rkw = rs.kw = {**inherited, **rkw}
            if rkw["lb_kind"] is not _NAT:
                self._rs_port(rs, kw, fwmark_vs, group_addrs, group_marks)
            elif rkw["port"] is None and not (fwmark_vs or group_addrs or group_marks):
                rkw["port"] = vs_port  # NAT may remap the port: the service's unless given
            rkw["checkers"] = tuple([finish_checker(ck, rkw) for ck in rs.checkers])
            weight_sum += rkw["weight"]
            rss.append(real_server(**rkw))

        if d.sorry is not None:
            sorry = dict(d.sorry)
            sorry.setdefault("lb_kind", vs_kind)
            for rs_obj in rss:
                if rs_obj.address == sorry["address"] and rs_obj.port == sorry.get("port") and \
                        rs_obj.inhibit_on_failure != sorry.get("inhibit", False):
                    r.warn(span, f"{owner}: real server {rs_obj.address} is also the sorry server but with a "
                                 "different inhibit_on_failure; using the real server's setting")
                    sorry["inhibit"] = rs_obj.inhibit_on_failure
            if sorry["lb_kind"] is not m.LbKind.NAT and group is None:
                if fwmark_vs and sorry.get("port"):
                    r.warn(span, f"{owner}: the sorry server of a fwmark service has a port; port cleared")
                    sorry["port"] = None
                elif not fwmark_vs and sorry.get("port") and sorry["port"] != vs_port:
                    using = f"using {vs_port}" if vs_port else "port cleared"
                    r.warn(span, f"{owner}: sorry server port {sorry['port']} differs from the virtual server "
                                 f"port {vs_port or '(none)'}; {using}")
                    sorry["port"] = vs_port
            kw["sorry_server"] = m.SorryServer(**sorry)

        quorum = kw.get("quorum", 1)
        if quorum > weight_sum:
            r.warn(span, f"{owner}: quorum {quorum} is above the total real server weight {weight_sum}; "
                         f"using {weight_sum}")
            quorum = weight_sum
        hysteresis = kw.get("hysteresis", 0)
        if hysteresis >= quorum and (hysteresis or quorum == 0):
            r.warn(span, f"{owner}: hysteresis {hysteresis} must be below quorum {quorum}; using {max(quorum - 1, 0)}")
            hysteresis = max(quorum - 1, 0)
        kw.update(quorum=quorum, hysteresis=hysteresis, real_servers=tuple(rss), flags=tuple(d.flags))
        if "smtp_alert" not in kw:
            g = self.gd.smtp_alert_checker if self.gd.smtp_alert_checker is not None else self.gd.smtp_alert
            kw["smtp_alert"] = bool(g)
        if d.family is not None and "ip_family" not in kw:
            kw["ip_family"] = d.family
        return m.VirtualServer(**kw)

    def _rs_port(self, rs: "_RsDraft", kw: dict, fwmark_vs: bool, group_addrs: list, group_marks: list) -> None:
        """Port rules of a DR/TUN real server: its port must be the service's."""
        r, rkw = self.r, rs.kw
        vs_port = kw.get("port")
        if group_addrs or group_marks:
            if group_marks and rkw["port"]:
                r.warn(rkw["span"], f"{rs.owner}: a port on a real server of a fwmark group is ignored")
            for e in group_addrs:
                if rkw["port"] and e.port and e.port != rkw["port"]:
                    r.warn(rkw["span"], f"{rs.owner}: port {rkw['port']} differs from group entry port {e.port}")
            return
        if fwmark_vs:
            if rkw["port"]:
                r.warn(rkw["span"], f"{rs.owner}: {rkw['lb_kind'].value} real servers of a fwmark service take "
                                    "no port; port cleared")
                rkw["port"] = None
        elif rkw["port"] is None:
            rkw["port"] = vs_port
        elif rkw["port"] != vs_port:
            using = f"using {vs_port}" if vs_port else "port cleared"
            r.warn(rkw["span"], f"{rs.owner}: port {rkw['port']} differs from the virtual server port "
                                f"{vs_port or '(none)'}, which {rkw['lb_kind'].value} cannot change; {using}")
            rkw["port"] = vs_port

    def _finish_checker(self, ck: "_CheckerDraft", rkw: dict) -> m.AnyChecker:
        """Inherit VS -> RS -> checker values (keepalived's validate_check_config)."""
        cls = ck.cls
        if cls is m.FileCheck or cls is m.BfdCheck:
            return cls(**ck.kw)
        kw = {  # what the real server passes on, unless the checker sets it
            "alpha": rkw["alpha"],
            "log_all_failures": self.gd.checker_log_all_failures,
            "retry": rkw.get("retry", _DEFAULT_RETRY.get(cls, 1)),
            "delay_loop_us": rkw["delay_loop_us"],
        }
        if cls is not m.MiscCheck:
            kw["connect_timeout_us"] = rkw["connect_timeout_us"]
        kw.update(ck.kw)
        if "warmup_us" not in kw:
            kw["warmup_us"] = rkw.get("warmup_us", kw["delay_loop_us"])
        if "delay_before_retry_us" not in kw:
            default_dbr = 3 * SECOND if cls in _HTTP_CHECKS else (kw["delay_loop_us"] if cls is m.DnsCheck else SECOND)
            kw["delay_before_retry_us"] = rkw.get("delay_before_retry_us", default_dbr)
        return cls(**kw)


class _InstanceDraft:
    """A vrrp_instance between parsing and completion (mutable on purpose).

    (The drafts are plain classes: a dataclass costs a millisecond to create at import.)
    """

    __slots__ = (
        "name", "node", "owner", "kw", "family", "version", "state", "priority", "strict", "accept", "vrid_bad",
        "interface_missing", "unicast_configured", "nopreempt", "preempt_delay_us", "auth_type", "auth_pass",
        "vips", "evips", "routes", "rules", "peers", "garp", "adverts", "tracks",
    )

    def __init__(self, name: str, node: Node, owner: str) -> None:
        self.name = name
        self.node = node
        self.owner = owner
        self.kw: dict = {}
        self.family: int | None = None
        self.version: int | None = None
        self.state: m.State | None = None
        self.priority: int | None = None
        self.strict: bool | None = None
        self.accept: bool | None = None
        self.vrid_bad = False
        self.interface_missing = False
        self.unicast_configured = False
        self.nopreempt = False
        self.preempt_delay_us = 0
        self.auth_type: m.AuthType | None = None
        self.auth_pass: str | None = None
        self.vips: list[m.VirtualAddress] = []
        self.evips: list[m.VirtualAddress] = []
        self.routes: list[m.Route] = []
        self.rules: list[m.Rule] = []
        self.peers: list[m.UnicastPeer] = []
        self.garp: dict = {}
        self.adverts: dict = {}
        self.tracks: dict[str, tuple[m.Track, ...]] = {
            "track_interfaces": (), "track_scripts": (), "track_files": (), "track_processes": (), "track_bfds": ()
        }


class _SyncDraft:
    __slots__ = ("name", "node", "kw", "members", "valid")

    def __init__(self, name: str, node: Node) -> None:
        self.name = name
        self.node = node
        self.kw: dict = {}
        self.members: list[Word] | None = None
        self.valid: list[str] = []


class _CheckerDraft:
    __slots__ = ("cls", "kw", "vs_label", "rs_texts", "keyword", "argv", "user", "removed", "extra")

    def __init__(self, cls: type, kw: dict, rs: "_RsDraft", keyword: str) -> None:
        self.cls = cls
        self.kw = kw
        self.vs_label = rs.vs_label  # (not rs itself: rs.checkers holds this draft)
        self.rs_texts = rs.texts
        self.keyword = keyword
        self.argv: list[str] | None = None
        self.user: tuple[str, str | None] | None = None
        self.removed = False
        self.extra: list[_CheckerDraft] = []

    @property
    def owner(self) -> str:
        """The checker in messages (made only for a message: most checkers get none)."""
        return f"{_rs_owner(self.vs_label, self.rs_texts)}: {self.keyword}"


class _RsDraft:
    __slots__ = ("kw", "vs_label", "texts", "checkers")

    def __init__(self, kw: dict, vs_label: str, texts: tuple[str, ...]) -> None:
        self.kw = kw
        self.vs_label = vs_label
        self.texts = texts  # the real_server statement's
        self.checkers: list[_CheckerDraft] = []

    @property
    def owner(self) -> str:
        """The real server in messages (made only for a message)."""
        return _rs_owner(self.vs_label, self.texts)


def _rs_owner(vs_label: str, texts: tuple[str, ...]) -> str:
    return f"{vs_label}: real_server {' '.join(texts[1:3])}"


class _VsDraft:
    __slots__ = ("kw", "label", "node", "version", "family", "weight", "flags", "sorry", "real_servers")

    def __init__(self, kw: dict, label: str, node: Node) -> None:
        self.kw = kw
        self.label = label
        self.node = node
        self.version = kw["address"].version if "address" in kw else None  # of the service's address
        self.family: int | None = None
        self.weight = 1
        self.flags: list[str] = []
        self.sorry: dict | None = None
        self.real_servers: list[_RsDraft] = []


# The keywords every checker with a retry loop shares: keyword -> (how it is read, the
# field it sets, lowest and highest value). The connection ones are not MISC_CHECK's.
_IP, _PORT, _INT, _TIMER, _BOOL, _IFNAME = range(6)
_COMMON = {
    "connect_ip": (_IP, "connect_ip", 0, 0),
    "bindto": (_IP, "bindto", 0, 0),
    "connect_port": (_PORT, "connect_port", 0, 0),
    "bind_port": (_PORT, "bind_port", 0, 0),
    "bind_if": (_IFNAME, "bind_if", 0, 0),
    "fwmark": (_INT, "fwmark", 0, UINT32_MAX),
    "retry": (_INT, "retry", 0, UINT32_MAX),
    "nb_get_retry": (_INT, "retry", 0, UINT32_MAX),
    "connect_timeout": (_TIMER, "connect_timeout_us", 1, None),
    "delay_loop": (_TIMER, "delay_loop_us", 1, None),
    "delay_before_retry": (_TIMER, "delay_before_retry_us", 0, None),
    "warmup": (_TIMER, "warmup_us", 0, None),
    "alpha": (_BOOL, "alpha", 0, 0),
    "log_all_failures": (_BOOL, "log_all_failures", 0, 0),
}
_CONNECT_ONLY = frozenset(
    ("connect_ip", "bindto", "connect_port", "bind_port", "bind_if", "connect_timeout", "fwmark")
)
_NAT, _TUN = m.LbKind.NAT, m.LbKind.TUN
_DEFAULT_RETRY = {m.DnsCheck: 3, m.MiscCheck: 0}
_HTTP_CHECKS = frozenset((m.HttpCheck, m.SslCheck))
_CHECKERS: dict[str, type] = {
    "TCP_CHECK": m.TcpCheck,
    "HTTP_GET": m.HttpCheck,
    "SSL_GET": m.SslCheck,
    "SMTP_CHECK": m.SmtpCheck,
    "DNS_CHECK": m.DnsCheck,
    "UDP_CHECK": m.UdpCheck,
    "PING_CHECK": m.PingCheck,
    "MISC_CHECK": m.MiscCheck,
    "FILE_CHECK": m.FileCheck,
    "BFD_CHECK": m.BfdCheck,
}
