"""E-mail alerts (``smtp_alert``) with keepalived's subject and body, sent without blocking anything.

keepalived mails on every state change of an instance or sync group that has ``smtp_alert`` (set
per instance/group, else ``smtp_alert_vrrp``, else ``smtp_alert`` from global_defs), once per state:

    Subject: [ROUTER_ID] VRRP Instance VI_1 - Entering MASTER state
    => VRRP Instance is now owning VRRP VIPs <=

The dialogue is plain SMTP (no TLS, no AUTH, like keepalived): HELO (``smtp_helo_name``, default the
host name), MAIL FROM:<notification_email_from>, one RCPT TO per ``notification_email`` address,
DATA with the headers Date, From, Subject, X-Mailer: Keepalived and To, the body, ``.``, QUIT.
``smtp_connect_timeout`` (default 30 s) bounds the connection and each reply.

Mails go out one at a time from a queue (at most 64 waiting; more are dropped and counted). A dead,
slow or refusing server costs a log line and a counter per mail — never a wait for anyone else.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from anyio.abc import ByteStream

QUEUE_LIMIT = 64
SUBJECT_LIMIT = 255  # keepalived's subject buffer is 256 bytes with the NUL
BODY_LIMIT = 511

# keepalived's texts for each state: (subject, instance body, group body)
_TEXTS = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <=",
               "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <=",
               "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <=",
              "=> All VRRP group instances are now in FAULT state <="),
    "STOP": ("Stopping", "=> VRRP Instance stopping <=", "=> All VRRP group instances are now stopping <="),
}


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    server: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    helo: str
    router_id: str
    timeout: float


def smtp_settings(global_defs) -> SmtpSettings | None:
    """Adapter: global_defs' mail settings, or None when no mail can be sent (keepalived sends only
    with an smtp_server and at least one notification_email)."""
    gd = global_defs
    if gd.smtp_server is None or not gd.notification_email:
        return None
    host = socket.gethostname()
    return SmtpSettings(
        server=gd.smtp_server, port=gd.smtp_port,
        sender=gd.notification_email_from or f"keepalived@{host}",
        recipients=tuple(gd.notification_email), helo=gd.smtp_helo_name or host,
        router_id=gd.router_id or host, timeout=gd.smtp_connect_timeout_us / 1_000_000)


def vrrp_alert(router_id: str, kind: str, name: str, state: str) -> tuple[str, str] | None:
    """keepalived's (subject, body) for an instance (``INSTANCE``) or group (``GROUP``) entering
    ``state``; None for states keepalived does not mail about."""
    texts = _TEXTS.get(state)
    if texts is None:
        return None
    what = "VRRP Instance" if kind == "INSTANCE" else "VRRP Group"
    return f"[{router_id}] {what} {name} - {texts[0]}", texts[1] if kind == "INSTANCE" else texts[2]


def message(settings: SmtpSettings, subject: str, body: str, now: float | None = None) -> bytes:
    """The DATA part of a mail, as keepalived writes it (CRLF, dot-stuffed, ending in CRLF.CRLF)."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S %z", time.localtime(now))
    head = (f"Date: {date}\r\nFrom: {settings.sender}\r\nSubject: {subject[:SUBJECT_LIMIT]}\r\n"
            f"X-Mailer: Keepalived\r\nTo: {', '.join(settings.recipients)}\r\n\r\n")
    lines = body[:BODY_LIMIT].replace("\r\n", "\n").split("\n")
    text = "\r\n".join("." + line if line.startswith(".") else line for line in lines)
    return (head + text + "\r\n\r\n.\r\n").encode("utf-8", "replace")


class SmtpError(Exception):
    pass


