"""The ``lvs_sync_daemon`` subsystem: the kernel's IPVS connection-sync daemon follows one VRRP instance.

VRRP reports its instances' states through a NotifySink (the root hands this subsystem the same reports
as the notify subsystem, pyvrrpd.daemon.subsystem.TeeNotify); the named instance's MASTER starts the
master sync daemon, BACKUP/FAULT the backup one (the other role is stopped first), as keepalived's VRRP
process does (pyvrrpd/lvs/syncd.py has the rules). On exit both are stopped. Kernel errors are logged and
counted, never fatal; a host without IPVS logs it once and does nothing.
"""

from __future__ import annotations

import errno
from collections import Counter

import anyio

from pyvrrpd.config import model
from pyvrrpd.lvs import syncd as s

STOP_SECONDS = 5.0


class SyncDaemon:
    """Subsystem ``lvs_sync_daemon`` and a NotifySink (only the named instance's states matter)."""

    name = "lvs_sync_daemon"

    def __init__(self, config: model.Config, log, *, port=None) -> None:
        self.log = log.bind(subsystem=self.name)
        self.settings, notes = s.sync_config(config)
        for note in notes:
            self.log.warning(note)
        self.port = port  # a KernelIpvs-like object (start_daemon/stop_daemon/daemons); None: opened at run
        self._own_port = port is None
        self.running: set[str] = set()
        self.state: str | None = None  # the instance's last state
        self.counters: Counter = Counter()
        self.last_error: str | None = None
        self._send, self._receive = anyio.create_memory_object_stream[str](64)

    # -- NotifySink ------------------------------------------------------------------------------

    def notify_state(self, kind: str, name: str, state: str, priority: int) -> None:
        if kind == "INSTANCE" and self.settings is not None and name == self.settings.instance:
            try:
                self._send.send_nowait(state)
            except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                self.counters["dropped_states"] += 1

    def notify_event(self, name: str, event: str, priority: int) -> None:
        pass

    # -- life cycle ------------------------------------------------------------------------------

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        if self.settings is None:
            task_status.started()
            await anyio.sleep_forever()
        if self.port is None:
            from pyvrrpd.lvs.ipvs import KernelIpvs
            from pyvrrpd.net.errors import NetError

            try:
                self.port = await KernelIpvs.open()
            except NetError as exc:
                self.log.warning(f"lvs_sync_daemon: {exc}; no sync daemon")
                self.counters["errors"] += 1
                self.last_error = str(exc)
                task_status.started()
                await anyio.sleep_forever()
        try:
            task_status.started()
            async for state in self._receive:
                self.state = state
                await self._follow(state)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_SECONDS):
                await self._go(None)
                if self._own_port and self.port is not None:
                    await self.port.close()

    async def _follow(self, state: str) -> None:
        role = s.wanted(state)
        if role is not None or state in ("STOP", "DELETED"):
            await self._go(role)

    async def _go(self, role: str | None) -> None:
        from pyvrrpd.net.errors import NetError

        cfg = self.settings
        assert cfg is not None
        for action, r in s.steps(frozenset(self.running), role):
            code = s.IP_VS_STATE[r]
            try:
                if action == "stop":
                    await self.port.stop_daemon(code)
                    self.running.discard(r)
                else:
                    options = {k: v for k in ("maxlen", "port", "ttl", "group") if (v := getattr(cfg, k)) is not None}
                    try:
                        await self.port.start_daemon(code, cfg.ifname, cfg.syncid, **options)
                    except NetError as exc:
                        if exc.errno != errno.EEXIST:
                            raise
                        # left by an earlier run, maybe with other settings: replace it
                        await self.port.stop_daemon(code)
                        await self.port.start_daemon(code, cfg.ifname, cfg.syncid, **options)
                    self.running.add(r)
                self.counters[f"{action}_{r}"] += 1
                self.log.info(f"IPVS sync daemon: {action} {r}", interface=cfg.ifname, syncid=cfg.syncid,
                              instance=cfg.instance)
            except NetError as exc:
                if action == "stop" and exc.errno == errno.ESRCH:
                    self.running.discard(r)  # already gone
                    continue
                self.counters["errors"] += 1
                self.last_error = str(exc)
                self.log.error(f"IPVS sync daemon: {exc}")

    async def reconfigure(self, config: model.Config) -> str | None:
        settings, notes = s.sync_config(config)
        if settings != self.settings:
            return "lvs_sync_daemon changed: restart pyvrrpd to apply it"
        return None

    def snapshot(self) -> dict:
        cfg = self.settings
        return {
            "configured": None if cfg is None else {
                "interface": cfg.ifname, "instance": cfg.instance, "syncid": cfg.syncid, "maxlen": cfg.maxlen,
                "port": cfg.port, "ttl": cfg.ttl, "group": None if cfg.group is None else str(cfg.group)},
            "instance_state": self.state,
            "running": sorted(self.running),
            "counters": dict(self.counters),
            "last_error": self.last_error,
        }
