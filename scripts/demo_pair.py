"""Demo: the whole product, a pyvrrpd director pair with LVS in front of two web servers (scripts/demo runs it).

The lab (network namespaces, see conf/demo/keepalived.conf for the picture): a client c1, directors d1
and d2 running `pyvrrpd -f conf/demo/keepalived.conf -i d1|d2` (VRRP and LVS: an LVS-NAT service on
198.51.100.100:80, an LVS-DR service on 198.51.100.101:80), real servers r1 and r2 with a web server each.
A client in c1 asks both services for a page in turn, every 100 ms, throughout, and the demo tells what it saw:

  1. the election and the IPVS tables, `pyvrrpd status`;
  2. r2's web server crashes: the checkers take r2 out of both services; it comes back and is re-added;
  3. the master director dies (kill -9, links down): d2 takes over; the takeover as the client saw it;
  4. d1 comes back and preempts; 5. d1 stops for maintenance (SIGTERM: priority 0, d2 at once).

Needs IPVS: where the kernel has none (no /proc/net/ip_vs even after `modprobe ip_vs`), the same lab runs
in a throw-away VM with Debian's kernel (tests/kernel/vm.py), and the demo says so. Every namespace and
process is removed at the end, on errors and on Ctrl-C. The last line is a machine-readable summary,
`DEMO-SUMMARY {json}` (the test suite runs the demo and checks it).

    sudo .venv/bin/python scripts/demo_pair.py [--quick] [--native | --vm]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.net.lab import Lab, existing_namespaces, start_pyvrrpd, wait_for, wait_started  # noqa: E402

CONF = ROOT / "conf" / "demo" / "keepalived.conf"
NAT_VIP, DR_VIP, GATEWAY_VIP = "198.51.100.100", "198.51.100.101", "203.0.113.254"
VIPS = (NAT_VIP, DR_VIP, GATEWAY_VIP)
SERVICES = {"NAT": NAT_VIP, "DR": DR_VIP}
NODES = {"d1": 11, "d2": 12, "r1": 21, "r2": 22, "c1": 50}
REAL_SERVERS = {"r1": ("203.0.113.21", "198.51.100.21"), "r2": ("203.0.113.22", "198.51.100.22")}
CLONE_NEWNET = 0x40000000
VM_TIMEOUT = 300
SUMMARY = "DEMO-SUMMARY"
IN_VM = "PYVRRPD_DEMO_IN_VM"  # set by the host that runs the demo inside the VM (for the summary)
POLL = 0.25  # seconds between looks at the daemons' /status: each costs them CPU, scarce in the VM


def say(text: str = "") -> None:
    print(text, flush=True)


def indent(text: str, prefix: str = "     ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


# -- the client --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    t: float  # time.monotonic() when the request started
    service: str  # NAT or DR
    server: str | None  # the real server that answered (its page says its name), None: failed
    error: str | None = None


class Client(threading.Thread):
    """Asks both services for their page in turn, every `pause` seconds, from namespace `ns`.

    A thread of the demo's process moved into the client's network namespace (setns works per thread),
    so the client costs no interpreter start: under the VM's software emulation that is seconds."""

    def __init__(self, ns: str, *, timeout: float = 1.0, pause: float = 0.1) -> None:
        super().__init__(name="client", daemon=True)
        self.ns, self.timeout, self.pause = ns, timeout, pause
        self.answers: list[Answer] = []
        self.halt = threading.Event()
        self.failure: str | None = None

    def run(self) -> None:
        try:
            fd = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            while not self.halt.is_set():
                for service, vip in SERVICES.items():
                    self.answers.append(self.ask(service, vip))
                    self.halt.wait(self.pause)
        except Exception as exc:  # reported by the main thread
            self.failure = f"{type(exc).__name__}: {exc}"

    def ask(self, service: str, vip: str) -> Answer:
        t0 = time.monotonic()
        try:
            with socket.create_connection((vip, 80), timeout=self.timeout) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: demo\r\n\r\n")
                data = b""
                while len(data) < 65536 and (chunk := s.recv(4096)):
                    data += chunk
        except OSError as exc:
            return Answer(t0, service, None, "timeout" if isinstance(exc, TimeoutError) else
                          (exc.strerror or type(exc).__name__).lower())
        server, error = parse_answer(data)
        return Answer(t0, service, server, error)

    def since(self, t0: float, t1: float | None = None) -> list[Answer]:
        return [a for a in list(self.answers) if a.t >= t0 and (t1 is None or a.t < t1)]

    def first_success(self, t0: float, service: str | None = None) -> Answer | None:
        return next((a for a in self.since(t0) if a.server and service in (None, a.service)), None)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)


