"""A recording stand-in for the structlog logger the daemon passes around."""

from __future__ import annotations


class Log:
    """Records (level, event, fields); ``bind()`` returns itself, so bound fields are not kept."""

    def __init__(self):
        self.lines: list[tuple[str, str, dict]] = []

    def bind(self, **fields):
        return self

    def __getattr__(self, level):
        return lambda event, **fields: self.lines.append((level, event, fields))

    def events(self, level=None):
        return [event for lvl, event, _ in self.lines if level in (None, lvl)]
