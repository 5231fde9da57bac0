"""The whole subsystem with real probes among misbehaving real servers: each bad one is a failed
check with its reason counted, and the healthy real server beside them is checked on time."""

from __future__ import annotations

import hashlib
import ipaddress
import textwrap

import anyio
import pytest

from pyvrrpd.checkers import RealServerKey
from pyvrrpd.checkers.scheduler import Checkers
from pyvrrpd.config.build import build
from pyvrrpd.config.lexer import read_config
from pyvrrpd.config.parser import parse
from tests.checkers.servers import RecordingSink, garbage, hang, http_handler, http_reply, reset, streaming, tcp_server, \
    udp_server
from tests.daemon.fakes import Log

pytestmark = pytest.mark.anyio

BIG = b"x" * (10 * 1024 * 1024)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def rs(port: int, checker: str) -> str:
    return f"""
    real_server 127.0.0.1 {port} {{
        {checker}
    }}"""


HTTP = "HTTP_GET {{ url {{ path /\n{extra} }}\n connect_timeout 1\n retry 0\n delay_before_retry 1 }}"


async def test_bad_real_servers_fail_alone(tmp_path):
    ports: dict[str, int] = {}
    async with tcp_server(http_handler(http_reply(b"fine"))) as ports["good"], \
            tcp_server(streaming(BIG)) as ports["big"], \
            tcp_server(hang) as ports["hang"], \
            tcp_server(garbage) as ports["garbage"], \
            tcp_server(reset) as ports["reset"], \
            tcp_server(http_handler(b"HTTP/1.0 200 OK\r\nContent-Length: +5\r\n\r\nhello")) as ports["length"], \
            udp_server(lambda q: q[:2] + b"\x81\x80\x00\x01\x00\x03\x00\x00\x00\x00\x07ex") as ports["dns"]:
        servers = "".join([
            rs(ports["good"], HTTP.format(extra="")),
            rs(ports["big"], HTTP.format(extra=f"digest {hashlib.md5(BIG).hexdigest()}")),
            rs(ports["hang"], HTTP.format(extra="")),
            rs(ports["garbage"], HTTP.format(extra="")),
            rs(ports["reset"], HTTP.format(extra="")),
            rs(ports["length"], HTTP.format(extra="")),
            rs(ports["dns"], "DNS_CHECK { connect_timeout 1\n retry 0 }"),
            rs(1001, 'MISC_CHECK { misc_path "/bin/sh -c \'sleep 300\'"\n misc_timeout 1 }'),
            rs(1002, "MISC_CHECK { misc_path /usr/bin/yes\n misc_timeout 5 }"),
        ])
        text = f"""
virtual_server 203.0.113.10 80 {{
    delay_loop 1
    warmup 0
    lb_algo rr
    lb_kind NAT
    protocol TCP
{servers}
}}
"""
        path = tmp_path / "keepalived.conf"
        path.write_text(textwrap.dedent(text))
        lines, _ = read_config(str(path), config_id="test")
        config, _ = build(parse(lines)[0], host=None)
        sink = RecordingSink()
        checkers = Checkers(config, sink, log=Log())
        async with anyio.create_task_group() as tg:
            await tg.start(checkers.run)
            await anyio.sleep(6)
            snap = checkers.snapshot()
            tg.cancel_scope.cancel()

    def key(port):
        return RealServerKey("[203.0.113.10]:tcp:80", ipaddress.ip_address("127.0.0.1"), port)

    good = key(ports["good"])
    assert sink.state[good] == (True, None)
    assert all(k != good for k, _, _ in sink.calls[8:])  # never reported down
    expected = {ports["big"]: "too-large", ports["hang"]: "timeout", ports["garbage"]: "bad-response",
                ports["reset"]: ("reset", "bad-response"), ports["dns"]: "malformed-reply",
                ports["length"]: "bad-response",  # Content-Length must be ASCII digits
                1001: "timeout", 1002: "output-flood"}
    by_port = {int(p["name"].rsplit(":", 1)[1]) if p["kind"] != "MISC_CHECK" else
               (1001 if "sh" in p["name"] else 1002): p for p in snap["probes"]}
    for port, reason in expected.items():
        assert sink.state[key(port)] == (False, None), port
        got = by_port[port]["last_result"]["reason"]
        assert got in (reason if isinstance(reason, tuple) else (reason,)), (port, by_port[port]["last_result"])
        assert snap["counters"]["failed:" + got] >= 1
    good_probe = by_port[ports["good"]]
    assert good_probe["attempts"] >= 4 and good_probe["failures"] == {}  # on schedule (1 s) despite the rest
    assert snap["counters"].get("stuck", 0) == 0
    assert "failed:internal-error" not in snap["counters"]  # a bug would show as one, never a traceback
