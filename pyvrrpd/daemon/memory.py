"""Handing memory the daemon freed back to the system, once it has settled.

Loading a config makes a burst of short-lived objects (lines, the parser's tree, the builder's
drafts). What outlives the load is freed into the allocators, and part of it stays mapped:
glibc keeps the free pages inside its heap until asked to return them. ``malloc_trim(0)``
returns every whole free page (glibc >= 2.8 also inside the heap, with MADV_DONTNEED), so the
RSS shows what the daemon holds. It costs a walk over the heap's free lists (about a millisecond
after a 10,000-real-server load), once after start-up and once after each reload.

Measured, bench/checkers.py (10,000 TCP_CHECKs): RSS while running -1.5 MiB. CPython's own
allocator (pymalloc) gives a 1 MiB arena back by itself once it is empty; a partly used one stays.
"""

from __future__ import annotations

import ctypes

_trim = None


def _load_trim():
    global _trim
    if _trim is None:
        try:
            _trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
        except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to do
            _trim = False
    return _trim


def release_free_memory() -> None:
    """Return the C heap's free pages to the system (a no-op without glibc)."""
    trim = _load_trim()
    if trim:
        trim(0)
