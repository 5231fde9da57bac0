"""Every VRRP advert on the lab's LAN with the kernel's receive time: the stream the namespace tests
read protocol timing from (which timer drove a takeover), instead of sleeping and looking.

The script part (standard library only) runs INSIDE the lab's bridge namespace:

    ip netns exec PREFIX-lan python adverts.py --iface br0 --timeout 120

It puts br0 in promiscuous mode for its lifetime (a membership that ends with the socket), so the
unicast adverts between two nodes are seen as well as the multicast ones, prints {"ready": true} and
then one JSON line per VRRP packet: {"t": kernel receive time (CLOCK_REALTIME, s), "mac": source MAC,
"src": source address, "version", "vrid", "prio"}. Frames that are not VRRP, or too short to be,
are ignored. It ends after --timeout or on SIGTERM.

`lab.AdvertWatch` starts it in a Lab and answers "the first advert from d2 after t" by polling its
output with a deadline. Receive times are CLOCK_REALTIME, the clock of `time.time()` and of the
daemons' log timestamps, so the three can be compared.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
VRRP_PROTO = 112


def parse(frame: bytes) -> dict | None:
    """The advert fields of an Ethernet frame carrying VRRP over IPv4 or IPv6; None for anything else."""
    if len(frame) < 14:
        return None
    ethertype, body = int.from_bytes(frame[12:14], "big"), frame[14:]
    if ethertype == 0x0800 and len(body) >= 20:
        ihl = (body[0] & 0x0F) * 4
        proto, src, l4 = body[9], ipaddress.IPv4Address(body[12:16]), body[ihl:]
    elif ethertype == 0x86DD and len(body) >= 40:
        proto, src, l4 = body[6], ipaddress.IPv6Address(body[8:24]), body[40:]
    else:
        return None
    if proto != VRRP_PROTO or len(l4) < 4:
        return None
    return {"mac": frame[6:12].hex(":"), "src": str(src), "version": l4[0] >> 4, "vrid": l4[1], "prio": l4[2]}


def record(iface: str, timeout: float) -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    mreq = struct.pack("@iHH8s", socket.if_nametoindex(iface), PACKET_MR_PROMISC, 0, b"")
    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            continue
        frame, anc, _flags, addr = sock.recvmsg(65535, 64)
        fields = parse(frame) if addr[2] != PACKET_OUTGOING else None
        if fields is None:
            continue
        t = time.time()
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                sec, nsec = struct.unpack("@qq", data[:16])
                t = sec + nsec / 1e9
        print(json.dumps({"t": t, **fields}), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iface", default="br0")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds, 1..7200")
    args = p.parse_args(argv)
    if not 1.0 <= args.timeout <= 7200.0:
        p.error("--timeout must be within 1..7200 s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    record(args.iface, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
