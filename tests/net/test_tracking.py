"""Tracking, sync groups and notifications with real daemons in the namespace lab (d1 = .11, d2 = .12).

Who is master is read from the kernel (who holds the VIP), why from the daemons' JSON logs; bounded
waits only. VRRPv3 at 0.1 s keeps every takeover well under a second: Master_Down_Interval is
0.3 s + Skew_Time (0.04 s at priority 150, 0.06 s at 100).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.net.lab import Lab, start_keepalived, wait_for
from tests.net.test_daemon_pair import MARGIN, PYVRRPD, V3, VIP4, Daemon, holds, wait_master

pytestmark = pytest.mark.net

VIP_B = "203.0.113.100"  # the second instance's VIP, on lan1
TAKEOVER = V3.master_down(100) + MARGIN
START = 15.0  # a daemon's start on a loaded machine (Python imports), then its election


def conf(node: str, priority: int, *, track: str = "", top: str = "", global_extra: str = "",
         second: str | None = None, group: str | None = None, extra: str = "") -> str:
    """VI_1 on lan0 (VRID 51, VIP4) with `track` lines; with `second`, VI_2 on lan1 (VRID 52, VIP_B) with
    those lines; with `group`, both in vrrp_sync_group G with those lines."""
    out = f"""
global_defs {{
    router_id {node}
    vrrp_version 3
    {global_extra}
}}
{top}
vrrp_instance VI_1 {{
    state BACKUP
    interface lan0
    virtual_router_id 51
    priority {priority}
    advert_int 0.1
    {track}
    {extra}
    virtual_ipaddress {{
        {VIP4}/32 dev lan0
    }}
}}
"""
    if second is not None:
        out += f"""
vrrp_instance VI_2 {{
    state BACKUP
    interface lan1
    virtual_router_id 52
    priority {priority}
    advert_int 0.1
    {second}
    virtual_ipaddress {{
        {VIP_B}/32 dev lan1
    }}
}}
"""
    if group is not None:
        out += f"""
vrrp_sync_group G {{
    group {{
        VI_1
        VI_2
    }}
    {group}
}}
"""
    return out


def script_file(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def file_check(tmp: Path, name: str, *, weight: int | None = None, rise: int = 1, fall: int = 1) -> tuple[Path, str]:
    """A vrrp_script `name` that succeeds while `tmp/name.ok` exists; (that flag file, the block). Its
    timeout is 5 s, not keepalived's default (the interval): once a suite run on a loaded machine saw an
    unexplained FAULT at start-up, most likely the first run timing out; these tests are about the states."""
    flag = tmp / f"{name}.ok"
    flag.touch()
    block = f"""
