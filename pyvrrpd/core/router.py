"""One VRRP virtual router (one instance: interface, VRID, family) as a sans-I/O state machine.

Rule 1 (after h11): everything that affects the state machine lives in this file.

API shape after aioquic: inputs are ``startup``/``shutdown``/``reconfigure`` (operator),
``set_fault``/``set_priority_delta`` (the interface check and tracking), ``receive`` (a decoded
advert) and ``handle_timer``; every input takes ``now`` (float seconds, monotonic). Outputs are drained with ``next_action()``; ``get_timer()``
gives the ONE next deadline (Master_Down_Timer, Adver_Timer, delayed/refresh GARP bursts) or None.
Internally all times are integer microseconds, with keepalived 2.2.7's arithmetic (``timers``).

The behaviour is keepalived 2.2.7's, which differs from the RFC in places (each noted where coded):

* Startup: BACKUP with a full Master_Down_Interval, stale VIPs released; ``state MASTER`` +
  priority 255 (the address owner) takes over 1 µs after startup. keepalived 2.2.7 gives
  ``state MASTER`` with priority < 255 the full interval too (measured: 3.41 s at priority 150,
  1 s adverts); its "one advert + minimum skew" start applies only inside sync groups.
* Backup: a priority-0 advert → take over after Skew_Time. Lower priority with preemption →
  "discarding": the down timer keeps running, so preemption happens when it fires (not at once).
  ``preempt_delay`` runs from startup and from the first lower-priority advert; while it runs
  lower adverts are accepted, so it only ever delays a takeover. It needs no wake-up of its own.
* Master: higher priority (or equal priority and higher source address) → BACKUP; lower (or
  equal and lower address) → "forcing new election": send an advert at once unless
  ``lower_prio_no_advert``, plus garp_lower_prio bursts; priority 0 → send an advert at once.
* Address list: 2.2.7 rejects adverts whose address count or addresses differ from ours (later
  versions only log it); ``skip_check_adv_addr`` skips that (and the unicast source check) for
  adverts from the current master.
* v2 interval mismatch: rejected. v3: noticed, and a backup adopts the master's interval.
* Leaving MASTER for FAULT or on shutdown sends a priority-0 advert first.
* Sync groups (``RouterConfig.sync_group``): a member whose down timer fires does not become master
  by itself; it says ``WantMaster``, stays BACKUP with its down timer re-armed for another
  Master_Down_Interval, and becomes master when the VRRP subsystem moves it (``sync_master``: every
  member wants to, or the group already is master). ``sync_backup`` takes a master back to BACKUP
  with its group (no priority-0 advert). Which member may move when is the pure rule of
  ``core.tracking.sync_transition``.
* FAULT is a set of reasons keyed by their source ("link:lan0", "script:chk", ...): the router is in
  FAULT while any reason is set, so clearing one source never clears another's.
* Priority is the configured base plus named deltas (one per tracking source), clamped to 1-254 as
  keepalived's ``vrrp_set_effective_priority`` does; an address owner (255) is never adjusted. A
  master whose effective priority drops keeps sending adverts at the new priority, and a backup
  with a higher one preempts by the normal rules.
* Takeover: advert, then ClaimAddresses, then GARP/NA (RFC 5798 §6.4.2), so the netlink round
  trips for the VIPs never delay the advert that stops the other backups.
* GARP/NA: ``SendGratuitous`` on takeover; the garp_master_delay second burst, the
  garp_master_refresh bursts and the delayed garp_lower_prio burst come later from the same timer.

Known simplifications: two address owners (both 255) are reported and resolved by address only
(keepalived's "rogue" timer that lowers one to 254 is not modelled); AH authentication is not
supported; only adverts that answer a packet reset the Adver_Timer (keepalived also resets it for
rejected packets).
"""

from __future__ import annotations

import ipaddress
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pyvrrpd.core.actions import (
    Action,
    AdvertReason,
    ClaimAddresses,
    Discard,
    Discarded,
    GarpReason,
    Notice,
    NoticeKind,
    PriorityChanged,
    ReleaseAddresses,
    SendAdvert,
    SendGratuitous,
    State,
    StateChanged,
    Transition,
    WantMaster,
)
from pyvrrpd.core.packet import ADVERTISEMENT, Advertisement, IPAddress
from pyvrrpd.core.timers import CENTISECOND_US, SECOND_US, master_down_interval, skew_time

