"""The rival-master counter: adverts from another router while this one is master (split brain seen
from inside). Counted whether the router accepts the advert (RFC 9568 §6.4.3: yield to a higher one,
reassert against a lower one) or its checks discard it (the password, interval or version mismatches
that keep two masters from hearing each other)."""

from __future__ import annotations

import ipaddress

import pytest

from pyvrrpd.core.actions import Notice, NoticeKind, State
from pyvrrpd.core.packet import Advertisement
from pyvrrpd.core.router import RouterConfig, VirtualRouter

A = ipaddress.ip_address
OURS, LOWER, HIGHER = A("198.51.100.11"), A("198.51.100.10"), A("198.51.100.12")
VIP = A("198.51.100.100")


def advert(priority: int, *, version: int = 2, interval: int = 1, auth_type: int = 0,
           auth_data: bytes = bytes(8), addresses: tuple = (VIP,), vrid: int = 51) -> Advertisement:
    if version == 3:
        return Advertisement(3, 1, vrid, priority, len(addresses), 0, interval, 0, addresses, b"")
    return Advertisement(2, 1, vrid, priority, len(addresses), auth_type, interval, 0, addresses, auth_data)


def router(state: State, **kw: object) -> VirtualRouter:
    cfg = dict(name="VI_1", vrid=51, source=OURS, addresses=(VIP,), priority=100)
    cfg.update(kw)
    r = VirtualRouter(RouterConfig(**cfg))  # type: ignore[arg-type]
    r.startup(0.0)
    if state is State.MASTER:
        r.handle_timer(10.0)  # Master_Down_Interval passed with nothing heard
    assert r.state is state
    return r


@pytest.mark.parametrize("adv, src, counted", [
    (advert(200), HIGHER, 1),                           # higher priority: we yield (still a rival)
    (advert(50), LOWER, 1),                             # lower: "new Active Router", we reassert
    (advert(100), LOWER, 1),                            # equal priority, lower address
    (advert(100), OURS, 0),                             # our own address: not another router
    (advert(0), HIGHER, 0),                             # priority 0: a router stepping down
    (advert(150, interval=2), HIGHER, 1),               # v2 interval mismatch: discarded, still a rival
    (advert(150, auth_type=1, auth_data=b"secret\0\0"), HIGHER, 1),  # authentication mismatch
    (advert(150, version=3, interval=100), HIGHER, 1),  # a v3 router on our v2 VRID
    (advert(150, addresses=(A("198.51.100.200"),)), HIGHER, 1),    # another VIP list
    (advert(150, vrid=52), HIGHER, 0),                  # another VRID is not our virtual router
])
def test_master_counts_rival_masters(adv: Advertisement, src, counted: int) -> None:
    r = router(State.MASTER)
    r.receive(adv, src, 11.0)
    assert r.stats.rival_master_rx == counted


def test_backup_counts_no_rival_masters() -> None:
    r = router(State.BACKUP)
    r.receive(advert(200), HIGHER, 1.0)
    r.receive(advert(150, interval=2), HIGHER, 1.1)
    assert r.stats.rival_master_rx == 0


def test_rival_master_count_adds_up_across_adverts() -> None:
    r = router(State.MASTER, priority=200)
    for i in range(5):
        r.receive(advert(100), HIGHER, 11.0 + i)  # lower priority: we stay master and reassert
    assert r.state is State.MASTER
    assert r.stats.rival_master_rx == 5


def drain(r: VirtualRouter) -> list:
    out = []
    while (action := r.next_action()) is not None:
        out.append(action)
    return out


def test_a_rival_master_is_a_notice_the_daemon_logs() -> None:
    r = router(State.MASTER, priority=200)
    drain(r)
    r.receive(advert(100, auth_type=1, auth_data=b"secret\0\0"), LOWER, 11.0)  # discarded: it stays a master
    notices = [a for a in drain(r) if isinstance(a, Notice) and a.kind is NoticeKind.RIVAL_MASTER]
    assert len(notices) == 1 and "198.51.100.10" in notices[0].detail
    r.receive(advert(100), LOWER, 11.5)  # accepted: the election resolves it ("forcing new election")
    r.receive(advert(0), LOWER, 11.6)
    assert not [a for a in drain(r) if isinstance(a, Notice) and a.kind is NoticeKind.RIVAL_MASTER]
