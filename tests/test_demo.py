"""The README's main job (`make demo`) holds every check it prints, both ways it runs."""

from __future__ import annotations

import pytest

from relaygraph.demo import main


def test_local_demo_holds_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--local"]) == 0
    assert "7/7 checks held" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_distributed_demo_survives_a_killed_worker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "SIGKILL" in out and "9/9 checks held" in out
