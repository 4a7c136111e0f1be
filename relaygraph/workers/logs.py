"""Structured logs: JSON lines carrying the thread, run, node and step being worked on.

>>> import logging, io
>>> stream = io.StringIO()
>>> handler = logging.StreamHandler(stream)
>>> handler.setFormatter(JsonFormatter())
>>> log = logging.getLogger("relaygraph.example")
>>> log.addHandler(handler); log.setLevel(logging.INFO)
>>> with log_context(thread_id="t1", node="respond"):
...     log.info("node finished")
>>> import json; record = json.loads(stream.getvalue())
>>> (record["message"], record["thread_id"], record["node"])
('node finished', 't1', 'respond')
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_json_logging", "log_context"]

_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "relaygraph_log_fields", default=None
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (thread_id, run_id, node, step, ...) to every log record inside."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, context fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **(_fields.get() or {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send relaygraph's logs as JSON lines to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("relaygraph")
    logger.addHandler(handler)
    logger.setLevel(level)
