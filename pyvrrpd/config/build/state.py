"""What the sections of the build share: the report, the host, and the objects made so far.

keepalived resolves names at parse time, in file order: a ``track_script`` names a
``vrrp_script`` defined above it, a virtual server names a group. So the sections read
and fill one :class:`Builder`; each section is a module of functions that take it.
"""

from __future__ import annotations

from pyvrrpd.config import model as m
from pyvrrpd.config.build.host import Host
from pyvrrpd.config.build.values import IFNAMSIZ, RULE_START_PRIORITY, Report
from pyvrrpd.config.diagnostics import Span
from pyvrrpd.config.lexer import Word


class Builder:
    """The state of one build (mutable on purpose; the model made of it is not)."""

    def __init__(self, host: Host | None) -> None:
        self.host = host
        self.ifhost = host  # None when interface checks are off (dynamic_interfaces)
        self.r = Report()
        self.gd: m.GlobalDefs = m.GlobalDefs()
        # default script user: (user, group) from script_user, its failure, per-subsystem failures
        self.script_user: tuple[str, str | None] | None = None
        self.script_user_failed = False
        self.script_security = False
        self.default_user_failed: dict[str, bool] = {}
        self.script_uses: list = []  # scripts.ScriptUse
        # objects referenced by name, in definition order (keepalived resolves at parse time)
        self.vrrp_scripts: dict[str, m.VrrpScript] = {}
        self.vrrp_script_defs: dict[str, tuple[int, Span]] = {}
        self.track_files: dict[str, m.TrackFile] = {}
        self.track_file_defs: dict[str, tuple[int, Span]] = {}
        self.track_processes: dict[str, m.TrackProcess] = {}
        self.track_process_defs: dict[str, tuple[int, Span]] = {}
        self.bfds: dict[str, m.BfdInstance] = {}
        self.bfd_defs: dict[str, tuple[int, Span]] = {}
        self.top_index = 0  # position of the top-level block being built
        self.instances: list[m.VrrpInstance] = []
        self.instance_names: dict[str, Span] = {}
        self.drafts: list = []  # vrrp.InstanceDraft
        self.vmac_names: dict[str, str] = {}
        self.sync_drafts: list = []  # vrrp.SyncDraft
        self.member_of: dict = {}  # instance name -> vrrp.SyncDraft
        self.garp_groups: list[m.GarpGroup] = []
        self.static_addresses: list[m.VirtualAddress] = []
        self.static_routes: list[m.Route] = []
        self.static_rules: list[m.Rule] = []
        self.vsgs: dict[str, m.VirtualServerGroup] = {}
        self.vs_drafts: list = []  # lvs.VsDraft
        self.vss: list[m.VirtualServer] = []
        self.ssl: m.SslConfig | None = None
        self.next_rule_pref = {4: RULE_START_PRIORITY, 6: RULE_START_PRIORITY}
        # checker statements repeat ("connect_timeout 3"): texts -> (field, value) of each
        # one read without a message, so the next of its kind is a dict lookup
        self.common_read: dict[tuple[str, ...], tuple[str, object]] = {}
        # the same for real_server statements (lvs.rs_keyword): texts -> (field, value)
        self.rs_read: dict[tuple[str, ...], tuple[str, object]] = {}

    def host_interface(self, word: Word, what: str) -> bool:
        """Report a host-check warning if the interface is missing; True if it may exist."""
        if self.ifhost is not None and self.ifhost.interface_exists(word.text) is False:
            self.r.host(word.span, f"{what} does not exist on this host")
            return False
        return True

    def ifname(self, word: Word, what: str) -> str | None:
        if len(word.text) >= IFNAMSIZ:
            self.r.warn(word.span, f"{what} name '{word.text}' is longer than {IFNAMSIZ - 1} characters; ignored")
            return None
        return word.text
