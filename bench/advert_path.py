"""The user-space side of a master's periodic adverts, without a lab: CPU per 1,000 adverts.

N VRRPv3 masters at 0.1 s (priority 255, so master at once) run on the daemon's own driver and ticker
(``daemon.instance.run_instance`` with one shared ``Ticker``); their effects encode each advert once and
send it with ``sendto`` on a UDP socket to a socket on loopback that nobody reads, so the kernel's part is
small and the same for every event loop. Started 1 ms apart, so their deadlines are spread as in the daemon.
Measured: process CPU time (user + system) over the window, per 1,000 adverts sent; event loops in
ABBA order, each --runs times, medians. A profiling aid for ``bench/vrrp_scale.py``, and the measurement
of uvloop (issue 11): uvloop is no dependency of pyvrrpd (pyroute2's netlink sockets do not run on it,
bench/README.md), so ``--loops asyncio,uvloop`` needs it installed in the venv (``pip install uvloop``).

    .venv/bin/python bench/advert_path.py [--instances 100] [--seconds 10] [--runs 3] [--loops asyncio,uvloop]

Figures only, no verdict (exit 0), and no root needed.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import abba, median, table  # noqa: E402

SOURCE = ipaddress.ip_address("198.51.100.11")
GROUP = ipaddress.ip_address("224.0.0.18")


def one_run(loop: str, instances: int, seconds: float) -> dict:
    """In this process: run the masters on `loop` and measure (the driver calls this in a fresh child)."""
    import anyio

    from pyvrrpd.core.actions import SendAdvert, State
    from pyvrrpd.core.packet import encode
    from pyvrrpd.core.router import RouterConfig, VirtualRouter
    from pyvrrpd.daemon.instance import Inbox, Ticker, run_instance

    # A bound socket nobody reads: its queue fills and the kernel drops the rest, which costs little. (To a
    # closed port each datagram would make the kernel build an ICMP error, rate-limited: noisy figures.)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    target = sink.getsockname()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sent = 0

    class Effects:
        """The parts of InstanceEffects an advert uses: encode once per Advertisement, send."""

        def __init__(self) -> None:
            self._encoded = None

        def send_now(self, action: SendAdvert) -> bool:
            nonlocal sent
            cached = self._encoded
            if cached is None or cached[0] is not action.advert:
                cached = self._encoded = (action.advert, encode(action.advert, family=4, src=SOURCE, dst=GROUP))
            sock.sendto(cached[1], target)
            sent += 1
            return True

        async def apply(self, action) -> None:
            if isinstance(action, SendAdvert):
                self.send_now(action)

        def flushed(self) -> None:
            pass

        async def reload(self, plan, master: bool) -> None:
            pass

    async def main() -> dict:
        nonlocal sent
        ticker = Ticker()
        async with anyio.create_task_group() as tg:
            await tg.start(ticker.run)
            for i in range(instances):
                router = VirtualRouter(RouterConfig(
                    name=f"VI_{i + 1}", vrid=i + 1, source=SOURCE, addresses=(ipaddress.ip_address(f"203.0.113.{i + 1}"),),
                    version=3, advert_int_us=100_000, priority=255, initial_state=State.MASTER))
                tg.start_soon(lambda r=router: run_instance(r, Inbox(64), Effects(), ticker=ticker))
                await anyio.sleep(0.001)
            await anyio.sleep(1.0)  # past the takeovers
            sent, cpu0, t0 = 0, time.process_time(), time.monotonic()
            await anyio.sleep(seconds)
            cpu, wall, adverts = time.process_time() - cpu0, time.monotonic() - t0, sent
            tg.cancel_scope.cancel()
        return {"loop": loop, "adverts": adverts, "cpu_s": round(cpu, 4), "wall_s": round(wall, 3),
                "cpu_ms_per_1000_adverts": round(cpu * 1e6 / adverts, 2) if adverts else None}

    return anyio.run(main, backend="asyncio", backend_options={"use_uvloop": loop == "uvloop"})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--instances", type=int, default=100, help="1-255")
    p.add_argument("--seconds", type=float, default=10.0, help="measurement window, 1-120 s")
    p.add_argument("--runs", type=int, default=3, help="runs of each loop, in ABBA order (1-20)")
    p.add_argument("--loops", default="asyncio,uvloop", help="asyncio and/or uvloop")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one run in a fresh interpreter
    args = p.parse_args()
    if not (1 <= args.instances <= 255 and 1 <= args.seconds <= 120 and 1 <= args.runs <= 20):
        p.error("bad --instances, --seconds or --runs")
    if args.child:
        print(json.dumps(one_run(args.child, args.instances, args.seconds)), flush=True)
        return 0
    loops = [name for name in args.loops.split(",") if name]
    if set(loops) - {"asyncio", "uvloop"}:
        p.error("bad --loops")
    if "uvloop" in loops:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("# uvloop is not installed in this venv: measuring asyncio only", file=sys.stderr)
            loops = [name for name in loops if name != "uvloop"] or ["asyncio"]
    rows = []
    for _, loop in abba(loops, args.runs):
        out = subprocess.run([sys.executable, __file__, "--child", loop, "--instances", str(args.instances),
                              "--seconds", f"{args.seconds:g}"], capture_output=True, text=True,
                             timeout=args.seconds + 60, check=True)
        rows.append(json.loads(out.stdout.splitlines()[-1]))
        print(f"# {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"# {args.instances} masters at 0.1 s, {args.seconds:g} s window, {args.runs} runs per loop "
          f"(ABBA order), medians; load average {' '.join(load)}")
    table(("event loop", "adverts", "CPU ms / 1000 adverts", "per run"),
          [(loop, median(r["adverts"] for r in rows if r["loop"] == loop),
            median(r["cpu_ms_per_1000_adverts"] for r in rows if r["loop"] == loop),
            " / ".join(str(r["cpu_ms_per_1000_adverts"]) for r in rows if r["loop"] == loop)) for loop in loops])
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