vrrp_script {name} {{
    script "/usr/bin/test -e {flag}"
    interval 1
    timeout 5
    {'' if weight is None else f'weight {weight}'}
    rise {rise}
    fall {fall}
}}
"""
    return flag, block


def elect(lab: Lab, conf1: str, conf2: str, tag: str = "a", vip: str = VIP4) -> tuple[Daemon, Daemon]:
    """d2 first, master alone; then d1 (the higher priority) preempts it. Returns (d1, d2) once d2 is back
    in BACKUP, so later log marks see no start-up race (both master for a moment)."""
    d2 = Daemon(lab, "d2", conf2, tag)
    wait_master(lab, "d2", vip, START, d2)
    mark = d2.mark()
    d1 = Daemon(lab, "d1", conf1, tag)
    wait_master(lab, "d1", vip, START, d1, d2)
    d2.wait_log("Entering BACKUP STATE", since=mark, reason="higher_priority")
    return d1, d2


@pytest.fixture
def lab2(tmp_path):
    """The two-node lab with a second segment: lan1, 203.0.113.H/24."""
    with Lab({"d1": 11, "d2": 12}, workdir=tmp_path) as lab:
        lab.add_segment("lan1", "203.0.113")
        yield lab


def test_a_failing_script_lowers_the_priority_and_the_peer_preempts(lab, tmp_path):
    flag, block = file_check(tmp_path, "chk", weight=-60, fall=2)
    d1, d2 = elect(lab, conf("d1", 150, top=block, track="track_script {\n chk\n}"), conf("d2", 100))
    d1.wait_log("VRRP_Script(chk) succeeded")
    assert not d1.find("has no result yet")  # never in the log: keepalived's silent INIT

    mark1, mark2 = d1.mark(), d2.mark()
    flag.unlink()
    wait_master(lab, "d2", VIP4, TAKEOVER + 1, d1, d2)
    assert d1.wait_log("Changing effective priority from 150 to 90", since=mark1)
    assert d2.wait_log("Entering MASTER STATE", since=mark2)["reason"] == "preempt"
    # fall 2: the priority changed after the second failure, not the first
    changed = d1.find("VRRP_Script(chk) failed", since=mark1)
    assert changed and len(d1.find("Script `chk` now returning 1", since=mark1)) == 1

    mark1 = d1.mark()
    flag.touch()
    wait_master(lab, "d1", VIP4, TAKEOVER + 1, d1, d2)
    assert d1.wait_log("Changing effective priority from 90 to 150", since=mark1)
    assert d1.stop() == 0 and d2.stop() == 0


def test_an_unweighted_script_failing_is_fault_with_priority_zero(lab, tmp_path):
    flag, block = file_check(tmp_path, "chk")
    d1, d2 = elect(lab, conf("d1", 150, top=block, track="track_script {\n chk\n}"), conf("d2", 100))
    mark1, mark2 = d1.mark(), d2.mark()
    flag.unlink()
    wait_master(lab, "d2", VIP4, TAKEOVER, d1, d2)
    assert d1.wait_log("Entering FAULT STATE", since=mark1)
    assert d1.find("sent 0 priority", since=mark1)
    # priority 0 → the backup takes over after Skew_Time, not Master_Down_Interval
    assert d2.wait_log("Entering MASTER STATE", since=mark2)["reason"] == "priority_zero"
    mark1 = d1.mark()
    flag.touch()
    d1.wait_log("Entering BACKUP STATE", since=mark1)
    wait_master(lab, "d1", VIP4, TAKEOVER + 1, d1, d2)  # and preempts again
    assert d1.stop() == 0 and d2.stop() == 0


def test_link_down_on_the_master_is_fault_and_link_up_brings_it_back(lab):
    d1, d2 = elect(lab, conf("d1", 150), conf("d2", 100))
    mark1, mark2 = d1.mark(), d2.mark()
    lab.run("d1", ["ip", "link", "set", "lan0", "down"])
    d1.wait_log("Entering FAULT STATE", since=mark1)
    assert d1.find("sent 0 priority", since=mark1)  # tried: the link it would go out on is down
    # So the backup hears nothing more and takes over after its Master_Down_Interval.
    wait_master(lab, "d2", VIP4, TAKEOVER, d1, d2)
    assert d2.wait_log("Entering MASTER STATE", since=mark2)["reason"] == "master_down"
    assert not holds(lab, "d1", VIP4)
    mark1 = d1.mark()
    lab.run("d1", ["ip", "link", "set", "lan0", "up"])
    assert d1.wait_log("Entering BACKUP STATE", since=mark1)["reason"] == "fault_cleared"
    wait_master(lab, "d1", VIP4, TAKEOVER, d1, d2)  # preempts: priority 150 over 100
    assert d1.wait_log("Entering MASTER STATE", since=mark1)["reason"] == "preempt"
    assert d1.stop() == 0 and d2.stop() == 0


def test_a_tracked_interface_going_down_faults_the_master_and_priority_zero_hands_over(lab2):
    lab = lab2
    d1, d2 = elect(lab, conf("d1", 150, track="track_interface {\n lan1\n}"), conf("d2", 100))
    mark1, mark2 = d1.mark(), d2.mark()
    lab.run("d1", ["ip", "link", "set", "lan1", "down"])
    wait_master(lab, "d2", VIP4, TAKEOVER, d1, d2)
    assert d1.wait_log("Entering FAULT STATE", since=mark1)
    assert d1.find("sent 0 priority", since=mark1)
    assert d2.wait_log("Entering MASTER STATE", since=mark2)["reason"] == "priority_zero"
    mark1 = d1.mark()
    lab.run("d1", ["ip", "link", "set", "lan1", "up"])
    wait_master(lab, "d1", VIP4, TAKEOVER, d1, d2)
    assert d1.wait_log("Entering BACKUP STATE", since=mark1)["reason"] == "fault_cleared"
    assert d1.stop() == 0 and d2.stop() == 0


@pytest.mark.parametrize("peer", ["pyvrrpd", "keepalived"])
def test_a_sync_group_moves_together(lab2, tmp_path, peer):
    """VI_1 on lan0 and VI_2 on lan1 in sync group G: VI_1's tracked script failing on the master
    moves both instances to the peer; recovering moves both back."""
    lab = lab2
    flag, block = file_check(tmp_path, "chk")
    both = {"second": "", "group": ""}
    conf1 = conf("d1", 150, top=block, track="track_script {\n chk\n}", **both)
    conf2 = conf("d2", 100, **both)
    if peer == "keepalived":
        keepalived = start_keepalived(lab, "d2", conf2)
        wait_master(lab, "d2", VIP4, START)
        wait_master(lab, "d2", VIP_B, START)
        d1 = Daemon(lab, "d1", conf1, "a")
    else:
        d1, d2 = elect(lab, conf1, conf2)
    try:
        wait_master(lab, "d1", VIP4, START, d1)
        wait_master(lab, "d1", VIP_B, START, d1)
        mark = d1.mark()
        flag.unlink()
        wait_master(lab, "d2", VIP4, TAKEOVER + 1, d1)
        wait_master(lab, "d2", VIP_B, TAKEOVER, d1)
        assert d1.wait_log("Entering FAULT STATE", since=mark, instance="VI_2")
        assert d1.find("VRRP_Group(G) Syncing instances to FAULT state", since=mark)
        assert len(d1.find("sent 0 priority", since=mark)) == 2
        mark = d1.mark()
        flag.touch()
        wait_master(lab, "d1", VIP4, TAKEOVER + 1, d1)
        wait_master(lab, "d1", VIP_B, TAKEOVER, d1)
        assert d1.find("VRRP_Group(G) Syncing instances to MASTER state", since=mark)
        assert d1.stop() == 0
    finally:
        if peer == "keepalived":
            keepalived.stop()
    if peer == "pyvrrpd":
        assert d2.stop() == 0


class FifoReader:
    """Reads a FIFO the daemon creates, from this process: lines written before the daemon stops (and
    removes the FIFO) stay readable on our descriptor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.data = b""

    def lines(self) -> list[str]:
        if self.fd is None and self.path.exists() and stat.S_ISFIFO(self.path.stat().st_mode):
            self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        if self.fd is not None:
            try:
                while chunk := os.read(self.fd, 65536):
                    self.data += chunk
            except BlockingIOError:
                pass
        return self.data.decode().splitlines(keepends=True)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def test_notify_scripts_and_the_fifo_follow_master_fault_backup_stop(lab, tmp_path):
    out = tmp_path / "notify.out"
    rec = script_file(tmp_path / "rec.sh", f'echo "$*" >> {out}\n')
    fifo = tmp_path / "vrrp.fifo"
    flag, block = file_check(tmp_path, "chk")
    notify = "\n".join(f'notify_{state} "{rec} {state}-arg"' for state in ("master", "backup", "fault", "stop"))
    conf1 = conf("d1", 100, top=block, track="track_script {\n chk\n}", extra=f"{notify}\nnotify {rec}",
                 global_extra=f"vrrp_notify_fifo {fifo}")
    reader = FifoReader(fifo)
    try:
        d1 = Daemon(lab, "d1", conf1, "a")
        wait_for(lambda: reader.lines(), timeout=START, what="the first FIFO line")
        wait_master(lab, "d1", VIP4, START, d1)
        mark = d1.mark()
        flag.unlink()
        d1.wait_log("Entering FAULT STATE", since=mark)
        d2 = Daemon(lab, "d2", conf("d2", 150), "a")
        wait_master(lab, "d2", VIP4, START, d2)
        mark = d1.mark()
        flag.touch()
        d1.wait_log("Entering BACKUP STATE", since=mark)
        assert d1.stop() == 0
        wanted = ["BACKUP", "MASTER", "FAULT", "BACKUP", "STOP"]
        lines = wait_for(lambda: len(reader.lines()) >= 5 and reader.lines(), timeout=5, what="5 FIFO lines")
        assert lines == [f'INSTANCE "VI_1" {state} 100\n' for state in wanted], \
            [e for e in d1.events() if "chk" in str(e) or "STATE" in str(e)]  # byte-exact
        expected = []
        for state in wanted:
            expected += [f"{state.lower()}-arg", f"INSTANCE VI_1 {state} 100"]  # specific, then generic
        assert out.read_text().splitlines() == expected
        assert not fifo.exists()  # created by the daemon, removed at stop
        assert d2.stop() == 0
    finally:
        reader.close()


