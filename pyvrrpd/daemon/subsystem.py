"""The contract between the daemon root and its subsystems, and between trackers and VRRP.

A subsystem (VRRP today; the LVS checkers, the trackers and the control API next) is one object with
the small life cycle below. The root (``daemon/root.py``) builds each from the loaded config, runs
them in one task group, stops them in reverse order, hands each a new config on SIGHUP, and merges
their snapshots. Subsystems never import each other: whatever one needs from another is handed to it
by the root as one of the interfaces defined here (``TrackSink``: trackers → VRRP; ``NotifySink``:
VRRP → notify) (``tests/test_layering.py`` checks the imports).
"""

from __future__ import annotations

from typing import Protocol

import anyio
from anyio.abc import TaskStatus

from pyvrrpd.config import model


class SubsystemError(Exception):
    """A subsystem cannot start or go on (no netlink socket, ...): the message is logged and the daemon
    stops with exit status 1. Bad input and kernel errors a subsystem can live with are logged and
    counted instead, never raised."""


class Subsystem(Protocol):
    name: str  # its key in the snapshot and its ``subsystem`` field in the logs

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start from the config it was built with, call ``task_status.started()`` when ready, run until
        cancelled; clean up in a shielded, time-boxed ``finally``. Raises SubsystemError if it cannot run."""
        ...

    async def reconfigure(self, config: model.Config) -> str | None:
        """Take a new config (already checked: no errors). None: applied. A string: why not (the root
        logs it and this subsystem keeps running its current config)."""
        ...

    def snapshot(self) -> dict:
        """What it knows now (states, counters), read-only and JSON-able: only dicts, lists, str,
        int, float, bool and None."""
        ...


class TrackSink(Protocol):
    """How trackers (scripts, files, processes, interfaces, BFD) feed VRRP: an instance's fault reasons
    and priority deltas, keyed by a source name ("script:NAME", "file:NAME", "process:NAME",
    "bfd:NAME", "link:IFNAME", "group:NAME"). VRRP does not know where they come from. Call these from
    the daemon's event loop (they are not thread-safe); before VRRP has started they decide each
    instance's initial state (a fault: "Entering FAULT STATE (init)")."""

    def set_fault(self, instance: str, source: str, reason: str | None) -> None:
        """Set (``reason``) or clear (None) the fault ``source`` reports for ``instance``."""
        ...

    def set_priority_delta(self, instance: str, source: str, delta: int) -> None:
        """The priority delta of ``source`` for ``instance`` (0 removes it)."""
        ...


class NotifySink(Protocol):
    """How VRRP reports what its instances and sync groups do (the notify subsystem implements it, with
    the scripts, FIFOs and mails the config gives each name). Never blocks; call from the event loop."""

    def notify_state(self, kind: str, name: str, state: str, priority: int) -> None:
        """``INSTANCE``/``GROUP`` ``name`` entered ``state`` (MASTER, BACKUP, FAULT, STOP, DELETED) with this
        effective priority (0 for groups)."""
        ...

    def notify_event(self, name: str, event: str, priority: int) -> None:
        """An instance event that is not a state: MASTER_RX_LOWER_PRI, MASTER_PRIORITY, BACKUP_PRIORITY."""
        ...


class TeeNotify:
    """One NotifySink that hands every report to several (the notify subsystem, the IPVS sync daemon)."""

    def __init__(self, *sinks: NotifySink) -> None:
        self.sinks = sinks

    def notify_state(self, kind: str, name: str, state: str, priority: int) -> None:
        for sink in self.sinks:
            sink.notify_state(kind, name, state, priority)

    def notify_event(self, name: str, event: str, priority: int) -> None:
        for sink in self.sinks:
            sink.notify_event(name, event, priority)
