"""The LVS subsystem against the in-memory IPVS table, under trio's autojump clock."""

from __future__ import annotations

import errno
from contextlib import asynccontextmanager
from ipaddress import ip_address

import anyio
import pytest
from trio.testing import MockClock

from pyvrrpd.lvs import diff as d
from pyvrrpd.lvs import table as t
from pyvrrpd.lvs.ipvs import FakeIpvs
from pyvrrpd.lvs.reconciler import LvsSubsystem
from pyvrrpd.lvs.table import Destination, DestKey, Service, ServiceKey, Table
from pyvrrpd.net.errors import NetError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


CONF = """
virtual_server 198.51.100.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 2
    quorum_down "/bin/true down"
    sorry_server 203.0.113.99 80
    real_server 203.0.113.11 80 { weight 1
        TCP_CHECK { } }
    real_server 203.0.113.12 80 { weight 2
        inhibit_on_failure
        TCP_CHECK { } }
}
"""
PLAIN = CONF.replace("quorum 2\n", "").replace("    sorry_server 203.0.113.99 80\n", "")
VS = ServiceKey(4, 6, ip_address("198.51.100.100"), 80)
FOREIGN = ServiceKey(4, 6, ip_address("198.51.100.200"), 443)
R11, R12, R13, SORRY = (DestKey(ip_address(f"203.0.113.{i}"), 80) for i in (11, 12, 13, 99))
VS_NAME = "TCP 198.51.100.100:80"
ID11, ID12 = t.RsId(VS_NAME, R11.addr, 80), t.RsId(VS_NAME, R12.addr, 80)


def weights(fake: FakeIpvs, key: ServiceKey = VS) -> dict[str, int]:
    return {str(dk): x.weight for (sk, dk), x in fake.dests.items() if sk == key}


async def started(tg, lvs):
    await tg.start(lvs.run)


async def test_start_programs_the_table_before_reporting_ready(config):
    fake = FakeIpvs()
    lvs = LvsSubsystem(config(CONF), port=fake)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert fake.services == {VS: Service(VS, "rr")}
        assert weights(fake) == {"203.0.113.11:80": 1, "203.0.113.12:80": 2}
        snap = lvs.snapshot()
        assert snap["services"] == 1 and snap["destinations"] == 2 and snap["quorum"] == {VS_NAME: True}
        tg.cancel_scope.cancel()
    assert fake.services == {} and fake.closed  # removed on stop


async def test_adopts_an_existing_table_without_removing_anything(config):
    have = Table({VS: Service(VS, "rr")}, {(VS, R11): Destination(R11, 1), (VS, R12): Destination(R12, 5)})
    fake = FakeIpvs(have)
    lvs = LvsSubsystem(config(CONF), port=fake)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert fake.log == [d.EditDest(VS, Destination(R12, 2))]  # one in-place edit, nothing else
        tg.cancel_scope.cancel()


async def test_health_changes_are_single_operations(config):
    fake = FakeIpvs()
    lvs = LvsSubsystem(config(PLAIN), port=fake)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        fake.log.clear()
        lvs.set_health(ID12, False)  # inhibit_on_failure: weight 0, kept
        await anyio.sleep(0.01)
        assert fake.log == [d.EditDest(VS, Destination(R12, 0))]
        lvs.set_health(ID12, True, weight=7)  # misc_dynamic
        await anyio.sleep(0.01)
        assert weights(fake) == {"203.0.113.11:80": 1, "203.0.113.12:80": 7}
        lvs.set_health(ID11, False)  # removed
        await anyio.sleep(0.01)
        assert weights(fake) == {"203.0.113.12:80": 7}
        lvs.set_health(ID11, False)  # no change, nothing to do
        assert lvs.counters.health_updates == 3
        tg.cancel_scope.cancel()


