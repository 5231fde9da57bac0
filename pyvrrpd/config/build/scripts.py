"""Scripts and the objects VRRP tracks.

* Scripts: the account each one runs as (``script_user``, ``keepalived_script``, root),
  its host checks, and keepalived's SECURITY check when scripts run as root.
* Tracked objects, defined at the top level and named by instances and sync groups:
  ``vrrp_script``, ``track_file``, ``vrrp_track_process``, ``bfd_instance``, and the
  ``track_*`` value blocks that refer to them.
"""

from __future__ import annotations

from pyvrrpd.config import model as m
from pyvrrpd.config.build.host import UNSAFE
from pyvrrpd.config.build.state import Builder
from pyvrrpd.config.build.values import (
    SECOND,
    UINT32_MAX,
    Report,
    arg,
    int_arg,
    int_in,
    parse_ip,
    read_int,
    split_command,
    timer_arg,
)
from pyvrrpd.config.diagnostics import Span
from pyvrrpd.config.lexer import Word
from pyvrrpd.config.parser import Node


class ScriptUse:
    """A kept script, for the end-of-build security checks."""

    __slots__ = ("subsystem", "script", "user")

    def __init__(self, subsystem: str, script: m.Script, user: str) -> None:
        self.subsystem = subsystem  # "vrrp", "checker" or "parent": keepalived's process that runs it
        self.script = script
        self.user = user  # effective account


def prescan_script_user(b: Builder, gd: Node) -> None:
    for c in gd.children:
        if c.keyword == "dynamic_interfaces":
            b.ifhost = None  # keepalived accepts interfaces that appear later
        elif c.keyword == "enable_script_security":
            b.script_security = True
        elif c.keyword == "script_user" and len(c.texts) >= 2:
            user, group = c.texts[1], (c.texts[2] if len(c.texts) > 2 else None)
            b.script_user = (user, group)
            b.script_user_failed = (
                b.host is not None and b.host.user_problem(user, group) is not None
            )


def prescan_definitions(b: Builder, tops: list[Node]) -> None:
    """Where each named tracked object is defined: keepalived ignores a reference that comes
    before the definition, and the message can then say where the definition is."""
    names = {
        "vrrp_script": "vrrp_script",
        "track_file": "track_file",
        "vrrp_track_file": "track_file",
        "vrrp_track_process": "vrrp_track_process",
        "bfd_instance": "bfd_instance",
    }
    for index, node in enumerate(tops):
        kw = node.keyword
        if kw in names and len(node.texts) >= 2:
            store = {
                "vrrp_script": b.vrrp_script_defs,
                "track_file": b.track_file_defs,
                "vrrp_track_process": b.track_process_defs,
                "bfd_instance": b.bfd_defs,
            }[names[kw]]
            store.setdefault(node.texts[1], (index, node.span))



def default_user(b: Builder, subsystem: str, span: Span) -> str | None:
    """The account a script without its own user runs as, or None if there is none.

    keepalived: script_user if set; else keepalived_script if that user
    exists; else root, unless enable_script_security forbids it.
    """
    if b.script_user is not None:
        return None if b.script_user_failed else b.script_user[0]
    if b.host is None:
        return "root"
    if b.host.user_problem("keepalived_script", None) is None:
        return "keepalived_script"
    if not b.script_security:
        return "root"
    if not b.default_user_failed.get(subsystem):
        b.default_user_failed[subsystem] = True
        b.r.host(
            span,
            "enable_script_security is set, script_user is not and user keepalived_script "
            "does not exist on this host, so scripts without their own user cannot run",
        )
    return None


def command(b: Builder, node: Node, what: str, *, user_words: bool) -> tuple[list[str], str | None, str | None] | None:
    """argv and explicit user/group of a script keyword; None if there is no command."""
    cmd = arg(node)
    if cmd is None:
        return None
    argv = split_command(cmd)
    if not argv:
        b.r.warn(node.words[1].span, f"{what}: empty command; ignored")
        return None
    user = group = None
    if user_words:
        if len(node.texts) > 2:
            user = node.texts[2]
        if len(node.texts) > 3:
            group = node.texts[3]
    elif len(node.texts) > 2:
        b.r.warn(
            node.words[2].span,
            f"{what}: words after the command are ignored; put the command and its arguments in quotes",
        )
    return argv, user, group


