"""What ``--check-config`` says about support is the truth, and the one place that says it.

* every keyword marked supported (keywords.SUPPORTED) is read by the build: its block's
  reader has a ``case`` for it;
"""

from __future__ import annotations

import ast
import inspect
import textwrap

from pyvrrpd.config import keywords
from pyvrrpd.config.build import READ_ELSEWHERE, READERS

ROOT = "/".join  # a block's key from its path


def _literals(pattern: ast.pattern) -> set[str]:
    if isinstance(pattern, ast.MatchValue) and isinstance(pattern.value, ast.Constant):
        return {pattern.value.value}
    if isinstance(pattern, ast.MatchOr):
        return set().union(*(_literals(p) for p in pattern.patterns))
    if isinstance(pattern, ast.MatchAs) and pattern.pattern is not None:
        return _literals(pattern.pattern)
    return set()


def handled(reader) -> set[str]:
    """The keywords a block's reader handles: the TOP table's keys, or its ``case`` labels."""
    if isinstance(reader, dict):
        return set(reader)
    tree = ast.parse(textwrap.dedent(inspect.getsource(reader)))
    cases = [n for n in ast.walk(tree) if isinstance(n, ast.match_case)]
    assert cases, f"{reader.__qualname__} has no match/case"
    return set().union(*(_literals(c.pattern) for c in cases))


# --------------------------------------------------------------------------- supported means read


def test_every_supported_keyword_is_read_by_the_build():
    missing = []
    for kw in keywords.walk():
        if not kw.supported:
            continue
        if kw.key in READ_ELSEWHERE:
            continue
        block = ROOT(kw.path[:-1])
        reader = READERS.get(block)
        if reader is None:
            missing.append(f"{kw.key}: no reader for block {block!r} in build.READERS")
        elif kw.name not in handled(reader):
            missing.append(f"{kw.key}: no case for it in {getattr(reader, '__qualname__', 'TOP')}")
    assert missing == []


def test_keywords_read_elsewhere_are_supported_and_read_there():
    for key, where in READ_ELSEWHERE.items():
        assert keywords.find(key).supported, key
        path = where.split(" ")[0]
        with open(path) as f:
            assert key.rsplit("/", 1)[1] in f.read(), (key, path)


def test_every_case_of_a_reader_is_a_keyword_of_its_block():
    for block, reader in READERS.items():
        kw = keywords.find(block) if block else keywords.ROOT
        assert kw is not None, block
        unknown = handled(reader) - set(kw.children)
        assert unknown == set(), (block, unknown)


def test_the_keywords_that_did_nothing_are_not_marked_supported():
    for key in ("global_defs/vmac_prefix", "global_defs/vmac_addr_prefix", "global_defs/process_names",
                "global_defs/process_name", "global_defs/vrrp_process_name", "global_defs/checker_process_name",
                "global_defs/lvs_process_name", "global_defs/bfd_process_name",
                "vrrp_instance/dont_track_primary", "vrrp_instance/debug"):
        assert not keywords.find(key).supported, key