async def test_quorum_lost_sorry_server_and_event(config):
    fake = FakeIpvs()
    seen = []
    lvs = LvsSubsystem(config(CONF), port=fake, on_event=seen.append)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        lvs.set_health(ID11, False)
        lvs.set_health(ID12, False)
        await anyio.sleep(0.01)
        assert weights(fake) == {"203.0.113.12:80": 0, "203.0.113.99:80": 1}
        assert [(e.vs, e.up, e.script.argv) for e in seen] == [(VS_NAME, False, ("/bin/true", "down"))]
        assert lvs.snapshot()["events"][0]["text"].startswith("Lost quorum")
        tg.cancel_scope.cancel()


async def test_entry_deleted_behind_its_back_is_restored_at_the_next_pass(config):
    fake = FakeIpvs()
    lvs = LvsSubsystem(config(PLAIN), port=fake, resync_interval=5)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        del fake.dests[(VS, R11)]  # ipvsadm -d
        fake.dests[(VS, R12)] = Destination(R12, 50)  # ipvsadm -e
        fake.log.clear()
        await anyio.sleep(5.5)
        assert weights(fake) == {"203.0.113.11:80": 1, "203.0.113.12:80": 2}
        assert sorted(map(str, fake.log)) == ["add 203.0.113.11:80 Masq 1 to TCP 198.51.100.100:80",
                                              "edit 203.0.113.12:80 Masq 2 of TCP 198.51.100.100:80"]
        assert lvs.counters.repairs == 2
        tg.cancel_scope.cancel()


async def test_foreign_entries_are_never_touched(config):
    foreign = Table({VS: Service(VS, "rr"), FOREIGN: Service(FOREIGN, "sh")},
                    {(VS, R13): Destination(R13, 9), (FOREIGN, R11): Destination(R11, 3)})
    fake = FakeIpvs(foreign)
    lvs = LvsSubsystem(config(CONF), port=fake)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert weights(fake) == {"203.0.113.13:80": 9, "203.0.113.11:80": 1, "203.0.113.12:80": 2}
        tg.cancel_scope.cancel()
    # on stop: our destinations go one by one; the service stays for the foreign one; the foreign service stays
    assert fake.table == Table({VS: Service(VS, "rr"), FOREIGN: Service(FOREIGN, "sh")},
                               {(VS, R13): Destination(R13, 9), (FOREIGN, R11): Destination(R11, 3)})
    assert fake.log[-2:] == [d.DelDest(VS, R11), d.DelDest(VS, R12)]


async def test_stop_deletes_each_service_with_its_destinations(config):
    """SIGTERM: one DelService per owned service, no DelDest (the kernel deletes a service's destinations
    with it), and the believed table follows."""
    many = "".join(PLAIN.replace("198.51.100.100 80", f"198.51.100.100 {port}") for port in range(80, 85))
    fake = FakeIpvs(Table({FOREIGN: Service(FOREIGN, "sh")}, {(FOREIGN, R11): Destination(R11, 3)}))
    lvs = LvsSubsystem(config(many), port=fake)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert len(fake.services) == 6 and len(fake.dests) == 11
        fake.log.clear()
        tg.cancel_scope.cancel()
    assert fake.log == [d.DelService(ServiceKey(4, 6, VS.addr, port)) for port in range(80, 85)]
    assert fake.table == Table({FOREIGN: Service(FOREIGN, "sh")}, {(FOREIGN, R11): Destination(R11, 3)})
    assert lvs.actual == fake.table and lvs.counters.by_kind.get("DelDest", 0) == 0


async def test_the_believed_table_loses_a_deleted_services_destinations(config):
    lvs = LvsSubsystem(config(CONF), port=FakeIpvs())
    have = Table({VS: Service(VS, "rr"), FOREIGN: Service(FOREIGN, "sh")},
                 {(VS, R11): Destination(R11, 1), (VS, R12): Destination(R12, 2), (FOREIGN, R11): Destination(R11, 3)})
    for ops in ([d.DelService(VS)], [d.DelDest(FOREIGN, R11), d.DelService(VS)], [d.DelService(VS), d.DelService(FOREIGN)],
                [d.AddDest(FOREIGN, Destination(R13, 1)), d.DelService(VS)]):
        lvs.actual = have
        assert lvs._after(ops) == d.apply(have, ops)
    lvs.actual = have
    assert lvs._after([d.DelService(VS), d.DelService(VS)]) == Table(  # (a stale cache: corrected by a full pass)
        {FOREIGN: Service(FOREIGN, "sh")}, {(FOREIGN, R11): Destination(R11, 3)}) and lvs._full_due


