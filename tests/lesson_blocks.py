"""Extract the Python blocks of the persistence lesson and run them as written.

The lesson is not part of the repository: ``RELAYGRAPH_LESSON`` names the file, and only
then are the verbatim tests collected (``tests/conftest.py``). The lesson
(``checkpointing-and-memory.md``) is LangGraph code. :func:`to_relaygraph` rewrites
only its import lines (``langgraph.*`` / ``langchain_core.*`` -> relaygraph); the one other
change is the OpenAI embeddings of the semantic-search block, which need a network service
and an API key: :func:`offline_embeddings` swaps in relaygraph's offline default model
(``default_embeddings()``, 384 dimensions). :func:`run` execs blocks in one namespace, with
top-level ``await`` allowed, and returns what they printed.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Block",
    "LessonNotFound",
    "find_lesson",
    "load_blocks",
    "offline_embeddings",
    "run",
    "to_relaygraph",
]

LESSON_NAME = "checkpointing-and-memory.md"
VARIABLE = "RELAYGRAPH_LESSON"
# A relative $RELAYGRAPH_LESSON is relative to where pytest started (tests may chdir).
_START = Path.cwd()

#: Where each module the lesson imports from lives in relaygraph.
MODULES: dict[str, str] = {
    "langgraph.graph": "relaygraph",
    "langgraph.graph.message": "relaygraph",
    "langgraph.types": "relaygraph",
    "langgraph.checkpoint.memory": "relaygraph",
    "langgraph.store.memory": "relaygraph",
    "langchain_core.messages": "relaygraph",
    "langgraph.checkpoint.sqlite": "relaygraph.persistence.sqlite",
    "langgraph.checkpoint.sqlite.aio": "relaygraph.persistence.sqlite",
    "langgraph.checkpoint.postgres": "relaygraph.persistence.postgres",
    "langgraph.checkpoint.postgres.aio": "relaygraph.persistence.postgres",
}

_IMPORT = re.compile(r"^(\s*)from\s+([\w.]+)\s+import\s+(.+)$", re.MULTILINE)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#+\s+(.*)$", re.MULTILINE)


class LessonNotFound(FileNotFoundError):
    """``$RELAYGRAPH_LESSON`` is not set or names no file."""


@dataclass(frozen=True)
class Block:
    """One fenced Python block of the lesson."""

    index: int
    heading: str  # the nearest heading above it
    source: str
    output: str | None  # the text of the "**Output:**" block that follows it, if any

    def __contains__(self, text: str) -> bool:
        return text in self.source


def find_lesson() -> Path:
    """The lesson's path: ``$RELAYGRAPH_LESSON`` (nothing outside the repository is guessed)."""
    env = os.environ.get(VARIABLE)
    if not env:
        raise LessonNotFound(f"set {VARIABLE} to a copy of {LESSON_NAME}")
    path = _START / Path(env).expanduser()
    if not path.is_file():
        raise LessonNotFound(f"{VARIABLE}={env}: no such file ({path})")
    return path


def load_blocks(path: Path | None = None) -> list[Block]:
    """Every Python block of the lesson, in order, with its heading and printed output."""
    text = (path or find_lesson()).read_text()
    fences = list(_FENCE.finditer(text))
    # headings are looked up in the prose only: a "# comment" inside a block is no heading
    prose = _FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    blocks: list[Block] = []
    for position, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        headings = _HEADING.findall(prose[: fence.start()])
        output = None
        following = fences[position + 1] if position + 1 < len(fences) else None
        if following is not None and following.group(1) == "":
            between = text[fence.end() : following.start()]
            if "**Output:**" in between and "```python" not in between:
                output = following.group(2)
        blocks.append(Block(len(blocks), headings[-1] if headings else "", fence.group(2), output))
    return blocks


def to_relaygraph(source: str) -> str:
    """``source`` with its LangGraph / langchain_core import lines pointed at relaygraph.

    Nothing but ``from <module> import ...`` lines changes; an import of a module with no
    relaygraph home is left alone (and fails loudly when run).
    """

    def rewrite(match: re.Match[str]) -> str:
        indent, module, names = match.groups()
        home = MODULES.get(module)
        if home is None:
            return match.group(0)
        return f"{indent}from {home} import {names}"

    return _IMPORT.sub(rewrite, source)


def offline_embeddings(
    source: str,
    *,
    import_line: str = "from relaygraph.persistence.embeddings import default_embeddings",
    embed: str = "default_embeddings()",
    dims: int = 384,
) -> str:
    """The semantic-search block with OpenAI's embeddings replaced by an offline model."""
    source = re.sub(
        r"^from langchain_openai import OpenAIEmbeddings$", import_line, source, flags=re.MULTILINE
    )
    source = re.sub(r"OpenAIEmbeddings\([^)]*\)", embed, source)
    return re.sub(r'"dims":\s*1536', f'"dims": {dims}', source)


def run(sources: list[str], namespace: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Exec ``sources`` in order in one namespace (top-level ``await`` allowed).

    Returns what they printed and the namespace, so a later call can continue it.
    """
    namespace = {"__name__": "__lesson__"} if namespace is None else namespace
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for index, source in enumerate(sources):
            code = compile(
                source, f"<lesson block {index}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            )
            if code.co_flags & inspect.CO_COROUTINE:
                asyncio.run(eval(code, namespace))
            else:
                exec(code, namespace)
    return out.getvalue(), namespace
