"""keepalived 2.2.7's config reading stage: pyvrrpd.config.lexer.

The "verified" cases are keepalived 2.2.7 behaviour observed with ``keepalived -t``
(reference facts §1.2-1.7); the rest follow lib/parser.c's rules.
"""

from __future__ import annotations

import os
import stat
import tempfile

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pyvrrpd.config import lexer, macros
from pyvrrpd.config.diagnostics import Severity, Source, Span, render
from pyvrrpd.config.lexer import Line, Word, default_config_id, dump_lines, read_config

CASES = os.path.join(os.path.dirname(__file__), "cases", "lexer")


def write(path, content) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return str(path)


def lex(tmp_path, content, *, config_id="main", name="keepalived.conf", **kw):
    return read_config(write(tmp_path / name, content), config_id=config_id, **kw)


def texts(lines) -> list[str]:
    return [line.text for line in lines]


def words(lines) -> list[list[str]]:
    return [[w.text for w in line.words] for line in lines]


def messages(diags, severity=None) -> list[str]:
    return [d.message for d in diags if severity is None or d.severity is severity]


def ok(tmp_path, content, **kw) -> list[str]:
    """Texts of a config that must read without any diagnostic."""
    lines, diags = lex(tmp_path, content, **kw)
    assert diags == [], [render(d) for d in diags]
    return texts(lines)


# --- comments (facts §1.2) ------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("auth_pass k@l!ve1", ["auth_pass", "k@l"]),  # verified
        ("kw_hash_mid#comment", ["kw_hash_mid"]),  # verified
        # keepalived 2.2.7 has no \\! / \\# escape (newer versions do): the comment starts at the
        # backslash. Verified with 2.2.7: `vrrp_instance A\\!B {` names the instance `A`.
        ("kw a\\!b", ["kw", "a"]),
        ("kw a\\#b", ["kw", "a"]),
        ('kw "q!uoted"', ["kw", "q!uoted"]),  # verified
        ('kw "a # b" c # d', ["kw", "a # b", "c"]),
        ("kw 'single quoted kw'", ["kw", "'single", "quoted", "kw'"]),  # verified
        ('kw "\\#"', ["kw", "\\#"]),  # no unescaping inside quotes
        ("kw \\", ["kw\\"]),  # verified: no general line continuation
        ("kw # comment \\", ["kw\\"]),  # keepalived's decomment() sees the final \ too
        ("interface eth0; virtual_router_id 5", ["interface", "eth0;", "virtual_router_id", "5"]),
        ('ab"cd ef"gh', ["ab", "cd ef", "gh"]),
        ("a\u00a0b\tc\fd\ve", ["a\u00a0b", "c", "d", "e"]),  # only keepalived's whitespace splits
    ],
)
def test_comments_and_words(tmp_path, line, expected):
    lines, diags = lex(tmp_path, line + "\n")
    assert diags == []
    assert words(lines) == [expected]


def test_comment_and_blank_lines_are_dropped(tmp_path):
    assert ok(tmp_path, "! header\n\n   \n# x\n\t! y\nkw 1 ! c\n") == ["kw 1"]


def test_unterminated_quote_is_an_error_and_the_line_is_kept(tmp_path):
    lines, diags = lex(tmp_path, 'notify "abc\nnext 1\n')
    assert texts(lines) == ['notify "abc', "next 1"]
    assert [(d.severity, d.message, d.span.line) for d in diags] == [
        (Severity.ERROR, "Unterminated quote 'notify \"abc'", 1)
    ]
    assert words(lines)[0] == ["notify"]  # keepalived's tokenizer stops at the unmatched quote


# --- braces (facts §1.3) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "content, expected",
    [
        ("real_server 10.0.0.1 80{\n", ["real_server 10.0.0.1 80", "{"]),
        ("x { y }\n", ["x", "{", "y", "}"]),
        ("global_defs { router_id R1 }\n", ["global_defs", "{", "router_id R1", "}"]),
        ("virtual_ipaddress {\n  198.51.100.100\n}\n", ["virtual_ipaddress", "{", "198.51.100.100", "}"]),
        ('kw "{a}" {\n', ['kw "{a}"', "{"]),
        ("a{b}c\n", ["a", "{", "b", "}", "c"]),
        ("}}{{\n", ["}", "}", "{", "{"]),
        ("{ include_check\n", ["{", "include_check"]),
        ('notify "x {" y }\n', ['notify "x {" y', "}"]),
    ],
)
def test_braces_become_lines_of_their_own(tmp_path, content, expected):
    assert ok(tmp_path, content) == expected


def test_many_braces_on_one_line(tmp_path):
    assert ok(tmp_path, "{" * 500 + "\n") == ["{"] * 500


def test_spans_and_offsets(tmp_path):
    lines, _ = lex(tmp_path, '  priority\t 100\n    notify "a b" x {\n')
    (prio, hundred), (notify, quoted, x), (brace,) = (line.words for line in lines)
    assert (prio.span.line, prio.span.col, prio.span.end_col) == (1, 3, 11)
    assert (hundred.span.col, hundred.offset) == (13, 10)
    assert lines[0].text[hundred.offset :] == "100"
    assert (notify.span.line, notify.span.col) == (2, 5)
    assert (quoted.text, quoted.span.col, quoted.span.end_col, quoted.offset) == ("a b", 12, 17, 7)
    assert (x.span.col, brace.span.col) == (18, 20)
    assert lines[1].span == notify.span
    assert lines[0].first == "priority"
    assert prio.span.source.display == str(tmp_path / "keepalived.conf")


