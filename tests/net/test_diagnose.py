"""`pyvrrpd diagnose` against real daemons in the namespace lab: each scenario builds a segment, runs the
command inside a lab namespace (never in the root namespace) and asserts its exact findings and exit status.

Lab: directors d1 (.11) and d2 (.12), FRR's node f1 (.13) and an observer c1 (.50) on one bridge. VRID 51
carries 198.51.100.100 (VRID 52 carries 2001:db8:1::100 where IPv6 is on). VRRPv3 runs at 0.1 s where the
scenario allows; authentication and interval mismatches need VRRPv2 (whole seconds).

With PYVRRPD_DIAGNOSE_SAMPLES=DIR every run also writes DIR/<scenario>.txt (the text the command prints for
that report, rendered from its JSON by the same code) for docs/diagnose.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyvrrpd.diagnose.render import render_text
from tests.net.lab import Lab, Peer, start_keepalived, start_pyvrrpd, vrrp_config, wait_for
from tests.net.test_interop_frr import frr  # noqa: F401  (fixture: FRR's zebra + vrrpd in f1)

pytestmark = [pytest.mark.net, pytest.mark.interop]

VIP4, VIP6 = "198.51.100.100", "2001:db8:1::100"
SAMPLES = os.environ.get("PYVRRPD_DIAGNOSE_SAMPLES")
# A one-line sender of raw frames (hex arguments) for the malformed-frame scenario.
SEND_FRAMES = ("import socket, sys\n"
               "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)\n"
               "s.bind((sys.argv[1], 0))\n"
               "for h in sys.argv[2:]:\n"
               "    s.send(bytes.fromhex(h))\n")


@pytest.fixture
def lab(tmp_path):
    with Lab({"d1": 11, "d2": 12, "f1": 13, "c1": 50}, workdir=tmp_path) as lab:
        yield lab


class Diagnose:
    """`pyvrrpd diagnose --json ARGS` running in a lab node (the lab's tear-down kills it if it hangs)."""

    def __init__(self, lab: Lab, node: str, *args: str, sample: str) -> None:
        self.lab, self.node, self.args, self.sample = lab, node, args, sample
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.ns(node), sys.executable, "-m", "pyvrrpd", "diagnose", "--json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, timeout: float = 90) -> tuple[int, dict]:
        """The exit status and the report; the text rendering is kept in the lab's workdir (and SAMPLES)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=10)
            raise
        assert out, err
        report = json.loads(out)
        assert self.proc.returncode == report["exit_status"], (self.proc.returncode, err)
        text = render_text(report)
        (self.lab.workdir / f"diagnose-{self.sample}.txt").write_text(text)
        if SAMPLES:
            Path(SAMPLES).mkdir(parents=True, exist_ok=True)
            (Path(SAMPLES) / f"{self.sample}.txt").write_text(
                f"# pyvrrpd diagnose {' '.join(self.args)}   (in {self.node})\n{text}")
        return self.proc.returncode, report


def diagnose(lab: Lab, node: str, *args: str, sample: str) -> tuple[int, dict]:
    return Diagnose(lab, node, *args, sample=sample).result()


def heard(report: dict, node_ip: str) -> bool:
    return any(a["source"] == node_ip for g in report["routers"] for a in g["advertisers"])


def findings(report: dict) -> list[tuple[str, str]]:
    return sorted((f["kind"], f["where"]) for f in report["findings"])


def finding(report: dict, kind: str) -> dict:
    (match,) = [f for f in report["findings"] if f["kind"] == kind]
    return match


def holds(lab: Lab, node: str, vip: str = VIP4) -> bool:
    return vip in lab.addresses(node)


def both_masters(lab: Lab, *peers: Peer) -> None:
    for peer in peers:
        wait_for(lambda: holds(lab, peer.node), timeout=15, interval=0.1, what=f"{peer.node} to hold the VIP")


def is_backup(peer: Peer) -> bool:
    """The daemon's last state change was to BACKUP (keepalived's log line; pyvrrpd logs the same words)."""
    text = peer.log_text()
    return text.rfind("Entering BACKUP STATE") > max(text.rfind("Entering MASTER STATE"),
                                                     text.rfind("Entering FAULT STATE"))


def test_healthy_pair(lab):
    """pyvrrpd master, keepalived backup, VRRPv3 at 0.1 s over IPv4 and IPv6: nothing to report."""
    conf = dict(version=3, advert_int=0.1, vip=f"{VIP4}/32", vip6=f"{VIP6}/128")
    start_pyvrrpd(lab, "d1", vrrp_config("d1", state="MASTER", priority=150, **conf))
    wait_for(lambda: holds(lab, "d1") and holds(lab, "d1", VIP6), timeout=10, what="d1 to hold both VIPs")
    backup = start_keepalived(lab, "d2", vrrp_config("d2", state="BACKUP", priority=100, **conf))
    wait_for(lambda: is_backup(backup), timeout=10, what="keepalived in d2 to be backup")
    time.sleep(0.5)

    code, report = diagnose(lab, "c1", sample="healthy")  # default duration: 3 s, nothing slower heard
    assert code == 0 and findings(report) == [], render_text(report)
    assert 3 <= report["listened_s"] < 10
    d1 = lab.mac("d1")
    assert [(g["vrid"], g["family"], len(g["masters"])) for g in report["routers"]] == [(51, 4, 1), (52, 6, 1)]
    assert report["routers"][0]["masters"] == [lab.ipv4("d1")]
    assert all(len(g["advertisers"]) == 1 and g["advertisers"][0]["mac"] == d1 for g in report["routers"])
    assert {(v["address"], tuple(v["held_by"])) for v in report["vips"]} == {(VIP4, (d1,)), (VIP6, (d1,))}

    # On the backup, with its config: the instances match, the peer is heard, the local state is unknown.
    code, report = diagnose(lab, "d2", "-f", str(lab.workdir / "keepalived-d2.conf"), "--duration", "2",
                            sample="healthy-backup-with-config")
    assert code == 0 and findings(report) == [], render_text(report)
    assert [(g["instance"], g["local_state"].split(" (")[0]) for g in report["routers"]] == [
        ("VI4", "unknown"), ("VI6", "unknown")]
    assert any("local daemon state unknown" in note for note in report["notes"])


def test_password_mismatch_between_keepalived_routers(lab):
    """Two keepalived 2.2.7 (VRRPv2) with different passwords both become master. A keepalived master resets
    its advert timer on every advert it receives, rejected or not, so one of two such masters mostly falls
    silent (which one is a race). diagnose runs on both at once, each with its own config: where the peer is
    heard, it names the cause; where it is not, it reports that and the second holder of the VIP."""
    for node, password in (("d1", "secret1"), ("d2", "secret2")):
        state, prio = ("MASTER", 150) if node == "d1" else ("BACKUP", 100)
        start_keepalived(lab, node, vrrp_config(node, state=state, priority=prio, version=2, advert_int=1,
                                                vip=f"{VIP4}/32", auth_pass=password))
    wait_for(lambda: holds(lab, "d1") and holds(lab, "d2"), timeout=15, interval=0.1, what="both to hold the VIP")

    runs = {node: Diagnose(lab, node, "-f", str(lab.workdir / f"keepalived-{node}.conf"), "--duration", "3",
                           sample=f"password-mismatch-{node}") for node in ("d1", "d2")}
    named = 0
    for node, run in runs.items():
        code, report = run.result()
        other = lab.ipv4("d2" if node == "d1" else "d1")
        assert code == 1, render_text(report)
        if heard(report, other):
            named += 1
            assert findings(report) == [("auth_mismatch", "lan0 IPv4 VRID 51"),
                                        ("two_masters", "lan0 IPv4 VRID 51"), ("vip_multiple_macs", f"{VIP4} on lan0")]
            assert finding(report, "two_masters")["details"]["causes"] == ["auth_mismatch"]
            theirs, ours = sorted(finding(report, "auth_mismatch")["details"]["values"],
                                  key=lambda v: other not in v["routers"])
            assert theirs["routers"] == [other] and "this host's config (VI4)" in ours["routers"]
        else:
            assert findings(report) == [("no_peer_adverts", "lan0 IPv4 VRID 51"), ("vip_multiple_macs", f"{VIP4} on lan0")]
        assert "secret" not in json.dumps(report)  # passwords are named A, B, ..., never printed
        assert set(finding(report, "vip_multiple_macs")["details"]["macs"]) == {lab.mac("d1"), lab.mac("d2")}
    assert named >= 1  # at any moment one of them sends, so the other hears it


def test_interval_mismatch_between_keepalived_routers(lab):
    """VRRPv2 at 2 s (d1) against 1 s (d2): both hold the VIP, but keepalived's 2 s master falls silent (it
    resets its advert timer on every advert it receives, even a rejected one). From c1: one advertiser and
    a second MAC holding the VIP. From d1 with its config: two masters, the interval named as the cause; no
    --duration there, so the configured 2 s interval makes it listen 6 s."""
    d1 = start_keepalived(lab, "d1", vrrp_config("d1", state="MASTER", priority=150, version=2, advert_int=2,
                                                 vip=f"{VIP4}/32"))
    d2 = start_keepalived(lab, "d2", vrrp_config("d2", state="BACKUP", priority=100, version=2, advert_int=1,
                                                 vip=f"{VIP4}/32"))
    both_masters(lab, d1, d2)

    code, report = diagnose(lab, "c1", "--duration", "3", sample="interval-mismatch-observer")
    assert code == 1, render_text(report)
    if heard(report, lab.ipv4("d1")):  # only if d2's adverts were late by a whole second (a loaded machine)
        assert ("two_masters", "lan0 IPv4 VRID 51") in findings(report)
    else:
        assert findings(report) == [("vip_multiple_macs", f"{VIP4} on lan0")]
        assert [a["source"] for a in report["routers"][0]["advertisers"]] == [lab.ipv4("d2")]

    code, report = diagnose(lab, "d1", "-f", str(lab.workdir / "keepalived-d1.conf"), sample="interval-mismatch")
    assert code == 1, render_text(report)
    assert findings(report) == [("interval_mismatch", "lan0 IPv4 VRID 51"), ("two_masters", "lan0 IPv4 VRID 51"),
                                ("vip_multiple_macs", f"{VIP4} on lan0")]
    two = finding(report, "two_masters")["details"]
    assert two["causes"] == ["interval_mismatch"]
    assert [(m["source"], m["this_host"]) for m in two["masters"]] == [("this host", True), (lab.ipv4("d2"), False)]
    assert finding(report, "interval_mismatch")["details"]["values"] == [
        {"value": "1 s", "routers": [lab.ipv4("d2")]}, {"value": "2 s", "routers": ["this host's config (VI4)"]}]
    assert report["routers"][0]["local_state"] == "MASTER (this host holds the VIPs, but sends no adverts)"
    assert report["listened_s"] >= 6


def test_multicast_blocked_between_the_pair(lab):
    """The bridge stops flooding multicast to both directors (mcast_flood off): each hears only itself and
    both are master. Seen from d1 with its config: no advert from the peer, and the peer answers for the VIP."""
    for port in ("p-d1", "p-d2"):
        block_multicast(lab, port)
    conf = dict(version=3, advert_int=0.1, vip=f"{VIP4}/32")
    d1 = start_pyvrrpd(lab, "d1", vrrp_config("d1", state="MASTER", priority=150, **conf))
    d2 = start_keepalived(lab, "d2", vrrp_config("d2", state="BACKUP", priority=100, **conf))
    both_masters(lab, d1, d2)

    code, report = diagnose(lab, "d1", "-f", str(lab.workdir / "pyvrrpd-d1.conf"), "--duration", "2",
                            sample="multicast-blocked")
    assert code == 1, render_text(report)
    assert findings(report) == [("no_peer_adverts", "lan0 IPv4 VRID 51"), ("vip_multiple_macs", f"{VIP4} on lan0")]
    (group,) = report["routers"]
    assert group["local_state"] == "MASTER (this host sends adverts)"
    assert [(a["source"], a["this_host"]) for a in group["advertisers"]] == [(lab.ipv4("d1"), True)]
    assert set(finding(report, "vip_multiple_macs")["details"]["macs"]) == {lab.mac("d1"), lab.mac("d2")}


def block_multicast(lab: Lab, port: str) -> None:
    """The lab bridge stops flooding multicast out of `port` (broadcast ARP and unicast still pass)."""
    subprocess.run(["ip", "-n", lab.lan, "link", "set", "dev", port, "type", "bridge_slave", "mcast_flood", "off"],
                   check=True, capture_output=True, timeout=10)


def test_v2_and_v3_router_on_one_vrid_with_frr(lab, frr):  # noqa: F811
    """keepalived speaks VRRPv2, FRR's vrrpd VRRPv3 (1 s both) on VRID 51: neither hears the other."""
    d1 = start_keepalived(lab, "d1", vrrp_config("d1", state="MASTER", priority=150, version=2, advert_int=1,
                                                 vip=f"{VIP4}/32"))
    frr.start(100)
    wait_for(lambda: frr.status() == "Master", timeout=15, interval=0.2, what="FRR vrrpd to be Master")
    both_masters(lab, d1)

    # On keepalived's node with its config: FRR is heard whether or not keepalived (starved by FRR's adverts,
    # which reset its advert timer) gets an advert out.
    code, report = diagnose(lab, "d1", "-f", str(lab.workdir / "keepalived-d1.conf"), "--duration", "3",
                            sample="v2-v3-frr")
    assert code == 1, render_text(report)
    assert findings(report) == [("two_masters", "lan0 IPv4 VRID 51"), ("version_mismatch", "lan0 IPv4 VRID 51"),
                                ("vip_multiple_macs", f"{VIP4} on lan0")]
    assert finding(report, "two_masters")["details"]["causes"] == ["version_mismatch"]
    frr_mac = "00:00:5e:00:01:33"  # FRR sends its adverts and answers ARP from the virtual MAC
    (group,) = report["routers"]
    assert (lab.ipv4("f1"), frr_mac, 3) in {(a["source"], a["mac"], a["version"]) for a in group["advertisers"]}
    assert set(finding(report, "vip_multiple_macs")["details"]["macs"]) == {lab.mac("d1"), frr_mac}


