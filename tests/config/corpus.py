"""Run `pyvrrpd --check-config` over the keepalived config corpus and compare with keepalived 2.2.7.

The corpus (../shared/corpus/keepalived-conf) holds real configs and keepalived 2.2.7's own `-t`
output, made inside a network namespace holding only `lo`. This module does the same: run it as a
script inside `unshare -n` (the test does) and it prints one JSON object with per-config results.

    unshare -n .venv/bin/python tests/config/corpus.py [--only NAME ...] > results.json
    .venv/bin/python tests/config/corpus.py --report results.json   # human summary of disagreements
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.normpath(os.path.join(REPO, "..", "shared", "corpus", "keepalived-conf"))
CONFIGS = os.path.join(CORPUS, "configs")
CONFIG_ID = "pyvrrpd-corpus"  # matches no @ID in the corpus, like the verdict host's name
# CPU seconds per config before it counts as a hang: CPU time, not wall time, so that a loaded
# machine (2 cores shared by several jobs) does not make a slow config look like a hang.
PER_CONFIG_SECONDS = 2

_KA_LINE = re.compile(r"^\((?:(?P<file>.+?): )?Line (?P<line>\d+)\) (?P<msg>.*)$")


def verdicts() -> list[dict]:
    rows = []
    with open(os.path.join(CORPUS, "verdicts.tsv")) as f:
        next(f)
        for raw in f:
            name, code, errors, first = (raw.rstrip("\n").split("\t") + ["", "", ""])[:4]
            rows.append({"file": name, "exit": int(code), "errors": int(errors), "first": first})
    return rows


def keepalived_lines(name: str) -> dict[tuple[str, int], list[str]]:
    """(absolute file, line) -> messages keepalived printed for it (repeats removed)."""
    out: dict[tuple[str, int], list[str]] = {}
    main = os.path.join(CONFIGS, name)
    with open(os.path.join(CORPUS, "output", name + ".txt"), errors="replace") as f:
        for raw in f:
            m = _KA_LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            path = m.group("file")
            path = main if path is None else os.path.normpath(path.replace("<DIR>", CONFIGS))
            key = (path, int(m.group("line")))
            msgs = out.setdefault(key, [])
            if m.group("msg") not in msgs:
                msgs.append(m.group("msg"))
    return out


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def check_one(name: str) -> dict:
    from pyvrrpd.config.load import load

    path = os.path.join(CONFIGS, name)
    signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, PER_CONFIG_SECONDS)
    t0 = time.perf_counter()
    try:
        loaded = load(path, config_id=CONFIG_ID)
        diags = [
            {
                "file": os.path.normpath(os.path.join(CONFIGS, d.span.source.path)) if d.span else None,
                "line": d.span.line if d.span else None,
                "severity": str(d.severity),
                "message": d.message,
            }
            for d in loaded.diagnostics
        ]
        # keepalived 2.2.7 applies net_namespace even under -t; the namespace does not exist where
        # the verdicts were made, so keepalived stopped silently after global_defs with exit 0:
        # for such a config "exit 0" says nothing about the rest of the file.
        netns = any(line.words and line.first == "net_namespace" for line in loaded.lines)
        result = {"name": name, "status": "ok", "diagnostics": diags, "net_namespace": netns}
    except _Timeout:
        result = {"name": name, "status": "hang"}
    except BaseException:  # the point is to find every escape
        result = {"name": name, "status": "crash", "traceback": traceback.format_exc()}
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    result["seconds"] = round(time.perf_counter() - t0, 4)
    return result


def compare(row: dict, result: dict) -> dict:
    """Agreement of one config: accepted-vs-errors and line matches."""
    ka = keepalived_lines(row["file"])
    ours = result.get("diagnostics", [])
    flagged = {(d["file"], d["line"]) for d in ours if d["severity"] in ("error", "warning")}
    errors = [d for d in ours if d["severity"] == "error"]
    missed = {f"{os.path.relpath(k[0], CONFIGS)}:{k[1]}": v for k, v in ka.items() if k not in flagged}
    return {
        "name": row["file"],
        "ka_exit": row["exit"],
        "net_namespace": result.get("net_namespace", False),
        "status": result["status"],
        "traceback": result.get("traceback"),
        "seconds": result.get("seconds"),
        "our_errors": len(errors),
        "first_error": (f"{errors[0]['line']}: {errors[0]['message']}" if errors else None),
        "ka_lines": len(ka),
        "matched_lines": len(ka) - len(missed),
        "missed": missed,
    }


def run(names: list[str] | None = None) -> dict:
    rows = [r for r in verdicts() if names is None or r["file"] in names]
    os.chdir(CONFIGS)  # keepalived's verdicts were made from inside configs/
    per = [compare(r, check_one(r["file"])) for r in rows]
    accepted = [p for p in per if p["ka_exit"] == 0 and not p["net_namespace"]]
    total_lines = sum(p["ka_lines"] for p in per)
    matched = sum(p["matched_lines"] for p in per)
    return {
        "configs": len(per),
        "crashes": [p["name"] for p in per if p["status"] == "crash"],
        "hangs": [p["name"] for p in per if p["status"] == "hang"],
        "ka_accepted": len(accepted),
        "ka_accepted_unchecked_net_namespace": [
            p["name"] for p in per if p["ka_exit"] == 0 and p["net_namespace"]
        ],
        "ka_accepted_with_our_errors": [p["name"] for p in accepted if p["our_errors"]],
        "ka_lines": total_lines,
        "matched_lines": matched,
        "line_agreement": round(matched / total_lines, 4) if total_lines else 1.0,
        "max_seconds": max((p["seconds"] or 0) for p in per) if per else 0,
        "per_config": per,
    }


def report(summary: dict) -> str:
    out = [
        f"configs: {summary['configs']}, crashes: {len(summary['crashes'])}, hangs: {len(summary['hangs'])}",
        f"keepalived-accepted configs: {summary['ka_accepted']}, of which pyvrrpd reports errors in: "
        f"{len(summary['ka_accepted_with_our_errors'])} {summary['ka_accepted_with_our_errors'][:10]}",
        f"keepalived 'Line N' places: {summary['ka_lines']}, matched by a pyvrrpd error/warning: "
        f"{summary['matched_lines']} ({100 * summary['line_agreement']:.2f} %)",
        f"keepalived exit 0 but stopped early at net_namespace (not counted as accepted): "
        f"{len(summary['ka_accepted_unchecked_net_namespace'])}",
        f"slowest config: {summary['max_seconds']} s",
    ]
    by_msg: dict[str, int] = {}
    for p in summary["per_config"]:
        for place, msgs in p["missed"].items():
            key = re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'X'", msgs[0]))
            by_msg[key] = by_msg.get(key, 0) + 1
    if by_msg:
        out.append("missed keepalived messages (by shape):")
        for msg, n in sorted(by_msg.items(), key=lambda kv: -kv[1])[:40]:
            out.append(f"  {n:5d}  {msg}")
    for name in summary["crashes"]:
        p = next(x for x in summary["per_config"] if x["name"] == name)
        out.append(f"crash: {name}\n{p['traceback']}")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--report", metavar="RESULTS_JSON")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            print(report(json.load(f)))
        return 0
    sys.path.insert(0, REPO)
    summary = run(args.only)
    json.dump(summary, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
