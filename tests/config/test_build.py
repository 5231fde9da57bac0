"""pyvrrpd.config.build: node tree -> model + semantic diagnostics (keepalived 2.2.7 outcomes).

Configs go through the real lexer and parser, so each test is "config text ->
model fields and diagnostics with line numbers". Only the build's own
diagnostics are checked, so parser wording changes do not break these tests.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import stat
import textwrap

import pytest

from pyvrrpd.config import model as m
from pyvrrpd.config.build import (
    LocalHost,
    StaticHost,
    build,
    parse_decimal_us,
    parse_int,
    split_command,
)
from pyvrrpd.config.diagnostics import Severity
from pyvrrpd.config.lexer import read_config
from pyvrrpd.config.parser import parse

S = m.SECOND


class Built:
    def __init__(self, config: m.Config, diags: list, parse_diags: list) -> None:
        self.config = config
        self.diags = diags
        self.parse_diags = parse_diags

    @property
    def errors(self) -> list[tuple[int, str]]:
        return [(d.span.line if d.span else 0, d.message) for d in self.diags if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[tuple[int, str]]:
        return [(d.span.line if d.span else 0, d.message) for d in self.diags if d.severity is Severity.WARNING]

    def at(self, line: int) -> list[str]:
        """Messages (errors and warnings) on one line."""
        return [d.message for d in self.diags if d.span and d.span.line == line and d.severity >= Severity.WARNING]

    def has(self, line: int, *fragments: str) -> bool:
        return any(all(f in msg for f in fragments) for msg in self.at(line))

    @property
    def instance(self) -> m.VrrpInstance:
        (inst,) = self.config.instances
        return inst

    @property
    def vs(self) -> m.VirtualServer:
        (vs,) = self.config.virtual_servers
        return vs


@pytest.fixture
def load(tmp_path):
    """config text (line 1 = first line of the text) -> Built."""

    def _load(text: str, host=None) -> Built:
        path = tmp_path / "keepalived.conf"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        lines, lex_diags = read_config(str(path), config_id="test")
        root, parse_diags = parse(lines)
        config, diags = build(root, host=host)
        return Built(config, diags, lex_diags + parse_diags)

    return _load


VI = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
{body}
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


def vi(body: str = "", vip: str = "198.51.100.100/24") -> str:
    return VI.format(body=textwrap.indent(textwrap.dedent(body).strip("\n"), "    "), vip=vip)


# --------------------------------------------------------------------------- value readers


def test_parse_int_is_base_10_only():
    assert parse_int("42") == 42
    assert parse_int("+7") == 7
    assert parse_int("-3") == -3
    assert parse_int("0x10") is None
    assert parse_int("1e3") is None
    assert parse_int("") is None


@pytest.mark.parametrize(
    "text, us, rounded",
    [
        ("1", S, False),
        ("0.5", 500_000, False),
        (".25", 250_000, False),
        ("3.", 3 * S, False),
        ("0.000001", 1, False),
        ("1.1234567", 1_123_457, True),  # 7 places: rounded half up
        ("1.1234564", 1_123_456, True),
    ],
)
def test_decimal_seconds_to_microseconds(text, us, rounded):
    assert parse_decimal_us(text) == (us, rounded)


@pytest.mark.parametrize("text", ["", ".", "abc", "1.2.3", "-1", "1s"])
def test_decimal_seconds_rejects(text):
    assert parse_decimal_us(text) is None


def test_split_command_quotes_and_escapes():
    assert split_command("/bin/echo a 'b c' \"d e\" f\\ g") == ["/bin/echo", "a", "b c", "d e", "f g"]
    assert split_command("  x  ") == ["x"]
    assert split_command("''") == [""]


# --------------------------------------------------------------------------- defaults


def test_empty_config_gives_defaults(load):
    b = load("")
    assert b.diags == []
    g = b.config.global_defs
    assert g.vrrp_version == 2
    assert g.vrrp_garp_master_delay_us == 5 * S
    assert g.vrrp_garp_master_repeat == 5
    assert g.vrrp_garp_master_refresh_us == 0
    assert g.vrrp_garp_master_refresh_repeat == 1
    assert g.vrrp_garp_lower_prio_delay_us == 5 * S
    assert g.vrrp_garp_lower_prio_repeat == 5
    assert g.vrrp_mcast_group4 == ipaddress.ip_address("224.0.0.18")
    assert g.vrrp_mcast_group6 == ipaddress.ip_address("ff02::12")
    assert g.vrrp_down_timer_adverts == 3


def test_minimal_instance_defaults(load):
    b = load(vi())
    assert b.errors == [] and b.warnings == []
    i = b.instance
    assert (i.name, i.interface, i.vrid) == ("VI_1", "eth0", 51)
    assert i.state is m.State.BACKUP and i.priority == 100
    assert i.advert_int_us == S and i.version == 2 and i.family == 4
    assert i.vips[0].address == ipaddress.ip_interface("198.51.100.100/24")
    assert i.vips[0].span.line == 6
    assert (i.garp_master_delay_us, i.garp_master_repeat) == (5 * S, 5)
    assert (i.garp_lower_prio_delay_us, i.garp_lower_prio_repeat) == (5 * S, 5)
    assert i.down_timer_adverts == 3
    assert i.accept is None and i.accept_mode is True
    assert not i.nopreempt and i.preempt_delay_us == 0
    assert i.span.line == 1


def test_global_garp_settings_flow_into_instances(load):
    b = load(
        """
        global_defs {
            vrrp_garp_master_delay 2
            vrrp_garp_master_repeat 3
            vrrp_down_timer_adverts 5
        }
        """
        + vi("garp_master_repeat 7")
    )
    g = b.config.global_defs
    assert g.vrrp_garp_lower_prio_delay_us == 2 * S  # follows master delay when unset
    assert g.vrrp_garp_lower_prio_repeat == 3
    i = b.instance
    assert i.garp_master_delay_us == 2 * S
    assert i.garp_master_repeat == 7
    assert i.garp_lower_prio_repeat == 3
    assert i.down_timer_adverts == 5


def test_garp_repeat_zero_becomes_one(load):
    b = load("global_defs {\n  vrrp_garp_master_repeat 0\n}\n")
    assert b.config.global_defs.vrrp_garp_master_repeat == 1
    assert b.has(2, "greater than 0", "using 1")


def test_vrrp_garp_interval_zero_is_invalid(load):
    b = load("global_defs {\n  vrrp_garp_interval 0\n  vrrp_gna_interval 0.5\n}\n")
    assert b.has(2, "vrrp_garp_interval", "ignoring")
    assert b.config.global_defs.vrrp_garp_interval_us == 0
    assert b.config.global_defs.vrrp_gna_interval_us == 500_000


# --------------------------------------------------------------------------- instance values


def test_priority_out_of_range_uses_default(load):
    b = load(vi("priority 300"))
    assert b.instance.priority == 100
    assert b.has(4, "priority", "300", "using the default 100")


def test_priority_not_a_number(load):
    b = load(vi("priority $PRIORITY"))
    assert b.instance.priority == 100
    assert b.has(4, "'$PRIORITY'", "not a base-10 number")


def test_state_is_case_sensitive(load):
    b = load(vi("state master"))
    assert b.instance.state is m.State.BACKUP
    assert b.has(4, "unknown state 'master'", "using BACKUP")


def test_state_master_without_priority_implies_owner(load):
    b = load(vi("state MASTER"))
    assert b.instance.state is m.State.MASTER
    assert b.instance.priority == 255


def test_priority_255_without_state_is_master(load):
    assert load(vi("priority 255")).instance.state is m.State.MASTER


def test_state_backup_after_master_is_ignored(load):
    b = load(vi("state MASTER\nstate BACKUP"))
    assert b.instance.state is m.State.MASTER
    assert b.has(5, "already set to MASTER")


def test_nopreempt_cleared_by_state_master(load):
    b = load(vi("state MASTER\npriority 150\nnopreempt"))
    assert not b.instance.nopreempt
    assert any("nopreempt" in w and "MASTER" in w for _, w in b.warnings)


def test_nopreempt_cleared_by_priority_255(load):
    b = load(vi("state BACKUP\npriority 255\nnopreempt"))
    assert not b.instance.nopreempt
    assert any("nopreempt" in w and "255" in w for _, w in b.warnings)


def test_nopreempt_kept_for_backup(load):
    b = load(vi("state BACKUP\npriority 100\nnopreempt"))
    assert b.instance.nopreempt and b.warnings == []


@pytest.mark.parametrize(
    "body, why",
    [
        ("state MASTER\npriority 100\npreempt_delay 10", "MASTER"),
        ("state BACKUP\nnopreempt\npreempt_delay 10", "nopreempt"),
        ("state BACKUP\nstrict_mode\npreempt_delay 10", "strict"),
    ],
)
def test_preempt_delay_cleared(load, body, why):
    b = load(vi(body))
    assert b.instance.preempt_delay_us == 0
    assert any("preempt_delay" in w and why in w for _, w in b.warnings)


def test_preempt_delay_in_microseconds(load):
    assert load(vi("preempt_delay 2.5")).instance.preempt_delay_us == 2_500_000


def test_v2_advert_int_is_rounded_to_whole_seconds(load):
    b = load(vi("advert_int 1.5"))
    assert b.instance.advert_int_us == 2 * S
    assert any("whole seconds" in w and "2s" in w for _, w in b.warnings)


def test_v3_advert_int_in_10ms_steps(load):
    b = load(vi("version 3\nadvert_int 0.015"))
    assert b.instance.advert_int_us == 20_000
    assert any("10ms" in w for _, w in b.warnings)


def test_v3_advert_int_above_40_95(load):
    b = load(vi("version 3\nadvert_int 50"))
    assert b.instance.advert_int_us == 40_950_000


def test_advert_int_out_of_range_keeps_default(load):
    b = load(vi("advert_int 300"))
    assert b.instance.advert_int_us == S
    assert b.has(4, "advert_int", "using 1s")


def test_advert_int_too_many_decimals(load):
    b = load(vi("version 3\nadvert_int 0.1000004"))
    assert b.instance.advert_int_us == 100_000
    assert b.has(5, "more than 6 decimal places")


def test_vrid_missing_is_an_error(load):
    b = load(
        """
        vrrp_instance VI_1 {
            interface eth0
            virtual_ipaddress {
                198.51.100.1
            }
        }
        """
    )
    assert b.config.instances == ()
    assert b.errors == [(1, "vrrp_instance VI_1 has no virtual_router_id; the instance cannot run")]


@pytest.mark.parametrize("vrid", ["0", "256", "abc"])
def test_vrid_invalid_is_an_error_on_its_line(load, vrid):
    b = load(vi().replace("virtual_router_id 51", f"virtual_router_id {vrid}"))
    assert b.config.instances == ()
    assert [line for line, _ in b.errors] == [3]


def test_interface_missing_is_an_error(load):
    b = load(vi().replace("interface eth0", ""))
    assert b.config.instances == ()
    assert any("no 'interface'" in e for _, e in b.errors)


def test_duplicate_instance_name_is_an_error(load):
    b = load(vi() + vi().replace("51", "52"))
    assert len(b.config.instances) == 1
    assert b.errors and b.errors[0][0] == 10 and "already defined" in b.errors[0][1]


# --------------------------------------------------------------------------- versions, families, auth


def test_ipv6_instance_is_v3(load):
    b = load(vi(vip="2001:db8::1"))
    assert (b.instance.family, b.instance.version) == (6, 3)
    assert b.instance.vips[0].address == ipaddress.ip_interface("2001:db8::1/128")


def test_v2_with_ipv6_becomes_v3_with_a_warning(load):
    b = load(vi("version 2", vip="fe80::1"))
    assert b.instance.version == 3
    assert b.errors == []
    assert any("version 2" in w and "IPv6" in w for _, w in b.warnings)


def test_global_vrrp_version_3(load):
    b = load("global_defs {\n  vrrp_version 3\n}\n" + vi())
    assert b.instance.version == 3


def test_mixed_families_in_virtual_ipaddress(load):
    b = load(vi(vip="198.51.100.1\n        2001:db8::1"))
    assert [str(v.address.ip) for v in b.instance.vips] == ["198.51.100.1"]
    assert b.has(7, "2001:db8::1", "IPv6", "IPv4", "ignored")


def test_excluded_vips_may_mix_families(load):
    b = load(vi("virtual_ipaddress_excluded {\n    2001:db8::5\n}"))
    assert b.warnings == []
    assert str(b.instance.excluded_vips[0].address.ip) == "2001:db8::5"


def test_auth_pass_truncated_to_8(load):
    b = load(vi("authentication {\n    auth_type PASS\n    auth_pass 123456789\n}"))
    assert b.instance.auth_type is m.AuthType.PASS
    assert b.instance.auth_pass == "12345678"
    assert b.has(6, "auth_pass", "8")


def test_v3_ignores_authentication(load):
    b = load(vi("version 3\nauthentication {\n    auth_type PASS\n    auth_pass secret\n}"))
    assert b.instance.auth_type is None and b.instance.auth_pass is None
    assert any("version 3" in w and "authentication ignored" in w for _, w in b.warnings)


def test_ah_with_state_master_starts_backup(load):
    b = load(vi("state MASTER\npriority 100\nauthentication {\n    auth_type AH\n    auth_pass secret\n}"))
    assert b.instance.state is m.State.BACKUP
    assert b.instance.auth_type is m.AuthType.AH


def test_no_vips_is_a_warning_for_v2_and_an_error_for_v3(load):
    v2 = load("vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n}\n")
    assert v2.errors == [] and any("no virtual_ipaddress" in w for _, w in v2.warnings)
    v3 = load("vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  version 3\n}\n")
    assert v3.config.instances == () and any("no virtual_ipaddress" in e for _, e in v3.errors)


# --------------------------------------------------------------------------- VIP entries


def test_vip_prefix_33_uses_32(load):
    b = load(vi(vip="198.51.100.1/33"))
    assert b.instance.vips[0].address == ipaddress.ip_interface("198.51.100.1/32")
    assert b.has(6, "prefix length '33'", "/32")


def test_vip_options(load):
    b = load(
        vi(vip="198.51.100.1/24 brd + dev eth1 scope link label eth1:vip no_track -nodad noprefixroute "
               "preferred_lft 0 home autojoin mngtmpaddr")
    )
    # all read; five of them pyvrrpd does not act on yet, and the check says so at each
    options = ["noprefixroute", "preferred_lft", "home", "autojoin", "mngtmpaddr"]
    assert b.warnings == [(6, f"`{o}` in virtual_ipaddress is accepted but not supported yet") for o in options]
    line = b.diags[0].span.source.lines[5]
    assert [line[d.span.col - 1 : d.span.end_col - 1] for d in b.diags] == options
    v = b.instance.vips[0]
    assert v.broadcast == ipaddress.ip_address("198.51.100.255")
    assert (v.dev, v.scope, v.label) == ("eth1", "link", "eth1:vip")
    assert v.no_track and v.nodad and v.noprefixroute and v.home and v.autojoin and v.mngtmpaddr
    assert v.preferred_lft == 0


def test_vip_broadcast_minus_and_peer(load):
    b = load(vi(vip="198.51.100.1/24 brd -\n        198.51.100.2 peer 198.51.100.9/30"))
    first, second = b.instance.vips
    assert first.broadcast == ipaddress.ip_address("198.51.100.0")
    assert second.peer == ipaddress.ip_interface("198.51.100.9/30")
    assert second.address == ipaddress.ip_interface("198.51.100.2/30")


def test_vip_unknown_option_is_ignored(load):
    b = load(vi(vip="198.51.100.1 track"))
    assert len(b.instance.vips) == 1
    assert b.has(6, "unknown option 'track'")


def test_vip_invalid_address_is_skipped(load):
    b = load(vi(vip="9.x.x.10/19"))
    assert b.instance.vips == ()
    assert b.has(6, "'9.x.x.10/19' is not a valid IP address")


def test_ipv6_vip_label_is_ignored(load):
    b = load(vi(vip="2001:db8::1 label x"))
    assert b.instance.vips[0].label is None
    assert b.has(6, "label")


def test_ipv6_vip_broadcast_drops_the_address(load):
    b = load(vi(vip="2001:db8::1 brd 2001:db8::ff\n        2001:db8::2"))
    assert [str(v.address.ip) for v in b.instance.vips] == ["2001:db8::2"]


# --------------------------------------------------------------------------- unicast, vmac, strict


def test_unicast_peers_with_ttl_turn_on_check_unicast_src(load):
    b = load(vi("unicast_src_ip 198.51.100.2\nunicast_peer {\n    198.51.100.3 min_ttl 250 max_ttl 255\n"
                "    198.51.100.4\n}"))
    i = b.instance
    assert i.unicast and i.check_unicast_src
    assert i.src_ip == ipaddress.ip_address("198.51.100.2")
    assert [(str(p.address), p.min_ttl, p.max_ttl) for p in i.unicast_peers] == [
        ("198.51.100.3", 250, 255), ("198.51.100.4", 0, 255)]


def test_unicast_keyword_without_peers_defaults_to_multicast(load):
    b = load(vi("unicast_src_ip 198.51.100.2"))
    assert not b.instance.unicast
    assert any("no unicast peers" in w and "multicast" in w for _, w in b.warnings)


def test_unicast_peer_of_the_wrong_family(load):
    # the first address seen (here the VIP) fixes the family, as in keepalived
    b = load(vi().replace("    }\n}", "    }\n    unicast_peer {\n        2001:db8::3\n    }\n}"))
    assert b.has(9, "unicast peer 2001:db8::3", "ignored")


def test_malformed_unicast_peer(load):
    b = load(vi("unicast_peer {\n    10.1.0.$THEM\n}"))
    assert b.has(5, "10.1.0.$THEM", "not a valid IP address")


def test_unicast_ttl_without_peers_is_reset_at_the_closing_brace(load):
    b = load(vi("unicast_ttl 10"))
    assert b.instance.unicast_ttl is None
    assert b.has(8, "unicast_ttl without unicast peers")


def test_use_vmac_with_unicast_sets_vmac_xmit_base(load):
    b = load(vi("use_vmac\nunicast_peer {\n    198.51.100.3\n}"))
    assert b.instance.use_vmac and b.instance.vmac_xmit_base
    assert b.has(11, "vmac_xmit_base")


def test_use_vmac_name(load):
    b = load(vi("use_vmac vrrp51"))
    assert b.instance.use_vmac and b.instance.vmac_name == "vrrp51"


def test_strict_mode_rules(load):
    b = load(
        "global_defs {\n  vrrp_strict\n}\n"
        + vi("state MASTER\npriority 100\nauthentication {\n    auth_type PASS\n    auth_pass x\n}\n"
             "garp_lower_prio_repeat 3")
    )
    i = b.instance
    assert i.strict
    assert i.state is m.State.BACKUP  # MASTER must match priority 255
    assert i.auth_type is None
    assert i.accept is None and i.accept_mode is False
    assert i.garp_lower_prio_repeat == 0 and i.garp_lower_prio_delay_us == 0
    assert i.lower_prio_no_advert is True
    text = " | ".join(w for _, w in b.warnings)
    assert "strict mode needs state MASTER" in text and "strict mode does not allow authentication" in text


def test_strict_mode_forbids_unicast(load):
    b = load(vi("strict_mode\nunicast_peer {\n    198.51.100.3\n}"))
    assert b.config.instances == ()
    assert any("strict mode" in e for _, e in b.errors)


def test_strict_mode_accepts_explicit_accept_for_v3(load):
    b = load(vi("strict_mode\nversion 3\naccept"))
    assert b.instance.accept is True and b.instance.accept_mode is True


# --------------------------------------------------------------------------- duplicates


def test_duplicate_vrid_on_interface_and_family_is_an_error(load):
    b = load(vi() + vi().replace("VI_1", "VI_2"))
    assert [i.name for i in b.config.instances] == ["VI_1", "VI_2"]
    assert len(b.errors) == 1 and b.errors[0][0] == 10 and "VRID 51 on eth0 for IPv4" in b.errors[0][1]


def test_same_vrid_other_family_is_fine(load):
    b = load(vi() + vi(vip="2001:db8::1").replace("VI_1", "VI_2"))
    assert b.errors == []


def test_same_vrid_with_disjoint_unicast_peers_warns(load):
    body = "unicast_peer {{\n    {}\n}}"
    b = load(vi(body.format("198.51.100.3")) + vi(body.format("198.51.100.4")).replace("VI_1", "VI_2"))
    assert b.errors == []
    assert any("other unicast peers" in w for _, w in b.warnings)


# --------------------------------------------------------------------------- tracking


def test_track_script_weights_and_missing_scripts(load):
    b = load(
        """
        vrrp_script chk {
            script "/bin/true"
            weight -20
        }
        """
        + vi("track_script {\n    chk\n    nosuch\n    chk2 weight 10\n}")
        + """
        vrrp_script chk2 {
            script "/bin/true"
        }
        """
    )
    (t,) = b.instance.tracks
    assert t.kind is m.TrackKind.SCRIPT
    assert (t.name, t.weight, t.reverse) == ("chk", -20, False)
    assert b.has(11, "nosuch", "not defined")
    assert b.has(12, "chk2", "defined later")


def test_track_script_weight_254_becomes_253(load):
    b = load('vrrp_script chk {\n  script "/bin/true"\n}\n' + vi("track_script {\n    chk weight 254\n}"))
    assert b.instance.tracks[0].weight == 253
    assert b.has(9, "254")


def test_vrrp_script_without_script_is_removed_at_its_brace(load):
    b = load("vrrp_script chk {\n  interval 2\n}\n" + vi("track_script {\n    chk\n}"))
    assert b.config.vrrp_scripts == ()
    assert b.has(3, "no 'script'", "removed")
    assert b.has(9, "chk", "removed")


def test_vrrp_script_values(load):
    b = load('vrrp_script chk {\n  script "/bin/check \'a b\'"\n  interval 2\n  fall 3\n  rise 0\n'
             '  weight 10 reverse\n}\n')
    (s,) = b.config.vrrp_scripts
    assert s.script.argv == ("/bin/check", "a b")
    assert s.interval_us == 2 * S and s.timeout_us == 2 * S
    assert (s.fall, s.rise, s.weight, s.weight_reverse) == (3, 1, 10, True)
    assert b.has(5, "rise", "using 1")


def test_vrrp_script_unquoted_arguments_are_dropped(load):
    b = load("vrrp_script chk {\n  script /bin/check arg\n}\n")
    assert b.config.vrrp_scripts[0].script.argv == ("/bin/check",)
    assert b.has(2, "words after the command are ignored")


def test_track_interface_weight_and_own_interface(load):
    b = load(vi("track_interface {\n    eth1 weight -10 reverse\n    eth0\n    eth2 weight 254\n}"))
    names = [(t.kind.value, t.name, t.weight, t.reverse) for t in b.instance.tracks]
    assert names == [("interface", "eth1", -10, True), ("interface", "eth2", 253, False)]
    assert b.has(6, "its own interface eth0")
    assert b.has(7, "254")


def test_track_file(load):
    b = load("track_file TF {\n  file /run/x\n  weight -5\n}\ntrack_file NOFILE {\n  weight 1\n}\n"
             + vi("track_file {\n    TF\n}"))
    (tf,) = b.config.track_files
    assert (tf.name, tf.path, tf.weight) == ("TF", "/run/x", -5)
    assert [(t.kind, t.weight) for t in b.instance.tracks] == [(m.TrackKind.FILE, -5)]
    assert b.has(7, "NOFILE", "no 'file'")


# One weight reader for every tracked object: keepalived 2.2.7's range of each kind, the same
# where the object is defined and on a track_* line; +-254 becomes +-253 for interfaces and scripts.
DEFS = (
    'vrrp_script S {\n  script "/bin/true"\n  weight %s\n}\n'
    "track_file F {\n  file /run/f\n  weight %s\n}\n"
    "vrrp_track_process P {\n  process nginx\n  weight %s\n}\n"
    "bfd_instance B {\n  neighbor_ip 198.51.100.7\n  weight %s\n}\n"
)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("253", {"script": 253, "file": 253, "process": 253, "bfd": 253}),
        ("-253", {"script": -253, "file": -253, "process": -253, "bfd": -253}),
        ("254", {"script": 253, "file": 254, "process": 254, "bfd": 0}),
        ("-254", {"script": -253, "file": -254, "process": -254, "bfd": 0}),
        ("255", {"script": 0, "file": 1, "process": 0, "bfd": 0}),
        ("x", {"script": 0, "file": 1, "process": 0, "bfd": 0}),
        ("1e3", {"script": 0, "file": 1, "process": 0, "bfd": 0}),
    ],
)
def test_weight_ranges_of_tracked_object_definitions(load, value, expected):
    b = load(DEFS % ((value,) * 4))
    c = b.config
    got = {"script": c.vrrp_scripts[0].weight, "file": c.track_files[0].weight,
           "process": c.track_processes[0].weight, "bfd": c.bfd_instances[0].weight}
    assert got == expected
    lines = {"script": 3, "file": 7, "process": 11, "bfd": 15}
    for kind, line in lines.items():
        valid = value.lstrip("-").isdigit() and abs(int(value)) <= (253 if kind in ("script", "bfd") else 254)
        assert b.has(line, "weight") is not valid, (kind, b.at(line))
    assert b.errors == []


@pytest.mark.parametrize(
    "kind, line, weight, reverse, message",
    [
        ("interface", "eth1 weight 253 reverse", 253, True, None),
        ("interface", "eth1 weight -254", -253, False, "is not allowed; using -253"),
        ("interface", "eth1 weight 300", 0, False, "outside the range [-253, 253]; using 0"),
        ("interface", "eth1 weight 5 noreverse", 5, False, "unknown weight option 'noreverse'"),
        ("script", "S weight 254 noreverse", 253, False, "is not allowed; using 253"),
        ("script", "S weight -254 reverse", -253, True, "is not allowed; using -253"),
        ("script", "S weight abc", -20, True, "'abc' is not a base-10 number; using -20"),
        ("script", "S weight 7 sideways", 7, True, "unknown weight option 'sideways'"),
        ("file", "F weight -254", -254, False, None),
        ("file", "F weight 255", 3, False, "outside the range [-254, 254]; using 3"),
        ("process", "P weight 254 reverse", 254, True, None),
        ("bfd", "B weight 254", 0, False, "outside the range [-253, 253]; using 0"),
        ("bfd", "B weight -253", -253, False, None),
    ],
)
def test_weight_on_a_track_line(load, kind, line, weight, reverse, message):
    defs = ('vrrp_script S {\n  script "/bin/true"\n  weight -20 reverse\n}\n'
            "track_file F {\n  file /run/f\n  weight 3\n}\n"
            "vrrp_track_process P {\n  process nginx\n}\n"
            "bfd_instance B {\n  neighbor_ip 198.51.100.7\n}\n")
    text = defs + vi(f"track_{kind} {{\n    {line}\n}}")
    b = load(text)
    (t,) = b.instance.tracks
    assert (t.kind.value, t.weight, t.reverse) == (kind, weight, reverse)
    at = b.at(textwrap.dedent(text).lstrip("\n").splitlines().index(f"        {line}") + 1)
    assert [msg for msg in at if "weight" in msg] == ([] if message is None else [at[0]])
    if message is not None:
        assert message in at[0] and f"track_{kind}" in at[0]


def test_weight_without_a_value_or_with_another_option(load):
    b = load(vi("track_interface {\n    eth1 weight\n    eth2 wait 3\n    eth3 weight 2\n}"))
    assert [t.name for t in b.instance.tracks] == ["eth3"]
    assert b.has(5, "'weight' without a value")
    assert b.has(6, "unknown track_interface option 'wait'")


# --------------------------------------------------------------------------- sync groups


def test_sync_group_members_and_unknown_names(load):
    b = load(
        "vrrp_sync_group G {\n  group {\n    VI_1\n    VI_X\n  }\n}\n"
        + vi("track_interface {\n    eth1 weight 10\n}")
    )
    (g,) = b.config.sync_groups
    assert g.members == ("VI_1",)
    assert b.has(4, "VI_X", "does not exist")
    assert any("only one member" in w for _, w in b.warnings)
    # a member of a sync group without tracking weight tracks unweighted
    assert b.instance.sync_group == "G"
    assert [(t.kind, t.name, t.weight) for t in b.instance.tracks] == [(m.TrackKind.INTERFACE, "eth1", 0)]


def test_instance_in_two_sync_groups(load):
    b = load("vrrp_sync_group A {\n  group {\n    VI_1\n  }\n}\n"
             "vrrp_sync_group B {\n  group {\n    VI_1\n  }\n}\n" + vi())
    assert b.has(8, "already in vrrp_sync_group A")
    assert [g.name for g in b.config.sync_groups] == ["A"]


# --------------------------------------------------------------------------- host checks


CORPUS_HOST = StaticHost(interfaces=frozenset({"lo"}), users=frozenset({"root"}))


def test_host_checks_are_warnings_that_say_so(load):
    b = load(vi("track_interface {\n    eth9\n}", vip="198.51.100.1 dev eth3"), host=CORPUS_HOST)
    assert b.errors == []
    assert b.has(2, "interface eth0", "does not exist on this host", "(host check)")
    assert b.has(5, "eth9", "does not exist on this host")
    assert b.has(8, "eth3", "does not exist on this host")


def test_no_host_means_no_host_checks(load):
    b = load(vi("track_interface {\n    eth9\n}", vip="198.51.100.1 dev eth3"))
    assert b.diags == []


def test_dynamic_interfaces_turns_interface_checks_off(load):
    b = load("global_defs {\n  dynamic_interfaces\n}\n" + vi(), host=CORPUS_HOST)
    assert b.diags == []


def test_script_user_missing_on_host_removes_default_user_scripts(load):
    b = load(
        "global_defs {\n  script_user quentin\n}\n"
        'vrrp_script chk {\n  script "/bin/true"\n}\n'
        + vi("track_script {\n    chk\n}"),
        host=StaticHost(interfaces=frozenset({"lo", "eth0"})),
    )
    assert b.config.vrrp_scripts == ()
    assert b.has(2, "quentin does not exist", "(host check)")
    assert b.has(6, "vrrp_script chk", "no user")
    assert b.has(12, "chk", "removed")


def test_script_security_without_keepalived_script_user(load):
    b = load(
        "global_defs {\n  enable_script_security\n}\n"
        'vrrp_script chk {\n  script "/bin/true"\n}\n'
        'vrrp_script chk2 {\n  script "/bin/true"\n}\n',
        host=StaticHost(interfaces=frozenset({"lo"})),
    )
    assert b.config.vrrp_scripts == ()
    assert b.has(6, "keepalived_script")  # reported once, at the first script that needs it
    assert not b.has(9, "keepalived_script")
    assert b.has(9, "no user")


def test_security_warning_for_root_scripts(load):
    b = load('vrrp_script chk {\n  script "/bin/true"\n}\n', host=StaticHost())
    assert b.has(1, "SECURITY", "root", "enable_script_security")
    assert b.config.vrrp_scripts[0].script.user is None
    quiet = load('global_defs {\n  enable_script_security\n  script_user root\n}\n'
                 'vrrp_script chk {\n  script "/bin/true"\n}\n', host=StaticHost())
    assert not any("SECURITY" in w for _, w in quiet.warnings)


def test_script_problem_from_host(load):
    host = StaticHost(scripts={"/bin/nope": "script /bin/nope cannot be accessed on this host"},
                      users=frozenset({"root", "keepalived_script"}))
    b = load(vi('notify_master "/bin/nope arg"'), host=StaticHost(
        interfaces=frozenset({"eth0"}), users=host.users, scripts=host.scripts))
    assert b.has(4, "/bin/nope cannot be accessed", "(host check)")
    assert b.instance.notify.master.argv == ("/bin/nope", "arg")


def test_notify_script_user_and_group(load):
    b = load(vi('notify "/usr/local/bin/notify.sh x" nobody nogroup'))
    s = b.instance.notify.any_state
    assert b.instance.notify.scripts == (("notify", s),)
    assert (s.argv, s.user, s.group) == (("/usr/local/bin/notify.sh", "x"), "nobody", "nogroup")


def test_smtp_server_name_resolution_is_a_host_check(load):
    b = load("global_defs {\n  smtp_server mail.example.org\n}\n", host=StaticHost())
    assert b.has(2, "does not resolve", "(host check)")
    assert not load("global_defs {\n  smtp_server 198.51.100.25 2525\n}\n", host=StaticHost()).diags


# --------------------------------------------------------------------------- LocalHost


def test_local_host_knows_lo():
    assert LocalHost().interface_exists("lo") is True
    assert LocalHost().interface_exists("no-such-if0") is False


@pytest.mark.skipif(os.geteuid() != 0, reason="the root-only permission checks need root")
def test_local_host_script_checks(tmp_path):
    host = LocalHost()
    good = tmp_path / "good.sh"
    good.write_text("#!/bin/sh\n")
    good.chmod(0o755)
    assert host.script_problem(str(good), "root") is None
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    assert "not executable" in host.script_problem(str(plain), "root")
    assert "cannot be accessed" in host.script_problem(str(tmp_path / "missing.sh"), "root")
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    unsafe = open_dir / "x.sh"
    unsafe.write_text("#!/bin/sh\n")
    unsafe.chmod(0o755)
    assert "unsafe permissions" in host.script_problem(str(unsafe), "root")
    assert open_dir.stat().st_mode & stat.S_IWOTH


# --------------------------------------------------------------------------- LVS


RS_BLOCK = """
virtual_server 198.51.100.100 80 {{
{vs}
    real_server 203.0.113.11 {port} {{
{rs}
    }}
}}
"""


def lvs(vs: str = "lb_algo rr\nlb_kind NAT\nprotocol TCP", rs: str = "", port: str = "80") -> str:
    ind = lambda s, n: textwrap.indent(textwrap.dedent(s).strip("\n"), " " * n)  # noqa: E731
    return RS_BLOCK.format(vs=ind(vs, 4), rs=ind(rs, 8), port=port)


def test_virtual_server_defaults_with_keepalived_warnings(load):
    b = load(lvs(vs="protocol TCP"))
    vs = b.vs
    assert (vs.lb_algo, vs.lb_kind, vs.delay_loop_us, vs.quorum, vs.hysteresis) == ("wlc", m.LbKind.NAT, 60 * S, 1, 0)
    assert b.has(1, "no lb_algo", "wlc")
    assert b.has(1, "no lb_kind", "NAT")
    rs = vs.real_servers[0]
    assert (rs.weight, rs.port, rs.lb_kind) == (1, 80, m.LbKind.NAT)


def test_no_protocol_defaults_to_udp(load):
    b = load(lvs(vs="lb_algo rr\nlb_kind NAT"))
    assert b.vs.protocol == "UDP"
    assert any("no protocol" in w for _, w in b.warnings)


def test_checker_inheritance_vs_rs_checker(load):
    b = load(
        lvs(
            vs="lb_algo rr\nlb_kind NAT\nprotocol TCP\ndelay_loop 10\nconnect_timeout 2\nretry 4",
            rs="delay_before_retry 7\n"
               "TCP_CHECK {\n    connect_timeout 3\n}\n"
               "HTTP_GET {\n    url {\n        path /\n    }\n    retry 1\n}\n"
               "DNS_CHECK {\n    name example.org\n}\n"
               "MISC_CHECK {\n    misc_path \"/bin/true\"\n    warmup 1.5\n}\n",
        )
    )
    tcp, http, dns, misc = b.vs.real_servers[0].checkers
    assert isinstance(tcp, m.TcpCheck) and isinstance(http, m.HttpCheck)
    assert tcp.connect_timeout_us == 3 * S  # checker's own
    assert http.connect_timeout_us == 2 * S  # from the virtual server
    assert tcp.delay_loop_us == 10 * S and tcp.warmup_us == 10 * S
    assert tcp.retry == 4 and http.retry == 1  # VS retry flows down; checker's own wins
    assert tcp.delay_before_retry_us == 7 * S  # from the real server
    assert dns.retry == 4 and misc.retry == 4
    assert misc.warmup_us == 1_500_000


def test_checker_own_defaults(load):
    b = load(
        lvs(
            vs="lb_algo rr\nlb_kind NAT\nprotocol TCP\ndelay_loop 10",
            rs="TCP_CHECK {\n}\nHTTP_GET {\n    url {\n        path /\n    }\n}\n"
               "DNS_CHECK {\n    name example.org\n}\nMISC_CHECK {\n    misc_path /bin/true\n}\n",
        )
    )
    tcp, http, dns, misc = b.vs.real_servers[0].checkers
    assert (tcp.retry, tcp.delay_before_retry_us, tcp.connect_timeout_us) == (1, S, 5 * S)
    assert (http.retry, http.delay_before_retry_us) == (1, 3 * S)
    assert (dns.retry, dns.delay_before_retry_us) == (3, 10 * S)
    assert (misc.retry, misc.delay_before_retry_us) == (0, S)
    assert misc.script.argv == ("/bin/true",)


def test_http_url_digest_and_status_codes(load):
    b = load(
        lvs(rs="HTTP_GET {\n    url {\n        path /health\n        digest 0123456789ABCDEF0123456789abcdef\n"
               "        status_code 200-299 404 700\n    }\n    url {\n        path /x\n        digest abc\n"
               "    }\n}")
    )
    u1, u2 = b.vs.real_servers[0].checkers[0].urls
    assert u1.digest == "0123456789abcdef0123456789abcdef"
    assert u1.status_codes == ((200, 299), (404, 404))
    assert u2.digest is None and u2.status_codes == ((200, 299),)
    assert b.has(10, "700")
    assert b.has(14, "digest 'abc'", "instead of 32")


def test_real_server_port_mismatch_for_dr_is_reset(load):
    b = load(lvs(vs="lb_algo rr\nlb_kind DR\nprotocol TCP", port="8080"))
    assert b.vs.real_servers[0].port == 80
    assert b.has(5, "port 8080 differs", "using 80")


def test_real_server_port_remap_is_fine_for_nat(load):
    b = load(lvs(port="8080"))
    assert b.vs.real_servers[0].port == 8080 and b.warnings == []


def test_fwmark_dr_real_server_port_is_cleared(load):
    b = load(lvs().replace("198.51.100.100 80", "fwmark 7").replace("lb_kind NAT", "lb_kind DR"))
    vs = b.vs
    assert vs.fwmark == 7 and vs.protocol is None
    assert vs.real_servers[0].port is None
    assert b.has(5, "fwmark", "port cleared")
    assert any("protocol is ignored" in w for _, w in b.warnings)


def test_quorum_above_total_weight_is_reduced(load):
    b = load(lvs(vs="lb_algo rr\nlb_kind NAT\nprotocol TCP\nquorum 5\nhysteresis 3", rs="weight 2"))
    assert (b.vs.quorum, b.vs.hysteresis) == (2, 1)


def test_persistence_timeout(load):
    b = load(lvs(vs="lb_algo rr\nlb_kind NAT\nprotocol TCP\npersistence_timeout 0"))
    assert b.vs.persistence_timeout is None
    assert b.has(5, "persistence_timeout")
    assert load(lvs(vs="lb_algo rr\nlb_kind NAT\nprotocol TCP\npersistence_timeout")).vs.persistence_timeout == 360


def test_invalid_virtual_and_real_server_addresses_are_errors(load):
    b = load(lvs().replace("198.51.100.100 80", "192.168.1.300 80"))
    assert b.config.virtual_servers == () and b.errors[0][0] == 1
    b = load(lvs().replace("203.0.113.11", "203.0.113.300"))
    assert b.errors[0][0] == 5
    assert b.config.virtual_servers == ()  # no real server left


def test_real_server_family_mismatch_is_an_error_at_its_brace(load):
    b = load(lvs().replace("203.0.113.11", "2001:db8::11"))
    assert b.errors and b.errors[0][0] == 7


def test_unknown_scheduler_and_forwarding_method(load):
    b = load(lvs(vs="lb_algo roundrobin\nlb_kind nat\nprotocol TCP"))
    assert b.vs.lb_algo == "wlc" and b.vs.lb_kind is m.LbKind.NAT
    assert b.has(2, "roundrobin") and b.has(3, "'nat'")


def test_sorry_server(load):
    b = load(lvs(vs="lb_algo rr\nlb_kind DR\nprotocol TCP\nsorry_server 203.0.113.99 8080\nsorry_server_inhibit"))
    s = b.vs.sorry_server
    assert (str(s.address), s.port, s.inhibit, s.lb_kind) == ("203.0.113.99", 80, True, m.LbKind.DR)


def test_virtual_server_group(load):
    b = load(
        "virtual_server_group G {\n  198.51.100.1-10 80\n  2001:db8::1-1f 80\n  fwmark 5\n"
        "  4:5:6::7-10.11.12.2\n}\n"
        "virtual_server_group EMPTY {\n}\n"
        + lvs().replace("198.51.100.100 80", "group G")
        + lvs().replace("198.51.100.100 80", "group NOSUCH")
    )
    (g,) = b.config.virtual_server_groups
    e1, e2, e3, e4 = g.entries
    assert (str(e1.address), str(e1.last), e1.port) == ("198.51.100.1", "198.51.100.10", 80)
    assert str(e2.last) == "2001:db8::1f"
    assert e3.fwmark == 5
    assert str(e4.last) == "4:5:6::10"
    assert b.has(5, "extra characters", ".11.12.2")
    assert b.has(8, "EMPTY", "no valid entries")
    assert [vs.group for vs in b.config.virtual_servers] == ["G"]
    assert any("NOSUCH" in e for _, e in b.errors)


def test_misc_check_user_and_removal(load):
    b = load(lvs(rs='MISC_CHECK {\n    misc_path "/bin/check x"\n    user nobody\n}'), host=StaticHost())
    assert b.vs.real_servers[0].checkers == ()
    assert b.has(8, "nobody does not exist")


def test_file_check_needs_a_defined_track_file(load):
    b = load("track_file TF {\n  file /run/x\n}\n" + lvs(rs="FILE_CHECK {\n    track_file TF\n    weight 3\n}\n"
                                                            "FILE_CHECK {\n    track_file NOPE\n}"))
    (fc,) = b.vs.real_servers[0].checkers
    assert (fc.track_file, fc.weight) == ("TF", 3)
    assert b.has(15, "NOPE") and b.has(16, "no valid track_file")


def test_file_check_weight_and_reverse_as_keepalived(load):
    b = load("track_file TF {\n  file /run/x\n  weight -3 reverse\n}\n" + lvs(rs=(
        "FILE_CHECK {\n    track_file TF\n}\n"  # no weight: the track_file's, with its reverse
        "FILE_CHECK {\n    track_file TF\n    weight 0 noreverse\n}\n"  # 0 too
        "FILE_CHECK {\n    track_file TF\n    weight 7 reverse\n}\n"
        "FILE_CHECK {\n    track_file TF\n    weight 70000\n}\n"  # out of range: ignored, inherited
        "FILE_CHECK {\n    track_file TF\n    weight 2 sideways\n}\n"  # bad option: ignored, inherited
        "FILE_CHECK {\n    track_file TF\n    weight -65535\n}")))
    got = [(fc.weight, fc.reverse) for fc in b.vs.real_servers[0].checkers]
    assert got == [(-3, True), (-3, True), (7, True), (-3, True), (-3, True), (-65535, False)]
    assert b.has(24, "70000") and b.has(28, "'sideways'")


@pytest.mark.parametrize("line, want", [
    ("lvs_timeouts tcp 900 tcpfin 120 udp 300", (900, 120, 300)),
    ("lvs_timeouts udp 5", (0, 0, 5)),
    ("lvs_timeouts tcp 0", (0, 0, 0)),
])
def test_lvs_timeouts(load, line, want):
    b = load(f"global_defs {{\n  {line}\n}}\n")
    assert b.config.global_defs.lvs_timeouts == want and b.warnings == []


@pytest.mark.parametrize("line, want, fragment", [
    ("lvs_timeouts tcp", (0, 0, 0), "at least one"),
    ("lvs_timeouts tcp 900 udp", (900, 0, 0), "no value for 'udp'"),
    ("lvs_timeouts tcp -1 udp 7", (0, 0, 7), "-1"),
    ("lvs_timeouts tcp 99999999", (0, 0, 0), "99999999"),
    ("lvs_timeouts sctp 5 tcp 6", (6, 0, 0), "'sctp'"),
    ("lvs_timeouts tcp x\u00e9", (0, 0, 0), "x\u00e9"),
])
def test_lvs_timeouts_garbage(load, line, want, fragment):
    b = load(f"global_defs {{\n  {line}\n}}\n")
    assert b.config.global_defs.lvs_timeouts == want
    assert b.has(2, fragment), b.warnings


def test_udp_check_require_reply_without_a_value(load):
    b = load(lvs(rs="UDP_CHECK {\n    require_reply\n}\nUDP_CHECK {\n    require_reply 01 XX\n}\n"
                    "UDP_CHECK {\n    require_reply zz\n}\nUDP_CHECK {\n}"))
    got = [(ck.reply_required, ck.require_reply) for ck in b.vs.real_servers[0].checkers]
    assert got == [(True, None), (True, "01XX"), (True, None), (False, None)]
    assert b.has(13, "'zz'", "any reply")


TUN_VS = "lb_algo rr\nlb_kind {vs}\nprotocol TCP"


@pytest.mark.parametrize("vs, rs, want", [
    ("TUN type gue port 6080", "", ("gue", 6080, "nocsum")),
    ("TUN type gue port 6080 remcsum", "", ("gue", 6080, "remcsum")),
    ("TUN csum type gre", "", ("gre", 0, "csum")),
    ("TUN type gre nocsum", "", ("gre", 0, "nocsum")),
    ("TUN type ipip", "", None),
    ("TUN", "", None),
    ("TUN type gre", "lvs_method TUN", None),  # its own method: its own (no) options
    ("TUN type gre", "lvs_method DR", None),
    ("DR", "lvs_method TUN type gue port 1 csum", ("gue", 1, "csum")),
])
def test_tunnel_types(load, vs, rs, want):
    b = load(lvs(vs=TUN_VS.format(vs=vs), rs=rs))
    assert b.warnings == [] or all("port" not in w for _, w in b.warnings)
    tun = b.vs.real_servers[0].tunnel
    assert (None if tun is None else (tun.type, tun.port, tun.csum)) == want


@pytest.mark.parametrize("vs, fragment", [
    ("TUN type gue", "needs a port"),
    ("TUN port 80", "needs a port"),
    ("TUN type gre port 80", "needs a port"),
    ("TUN type ipip csum", "ipip tunnel has no checksum"),
    ("TUN type gre remcsum", "no remote checksum"),
    ("TUN type vxlan", "'vxlan'"),
    ("TUN type", "has no value"),
    ("TUN type gue port 0", "'0'"),
    ("TUN type gue port 65536", "'65536'"),
    ("TUN type gue port http", "'http'"),
    ("TUN fast", "'fast'"),
    ("NAT type gue", "only valid after TUN"),
])
def test_tunnel_garbage_is_a_warning_and_plain_ipip(load, vs, fragment):
    b = load(lvs(vs=TUN_VS.format(vs=vs)))
    assert b.has(3, fragment), b.warnings
    rs = b.vs.real_servers[0]
    assert rs.tunnel is None and b.errors == []


def test_sorry_server_tunnel(load):
    b = load(lvs(vs="lb_algo rr\nlb_kind TUN type gue port 9\nprotocol TCP\nsorry_server 203.0.113.99 80\n"))
    assert b.vs.sorry_server.tunnel.type == "gue"
    b = load(lvs(vs="lb_algo rr\nlb_kind TUN type gue port 9\nprotocol TCP\nsorry_server 203.0.113.99 80\n"
                    "sorry_server_lvs_method TUN type gre"))
    assert b.vs.sorry_server.tunnel.type == "gre"


# --------------------------------------------------------------------------- static routes and rules


def test_static_routes_and_rules(load):
    b = load(
        "static_routes {\n  198.51.100.0/24 via 203.0.113.1 dev eth0\n  198.51.100.128/25 via 203.0.113.1\n"
        "  10.0.0.0/8 via 203.0.113.1 restore\n}\n"
        "static_rules {\n  from 198.51.100.0/24 table 100 priority 200\n  from 198.51.100.0/24 table 101\n"
        "  from 198.51.100.0/24 table 102 track 5\n}\n"
    )
    r1, r2 = b.config.static_routes
    assert (str(r1.destination), str(r1.via), r1.dev, r1.no_track) == ("198.51.100.0/24", "203.0.113.1", "eth0", False)
    assert r2.no_track and b.has(3, "cannot be tracked")
    assert b.has(4, "'restore'")
    u1, u2 = b.config.static_rules
    assert (u1.table, u1.preference) == ("100", 200)
    assert u2.preference == 16384 and b.has(8, "no preference", "16384")
    assert b.has(9, "'track'")


# --------------------------------------------------------------------------- BFD, garp groups


def test_bfd_instance_without_neighbor_is_disabled(load):
    b = load("bfd_instance B {\n  min_rx 100\n}\nbfd_instance C {\n  neighbor_ip 198.51.100.7\n  min_tx 50\n}\n")
    (c,) = b.config.bfd_instances
    assert (c.name, str(c.neighbor_ip), c.min_tx_us) == ("C", "198.51.100.7", 50_000)
    assert b.has(3, "no neighbor_ip")


def test_garp_group(load):
    b = load("garp_group {\n  garp_interval 0.001\n  interfaces {\n    eth0\n  }\n}\n"
             "garp_group {\n  interface eth1\n}\n")
    (g,) = b.config.garp_groups
    assert (g.garp_interval_us, g.interfaces) == (1000, ("eth0",))
    assert b.has(9, "neither garp_interval nor gna_interval")


# --------------------------------------------------------------------------- immutability


def test_model_is_immutable(load):
    b = load(vi() + lvs(rs="TCP_CHECK {\n}"))
    inst = b.instance
    with pytest.raises(dataclasses.FrozenInstanceError):
        inst.priority = 200  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.vs.real_servers[0].checkers[0].retry = 9  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.config.instances = ()  # type: ignore[misc]
    for obj in (b.config, inst, b.vs):
        for f in dataclasses.fields(obj):
            assert not isinstance(getattr(obj, f.name), (list, dict, set)), f.name
    assert not hasattr(inst, "__dict__")  # slots


def test_every_model_object_has_a_span(load):
    b = load(vi("track_interface {\n    eth1\n}") + lvs(rs="HTTP_GET {\n    url {\n        path /\n    }\n}"))
    objs = [b.instance, *b.instance.vips, *b.instance.tracks, b.vs, *b.vs.real_servers,
            *b.vs.real_servers[0].checkers, *b.vs.real_servers[0].checkers[0].urls]
    assert all(o.span is not None and o.span.line > 0 for o in objs)


def test_build_never_raises_on_odd_values(load):
    odd = vi(
        "priority\nadvert_int x\nversion 9\nunicast_peer {\n    x min_ttl\n    198.51.100.9 min_ttl\n}\n"
        "use_vmac a:b name\ngarp_extra_if all\nauthentication {\n    auth_type\n}\n",
        vip="1.2.3.4/x brd\n        2001::1/999 peer",
    )
    b = load(odd + lvs(vs="quorum -1\npersistence_granularity x", rs="weight 99999\nHTTP_GET {\n    url {\n    }\n}"))
    assert isinstance(b.config, m.Config)


def test_checksum_knobs_and_log_unknown_vrids(load):
    b = load("""
        global_defs {
            log_unknown_vrids
        }
        vrrp_instance VI_1 {
            interface lan0
            virtual_router_id 51
            version 3
            v3_checksum_as_v2
            unicast_src_ip 198.51.100.11
            unicast_peer {
                198.51.100.12
            }
            old_unicast_checksum
            use_vmac vrrp51 00:00:5e:00:01:99
            virtual_ipaddress {
                198.51.100.100
            }
        }
    """)
    assert b.config.global_defs.log_unknown_vrids
    inst = b.instance
    assert inst.v3_checksum_as_v2 and inst.old_unicast_checksum
    assert (inst.vmac_name, inst.vmac_mac) == ("vrrp51", "00:00:5e:00:01:99")
    notes = [d for d in b.diags if d.severity is Severity.NOTE and "after 2.2.7" in d.message]
    assert [d.span.line for d in notes] == [8]
    assert b.errors == []


def test_checksum_knob_with_garbage_is_a_warning(load):
    b = load("""
        vrrp_instance VI_1 {
            interface lan0
            virtual_router_id 51
            v3_checksum_as_v2 maybe
            old_unicast_checksum
            virtual_ipaddress {
                198.51.100.100
            }
        }
    """)
    assert b.has(4, "true|on|yes")
    assert not b.instance.v3_checksum_as_v2
    assert b.errors == []
