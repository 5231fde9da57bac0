"""The config model → RouterConfig / InstancePlan mapping (pure; configs go through the real loader)."""

from __future__ import annotations

import ipaddress
import textwrap
from dataclasses import replace

import pytest

from pyvrrpd.config import model
from pyvrrpd.config.diagnostics import Severity
from pyvrrpd.config.load import load
from pyvrrpd.core.actions import State
from pyvrrpd.daemon.plan import (
    UNSPECIFIED,
    PlanError,
    check_link,
    diff_plans,
    pick_source,
    plan_instance,
    plan_instances,
)
from pyvrrpd.net.specs import RouteSpec, RuleSpec

ip = ipaddress.ip_address


def load_config(tmp_path, text: str):
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(text))
    loaded = load(str(path), host_checks=False)
    assert loaded.ok, loaded.diagnostics
    return loaded.config


def plans(tmp_path, text: str):
    plans, problems = plan_instances(load_config(tmp_path, text))
    assert problems == []
    return plans


def problems(tmp_path, text: str) -> list[tuple[str, str]]:
    """The planning errors as ("LINE:COL", message)."""
    plans, diags = plan_instances(load_config(tmp_path, text))
    assert all(d.severity is Severity.ERROR for d in diags)
    return [(f"{d.span.line}:{d.span.col}", d.message) for d in diags]


def instance(body: str, global_defs: str = "") -> str:
    return f"global_defs {{\n{global_defs}\n}}\nvrrp_instance VI_1 {{\n{body}\n}}\n"


BASIC = """
    interface lan0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        198.51.100.100/32 dev lan0
    }
"""


def test_v2_multicast_defaults(tmp_path):
    [p] = plans(tmp_path, instance(BASIC))
    r = p.router
    assert (r.name, r.vrid, r.priority, r.version, r.advert_int_us) == ("VI_1", 51, 150, 2, 1_000_000)
    assert r.initial_state is State.BACKUP and r.source == UNSPECIFIED[4]
    assert r.addresses == (ip("198.51.100.100"),) and r.unicast_peers == ()
    assert (r.garp_master_delay_us, r.garp_master_repeat, r.down_timer_adverts) == (5_000_000, 5, 3)
    assert r.accept and not r.lower_prio_no_advert and not r.nopreempt
    assert (p.interface, p.family, p.group, p.peers, p.ttl) == ("lan0", 4, ip("224.0.0.18"), (), 255)
    assert p.pseudo_header and not p.old_unicast_checksum
    assert [(str(s.address), s.dev) for s in p.addresses] == [("198.51.100.100/32", "lan0")]
    assert p.vmac is None and p.xmit_interface == "lan0" and p.src_ip is None


def test_state_master_priority_255_is_the_owner(tmp_path):
    [p] = plans(tmp_path, instance(BASIC.replace("priority 150", "state MASTER\npriority 255")))
    assert p.router.initial_state is State.MASTER and p.router.priority == 255


def test_v3_interval_and_ipv6_family(tmp_path):
    [p] = plans(tmp_path, instance("""
        interface lan0
        virtual_router_id 52
        advert_int 0.1
        virtual_ipaddress {
            2001:db8:1::100/128 dev lan0
        }
    """))
    assert (p.router.version, p.family, p.router.advert_int_us) == (3, 6, 100_000)
    assert p.group == ip("ff02::12") and p.router.source == UNSPECIFIED[6]


def test_configured_source_unicast_peers_and_ttl(tmp_path):
    [p] = plans(tmp_path, instance(BASIC + """
        unicast_src_ip 198.51.100.11
        unicast_ttl 10
        unicast_peer {
            198.51.100.12
            198.51.100.13 min_ttl 250 max_ttl 255
        }
    """, "vrrp_version 3"))
    assert p.src_ip == ip("198.51.100.11") and p.router.source == ip("198.51.100.11")
    assert p.peers == (ip("198.51.100.12"), ip("198.51.100.13")) and p.ttl == 10
    assert p.peer_ttl == {ip("198.51.100.13"): (250, 255)}
    assert p.router.check_unicast_src  # a TTL range implies checking the source, as keepalived does
    assert p.router.unicast_peers == p.peers


