"""What ``--check-config`` says about support is the truth, and the one place that says it.

* every keyword marked supported (keywords.SUPPORTED) is read by the build: its block's
  reader has a ``case`` for it;
* everything pyvrrpd accepts but does not act on yet warns "accepted but not supported yet"
  at check time, with the span of the keyword or option: the daemon says nothing of its own;
* what the daemon refuses (AH authentication, unicast without an interface) is an error.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from pyvrrpd.config import keywords
from pyvrrpd.config.build import READ_ELSEWHERE, READERS
from pyvrrpd.config.diagnostics import Severity
from pyvrrpd.config.load import load

ROOT = "/".join  # a block's key from its path


def _literals(pattern: ast.pattern) -> set[str]:
    if isinstance(pattern, ast.MatchValue) and isinstance(pattern.value, ast.Constant):
        return {pattern.value.value}
    if isinstance(pattern, ast.MatchOr):
        return set().union(*(_literals(p) for p in pattern.patterns))
    if isinstance(pattern, ast.MatchAs) and pattern.pattern is not None:
        return _literals(pattern.pattern)
    return set()


def _is_keyword(node: ast.AST) -> bool:
    """``c.keyword``, or ``k`` (the name readers bind it to: ``k = c.keyword``)."""
    return (isinstance(node, ast.Attribute) and node.attr == "keyword") or (isinstance(node, ast.Name)
                                                                          and node.id == "k")


def _compared(node: ast.AST, names: dict) -> set[str]:
    """Keywords in ``c.keyword == "x"``, ``c.keyword in ("x", "y")`` or ``k in TABLE`` (an if/elif reader;
    ``TABLE`` a module-level collection of keywords)."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.In))
            and _is_keyword(node.left)):
        return set()
    right = node.comparators[0]
    if isinstance(right, ast.Name) and isinstance(names.get(right.id), (dict, tuple, frozenset, set)):
        return {v for v in names[right.id] if isinstance(v, str)}
    values = right.elts if isinstance(right, (ast.Tuple, ast.List, ast.Set)) else [right]
    return {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}


def handled(reader) -> set[str]:
    """The keywords a block's reader handles: the keys of a table (TOP, a set of keywords), the ``case``
    labels of a function, or the keywords its if/elif chain compares ``c.keyword`` with; a tuple of
    readers handles what any of them does."""
    if isinstance(reader, tuple):
        return set().union(*(handled(r) for r in reader))
    if isinstance(reader, (dict, frozenset)):
        return set(reader)
    tree = ast.parse(textwrap.dedent(inspect.getsource(reader)))
    cases = [n for n in ast.walk(tree) if isinstance(n, ast.match_case)]
    found = set().union(*(_literals(c.pattern) for c in cases),
                        *(_compared(n, reader.__globals__) for n in ast.walk(tree)))
    assert found, f"{reader.__qualname__} reads no keyword"
    return found


# --------------------------------------------------------------------------- supported means read


def test_every_supported_keyword_is_read_by_the_build():
    missing = []
    for kw in keywords.walk():
        if not kw.supported:
            continue
        if kw.key in READ_ELSEWHERE:
            continue
        block = ROOT(kw.path[:-1])
        reader = READERS.get(block)
        if reader is None:
            missing.append(f"{kw.key}: no reader for block {block!r} in build.READERS")
        elif kw.name not in handled(reader):
            missing.append(f"{kw.key}: no case for it in {getattr(reader, '__qualname__', 'TOP')}")
    assert missing == []


def test_keywords_read_elsewhere_are_supported_and_read_there():
    for key, where in READ_ELSEWHERE.items():
        assert keywords.find(key).supported, key
        path = where.split(" ")[0]
        with open(path) as f:
            assert key.rsplit("/", 1)[1] in f.read(), (key, path)


def test_every_case_of_a_reader_is_a_keyword_of_its_block():
    for block, reader in READERS.items():
        kw = keywords.find(block) if block else keywords.ROOT
        assert kw is not None, block
        unknown = handled(reader) - set(kw.children)
        assert unknown == set(), (block, unknown)


