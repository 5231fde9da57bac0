"""The desired IPVS table: config x health -> services and destinations, keepalived's rules."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from pyvrrpd.lvs import table as t
from pyvrrpd.lvs.table import DestKey, RsHealth, RsId, ServiceKey

VS_TCP = ServiceKey(af=4, protocol=6, addr=ip_address("198.51.100.100"), port=80)
UP, DOWN = RsHealth(True), RsHealth(False)


def rs(addr: str, port: int = 80) -> DestKey:
    return DestKey(ip_address(addr), port)


def one_vs(config, body: str, head: str = "198.51.100.100 80", prelude: str = ""):
    cfg = config(prelude + "virtual_server " + head + " {\n" + body + "\n}\n")
    (vs,) = cfg.virtual_servers
    return cfg, vs


def dests(d: t.Desired, key: ServiceKey = VS_TCP) -> dict[str, tuple[int, int]]:
    """'addr:port' -> (weight, fwd) of one service's destinations."""
    return {str(x.key): (x.weight, x.fwd) for x in d.table.dests_of(key)}


TWO_RS = """
    protocol TCP
    real_server 203.0.113.11 80 { weight 3
        TCP_CHECK { connect_timeout 1 } }
    real_server 203.0.113.12 80 { weight 2
        TCP_CHECK { connect_timeout 1 } }
"""


def test_keepalived_defaults_wlc_nat_weight_1(config):
    cfg, vs = one_vs(config, "protocol TCP\nreal_server 203.0.113.11 80 { }")
    d = t.desired(cfg.virtual_servers, cfg.virtual_server_groups, {})
    assert d.table.services == {VS_TCP: t.Service(VS_TCP, "wlc", 0, 0, t.NETMASK4_HOST, None)}
    assert dests(d) == {"203.0.113.11:80": (1, t.MASQ)}


@pytest.mark.parametrize(
    ("kind", "fwd"), [("NAT", t.MASQ), ("DR", t.DROUTE), ("TUN", t.TUNNEL)]
)
def test_forwarding_methods(config, kind, fwd):
    cfg, vs = one_vs(config, f"lb_algo rr\nlb_kind {kind}\nprotocol TCP\nreal_server 203.0.113.11 80 {{ weight 5 }}")
    d = t.desired(cfg.virtual_servers, cfg.virtual_server_groups, {})
    assert d.table.services[VS_TCP].scheduler == "rr"
    assert dests(d) == {"203.0.113.11:80": (5, fwd)}


# (health of .11, health of .12, inhibit_on_failure) -> destinations
HEALTH_CASES = [
    (UP, UP, False, {"203.0.113.11:80": (3, 0), "203.0.113.12:80": (2, 0)}),
    (DOWN, UP, False, {"203.0.113.12:80": (2, 0)}),
    (DOWN, UP, True, {"203.0.113.11:80": (0, 0), "203.0.113.12:80": (2, 0)}),
    (DOWN, DOWN, True, {"203.0.113.11:80": (0, 0), "203.0.113.12:80": (0, 0)}),
    (DOWN, DOWN, False, {}),
    (RsHealth(True, 7), UP, False, {"203.0.113.11:80": (7, 0), "203.0.113.12:80": (2, 0)}),  # misc_dynamic
    (RsHealth(True, 0), UP, False, {"203.0.113.11:80": (0, 0), "203.0.113.12:80": (2, 0)}),
    (RsHealth(True, 99999), UP, False, {"203.0.113.11:80": (65535, 0), "203.0.113.12:80": (2, 0)}),
    (RsHealth(True, -5), UP, False, {"203.0.113.11:80": (0, 0), "203.0.113.12:80": (2, 0)}),  # garbage weight
]


