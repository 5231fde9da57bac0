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


def diagnostic(path: Path, line: int, col: int, severity: str, message: str) -> str:
    """One diagnostic's first line, exactly as --check-config prints it."""
    return f"{path}:{line}:{col}: {severity}: {message}"


def summary(path: Path, errors: int = 0, warnings: int = 0, notes: int = 0) -> str:
    verdict = "FAILED" if errors else "OK"
    return f"{path}: {verdict}: {errors} error(s), {warnings} warning(s), {notes} note(s)"


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_good_config_exits_0(tmp_path):
    path = write(tmp_path, GOOD)
    proc = check("--check-config", "-f", str(path))
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, summary(path) + "\n", "")


def test_keepalived_spelling_t(tmp_path):
    path = write(tmp_path, GOOD)
    proc = check("-t", "-f", str(path))
    assert (proc.returncode, proc.stderr) == (0, summary(path) + "\n")


def test_every_problem_with_file_line_col_and_caret(tmp_path):
    path = write(tmp_path, GOOD.replace("priority 150", "priorty 150").replace(
        "virtual_router_id 51", "virtual_router_id 300"))
    proc = check("--check-config", "-f", str(path))
    assert proc.returncode == 1
    assert lines(proc.stderr) == [
        diagnostic(path, 6, 23, "error",
                   "vrrp_instance VI_1: virtual_router_id '300' is invalid (must be 1-255); the instance cannot run"),
        "        virtual_router_id 300",
        "                          ^~~",
        diagnostic(path, 7, 5, "warning", "Unknown keyword 'priorty'"),
        "        priorty 150",
        "        ^~~~~~~",
        "    note: did you mean `priority`?",
        summary(path, errors=1, warnings=1),
    ]


def test_include_chain_is_shown(tmp_path):
    (tmp_path / "conf.d").mkdir()
    bad = write(tmp_path / "conf.d", "vrrp_instance VI_2 {\n    virtual_router_id 999\n}\n", "bad.conf")
    main = write(tmp_path, GOOD + "include conf.d/*.conf\n")
    proc = check("--check-config", "-f", str(main))
    assert proc.returncode == 1
    err = lines(proc.stderr)
    at = err.index(diagnostic(bad, 2, 23, "error", "vrrp_instance VI_2: virtual_router_id '999' is invalid "
                                                   "(must be 1-255); the instance cannot run"))
    assert err[at + 1:at + 4] == ["        virtual_router_id 999", "                          ^~~",
                                  f"    included from {main}:13:1"]
    assert err[-1].startswith(f"{main}: FAILED: 2 error(s), ")


def test_json_is_the_only_stdout(tmp_path):
    path = write(tmp_path, GOOD.replace("virtual_router_id 51", "virtual_router_id 0"))
    proc = check("--check-config", "--json", "-f", str(path))
    assert (proc.returncode, proc.stderr) == (1, "")
    assert json.loads(proc.stdout) == {"ok": False, "diagnostics": [
        {"file": str(path), "line": 6, "col": 23, "severity": "error",
         "message": "vrrp_instance VI_1: virtual_router_id '0' is invalid (must be 1-255); the instance cannot run"},
    ]}


def test_strict_makes_warnings_errors(tmp_path):
    path = write(tmp_path, GOOD.replace("priority 150", "priority 150\n    bogus_keyword 1"))
    source = ["        bogus_keyword 1", "        ^~~~~~~~~~~~~"]
    proc = check("--check-config", "-f", str(path))
    assert proc.returncode == 0
    assert lines(proc.stderr) == [diagnostic(path, 8, 5, "warning", "Unknown keyword 'bogus_keyword'"), *source,
                                  summary(path, warnings=1)]
    proc = check("--check-config", "--strict", "-f", str(path))
    assert proc.returncode == 1
    assert lines(proc.stderr) == [diagnostic(path, 8, 5, "error", "Unknown keyword 'bogus_keyword'"), *source,
                                  "    note: a warning, made an error by --strict", summary(path, errors=1)]


