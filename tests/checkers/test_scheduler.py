"""The checkers subsystem under trio's MockClock: scripted probe results, exact virtual times.

The probes are replaced by fakes answering from a table the test changes; everything else (the
config, the plan, sharing, the retry rules, the HealthSink calls, the watchdog) is the real thing.
"""

from __future__ import annotations

import textwrap
from collections import Counter

import anyio
import pytest
from trio.testing import MockClock

from pyvrrpd.checkers import RealServerKey, real_server_keys
from pyvrrpd.checkers import scheduler as sched
from pyvrrpd.checkers.net import ProbeError, Result
from pyvrrpd.config.build import build
from pyvrrpd.config.lexer import read_config
from pyvrrpd.config.parser import parse
from tests.checkers.servers import RecordingSink
from tests.daemon.fakes import Log

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


@pytest.fixture
def config(tmp_path):
    def _config(text: str):
        path = tmp_path / "keepalived.conf"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        lines, _ = read_config(str(path), config_id="test")
        root, _ = parse(lines)
        cfg, diags = build(root, host=None)
        return cfg

    return _config


class Fakes:
    """Probe results by port (TCP_CHECK) or program (MISC_CHECK); records every probe's start time."""

    def __init__(self, monkeypatch):
        self.tcp: dict[int, Result] = {}
        self.misc: dict[str, Result] = {}
        self.calls: list[tuple[float, str]] = []
        self.tcp_delay = 0.0
        monkeypatch.setattr(sched, "probe_tcp", self.probe_tcp)
        monkeypatch.setattr(sched, "run_misc", self.run_misc)
        # no probe of these tests may reach the network (their addresses are off this host)
        for name in ("probe_smtp", "probe_dns", "probe_udp", "probe_ping"):
            monkeypatch.setattr(sched, name, self.other)
        monkeypatch.setattr(sched.HttpProbe, "__call__", lambda probe, index: self.other(probe.target))

    async def other(self, target, *args, **kw):
        self.calls.append((anyio.current_time(), f"other {target}"))
        return Result(True)

    async def probe_tcp(self, target):
        self.calls.append((anyio.current_time(), str(target)))
        await anyio.sleep(self.tcp_delay)
        result = self.tcp.get(target.port, Result(True))
        if isinstance(result, Exception):
            raise result
        return result

    async def run_misc(self, script, timeout, *, dynamic=False, account=(None, None)):
        self.calls.append((anyio.current_time(), script.argv[0]))
        return self.misc.get(script.argv[0], Result(True))


@pytest.fixture
def fakes(monkeypatch):
    return Fakes(monkeypatch)


FAIL = Result(False, "refused", "connect: refused")


def vs(addr: str, *rs_blocks: str, extra: str = "") -> str:
    body = "\n".join(rs_blocks)
    return f"""
virtual_server {addr} 80 {{
    delay_loop 5
    lb_algo rr
    lb_kind NAT
    protocol TCP
{extra}
{body}
}}
"""


def rs(addr: str, port: int, checker: str = "TCP_CHECK { connect_timeout 1 }", extra: str = "") -> str:
    return f"""
    real_server {addr} {port} {{
        {extra}
        {checker}
    }}
"""


async def running(cfg, sink, body):
    """Run the subsystem, call ``body(checkers)``, then stop it."""
    checkers = sched.Checkers(cfg, sink, log=Log())
    async with anyio.create_task_group() as tg:
        await tg.start(checkers.run)
        await body(checkers)
        tg.cancel_scope.cancel()
    return checkers


def key(vs_label: str, addr: str, port: int) -> RealServerKey:
    import ipaddress

    return RealServerKey(vs_label, ipaddress.ip_address(addr), port)


RS1 = key("[203.0.113.10]:tcp:80", "198.51.100.21", 8080)


