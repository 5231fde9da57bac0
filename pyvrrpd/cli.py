"""Command line: keepalived's options where they exist, plus pyvrrpd's own.

    pyvrrpd --check-config [-f FILE] [--json] [--strict] [--dump]   (keepalived: -t)
    pyvrrpd -f FILE [-P] [-p PIDFILE] [--control-socket PATH] ...  (run in the foreground)
    pyvrrpd status [--control-socket PATH] [--json]                (the running daemon's state)
    pyvrrpd diagnose [-i IFACE ...] [--duration S] [-f FILE] [--json] (explain split brain; see docs/diagnose.md)

Heavy imports (anyio, pyroute2, structlog) happen only on the run path,
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


class _Unsupported(argparse.Action):
    """A keepalived option pyvrrpd does not implement: a usage error that names it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        names = "/".join(self.option_strings)
        parser.error(f"keepalived's option {names} is not supported by pyvrrpd")


SIGNAL_FUNCTIONS = {"STOP": "SIGTERM", "RELOAD": "SIGHUP", "DATA": "SIGUSR1", "STATS": "SIGUSR2", "JSON": None}


class _Signum(argparse.Action):
    """keepalived's --signum: print the signal number a function is sent with, for scripts."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import signal

        name = str(values).upper()
        if name not in SIGNAL_FUNCTIONS:
            parser.error(f"--signum: unknown or unsupported signal function '{values}' "
                         f"(one of {', '.join(SIGNAL_FUNCTIONS)})")
        sig = SIGNAL_FUNCTIONS[name]
        print(int(signal.SIGRTMIN) + 2 if sig is None else int(getattr(signal, sig)))
        parser.exit(EXIT_OK)


def _listen(text: str) -> tuple[str, int]:
    from pyvrrpd.observe.control import parse_listen

    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _umask(text: str) -> int:
    """keepalived reads the umask as a C number: 0177 is octal, 0x7f hex, 127 decimal."""
    try:
        value = int(text, 8) if text.startswith("0") and not text.lower().startswith("0x") else int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"'{text}' is not a umask (0 to 0777)")
    return value


# `pyvrrpd NAME ...`: subcommands, each a module with main(argv) -> exit status
SUBCOMMANDS = {"status": "pyvrrpd.observe.status", "diagnose": "pyvrrpd.diagnose.command",
               "genhash": "pyvrrpd.checkers.genhash"}


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
    p.add_argument("--control-socket", metavar="PATH", default=None,
                   help="unix socket of the status/metrics endpoint (default /run/pyvrrpd/control.sock; "
                        "'none': no socket)")
    p.add_argument("--listen", metavar="HOST:PORT", type=_listen,
                   help="also serve /status and /metrics over TCP on HOST:PORT (use a loopback address)")
    p.add_argument("--dump-dir", metavar="DIR",
                   help="directory for the SIGUSR1/SIGUSR2/SIGRTMIN+2 dump files (default $TMPDIR, else /tmp)")
    p.add_argument("-u", "--umask", type=_umask, metavar="MASK", help="umask for files the daemon creates")
    p.add_argument("--signum", metavar="SIGFUNC", action=_Signum,
                   help="print the number of the signal for STOP, RELOAD, DATA, STATS or JSON and exit")
    p.add_argument("--log-format", choices=("auto", "console", "json"), default="auto",
                   help="log format (auto: console on a TTY, JSON otherwise)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    # keepalived flags that make no difference to a foreground, single-process daemon that logs to stderr
    for flag, long in (("-n", "--dont-fork"), ("-l", "--log-console"), ("-D", "--log-detail"),
                       ("-G", "--no-syslog"), ("-B", "--no_bfd"), (None, "--all")):
        p.add_argument(*(f for f in (flag, long) if f), action="store_true",
                       help="accepted for keepalived compatibility; changes nothing")
    p.add_argument("-S", "--log-facility", metavar="FACILITY",
                   help="accepted for keepalived compatibility (logs go to stderr / the journal)")
    # keepalived options pyvrrpd does not implement: refused by name rather than silently ignored
    p.add_argument("-V", "--dont-release-vrrp", action="store_true",
                   help="on stop, keep the virtual addresses, routes, rules and VMACs (no priority-0 advert)")
    p.add_argument("-I", "--dont-release-ipvs", action="store_true",
                   help="on stop, keep the IPVS table pyvrrpd programmed")
    for flags, nargs in ((("-X", "--release-vips"), 0), (("-R", "--dont-respawn"), 0),
                         (("-d", "--dump-conf"), 0), (("-a", "--address-monitoring"), 0), (("-x", "--snmp"), 0),
                         (("-A", "--snmp-agent-socket"), 1), (("-s", "--namespace"), 1), (("-m", "--core-dump"), 0),
                         (("-M", "--core-dump-pattern"), "?"), (("-e", "--all-config"), 0), (("-b", "--bfd_pid"), 1),
                         (("-g", "--log-file"), "?"), (("--flush-log-file",), 0), (("-T", "--genhash"), 0),
                         (("--no-mem-check",), 0), (("--perf",), "?"), (("--debug",), "?"),
                         (("--ignore-sigint",), 0)):
        p.add_argument(*flags, nargs=nargs, action=_Unsupported, help=argparse.SUPPRESS)
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
    if loaded.config is not None and loaded.config.instances:
        # The daemon's verdict too: what it would refuse to start with is an error here.
        from pyvrrpd.daemon.verdict import verdict

        loaded = verdict(loaded)
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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        try:
            return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
        except KeyboardInterrupt:
            return 130
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
        from pyvrrpd.daemon.root import run_daemon

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
