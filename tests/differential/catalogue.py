"""A catalogue of graphs, each written once against a library namespace (see ``libs.py``).

``case.build(lib)`` returns ``(compiled graph, calls)``; :func:`run_case` plays the calls on
one thread and returns a *trace*: every call's observable result, the thread's values and
``next`` after it, and finally the whole history as ``(step, source, next)``. The traces of
LangGraph and relaygraph must be equal.

Everything observable goes through :func:`normalize`: messages become ``(type, content)``,
random ids are dropped, errors become their family (see :func:`error_family`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import operator
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel

__all__ = ["CASES", "Case", "error_family", "normalize", "run_case"]

THREAD = "t"

# ---------------------------------------------------------------------------------------
# normalization


def error_family(exc: BaseException) -> tuple[str, ...]:
    """What an error must agree on in both libraries.

    The graph errors of both libraries compare by class name; relaygraph's messages may be
    clearer, so their text is not compared. An exception a node raised itself must come
    back unchanged: type name and message.
    """
    name = type(exc).__name__
    if name in {"GraphRecursionError", "InvalidUpdateError", "EmptyInputError"}:
        return ("error", name)
    if _raised_here(exc):
        return ("error", name, str(exc))
    builtin = next(b for b in type(exc).__mro__ if b.__module__ == "builtins")
    return ("error", builtin.__name__)


def _raised_here(exc: BaseException) -> bool:
    """True when ``exc`` was raised by a node of this catalogue (not by the library)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename in _CATALOGUE_FILES


_CATALOGUE_FILES = {__file__, __file__.replace("catalogue.py", "catalogue_v1.py")}


def normalize(value: Any) -> Any:
    """A library-independent, comparable form of ``value``."""
    if isinstance(value, BaseException):
        return error_family(value)
    kind = type(value).__name__
    if hasattr(value, "content") and kind.endswith("Message"):
        return ("msg", value.type, normalize(value.content))
    if kind == "Interrupt":
        return ("interrupt", normalize(value.value))
    if kind == "Send":
        return ("send", value.node, normalize(value.arg))
    if kind == "Command":
        return ("command", normalize(value.update), normalize(value.goto))
    if kind in {"Item", "SearchItem"}:
        return ("item", tuple(value.namespace), value.key, normalize(value.value))
    if isinstance(value, BaseModel):
        return (kind, normalize(dict(value)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            kind,
            normalize({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}),
        )
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items() if not _is_random_key(k)}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    return value


def _is_random_key(key: Any) -> bool:
    return key in {"checkpoint_id", "thread_ts", "id", "run_id", "created_at", "updated_at"}


def _history_row(snapshot: Any) -> tuple[Any, ...]:
    meta = snapshot.metadata or {}
    return (meta.get("step"), meta.get("source"), tuple(snapshot.next))


# ---------------------------------------------------------------------------------------
# calls: one step each, played on one thread


@dataclass
class Run:
    """The environment a call runs in."""

    lib: SimpleNamespace
    graph: Any
    config: dict[str, Any]
    last: Any = None  # the previous call's raw result

    def history(self, **kwargs: Any) -> list[Any]:
        return list(self.graph.get_state_history(self.config, **kwargs))

    @property
    def run_kwargs(self) -> dict[str, Any]:
        """The library's extra run arguments (they only apply with a checkpointer)."""
        return self.lib.run_kwargs if self.graph.checkpointer is not None else {}

    def invoke(self, input: Any, config: dict[str, Any], **kwargs: Any) -> Any:
        return self.graph.invoke(input, config, **self.run_kwargs, **kwargs)

    def stream(self, input: Any, config: dict[str, Any], **kwargs: Any) -> list[Any]:
        return list(self.graph.stream(input, config, **self.run_kwargs, **kwargs))


@dataclass
class Invoke:
    """``graph.invoke(input)``; ``config`` is merged into the thread's config."""

    input: Any
    config: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    sort_interrupts: bool = False
    """Order the result's ``__interrupt__`` by value: parallel tasks' interrupts come in
    completion order in LangGraph, which varies from run to run."""

    def __call__(self, run: Run) -> Any:
        result = run.invoke(self.input, {**run.config, **self.config}, **self.kwargs)
        if self.sort_interrupts and isinstance(result, dict) and "__interrupt__" in result:
            pending = sorted(result["__interrupt__"], key=lambda i: repr(i.value))
            result = {**result, "__interrupt__": pending}
        return result


