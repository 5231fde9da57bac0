"""Tracking decisions, pure: what a tracked script, interface, file or process means for the
instances that track it, with keepalived 2.2.7's arithmetic.

Everything here is data in, data out: no clock (``now`` comes in), no I/O, no logging. The daemon's
trackers (``pyvrrpd.daemon.tracking``) feed results in and hand the resulting facts to the VRRP
subsystem's ``TrackSink``:

* ``Fault(instance, source, reason)`` — the instance is in FAULT while any source gives a reason
  (``reason=None`` clears this source's reason);
* ``Delta(instance, source, delta)`` — this source adds ``delta`` to the instance's base priority
  (the router clamps the sum to 1..254 and never adjusts an address owner).

Source names are ``link:IFNAME``, ``script:NAME``, ``file:NAME``, ``process:NAME``, ``bfd:NAME`` and
``group:NAME``.

keepalived's rules, in one place:

* **weight 0** — the tracked object failing puts the instance in FAULT; with ``reverse`` it is the
  object *succeeding* that does ("weight 0 reverse").
* **weight ≠ 0** (scripts, interfaces, processes, BFD) — a positive weight is added while the object
  is up, a negative weight is added (it lowers the priority) while it is down; ``reverse`` negates
  the adjustment. Nothing is added before a script's first result.
* **files** — the value read times the weight times (-1 if ``reverse``), clamped to -254..253;
  -254 means FAULT. With weight 0 a non-zero value means FAULT (a zero value with ``reverse``).
* **vrrp_script** results pass through rise/fall hysteresis (``ScriptResult``).
* **processes** are up while the number running is within ``quorum``..``quorum_max``, with the
  ``fork_delay``/``terminate_delay`` debouncing of ``ProcessQuorum``.
* **sync groups** move together (``sync_group_faults``, ``sync_transition``, ``sync_initial_states``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

FAULT_STATUS = -254  # a tracked file's status that means FAULT
MAX_STATUS = 253  # the largest priority change one tracked file can make
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # the range of values keepalived accepts from a track file
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1  # strtol's range on Linux x86-64
FILE_READ_LIMIT = 127  # keepalived reads at most this many bytes of a track file
COMM_LEN = 15  # the kernel keeps this many characters of a process name (TASK_COMM_LEN - 1)

Kind = Literal["link", "script", "file", "process", "bfd", "group"]


def source_name(kind: Kind, name: str) -> str:
    """The TrackSink source for a tracked object: ``script:chk_nginx``, ``link:eth1``, ..."""
    return f"{kind}:{name}"


@dataclass(frozen=True, slots=True)
class Fault:
    """Set (``reason``) or clear (``None``) one source's FAULT reason on an instance."""

    instance: str
    source: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class Delta:
    """One source's contribution to an instance's priority (0: none)."""

    instance: str
    source: str
    delta: int


Fact = Fault | Delta


@dataclass(frozen=True, slots=True)
class Tracker:
    """One instance tracking one object, with the weight in force for that instance (a track_*
    entry's own weight, else the object's default) and ``reverse``."""

    instance: str
    weight: int = 0
    reverse: bool = False


# --------------------------------------------------------------------------- weights


def weighted_delta(up: bool, weight: int, reverse: bool = False) -> int:
    """keepalived's priority adjustment for a weighted script, interface, process or BFD instance.

    Up: a positive weight is added (a negative one is not). Down: a negative weight is added (a
    positive one is not). ``reverse`` negates the result.
    """
    delta = (weight if weight > 0 else 0) if up else (weight if weight < 0 else 0)
    return -delta if reverse else delta


def unweighted_fault(up: bool, reverse: bool = False) -> bool:
    """Whether an unweighted (weight 0) tracker puts its instance in FAULT: when the object is down,
    or — with ``reverse`` — when it is up."""
    return up == reverse


