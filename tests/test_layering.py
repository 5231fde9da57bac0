"""The layers' import rules, checked with an ``ast`` scan of every module under pyvrrpd/ (lazy imports
inside functions count too):

* ``pyvrrpd.core`` is sans-I/O: it imports only the standard library (no I/O, clock or logging) and itself;
* ``pyvrrpd.config`` never imports ``pyvrrpd.daemon`` or ``pyvrrpd.net`` (nor anyio, pyroute2, aiohttp);
* the pure daemon modules (``PURE``) never import, directly or through the modules they import, anything
  that touches the kernel or runs an event loop: no pyroute2, anyio, sockets, and of ``pyvrrpd.net``
  only the pure spec parsers and constants (``net/specs.py`` is pure by its own contract: the config
  check uses the same parsers);
* subsystems talk through the root: no module of one subsystem imports a module of another, a shared
  module imports no subsystem's module, and only the root imports a subsystem's entry point.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pyvrrpd"
# Standard-library modules that would let the core do I/O, read a clock or log.
FORBIDDEN = {"socket", "select", "selectors", "asyncio", "time", "logging", "os", "subprocess", "threading",
             "signal", "ssl", "datetime", "random"}

# Daemon modules that must stay pure (no kernel, no event loop), so --check-config and the unit tests
# can use them; add any new pure module here.
PURE = {"pyvrrpd.daemon.plan", "pyvrrpd.daemon.verdict"}
# The only pyvrrpd.net modules a pure module may reach: data and parsers, no kernel access.
PURE_NET = {"pyvrrpd.net", "pyvrrpd.net.specs", "pyvrrpd.net.constants"}
IMPURE_TOPS = {"pyroute2", "anyio", "asyncio", "trio", "aiohttp", "structlog", "socket", "_socket", "select",
               "selectors", "subprocess", "threading", "signal", "fcntl"}

# Subsystem → its entry module (the class the root runs) and the modules that are its own. A module not
# listed is shared: it may be imported by any subsystem but imports none. Add the LVS checkers and the
# control API here as they come.
SUBSYSTEMS = {
    "vrrp": ("pyvrrpd.daemon.vrrp", {"pyvrrpd.daemon.vrrp", "pyvrrpd.daemon.instance", "pyvrrpd.daemon.port",
                                     "pyvrrpd.daemon.effects", "pyvrrpd.daemon.sync"}),
    "trackers": ("pyvrrpd.daemon.tracking", {"pyvrrpd.daemon.tracking", "pyvrrpd.daemon.watchers"}),
    "notify": ("pyvrrpd.daemon.notify", {"pyvrrpd.daemon.notify", "pyvrrpd.daemon.smtp"}),
}
ROOT_MODULE = "pyvrrpd.daemon.root"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


@cache
def imports(name: str) -> frozenset[str]:
    """Every module ``name`` imports, absolute; ``from pkg import mod`` counts as ``pkg.mod`` when that is
    a module of ours."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return frozenset(found)


