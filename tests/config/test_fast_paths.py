"""The shortcuts that make a large config quick to check give what the long ways give.

The lexer stores plain lines unsplit and the parser splits them with str.split(); words
and spans are built on first use; lines replayed from a multi-line definition keep one
column for all their characters; the model's repr, == and hash come from one base class
and each model class compiles its __init__ on first use; the builder reads a repeated
checker statement once; LocalHost remembers its answers; load() and the CLI leave the
garbage collector as they found it, and load(keep=...) changes nothing but what is freed.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import pickle
import textwrap

import pytest

from pyvrrpd import cli, collector
from pyvrrpd.config.build import host as host_mod
from pyvrrpd.config import tokens
from pyvrrpd.config import model as m
from pyvrrpd.config.diagnostics import render_all
from pyvrrpd.config.lexer import read_config
from pyvrrpd.config.load import load
from pyvrrpd.config.parser import parse

MIXED = r"""
$IP=198.51.100.9
$RS=\
real_server ${IP} 80 { \
    weight 2 \
    TCP_CHECK { \
        connect_timeout 3 \
    } \
}
global_defs {
    router_id "r 1"   extra words
    notification_email { a@example.org "b c"@example.org }
}
vrrp_script chk { script "/bin/check 'arg two'" root
    interval 2 }