def parse_answer(data: bytes) -> tuple[str | None, str | None]:
    """(the real server's name, None) from a 200 answer whose page is that name, else (None, why not)."""
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or head.split(b" ", 2)[1:2] != [b"200"]:
        return None, f"bad answer {head[:40]!r}"
    name = body.decode(errors="replace").strip()
    return (name, None) if name.isalnum() and len(name) <= 8 else (None, f"bad page {body[:40]!r}")


def describe(answers: list[Answer]) -> str:
    """'NAT: r1 12, r2 11; DR: r1 12, r2 10, 2 failed (timeout)' for a stretch of answers."""
    parts = []
    for service in SERVICES:
        mine = [a for a in answers if a.service == service]
        by = {s: sum(1 for a in mine if a.server == s) for s in sorted({a.server for a in mine if a.server})}
        failed = [a for a in mine if not a.server]
        kinds = ", ".join(sorted({a.error for a in failed if a.error}))
        parts.append(f"{service}: " + (", ".join(f"{s} {n}" for s, n in by.items()) or "no answer") +
                     (f", {len(failed)} failed ({kinds})" if failed else ""))
    return "; ".join(parts) + ("" if any(not a.server for a in answers) else "; none failed")


# -- the lab -----------------------------------------------------------------------------------

class Demo:
    def __init__(self, lab: Lab, quick: bool) -> None:
        self.lab = lab
        self.hold = 1.0 if quick else 2.5
        self.peers: dict = {}
        self.web: dict[str, subprocess.Popen] = {}
        self.client: Client | None = None
        self.summary: dict = {}

    # -- building ------------------------------------------------------------------------------

    def build(self) -> None:
        """The lab's second LAN and the roles; few processes (each costs up to a second in the VM)."""
        lab = self.lab
        lab.add_segment("lan1", "203.0.113")
        lab.batch("c1", ["link set lan1 down"])  # the client is on the front LAN only
        for node in NODES:
            sysctls = [f"net.ipv4.conf.{i}.rp_filter=0" for i in ("all", "default", "lan0", "lan1")]
            if node in ("d1", "d2"):
                sysctls.append("net.ipv4.ip_forward=1")  # LVS-NAT's replies pass through the directors
            if node in REAL_SERVERS:  # LVS-DR: the VIP on lo, and never an ARP answer for it
                sysctls += ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"]
            lab.run(node, ["sysctl", "-qw", *sysctls])
        for rs in REAL_SERVERS:
            # LVS-NAT: replies from the back address go through the directors' gateway VIP (straight
            # over the front LAN they would bypass the NAT and the client would drop them).
            lab.batch(rs, [f"addr add {DR_VIP}/32 dev lo", "route add 203.0.113.0/24 dev lan1 table 100",
                           f"route add default via {GATEWAY_VIP} dev lan1 onlink table 100",
                           "rule add from 203.0.113.0/24 lookup 100 priority 100"])
            self.start_web(rs)

    def start_web(self, rs: str) -> None:
        root = self.lab.workdir / f"www-{rs}"
        root.mkdir(exist_ok=True)
        (root / "index.html").write_text(f"{rs}\n")
        self.web[rs] = self.lab.spawn(rs, ["busybox", "httpd", "-f", "-p", "80", "-h", str(root)],
                                      self.lab.workdir / f"httpd-{rs}.log")

    def start_director(self, node: str, wait: bool = True):
        sock = self.lab.workdir / f"{node}.sock"
        args = ["-i", node, "--control-socket", str(sock), "--dump-dir", str(self.lab.workdir),
                "--log-format", "json"]
        self.peers[node] = start_pyvrrpd(self.lab, node, CONF, args=args, wait=wait)
        return self.peers[node]

    # -- looking -------------------------------------------------------------------------------

    def snapshot(self, node: str) -> dict:
        """The daemon's /status (what `pyvrrpd status --json` prints); {} when it does not answer."""
        from pyvrrpd.observe.status import fetch

        peer = self.peers.get(node)
        if peer is None or peer.process.poll() is not None:
            return {}
        try:
            return json.loads(fetch(str(self.lab.workdir / f"{node}.sock"), timeout=5))
        except (OSError, ValueError):
            return {}

    def states(self, node: str) -> set[str]:
        return {i.get("state") for i in self.snapshot(node).get("vrrp", {}).get("instances", ())}

    def healthy(self, node: str) -> set[str]:
        """The real servers `node`'s checkers hold up, as 'NAT 203.0.113.21'."""
        kinds = {f"[{vip}]": kind for kind, vip in SERVICES.items()}
        return {f"{kinds.get(vs['name'].split(':')[0], vs['name'])} {rs['name'].split(']')[0].lstrip('[')}"
                for vs in self.snapshot(node).get("lvs", {}).get("virtual_servers", ())
                for rs in vs.get("real_servers", ()) if rs.get("up")}

    def table(self, node: str) -> set[str]:
        """The real servers in `node`'s kernel IPVS table, as 'NAT 203.0.113.21' (from `ipvsadm -Sn`)."""
        out = self.lab.run(node, ["ipvsadm", "-Sn"]).stdout
        kinds = {f"{vip}:80": kind for kind, vip in SERVICES.items()}
        rows = set()
        for line in out.splitlines():
            words = line.split()
            if words[:1] == ["-a"] and "-r" in words:
                rows.add(f"{kinds.get(words[2], words[2])} {words[words.index('-r') + 1].rsplit(':', 1)[0]}")
        return rows

    def show_table(self, node: str) -> None:
        say(f"   $ ipvsadm -Ln    (in {node})")
        say(indent(self.lab.run(node, ["ipvsadm", "-Ln"]).stdout, "     "))

    def show_status(self, node: str) -> None:
        """`pyvrrpd status` against `node`'s control socket (run in this process: no interpreter start)."""
        import contextlib
        import io

        from pyvrrpd.cli import main as pyvrrpd

        sock = self.lab.workdir / f"{node}.sock"
        say(f"   $ pyvrrpd status --control-socket {sock.name}    ({node})")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            pyvrrpd(["status", "--control-socket", str(sock)])
        say(indent(out.getvalue()))

    def wait_master(self, node: str, since: float, timeout: float = 30.0) -> float:
        """Seconds from `since` until both of `node`'s instances are MASTER and the other director's not."""
        other = "d2" if node == "d1" else "d1"
        wait_for(lambda: self.states(node) == {"MASTER"} and "MASTER" not in self.states(other),
                 timeout=timeout, interval=POLL, what=f"{node} to be MASTER",
                 detail=lambda: f"{node}: {self.states(node)}, {other}: {self.states(other)}")
        return time.monotonic() - since

    def wait_health(self, want: set[str], timeout: float = 30.0) -> None:
        """Until the checkers on both directors that run see exactly `want` up, and d1's kernel table agrees."""
        running = [n for n in ("d1", "d2") if n in self.peers and self.peers[n].process.poll() is None]
        wait_for(lambda: all(self.healthy(n) == want for n in running), timeout=timeout, interval=POLL,
                 what="the checkers' verdict", detail=lambda: f"{running[0]} sees {sorted(self.healthy(running[0]))}")
        wait_for(lambda: self.table(running[0]) == want, timeout=10, interval=0.2, what="the IPVS table",
                 detail=lambda: f"{running[0]}'s table {sorted(self.table(running[0]))}")

    def entered_master(self, node: str, since_wall: float) -> float | None:
        """Seconds from `since_wall` (time.time()) to the `(VI_FRONT) Entering MASTER STATE` line in the log."""
        for line in self.peers[node].log_text().splitlines():
            try:
                event = json.loads(line)
                if "(VI_FRONT) Entering MASTER STATE" not in str(event.get("event")):
                    continue
                t = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if t >= since_wall:
                return t - since_wall
        return None

    def wait_answers(self, since: float, hold: float, what: str, enough) -> None:
        """At least `hold` seconds, and until `enough(pairs)` holds for the (service, server) pairs the client
        got answers from since `since` (bounded): the VM can be slow enough for a fixed pause to see none."""
        wait_for(lambda: time.monotonic() - since >= hold and
                 enough({(a.service, a.server) for a in self.client.since(since) if a.server}),
                 timeout=60, interval=POLL, what=what, detail=lambda: describe(self.client.since(since)))

    def recovered(self, since: float, timeout: float = 20.0) -> float:
        """Seconds from `since` until the client got an answer from both services again."""
        def both() -> float | None:
            firsts = [self.client.first_success(since, s) for s in SERVICES]
            return max(a.t for a in firsts) if all(firsts) else None

        return wait_for(both, timeout=timeout, interval=POLL, what="the client to get answers again") - since

    # -- the story -----------------------------------------------------------------------------

    def run(self) -> None:
        lab, s = self.lab, self.summary
        t0 = time.monotonic()
        say(f"lab: namespaces {lab.prefix}-*: client c1 {lab.ipv4('c1')}, directors d1 {lab.ipv4('d1')} and "
            f"d2 {lab.ipv4('d2')}, real servers r1 and r2 (web servers) on 198.51.100.0/24 and 203.0.113.0/24")
        self.build()
        say(f"   built in {time.monotonic() - t0:.1f} s; both directors run: "
            f"pyvrrpd -f {CONF.relative_to(ROOT)} -i d1|d2   (VRRP and LVS)")
        t0 = time.monotonic()
        for node in ("d1", "d2"):
            self.start_director(node, wait=False)
        for node in ("d1", "d2"):
            wait_started(self.peers[node], timeout=240)
        say(f"   both pyvrrpd running after {time.monotonic() - t0:.1f} s (interpreter start and imports)")
        want = {f"{kind} {addrs[i]}" for addrs in REAL_SERVERS.values() for i, kind in enumerate(SERVICES)}
        self.wait_master("d1", t0, timeout=60)
        self.wait_health(want)
        s["startup_s"] = round(time.monotonic() - t0, 2)
        say(f"\n1. ready {s['startup_s']:.1f} s after the start: d1 (priority 150) is MASTER "
            f"with {', '.join(VIPS)}; d2 BACKUP. Both checked r1 and r2 and programmed IPVS:")
        self.show_table("d1")
        self.show_status("d1")
        self.client = Client(lab.ns("c1"))
        self.client.start()
        t = time.monotonic()
        everyone = {(kind, rs) for kind in SERVICES for rs in REAL_SERVERS}
        self.wait_answers(t, self.hold, "answers from r1 and r2 through both services", everyone.issubset)
        steady = self.client.since(t)
        say(f"   client c1, a request every 100 ms, to each service in turn, for {time.monotonic() - t:.1f} s: "
            f"{describe(steady)}")
        s["steady_failed"] = sum(1 for a in steady if not a.server)
        s["steady_both_rs"] = {a.server for a in steady if a.server} == set(REAL_SERVERS)

        say("\n2. r2's web server crashes (kill -9):")
        t = time.monotonic()
        self.web["r2"].kill()
        self.web["r2"].wait(timeout=10)
        self.wait_health({row for row in want if row.split()[1] not in REAL_SERVERS["r2"]})
        s["rs_down_removed_s"] = round(time.monotonic() - t, 2)
        removed_at = time.monotonic()
        say(f"   the checkers took r2 out of both services after {s['rs_down_removed_s']:.2f} s "
            "(HTTP_GET / TCP_CHECK every second, retry 0):")
        self.show_table("d1")
        time.sleep(self.hold)
        during, after = self.client.since(t), self.client.since(removed_at)
        say(f"   client since the crash: {describe(during)}")
        say(f"   client since r2 left the table: {describe(after)}")
        s["rs_down_client_ok"] = sum(1 for a in during if a.server)
        s["rs_down_client_failed"] = sum(1 for a in during if not a.server)
        s["rs_down_only_r1_after"] = bool(after) and all(a.server == "r1" for a in after if a.server)
        t = time.monotonic()
        self.start_web("r2")
        self.wait_health(want)
        s["rs_up_readded_s"] = round(time.monotonic() - t, 2)
        back = time.monotonic()
        self.wait_answers(back, self.hold / 2, "an answer from r2", lambda pairs: any(rs == "r2" for _, rs in pairs))
        say(f"   r2's web server restarted: back in both services after {s['rs_up_readded_s']:.2f} s; "
            f"client since: {describe(self.client.since(back))}")

        say("\n3. the master director d1 dies (its links go down and pyvrrpd gets kill -9: a machine gone):")
        # The links first: the kernel's IPVS in d1 would go on forwarding without the daemon. Times run
        # from before the links went down; answers count only for requests started once they were down.
        t, wall = time.monotonic(), time.time()
        lab.batch("d1", ["link set lan0 down", "link set lan1 down"])
        down = time.monotonic()
        self.peers["d1"].process.kill()
        self.peers["d1"].process.wait(timeout=10)
        self.wait_master("d2", t)
        takeover = self.entered_master("d2", wall)
        recovered = self.recovered(down) + (down - t)
        self.wait_answers(t + recovered, self.hold, "answers through both services",
                          lambda pairs: {kind for kind, _ in pairs} == set(SERVICES))
        window = self.client.since(t, t + recovered)
        s["takeover_s"] = round(takeover if takeover is not None else time.monotonic() - t, 3)
        s["takeover_client_failed"] = sum(1 for a in window if not a.server)
        s["takeover_client_recovered_s"] = round(recovered, 3)
        s["after_takeover_ok"] = sum(1 for a in self.client.since(t + recovered) if a.server)
        say(f"   d2 entered MASTER {s['takeover_s']:.3f} s after d1 went (Master_Down_Interval, 3 x 0.2 s + "
            f"Skew_Time = 0.722 s, runs from d1's last advert). The client's view: "
            f"{s['takeover_client_failed']} requests failed, answers again after {recovered:.2f} s; "
            f"since then: {describe(self.client.since(t + recovered))}")
        self.show_status("d2")

        say("\n4. d1 comes back (links up, without the VIPs the crash left behind; pyvrrpd started again):")
        lab.batch("d1", [f"addr del {vip}/32 dev {'lan1' if vip == GATEWAY_VIP else 'lan0'}" for vip in VIPS] +
                  ["link set lan0 up", "link set lan1 up"])
        t, wall = time.monotonic(), time.time()
        self.start_director("d1", wait=False)
        self.client.pause = 1.0  # while the interpreter starts: in the VM the CPUs are too few for both
        try:
            wait_started(self.peers["d1"], timeout=240)
        finally:
            self.client.pause = 0.1
        self.wait_master("d1", t, timeout=60)
        preempt = self.entered_master("d1", wall)
        time.sleep(self.hold / 2)
        window = self.client.since(t)
        s["restore_client_failed"] = sum(1 for a in window if not a.server)
        s["restored_master"] = "d1" if self.states("d1") == {"MASTER"} and self.states("d2") == {"BACKUP"} else "?"
        s["restored_table"] = self.table("d1") == want
        say(f"   d1 (priority 150) is MASTER again {preempt or float('nan'):.2f} s after `pyvrrpd` was started "
            f"(interpreter start included), d2 BACKUP; d1 adopted the IPVS table it had left. "
            f"Client: {describe(window)}")

        say("\n5. d1 stops for maintenance (SIGTERM: priority 0 advert, its VIPs and IPVS entries removed):")
        t, wall = time.monotonic(), time.time()
        self.peers["d1"].stop()
        self.wait_master("d2", t)
        handover = self.entered_master("d2", wall)
        self.recovered(t)
        time.sleep(self.hold / 2)
        window = self.client.since(t)
        s["handover_s"] = round(handover if handover is not None else time.monotonic() - t, 3)
        s["handover_client_failed"] = sum(1 for a in window if not a.server)
        s["d1_exit"] = self.peers["d1"].process.returncode
        s["d1_table_after_stop"] = sorted(self.table("d1"))
        say(f"   d1 exited {s['d1_exit']}, its IPVS table {s['d1_table_after_stop'] or 'empty'}; d2 took over "
            f"{s['handover_s']:.3f} s after the signal (Skew_Time 0.122 s). Client: {describe(window)}")
        self.client.stop()
        self.peers["d2"].stop()
        s["d2_exit"] = self.peers["d2"].process.returncode

    def outcome(self) -> bool:
        s = self.summary
        return bool(s.get("steady_both_rs") and s.get("rs_down_removed_s") is not None
                    and s.get("rs_down_client_ok", 0) > 0 and s.get("rs_down_only_r1_after")
                    and s.get("rs_up_readded_s") is not None and s.get("takeover_s") is not None
                    and s.get("after_takeover_ok", 0) > 0 and s.get("restored_master") == "d1"
                    and s.get("restored_table")
                    and s.get("d1_exit") == 0 and s.get("d2_exit") == 0 and not s.get("d1_table_after_stop")
                    and s.get("cleanup"))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_here(quick: bool) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # a timeout or kill tears down like Ctrl-C
    summary: dict = {"ipvs": "vm" if os.environ.get(IN_VM) else "native"}
    demo = None
    status = 1
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyvrrpd-demo-") as tmp:
        lab = Lab(NODES, workdir=Path(tmp))
        try:
            with lab:
                demo = Demo(lab, quick)
                demo.summary = summary
                demo.run()
        except KeyboardInterrupt:
            say("\ninterrupted: removing the lab")
            summary["error"] = "interrupted"
        except Exception as exc:
            say(f"\ndemo failed: {type(exc).__name__}: {exc}")
            summary["error"] = f"{type(exc).__name__}: {exc}"
            for node, peer in (demo.peers.items() if demo else ()):
                say(f"--- last lines of pyvrrpd's log in {node}:\n{indent(peer.log_text()[-3000:], '   ')}")
        finally:
            if demo and demo.client:
                demo.client.stop()
                if demo.client.failure:
                    summary["client_error"] = demo.client.failure
        leftovers = sorted(ns for ns in existing_namespaces() if ns.startswith(f"{lab.prefix}-"))
        running = [p.pid for p in (demo.web.values() if demo else ()) if p.poll() is None]
        running += [p.process.pid for p in (demo.peers.values() if demo else ()) if p.process.poll() is None]
        summary["cleanup"] = not leftovers and not running
        say(f"\ndone in {time.monotonic() - t0:.1f} s: " + ("every namespace and process removed." if summary["cleanup"]
            else f"LEFT BEHIND: namespaces {leftovers}, processes {running}"))
        if demo and "error" not in summary and demo.outcome():
            status = 0
    summary["ok"] = status == 0
    say(f"{SUMMARY} {json.dumps(summary, sort_keys=True)}")
    return status


