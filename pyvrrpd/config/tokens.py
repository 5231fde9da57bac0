"""Words and logical lines, as keepalived's tokenizers split them, with the place of each.

* :class:`Line` is one logical line; :class:`Word` one of its words. Both build their
  words and spans on first use (most never need them).
* Columns: ``cols`` says where the characters of a text stand in its physical line: an
  int when the text is a slice of that line (the column of ``text[0]`` minus 1), a
  :class:`Same` when every character stands at one place (lines replayed from a
  multi-line definition), else a list with one 0-based column per character.
* :func:`decomment` is keepalived's first pass over a physical line (comments, blanks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pyvrrpd.config.diagnostics import Diagnostic, Source, Span, error, new_span

_WHITE = " \t\f\n\r\v"  # keepalived's WHITE_SPACE_STR
_WORD_RE = re.compile(r"[^ \t\f\n\r\v]+")
_QUOTED_TOKEN = re.compile(r'[ \t\f\n\r\v]*(?:"([^"]*)"|[^ \t\f\n\r\v"]+)')
_DECOMMENT_CHARS = re.compile(r'[!#"\\]')
_BLANKS = re.compile(r"[ \t]*")
_UNPRINTABLE = re.compile(r"[\x00\udc80-\udcff]")
_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}



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
            span = self._span = span_at(self._source, self._lineno, self._cols, self.offset, self._end)
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
        elif words is TOKENIZE:
            words = self._words = self._make_words(split_words(self.text))
        return words

    @property
    def span(self) -> Span:
        span = self._span
        if span is None:
            if self._words is None:  # plain text: the first word ends at the first blank
                end = len(self.text.split(None, 1)[0])
                cols = self._cols
                if type(cols) is int:  # (span_at(), inlined: the common case)
                    self._span = span = new_span(self._source, self._lineno, cols + 1, cols + end + 1)
                    return span
            else:
                words = self.words
                if words:
                    self._span = span = words[0].span
                    return span
                end = len(self.text)
            self._span = span = span_at(self._source, self._lineno, self._cols, 0, end)
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
        pieces, _ = split_script(self.text, words[start].offset)
        return self._make_words(pieces)

    def script_problem(self, start: int) -> Diagnostic | None:
        """An error if the text from word ``start`` on is not a valid script string."""
        words = self.words
        if start >= len(words):
            return None
        _, problem = split_script(self.text, words[start].offset)
        if problem is None:
            return None
        offset, message = problem
        return error(span_at(self._source, self._lineno, self._cols, offset, offset + 1), message)

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


class Same:
    """The columns of text whose characters all stand at one place: the lines of a
    multi-line definition are reported at the ``$NAME`` that brought them in.
    (One object per replay instead of a list of columns per line.)"""

    __slots__ = ("col",)

    def __init__(self, col: int) -> None:
        self.col = col  # 0-based


Cols = int | list[int] | Same
_new = object.__new__
TOKENIZE = object()  # Line._words: not split yet, and the text needs the full tokenizer


def make_line(text: str, source: Source, lineno: int, cols: Cols, plain: bool = True) -> Line:
    """``plain``: str.split() splits text exactly (ASCII, the only blanks spaces and tabs,
    no quotes) and text starts with a word.

    ``cols`` is an int when text is a slice of the physical line (the column of text[0]
    minus 1), a Same when all of text stands at one column, else a list with the
    0-based column of each character.
    """
    line = _new(Line)
    line.text = text
    line._words = None if plain else TOKENIZE
    line._span = None
    line._source = source
    line._lineno = lineno
    line._cols = cols
    return line


def span_at(source: Source, lineno: int, cols: Cols, offset: int, end: int) -> Span:
    """Span of text[offset:end] of a line located at (source, line, cols)."""
    if type(cols) is int:
        return new_span(source, lineno, cols + offset + 1, cols + end + 1)
    if type(cols) is Same:  # (what a list of that one column gives)
        return new_span(source, lineno, cols.col + 1, cols.col + 2 if end > 0 else None)
    if not cols:
        return Span(source, lineno, 1)
    col = cols[offset] + 1 if offset < len(cols) else cols[-1] + 2
    last = cols[min(end, len(cols)) - 1] + 2 if end > 0 else col
    return Span(source, lineno, col, last if last > col else None)


def split_words(text: str) -> list[tuple[int, int, str]]:
    """keepalived's alloc_strvec(): whitespace separated, "..." groups, quotes removed.

    An unmatched quote ends the line (keepalived reports it; so does :func:`decomment`).
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


def split_script(text: str, pos: int) -> tuple[list[tuple[int, int, str]], tuple[int, str] | None]:
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
                    problem = problem or (pos - 1, f"Missing escape char at end: '{printable(text)}'")
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
            problem = problem or (quote_at, f"String '{printable(text)}': missing terminating {quote}")
        out.append((start, pos, "".join(chars)))
    return out, problem


def _byte_char(value: int) -> str:
    """The character that stands for byte ``value`` (bytes >= 0x80 as surrogateescape)."""
    return chr(value) if value < 0x80 else chr(0xDC00 + value)


def printable(text: str) -> str:
    """Text safe to print: undecodable bytes and NULs shown as U+FFFD."""
    return _UNPRINTABLE.sub("\ufffd", text) if _UNPRINTABLE.search(text) else text


def cols_slice(cols: Cols, start: int, end: int | None = None) -> Cols:
    if type(cols) is int:
        return cols + start
    if type(cols) is Same:
        return cols
    return cols[start:end]


def column(cols: Cols, i: int) -> int:
    """1-based column of character ``i``."""
    if type(cols) is int:
        return cols + i + 1
    if type(cols) is Same:
        return cols.col + 1
    if not cols:
        return 1
    return cols[min(i, len(cols) - 1)] + 1


def decomment(s: str, cols: Cols) -> tuple[str, Cols, bool]:
    """keepalived 2.2.7's decomment(): strip blanks and comments (``\\#`` starts one too).

    Returns the text, its columns, and whether a double quote was left open.
    A trailing backslash is kept (it continues ``$NAME=`` definitions).
    """
    if _DECOMMENT_CHARS.search(s) is None:  # nothing but blanks to remove (the usual case)
        left = s.lstrip(" \t")
        text = left.rstrip(" \t")
        lead = len(s) - len(left)
        return text, cols_slice(cols, lead, lead + len(text)), False
    lead = len(s) - len(s.lstrip(" \t"))
    if lead:
        s = s[lead:]
        cols = cols_slice(cols, lead)
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
        cols = [column(s_cols, i) - 1 for i in keep]
    else:
        text = s[:end]
        cols = cols_slice(cols, 0, end)
    stripped = text.rstrip(" \t")
    if len(stripped) != len(text):
        text = stripped
        if type(cols) is list:
            cols = cols[: len(text)]
    if cont >= 0:
        if type(cols) is int:
            cols = list(range(cols, cols + len(text)))
        if type(cols) is list:
            cols.append(column(s_cols, cont) - 1)
        text += "\\"
    return text, cols, quote


def skip_blanks(text: str, pos: int) -> int:
    return _BLANKS.match(text, pos).end()
