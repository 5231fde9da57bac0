"""Property tests of the checkers' parsers of what real servers send: any bytes, however chunked, give a
result or the named rejection (ProbeError ``bad-response``, dns.Malformed), never another exception."""

from __future__ import annotations

import ipaddress

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvrrpd.checkers import dns, http, smtp, udp
from pyvrrpd.checkers.net import ProbeError, Target
from pyvrrpd.config import model as m

URLS = [m.Url(path="/", digest="0" * 32, regex="o+k", regex_options=("caseless",), regex_min_offset=1,
              regex_max_offset=100, span=None),
        m.Url(path="/", status_codes=((200, 200), (300, 399)), regex="ok", regex_no_match=True, span=None),
        m.Url(span=None)]
HEADS = [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 404 Not Found\r\n", b"HTTP/1.1 301\r\n", b"HTTP/2 200\r\n", b"ICY 200 OK\r\n"]
HEADERS = [b"Content-Length: 5\r\n", b"Content-Length: +5\r\n", b"Content-Length:  5_0\r\n",
           b"Content-Length: \xd9\xa5\r\n", b"Content-Length: " + b"9" * 40 + b"\r\n", b"Content-Length: -1\r\n",
           b"Transfer-Encoding: chunked\r\n", b"Server: x\r\n", b": \r\n", b"X\r\n", b"Content-Length: 0\r\n"]
BODIES = [b"", b"ok", b"2\r\nok\r\n0\r\n\r\n", b"OOOK" * 100, b"\x00\xff"]


@st.composite
def http_responses(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(HEADS)) + b"".join(draw(st.lists(st.sampled_from(HEADERS), max_size=4)))
                     + b"\r\n" + draw(st.sampled_from(BODIES)))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(data)))
        data[i:i + draw(st.integers(0, 3))] = draw(st.binary(max_size=6))
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.one_of(http_responses(), st.binary(max_size=200)), st.integers(1, 64), st.integers(0, 2),
       st.integers(8, 4096))
def test_any_http_response_is_judged_or_rejected_as_bad(data: bytes, step: int, which: int, limit: int) -> None:
    resp = http.Response(keep_body=True, body_limit=limit)
    chunks = [data[i:i + step] for i in range(0, len(data), step)]
    try:
        any(resp.feed(chunk) for chunk in chunks)  # until one says the response is complete
    except ProbeError as exc:
        assert exc.reason == "bad-response" and exc.detail
        return
    result = http.judge(resp, URLS[which], http.compile_regex(URLS[which]))
    assert result.ok or (result.reason and result.detail)
    assert resp.content_length is None or resp.content_length >= 0


@pytest.mark.parametrize("value", [b"+5", b" 5_0", b"\xd9\xa5", b"-1", b"0x10", b"5 5", b"1e3", b"", b"9" * 19])
def test_http_content_length_takes_ascii_digits_only(value: bytes) -> None:
    resp = http.Response()
    with pytest.raises(ProbeError, match="Content-Length is not a number") as err:
        resp.feed(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\n12345")
    assert err.value.reason == "bad-response"


def test_http_content_length_with_spaces_around_is_read() -> None:
    resp = http.Response(keep_body=True)
    assert resp.feed(b"HTTP/1.1 200 OK\r\nContent-Length: \t 3 \r\n\r\nabcdef")
    assert resp.content_length == 3 and bytes(resp.body) == b"abc"


def _dns_reply(ident: int = 0x1234) -> bytes:
    return (ident.to_bytes(2, "big") + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + dns.encode_name("example.org")
            + b"\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([198, 51, 100, 1]))


@st.composite
def dns_replies(draw) -> bytes:
    data = bytearray(_dns_reply())
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@settings(max_examples=300, deadline=None)
@given(st.one_of(dns_replies(), st.binary(max_size=120)))
def test_any_dns_reply_parses_or_is_malformed(data: bytes) -> None:
    try:
        ident, flags, rcode = dns.parse_reply(data)
    except dns.Malformed as exc:
        assert str(exc)
    else:
        assert 0 <= ident < 65536 and 0 <= rcode < 16


def test_dns_reply_seed_parses() -> None:
    assert dns.parse_reply(_dns_reply()) == (0x1234, 0x8180, 0)


class _Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def receive(self, max_bytes: int = 4096) -> bytes:
        if not self.chunks:
            raise anyio.EndOfStream
        return self.chunks.pop(0)


SMTP = [b"220 ready\r\n", b"220-a\r\n", b"250 ok\n", b"2\xd9\xa50 x\r\n", b"220", b"\r\n", b"x" * 600, b"250-\r\n"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SMTP), st.binary(max_size=20)), max_size=8), st.integers(1, 16))
def test_any_smtp_reply_gives_a_code_or_a_named_failure(pieces: list[bytes], step: int) -> None:
    data = b"".join(pieces)
    lines = smtp._Lines(_Chunks([data[i:i + step] for i in range(0, len(data), step)]),
                        Target(address=ipaddress.ip_address("198.51.100.1"), port=25, timeout=1.0))

    async def main() -> None:
        try:
            code, line = await lines.reply()
        except ProbeError as exc:
            assert exc.reason in ("bad-response", "closed")
        else:
            assert code is None or 0 <= code <= 999

    anyio.run(main)


@given(st.binary(max_size=64))
def test_smtp_reply_line_codes(line: bytes) -> None:
    code, more = smtp.reply_line(line)
    assert code is None or (line[:3].isdigit() and code == int(line[:3]))
    assert not more or code is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.booleans(), st.booleans(), st.integers(0, 300), st.integers(0, 300))
def test_udp_and_icmp_replies_never_raise(data: bytes, v6: bool, raw: bool, lo: int, hi: int) -> None:
    pattern = udp.parse_pattern("6bXX00")
    assert isinstance(udp.reply_matches(data, pattern[0], pattern[1], lo, hi), bool)
    assert isinstance(udp.is_reply(data, v6, raw, 0x1234, 0x5678), bool)
