"""Python's cyclic garbage collector and the objects a daemon keeps for its whole life.

Two rules, shared by the config reader, the LVS reconciler and the daemon root:

* once everything has started, the daemon **freezes** what exists (:func:`freeze`): the config model,
  the plans, pyroute2, the routers live as long as the daemon, and a full collection would only rescan
  them between two adverts;
* a **burst** that makes many objects at once (loading a config, computing an IPVS table) runs with the
  collector held off (:func:`burst`): nothing made there forms a cycle (reference counting frees it),
  and the collections its allocations would trigger rescan every object again and again (half of a
  config load's and of a first IPVS pass's CPU). While nothing is frozen, what the burst made and kept
  is then moved to the oldest generation without a scan (``gc.freeze()`` then ``gc.unfreeze()``);
  once the daemon has frozen, that would thaw what it froze on purpose, so it is skipped.

Whether the daemon has frozen is this module's flag, not ``gc.get_freeze_count()``: that call counts the
frozen objects one by one (0.9 ms for the 36,000 objects of the daemon's imports alone, a few ms in a
daemon with its config), and the reconciler asked it three times per pass. In `bench/soak.py`'s daemon
(100 VRRP instances, 1,000 real servers) a full pass, every 10 s, held the event loop for 12.6-14.8 ms,
most of it those calls (bench/README.md, "Soak").
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_frozen = False


def freeze() -> None:
    """Collect, then freeze everything that exists: the daemon does it once it has started."""
    global _frozen
    gc.collect()
    gc.freeze()
    _frozen = True


def thaw() -> None:
    """Undo :func:`freeze` (tests)."""
    global _frozen
    gc.unfreeze()
    _frozen = False


def frozen() -> bool:
    """Has :func:`freeze` run (and no :func:`thaw` since)?"""
    return _frozen


@contextlib.contextmanager
def burst() -> Iterator[None]:
    """The collector held off for a synchronous burst of allocation (never hold it across an await in
    an event loop: other tasks' garbage would wait too); left as it was afterwards."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if not _frozen:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
