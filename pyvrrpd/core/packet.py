"""VRRP advertisement codec (RFC 3768 v2, RFC 5798/9568 v3) for IPv4 and IPv6.

Pure functions over bytes: ``encode()`` builds a VRRP message (the IP header is the kernel's or the
adapter's job), ``decode()`` parses one and raises ``DecodeError`` with a ``Reason`` usable as a
metrics label. ``decode()`` does the *syntactic* checks only; the semantic ones (VRID, configured
version, authentication, interval, address list) belong to ``router.VirtualRouter``.

Checksums (keepalived 2.2.7 interop):

* v2: Internet checksum over the VRRP message only.
* v3 over IPv6: with the IPv6 pseudo-header (the kernel does the same with ``IPV6_CHECKSUM``).
* v3 over IPv4: keepalived 2.2.7 and FRR use the RFC 5798 pseudo-header form by default; RFC 9568
  says message only (keepalived's later ``v3_checksum_as_v2``). ``decode()`` accepts both and, for
  unicast, also keepalived's pre-1.3.6 form computed with the multicast group as destination
  (``OLD_CHKSUM_COMPAT``); the form that matched is reported in ``Advertisement.checksum_form``.

The one's-complement sum is computed as ``int.from_bytes(data) % 0xFFFF``: 2**16 == 1 (mod 0xFFFF),
so the big integer is congruent to the sum of its 16-bit words (inputs here are always even-sized).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from struct import Struct

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PROTO_VRRP = 112
TTL = 255
ADVERTISEMENT = 1
GROUP4 = ipaddress.IPv4Address("224.0.0.18")
GROUP6 = ipaddress.IPv6Address("ff02::12")
_GROUP4_PACKED = GROUP4.packed

_HEADER = Struct("!BBBBHH")  # ver|type, vrid, priority, count, (auth_type|adv) or (rsvd|adv), checksum
_PSEUDO4 = Struct("!4s4sxBH")  # src, dst, zero, protocol, length
_PSEUDO6 = Struct("!16s16sI3xB")  # src, dst, length, zero, next header
_IP4 = Struct("!BBHHHBBH4s4s")  # ver|ihl, tos, tot_len, id, frag, ttl, proto, checksum, src, dst
_CARP_LEN = 36  # CARP advert: 36 bytes, carp_authlen (7) where VRRP has its address count
_CARP_AUTHLEN = 7
_MIN_ETHERNET_PAYLOAD = 46  # IPv4 packets shorter than this arrive padded by Ethernet


class Reason(enum.StrEnum):
    """Why ``decode()`` rejected a packet; the value is a metrics label."""

    BAD_TTL = "bad_ttl"
    TOO_SHORT = "too_short"
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"
    BAD_LENGTH = "bad_length"
    FOREIGN_CARP = "foreign_carp"
    BAD_CHECKSUM = "bad_checksum"
    BAD_IP_HEADER = "bad_ip_header"
    BAD_IP_LENGTH = "bad_ip_length"
    NOT_VRRP = "not_vrrp"


class ChecksumForm(enum.StrEnum):
    """Which checksum computation a received advert matched (a metrics label too)."""

    MESSAGE = "message"  # v2, and v3 over IPv4 per RFC 9568
    PSEUDO_HEADER = "pseudo_header"  # v3 per RFC 5798 (keepalived 2.2.7 default, FRR, IPv6)
    OLD_UNICAST = "old_unicast"  # pseudo-header with 224.0.0.18 as destination (keepalived < 1.3.6)


class DecodeError(Exception):
    """A received packet is not a well-formed VRRP advertisement.

    ``reason`` is a fixed label for counters; ``detail`` is a human sentence (keepalived's wording
    where it has one). ``FOREIGN_CARP`` packets are not VRRP errors: count them, do not log them.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One VRRP advertisement, fields as on the wire.

    ``adver_int`` is in the wire unit: whole seconds for v2, centiseconds for v3 (``interval_us``
    converts). ``auth_type``/``auth_data`` are v2 only (v3: 0 and b""). ``count`` is written as given
    by ``encode()`` (so tests can craft malformed packets). ``checksum`` (as received; ``encode()``
    always recomputes it) and ``checksum_form`` (which form matched) are not compared.
    """

    version: int
    type: int
    vrid: int
    priority: int
    count: int
    auth_type: int
    adver_int: int
    checksum: int = field(compare=False)
    addresses: tuple[IPAddress, ...]
    auth_data: bytes
    checksum_form: ChecksumForm | None = field(default=None, compare=False)

    @property
    def interval_us(self) -> int:
        """The advertisement interval in microseconds (the core's time unit)."""
        return self.adver_int * (1_000_000 if self.version == 2 else 10_000)


def _sum(data: bytes) -> int:
    """One's-complement sum of 16-bit words, modulo 0xFFFF (0 means "all ones")."""
    return int.from_bytes(data, "big") % 0xFFFF


def _pseudo_sum(family: int, src: bytes, dst: bytes, length: int) -> int:
    if family == 4:
        return _sum(_PSEUDO4.pack(src, dst, PROTO_VRRP, length))
    return _sum(_PSEUDO6.pack(src, dst, length, PROTO_VRRP))


def checksum(data: bytes, pseudo_header: bytes = b"") -> int:
    """RFC 1071 Internet checksum of ``data`` preceded by ``pseudo_header`` (both even-sized)."""
    if not any(data) and not any(pseudo_header):
        return 0xFFFF  # the only input whose one's-complement sum is 0 rather than 0xFFFF
    return _fold((_sum(pseudo_header) + _sum(data)) % 0xFFFF)


def _fold(s: int) -> int:
    """Checksum from a non-zero input's sum modulo 0xFFFF (0 there means a sum of 0xFFFF)."""
    return 0xFFFF - s if s else 0


def encode(
    adv: Advertisement,
    *,
    family: int,
    src: IPAddress | None = None,
    dst: IPAddress | None = None,
    pseudo_header: bool = True,
) -> bytes:
    """Build the VRRP message (no IP header) with a correct checksum.

    ``pseudo_header`` only matters for v3 over IPv4: True is keepalived 2.2.7's default (RFC 5798),
    False is RFC 9568 / ``v3_checksum_as_v2``. v2 never uses one; IPv6 always does. ``src``/``dst``
    are needed only when a pseudo-header is used (for keepalived's ``old_unicast_checksum`` pass
    the multicast group as ``dst``).
    """
    version = adv.version
    if version == 2:
        if family != 4:
            raise ValueError("VRRPv2 is IPv4 only")
        if len(adv.auth_data) != 8:
            raise ValueError("VRRPv2 auth_data must be 8 bytes")
        word = (adv.auth_type << 8) | adv.adver_int
        tail = adv.auth_data
    else:
        word = adv.adver_int & 0x0FFF
        tail = b""
    body = b"".join([a.packed for a in adv.addresses]) + tail
    b0 = (version << 4) | adv.type
    head = _HEADER.pack(b0, adv.vrid, adv.priority, adv.count, word, 0)
    s = _sum(head + body)
    if version == 3 and (family == 6 or pseudo_header):
        if src is None or dst is None:
            raise ValueError("src and dst are needed for the VRRPv3 pseudo-header checksum")
        s = (s + _pseudo_sum(family, src.packed, dst.packed, 8 + len(body))) % 0xFFFF
    cks = _fold(s)
    return _HEADER.pack(b0, adv.vrid, adv.priority, adv.count, word, cks) + body


# Received VIPs repeat every interval; caching the address objects keeps decode() cheap.
_ADDRESS_CACHE: dict[bytes, IPAddress] = {}
_ADDRESS_CACHE_MAX = 4096


def _address(raw: bytes) -> IPAddress:
    addr = _ADDRESS_CACHE.get(raw)
    if addr is None:
        if len(_ADDRESS_CACHE) >= _ADDRESS_CACHE_MAX:
            _ADDRESS_CACHE.clear()
        addr = ipaddress.ip_address(raw)
        _ADDRESS_CACHE[raw] = addr
    return addr


def decode(
    data: bytes,
    *,
    family: int,
    src: IPAddress,
    dst: IPAddress,
    ttl: int,
    unicast: bool = False,
) -> Advertisement:
    """Parse a VRRP message (the IP payload) or raise ``DecodeError``.

    Checks, in order: TTL/hop limit 255 (skipped for unicast, as keepalived), header present,
    version 2 or 3 (v2 only over IPv4), type ADVERTISEMENT, length matching the address count
    (CARP look-alikes → ``FOREIGN_CARP``), checksum. ``src``/``dst`` are the IP header's addresses.
    """
    return _decode(data, family, src.packed, dst.packed, ttl, unicast)


def _decode(data: bytes, family: int, src: bytes, dst: bytes, ttl: int, unicast: bool) -> Advertisement:
    if ttl != TTL and not unicast:
        raise DecodeError(Reason.BAD_TTL, f"invalid TTL/HL. Received {ttl} and expect {TTL}")
    n = len(data)
    if n < 8:
        raise DecodeError(Reason.TOO_SHORT, f"vrrp packet too short, length {n} and expect at least 8")
    b0, vrid, priority, count, word, cks = _HEADER.unpack_from(data)
    version = b0 >> 4
    if version != 3 and (version != 2 or family != 4):
        where = " over IPv6" if version == 2 else ""
        raise DecodeError(Reason.BAD_VERSION, f"invalid version {version}{where}")
    if b0 & 0x0F != ADVERTISEMENT:
        raise DecodeError(Reason.BAD_TYPE, f"Invalid packet type. {b0 & 0x0F} and expect {ADVERTISEMENT}")
    alen = 4 if family == 4 else 16
    expected = 8 + count * alen + (8 if version == 2 else 0)
    if n != expected:
        if b0 == 0x21 and n == _CARP_LEN and count == _CARP_AUTHLEN:
            raise DecodeError(Reason.FOREIGN_CARP, f"CARP advertisement (vhid {vrid})")
        size = "short" if n < expected else "long"
        raise DecodeError(Reason.BAD_LENGTH, f"vrrp packet too {size}, length {n} and expect {expected}")

    # A correct checksum makes the sum "all ones", i.e. 0 modulo 0xFFFF (the data is never all zero).
    s = _sum(data)
    if version == 2:
        form = ChecksumForm.MESSAGE if s == 0 else None
    elif (s + _pseudo_sum(family, src, dst, n)) % 0xFFFF == 0:
        form = ChecksumForm.PSEUDO_HEADER
    elif family == 4 and s == 0:
        form = ChecksumForm.MESSAGE
    elif family == 4 and unicast and (s + _pseudo_sum(4, src, _GROUP4_PACKED, n)) % 0xFFFF == 0:
        form = ChecksumForm.OLD_UNICAST
    else:
        form = None
    if form is None:
        raise DecodeError(Reason.BAD_CHECKSUM, f"Invalid VRRPv{version} checksum 0x{cks:04x}")

    end = 8 + count * alen
    addresses = tuple([_address(data[i : i + alen]) for i in range(8, end, alen)])
    if version == 2:
        return Advertisement(2, ADVERTISEMENT, vrid, priority, count, word >> 8, word & 0xFF, cks,
                             addresses, data[end:], form)
    return Advertisement(3, ADVERTISEMENT, vrid, priority, count, 0, word & 0x0FFF, cks,
                         addresses, b"", form)


def decode_ipv4_packet(
    data: bytes, *, unicast: bool = False
) -> tuple[Advertisement, ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """Parse an IPv4 packet as a raw IPv4 socket delivers it (IP header included).

    Checks the header length, ``tot_len`` against the received length (Ethernet padding of short
    frames tolerated, as keepalived), protocol 112, then ``decode()`` on the payload with the
    header's TTL. Returns the advertisement and the IP source and destination addresses.
    """
    n = len(data)
    if n < 20 or data[0] >> 4 != 4 or (data[0] & 0x0F) < 5 or n < (data[0] & 0x0F) * 4:
        raise DecodeError(Reason.BAD_IP_HEADER, f"not a valid IPv4 header ({n} bytes)")
    ihl = (data[0] & 0x0F) * 4
    _, _, tot_len, _, _, ttl, proto, _, src, dst = _IP4.unpack_from(data)
    if tot_len < ihl or tot_len > n or (tot_len < n and n > _MIN_ETHERNET_PAYLOAD):
        raise DecodeError(Reason.BAD_IP_LENGTH, "ip_tot_len mismatch against received length "
                          f"(tot_len {tot_len}, received {n})")
    if proto != PROTO_VRRP:
        raise DecodeError(Reason.NOT_VRRP, f"IP protocol {proto}, expect {PROTO_VRRP}")
    adv = _decode(data[ihl:tot_len], 4, src, dst, ttl, unicast)
    return adv, _address(src), _address(dst)  # type: ignore[return-value]
