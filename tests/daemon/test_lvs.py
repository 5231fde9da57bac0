"""The daemon's LVS subsystem end to end without a kernel: real TCP checks against listeners on loopback,
the IPVS table in the reconciler's in-memory fake (the kernel side is tested in the VM: tests/kernel)."""

from __future__ import annotations

import socket
import textwrap

import anyio
import pytest

from pyvrrpd.config.load import load
from pyvrrpd.daemon.lvs import Lvs, key_map
from pyvrrpd.lvs.ipvs import FakeIpvs
from pyvrrpd.observe import logs, metrics, status
from tests.daemon.fakes import Log

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"  # real sockets and real time


def _config(tmp_path, port_a: int, port_b: int, extra: str = ""):
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(f"""
        virtual_server 198.51.100.100 80 {{
            delay_loop 1
            lb_algo rr
            lb_kind NAT
            protocol TCP
            {extra}
            real_server 127.0.0.1 {port_a} {{
                weight 2
                notify_down "/bin/sh -c 'echo down >> {tmp_path}/notified'"
                TCP_CHECK {{
                    connect_timeout 1
                    retry 0
                }}
            }}
            real_server 127.0.0.2 {port_b} {{
                TCP_CHECK {{
                    connect_timeout 1
                    retry 0
                }}
            }}
        }}
    """))
    loaded = load(str(path), host_checks=False)
    assert loaded.ok, loaded.diagnostics
    return loaded.config


def _listener(address: str) -> socket.socket:
    s = socket.socket()
    s.bind((address, 0))
    s.listen(16)
    return s


async def _until(condition, what: str, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.05)


def _dests(fake: FakeIpvs) -> dict[int, int]:
    """real server port → weight, in the fake kernel table"""
    return {dest.key.port: dest.weight for dest in fake.dests.values()}


async def test_a_dead_real_server_leaves_the_table_and_comes_back(tmp_path):
    a, b = _listener("127.0.0.1"), _listener("127.0.0.2")
    port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    config = _config(tmp_path, port_a, port_b)
    fake = FakeIpvs()
    lvs = Lvs(config, logs.get("test"), port=fake)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(lvs.run)
            await _until(lambda: _dests(fake) == {port_a: 2, port_b: 1}, "both real servers in the table")
            a.close()  # the first real server dies: connections are refused
            await _until(lambda: port_a not in _dests(fake), "the dead real server removed")
            assert _dests(fake) == {port_b: 1}
            await _until(lambda: (tmp_path / "notified").exists(), "notify_down ran")
            snap = lvs.snapshot()
            [vs] = snap["virtual_servers"]
            assert vs["name"] == "[198.51.100.100]:tcp:80"
            assert [(rs["name"], rs["up"]) for rs in vs["real_servers"]] == \
                [(f"[127.0.0.1]:{port_a}", False), (f"[127.0.0.2]:{port_b}", True)]
            # the renderers take it as it is
            text = status.render({"lvs": snap})
            assert "DOWN" in text and f"[127.0.0.1]:{port_a}" in text
            assert "pyvrrpd_lvs_real_server_up" in metrics.render({"lvs": snap})
            a = _listener_on("127.0.0.1", port_a)  # it comes back
            await _until(lambda: _dests(fake).get(port_a) == 2, "the real server restored")
            tg.cancel_scope.cancel()
        assert fake.dests == {} and fake.services == {}  # what it owned is removed on stop
    finally:
        a.close()
        b.close()


