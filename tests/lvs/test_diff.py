"""diff(desired, actual, owned): smallest operations, owned entries only, in a safe order."""

from __future__ import annotations

import errno
from ipaddress import ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvrrpd.lvs import diff as d
from pyvrrpd.lvs.table import DROUTE, MASQ, F_HASHED, Destination, DestKey, Service, ServiceKey, Table

S1 = ServiceKey(4, 6, ip_address("198.51.100.100"), 80)
S2 = ServiceKey(4, 17, ip_address("198.51.100.100"), 53)
S3 = ServiceKey(6, 0, None, 0, 3)
R1, R2, R3 = (DestKey(ip_address(f"203.0.113.{i}"), 80) for i in (11, 12, 13))


def svc(key=S1, sched="wlc", **kw) -> Service:
    return Service(key, sched, **kw)


def dest(key=R1, weight=1, **kw) -> Destination:
    return Destination(key, weight, **kw)


def table(services=(), dests=()) -> Table:
    return Table({s.key: s for s in services}, {(sk, x.key): x for sk, x in dests})


def test_empty_to_full_adds_services_then_destinations():
    want = table([svc()], [(S1, dest(R1)), (S1, dest(R2))])
    ops = d.diff(want, Table())
    assert ops == [d.AddService(svc()), d.AddDest(S1, dest(R1)), d.AddDest(S1, dest(R2))]


def test_weight_change_is_one_edit():
    have = table([svc()], [(S1, dest(R1, 5)), (S1, dest(R2))])
    want = table([svc()], [(S1, dest(R1, 0)), (S1, dest(R2))])
    assert d.diff(want, have, {S1}, {(S1, R1), (S1, R2)}) == [d.EditDest(S1, dest(R1, 0))]


def test_scheduler_and_forwarding_changes_are_edits():
    have = table([svc(sched="rr")], [(S1, dest(R1, fwd=MASQ))])
    want = table([svc(sched="wlc")], [(S1, dest(R1, fwd=DROUTE))])
    assert d.diff(want, have, {S1}, {(S1, R1)}) == [d.EditService(svc()), d.EditDest(S1, dest(R1, fwd=DROUTE))]


def test_kernel_hashed_flag_is_not_a_difference():
    have = table([svc(flags=F_HASHED | 1, timeout=300)])
    want = table([svc(flags=1, timeout=300)])
    assert d.diff(want, have, {S1}) == []


def test_matching_entries_are_adopted_as_they_are():
    both = table([svc(), svc(S2)], [(S1, dest(R1)), (S2, dest(R2))])
    assert d.diff(both, both, {S1, S2}, {(S1, R1), (S2, R2)}) == []


def test_foreign_entries_are_never_touched():
    have = table([svc(), svc(S2)], [(S1, dest(R1)), (S1, dest(R3)), (S2, dest(R2))])
    want = table([svc()], [(S1, dest(R1))])
    # S2 and R3 are someone else's: nothing to do
    assert d.diff(want, have, {S1}, {(S1, R1)}) == []


def test_removal_order_destinations_before_services():
    have = table([svc(), svc(S2), svc(S3)], [(S1, dest(R1)), (S2, dest(R2)), (S2, dest(R3)), (S3, dest(R1)),
                                             (S3, dest(R3))])
    want = table([svc()], [(S1, dest(R2))])
    # S3 keeps a foreign destination (R3): it stays, and its owned one goes on its own
    ops = d.diff(want, have, {S1, S2, S3}, {(S1, R1), (S1, R2), (S2, R2), (S2, R3), (S3, R1)})
    assert ops == [d.AddDest(S1, dest(R2)), d.DelDest(S1, R1), d.DelDest(S3, R1), d.DelService(S2)]


def test_a_deleted_service_takes_its_destinations_without_a_deletion_each():
    """The kernel's DEL_SERVICE deletes the service's destinations: the stop's release is one operation
    per service (1,000 x 10 -> 1,000 operations, not 11,000)."""
    have = table([svc(), svc(S2)], [(S1, dest(R1)), (S1, dest(R2)), (S2, dest(R2)), (S2, dest(R3))])
    owned_d = {(S1, R1), (S1, R2), (S2, R2), (S2, R3)}
    assert d.diff(Table(), have, {S1, S2}, owned_d) == [d.DelService(S1), d.DelService(S2)]
    assert d.apply(have, d.diff(Table(), have, {S1, S2}, owned_d)) == Table()
    # a partial change is as before: the service stays, its removed destination is deleted on its own
    want = table([svc(), svc(S2)], [(S1, dest(R1)), (S2, dest(R2))])
    assert d.diff(want, have, {S1, S2}, owned_d) == [d.DelDest(S1, R2), d.DelDest(S2, R3)]
    # a service of an old config (owned, no longer desired) goes with its destinations, down ones included
    want = table([svc()], [(S1, dest(R1)), (S1, dest(R2))])
    assert d.diff(want, have, {S1, S2}, owned_d) == [d.DelService(S2)]


