"""What follows the instances' state changes inside the VRRP subsystem: notifications and sync groups.

The effects of each instance hand their state changes, priority changes, notices and sync-group wishes
to a ``Listener`` made here, and say ``flushed()`` once the actions of one input are carried out (the
VIPs are in place); the VRRP subsystem hands over every fault reason it sends to an instance
(``fault()``). From that, ``Reporter``:

* **notifies** through the ``NotifySink`` (the notify subsystem) in keepalived's convention: every state
  an instance enters, the initial one included (``BACKUP`` or ``FAULT``), ``STOP`` when it stops, with
  its effective priority; ``MASTER_RX_LOWER_PRI`` when a master hears a lower priority;
  ``MASTER_PRIORITY``/``BACKUP_PRIORITY`` when its effective priority changes (the notifier writes
  those only for instances with ``notify_priority_changes``);
* keeps keepalived's **silent INIT**: an instance in FAULT only because a tracked script has no result
  yet (every reason it has ends with ``core.tracking.PENDING``) is not notified; if the first result is
  a failure it is notified ``FAULT`` then, if it is a success the next state is notified as usual;
* applies the **sync groups** with the pure rules of ``core.tracking``:

  - FAULT together: while a member has a fault reason of its own, every other member gets the reason
    ``group:NAME``; a master among them sends its priority-0 advert as it enters FAULT;
  - MASTER by consent: a member whose down timer fires says ``WantMaster``; it is moved to MASTER
    (with every other member) only if the group already is MASTER or every other member wants to be
    master too (``sync_transition``), else it waits another Master_Down_Interval;
  - BACKUP together: a member entering BACKUP takes the group to BACKUP and the other masters with it;
  - each change of the group's state is notified as ``GROUP NAME STATE 0`` (group scripts), and
    ``STOP`` once every member has stopped. The start-up rule (``state MASTER`` only if every member is
    an address owner) is applied by ``plan.plan_instances``.

Every instance state change is notified, also one the group caused (keepalived may skip the instance
notification when the group already reported that state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pyvrrpd.core.actions import Action, Notice, NoticeKind, PriorityChanged, State, StateChanged, WantMaster
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.core.tracking import PENDING, Member, is_pending, sync_group_faults, sync_transition
from pyvrrpd.daemon.instance import InboxItem, SetFault, SyncMove
from pyvrrpd.daemon.plan import InstancePlan
from pyvrrpd.daemon.subsystem import NotifySink

GROUP_SOURCE = "group:"


@dataclass(eq=False)
class _Group:
    name: str
    members: tuple[str, ...]
    owners: bool  # every member is an address owner configured MASTER: they become master at once
    state: str = "INIT"
    silent: bool = False  # in FAULT only while a first script result is awaited: not notified yet
    stopped: set[str] = field(default_factory=set)

    @property
    def source(self) -> str:
        return GROUP_SOURCE + self.name


@dataclass(eq=False)
class _Instance:
    name: str
    group: _Group | None
    faults: dict[str, str] = field(default_factory=dict)  # every reason sent to it, by source
    silent: bool = False  # entered FAULT only for reasons that await a first result: not notified
    deleted: bool = False  # a reload removed it: its stop is notified DELETED

    def own_faults(self) -> list[str]:
        return [r for s, r in self.faults.items() if not s.startswith(GROUP_SOURCE)]

    def waiting(self) -> bool:
        """In FAULT (or about to be) only because a first result is awaited."""
        return bool(self.faults) and all(is_pending(r) for r in self.faults.values())


def sync_groups(config, plans: Iterable[InstancePlan]) -> dict[str, tuple[tuple[str, ...], bool]]:
    """Each vrrp_sync_group's members (those that run) and whether they all start as master (address
    owners configured MASTER: the start-up rule left them MASTER)."""
    by_name = {p.name: p for p in plans}
    out = {}
    for group in config.sync_groups:
        members = tuple(n for n in group.members if n in by_name)
        owners = all(by_name[n].router.initial_state is State.MASTER for n in members)
        out[group.name] = (members, owners)
    return out


class Listener:
    """One instance's ``effects.Listener``; ``name`` gives the instance's current name (a reload may
    rename it)."""

    def __init__(self, reporter: Reporter, name: Callable[[], str]) -> None:
        self._reporter = reporter
        self._name = name
        self._actions: list[Action] = []  # of the input being carried out

    def action(self, action: Action) -> None:
        self._actions.append(action)

    def flushed(self) -> None:
        if self._actions:
            actions, self._actions = self._actions, []
            self._reporter._flushed(self._name(), actions)


class Reporter:
    """Notifications and sync groups for the VRRP subsystem (see the module docstring).

    ``groups`` maps each sync group to its members and whether they are all address owners configured
    MASTER; ``send`` puts an item into an instance's inbox (for a ``SetFault`` it comes back through
    ``fault()``); ``router`` gives an instance's router, read only (None: no such instance).
    """

    def __init__(self, names: Iterable[str], groups: dict[str, tuple[tuple[str, ...], bool]],
                 notify: NotifySink | None, send: Callable[[str, InboxItem], None],
                 router: Callable[[str], VirtualRouter | None], log) -> None:
        self.notify = notify
        self._send = send
        self._router = router
        self.log = log
        self._groups = {name: _Group(name, members, owners) for name, (members, owners) in groups.items()}
        member_of = {m: g for g in self._groups.values() for m in g.members}
        self._instances = {name: _Instance(name, member_of.get(name)) for name in names}

    def listener(self, name: Callable[[], str]) -> Listener:
        return Listener(self, name)

    def deleting(self, names: Iterable[str]) -> None:
        """A reload removes these instances: their stop is notified ``DELETED``, not ``STOP``."""
        for name in names:
            if name in self._instances:
                self._instances[name].deleted = True

    def reconfigure(self, names: Iterable[str], groups: dict[str, tuple[tuple[str, ...], bool]],
                    renamed: dict[str, str]) -> None:
        """After a reload: the instances now running (``renamed``: old name → new name) and the sync groups.
        What is known of a kept instance or group stays; every member gets its group's fault reason anew,
        and an instance that left a group loses that group's reason."""
        old = self._instances
        back = {new: was for was, new in renamed.items()}
        self._instances = {}
        for name in names:
            inst = old.get(back.get(name, name)) or _Instance(name, None)
            inst.name, inst.group, inst.deleted = name, None, False
            self._instances[name] = inst
        kept = self._groups
        self._groups = {}
        for name, (members, owners) in groups.items():
            group = kept.get(name) or _Group(name, members, owners)
            group.members = tuple(m for m in members if m in self._instances)
            group.owners = owners
            self._groups[name] = group
            for member in group.members:
                self._instances[member].group = group
        for inst in self._instances.values():
            mine = inst.group.source if inst.group is not None else None
            for source in [s for s in inst.faults if s.startswith(GROUP_SOURCE) and s != mine]:
                self._send(inst.name, SetFault(source, None))
        for group in self._groups.values():
            self._group_faults(group)

    def snapshot(self) -> dict:
        return {name: {"state": g.state, "members": list(g.members)} for name, g in self._groups.items()}

    # -- fault reasons, as the VRRP subsystem sends them --------------------------------------------

    def fault(self, name: str, source: str, reason: str | None) -> None:
        """A fault reason sent to (or cleared for) ``name``: follow it for the sync group and silent INIT."""
        inst = self._instances.get(name)
        if inst is None:
            return
        if reason is None:
            inst.faults.pop(source, None)
        else:
            inst.faults[source] = reason
        if inst.silent and inst.faults and not inst.waiting():
            self._silent_fault_ends(inst)  # the first result was a failure: FAULT now, as keepalived
        if inst.group is not None and not source.startswith(GROUP_SOURCE):
            self._group_faults(inst.group)

    def _silent_fault_ends(self, inst: _Instance) -> None:
        inst.silent = False
        self._notify_instance(inst, "FAULT")
        group = inst.group
        if group is not None and group.silent and group.state == "FAULT":
            group.silent = False
            self._notify_group(group, "FAULT")

    def _group_faults(self, group: _Group) -> None:
        """Give every member the group's reason for the others' faults (FAULT together)."""
        members = {n: self._instances[n] for n in group.members if n in self._instances}
        real = {n for n, inst in members.items() if any(not is_pending(r) for r in inst.own_faults())}
        waiting = [n for n, inst in members.items() if inst.own_faults() and n not in real]
        reasons = sync_group_faults(group.name, {n: Member("INIT", own_fault=n in real) for n in members})
        for name, inst in members.items():
            reason = reasons[name]
            others = [n for n in waiting if n != name]
            if reason is None and others:
                reason = f"sync group {group.name}: {', '.join(others)} {'has' if len(others) == 1 else 'have'} {PENDING}"
            if inst.faults.get(group.source) != reason:
                self._send(name, SetFault(group.source, reason))

    # -- what the instances did ------------------------------------------------------------------------

    def _flushed(self, name: str, actions: list[Action]) -> None:
        inst = self._instances.get(name)
        if inst is None:  # renamed by a reload that has not told us yet
            inst = self._instances[name] = _Instance(name, None)
        router = self._router(name)
        if router is None:
            return
        for action in actions:
            match action:
                case StateChanged(_, new):
                    self._state_changed(inst, new, router)
                case WantMaster():
                    self._want_master(inst)
                case PriorityChanged(_, new) if router.state in (State.MASTER, State.BACKUP):
                    self._event(inst, f"{router.state.value}_PRIORITY", new)
                case Notice(NoticeKind.LOWER_PRIORITY) if router.state is State.MASTER:
                    self._event(inst, "MASTER_RX_LOWER_PRI", router.priority)

    def _state_changed(self, inst: _Instance, new: State, router: VirtualRouter) -> None:
        group = inst.group
        if new is State.INITIALIZE:  # stopped
            inst.silent = False
            self._notify_instance(inst, "DELETED" if inst.deleted else "STOP", router.priority)
            if group is not None and not inst.deleted:
                group.stopped.add(inst.name)
                if len(group.stopped) == len(group.members) and group.state != "STOP":
                    group.state = "STOP"
                    self._notify_group(group, "STOP")
            return
        state = new.value
        inst.silent = new is State.FAULT and inst.waiting()
        if not inst.silent:
            self._notify_instance(inst, state, router.priority)
        if group is not None:
            self._group_follows(group, inst, state)

    def _group_follows(self, group: _Group, inst: _Instance, state: str) -> None:
        if state == "MASTER":
            # Only with the group's consent (or as an address owner leaving FAULT): the group is master.
            if group.state != "MASTER":
                self._group_state(group, "MASTER", f"VRRP_Group({group.name}) Syncing instances to MASTER state")
            for name in group.members:
                router = self._router(name)
                if name != inst.name and router is not None and router.state is State.BACKUP:
                    self._send(name, SyncMove(State.MASTER))
            return
        plan = sync_transition(group.name, group.state, self._members(group), inst.name, state)
        if plan.group_state != group.state:
            silent = state == "FAULT" and inst.silent
            self._group_state(group, plan.group_state, plan.log, silent=silent)
        for name, to in plan.force.items():
            if to == "BACKUP":  # FAULT comes with the group's fault reason, not as a move
                self._send(name, SyncMove(State.BACKUP))

    def _want_master(self, inst: _Instance) -> None:
        group = inst.group
        if group is None:
            return
        plan = sync_transition(group.name, "MASTER" if group.owners else group.state, self._members(group),
                               inst.name, "MASTER")
        if plan.allowed:
            self._send(inst.name, SyncMove(State.MASTER))

    def _members(self, group: _Group) -> dict[str, Member]:
        out = {}
        for name in group.members:
            router, inst = self._router(name), self._instances.get(name)
            if router is not None and inst is not None:  # (a reload may be under way)
                out[name] = Member(router.state.value, router.wants_master, bool(inst.own_faults()))
        return out

    def _group_state(self, group: _Group, state: str, log: str | None, *, silent: bool = False) -> None:
        first = group.state == "INIT"
        group.state = state
        group.silent = silent
        if log and not first:
            self.log.info(log, group=group.name)
        if not silent:
            self._notify_group(group, state)

    # -- to the notify subsystem ------------------------------------------------------------------------

    def _notify_instance(self, inst: _Instance, state: str, priority: int | None = None) -> None:
        if self.notify is not None:
            if priority is None:
                router = self._router(inst.name)
                priority = router.priority if router is not None else 0
            self.notify.notify_state("INSTANCE", inst.name, state, priority)

    def _notify_group(self, group: _Group, state: str) -> None:
        if self.notify is not None:
            self.notify.notify_state("GROUP", group.name, state, 0)

    def _event(self, inst: _Instance, event: str, priority: int) -> None:
        if self.notify is not None:
            self.notify.notify_event(inst.name, event, priority)
