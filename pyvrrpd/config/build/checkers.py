"""LVS checkers (``TCP_CHECK``, ``HTTP_GET``, ``SSL_GET``, ``SMTP_CHECK``, ``DNS_CHECK``,
``UDP_CHECK``, ``PING_CHECK``, ``MISC_CHECK``, ``FILE_CHECK``, ``BFD_CHECK``) and the
top-level ``SSL`` block that SSL_GET uses.

A checker is read into a draft inside its real server's block (:func:`checker`); what it
inherits from the real server and virtual server is filled in when the virtual server
is validated (:func:`finish_checker`). ``rs`` below is the real server's draft
(``lvs._RsDraft``): the checker only appends itself to ``rs.checkers``.
"""

from __future__ import annotations

import re

from pyvrrpd.config import model as m
from pyvrrpd.config.build import scripts
from pyvrrpd.config.build.state import Builder
from pyvrrpd.config.build.values import (
    DNS_TYPES,
    IPVS_WEIGHT_LIMIT,
    SECOND,
    UINT32_MAX,
    arg,
    int_arg,
    int_in,
    parse_int,
    parse_ip,
    parse_port,
    read_bool,
    read_int,
    read_timer,
    timer_in,
)
from pyvrrpd.config.parser import Node


def ssl(b: Builder, node: Node) -> None:
    if b.ssl is not None:
        b.r.warn(node.span, "SSL block given twice; this one replaces the first")
    kw: dict = {"span": node.span}
    for c in node.children:
        a = arg(c)
        if c.keyword in ("password", "ca", "certificate", "key") and a is not None:
            kw[c.keyword] = a
    b.ssl = m.SslConfig(**kw)


def checker(b: Builder, rs, c: Node) -> None:
    cls = CHECKERS[c.keyword]
    ck = _CheckerDraft(cls, {"span": c.span}, rs, c.keyword)
    if cls is m.FileCheck or cls is m.BfdCheck:
        _simple_checker(b, rs, ck, c)
        return
    common, known, kw = _checker_common, b.common_read, ck.kw
    misc = cls is m.MiscCheck
    for cc in c.children:
        # a statement read before without a message ("connect_timeout 3"): _checker_common()'s
        # first step, inlined (10,000 TCP_CHECKs x 4 statements: the first pass 45.1 -> 41.7 ms,
        # median of 12 alternating runs)
        read = known.get(cc.texts)
        if read is not None and not (misc and cc.keyword in _CONNECT_ONLY):
            kw[read[0]] = read[1]
            continue
        if common(b, ck, cc):
            continue
        if cls is m.MiscCheck:
            _misc_keyword(b, ck, cc)
        elif cls in _HTTP_CHECKS:
            _http_keyword(b, ck, cc)
        elif cls is m.SmtpCheck:
            _smtp_keyword(b, rs, ck, cc)
        elif cls is m.DnsCheck:
            _dns_keyword(b, ck, cc)
        elif cls is m.UdpCheck:
            _udp_keyword(b, ck, cc)
    if cls is m.MiscCheck and not _misc_end(b, ck, c):
        return
    if cls in _HTTP_CHECKS and not ck.kw.get("urls"):
        b.r.warn(c.end or c.span, f"{ck.owner} has no url; this checker is ignored")
        return
    if cls is m.SmtpCheck and ck.extra:
        for extra in ck.extra:
            extra.kw = {**{k: v for k, v in ck.kw.items() if k != "span"}, **extra.kw}
        rs.checkers.extend(ck.extra)
        return
    rs.checkers.append(ck)


