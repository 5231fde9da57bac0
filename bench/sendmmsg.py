"""Would sendmmsg pay for the ticker's batches? K datagrams as K `sendto` calls against one `sendmmsg`.

Python's `socket` has no `sendmmsg`, so it goes through ctypes, with its message headers built per batch
as the ticker would have to (each batch is a different set of adverts). Datagrams of 40 bytes (an IPv4
VRRPv3 advert with one address is 20 + 12) to a socket on loopback that nobody reads. Prints the process
CPU time per datagram for both. No root, ~2 s.

    .venv/bin/python bench/sendmmsg.py [--batch 6] [--rounds 20000]

Figures only (bench/README.md, "One task for every master's adverts").
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import socket
import sys
import time


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(_Iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


class _SockaddrIn(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort), ("port", ctypes.c_uint16), ("addr", ctypes.c_uint8 * 4),
                ("zero", ctypes.c_uint8 * 8)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=6, help="datagrams per batch, 1-64")
    p.add_argument("--rounds", type=int, default=20000, help="batches, 100-1000000")
    args = p.parse_args()
    if not (1 <= args.batch <= 64 and 100 <= args.rounds <= 1_000_000):
        p.error("bad --batch or --rounds")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    messages = [bytes([i]) * 40 for i in range(args.batch)]
    address = _SockaddrIn(socket.AF_INET, socket.htons(port), (ctypes.c_uint8 * 4)(127, 0, 0, 1))

    cpu = time.process_time()
    for _ in range(args.rounds):
        for message in messages:
            sock.sendto(message, ("127.0.0.1", port))
    per_sendto = (time.process_time() - cpu) / (args.rounds * args.batch) * 1e6

    cpu = time.process_time()
    for _ in range(args.rounds):
        headers, vectors = (_Mmsghdr * args.batch)(), (_Iovec * args.batch)()
        buffers = [ctypes.create_string_buffer(m, len(m)) for m in messages]
        for i, message in enumerate(messages):
            vectors[i].base, vectors[i].len = ctypes.addressof(buffers[i]), len(message)
            hdr = headers[i].hdr
            hdr.name, hdr.namelen = ctypes.addressof(address), ctypes.sizeof(address)
            hdr.iov, hdr.iovlen = ctypes.pointer(vectors[i]), 1
        if libc.sendmmsg(sock.fileno(), headers, args.batch, 0) != args.batch:
            print(f"sendmmsg failed: errno {ctypes.get_errno()}", file=sys.stderr)
            return 1
    per_sendmmsg = (time.process_time() - cpu) / (args.rounds * args.batch) * 1e6
    print(f"batch of {args.batch}: sendto {per_sendto:.2f} us per datagram, sendmmsg (ctypes) {per_sendmmsg:.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