async def test_release_on_stop_false_keeps_the_table(config):
    fake = FakeIpvs()
    lvs = LvsSubsystem(config(CONF), port=fake, release_on_stop=False)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        tg.cancel_scope.cancel()
    assert len(fake.dests) == 2


async def test_lvs_flush_at_start_and_flush_on_stop(config):
    fake = FakeIpvs(Table({FOREIGN: Service(FOREIGN, "sh")}))
    cfg = config("global_defs {\nlvs_flush\nlvs_flush_on_stop\n}\n" + CONF)
    lvs = LvsSubsystem(cfg, port=fake)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert fake.log[0] == d.Flush() and FOREIGN not in fake.services
        fake.services[FOREIGN] = Service(FOREIGN, "sh")
        tg.cancel_scope.cancel()
    assert fake.log[-1] == d.Flush() and fake.services == {}


def failing(kind: type, times: int, code: int):
    """A FakeIpvs ``fail`` hook: the first ``times`` operations of ``kind`` fail with ``code``."""
    left = {"n": times}

    def fail(op):
        if isinstance(op, kind) and left["n"]:
            left["n"] -= 1
            return code
        return None

    return fail


async def test_kernel_errors_are_counted_and_retried(config):
    fake = FakeIpvs(fail=failing(d.AddDest, 3, errno.ENOMEM))
    lvs = LvsSubsystem(config(CONF), port=fake, retry_delay=1, resync_interval=30)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert lvs.counters.errors == 2 and "Cannot allocate memory (ENOMEM)" in lvs.snapshot()["last_error"]
        await anyio.sleep(1.5)  # first retry: one more failure
        assert lvs.counters.errors == 3 and len(fake.dests) == 1
        await anyio.sleep(2.5)  # second retry, 2 s later: done
        assert weights(fake) == {"203.0.113.11:80": 1, "203.0.113.12:80": 2}
        assert lvs.snapshot()["last_error"] is None
        tg.cancel_scope.cancel()


async def test_dump_failure_is_not_fatal(config):
    fake = FakeIpvs()
    calls = {"n": 0}
    real_dump = fake.dump

    async def flaky_dump():
        calls["n"] += 1
        if calls["n"] == 1:
            raise NetError("ipvs dump", errno=errno.EBUSY)
        return await real_dump()

    fake.dump = flaky_dump
    lvs = LvsSubsystem(config(CONF), port=fake, retry_delay=1)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert fake.dests == {} and lvs.counters.errors == 1
        await anyio.sleep(1.5)
        assert len(fake.dests) == 2
        tg.cancel_scope.cancel()


async def test_reconfigure_removes_what_is_gone_and_adds_what_is_new(config):
    fake = FakeIpvs()
    lvs = LvsSubsystem(config(CONF), port=fake)
    new = CONF.replace("198.51.100.100 80", "198.51.100.101 80").replace("real_server 203.0.113.12", "real_server 203.0.113.13")
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        lvs.set_health(ID11, False)
        assert await lvs.reconfigure(config(new)) is None
        await anyio.sleep(0.01)
        new_vs = ServiceKey(4, 6, ip_address("198.51.100.101"), 80)
        assert list(fake.services) == [new_vs]
        assert weights(fake, new_vs) == {"203.0.113.11:80": 1, "203.0.113.13:80": 2}
        assert lvs.health == {}  # health of real servers of the old config is dropped
        tg.cancel_scope.cancel()
    assert fake.services == {}


async def test_no_ip_vs_falls_back_to_the_in_memory_table(config):
    async def no_ipvs():
        raise NetError("open IPVS generic netlink", errno=errno.ENOENT, detail="IPVS unavailable")

    lvs = LvsSubsystem(config(CONF), open_port=no_ipvs)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert lvs.snapshot()["kernel"] is False and lvs.snapshot()["destinations"] == 2
        tg.cancel_scope.cancel()


