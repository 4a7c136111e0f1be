"""The distributed executor: every node a Celery task; threads survive any worker's death.

``Client`` submits and follows runs; workers run ``relaygraph worker`` (the Celery app in
:mod:`relaygraph.workers.app`). See docs/distributed.md.
"""

from relaygraph.workers.client import (
    AsyncClient,
    Client,
    Run,
    RunEvent,
    RunRejectedError,
    RunTimeoutError,
)
from relaygraph.workers.settings import WorkerSettings

__all__ = [
    "AsyncClient",
    "Client",
    "Run",
    "RunEvent",
    "RunRejectedError",
    "RunTimeoutError",
    "WorkerSettings",
]
