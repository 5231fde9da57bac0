"""`--check-config` gives the daemon's verdict: what the daemon would refuse is an error there too."""

from __future__ import annotations

import json

import pytest

from pyvrrpd import cli
from pyvrrpd.config.load import load
from pyvrrpd.daemon.verdict import verdict

CONF = """vrrp_instance VI_1 {
    interface lan0
    virtual_router_id 51
    use_vmac vrrp.52
    virtual_ipaddress {
        198.51.100.100
    }
}
vrrp_instance VI_2 {
    interface lan0
    virtual_router_id 52
    use_vmac
    virtual_ipaddress {
        198.51.100.101
    }
    virtual_rules {
        from 203.0.113.0/24 table 100 priority 10 ipproto tcp
    }
}
"""


def check(tmp_path, capsys, text: str, *flags: str) -> tuple[int, str, str]:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    code = cli.main(["--check-config", "--no-host-checks", "-f", str(path), *flags])
    out, err = capsys.readouterr()
    return code, out, err.replace(str(path), "FILE")


def test_check_reports_what_the_daemon_refuses_with_file_line_col(tmp_path, capsys):
    code, _, err = check(tmp_path, capsys, CONF)
    assert code == 1
    assert err.splitlines()[0] == ("FILE:9:1: error: vrrp_instance VI_2: VMAC name vrrp.52 is used by another "
                                   "instance; give use_vmac a name")
    assert "    note: pyvrrpd refuses to start with this configuration" in err.splitlines()
    assert ("FILE:17:9: error: vrrp_instance VI_2: virtual_rules 'from 203.0.113.0/24 table 100 priority 10 "
            "ipproto tcp': rule: unsupported word 'ipproto'") in err.splitlines()
    assert err.splitlines()[-1] == "FILE: FAILED: 2 error(s), 0 warning(s), 0 note(s)"


def test_json_check_has_the_daemon_verdict_too(tmp_path, capsys):
    code, out, _ = check(tmp_path, capsys, CONF, "--json")
    result = json.loads(out)
    assert code == 1 and not result["ok"]
    assert [(d["line"], d["col"], d["severity"]) for d in result["diagnostics"]] == [(9, 1, "error"),
                                                                                  (17, 9, "error")]


def test_verdict_adds_nothing_to_a_runnable_config(tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF.replace("use_vmac vrrp.52", "use_vmac vrrp-a").replace(" ipproto tcp", ""))
    loaded = load(str(path), host_checks=False)
    assert verdict(loaded) is loaded and loaded.ok


def test_verdict_of_garbage_is_the_load_s_own(tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_bytes(b"\x00\xff{{{ vrrp_instance }}}\n" * 50)
    loaded = load(str(path), host_checks=False)
    assert verdict(loaded).diagnostics == loaded.diagnostics
    missing = load(str(tmp_path / "missing.conf"), host_checks=False)
    assert verdict(missing) is missing


def test_control_socket_flag_works_and_unimplemented_keepalived_options_are_refused(capsys):
    """A flag that does nothing is an error until it works: --control-socket works now (tests/observe);
    keepalived's options pyvrrpd does not implement are refused by name."""
    assert cli.build_parser().parse_args(["--control-socket", "/run/x.sock"]).control_socket == "/run/x.sock"
    for option in ("-X", "-s", "--snmp"):
        argv = [option, "ns1"] if option == "-s" else [option]
        with pytest.raises(SystemExit) as exc:
            cli.build_parser().parse_args(argv)
        assert exc.value.code == 2
        assert "is not supported by pyvrrpd" in capsys.readouterr().err


def test_dont_release_options_parse_and_reach_the_subsystems(tmp_path):
    from pyvrrpd.daemon.root import build_subsystems
    from pyvrrpd.observe import logs

    args = cli.build_parser().parse_args(["-C", "-I", "-V", "-f", "x.conf"])
    assert args.dont_release_ipvs and args.dont_release_vrrp
    args = cli.build_parser().parse_args(["--dont-release-ipvs", "--dont-release-vrrp", "-f", "x.conf"])
    assert args.dont_release_ipvs and args.dont_release_vrrp
    path = tmp_path / "keepalived.conf"
    path.write_text("virtual_server 198.51.100.100 80 {\n protocol TCP\n real_server 203.0.113.1 80 {\n }\n}\n")
    config = load(str(path), host_checks=False).config
    for argv, release in ((["-C"], True), (["-C", "-I"], False)):
        [lvs] = build_subsystems(cli.build_parser().parse_args(argv), config, logs.get("test"))
        assert lvs.ipvs.release_on_stop is release
    fifo = tmp_path / "lvs.fifo"
    path.write_text(f"global_defs {{\n lvs_notify_fifo {fifo}\n}}\n"
                    "virtual_server 198.51.100.100 80 {\n protocol TCP\n real_server 203.0.113.1 80 {\n }\n}\n")
    notifier, lvs = build_subsystems(cli.build_parser().parse_args(["-C"]), load(str(path), host_checks=False).config,
                                     logs.get("test"))
    assert notifier.name == "notify" and lvs.fifo == notifier.lvs  # -C: the checker FIFO lines still go
    assert notifier.settings.lvs.path == str(fifo) and notifier.settings.vrrp is None and notifier.mailer is None
    path.write_text("vrrp_instance VI_1 {\n interface lo\n virtual_router_id 51\n priority 100\n"
                    " virtual_ipaddress { 198.51.100.100 }\n}\n")
    config = load(str(path), host_checks=False).config
    for argv, keep in (([], False), (["-V"], True)):
        vrrp = build_subsystems(cli.build_parser().parse_args(argv), config, logs.get("test"))[-1]
        assert vrrp.name == "vrrp" and vrrp.release_on_stop is not keep
        assert [inst.effects.keep_on_stop for inst in vrrp.instances] == [keep]


def test_subsystem_flags_parse():
    args = cli.build_parser().parse_args(["-P", "-f", "x.conf"])
    assert args.vrrp and not args.checkers_only
    args = cli.build_parser().parse_args(["--check", "-f", "x.conf"])
    assert args.checkers_only and not args.check
