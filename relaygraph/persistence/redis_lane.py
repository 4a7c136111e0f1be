"""One dedicated connection per thread for commands on the hot path.

redis-py's per-command path (pool checkout and release, the retry wrapper, its metrics
hooks, response callbacks) costs about a third of a round trip on a small machine. The
RedisSaver's ``get_tuple`` and ``put`` (one ``EVALSHA`` each) and the distributed
executor's lease asked ahead (sent before a node runs, answered after) go on a connection
of their own instead. The connection is made with the client's pool settings (class,
address, credentials, TLS), one per thread and process, outside the pool (a bounded pool
keeps its budget for the caller's commands).

Only the fast path is here: a connection error drops the connection and the caller runs
the command again through the client, with the client's own retry policy.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from redis.exceptions import ResponseError

try:  # redis-py's own packer per argument costs more than the rest of a hop's send
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - hiredis is optional
    _pack_command = None

__all__ = ["ScriptLane"]


class ScriptLane:
    """Commands on a per-thread connection made like ``client``'s (see module docs)."""

    def __init__(self, client: Any) -> None:
        pool = client.connection_pool
        self._make = lambda: pool.connection_class(**pool.connection_kwargs)
        kwargs = pool.connection_kwargs
        # hiredis packs str as UTF-8 and numbers as repr() does: redis-py's default encoder
        self._fast = _pack_command is not None and (
            kwargs.get("encoding", "utf-8").lower().replace("_", "-") in ("utf-8", "utf8")
            and kwargs.get("encoding_errors", "strict") == "strict"
        )
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

    def send(self, commands: list[tuple[Any, ...]]) -> Callable[[], list[Any]]:
        """Send ``commands`` in one write now; the returned function reads their replies
        (an error reply as its exception object, e.g. NoScriptError), at most once.

        The replies must be read before this thread sends again on the lane, and always
        (in a ``finally``): a connection left with unread replies is dropped instead.
        """
        if getattr(self._local, "pending", False):
            raise RuntimeError("the lane's last replies are not read yet")
        connection = self._connection()
        try:
            connection.send_packed_command(self._pack(connection, commands))
        except BaseException:
            connection.disconnect()
            raise
        self._local.pending = True
        replies: list[Any] = []

        def read() -> list[Any]:
            if not self._local.pending:
                return replies
            try:
                for _ in commands:
                    try:
                        replies.append(connection.read_response())
                    except ResponseError as error:  # read whole: the socket stays in step
                        replies.append(error)
            except BaseException:
                connection.disconnect()  # replies left unread: never reuse the socket
                raise
            finally:
                self._local.pending = False
            return replies

        return read

    def _pack(self, connection: Any, commands: list[tuple[Any, ...]]) -> Any:
        """The commands in the Redis protocol: by hiredis at once when every argument is a
        str, bytes, int or float (the same bytes redis-py's encoder makes; several times
        faster over a hop's hundred-odd arguments), else by redis-py (which also rejects
        what it cannot send, a bool say)."""
        if self._fast and all(" " not in command[0] for command in commands):
            try:  # (redis-py splits a spaced command name: "SCRIPT LOAD" is two arguments)
                return [b"".join([_pack_command(command) for command in commands])]
            except TypeError:  # a bool, bytearray or memoryview: redis-py's rules
                pass
        return connection.pack_commands(commands)

    def evalsha(self, sha: str, keys: list[str], args: list[Any]) -> Any:
        """The script's reply; raises its error reply (e.g. NoScriptError) as redis-py
        does, and any connection failure after dropping the connection."""
        (reply,) = self.send([("EVALSHA", sha, len(keys), *keys, *args)])()
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def close(self) -> None:
        """Disconnect every connection this lane made (in this process)."""
        with self._lock:
            made, self._open = self._open, []
        for connection in made:
            connection.disconnect()
