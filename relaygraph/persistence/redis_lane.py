"""One dedicated connection per thread for a RedisSaver's one-round-trip scripts.

redis-py's per-command path (pool checkout and release, the retry wrapper, its metrics
hooks, response callbacks) costs about a third of a round trip on a small machine; the
saver's ``get_tuple`` and ``put`` are one ``EVALSHA`` each, so they send it on a
connection of their own instead. The connection is made with the client's pool settings
(class, address, credentials, TLS), one per thread and process, outside the pool (a
bounded pool keeps its budget for the caller's commands).

Only the fast path is here: a connection error drops the connection and the caller runs
the command again through the client, with the client's own retry policy.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from redis.exceptions import ResponseError

__all__ = ["ScriptLane"]


class ScriptLane:
    """``EVALSHA`` on a per-thread connection made like ``client``'s (see module docs)."""

    def __init__(self, client: Any) -> None:
        pool = client.connection_pool
        self._make = lambda: pool.connection_class(**pool.connection_kwargs)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []

    def _connection(self) -> Any:
        held = getattr(self._local, "held", None)
        if held is None or held[0] != os.getpid():  # a fork's child makes its own
            connection = self._make()
            held = self._local.held = (os.getpid(), connection)
            with self._lock:
                self._open.append(connection)
        return held[1]

    def evalsha(self, sha: str, keys: list[str], args: list[Any]) -> Any:
        """The script's reply; raises its error reply (e.g. NoScriptError) as redis-py
        does, and any connection failure after dropping the connection."""
        connection = self._connection()
        try:
            connection.send_packed_command(
                connection.pack_commands([("EVALSHA", sha, len(keys), *keys, *args)])
            )
            return connection.read_response()
        except ResponseError:
            raise  # an error reply was read whole: the connection stays in step
        except BaseException:
            connection.disconnect()  # a reply may be left unread: never reuse the socket
            raise

    def close(self) -> None:
        """Disconnect every connection this lane made (in this process)."""
        with self._lock:
            made, self._open = self._open, []
        for connection in made:
            connection.disconnect()