def test_stale_vip_on_a_killed_master(lab):
    """pyvrrpd master on d1 killed with kill -9 keeps its VIP; keepalived on d2 takes over: two MACs answer."""
    conf = dict(version=3, advert_int=0.1, vip=f"{VIP4}/32")
    d1 = start_pyvrrpd(lab, "d1", vrrp_config("d1", state="MASTER", priority=150, **conf))
    wait_for(lambda: holds(lab, "d1"), timeout=10, what="d1 to hold the VIP")
    d2 = start_keepalived(lab, "d2", vrrp_config("d2", state="BACKUP", priority=100, **conf))
    wait_for(lambda: is_backup(d2), timeout=10, what="keepalived in d2 to be backup")
    for pid in d1.crash_pids():
        os.kill(pid, 9)
    wait_for(lambda: holds(lab, "d2"), timeout=10, interval=0.1, what="d2 to take over")
    assert holds(lab, "d1")  # the stale VIP

    code, report = diagnose(lab, "c1", "--duration", "2", sample="stale-vip")
    assert code == 1, render_text(report)
    assert findings(report) == [("vip_multiple_macs", f"{VIP4} on lan0")]
    details = finding(report, "vip_multiple_macs")["details"]
    assert set(details["macs"]) == {lab.mac("d1"), lab.mac("d2")}
    assert [m["source"] for m in details["masters"]] == [lab.ipv4("d2")]


