"""Every code example in README.md, docs/ and the public docstrings runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import relaygraph

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)
SKIP_MARK = "# docs: not run"  # for blocks that need services the test machine lacks


def markdown_examples() -> list[tuple[str, str]]:
    """(id, code) of each python block of the README and docs/*.md."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for index, match in enumerate(FENCE.finditer(path.read_text())):
            code = match.group(1)
            if SKIP_MARK not in code:
                found.append((f"{path.name}#{index}", code))
    return found


@pytest.mark.parametrize(
    ("name", "code"), markdown_examples(), ids=lambda v: v if "#" in str(v) else ""
)
def test_markdown_example_runs(name: str, code: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, name, "exec", dont_inherit=True), {"__name__": "__docs__"})


def public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(relaygraph.__path__, "relaygraph."):
        if info.name.endswith(("__main__", ".cli", ".demo")) or ".workers.app" in info.name:
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", public_modules())
def test_docstring_examples_run(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # an optional extra that is not installed
        pytest.skip(f"{module_name}: {exc}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"
