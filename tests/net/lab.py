"""Network-namespace lab for tests, the demo and benchmarks (see reference/test-environment.md §3).

    with Lab({"d1": 11, "d2": 12}, workdir=tmp_path) as lab:
        lab.run("d1", ["ip", "-br", "addr"])
        proc = lab.spawn("d2", ["sleep", "5"], tmp_path / "sleep.log")

Topology: namespace `<prefix>-lan` holds bridge br0; every node namespace `<prefix>-<node>` has an
interface `lan0` (a veth created inside the lan namespace, its peer moved straight into the node) with
198.51.100.H/24 and 2001:db8:1::H/64 (nodad), H being the node's host number. Nothing is ever created in
the root namespace. The prefix is unique per run (pv<pid>), the lab refuses to start if any of its
namespace names already exists, and tear-down — also on errors and KeyboardInterrupt — kills only the
processes it started or that live in its namespaces (by PID), then deletes its namespaces, nodes first.

The lab may run `ip`; the daemon never does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SUBNET4 = "198.51.100"
SUBNET6 = "2001:db8:1:"
IFNAME = "lan0"
NODE_SYSCTLS = (
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.accept_ra=0",
    "net.ipv6.conf.default.accept_ra=0",
    "net.ipv4.conf.all.arp_ignore=0",
    "net.ipv6.conf.all.keep_addr_on_down=1",
)
# Daemons get a private mount namespace: the console bound to /dev/null (no /dev/log here, so syslog
# users with LOG_CONS would write every line to the slow serial console) and a private /run.
DAEMON_WRAPPER = (
    "unshare", "-m", "--propagation", "private", "sh", "-c",
    'mount --bind /dev/null /dev/console 2>/dev/null; mount -t tmpfs tmpfs /run && exec "$@"', "sh",
)
COMMAND_TIMEOUT = 10.0
BRIDGE = "type bridge stp_state 0 forward_delay 0 mcast_snooping 0"
LAN = "lan"  # as a node name: the bridge namespace (to watch the whole LAN from)
ADVERT_RECORDER = Path(__file__).with_name("adverts.py")


class LabError(RuntimeError):
    pass


def wait_for(condition: Callable[[], T], *, timeout: float, interval: float = 0.05,
             what: str = "condition", detail: Callable[[], str] | None = None) -> T:
    """Poll `condition` until it returns something truthy; bounded in time and in number of polls.

    On time-out raise TimeoutError naming `what`, plus `detail()` (the state that was seen) if given."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1):
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    message = f"timed out after {timeout:g} s waiting for {what}"
    raise TimeoutError(f"{message}; {detail()}" if detail else message)


def existing_namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                         check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


