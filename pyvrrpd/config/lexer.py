"""keepalived 2.2.7 config reading: files, includes, macros, conditionals -> logical lines.

CONTRACT (other modules rely on exactly this):

* :func:`read_config` reads the main file and everything it includes and returns
  ``(lines, diagnostics)``. It never raises for bad input (missing file, directory,
  binary data, huge file, include loop, self-referencing ``$DEF``): it returns
  diagnostics instead.
* Each :class:`Line` is one *logical* line as keepalived's ``read_line()`` hands it to
  the keyword parser: comments removed, ``$NAME``/``${NAME}`` expanded, ``@id`` lines
  filtered, ``~SEQ``/``~LST`` replayed, include directives replaced by the lines of the
  included files, and every ``{`` or ``}`` that is not inside double quotes split into
  a line of its own (so ``a b {`` gives the lines ``a b`` and ``{``; ``x { y }`` gives
  ``x``, ``{``, ``y``, ``}``). Blank lines are dropped.
* ``Line.words`` are the words as keepalived's normal tokenizer splits them (whitespace
  separated, only double quotes group, the quotes removed).
* ``Line.script_words(i)`` re-tokenizes the text from word ``i`` on with the rules of
  keepalived's *script* keywords (single and double quotes, shell-like escapes);
  ``Line.script_problem(i)`` says what was wrong if that text is malformed.

Where pyvrrpd deliberately differs from keepalived 2.2.7:

* A missing, unreadable, binary, oversized or executable main file is an error
  (keepalived -t exits 0 for some of these).
* ``$A=$A`` and other recursive definitions are errors showing the chain (2.2.7 hangs).
* An ``include`` that only appears after ``@`` or ``$`` processing is dropped with a
  warning (keepalived documents that it does not work). The file name of a real
  include directive does get ``$NAME`` substitution, as in 2.2.7 (``${_PWD}/x.conf``).
* ``include_check`` is honoured wherever it appears, not only inside ``global_defs``.

Three modules: this one reads files and follows includes, and splits physical lines
into logical ones; :mod:`pyvrrpd.config.tokens` holds :class:`Line` and :class:`Word`
(keepalived's tokenizers, columns and spans); :mod:`pyvrrpd.config.macros` does what
``@id``, ``$NAME`` and ``~SEQ``/``~LST`` do to a line. ``Line`` and ``Word`` are
importable from here too.

Speed: a 100,000-line configuration is read in a few tens of milliseconds. Each
distinct plain physical line is classified once (configurations repeat lines), plain
lines are stored without splitting them, and :class:`Line` and :class:`Word` build
their words and spans on first use: the parser splits a plain line with
``str.split()``, and most words never need a span.
"""

from __future__ import annotations

import gc
import os
import re
import stat
from collections.abc import Iterable

from pyvrrpd.config.diagnostics import Diagnostic, Source, Span, error, note, warning
from pyvrrpd.config.macros import DROP, Macros
from pyvrrpd.config.tokens import (
    TOKENIZE,
    Cols,
    Line,
    Word,
    column,
    cols_slice,
    decomment,
    make_line,
    printable,
    skip_blanks,
)

__all__ = ["Line", "Word", "default_config_id", "dump_lines", "read_config"]

MAX_LINE_BYTES = 1022  # keepalived's fgets() buffer is 1024 bytes: the line, "\n" and a NUL
MAX_FILE_BYTES = 32 << 20
MAX_TOTAL_BYTES = 64 << 20
MAX_INCLUDE_DEPTH = 32
MAX_NESTING = 40  # nested replays (~SEQ inside a multi-line definition inside ...)
MAX_BRACE_ALTERNATIVES = 1024

# include_check flags (keepalived's INCLUDE_R/M/W/B)
INCLUDE_R, INCLUDE_M, INCLUDE_W, INCLUDE_B = 1, 2, 4, 8
INCLUDE_ALL = INCLUDE_R | INCLUDE_M | INCLUDE_W | INCLUDE_B
_VARIANTS = {
    "r": INCLUDE_R,
    "m": INCLUDE_R | INCLUDE_M,
    "w": INCLUDE_R | INCLUDE_M | INCLUDE_W,
    "b": INCLUDE_R | INCLUDE_B,
    "a": INCLUDE_ALL,
}
_CHECK_TYPES = {
    "read": INCLUDE_R,
    "readable": INCLUDE_R,
    "match": INCLUDE_M,
    "wildcard_match": INCLUDE_W,
    "brace_match": INCLUDE_B,
}

