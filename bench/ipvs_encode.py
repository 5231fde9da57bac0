"""Where the LVS subsystem's CPU goes when it programs 1,000 virtual servers x 10 real servers, on the host.

    .venv/bin/python bench/ipvs_encode.py [--services 1000] [--reals 10] [--repeat 7]   # no root, no VM

The user-space part of bench/ipvs_apply.py without a kernel: each phase of the first pass timed on its own
(CPU time, best of --repeat), then the whole first pass of ``LvsSubsystem`` through ``KernelIpvs`` itself with
its socket replaced (every request encoded and sent as to the kernel, each datagram answered as the kernel
answers a batch that succeeded). The VM's emulation multiplies these times by ~40; the kernel's own work is
not here. Figures only: the target is bench/ipvs_apply.py's (at most keepalived's time).
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ipvs_apply import config_text  # noqa: E402
from pyvrrpd.lvs import wire as w  # noqa: E402
from pyvrrpd.lvs.ipvs import KernelIpvs  # noqa: E402
from pyvrrpd.lvs.table import Table  # noqa: E402


class _Seq:
    """KernelIpvs's sequence counter, remembering the last number it gave."""

    def __init__(self) -> None:
        self.last = 0

    def __next__(self) -> int:
        self.last += 1
        return self.last


class EncodingPort(KernelIpvs):
    """``KernelIpvs`` itself, its socket replaced: every request is encoded and sent as to the kernel, and
    each datagram is answered as the kernel answers a batch that succeeded (one acknowledgement, of its
    last message, the only one that asks for it)."""

    def __init__(self) -> None:
        super().__init__(sock=None, family=30)  # type: ignore[arg-type]
        self._seq = _Seq()  # type: ignore[assignment]
        self.sent = 0

    async def dump(self) -> Table:
        return Table()

    async def _send(self, data: bytes) -> None:
        self.sent += len(data)

    async def _recv(self) -> bytes:
        return struct.pack("=IHHIIi", 36, w.NLMSG_ERROR, 0, self._seq.last, 0, 0) + bytes(16)

    async def close(self) -> None:
        pass


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--reals", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    import anyio

    from pyvrrpd.config.load import load
    from pyvrrpd.lvs import diff as d
    from pyvrrpd.lvs import ipvs
    from pyvrrpd.lvs import table as t
    from pyvrrpd.lvs import wire as w
    from pyvrrpd.lvs.reconciler import LvsSubsystem
    from pyvrrpd.observe import logs

    logs.configure("json", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "bench.conf"
        conf.write_text(config_text(args.services, args.reals))
        t0 = time.process_time()
        cfg = load(str(conf), host_checks=False).config
        load_ms = (time.process_time() - t0) * 1000
    vss, groups = cfg.virtual_servers, cfg.virtual_server_groups
    want = t.desired(vss, groups, {}, None)
    memo: dict = {}
    t.desired(vss, groups, {}, None, memo)
    ops = d.diff(want.table, t.Table(), want.owned_services, want.owned_dests)
    batches = [ops[i:i + 64] for i in range(0, len(ops), 64)]
    # as KernelIpvs answers a batch: the kernel acknowledges only its last message (the others fail or not)
    acks = [struct.pack("=IHHIIi", 36, w.NLMSG_ERROR, 0, len(b), 0, 0) + bytes(16) for b in batches]

    def encode() -> None:
        w.nested_service_key.cache_clear()
        for batch in batches:
            last = len(batch) - 1
            b"".join([ipvs.request(30, 1 + i, op, ack=False) for i, op in enumerate(batch[:last])]
                     + [ipvs.request(30, 1 + last, batch[last])])

    def decode() -> None:
        for datagram in acks:
            for _kind, _flags, _seq, payload in w.messages(datagram):
                w.error_code(payload)

    async def first_pass() -> None:
        lvs = LvsSubsystem(cfg, port=EncodingPort(), release_on_stop=False)
        async with anyio.create_task_group() as tg:
            await tg.start(lvs.run)
            tg.cancel_scope.cancel()

    rows = [
        ("config load (reference, not in the pass)", load_ms),
        ("desired table, first computation", best(lambda: t.desired(vss, groups, {}, None), args.repeat)),
        ("desired table, again (memo warm: each health change)",
         best(lambda: t.desired(vss, groups, {}, None, memo), args.repeat)),
        ("diff against an empty table", best(lambda: d.diff(want.table, t.Table(), want.owned_services,
                                                            want.owned_dests), args.repeat)),
        (f"encode {len(ops)} requests", best(encode, args.repeat)),
        (f"parse the answers ({len(acks)}, one per datagram of 64)", best(decode, args.repeat)),
        ("whole first pass (LvsSubsystem.run until ready)", best(lambda: anyio.run(first_pass), args.repeat)),
    ]
    print(f"{args.services} virtual servers x {args.reals} real servers = {len(ops)} operations; "
          f"CPU ms, best of {args.repeat}")
    for name, ms in rows:
        print(f"  {name:<56} {ms:8.1f}")
    print("verdict: figures only (the target is bench/ipvs_apply.py's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
