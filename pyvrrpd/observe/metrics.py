"""The daemon root's snapshot as Prometheus text (exposition format 0.0.4). Pure: dict in, text out.

The snapshot is the one read-only picture every report renders (``/status``, ``/metrics``, ``pyvrrpd status``
and the keepalived-style dumps); its shape is described in docs/operations.md. Counters in a subsystem's
``counters`` dicts become ``pyvrrpd_<subsystem>_<name>_total``; a counter that is itself a dict
(``{"reason": count}``) gets one sample per key with a ``reason`` label.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

# check latency buckets (seconds): a loopback check takes ~0.1-1 ms, a LAN one a few ms, an HTTP check of
# a slow application tens to hundreds, and nothing lasts beyond its connect_timeout (default 5 s)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

STATE_NUMBER = {"INITIALIZE": 0, "INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}  # keepalived's JSON numbers
STATES = ("INITIALIZE", "BACKUP", "MASTER", "FAULT")


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, object]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(int(value))


class Histogram:
    """Observed durations in fixed buckets: cheap to update (one bisect), rendered by :func:`render`."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: above every bucket (+Inf only)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds

    def snapshot(self) -> dict:
        """{"buckets": {upper bound: observations in that bucket alone}, "sum": s, "count": n}."""
        return {"buckets": {repr(le): n for le, n in zip(LATENCY_BUCKETS, self.counts)},
                "sum": round(self.sum, 6), "count": sum(self.counts)}


def merge_histograms(hists: Iterable[Mapping]) -> dict | None:
    """Several :meth:`Histogram.snapshot` dicts added up (a real server fed by several probes); None if none."""
    out: dict | None = None
    for h in hists:
        if out is None:
            out = {"buckets": dict(h.get("buckets") or {}), "sum": float(h.get("sum", 0.0)),
                   "count": int(h.get("count", 0))}
            continue
        for le, n in (h.get("buckets") or {}).items():
            out["buckets"][le] = out["buckets"].get(le, 0) + n
        out["sum"] += float(h.get("sum", 0.0))
        out["count"] += int(h.get("count", 0))
    return out


class _Families:
    """Samples grouped by metric family, in first-seen order (the format wants each family contiguous)."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, kind: str, help_text: str, labels: Mapping[str, object], value: object,
            suffix: str = "") -> None:
        family = self._families.setdefault(name, (kind, help_text, []))
        family[2].append(f"{name}{suffix}{_labels(labels)} {_number(value)}")

    def counters(self, prefix: str, counters: Mapping[str, object], labels: Mapping[str, object],
                 what: str) -> None:
        for key, value in sorted(counters.items()):
            name = f"{prefix}_{key}_total"
            if isinstance(value, Mapping):
                for sub, count in sorted(value.items(), key=lambda kv: str(kv[0])):
                    self.add(name, "counter", f"{what}: {key.replace('_', ' ')}, by reason",
                             {**labels, "reason": sub}, count)
            elif isinstance(value, (int, float)):
                self.add(name, "counter", f"{what}: {key.replace('_', ' ')}", labels, value)

    def render(self) -> str:
        out: list[str] = []
        for name, (kind, help_text, samples) in self._families.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(samples)
        return "\n".join(out) + "\n"


def render(snapshot: Mapping) -> str:
    f = _Families()
    _process(f, snapshot.get("process") or {})
    _vrrp(f, snapshot.get("vrrp") or {})
    _lvs(f, snapshot.get("lvs") or {})
    _tracking(f, snapshot)
    _control(f, snapshot.get("control") or {})
    return f.render()


def _control(f: _Families, control: Mapping) -> None:
    """The status endpoint's own counters: answers by route, refused requests by status, timeouts by kind."""
    counters = dict(control.get("counters") or {})
    for route, n in sorted((counters.pop("requests", None) or {}).items()):
        f.add("pyvrrpd_control_requests_total", "counter", "Control endpoint requests by route (rejected: a 4xx or 500)",
              {"route": route}, n)
    for code, n in sorted((counters.pop("bad_requests", None) or {}).items()):
        f.add("pyvrrpd_control_bad_requests_total", "counter",
              "Control endpoint requests refused, by the status answered (400, 404, 405, 413, 431)", {"code": code}, n)
    for kind, n in sorted((counters.pop("timeouts", None) or {}).items()):
        f.add("pyvrrpd_control_timeouts_total", "counter", "Control endpoint connections dropped as too slow: "
              "request (not whole in time), answer (not read in time)", {"kind": kind}, n)
    f.counters("pyvrrpd_control", counters, {}, "Control endpoint")
    if "open_connections" in control:
        f.add("pyvrrpd_control_open_connections", "gauge", "Control endpoint connections open now", {},
              control["open_connections"])


