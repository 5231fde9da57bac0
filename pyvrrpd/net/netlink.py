"""rtnetlink through pyroute2's AsyncIPRoute: interface facts, VIPs, routes, rules, VMAC links, sysctls
and a link/address event stream.

Changes are idempotent: adding what is already there and deleting what is already gone return False
instead of raising, so a restart after a crash can simply re-apply or clean up. Every other kernel
refusal becomes a NetError naming the operation, interface, address and errno. The daemon never runs
`ip`: everything here is netlink, or /proc/sys for the VMAC sysctls.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from .lean import lean

lean("pyroute2")  # only the rtnetlink socket, not all of pyroute2's package import (-6 MB, -35 ms; see lean.py)
from pyroute2.iproute.linux import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK

from pyvrrpd.core.frames import virtual_mac  # noqa: F401  (re-exported: the macvlan's default MAC)

from .constants import (
    IFA_F_DADFAILED,
    IFA_F_NODAD,
    IFA_F_SECONDARY,
    IFA_F_TENTATIVE,
    IFF_RUNNING,
    IFF_UP,
    IN6_ADDR_GEN_MODE_RANDOM,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RT_SCOPE_UNIVERSE,
    RTNH_F_ONLINK,
)
from .errors import NetError
from .specs import AddressSpec, IPAddress, IPInterface, RouteSpec, RuleSpec

_LINK_LOCAL6 = ipaddress.IPv6Network("fe80::/10")
_ERRORS = (NetlinkError, OSError, ValueError, TypeError, KeyError)  # pyroute2 raises the last three on bad input


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    index: int
    mac: bytes
    up: bool  # IFF_UP: administratively up
    running: bool  # IFF_RUNNING: carrier present
    ipv4: ipaddress.IPv4Address | None  # primary IPv4 address: first non-secondary, global scope preferred,
    # VIPs excluded
    ipv6_link_local: ipaddress.IPv6Address | None  # first usable (non-tentative) link-local address


@dataclass(frozen=True, slots=True)
class Address:
    index: int
    address: IPInterface
    peer: IPAddress | None
    label: str | None
    scope: int
    flags: int  # IFA_F_* bits


@dataclass(frozen=True, slots=True)
class Vmac:
    name: str
    index: int
    mac: bytes
    parent: str
    # parent's sysctl values before create_vmac changed them (key -> old value), for restoring when the
    # last VMAC on that parent goes: write_sysctl(key, value) for each.
    parent_sysctls: dict[str, str]


@dataclass(frozen=True, slots=True)
class LinkEvent:
    kind: Literal["added", "up", "down", "renamed", "deleted"]
    index: int
    name: str
    up: bool  # IFF_UP and IFF_RUNNING after the event
    old_name: str | None = None  # for "renamed"


@dataclass(frozen=True, slots=True)
class AddressEvent:
    kind: Literal["added", "removed"]
    index: int
    ifname: str | None  # None if the link was not known to the monitor
    address: IPInterface


def write_sysctl(key: str, value: int | str) -> str:
    """Write /proc/sys/`key` and return the previous value.

    `key` is slash-separated ("net/ipv4/conf/vrrp.51/arp_ignore") so interface names with dots stay intact.
    /proc/sys/net belongs to the caller's network namespace.
    """
    parts = key.split("/")
    if parts[0] != "net" or any(p in ("", ".", "..") for p in parts):
        raise NetError("write sysctl", target=key, detail="key must be a net/... path")
    path = os.path.join("/proc/sys", *parts)
    try:
        with open(path) as f:
            old = f.read().strip()
        with open(path, "w") as f:
            f.write(f"{value}\n")
    except OSError as exc:
        raise NetError.wrap(exc, "write sysctl", target=key) from None
    return old


class Netlink:
    """Command channel: one AsyncIPRoute socket. Use as `async with Netlink() as nl:`."""

    def __init__(self) -> None:
        self._ipr = AsyncIPRoute()
        # Interface indexes for the VIP add/delete hot path (a takeover must not wait for RTM_GETLINK).
        # A stale entry (interface re-created) shows as ENODEV and is looked up again once; the daemon
        # also calls forget() on every link added/deleted/renamed event.
        self._indexes: dict[str, int] = {}

    def forget(self, ifname: str | None = None) -> None:
        """Drop the cached index of `ifname`, or all of them."""
        if ifname is None:
            self._indexes.clear()
        else:
            self._indexes.pop(ifname, None)

    async def aclose(self) -> None:
        self._ipr.close()

    async def __aenter__(self) -> Netlink:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    # -- interfaces and addresses ------------------------------------------------------------------

    async def index(self, ifname: str) -> int:
        """Interface index; NetError with errno ENODEV if there is no such interface."""
        return (await self._link(ifname, "look up interface"))["index"]

    async def interface(self, ifname: str, *, exclude: Collection[IPAddress] = ()) -> Interface:
        """Facts about `ifname`; `exclude` lists our VIPs so they are never taken as the primary address."""
        link = await self._link(ifname, "look up interface")
        ipv4: list[Address] = []
        ipv6_ll = None
        for addr in await self.addresses(ifname, index=link["index"]):
            ip = addr.address.ip
            if ip in exclude:
                continue
            if ip.version == 4 and not addr.flags & IFA_F_SECONDARY:
                ipv4.append(addr)
            elif (ip.version == 6 and ipv6_ll is None and ip in _LINK_LOCAL6
                  and not addr.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)):
                ipv6_ll = ip
        # The kernel lists primaries ordered by scope; prefer a global one, as a VRRP source must be routable.
        ipv4.sort(key=lambda a: a.scope != RT_SCOPE_UNIVERSE)
        flags = link["flags"]
        return Interface(name=ifname, index=link["index"], mac=_mac(link.get("IFLA_ADDRESS")),
                         up=bool(flags & IFF_UP), running=bool(flags & IFF_RUNNING),
                         ipv4=ipv4[0].address.ip if ipv4 else None, ipv6_link_local=ipv6_ll)

    async def addresses(self, ifname: str, *, index: int | None = None) -> list[Address]:
        """All addresses on `ifname`, in the kernel's order (e.g. to remove VIPs left by a crashed run)."""
        if index is None:
            index = await self.index(ifname)
        try:
            return [_address(msg) async for msg in await self._ipr.addr("dump", index=index)]
        except _ERRORS as exc:
            raise NetError.wrap(exc, "list addresses", ifname=ifname) from None

    async def all_addresses(self) -> list[Address]:
        """Every address on every interface (ha_suspend's initial view of the host)."""
        try:
            return [_address(msg) async for msg in await self._ipr.addr("dump")]
        except _ERRORS as exc:
            raise NetError.wrap(exc, "list addresses") from None

    async def add_address(self, spec: AddressSpec, dev: str | None = None) -> bool:
        """Add a VIP on `spec.dev` or else `dev`. IPv6 addresses get nodad. False if it was already there."""
        ifname = _dev(spec.dev or dev, "add address", spec)

        def request(index: int):
            request = self._address_request(spec, index)
            request["scope"] = spec.scope
            if spec.broadcast is not None:
                request["broadcast"] = str(spec.broadcast)
            if spec.label is not None:
                request["label"] = spec.label
            if spec.address.version == 6:
                request["flags"] = IFA_F_NODAD
            return self._ipr.addr("add", **request)

        changed = await self._on_interface(ifname, "add address", str(spec), request, done=(errno.EEXIST,))
        if changed is None:
            raise NetError("add address", ifname=ifname, target=str(spec), errno=errno.ENODEV)
        return changed

    async def del_address(self, spec: AddressSpec, dev: str | None = None) -> bool:
        """Remove a VIP. False if it (or its interface) was already gone."""
        ifname = _dev(spec.dev or dev, "delete address", spec)

        def request(index: int):
            return self._ipr.addr("del", **self._address_request(spec, index))

        changed = await self._on_interface(ifname, "delete address", str(spec), request,
                                           done=(errno.EADDRNOTAVAIL, errno.ENOENT))
        return bool(changed)

    async def _on_interface(self, ifname: str, op: str, target: str, request, *,
                            done: tuple[int, ...]) -> bool | None:
        """Run `request(index)` on `ifname` by its cached index; None if there is no such interface."""
        for _ in range(2):
            cached = ifname in self._indexes
            index = self._indexes.get(ifname)
            if index is None:
                index = await self._index_or_none(ifname, op)
                if index is None:
                    return None
                self._indexes[ifname] = index
            try:
                return await self._change(op, request(index), ifname=ifname, target=target, done=done)
            except NetError as exc:
                if exc.errno != errno.ENODEV:
                    raise
                self.forget(ifname)
                if not cached:
                    return None  # the interface went away between the look-up and the change
        return None

    @staticmethod
    def _address_request(spec: AddressSpec, index: int) -> dict:
        ip = str(spec.address.ip)
        # IFA_LOCAL is our address; IFA_ADDRESS is the peer on point-to-point addresses, else the same.
        return {"index": index, "family": socket.AF_INET if spec.address.version == 4 else socket.AF_INET6,
                "local": ip, "address": str(spec.peer) if spec.peer else ip,
                "prefixlen": spec.address.network.prefixlen}

    # -- routes and rules --------------------------------------------------------------------------

    async def add_route(self, spec: RouteSpec) -> bool:
        """Add a route. False if an identical one (same prefix, table, metric) was already there."""
        request = await self._route_request(spec, "add route")
        if request is None:
            raise NetError("add route", target=str(spec), errno=errno.ENODEV)
        if spec.scope is not None:
            request["scope"] = spec.scope
        elif spec.type == "unicast" and spec.via is None:
            request["scope"] = RT_SCOPE_LINK
        else:
            request["scope"] = RT_SCOPE_UNIVERSE
        return await self._change("add route", self._ipr.route("add", **request), target=str(spec),
                                  done=(errno.EEXIST,))

    async def del_route(self, spec: RouteSpec) -> bool:
        """Remove a route. False if it was already gone."""
        request = await self._route_request(spec, "delete route")
        if request is None:
            return False  # its interface is gone, and the route with it
        request["scope"] = RT_SCOPE_NOWHERE  # match any scope, as `ip route del` does
        return await self._change("delete route", self._ipr.route("del", **request), target=str(spec),
                                  done=(errno.ESRCH, errno.ENOENT))

    async def _route_request(self, spec: RouteSpec, op: str) -> dict | None:
        request = {"family": socket.AF_INET if spec.version == 4 else socket.AF_INET6,
                   "dst": str(spec.dst.network_address), "dst_len": spec.dst.prefixlen,
                   "table": spec.table, "type": spec.type}
        if spec.via is not None:
            request["gateway"] = str(spec.via)
        if spec.dev is not None:
            index = await self._index_or_none(spec.dev, op)
            if index is None:
                return None
            request["oif"] = index
        if spec.src is not None:
            request["prefsrc"] = str(spec.src)
        if spec.metric is not None:
            request["priority"] = spec.metric
        if spec.onlink:
            request["flags"] = RTNH_F_ONLINK
        return request

    async def add_rule(self, spec: RuleSpec) -> bool:
        """Add a policy rule. False if an equal one exists (any priority, when `spec.priority` is None)."""
        try:
            rules = [msg async for msg in await self._ipr.rule("dump")]
        except _ERRORS as exc:
            raise NetError.wrap(exc, "list rules", target=str(spec)) from None
        if any(_rule_matches(msg, spec) for msg in rules):
            return False
        return await self._change("add rule", self._ipr.rule("add", **_rule_request(spec)),
                                  target=str(spec), done=(errno.EEXIST,))

    async def del_rule(self, spec: RuleSpec) -> bool:
        """Remove a policy rule (the first equal one if `spec.priority` is None). False if none was there."""
        return await self._change("delete rule", self._ipr.rule("del", **_rule_request(spec)),
                                  target=str(spec), done=(errno.ENOENT,))

    # -- VMAC (use_vmac) ---------------------------------------------------------------------------

    async def create_vmac(self, parent: str, name: str, vrid: int, *, version: int = 4,
                          mac: bytes | None = None) -> Vmac:
        """Create (or adopt, after a crash) macvlan `name` on `parent` with the virtual MAC, and bring it up.

        Sets the sysctls keepalived sets: on the macvlan arp_ignore=1 (answer ARP only for its own
        addresses), accept_local=1 (hear other instances' adverts sourced from local addresses),
        rp_filter=0 (receive although it has no route back), promote_secondaries=1 (removing one VIP keeps
        the others); on the parent arp_ignore=1 and arp_filter=1, so the parent never answers ARP for a VIP
        with the real MAC. Note: the kernel applies max(all, interface) for rp_filter, so a non-zero
        net.ipv4.conf.all.rp_filter still applies to the macvlan.
        """
        mac = mac or virtual_mac(vrid, version)
        mac_text = _mac_text(mac)
        parent_index = (await self._link(parent, "create vmac", target=name))["index"]
        created = await self._change(
            "create vmac", self._ipr.link("add", ifname=name, kind="macvlan", link=parent_index,
                                          macvlan_mode="bridge", address=mac_text),
            ifname=name, target=f"{mac_text} on {parent}", done=(errno.EEXIST,))
        link = await self._link(name, "create vmac")
        if not created and (_kind(link) != "macvlan" or link.get("IFLA_LINK") != parent_index
                            or _mac(link.get("IFLA_ADDRESS")) != mac):
            raise NetError("create vmac", ifname=name, errno=errno.EEXIST,
                           detail=f"an interface of that name exists and is not a macvlan on {parent} "
                                  f"with MAC {mac_text}")
        try:
            # Random link-local generation must be set after creation: at creation this kernel refuses it.
            # Without it the macvlan would derive its link-local address from the shared virtual MAC.
            await self._change("set addrgenmode", self._ipr.link("set", index=link["index"], IFLA_AF_SPEC={
                "attrs": [["AF_INET6", {"attrs": [["IFLA_INET6_ADDR_GEN_MODE", IN6_ADDR_GEN_MODE_RANDOM]]}]]}),
                ifname=name)
            for key, value in (("arp_ignore", 1), ("accept_local", 1), ("rp_filter", 0),
                               ("promote_secondaries", 1)):
                write_sysctl(f"net/ipv4/conf/{name}/{key}", value)
            previous = {}
            for key in ("arp_ignore", "arp_filter"):
                path = f"net/ipv4/conf/{parent}/{key}"
                previous[path] = write_sysctl(path, 1)
            await self._change("bring up vmac", self._ipr.link("set", index=link["index"], state="up"),
                               ifname=name)
        except NetError:
            if created:
                await self.delete_vmac(name)
            raise
        return Vmac(name=name, index=link["index"], mac=mac, parent=parent, parent_sysctls=previous)

    async def delete_vmac(self, name: str) -> bool:
        """Delete macvlan `name`. False if it was already gone; NetError if `name` is not a macvlan."""
        try:
            link = (await self._ipr.link("get", ifname=name))[0]
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise NetError.wrap(exc, "delete vmac", ifname=name) from None
        except _ERRORS as exc:
            raise NetError.wrap(exc, "delete vmac", ifname=name) from None
        if _kind(link) != "macvlan":
            raise NetError("delete vmac", ifname=name, detail=f"refusing: it is a {_kind(link) or 'plain'} "
                                                               "interface, not a macvlan")
        return await self._change("delete vmac", self._ipr.link("del", index=link["index"]), ifname=name,
                                  done=(errno.ENODEV,))

    # -- helpers -----------------------------------------------------------------------------------

    async def _link(self, ifname: str, op: str, *, target: str | None = None):
        try:
            return (await self._ipr.link("get", ifname=ifname))[0]
        except _ERRORS as exc:
            raise NetError.wrap(exc, op, ifname=ifname, target=target) from None

    async def _index_or_none(self, ifname: str, op: str) -> int | None:
        try:
            return (await self._link(ifname, op))["index"]
        except NetError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise

    @staticmethod
    async def _change(op: str, request, *, ifname: str | None = None, target: str | None = None,
                      done: tuple[int, ...] = ()) -> bool:
        """Await a netlink request; True if it changed something, False if its errno is in `done`."""
        try:
            await request
        except NetlinkError as exc:
            if exc.code in done:
                return False
            raise NetError.wrap(exc, op, ifname=ifname, target=target) from None
        except _ERRORS as exc:
            raise NetError.wrap(exc, op, ifname=ifname, target=target) from None
        return True