async def test_initial_state_then_down_after_retries_at_exact_times(config, fakes):
    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080,
                                       "TCP_CHECK { connect_timeout 1\n retry 2\n delay_before_retry 1\n warmup 0 }")))
    sink = RecordingSink()
    times = {}

    async def body(c):
        t0 = anyio.current_time()
        assert sink.calls == [(RS1, True, None)]
        await anyio.sleep(3)  # first check within the first second (no warmup), then every 5 s
        fakes.tcp[8080] = FAIL
        while len(sink.calls) < 2:
            await anyio.sleep(0.01)
        times["down"] = anyio.current_time() - t0

    await running(cfg, sink, body)
    assert sink.calls[1] == (RS1, False, None)
    # up at start, checks at t0 + phase(0) = 0 and 5: the failure at 5, retries at 6 and 7, down at 7
    assert times["down"] == pytest.approx(7.0, abs=0.02)
    assert [round(t - fakes.calls[0][0], 3) for t, _ in fakes.calls] == [0.0, 5.0, 6.0, 7.0]


async def test_identical_checks_run_once_for_every_user(config, fakes):
    same = rs("198.51.100.21", 8080)
    other_timeout = rs("198.51.100.21", 8080, "TCP_CHECK { connect_timeout 2 }")
    cfg = config(vs("203.0.113.10", same) + vs("203.0.113.11", same) + vs("203.0.113.12", other_timeout))
    sink = RecordingSink()
    fakes.tcp[8080] = FAIL

    async def body(c):
        await anyio.sleep(12)
        assert len(c.plan.probes) == 2
        snap = c.snapshot()
        users = sorted(len(p["real_servers"]) for p in snap["probes"])
        assert users == [1, 2]

    c = await running(cfg, sink, body)
    downs = {k.vs for k, up, _ in sink.calls if not up}
    assert downs == {"[203.0.113.10]:tcp:80", "[203.0.113.11]:tcp:80", "[203.0.113.12]:tcp:80"}
    per_probe = Counter(target for _, target in fakes.calls)
    assert set(per_probe) == {"[198.51.100.21]:8080"}
    # two probes (connect_timeout 1 and 2), each about every 5 s over 12 s
    assert sum(per_probe.values()) <= 2 * 4
    assert sum(per_probe.values()) - 2 <= c.counters["checks"] <= sum(per_probe.values())  # (some in flight at stop)


async def test_alpha_starts_down_and_notifies_on_changes(config, fakes):
    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080, extra="alpha\nnotify_up /bin/up.sh\n"
                                                                      "notify_down \"/bin/down.sh x\"")))
    sink = RecordingSink()

    async def body(c):
        assert sink.calls == [(RS1, False, None)]
        await anyio.sleep(8)
        fakes.tcp[8080] = FAIL
        await anyio.sleep(10)

    await running(cfg, sink, body)
    assert [(up, e.script.argv if e.script else None) for e in sink.events for up in [e.up]] == [
        (True, ("/bin/up.sh",)), (False, ("/bin/down.sh", "x"))]
    assert "TCP_CHECK [198.51.100.21]:8080" in sink.events[1].reason


async def test_checks_are_spread_over_the_warmup(config, fakes):
    servers = [rs(f"198.51.100.{i}", 8000 + i) for i in range(1, 101)]
    cfg = config(vs("203.0.113.10", *servers, extra="    delay_loop 10"))
    sink = RecordingSink()

    async def body(c):
        await anyio.sleep(11.5)

    await running(cfg, sink, body)
    t0 = min(t for t, _ in fakes.calls)
    first = sorted({target: t - t0 for t, target in reversed(fakes.calls)}.values())
    assert len(first) == 100
    bins = Counter(int(t) for t in first)
    assert max(bins.values()) <= 15, bins  # ~10 a second, never a burst
    gaps = [b - a for a, b in zip(first, first[1:])]
    assert max(gaps) < 0.5


async def test_misc_dynamic_sets_the_weight(config, fakes):
    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080, "MISC_CHECK { misc_path /bin/w.sh\n misc_dynamic }",
                                       extra="weight 10")))
    sink = RecordingSink()

    async def body(c):
        fakes.misc["/bin/w.sh"] = Result(True, weight=3)
        await anyio.sleep(7)
        fakes.misc["/bin/w.sh"] = Result(True)  # exit 0: the configured weight again
        await anyio.sleep(6)

    await running(cfg, sink, body)
    assert sink.calls == [(RS1, True, None), (RS1, True, 3), (RS1, True, None)]