def closure(name: str) -> set[str]:
    """``name`` and everything it imports, following our own modules (and the packages around them), but
    not into ``pyvrrpd.config``: reading files and the host checks are the config layer's own business,
    under its own rule."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current.startswith("pyvrrpd.config"):
            continue
        for imported in imports(current) if current in MODULES else ():
            parts = imported.split(".")
            todo.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES)
            if imported not in MODULES:
                seen.add(imported)
    return seen


def ours(prefix: str) -> list[str]:
    return sorted(n for n in MODULES if n == prefix or n.startswith(prefix + "."))


def test_core_imports_only_stdlib_and_itself() -> None:
    core = ours("pyvrrpd.core")
    assert len(core) > 3
    for name in core:
        for imported in imports(name):
            if imported == "pyvrrpd.core" or imported.startswith("pyvrrpd.core."):
                continue
            top = imported.split(".")[0]
            assert top in sys.stdlib_module_names, f"{name} imports {imported}"
            assert top not in FORBIDDEN, f"{name} imports {imported}: the core must not do I/O, time or logging"


def test_config_never_imports_the_daemon_or_the_kernel_adapters() -> None:
    for name in ours("pyvrrpd.config"):
        for imported in imports(name):
            assert not imported.startswith(("pyvrrpd.daemon", "pyvrrpd.net")), f"{name} imports {imported}"
            assert imported.split(".")[0] not in {"anyio", "pyroute2", "aiohttp", "structlog"}, \
                f"{name} imports {imported}"


def test_pure_daemon_modules_reach_nothing_that_touches_the_kernel() -> None:
    for name in sorted(PURE):
        assert name in MODULES, f"{name} is listed as pure but does not exist"
        reached = closure(name)
        impure = sorted(m for m in reached if m.split(".")[0] in IMPURE_TOPS)
        assert not impure, f"{name} imports (maybe through others) {impure}"
        net = sorted(m for m in reached if m.startswith("pyvrrpd.net") and m not in PURE_NET)
        assert not net, f"{name} imports (maybe through others) {net}"
        assert not any(m.startswith("pyvrrpd.observe") for m in reached), f"{name} reaches the logging setup"


def test_subsystems_talk_through_the_root() -> None:
    owner = {module: sub for sub, (_, modules) in SUBSYSTEMS.items() for module in modules}
    assert set(owner) <= set(MODULES), "a module listed in SUBSYSTEMS does not exist"
    for name in MODULES:
        mine = owner.get(name)
        for imported in imports(name):
            theirs = owner.get(imported)
            if theirs is None or theirs == mine:
                continue
            if mine is not None:
                raise AssertionError(f"{name} ({mine}) imports {imported}, an internal of {theirs}: go through "
                                     "the root (daemon/root.py) and the interfaces in daemon/subsystem.py")
            entry = SUBSYSTEMS[theirs][0]
            assert name == ROOT_MODULE and imported == entry, \
                f"{name} imports {imported} ({theirs}); only {ROOT_MODULE} may, and only {entry}"


def test_the_scan_sees_relative_and_lazy_imports() -> None:
    assert "pyvrrpd.net.constants" in imports("pyvrrpd.net.specs")  # `from .constants import ...`
    assert "pyvrrpd.daemon.vrrp" in imports(ROOT_MODULE)  # imported inside a function
    assert "pyroute2.iproute.linux" in closure("pyvrrpd.daemon.vrrp")


# -- what the daemon imports: only what runs (issue 11; the cost of each library is in bench/README.md) --

DAEMON_ENTRIES = ("pyvrrpd.cli", ROOT_MODULE, "pyvrrpd.daemon.vrrp", "pyvrrpd.daemon.tracking",
                  "pyvrrpd.daemon.notify", "pyvrrpd.daemon.lvs", "pyvrrpd.observe.control")


def test_the_daemon_imports_neither_scapy_nor_aiohttp() -> None:
    reached: set[str] = set()
    for entry in DAEMON_ENTRIES:
        reached |= {m for m in closure(entry) if m in MODULES}
    assert not any(m.startswith("pyvrrpd.diagnose") for m in reached), "the daemon reaches the diagnose command"
    for name in sorted(reached):
        tops = {imported.split(".")[0] for imported in imports(name)}
        assert "scapy" not in tops, f"{name} imports scapy: it belongs to diagnostics and tests only"
        assert "aiohttp" not in tops, f"{name} imports aiohttp (13 MB of RSS): the control endpoint and the " \
                                      "HTTP checkers speak HTTP over anyio streams"


def test_the_subsystems_import_neither_aiohttp_nor_all_of_pyroute2() -> None:
    """What `pyvrrpd -f` imports for VRRP, tracking, notify, LVS and the control endpoint, in a fresh
    interpreter: no scapy, no aiohttp, and of pyroute2 only the rtnetlink modules, not its package import
    (NDB, IPDB, conntrack: pyvrrpd/net/lean.py)."""
    import json
    import subprocess

    code = ("import json, sys\n"
            f"for m in {DAEMON_ENTRIES!r}: __import__(m)\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                       check=True, timeout=60).stdout)
    assert "pyroute2.iproute.linux" in loaded  # the scan below would be empty if the import failed
    for unwanted in ("scapy", "aiohttp", "pyroute2.ndb", "pyroute2.ipdb", "pyroute2.conntrack", "sqlite3"):
        assert not [m for m in loaded if m == unwanted or m.startswith(unwanted + ".")], f"the daemon imports {unwanted}"


def test_lean_packages_still_work_in_full_when_a_name_of_theirs_is_used() -> None:
    import subprocess

    code = ("from pyvrrpd.net.lean import lean\n"
            "lean('pyroute2')\n"
            "import sys, pyroute2.netlink.exceptions\n"
            "assert 'pyroute2.ndb' not in sys.modules\n"
            "from pyroute2 import IPRoute, config\n"  # a name of the package runs its real __init__
            "import pyroute2\n"
            "assert 'pyroute2.ndb' in sys.modules and pyroute2.IPRoute is IPRoute and pyroute2.__version__\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
