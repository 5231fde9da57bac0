"""Time to program 1,000 virtual servers x 10 real servers into an empty IPVS table: pyvrrpd vs keepalived.

    python bench/ipvs_apply.py [--services 1000] [--reals 10] [--runs 3]   # on the host, as root: boots the VM

Runs inside the throw-away IPVS VM of the kernel tests (tests/kernel/vm.py; QEMU TCG, so absolute
times are several times a real machine's; compare the two daemons, not the numbers with hardware).

Both daemons are measured the same way: each is spawned as the real daemon on the same file
(``pyvrrpd -C`` and ``keepalived -C``, checkers only, no checker configured), into an empty table, and
one poller watches the kernel for both (every 20 ms; queries that cost the same whatever the table
holds, so the poller does not slow the daemon it watches down more as the table grows):

* ``start``: spawn -> the first service is in the kernel (interpreter, imports, config load; for
  pyvrrpd also computing the whole desired table, which it does before its first write);
* ``program``: the first service is in the kernel -> the last virtual server has all its real
  servers (both daemons add them last). This is the figure the verdict rates ("the time to program
  the table");
* ``total``: spawn -> the table is complete (printed with its ratio, not rated: see bench/README.md);
* ``stop``: SIGTERM -> no service left. CPU: user + system of the daemon's processes (keepalived:
  both) when the table is complete, as the guest sees it (under TCG the guest's CPU clock also runs
  while the host does not run the VM, so it is about as noisy as the wall time).

Rounds in ABBA order. The whole table is counted once after each run (not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from ipaddress import ip_address
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import Check, abba, spread, table, verdict, versus  # noqa: E402

VIP, FIRST_PORT = "198.51.100.100", 1000
POLL = 0.02


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


def any_service() -> bool:
    """Whether the table holds a service: the first 512 bytes of /proc/net/ip_vs (the kernel formats only
    what is read, so this costs the same with 1 or 11,000 entries)."""
    fd = os.open("/proc/net/ip_vs", os.O_RDONLY)
    try:
        head = os.read(fd, 512).decode()
    finally:
        os.close(fd)
    return any(line[:3] in ("TCP", "UDP", "FWM", "SCT") for line in head.splitlines())


class Ipvs:
    """Blocking generic-netlink queries for the poller, with pyvrrpd's codec."""

    def __init__(self) -> None:
        from pyvrrpd.lvs import wire as w

        self.w = w
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 16)
        self.sock.bind((0, 0))
        self.seq = 0
        (payload,) = self.ask(w.family_request(self.next_seq()))
        self.family = w.number(w.genl_attrs(payload), w.CTRL_ATTR_FAMILY_ID, "=H")

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def ask(self, data: bytes) -> list:
        """The payloads answering one request (raises OSError with the kernel's errno)."""
        w = self.w
        self.sock.send(data)
        out = []
        while True:
            for kind, _flags, seq, payload in w.messages(self.sock.recv(1 << 16)):
                if seq != self.seq:
                    continue
                if kind == w.NLMSG_ERROR:
                    code = w.error_code(payload)
                    if code:
                        raise OSError(code, os.strerror(code))
                    return out
                if kind == w.NLMSG_DONE:
                    return out
                out.append(payload)

    def dests_of(self, port: int) -> int:
        """How many destinations the TCP service VIP:port has (0: no such service)."""
        from pyvrrpd.lvs.table import ServiceKey

        w = self.w
        key = ServiceKey(af=4, protocol=6, addr=ip_address(VIP), port=port)
        try:
            return len(self.ask(w.message(self.family, w.CMD_GET_DEST, w.NLM_F_REQUEST | w.NLM_F_DUMP,
                                          self.next_seq(), w.nested_service_key(key))))
        except OSError:
            return 0


def proc_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def until(cond, t0: float, timeout: float) -> float | None:
    """Seconds from t0 until cond() holds, polled every POLL s; None after timeout."""
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(POLL)
    return None


def command(name: str, conf: Path, out: Path) -> list[str]:
    if name != "keepalived":  # pyvrrpd, or the baseline (the same venv; the tree is its working directory)
        return [str(ROOT / ".venv" / "bin" / "python"), "-m", "pyvrrpd", "-C", "-n", "-f", str(conf),
                "-p", str(out / "py.pid"), "--control-socket", "none", "--log-format", "json", "--log-level", "warning"]
    return ["keepalived", "-n", "-D", "-C", "-f", str(conf), "-p", str(out / "ka.pid"), "-c", str(out / "ka-check.pid")]


def run_daemon(name: str, conf: Path, out: Path, services: int, reals: int, ipvs: Ipvs, tree: Path) -> dict:
    last_port = FIRST_PORT + services - 1
    log = open(out / f"{name}.log", "a")
    t0 = time.monotonic()
    proc = subprocess.Popen(command(name, conf, out), stdout=log, stderr=subprocess.STDOUT, cwd=tree)

    def pids() -> list[int]:  # keepalived: the parent and its checker child, from their pid files
        if name != "keepalived":
            return [proc.pid]
        found = []
        for file in ("ka.pid", "ka-check.pid"):
            try:
                found.append(int((out / file).read_text()))
            except (OSError, ValueError):
                pass
        return found

    first = until(any_service, t0, 600)
    done = until(lambda: ipvs.dests_of(last_port) == reals, t0, 900)
    cpu = proc_cpu(pids()) if done is not None else None
    result = {"start_s": first, "program_s": None if first is None or done is None else done - first,
              "total_s": done, "cpu_s": cpu, "dests": dest_count()}
    t1 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    result["stop_s"] = until(lambda: not any_service(), t1, 120)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    result["left_after_stop"] = dest_count()
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