async def test_file_check(config, fakes, tmp_path):
    f = tmp_path / "state"
    f.write_text("0\n")
    cfg = config(f"""
track_file tf {{
    file {f}
    weight 0
}}
""" + vs("203.0.113.10", rs("198.51.100.21", 8080, "FILE_CHECK { track_file tf }"),  # the track_file's weight 0
         rs("198.51.100.22", 8080, "FILE_CHECK { track_file tf\n weight 5 }", extra="weight 10")))
    sink = RecordingSink()
    rs2 = key("[203.0.113.10]:tcp:80", "198.51.100.22", 8080)

    async def body(c):
        assert sink.state == {RS1: (True, None), rs2: (True, None)}
        f.write_text("1\n")
        await anyio.sleep(1.5)
        assert sink.state == {RS1: (False, None), rs2: (True, 15)}
        f.write_text("-4")
        await anyio.sleep(1.5)
        assert sink.state == {RS1: (False, None), rs2: (True, 0)}
        f.unlink()  # a missing file reads as 0
        await anyio.sleep(1.5)
        assert sink.state == {RS1: (True, None), rs2: (True, None)}

    await running(cfg, sink, body)


async def test_a_probe_that_stops_making_progress_is_reported(config, fakes, monkeypatch):
    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080)))
    sink = RecordingSink()
    log = Log()

    async def stuck_probe(target):
        fakes.calls.append((anyio.current_time(), "stuck"))
        with anyio.CancelScope(shield=True):  # ignores the time limit, as a blocked probe would
            await anyio.sleep(30)
        return Result(True)

    monkeypatch.setattr(sched, "probe_tcp", stuck_probe)
    checkers = sched.Checkers(cfg, sink, log=log)
    async with anyio.create_task_group() as tg:
        await tg.start(checkers.run)
        await anyio.sleep(12)
        snap = checkers.snapshot()
        (probe,) = snap["probes"]
        assert probe["stuck"] and probe["running"] and probe["last_completed"] is None
        assert checkers.counters["stuck"] == 1
        await anyio.sleep(30)
        (probe,) = checkers.snapshot()["probes"]
        assert not probe["stuck"] and probe["last_completed"] is not None
        tg.cancel_scope.cancel()
    assert "checker stuck: no progress" in log.events("error")
    assert "checker moving again" in log.events("info")


async def test_a_probe_bug_is_a_failed_check_not_a_crash(config, fakes):
    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080)))
    sink = RecordingSink()
    fakes.tcp[8080] = ZeroDivisionError("bug")

    async def body(c):
        await anyio.sleep(11)
        (probe,) = c.snapshot()["probes"]
        assert probe["last_result"]["reason"] == "internal-error"
        assert probe["failures"]["internal-error"] >= 2

    await running(cfg, sink, body)
    assert (RS1, False, None) in sink.calls


async def test_a_probe_error_is_a_reason(config, fakes):
    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080)))
    sink = RecordingSink()
    fakes.tcp[8080] = ProbeError("timeout", "no answer")

    async def body(c):
        await anyio.sleep(2)

    c = await running(cfg, sink, body)
    assert c.counters["failed:timeout"] >= 1


async def test_a_hanging_probe_is_cut_at_its_limit(config, fakes):
    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080)))
    sink = RecordingSink()
    fakes.tcp_delay = 1000

    async def body(c):
        await anyio.sleep(4.5)  # started within the first second, cut at the first watchdog round past 2 s
        (probe,) = c.snapshot()["probes"]
        assert probe["last_result"] == {"ok": False, "reason": "timeout", "detail": "no result within 2 s"}

    await running(cfg, sink, body)


async def test_unsupported_and_unusable_checkers_are_warned_about(config, fakes):
    cfg = config("""
bfd_instance b1 {
    neighbor_ip 198.51.100.21
}
virtual_server fwmark 7 {
    delay_loop 5
    lb_algo rr
    lb_kind DR
    ha_suspend
    real_server 198.51.100.21 {
        BFD_CHECK { name b1 }
        TCP_CHECK { connect_timeout 1 }
        PING_CHECK { connect_timeout 1 }
    }
}
""")
    sink = RecordingSink()

    async def body(c):
        await anyio.sleep(0.1)
        warnings = c.snapshot()["warnings"]
        assert any("BFD_CHECK is not supported" in w for w in warnings)
        assert any("TCP_CHECK has no port" in w for w in warnings)
        assert [p["kind"] for p in c.snapshot()["probes"]] == ["PING_CHECK"]

    await running(cfg, sink, body)


