"""Catalogue cases for LangGraph 1.x API completeness (issue 15).

Registered into :data:`catalogue.CASES` (imported at the end of ``catalogue.py``); written
once against a library namespace like every other case.
"""

from __future__ import annotations

import asyncio
import operator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Annotated, Any, TypedDict

from relaygraph import Runtime  # an annotation only: both libraries accept any type

from .catalogue import (
    Counter,
    Invoke,
    Probe,
    Resume,
    Run,
    Stream,
    UpdateState,
    appender,
    case,
    normalize,
    saver,
)


@dataclass
class UserContext:
    """A run's context (``context_schema``)."""

    user: str
    tone: str = "plain"


# -- 1. Runtime and context -------------------------------------------------------------


@case
def runtime_context(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    store = lib.InMemoryStore()

    def greet(state: Counter, runtime: Runtime[UserContext]) -> dict[str, Any]:
        ctx = runtime.context
        runtime.stream_writer({"greeting": ctx.user})
        has_store = runtime.store is not None
        return {"items": [f"hello {ctx.user} ({ctx.tone}) store={has_store}"]}

    def again(state: Counter) -> dict[str, Any]:
        runtime = lib.get_runtime(UserContext)
        return {"items": [f"again {runtime.context.user}"], "count": len(state["items"])}

    def route(state: Counter, runtime: Runtime[UserContext]) -> str:
        return "again" if runtime.context.tone == "plain" else lib.END

    b = lib.StateGraph(Counter, context_schema=UserContext)
    b.add_node("greet", greet).add_node("again", again)
    b.add_edge(lib.START, "greet").add_conditional_edges("greet", route, ["again", lib.END])
    b.add_edge("again", lib.END)
    g = b.compile(checkpointer=saver(lib), store=store)
    return g, [
        Invoke({"items": []}, kwargs={"context": {"user": "ada"}}),
        Invoke({"items": []}, kwargs={"context": UserContext("bob", "warm")}),
        Stream({"items": []}, mode=["custom", "updates"], kwargs={"context": {"user": "cy"}}),
    ]


@case
def runtime_context_subgraph(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def inner(state: Counter, runtime: Runtime) -> dict[str, Any]:
        return {"items": [f"inner sees {runtime.context['user']}"]}

    sub = lib.StateGraph(Counter).add_node("inner", inner)
    sub.add_edge(lib.START, "inner").add_edge("inner", lib.END)
    child = sub.compile()

    def call_child(state: Counter) -> dict[str, Any]:
        out = child.invoke({"items": []})
        return {"items": [f"called: {out['items']}"]}

    b = lib.StateGraph(Counter).add_node("child", child).add_node("call", call_child)
    b.add_edge(lib.START, "child").add_edge("child", "call").add_edge("call", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []}, kwargs={"context": {"user": "dee"}})]


@case
def runtime_context_invoke(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    """Invokes only, so it also runs on workers (the context travels with the run)."""

    def greet(state: Counter, runtime: Runtime[UserContext]) -> dict[str, Any]:
        ctx = runtime.context
        return {"items": [f"{type(ctx).__name__} {ctx.user} ({ctx.tone})"]}

    def again(state: Counter) -> dict[str, Any]:
        return {"items": [f"again {lib.get_runtime().context.user}"]}

    b = lib.StateGraph(Counter, context_schema=UserContext)
    b.add_sequence([("greet", greet), ("again", again)]).add_edge(lib.START, "greet")
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"items": []}, kwargs={"context": {"user": "ada"}}),
        Invoke({"items": []}, kwargs={"context": UserContext("bob", "warm")}),
    ]


def _execution_facts(runtime: Any) -> str:
    """What a node can tell of its ``runtime.execution_info`` the same way on every run."""
    info = runtime.execution_info
    shape = "|".join(part.split(":")[0] for part in info.checkpoint_ns.split("|"))
    own_task = info.checkpoint_ns.endswith(f":{info.task_id}")
    runtime.heartbeat()
    # thread and run ids are the caller's: a worker's run has an id of its own (see
    # runtime_execution_info_checkpoints for their values)
    return (
        f"attempt={info.node_attempt} thread={info.thread_id is not None} ns={shape} "
        f"own_task={own_task} server={runtime.server_info} "
        f"drain={runtime.control.drain_requested}"
    )


