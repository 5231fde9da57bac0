"""Benchmark: `pyvrrpd --check-config` against `keepalived -t` on one large generated config.

The config has 1,000 virtual servers x 10 real servers with TCP_CHECK (about 97,000 lines). Both
programs run in the same way, in a fresh network namespace holding only `lo` (`unshare -n`), several
times each in ABBA order (pyvrrpd, keepalived, keepalived, pyvrrpd, ...) so neither always goes first;
the median wall time is reported. pyvrrpd runs byte-compiled, as an installed package does (the bench
compiles the tree first).

Verdict (exit 0 only if all hold): every run of both programs exits 0 (a check that fails or crashes
is no result), and pyvrrpd's median wall time <= 3x keepalived's.

    sudo .venv/bin/python bench/check_config.py [--runs 7] [--vs 1000] [--rs 10] [--json]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from harness import Check, abba, median, spread, table, verdict, versus

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


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall time, CPU time (user + system, the program and its children) and exit status of one run.
    On a busy host the wall time is mostly the wait for a CPU; the CPU time hardly moves.

    A blocking wait: subprocess.run(timeout=...) polls with sleeps that grow to 50 ms,
    which rounds every time up to the next poll (0.0635, 0.1135, 0.1635, ... s). A timer
    still kills a run that hangs.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
    finally:
        watchdog.cancel()
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="runs of each program (1-50)")
    ap.add_argument("--vs", type=int, default=1000)
    ap.add_argument("--rs", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()
    if not 1 <= args.runs <= 50:
        ap.error("--runs must be within 1..50")

    # pip and Debian packages byte-compile at install; a development tree run with
    # PYTHONDONTWRITEBYTECODE=1 would be compiled at every start (about 50 ms), which
    # measures CPython's compiler rather than pyvrrpd.
    compileall.compile_dir(os.path.join(ROOT, "pyvrrpd"), quiet=1)
    unshare = ["unshare", "-n"] if os.geteuid() == 0 and shutil.which("unshare") else []
    keepalived = shutil.which("keepalived")
    pyvrrpd = [os.path.join(ROOT, ".venv", "bin", "python"), "-m", "pyvrrpd"]
    if not os.path.exists(pyvrrpd[0]):
        pyvrrpd = [sys.executable, "-m", "pyvrrpd"]

    times: dict[str, list[float]] = {"pyvrrpd": [], "keepalived": []}
    cpu: dict[str, list[float]] = {"pyvrrpd": [], "keepalived": []}
    exits: dict[str, list[int]] = {"pyvrrpd": [], "keepalived": []}
    with tempfile.TemporaryDirectory(prefix="pyvrrpd-bench-") as tmp:
        conf = os.path.join(tmp, "keepalived.conf")
        text = generate(args.vs, args.rs)
        with open(conf, "w") as f:
            f.write(text)
        lines = text.count("\n")
        argv = {"pyvrrpd": pyvrrpd + ["--check-config", "-f", conf], "keepalived": [keepalived, "-t", "-f", conf]}
        for _, name in abba(["pyvrrpd", "keepalived"] if keepalived else ["pyvrrpd"], args.runs):
            t, c, rc = timed(unshare + argv[name])
            times[name].append(t)
            cpu[name].append(c)
            exits[name].append(rc)

    ours, theirs = median(times["pyvrrpd"]), median(times["keepalived"])
    checks = [Check(f"{name} exits 0", bool(exits[name]) and not any(exits[name]),
                    f"exit statuses {exits[name]}" if exits[name] else f"{name} not installed (run scripts/setup)")
              for name in ("pyvrrpd", "keepalived")]
    checks.append(versus("wall time", ours, theirs, factor=3.0))
    cpu_ours, cpu_theirs = median(cpu["pyvrrpd"]), median(cpu["keepalived"])
    if cpu_ours and cpu_theirs:
        print(f"# CPU time (user+system), median: pyvrrpd {cpu_ours:.3f} s, keepalived {cpu_theirs:.3f} s, "
              f"ratio {cpu_ours / cpu_theirs:.2f}x (issue 11's target: <= 1.0x; not rated)", file=sys.stderr)
    result = {
        "lines": lines, "virtual_servers": args.vs, "real_servers": args.vs * args.rs, "runs": args.runs,
        "order": "ABBA", "times_s": times, "cpu_s": cpu, "exits": exits,
        "pyvrrpd_cpu_median_s": median(cpu["pyvrrpd"]), "keepalived_cpu_median_s": median(cpu["keepalived"]),
        "pyvrrpd_median_s": ours, "keepalived_median_s": theirs,
        "ratio": round(ours / theirs, 2) if ours and theirs else None,
        "checks": [c.__dict__ for c in checks], "ok": all(c.ok for c in checks),
    }
    if args.json:
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    print(f"config: {lines} lines, {args.vs} virtual servers x {args.rs} real servers (TCP_CHECK); "
          f"{args.runs} runs each, ABBA order")
    table(("program", "wall time s: median / min / max", "CPU s: median / min / max", "exit statuses"),
          [(label, spread(times[name]), spread(cpu[name]), " ".join(map(str, exits[name])))
           for name, label in (("pyvrrpd", "pyvrrpd --check-config"), ("keepalived", "keepalived -t"))])
    return verdict(checks)


if __name__ == "__main__":
    raise SystemExit(main())
