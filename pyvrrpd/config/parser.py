"""Logical lines -> a tree of keyword nodes, with keepalived 2.2.7's block structure.

CONTRACT (model/build code relies on exactly this):

* :func:`parse` takes the lines from :func:`pyvrrpd.config.lexer.read_config` and returns
  ``(root, diagnostics)``. ``root`` is a :class:`Node` with keyword ``""`` whose
  ``children`` are the top-level statements in file order. It never raises.
* Each statement is a :class:`Node`:
  - ``keyword``: the canonical keyword as written (aliases keep their own spelling;
    ``kwdef.canonical`` names the keyword they stand for);
  - ``words``: the whole statement's words, ``words[0]`` being the keyword itself;
    for script keywords (``kwdef.script``) the words after the keyword come from
    ``Line.script_words`` (quotes and escapes applied);
  - ``texts``: the same words' texts, as a tuple of strings (read values from these:
    ``words``, with their spans, are built on first use, for diagnostics);
  - ``children``: for keyword blocks (``vrrp_instance``, ``virtual_server``, ``real_server``,
    ``TCP_CHECK``, ``url``, ``authentication``, ...) the statements inside, in order;
  - ``items``: for value blocks (``virtual_ipaddress``, ``unicast_peer``, ``track_script``,
    ``group``, ``notification_email``, ...) one tuple of words per inner line;
  - ``span``: span of the keyword word; ``end``: span of the closing ``}`` if any
    (both built on first use).
* Unknown keywords are reported and left out of the tree. Statements whose structure
  is broken are left out, with a diagnostic; everything else is kept.

Details the model code can rely on:

* words beyond ``kwdef.max_args`` are dropped from ``Node.words`` (keepalived ignores
  them too; a note says so), so ``Node.args`` holds only what keepalived reads;
* a statement that lacks a required argument (``kwdef.min_args``) is left out;
* blocks still open at the end of the input are kept, with ``end=None``;
* a keyword pyvrrpd does not implement yet (``kwdef.supported`` false) is kept in the
  tree and reported once per config; inside a block that is itself not supported
  nothing more is reported.

Structure follows keepalived's ``process_stream()`` (facts §1.3), including its odd
parts, so pyvrrpd reads a broken config the way keepalived does: a ``{`` that does
not open a known block is ignored, the lines after it belong to the enclosing block,
and its ``}`` closes the enclosing block. Diagnostics say when that happened.

Severities (pyvrrpd's own; keepalived's ``-t`` treats all of them alike): errors for
a broken block structure (missing ``{``, extra ``}``, unclosed block, too deep) and a
missing parameter (keepalived exits 2 on those); warnings for unknown, deprecated and
not-yet-supported keywords and for ignored braces; notes for ignored extra words.

The parser is a loop over lines with an explicit stack, never recursion, so no input
can exhaust Python's stack; it does a couple of dict lookups per line and makes no
Word or Span objects for well-formed statements.
"""

from __future__ import annotations

import gc

from pyvrrpd.config import keywords
from pyvrrpd.config.diagnostics import Diagnostic, Source, Span, error, not_supported, note, warning
from pyvrrpd.config.keywords import Kind, Keyword
from pyvrrpd.config.lexer import Line, Word

#: Deepest block nesting accepted. keepalived's grammar nests at most 5 deep
#: (top > virtual_server > real_server > HTTP_GET > url), so this only guards the
#: parser's own stack.
MAX_DEPTH = 16

_VALUE_BLOCK = Kind.VALUE_BLOCK
_SIMPLE = Kind.SIMPLE