def test_owned_service_with_a_foreign_destination_is_kept():
    have = table([svc(S2)], [(S2, dest(R2)), (S2, dest(R3))])
    ops = d.diff(Table(), have, {S2}, {(S2, R2)})
    assert ops == [d.DelDest(S2, R2)]


def test_indexed_dests_keep_their_index_whatever_changes_them():
    x = d.IndexedDests({(S1, R1): dest(R1), (S2, R2): dest(R2)})
    x[(S1, R2)] = dest(R2)
    x[(S1, R2)] = dest(R2, 5)  # replaced: indexed once
    x.setdefault((S3, R3), dest(R3))
    x |= {(S2, R3): dest(R3)}
    assert x.keys_of(S1) == [(S1, R1), (S1, R2)] and x.keys_of(S2) == [(S2, R2), (S2, R3)]
    del x[(S1, R1)]
    assert x.pop((S1, R2)).weight == 5 and x.pop((S1, R2), None) is None
    assert x.keys_of(S1) == [] and S1 not in x.by_service
    x.popitem()
    assert x.keys_of(S2) == [(S2, R2)] and x.keys_of(S3) == [(S3, R3)]
    x.clear()
    assert x == {} and x.by_service == {}


def test_apply_deletes_many_services_in_linear_time():
    """Each DelService looks only at its own destinations (a scan of the whole table per service would
    be 1,000 x 10,000 key comparisons here: counted, not timed)."""
    keys = [ServiceKey(4, 6, ip_address("198.51.100.100"), port) for port in range(1, 1001)]
    rs = [DestKey(ip_address(f"203.0.113.{i}"), 80) for i in range(1, 11)]
    big = Table({k: svc(k) for k in keys}, {(k, r): dest(r) for k in keys for r in rs})
    ops = d.diff(Table(), big, set(keys), set(big.dests))
    assert len(ops) == 1000 and all(isinstance(op, d.DelService) for op in ops)
    compared = 0

    class Key(tuple):  # counts the destination keys a DelService looks at
        def __getitem__(self, i):
            nonlocal compared
            compared += 1
            return tuple.__getitem__(self, i)

    dests = d.IndexedDests({Key(k): x for k, x in big.dests.items()})
    compared = 0
    services = dict(big.services)
    for op in ops:
        d.apply_one(services, dests, op)
    assert services == {} and dests == {} and dests.by_service == {}
    assert compared <= 2 * len(big.dests)


def test_readded_after_deletion_behind_our_back():
    want = table([svc()], [(S1, dest(R1)), (S1, dest(R2))])
    have = table([svc()], [(S1, dest(R2))])  # ipvsadm -d -t ... -r R1
    assert d.diff(want, have, {S1}, {(S1, R1), (S1, R2)}) == [d.AddDest(S1, dest(R1))]


@pytest.mark.parametrize(("op", "code"), [
    (d.AddService(svc()), errno.EEXIST),
    (d.EditService(svc(S2)), errno.ESRCH),
    (d.DelService(S2), errno.ESRCH),
    (d.AddDest(S1, dest(R1)), errno.EEXIST),
    (d.AddDest(S2, dest(R1)), errno.ESRCH),
    (d.EditDest(S1, dest(R3)), errno.ENOENT),
    (d.DelDest(S1, R3), errno.ENOENT),
    (d.DelDest(S2, R3), errno.ESRCH),
])
def test_apply_refuses_like_the_kernel(op, code):
    with pytest.raises(d.OpError) as exc:
        d.apply(table([svc()], [(S1, dest(R1))]), [op])
    assert exc.value.errno == code and str(op) in str(exc.value)


def test_apply_flush_and_service_deletion_takes_destinations():
    t = table([svc(), svc(S2)], [(S1, dest(R1)), (S2, dest(R2))])
    assert d.apply(t, [d.DelService(S2)]) == table([svc()], [(S1, dest(R1))])
    assert d.apply(t, [d.Flush()]) == Table()


