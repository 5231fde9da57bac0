"""UDP_CHECK and PING_CHECK: a datagram out, an ICMP error or a reply back (check_udp.c,
check_ping.c, layer4.c).

UDP_CHECK sends ``payload`` (default: keepalived's 32 bytes ``keepalived check - keepalived ch``)
on a connected socket. An ICMP error (port unreachable...) fails the check; no answer within
``connect_timeout`` passes it, unless a reply is required (``require_reply``): then the reply
must come, be ``min_reply_length``..``max_reply_length`` bytes (default 0..255) and match the
given hex bytes (``X`` = any nibble) over the shorter of the two lengths.

PING_CHECK sends one ICMP echo request and needs an echo reply within ``connect_timeout``. It
uses an unprivileged ICMP socket when ``net.ipv4.ping_group_range`` allows it, else a raw socket
(root or CAP_NET_RAW). Unlike keepalived, pyvrrpd never changes ``ping_group_range``.
"""

from __future__ import annotations

import random
import socket
import struct

import anyio

from pyvrrpd.checkers.net import OK, ProbeError, Result, Target, new_socket, os_error, receive
from pyvrrpd.core.packet import checksum

DEFAULT_PAYLOAD = (b"keepalived check - " * 2)[:32]
DEFAULT_MAX_REPLY = 255
PING_DATA = (b"keepalived check - " * 4)[:56]


def parse_pattern(text: str) -> tuple[bytes, bytes]:
    """``require_reply`` hex (``X``/``x`` = any nibble) -> (data, mask of don't-care bits)."""
    if len(text) % 2:
        raise ValueError("odd number of hex digits")
    data, mask = bytearray(), bytearray()
    for i in range(0, len(text), 2):
        byte = m = 0
        for ch in text[i:i + 2]:
            byte <<= 4
            m <<= 4
            if ch in "xX":
                m |= 0xF
            else:
                byte |= int(ch, 16)
        data.append(byte)
        mask.append(m)
    return bytes(data), bytes(mask)


def reply_matches(reply: bytes, data: bytes, mask: bytes, lo: int, hi: int) -> bool:
    if not lo <= len(reply) <= hi:
        return False
    n = min(len(reply), len(data))
    return all((reply[i] ^ data[i]) & ~mask[i] & 0xFF == 0 for i in range(n))


async def probe_udp(target: Target, payload: bytes | None = None, pattern: tuple[bytes, bytes] | None = None,
                    *, require_reply: bool = False, min_len: int = 0, max_len: int | None = None) -> Result:
    if target.port is None:
        raise ProbeError("no-port", "no port to send to (set connect_port)")
    hi = DEFAULT_MAX_REPLY if max_len is None else max_len
    need_reply = require_reply or pattern is not None
    sock = new_socket(target, socket.SOCK_DGRAM)
    try:
        try:
            sock.connect(target.sockaddr())
            sock.send(payload if payload is not None else DEFAULT_PAYLOAD)
        except OSError as exc:
            raise os_error(exc, f"sending to {target}") from None
        with anyio.move_on_after(target.timeout):
            reply, _ = await receive(sock, hi + 1, f"ICMP error from {target}")
            if pattern is not None and not reply_matches(reply, pattern[0], pattern[1], min_len, hi):
                return Result(False, "reply-mismatch",
                              f"reply from {target} ({len(reply)} bytes) does not match require_reply")
            return OK
        if need_reply:
            return Result(False, "no-reply", f"no reply from {target} within {target.timeout:g} s")
        return OK
    finally:
        sock.close()


# ------------------------------------------------------------------ PING_CHECK

_use_raw: dict[int, bool] = {}  # family -> whether unprivileged ICMP sockets were refused


def _icmp_socket(target: Target) -> tuple[socket.socket, bool]:
    proto = socket.IPPROTO_ICMPV6 if target.family == socket.AF_INET6 else socket.IPPROTO_ICMP
    if not _use_raw.get(target.family):
        try:
            return new_socket(target, socket.SOCK_DGRAM, proto), False
        except ProbeError as exc:
            if exc.reason != "socket-error":
                raise
            _use_raw[target.family] = True  # ping_group_range does not include us
    return new_socket(target, socket.SOCK_RAW, proto), True


def echo_request(v6: bool, ident: int, seq: int) -> bytes:
    kind = 128 if v6 else 8
    head = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:
        return head + PING_DATA  # the kernel fills in the ICMPv6 checksum
    return struct.pack("!BBHHH", kind, 0, checksum(head + PING_DATA), ident, seq) + PING_DATA


def is_reply(packet: bytes, v6: bool, raw: bool, ident: int, seq: int) -> bool:
    if raw and not v6:
        if len(packet) < 20:
            return False
        packet = packet[(packet[0] & 0x0F) * 4:]
    if len(packet) < 8:
        return False
    kind, _, _, pid, pseq = struct.unpack_from("!BBHHH", packet)
    if kind != (129 if v6 else 0) or pseq != seq:
        return False
    return not raw or pid == ident  # an unprivileged socket gets only its own replies; the kernel sets the id


async def probe_ping(target: Target) -> Result:
    sock, raw = _icmp_socket(target)
    v6 = target.family == socket.AF_INET6
    ident, seq = random.getrandbits(16), random.getrandbits(16)
    try:
        try:
            sock.sendto(echo_request(v6, ident, seq), target.sockaddr(0))
        except OSError as exc:
            raise os_error(exc, f"sending an echo request to {target.address}") from None
        with anyio.fail_after(target.timeout):
            while True:
                packet, src = await receive(sock, 2048, f"ICMP error for {target.address}")
                if src[0].split("%")[0] != str(target.address):
                    continue
                if is_reply(packet, v6, raw, ident, seq):
                    return OK
    except TimeoutError:
        raise ProbeError("timeout", f"no echo reply from {target.address} within {target.timeout:g} s") from None
    finally:
        sock.close()