class LinkMonitor:
    """Link and address changes from a dedicated netlink socket, as an async iterator.

        async with LinkMonitor() as events:
            async for event in events: ...   # LinkEvent | AddressEvent

    Reports only changes: "up"/"down" when IFF_UP-and-IFF_RUNNING flips, not every RTM_NEWLINK. IPv6
    addresses are reported "added" once usable (not while tentative). Iterate promptly: if the socket
    buffer overflows the kernel drops events, and iteration raises NetError(ENOBUFS) — then reopen the
    monitor and re-read interface state.
    """

    def __init__(self) -> None:
        self._sock = AsyncIPRoute()
        self._links: dict[int, tuple[str, bool]] = {}  # index -> (name, up)
        self._pending: deque[LinkEvent | AddressEvent] = deque()

    async def __aenter__(self) -> LinkMonitor:
        try:
            await self._sock.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
            # Seed the link table after subscribing, so no change falls between the dump and the first event.
            async with AsyncIPRoute() as ipr:
                async for msg in await ipr.link("dump"):
                    self._links[msg["index"]] = (msg.get("IFLA_IFNAME"), _is_up(msg["flags"]))
        except _ERRORS as exc:
            self._sock.close()
            raise NetError.wrap(exc, "open link monitor") from None
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._sock.close()

    def __aiter__(self) -> LinkMonitor:
        return self

    async def __anext__(self) -> LinkEvent | AddressEvent:
        while not self._pending:
            try:
                async for msg in self._sock.get():
                    self._handle(msg)
            except _ERRORS as exc:
                err = NetError.wrap(exc, "read link events")
                if err.errno == errno.ENOBUFS:
                    err.detail = "events were lost; reopen the monitor and re-read interface state"
                raise err from None
        return self._pending.popleft()

    def _handle(self, msg) -> None:
        event = msg.get("event")
        if event in ("RTM_NEWLINK", "RTM_DELLINK"):
            index, name = msg["index"], msg.get("IFLA_IFNAME")
            up = _is_up(msg["flags"])
            known = self._links.get(index)
            if event == "RTM_DELLINK":
                self._links.pop(index, None)
                self._pending.append(LinkEvent("deleted", index, name, False))
                return
            self._links[index] = (name, up)
            if known is None:
                self._pending.append(LinkEvent("added", index, name, up))
                return
            if known[0] != name:
                self._pending.append(LinkEvent("renamed", index, name, up, old_name=known[0]))
            if known[1] != up:
                self._pending.append(LinkEvent("up" if up else "down", index, name, up))
        elif event in ("RTM_NEWADDR", "RTM_DELADDR"):
            address = _address(msg)
            if event == "RTM_NEWADDR" and address.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
                return
            name = self._links.get(address.index, (None,))[0]
            kind = "added" if event == "RTM_NEWADDR" else "removed"
            self._pending.append(AddressEvent(kind, address.index, name, address.address))


