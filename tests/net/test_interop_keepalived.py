"""pyvrrpd and keepalived 2.2.7 as VRRP peers on one LAN (namespace lab: d1, d2 and a client c1).

The failover tests start one daemon as master (d1, priority 150) and the other as backup (d2, 100),
let tests/net/probe.py in c1 kill -9 or SIGTERM the master, check by source MAC that c1's traffic,
ARP, adverts and GARP/NA now come from d2, then restart the old master and check that it preempts
back. Which timer drove the takeover is read from the advert stream on the bridge (lab.AdvertWatch):
Skew_Time after the priority-0 advert of a SIGTERM, Master_Down_Interval after the last advert of a
kill -9, within bounds that tell the two apart at v2 1 s (see test_daemon_pair.py). Two more elect
with equal priorities (the higher address wins) and with v2 PASS authentication, watching the
adverts rather than sleeping. Afterwards neither log may show a rejected packet: keepalived's -D log
none of its vrrp_check_packet lines (keepalived-facts.md §4.4), pyvrrpd's none of its decode errors
or discards other than the ordinary lower-priority one. Speed is measured in bench/failover.py.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from pyvrrpd.core.actions import Discard
from pyvrrpd.core.packet import Reason
from tests.net.lab import (
    EARLY,
    LATE,
    AdvertWatch,
    Lab,
    Peer,
    assert_between,
    master_down_interval,
    sent_by,
    skew_time,
    start_daemon,
    vrrp_config,
    wait_for,
)

pytestmark = [
    pytest.mark.net,
    pytest.mark.interop,
]

PROBE = Path(__file__).with_name("probe.py")
VIP4, VIP6 = "198.51.100.100", "2001:db8:1::100"
MASTER_PRIO, BACKUP_PRIO = 150, 100
VERSIONS = {  # name: (VRRP version, advert_int, IPv6 VIP too); vrrp_config's VRIDs: 51 (IPv4), 52 (IPv6)
    "v3": (3, 0.1, True),
    "v2": (2, 1.0, False),
    "v3-4": (3, 0.1, False),
}
OTHER = {"pyvrrpd": "keepalived", "keepalived": "pyvrrpd"}

# keepalived 2.2.7's logs for packets it rejects or distrusts (keepalived-facts.md §4.4, §4.6)
KEEPALIVED_REJECTS = re.compile("|".join(re.escape(s) for s in (
    "AH header", "packet too short", "packet too long", "invalid TTL", "wrong version", "Invalid auth type",
    "auth, expecting", "invalid passwd", "advertisement interval mismatch", "Invalid packet type",
    "ip_tot_len mismatch", "Invalid VRRPv3 checksum", "Invalid VRRPv2 checksum", "Expected multicast packet",
    "unexpected ip number count", "not present in MASTER advert", "not a unicast peer", "Unknown VRID",
    "equal priority advert received", "both configured as address owner",
)), re.IGNORECASE)
# pyvrrpd (JSON log lines): decode errors and discards by their reason label, except the ordinary
# lower_priority (a backup about to preempt) and not_running (INIT/FAULT); distrustful notices; and
# any warning or error that is not about the config (keepalived warns about the same IPv6 VIP).
PYVRRPD_REJECT_REASONS = ({r.value for r in Reason} | {d.value for d in Discard}) - {"lower_priority", "not_running"}
PYVRRPD_REJECT_KINDS = {"interval_mismatch", "own_address", "both_owners"}


@pytest.fixture
def lab(tmp_path):
    """Directors d1 and d2 and the client c1; every process and namespace removed afterwards."""
    with Lab({"d1": 11, "d2": 12, "c1": 50}, workdir=tmp_path) as lab:
        yield lab


def vips(version: str) -> set[str]:
    return {VIP4, VIP6} if VERSIONS[version][2] else {VIP4}


def vrids(version: str) -> list[int]:
    return [51, 52] if VERSIONS[version][2] else [51]


def start(lab: Lab, impl: str, node: str, version: str, *, priority: int | None = None,
          auth_pass: str | None = None) -> Peer:
    """d1 is configured MASTER/150, d2 BACKUP/100, unless `priority` is given (then both BACKUP)."""
    number, advert_int, ipv6 = VERSIONS[version]
    state, prio = ("MASTER", MASTER_PRIO) if node == "d1" else ("BACKUP", BACKUP_PRIO)
    if priority is not None:
        state, prio = "BACKUP", priority
    conf = vrrp_config(node, state=state, priority=prio, version=number, advert_int=advert_int,
                       vip=f"{VIP4}/32", vip6=f"{VIP6}/128" if ipv6 else None, auth_pass=auth_pass)
    return start_daemon(impl, lab, node, conf)


def wait_master(lab: Lab, master: str, backup: str, version: str) -> None:
    want = vips(version)
    wait_for(lambda: want <= lab.addresses(master) and not want & lab.addresses(backup), timeout=15,
             interval=0.05, what=f"{master} to hold {sorted(want)} and {backup} none")


def probe(lab: Lab, version: str, signal: str, master: Peer) -> dict:
    _, advert_int, ipv6 = VERSIONS[version]
    pids = master.crash_pids() if signal == "KILL" else [master.process.pid]
    argv = ["--vip", VIP4, "--master-mac", lab.mac("d1"), "--backup-mac", lab.mac("d2"), "--signal", signal,
            "--advert-int", f"{advert_int:g}", "--timeout", "15", *(["--vip6", VIP6] if ipv6 else [])]
    for pid in pids:
        argv += ["--pid", str(pid)]
    out = lab.python("c1", PROBE, *argv, timeout=25, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines, f"probe failed (exit {out.returncode}): {out.stderr}"
    return json.loads(lines[-1])


def time_takeover(watch: AdvertWatch, version: str, signal: str, since: float, who: str) -> None:
    """For each VRID: d2 (priority 100) took over Skew_Time after d1's priority-0 advert (SIGTERM),
    or Master_Down_Interval after d1's last advert (kill -9); `since` is before the signal."""
    number, advert_int, _ = VERSIONS[version]
    for vrid in vrids(version):
        takeover = watch.wait(f"d2's first advert for VRID {vrid}", lambda a: a.node == "d2" and a.vrid == vrid,
                              since=since, timeout=5)
        if signal == "TERM":
            start = watch.first(lambda a: a.node == "d1" and a.vrid == vrid and a.prio == 0, since=since)
            expected, timer = skew_time(number, advert_int, BACKUP_PRIO), "Skew_Time"
        else:
            start = watch.last(lambda a: a.node == "d1" and a.vrid == vrid and a.prio > 0, before=takeover.t)
            expected, timer = master_down_interval(number, advert_int, BACKUP_PRIO), "Master_Down_Interval"
        assert start is not None and start.t < takeover.t, watch.summary(since)
        assert_between(f"{version} {who}, {signal}, VRID {vrid}: takeover after d1's "
                       f"{'priority-0' if signal == 'TERM' else 'last'} advert ({timer} {expected:.3f})",
                       takeover.t - start.t, expected - EARLY, expected + LATE)