def test_checksum_forms_differ_between_pyvrrpd_and_keepalived(lab):
    """pyvrrpd with v3_checksum_as_v2 (RFC 9568) and keepalived 2.2.7 (RFC 5798 pseudo-header): keepalived
    discards pyvrrpd's adverts and becomes master too (pyvrrpd accepts both forms and stays master)."""
    conf = dict(version=3, advert_int=0.1, vip=f"{VIP4}/32")
    rfc9568 = vrrp_config("d1", state="MASTER", priority=150, **conf).replace(
        "    priority 150\n", "    priority 150\n    v3_checksum_as_v2\n")
    d1 = start_pyvrrpd(lab, "d1", rfc9568)
    d2 = start_keepalived(lab, "d2", vrrp_config("d2", state="BACKUP", priority=100, **conf))
    both_masters(lab, d1, d2)

    # On keepalived's node with its config (its own adverts may be starved by pyvrrpd's, see above).
    code, report = diagnose(lab, "d2", "-f", str(lab.workdir / "keepalived-d2.conf"), "--duration", "2",
                            sample="checksum-forms")
    assert code == 1, render_text(report)
    assert findings(report) == [("checksum_form_mismatch", "lan0 IPv4 VRID 51"),
                                ("two_masters", "lan0 IPv4 VRID 51"), ("vip_multiple_macs", f"{VIP4} on lan0")]
    assert finding(report, "two_masters")["details"]["causes"] == ["checksum_form_mismatch"]
    values = {v["value"]: v["routers"] for v in finding(report, "checksum_form_mismatch")["details"]["values"]}
    assert values["RFC 9568 (message only)"] == [lab.ipv4("d1")]
    assert "this host's config (VI4)" in values["RFC 5798 (with IPv4 pseudo-header)"]


