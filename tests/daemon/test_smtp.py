"""daemon.smtp: keepalived's alert texts and SMTP dialogue, against a sink on a unix socket
(no network traffic here; the TCP path runs in a namespace in tests/net/test_smtp_alert.py)."""

from __future__ import annotations

import time

import anyio
import pytest

from pyvrrpd.daemon.notify import FifoSettings, Notifier, NotifyScripts
from pyvrrpd.daemon.smtp import Mailer, SmtpSettings, message, vrrp_alert
from tests.daemon.fakes import Log

pytestmark = pytest.mark.anyio

SETTINGS = SmtpSettings(server="mail.example", port=25, sender="ka@d1.example", recipients=("a@x", "b@x"),
                        helo="d1", router_id="LVS_1", timeout=0.5)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_alert_texts():
    assert vrrp_alert("LVS_1", "INSTANCE", "VI_1", "MASTER") == (
        "[LVS_1] VRRP Instance VI_1 - Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <=")
    assert vrrp_alert("LVS_1", "GROUP", "G", "FAULT") == (
        "[LVS_1] VRRP Group G - Entering FAULT state", "=> All VRRP group instances are now in FAULT state <=")
    assert vrrp_alert("LVS_1", "INSTANCE", "VI_1", "STOP")[0] == "[LVS_1] VRRP Instance VI_1 - Stopping"
    assert vrrp_alert("LVS_1", "INSTANCE", "VI_1", "DELETED") is None


def test_message_layout():
    now = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))
    data = message(SETTINGS, "subj", "line1\n.dot", now).decode()
    head, body = data.split("\r\n\r\n", 1)
    assert head.split("\r\n")[1:] == ["From: ka@d1.example", "Subject: subj", "X-Mailer: Keepalived", "To: a@x, b@x"]
    assert head.startswith("Date: Fri, 02 Jan 2026 03:04:05 ")
    assert body == "line1\r\n..dot\r\n\r\n.\r\n"  # dot-stuffed, ends with CRLF.CRLF


class Sink:
    """A scripted SMTP server on a unix socket, recording what the client sends."""

    def __init__(self, path, replies=None, *, silent=False):
        self.path = path
        self.replies = replies or {}
        self.silent = silent
        self.lines: list[str] = []
        self.data = b""

    async def serve(self, *, task_status=anyio.TASK_STATUS_IGNORED):
        async with await anyio.create_unix_listener(self.path) as listener:
            task_status.started()
            await listener.serve(self.handle)

    async def handle(self, stream):
        async with stream:
            if self.silent:
                await anyio.sleep(30)
            await stream.send(b"220-mail.example ESMTP\r\n220 ready\r\n")
            buf, in_data = b"", False
            while True:
                try:
                    buf += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                while True:
                    if in_data:
                        end = buf.find(b"\r\n.\r\n")
                        if end < 0:
                            break
                        self.data, buf, in_data = buf[:end + 5], buf[end + 5:], False
                        await stream.send(b"250 queued\r\n")
                        continue
                    if b"\r\n" not in buf:
                        break
                    line, buf = buf.split(b"\r\n", 1)
                    text = line.decode()
                    self.lines.append(text)
                    verb = text.split(":")[0].split()[0]
                    if verb == "QUIT":
                        return  # like keepalived, the client does not wait for the 221
                    code = self.replies.get(verb, {"DATA": b"354 go"}.get(verb, b"250 ok"))
                    await stream.send(code + b"\r\n")
                    if verb == "DATA" and code.startswith(b"354"):
                        in_data = True


async def test_an_alert_is_delivered_with_keepalived_commands(tmp_path):
    sink = Sink(str(tmp_path / "smtp.sock"))
    mailer = Mailer(SETTINGS, log=Log(), connect=lambda: anyio.connect_unix(sink.path))
    async with anyio.create_task_group() as tg:
        await tg.start(sink.serve)
        await tg.start(mailer.run)
        mailer.state_alert("INSTANCE", "VI_1", "MASTER")
        mailer.state_alert("INSTANCE", "VI_1", "MASTER")  # same state again: no second mail
        with anyio.fail_after(5):
            while not mailer.counters["sent"]:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert sink.lines == ["HELO d1", "MAIL FROM:<ka@d1.example>", "RCPT TO:<a@x>", "RCPT TO:<b@x>", "DATA", "QUIT"]
    assert b"Subject: [LVS_1] VRRP Instance VI_1 - Entering MASTER state\r\n" in sink.data
    assert sink.data.endswith(b"=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n.\r\n")
    assert mailer.counters == {"queued": 1, "sent": 1}


@pytest.mark.parametrize("case", ["dead", "silent", "refused", "garbage"])
async def test_a_bad_server_costs_a_log_line_and_a_counter(tmp_path, case):
    path = str(tmp_path / "smtp.sock")
    sink = {"silent": Sink(path, silent=True), "refused": Sink(path, {"RCPT": b"550 no such user"}),
            "garbage": Sink(path, {"HELO": b"\x00\xffnonsense"}), "dead": None}[case]
    log = Log()
    mailer = Mailer(SETTINGS, log=log, connect=lambda: anyio.connect_unix(path))
    async with anyio.create_task_group() as tg:
        if sink is not None:
            await tg.start(sink.serve)
        await tg.start(mailer.run)
        t0 = time.monotonic()
        mailer.alert("s1", "b")
        mailer.alert("s2", "b")
        with anyio.fail_after(5):
            while mailer.counters["failed"] < 2:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert time.monotonic() - t0 < 2.5  # bounded by the timeout, one mail after the other
    warnings = log.events("warning")
    assert len(warnings) == 2 and all(w.startswith("SMTP alert not sent to mail.example:25: ") for w in warnings)


async def test_the_queue_is_capped():
    mailer = Mailer(SETTINGS, log=Log())
    for i in range(70):
        mailer.alert(f"s{i}", "b")
    assert mailer.counters["queued"] == 64 and mailer.counters["dropped"] == 6


async def test_notifier_mails_when_the_instance_has_smtp_alert(tmp_path):
    sink = Sink(str(tmp_path / "smtp.sock"))
    mailer = Mailer(SETTINGS, log=Log(), connect=lambda: anyio.connect_unix(sink.path))
    notifier = Notifier(FifoSettings(), mailer=mailer)
    async with anyio.create_task_group() as tg:
        await tg.start(sink.serve)
        await tg.start(notifier.run)
        notifier.transition("INSTANCE", "VI_1", "BACKUP", 100, NotifyScripts())  # smtp_alert off
        notifier.transition("GROUP", "G", "FAULT", 0, NotifyScripts(smtp_alert=True))
        with anyio.fail_after(5):
            while not mailer.counters["sent"]:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert mailer.counters["queued"] == 1
    assert b"Subject: [LVS_1] VRRP Group G - Entering FAULT state\r\n" in sink.data
