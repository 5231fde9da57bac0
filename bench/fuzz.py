"""Coverage-guided fuzzing (atheris, libFuzzer) of what pyvrrpd reads from outside.

Targets, each fed arbitrary bytes; only the named rejection or diagnostic types may come out:

* ``packet``   VRRP adverts (``decode`` for IPv4 and IPv6, ``decode_ipv4_packet``): an Advertisement or ``DecodeError``
* ``config``   the whole config pipeline (lexer, parser, build; host checks off): diagnostics, never an exception
* ``control``  the status API's request parsing (``parse_request``, pipelined requests) and its answers (``_answer``
               on a small snapshot): a request or a 4xx, never an exception
* ``checkers`` the checkers' parsers of what real servers send, chosen by the first byte: HTTP responses (status
               line, headers, Content-Length, body, digest, regex; fed in chunks), DNS replies, SMTP reply lines,
               UDP_CHECK replies and ICMP echo replies: a result or ``ProbeError``/``Malformed``

Usage::

    .venv/bin/python bench/fuzz.py --target control --runs 1000000 [--seed 1] [--artifacts DIR] [--corpus DIR]
    .venv/bin/python bench/fuzz.py --target control --replay crash-1234abcd   # re-run one saved input

It exits 0 when every input passed (also when stopped early by ``--max-seconds`` or SIGINT to the fuzzing
child), non-zero on an unexpected exception: libFuzzer prints the traceback and
saves the input as ``<artifacts>/crash-<sha1>`` (``--artifacts``, default the current directory), which
``--replay`` runs again in plain Python. The last line printed is ``fuzz: target=... inputs=N seconds=S``.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("packet", "config", "control", "checkers")


# ---------------------------------------------------------------------------------------------- targets

def _packet():
    import ipaddress

    from pyvrrpd.core.packet import DecodeError, decode, decode_ipv4_packet

    a = ipaddress.ip_address
    ends = {4: (a("198.51.100.11"), a("224.0.0.18")), 6: (a("fe80::1"), a("ff02::12"))}

    def one(data: bytes) -> None:
        flags, data = (data[0] if data else 0), data[1:]
        family = 6 if flags & 1 else 4
        src, dst = ends[family]
        try:
            adv = decode(data, family=family, src=src, dst=dst, ttl=64 if flags & 2 else 255, unicast=bool(flags & 4))
            assert adv.count == len(adv.addresses)
        except DecodeError:
            pass
        try:
            decode_ipv4_packet(data, unicast=bool(flags & 4))
        except DecodeError:
            pass

    seeds = [bytes.fromhex(h) for h in ("0021339601 0001 1e32 c6336464 0000000000000000", "0031339601 000a 035b c6336464",
                                         "0131349601 000a 2501 20010db8000100000000000000000100")]
    ip = bytes.fromhex("45c00028 0000 0000 ff70 0000 c633640b e0000012")
    seeds.append(b"\x00" + ip + seeds[0][1:])
    return one, seeds


def _config():
    from pyvrrpd.config import build, lexer, parser  # noqa: F401 - imported here, so atheris instruments them
    from pyvrrpd.config.load import load

    where = tempfile.mkdtemp(prefix="pyvrrpd-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    path = os.path.join(where, "keepalived.conf")

    def one(data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)
        loaded = load(path, config_id="fuzz", host_checks=False)
        for d in loaded.diagnostics:
            assert d.message and (d.span is None or (d.span.line >= 1 and d.span.col >= 1))

    files = [ROOT / "conf" / "keepalived.conf.example", *sorted((ROOT / "conf" / "examples").glob("*.conf"))]
    return one, [p.read_bytes() for p in files if p.is_file()]


def _control():
    from pyvrrpd.observe.control import ControlServer, Request, parse_request

    server = ControlServer(lambda: {"process": {"pid": 1, "version": "0", "health": None}}, unix_path=None)

    def one(data: bytes) -> None:
        for _ in range(16):  # pipelined requests, as a keep-alive connection reads them
            req, used = parse_request(data)
            if req is None or isinstance(req, int):
                assert req is None or 400 <= req < 500
                return
            assert isinstance(req, Request) and 0 <= req.length and used > 0
            code, _, _ = server._answer(req.method, req.target)
            if not req.keep or code == 405:
                return
            data = data[used:]

    return one, [b"GET /status HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
                 b"HEAD /healthz HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", b"POST /x HTTP/1.1\r\n\r\n"]


def _checkers():
    from pyvrrpd.checkers import dns, http, smtp, udp
    from pyvrrpd.checkers.net import ProbeError
    from pyvrrpd.config import model as m

    urls = [m.Url(path="/", digest="0" * 32, regex="o+k", regex_options=("caseless",), regex_min_offset=1,
                  regex_max_offset=100, span=None),
            m.Url(path="/", status_codes=((200, 200), (300, 399)), regex="ok", regex_no_match=True, span=None),
            m.Url(span=None)]
    patterns = [http.compile_regex(u) for u in urls]
    pattern = udp.parse_pattern("6bXX")

    def one(data: bytes) -> None:
        if len(data) < 2:
            return
        kind, knob, data = data[0] % 4, data[1], data[2:]
        if kind == 0:  # HTTP response in chunks of knob+1 bytes, judged against one of the urls
            resp = http.Response(keep_body=True, body_limit=64 + knob * 16)
            try:
                step = knob + 1
                for i in range(0, len(data), step):
                    if resp.feed(data[i:i + step]):
                        break
            except ProbeError as exc:
                assert exc.reason == "bad-response" and exc.detail
                return
            i = knob % len(urls)
            result = http.judge(resp, urls[i], patterns[i])
            assert result.ok or result.detail
        elif kind == 1:
            try:
                dns.parse_reply(data)
            except dns.Malformed:
                pass
        elif kind == 2:  # SMTP: the lines a reply is read from, as _Lines cuts them
            for line in data.split(b"\n")[:100]:
                if len(line) > smtp.LINE_MAX:
                    return
                code, _ = smtp.reply_line(line.rstrip(b"\r"))
                assert code is None or 0 <= code <= 999
        else:
            udp.reply_matches(data, pattern[0], pattern[1], knob % 4, 255)
            udp.is_reply(data, bool(knob & 1), bool(knob & 2), 0x1234, 0x5678)

    seeds = [b"\x00\x07HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nOOK!!",
             b"\x00\x00HTTP/1.0 301 Moved\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
             b"\x01\x00" + dns.query("example.org", "A", 0x1234)[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
             + dns.encode_name("example.org") + b"\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04"
             + bytes([198, 51, 100, 1]),
             b"\x02\x00220-mail ESMTP\r\n220 ready\r\n250 hello\r\n221 bye\r\n",
             b"\x03\x01kE\x00\x00", b"\x03\x02" + bytes(20) + b"\x00\x00\x00\x00\x12\x34\x56\x78"]
    return one, seeds


def _selftest():
    """The fuzzer's own check (tests/test_fuzz_command.py): an input starting with FUZZ is a crash."""

    def one(data: bytes) -> None:
        if data.startswith(b"FUZZ"):
            raise RuntimeError("planted crash")

    return one, [b"FUZZ!"]