def test_columns_survive_unescaping_and_conditionals(tmp_path):
    lines, _ = lex(tmp_path, "@main  kw \"a#b\" c\n")
    kw, ab, c = lines[0].words
    assert [w.text for w in lines[0].words] == ["kw", "a#b", "c"]
    assert (kw.span.col, ab.span.col, c.span.col) == (8, 11, 17)


# --- script words (facts §1.2) ------------------------------------------------------


def line_of(tmp_path, content) -> Line:
    lines, diags = lex(tmp_path, content)
    assert len(lines) == 1, texts(lines)
    return lines[0]


def test_script_words_quotes_and_escapes(tmp_path):
    line = line_of(tmp_path, "script \"a\\tb\" '\\x41\\102\\cA' x\\ y 'it''s' \"\\\"q\\\"\" \\E\\z\n")
    assert [w.text for w in line.script_words(1)] == ["a\tb", "AB\x01", "x y", "its", '"q"', "\x1bz"]
    assert line.script_problem(1) is None


def test_script_words_keep_double_quoted_command_whole(tmp_path):
    line = line_of(tmp_path, "notify_master \"/usr/bin/env NODE=Am /path/notify.sh arg1 'arg two'\" root grp\n")
    script = line.script_words(1)
    assert [w.text for w in script] == ["/usr/bin/env NODE=Am /path/notify.sh arg1 'arg two'", "root", "grp"]
    assert [w.span.col for w in script] == [15, line.text.index(" root") + 2, line.text.index("grp") + 1]
    assert line.script_words(9) == ()


def test_script_problems(tmp_path):
    line = line_of(tmp_path, "script \"/bin/x 'a\"\n")
    assert [w.text for w in line.script_words(1)] == ["/bin/x 'a"]  # lenient
    assert line.script_problem(1) is None  # inside "...", ' is an ordinary character
    line = line_of(tmp_path, "script /bin/x 'a b\n")
    assert [w.text for w in line.script_words(1)] == ["/bin/x", "a b"]
    problem = line.script_problem(1)
    assert problem.severity is Severity.ERROR and "missing terminating '" in problem.message
    assert problem.span.col == 15


# --- includes (facts §1.4) ----------------------------------------------------------


def test_include_is_relative_to_the_including_file(tmp_path):
    main = write(tmp_path / "etc" / "keepalived.conf", "a 1\ninclude inc/a.conf\nz 9\n")
    write(tmp_path / "etc" / "inc" / "a.conf", "b 2\ninclude sub/b.conf\n")
    write(tmp_path / "etc" / "inc" / "sub" / "b.conf", "c 3\n")
    write(tmp_path / "etc" / "sub" / "b.conf", "wrong 1\n")  # what a cwd-relative reader would open
    lines, diags = read_config(main, config_id="main")
    assert diags == []
    assert texts(lines) == ["a 1", "b 2", "c 3", "z 9"]
    c = lines[2].span
    assert c.source.display == os.path.join(str(tmp_path / "etc"), "inc", "sub", "b.conf")
    assert [str(s) for s in c.source.include_chain()] == [f"{tmp_path}/etc/inc/a.conf:2:1", f"{main}:2:1"]


def test_include_display_paths_are_joined_to_the_main_files_as_given(tmp_path, monkeypatch):
    write(tmp_path / "conf" / "k.conf", "include ../other/x.conf\n")
    write(tmp_path / "other" / "x.conf", "kw 1\n")
    monkeypatch.chdir(tmp_path)
    lines, diags = read_config("conf/k.conf", config_id="main")
    assert diags == []
    assert lines[0].span.source.display == "other/x.conf"
    assert lines[0].span.source.path == str(tmp_path / "other" / "x.conf")


def test_include_inside_a_block_and_variants(tmp_path):
    write(tmp_path / "vi.conf", "priority 100\n")
    content = "vrrp_instance VI_1 {\n    includea vi.conf\n    includer vi.conf\n}\n"
    assert ok(tmp_path, content) == ["vrrp_instance VI_1", "{", "priority 100", "priority 100", "}"]


def test_glob_and_brace_expansion_order(tmp_path):
    for name in ("b.conf", "a.conf", "c.conf", ".hidden.conf"):
        write(tmp_path / "d" / name, f"file {name}\n")
    assert ok(tmp_path, "include d/*.conf\n") == ["file a.conf", "file b.conf", "file c.conf"]
    assert ok(tmp_path, "include d/{c,a}.conf\n") == ["file c.conf", "file a.conf"]
    assert ok(tmp_path, "include d/{{b,c},a}.co{n}f\n") == ["file b.conf", "file c.conf", "file a.conf"]


def test_backslash_escapes_in_include_names(tmp_path):
    write(tmp_path / "a b.conf", "ab 1\n")
    write(tmp_path / "x*.conf", "star 1\n")
    write(tmp_path / "xy.conf", "xy 1\n")
    assert ok(tmp_path, "include a\\ b.conf\ninclude x\\*.conf\ninclude x\\*.c?nf\n") == ["ab 1", "star 1", "star 1"]


def test_brace_expansion():
    assert lexer._brace_expand("a{b,c}d{1,2}") == ["abd1", "abd2", "acd1", "acd2"]
    assert lexer._brace_expand("{foo/{,cat,dog},bar}") == ["foo/", "foo/cat", "foo/dog", "bar"]
    assert lexer._brace_expand("x{y") == ["x{y"]
    assert lexer._brace_expand("x\\{a,b}") == ["x\\{a,b}"]
    with pytest.raises(lexer._TooManyAlternatives):
        lexer._brace_expand("{a,b}" * 11)


