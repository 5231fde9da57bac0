"""The demo's parts that need no namespace: its configuration and how it reads answers.

The demo itself runs end to end in the kernel VM (tests/kernel/guest/guest_demo.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from pyvrrpd.config.load import load

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf" / "demo" / "keepalived.conf"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("demo_pair", ROOT / "scripts" / "demo_pair.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_pair"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("config_id", "priority"), [("d1", 150), ("d2", 100)])
def test_one_config_for_both_directors(config_id, priority):
    loaded = load(str(CONF), config_id=config_id, host_checks=False)
    assert not [d for d in loaded.diagnostics if d.severity == "error"], loaded.diagnostics
    config = loaded.config
    assert {i.name: i.priority for i in config.instances} == {"VI_FRONT": priority, "VI_BACK": priority}
    assert [vs.lb_kind.value for vs in config.virtual_servers] == ["NAT", "DR"]
    assert len([rs for vs in config.virtual_servers for rs in vs.real_servers]) == 4


def test_answers_are_read_strictly(demo):
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nr1\n"
    assert demo.parse_answer(ok) == ("r1", None)
    for garbage in (b"", b"\x00\xff" * 50, b"HTTP/1.1 404 Not Found\r\n\r\nr1\n", b"HTTP/1.1 200 OK\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\n\r\n<html>" + b"x" * 5000, b"SSH-2.0-OpenSSH\r\n", b"HTTP/1.1 200"):
        server, error = demo.parse_answer(garbage)
        assert server is None and error, garbage


def test_describe(demo):
    answers = [demo.Answer(0.0, "NAT", "r1"), demo.Answer(0.1, "DR", "r2"), demo.Answer(0.2, "NAT", "r2"),
               demo.Answer(0.3, "DR", None, "timeout")]
    assert demo.describe(answers) == "NAT: r1 1, r2 1; DR: r2 1, 1 failed (timeout)"
    assert demo.describe(answers[:3]) == "NAT: r1 1, r2 1; DR: r2 1; none failed"
    assert demo.describe([]) == "NAT: no answer; DR: no answer; none failed"
