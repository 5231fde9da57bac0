"""The kernel's IPVS table over generic netlink (pyroute2), and an in-memory fake with the same interface.

Both implement :class:`IpvsPort`: ``dump()`` reads the whole table into :mod:`pyvrrpd.lvs.table`
values, ``apply(op)`` carries out one :mod:`pyvrrpd.lvs.diff` operation. Every failure is a
:class:`~pyvrrpd.net.errors.NetError` naming the operation and the entry, with the errno; nothing
here is fatal.

The adapter builds the netlink attributes itself and hands them to pyroute2's ``AsyncIPVS`` as
plain attribute lists, which keeps clear of the three pyroute2 IPVS bugs (python-stack.md §1.2):

1. it only ever sends the commands add / set / del / dump by their generic-netlink command
   number, never pyroute2's ``"update"`` (which sends DEL_SERVICE / DEL_DEST);
2. it reads every attribute raw from the message (``IPVSDest.from_message`` reports
   ``fwd_method`` 3 for every destination);
3. it always sends ``IPVS_SVC_ATTR_NETMASK``: an IPv4 mask, or for IPv6 a prefix length as the
   host-order u32 the kernel compares with 1..128 (pyroute2 types the attribute as an IPv4
   address and fills it only for IPv4, so an IPv6 service would get EINVAL).

The GUE tunnel port is sent in network order (the kernel reads it with ``nla_get_be16`` although
pyroute2 declares it host order).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from ipaddress import ip_address
from typing import Protocol

from pyvrrpd.lvs import diff as d
from pyvrrpd.lvs.table import Destination, DestKey, Service, ServiceKey, Table
from pyvrrpd.net.errors import NetError

AF_OF = {4: socket.AF_INET, 6: socket.AF_INET6}
VERSION_OF = {socket.AF_INET: 4, socket.AF_INET6: 6}

# generic netlink commands (linux/ip_vs.h)
CMD_NEW_SERVICE, CMD_SET_SERVICE, CMD_DEL_SERVICE, CMD_GET_SERVICE = 1, 2, 3, 4
CMD_NEW_DEST, CMD_SET_DEST, CMD_DEL_DEST, CMD_GET_DEST = 5, 6, 7, 8
CMD_FLUSH = 17


class IpvsPort(Protocol):
    """What the reconciler needs from an IPVS table."""

    async def dump(self) -> Table: ...

    async def apply(self, op: d.Operation) -> None: ...

    async def close(self) -> None: ...


def op_error(op: d.Operation, exc: BaseException | None = None, code: int | None = None) -> NetError:
    """The NetError for a failed operation: "ipvs add service TCP 198.51.100.100:80 wlc: File exists (EEXIST)"."""
    verb, _, target = str(op).partition(" ")
    if exc is not None:
        return NetError.wrap(exc, f"ipvs {verb}", target=target)
    return NetError(f"ipvs {verb}", target=target, errno=code)


# --------------------------------------------------------------------------- attribute encoding


def encode_netmask(af: int, netmask: int) -> str:
    """IPVS_SVC_ATTR_NETMASK as the IPv4-address text pyroute2 encodes (see the module's docstring)."""
    if af == 6:
        return socket.inet_ntoa(struct.pack("=I", netmask))
    return socket.inet_ntoa(struct.pack("!I", netmask & 0xFFFFFFFF))


def decode_netmask(af: int, text: str | None) -> int:
    if not text:
        return 128 if af == 6 else 0xFFFFFFFF
    raw = socket.inet_aton(text)
    return struct.unpack("=I" if af == 6 else "!I", raw)[0]


def service_key_attrs(key: ServiceKey) -> list[tuple[str, object]]:
    attrs: list[tuple[str, object]] = [("IPVS_SVC_ATTR_AF", AF_OF[key.af])]
    if key.fwmark:
        attrs.append(("IPVS_SVC_ATTR_FWMARK", key.fwmark))
    else:
        attrs += [("IPVS_SVC_ATTR_PROTOCOL", key.protocol), ("IPVS_SVC_ATTR_ADDR", str(key.addr)),
                  ("IPVS_SVC_ATTR_PORT", key.port)]
    return attrs


def service_attrs(svc: Service) -> list[tuple[str, object]]:
    attrs = service_key_attrs(svc.key) + [
        ("IPVS_SVC_ATTR_SCHED_NAME", svc.scheduler),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": svc.flags, "mask": 0xFFFFFFFF}),
        ("IPVS_SVC_ATTR_TIMEOUT", svc.timeout),
        ("IPVS_SVC_ATTR_NETMASK", encode_netmask(svc.key.af, svc.netmask)),
    ]
    if svc.pe_name:
        attrs.append(("IPVS_SVC_ATTR_PE_NAME", svc.pe_name))
    return attrs


def dest_key_attrs(key: DestKey) -> list[tuple[str, object]]:
    return [("IPVS_DEST_ATTR_ADDR_FAMILY", AF_OF[key.addr.version]), ("IPVS_DEST_ATTR_ADDR", str(key.addr)),
            ("IPVS_DEST_ATTR_PORT", key.port)]


def dest_attrs(dest: Destination) -> list[tuple[str, object]]:
    attrs = dest_key_attrs(dest.key) + [
        ("IPVS_DEST_ATTR_FWD_METHOD", dest.fwd),
        ("IPVS_DEST_ATTR_WEIGHT", dest.weight),
        ("IPVS_DEST_ATTR_U_THRESH", dest.u_thresh),
        ("IPVS_DEST_ATTR_L_THRESH", dest.l_thresh),
    ]
    if dest.tun_type:
        attrs += [("IPVS_DEST_ATTR_TUN_TYPE", dest.tun_type),
                  ("IPVS_DEST_ATTR_TUN_PORT", socket.htons(dest.tun_port)),
                  ("IPVS_DEST_ATTR_TUN_FLAGS", dest.tun_flags)]
    return attrs


class _Attrs:
    """What pyroute2's AsyncIPVS.service()/dest() call on their arguments, for an attribute list."""

    __slots__ = ("attrs", "key")

    def __init__(self, attrs: list, key: list | None = None) -> None:
        self.attrs = attrs
        self.key = attrs if key is None else key

    def dump_nla(self) -> dict:
        return {"attrs": self.attrs}

    def dump_key(self) -> dict:
        return {"attrs": self.key}


def _attr_dict(nested) -> dict:
    return dict(nested["attrs"]) if nested is not None else {}


def service_from_attrs(a: dict) -> Service:
    af = VERSION_OF[a["IPVS_SVC_ATTR_AF"]]
    fwmark = a.get("IPVS_SVC_ATTR_FWMARK") or 0
    if fwmark:
        key = ServiceKey(af=af, fwmark=fwmark)
    else:
        key = ServiceKey(af=af, protocol=a.get("IPVS_SVC_ATTR_PROTOCOL", 0), addr=ip_address(a["IPVS_SVC_ATTR_ADDR"]),
                         port=a.get("IPVS_SVC_ATTR_PORT", 0))
    flags = a.get("IPVS_SVC_ATTR_FLAGS") or {}
    return Service(key=key, scheduler=a.get("IPVS_SVC_ATTR_SCHED_NAME", ""), flags=flags.get("flags", 0),
                   timeout=a.get("IPVS_SVC_ATTR_TIMEOUT", 0),
                   netmask=decode_netmask(af, a.get("IPVS_SVC_ATTR_NETMASK")),
                   pe_name=a.get("IPVS_SVC_ATTR_PE_NAME") or None)


def dest_from_attrs(a: dict) -> Destination:
    tun_port = a.get("IPVS_DEST_ATTR_TUN_PORT", 0)
    return Destination(
        key=DestKey(ip_address(a["IPVS_DEST_ATTR_ADDR"]), a.get("IPVS_DEST_ATTR_PORT", 0)),
        weight=a.get("IPVS_DEST_ATTR_WEIGHT", 0),
        fwd=a.get("IPVS_DEST_ATTR_FWD_METHOD", 0) & 0x7,
        u_thresh=a.get("IPVS_DEST_ATTR_U_THRESH", 0),
        l_thresh=a.get("IPVS_DEST_ATTR_L_THRESH", 0),
        tun_type=a.get("IPVS_DEST_ATTR_TUN_TYPE", 0),
        tun_port=socket.ntohs(tun_port) if tun_port else 0,
        tun_flags=a.get("IPVS_DEST_ATTR_TUN_FLAGS", 0),
    )


# --------------------------------------------------------------------------- the kernel


class KernelIpvs:
    """The IPVS table of the current network namespace, over generic netlink (asyncio only)."""

    def __init__(self, sock) -> None:
        self._sock = sock

    @classmethod
    async def open(cls) -> KernelIpvs:
        """Raises NetError when the kernel has no IPVS (no ip_vs module)."""
        from pyroute2 import AsyncIPVS

        sock = AsyncIPVS()
        try:
            await sock.setup_endpoint()
        except Exception as exc:
            sock.close()
            err = NetError.wrap(exc, "open IPVS generic netlink")
            err.detail = "IPVS unavailable (is the ip_vs module loaded?)"
            raise err from None
        return cls(sock)

    async def close(self) -> None:
        self._sock.close()

    async def dump(self) -> Table:
        try:
            services = {}
            dests = {}
            for msg in await self._sock.service(CMD_GET_SERVICE_DUMP):
                svc = service_from_attrs(_attr_dict(msg.get("IPVS_CMD_ATTR_SERVICE")))
                services[svc.key] = svc
            for key in services:
                for msg in await self._sock.dest(CMD_GET_DEST_DUMP, _Attrs(service_key_attrs(key))):
                    dest = dest_from_attrs(_attr_dict(msg.get("IPVS_CMD_ATTR_DEST")))
                    dests[(key, dest.key)] = dest
        except NetError:
            raise
        except Exception as exc:
            raise NetError.wrap(exc, "ipvs dump") from None
        return Table(services, dests)

    async def apply(self, op: d.Operation) -> None:
        s = self._sock
        try:
            match op:
                case d.AddService(service=svc):
                    await s.service(CMD_NEW_SERVICE, _Attrs(service_attrs(svc)))
                case d.EditService(service=svc):
                    await s.service((CMD_SET_SERVICE, _REQ), _Attrs(service_attrs(svc)))
                case d.DelService(key=key):
                    await s.service((CMD_DEL_SERVICE, _REQ), _Attrs(service_key_attrs(key)))
                case d.AddDest(service=key, dest=dest):
                    await s.dest(CMD_NEW_DEST, _Attrs(service_key_attrs(key)), _Attrs(dest_attrs(dest)))
                case d.EditDest(service=key, dest=dest):
                    await s.dest((CMD_SET_DEST, _REQ), _Attrs(service_key_attrs(key)), _Attrs(dest_attrs(dest)))
                case d.DelDest(service=key, key=dkey):
                    await s.dest((CMD_DEL_DEST, _REQ), _Attrs(service_key_attrs(key)), _Attrs(dest_key_attrs(dkey)))
                case d.Flush():
                    await s.service((CMD_FLUSH, _REQ))
        except Exception as exc:
            raise op_error(op, exc) from None


# Commands as (genl command, netlink flags): pyroute2 takes a tuple as it is. NLM_F_REQUEST | NLM_F_ACK.
_REQ = 0x1 | 0x4
CMD_GET_SERVICE_DUMP = (CMD_GET_SERVICE, 0x1 | 0x300)  # NLM_F_REQUEST | NLM_F_DUMP
CMD_GET_DEST_DUMP = (CMD_GET_DEST, 0x1 | 0x300)


# --------------------------------------------------------------------------- the fake


class FakeIpvs:
    """An IPVS table in memory with the kernel's refusals: the sink on hosts without ip_vs, and for tests.

    ``log`` records every operation applied; ``fail(op)`` may return an errno to make an operation fail.
    """

    def __init__(self, table: Table | None = None, fail: Callable[[d.Operation], int | None] | None = None) -> None:
        self.services: dict = dict(table.services) if table else {}
        self.dests: dict = dict(table.dests) if table else {}
        self.fail = fail
        self.log: list[d.Operation] = []
        self.dumps = 0
        self.closed = False

    @property
    def table(self) -> Table:
        return Table(dict(self.services), dict(self.dests))

    async def dump(self) -> Table:
        self.dumps += 1
        return self.table

    async def apply(self, op: d.Operation) -> None:
        code = self.fail(op) if self.fail is not None else None
        if code:
            raise op_error(op, code=code)
        try:
            d.apply_one(self.services, self.dests, op)
        except d.OpError as exc:
            raise op_error(op, code=exc.errno) from None
        self.log.append(op)

    async def close(self) -> None:
        self.closed = True
