"""What a ``VirtualRouter`` asks its adapter to do, and the reasons it gives.

Every action is a frozen dataclass with a ``text`` property worded like keepalived 2.2.7's log line
(without the ``(<instance>) `` prefix, which the adapter adds). The adapter applies the actions of
one call in order; notify scripts belong after the whole batch (keepalived runs them once VIPs are
set), even though ``StateChanged`` comes first so the log reads like keepalived's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pyvrrpd.core.packet import Advertisement, IPAddress


class State(enum.StrEnum):
    """VRRP states (RFC 5798 §6.4) plus keepalived's FAULT; values are keepalived's names."""

    INITIALIZE = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"


class Transition(enum.StrEnum):
    """Why the state changed: the edge labels of ``router.TRANSITIONS`` and a metrics label."""

    INIT = "init"
    INIT_FAULT = "init_fault"
    MASTER_DOWN = "master_down"  # Master_Down_Timer fired: the master went silent
    PEER_STOPPED = "priority_zero"  # Skew_Time after a priority-0 advert
    PREEMPT = "preempt"  # down timer fired while discarding a lower-priority master's adverts
    OWNER = "address_owner"  # priority 255 with state MASTER: take over 1 µs after startup
    HIGHER_PRIORITY = "higher_priority"
    HIGHER_ADDRESS = "higher_address"  # equal priority, the peer's address is higher
    FAULT = "fault"
    FAULT_CLEARED = "fault_cleared"
    FAULT_CLEARED_OWNER = "fault_cleared_owner"
    SHUTDOWN = "shutdown"
    SYNC_GROUP = "sync_group"  # the instance's sync group moved it (to MASTER with the group, or back to BACKUP)


class Discard(enum.StrEnum):
    """Why the router ignored an already decoded advert (a metrics label)."""

    WRONG_VRID = "wrong_vrid"
    VERSION_MISMATCH = "version_mismatch"
    AUTH_TYPE_INVALID = "invalid_auth_type"
    AUTH_TYPE_MISMATCH = "auth_type_mismatch"
    AUTH_FAILURE = "auth_failure"
    INTERVAL_MISMATCH = "interval_mismatch"
    ADDRESS_COUNT = "address_count_mismatch"
    ADDRESS_LIST = "address_list_mismatch"
    UNICAST_SOURCE = "unicast_source"
    LOWER_PRIORITY = "lower_priority"  # a backup that will preempt ignores a lower-priority master
    NOT_RUNNING = "not_running"  # received in INIT or FAULT state


class NoticeKind(enum.StrEnum):
    """Noteworthy but accepted events (keepalived logs them)."""

    PRIORITY_ZERO = "priority_zero"
    INTERVAL_MISMATCH = "interval_mismatch"  # v3: logged, the backup adopts the master's interval
    INTERVAL_UPDATED = "interval_updated"
    LOWER_PRIORITY = "lower_priority"  # master: "forcing new election"
    HIGHER_PRIORITY = "higher_priority"  # master: about to go BACKUP
    OWN_ADDRESS = "own_address"  # equal priority advert carrying our own source address
    BOTH_OWNERS = "both_owners"  # two routers configured with priority 255
    PREEMPT_DELAY_STARTED = "preempt_delay_started"
    PREEMPT_DELAY_STOPPED = "preempt_delay_stopped"
    RIVAL_MASTER = "rival_master"  # an advert from another router while we are master (split brain?)


class AdvertReason(enum.StrEnum):
    PERIODIC = "periodic"
    TAKEOVER = "takeover"
    FORCE_ELECTION = "force_election"  # answer to a lower-priority advert
    PRIORITY_ZERO_REPLY = "priority_zero_reply"
    HIGHER_PRIORITY_REPLY = "higher_priority_reply"  # higher_prio_send_advert
    SHUTDOWN = "shutdown"  # priority 0
    FAULT = "fault"  # priority 0


class GarpReason(enum.StrEnum):
    TAKEOVER = "takeover"  # garp_master_repeat on becoming master
    DELAYED = "delayed"  # second burst garp_master_delay later
    REFRESH = "refresh"  # every garp_master_refresh while master
    LOWER_PRIORITY = "lower_priority"  # garp_lower_prio_repeat on a lower-priority advert
    LOWER_PRIORITY_DELAYED = "lower_priority_delayed"  # ... and again garp_lower_prio_delay later
    RELOAD = "reload"  # a master's new VIPs after a reload (sent by the adapter, not the router)


def _join(addresses: tuple[IPAddress, ...]) -> str:
    return ", ".join(map(str, addresses))


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send ``advert`` to the multicast group, or one copy to each unicast peer."""

    advert: Advertisement
    reason: AdvertReason

    @property
    def priority(self) -> int:
        return self.advert.priority

    @property
    def text(self) -> str:
        if self.advert.priority == 0:
            return "sent 0 priority"
        return f"sending advert with priority {self.advert.priority} ({self.reason})"


@dataclass(frozen=True, slots=True)
class ClaimAddresses:
    """Add the VIPs (and the instance's virtual routes/rules); ``accept`` False means block them."""

    addresses: tuple[IPAddress, ...]
    accept: bool

    @property
    def text(self) -> str:
        return "setting VIPs."


@dataclass(frozen=True, slots=True)
class ReleaseAddresses:
    """Remove the VIPs (and virtual routes/rules); idempotent: also sent at startup to clean up."""

    addresses: tuple[IPAddress, ...]
    reason: Transition

    @property
    def text(self) -> str:
        return "removing VIPs."


@dataclass(frozen=True, slots=True)
class SendGratuitous:
    """Send ``count`` gratuitous ARPs (IPv4) / unsolicited NAs (IPv6) for each address now.

    Later bursts (garp_master_delay, refresh) come as further actions from the router's timer.
    Pacing between frames (vrrp_garp_interval / vrrp_gna_interval) is the adapter's job.
    """

    addresses: tuple[IPAddress, ...]
    count: int
    reason: GarpReason

    @property
    def text(self) -> str:
        return f"Sending/queueing gratuitous ARPs for {_join(self.addresses)}"


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State
    reason: Transition

    @property
    def text(self) -> str:
        if self.new is State.INITIALIZE:
            return "Stopped"
        init = " (init)" if self.reason in (Transition.INIT, Transition.INIT_FAULT) else ""
        return f"Entering {self.new.value} STATE{init}"


@dataclass(frozen=True, slots=True)
class WantMaster:
    """A sync-group member's down timer fired: it would become master, but only with its group's consent.

    It stays BACKUP (its down timer re-armed) until the VRRP subsystem moves it with ``sync_master``
    (every member wants to be master, or the group already is) or an advert from a master arrives.
    """

    reason: Transition  # why it would become master: master_down, priority_zero, preempt or address_owner

    @property
    def text(self) -> str:
        return f"would become master ({self.reason}); waiting for its sync group"


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    old: int
    new: int

    @property
    def text(self) -> str:
        return f"Changing effective priority from {self.old} to {self.new}"


@dataclass(frozen=True, slots=True)
class Discarded:
    """An advert the router ignored; count it by ``reason``, log ``text``."""

    reason: Discard
    detail: str
    source: IPAddress | None

    @property
    def text(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    detail: str

    @property
    def text(self) -> str:
        return self.detail


Action = (SendAdvert | ClaimAddresses | ReleaseAddresses | SendGratuitous | StateChanged | PriorityChanged
          | Discarded | Notice | WantMaster)