OWNER_PRIORITY = 255

# The transition table: (state, why) → new state. A missing entry is a bug, never half-applied.
TRANSITIONS: dict[tuple[State, Transition], State] = {
    (State.INITIALIZE, Transition.INIT): State.BACKUP,
    (State.INITIALIZE, Transition.INIT_FAULT): State.FAULT,
    (State.BACKUP, Transition.MASTER_DOWN): State.MASTER,
    (State.BACKUP, Transition.PEER_STOPPED): State.MASTER,
    (State.BACKUP, Transition.PREEMPT): State.MASTER,
    (State.BACKUP, Transition.OWNER): State.MASTER,
    (State.MASTER, Transition.HIGHER_PRIORITY): State.BACKUP,
    (State.MASTER, Transition.HIGHER_ADDRESS): State.BACKUP,
    (State.BACKUP, Transition.FAULT): State.FAULT,
    (State.MASTER, Transition.FAULT): State.FAULT,
    (State.FAULT, Transition.FAULT_CLEARED): State.BACKUP,
    (State.FAULT, Transition.FAULT_CLEARED_OWNER): State.MASTER,
    (State.BACKUP, Transition.SHUTDOWN): State.INITIALIZE,
    (State.MASTER, Transition.SHUTDOWN): State.INITIALIZE,
    (State.FAULT, Transition.SHUTDOWN): State.INITIALIZE,
    (State.BACKUP, Transition.SYNC_GROUP): State.MASTER,
    (State.MASTER, Transition.SYNC_GROUP): State.BACKUP,
}

# Leaving MASTER for these sends a priority-0 advert first (keepalived's "sent 0 priority").
_PRIORITY_ZERO_ON_LEAVE = {Transition.FAULT: AdvertReason.FAULT, Transition.SHUTDOWN: AdvertReason.SHUTDOWN}
# Entering BACKUP for these keeps the interval just learned from the new master's advert.
_BACKUP_FROM_ADVERT = {Transition.HIGHER_PRIORITY, Transition.HIGHER_ADDRESS}


def state_diagram() -> str:
    """The transition table as a Mermaid state diagram, for the docs."""
    lines = ["stateDiagram-v2", f"    [*] --> {State.INITIALIZE.value}"]
    for (old, why), new in TRANSITIONS.items():
        lines.append(f"    {old.value} --> {new.value}: {why.value}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RouterConfig:
    """What one VRRP instance needs, already resolved by the config layer (defaults: keepalived's).

    ``source`` is the address our adverts carry and the tie-break compares (mcast_src_ip /
    unicast_src_ip, else the interface's primary IPv4 address or IPv6 link-local). ``addresses``
    are the advertised VIPs in config order; ``excluded_addresses`` are claimed but not advertised.
    ``initial_state`` is keepalived's ``state`` after its derivation (priority 255 → MASTER).
    ``auth_pass`` is already truncated to 8 bytes; v3 ignores authentication. The garp_lower_prio
    values default to the garp_master ones, as keepalived's do. Intervals and delays are integer µs.
    """

    name: str
    vrid: int
    source: IPAddress
    addresses: tuple[IPAddress, ...]
    version: int = 2
    priority: int = 100
    advert_int_us: int = SECOND_US
    initial_state: State = State.BACKUP
    excluded_addresses: tuple[IPAddress, ...] = ()
    nopreempt: bool = False
    preempt_delay_us: int = 0
    accept: bool = True
    down_timer_adverts: int = 3
    auth_type: int = 0  # v2 only: 0 none, 1 PASS
    auth_pass: bytes = b""
    unicast_peers: tuple[IPAddress, ...] = ()
    check_unicast_src: bool = False
    skip_check_adv_addr: bool = False
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    garp_master_delay_us: int = 5 * SECOND_US
    garp_master_repeat: int = 5
    garp_master_refresh_us: int = 0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay_us: int = 5 * SECOND_US
    garp_lower_prio_repeat: int = 5
    sync_group: bool = False  # a vrrp_sync_group member: it becomes master only with its group (WantMaster)

    @property
    def accepts(self) -> bool:
        """Accept_Mode as it applies: the address owner always accepts (RFC 5798 §6.4.3)."""
        return self.accept or self.priority == OWNER_PRIORITY

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"VRRP instance {self.name}: {problem}")

    def _problem(self) -> str | None:
        if not 1 <= self.vrid <= 255:
            return f"virtual_router_id {self.vrid} is not in 1-255"
        if not 1 <= self.priority <= 255:
            return f"priority {self.priority} is not in 1-255"
        if self.version not in (2, 3):
            return f"version {self.version} is not 2 or 3"
        if self.initial_state not in (State.BACKUP, State.MASTER):
            return f"state {self.initial_state} is not BACKUP or MASTER"
        if any(a.version != self.source.version for a in self.addresses + self.excluded_addresses):
            return "addresses and source must be of one family"
        if self.version == 2:
            if self.source.version != 4:
                return "VRRPv2 is IPv4 only"
            if self.advert_int_us % SECOND_US or not 1 <= self.advert_int_us // SECOND_US <= 255:
                return "VRRPv2 advert_int must be whole seconds in 1-255"
            if self.auth_type not in (0, 1) or len(self.auth_pass) > 8:
                return "authentication must be none or PASS with at most 8 bytes"
        elif self.advert_int_us % CENTISECOND_US or not 1 <= self.advert_int_us // CENTISECOND_US <= 4095:
            return "VRRPv3 advert_int must be whole centiseconds in 0.01-40.95 s"
        if not 1 <= self.down_timer_adverts <= 100:
            return "down_timer_adverts must be in 1-100"
        return None


