"""Worker settings reach Celery: task events on by default (Flower), off when asked."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from relaygraph.cli import app as cli
from relaygraph.workers import app as worker_app
from relaygraph.workers import connect
from relaygraph.workers.app import celery_settings
from relaygraph.workers.settings import WorkerSettings


def test_task_events_are_on_by_default_and_sent_events_off() -> None:
    conf = celery_settings(WorkerSettings())
    assert conf["worker_send_task_events"] is True
    assert conf["task_send_sent_event"] is False
    assert celery_settings(WorkerSettings(sent_events=True))["task_send_sent_event"] is True


def test_task_events_off_turns_off_sent_events_too() -> None:
    conf = celery_settings(WorkerSettings(task_events=False, sent_events=True))
    assert conf["worker_send_task_events"] is False
    assert conf["task_send_sent_event"] is False


@pytest.mark.parametrize(("events", "flag"), [(True, True), (False, False)])
def test_the_worker_command_passes_events_only_when_on(
    monkeypatch: pytest.MonkeyPatch, events: bool, flag: bool
) -> None:
    seen: list[list[str]] = []
    celery = worker_app.app
    monkeypatch.setattr(celery, "relaygraph_settings", WorkerSettings(task_events=events))
    monkeypatch.setattr(
        worker_app, "run_worker", lambda argv, celery=None: seen.append(list(argv)) or 0
    )
    # the broker check would reach for a Redis: this test is about the argv Celery gets
    monkeypatch.setattr(connect, "check_broker", lambda url: None)
    result = CliRunner().invoke(cli, ["worker", "--concurrency", "1"])
    assert result.exit_code == 0, result.output
    (argv,) = seen
    assert ("--events" in argv) is flag
    assert "--queues=relaygraph" in argv
