"""`pyvrrpd --check-config` as an operator runs it: output format, exit codes, hostile inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def check(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pyvrrpd", "--no-host-checks", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    )


def write(tmp_path: Path, text: str, name: str = "keepalived.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """\
global_defs {
    router_id d1
}
vrrp_instance VI_1 {
    interface lan0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        198.51.100.100/32
    }
}
"""


def test_good_config_exits_0(tmp_path):
    proc = check("--check-config", "-f", str(write(tmp_path, GOOD)))
    assert proc.returncode == 0, proc.stderr
    assert "OK: 0 error(s)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_keepalived_spelling_t(tmp_path):
    proc = check("-t", "-f", str(write(tmp_path, GOOD)))
    assert proc.returncode == 0


def test_every_problem_with_file_line_col_and_caret(tmp_path):
    path = write(tmp_path, GOOD.replace("priority 150", "priorty 150").replace(
        "virtual_router_id 51", "virtual_router_id 300"))
    proc = check("--check-config", "-f", str(path))
    assert proc.returncode == 1
    err = proc.stderr
    assert f"{path}:7:5: warning: " in err and "priorty" in err and "priority" in err  # suggestion
    assert f"{path}:6:" in err and ": error: " in err
    assert "    ^" in err  # caret line
    assert "FAILED: 1 error(s)" in err


def test_include_chain_is_shown(tmp_path):
    (tmp_path / "conf.d").mkdir()
    write(tmp_path / "conf.d", "vrrp_instance VI_2 {\n    virtual_router_id 999\n}\n", "bad.conf")
    main = write(tmp_path, GOOD + "include conf.d/*.conf\n")
    proc = check("--check-config", "-f", str(main))
    assert proc.returncode == 1
    assert "conf.d/bad.conf:2:" in proc.stderr
    assert f"included from {main}:13" in proc.stderr


def test_json_is_the_only_stdout(tmp_path):
    path = write(tmp_path, GOOD.replace("virtual_router_id 51", "virtual_router_id 0"))
    proc = check("--check-config", "--json", "-f", str(path))
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    d = data["diagnostics"][0]
    assert set(d) == {"file", "line", "col", "severity", "message"}
    assert any(x["severity"] == "error" and x["line"] == 6 for x in data["diagnostics"])


def test_strict_makes_warnings_errors(tmp_path):
    path = write(tmp_path, GOOD.replace("priority 150", "priority 150\n    bogus_keyword 1"))
    assert check("--check-config", "-f", str(path)).returncode == 0
    proc = check("--check-config", "--strict", "-f", str(path))
    assert proc.returncode == 1
    assert "error: unknown keyword 'bogus_keyword'" in proc.stderr.lower() or "bogus_keyword" in proc.stderr


def test_dump_prints_the_effective_config(tmp_path):
    text = "$VRID=51\n@pyvrrpd-test $PRIO=200\n" + GOOD.replace("virtual_router_id 51", "virtual_router_id $VRID")
    text = text.replace("priority 150", "priority ${PRIO}")
    path = write(tmp_path, text.replace("${PRIO}", "150"))
    proc = check("--check-config", "--dump", "-i", "pyvrrpd-test", "-f", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "virtual_router_id 51" in proc.stdout
    assert "$VRID" not in proc.stdout


@pytest.mark.parametrize("make", ["missing", "directory", "binary", "empty-ok", "nul-line"])
def test_hostile_files_give_a_diagnostic_not_a_traceback(tmp_path, make):
    path = tmp_path / "x.conf"
    if make == "directory":
        path.mkdir()
    elif make == "binary":
        path.write_bytes(bytes(range(256)) * 64)
    elif make == "empty-ok":
        path.write_text("")
    elif make == "nul-line":
        path.write_bytes(GOOD.encode() + b"priority\x00 100\n")
    proc = check("--check-config", "-f", str(path))
    assert "Traceback" not in proc.stderr
    if make == "empty-ok":
        assert proc.returncode == 0
    elif make == "nul-line":
        assert "NUL" in proc.stderr
    else:
        assert proc.returncode == 1
        assert f"{path}" in proc.stderr


def test_huge_file_is_refused_quickly(tmp_path):
    path = tmp_path / "huge.conf"
    with open(path, "wb") as f:
        f.truncate(100 * 1024 * 1024)  # 100 MB (sparse)
    proc = check("--check-config", "-f", str(path), timeout=30)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr


def test_ten_thousand_nested_blocks(tmp_path):
    path = write(tmp_path, "vrrp_instance VI {\n" * 10_000 + "}\n" * 10_000)
    proc = check("--check-config", "-f", str(path), timeout=60)
    assert proc.returncode in (0, 1)
    assert "Traceback" not in proc.stderr
    assert "RecursionError" not in proc.stderr


def test_self_referencing_definition_is_an_error_not_a_hang(tmp_path):
    path = write(tmp_path, "$IF=$IF\n" + GOOD.replace("interface lan0", "interface $IF"))
    proc = check("--check-config", "-f", str(path), timeout=20)
    assert proc.returncode == 1
    assert "$IF" in proc.stderr or "IF" in proc.stderr


def test_every_shipped_example_is_clean():
    for conf in [ROOT / "conf" / "keepalived.conf.example", *sorted((ROOT / "conf" / "examples").glob("*.conf"))]:
        proc = check("--check-config", "-f", str(conf))
        assert proc.returncode == 0, f"{conf}:\n{proc.stderr}"