def test_pick_source(tmp_path):
    [p] = plans(tmp_path, instance(BASIC))
    v4, ll = ip("198.51.100.11"), ip("fe80::1")
    assert pick_source(p, v4, ll) == v4 and pick_source(p, None, ll) is None
    [p] = plans(tmp_path, instance(BASIC + "mcast_src_ip 198.51.100.99"))
    assert pick_source(p, v4, ll) == ip("198.51.100.99")
    [p6] = plans(tmp_path, instance("interface lan0\nvirtual_router_id 52\n"
                                    "virtual_ipaddress {\n fe80::100/64\n}"))
    assert pick_source(p6, v4, ll) == ll and pick_source(p6, v4, None) is None


def test_mcast_dst_ip_and_global_group(tmp_path):
    [p] = plans(tmp_path, instance(BASIC + "mcast_dst_ip 224.0.0.99"))
    assert p.group == ip("224.0.0.99")
    [p] = plans(tmp_path, instance(BASIC, "vrrp_mcast_group4 224.0.0.77"))
    assert p.group == ip("224.0.0.77")


def test_excluded_addresses_of_the_other_family_stay_out_of_the_router(tmp_path):
    [p] = plans(tmp_path, instance(BASIC + """
        virtual_ipaddress_excluded {
            198.51.100.101/32
            2001:db8:1::101/128
        }
    """))
    assert p.router.excluded_addresses == (ip("198.51.100.101"),)
    assert [str(s.address.ip) for s in p.addresses] == ["198.51.100.100", "198.51.100.101", "2001:db8:1::101"]
    assert all(s.dev == "lan0" for s in p.addresses)


def test_use_vmac_moves_base_interface_vips_to_the_macvlan(tmp_path):
    [p] = plans(tmp_path, instance(BASIC + """
        use_vmac
        virtual_ipaddress_excluded {
            203.0.113.1/32 dev lan9
        }
    """))
    assert p.vmac.name == "vrrp.51" and p.vmac.mac == bytes.fromhex("00005e000133") and p.vmac.parent == "lan0"
    assert not p.vmac.xmit_base and p.xmit_interface == "vrrp.51" and p.interface == "lan0"
    assert [s.dev for s in p.addresses] == ["vrrp.51", "lan9"]


def test_use_vmac_name_mac_and_ipv6_fallback_name(tmp_path):
    config = load_config(tmp_path, instance(BASIC + "use_vmac vrrp-x\nvmac_xmit_base"))
    [inst] = config.instances
    p = plan_instance(replace(inst, vmac_mac="02:00:00:00:00:33"), config.global_defs)
    assert (p.vmac.name, p.vmac.mac.hex(), p.vmac.xmit_base, p.xmit_interface) == (
        "vrrp-x", "020000000033", True, "lan0")
    text = instance(BASIC + "use_vmac") + """
vrrp_instance VI_6 {
    interface lan0
    virtual_router_id 51
    use_vmac
    virtual_ipaddress {
        2001:db8:1::100/128
    }
}
"""
    v4, v6 = plans(tmp_path, text)
    assert (v4.vmac.name, v6.vmac.name) == ("vrrp.51", "vrrp6.51")
    assert v6.vmac.mac == bytes.fromhex("00005e000233")


def test_garp_settings_and_vrrp_min_garp(tmp_path):
    [p] = plans(tmp_path, instance(BASIC + "garp_master_refresh 60\ngarp_lower_prio_repeat 2",
                                   "vrrp_garp_master_delay 10\nvrrp_garp_interval 0.01\nvrrp_gna_interval 0.02"))
    r = p.router
    assert (r.garp_master_delay_us, r.garp_master_refresh_us, r.garp_lower_prio_repeat) == (10_000_000, 60_000_000, 2)
    assert (p.garp_interval_us, p.gna_interval_us) == (10_000, 20_000)
    [p] = plans(tmp_path, instance(BASIC, "vrrp_min_garp"))
    assert (p.router.garp_master_repeat, p.router.garp_master_delay_us) == (1, 0)


