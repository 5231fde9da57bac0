"""HTTP_GET and SSL_GET: keepalived's exact request, its status/digest/regex rules, a bounded read.

The request is keepalived 2.2.7's byte for byte (check_http.c)::

    GET <path> HTTP/1.<0|1>\\r\\n
    User-Agent: KeepAliveClient\\r\\n
    [Connection: close\\r\\n]            (http_protocol 1.0C and 1.1)
    Host: <virtualhost | ip:port | [ipv6]:port>\\r\\n
    \\r\\n

The digest is the MD5 of the body as it came off the wire (no chunked decoding, no
decompression), limited to Content-Length when the server sends one — what keepalived and its
``genhash`` compute. That is why this module speaks HTTP over a plain anyio stream rather than
through aiohttp, which adds headers and decodes bodies.

Bounds keepalived does not have: the header must end within 16 KiB, the body is read up to
``BODY_LIMIT`` (1 MiB) — beyond it a url with a digest or regex fails (``too-large``), one
without is judged on its status alone — and a whole check may take at most
``4 x connect_timeout``, however slowly the server trickles.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass

import anyio
from anyio.abc import SocketStream
from anyio.streams.tls import TLSStream

from pyvrrpd.checkers.net import OK, ProbeError, Result, Target, connect, talking
from pyvrrpd.config import model as m

HEADER_LIMIT = 16 * 1024
BODY_LIMIT = 1024 * 1024
READ_SIZE = 65536
STEPS = 4  # a whole check: at most this many connect_timeouts

_REGEX_FLAGS = {"caseless": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL, "extended": re.VERBOSE}


def request(path: str, host: str, protocol: str = "1.0") -> bytes:
    """keepalived's GET request for ``path``; ``host`` as the Host header should read."""
    minor = 1 if protocol == "1.1" else 0
    close = "Connection: close\r\n" if protocol.upper() in ("1.0C", "1.1") else ""
    return f"GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n".encode(
        "latin-1", "replace"
    )


def host_header(target: Target, vhost: str | None) -> str:
    """The virtualhost as written, else ``ip:port`` (IPv6 bracketed), as keepalived."""
    if vhost:
        return vhost
    if target.address.version == 6:
        return f"[{target.address}]:{target.port}"
    return f"{target.address}:{target.port}"


class Response:
    """An HTTP response read incrementally: status line, headers, body digest and (bounded) body.

    ``feed`` returns True when nothing more needs reading: Content-Length reached or the body
    limit hit (``truncated``).
    """

    def __init__(self, keep_body: bool = False, body_limit: int = BODY_LIMIT) -> None:
        self.head = bytearray()
        self.headers_done = False
        self.status: int | None = None
        self.content_length: int | None = None
        self.md5 = hashlib.md5()
        self.body_bytes = 0
        self.body = bytearray() if keep_body else None
        self.body_limit = body_limit
        self.truncated = False

    def feed(self, data: bytes) -> bool:
        if not self.headers_done:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > HEADER_LIMIT:
                    raise ProbeError("bad-response", f"no end of the HTTP header in the first {HEADER_LIMIT} bytes")
                return False
            data = bytes(self.head[end + 4:])
            del self.head[end + 4:]
            self.headers_done = True
            self._parse_head()
        return self._body(data)

    def _parse_head(self) -> None:
        first, _, rest = bytes(self.head).partition(b"\r\n")
        if not first.startswith(b"HTTP/"):
            raise ProbeError("bad-response", f"not an HTTP status line: {_shown(first)}")
        _, sp, after = first.partition(b" ")
        code = after[:3]
        if not sp or len(code) != 3 or not code.isdigit() or after[3:4] not in (b" ", b"\r", b""):
            raise ProbeError("bad-response", f"no status code in the status line: {_shown(first)}")
        self.status = int(code)
        for line in rest.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if colon and name.strip().lower() == b"content-length":
                self.content_length = content_length(value)

    def _body(self, data: bytes) -> bool:
        limit = self.body_limit
        if self.content_length is not None:
            data = data[: max(self.content_length - self.body_bytes, 0)]
        room = limit - self.body_bytes
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        if data:
            self.md5.update(data)
            if self.body is not None:
                self.body += data
            self.body_bytes += len(data)
        if self.truncated:
            return True
        if self.content_length is not None:
            if self.body_bytes >= self.content_length:
                return True
            if self.content_length > limit and self.body_bytes >= limit:
                self.truncated = True
                return True
        return False

    def digest(self) -> str:
        return self.md5.hexdigest()


def _shown(data: bytes, limit: int = 60) -> str:
    text = data[:limit].decode("latin-1").encode("unicode_escape").decode("ascii")
    return repr(text + ("..." if len(data) > limit else ""))


def content_length(value: bytes) -> int:
    """A Content-Length header's value: ASCII digits only, between optional spaces or tabs (``int()`` would
    also take ``+5``, ``5_0`` and non-ASCII digits); ProbeError ``bad-response`` otherwise."""
    digits = value.strip(b" \t")
    if not (digits.isdigit() and len(digits) <= 18):  # bytes.isdigit: ASCII 0-9 only
        raise ProbeError("bad-response", f"Content-Length is not a number: {_shown(value.strip())}")
    return int(digits)


