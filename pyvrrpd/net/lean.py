"""Import a library's submodules without running its package ``__init__``.

pyroute2 0.9's ``pyroute2/__init__.py`` imports every API it has (NDB with sqlite3, IPDB, conntrack,
nftables, wireless, plan9, unittest.mock for its test double...): 370 modules, 24 MB and ~115 ms here,
of which the daemon uses one rtnetlink socket class. Importing ``pyroute2.iproute.linux`` directly still
runs that ``__init__`` first, as Python always runs a package's ``__init__`` before its submodules.

``lean("pyroute2")`` registers the package as a bare module (its ``__path__`` only), so
``import pyroute2.iproute.linux`` loads just what that module needs: 294 modules, 18 MB and ~85 ms with
asyncio counted (bench/README.md, import budget). The first access to a name of the package itself
(``from pyroute2 import IPRoute``, as the diagnose command and tests do; ``from pyroute2 import config``
only imports that submodule) runs the real ``__init__`` into
the same module object, so nothing else changes.
"""

from __future__ import annotations

import importlib.util
import sys


def lean(package: str) -> None:
    """Let ``import package.sub`` skip ``package/__init__.py`` until a name of the package is used.
    Does nothing if the package is already imported."""
    if package in sys.modules:
        return
    spec = importlib.util.find_spec(package)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed or not a package: the real import will say so
    module = importlib.util.module_from_spec(spec)

    def __getattr__(name: str):
        if importlib.util.find_spec(f"{package}.{name}") is not None:  # `from package import submodule`
            return importlib.import_module(f"{package}.{name}")
        del module.__getattr__
        spec.loader.exec_module(module)  # the real __init__, into the module everyone already holds
        return getattr(module, name)

    module.__getattr__ = __getattr__
    sys.modules[package] = module
