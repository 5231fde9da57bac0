"""Drive one VirtualRouter: inbox items and its single timer in, actions out to an Effects port.

anyio-only on purpose (no asyncio imports): the tests run this loop under trio's MockClock with
autojump, so seconds of VRRP time take milliseconds and every deadline is hit exactly. Everything
that needs the kernel sits behind :class:`Effects`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import anyio
from anyio.lowlevel import checkpoint

from pyvrrpd.core.actions import Action, State
from pyvrrpd.core.packet import Advertisement, IPAddress
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.daemon.plan import InstancePlan

SHUTDOWN_SECONDS = 2.0  # time box for the priority-0 advert and VIP removal on stop
PRECISE_WAIT = 0.02  # s: a long wait ends with a stretch this short (see Inbox.receive)
LONG_WAIT = 0.25  # s: waits longer than this are split in two; shorter ones have at most 0.25 ms of slack
MAX_CATCH_UP = 0.02  # wake-up lateness (s) absorbed so adverts keep their period; more is a stall
STALL_ROUNDS = 3  # after a stall, event-loop rounds the driver lets the socket readers run before its timer


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded advert for this instance (the socket reader demultiplexes by VRID)."""

    advert: Advertisement
    source: IPAddress


@dataclass(frozen=True, slots=True)
class SetFault:
    """Set (``reason``) or clear (None) the fault reported by ``source`` ("link:lan0", "script:chk")."""

    source: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class SetPriorityDelta:
    """The priority delta of ``source`` (0 removes it); the router sums and clamps them."""

    source: str
    delta: int


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """Run with a new RouterConfig from now on (a new source address)."""

    config: RouterConfig


@dataclass(frozen=True, slots=True)
class SyncMove:
    """The instance's sync group moves it: to MASTER with the group, or back to BACKUP."""

    state: State


@dataclass(frozen=True, slots=True)
class Reload:
    """A reload changed the instance: the effects take its new plan (a master changes in the kernel what
    differs, ``Effects.reload``), then the router its new config; ``done`` is set once both have."""

    plan: InstancePlan
    config: RouterConfig
    done: anyio.Event


InboxItem = Packet | SetFault | SetPriorityDelta | Reconfigure | Reload | SyncMove


