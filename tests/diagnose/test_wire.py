"""Captured frames → observations: well-formed adverts, malformed protocol-112 frames reported by reason,
ARP replies and Neighbor Advertisements as answers, everything else ignored, and never an exception.
Frames are built with scapy, independently of the codec under test."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, ICMPv6ND_NA, ICMPv6NDOptDstLLAddr
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.vrrp import VRRP, VRRPv3

from pyvrrpd.core.packet import ChecksumForm
from pyvrrpd.diagnose.wire import Answer, Heard, Malformed, parse_frame

A = ipaddress.ip_address
MAC = "02:00:00:00:00:0b"
SRC4, GROUP4, VIP4 = "198.51.100.11", "224.0.0.18", "198.51.100.100"
SRC6, GROUP6, VIP6 = "fe80::b", "ff02::12", "2001:db8:1::100"
ETHER4 = Ether(src=MAC, dst="01:00:5e:00:00:12")
ETHER6 = Ether(src=MAC, dst="33:33:00:00:00:12")


def ip4(payload, *, ttl: int = 255, dst: str = GROUP4) -> bytes:
    return bytes(ETHER4 / IP(src=SRC4, dst=dst, ttl=ttl, proto=112) / payload)


def parse(frame: bytes):
    return parse_frame(frame, "lan0", 12.5)


def test_v2_advert():
    obs = parse(ip4(VRRP(vrid=51, priority=150, addrlist=[VIP4], authtype=1, auth1=0x73656372, auth2=0x65740000)))
    assert isinstance(obs, Heard)
    assert (obs.t, obs.iface, obs.mac, obs.src, obs.dst, obs.ttl, obs.family) == (
        12.5, "lan0", MAC, A(SRC4), A(GROUP4), 255, 4)
    adv = obs.advert
    assert (adv.version, adv.vrid, adv.priority, adv.adver_int, adv.auth_type, adv.auth_data, adv.addresses) == (
        2, 51, 150, 1, 1, b"secret\0\0", (A(VIP4),))
    assert adv.checksum_form is ChecksumForm.MESSAGE


def test_v3_ipv4_checksum_forms():
    pseudo = parse(ip4(VRRPv3(vrid=51, priority=100, adv=10, addrlist=[VIP4])))  # scapy: RFC 5798 form
    assert isinstance(pseudo, Heard) and pseudo.advert.checksum_form is ChecksumForm.PSEUDO_HEADER
    # The RFC 9568 form: checksum over the message only.
    msg = bytearray(bytes(VRRPv3(vrid=51, priority=100, adv=10, addrlist=[VIP4], chksum=0))[:12])
    total = sum(int.from_bytes(msg[i:i + 2], "big") for i in range(0, len(msg), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    msg[6:8] = (~total & 0xFFFF).to_bytes(2, "big")
    message = parse(ip4(bytes(msg)))
    assert isinstance(message, Heard) and message.advert.checksum_form is ChecksumForm.MESSAGE


def test_v3_ipv6_advert_keeps_hop_limit():
    frame = bytes(ETHER6 / IPv6(src=SRC6, dst=GROUP6, hlim=255) / VRRPv3(vrid=52, priority=150, adv=10,
                                                                        addrlist=[VIP6]))
    obs = parse(frame)
    assert isinstance(obs, Heard)
    assert (obs.family, obs.ttl, obs.advert.vrid, obs.advert.addresses) == (6, 255, 52, (A(VIP6),))


def test_an_advert_that_crossed_a_router_is_heard_with_its_ttl():
    obs = parse(ip4(VRRP(vrid=51, priority=150, addrlist=[VIP4]), ttl=64))
    assert isinstance(obs, Heard) and obs.ttl == 64


def test_vlan_tagged_frame():
    frame = bytes(Ether(src=MAC, dst="01:00:5e:00:00:12") / Dot1Q(vlan=7)
                  / IP(src=SRC4, dst=GROUP4, ttl=255, proto=112) / VRRP(vrid=51, addrlist=[VIP4]))
    assert isinstance(parse(frame), Heard)


def test_malformed_frames_are_named_by_the_codec_reason():
    good = bytearray(bytes(VRRP(vrid=51, priority=150, addrlist=[VIP4])))
    good[6] ^= 0xFF
    cases = {
        "bad_checksum": ip4(bytes(good)),
        "too_short": ip4(b"\x21\x33"),
        "bad_type": ip4(bytes(VRRP(type=2, vrid=51, addrlist=[VIP4]))),
        "bad_length": ip4(bytes(VRRP(vrid=51, addrlist=[VIP4]))[:-4]),
        "foreign_carp": ip4(bytes.fromhex("2101640700011234") + bytes(28)),
        "bad_version": bytes(ETHER6 / IPv6(src=SRC6, dst=GROUP6, hlim=255, nh=112) / (b"\x51\x34" + bytes(22))),
    }
    for reason, frame in cases.items():
        obs = parse(frame)
        assert isinstance(obs, Malformed), reason
        assert obs.reason == reason, (reason, obs)
        assert obs.detail and obs.mac == MAC
    bad = parse(cases["bad_checksum"])
    assert (bad.src, bad.vrid, bad.family) == (A(SRC4), 51, 4)


def test_broken_ip_headers():
    short_header = bytes(ETHER4)[:12] + b"\x08\x00" + bytes.fromhex("45000014000000004070")  # 10 bytes, proto 112
    obs = parse(short_header)
    assert isinstance(obs, Malformed) and obs.reason == "bad_ip_header" and obs.src is None
    truncated6 = bytes(ETHER6 / IPv6(src=SRC6, dst=GROUP6, hlim=255, nh=112, plen=40) / bytes(8))
    obs = parse(truncated6)
    assert isinstance(obs, Malformed) and obs.reason == "bad_ip_length" and obs.src == A(SRC6)


def test_answers():
    reply = bytes(Ether(src="02:00:00:00:00:0c", dst=MAC) / ARP(op=2, hwsrc="02:00:00:00:00:0c", psrc=VIP4,
                                                               hwdst=MAC, pdst="0.0.0.0"))
    assert parse(reply) == Answer(12.5, "lan0", A(VIP4), "02:00:00:00:00:0c")
    na = bytes(Ether(src="02:00:00:00:00:0c") / IPv6(src=VIP6, dst=SRC6, hlim=255) / ICMPv6ND_NA(tgt=VIP6, S=1)
               / ICMPv6NDOptDstLLAddr(lladdr="00:00:5e:00:02:34"))
    assert parse(na) == Answer(12.5, "lan0", A(VIP6), "00:00:5e:00:02:34")  # the option wins over Ethernet
    bare = bytes(Ether(src="02:00:00:00:00:0c") / IPv6(src=VIP6, dst=SRC6, hlim=255) / ICMPv6ND_NA(tgt=VIP6))
    assert parse(bare) == Answer(12.5, "lan0", A(VIP6), "02:00:00:00:00:0c")


def test_other_frames_are_ignored():
    request = bytes(Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC, psrc="0.0.0.0", pdst=VIP4))
    udp = bytes(ETHER4 / IP(src=SRC4, dst=GROUP4) / UDP(sport=1, dport=2))
    for frame in (request, udp, b"", b"\x01" * 13, bytes(Ether(type=0x88CC) / b"lldp")):
        assert parse(frame) is None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_an_observation_or_none(data: bytes):
    assert parse(data) is None or isinstance(parse(data), Heard | Malformed | Answer)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([b"\x08\x00", b"\x86\xdd", b"\x08\x06", b"\x81\x00\x00\x07\x08\x00"]))
def test_garbage_after_an_ethernet_header(payload: bytes, ethertype: bytes):
    obs = parse(bytes(6) + bytes.fromhex(MAC.replace(":", "")) + ethertype + payload)
    assert obs is None or isinstance(obs, Heard | Malformed | Answer)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 255))
def test_garbage_vrrp_after_valid_ip_headers(payload: bytes, ttl: int):
    for frame in (ip4(payload, ttl=ttl), bytes(ETHER6 / IPv6(src=SRC6, dst=GROUP6, hlim=ttl, nh=112) / payload)):
        obs = parse(frame)
        assert isinstance(obs, Heard | Malformed)
        if isinstance(obs, Malformed):
            assert obs.reason and obs.detail and obs.src is not None
