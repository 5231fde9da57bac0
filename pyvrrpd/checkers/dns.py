"""DNS_CHECK: one UDP query, keepalived's way (check_dns.c), with a reply parser of our own.

The query: a random id, RD set, one question ``name``/``type``/IN (``name`` ``.`` is the root).
keepalived accepts any datagram with our id, QR set and RCODE 0. pyvrrpd also walks the whole
reply (header, questions, every resource record, name compression with loop protection): a reply
with our id that does not parse fails the check (``malformed-reply``). Datagrams with another id
or without QR are not replies to us: they are ignored, as keepalived ignores them, until the
timeout.
"""

from __future__ import annotations

import random
import socket
import struct

import anyio

from pyvrrpd.checkers.net import OK, ProbeError, Result, Target, new_socket, os_error, receive

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}
RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
MAX_DATAGRAM = 4096


class Malformed(ValueError):
    pass


def encode_name(name: str) -> bytes:
    """keepalived's QNAME: dot-separated labels, then the root; ``.`` alone is the root."""
    if name in (".", ""):
        return b"\x00"
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("utf-8", "surrogateescape")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    return bytes(out)


def query(name: str, qtype: str, ident: int) -> bytes:
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)  # RD
    return header + encode_name(name) + struct.pack("!HH", TYPES[qtype], 1)


def _skip_name(msg: bytes, pos: int) -> int:
    """Position after the name at ``pos``; Malformed on truncation, bad labels or pointer loops."""
    jumps = 0
    end = None
    while True:
        if pos >= len(msg):
            raise Malformed("name runs past the end")
        n = msg[pos]
        if n == 0:
            return pos + 1 if end is None else end
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise Malformed("truncated compression pointer")
            if end is None:
                end = pos + 2
            target = ((n & 0x3F) << 8) | msg[pos + 1]
            jumps += 1
            if jumps > 64 or target >= len(msg):
                raise Malformed("compression pointer loop or out of range")
            pos = target
        elif n & 0xC0:
            raise Malformed("reserved label type")
        else:
            pos += 1 + n


def parse_reply(msg: bytes) -> tuple[int, int, int]:
    """(id, flags, rcode) of a well-formed DNS message; Malformed otherwise."""
    if len(msg) < 12:
        raise Malformed(f"{len(msg)} bytes, shorter than a DNS header")
    ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", msg)
    pos = 12
    for _ in range(qd):
        pos = _skip_name(msg, pos) + 4
        if pos > len(msg):
            raise Malformed("truncated question")
    for _ in range(an + ns + ar):
        pos = _skip_name(msg, pos)
        if pos + 10 > len(msg):
            raise Malformed("truncated resource record")
        (rdlen,) = struct.unpack_from("!H", msg, pos + 8)
        pos += 10 + rdlen
        if pos > len(msg):
            raise Malformed("resource record data runs past the end")
    return ident, flags, flags & 0xF


async def probe_dns(target: Target, name: str, qtype: str) -> Result:
    if target.port is None:
        raise ProbeError("no-port", "no port to query (set connect_port)")
    ident = random.getrandbits(16)
    try:
        msg = query(name, qtype, ident)
    except (ValueError, KeyError) as exc:
        raise ProbeError("bad-query", f"cannot ask for {qtype} {name!r}: {exc}") from None
    sock = new_socket(target, socket.SOCK_DGRAM)
    try:
        try:
            sock.connect(target.sockaddr())
            sock.send(msg)
        except OSError as exc:
            raise os_error(exc, f"sending the query to {target}") from None
        with anyio.fail_after(target.timeout):
            while True:
                data, _ = await receive(sock, MAX_DATAGRAM, f"reading the reply from {target}")
                if len(data) >= 2 and struct.unpack_from("!H", data)[0] != ident:
                    continue  # not ours
                try:
                    _, flags, rcode = parse_reply(data)
                except Malformed as exc:
                    raise ProbeError("malformed-reply", f"reply from {target} does not parse: {exc}") from None
                if not flags & 0x8000:
                    continue  # a query, not a reply
                if rcode:
                    raise ProbeError("dns-rcode", f"{target} answered rcode {rcode} ({RCODES.get(rcode, '?')})")
                return OK
    except TimeoutError:
        raise ProbeError("timeout", f"no reply from {target} within {target.timeout:g} s") from None
    finally:
        sock.close()
