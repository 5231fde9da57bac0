"""keepalived-style dump files from the daemon root's snapshot. Pure: dict in, text out.

| signal | keepalived 2.2.7 writes | pyvrrpd writes (same name, same directory) |
|---|---|---|
| SIGUSR1 | ``keepalived.data``: config and state as indented text | the same sections for what pyvrrpd runs |
| SIGUSR2 | ``keepalived.stats``: per-instance counters | the same lines, byte for byte in form |
| SIGRTMIN+2 | ``keepalived.json``: ``[{"data": {...}, "stats": {...}}]`` | the same keys and value types |

The JSON and stats shapes were captured from keepalived 2.2.7 (tests/observe/keepalived-2.2.7/), so the
exporters and scripts that read keepalived's files read pyvrrpd's. The directory is ``$TMPDIR`` when set and
absolute, else /tmp, as keepalived's Debian build does; ``--dump-dir`` overrides it (several daemons in
namespaces on one host).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pyvrrpd.observe import metrics
from pyvrrpd.observe.metrics import STATE_NUMBER, instance_counters

DATA_FILE = "keepalived.data"
STATS_FILE = "keepalived.stats"
JSON_FILE = "keepalived.json"

# keepalived's per-instance error counters → the router's discard reasons they cover. Packets that fail to
# decode are counted per socket (they are rejected before the VRID is known), so keepalived's per-instance
# length, TTL and type errors stay 0 here; /metrics has them per socket.
_STATS_REASONS = {
    "packet_len_err": (),
    "advert_interval_err": ("interval_mismatch",),
    "ip_ttl_err": (),
    "invalid_type_rcvd": (),
    "addr_list_err": ("address_count_mismatch", "address_list_mismatch"),
    "invalid_authtype": ("invalid_auth_type",),
    "authtype_mismatch": ("auth_type_mismatch",),
    "auth_failure": ("auth_failure",),
}


def dump_dir(override: str | None = None) -> str:
    if override:
        return override
    tmp = os.environ.get("TMPDIR", "")
    return tmp if tmp.startswith("/") else "/tmp"


def _us_to_s(us: object) -> float | int:
    seconds = int(us or 0) / 1e6
    return int(seconds) if seconds == int(seconds) else seconds


def _discards(inst: Mapping) -> Mapping[str, int]:
    merged: dict[str, int] = {}
    for reason, n in (instance_counters(inst).get("discarded") or {}).items():
        merged[str(reason)] = merged.get(str(reason), 0) + int(n)
    return merged


def instance_stats(inst: Mapping) -> dict[str, int]:
    """keepalived's ``stats`` object for one instance (key order as keepalived writes it)."""
    c = instance_counters(inst)
    discards = _discards(inst)
    stats = {
        "advert_rcvd": int(c.get("adverts_rx", 0)),
        "advert_sent": int(c.get("adverts_tx", 0)),
        "become_master": int(c.get("become_master", 0)),
        "release_master": int(c.get("release_master", 0)),
    }
    for key, reasons in _STATS_REASONS.items():
        stats[key] = sum(discards.get(r, 0) for r in reasons)
    stats["pri_zero_rcvd"] = int(c.get("priority_zero_rx", 0))
    stats["pri_zero_sent"] = int(c.get("priority_zero_tx", 0))
    # keepalived orders these as below; keep its order for byte-level diffs of the JSON
    order = ("advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
             "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype",
             "authtype_mismatch", "auth_failure", "pri_zero_rcvd", "pri_zero_sent")
    return {k: stats[k] for k in order}


def instance_data(inst: Mapping) -> dict[str, object]:
    """keepalived's ``data`` object for one instance."""
    state = STATE_NUMBER.get(str(inst.get("state", "INITIALIZE")), 0)
    auth_type = {"PASS": 1, "AH": 2}.get(str(inst.get("auth_type") or ""), 0)
    return {
        "iname": inst.get("name", ""),
        "dont_track_primary": 0,
        "skip_check_adv_addr": int(bool(inst.get("skip_check_adv_addr"))),
        "strict_mode": int(bool(inst.get("strict_mode"))),
        "vmac_ifname": inst.get("vmac") or "",
        "ifp_ifname": inst.get("interface", ""),
        "master_priority": int(inst.get("master_priority") or 0),
        "last_transition": float(inst.get("last_transition") or 0.0),
        "garp_delay": _us_to_s(inst.get("garp_master_delay_us", 5_000_000)),
        "garp_refresh": _us_to_s(inst.get("garp_master_refresh_us", 0)),
        "garp_rep": int(inst.get("garp_master_repeat", 5)),
        "garp_refresh_rep": int(inst.get("garp_master_refresh_repeat", 1)),
        "garp_lower_prio_delay": _us_to_s(inst.get("garp_lower_prio_delay_us", 5_000_000)),
        "garp_lower_prio_rep": int(inst.get("garp_lower_prio_repeat", 5)),
        "lower_prio_no_advert": int(bool(inst.get("lower_prio_no_advert"))),
        "higher_prio_send_advert": int(bool(inst.get("higher_prio_send_advert"))),
        "vrid": int(inst.get("vrid", 0)),
        "base_priority": int(inst.get("base_priority", 0)),
        "effective_priority": int(inst.get("effective_priority", inst.get("base_priority", 0))),
        "vipset": inst.get("state") == "MASTER",
        "promote_secondaries": False,
        "adver_int": _us_to_s(inst.get("advert_int_us", 1_000_000)),
        "master_adver_int": _us_to_s(inst.get("master_advert_int_us", inst.get("advert_int_us", 1_000_000))),
        "accept": int(bool(inst.get("accept", True))),
        "nopreempt": bool(inst.get("nopreempt")),
        "preempt_delay": _us_to_s(inst.get("preempt_delay_us", 0)),
        "state": state,
        "wantstate": state,
        "version": int(inst.get("version", 2)),
        "smtp_alert": False,
        "notify_deleted": False,
        "vips": [_vip_text(v, inst) for v in inst.get("vips") or ()],
        "auth_type": auth_type,
        "auth_data": "",  # keepalived writes the password here; pyvrrpd never puts it in a report
    }


