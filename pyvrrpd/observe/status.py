"""``pyvrrpd status``: ask the running daemon for its snapshot and print it as tables (or ``--json``).

A plain HTTP/1.1 GET over the control socket with the standard library (no aiohttp, no event loop), so the
command starts fast and works wherever the daemon runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
from collections.abc import Mapping, Sequence

from pyvrrpd.observe import metrics
from pyvrrpd.observe.control import DEFAULT_SOCKET

EXIT_OK = 0
EXIT_NOT_RUNNING = 3  # like `systemctl status` for a stopped unit
TIMEOUT = 5.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def fetch(path: str, what: str = "/status", timeout: float = TIMEOUT) -> str:
    """GET ``what`` from the daemon on the unix socket ``path``; OSError or ValueError with a sentence."""
    conn = _UnixConnection(path, timeout)
    try:
        conn.request("GET", what)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
    except (http.client.HTTPException, socket.timeout) as exc:
        raise ValueError(f"{path}: bad answer from the daemon: {exc}") from None
    finally:
        conn.close()
    if resp.status != 200:
        raise ValueError(f"{path}: {what} answered {resp.status} {resp.reason}")
    return body


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def render(snap: Mapping) -> str:
    p = snap.get("process") or {}
    out = [f"pyvrrpd {p.get('version', '?')}, pid {p.get('pid', '?')}, up {_duration(p.get('uptime'))}, "
           f"config {p.get('config', '?')}"]
    reloads = p.get("reloads") or {}
    if reloads.get("requested"):
        out.append(f"reloads: {reloads.get('applied', 0)} applied, {reloads.get('refused', 0)} refused, "
                   f"{reloads.get('failed', 0)} failed (last: {reloads.get('last_result')})")
    if p.get("health"):
        out.append(f"UNHEALTHY: {p['health']}")
    instances = (snap.get("vrrp") or {}).get("instances") or ()
    if instances:
        rows = []
        for i in instances:
            prio = str(i.get("base_priority"))
            if i.get("effective_priority") not in (None, i.get("base_priority")):
                prio += f"→{i.get('effective_priority')}"
            faults = "; ".join(f"{k}: {v}" for k, v in (i.get("faults") or {}).items())
            rows.append((i.get("name"), i.get("vrid"), i.get("interface"),
                         f"v{i.get('version', '?')}/IPv{i.get('family', '?')}", i.get("state"), prio,
                         i.get("master_address"), ", ".join(map(str, i.get("vips") or ())) or None, faults or None))
        out += ["", "VRRP instances"] + _table(
            ("NAME", "VRID", "INTERFACE", "PROTO", "STATE", "PRIORITY", "MASTER", "VIPS", "FAULT"), rows)
        for i in instances:
            rivals = ((i.get("counters") or {}).get("router") or {}).get("rival_master_rx")
            if rivals:
                out.append(f"({i.get('name')}) heard {rivals} advert(s) from another master while master: "
                           f"split brain? run `pyvrrpd diagnose -i {i.get('interface')}`")
    servers = (snap.get("lvs") or {}).get("virtual_servers") or ()
    if servers:
        rows = []
        for vs in servers:
            for rs in vs.get("real_servers") or ():
                ago = rs.get("last_check_ago")
                rows.append((vs.get("name"), rs.get("name"), "up" if rs.get("up") else "DOWN", rs.get("weight"),
                             None if ago is None else f"{ago:.1f} s ago"))
            if not vs.get("real_servers"):
                rows.append((vs.get("name"), None, None, None, None))
        out += ["", "Virtual servers"] + _table(("VIRTUAL SERVER", "REAL SERVER", "HEALTH", "WEIGHT", "LAST CHECK"),
                                                rows)
    trackers = metrics.trackers(snap)
    if trackers:
        rows = [(t.get("kind"), t.get("name"), t.get("state"), t.get("last_result")) for t in trackers]
        out += ["", "Trackers"] + _table(("KIND", "NAME", "STATE", "LAST RESULT"), rows)
    return "\n".join(out) + "\n"


def _duration(seconds: object) -> str:
    try:
        s = int(float(seconds))
    except (TypeError, ValueError):
        return "?"
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{s:02d}"


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="pyvrrpd status", description="Show the running daemon's state.")
    p.add_argument("--control-socket", "--socket", dest="socket", default=DEFAULT_SOCKET, metavar="PATH",
                   help=f"the daemon's control socket (default {DEFAULT_SOCKET})")
    p.add_argument("--json", action="store_true", help="print the daemon's snapshot as JSON")
    args = p.parse_args(list(argv))
    try:
        body = fetch(args.socket)
    except OSError as exc:
        sys.stderr.write(f"pyvrrpd status: cannot reach the daemon at {args.socket}: "
                         f"{exc.strerror or exc}; is it running?\n")
        return EXIT_NOT_RUNNING
    except ValueError as exc:
        sys.stderr.write(f"pyvrrpd status: {exc}\n")
        return EXIT_NOT_RUNNING
    if args.json:
        sys.stdout.write(body if body.endswith("\n") else body + "\n")
        return EXIT_OK
    try:
        snap = json.loads(body)
    except ValueError:
        sys.stderr.write(f"pyvrrpd status: the daemon's answer is not JSON\n")
        return EXIT_NOT_RUNNING
    sys.stdout.write(render(snap))
    return EXIT_OK