async def test_set_health_before_start_and_for_unknown_servers_is_harmless(config):
    fake = FakeIpvs()
    lvs = LvsSubsystem(config(CONF), port=fake)
    lvs.set_health(ID11, False)
    lvs.set_health(t.RsId("TCP 198.51.100.7:80", R11.addr, 80), False)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert weights(fake) == {"203.0.113.12:80": 2}
        tg.cancel_scope.cancel()


async def test_the_believed_table_follows_any_order_of_operations(config):
    """What the subsystem believes the kernel holds, after operations in diff()'s order or any other."""
    lvs = LvsSubsystem(config(CONF), port=FakeIpvs())
    svc, dest = Service(VS, "rr"), Destination(R11, 1)
    for ops in ([d.AddService(svc), d.AddDest(VS, dest), d.DelDest(VS, R11)],
                [d.Flush(), d.AddService(svc), d.AddDest(VS, dest)],
                [d.AddService(svc), d.DelService(VS), d.AddService(svc)]):
        lvs.actual = Table()
        assert lvs._after(ops) == d.apply(Table(), ops)


# ------------------------------------------------------------------ reload


@asynccontextmanager
async def running(conf):
    """The reconciler started on a fresh in-memory kernel table; cancelled on the way out."""
    fake = FakeIpvs()
    lvs = LvsSubsystem(conf, port=fake)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        yield lvs, fake
        tg.cancel_scope.cancel()


async def test_reload_edits_a_changed_weight_in_place_and_touches_nothing_else(config):
    async with running(config(PLAIN)) as (lvs, fake):
        fake.log.clear()
        dumps = fake.dumps
        for _ in range(50):  # unchanged, however often: nothing at all, no drift
            assert await lvs.reconfigure(config(PLAIN)) is None
            await anyio.sleep(0.01)
        assert fake.log == [] and fake.table == lvs.actual
        assert await lvs.reconfigure(config(PLAIN.replace("weight 2", "weight 5"))) is None
        await anyio.sleep(0.01)
        assert fake.log == [d.EditDest(VS, Destination(R12, 5))]  # edited in place: never delete + add
        assert fake.dumps == dumps  # and no dump: one netlink operation for the whole reload
        assert weights(fake) == {"203.0.113.11:80": 1, "203.0.113.12:80": 5}


async def test_reload_keeps_health_a_failed_real_server_is_not_re_added(config):
    async with running(config(PLAIN)) as (lvs, fake):
        lvs.set_health(ID11, False)
        await anyio.sleep(0.01)
        fake.log.clear()
        new = PLAIN.replace("weight 1", "weight 3").replace("weight 2", "weight 4")
        assert await lvs.reconfigure(config(new)) is None
        await anyio.sleep(0.01)
        # the failed one stays out (its new weight waits for it to come back); the healthy one is edited
        assert fake.log == [d.EditDest(VS, Destination(R12, 4))]
        lvs.set_health(ID11, True)
        await anyio.sleep(0.01)
        assert weights(fake) == {"203.0.113.11:80": 3, "203.0.113.12:80": 4}


async def test_reload_adds_and_removes_real_servers_and_services(config):
    fake = FakeIpvs()
    lvs = LvsSubsystem(config(PLAIN), port=fake)
    other = "virtual_server 198.51.100.101 80 {\n protocol TCP\n real_server 203.0.113.21 80 { }\n}\n"
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        fake.log.clear()
        new = PLAIN.replace("real_server 203.0.113.12", "real_server 203.0.113.13") + other
        assert await lvs.reconfigure(config(new)) is None
        await anyio.sleep(0.01)
        vs2 = ServiceKey(4, 6, ip_address("198.51.100.101"), 80)
        assert sorted(map(str, fake.log)) == sorted(map(str, [
            d.AddDest(VS, Destination(R13, 2)), d.AddService(Service(vs2, "wlc")),
            d.AddDest(vs2, Destination(DestKey(ip_address("203.0.113.21"), 80), 1)), d.DelDest(VS, R12)]))
        assert isinstance(fake.log[-1], d.DelDest)  # removals last
        fake.log.clear()
        assert await lvs.reconfigure(config(PLAIN)) is None  # and back: the second service goes
        await anyio.sleep(0.01)
        assert list(fake.services) == [VS]
        assert weights(fake) == {"203.0.113.11:80": 1, "203.0.113.12:80": 2}
        assert d.DelService(vs2) in fake.log
        tg.cancel_scope.cancel()