def test_strict_mode(tmp_path):
    [p] = plans(tmp_path, instance(BASIC, "vrrp_strict\nvrrp_version 3"))
    r = p.router
    assert not r.accept and r.lower_prio_no_advert and r.garp_lower_prio_repeat == 0


def test_preemption_settings(tmp_path):
    [p] = plans(tmp_path, instance(BASIC + "nopreempt"))
    assert p.router.nopreempt
    [p] = plans(tmp_path, instance(BASIC + "preempt_delay 1.5"))
    assert p.router.preempt_delay_us == 1_500_000 and not p.router.nopreempt


def test_v2_password_and_ah_refused(tmp_path):
    auth = "authentication {\n auth_type %s\n auth_pass secret12\n}"
    [p] = plans(tmp_path, instance(BASIC + auth % "PASS"))
    assert (p.router.auth_type, p.router.auth_pass) == (1, b"secret12")
    [p] = plans(tmp_path, instance(BASIC + auth % "PASS", "vrrp_version 3"))
    assert (p.router.auth_type, p.router.auth_pass) == (0, b"")  # v3 has no authentication
    # AH is a config error; planning keeps refusing it as a guard, with the instance's span.
    config = load_config(tmp_path, instance(BASIC + auth % "PASS"))
    [inst] = config.instances
    with pytest.raises(PlanError, match="VI_1: AH authentication is not supported") as caught:
        plan_instance(replace(inst, auth_type=model.AuthType.AH), config.global_defs)
    assert caught.value.span == inst.span


def test_routes_and_rules_drop_keepalived_annotations(tmp_path):
    [p] = plans(tmp_path, instance(BASIC + """
        virtual_routes {
            203.0.113.0/24 via 198.51.100.1 dev lan0 no_track
        }
        virtual_rules {
            from 203.0.113.0/24 table 100 priority 10
        }
    """))
    assert p.routes == (RouteSpec(dst=ipaddress.ip_network("203.0.113.0/24"), via=ip("198.51.100.1"), dev="lan0"),)
    assert p.rules == (RuleSpec(src=ipaddress.ip_network("203.0.113.0/24"), table=100, priority=10),)


def test_what_the_daemon_cannot_run_is_an_error_with_its_span(tmp_path):
    # (An instance with no interface is refused by the config check itself: tests/config.)
    text = """
vrrp_instance VI_2 {
    interface lan0
    virtual_router_id 52
    use_vmac vrrp.53
    virtual_ipaddress {
        198.51.100.102
    }
}
vrrp_instance VI_3 {
    interface lan0
    virtual_router_id 53
    use_vmac
    virtual_ipaddress {
        198.51.100.103
    }
    virtual_routes {
        203.0.113.0/24 dev lan0 realms 5
    }
    virtual_rules {
        from 203.0.113.0/24 table 100 ipproto tcp
    }
}
"""
    assert problems(tmp_path, text) == [
        ("10:1", "vrrp_instance VI_3: VMAC name vrrp.53 is used by another instance; give use_vmac a name"),
        ("18:9", "vrrp_instance VI_3: virtual_routes '203.0.113.0/24 dev lan0 realms 5': route: "
                 "unsupported word 'realms'"),
        ("21:9", "vrrp_instance VI_3: virtual_rules 'from 203.0.113.0/24 table 100 ipproto tcp': rule: "
                 "unsupported word 'ipproto'"),
    ]
    text = text.replace("use_vmac vrrp.53", "use_vmac vrrp-x").replace(" realms 5", "").replace(" ipproto tcp", "")
    assert problems(tmp_path, text) == []


def test_a_router_config_the_core_refuses_is_an_error(tmp_path):
    config = load_config(tmp_path, instance(BASIC))
    [inst] = config.instances
    broken = replace(config, instances=(replace(inst, down_timer_adverts=0),))
    [], [diag] = plan_instances(broken)
    assert diag.span == inst.span and diag.severity is Severity.ERROR
    assert diag.message == "VRRP instance VI_1: down_timer_adverts must be in 1-100"


