"""The config's vrrp_instances as diagnose compares them with what is on the wire (pure).

Only what an advert carries, plus the priority: version, interval, authentication, advertised VIPs (not
``virtual_ipaddress_excluded``), the VRRPv3-over-IPv4 checksum form, and the VRID, interface and family
that place the instance on the segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyvrrpd.config import model
from pyvrrpd.core.packet import ChecksumForm, IPAddress

AUTH_NONE, AUTH_PASS, AUTH_AH = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Expected:
    """One configured instance: what its adverts carry when this host is master."""

    name: str
    iface: str
    family: int
    vrid: int
    version: int
    priority: int
    interval_us: int
    auth_type: int = AUTH_NONE  # v2 only
    auth_data: bytes = bytes(8)  # the 8 bytes a PASS advert carries
    vips: frozenset[IPAddress] = frozenset()
    checksum_form: ChecksumForm | None = None  # v3 over IPv4 only

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.iface, self.family, self.vrid)


def expected_instances(config: model.Config) -> tuple[list[Expected], list[str]]:
    """Every instance with an interface, and a note for each one left out."""
    out, notes = [], []
    gd = config.global_defs
    for inst in config.instances:
        if inst.interface is None:
            notes.append(f"vrrp_instance {inst.name} has no interface: not compared")
            continue
        auth_type, auth_data = AUTH_NONE, bytes(8)
        if inst.version == 2 and inst.auth_type is model.AuthType.PASS:
            auth_type, auth_data = AUTH_PASS, (inst.auth_pass or "").encode()[:8].ljust(8, b"\0")
        elif inst.version == 2 and inst.auth_type is model.AuthType.AH:
            auth_type = AUTH_AH
        form = None
        if inst.version == 3 and inst.family == 4:
            message = inst.v3_checksum_as_v2 or gd.v3_checksum_as_v2
            form = ChecksumForm.MESSAGE if message else ChecksumForm.PSEUDO_HEADER
        out.append(Expected(
            name=inst.name, iface=inst.interface, family=inst.family, vrid=inst.vrid, version=inst.version,
            priority=inst.priority, interval_us=inst.advert_int_us, auth_type=auth_type, auth_data=auth_data,
            vips=frozenset(v.address.ip for v in inst.vips), checksum_form=form,
        ))
    return out, notes