SMTP_SINK = """
import socket, sys
out, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(5)
srv.settimeout(60)
print("ready", flush=True)
conn, _ = srv.accept()
conn.settimeout(10)
f = conn.makefile("rb")
def reply(text):
    conn.sendall(text.encode() + b"\\r\\n")
reply("220 sink")
with open(out, "w") as log:
    while True:
        line = f.readline().decode(errors="replace").rstrip("\\r\\n")
        if not line:
            break
        log.write(line + "\\n")
        word = line.split()[0].upper()
        if word == "DATA":
            reply("354 go on")
            while (body := f.readline().decode(errors="replace").rstrip("\\r\\n")) != ".":
                log.write(body + "\\n")
            reply("250 queued")
        elif word == "QUIT":
            reply("221 bye")
            break
        else:
            reply("250 ok")
"""


def test_an_smtp_alert_reaches_a_sink_on_loopback(lab, tmp_path):
    sink, mail = tmp_path / "sink.py", tmp_path / "mail.txt"
    sink.write_text(SMTP_SINK)
    ready = tmp_path / "sink.log"
    lab.spawn("d1", [sys.executable, str(sink), str(mail), "2525"], ready)
    wait_for(lambda: ready.exists() and "ready" in ready.read_text(), timeout=10, what="the SMTP sink")
    smtp = ("notification_email {\n ops@example.org\n}\nnotification_email_from ka@d1.example.org\n"
            "smtp_server 127.0.0.1 2525\nsmtp_helo_name d1.example.org\nsmtp_connect_timeout 5")
    d1 = Daemon(lab, "d1", conf("d1", 150, global_extra=smtp, extra="smtp_alert"), "a")
    # alone, it becomes master: BACKUP is mailed first, MASTER next; the sink takes the first mail
    wait_master(lab, "d1", VIP4, START, d1)
    text = wait_for(lambda: mail.exists() and "QUIT" in mail.read_text() and mail.read_text(), timeout=START,
                    what="a mail in the sink")
    lines = text.splitlines()
    assert lines[:4] == ["HELO d1.example.org", "MAIL FROM:<ka@d1.example.org>", "RCPT TO:<ops@example.org>", "DATA"]
    assert "Subject: [d1] VRRP Instance VI_1 - Entering BACKUP state" in lines
    assert "=> VRRP Instance is no longer owning VRRP VIPs <=" in lines
    assert d1.stop() == 0
    d1.wait_log("SMTP alert successfully sent.")