@dataclass
class AInvoke(Invoke):
    """``await graph.ainvoke(input)`` in a fresh event loop."""

    def __call__(self, run: Run) -> Any:
        config = {**run.config, **self.config}
        kwargs = {**run.run_kwargs, **self.kwargs}
        return asyncio.run(run.graph.ainvoke(self.input, config, **kwargs))


@dataclass
class Stream(Invoke):
    """``list(graph.stream(input, stream_mode=mode))``."""

    mode: Any = "updates"

    def __call__(self, run: Run) -> Any:
        config = {**run.config, **self.config}
        return run.stream(self.input, config, stream_mode=self.mode, **self.kwargs)


@dataclass
class AStream(Stream):
    """``[c async for c in graph.astream(input, stream_mode=mode)]`` in a fresh event loop."""

    def __call__(self, run: Run) -> Any:
        config = {**run.config, **self.config}

        async def collect() -> list[Any]:
            kwargs = {**run.run_kwargs, **self.kwargs}
            stream = run.graph.astream(self.input, config, stream_mode=self.mode, **kwargs)
            return [chunk async for chunk in stream]

        return asyncio.run(collect())


@dataclass
class UpdateState:
    """``graph.update_state(config, values[, as_node])``: only success/failure is observed."""

    values: Any
    as_node: Any = "<infer>"

    def __call__(self, run: Run) -> Any:
        if self.as_node == "<infer>":
            run.graph.update_state(run.config, self.values)
        else:
            run.graph.update_state(run.config, self.values, as_node=self.as_node)
        return "updated"


@dataclass
class BulkUpdate:
    """``graph.bulk_update_state``: supersteps of ``(values, as_node)`` pairs."""

    supersteps: list[list[tuple[Any, str | None]]]

    def __call__(self, run: Run) -> Any:
        steps = [[run.lib.StateUpdate(v, n) for v, n in step] for step in self.supersteps]
        run.graph.bulk_update_state(run.config, steps)
        return "updated"


@dataclass
class Replay:
    """Run from an old checkpoint: ``invoke(None, snapshot.config)`` (a fork)."""

    pick: Callable[[list[Any]], Any]
    stream_mode: Any = None

    def __call__(self, run: Run) -> Any:
        snapshot = self.pick(run.history())
        if self.stream_mode is not None:
            return run.stream(None, snapshot.config, stream_mode=self.stream_mode)
        return run.invoke(None, snapshot.config)


@dataclass
class Resume:
    """``invoke(Command(resume=value))``; with ``per_interrupt`` a map by interrupt id
    (``only``: answer just the pending interrupt at that index, ordered by value)."""

    value: Any = None
    per_interrupt: Callable[[Any], Any] | None = None
    only: int | None = None

    def answer(self, pending: Any) -> Any:
        """The resume value, given the thread's pending interrupts."""
        if self.per_interrupt is None:
            return self.value
        chosen = sorted(pending, key=lambda i: repr(i.value))
        if self.only is not None:
            chosen = [chosen[self.only]]
        return {i.id: self.per_interrupt(i.value) for i in chosen}

    def __call__(self, run: Run) -> Any:
        value = self.answer(run.graph.get_state(run.config).interrupts)
        return run.invoke(run.lib.Command(resume=value), run.config)


@dataclass
class History:
    """``get_state_history`` with ``filter``, ``limit`` and ``before`` (an index of the
    unfiltered history, newest first): observed as ``(step, source, next)`` rows."""

    filter: dict[str, Any] | None = None
    limit: int | None = None
    before: int | None = None

    def __call__(self, run: Run) -> Any:
        kwargs: dict[str, Any] = {"filter": self.filter, "limit": self.limit}
        if self.before is not None:
            kwargs["before"] = run.history()[self.before].config
        return [_history_row(s) for s in run.graph.get_state_history(run.config, **kwargs)]


@dataclass
class Probe:
    """Anything else: ``fn(run)``'s result is observed."""

    fn: Callable[[Run], Any]

    def __call__(self, run: Run) -> Any:
        return self.fn(run)


def state_view(run: Run) -> Any:
    """What the trace records after each call: the thread's values, next nodes and tasks."""
    try:
        snapshot = run.graph.get_state(run.config)
    except Exception as exc:
        return normalize(exc)
    return {
        "values": normalize(snapshot.values),
        "next": tuple(snapshot.next),
        "tasks": sorted((t.name, t.error is not None, len(t.interrupts)) for t in snapshot.tasks),
    }