def _is_up(flags: int) -> bool:
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


def _address(msg) -> Address:
    local, addr = msg.get("IFA_LOCAL"), msg.get("IFA_ADDRESS")
    ip = local or addr
    return Address(
        index=msg["index"],
        address=ipaddress.ip_interface(f"{ip}/{msg['prefixlen']}"),
        peer=ipaddress.ip_address(addr) if local and addr and addr != local else None,
        label=msg.get("IFA_LABEL"),
        scope=msg["scope"],
        flags=msg.get("IFA_FLAGS") or msg["flags"],  # IFA_FLAGS is the 32-bit superset of ifa_flags
    )


def _rule_request(spec: RuleSpec) -> dict:
    request = {"family": socket.AF_INET if spec.version == 4 else socket.AF_INET6, "table": spec.table,
               "priority": spec.priority, "action": "to_tbl"}  # priority None: sent as absent
    for key, net in (("src", spec.src), ("dst", spec.dst)):
        if net is not None:
            request[key] = str(net.network_address)
            request[f"{key}_len"] = net.prefixlen
    if spec.iif is not None:
        request["iifname"] = spec.iif
    if spec.oif is not None:
        request["oifname"] = spec.oif
    if spec.fwmark is not None:
        request["fwmark"] = spec.fwmark
        if spec.fwmask is not None:
            request["fwmask"] = spec.fwmask
    return request