vrrp_instance VI_1 {
    interface lo
	virtual_router_id 51   # a comment
    virtual_ipaddress {
        198.51.100.1/24 dev lo
    }
    notify_master "/bin/true x" root
}
virtual_server ${IP} 80 {
    lb_algo rr
    ~SEQ(n, 1, 3) $RS
    real_server 203.0.113.1 80{
        weight 1
    }
}
"""


def _lines(tmp_path, text: str):
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return read_config(str(path), config_id="test")[0]


def _walk(node):
    for child in node.children:
        yield child
        yield from _walk(child)


def test_plain_lines_split_like_the_full_tokenizer(tmp_path):
    lines = _lines(tmp_path, MIXED)
    plain = [line for line in lines if line._words is None]
    assert len(plain) > len(lines) // 2  # the shortcut is taken for most lines, replayed ones too
    for line in lines:
        full = tokens.split_words(line.text)
        assert [(w.offset, w.text) for w in line.words] == [(start, text) for start, _, text in full]
        for word, (start, end, _) in zip(line.words, full):
            assert word.span == tokens.span_at(line._source, line._lineno, line._cols, start, end)
        assert line.span == line.words[0].span


def test_node_texts_are_the_words_texts(tmp_path):
    root, _ = parse(_lines(tmp_path, MIXED))
    nodes = list(_walk(root))
    assert {n.keyword for n in nodes} >= {"router_id", "script", "notify_master", "real_server", "weight"}
    for node in nodes:
        assert node.texts == tuple(w.text for w in node.words)
        assert node.span == node.words[0].span
        assert node.args == node.words[1:]
        if node.children:
            assert node.end is not None and node.end.line >= node.span.line
    (router_id,) = [n for n in nodes if n.keyword == "router_id"]
    assert router_id.texts == ("router_id", "r 1")  # quotes removed, extra words dropped
    (script,) = [n for n in nodes if n.keyword == "script"]
    assert script.texts == ("script", "/bin/check 'arg two'", "root")


def test_replayed_lines_stand_at_the_reference(tmp_path):
    lines = _lines(tmp_path, "$X=\\\nweight 1 \\\nretry 2\nvirtual_server 198.51.100.1 80 {\n    a $X\n}\n")
    assert [(line.text, [(w.span.line, w.span.col, w.span.end_col) for w in line.words]) for line in lines] == [
        ("virtual_server 198.51.100.1 80", [(4, 1, 15), (4, 16, 28), (4, 29, 31)]),
        ("{", [(4, 32, 33)]),
        ("a weight 1", [(5, 5, 6), (5, 7, 8), (5, 7, 8)]),  # the first line joins the text before $X
        ("retry 2", [(5, 7, 8), (5, 7, 8)]),
        ("}", [(6, 1, 2)]),
    ]


def test_every_sequence_iteration_has_the_same_columns(tmp_path):
    # The body's columns are a list here ($S's value); substituting ${i} must not change
    # the list the next iteration starts from (it did: later words lost their columns).
    lines = _lines(tmp_path, "$S=~SEQ(i,1,3) k${i}xxxxx ${i}\n  $S\n")
    assert [(line.text, [(w.span.col, w.span.end_col) for w in line.words]) for line in lines] == [
        (f"k{i}xxxxx {i}", [(3, 4), (3, 4)]) for i in (1, 2, 3)
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("k $A", ["k x"]),
        ("k ${A}y", ["k xy"]),
        ("k $A, $A)", ["k x, x)"]),
        ("k $Ay", ["k $Ay"]),
        ("k ${A 1}", ["k $", "{", "A 1", "}"]),  # only _RANDOM takes parameters
        ("k ${_RANDOM 7 7}", ["k 7"]),
        ("k ${_RANDOM 7 7 }", ["k $", "{", "_RANDOM 7 7", "}"]),  # a blank after the last number
        ("k ${_RANDOM  }z", ["k 0z"]),
        ("k ${1A}", ["k $", "{", "1A", "}"]),
    ],
)
def test_reference_syntax(tmp_path, line, expected, monkeypatch):
    import random

    monkeypatch.setattr(random, "randint", lambda low, high: low)
    assert [x.text for x in _lines(tmp_path, f"$A=x\n{line}\n")] == expected


def test_model_repr_eq_and_hash_are_dataclass_like():
    span = None
    k = m.TrackKind.INTERFACE
    a = m.Track(kind=k, name="eth0", weight=2, span=span)
    b = m.Track(kind=k, name="eth0", weight=2, span=span)
    assert repr(a) == "Track(kind=<TrackKind.INTERFACE: 'interface'>, name='eth0', weight=2, reverse=False, span=None)"
    assert a == b and hash(a) == hash(b) == hash((k, "eth0", 2, False))  # the span is not compared
    assert a != m.Track(kind=k, name="eth1", weight=2, span=span)
    assert a != m.Track(kind=m.TrackKind.SCRIPT, name="eth0", weight=2, span=span)
    assert a.__eq__((k, "eth0", 2, False, None)) is NotImplemented
    tcp = m.TcpCheck(span=span)
    assert tcp != m.PingCheck(span=span)  # same fields, other class
    assert repr(tcp).startswith("TcpCheck(retry=1, delay_before_retry_us=1000000,")


def test_model_init_is_dataclass_like():
    # ConnectChecker first: its compiled __init__ must not serve its subclasses
    assert m.ConnectChecker(span=None).connect_timeout_us == 5 * m.SECOND
    http = m.HttpCheck(span=None, urls=(), retry=3)
    assert (http.urls, http.retry, http.http_protocol, http.connect_port) == ((), 3, "1.0", None)
    assert type(m.TcpCheck(span=None)) is m.TcpCheck
    c1, c2 = m.Config(), m.Config()
    assert c1 == c2 and c1.global_defs is not c2.global_defs  # default_factory: one each
    k = m.TrackKind.INTERFACE
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'span'"):
        m.Track(kind=k, name="eth0")
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        m.Track(kind=k, name="eth0", span=None, nope=1)
    with pytest.raises(TypeError):
        m.Track(k, "eth0", span=None)  # keyword-only
    t = m.Track(kind=k, name="eth0", weight=2, span=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        del t.weight
    assert dataclasses.replace(t, weight=3) == m.Track(kind=k, name="eth0", weight=3, span=None)
    assert copy.copy(t) == t and pickle.loads(pickle.dumps(t)) == t


def test_repeated_checker_statements_read_alike(tmp_path):
    rs = "    real_server 203.0.113.{n} 80 {{\n        TCP_CHECK {{\n{body}        }}\n    }}\n"
    bad = "            connect_timeout 0\n            retry x\n            connect_port 99999\n"
    good = "            connect_timeout 3\n            retry 2\n            connect_port 81\n            alpha\n"
    text = "virtual_server 198.51.100.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n"
    text += "".join(rs.format(n=n, body=good if n % 2 else bad) for n in range(1, 5)) + "}\n"
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    loaded = load(str(path), host_checks=False)
    checkers = [rs.checkers[0] for rs in loaded.config.virtual_servers[0].real_servers]
    assert [(c.connect_timeout_us, c.retry, c.connect_port, c.alpha) for c in checkers] == [
        (3 * m.SECOND, 2, 81, True), (5 * m.SECOND, 1, None, False)
    ] * 2
    # three messages for each bad checker (the first's and the second's alike), none for the good ones
    reported = [(d.span.line, d.message.split(": ", 2)[1]) for d in loaded.diagnostics if "TCP_CHECK" in d.message]
    assert [line for line, _ in reported] == [15, 16, 17, 30, 31, 32]
    assert {where for _, where in reported} == {"real_server 203.0.113.2 80", "real_server 203.0.113.4 80"}


def test_keep_changes_nothing_but_what_is_freed(tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_text(MIXED)
    kept: list = []
    loaded = load(str(path), config_id="test", host_checks=False, keep=kept)
    assert kept  # the parser's tree and the builder's drafts
    other = load(str(path), config_id="test", host_checks=False)
    assert repr(loaded.config) == repr(other.config) and loaded.config.virtual_servers
    assert render_all(loaded.diagnostics) == render_all(other.diagnostics) and loaded.diagnostics


def test_local_host_asks_the_system_once(monkeypatch):
    asked = []
    real = host_mod.pwd.getpwnam

    def getpwnam(name):
        asked.append(name)
        return real("root")

    monkeypatch.setattr(host_mod.pwd, "getpwnam", getpwnam)
    host = host_mod.LocalHost()
    assert host.user_problem("someone", None) is None
    assert host.user_problem("someone", None) is None
    assert asked == ["someone"]
    assert host_mod.LocalHost().user_problem("someone", None) is None  # a new host asks again
    assert asked == ["someone", "someone"]


@pytest.mark.parametrize("enabled", [True, False])
def test_load_leaves_the_collector_as_it_was(tmp_path, enabled):
    path = tmp_path / "keepalived.conf"
    path.write_text(MIXED)
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        assert load(str(path), config_id="test", host_checks=False).config is not None
        assert gc.isenabled() is enabled
        cli.main(["--check-config", "--no-host-checks", "-f", str(path)])
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_load_keeps_what_the_caller_froze(tmp_path):
    """A running daemon freezes what it keeps (collector.freeze()); a reload must not undo that."""
    path = tmp_path / "keepalived.conf"
    path.write_text(MIXED)
    kept = [[i] for i in range(1000)]  # tracked objects the "daemon" keeps
    was = gc.isenabled()
    gc.enable()
    collector.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)
        assert load(str(path), config_id="test", host_checks=False).config is not None
        # nothing thawed nor frozen by load() (a frozen object that a finaliser of an earlier test frees
        # meanwhile leaves the permanent generation, so the count may only go down by such strays)
        assert frozen - 100 < gc.get_freeze_count() <= frozen
        assert gc.isenabled()
    finally:
        collector.thaw()
        (gc.enable if was else gc.disable)()


def test_load_with_nothing_frozen_leaves_nothing_frozen(tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_text(MIXED)
    was = gc.isenabled()
    gc.enable()
    try:
        assert gc.get_freeze_count() == 0
        assert load(str(path), config_id="test", host_checks=False).config is not None
        assert gc.get_freeze_count() == 0 and gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_load_in_a_worker_thread_while_the_main_thread_runs(tmp_path):
    """Reload runs load() off the event loop: in a thread, with the frozen objects and the
    collector's state as they were once it is done, and the same result as in the main thread."""
    import threading

    path = tmp_path / "keepalived.conf"
    path.write_text(MIXED)
    results = []
    was = gc.isenabled()
    gc.enable()
    collector.freeze()
    try:
        frozen = gc.get_freeze_count()
        worker = threading.Thread(target=lambda: results.append(load(str(path), config_id="test",
                                                                     host_checks=False)))
        worker.start()
        busy = [[i] for i in range(10_000)]  # the main thread makes objects meanwhile
        worker.join(timeout=60)
        assert not worker.is_alive() and len(busy) == 10_000
        assert frozen - 100 < gc.get_freeze_count() <= frozen  # see test_load_keeps_what_the_caller_froze
        assert gc.isenabled()
    finally:
        collector.thaw()
        (gc.enable if was else gc.disable)()
    (loaded,) = results
    here = load(str(path), config_id="test", host_checks=False)
    assert loaded.config == here.config
    assert render_all(loaded.diagnostics) == render_all(here.diagnostics)