_WHITE = " \t\f\n\r\v"  # keepalived's WHITE_SPACE_STR
_ISSPACE = " \t\n\v\f\r"
# A physical line with none of these is plain words: no comment, quote, escape or macro.
# Everything outside printable ASCII is here too, because str.split() would treat some
# of it (e.g. U+00A0) as whitespace where keepalived does not.
_SLOW_CHAR = re.compile(r"[^\t %-?A-\[\]-}]")
_HAS_WORD = re.compile(r"[^ \t\f\n\r\v]")
# Text str.split() would not split exactly like keepalived (quotes, \x1c-\x1f, non-ASCII
# whitespace) or where the first word may not start the text (\f\n\r\v).
_NEEDS_TOKENIZER = re.compile(r'["\x1c-\x1f\f\n\r\v]|[^\x00-\x7f]')
_SLOW_CHAR_OR_NL = re.compile(r"[^\n\t %-?A-\[\]-}]")
_PLAIN_BYTES = bytes([10, 9, 32, *range(0x25, 0x40), *range(0x41, 0x5C), *range(0x5D, 0x7E)])  # its complement
_TRAILING_CR = re.compile(r"\r+(?=\n|\Z)")
_BRACE = re.compile(r"[{}]")
_PIECES = re.compile(r"[{}]|[^{}]+")
_BRACE_OR_QUOTE = re.compile(r'[{}"]')
_GLOB_MAGIC = re.compile(r"[*?[]")
_GLOB_ESCAPE = re.compile(r"\\(.)")
_UNPRINTABLE = re.compile(r"[\x00\udc80-\udcff]")
_new = object.__new__


# --------------------------------------------------------------------------------------
# Public entry points


def default_config_id() -> str:
    """keepalived's default config-id: the node name up to the first dot.

    (uname's node name is what gethostname() returns; os.uname() spares importing socket.)
    """
    return os.uname().nodename.split(".", 1)[0]


def read_config(
    path: str,
    *,
    config_id: str | None = None,
    include_check: str | None = None,
) -> tuple[list[Line], list[Diagnostic]]:
    """Read ``path`` and its includes into logical lines.

    ``config_id`` selects ``@id`` lines (default: :func:`default_config_id`).
    ``include_check`` is the default check level for includes, in the words of the
    ``include_check`` keyword (``"match"``, ``"readable +brace_match"``, ...); an empty
    string means every check, as keepalived's ``-e``; ``None`` means none.
    """
    lexer = _Lexer(config_id if config_id is not None else default_config_id())
    if include_check is not None:
        lexer.include_flags = lexer.include_check_flags(include_check.split(), 0, None)
    # Lexing makes ~10^5 small objects and no garbage cycles: pausing the cyclic
    # collector avoids repeated scans of the growing heap (20-40% of the time).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        lexer.read_file(os.path.abspath(path), path, None, strict=True)
    finally:
        lexer.macros.close()  # (it holds the lexer's methods: a cycle refcounting would not free)
        if was_enabled:
            gc.enable()
    return lexer.lines, lexer.diags


def dump_lines(lines: Iterable[Line]) -> str:
    """The effective configuration as keepalived-style text (for ``--dump``).

    Blocks are re-indented by 4 spaces; a ``# file:line`` comment marks each change of
    source file. ``#`` and ``!`` that are data (from ``\\#``) are escaped again so the
    output reads back the same way.
    """
    out: list[str] = []
    depth = 0
    source: Source | None = None
    can_open = False  # the last output line is a statement a "{" may join
    for line in lines:
        span = line.span
        if span.source is not source:
            source = span.source
            out.append(f"{'    ' * depth}# {source.display}:{span.line}")
            can_open = False
        text = line.text
        if text == "{":
            if can_open:
                out[-1] += " {"
            else:
                out.append("    " * depth + "{")
            depth += 1
            can_open = False
        elif text == "}":
            depth = max(0, depth - 1)
            out.append("    " * depth + "}")
            can_open = False
        else:
            out.append("    " * depth + _escape_comments(text))
            can_open = True
    return "\n".join(out) + "\n" if out else ""


