"""Time to program 1,000 virtual servers x 10 real servers into an empty IPVS table: pyvrrpd vs keepalived.

    python bench/ipvs_apply.py [--services 1000] [--reals 10] [--runs 3]   # on the host, as root: boots the VM

Runs inside the throw-away IPVS VM of the kernel tests (tests/kernel/vm.py; QEMU TCG, so absolute
times are several times a real machine's; compare the two daemons, not the numbers with hardware).
For each daemon: an empty table, start, and the time until the kernel holds every destination
(pyvrrpd: until its LVS subsystem reports ready, which is after the last operation; keepalived
2.2.7 with -C: polled through /proc/net/ip_vs), then SIGTERM / stop and the time until the table is
empty again. pyvrrpd's config load is reported separately.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def config_text(services: int, reals: int) -> str:
    out = []
    for i in range(services):
        port = 1000 + i
        out.append(f"virtual_server 198.51.100.100 {port} {{\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n")
        for r in range(reals):
            out.append(f"    real_server 203.0.113.{r + 1} {port} {{\n        weight {r + 1}\n    }}\n")
        out.append("}\n")
    return "".join(out)


def dest_count() -> int:
    with open("/proc/net/ip_vs") as f:
        return sum(1 for line in f if line.startswith("  ->") and "RemoteAddress" not in line)


def cpu_seconds(out: Path) -> float:
    """user + system CPU of keepalived's two processes so far."""
    total = 0.0
    for name in ("ka.pid", "ka-check.pid"):
        try:
            pid = int((out / name).read_text())
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wait_count(target: int, timeout: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if dest_count() == target:
            return time.monotonic()
        time.sleep(0.05)
    return None


def run_pyvrrpd(conf: Path) -> dict:
    import anyio

    from pyvrrpd.config.load import load
    from pyvrrpd.lvs.reconciler import LvsSubsystem
    from pyvrrpd.observe import logs

    logs.configure("json", "warning")
    t0 = time.monotonic()
    loaded = load(str(conf), host_checks=False)
    t_load = time.monotonic() - t0
    lvs = LvsSubsystem(loaded.config)
    times = {}

    async def main():
        async with anyio.create_task_group() as tg:
            t1, c1 = time.monotonic(), time.process_time()
            await tg.start(lvs.run)
            times["program"] = time.monotonic() - t1
            times["cpu"] = time.process_time() - c1
            times["dests"] = dest_count()
            t2 = time.monotonic()
            tg.cancel_scope.cancel()
        times["stop"] = time.monotonic() - t2

    asyncio.run(main())
    return {"load_s": round(t_load, 3), "program_s": round(times["program"], 3), "program_cpu_s": round(times["cpu"], 3),
            "stop_s": round(times["stop"], 3),
            "dests": times["dests"], "operations": lvs.counters.operations, "errors": lvs.counters.errors,
            "left_after_stop": dest_count()}


def run_keepalived(conf: Path, out: Path, target: int) -> dict:
    log = open(out / "keepalived.log", "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(["keepalived", "-n", "-D", "-C", "-f", str(conf), "-p", str(out / "ka.pid"),
                             "-c", str(out / "ka-check.pid")], stdout=log, stderr=subprocess.STDOUT)
    done = wait_count(target, 600)
    result = {"program_s": None if done is None else round(done - t0, 3), "dests": dest_count(),
              "cpu_s (both processes, incl. config load)": round(cpu_seconds(out), 3)}
    t1 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(300)
    emptied = wait_count(0, 60)
    result["stop_s"] = None if emptied is None else round(emptied - t1, 3)
    log.close()
    return result


def median(runs: list[dict], key: str) -> float | None:
    values = sorted(r[key] for r in runs if r.get(key) is not None)
    return values[len(values) // 2] if values else None


def guest(out: Path, services: int, reals: int, runs: int) -> None:
    conf = out / "bench.conf"
    conf.write_text(config_text(services, reals))
    subprocess.run(["modprobe", "ip_vs"], check=True)
    result: dict = {"services": services, "reals_per_service": reals, "runs": {"pyvrrpd": [], "keepalived": []}}
    for _ in range(runs):  # alternate, so both see the same load on the machine
        subprocess.run(["ipvsadm", "-C"], check=True)
        result["runs"]["pyvrrpd"].append(run_pyvrrpd(conf))
        subprocess.run(["ipvsadm", "-C"], check=True)
        result["runs"]["keepalived"].append(run_keepalived(conf, out, services * reals))
        (out / "result.json").write_text(json.dumps(result, indent=2))
    p, k = result["runs"]["pyvrrpd"], result["runs"]["keepalived"]
    result["median"] = {
        "pyvrrpd_program_s": median(p, "program_s"), "pyvrrpd_program_cpu_s": median(p, "program_cpu_s"),
        "pyvrrpd_load_s": median(p, "load_s"),
        "pyvrrpd_stop_s": median(p, "stop_s"),
        "keepalived_program_s (from its start, incl. its config load)": median(k, "program_s"),
        "keepalived_cpu_s (both processes, incl. config load)": median(k, "cpu_s (both processes, incl. config load)"),
        "keepalived_stop_s": median(k, "stop_s"),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))


def host(services: int, reals: int, runs: int) -> int:
    from tests.kernel.vm import run_in_vm

    out = Path("/tmp") / f"pyvrrpd-bench-ipvs-{os.getpid()}"
    py = ROOT / ".venv" / "bin" / "python"
    script = (f"export PYTHONDONTWRITEBYTECODE=1\n{py} {Path(__file__).resolve()} --guest {out} "
              f"--services {services} --reals {reals} --runs {runs} > {out}/guest.log 2>&1\n")
    t0 = time.monotonic()
    proc = run_in_vm(script, out, timeout=1500)
    result_file = out / "result.json"
    if not result_file.exists():
        sys.stderr.write(proc.stdout[-3000:] + (out / "guest.log").read_text()[-3000:])
        return 1
    result = json.loads(result_file.read_text())
    result["vm_wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--reals", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--guest", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.guest:
        guest(a.guest, a.services, a.reals, a.runs)
    else:
        sys.exit(host(a.services, a.reals, a.runs))
