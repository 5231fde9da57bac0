"""Each probe against servers on loopback that the test starts: good answers and bad ones.

Bad input (a reset, a hang, garbage, a 10 MB body, a DNS reply that does not parse, a script that
never exits or floods its output) is always a failed check with a reason word, never an exception.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import struct
import subprocess
import time

import anyio
import pytest

from pyvrrpd.checkers import http as h
from pyvrrpd.checkers.dns import Malformed, encode_name, parse_reply, probe_dns, query
from pyvrrpd.checkers.misc import FLOOD, run_misc
from pyvrrpd.checkers.net import ProbeError, Result, Target, probe_tcp
from pyvrrpd.checkers.smtp import probe_smtp
from pyvrrpd.checkers.udp import echo_request, is_reply, parse_pattern, probe_ping, probe_udp, reply_matches
from pyvrrpd.config import model as m
from tests.checkers.servers import (
    free_port,
    garbage,
    hang,
    http_handler,
    http_reply,
    read_request,
    reset,
    streaming,
    tcp_server,
    udp_server,
)

pytestmark = pytest.mark.anyio
LO = ipaddress.ip_address("127.0.0.1")
LO6 = ipaddress.ip_address("::1")


@pytest.fixture
def anyio_backend():
    return "asyncio"


def target(port, timeout=1.0, address=LO, **kw) -> Target:
    return Target(address=address, port=port, timeout=timeout, **kw)


async def outcome(coro) -> Result:
    """A probe's Result, a ProbeError turned into one (what the scheduler does)."""
    try:
        return await coro
    except ProbeError as exc:
        return exc.result()


def url(**kw) -> m.Url:
    return m.Url(span=None, **kw)


async def http(port, u: m.Url, *, vhost=None, protocol="1.0", timeout=1.0, address=LO) -> Result:
    check = m.HttpCheck(span=None, urls=(u,), http_protocol=protocol)
    probe = h.HttpProbe.make(target(port, timeout, address), check, vhost, None)
    return await outcome(probe(0))


# ------------------------------------------------------------------ TCP_CHECK


async def test_tcp_connects():
    async with tcp_server(hang) as port:
        assert await outcome(probe_tcp(target(port))) == Result(True)


async def test_tcp_refused():
    r = await outcome(probe_tcp(target(free_port())))
    assert (r.ok, r.reason) == (False, "refused")


async def test_tcp_hanging_connect_times_out():
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):  # fill the accept queue: later SYNs are dropped
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                fillers.append(s)
            await anyio.sleep(0.05)
            t0 = time.monotonic()
            r = await outcome(probe_tcp(target(port, timeout=0.3)))
            assert (r.ok, r.reason) == (False, "timeout")
            assert time.monotonic() - t0 < 2
        finally:
            for s in fillers:
                s.close()


async def test_tcp_bindto_and_bind_port():
    peers = []

    async def record(stream):
        peers.append(stream.extra(anyio.abc.SocketAttribute.remote_address))

    async with tcp_server(record) as port:
        bport = free_port()
        r = await outcome(probe_tcp(target(port, bindto=ipaddress.ip_address("127.0.0.2"), bind_port=bport)))
        assert r.ok
        await anyio.sleep(0.05)
    assert peers == [("127.0.0.2", bport)]


async def test_tcp_bad_bind_is_a_reason_not_an_exception():
    r = await outcome(probe_tcp(target(80, bindto=ipaddress.ip_address("::1"))))
    assert (r.ok, r.reason) == (False, "bind-error")
    r = await outcome(probe_tcp(target(None)))
    assert (r.ok, r.reason) == (False, "no-port")


async def test_tcp_ipv6():
    async with tcp_server(hang, host="::1") as port:
        assert (await outcome(probe_tcp(target(port, address=LO6)))).ok


# ------------------------------------------------------------------ HTTP_GET


@pytest.mark.parametrize("protocol,vhost,address,expected", [
    ("1.0", None, LO, b"GET /p?q=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    ("1.0C", None, LO, b"GET /p?q=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
                       b"Host: 127.0.0.1:{port}\r\n\r\n"),
    ("1.1", "www.example.com", LO, b"GET /p?q=1 HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
                                   b"Host: www.example.com\r\n\r\n"),
    ("1.0", None, LO6, b"GET /p?q=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [::1]:{port}\r\n\r\n"),
])
async def test_http_request_is_keepalived_byte_for_byte(protocol, vhost, address, expected):
    seen: list[bytes] = []
    async with tcp_server(http_handler(http_reply(b"ok"), seen), host=str(address)) as port:
        r = await http(port, url(path="/p?q=1"), vhost=vhost, protocol=protocol, address=address)
    assert r.ok
    assert seen == [expected.replace(b"{port}", str(port).encode())]