def run_case(case: Case, lib: SimpleNamespace) -> list[Any]:
    """Build ``case`` with ``lib``, play its calls on one thread and return the trace."""
    graph, calls = case.build(lib)
    run = Run(lib, graph, {"configurable": {"thread_id": THREAD}})
    trace: list[Any] = []
    for call in calls:
        try:
            result = call(run)
        except Exception as exc:
            result = exc
        run.last = result
        trace.append((type(call).__name__, normalize(result)))
        if graph.checkpointer is not None:
            trace.append(("state", state_view(run)))
    if graph.checkpointer is not None:
        trace.append(("history", [_history_row(s) for s in run.history()]))
    return trace


@dataclass(frozen=True)
class Case:
    """One graph of the catalogue."""

    name: str
    build: Callable[[SimpleNamespace], tuple[Any, list[Any]]]


CASES: list[Case] = []


def case(fn: Callable[[SimpleNamespace], tuple[Any, list[Any]]]) -> Callable:
    """Register ``fn`` as a catalogue case named after it."""
    CASES.append(Case(fn.__name__, fn))
    return fn


def saver(lib: SimpleNamespace) -> Any:
    return lib.MemorySaver()


def at_next(*names: str) -> Callable[[list[Any]], Any]:
    """Pick the newest snapshot of a history whose ``next`` is ``names``."""

    def pick(history: list[Any]) -> Any:
        return next(s for s in history if tuple(s.next) == names)

    return pick


# ---------------------------------------------------------------------------------------
# schemas


def keep_max(left: int | None, right: int | None) -> int:
    """A custom reducer."""
    return max(left or 0, right or 0)


