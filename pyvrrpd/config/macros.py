"""keepalived's macros: ``@id`` conditions, ``$NAME`` definitions and substitution, ``~SEQ``/``~LST``.

The reader (:mod:`pyvrrpd.config.lexer`) hands each logical line that may hold a macro
to :meth:`Macros.expand`; lines that a macro makes (the later lines of a multi-line
definition, each round of a ``~SEQ``) go back to the reader through ``feed``, as
keepalived's read_line() replays them, so they get the same treatment as read lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from pyvrrpd.config.diagnostics import Diagnostic, Source, Span, error, warning
from pyvrrpd.config.tokens import Cols, Same, column, cols_slice, decomment, printable, skip_blanks

MAX_EXPANDED_LINE = 1023  # a line after $NAME substitution must still fit keepalived's line buffer
MAX_REPLAYED_LINES = 1_000_000  # ~SEQ/~LST iterations plus lines of multi-line definitions
MAX_SUBSTITUTIONS = 10_000  # $NAME replacements in one line

_ISSPACE = " \t\n\v\f\r"
_BLANK = re.compile(r"[ \t]")
_DEFINITION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# $NAME (then a blank, ',', ')' or the end) or ${NAME} or ${NAME params}: params are
# digits and spaces that end with a digit
_REFERENCE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*+)(?: *+|([ 0-9]*+(?<=[0-9])))\}|([A-Za-z_][A-Za-z0-9_]*+)(?=[ \t,)]|\Z))"
)

Feed = Callable[[str, Cols, Source, int, int], None]  # (text, cols, source, line, depth)


class Definition:
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


DROP = object()  # Macros.substitute(): the line is dropped (a diagnostic says why)

class Macros:
    """The definitions made so far and the state of the replays in progress.

    ``feed(text, cols, source, n, depth)`` takes a line a macro made back to the reader;
    ``open_quote(text, cols, source, n)`` reports an unterminated quote (once per line).
    """

    def __init__(self, config_id: str, diags: list[Diagnostic], feed: Feed, open_quote: Callable) -> None:
        self.config_id = config_id
        self.diags = diags  # the reader's: one list in reading order
        self.feed = feed
        self.open_quote = open_quote
        self.defs: dict[str, Definition] = {
            "_PWD": Definition("_PWD", builtin=True),
            "_INSTANCE": Definition("_INSTANCE", builtin=True),
            "_RANDOM": Definition("_RANDOM", builtin=True),
            "_HASH": Definition("_HASH", ["#"]),
            "_BANG": Definition("_BANG", ["!"]),
        }
        self.collecting: Definition | None = None  # multi-line definition being read
        self.replayed = 0
        self.replay_exhausted = False
        self.expanding: list[str] = []  # multi-line definitions whose lines are being replayed

    def close(self) -> None:
        """Drop the reader's callbacks once reading is done: they refer back to the reader,
        and without this the reader, its lines and these definitions would wait for the
        cyclic collector instead of being freed when the last reference goes."""
        self.feed = self.open_quote = None

    def expand(
        self,
        text: str,
        cols: Cols,
        source: Source,
        n: int,
        tails: list[tuple[str, list[str], int]],
        depth: int,
    ) -> tuple[str, Cols] | None:
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
                j = skip_blanks(text, blank.start())
                text, cols = text[j:], cols_slice(cols, j)
            if text.startswith("$") and self._define(text, cols, source, n):
                return None
            if text.startswith("~"):
                if text.startswith("~SEQ") or text.startswith("~LST"):
                    self._sequence(text, cols, source, n, depth)
                    return None
                return text, cols
            if "$" not in text:
                return text, cols
            result = self.substitute(text, cols, source, n, tails)
            if result is None:
                return text, cols
            if result is DROP:
                return None
            text, cols, open_quote = decomment(*result)
            if open_quote:
                self.open_quote(text, cols, source, n)
            if not text:
                return None
            if not text.startswith("@") and "$" not in text:
                return text, cols
        self.diags.append(
            error(Span(source, n, column(cols, 0)), "parameter substitution does not settle - line ignored")
        )
        return None

    def _define(self, text: str, cols: Cols, source: Source, n: int) -> bool:
        """``$NAME=VALUE`` (a trailing backslash starts a multi-line definition)."""
        m = _DEFINITION.match(text)
        if m is None:
            return False
        name = m.group(1)
        value = text[skip_blanks(text, m.end()) :]
        span = Span(source, n, column(cols, 0), column(cols, m.end() - 2) + 1)
        if value.endswith("\\"):
            first = value[:-1].rstrip(" \t")
            definition = Definition(name, [first] if first else [], True, span)
            self.collecting = definition
        else:
            definition = Definition(name, [value], False, span)
        self.defs[name] = definition
        return True

    def collect(self, text: str) -> None:
        definition = self.collecting
        if text.endswith("\\"):
            part = text[:-1].rstrip(" \t")
            if part:
                definition.lines.append(part)
        else:
            definition.lines.append(text)
            self.collecting = None

    def end_collecting(self) -> None:
        if not self.collecting.lines:
            self.collecting.multiline = False
        self.collecting = None

    def _reference(self, text: str, i: int) -> tuple[str, Definition, int, str | None] | None:
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

    def substitute(
        self,
        text: str,
        cols: Cols,
        source: Source,
        n: int,
        tails: list[tuple[str, list[str], int]],
    ):
        """keepalived's replace_param(): replace $NAME/${NAME} left to right, rescanning
        each value in place. Returns (text, cols), None if nothing matched, or DROP.

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
                self._cycle(chain + [name], Span(source, n, column(cols, i)))
                return DROP
            count += 1
            if count > MAX_SUBSTITUTIONS:
                self.diags.append(
                    error(Span(source, n, column(cols, i)), "parameter substitution does not terminate - line ignored")
                )
                return DROP
            if type(cols) is int:
                col = cols + i
                cols = list(range(cols, cols + len(text)))
                own_cols = True
            elif type(cols) is Same:
                col = cols.col  # and the value's characters are there too: cols stay as they are
            else:
                col = cols[i] if i < len(cols) else column(cols, i) - 1
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
                return DROP
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

    def replay_definition(self, name: str, lines: list[str], col: int, source: Source, n: int, depth: int) -> None:
        """The second and later lines of a multi-line definition."""
        if not self._budget(len(lines), source, n, col + 1):
            return
        self.expanding.append(name)
        at = Same(col)  # each character of these lines is reported at the $NAME
        try:
            for text in lines:
                self.feed(text, at, source, n, depth + 1)
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

    def _sequence(self, text: str, cols: Cols, source: Source, n: int, depth: int) -> None:
        span = Span(source, n, column(cols, 0))
        if text.startswith("~SEQ"):
            parsed = self._parse_seq(text, cols, source, n)
            kind = "~SEQ"
        else:
            parsed = parse_lst(text)
            kind = "~LST"
        if isinstance(parsed, str):
            self.diags.append(error(span, f"Invalid {kind} specification '{printable(text)}'", parsed))
            return
        names, count, value_sets, rest = parsed
        if not self._budget(count, source, n, span.col):
            return
        body, body_cols = text[rest:], cols_slice(cols, rest)
        for values in value_sets:
            for name, value in zip(names, values):
                self.defs[name] = Definition(name, [value])
            self.feed(body, body_cols, source, n, depth + 1)
            if self.replay_exhausted:
                return

    def _parse_seq(self, text: str, cols: Cols, source: Source, n: int):
        """``~SEQ(var, [start,] [step,] end)`` -> ([var], count, values, body index) or a reason."""
        p = 4
        hex_values = text[p : p + 1] == "x"
        if hex_values:
            p += 1
        p = skip_blanks(text, p)
        if text[p : p + 1] != "(":
            return "expected '(' after ~SEQ"
        p = skip_blanks(text, p + 1)
        var_end = p
        while var_end < len(text) and text[var_end] not in " \t,)":
            var_end += 1
        var = text[p:var_end]
        p = skip_blanks(text, var_end)
        if not var or p >= len(text) or text[p] == ")":
            return "the variable and at least an end value are needed"
        if not _NAME.match(var):
            return f"'{var}' is not a valid variable name"
        if text[p] != ",":
            return "expected ',' after the variable name"
        p = skip_blanks(text, p + 1)
        close = text.find(")", p)
        if close < 0:
            return "missing ')'"
        params = text[p : close + 1]
        if "$" in params:
            tails: list = []
            result = self.substitute(params, cols_slice(cols, p), source, n, tails)
            if result is DROP:
                return "a parameter could not be substituted"
            if tails:
                return "a parameter is a multi-line definition"
            if result is not None:
                params = result[0]
        numbers = []
        q = 0
        while True:
            value, q = strtol(params, q)
            numbers.append(value)
            q = skip_blanks(params, q)
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
        return [var], count, values, skip_blanks(text, close + 1)


