"""keepalived 2.2.7's keyword tree as data: what the parser accepts, and where.

One :class:`Keyword` per keyword path (``vrrp_instance > priority`` and
``vrrp_script > weight`` are different entries). The tree covers every keyword
the Debian build of keepalived 2.2.7 knows (reference facts §2.6), including the
build-conditional ones that build has. Three side tables hold what 2.2.7 does
*not* know but an operator may still write:

* :data:`HEAD_ONLY` -- keywords of newer keepalived versions;
* :data:`NOT_IN_DEBIAN_BUILD` -- 2.2.7 keywords that Debian's build leaves out;
* :data:`OLD_SPELLINGS` -- keepalived 1.x spellings and common misplacements,
  with the keyword to use instead;
* deprecated aliases that 2.2.7 still accepts live in the tree itself
  (``Keyword.deprecated`` says what to use instead).

:data:`SUPPORTED` lists the keyword paths pyvrrpd implements; everything else is
accepted (so a keepalived config still parses) and reported once as not
supported yet. Flip a feature on by adding its paths there.

Argument counts: ``min_args`` is what keepalived needs (fewer makes keepalived
2.2.7 exit with status 2); ``max_args`` is what it reads (``None`` = it may read
any number, or we are not sure). Where in doubt the bounds are loose, so a
valid config never gets a false error.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from collections.abc import Mapping


class Kind(enum.Enum):
    SIMPLE = "simple"  # keyword and its words on one line
    BLOCK = "block"  # `{ ... }` holding more keywords
    VALUE_BLOCK = "value block"  # `{ ... }` holding data lines (addresses, names, routes)


@dataclass(frozen=True, slots=True)
class Keyword:
    name: str
    path: tuple[str, ...]  # block names from the top level down, ending with name
    kind: Kind = Kind.SIMPLE
    min_args: int = 0
    max_args: int | None = None
    script: bool = False  # arguments use script tokenisation (quotes, escapes)
    canonical: str = ""  # the keyword an alias stands for ("" until built: then the name itself)
    deprecated: str | None = None  # what to use instead, for deprecated aliases
    supported: bool = False  # implemented by pyvrrpd
    children: Mapping[str, "Keyword"] = field(default_factory=dict, repr=False)  # read-only by convention

    @property
    def key(self) -> str:
        """``vrrp_instance/authentication/auth_type``: the form used in :data:`SUPPORTED`."""
        return "/".join(self.path)

    @property
    def display(self) -> str:
        return " > ".join(self.path) if self.path else "top level"


class _Spec:
    """A grammar entry as written below; :func:`_build` turns the tree into Keywords.

    (A plain class: a dataclass costs a millisecond to create at import.)
    """

    __slots__ = ("kind", "min_args", "max_args", "script", "alias_of", "deprecated", "children")

    def __init__(
        self,
        kind: Kind,
        min_args: int,
        max_args: int | None,
        script: bool = False,
        alias_of: str | None = None,
        deprecated: str | None = None,
        children: Mapping[str, _Spec] | None = None,
    ) -> None:
        self.kind = kind
        self.min_args = min_args
        self.max_args = max_args
        self.script = script
        self.alias_of = alias_of
        self.deprecated = deprecated
        self.children = children


def _s(min_args: int = 0, max_args: int | None = None, **kw) -> _Spec:
    return _Spec(Kind.SIMPLE, min_args, max_args, **kw)


def _block(children: Mapping[str, _Spec], min_args: int = 0, max_args: int | None = 0, **kw) -> _Spec:
    return _Spec(Kind.BLOCK, min_args, max_args, children=children, **kw)


def _values(min_args: int = 0, max_args: int | None = 0) -> _Spec:
    return _Spec(Kind.VALUE_BLOCK, min_args, max_args)


FLAG = _s(0, 0)  # no argument
OPT = _s(0, 1)  # optional single argument (mostly a boolean)
ONE = _s(1, 1)  # exactly one value
ANY = _s(1, None)  # at least one value
LOOSE = _s(0, None)  # optional, any number (arity not pinned down)
SCRIPT = _s(1, None, script=True)  # "command args" [user [group]]
VALUES = _values()


def _dep(spec: _Spec, instead: str, alias_of: str | None = None) -> _Spec:
    return _Spec(
        spec.kind, spec.min_args, spec.max_args, spec.script, alias_of, instead, spec.children
    )


def _alias(spec: _Spec, of: str) -> _Spec:
    """A synonym keepalived accepts without complaint (lb_algo = lvs_sched)."""
    return _Spec(spec.kind, spec.min_args, spec.max_args, spec.script, of, None, spec.children)


# --------------------------------------------------------------------------- the grammar

_GLOBAL_DEFS: dict[str, _Spec] = {
    "process_names": FLAG,
    "process_name": OPT,
    "vrrp_process_name": OPT,
    "checker_process_name": OPT,
    "lvs_process_name": _dep(OPT, "use `checker_process_name`", "checker_process_name"),
    "bfd_process_name": OPT,
    "router_id": ONE,
    "notification_email_from": ONE,
    "smtp_server": _s(1, 2),
    "smtp_helo_name": ONE,
    "smtp_connect_timeout": ONE,
    "notification_email": VALUES,
    "smtp_alert": OPT,
    "startup_script": SCRIPT,
    "startup_script_timeout": ONE,
    "shutdown_script": SCRIPT,
    "shutdown_script_timeout": ONE,
    "max_auto_priority": OPT,
    "min_auto_priority_delay": ONE,
    "smtp_alert_vrrp": OPT,
    "smtp_alert_checker": OPT,
    "checker_log_all_failures": OPT,
    "dynamic_interfaces": OPT,
    "no_email_faults": FLAG,
    "default_interface": ONE,
    "disable_local_igmp": FLAG,
    "lvs_timeouts": ANY,
    "lvs_flush": FLAG,
    "lvs_flush_on_stop": OPT,
    "lvs_flush_onstop": _dep(OPT, "use `lvs_flush_on_stop`", "lvs_flush_on_stop"),
    "lvs_sync_daemon": ANY,
    "vrrp_mcast_group4": ONE,
    "vrrp_mcast_group6": ONE,
    "vrrp_garp_master_delay": ONE,
    "vrrp_garp_master_repeat": ONE,
    "vrrp_garp_master_refresh": ONE,
    "vrrp_garp_master_refresh_repeat": ONE,
    "vrrp_garp_lower_prio_delay": ONE,
    "vrrp_garp_lower_prio_repeat": ONE,
    "vrrp_down_timer_adverts": ONE,
    "vrrp_garp_interval": ONE,
    "vrrp_gna_interval": ONE,
    "vrrp_min_garp": OPT,
    "vrrp_garp_extra_if": _s(1, 2),
    "vrrp_vmac_garp_intvl": _dep(_s(1, 2), "use `vrrp_garp_extra_if`", "vrrp_garp_extra_if"),
    "vrrp_lower_prio_no_advert": OPT,
    "vrrp_higher_prio_send_advert": OPT,
    "vrrp_version": ONE,
    "vrrp_iptables": LOOSE,
    "nftables": OPT,
    "nftables_priority": ONE,
    "nftables_ifindex": OPT,
    "vrrp_check_unicast_src": FLAG,
    "vrrp_skip_check_adv_addr": OPT,
    "vrrp_strict": FLAG,
    "vrrp_priority": ONE,
    "vrrp_no_swap": FLAG,
    "vrrp_rt_priority": OPT,
    "vrrp_cpu_affinity": ANY,
    "vrrp_rlimit_rttime": OPT,
    "vrrp_rlimit_rtime": _dep(OPT, "use `vrrp_rlimit_rttime`", "vrrp_rlimit_rttime"),
    "nftables_ipvs": OPT,
    "nftables_ipvs_priority": ONE,
    "nftables_ipvs_start_fwmark": ONE,
    "nftables_counters": FLAG,
    "notify_fifo": _s(1, 3),
    "notify_fifo_script": SCRIPT,
    "vrrp_notify_fifo": _s(1, 3),
    "vrrp_notify_fifo_script": SCRIPT,
    "vrrp_notify_priority_changes": OPT,
    "fifo_write_vrrp_states_on_reload": FLAG,
    "lvs_notify_fifo": _s(1, 3),
    "lvs_notify_fifo_script": SCRIPT,
    "checker_priority": ONE,
    "checker_no_swap": FLAG,
    "checker_rt_priority": OPT,
    "checker_cpu_affinity": ANY,
    "checker_rlimit_rttime": OPT,
    "checker_rlimit_rtime": _dep(OPT, "use `checker_rlimit_rttime`", "checker_rlimit_rttime"),
    "bfd_priority": ONE,
    "bfd_no_swap": FLAG,
    "bfd_rt_priority": OPT,
    "bfd_cpu_affinity": ANY,
    "bfd_rlimit_rttime": OPT,
    "bfd_rlimit_rtime": _dep(OPT, "use `bfd_rlimit_rttime`", "bfd_rlimit_rttime"),
    "snmp_socket": ONE,
    "enable_traps": FLAG,
    "enable_snmp_vrrp": FLAG,
    "enable_snmp_keepalived": _dep(FLAG, "use `enable_snmp_vrrp`", "enable_snmp_vrrp"),
    "enable_snmp_rfc": FLAG,
    "enable_snmp_rfcv2": FLAG,
    "enable_snmp_rfcv3": FLAG,
    "enable_snmp_checker": FLAG,
    "enable_dbus": FLAG,
    "dbus_service_name": ONE,
    "script_user": _s(1, 2),
    "enable_script_security": FLAG,
    "vrrp_netlink_cmd_rcv_bufs": ONE,
    "vrrp_netlink_cmd_rcv_bufs_force": OPT,
    "vrrp_netlink_monitor_rcv_bufs": ONE,
    "vrrp_netlink_monitor_rcv_bufs_force": OPT,
    "process_monitor_rcv_bufs": ONE,
    "process_monitor_rcv_bufs_force": OPT,
    "lvs_netlink_cmd_rcv_bufs": ONE,
    "lvs_netlink_cmd_rcv_bufs_force": OPT,
    "lvs_netlink_monitor_rcv_bufs": ONE,
    "lvs_netlink_monitor_rcv_bufs_force": OPT,
    "rs_init_notifies": FLAG,
    "no_checker_emails": FLAG,
    "vrrp_rx_bufs_policy": ANY,
    "vrrp_rx_bufs_multiplier": ONE,
    "vrrp_startup_delay": ONE,
    "log_unknown_vrids": FLAG,
    "v3_checksum_as_v2": FLAG,  # newer than 2.2.7: see EXTENSIONS
    "vmac_prefix": ONE,
    "vmac_addr_prefix": ONE,
    "umask": ANY,  # a number or flags joined by "|": `umask IWGRP | IWOTH`
    "random_seed": ONE,
    "reload_check_config": OPT,
    "reload_time_file": ONE,
    "reload_repeat": FLAG,
    "reload_file": OPT,
    "include_check": LOOSE,
    "config_save_dir": OPT,
    "tmp_config_directory": ONE,
    "data_use_instance": FLAG,
}

_VRRP_SCRIPT = {
    "script": SCRIPT,
    "interval": ONE,
    "timeout": ONE,
    "weight": _s(1, 2),  # N [reverse]
    "rise": ONE,
    "fall": ONE,
    "user": _s(1, 2),
    "init_fail": FLAG,
}

_TRACK_PROCESS = {
    "process": ANY,
    "param_match": LOOSE,
    "weight": _s(1, 2),
    "quorum": ONE,
    "quorum_max": ONE,
    "delay": ONE,
    "terminate_delay": ONE,
    "fork_delay": ONE,
    "full_command": FLAG,
}

_TRACK_FILE = {"file": ONE, "weight": _s(1, 2), "init_file": _s(0, 2)}

_SYNC_GROUP = {
    "group": VALUES,
    "track_interface": VALUES,
    "track_script": VALUES,
    "track_file": VALUES,
    "track_process": VALUES,
    "track_bfd": VALUES,
    "notify_backup": SCRIPT,
    "notify_master": SCRIPT,
    "notify_fault": SCRIPT,
    "notify_stop": SCRIPT,
    "notify": SCRIPT,
    "smtp_alert": OPT,
    "global_tracking": _dep(FLAG, "put the track_* keywords on the sync group instead"),
    "sync_group_tracking_weight": FLAG,
    "notify_priority_changes": OPT,
}

_GARP_GROUP = {"garp_interval": ONE, "gna_interval": ONE, "interface": ONE, "interfaces": VALUES}

_TRACK_GROUP = {"group": VALUES}

_VRRP_INSTANCE = {
    "use_vmac": _s(0, 2),  # [NAME] [MAC]
    "use_vmac_addr": FLAG,
    "vmac_xmit_base": FLAG,
    "use_ipvlan": LOOSE,
    "unicast_peer": VALUES,
    "unicast_fault_no_peer": FLAG,
    "check_unicast_src": FLAG,
    "old_unicast_checksum": OPT,
    "v3_checksum_as_v2": OPT,  # newer than 2.2.7: see EXTENSIONS
    "native_ipv6": _dep(FLAG, "the address family of the virtual addresses decides"),
    "state": ONE,
    "interface": ONE,
    "vrf": ONE,
    "dont_track_primary": FLAG,
    "track_interface": VALUES,
    "track_script": VALUES,
    "track_file": VALUES,
    "track_process": VALUES,
    "track_bfd": VALUES,
    "mcast_src_ip": ONE,
    "unicast_src_ip": ONE,
    "mcast_dst_ip": ONE,
    "track_src_ip": FLAG,
    "virtual_router_id": ONE,
    "unicast_ttl": ONE,
    "version": ONE,
    "priority": ONE,
    "advert_int": ONE,
    "virtual_ipaddress": VALUES,
    "virtual_ipaddress_excluded": VALUES,
    "promote_secondaries": FLAG,
    "linkbeat_use_polling": _dep(FLAG, "list the interfaces in a top-level `linkbeat_interfaces { }`"),
    "virtual_routes": VALUES,
    "virtual_rules": VALUES,
    "accept": FLAG,
    "no_accept": FLAG,
    "skip_check_adv_addr": OPT,
    "strict_mode": OPT,
    "preempt": FLAG,
    "nopreempt": FLAG,
    "preempt_delay": ONE,
    "debug": OPT,
    "notify_backup": SCRIPT,
    "notify_master": SCRIPT,
    "notify_fault": SCRIPT,
    "notify_stop": SCRIPT,
    "notify_deleted": _s(0, None, script=True),
    "notify": SCRIPT,
    "notify_master_rx_lower_pri": SCRIPT,
    "smtp_alert": OPT,
    "notify_priority_changes": OPT,
    "lvs_sync_daemon_interface": _dep(ANY, "use `lvs_sync_daemon IF [inst VI]` in global_defs"),
    "garp_master_delay": ONE,
    "garp_master_refresh": ONE,
    "garp_master_repeat": ONE,
    "garp_master_refresh_repeat": ONE,
    "garp_lower_prio_delay": ONE,
    "garp_lower_prio_repeat": ONE,
    "down_timer_adverts": ONE,
    "garp_extra_if": _s(1, 2),
    "vmac_garp_intvl": _dep(_s(1, 2), "use `garp_extra_if`", "garp_extra_if"),
    "lower_prio_no_advert": OPT,
    "higher_prio_send_advert": OPT,
    "kernel_rx_buf_size": ONE,
    "authentication": _block({"auth_type": ONE, "auth_pass": ONE}),
}

_BFD_INSTANCE = {
    "source_ip": ONE,
    "neighbor_ip": ONE,
    "neighbour_ip": _alias(ONE, "neighbor_ip"),
    "min_rx": ONE,
    "min_tx": ONE,
    "idle_tx": ONE,
    "multiplier": ONE,
    "passive": FLAG,
    "ttl": ONE,
    "hoplimit": _alias(ONE, "ttl"),
    "max_hops": ONE,
    "weight": _s(1, 2),
    "vrrp": LOOSE,
    "checker": LOOSE,
}

_SSL = {"password": ONE, "ca": ONE, "certificate": ONE, "key": ONE}

# Shared by TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK (and its host), DNS_CHECK, UDP_CHECK, PING_CHECK.
_CHECKER_COMMON = {
    "connect_ip": ONE,
    "connect_port": ONE,
    "bindto": ONE,
    "bind_port": ONE,
    "bind_if": ONE,
    "connect_timeout": ONE,
    "fwmark": ONE,
    "retry": ONE,
    "delay_before_retry": ONE,
    "warmup": ONE,
    "delay_loop": ONE,
    "alpha": OPT,
    "log_all_failures": OPT,
}

_URL = {
    "path": ONE,
    "digest": ONE,
    "status_code": ANY,
    "virtualhost": ONE,
    "regex": ANY,
    "regex_no_match": FLAG,
    "regex_options": ANY,
    "regex_min_offset": ONE,
    "regex_max_offset": ONE,
    "regex_stack": LOOSE,
}

_HTTP_GET = {
    **_CHECKER_COMMON,
    "nb_get_retry": _dep(ONE, "use `retry`", "retry"),
    "virtualhost": ONE,
    "http_protocol": ONE,
    "enable_sni": OPT,
    "fast_recovery": OPT,
    "url": _block(_URL),
}

_MISC_CHECK = {
    "retry": ONE,
    "delay_before_retry": ONE,
    "warmup": ONE,
    "delay_loop": ONE,
    "alpha": OPT,
    "log_all_failures": OPT,
    "misc_path": SCRIPT,
    "misc_timeout": ONE,
    "misc_dynamic": LOOSE,
    "user": _s(1, 2),
}

_SMTP_CHECK = {
    "helo_name": ONE,
    **_CHECKER_COMMON,
    "host": _block(_CHECKER_COMMON, deprecated="use one SMTP_CHECK block per host"),
}

_REAL_SERVER = {
    "weight": ONE,
    "lvs_method": ANY,
    "uthreshold": ONE,
    "lthreshold": ONE,
    "inhibit_on_failure": OPT,
    "notify_up": SCRIPT,
    "notify_down": SCRIPT,
    "alpha": OPT,
    "retry": ONE,
    "delay_before_retry": ONE,
    "warmup": ONE,
    "connect_timeout": ONE,
    "delay_loop": ONE,
    "smtp_alert": OPT,
    "virtualhost": ONE,
    "snmp_name": ONE,
    "MISC_CHECK": _block(_MISC_CHECK),
    "SMTP_CHECK": _block(_SMTP_CHECK),
    "TCP_CHECK": _block(_CHECKER_COMMON),
    "PING_CHECK": _block(_CHECKER_COMMON),
    "UDP_CHECK": _block(
        {
            **_CHECKER_COMMON,
            "payload": ONE,
            "require_reply": LOOSE,
            "min_reply_length": ONE,
            "max_reply_length": ONE,
        }
    ),
    "HTTP_GET": _block(_HTTP_GET),
    "SSL_GET": _block(_HTTP_GET),
    "DNS_CHECK": _block({**_CHECKER_COMMON, "type": ONE, "name": ONE}),
    "FILE_CHECK": _block({"track_file": ONE, "weight": _s(1, 2)}),
    "BFD_CHECK": _block({"name": ONE, "alpha": OPT}),
}

_VIRTUAL_SERVER = {
    "ip_family": ONE,
    "retry": ONE,
    "delay_before_retry": ONE,
    "warmup": ONE,
    "connect_timeout": ONE,
    "delay_loop": ONE,
    "inhibit_on_failure": OPT,
    "lb_algo": _alias(ONE, "lvs_sched"),
    "lvs_sched": ONE,
    "hashed": FLAG,
    "ops": FLAG,
    "flag-1": FLAG,
    "flag-2": FLAG,
    "flag-3": FLAG,
    "sh-port": FLAG,
    "sh-fallback": FLAG,
    "mh-port": FLAG,
    "mh-fallback": FLAG,
    "lb_kind": _alias(ANY, "lvs_method"),
    "lvs_method": ANY,
    "persistence_engine": ONE,
    "persistence_timeout": OPT,
    "persistence_granularity": ONE,
    "protocol": ONE,
    "ha_suspend": FLAG,
    "smtp_alert": OPT,
    "virtualhost": ONE,
    "snmp_name": ONE,
    "alpha": OPT,
    "omega": OPT,
    "quorum_up": SCRIPT,
    "quorum_down": SCRIPT,
    "quorum": ONE,
    "hysteresis": ONE,
    "weight": ONE,
    "sorry_server": _s(1, 2),
    "sorry_server_inhibit": OPT,
    "sorry_server_lvs_method": ANY,
    "real_server": _block(_REAL_SERVER, 1, 2),
}

_TOP: dict[str, _Spec] = {
    "linkbeat_use_polling": _dep(FLAG, "list the interfaces in `linkbeat_interfaces { }`"),
    "net_namespace": ONE,
    "net_namespace_ipvs": OPT,
    "namespace_with_ipsets": FLAG,
    "use_pid_dir": FLAG,
    "instance": ONE,
    "child_wait_time": ONE,
    "global_defs": _block(_GLOBAL_DEFS),
    "track_group": _block(_TRACK_GROUP, 1, 1),
    "static_ipaddress": VALUES,
    "static_routes": VALUES,
    "static_rules": VALUES,
    "vrrp_sync_group": _block(_SYNC_GROUP, 1, 1),
    "garp_group": _block(_GARP_GROUP, 0, None),
    "linkbeat_interfaces": VALUES,
    "vrrp_instance": _block(_VRRP_INSTANCE, 1, 1),
    "vrrp_script": _block(_VRRP_SCRIPT, 1, 1),
    "vrrp_track_process": _block(_TRACK_PROCESS, 1, 1),
    "interface_up_down_delays": VALUES,
    "SSL": _block(_SSL),
    "virtual_server_group": _values(1, 1),
    "virtual_server": _block(_VIRTUAL_SERVER, 1, 2),
    "bfd_instance": _block(_BFD_INSTANCE, 1, 1),
    "track_file": _block(_TRACK_FILE, 1, 1),
    "vrrp_track_file": _block(_TRACK_FILE, 1, 1, alias_of="track_file", deprecated="use `track_file`"),
}

# --------------------------------------------------------------------------- side tables

#: Keywords of newer keepalived versions that pyvrrpd implements: known to the parser (the
#: builder notes that keepalived 2.2.7 would report them unknown). ``v3_checksum_as_v2`` sends the
#: RFC 9568 IPv4 VRRPv3 checksum (no pseudo-header), for Cisco/Juniper-style peers.
EXTENSIONS: frozenset[str] = frozenset({"global_defs/v3_checksum_as_v2", "vrrp_instance/v3_checksum_as_v2"})

#: Keywords that keepalived versions after 2.2.7 know (facts §2.3); 2.2.7 reports them as unknown.
HEAD_ONLY: frozenset[str] = frozenset(
    """
    global_defs/use_symlink_paths global_defs/set_supplementary_groups global_defs/v3_checksum_as_v2
    global_defs/snmp_vs_stats_update_interval global_defs/snmp_rs_stats_update_interval
    global_defs/dbus_no_interface_name global_defs/vrrp_delay_after_boot global_defs/vrrp_owner_ignore_adverts
    global_defs/json_version global_defs/iproute_usr_dir global_defs/iproute_etc_dir
    global_defs/state_dump_file global_defs/stats_dump_file global_defs/json_dump_file
    vrrp_instance/no_virtual_ipaddress vrrp_instance/v3_checksum_as_v2 vrrp_instance/timer_expired_backup
    vrrp_instance/thread_timer_expired vrrp_instance/owner_ignore_adverts
    vrrp_instance/auth_hmac vrrp_instance/auth_hmac/key vrrp_instance/auth_hmac/active_key
    vrrp_instance/auth_hmac/time_window vrrp_instance/auth_hmac/anti_replay vrrp_instance/auth_hmac/mode
    bfd_instance/multihop
    virtual_server/real_server/HTTP_GET/sni_name virtual_server/real_server/SSL_GET/sni_name
    virtual_server/real_server/SSL_GET/tls_compliant virtual_server/real_server/SSL_GET/url/tls_compliant
    """.split()
)


#: keepalived 2.2.7 keywords that Debian's build leaves out, with the reason. The
#: corpus shows Debian's keepalived reporting them as unknown.
NOT_IN_DEBIAN_BUILD: Mapping[str, str] = MappingProxyType(
    {"global_defs/vrrp_ipsets": "Debian's keepalived 2.2.7 is built without ipset support"}
)


@dataclass(frozen=True, slots=True)
class OldSpelling:
    """A spelling keepalived 2.2.7 does not know, with what to write instead.

    2.2.7 ignores these lines (as unknown keywords); pyvrrpd ignores them too,
    so both daemons run the same config the same way, but says what to use.
    """

    key: str  # path as in SUPPORTED
    instead: str | None  # the keyword to use, None when the feature is gone
    why: str


_CHECKERS_WITH_RETRY = ("TCP_CHECK", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK")

OLD_SPELLINGS: Mapping[str, OldSpelling] = MappingProxyType(
    {
        o.key: o
        for o in (
            OldSpelling("global_defs/lvs_id", "router_id", "renamed to `router_id` in keepalived 1.1.8"),
            OldSpelling(
                "global_defs/lvs_sync_daemon_interface",
                "lvs_sync_daemon",
                "the global_defs form is `lvs_sync_daemon IF [inst VI]`",
            ),
            OldSpelling("virtual_server/nat_mask", None, "keepalived 1.x only; removed in keepalived 2.x"),
            OldSpelling(
                "vrrp_instance/vrrp_unicast_bind",
                "unicast_src_ip",
                "from an unofficial keepalived 1.2 unicast patch",
            ),
            OldSpelling(
                "vrrp_instance/vrrp_unicast_peer",
                "unicast_peer { IP }",
                "from an unofficial keepalived 1.2 unicast patch",
            ),
            *(
                OldSpelling(
                    f"virtual_server/real_server/{checker}/nb_get_retry",
                    "retry",
                    "keepalived knows `nb_get_retry` only in HTTP_GET and SSL_GET",
                )
                for checker in _CHECKERS_WITH_RETRY
            ),
        )
    }
)

#: Keyword paths pyvrrpd implements. Add a path here when its feature lands.
SUPPORTED: frozenset[str] = frozenset(
    """
    global_defs vrrp_instance

    global_defs/router_id global_defs/vrrp_version
    global_defs/vrrp_mcast_group4 global_defs/vrrp_mcast_group6
    global_defs/vrrp_garp_master_delay global_defs/vrrp_garp_master_repeat
    global_defs/vrrp_garp_master_refresh global_defs/vrrp_garp_master_refresh_repeat
    global_defs/vrrp_garp_lower_prio_delay global_defs/vrrp_garp_lower_prio_repeat
    global_defs/vrrp_garp_interval global_defs/vrrp_gna_interval global_defs/vrrp_min_garp
    global_defs/vrrp_lower_prio_no_advert global_defs/vrrp_higher_prio_send_advert
    global_defs/vrrp_down_timer_adverts global_defs/vrrp_check_unicast_src
    global_defs/vrrp_skip_check_adv_addr global_defs/vrrp_strict global_defs/log_unknown_vrids
    global_defs/vrrp_startup_delay
    global_defs/script_user global_defs/enable_script_security global_defs/include_check

    vrrp_instance/state vrrp_instance/interface vrrp_instance/virtual_router_id
    vrrp_instance/priority vrrp_instance/advert_int vrrp_instance/version
    vrrp_instance/virtual_ipaddress vrrp_instance/virtual_ipaddress_excluded
    vrrp_instance/unicast_peer vrrp_instance/unicast_src_ip vrrp_instance/mcast_src_ip
    vrrp_instance/mcast_dst_ip vrrp_instance/unicast_ttl vrrp_instance/check_unicast_src
    vrrp_instance/unicast_fault_no_peer vrrp_instance/nopreempt vrrp_instance/preempt
    vrrp_instance/preempt_delay vrrp_instance/accept vrrp_instance/no_accept
    vrrp_instance/strict_mode vrrp_instance/skip_check_adv_addr vrrp_instance/use_vmac
    vrrp_instance/vmac_xmit_base vrrp_instance/virtual_routes vrrp_instance/virtual_rules
    vrrp_instance/garp_master_delay vrrp_instance/garp_master_repeat
    vrrp_instance/garp_master_refresh vrrp_instance/garp_master_refresh_repeat
    vrrp_instance/garp_lower_prio_delay vrrp_instance/garp_lower_prio_repeat
    vrrp_instance/down_timer_adverts vrrp_instance/lower_prio_no_advert
    vrrp_instance/higher_prio_send_advert
    vrrp_instance/authentication vrrp_instance/authentication/auth_type
    vrrp_instance/authentication/auth_pass
    vrrp_instance/old_unicast_checksum
    global_defs/v3_checksum_as_v2 vrrp_instance/v3_checksum_as_v2

    vrrp_script vrrp_script/script vrrp_script/interval vrrp_script/timeout vrrp_script/weight
    vrrp_script/rise vrrp_script/fall vrrp_script/user vrrp_script/init_fail
    track_file track_file/file track_file/weight track_file/init_file
    vrrp_track_file vrrp_track_file/file vrrp_track_file/weight vrrp_track_file/init_file
    vrrp_track_process vrrp_track_process/process vrrp_track_process/param_match vrrp_track_process/weight
    vrrp_track_process/quorum vrrp_track_process/quorum_max vrrp_track_process/delay
    vrrp_track_process/terminate_delay vrrp_track_process/fork_delay vrrp_track_process/full_command
    vrrp_instance/track_interface vrrp_instance/track_script vrrp_instance/track_file
    vrrp_instance/track_process
    vrrp_instance/notify_master vrrp_instance/notify_backup vrrp_instance/notify_fault
    vrrp_instance/notify_stop vrrp_instance/notify_deleted vrrp_instance/notify
    vrrp_instance/notify_master_rx_lower_pri vrrp_instance/notify_priority_changes vrrp_instance/smtp_alert
    vrrp_sync_group vrrp_sync_group/group vrrp_sync_group/track_interface vrrp_sync_group/track_script
    vrrp_sync_group/track_file vrrp_sync_group/track_process
    vrrp_sync_group/notify_master vrrp_sync_group/notify_backup vrrp_sync_group/notify_fault
    vrrp_sync_group/notify_stop vrrp_sync_group/notify vrrp_sync_group/smtp_alert
    vrrp_sync_group/notify_priority_changes vrrp_sync_group/sync_group_tracking_weight
    vrrp_sync_group/global_tracking
    global_defs/notify_fifo global_defs/notify_fifo_script global_defs/vrrp_notify_fifo
    global_defs/vrrp_notify_fifo_script global_defs/vrrp_notify_priority_changes
    global_defs/notification_email global_defs/notification_email_from global_defs/smtp_server
    global_defs/smtp_helo_name global_defs/smtp_connect_timeout global_defs/smtp_alert
    global_defs/smtp_alert_vrrp
    """.split()
) | frozenset(
    # LVS: what the daemon's LVS subsystem (pyvrrpd/daemon/lvs.py: checkers into the IPVS reconciler)
    # acts on. Not here, so still "not supported yet": virtual_server snmp_name; real_server
    # snmp_name; BFD_CHECK; url regex_stack (a PCRE2 JIT stack size: Python's re has none).
    """
    global_defs/lvs_flush global_defs/lvs_flush_on_stop global_defs/lvs_timeouts global_defs/lvs_sync_daemon
    global_defs/checker_log_all_failures global_defs/lvs_notify_fifo global_defs/lvs_notify_fifo_script
    global_defs/smtp_alert_checker virtual_server/smtp_alert virtual_server/real_server/smtp_alert
    global_defs/vrrp_priority global_defs/vrrp_rt_priority global_defs/vrrp_no_swap global_defs/vrrp_cpu_affinity
    global_defs/checker_priority global_defs/checker_rt_priority global_defs/checker_no_swap
    global_defs/checker_cpu_affinity

    SSL SSL/password SSL/ca SSL/certificate SSL/key
    virtual_server_group
    virtual_server virtual_server/ip_family virtual_server/retry virtual_server/delay_before_retry
    virtual_server/warmup virtual_server/connect_timeout virtual_server/delay_loop
    virtual_server/inhibit_on_failure virtual_server/lvs_sched virtual_server/hashed virtual_server/ops
    virtual_server/flag-1 virtual_server/flag-2 virtual_server/flag-3 virtual_server/sh-port
    virtual_server/sh-fallback virtual_server/mh-port virtual_server/mh-fallback virtual_server/lvs_method
    virtual_server/persistence_engine virtual_server/persistence_timeout virtual_server/persistence_granularity
    virtual_server/protocol virtual_server/virtualhost virtual_server/alpha virtual_server/omega
    virtual_server/quorum_up virtual_server/quorum_down virtual_server/quorum virtual_server/hysteresis
    virtual_server/weight virtual_server/sorry_server virtual_server/sorry_server_inhibit virtual_server/ha_suspend
    virtual_server/sorry_server_lvs_method virtual_server/real_server

    virtual_server/real_server/weight virtual_server/real_server/lvs_method
    virtual_server/real_server/uthreshold virtual_server/real_server/lthreshold
    virtual_server/real_server/inhibit_on_failure virtual_server/real_server/notify_up
    virtual_server/real_server/notify_down virtual_server/real_server/alpha virtual_server/real_server/retry
    virtual_server/real_server/delay_before_retry virtual_server/real_server/warmup
    virtual_server/real_server/connect_timeout virtual_server/real_server/delay_loop
    virtual_server/real_server/virtualhost

    virtual_server/real_server/MISC_CHECK virtual_server/real_server/MISC_CHECK/retry
    virtual_server/real_server/MISC_CHECK/delay_before_retry virtual_server/real_server/MISC_CHECK/warmup
    virtual_server/real_server/MISC_CHECK/delay_loop virtual_server/real_server/MISC_CHECK/alpha
    virtual_server/real_server/MISC_CHECK/log_all_failures virtual_server/real_server/MISC_CHECK/misc_path
    virtual_server/real_server/MISC_CHECK/misc_timeout virtual_server/real_server/MISC_CHECK/misc_dynamic
    virtual_server/real_server/MISC_CHECK/user
    virtual_server/real_server/SMTP_CHECK virtual_server/real_server/SMTP_CHECK/helo_name
    virtual_server/real_server/SMTP_CHECK/host
    virtual_server/real_server/TCP_CHECK virtual_server/real_server/PING_CHECK
    virtual_server/real_server/UDP_CHECK virtual_server/real_server/UDP_CHECK/payload
    virtual_server/real_server/UDP_CHECK/require_reply virtual_server/real_server/UDP_CHECK/min_reply_length
    virtual_server/real_server/UDP_CHECK/max_reply_length
    virtual_server/real_server/DNS_CHECK virtual_server/real_server/DNS_CHECK/type
    virtual_server/real_server/DNS_CHECK/name
    virtual_server/real_server/FILE_CHECK virtual_server/real_server/FILE_CHECK/track_file
    virtual_server/real_server/FILE_CHECK/weight
    """.split()
) | frozenset(
    f"virtual_server/real_server/{checker}/{keyword}"
    for checker in ("TCP_CHECK", "PING_CHECK", "UDP_CHECK", "DNS_CHECK", "SMTP_CHECK", "SMTP_CHECK/host",
                    "HTTP_GET", "SSL_GET")
    for keyword in ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark",
                    "retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures")
) | frozenset(
    f"virtual_server/real_server/{checker}{keyword}"
    for checker in ("HTTP_GET", "SSL_GET")
    for keyword in ("", "/virtualhost", "/http_protocol", "/enable_sni", "/fast_recovery", "/url", "/url/path",
                    "/url/digest", "/url/status_code", "/url/virtualhost", "/url/regex", "/url/regex_no_match",
                    "/url/regex_options", "/url/regex_min_offset", "/url/regex_max_offset")
)

#: Options of a ``virtual_ipaddress``/``virtual_ipaddress_excluded`` line that pyvrrpd reads but does
#: not act on yet: the build warns "accepted but not supported yet" at each (the others it supports).
NOT_SUPPORTED_ADDRESS_OPTIONS: frozenset[str] = frozenset(
    {"home", "mngtmpaddr", "noprefixroute", "autojoin", "preferred_lft"}
)


# --------------------------------------------------------------------------- building the tree


def _build(specs: Mapping[str, _Spec], parent: tuple[str, ...]) -> Mapping[str, Keyword]:
    out: dict[str, Keyword] = {}
    for name, spec in specs.items():
        path = parent + (name,)
        canonical = spec.alias_of or name
        supported_key = "/".join(parent + (canonical,))
        out[name] = Keyword(
            name=name,
            path=path,
            kind=spec.kind,
            min_args=spec.min_args,
            max_args=spec.max_args,
            script=spec.script,
            canonical=canonical,
            deprecated=spec.deprecated,
            supported=supported_key in SUPPORTED,
            children=_build(spec.children, path) if spec.children else {},
        )
    return out


#: The top level: a pseudo-block whose children are the top-level keywords.
ROOT = Keyword(name="", path=(), kind=Kind.BLOCK, canonical="", supported=True, children=_build(_TOP, ()))


def walk(kw: Keyword = ROOT):
    """Every keyword below ``kw``, parents before children, in grammar order."""
    pending = list(reversed(kw.children.values()))
    while pending:
        k = pending.pop()
        yield k
        pending.extend(reversed(k.children.values()))


def _places() -> Mapping[str, tuple[str, ...]]:
    """keyword name -> names of the blocks where it is valid (for "belongs in" hints)."""
    places: dict[str, list[str]] = {}
    for k in walk():
        where = k.path[-2] if len(k.path) > 1 else "the top level"
        lst = places.setdefault(k.name, [])
        if where not in lst:
            lst.append(where)
    return MappingProxyType({name: tuple(v) for name, v in places.items()})


#: keyword name -> the blocks (by name) where keepalived 2.2.7 accepts it.
PLACES: Mapping[str, tuple[str, ...]] = _places()


def find(key: str) -> Keyword | None:
    """The keyword at ``vrrp_instance/priority`` style path, or None."""
    kw = ROOT
    for part in key.split("/"):
        kw = kw.children.get(part)
        if kw is None:
            return None
    return kw


# --------------------------------------------------------------------------- docs


@dataclass(frozen=True, slots=True)
class DocRow:
    path: str  # "vrrp_instance > authentication > auth_type"
    kind: str  # "simple", "block", "value block"; "" for keywords 2.2.7 does not know
    supported: bool
    note: str  # alias / deprecation / "newer keepalived only" / old spelling; "" if none


def doc_rows() -> list[DocRow]:
    """The keyword table for the docs: every known keyword, then those 2.2.7 does not know."""
    rows = []
    for k in walk():
        if k.key in EXTENSIONS:
            note = "newer keepalived keyword (2.2.7 does not know it); pyvrrpd supports it"
        elif k.deprecated:
            note = f"deprecated: {k.deprecated}"
        elif k.canonical != k.name:
            note = f"synonym of `{k.canonical}`"
        else:
            note = ""
        rows.append(DocRow(k.display, k.kind.value, k.supported, note))
    for key in sorted(HEAD_ONLY - EXTENSIONS):
        rows.append(DocRow(key.replace("/", " > "), "", False, "newer keepalived only; 2.2.7 does not know it"))
    for key, why in NOT_IN_DEBIAN_BUILD.items():
        rows.append(DocRow(key.replace("/", " > "), "", False, why))
    for old in OLD_SPELLINGS.values():
        instead = f"; use `{old.instead}`" if old.instead else ""
        rows.append(DocRow(old.key.replace("/", " > "), "", False, f"not in keepalived 2.2.7: {old.why}{instead}"))
    return rows