class Log(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    best: Annotated[int, keep_max]
    note: str


class Wrapped(TypedDict):
    """Reducer keys declared as agent states declare them: ``NotRequired[...]``, abstract
    collection types (``create_react_agent``'s ``messages`` is a ``Sequence``)."""

    items: NotRequired[Annotated[list[str], operator.add]]
    seen: Annotated[Sequence[str], operator.add]
    tags: NotRequired[Annotated[Mapping[str, int], operator.or_]]


@dataclass
class DataState:
    count: int = 0
    items: Annotated[list[str], operator.add] = field(default_factory=list)


class ModelState(BaseModel):
    count: int = 0
    label: str = ""
    items: Annotated[list[str], operator.add] = []


class Subjects(TypedDict, total=False):
    subjects: list[str]
    results: Annotated[list[str], operator.add]
    summary: str


class Counter(TypedDict, total=False):
    count: int
    items: Annotated[list[str], operator.add]


def appender(text: str) -> Callable[[Any], dict[str, Any]]:
    def node(state: Any) -> dict[str, Any]:
        return {"items": [text]}

    node.__name__ = text
    return node


# ---------------------------------------------------------------------------------------
# the cases


@case
def typeddict_reducers(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def first(state: Log) -> dict[str, Any]:
        return {"items": ["first"], "best": 3, "note": "one"}

    def second(state: Log) -> dict[str, Any]:
        return {"items": [f"second saw {len(state['items'])}"], "best": 1, "note": "two"}

    b = lib.StateGraph(Log).add_node("first", first).add_node("second", second)
    b.add_edge(lib.START, "first").add_edge("first", "second").add_edge("second", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": ["in"], "best": 2}), Invoke({"items": ["again"], "best": 7})]


@case
def required_wrappers_and_abstract_types(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def first(state: Wrapped) -> dict[str, Any]:
        return {"items": [f"first saw {len(state['items'])}"], "tags": {"first": 1}}

    def second(state: Wrapped) -> dict[str, Any]:
        return {"items": ["second"], "seen": [f"{len(state['seen'])} seen"]}

    b = lib.StateGraph(Wrapped).add_node("first", first).add_node("second", second)
    b.add_edge(lib.START, "first").add_edge("first", "second").add_edge("second", lib.END)
    g = b.compile(checkpointer=saver(lib))

    def oldest_values(run: Run) -> Any:  # the input checkpoint: every reducer key empty
        return normalize(run.history()[-1].values)

    return g, [Invoke({"items": ["in"]}), Probe(oldest_values), Invoke({"seen": ["x"]})]


@case
def dataclass_schema(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def bump(state: DataState) -> dict[str, Any]:
        assert isinstance(state, DataState)
        return {"count": state.count + 1, "items": [f"seen {len(state.items)}"]}

    b = lib.StateGraph(DataState).add_node("bump", bump)
    b.add_edge(lib.START, "bump").add_edge("bump", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"count": 5}), Invoke(DataState(count=10, items=["x"]))]


@case
def pydantic_schema(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def label(state: ModelState) -> dict[str, Any]:
        assert isinstance(state, ModelState)
        return {"label": f"n={state.count}", "items": [state.label or "empty"]}

    def scale(state: ModelState) -> ModelState:
        return ModelState(count=state.count * 10)  # a model as the update: every field

    b = lib.StateGraph(ModelState).add_node("label", label).add_node("scale", scale)
    b.add_edge(lib.START, "label").add_edge("label", "scale").add_edge("scale", lib.END)
    g = b.compile(checkpointer=saver(lib))

    def invalid_input(run: Run) -> Any:
        # on a thread of its own: where the error surfaces (input or node) may differ
        config = {"configurable": {"thread_id": "invalid"}}
        try:
            run.invoke({"count": "not a number"}, config)
        except Exception as exc:
            return normalize(exc)
        return "no error"

    return g, [Invoke({"count": 2}), Invoke(ModelState(count=3, items=["m"])), Probe(invalid_input)]


@case
def messages_state(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def reply(state: Any) -> dict[str, Any]:
        last = state["messages"][-1]
        out = [lib.AIMessage(content=f"{last.type}: {last.content}")]
        if len(state["messages"]) > 4:  # forget the oldest message by id
            out.append(lib.RemoveMessage(id=state["messages"][0].id))
        return {"messages": out}

    b = lib.StateGraph(lib.MessagesState).add_node("reply", reply)
    b.add_edge(lib.START, "reply").add_edge("reply", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"messages": [lib.HumanMessage(content="hi")]}),
        Invoke({"messages": [("user", "as a tuple")]}),
        Invoke({"messages": [{"role": "user", "content": "as a dict"}]}),
        Invoke({"messages": [lib.HumanMessage(content="hi", id="fixed")]}),
        # same id again: replaces the message in place
        Invoke({"messages": [lib.HumanMessage(content="edited", id="fixed")]}),
    ]


@case
def messages_remove_all(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def summarize(state: Any) -> dict[str, Any]:
        if len(state["messages"]) < 3:
            return {"messages": [lib.AIMessage(content=f"{len(state['messages'])} so far")]}
        summary = lib.SystemMessage(content=f"summary of {len(state['messages'])}")
        return {"messages": [lib.RemoveMessage(id=lib.REMOVE_ALL_MESSAGES), summary]}

    b = lib.StateGraph(lib.MessagesState).add_node("summarize", summarize)
    b.add_edge(lib.START, "summarize").add_edge("summarize", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"messages": [("user", "one")]}),
        Invoke({"messages": [("user", "two")]}),  # three messages: all replaced by a summary
        Invoke({"messages": [("user", "three")]}),
    ]


@case
def remove_unknown_message(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def remove(state: Any) -> dict[str, Any]:
        return {"messages": [lib.RemoveMessage(id="no-such-id")]}

    b = lib.StateGraph(lib.MessagesState).add_node("remove", remove)
    b.add_edge(lib.START, "remove").add_edge("remove", lib.END)
    g = b.compile()  # LangGraph keeps the bad write pending: only the error is compared
    return g, [Invoke({"messages": [("user", "hello")]})]


@case
def echo(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def respond(state: Any) -> dict[str, Any]:
        return {"messages": [lib.AIMessage(content=f"Echo: {state['messages'][-1].content}")]}

    b = lib.StateGraph(lib.MessagesState).add_node("respond", respond)
    b.add_edge(lib.START, "respond").add_edge("respond", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"messages": [lib.HumanMessage(content="Hello!")]}),
        Invoke({"messages": [lib.HumanMessage(content="How are you?")]}),
    ]


@case
def linear_ten(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter)
    names = [f"n{i}" for i in range(10)]
    for name in names:
        b.add_node(name, appender(name))
    b.add_edge(lib.START, names[0])
    for left, right in itertools.pairwise(names):
        b.add_edge(left, right)
    b.add_edge(names[-1], lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []}), Stream({"items": ["again"]}, mode="values")]


@case
def conditional_path_map(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def route(state: Counter) -> str:
        return "big" if state["count"] > 2 else "small"

    b = lib.StateGraph(Counter).add_node("check", lambda s: {"items": ["check"]})
    b.add_node("yes", appender("yes")).add_node("no", appender("no"))
    b.add_edge(lib.START, "check")
    b.add_conditional_edges("check", route, {"big": "yes", "small": "no"})
    b.add_edge("yes", lib.END).add_edge("no", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"count": 5}), Invoke({"count": 1})]


@case
def conditional_no_path_map(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def route(state: Counter) -> Any:
        if state["count"] == 0:
            return lib.END
        if state["count"] == 1:
            return "left"
        return ["left", "right"]  # several targets run in parallel

    b = lib.StateGraph(Counter).add_node("left", appender("left"))
    b.add_node("right", appender("right"))
    b.add_conditional_edges(lib.START, route)
    b.add_edge("left", lib.END).add_edge("right", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"count": 0}), Invoke({"count": 1}), Invoke({"count": 2})]