def notify_script(b: Builder, node: Node, subsystem: str, what: str) -> m.Script | None:
    """A notify-style script keyword: 'KEYWORD "command args" [user [group]]'."""
    parsed = command(b, node, what, user_words=True)
    if parsed is None:
        return None
    argv, user, group = parsed
    script = m.Script(argv=tuple(argv), user=user, group=group, span=node.span)
    if user is not None:
        problem = b.host.user_problem(user, group) if b.host is not None else None
        if problem is not None:
            b.r.host(
                node.words[2].span,
                f"{what}: {problem}; the script is ignored (words after the command are the user "
                "and group to run it as; quote the command to pass arguments)",
            )
            return None
        effective = user
    else:
        effective = default_user(b, subsystem, node.span)
        if effective is None:
            b.r.host(node.span, f"{what}: no user to run {argv[0]} as on this host; the script is ignored")
            return None
    b.script_uses.append(ScriptUse(subsystem, script, effective))
    return script


#: notify_* keyword -> the field of model.Notify it sets.
NOTIFY_FIELDS: dict[str, str] = {keyword: name for name, keyword in m.NOTIFY_KEYWORDS.items()}


def notify_keyword(b: Builder, notify: dict[str, m.Script | None], node: Node, owner: str) -> None:
    """A notify_* keyword of an instance or a sync group, into ``notify`` (a Notify's fields)."""
    k = node.keyword
    name = NOTIFY_FIELDS[k]
    if name in notify:
        b.r.warn(node.span, f"{owner}: {k} is already given; ignored")
    elif arg(node) is not None:
        notify[name] = notify_script(b, node, "vrrp", f"{owner}: {k}")


def script_checks(b: Builder) -> None:
    """Host problems of each kept script, and keepalived's SECURITY VIOLATION check."""
    if b.host is not None:
        for use in b.script_uses:
            problem = b.host.script_problem(use.script.argv[0], use.user)
            if problem is not None and b.script_security and problem.startswith(UNSAFE):
                problem += "; enable_script_security is set, so the script is not run"
            if problem is not None:
                b.r.host(use.script.span, problem)
    if b.script_security:
        return
    names = {"vrrp": "VRRP", "checker": "checker", "parent": "startup/shutdown"}
    for subsystem in ("parent", "vrrp", "checker"):
        root_uses = [u for u in b.script_uses if u.subsystem == subsystem and u.user == "root"]
        if root_uses:
            unsure = "" if b.host is not None or b.script_user else " (unless user keepalived_script exists)"
            b.r.warn(
                root_uses[0].script.span,
                f"SECURITY: {names[subsystem]} scripts run as root{unsure} but enable_script_security "
                "is not set; keepalived reports a security violation",
                "set enable_script_security (and script_user) in global_defs",
            )


def _duplicate(b: Builder, node: Node, kind: str, seen: dict) -> bool:
    if len(node.texts) < 2:
        return True
    name = node.texts[1]
    if name in seen:
        b.r.warn(node.span, f"{kind} {name} is defined twice; this definition is ignored")
        return True
    return False