class Lab:
    """A bridge namespace plus one namespace per node. A context manager; `close()` always tears down."""

    def __init__(self, nodes: Mapping[str, int], *, workdir: Path, prefix: str | None = None) -> None:
        for node, host in nodes.items():
            if not (node.isalnum() and len(node) <= 6 and 1 <= host <= 254) or node == LAN:
                raise LabError(f"bad node {node!r}/{host}: names are <= 6 alphanumerics (not {LAN!r}), "
                               "hosts 1-254")
        self.nodes = dict(nodes)
        self.prefix = prefix or f"pv{os.getpid()}"
        self.workdir = Path(workdir)
        self.lan = f"{self.prefix}-lan"
        self._created: list[str] = []
        self._procs: list[subprocess.Popen] = []

    # -- addressing ----------------------------------------------------------------------------

    def ns(self, node: str) -> str:
        """Namespace name of `node` (LAN: the bridge's)."""
        if node == LAN:
            return self.lan
        if node not in self.nodes:
            raise LabError(f"unknown node {node!r}")
        return f"{self.prefix}-{node}"

    def ipv4(self, node: str) -> str:
        return f"{SUBNET4}.{self.nodes[node]}"

    def ipv6(self, node: str) -> str:
        return f"{SUBNET6}:{self.nodes[node]}"

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> None:
        names = [self.lan] + [self.ns(n) for n in self.nodes]
        clash = existing_namespaces() & set(names)
        if clash:
            raise LabError(f"namespaces already exist, refusing to touch them: {sorted(clash)}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        # One `ip -batch` per namespace rather than one `ip` per step: a process start costs up to a
        # second under the kernel tests' software-emulated VM, where the demo builds this lab too.
        self._created += names  # before creating: close() deletes whatever of them exists
        self._batch(None, [f"netns add {ns}" for ns in names])
        for ns in names:
            _check(["ip", "netns", "exec", ns, "sysctl", "-qw", *NODE_SYSCTLS])
        self._batch(self.lan, ["link set lo up", f"link add br0 {BRIDGE}", "link set br0 up"] +
                    [cmd for node in self.nodes for cmd in (
                        f"link add p-{node} type veth peer name {IFNAME} netns {self.ns(node)}",
                        f"link set p-{node} master br0 up")])
        for node, host in self.nodes.items():
            self._batch(self.ns(node), ["link set lo up", f"link set {IFNAME} up",
                                        f"addr add {SUBNET4}.{host}/24 dev {IFNAME}",
                                        f"addr add {SUBNET6}:{host}/64 dev {IFNAME} nodad"])

    def add_segment(self, ifname: str = "lan1", subnet4: str = "203.0.113") -> None:
        """A second LAN: bridge `b-<ifname>` in the lan namespace and an interface `ifname` in every node,
        with {subnet4}.H/24. It lives in the lab's namespaces, so it goes with them."""
        if not (ifname.isalnum() and len(ifname) <= 8 and ifname != IFNAME) or subnet4 != "203.0.113":
            raise LabError(f"bad segment {ifname!r} {subnet4!r}: a short name other than {IFNAME}, 203.0.113")
        bridge = f"b-{ifname}"
        self._batch(self.lan, [f"link add {bridge} {BRIDGE}", f"link set {bridge} up"] +
                    [cmd for node in self.nodes for cmd in (
                        f"link add {ifname[:4]}-{node} type veth peer name {ifname} netns {self.ns(node)}",
                        f"link set {ifname[:4]}-{node} master {bridge} up")])
        for node, host in self.nodes.items():
            self._batch(self.ns(node), [f"link set {ifname} up", f"addr add {subnet4}.{host}/24 dev {ifname}"])

    def close(self) -> None:
        """Kill what runs in the lab (TERM, ~1 s, KILL; by PID only) and delete its namespaces."""
        nodes_first = [ns for ns in self._created if ns != self.lan] + [ns for ns in self._created if ns == self.lan]
        pids = {p.pid for p in self._procs if p.poll() is None}
        for ns in nodes_first:
            pids |= self._netns_pids(ns)
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(_alive(pid, self._procs) for pid in pids):
            time.sleep(0.02)
        for ns in nodes_first:
            pids |= self._netns_pids(ns)
        _signal_all({pid for pid in pids if _alive(pid, self._procs)}, signal.SIGKILL)
        for proc in self._procs:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        for ns in nodes_first:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=COMMAND_TIMEOUT)
        self._created = [ns for ns in self._created if ns in existing_namespaces()]
        self._procs.clear()
        if self._created:
            raise LabError(f"could not delete namespaces {self._created}")

    @staticmethod
    def _netns_pids(ns: str) -> set[int]:
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                             timeout=COMMAND_TIMEOUT).stdout
        return {int(word) for word in out.split() if word.isdigit()}

    # -- running things in nodes ---------------------------------------------------------------

    def run(self, node: str, argv: Sequence[str], *, check: bool = True,
            timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """Run a command in `node` and wait for it (bounded); stdout/stderr captured as text."""
        cmd = ["ip", "netns", "exec", self.ns(node), *argv]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise LabError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def spawn(self, node: str, argv: Sequence[str], log_file: Path, *, daemon: bool = False,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a process in `node`, stdout+stderr to `log_file`; tracked by PID for tear-down.

        `daemon=True` runs it in a private mount namespace (console -> /dev/null, private /run).
        `env`: extra environment variables.
        """
        cmd = ["ip", "netns", "exec", self.ns(node), *(DAEMON_WRAPPER if daemon else ()), *argv]
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **env} if env else None)
        self._procs.append(proc)
        return proc

    def python(self, node: str, script: Path | str, *args: str, timeout: float = COMMAND_TIMEOUT,
               check: bool = True) -> subprocess.CompletedProcess:
        """Run a Python script with this interpreter (the project venv) inside `node`."""
        return self.run(node, [sys.executable, str(script), *args], timeout=timeout, check=check)

    def mac(self, node: str) -> str:
        """MAC address of the node's lan0 (tells the directors apart on the wire)."""
        return self.run(node, ["cat", f"/sys/class/net/{IFNAME}/address"]).stdout.strip()

    def addresses(self, node: str) -> set[str]:
        """Addresses on the node's lan0, without prefix length (to see who holds a VIP)."""
        out = self.run(node, ["ip", "-j", "addr", "show", "dev", IFNAME]).stdout
        return {a["local"] for link in json.loads(out or "[]") for a in link.get("addr_info", ())}

    def batch(self, node: str, commands: Sequence[str]) -> None:
        """Run `ip` commands (without the leading `ip`) in `node`, all in one `ip -batch` process."""
        self._batch(self.ns(node), commands)

    @staticmethod
    def _batch(ns: str | None, commands: Sequence[str]) -> None:
        cmd = ["ip", *(["-n", ns] if ns else []), "-batch", "-"]
        result = subprocess.run(cmd, input="\n".join(commands) + "\n", capture_output=True, text=True,
                                timeout=COMMAND_TIMEOUT)
        if result.returncode != 0:
            raise LabError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")


# -- keepalived as a peer ----------------------------------------------------------------------

@dataclass
class Peer:
    """A VRRP daemon (keepalived or pyvrrpd) running in a lab node."""

    node: str
    process: subprocess.Popen  # the parent (started with -n, so it is the process we spawned)
    vrrp_pid: int  # the VRRP child, from the -r pid file: kill -9 this one to simulate a crash
    log: Path
    impl: str = "keepalived"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def crash_pids(self) -> list[int]:
        """Whom to kill -9 for a crash, in order: the VRRP process first (keepalived's parent alone
        would stop its child gracefully), then the parent. pyvrrpd is one process."""
        return list(dict.fromkeys((self.vrrp_pid, self.process.pid)))

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the parent and wait for it (bounded); SIGKILL whatever is left. Safe to repeat."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=COMMAND_TIMEOUT)
        if process_alive(self.vrrp_pid):
            _signal_all({self.vrrp_pid}, signal.SIGKILL)


KeepalivedPeer = Peer  # the older name


def vrrp_config(node: str, *, state: str, priority: int, version: int = 3, advert_int: float = 0.1,
                vip: str = "198.51.100.100/32", vip6: str | None = None, vrid: int = 51,
                vrid6: int = 52, auth_pass: str | None = None) -> str:
    """A keepalived.conf (which pyvrrpd runs too) with instance VI4 (VRID `vrid`, `vip`) and, for
    v3 with `vip6`, VI6 (VRID `vrid6`); `auth_pass` adds v2 PASS authentication. One statement per
    line: keepalived has no `;`."""
    instances = [("VI4", vrid, vip)] + ([("VI6", vrid6, vip6)] if vip6 else [])
    out = ["global_defs {", f"    router_id {node}", f"    vrrp_version {version}", "}"]
    for name, vr, address in instances:
        out += [f"vrrp_instance {name} {{", f"    state {state}", f"    interface {IFNAME}",
                f"    virtual_router_id {vr}", f"    priority {priority}", f"    advert_int {advert_int:g}",
                "    virtual_ipaddress {", f"        {address} dev {IFNAME}", "    }"]
        if auth_pass is not None:
            out += ["    authentication {", "        auth_type PASS", f"        auth_pass {auth_pass}", "    }"]
        out.append("}")
    return "\n".join(out) + "\n"


KEEPALIVED_V2_CONF = """\
global_defs {{
    router_id {node}
    vrrp_version 2
}}
vrrp_instance VI4 {{
    state {state}
    interface lan0
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {vip} dev lan0
    }}
}}
"""


def start_keepalived(lab: Lab, node: str, config: str, *, timeout: float = 30.0) -> KeepalivedPeer:
    """Start keepalived 2.2.7 (VRRP only, foreground, console log) in `node` with its own pid files.

    Files go to lab.workdir as keepalived-<node>.{conf,pid,vrrp.pid,log}.
    """
    base = lab.workdir / f"keepalived-{node}"
    conf, pid_file, vrrp_pid_file, log = (Path(f"{base}{ext}") for ext in (".conf", ".pid", ".vrrp.pid", ".log"))
    conf.write_text(config)
    for stale in (pid_file, vrrp_pid_file):
        stale.unlink(missing_ok=True)
    argv = ["keepalived", "-n", "-l", "-D", "-P", "-f", str(conf), "-p", str(pid_file), "-r", str(vrrp_pid_file)]
    process = lab.spawn(node, argv, log, daemon=True)

    def vrrp_pid() -> int | None:
        if process.poll() is not None:
            raise LabError(f"keepalived in {node} exited {process.returncode}: {log.read_text(errors='replace')}")
        text = vrrp_pid_file.read_text().strip() if vrrp_pid_file.exists() else ""
        return int(text) if text.isdigit() else None

    pid = wait_for(vrrp_pid, timeout=timeout, what=f"keepalived's VRRP pid file in {node}")
    return Peer(node=node, process=process, vrrp_pid=pid, log=log)


def start_pyvrrpd(lab: Lab, node: str, config: str | Path, *, args: Sequence[str] = (),
                  timeout: float = 30.0, wait: bool = True) -> Peer:
    """Start pyvrrpd (foreground, one process) in `node` on a keepalived.conf, like start_keepalived.

    `config` is the text of the configuration (written to lab.workdir/pyvrrpd-<node>.conf) or the Path of
    a file to run as it is (so its relative includes resolve). The pid file and log go to lab.workdir as
    pyvrrpd-<node>.{pid,log}. Returns once the pid file is written, or at once with `wait=False` (then
    call wait_started: several daemons start in parallel).
    """
    base = lab.workdir / f"pyvrrpd-{node}"
    pid_file, log = Path(f"{base}.pid"), Path(f"{base}.log")
    if isinstance(config, Path):
        conf = config
    else:
        conf = Path(f"{base}.conf")
        conf.write_text(config)
    pid_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pyvrrpd", "-f", str(conf), "-p", str(pid_file), *args]
    process = lab.spawn(node, argv, log, daemon=True)
    peer = Peer(node=node, process=process, vrrp_pid=process.pid, log=log, impl="pyvrrpd")
    if wait:
        wait_started(peer, timeout=timeout)
    return peer


def wait_started(peer: Peer, *, timeout: float = 30.0) -> Peer:
    """Wait until a pyvrrpd started by start_pyvrrpd has written its pid file (bounded)."""
    pid_file = peer.log.with_suffix(".pid")

    def started() -> bool:
        if peer.process.poll() is not None:
            raise LabError(f"pyvrrpd in {peer.node} exited {peer.process.returncode}: {peer.log_text()}")
        return pid_file.exists() and pid_file.read_text().strip() == str(peer.process.pid)

    wait_for(started, timeout=timeout, what=f"pyvrrpd's pid file in {peer.node}")
    return peer


def start_daemon(impl: str, lab: Lab, node: str, config: str) -> Peer:
    """start_keepalived or start_pyvrrpd by name."""
    return {"keepalived": start_keepalived, "pyvrrpd": start_pyvrrpd}[impl](lab, node, config)


# -- the advert stream -------------------------------------------------------------------------

@dataclass(frozen=True)
class Advert:
    t: float  # kernel receive time on the bridge, CLOCK_REALTIME seconds (the clock of time.time())
    mac: str
    src: str
    version: int
    vrid: int
    prio: int
    node: str | None = None  # the lab node that sent it (by MAC, else by source address)


class AdvertWatch:
    """The advert stream of a Lab's LAN, recorded on its bridge from now on; stopped with the lab."""

    def __init__(self, lab: Lab, *, timeout: float = 300.0) -> None:
        self.log = lab.workdir / "adverts.log"
        self.names = {lab.mac(n): n for n in lab.nodes}
        self.names |= {lab.ipv4(n): n for n in lab.nodes} | {lab.ipv6(n): n for n in lab.nodes}
        self._seen: list[Advert] = []
        self._offset = 0
        self._ready = False
        argv = [sys.executable, str(ADVERT_RECORDER), "--iface", "br0", "--timeout", f"{timeout:g}"]
        self.proc = lab.spawn(LAN, argv, self.log)

        def ready() -> bool:
            self.adverts()
            return self._ready or self.proc.poll() is not None

        wait_for(ready, timeout=10, what="the advert watch to start")
        if not self._ready:
            raise LabError(f"the advert watch did not start:\n{self.log.read_text(errors='replace')}")

    def adverts(self) -> list[Advert]:
        """Every advert recorded so far (the log is read on from where the last call stopped)."""
        with open(self.log, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written waits for the next call
        self._offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            fields = json.loads(line)
            if fields.get("ready"):
                self._ready = True
            elif "t" in fields:
                node = self.names.get(fields["mac"]) or self.names.get(fields["src"])
                self._seen.append(Advert(**fields, node=node))
        return list(self._seen)

    def first(self, match: Callable[[Advert], bool], *, since: float) -> Advert | None:
        return next((a for a in self.adverts() if a.t >= since and match(a)), None)

    def last(self, match: Callable[[Advert], bool], *, before: float) -> Advert | None:
        found = [a for a in self.adverts() if a.t < before and match(a)]
        return found[-1] if found else None

    def wait(self, what: str, match: Callable[[Advert], bool], *, since: float, timeout: float,
             count: int = 1) -> Advert:
        """The first (`count`-th) advert at or after `since` that matches, waiting up to `timeout` seconds."""
        def found() -> Advert | None:
            if self.proc.poll() is not None:
                raise LabError(f"the advert watch exited {self.proc.returncode} while waiting for {what}")
            matching = [a for a in self.adverts() if a.t >= since and match(a)]
            return matching[count - 1] if len(matching) >= count else None

        return wait_for(found, timeout=timeout, what=what, detail=lambda: f"adverts since: {self.summary(since)}")

    def summary(self, since: float, limit: int = 12) -> str:
        """The last adverts at or after `since`, short, for failure messages."""
        seen = [a for a in self.adverts() if a.t >= since]
        text = ", ".join(f"{a.node or a.mac} vrid {a.vrid} prio {a.prio} at +{a.t - since:.3f} s"
                         for a in seen[-limit:])
        return f"{len(seen)} ({text})" if seen else "none"


def sent_by(node: str, priority: int | None = None) -> Callable[[Advert], bool]:
    """Matches the adverts of `node` (with `priority`, if given)."""
    return lambda a: a.node == node and (priority is None or a.prio == priority)


# Protocol timers, written here from RFC 3768/5798 (not taken from pyvrrpd), in seconds.
EARLY = 0.02  # a frame reaches the bridge and a daemon microseconds apart, and timers never fire early
LATE = 1.0  # what a loaded machine may add to a takeover; < 3 s, the Skew_Time/Master_Down_Interval gap at v2 1 s


def skew_time(version: int, interval: float, priority: int) -> float:
    return (256 - priority) / 256 * (1.0 if version == 2 else interval)


def master_down_interval(version: int, interval: float, priority: int) -> float:
    return 3 * interval + skew_time(version, interval, priority)


def assert_between(what: str, elapsed: float, low: float, high: float) -> float:
    """A protocol timer's bound: `what` took `elapsed` seconds, which must lie in [low, high]."""
    print(f"timing: {what}: {elapsed:.3f} s (bounds {low:.3f}..{high:.3f})")
    assert low <= elapsed <= high, f"{what}: {elapsed:.3f} s, expected {low:.3f}..{high:.3f} s"
    return elapsed


# -- helpers -----------------------------------------------------------------------------------

def _check(cmd: Sequence[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if result.returncode != 0:
        raise LabError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")


def _signal_all(pids: set[int], sig: int) -> None:
    for pid in pids - {0, 1, os.getpid()}:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _alive(pid: int, procs: list[subprocess.Popen]) -> bool:
    for proc in procs:
        if proc.pid == pid:
            return proc.poll() is None  # reaps our own children, so they do not linger as zombies
    return process_alive(pid)


def process_alive(pid: int) -> bool:
    """True unless the process is gone or a zombie (orphans may wait a while for init to reap them)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")