def _checker_common(b: Builder, ck: "_CheckerDraft", c: Node) -> bool:
    """Keywords shared by the checkers (see _COMMON); False if c is not one of them."""
    k = c.keyword
    spec = _COMMON.get(k)
    if spec is None or (ck.cls is m.MiscCheck and k in _CONNECT_ONLY):
        return False
    t = c.texts
    read = b.common_read.get(t)
    if read is not None:
        ck.kw[read[0]] = read[1]
        return True
    how, field, lo, hi = spec
    r = b.r
    reported = len(r.items)
    if how is _BOOL:
        v = read_bool(r, c, f"{ck.owner}: {k}")
    elif len(t) < 2:
        return False
    elif how is _TIMER:
        v = timer_in(t[1], lo, hi)
        if v is None:
            v = read_timer(r, c.words[1], lo, hi, f"{ck.owner}: {k}", "ignoring it")
    elif how is _INT:
        v = int_in(t[1], lo, hi)
        if v is None:
            v = read_int(r, c.words[1], lo, hi, f"{ck.owner}: {k}", "ignoring it")
    elif how is _PORT:
        v = parse_port(t[1]) or None
        if v is None:
            r.warn(c.words[1].span, f"{ck.owner}: {k} '{t[1]}' is not a valid port; ignored")
    elif how is _IP:
        v = parse_ip(t[1])
        if v is None:
            r.warn(c.words[1].span, f"{ck.owner}: {k} '{t[1]}' is not a valid IP address; ignored")
    else:  # bind_if
        v = t[1]
        b.host_interface(c.words[1], f"{ck.owner}: bind_if {v}")
    if v is not None:
        ck.kw[field] = v
        if len(r.items) == reported:
            b.common_read[t] = (field, v)
    return True


def _simple_checker(b: Builder, rs, ck: "_CheckerDraft", c: Node) -> None:
    """FILE_CHECK and BFD_CHECK: no connection, no retry loop."""
    file_check = ck.cls is m.FileCheck
    read = _file_keyword if file_check else _bfd_keyword
    for cc in c.children:
        read(b, ck, cc)
    kw = ck.kw
    needed = "track_file" if file_check else "name"
    if needed not in kw:
        b.r.warn(c.end or c.span, f"{ck.owner} has no valid {needed}; this checker is ignored")
        return
    if file_check and not kw.get("weight"):  # keepalived: no weight (or 0) takes the track_file's
        tf = b.track_files[kw["track_file"]]
        kw["weight"], kw["reverse"] = tf.weight, tf.weight_reverse
    rs.checkers.append(ck)


def _file_keyword(b: Builder, ck: "_CheckerDraft", c: Node) -> None:
    r, kw, a, owner = b.r, ck.kw, arg(c), ck.owner
    if c.keyword == "track_file" and a is not None:
        if a not in b.track_files:
            r.warn(c.words[1].span, f"{owner}: track_file {a} is not defined (before this point); ignored")
        else:
            kw["track_file"] = a
    elif c.keyword == "weight" and a is not None:
        v = int_in(a, -IPVS_WEIGHT_LIMIT, IPVS_WEIGHT_LIMIT)
        if v is None:
            read_int(r, c.words[1], -IPVS_WEIGHT_LIMIT, IPVS_WEIGHT_LIMIT, f"{owner}: weight", "ignoring it")
            return
        reverse = False
        if len(c.words) > 2:
            opt = c.words[2]
            if opt.text not in ("reverse", "noreverse"):
                r.warn(opt.span, f"{owner}: unknown weight option '{opt.text}' (reverse or noreverse); "
                                 "weight ignored")
                return
            reverse = opt.text == "reverse"
        kw["weight"], kw["reverse"] = v, reverse


def _bfd_keyword(b: Builder, ck: "_CheckerDraft", c: Node) -> None:
    r, kw, a, owner = b.r, ck.kw, arg(c), ck.owner
    if c.keyword == "name" and a is not None:
        if a not in b.bfd_defs or b.bfd_defs[a][0] > b.top_index:
            r.warn(c.words[1].span, f"{owner}: bfd_instance {a} is not defined (before this point); ignored")
        else:
            kw["name"] = a
    elif c.keyword == "alpha":
        v = read_bool(r, c, f"{owner}: alpha")
        if v is not None:
            kw["alpha"] = v


def _smtp_keyword(b: Builder, rs, ck: "_CheckerDraft", c: Node) -> None:
    if c.keyword == "helo_name" and arg(c) is not None:
        ck.kw["helo_name"] = c.texts[1]
    elif c.keyword == "host":
        host_ck = _CheckerDraft(ck.cls, {"span": c.span}, rs, ck.keyword)
        for hc in c.children:
            _checker_common(b, host_ck, hc)
        ck.extra.append(host_ck)


