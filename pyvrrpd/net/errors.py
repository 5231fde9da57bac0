"""The one exception the kernel adapters raise.

Every failing socket, ioctl, sysctl or netlink call is turned into a `NetError` that says what was attempted,
on which interface and address, and the errno, so the daemon can log one line and count it instead of
printing a traceback.
"""

from __future__ import annotations

import errno as _errno
import os


class NetError(Exception):
    """A kernel operation failed.

    `op` is what was attempted ("add address", "send advert"), `ifname` and `target` say where, `errno` is
    the kernel's error number (None when the failure was detected in user space, e.g. a bad spec).
    """

    def __init__(
        self,
        op: str,
        *,
        ifname: str | None = None,
        target: str | None = None,
        errno: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.op = op
        self.ifname = ifname
        self.target = target
        self.errno = errno
        self.detail = detail
        super().__init__(str(self))

    @classmethod
    def wrap(
        cls, exc: BaseException, op: str, *, ifname: str | None = None, target: str | None = None
    ) -> NetError:
        """Build from an OSError or pyroute2 NetlinkError (both carry the errno, under different names)."""
        code = getattr(exc, "errno", None)
        if code is None:
            code = getattr(exc, "code", None)
        return cls(op, ifname=ifname, target=target, errno=code if isinstance(code, int) else None,
                   detail=None if isinstance(code, int) else str(exc) or type(exc).__name__)

    def __str__(self) -> str:
        where = self.op
        if self.target:
            where += f" {self.target}"
        if self.ifname:
            where += f" on {self.ifname}"
        parts = []
        if self.errno is not None:
            name = _errno.errorcode.get(self.errno, "?")
            parts.append(f"{os.strerror(self.errno)} ({name})")
        if self.detail:
            parts.append(self.detail)
        return f"{where}: {'; '.join(parts) or 'failed'}"
