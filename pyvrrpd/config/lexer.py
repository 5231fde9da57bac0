"""keepalived 2.2.7 config reading: files, includes, macros, conditionals -> logical lines.

CONTRACT (other modules rely on exactly this; implementation to be filled in):

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
  keepalived's *script* keywords (single and double quotes, shell-like escapes).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyvrrpd.config.diagnostics import Diagnostic, Span


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    span: Span  # where the word starts in its physical file (for macro output: the $NAME)
    offset: int = 0  # index of the word's first character in Line.text


@dataclass(frozen=True, slots=True)
class Line:
    words: tuple[Word, ...]
    text: str  # the logical line after decommenting and expansion (brace pieces alone)
    span: Span  # span of the first word

    @property
    def first(self) -> str:
        return self.words[0].text

    def script_words(self, start: int) -> tuple[Word, ...]:
        raise NotImplementedError


def default_config_id() -> str:
    """keepalived's default config-id: the node name up to the first dot."""
    import socket

    return socket.gethostname().split(".", 1)[0]


def read_config(
    path: str,
    *,
    config_id: str | None = None,
    include_check: str | None = None,
) -> tuple[list[Line], list[Diagnostic]]:
    raise NotImplementedError
