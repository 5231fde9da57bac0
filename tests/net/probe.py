"""Failover probe, run INSIDE the client namespace (test-environment.md §6.1). Standard library only.

    ip netns exec NS python probe.py --vip 198.51.100.100 [--vip6 2001:db8:1::100] \
        --master-mac MAC --backup-mac MAC --signal KILL --pid PID [--pid PID ...] --advert-int 1

Every 10 ms it sends an ICMP echo to the VIP through this namespace's kernel (so the neighbour cache,
which GARP/NA must fix, picks the MAC), an ICMPv6 echo to the IPv6 VIP when given, and a raw ARP
who-has VIP from a fake sender (198.51.100.51, 02:00:00:00:00:51) so the replies never touch the
kernel's ARP cache. An AF_PACKET sniffer on the interface tells the directors apart by the SOURCE MAC
of replies and records VRRP adverts (with priority), GARPs and NAs, timestamped by the kernel on
receipt and converted to CLOCK_MONOTONIC.

Once 30 consecutive echo replies came from the master and 1.2 s + U(0, advert_int) passed (a random
phase against the adverts), the probe sends the signal itself, to each --pid in order (keepalived:
VRRP child first, then the parent). It prints ONE JSON line with times in seconds relative to the
signal (null = not seen) and exits 0; 1 if the master never answered steadily (no signal was sent).
Bounded by --timeout.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
FAKE_IP = ipaddress.IPv4Address("198.51.100.51")
FAKE_MAC = bytes.fromhex("020000000051")
TICK = 0.010
STEADY_REPLIES = 30
SETTLE = 0.3  # keep listening this long after the last expected event (late losses, prio-0 adverts)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac_bytes(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", ""))
    if len(raw) != 6:
        raise argparse.ArgumentTypeError(f"not a MAC address: {text!r}")
    return raw


class Probe:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.vip = ipaddress.IPv4Address(args.vip)
        self.vip6 = ipaddress.IPv6Address(args.vip6) if args.vip6 else None
        self.master, self.backup = args.master_mac, args.backup_mac
        self.ident = os.getpid() & 0xFFFF
        self.icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) if self.vip6 else None
        self.sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sniff.bind((args.iface, 0))
        self.sniff.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sniff.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        for sock in (self.icmp, self.icmp6, self.sniff):
            if sock is not None:
                sock.setblocking(False)
        # kernel receive stamps are CLOCK_REALTIME; one offset converts them (runs last seconds only)
        self.real_minus_mono = time.clock_gettime(time.CLOCK_REALTIME) - time.monotonic()
        self.arp_frame = self._arp_who_has()
        self.seq = 0
        self.sent4: dict[int, float] = {}  # seq -> send time
        self.sent6: dict[int, float] = {}
        self.replies4: dict[int, tuple[float, bytes]] = {}  # seq -> (time, source MAC)
        self.replies6: dict[int, tuple[float, bytes]] = {}
        self.steady = 0
        self.t_signal: float | None = None
        self.first: dict[str, float] = {}  # event name -> first time after the signal (backup side)
        self.backup_advert_prio: int | None = None
        self.master_last_advert: dict[int, float] = {}  # VRID -> last priority>0 advert before the signal
        self.master_prio0: float | None = None
        self.pre_signal_backup = 0  # replies/adverts from the backup before the signal: split brain
        self.events: list[tuple[float, str, str, int, int]] = []  # (time, kind, who, vrid, prio)

    def _arp_who_has(self) -> bytes:
        return (b"\xff" * 6 + FAKE_MAC + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
                + FAKE_MAC + FAKE_IP.packed + b"\0" * 6 + self.vip.packed)

    # -- sending --------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        payload = struct.pack("!d", now)
        echo = struct.pack("!BBHHH", 8, 0, 0, self.ident, self.seq) + payload
        echo = echo[:2] + struct.pack("!H", checksum(echo)) + echo[4:]
        for sock, dst, sent, packet in (
            (self.icmp, (str(self.vip), 0), self.sent4, echo),
            (self.icmp6, (str(self.vip6), 0, 0, 0), self.sent6,
             struct.pack("!BBHHH", 128, 0, 0, self.ident, self.seq) + payload),  # kernel fills the checksum
        ):
            if sock is None:
                continue
            try:
                sock.sendto(packet, dst)
                sent[self.seq] = now
            except (BlockingIOError, OSError):
                pass  # neighbour not resolved yet / queue full: counted as not sent
        try:
            self.sniff.send(self.arp_frame)
        except OSError:
            pass

    # -- receiving ------------------------------------------------------------------------------

    def drain(self) -> None:
        for sock in (self.icmp, self.icmp6):  # replies are read from the sniffer, by MAC
            while sock is not None:
                try:
                    sock.recv(65535)
                except BlockingIOError:
                    break
        while True:
            try:
                frame, anc, _flags, addr = self.sniff.recvmsg(65535, 64)
            except BlockingIOError:
                return
            if addr[2] == PACKET_OUTGOING:
                continue
            t = time.monotonic()
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack("@qq", data[:16])
                    t = sec + nsec / 1e9 - self.real_minus_mono
            self.frame(frame, t)

    def who(self, mac: bytes) -> str | None:
        return "master" if mac == self.master else "backup" if mac == self.backup else None

    def frame(self, frame: bytes, t: float) -> None:
        if len(frame) < 14:
            return
        src_mac, ethertype, body = frame[6:12], int.from_bytes(frame[12:14], "big"), frame[14:]
        who = self.who(src_mac)
        if who is None:
            return
        if ethertype == 0x0806 and len(body) >= 28:
            op = int.from_bytes(body[6:8], "big")
            spa, tpa = body[14:18], body[24:28]
            if spa == self.vip.packed and tpa == self.vip.packed:
                self.event(t, "garp", who)
            elif op == 2 and spa == self.vip.packed and tpa == FAKE_IP.packed:
                self.event(t, "arp", who)
        elif ethertype == 0x0800 and len(body) >= 20:
            ihl = (body[0] & 0x0F) * 4
            proto, l4 = body[9], body[ihl:]
            if proto == 1 and len(l4) >= 8 and l4[0] == 0 and body[12:16] == self.vip.packed:
                self.echo_reply(l4, t, src_mac, self.replies4, "echo", who)
            elif proto == 112 and len(l4) >= 4:
                self.advert(t, who, l4[1], l4[2])
        elif ethertype == 0x86DD and len(body) >= 40:
            nh, l4 = body[6], body[40:]
            if nh == 58 and len(l4) >= 8:
                if l4[0] == 129 and self.vip6 and body[8:24] == self.vip6.packed:
                    self.echo_reply(l4, t, src_mac, self.replies6, "echo6", who)
                elif l4[0] == 136 and self.vip6 and len(l4) >= 24 and l4[8:24] == self.vip6.packed:
                    self.event(t, "na", who)
            elif nh == 112 and len(l4) >= 4:
                self.advert(t, who, l4[1], l4[2])

    def echo_reply(self, l4: bytes, t: float, mac: bytes, replies: dict, kind: str, who: str) -> None:
        ident, seq = struct.unpack("!HH", l4[4:8])
        if ident != self.ident:
            return
        replies.setdefault(seq, (t, mac))
        if kind == "echo" and self.t_signal is None:
            self.steady = self.steady + 1 if who == "master" else 0
        self.event(t, kind, who)

    def advert(self, t: float, who: str, vrid: int, prio: int) -> None:
        if self.args.events:
            self.events.append((t, "advert", who, vrid, prio))
        if self.t_signal is None or t < self.t_signal:
            if who == "master" and prio > 0:
                self.master_last_advert[vrid] = t
            elif who == "backup":
                self.pre_signal_backup += 1
            return
        if who == "master" and prio == 0 and self.master_prio0 is None:
            self.master_prio0 = t
        if who == "backup" and "advert" not in self.first:
            self.first["advert"] = t
            self.backup_advert_prio = prio

    def event(self, t: float, kind: str, who: str) -> None:
        if self.args.events and kind in ("garp", "na"):
            self.events.append((t, kind, who, 0, 0))
        if who != "backup":
            return
        if self.t_signal is None or t < self.t_signal:
            if kind in ("echo", "echo6", "arp"):
                self.pre_signal_backup += 1
            return
        self.first.setdefault(kind, t)

    # -- the run --------------------------------------------------------------------------------

    def expected(self) -> set[str]:
        return {"echo", "arp", "advert", "garp"} | ({"echo6", "na"} if self.vip6 else set())

    def run(self) -> dict:
        args = self.args
        start = time.monotonic()
        deadline = start + args.timeout
        phase = 1.2 + random.uniform(0.0, args.advert_int)
        next_tick = start
        done_at: float | None = None
        while True:
            now = time.monotonic()
            if now >= deadline or (done_at is not None and now >= done_at):
                break
            if now >= next_tick:
                self.tick(now)
                next_tick = max(next_tick + TICK, now + TICK / 2)
            self.drain()
            if self.t_signal is None and self.steady >= STEADY_REPLIES and now - start >= phase:
                self.send_signal()
            if self.t_signal is not None and done_at is None and self.expected() <= self.first.keys():
                done_at = time.monotonic() + SETTLE
            wait = max(0.0, min(next_tick, deadline) - time.monotonic())
            select.select([self.sniff], [], [], wait)
        return self.result(phase, time.monotonic())

    def send_signal(self) -> None:
        sig = signal.SIGKILL if self.args.signal == "KILL" else signal.SIGTERM
        self.t_signal = time.monotonic()
        for pid in self.args.pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def result(self, phase: float, t_end: float) -> dict:
        ts = self.t_signal

        def rel(t: float | None) -> float | None:
            return None if t is None or ts is None else round(t - ts, 4)

        out: dict = {"signal": self.args.signal, "pids": self.args.pid, "phase": round(phase, 4),
                     "signalled": ts is not None, "pre_signal_backup": self.pre_signal_backup,
                     "sent": len(self.sent4), "replies": len(self.replies4)}
        for kind in ("echo", "echo6", "arp", "advert", "garp", "na"):
            out[kind] = rel(self.first.get(kind))
        out["advert_prio"] = self.backup_advert_prio
        out["master_prio0"] = rel(self.master_prio0)
        last = self.master_last_advert
        for name, vrid, first in (("", self.args.vrid, "echo"), ("6", self.args.vrid6, "echo6")):
            t_last = last.get(vrid) if vrid else None
            out[f"master_last_advert{name}"] = rel(t_last)
            t_first = self.first.get(first)
            out[f"from_last_advert{name}"] = (round(t_first - t_last, 4)
                                               if t_first is not None and t_last is not None else None)
        out["lost"] = self.lost(self.sent4, self.replies4, t_end)
        out["lost6"] = self.lost(self.sent6, self.replies6, t_end) if self.vip6 else None
        if self.args.events and ts is not None:
            out["events"] = [[round(t - ts, 4), kind, who, vrid, prio]
                             for t, kind, who, vrid, prio in self.events if t >= ts - 3 * self.args.advert_int]
        return out

    def lost(self, sent: dict[int, float], replies: dict, t_end: float) -> int | None:
        """Echoes sent after the signal (until 0.1 s before the end) that nobody answered."""
        if self.t_signal is None:
            return None
        return sum(1 for seq, t in sent.items() if self.t_signal <= t <= t_end - 0.1 and seq not in replies)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iface", default="lan0")
    p.add_argument("--vip", required=True)
    p.add_argument("--vip6")
    p.add_argument("--vrid", type=int, default=51, help="VRID of the IPv4 VIP (for the last-advert time)")
    p.add_argument("--vrid6", type=int, default=52, help="VRID of the IPv6 VIP")
    p.add_argument("--master-mac", type=mac_bytes, required=True)
    p.add_argument("--backup-mac", type=mac_bytes, required=True)
    p.add_argument("--signal", choices=("KILL", "TERM"), required=True)
    p.add_argument("--pid", type=int, action="append", required=True, help="signalled in the order given")
    p.add_argument("--advert-int", type=float, required=True, help="seconds; the random phase is U(0, this)")
    p.add_argument("--timeout", type=float, default=15.0, help="hard limit for the whole probe, seconds")
    p.add_argument("--events", action="store_true", help="also list adverts/GARPs/NAs around the signal")
    args = p.parse_args(argv)
    if not 1.0 <= args.timeout <= 60.0:
        p.error("--timeout must be within 1..60 s")
    if any(pid <= 1 or pid == os.getpid() for pid in args.pid):
        p.error("refusing to signal pid <= 1 or myself")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = Probe(args).run()
    print(json.dumps(result), flush=True)
    return 0 if result["signalled"] else 1


if __name__ == "__main__":
    sys.exit(main())
