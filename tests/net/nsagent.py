"""Runs pyvrrpd.net code inside a lab namespace for the tests: `ip netns exec NS python nsagent.py CMD ...`.

Prints one JSON object per line (a "ready" line first for listeners, so the test knows the socket is open)
and exits 0; the test makes the assertions. Every wait is bounded by the given timeout.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import subprocess
import sys

import anyio

from pyvrrpd.net.constants import ETH_P_ALL
from pyvrrpd.net.errors import NetError
from pyvrrpd.net.link import link_info, open_packet_sender
from pyvrrpd.net.netlink import AddressEvent, LinkMonitor, Netlink, write_sysctl
from pyvrrpd.net.specs import parse_address, parse_route, parse_rule
from pyvrrpd.net.vrrp_socket import open_vrrp_socket


def emit(**fields) -> None:
    print(json.dumps(fields, default=str), flush=True)


def received(pkt) -> dict:
    return {"payload": pkt.payload.hex(), "src": str(pkt.src), "dst": str(pkt.dst), "ttl": pkt.ttl,
            "ifindex": pkt.ifindex}


async def cmd_recv(args) -> None:
    """Receive `count` adverts; with --unjoined also hold a socket that joined no group and report
    whether the group traffic leaked into it (it must not: IP(V6)_MULTICAST_ALL=0)."""
    groups = () if args.unicast else None
    async with open_vrrp_socket(args.ifname, args.version, groups=groups) as sock:
        unjoined = open_vrrp_socket(args.ifname, args.version, groups=()) if args.unjoined else None
        emit(ready=True)
        with anyio.move_on_after(args.timeout):
            for _ in range(args.count):
                emit(**received(await sock.receive()))
            if unjoined is not None:
                try:
                    # Raw delivery to every matching socket happens at once, so it is there now or never.
                    unjoined._sock.recv(65535)
                    emit(unjoined_leak=True)
                except BlockingIOError:
                    emit(unjoined_leak=False)
        if unjoined is not None:
            await unjoined.aclose()
    emit(done=True)


async def cmd_send(args) -> None:
    async with Netlink() as nl:
        iface = await nl.interface(args.ifname)
    source = args.src or (iface.ipv4 if args.version == 4 else iface.ipv6_link_local)
    async with open_vrrp_socket(args.ifname, args.version, groups=(), source=source) as sock:
        for ttl in args.ttl:
            await sock.send(bytes.fromhex(args.message), args.dst, ttl=ttl)
    emit(source=source)


async def cmd_sniff(args) -> None:
    """Print the first frame with the given ethertype (and containing the given bytes) seen on the interface."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.htons(ETH_P_ALL))
    sock.bind((args.ifname, 0))
    emit(ready=True)
    with anyio.move_on_after(args.timeout):
        while True:
            await anyio.wait_readable(sock)
            frame, addr = sock.recvfrom(65535)
            if int.from_bytes(frame[12:14], "big") == args.ethertype and args.contains in frame:
                emit(frame=frame.hex(), pkttype=addr[2])
                break
    sock.close()
    emit(done=True)


async def cmd_frame(args) -> None:
    async with open_packet_sender(args.ifname) as sender:
        await sender.send(bytes.fromhex(args.frame))
    emit(sent=True)


async def cmd_linkinfo(args) -> None:
    info = link_info(args.ifname)
    async with Netlink() as nl:
        iface = await nl.interface(args.ifname)
    emit(index=info.index, mac=info.mac.hex(), up=info.up, running=info.running,
         nl_index=iface.index, nl_mac=iface.mac.hex(), nl_up=iface.up, nl_running=iface.running,
         ipv4=iface.ipv4, ipv6_link_local=iface.ipv6_link_local)


def ip(*argv: str) -> str:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=True, timeout=10).stdout


def error(exc: NetError) -> dict:
    return {"message": str(exc), "errno": exc.errno, "op": exc.op, "ifname": exc.ifname, "target": exc.target}