class Link:
    def __init__(self, up=True, running=True, ipv4=ip("198.51.100.11"), ipv6_link_local=ip("fe80::11")):
        self.up, self.running, self.ipv4, self.ipv6_link_local = up, running, ipv4, ipv6_link_local


V6 = "interface lan0\nvirtual_router_id 52\nvirtual_ipaddress {\n fe80::100/64\n}"


@pytest.mark.parametrize("body, link, socket_problem, reason, source", [
    (BASIC, None, None, "interface lan0 does not exist", None),
    (BASIC, Link(up=False), None, "interface lan0 is down", None),
    (BASIC, Link(running=False), None, "interface lan0 has no carrier", None),
    (BASIC, Link(ipv4=None), None, "interface lan0 has no IPv4 address to send adverts from", None),
    (V6, Link(ipv6_link_local=None), None, "interface lan0 has no IPv6 link-local address to send adverts from",
     None),
    (BASIC + "mcast_src_ip 198.51.100.99", Link(ipv4=None), None, None, "198.51.100.99"),
    (BASIC, Link(), "cannot open the socket", "cannot open the socket", "198.51.100.11"),
    (BASIC, Link(), None, None, "198.51.100.11"),
    (V6, Link(), None, None, "fe80::11"),
], ids=["missing", "down", "no-carrier", "no-ipv4", "no-link-local", "configured-source", "socket", "ok", "ok-v6"])
def test_check_link(tmp_path, body, link, socket_problem, reason, source):
    [p] = plans(tmp_path, instance(body))
    verdict = check_link(p, link, socket_problem)
    assert verdict.reason == reason
    assert verdict.source == (None if source is None else ip(source))


def test_checksum_knobs_reach_the_plan(tmp_path):
    [p] = plans(tmp_path, instance(BASIC + "\nversion 3\nv3_checksum_as_v2"))
    assert not p.pseudo_header
    [p] = plans(tmp_path, instance(BASIC + "\nversion 3", "v3_checksum_as_v2"))
    assert not p.pseudo_header
    unicast = "\nversion 3\nunicast_src_ip 198.51.100.11\nunicast_peer {\n198.51.100.12\n}\nold_unicast_checksum"
    [p] = plans(tmp_path, instance(BASIC + unicast))
    assert p.pseudo_header and p.old_unicast_checksum


# --------------------------------------------------------------------------- reload: diff_plans

TWO = """
vrrp_instance VI_1 {
    interface lan0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        198.51.100.100/32 dev lan0
    }
}
vrrp_instance VI_2 {
    interface lan0
    virtual_router_id 52
    virtual_ipaddress {
        198.51.100.101/32 dev lan0
    }
}
"""
UNICAST = """
vrrp_instance U_1 {
    interface lan0
    virtual_router_id 61
    unicast_src_ip 198.51.100.11
    unicast_peer {
        198.51.100.12
    }
    virtual_ipaddress {
        198.51.100.110/32 dev lan0
    }
}
"""


def summary(diff) -> dict:
    """The diff by instance name: {"unchanged": [...], "changed": ["OLD>NEW"], ...}; empty lists left out."""
    pair = "{}>{}".format
    out = {"unchanged": [new.name for _, new in diff.unchanged],
           "changed": [new.name if old.name == new.name else pair(old.name, new.name) for old, new in diff.changed],
           "replaced": [f"{new.name}: {why}" for _, new, why in diff.replaced],
           "removed": [p.name for p in diff.removed], "added": [p.name for p in diff.added]}
    return {k: v for k, v in out.items() if v}