def _listener_on(address: str, port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(16)
    return s


async def test_inhibit_on_failure_sets_weight_zero(tmp_path):
    a, b = _listener("127.0.0.1"), _listener("127.0.0.2")
    port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    config = _config(tmp_path, port_a, port_b)
    text = (tmp_path / "keepalived.conf").read_text().replace("weight 2", "weight 2\n inhibit_on_failure")
    (tmp_path / "keepalived.conf").write_text(text)
    config = load(str(tmp_path / "keepalived.conf"), host_checks=False).config
    fake = FakeIpvs()
    lvs = Lvs(config, logs.get("test"), port=fake)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(lvs.run)
            await _until(lambda: _dests(fake) == {port_a: 2, port_b: 1}, "both real servers in the table")
            a.close()
            await _until(lambda: _dests(fake).get(port_a) == 0, "weight 0, still in the table")
            tg.cancel_scope.cancel()
    finally:
        a.close()
        b.close()


def test_key_map_pairs_every_real_server(tmp_path):
    config = _config(tmp_path, 8080, 8081)
    pairs = key_map(config)
    assert [(str(k.address), k.port, rid.port) for k, rid in pairs.items()] == \
        [("127.0.0.1", 8080, 8080), ("127.0.0.2", 8081, 8081)]


# ------------------------------------------------------------------ reload (SIGHUP) through the daemon root


def _vs(address: str, servers: list[tuple[str, int, int]]) -> str:
    """A virtual_server block; each real server (address, port, weight) has a TCP_CHECK at delay_loop 1."""
    body = "".join(f"""
        real_server {a} {p} {{
            weight {w}
            TCP_CHECK {{
                connect_timeout 1
                retry 0
            }}
        }}""" for a, p, w in servers)
    head = "delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP"
    return f"virtual_server {address} 80 {{\n    {head}\n{body}\n}}\n"


def _table(fake: FakeIpvs) -> dict[tuple[str, str], int]:
    """(service address, real server) -> weight"""
    return {(str(s.addr), f"{dest.key.addr}:{dest.key.port}"): dest.weight for (s, _), dest in fake.dests.items()}


def _samples(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_reload_applies_only_the_difference_and_keeps_check_states(tmp_path):
    from pyvrrpd.daemon.root import Root
    from pyvrrpd.lvs import diff as d

    up = {name: _listener(address) for name, address in (("a", "127.0.0.1"), ("c", "127.0.0.3"),
                                                          ("d", "127.0.0.4"), ("e", "127.0.0.5"), ("f", "127.0.0.6"))}
    port = {name: s.getsockname()[1] for name, s in up.items()}
    dead = _listener("127.0.0.2")  # b: its port, closed at once: connections are refused
    port["b"] = dead.getsockname()[1]
    dead.close()
    rs = {name: (f"127.0.0.{i}", port[name]) for i, name in enumerate("abcdef", 1)}
    path = tmp_path / "keepalived.conf"

    def write(text: str) -> None:
        path.write_text(text)

    def loader():
        return load(str(path), host_checks=False)

    write(_vs("198.51.100.100", [(*rs["a"], 2), (*rs["b"], 1), (*rs["c"], 1)]) +
          _vs("198.51.100.103", [(*rs["e"], 1)]))
    fake = FakeIpvs()
    lvs = Lvs(loader().config, logs.get("test"), port=fake)
    root = Root(lvs.config, [lvs], log=logs.get("test"), load=loader, config_file=str(path))
    key = {name: ("198.51.100.100", f"{a}:{p}") for name, (a, p) in rs.items()}
    e_key, f_key = ("198.51.100.103", "%s:%d" % rs["e"]), ("198.51.100.106", "%s:%d" % rs["f"])
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(root.run)
            await _until(lambda: _table(fake) == {key["a"]: 2, key["c"]: 1, e_key: 1},
                         "b failed its check, the others in the table")
            fake.log.clear()
            removed_b = lvs.checkers.snapshot()["counters"].get("down", 0)

            # a's weight changes, b (failed) and c (healthy) stay as they are, d is added, the second virtual
            # server is replaced by a third one
            write(_vs("198.51.100.100", [(*rs["a"], 5), (*rs["b"], 1), (*rs["c"], 1), (*rs["d"], 3)]) +
                  _vs("198.51.100.106", [(*rs["f"], 1)]))
            assert await root.reload() is True
            await _until(lambda: f_key in _table(fake), "the new virtual server programmed")
            assert _table(fake) == {key["a"]: 5, key["c"]: 1, key["d"]: 3, f_key: 1}
            first = [(type(op).__name__, str(op.dest.key)) for op in fake.log
                     if isinstance(op, (d.AddDest, d.EditDest, d.DelDest)) and str(op.service.addr) == "198.51.100.100"]
            # one in-place edit for a, d added; b (failed) not re-added, a and c never deleted
            assert first == [("EditDest", f"{rs['a'][0]}:{rs['a'][1]}"), ("AddDest", f"{rs['d'][0]}:{rs['d'][1]}")]
            assert any(isinstance(op, d.DelService) and str(op.key.addr) == "198.51.100.103" for op in fake.log)

            # checkers of unchanged real servers kept their state: b stays down, a and c are never taken out
            fake.log.clear()
            await anyio.sleep(2.5)  # two more rounds of checks
            assert key["b"] not in _table(fake) and fake.log == []
            assert lvs.checkers.snapshot()["counters"].get("down", 0) == removed_b

            # a broken config keeps the running one, table untouched
            fake.log.clear()
            write("virtual_server 198.51.100.100 80 {\n    lb_algo nosuch\n    real_server\n")
            assert await root.reload() is False
            await anyio.sleep(0.2)
            assert fake.log == [] and _table(fake) == {key["a"]: 5, key["c"]: 1, key["d"]: 3, f_key: 1}

            # /metrics from the root's snapshot: reloads, IPVS operations, check latency of each real server
            samples = _samples(metrics.render(root.snapshot()))
            assert samples[("pyvrrpd_reloads_total", (("result", "applied"),))] == 1
            assert samples[("pyvrrpd_reloads_total", (("result", "failed"),))] == 1
            assert samples[("pyvrrpd_last_reload_successful", ())] == 0
            assert samples[("pyvrrpd_process_start_time_seconds", ())] > 0
            assert samples[("pyvrrpd_lvs_ipvs_operations_total", (("operation", "edit_destination"),))] >= 1
            assert samples[("pyvrrpd_lvs_ipvs_errors_total", ())] == 0
            labels = (("le", "+Inf"), ("real_server", f"[127.0.0.1]:{port['a']}"),
                      ("virtual_server", "[198.51.100.100]:tcp:80"))
            assert samples[("pyvrrpd_lvs_check_latency_seconds_bucket", labels)] >= 3
            b_labels = (("real_server", f"[127.0.0.2]:{port['b']}"), ("virtual_server", "[198.51.100.100]:tcp:80"),
                        ("reason", "refused"))
            assert samples.get(("pyvrrpd_lvs_real_server_check_failures_total", tuple(sorted(b_labels))), 0) >= 2, \
                sorted(k for k in samples if "failures" in k[0])
            root.request_stop()
    finally:
        for s in up.values():
            s.close()


async def test_quorum_scripts_run_and_omega_runs_the_stop_scripts(tmp_path):
    a, b = _listener("127.0.0.1"), _listener("127.0.0.2")
    port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    log = tmp_path / "quorum"
    config = _config(tmp_path, port_a, port_b, extra=f"""
            quorum 3
            omega
            quorum_up "/bin/sh -c 'echo up >> {log}'"
            quorum_down "/bin/sh -c 'echo down >> {log}'"
    """)
    fake = FakeIpvs()
    lvs = Lvs(config, logs.get("test"), port=fake)

    def said() -> list[str]:
        return log.read_text().split() if log.exists() else []

    try:
        async with anyio.create_task_group() as tg:
            await tg.start(lvs.run)
            await _until(lambda: _dests(fake) == {port_a: 2, port_b: 1}, "both real servers in the table")
            a.close()  # weight 1 left, below the quorum of 3
            await _until(lambda: said() == ["down"], "quorum_down ran")
            a = _listener_on("127.0.0.1", port_a)
            await _until(lambda: said() == ["down", "up"], "quorum_up ran")
            await _until(lambda: _dests(fake) == {port_a: 2, port_b: 1}, "both back")
            tg.cancel_scope.cancel()
        # omega: the stop reports the quorum down, and notify_down of the alive real server with one
        assert said() == ["down", "up", "down"]
        assert (tmp_path / "notified").read_text().split() == ["down", "down"]  # its failure, then the stop
        assert fake.dests == {}
    finally:
        a.close()
        b.close()


async def test_without_omega_the_stop_runs_no_script(tmp_path):
    a, b = _listener("127.0.0.1"), _listener("127.0.0.2")
    log = tmp_path / "quorum"
    config = _config(tmp_path, a.getsockname()[1], b.getsockname()[1],
                     extra=f"quorum_down \"/bin/sh -c 'echo down >> {log}'\"")
    fake = FakeIpvs()
    lvs = Lvs(config, logs.get("test"), port=fake)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(lvs.run)
            await _until(lambda: len(_dests(fake)) == 2, "both real servers in the table")
            tg.cancel_scope.cancel()
        assert not log.exists() and not (tmp_path / "notified").exists()
    finally:
        a.close()
        b.close()


class _FakeAddresses:
    """An AddressSource: the initial addresses, then the events the test sends."""

    def __init__(self, initial) -> None:
        self.initial = list(initial)
        self.send, self._receive = anyio.create_memory_object_stream(16)

    def watch(self):
        source = self

        class _Ctx:
            async def __aenter__(self):
                return self

            async def __aexit__(self, *exc):
                return False

            initial = source.initial

            async def __aiter__(self):
                async for event in source._receive:
                    yield event

        return _Ctx()


async def test_ha_suspend_freezes_the_real_servers_while_the_address_is_absent(tmp_path):
    import ipaddress

    vip = ipaddress.ip_address("198.51.100.100")
    a, b = _listener("127.0.0.1"), _listener("127.0.0.2")
    port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    a.close()  # the first real server refuses connections from the start
    config = _config(tmp_path, port_a, port_b, extra="ha_suspend")
    fake, addresses = FakeIpvs(), _FakeAddresses([ipaddress.ip_address("198.51.100.7")])
    log = Log()
    lvs = Lvs(config, log, port=fake, addresses=addresses)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(lvs.run)
            # the VIP is not here (BACKUP director): the checkers do not run, the table keeps the initial state
            await _until(lambda: _dests(fake) == {port_a: 2, port_b: 1}, "initial table")
            assert lvs.checkers.suspended == {"[198.51.100.100]:tcp:80"}
            await _until(lambda: lvs.checkers.counters["suspended_runs"] >= 4, "suspended runs skipped")
            assert _dests(fake) == {port_a: 2, port_b: 1} and lvs.checkers.counters["checks"] == 0
            await addresses.send.send((True, vip))  # the director becomes MASTER for the VIP
            await _until(lambda: port_a not in _dests(fake), "the dead real server removed once checks run")
            assert lvs.snapshot()["checkers"]["suspended"] == []
            await addresses.send.send((False, vip))  # BACKUP again: suspended, state frozen
            await _until(lambda: lvs.checkers.suspended, "suspended again")
            a = _listener_on("127.0.0.1", port_a)  # it answers now, but nobody looks
            checks = lvs.checkers.counters["checks"]
            await _until(lambda: lvs.checkers.counters["suspended_runs"] >= 8, "more suspended runs")
            assert port_a not in _dests(fake) and lvs.checkers.counters["checks"] <= checks + 2  # (runs under way)
            await addresses.send.send((True, vip))
            await _until(lambda: _dests(fake).get(port_a) == 2, "back once the checks resume")
            tg.cancel_scope.cancel()
    finally:
        a.close()
        b.close()
    vs = "[198.51.100.100]:tcp:80"  # real servers as keepalived's FMT_RS, [IP]:PROTO:PORT
    events = log.events("info")
    assert f"Deactivating healthchecker for service [127.0.0.1]:tcp:{port_a} for VS {vs} (ha_suspend: its " \
           "address is not on this host)" in events
    assert f"Activating healthchecker for service [127.0.0.2]:tcp:{port_b} for VS {vs}" in events
    assert f"Removing service [127.0.0.1]:tcp:{port_a} from VS {vs}" in events
    assert f"Adding service [127.0.0.1]:tcp:{port_a} to VS {vs}" in events


class _Mails:
    """A Mailer stand-in: records (subject, body)."""

    class settings:
        router_id = "lb1"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def alert(self, subject: str, body: str) -> None:
        self.sent.append((subject, body))

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await anyio.sleep_forever()

    def close(self) -> None:
        pass

    def snapshot(self) -> dict:
        return {"sent": len(self.sent)}


async def test_checker_fifo_lines_and_mails_in_keepalived_words(tmp_path):
    a, b = _listener("127.0.0.1"), _listener("127.0.0.2")
    port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    config = _config(tmp_path, port_a, port_b, extra="smtp_alert")
    lines: list[str] = []
    mails = _Mails()
    lvs = Lvs(config, logs.get("test"), port=FakeIpvs(), fifo=lines.append, mailer=mails)
    vs = "[198.51.100.100]:tcp:80"
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(lvs.run)
            a.close()
            b.close()
            await _until(lambda: len(lines) >= 3, "two real servers down and the quorum lost")
            tg.cancel_scope.cancel()
    finally:
        a.close()
        b.close()
    assert sorted(lines[:2]) == sorted([f"RS [127.0.0.1]:tcp:{port_a} {vs} DOWN\n",
                                        f"RS [127.0.0.2]:tcp:{port_b} {vs} DOWN\n"])
    assert lines[2] == f"VS {vs} DOWN\n"
    subjects = [s for s, _ in mails.sent]
    assert f"[lb1] Realserver [127.0.0.1]:tcp:{port_a} of virtual server {vs} - DOWN" in subjects
    assert f"[lb1] Virtualserver {vs} - DOWN" in subjects
    body = dict(mails.sent)[f"[lb1] Virtualserver {vs} - DOWN"]
    assert body == "=> Lost quorum 1+0=1 <= 0 <="


def test_real_servers_are_named_as_keepalived_fmt_rs_whatever_the_service(tmp_path):
    """keepalived's FMT_RS is always [IP]:PROTO:PORT with the service's protocol: ``none`` for a fwmark
    service (its protocol is ignored) or a group of fwmarks, never the [IP]:PORT pair."""
    from pyvrrpd.checkers import real_server_keys
    from pyvrrpd.daemon.lvs import rs_alert, rs_fifo_label, rs_line

    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent("""
        virtual_server_group MARKS {
            fwmark 8
        }
        virtual_server fwmark 7 {
            lb_algo rr
            lb_kind NAT
            protocol TCP
            real_server 203.0.113.11 80 {
            }
        }
        virtual_server group MARKS {
            lb_algo rr
            lb_kind DR
            real_server 203.0.113.12 443 {
            }
        }
        virtual_server 198.51.100.100 53 {
            lb_algo rr
            lb_kind NAT
            protocol UDP
            real_server 203.0.113.13 5353 {
            }
        }
        virtual_server 2001:db8::100 80 {
            lb_algo rr
            lb_kind NAT
            protocol TCP
            real_server 2001:db8::11 8080 {
            }
        }
    """))
    config = load(str(path), host_checks=False).config
    names = [(rs_fifo_label(vs, key), key.vs) for vs, _, key in real_server_keys(config)]
    assert names == [("[203.0.113.11]:none:80", "FWM 7"), ("[203.0.113.12]:none:443", "[MARKS]:0"),
                     ("[203.0.113.13]:udp:5353", "[198.51.100.100]:udp:53"),
                     ("[2001:db8::11]:tcp:8080", "[2001:db8::100]:tcp:80")]
    vs, _, key = next(real_server_keys(config))
    assert rs_line(vs, key, True) == "RS [203.0.113.11]:none:80 FWM 7 UP\n"
    subject = rs_alert("lb1", vs, key, False, "x")[0]
    assert subject == "[lb1] Realserver [203.0.113.11]:none:80 of virtual server FWM 7 - DOWN"