def _escape_comments(text: str) -> str:
    if "#" not in text and "!" not in text:
        return text
    out = []
    quote = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i : i + 2])
            i += 2
            continue
        if c == '"':
            quote = not quote
        elif c in "#!" and not quote:
            out.append("\\")
        out.append(c)
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------------------
# Helpers on physical lines and include patterns


def _first_brace(text: str) -> int:
    """Index of the first { or } outside double quotes, or -1 (keepalived's read_line)."""
    if text[0] in "{}":
        return 0
    if '"' not in text:
        m = _BRACE.search(text)
        return m.start() if m else -1
    pos = 0
    while True:
        m = _BRACE_OR_QUOTE.search(text, pos)
        if m is None:
            return -1
        i = m.start()
        if text[i] != '"':
            return i
        close = text.find('"', i + 1)
        if close < 0:
            return -1
        pos = close + 1


def _is_include(text: str) -> bool:
    """keepalived's is_include(): ``include`` or ``include[rmwba]`` then whitespace."""
    if not text.startswith("include") or len(text) < 8:
        return False
    if text[7] in _ISSPACE:
        return True
    return text[7] in "rmwba" and len(text) > 8 and text[8] in _ISSPACE


def _brace_expand(pattern: str) -> list[str]:
    """csh-style {a,b} expansion as glob(GLOB_BRACE) does it, alternatives in order."""
    depth = 0
    open_at = -1
    commas: list[int] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            if depth == 0:
                open_at = i
                commas = []
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                prefix, suffix = pattern[:open_at], pattern[i + 1 :]
                bounds = [open_at, *commas, i]
                out: list[str] = []
                for a, b in zip(bounds, bounds[1:]):
                    out.extend(_brace_expand(prefix + pattern[a + 1 : b] + suffix))
                    if len(out) > MAX_BRACE_ALTERNATIVES:
                        raise _TooManyAlternatives
                return out
        elif c == "," and depth == 1:
            commas.append(i)
        i += 1
    return [pattern]  # no (balanced) braces: literal


class _TooManyAlternatives(Exception):
    pass


def _has_brace(pattern: str) -> bool:
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "{":
            return True
        i += 1
    return False


def _special_lines(text: str, lines: list[str]) -> set[int]:
    """Numbers of the lines that need more than stripping: any character outside
    printable ASCII and tab, anything that starts a comment, quote, escape or macro,
    or more than 255 characters (then the byte length is checked)."""
    special: set[int] = set()
    if text.isascii() and not text.encode("ascii").translate(None, _PLAIN_BYTES):
        search = None  # nothing special anywhere (a quick test: a regex scan is slower)
    else:
        search = _SLOW_CHAR_OR_NL.search
    count = text.count
    pos = 0
    lineno = 1
    while search is not None:
        m = search(text, pos)
        if m is None:
            break
        lineno += count("\n", pos, m.start())
        special.add(lineno)
        pos = text.find("\n", m.start()) + 1
        if pos == 0:
            break
        lineno += 1
    if lines and max(map(len, lines)) > 255:
        special.update(n for n, line in enumerate(lines, 1) if len(line) > 255)
    return special


def _looks_binary(sample: bytes) -> bool:
    """Mostly NULs, control characters or invalid UTF-8 in the first KiB."""
    if not sample:
        return False
    bad = sum(1 for b in sample if (b < 32 and b not in (9, 10, 11, 12, 13)) or b == 127)
    if bad * 10 > len(sample) * 3:
        return True
    text = sample.decode("utf-8", "surrogateescape")
    bad += sum(1 for c in text if "\udc80" <= c <= "\udcff")
    return bad * 10 > len(sample) * 3


# What a plain physical line (no comment, quote, escape or macro) holds:
_BLANK_LINE = 0  # nothing
_ONE = 1  # one logical line: text at column base + 1 (a word line, "{" or "}")
_HEAD = 2  # "keyword args {": the text, then a "{" at column brace + 1
_OTHER = 3  # anything else (include, braces inside): _Lexer._plain() works it out


