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

from pyvrrpd.config.diagnostics import Diagnostic, Source, Span, error, new_span, note, warning

MAX_LINE_BYTES = 1022  # keepalived's fgets() buffer is 1024 bytes: the line, "\n" and a NUL
MAX_EXPANDED_LINE = 1023  # a line after $NAME substitution must still fit that buffer
MAX_FILE_BYTES = 32 << 20
MAX_TOTAL_BYTES = 64 << 20
MAX_INCLUDE_DEPTH = 32
MAX_REPLAYED_LINES = 1_000_000  # ~SEQ/~LST iterations plus lines of multi-line definitions
MAX_SUBSTITUTIONS = 10_000  # $NAME replacements in one line
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
_WORD_RE = re.compile(r"[^ \t\f\n\r\v]+")
_QUOTED_TOKEN = re.compile(r'[ \t\f\n\r\v]*(?:"([^"]*)"|[^ \t\f\n\r\v"]+)')
_HAS_WORD = re.compile(r"[^ \t\f\n\r\v]")
# Text str.split() would not split exactly like keepalived (quotes, \x1c-\x1f, non-ASCII
# whitespace) or where the first word may not start the text (\f\n\r\v).
_NEEDS_TOKENIZER = re.compile(r'["\x1c-\x1f\f\n\r\v]|[^\x00-\x7f]')
_DECOMMENT_CHARS = re.compile(r'[!#"\\]')
_SLOW_CHAR_OR_NL = re.compile(r"[^\n\t %-?A-\[\]-}]")
_PLAIN_BYTES = bytes([10, 9, 32, *range(0x25, 0x40), *range(0x41, 0x5C), *range(0x5D, 0x7E)])  # its complement
_TRAILING_CR = re.compile(r"\r+(?=\n|\Z)")
_BRACE = re.compile(r"[{}]")
_PIECES = re.compile(r"[{}]|[^{}]+")
_BRACE_OR_QUOTE = re.compile(r'[{}"]')
_BLANKS = re.compile(r"[ \t]*")
_BLANK = re.compile(r"[ \t]")
_DEFINITION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# $NAME (then a blank, ',', ')' or the end) or ${NAME} or ${NAME params}: params are
# digits and spaces that end with a digit
_REFERENCE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*+)(?: *+|([ 0-9]*+(?<=[0-9])))\}|([A-Za-z_][A-Za-z0-9_]*+)(?=[ \t,)]|\Z))"
)
_GLOB_MAGIC = re.compile(r"[*?[]")
_GLOB_ESCAPE = re.compile(r"\\(.)")
_UNPRINTABLE = re.compile(r"[\x00\udc80-\udcff]")
_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


# --------------------------------------------------------------------------------------
# Words and lines


class Word:
    """One word of a logical line. Treat as immutable.

    ``span`` points at the word's first character in its physical file (for text that
    came from a ``$NAME`` substitution: at the ``$``). It is built on first use.
    """

    __slots__ = ("text", "offset", "_span", "_source", "_lineno", "_cols", "_end")

    def __init__(self, text: str, span: Span, offset: int = 0) -> None:
        self.text = text
        self.offset = offset  # index of the word's first character in Line.text
        self._span = span

    @property
    def span(self) -> Span:
        try:
            return self._span
        except AttributeError:  # a Line made this word: the span is built on first use
            span = self._span = _span_at(self._source, self._lineno, self._cols, self.offset, self._end)
            return span

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Word):
            return NotImplemented
        return (self.text, self.offset, self.span) == (other.text, other.offset, other.span)

    def __hash__(self) -> int:
        return hash((self.text, self.offset))

    def __repr__(self) -> str:
        return f"Word({self.text!r} @ {self.span})"


