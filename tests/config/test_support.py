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


def _compared(node: ast.AST) -> set[str]:
    """Keywords in ``c.keyword == "x"`` or ``c.keyword in ("x", "y")`` (an if/elif reader)."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.In))
            and isinstance(node.left, ast.Attribute) and node.left.attr == "keyword"):
        return set()
    right = node.comparators[0]
    values = right.elts if isinstance(right, (ast.Tuple, ast.List, ast.Set)) else [right]
    return {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}


def handled(reader) -> set[str]:
    """The keywords a block's reader handles: the TOP table's keys, its ``case`` labels, or the keywords
    its if/elif chain compares ``c.keyword`` with."""
    if isinstance(reader, dict):
        return set(reader)
    tree = ast.parse(textwrap.dedent(inspect.getsource(reader)))
    cases = [n for n in ast.walk(tree) if isinstance(n, ast.match_case)]
    found = set().union(*(_literals(c.pattern) for c in cases), *(_compared(n) for n in ast.walk(tree)))
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
        ("lvs_notify_fifo /run/lvs.fifo", "lvs_notify_fifo"),
        ("smtp_alert_checker", "smtp_alert_checker"),
        ("lvs_flush", "lvs_flush"),
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
        ("virtual_server_group web {\n    198.51.100.20 80\n}", "virtual_server_group"),
        ("virtual_server 198.51.100.10 80 {\n    protocol TCP\n    real_server 203.0.113.1 80 {\n    }\n}",
         "virtual_server"),
        ("garp_group {\n    garp_interval 1\n    interface lan0\n}", "garp_group"),
        ("SSL {\n    ca /etc/ca.pem\n}", "SSL"),
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
    top = ["virtual_server", "static_ipaddress", "static_routes", "static_rules", "bfd_instance"]
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
