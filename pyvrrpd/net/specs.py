"""Address, route and rule specs, and parsers for the `ip addr` / `ip route` / `ip rule` word subsets that
keepalived's virtual_ipaddress, virtual_routes and virtual_rules blocks use.

Pure: no kernel access, so the config checker can use the same parsers to validate a file. Words are the
tokens of one config line, e.g. ("10.0.0.0/8", "via", "198.51.100.1", "dev", "lan0"). Keywords may come in
any order, as with `ip`. A word the grammar below does not list raises SpecError; keepalived-only
annotations (no_track, track_group, use_vmac, restore, ...) belong to the config layer and must be stripped
before calling these parsers.

Address:  ADDR[/LEN] [dev IF] [brd ADDR|+] [scope SCOPE] [label LABEL] [peer ADDR]
          (no LEN: /32 or /128; IPv6 addresses are always added with nodad)
Route:    [TYPE] [to] PREFIX|default [via|gw [inet|inet6] ADDR] [dev|oif IF] [src ADDR] [table TABLE]
          [metric|priority|preference N] [scope SCOPE] [onlink]
          TYPE: unicast (default), blackhole, unreachable, prohibit, throw
Rule:     [from PREFIX|all|default] [to PREFIX|all|default] [iif|dev IF] [oif IF] [fwmark N[/MASK]]
          [table|lookup TABLE] [priority|preference|pref N]
          (no table: main, as `ip rule`; no address: IPv4)
SCOPE:    global, site, link, host, nowhere or 0-255.   TABLE: main, local, default or 1-4294967295.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from .constants import (
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RT_SCOPE_SITE,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_DEFAULT,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCOPES = {"global": RT_SCOPE_UNIVERSE, "universe": RT_SCOPE_UNIVERSE, "site": RT_SCOPE_SITE,
          "link": RT_SCOPE_LINK, "host": RT_SCOPE_HOST, "nowhere": RT_SCOPE_NOWHERE}
TABLES = {"main": RT_TABLE_MAIN, "local": RT_TABLE_LOCAL, "default": RT_TABLE_DEFAULT}
ROUTE_TYPES = ("unicast", "blackhole", "unreachable", "prohibit", "throw")


class SpecError(ValueError):
    """A spec line outside the supported grammar; the message names the offending word."""


@dataclass(frozen=True, slots=True)
class AddressSpec:
    address: IPInterface  # address and prefix length
    dev: str | None = None  # None: the instance's interface
    broadcast: ipaddress.IPv4Address | None = None
    scope: int = RT_SCOPE_UNIVERSE
    label: str | None = None
    peer: IPAddress | None = None

    def __str__(self) -> str:
        return str(self.address)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    dst: IPNetwork
    via: IPAddress | None = None
    dev: str | None = None
    src: IPAddress | None = None  # preferred source (`ip route ... src`)
    table: int = RT_TABLE_MAIN
    metric: int | None = None
    scope: int | None = None  # None: `ip route`'s default — link for a unicast route without via, else global
    type: str = "unicast"
    onlink: bool = False

    @property
    def version(self) -> int:
        return self.dst.version

    def __str__(self) -> str:
        words = [] if self.type == "unicast" else [self.type]
        words.append(str(self.dst) if self.dst.prefixlen else "default")
        for keyword, value in (("via", self.via), ("dev", self.dev), ("src", self.src), ("metric", self.metric),
                               ("scope", self.scope)):
            if value is not None:
                words += [keyword, str(value)]
        if self.table != RT_TABLE_MAIN:
            words += ["table", str(self.table)]
        if self.onlink:
            words.append("onlink")
        return " ".join(words)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    version: int = 4
    src: IPNetwork | None = None
    dst: IPNetwork | None = None
    table: int = RT_TABLE_MAIN
    priority: int | None = None  # None: the kernel picks one, as with `ip rule add` without pref
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None

    def __str__(self) -> str:
        text = f"from {self.src or 'all'}"
        if self.dst:
            text += f" to {self.dst}"
        if self.iif:
            text += f" iif {self.iif}"
        if self.oif:
            text += f" oif {self.oif}"
        if self.fwmark is not None:
            text += f" fwmark {self.fwmark:#x}" + (f"/{self.fwmask:#x}" if self.fwmask is not None else "")
        text += f" table {self.table}"
        if self.priority is not None:
            text += f" priority {self.priority}"
        return text


def parse_address(words: Sequence[str]) -> AddressSpec:
    """Parse a virtual_ipaddress line (see the module docstring for the grammar)."""
    if not words:
        raise SpecError("empty address")
    address = _interface(words[0])
    fields: dict = {}
    rest = _Words(words[1:], "address")
    for word in rest:
        if word == "dev":
            fields["dev"] = rest.value(word)
        elif word in ("brd", "broadcast"):
            value = rest.value(word)
            if address.version != 4:
                raise SpecError("brd only applies to IPv4 addresses")
            fields["broadcast"] = (address.network.broadcast_address if value == "+"
                                   else _address(value, version=4))
        elif word == "scope":
            fields["scope"] = _scope(rest.value(word))
        elif word == "label":
            fields["label"] = rest.value(word)
        elif word == "peer":
            fields["peer"] = _address(rest.value(word), version=address.version)
        else:
            rest.unknown(word)
    return AddressSpec(address=address, **fields)


def parse_route(words: Sequence[str]) -> RouteSpec:
    """Parse a virtual_routes / static_routes line (see the module docstring for the grammar)."""
    fields: dict = {}
    dst: str | None = None
    family_hint: int | None = None
    rest = _Words(words, "route")
    for word in rest:
        if word in ROUTE_TYPES and dst is None and "type" not in fields:
            fields["type"] = word
        elif word == "to":
            dst = rest.value(word)
        elif word in ("via", "gw"):
            value = rest.value(word)
            if value in ("inet", "inet6"):
                family_hint = 4 if value == "inet" else 6
                value = rest.value(word)
            fields["via"] = _address(value, version=family_hint)
        elif word in ("dev", "oif"):
            fields["dev"] = rest.value(word)
        elif word == "src":
            fields["src"] = _address(rest.value(word))
        elif word == "table":
            fields["table"] = _table(rest.value(word))
        elif word in ("metric", "priority", "preference"):
            fields["metric"] = _number(rest.value(word), word, 0, 2**32 - 1)
        elif word == "scope":
            fields["scope"] = _scope(rest.value(word))
        elif word == "onlink":
            fields["onlink"] = True
        elif dst is None and (word == "default" or word[:1].isdigit() or ":" in word):
            dst = word
        else:
            rest.unknown(word)
    if dst is None:
        raise SpecError("route has no destination (PREFIX or default)")
    versions = {a.version for a in (fields.get("via"), fields.get("src")) if a is not None}
    if dst == "default":
        version = family_hint or (versions.pop() if len(versions) == 1 else 4)
        fields["dst"] = ipaddress.ip_network("::/0" if version == 6 else "0.0.0.0/0")
    else:
        fields["dst"] = _network(dst)
    if any(v != fields["dst"].version for v in versions):
        raise SpecError(f"route {dst}: addresses mix IPv4 and IPv6")
    return RouteSpec(**fields)


def parse_rule(words: Sequence[str]) -> RuleSpec:
    """Parse a virtual_rules / static_rules line (see the module docstring for the grammar)."""
    fields: dict = {}
    rest = _Words(words, "rule")
    for word in rest:
        if word in ("from", "to"):
            value = rest.value(word)
            if value not in ("all", "default"):
                fields["src" if word == "from" else "dst"] = _network(value)
        elif word in ("iif", "dev"):
            fields["iif"] = rest.value(word)
        elif word == "oif":
            fields["oif"] = rest.value(word)
        elif word == "fwmark":
            mark, _, mask = rest.value(word).partition("/")
            fields["fwmark"] = _number(mark, word, 0, 2**32 - 1)
            if mask:
                fields["fwmask"] = _number(mask, "fwmark mask", 0, 2**32 - 1)
        elif word in ("table", "lookup"):
            fields["table"] = _table(rest.value(word))
        elif word in ("priority", "preference", "pref"):
            fields["priority"] = _number(rest.value(word), word, 0, 2**32 - 1)
        else:
            rest.unknown(word)
    versions = {n.version for n in (fields.get("src"), fields.get("dst")) if n is not None}
    if len(versions) > 1:
        raise SpecError("rule mixes IPv4 and IPv6 prefixes")
    return RuleSpec(version=versions.pop() if versions else 4, **fields)


class _Words:
    """Iterator over a line's words that can also take the value following a keyword."""

    def __init__(self, words: Sequence[str], what: str) -> None:
        self._words = list(words)
        self._pos = 0
        self._what = what

    def __iter__(self) -> _Words:
        return self

    def __next__(self) -> str:
        if self._pos >= len(self._words):
            raise StopIteration
        self._pos += 1
        return self._words[self._pos - 1]

    def value(self, keyword: str) -> str:
        if self._pos >= len(self._words):
            raise SpecError(f"{self._what}: '{keyword}' needs a value")
        return next(self)

    def unknown(self, word: str) -> None:
        raise SpecError(f"{self._what}: unsupported word '{word}'")


def _address(text: str, version: int | None = None) -> IPAddress:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise SpecError(f"'{text}' is not an IP address") from None
    if version is not None and address.version != version:
        raise SpecError(f"'{text}' is not an IPv{version} address")
    return address


def _interface(text: str) -> IPInterface:
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        raise SpecError(f"'{text}' is not an IP address with optional /prefix") from None


def _network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text)
    except ValueError as exc:
        raise SpecError(f"'{text}' is not a network prefix ({exc})") from None


def _number(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise SpecError(f"{what} '{text}' is not a number") from None
    if not low <= value <= high:
        raise SpecError(f"{what} {value} is out of range {low}-{high}")
    return value


def _scope(text: str) -> int:
    return SCOPES[text] if text in SCOPES else _number(text, "scope", 0, 255)


def _table(text: str) -> int:
    return TABLES[text] if text in TABLES else _number(text, "table", 1, 2**32 - 1)