def test_operations_read_well():
    assert str(d.EditDest(S1, dest(R1, 0))) == "edit 203.0.113.11:80 Masq 0 of TCP 198.51.100.100:80"
    assert str(d.DelService(S3)) == "delete service FWM 3 IPv6"
    assert str(d.AddService(svc(timeout=300))) == "add service TCP 198.51.100.100:80 wlc persistent 300"


# --------------------------------------------------------------------------- property

SERVICE_KEYS = [S1, S2, S3, ServiceKey(4, 6, ip_address("198.51.100.101"), 80)]
DEST_KEYS = [R1, R2, R3, DestKey(ip_address("2001:db8::11"), 80)]

services_st = st.builds(
    Service, key=st.just(S1), scheduler=st.sampled_from(["rr", "wlc", "sh"]),
    flags=st.sampled_from([0, 1, 4, F_HASHED]), timeout=st.sampled_from([0, 300]),
)
dests_st = st.builds(Destination, key=st.just(R1), weight=st.integers(0, 3), fwd=st.sampled_from([MASQ, DROUTE]))


@st.composite
def tables(draw) -> Table:
    keys = draw(st.sets(st.sampled_from(SERVICE_KEYS)))
    services, dests = {}, {}
    for k in keys:
        services[k] = Service(k, *[getattr(draw(services_st), f) for f in ("scheduler", "flags", "timeout")])
        for dk in draw(st.sets(st.sampled_from(DEST_KEYS))):
            x = draw(dests_st)
            dests[(k, dk)] = Destination(dk, x.weight, x.fwd)
    return Table(services, dests)


@st.composite
def owned(draw):
    svcs = draw(st.sets(st.sampled_from(SERVICE_KEYS)))
    pairs = draw(st.sets(st.tuples(st.sampled_from(sorted(svcs, key=str) or SERVICE_KEYS[:1]),
                                   st.sampled_from(DEST_KEYS))))
    return svcs, {p for p in pairs if p[0] in svcs}


@settings(max_examples=400, deadline=None)
@given(desired=tables(), actual=tables(), own=owned())
def test_property_applying_the_diff_yields_desired_and_leaves_the_rest(desired, actual, own):
    owned_services, owned_dests = own
    ops = d.diff(desired, actual, owned_services, owned_dests)
    after = d.apply(actual, ops)  # never an operation the kernel would refuse

    # the owned part is exactly what is desired
    for key, s in desired.services.items():
        assert d.same_service(after.services[key], s)
    for key, x in desired.dests.items():
        assert after.dests[key] == x
    all_owned_dests = set(owned_dests) | set(desired.dests)
    for key in after.dests:
        if key in all_owned_dests:
            assert key in desired.dests
    # everything else is untouched
    for key, x in actual.dests.items():
        if key not in all_owned_dests:
            assert after.dests.get(key) == x
    for key, s in actual.services.items():
        if key not in owned_services and key not in desired.services:
            assert after.services.get(key) == s
        if key in owned_services and key not in desired.services and key in after.services:
            assert any(k[0] == key and k not in all_owned_dests for k in actual.dests)  # kept for a foreign dest
    # the smallest operations: nothing is deleted and added again, and a second pass has nothing to do
    deleted = {op.key for op in ops if isinstance(op, d.DelService)}
    added = {op.service.key for op in ops if isinstance(op, d.AddService)}
    assert not deleted & added
    deleted_d = {(op.service, op.key) for op in ops if isinstance(op, d.DelDest)}
    added_d = {(op.service, op.dest.key) for op in ops if isinstance(op, d.AddDest)}
    assert not deleted_d & added_d
    assert d.diff(desired, after, owned_services, owned_dests) == []
    # additions before removals, destinations removed before their service
    kinds = [type(op) for op in ops]
    if d.DelDest in kinds or d.DelService in kinds:
        first_removal = min(i for i, k in enumerate(kinds) if k in (d.DelDest, d.DelService))
        assert all(k not in (d.AddService, d.AddDest, d.EditService, d.EditDest) for k in kinds[first_removal:])
    for i, op in enumerate(ops):
        if isinstance(op, d.DelService):
            assert not any(isinstance(o, d.DelDest) and o.service == op.key for o in ops[i:])
    # a deleted service's destinations go with it: none is deleted on its own
    assert not {op.service for op in ops if isinstance(op, d.DelDest)} & deleted
