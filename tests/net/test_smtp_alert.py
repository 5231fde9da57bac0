"""An SMTP alert over real TCP to a sink on loopback, inside a private network namespace
(`unshare -n`: only `lo`, gone with the process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.net

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = textwrap.dedent("""
    import json, subprocess
    import anyio
    from pyvrrpd.daemon.smtp import Mailer, SmtpSettings
    from tests.daemon.test_smtp import Sink

    async def main():
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
        sink = Sink(None)
        settings = SmtpSettings(server="127.0.0.1", port=2525, sender="ka@d1", recipients=("ops@x",),
                                helo="d1", router_id="d1", timeout=2)
        mailer = Mailer(settings)
        dead = Mailer(SmtpSettings(server="127.0.0.1", port=2626, sender="ka@d1", recipients=("ops@x",),
                                   helo="d1", router_id="d1", timeout=2))
        async with anyio.create_task_group() as tg:
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=2525)
            tg.start_soon(listener.serve, sink.handle)
            await tg.start(mailer.run)
            await tg.start(dead.run)
            mailer.state_alert("INSTANCE", "VI_1", "MASTER")
            dead.state_alert("INSTANCE", "VI_1", "MASTER")
            with anyio.fail_after(10):
                while not (mailer.counters["sent"] and dead.counters["failed"]):
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
        print(json.dumps({"lines": sink.lines, "data": sink.data.decode(), "sent": mailer.counters["sent"],
                          "dead": dict(dead.counters)}))

    anyio.run(main, backend="asyncio")
""")


def test_alert_mail_reaches_a_sink_on_loopback():
    result = subprocess.run(["unshare", "-n", sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["lines"] == ["HELO d1", "MAIL FROM:<ka@d1>", "RCPT TO:<ops@x>", "DATA", "QUIT"]
    assert "Subject: [d1] VRRP Instance VI_1 - Entering MASTER state\r\n" in out["data"]
    assert out["sent"] == 1 and out["dead"] == {"queued": 1, "failed": 1}  # nobody on 2626: refused
