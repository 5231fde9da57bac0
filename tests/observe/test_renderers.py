"""/metrics text, keepalived-style dumps and `pyvrrpd status` tables, all rendered from one snapshot."""

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pyvrrpd.observe import dumps, metrics, status
from tests.observe.snapshots import SNAPSHOT

KEEPALIVED = Path(__file__).parent / "keepalived-2.2.7"


def _samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_parse_with_prometheus_parser():
    samples = _samples(metrics.render(SNAPSHOT))
    vi1 = (("family", "ipv4"), ("instance", "VI_1"), ("interface", "lan0"), ("vrid", "51"))
    assert samples[("pyvrrpd_vrrp_state", tuple(sorted(vi1 + (("state", "MASTER"),))))] == 1
    assert samples[("pyvrrpd_vrrp_state", tuple(sorted(vi1 + (("state", "BACKUP"),))))] == 0
    assert samples[("pyvrrpd_vrrp_priority", vi1)] == 150
    assert samples[("pyvrrpd_vrrp_adverts_tx_total", vi1)] == 2
    assert samples[("pyvrrpd_vrrp_rival_master_rx_total", vi1)] == 3
    assert samples[("pyvrrpd_vrrp_discarded_total", tuple(sorted(vi1 + (("reason", "auth_failure"),))))] == 4
    assert samples[("pyvrrpd_vrrp_socket_decode_errors_total",
                    (("family", "ipv4"), ("interface", "lan0"), ("reason", "bad_checksum")))] == 2
    assert samples[("pyvrrpd_reloads_total", (("result", "failed"),))] == 1
    assert samples[("pyvrrpd_reloads_total", (("result", "applied"),))] == 2
    assert samples[("pyvrrpd_healthy", ())] == 1
    assert samples[("pyvrrpd_last_reload_successful", ())] == 0
    assert samples[("pyvrrpd_process_start_time_seconds", ())] == 1796458400.5
    rs = (("real_server", "[203.0.113.12]:tcp:80"), ("virtual_server", "[198.51.100.100]:tcp:80"))
    assert samples[("pyvrrpd_lvs_real_server_up", rs)] == 0
    assert samples[("pyvrrpd_tracker_up", (("kind", "script"), ("tracker", "chk_nginx")))] == 1


def test_metrics_of_ipvs_checks_and_trackers():
    samples = _samples(metrics.render(SNAPSHOT))
    ops = {dict(k[1])["operation"]: v for k, v in samples.items() if k[0] == "pyvrrpd_lvs_ipvs_operations_total"}
    assert ops == {"add_service": 1, "edit_service": 0, "delete_service": 0, "add_destination": 2,
                   "edit_destination": 0, "delete_destination": 1, "flush": 0}
    assert samples[("pyvrrpd_lvs_ipvs_errors_total", ())] == 1
    assert samples[("pyvrrpd_lvs_ipvs_passes_total", ())] == 7
    assert samples[("pyvrrpd_lvs_ipvs_kernel", ())] == 1
    assert samples[("pyvrrpd_lvs_checks_total", ())] == 12
    assert samples[("pyvrrpd_lvs_check_failures_total", (("reason", "timeout"),))] == 2
    assert samples[("pyvrrpd_lvs_check_transitions_total", (("to", "down"),))] == 1
    assert samples[("pyvrrpd_lvs_checkers_stuck", ())] == 1
    rs = (("real_server", "[203.0.113.11]:tcp:80"), ("virtual_server", "[198.51.100.100]:tcp:80"))
    assert samples[("pyvrrpd_lvs_real_server_check_failures_total", tuple(sorted(rs + (("reason", "timeout"),))))] == 1
    up = {(dict(k[1])["kind"], dict(k[1])["tracker"]): v for k, v in samples.items() if k[0] == "pyvrrpd_tracker_up"}
    assert up == {("script", "chk_nginx"): 1, ("interface", "lan0"): 1, ("interface", "lan9"): 0,
                  ("file", "weights"): 1, ("process", "haproxy"): 0}
    assert samples[("pyvrrpd_tracker_state", (("kind", "interface"), ("state", "down"), ("tracker", "lan9")))] == 1
    assert samples[("pyvrrpd_tracker_file_value", (("kind", "file"), ("tracker", "weights")))] == -20
    assert samples[("pyvrrpd_tracker_processes", (("kind", "process"), ("tracker", "haproxy")))] == 0
    assert samples[("pyvrrpd_tracker_runs_total", (("kind", "script"), ("tracker", "chk_nginx")))] == 5
    assert samples[("pyvrrpd_trackers_link_changes_total", ())] == 2


@pytest.mark.parametrize("trackers", [
    {"scripts": {"x": {}}, "interfaces": {"y": None}, "files": {"z": {}}, "processes": {"p": {}}},
    {"scripts": None, "counters": None}, {},
])
def test_metrics_and_status_of_odd_tracker_snapshots(trackers):
    text = metrics.render({"trackers": trackers})
    _samples(text)
    status.render({"trackers": trackers})
    dumps.render_data({"trackers": trackers})


