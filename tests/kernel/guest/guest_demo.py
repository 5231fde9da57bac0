"""`./scripts/demo` end to end, inside the kernel tests' VM (which has IPVS): the whole product.

The demo's lab part (`--native`: no set-up, no config check, run here) builds the director pair with VRRP
and LVS in namespaces, crashes and restores a real server and the master director, and ends with one
`DEMO-SUMMARY {json}` line; this test checks that line. `--quick` shortens the pauses between steps.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DEMO_TIMEOUT = 400  # seconds; under software emulation on a loaded host a Python start can take 30 s
MASTER_DOWN = 3 * 0.2 + (256 - 100) / 256 * 0.2  # d2's Master_Down_Interval in conf/demo (v3, 200 ms)


def summary(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("DEMO-SUMMARY ")]
    assert lines, "the demo printed no DEMO-SUMMARY line"
    return json.loads(lines[-1].split(" ", 1)[1])


def test_demo_runs_end_to_end():
    proc = subprocess.run([str(ROOT / "scripts" / "demo"), "--native", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=DEMO_TIMEOUT)
    print(proc.stdout)
    context = f"exit {proc.returncode}; output:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    s = summary(proc.stdout)
    assert "error" not in s, context
    assert s["ipvs"] == "native" and s["cleanup"], context
    # both real servers answered through both services (LVS-NAT and LVS-DR)
    assert s["steady_both_rs"], context
    # a crashed real server left the IPVS table; the client kept getting answers, after it only from r1
    assert s["rs_down_removed_s"] > 0 and s["rs_down_client_ok"] > 0 and s["rs_down_only_r1_after"], context
    assert s["rs_up_readded_s"] > 0, context
    # the backup took over no earlier than Master_Down_Interval after the master's last advert (which came
    # at most one interval before the kill), and the client got answers from it
    assert MASTER_DOWN - 0.2 - 0.02 <= s["takeover_s"] <= MASTER_DOWN + 5.0, context
    assert s["after_takeover_ok"] > 0 and s["takeover_client_recovered_s"] > 0, context
    # the restored master preempted and adopted its IPVS table; a SIGTERM'd one removed its table
    assert s["restored_master"] == "d1" and s["restored_table"], context
    assert s["d1_exit"] == 0 and s["d2_exit"] == 0 and s["d1_table_after_stop"] == [], context
    assert s["ok"] and proc.returncode == 0, context


def test_summary_parser_rejects_output_without_a_summary():
    for garbage in ("", "DEMO-SUMMARY", "demo failed\n", "\x00\xff"):
        try:
            summary(garbage)
        except (AssertionError, ValueError, IndexError):
            continue
        raise AssertionError(f"accepted {garbage!r}")
