"""docs/api.md's SDK example runs against a real server (its ``py`` blocks, with the
example's URL replaced by the test server's)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
EXAMPLE_URL = "http://localhost:8123"


def test_api_doc_example_runs(api_url: str) -> None:
    blocks = re.findall(r"```py\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert blocks, "docs/api.md has no py example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            assert EXAMPLE_URL in block
            exec(compile(block.replace(EXAMPLE_URL, api_url), str(DOC), "exec"), {})
    printed = out.getvalue()
    assert "updates {'think': None}" in printed or "updates {'think'" in printed
    assert "Got it! I'll remember that." in printed
    assert "\nidle\n" in printed
    assert "versions [2, 1]" in printed and printed.rstrip().endswith("I know: i love rust")
