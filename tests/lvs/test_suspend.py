"""ha_suspend's decision (pyvrrpd.lvs.suspend): which virtual servers' checkers run, from the host's addresses."""

from __future__ import annotations

import ipaddress
import textwrap

from pyvrrpd.config.load import load
from pyvrrpd.daemon.lvs import labelled
from pyvrrpd.lvs.suspend import Change, Suspension, watched_addresses

ip = ipaddress.ip_address
VIP, OTHER = ip("198.51.100.100"), ip("198.51.100.7")


def _config(tmp_path, text: str):
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(text))
    loaded = load(str(path), host_checks=False)
    assert loaded.ok, loaded.diagnostics
    return loaded


def test_watched_addresses_single_group_and_fwmark(tmp_path):
    loaded = _config(tmp_path, """
        virtual_server_group G {
            198.51.100.10-12 80
            fwmark 9
        }
        virtual_server_group H {
            2001:db8::5 443
        }
        virtual_server 198.51.100.100 80 {
            protocol TCP
            ha_suspend
            real_server 203.0.113.1 80 { TCP_CHECK { } }
        }
        virtual_server 198.51.100.101 80 {
            protocol TCP
            real_server 203.0.113.1 80 { TCP_CHECK { } }
        }
        virtual_server group H {
            protocol TCP
            ha_suspend
            real_server 2001:db8::1 443 { TCP_CHECK { } }
        }
        virtual_server fwmark 7 {
            ha_suspend
            real_server 203.0.113.1 80 { TCP_CHECK { } }
        }
        virtual_server group G {
            protocol TCP
            ha_suspend
            real_server 203.0.113.1 80 { TCP_CHECK { } }
        }
    """)
    # fwmark services (and groups with a fwmark) have it cleared, with a warning, as keepalived does
    assert sum("ha_suspend cannot be used with fwmarks" in d.message for d in loaded.diagnostics) == 2
    config = loaded.config
    assert watched_addresses(labelled(config), config.virtual_server_groups) == {
        "[198.51.100.100]:tcp:80": frozenset([VIP]),
        "[H]:0": frozenset([ip("2001:db8::5")]),
    }


def test_suspended_until_the_address_appears_and_again_when_it_goes():
    s = Suspension({"A": frozenset([VIP])}, present=[OTHER])
    assert s.suspended == {"A"} and not s.active("A") and s.active("not watched")
    assert s.address(True, OTHER) == []
    assert s.address(True, VIP) == [Change("A", True)]
    assert s.suspended == frozenset()
    assert s.address(False, VIP) == [Change("A", False)]
    assert s.address(False, VIP) == []  # a removal never seen: no change, no negative count
    assert s.address(True, VIP) == [Change("A", True)]


def test_the_same_address_on_two_interfaces_suspends_only_when_both_are_gone():
    s = Suspension({"A": frozenset([VIP])}, present=[VIP])
    assert s.address(True, VIP) == []  # now on two interfaces
    assert s.address(False, VIP) == []  # one left
    assert s.address(False, VIP) == [Change("A", False)]


def test_any_address_of_a_group_activates_it_and_resync_reports_differences():
    group = frozenset([ip("198.51.100.10"), ip("198.51.100.11")])
    s = Suspension({"G": group, "A": frozenset([VIP])}, present=[VIP])
    assert s.suspended == {"G"}
    assert s.address(True, ip("198.51.100.11")) == [Change("G", True)]
    assert s.address(True, ip("198.51.100.10")) == []
    assert s.address(False, ip("198.51.100.11")) == []
    assert sorted(s.resync([ip("198.51.100.11")]), key=lambda c: c.vs) == [Change("A", False)]
    assert s.suspended == {"A"}