def test_missing_include_is_a_warning_for_plain_include(tmp_path):
    lines, diags = lex(tmp_path, "a 1\ninclude missing.conf\nb 2\n")
    assert texts(lines) == ["a 1", "b 2"]
    assert [(d.severity, d.message, d.span.line) for d in diags] == [
        (Severity.WARNING, "Config files missing 'missing.conf'.", 2)
    ]


def test_missing_include_is_an_error_for_checking_variants(tmp_path):
    for keyword in ("includem", "includea"):
        _, diags = lex(tmp_path, f"{keyword} missing.conf\n")
        assert [(d.severity, d.message) for d in diags] == [(Severity.ERROR, "Config files missing 'missing.conf'.")]
    _, diags = lex(tmp_path, "includer missing.conf\n")  # verified: includer only checks what matched
    assert [d.severity for d in diags] == [Severity.WARNING]
    _, diags = lex(tmp_path, "include missing.conf\n", include_check="")  # keepalived -e
    assert [d.severity for d in diags] == [Severity.ERROR]
    _, diags = lex(tmp_path, 'include "quoted.conf"\n')
    assert diags[0].notes == ("quotes are not removed from include file names",)


def test_wildcard_and_brace_checks(tmp_path):
    write(tmp_path / "d" / "a.conf", "a 1\n")
    _, diags = lex(tmp_path, "include d/*.cnf\n")
    assert [(d.severity, d.message) for d in diags] == [(Severity.NOTE, "No config files matched 'd/*.cnf'.")]
    _, diags = lex(tmp_path, "includew d/*.cnf\n")
    assert [d.severity for d in diags] == [Severity.ERROR]
    _, diags = lex(tmp_path, "includem d/*.cnf\n")  # match: only when no wildcard is used
    assert [d.severity for d in diags] == [Severity.NOTE]
    _, diags = lex(tmp_path, "includem nodir/*.conf\n")
    assert messages(diags, Severity.ERROR) == ["Config files missing 'nodir/*.conf'."]
    lines, diags = lex(tmp_path, "include d/{a,b}.conf\n")
    assert texts(lines) == ["a 1"]
    assert [(d.severity, d.message) for d in diags] == [(Severity.WARNING, "Some config files missing: 'd/{a,b}.conf'.")]
    lines, diags = lex(tmp_path, "includeb d/{a,b}.conf\n")
    assert texts(lines) == [] and [d.severity for d in diags] == [Severity.ERROR]
    _, diags = lex(tmp_path, "includem d/{x,y}.conf\n")  # all missing, braces: only brace_match cares
    assert [d.severity for d in diags] == [Severity.WARNING]


def test_directories_and_executables_are_skipped(tmp_path):
    write(tmp_path / "d" / "sub" / "x.conf", "x 1\n")
    exe = write(tmp_path / "d" / "run.conf", "run 1\n")
    os.chmod(exe, 0o755)
    write(tmp_path / "d" / "z.conf", "z 1\n")
    lines, diags = lex(tmp_path, "include d/*\n")
    assert texts(lines) == ["z 1"]
    assert [(d.severity, d.message) for d in diags] == [
        (Severity.WARNING, f"Configuration file '{tmp_path}/d/run.conf' is executable - skipping"),
        (Severity.WARNING, f"Configuration file '{tmp_path}/d/sub' is a directory - skipping"),
    ]
    _, diags = lex(tmp_path, "includer d/*\n")
    assert [d.severity for d in diags] == [Severity.ERROR, Severity.ERROR]


def test_include_loop_is_an_error_showing_the_chain(tmp_path):
    a = write(tmp_path / "a.conf", "a 1\ninclude b.conf\n")
    write(tmp_path / "b.conf", "b 1\ninclude a.conf\nb 2\n")
    lines, diags = read_config(a, config_id="main")
    assert texts(lines) == ["a 1", "b 1", "b 2"]
    assert [(d.severity, d.message) for d in diags] == [
        (Severity.ERROR, f"include loop: {a} includes {tmp_path}/b.conf includes {tmp_path}/a.conf")
    ]
    assert diags[0].span.source.display == f"{tmp_path}/b.conf" and diags[0].span.line == 2


def test_a_glob_matching_the_including_file_is_a_loop(tmp_path):
    write(tmp_path / "other.conf", "o 1\n")
    lines, diags = lex(tmp_path, "include *.conf\n", name="k.conf")
    assert texts(lines) == ["o 1"]
    assert [d.message.split(":")[0] for d in diags] == ["include loop"]


def test_include_depth_is_limited(tmp_path):
    for i in range(40):
        write(tmp_path / f"f{i}.conf", f"level {i}\ninclude f{i + 1}.conf\n")
    lines, diags = read_config(str(tmp_path / "f0.conf"), config_id="main")
    assert len(lines) == lexer.MAX_INCLUDE_DEPTH
    assert [d.severity for d in diags] == [Severity.ERROR]
    assert "nested more than 32 deep" in diags[0].message


def test_same_file_twice_is_not_a_loop(tmp_path):
    write(tmp_path / "x.conf", "x 1\n")
    assert ok(tmp_path, "include x.conf\ninclude {x,x}.conf\n") == ["x 1"] * 3


def test_include_is_detected_before_conditionals_and_substitution(tmp_path):
    write(tmp_path / "x.conf", "x 1\n")
    lines, diags = lex(tmp_path, "$INC=include x.conf\n@main include x.conf\n$INC\n")
    assert texts(lines) == []
    assert [d.severity for d in diags] == [Severity.WARNING, Severity.WARNING]
    assert diags[0].message == "include is only recognised at the start of a line - ignoring"