@case
def loop_with_counter(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def step(state: Counter) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1, "items": [f"step {state.get('count', 0)}"]}

    def again(state: Counter) -> Literal["step", "__end__"]:
        return "step" if state["count"] < 5 else "__end__"

    b = lib.StateGraph(Counter).add_node("step", step)
    b.add_edge(lib.START, "step").add_conditional_edges("step", again)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"count": 0}), Stream({"count": 3}, mode="updates")]


@case
def fan_out_fan_in(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def slow(state: Counter) -> dict[str, Any]:
        time.sleep(0.03)
        return {"items": ["a"]}

    b = lib.StateGraph(Counter)
    b.add_node("a", slow).add_node("a2", appender("a2"))
    b.add_node("b", appender("b")).add_node("c", appender("c"))
    b.add_edge(lib.START, "a").add_edge(lib.START, "b").add_edge("a", "a2")
    b.add_edge(["a2", "b"], "c")  # c waits for both, and runs once
    b.add_edge("c", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []})]


@case
def send_map_reduce(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def fan(state: Subjects) -> list[Any]:
        return [
            lib.Send("work", {"subject": s, "index": i}) for i, s in enumerate(state["subjects"])
        ]

    def work(arg: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.02 * (4 - arg["index"]))  # later tasks finish first
        return {"results": [f"{arg['index']}:{arg['subject']}"]}

    def reduce(state: Subjects) -> dict[str, Any]:
        return {"summary": "|".join(state["results"])}

    b = lib.StateGraph(Subjects).add_node("work", work).add_node("reduce", reduce)
    b.add_conditional_edges(lib.START, fan, ["work"])
    b.add_edge("work", "reduce").add_edge("reduce", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"subjects": ["w", "x", "y", "z"]}), Stream({"subjects": ["p"]})]


@case
def command_goto(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def decide(state: Counter) -> Any:
        target = "odd" if state["count"] % 2 else "even"
        return lib.Command(update={"items": [f"decide {state['count']}"]}, goto=target)

    def finish(state: Counter) -> Any:
        return lib.Command(update={"count": state["count"] + 10}, goto=lib.END)

    b = lib.StateGraph(Counter).add_node("decide", decide)
    b.add_node("odd", appender("odd")).add_node("even", appender("even"))
    b.add_node("finish", finish)
    b.add_edge(lib.START, "decide").add_edge("odd", "finish").add_edge("even", "finish")
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"count": 1}), Invoke({"count": 2}), Stream({"count": 3}, mode="updates")]


@case
def recursion_limit(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def step(state: Counter) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1}

    b = lib.StateGraph(Counter).add_node("step", step)
    b.add_edge(lib.START, "step").add_edge("step", "step")  # never ends
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"count": 0}, config={"recursion_limit": 4})]


@case
def add_sequence(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def one(state: Counter) -> dict[str, Any]:
        return {"items": ["one"]}

    def two(state: Counter) -> dict[str, Any]:
        return {"items": ["two"]}

    b = lib.StateGraph(Counter).add_sequence([one, two, ("three", appender("three"))])
    b.add_edge(lib.START, "one").add_edge("three", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Stream({"items": []}, mode="updates")]


@case
def interrupt_single(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def ask(state: Counter) -> dict[str, Any]:
        name = lib.interrupt({"question": "name?"})
        again = lib.interrupt("sure?")
        return {"items": [f"name={name}", f"sure={again}"]}

    b = lib.StateGraph(Counter).add_node("before", appender("before")).add_node("ask", ask)
    b.add_edge(lib.START, "before").add_edge("before", "ask").add_edge("ask", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"items": []}),
        Resume("Ada"),
        Stream(lib.Command(resume="yes"), mode="updates"),
    ]


@case
def interrupt_parallel(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def asker(name: str) -> Callable[[Counter], dict[str, Any]]:
        def node(state: Counter) -> dict[str, Any]:
            return {"items": [f"{name} got {lib.interrupt(f'{name}?')}"]}

        return node

    b = lib.StateGraph(Counter).add_node("a", asker("a")).add_node("b", asker("b"))
    b.add_node("join", appender("join"))
    b.add_edge(lib.START, "a").add_edge(lib.START, "b").add_edge(["a", "b"], "join")
    b.add_edge("join", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"items": []}, sort_interrupts=True),
        Probe(lambda run: sorted(normalize(list(run.graph.get_state(run.config).interrupts)))),
        Resume(per_interrupt=lambda value: f"answer to {value}"),
    ]


