"""What the build may ask about the machine: interfaces, users, scripts, host names.

The checks that depend on the machine go through a :class:`Host`; they are warnings that
say "(host check)", and ``host=None`` skips them.
"""

from __future__ import annotations

import _socket  # for if_nameindex(): importing socket.py costs 5 ms (its IntEnums) at every start
import functools
import grp
import os
import pwd
import stat
from dataclasses import dataclass, field



class Host:
    """What the build may ask about the machine it runs on.

    Every answer may be None ("cannot tell"), which skips the check; this base
    class cannot tell anything. (A base class, not a typing.Protocol: importing
    typing would cost 3 ms at every start.)
    """

    def interface_exists(self, name: str) -> bool | None:
        """Whether a network interface of that name exists here."""
        return None

    def user_problem(self, user: str, group: str | None) -> str | None:
        """Why scripts cannot run as user[:group] here, or None if they can."""
        return None

    def script_problem(self, argv0: str, user: str) -> str | None:
        """Why argv0 cannot be run (safely) as user here, or None if fine."""
        return None

    def name_resolves(self, name: str) -> bool | None:
        """Whether a host name (e.g. smtp_server) resolves here."""
        return None


_UNKNOWN = object()


def _remembered(method):
    """A LocalHost question asked once per distinct arguments: a config may run the same
    script as the same user hundreds of times, and each check reads /etc/passwd and /etc/group."""

    @functools.wraps(method)
    def ask(self, *args):
        key = (method.__name__, args)
        answer = self._answers.get(key, _UNKNOWN)
        if answer is _UNKNOWN:
            answer = self._answers[key] = method(self, *args)
        return answer

    return ask


class LocalHost(Host):
    """The machine this process runs on, as it is when the object is made.

    Interfaces come from if_nameindex(), so the answer depends on the
    network namespace the command runs in.
    """

    def __init__(self) -> None:
        self._answers: dict[tuple, object] = {}
        try:
            self._ifnames: frozenset[str] | None = frozenset(name for _, name in _socket.if_nameindex())
        except OSError:
            self._ifnames = None

    def interface_exists(self, name: str) -> bool | None:
        return None if self._ifnames is None else name in self._ifnames

    @_remembered
    def user_problem(self, user: str, group: str | None) -> str | None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"user {user} does not exist on this host"
        if group is not None:
            try:
                grp.getgrnam(group)
            except KeyError:
                return f"group {group} does not exist on this host"
        return None

    @_remembered
    def script_problem(self, argv0: str, user: str) -> str | None:
        path = find_script(argv0)
        if path is None:
            return f"script {argv0} is not in PATH on this host"
        try:
            st = os.stat(path)
        except OSError as e:
            return f"script {argv0} cannot be accessed on this host ({e.strerror})"
        try:
            pw = pwd.getpwnam(user)
            uid, gids = pw.pw_uid, {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
        except KeyError:
            return None
        if uid == 0:
            executable = bool(st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
        elif st.st_uid == uid:
            executable = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in gids:
            executable = bool(st.st_mode & stat.S_IXGRP)
        else:
            executable = bool(st.st_mode & stat.S_IXOTH)
        if not stat.S_ISREG(st.st_mode) or not executable:
            return f"script {argv0} is not executable by {user} on this host"
        if uid == 0:
            return unsafe_script(argv0, path)
        return None

    @_remembered
    def name_resolves(self, name: str) -> bool | None:
        try:
            import socket  # rarely needed (smtp_server): not worth importing at every start

            socket.getaddrinfo(name, None)
        except (OSError, UnicodeError):
            return False
        return True


UNSAFE = "unsafe permissions for script"  # how unsafe_script's answer starts


def find_script(argv0: str) -> str | None:
    """argv0 itself if it has a '/', else where $PATH has it (None: nowhere)."""
    if "/" in argv0:
        return argv0
    for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        if d and os.path.isfile(os.path.join(d, argv0)):
            return os.path.join(d, argv0)
    return None


def unsafe_script(argv0: str, path: str | None = None) -> str | None:
    """keepalived's check for a script run as root: why a non-root user could change what runs (the first
    component of its real path that is not root's or is group/world writable without the sticky bit), or
    None. ``path`` is argv0 found in $PATH, if already known. With ``enable_script_security`` keepalived
    (and pyvrrpd) refuse such a script."""
    if path is None:
        path = find_script(argv0)
        if path is None:
            return None
    unsafe = _unsafe_component(os.path.realpath(path))
    if unsafe is None:
        return None
    return f"{UNSAFE} {argv0} run as root: {unsafe} is writable by non-root users"


def _unsafe_component(path: str) -> str | None:
    """First path component a non-root user could modify (keepalived's check_security)."""
    parts = path.split("/")
    for i in range(len(parts), 0, -1):
        p = "/".join(parts[:i]) or "/"
        try:
            st = os.stat(p)
        except OSError:
            return None
        if st.st_uid != 0:
            return p
        is_dir = stat.S_ISDIR(st.st_mode)
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (is_dir and st.st_mode & stat.S_ISVTX):
            return p
    return None


@dataclass(frozen=True)
class StaticHost(Host):
    """A host described by data: for tests, and for checking a config against
    another machine (e.g. keepalived's corpus namespace, which has only ``lo``).

    ``scripts`` maps argv0 to a problem text (None = fine); names not in it
    are not checked.
    """

    interfaces: frozenset[str] = frozenset({"lo"})
    users: frozenset[str] = frozenset({"root"})
    groups: frozenset[str] = frozenset({"root"})
    scripts: dict[str, str | None] = field(default_factory=dict)
    names: frozenset[str] = frozenset({"localhost"})

    def interface_exists(self, name: str) -> bool | None:
        return name in self.interfaces

    def user_problem(self, user: str, group: str | None) -> str | None:
        if user not in self.users:
            return f"user {user} does not exist on this host"
        if group is not None and group not in self.groups:
            return f"group {group} does not exist on this host"
        return None

    def script_problem(self, argv0: str, user: str) -> str | None:
        return self.scripts.get(argv0)

    def name_resolves(self, name: str) -> bool | None:
        return name in self.names