async def cmd_vips(args) -> None:
    """Add/delete VIPs twice each, list them, clean up leftovers, and provoke one real error."""
    vip4 = parse_address(["198.51.100.100/32", "label", "lan0:vip"])
    vip6 = parse_address(["2001:db8:1::100/128"])
    vip4b = parse_address(["203.0.113.101/24", "brd", "+", "scope", "link", "dev", "lan0"])
    async with Netlink() as nl:
        adds = [await nl.add_address(spec, "lan0") for spec in (vip4, vip4, vip6, vip6, vip4b)]
        listed = [(str(a.address), a.flags, a.label, a.scope) for a in await nl.addresses("lan0")]
        iface = await nl.interface("lan0", exclude={vip4.address.ip})
        shown = ip("-o", "addr", "show", "dev", "lan0")
        # A "crashed run" left these behind: clean every address that is one of our VIPs.
        vips = {vip4.address.ip, vip6.address.ip, vip4b.address.ip}
        cleaned = [await nl.del_address(parse_address([str(a.address)]), "lan0")
                   for a in await nl.addresses("lan0") if a.address.ip in vips]
        dels = [await nl.del_address(spec, "lan0") for spec in (vip4, vip6, vip4b)]
        after = [str(a.address) for a in await nl.addresses("lan0")]
        errors = []
        for call in (lambda: nl.add_address(vip4, "nosuch0"),
                     # a secondary in 198.51.100.0/24 must have the primary's scope
                     lambda: nl.add_address(parse_address(["198.51.100.102/24", "scope", "link"]), "lan0")):
            try:
                await call()
            except NetError as exc:
                errors.append(error(exc))
        gone = await nl.del_address(vip4, "nosuch0")
    emit(adds=adds, listed=listed, primary=iface.ipv4, ll=iface.ipv6_link_local, shown=shown, cleaned=cleaned,
         dels=dels, after=after, errors=errors, del_missing_dev=gone)


async def cmd_routes(args) -> None:
    routes = [
        ["10.0.0.0/8", "via", "198.51.100.1", "dev", "lan0"],
        ["203.0.113.0/24", "dev", "lan0", "src", "198.51.100.11", "table", "1000", "metric", "7"],
        ["default", "via", "inet6", "2001:db8:1::1", "dev", "lan0", "table", "1000"],
        ["blackhole", "203.0.113.128/25"],
    ]
    rules = [
        ["from", "198.51.100.100", "table", "1000", "preference", "100"],
        ["to", "2001:db8:2::/48", "lookup", "1000", "iif", "lan0"],
        ["fwmark", "0x10/0xff", "table", "1000"],
    ]
    specs = [parse_route(r) for r in routes]
    rule_specs = [parse_rule(r) for r in rules]
    async with Netlink() as nl:
        adds = [[await nl.add_route(s), await nl.add_route(s)] for s in specs]
        rule_adds = [[await nl.add_rule(s), await nl.add_rule(s)] for s in rule_specs]
        shown = {"v4": ip("route", "show", "table", "all"), "v6": ip("-6", "route", "show", "table", "1000"),
                 "rules4": ip("rule"), "rules6": ip("-6", "rule")}
        dels = [[await nl.del_route(s), await nl.del_route(s)] for s in specs]
        rule_dels = [[await nl.del_rule(s), await nl.del_rule(s)] for s in rule_specs]
        after = {"v4": ip("route", "show", "table", "all"), "rules4": ip("rule"), "rules6": ip("-6", "rule")}
        try:
            await nl.add_route(parse_route(["10.1.0.0/16", "via", "203.0.113.1"]))  # gateway not on link
            errors = []
        except NetError as exc:
            errors = [error(exc)]
    emit(adds=adds, rule_adds=rule_adds, shown=shown, dels=dels, rule_dels=rule_dels, after=after, errors=errors)


async def cmd_vmac(args) -> None:
    before = {k: open(f"/proc/sys/net/ipv4/conf/lan0/{k}").read().strip() for k in ("arp_ignore", "arp_filter")}
    async with Netlink() as nl:
        vmac = await nl.create_vmac("lan0", "vrrp.51", 51)
        again = await nl.create_vmac("lan0", "vrrp.51", 51)  # adopting our own leftover is fine
        details = ip("-d", "link", "show", "vrrp.51")
        sysctls = {k: open(f"/proc/sys/net/ipv4/conf/vrrp.51/{k}").read().strip()
                   for k in ("arp_ignore", "accept_local", "rp_filter", "promote_secondaries")}
        parent = {k: open(f"/proc/sys/net/ipv4/conf/lan0/{k}").read().strip() for k in ("arp_ignore", "arp_filter")}
        v6 = await nl.create_vmac("lan0", "vrrp6.52", 52, version=6)
        errors = []
        for call in (lambda: nl.create_vmac("lan0", "lan0", 53),  # name taken by a non-macvlan
                     lambda: nl.delete_vmac("lan0")):  # refuses to delete a non-macvlan
            try:
                await call()
            except NetError as exc:
                errors.append(error(exc))
        deleted = [await nl.delete_vmac("vrrp.51"), await nl.delete_vmac("vrrp.51"), await nl.delete_vmac("vrrp6.52")]
        for key, value in vmac.parent_sysctls.items():
            write_sysctl(key, value)
        restored = {k: open(f"/proc/sys/net/ipv4/conf/lan0/{k}").read().strip() for k in ("arp_ignore", "arp_filter")}
        links = ip("-o", "link", "show")
    emit(mac=vmac.mac.hex(), index=vmac.index, again_index=again.index, details=details, sysctls=sysctls,
         parent=parent, before=before, v6_mac=v6.mac.hex(), errors=errors, deleted=deleted, restored=restored,
         links=links, saved=vmac.parent_sysctls)