@case
def interrupt_before_after_compile(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter).add_sequence([(n, appender(n)) for n in "abcd"])
    b.add_edge(lib.START, "a").add_edge("d", lib.END)
    g = b.compile(checkpointer=saver(lib), interrupt_before=["b"], interrupt_after=["c"])
    return g, [Invoke({"items": []}), Invoke(None), Invoke(None), Invoke(None)]


@case
def interrupt_before_after_invoke(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter).add_sequence([("a", appender("a")), ("b", appender("b"))])
    b.add_edge(lib.START, "a").add_edge("b", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"items": []}, kwargs={"interrupt_after": ["a"]}),
        Invoke(None),
        Invoke({"items": ["x"]}, kwargs={"interrupt_before": ["b"]}),
        Stream(None, mode="values"),
    ]


@case
def update_state_as_node(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter).add_sequence([("a", appender("a")), ("b", appender("b"))])
    b.add_edge(lib.START, "a").add_edge("b", lib.END)
    g = b.compile(checkpointer=saver(lib), interrupt_before=["b"])
    return g, [
        Invoke({"items": []}),
        UpdateState({"items": ["inferred"]}),  # as the last node that ran: a
        UpdateState({"items": ["as b"]}, as_node="b"),  # b's edges: b is done, next is END
        UpdateState({"count": 9}, as_node="a"),  # a again: next is b
        UpdateState({"items": ["nope"]}, as_node="missing"),
        Invoke(None),
    ]


@case
def update_state_ambiguous(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter).add_node("a", appender("a")).add_node("b", appender("b"))
    b.add_edge(lib.START, "a").add_edge(lib.START, "b")
    b.add_edge("a", lib.END).add_edge("b", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        UpdateState({"count": 1}),  # fresh thread: as the input
        Invoke({"items": []}),
        UpdateState({"count": 2}),  # a and b both ran last: ambiguous
        UpdateState({"count": 3}, as_node="a"),
    ]


@case
def replay_fork(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    calls = {"b": 0}

    def b_node(state: Counter) -> dict[str, Any]:
        calls["b"] += 1
        return {"items": [f"b#{calls['b']}"]}

    b = lib.StateGraph(Counter).add_node("a", appender("a")).add_node("b", b_node)
    b.add_node("c", appender("c"))
    b.add_edge(lib.START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"items": []}),
        Replay(at_next("b")),  # re-runs b and c only
        Probe(lambda run: dict(calls)),
        Replay(at_next("c"), stream_mode="updates"),
        Replay(lambda h: h[-1]),  # the very first (input) checkpoint
    ]


@case
def history_filters(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter)
    b.add_sequence([("a", appender("a")), ("b", appender("b")), ("c", appender("c"))])
    b.add_edge(lib.START, "a").add_edge("c", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"items": []}, config={"metadata": {"user": "u1"}}),
        UpdateState({"count": 1}, as_node="c"),
        Invoke({"items": ["two"]}),
        History(filter={"source": "loop"}),
        History(filter={"source": "update"}),
        History(filter={"step": 2}),
        History(filter={"user": "u1"}),
        History(limit=3),
        History(before=2),
        History(before=1, limit=2, filter={"source": "loop"}),
    ]


@case
def failing_sibling(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    calls = {"ok": 0, "flaky": 0, "join": 0}
    ok_done = threading.Event()

    def ok(state: Counter) -> dict[str, Any]:
        calls["ok"] += 1
        ok_done.set()
        return {"items": ["ok"]}

    def flaky(state: Counter) -> dict[str, Any]:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            # fail only once ok's writes are saved: LangGraph drops a sibling's writes that
            # are still in flight when a task fails (the timeout only guards a serial runner)
            ok_done.wait(timeout=1.0)
            time.sleep(0.1)
            raise ValueError("flaky failed once")
        return {"items": ["flaky"]}

    def join(state: Counter) -> dict[str, Any]:
        calls["join"] += 1
        return {"items": [f"join saw {sorted(state['items'])}"]}

    b = lib.StateGraph(Counter).add_node("ok", ok).add_node("flaky", flaky)
    b.add_node("join", join)
    b.add_edge(lib.START, "ok").add_edge(lib.START, "flaky").add_edge(["ok", "flaky"], "join")
    b.add_edge("join", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"items": []}),
        Probe(lambda run: dict(calls)),
        Invoke(None),
        Probe(lambda run: dict(calls)),
    ]