def test_include_file_name_gets_parameter_substitution(tmp_path):
    # keepalived 2.2.7 reads `include ${_PWD}/conf-1708.d/*.conf` (corpus 1708.conf)
    write(tmp_path / "conf.d" / "a.conf", "a 1\n")
    lines, diags = lex(tmp_path, "$D=conf.d\ninclude ${_PWD}/${D}/*.conf\ninclude $D /a.conf\n")
    assert texts(lines) == ["a 1"]
    assert messages(diags) == ["Config files missing 'conf.d /a.conf'."]  # the rest of the line is the name


def test_include_check_keyword_applies_to_later_includes_of_that_file(tmp_path):
    write(tmp_path / "g.conf", "include_check match\ninclude nothere1.conf\n")
    lines, diags = lex(tmp_path, "include missing0.conf\ninclude g.conf\ninclude missing2.conf\n")
    assert texts(lines) == ["include_check match"]
    assert [(d.severity, d.span.line) for d in diags] == [
        (Severity.WARNING, 1),
        (Severity.ERROR, 2),  # inside g.conf
        (Severity.WARNING, 3),  # keepalived restores the level at the end of the include
    ]
    _, diags = lex(tmp_path, "include_check +match -read bogus\ninclude missing.conf\n")
    assert messages(diags) == [
        "Duplicate include_check 'bogus' specified - ignoring",
        "Config files missing 'missing.conf'.",
    ]
    assert diags[1].severity is Severity.ERROR


def test_include_check_parameter(tmp_path):
    _, diags = lex(tmp_path, "include missing.conf\n", include_check="readable +match")
    assert [d.severity for d in diags] == [Severity.ERROR]
    _, diags = lex(tmp_path, "include missing.conf\n", include_check="match")
    assert [d.severity for d in diags] == [Severity.ERROR]
    _, diags = lex(tmp_path, "include missing.conf\n", include_check="wildcard_match")
    assert [d.severity for d in diags] == [Severity.WARNING]
    _, diags = lex(tmp_path, "kw 1\n", include_check="nonsense")
    assert [(d.severity, d.span) for d in diags] == [(Severity.WARNING, None)]


# --- $NAME definitions (facts §1.5) ---------------------------------------------------


def test_definitions(tmp_path):
    content = (
        "$IF=eth0\n"
        "$EMPTY=\n"
        "interface $IF\n"
        "list $IF,$IF) ${IF}x [$EMPTY]\n"
        "not $IFx $IF_ $UNDEFINED_XYZ $ $9\n"  # verified: undefined stays literal
        "$IF=eth1\n"
        "interface $IF\n"
        "$A =1\n"
    )
    assert ok(tmp_path, content) == [
        "interface eth0",
        "list eth0,eth0) eth0x [$EMPTY]",
        "not $IFx $IF_ $UNDEFINED_XYZ $ $9",
        "interface eth1",
        "$A =1",
    ]


def test_empty_definition(tmp_path):
    assert ok(tmp_path, "$E=\nkw x$E\nkw y ${E}\n") == ["kw x", "kw y"]


def test_undefined_braced_name_is_split_at_its_braces(tmp_path):
    # the braces of a ${NAME} left in place are block braces to keepalived's read_line()
    assert ok(tmp_path, "kw ${UNDEF}x\n") == ["kw $", "{", "UNDEF", "}", "x"]


def test_expansion_is_lazy_and_recursive(tmp_path):
    content = (
        "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n"
        "$ADDRESS_BASE_SUB=0\n"
        "${ADDRESS_BASE}.100/32\n"
        "$ADDRESS_BASE_SUB=10\n"
        "${ADDRESS_BASE}.100/32\n"
    )
    assert ok(tmp_path, content) == ["10.2.0.100/32", "10.2.10.100/32"]


def test_conditionals_combine_with_definitions(tmp_path):
    content = "@main $PRIORITY=240\n@backup $PRIORITY=200\npriority $PRIORITY\n$IF_MAIN=@main\n$IF_MAIN advert 1\n"
    assert ok(tmp_path, content) == ["priority 240", "advert 1"]
    assert ok(tmp_path, content, config_id="backup") == ["priority 200"]


def test_hash_and_bang(tmp_path):
    content = 'kwA ${_HASH}\nkwB "${_HASH}" "${_BANG}x" y${_BANG}z\nkwC $_HASH\n'
    assert ok(tmp_path, content) == ["kwA", 'kwB "#" "!x" y', "kwC"]  # verified: kwA


def test_text_is_decommented_again_after_substitution(tmp_path):
    assert ok(tmp_path, '$X=1\nkw "a${_HASH}b"\nkw a${_HASH}b $X\n') == ['kw "a#b"', "kw a"]


def test_builtins(tmp_path, monkeypatch):
    sub = tmp_path / "sub"
    write(sub / "inc.conf", "pwd ${_PWD}\n")
    content = "r ${_RANDOM 5 5}\nr2 ${_RANDOM}\npwd ${_PWD}\ninst ${_INSTANCE} $_INSTANCE\ninclude sub/inc.conf\n"
    lines, diags = lex(tmp_path, content, config_id="lb1")
    assert diags == []
    r, r2, pwd, inst, inc = texts(lines)
    assert r == "r 5"  # verified
    assert 0 <= int(r2.split()[1]) <= 32767
    assert pwd == f"pwd {os.path.realpath(tmp_path)}"
    assert inst == "inst lb1 lb1"
    assert inc == f"pwd {os.path.realpath(sub)}"
    monkeypatch.setattr(lexer, "default_config_id", lambda: "fromhost")
    assert ok(tmp_path, "@fromhost kw ${_INSTANCE}\n", config_id=None) == ["kw fromhost"]