async def test_lvs_timeouts_are_set_at_start_and_after_a_reload(config):
    fake = FakeIpvs(fail=failing(d.SetTimeouts, 1, errno.EPERM))
    lvs = LvsSubsystem(config("global_defs {\nlvs_timeouts tcp 900 udp 60\n}\n" + CONF), port=fake, retry_delay=1)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        assert fake.timeouts == (0, 0, 0) and lvs.counters.errors == 1  # refused: retried at the next pass
        assert len(fake.dests) == 2  # the table is programmed all the same
        await anyio.sleep(1.5)
        assert fake.timeouts == (900, 0, 60)
        assert await lvs.reconfigure(config("global_defs {\nlvs_timeouts tcpfin 30\n}\n" + CONF)) is None
        await anyio.sleep(0.01)
        assert fake.timeouts == (900, 30, 60)  # a 0 keeps the kernel's value
        assert [op for op in fake.log if isinstance(op, d.SetTimeouts)] == [d.SetTimeouts(900, 0, 60),
                                                                             d.SetTimeouts(0, 30, 0)]
        tg.cancel_scope.cancel()


async def test_no_lvs_timeouts_no_set_config(config):
    fake = FakeIpvs()
    lvs = LvsSubsystem(config(CONF), port=fake)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        await lvs.reconfigure(config(CONF))
        await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert not any(isinstance(op, d.SetTimeouts) for op in fake.log)


async def test_tunnel_options_reach_the_destination(config):
    fake = FakeIpvs()
    lvs = LvsSubsystem(config("""
        virtual_server 198.51.100.100 80 {
            lb_algo rr
            lb_kind TUN type gre csum
            protocol TCP
            real_server 203.0.113.11 80 {
            }
            real_server 203.0.113.12 80 {
                lvs_method TUN type gue port 6080 remcsum
            }
            real_server 203.0.113.13 80 {
                lvs_method TUN
            }
        }
    """), port=fake)
    async with anyio.create_task_group() as tg:
        await tg.start(lvs.run)
        got = {str(dk): (x.fwd, x.tun_type, x.tun_port, x.tun_flags) for (_, dk), x in fake.dests.items()}
        assert got == {"203.0.113.11:80": (t.TUNNEL, 2, 0, 1), "203.0.113.12:80": (t.TUNNEL, 1, 6080, 2),
                       "203.0.113.13:80": (t.TUNNEL, 0, 0, 0)}
        tg.cancel_scope.cancel()


def test_burst_restores_the_collector():
    import gc

    from pyvrrpd.collector import burst

    assert gc.isenabled()
    with pytest.raises(ValueError), burst():
        assert not gc.isenabled()
        raise ValueError
    assert gc.isenabled()
    gc.disable()
    try:
        with burst():
            pass
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()


async def test_passes_do_not_count_the_frozen_objects(config, monkeypatch):
    """gc.get_freeze_count() walks every frozen object (a few ms in a daemon): the passes (a full one every
    10 s, one per health change) must not call it; three calls a pass held the event loop for most of
    12.6 ms per full pass in bench/soak.py's daemon."""
    import gc

    from pyvrrpd import collector

    def counted():
        raise AssertionError("gc.get_freeze_count() called")

    fake = FakeIpvs()
    lvs = LvsSubsystem(config(PLAIN), port=fake, resync_interval=5)
    collector.freeze()
    monkeypatch.setattr(gc, "get_freeze_count", counted)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(lvs.run)
            lvs.set_health(ID11, up=False)
            await anyio.sleep(5.5)  # a health change's pass, then a full one
            assert weights(fake) == {"203.0.113.12:80": 2}
            assert lvs.counters.full_passes == 2
            tg.cancel_scope.cancel()
    finally:
        collector.thaw()
