"""Demo: a director pair of two pyvrrpd daemons in network namespaces (run as root; scripts/demo calls it).

d1 (priority 150) and d2 (priority 100) run the same keepalived.conf apart from priority, with
VRRPv3 at 100 ms for an IPv4 and an IPv6 VIP. The demo shows the election, a crash of the master
(kill -9), the old master coming back and preempting, and a graceful stop (SIGTERM: priority-0
advert). Everything lives in throw-away namespaces on a private bridge and is removed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.net.lab import Lab, start_pyvrrpd, vrrp_config, wait_for  # noqa: E402

VIP4, VIP6 = "198.51.100.100", "2001:db8:1::100"


def holder(lab: Lab) -> str:
    owners = [n for n in ("d1", "d2") if VIP4 in lab.addresses(n)]
    return ", ".join(owners) or "nobody"


def wait_holder(lab: Lab, node: str, timeout: float = 10.0) -> float:
    t0 = time.monotonic()
    wait_for(lambda: VIP4 in lab.addresses(node) and VIP6 in lab.addresses(node),
             timeout=timeout, interval=0.01, what=f"{node} to hold the VIPs")
    return time.monotonic() - t0


def show_log(peer, lines: int = 6) -> None:
    """The last log events of a daemon (its log is JSON lines when not on a TTY)."""
    for line in peer.log_text().splitlines()[-lines:]:
        try:
            event = json.loads(line)
            line = f"{event.get('timestamp', '')[11:23]}  {event.get('event', '')}"
        except ValueError:
            pass
        print(f"      {peer.node}| {line[:150]}")


def main() -> int:
    if os.geteuid() != 0:
        print("demo: needs root (network namespaces)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="pyvrrpd-demo-") as tmp, \
            Lab({"d1": 11, "d2": 12, "c1": 50}, workdir=Path(tmp)) as lab:
        conf = {n: vrrp_config(n, state="BACKUP", priority=p, version=3, advert_int=0.1,
                               vip=f"{VIP4}/32", vip6=f"{VIP6}/128")
                for n, p in (("d1", 150), ("d2", 100))}
        print(f"lab: namespaces {lab.ns('d1')}, {lab.ns('d2')} on a bridge; VIPs {VIP4} and {VIP6}, VRRPv3 at 100 ms")
        d2 = start_pyvrrpd(lab, "d2", conf["d2"])
        d1 = start_pyvrrpd(lab, "d1", conf["d1"])
        t = wait_holder(lab, "d1")
        print(f"1. election: d1 (priority 150) holds the VIPs after {t:.2f} s; d2 is backup. VIP on: {holder(lab)}")
        show_log(d1)

        time.sleep(1)
        os.kill(d1.process.pid, signal.SIGKILL)
        t = wait_holder(lab, "d2")
        print(f"2. kill -9 d1: d2 took over after {t:.3f} s (Master_Down_Interval is 0.361 s).")
        print(f"   The dead d1 still has its VIP (a crash cannot clean up): VIP on {holder(lab)}; removing it.")
        for address in (f"{VIP4}/32", f"{VIP6}/128"):
            lab.run("d1", ["ip", "addr", "del", address, "dev", "lan0"], check=False)
        show_log(d2)

        d1 = start_pyvrrpd(lab, "d1", conf["d1"])
        t = wait_holder(lab, "d1")
        print(f"3. d1 restarted: it preempts d2 after {t:.2f} s. VIP on: {holder(lab)}")

        time.sleep(1)
        t0 = time.monotonic()
        d1.process.send_signal(signal.SIGTERM)
        t = wait_holder(lab, "d2")
        code = d1.process.wait(timeout=10)
        print(f"4. SIGTERM d1: priority-0 advert, d2 took over after {time.monotonic() - t0:.3f} s "
              f"(Skew_Time is 0.061 s); d1 exited {code} and removed its VIPs. VIP on: {holder(lab)}")
        show_log(d1, 4)
        d2.stop()
        print("done: namespaces and processes removed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
