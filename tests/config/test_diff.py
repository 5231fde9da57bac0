"""Reload diff: instances matched by keepalived's key (VRID, family, interface, unicast-ness, source)."""

import itertools
import tempfile
from pathlib import Path

from pyvrrpd.config.diff import diff_instances
from pyvrrpd.config.load import load

_names = itertools.count()


def _config(body: str):
    with tempfile.TemporaryDirectory() as tmp:  # every config its own file, as a reload reads a new one
        path = Path(tmp) / f"keepalived-{next(_names)}.conf"
        path.write_text(body)
        loaded = load(str(path), host_checks=False)
    assert loaded.ok, loaded.diagnostics
    return loaded.config


def _inst(name, vrid, priority=100, interface="lan0", extra=""):
    return f"""
vrrp_instance {name} {{
    interface {interface}
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        198.51.100.{vrid}/24
    }}
    {extra}
}}
"""


def test_same_text_is_unchanged_even_when_moved_and_commented():
    old = _config(_inst("A", 1) + _inst("B", 2))
    new = _config("! a comment\n\n" + _inst("B", 2) + "\n\n" + _inst("A", 1))
    d = diff_instances(old, new)
    assert d.empty and len(d.unchanged) == 2, d.summary()


def test_changed_removed_added():
    old = _config(_inst("A", 1) + _inst("B", 2) + _inst("C", 3))
    new = _config(_inst("A", 1, priority=150) + _inst("C", 3) + _inst("D", 4))
    d = diff_instances(old, new)
    assert [(o.name, n.priority) for o, n in d.changed] == [("A", 150)]
    assert [i.name for i in d.removed] == ["B"]
    assert [i.name for i in d.added] == ["D"]
    assert [o.name for o, _ in d.unchanged] == ["C"]


def test_renamed_instance_is_matched_by_its_wire_identity():
    d = diff_instances(_config(_inst("OLD", 7)), _config(_inst("NEW", 7)))
    assert [(o.name, n.name) for o, n in d.changed] == [("OLD", "NEW")] and not d.added and not d.removed


def test_new_interface_or_unicast_is_a_new_router():
    d = diff_instances(_config(_inst("A", 1)), _config(_inst("A", 1, interface="lan1")))
    assert [i.interface for i in d.removed] == ["lan0"] and [i.interface for i in d.added] == ["lan1"]
    d = diff_instances(_config(_inst("A", 1)), _config(_inst("A", 1, extra="unicast_peer {\n 198.51.100.9\n }")))
    assert len(d.removed) == 1 and len(d.added) == 1
