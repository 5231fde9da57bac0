"""LVS health checkers: probe real servers, decide their health, report it through a HealthSink.

The one way out of this package is :class:`HealthSink`. Whoever owns the IPVS table (the LVS
reconciler) implements it; the checkers call it when a real server's health or weight changes
and when its ``notify_up`` / ``notify_down`` should run.

A real server is named by :class:`RealServerKey`: its virtual server's label (keepalived's own
spelling, see :func:`vs_label`) plus the real server's address and port. Build the same keys
from a config with :func:`real_server_keys`, so both sides agree on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pyvrrpd.config import model as m

IPVS_WEIGHT_MAX = 65535


class RealServerKey(NamedTuple):
    """A real server within its virtual server.

    ``vs`` is :func:`vs_label` of the virtual server (unique within a config: a repeated
    virtual server gets `` #2``, `` #3``... in config order); ``address`` and ``port`` are the
    real server's as in the model (``port`` None where the model has none).
    """

    vs: str
    address: m.IPAddress
    port: int | None

    def __str__(self) -> str:
        return f"{rs_label(self.address, self.port)} of VS {self.vs}"


@dataclass(frozen=True, slots=True)
class RealServerEvent:
    """A real server changed state: run its ``notify_up`` or ``notify_down`` (``script``; None when
    the config has none). ``reason`` says which checker decided it, in words for the log."""

    key: RealServerKey
    up: bool
    weight: int | None
    script: m.Script | None
    reason: str


class HealthSink(Protocol):
    """Where health results go. Both calls are synchronous and must not block."""

    def set_health(self, rs: RealServerKey, up: bool, weight: int | None = None) -> None:
        """The real server is alive (``up``) or not; ``weight`` None means its configured weight,
        an int (0..65535) a weight a MISC_CHECK (``misc_dynamic``) or FILE_CHECK set.
        Called once per real server at start (its initial state) and on every change."""

    def notify(self, event: RealServerEvent) -> None:
        """A real server came up or went down after start (keepalived's notify_up/notify_down
        moments, and notify_down at stop for virtual servers with ``omega``)."""


def vs_label(vs: m.VirtualServer) -> str:
    """keepalived's name for a virtual server (FMT_VS): ``[198.51.100.10]:tcp:80``, ``FWM 7``,
    ``[NAME]:0`` for a group."""
    if vs.group is not None:
        return f"[{vs.group}]:{vs.port or 0}"
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}"
    proto = (vs.protocol or "none").lower()
    return f"[{vs.address}]:{proto}:{vs.port or 0}"


def rs_label(address: m.IPAddress, port: int | None) -> str:
    """keepalived's name for a real server address: ``[198.51.100.21]:80``."""
    return f"[{address}]:{port or 0}"


def rs_fmt(vs: m.VirtualServer, address: m.IPAddress, port: int | None) -> str:
    """keepalived's FMT_RS (``inet_sockaddrtotrio``: FIFO lines, mails, the Adding/Removing service and
    Activating/Suspending healthchecker log lines): ``[203.0.113.11]:tcp:80``, the service's protocol; a
    service without one (a fwmark service, whose protocol is ignored, or a group of fwmarks) is ``none``."""
    proto = (vs.protocol or "none").lower() if vs.fwmark is None else "none"
    return f"[{address}]:{proto}:{port or 0}"


def real_server_keys(config: m.Config) -> Iterator[tuple[m.VirtualServer, m.RealServer, RealServerKey]]:
    """Every real server of the config with its key, in config order."""
    seen: dict[str, int] = {}
    for vs in config.virtual_servers:
        label = vs_label(vs)
        n = seen[label] = seen.get(label, 0) + 1
        if n > 1:
            label = f"{label} #{n}"
        for rs in vs.real_servers:
            yield vs, rs, RealServerKey(label, rs.address, rs.port)