class Line:
    """One logical line. Treat as immutable; ``words`` and ``span`` are built on first use."""

    __slots__ = ("text", "_words", "_span", "_source", "_lineno", "_cols")

    def __init__(self, words: Iterable[Word], text: str, span: Span) -> None:
        self.text = text  # the logical line after decommenting and expansion
        self._words = tuple(words)
        self._span = span  # span of the first word
        self._source = span.source
        self._lineno = span.line
        self._cols = span.col - 1 - (self._words[0].offset if self._words else 0)

    @property
    def words(self) -> tuple[Word, ...]:
        words = self._words
        if words is None:  # plain text: str.split() splits exactly like keepalived
            text, source, lineno, cols = self.text, self._source, self._lineno, self._cols
            find = text.find
            out = []
            end = 0
            for part in text.split():
                start = find(part, end)
                end = start + len(part)
                word = _new(Word)  # (the place, not the Line itself: no reference cycle)
                word.text = part
                word.offset = start
                word._source = source
                word._lineno = lineno
                word._cols = cols
                word._end = end
                out.append(word)
            words = self._words = tuple(out)
        elif words is _TOKENIZE:
            words = self._words = self._make_words(_split_words(self.text))
        return words

    @property
    def span(self) -> Span:
        span = self._span
        if span is None:
            if self._words is None:  # plain text: the first word ends at the first blank
                end = len(self.text.split(None, 1)[0])
                cols = self._cols
                if type(cols) is int:  # (_span_at(), inlined: the common case)
                    self._span = span = new_span(self._source, self._lineno, cols + 1, cols + end + 1)
                    return span
            else:
                words = self.words
                if words:
                    self._span = span = words[0].span
                    return span
                end = len(self.text)
            self._span = span = _span_at(self._source, self._lineno, self._cols, 0, end)
        return span

    @property
    def first(self) -> str:
        return self.words[0].text

    def script_words(self, start: int) -> tuple[Word, ...]:
        """Words from word ``start`` on, split like keepalived's script keywords.

        Lenient: an unterminated quote ends at the end of the line and a trailing
        ``\\`` stays; :meth:`script_problem` reports those (keepalived drops the script).
        """
        words = self.words
        if start >= len(words):
            return ()
        pieces, _ = _split_script(self.text, words[start].offset)
        return self._make_words(pieces)

    def script_problem(self, start: int) -> Diagnostic | None:
        """An error if the text from word ``start`` on is not a valid script string."""
        words = self.words
        if start >= len(words):
            return None
        _, problem = _split_script(self.text, words[start].offset)
        if problem is None:
            return None
        offset, message = problem
        return error(_span_at(self._source, self._lineno, self._cols, offset, offset + 1), message)

    def _make_words(self, pieces: list[tuple[int, int, str]]) -> tuple[Word, ...]:
        source, lineno, cols = self._source, self._lineno, self._cols
        out = []
        for start, end, text in pieces:
            word = _new(Word)
            word.text = text
            word.offset = start
            word._source = source
            word._lineno = lineno
            word._cols = cols
            word._end = end
            out.append(word)
        return tuple(out)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Line):
            return NotImplemented
        return self.text == other.text and self.span == other.span

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Line({self.text!r} @ {self._source.display}:{self._lineno})"


class _Same:
    """The columns of text whose characters all stand at one place: the lines of a
    multi-line definition are reported at the ``$NAME`` that brought them in.
    (One object per replay instead of a list of columns per line.)"""

    __slots__ = ("col",)

    def __init__(self, col: int) -> None:
        self.col = col  # 0-based


_Cols = int | list[int] | _Same
_new = object.__new__
_TOKENIZE = object()  # Line._words: not split yet, and the text needs the full tokenizer


def _make_line(text: str, source: Source, lineno: int, cols: _Cols, plain: bool = True) -> Line:
    """``plain``: str.split() splits text exactly (ASCII, the only blanks spaces and tabs,
    no quotes) and text starts with a word.

    ``cols`` is an int when text is a slice of the physical line (the column of text[0]
    minus 1), a _Same when all of text stands at one column, else a list with the
    0-based column of each character.
    """
    line = _new(Line)
    line.text = text
    line._words = None if plain else _TOKENIZE
    line._span = None
    line._source = source
    line._lineno = lineno
    line._cols = cols
    return line


def _span_at(source: Source, lineno: int, cols: _Cols, offset: int, end: int) -> Span:
    """Span of text[offset:end] of a line located at (source, line, cols)."""
    if type(cols) is int:
        return new_span(source, lineno, cols + offset + 1, cols + end + 1)
    if type(cols) is _Same:  # (what a list of that one column gives)
        return new_span(source, lineno, cols.col + 1, cols.col + 2 if end > 0 else None)
    if not cols:
        return Span(source, lineno, 1)
    col = cols[offset] + 1 if offset < len(cols) else cols[-1] + 2
    last = cols[min(end, len(cols)) - 1] + 2 if end > 0 else col
    return Span(source, lineno, col, last if last > col else None)


def _split_words(text: str) -> list[tuple[int, int, str]]:
    """keepalived's alloc_strvec(): whitespace separated, "..." groups, quotes removed.

    An unmatched quote ends the line (keepalived reports it; so does :func:`_decomment`).
    """
    if '"' not in text:
        return [(m.start(), m.end(), m.group()) for m in _WORD_RE.finditer(text)]
    out = []
    pos = 0
    while True:
        m = _QUOTED_TOKEN.match(text, pos)
        if m is None:
            break
        inner = m.group(1)
        if inner is None:
            start = m.end() - len(m.group().lstrip(_WHITE))
            out.append((start, m.end(), text[start : m.end()]))
        else:
            start = m.end() - len(inner) - 2
            out.append((start, m.end(), inner))
        pos = m.end()
    return out


