"""Abuses a control socket the ways a hostile or broken local client can (standard library only; the net
test runs it in the daemon's namespace): hundreds of connections held open, garbage, huge headers, slowloris
(one byte every 0.5 s, forever), and clients that pipeline requests and never read. Every kind runs in its
own threads: first the flood, then the others at once (when the daemon has closed the flood),
each bounded in time; the result is one JSON line per kind on stdout:
{"kind", "connections", "closed_by_server", "codes" (status codes read), "seconds" (how long the server
kept the longest one)}.

    python control_abuser.py --socket PATH [--seed 1] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import threading
import time

SLOW_GAP = 0.5
FLOOD_GONE = threading.Event()  # the other kinds start once the flood has been closed (as idle): slots are free
GIVE_UP = 25.0  # no client of ours lives longer than this, whatever the server does


def connect(path: str) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
    except OSError:
        s.close()
        return None
    return s


def closed_by_server(s: socket.socket, within: float) -> tuple[bool, bytes]:
    """Read until the server closes (True) or `within` seconds pass (False); what was read."""
    got = bytearray()
    deadline = time.monotonic() + within
    try:
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                return True, bytes(got)
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        return True, bytes(got)
    except OSError:
        return False, bytes(got)
    return False, bytes(got)


def codes_in(data: bytes) -> list[int]:
    return [int(data[i + 9:i + 12]) for i in range(len(data)) if data.startswith(b"HTTP/1.1 ", i)
            and data[i + 9:i + 12].isdigit()]


class Tally:
    def __init__(self, kind: str) -> None:
        self.kind, self.connections, self.closed, self.codes, self.seconds = kind, 0, 0, [], 0.0
        self.lock = threading.Lock()

    def add(self, closed: bool, data: bytes = b"", seconds: float = 0.0) -> None:
        with self.lock:
            self.connections += 1
            self.closed += closed
            self.codes += codes_in(data)
            self.seconds = max(self.seconds, seconds)

    def line(self) -> str:
        return json.dumps({"kind": self.kind, "connections": self.connections, "closed_by_server": self.closed,
                           "codes": sorted(set(self.codes)), "answers": len(self.codes),
                           "seconds": round(self.seconds, 2)})


def flood(path: str, t: Tally, n: int) -> None:
    """n connections opened at once and held, saying nothing."""
    held = [s for s in (connect(path) for _ in range(n)) if s is not None]
    started = time.monotonic()
    for s in held:
        closed, data = closed_by_server(s, max(0.1, GIVE_UP - (time.monotonic() - started)))
        t.add(closed, data, time.monotonic() - started)
        s.close()
    FLOOD_GONE.set()


def garbage(path: str, t: Tally, n: int, rng: random.Random) -> None:
    FLOOD_GONE.wait(GIVE_UP)
    for _ in range(n):
        s = connect(path)
        if s is None:
            continue
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))) + b"\r\n\r\n"
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # all said: a garbage line is refused at once, a partial one dropped
        except OSError:
            pass
        started = time.monotonic()
        closed, got = closed_by_server(s, 8.0)
        t.add(closed, got, time.monotonic() - started)
        s.close()


def huge(path: str, t: Tally, n: int) -> None:
    shapes = [b"GET /status HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
              b"GET /status HTTP/1.1\r\n" + b"X-A: b\r\n" * 500 + b"\r\n",
              b"GET /" + b"s" * 20_000 + b" HTTP/1.1\r\n\r\n",
              b"GET /status HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n" + b"x" * 50_000]
    FLOOD_GONE.wait(GIVE_UP)
    for i in range(n):
        s = connect(path)
        if s is None:
            continue
        try:
            s.sendall(shapes[i % len(shapes)])
        except OSError:
            pass
        started = time.monotonic()
        closed, got = closed_by_server(s, 8.0)
        t.add(closed, got, time.monotonic() - started)
        s.close()


def slowloris(path: str, t: Tally) -> None:
    """One header byte every SLOW_GAP seconds, forever (until the server closes, or GIVE_UP)."""
    FLOOD_GONE.wait(GIVE_UP)
    s = connect(path)
    if s is None:
        return
    text = b"GET /status HTTP/1.1\r\n" + b"X-Slow: " + b"z" * 10_000
    started = time.monotonic()
    closed = False
    for i in range(int(GIVE_UP / SLOW_GAP)):
        try:
            s.send(text[i:i + 1])
        except OSError:
            closed = True
            break
        s.settimeout(SLOW_GAP)
        try:
            if s.recv(4096) == b"":
                closed = True
                break
        except TimeoutError:
            pass
        except OSError:
            closed = True
            break
    t.add(closed, b"", time.monotonic() - started)
    s.close()


def nonreader(path: str, t: Tally) -> None:
    """Pipelines requests for big answers and never reads them; then (after GIVE_UP/2) looks whether the
    server has dropped it."""
    FLOOD_GONE.wait(GIVE_UP)
    s = connect(path)
    if s is None:
        return
    started = time.monotonic()
    s.settimeout(1.0)
    try:
        for _ in range(2000):
            s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    except OSError:
        pass  # our send buffer is full too, or the server closed
    time.sleep(8.0)
    closed, _ = closed_by_server(s, 8.0)
    t.add(closed, b"", time.monotonic() - started)
    s.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    tallies = {k: Tally(k) for k in ("flood", "garbage", "huge", "slowloris", "nonreader")}
    jobs = [threading.Thread(target=flood, args=(args.socket, tallies["flood"], int(300 * args.scale))),
            *(threading.Thread(target=garbage, args=(args.socket, tallies["garbage"], int(50 * args.scale),
                                                     random.Random(rng.random()))) for _ in range(4)),
            threading.Thread(target=huge, args=(args.socket, tallies["huge"], int(40 * args.scale)))]
    jobs += [threading.Thread(target=slowloris, args=(args.socket, tallies["slowloris"])) for _ in range(8)]
    jobs += [threading.Thread(target=nonreader, args=(args.socket, tallies["nonreader"])) for _ in range(8)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(GIVE_UP + 15)
    for tally in tallies.values():
        print(tally.line(), flush=True)


if __name__ == "__main__":
    main()