def test_the_keywords_that_did_nothing_are_not_marked_supported():
    for key in ("global_defs/vmac_prefix", "global_defs/vmac_addr_prefix", "global_defs/process_names",
                "global_defs/process_name", "global_defs/vrrp_process_name", "global_defs/checker_process_name",
                "global_defs/lvs_process_name", "global_defs/bfd_process_name",
                "vrrp_instance/dont_track_primary", "vrrp_instance/debug"):
        assert not keywords.find(key).supported, key


# --------------------------------------------------------------------------- the check says it


@pytest.fixture
def check(tmp_path):
    def _check(text: str):
        path = tmp_path / "keepalived.conf"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return load(str(path), config_id="test", host_checks=False)

    return _check


def not_supported(loaded) -> dict[str, tuple[int, int]]:
    """message -> (line, col) of each "accepted but not supported yet" warning."""
    return {d.message: (d.span.line, d.span.col) for d in loaded.diagnostics
            if d.severity is Severity.WARNING and "is accepted but not supported yet" in d.message}


def _say(name: str, where: str | None) -> str:
    return f"`{name}`{f' in {where}' if where else ''} is accepted but not supported yet"


INSTANCE = """
vrrp_instance VI_1 {{
    interface lan0
    virtual_router_id 51
    {line}
    virtual_ipaddress {{
        198.51.100.1/24
    }}
}}
"""


@pytest.mark.parametrize(
    "line, name",
    [
        ("track_src_ip", "track_src_ip"),
        ("dont_track_primary", "dont_track_primary"),
        ("debug 2", "debug"),
        ("track_bfd {\n        bfd1\n    }", "track_bfd"),
        ("promote_secondaries", "promote_secondaries"),
        ("garp_extra_if 5", "garp_extra_if"),
    ],
)
def test_instance_keywords_not_supported_yet(check, line, name):
    loaded = check(INSTANCE.format(line=line))
    assert not_supported(loaded).get(_say(name, "vrrp_instance")) == (4, 5)


@pytest.mark.parametrize(
    "line, name",
    [
        ("vmac_prefix vx", "vmac_prefix"),
        ("vmac_addr_prefix 02:00", "vmac_addr_prefix"),
        ("process_names", "process_names"),
        ("process_name kad", "process_name"),
        ("vrrp_process_name kad_vrrp", "vrrp_process_name"),
        ("checker_process_name kad_check", "checker_process_name"),
        ("lvs_process_name kad_check", "lvs_process_name"),
        ("bfd_process_name kad_bfd", "bfd_process_name"),
    ],
)
def test_global_defs_keywords_not_supported_yet(check, line, name):
    loaded = check(f"global_defs {{\n    {line}\n}}\n")
    assert not_supported(loaded).get(_say(name, "global_defs")) == (2, 5)


@pytest.mark.parametrize(
    "block, name",
    [
        ("bfd_instance b {\n    neighbor_ip 198.51.100.9\n}", "bfd_instance"),
        ("static_ipaddress {\n    198.51.100.7/24 dev lan0\n}", "static_ipaddress"),
        ("static_routes {\n    203.0.113.0/24 via 198.51.100.254 dev lan0\n}", "static_routes"),
        ("static_rules {\n    from 198.51.100.0/24 table 100 preference 100\n}", "static_rules"),
        ("garp_group {\n    garp_interval 1\n    interface lan0\n}", "garp_group"),
    ],
)
def test_top_level_blocks_not_supported_yet(check, block, name):
    loaded = check(block + "\n")
    assert not_supported(loaded).get(_say(name, None)) == (1, 1)


@pytest.mark.parametrize("block", ["virtual_ipaddress", "virtual_ipaddress_excluded"])
@pytest.mark.parametrize("option", ["home", "mngtmpaddr", "noprefixroute", "autojoin", "preferred_lft 60"])
def test_address_options_not_supported_yet_at_the_option(check, block, option):
    text = INSTANCE.format(line=f"{block} {{\n        2001:db8::9/64 dev lan0 {option}\n    }}")
    loaded = check(text)
    assert not_supported(loaded).get(_say(option.split()[0], block)) == (5, 33)


def test_supported_address_options_say_nothing(check):
    line = "virtual_ipaddress_excluded {\n        198.51.100.9/24 brd + dev lan0 scope link label lan0:x -nodad no_track\n    }"
    assert not_supported(check(INSTANCE.format(line=line))) == {}


