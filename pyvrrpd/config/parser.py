"""Logical lines -> a tree of keyword nodes, with keepalived 2.2.7's block structure.

CONTRACT (model/build code relies on exactly this; implementation to be filled in):

* :func:`parse` takes the lines from :func:`pyvrrpd.config.lexer.read_config` and returns
  ``(root, diagnostics)``. ``root`` is a :class:`Node` with keyword ``""`` whose
  ``children`` are the top-level statements in file order. It never raises.
* Each statement is a :class:`Node`:
  - ``keyword``: the canonical keyword as written (aliases keep their own spelling;
    ``kwdef.canonical`` names the keyword they stand for);
  - ``words``: the whole statement's words, ``words[0]`` being the keyword itself;
    for script keywords (``kwdef.script``) the words after the keyword come from
    ``Line.script_words`` (quotes and escapes applied);
  - ``children``: for keyword blocks (``vrrp_instance``, ``virtual_server``, ``real_server``,
    ``TCP_CHECK``, ``url``, ``authentication``, ...) the statements inside, in order;
  - ``items``: for value blocks (``virtual_ipaddress``, ``unicast_peer``, ``track_script``,
    ``group``, ``notification_email``, ...) one tuple of words per inner line;
  - ``span``: span of the keyword word; ``end``: span of the closing ``}`` if any.
* Unknown keywords are reported and left out of the tree. Statements whose structure
  is broken are left out, with a diagnostic; everything else is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyvrrpd.config.diagnostics import Diagnostic, Span
from pyvrrpd.config.lexer import Line, Word


@dataclass(frozen=True, slots=True)
class Node:
    keyword: str
    words: tuple[Word, ...]
    span: Span
    children: tuple["Node", ...] = ()
    items: tuple[tuple[Word, ...], ...] = ()
    end: Span | None = None
    kwdef: object = field(default=None, compare=False, repr=False)  # keywords.Keyword

    @property
    def args(self) -> tuple[Word, ...]:
        return self.words[1:]

    def find(self, keyword: str) -> list["Node"]:
        return [c for c in self.children if c.keyword == keyword]


def parse(lines: list[Line]) -> tuple[Node, list[Diagnostic]]:
    raise NotImplementedError