def _rule_matches(msg, spec: RuleSpec) -> bool:
    def prefix(key: str):
        length = msg[f"{key}_len"]
        return ipaddress.ip_network(f"{msg.get('FRA_' + key.upper())}/{length}") if length else None

    family = socket.AF_INET if spec.version == 4 else socket.AF_INET6
    fwmask = spec.fwmask if spec.fwmask is not None else 0xFFFFFFFF
    return (msg["family"] == family
            and (msg.get("FRA_TABLE") or msg["table"]) == spec.table
            and (spec.priority is None or msg.get("FRA_PRIORITY", 0) == spec.priority)
            and prefix("src") == spec.src and prefix("dst") == spec.dst
            and msg.get("FRA_IIFNAME") == spec.iif and msg.get("FRA_OIFNAME") == spec.oif
            and msg.get("FRA_FWMARK") == spec.fwmark
            and (spec.fwmark is None or msg.get("FRA_FWMASK", 0xFFFFFFFF) == fwmask))


def _dev(ifname: str | None, op: str, spec: AddressSpec) -> str:
    if not ifname:
        raise NetError(op, target=str(spec), detail="no interface: give dev in the spec or the call")
    return ifname


def _kind(link) -> str | None:
    info = link.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_KIND") if info else None


def _mac(text: str | None) -> bytes:
    return bytes.fromhex(text.replace(":", "")) if text else b""


def _mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)
