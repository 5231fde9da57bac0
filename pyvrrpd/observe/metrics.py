"""The daemon root's snapshot as Prometheus text (exposition format 0.0.4). Pure: dict in, text out.

The snapshot is the one read-only picture every report renders (``/status``, ``/metrics``, ``pyvrrpd status``
and the keepalived-style dumps); its shape is described in docs/operations.md. Counters in a subsystem's
``counters`` dicts become ``pyvrrpd_<subsystem>_<name>_total``; a counter that is itself a dict
(``{"reason": count}``) gets one sample per key with a ``reason`` label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
    _tracking(f, snapshot.get("tracking") or {})
    return f.render()


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
    ipvs = lvs.get("ipvs") or {}
    f.counters("pyvrrpd_lvs_ipvs", ipvs.get("counters") or {}, {}, "IPVS reconciler")
    checkers = lvs.get("checkers") or {}
    f.counters("pyvrrpd_lvs_checks", checkers.get("counters") or {}, {}, "Health checks")


def _histogram(f: _Families, name: str, help_text: str, labels: Mapping[str, object], hist: Mapping) -> None:
    cumulative = 0
    buckets: Iterable = sorted((float(le), n) for le, n in (hist.get("buckets") or {}).items())
    for le, n in buckets:
        cumulative += n
        f.add(name, "histogram", help_text, {**labels, "le": _number(le)}, cumulative, "_bucket")
    f.add(name, "histogram", help_text, {**labels, "le": "+Inf"}, hist.get("count", cumulative), "_bucket")
    f.add(name, "histogram", help_text, labels, float(hist.get("sum", 0.0)), "_sum")
    f.add(name, "histogram", help_text, labels, hist.get("count", cumulative), "_count")


def _tracking(f: _Families, tracking: Mapping) -> None:
    for tr in tracking.get("trackers") or ():
        labels = {"kind": tr.get("kind", ""), "tracker": tr.get("name", "")}
        f.add("pyvrrpd_tracker_up", "gauge", "1 while the tracked object is up (script succeeding, link up, ...)",
              labels, tr.get("state") in ("up", "UP", True))
        f.counters("pyvrrpd_tracker", tr.get("counters") or {}, labels, "Tracker")
