"""Property tests of the control endpoint's request handling: any bytes, however chunked, give an answer
the pure parser predicts (a route's answer or a 4xx) or no answer at all, never an exception; slow and
non-reading clients are cut off and counted. In-memory streams, no sockets."""

from __future__ import annotations

import re

import anyio
import anyio.abc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from pyvrrpd.observe import control
from pyvrrpd.observe.control import MAX_CONNECTIONS, ControlServer, Request, parse_request
from pyvrrpd.observe.metrics import render

SNAP = {"process": {"pid": 1, "version": "0"}}


class MemoryStream(anyio.abc.ByteStream):
    """A client: ``chunks`` arrive (``gap`` seconds apart, forever if ``forever``), then end of stream;
    what the server sends is kept (or, with ``reads=False``, never taken: send blocks)."""

    def __init__(self, chunks: list[bytes], *, gap: float = 0.0, forever: bool = False, reads: bool = True) -> None:
        self.chunks, self.gap, self.forever, self.reads = list(chunks), gap, forever, reads
        self.sent = bytearray()
        self.closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.gap:
            await anyio.sleep(self.gap)
        if self.forever:
            return b"X"
        if not self.chunks:
            raise anyio.EndOfStream
        return self.chunks.pop(0)

    async def send(self, item: bytes) -> None:
        if not self.reads:
            await anyio.sleep_forever()
        self.sent += item

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True


def codes(sent: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", sent)]


def expected(data: bytes) -> list[int]:
    """The status codes the server must send for ``data``, from the pure parser."""
    oracle = ControlServer(lambda: SNAP, unix_path=None)
    out: list[int] = []
    while True:
        req, used = parse_request(data)
        if req is None:
            return out
        if isinstance(req, int):
            return out + [req]
        code = oracle._answer(req.method, req.target)[0]
        out.append(code)
        if not req.keep or code == 405:
            return out
        data = data[used:]


def serve(stream: MemoryStream, server: ControlServer | None = None) -> ControlServer:
    server = server or ControlServer(lambda: SNAP, unix_path=None)

    async def main() -> None:
        with anyio.fail_after(10):
            await server._serve(stream)

    anyio.run(main)
    return server


GOOD = [b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n", b"HEAD /healthz HTTP/1.0\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET /nothing?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        b"POST /status HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"]
PIECES = [b"\r\n", b"\r\n\r\n", b" ", b":", b"Content-Length: ", b"Transfer-Encoding: chunked\r\n", b"HTTP/1.1",
          b"Connection: keep-alive\r\n", b"+5", b"\xd9\xa5", b"0" * 12, b"X-A: b\r\n" * 70, b"a" * 4100, b"\x00"]


@st.composite
def requests(draw) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(GOOD), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "byte"]))
        if op == "insert":
            data[i:i] = draw(st.one_of(st.sampled_from(PIECES), st.binary(max_size=8)))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 20))]
        elif i < len(data):
            data[i] = draw(st.integers(0, 255))
    return bytes(data)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:]) if b > a]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), requests()))
def test_parse_request_gives_a_request_a_4xx_or_asks_for_more(data: bytes) -> None:
    req, used = parse_request(data)
    assert req is None or isinstance(req, Request) or req in (400, 405, 413, 431)
    assert 0 <= used <= len(data)
    if isinstance(req, Request):
        assert req.method.isalpha() and req.target.startswith("/") and 0 <= req.length <= control.MAX_BODY


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.lists(st.integers(0, 10_000), max_size=6))
def test_the_server_answers_what_the_parser_predicts_however_chunked(data: bytes, cuts: list[int]) -> None:
    stream = MemoryStream(chunked(data, cuts))
    server = serve(stream)
    assert codes(bytes(stream.sent)) == expected(data)
    assert stream.closed and server._connections == 0
    assert sum(server.bad_requests.values()) == sum(1 for c in expected(data) if 400 <= c < 500)


