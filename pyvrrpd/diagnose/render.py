"""The report as text for people or JSON for machines. Both render the same dict (``Report.to_dict()``),
so they cannot disagree, and the text of a saved JSON report is exactly what the command would print."""

from __future__ import annotations

import json
import textwrap

WIDTH = 100
_LABEL = {"split_brain": "SPLIT BRAIN", "warning": "WARNING", "info": "INFO"}
_COLUMNS = ("source", "MAC", "ver", "prio", "interval", "auth", "TTL", "checksum", "adverts", "per s", "VIPs")


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=False)


def render_text(report: dict) -> str:
    lines = [_headline(report), ""]
    lines += _routers(report)
    lines += _vips(report)
    lines += _findings(report)
    lines += _malformed(report)
    if report["notes"]:
        lines += ["Notes"] + [f"  - {n}" for n in report["notes"]] + [""]
    lines.append(f"Result: {report['verdict']} (exit status {report['exit_status']})")
    return "\n".join(lines) + "\n"


def error_text(reason: str) -> str:
    return f"pyvrrpd diagnose: could not run: {reason}\n"


def error_json(reason: str) -> str:
    return json.dumps({"format": "pyvrrpd-diagnose/1", "verdict": "could not run", "exit_status": 3,
                       "error": reason}, indent=2)


def _headline(report: dict) -> str:
    where = ", ".join(report["interfaces"]) or "no interface"
    config = f"; config {report['config']}" if report["config"] else ""
    probes = f", probed {len(report['vips'])} VIP(s) for {report['probed_s']:g} s" if report["vips"] else ""
    return f"pyvrrpd diagnose: listened {report['listened_s']:g} s on {where}{probes}{config}"


def _routers(report: dict) -> list[str]:
    if not report["routers"]:
        return ["No VRRP advert heard.", ""]
    lines = ["Routers heard (* = master now)"]
    for g in report["routers"]:
        head = f"  {g['interface']} IPv{g['family']} VRID {g['vrid']}"
        if g["instance"]:
            head += f"  (config: {g['instance']})"
        lines.append(head)
        if g["local_state"]:
            lines.append(f"    this host: {g['local_state']}")
        if not g["advertisers"]:
            lines += ["    no advert heard", ""]
            continue
        rows = [list(_COLUMNS)] + [_row(a) for a in g["advertisers"]]
        widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS) - 1)]
        for r in rows:
            lines.append("    " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
        lines.append("")
    return lines


def _row(a: dict) -> list[str]:
    source = a["source"] + (" *" if a["master"] else "") + (" (this host)" if a["this_host"] else "")
    return [source, a["mac"], f"v{a['version']}", str(a["priority"]), f"{a['interval_s']:g} s", a["auth"] or "-",
            ",".join(map(str, a["ttl"])), a["checksum_form"] or "-", str(a["adverts"]), f"{a['per_second']:g}",
            ", ".join(a["vips"]) or "-"]


def _vips(report: dict) -> list[str]:
    if not report["vips"]:
        return []
    lines = ["VIPs probed (ARP / Neighbor Solicitation)"]
    for v in report["vips"]:
        macs = ", ".join(v["held_by"]) or "nobody answered"
        held = " (held by this host)" if v["held_by_this_host"] else ""
        lines.append(f"  {v['address']} on {v['interface']}{held}: {macs}")
    return lines + [""]


def _findings(report: dict) -> list[str]:
    if not report["findings"]:
        return ["Findings: none", ""]
    lines = ["Findings"]
    for f in report["findings"]:
        lines.append(f"  [{_LABEL[f['severity']]}] {f['kind']}: {f['where']}: {f['summary']}")
        lines += _wrap("Why: " + f["explanation"])
        lines += _wrap("What to do: " + f["action"])
    return lines + [""]


def _malformed(report: dict) -> list[str]:
    if not report["malformed"]:
        return []
    lines = ["Malformed frames"]
    for m in report["malformed"]:
        lines.append(f"  {m['interface']} {m['source'] or '?'} ({m['mac']}): {m['reason']} x{m['count']}: "
                     f"{m['detail']}")
    return lines + [""]


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent="      ", subsequent_indent="        ",
                         break_on_hyphens=False, break_long_words=False)
