"""Channels: where state lives between supersteps, and how concurrent writes combine.

Every state key is a channel. A channel receives, once per superstep, the list of values
that the step's tasks wrote to it (in task order) and folds them into its value:

* :class:`LastValue` keeps the one value written (two writers in one step is an error);
* :class:`BinaryOperatorAggregate` folds writes through a reducer (``operator.add``,
  ``add_messages``...);
* :class:`EphemeralValue` holds a value for exactly one step (node triggers, the input);
* :class:`Topic` collects many values for one step (``Send`` packets);
* :class:`NamedBarrierValue` becomes available once every named source wrote (fan-in).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from relaygraph.runtime.errors import EmptyChannelError, InvalidUpdateError
from relaygraph.runtime.types import OVERWRITE, Overwrite

__all__ = [
    "MISSING",
    "BaseChannel",
    "BinaryOperatorAggregate",
    "DeferredBarrierValue",
    "DeferredValue",
    "EphemeralValue",
    "LastValue",
    "NamedBarrierValue",
    "Topic",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class BaseChannel:
    """A channel's value plus the rule for folding one step's writes into it."""

    __slots__ = ("key", "value")

    def __init__(self, key: str = "") -> None:
        self.key = key
        self.value: Any = MISSING

    def empty_copy(self) -> BaseChannel:
        """A new channel of the same kind and key, with no value."""
        raise NotImplementedError

    def from_checkpoint(self, value: Any) -> BaseChannel:
        """A new channel of the same kind holding a checkpointed value."""
        channel = self.empty_copy()
        if value is not MISSING:
            channel.value = value
        return channel

    def copy(self) -> BaseChannel:
        """A shallow copy (the value object is shared; reducers never mutate it)."""
        return self.from_checkpoint(self.value)

    def checkpoint(self) -> Any:
        """The value to store, or MISSING when the channel is empty."""
        return self.value

    def is_available(self) -> bool:
        """True when :meth:`get` would return a value."""
        return self.value is not MISSING

    def get(self) -> Any:
        """The channel's value; EmptyChannelError when it has none."""
        if self.value is MISSING:
            raise EmptyChannelError(self.key)
        return self.value

    def update(self, values: Sequence[Any]) -> bool:
        """Fold one step's writes; True when the value changed."""
        raise NotImplementedError

    keeps_unavailable = False
    """True for channels whose stored state includes a value they do not show yet."""

    def consume(self) -> bool:
        """Called when a task triggered by this channel ran; True when that changed it."""
        return False

    def finish(self) -> bool:
        """Called when the run would end; True when that made the channel available."""
        return False


class LastValue(BaseChannel):
    """Keeps the last value; more than one write in one step is an error."""

    __slots__ = ()

    def empty_copy(self) -> LastValue:
        return LastValue(self.key)

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        if len(values) > 1:
            raise InvalidUpdateError(
                f"At key {self.key!r}: can receive only one value per step, got {len(values)}. "
                "Use an Annotated key with a reducer to combine values written by parallel nodes, "
                "e.g. Annotated[list, operator.add]."
            )
        self.value = values[-1]
        return True


class BinaryOperatorAggregate(BaseChannel):
    """Folds every write into the value with ``reducer(current, write)``."""

    __slots__ = ("initial", "reducer")

    def __init__(self, key: str, reducer: Callable[[Any, Any], Any], initial: Any = MISSING):
        super().__init__(key)
        self.reducer = reducer
        self.initial = initial
        self.value = _fresh(initial)

    def empty_copy(self) -> BinaryOperatorAggregate:
        return BinaryOperatorAggregate(self.key, self.reducer, self.initial)

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        value = self.value
        # A reducer may offer a variant for folding into its own earlier result
        # (``add_messages`` skips re-checking the whole history).
        reducer = getattr(self.reducer, "channel_reducer", None)
        overwritten = False
        for item in values:
            replacement = _overwrite_of(item)
            if replacement is not MISSING:
                if overwritten:
                    raise InvalidUpdateError(
                        f"At key {self.key!r}: can receive only one Overwrite value per step"
                    )
                overwritten = True
                # a trusted variant folds only into values the full reducer made
                value = replacement if reducer is None else self.reducer(replacement, [])
                continue
            if overwritten:
                continue  # LangGraph drops the step's other writes after an overwrite
            if value is MISSING:
                # the first write: through the full reducer when a trusted variant exists,
                # so the value it folds into later is one it made
                value = item if reducer is None else self.reducer(item, [])
            else:
                value = (reducer or self.reducer)(value, item)
        self.value = value
        return True


def _overwrite_of(item: Any) -> Any:
    """The value an ``Overwrite`` write carries (also in its JSON forms), else MISSING."""
    if isinstance(item, Overwrite):
        return item.value
    if isinstance(item, dict):
        if len(item) == 1 and OVERWRITE in item:
            return item[OVERWRITE]
        if item.get("type") == OVERWRITE and "value" in item:
            return item["value"]
    return MISSING


def _fresh(initial: Any) -> Any:
    """A new empty container for the reducer's first fold (never a shared mutable)."""
    if initial is MISSING:
        return MISSING
    return type(initial)() if isinstance(initial, (list, dict, set)) else initial


