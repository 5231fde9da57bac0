"""``pyvrrpd diagnose [-i IFACE ...] [--duration SECONDS] [-f CONFIG] [--json]``.

Exit status: 0 healthy, 1 split brain found, 2 other findings, 3 could not run (the reason on stderr, or
as JSON with ``--json``). Usage errors count as "could not run" too, so 2 always means findings.
"""

from __future__ import annotations

import argparse
import sys

from pyvrrpd.diagnose import capture, local
from pyvrrpd.diagnose.analysis import EXIT_CANNOT_RUN, MAX_LISTEN_S, analyse, listen_seconds
from pyvrrpd.diagnose.capture import CannotRun
from pyvrrpd.diagnose.render import error_json, error_text, render_json, render_text
from pyvrrpd.diagnose.wire import Heard

MAX_DURATION_S = 3600.0


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pyvrrpd diagnose",
        description="Listen to VRRP on this host's segments, probe every VIP heard, and explain what is "
                    "wrong (two masters and why, mismatched routers, stale VIPs). Needs root. Never sends "
                    "a VRRP advert and changes nothing on the host.",
        epilog="Exit status: 0 healthy, 1 split brain, 2 other findings, 3 could not run.",
    )
    p.add_argument("-i", "--interface", action="append", metavar="IFACE",
                   help="listen on IFACE (repeatable; default: the configured interfaces with -f, else every "
                        "interface that is up)")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help=f"listen this long before probing (default: three of the slowest advert intervals "
                        f"configured or heard, at least 3 s, at most {MAX_LISTEN_S:g} s)")
    p.add_argument("-f", "--use-file", dest="file", metavar="CONFIG",
                   help="compare with this keepalived.conf (its vrrp_instances)")
    p.add_argument("--config-id", metavar="ID", help="config-id for @ID lines in CONFIG")
    p.add_argument("--status-file", metavar="PATH",
                   help="the local daemon's status as JSON (until pyvrrpd has a status interface)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def main(argv: list[str]) -> int:
    json_out = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.duration is not None and not 0 < args.duration <= MAX_DURATION_S:
            raise _UsageError(f"--duration must be more than 0 and at most {MAX_DURATION_S:g} seconds")
        return _run(args)
    except _UsageError as exc:
        return _cannot_run(f"usage: {exc} (see pyvrrpd diagnose --help)", json_out)
    except CannotRun as exc:
        return _cannot_run(str(exc), json_out)
    except KeyboardInterrupt:
        return _cannot_run("interrupted", json_out)


def _cannot_run(reason: str, json_out: bool) -> int:
    if json_out:
        sys.stdout.write(error_json(reason) + "\n")
    sys.stderr.write(error_text(reason))
    return EXIT_CANNOT_RUN


def _run(args: argparse.Namespace) -> int:
    expected, notes = _expected(args)
    if args.status_file:
        try:
            states = local.read_status_file(args.status_file)
        except ValueError as exc:
            raise CannotRun(str(exc)) from None
    else:
        states = local.query_local_daemon()
    host = capture.read_host()
    interfaces = list(dict.fromkeys(args.interface or ())) \
        or sorted({e.iface for e in expected if e.iface in host.links}) or host.default_interfaces()
    for e in expected:
        if e.iface not in host.links:
            notes.append(f"vrrp_instance {e.name}: interface {e.iface} does not exist here")
    if not interfaces:
        raise CannotRun("no interface to listen on (none is up)")
    configured_us = [e.interval_us for e in expected if e.iface in interfaces]
    cap = capture.capture(
        interfaces, host, duration=args.duration,
        listen_for=lambda heard_us: listen_seconds(configured_us, [heard_us]),
        extra_vips=[(e.iface, vip) for e in expected for vip in sorted(e.vips, key=lambda v: (v.version, v))])
    slowest = max([*configured_us, *(o.advert.interval_us for o in cap.observations if isinstance(o, Heard))],
                  default=0)
    if args.duration is None and 3 * slowest / 1e6 > MAX_LISTEN_S:
        notes.append(f"the slowest interval is {slowest / 1e6:g} s: listened only {MAX_LISTEN_S:g} s "
                     "(use --duration for longer)")
    report = analyse(cap, expected, states, config=args.file)
    report.notes += notes
    if states is None and expected:
        report.notes.append("local daemon state unknown: pyvrrpd has no status interface yet (--status-file "
                            "takes a saved status document)")
    doc = report.to_dict()
    sys.stdout.write(render_json(doc) + "\n" if args.json else render_text(doc))
    return report.exit_status


def _expected(args: argparse.Namespace) -> tuple[list, list[str]]:
    if not args.file:
        return [], []
    from pyvrrpd.config.load import load
    from pyvrrpd.diagnose.expected import expected_instances

    loaded = load(args.file, config_id=args.config_id, host_checks=False)
    if not loaded.ok or loaded.config is None:
        raise CannotRun(f"{args.file}: the configuration has {loaded.errors} error(s); "
                             f"see `pyvrrpd --check-config -f {args.file}`")
    return expected_instances(loaded.config)  # type: ignore[arg-type]