async def test_reconfigure_keeps_running_checks_and_their_state(config, fakes):
    a = rs("198.51.100.21", 8080)
    b = rs("198.51.100.22", 8080)
    first, second = config(vs("203.0.113.10", a, b)), config(vs("203.0.113.10", a) + vs("203.0.113.11", b))
    sink = RecordingSink()
    rs2 = key("[203.0.113.10]:tcp:80", "198.51.100.22", 8080)
    moved = key("[203.0.113.11]:tcp:80", "198.51.100.22", 8080)

    async def body(c):
        fakes.tcp[8080] = FAIL
        await anyio.sleep(7)
        assert sink.state[RS1] == (False, None) and sink.state[rs2] == (False, None)
        probes_before = {k: id(p) for k, p in c.plan.probes.items()}
        calls_before = len(sink.calls)
        assert await c.reconfigure(second) is None
        assert {k: id(p) for k, p in c.plan.probes.items()} == probes_before  # same checks: same loops
        # only the real server that is new to the config is reported, with the state its check has
        assert sink.calls[calls_before:] == [(moved, False, None)]
        fakes.tcp[8080] = Result(True)
        await anyio.sleep(6)
        assert sink.state[moved] == (True, None) and sink.state[RS1] == (True, None)

    await running(first, sink, body)


async def test_omega_notifies_down_at_stop(config, fakes):
    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080, extra="notify_down /bin/down.sh"), extra="    omega"))
    sink = RecordingSink()

    async def body(c):
        await anyio.sleep(1)

    await running(cfg, sink, body)
    assert [(e.up, e.script.argv, e.reason) for e in sink.events] == [(False, ("/bin/down.sh",),
                                                                       "shutting down (omega)")]


def test_keys_are_unique_and_keepalived_spelled(config):
    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080)) * 2 + """
virtual_server fwmark 9 {
    lb_kind DR
    real_server 198.51.100.21 {
    }
}
virtual_server 2001:db8::10 443 {
    protocol TCP
    real_server 2001:db8::21 443 {
    }
}
""")
    labels = [k.vs for _, _, k in real_server_keys(cfg)]
    assert labels == ["[203.0.113.10]:tcp:80", "[203.0.113.10]:tcp:80 #2", "FWM 9", "[2001:db8::10]:tcp:443"]
    assert str(RS1) == "[198.51.100.21]:8080 of VS [203.0.113.10]:tcp:80"


async def test_gate_limits_probes_in_flight():
    gate = sched.Gate(2)
    assert gate.try_enter() and gate.try_enter() and not gate.try_enter()
    order = []

    async def waiter(name):
        await gate.enter()
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "a")
        await anyio.sleep(0.1)
        with anyio.CancelScope() as cancelled:
            cancelled.cancel()
            await gate.enter()  # cancelled while waiting: leaves no trace
        tg.start_soon(waiter, "b")
        await anyio.sleep(0.1)
        assert order == [] and len(gate.waiting) == 2
        gate.leave()
        await anyio.sleep(0.1)
        assert order == ["a"]
        gate.leave()
    assert order == ["a", "b"] and gate.inside == 2
    gate.leave()
    gate.leave()
    assert gate.inside == 0 and gate.try_enter()


async def test_snapshot_is_json(config, fakes):
    import json

    cfg = config(vs("203.0.113.10", rs("198.51.100.21", 8080), rs("198.51.100.22", 8080, "HTTP_GET { url { path / } }")))
    checkers = sched.Checkers(cfg, RecordingSink(), log=Log())
    assert json.loads(json.dumps(checkers.snapshot()))["probes"] == []  # before it runs
    fakes.tcp[8080] = FAIL

    async def body(c):
        await anyio.sleep(3)
        snap = json.loads(json.dumps(c.snapshot()))
        tcp = next(p for p in snap["probes"] if p["kind"] == "TCP_CHECK")
        assert tcp["last_result"]["reason"] == "refused" and tcp["failures"] == {"refused": 1}
        assert snap["lateness"]["samples"] >= 1 and snap["counters"]["failed:refused"] == 1
        assert {s["address"]: s["alive"] for s in snap["real_servers"]}["198.51.100.21"] is False

    await running(cfg, RecordingSink(), body)