def test_an_option_reported_once_per_config_with_a_count(check):
    line = "virtual_ipaddress_excluded {\n        198.51.100.9 home\n        198.51.100.10 home\n    }"
    loaded = check(INSTANCE.format(line=line))
    (d,) = [d for d in loaded.diagnostics if "`home`" in d.message]
    assert d.span.line == 5 and d.notes == ("1 more use not reported",)


def test_unicast_fault_no_peer_without_peers(check):
    loaded = check(INSTANCE.format(line="unicast_fault_no_peer"))
    (d,) = [d for d in loaded.diagnostics if "unicast_fault_no_peer" in d.message]
    assert d.severity is Severity.WARNING and (d.span.line, d.span.col) == (4, 5)
    assert d.message == _say("unicast_fault_no_peer", "vrrp_instance")
    assert "FAULT" in d.notes[0] and "multicast" in d.notes[0]


def test_unicast_fault_no_peer_with_peers_is_supported(check):
    line = "unicast_fault_no_peer\n    unicast_peer {\n        198.51.100.12\n    }"
    loaded = check(INSTANCE.format(line=line))
    assert loaded.ok and not_supported(loaded) == {}


# What pyvrrpd 0.1's daemon listed at start as "not supported yet, ignored" (daemon/plan.py
# _ignored, daemon/supervisor.py _log_unsupported): the check now says each of them.
DAEMON_SAID = """
vrrp_script chk {
    script "/bin/true"
}
track_file tf {
    file /run/tf
}
vrrp_track_process tp {
    process nginx
}
bfd_instance b1 {
    neighbor_ip 198.51.100.9
}
static_ipaddress {
    198.51.100.7/24 dev lan0
}
static_routes {
    203.0.113.0/24 via 198.51.100.254 dev lan0
}
static_rules {
    from 198.51.100.0/24 table 100 preference 100
}
vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
}
vrrp_instance VI_1 {
    interface lan0
    virtual_router_id 51
    unicast_fault_no_peer
    track_src_ip
    mcast_src_ip 198.51.100.2
    track_interface {
        lan1
    }
    track_script {
        chk
    }
    track_file {
        tf
    }
    track_process {
        tp
    }
    track_bfd {
        b1
    }
    notify_master /bin/true
    notify_backup /bin/true
    notify_fault /bin/true
    notify_stop /bin/true
    notify_deleted /bin/true
    notify /bin/true
    notify_master_rx_lower_pri /bin/true
    virtual_ipaddress {
        198.51.100.1/24 home mngtmpaddr noprefixroute autojoin preferred_lft 30
    }
}
vrrp_instance VI_2 {
    interface lan0
    virtual_router_id 52
    virtual_ipaddress {
        198.51.100.3/24
    }
    virtual_ipaddress_excluded {
        2001:db8::3/64 home
    }
}
virtual_server 198.51.100.10 80 {
    protocol TCP
    real_server 203.0.113.1 80 {
    }
}
"""


def test_the_check_says_everything_the_daemon_said_at_start(check):
    said = set(not_supported(check(DAEMON_SAID)))
    instance = ["track_bfd", "track_src_ip", "unicast_fault_no_peer"]
    top = ["static_ipaddress", "static_routes", "static_rules", "bfd_instance"]
    options = ["home", "mngtmpaddr", "noprefixroute", "autojoin", "preferred_lft"]
    expected = {_say(k, "vrrp_instance") for k in instance} | {_say(k, None) for k in top}
    expected |= {_say(o, "virtual_ipaddress") for o in options} | {_say("home", "virtual_ipaddress_excluded")}
    assert expected - said == set()