def test_reading_leaves_no_reference_cycle(tmp_path):
    """The reader and its macros are freed by refcounting once read_config() returns (a cycle
    would keep them, and every line, until the cyclic collector runs)."""
    path = tmp_path / "keepalived.conf"
    path.write_text(MIXED)
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        lines, diags = read_config(str(path), config_id="test")
        assert lines
        alive = [o for o in gc.get_objects() if type(o).__name__ in ("_Lexer", "Macros")]
        assert alive == []
    finally:
        (gc.enable if was else gc.disable)()


def test_without_text_keeps_the_config_and_drops_the_text(tmp_path):
    """What a running daemon keeps: the same config and diagnostics, FILE:LINE:COL on every span,
    no source lines (also an included file's) and no logical lines."""
    (tmp_path / "inc.conf").write_text("vrrp_script chk {\n    script \"/bin/true\"\n    weight 300\n}\n")
    main = tmp_path / "main.conf"
    main.write_text(f"include {tmp_path / 'inc.conf'}\nglobal_defs {{\n    router_id a\n}}\n")
    loaded = load(str(main), host_checks=False)
    assert loaded.diagnostics and loaded.lines
    kept = loaded.without_text()
    assert kept.config is loaded.config and kept.diagnostics == loaded.diagnostics and kept.lines == ()
    for d in kept.diagnostics:
        assert d.span.source.lines == () and d.span.source.include_chain()[0].source.lines == ()
        assert render_all([d]).startswith(f"{d.span}: ")  # the place, without the excerpt
    assert load(str(main), host_checks=False).lines  # a reload reads the text again
