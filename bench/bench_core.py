"""Time the sans-I/O core: advert encode/decode and a backup's receive path (µs per call).

Run: .venv/bin/python bench/bench_core.py
"""

from __future__ import annotations

import ipaddress
import struct
import timeit

from pyvrrpd.core.packet import GROUP4, GROUP6, Advertisement, decode, decode_ipv4_packet, encode
from pyvrrpd.core.router import RouterConfig, VirtualRouter

A = ipaddress.ip_address
SRC4, SRC6 = A("198.51.100.11"), A("fe80::f00a:41ff:fe3d:b69e")
VIP4, VIP6 = A("198.51.100.100"), A("2001:db8:1::100")


def per_call_us(fn: object, number: int = 100_000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    v2 = Advertisement(2, 1, 51, 150, 1, 0, 1, 0, (VIP4,), bytes(8))
    v3 = Advertisement(3, 1, 51, 150, 1, 0, 10, 0, (VIP4,), b"")
    v6 = Advertisement(3, 1, 52, 150, 1, 0, 10, 0, (VIP6,), b"")
    v3x10 = Advertisement(3, 1, 51, 150, 10, 0, 10, 0,
                          tuple(A(f"198.51.100.{100 + i}") for i in range(10)), b"")
    cases = [("v2 IPv4, 1 VIP", v2, 4, SRC4, GROUP4), ("v3 IPv4, 1 VIP", v3, 4, SRC4, GROUP4),
             ("v3 IPv6, 1 VIP", v6, 6, SRC6, GROUP6), ("v3 IPv4, 10 VIPs", v3x10, 4, SRC4, GROUP4)]
    for name, adv, family, src, dst in cases:
        data = encode(adv, family=family, src=src, dst=dst)
        enc = per_call_us(lambda: encode(adv, family=family, src=src, dst=dst))
        dec = per_call_us(lambda: decode(data, family=family, src=src, dst=dst, ttl=255))
        print(f"{name:18} encode {enc:5.2f} µs   decode {dec:5.2f} µs")
    rfc9568 = encode(v3, family=4, pseudo_header=False)  # decode tries the pseudo-header form first
    dec = per_call_us(lambda: decode(rfc9568, family=4, src=SRC4, dst=GROUP4, ttl=255))
    print(f"{'v3 IPv4 RFC 9568':18} decode {dec:5.2f} µs")
    payload = encode(v2, family=4)
    packet = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, 255, 112, 0,
                         SRC4.packed, GROUP4.packed) + payload
    print(f"{'raw IPv4 packet':18} decode {per_call_us(lambda: decode_ipv4_packet(packet)):5.2f} µs")

    router = VirtualRouter(RouterConfig("VI_1", 51, A("198.51.100.12"), (VIP4,), priority=100))
    router.startup(0.0)
    clock = iter(range(1, 10**9))

    def receive() -> None:
        router.receive(v2, SRC4, next(clock) / 1000)
        while router.next_action() is not None:
            pass

    print(f"{'backup receive':18} {per_call_us(receive):5.2f} µs (advert accepted, down timer reset)")


if __name__ == "__main__":
    main()
