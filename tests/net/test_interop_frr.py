"""pyvrrpd and FRR 8.x vrrpd as VRRP peers on one LAN (namespace lab: d1 runs pyvrrpd, f1 zebra + vrrpd).

VRID 51, VIP 198.51.100.100, VRRPv3 at 1 s, IPv4 (test-environment.md §5, keepalived-facts.md §4.9). FRR
checks the v3 checksum with the IPv4 pseudo-header by default, as keepalived 2.2.7 does, so an election
that goes both ways is evidence that pyvrrpd's adverts are checksummed the same way:
1. FRR 200 vs pyvrrpd 150: FRR is Master, pyvrrpd stays backup (no VIP on d1);
2. FRR lowered to 100 with vtysh: pyvrrpd preempts Master_Down_Interval after FRR's last priority-200
   advert (VIP on d1), FRR goes Backup;
3. SIGTERM pyvrrpd (priority-0 advert): FRR is Master again Skew_Time later;
4. pyvrrpd back at priority 50, under FRR; `vrrp 51 shutdown` in FRR (a priority-0 advert): pyvrrpd
   takes over Skew_Time later, not Master_Down_Interval.
The times come from the advert stream on the bridge (lab.AdvertWatch), in bounds that tell the timers
apart at 1 s (see test_daemon_pair.py); "stays backup" is read from it too, not slept.
Afterwards FRR's debug log may show no invalid datagram and pyvrrpd's JSON log no rejected packet.

FRR has no foreground mode that suits us, so zebra and vrrpd daemonize (-d) inside f1 with their own
pathspace (-N <lab prefix>-f1: sockets, pid files, configs and logs under /var/run/frr/<pathspace>, which
the frr user can write); the fixture kills them by the PIDs in their pid files and removes that directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.net.lab import (
    EARLY,
    LATE,
    AdvertWatch,
    Lab,
    LabError,
    assert_between,
    master_down_interval,
    process_alive,
    sent_by,
    skew_time,
    start_pyvrrpd,
    vrrp_config,
    wait_for,
)
from tests.net.test_interop_keepalived import pyvrrpd_rejects

FRR_BIN = Path("/usr/lib/frr")
FRR_RUN = Path("/var/run/frr")

pytestmark = [
    pytest.mark.net,
    pytest.mark.interop,
    pytest.mark.skipif(not (FRR_BIN / "vrrpd").exists() or shutil.which("vtysh") is None,
                       reason="FRR (zebra, vrrpd, vtysh) is not installed"),
]

VRID, VIP4 = 51, "198.51.100.100"
MACVLAN = f"vrrp4-{VRID}"
FRR_PRIO, PYVRRPD_PRIO, FRR_LOWER_PRIO, PYVRRPD_LOWER_PRIO = 200, 150, 100, 50
# vrrpd's lines for packets it rejects: parse errors ("Bad VRRP checksum", "Bad version", ...) and
# instance checks (advertisement interval unequal, VRID mismatch, address owner) all say "Datagram invalid".
# (Its packet dumps under `debug vrrp protocol` print every "checksum", so that word alone is no error.)
FRR_REJECTS = re.compile(r"Datagram invalid|Bad VRRP checksum|Bad (version|type|authentication|IP address)")
FRR_DAEMONS = ("zebra", "vrrpd")


@dataclass
class Frr:
    """zebra + vrrpd in a lab node, driven with vtysh."""

    lab: Lab
    node: str
    pathspace: str
    rundir: Path

    def start(self, priority: int) -> None:
        """Create the macvlan vrrpd expects (it never creates links or addresses itself) and start both daemons."""
        for argv in (["ip", "link", "add", MACVLAN, "link", "lan0", "type", "macvlan", "mode", "bridge"],
                     ["ip", "link", "set", MACVLAN, "addrgenmode", "random"],  # not at `link add`: EAFNOSUPPORT
                     ["ip", "link", "set", MACVLAN, "address", f"00:00:5e:00:01:{VRID:02x}"],
                     ["ip", "addr", "add", f"{VIP4}/24", "dev", MACVLAN],
                     ["ip", "link", "set", MACVLAN, "up"],
                     ["sysctl", "-qw", "net.ipv4.conf.lan0.arp_ignore=1", f"net.ipv4.conf.{MACVLAN}.arp_ignore=1"]):
            self.lab.run(self.node, argv)
        (self.rundir / "zebra.conf").write_text(f"log file {self.rundir}/zebra.log\n")
        (self.rundir / "vrrpd.conf").write_text("\n".join([
            f"log file {self.log} debugging",
            "debug vrrp protocol",
            "interface lan0",
            f" vrrp {VRID} version 3",
            f" vrrp {VRID} priority {priority}",
            f" vrrp {VRID} advertisement-interval 1000",
            f" vrrp {VRID} ip {VIP4}",
        ]) + "\n")
        for daemon in FRR_DAEMONS:
            self.lab.run(self.node, [str(FRR_BIN / daemon), "-d", "-N", self.pathspace, "-P", "0",
                                     "-f", str(self.rundir / f"{daemon}.conf"),
                                     "-i", str(self.rundir / f"{daemon}.pid")])

    @property
    def log(self) -> Path:
        return self.rundir / "vrrpd.log"

    def vtysh(self, *commands: str) -> str:
        argv = ["vtysh", "-N", self.pathspace]
        for command in commands:
            argv += ["-c", command]
        return self.lab.run(self.node, argv).stdout

    def v4(self) -> dict:
        """The IPv4 half of `show vrrp json` for our VRID ({} while vrrpd is not answering yet)."""
        result = self.lab.run(self.node, ["vtysh", "-N", self.pathspace, "-c", f"show vrrp {VRID} json"],
                              check=False)
        try:
            routers = json.loads(result.stdout)
        except ValueError:
            return {}
        routers = routers if isinstance(routers, list) else [routers]
        return next((r["v4"] for r in routers if r.get("vrid") == VRID), {})

    def status(self) -> str | None:
        return self.v4().get("status")

    def set_priority(self, priority: int) -> None:
        self.vtysh("configure terminal", "interface lan0", f"vrrp {VRID} priority {priority}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """TERM the daemons by the PIDs in their pid files (if those still are our daemons), ~2 s, then KILL."""
        pids = []
        for daemon in FRR_DAEMONS:
            pid_file = self.rundir / f"{daemon}.pid"
            text = pid_file.read_text().strip() if pid_file.exists() else ""
            if not text.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{text}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline[0] == str(FRR_BIN / daemon).encode() and self.pathspace.encode() in cmdline:
                pids.append(int(text))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and any(process_alive(pid) for pid in pids):
                time.sleep(0.02)
            pids = [pid for pid in pids if process_alive(pid)]
            if not pids:
                break


@pytest.fixture
def lab(tmp_path) -> Iterator[Lab]:
    """pyvrrpd's director d1 (.11) and FRR's node f1 (.13); every process and namespace removed afterwards."""
    with Lab({"d1": 11, "f1": 13}, workdir=tmp_path) as lab:
        yield lab


@pytest.fixture
def frr(lab, tmp_path) -> Iterator[Frr]:
    """FRR's pathspace in f1; stops its daemons, keeps their logs in tmp_path and removes the run directory."""
    pathspace = f"{lab.prefix}-f1"
    rundir = FRR_RUN / pathspace
    if rundir.exists():
        raise LabError(f"{rundir} already exists, refusing to touch it")
    rundir.mkdir(parents=True)
    frr = Frr(lab=lab, node="f1", pathspace=pathspace, rundir=rundir)
    try:
        shutil.chown(rundir, "frr", "frr")
        yield frr
    finally:
        try:
            frr.stop()
        finally:
            for log in rundir.glob("*.log"):
                shutil.copy(log, tmp_path / f"frr-{log.name}")
            shutil.rmtree(rundir, ignore_errors=True)


