"""Config diagnostics as data: every problem has a severity, a span and a message.

Rendering follows the compiler convention operators know from gcc and rustc::

    conf/x.conf:12:5: error: priority must be 1-254
        priority 300
        ^~~~~~~~~~~~
    note: conf/x.conf was included from /etc/keepalived/keepalived.conf:3

Nothing here reads files on its own except :func:`render`, which asks the
span's :class:`Source` for the text of a line (the lexer keeps it).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """Ordered so that ``max()`` gives the worst one."""

    NOTE = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:  # "error", "warning", "note"
        return self.name.lower()


class Source:
    """One file that was read (the main config or an included file).

    Identity semantics on purpose: two includes of one file are two sources
    with different ``included_from`` spans.
    """

    __slots__ = ("path", "display", "included_from", "lines")

    def __init__(
        self,
        path: str,
        display: str | None = None,
        included_from: "Span | None" = None,
        lines: tuple[str, ...] = (),
    ) -> None:
        self.path = path  # absolute path as opened
        self.display = display if display is not None else path  # as the user wrote it
        self.included_from = included_from
        self.lines = lines  # physical lines, without line ends (for carets)

    def line_text(self, line: int) -> str | None:
        if 1 <= line <= len(self.lines):
            return self.lines[line - 1]
        return None

    def include_chain(self) -> list["Span"]:
        """Spans of the include directives that led here, innermost first."""
        chain: list[Span] = []
        span = self.included_from
        seen = 0
        while span is not None and seen < 1000:
            chain.append(span)
            span = span.source.included_from
            seen += 1
        return chain

    def __repr__(self) -> str:
        return f"Source({self.display!r})"


@dataclass(frozen=True, slots=True)
class Span:
    """A place in a source: 1-based line and column; ``end_col`` is exclusive."""

    source: Source
    line: int
    col: int = 1
    end_col: int | None = None

    @property
    def path(self) -> str:
        return self.source.display

    def __str__(self) -> str:
        return f"{self.source.display}:{self.line}:{self.col}"


_new = object.__new__
_set_source = Span.source.__set__
_set_line = Span.line.__set__
_set_col = Span.col.__set__
_set_end_col = Span.end_col.__set__


def new_span(source: Source, line: int, col: int, end_col: int | None) -> Span:
    """``Span(source, line, col, end_col)`` at half the cost of the frozen dataclass's
    ``__init__``: the lexer makes one for every statement the model keeps.

    The span gets a fresh copy of ``line`` (``line + 0`` makes a new int above 256): the
    lexer's line numbers were made among its lines, and a model that kept them would keep
    those lines' memory mapped once they are freed (a few ints in every 1 MiB pymalloc
    arena). 10,000 real servers with TCP_CHECK: RSS after the load and ``without_text()``
    61.3 -> 54.4 MiB (14 arenas were kept for 570 KiB of ints).
    """
    span = _new(Span)
    _set_source(span, source)
    _set_line(span, line + 0)
    _set_col(span, col)
    _set_end_col(span, end_col)
    return span


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    span: Span | None  # None only for problems that belong to no file (e.g. bad command line)
    message: str
    notes: tuple[str, ...] = field(default=())

    def as_json(self) -> dict:
        return {
            "file": self.span.source.display if self.span else None,
            "line": self.span.line if self.span else None,
            "col": self.span.col if self.span else None,
            "severity": str(self.severity),
            "message": self.message,
        }


def error(span: Span | None, message: str, *notes: str) -> Diagnostic:
    return Diagnostic(Severity.ERROR, span, message, notes)


def warning(span: Span | None, message: str, *notes: str) -> Diagnostic:
    return Diagnostic(Severity.WARNING, span, message, notes)


def note(span: Span | None, message: str, *notes: str) -> Diagnostic:
    return Diagnostic(Severity.NOTE, span, message, notes)


def not_supported(span: Span | None, name: str, where: str | None, uses: int, *notes: str) -> Diagnostic:
    """The one warning for anything pyvrrpd accepts but does not act on yet, reported once per
    config at its first use (the parser's for keywords, the build's for the rest)."""
    more = (f"{uses - 1} more use{'s' if uses > 2 else ''} not reported",) if uses > 1 else ()
    inside = f" in {where}" if where else ""
    return warning(span, f"`{name}`{inside} is accepted but not supported yet", *notes, *more)


def sort_key(d: Diagnostic) -> tuple:
    """Order of appearance: by include position, then line and column."""
    if d.span is None:
        return ((), 0, 0)
    chain = [(s.source.display, s.line) for s in reversed(d.span.source.include_chain())]
    return (tuple(chain) + ((d.span.source.display, d.span.line),), d.span.line, d.span.col)


def render(d: Diagnostic, *, color: bool = False) -> str:
    """Human form: ``FILE:LINE:COL: severity: message``, source line, caret, notes."""
    sev = str(d.severity)
    if color:
        colors = {"error": "\x1b[1;31m", "warning": "\x1b[1;35m", "note": "\x1b[1;36m"}
        sev = f"{colors[sev]}{sev}\x1b[0m"
    if d.span is None:
        out = [f"pyvrrpd: {sev}: {d.message}"]
    else:
        out = [f"{d.span}: {sev}: {d.message}"]
        text = d.span.source.line_text(d.span.line)
        if text is not None and text.strip():
            shown = text.expandtabs(1)
            if len(shown) > 200:
                shown = shown[:200] + "…"
            out.append(f"    {shown}")
            col = max(1, d.span.col)
            width = 1
            if d.span.end_col is not None and d.span.end_col > col:
                width = d.span.end_col - col
            if col - 1 <= len(shown):
                out.append("    " + " " * (col - 1) + "^" + "~" * (min(width, 200) - 1))
        for inc in d.span.source.include_chain():
            out.append(f"    included from {inc}")
    for n in d.notes:
        out.append(f"    note: {n}")
    return "\n".join(out)


def render_all(diags: Iterable[Diagnostic], *, color: bool = False) -> str:
    return "\n".join(render(d, color=color) for d in diags)


def to_json(diags: Iterable[Diagnostic]) -> str:
    diags = list(diags)
    ok = not any(d.severity is Severity.ERROR for d in diags)
    import json  # only for --json: not worth importing at every start

    return json.dumps({"ok": ok, "diagnostics": [d.as_json() for d in diags]}, indent=2)