@dataclass
class Stats:
    """Counters for /metrics and the status dump; ``discarded`` is keyed by ``Discard``."""

    adverts_rx: int = 0
    adverts_tx: int = 0
    priority_zero_rx: int = 0
    priority_zero_tx: int = 0
    become_master: int = 0
    release_master: int = 0
    transitions: int = 0
    # Adverts with non-zero priority from another router while we are master, accepted or not:
    # RFC 9568 §6.4.3's higher-priority (we yield) and "new Active Router" (we reassert) cases, and
    # adverts the checks discard (auth, interval, version, addresses), which is how split brain looks.
    rival_master_rx: int = 0
    discarded: Counter[Discard] = field(default_factory=Counter)


def _us(now: float) -> int:
    return round(now * SECOND_US)


class VirtualRouter:
    """The VRRP state machine for one instance. Not thread-safe; one driver task owns it."""

    def __init__(self, config: RouterConfig) -> None:
        self._config = config
        self.stats = Stats()
        self._state = State.INITIALIZE
        self._priority = config.priority
        self._faults: dict[str, str] = {}  # source → reason; FAULT while not empty
        self._deltas: dict[str, int] = {}  # source → priority delta (tracking weights)
        self._actions: deque[Action] = deque()
        self._derive(config)
        self._master_adver_int = config.advert_int_us
        self._master_address: IPAddress | None = None
        self._master_priority = 0
        self._next_master_reason = Transition.MASTER_DOWN
        self._wants_master = False  # a sync-group member whose down timer fired (keepalived's wantstate)
        self._preempt_until: int | None = None  # None: no preempt delay running
        self._down_at: int | None = None  # Master_Down_Timer (BACKUP)
        self._adver_at: int | None = None  # Adver_Timer (MASTER)
        self._refresh_at: int | None = None  # garp_master_refresh (MASTER)
        self._garp_at: dict[GarpReason, int] = {}  # delayed GARP bursts (MASTER)
        # The last advert sent, handed out again while nothing in it changed: adapters may cache its
        # encoding by identity, so a periodic advert is not rebuilt and re-encoded every interval.
        self._advert: Advertisement | None = None
        self._advert_config: RouterConfig | None = None

    def _derive(self, config: RouterConfig) -> None:
        """The values that follow from the config alone."""
        self._owner = config.priority == OWNER_PRIORITY and config.initial_state is State.MASTER
        self._all_addresses = config.addresses + config.excluded_addresses
        if config.version == 2:
            self._wire_interval = config.advert_int_us // SECOND_US
            self._auth = config.auth_pass.ljust(8, b"\0") if config.auth_type else bytes(8)
        else:
            self._wire_interval = config.advert_int_us // CENTISECOND_US
            self._auth = b""

    # ---- read-only view ------------------------------------------------------------------

    @property
    def config(self) -> RouterConfig:
        """The running configuration; change it with ``reconfigure``."""
        return self._config

    @property
    def state(self) -> State:
        return self._state

    @property
    def priority(self) -> int:
        """Effective priority: the base priority plus the tracking deltas, clamped to 1-254."""
        return self._priority

    @property
    def base_priority(self) -> int:
        return self._config.priority

    @property
    def faults(self) -> dict[str, str]:
        """Why the router is (or would be) in FAULT, by source; empty when nothing is wrong. A copy."""
        return dict(self._faults)

    @property
    def priority_deltas(self) -> dict[str, int]:
        """The tracking deltas by source (zero deltas are not kept). A copy."""
        return dict(self._deltas)

    @property
    def master_address(self) -> IPAddress | None:
        """The current master's source address (ours when MASTER), None if unknown."""
        return self._master_address

    @property
    def master_priority(self) -> int:
        return self._master_priority

    @property
    def master_adver_int_us(self) -> int:
        return self._master_adver_int

    @property
    def wants_master(self) -> bool:
        """A sync-group member in BACKUP whose down timer has fired: it waits for its group to agree."""
        return self._wants_master

    # ---- inputs --------------------------------------------------------------------------

    def startup(self, now: float) -> None:
        """Initialize → BACKUP (or FAULT if a fault reason was set first). No-op when running."""
        if self._state is not State.INITIALIZE:
            return
        self._transition(Transition.INIT_FAULT if self._faults else Transition.INIT, _us(now))

    def shutdown(self, now: float) -> None:
        """Stop: a MASTER sends priority 0 and releases its VIPs. Idempotent."""
        if self._state is not State.INITIALIZE:
            self._transition(Transition.SHUTDOWN, _us(now))

    def set_fault(self, source: str, reason: str | None, now: float) -> None:
        """Set (``reason``) or clear (None) the fault reported by ``source``.

        The router is in FAULT while any source reports one: the first reason takes a running router
        to FAULT (a master sends priority 0 first), clearing the last one takes it back to BACKUP
        (MASTER for an address owner). Before ``startup`` the reasons only decide the initial state.
        """
        was_faulty = bool(self._faults)
        if reason is None:
            self._faults.pop(source, None)
        else:
            self._faults[source] = reason
        faulty = bool(self._faults)
        if faulty and not was_faulty and self._state in (State.BACKUP, State.MASTER):
            self._transition(Transition.FAULT, _us(now))
        elif not faulty and self._state is State.FAULT:
            why = Transition.FAULT_CLEARED_OWNER if self._owner else Transition.FAULT_CLEARED
            self._transition(why, _us(now))

    def sync_master(self, now: float) -> None:
        """Its sync group moves it to MASTER (every member wants to be master, or the group already is).
        Only a BACKUP moves; in any other state this does nothing."""
        if self._state is State.BACKUP:
            self._transition(self._next_master_reason if self._wants_master else Transition.SYNC_GROUP, _us(now))

    def sync_backup(self, now: float) -> None:
        """Its sync group goes BACKUP: a MASTER follows (releasing its VIPs, without a priority-0 advert)."""
        if self._state is State.MASTER:
            self._transition(Transition.SYNC_GROUP, _us(now))

    def set_priority_delta(self, source: str, delta: int, now: float) -> None:
        """Set the priority delta of ``source`` (0 removes it) and recompute the effective priority."""
        if delta:
            self._deltas[source] = delta
        else:
            self._deltas.pop(source, None)
        self._set_effective_priority()

    def reconfigure(self, config: RouterConfig, now: float) -> None:
        """Run with ``config`` from now on, keeping the state (a master stays master).

        A different VRID, version or address family is another instance: ValueError. A new name is
        not (keepalived matches instances across a reload without it). The effective priority
        follows a new base priority at once (as from ``set_priority_delta``); a new source address,
        advert interval, authentication or address list goes into the next advert and the next
        checks; the timers already running keep their deadlines, and the fault reasons and priority
        deltas stay. What the kernel holds for a master (VIPs, routes, rules, Accept_Mode) is the
        adapter's to change.
        """
        old = self._config
        if (config.vrid, config.version, config.source.version) != (old.vrid, old.version, old.source.version):
            raise ValueError(f"VRRP instance {old.name}: reconfigure cannot change the VRID, version or "
                             "address family (that is another instance)")
        self._config = config
        self._derive(config)
        if self._state is not State.BACKUP or self._master_address is None:
            self._master_adver_int = config.advert_int_us  # not learned from a master's advert
        if self._state is State.MASTER:
            self._master_address = config.source
        self._set_effective_priority()

    def _set_effective_priority(self) -> None:
        """keepalived's rule: base + deltas clamped to 1-254; an address owner keeps 255.

        A master advertises the new priority from its next advert on. A backup moves its pending
        down timer by the change in Skew_Time (keepalived recomputes Master_Down_Interval the same way).
        """
        base = self._config.priority
        if base == OWNER_PRIORITY:
            new = OWNER_PRIORITY
        else:
            new = min(max(base + sum(self._deltas.values()), 1), OWNER_PRIORITY - 1)
        old = self._priority
        if new == old:
            return
        self._priority = new
        self._emit(PriorityChanged(old, new))
        if self._state is State.MASTER:
            self._master_priority = new
        elif self._state is State.BACKUP and self._down_at is not None:
            self._down_at += self._skew(new) - self._skew(old)

    def receive(self, adv: Advertisement, src: IPAddress, now: float) -> None:
        """Handle a decoded advert whose IP source is ``src`` (semantic checks happen here)."""
        self.stats.adverts_rx += 1
        if self._state is not State.BACKUP and self._state is not State.MASTER:
            self._discard(Discard.NOT_RUNNING, f"advert from {src} ignored in {self._state.value} state", src)
            return
        rival = self._state is State.MASTER and adv.priority and adv.vrid == self.config.vrid \
            and src != self.config.source
        if rival:
            self.stats.rival_master_rx += 1
        rejected = self._check(adv, src)
        if rejected is not None:
            self._discard(*rejected, src)
            if rival:  # an accepted rival is resolved by the election; a discarded one stays a second master
                self._notice(NoticeKind.RIVAL_MASTER, f"advert with priority {adv.priority} from {src} while "
                             "master, discarded: two masters on this VRID (split brain)")
            return
        if adv.priority == 0:
            self.stats.priority_zero_rx += 1
        elif self._config.version == 3 and adv.interval_us not in (self._master_adver_int, self._config.advert_int_us):
            self._notice(NoticeKind.INTERVAL_MISMATCH, "advertisement interval mismatch ours = "
                         f"{self._wire_interval} centi-sec rcv'd={adv.adver_int} centi-sec")
        if self._state is State.BACKUP:
            self._backup_receive(adv, src, _us(now))
        else:
            self._master_receive(adv, src, _us(now))

    def handle_timer(self, now: float) -> None:
        """Run whatever is due at ``now``; calling it early or twice does nothing."""
        t = _us(now)
        if self._state is State.BACKUP:
            if self._down_at is not None and t >= self._down_at:
                if self._config.sync_group:
                    # keepalived: "prefer backup to avoid thrashing"; ask again after another interval.
                    self._wants_master = True
                    self._down_at = t + self._master_down_interval()
                    self._emit(WantMaster(self._next_master_reason))
                else:
                    self._transition(self._next_master_reason, t)
        elif self._state is State.MASTER:
            for reason, due in list(self._garp_at.items()):
                if t >= due:
                    del self._garp_at[reason]
                    repeat = self._config.garp_master_repeat if reason is GarpReason.DELAYED \
                        else self._config.garp_lower_prio_repeat
                    self._emit(SendGratuitous(self._all_addresses, repeat, reason))
            if self._refresh_at is not None and t >= self._refresh_at:
                self._emit(SendGratuitous(self._all_addresses, self._config.garp_master_refresh_repeat,
                                          GarpReason.REFRESH))
                self._refresh_at = t + self._config.garp_master_refresh_us
            if self._adver_at is not None and t >= self._adver_at:
                self._send_advert(AdvertReason.PERIODIC, t)

    # ---- outputs -------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The next deadline (seconds, same clock as ``now``), or None when nothing is pending."""
        due = [t for t in (self._down_at, self._adver_at, self._refresh_at) if t is not None]
        due.extend(self._garp_at.values())
        return min(due) / SECOND_US if due else None

    def next_action(self) -> Action | None:
        return self._actions.popleft() if self._actions else None

    # ---- state machine -------------------------------------------------------------------

    def _transition(self, why: Transition, t: int) -> None:
        old = self._state
        new = TRANSITIONS.get((old, why))
        if new is None:
            raise RuntimeError(f"no transition from {old} on {why}; this is a bug")
        self._emit(StateChanged(old, new, why))
        self.stats.transitions += 1
        if old is State.MASTER:
            self._leave_master(why, t)
        self._state = new
        self._wants_master = False
        _ENTER[new](self, why, t)

    def _leave_master(self, why: Transition, t: int) -> None:
        reason = _PRIORITY_ZERO_ON_LEAVE.get(why)
        if reason is not None:
            self._send_advert(reason, t, priority=0)
        self._emit(ReleaseAddresses(self._all_addresses, why))
        self._adver_at = self._refresh_at = None
        self._garp_at.clear()
        self.stats.release_master += 1

    def _enter_backup(self, why: Transition, t: int) -> None:
        if why not in _BACKUP_FROM_ADVERT:
            self._master_adver_int = self._config.advert_int_us
            self._master_address = None
        self._next_master_reason = Transition.MASTER_DOWN
        # keepalived starts preempt_delay at startup and clears it on every other entry to BACKUP.
        delay = self._config.preempt_delay_us
        self._preempt_until = t + delay if why is Transition.INIT and delay else None
        if why is Transition.INIT and self._owner:
            # "The simplest way to become master is to time out from BACKUP very quickly" (1 µs);
            # stale VIPs are not removed first, so an owner's VIPs never flap on restart.
            self._down_at = t + 1
            self._next_master_reason = Transition.OWNER
            return
        if why is Transition.INIT:
            self._emit(ReleaseAddresses(self._all_addresses, why))
        self._down_at = t + self._master_down_interval()

    def _enter_master(self, why: Transition, t: int) -> None:
        cfg = self._config
        self._down_at = None
        self._preempt_until = None
        self._master_adver_int = cfg.advert_int_us
        self._master_address = cfg.source
        self._master_priority = self._priority
        self.stats.become_master += 1
        # RFC 5798 §6.4.2 order: the advert first (it is what stops the other backups), then the
        # addresses, which only have to be in place before the gratuitous ARPs announce them.
        self._send_advert(AdvertReason.TAKEOVER, t)
        self._emit(ClaimAddresses(self._all_addresses, cfg.accepts))
        if cfg.garp_master_repeat:
            self._emit(SendGratuitous(self._all_addresses, cfg.garp_master_repeat, GarpReason.TAKEOVER))
            if cfg.garp_master_delay_us:
                self._garp_at[GarpReason.DELAYED] = t + cfg.garp_master_delay_us
        if cfg.garp_master_refresh_us:
            self._refresh_at = t + cfg.garp_master_refresh_us

    def _enter_fault(self, why: Transition, t: int) -> None:
        self._down_at = None
        self._master_address = None
        if why is Transition.INIT_FAULT:
            self._emit(ReleaseAddresses(self._all_addresses, why))

    def _enter_initialize(self, why: Transition, t: int) -> None:
        self._down_at = None
        self._master_address = None

    # ---- receive rules (RFC 5798 §6.4.2 / §6.4.3 as keepalived 2.2.7 applies them) -------

    def _check(self, adv: Advertisement, src: IPAddress) -> tuple[Discard, str] | None:
        """keepalived's semantic checks, in its order; the first failure wins."""
        cfg = self._config
        if adv.vrid != cfg.vrid:
            return Discard.WRONG_VRID, f"received advert for VRID {adv.vrid}, expected {cfg.vrid}"
        if adv.version != cfg.version:
            return Discard.VERSION_MISMATCH, f"wrong version. Received {adv.version} and expect {cfg.version}"
        if cfg.version == 2:
            if adv.auth_type not in (0, 1, 2):
                return Discard.AUTH_TYPE_INVALID, f"Invalid auth type: {adv.auth_type}"
            if adv.auth_type != cfg.auth_type:
                return Discard.AUTH_TYPE_MISMATCH, f"received a {adv.auth_type} auth, expecting {cfg.auth_type}!"
            if cfg.auth_type == 1 and adv.auth_data != self._auth:
                return Discard.AUTH_FAILURE, "received an invalid passwd!"
            if adv.adver_int != self._wire_interval:
                return Discard.INTERVAL_MISMATCH, ("advertisement interval mismatch mine="
                                                   f"{self._wire_interval} sec rcv'd={adv.adver_int} sec")
        if cfg.skip_check_adv_addr and self._state is State.BACKUP and src == self._master_address:
            return None
        if adv.count != len(cfg.addresses):
            return Discard.ADDRESS_COUNT, (f"received an unexpected ip number count {adv.count}, "
                                           f"expected {len(cfg.addresses)}!")
        received = set(adv.addresses)
        for vip in cfg.addresses:
            if vip not in received:
                return Discard.ADDRESS_LIST, (f"ip address associated with VRID {cfg.vrid} not present "
                                              f"in MASTER advert: {vip}")
        if cfg.check_unicast_src and src not in cfg.unicast_peers:
            return Discard.UNICAST_SOURCE, f"unicast source address {src} not a unicast peer"
        return None

    def _backup_receive(self, adv: Advertisement, src: IPAddress, t: int) -> None:
        cfg = self._config
        if adv.priority == 0:
            self._notice(NoticeKind.PRIORITY_ZERO, "Backup received priority 0 advertisement")
            self._down_at = t + self._skew(self._priority)
            self._next_master_reason = Transition.PEER_STOPPED
            self._wants_master = False
            return
        preempt_pending = cfg.preempt_delay_us and (self._preempt_until is None or self._preempt_until > t)
        if not (cfg.nopreempt or adv.priority >= self._priority or preempt_pending):
            # Preemption: ignore the lower-priority master and let the down timer run out.
            self._master_address = src
            self._next_master_reason = Transition.PREEMPT
            self._discard(Discard.LOWER_PRIORITY,
                          f"received lower priority ({adv.priority}) advert from {src} - discarding", src)
            return
        if cfg.version == 3:
            self._adopt_interval(adv)
        self._master_address = src
        self._master_priority = adv.priority
        self._next_master_reason = Transition.MASTER_DOWN
        self._wants_master = False
        self._down_at = t + self._master_down_interval()
        if cfg.preempt_delay_us:
            if adv.priority >= self._priority:
                if self._preempt_until is not None:
                    self._preempt_until = None
                    self._notice(NoticeKind.PREEMPT_DELAY_STOPPED, "stop preempt delay")
            elif self._preempt_until is None:
                self._preempt_until = t + cfg.preempt_delay_us
                self._notice(NoticeKind.PREEMPT_DELAY_STARTED,
                             f"start preempt delay ({cfg.preempt_delay_us / SECOND_US:.6f})")

    def _master_receive(self, adv: Advertisement, src: IPAddress, t: int) -> None:
        cfg = self._config
        theirs, ours = adv.priority, self._priority
        order = _compare(src, cfg.source)  # the higher address wins a tie (RFC 5798 §6.4.3)
        higher = theirs > ours or (theirs == ours and order > 0)
        if theirs == 0 or (cfg.higher_prio_send_advert and higher):
            self._send_advert(AdvertReason.PRIORITY_ZERO_REPLY if theirs == 0
                              else AdvertReason.HIGHER_PRIORITY_REPLY, t)
            if theirs == 0:
                self._notice(NoticeKind.PRIORITY_ZERO, "Master received priority 0 message")
                return
        if theirs == ours and order == 0:
            self._notice(NoticeKind.OWN_ADDRESS,
                         "WARNING - equal priority advert received from remote host with our IP address.")
            return
        if theirs == ours == OWNER_PRIORITY:
            self._notice(NoticeKind.BOTH_OWNERS, f"CONFIGURATION ERROR: local instance and {src} are both "
                         "configured as address owner, please resolve")
        if not higher:
            election = "" if cfg.lower_prio_no_advert else ", forcing new election"
            self._notice(NoticeKind.LOWER_PRIORITY,
                         f"Received advert from {src} with lower priority {theirs}, ours {ours}{election}")
            if not cfg.lower_prio_no_advert:
                self._send_advert(AdvertReason.FORCE_ELECTION, t)
            if cfg.garp_lower_prio_repeat:
                self._emit(SendGratuitous(self._all_addresses, cfg.garp_lower_prio_repeat,
                                          GarpReason.LOWER_PRIORITY))
                if cfg.garp_lower_prio_delay_us:
                    self._garp_at[GarpReason.LOWER_PRIORITY_DELAYED] = t + cfg.garp_lower_prio_delay_us
            return
        if theirs > ours:
            why = Transition.HIGHER_PRIORITY
            text = f"Master received advert from {src} with higher priority {theirs}, ours {ours}"
        else:
            why = Transition.HIGHER_ADDRESS
            text = f"Master received advert from {src} with same priority {theirs} but higher IP address than ours"
        self._notice(NoticeKind.HIGHER_PRIORITY, text)
        if cfg.version == 3:
            self._adopt_interval(adv)
        self._master_address = src
        self._master_priority = theirs
        self._transition(why, t)

    # ---- helpers -------------------------------------------------------------------------

    def _adopt_interval(self, adv: Advertisement) -> None:
        """v3: Master_Adver_Interval comes from the master's advert (RFC 5798 §6.4.2)."""
        interval = adv.interval_us
        if interval != self._master_adver_int:
            self._notice(NoticeKind.INTERVAL_UPDATED, f"advertisement interval updated to "
                         f"{interval // 1000} milli-sec from {self._master_adver_int // 1000} milli-sec")
            self._master_adver_int = interval

    def _skew(self, priority: int) -> int:
        return skew_time(priority, self._master_adver_int, self._config.version)

    def _master_down_interval(self) -> int:
        cfg = self._config
        return master_down_interval(self._priority, self._master_adver_int, cfg.version, cfg.down_timer_adverts)

    def _send_advert(self, reason: AdvertReason, t: int, priority: int | None = None) -> None:
        cfg = self._config
        prio = self._priority if priority is None else priority
        adv = self._advert
        if adv is None or adv.priority != prio or self._advert_config is not cfg:
            auth_type = cfg.auth_type if cfg.version == 2 else 0
            adv = Advertisement(cfg.version, ADVERTISEMENT, cfg.vrid, prio, len(cfg.addresses), auth_type,
                                self._wire_interval, 0, cfg.addresses, self._auth)
            self._advert, self._advert_config = adv, cfg
        self._emit(SendAdvert(adv, reason))
        self.stats.adverts_tx += 1
        if prio == 0:
            self.stats.priority_zero_tx += 1
        else:
            self._adver_at = t + cfg.advert_int_us

    def _discard(self, reason: Discard, detail: str, src: IPAddress | None) -> None:
        self.stats.discarded[reason] += 1
        self._emit(Discarded(reason, detail, src))

    def _notice(self, kind: NoticeKind, detail: str) -> None:
        self._emit(Notice(kind, detail))

    def _emit(self, action: Action) -> None:
        self._actions.append(action)


def _compare(a: IPAddress, b: IPAddress) -> int:
    """-1/0/1 comparing addresses numerically; mixed families compare equal, as keepalived."""
    if isinstance(a, ipaddress.IPv4Address) is not isinstance(b, ipaddress.IPv4Address):
        return 0
    return (a > b) - (a < b)


# Entry actions per state, the other half of the table.
_ENTER: dict[State, Callable[[VirtualRouter, Transition, int], None]] = {
    State.INITIALIZE: VirtualRouter._enter_initialize,
    State.BACKUP: VirtualRouter._enter_backup,
    State.MASTER: VirtualRouter._enter_master,
    State.FAULT: VirtualRouter._enter_fault,
}
