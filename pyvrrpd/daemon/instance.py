"""Drive one VirtualRouter: inbox items and its single timer in, actions out to an Effects port.

anyio-only on purpose (no asyncio imports): the tests run this loop under trio's MockClock with
autojump, so seconds of VRRP time take milliseconds and every deadline is hit exactly. Everything
that needs the kernel sits behind :class:`Effects`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import anyio
from anyio.abc import ObjectReceiveStream

from pyvrrpd.core.actions import Action
from pyvrrpd.core.packet import Advertisement, IPAddress
from pyvrrpd.core.router import VirtualRouter

SHUTDOWN_SECONDS = 2.0  # time box for the priority-0 advert and VIP removal on stop
MAX_CATCH_UP = 0.02  # wake-up lateness (s) absorbed so adverts keep their period; more is a stall


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded advert for this instance (the socket reader demultiplexes by VRID)."""

    advert: Advertisement
    source: IPAddress


@dataclass(frozen=True, slots=True)
class SetPriority:
    priority: int


@dataclass(frozen=True, slots=True)
class SetFault:
    fault: bool
    why: str = ""


InboxItem = Packet | SetPriority | SetFault


class Effects(Protocol):
    """What the driver needs from the outside world for one instance."""

    async def apply(self, action: Action) -> None:
        """Carry out one action. Must not raise for kernel or network errors (log and count them)."""


def feed(router: VirtualRouter, item: InboxItem, now: float) -> None:
    match item:
        case Packet(advert, source):
            router.receive(advert, source, now)
        case SetPriority(priority):
            router.set_priority(priority, now)
        case SetFault(fault):
            router.set_fault(fault, now)


async def flush(router: VirtualRouter, effects: Effects) -> None:
    while (action := router.next_action()) is not None:
        await effects.apply(action)


async def run_instance(
    router: VirtualRouter,
    inbox: ObjectReceiveStream[InboxItem],
    effects: Effects,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run until cancelled or the inbox closes; then, shielded, stop like keepalived does."""
    fed = anyio.current_time()  # the latest time handed to the router: it must never go back
    router.startup(fed)
    try:
        await flush(router, effects)
        task_status.started()
        while True:
            deadline = router.get_timer()
            item: InboxItem | None = None
            with anyio.CancelScope(deadline=math.inf if deadline is None else deadline):
                try:
                    item = await inbox.receive()
                except anyio.EndOfStream:
                    return
            if item is not None:
                fed = max(fed, anyio.current_time())
                feed(router, item, fed)
            elif deadline is not None:
                # The timer fired: tell the router it is the deadline, not the (slightly later) wake-up
                # time, so the next Adver_Timer is deadline + interval and wake-up latency does not
                # accumulate from advert to advert. After a long stall, catch up with the clock
                # instead of sending a burst of overdue adverts.
                fed = max(fed, deadline, anyio.current_time() - MAX_CATCH_UP)
                router.handle_timer(fed)
            await flush(router, effects)
    finally:
        with anyio.move_on_after(SHUTDOWN_SECONDS, shield=True):
            router.shutdown(anyio.current_time())
            await flush(router, effects)
