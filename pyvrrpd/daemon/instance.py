"""Drive one VirtualRouter: inbox items and its single timer in, actions out to an Effects port.

A master's periodic adverts are run by a Ticker that the instances share (one task for all of them, see
``Ticker``); everything else runs in the instance's own task (``run_instance``).

anyio-only on purpose (no asyncio imports): the tests run this loop under trio's MockClock with
autojump, so seconds of VRRP time take milliseconds and every deadline is hit exactly. Everything
that needs the kernel sits behind :class:`Effects`.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import anyio
from anyio.lowlevel import checkpoint

from pyvrrpd.core.actions import Action, SendAdvert, State
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


@dataclass(frozen=True, slots=True)
class Apply:
    """Actions of a timer the Ticker ran that it could not carry out without waiting (GARP bursts, an
    advert whose socket buffer was full): the instance's own task carries them out, in order."""

    actions: tuple[Action, ...]


InboxItem = Packet | SetFault | SetPriorityDelta | Reconfigure | Reload | SyncMove | Apply


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
        self._due = False  # the Ticker ended the wait (see due())

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

    @property
    def parked(self) -> bool:
        """The driver is waiting in ``receive`` and no item has come since (the Ticker may run its timer)."""
        return self._sleep is not None

    def due(self) -> None:
        """End the driver's wait without an item: ``receive`` returns None (the Ticker hands a timer back)."""
        if self._sleep is not None:
            self._due = True
            self._wake()

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
            if self._due:  # only a wait without a deadline is ended this way
                self._due = False
                return None
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

    def send_now(self, action: SendAdvert) -> bool:
        """Carry out a SendAdvert without waiting; False: it needs to wait, ``apply`` it instead."""

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


class Slot:
    """One instance as the Ticker sees it."""

    __slots__ = ("router", "inbox", "effects", "fed", "at")

    def __init__(self, router: VirtualRouter, inbox: Inbox, effects: Effects, fed: float) -> None:
        self.router, self.inbox, self.effects = router, inbox, effects
        self.fed = fed  # the latest time handed to the router: it must never go back
        self.at: float | None = None  # the deadline the driver is parked for (None: not parked)


class Ticker:
    """One task that runs the periodic adverts of every master (the VRRP subsystem has one).

    A master waiting for its next advert does not sleep in a task of its own: its driver parks in its
    inbox (waiting for an item only) and hands its deadline to the ticker, which keeps a heap of them and
    wakes once for all that are due together. For a parked master whose deadline has come it runs the
    router's timer right here and sends the advert without waiting (``Effects.send_now``), so the
    driver's task is not woken at all. What needs waiting (a GARP burst due with the advert, a full
    socket buffer) goes to the driver as an ``Apply`` item, carried out in the router's order. After a
    stall the readers get their loop rounds once, before all the overdue adverts (Inbox.receive's rule,
    once for every master instead of once each). Backups, and instances busy with an input, wait for
    their deadlines in their own tasks, as before.

    Measured with bench/vrrp_scale.py (100 VRRPv3 masters at 0.1 s; bench/README.md): CPU per 1,000
    adverts 72.2 ms before (2.1x keepalived's), 29.2 ms after (0.90x; keepalived 32.4 in the same run),
    though 1.4x-2.4x in other runs: the cost is mostly the wake-ups, and how many adverts share one
    depends on how the masters' phases fall (from 2 to about 30 wake-ups per 0.1 s for 100 masters).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Slot]] = []
        self._order = itertools.count()  # ties on the deadline: first come, first run
        self._sleep: anyio.CancelScope | None = None
        self._until = math.inf  # when the current sleep ends

    def park(self, slot: Slot, deadline: float) -> None:
        """The driver of ``slot`` waits in its inbox; its timer is due at ``deadline``."""
        slot.at = deadline
        heapq.heappush(self._heap, (deadline, next(self._order), slot))
        if deadline < self._until and self._sleep is not None:
            self._sleep.cancel()  # sleeping beyond it: look again
            self._sleep = None

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        rested = True  # the loop has let the other tasks run since it last ran timers
        while True:
            now = anyio.current_time()
            first = self._heap[0][0] if self._heap else math.inf
            if first > now:
                await self._wait(first, now)
                rested = True
            elif not rested:  # still more due: let the socket readers in first
                await checkpoint()
                rested = True
            else:
                if now - first > MAX_CATCH_UP:
                    # A stall (see Inbox.receive): the socket readers first hand over what the kernel
                    # queued meanwhile, once for every master; one that got an advert is woken by it,
                    # no longer parked, and its driver takes the advert before its timer.
                    for _ in range(STALL_ROUNDS):
                        await checkpoint()
                    now = anyio.current_time()
                self._run_due(now)
                rested = False

    async def _wait(self, until: float, now: float) -> None:
        delay = until - now
        with anyio.CancelScope() as scope:
            self._sleep, self._until = scope, until
            try:
                # As Inbox.receive: a long wait ends with a short one (the kernel's 0.1 % slack).
                await anyio.sleep(delay - PRECISE_WAIT if delay > LONG_WAIT else delay)
            finally:
                self._sleep, self._until = None, math.inf

    def _run_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, slot = heapq.heappop(heap)
            if slot.at != deadline or not slot.inbox.parked:
                continue  # the driver woke for an item (and parks again if it must)
            self._advert(slot, deadline, now)

    def _advert(self, slot: Slot, deadline: float, now: float) -> None:
        """Run the timer of a parked master; it stays parked unless an action must wait."""
        router = slot.router
        slot.fed = max(slot.fed, deadline, now - MAX_CATCH_UP)  # as the driver: no burst after a stall
        router.handle_timer(slot.fed)
        waiting: list[Action] = []
        while (action := router.next_action()) is not None:
            if waiting or type(action) is not SendAdvert or not slot.effects.send_now(action):
                waiting.append(action)
        if waiting:
            slot.at = None
            slot.inbox.put(Apply(tuple(waiting)))
            return
        slot.effects.flushed()
        next_deadline = router.get_timer()
        if next_deadline is not None and next_deadline > now:
            self.park(slot, next_deadline)
        else:
            slot.at = None
            slot.inbox.due()


async def run_instance(
    router: VirtualRouter,
    inbox: Inbox,
    effects: Effects,
    *,
    ticker: Ticker | None = None,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run until cancelled or the inbox closes; then, shielded, stop like keepalived does.

    ``ticker`` runs the periodic adverts of a master (the VRRP subsystem shares one among its
    instances); without one the instance runs a ticker of its own."""
    if ticker is not None:
        await _drive(router, inbox, effects, ticker, task_status)
        return
    async with anyio.create_task_group() as tg:
        ticker = Ticker()
        await tg.start(ticker.run)
        await _drive(router, inbox, effects, ticker, task_status)
        tg.cancel_scope.cancel()


