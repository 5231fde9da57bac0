"""Netlink's interface-index cache: a re-created interface (new index, same name) is found again."""

from __future__ import annotations

import sys
import textwrap

import pytest

pytestmark = pytest.mark.net

SCRIPT = textwrap.dedent("""
    import subprocess, anyio
    from pyvrrpd.net.netlink import Netlink
    from pyvrrpd.net.specs import parse_address

    def ip(*args):
        subprocess.run(["ip", *args], check=True, timeout=10)

    def make():
        ip("link", "add", "lan1", "type", "veth", "peer", "name", "lan1p")
        ip("link", "set", "lan1", "up")

    async def main():
        vip = parse_address(["203.0.113.100/32", "dev", "lan1"])
        make()
        async with Netlink() as nl:
            print("add", await nl.add_address(vip))
            ip("link", "del", "lan1")
            print("del gone", await nl.del_address(vip))  # stale index, interface gone: nothing to do
            make()
            print("add again", await nl.add_address(vip))  # stale index: looked up again
            print("del", await nl.del_address(vip))

    anyio.run(main, backend="asyncio")
""")


def test_stale_index_is_looked_up_again(lab):
    out = lab.run("d1", [sys.executable, "-c", SCRIPT]).stdout.splitlines()
    assert out == ["add True", "del gone False", "add again True", "del True"]
