"""``lvs_sync_daemon``: the kernel's IPVS connection-sync daemon following a VRRP instance (pure).

keepalived 2.2.7 (global_parser.c ``lvs_syncd_handler``, vrrp_data.c, ipvswrapper.c ``ipvs_syncd_master``/
``ipvs_syncd_backup``; it runs this in its VRRP process):

    lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR]

* the instance entering MASTER: stop the backup sync daemon, start the master one;
  entering BACKUP or FAULT (leaving MASTER): stop the master one, start the backup one;
  on stop both are stopped;
* ``id`` (the sync id, 0-255) defaults to the instance's ``virtual_router_id``; ``maxlen``, ``port``,
  ``ttl`` and ``group`` are left to the kernel's defaults when not given;
* an instance that does not exist clears the whole setting (keepalived: "Unable to find vrrp instance
  %s for lvs_syncd - clearing lvs_syncd config").
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pyvrrpd.config import model as m

MASTER, BACKUP = "master", "backup"
IP_VS_STATE = {MASTER: 1, BACKUP: 2}
_LIMITS = {"id": (0, 255), "maxlen": (1, 65535 - 20 - 8), "port": (1, 65535), "ttl": (1, 255)}


@dataclass(frozen=True, slots=True)
class SyncdConfig:
    ifname: str
    instance: str
    syncid: int
    maxlen: int | None = None
    port: int | None = None
    ttl: int | None = None
    group: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None


def sync_config(config: m.Config) -> tuple[SyncdConfig | None, list[str]]:
    """The sync daemon's settings from ``global_defs lvs_sync_daemon`` (None: no sync daemon), and why
    parts were ignored (the config build has warned about bad values already, at their place)."""
    words = list(config.global_defs.lvs_sync_daemon)
    notes: list[str] = []
    if len(words) < 2:
        if words:
            notes.append("lvs_sync_daemon: no VRRP instance given; no sync daemon")
        return None, notes
    ifname, rest = words[0], words[1:]
    name = None
    if rest[0] not in _LIMITS and rest[0] not in ("group", "inst"):
        name, rest = rest[0], rest[1:]
    if "inst" in rest[:-1]:  # also spelled `inst VRRP_INSTANCE`, anywhere among the options
        at = rest.index("inst")
        name, rest = rest[at + 1], rest[:at] + rest[at + 2:]
    if name is None:
        notes.append("lvs_sync_daemon: no VRRP instance given; no sync daemon")
        return None, notes
    instance = next((i for i in config.instances if i.name == name), None)
    if instance is None:
        notes.append(f"Unable to find vrrp instance {name} for lvs_syncd - clearing lvs_syncd config")
        return None, notes
    kw: dict = {}
    i = 0
    if rest and rest[0].isdigit():  # legacy: lvs_sync_daemon IF VRRP_INSTANCE SYNC_ID
        rest = ["id", *rest]
    while i + 1 < len(rest):
        opt, value = rest[i], rest[i + 1]
        if opt in _LIMITS:
            try:
                v = int(value)
            except ValueError:
                v = None
            if v is not None and _LIMITS[opt][0] <= v <= _LIMITS[opt][1]:
                kw["syncid" if opt == "id" else opt] = v
        elif opt == "group":
            try:
                group = ipaddress.ip_address(value)
            except ValueError:
                group = None
            if group is not None and group.is_multicast:
                kw["group"] = group
        else:
            i += 1
            continue
        i += 2
    kw.setdefault("syncid", instance.vrid)
    return SyncdConfig(ifname=ifname, instance=name, **kw), notes


def wanted(state: str) -> str | None:
    """The sync daemon role an instance state asks for (None: none, at STOP/DELETED)."""
    if state == "MASTER":
        return MASTER
    if state in ("BACKUP", "FAULT"):
        return BACKUP
    return None


def steps(running: frozenset[str], role: str | None) -> list[tuple[str, str]]:
    """What to do to go from the roles running to ``role``: ("stop"|"start", role) in order (keepalived
    stops the other role first, then starts this one)."""
    out = [("stop", r) for r in (BACKUP, MASTER) if r in running and r != role]
    if role is not None and role not in running:
        out.append(("start", role))
    return out