WEB_CHECK = '/usr/bin/curl -sf -o /dev/null --max-time 1 http://127.0.0.1:8080/'


def test_the_seed_scenario_a_web_check_moves_the_vip(lab, tmp_path):
    """A web server on each director and a vrrp_script that checks it: stopping it on the master moves
    the VIP to the backup; starting it again moves the VIP back."""
    def web(node: str, tag: str) -> subprocess.Popen:
        root = tmp_path / f"www-{node}"
        root.mkdir(exist_ok=True)
        (root / "index.html").write_text(f"{node}\n")
        proc = lab.spawn(node, [sys.executable, "-m", "http.server", "8080", "--bind", "127.0.0.1",
                                "--directory", str(root)], tmp_path / f"web-{node}-{tag}.log")
        wait_for(lambda: lab.run(node, WEB_CHECK.split(), check=False).returncode == 0, timeout=10,
                 what=f"the web server in {node}")
        return proc

    block = f"""
vrrp_script chk_web {{
    script "{WEB_CHECK}"
    interval 1
    timeout 2
    fall 2
    rise 2
}}
"""
    web1, _ = web("d1", "a"), web("d2", "a")
    track = "track_script {\n chk_web\n}"
    d1, d2 = elect(lab, conf("d1", 150, top=block, track=track), conf("d2", 100, top=block, track=track))
    mark = d1.mark()
    web1.terminate()
    web1.wait(timeout=5)
    wait_master(lab, "d2", VIP4, 2 + 2 + TAKEOVER, d1, d2)  # two failed checks, then priority 0
    assert d1.wait_log("Entering FAULT STATE", since=mark)
    mark = d1.mark()
    web("d1", "b")
    wait_master(lab, "d1", VIP4, 2 + 2 + TAKEOVER, d1, d2)  # two good checks, then preemption
    assert d1.wait_log("VRRP_Script(chk_web) succeeded", since=mark)
    assert d1.stop() == 0 and d2.stop() == 0


def test_an_insecure_script_is_refused_and_reported(lab, tmp_path):
    """enable_script_security: a notify script in a directory anyone may write to is not run, and both
    --check-config and the daemon say which and why; the other scripts run."""
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    bad_out, good_out = tmp_path / "bad.out", tmp_path / "good.out"
    bad = script_file(open_dir / "bad.sh", f'echo "$*" >> {bad_out}\n')
    good = script_file(tmp_path / "good.sh", f'echo "$*" >> {good_out}\n')
    text = conf("d1", 150, global_extra="enable_script_security\nscript_user root",
                extra=f"notify_master {bad}\nnotify {good}")
    reason = f"unsafe permissions for script {bad} run as root: {open_dir} is writable by non-root users"
    conf_file = tmp_path / "secure.conf"
    conf_file.write_text(text)
    check = subprocess.run([PYVRRPD, "--check-config", "-f", str(conf_file)], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0
    assert f"{conf_file}:" in check.stdout + check.stderr
    assert f"{reason}; enable_script_security is set, so the script is not run" in check.stdout + check.stderr
    d1 = Daemon(lab, "d1", text, "a")
    wait_master(lab, "d1", VIP4, START, d1)
    assert d1.wait_log(f"{reason}; enable_script_security is set, so it is not run")
    wait_for(lambda: good_out.exists() and "INSTANCE VI_1 MASTER 150" in good_out.read_text(), timeout=10,
             what="the generic notify script")
    assert d1.stop() == 0
    assert not bad_out.exists()