def _split_script(text: str, pos: int) -> tuple[list[tuple[int, int, str]], tuple[int, str] | None]:
    """keepalived's alloc_strvec_quoted_escaped(): ' and " quote, backslash escapes."""
    out: list[tuple[int, int, str]] = []
    problem: tuple[int, str] | None = None
    n = len(text)
    while True:
        while pos < n and text[pos] in _WHITE:
            pos += 1
        if pos >= n:
            break
        start = pos
        chars: list[str] = []
        quote = ""
        quote_at = 0
        while pos < n:
            c = text[pos]
            if c == "\\":
                pos += 1
                if pos >= n:
                    problem = problem or (pos - 1, f"Missing escape char at end: '{_printable(text)}'")
                    chars.append("\\")
                    break
                c = text[pos]
                if c == "x" and pos + 1 < n and text[pos + 1] in "0123456789abcdefABCDEF":
                    digits = text[pos + 1 : pos + 3]
                    if digits[-1] not in "0123456789abcdefABCDEF":
                        digits = digits[:1]
                    chars.append(_byte_char(int(digits, 16)))
                    pos += 1 + len(digits)
                elif c == "c" and pos + 1 < n:
                    chars.append(chr(ord(text[pos + 1]) & 0x1F))
                    pos += 2
                elif "0" <= c <= "7":
                    end = pos + 1
                    while end < n and end < pos + 3 and "0" <= text[end] <= "7":
                        end += 1
                    chars.append(_byte_char(int(text[pos:end], 8) & 0xFF))
                    pos = end
                else:
                    chars.append(_ESCAPES.get(c, c))
                    pos += 1
                continue
            if quote:
                if c == quote:
                    quote = ""
                else:
                    chars.append(c)
                pos += 1
                continue
            if c == '"' or c == "'":
                quote = c
                quote_at = pos
                pos += 1
                continue
            if c in _WHITE:
                break
            chars.append(c)
            pos += 1
        if quote:
            problem = problem or (quote_at, f"String '{_printable(text)}': missing terminating {quote}")
        out.append((start, pos, "".join(chars)))
    return out, problem


def _byte_char(value: int) -> str:
    """The character that stands for byte ``value`` (bytes >= 0x80 as surrogateescape)."""
    return chr(value) if value < 0x80 else chr(0xDC00 + value)


def _printable(text: str) -> str:
    """Text safe to print: undecodable bytes and NULs shown as U+FFFD."""
    return _UNPRINTABLE.sub("\ufffd", text) if _UNPRINTABLE.search(text) else text


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
# Helpers on (text, cols) pairs: cols is an int when text is a slice of one physical
# line (column of text[0] minus 1), a _Same when every character is at one column,
# else a list with one 0-based column per character.


def _cols_slice(cols: _Cols, start: int, end: int | None = None) -> _Cols:
    if type(cols) is int:
        return cols + start
    if type(cols) is _Same:
        return cols
    return cols[start:end]


def _col(cols: _Cols, i: int) -> int:
    """1-based column of character ``i``."""
    if type(cols) is int:
        return cols + i + 1
    if type(cols) is _Same:
        return cols.col + 1
    if not cols:
        return 1
    return cols[min(i, len(cols) - 1)] + 1


def _decomment(s: str, cols: _Cols) -> tuple[str, _Cols, bool]:
    """keepalived 2.2.7's decomment(): strip blanks and comments (``\\#`` starts one too).

    Returns the text, its columns, and whether a double quote was left open.
    A trailing backslash is kept (it continues ``$NAME=`` definitions).
    """
    if _DECOMMENT_CHARS.search(s) is None:  # nothing but blanks to remove (the usual case)
        left = s.lstrip(" \t")
        text = left.rstrip(" \t")
        lead = len(s) - len(left)
        return text, _cols_slice(cols, lead, lead + len(text)), False
    lead = len(s) - len(s.lstrip(" \t"))
    if lead:
        s = s[lead:]
        cols = _cols_slice(cols, lead)
    quote = False
    skip = -1
    cont = -1
    removed: list[int] = []
    pos = 0
    search = _DECOMMENT_CHARS.search
    while True:
        m = search(s, pos)
        if m is None:
            break
        i = m.start()
        c = s[i]
        if c == '"':
            if skip < 0:
                quote = not quote
            pos = i + 1
        elif c == "\\":
            if i + 1 >= len(s):
                cont = i
                break
            if not quote and s[i + 1] in "#!" and skip < 0:
                # keepalived 2.2.7 has no \# / \! escape (newer versions do): the comment
                # starts at the backslash (verified: `vrrp_instance A\#B {` names `A` and loses
                # the brace; corpus one_hash.conf).
                skip = i
                break
            pos = i + 2
        else:
            if not quote and skip < 0:
                skip = i
            pos = i + 1
    end = len(s)
    if cont >= 0:
        end = cont
    if 0 <= skip < end:
        end = skip
    s_cols = cols
    removed = [r for r in removed if r < end]
    if removed:
        gone = set(removed)
        keep = [i for i in range(end) if i not in gone]
        text = "".join(s[i] for i in keep)
        cols = [_col(s_cols, i) - 1 for i in keep]
    else:
        text = s[:end]
        cols = _cols_slice(cols, 0, end)
    stripped = text.rstrip(" \t")
    if len(stripped) != len(text):
        text = stripped
        if type(cols) is list:
            cols = cols[: len(text)]
    if cont >= 0:
        if type(cols) is int:
            cols = list(range(cols, cols + len(text)))
        if type(cols) is list:
            cols.append(_col(s_cols, cont) - 1)
        text += "\\"
    return text, cols, quote


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