@case
def retry_policy(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    calls = {"n": 0}

    def flaky(state: Counter) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError(f"attempt {calls['n']}")
        return {"count": calls["n"]}

    policy = lib.RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False)
    b = lib.StateGraph(Counter).add_node("flaky", flaky, retry_policy=policy)
    b.add_edge(lib.START, "flaky").add_edge("flaky", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"count": 0}),
        Probe(lambda run: dict(calls)),
        Probe(lambda run: calls.update(n=-5)),  # now it fails more often than retried
        Invoke({"count": 0}),
    ]


@case
def last_value_conflict(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter)
    b.add_node("a", lambda s: {"count": 1}).add_node("b", lambda s: {"count": 2})
    b.add_edge(lib.START, "a").add_edge(lib.START, "b")
    b.add_edge("a", lib.END).add_edge("b", lib.END)
    g = b.compile()  # LangGraph keeps the bad writes pending: only the error is compared
    return g, [Invoke({"count": 0})]


@case
def stream_modes(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def talk(state: Counter) -> dict[str, Any]:
        writer = lib.get_stream_writer()
        writer({"progress": 1})
        writer("halfway")
        return {"items": ["talk"], "count": 1}

    b = lib.StateGraph(Counter).add_sequence([("talk", talk), ("done", appender("done"))])
    b.add_edge(lib.START, "talk").add_edge("done", lib.END)
    g = b.compile(checkpointer=saver(lib))

    def checkpoints(run: Run) -> Any:
        chunks = run.stream({"items": ["c"]}, run.config, stream_mode="checkpoints")
        return [
            (c["metadata"]["step"], c["metadata"]["source"], tuple(c["next"]), c["values"])
            for c in chunks
        ]

    return g, [
        Stream({"items": []}, mode="values"),
        Stream({"items": []}, mode="updates"),
        Stream({"items": []}, mode="custom"),
        Stream({"items": []}, mode=["updates", "custom", "values"]),
        Probe(checkpoints),
    ]


@case
def config_and_store(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    store = lib.InMemoryStore()

    # unannotated, as the lesson writes them (LangGraph ignores other annotations)
    def remember(state: Counter, config, *, store) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        user = config["configurable"]["user"]
        ns = ("users", user)
        seen = [item.value["n"] for item in store.search(ns)]
        store.put(ns, f"k{len(seen)}", {"n": state["count"]})
        return {"items": [f"{user} had {sorted(seen)}"]}

    b = lib.StateGraph(Counter).add_node("remember", remember)
    b.add_edge(lib.START, "remember").add_edge("remember", lib.END)
    g = b.compile(checkpointer=saver(lib), store=store)
    alice = {"configurable": {"thread_id": THREAD, "user": "alice"}}
    bob = {"configurable": {"thread_id": THREAD, "user": "bob"}}
    return g, [
        Invoke({"count": 1}, config=alice),
        Invoke({"count": 2}, config=alice),
        Invoke({"count": 3}, config=bob),
        Probe(lambda run: sorted(normalize(store.search(("users",))))),
    ]


@case
def async_nodes(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    async def slow(state: Counter) -> dict[str, Any]:
        await asyncio.sleep(0.02)
        return {"items": ["slow"]}

    async def fast(state: Counter) -> dict[str, Any]:
        return {"items": ["fast"]}

    def sync(state: Counter) -> dict[str, Any]:
        return {"items": [f"sync after {len(state['items'])}"]}

    b = lib.StateGraph(Counter).add_node("slow", slow).add_node("fast", fast)
    b.add_node("sync", sync)
    b.add_edge(lib.START, "slow").add_edge(lib.START, "fast").add_edge(["slow", "fast"], "sync")
    b.add_edge("sync", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        AInvoke({"items": []}),
        AInvoke({"items": ["more"]}),
        AStream({"items": ["streamed"]}, mode="values"),
    ]


@case
def subgraph_node(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    inner = lib.StateGraph(Counter).add_node("i1", appender("i1")).add_node("i2", appender("i2"))
    inner.add_edge(lib.START, "i1").add_edge("i1", "i2").add_edge("i2", lib.END)
    child = inner.compile()

    b = lib.StateGraph(Counter).add_node("before", appender("before"))
    b.add_node("child", child).add_node("after", appender("after"))
    b.add_edge(lib.START, "before").add_edge("before", "child").add_edge("child", "after")
    b.add_edge("after", lib.END)
    g = b.compile(checkpointer=saver(lib))

    def with_subgraphs(run: Run) -> Any:
        chunks = run.stream({"items": []}, run.config, stream_mode="updates", subgraphs=True)
        return [(tuple(ns.split(":")[0] for ns in namespace), chunk) for namespace, chunk in chunks]

    def several_modes(run: Run) -> Any:  # (namespace, mode, chunk): flat, as LangGraph 1.x
        modes = ["values", "updates"]
        chunks = run.stream({"items": []}, run.config, stream_mode=modes, subgraphs=True)
        return [(tuple(ns.split(":")[0] for ns in c[0]), *c[1:]) for c in chunks]

    return g, [Invoke({"items": []}), Probe(with_subgraphs), Probe(several_modes)]


@case
def subgraph_invoked_in_a_node(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    """A node that calls a compiled graph: streamed as a subgraph, under the node's
    namespace (sync and async nodes)."""
    inner = lib.StateGraph(Counter).add_node("i1", appender("i1")).add_node("i2", appender("i2"))
    inner.add_edge(lib.START, "i1").add_edge("i1", "i2").add_edge("i2", lib.END)
    child = inner.compile()

    def call(state: Counter) -> dict[str, Any]:
        return {"items": child.invoke({"items": ["sync"]})["items"]}

    async def acall(state: Counter) -> dict[str, Any]:
        return {"items": (await child.ainvoke({"items": ["async"]}))["items"]}

    b = lib.StateGraph(Counter).add_node("call", call).add_node("acall", acall)
    b.add_edge(lib.START, "call").add_edge("call", "acall").add_edge("acall", lib.END)
    g = b.compile(checkpointer=saver(lib))

    def streamed(run: Run) -> Any:
        async def collect() -> list[Any]:
            stream = run.graph.astream(
                {"items": []}, run.config, stream_mode=["updates", "values"], subgraphs=True
            )
            return [c async for c in stream]

        chunks = asyncio.run(collect())
        return [(tuple(ns.split(":")[0] for ns in c[0]), *c[1:]) for c in chunks]

    return g, [Probe(streamed), AInvoke({"items": []})]


@case
def subgraph_interrupt(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def ask(state: Counter) -> dict[str, Any]:
        return {"items": [f"inner got {lib.interrupt('inner?')}"]}

    inner = lib.StateGraph(Counter).add_node("i1", appender("i1")).add_node("ask", ask)
    inner.add_edge(lib.START, "i1").add_edge("i1", "ask").add_edge("ask", lib.END)

    b = lib.StateGraph(Counter).add_node("child", inner.compile())
    b.add_node("after", appender("after"))
    b.add_edge(lib.START, "child").add_edge("child", "after").add_edge("after", lib.END)
    g = b.compile(checkpointer=saver(lib))

    def child_state(run: Run) -> Any:
        snapshot = run.graph.get_state(run.config, subgraphs=True)
        return [(t.name, normalize(t.state.values), tuple(t.state.next)) for t in snapshot.tasks]

    return g, [Invoke({"items": []}), Probe(child_state), Resume("deep")]


@case
def bulk_update_state(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter).add_sequence([("a", appender("a")), ("b", appender("b"))])
    b.add_edge(lib.START, "a").add_edge("b", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        BulkUpdate([[({"items": ["seed"], "count": 1}, None)], [({"items": ["as a"]}, "a")]]),
        Invoke(None),
        BulkUpdate([[({"items": ["x"]}, "a"), ({"count": 7}, "b")]]),
    ]


@case
def steps_across_invokes(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter).add_sequence([("a", appender("a")), ("b", appender("b"))])
    b.add_edge(lib.START, "a").add_edge("b", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": ["1"]}), Invoke({"items": ["2"]}), Invoke({"items": ["3"]})]


@case
def input_discards_interrupted(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def ask(state: Counter) -> dict[str, Any]:
        return {"items": [f"ask got {lib.interrupt('answer?')}"]}

    b = lib.StateGraph(Counter).add_sequence([("a", appender("a")), ("ask", ask)])
    b.add_edge(lib.START, "a").add_edge("ask", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"items": ["first"]}),
        Invoke({"items": ["second"]}),  # new input: the pending ask is dropped, a runs again
        Resume("finally"),
    ]


@case
def no_checkpointer(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter).add_sequence([("a", appender("a")), ("b", appender("b"))])
    b.add_edge(lib.START, "a").add_edge("b", lib.END)
    g = b.compile()
    return g, [
        Invoke({"items": ["x"]}),
        Stream({"items": ["y"]}, mode="values"),
        AInvoke({"items": ["z"]}),
    ]


# LangGraph 1.x API cases (issue 15) live in their own module and register here.
from . import catalogue_v1  # noqa: E402, F401
