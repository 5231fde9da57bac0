"""What to do to the kernel's IPVS table: a pure function of the desired and the actual table.

:func:`diff` returns the smallest list of operations that turns the part of ``actual`` pyvrrpd owns
into ``desired`` and leaves everything else alone:

* an entry whose attributes differ is edited in place (SET_SERVICE / SET_DEST), never deleted and
  added again, so its connections and statistics survive;
* an entry already in the kernel that matches a desired one is adopted as it is;
* an entry that is neither desired nor owned (someone else's ``ipvsadm -a``) is never touched;
* additions and edits come first, removals last (destinations before their services), so a swap
  (sorry server in, real servers out) never leaves a service empty in between;
* an owned service that is no longer desired is deleted only when no foreign destination is left in
  it; deleting a service deletes its destinations, so those get no DelDest of their own (a stop of
  1,000 services x 10 destinations is 1,000 operations, not 11,000). A service kept for a foreign
  destination has its owned destinations deleted one by one.

:func:`apply` is the kernel's behaviour for the same operations on a :class:`Table` value; the
in-memory fake and the property tests use it.
"""

from __future__ import annotations

import errno
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from pyvrrpd.lvs.table import FLAGS_COMPARED, Destination, DestKey, Service, ServiceKey, Table


@dataclass(frozen=True, slots=True)
class AddService:
    service: Service

    def __str__(self) -> str:
        return f"add service {self.service}"


@dataclass(frozen=True, slots=True)
class EditService:
    service: Service

    def __str__(self) -> str:
        return f"edit service {self.service}"


@dataclass(frozen=True, slots=True)
class DelService:
    key: ServiceKey

    def __str__(self) -> str:
        return f"delete service {self.key}"


@dataclass(frozen=True, slots=True)
class AddDest:
    service: ServiceKey
    dest: Destination

    def __str__(self) -> str:
        return f"add {self.dest} to {self.service}"


@dataclass(frozen=True, slots=True)
class EditDest:
    service: ServiceKey
    dest: Destination

    def __str__(self) -> str:
        return f"edit {self.dest} of {self.service}"


@dataclass(frozen=True, slots=True)
class DelDest:
    service: ServiceKey
    key: DestKey

    def __str__(self) -> str:
        return f"delete {self.key} from {self.service}"


@dataclass(frozen=True, slots=True)
class Flush:
    def __str__(self) -> str:
        return "flush the IPVS table"


@dataclass(frozen=True, slots=True)
class SetTimeouts:
    """``lvs_timeouts``: the kernel's connection timeouts, in seconds (0 keeps the kernel's value)."""

    tcp: int = 0
    tcpfin: int = 0
    udp: int = 0

    def __str__(self) -> str:
        return f"set timeouts tcp {self.tcp} tcpfin {self.tcpfin} udp {self.udp}"


Operation = AddService | EditService | DelService | AddDest | EditDest | DelDest | Flush | SetTimeouts

_SET_SERVICE, _SET_DEST = AddDest.__dict__["service"].__set__, AddDest.__dict__["dest"].__set__


def _add_dest(service: ServiceKey, dest: Destination) -> AddDest:
    """``AddDest(service, dest)``, faster (a frozen dataclass's ``__init__`` goes through
    ``object.__setattr__``): a first pass makes one per destination (-3 ms of a 1,000 x 10 first pass,
    bench/ipvs_encode.py)."""
    op = object.__new__(AddDest)
    _SET_SERVICE(op, service)
    _SET_DEST(op, dest)
    return op


def same_service(a: Service, b: Service) -> bool:
    return (a.scheduler == b.scheduler and (a.flags & FLAGS_COMPARED) == (b.flags & FLAGS_COMPARED)
            and a.timeout == b.timeout and a.netmask == b.netmask and (a.pe_name or None) == (b.pe_name or None))


def same_dest(a: Destination, b: Destination) -> bool:
    return a == b


def diff(
    desired: Table,
    actual: Table,
    owned_services: Collection[ServiceKey] = (),
    owned_dests: Collection[tuple[ServiceKey, DestKey]] = (),
) -> list[Operation]:
    """Operations that make the owned part of ``actual`` equal to ``desired``.

    Everything in ``desired`` counts as owned; ``owned_*`` add the keys pyvrrpd may remove (real
    servers that are down, services of a previous config).
    """
    ops: list[Operation] = []
    for key, svc in desired.services.items():
        have = actual.services.get(key)
        if have is None:
            ops.append(AddService(svc))
        elif not same_service(svc, have):
            ops.append(EditService(svc))
    edits: list[Operation] = []
    adds: list[Operation] = []
    for (skey, dkey), dest in desired.dests.items():
        have_d = actual.dests.get((skey, dkey)) if skey in actual.services else None
        if have_d is None:
            adds.append(_add_dest(skey, dest))
        elif not same_dest(dest, have_d):
            edits.append(EditDest(skey, dest))
    ops += edits
    ops += adds

    foreign_left: set[ServiceKey] = set()  # services that keep someone else's destinations
    stale: list[tuple[ServiceKey, DestKey]] = []
    for key in actual.dests:
        if key in desired.dests:
            continue
        if key in owned_dests:
            stale.append(key)
        else:
            foreign_left.add(key[0])
    gone = [skey for skey in actual.services
            if skey in owned_services and skey not in desired.services and skey not in foreign_left]
    if gone:  # the kernel's DEL_SERVICE deletes the service's destinations with it: no DelDest for them
        going = set(gone)
        ops += [DelDest(skey, dkey) for skey, dkey in stale if skey not in going]
    else:
        ops += [DelDest(skey, dkey) for skey, dkey in stale]
    ops += [DelService(skey) for skey in gone]
    return ops