@pytest.mark.parametrize("status,codes,ok", [
    ("200 OK", ((200, 299),), True),
    ("204 No Content", ((200, 299),), True),
    ("302 Found", ((200, 299),), False),
    ("500 Internal Server Error", ((200, 299),), False),
    ("404 Not Found", ((200, 200), (400, 499)), True),
    ("503 Unavailable", ((200, 200), (503, 503)), True),
])
async def test_http_status_codes(status, codes, ok):
    async with tcp_server(http_handler(http_reply(b"x", status))) as port:
        r = await http(port, url(path="/", status_codes=codes))
    assert r.ok is ok
    if not ok:
        assert r.reason == "status" and status[:3] in r.detail


async def test_http_digest_is_md5_of_the_raw_body():
    body = b"<html>hello</html>\n"
    good = hashlib.md5(body).hexdigest()
    async with tcp_server(http_handler(http_reply(body))) as port:
        assert (await http(port, url(path="/", digest=good))).ok
        r = await http(port, url(path="/", digest="0" * 32))
    assert (r.ok, r.reason) == (False, "digest")


async def test_http_digest_stops_at_content_length_and_keeps_chunk_framing():
    chunked = b"5\r\nhello\r\n0\r\n\r\n"
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    async with tcp_server(http_handler(reply)) as port:
        assert (await http(port, url(path="/", digest=hashlib.md5(chunked).hexdigest()))).ok
    extra = http_reply(b"abc") + b"trailing junk"  # beyond Content-Length: not hashed
    async with tcp_server(http_handler(extra)) as port:
        assert (await http(port, url(path="/", digest=hashlib.md5(b"abc").hexdigest()))).ok


@pytest.mark.parametrize("regex,no_match,ok", [
    ("status: (up|green)", False, True),
    ("status: red", False, False),
    ("status: red", True, True),
    ("status: up", True, False),
])
async def test_http_regex(regex, no_match, ok):
    async with tcp_server(http_handler(http_reply(b"<p>status: up</p>"))) as port:
        r = await http(port, url(path="/", regex=regex, regex_no_match=no_match))
    assert r.ok is ok
    if not ok:
        assert r.reason == "regex"


async def test_http_regex_offsets():
    body = b"0123456789MARK"
    async with tcp_server(http_handler(http_reply(body))) as port:
        assert (await http(port, url(path="/", regex="MARK", regex_min_offset=5, regex_max_offset=10))).ok
        assert not (await http(port, url(path="/", regex="MARK", regex_max_offset=9))).ok


async def test_http_reset_is_a_failure():
    r = None
    async with tcp_server(reset) as port:
        r = await http(port, url(path="/"))
    assert r.ok is False and r.reason in ("reset", "bad-response")


async def test_http_hang_times_out():
    async with tcp_server(hang) as port:
        t0 = time.monotonic()
        r = await http(port, url(path="/"), timeout=0.3)
    assert (r.ok, r.reason) == (False, "timeout")
    assert time.monotonic() - t0 < 2


async def test_http_garbage_is_a_bad_response():
    async with tcp_server(garbage) as port:
        r = await http(port, url(path="/"))
    assert (r.ok, r.reason) == (False, "bad-response")


async def test_http_header_without_end_is_a_bad_response():
    async def endless_header(stream):
        await read_request(stream)
        await stream.send(b"HTTP/1.0 200 OK\r\n" + b"X: y\r\n" * 10000)

    async with tcp_server(endless_header) as port:
        r = await http(port, url(path="/"))
    assert (r.ok, r.reason) == (False, "bad-response")


async def test_http_closed_before_the_header_ends():
    async def partial(stream):
        await read_request(stream)
        await stream.send(b"HTTP/1.0 200 OK\r\nServer: x")

    async with tcp_server(partial) as port:
        r = await http(port, url(path="/"))
    assert (r.ok, r.reason) == (False, "bad-response")


