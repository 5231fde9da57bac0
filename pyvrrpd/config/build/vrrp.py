"""The VRRP section: ``vrrp_instance``, ``vrrp_sync_group``, and the smaller blocks of
keepalived's VRRP process (``garp_group``, ``static_*``, ``linkbeat_interfaces``,
``interface_up_down_delays``).

An instance is read in two steps, as keepalived does: its keywords into a draft while
its block is read (:func:`instance`), then, once every block is read, the defaults,
inherited values and corrections that need the whole file (:func:`sync_groups` runs
:func:`_complete` for each).
"""

from __future__ import annotations

import dataclasses
import re

from pyvrrpd.config import model as m
from pyvrrpd.config.build import global_defs, scripts
from pyvrrpd.config.build.addresses import build_address, build_route, build_rule
from pyvrrpd.config.build.state import Builder
from pyvrrpd.config.build.values import (
    IFNAMSIZ,
    NEWER_KEYWORD,
    SECOND,
    UINT32_MAX,
    arg,
    block_words,
    fmt_seconds,
    int_arg,
    parse_int,
    parse_ip,
    read_bool,
    read_int,
    read_timer,
    timer_arg,
)
from pyvrrpd.config.diagnostics import Span
from pyvrrpd.config.lexer import Word
from pyvrrpd.config.parser import Node

_INTERFACE = m.TrackKind.INTERFACE

# ------------------------------------------------------------------ vrrp_instance: reading


def instance(b: Builder, node: Node) -> None:
    r = b.r
    if len(node.texts) != 2:
        r.error(node.span, "vrrp_instance needs exactly one name; this block is ignored")
        return
    name = node.texts[1]
    if name in b.instance_names:
        r.error(node.span, f"vrrp_instance {name} is already defined ({b.instance_names[name]}); "
                           "this definition is ignored")
        return
    b.instance_names[name] = node.span
    d = _InstanceDraft(name, node, f"vrrp_instance {name}")
    for c in node.children:
        instance_keyword(b, d, c)
    _instance_end(b, d)
    b.drafts.append(d)


def _set_family(b: Builder, d: "_InstanceDraft", version: int, span: Span, what: str) -> bool:
    if d.family is None:
        d.family = version
        return True
    if d.family != version:
        b.r.warn(span, f"{d.owner}: {what} is IPv{version} but the instance is IPv{d.family}; ignored")
        return False
    return True


