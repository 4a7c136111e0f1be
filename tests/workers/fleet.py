"""Real worker processes for the distributed tests (a LocalFleet with the test settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from relaygraph.workers.local_fleet import LocalFleet

from .graphs import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


class Fleet(LocalFleet):
    """Workers serving one private Redis with short leases, so recovery is quick to test."""

    def __init__(self, redis_url: str, tmp: Path, **env: str) -> None:
        super().__init__(
            {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "RELAYGRAPH_REDIS_URL": redis_url,
                "RELAYGRAPH_GRAPHS": REGISTRY,
                "RELAYGRAPH_LEASE_TTL": "2",
                "RELAYGRAPH_SWEEP_INTERVAL": "0.5",
                "RELAYGRAPH_QUEUED_GRACE": "5",
                **env,
            },
            tmp,
            cwd=ROOT,
        )

    @property
    def workers(self) -> dict[str, Any]:
        return self.processes

    def start(  # type: ignore[override]
        self, name: str, argv: list[str] | None = None, env: dict[str, str] | None = None,
        **options: Any,
    ) -> Any:  # fmt: skip
        """``start(name)`` starts a worker (queues/concurrency as options); with ``argv``,
        any process. ``env`` adds to the fleet's environment for this process."""
        if argv is not None:
            return super().start(name, argv, env)
        options["env"] = env
        options.setdefault("queues", "relaygraph")
        return self.start_worker(name, **options)
