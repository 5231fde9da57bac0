"""pyvrrpd.core is sans-I/O: it may import only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "pyvrrpd" / "core"
# Standard-library modules that would let the core do I/O, read a clock or log.
FORBIDDEN = {"socket", "select", "selectors", "asyncio", "time", "logging", "os", "subprocess", "threading",
             "signal", "ssl", "datetime", "random"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            names.add(node.module or "")
    return names


def test_core_imports_only_stdlib_and_itself() -> None:
    files = sorted(CORE.glob("*.py"))
    assert files
    for path in files:
        for name in imports(path):
            top = name.split(".")[0]
            if name == "pyvrrpd.core" or name.startswith("pyvrrpd.core."):
                continue
            assert top in sys.stdlib_module_names, f"{path.name} imports {name}"
            assert top not in FORBIDDEN, f"{path.name} imports {name}: the core must not do I/O, time or logging"