def _process(f: _Families, p: Mapping) -> None:
    if "version" in p:
        f.add("pyvrrpd_build_info", "gauge", "Version of the running daemon", {"version": p["version"]}, 1)
    if "start_time" in p:
        f.add("pyvrrpd_process_start_time_seconds", "gauge", "Start time of the daemon (Unix time)", {},
              float(p["start_time"]))
    reloads = p.get("reloads") or {}
    for result in ("applied", "refused", "failed"):
        if result in reloads:
            f.add("pyvrrpd_reloads_total", "counter",
                  "Configuration reloads (SIGHUP) by result: applied, refused by a subsystem, failed (errors)",
                  {"result": result}, reloads[result])
    if reloads.get("last_time") is not None:
        f.add("pyvrrpd_last_reload_time_seconds", "gauge", "Time of the last reload (Unix time)", {},
              float(reloads["last_time"]))
    if reloads.get("last_result") is not None:
        f.add("pyvrrpd_last_reload_successful", "gauge", "1 if the last reload was applied",
              {}, reloads["last_result"] == "applied")
    if "health" in p:
        f.add("pyvrrpd_healthy", "gauge", "1 while every subsystem keeps up (what WATCHDOG=1 and /healthz say)",
              {}, p["health"] is None)


def _instance_labels(inst: Mapping) -> dict[str, object]:
    return {"instance": inst.get("name", ""), "vrid": inst.get("vrid", ""),
            "interface": inst.get("interface", ""), "family": f"ipv{inst.get('family', 4)}"}


def instance_counters(inst: Mapping) -> dict:
    """An instance's own counters: the router's and its effects' (the socket's are shared, see sockets())."""
    counters = inst.get("counters") or {}
    return {**(counters.get("router") or {}), **(counters.get("effects") or {})}


def sockets(vrrp: Mapping) -> dict[tuple[str, int], Mapping]:
    """Each (interface, family) socket's counters once, though every instance on it lists them."""
    out: dict[tuple[str, int], Mapping] = {}
    for inst in vrrp.get("instances") or ():
        port = (inst.get("counters") or {}).get("port")
        if port is not None:
            out.setdefault((inst.get("interface", ""), inst.get("family", 4)), port)
    return out


def _vrrp(f: _Families, vrrp: Mapping) -> None:
    for inst in vrrp.get("instances") or ():
        labels = _instance_labels(inst)
        state = inst.get("state", "INITIALIZE")
        for s in STATES:
            f.add("pyvrrpd_vrrp_state", "gauge", "1 for the instance's current VRRP state",
                  {**labels, "state": s}, state == s)
        base = inst.get("base_priority", 0)
        f.add("pyvrrpd_vrrp_priority", "gauge", "Configured (base) priority", labels, base)
        f.add("pyvrrpd_vrrp_effective_priority", "gauge", "Priority after tracking", labels,
              inst.get("effective_priority", base))
        f.add("pyvrrpd_vrrp_fault_reasons", "gauge", "Number of reasons holding the instance in FAULT",
              labels, len(inst.get("faults") or {}))
        f.counters("pyvrrpd_vrrp", instance_counters(inst), labels, "VRRP instance")
    for (interface, family), counters in sockets(vrrp).items():
        f.counters("pyvrrpd_vrrp_socket", counters, {"interface": interface, "family": f"ipv{family}"},
                   "VRRP socket")