async def test_http_10mb_body_is_bounded():
    body = b"x" * (10 * 1024 * 1024)
    async with tcp_server(streaming(body)) as port:
        plain = await http(port, url(path="/"))  # status alone decides: read stops at the limit
        with_digest = await http(port, url(path="/", digest=hashlib.md5(body).hexdigest()))
    assert plain.ok
    assert (with_digest.ok, with_digest.reason) == (False, "too-large")


def test_response_parser_keeps_at_most_the_limit():
    resp = h.Response(keep_body=True, body_limit=100)
    assert resp.feed(b"HTTP/1.0 200 OK\r\n\r\n") is False
    assert resp.feed(b"a" * 1000) is True
    assert resp.truncated and len(resp.body) == 100 and resp.status == 200


@pytest.mark.parametrize("line", [b"HTTP/1.1 2000 OK", b"HTTP/1.1 20 OK", b"ICY 200 OK", b"HTTP/1.1", b"\x00\xff"])
def test_status_line_garbage(line):
    with pytest.raises(ProbeError) as e:
        h.Response().feed(line + b"\r\n\r\n")
    assert e.value.reason == "bad-response"


def test_status_line_without_reason_phrase():
    r = h.Response()
    r.feed(b"HTTP/1.1 204\r\n\r\n")
    assert r.status == 204


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=rs",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


async def test_ssl_get_no_verification_and_sni(cert):
    import ssl

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*map(str, cert))
    names: list = []
    server_ctx.sni_callback = lambda sslobj, name, ctx: names.append(name)
    seen: list[bytes] = []
    body = b"secure"
    from anyio.streams.tls import TLSStream

    async def tls_handler(stream):
        tls = await TLSStream.wrap(stream, server_side=True, ssl_context=server_ctx, standard_compatible=False)
        await http_handler(http_reply(body), seen)(tls)
        await tls.aclose()

    async with tcp_server(tls_handler) as port:
        for sni in (False, True):
            check = m.SslCheck(span=None, urls=(url(path="/s", digest=hashlib.md5(body).hexdigest()),),
                               enable_sni=sni)
            probe = h.HttpProbe.make(target(port), check, "rs.example", h.client_context())
            assert await outcome(probe(0)) == Result(True)
    assert names == [None, "rs.example"]
    assert seen[0].endswith(b"Host: rs.example\r\n\r\n")


