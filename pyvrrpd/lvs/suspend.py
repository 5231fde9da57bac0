"""``ha_suspend``: which virtual servers' checkers run, from the addresses configured on this host (pure).

keepalived 2.2.7 (``update_checker_activity``, ``register_checkers_thread``, keepalived/check/check_api.c):

* a virtual server with ``ha_suspend`` has its checkers suspended while none of its addresses is on a
  local interface (a director that is BACKUP for the VIP) and activated when one appears;
* the same address on several interfaces counts once per interface: the checkers are suspended only
  when the last one goes;
* at start the checkers of such a virtual server run only if its address is already there;
* ``ha_suspend`` with a fwmark is cleared at config time (the config build warns).

A suspended checker does not run; the real servers keep the state they had (so the IPVS entries stay as
they are: nothing is added or removed while suspended). This module only decides; the LVS subsystem
feeds it the host's addresses (:class:`pyvrrpd.daemon.lvs.Lvs`) and tells the checkers.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pyvrrpd.config import model as m
from pyvrrpd.lvs.table import _range

IPAddress = m.IPAddress


def watched_addresses(
    labelled: Iterable[tuple[str, m.VirtualServer]], groups: Iterable[m.VirtualServerGroup]
) -> dict[str, frozenset[IPAddress]]:
    """VS label -> the addresses whose presence activates its checkers, for every ``ha_suspend`` virtual
    server (a group: every address of its ranges; keepalived's own match never matches a group, which
    leaves such checkers suspended for good)."""
    by_name = {g.name: g for g in groups}
    out: dict[str, frozenset[IPAddress]] = {}
    for label, vs in labelled:
        if not vs.ha_suspend or vs.fwmark is not None:
            continue
        if vs.group is None:
            if vs.address is not None:
                out[label] = frozenset([vs.address])
            continue
        group = by_name.get(vs.group)
        addrs = set()
        for e in group.entries if group else ():
            if e.address is not None:
                addrs.update(_range(e.address, e.last))
        if addrs:
            out[label] = frozenset(addrs)
    return out


@dataclass(frozen=True, slots=True)
class Change:
    vs: str  # the virtual server's label
    active: bool  # True: its checkers resume; False: they are suspended


class Suspension:
    """The host's addresses (a multiset: one count per interface carrying it; all of them, so a reload that
    watches other addresses starts from the truth) and which watched virtual servers are suspended."""

    def __init__(self, watched: Mapping[str, frozenset[IPAddress]], present: Iterable[IPAddress] = ()) -> None:
        self.watched = dict(watched)
        self.counts: collections.Counter = collections.Counter()
        self._by_address: dict[IPAddress, list[str]] = {}
        for label, addrs in self.watched.items():
            for a in addrs:
                self._by_address.setdefault(a, []).append(label)
        self.counts.update(present)

    def active(self, vs: str) -> bool:
        """Whether the checkers of ``vs`` run (a virtual server without ha_suspend always runs)."""
        addrs = self.watched.get(vs)
        return addrs is None or any(self.counts[a] > 0 for a in addrs)

    @property
    def suspended(self) -> frozenset[str]:
        return frozenset(label for label in self.watched if not self.active(label))

    def address(self, added: bool, address: IPAddress) -> list[Change]:
        """An address was added to or removed from an interface: the virtual servers whose state changed."""
        labels = self._by_address.get(address, ())
        before = {label: self.active(label) for label in labels}
        if added:
            self.counts[address] += 1
        elif self.counts[address] > 1:
            self.counts[address] -= 1
        else:
            self.counts.pop(address, None)
        return [Change(label, now) for label in labels if (now := self.active(label)) != before[label]]

    def resync(self, present: Iterable[IPAddress]) -> list[Change]:
        """The full set of addresses again (after events were lost): the virtual servers whose state changed."""
        before = {label: self.active(label) for label in self.watched}
        self.counts.clear()
        self.counts.update(present)
        return [Change(label, now) for label in self.watched if (now := self.active(label)) != before[label]]
