"""The model's equality: what a reload compares.

Two loads of one file give equal models (spans and their Source objects take no part in
``==`` and hashing); any changed value makes them unequal.
"""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from pyvrrpd.config import model as m
from pyvrrpd.config.load import load

RICH = """
global_defs {
    router_id director-1
    vrrp_garp_master_repeat 3
}
vrrp_script chk_nginx {
    script "/usr/bin/pgrep nginx"
    interval 2
    weight -20
}
track_file maint {
    file /run/maint
}
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
    track_script {
        chk_nginx
    }
    notify_master "/usr/bin/true group"
    sync_group_tracking_weight
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        198.51.100.1/24 dev lo label lo:1
    }
    virtual_routes {
        203.0.113.0/24 via 198.51.100.254 dev lo
    }
    unicast_peer {
        198.51.100.12 min_ttl 1
    }
    track_interface {
        lan1 weight 10
    }
    track_file {
        maint
    }
    notify_backup "/usr/bin/true backup"
    authentication {
        auth_type PASS
        auth_pass secret
    }
}
vrrp_instance VI_2 {
    interface lo
    virtual_router_id 52
    version 3
    virtual_ipaddress {
        2001:db8::1/64
    }
}
virtual_server_group web {
    198.51.100.20 80
    fwmark 7
}
virtual_server 198.51.100.10 80 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    sorry_server 203.0.113.99 80
    real_server 203.0.113.1 80 {
        weight 2
        HTTP_GET {
            url {
                path /health
                status_code 200-299
            }
            connect_timeout 3
        }
        MISC_CHECK {
            misc_path "/usr/bin/true misc"
        }
    }
    real_server 203.0.113.2 80 {
        TCP_CHECK {
            retry 2
        }
    }
}
"""


def _load(tmp_path, text: str, name: str = "keepalived.conf") -> m.Config:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    loaded = load(str(path), config_id="test", host_checks=False)
    assert loaded.ok, loaded.diagnostics
    return loaded.config


def _objects(value):
    """Every model object inside ``value``, ``value`` included."""
    if isinstance(value, m._Value):
        yield value
        for f in dataclasses.fields(value):
            yield from _objects(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _objects(item)


def test_two_loads_of_one_file_are_equal(tmp_path):
    a = _load(tmp_path, RICH)
    b = _load(tmp_path, RICH)
    assert a.instances[0].span.source is not b.instances[0].span.source  # separate reads
    assert a == b
    assert hash(a) == hash(b)
    for x, y in zip(_objects(a), _objects(b), strict=True):
        assert x == y and hash(x) == hash(y), type(x).__name__
    assert len(list(_objects(a))) > 25  # the config reaches most of the model classes
    classes = {type(o) for o in _objects(a)}
    assert {m.SyncGroup, m.VrrpScript, m.TrackFile, m.Route, m.UnicastPeer, m.HttpCheck, m.MiscCheck,
            m.Url, m.SorryServer, m.VirtualServerGroup} <= classes


def test_the_same_text_elsewhere_and_on_other_lines_is_equal(tmp_path):
    a = _load(tmp_path, RICH)
    moved = "! a comment that moves every line down\n\n" + RICH.replace("    ", "\t")
    b = _load(tmp_path, moved, name="other.conf")
    assert a.instances[0].span.line != b.instances[0].span.line
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize(
    "old, new",
    [
        ("priority 150", "priority 151"),
        ("198.51.100.1/24 dev lo label lo:1", "198.51.100.1/24 dev lo label lo:2"),
        ("lan1 weight 10", "lan1 weight 11"),
        ('notify_backup "/usr/bin/true backup"', 'notify_backup "/usr/bin/true backup2"'),
        ("auth_pass secret", "auth_pass secreT"),
        ("weight -20", "weight -21"),
        ('notify_master "/usr/bin/true group"', 'notify_master "/usr/bin/false group"'),
        ("router_id director-1", "router_id director-2"),
        ("path /health", "path /healthz"),
        ("        weight 2\n", "        weight 3\n"),
        ("retry 2", "retry 3"),
        ("fwmark 7", "fwmark 8"),
    ],
)
def test_a_changed_value_makes_models_unequal(tmp_path, old, new):
    assert RICH.count(old) == 1
    a = _load(tmp_path, RICH)
    b = _load(tmp_path, RICH.replace(old, new), name="changed.conf")
    assert a != b
    assert a.global_defs != b.global_defs or a.instances != b.instances or a.sync_groups != b.sync_groups \
        or a.virtual_servers != b.virtual_servers or a.vrrp_scripts != b.vrrp_scripts \
        or a.virtual_server_groups != b.virtual_server_groups


def test_spans_are_kept_but_not_compared(tmp_path):
    a = _load(tmp_path, RICH)
    inst = a.instances[0]
    elsewhere = dataclasses.replace(inst, span=dataclasses.replace(inst.span, line=inst.span.line + 100))
    assert elsewhere == inst and hash(elsewhere) == hash(inst)
    assert elsewhere.span.line == inst.span.line + 100  # still there for messages
    assert "span=" in repr(inst)
