"""A fake kernel for the VRRP subsystem: the whole ``Vrrp.run()`` under the fake clock, without a namespace.

``FakeKernel.install(monkeypatch)`` replaces what ``daemon/vrrp.py`` and ``daemon/port.py`` take from
``pyvrrpd.net`` (netlink, the link monitor, nftables, VRRP sockets, AF_PACKET senders) by recording
stand-ins: every netlink and firewall operation goes into ``calls``, every advert sent into ``sent``
(decoded, with the virtual time), every gratuitous ARP / NA into ``frames``; ``deliver()`` hands a VRRP
packet to the socket of an interface as if it had come from the wire.
"""

from __future__ import annotations

import errno
import ipaddress
import struct
from dataclasses import dataclass
from types import SimpleNamespace

import anyio

from pyvrrpd.core.packet import Advertisement, decode, encode
from pyvrrpd.net.errors import NetError
from pyvrrpd.net.vrrp_socket import Received

ip = ipaddress.ip_address
GROUP4 = ip("224.0.0.18")


@dataclass(frozen=True)
class Sent:
    t: float
    ifname: str
    dst: object
    advert: Advertisement

    @property
    def vrid(self) -> int:
        return self.advert.vrid

    @property
    def priority(self) -> int:
        return self.advert.priority


class FakeSocket:
    def __init__(self, kernel: FakeKernel, ifname: str, family: int, groups, rcvbuf: int) -> None:
        self.kernel, self.ifname, self.version = kernel, ifname, family
        self.ifindex = kernel.links[ifname].index
        self.groups = list(groups)
        self.rcvbuf = rcvbuf
        self.closed = False
        self._tx, self._rx = anyio.create_memory_object_stream(100)

    def join(self, group) -> None:
        self.groups.append(group)

    async def send(self, message: bytes, dst, *, src=None, ttl: int = 255) -> None:
        adv = decode(message, family=self.version, src=src, dst=dst, ttl=ttl, unicast=not dst.is_multicast)
        self.kernel.sent.append(Sent(anyio.current_time(), self.ifname, dst, adv))

    async def receive(self) -> Received:
        try:
            return await self._rx.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise anyio.ClosedResourceError from None

    async def aclose(self) -> None:
        self.closed = True
        self._tx.close()


class FakeNetlink:
    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info) -> None:
        pass

    def forget(self, name=None) -> None:
        pass

    async def interface(self, name: str, exclude=frozenset()):
        self.kernel.calls.append(("read interface", name))
        link = self.kernel.links.get(name)
        if link is None:
            raise NetError("read interface", ifname=name, errno=errno.ENODEV)
        return link

    async def _op(self, op: str, spec) -> bool:
        self.kernel.calls.append((op, str(spec)))
        return True

    async def add_address(self, spec, dev=None):
        return await self._op("add address", spec)

    async def del_address(self, spec, dev=None):
        return await self._op("delete address", spec)

    async def add_route(self, spec):
        return await self._op("add route", spec)

    async def del_route(self, spec):
        return await self._op("delete route", spec)

    async def add_rule(self, spec):
        return await self._op("add rule", spec)

    async def del_rule(self, spec):
        return await self._op("delete rule", spec)


class FakeFirewall:
    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel

    async def open(self) -> None:
        self.kernel.calls.append(("open firewall", ""))

    async def aclose(self) -> None:
        self.kernel.calls.append(("close firewall", ""))

    async def block(self, owner, addresses) -> None:
        self.kernel.calls.append(("block", f"{owner} {sorted(map(str, addresses))}"))

    async def unblock(self, owner) -> None:
        self.kernel.calls.append(("unblock", owner))


class FakeMonitor:
    """The link monitor: no events."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info) -> None:
        pass

    def __aiter__(self):
        return self

    async def __anext__(self):
        await anyio.sleep_forever()


class FakeFrames:
    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel

    def mac(self, ifname: str) -> bytes:
        return bytes.fromhex("020000000011")

    def forwarding(self, ifname: str) -> bool:
        return False

    async def send(self, ifname: str, frame: bytes) -> None:
        self.kernel.frames.append((anyio.current_time(), ifname, frame))

    async def aclose(self) -> None:
        pass


class FakeKernel:
    def __init__(self) -> None:
        self.links = {"lan0": self.link(2, "198.51.100.11", "fe80::11"),
                      "lan1": self.link(3, "203.0.113.11", "fe80::1:11")}
        self.calls: list[tuple[str, str]] = []
        self.sent: list[Sent] = []
        self.frames: list[tuple[float, str, bytes]] = []
        self.sockets: list[FakeSocket] = []

    @staticmethod
    def link(index: int, ipv4: str, ipv6: str):
        return SimpleNamespace(index=index, up=True, running=True, ipv4=ip(ipv4), ipv6_link_local=ip(ipv6),
                               mac=bytes.fromhex("020000000011"))

    def install(self, monkeypatch) -> FakeKernel:
        monkeypatch.setattr("pyvrrpd.daemon.vrrp.Netlink", lambda: FakeNetlink(self))
        monkeypatch.setattr("pyvrrpd.daemon.vrrp.LinkMonitor", FakeMonitor)
        monkeypatch.setattr("pyvrrpd.daemon.vrrp.Firewall", lambda: FakeFirewall(self))
        monkeypatch.setattr("pyvrrpd.daemon.vrrp.FrameSenders", lambda: FakeFrames(self))
        monkeypatch.setattr("pyvrrpd.daemon.port.open_vrrp_socket", self.open_socket)
        return self

    def open_socket(self, ifname: str, version: int, *, groups=None, source=None, rcvbuf: int = 1 << 20):
        sock = FakeSocket(self, ifname, version, groups or (), rcvbuf)
        self.sockets.append(sock)
        return sock

    def open_sockets(self) -> list[tuple[str, int]]:
        return [(s.ifname, s.version) for s in self.sockets if not s.closed]

    def socket(self, ifname: str, family: int = 4) -> FakeSocket:
        [sock] = [s for s in self.sockets if (s.ifname, s.version) == (ifname, family) and not s.closed]
        return sock

    def deliver(self, ifname: str, adv: Advertisement, src: str, dst=GROUP4, ttl: int = 255) -> None:
        """An IPv4 advert from ``src`` arrives on ``ifname``."""
        src, dst = ip(src), ip(dst)
        message = encode(adv, family=4, src=src, dst=dst)
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(message), 0, 0, ttl, 112, 0, src.packed, dst.packed)
        self.socket(ifname)._tx.send_nowait(Received(header + message, src, dst, ttl, self.links[ifname].index))

    def adverts(self, vrid: int, since: float = 0.0) -> list[Sent]:
        return [s for s in self.sent if s.vrid == vrid and s.t >= since]

    def ops(self, since: int = 0) -> list[tuple[str, str]]:
        """Netlink and firewall operations that change something (reads of interfaces left out)."""
        return [c for c in self.calls[since:] if c[0] != "read interface"]
