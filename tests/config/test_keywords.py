"""The keyword table against the reference inventory (facts §2.6) and its own invariants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyvrrpd.config import keywords
from pyvrrpd.config.keywords import EXTENSIONS, HEAD_ONLY, NOT_IN_DEBIAN_BUILD, OLD_SPELLINGS, SUPPORTED, Kind, find, walk

FACTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "keepalived-facts.md"

KNOWN = {k.key: k for k in walk()}

_RS = "virtual_server/real_server"
# §2.6 block headings -> keyword paths
_BLOCKS = {
    "top level": "",
    "global_defs": "global_defs",
    "vrrp_script": "vrrp_script",
    "vrrp_track_process": "vrrp_track_process",
    "track_file": "track_file",
    "vrrp_track_file": "vrrp_track_file",
    "vrrp_sync_group": "vrrp_sync_group",
    "garp_group": "garp_group",
    "track_group": "track_group",
    "vrrp_instance": "vrrp_instance",
    "vrrp_instance > authentication": "vrrp_instance/authentication",
    "vrrp_instance > auth_hmac": "vrrp_instance/auth_hmac",
    "bfd_instance": "bfd_instance",
    "SSL": "SSL",
    "virtual_server": "virtual_server",
    "virtual_server > real_server": _RS,
    "Common checker keywords": None,  # expanded into the checkers that say "common"
    "HTTP_GET": f"{_RS}/HTTP_GET",
    "SSL_GET": f"{_RS}/SSL_GET",
    "HTTP_GET > url": f"{_RS}/HTTP_GET/url",
    "SSL_GET > url": f"{_RS}/SSL_GET/url",
    "MISC_CHECK": f"{_RS}/MISC_CHECK",
    "SMTP_CHECK": f"{_RS}/SMTP_CHECK",
    "DNS_CHECK": f"{_RS}/DNS_CHECK",
    "UDP_CHECK": f"{_RS}/UDP_CHECK",
    "FILE_CHECK": f"{_RS}/FILE_CHECK",
    "BFD_CHECK": f"{_RS}/BFD_CHECK",
}


def _facts_inventory() -> dict[str, str]:
    """§2.6 as {path: markers}, markers being the ⁺ ᵠ † written next to the keyword."""
    if not FACTS.exists():
        pytest.skip(f"reference facts not available at {FACTS}")
    section = FACTS.read_text(encoding="utf-8").split("### 2.6", 1)[1].split("\n---", 1)[0]
    section = re.sub(r"\s+", " ", section)
    # "**heading (N):** body" pieces; a heading with an empty body shares the next body
    pieces = re.split(r"\*\*([^*]+?)\*\*", section)[1:]
    entries: list[tuple[str, int, str]] = []
    pending: list[tuple[str, int]] = []
    for heading, body in zip(pieces[::2], pieces[1::2]):
        m = re.match(r"(.+?) \((\d+)", heading)
        pending.append((m.group(1), int(m.group(2))))
        if re.search(r"`|common|the same|the HTTP_GET set", body):
            entries += [(name, count, body) for name, count in pending]
            pending = []
    out: dict[str, str] = {}
    by_block: dict[str, list[tuple[str, str]]] = {}
    common: list[tuple[str, str]] = []
    for name, count, body in entries:
        plain = re.sub(r"\([^)]*\)", "", body)  # "(→ `x`; ...)" and "(and its `host`)" are no entries
        found = [(kw, marks.strip()) for kw, marks in re.findall(r"`([^`]+)`([^`,]*)", plain)]
        if name == "Common checker keywords":
            common = found
            assert len(found) == count and "TCP_CHECK and PING_CHECK have exactly these" in body
            for checker in ("TCP_CHECK", "PING_CHECK"):
                out.update({f"{_RS}/{checker}/{kw}": marks for kw, marks in found})
            continue
        if re.search(r"\bcommon\b", plain):
            found += common
        if "the HTTP_GET set" in plain:
            found += by_block["HTTP_GET"]
        if "the same" in plain:
            found += by_block["HTTP_GET > url"]
        assert len(found) == count, (name, count, found)
        by_block[name] = found
        block = _BLOCKS[name]
        for kw, marks in found:
            if name == "SMTP_CHECK" and kw == "host":
                for sub, sub_marks in common:  # the deprecated host sub-block holds the common keywords
                    out[f"{block}/host/{sub}"] = sub_marks
            out[f"{block}/{kw}" if block else kw] = marks
    assert set(by_block) == {k for k in _BLOCKS if k != "Common checker keywords"}
    return out


def test_every_keyword_of_the_reference_inventory_is_in_the_table():
    inventory = _facts_inventory()
    for path, marks in inventory.items():
        if "⁺" in marks or path.startswith("vrrp_instance/auth_hmac"):
            assert path in HEAD_ONLY and (path not in KNOWN or path in EXTENSIONS), path
            continue
        assert path in KNOWN or path in NOT_IN_DEBIAN_BUILD, path
        if path not in KNOWN:
            continue
        kw = KNOWN[path]
        assert kw.script == ("ᵠ" in marks), path
        assert bool(kw.deprecated) == ("†" in marks), path
    # and nothing beyond it
    assert (set(KNOWN) - EXTENSIONS) | set(NOT_IN_DEBIAN_BUILD) == {
        p for p, m in inventory.items() if p not in HEAD_ONLY
    }
    assert HEAD_ONLY <= set(inventory)


def test_counts_match_the_inventory_totals():
    # facts §2.1: 501 distinct keyword paths in 2.2.7 (before build options), 531 at HEAD
    assert len(KNOWN) - len(EXTENSIONS) + len(NOT_IN_DEBIAN_BUILD) == 501
    assert len(KNOWN) - len(EXTENSIONS) + len(NOT_IN_DEBIAN_BUILD) + len(HEAD_ONLY) == 531
    assert EXTENSIONS <= HEAD_ONLY


def test_supported_paths_exist_and_drive_the_flag():
    assert SUPPORTED <= set(KNOWN)
    for k in KNOWN.values():
        canonical = "/".join(k.path[:-1] + (k.canonical,))
        assert k.supported == (canonical in SUPPORTED), k.key


def test_side_tables_hold_no_known_keyword_and_sit_in_real_blocks():
    for key in (*(HEAD_ONLY - EXTENSIONS), *OLD_SPELLINGS, *NOT_IN_DEBIAN_BUILD):
        assert key not in KNOWN, key
        parent = key.rsplit("/", 1)[0] if "/" in key else ""
        assert parent == "" or parent in KNOWN or parent in HEAD_ONLY, key
    for old in OLD_SPELLINGS.values():
        assert old.why


def test_aliases_name_a_keyword_of_the_same_block():
    aliases = {k.key: k.canonical for k in KNOWN.values() if k.canonical != k.name}
    assert aliases["virtual_server/real_server/HTTP_GET/nb_get_retry"] == "retry"
    assert aliases["vrrp_track_file"] == "track_file"
    assert aliases["virtual_server/lb_algo"] == "lvs_sched"
    for key, canonical in aliases.items():
        assert find(key.rsplit("/", 1)[0] + "/" + canonical if "/" in key else canonical), key


def test_deprecated_aliases_say_what_to_use():
    deprecated = {k.key: k.deprecated for k in KNOWN.values() if k.deprecated}
    for key in (
        "global_defs/lvs_flush_onstop",
        "global_defs/vrrp_rlimit_rtime",
        "global_defs/checker_rlimit_rtime",
        "global_defs/bfd_rlimit_rtime",
        "global_defs/enable_snmp_keepalived",
        "global_defs/vrrp_vmac_garp_intvl",
        "global_defs/lvs_process_name",
        "vrrp_instance/vmac_garp_intvl",
        "vrrp_instance/lvs_sync_daemon_interface",
        "vrrp_instance/linkbeat_use_polling",
        "vrrp_instance/native_ipv6",
        "vrrp_sync_group/global_tracking",
        "virtual_server/real_server/SMTP_CHECK/host",
        "vrrp_track_file",
    ):
        assert deprecated.get(key), key
    assert "lvs_sync_daemon" in deprecated["vrrp_instance/lvs_sync_daemon_interface"]


@pytest.mark.parametrize(
    "key",
    [
        "vrrp_instance/virtual_ipaddress",
        "vrrp_instance/virtual_ipaddress_excluded",
        "vrrp_instance/unicast_peer",
        "vrrp_instance/track_interface",
        "vrrp_instance/track_script",
        "vrrp_instance/track_file",
        "vrrp_instance/track_process",
        "vrrp_instance/track_bfd",
        "vrrp_instance/virtual_routes",
        "vrrp_instance/virtual_rules",
        "static_ipaddress",
        "static_routes",
        "static_rules",
        "global_defs/notification_email",
        "vrrp_sync_group/group",
        "vrrp_sync_group/track_script",
        "track_group/group",
        "virtual_server_group",
        "linkbeat_interfaces",
        "interface_up_down_delays",
        "garp_group/interfaces",
    ],
)
def test_value_blocks(key):
    assert KNOWN[key].kind is Kind.VALUE_BLOCK


def test_kinds_and_arities():
    assert KNOWN["vrrp_instance"].kind is Kind.BLOCK and KNOWN["vrrp_instance"].min_args == 1
    assert KNOWN["virtual_server/real_server/HTTP_GET/url"].kind is Kind.BLOCK
    assert KNOWN["vrrp_instance/nopreempt"].max_args == 0
    assert (KNOWN["vrrp_instance/priority"].min_args, KNOWN["vrrp_instance/priority"].max_args) == (1, 1)
    assert KNOWN["vrrp_instance/notify_master"].script and KNOWN["vrrp_instance/notify_master"].max_args is None
    for k in KNOWN.values():
        assert bool(k.children) == (k.kind is Kind.BLOCK), k.key
        assert k.max_args is None or k.max_args >= k.min_args, k.key


def test_places_index():
    assert keywords.PLACES["priority"] == ("vrrp_instance",)
    assert "TCP_CHECK" in keywords.PLACES["connect_timeout"]
    assert keywords.PLACES["global_defs"] == ("the top level",)


def test_doc_rows_cover_the_table():
    rows = keywords.doc_rows()
    paths = [r.path for r in rows]
    assert len(paths) == len(set(paths)) == len(KNOWN) + len(HEAD_ONLY - EXTENSIONS) + len(OLD_SPELLINGS) + len(
        NOT_IN_DEBIAN_BUILD
    )
    by_path = {r.path: r for r in rows}
    assert by_path["vrrp_instance > authentication > auth_type"].supported
    assert by_path["vrrp_instance > virtual_ipaddress"].kind == "value block"
    assert by_path["virtual_server > real_server > HTTP_GET > nb_get_retry"].note == "deprecated: use `retry`"
    assert by_path["virtual_server > lb_algo"].note == "synonym of `lvs_sched`"
    assert "newer keepalived" in by_path["global_defs > json_version"].note
    assert "`router_id`" in by_path["global_defs > lvs_id"].note
