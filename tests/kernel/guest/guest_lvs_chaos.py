"""A short LVS chaos schedule (tests/kernel/lvs_chaos.py) on the VM's real IPVS kernel: real servers
flapping, reloads with and without changes, kill -9 and SIGTERM with a new daemon, an ``ipvsadm -d``
behind the daemon's back. The table must settle to config x health after each event, and a sampler
must never miss an entry the model keeps. The long schedule is a documented command
(docs/reliability.md). PYVRRPD_LVS_CHAOS_SEED=N runs another seed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.kernel.lvs_chaos import KINDS, LvsChaos, schedule

SEED = int(os.environ.get("PYVRRPD_LVS_CHAOS_SEED", "159"))  # 159: every kind, the sorry server, MISC_CHECK
EVENTS = 11


def test_short_lvs_chaos_schedule_settles_to_config_times_health(tmp_path):
    assert {e.kind for e in schedule(159, EVENTS)} == set(KINDS)
    report = LvsChaos(SEED, EVENTS, tmp_path).run()
    print(report.text())
    out = os.environ.get("PYVRRPD_KERNEL_OUT")
    if out:  # the daemons' logs and the report go back to the host, next to the JUnit file
        (Path(out) / "guest_lvs_chaos-report.txt").write_text(report.text() + "\n")
        for log in tmp_path.glob("*.log"):
            shutil.copy(log, Path(out) / f"guest_lvs_chaos-{log.name}")
    assert report.ok, report.text()