def test_default_config_id_is_the_short_host_name():
    assert default_config_id() and "." not in default_config_id()


def test_random_with_bad_parameters(tmp_path):
    lines, diags = lex(tmp_path, "r ${_RANDOM 7 3}\nr ${_RANDOM 1 1 1}\nr ${_RANDOM 1 }\nr ${_HASH 1}\n")
    assert texts(lines) == ["r 7", "r 1", "r $", "{", "_RANDOM 1", "}", "r $", "{", "_HASH 1", "}"]
    assert [d.severity for d in diags] == [Severity.WARNING, Severity.WARNING]


def test_env_is_not_a_builtin_in_2_2_7(tmp_path):
    lines, diags = lex(tmp_path, "env ${_ENV HOME}\n")
    assert texts(lines) == ["env $", "{", "_ENV HOME", "}"]
    assert [(d.severity, d.span.col) for d in diags] == [(Severity.NOTE, 5)]


def test_builtins_can_be_redefined(tmp_path):
    assert ok(tmp_path, "$_HASH=h\n$_RANDOM=7\nkw ${_HASH} ${_RANDOM}\n") == ["kw h 7"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "content, chain",
    [
        ("$IF=$IF\ninterface $IF\n", "$IF -> $IF"),  # 2.2.7 hangs (corpus 1719.conf, 1996.conf)
        ("$IF=${IF}\ninterface ${IF}\n", "$IF -> $IF"),
        ("$A=$B\n$B=x $A\nkw $A\n", "$A -> $B -> $A"),
        ("$A=\\\nline $B\n\n$B=\\\nother $A\n\n$A\n", "$A -> $B -> $A"),
        ("$A=\\\n$A\n\n$A\n", "$A -> $A"),
    ],
)
def test_recursive_definitions_are_errors_showing_the_chain(tmp_path, content, chain):
    lines, diags = lex(tmp_path, content)
    errors = [d for d in diags if d.severity is Severity.ERROR]
    assert len(errors) == 1
    assert errors[0].message == f"recursive definition: {chain} - line ignored"
    assert "keepalived 2.2.7 loops forever on this" in errors[0].notes
    assert errors[0].notes[0].startswith("$A is defined at") or errors[0].notes[0].startswith("$IF is defined at")


@pytest.mark.timeout(10)
def test_exponential_and_oversized_expansion_stop(tmp_path):
    content = "$D0=\n" + "".join(f"$D{i}=${{D{i - 1}}}${{D{i - 1}}}\n" for i in range(1, 30)) + "kw ${D29}x\n"
    lines, diags = lex(tmp_path, content)
    assert texts(lines) == []
    assert messages(diags) == ["parameter substitution does not terminate - line ignored"]
    lines, diags = lex(tmp_path, "$A=" + "a" * 600 + "\nkw $A $A\nkw $A\n")
    assert texts(lines) == ["kw " + "a" * 600]
    assert messages(diags) == ["Parameter substitution would exceed maximum line length - line ignored"]


def test_multiline_definitions(tmp_path):
    # the man page's example, with @ lines and braces inside the definition
    content = (
        "$INSTANCE= \\\n"
        "vrrp_instance VI_${NUM} { \\\n"
        "    interface eth0.${NUM} \\\n"
        "# a comment inside the definition \\\n"
        "    @main priority 130 \\\n"
        "    @backup priority 120 \\\n"
        "    virtual_ipaddress { \\\n"
        "        10.0.${NUM}.254/24 \\\n"
        "    } \\\n"
        "}\n"
        "\n"
        "$NUM=0\n"
        "$INSTANCE\n"
        "$NUM=1\n"
        "$INSTANCE\n"
        "after\n"
    )
    body = ["{", "interface eth0.{n}", "priority 130", "virtual_ipaddress", "{", "10.0.{n}.254/24", "}", "}"]
    expected = [t.replace("{n}", str(n)) for n in (0, 1) for t in [f"vrrp_instance VI_{n}", *body]] + ["after"]
    lines = ok(tmp_path, content)
    assert lines == expected


def test_nested_multiline_definitions(tmp_path):
    content = (
        "$RS= \\\n"
        "real_server 192.168.${VS_NUM}.${RS_NUM} 80 { \\\n"
        "    weight 1 \\\n"
        "}\n"
        "$VS= \\\n"
        "virtual_server 10.0.${VS_NUM}.4 80 { \\\n"
        "    $RS_NUM=1 \\\n"
        "    $RS \\\n"
        "    $RS_NUM=2 \\\n"
        "    $RS \\\n"
        "    quorum 2 \\\n"
        "}\n"
        "$VS_NUM=0\n"
        "$VS\n"
    )
    assert ok(tmp_path, content) == [
        "virtual_server 10.0.0.4 80",
        "{",
        "real_server 192.168.0.1 80",
        "{",
        "weight 1",
        "}",
        "real_server 192.168.0.2 80",
        "{",
        "weight 1",
        "}",
        "quorum 2",
        "}",
    ]


