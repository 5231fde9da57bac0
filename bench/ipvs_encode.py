"""Where the LVS subsystem's CPU goes when it programs 1,000 virtual servers x 10 real servers, on the host.

    .venv/bin/python bench/ipvs_encode.py [--services 1000] [--reals 10] [--repeat 7]   # no root, no VM

The user-space part of bench/ipvs_apply.py without a kernel: each phase of the first pass timed on its own
(CPU time, best of --repeat), then the whole first pass of ``LvsSubsystem`` against a port that encodes every
request exactly as ``KernelIpvs`` does and decodes kernel-shaped acknowledgements (no socket). The VM's
emulation multiplies these times by ~20-30; the kernel's own work is not here. Figures only: the target is
bench/ipvs_apply.py's (at most keepalived's time).
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


class EncodingPort:
    """An IpvsPort that encodes each request as KernelIpvs does and parses one ack per request."""

    def __init__(self) -> None:
        self.family, self.seq, self.sent = 30, 1, 0

    async def dump(self):
        from pyvrrpd.lvs.table import Table

        return Table()

    async def apply(self, op) -> None:
        await self.apply_many([op])

    async def apply_many(self, ops):
        from pyvrrpd.lvs import ipvs
        from pyvrrpd.lvs import wire as w

        first = self.seq
        self.seq += len(ops)
        data = b"".join(ipvs.request(self.family, first + i, op) for i, op in enumerate(ops))
        self.sent += len(data)
        acks = b"".join(struct.pack("=IHHIIi", 36, w.NLMSG_ERROR, 0, first + i, 0, 0) + bytes(16)
                        for i in range(len(ops)))
        for kind, _flags, seq, payload in w.messages(acks):
            if kind == w.NLMSG_ERROR and 0 <= seq - first < len(ops):
                w.error_code(payload)
        return [None] * len(ops)

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
    acks = [b"".join(struct.pack("=IHHIIi", 36, w.NLMSG_ERROR, 0, 1 + i, 0, 0) + bytes(16) for i in range(len(b)))
            for b in batches]

    def encode() -> None:
        w.nested_service_key.cache_clear()
        for batch in batches:
            b"".join(ipvs.request(30, 1 + i, op) for i, op in enumerate(batch))

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
        (f"parse {len(ops)} acknowledgements", best(decode, args.repeat)),
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