def test_election_with_frr_vrrpd_both_ways(lab, frr):
    watch = AdvertWatch(lab)
    frr.start(FRR_PRIO)
    # FRR starts in Backup and waits its Master_Down_Interval (3.21 s) before it becomes Master
    wait_for(lambda: frr.status() == "Master", timeout=10, interval=0.1, what="FRR vrrpd to be Master")

    # 1. pyvrrpd (150) comes up as backup under FRR (200) and stays there past its Master_Down_Interval
    peer = start_pyvrrpd(lab, "d1", pyvrrpd_config(PYVRRPD_PRIO))
    peers = [peer]
    try:
        wait_for(lambda: "Entering BACKUP STATE" in peer.log_text(), timeout=5, what="pyvrrpd BACKUP")
        transitions = frr.v4()["stats"]["transitions"]
        adverts_for(watch, "f1", master_down_interval(3, 1.0, PYVRRPD_PRIO) + 0.2)  # it heard FRR all along
        assert watch.first(sent_by("d1"), since=0) is None, watch.summary(0)
        assert VIP4 not in lab.addresses("d1"), peer.log_text()
        v4 = frr.v4()
        assert v4["status"] == "Master" and v4["stats"]["transitions"] == transitions, v4

        # 2. FRR lowered to 100: pyvrrpd preempts when its down timer, last restarted by FRR's last
        # priority-200 advert, expires (lower adverts do not restart it); FRR hears 150 and goes Backup
        since = time.time()
        frr.set_priority(FRR_LOWER_PRIO)
        takeover = watch.wait("pyvrrpd's first advert", sent_by("d1"), since=since, timeout=8)
        last = watch.last(sent_by("f1", FRR_PRIO), before=takeover.t)
        assert last is not None, watch.summary(since - 2)
        down = master_down_interval(3, 1.0, PYVRRPD_PRIO)
        assert_between(f"FRR 200 -> 100: pyvrrpd preempts after FRR's last priority-200 advert "
                       f"(Master_Down_Interval {down:.3f})", takeover.t - last.t, down - EARLY, down + LATE)
        wait_for(lambda: VIP4 in lab.addresses("d1"), timeout=5, interval=0.1, what="pyvrrpd to take the VIP")
        wait_for(lambda: frr.status() == "Backup", timeout=5, interval=0.1, what="FRR vrrpd to go Backup")
        assert "Entering MASTER STATE" in peer.log_text()
        v4 = frr.v4()
        assert v4["effectivePriority"] == FRR_LOWER_PRIO, v4
        since = adverts_for(watch, "d1", master_down_interval(3, 1.0, FRR_LOWER_PRIO) + 0.2)
        assert watch.first(sent_by("f1"), since=since) is None, watch.summary(since)  # FRR accepted them all
        assert VIP4 in lab.addresses("d1"), peer.log_text()
        assert frr.v4()["status"] == "Backup" and frr.v4()["stats"]["adverRx"] >= v4["stats"]["adverRx"] + 3

        # 3. SIGTERM pyvrrpd: its priority-0 advert makes FRR Master after Skew_Time
        since = time.time()
        peer.stop()
        assert peer.process.returncode == 0, peer.log_text()
        assert VIP4 not in lab.addresses("d1")
        time_takeover(watch, "d1", "f1", FRR_LOWER_PRIO, since, "SIGTERM pyvrrpd: FRR")
        wait_for(lambda: frr.status() == "Master", timeout=5, interval=0.1, what="FRR vrrpd Master again")

        # 4. pyvrrpd (50) under FRR (100); FRR shuts its router down with a priority-0 advert:
        # pyvrrpd takes over after its Skew_Time
        peer = start_pyvrrpd(lab, "d1", pyvrrpd_config(PYVRRPD_LOWER_PRIO))
        peers.append(peer)
        wait_for(lambda: "Entering BACKUP STATE" in peer.log_text(), timeout=5, what="pyvrrpd BACKUP")
        since = time.time()
        frr.vtysh("configure terminal", "interface lan0", f"vrrp {VRID} shutdown")
        time_takeover(watch, "f1", "d1", PYVRRPD_LOWER_PRIO, since, "FRR shut down: pyvrrpd")
        wait_for(lambda: VIP4 in lab.addresses("d1"), timeout=5, interval=0.1, what="pyvrrpd to take the VIP")
    finally:
        for peer in peers:
            peer.stop()
    frr_log = frr.log_text()
    assert "Adver_Timer expired" in frr_log, "FRR's debug log is not being written"
    assert [line for line in frr_log.splitlines() if FRR_REJECTS.search(line)] == [], frr_log
    for peer in peers:
        assert [line for line in peer.log_text().splitlines() if pyvrrpd_rejects(line)] == [], peer.log_text()


def pyvrrpd_config(priority: int) -> str:
    return vrrp_config("d1", state="BACKUP", priority=priority, version=3, advert_int=1.0, vip=f"{VIP4}/32",
                       vrid=VRID)


def adverts_for(watch: AdvertWatch, node: str, seconds: float) -> float:
    """Wait (on the wire, not the clock) until `node` has advertised for `seconds` from now; return now."""
    since = time.time()
    watch.wait(f"{node}'s adverts until {seconds:.2f} s on", sent_by(node), since=since + seconds,
               timeout=seconds + 5)
    return since


def time_takeover(watch: AdvertWatch, master: str, backup: str, priority: int, since: float, what: str) -> None:
    """`backup` (at `priority`) took over Skew_Time after `master`'s priority-0 advert (sent after `since`)."""
    goodbye = watch.wait(f"{master}'s priority-0 advert", sent_by(master, 0), since=since, timeout=5)
    takeover = watch.wait(f"{backup}'s first advert", sent_by(backup), since=goodbye.t, timeout=8)
    skew = skew_time(3, 1.0, priority)
    assert_between(f"{what} takes over after the priority-0 advert (Skew_Time {skew:.3f})",
                   takeover.t - goodbye.t, skew - EARLY, skew + LATE)
