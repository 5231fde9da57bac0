"""The daemon's verdict on a loaded config: what ``--check-config`` reports is what the daemon refuses.

``load()`` (pyvrrpd.config) finds every problem of the file itself. What the daemon cannot run although
the file is valid keepalived (an instance without an interface it can find, a VMAC name used twice, a
virtual_routes line the kernel specs do not take, ...) is found by the daemon's own pure planning; this
adds those problems, with their spans, to the load's diagnostics. The CLI's check and the daemon's start
and reload all call it, so they cannot disagree. Pure and light: no anyio, no kernel access.
"""

from __future__ import annotations

from dataclasses import replace

from pyvrrpd.config.diagnostics import sort_key
from pyvrrpd.config.load import Loaded
from pyvrrpd.daemon.plan import plan_instances


def verdict(loaded: Loaded) -> Loaded:
    """``loaded`` with every problem that would make the daemon refuse to start added to its diagnostics."""
    if loaded.config is None:
        return loaded
    _, problems = plan_instances(loaded.config)
    if not problems:
        return loaded
    return replace(loaded, diagnostics=tuple(sorted(loaded.diagnostics + tuple(problems), key=sort_key)))