def test_multiline_definition_details(tmp_path):
    content = (
        "$ML=first \\\n"
        "second\n"
        "mid $ML tail\n"  # only at the end of a line
        "head $ML\n"
        "$EMPTY=\\\n"
        "\n"  # a blank line ends it
        "kw $EMPTY\n"
        "$ONE=only \\\n"
        "\n"
        "x $ONE\n"
    )
    assert ok(tmp_path, content) == ["mid $ML tail", "head first", "second", "kw", "x only"]


def test_multiline_definition_lines_point_at_the_use(tmp_path):
    lines, _ = lex(tmp_path, "$ML=\\\n  one 1 \\\n  two 2\n\n   $ML\n")
    assert [(line.text, line.span.line, line.span.col) for line in lines] == [("one 1", 5, 4), ("two 2", 5, 4)]


def test_an_unfinished_multiline_definition_ends_with_its_file(tmp_path):
    write(tmp_path / "d.conf", "$ML=a \\\nb \\\n")
    assert ok(tmp_path, "include d.conf\nkw 1\nx $ML\n") == ["kw 1", "x a", "b"]


# --- @ conditionals (facts §1.6) ------------------------------------------------------


def test_conditionals(tmp_path):
    content = "@main a 1\n@backup b 2\n@^main c 3\n@^backup d 4\n@main\n@main   \n@mainx e 5\n  @main\tf {\n"
    assert ok(tmp_path, content) == ["a 1", "d 4", "f", "{"]
    assert ok(tmp_path, content, config_id="backup") == ["b 2", "c 3"]


def test_conditional_definitions_in_the_corpus_style(tmp_path):
    # corpus check_align_old.conf: '@EMAIL=${_HASH}' has no blank after the id, so it is dropped
    # and '$EMAIL smtp_alert' later stays literal (keepalived: Unknown keyword '$EMAIL')
    assert ok(tmp_path, "@EMAIL=${_HASH}\n$EMAIL\tsmtp_alert\n") == ["$EMAIL\tsmtp_alert"]


# --- ~SEQ and ~LST (facts §1.7) ---------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("~SEQ(I, 1, 3) seq_kw_$I", ["seq_kw_1", "seq_kw_2", "seq_kw_3"]),  # verified
        ("~SEQ(J, 3) j$J", ["j1", "j2", "j3"]),  # verified
        ("~SEQ(J, -2) j$J", ["j-1", "j-2"]),
        ("~SEQ(J, 0) j$J", ["j1", "j0"]),
        ("~SEQ(I, 5, 2) i$I", ["i5", "i4", "i3", "i2"]),
        ("~SEQ(I, 0, 2, 7) i$I", ["i0", "i2", "i4", "i6"]),
        ("~SEQ(I, 3, -3, -3) i$I", ["i3", "i0", "i-3"]),
        ("~SEQ ( I , 010 , 0x0b ) i$I", ["i8", "i9", "i10", "i11"]),  # strtol base 0
        ("~SEQx(S, 0x90, 0x10, 0xc0) fe80::20:${S}:1", [f"fe80::20:{x}:1" for x in ("90", "a0", "b0", "c0")]),
        ("~SEQx(S, 144, 16, 192) ${S}", ["90", "a0", "b0", "c0"]),
        ("~SEQ(A, 1, 2) ~SEQ(B, 1, 2) x${A}${B}", ["x11", "x12", "x21", "x22"]),
        ("~LST(V, a, b) v_$V", ["v_a", "v_b"]),  # verified
        ("~LST({IP, IP1}, {10,1},{20,4}) 192.168.${IP}.${IP1}", ["192.168.10.1", "192.168.20.4"]),
        ("~LST({A,B}, {1}, {2,3}) [${A}][${B}]", ["[1][]", "[2][3]"]),
        (
            "~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,172) 192.${IP2}.${IP}.${IP1}",
            ["192.168.10.1", "192.170.10.1", "192.172.10.1", "192.168.20.4", "192.170.20.4", "192.172.20.4"],
        ),
        ("~SEQ(I, 1, 2) x { y$I }", ["x", "{", "y1", "}", "x", "{", "y2", "}"]),
        ("~SEQ(I, 1, 2)", []),
        ("~FOO $HASH_X", ["~FOO $HASH_X"]),
    ],
)
def test_sequences(tmp_path, line, expected):
    assert ok(tmp_path, line + "\n") == expected


def test_sequence_parameters_are_substituted_and_lines_point_at_the_body(tmp_path):
    lines, diags = lex(tmp_path, "$N=2\n  ~SEQ(I, 1, $N) kw $I\n")
    assert diags == []
    assert [(line.text, line.span.line, line.span.col) for line in lines] == [("kw 1", 2, 18), ("kw 2", 2, 18)]


def test_sequence_of_a_multiline_definition(tmp_path):
    content = "$VI=\\\nvi_${ID} { \\\nid ${ID} \\\n}\n\n~SEQ(ID,1,2) $VI\n"
    assert ok(tmp_path, content) == ["vi_1", "{", "id 1", "}", "vi_2", "{", "id 2", "}"]


@pytest.mark.parametrize(
    "line",
    [
        "~SEQ(I) x",
        "~SEQ I, 1) x",
        "~SEQ(I, 1, 0, 5) x",
        "~SEQ(I, 5, 1, 1) x",
        "~SEQ(I, 1, 2, 3, 4) x",
        "~SEQ(I, 1, 2 x",
        "~SEQ(1I, 2) x",
        "~SEQx(I, -1, 3) x",
        "~SEQUENCE(I, 3) x",
        "~SEQ(I, a) x",
    ],
)
def test_bad_seq_specifications(tmp_path, line):
    lines, diags = lex(tmp_path, line + "\nnext\n")
    assert texts(lines) == ["next"]
    assert [(d.severity, d.message) for d in diags] == [(Severity.ERROR, f"Invalid ~SEQ specification '{line}'")]
    assert len(diags[0].notes) == 1


