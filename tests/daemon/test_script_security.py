"""enable_script_security: what keepalived refuses to run, pyvrrpd does not run either — with the same
reason --check-config gives, at the same place (config.build.host.unsafe_script)."""

from __future__ import annotations

import os
import textwrap

import pytest

from pyvrrpd.config.load import load
from pyvrrpd.daemon.notify import Notifier
from pyvrrpd.daemon.scripts import Command, refusal
from pyvrrpd.daemon.tracking import plan_tracking

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root owns the safe path; run as root")


@pytest.fixture
def scripts(tmp_path):
    """(a script in a world-writable directory, a script in a safe one)"""
    open_dir, safe_dir = tmp_path / "open", tmp_path / "safe"
    open_dir.mkdir(mode=0o777)
    open_dir.chmod(0o777)  # no sticky bit: anyone may replace the script
    safe_dir.mkdir(mode=0o755)
    paths = []
    for d in (open_dir, safe_dir):
        p = d / "s.sh"
        p.write_text("#!/bin/sh\ntrue\n")
        p.chmod(0o755)
        paths.append(p)
    return paths


def test_a_root_script_others_can_change_is_refused_only_with_script_security(scripts):
    insecure, safe = scripts
    why = refusal(Command((str(insecure),)), True)
    assert why == f"unsafe permissions for script {insecure} run as root: {insecure.parent} is writable by non-root users"
    assert refusal(Command((str(insecure),)), False) is None
    assert refusal(Command((str(safe),)), True) is None
    assert refusal(Command((str(insecure),), user="nobody", group="nogroup"), True) is None  # not root
    assert refusal(Command(("no-such-command-here",)), True) is None  # not found: the runner reports it
    assert refusal(Command((str(insecure),), user="no-such-user"), True) is None


CONF = """
global_defs {{
    {security}
    script_user root
}}
vrrp_script bad {{
    script "{insecure}"
}}
vrrp_script good {{
    script "{safe}"
}}
vrrp_sync_group G {{
    group {{
        VI_1
    }}
    notify {insecure}
}}
vrrp_instance VI_1 {{
    interface lan0
    virtual_router_id 51
    notify_master {insecure}
    notify_backup {safe}
    track_script {{
        bad
        good
    }}
    virtual_ipaddress {{
        198.51.100.1
    }}
}}
"""


def config(tmp_path, scripts, security: str):
    insecure, safe = scripts
    path = tmp_path / "k.conf"
    path.write_text(textwrap.dedent(CONF.format(security=security, insecure=insecure, safe=safe)))
    loaded = load(str(path))
    assert loaded.ok
    return loaded


def test_the_check_and_the_daemon_say_the_same(tmp_path, scripts):
    insecure, _ = scripts
    loaded = config(tmp_path, scripts, "enable_script_security")
    reason = f"unsafe permissions for script {insecure} run as root: {insecure.parent} is writable by non-root users"
    checked = [d.message for d in loaded.diagnostics if reason in d.message]
    assert checked and all("so the script is not run" in m for m in checked)
    plan = plan_tracking(loaded.config)
    assert set(plan.scripts) == {"good"}  # "bad" is dropped, and its track_script lines with it
    assert f"Disabling track script bad due to insecure: {reason}" in plan.notes
    notifier = Notifier.for_config(loaded.config)
    scripts_of = notifier.table.scripts
    assert scripts_of[("INSTANCE", "VI_1")].master is None and scripts_of[("INSTANCE", "VI_1")].backup is not None
    assert scripts_of[("GROUP", "G")].generic is None
    assert notifier.table.refused == (f"{reason}; enable_script_security is set, so it is not run",) * 2


def test_without_script_security_they_run(tmp_path, scripts):
    loaded = config(tmp_path, scripts, "")
    assert set(plan_tracking(loaded.config).scripts) == {"bad", "good"}
    assert Notifier.for_config(loaded.config).table.refused == ()