def _lvs(f: _Families, lvs: Mapping) -> None:
    for vs in lvs.get("virtual_servers") or ():
        vlabels = {"virtual_server": vs.get("name", "")}
        if "quorum_up" in vs:
            f.add("pyvrrpd_lvs_quorum_up", "gauge", "1 while the virtual server has its quorum", vlabels,
                  bool(vs["quorum_up"]))
        for rs in vs.get("real_servers") or ():
            labels = {**vlabels, "real_server": rs.get("name", "")}
            f.add("pyvrrpd_lvs_real_server_up", "gauge", "1 while the real server's checks pass", labels,
                  bool(rs.get("up")))
            if "weight" in rs:
                f.add("pyvrrpd_lvs_real_server_weight", "gauge", "Weight in the IPVS table", labels, rs["weight"])
            f.counters("pyvrrpd_lvs_real_server", rs.get("counters") or {}, labels, "Real server")
            hist = rs.get("check_latency")
            if hist:
                _histogram(f, "pyvrrpd_lvs_check_latency_seconds", "Check latency", labels, hist)
    f.counters("pyvrrpd_lvs", lvs.get("counters") or {}, {}, "LVS")
    _ipvs(f, lvs.get("ipvs") or {})
    _checks(f, lvs.get("checkers") or {})


IPVS_KINDS = {"AddService": "add_service", "EditService": "edit_service", "DelService": "delete_service",
              "AddDest": "add_destination", "EditDest": "edit_destination", "DelDest": "delete_destination",
              "Flush": "flush"}


def _ipvs(f: _Families, ipvs: Mapping) -> None:
    if not ipvs:
        return
    counters = dict(ipvs.get("counters") or {})
    by_kind = counters.pop("by_kind", None) or {}
    counters.pop("operations", None)
    for kind, label in IPVS_KINDS.items():
        f.add("pyvrrpd_lvs_ipvs_operations_total", "counter", "IPVS operations the kernel carried out, by kind",
              {"operation": label}, by_kind.get(kind, 0))
    f.counters("pyvrrpd_lvs_ipvs", counters, {}, "IPVS reconciler")  # errors, passes, repairs, ...
    if "kernel" in ipvs:
        f.add("pyvrrpd_lvs_ipvs_kernel", "gauge", "1 when the kernel's IPVS table is programmed, 0 for the "
              "in-memory stand-in (no ip_vs)", {}, bool(ipvs["kernel"]))
    for key, what in (("services", "IPVS services"), ("destinations", "IPVS destinations")):
        if key in ipvs:
            f.add(f"pyvrrpd_lvs_ipvs_desired_{key}", "gauge", f"{what} the configuration and health ask for", {},
                  ipvs[key])
    if ipvs.get("last_pass") is not None:
        f.add("pyvrrpd_lvs_ipvs_last_pass_time_seconds", "gauge", "Time of the last reconciler pass (Unix time)",
              {}, float(ipvs["last_pass"]))


def _checks(f: _Families, checkers: Mapping) -> None:
    if not checkers:
        return
    counters = checkers.get("counters") or {}
    f.add("pyvrrpd_lvs_checks_total", "counter", "Health checks completed", {}, counters.get("checks", 0))
    for key, n in sorted(counters.items()):
        if key.startswith("failed:"):
            f.add("pyvrrpd_lvs_check_failures_total", "counter", "Failed health checks, by reason",
                  {"reason": key.partition(":")[2]}, n)
    for to in ("up", "down"):
        f.add("pyvrrpd_lvs_check_transitions_total", "counter", "Checkers that changed state, by new state",
              {"to": to}, counters.get(to, 0))
    f.add("pyvrrpd_lvs_checkers_stuck_total", "counter", "Times a checker was found making no progress", {},
          counters.get("stuck", 0))
    probes = checkers.get("probes") or ()
    f.add("pyvrrpd_lvs_checkers", "gauge", "Probes running (one per distinct check)", {}, len(probes))
    f.add("pyvrrpd_lvs_checkers_stuck", "gauge", "Probes making no progress now", {},
          sum(1 for p in probes if p.get("stuck")))