@pytest.mark.parametrize("line", ["~LST(V) x", "~LST(V, a b) x", "~LST({A,B}, {1,2,3}) x", "~LST V, a) x", "~LST(V a) x"])
def test_bad_lst_specifications(tmp_path, line):
    lines, diags = lex(tmp_path, line + "\n")
    assert texts(lines) == []
    assert [d.message for d in diags] == [f"Invalid ~LST specification '{line}'"]


def test_nesting_is_bounded(tmp_path):
    chain = "".join(f"~SEQ(V{i}, 1, 1) " for i in range(60))
    lines, diags = lex(tmp_path, chain + "x\nnext\n")
    assert texts(lines) == ["next"]
    assert messages(diags) == ["definitions and ~SEQ/~LST nested too deeply"]


@pytest.mark.timeout(30)
def test_replayed_lines_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(macros, "MAX_REPLAYED_LINES", 1000)
    lines, diags = lex(tmp_path, "~SEQ(I, 1, 2000) x\n~SEQ(A, 1, 100) ~SEQ(B, 1, 20) y\n")
    assert len(lines) < 1000
    assert [d.severity for d in diags] == [Severity.ERROR, Severity.ERROR]
    assert "more than 1000" in diags[0].notes[0]
    assert "produce more than 1000 lines" in diags[1].message


# --- limits and odd files (facts §1.1) ------------------------------------------------


def test_crlf(tmp_path):
    lines, diags = lex(tmp_path, b"global_defs {\r\n  router_id R1\r\r\n}\r\n$A=1\r\nkw $A # c\r\n")
    assert diags == []
    assert words(lines) == [["global_defs"], ["{"], ["router_id", "R1"], ["}"], ["kw", "1"]]
    assert lines[2].span.source.lines[1] == "  router_id R1"


def test_long_lines_are_ignored(tmp_path):
    ok_line = "kw " + "x" * (lexer.MAX_LINE_BYTES - 3)
    long_line = "kw " + "x" * (lexer.MAX_LINE_BYTES - 2)
    multibyte = "kw " + "é" * 510  # 1023 bytes, fewer characters
    lines, diags = lex(tmp_path, f"{ok_line}\n{long_line}\n{multibyte}\nnext\n")
    assert texts(lines) == [ok_line, "next"]
    assert [(d.severity, d.message, d.span.line) for d in diags] == [
        (Severity.WARNING, "line too long - ignoring", 2),
        (Severity.WARNING, "line too long - ignoring", 3),
    ]


def test_nul_line_is_ignored(tmp_path):
    lines, diags = lex(tmp_path, b"a 1\nb \x00 2\nc 3\n")
    assert texts(lines) == ["a 1", "c 3"]
    assert [(d.message, d.span.line, d.span.col) for d in diags] == [
        ("configuration appears to have embedded NULs - ignoring line", 2, 3)
    ]
    assert "\x00" not in render(diags[0])


def test_binary_file(tmp_path):
    lines, diags = lex(tmp_path, bytes(range(256)) * 8)
    assert lines == []
    assert [(d.severity, d.span.line, d.span.col) for d in diags] == [(Severity.ERROR, 1, 1)]
    assert diags[0].message.endswith("is not a text file - not read")


def test_undecodable_bytes_are_kept_as_surrogates(tmp_path):
    lines, diags = lex(tmp_path, b"kw caf\xe9 \xff\n")
    assert diags == []
    assert words(lines) == [["kw", "caf\udce9", "\udcff"]]
    assert lines[0].span.source.lines == ("kw caf\ufffd \ufffd",)


def test_main_file_problems(tmp_path):
    cases = {
        "missing.conf": "No such file or directory",
        "": "is a directory",
    }
    for name, text in cases.items():
        lines, diags = read_config(str(tmp_path / name), config_id="main")
        assert lines == [] and len(diags) == 1 and diags[0].severity is Severity.ERROR
        assert text in diags[0].message
        assert (diags[0].span.line, diags[0].span.col) == (1, 1)
    exe = write(tmp_path / "exe.conf", "kw 1\n")
    os.chmod(exe, 0o700)
    lines, diags = read_config(exe, config_id="main")
    assert lines == [] and [d.severity for d in diags] == [Severity.ERROR]
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    lines, diags = read_config(str(fifo), config_id="main")  # must not block
    assert lines == [] and "not a regular file" in diags[0].message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path):
    path = write(tmp_path / "k.conf", "kw 1\n")
    os.chmod(path, 0)
    _, diags = read_config(path, config_id="main")
    assert [d.severity for d in diags] == [Severity.ERROR] and "Permission denied" in diags[0].message


def test_size_limits(tmp_path, monkeypatch):
    big = tmp_path / "big.conf"
    with open(big, "wb") as f:
        f.truncate(lexer.MAX_FILE_BYTES + 1)  # sparse: never read
    lines, diags = read_config(str(big), config_id="main")
    assert lines == [] and [d.message for d in diags] == [f"Configuration file '{big}' is larger than 32 MiB - not read"]
    monkeypatch.setattr(lexer, "MAX_TOTAL_BYTES", 100)
    write(tmp_path / "a.conf", "a " + "x" * 60 + "\n")
    write(tmp_path / "b.conf", "b " + "x" * 60 + "\n")
    lines, diags = lex(tmp_path, "include a.conf\ninclude b.conf\n", name="m.conf")
    assert [line.first for line in lines] == ["a"]
    assert [d.severity for d in diags] == [Severity.ERROR] and "64 MiB" in diags[0].message