async def test_ssl_get_against_plain_http_is_a_tls_error():
    async def plain(stream):
        await stream.send(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    async with tcp_server(plain) as port:
        check = m.SslCheck(span=None, urls=(url(path="/"),))
        probe = h.HttpProbe.make(target(port), check, None, h.client_context())
        r = await outcome(probe(0))
    assert (r.ok, r.reason) == (False, "tls-error"), r


# ------------------------------------------------------------------ MISC_CHECK


def script(*argv) -> m.Script:
    return m.Script(argv=tuple(argv), span=None)


@pytest.mark.parametrize("code,dynamic,expected", [
    (0, False, Result(True)),
    (0, True, Result(True)),
    (7, True, Result(True, weight=5)),
    (2, True, Result(True, weight=0)),
    (1, True, None),
    (7, False, None),
])
async def test_misc_exit_status(code, dynamic, expected):
    r = await run_misc(script("/bin/sh", "-c", f"exit {code}"), 5, dynamic=dynamic)
    if expected is None:
        assert (r.ok, r.reason) == (False, "exit-status") and f"status {code}" in r.detail
    else:
        assert r == expected


async def test_misc_failure_keeps_some_output():
    r = await run_misc(script("/bin/sh", "-c", "echo database unreachable; exit 1"), 5)
    assert "database unreachable" in r.detail


async def test_misc_that_never_exits_is_killed_with_its_children(tmp_path):
    pidfile = tmp_path / "child.pid"
    t0 = time.monotonic()
    r = await run_misc(script("/bin/sh", "-c", f"sleep 300 & echo $! > {pidfile}; sleep 300"), 0.3)
    assert (r.ok, r.reason) == (False, "timeout")
    assert time.monotonic() - t0 < 5
    child = int(pidfile.read_text())
    await anyio.sleep(0.1)
    assert not _alive(child)


async def test_misc_ignoring_sigterm_gets_sigkill():
    t0 = time.monotonic()
    r = await run_misc(script("/bin/sh", "-c", "trap '' TERM; sleep 300"), 0.2)
    assert (r.ok, r.reason) == (False, "timeout")
    assert time.monotonic() - t0 < 5


async def test_misc_flooding_stdout_is_cut_off():
    t0 = time.monotonic()
    r = await run_misc(script("/usr/bin/yes", "flood"), 10)
    assert (r.ok, r.reason) == (False, "output-flood")
    assert time.monotonic() - t0 < 5 and str(FLOOD) in r.detail


async def test_misc_missing_program_or_user():
    r = await run_misc(script("/nonexistent/check.sh"), 1)
    assert (r.ok, r.reason) == (False, "exec-error")
    r = await run_misc(script("/bin/true"), 1, account=("no-such-user-here", None))
    assert (r.ok, r.reason) == (False, "exec-error")


async def test_misc_signal():
    r = await run_misc(script("/bin/sh", "-c", "kill -USR1 $$"), 5)
    assert (r.ok, r.reason) == (False, "signal") and "SIGUSR1" in r.detail


async def test_misc_runs_as_user():
    r = await run_misc(script("/bin/sh", "-c", '[ "$(id -u)" = 65534 ]'), 5, account=("nobody", None))
    assert r.ok


async def test_misc_leaves_no_zombies():
    for _ in range(3):
        await run_misc(script("/bin/true"), 5)
    children = subprocess.run(["ps", "--ppid", str(os.getpid()), "-o", "stat="], capture_output=True, text=True)
    assert "Z" not in children.stdout


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------ SMTP_CHECK


def smtp_server(greeting: bytes, helo_reply: bytes = b"250 ok\r\n", log: list | None = None):
    async def handle(stream):
        await stream.send(greeting)
        data = b""
        while b"\n" not in data:
            data += await stream.receive()
        if log is not None:
            log.append(data)
        await stream.send(helo_reply)
        data = b""
        while b"\n" not in data:
            data += await stream.receive()
        await stream.send(b"221 bye\r\n")

    return handle


@pytest.mark.parametrize("greeting,helo_reply,reason", [
    (b"220 mx ESMTP\r\n", b"250 hi\r\n", None),
    (b"220-mx ESMTP\r\n220-more\r\n220 done\r\n", b"250 hi\r\n", None),
    (b"554 go away\r\n", b"250 hi\r\n", "bad-greeting"),
    (b"\x00\x01garbage\r\n", b"250 hi\r\n", "bad-greeting"),
    (b"220 mx\r\n", b"500 what\r\n", "bad-helo"),
])
async def test_smtp(greeting, helo_reply, reason):
    log: list = []
    async with tcp_server(smtp_server(greeting, helo_reply, log)) as port:
        r = await outcome(probe_smtp(target(port), "lb.example"))
    assert r.ok is (reason is None), r
    if reason:
        assert r.reason == reason
    else:
        assert log == [b"HELO lb.example\r\n"]


async def test_smtp_closed_and_hanging():
    async def close_at_once(stream):
        pass

    async with tcp_server(close_at_once) as port:
        r = await outcome(probe_smtp(target(port), None))
    assert r.ok is False and r.reason in ("closed", "reset")
    async with tcp_server(hang) as port:
        r = await outcome(probe_smtp(target(port, timeout=0.2), None))
    assert (r.ok, r.reason) == (False, "timeout")


# ------------------------------------------------------------------ DNS_CHECK


def dns_answer(q: bytes, rcode: int = 0) -> bytes:
    ident = q[:2]
    qd = q[12:]
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 6, 1, 60, 4) + b"\x01\x02\x03\x04"
    return ident + struct.pack("!HHHHH", 0x8180 | rcode, 1, 1, 0, 0) + qd + answer


def test_dns_query_bytes():
    assert encode_name(".") == b"\x00"
    assert encode_name("example.com") == encode_name("example.com.") == b"\x07example\x03com\x00"
    q = query("example.com", "SOA", 0x1234)
    assert q == b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x06\x00\x01"


@pytest.mark.parametrize("reply", [
    b"", b"\x12", b"\x12\x34" + b"\x81\x80" + b"\x00\x01" * 2 + b"\x00\x00" * 2,  # counts but no records
    b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x06\x00\x01",  # pointer to itself
    b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x40abc",  # reserved label type
])
def test_dns_malformed(reply):
    with pytest.raises(Malformed):
        parse_reply(reply)


