"""keepalived 2.2.7 as a peer: the lab's keepalived helper and our receive path against real adverts."""

from __future__ import annotations

import os

import pytest

from tests.net.lab import KEEPALIVED_V2_CONF, start_keepalived, wait_for
from tests.net.packets import ADVERT_V2

pytestmark = [
    pytest.mark.net,
    pytest.mark.interop,
]


def test_keepalived_master_adverts_reach_our_socket(lab, agent):
    listener = agent.start("d2", "recv", "lan0", "4", "--timeout", "10")
    config = KEEPALIVED_V2_CONF.format(node="d1", state="MASTER", vrid=51, priority=150, vip="198.51.100.100/32")
    peer = start_keepalived(lab, "d1", config)
    assert peer.vrrp_pid != peer.process.pid and os.path.exists(f"/proc/{peer.vrrp_pid}")
    # Master_Down_Interval for priority 150 at 1 s adverts is 3.41 s.
    wait_for(lambda: "Entering MASTER STATE" in peer.log_text(), timeout=10, what="keepalived to become MASTER")
    [pkt] = listener.finish(timeout=12)
    payload = bytes.fromhex(pkt["payload"])
    assert (pkt["src"], pkt["dst"], pkt["ttl"]) == ("198.51.100.11", "224.0.0.18", 255)
    assert payload[1] == 0xC0  # TOS as keepalived sends it
    assert payload[20:] == ADVERT_V2  # byte for byte the advert in python-stack.md §9.2
