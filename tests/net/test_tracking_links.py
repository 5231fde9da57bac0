"""The trackers' production link source (LinkMonitor + Netlink) in a private network namespace.

The test runs a small program under `unshare -n`: the namespace holds only what the program makes
(a dummy interface) and disappears with it, whatever happens.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.net

PROGRAM = textwrap.dedent("""
    import json, subprocess, sys, tempfile, os
    import anyio
    from pyvrrpd.config.load import load
    from pyvrrpd.daemon.tracking import NetlinkLinks, Trackers

    CONF = '''
    vrrp_instance VI_1 {
        interface lo
        virtual_router_id 1
        virtual_ipaddress {
            198.51.100.1
        }
        track_interface {
            v0
            missing7 weight -10
        }
    }
    '''

    def ip(*args):
        subprocess.run(["ip", *args], check=True, timeout=10)

    class Sink:
        calls = []
        def set_fault(self, instance, source, reason):
            self.calls.append([source, "fault", reason])
        def set_priority_delta(self, instance, source, delta):
            self.calls.append([source, "delta", delta])

    def running(name):
        out = subprocess.run(["ip", "-o", "link", "show", name], capture_output=True, text=True, timeout=10).stdout
        return "LOWER_UP" in out

    async def main():
        ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ip("link", "set", "v0", "up")
        ip("link", "set", "v1", "up")
        with anyio.fail_after(5):
            while not running("v0"):
                await anyio.sleep(0.02)
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(CONF)
        config = load(f.name, host_checks=False).config
        os.unlink(f.name)
        sink = Sink()
        trackers = Trackers(config, sink, links=NetlinkLinks())
        marks = []
        async with anyio.create_task_group() as tg:
            await tg.start(trackers.run)
            steps = ([["set", "v1", "down"]],  # v0 loses its carrier: up but not running
                     [["set", "v1", "up"]],
                     [["del", "v0"]],
                     [["add", "missing7", "type", "veth", "peer", "name", "m8"], ["set", "m8", "up"],
                      ["set", "missing7", "up"]])
            for step in steps:
                marks.append(len(sink.calls))
                for command in step:
                    ip("link", *command)
                with anyio.fail_after(5):
                    while len(sink.calls) == marks[-1]:
                        await anyio.sleep(0.02)
            await anyio.sleep(0.2)
            tg.cancel_scope.cancel()
        print(json.dumps({"calls": sink.calls, "marks": marks}))

    anyio.run(main, backend="asyncio")
""")


def test_link_events_from_the_kernel():
    result = subprocess.run(["unshare", "-n", sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    calls = [tuple(c) for c in out["calls"]]
    v0 = [reason for source, _, reason in calls if source == "link:v0"]
    # initial read, carrier lost, back; deleting a veth first drops its carrier, then the link goes
    assert v0[:3] == [None, "tracked interface v0 is down", None]
    assert v0[3:] in (["tracked interface v0 is gone"],
                      ["tracked interface v0 is down", "tracked interface v0 is gone"])
    assert [delta for source, _, delta in calls if source == "link:missing7"] == [-10, 0]
