"""IPVS generic-netlink messages as bytes, and back (stdlib only).

The IPVS family's messages are small and fixed (linux/ip_vs.h): a netlink header, a generic-netlink
header, and one nested SERVICE attribute plus, for destination commands, one nested DEST attribute.
Encoding them with ``struct`` takes a few microseconds; pyroute2's general NLA machinery took about
0.7 ms per message on the development machine, which made programming 11,000 entries take minutes
under the test VM's emulation (bench/ipvs_apply.py). Family lookup, requests and dumps use the same
codec; :mod:`pyvrrpd.lvs.ipvs` does the socket work.
"""

from __future__ import annotations

import functools
import socket
import struct
from ipaddress import IPv4Address, IPv6Address

from pyvrrpd.lvs.table import Destination, DestKey, Service, ServiceKey, dest, dest_key

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x300
NLM_F_CREATE_EXCL = 0x400 | 0x200
GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 0x10, 3, 1, 2
IPVS_GENL_VERSION = 1

CMD_NEW_SERVICE, CMD_SET_SERVICE, CMD_DEL_SERVICE, CMD_GET_SERVICE = 1, 2, 3, 4
CMD_NEW_DEST, CMD_SET_DEST, CMD_DEL_DEST, CMD_GET_DEST = 5, 6, 7, 8
CMD_NEW_DAEMON, CMD_DEL_DAEMON, CMD_GET_DAEMON = 9, 10, 11
CMD_SET_CONFIG, CMD_FLUSH = 12, 17

ATTR_SERVICE, ATTR_DEST, ATTR_DAEMON = 1, 2, 3
(DAEMON_STATE, DAEMON_MCAST_IFN, DAEMON_SYNC_ID, DAEMON_SYNC_MAXLEN, DAEMON_MCAST_GROUP, DAEMON_MCAST_GROUP6,
 DAEMON_MCAST_PORT, DAEMON_MCAST_TTL) = range(1, 9)
ATTR_TIMEOUT_TCP, ATTR_TIMEOUT_TCP_FIN, ATTR_TIMEOUT_UDP = 4, 5, 6
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK, SVC_SCHED, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK = range(1, 10)
SVC_PE_NAME = 11
(DEST_ADDR, DEST_PORT, DEST_FWD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH) = range(1, 7)
DEST_ADDR_FAMILY, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS = 11, 13, 14, 15

AF_OF = {4: socket.AF_INET, 6: socket.AF_INET6}
VERSION_OF = {socket.AF_INET: 4, socket.AF_INET6: 6}

_HDR = struct.Struct("=IHHII")  # nlmsghdr
_GENL = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")


class WireError(ValueError):
    """Bytes that are not the message they should be."""


def _attr(kind: int, payload: bytes) -> bytes:
    size = _NLA.size + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size & 3)


def _u16(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("=H", v))


def _u32(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("=I", v))


def _be16(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("!H", v))


