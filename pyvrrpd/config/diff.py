"""What a reload changes: a pure diff of two configuration models.

keepalived matches a new ``vrrp_instance`` to a running one by what identifies the virtual router on the
wire -- VRID, address family, interface, unicast or multicast, and the configured source address -- not by
name (reference facts §3.3). pyvrrpd does the same, so renaming an instance keeps its state, and an instance
whose key changed is a removal plus an addition, as in keepalived.

The model compares by value and leaves spans out of equality, so an instance whose text moved in the file
(or whose comments changed) is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyvrrpd.config import model

InstanceKey = tuple[int, int, str | None, bool, object]


def instance_key(inst: model.VrrpInstance) -> InstanceKey:
    return (inst.vrid, inst.family, inst.interface, bool(inst.unicast_peers), inst.src_ip)


@dataclass(frozen=True, slots=True)
class InstanceDiff:
    unchanged: tuple[tuple[model.VrrpInstance, model.VrrpInstance], ...]  # (old, new), equal values
    changed: tuple[tuple[model.VrrpInstance, model.VrrpInstance], ...]  # (old, new), same key, new values
    removed: tuple[model.VrrpInstance, ...]
    added: tuple[model.VrrpInstance, ...]

    @property
    def empty(self) -> bool:
        return not (self.changed or self.removed or self.added)

    def summary(self) -> str:
        return (f"{len(self.unchanged)} unchanged, {len(self.changed)} changed, {len(self.removed)} removed, "
                f"{len(self.added)} added")


def diff_instances(old: model.Config, new: model.Config) -> InstanceDiff:
    before = {instance_key(i): i for i in old.instances}
    unchanged, changed, added = [], [], []
    seen = set()
    for inst in new.instances:
        key = instance_key(inst)
        prev = before.get(key)
        if prev is None or key in seen:
            added.append(inst)
            continue
        seen.add(key)
        (unchanged if prev == inst else changed).append((prev, inst))
    removed = [i for k, i in before.items() if k not in seen]
    return InstanceDiff(tuple(unchanged), tuple(changed), tuple(removed), tuple(added))