class Node:
    """One statement. Treat as immutable.

    ``texts`` are the statement's words as strings; ``words`` (with spans), ``span``
    and ``end`` are built on first use, because for most statements only the texts are
    ever read (spans are needed for diagnostics and for the model's ``span`` fields).
    (_Parser.run() makes the common ones inline: a slot added here is set there too.)
    """

    __slots__ = ("keyword", "texts", "children", "items", "kwdef", "_line", "_end", "_words")

    def __init__(
        self,
        keyword: str,
        texts: tuple[str, ...],
        line: Line,
        kwdef: Keyword | None,
        children: tuple["Node", ...] = (),
        items: tuple[tuple[Word, ...], ...] = (),
        end: Line | None = None,
        words: tuple[Word, ...] | None = None,
    ) -> None:
        self.keyword = keyword
        self.texts = texts  # words[i].text for each word
        self.children = children
        self.items = items
        self.kwdef = kwdef  # its keyword table entry
        self._line = line  # the statement's line: words and span come from it
        self._end = end  # the line of the closing '}', if any
        self._words = words  # None: the line's first len(texts) words

    @property
    def words(self) -> tuple[Word, ...]:
        words = self._words
        if words is None:
            words = self._words = self._line.words[: len(self.texts)]
        return words

    @property
    def args(self) -> tuple[Word, ...]:
        return self.words[1:]

    @property
    def span(self) -> Span:
        """Span of the keyword word."""
        return self._line.span

    @property
    def end(self) -> Span | None:
        """Span of the closing ``}``; None for a simple statement or a block left open."""
        return None if self._end is None else self._end.span

    def find(self, keyword: str) -> list["Node"]:
        return [c for c in self.children if c.keyword == keyword]

    def __repr__(self) -> str:
        return f"Node({self.keyword!r}, {self.texts!r} @ {self.span})"


# Per block: keyword name -> (Keyword, lo, hi, sub). A line of n words with
# lo < n <= hi is the common case the parser loop handles inline: a non-script,
# non-deprecated keyword with an acceptable number of arguments; every other
# keyword gets lo = hi = _NEVER and goes the long way. ``sub`` is the table of the
# keyword's own block (empty for a value block), None for a simple keyword.
_Entry = tuple[Keyword, int, int, "dict[str, _Entry] | None"]
_NEVER = 1 << 30


def _table(block: Keyword) -> dict[str, _Entry]:
    table = {}
    for name, kw in block.children.items():
        sub = None if kw.kind is _SIMPLE else _table(kw)
        if kw.script or kw.deprecated:
            table[name] = (kw, _NEVER, _NEVER, sub)
        else:
            table[name] = (kw, kw.min_args, _NEVER if kw.max_args is None else kw.max_args + 1, sub)
    return table


_ROOT_TABLE = _table(keywords.ROOT)


class _Frame:
    """One open block on the parser's stack. (_Parser.run() makes the common one inline:
    a field added here is added there too.)"""

    __slots__ = (
        "kw", "lookup", "line", "texts", "words", "nodes", "items", "special", "keep", "report", "strays", "skip"
    )

    def __init__(
        self,
        kw: Keyword,
        lookup: dict[str, _Entry],
        line: Line | None,
        texts: tuple[str, ...],
        keep: bool,
        report: bool,
        words: tuple[Word, ...] | None = None,
    ) -> None:
        self.kw = kw
        self.lookup = lookup  # this block's keywords
        self.line = line  # the block keyword's line (None for the top level)
        self.texts = texts
        self.words = words  # set when they differ from the line's (extra words dropped)
        self.nodes: list[Node] = []
        self.items: list[tuple[Word, ...]] | None = [] if kw.kind is _VALUE_BLOCK else None
        self.special = True  # wants its '{' next (or is being skipped): the loop's slow path
        self.keep = keep  # becomes a Node when closed
        self.report = report  # report not-supported keywords inside
        self.strays: list[Span] = []  # ignored '{'s; the next '}' still closes this block
        self.skip: int | None = None  # brace depth while skipping a too-deep block

    @property
    def label(self) -> str:
        return f"`{self.kw.name}`" if self.kw.path else "the top level"


def parse(lines: list[Line]) -> tuple[Node, list[Diagnostic]]:
    # A big config means ~10^5 new objects and no reference cycles; the cyclic GC
    # would rescan the growing heap again and again, which costs more than the parse.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Parser().run(lines)
    finally:
        if gc_was_enabled:
            gc.enable()


