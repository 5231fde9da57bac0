"""The pure analysis, table-driven: observations (adverts heard, probe answers, malformed frames), the
config and the local daemon's states in; the exact findings and the exit status out."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvrrpd.core.packet import ChecksumForm, Advertisement
from pyvrrpd.diagnose.analysis import Capture, analyse, listen_seconds
from pyvrrpd.diagnose.expected import AUTH_PASS, Expected
from pyvrrpd.diagnose.render import render_json, render_text
from pyvrrpd.diagnose.wire import Answer, Heard, Malformed

A = ipaddress.ip_address
R1, R2, R3 = A("198.51.100.11"), A("198.51.100.12"), A("198.51.100.13")
HERE = A("198.51.100.50")
M1, M2, M3, MHERE = "02:00:00:00:00:0b", "02:00:00:00:00:0c", "02:00:00:00:00:0d", "02:00:00:00:00:32"
MAC_OF = {R1: M1, R2: M2, R3: M3, HERE: MHERE}
VIP, VIP_B = A("198.51.100.100"), A("198.51.100.101")
GROUP = A("224.0.0.18")
PSEUDO, MESSAGE = ChecksumForm.PSEUDO_HEADER, ChecksumForm.MESSAGE
END = 5.0
PROBE = 4.0


def advert(t: float, src, prio: int = 100, *, version: int = 2, interval: float = 1.0, vrid: int = 51,
           vips: tuple = (VIP,), password: bytes | None = None, ttl: int = 255, form=None, mac: str | None = None,
           dst=GROUP) -> Heard:
    if version == 2:
        adv = Advertisement(2, 1, vrid, prio, len(vips), AUTH_PASS if password else 0, max(1, round(interval)), 0, vips,
                            (password or b"").ljust(8, b"\0"), form or ChecksumForm.MESSAGE)
    else:
        adv = Advertisement(3, 1, vrid, prio, len(vips), 0, round(interval * 100), 0, vips, b"", form or PSEUDO)
    return Heard(t, "lan0", mac or MAC_OF[src], src, dst, ttl, adv)


def every(src, start: float, stop: float, step: float = 1.0, **kw) -> list[Heard]:
    n = int(round((stop - start) / step)) + 1
    return [advert(start + i * step, src, interval=step, **kw) for i in range(n)]


def answer(address, mac: str, t: float = PROBE + 0.1) -> Answer:
    return Answer(t, "lan0", address, mac)


def config(**kw) -> Expected:
    base = dict(name="VI_1", iface="lan0", family=4, vrid=51, version=2, priority=100, interval_us=1_000_000,
                vips=frozenset({VIP}))
    base.update(kw)
    return Expected(**base)  # type: ignore[arg-type]


@dataclass
class Case:
    name: str
    observations: list
    findings: list[str]  # kinds, in report order
    exit: int
    expected: list = field(default_factory=list)
    probed: tuple = ((("lan0", VIP),))
    here: dict = field(default_factory=dict)  # local address → interface (this host holds it)
    states: dict | None = None


def capture(case: Case) -> Capture:
    return Capture(interfaces=("lan0",), start=0.0, end=END, observations=tuple(case.observations),
                   probe_start=PROBE, probed=case.probed, host_macs={"lan0": MHERE},
                   host_addresses={HERE: "lan0", **case.here})


CASES = [
    Case("healthy", every(R1, 0, 4, prio=150) + [answer(VIP, M1)], [], 0),
    Case("healthy with config, this host backup", every(R1, 0, 4, prio=150) + [answer(VIP, M1)], [], 0,
         expected=[config()]),
    Case("two masters, passwords differ",
         every(R1, 0, 4, prio=150, password=b"pw-alpha") + every(R2, 0.5, 4.5, prio=100, password=b"pw-omega")
         + [answer(VIP, M1), answer(VIP, M2)],
         ["two_masters", "vip_multiple_macs", "auth_mismatch"], 1),
    Case("keepalived masters take turns irregularly: both hold the VIP",
         [advert(0, R1, 150), advert(1, R1, 150), advert(2, R1, 150), advert(3, R2)]
         + [answer(VIP, M1), answer(VIP, M2)],
         ["two_masters", "vip_multiple_macs"], 1),
    Case("takeover: the old master stops, the new one starts",
         every(R1, 0, 1.5, 0.5, prio=100) + every(R2, 2.0, 4.0, 0.5, prio=150) + [answer(VIP, M2)], [], 0),
    Case("takeover with one advert in flight is no split brain",
         every(R1, 0, 1, 0.5) + [advert(1.2, R2, 150), advert(1.25, R1), advert(1.7, R2, 150)]
         + every(R2, 2.2, 4.2, 0.5, prio=150) + [answer(VIP, M2)], [], 0),
    Case("graceful stop: priority 0, then the backup takes over",
         every(R1, 0, 1, prio=150) + [advert(1.5, R1, 0)] + every(R2, 2.1, 4.1, prio=100) + [answer(VIP, M2)],
         [], 0),
    Case("v2 and v3 on one VRID",
         every(R1, 0, 4, prio=150) + every(R2, 0.5, 4.5, version=3) + [answer(VIP, M1), answer(VIP, M2)],
         ["two_masters", "vip_multiple_macs", "version_mismatch"], 1),
    Case("v3 interval mismatch against the config: not a cause, a warning",
         every(R1, 0, 4, 0.1, version=3, prio=150) + [answer(VIP, M1)],
         ["interval_mismatch"], 2, expected=[config(version=3, interval_us=1_000_000, checksum_form=PSEUDO)]),
    Case("VIP lists differ (or another cluster on our VRID)",
         every(R1, 0, 4, prio=150, vips=(VIP_B,)) + [answer(VIP_B, M1)],
         ["vip_list_mismatch", "vip_unanswered"], 2, expected=[config()], probed=(("lan0", VIP), ("lan0", VIP_B))),
    Case("checksum form differs from the config: split brain at the next failover",
         every(R1, 0, 4, 0.1, version=3, prio=150, form=PSEUDO) + [answer(VIP, M1)],
         ["checksum_form_mismatch"], 2,
         expected=[config(version=3, interval_us=100_000, checksum_form=MESSAGE)]),
    Case("two masters with checksum forms differing",
         every(R1, 0, 4, 0.1, version=3, prio=150, form=MESSAGE)
         + every(R2, 0.05, 4.05, 0.1, version=3, form=PSEUDO) + [answer(VIP, M1), answer(VIP, M2)],
         ["two_masters", "vip_multiple_macs", "checksum_form_mismatch"], 1),
    Case("two masters that agree on everything: they do not hear each other",
         every(R1, 0, 4, prio=150) + every(R2, 0.5, 4.5) + [answer(VIP, M1), answer(VIP, M2)],
         ["two_masters", "vip_multiple_macs"], 1),
    Case("equal priorities",
         every(R1, 0, 4) + every(R2, 0.5, 4.5) + [answer(VIP, M1), answer(VIP, M2)],
         ["two_masters", "vip_multiple_macs", "equal_priorities"], 1),
    Case("equal priority to this host's config while it is backup",
         every(R1, 0, 4) + [answer(VIP, M1)], ["equal_priorities"], 2, expected=[config(priority=100)]),
    Case("TTL 64: the advert crossed a router",
         every(R1, 0, 4, prio=150, ttl=64) + [answer(VIP, M1)], ["ttl_not_255"], 2),
    Case("unicast adverts to this host that crossed a router: reported, not a cause",
         every(R1, 0, 4, prio=150, ttl=62, dst=HERE) + [answer(VIP, M1)], ["ttl_not_255"], 2),
    Case("stale VIP: an old master still answers",
         every(R2, 0, 4, prio=150) + [answer(VIP, M2), answer(VIP, M3)], ["vip_multiple_macs"], 1),
    Case("a MAC that is not the master's answers",
         every(R1, 0, 4, prio=150) + [answer(VIP, M3)], ["vip_wrong_mac"], 2),
    Case("the VRRP virtual MAC answers for the master (FRR, use_vmac)",
         every(R1, 0, 4, prio=150, mac="00:00:5e:00:01:33") + [answer(VIP, "00:00:5e:00:01:33")], [], 0),
    Case("nobody answers for the master's VIP",
         every(R1, 0, 4, prio=150), ["vip_unanswered"], 2),
    Case("this host is master and hears nobody (multicast blocked?); the peer holds the VIP too",
         every(HERE, 0, 4, prio=150) + [answer(VIP, M2)],
         ["vip_multiple_macs", "no_peer_adverts"], 1, expected=[config(priority=150)], here={VIP: "lan0"}),
    Case("a configured instance hears nothing at all",
         [], ["no_peer_adverts"], 2, expected=[config()], probed=(("lan0", VIP),)),
    Case("this host holds the VIPs silently while another router is master",
         every(R2, 0, 4, prio=100) + [answer(VIP, M2)],
         ["two_masters", "vip_multiple_macs", "interval_mismatch"], 1,
         expected=[config(priority=150, interval_us=2_000_000)], here={VIP: "lan0"}),
    Case("another cluster's VRID: information only",
         every(R1, 0, 4, prio=150) + every(R3, 0.3, 4.3, vrid=99, vips=(VIP_B,)) + [answer(VIP, M1),
                                                                                      answer(VIP_B, M3)],
         ["foreign_vrids"], 0, expected=[config(priority=100)], probed=(("lan0", VIP), ("lan0", VIP_B))),
    Case("malformed frames and CARP",
         every(R1, 0, 4, prio=150) + [answer(VIP, M1),
                                      Malformed(1.0, "lan0", M3, 4, R3, 51, "bad_checksum", "Invalid VRRPv2 checksum"),
                                      Malformed(1.5, "lan0", M3, 4, R3, 51, "bad_checksum", "Invalid VRRPv2 checksum"),
                                      Malformed(2.0, "lan0", M3, 4, None, None, "bad_ip_header", "not IPv4"),
                                      Malformed(2.5, "lan0", M3, 4, R3, 1, "foreign_carp", "CARP (vhid 1)")],
         ["malformed_frames", "carp"], 2),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_findings(case: Case):
    report = analyse(capture(case), case.expected, case.states)
    kinds = [f.kind.value for f in report.findings]
    assert kinds == case.findings, render_text(report.to_dict())
    assert report.exit_status == case.exit
    doc = report.to_dict()
    assert json.loads(render_json(doc)) == doc  # JSON-clean
    text = render_text(doc)
    for f in report.findings:
        assert f.summary in text and f.explanation and f.action


def test_two_masters_names_the_cause_and_never_prints_a_password():
    case = next(c for c in CASES if c.name == "two masters, passwords differ")
    report = analyse(capture(case))
    two = report.findings[0]
    assert two.details["causes"] == ["auth_mismatch"]
    assert [m["source"] for m in two.details["masters"]] == [str(R1), str(R2)]
    auth = next(f for f in report.findings if f.kind == "auth_mismatch")
    assert auth.details["values"] == [{"value": "PASS, password A", "routers": [str(R1)]},
                                      {"value": "PASS, password B", "routers": [str(R2)]}]
    text = render_text(report.to_dict()) + render_json(report.to_dict())
    assert "pw-alpha" not in text and "pw-omega" not in text


def test_ttl_of_unicast_adverts_is_no_cause():
    case = next(c for c in CASES if c.name.startswith("unicast adverts"))
    (ttl,) = analyse(capture(case)).findings
    assert ttl.details == {"routers": [{"router": str(R1), "ttl": [62], "multicast": False}], "multicast": False}


def test_no_cause_explains_blocked_multicast():
    case = next(c for c in CASES if c.name.startswith("two masters that agree"))
    two = analyse(capture(case)).findings[0]
    assert two.details["causes"] == []
    assert "IP protocol 112" in two.explanation and "unicast_peer" in two.action


def test_local_state_comes_from_the_status_then_from_the_wire():
    heard = every(R1, 0, 4, prio=150) + [answer(VIP, M1)]
    unknown = analyse(capture(Case("", heard, [], 0)), [config()]).groups[0]["local_state"]
    assert unknown.startswith("unknown")
    said = analyse(capture(Case("", heard, [], 0)), [config()], {"VI_1": "BACKUP"}).groups[0]["local_state"]
    assert said == "BACKUP"
    mine = analyse(capture(Case("", every(HERE, 0, 4) + [], [], 0, here={VIP: "lan0"})), [config()])
    assert mine.groups[0]["local_state"] == "MASTER (this host sends adverts)"
    assert analyse(capture(Case("", heard, [], 0))).groups[0]["local_state"] is None  # no config: not ours


def test_routers_table():
    report = analyse(capture(Case("", every(R1, 0, 4, 0.5, prio=150, password=b"x") + [answer(VIP, M1)], [], 0)))
    (group,) = report.to_dict()["routers"]
    (r,) = group["advertisers"]
    assert group["masters"] == [str(R1)]
    assert r == {"source": str(R1), "mac": M1, "this_host": False, "master": True, "version": 2, "priority": 150,
                 "interval_s": 1.0, "auth": "PASS, password A", "vips": [str(VIP)], "ttl": [255],
                 "checksum_form": None, "adverts": 9, "priority_zero": 0, "per_second": 2.0}


def test_listen_seconds():
    assert listen_seconds() == 3.0
    assert listen_seconds([100_000]) == 3.0
    assert listen_seconds([1_000_000], [2_000_000]) == 6.0
    assert listen_seconds([], [255_000_000]) == 60.0
    assert listen_seconds([], [255_000_000], maximum=1000) == 765.0


_heard = st.builds(
    lambda t, src, prio, version, interval, vrid, vips, ttl, pw: advert(
        t, src, prio, version=version, interval=interval, vrid=vrid, vips=vips, ttl=ttl, password=pw,
        form=PSEUDO if version == 3 else None),
    st.floats(0, END), st.sampled_from([R1, R2, R3, HERE]), st.integers(0, 255), st.sampled_from([2, 3]),
    st.sampled_from([0.1, 1.0, 2.0]), st.sampled_from([51, 52]), st.sampled_from([(VIP,), (VIP, VIP_B), ()]),
    st.sampled_from([255, 64]), st.sampled_from([None, b"a", b"b"]))
_answer = st.builds(answer, st.sampled_from([VIP, VIP_B]), st.sampled_from([M1, M2, M3]), st.floats(0, END))
_malformed = st.builds(lambda t, reason, vrid: Malformed(t, "lan0", M3, 4, R3, vrid, reason, "detail"),
                       st.floats(0, END), st.sampled_from(["bad_checksum", "too_short", "foreign_carp"]),
                       st.none() | st.integers(0, 255))


@settings(max_examples=200, deadline=None)
@given(st.lists(_heard | _answer | _malformed, max_size=40), st.booleans(), st.booleans())
def test_any_observations_give_a_report(observations, with_config, held_here):
    observations.sort(key=lambda o: o.t)
    case = Case("", observations, [], 0, expected=[config()] if with_config else [],
                probed=(("lan0", VIP), ("lan0", VIP_B)), here={VIP: "lan0"} if held_here else {})
    report = analyse(capture(case), case.expected)
    doc = report.to_dict()
    assert json.loads(render_json(doc)) == doc
    assert render_text(doc).endswith(f"(exit status {report.exit_status})\n")
    assert report.exit_status in (0, 1, 2)
    assert (report.exit_status == 1) == any(f.severity == "split_brain" for f in report.findings)
