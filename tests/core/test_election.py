"""Elections between several VirtualRouters on the in-memory LAN (virtual time, no sockets)."""

from __future__ import annotations

import ipaddress

import pytest

from tests.core.lan import Lan
from pyvrrpd.core.actions import State
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.core.timers import master_down_interval, skew_time

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address

# (version, family, advert interval µs): v2 at 1 s, v3 IPv4 at 100 ms, v3 IPv6 at 100 ms.
FLAVOURS = {
    "v2": (2, 4, 1_000_000),
    "v3-ipv4": (3, 4, 100_000),
    "v3-ipv6": (3, 6, 100_000),
}


def router(name: str, host: int, priority: int, flavour: str = "v2", vrid: int = 51, **kw: object) -> VirtualRouter:
    version, family, interval = FLAVOURS[flavour]
    if family == 4:
        source, vip = V4(f"198.51.100.{host}"), V4("198.51.100.100")
    else:
        source, vip = V6(f"fe80::{host}"), V6("2001:db8:1::100")
    cfg = RouterConfig(name, vrid, source, (vip,), version=version, priority=priority,
                       advert_int_us=interval, **kw)  # type: ignore[arg-type]
    return VirtualRouter(cfg)


def mdi(r: VirtualRouter) -> int:
    c = r.config
    return master_down_interval(r.priority, c.advert_int_us, c.version)


def last_delivery(lan: Lan, sender: str, receiver: str, before: int | None = None) -> int:
    return max(t for t, s, r in lan.deliveries if s == sender and r == receiver and (before is None or t < before))


def test_lossy_lan_converges_to_one_master_per_vrid() -> None:
    lan = Lan(seed=0, drop=0.1, dupe=0.1, delay=0.1)
    for name, host, prio in (("a", 11, 150), ("b", 12, 100), ("c", 13, 50)):
        lan.add(router(name, host, prio, "v2", vrid=51))
    for name, host, prio in (("d", 11, 200), ("e", 12, 120), ("f", 13, 120)):
        lan.add(router(name, host, prio, "v3-ipv6", vrid=52))
    lan.run(120)
    lan.drop = lan.dupe = lan.delay = 0.0
    lan.run(10)
    assert lan.masters(51) == ["a"]
    assert lan.masters(52) == ["d"]
    backups = {r.config.name: r.state for r in lan.routers if r.config.name in "bcef"}
    assert backups == dict.fromkeys("bcef", State.BACKUP)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_killed_master_is_replaced_at_last_advert_plus_master_down_interval(flavour: str) -> None:
    lan = Lan()
    a, b, c = (lan.add(router(n, h, p, flavour)) for n, h, p in (("a", 11, 150), ("b", 12, 100), ("c", 13, 50)))
    lan.run(10)
    assert lan.masters(51) == ["a"]
    lan.kill(a)
    lan.run(10)
    (took_over,) = lan.transitions("b", State.MASTER)
    assert took_over == last_delivery(lan, "a", "b") + mdi(b)
    assert lan.masters(51) == ["b"] and c.state is State.BACKUP


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_shutdown_hands_over_after_skew_time(flavour: str) -> None:
    lan = Lan()
    a, b = lan.add(router("a", 11, 150, flavour)), lan.add(router("b", 12, 100, flavour))
    lan.run(10)
    stopped = lan.now_us
    lan.call(a, "shutdown")
    lan.run(5)
    assert lan.transitions("b", State.MASTER) == [stopped + skew_time(100, b.config.advert_int_us, b.config.version)]
    assert a.state is State.INITIALIZE and a.stats.priority_zero_tx == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_higher_priority_router_preempts_when_its_down_timer_fires(flavour: str) -> None:
    lan = Lan()
    low = lan.add(router("low", 11, 100, flavour))
    lan.run(10)
    joined = lan.now_us
    high = lan.add(router("high", 12, 200, flavour))
    lan.run(10)
    assert lan.transitions("high", State.MASTER) == [joined + mdi(high)]
    assert lan.transitions("low", State.BACKUP)[-1] == joined + mdi(high)
    assert lan.masters(51) == ["high"] and low.state is State.BACKUP


def test_nopreempt_router_stays_backup() -> None:
    lan = Lan()
    lan.add(router("low", 11, 100))
    lan.run(10)
    lan.add(router("high", 12, 200, nopreempt=True))
    lan.run(60)
    assert lan.masters(51) == ["low"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_preempt_delay_only_delays_the_takeover(flavour: str) -> None:
    lan = Lan()
    lan.add(router("low", 11, 100, flavour))
    lan.run(10)
    joined = lan.now_us
    high = lan.add(router("high", 12, 200, flavour, preempt_delay_us=10_000_000))
    lan.run(30)
    accepted_until = joined + 10_000_000
    (took_over,) = lan.transitions("high", State.MASTER)
    assert took_over == last_delivery(lan, "low", "high", before=accepted_until) + mdi(high)
    assert lan.masters(51) == ["high"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_equal_priorities_higher_address_wins(flavour: str) -> None:
    lan = Lan(drop=1.0)  # start partitioned: both become master
    lan.add(router("lower", 11, 100, flavour))
    lan.add(router("higher", 12, 100, flavour))
    lan.run(10)
    assert sorted(lan.masters(51)) == ["higher", "lower"]
    lan.drop = 0.0
    lan.run(10)
    assert lan.masters(51) == ["higher"]


def test_address_owner_takes_over_one_microsecond_after_startup() -> None:
    lan = Lan()
    lan.add(router("backup", 11, 150))
    lan.run(10)
    joined = lan.now_us
    lan.add(router("owner", 12, 255, initial_state=State.MASTER))
    lan.run(5)
    assert lan.transitions("owner", State.MASTER) == [joined + 1]
    assert lan.transitions("backup", State.BACKUP)[-1] == joined + 1
    assert lan.masters(51) == ["owner"]


def test_tracking_priority_drop_moves_the_master() -> None:
    lan = Lan()
    a, b = lan.add(router("a", 11, 150)), lan.add(router("b", 12, 100))
    lan.run(10)
    lan.call(a, "set_priority_delta", "script:chk", -60)
    lan.run(10)
    assert lan.masters(51) == ["b"] and a.state is State.BACKUP


def test_fault_on_master_hands_over_after_skew_time() -> None:
    lan = Lan()
    a, b = lan.add(router("a", 11, 150)), lan.add(router("b", 12, 100))
    lan.run(10)
    faulted = lan.now_us
    lan.call(a, "set_fault", "link:lan0", "interface lan0 is down")
    lan.run(10)
    assert lan.transitions("b", State.MASTER) == [faulted + skew_time(100, 1_000_000, 2)]
    lan.call(a, "set_fault", "link:lan0", None)
    lan.run(10)
    assert lan.masters(51) == ["a"]