def _asciiz(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def message(family: int, cmd: int, flags: int, seq: int, attrs: bytes, version: int = IPVS_GENL_VERSION) -> bytes:
    body = _GENL.pack(cmd, version, 0) + attrs
    return _HDR.pack(_HDR.size + len(body), family, flags, seq, 0) + body


def netmask_bytes(af: int, netmask: int) -> bytes:
    """IPVS_SVC_ATTR_NETMASK: IPv4 a mask in network order; IPv6 a prefix length the kernel reads as a
    host-order u32 (it compares the raw __be32 value with 1..128)."""
    return struct.pack("=I" if af == 6 else "!I", netmask & 0xFFFFFFFF)


def service_key_attrs(key: ServiceKey) -> bytes:
    out = _u16(SVC_AF, AF_OF[key.af])
    if key.fwmark:
        return out + _u32(SVC_FWMARK, key.fwmark)
    assert key.addr is not None
    return out + _u16(SVC_PROTOCOL, key.protocol) + _attr(SVC_ADDR, key.addr.packed) + _be16(SVC_PORT, key.port)


def service_attrs(svc: Service) -> bytes:
    out = (service_key_attrs(svc.key) + _asciiz(SVC_SCHED, svc.scheduler)
           + _attr(SVC_FLAGS, struct.pack("=II", svc.flags, 0xFFFFFFFF)) + _u32(SVC_TIMEOUT, svc.timeout)
           + _attr(SVC_NETMASK, netmask_bytes(svc.key.af, svc.netmask)))
    if svc.pe_name:
        out += _asciiz(SVC_PE_NAME, svc.pe_name)
    return out


_DEST_KEY4 = struct.Struct("=HHH2xHH4sHHH2x")  # ADDR_FAMILY u16, ADDR 4 bytes, PORT be16 (padded)
_DEST_KEY6 = struct.Struct("=HHH2xHH16sHHH2x")


def dest_key_attrs(key: DestKey) -> bytes:
    addr = key.addr
    if addr.version == 4:
        return _DEST_KEY4.pack(6, DEST_ADDR_FAMILY, socket.AF_INET, 8, DEST_ADDR, addr.packed, 6, DEST_PORT,
                               socket.htons(key.port))
    return _DEST_KEY6.pack(6, DEST_ADDR_FAMILY, socket.AF_INET6, 20, DEST_ADDR, addr.packed, 6, DEST_PORT,
                           socket.htons(key.port))


_DEST_NUMBERS = struct.Struct("=HHIHHIHHIHHI")  # forwarding method, weight, thresholds: four u32 attributes


def dest_attrs(dest: Destination) -> bytes:
    out = dest_key_attrs(dest.key) + _DEST_NUMBERS.pack(
        8, DEST_FWD, dest.fwd, 8, DEST_WEIGHT, dest.weight, 8, DEST_U_THRESH, dest.u_thresh, 8, DEST_L_THRESH,
        dest.l_thresh)
    if dest.tun_type:
        out += (_attr(DEST_TUN_TYPE, struct.pack("=B", dest.tun_type)) + _be16(DEST_TUN_PORT, dest.tun_port)
                + _attr(DEST_TUN_FLAGS, struct.pack("=H", dest.tun_flags)))
    return out


def timeout_attrs(tcp: int, tcpfin: int, udp: int) -> bytes:
    """SET_CONFIG's three u32 timeouts, in seconds; the kernel keeps its value for a 0."""
    return _u32(ATTR_TIMEOUT_TCP, tcp) + _u32(ATTR_TIMEOUT_TCP_FIN, tcpfin) + _u32(ATTR_TIMEOUT_UDP, udp)


def daemon_attrs(state: int, ifname: str | None = None, syncid: int | None = None, maxlen: int | None = None,
                 port: int | None = None, ttl: int | None = None, group: IPv4Address | IPv6Address | None = None) -> bytes:
    """The DAEMON attribute of NEW_DAEMON (everything given) or DEL_DAEMON (the state alone): state 1 is
    the master sync daemon, 2 the backup one (linux/ip_vs.h IP_VS_STATE_*)."""
    out = _u32(DAEMON_STATE, state)
    if ifname is not None:
        out += _asciiz(DAEMON_MCAST_IFN, ifname)
    if syncid is not None:
        out += _u32(DAEMON_SYNC_ID, syncid)
    if maxlen is not None:
        out += _u16(DAEMON_SYNC_MAXLEN, maxlen)
    if group is not None:
        out += _attr(DAEMON_MCAST_GROUP if group.version == 4 else DAEMON_MCAST_GROUP6, group.packed)
    if port is not None:
        out += _be16(DAEMON_MCAST_PORT, port)
    if ttl is not None:
        out += _attr(DAEMON_MCAST_TTL, struct.pack("=B", ttl))
    return nest(ATTR_DAEMON, out)


def decode_daemon(a: dict) -> dict:
    """A GET_DAEMON answer's DAEMON attribute: state, interface, sync id (and what the kernel adds)."""
    out = {"state": number(a, DAEMON_STATE, "=I"), "ifname": _text(a.get(DAEMON_MCAST_IFN)),
           "syncid": number(a, DAEMON_SYNC_ID, "=I")}
    if DAEMON_SYNC_MAXLEN in a:
        out["maxlen"] = number(a, DAEMON_SYNC_MAXLEN, "=H")
    if DAEMON_MCAST_PORT in a:
        out["port"] = number(a, DAEMON_MCAST_PORT, "!H")
    if DAEMON_MCAST_TTL in a:
        out["ttl"] = number(a, DAEMON_MCAST_TTL, "=B")
    if DAEMON_MCAST_GROUP in a:
        out["group"] = str(IPv4Address(bytes(a[DAEMON_MCAST_GROUP])))
    if DAEMON_MCAST_GROUP6 in a:
        out["group"] = str(IPv6Address(bytes(a[DAEMON_MCAST_GROUP6])))
    return out


# A destination command in two pieces: the message and generic-netlink headers, and the whole DEST
# attribute of a destination that is not a GUE/GRE tunnel (address family, address, port, forwarding
# method, weight, thresholds), each one struct: the command the reconciler sends by the ten thousand.
_HEADERS = struct.Struct("=IHHIIBBH")
_DEST_NEST4 = struct.Struct("=HH" + _DEST_KEY4.format[1:] + _DEST_NUMBERS.format[1:])
_DEST_NEST6 = struct.Struct("=HH" + _DEST_KEY6.format[1:] + _DEST_NUMBERS.format[1:])


def dest_message(family: int, cmd: int, flags: int, seq: int, service: ServiceKey, dest: Destination) -> bytes:
    """``message(family, cmd, flags, seq, nested_service_key(service) + nest(ATTR_DEST, dest_attrs(dest)))``,
    the same bytes, in a third of the time."""
    key = dest.key
    addr = key.addr
    if dest.tun_type:
        attrs = nested_service_key(service) + nest(ATTR_DEST, dest_attrs(dest))
        return message(family, cmd, flags, seq, attrs)
    if addr.version == 4:
        nested = _DEST_NEST4.pack(_DEST_NEST4.size, ATTR_DEST, 6, DEST_ADDR_FAMILY, socket.AF_INET, 8, DEST_ADDR,
                                  addr.packed, 6, DEST_PORT, socket.htons(key.port), 8, DEST_FWD, dest.fwd, 8,
                                  DEST_WEIGHT, dest.weight, 8, DEST_U_THRESH, dest.u_thresh, 8, DEST_L_THRESH,
                                  dest.l_thresh)
    else:
        nested = _DEST_NEST6.pack(_DEST_NEST6.size, ATTR_DEST, 6, DEST_ADDR_FAMILY, socket.AF_INET6, 20, DEST_ADDR,
                                  addr.packed, 6, DEST_PORT, socket.htons(key.port), 8, DEST_FWD, dest.fwd, 8,
                                  DEST_WEIGHT, dest.weight, 8, DEST_U_THRESH, dest.u_thresh, 8, DEST_L_THRESH,
                                  dest.l_thresh)
    svc = nested_service_key(service)
    return _HEADERS.pack(_HEADERS.size + len(svc) + len(nested), family, flags, seq, 0, cmd, IPVS_GENL_VERSION,
                         0) + svc + nested


def nest(kind: int, payload: bytes) -> bytes:
    return _attr(kind, payload)


@functools.lru_cache(maxsize=4096)
def nested_service_key(key: ServiceKey) -> bytes:
    """The SERVICE attribute naming a service, as destination commands and deletions send it."""
    return _attr(ATTR_SERVICE, service_key_attrs(key))


# --------------------------------------------------------------------------- decoding


def attrs(data: bytes | memoryview) -> dict[int, memoryview]:
    """Attribute type -> payload of a flat attribute list (the NESTED/BYTEORDER bits masked off)."""
    out: dict[int, memoryview] = {}
    view = memoryview(data)
    pos = 0
    while pos + _NLA.size <= len(view):
        size, kind = _NLA.unpack_from(view, pos)
        if size < _NLA.size or pos + size > len(view):
            raise WireError(f"attribute of length {size} at {pos} overruns {len(view)} bytes")
        out[kind & 0x3FFF] = view[pos + _NLA.size:pos + size]
        pos += (size + 3) & ~3
    return out


def number(a: dict, kind: int, fmt: str, default: int = 0) -> int:
    raw = a.get(kind)
    if raw is None:
        return default
    if len(raw) < struct.calcsize(fmt):
        raise WireError(f"attribute {kind} has {len(raw)} bytes")
    return struct.unpack_from(fmt, raw)[0]


def _addr(raw: memoryview | None, version: int) -> IPv4Address | IPv6Address:
    if raw is None:
        raise WireError("no address")
    if version == 4:
        if len(raw) < 4:
            raise WireError("short IPv4 address")
        return IPv4Address(bytes(raw[:4]))
    if len(raw) < 16:
        raise WireError("short IPv6 address")
    return IPv6Address(bytes(raw[:16]))


def _text(raw: memoryview | None) -> str:
    return "" if raw is None else bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


def decode_service(a: dict) -> Service:
    family = number(a, SVC_AF, "=H")
    if family not in VERSION_OF:
        raise WireError(f"unknown address family {family}")
    af = VERSION_OF[family]
    fwmark = number(a, SVC_FWMARK, "=I")
    if fwmark:
        key = ServiceKey(af=af, fwmark=fwmark)
    else:
        key = ServiceKey(af=af, protocol=number(a, SVC_PROTOCOL, "=H"), addr=_addr(a.get(SVC_ADDR), af),
                         port=number(a, SVC_PORT, "!H"))
    raw_mask = a.get(SVC_NETMASK)
    if raw_mask is None:
        netmask = 128 if af == 6 else 0xFFFFFFFF
    else:
        netmask = number(a, SVC_NETMASK, "=I" if af == 6 else "!I")
    return Service(key=key, scheduler=_text(a.get(SVC_SCHED)), flags=number(a, SVC_FLAGS, "=I"),
                   timeout=number(a, SVC_TIMEOUT, "=I"), netmask=netmask, pe_name=_text(a.get(SVC_PE_NAME)) or None)


def decode_dest(a: dict, service_af: int) -> Destination:
    family = number(a, DEST_ADDR_FAMILY, "=H", AF_OF[service_af])
    if family not in VERSION_OF:
        raise WireError(f"unknown address family {family}")
    return dest(  # (a dump decodes the whole table: the fast constructors)
        dest_key(_addr(a.get(DEST_ADDR), VERSION_OF[family]), number(a, DEST_PORT, "!H")),
        number(a, DEST_WEIGHT, "=I"),
        number(a, DEST_FWD, "=I") & 0x7,
        number(a, DEST_U_THRESH, "=I"),
        number(a, DEST_L_THRESH, "=I"),
        number(a, DEST_TUN_TYPE, "=B"),
        number(a, DEST_TUN_PORT, "!H"),
        number(a, DEST_TUN_FLAGS, "=H"),
    )


def messages(data: bytes) -> list[tuple[int, int, int, memoryview]]:
    """(type, flags, seq, payload) of every netlink message in a datagram."""
    out = []
    view = memoryview(data)
    pos = 0
    while pos + _HDR.size <= len(view):
        size, kind, flags, seq, _pid = _HDR.unpack_from(view, pos)
        if size < _HDR.size or pos + size > len(view):
            raise WireError(f"netlink message of length {size} at {pos} overruns {len(view)} bytes")
        out.append((kind, flags, seq, view[pos + _HDR.size:pos + size]))
        pos += (size + 3) & ~3
    if pos < len(view):
        raise WireError(f"{len(view) - pos} bytes after the last netlink message")
    return out


def error_code(payload: memoryview) -> int:
    """The errno of an NLMSG_ERROR message (0: an acknowledgement)."""
    if len(payload) < 4:
        raise WireError("short netlink error message")
    return -struct.unpack_from("=i", payload)[0]


def genl_attrs(payload: memoryview) -> dict[int, memoryview]:
    """The attributes of a generic-netlink message's payload (after the genl header)."""
    if len(payload) < _GENL.size:
        raise WireError("short generic netlink message")
    return attrs(payload[_GENL.size:])


def family_request(seq: int, name: str = "IPVS") -> bytes:
    return message(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST | NLM_F_ACK, seq,
                   _asciiz(CTRL_ATTR_FAMILY_NAME, name), version=1)
