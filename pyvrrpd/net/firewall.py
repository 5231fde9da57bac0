"""Accept_Mode off (``no_accept``, strict mode): a master drops IP traffic addressed to its VIPs.

RFC 5798 §6.4.3: a master that is not the address owner must not accept packets addressed to the
virtual addresses unless Accept_Mode is on. keepalived does this with nftables rules; so does
pyvrrpd, over netlink (pyroute2), never with ``nft``: one table per family, ``ip pyvrrpd`` and
``ip6 pyvrrpd``, each with one base chain on the input hook holding a ``daddr VIP drop`` rule per
blocked VIP. ARP and neighbour discovery are not IP traffic to the VIP and keep working.

The blocked set changes only on state transitions, so a family's table is rebuilt whole on each
change (delete, then create with the current rules). Tables left by a crashed run are removed on
open; both are deleted on close.
"""

from __future__ import annotations

import errno
import ipaddress
from collections import OrderedDict
from typing import Iterable

from pyvrrpd.net.errors import NetError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

TABLE = "pyvrrpd"
CHAIN = "vips_in"
_NFPROTO = {4: 2, 6: 10}  # NFPROTO_IPV4, NFPROTO_IPV6
_DADDR = {4: (16, 4), 6: (24, 16)}  # destination address: offset and length in the network header
_NF_DROP = 0


def _expr(name: str, **attrs) -> dict:
    data = [(f"NFTA_{name.upper()}_{key.upper()}", value) for key, value in attrs.items()]
    return {"attrs": [("NFTA_EXPR_NAME", name), ("NFTA_EXPR_DATA", {"attrs": data})]}


def drop_to(address: IPAddress) -> list[dict]:
    """Expressions of ``ip[6] daddr ADDRESS drop``."""
    offset, length = _DADDR[address.version]
    load = OrderedDict(dreg=1, base=1, offset=offset, len=length)  # NFT_PAYLOAD_NETWORK_HEADER into reg 1
    return [
        _expr("payload", **load),
        _expr("cmp", sreg=1, op=0, data={"attrs": [("NFTA_DATA_VALUE", address.packed)]}),  # NFT_CMP_EQ
        _expr("immediate", dreg=0, data={"attrs": [("NFTA_DATA_VERDICT", {"attrs": [("NFTA_VERDICT_CODE", _NF_DROP)]})]}),
    ]


class Firewall:
    """Blocked VIPs per owner (an instance name); ``async with`` or open()/aclose()."""

    def __init__(self) -> None:
        self._blocked: dict[str, frozenset[IPAddress]] = {}
        self._nft: dict[int, object] = {}  # version -> AsyncNFTables
        self._installed: dict[int, frozenset[IPAddress]] = {4: frozenset(), 6: frozenset()}

    async def __aenter__(self) -> Firewall:
        await self.open()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def open(self) -> None:
        from pyvrrpd.net.lean import lean

        lean("pyroute2")  # its submodules only (see lean.py)
        from pyroute2.nftables.main import AsyncNFTables  # only daemons that need it pay the import

        for version, family in _NFPROTO.items():
            try:
                nft = AsyncNFTables(nfgen_family=family)
                await nft.setup_endpoint()
            except Exception as exc:  # noqa: BLE001 - pyroute2 raises several kinds; report them as one
                raise NetError.wrap(exc, "open nftables") from exc
            self._nft[version] = nft
            await self._delete_table(version)  # left by a crashed run

    async def block(self, owner: str, addresses: Iterable[IPAddress]) -> None:
        self._blocked[owner] = frozenset(addresses)
        await self._sync()

    async def unblock(self, owner: str) -> None:
        if self._blocked.pop(owner, None) is not None:
            await self._sync()

    def blocked(self) -> frozenset[IPAddress]:
        return frozenset().union(*self._blocked.values()) if self._blocked else frozenset()

    async def aclose(self) -> None:
        self._blocked.clear()
        try:
            for version in list(self._nft):
                await self._delete_table(version)
        finally:
            for nft in self._nft.values():
                nft.close()
            self._nft.clear()

    async def _sync(self) -> None:
        wanted = self.blocked()
        for version in _NFPROTO:
            mine = frozenset(a for a in wanted if a.version == version)
            if mine == self._installed[version]:
                continue
            await self._delete_table(version)
            if mine:
                await self._create_table(version, mine)

    async def _create_table(self, version: int, addresses: frozenset[IPAddress]) -> None:
        nft = self._nft[version]
        try:
            await _done(nft.table("add", name=TABLE))
            await _done(nft.chain("add", table=TABLE, name=CHAIN, hook="input", type="filter", priority=0))
            for address in sorted(addresses):
                await _done(nft.rule("add", table=TABLE, chain=CHAIN, expressions=(drop_to(address),)))
        except Exception as exc:  # noqa: BLE001
            raise NetError.wrap(exc, f"install nftables rules dropping traffic to {len(addresses)} VIP(s)",
                                target=", ".join(map(str, sorted(addresses)))) from exc
        self._installed[version] = addresses

    async def _delete_table(self, version: int) -> None:
        try:
            await _done(self._nft[version].table("del", name=TABLE))
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "code", None) != errno.ENOENT:
                raise NetError.wrap(exc, f"delete nftables table {TABLE}") from exc
        self._installed[version] = frozenset()


async def _done(request) -> None:
    """Run a pyroute2 command: its result is an async generator that must be drained."""
    result = await request
    if hasattr(result, "__aiter__"):
        async for _ in result:
            pass
