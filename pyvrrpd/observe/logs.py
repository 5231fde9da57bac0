"""structlog set-up: one line per event, console on a TTY, JSON otherwise.

Under systemd (stderr is the journal stream named by ``$JOURNAL_STREAM``) each JSON line gets the
``<N>`` syslog-level prefix journald understands, so ``journalctl -p warning`` works.
Event texts keep keepalived's words (``(VI_1) Entering MASTER STATE``) so existing log parsers
still match; the structured fields (``instance``, ``vrid``, ``state``, ...) come on top.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

_SYSLOG_LEVEL = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}


def _on_journal() -> bool:
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


class _JournalPrefix:
    """Prefix the rendered line with ``<N>`` for journald's level parsing."""

    def __init__(self, renderer):
        self._renderer = renderer

    def __call__(self, logger, method, event_dict):
        level = _SYSLOG_LEVEL.get(event_dict.get("level", "info"), 6)
        return f"<{level}>" + self._renderer(logger, method, event_dict)


def configure(fmt: str = "auto", level: str = "info") -> None:
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
    ]
    if fmt == "console":
        processors += [
            structlog.processors.TimeStamper(fmt="%H:%M:%S.%f", utc=False),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ]
    else:
        processors += [
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ]
        renderer = structlog.processors.JSONRenderer()
        processors.append(_JournalPrefix(renderer) if _on_journal() else renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get(name: str = "pyvrrpd", **bound):
    return structlog.get_logger(name).bind(**bound) if bound else structlog.get_logger(name)
