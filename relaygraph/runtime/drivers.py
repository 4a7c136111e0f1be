"""Drivers of the effect-yielding generators: one for threads, one for asyncio.

A driver sends each effect's result back into the generator: saver calls go to the saver
(its ``a``-prefixed twin under asyncio), task batches run concurrently (a single task
runs inline), and :class:`Emit` chunks are handed to the caller as they happen.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
from collections.abc import AsyncIterator, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from relaygraph.runtime.effects import Emit, Execute, SaverCall, TaskOutcome
from relaygraph.runtime.executor import NullResume, arun_task, run_task

if TYPE_CHECKING:
    from relaygraph.runtime.pregel import CompiledStateGraph

__all__ = ["adrive", "drive", "drive_to_end"]

_DONE = object()


def drive(
    graph: CompiledStateGraph,
    effects: Generator[Any, Any, Any],
    saver: Any,
) -> Generator[Emit, None, Any]:
    """Run ``effects`` in this thread; yield its stream chunks. Returns its result."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = effects.throw(error) if error is not None else effects.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            if isinstance(effect, Emit):
                yield effect
            elif isinstance(effect, SaverCall):
                value = getattr(saver, effect.method)(*effect.args, **effect.kwargs)
                if effect.method == "list":
                    value = list(value)
            elif isinstance(effect, Execute):
                value = yield from _execute(graph, effect)
            else:
                raise TypeError(f"unknown effect {effect!r}")
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc


def _execute(graph: CompiledStateGraph, effect: Execute) -> Generator[Emit, Any, list[TaskOutcome]]:
    channels, null_resume = effect.channels, effect.null_resume or NullResume()
    if len(effect.runs) == 1 and not effect.live:
        chunks: list[Any] = []
        outcome = run_task(graph, effect.runs[0], channels, null_resume, chunks.append)
        for chunk in chunks:
            yield _as_emit(chunk)
        return [outcome]
    events: queue.Queue[Any] = queue.Queue()
    results: dict[int, TaskOutcome] = {}
    with ThreadPoolExecutor(max_workers=min(32, len(effect.runs))) as pool:
        for index, task_run in enumerate(effect.runs):

            def work(i: int = index, r: Any = task_run) -> None:
                try:
                    events.put((i, run_task(graph, r, channels, null_resume, _put_custom(events))))
                except BaseException as exc:
                    events.put((i, exc))

            pool.submit(contextvars.copy_context().run, work)
        while len(results) < len(effect.runs):
            item = events.get()
            if isinstance(item, tuple) and item and item[0] == "custom":
                yield _as_emit(item[1])
                continue
            index, outcome = item
            if isinstance(outcome, BaseException):
                raise outcome
            results[index] = outcome
    while not events.empty():
        item = events.get()
        if isinstance(item, tuple) and item and item[0] == "custom":
            yield _as_emit(item[1])
    return [results[i] for i in range(len(effect.runs))]


def _as_emit(item: Any) -> Emit:
    """A task's stream item: a custom chunk, or a subgraph's Emit passed up as it is."""
    return item if isinstance(item, Emit) else Emit("custom", item)


def _put_custom(events: queue.Queue[Any]) -> Any:
    return lambda chunk: events.put(("custom", chunk))


def drive_to_end(graph: CompiledStateGraph, effects: Generator[Any, Any, Any], saver: Any) -> Any:
    """Run a generator that emits nothing and executes no tasks (state operations)."""
    driver = drive(graph, effects, saver)
    while True:
        try:
            next(driver)
        except StopIteration as stop:
            return stop.value


async def adrive(
    graph: CompiledStateGraph,
    effects: Generator[Any, Any, Any],
    saver: Any,
    result_box: list[Any],
) -> AsyncIterator[Emit]:
    """Async :func:`drive`; the generator's result is appended to ``result_box``."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = effects.throw(error) if error is not None else effects.send(value)
        except StopIteration as stop:
            result_box.append(stop.value)
            return
        value, error = None, None
        try:
            if isinstance(effect, Emit):
                yield effect
            elif isinstance(effect, SaverCall):
                method = getattr(saver, "a" + effect.method)
                if effect.method == "list":
                    value = [item async for item in method(*effect.args, **effect.kwargs)]
                else:
                    value = await method(*effect.args, **effect.kwargs)
            elif isinstance(effect, Execute):
                custom: asyncio.Queue[Any] = asyncio.Queue()
                channels, null_resume = effect.channels, effect.null_resume or NullResume()
                gathered = asyncio.gather(
                    *(
                        arun_task(graph, run, channels, null_resume, custom.put_nowait)
                        for run in effect.runs
                    )
                )
                while not gathered.done():
                    getter = asyncio.ensure_future(custom.get())
                    await asyncio.wait({getter, gathered}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        yield _as_emit(getter.result())
                    else:
                        getter.cancel()
                while not custom.empty():
                    yield _as_emit(custom.get_nowait())
                value = list(gathered.result())
            else:
                raise TypeError(f"unknown effect {effect!r}")
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc


async def adrive_to_end(
    graph: CompiledStateGraph, effects: Generator[Any, Any, Any], saver: Any
) -> Any:
    """Async :func:`drive_to_end`."""
    box: list[Any] = []
    async for _ in adrive(graph, effects, saver, box):
        pass
    return box[0] if box else None