TRACKING = """
global_defs {
    notification_email {
        ops@example.org
    }
    notification_email_from ka@example.org
    smtp_server 198.51.100.25 25
    smtp_helo_name d1.example.org
    smtp_connect_timeout 5
    smtp_alert
    smtp_alert_vrrp
    notify_fifo /run/n.fifo
    notify_fifo_script /bin/cat
    vrrp_notify_fifo /run/v.fifo
    vrrp_notify_fifo_script /bin/cat
    vrrp_notify_priority_changes
}
vrrp_script chk {
    script "/bin/true"
    interval 2
    timeout 1
    weight -10
    rise 2
    fall 2
    user root
    init_fail
}
track_file tf {
    file /run/tf
    weight 2
    init_file 0 overwrite
}
vrrp_track_file old {
    file /run/old
    weight 1
    init_file
}
vrrp_track_process tp {
    process nginx
    param_match initial
    weight -5
    quorum 1
    quorum_max 3
    delay 1
    terminate_delay 1
    fork_delay 1
    full_command
}
vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
    track_interface {
        lan1
    }
    track_script {
        chk
    }
    track_file {
        tf
    }
    track_process {
        tp
    }
    notify_master /bin/true
    notify_backup /bin/true
    notify_fault /bin/true
    notify_stop /bin/true
    notify /bin/true
    smtp_alert
    notify_priority_changes
    sync_group_tracking_weight
}
vrrp_instance VI_1 {
    interface lan0
    virtual_router_id 51
    track_interface {
        lan1
    }
    track_script {
        chk
    }
    track_file {
        old
    }
    track_process {
        tp
    }
    notify_master /bin/true
    notify_backup /bin/true
    notify_fault /bin/true
    notify_stop /bin/true
    notify_deleted /bin/true
    notify /bin/true
    notify_master_rx_lower_pri /bin/true
    notify_priority_changes
    smtp_alert
    virtual_ipaddress {
        198.51.100.1/24
    }
}
vrrp_instance VI_2 {
    interface lan0
    virtual_router_id 52
    virtual_ipaddress {
        198.51.100.3/24
    }
}
"""


def test_tracking_sync_groups_and_notifications_are_supported(check):
    loaded = check(TRACKING)
    assert loaded.ok and not_supported(loaded) == {}


# --------------------------------------------------------------------------- LVS

# A director of each kind, with every keyword the LVS subsystem acts on (docs/lvs.md, docs/checkers.md).
DIRECTORS = """
global_defs {
    router_id lvs1
    lvs_flush
    lvs_flush_on_stop VS
    lvs_timeouts tcp 900 tcpfin 120 udp 300
    checker_log_all_failures
}
SSL {
    ca /etc/ssl/ca.pem
    certificate /etc/ssl/client.pem
    key /etc/ssl/client.key
    password secret
}
track_file maint {
    file /run/maint
    weight -10 reverse
}
virtual_server_group WEB {
    198.51.100.10-12 80
    fwmark 7
}
virtual_server 198.51.100.100 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    ip_family inet
    connect_timeout 3
    retry 2
    delay_before_retry 1
    warmup 2
    inhibit_on_failure
    alpha
    omega
    quorum 2
    hysteresis 1
    quorum_up /bin/true
    quorum_down /bin/true
    weight 2
    virtualhost www.example.org
    sorry_server 203.0.113.99 8080
    sorry_server_inhibit
    sorry_server_lvs_method NAT
    real_server 203.0.113.11 8080 {
        weight 3
        uthreshold 100
        lthreshold 10
        notify_up /bin/true
        notify_down /bin/true
        inhibit_on_failure
        alpha
        retry 1
        delay_before_retry 2
        warmup 1
        connect_timeout 2
        delay_loop 5
        virtualhost web1.example.org
        HTTP_GET {
            url {
                path /health
                digest 9b3a0c85a887a256d6939da88aabd8cd
                status_code 200-299 301
                virtualhost h.example.org
                regex "ok"
                regex_no_match
                regex_options caseless
                regex_min_offset 0
                regex_max_offset 100
            }
            virtualhost web.example.org
            http_protocol 1.1
            enable_sni
            fast_recovery
            nb_get_retry 2
            connect_ip 203.0.113.11
            connect_port 8080
            bindto 198.51.100.2
            bind_port 4000
            fwmark 5
            connect_timeout 2
            retry 2
            delay_before_retry 1
            warmup 1
            delay_loop 3
            alpha
            log_all_failures
        }
        FILE_CHECK {
            track_file maint
            weight 5 reverse
        }
    }
    real_server 203.0.113.12 8080 {
        SSL_GET {
            url {
                path /
            }
        }
        TCP_CHECK {
            connect_timeout 1
        }
        MISC_CHECK {
            misc_path "/bin/true"
            misc_timeout 5
            misc_dynamic
            user nobody
            retry 1
        }
        SMTP_CHECK {
            helo_name lvs1.example.org
            connect_port 25
        }
        DNS_CHECK {
            type A
            name example.org
        }
        UDP_CHECK {
            connect_port 53
            payload 0102
            require_reply 01XX
            min_reply_length 2
            max_reply_length 512
        }
        PING_CHECK {
            retry 1
        }
    }
}
virtual_server 198.51.100.101 80 {
    lvs_sched rr
    lvs_method DR
    protocol TCP
    ops
    hashed
    real_server 203.0.113.21 80 {
        lvs_method TUN type gue port 6080 csum
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 203.0.113.22 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server group WEB {
    lb_algo sh
    sh-port
    sh-fallback
    lb_kind DR
    protocol TCP
    persistence_engine sip
    real_server 203.0.113.31 80 {
    }
}
virtual_server fwmark 9 {
    lb_algo mh
    mh-port
    mh-fallback
    flag-1
    flag-2
    flag-3
    lb_kind DR
    real_server 203.0.113.41 {
    }
}
"""