def updown_facts(source: str, up: bool | None, trackers: Iterable[Tracker], *, down_reason: str,
                 up_reason: str, pending_reason: str = "no result yet") -> list[Fact]:
    """Facts for an object that is up or down (``None``: not known yet, e.g. a script that has not
    finished its first run): FAULT for unweighted trackers, priority deltas for weighted ones.

    ``down_reason``/``up_reason`` are the FAULT reasons when the object is down (or, reversed, up).
    """
    facts: list[Fact] = []
    for t in trackers:
        if t.weight == 0:
            if up is None:
                reason: str | None = pending_reason
            elif unweighted_fault(up, t.reverse):
                reason = up_reason if up else down_reason
            else:
                reason = None
            facts.append(Fault(t.instance, source, reason))
        else:
            facts.append(Delta(t.instance, source, 0 if up is None else weighted_delta(up, t.weight, t.reverse)))
    return facts


# --------------------------------------------------------------------------- vrrp_script


class ScriptResult:
    """A vrrp_script's result with keepalived's rise/fall hysteresis.

    keepalived keeps a counter in 0 .. rise+fall-1; the script is OK while the counter is >= rise.
    A success below rise-1 counts up; the success that reaches rise declares OK and fills the
    counter (rise+fall-1), and every later success refills it. A failure above rise counts down;
    the failure at exactly rise declares failed and empties the counter, and a failure while not
    OK empties it too, so the successes towards rise must be consecutive. Hence: ``fall``
    consecutive failures to fail, ``rise`` consecutive successes to recover.

    Initial state: not known (``up is None``) with the counter at rise-1, so the *first* result
    decides at once either way ("one success is enough"). With ``init_fail`` the script starts
    failed (counter 0) and needs ``rise`` successes. Note that keepalived 2.2.7 resets a tracked
    script to the not-known state when an instance tracks it, so ``init_fail`` has no effect there
    (verified with the Debian 2.2.7 binary: rise 3 + init_fail went OK after one success); the
    daemon passes ``init_fail=False`` to match.
    """

    __slots__ = ("rise", "fall", "count", "up", "_first")

    def __init__(self, rise: int = 1, fall: int = 1, *, init_fail: bool = False) -> None:
        self.rise = max(1, rise)
        self.fall = max(1, fall)
        self._first = not init_fail
        self.count = 0 if init_fail else self.rise - 1
        self.up: bool | None = False if init_fail else None

    def record(self, success: bool) -> bool:
        """Count one result; True when ``up`` changed (keepalived logs the result then)."""
        first, self._first = self._first, False
        before = self.up
        top = self.rise + self.fall - 1
        if success:
            if self.count < self.rise - 1:
                self.count += 1
            elif self.count != top:
                if self.count < self.rise:
                    self.up = True
                self.count = top
        elif self.count > self.rise:
            self.count -= 1
        else:
            if self.count == self.rise or first:
                self.up = False
            self.count = 0
        return self.up != before


# --------------------------------------------------------------------------- track_file


def parse_file_value(data: bytes) -> int | None:
    """The value keepalived reads from a track file: C ``strtol(buf, NULL, 0)`` over the first 127
    bytes. Leading white space, a sign, then decimal, ``0x`` hex or ``0`` octal digits; anything
    after them is ignored, and no digits at all (garbage, an empty file) give 0. A number outside
    C ``int`` (or ``long``) gives None: keepalived logs it and keeps the previous value.
    """
    text = data[:FILE_READ_LIMIT]
    nul = text.find(b"\0")
    if nul >= 0:
        text = text[:nul]
    i, n = 0, len(text)
    while i < n and text[i] in b" \t\n\v\f\r":
        i += 1
    negative = False
    if i < n and text[i] in b"+-":
        negative = text[i] == ord("-")
        i += 1
    base = 10
    if text[i:i + 2].lower() == b"0x" and i + 2 < n and chr(text[i + 2]) in "0123456789abcdefABCDEF":
        base, i = 16, i + 2
    elif text[i:i + 1] == b"0":
        base = 8
    value = 0
    while i < n:
        digit = int(chr(text[i]), 36) if chr(text[i]).isalnum() and text[i] < 128 else 99
        if digit >= base:
            break
        value = value * base + digit
        i += 1
        if value > LONG_MAX + 1:
            return None  # ERANGE
    value = -value if negative else value
    if not LONG_MIN <= value <= LONG_MAX or not INT_MIN <= value <= INT_MAX:
        return None
    return value