def ipvs_available() -> bool:
    if not Path("/proc/net/ip_vs").exists():
        subprocess.run(["modprobe", "ip_vs"], capture_output=True, timeout=30)
    return Path("/proc/net/ip_vs").exists()


def run_in_vm(quick: bool) -> int:
    from tests.kernel.vm import VmError, run_in_vm as boot

    say("demo: this kernel has no IPVS (no /proc/net/ip_vs, and `modprobe ip_vs` did not load it), so the lab "
        "runs inside a throw-away VM with Debian's kernel (QEMU without KVM: about 40 s to boot, and every "
        "program starts slower than here); the host's files and .venv are visible inside.")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyvrrpd-demo-vm-") as tmp:
        out = Path(tmp)
        script = (f"modprobe ip_vs\necho \"demo: VM booted after $(cut -d' ' -f1 /proc/uptime) s; "
                  f"IPVS here: $(test -e /proc/net/ip_vs && echo yes || echo no)\"\n"
                  f"{IN_VM}=1 {ROOT}/scripts/demo --native{' --quick' if quick else ''}\necho $? > {out}/rc\n")
        try:
            proc = boot(script, out, timeout=VM_TIMEOUT, echo=sys.stdout)
        except VmError as exc:
            say(f"demo: cannot start the VM: {exc}")
            return 1
        except KeyboardInterrupt:  # qemu got the Ctrl-C too: the VM, and the lab in it, are gone
            say("\ninterrupted: the VM and everything in it are gone")
            return 130
        rc = (out / "rc").read_text().strip() if (out / "rc").exists() else ""
    say(f"demo: the VM run took {time.monotonic() - t0:.1f} s in all (boot included)")
    if not rc.isdigit():
        say(f"demo: the VM did not finish the demo (qemu exited {proc.returncode})")
        return 1
    return int(rc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="pyvrrpd's demo: a director pair with VRRP and LVS in namespaces.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--native", action="store_true", help="run here; fail if this kernel has no IPVS")
    where.add_argument("--vm", action="store_true", help="run inside the VM even if this kernel has IPVS")
    p.add_argument("--quick", action="store_true", help="shorter pauses between the steps")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        say("demo: needs root (network namespaces)")
        return 1
    if args.vm or (not args.native and not ipvs_available()):
        return run_in_vm(args.quick)
    if not ipvs_available():
        say("demo: --native, but this kernel has no IPVS (no /proc/net/ip_vs after `modprobe ip_vs`)")
        return 1
    return run_here(args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
