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


def run(conf: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--net", PYVRRPD, "-f", str(conf), "--log-format", "json", *flags],
                          capture_output=True, text=True, timeout=30, env={**os.environ, "NO_COLOR": "1"})


def test_config_errors_exit_1_with_diagnostics(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("vrrp_instance VI_1 {\n    interface lan0\n    priority 100\n}\n")
    result = run(conf)
    assert result.returncode == 1
    assert f"{conf}:1:" in result.stderr and "virtual_router_id" in result.stderr


ROUTE = """vrrp_instance VI_1 {
    interface lan0
    virtual_router_id 51
    virtual_ipaddress {
        198.51.100.100
    }
    virtual_routes {
        203.0.113.0/24 dev lan0 realms 5
    }
}
"""


def test_valid_keepalived_config_that_pyvrrpd_cannot_run_exits_1_like_the_check(tmp_path):
    conf = tmp_path / "route.conf"
    conf.write_text(ROUTE)
    diagnostic = (f"{conf}:8:9: error: vrrp_instance VI_1: virtual_routes '203.0.113.0/24 dev lan0 realms 5': "
                  "route: unsupported word 'realms'")
    result = run(conf)
    assert result.returncode == 1
    assert diagnostic in result.stderr.splitlines()
    assert result.stderr.endswith(f"{conf}: 1 error(s); not starting\n")
    check = subprocess.run([PYVRRPD, "--check-config", "--no-host-checks", "-f", str(conf)], capture_output=True,
                           text=True, timeout=30, env={**os.environ, "NO_COLOR": "1"})
    assert check.returncode == 1 and diagnostic in check.stderr.splitlines()


def test_ah_authentication_is_refused(tmp_path):
    conf = tmp_path / "ah.conf"
    conf.write_text(ROUTE.replace(" realms 5", "").replace(
        "    virtual_ipaddress", "    authentication {\n        auth_type AH\n        auth_pass secret\n    }\n"
        "    virtual_ipaddress"))
    result = run(conf)
    assert result.returncode == 1
    assert f"{conf}:" in result.stderr and "AH authentication" in result.stderr
    assert result.stderr.endswith("; not starting\n")


def test_vrrp_only_and_checkers_only_exclude_each_other(tmp_path):
    conf = tmp_path / "ok.conf"
    conf.write_text(ROUTE.replace(" realms 5", ""))
    result = run(conf, "-C", "-P")
    assert result.returncode == 1
    assert result.stderr == "pyvrrpd: -P/--vrrp and -C/--check exclude each other\n"
