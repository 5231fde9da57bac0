"""SMTP_CHECK: greeting 220, ``HELO <helo_name>`` answered 250, ``QUIT`` answered (check_smtp.c).

A reply code is the line's first three digits followed by a space or the end of the line, as
keepalived reads it. Unlike keepalived, a multi-line reply (``220-...`` continued by ``220 ...``)
is read to its last line instead of failing; lines are capped at 512 bytes like keepalived's
buffer.
"""

from __future__ import annotations

import anyio
from anyio.abc import SocketStream

from pyvrrpd.checkers.net import OK, ProbeError, Result, Target, connect, talking

HELO = "smtpchecker.keepalived.org"
LINE_MAX = 512


def reply_line(line: bytes) -> tuple[int | None, bool]:
    """One reply line -> (its code, whether the reply goes on): ``250-...`` goes on, ``250 ...`` or ``250``
    ends it; a line without three ASCII digits then a space, a dash or its end has no code."""
    code, after = line[:3], line[3:4]
    if len(code) == 3 and code.isdigit():  # bytes.isdigit: ASCII 0-9 only
        if after == b"-":
            return int(code), True
        if after in (b" ", b""):
            return int(code), False
    return None, False


class _Lines:
    def __init__(self, stream, target: Target) -> None:
        self.stream, self.target, self.buf = stream, target, bytearray()

    async def line(self) -> bytes:
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl]).rstrip(b"\r")
                del self.buf[: nl + 1]
                return line
            if len(self.buf) > LINE_MAX:
                raise ProbeError("bad-response", f"a line of over {LINE_MAX} bytes from {self.target}")
            with anyio.fail_after(self.target.timeout):
                try:
                    self.buf += await self.stream.receive(4096)
                except anyio.EndOfStream:
                    raise ProbeError("closed", f"{self.target} closed the connection") from None

    async def reply(self) -> tuple[int | None, bytes]:
        """The code of a (possibly multi-line) reply."""
        for _ in range(100):
            line = await self.line()
            code, more = reply_line(line)
            if not more:
                return code, line
        raise ProbeError("bad-response", f"a reply of over 100 lines from {self.target}")


def _said(line: bytes) -> str:
    return repr(line[:80].decode("latin-1"))


async def probe_smtp(target: Target, helo: str | None) -> Result:
    sock = await connect(target)
    stream = await SocketStream.from_socket(sock)
    try:
        with talking(target):
            lines = _Lines(stream, target)
            code, line = await lines.reply()
            if code != 220:
                raise ProbeError("bad-greeting", f"bad greeting banner from {target}: {_said(line)}")
            with anyio.fail_after(target.timeout):
                await stream.send(f"HELO {helo or HELO}\r\n".encode("latin-1", "replace"))
            code, line = await lines.reply()
            if code != 250:
                raise ProbeError("bad-helo", f"bad HELO response from {target}: {_said(line)}")
            with anyio.fail_after(target.timeout):
                await stream.send(b"QUIT\r\n")
            await lines.line()
            return OK
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await stream.aclose()
            except OSError:
                pass