async def test_dns_check():
    async with udp_server(dns_answer) as port:
        assert await outcome(probe_dns(target(port), "example.com", "SOA")) == Result(True)
    async with udp_server(lambda q: dns_answer(q, rcode=3)) as port:
        r = await outcome(probe_dns(target(port), "example.com", "A"))
    assert (r.ok, r.reason) == (False, "dns-rcode") and "NXDOMAIN" in r.detail


async def test_dns_reply_that_does_not_parse():
    async with udp_server(lambda q: q[:2] + b"\x81\x80\x00\x01\x00\x05\x00\x00\x00\x00\x07exam") as port:
        r = await outcome(probe_dns(target(port), "example.com", "A"))
    assert (r.ok, r.reason) == (False, "malformed-reply")


async def test_dns_foreign_replies_are_ignored_until_the_timeout():
    async with udp_server(lambda q: b"\x00\x00" + dns_answer(q)[2:] if q[:2] != b"\x00\x00" else None) as port:
        r = await outcome(probe_dns(target(port, timeout=0.3), "example.com", "A"))
    assert (r.ok, r.reason) == (False, "timeout")


async def test_dns_refused():
    r = await outcome(probe_dns(target(free_port(kind=socket.SOCK_DGRAM)), ".", "SOA"))
    assert (r.ok, r.reason) == (False, "refused")


# ------------------------------------------------------------------ UDP_CHECK, PING_CHECK


def test_require_reply_pattern():
    data, mask = parse_pattern("41X2ff")
    assert data == b"\x41\x02\xff" and mask == b"\x00\xf0\x00"
    assert reply_matches(b"\x41\x72\xff", data, mask, 0, 255)
    assert not reply_matches(b"\x41\x73\xff", data, mask, 0, 255)
    assert reply_matches(b"\x41", data, mask, 0, 255)  # only the shorter length is compared
    assert not reply_matches(b"\x41\x72\xff\x00", data, mask, 0, 3)
    with pytest.raises(ValueError):
        parse_pattern("abc")


async def test_udp_check():
    async with udp_server(lambda d: b"PONG" + d) as port:
        assert (await outcome(probe_udp(target(port)))).ok
        pattern = parse_pattern("504f4e47")
        assert (await outcome(probe_udp(target(port), b"x", pattern))).ok
        r = await outcome(probe_udp(target(port), b"x", parse_pattern("50494e47")))
        assert (r.ok, r.reason) == (False, "reply-mismatch")
    async with udp_server(lambda d: None) as port:
        assert (await outcome(probe_udp(target(port, timeout=0.2)))).ok  # silence is fine
        r = await outcome(probe_udp(target(port, timeout=0.2), require_reply=True))
        assert (r.ok, r.reason) == (False, "no-reply")
    r = await outcome(probe_udp(target(free_port(kind=socket.SOCK_DGRAM), timeout=0.5)))
    assert (r.ok, r.reason) == (False, "refused")


def test_echo_packets():
    req = echo_request(False, 0x1234, 7)
    assert req[0] == 8 and struct.unpack("!H", req[4:6])[0] == 0x1234
    reply = bytes([0]) + req[1:]
    assert is_reply(reply, v6=False, raw=False, ident=0, seq=7)
    assert not is_reply(reply, v6=False, raw=False, ident=0, seq=8)
    ip = bytes([0x45]) + bytes(19)
    assert is_reply(ip + reply, v6=False, raw=True, ident=0x1234, seq=7)
    assert not is_reply(ip + reply, v6=False, raw=True, ident=0x4321, seq=7)
    assert not is_reply(b"\x00", v6=False, raw=False, ident=0, seq=7)


@pytest.mark.parametrize("address", [LO, LO6])
async def test_ping(address):
    assert (await outcome(probe_ping(target(None, address=address)))).ok


def test_virtualhost_order():
    check = m.HttpCheck(span=None, urls=(url(path="/a", virtualhost="url.example"), url(path="/b")), enable_sni=True)
    probe = h.HttpProbe.make(target(80), check, "inherited.example", None)
    assert probe.hosts == ("url.example", "inherited.example") and probe.sni == probe.hosts
    plain = h.HttpProbe.make(target(8080), m.HttpCheck(span=None, urls=(url(path="/"),)), None, None)
    assert plain.hosts == ("127.0.0.1:8080",) and plain.sni == (None,)