@pytest.mark.parametrize(("h11", "h12", "inhibit", "expected"), HEALTH_CASES)
def test_health_and_inhibit(config, h11, h12, inhibit, expected):
    cfg, vs = one_vs(config, TWO_RS + ("inhibit_on_failure" if inhibit else ""))
    name = t.vs_name(vs)
    health = {RsId(name, ip_address("203.0.113.11"), 80): h11, RsId(name, ip_address("203.0.113.12"), 80): h12}
    d = t.desired(cfg.virtual_servers, cfg.virtual_server_groups, health)
    assert dests(d) == expected
    # every real server is owned, up or down
    assert {str(k[1]) for k in d.owned_dests} == {"203.0.113.11:80", "203.0.113.12:80"}
    assert d.owned_services == {VS_TCP}


def test_alpha_starts_down_and_inhibit_keeps_weight_0(config):
    cfg, _ = one_vs(config, "alpha\n" + TWO_RS)
    assert dests(t.desired(cfg.virtual_servers, (), {})) == {}
    cfg, _ = one_vs(config, "alpha\ninhibit_on_failure\n" + TWO_RS)
    assert dests(t.desired(cfg.virtual_servers, (), {})) == {"203.0.113.11:80": (0, 0), "203.0.113.12:80": (0, 0)}
    # a real server without checkers is always up, alpha or not
    cfg, _ = one_vs(config, "alpha\nprotocol TCP\nreal_server 203.0.113.11 80 { }")
    assert dests(t.desired(cfg.virtual_servers, (), {})) == {"203.0.113.11:80": (1, 0)}


def test_initial_health_alpha_on_one_checker_only(config):
    cfg, vs = one_vs(config, "protocol TCP\nreal_server 203.0.113.11 80 {\nTCP_CHECK { alpha }\nTCP_CHECK { }\n}")
    assert t.initial_health(vs.real_servers[0]) == DOWN


SORRY = """
    quorum 4
    hysteresis 1
    quorum_up "/bin/true up"
    quorum_down "/bin/true down"
    sorry_server 203.0.113.99 80
"""


def step(cfg, vs, quorum, h11, h12):
    name = t.vs_name(vs)
    health = {RsId(name, ip_address("203.0.113.11"), 80): h11, RsId(name, ip_address("203.0.113.12"), 80): h12}
    return t.desired(cfg.virtual_servers, (), health, quorum)


def test_quorum_hysteresis_and_sorry_server(config):
    cfg, vs = one_vs(config, TWO_RS + SORRY)
    name = t.vs_name(vs)
    # start with 3+2=5 >= quorum+hysteresis=5: up, no event
    d = step(cfg, vs, None, UP, UP)
    assert d.quorum == {name: True} and d.events == ()
    # .12 down: 3 >= 4-1: still up (hysteresis)
    d = step(cfg, vs, d.quorum, UP, DOWN)
    assert d.quorum[name] and dests(d) == {"203.0.113.11:80": (3, 0)}
    # .11 down too: 0 -> lost, sorry server in with weight 1
    d = step(cfg, vs, d.quorum, DOWN, DOWN)
    (ev,) = d.events
    assert (ev.up, ev.weight_sum, ev.threshold, ev.script.argv) == (False, 0, 3, ("/bin/true", "down"))
    assert dests(d) == {"203.0.113.99:80": (1, 0)}
    # .11 back: 3 < 4+1: still down, only the sorry server serves
    d = step(cfg, vs, d.quorum, UP, DOWN)
    assert not d.quorum[name] and d.events == () and dests(d) == {"203.0.113.99:80": (1, 0)}
    # both back: 5 >= 5: gained, real servers back, sorry server out
    d = step(cfg, vs, d.quorum, UP, UP)
    (ev,) = d.events
    assert (ev.up, ev.weight_sum, ev.threshold, ev.script.argv) == (True, 5, 5, ("/bin/true", "up"))
    assert dests(d) == {"203.0.113.11:80": (3, 0), "203.0.113.12:80": (2, 0)}
    assert "Gained quorum" in ev.text


def test_quorum_lost_below_quorum_minus_hysteresis(config):
    cfg, vs = one_vs(config, TWO_RS + SORRY)
    d = step(cfg, vs, {t.vs_name(vs): True}, DOWN, UP)  # 2 < 3
    assert [e.up for e in d.events] == [False] and dests(d) == {"203.0.113.99:80": (1, 0)}


