"""Benchmark: reload (SIGHUP) of 1,000 virtual servers x 10 real servers with one real server changed.

Runs on the host, no kernel needed: the daemon's LVS subsystem (pyvrrpd.daemon.lvs.Lvs, the checkers
and the IPVS reconciler) programs the reconciler's in-memory recording sink (FakeIpvs: the kernel's
behaviour, every operation logged) instead of netlink. It loads the config, starts the subsystem (the
table is programmed), then for each run writes the config with the weight of one real server changed
(a different one each run; the earlier changes stay), loads it as the daemon's reload does
and hands it to ``reconfigure``. Measured per run:

* **apply**: from ``reconfigure()`` until the reconciler's pass after it has been carried out (the
  operations are in the sink), i.e. what a reload costs beyond parsing the file;
* **load**: parsing and building the new config (the daemon does it in a worker thread before
  asking the subsystems);
* **apply CPU**: the process's CPU time over the same span (on a busy machine the wall time also holds
  the time spent waiting for a CPU);
* **operations**: what the sink received for the reload (netlink messages the kernel would get).

Target (issue 8): one operation (an in-place edit of the changed destination) and apply under 0.5 s.

    .venv/bin/python bench/reload.py [--services 1000] [--reals 10] [--runs 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import Check, median, table, verdict  # noqa: E402

TARGET_OPS = 1
TARGET_SECONDS = 0.5


def config_text(services: int, reals: int, weights: dict[int, int] | None = None) -> str:
    """``services`` NAT virtual servers of ``reals`` real servers each; real server number n (counted over
    the whole file) gets ``weights[n]`` instead of its own weight where given."""
    weights = weights or {}
    out = []
    n = 0
    for i in range(services):
        port = 1000 + i
        out.append(f"virtual_server 198.51.100.100 {port} {{\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n")
        for r in range(reals):
            w = weights.get(n, r + 1)
            out.append(f"    real_server 203.0.113.{r + 1} {port} {{\n        weight {w}\n    }}\n")
            n += 1
        out.append("}\n")
    return "".join(out)


def run(services: int, reals: int, runs: int) -> list[dict]:
    import anyio

    from pyvrrpd.config.load import load
    from pyvrrpd.daemon.lvs import Lvs
    from pyvrrpd.lvs.ipvs import FakeIpvs
    from pyvrrpd.observe import logs

    logs.configure("json", "warning")
    log = logs.get("bench")
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pyvrrpd-bench-reload-") as tmp:
        conf = Path(tmp) / "keepalived.conf"
        conf.write_text(config_text(services, reals))
        loaded = load(str(conf), host_checks=False)
        assert loaded.ok and loaded.config is not None
        sink = FakeIpvs()
        lvs = Lvs(loaded.config, log, port=sink)
        total = services * reals

        async def main() -> None:
            async with anyio.create_task_group() as tg:
                await tg.start(lvs.run)
                assert len(sink.dests) == total, len(sink.dests)
                weights: dict[int, int] = {}  # each run changes one more real server; the earlier ones stay
                for k in range(runs):
                    changed = (k * 7919) % total
                    weights[changed] = weights.get(changed, 0) + 100
                    conf.write_text(config_text(services, reals, weights))
                    t0 = time.perf_counter()
                    new = load(str(conf), host_checks=False)
                    t_load = time.perf_counter() - t0
                    assert new.ok and new.config is not None
                    before_ops, before_passes, before_dumps = len(sink.log), lvs.ipvs.counters.passes, sink.dumps
                    t1, c1 = time.perf_counter(), time.process_time()
                    why = await lvs.reconfigure(new.config)
                    assert why is None, why
                    with anyio.fail_after(60):
                        while lvs.ipvs.counters.passes == before_passes:
                            await anyio.sleep(0)
                    t_apply, c_apply = time.perf_counter() - t1, time.process_time() - c1
                    ops = sink.log[before_ops:]
                    results.append({"run": k + 1, "changed": changed, "load_s": round(t_load, 4),
                                    "apply_s": round(t_apply, 4), "apply_cpu_s": round(c_apply, 4),
                                    "operations": len(ops),
                                    "kinds": sorted({type(op).__name__ for op in ops}),
                                    "dumps": sink.dumps - before_dumps, "dests": len(sink.dests)})
                tg.cancel_scope.cancel()

        anyio.run(main)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--reals", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    results = run(args.services, args.reals, args.runs)
    table(["run", "changed real server", "load s", "apply s", "apply CPU s", "operations", "kinds", "dumps"],
          [(r["run"], r["changed"], r["load_s"], r["apply_s"], r["apply_cpu_s"], r["operations"],
            ", ".join(r["kinds"]), r["dumps"])
           for r in results])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    worst_ops = max(r["operations"] for r in results)
    kinds = sorted({k for r in results for k in r["kinds"]})
    apply_median, apply_max = median(r["apply_s"] for r in results), max(r["apply_s"] for r in results)
    return verdict([
        Check("netlink operations per reload", worst_ops == TARGET_OPS and kinds == ["EditDest"],
              f"at most {worst_ops} ({', '.join(kinds) or 'none'}); target exactly {TARGET_OPS} EditDest"),
        Check("time to apply", apply_max < TARGET_SECONDS,
              f"median {apply_median:.3f} s, max {apply_max:.3f} s; target < {TARGET_SECONDS} s every run"),
    ])


if __name__ == "__main__":
    sys.exit(main())