def test_histogram_observes_into_le_buckets():
    h = metrics.Histogram()
    for seconds in (0.0003, 0.001, 0.0011, 4.0, 60.0):
        h.observe(seconds)
    snap = h.snapshot()
    assert snap["count"] == 5 and snap["sum"] == pytest.approx(64.0024)
    assert {le: n for le, n in snap["buckets"].items() if n} == {"0.0005": 1, "0.001": 1, "0.0025": 1, "5.0": 1}
    merged = metrics.merge_histograms([snap, snap])
    assert merged["count"] == 10 and merged["buckets"]["5.0"] == 2
    assert metrics.merge_histograms([]) is None
    rendered = _samples(metrics.render({"lvs": {"virtual_servers": [
        {"name": "v", "real_servers": [{"name": "r", "up": True, "check_latency": snap}]}]}}))
    labels = (("le", "+Inf"), ("real_server", "r"), ("virtual_server", "v"))
    assert rendered[("pyvrrpd_lvs_check_latency_seconds_bucket", labels)] == 5
    assert rendered[("pyvrrpd_lvs_check_latency_seconds_bucket", (("le", "10.0"),) + labels[1:])] == 4


def test_metrics_histogram_is_cumulative():
    samples = _samples(metrics.render(SNAPSHOT))
    rs = (("real_server", "[203.0.113.11]:tcp:80"), ("virtual_server", "[198.51.100.100]:tcp:80"))
    buckets = {dict(k[1])["le"]: v for k, v in samples.items()
               if k[0] == "pyvrrpd_lvs_check_latency_seconds_bucket" and dict(k[1])["real_server"].endswith("11]:tcp:80")}
    assert buckets == {"0.005": 3, "0.05": 9, "1.0": 10, "+Inf": 10}
    assert samples[("pyvrrpd_lvs_check_latency_seconds_count", rs)] == 10


def test_metrics_escape_label_values():
    text = metrics.render(SNAPSHOT)
    assert 'instance="VI_6 \\"quoted\\""' in text
    _samples(text)  # and the parser accepts it


@pytest.mark.parametrize("snapshot", [{}, {"vrrp": {}}, {"vrrp": {"instances": []}, "lvs": {"virtual_servers": []}}])
def test_metrics_of_an_empty_snapshot(snapshot):
    assert _samples(metrics.render(snapshot)) == {}


def test_json_dump_has_keepalived_shape():
    ours = json.loads(dumps.render_json(SNAPSHOT))
    theirs = json.loads((KEEPALIVED / "keepalived.json").read_text())
    assert [list(e) for e in ours] == [["data", "stats"]] * 2
    # same keys, same order, same JSON types as keepalived 2.2.7 writes
    for part in ("data", "stats"):
        assert list(ours[0][part]) == list(theirs[0][part])
        assert {k: type(v).__name__ for k, v in ours[0][part].items()} == \
               {k: type(v).__name__ for k, v in theirs[0][part].items()}
    data = ours[0]["data"]
    assert (data["iname"], data["vrid"], data["state"], data["base_priority"], data["auth_type"]) == \
           ("VI_1", 51, 2, 150, 1)
    assert data["vips"] == ["198.51.100.100/24 dev lan0 scope global set"]
    assert ours[0]["stats"]["auth_failure"] == 4 and ours[0]["stats"]["advert_interval_err"] == 1
    assert ours[1]["data"]["state"] == 3 and ours[1]["data"]["effective_priority"] == 90


def test_stats_dump_has_keepalived_lines():
    ours = dumps.render_stats(SNAPSHOT).splitlines()
    theirs = (KEEPALIVED / "keepalived.stats").read_text().splitlines()
    label = lambda line: line.split(":")[0]  # noqa: E731
    assert [label(line) for line in ours[: len(theirs)]] == [label(line) for line in theirs]
    assert "    Sent: 2" in ours


def test_data_dump_sections():
    text = dumps.render_data(SNAPSHOT)
    assert "------< VRRP Topology >------" in text
    assert " VRRP Instance = VI_1" in text
    assert "   Fault reason = link:lan1: interface lan1 is down" in text
    assert "------< LVS Topology >------" in text


def test_dump_write_is_atomic(tmp_path):
    path = tmp_path / "keepalived.json"
    dumps.write(str(path), "[]\n")
    assert path.read_text() == "[]\n" and list(tmp_path.iterdir()) == [path]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_dump_dir(monkeypatch):
    monkeypatch.setenv("TMPDIR", "relative")
    assert dumps.dump_dir() == "/tmp"
    monkeypatch.setenv("TMPDIR", "/var/tmp")
    assert dumps.dump_dir() == "/var/tmp"
    assert dumps.dump_dir("/run/x") == "/run/x"


def test_status_tables():
    text = status.render(SNAPSHOT)
    lines = text.splitlines()
    assert lines[0].startswith("pyvrrpd 0.3.0, pid 4242, up 01:02:05, config /etc/keepalived/keepalived.conf")
    assert "reloads: 2 applied, 1 refused, 1 failed (last: failed)" in lines
    row = next(line for line in lines if line.startswith("VI_6"))
    assert "FAULT" in row and "100→90" in row and "link:lan1: interface lan1 is down" in row
    assert any("[203.0.113.12]:tcp:80" in line and "DOWN" in line for line in lines)
    assert any(line.startswith("script") and "chk_nginx" in line for line in lines)
    assert "(VI_1) heard 3 advert(s) from another master while master: split brain? run " \
           "`pyvrrpd diagnose -i lan0`" in lines
    assert not any(line.startswith("(VI_6") for line in lines)


def test_status_of_an_empty_snapshot():
    assert status.render({}).startswith("pyvrrpd ?, pid ?")
