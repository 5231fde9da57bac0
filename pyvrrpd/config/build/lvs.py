"""The LVS section: ``virtual_server_group``, ``virtual_server`` and its ``real_server`` blocks.

A virtual server is read into a draft in file order; once every block is read,
:func:`virtual_servers` validates each as keepalived's validate_check_config does
(groups resolved, protocol and port rules, what real servers and checkers inherit).
The checkers themselves are in :mod:`pyvrrpd.config.build.checkers`.
"""

from __future__ import annotations

import ipaddress
import re

from pyvrrpd.config import model as m
from pyvrrpd.config.build import checkers, scripts
from pyvrrpd.config.build.checkers import CHECKERS, rs_owner
from pyvrrpd.config.build.state import Builder
from pyvrrpd.config.build.values import (
    IPVS_WEIGHT_LIMIT,
    LVS_FLAGS,
    LVS_MAX_TIMEOUT,
    LVS_SCHEDULERS,
    SECOND,
    UINT32_MAX,
    arg,
    int_arg,
    int_in,
    parse_int,
    parse_ip,
    parse_port,
    read_bool,
    read_int,
    timer_arg,
)
from pyvrrpd.config.lexer import Word
from pyvrrpd.config.parser import Node

_NAT, _TUN = m.LbKind.NAT, m.LbKind.TUN

# ------------------------------------------------------------------ virtual_server_group


def virtual_server_group(b: Builder, node: Node) -> None:
    r = b.r
    if len(node.texts) < 2:
        return
    name = node.texts[1]
    if name in b.vsgs:
        r.warn(node.span, f"virtual_server_group {name} is defined twice; this definition is ignored")
        return
    entries = []
    for item in node.items:
        e = _vsg_entry(b, name, item)
        if e is not None:
            entries.append(e)
    if not entries:
        r.warn(node.end or node.span, f"virtual_server_group {name} has no valid entries; it is removed")
        return
    b.vsgs[name] = m.VirtualServerGroup(name=name, entries=tuple(entries), span=node.span)


def _vsg_entry(b: Builder, group: str, item: tuple[Word, ...]) -> m.VirtualServerGroupEntry | None:
    r, first = b.r, item[0]
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


# ------------------------------------------------------------------ virtual_server


def virtual_server(b: Builder, node: Node) -> None:
    r = b.r
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
        vs_keyword(b, d, c)
    _vs_end(b, d)
    b.vs_drafts.append(d)


def vs_keyword(b: Builder, d: "_VsDraft", c: Node) -> None:
    k = c.keyword
    if k == "real_server":  # first: the most common keyword by far
        real_server(b, d, c)
        return
    r, kw, a, owner = b.r, d.kw, arg(c), d.label
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
        _lb_kind(b, c, owner, kw)
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
            kw[k] = scripts.notify_script(b, c, "checker", f"{owner}: {k}")
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
            _lb_kind(b, c, owner, d.sorry)


def _lb_kind(b: Builder, c: Node, owner: str, kw: dict) -> None:
    """``lvs_method NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]``: sets kw's
    ``lb_kind`` and ``tunnel`` (None: plain ipip), as keepalived's svr_forwarding_handler."""
    a = c.texts[1]
    if a not in ("NAT", "DR", "TUN"):
        b.r.warn(c.words[1].span,
                    f"{owner}: unknown forwarding method '{a}' (NAT, DR or TUN, upper case); ignored")
        return
    kw["lb_kind"] = m.LbKind(a)
    kw["tunnel"] = None
    if len(c.texts) > 2:
        if a != "TUN":
            b.r.warn(c.words[2].span, f"{owner}: '{c.texts[2]}' is only valid after TUN; ignored")
        else:
            kw["tunnel"] = _tunnel(b, c, owner)


_TUNNEL_TYPES = ("ipip", "gue", "gre")
_CSUMS = ("nocsum", "csum", "remcsum")


