"""The command line around the capture, the config mapping and the local daemon's states.

These tests never capture: a guard replaces the capture functions, so a test that got past its expected
failure would fail instead of listening in the root namespace. Capturing runs only in tests/net, inside
lab namespaces.
"""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvrrpd.cli import main as cli_main
from pyvrrpd.config.load import load
from pyvrrpd.core.packet import ChecksumForm
from pyvrrpd.diagnose import capture, command
from pyvrrpd.diagnose.expected import AUTH_NONE, AUTH_PASS, expected_instances
from pyvrrpd.diagnose.local import read_status_file, states_from_status

A = ipaddress.ip_address


@pytest.fixture(autouse=True)
def no_capture(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a unit test must not capture or read the host")

    monkeypatch.setattr(capture, "read_host", refuse)
    monkeypatch.setattr(capture, "capture", refuse)
    monkeypatch.setattr(capture, "Listener", refuse)


@pytest.mark.parametrize("argv, reason", [
    (["--duration", "0"], "--duration must be more than 0"),
    (["--duration", "4000"], "--duration must be more than 0"),
    (["--duration", "soon"], "invalid float value"),
    (["--bogus"], "unrecognized arguments"),
    (["-f"], "expected one argument"),
])
def test_usage_errors_are_could_not_run(argv, reason, capsys):
    assert command.main(argv) == 3
    assert reason in capsys.readouterr().err
    assert command.main([*argv, "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["exit_status"] == 3 and reason in out["error"]


def test_cli_dispatches_the_subcommand(capsys):
    assert cli_main(["diagnose", "--duration", "-1"]) == 3
    assert "could not run" in capsys.readouterr().err


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        command.main(["--help"])
    assert exc.value.code == 0
    assert "Exit status: 0 healthy, 1 split brain, 2 other findings, 3 could not run" in capsys.readouterr().out


def test_a_broken_config_is_could_not_run(tmp_path, capsys):
    conf = tmp_path / "bad.conf"
    conf.write_text("vrrp_instance VI_1 {\n    virtual_router_id 300\n")
    assert command.main(["-f", str(conf), "--json"]) == 3
    assert "the configuration has" in json.loads(capsys.readouterr().out)["error"]
    assert command.main(["-f", str(tmp_path / "missing.conf")]) == 3


def test_an_unreadable_status_file_is_could_not_run(tmp_path, capsys):
    status = tmp_path / "status.json"
    status.write_text("{not json")
    assert command.main(["--status-file", str(status)]) == 3
    assert "cannot read the status file" in capsys.readouterr().err


CONFIG = """\
global_defs {
    vrrp_version 2
}
vrrp_instance VI_2 {
    interface lan0
    virtual_router_id 51
    priority 150
    advert_int 2
    authentication {
        auth_type PASS
        auth_pass longpassword
    }
    virtual_ipaddress {
        198.51.100.100/32
        198.51.100.101/32
    }
    virtual_ipaddress_excluded {
        198.51.100.200/32
    }
}
vrrp_instance VI_3 {
    interface lan0
    version 3
    virtual_router_id 52
    advert_int 0.1
    v3_checksum_as_v2
    virtual_ipaddress {
        198.51.100.102/32
    }
}
vrrp_instance VI_6 {
    interface lan0
    version 3
    virtual_router_id 53
    virtual_ipaddress {
        2001:db8:1::100/128
    }
}
"""


def test_expected_instances_from_a_config(tmp_path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)
    loaded = load(str(conf), host_checks=False)
    assert loaded.ok, loaded.diagnostics
    (v2, v3, v6), notes = expected_instances(loaded.config)
    assert notes == []
    assert (v2.key, v2.version, v2.priority, v2.interval_us, v2.auth_type, v2.auth_data, v2.checksum_form) == (
        ("lan0", 4, 51), 2, 150, 2_000_000, AUTH_PASS, b"longpass", None)
    assert v2.vips == {A("198.51.100.100"), A("198.51.100.101")}  # excluded VIPs are not advertised
    assert (v3.key, v3.interval_us, v3.auth_type, v3.checksum_form) == (("lan0", 4, 52), 100_000, AUTH_NONE,
                                                                       ChecksumForm.MESSAGE)
    assert (v6.key, v6.checksum_form, v6.vips) == (("lan0", 6, 53), None, {A("2001:db8:1::100")})


@pytest.mark.parametrize("doc, states", [
    ({"instances": [{"name": "VI_1", "state": "master"}, {"name": "VI_2", "state": "BACKUP"}]},
     {"VI_1": "MASTER", "VI_2": "BACKUP"}),
    ({"vrrp": {"instances": {"VI_1": {"state": "FAULT", "priority": 100}}}}, {"VI_1": "FAULT"}),
    ({"subsystems": [{"name": "vrrp", "snapshot": {"instances": [{"name": "VI_4", "state": "BACKUP"}]}}]},
     {"VI_4": "BACKUP"}),
    ([], {}),
    ("MASTER", {}),
    ({"instances": [{"name": 3, "state": "MASTER"}, {"name": "VI_1", "state": None}]}, {}),
])
def test_states_from_a_status_document(doc, states):
    assert states_from_status(doc) == states


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=30))
def test_any_status_document_gives_a_mapping(doc):
    states = states_from_status(doc)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in states.items())


def test_status_file(tmp_path):
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"instances": [{"name": "VI_1", "state": "BACKUP"}]}))
    assert read_status_file(str(path)) == {"VI_1": "BACKUP"}
    path.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ValueError, match="cannot read the status file"):
        read_status_file(str(path))
