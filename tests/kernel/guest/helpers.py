"""Helpers for the tests that run inside the IPVS VM (see tests/kernel/test_kernel_vm.py)."""

from __future__ import annotations

import asyncio
import subprocess

from pyvrrpd.lvs import diff as d
from pyvrrpd.lvs.ipvs import KernelIpvs


def sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def saved() -> list[str]:
    """`ipvsadm -Sn`, one line per entry, sorted (the kernel's hash order is not the insertion order)."""
    return sorted(line for line in sh("ipvsadm", "-Sn").splitlines() if line.strip())


def flush() -> None:
    sh("ipvsadm", "-C")


def run(coro):
    return asyncio.run(coro)


async def program(ops: list[d.Operation]) -> None:
    k = await KernelIpvs.open()
    try:
        for op in ops:
            await k.apply(op)
    finally:
        await k.close()


async def dump():
    k = await KernelIpvs.open()
    try:
        return await k.dump()
    finally:
        await k.close()