def test_start_without_quorum_adds_sorry_server_and_reports_it(config):
    cfg, vs = one_vs(config, "alpha\n" + TWO_RS + SORRY)
    d = t.desired(cfg.virtual_servers, (), {})
    (ev,) = d.events
    assert ev.at_start and not ev.up and "Starting with quorum down" in ev.text
    assert dests(d) == {"203.0.113.99:80": (1, 0)}
    # no sorry server: down quorum at start says nothing and changes nothing
    cfg, vs = one_vs(config, "alpha\nquorum 4\n" + TWO_RS)
    d = t.desired(cfg.virtual_servers, (), {})
    assert d.events == () and dests(d) == {}


def test_quorum_down_with_inhibited_real_servers(config):
    cfg, vs = one_vs(config, "inhibit_on_failure\n" + TWO_RS + SORRY)
    d = step(cfg, vs, {t.vs_name(vs): True}, DOWN, UP)
    assert dests(d) == {"203.0.113.11:80": (0, 0), "203.0.113.12:80": (0, 0), "203.0.113.99:80": (1, 0)}


def test_sorry_server_inhibit_keeps_it_with_weight_0(config):
    cfg, vs = one_vs(config, TWO_RS + SORRY + "sorry_server_inhibit\n")
    d = step(cfg, vs, None, UP, UP)
    assert dests(d)["203.0.113.99:80"] == (0, 0)
    d = step(cfg, vs, d.quorum, DOWN, DOWN)
    assert dests(d) == {"203.0.113.99:80": (1, 0)}


def test_dynamic_weight_counts_for_the_quorum(config):
    cfg, vs = one_vs(config, TWO_RS + SORRY)
    d = step(cfg, vs, {t.vs_name(vs): True}, RsHealth(True, 1), RsHealth(True, 1))  # 2 < 3
    assert not d.quorum[t.vs_name(vs)]


def test_persistence_flags_and_netmask(config):
    cfg, vs = one_vs(config, "lb_algo sh\nsh-port\nsh-fallback\npersistence_timeout 600\n"
                             "persistence_granularity 255.255.255.0\n" + TWO_RS)
    svc = t.desired(cfg.virtual_servers, (), {}).table.services[VS_TCP]
    assert (svc.scheduler, svc.timeout, svc.netmask) == ("sh", 600, 0xFFFFFF00)
    assert svc.flags == t.F_PERSISTENT | t.F_SCHED1 | t.F_SCHED2


def test_ops_on_udp_and_persistence_engine(config):
    cfg, vs = one_vs(config, "protocol UDP\nops\npersistence_timeout\npersistence_engine sip\n"
                             "real_server 203.0.113.11 5060 { }", head="198.51.100.100 5060")
    (svc,) = t.desired(cfg.virtual_servers, (), {}).table.services.values()
    assert svc.key.protocol == 17 and svc.flags == t.F_ONEPACKET | t.F_PERSISTENT
    assert (svc.timeout, svc.pe_name) == (360, "sip")


def test_ipv6_service_netmask_128_and_granularity(config):
    cfg, vs = one_vs(config, "protocol TCP\nlb_kind DR\nreal_server 2001:db8:2::11 80 { }",
                     head="2001:db8:1::100 80")
    (svc,) = t.desired(cfg.virtual_servers, (), {}).table.services.values()
    assert svc.key.af == 6 and svc.netmask == 128 and str(svc.key) == "TCP [2001:db8:1::100]:80"
    cfg, vs = one_vs(config, "protocol TCP\npersistence_timeout 60\npersistence_granularity 64\n"
                             "real_server 2001:db8:2::11 80 { }", head="2001:db8:1::100 80")
    (svc,) = t.desired(cfg.virtual_servers, (), {}).table.services.values()
    assert svc.netmask == 64


