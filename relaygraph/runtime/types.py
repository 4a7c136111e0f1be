"""Value types of the graph API: ``Send``, ``Command``, ``RetryPolicy``, snapshots."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, NamedTuple, TypeVar

from langchain_core.messages.tool import ToolOutputMixin

__all__ = [
    "OVERWRITE",
    "Command",
    "Interrupt",
    "Overwrite",
    "PregelTask",
    "RetryPolicy",
    "Send",
    "StateSnapshot",
    "StateUpdate",
    "StreamMode",
    "default_retry_on",
]

StreamMode = Literal["values", "updates", "checkpoints", "tasks", "debug", "custom", "messages"]


@dataclass(eq=False, slots=True)
class Send:
    """Run ``node`` in the next superstep with ``arg`` as its input (map-reduce fan-out).

    Returned from a conditional edge (or in ``Command(goto=...)``); each ``Send`` becomes
    its own task, so one node can run many times in parallel with different inputs.

    >>> Send("summarize", {"doc": "a"})
    Send(node='summarize', arg={'doc': 'a'})
    """

    node: str
    arg: Any

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Send) and (self.node, self.arg) == (other.node, other.arg)

    def __hash__(self) -> int:
        return hash(self.node)

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"


N = TypeVar("N", bound=str)
"""The node names a ``Command`` may go to: ``-> Command[Literal["a", "b"]]`` declares a
node's destinations (``get_graph()`` draws them)."""


@dataclass(frozen=True)
class Command(Generic[N], ToolOutputMixin):
    """A node's (or an input's) combined instruction: update state, go to nodes, resume.

    * ``update``: state writes, as a node would return them;
    * ``goto``: node name(s) or ``Send`` packets to run next;
    * ``resume``: the value an ``interrupt()`` returns when the run continues — a single
      value, or a mapping of interrupt id to value when several interrupts are pending;
    * ``graph``: ``Command.PARENT`` to address the parent graph of a subgraph.

    A LangChain tool may return one (it is a ``ToolOutputMixin``): ``ToolNode`` passes it
    on for the graph to apply.

    >>> Command(update={"n": 1}, goto="next")
    Command(update={'n': 1}, goto='next')
    """

    graph: str | None = None
    update: Any | None = None
    resume: Any | None = None
    goto: Send | str | Sequence[Send | str] = ()

    PARENT: ClassVar[str] = "__parent__"

    def __repr__(self) -> str:
        parts = [
            f"{name}={value!r}"
            for name, value in (
                ("graph", self.graph),
                ("update", self.update),
                ("resume", self.resume),
                ("goto", self.goto),
            )
            if value not in (None, ())
        ]
        return f"Command({', '.join(parts)})"

    def goto_targets(self) -> list[Send | str]:
        """``goto`` as a list."""
        if isinstance(self.goto, (str, Send)):
            return [self.goto]
        return list(self.goto or ())


def default_retry_on(exc: BaseException) -> bool:
    """Retry transient failures; never programming errors (LangGraph's default)."""
    if isinstance(exc, ConnectionError):
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return 500 <= status < 600
    return not isinstance(
        exc,
        (
            ValueError,
            TypeError,
            ArithmeticError,
            ImportError,
            LookupError,
            NameError,
            SyntaxError,
            RuntimeError,
            ReferenceError,
            StopIteration,
            StopAsyncIteration,
            OSError,
        ),
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing node is retried: exponential backoff with optional jitter.

    >>> RetryPolicy(max_attempts=5).interval(attempt=3)  # doctest: +SKIP
    2.0
    """

    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    max_attempts: int = 3
    jitter: bool = True
    retry_on: (
        type[BaseException] | Sequence[type[BaseException]] | Callable[[BaseException], bool]
    ) = default_retry_on

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")

    def should_retry(self, exc: BaseException) -> bool:
        """True when ``exc`` is one this policy retries."""
        retry_on = self.retry_on
        if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
            return isinstance(exc, retry_on)
        if isinstance(retry_on, Sequence):
            return isinstance(exc, tuple(retry_on))
        return bool(retry_on(exc))

    def interval(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = first retry)."""
        delay = min(self.max_interval, self.initial_interval * self.backoff_factor ** (attempt - 1))
        if self.jitter:
            delay += random.uniform(0, 1)
        return delay


@dataclass(frozen=True)
class Interrupt:
    """A pause requested by ``interrupt(value)``; ``id`` addresses it in a resume map."""

    value: Any
    id: str = ""

    def __repr__(self) -> str:
        return f"Interrupt(value={self.value!r}, id={self.id!r})"


class PregelTask(NamedTuple):
    """A task of the next superstep, as ``StateSnapshot.tasks`` shows it."""

    id: str
    name: str
    path: tuple[Any, ...] = ()
    error: Exception | None = None
    interrupts: tuple[Interrupt, ...] = ()
    state: Any = None
    result: Any = None


class StateSnapshot(NamedTuple):
    """A thread's state at one checkpoint: what ``get_state`` and history return."""

    values: dict[str, Any] | Any
    next: tuple[str, ...]
    config: dict[str, Any]
    metadata: dict[str, Any] | None
    created_at: str | None
    parent_config: dict[str, Any] | None
    tasks: tuple[PregelTask, ...]
    interrupts: tuple[Interrupt, ...] = ()


class StateUpdate(NamedTuple):
    """One update of ``bulk_update_state``."""

    values: dict[str, Any] | None
    as_node: str | None = None
    task_id: str | None = None


OVERWRITE = "__overwrite__"


@dataclass(frozen=True)
class Overwrite:
    """Write ``value`` to a reducer key as it is, bypassing the reducer (LangGraph 1.x).

    A node returns ``{"items": Overwrite(["only this"])}``; two ``Overwrite`` writes to one key
    in one step are an ``InvalidUpdateError``. Other writes to the key in that step, after
    the overwrite, are dropped (as LangGraph does). On a messages key the value is stored as
    ``add_messages`` would make it (whole messages with ids).

    >>> Overwrite([1]).value
    [1]
    """

    value: Any
    type: Literal["__overwrite__"] = OVERWRITE


@dataclass
class _Unset:
    """Marker type for "argument not given"."""

    name: str = field(default="UNSET")

    def __repr__(self) -> str:
        return self.name


UNSET: Any = _Unset()


def _register_with_serializer() -> None:
    """Make these values storable (Send packets sit in checkpoints; interrupts in writes)."""
    from relaygraph.persistence.serde import register_type

    for cls in (Send, Command, Interrupt, Overwrite):
        register_type(cls, name=f"relaygraph.{cls.__name__}")


_register_with_serializer()