def parse_lst(text: str):
    """``~LST(var, v1, v2)`` or ``~LST({a,b}, {1,2}, {3,4})``
    -> (names, count, value sets, body index) or a reason. Missing values are empty."""
    p = skip_blanks(text, 4)
    if text[p : p + 1] != "(":
        return "expected '(' after ~LST"
    p = skip_blanks(text, p + 1)
    close = ","
    if text[p : p + 1] == "{":
        close = "}"
        p = skip_blanks(text, p + 1)
    names: list[str] = []
    while True:
        end = p
        while end < len(text) and text[end] not in " \t,}":
            end += 1
        names.append(text[p:end])
        p = skip_blanks(text, end)
        if text[p : p + 1] == close:
            break
        if text[p : p + 1] != ",":
            return "expected ',' between variable names"
        p = skip_blanks(text, p + 1)
    bad = [name for name in names if not _NAME.match(name)]
    if bad:
        return f"'{bad[0]}' is not a valid variable name"
    if text[p : p + 1] == "}":
        p = skip_blanks(text, p + 1)
    if text[p : p + 1] != ",":
        return "expected ',' after the variable names"
    p = skip_blanks(text, p + 1)
    value_sets: list[list[str]] = []
    while True:
        close = ","
        if text[p : p + 1] == "{":
            close = "}"
            p = skip_blanks(text, p + 1)
        values: list[str] = []
        while True:
            end = p
            while end < len(text) and text[end] not in " \t,})":
                end += 1
            values.append(text[p:end])
            p = skip_blanks(text, end)
            c = text[p : p + 1]
            if c == close or (c == ")" and close == ","):
                break
            if c != ",":
                return "expected ',' between values"
            p = skip_blanks(text, p + 1)
            if len(values) >= len(names):
                return "a value set has more values than there are variables"
        values += [""] * (len(names) - len(values))
        value_sets.append(values)
        if text[p : p + 1] == "}" and close == "}":
            p = skip_blanks(text, p + 1)
        if text[p : p + 1] == ")":
            break
        if text[p : p + 1] != ",":
            return "expected ',' between value sets"
        p = skip_blanks(text, p + 1)
    return names, len(value_sets), value_sets, skip_blanks(text, p + 1)


def strtol(s: str, i: int) -> tuple[int, int]:
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

