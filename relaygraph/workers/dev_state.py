"""Where a running ``relaygraph dev`` fleet is: a small JSON file the other commands read.

``relaygraph dev`` writes it once the fleet is ready and removes it when it stops; a client
command (``submit``, ``runs``, ``threads ...``, ``recover``) fills any ``RELAYGRAPH_*``
connection setting the environment leaves unset from it. The file lives at
``RELAYGRAPH_DEV_STATE``, or ``$XDG_CACHE_HOME/relaygraph/dev.json`` (``~/.cache/...``).
A file whose fleet process is gone is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DevState", "clear_state", "read_state", "state_path", "write_state"]


@dataclass(frozen=True)
class DevState:
    """A running dev fleet: its process id and the settings its workers use."""

    pid: int
    env: dict[str, str]
    flower: str = ""


def state_path() -> Path:
    """The state file's path (``RELAYGRAPH_DEV_STATE`` overrides it)."""
    explicit = os.environ.get("RELAYGRAPH_DEV_STATE")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "relaygraph" / "dev.json"


def write_state(state: DevState) -> Path:
    """Record ``state`` (atomically: a reader never sees half a file)."""
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps({"pid": state.pid, "env": state.env, "flower": state.flower}))
    os.replace(scratch, path)
    return path


def read_state() -> DevState | None:
    """The running fleet's state, or None (no file, a malformed one, or its fleet is gone)."""
    try:
        data = json.loads(state_path().read_text())
        state = DevState(int(data["pid"]), {str(k): str(v) for k, v in data["env"].items()},
                         str(data.get("flower", "")))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return state


def clear_state(pid: int) -> None:
    """Remove the state file if it is the one fleet ``pid`` wrote."""
    path = state_path()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if int(json.loads(path.read_text())["pid"]) == pid:
            path.unlink()