@pytest.mark.parametrize("value", [b"+5", b" 5_0", b"\xd9\xa5", b"-1", b"0x10", b"5 5", b"1e3"])
def test_content_length_takes_ascii_digits_only(value: bytes) -> None:
    assert parse_request(b"GET /status HTTP/1.1\r\nContent-Length: " + value + b"\r\n\r\n12345")[0] == 400


def test_a_huge_content_length_is_413_not_a_long_int() -> None:
    assert parse_request(b"GET / HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")[0] == 431  # line too long
    assert parse_request(b"GET / HTTP/1.1\r\nContent-Length: " + b"9" * 4000 + b"\r\n\r\n")[0] == 413
    assert parse_request(b"GET / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n")[0] == 413


def test_slowloris_is_cut_off_by_the_request_deadline(monkeypatch) -> None:
    monkeypatch.setattr(control, "REQUEST_SECONDS", 0.3)
    stream = MemoryStream([], gap=0.02, forever=True)  # one byte every 20 ms, forever, never a CRLF... in time
    server = serve(stream)
    assert stream.closed and stream.sent == b"" and server.timeouts["request"] == 1


def test_slowloris_sending_header_lines_is_cut_off_too(monkeypatch) -> None:
    monkeypatch.setattr(control, "REQUEST_SECONDS", 0.3)
    lines = [b"GET /status HTTP/1.1\r\n"] + [b"X-A: b\r\n"] * 60  # under every size limit, 20 ms apart
    stream = MemoryStream(lines, gap=0.02)
    server = serve(stream)
    assert stream.sent == b"" and server.timeouts["request"] == 1


def test_an_idle_connection_is_closed_but_not_counted(monkeypatch) -> None:
    monkeypatch.setattr(control, "REQUEST_SECONDS", 0.2)

    class Idle(MemoryStream):
        async def receive(self, max_bytes: int = 65536) -> bytes:
            await anyio.sleep_forever()

    stream = Idle([])
    server = serve(stream)
    assert stream.closed and not server.timeouts


def test_a_client_that_never_reads_is_dropped(monkeypatch) -> None:
    monkeypatch.setattr(control, "SEND_SECONDS", 0.2)
    stream = MemoryStream([GOOD[0] * 3], reads=False)
    server = serve(stream)
    assert stream.closed and server.timeouts["answer"] == 1 and server._connections == 0


def test_connections_over_the_limit_are_refused_and_counted() -> None:
    server = ControlServer(lambda: SNAP, unix_path=None)
    server._connections = MAX_CONNECTIONS
    stream = MemoryStream([GOOD[0]])
    serve(stream, server)
    assert stream.closed and stream.sent == b"" and server.refused_connections == 1


def test_the_counters_are_in_the_snapshot_and_in_metrics(monkeypatch) -> None:
    monkeypatch.setattr(control, "REQUEST_SECONDS", 0.2)
    server = ControlServer(lambda: SNAP, unix_path=None)
    serve(MemoryStream([b"\x00garbage\r\n"]), server)
    serve(MemoryStream([b"GET /status HTTP/1.1\r\n"], gap=0.0), server)  # closed mid-request: not a timeout
    serve(MemoryStream([b"GET /sta"] + [b"t"] * 30, gap=0.02), server)
    counters = server.snapshot()["counters"]
    assert counters["bad_requests"] == {"400": 1} and counters["timeouts"] == {"request": 1}
    assert counters["connections"] == 3 and counters["refused_connections"] == 0
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(render({"control": server.snapshot()})) for s in fam.samples}
    assert samples[("pyvrrpd_control_bad_requests_total", (("code", "400"),))] == 1
    assert samples[("pyvrrpd_control_timeouts_total", (("kind", "request"),))] == 1
    assert samples[("pyvrrpd_control_refused_connections_total", ())] == 0
    assert samples[("pyvrrpd_control_open_connections", ())] == 0
