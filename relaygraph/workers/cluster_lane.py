""":class:`~relaygraph.persistence.redis_lane.ScriptLane` on a Redis Cluster.

A lease asked ahead (``Coordinator.acquire_later``) is two commands in two slots: the
``acquire`` script on the thread's slot and its lease index entry on the bucket's. Here
each goes on this thread's own connection to the primary that serves its key's slot, both
written at once, their replies read later, as ScriptLane does on one server.

A reply that redirects (``MOVED``/``ASK`` after a resharding or a failover) means the
command did not run there; the caller runs it again through the cluster client, which
follows the redirect and refreshes its slot map.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from redis.exceptions import AskError, ClusterDownError, TryAgainError

from relaygraph.persistence.redis_lane import ScriptLane

__all__ = ["REDIRECTS", "ClusterLane"]

REDIRECTS = (AskError, TryAgainError, ClusterDownError)
"""Replies that mean "not run here": run the command again through the cluster client
(``MovedError`` is an ``AskError``)."""


class ClusterLane:
    """``send(commands)`` like ScriptLane's, each command routed by its key's slot."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self._lanes: dict[str, ScriptLane] = {}
        self._lock = threading.Lock()

    def _lane(self, key: Any) -> ScriptLane:
        node = self.cluster.get_node_from_key(key)
        with self._lock:
            lane = self._lanes.get(node.name)
            if lane is None:
                lane = ScriptLane(self.cluster.get_redis_connection(node))
                self._lanes[node.name] = lane
        return lane

    def send(self, commands: list[tuple[Any, ...]]) -> Callable[[], list[Any]]:
        """Write ``commands`` now (one write per node); the returned function reads their
        replies in order (an error reply as its exception object), at most once."""
        groups: dict[int, tuple[ScriptLane, list[int]]] = {}
        for index, command in enumerate(commands):
            lane = self._lane(_key(command))
            groups.setdefault(id(lane), (lane, []))[1].append(index)
        reads: list[tuple[Callable[[], list[Any]], list[int]]] = []
        try:
            for lane, indexes in groups.values():
                reads.append((lane.send([commands[i] for i in indexes]), indexes))
        except BaseException:
            for read, _ in reads:  # leave no lane with unread replies
                with contextlib.suppress(Exception):
                    read()
            raise

        def read_all() -> list[Any]:
            replies: list[Any] = [None] * len(commands)
            failure: BaseException | None = None
            for read, indexes in reads:
                try:
                    for index, reply in zip(indexes, read(), strict=True):
                        replies[index] = reply
                except BaseException as exc:  # read the other lanes still, then raise
                    failure = failure or exc
            if failure is not None:
                raise failure
            return replies

        return read_all


def _key(command: tuple[Any, ...]) -> Any:
    """The key a command is routed by: the first key of a script, else its first argument."""
    if str(command[0]).upper() in ("EVAL", "EVALSHA"):
        return command[3]
    return command[1]