class _Parser:
    def __init__(self) -> None:
        self.diags: list[Diagnostic] = []
        # id(Keyword) -> [keyword, line of the first use, uses]; reported once at the end
        self.unsupported: dict[int, list] = {}
        # spans of ignored '{'s whose '}' closed an enclosing block early
        self.shifted: list[Span] = []
        self.hint_cache: dict[tuple[int, str], tuple[str, ...]] = {}

    def run(self, lines: list[Line]) -> tuple[Node, list[Diagnostic]]:
        root = _Frame(keywords.ROOT, _ROOT_TABLE, None, (), keep=True, report=True)
        root.special = False
        stack = [root]
        top = root
        prev: str | None = None  # keyword of the previous statement, for "Unexpected '{'" notes
        known: dict[str, tuple[str, ...]] = {}
        new = object.__new__
        for line in lines:
            # Brace lines are recognised by their text, and the words of a plain line
            # (line._words is None) are text.split(): no Word objects on this path.
            text = line.text
            last, prev = prev, None
            if top.special:
                if text == "{" and top.skip is None:  # the usual '{' after a block keyword
                    top.special = False
                    continue
                top = self._special(stack, line)
                if top is None:
                    top = stack[-1]
                    continue
            if text == "}":
                if top.strays or len(stack) == 1:
                    self._close(stack, line)
                    top = stack[-1]
                    continue
                stack.pop()  # the usual end of a block: _close() and _node(), inlined
                if top.keep:
                    node = new(Node)
                    node.keyword = top.texts[0]
                    node.texts = top.texts
                    node.children = tuple(top.nodes)
                    node.items = tuple(top.items) if top.items else ()
                    node.kwdef = top.kw
                    node._line = top.line
                    node._end = line
                    node._words = top.words
                    stack[-1].nodes.append(node)
                top = stack[-1]
                continue
            if text == "{":
                self._stray_open(top, line.span, last)
                continue

            if line._words is None:
                # Most statements repeat ("weight 1", "retry 3"): one shared tuple per text
                # costs a dict lookup instead of a split, and less memory.
                texts = known.get(text)
                if texts is None:
                    texts = known[text] = tuple(text.split())
            else:
                texts = tuple(w.text for w in line.words)
                if not texts:
                    continue
            first = texts[0]
            if top.items is not None:
                if first == "}" or first == "{":  # a quoted brace: keepalived takes it as a brace
                    self._brace(stack, first, line, last)
                    top = stack[-1]
                else:
                    top.items.append(line.words)
                continue

            entry = top.lookup.get(first)
            if entry is None:
                if first == "}" or first == "{":
                    self._brace(stack, first, line, last)
                    top = stack[-1]
                else:
                    self._unknown(top, first, line)
                    prev = first
                continue
            prev = first
            kw, lo, hi, sub = entry
            if lo < len(texts) <= hi and (sub is None or len(stack) <= MAX_DEPTH):
                if top.report and not kw.supported:
                    self._count_unsupported(kw, line)
                if sub is None:
                    # Node(first, texts, line, kw), inlined: a statement per line makes this
                    # the parser's most common object (97,000 lines: parse 47.6 -> 45.4 ms, medians
                    # of 12 alternating runs)
                    node = new(Node)
                    node.keyword = first
                    node.texts = texts
                    node.children = node.items = ()
                    node.kwdef = kw
                    node._line = line
                    node._end = node._words = None
                    top.nodes.append(node)
                else:
                    # _Frame(kw, sub, line, texts, top.keep, top.report and kw.supported), inlined
                    # as the block's Node is at its '}' below (21,000 blocks in the 97,000-line
                    # bench config: parse 42.9 -> 38.7 ms for the two, medians of 14 alternating runs)
                    frame = new(_Frame)
                    frame.kw = kw
                    frame.lookup = sub
                    frame.line = line
                    frame.texts = texts
                    frame.words = frame.skip = None
                    frame.nodes = []
                    frame.items = [] if kw.kind is _VALUE_BLOCK else None
                    frame.special = True
                    frame.keep = top.keep
                    frame.report = top.report and kw.supported
                    frame.strays = []
                    stack.append(frame)
                    top = frame
            else:
                self._statement(stack, entry, line)
                top = stack[-1]

        self._end_of_input(stack)
        self._report_unsupported()
        first_line = lines[0] if lines else Line((), "", Span(Source("<empty>"), 1))
        return Node("", (), first_line, keywords.ROOT, tuple(root.nodes)), self.diags

    def _brace(self, stack: list[_Frame], brace: str, line: Line, last: str | None) -> None:
        if brace == "}":
            self._close(stack, line)
        else:
            self._stray_open(stack[-1], line.span, last)

    def _statement(self, stack: list[_Frame], entry: _Entry, line: Line) -> None:
        """A known keyword, other than the common case the loop handles."""
        kw, _, _, sub = entry
        top = stack[-1]
        words = line.words
        word0 = words[0]
        if kw.script:
            words = (word0,) + line.script_words(1)
            problem = line.script_problem(1)
            if problem is not None:
                self.diags.append(problem)
        ok = True
        nargs = len(words) - 1
        if nargs < kw.min_args:
            self._missing_args(kw, word0)
            ok = False
        elif kw.max_args is not None and nargs > kw.max_args:
            self._extra_args(kw, words)
            words = words[: kw.max_args + 1]
        if kw.deprecated:
            self.diags.append(warning(word0.span, f"`{kw.name}` is deprecated: {kw.deprecated}"))
        if top.report and not kw.supported:
            self._count_unsupported(kw, line)

        texts = tuple(w.text for w in words)
        if kw.kind is _SIMPLE:
            if ok:
                top.nodes.append(Node(kw.name, texts, line, kw, words=words))
            return
        frame = _Frame(kw, sub, line, texts, ok and top.keep, top.report and kw.supported, words)
        if len(stack) > MAX_DEPTH:
            self.diags.append(
                error(word0.span, f"Blocks nested more than {MAX_DEPTH} deep: `{kw.name}` and its contents are skipped")
            )
            frame.skip = 0
        stack.append(frame)

    # ----------------------------------------------------------------- structure

    def _special(self, stack: list[_Frame], line: Line) -> _Frame | None:
        """A line in a block that wants its '{' or is being skipped.

        Returns the frame the line belongs to, or None when the line is used up.
        """
        top = stack[-1]
        words = line.words
        first = words[0].text if words else ""
        if top.skip is not None:  # a too-deep block: count braces
            if first == "{":
                top.skip += 1
                return None
            if top.skip > 0:
                if first == "}":
                    top.skip -= 1
                    if top.skip == 0:
                        stack.pop()
                return None
            stack.pop()  # the block had no '{': nothing to skip
            return stack[-1]
        top.special = False
        if first == "{":
            return None
        self._missing_open(top, line.span)
        return top

    def _missing_open(self, frame: _Frame, where: Span | None = None) -> None:
        """``where``: the line that should have been the '{' (keepalived reports it there)."""
        kw = frame.kw
        if kw.kind is _VALUE_BLOCK:
            then = f"keepalived reads the lines that follow as entries of `{kw.name}`, up to the next '}}'"
        else:
            then = f"keepalived reads the lines that follow as the contents of `{kw.name}` anyway"
        opened = frame.line.span
        notes = (then,) if where is None else (f"`{kw.name}` starts at {opened}", then)
        self.diags.append(
            warning(where or opened, f"Missing '{{' at beginning of configuration block `{kw.name}`", *notes)
        )

    def _stray_open(self, frame: _Frame, span: Span, last: str | None) -> None:
        frame.strays.append(span)
        if frame.items is not None:
            self.diags.append(
                warning(
                    span,
                    f"Unexpected '{{' inside `{frame.kw.name}` - ignoring",
                    f"a value block does not nest: the next '}}' ends `{frame.kw.name}`",
                )
            )
            return
        if not frame.kw.path:
            tail = "the lines inside are read as top-level keywords"
        else:
            tail = f"the lines inside are read as {frame.label} keywords and the next '}}' closes {frame.label}"
        if last is None:
            why = f"this '{{' opens no block: {tail}"
        elif last not in frame.lookup:
            why = f"keepalived does not skip the block of an unknown keyword (`{last}`): {tail}"
        else:
            why = f"`{last}` does not open a block: {tail}"
        self.diags.append(warning(span, "Unexpected '{' - ignoring", why))

    def _close(self, stack: list[_Frame], line: Line) -> None:
        frame = stack[-1]
        if len(stack) == 1:
            if frame.strays:
                opened = frame.strays.pop()
                self.diags.append(
                    warning(line.span, "Unknown keyword '}'",
                            f"this '}}' ends the ignored block opened at {opened}; keepalived reports it the same way")
                )
            else:
                notes = ()
                if self.shifted:
                    notes = (
                        f"the block structure shifted at {self.shifted.pop(0)}: that '{{' was ignored, "
                        "so its '}' closed the enclosing block early",
                    )
                self.diags.append(warning(line.span, "Extra '}' found", *notes))
            return
        stack.pop()
        if frame.strays:
            opened = frame.strays.pop()
            self.shifted.append(opened)
            self.diags.append(
                note(
                    line.span,
                    f"this '}}' closes {frame.label} (opened at {frame.line.span}), "
                    f"not the ignored block at {opened}",
                )
            )
        if frame.keep:
            stack[-1].nodes.append(self._node(frame, line))

    def _end_of_input(self, stack: list[_Frame]) -> None:
        while len(stack) > 1:
            frame = stack.pop()
            if frame.skip is not None:
                continue
            if frame.special:
                self._missing_open(frame)
            else:
                self.diags.append(
                    warning(
                        frame.line.span,
                        f"Missing '}}': {frame.label} is still open at the end of the configuration",
                    )
                )
            if frame.keep:
                stack[-1].nodes.append(self._node(frame, None))

    @staticmethod
    def _node(frame: _Frame, end: Line | None) -> Node:  # (inlined in run(): keep both alike)
        items = tuple(frame.items) if frame.items else ()
        return Node(frame.texts[0], frame.texts, frame.line, frame.kw, tuple(frame.nodes), items, end, frame.words)

    # ----------------------------------------------------------------- statements

    def _missing_args(self, kw: Keyword, word: Word) -> None:
        need = "a value" if kw.min_args == 1 else f"at least {kw.min_args} values"
        self.diags.append(
            error(
                word.span,
                f"`{kw.name}` needs {need}",
                "keepalived 2.2.7 exits with status 2 here, unless this keyword's handler checks for the value itself",
            )
        )

    def _extra_args(self, kw: Keyword, words: tuple[Word, ...]) -> None:
        extra = words[kw.max_args + 1 :]
        text = " ".join(w.text for w in extra)
        if kw.kind is _VALUE_BLOCK:
            self.diags.append(
                warning(extra[0].span, f"Block {kw.name} has extra parameters {text}", "keepalived ignores them")
            )
        else:
            plural = "s" if len(extra) > 1 else ""
            self.diags.append(note(extra[0].span, f"extra word{plural} `{text}` ignored (keepalived ignores them too)"))

    def _count_unsupported(self, kw: Keyword, line: Line) -> None:
        entry = self.unsupported.get(id(kw))
        if entry is None:
            self.unsupported[id(kw)] = [kw, line, 1]
        else:
            entry[2] += 1

    def _report_unsupported(self) -> None:
        for kw, line, uses in self.unsupported.values():
            where = kw.path[-2] if len(kw.path) > 1 else None
            notes = () if kw.kind is _SIMPLE else ("pyvrrpd does not act on it or on anything inside it",)
            self.diags.append(not_supported(line.span, kw.name, where, uses, *notes))

    # ----------------------------------------------------------------- unknown keywords

    def _unknown(self, frame: _Frame, name: str, line: Line) -> None:
        span = line.span
        key = f"{frame.kw.key}/{name}" if frame.kw.path else name
        if key in keywords.HEAD_ONLY:
            self.diags.append(
                warning(span, f"Unknown keyword '{name}' (newer keepalived versions know it; 2.2.7 does not)")
            )
            return
        not_built = keywords.NOT_IN_DEBIAN_BUILD.get(key)
        if not_built is not None:
            self.diags.append(warning(span, f"Unknown keyword '{name}' ({not_built})"))
            return
        old = keywords.OLD_SPELLINGS.get(key)
        if old is not None:
            use = f"; use `{old.instead}`" if old.instead else ""
            self.diags.append(
                warning(
                    span,
                    f"Unknown keyword '{name}' ({old.why}){use}",
                    "ignored, as keepalived 2.2.7 ignores it",
                )
            )
            return
        cache_key = (id(frame.kw), name)
        hints = self.hint_cache.get(cache_key)
        if hints is None:
            hints = self.hint_cache[cache_key] = _hints(frame, name)
        self.diags.append(warning(span, f"Unknown keyword '{name}'", *hints))


def _hints(frame: _Frame, name: str) -> tuple[str, ...]:
    """"did you mean" and "belongs in" notes for an unknown keyword."""
    here = frame.kw.children
    hints = []
    places = keywords.PLACES.get(name)
    lowered = name.lower()
    same_but_case = [k for k in here if k.lower() == lowered]
    if same_but_case:
        hints.append(f"keywords are case-sensitive: did you mean `{same_but_case[0]}`?")
    else:
        # a keyword of another block only gets a very close match (`priority` is
        # not `bfd_priority`, but `garp_master_delay` is `vrrp_garp_master_delay`)
        import difflib  # only for unknown keywords: not worth importing up front

        close = difflib.get_close_matches(name, list(here), n=1, cutoff=0.85 if places else 0.75)
        if close:
            hints.append(f"did you mean `{close[0]}`?")
    if places:
        shown = ", ".join(places[:3]) + (", ..." if len(places) > 3 else "")
        here_name = frame.kw.name if frame.kw.path else "the top level"
        hints.append(f"`{name}` belongs in {shown}, not {here_name}")
    return tuple(hints)