def _retried_once(lib: SimpleNamespace, name: str) -> Any:
    def node(state: Counter, runtime: Runtime) -> dict[str, Any]:
        facts = _execution_facts(runtime)
        if runtime.execution_info.node_attempt == 1:
            raise ValueError("first attempt fails")  # the same on every worker
        return {"items": [f"{name}: {facts}"]}

    return node


@case
def runtime_execution_info(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    """Invokes only, so it also runs on workers (a retry there is a new broker message)."""
    retry = lib.RetryPolicy(
        max_attempts=3, initial_interval=0.01, jitter=False, retry_on=ValueError
    )
    sub = lib.StateGraph(Counter).add_node("inner", _retried_once(lib, "inner"), retry_policy=retry)
    sub.add_edge(lib.START, "inner")
    b = lib.StateGraph(Counter).add_node("outer", _retried_once(lib, "outer"), retry_policy=retry)
    b.add_node("child", sub.compile()).add_edge(lib.START, "outer").add_edge("outer", "child")
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []}), Invoke({"items": []}, config={"run_id": RUN_ID})]


RUN_ID = "00000000-0000-4000-8000-00000000beef"


@case
def runtime_execution_info_checkpoints(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    """The checkpoint a node runs against, and its first attempt's time across retries."""
    seen: list[Any] = []

    def node(state: Counter, runtime: Runtime) -> dict[str, Any]:
        info = runtime.execution_info
        seen.append((info.checkpoint_id, info.node_first_attempt_time))
        ids.append((info.thread_id, info.run_id))
        if info.node_attempt == 1:
            raise ValueError("first attempt fails")
        return {"items": ["ok"]}

    retry = lib.RetryPolicy(
        max_attempts=2, initial_interval=0.01, jitter=False, retry_on=ValueError
    )
    b = lib.StateGraph(Counter).add_node("a", appender("a")).add_node("b", node, retry_policy=retry)
    b.add_edge(lib.START, "a").add_edge("a", "b")
    g = b.compile(checkpointer=saver(lib))

    ids: list[Any] = []

    def facts(run: Run) -> Any:
        checkpoints = [s.config["configurable"]["checkpoint_id"] for s in run.history()]
        (first_id, first_time), (second_id, second_time) = seen[-2:]
        return (
            checkpoints.index(first_id),
            first_id == second_id,
            isinstance(first_time, float) and first_time == second_time,
            ids[-2:],
        )

    def outside(run: Run) -> Any:
        return lib.Runtime().execution_info, lib.Runtime().server_info

    return g, [
        Invoke({"items": []}),
        Probe(facts),
        Invoke({"items": []}, config={"run_id": RUN_ID}),
        Probe(facts),
        Probe(outside),
    ]


# -- 2. Command(graph=Command.PARENT) -----------------------------------------------------


@case
def command_parent(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def hand_off(state: Counter) -> Any:
        return lib.Command(
            graph=lib.Command.PARENT, goto="billing", update={"items": ["handed off"]}
        )

    sub = lib.StateGraph(Counter).add_node("triage", appender("triage"))
    sub.add_node("hand_off", hand_off)
    sub.add_edge(lib.START, "triage").add_edge("triage", "hand_off")
    agent = sub.compile()

    b = lib.StateGraph(Counter).add_node("agent", agent, destinations=("billing",))
    b.add_node("billing", appender("billing")).add_node("support", appender("support"))
    b.add_edge(lib.START, "agent").add_edge("billing", lib.END).add_edge("support", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []}), Invoke({"items": ["again"]})]


@case
def command_parent_from_called_subgraph(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def hand_off(state: Counter) -> Any:
        return lib.Command(graph=lib.Command.PARENT, goto="support", update={"count": 7})

    sub = lib.StateGraph(Counter).add_node("hand_off", hand_off)
    sub.add_edge(lib.START, "hand_off")
    agent = sub.compile()

    def call_agent(state: Counter) -> dict[str, Any]:
        agent.invoke({"items": []})
        return {"items": ["not reached"]}

    b = lib.StateGraph(Counter).add_node("agent", call_agent)
    b.add_node("support", appender("support"))
    b.add_edge(lib.START, "agent").add_edge("support", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []})]


# -- 3. interrupt() in a subgraph a node function invokes ----------------------------------