def test_malformed_frames_are_reported_as_such(lab):
    """Garbage on protocol 112, a CARP advert and a VRRP advert that crossed a router (TTL 64), sent from c1
    while d1 listens: each is reported by name, nothing crashes."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.layers.vrrp import VRRP

    mac = lab.mac("c1")
    src, group = lab.ipv4("c1"), "224.0.0.18"

    def ip4(payload: bytes, ttl: int = 255) -> str:
        return bytes(Ether(src=mac, dst="01:00:5e:00:00:12") / IP(src=src, dst=group, ttl=ttl, proto=112)
                     / payload).hex()

    advert = VRRP(vrid=77, priority=100, addrlist=["198.51.100.177"])
    bad_checksum = bytearray(bytes(advert))
    bad_checksum[6] ^= 0xFF
    carp = bytes.fromhex("2101640700011234") + bytes(28)  # 36 bytes, count 7: CARP's shape
    v6 = bytes(Ether(src=mac, dst="33:33:00:00:00:12") / IPv6(src="fe80::50", dst="ff02::12", hlim=255, nh=112)
               / (bytes.fromhex("51330a01000a0000") + bytes(16))).hex()  # version 5
    frames = [ip4(bytes(bad_checksum)), ip4(b"\x21\x33"), ip4(carp), v6, ip4(bytes(advert), ttl=64)]

    run = Diagnose(lab, "d1", "--duration", "4", sample="malformed")
    for _ in range(3):  # the command needs a moment to start capturing: send a batch every second
        time.sleep(1.0)
        lab.run("c1", [sys.executable, "-c", SEND_FRAMES, "lan0", *frames])
    code, report = run.result()
    assert code == 2, render_text(report)
    assert findings(report) == [("carp", "lan0"), ("malformed_frames", "lan0"),
                                ("ttl_not_255", "lan0 IPv4 VRID 77"), ("vip_unanswered", "198.51.100.177 on lan0")]
    reasons = {(m["source"], m["reason"]) for m in report["malformed"]}
    assert reasons == {(src, "bad_checksum"), (src, "too_short"), (src, "foreign_carp"), ("fe80::50", "bad_version")}
    (group,) = report["routers"]
    assert [(a["source"], a["ttl"]) for a in group["advertisers"]] == [(src, [64])]


@pytest.mark.parametrize("prefix, args, reason", [
    ((), ("-i", "nosuch0"), "there is no interface 'nosuch0' here"),
    (("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"), ("--duration", "1"),
     "capturing needs root (CAP_NET_RAW)"),
])
def test_could_not_run(lab, prefix, args, reason):
    """Exit status 3 with the reason, as text and as JSON; never a traceback."""
    for json_flag in ((), ("--json",)):
        result = lab.run("c1", [*prefix, sys.executable, "-m", "pyvrrpd", "diagnose", *args, *json_flag],
                         check=False)
        assert result.returncode == 3, result
        assert f"could not run: {reason}" in result.stderr and "Traceback" not in result.stderr
        if json_flag:
            assert reason in json.loads(result.stdout)["error"]