def _strtol(s: str, i: int) -> tuple[int, int]:
    """C strtol(s + i, &end, 0): value and end index; (0, i) if there is no number."""
    j = i
    while j < len(s) and s[j] in _ISSPACE:
        j += 1
    sign = 1
    if j < len(s) and s[j] in "+-":
        sign = -1 if s[j] == "-" else 1
        j += 1
    if s[j : j + 2] in ("0x", "0X") and j + 2 < len(s) and s[j + 2] in "0123456789abcdefABCDEF":
        base, k = 16, j + 2
        digits = "0123456789abcdefABCDEF"
    elif s[j : j + 1] == "0":
        base, k = 8, j
        digits = "01234567"
    else:
        base, k = 10, j
        digits = "0123456789"
    end = k
    while end < len(s) and s[end] in digits:
        end += 1
    if end == k:
        return 0, i
    return sign * int(s[k:end], base), end


def _skip_blanks(text: str, pos: int) -> int:
    return _BLANKS.match(text, pos).end()


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


class _Def:
    """A $NAME definition. A single-line value is ``lines[0]``."""

    __slots__ = ("name", "lines", "multiline", "span", "builtin")

    def __init__(
        self,
        name: str,
        lines: list[str] | None = None,
        multiline: bool = False,
        span: Span | None = None,
        builtin: bool = False,
    ) -> None:
        self.name = name
        self.lines = [] if lines is None else lines
        self.multiline = multiline
        self.span = span  # where it was defined; None for built-ins
        self.builtin = builtin  # value computed at each use (_PWD, _INSTANCE, _RANDOM)


_DROP = object()  # _substitute(): the line is dropped (a diagnostic says why)


