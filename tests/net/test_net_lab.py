"""The namespace lab itself: topology, tear-down (also on errors), refusal to reuse names, bounded waits."""

from __future__ import annotations

import os
import time

import pytest

from tests.net.lab import AdvertWatch, Lab, LabError, existing_namespaces, process_alive, sent_by, wait_for
from tests.net.packets import ADVERT_V2


@pytest.mark.net
def test_lab_nodes_reach_each_other(lab):
    assert lab.run("d1", ["ping", "-c", "1", "-W", "2", lab.ipv4("d2")]).returncode == 0
    assert lab.run("d1", ["ping", "-c", "1", "-W", "2", lab.ipv6("d2")]).returncode == 0
    sysctl = lab.run("d2", ["sysctl", "-n", "net.ipv6.conf.all.accept_dad", "net.ipv6.conf.all.keep_addr_on_down"])
    assert sysctl.stdout.split() == ["0", "1"]
    assert "br0" in lab.run("d1", ["ip", "-n", lab.lan, "link", "show", "br0"]).stdout


@pytest.mark.net
def test_the_advert_watch_sees_a_unicast_advert_between_two_nodes(lab, agent):
    """On the bridge, in promiscuous mode: a frame from d1 to d2's MAC is seen too, with its fields."""
    watch = AdvertWatch(lab)
    since = time.time()
    agent.run("d1", "send", "lan0", "4", lab.ipv4("d2"), ADVERT_V2.hex())
    advert = watch.wait("d1's advert", sent_by("d1"), since=since, timeout=5)
    assert (advert.mac, advert.src, advert.version, advert.vrid, advert.prio) == (
        lab.mac("d1"), lab.ipv4("d1"), 2, 51, 150)
    assert since <= advert.t <= time.time()
    assert watch.first(sent_by("d2"), since=0) is None


@pytest.mark.net
def test_teardown_kills_processes_and_deletes_namespaces_even_on_error(tmp_path):
    prefix = f"pv{os.getpid()}t"
    with pytest.raises(RuntimeError, match="boom"):
        with Lab({"d1": 11, "d2": 12}, workdir=tmp_path, prefix=prefix) as lab:
            plain = lab.spawn("d1", ["sleep", "30"], tmp_path / "plain.log")
            daemon = lab.spawn("d2", ["sleep", "30"], tmp_path / "daemon.log", daemon=True)
            # A grandchild the lab did not start itself is still found through `ip netns pids`.
            lab.run("d2", ["sh", "-c", "setsid sleep 30 </dev/null >/dev/null 2>&1 &"])
            orphans = wait_for(lambda: lab._netns_pids(lab.ns("d2")) - {daemon.pid}, timeout=5, what="orphan")
            raise RuntimeError("boom")
    assert not [ns for ns in existing_namespaces() if ns.startswith(prefix)]
    assert plain.returncode is not None and daemon.returncode is not None
    assert not any(process_alive(pid) for pid in orphans)


@pytest.mark.net
def test_lab_refuses_existing_namespace_names(lab, tmp_path):
    with pytest.raises(LabError, match="already exist"):
        with Lab({"d1": 11}, workdir=tmp_path / "second", prefix=lab.prefix):
            pass
    assert {lab.lan, lab.ns("d1"), lab.ns("d2")} <= existing_namespaces()  # the first lab is untouched


def test_wait_for_is_bounded():
    calls = []
    with pytest.raises(TimeoutError, match="the impossible"):
        wait_for(lambda: calls.append(1), timeout=0.2, interval=0.05, what="the impossible")
    assert len(calls) <= 0.2 / 0.05 + 1
    assert wait_for(lambda: 42, timeout=1) == 42


def test_wait_for_says_what_it_saw():
    with pytest.raises(TimeoutError, match=r"^timed out after 0.1 s waiting for the VIP; seen: nothing$"):
        wait_for(lambda: None, timeout=0.1, what="the VIP", detail=lambda: "seen: nothing")


def test_lab_rejects_bad_node_names(tmp_path):
    with pytest.raises(LabError):
        Lab({"toolongname": 11}, workdir=tmp_path)
    with pytest.raises(LabError):
        Lab({"d1": 255}, workdir=tmp_path)
    with pytest.raises(LabError, match="not 'lan'"):
        Lab({"lan": 11}, workdir=tmp_path)  # the bridge namespace's name
