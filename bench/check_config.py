"""Benchmark: `pyvrrpd --check-config` against `keepalived -t` on one large generated config.

The config has 1,000 virtual servers x 10 real servers with TCP_CHECK (about 97,000 lines). Both
programs run in the same way, in a fresh network namespace holding only `lo` (`unshare -n`), several
times each in alternation; the median wall time is reported. Target: pyvrrpd <= 3x keepalived.
pyvrrpd runs byte-compiled, as an installed package does (the bench compiles the tree first).

    sudo .venv/bin/python bench/check_config.py [--runs 7] [--vs 1000] [--rs 10]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generate(n_vs: int, n_rs: int) -> str:
    out = ["global_defs {", "    router_id bench", "}", ""]
    for i in range(n_vs):
        vip = f"198.51.100.{1 + i % 250}"
        port = 8000 + i // 250
        out += [
            f"virtual_server {vip} {port} {{",
            "    delay_loop 6",
            "    lb_algo rr",
            "    lb_kind NAT",
            "    protocol TCP",
            "    persistence_timeout 50",
        ]
        for j in range(n_rs):
            out += [
                f"    real_server 203.0.113.{1 + (i * n_rs + j) % 250} {port} {{",
                "        weight 1",
                "        TCP_CHECK {",
                f"            connect_port {port}",
                "            connect_timeout 3",
                "            retry 3",
                "            delay_before_retry 3",
                "        }",
                "    }",
            ]
        out.append("}")
    return "\n".join(out) + "\n"


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall time and exit status of one run.

    A blocking wait: subprocess.run(timeout=...) polls with sleeps that grow to 50 ms,
    which rounds every time up to the next poll (0.0635, 0.1135, 0.1635, ... s). A timer
    still kills a run that hangs.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        rc = proc.wait()
    finally:
        watchdog.cancel()
    return time.perf_counter() - t0, rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--vs", type=int, default=1000)
    ap.add_argument("--rs", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()

    # pip and Debian packages byte-compile at install; a development tree run with
    # PYTHONDONTWRITEBYTECODE=1 would be compiled at every start (about 50 ms), which
    # measures CPython's compiler rather than pyvrrpd.
    compileall.compile_dir(os.path.join(ROOT, "pyvrrpd"), quiet=1)
    unshare = ["unshare", "-n"] if os.geteuid() == 0 and shutil.which("unshare") else []
    keepalived = shutil.which("keepalived")
    pyvrrpd = [os.path.join(ROOT, ".venv", "bin", "python"), "-m", "pyvrrpd"]
    if not os.path.exists(pyvrrpd[0]):
        pyvrrpd = [sys.executable, "-m", "pyvrrpd"]

    with tempfile.TemporaryDirectory(prefix="pyvrrpd-bench-") as tmp:
        conf = os.path.join(tmp, "keepalived.conf")
        text = generate(args.vs, args.rs)
        with open(conf, "w") as f:
            f.write(text)
        lines = text.count("\n")
        ours: list[float] = []
        theirs: list[float] = []
        rc_ours = rc_theirs = None
        for _ in range(args.runs):
            t, rc_ours = timed(unshare + pyvrrpd + ["--check-config", "-f", conf])
            ours.append(t)
            if keepalived:
                t, rc_theirs = timed(unshare + [keepalived, "-t", "-f", conf])
                theirs.append(t)

    result = {
        "lines": lines,
        "virtual_servers": args.vs,
        "real_servers": args.vs * args.rs,
        "runs": args.runs,
        "pyvrrpd_median_s": round(statistics.median(ours), 4),
        "pyvrrpd_min_s": round(min(ours), 4),
        "pyvrrpd_exit": rc_ours,
        "keepalived_median_s": round(statistics.median(theirs), 4) if theirs else None,
        "keepalived_min_s": round(min(theirs), 4) if theirs else None,
        "keepalived_exit": rc_theirs,
    }
    if theirs:
        result["ratio"] = round(result["pyvrrpd_median_s"] / result["keepalived_median_s"], 2)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"config: {lines} lines, {args.vs} virtual servers x {args.rs} real servers (TCP_CHECK)")
        print(f"pyvrrpd --check-config : median {result['pyvrrpd_median_s']:.3f} s "
              f"(min {result['pyvrrpd_min_s']:.3f} s, exit {rc_ours})")
        if theirs:
            print(f"keepalived -t          : median {result['keepalived_median_s']:.3f} s "
                  f"(min {result['keepalived_min_s']:.3f} s, exit {rc_theirs})")
            print(f"ratio pyvrrpd/keepalived: {result['ratio']}x (target <= 3x)")
        else:
            print("keepalived not installed: no comparison (run scripts/setup)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
