"""What the local daemon says about its instances: MASTER, BACKUP, FAULT.

pyvrrpd has no status interface yet, so ``query_local_daemon()`` returns None and diagnose reports the
local daemon's state as unknown (unless this host is seen sending adverts: then it acts as master). When the
status API arrives, ``query_local_daemon()`` asks it and hands the JSON to ``states_from_status()``; until
then ``--status-file`` feeds a saved status document through the same function.

``states_from_status()`` is deliberately tolerant about the document's shape: it takes every object that has
a string ``name`` and a string ``state`` (anywhere, a few levels deep), and every ``"instances"`` mapping of
name → object with a ``state``. So ``{"instances": [{"name": "VI_1", "state": "MASTER"}]}`` and
``{"vrrp": {"instances": {"VI_1": {"state": "BACKUP"}}}}`` both work.
"""

from __future__ import annotations

import json

_MAX_DEPTH = 6
_MAX_ITEMS = 100_000


def query_local_daemon() -> dict[str, str] | None:
    """Instance name → state from the running local daemon; None while there is no status API."""
    return None


def read_status_file(path: str) -> dict[str, str]:
    """A saved status document → instance name → state. Raises ValueError with the reason."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the status file {path}: {exc}") from None
    return states_from_status(doc)


def states_from_status(doc: object) -> dict[str, str]:
    """Instance name → upper-case state, from a status document of any reasonable shape."""
    found: dict[str, str] = {}
    budget = [_MAX_ITEMS]

    def walk(node: object, depth: int) -> None:
        if depth > _MAX_DEPTH or budget[0] <= 0:
            return
        budget[0] -= 1
        if isinstance(node, dict):
            name, state = node.get("name"), node.get("state")
            if isinstance(name, str) and isinstance(state, str):
                found.setdefault(name, state.upper())
            instances = node.get("instances")
            if isinstance(instances, dict):
                for key, value in instances.items():
                    if isinstance(key, str) and isinstance(value, dict) and isinstance(value.get("state"), str):
                        found.setdefault(key, value["state"].upper())
            for value in node.values():
                walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1)

    walk(doc, 0)
    return found