class _Lexer:
    def __init__(self, config_id: str) -> None:
        self.config_id = config_id
        self.include_flags = 0
        self.lines: list[Line] = []
        self.diags: list[Diagnostic] = []
        self.defs: dict[str, _Def] = {
            "_PWD": _Def("_PWD", builtin=True),
            "_INSTANCE": _Def("_INSTANCE", builtin=True),
            "_RANDOM": _Def("_RANDOM", builtin=True),
            "_HASH": _Def("_HASH", ["#"]),
            "_BANG": _Def("_BANG", ["!"]),
        }
        self.collecting: _Def | None = None  # multi-line definition being read
        self.open_real: list[str] = []  # real paths of the files being read (include loops)
        self.open_display: list[str] = []
        self.total_bytes = 0
        self.replayed = 0
        self.replay_exhausted = False
        self.expanding: list[str] = []  # multi-line definitions whose lines are being replayed
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
        shown = [_printable(line) for line in lines] if unprintable else lines
        source = Source(path, display, included_from, tuple(shown))

        saved_flags = self.include_flags
        self.open_real.append(real)
        self.open_display.append(display)
        try:
            self._read_lines(lines, raw_lines, _special_lines(text, lines), source)
            if self.collecting is not None:
                self._end_collecting()
        finally:
            self.open_real.pop()
            self.open_display.pop()
            if included_from is not None:
                self.include_flags = saved_flags  # keepalived restores it at the end of an include

    def _read_lines(self, lines: list[str], raw_lines: list[str] | None, special: set[int], source: Source) -> None:
        """The hot loop: plain lines are stripped and stored, the rest go the slow way.

        Configurations repeat lines ("        weight 1"): what a plain line holds is
        worked out once per distinct line (:func:`_plain_shape`), and the Line objects
        are made inline (what _make_line() does).
        """
        new = _new
        append = self.lines.append
        shapes: dict[str, tuple] = {}
        collecting = False  # only a special line can start a multi-line definition
        for n, raw in enumerate(lines, 1):
            if collecting or n in special:
                self._slow_line(raw, raw_lines[n - 1] if raw_lines else raw, source, n)
                collecting = self.collecting is not None
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
            self.lines.append(_make_line(text, source, n, base))
        elif text[-1] == "{" and text.count("{") == 1 and "}" not in text and not text.startswith("include"):
            head = text[:-1].rstrip(" \t")  # the common "keyword args {"
            self.lines.append(_make_line(head, source, n, base))
            self.lines.append(_make_line("{", source, n, base + len(text) - 1))
        else:
            self._split_plain(text, base, source, n)

    def _split_plain(self, text: str, base: int, source: Source, n: int) -> None:
        """A plain line (no quotes, comments or macros): split off braces and emit."""
        for m in _PIECES.finditer(text):
            piece = m.group()
            if piece == "{" or piece == "}":
                self.lines.append(_make_line(piece, source, n, base + m.start()))
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
            if self.collecting is not None:
                self._end_collecting()  # an empty line ends a multi-line definition
            return
        if self.collecting is None and '"' not in raw and "\\" not in raw:
            m = _SLOW_CHAR.search(raw)
            if m is None or raw[m.start()] in "#!":  # plain words, maybe then a comment
                cut = raw[: m.start()] if m else raw
                left = cut.lstrip(" \t")
                if left:
                    self._plain(left.rstrip(" \t"), len(cut) - len(left), source, n)
                return
        text, cols, open_quote = _decomment(raw, 0)
        if open_quote:
            self._open_quote(text, cols, source, n)
        if not text:
            return
        if self.collecting is not None:
            self._collect(text)
        elif _is_include(text):
            self._include(text, cols, source, n)
        else:
            self._logical(text, cols, source, n, 0)

    def _open_quote(self, text: str, cols: _Cols, source: Source, n: int) -> None:
        key = (id(source), n)
        if key not in self.quote_reported:
            self.quote_reported.add(key)
            quote_at = text.rfind('"')
            self.diags.append(
                error(Span(source, n, _col(cols, max(quote_at, 0))), f"Unterminated quote '{_printable(text)}'")
            )

    def _problem(self, is_error: bool | int, span: Span, message: str, *notes: str) -> None:
        self.diags.append((error if is_error else warning)(span, message, *notes))

    # ---- includes -------------------------------------------------------------------

    def _include(self, text: str, cols: _Cols, source: Source, n: int) -> None:
        flags = self.include_flags
        if text[7] in _ISSPACE:
            rest = 8
        else:
            flags |= _VARIANTS[text[7]]
            rest = 9
        start = _skip_blanks(text, rest)
        pattern = text[start:]
        directive = Span(source, n, _col(cols, 0), _col(cols, len(text) - 1) + 1)
        if "$" in pattern:  # keepalived 2.2.7 substitutes $NAME in the file name
            result = self._substitute(pattern, _cols_slice(cols, start), source, n, [])
            if result is _DROP:
                return
            if result is not None:
                pattern = result[0]
        try:
            alternatives = _brace_expand(pattern)
        except _TooManyAlternatives:
            self.diags.append(
                error(directive, f"'{_printable(pattern)}' has more than {MAX_BRACE_ALTERNATIVES} alternatives")
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
        shown = _printable(pattern)
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

    def _feed(self, text: str, cols: _Cols, source: Source, n: int, depth: int) -> None:
        """A replayed line (~SEQ/~LST, multi-line definition): like a read line after decommenting."""
        if self.collecting is not None:
            if text:
                self._collect(text)
            else:
                self._end_collecting()
        elif text:
            self._logical(text, cols, source, n, depth)

    def _logical(self, text: str, cols: _Cols, source: Source, n: int, depth: int) -> None:
        """@id, $NAME=, ~SEQ/~LST, $NAME substitution, then split off braces and emit."""
        if depth > MAX_NESTING:
            self.diags.append(error(Span(source, n, _col(cols, 0)), "definitions and ~SEQ/~LST nested too deeply"))
            return
        tails: list[tuple[str, list[str], int]] = []  # multi-line definitions still to replay
        pending: tuple[str, _Cols] | None = (text, cols)
        while pending is not None:
            text, cols = pending
            pending = None
            if text[0] in "@~" or "$" in text:  # (else _expand() would give it back as it is)
                result = self._expand(text, cols, source, n, tails, depth)
                if result is None:
                    break
                text, cols = result
                if "${_ENV " in text:
                    self.diags.append(
                        note(
                            Span(source, n, _col(cols, text.index("${_ENV "))),
                            "${_ENV ...} is not supported by keepalived 2.2.7 - left as it is",
                        )
                    )
            i = _first_brace(text) if "{" in text or "}" in text else -1
            if i < 0:
                self._emit(text, cols, source, n)
            elif i == 0:
                self._emit(text[0], _cols_slice(cols, 0, 1), source, n)
                j = _skip_blanks(text, 1)
                if j < len(text):
                    pending = (text[j:], _cols_slice(cols, j))
            else:
                head = text[:i].rstrip(" \t")
                self._emit(head, _cols_slice(cols, 0, len(head)), source, n)
                pending = (text[i:], _cols_slice(cols, i))
        for name, lines, col in reversed(tails):
            self._replay_definition(name, lines, col, source, n, depth)

    def _expand(
        self,
        text: str,
        cols: _Cols,
        source: Source,
        n: int,
        tails: list[tuple[str, list[str], int]],
        depth: int,
    ) -> tuple[str, _Cols] | None:
        """Conditionals, definitions, sequences and substitution; None if nothing is left."""
        for _ in range(100):
            if text.startswith("@"):
                negate = text.startswith("@^")
                start = 2 if negate else 1
                blank = _BLANK.search(text, start)
                if blank is None:
                    return None  # a bare @id
                if (text[start : blank.start()] == self.config_id) == negate:
                    return None
                j = _skip_blanks(text, blank.start())
                text, cols = text[j:], _cols_slice(cols, j)
            if text.startswith("$") and self._define(text, cols, source, n):
                return None
            if text.startswith("~"):
                if text.startswith("~SEQ") or text.startswith("~LST"):
                    self._sequence(text, cols, source, n, depth)
                    return None
                return text, cols
            if "$" not in text:
                return text, cols
            result = self._substitute(text, cols, source, n, tails)
            if result is None:
                return text, cols
            if result is _DROP:
                return None
            text, cols, open_quote = _decomment(*result)
            if open_quote:
                self._open_quote(text, cols, source, n)
            if not text:
                return None
            if not text.startswith("@") and "$" not in text:
                return text, cols
        self.diags.append(error(Span(source, n, _col(cols, 0)), "parameter substitution does not settle - line ignored"))
        return None

    def _emit(self, text: str, cols: _Cols, source: Source, n: int, plain: bool = False) -> None:
        """Store a finished logical line. ``plain``: only printable ASCII and tabs."""
        if text.startswith("include"):
            if _is_include(text):
                self.diags.append(
                    warning(
                        Span(source, n, _col(cols, 0)),
                        "include is only recognised at the start of a line - ignoring",
                        "keepalived detects include before '@' conditions and '$' substitution",
                    )
                )
                return
            if text.startswith("include_check") and (len(text) == 13 or text[13] in _WHITE):
                line = _make_line(text, source, n, cols, plain)
                self.lines.append(line)
                words = [w.text for w in line.words[1:]]
                self.include_flags = self.include_check_flags(words, self.include_flags, line.span)
                return
        # A line made by $NAME substitution or ~SEQ is mostly as plain as a written one.
        exact = plain or _NEEDS_TOKENIZER.search(text) is None
        line = _new(Line)  # _make_line(), inlined: ~SEQ can make 10^5 lines this way
        line.text = text
        line._words = None if exact else _TOKENIZE
        line._span = None
        line._source = source
        line._lineno = n
        line._cols = cols
        if (exact and text and text[0] not in " \t") or (line.words if '"' in text else _HAS_WORD.search(text)):
            self.lines.append(line)  # (an unmatched quote can leave no word at all)

    # ---- definitions ----------------------------------------------------------------

    def _define(self, text: str, cols: _Cols, source: Source, n: int) -> bool:
        """``$NAME=VALUE`` (a trailing backslash starts a multi-line definition)."""
        m = _DEFINITION.match(text)
        if m is None:
            return False
        name = m.group(1)
        value = text[_skip_blanks(text, m.end()) :]
        span = Span(source, n, _col(cols, 0), _col(cols, m.end() - 2) + 1)
        if value.endswith("\\"):
            first = value[:-1].rstrip(" \t")
            definition = _Def(name, [first] if first else [], True, span)
            self.collecting = definition
        else:
            definition = _Def(name, [value], False, span)
        self.defs[name] = definition
        return True

    def _collect(self, text: str) -> None:
        definition = self.collecting
        if text.endswith("\\"):
            part = text[:-1].rstrip(" \t")
            if part:
                definition.lines.append(part)
        else:
            definition.lines.append(text)
            self.collecting = None

    def _end_collecting(self) -> None:
        if not self.collecting.lines:
            self.collecting.multiline = False
        self.collecting = None

    def _reference(self, text: str, i: int) -> tuple[str, _Def, int, str | None] | None:
        """keepalived's find_definition() for the ``$`` at ``i``: name, def, end, params."""
        m = _REFERENCE.match(text, i)
        if m is None:
            return None
        name, params, plain_name = m.groups()
        if name is None:
            name = plain_name
        elif params is not None:
            params = params.strip(" ")
        end = m.end()
        definition = self.defs.get(name)
        if definition is None or (definition.multiline and end != len(text)):
            return None
        if params is not None and name != "_RANDOM":
            return None
        return name, definition, end, params

    def _substitute(
        self,
        text: str,
        cols: _Cols,
        source: Source,
        n: int,
        tails: list[tuple[str, list[str], int]],
    ):
        """keepalived's replace_param(): replace $NAME/${NAME} left to right, rescanning
        each value in place. Returns (text, cols), None if nothing matched, or _DROP.

        keepalived loops forever on a definition that refers to itself; here each
        replacement remembers which definitions it lies inside, so a cycle is an error.
        """
        regions: list[list] = []  # [end, name] of values being rescanned, innermost last
        active: list[str] = []  # their names
        own_cols = False  # cols is a list made here (a caller's list is not changed: ~SEQ reuses it)
        pos = 0
        count = 0
        changed = False
        while True:
            i = text.find("$", pos)
            if i < 0 or i + 1 >= len(text):
                break
            while regions and regions[-1][0] <= i:
                regions.pop()
                active.pop()
            ref = self._reference(text, i)
            if ref is None:
                pos = i + 1
                continue
            name, definition, end, params = ref
            if name in active or (definition.multiline and name in self.expanding):
                chain = self.expanding[self.expanding.index(name) :] if name not in active else []
                chain += active[active.index(name) :] if name in active else active
                self._cycle(chain + [name], Span(source, n, _col(cols, i)))
                return _DROP
            count += 1
            if count > MAX_SUBSTITUTIONS:
                self.diags.append(
                    error(Span(source, n, _col(cols, i)), "parameter substitution does not terminate - line ignored")
                )
                return _DROP
            if type(cols) is int:
                col = cols + i
                cols = list(range(cols, cols + len(text)))
                own_cols = True
            elif type(cols) is _Same:
                col = cols.col  # and the value's characters are there too: cols stay as they are
            else:
                col = cols[i] if i < len(cols) else _col(cols, i) - 1
                if not own_cols:
                    cols = list(cols)
                    own_cols = True
            if definition.builtin:
                value = self._builtin(name, params, source, n, col + 1)
            else:
                value = definition.lines[0] if definition.lines else ""
                if definition.multiline and len(definition.lines) > 1:
                    tails.append((name, definition.lines[1:], col))
            if len(text) - (end - i) + len(value) > MAX_EXPANDED_LINE:
                self.diags.append(
                    error(
                        Span(source, n, col + 1),
                        "Parameter substitution would exceed maximum line length - line ignored",
                        f"keepalived's limit is {MAX_EXPANDED_LINE} characters",
                    )
                )
                return _DROP
            if type(cols) is list:
                cols[i:end] = [col] * len(value)
            text = text[:i] + value + text[end:]
            delta = len(value) - (end - i)
            if delta:
                for region in regions:
                    region[0] += delta
            regions.append([i + len(value), name])
            active.append(name)
            changed = True
            if "~" in value and value.lstrip(" \t").startswith("~"):
                break  # keepalived stops here so that ~SEQ sets its variable first
            pos = i
        return (text, cols) if changed else None

    def _cycle(self, chain: list[str], span: Span) -> None:
        notes = []
        for name in dict.fromkeys(chain):
            definition = self.defs.get(name)
            if definition is not None and definition.span is not None:
                notes.append(f"${name} is defined at {definition.span}")
        notes.append("keepalived 2.2.7 loops forever on this")
        shown = " -> ".join("$" + name for name in chain)
        self.diags.append(error(span, f"recursive definition: {shown} - line ignored", *notes))

    def _builtin(self, name: str, params: str | None, source: Source, n: int, col: int) -> str:
        """The value of a built-in definition used at column ``col`` of line ``n``."""
        if name == "_PWD":
            return os.path.realpath(os.path.dirname(source.path))
        if name == "_INSTANCE":
            return self.config_id
        low, high = 0, 32767  # _RANDOM
        numbers = params.split() if params else []
        if numbers:
            low = int(numbers[0])
        if len(numbers) > 1:
            high = int(numbers[1])
        if len(numbers) > 2:
            self.diags.append(
                warning(Span(source, n, col), f"Too many parameters or extra text for ${{_RANDOM {params}}}")
            )
        if low > high:
            self.diags.append(
                warning(Span(source, n, col), f"${{_RANDOM {params}}}: minimum is above maximum - using {low}")
            )
            return str(low)
        import random  # only for ${_RANDOM}: not worth importing at every start

        return str(random.randint(low, high))

    def _replay_definition(self, name: str, lines: list[str], col: int, source: Source, n: int, depth: int) -> None:
        """The second and later lines of a multi-line definition."""
        if not self._budget(len(lines), source, n, col + 1):
            return
        self.expanding.append(name)
        at = _Same(col)  # each character of these lines is reported at the $NAME
        try:
            for text in lines:
                self._feed(text, at, source, n, depth + 1)
                if self.replay_exhausted:
                    return
        finally:
            self.expanding.pop()

    def _budget(self, count: int, source: Source, n: int, col: int) -> bool:
        """Whether ``count`` more replayed lines fit; else an error at column ``col`` of line ``n``."""
        if self.replay_exhausted:
            return False
        self.replayed += count
        if self.replayed > MAX_REPLAYED_LINES:
            self.replay_exhausted = True
            self.diags.append(
                error(
                    Span(source, n, col),
                    f"~SEQ/~LST and multi-line definitions produce more than {MAX_REPLAYED_LINES} lines - stopping",
                )
            )
            return False
        return True

    # ---- ~SEQ and ~LST --------------------------------------------------------------

    def _sequence(self, text: str, cols: _Cols, source: Source, n: int, depth: int) -> None:
        span = Span(source, n, _col(cols, 0))
        if text.startswith("~SEQ"):
            parsed = self._parse_seq(text, cols, source, n)
            kind = "~SEQ"
        else:
            parsed = _parse_lst(text)
            kind = "~LST"
        if isinstance(parsed, str):
            self.diags.append(error(span, f"Invalid {kind} specification '{_printable(text)}'", parsed))
            return
        names, count, value_sets, rest = parsed
        if not self._budget(count, source, n, span.col):
            return
        body, body_cols = text[rest:], _cols_slice(cols, rest)
        for values in value_sets:
            for name, value in zip(names, values):
                self.defs[name] = _Def(name, [value])
            self._feed(body, body_cols, source, n, depth + 1)
            if self.replay_exhausted:
                return

    def _parse_seq(self, text: str, cols: _Cols, source: Source, n: int):
        """``~SEQ(var, [start,] [step,] end)`` -> ([var], count, values, body index) or a reason."""
        p = 4
        hex_values = text[p : p + 1] == "x"
        if hex_values:
            p += 1
        p = _skip_blanks(text, p)
        if text[p : p + 1] != "(":
            return "expected '(' after ~SEQ"
        p = _skip_blanks(text, p + 1)
        var_end = p
        while var_end < len(text) and text[var_end] not in " \t,)":
            var_end += 1
        var = text[p:var_end]
        p = _skip_blanks(text, var_end)
        if not var or p >= len(text) or text[p] == ")":
            return "the variable and at least an end value are needed"
        if not _NAME.match(var):
            return f"'{var}' is not a valid variable name"
        if text[p] != ",":
            return "expected ',' after the variable name"
        p = _skip_blanks(text, p + 1)
        close = text.find(")", p)
        if close < 0:
            return "missing ')'"
        params = text[p : close + 1]
        if "$" in params:
            tails: list = []
            result = self._substitute(params, _cols_slice(cols, p), source, n, tails)
            if result is _DROP:
                return "a parameter could not be substituted"
            if tails:
                return "a parameter is a multi-line definition"
            if result is not None:
                params = result[0]
        numbers = []
        q = 0
        while True:
            value, q = _strtol(params, q)
            numbers.append(value)
            q = _skip_blanks(params, q)
            if params[q : q + 1] == ")":
                break
            if params[q : q + 1] != "," or len(numbers) == 3:
                return "expected 1 to 3 numbers separated by ','"
            q += 1
        if len(numbers) == 1:
            end = numbers[0]
            start, step = (-1 if end < 0 else 1), (-1 if end < 1 else 1)
        elif len(numbers) == 2:
            start, end = numbers
            step = 1 if start <= end else -1
        else:
            start, step, end = numbers
            if step == 0 or (start < end and step < 0) or (start > end and step > 0):
                return "the step must be non-zero and go from start towards end"
        if hex_values and (start < 0 or end < 0):
            return "~SEQx is only valid for positive numbers"
        count = (end - start) // step + 1
        if count > MAX_REPLAYED_LINES:
            return f"more than {MAX_REPLAYED_LINES} values"
        fmt = "x" if hex_values else "d"
        values = ([format(v, fmt)] for v in range(start, end + (1 if step > 0 else -1), step))
        return [var], count, values, _skip_blanks(text, close + 1)


def _parse_lst(text: str):
    """``~LST(var, v1, v2)`` or ``~LST({a,b}, {1,2}, {3,4})``
    -> (names, count, value sets, body index) or a reason. Missing values are empty."""
    p = _skip_blanks(text, 4)
    if text[p : p + 1] != "(":
        return "expected '(' after ~LST"
    p = _skip_blanks(text, p + 1)
    close = ","
    if text[p : p + 1] == "{":
        close = "}"
        p = _skip_blanks(text, p + 1)
    names: list[str] = []
    while True:
        end = p
        while end < len(text) and text[end] not in " \t,}":
            end += 1
        names.append(text[p:end])
        p = _skip_blanks(text, end)
        if text[p : p + 1] == close:
            break
        if text[p : p + 1] != ",":
            return "expected ',' between variable names"
        p = _skip_blanks(text, p + 1)
    bad = [name for name in names if not _NAME.match(name)]
    if bad:
        return f"'{bad[0]}' is not a valid variable name"
    if text[p : p + 1] == "}":
        p = _skip_blanks(text, p + 1)
    if text[p : p + 1] != ",":
        return "expected ',' after the variable names"
    p = _skip_blanks(text, p + 1)
    value_sets: list[list[str]] = []
    while True:
        close = ","
        if text[p : p + 1] == "{":
            close = "}"
            p = _skip_blanks(text, p + 1)
        values: list[str] = []
        while True:
            end = p
            while end < len(text) and text[end] not in " \t,})":
                end += 1
            values.append(text[p:end])
            p = _skip_blanks(text, end)
            c = text[p : p + 1]
            if c == close or (c == ")" and close == ","):
                break
            if c != ",":
                return "expected ',' between values"
            p = _skip_blanks(text, p + 1)
            if len(values) >= len(names):
                return "a value set has more values than there are variables"
        values += [""] * (len(names) - len(values))
        value_sets.append(values)
        if text[p : p + 1] == "}" and close == "}":
            p = _skip_blanks(text, p + 1)
        if text[p : p + 1] == ")":
            break
        if text[p : p + 1] != ",":
            return "expected ',' between value sets"
        p = _skip_blanks(text, p + 1)
    return names, len(value_sets), value_sets, _skip_blanks(text, p + 1)
