"""The ``global_defs`` block: process-wide settings and the VRRP defaults instances inherit."""

from __future__ import annotations

from pyvrrpd.config import model as m
from pyvrrpd.config.build import scripts
from pyvrrpd.config.build.state import Builder
from pyvrrpd.config.build.values import (
    LVS_MAX_TIMEOUT,
    NEWER_KEYWORD,
    RT_PRIORITY_MAX,
    SECOND,
    UINT32_MAX,
    arg,
    block_words,
    int_arg,
    parse_int,
    parse_ip,
    parse_port,
    read_bool,
    read_int,
    timer_arg,
)
from pyvrrpd.config.parser import Node


def global_defs(b: Builder, node: Node) -> m.GlobalDefs:
    r = b.r
    g: dict = {"span": node.span}
    emails: list[str] = []
    nftables_seen = False
    lower_prio_delay = lower_prio_repeat = None
    sync_daemon_seen = False
    for c in node.children:
        kw, a = c.keyword, arg(c)
        match kw:
            case "router_id" if a is not None:
                g["router_id"] = a
            case "notification_email":
                words = block_words(c.items)
                if not words:
                    r.warn(c.end or c.span, "notification_email block is empty")
                emails.extend(w.text for w in words)
            case "notification_email_from" if a is not None:
                g["notification_email_from"] = a
            case "smtp_server" if a is not None:
                g["smtp_server"] = a
                if parse_ip(a) is None and b.host is not None and b.host.name_resolves(a) is False:
                    r.host(c.words[1].span, f"smtp_server {a} does not resolve on this host, so no email can be sent")
                port = arg(c, 2)
                if port is not None:
                    p = parse_port(port)
                    if p is None or p == 0:
                        r.warn(c.words[2].span, f"smtp_server port '{port}' is invalid; smtp_server ignored")
                        g.pop("smtp_server")
                    else:
                        g["smtp_port"] = p
            case "smtp_helo_name" if a is not None:
                g["smtp_helo_name"] = a
            case "smtp_connect_timeout" if a is not None:
                v = int_arg(r, c, 0, UINT32_MAX // SECOND, "smtp_connect_timeout", "using 30s")
                if v == 0:
                    r.warn(c.words[1].span, "smtp_connect_timeout must be greater than 0; using 1s")
                    v = 1
                if v is not None:
                    g["smtp_connect_timeout_us"] = v * SECOND
            case "smtp_alert" | "smtp_alert_vrrp" | "smtp_alert_checker" | "checker_log_all_failures":
                v = read_bool(r, c, kw)
                if v is not None:
                    g[kw] = v
            case "vrrp_version" if a is not None:
                v = int_arg(r, c, 2, 3, "vrrp_version", "using 2")
                if v is not None:
                    g["vrrp_version"] = v
            case "vrrp_mcast_group4" | "vrrp_mcast_group6" if a is not None:
                ip = parse_ip(a)
                version = 4 if kw.endswith("4") else 6
                if ip is None or ip.version != version or not ip.is_multicast:
                    r.warn(c.words[1].span, f"{kw} '{a}' is not an IPv{version} multicast address; using the default")
                else:
                    g[kw] = ip
            case "vrrp_garp_master_delay" | "vrrp_garp_master_refresh" | "vrrp_garp_lower_prio_delay" if a is not None:
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
            case "vrrp_garp_master_repeat" | "vrrp_garp_master_refresh_repeat" if a is not None:
                v = int_arg(r, c, 0, UINT32_MAX, kw, "ignoring it")
                if v == 0:
                    r.warn(c.words[1].span, f"{kw} must be greater than 0; using 1")
                    v = 1
                if v is not None:
                    g[kw] = v
            case "vrrp_garp_lower_prio_repeat" if a is not None:
                v = int_arg(r, c, 0, 2**31 - 1, kw, "ignoring it")
                if v is not None:
                    lower_prio_repeat = g[kw] = v
            case "vrrp_garp_interval" | "vrrp_gna_interval" if a is not None:
                v = timer_arg(r, c, 1, UINT32_MAX, kw, "ignoring it")
                if v is not None:
                    g[kw + "_us"] = v
            case "log_unknown_vrids" | "v3_checksum_as_v2":
                g[kw] = True
                if kw == "v3_checksum_as_v2":
                    r.note(c.span, NEWER_KEYWORD.format(kw))
            case "vrrp_min_garp":
                if read_bool(r, c, kw):
                    g["vrrp_min_garp"] = True
                    if g.get("vrrp_garp_master_repeat", 5) == 5:
                        g["vrrp_garp_master_repeat"] = 1
                    if g.get("vrrp_garp_master_refresh_repeat", 1) == 1:
                        g["vrrp_garp_master_refresh_repeat"] = 0
                    if g.get("vrrp_garp_master_delay_us", 5 * SECOND) == 5 * SECOND:
                        g["vrrp_garp_master_delay_us"] = 0
            case "vrrp_down_timer_adverts" if a is not None:
                v = int_arg(r, c, 1, 100, kw, "using 3")
                if v is not None:
                    g[kw] = v
            case "vrrp_lower_prio_no_advert" | "vrrp_higher_prio_send_advert" | "vrrp_notify_priority_changes":
                v = read_bool(r, c, kw)
                if v is not None:
                    g[kw] = v
            case "vrrp_strict" | "vrrp_check_unicast_src" | "vrrp_skip_check_adv_addr" | "lvs_flush":
                g[kw] = True
            case "vrrp_startup_delay" if a is not None:
                v = timer_arg(r, c, 0, 3600 * SECOND, kw, "ignoring it")
                if v is not None:
                    g["vrrp_startup_delay_us"] = v
            case "dynamic_interfaces":
                g["dynamic_interfaces"] = True
                if a is not None and a != "allow_if_changes":
                    r.warn(c.words[1].span, f"unknown dynamic_interfaces option '{a}'; ignored")
            case "default_interface" if a is not None:
                g["default_interface"] = a
                b.host_interface(c.words[1], f"default_interface {a}")
            case "script_user" if a is not None:
                g["script_user"] = a
                g["script_group"] = c.texts[2] if len(c.texts) > 2 else None
                if b.script_user_failed and b.host is not None:
                    problem = b.host.user_problem(a, g["script_group"])
                    r.host(c.words[1].span, f"script_user: {problem}; scripts without their own user cannot run")
            case "enable_script_security":
                g["enable_script_security"] = True
            case "notify_fifo" | "vrrp_notify_fifo" | "lvs_notify_fifo" if a is not None:
                g[kw] = a
            case "notify_fifo_script" | "vrrp_notify_fifo_script" | "lvs_notify_fifo_script":
                subsystem = {"vrrp": "vrrp", "lvs_": "checker"}.get(kw[:4], "vrrp")
                g[kw] = scripts.notify_script(b, c, subsystem, kw)
            case "startup_script" | "shutdown_script":
                if a is None:
                    r.warn(c.span, f"{kw} has no command; ignored")
                else:
                    g[kw] = scripts.notify_script(b, c, "parent", kw)
            case "startup_script_timeout" | "shutdown_script_timeout" if a is not None:
                v = int_arg(r, c, 1, 1000, kw, "using 10s")
                if v is not None:
                    g[kw + "_us"] = v * SECOND
            case "lvs_flush_on_stop" | "lvs_flush_onstop":
                if a is None:
                    g["lvs_flush_on_stop"] = "FULL"
                elif a == "VS":
                    g["lvs_flush_on_stop"] = "VS"
                else:
                    r.warn(c.words[1].span, f"unknown lvs_flush_on_stop type '{a}'; ignored")
            case "lvs_timeouts":
                g["lvs_timeouts"] = _lvs_timeouts(b, c, g.get("lvs_timeouts", (0, 0, 0)))
            case "lvs_sync_daemon":
                if sync_daemon_seen:
                    r.warn(c.span, "lvs_sync_daemon is given twice; this one is ignored")
                    continue
                sync_daemon_seen = True
                _lvs_sync_daemon(b, c)
                g["lvs_sync_daemon"] = tuple(w.text for w in c.words[1:])
            case "vrrp_rt_priority" | "checker_rt_priority" | "bfd_rt_priority" if a is not None:
                v = parse_int(a)
                if v is None:
                    r.warn(c.words[1].span, f"{kw} '{a}' is not a base-10 number; ignored")
                elif not 1 <= v <= RT_PRIORITY_MAX:
                    clamp = min(max(v, 1), RT_PRIORITY_MAX)
                    r.warn(c.words[1].span, f"{kw} {v} is outside [1, {RT_PRIORITY_MAX}]; using {clamp}")
                    v = clamp
                if v is not None and kw != "bfd_rt_priority":
                    g[kw] = v
            case "vrrp_priority" | "checker_priority" | "bfd_priority" if a is not None:
                v = int_arg(r, c, -20, 19, kw, "ignoring it")
                if v is not None and kw != "bfd_priority":
                    g[kw] = v
            case "vrrp_no_swap" | "checker_no_swap":
                g[kw] = True
            case "vrrp_cpu_affinity" | "checker_cpu_affinity":
                cpus = _cpu_list(b, c)
                if cpus:
                    g[kw] = cpus
            case "nftables" | "vrrp_iptables":
                if nftables_seen:
                    r.warn(c.span, f"{kw}: a firewall table is already configured; ignored")
                nftables_seen = True
                if kw == "vrrp_iptables":
                    r.warn(
                        c.span,
                        "vrrp_iptables: keepalived 2.2.7 (Debian build) has no iptables support and uses "
                        "nftables instead; use 'nftables'",
                    )
            case "vrrp_garp_extra_if" | "vrrp_vmac_garp_intvl":
                garp_extra_if(b, c, 1)
    if lower_prio_delay is None:
        g["vrrp_garp_lower_prio_delay_us"] = g.get("vrrp_garp_master_delay_us", 5 * SECOND)
    if lower_prio_repeat is None:
        g["vrrp_garp_lower_prio_repeat"] = g.get("vrrp_garp_master_repeat", 5)
    g["notification_email"] = tuple(emails)
    return m.GlobalDefs(**g)


_LVS_TIMEOUTS = ("tcp", "tcpfin", "udp")


def _lvs_timeouts(b: Builder, c: Node, values: tuple[int, int, int]) -> tuple[int, int, int]:
    """``lvs_timeouts [tcp N] [tcpfin N] [udp N]`` (seconds, 0..LVS_MAX_TIMEOUT; 0 keeps the kernel's)."""
    r, words = b.r, c.words
    out = list(values)
    if len(words) < 3:
        r.warn(c.span, "lvs_timeouts needs at least one of tcp, tcpfin or udp with a value; ignored")
        return values
    i = 1
    while i < len(words):
        opt = words[i]
        if opt.text not in _LVS_TIMEOUTS:
            r.warn(opt.span, f"lvs_timeouts: unknown option '{opt.text}' (tcp, tcpfin or udp); ignored")
            i += 1
            continue
        if i + 1 >= len(words):
            r.warn(opt.span, f"lvs_timeouts: no value for '{opt.text}'; ignored")
            break
        v = read_int(r, words[i + 1], 0, LVS_MAX_TIMEOUT, f"lvs_timeouts {opt.text}", "ignoring it")
        if v is not None:
            out[_LVS_TIMEOUTS.index(opt.text)] = v
        i += 2
    return (out[0], out[1], out[2])


def _lvs_sync_daemon(b: Builder, c: Node) -> None:
    r, words = b.r, c.words
    if len(words) >= 2:
        b.ifname(words[1], "lvs_sync_daemon interface")
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


def garp_extra_if(b: Builder, c: Node, minimum: int) -> int | None:
    delay = None
    for w in c.words[1:]:
        if w.text == "all":
            continue
        delay = read_int(b.r, w, minimum, 86400, c.keyword, "ignoring it")
        if delay is None:
            return None
    if delay is None:
        b.r.warn(c.span, f"{c.keyword} has no interval; ignored")
    return None if delay is None else delay * SECOND


def _cpu_list(b: Builder, c: Node) -> tuple[int, ...]:
    """``*_cpu_affinity 0 2-3``: CPU numbers and ranges (as keepalived's); a bad word voids the keyword."""
    cpus: set[int] = set()
    for w in c.words[1:]:
        lo, _, hi = w.text.partition("-")
        first, last = parse_int(lo), parse_int(hi) if hi else parse_int(lo)
        if first is None or last is None or not 0 <= first <= last < 4096:
            b.r.warn(w.span, f"{c.keyword}: '{w.text}' is not a CPU number or range (0-4095); {c.keyword} ignored")
            return ()
        cpus.update(range(first, last + 1))
    if not cpus:
        b.r.warn(c.span, f"{c.keyword} has no CPU; ignored")
    return tuple(sorted(cpus))
