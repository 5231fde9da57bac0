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
    """A vrrp_script `name` that succeeds while `tmp/name.ok` exists; (that flag file, the block)."""
    flag = tmp / f"{name}.ok"
    flag.touch()
    block = f"""
vrrp_script {name} {{
    script "/usr/bin/test -e {flag}"
    interval 1
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
