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
  it (deleting a service deletes its destinations).

:func:`apply` is the kernel's behaviour for the same operations on a :class:`Table` value; the
in-memory fake and the property tests use it.
"""

from __future__ import annotations

import errno
from collections.abc import Collection, Iterable
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
    for skey, dkey in actual.dests:
        if (skey, dkey) in desired.dests:
            continue
        if (skey, dkey) in owned_dests:
            ops.append(DelDest(skey, dkey))
        else:
            foreign_left.add(skey)
    for skey in actual.services:
        if skey in owned_services and skey not in desired.services and skey not in foreign_left:
            ops.append(DelService(skey))
    return ops


# --------------------------------------------------------------------------- the kernel's behaviour


class OpError(Exception):
    """An operation the kernel would refuse, with its errno."""

    def __init__(self, op: Operation, code: int) -> None:
        self.op = op
        self.errno = code
        super().__init__(f"{op}: {errno.errorcode.get(code, code)}")


def apply(table: Table, ops: Iterable[Operation]) -> Table:
    """The table after the kernel has carried out ``ops`` (raises OpError where it would refuse)."""
    services = dict(table.services)
    dests = dict(table.dests)
    for op in ops:
        apply_one(services, dests, op)
    return Table(services, dests)


def apply_one(services: dict[ServiceKey, Service], dests: dict[tuple[ServiceKey, DestKey], Destination],
              op: Operation) -> None:
    """One operation on the two dictionaries of a table, in place, as the kernel does it."""
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
            del services[key]
            for k in [k for k in dests if k[0] == key]:
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

