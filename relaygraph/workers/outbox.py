"""Node task messages built by Celery and kombu but not sent: the commit script sends them.

When the broker is the checkpoint Redis itself (the default: ``RELAYGRAPH_BROKER_URL``
unset), a hop's next tasks can be put on their queues by the same script that commits
the checkpoint (hop.lua): the commit and the enqueue then happen together or not at all,
there is no window in which a step is committed but its tasks are not on the broker, and
the hop saves the separate publish and its confirmation.

The message is the one ``celery.send_task`` would publish, byte for byte, except that it
is not sent: Celery builds it, kombu routes and encodes it, and kombu's publish-batch
interface (a transport's batch collects the final Redis commands of a publish) hands us
the ``LPUSH`` instead of running it. Anything but a plain ``LPUSH`` (a queue with an
expiry, say) is declined, and the caller publishes the normal way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from kombu import Producer

Commands = list[tuple[str, tuple[Any, ...]]]


class _KeptBatch:
    """kombu's transport publish batch, keeping the commands instead of running them."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.commands: Commands = []
        self._open: Commands | None = None

    def publish(self, message: Any, **kwargs: Any) -> Any:
        self._open = []
        try:
            return self.channel.basic_publish(message, _publish_batch=self, **kwargs)
        finally:
            self.commands += self._open
            self._open = None

    def add(self, name: str, *args: Any) -> None:
        if self._open is None:
            raise RuntimeError("a broker command outside a publish")
        self._open.append((name, args))

    def flush(self) -> None:
        """Nothing to run: the commands are the caller's."""

    def discard(self) -> None:
        self.commands.clear()

    def close(self) -> None:
        """Nothing held."""


class Outbox:
    """Builds node task messages for a commit script to push (see the module docstring).

    ``send_options(message, queue, name, task_id, **limits)`` gives the arguments of
    ``celery.send_task`` for one node task, the same ones a normal publish uses.
    """

    def __init__(self, celery: Any, send_options: Callable[..., dict[str, Any]]) -> None:
        self.celery = celery
        self.send_options = send_options
        self._local = threading.local()

    def _producer(self) -> tuple[Producer, list[_KeptBatch], set[str]] | None:
        state = getattr(self._local, "state", None)
        if state is None or state[0] != os.getpid():  # a pool child after fork: its own
            connection = self.celery.connection_for_write()
            channel = connection.default_channel
            batch: list[_KeptBatch] = []

            def new_batch(max_size: int) -> _KeptBatch:
                batch[:] = [_KeptBatch(channel)]
                return batch[0]

            channel.create_publish_batch = new_batch
            producer = self.celery.amqp.Producer(channel, auto_declare=False)
            # A channel that cannot batch (client-side retries) would publish at once.
            usable = bool(getattr(channel, "supports_batch_publish", False))
            declared: set[str] = set()
            state = (os.getpid(), producer if usable else None, batch, declared)
            self._local.state = state
        return None if state[1] is None else (state[1], state[2], state[3])

    def build(self, sends: list[tuple[Any, str, str, str, dict[str, float]]]) -> Commands | None:
        """The ``LPUSH`` commands of ``(message, queue, name, task id, limits)`` tasks, or
        None when a publish would need more than a plain push (then publish normally)."""
        made = self._producer()
        if made is None:
            return None
        producer, batch, declared = made
        commands: Commands = []
        for message, queue, name, task_id, limits in sends:
            batch.clear()
            # The queue is declared on this channel once; after that, kombu's per-publish
            # declare check (a copy and bind of the queue) only finds it declared. No
            # publish retry either: nothing is sent here, so nothing can fail to send.
            # Neither changes the message.
            once: dict[str, Any] = {"declare": []} if queue in declared else {}
            with producer.batch():
                self.celery.send_task(
                    producer=producer,
                    add_to_parent=False,
                    retry=False,
                    **once,
                    **self.send_options(message, queue, name, task_id, **limits),
                )
            if not batch:
                raise RuntimeError("kombu published a node task instead of batching it")
            declared.add(queue)
            commands += batch[0].commands
        if not commands or any(name != "lpush" or len(args) != 2 for name, args in commands):
            return None
        return commands


def outbox_applies(settings: Any, celery: Any) -> bool:
    """Whether node messages can ride with the commit: the broker is the checkpoint Redis
    (same URL), on a plain Redis transport without a key prefix, and no task-sent events
    (those are separate broker writes)."""
    if not settings.outbox or settings.sent_events:
        return False
    if settings.broker_url not in (None, settings.redis_url):
        return False
    if not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        return False
    options = celery.conf.broker_transport_options or {}
    return not options.get("global_keyprefix") and hasattr(
        _transport_channel(), "create_publish_batch"
    )


def _transport_channel() -> Any:
    from kombu.transport.redis import Channel

    return Channel
