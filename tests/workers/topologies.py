"""The deployments the distributed tests run on (issue 13): where state lives, which broker.

* ``redis``: one Redis is broker and state (the outbox path: a hop's commit script pushes
  its next node messages);
* ``rabbitmq``: RabbitMQ is the broker, one Redis holds the state (publish, then confirm);
* ``rabbitmq-cluster``: RabbitMQ, and a 3-primary Redis Cluster holds the state (Celery's
  Redis transport cannot run on a cluster, so this is the scaled-out shape).

Every test gets a fresh Redis, or this process's embedded cluster, and the RabbitMQ virtual
host of its test process (``servers.rabbitmq_url``), its queues drained first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import servers

from relaygraph.persistence.redis_server import EmbeddedRedis, shared_cluster
from relaygraph.workers.client import Client
from relaygraph.workers.settings import WorkerSettings

from .fleet import Fleet
from .graphs import REGISTRY

__all__ = ["ALL", "EXTRA", "Topology", "open_topology"]

#: Every topology; the first is the one every distributed test runs on.
ALL = ("redis", "rabbitmq", "rabbitmq-cluster")
#: The topologies a representative subset of the tests runs on besides ``redis``.
EXTRA = ALL[1:]


@dataclass
class Topology:
    """The servers of one deployment and how workers and clients reach them."""

    name: str
    redis_url: str
    broker_url: str | None = None

    @property
    def env(self) -> dict[str, str]:
        """The workers' settings for this deployment (``RELAYGRAPH_*``)."""
        env = {"RELAYGRAPH_REDIS_URL": self.redis_url}
        if self.broker_url:
            env["RELAYGRAPH_BROKER_URL"] = self.broker_url
        return env

    def settings(self, **options: Any) -> WorkerSettings:
        """Client settings of this deployment (``graphs`` defaults to the test graphs)."""
        options.setdefault("graphs", REGISTRY)
        return WorkerSettings(redis_url=self.redis_url, broker_url=self.broker_url, **options)

    def fleet(self, tmp: Path, **env: str) -> Fleet:
        """A worker fleet of this deployment (``env`` as :class:`Fleet`'s)."""
        return Fleet(self.redis_url, tmp, **{**self.env, **env})

    def client(self, **options: Any) -> Client:
        """A client of this deployment (the caller closes it)."""
        return Client(settings=self.settings(**options))


def _purge(broker_url: str) -> None:
    """Drop the messages a previous test left in this process's virtual host's queues
    (a killed worker's unacknowledged ones come back to them)."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as conn:
        for queue in ("relaygraph", "side"):
            # a queue not declared yet closes the channel it was named on: one each
            with contextlib.suppress(Exception), conn.channel() as channel:
                channel.queue_purge(queue)


@contextlib.contextmanager
def open_topology(name: str, *, appendonly: bool = True) -> Iterator[Topology]:
    """The servers of topology ``name``, clean, for one test (skipped without RabbitMQ)."""
    if name not in ALL:
        raise ValueError(f"unknown topology {name!r}; known: {ALL}")
    broker = None
    if name.startswith("rabbitmq"):
        broker = servers.rabbitmq_url()  # skips the test when there is none
        _purge(broker)
    if name.endswith("cluster"):
        # This process's 3-primary cluster (the ``redis_cluster`` fixture's), not flushed:
        # the tests on it use thread ids of their own.
        yield Topology(name, shared_cluster().url, broker)
        return
    with EmbeddedRedis(modules=False, appendonly=appendonly) as server:
        yield Topology(name, server.url, broker)