def vrrp_script(b: Builder, node: Node) -> None:
    if _duplicate(b, node, "vrrp_script", b.vrrp_scripts):
        return
    r, name = b.r, node.texts[1]
    kw: dict = {"name": name, "span": node.span}
    argv: list[str] | None = None
    user = group = None
    removed = False
    timeout_set = False
    for c in node.children:
        a = arg(c)
        if c.keyword == "script":
            parsed = command(b, c, f"vrrp_script {name}", user_words=False)
            if parsed is not None:
                argv = parsed[0]
        elif c.keyword in ("interval", "timeout") and a is not None:
            v = int_arg(r, c, 0, UINT32_MAX // SECOND, f"vrrp_script {name} {c.keyword}", "ignoring it")
            if v == 0:
                r.warn(c.words[1].span, f"vrrp_script {name} {c.keyword} must be greater than 0; using 1s")
                v = 1
            if v is not None:
                kw[c.keyword + "_us"] = v * SECOND
                timeout_set = timeout_set or c.keyword == "timeout"
        elif c.keyword == "weight" and a is not None:
            v, reverse = read_weight(r, c.words[1:], _SCRIPT, f"vrrp_script {name}", "using 0")
            kw["weight"] = 0 if v is None else v
            if reverse:
                kw["weight_reverse"] = True
        elif c.keyword in ("rise", "fall") and a is not None:
            v = int_arg(r, c, 1, 2**31 - 1, f"vrrp_script {name} {c.keyword}", "using 1")
            kw[c.keyword] = 1 if v is None else v
        elif c.keyword == "user" and a is not None:
            user, group = a, (c.texts[2] if len(c.texts) > 2 else None)
            problem = b.host.user_problem(user, group) if b.host is not None else None
            removed = problem is not None
            if removed:
                r.host(c.words[1].span, f"vrrp_script {name}: {problem}; the script cannot run")
        elif c.keyword == "init_fail":
            kw["init_fail"] = True
    end = node.end or node.span
    if not argv:
        r.warn(end, f"vrrp_script {name} has no 'script'; it is removed")
        return
    if removed:
        return
    effective = user
    if user is None:
        effective = default_user(b, "vrrp", end)
        if effective is None:
            r.host(end, f"vrrp_script {name}: no user to run it as on this host; it is removed")
            return
    if not timeout_set:
        kw["timeout_us"] = kw.get("interval_us", SECOND)
    kw["script"] = m.Script(argv=tuple(argv), user=user, group=group, span=node.span)
    b.script_uses.append(ScriptUse("vrrp", kw["script"], effective))
    b.vrrp_scripts[name] = m.VrrpScript(**kw)


def track_file(b: Builder, node: Node) -> None:
    if _duplicate(b, node, "track_file", b.track_files):
        return
    r, name = b.r, node.texts[1]
    kw: dict = {"name": name, "span": node.span}
    for c in node.children:
        a = arg(c)
        if c.keyword == "file" and a is not None:
            kw["path"] = a
        elif c.keyword == "weight" and a is not None:
            v, reverse = read_weight(r, c.words[1:], _FILE, f"track_file {name}", "using 1")
            if v is not None:
                kw["weight"] = v
            if reverse:
                kw["weight_reverse"] = True
        elif c.keyword == "init_file":
            kw["init_value"] = 0
            for w in c.words[1:]:
                if w.text == "overwrite":
                    kw["init_overwrite"] = True
                else:
                    v = read_int(r, w, -(2**31), 2**31 - 1, f"track_file {name} init_file value", "using 0")
                    kw["init_value"] = 0 if v is None else v
    if "path" not in kw:
        r.warn(node.end or node.span, f"track_file {name} has no 'file'; it is ignored")
        return
    b.track_files[name] = m.TrackFile(**kw)


def track_process(b: Builder, node: Node) -> None:
    if _duplicate(b, node, "vrrp_track_process", b.track_processes):
        return
    r, name = b.r, node.texts[1]
    kw: dict = {"name": name, "span": node.span}
    for c in node.children:
        a = arg(c)
        if c.keyword == "process" and a is not None:
            if "process" in kw:
                r.warn(c.span, f"vrrp_track_process {name}: process already set; ignored")
                continue
            kw["process"] = a
            if len(c.texts) > 2:
                kw["params"] = tuple(w.text for w in c.words[2:])
                kw.setdefault("param_match", "exact")
                kw["full_command"] = True
        elif c.keyword == "param_match":
            if a is None:
                kw["param_match"] = "exact"
            elif a in ("initial", "partial"):
                kw["param_match"] = a
            else:
                r.warn(c.words[1].span, f"vrrp_track_process {name}: invalid param_match '{a}'; ignored")
                continue
            kw["full_command"] = True
        elif c.keyword == "weight" and a is not None:
            v, reverse = read_weight(r, c.words[1:], _PROCESS, f"vrrp_track_process {name}", "ignoring it")
            if v is not None:
                kw["weight"] = v
            if reverse:
                kw["weight_reverse"] = True
        elif c.keyword == "quorum" and a is not None:
            v = int_arg(r, c, 1, 65535, f"vrrp_track_process {name} quorum", "ignoring it")
            if v is not None:
                kw["quorum"] = v
        elif c.keyword == "quorum_max" and a is not None:
            v = int_arg(r, c, 0, 65535, f"vrrp_track_process {name} quorum_max", "ignoring it")
            if v is not None:
                kw["quorum_max"] = v
        elif c.keyword in ("delay", "terminate_delay", "fork_delay") and a is not None:
            v = timer_arg(r, c, 1, 3600 * SECOND, f"vrrp_track_process {name} {c.keyword}", "ignoring it")
            if v is not None:
                if c.keyword != "fork_delay":
                    kw["terminate_delay_us"] = v
                if c.keyword != "terminate_delay":
                    kw["fork_delay_us"] = v
        elif c.keyword == "full_command":
            kw["full_command"] = True
    if "process" not in kw:
        r.warn(node.end or node.span, f"vrrp_track_process {name} has no 'process'; it is ignored")
        return
    b.track_processes[name] = m.TrackProcess(**kw)


def bfd_instance(b: Builder, node: Node) -> None:
    if _duplicate(b, node, "bfd_instance", b.bfds):
        return
    r, name = b.r, node.texts[1]
    kw: dict = {"name": name, "span": node.span}
    for c in node.children:
        a, k = arg(c), c.keyword
        if k in ("neighbor_ip", "neighbour_ip", "source_ip") and a is not None:
            ip = parse_ip(a)
            if ip is None:
                r.warn(c.words[1].span, f"bfd_instance {name}: '{a}' is not a valid IP address; ignored")
            else:
                kw["source_ip" if k == "source_ip" else "neighbor_ip"] = ip
        elif k in ("min_rx", "min_tx", "idle_tx") and a is not None:
            v = int_arg(r, c, 1, UINT32_MAX // 1000, f"bfd_instance {name} {k} (ms)", "using the default")
            if v is not None:
                kw[k + "_us"] = v * 1000
        elif k == "multiplier" and a is not None:
            v = int_arg(r, c, 1, 255, f"bfd_instance {name} multiplier", "using 5")
            if v is not None:
                kw["multiplier"] = v
        elif k in ("ttl", "hoplimit", "max_hops") and a is not None:
            v = int_arg(r, c, 0 if k == "max_hops" else 1, 255, f"bfd_instance {name} {k}", "ignoring it")
            if v is not None:
                kw["max_hops" if k == "max_hops" else "ttl"] = v
        elif k == "weight" and a is not None:
            v, _ = read_weight(r, c.words[1:2], _BFD, f"bfd_instance {name}", "using 0")
            if v is not None:
                kw["weight"] = v
        elif k == "passive":
            kw["passive"] = True
        elif k in ("vrrp", "checker"):
            kw.setdefault("vrrp", False)
            kw.setdefault("checker", False)
            kw[k] = True
    ip = kw.get("neighbor_ip")
    if ip is None:
        r.warn(node.end or node.span, f"bfd_instance {name} has no neighbor_ip; the instance is disabled")
        return
    src = kw.get("source_ip")
    if src is not None and src.version != ip.version:
        r.warn(node.span, f"bfd_instance {name}: source_ip and neighbor_ip are different IP versions; "
                          "source ignored")
        del kw["source_ip"]
    b.bfds[name] = m.BfdInstance(**kw)


_SCRIPT, _FILE, _PROCESS, _BFD = m.TrackKind.SCRIPT, m.TrackKind.FILE, m.TrackKind.PROCESS, m.TrackKind.BFD

#: keepalived 2.2.7's weight range for each kind of tracked object, the same where the object is
#: defined (vrrp_script weight, ...) and on a track_* line: [-limit, limit]. Interfaces and scripts
#: once had +-254, and keepalived still takes +-254 there as +-253, with a warning.
WEIGHT_LIMITS: dict[m.TrackKind, int] = {
    m.TrackKind.INTERFACE: 253,
    _SCRIPT: 253,
    _FILE: 254,
    _PROCESS: 254,
    _BFD: 253,
}
_WAS_254 = frozenset({m.TrackKind.INTERFACE, _SCRIPT})
_REVERSE = ("reverse",)
_REVERSE_OR_NOT = ("reverse", "noreverse")


def read_weight(
    r: Report, words: tuple[Word, ...], kind: m.TrackKind, owner: str, fallback: str,
    *, options: tuple[str, ...] = _REVERSE,
) -> tuple[int | None, bool | None]:
    """A tracked object's ``weight N [reverse]``; ``words`` are N and what follows it.

    Returns the weight, None if N is not valid (reported, saying ``fallback``), and
    whether it is reversed, None if no option is given or it is not one of ``options``
    (then reported). With no ``options`` the words after N are not read.
    """
    limit = WEIGHT_LIMITS[kind]
    word = words[0]
    weight = int_in(word.text, -limit, limit)
    if weight is None:
        old = int_in(word.text, -254, 254) if kind in _WAS_254 else None
        if old is not None:
            weight = 253 if old > 0 else -253
            r.warn(word.span, f"{owner} weight {old} is not allowed; using {weight}")
        else:
            read_int(r, word, -limit, limit, f"{owner} weight", fallback)
    reverse = None
    if options and len(words) > 1:
        opt = words[1]
        if opt.text in options:
            reverse = opt.text == "reverse"
        else:
            r.warn(opt.span, f"{owner}: unknown weight option '{opt.text}'; ignored")
    return weight, reverse


#: The track_* blocks of instances and sync groups, and what they name.
TRACK_KINDS: dict[str, m.TrackKind] = {f"track_{kind.value}": kind for kind in m.TrackKind}


def tracks(b: Builder, node: Node, owner: str, track_kind: m.TrackKind) -> tuple[m.Track, ...]:
    """One track_interface/track_script/track_file/track_process/track_bfd block."""
    r = b.r
    out: list[m.Track] = []
    kind = track_kind.value
    label = "track_" + kind
    for item in node.items:
        name_w = item[0]
        name = name_w.text
        if kind == "interface":
            b.host_interface(name_w, f"{owner}: tracked interface {name}")
            weight, reverse = 0, False
        else:
            found, defs = {
                "script": (b.vrrp_scripts, b.vrrp_script_defs),
                "file": (b.track_files, b.track_file_defs),
                "process": (b.track_processes, b.track_process_defs),
                "bfd": (b.bfds, b.bfd_defs),
            }[kind]
            obj = found.get(name)
            if obj is None and kind == "bfd" and name in defs and defs[name][0] < b.top_index:
                # keepalived tracks even a disabled bfd_instance
                obj = m.Track(kind=track_kind, name=name, span=name_w.span)
            if obj is None:
                defined = defs.get(name)
                if defined is None:
                    why = "is not defined"
                elif defined[0] > b.top_index:
                    why = f"is defined later ({defined[1]}); keepalived needs it defined before use"
                else:
                    why = "was removed (see its own diagnostics)"
                r.warn(name_w.span, f"{owner}: {label} {name} {why}; ignored")
                continue
            weight = getattr(obj, "weight", 0)
            reverse = getattr(obj, "weight_reverse", False)
        if any(t.name == name for t in out):
            r.warn(name_w.span, f"{owner}: {label} {name} is listed twice; ignored")
            continue
        if len(item) >= 2:
            if item[1].text != "weight":
                r.warn(item[1].span, f"{owner}: unknown {label} option '{item[1].text}'; {name} ignored")
                continue
            if len(item) == 2:
                r.warn(item[1].span, f"{owner}: {label} {name} has 'weight' without a value; ignored")
                continue
            v, line_reverse = read_weight(r, item[2:], track_kind, f"{owner}: {label} {name}",
                                          "using 0" if kind == "interface" else f"using {weight}",
                                          options=_REVERSE if kind == "interface" else _REVERSE_OR_NOT)
            if v is not None:
                weight = v
            elif kind == "interface":
                weight = 0
            if line_reverse is not None:
                reverse = line_reverse
        out.append(m.Track(kind=track_kind, name=name, weight=weight, reverse=reverse, span=name_w.span))
    return tuple(out)
