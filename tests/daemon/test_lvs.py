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