def target(name: str):
    """(one-input function, seed inputs) of a target."""
    return {"packet": _packet, "config": _config, "control": _control, "checkers": _checkers,
            "selftest": _selftest}[name]()


# ---------------------------------------------------------------------------------------------- command

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", choices=(*TARGETS, "selftest"), required=True,
                   help="what to fuzz (selftest: a planted crash, to check the command itself)")
    p.add_argument("--runs", type=int, default=100_000, help="inputs to try (default 100000)")
    p.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed (default 1)")
    p.add_argument("--max-seconds", type=int, default=0, help="stop after this long, however many inputs (0: no limit)")
    p.add_argument("--max-len", type=int, default=4096, help="longest input (default 4096 bytes)")
    p.add_argument("--artifacts", default=".", help="where a crashing input is saved (default: here)")
    p.add_argument("--corpus", help="a directory to keep the corpus in (default: a temporary one)")
    p.add_argument("--replay", metavar="FILE", help="run one saved input in plain Python and exit")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.replay:
        one, _ = target(args.target)
        one(Path(args.replay).read_bytes())  # an unexpected exception: its traceback, exit 1
        print(f"fuzz: target={args.target} replay {args.replay}: no unexpected exception")
        return 0

    try:
        import atheris  # noqa: F401 - here only to say so early
    except ImportError:
        print("fuzz: atheris is not installed (pip install -e '.[test]')", file=sys.stderr)
        return 2
    if not args.child:  # libFuzzer ends the process itself: run it in a child, report on it
        started = time.monotonic()
        child = subprocess.run([sys.executable, __file__, "--child", *(argv if argv is not None else sys.argv[1:])],
                               stderr=subprocess.PIPE, text=True, errors="replace")
        sys.stderr.write(child.stderr)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        interrupted = child.returncode == 130  # SIGINT (atheris: "KeyboardInterrupt: stopping."): not a crash
        units = re.search(r"stat::number_of_executed_units:\s*(\d+)", child.stderr)
        progress = re.findall(r"^#(\d+)\s", child.stderr, re.M)  # libFuzzer's last progress line, if no stats
        inputs = units.group(1) if units else f">={progress[-1]}" if progress else "?"
        print(f"fuzz: target={args.target} inputs={inputs} "
              f"seconds={time.monotonic() - started:.1f} cpu={usage.ru_utime + usage.ru_stime:.1f} seed={args.seed} "
              f"exit={child.returncode}" + (" (interrupted)" if interrupted else
                                            " (crash: the input is saved above, replay it with --replay)"
                                            if child.returncode else ""), flush=True)
        return 1 if child.returncode and not interrupted else 0
    return _fuzz(args)


def _fuzz(args: argparse.Namespace) -> int:
    import atheris

    with atheris.instrument_imports(include=["pyvrrpd"]):
        one, seeds = target(args.target)
    corpus = args.corpus or tempfile.mkdtemp(prefix=f"pyvrrpd-fuzz-{args.target}-")
    os.makedirs(corpus, exist_ok=True)
    for i, seed in enumerate(seeds):
        Path(corpus, f"seed-{i}").write_bytes(seed)
    artifacts = os.path.join(os.path.abspath(args.artifacts), "")
    os.makedirs(artifacts, exist_ok=True)
    atheris.Setup([sys.argv[0], f"-runs={args.runs}", f"-seed={args.seed}", f"-max_len={args.max_len}",
                   f"-artifact_prefix={artifacts}", f"-max_total_time={args.max_seconds}", "-print_final_stats=1",
                   corpus], one)
    atheris.Fuzz()  # exits the process: 0 after --runs inputs, non-zero on a crash (the input saved)
    return 0

if __name__ == "__main__":
    sys.exit(main())
