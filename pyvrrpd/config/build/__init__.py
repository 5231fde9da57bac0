"""Node tree -> :class:`~pyvrrpd.config.model.Config` plus semantic diagnostics.

The parser has already checked structure (known keywords, braces, missing
parameters, deprecated spellings). The build reads *values* with keepalived
2.2.7's rules and applies its config-time semantics (defaults, inheritance,
corrections), reporting each problem where keepalived reports it:

* an ERROR means the object cannot run (an instance without a VRID, a virtual
  server with a bad address, two instances on the same VRID and interface);
* a WARNING means keepalived also warns and runs, and the message says which
  value is used instead;
* checks that depend on the machine (interfaces, users, script files) go
  through a :class:`Host`; they are warnings that say "(host check)", and
  ``host=None`` skips them.

Diagnostics sit on the line keepalived 2.2.7 uses for the same problem: the
keyword's line, the value-block line, or the block's closing ``}`` for checks
keepalived makes when a block ends. The wording is pyvrrpd's own.

One module per section of keepalived's config, all sharing one :class:`Builder`:

* ``values``, ``addresses``: value readers, address/route/rule lines (used by all);
* ``global_defs``: the ``global_defs`` block;
* ``scripts``: who runs scripts, and the objects VRRP tracks (``vrrp_script``,
  ``track_file``, ``vrrp_track_process``, ``bfd_instance``, the ``track_*`` blocks);
* ``vrrp``: ``vrrp_instance``, ``vrrp_sync_group``, ``garp_group``, ``static_*``;
* ``lvs``, ``checkers``: virtual servers and their groups, real servers, checkers, ``SSL``.

This module is the dispatcher: :data:`TOP` says which function builds each top-level
block, and :func:`build` runs them in file order, then the checks that need everything.
"""

from __future__ import annotations

from collections.abc import Callable

from pyvrrpd.config import model as m
from pyvrrpd.config.build import checkers, global_defs, lvs, scripts, vrrp
from pyvrrpd.config.build.addresses import build_address, build_route, build_rule
from pyvrrpd.config.build.host import Host, LocalHost, StaticHost
from pyvrrpd.config.build.state import Builder
from pyvrrpd.config.build.values import (
    fmt_seconds,
    parse_decimal_us,
    parse_int,
    parse_ip,
    parse_port,
    parse_prefix,
    split_command,
)
from pyvrrpd.config.diagnostics import Diagnostic
from pyvrrpd.config.parser import Node

__all__ = [
    "READERS", "READ_ELSEWHERE", "TOP", "Builder", "Host", "LocalHost", "StaticHost", "build", "build_address",
    "build_route", "build_rule", "fmt_seconds", "parse_decimal_us", "parse_int", "parse_ip", "parse_port",
    "parse_prefix", "split_command",
]


def _global_defs(b: Builder, node: Node) -> None:
    b.gd = global_defs.global_defs(b, node)


#: Top-level keyword -> the function that builds its block. Keywords not here (``net_namespace``,
#: ``track_group``, ...) are in the tree but build nothing.
TOP: dict[str, Callable[[Builder, Node], None]] = {
    "global_defs": _global_defs,
    "vrrp_script": scripts.vrrp_script,
    "track_file": scripts.track_file,
    "vrrp_track_file": scripts.track_file,
    "vrrp_track_process": scripts.track_process,
    "bfd_instance": scripts.bfd_instance,
    "vrrp_sync_group": vrrp.sync_group,
    "vrrp_instance": vrrp.instance,
    "garp_group": vrrp.garp_group,
    "static_ipaddress": vrrp.static_ipaddress,
    "static_routes": vrrp.static_routes,
    "static_rules": vrrp.static_rules,
    "linkbeat_interfaces": vrrp.linkbeat_interfaces,
    "interface_up_down_delays": vrrp.interface_up_down_delays,
    "SSL": checkers.ssl,
    "virtual_server_group": lvs.virtual_server_group,
    "virtual_server": lvs.virtual_server,
}


#: The function that reads the keywords of each block, by the block's keyword path ("" is the
#: top level, :data:`TOP`): each dispatches with ``match`` on the keyword, one ``case`` per
#: keyword it reads, or compares the keyword with literals or a module-level table of keywords; a
#: set of keywords stands for a shared reader (the checkers' common keywords), a tuple for several. A test checks that every keyword :data:`pyvrrpd.config.keywords.SUPPORTED`
#: marks has a ``case`` in its block's reader: when a keyword of another block becomes supported,
#: add that block's reader here.
READERS: dict[str, object] = {
    "": TOP,
    "global_defs": global_defs.global_defs,
    "vrrp_instance": vrrp.instance_keyword,
    "vrrp_instance/authentication": vrrp.authentication_keyword,
    "vrrp_sync_group": vrrp.sync_group_keyword,
    "vrrp_script": scripts.vrrp_script,
    "track_file": scripts.track_file,
    "vrrp_track_file": scripts.track_file,
    "vrrp_track_process": scripts.track_process,
    "SSL": checkers.ssl,
    "virtual_server": lvs.vs_keyword,
    "virtual_server/real_server": (lvs.real_server, lvs.rs_keyword),
    **{f"virtual_server/real_server/{name}": reader for name, reader in checkers.READERS.items()},
}

#: Supported keywords read before the build, and where.
READ_ELSEWHERE: dict[str, str] = {
    "global_defs/include_check": "pyvrrpd/config/lexer.py (it applies to the includes that follow it)",
}


def build(
    root: Node, *, host: Host | None = None, keep: list | None = None
) -> tuple[m.Config, list[Diagnostic]]:
    """Build the model from the parser's tree. Never raises for bad input.

    ``keep``: a list that gets the builder's drafts instead of their being freed (see
    :func:`pyvrrpd.config.load.load`).
    """
    b = Builder(host)
    config = _run(b, root)
    if keep is not None:
        keep.append(b)
    return config, b.r.finish()


def _run(b: Builder, root: Node) -> m.Config:
    tops = root.children
    # keepalived reads global_defs before anything that needs a script user
    # (configs put it first); read the script settings up front.
    for node in tops:
        if node.keyword == "global_defs":
            scripts.prescan_script_user(b, node)
    scripts.prescan_definitions(b, tops)
    top = TOP
    for b.top_index, node in enumerate(tops):
        section = top.get(node.keyword)
        if section is not None:
            section(b, node)
    sync_groups = vrrp.sync_groups(b)
    vrrp.cross_instance_checks(b)
    lvs.virtual_servers(b)
    scripts.script_checks(b)
    return m.Config(
        global_defs=b.gd,
        vrrp_scripts=tuple(b.vrrp_scripts.values()),
        track_files=tuple(b.track_files.values()),
        track_processes=tuple(b.track_processes.values()),
        sync_groups=sync_groups,
        instances=tuple(b.instances),
        garp_groups=tuple(b.garp_groups),
        static_addresses=tuple(b.static_addresses),
        static_routes=tuple(b.static_routes),
        static_rules=tuple(b.static_rules),
        bfd_instances=tuple(b.bfds.values()),
        virtual_server_groups=tuple(b.vsgs.values()),
        virtual_servers=tuple(b.vss),
        ssl=b.ssl,
    )
