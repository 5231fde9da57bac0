"""VRRP codec: keepalived 2.2.7 golden vectors, scapy as an oracle, one test per DecodeError reason."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.utils import checksum as scapy_checksum

from pyvrrpd.core.packet import (
    Advertisement,
    ChecksumForm,
    DecodeError,
    Reason,
    checksum,
    decode,
    decode_ipv4_packet,
    encode,
)

A = ipaddress.ip_address
SRC4, GROUP4 = A("198.51.100.11"), A("224.0.0.18")
SRC6, GROUP6 = A("fe80::f00a:41ff:fe3d:b69e"), A("ff02::12")
VIP4, VIP6 = A("198.51.100.100"), A("2001:db8:1::100")


def v2(priority: int, vrid: int = 51, addresses: tuple = (VIP4,), adver_int: int = 1,
       auth_type: int = 0, auth_data: bytes = bytes(8)) -> Advertisement:
    return Advertisement(2, 1, vrid, priority, len(addresses), auth_type, adver_int, 0, addresses, auth_data)


def v3(priority: int, vrid: int = 51, addresses: tuple = (VIP4,), adver_int: int = 10) -> Advertisement:
    return Advertisement(3, 1, vrid, priority, len(addresses), 0, adver_int, 0, addresses, b"")


# python-stack.md §9.2; "wire" ones were captured from a keepalived 2.2.7 pair.
GOLDEN = [
    ("v2 prio 150 (wire)", v2(150), 4, True, "21339601 0001 1e32 c6336464 0000000000000000"),
    ("v2 prio 0 (wire)", v2(0), 4, True, "21330001 0001 b432 c6336464 0000000000000000"),
    ("v2 prio 100 (wire)", v2(100), 4, True, "21336401 0001 5032 c6336464 0000000000000000"),
    ("v3 ipv4 pseudo-header (wire)", v3(150), 4, True, "31339601 000a 035b c6336464"),
    ("v3 ipv4 rfc9568", v3(150), 4, False, "31339601 000a 0e29 c6336464"),
    ("v3 ipv4 prio 0 pseudo-header", v3(0), 4, True, "31330001 000a 995b c6336464"),
    ("v3 ipv4 prio 0 rfc9568", v3(0), 4, False, "31330001 000a a429 c6336464"),
    ("v3 ipv6 (wire)", v3(150, 52, (VIP6,)), 6, True, "31349601 000a 2501 20010db8000100000000000000000100"),
    ("v3 ipv6 prio 0 (wire)", v3(0, 52, (VIP6,)), 6, True, "31340001 000a bb01 20010db8000100000000000000000100"),
]


def addrs(family: int) -> tuple:
    return (SRC4, GROUP4) if family == 4 else (SRC6, GROUP6)


@pytest.mark.parametrize(("adv", "family", "pseudo", "wire"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN])
def test_golden_vectors(adv: Advertisement, family: int, pseudo: bool, wire: str) -> None:
    src, dst = addrs(family)
    data = bytes.fromhex(wire.replace(" ", ""))
    assert encode(adv, family=family, src=src, dst=dst, pseudo_header=pseudo) == data
    got = decode(data, family=family, src=src, dst=dst, ttl=255)
    assert got == adv
    assert got.checksum == int.from_bytes(data[6:8], "big")
    expected_form = ChecksumForm.MESSAGE if adv.version == 2 or not pseudo else ChecksumForm.PSEUDO_HEADER
    assert got.checksum_form is expected_form


def test_interval_us_converts_wire_units() -> None:
    assert v2(100, adver_int=3).interval_us == 3_000_000
    assert v3(100, adver_int=10).interval_us == 100_000


def test_v3_old_unicast_checksum_accepted_only_for_unicast() -> None:
    peer = A("198.51.100.12")
    data = encode(v3(150), family=4, src=SRC4, dst=GROUP4)  # pre-1.3.6 keepalived: group in the pseudo-header
    got = decode(data, family=4, src=SRC4, dst=peer, ttl=255, unicast=True)
    assert got.checksum_form is ChecksumForm.OLD_UNICAST
    with pytest.raises(DecodeError) as err:
        decode(data, family=4, src=SRC4, dst=peer, ttl=255)
    assert err.value.reason is Reason.BAD_CHECKSUM


# ---- scapy as an oracle ----------------------------------------------------------------------

ipv4s = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
ipv6s = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


@settings(max_examples=60, deadline=None)
@given(vrid=st.integers(1, 255), prio=st.integers(0, 255), adv=st.integers(0, 255), auth_type=st.integers(0, 2),
       auth=st.binary(min_size=8, max_size=8), vips=st.lists(ipv4s, max_size=12))
def test_v2_encode_matches_scapy(vrid: int, prio: int, adv: int, auth_type: int, auth: bytes, vips: list) -> None:
    ours = encode(v2(prio, vrid, tuple(vips), adv, auth_type, auth), family=4)
    a1, a2 = struct.unpack("!II", auth)
    theirs = bytes(VRRP(vrid=vrid, priority=prio, adv=adv, authtype=auth_type, addrlist=[str(v) for v in vips],
                        auth1=a1, auth2=a2))
    assert ours == theirs


@settings(max_examples=60, deadline=None)
@given(family=st.sampled_from([4, 6]), vrid=st.integers(1, 255), prio=st.integers(0, 255),
       adv=st.integers(0, 4095), data=st.data())
def test_v3_encode_matches_scapy_pseudo_header(family: int, vrid: int, prio: int, adv: int,
                                               data: st.DataObject) -> None:
    addr = ipv4s if family == 4 else ipv6s
    src, dst = data.draw(addr), data.draw(addr)
    vips = data.draw(st.lists(addr, max_size=8))
    ours = encode(v3(prio, vrid, tuple(vips), adv), family=family, src=src, dst=dst)
    layer = VRRPv3(vrid=vrid, priority=prio, adv=adv, addrlist=[str(v) for v in vips])
    ip = IP(src=str(src), dst=str(dst)) if family == 4 else IPv6(src=str(src), dst=str(dst))
    theirs = bytes(ip / layer)[20 if family == 4 else 40:]
    assert ours == theirs
    parsed = VRRPv3(ours)  # and scapy reads our fields back
    assert (parsed.vrid, parsed.priority, parsed.adv, parsed.ipcount) == (vrid, prio, adv, len(vips))


@given(st.binary(max_size=64))
def test_checksum_matches_scapy(data: bytes) -> None:
    data += b"\0" * (len(data) % 2)
    assert checksum(data) == scapy_checksum(data)


# ---- one test per DecodeError reason --------------------------------------------------------

GOOD_V2 = encode(v2(150), family=4)
GOOD_V3 = encode(v3(150), family=4, src=SRC4, dst=GROUP4)
GOOD_V6 = encode(v3(150, 52, (VIP6,)), family=6, src=SRC6, dst=GROUP6)


def reason(data: bytes, family: int = 4, ttl: int = 255, unicast: bool = False) -> Reason:
    src, dst = addrs(family)
    with pytest.raises(DecodeError) as err:
        decode(data, family=family, src=src, dst=dst, ttl=ttl, unicast=unicast)
    assert err.value.detail
    return err.value.reason


def with_byte(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1:]


def test_ttl_64_rejected() -> None:
    assert reason(GOOD_V2, ttl=64) is Reason.BAD_TTL


def test_ttl_not_checked_for_unicast() -> None:
    assert decode(GOOD_V2, family=4, src=SRC4, dst=A("198.51.100.12"), ttl=64, unicast=True) == v2(150)


def test_truncated_header_rejected() -> None:
    assert reason(GOOD_V2[:7]) is Reason.TOO_SHORT


@pytest.mark.parametrize(("data", "family"), [(with_byte(GOOD_V2, 0, 0x41), 4), (with_byte(GOOD_V2, 0, 0x11), 4),
                                              (GOOD_V2, 6)], ids=["v4", "v1", "v2-over-ipv6"])
def test_wrong_version_rejected(data: bytes, family: int) -> None:
    assert reason(data, family) is Reason.BAD_VERSION


def test_wrong_type_rejected() -> None:
    assert reason(with_byte(GOOD_V3, 0, 0x32)) is Reason.BAD_TYPE


@pytest.mark.parametrize("data", [with_byte(GOOD_V2, 3, 2), GOOD_V3[:-1] + b"\0\0", GOOD_V6[:-4],
                                  bytes(VRRPv3(vrid=51, priority=150))],  # scapy's VRRPv3(): ipcount 1, no address
                         ids=["count-too-high", "trailing-bytes", "truncated-address", "scapy-ipcount-1"])
def test_count_length_mismatch_rejected(data: bytes) -> None:
    assert reason(data, 6 if data == GOOD_V6[:-4] else 4) is Reason.BAD_LENGTH


@pytest.mark.parametrize(("data", "family"), [(with_byte(GOOD_V2, 7, GOOD_V2[7] ^ 1), 4),
                                              (with_byte(GOOD_V3, 7, GOOD_V3[7] ^ 1), 4),
                                              (with_byte(GOOD_V6, 7, GOOD_V6[7] ^ 1), 6)],
                         ids=["v2", "v3-ipv4-neither-form", "v3-ipv6"])
def test_bad_checksum_rejected(data: bytes, family: int) -> None:
    assert reason(data, family) is Reason.BAD_CHECKSUM


def test_v3_ipv4_checksum_without_pseudo_header_accepted() -> None:
    data = encode(v3(150), family=4, pseudo_header=False)
    got = decode(data, family=4, src=SRC4, dst=GROUP4, ttl=255)
    assert got.checksum_form is ChecksumForm.MESSAGE


def test_carp_advert_is_foreign() -> None:
    # CARP (OpenBSD/ucarp): version 2, type 1, vhid, advskew, authlen 7, demote, advbase, cksum,
    # 8-byte counter, 20-byte SHA1 HMAC = 36 bytes, same protocol 112 and group as VRRP.
    carp = struct.pack("!BBBBBBH8s20s", 0x21, 51, 0, 7, 0, 1, 0, bytes(8), bytes(20))
    assert reason(carp) is Reason.FOREIGN_CARP


def ipv4_packet(payload: bytes, *, ttl: int = 255, proto: int = 112, pad: int = 0, ihl: int = 5) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0xC0, 4 * ihl + len(payload), 0, 0, ttl, proto, 0,
                         SRC4.packed, GROUP4.packed) + bytes(4 * (ihl - 5))
    return header + payload + bytes(pad)


def ipv4_reason(data: bytes) -> Reason:
    with pytest.raises(DecodeError) as err:
        decode_ipv4_packet(data)
    return err.value.reason


def test_ipv4_packet_decoded_with_addresses_and_padding() -> None:
    assert decode_ipv4_packet(ipv4_packet(GOOD_V2)) == (v2(150), SRC4, GROUP4)
    assert decode_ipv4_packet(ipv4_packet(GOOD_V3, pad=46 - 32))[0] == v3(150)  # Ethernet minimum payload
    assert decode_ipv4_packet(ipv4_packet(GOOD_V2, ihl=6))[0] == v2(150)  # IP options


def test_ipv4_bad_header_rejected() -> None:
    assert ipv4_reason(ipv4_packet(GOOD_V2)[:19]) is Reason.BAD_IP_HEADER
    assert ipv4_reason(with_byte(ipv4_packet(GOOD_V2), 0, 0x44)) is Reason.BAD_IP_HEADER


def test_ipv4_tot_len_mismatch_rejected() -> None:
    assert ipv4_reason(ipv4_packet(GOOD_V2)[:-1]) is Reason.BAD_IP_LENGTH
    assert ipv4_reason(ipv4_packet(GOOD_V2, pad=30)) is Reason.BAD_IP_LENGTH  # more than Ethernet padding


def test_ipv4_other_protocol_rejected() -> None:
    assert ipv4_reason(ipv4_packet(GOOD_V2, proto=51)) is Reason.NOT_VRRP


def test_ipv4_ttl_from_header() -> None:
    assert ipv4_reason(ipv4_packet(GOOD_V2, ttl=64)) is Reason.BAD_TTL
    assert decode_ipv4_packet(ipv4_packet(GOOD_V2, ttl=64), unicast=True)[0] == v2(150)


def test_encode_refuses_impossible_packets() -> None:
    with pytest.raises(ValueError):
        encode(v2(100), family=6)
    with pytest.raises(ValueError):
        encode(v2(100, auth_data=b"short"), family=4)
    with pytest.raises(ValueError):
        encode(v3(100), family=4)  # pseudo-header needs src/dst


# ---- properties ------------------------------------------------------------------------------

@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid advert with a few bytes changed, cut or appended: gets past the first checks."""
    data = bytearray(draw(st.sampled_from([GOOD_V2, GOOD_V3, GOOD_V6])))
    for _ in range(draw(st.integers(1, 3))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))]) + draw(st.binary(max_size=8))