def test_dump_expands_definitions_and_config_id_lines(tmp_path):
    """`$VRID` and `${PRIO}` expand in the file as written; the `@pyvrrpd-test` line defines PRIO only
    for that config id."""
    text = "$VRID=51\n@pyvrrpd-test $PRIO=200\n" + GOOD.replace("virtual_router_id 51", "virtual_router_id $VRID")
    path = write(tmp_path, text.replace("priority 150", "priority ${PRIO}"))
    proc = check("--check-config", "--dump", "-i", "pyvrrpd-test", "-f", str(path))
    assert (proc.returncode, proc.stderr) == (0, summary(path) + "\n")
    assert "    virtual_router_id 51\n    priority 200\n" in proc.stdout and "$" not in proc.stdout
    # another id: no PRIO, so `${PRIO}` stays as written and is no priority
    proc = check("--check-config", "-i", "other", "-f", str(path))
    assert proc.returncode == 0
    assert diagnostic(path, 9, 14, "warning", "vrrp_instance VI_1: priority '$' is not a base-10 number; "
                                              "using the default 100") in lines(proc.stderr)


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
    expected = {
        "missing": (1, diagnostic(path, 1, 1, "error",
                                  f"cannot open configuration file '{path}': No such file or directory")),
        "directory": (1, diagnostic(path, 1, 1, "error", f"Configuration file '{path}' is a directory - skipping")),
        "binary": (1, diagnostic(path, 1, 1, "error", f"'{path}' is not a text file - not read")),
        "empty-ok": (0, summary(path)),
        "nul-line": (0, diagnostic(path, 13, 9, "warning",
                                   "configuration appears to have embedded NULs - ignoring line")),
    }[make]
    assert (proc.returncode, lines(proc.stderr)[0]) == expected, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines(proc.stderr)[-1] == summary(path, errors=1 if make in ("missing", "directory", "binary") else 0,
                                             warnings=1 if make == "nul-line" else 0)


def test_huge_file_is_refused_quickly(tmp_path):
    path = tmp_path / "huge.conf"
    with open(path, "wb") as f:
        f.truncate(100 * 1024 * 1024)  # 100 MB (sparse)
    proc = check("--check-config", "-f", str(path), timeout=30)
    assert proc.returncode == 1
    assert lines(proc.stderr) == [
        diagnostic(path, 1, 1, "error", f"Configuration file '{path}' is larger than 32 MiB - not read"),
        summary(path, errors=1)]


def test_ten_thousand_nested_blocks(tmp_path):
    """An unknown keyword's '{' is ignored (as keepalived does), so the blocks never nest: 10,000 lines of
    warnings, one instance without VRID or interface, and no recursion."""
    path = write(tmp_path, "vrrp_instance VI {\n" * 10_000 + "}\n" * 10_000)
    proc = check("--check-config", "-f", str(path), timeout=60)
    assert proc.returncode == 1
    err = lines(proc.stderr)
    assert [line for line in err if ": error: " in line] == [
        diagnostic(path, 1, 1, "error", "vrrp_instance VI has no virtual_router_id; the instance cannot run"),
        diagnostic(path, 1, 1, "error",
                   "vrrp_instance VI has no 'interface' (and no unicast peers); the instance cannot run"),
    ]
    assert diagnostic(path, 10_000, 1, "warning", "Unknown keyword 'vrrp_instance'") in err
    assert err[-1].startswith(f"{path}: FAILED: 2 error(s), ")
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr


def test_self_referencing_definition_is_an_error_not_a_hang(tmp_path):
    path = write(tmp_path, "$IF=$IF\n" + GOOD.replace("interface lan0", "interface $IF"))
    proc = check("--check-config", "-f", str(path), timeout=20)
    assert proc.returncode == 1
    err = lines(proc.stderr)
    at = err.index(diagnostic(path, 6, 15, "error", "recursive definition: $IF -> $IF - line ignored"))
    assert err[at + 1:at + 5] == ["        interface $IF", " " * 18 + "^", f"    note: $IF is defined at {path}:1:1",
                                  "    note: keepalived 2.2.7 loops forever on this"]
    assert err[-1] == summary(path, errors=2)


def test_every_shipped_example_is_clean():
    for conf in [ROOT / "conf" / "keepalived.conf.example", *sorted((ROOT / "conf" / "examples").glob("*.conf"))]:
        proc = check("--check-config", "-f", str(conf))
        assert proc.returncode == 0, f"{conf}:\n{proc.stderr}"


LVS = """\
virtual_server 198.51.100.10 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    snmp_name web
    real_server 203.0.113.1 80 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"""


def test_an_lvs_director_checks_clean_but_an_unwired_keyword_is_named(tmp_path):
    path = write(tmp_path, LVS.replace("    snmp_name web\n", ""))
    proc = check("--check-config", "-f", str(path))
    assert (proc.returncode, proc.stderr) == (0, summary(path) + "\n")
    path = write(tmp_path, LVS)
    proc = check("--check-config", "-f", str(path))
    assert proc.returncode == 0
    assert lines(proc.stderr)[0] == diagnostic(path, 5, 5, "warning",
                                               "`snmp_name` in virtual_server is accepted but not supported yet")