def _plain_shape(raw: str) -> tuple[int, str | None, int, int]:
    """(kind, text, base, brace) of a plain physical line; see _ONE and _HEAD."""
    left = raw.lstrip(" \t")
    if not left:
        return _BLANK_LINE, None, 0, 0
    text = left.rstrip(" \t")
    base = len(raw) - len(left)
    if "{" in text or "}" in text:
        if text == "{" or text == "}":
            return _ONE, text, base, 0
        if text[-1] == "{" and text.count("{") == 1 and "}" not in text and not text.startswith("include"):
            return _HEAD, text[:-1].rstrip(" \t"), base, base + len(text) - 1
        return _OTHER, text, base, 0
    if text.startswith("include"):
        return _OTHER, text, base, 0
    return _ONE, text, base, 0


# --------------------------------------------------------------------------------------
# The reader


class _Lexer:
    def __init__(self, config_id: str) -> None:
        self.include_flags = 0
        self.lines: list[Line] = []
        self.diags: list[Diagnostic] = []
        self.macros = Macros(config_id, self.diags, self._feed, self._open_quote)
        self.open_real: list[str] = []  # real paths of the files being read (include loops)
        self.open_display: list[str] = []
        self.total_bytes = 0
        self.quote_reported: set[tuple[int, int]] = set()

    # ---- files ----------------------------------------------------------------------

    def read_file(self, path: str, display: str, included_from: Span | None, *, strict: bool) -> None:
        """Read one file. ``strict``: problems opening it are errors, not warnings."""
        where = included_from or Span(Source(path, display), 1, 1)
        if len(self.open_real) >= MAX_INCLUDE_DEPTH:
            self.diags.append(
                error(where, f"includes nested more than {MAX_INCLUDE_DEPTH} deep - not reading '{display}'")
            )
            return
        try:
            st = os.stat(path)
        except OSError as e:
            self._problem(strict, where, f"cannot open configuration file '{display}': {e.strerror}")
            return
        if stat.S_ISDIR(st.st_mode):
            self._problem(strict, where, f"Configuration file '{display}' is a directory - skipping")
            return
        if not stat.S_ISREG(st.st_mode):
            self._problem(strict, where, f"Configuration file '{display}' is not a regular file - skipping")
            return
        if st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            self._problem(
                strict,
                where,
                f"Configuration file '{display}' is executable - skipping",
                "keepalived does not read executable configuration files",
            )
            return
        real = os.path.realpath(path)
        if real in self.open_real:
            chain = self.open_display[self.open_real.index(real) :] + [display]
            self.diags.append(error(where, "include loop: " + " includes ".join(chain)))
            return
        if st.st_size > MAX_FILE_BYTES:
            self.diags.append(error(where, f"Configuration file '{display}' is larger than 32 MiB - not read"))
            return
        if self.total_bytes + st.st_size > MAX_TOTAL_BYTES:
            self.diags.append(error(where, f"configuration exceeds 64 MiB in total - not reading '{display}'"))
            return
        try:
            with open(path, "rb") as f:
                # Size the read by stat (read(n) allocates n bytes up front); a file that grew
                # since is read on, up to the cap.
                data = f.read(st.st_size + 1)
                if len(data) > st.st_size:
                    data += f.read(MAX_FILE_BYTES + 1 - len(data))
        except OSError as e:
            self._problem(strict, where, f"cannot read configuration file '{display}': {e.strerror}")
            return
        if len(data) > MAX_FILE_BYTES:
            self.diags.append(error(where, f"Configuration file '{display}' is larger than 32 MiB - not read"))
            return
        self.total_bytes += len(data)
        if _looks_binary(data[:1024]):
            source = Source(path, display, included_from)
            self.diags.append(error(Span(source, 1, 1), f"'{display}' is not a text file - not read"))
            return

        text = data.decode("utf-8", "surrogateescape")
        raw_lines = None
        if "\r" in text:  # CRLF: keepalived strips every \r before the \n
            raw_lines = text.split("\n")
            text = _TRAILING_CR.sub("", text)
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        unprintable = "\x00" in text if text.isascii() else _UNPRINTABLE.search(text)
        shown = [printable(line) for line in lines] if unprintable else lines
        source = Source(path, display, included_from, tuple(shown))

        saved_flags = self.include_flags
        self.open_real.append(real)
        self.open_display.append(display)
        try:
            self._read_lines(lines, raw_lines, _special_lines(text, lines), source)
            if self.macros.collecting is not None:
                self.macros.end_collecting()
        finally:
            self.open_real.pop()
            self.open_display.pop()
            if included_from is not None:
                self.include_flags = saved_flags  # keepalived restores it at the end of an include

    def _read_lines(self, lines: list[str], raw_lines: list[str] | None, special: set[int], source: Source) -> None:
        """The hot loop: plain lines are stripped and stored, the rest go the slow way.

        Configurations repeat lines ("        weight 1"): what a plain line holds is
        worked out once per distinct line (:func:`_plain_shape`), and the Line objects
        are made inline (what make_line() does).
        """
        new = _new
        append = self.lines.append
        shapes: dict[str, tuple] = {}
        collecting = False  # only a special line can start a multi-line definition
        for n, raw in enumerate(lines, 1):
            if collecting or n in special:
                self._slow_line(raw, raw_lines[n - 1] if raw_lines else raw, source, n)
                collecting = self.macros.collecting is not None
                continue
            shape = shapes.get(raw)
            if shape is None:
                shape = shapes[raw] = _plain_shape(raw)
            kind, text, base, brace = shape
            if kind == _BLANK_LINE:
                continue
            if kind == _OTHER:
                self._plain(text, base, source, n)
                continue
            line = new(Line)
            line.text = text
            line._words = None
            line._span = None
            line._source = source
            line._lineno = n
            line._cols = base
            append(line)
            if kind == _HEAD:
                line = new(Line)
                line.text = "{"
                line._words = None
                line._span = None
                line._source = source
                line._lineno = n
                line._cols = brace
                append(line)

    def _plain(self, text: str, base: int, source: Source, n: int) -> None:
        """A line without quotes, escapes, comments or macros (``base``: its indent)."""
        if text.startswith("include") and _is_include(text):
            self._include(text, base, source, n)
        elif text == "{" or text == "}":
            self.lines.append(make_line(text, source, n, base))
        elif text[-1] == "{" and text.count("{") == 1 and "}" not in text and not text.startswith("include"):
            head = text[:-1].rstrip(" \t")  # the common "keyword args {"
            self.lines.append(make_line(head, source, n, base))
            self.lines.append(make_line("{", source, n, base + len(text) - 1))
        else:
            self._split_plain(text, base, source, n)

    def _split_plain(self, text: str, base: int, source: Source, n: int) -> None:
        """A plain line (no quotes, comments or macros): split off braces and emit."""
        for m in _PIECES.finditer(text):
            piece = m.group()
            if piece == "{" or piece == "}":
                self.lines.append(make_line(piece, source, n, base + m.start()))
                continue
            left = piece.lstrip(" \t")
            if left:
                self._emit(left.rstrip(" \t"), base + m.end() - len(left), source, n, plain=True)

    def _too_long(self, raw: str, source: Source, n: int) -> bool:
        size = len(raw.encode("utf-8", "surrogateescape"))
        if size <= MAX_LINE_BYTES:
            return False
        self.diags.append(
            warning(
                Span(source, n, 1),
                "line too long - ignoring",
                f"the line has {size} bytes; keepalived reads at most {MAX_LINE_BYTES}",
            )
        )
        return True

    def _slow_line(self, raw: str, raw_full: str, source: Source, n: int) -> None:
        if len(raw) > 255 and self._too_long(raw_full, source, n):
            return
        if "\x00" in raw:
            self.diags.append(
                warning(
                    Span(source, n, raw.index("\x00") + 1),
                    "configuration appears to have embedded NULs - ignoring line",
                )
            )
            return
        if not raw:
            if self.macros.collecting is not None:
                self.macros.end_collecting()  # an empty line ends a multi-line definition
            return
        if self.macros.collecting is None and '"' not in raw and "\\" not in raw:
            m = _SLOW_CHAR.search(raw)
            if m is None or raw[m.start()] in "#!":  # plain words, maybe then a comment
                cut = raw[: m.start()] if m else raw
                left = cut.lstrip(" \t")
                if left:
                    self._plain(left.rstrip(" \t"), len(cut) - len(left), source, n)
                return
        text, cols, open_quote = decomment(raw, 0)
        if open_quote:
            self._open_quote(text, cols, source, n)
        if not text:
            return
        if self.macros.collecting is not None:
            self.macros.collect(text)
        elif _is_include(text):
            self._include(text, cols, source, n)
        else:
            self._logical(text, cols, source, n, 0)

    def _open_quote(self, text: str, cols: Cols, source: Source, n: int) -> None:
        key = (id(source), n)
        if key not in self.quote_reported:
            self.quote_reported.add(key)
            quote_at = text.rfind('"')
            self.diags.append(
                error(Span(source, n, column(cols, max(quote_at, 0))), f"Unterminated quote '{printable(text)}'")
            )

    def _problem(self, is_error: bool | int, span: Span, message: str, *notes: str) -> None:
        self.diags.append((error if is_error else warning)(span, message, *notes))

    # ---- includes -------------------------------------------------------------------

    def _include(self, text: str, cols: Cols, source: Source, n: int) -> None:
        flags = self.include_flags
        if text[7] in _ISSPACE:
            rest = 8
        else:
            flags |= _VARIANTS[text[7]]
            rest = 9
        start = skip_blanks(text, rest)
        pattern = text[start:]
        directive = Span(source, n, column(cols, 0), column(cols, len(text) - 1) + 1)
        if "$" in pattern:  # keepalived 2.2.7 substitutes $NAME in the file name
            result = self.macros.substitute(pattern, cols_slice(cols, start), source, n, [])
            if result is DROP:
                return
            if result is not None:
                pattern = result[0]
        try:
            alternatives = _brace_expand(pattern)
        except _TooManyAlternatives:
            self.diags.append(
                error(directive, f"'{printable(pattern)}' has more than {MAX_BRACE_ALTERNATIVES} alternatives")
            )
            return
        has_brace = _has_brace(pattern)
        base_dir = os.path.dirname(source.path)
        display_dir = os.path.dirname(source.display)
        matches: list[str] = []
        missing = False
        wildcard = False
        for alt in alternatives:
            # glob() without GLOB_NOESCAPE: \x stands for x, so \* is no wildcard
            if not _GLOB_MAGIC.search(_GLOB_ESCAPE.sub("", alt)):
                alt = _GLOB_ESCAPE.sub(r"\1", alt)
                if os.path.lexists(os.path.join(base_dir, alt)):
                    matches.append(alt)
                else:
                    missing = True
                continue
            wildcard = True
            alt = _GLOB_ESCAPE.sub(lambda m: "[" + m.group(1) + "]" if m.group(1) in "*?[]" else m.group(1), alt)
            magic = _GLOB_MAGIC.search(alt)
            fixed_dir = os.path.dirname(alt[: magic.start()])
            if fixed_dir and not os.path.isdir(os.path.join(base_dir, fixed_dir)):
                missing = True
                continue
            import glob  # only for wildcard includes: not worth importing at every start

            matches.extend(sorted(glob.glob(alt, root_dir=base_dir)))
        shown = printable(pattern)
        if not matches:
            notes = ('quotes are not removed from include file names',) if '"' in pattern else ()
            if missing:
                check = INCLUDE_B if has_brace else INCLUDE_M
                self._problem(flags & check, directive, f"Config files missing '{shown}'.", *notes)
            elif flags & INCLUDE_W:
                self.diags.append(error(directive, f"No config files matched '{shown}'.", *notes))
            else:
                self.diags.append(note(directive, f"No config files matched '{shown}'.", *notes))
            return
        if missing:
            self._problem(flags & INCLUDE_B, directive, f"Some config files missing: '{shown}'.")
            if flags & INCLUDE_B:
                return
        for match in matches:
            path = os.path.normpath(os.path.join(base_dir, match))
            display = os.path.normpath(os.path.join(display_dir, match))
            self.read_file(path, display, directive, strict=bool(flags & INCLUDE_R))

    def include_check_flags(self, words: list[str], flags: int, span: Span | None) -> int:
        """Apply ``include_check`` arguments to ``flags`` (no arguments: every check)."""
        if not words:
            return INCLUDE_ALL
        for i, word in enumerate(words):
            op = word[:1] if word[:1] in "+-" else ""
            kind = _CHECK_TYPES.get(word[len(op) :])
            if not op and i > 0:
                self.diags.append(warning(span, f"Duplicate include_check '{word}' specified - ignoring"))
                continue
            if kind is None:
                self.diags.append(warning(span, f"Unknown include_check type '{word[len(op):]}' - ignoring"))
                continue
            if op == "+":
                flags |= kind
            elif op == "-":
                flags &= ~kind
            else:
                flags = INCLUDE_R | kind
        return flags

    # ---- logical lines --------------------------------------------------------------

    def _feed(self, text: str, cols: Cols, source: Source, n: int, depth: int) -> None:
        """A replayed line (~SEQ/~LST, multi-line definition): like a read line after decommenting."""
        if self.macros.collecting is not None:
            if text:
                self.macros.collect(text)
            else:
                self.macros.end_collecting()
        elif text:
            self._logical(text, cols, source, n, depth)

    def _logical(self, text: str, cols: Cols, source: Source, n: int, depth: int) -> None:
        """@id, $NAME=, ~SEQ/~LST, $NAME substitution, then split off braces and emit."""
        if depth > MAX_NESTING:
            self.diags.append(error(Span(source, n, column(cols, 0)), "definitions and ~SEQ/~LST nested too deeply"))
            return
        tails: list[tuple[str, list[str], int]] = []  # multi-line definitions still to replay
        pending: tuple[str, Cols] | None = (text, cols)
        while pending is not None:
            text, cols = pending
            pending = None
            if text[0] in "@~" or "$" in text:  # (else _expand() would give it back as it is)
                result = self.macros.expand(text, cols, source, n, tails, depth)
                if result is None:
                    break
                text, cols = result
                if "${_ENV " in text:
                    self.diags.append(
                        note(
                            Span(source, n, column(cols, text.index("${_ENV "))),
                            "${_ENV ...} is not supported by keepalived 2.2.7 - left as it is",
                        )
                    )
            i = _first_brace(text) if "{" in text or "}" in text else -1
            if i < 0:
                self._emit(text, cols, source, n)
            elif i == 0:
                self._emit(text[0], cols_slice(cols, 0, 1), source, n)
                j = skip_blanks(text, 1)
                if j < len(text):
                    pending = (text[j:], cols_slice(cols, j))
            else:
                head = text[:i].rstrip(" \t")
                self._emit(head, cols_slice(cols, 0, len(head)), source, n)
                pending = (text[i:], cols_slice(cols, i))
        for name, lines, col in reversed(tails):
            self.macros.replay_definition(name, lines, col, source, n, depth)


    def _emit(self, text: str, cols: Cols, source: Source, n: int, plain: bool = False) -> None:
        """Store a finished logical line. ``plain``: only printable ASCII and tabs."""
        if text.startswith("include"):
            if _is_include(text):
                self.diags.append(
                    warning(
                        Span(source, n, column(cols, 0)),
                        "include is only recognised at the start of a line - ignoring",
                        "keepalived detects include before '@' conditions and '$' substitution",
                    )
                )
                return
            if text.startswith("include_check") and (len(text) == 13 or text[13] in _WHITE):
                line = make_line(text, source, n, cols, plain)
                self.lines.append(line)
                words = [w.text for w in line.words[1:]]
                self.include_flags = self.include_check_flags(words, self.include_flags, line.span)
                return
        # A line made by $NAME substitution or ~SEQ is mostly as plain as a written one.
        exact = plain or _NEEDS_TOKENIZER.search(text) is None
        line = _new(Line)  # make_line(), inlined: ~SEQ can make 10^5 lines this way
        line.text = text
        line._words = None if exact else TOKENIZE
        line._span = None
        line._source = source
        line._lineno = n
        line._cols = cols
        if (exact and text and text[0] not in " \t") or (line.words if '"' in text else _HAS_WORD.search(text)):
            self.lines.append(line)  # (an unmatched quote can leave no word at all)