def file_status(value: int, weight: int, reverse: bool = False) -> int:
    """keepalived's status of a tracked file for one tracker, -254 (FAULT) .. 253.

    Weight 0: a non-zero value means FAULT (with ``reverse``, a zero value does). Otherwise the
    value times the weight, negated with ``reverse``, clamped to -254..253.
    """
    if weight == 0:
        return FAULT_STATUS if (value != 0) != reverse else 0
    status = value * weight * (-1 if reverse else 1)
    return min(max(status, FAULT_STATUS), MAX_STATUS)


def file_facts(source: str, value: int, trackers: Iterable[Tracker], *, name: str) -> list[Fact]:
    """Facts for a tracked file's value: a status of -254 is FAULT (and no priority change, as
    keepalived takes the file's contribution out while in FAULT), anything else a priority delta.
    Unweighted trackers only ever get a Fault fact, weighted ones both."""
    facts: list[Fact] = []
    for t in trackers:
        status = file_status(value, t.weight, t.reverse)
        fault = status == FAULT_STATUS
        facts.append(Fault(t.instance, source, f"tracked file {name} has value {value}" if fault else None))
        if t.weight:
            facts.append(Delta(t.instance, source, 0 if fault else status))
    return facts


# --------------------------------------------------------------------------- track_process


def process_matches(name: str, params: Sequence[str], param_match: str | None, full_command: bool,
                    comm: str, argv: Sequence[str] | None) -> bool:
    """Whether a running process counts for a vrrp_track_process, as keepalived matches it.

    Without ``full_command`` the kernel's process name (``comm``, at most 15 characters) must equal
    ``name`` exactly — no regular expression, so ``ssh`` does not match ``sshd``. With it, argv[0]
    of the command line must equal ``name``. ``param_match`` then checks the arguments:
    ``exact`` — exactly ``params`` (none if none are given); ``partial`` — the first len(params)
    arguments are ``params``; ``initial`` — like partial, but the last one may be longer.
    """
    if full_command:
        if not argv or argv[0] != name:
            return False
    elif comm != name:
        return False
    if param_match is None:
        return True
    args = list(argv[1:]) if argv else []
    want = list(params)
    if param_match == "exact":
        return args == want
    if not want:
        return True
    if param_match == "partial":
        return args[:len(want)] == want
    # initial: all but the last parameter exactly, the last one as a prefix
    return len(args) >= len(want) and args[:len(want) - 1] == want[:-1] and args[len(want) - 1].startswith(want[-1])


Cause = Literal["fork", "exit", "other"]


class ProcessQuorum:
    """A tracked process's quorum: up while ``quorum <= count <= quorum_max``.

    keepalived debounces: gaining quorum because a tracked process forked waits ``fork_delay``,
    losing it because one exited waits ``terminate_delay``; the count moving back before the delay
    ends cancels the pending change. Other changes (a process exec'ing into or out of the name,
    renaming itself) take effect at once. ``now`` is in seconds; delays are in seconds.
    """

    __slots__ = ("quorum", "quorum_max", "fork_delay", "terminate_delay", "count", "up", "_due")

    def __init__(self, quorum: int = 1, quorum_max: int | None = None, *, fork_delay: float = 0.0,
                 terminate_delay: float = 0.0) -> None:
        self.quorum = quorum
        self.quorum_max = quorum_max
        self.fork_delay = fork_delay
        self.terminate_delay = terminate_delay
        self.count = 0
        self.up = self.in_quorum(0)
        self._due: float | None = None

    def in_quorum(self, count: int) -> bool:
        return count >= self.quorum and (self.quorum_max is None or count <= self.quorum_max)

    def start(self, count: int) -> None:
        """The count found by the scan at start-up: the state follows at once, without delays."""
        self.count = count
        self.up = self.in_quorum(count)
        self._due = None

    def update(self, count: int, now: float, cause: Cause = "other") -> bool:
        """A new count of matching processes; True when ``up`` changed now."""
        self.count = count
        target = self.in_quorum(count)
        if target == self.up:
            self._due = None  # back where we were: a pending change is cancelled
            return False
        if self._due is not None:
            return False  # already waiting to change to target
        delay = self.fork_delay if target and cause == "fork" else (
            self.terminate_delay if not target and cause == "exit" else 0.0)
        if delay > 0:
            self._due = now + delay
            return False
        self.up = target
        return True

    def get_timer(self) -> float | None:
        return self._due

    def handle_timer(self, now: float) -> bool:
        """At the deadline: the state follows the count as it is then. True when ``up`` changed."""
        if self._due is None or now < self._due:
            return False
        self._due = None
        before, self.up = self.up, self.in_quorum(self.count)
        return self.up != before


