"""Running a run-loop generator without I/O, so one Lua script can store what it asked for.

The run loop (:mod:`relaygraph.runtime.loop`) yields saver calls and stream chunks. A node
task drives ``Run.record`` and (for a one-task step) ``Run.finish_step`` through
:func:`capture`: the saver's writes and its commit become script arguments
(:meth:`RedisSaver.prepare_writes` / :meth:`RedisSaver.prepare_put`), the chunks events,
and ``hop.lua`` / ``finish_task.lua`` store them atomically with the task's end.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from relaygraph.persistence.base import make_config
from relaygraph.persistence.redis import PreparedPut
from relaygraph.runtime.effects import Emit, SaverCall

__all__ = ["Captured", "capture"]


@dataclass
class Captured:
    """What a run-loop generator asked for, ready for one script."""

    writes: list[list[Any]] = field(default_factory=list)
    """The saver's ``writes`` script arguments, one list per ``put_writes`` call."""
    events: list[tuple[str, Emit]] = field(default_factory=list)
    """Stream chunks, each under its event key (``<prefix>:<n>``)."""
    put: PreparedPut | None = None
    """The commit, if the generator committed a checkpoint."""
    committed: Any = None
    """The checkpoint that commit stores."""
    put_call: SaverCall | None = None
    """The ``put`` call itself (to make it through the saver when a script cannot)."""
    result: Any = None
    """What the generator returned."""


def capture(saver: Any, effects: Generator[Any, Any, Any], event_prefix: str) -> Captured:
    """Drive ``effects`` answering its saver calls as the saver would, storing nothing.

    ``put`` is answered with the config the commit will have; a call other than
    ``put_writes`` / ``put`` is a TypeError (a node task reads before it runs).
    """
    captured = Captured()
    value: Any = None
    while True:
        try:
            effect = effects.send(value)
        except StopIteration as stop:
            captured.result = stop.value
            return captured
        value = None
        if isinstance(effect, Emit):
            captured.events.append((f"{event_prefix}:{len(captured.events)}", effect))
        elif isinstance(effect, SaverCall) and effect.method == "put_writes":
            args = saver.prepare_writes(*effect.args, **effect.kwargs)
            if len(args) > 3:  # three header arguments, then the writes
                captured.writes.append(args)
        elif isinstance(effect, SaverCall) and effect.method == "put":
            config, checkpoint = effect.args[0], effect.args[1]
            captured.put = saver.prepare_put(*effect.args, **effect.kwargs)
            captured.committed = checkpoint
            captured.put_call = effect
            value = make_config(
                config["configurable"]["thread_id"],
                config["configurable"].get("checkpoint_ns", ""),
                checkpoint["id"],
            )
        else:
            raise TypeError(f"a node task cannot capture {effect!r}")