def rejected(peer: Peer) -> list[str]:
    """The log lines that show a packet rejected or distrusted (or a crash: non-JSON lines)."""
    lines = peer.log_text().splitlines()
    if peer.impl == "keepalived":
        return [line for line in lines if KEEPALIVED_REJECTS.search(line)]
    return [line for line in lines if pyvrrpd_rejects(line)]


def pyvrrpd_rejects(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return True
    if record.get("reason") in PYVRRPD_REJECT_REASONS or record.get("kind") in PYVRRPD_REJECT_KINDS:
        return True
    return record.get("level") in ("warning", "error", "critical") and not record["event"].startswith("config:")


@pytest.mark.parametrize("signal", ["TERM", "KILL"])
@pytest.mark.parametrize("master_impl", ["pyvrrpd", "keepalived"])
@pytest.mark.parametrize("version", ["v3", "v2"])
def test_failover_and_preemption_between_pyvrrpd_and_keepalived(lab, version, master_impl, signal):
    backup_impl = OTHER[master_impl]
    backup = start(lab, backup_impl, "d2", version)
    master = start(lab, master_impl, "d1", version)
    peers = [backup, master]
    watch = AdvertWatch(lab)
    try:
        wait_master(lab, "d1", "d2", version)
        assert "Entering MASTER STATE" in master.log_text()  # (d2 may have been master before d1 came up)

        # 1. d1 goes away; c1's traffic, ARP, adverts and GARP/NA move to d2 (told apart by MAC)
        since = time.time()
        r = probe(lab, version, signal, master)
        assert r["signalled"] and r["pre_signal_backup"] == 0, r
        assert None not in (r["echo"], r["arp"], r["advert"], r["garp"]), r
        assert r["advert_prio"] == BACKUP_PRIO
        if VERSIONS[version][2]:
            assert None not in (r["echo6"], r["na"]), r
        master.process.wait(timeout=5)
        if signal == "TERM":
            assert master.process.returncode == 0, master.log_text()
            assert r["master_prio0"] is not None, r  # the goodbye advert
            assert not vips(version) & lab.addresses("d1")  # and the VIPs removed
        else:
            master.stop()  # reaps; keepalived's VRRP child is already dead
            for vip, plen in ((VIP4, 32), (VIP6, 128)):
                if vip in vips(version):  # the stale VIP of the crashed master
                    lab.run("d1", ["ip", "addr", "del", f"{vip}/{plen}", "dev", "lan0"])
        wait_master(lab, "d2", "d1", version)
        if signal == "TERM" and backup_impl == "keepalived":
            assert "Backup received priority 0 advertisement" in backup.log_text()
        time_takeover(watch, version, signal, since, f"{master_impl} -> {backup_impl}")

        # 2. the old master comes back and preempts the other daemon
        master = start(lab, master_impl, "d1", version)
        peers.append(master)
        wait_master(lab, "d1", "d2", version)
        if backup_impl == "keepalived":
            assert f"Master received advert from {lab.ipv4('d1')} with higher priority {MASTER_PRIO}" \
                in backup.log_text()
        else:
            assert backup.log_text().count("Entering BACKUP STATE") >= 2, backup.log_text()
    finally:
        for peer in reversed(peers):
            peer.stop()
    for peer in peers:
        assert rejected(peer) == [], f"{peer.impl} in {peer.node} rejected packets:\n{peer.log_text()}"


@pytest.mark.parametrize("d1_impl", ["pyvrrpd", "keepalived"])
def test_equal_priority_the_higher_address_wins(lab, d1_impl):
    """Both priority 100 (v3, 0.1 s, IPv4): the sender address breaks the tie; d2 (.12) > d1 (.11)."""
    peers = [start(lab, OTHER[d1_impl], "d2", "v3-4", priority=BACKUP_PRIO),
             start(lab, d1_impl, "d1", "v3-4", priority=BACKUP_PRIO)]
    watch = AdvertWatch(lab)
    try:
        wait_master(lab, "d2", "d1", "v3-4")
        # ten more adverts from d2, and none from d1: the election stays put
        since = time.time()
        watch.wait("ten more adverts from d2", sent_by("d2"), since=since, timeout=5, count=10)
        assert watch.first(sent_by("d1"), since=since) is None, watch.summary(since)
        assert VIP4 in lab.addresses("d2") and VIP4 not in lab.addresses("d1")
    finally:
        for peer in peers:
            peer.stop()
    for peer in peers:
        assert rejected(peer) == [], f"{peer.impl} in {peer.node} rejected packets:\n{peer.log_text()}"


@pytest.mark.parametrize("master_impl", ["pyvrrpd", "keepalived"])
def test_v2_password_authentication(lab, master_impl):
    """v2 PASS with a 9-character password (both truncate it to 8): the backup accepts the master's
    adverts, so it never takes over, and neither side logs a wrong password."""
    password = "s3cret99x"
    peers = [start(lab, OTHER[master_impl], "d2", "v2", auth_pass=password),
             start(lab, master_impl, "d1", "v2", auth_pass=password)]
    watch = AdvertWatch(lab)
    try:
        wait_master(lab, "d1", "d2", "v2")
        # d1's adverts for longer than the backup's Master_Down_Interval (3.61 s), and none from d2:
        # the backup accepted every one of them
        since = time.time()
        window = master_down_interval(2, 1.0, BACKUP_PRIO) + 0.2
        watch.wait(f"d1's adverts until {window:.2f} s on", sent_by("d1"), since=since + window, timeout=window + 5)
        assert watch.first(sent_by("d2"), since=since) is None, watch.summary(since)
        assert VIP4 in lab.addresses("d1") and VIP4 not in lab.addresses("d2")
    finally:
        for peer in peers:
            peer.stop()
    for peer in peers:
        assert rejected(peer) == [], f"{peer.impl} in {peer.node} rejected packets:\n{peer.log_text()}"
