"""One call from a file name to a checked model: read -> parse -> build.

This is the only entry point the CLI and the daemon use; reload uses it too, so
a config that ``--check-config`` accepts is exactly the config the daemon runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pyvrrpd.collector import burst
from pyvrrpd.config.diagnostics import Diagnostic, Severity, sort_key


@dataclass(frozen=True, slots=True)
class Loaded:
    config: object | None  # model.Config, None when the file could not be read at all
    diagnostics: tuple[Diagnostic, ...]
    lines: tuple = ()  # lexer.Line, for --dump

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def without_text(self) -> "Loaded":
        """The same config and diagnostics without the source text, for a daemon that runs it.

        The model's spans keep their files' physical lines (for the excerpt under a diagnostic),
        and ``lines`` the logical lines: a running daemon needs neither, since a reload reads the
        file again and renders its own diagnostics from that text. A span still says FILE:LINE:COL;
        only the excerpt is gone. 10,000 real servers with TCP_CHECK: RSS 106.0 -> 94.2 MiB in
        bench/checkers.py (measured after its snapshot of every probe, as it was then read).
        """
        sources = {line._source for line in self.lines}
        for source in tuple(sources):
            sources.update(span.source for span in source.include_chain())
        for source in sources:
            source.lines = ()
        return Loaded(self.config, self.diagnostics)


def load(
    path: str,
    *,
    config_id: str | None = None,
    host_checks: bool = True,
    strict: bool = False,
    include_check: str | None = None,
    keep: list | None = None,
) -> Loaded:
    """Read, parse and build ``path``. Never raises for bad input.

    Safe to call in a running daemon, from any thread: it reads files and makes new objects.
    The only process-wide thing it touches is the cyclic collector, paused while it runs and
    then left as it was; objects frozen with ``pyvrrpd.collector.freeze()`` stay frozen.

    ``keep``: a list that gets the objects made on the way (the parser's tree, the
    builder's drafts) instead of their being freed on return. A process that exits
    right after (``--check-config``) passes one it never frees: freeing the ~200,000
    objects of a 100,000-line config one by one takes 10-15 ms.
    """
    from pyvrrpd.config.build import LocalHost, build
    from pyvrrpd.config.lexer import read_config
    from pyvrrpd.config.parser import parse

    # A config is a burst of small objects that all stay alive: the cyclic garbage collector
    # would only rescan them (it took about half of the build time on large configs), and the first
    # collection after the load would scan all of it (60 ms for 100,000 lines): see pyvrrpd.collector.
    with burst():
        lines, diags = read_config(path, config_id=config_id, include_check=include_check)
        root, parse_diags = parse(lines)
        diags.extend(parse_diags)
        config, build_diags = build(root, host=LocalHost() if host_checks else None, keep=keep)
        diags.extend(build_diags)
        if keep is not None:
            keep.append(root)
    if strict:
        diags = [
            replace(d, severity=Severity.ERROR, notes=d.notes + ("a warning, made an error by --strict",))
            if d.severity is Severity.WARNING
            else d
            for d in diags
        ]
    diags.sort(key=sort_key)
    return Loaded(config, tuple(diags), tuple(lines))