# --- public constructors, dump ----------------------------------------------------------


def test_lines_and_words_can_be_built_directly():
    source = Source("/x.conf", "x.conf", lines=("  kw 'a b'",))
    kw = Word("kw", Span(source, 1, 3), 0)
    arg = Word("'a", Span(source, 1, 6), 3)
    b = Word("b'", Span(source, 1, 9), 6)
    line = Line((kw, arg, b), "kw 'a b'", kw.span)
    assert line.words == (kw, arg, b) and line.first == "kw" and line.span == kw.span
    assert [(w.text, w.span.col) for w in line.script_words(1)] == [("a b", 6)]


def test_dump_lines(tmp_path):
    write(tmp_path / "vi.conf", "priority 100 # c\nnotify \"a # b\" x\\#y\n")  # 2.2.7: \\# starts a comment
    content = (
        "global_defs { router_id R1 }\n"
        "vrrp_instance VI_1\n"
        "{\n"
        "  include vi.conf\n"
        "  virtual_ipaddress {\n"
        "    198.51.100.1\n"
        "  }\n"
        "}\n"
        "}\n"
    )
    main = write(tmp_path / "k.conf", content)
    lines, _ = read_config(main, config_id="main")
    dumped = dump_lines(lines)
    assert dumped == (
        f"# {main}:1\n"
        "global_defs {\n"
        "    router_id R1\n"
        "}\n"
        "vrrp_instance VI_1 {\n"
        f"    # {tmp_path}/vi.conf:1\n"
        "    priority 100\n"
        '    notify "a # b" x\n'
        f"    # {main}:5\n"
        "    virtual_ipaddress {\n"
        "        198.51.100.1\n"
        "    }\n"
        "}\n"
        "}\n"
    )
    again, diags = lex(tmp_path, dumped, name="dumped.conf")
    assert diags == [] and texts(again) == texts(lines)
    assert dump_lines([]) == ""


def test_fixture_corpus_style_config():
    """A macro-heavy config in the style of the keepalived corpus (cases/lexer/macros.conf)."""
    lines, diags = read_config(os.path.join(CASES, "macros.conf"), config_id="high")
    assert diags == []
    got = texts(lines)
    assert got[:4] == ["net_namespace high", "global_defs", "{", 'startup_script "/root/start 1 2" root root']
    assert got[5:9] == ["}", "vrrp_instance VI_1", "{", "interface eth0"]
    assert got.count("real_server 192.168.1.1 80") == 1 and got.count("real_server 192.168.1.2 80") == 1
    assert "$ALPHA" in got  # undefined inside a multi-line definition (keepalived: Unknown keyword '$ALPHA')
    assert got[-1] == "}"
    script = next(line for line in lines if line.first == "shutdown_script")
    assert [w.text for w in script.script_words(1)] == ['/root/stop 3 2 "1 1 2" 3']


# --- robustness ---------------------------------------------------------------------


SMALL = """\
! small config
$IF=eth0
@main $PRIO=150
global_defs { router_id R1 }
include inc.conf
vrrp_instance VI_1 {
    interface $IF
    priority ${PRIO}
    ~SEQ(I, 1, 3) track_$I
    ~LST(V, a, b) v$V
    notify "/bin/x 'a b'" root
    virtual_ipaddress {
        198.51.100.1/24
    }
}
"""
INC = "$ML=\\\nreal_server 10.0.0.1 80 { \\\n  weight 1 \\\n}\n\nvirtual_server 10.0.0.2 80 {\n  $ML\n}\n"


def check_invariants(lines, diags) -> None:
    for d in diags:
        assert d.span is not None and isinstance(d.span.source, Source)
        assert d.span.line >= 1 and d.span.col >= 1
        render(d)
        d.as_json()
    for line in lines:
        assert line.words and line.text
        assert line.span.line >= 1 and line.span.col >= 1
        for word in line.words:
            assert word.span.line >= 1 and word.span.col >= 1
            assert line.text[word.offset :].lstrip('"').startswith(word.text[:1])
        line.script_words(0)
        line.script_problem(0)
    dump_lines(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.conf")
        with open(path, "wb") as f:
            f.write(data)
        check_invariants(*read_config(path, config_id="main"))


MUTATION_CHARS = st.sampled_from(list('{}"\'\\#!$@~(),*?[]x1 \t\n\r\x00\xe9') + ["include ", "${", "~SEQ(", "$ML", "\\\n"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(SMALL) + len(INC)), MUTATION_CHARS, st.booleans()), max_size=8))
@example([(0, "\r", False), (1, '"', False)])  # a line that is only an unmatched quote has no word
def test_mutated_configs_never_raise(mutations):
    main, inc = SMALL, INC
    for pos, text, replace in mutations:
        if pos <= len(main):
            main = main[:pos] + text + main[pos + (1 if replace else 0) :]
        else:
            pos -= len(main)
            inc = inc[:pos] + text + inc[pos + (1 if replace else 0) :]
    with tempfile.TemporaryDirectory() as d:
        for name, content in (("k.conf", main), ("inc.conf", inc)):
            with open(os.path.join(d, name), "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(content)
        os.chmod(os.path.join(d, "inc.conf"), stat.S_IRUSR | stat.S_IWUSR)
        check_invariants(*read_config(os.path.join(d, "k.conf"), config_id="main"))