def status_accepted(status: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= status <= hi for lo, hi in ranges)


def compile_regex(url: m.Url) -> re.Pattern[bytes] | None:
    if url.regex is None:
        return None
    flags = 0
    for opt in url.regex_options:
        flags |= _REGEX_FLAGS.get(opt, 0)
    try:
        return re.compile(url.regex.encode("utf-8", "surrogateescape"), flags)
    except re.error:
        return None


def regex_matches(pattern: re.Pattern[bytes], body: bytes, url: m.Url) -> bool:
    start = url.regex_min_offset or 0
    found = pattern.search(body, start)
    if found is None:
        return False
    return url.regex_max_offset is None or found.start() <= url.regex_max_offset


def judge(resp: Response, url: m.Url, pattern: re.Pattern[bytes] | None) -> Result:
    """keepalived's order: a response at all, then status, then digest, then regex."""
    if resp.status is None:
        return Result(False, "bad-response", "no HTTP response (the connection closed before the header ended)")
    if not status_accepted(resp.status, url.status_codes):
        return Result(False, "status", f"HTTP status code {resp.status} for {url.path}")
    if (url.digest is not None or url.regex is not None) and resp.truncated:
        return Result(False, "too-large", f"the body of {url.path} is over {resp.body_limit} bytes; "
                                          "its digest or regex cannot be checked")
    if url.digest is not None and resp.digest() != url.digest:
        return Result(False, "digest", f"MD5 digest {resp.digest()} of {url.path} is not {url.digest}")
    if url.regex is not None:
        if pattern is None:
            return Result(False, "regex", f"regex {url.regex!r} does not compile in Python")
        matched = regex_matches(pattern, bytes(resp.body or b""), url)
        if matched == url.regex_no_match:
            return Result(False, "regex", f"Regex match failed for {url.path}")
    return OK


async def fetch(target: Target, req: bytes, *, tls: ssl.SSLContext | None = None, sni: str | None = None,
                keep_body: bool = False, body_limit: int = BODY_LIMIT) -> Response:
    """Send one request, read the response (each step within connect_timeout)."""
    step = target.timeout
    sock = await connect(target)
    stream = None
    try:
        with talking(target):
            stream = await SocketStream.from_socket(sock)
            if tls is not None:
                with anyio.fail_after(step):
                    stream = await TLSStream.wrap(stream, server_side=False, hostname=sni, ssl_context=tls,
                                                  standard_compatible=False)
            resp = Response(keep_body, body_limit)
            with anyio.fail_after(step):
                await stream.send(req)
            while True:
                try:
                    with anyio.fail_after(step):
                        data = await stream.receive(READ_SIZE)
                except anyio.EndOfStream:
                    return resp
                if resp.feed(data):
                    return resp
    finally:
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await _close(stream)
        else:
            sock.close()


async def _close(stream) -> None:
    try:
        if isinstance(stream, TLSStream):
            await stream.transport_stream.aclose()
        else:
            await stream.aclose()
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


def client_context(cfg: m.SslConfig | None = None) -> ssl.SSLContext:
    """keepalived's SSL_GET context: no certificate verification; the SSL block's certificate and
    key as a client certificate (its ca is loaded but, as in keepalived, not enforced)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cfg is not None:
        if cfg.certificate:
            ctx.load_cert_chain(cfg.certificate, cfg.key or None, cfg.password or None)
        if cfg.ca:
            ctx.load_verify_locations(cfg.ca)
    return ctx


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """One HTTP_GET / SSL_GET checker, ready to probe one of its urls."""

    target: Target
    urls: tuple[m.Url, ...]
    hosts: tuple[str, ...]  # Host header per url
    protocol: str
    tls: ssl.SSLContext | None
    sni: tuple[str | None, ...]
    patterns: tuple[re.Pattern[bytes] | None, ...]

    @classmethod
    def make(cls, target: Target, check: m.HttpCheck, vhost: str | None, tls: ssl.SSLContext | None) -> HttpProbe:
        """``vhost``: the checker's, else the real server's, else the virtual server's virtualhost;
        a url's own virtualhost comes before it."""
        hosts = tuple(host_header(target, u.virtualhost or vhost) for u in check.urls)
        sni = tuple((u.virtualhost or vhost) if check.enable_sni else None for u in check.urls)
        return cls(target, check.urls, hosts, check.http_protocol, tls, sni,
                   tuple(compile_regex(u) for u in check.urls))

    @property
    def limit(self) -> float:
        return STEPS * self.target.timeout

    async def __call__(self, index: int) -> Result:
        url = self.urls[index]
        req = request(url.path, self.hosts[index], self.protocol)
        resp = await fetch(self.target, req, tls=self.tls, sni=self.sni[index], keep_body=url.regex is not None)
        return judge(resp, url, self.patterns[index])