def _tunnel(b: Builder, c: Node, owner: str) -> m.Tunnel | None:
    """The options after TUN; on any problem (reported) keepalived keeps none of them: plain ipip."""
    r, words = b.r, c.words
    kind, port, csum = "ipip", 0, "nocsum"
    i = 2
    while i < len(words):
        w = words[i]
        if w.text in ("type", "port"):
            if i + 1 >= len(words):
                r.warn(w.span, f"{owner}: TUN '{w.text}' has no value; tunnel options ignored (ipip)")
                return None
            v = words[i + 1]
            if w.text == "type":
                if v.text not in _TUNNEL_TYPES:
                    r.warn(v.span, f"{owner}: unknown tunnel type '{v.text}' (ipip, gue or gre); "
                                   "tunnel options ignored (ipip)")
                    return None
                kind = v.text
            else:
                p = parse_port(v.text)
                if not p:
                    r.warn(v.span, f"{owner}: invalid tunnel port '{v.text}' (1-65535); tunnel options ignored (ipip)")
                    return None
                port = p
            i += 2
            continue
        if w.text not in _CSUMS:
            r.warn(w.span, f"{owner}: unknown tunnel option '{w.text}' (type, port, nocsum, csum, remcsum); "
                           "tunnel options ignored (ipip)")
            return None
        csum = w.text
        i += 1
    problem = None
    if (kind == "gue") != (port != 0):
        problem = "a gue tunnel needs a port and other tunnels take none"
    elif kind == "ipip" and csum != "nocsum":
        problem = "an ipip tunnel has no checksum option"
    elif kind == "gre" and csum == "remcsum":
        problem = "a gre tunnel has no remote checksum option"
    if problem is not None:
        r.warn(words[2].span, f"{owner}: {problem}; tunnel options ignored (ipip)")
        return None
    if kind == "ipip":
        return None
    return m.Tunnel(type=kind, port=port, csum=csum, span=words[2].span)


def _vs_end(b: Builder, d: "_VsDraft") -> None:
    """keepalived's check when the virtual_server block closes: the sorry server's family."""
    if d.sorry is None or d.sorry.get("lb_kind", d.kw.get("lb_kind")) is m.LbKind.TUN:
        return
    fam = d.sorry["address"].version
    vs_family = d.version if "address" in d.kw else d.family
    if vs_family is not None and vs_family != fam:
        b.r.warn(d.node.end or d.node.span, f"{d.label}: sorry_server {d.sorry['address']} is not the same "
                                            "IP version as the virtual server; it is ignored")
        d.sorry = None
    elif d.family is None:
        d.family = fam


# ------------------------------------------------------------------ real_server


def real_server(b: Builder, d: "_VsDraft", c: Node) -> None:
    r, t = b.r, c.texts
    if len(t) < 2:
        return
    addr = parse_ip(t[1])
    port = parse_port(t[2]) if len(t) > 2 else 0
    if addr is None or port is None:
        r.error(c.span, f"{d.label}: real_server '{' '.join(t[1:3])}' is not a valid address [port]; "
                        "this real_server is ignored")
        return
    rs = _RsDraft({"address": addr, "port": port or None, "span": c.span}, d.label, t)
    read_keyword, checker, known = rs_keyword, checkers.checker, b.rs_read
    for cc in c.children:
        read = known.get(cc.texts)
        if read is not None:  # read before without a message ("weight 1"; see rs_keyword)
            rs.kw[read[0]] = read[1]
        elif cc.keyword in CHECKERS:
            checker(b, rs, cc)
        else:
            read_keyword(b, rs, cc)
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