def _vip_text(vip: object, inst: Mapping) -> str:
    """``198.51.100.100/24 dev lan0 scope global set`` (``set`` while this node holds it)."""
    if isinstance(vip, Mapping):
        text = f"{vip.get('address')} dev {vip.get('dev') or inst.get('interface', '')} scope {vip.get('scope', 'global')}"
    else:
        text = f"{vip} dev {inst.get('interface', '')} scope global"
    return text + (" set" if inst.get("state") == "MASTER" else "")


def render_json(snapshot: Mapping) -> str:
    instances = (snapshot.get("vrrp") or {}).get("instances") or ()
    return json.dumps([{"data": instance_data(i), "stats": instance_stats(i)} for i in instances]) + "\n"


def render_stats(snapshot: Mapping) -> str:
    lines: list[str] = []
    for inst in (snapshot.get("vrrp") or {}).get("instances") or ():
        s = instance_stats(inst)
        lines += [
            f"VRRP Instance: {inst.get('name', '')}",
            "  Advertisements:",
            f"    Received: {s['advert_rcvd']}",
            f"    Sent: {s['advert_sent']}",
            f"  Became master: {s['become_master']}",
            f"  Released master: {s['release_master']}",
            "  Packet Errors:",
            f"    Length: {s['packet_len_err']}",
            f"    TTL: {s['ip_ttl_err']}",
            f"    Invalid Type: {s['invalid_type_rcvd']}",
            f"    Advertisement Interval: {s['advert_interval_err']}",
            f"    Address List: {s['addr_list_err']}",
            "  Authentication Errors:",
            f"    Invalid Type: {s['invalid_authtype']}",
            f"    Type Mismatch: {s['authtype_mismatch']}",
            f"    Failure: {s['auth_failure']}",
            "  Priority Zero:",
            f"    Received: {s['pri_zero_rcvd']}",
            f"    Sent: {s['pri_zero_sent']}",
        ]
    return "\n".join(lines) + ("\n" if lines else "")


def render_data(snapshot: Mapping) -> str:
    """keepalived.data's layout (``------< ... >------`` sections, one ``Key = value`` per line)."""
    p = snapshot.get("process") or {}
    out = ["------< Global definitions >------",
           f" Daemon = pyvrrpd v{p.get('version', '')}",
           f" Pid = {p.get('pid', '')}",
           f" Configuration file = {p.get('config', '')}"]
    vrrp = snapshot.get("vrrp") or {}
    if vrrp.get("instances"):
        out.append("------< VRRP Topology >------")
    for inst in vrrp.get("instances") or ():
        d = instance_data(inst)
        out += [f" VRRP Instance = {d['iname']}",
                f"   VRRP Version = {d['version']}",
                f"   State = {inst.get('state', 'INITIALIZE')}",
                f"   Wantstate = {inst.get('state', 'INITIALIZE')}",
                f"   Interface = {d['ifp_ifname']}"]
        if d["vmac_ifname"]:
            out.append(f"   Use VMAC, i/f {d['vmac_ifname']}")
        out += [f"   Virtual Router ID = {d['vrid']}",
                f"   Priority = {d['base_priority']}",
                f"   Effective priority = {d['effective_priority']}",
                f"   Advert interval = {d['adver_int']} sec",
                f"   Master advert interval = {d['master_adver_int']} sec",
                f"   Accept = {'enabled' if d['accept'] else 'disabled'}",
                f"   Preempt = {'disabled' if d['nopreempt'] else 'enabled'}",
                f"   Preempt delay = {d['preempt_delay']} secs",
                f"   Master priority = {d['master_priority']}",
                f"   Master address = {inst.get('master_address') or '(none)'}"]
        for source, reason in (inst.get("faults") or {}).items():
            out.append(f"   Fault reason = {source}: {reason}")
        if d["vips"]:
            out.append(f"   Virtual IP ({len(d['vips'])}):")
            out += [f"     {v}" for v in d["vips"]]
    lvs = snapshot.get("lvs") or {}
    if lvs.get("virtual_servers"):
        out.append("------< LVS Topology >------")
    for vs in lvs.get("virtual_servers") or ():
        out.append(f" VS = {vs.get('name', '')}")
        if "quorum_up" in vs:
            out.append(f"   Quorum = {'up' if vs['quorum_up'] else 'down'}")
        for rs in vs.get("real_servers") or ():
            out.append(f"   RS = {rs.get('name', '')}, weight = {rs.get('weight', '')}, "
                       f"{'alive' if rs.get('up') else 'dead'}")
    trackers = metrics.trackers(snapshot)
    if trackers:
        out.append("------< Tracking >------")
    for tr in trackers:
        out.append(f" {tr.get('kind', '')} = {tr.get('name', '')}, state = {tr.get('state', '')}")
    return "\n".join(out) + "\n"


def write(path: str, text: str) -> None:
    """Write a dump file atomically (a reader never sees half a file), mode 0644 like keepalived's."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