@case
def interrupt_in_called_subgraph(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def ask(state: Counter) -> dict[str, Any]:
        return {"items": [f"inner got {lib.interrupt('inner?')}"]}

    sub = lib.StateGraph(Counter).add_node("i1", appender("i1")).add_node("ask", ask)
    sub.add_edge(lib.START, "i1").add_edge("i1", "ask").add_edge("ask", lib.END)
    child = sub.compile()

    def call_child(state: Counter) -> dict[str, Any]:
        out = child.invoke({"items": ["from parent"]})
        return {"items": [f"child said {out['items']}"]}

    b = lib.StateGraph(Counter).add_node("before", appender("before"))
    b.add_node("call", call_child).add_node("after", appender("after"))
    b.add_edge(lib.START, "before").add_edge("before", "call").add_edge("call", "after")
    b.add_edge("after", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []}), Resume("deep")]  # invokes only: also on workers


# -- 4. recursion limit: default and boundary ------------------------------------------------


def _looper(lib: SimpleNamespace, rounds: int) -> Any:
    def step(state: Counter) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1}

    b = lib.StateGraph(Counter).add_node("step", step)
    b.add_edge(lib.START, "step")
    b.add_conditional_edges("step", lambda s: lib.END if s["count"] >= rounds else "step")
    return b


@case
def recursion_default_limit(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    g = _looper(lib, 100).compile()
    return g, [Invoke({"count": 0})]


@case
def recursion_limit_boundary(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter).add_sequence([(n, appender(n)) for n in "abc"])
    b.add_edge(lib.START, "a").add_edge("c", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Invoke({"items": []}, config={"recursion_limit": 3}),
        Invoke({"items": []}, config={"recursion_limit": 4}),
    ]


# -- 5. private state from type hints --------------------------------------------------------


class Overall(TypedDict):
    a: str


class Node1Out(TypedDict):
    private_data: str


class Node2In(TypedDict):
    private_data: str


@case
def private_state_from_hints(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def node_1(state: Overall) -> Node1Out:
        return {"private_data": f"set by node_1 from {state['a']}"}

    def node_2(state: Node2In) -> Overall:
        return {"a": f"node_2 saw {sorted(state)}: {state['private_data']}"}

    def node_3(state: Overall) -> Overall:
        return {"a": state["a"] + "!"}

    b = lib.StateGraph(Overall).add_sequence([node_1, node_2, node_3])
    b.add_edge(lib.START, "node_1")
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"a": "x"}), Stream({"a": "y"}, mode="values")]


# -- 6. batch / abatch -----------------------------------------------------------------------


