"""Benchmark: start-up to the first advert on the 97,000-line config, pyvrrpd beside keepalived.

The config is bench/check_config.py's (1,000 virtual servers x 10 real servers with TCP_CHECK) plus
one VRRPv3 instance (state MASTER, priority 255, advert_int 1) in lab node d1. The time is from the
spawn of the daemon to its first advert, stamped by the kernel on the lab's bridge (AdvertWatch,
CLOCK_REALTIME on both sides). A priority-255 master sends its first advert at once, so this is the
time to read and build the config and start VRRP. Variants, in ABBA order within each round:

* ``keepalived -P`` (its VRRP process: it parses the whole file too) against ``pyvrrpd -P``
  (the same subsystems: no LVS);
* ``pyvrrpd`` with everything (the LVS subsystem first: 10,000 checkers and the IPVS table before
  VRRP, by design; IPVS is programmed in its in-memory table when the host has no ip_vs).

CPU time is not separated here (the daemon keeps running): see bench/check_config.py for the load's.

Verdict (exit 0 only if all hold): every run saw a first advert; pyvrrpd -P's median is under 1 s
(issue 11). The full daemon's figure is printed, not rated.

    sudo .venv/bin/python bench/startup.py [--runs 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from check_config import generate  # noqa: E402
from harness import Check, abba, median, spread, table, verdict  # noqa: E402

TARGET_S = 1.0
VARIANTS = ("pyvrrpd -P", "keepalived -P", "pyvrrpd")


def config() -> str:
    from tests.net.lab import vrrp_config

    instance = vrrp_config("d1", state="MASTER", priority=255, advert_int=1)
    head, _, rest = instance.partition("}\n")  # global_defs of the instance's config, then its instance
    return head + "}\n" + generate(1000, 10).split("}\n", 1)[1] + rest


def one(lab, watch, variant: str, text: str) -> float:
    from tests.net.lab import sent_by, start_keepalived, start_pyvrrpd

    t0 = time.time()
    if variant.startswith("keepalived"):
        peer = start_keepalived(lab, "d1", text)
    else:
        peer = start_pyvrrpd(lab, "d1", text, args=["-P"] if variant.endswith("-P") else [], wait=False)
    try:
        first = watch.wait(f"{variant}'s first advert", sent_by("d1"), since=t0, timeout=60)
        return first.t - t0
    finally:
        peer.stop(timeout=20)
        lab.run("d1", ["ip", "addr", "flush", "dev", "lan0", "to", "198.51.100.100/32"], check=False)
        time.sleep(1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="rounds (1-10)")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    if not 1 <= args.runs <= 10:
        p.error("--runs must be within 1..10")
    if os.geteuid() != 0 or shutil.which("keepalived") is None:
        print("needs root, ip netns and keepalived", file=sys.stderr)
        return 2
    from tests.net.lab import AdvertWatch, Lab, LabError

    compileall.compile_dir(str(ROOT / "pyvrrpd"), quiet=1)  # as installed: byte-compiled
    text = config()
    times: dict[str, list[float | None]] = {v: [] for v in VARIANTS}
    with Lab({"d1": 11}, workdir=Path(tempfile.mkdtemp(prefix="pyvrrpd-startup-"))) as lab:
        watch = AdvertWatch(lab, timeout=60 + 90 * args.runs * len(VARIANTS))
        for _, variant in abba(list(VARIANTS), args.runs):
            try:
                times[variant].append(one(lab, watch, variant, text))
            except (LabError, OSError) as e:
                print(f"# {variant}: {type(e).__name__}: {e}", file=sys.stderr)
                times[variant].append(None)
            print(f"# {variant}: {times[variant][-1]}", file=sys.stderr, flush=True)
    print(f"# {text.count(chr(10))} lines; spawn to the first advert (kernel-stamped on the bridge), "
          f"{args.runs} runs each, ABBA order; load average {os.getloadavg()[0]:.2f}")
    table(("daemon", "seconds: median / min / max", "runs"),
          [(v, str(spread(times[v])), " ".join("-" if t is None else f"{t:.3f}" for t in times[v])) for v in VARIANTS])
    ours = median(times["pyvrrpd -P"])
    checks = [Check("every run saw a first advert", all(t is not None for ts in times.values() for t in ts),
                    str(times)),
              Check("pyvrrpd -P: first advert < 1 s", ours is not None and ours < TARGET_S,
                    f"median {ours} s, keepalived -P {median(times['keepalived -P'])} s, "
                    f"pyvrrpd with LVS {median(times['pyvrrpd'])} s")]
    if args.json:
        Path(args.json).write_text(json.dumps({"times": times, "load": os.getloadavg()}, indent=1) + "\n")
    return verdict(checks)


if __name__ == "__main__":
    sys.exit(main())