async def cmd_monitor(args) -> None:
    """Make link and address changes and report the events the monitor saw (bounded)."""
    events = []
    async with LinkMonitor() as monitor, Netlink() as nl:
        spec = parse_address(["198.51.100.77/32"])
        await nl.add_address(spec, "lan0")
        ip("link", "set", "lan0", "down")
        ip("link", "set", "lan0", "up")
        ip("link", "add", "mon0", "link", "lan0", "type", "macvlan", "mode", "bridge")
        ip("link", "set", "mon0", "name", "mon1")
        ip("link", "del", "mon1")
        await nl.del_address(spec, "lan0")
        with anyio.move_on_after(args.timeout):
            async for event in monitor:
                events.append({"type": type(event).__name__, **{k: str(v) for k, v in vars_of(event).items()}})
                if isinstance(event, AddressEvent) and event.kind == "removed" and str(event.address) == "198.51.100.77/32":
                    break
    emit(events=events)


async def cmd_addresses(args) -> None:
    """ha_suspend's address source (pyvrrpd.daemon.lvs.NetlinkAddresses): the initial addresses, then
    a VIP added and removed (bounded)."""
    from pyvrrpd.daemon.lvs import NetlinkAddresses

    events = []
    async with NetlinkAddresses().watch() as watch, Netlink() as nl:
        initial = sorted(str(a) for a in watch.initial)
        spec = parse_address(["198.51.100.78/32"])
        await nl.add_address(spec, "lan0")
        await nl.del_address(spec, "lan0")
        with anyio.move_on_after(args.timeout):
            async for added, address in watch:
                events.append([added, str(address)])
                if not added and str(address) == "198.51.100.78":
                    break
    emit(initial=initial, events=events)


async def cmd_errors(args) -> None:
    """Provoke kernel refusals; each must come back as a NetError with context, never a raw OSError."""
    results = {}
    attempts = {
        "vrrp_socket": lambda: open_vrrp_socket("nosuch0", 4),
        "link_info": lambda: link_info("nosuch0"),
        "packet_sender": lambda: open_packet_sender("nosuch0"),
    }
    for name, call in attempts.items():
        try:
            call()
            results[name] = None
        except NetError as exc:
            results[name] = error(exc)
    async with open_vrrp_socket("lan0", 6, groups=()) as sock, open_packet_sender("lan0") as sender:
        sends = {
            "foreign_source6": lambda: sock.send(bytes(8), "ff02::12", src="2001:db8:9::1"),
            "short_frame": lambda: sender.send(bytes(4)),
            "wrong_family": lambda: sock.send(bytes(8), "224.0.0.18"),
        }
        for name, call in sends.items():
            try:
                await call()
                results[name] = None
            except NetError as exc:
                results[name] = error(exc)
    emit(**results)


def vars_of(obj) -> dict:
    return {name: getattr(obj, name) for name in obj.__slots__}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("recv")
    p.add_argument("ifname")
    p.add_argument("version", type=int)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=5)
    p.add_argument("--unicast", action="store_true")
    p.add_argument("--unjoined", action="store_true")
    p = sub.add_parser("send")
    p.add_argument("ifname")
    p.add_argument("version", type=int)
    p.add_argument("dst")
    p.add_argument("message")
    p.add_argument("--src", type=ipaddress.ip_address)
    p.add_argument("--ttl", type=int, action="append")
    p = sub.add_parser("sniff")
    p.add_argument("ifname")
    p.add_argument("ethertype", type=lambda s: int(s, 0))
    p.add_argument("--contains", type=bytes.fromhex, default=b"")
    p.add_argument("--timeout", type=float, default=5)
    p = sub.add_parser("frame")
    p.add_argument("ifname")
    p.add_argument("frame")
    p = sub.add_parser("linkinfo")
    p.add_argument("ifname")
    for name in ("vips", "routes", "vmac", "errors"):
        sub.add_parser(name)
    for name in ("monitor", "addresses"):
        p = sub.add_parser(name)
        p.add_argument("--timeout", type=float, default=5)
    args = parser.parse_args()
    if args.cmd == "send" and not args.ttl:
        args.ttl = [255]
    try:
        anyio.run(globals()[f"cmd_{args.cmd}"], args, backend="asyncio")
    except NetError as exc:
        emit(neterror=error(exc))
        sys.exit(3)


if __name__ == "__main__":
    main()