class EphemeralValue(BaseChannel):
    """Holds a value for one superstep: cleared by the next step that does not write it."""

    __slots__ = ("guard",)

    def __init__(self, key: str, guard: bool = True) -> None:
        super().__init__(key)
        self.guard = guard

    def empty_copy(self) -> EphemeralValue:
        return EphemeralValue(self.key, self.guard)

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            if self.value is MISSING:
                return False
            self.value = MISSING
            return True
        if len(values) > 1 and self.guard:
            raise InvalidUpdateError(
                f"At key {self.key!r}: can receive only one value per step, got {len(values)}"
            )
        self.value = values[-1]
        return True


class Topic(BaseChannel):
    """Collects every value written in one step (a fresh list each step)."""

    __slots__ = ()

    def empty_copy(self) -> Topic:
        return Topic(self.key)

    def checkpoint(self) -> Any:
        return list(self.value) if self.value else MISSING

    def is_available(self) -> bool:
        return bool(self.value)

    def update(self, values: Sequence[Any]) -> bool:
        had_values = bool(self.value)
        flat: list[Any] = []
        for item in values:
            flat.extend(item if isinstance(item, list) else [item])
        self.value = flat if flat else MISSING
        return had_values or bool(flat)


class NamedBarrierValue(BaseChannel):
    """Available once each of ``names`` has written; consumed by the task it triggers."""

    __slots__ = ("names",)

    def __init__(self, key: str, names: frozenset[str]) -> None:
        super().__init__(key)
        self.names = names
        self.value = set()

    def empty_copy(self) -> NamedBarrierValue:
        return NamedBarrierValue(self.key, self.names)

    def from_checkpoint(self, value: Any) -> NamedBarrierValue:
        channel = self.empty_copy()
        if value is not MISSING:
            channel.value = set(value)
        return channel

    def copy(self) -> NamedBarrierValue:
        return self.from_checkpoint(self.value)

    def checkpoint(self) -> Any:
        return set(self.value) if self.value else MISSING

    def is_available(self) -> bool:
        return self.value == self.names

    def get(self) -> Any:
        if self.value != self.names:
            raise EmptyChannelError(self.key)
        return None

    def update(self, values: Sequence[Any]) -> bool:
        updated = False
        for name in values:
            if name not in self.names:
                raise InvalidUpdateError(
                    f"At key {self.key!r}: {name!r} is not one of the edge's sources "
                    f"{sorted(self.names)}"
                )
            if name not in self.value:
                self.value.add(name)
                updated = True
        return updated

    def consume(self) -> bool:
        if self.value == self.names:
            self.value = set()
            return True
        return False


class DeferredValue(BaseChannel):
    """The trigger of an ``add_node(defer=True)`` node: written like an edge's trigger, but
    available only once the run has nothing else to do (:meth:`finish`), and kept across
    steps until the node runs. Stored as ``(value, finished)``."""

    __slots__ = ("finished",)
    keeps_unavailable = True

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.finished = False

    def empty_copy(self) -> DeferredValue:
        return DeferredValue(self.key)

    def from_checkpoint(self, value: Any) -> DeferredValue:
        channel = self.empty_copy()
        if value is not MISSING:
            channel.value, channel.finished = value
        return channel

    def copy(self) -> DeferredValue:
        return self.from_checkpoint(self.checkpoint())

    def checkpoint(self) -> Any:
        return MISSING if self.value is MISSING else (self.value, self.finished)

    def is_available(self) -> bool:
        return self.finished and self.value is not MISSING

    def get(self) -> Any:
        if not self.is_available():
            raise EmptyChannelError(self.key)
        return self.value

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        self.value, self.finished = values[-1], False
        return True

    def finish(self) -> bool:
        if self.finished or self.value is MISSING:
            return False
        self.finished = True
        return True

    def consume(self) -> bool:
        if not self.finished:
            return False
        self.value, self.finished = MISSING, False
        return True


class DeferredBarrierValue(NamedBarrierValue):
    """A fan-in edge into a deferred node: complete once every source wrote, available
    only once the run has nothing else to do. Stored as ``(names seen, finished)``."""

    __slots__ = ("finished",)
    keeps_unavailable = True

    def __init__(self, key: str, names: frozenset[str]) -> None:
        super().__init__(key, names)
        self.finished = False

    def empty_copy(self) -> DeferredBarrierValue:
        return DeferredBarrierValue(self.key, self.names)

    def from_checkpoint(self, value: Any) -> DeferredBarrierValue:
        channel = self.empty_copy()
        if value is not MISSING:
            seen, channel.finished = value
            channel.value = set(seen)
        return channel

    def copy(self) -> DeferredBarrierValue:
        return self.from_checkpoint(self.checkpoint())

    def checkpoint(self) -> Any:
        return (set(self.value), self.finished) if self.value else MISSING

    def is_available(self) -> bool:
        return self.finished and self.value == self.names

    def get(self) -> Any:
        if not self.is_available():
            raise EmptyChannelError(self.key)
        return None

    def finish(self) -> bool:
        if self.finished or self.value != self.names:
            return False
        self.finished = True
        return True

    def consume(self) -> bool:
        if not self.is_available():
            return False
        self.value, self.finished = set(), False
        return True
