"""The LVS chaos harness (tests/kernel/lvs_chaos.py) without a kernel: its schedule, its model, and the
model against pyvrrpd's own table computation for every health state of every config variant. The
runs themselves are in the VM (tests/kernel/guest/guest_lvs_chaos.py, and the documented command)."""

from __future__ import annotations

import itertools

import pytest

from pyvrrpd.config.load import load
from pyvrrpd.lvs import table as t
from tests.kernel import lvs_chaos as lc
from tests.kernel.lvs_chaos import CHANGES, ENDPOINTS, FOREIGN, KINDS, SORRY, VS1, VS3, Event, Model, schedule


def test_the_schedule_replays_and_ends_healed():
    events = schedule(2, 200)
    assert events == schedule(2, 200)
    assert schedule(2, 50)[:50] == events[:50]  # a shorter run is the same run, healed earlier
    assert events != schedule(3, 200)
    m = Model()
    for e in events:
        if e.kind == "flip":
            assert e.target in m.configured(), e  # only a configured real server flaps
        if e.kind == "ipvsadm_d":
            assert e.target in lc.presence(m.table()), e  # it deletes something that is there
        lc.apply_model(m, e)
    assert all(m.health.values())
    assert {e.kind for e in events} == set(KINDS)
    assert {e.target for e in events if e.kind == "reload_change"} == set(CHANGES)


def test_the_short_schedule_has_every_kind():
    events = schedule(159, 11)  # tests/kernel/guest/guest_lvs_chaos.py: every kind, quorum lost and won
    assert {e.kind for e in events} == set(KINDS)
    assert "flip c:81" in map(str, events) and "reload_change weights" in map(str, events)


def test_model_quorum_sorry_server_and_inhibit():
    m = Model()
    assert f"-a -t {VS3} -r {SORRY}:80 -m -w 1" not in m.table()
    m.health["c:81"] = False  # weight 2 < quorum 3: the sorry server alone
    vs3 = [line for line in m.table() if VS3 in line]
    assert vs3 == sorted([f"-A -t {VS3} -s wrr", f"-a -t {VS3} -r {SORRY}:80 -m -w 1"])
    m.variant = frozenset({"weights"})  # a:81 now weighs 3: quorum again
    assert f"-a -t {VS3} -r 203.0.113.2:81 -m -w 3" in m.table()
    m.health["b:80"] = False  # inhibit_on_failure: weight 0
    assert f"-a -t {VS1} -r 203.0.113.3:80 -m -w 0" in m.table()
    assert f"-a -t {FOREIGN[0]} -r {FOREIGN[1]} -m -w 1" in m.table()


def test_must_stay_excuses_a_new_checkers_first_verdict(tmp_path):
    run = lc.LvsChaos(1, 1, tmp_path)
    before = Model()
    before.health["c:81"] = False
    sorry = f"{VS3} {SORRY}:80"
    assert sorry in run.must_stay(Event("flip", "a:80"), before, before)
    assert sorry not in run.must_stay(Event("kill"), before, before)  # a new daemon takes c:81 as up at first
    assert sorry in run.must_stay(Event("reload"), before, before)  # a reload keeps what it knows
    assert run.must_stay(Event("term"), before, before) == {FOREIGN[0]: None, " ".join(FOREIGN): 1}
    assert run.must_stay(Event("reload"), before, before)[f"{VS1} 203.0.113.2:80"] == 3  # and its weight stays
    heavier = before.copy()
    heavier.variant = frozenset({"weights"})
    assert run.must_stay(Event("reload_change", "weights"), before, heavier)[f"{VS1} 203.0.113.2:80"] is None
    before.health["b:80"] = False  # inhibited: weight 0, and a new daemon takes it as up (weight 2) at first
    assert run.must_stay(Event("kill"), before, before)[f"{VS1} 203.0.113.3:80"] is None
    assert f"{VS1} 203.0.113.2:80" not in run.must_stay(Event("ipvsadm_d", f"{VS1} 203.0.113.2:80"), before, before)


def pyvrrpd_table(m: Model, tmp_path) -> list[str]:
    """What pyvrrpd's own table computation makes of the config and health, as ``ipvsadm -Sn`` lines."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(lc.config_text(m, tmp_path))
    loaded = load(str(conf), host_checks=False)
    assert loaded.ok, [d.message for d in loaded.diagnostics]
    vss = loaded.config.virtual_servers
    health = {rid: t.RsHealth(m.health[f"{lc.HOST_OF[str(rs.address)]}:{rs.port}"], None)
              for rid, _, rs in t.rs_ids(vss)}
    table = t.desired(vss, getattr(loaded.config, "virtual_server_groups", ()), health).table
    lines = [f"-A -t {FOREIGN[0]} -s rr", f"-a -t {FOREIGN[0]} -r {FOREIGN[1]} -m -w 1"]
    for key, svc in table.services.items():
        lines.append(f"-A -t {key.addr}:{key.port} -s {svc.scheduler}")
    for (key, _), d in table.dests.items():
        fwd = {t.MASQ: "-m", t.DROUTE: "-g"}[d.fwd]
        lines.append(f"-a -t {key.addr}:{key.port} -r {d.key.addr}:{d.key.port} {fwd} -w {d.weight}")
    return sorted(lines)


@pytest.mark.parametrize("variant", [frozenset(c) for n in range(len(CHANGES) + 1)
                                     for c in itertools.combinations(CHANGES, n)], ids=str)
def test_the_model_agrees_with_pyvrrpds_table(variant, tmp_path):
    """Every health state of every configured endpoint, for each config variant (the harness's model is
    written independently: this keeps the two honest)."""
    m = Model(variant=variant)
    endpoints = m.configured()
    for states in itertools.product([True, False], repeat=len(endpoints)):
        m.health = {e: True for e in ENDPOINTS} | dict(zip(endpoints, states))
        assert m.table() == pyvrrpd_table(m, tmp_path), m.health
