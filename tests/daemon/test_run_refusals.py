"""`pyvrrpd -f FILE` refuses to start, before touching the network, on a config it cannot run.

Should a refusal ever go missing, the daemon must not run in the host's network namespace: it is
started in a new, empty one (`unshare --net`, root only); without root the test is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PYVRRPD = str(Path(sys.executable).with_name("pyvrrpd"))

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare for an empty network namespace")


def run(conf: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--net", PYVRRPD, "-f", str(conf), "--log-format", "json"],
                          capture_output=True, text=True, timeout=30, env={**os.environ, "NO_COLOR": "1"})


def test_config_errors_exit_1_with_diagnostics(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("vrrp_instance VI_1 {\n    interface lan0\n    priority 100\n}\n")
    result = run(conf)
    assert result.returncode == 1
    assert f"{conf}:1:" in result.stderr and "virtual_router_id" in result.stderr


def test_valid_keepalived_config_that_pyvrrpd_cannot_run_exits_1(tmp_path):
    conf = tmp_path / "ah.conf"
    conf.write_text("""vrrp_instance VI_1 {
    interface lan0
    virtual_router_id 51
    authentication {
        auth_type AH
        auth_pass secret
    }
    virtual_ipaddress {
        198.51.100.100
    }
}
""")
    result = run(conf)
    assert result.returncode == 1
    assert "VI_1: AH authentication is not supported; not starting" in result.stderr
