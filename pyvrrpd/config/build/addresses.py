"""Address, route and rule lines: ``virtual_ipaddress``, ``virtual_routes``, ``virtual_rules`` and
their ``static_*`` twins (keepalived's alloc_ipaddress, alloc_route, alloc_rule)."""

from __future__ import annotations

import ipaddress

from pyvrrpd.config import model as m
from pyvrrpd.config.build.host import Host
from pyvrrpd.config.build.values import (
    IFNAMSIZ,
    SCOPES,
    UINT32_MAX,
    Report,
    parse_int,
    parse_ip,
    parse_prefix,
    read_int,
)
from pyvrrpd.config.keywords import NOT_SUPPORTED_ADDRESS_OPTIONS
from pyvrrpd.config.lexer import Word


_VIP_FLAGS = {
    "home": "home",
    "-nodad": "nodad",
    "mngtmpaddr": "mngtmpaddr",
    "noprefixroute": "noprefixroute",
    "autojoin": "autojoin",
    "no_track": "no_track",
}


def build_address(
    r: Report, host: Host | None, item: tuple[Word, ...], *, static: bool, owner: str, block: str | None = None
) -> m.VirtualAddress | None:
    """One ``virtual_ipaddress``-style line (keepalived's alloc_ipaddress); owner prefixes messages.

    ``block``: the value block the line is in, to say where an option that pyvrrpd does not act
    on yet is (None: the whole block is not supported yet, and the parser says so).
    """
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
        if block is not None and opt in NOT_SUPPORTED_ADDRESS_OPTIONS:
            r.not_supported(item[i].span, opt, block)
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
    r: Report, host: Host | None, item: tuple[Word, ...], *, static: bool, owner: str
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
    r: Report, host: Host | None, item: tuple[Word, ...], *, static: bool, owner: str, next_pref: dict[int, int]
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