@case
def batch_and_abatch(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def double(state: Counter) -> dict[str, Any]:
        if state["count"] < 0:
            raise ValueError("negative")
        return {"count": state["count"] * 2}

    b = lib.StateGraph(Counter).add_node("double", double)
    b.add_edge(lib.START, "double").add_edge("double", lib.END)
    g = b.compile()
    inputs = [{"count": n} for n in (1, 2, 3)]

    def batch(run: Run) -> Any:
        return run.graph.batch(inputs)

    def abatch(run: Run) -> Any:
        return asyncio.run(run.graph.abatch(inputs))

    def with_errors(run: Run) -> Any:
        out = run.graph.batch([{"count": 1}, {"count": -1}], return_exceptions=True)
        return [normalize(x) for x in out]

    return g, [Probe(batch), Probe(abatch), Probe(with_errors)]


# -- 7. input / output schemas ---------------------------------------------------------------


class AskIn(TypedDict):
    question: str


class AskOut(TypedDict):
    answer: str


class AskAll(TypedDict):
    question: str
    answer: str
    notes: str


@case
def input_output_schemas(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def think(state: AskIn) -> dict[str, Any]:
        return {"notes": f"thinking about {state['question']}", "answer": "42"}

    b = lib.StateGraph(AskAll, input_schema=AskIn, output_schema=AskOut)
    b.add_node("think", think).add_edge(lib.START, "think").add_edge("think", lib.END)
    g = b.compile(checkpointer=saver(lib))
    history = Probe(lambda run: [normalize(s.values) for s in run.history()])
    return g, [
        Invoke({"question": "why?"}),
        Stream({"question": "how?"}, mode="values"),
        Stream({"question": "when?"}, mode="updates"),
        history,
    ]


# -- 8. __interrupt__ chunks -------------------------------------------------------------------


@case
def interrupt_stream_chunks(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def ask(state: Counter) -> dict[str, Any]:
        return {"items": [f"ask got {lib.interrupt('answer?')}"]}

    b = lib.StateGraph(Counter).add_sequence([("pre", appender("pre")), ("ask", ask)])
    b.add_edge(lib.START, "pre").add_edge("ask", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [
        Stream({"items": []}, mode="values"),
        Stream(lib.Command(resume="A"), mode="values"),
        Stream({"items": []}, mode="updates"),
        Stream(lib.Command(resume="B"), mode=["updates", "values"]),
        Stream({"items": []}, mode="updates", kwargs={"interrupt_after": ["pre"]}),
        Stream(None, mode=["values", "updates"], kwargs={"interrupt_before": ["ask"]}),
    ]


# -- distributed: parallel interrupts answered one at a time ----------------------------------


@case
def interrupt_parallel_one_by_one(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def asker(name: str) -> Any:
        def node(state: Counter) -> dict[str, Any]:
            return {"items": [f"{name} got {lib.interrupt(f'{name}?')}"]}

        return node

    b = lib.StateGraph(Counter).add_node("p", asker("p")).add_node("q", asker("q"))
    b.add_node("join", appender("join"))
    b.add_edge(lib.START, "p").add_edge(lib.START, "q").add_edge(["p", "q"], "join")
    b.add_edge("join", lib.END)
    g = b.compile(checkpointer=saver(lib))
    answer = lambda value: f"answer to {value}"  # noqa: E731
    return g, [
        Invoke({"items": []}, sort_interrupts=True),
        Resume(per_interrupt=answer, only=0),
        Resume(per_interrupt=answer, only=0),
    ]


@case
def interrupt_parallel_one_by_one_stream(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def asker(name: str) -> Any:
        def node(state: Counter) -> dict[str, Any]:
            return {"items": [f"{name} got {lib.interrupt(f'{name}?')}"]}

        return node

    b = lib.StateGraph(Counter).add_node("p", asker("p")).add_node("q", asker("q"))
    b.add_edge(lib.START, "p").add_edge(lib.START, "q")
    g = b.compile(checkpointer=saver(lib))

    def resume_first(run: Run) -> Any:
        pending = sorted(run.graph.get_state(run.config).interrupts, key=lambda i: i.value)
        command = run.lib.Command(resume={pending[0].id: "first"})
        return normalize(run.stream(command, run.config, stream_mode="values"))

    return g, [
        Invoke({"items": []}, sort_interrupts=True),
        Probe(resume_first),
        Resume(per_interrupt=str, only=0),
    ]


_ = (operator, Annotated)


# -- 9. compile(checkpointer=True): a subgraph with its own memory ----------------------------


@case
def subgraph_checkpointer_true(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def remember(state: Counter) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1, "items": [f"call {state.get('count', 0)}"]}

    sub = lib.StateGraph(Counter).add_node("remember", remember)
    sub.add_edge(lib.START, "remember").add_edge("remember", lib.END)
    child = sub.compile(checkpointer=True)

    def outer(state: Counter) -> dict[str, Any]:
        out = child.invoke({"items": []})
        return {"items": [f"child count {out['count']} items {out['items']}"]}

    b = lib.StateGraph(Counter).add_node("outer", outer)
    b.add_edge(lib.START, "outer").add_edge("outer", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []}), Invoke({"items": []}), Invoke({"items": []})]


# -- 10. a failed task in the snapshot ----------------------------


@case
def task_error_type(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def ok(state: Counter) -> dict[str, Any]:
        return {"items": ["ok"]}

    def boom(state: Counter) -> dict[str, Any]:
        raise KeyError("missing")

    b = lib.StateGraph(Counter).add_sequence([("ok", ok), ("boom", boom)])
    b.add_edge(lib.START, "ok")
    g = b.compile(checkpointer=saver(lib))
    # The error's type differs on purpose (docs/deviations.md, tests/test_deviations.py):
    # LangGraph 1.2 shows its repr as a str, relaygraph the exception's own type.
    return g, [Invoke({"items": []}), Invoke(None)]


# -- 12. subgraph introspection --------------------------------------------------------------


def _child_interrupt_graph(lib: SimpleNamespace) -> Any:
    def ask(state: Counter) -> dict[str, Any]:
        return {"items": [f"inner got {lib.interrupt('inner?')}"]}

    inner = lib.StateGraph(Counter).add_node("ask", ask)
    inner.add_edge(lib.START, "ask").add_edge("ask", lib.END)
    b = lib.StateGraph(Counter).add_node("child", inner.compile())
    b.add_node("after", appender("after"))
    b.add_edge(lib.START, "child").add_edge("child", "after").add_edge("after", lib.END)
    return b.compile(checkpointer=saver(lib))


@case
def subgraph_introspection(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    g = _child_interrupt_graph(lib)

    def task_state(run: Run) -> Any:
        tasks = run.graph.get_state(run.config).tasks
        return [
            (t.name, sorted(t.state["configurable"]), t.state["configurable"]["checkpoint_ns"][:6])
            for t in tasks
        ]

    def history_rows(run: Run) -> Any:
        return [
            (tuple(s.next), [(t.name, len(t.interrupts)) for t in s.tasks]) for s in run.history()
        ]

    def subgraphs(run: Run) -> Any:
        return [name for name, _ in run.graph.get_subgraphs()]

    return g, [Invoke({"items": []}), Probe(task_state), Probe(history_rows), Probe(subgraphs)]


# -- 13. get_state_history(config with checkpoint_id) -------------------------------------------


@case
def history_from_checkpoint(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    b = lib.StateGraph(Counter).add_sequence([(n, appender(n)) for n in "abc"])
    b.add_edge(lib.START, "a").add_edge("c", lib.END)
    g = b.compile(checkpointer=saver(lib))

    def from_middle(run: Run) -> Any:
        middle = run.history()[2]
        rows = run.graph.get_state_history(middle.config)
        return [(s.metadata["step"], tuple(s.next)) for s in rows]

    return g, [Invoke({"items": []}), Probe(from_middle)]


# -- 15. InMemoryStore.list_namespaces after the last delete ------------------------------------


@case
def store_namespaces_after_delete(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    store = lib.InMemoryStore()
    b = lib.StateGraph(Counter).add_node("a", appender("a")).add_edge(lib.START, "a")
    g = b.compile()

    def namespaces(run: Run) -> Any:
        store.put(("users", "ada"), "k", {"v": 1})
        store.put(("users", "bob"), "k", {"v": 2})
        store.put(("users", "bob"), "j", {"v": 3})
        store.delete(("users", "bob"), "k")
        # After the *last* item of a namespace is deleted the two differ on purpose:
        # docs/deviations.md, tests/test_deviations.py.
        return sorted(store.list_namespaces())

    return g, [Probe(namespaces)]


# -- 11. stream fidelity for tooling: tasks, debug, checkpoints -----------------------------


@case
def stream_tasks_debug_checkpoints(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def ask(state: Counter) -> dict[str, Any]:
        return {"items": [f"ask got {lib.interrupt('ok?')}"]}

    b = lib.StateGraph(Counter).add_sequence([("a", appender("a")), ("ask", ask)])
    b.add_edge(lib.START, "a").add_edge("ask", lib.END)
    g = b.compile(checkpointer=saver(lib))

    def streamed(mode: str, input: Any) -> Any:
        def probe(run: Run) -> Any:
            chunks = run.stream(input, run.config, stream_mode=mode)
            if mode == "debug":
                chunks = [{k: v for k, v in c.items() if k != "timestamp"} for c in chunks]
            if mode in ("checkpoints", "debug"):
                chunks = [_with_parent_flag(c) for c in chunks]
            return normalize(chunks)

        return Probe(probe)

    return g, [
        streamed("tasks", {"items": []}),
        streamed("debug", lib.Command(resume="yes")),
        streamed("checkpoints", {"items": ["again"]}),
    ]


def _with_parent_flag(chunk: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint event with ``parent_config`` reduced to whether it names a checkpoint."""
    payload = chunk.get("payload", chunk)
    if "parent_config" in payload:
        parent = payload["parent_config"]
        payload = {**payload, "parent_config": bool(parent and parent["configurable"])}
    return {**chunk, "payload": payload} if "payload" in chunk else payload


@case
def subgraph_node_checkpointer_true(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def remember(state: Counter) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1}

    sub = lib.StateGraph(Counter).add_node("remember", remember)
    sub.add_edge(lib.START, "remember").add_edge("remember", lib.END)

    b = lib.StateGraph(Counter).add_node("child", sub.compile(checkpointer=True))
    b.add_edge(lib.START, "child").add_edge("child", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []}), Invoke({"items": []}), Invoke({"items": []})]


@case
def subgraph_checkpointer_true_interrupt(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def ask(state: Counter) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1, "items": [f"got {lib.interrupt('more?')}"]}

    sub = lib.StateGraph(Counter).add_node("ask", ask)
    sub.add_edge(lib.START, "ask").add_edge("ask", lib.END)
    b = lib.StateGraph(Counter).add_node("child", sub.compile(checkpointer=True))
    b.add_edge(lib.START, "child").add_edge("child", lib.END)
    g = b.compile(checkpointer=saver(lib))

    def child_state(run: Run) -> Any:
        snapshot = run.graph.get_state(run.config, subgraphs=True)
        return [(t.name, normalize(t.state.values), tuple(t.state.next)) for t in snapshot.tasks]

    return g, [
        Invoke({"items": []}),
        Probe(child_state),
        Resume("one"),
        Invoke({"items": []}),
        Probe(child_state),
        Resume("two"),
    ]


# -- 14. deferred nodes ---------------------------------------------------------------------


def _deferred(lib: SimpleNamespace, fan_in: bool) -> Any:
    b = lib.StateGraph(Counter)
    for name in "abcd":
        b.add_node(name, appender(name))
    b.add_node("final", appender("final"), defer=True)
    b.add_edge(lib.START, "a").add_edge("a", "b").add_edge("a", "c").add_edge("c", "d")
    if fan_in:
        b.add_edge(["b", "d"], "final")
    else:
        b.add_edge("b", "final").add_edge("d", "final")
    b.add_edge("final", lib.END)
    return b.compile(checkpointer=saver(lib))


@case
def deferred_node(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    return _deferred(lib, fan_in=False), [
        Invoke({"items": []}),
        Stream({"items": ["again"]}, mode="updates"),
    ]


@case
def deferred_node_fan_in(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    return _deferred(lib, fan_in=True), [Invoke({"items": []}), Invoke({"items": ["again"]})]


@case
def deferred_node_with_interrupt(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def ask(state: Counter) -> dict[str, Any]:
        return {"items": [f"ask got {lib.interrupt('go?')}"]}

    b = lib.StateGraph(Counter).add_node("a", appender("a")).add_node("ask", ask)
    b.add_node("final", appender("final"), defer=True)
    b.add_edge(lib.START, "a").add_edge("a", "final").add_edge("a", "ask")
    b.add_edge("final", lib.END).add_edge("ask", lib.END)
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": []}), Resume("yes")]


# -- Overwrite: a write that bypasses the reducer ---------------------------------------------


@case
def overwrite_reducer(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def replace(state: Counter) -> dict[str, Any]:
        return {"items": lib.Overwrite([f"replaced {len(state['items'])}"])}

    def as_dict(state: Counter) -> dict[str, Any]:
        return {"items": {"__overwrite__": ["as a dict"]}}

    b = lib.StateGraph(Counter).add_node("a", appender("a")).add_node("b", appender("b"))
    b.add_node("replace", replace).add_node("after", appender("after"))
    b.add_node("as_dict", as_dict)
    b.add_edge(lib.START, "a").add_edge("a", "b").add_edge("a", "replace")
    b.add_edge(["b", "replace"], "after").add_edge("after", "as_dict")
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": ["in"]}), Invoke({"items": ["again"]})]


@case
def overwrite_twice_in_a_step(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def replace(name: str) -> Any:
        return lambda state: {"items": lib.Overwrite([name])}

    b = lib.StateGraph(Counter).add_node("p", replace("p")).add_node("q", replace("q"))
    b.add_edge(lib.START, "p").add_edge(lib.START, "q")
    g = b.compile(checkpointer=saver(lib))
    return g, [Invoke({"items": ["in"]})]


@case
def overwrite_messages_and_update_state(lib: SimpleNamespace) -> tuple[Any, list[Any]]:
    def reset(state: Any) -> dict[str, Any]:
        return {"messages": lib.Overwrite([lib.AIMessage("fresh start", id="f1")])}

    def reply(state: Any) -> dict[str, Any]:
        return {"messages": [lib.AIMessage(f"{len(state['messages'])} before me", id="r1")]}

    b = lib.StateGraph(lib.MessagesState).add_sequence([("reset", reset), ("reply", reply)])
    b.add_edge(lib.START, "reset")
    g = b.compile(checkpointer=saver(lib))
    hello = [lib.HumanMessage("hello", id="h1"), lib.HumanMessage("there", id="h2")]
    return g, [
        Invoke({"messages": hello}),
        UpdateState({"messages": lib.Overwrite([lib.HumanMessage("edited", id="e1")])}),
        Invoke({"messages": [lib.HumanMessage("more", id="h3")]}),
    ]
