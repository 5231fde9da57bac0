"""Command line: keepalived's options where they exist, plus pyvrrpd's own.

    pyvrrpd --check-config [-f FILE] [--json] [--strict] [--dump]   (keepalived: -t)
    pyvrrpd -f FILE [-P] [-p PIDFILE] [--control-socket PATH] ...  (run in the foreground)

Heavy imports (anyio, pyroute2, aiohttp, structlog) happen only on the run path,
so ``--check-config`` starts fast.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"

EXIT_OK = 0
EXIT_CONFIG_ERROR = 1
EXIT_USAGE = 2


def _help_formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter, given the terminal width as shutil.get_terminal_size() finds
    it: argparse would import shutil (and bz2, lzma) for that, 2 ms at every start."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return argparse.HelpFormatter(prog, width=(columns or 80) - 2)


def build_parser() -> argparse.ArgumentParser:
    from pyvrrpd import __version__

    p = argparse.ArgumentParser(
        prog="pyvrrpd",
        description="VRRP and LVS health-checker daemon that runs keepalived's configuration.",
        formatter_class=_help_formatter,
    )
    p.add_argument("-f", "--use-file", dest="file", default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"configuration file (default {DEFAULT_CONFIG})")
    p.add_argument("-t", "--check-config", "--config-test", dest="check", action="store_true",
                   help="check the configuration, print every problem as FILE:LINE:COL and exit")
    p.add_argument("--json", action="store_true",
                   help="with --check-config: print the result as JSON on stdout and nothing else")
    p.add_argument("--strict", action="store_true",
                   help="with --check-config: treat warnings as errors")
    p.add_argument("--dump", action="store_true",
                   help="print the effective configuration (after includes, macros and conditionals)")
    p.add_argument("--no-host-checks", action="store_true",
                   help="skip checks that depend on this host (interfaces, scripts)")
    p.add_argument("-i", "--config-id", metavar="ID",
                   help="config-id for @ID conditional lines (default: host name up to the first dot)")
    p.add_argument("-P", "--vrrp", action="store_true", help="run only the VRRP subsystem")
    p.add_argument("-C", "--check", dest="checkers_only", action="store_true",
                   help="run only the health-checker subsystem")
    p.add_argument("-p", "--pid", metavar="FILE", help="write the daemon's pid to FILE")
    p.add_argument("-r", "--vrrp_pid", metavar="FILE", help="accepted for keepalived compatibility (one process)")
    p.add_argument("-c", "--checkers_pid", metavar="FILE", help="accepted for keepalived compatibility (one process)")
    p.add_argument("--control-socket", metavar="PATH", help="status/metrics socket path")
    p.add_argument("--log-format", choices=("auto", "console", "json"), default="auto",
                   help="log format (auto: console on a TTY, JSON otherwise)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    # keepalived flags that make no difference to a foreground, single-process daemon
    for flag, long in (("-n", "--dont-fork"), ("-l", "--log-console"), ("-D", "--log-detail")):
        p.add_argument(flag, long, action="store_true", help="accepted for keepalived compatibility")
    p.add_argument("-v", "--version", action="version", version=f"pyvrrpd {__version__}")
    return p


def check_config(args: argparse.Namespace, keep: list | None = None) -> int:
    """``keep``: a list that gets the loaded config and what load() made on the way,
    instead of their being freed on return (see :func:`pyvrrpd.config.load.load`)."""
    # A check makes many objects and no garbage cycles: the cyclic collector (during the
    # imports too) would only rescan them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _check_config(args, keep)
    finally:
        if gc_was_enabled:
            gc.enable()


def _check_config(args: argparse.Namespace, keep: list | None) -> int:
    from pyvrrpd.config.diagnostics import render_all, to_json
    from pyvrrpd.config.load import load

    loaded = load(
        args.file,
        config_id=args.config_id,
        host_checks=not args.no_host_checks,
        strict=args.strict,
        keep=keep,
    )
    if keep is not None:
        keep.append(loaded)
    if args.json:
        sys.stdout.write(to_json(loaded.diagnostics) + "\n")
        return EXIT_OK if loaded.ok else EXIT_CONFIG_ERROR
    if args.dump:
        from pyvrrpd.config.lexer import dump_lines

        sys.stdout.write(dump_lines(list(loaded.lines)))
    if loaded.diagnostics:
        color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
        sys.stderr.write(render_all(loaded.diagnostics, color=color) + "\n")
    notes = len(loaded.diagnostics) - loaded.errors - loaded.warnings
    verdict = "OK" if loaded.ok else "FAILED"
    sys.stderr.write(
        f"{args.file}: {verdict}: {loaded.errors} error(s), {loaded.warnings} warning(s), {notes} note(s)\n"
    )
    return EXIT_OK if loaded.ok else EXIT_CONFIG_ERROR


def main(argv: list[str] | None = None, *, fast_exit: bool = False) -> int:
    """Run the command line. ``fast_exit`` (the console entry points) ends a config check with
    ``os._exit`` once the output is flushed: a check holds no resources, and tearing down the
    interpreter would only free a large config object by object (10-15 ms on a big config);
    so would the returns from load() and check_config(), unless what they made is kept here."""
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["genhash"]:
        from pyvrrpd.checkers.genhash import main as genhash

        return genhash(words[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.check or args.json or args.dump:
            kept: list | None = [] if fast_exit else None
            code = check_config(args, kept)
            if fast_exit:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            return code
        from pyvrrpd.daemon.supervisor import run_daemon

        return run_daemon(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


def entry() -> int:
    """The `pyvrrpd` console script and `python -m pyvrrpd`."""
    return main(fast_exit=True)


if __name__ == "__main__":
    raise SystemExit(entry())