DIFF_CASES = [
    ("same text", TWO, TWO, {"unchanged": ["VI_1", "VI_2"]}),
    ("a comment moves every span, the plans stay equal", TWO, "# a comment\n\n" + TWO,
     {"unchanged": ["VI_1", "VI_2"]}),
    ("priority", TWO, TWO.replace("priority 150", "priority 120"), {"unchanged": ["VI_2"], "changed": ["VI_1"]}),
    ("a VIP added", TWO, TWO.replace("198.51.100.101/32 dev lan0", "198.51.100.101/32 dev lan0\n198.51.100.102/32"),
     {"unchanged": ["VI_1"], "changed": ["VI_2"]}),
    ("advert_int", TWO, TWO.replace("advert_int 1", "advert_int 2"), {"unchanged": ["VI_2"], "changed": ["VI_1"]}),
    ("rename: matched by key, not by name", TWO, TWO.replace("VI_1", "WEB"),
     {"unchanged": ["VI_2"], "changed": ["VI_1>WEB"]}),
    ("two names swapped", TWO, TWO.replace("VI_1", "X").replace("VI_2", "VI_1").replace("X", "VI_2"),
     {"changed": ["VI_1>VI_2", "VI_2>VI_1"]}),
    ("new VRID: another instance", TWO, TWO.replace("virtual_router_id 52", "virtual_router_id 53"),
     {"unchanged": ["VI_1"], "removed": ["VI_2"], "added": ["VI_2"]}),
    ("new interface: another instance", TWO, TWO.replace("interface lan0\n    virtual_router_id 52",
                                                         "interface lan1\n    virtual_router_id 52"),
     {"unchanged": ["VI_1"], "removed": ["VI_2"], "added": ["VI_2"]}),
    ("removed", TWO, TWO[:TWO.index("vrrp_instance VI_2")], {"unchanged": ["VI_1"], "removed": ["VI_2"]}),
    ("added", TWO, TWO + UNICAST, {"unchanged": ["VI_1", "VI_2"], "added": ["U_1"]}),
    ("multicast to unicast: another instance", TWO,
     TWO.replace("virtual_router_id 52", "virtual_router_id 52\nunicast_peer {\n198.51.100.12\n}"),
     {"unchanged": ["VI_1"], "removed": ["VI_2"], "added": ["VI_2"]}),
    ("one VRID, several unicast instances: the same name first, then config order",
     UNICAST.replace("U_1", "A") + UNICAST.replace("U_1", "B").replace(".12", ".13"),
     UNICAST.replace("U_1", "C").replace(".12", ".14") + UNICAST.replace("U_1", "B").replace(".12", ".13"),
     {"unchanged": ["B"], "changed": ["A>C"]}),
    ("unicast peers: the same instance", TWO + UNICAST, TWO + UNICAST.replace("198.51.100.12", "198.51.100.13"),
     {"unchanged": ["VI_1", "VI_2"], "changed": ["U_1"]}),
    ("unicast source address: another instance", TWO + UNICAST, TWO + UNICAST.replace(".11", ".21"),
     {"unchanged": ["VI_1", "VI_2"], "removed": ["U_1"], "added": ["U_1"]}),
    ("version: replaced", TWO, TWO.replace("advert_int 1", "version 3\nadvert_int 1"),
     {"unchanged": ["VI_2"], "replaced": ["VI_1: VRRP version 2 -> 3"]}),
    ("use_vmac: replaced", TWO, TWO.replace("priority 150", "priority 150\nuse_vmac"),
     {"unchanged": ["VI_2"], "replaced": ["VI_1: use_vmac changed"]}),
    ("order of instances", TWO, TWO[TWO.index("vrrp_instance VI_2"):] + TWO[:TWO.index("vrrp_instance VI_2")],
     {"unchanged": ["VI_2", "VI_1"]}),
    ("everything removed", TWO, "", {"removed": ["VI_1", "VI_2"]}),
]


@pytest.mark.parametrize("old, new, expected", [c[1:] for c in DIFF_CASES], ids=[c[0] for c in DIFF_CASES])
def test_diff_plans(tmp_path, old, new, expected):
    running = plans(tmp_path, old) if old.strip() else []
    wanted = plans(tmp_path, new) if new.strip() else []
    diff = diff_plans(running, wanted)
    assert summary(diff) == {k: v for k, v in expected.items() if v}
    assert diff.empty is (set(summary(diff)) <= {"unchanged"})
    # The pairs hold the very objects given: the VRRP subsystem finds its instances by them.
    for old_plan, _ in diff.unchanged + diff.changed:
        assert any(old_plan is p for p in running)