def instance_keyword(b: Builder, d: "_InstanceDraft", c: Node) -> None:
    r, kw, a, k = b.r, d.kw, arg(c), c.keyword
    owner = d.owner
    match k:
        case "state" if a is not None:
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
        case "interface" if a is not None:
            ifname = b.ifname(c.words[1], f"{owner}: interface")
            if ifname is not None:
                kw["interface"] = ifname
                d.interface_missing = not b.host_interface(c.words[1], f"interface {ifname} of {owner}")
        case "virtual_router_id" if a is not None:
            vrid = parse_int(a)
            if vrid is None or not 1 <= vrid <= 255:
                r.error(c.words[1].span, f"{owner}: virtual_router_id '{a}' is invalid (must be 1-255); "
                                "the instance cannot run")
                d.vrid_bad = True
            else:
                kw["vrid"] = vrid
        case "priority" if a is not None:
            v = int_arg(r, c, 1, 255, f"{owner}: priority", "using the default 100")
            d.priority = m.DEFAULT_PRIORITY if v is None else v
        case "advert_int" if a is not None:
            v = timer_arg(r, c, SECOND // 100, 255 * SECOND, f"{owner}: advert_int", "using 1s")
            if v is not None:
                kw["advert_int_us"] = v
        case "version" if a is not None:
            v = int_arg(r, c, 2, 3, f"{owner}: version", "ignoring it")
            if v is not None:
                if (d.version is not None and d.version != v) or (v == 2 and d.family == 6):
                    r.warn(c.words[1].span, f"{owner}: version {v} conflicts with the version already configured "
                                   f"or implied ({d.version or 3}); ignored")
                else:
                    d.version = v
        case "native_ipv6":
            if d.family == 4:
                r.warn(c.span, f"{owner}: native_ipv6 with IPv4 addresses; ignored")
            else:
                d.family, d.version = 6, 3
        case "virtual_ipaddress":
            for item in c.items:
                vip = build_address(r, b.ifhost, item, static=False, owner=d.owner, block=k)
                if vip is not None and _set_family(b, d, vip.address.version, vip.span, f"address {item[0].text}"):
                    d.vips.append(vip)
        case "virtual_ipaddress_excluded":
            for item in c.items:
                vip = build_address(r, b.ifhost, item, static=False, owner=d.owner, block=k)
                if vip is not None:
                    d.evips.append(vip)
        case "virtual_routes":
            for item in c.items:
                rt = build_route(r, b.ifhost, item, static=False, owner=d.owner)
                if rt is not None:
                    d.routes.append(rt)
        case "virtual_rules":
            for item in c.items:
                ru = build_rule(r, b.ifhost, item, static=False, owner=d.owner, next_pref=b.next_rule_pref)
                if ru is not None:
                    d.rules.append(ru)
        case "unicast_peer":
            d.unicast_configured = True
            for item in c.items:
                _unicast_peer(b, d, item)
        case "unicast_src_ip" | "mcast_src_ip" if a is not None:
            if k == "unicast_src_ip":
                d.unicast_configured = True
            ip = parse_ip(a)
            if ip is None:
                r.warn(c.words[1].span, f"{owner}: {k} '{a}' is not a valid IP address; ignored")
            elif _set_family(b, d, ip.version, c.words[1].span, f"{k} {a}"):
                kw["src_ip"] = ip
        case "mcast_dst_ip" if a is not None:
            ip = parse_ip(a)
            if ip is None:
                r.warn(c.words[1].span, f"{owner}: mcast_dst_ip '{a}' is not a valid IP address; ignored")
            elif not ip.is_multicast or (ip.version == 6 and ip.packed[1] & 0x0F != 2):
                scope = " link-local" if ip.version == 6 else ""
                r.warn(c.words[1].span, f"{owner}: mcast_dst_ip {a} is not a{scope} multicast address; ignored")
            elif _set_family(b, d, ip.version, c.words[1].span, f"mcast_dst_ip {a}"):
                kw["mcast_dst_ip"] = ip
        case "unicast_ttl" if a is not None:
            v = int_arg(r, c, 0, 255, f"{owner}: unicast_ttl", "ignoring it")
            if v is not None:
                kw["unicast_ttl"] = v
        case "unicast_fault_no_peer":
            d.unicast_configured = True
            d.fault_no_peer = c.span
            kw["unicast_fault_no_peer"] = True
        case "check_unicast_src":
            d.unicast_configured = True
            kw["check_unicast_src"] = True
        case "old_unicast_checksum":
            d.unicast_configured = True
            when = c.words[1].text if len(c.words) > 1 else None
            kw["old_unicast_checksum"] = when != "never"
        case "v3_checksum_as_v2":
            r.note(c.span, NEWER_KEYWORD.format(k))
            v = read_bool(r, c, k) if len(c.words) > 1 else True
            if v is not None:
                kw["v3_checksum_as_v2"] = v
        case "track_src_ip":
            kw["track_src_ip"] = True
        case "nopreempt":
            d.nopreempt = True
        case "preempt":
            d.nopreempt = False
        case "preempt_delay" if a is not None:
            v = timer_arg(r, c, 0, 1000 * SECOND, f"{owner}: preempt_delay", "using 0")
            d.preempt_delay_us = 0 if v is None else v
        case "accept" | "no_accept":
            d.accept = k == "accept"
        case "skip_check_adv_addr":
            v = read_bool(r, c, f"{owner}: skip_check_adv_addr")
            if v is not None:
                kw["skip_check_adv_addr"] = v
        case "strict_mode":
            v = read_bool(r, c, f"{owner}: strict_mode")
            if v is not None:
                d.strict = v
        case "dont_track_primary" | "promote_secondaries" | "use_vmac_addr" | "vmac_xmit_base":
            kw[k] = True
        case "debug" if a is not None:
            v = int_arg(r, c, 0, 4, f"{owner}: debug", "ignoring it")
            if v is not None:
                kw["debug"] = v
        case "kernel_rx_buf_size" if a is not None:
            v = int_arg(r, c, 0, UINT32_MAX, f"{owner}: kernel_rx_buf_size", "ignoring it")
            if v is not None:
                kw["kernel_rx_buf_size"] = v
        case ("notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify_deleted" | "notify"
              | "notify_master_rx_lower_pri"):
            scripts.notify_keyword(b, d.notify, c, owner)
        case "smtp_alert" | "notify_priority_changes":
            v = read_bool(r, c, f"{owner}: {k}")
            if v is not None:
                kw[k] = v
        case "garp_master_delay" | "garp_lower_prio_delay" | "garp_master_refresh" if a is not None:
            v = int_arg(r, c, 0, UINT32_MAX // SECOND, f"{owner}: {k}", "ignoring it")
            if v is not None:
                d.garp[k + "_us"] = v * SECOND
        case "garp_master_repeat" | "garp_master_refresh_repeat" | "garp_lower_prio_repeat" if a is not None:
            v = int_arg(r, c, 0, 2**31 - 1, f"{owner}: {k}", "ignoring it")
            if v == 0 and k != "garp_lower_prio_repeat":
                r.warn(c.words[1].span, f"{owner}: {k} must be greater than 0; using 1")
                v = 1
            if v is not None:
                d.garp[k] = v
        case "down_timer_adverts" if a is not None:
            v = int_arg(r, c, 1, 100, f"{owner}: down_timer_adverts", "using the global value")
            if v is not None:
                kw["down_timer_adverts"] = v
        case "garp_extra_if" | "vmac_garp_intvl":
            v = global_defs.garp_extra_if(b, c, 0)
            if v is not None:
                kw["garp_extra_if_us"] = v
        case "lower_prio_no_advert" | "higher_prio_send_advert":
            v = read_bool(r, c, f"{owner}: {k}")
            if v is not None:
                d.adverts[k] = v
        case "use_vmac":
            _use_vmac(b, d, c)
        case "authentication":
            for ac in c.children:
                authentication_keyword(b, d, ac)
        case "track_interface" | "track_script" | "track_file" | "track_process" | "track_bfd":
            d.tracks += scripts.tracks(b, c, owner, scripts.TRACK_KINDS[k])


def authentication_keyword(b: Builder, d: "_InstanceDraft", c: Node) -> None:
    """A keyword of an instance's ``authentication`` block."""
    a = arg(c)
    match c.keyword:
        case "auth_type" if a is not None:
            if a in ("PASS", "AH"):
                d.auth_type = m.AuthType(a)
                d.auth_type_span = c.words[1].span
            else:
                b.r.warn(c.words[1].span, f"{d.owner}: unknown auth_type '{a}' (PASS or AH); ignored")
        case "auth_pass" if a is not None:
            d.auth_pass = a
            if len(a) > 8:
                b.r.warn(c.words[1].span, f"{d.owner}: auth_pass is longer than 8 characters; "
                                          "only the first 8 are used")
                d.auth_pass = a[:8]


def _unicast_peer(b: Builder, d: "_InstanceDraft", item: tuple[Word, ...]) -> None:
    r = b.r
    ip = parse_ip(item[0].text)
    if ip is None:
        r.warn(item[0].span, f"{d.owner}: unicast peer '{item[0].text}' is not a valid IP address; ignored")
        return
    if not _set_family(b, d, ip.version, item[0].span, f"unicast peer {item[0].text}"):
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


def _use_vmac(b: Builder, d: "_InstanceDraft", c: Node) -> None:
    r, kw = b.r, d.kw
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
        elif w.text in b.vmac_names:
            r.warn(w.span, f"{d.owner}: vrrp_instance {b.vmac_names[w.text]} already uses the VMAC "
                           f"name {w.text}; name ignored")
        else:
            kw["vmac_name"] = w.text
            b.vmac_names[w.text] = d.name
        i += 1


def _instance_end(b: Builder, d: "_InstanceDraft") -> None:
    """keepalived's checks when the vrrp_instance block closes (reported at its '}')."""
    r, kw = b.r, d.kw
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


def sync_group(b: Builder, node: Node) -> None:
    """Parse a sync group now (its tracks and scripts resolve in file order);
    its members are resolved once every instance is known."""
    r = b.r
    if len(node.texts) != 2:
        r.warn(node.span, "vrrp_sync_group needs exactly one name; this block is ignored")
        return
    name = node.texts[1]
    if any(s.name == name for s in b.sync_drafts):
        r.warn(node.span, f"vrrp_sync_group {name} is already defined; this definition is ignored")
        return
    s = _SyncDraft(name, node)
    for c in node.children:
        sync_group_keyword(b, s, c)
    b.sync_drafts.append(s)


def sync_group_keyword(b: Builder, s: _SyncDraft, c: Node) -> None:
    """One keyword of a vrrp_sync_group block."""
    r, k, owner = b.r, c.keyword, f"vrrp_sync_group {s.name}"
    match k:
        case "group":
            if s.members is not None:
                r.warn(c.span, f"{owner}: group is already given; ignored")
                return
            s.members = block_words(c.items)
            if not s.members:
                r.warn(c.end or c.span, f"{owner}: the group block is empty")
        case "track_interface" | "track_script" | "track_file" | "track_process" | "track_bfd":
            s.tracks += scripts.tracks(b, c, owner, scripts.TRACK_KINDS[k])
        case "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify":
            scripts.notify_keyword(b, s.notify, c, owner)
        case "smtp_alert" | "notify_priority_changes":
            v = read_bool(r, c, f"{owner}: {k}")
            if v is not None:
                s.kw[k] = v
        case "sync_group_tracking_weight" | "global_tracking":
            s.kw["tracking_weight"] = True


def _resolve_sync_members(b: Builder) -> None:
    """Which instances belong to which sync group (keepalived's vrrp_sync_set_group)."""
    r = b.r
    names = {d.name for d in b.drafts}
    for s in b.sync_drafts:
        owner = f"vrrp_sync_group {s.name}"
        for w in s.members or ():
            if w.text not in names:
                r.warn(w.span, f"{owner}: vrrp_instance {w.text} does not exist; ignored")
            elif w.text in b.member_of:
                r.warn(w.span, f"{owner}: vrrp_instance {w.text} is already in vrrp_sync_group "
                               f"{b.member_of[w.text].name}; ignored")
            elif w.text in s.valid:
                r.warn(w.span, f"{owner}: vrrp_instance {w.text} is listed twice")
            else:
                s.valid.append(w.text)
                b.member_of[w.text] = s
        if not s.valid:
            r.warn(s.node.span, f"{owner} has no valid members; it is removed")
        elif len(s.valid) == 1:
            r.warn(s.node.span, f"{owner} has only one member ({s.valid[0]}), which is probably not "
                                "what you want")


def sync_groups(b: Builder) -> tuple[m.SyncGroup, ...]:
    _resolve_sync_members(b)
    for d in b.drafts:
        inst = _complete(b, d)
        if inst is not None:
            b.instances.append(inst)
    out = []
    by_name = {i.name: i for i in b.instances}
    for s in b.sync_drafts:
        members = [n for n in s.valid if n in by_name]
        if not members:
            continue
        tracks = s.tracks
        if any(by_name[n].priority == m.OWNER_PRIORITY for n in members):
            tracks = []
            for t in s.tracks:
                if t.kind is not m.TrackKind.PROCESS:
                    if t.weight:
                        b.r.warn(t.span, f"vrrp_sync_group {s.name}: {t.name} cannot have a weight because "
                                         "a member has priority 255; using weight 0")
                    t = dataclasses.replace(t, weight=0)
                tracks.append(t)
        out.append(m.SyncGroup(name=s.name, members=tuple(members), tracks=tuple(tracks),
                               notify=m.Notify(**s.notify), span=s.node.span, **s.kw))
    return tuple(out)


# ------------------------------------------------------------------ vrrp_instance: completion


def _complete(b: Builder, d: "_InstanceDraft") -> m.VrrpInstance | None:
    """keepalived's vrrp_complete_instance: defaults, corrections, fatal checks."""
    r, kw, gd, owner, span = b.r, d.kw, b.gd, d.owner, d.node.span
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
        else:
            r.error(span, f"{owner}: unicast without 'interface' is rejected by keepalived 2.2.7 (#2270) "
                          "and by pyvrrpd; the instance cannot run")
        ok = False
    if d.unicast_configured and not d.peers:
        if d.fault_no_peer is None:
            r.warn(span, f"{owner}: unicast keywords are given but there are no unicast peers; using multicast")
        else:
            r.not_supported(d.fault_no_peer, "unicast_fault_no_peer", "vrrp_instance",
                            "with no unicast peers keepalived keeps the instance in FAULT; "
                            "pyvrrpd runs it with multicast")
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
        if auth_type is m.AuthType.AH:
            r.error(d.auth_type_span, f"{owner}: AH authentication is not supported by pyvrrpd; use PASS or none")

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

    own = kw.get("interface")
    tracks = []
    for t in d.tracks:
        if t.kind is _INTERFACE and t.name == own:
            r.warn(t.span, f"{owner}: tracking its own interface {own} is implicit; track_interface ignored")
        else:
            tracks.append(t)
    sync = b.member_of.get(d.name)
    sync_fixed = sync is not None and not sync.kw.get("tracking_weight")
    if sync_fixed or priority == m.OWNER_PRIORITY:
        why = f"it is in vrrp_sync_group {sync.name}" if sync_fixed else "its priority is 255"
        kept = []
        for t in tracks:
            if not t.weight or t.kind is m.TrackKind.PROCESS:
                kept.append(t)
            elif t.kind is _INTERFACE and sync_fixed or t.kind is m.TrackKind.FILE and t.weight == 1:
                r.warn(t.span, f"{owner}: tracked {t.kind.value} {t.name}: weight ignored because {why}; "
                               "using weight 0")
                kept.append(dataclasses.replace(t, weight=0))
            else:
                r.warn(t.span, f"{owner}: tracked {t.kind.value} {t.name} has a weight, which is not allowed "
                               f"because {why}; ignored")
        tracks = kept

    kw.update(garp)
    kw["tracks"] = tuple(tracks)
    kw["notify"] = m.Notify(**d.notify)
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


def cross_instance_checks(b: Builder) -> None:
    """Two instances on one (interface, VRID, family) cannot both run."""
    seen: dict[tuple[str, int, int], m.VrrpInstance] = {}
    for inst in b.instances:
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
            b.r.warn(inst.span, f"vrrp_instance {inst.name} shares {where} with vrrp_instance {other.name} "
                                "using other unicast peers; keepalived 2.2.7 rejects this")
        else:
            b.r.error(inst.span, f"vrrp_instance {inst.name} uses {where}, like vrrp_instance {other.name} "
                                 f"({other.span}); the instances cannot run")


# ------------------------------------------------------------------ other blocks of the VRRP process


def garp_group(b: Builder, node: Node) -> None:
    r = b.r
    kw: dict = {"span": node.span}
    interfaces: list[str] = []
    for c in node.children:
        a = arg(c)
        if c.keyword in ("garp_interval", "gna_interval") and a is not None:
            v = timer_arg(r, c, 0, 2**31 - 1, f"garp_group {c.keyword}", "ignoring it")
            if v is not None:
                kw[c.keyword + "_us"] = v
        elif c.keyword == "interface" and a is not None:
            if b.host_interface(c.words[1], f"interface {a} in garp_group"):
                interfaces.append(a)
        elif c.keyword == "interfaces":
            words = block_words(c.items)
            if not words:
                r.warn(c.end or c.span, "garp_group interfaces block is empty")
            for w in words:
                if b.ifhost is not None and b.ifhost.interface_exists(w.text) is False:
                    r.host(c.end or w.span, f"interface {w.text} in garp_group does not exist on this host")
                interfaces.append(w.text)
    if "garp_interval_us" not in kw and "gna_interval_us" not in kw:
        r.warn(node.end or node.span, "garp_group has neither garp_interval nor gna_interval; it is removed")
        return
    kw["interfaces"] = tuple(interfaces)
    b.garp_groups.append(m.GarpGroup(**kw))


def static_ipaddress(b: Builder, node: Node) -> None:
    for item in node.items:
        a = build_address(b.r, b.ifhost, item, static=True, owner="static_ipaddress")
        if a is not None:
            b.static_addresses.append(a)


def static_routes(b: Builder, node: Node) -> None:
    for item in node.items:
        rt = build_route(b.r, b.ifhost, item, static=True, owner="static_routes")
        if rt is not None:
            b.static_routes.append(rt)


def static_rules(b: Builder, node: Node) -> None:
    for item in node.items:
        ru = build_rule(b.r, b.ifhost, item, static=True, owner="static_rules", next_pref=b.next_rule_pref)
        if ru is not None:
            b.static_rules.append(ru)


def linkbeat_interfaces(b: Builder, node: Node) -> None:
    for item in node.items:
        b.host_interface(item[0], f"interface {item[0].text} in linkbeat_interfaces")


def interface_up_down_delays(b: Builder, node: Node) -> None:
    for item in node.items:
        b.host_interface(item[0], f"interface {item[0].text} in interface_up_down_delays")
        _up_down_delays(b, item)


def _up_down_delays(b: Builder, item: tuple[Word, ...]) -> None:
    for w in item[1:3]:
        read_timer(b.r, w, 0, 255 * SECOND, f"interface {item[0].text} up/down delay", "ignoring the delays")


class _InstanceDraft:
    """A vrrp_instance between parsing and completion (mutable on purpose).

    (The drafts are plain classes: a dataclass costs a millisecond to create at import.)
    """

    __slots__ = (
        "name", "node", "owner", "kw", "family", "version", "state", "priority", "strict", "accept", "vrid_bad",
        "interface_missing", "unicast_configured", "fault_no_peer", "nopreempt", "preempt_delay_us", "auth_type",
        "auth_type_span", "auth_pass", "vips", "evips", "routes", "rules", "peers", "garp", "adverts", "tracks",
        "notify",
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
        self.fault_no_peer: Span | None = None  # where unicast_fault_no_peer is
        self.nopreempt = False
        self.preempt_delay_us = 0
        self.auth_type: m.AuthType | None = None
        self.auth_type_span: Span | None = None
        self.auth_pass: str | None = None
        self.vips: list[m.VirtualAddress] = []
        self.evips: list[m.VirtualAddress] = []
        self.routes: list[m.Route] = []
        self.rules: list[m.Rule] = []
        self.peers: list[m.UnicastPeer] = []
        self.garp: dict = {}
        self.adverts: dict = {}
        self.tracks: list[m.Track] = []  # every track_* block's, in config order
        self.notify: dict[str, m.Script | None] = {}  # Notify field -> script (None: given but unusable)


class _SyncDraft:
    __slots__ = ("name", "node", "kw", "members", "valid", "tracks", "notify")

    def __init__(self, name: str, node: Node) -> None:
        self.name = name
        self.node = node
        self.kw: dict = {}
        self.members: list[Word] | None = None
        self.valid: list[str] = []
        self.tracks: list[m.Track] = []
        self.notify: dict[str, m.Script | None] = {}