# --------------------------------------------------------------------------- the kernel's behaviour


class OpError(Exception):
    """An operation the kernel would refuse, with its errno."""

    def __init__(self, op: Operation, code: int) -> None:
        self.op = op
        self.errno = code
        super().__init__(f"{op}: {errno.errorcode.get(code, code)}")


class IndexedDests(dict):
    """A table's destinations that also know which ones each service holds, so that deleting a service
    costs its own destinations rather than a scan of the whole table (deleting 1,000 services of 10
    destinations one by one would otherwise look at 10 million keys). Every way of changing the
    dictionary keeps the index: tests change the fake kernel's table behind the reconciler's back."""

    __slots__ = ("by_service",)

    def __init__(self, items: Mapping[tuple[ServiceKey, DestKey], Destination] | None = None) -> None:
        super().__init__()
        self.by_service: dict[ServiceKey, dict[DestKey, None]] = {}
        if items:
            self.update(items)

    def __setitem__(self, key: tuple[ServiceKey, DestKey], dest: Destination) -> None:
        if key not in self:
            self.by_service.setdefault(key[0], {})[key[1]] = None
        dict.__setitem__(self, key, dest)

    def __delitem__(self, key: tuple[ServiceKey, DestKey]) -> None:
        dict.__delitem__(self, key)
        self._unindex(key)

    def _unindex(self, key: tuple[ServiceKey, DestKey]) -> None:
        of = self.by_service[key[0]]
        del of[key[1]]
        if not of:
            del self.by_service[key[0]]

    def pop(self, key, *default):
        if key not in self:
            return dict.pop(self, key, *default)
        dest = dict.pop(self, key)
        self._unindex(key)
        return dest

    def popitem(self):
        key, dest = dict.popitem(self)
        self._unindex(key)
        return key, dest

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args, **kwargs) -> None:
        for key, dest in dict(*args, **kwargs).items():
            self[key] = dest

    def __ior__(self, other):
        self.update(other)
        return self

    def clear(self) -> None:
        dict.clear(self)
        self.by_service.clear()

    def keys_of(self, service: ServiceKey) -> list[tuple[ServiceKey, DestKey]]:
        return [(service, dkey) for dkey in self.by_service.get(service, ())]


def apply(table: Table, ops: Iterable[Operation]) -> Table:
    """The table after the kernel has carried out ``ops`` (raises OpError where it would refuse)."""
    services = dict(table.services)
    dests = IndexedDests(table.dests)
    for op in ops:
        apply_one(services, dests, op)
    return Table(services, dict(dests))


def apply_one(services: dict[ServiceKey, Service], dests: dict[tuple[ServiceKey, DestKey], Destination],
              op: Operation) -> None:
    """One operation on the two dictionaries of a table, in place, as the kernel does it. A DelService
    scans all of ``dests`` for the service's destinations unless they are :class:`IndexedDests`."""
    match op:
        case AddService(service=svc):
            if svc.key in services:
                raise OpError(op, errno.EEXIST)
            services[svc.key] = svc
        case EditService(service=svc):
            if svc.key not in services:
                raise OpError(op, errno.ESRCH)
            services[svc.key] = svc
        case DelService(key=key):
            if key not in services:
                raise OpError(op, errno.ESRCH)
            del services[key]  # and its destinations with it
            keys = dests.keys_of(key) if isinstance(dests, IndexedDests) else [k for k in dests if k[0] == key]
            for k in keys:
                del dests[k]
        case AddDest(service=skey, dest=dest):
            if skey not in services:
                raise OpError(op, errno.ESRCH)
            if (skey, dest.key) in dests:
                raise OpError(op, errno.EEXIST)
            dests[(skey, dest.key)] = dest
        case EditDest(service=skey, dest=dest):
            if skey not in services:
                raise OpError(op, errno.ESRCH)
            if (skey, dest.key) not in dests:
                raise OpError(op, errno.ENOENT)
            dests[(skey, dest.key)] = dest
        case DelDest(service=skey, key=dkey):
            if skey not in services:
                raise OpError(op, errno.ESRCH)
            if (skey, dkey) not in dests:
                raise OpError(op, errno.ENOENT)
            del dests[(skey, dkey)]
        case Flush():
            services.clear()
            dests.clear()
        case SetTimeouts():
            pass  # not part of the table

