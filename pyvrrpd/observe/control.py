"""The control endpoint: ``GET /status`` (JSON snapshot), ``GET /metrics`` (Prometheus text), ``GET /healthz``.

aiohttp on a unix socket (default ``/run/pyvrrpd/control.sock``) and, if asked, on a TCP address (loopback
unless told otherwise). It is a subsystem of the daemon root like VRRP: ``run`` starts the listeners and
reports ready, ``reconfigure`` has nothing to change, ``snapshot`` counts requests. Every answer renders the
root's one snapshot, so ``/status``, ``/metrics``, ``pyvrrpd status`` and the dump files cannot disagree.

Bad clients cost them, not the VRRP loop: requests have small size limits (aiohttp answers 4xx to an
oversized line, header or body), idle keep-alive connections are closed after a few seconds, anything but
GET/HEAD is 405, and a handler never awaits anything slow (the snapshot is built synchronously from counters
in memory).
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections import Counter
from collections.abc import Callable

import anyio

DEFAULT_SOCKET = "/run/pyvrrpd/control.sock"
CLEANUP_SECONDS = 2.0
MAX_LINE = 4096  # request line and each header line
MAX_BODY = 1024  # GET bodies are ignored; anything larger is refused


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port); ValueError with a sentence otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"'{text}': expected HOST:PORT, for example 127.0.0.1:9650")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise ValueError(f"'{text}': the port must be 1-65535")
    return host, number


class ControlServer:
    name = "control"

    def __init__(self, snapshot: Callable[[], dict] = dict, *, unix_path: str | None = DEFAULT_SOCKET,
                 tcp: tuple[str, int] | None = None, healthy: Callable[[], str | None] | None = None,
                 log=None) -> None:
        self._snapshot = snapshot
        self._healthy = healthy or (lambda: None)
        self.listening: list[str] = []
        self.unix_path = unix_path
        self.tcp = tcp
        self.log = log
        self.requests: Counter[str] = Counter()
        self.errors = 0

    def attach(self, snapshot: Callable[[], dict], healthy: Callable[[], str | None]) -> None:
        """What to serve: the daemon root's snapshot and health (the root is made after its subsystems)."""
        self._snapshot, self._healthy = snapshot, healthy

    def snapshot(self) -> dict:
        return {"listening": list(self.listening), "socket": self.unix_path, "tcp": f"{self.tcp[0]}:{self.tcp[1]}" if self.tcp else None,
                "counters": {"requests": dict(self.requests), "errors": self.errors}}

    async def reconfigure(self, config) -> str | None:
        return None  # the listeners come from the command line, not the config

    # -- handlers -------------------------------------------------------------------------------

    def _app(self):
        from aiohttp import web

        async def status(request: web.Request) -> web.Response:
            self.requests["status"] += 1
            return web.Response(text=json.dumps(self._snapshot(), default=str), content_type="application/json")

        async def metrics(request: web.Request) -> web.Response:
            from pyvrrpd.observe.metrics import render

            self.requests["metrics"] += 1
            return web.Response(text=render(self._snapshot()),
                                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

        async def healthz(request: web.Request) -> web.Response:
            self.requests["healthz"] += 1
            problem = self._healthy()
            return web.Response(text=f"{problem}\n" if problem else "ok\n", status=503 if problem else 200)

        @web.middleware
        async def count_errors(request, handler):
            try:
                return await handler(request)
            except web.HTTPException as exc:
                self.errors += 1
                self.requests["rejected"] += 1
                raise exc

        app = web.Application(client_max_size=MAX_BODY, middlewares=[count_errors], handler_args={
            "max_line_size": MAX_LINE, "max_field_size": MAX_LINE})
        app.router.add_get("/status", status)
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        return app

    # -- life cycle -----------------------------------------------------------------------------

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        from aiohttp import web

        runner = web.AppRunner(self._app(), handle_signals=False, access_log=None, keepalive_timeout=5.0,
                               shutdown_timeout=1.0)
        await runner.setup()
        try:
            if self.unix_path:
                try:
                    _prepare_socket_path(self.unix_path)
                    await web.UnixSite(runner, self.unix_path).start()
                    os.chmod(self.unix_path, 0o660)
                    self.listening.append(self.unix_path)
                except OSError as exc:
                    self._cannot(self.unix_path, exc)
            if self.tcp:
                where = f"{self.tcp[0]}:{self.tcp[1]}"
                try:
                    await web.TCPSite(runner, self.tcp[0], self.tcp[1], reuse_address=True).start()
                    self.listening.append(where)
                except OSError as exc:
                    self._cannot(where, exc)
            if self.log is not None and self.listening:
                self.log.info(f"control endpoint listening on {', '.join(self.listening)}")
            task_status.started()
            await anyio.sleep_forever()
        finally:
            with anyio.move_on_after(CLEANUP_SECONDS, shield=True):
                await runner.cleanup()
            if self.unix_path in self.listening:
                try:
                    os.unlink(self.unix_path)
                except OSError:
                    pass

    def _cannot(self, where: str, exc: OSError) -> None:
        """Not being able to listen costs the status endpoint, never VRRP: log it, count it, run on."""
        self.errors += 1
        if self.log is not None:
            self.log.error(f"control endpoint: cannot listen on {where}: {exc.strerror or exc}; "
                           "running without it (pyvrrpd status will not reach this daemon)")


def _prepare_socket_path(path: str) -> None:
    """Make the socket's directory; remove a stale socket left by a crashed run (never a regular file)."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: left by a run that died
            return
    raise OSError(f"{path}: another daemon is listening there (give each daemon its own --control-socket)")