def rs_keyword(b: Builder, rs: "_RsDraft", c: Node) -> None:
    """A real_server keyword other than a checker."""
    k = c.keyword
    r, kw, a = b.r, rs.kw, arg(c)
    if k == "weight" and a is not None:
        v = int_in(a, 0, IPVS_WEIGHT_LIMIT)
        if v is not None:
            # Every real server has a weight, mostly the same: the next "weight 1" is a dict
            # lookup in real_server() (10,000 real servers: the first pass 44.3 -> 42.8 ms, medians of
            # 2 x 12 alternating runs)
            b.rs_read[c.texts] = ("weight", v)
        else:
            v = read_int(r, c.words[1], 0, IPVS_WEIGHT_LIMIT, f"{rs.owner}: weight", "ignoring it")
        if v is not None:
            kw["weight"] = v
    elif k == "lvs_method" and a is not None:
        _lb_kind(b, c, rs.owner, kw)
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
            kw[k] = scripts.notify_script(b, c, "checker", f"{rs.owner}: {k}")
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


# ------------------------------------------------------------------ validation (once every block is read)


def virtual_servers(b: Builder) -> None:
    for d in b.vs_drafts:
        vs = _vs_validate(b, d)
        if vs is not None:
            b.vss.append(vs)


def _vs_validate(b: Builder, d: "_VsDraft") -> m.VirtualServer | None:
    """keepalived's validate_check_config for one virtual server."""
    r, kw, span, owner = b.r, d.kw, d.node.span, d.label
    group = b.vsgs.get(kw["group"]) if "group" in kw else None
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
        "tunnel": kw.get("tunnel"),
        "alpha": kw.get("alpha", False),
        "inhibit_on_failure": kw.get("inhibit_on_failure", False),
        "connect_timeout_us": kw.get("connect_timeout_us", 5 * SECOND),
        "delay_loop_us": kw.get("delay_loop_us", 60 * SECOND),
        "weight": d.weight,
    }
    for key in ("retry", "delay_before_retry_us", "warmup_us"):
        if kw.get(key) is not None:
            inherited[key] = kw[key]
    g = b.gd.smtp_alert_checker if b.gd.smtp_alert_checker is not None else b.gd.smtp_alert
    inherited["smtp_alert"] = True if g is None else g

    rss: list[m.RealServer] = []
    seen: set[tuple[type, int, int | None]] = set()
    weight_sum = 0
    finish_checker, make_rs = checkers.finish_checker, m.RealServer
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
            _rs_port(b, rs, kw, fwmark_vs, group_addrs, group_marks)
        elif rkw["port"] is None and not (fwmark_vs or group_addrs or group_marks):
            rkw["port"] = vs_port  # NAT may remap the port: the service's unless given
        rkw["checkers"] = tuple([finish_checker(b, ck, rkw) for ck in rs.checkers])
        weight_sum += rkw["weight"]
        rss.append(make_rs(**rkw))

    if d.sorry is not None:
        sorry = dict(d.sorry)
        if "lb_kind" not in sorry:
            sorry["lb_kind"], sorry["tunnel"] = vs_kind, kw.get("tunnel")
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
        g = b.gd.smtp_alert_checker if b.gd.smtp_alert_checker is not None else b.gd.smtp_alert
        kw["smtp_alert"] = bool(g)
    if d.family is not None and "ip_family" not in kw:
        kw["ip_family"] = d.family
    return m.VirtualServer(**kw)


def _rs_port(b: Builder, rs: "_RsDraft", kw: dict, fwmark_vs: bool, group_addrs: list, group_marks: list) -> None:
    """Port rules of a DR/TUN real server: its port must be the service's."""
    r, rkw = b.r, rs.kw
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


class _RsDraft:
    __slots__ = ("kw", "vs_label", "texts", "checkers")

    def __init__(self, kw: dict, vs_label: str, texts: tuple[str, ...]) -> None:
        self.kw = kw
        self.vs_label = vs_label
        self.texts = texts  # the real_server statement's
        self.checkers: list = []  # checkers._CheckerDraft

    @property
    def owner(self) -> str:
        """The real server in messages (made only for a message)."""
        return rs_owner(self.vs_label, self.texts)



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