@given(data=st.one_of(st.binary(max_size=120), mutated()), family=st.sampled_from([4, 6]),
       ttl=st.sampled_from([255, 64]), unicast=st.booleans())
def test_any_bytes_give_an_advertisement_or_a_decode_error(data: bytes, family: int, ttl: int, unicast: bool) -> None:
    src, dst = addrs(family)
    try:
        adv = decode(data, family=family, src=src, dst=dst, ttl=ttl, unicast=unicast)
    except DecodeError as err:
        assert isinstance(err.reason, Reason)
    else:
        assert adv.count == len(adv.addresses)


@given(st.binary(max_size=120), st.booleans())
def test_any_ipv4_packet_gives_an_advertisement_or_a_decode_error(data: bytes, unicast: bool) -> None:
    try:
        decode_ipv4_packet(data, unicast=unicast)
    except DecodeError as err:
        assert isinstance(err.reason, Reason)


@st.composite
def advertisements(draw: st.DrawFn) -> tuple[Advertisement, int]:
    version = draw(st.sampled_from([2, 3]))
    family = 4 if version == 2 else draw(st.sampled_from([4, 6]))
    vips = tuple(draw(st.lists(ipv4s if family == 4 else ipv6s, max_size=16)))
    vrid, prio = draw(st.integers(0, 255)), draw(st.integers(0, 255))
    if version == 2:
        adv = v2(prio, vrid, vips, draw(st.integers(0, 255)), draw(st.integers(0, 255)),
                 draw(st.binary(min_size=8, max_size=8)))
    else:
        adv = v3(prio, vrid, vips, draw(st.integers(0, 4095)))
    return adv, family


@given(advertisements(), st.booleans(), st.booleans())
def test_encode_decode_round_trip(case: tuple[Advertisement, int], pseudo: bool, unicast: bool) -> None:
    adv, family = case
    src, dst = addrs(family)
    data = encode(adv, family=family, src=src, dst=dst, pseudo_header=pseudo)
    got = decode(data, family=family, src=src, dst=dst, ttl=255, unicast=unicast)
    assert got == adv
    assert encode(got, family=family, src=src, dst=dst, pseudo_header=pseudo) == data