# --------------------------------------------------------------------------- sync groups


GroupState = Literal["INIT", "BACKUP", "MASTER", "FAULT"]


@dataclass(frozen=True, slots=True)
class Member:
    """A sync group member as the VRRP subsystem sees it: its state, whether it wants to be master
    (keepalived's wantstate: its down timer fired, or it is an address owner), and whether it has a
    FAULT reason of its own (not counting the group's)."""

    state: GroupState
    wants_master: bool = False
    own_fault: bool = False


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a member's state change means for its group.

    ``allowed`` is False when the changed member may not become master yet (it stays BACKUP and
    waits another Master_Down interval); ``group_state`` is the group's new state (notify the group
    when it differs from the old one); ``force`` maps other members to the state they must enter
    now; ``log`` is keepalived's line for the group, if any.
    """

    allowed: bool
    group_state: GroupState
    force: dict[str, GroupState]
    log: str | None = None


def sync_group_faults(group: str, members: Mapping[str, Member]) -> dict[str, str | None]:
    """The ``group:NAME`` FAULT reason for each member: set while some *other* member has a fault
    of its own ("one member in FAULT puts the group in FAULT"); cleared for all only when no
    member has one left — then they all leave FAULT together, as BACKUP."""
    faulted = [name for name, m in members.items() if m.own_fault]
    out: dict[str, str | None] = {}
    for name in members:
        others = [f for f in faulted if f != name]
        out[name] = f"sync group {group}: {', '.join(others)} in FAULT" if others else None
    return out


def sync_transition(group: str, group_state: GroupState, members: Mapping[str, Member], changed: str,
                    new_state: GroupState) -> SyncPlan:
    """keepalived 2.2.7's sync-group rule for member ``changed`` entering ``new_state``.

    * FAULT: the group goes FAULT and every other member not in FAULT goes FAULT (a master
      leaving MASTER sends its priority-0 advert).
    * MASTER: allowed at once if the group is already MASTER. Otherwise only if every other
      member wants to be master too ("prefer backup to avoid thrashing"): then the group goes
      MASTER and pulls the others; if not, the member stays BACKUP and tries again after another
      Master_Down interval.
    * BACKUP (a master hearing a better one, or the group leaving FAULT): the group goes BACKUP
      and every other member not in BACKUP follows, except a member with a fault of its own.
    """
    others = {name: m for name, m in members.items() if name != changed}
    if new_state == "FAULT":
        if group_state == "FAULT":
            return SyncPlan(True, "FAULT", {})
        force = {name: "FAULT" for name, m in others.items() if m.state != "FAULT"}
        return SyncPlan(True, "FAULT", force, f"VRRP_Group({group}) Syncing instances to FAULT state")
    if new_state == "MASTER":
        if group_state == "MASTER":
            return SyncPlan(True, "MASTER", {})
        if not all(m.wants_master or m.state == "MASTER" for m in others.values()):
            return SyncPlan(False, group_state, {})
        force = {name: "MASTER" for name, m in others.items() if m.state != "MASTER"}
        return SyncPlan(True, "MASTER", force, f"VRRP_Group({group}) Syncing instances to MASTER state")
    if new_state == "BACKUP":
        if group_state == "BACKUP":
            return SyncPlan(True, "BACKUP", {})
        force = {name: "BACKUP" for name, m in others.items() if m.state != "BACKUP" and not m.own_fault}
        return SyncPlan(True, "BACKUP", force, f"VRRP_Group({group}) Syncing instances to BACKUP state")
    return SyncPlan(True, group_state, {})


def sync_initial_states(members: Mapping[str, tuple[str, int]]) -> dict[str, str]:
    """The start-up rule: members configured ``state MASTER`` start as master only if *every*
    member is an address owner (priority 255) configured MASTER; otherwise all start BACKUP.

    ``members`` maps each member to (configured state, priority); returns the state each wants.
    """
    all_owner_masters = all(state == "MASTER" and prio == 255 for state, prio in members.values())
    return {name: ("MASTER" if all_owner_masters else "BACKUP") for name in members}
