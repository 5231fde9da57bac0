"""``pyvrrpd genhash``: the MD5 digest an HTTP_GET/SSL_GET ``digest`` line needs.

keepalived 2.2.7's ``genhash`` options work as they do there (``-s`` server address, ``-p`` port,
``-u`` url path, ``-S`` SSL, ``-I`` SNI, ``-V`` virtualhost, ``-P`` protocol 1.0/1.0c/1.1, ``-t``
timeout, ``-m`` fwmark, ``-v`` verbose); a whole URL may be given instead::

    pyvrrpd genhash -s 198.51.100.21 -p 80 -u /health
    pyvrrpd genhash http://198.51.100.21/health
    pyvrrpd genhash https://www.example.com:8443/health       (Host: www.example.com:8443)

The request is the checker's own (same bytes, same digest rules: the raw body, up to
Content-Length), so the digest printed is the one the checker compares. Differences from
keepalived's genhash: a failure is a message on stderr and exit status 1 (keepalived prints
``Connection failed`` and exits 0), and a status outside 200-299 is pointed out on stderr.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from urllib.parse import urlsplit

import anyio

from pyvrrpd.checkers.http import BODY_LIMIT, Response, client_context, fetch, host_header, request
from pyvrrpd.checkers.net import ProbeError, Target


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyvrrpd genhash",
                                description="Print the MD5 digest of a web page, for an HTTP_GET/SSL_GET digest line.")
    p.add_argument("url", nargs="?", help="a whole URL (http://HOST[:PORT]/PATH or https://...) instead of -s/-p/-u")
    p.add_argument("-s", "--server", help="server address")
    p.add_argument("-p", "--port", type=int, help="server port (default 80, with --use-ssl 443)")
    p.add_argument("-u", "--url", dest="path", help="url path, e.g. /index.html")
    p.add_argument("-S", "--use-ssl", action="store_true", help="use TLS (SSL_GET)")
    p.add_argument("-I", "--use-sni", action="store_true", help="send the virtualhost as SNI")
    p.add_argument("-V", "--use-virtualhost", dest="vhost", help="virtualhost for the Host header")
    p.add_argument("-P", "--protocol", default="1.0", type=_protocol, help="HTTP protocol: 1.0 (default), 1.0c, 1.1")
    p.add_argument("-t", "--timeout", type=float, default=5.0, help="timeout of each step in seconds (default 5)")
    p.add_argument("-m", "--fwmark", type=int, help="firewall mark on the socket")
    p.add_argument("-v", "--verbose", action="store_true", help="show the response header and sizes too")
    return p


def _protocol(text: str) -> str:
    if text.upper() not in ("1.0", "1.0C", "1.1"):
        raise argparse.ArgumentTypeError("protocol must be 1.0, 1.0c or 1.1")
    return text.upper()


def _resolve(host: str, port: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return ipaddress.ip_address(info[0][4][0])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    vhost, use_ssl, path, server, port = args.vhost, args.use_ssl, args.path, args.server, args.port
    if args.url:
        parts = urlsplit(args.url if "://" in args.url else "http://" + args.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            parser.error(f"not an http:// or https:// URL: {args.url}")
        use_ssl = use_ssl or parts.scheme == "https"
        server = server or parts.hostname
        port = port or parts.port
        path = path or (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:  # a name: the Host header a browser would send
            vhost = vhost or (parts.netloc.rpartition("@")[2])
    if not server or not path:
        parser.error("give a URL, or -s SERVER and -u PATH")
    port = port or (443 if use_ssl else 80)
    try:
        address = _resolve(server, port)
    except (OSError, ValueError) as exc:
        print(f"genhash: cannot resolve {server}: {exc}", file=sys.stderr)
        return 1
    target = Target(address=address, port=port, timeout=args.timeout, fwmark=args.fwmark)
    req = request(path, host_header(target, vhost), args.protocol)
    tls = client_context() if use_ssl else None
    try:
        resp: Response = anyio.run(lambda: fetch(target, req, tls=tls, sni=vhost if args.use_sni else None,
                                                 body_limit=BODY_LIMIT), backend="asyncio")
    except ProbeError as exc:
        print(f"genhash: {exc.detail}", file=sys.stderr)
        return 1
    if resp.status is None:
        print(f"genhash: no HTTP response from {target}", file=sys.stderr)
        return 1
    if args.verbose:
        sys.stdout.write(bytes(resp.head).decode("latin-1").replace("\r\n", "\n"))
        print(f"body: {resp.body_bytes} bytes" + (f" (Content-Length {resp.content_length})"
                                                  if resp.content_length is not None else ""))
    if resp.truncated:
        print(f"genhash: the body is over {BODY_LIMIT} bytes: a checker does not check a digest that large",
              file=sys.stderr)
        return 1
    if not 200 <= resp.status <= 299:
        print(f"genhash: note: HTTP status {resp.status}; a url needs a matching status_code", file=sys.stderr)
    print(resp.digest())
    return 0
