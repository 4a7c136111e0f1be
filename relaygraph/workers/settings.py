"""Configuration of workers and clients, from the environment (prefix ``RELAYGRAPH_``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WorkerSettings"]


class WorkerSettings(BaseSettings):
    """Everything a worker needs; every field can be set as ``RELAYGRAPH_<NAME>``.

    >>> WorkerSettings(redis_url="redis://localhost:6379/0").lease_ttl
    5.0
    """

    model_config = SettingsConfigDict(env_prefix="RELAYGRAPH_", extra="ignore")

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="checkpoints and coordination")
    broker_url: str | None = Field(None, description="Celery broker (default: redis_url)")
    graphs: str = Field("", description="graph registry: 'name=module:attr,name2=module:attr'")
    store_url: str | None = Field(None, description="Redis with search for the RedisStore")
    store_embed: str | None = Field(
        None, description="embeddings of the store's semantic index ('default': offline model)"
    )
    store_dims: int = Field(384, description="vector size of store_embed")
    store_fields: str = Field("$", description="comma-separated value paths to embed")
    lease_ttl: float = Field(5.0, gt=0, description="seconds a task lease lasts unrenewed")
    heartbeat_interval: float | None = Field(None, description="default: lease_ttl / 3")
    sweep_interval: float = Field(1.0, gt=0, description="seconds between recovery sweeps")
    queued_grace: float = Field(
        30.0, gt=0, description="re-enqueue a task sent to the broker but not picked up this long"
    )
    max_attempts: int = Field(3, ge=1, description="attempts of a node without RetryPolicy")
    visibility_timeout: int = Field(3600, description="broker redelivery, above the longest node")
    stream_maxlen: int = Field(10_000, description="events kept per run stream")
    stream_ttl: int = Field(7 * 24 * 3600, description="seconds a run's events are kept")
    run_ttl: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="seconds a finished run's record and its finished steps are kept (0: forever)",
    )
    thread_ttl: float | None = Field(
        None,
        gt=0,
        description="the workers' saver expires a thread this long after its last write or read",
    )
    default_queue: str = Field("relaygraph", description="queue of nodes without queue=")
    metrics_port: int | None = Field(None, description="serve Prometheus /metrics on this port")
    json_logs: bool = Field(False, description="log JSON lines with thread/run/node/step")
    task_events: bool = Field(
        True, description="Celery task events: Flower's task list (a few broker writes a task)"
    )
    sent_events: bool = Field(
        False, description="a task-sent event per node message (one more broker write a hop)"
    )
    index_buckets: int = Field(
        16,
        ge=1,
        le=16384,
        description="buckets (cluster slots) of each sweeper index; the same in every process",
    )
    commit_replicas: int = Field(
        0, ge=0, description="WAIT for this many replicas after each step's commit (0: off)"
    )
    commit_replicas_timeout: float = Field(
        1.0, gt=0, description="seconds a commit waits for commit_replicas at most"
    )
    outbox: bool = Field(
        True,
        description="a hop's commit script also pushes the next node tasks (broker = redis_url)",
    )

    def coordinator_options(self) -> dict[str, Any]:
        """The :class:`~relaygraph.workers.coordination.Coordinator` keywords these settings
        give (lease TTL, run TTL, index buckets, commit replicas)."""
        return {
            "lease_ttl": self.lease_ttl,
            "run_ttl": self.run_ttl,
            "index_buckets": self.index_buckets,
            "commit_replicas": self.commit_replicas,
            "commit_replicas_timeout": self.commit_replicas_timeout,
        }

    @property
    def heartbeat(self) -> float:
        """Seconds between lease renewals."""
        return self.heartbeat_interval or self.lease_ttl / 3

    @property
    def broker(self) -> str:
        """The Celery broker URL."""
        return self.broker_url or self.redis_url