class Inbox:
    """One instance's input queue: adverts from the socket reader; fault reasons, priority deltas and
    new configs from the VRRP subsystem.

    Not an anyio memory stream because of how the driver waits ("the next item or the router's
    deadline, whichever comes first"). Around ``stream.receive()`` that takes a
    ``CancelScope(deadline=...)``, and a master's scope times out at every advert: on asyncio a
    timed-out anyio scope (cancellation delivery, exception unwinding) costs about as much as all the
    rest of a periodic advert. Here the driver sleeps until its deadline and an arriving item cancels
    the sleep instead, so a periodic advert involves no cancellation at all.
    """

    def __init__(self, size: int) -> None:
        self.size = size  # adverts beyond this many waiting are refused (control items never are)
        self._items: deque[InboxItem] = deque()
        self._closed = False
        self._sleep: anyio.CancelScope | None = None  # the driver's current wait, if it is waiting
        self._after_stall_taken = 0  # items taken before an overdue deadline (see _after_stall)

    def send_nowait(self, item: InboxItem) -> None:
        """Queue an advert: anyio.WouldBlock when full, anyio.ClosedResourceError once the instance stopped."""
        if self._closed:
            raise anyio.ClosedResourceError
        if len(self._items) >= self.size:
            raise anyio.WouldBlock
        self._items.append(item)
        self._wake()

    def put(self, item: InboxItem) -> None:
        """Queue a control item, which is never refused for lack of room; ClosedResourceError once closed."""
        if self._closed:
            raise anyio.ClosedResourceError
        self._items.append(item)
        self._wake()

    def close(self) -> None:
        """No more items: the driver stops once it has taken the queued ones."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._sleep is not None:
            self._sleep.cancel()
            self._sleep = None

    async def receive(self, deadline: float | None) -> InboxItem | None:
        """The next item, or None once ``deadline`` has come (never with no deadline).

        A deadline already due goes before queued items, as a timed-out receive did; an item that
        cut the sleep short goes first even if the deadline has come since. Raises anyio.EndOfStream
        when closed and empty.

        A deadline more than MAX_CATCH_UP overdue means the process stalled (SIGSTOP, a paused VM, CPU
        starvation): the adverts that arrived meanwhile then go first, and the socket readers get a few
        event-loop rounds (STALL_ROUNDS) to hand them over. Otherwise a backup whose Master_Down_Timer
        ran out during the stall would take over (VIPs, gratuitous ARPs) and give up a millisecond later
        on reading the master's adverts that were queued all along.
        """
        delay = math.inf if deadline is None else deadline - anyio.current_time()
        if delay < -MAX_CATCH_UP and not self._closed:
            return await self._after_stall()
        self._after_stall_taken = 0  # not (or no longer) late: the next stall starts afresh
        if delay <= 0 or self._items or self._closed:
            await checkpoint()  # nothing to wait for, but let the other tasks (and a cancellation) in
            if delay <= 0:
                return None
        else:
            with anyio.CancelScope() as scope:
                self._sleep = scope
                try:
                    if deadline is None:
                        await anyio.sleep(math.inf)
                    # The kernel gives epoll/poll timeouts 0.1 % of slack (3.6 ms late on a 3.6 s
                    # Master_Down wait; keepalived's timerfd has none): wait to just before the
                    # deadline first, so the last wait is short and its slack microseconds. Waits up
                    # to LONG_WAIT (a 0.1 s advert interval) are not split: their slack is at most
                    # 0.25 ms, and one wake-up per advert instead of two cut the CPU of 100 masters
                    # at 0.1 s by 12 % (bench/vrrp_scale.py, bench/README.md).
                    while (left := deadline - anyio.current_time()) > 0:
                        await anyio.sleep(left - PRECISE_WAIT if left > LONG_WAIT else left)
                finally:
                    self._sleep = None
            if not scope.cancelled_caught:
                if anyio.current_time() - deadline > MAX_CATCH_UP:  # woke up late: a stall, see above
                    return await self._after_stall()
                return None  # slept until the deadline
        if self._items:
            return self._items.popleft()
        raise anyio.EndOfStream  # closed: the only other thing that ends the sleep early

    async def _after_stall(self) -> InboxItem | None:
        """The queued items before an overdue deadline, at most `size` of them (a flood cannot hold the
        timer off for ever); once, first, a few loop rounds for the readers to queue what the kernel holds."""
        if not self._items and not self._after_stall_taken:
            for _ in range(STALL_ROUNDS):  # not a sleep: on a starved machine that gives the CPU away
                await checkpoint()
        if self._items and self._after_stall_taken < self.size:
            self._after_stall_taken += 1
            return self._items.popleft()
        self._after_stall_taken = 0
        return None


class Effects(Protocol):
    """What the driver needs from the outside world for one instance."""

    async def apply(self, action: Action) -> None:
        """Carry out one action. Must not raise for kernel or network errors (log and count them)."""

    def flushed(self) -> None:
        """The actions of one input are all carried out (the VIPs are in place): time to notify."""

    async def reload(self, plan: InstancePlan, master: bool) -> None:
        """Run with a reloaded instance's new plan; ``master``: change what it holds in the kernel."""


def feed(router: VirtualRouter, item: InboxItem, now: float) -> None:
    match item:
        case Packet(advert, source):
            router.receive(advert, source, now)
        case SetFault(source, reason):
            router.set_fault(source, reason, now)
        case SetPriorityDelta(source, delta):
            router.set_priority_delta(source, delta, now)
        case Reconfigure(config) | Reload(_, config):
            router.reconfigure(config, now)
        case SyncMove(State.MASTER):
            router.sync_master(now)
        case SyncMove():
            router.sync_backup(now)


async def flush(router: VirtualRouter, effects: Effects) -> None:
    while (action := router.next_action()) is not None:
        await effects.apply(action)
    effects.flushed()


async def run_instance(
    router: VirtualRouter,
    inbox: Inbox,
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
            try:
                item = await inbox.receive(deadline)
            except anyio.EndOfStream:
                return
            if isinstance(item, Reload):  # the queue was flushed: the kernel holds what the state says
                await effects.reload(item.plan, master=router.state is State.MASTER)
            if item is not None:
                fed = max(fed, anyio.current_time())
                feed(router, item, fed)
            else:
                # The timer fired: tell the router it is the deadline, not the (slightly later) wake-up
                # time, so the next Adver_Timer is deadline + interval and wake-up latency does not
                # accumulate from advert to advert. After a long stall, catch up with the clock
                # instead of sending a burst of overdue adverts.
                fed = max(fed, deadline, anyio.current_time() - MAX_CATCH_UP)
                router.handle_timer(fed)
            await flush(router, effects)
            if isinstance(item, Reload):
                item.done.set()
    finally:
        with anyio.move_on_after(SHUTDOWN_SECONDS, shield=True):
            router.shutdown(anyio.current_time())
            await flush(router, effects)
