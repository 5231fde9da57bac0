"""An in-memory LAN for VirtualRouters: virtual time, seeded loss, no sockets, no sleeps.

Adverts go through the real codec (encode at the sender, decode at each receiver). Each delivery is
independently delivered, dropped, duplicated or delayed (trio's "terrible network" weights). The
clock jumps from deadline to deadline in integer microseconds.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from pyvrrpd.core.actions import Action, SendAdvert, State, StateChanged
from pyvrrpd.core.packet import GROUP4, GROUP6, IPAddress, decode, encode
from pyvrrpd.core.router import RouterConfig, VirtualRouter

MAX_STEPS = 200_000


@dataclass
class Lan:
    seed: int = 0
    drop: float = 0.0
    dupe: float = 0.0
    delay: float = 0.0
    max_delay_us: int = 50_000
    now_us: int = 0
    routers: list[VirtualRouter] = field(default_factory=list)
    log: list[tuple[int, str, Action]] = field(default_factory=list)  # (time, router name, action)
    deliveries: list[tuple[int, str, str]] = field(default_factory=list)  # (time, sender, receiver)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._queue: list[tuple[int, int, VirtualRouter, bytes, VirtualRouter]] = []
        self._seq = 0

    @property
    def now(self) -> float:
        return self.now_us / 1e6

    def add(self, router: VirtualRouter) -> VirtualRouter:
        """Plug a router in and start it now."""
        self.routers.append(router)
        router.startup(self.now)
        self._drain(router)
        return router

    def kill(self, router: VirtualRouter) -> None:
        """kill -9: the router vanishes (no more adverts, timers or deliveries; VIPs stay)."""
        self.routers.remove(router)
        self._queue = [q for q in self._queue if q[2] is not router and q[4] is not router]
        heapq.heapify(self._queue)

    def call(self, router: VirtualRouter, method: str, *args: object) -> None:
        """Feed an operator/tracking input (shutdown, set_priority_delta, set_fault) at the current time."""
        getattr(router, method)(*args, self.now)
        self._drain(router)

    def run(self, seconds: float) -> None:
        end = self.now_us + round(seconds * 1e6)
        for _ in range(MAX_STEPS):
            timers = [(round(t * 1e6), i) for i, r in enumerate(self.routers) if (t := r.get_timer()) is not None]
            t_timer, index = min(timers) if timers else (None, -1)
            t_packet = self._queue[0][0] if self._queue else None
            nxt = min(t for t in (t_timer, t_packet) if t is not None) if timers or self._queue else None
            if nxt is None or nxt > end:
                self.now_us = end
                return
            self.now_us = max(self.now_us, nxt)
            if t_packet is not None and t_packet <= nxt:  # packets first on a tie
                _, _, sender, data, receiver = heapq.heappop(self._queue)
                self.deliveries.append((self.now_us, sender.config.name, receiver.config.name))
                cfg = sender.config
                adv = decode(data, family=cfg.source.version, src=cfg.source, dst=_group(cfg), ttl=255)
                receiver.receive(adv, cfg.source, self.now)
                self._drain(receiver)
            else:
                self.routers[index].handle_timer(self.now)
                self._drain(self.routers[index])
        raise AssertionError("LAN did not settle within MAX_STEPS")

    def masters(self, vrid: int) -> list[str]:
        return [r.config.name for r in self.routers if r.config.vrid == vrid and r.state is State.MASTER]

    def transitions(self, name: str, new: State) -> list[int]:
        """Times at which router ``name`` entered state ``new``."""
        return [t for t, who, a in self.log if who == name and isinstance(a, StateChanged) and a.new is new]

    def _drain(self, router: VirtualRouter) -> None:
        while (action := router.next_action()) is not None:
            self.log.append((self.now_us, router.config.name, action))
            if isinstance(action, SendAdvert):
                self._send(router, action)

    def _send(self, sender: VirtualRouter, action: SendAdvert) -> None:
        cfg = sender.config
        data = encode(action.advert, family=cfg.source.version, src=cfg.source, dst=_group(cfg))
        for receiver in self.routers:
            rc = receiver.config
            if receiver is sender or rc.vrid != cfg.vrid or rc.source.version != cfg.source.version:
                continue
            roll = self.rng.random()
            copies, delay = 1, 0
            if roll < self.drop:
                copies = 0
            elif roll < self.drop + self.dupe:
                copies = 2
            elif roll < self.drop + self.dupe + self.delay:
                delay = self.rng.randint(1, self.max_delay_us)
            for _ in range(copies):
                self._seq += 1
                heapq.heappush(self._queue, (self.now_us + delay, self._seq, sender, data, receiver))


def _group(cfg: RouterConfig) -> IPAddress:
    return GROUP4 if cfg.source.version == 4 else GROUP6