def _histogram(f: _Families, name: str, help_text: str, labels: Mapping[str, object], hist: Mapping) -> None:
    cumulative = 0
    buckets: Iterable = sorted((float(le), n) for le, n in (hist.get("buckets") or {}).items())
    for le, n in buckets:
        cumulative += n
        f.add(name, "histogram", help_text, {**labels, "le": _number(le)}, cumulative, "_bucket")
    f.add(name, "histogram", help_text, {**labels, "le": "+Inf"}, hist.get("count", cumulative), "_bucket")
    f.add(name, "histogram", help_text, labels, float(hist.get("sum", 0.0)), "_sum")
    f.add(name, "histogram", help_text, labels, hist.get("count", cumulative), "_count")


TRACKER_STATES = ("up", "down", "unknown")


def trackers(snapshot: Mapping) -> list[dict]:
    """The trackers subsystem's snapshot as one flat list, one dict per tracked object: kind (script,
    interface, file, process), name, state (up, down, unknown; a vanished interface is down), and where
    known last_result, value (file), count (process) and counters."""
    tr = snapshot.get("trackers") or {}
    out: list[dict] = []
    for name, sc in sorted((tr.get("scripts") or {}).items()):
        out.append({"kind": "script", "name": name, "state": sc.get("state", "unknown"),
                    "last_result": sc.get("last_result"), "counters": sc.get("counters") or {}})
    for name, state in sorted((tr.get("interfaces") or {}).items()):
        out.append({"kind": "interface", "name": name,
                    "state": {"up": "up", "down": "down", "gone": "down"}.get(state, "unknown"),
                    "last_result": None if state in ("up", "down") else state})
    for name, fi in sorted((tr.get("files") or {}).items()):
        value = fi.get("value")
        out.append({"kind": "file", "name": name, "state": "unknown" if value is None else "up",
                    "value": value, "last_result": None if value is None else f"value {value}",
                    "counters": fi.get("counters") or {}})
    for name, pr in sorted((tr.get("processes") or {}).items()):
        up = pr.get("up")
        out.append({"kind": "process", "name": name, "state": "unknown" if up is None else "up" if up else "down",
                    "count": pr.get("count", 0), "last_result": f"{pr.get('count', 0)} running"})
    return out


def _tracking(f: _Families, snapshot: Mapping) -> None:
    for tr in trackers(snapshot):
        labels = {"kind": tr["kind"], "tracker": tr["name"]}
        f.add("pyvrrpd_tracker_up", "gauge", "1 while the tracked object is up (script succeeding, link up, "
              "process running, file read)", labels, tr["state"] == "up")
        for state in TRACKER_STATES:
            f.add("pyvrrpd_tracker_state", "gauge", "1 for the tracker's current state", {**labels, "state": state},
                  tr["state"] == state)
        if tr.get("value") is not None:
            f.add("pyvrrpd_tracker_file_value", "gauge", "The number a track_file holds", labels, tr["value"])
        if "count" in tr:
            f.add("pyvrrpd_tracker_processes", "gauge", "Processes matching a track_process", labels, tr["count"])
        f.counters("pyvrrpd_tracker", tr.get("counters") or {}, labels, "Tracker")
    f.counters("pyvrrpd_trackers", (snapshot.get("trackers") or {}).get("counters") or {}, {}, "Trackers")
