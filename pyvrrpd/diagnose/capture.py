"""The only I/O of diagnose: capture sockets, ARP / Neighbor Solicitation probes, and a read-only look at
this host's interfaces and addresses (a netlink dump).

Nothing here changes the host, and no VRRP advert is ever sent:

* capture: one scapy ``L2ListenSocket`` per interface (AF_PACKET) with a BPF filter for IP protocol 112,
  ARP and Neighbor Advertisements, never in promiscuous mode. For its lifetime each socket subscribes to
  the two VRRP multicast MAC addresses (``PACKET_ADD_MEMBERSHIP``; the kernel drops the subscription when
  the socket closes), so a NIC that filters multicast still delivers adverts on a host that runs no daemon.
  AF_PACKET sees frames before the firewall does and sees this host's own outgoing adverts too;
* probes, built with scapy: per IPv4 VIP an ARP probe (RFC 5227: sender address 0.0.0.0, so no neighbour
  cache anywhere learns from it), per IPv6 VIP a Neighbor Solicitation from the interface's link-local
  address; each sent twice on an AF_PACKET socket that receives nothing;
* host facts: interfaces, MACs and addresses from one pyroute2 dump.
"""

from __future__ import annotations

import ipaddress
import logging
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pyvrrpd.core.packet import IPAddress
from pyvrrpd.diagnose.analysis import Capture
from pyvrrpd.diagnose.wire import Heard, Observation, parse_frame

BPF = "ip proto 112 or ip6 proto 112 or arp or (icmp6 and ip6[40] == 136)"
VRRP_MACS = (bytes.fromhex("01005e000012"), bytes.fromhex("333300000012"))  # 224.0.0.18, ff02::12
SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_MULTICAST = 263, 1, 0
IFF_UP, IFF_LOOPBACK = 0x1, 0x8
# Links that show copies of another interface's traffic: capturing them too would count adverts twice.
_COPY_KINDS = {"macvlan", "macvtap", "ipvlan", "ipvtap"}
MAX_OBSERVATIONS = 200_000
MAX_PROBES = 1024
PROBE_REPEAT_GAP_S = 0.3
PROBE_WAIT_S = 1.0
SELECT_SLICE_S = 0.25


class CannotRun(Exception):
    """diagnose cannot do its job here; the message says why (exit status 3)."""


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    index: int
    mac: str
    up: bool
    loopback: bool
    kind: str | None
    enslaved: bool  # a bridge or bond member: its traffic shows on the master


@dataclass(frozen=True)
class Host:
    links: dict[str, Link]
    addresses: dict[IPAddress, str]  # address → interface name
    link_local: dict[str, ipaddress.IPv6Address]  # interface → its first IPv6 link-local address

    def default_interfaces(self) -> list[str]:
        return sorted(n for n, link in self.links.items()
                      if link.up and not link.loopback and link.kind not in _COPY_KINDS and not link.enslaved)


def read_host() -> Host:
    """Interfaces and addresses of this network namespace (a read-only netlink dump)."""
    from pyroute2 import IPRoute

    try:
        with IPRoute() as ipr:
            raw_links = list(ipr.get_links())
            raw_addrs = list(ipr.get_addr())
    except OSError as exc:
        raise CannotRun(f"cannot read the interfaces over netlink: {exc}") from None
    links, names = {}, {}
    for msg in raw_links:
        name = msg.get("IFLA_IFNAME")
        info = msg.get("IFLA_LINKINFO")
        links[name] = Link(name, msg["index"], (msg.get("IFLA_ADDRESS") or "").lower(), bool(msg["flags"] & IFF_UP),
                           bool(msg["flags"] & IFF_LOOPBACK), info.get("IFLA_INFO_KIND") if info else None,
                           bool(msg.get("IFLA_MASTER")))
        names[msg["index"]] = name
    addresses: dict[IPAddress, str] = {}
    link_local: dict[str, ipaddress.IPv6Address] = {}
    for msg in raw_addrs:
        text = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
        name = names.get(msg["index"])
        if not text or name is None:
            continue
        addr = ipaddress.ip_address(text)
        addresses.setdefault(addr, name)
        if addr.version == 6 and addr.is_link_local:
            link_local.setdefault(name, addr)  # type: ignore[arg-type]
    return Host(links, addresses, link_local)