def test_nat_and_dr_directors_say_nothing_is_unsupported(check):
    loaded = check(DIRECTORS)
    assert loaded.ok, [d.message for d in loaded.diagnostics if d.severity is Severity.ERROR]
    assert not_supported(loaded) == {}


@pytest.mark.parametrize(
    "line, name, where",
    [
        ("snmp_name web", "snmp_name", "virtual_server"),
    ],
)
def test_virtual_server_keywords_not_supported_yet(check, line, name, where):
    text = f"virtual_server 198.51.100.10 80 {{\n    protocol TCP\n    {line}\n" \
           "    real_server 203.0.113.1 80 {\n    }\n}\n"
    assert not_supported(check(text)).get(_say(name, where)) == (3, 5)


@pytest.mark.parametrize(
    "line, name, where",
    [
        ("snmp_name rs1", "snmp_name", "real_server"),
        ("BFD_CHECK {\n            name b1\n        }", "BFD_CHECK", "real_server"),
        ("HTTP_GET {\n            url {\n                path /\n                regex_stack 10\n"
         "            }\n        }", "regex_stack", "url"),
    ],
)
def test_real_server_keywords_not_supported_yet(check, line, name, where):
    text = ("virtual_server 198.51.100.10 80 {\n    protocol TCP\n    real_server 203.0.113.1 80 {\n"
            f"        {line}\n    }}\n}}\n")
    found = not_supported(check(text))
    at = (7, 17) if name == "regex_stack" else (4, 9)
    assert found.get(_say(name, where)) == at, found


# --------------------------------------------------------------------------- what the daemon refuses


AUTH = INSTANCE.replace("{line}", "{line}\n    authentication {{\n        auth_type {auth}\n"
                                  "        auth_pass secret\n    }}")


def test_ah_authentication_is_an_error_at_its_value(check):
    loaded = check(AUTH.format(line="priority 100", auth="AH"))
    assert not loaded.ok
    (d,) = [d for d in loaded.diagnostics if d.severity is Severity.ERROR]
    assert d.message == "vrrp_instance VI_1: AH authentication is not supported by pyvrrpd; use PASS or none"
    assert (d.span.line, d.span.col, d.span.end_col) == (6, 19, 21)


def test_ah_that_keepalived_ignores_is_no_error(check):
    loaded = check(AUTH.format(line="version 3", auth="AH"))
    assert loaded.ok
    assert any("VRRP version 3 has no authentication; authentication ignored" in d.message
               for d in loaded.diagnostics)


@pytest.mark.parametrize("auth, ok", [("PASS", True), ("ah", True), ("AH AH", False), ("", False)])
def test_auth_type_garbage(check, auth, ok):
    loaded = check(AUTH.format(line="priority 100", auth=auth))
    assert loaded.ok is ok
    assert loaded.config is not None


def test_unicast_without_interface_is_an_error(check):
    loaded = check("""
        vrrp_instance VI_1 {
            virtual_router_id 51
            unicast_peer {
                198.51.100.12
            }
            virtual_ipaddress {
                198.51.100.1/24
            }
        }
    """)
    assert not loaded.ok
    (d,) = [d for d in loaded.diagnostics if d.severity is Severity.ERROR]
    assert "unicast without 'interface'" in d.message and "cannot run" in d.message
    assert loaded.config.instances == ()