async def _drive(router: VirtualRouter, inbox: Inbox, effects: Effects, ticker: Ticker,
                 task_status: anyio.abc.TaskStatus[None]) -> None:
    slot = Slot(router, inbox, effects, anyio.current_time())
    router.startup(slot.fed)
    try:
        await flush(router, effects)
        task_status.started()
        while True:
            try:
                item, deadline = await _next(slot, ticker)
            except anyio.EndOfStream:
                return
            if isinstance(item, Reload):  # the queue was flushed: the kernel holds what the state says
                await effects.reload(item.plan, master=router.state is State.MASTER)
            if isinstance(item, Apply):
                for action in item.actions:
                    await effects.apply(action)
            elif item is not None:
                slot.fed = max(slot.fed, anyio.current_time())
                feed(router, item, slot.fed)
            else:
                # The timer fired: tell the router it is the deadline, not the (slightly later) wake-up
                # time, so the next Adver_Timer is deadline + interval and wake-up latency does not
                # accumulate from advert to advert. After a long stall, catch up with the clock
                # instead of sending a burst of overdue adverts.
                slot.fed = max(slot.fed, deadline, anyio.current_time() - MAX_CATCH_UP)
                router.handle_timer(slot.fed)
            await flush(router, effects)
            if isinstance(item, Reload):
                item.done.set()
    finally:
        with anyio.move_on_after(SHUTDOWN_SECONDS, shield=True):
            router.shutdown(anyio.current_time())
            await flush(router, effects)


async def _next(slot: Slot, ticker: Ticker) -> tuple[InboxItem | None, float | None]:
    """The next item, or None once the router's deadline has come; and that deadline.

    A master whose deadline is still ahead parks (waits for an item only) and leaves its timer to the
    ticker; when the ticker hands it back, the deadline is looked at again (the ticker may have run
    timers meanwhile) and waited for here, with the inbox's rules (a stall lets queued items go first)."""
    router, inbox = slot.router, slot.inbox
    deadline = router.get_timer()
    if router.state is State.MASTER and deadline is not None and deadline > anyio.current_time():
        ticker.park(slot, deadline)
        try:
            item = await inbox.receive(None)
        finally:
            slot.at = None
        if item is not None:
            return item, deadline
        deadline = router.get_timer()
    return await inbox.receive(deadline), deadline