class Listener:
    """Capture sockets on some interfaces, and what they saw."""

    def __init__(self, interfaces: Sequence[str], host: Host) -> None:
        logging.getLogger("scapy").setLevel(logging.ERROR)
        try:
            from scapy.arch.linux import L2ListenSocket
            from scapy.config import conf
            from scapy.error import Scapy_Exception
        except ImportError as exc:  # scapy is a dependency; this is a broken installation
            raise CannotRun(f"scapy is not usable: {exc}") from None
        conf.sniff_promisc = False
        self.observations: list[Observation] = []
        self.dropped = 0
        self.slowest_us = 0
        self._socks: dict[object, str] = {}
        try:
            for name in interfaces:
                link = host.links.get(name)
                if link is None:
                    raise CannotRun(f"there is no interface {name!r} here")
                sock = L2ListenSocket(iface=name, filter=BPF, promisc=False)
                self._socks[sock] = name
                for mac in VRRP_MACS:
                    sock.ins.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP,
                                        struct.pack("iHH8s", link.index, PACKET_MR_MULTICAST, 6, mac))
        except PermissionError:
            self.close()
            raise CannotRun("capturing needs root (CAP_NET_RAW); run it with sudo") from None
        except (OSError, Scapy_Exception) as exc:
            self.close()
            raise CannotRun(f"cannot capture: {exc}") from None
        except BaseException:
            self.close()
            raise

    def listen(self, deadline: Callable[[], float]) -> None:
        """Read frames until ``deadline()`` (re-evaluated as intervals are heard) has passed."""
        socks = list(self._socks)
        while (left := deadline() - time.time()) > 0:
            ready, _, _ = select.select(socks, [], [], min(left, SELECT_SLICE_S))
            for sock in ready:
                self._take(sock)

    def _take(self, sock) -> None:
        try:
            _, frame, ts = sock.recv_raw(65535)
        except OSError:
            return
        if not frame:
            return
        obs = parse_frame(frame, self._socks[sock], ts if ts is not None else time.time())
        if obs is None:
            return
        if len(self.observations) >= MAX_OBSERVATIONS:
            self.dropped += 1
            return
        self.observations.append(obs)
        if isinstance(obs, Heard):
            self.slowest_us = max(self.slowest_us, obs.advert.interval_us)

    def close(self) -> None:
        for sock in list(self._socks):
            try:
                sock.close()
            except OSError:
                pass
        self._socks.clear()


def probe_frame(mac: str, vip: IPAddress, link_local: ipaddress.IPv6Address | None) -> bytes | None:
    """The probe for one VIP: an ARP probe (IPv4) or a Neighbor Solicitation (IPv6; None without a
    link-local source address)."""
    from scapy.layers.inet6 import IPv6, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils6 import in6_getnsma, in6_getnsmac

    if vip.version == 4:
        return bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
                     / ARP(op=1, hwsrc=mac, psrc="0.0.0.0", hwdst="00:00:00:00:00:00", pdst=str(vip)))
    if link_local is None:
        return None
    group = in6_getnsma(vip.packed)
    return bytes(Ether(dst=in6_getnsmac(group), src=mac)
                 / IPv6(src=str(link_local), dst=socket.inet_ntop(socket.AF_INET6, group), hlim=255)
                 / ICMPv6ND_NS(tgt=str(vip)) / ICMPv6NDOptSrcLLAddr(lladdr=mac))


def send_frames(frames: Iterable[tuple[str, bytes]]) -> list[str]:
    """Send (interface, frame) pairs; returns the errors as sentences (a probe that fails is a note)."""
    errors, socks = [], {}
    try:
        for name, frame in frames:
            try:
                sock = socks.get(name)
                if sock is None:
                    sock = socks[name] = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                    sock.bind((name, 0))
                sock.send(frame)
            except OSError as exc:
                errors.append(f"probe on {name} failed: {exc}")
    finally:
        for sock in socks.values():
            sock.close()
    return errors


def capture(interfaces: Sequence[str], host: Host, *, duration: float | None,
            listen_for: Callable[[int], float], extra_vips: Iterable[tuple[str, IPAddress]] = ()) -> Capture:
    """Listen (``duration`` seconds, or ``listen_for(slowest interval heard in µs)``), then probe every VIP
    heard or configured on a captured interface, then listen for the answers."""
    notes: list[str] = []
    listener = Listener(interfaces, host)
    try:
        start = time.time()
        if duration is not None:
            listener.listen(lambda: start + duration)
        else:
            listener.listen(lambda: start + listen_for(listener.slowest_us))
        targets = sorted({(h.iface, vip) for h in listener.observations if isinstance(h, Heard)
                          for vip in h.advert.addresses} | {t for t in extra_vips if t[0] in interfaces},
                         key=lambda t: (t[0], t[1].version, t[1]))
        if len(targets) > MAX_PROBES:
            notes.append(f"{len(targets)} VIPs heard; probed the first {MAX_PROBES}")
            targets = targets[:MAX_PROBES]
        probe_start = time.time()
        probed, frames = [], []
        for name, vip in targets:
            link = host.links[name]
            frame = probe_frame(link.mac, vip, host.link_local.get(name))
            if frame is None:
                notes.append(f"{vip} on {name} not probed: {name} has no IPv6 link-local address")
                continue
            probed.append((name, vip))
            frames.append((name, frame))
        if frames:
            notes += send_frames(frames)
            listener.listen(lambda: probe_start + PROBE_REPEAT_GAP_S)
            notes += send_frames(frames)
            listener.listen(lambda: probe_start + PROBE_REPEAT_GAP_S + PROBE_WAIT_S)
        end = time.time()
    finally:
        listener.close()
    if listener.dropped:
        notes.append(f"{listener.dropped} frames not kept (more than {MAX_OBSERVATIONS})")
    return Capture(
        interfaces=tuple(interfaces), start=start, end=end, observations=tuple(listener.observations),
        probe_start=probe_start if probed else None, probed=tuple(probed),
        host_macs={n: link.mac for n, link in host.links.items() if link.mac.strip("0:")},
        host_addresses=dict(host.addresses), notes=tuple(notes))