def _misc_keyword(b: Builder, ck: "_CheckerDraft", c: Node) -> None:
    r, kw, a, owner = b.r, ck.kw, arg(c), ck.owner
    if c.keyword == "misc_path":
        parsed = scripts.command(b, c, f"{owner}: misc_path", user_words=False)
        if parsed is not None:
            ck.argv = parsed[0]
    elif c.keyword == "misc_timeout" and a is not None:
        v = int_arg(r, c, 1, UINT32_MAX // SECOND, f"{owner}: misc_timeout", "using delay_loop")
        if v is not None:
            kw["timeout_us"] = v * SECOND
    elif c.keyword == "misc_dynamic":
        kw["dynamic"] = True
    elif c.keyword == "user" and a is not None:
        ck.user = (a, c.texts[2] if len(c.texts) > 2 else None)
        problem = b.host.user_problem(*ck.user) if b.host is not None else None
        if problem is not None:
            r.host(c.words[1].span, f"{owner}: {problem}; this checker is removed")
            ck.removed = True


def _misc_end(b: Builder, ck: "_CheckerDraft", c: Node) -> bool:
    end = c.end or c.span
    if not ck.argv:
        b.r.warn(end, f"{ck.owner} has no misc_path; this checker is ignored")
        return False
    if ck.removed:
        return False
    user, group = ck.user if ck.user else (None, None)
    effective = user or scripts.default_user(b, "checker", end)
    if effective is None:
        b.r.host(end, f"{ck.owner}: no user to run {ck.argv[0]} as on this host; this checker is removed")
        return False
    script = m.Script(argv=tuple(ck.argv), user=user, group=group, span=c.span)
    b.script_uses.append(scripts.ScriptUse("checker", script, effective))
    ck.kw["script"] = script
    return True


def _http_keyword(b: Builder, ck: "_CheckerDraft", c: Node) -> None:
    r, kw, k, a, owner = b.r, ck.kw, c.keyword, arg(c), ck.owner
    if k == "url":
        url = _url(b, c, owner)
        if url is not None:
            kw["urls"] = kw.get("urls", ()) + (url,)
    elif k == "virtualhost" and a is not None:
        kw["virtualhost"] = a
    elif k == "http_protocol" and a is not None:
        if a in ("1.0", "1.0C", "1.1"):
            kw["http_protocol"] = a
        else:
            r.warn(c.words[1].span, f"{owner}: unknown http_protocol '{a}' (1.0, 1.0C or 1.1); ignored")
    elif k in ("enable_sni", "fast_recovery"):
        v = read_bool(r, c, f"{owner}: {k}")
        if v is not None:
            kw[k] = v


def _url(b: Builder, node: Node, owner: str) -> m.Url | None:
    r = b.r
    kw: dict = {"span": node.span}
    codes: list[tuple[int, int]] = []
    for c in node.children:
        k, a = c.keyword, arg(c)
        if k == "path" and a is not None:
            kw["path"] = a
        elif k == "digest" and a is not None:
            if len(a) != 32:
                r.warn(c.words[1].span, f"{owner}: digest '{a}' has {len(a)} characters instead of 32; ignored")
            elif not re.fullmatch(r"[0-9A-Fa-f]{32}", a):
                r.warn(c.words[1].span, f"{owner}: digest '{a}' is not hexadecimal; ignored")
            else:
                kw["digest"] = a.lower()
        elif k == "status_code":
            for w in c.words[1:]:
                lo_t, _, hi_t = w.text.partition("-")
                lo, hi = parse_int(lo_t), parse_int(hi_t) if hi_t else parse_int(lo_t)
                if lo is None or hi is None or not 100 <= lo <= hi <= 599:
                    r.warn(w.span, f"{owner}: status_code '{w.text}' is not a code (100-599) or range; ignored")
                else:
                    codes.append((lo, hi))
        elif k == "virtualhost" and a is not None:
            kw["virtualhost"] = a
        elif k == "regex" and a is not None:
            try:
                re.compile(a)
            except re.error as e:
                r.warn(c.words[1].span, f"{owner}: regex '{a}' does not compile ({e}); it may still be valid PCRE2")
            kw["regex"] = a
        elif k == "regex_no_match":
            kw["regex_no_match"] = True
        elif k == "regex_options":
            kw["regex_options"] = tuple(w.text for w in c.words[1:])
        elif k in ("regex_min_offset", "regex_max_offset") and a is not None:
            v = int_arg(r, c, 0, UINT32_MAX, f"{owner}: {k}", "ignoring it")
            if v is not None:
                kw[k] = v
    if "path" not in kw:
        r.warn(node.end or node.span, f"{owner}: url has no path; this url is ignored")
        return None
    if codes:
        kw["status_codes"] = tuple(codes)
    return m.Url(**kw)


def _dns_keyword(b: Builder, ck: "_CheckerDraft", c: Node) -> None:
    a = arg(c)
    if c.keyword == "type" and a is not None:
        if a.upper() in DNS_TYPES:
            ck.kw["type"] = a.upper()
        else:
            b.r.warn(c.words[1].span, f"{ck.owner}: unknown DNS type '{a}' ({', '.join(DNS_TYPES)}); using SOA")
    elif c.keyword == "name" and a is not None:
        ck.kw["name"] = a


def _udp_keyword(b: Builder, ck: "_CheckerDraft", c: Node) -> None:
    r, kw, k, a, owner = b.r, ck.kw, c.keyword, arg(c), ck.owner
    if k == "payload" and a is not None:
        try:
            kw["payload"] = bytes.fromhex(a)
        except ValueError:
            r.warn(c.words[1].span, f"{owner}: payload '{a}' is not hexadecimal bytes; ignored")
    elif k == "require_reply":  # keepalived: a reply is required, matching the hex bytes if given
        kw["reply_required"] = True
        if a is None:
            return
        pattern = "".join(c.texts[1:])
        if re.fullmatch(r"([0-9A-Fa-fXx]{2})+", pattern):
            kw["require_reply"] = pattern
        else:
            r.warn(c.words[1].span, f"{owner}: require_reply '{pattern}' is not hexadecimal bytes (X = any); "
                                    "any reply is accepted")
    elif k in ("min_reply_length", "max_reply_length") and a is not None:
        v = int_arg(r, c, 0, 65535, f"{owner}: {k}", "ignoring it")
        if v is not None:
            kw[k] = v


def finish_checker(b: Builder, ck: "_CheckerDraft", rkw: dict) -> m.AnyChecker:
    """Inherit VS -> RS -> checker values (keepalived's validate_check_config)."""
    cls = ck.cls
    if cls is m.FileCheck or cls is m.BfdCheck:
        return cls(**ck.kw)
    kw = {  # what the real server passes on, unless the checker sets it
        "alpha": rkw["alpha"],
        "log_all_failures": b.gd.checker_log_all_failures,
        "retry": rkw.get("retry", _DEFAULT_RETRY.get(cls, 1)),
        "delay_loop_us": rkw["delay_loop_us"],
    }
    if cls is not m.MiscCheck:
        kw["connect_timeout_us"] = rkw["connect_timeout_us"]
    kw.update(ck.kw)
    if "warmup_us" not in kw:
        kw["warmup_us"] = rkw.get("warmup_us", kw["delay_loop_us"])
    if "delay_before_retry_us" not in kw:
        default_dbr = 3 * SECOND if cls in _HTTP_CHECKS else (kw["delay_loop_us"] if cls is m.DnsCheck else SECOND)
        kw["delay_before_retry_us"] = rkw.get("delay_before_retry_us", default_dbr)
    return cls(**kw)


# ------------------------------------------------------------------ drafts and tables


class _CheckerDraft:
    __slots__ = ("cls", "kw", "vs_label", "rs_texts", "keyword", "argv", "user", "removed", "extra")

    def __init__(self, cls: type, kw: dict, rs, keyword: str) -> None:
        self.cls = cls
        self.kw = kw
        self.vs_label = rs.vs_label  # (not rs itself: rs.checkers holds this draft)
        self.rs_texts = rs.texts
        self.keyword = keyword
        self.argv: list[str] | None = None
        self.user: tuple[str, str | None] | None = None
        self.removed = False
        self.extra: list[_CheckerDraft] = []

    @property
    def owner(self) -> str:
        """The checker in messages (made only for a message: most checkers get none)."""
        return f"{rs_owner(self.vs_label, self.rs_texts)}: {self.keyword}"


def rs_owner(vs_label: str, texts: tuple[str, ...]) -> str:
    return f"{vs_label}: real_server {' '.join(texts[1:3])}"


# The keywords every checker with a retry loop shares: keyword -> (how it is read, the
# field it sets, lowest and highest value). The connection ones are not MISC_CHECK's.
_IP, _PORT, _INT, _TIMER, _BOOL, _IFNAME = range(6)
_COMMON = {
    "connect_ip": (_IP, "connect_ip", 0, 0),
    "bindto": (_IP, "bindto", 0, 0),
    "connect_port": (_PORT, "connect_port", 0, 0),
    "bind_port": (_PORT, "bind_port", 0, 0),
    "bind_if": (_IFNAME, "bind_if", 0, 0),
    "fwmark": (_INT, "fwmark", 0, UINT32_MAX),
    "retry": (_INT, "retry", 0, UINT32_MAX),
    "nb_get_retry": (_INT, "retry", 0, UINT32_MAX),
    "connect_timeout": (_TIMER, "connect_timeout_us", 1, None),
    "delay_loop": (_TIMER, "delay_loop_us", 1, None),
    "delay_before_retry": (_TIMER, "delay_before_retry_us", 0, None),
    "warmup": (_TIMER, "warmup_us", 0, None),
    "alpha": (_BOOL, "alpha", 0, 0),
    "log_all_failures": (_BOOL, "log_all_failures", 0, 0),
}
_CONNECT_ONLY = frozenset(
    ("connect_ip", "bindto", "connect_port", "bind_port", "bind_if", "connect_timeout", "fwmark")
)
#: The common keywords each kind of checker reads (for build.READERS): HTTP_GET/SSL_GET all of _COMMON,
#: the other connecting checkers all but ``nb_get_retry``, MISC_CHECK none of the connection ones.
HTTP_COMMON = frozenset(_COMMON)
CONNECT_COMMON = HTTP_COMMON - {"nb_get_retry"}
MISC_COMMON = CONNECT_COMMON - _CONNECT_ONLY
_DEFAULT_RETRY = {m.DnsCheck: 3, m.MiscCheck: 0}
_HTTP_CHECKS = frozenset((m.HttpCheck, m.SslCheck))
CHECKERS: dict[str, type] = {
    "TCP_CHECK": m.TcpCheck,
    "HTTP_GET": m.HttpCheck,
    "SSL_GET": m.SslCheck,
    "SMTP_CHECK": m.SmtpCheck,
    "DNS_CHECK": m.DnsCheck,
    "UDP_CHECK": m.UdpCheck,
    "PING_CHECK": m.PingCheck,
    "MISC_CHECK": m.MiscCheck,
    "FILE_CHECK": m.FileCheck,
    "BFD_CHECK": m.BfdCheck,
}

#: Reader(s) of each checker block and its sub-blocks, by path below ``real_server`` (see build.READERS).
READERS: dict[str, object] = {
    "TCP_CHECK": CONNECT_COMMON,
    "PING_CHECK": CONNECT_COMMON,
    "UDP_CHECK": (CONNECT_COMMON, _udp_keyword),
    "DNS_CHECK": (CONNECT_COMMON, _dns_keyword),
    "SMTP_CHECK": (CONNECT_COMMON, _smtp_keyword),
    "SMTP_CHECK/host": CONNECT_COMMON,
    "HTTP_GET": (HTTP_COMMON, _http_keyword),
    "SSL_GET": (HTTP_COMMON, _http_keyword),
    "HTTP_GET/url": _url,
    "SSL_GET/url": _url,
    "MISC_CHECK": (MISC_COMMON, _misc_keyword),
    "FILE_CHECK": _file_keyword,
    "BFD_CHECK": _bfd_keyword,
}