class Mailer:
    """Sends alerts from a queue; ``run()`` is its task (a Subsystem-style life cycle)."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings, *, log=None,
                 connect: Callable[[], Awaitable[ByteStream]] | None = None) -> None:
        self.settings = settings
        self.log = log
        self._connect = connect or (lambda: anyio.connect_tcp(settings.server, settings.port))
        self.counters: Counter[str] = Counter()
        self._send, self._receive = anyio.create_memory_object_stream[tuple[str, str]](QUEUE_LIMIT)
        self._last_state: dict[tuple[str, str], str] = {}

    def alert(self, subject: str, body: str) -> None:
        """Queue one mail (never blocks)."""
        try:
            self._send.send_nowait((subject, body))
        except anyio.WouldBlock:
            self.counters["dropped"] += 1
            self._warn(f"SMTP alert dropped, {QUEUE_LIMIT} waiting: {subject}")
        else:
            self.counters["queued"] += 1

    def close(self) -> None:
        """No more mails: ``run()`` returns once the queued ones are sent."""
        self._send.close()

    def state_alert(self, kind: str, name: str, state: str) -> None:
        """An instance's or group's new state: mailed once per state, as keepalived does."""
        if self._last_state.get((kind, name)) == state:
            return
        alert = vrrp_alert(self.settings.router_id, kind, name, state)
        if alert is not None:
            self._last_state[(kind, name)] = state
            self.alert(*alert)

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for subject, body in self._receive:
            try:
                await self.send(subject, body)
            except (OSError, SmtpError, anyio.BrokenResourceError, anyio.EndOfStream, TimeoutError) as exc:
                self.counters["failed"] += 1
                self._warn(f"SMTP alert not sent to {self.settings.server}:{self.settings.port}: "
                           f"{exc or type(exc).__name__}", subject=subject)
            else:
                self.counters["sent"] += 1
                if self.log is not None:
                    self.log.info("SMTP alert successfully sent.", subject=subject)

    async def send(self, subject: str, body: str) -> None:
        """One SMTP dialogue; raises OSError, TimeoutError or SmtpError."""
        s = self.settings
        with anyio.fail_after(s.timeout):
            stream = await self._connect()
        async with stream:
            reader = _Replies(stream, s.timeout)
            await reader.expect(220, "connect")
            await _command(stream, reader, f"HELO {s.helo}", 250)
            await _command(stream, reader, f"MAIL FROM:<{s.sender}>", 250)
            for rcpt in s.recipients:
                await _command(stream, reader, f"RCPT TO:<{rcpt}>", 250)
            await _command(stream, reader, "DATA", 354)
            await stream.send(message(s, subject, body))
            await reader.expect(250, "end of data")
            await stream.send(b"QUIT\r\n")

    def snapshot(self) -> dict:
        return {"counters": dict(self.counters), "server": f"{self.settings.server}:{self.settings.port}"}

    def _warn(self, text: str, **fields) -> None:
        if self.log is not None:
            self.log.warning(text, **fields)


async def _command(stream: ByteStream, reader: _Replies, line: str, code: int) -> None:
    await stream.send(line.encode() + b"\r\n")
    await reader.expect(code, line.split(":")[0].split()[0])


class _Replies:
    """Reads SMTP replies (multi-line ``250-...`` continued until ``250 ...``), bounded in time and size."""

    LIMIT = 8192

    def __init__(self, stream: ByteStream, timeout: float) -> None:
        self.stream = stream
        self.timeout = timeout
        self.buffer = b""

    async def expect(self, code: int, what: str) -> None:
        got = await self.reply()
        if got != code:
            raise SmtpError(f"{what}: server answered {got}, expected {code}")

    async def reply(self) -> int:
        with anyio.fail_after(self.timeout):
            while True:
                while b"\r\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\r\n", 1)
                    if len(line) >= 3 and line[:3].isdigit() and (len(line) == 3 or line[3:4] != b"-"):
                        return int(line[:3])
                    if len(line) < 3 or not line[:3].isdigit():
                        raise SmtpError(f"garbled reply {line[:40]!r}")
                if len(self.buffer) > self.LIMIT:
                    raise SmtpError("reply too long")
                chunk = await self.stream.receive()
                self.buffer += chunk