def test_fwmark_service(config):
    cfg, vs = one_vs(config, "lb_kind DR\nreal_server 203.0.113.11 { }\nreal_server 203.0.113.12 { }",
                     head="fwmark 7")
    d = t.desired(cfg.virtual_servers, (), {})
    key = ServiceKey(af=4, fwmark=7)
    assert list(d.table.services) == [key] and str(key) == "FWM 7"
    assert dests(d, key) == {"203.0.113.11:0": (1, t.DROUTE), "203.0.113.12:0": (1, t.DROUTE)}
    assert t.vs_name(vs) == "FWM 7"


def test_group_expands_ranges_and_fwmarks(config):
    cfg = config("""
        virtual_server_group G {
            198.51.100.10-12 80
            2001:db8:1::a-b 443
            fwmark 5
        }
        virtual_server group G {
            lb_algo rr
            lb_kind DR
            protocol TCP
            real_server 203.0.113.11 80 { weight 2 }
        }
    """)
    d = t.desired(cfg.virtual_servers, cfg.virtual_server_groups, {})
    got = sorted(str(k) for k in d.table.services)
    assert got == ["FWM 5", "TCP 198.51.100.10:80", "TCP 198.51.100.11:80", "TCP 198.51.100.12:80",
                   "TCP [2001:db8:1::a]:443", "TCP [2001:db8:1::b]:443"]
    assert all(s.scheduler == "rr" for s in d.table.services.values())
    assert len(d.table.dests) == 6
    assert t.vs_name(cfg.virtual_servers[0]) == "group G TCP"


def test_thresholds(config):
    cfg, vs = one_vs(config, "protocol TCP\nreal_server 203.0.113.11 80 { uthreshold 100\nlthreshold 10 }")
    (dest,) = t.desired(cfg.virtual_servers, (), {}).table.dests.values()
    assert (dest.u_thresh, dest.l_thresh) == (100, 10)


@pytest.mark.parametrize(("text", "af", "expected"), [
    ("255.255.0.0", 4, 0xFFFF0000), ("24", 4, 0xFFFFFF00), ("/64", 6, 64), ("0", 6, None), ("200", 6, None),
    ("garbage", 4, None), ("1.2.3", 4, None), ("ff::", 6, None), ("", 4, None),
])
def test_parse_granularity(text, af, expected):
    assert t.parse_granularity(text, af) == expected


def test_rs_ids_and_text(config):
    cfg, vs = one_vs(config, TWO_RS)
    ids = [i for i, _, _ in t.rs_ids(cfg.virtual_servers)]
    assert [str(i) for i in ids] == ["203.0.113.11:80 of VS TCP 198.51.100.100:80",
                                     "203.0.113.12:80 of VS TCP 198.51.100.100:80"]
    assert ids[0] == t.rs_id(vs, vs.real_servers[0])


def test_carry_memo_keeps_only_unchanged_virtual_servers(config):
    text = ("virtual_server 198.51.100.100 80 {" + TWO_RS + "}\n"
            "virtual_server 198.51.100.101 80 {" + TWO_RS + "}\n")
    old = config(text)
    memo: dict = {}
    before = t.desired(old.virtual_servers, (), {}, None, memo)
    # the second virtual server's weight changes; the first one moves down a line (spans do not count)
    new = config("\n" + text[::-1].replace("3 thgiew", "7 thgiew", 1)[::-1])
    carried = t.carry_memo(memo, new.virtual_servers)
    assert [id(vs) in carried for vs in new.virtual_servers] == [True, False]
    after = t.desired(new.virtual_servers, (), {}, None, carried)
    assert after == t.desired(new.virtual_servers, (), {})  # the same table as without a memo
    vs2 = ServiceKey(af=4, protocol=6, addr=ip_address("198.51.100.101"), port=80)
    changed = {k: (a.weight, before.table.dests[k].weight) for k, a in after.table.dests.items()
               if a != before.table.dests[k]}
    assert changed == {(vs2, rs("203.0.113.11")): (7, 3)}
