"""Shared fixtures.

``anyio_backend``: tests marked ``@pytest.mark.anyio`` run on trio with ``MockClock(autojump_threshold=0)``:
whenever every task waits, virtual time jumps to the next deadline, so seconds of VRRP time take
milliseconds and deadlines are hit exactly. The code under test is anyio-only, so the backend does not
matter to it (production runs asyncio).
"""

from __future__ import annotations

import pytest
from trio.testing import MockClock


@pytest.fixture
def anyio_backend():
    return ("trio", {"clock": MockClock(autojump_threshold=0)})
