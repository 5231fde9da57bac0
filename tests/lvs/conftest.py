from __future__ import annotations

import textwrap

import pytest

from pyvrrpd.config import model as m
from pyvrrpd.config.build import build
from pyvrrpd.config.diagnostics import Severity
from pyvrrpd.config.lexer import read_config
from pyvrrpd.config.parser import parse


@pytest.fixture
def config(tmp_path):
    """keepalived config text -> model.Config (no error allowed)."""

    def _config(text: str) -> m.Config:
        path = tmp_path / "keepalived.conf"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        lines, _ = read_config(str(path))
        root, _ = parse(lines)
        cfg, diags = build(root)
        errors = [d.message for d in diags if d.severity is Severity.ERROR]
        assert not errors, errors
        return cfg

    return _config
