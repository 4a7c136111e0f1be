"""Every code example in README.md, docs/ and the public docstrings runs.

Most Python blocks run as they are, each in a fresh namespace in a temporary directory.
The blocks written against a worker fleet (they contain :data:`FLEET_URL`) run against a
real one instead: a private Redis with search and JSON, and worker processes serving the
example assistant graph. The one change made to their code is visible here: the literal
:data:`FLEET_URL` is replaced by the private server's URL. Every such block must have its
expected output in :data:`FLEET_EXAMPLES`, so none is ever skipped unnoticed.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import relaygraph

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)

#: The Redis URL the fleet examples are written with; in the test it becomes the fleet's.
FLEET_URL = "redis://localhost:6379/0"

#: Each fleet example (by block id) with the lines its output must contain.
FLEET_EXAMPLES: dict[str, list[str]] = {
    # README: submit, print every event, wait; the stream ends with the run's status.
    "README.md#2": [
        "values {'messages': [HumanMessage(content='hi'",
        "updates {'respond': {'messages': [AIMessage(content=\"Got it! I'll remember that.\"",
        "status {'status': 'success'",
    ],
    # docs/agents.md: the example agent's answer, printed token by token from the fleet.
    "agents.md#4": ["Got it, I will remember that."],
    # docs/distributed.md: the same with a user id, then the run's status and last reply.
    "distributed.md#0": [
        "HumanMessage(content='I love Python'",
        "success Got it! I'll remember that.",
    ],
}

#: What the example assistant needs of its workers: the store (with the semantic index the
#: demo gives it, the offline model) on the same Redis, which therefore needs the modules.
ASSISTANT = (
    "assistant=relaygraph.examples.assistant:graph,agent=relaygraph.examples.agent:graph"
)


def markdown_examples() -> list[tuple[str, str]]:
    """(id, code) of each python block of the README and docs/*.md."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for index, match in enumerate(FENCE.finditer(path.read_text())):
            found.append((f"{path.name}#{index}", match.group(1)))
    return found


def local_examples() -> list[tuple[str, str]]:
    """The blocks that run on their own."""
    return [(name, code) for name, code in markdown_examples() if FLEET_URL not in code]


def fleet_examples() -> dict[str, str]:
    """The blocks written against a worker fleet, by id."""
    return {name: code for name, code in markdown_examples() if FLEET_URL in code}


def _run(name: str, code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    exec(compile(code, name, "exec", dont_inherit=True), namespace)
    return namespace


@pytest.mark.parametrize(
    ("name", "code"), [pytest.param(name, code, id=name) for name, code in local_examples()]
)
def test_markdown_example_runs(name: str, code: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _run(name, code)


def test_every_fleet_example_is_checked() -> None:
    """A block that needs a fleet runs in test_fleet_example, with its output checked."""
    assert sorted(fleet_examples()) == sorted(FLEET_EXAMPLES), (
        "every block using FLEET_URL needs its expected output in FLEET_EXAMPLES "
        "(and every entry there a block)"
    )


@pytest.fixture(scope="module")
def assistant_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Redis with search and two worker processes serving the assistant graph."""
    from workers.fleet import Fleet  # tests/workers: the distributed tests' fleet

    from relaygraph.persistence.redis_server import EmbeddedRedis

    logs = tmp_path_factory.mktemp("docs-fleet")
    with EmbeddedRedis() as server:
        fleet = Fleet(
            server.url,
            logs,
            RELAYGRAPH_GRAPHS=ASSISTANT,
            RELAYGRAPH_STORE_URL=server.url,
            RELAYGRAPH_STORE_EMBED="default",
            RELAYGRAPH_STORE_FIELDS="fact",
            HF_HUB_OFFLINE="1",
        )
        try:
            for name in ("docs1", "docs2"):
                fleet.start_worker(name, queues="relaygraph", wait=False)
            for name in ("docs1", "docs2"):
                fleet.wait_for(name, b"ready.")
            yield server.url
        finally:
            fleet.stop()


@pytest.mark.xdist_group("docs-fleet")
@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", sorted(FLEET_EXAMPLES))
def test_fleet_example(
    name: str, assistant_fleet: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace = _run(name, fleet_examples()[name].replace(FLEET_URL, assistant_fleet))
    printed = capsys.readouterr().out
    for expected in FLEET_EXAMPLES[name]:
        assert expected in printed, f"{name} printed:\n{printed}"
    assert namespace["run"].status == "success", printed


def public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(relaygraph.__path__, "relaygraph."):
        if info.name.endswith(("__main__", ".cli", ".demo")) or ".workers.app" in info.name:
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", public_modules())
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)  # the dev extra installs every extra
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"
