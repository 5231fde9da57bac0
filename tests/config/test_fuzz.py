"""Property tests: mutated real configs always give diagnostics with valid spans, never an exception.

Seeds are the shipped examples plus (where ../shared is present) the keepalived corpus; mutations
delete, duplicate and swap lines, splice in random bytes, and nest blocks deeply. The whole
pipeline (lexer -> parser -> build, host checks off) runs on each.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyvrrpd.config.diagnostics import Severity
from pyvrrpd.config.load import load

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "keepalived-conf" / "configs"


def _seeds() -> list[str]:
    files = [ROOT / "conf" / "keepalived.conf.example", *sorted((ROOT / "conf" / "examples").glob("*.conf"))]
    if CORPUS.is_dir():
        corpus = sorted(p for p in CORPUS.glob("*.conf") if p.stat().st_size < 20_000)
        files += corpus[:: max(1, len(corpus) // 60)]  # a spread of about 60 real configs
    return [p.read_text(errors="replace") for p in files]


SEEDS = _seeds()


@st.composite
def mutated(draw) -> bytes:
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "bytes", "nest", "truncate"]))
        if not lines:
            lines = ["{"]
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(j, lines[i])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "bytes":
            junk = draw(st.binary(max_size=40)).decode("latin-1")
            cut = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:cut] + junk + lines[i][cut:]
        elif op == "nest":
            depth = draw(st.integers(1, 300))
            kw = draw(st.sampled_from(["vrrp_instance X", "virtual_server 198.51.100.1 80", "url", "{", "x"]))
            lines[i:i] = [f"{kw} {{"] * depth + ["}"] * draw(st.integers(0, depth + 2))
        elif op == "truncate":
            lines = lines[:i]
    return "\n".join(lines).encode("latin-1", errors="replace")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_mutated_configs_give_diagnostics_not_exceptions(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "keepalived.conf"
    path.write_bytes(data)
    loaded = load(str(path), config_id="fuzz", host_checks=False)
    n_lines = data.count(b"\n") + 1
    for d in loaded.diagnostics:
        assert isinstance(d.severity, Severity)
        assert d.message
        if d.span is not None:
            assert d.span.line >= 1 and d.span.col >= 1
            if os.path.samefile(d.span.source.path, path):
                assert d.span.line <= n_lines + 1


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2000))
def test_random_bytes(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "keepalived.conf"
    path.write_bytes(data)
    loaded = load(str(path), config_id="fuzz", host_checks=False)
    assert all(d.span is None or (d.span.line >= 1 and d.span.col >= 1) for d in loaded.diagnostics)