def guest(out: Path, services: int, reals: int, runs: int, baseline: Path | None) -> None:
    conf = out / "bench.conf"
    conf.write_text(config_text(services, reals))
    subprocess.run(["modprobe", "ip_vs"], check=True)
    ipvs = Ipvs()
    trees = {"pyvrrpd": ROOT, "keepalived": ROOT} | ({"baseline": baseline} if baseline else {})
    result: dict = {"services": services, "reals_per_service": reals, "runs": {name: [] for name in trees}}
    for _, name in abba(list(trees), runs):
        subprocess.run(["ipvsadm", "-C"], check=True)
        result["runs"][name].append(run_daemon(name, conf, out, services, reals, ipvs, trees[name]))
        (out / "result.json").write_text(json.dumps(result, indent=2))
    subprocess.run(["ipvsadm", "-C"], check=True)
    (out / "result.json").write_text(json.dumps(result, indent=2))


def host(services: int, reals: int, runs: int, json_file: Path | None, baseline: Path | None) -> int:
    from tests.kernel.vm import run_in_vm

    out = Path("/tmp") / f"pyvrrpd-bench-ipvs-{os.getpid()}"
    py = ROOT / ".venv" / "bin" / "python"
    script = (f"export PYTHONDONTWRITEBYTECODE=1\n{py} {Path(__file__).resolve()} --guest {out} "
              f"--services {services} --reals {reals} --runs {runs}"
              + (f" --baseline {baseline.resolve()}" if baseline else "") + f" > {out}/guest.log 2>&1\n")
    if baseline:  # the guest sees it read-only: its bytecode is written here, as run_in_vm does for ours
        subprocess.run([str(py), "-m", "compileall", "-q", "-j", "0", str(baseline / "pyvrrpd")],
                       stdout=subprocess.DEVNULL, check=True)
    load_before = [round(x, 2) for x in os.getloadavg()]
    t0 = time.monotonic()
    proc = run_in_vm(script, out, timeout=1500)
    result_file = out / "result.json"
    if not result_file.exists():
        sys.stderr.write(proc.stdout[-3000:] + (out / "guest.log").read_text()[-3000:])
        return 1
    result = json.loads(result_file.read_text())
    result["vm_wall_s"] = round(time.monotonic() - t0, 1)
    result["host_load_average"] = {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]}
    if json_file is not None:
        json_file.write_text(json.dumps(result, indent=2))
    runs = result["runs"]
    names = tuple(runs)
    print(f"{services} virtual servers x {reals} real servers into an empty table, in the VM; "
          f"{len(runs['pyvrrpd'])} rounds (ABBA); host load average {load_before[0]:.2f} before, "
          f"{result['host_load_average']['after'][0]:.2f} after; s: median / min / max")
    table(["daemon", "start (spawn -> first service)", "program (first service -> complete)",
           "total (spawn -> complete)", "CPU s (user + system)", "stop (SIGTERM -> empty)", "destinations"],
          [[n, spread(r["start_s"] for r in runs[n]), spread(r["program_s"] for r in runs[n]),
            spread(r["total_s"] for r in runs[n]), spread(r["cpu_s"] for r in runs[n]),
            spread(r["stop_s"] for r in runs[n]), "/".join(str(r["dests"]) for r in runs[n])] for n in names])
    med = {n: {k: spread(r[k] for r in runs[n]) for k in ("program_s", "total_s")} for n in names}

    def m(n: str, k: str) -> float | None:
        return med[n][k].median if med[n][k] else None

    info = [versus("total, spawn -> complete (not rated)", m("pyvrrpd", "total_s"), m("keepalived", "total_s"))]
    if "baseline" in runs:
        info += [versus(f"{what}, pyvrrpd against the baseline tree (not rated)", m("pyvrrpd", key), m("baseline", key))
                 for what, key in (("program", "program_s"), ("total", "total_s"))]
    print()
    for c in info:
        detail = c.detail.split("; target")[0]
        print(f"info    {c.what}: {detail.replace('keepalived', 'baseline') if 'baseline' in c.what else detail}")
    programmed = [r["dests"] == services * reals for n in names for r in runs[n]]
    emptied = [r["left_after_stop"] == 0 for n in names if n != "keepalived" for r in runs[n]]
    checks = [versus("program: first service -> last real server in the kernel", m("pyvrrpd", "program_s"),
                     m("keepalived", "program_s")),
              Check("every run programmed the whole table", all(programmed),
                    f"{sum(programmed)} of {len(programmed)} runs"),
              Check("pyvrrpd emptied it on stop", all(emptied), f"{sum(emptied)} of {len(emptied)} runs")]
    return verdict(checks)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--reals", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write every run's figures to this file")
    ap.add_argument("--baseline", type=Path, metavar="TREE",
                    help="also run the pyvrrpd of this source tree (e.g. `git worktree add TREE main`; the same "
                         "venv), as a third daemon in the same rounds: a before/after in one run")
    ap.add_argument("--guest", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.guest:
        guest(a.guest, a.services, a.reals, a.runs, a.baseline)
    else:
        sys.exit(host(a.services, a.reals, a.runs, a.json, a.baseline))
