"""The Celery app: node and start tasks, broker settings for safety, the recovery sweeper.

Start workers with ``relaygraph worker`` (or ``celery -A relaygraph.workers.app worker``);
configuration comes from the environment (:class:`~relaygraph.workers.settings.WorkerSettings`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import Any

from celery import Celery, signals

from relaygraph.workers.coordination import StepRef
from relaygraph.workers.engine import Engine, NodeMessage, RetryLater
from relaygraph.workers.registry import GraphRegistry
from relaygraph.workers.settings import WorkerSettings

__all__ = ["app", "celery_settings", "create_app", "get_engine", "reservations_of", "run_worker"]

log = logging.getLogger("relaygraph.workers")

NODE_TASK = "relaygraph.node"
START_TASK = "relaygraph.start_run"


def celery_settings(settings: WorkerSettings) -> dict[str, Any]:
    """The Celery configuration of relaygraph's workers (see :func:`create_app`)."""
    return dict(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.default_queue,
        task_serializer="json",
        accept_content=["json"],
        worker_send_task_events=settings.task_events,
        # Flower lists a task from its task-received event on (with its kwargs); the sent
        # event only adds queued tasks to the list, for one more broker write per hop.
        task_send_sent_event=settings.task_events and settings.sent_events,
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
    )


def create_app(settings: WorkerSettings | None = None) -> Celery:
    """A Celery app configured for relaygraph's protocol.

    Late acks and ``reject_on_worker_lost`` make the broker redeliver a message whose
    worker died; prefetch 1 keeps messages from sitting behind a busy worker; the
    visibility timeout sits above the longest node. None of them is what recovers a thread
    quickly — leases and the sweeper are — they only make sure no message is lost.
    """
    settings = settings or WorkerSettings()
    celery = Celery("relaygraph", broker=settings.broker)
    celery.conf.update(celery_settings(settings))
    celery.relaygraph_settings = settings  # type: ignore[attr-defined]

    @celery.task(bind=True, name=NODE_TASK, max_retries=None)
    def node(
        self: Any,
        graph: str,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        epoch: int,
        run_id: str,
        step: int = -1,
        node: str = "",
    ) -> str:
        """Run one node of one superstep of a thread (ids only in the message)."""
        message = NodeMessage(
            graph, thread_id, checkpoint_ns, checkpoint_id, task_id, epoch, run_id, step, node
        )
        try:
            return get_engine(celery).run_node(message)
        except RetryLater as retry:
            raise self.retry(countdown=retry.delay, exc=retry.error) from retry.error

    @celery.task(name=START_TASK)
    def start_run(thread_id: str, run_id: str) -> None:
        """Apply a submitted run's input and schedule its first step."""
        get_engine(celery).start_run(thread_id, run_id)

    return celery


_engines: dict[int, Engine] = {}
_engine_lock = threading.Lock()


def get_engine(celery: Celery) -> Engine:
    """This process's engine (built on first use: saver, coordinator, registry, store)."""
    key = id(celery)
    with _engine_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = build_engine(celery)
            _engines[key] = engine
        return engine


def build_engine(celery: Celery, registry: GraphRegistry | None = None) -> Engine:
    """An engine for ``celery``'s settings; node tasks are enqueued on ``celery``.

    The Redis URL may name a single Redis or a Redis Cluster node (detected); a broker URL
    naming a cluster node is refused (:class:`~relaygraph.workers.connect.BrokerOnClusterError`).
    """
    from relaygraph.persistence.redis import RedisSaver
    from relaygraph.workers.connect import check_broker, redis_client
    from relaygraph.workers.coordination import Coordinator
    from relaygraph.workers.outbox import Outbox, outbox_applies

    settings: WorkerSettings = celery.relaygraph_settings  # type: ignore[attr-defined]
    check_broker(settings.broker)
    client = redis_client(settings.redis_url)
    store = None
    if settings.store_url:
        from relaygraph.persistence.store.redis import RedisStore

        index = None
        if settings.store_embed:
            index = {
                "embed": settings.store_embed,
                "dims": settings.store_dims,
                "fields": [f.strip() for f in settings.store_fields.split(",") if f.strip()],
            }
        store = RedisStore.from_conn_string(settings.store_url, index=index)
    saver = RedisSaver.from_conn_string(settings.redis_url, ttl=settings.thread_ttl)
    return Engine(
        registry or GraphRegistry(settings.graphs),
        saver,
        Coordinator(client, saver=saver, **settings.coordinator_options()),
        settings,
        enqueuer(celery),
        store=store,
        outbox=Outbox(celery, send_options) if outbox_applies(settings, celery) else None,
        worker_name=f"{socket.gethostname()}:{os.getpid()}",
    )


def send_options(
    message: NodeMessage, queue: str, name: str, task_id: str | None = None, **limits: float
) -> dict[str, Any]:
    """The ``celery.send_task`` arguments of one node task."""
    kwargs = {
        "graph": message.graph,
        "thread_id": message.thread_id,
        "checkpoint_ns": message.checkpoint_ns,
        "checkpoint_id": message.checkpoint_id,
        "task_id": message.task_id,
        "epoch": message.epoch,
        "run_id": message.run_id,
        "step": message.step_number,
        # the name is "node <graph>.<node> thread=... step=..." (see Engine._route)
        "node": message.node or name.removeprefix("node ").split(" ", 1)[0].split(".", 1)[-1],
    }
    return {
        "name": NODE_TASK,
        "kwargs": kwargs,
        "queue": queue,
        "shadow": name,
        "task_id": task_id,
        # What Flower shows; ids and numbers only, so the plain repr is exact (Celery's
        # own saferepr walk of the kwargs costs more than the rest of the publish).
        "argsrepr": "()",
        "kwargsrepr": repr(kwargs),
        **limits,
    }


def enqueuer(celery: Celery) -> Any:
    """The function the engine calls to put a node task on the broker."""

    def enqueue(
        message: NodeMessage, queue: str, name: str, task_id: str | None = None, **limits: float
    ) -> str:
        return celery.send_task(**send_options(message, queue, name, task_id, **limits)).id

    return enqueue


def run_worker(argv: list[str], celery: Celery | None = None) -> int:
    """Run ``celery worker`` with ``argv`` (``["worker", ...]``); its exit code.

    Celery's own ``worker_main`` drops the code: after ``Unrecoverable error:
    WorkerLostError('Could not start worker processes')`` it returns normally, so a
    supervisor that restarts a worker only on failure would leave it down.
    """
    from celery.bin.celery import celery as command
    from click.exceptions import Exit

    command.params[0].default = celery or app  # what Celery.start does: the --app default
    try:
        code = command.main(args=argv, standalone_mode=False)
    except Exit as exc:
        code = exc.exit_code
    finally:
        command.params[0].default = None
    return code if isinstance(code, int) else 0


def _start_sweeper(sender: Any = None, **_: Any) -> None:
    from relaygraph.workers.recovery import Sweeper

    celery = getattr(sender, "app", None) or app
    settings = celery.relaygraph_settings
    if settings.json_logs:
        from relaygraph.workers.logs import configure_json_logging

        configure_json_logging()
    if settings.metrics_port:
        from relaygraph.workers.metrics import start_metrics_server

        start_metrics_server(settings.metrics_port)
    reservations_of(celery, getattr(sender, "hostname", ""))  # alive before its first mark
    sweeper = Sweeper(get_engine(celery))
    sweeper.start_background(celery.relaygraph_settings.sweep_interval)
    _sweepers.append(sweeper)


def _warm_up(sender: Any = None, **_: Any) -> None:
    """Before the pool forks: import the graphs and load the store's embedding model.

    Slow first imports (torch for the offline model takes tens of seconds) then happen
    once, in the main process, before the worker says it is ready; every pool process
    inherits them instead of paying them inside its first task, where they held up a
    task whose lease or start claim was not yet taken (and the sweeper took it for lost).
    """
    celery = getattr(sender, "app", None) or app
    settings: WorkerSettings = celery.relaygraph_settings
    try:
        registry = GraphRegistry(settings.graphs)
        for name in registry.names():
            registry.get(name)
        if settings.store_url and settings.store_embed:
            from relaygraph.persistence.embeddings import default_embeddings, is_default_model

            if is_default_model(settings.store_embed):
                default_embeddings()  # cached per process: the engines reuse it
    except Exception:  # the task that needs it reports the error where it matters
        log.warning("warming up before the pool starts failed", exc_info=True)


def _stop_sweeper(**_: Any) -> None:
    while _sweepers:
        _sweepers.pop().stop()
    while _reservations:
        _reservations.popitem()[1].stop()


def reservations_of(celery: Celery, hostname: str = "") -> Any:
    """The worker main process's :class:`~relaygraph.workers.reservations.Reservations`
    (started on first use: registered alive, renewed every heartbeat interval)."""
    from relaygraph.workers.reservations import Reservations, worker_id

    key = id(celery)
    with _engine_lock:
        held = _reservations.get(key)
    if held is None:
        engine = get_engine(celery)
        held = Reservations(
            engine.coordinator,
            worker_id(hostname or socket.gethostname()),
            celery.relaygraph_settings.heartbeat,
        )
        held.start()
        with _engine_lock:
            held = _reservations.setdefault(key, held)
    return held


def _mark_reserved(sender: Any = None, request: Any = None, **_: Any) -> None:
    """A node message reached this worker (Celery's ``task_received``, in the main
    process, before it goes to a pool process): mark it reserved by this worker."""
    if request is None or request.type != NODE_TASK:
        return
    try:
        kwargs = request.kwargs
        step = StepRef(
            kwargs["thread_id"], kwargs["checkpoint_ns"], kwargs["checkpoint_id"], kwargs["run_id"]
        )
        celery = getattr(sender, "app", None) or app
        reservations_of(celery, getattr(sender, "hostname", "")).mark(
            step, kwargs["task_id"], int(kwargs["epoch"])
        )
    except Exception:  # never stop the consumer: the queued grace still covers the task
        log.warning("could not mark a received node message", exc_info=True)
    _crash_whole_worker("received")


def _crash_whole_worker(point: str) -> None:
    """Fault injection for the crash tests, as :func:`~relaygraph.workers.engine.crash_point`
    (``RELAYGRAPH_CRASH_AT``, ``RELAYGRAPH_CRASH_FLAG``) but SIGKILLing the whole worker:
    its process group when it leads one (``LocalFleet`` starts each worker so), else itself.
    Point ``received``: a node message was marked reserved and not handed to the pool yet.
    """
    from relaygraph.workers.engine import crash_armed

    if not crash_armed(point):
        return
    # The mark was only written to the socket, its reply unread: what a SIGKILL leaves.
    log.warning("crash point %s: killing the whole worker", point)
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


_sweepers: list[Any] = []
signals.worker_init.connect(_warm_up, weak=False)

_reservations: dict[int, Any] = {}
signals.worker_ready.connect(_start_sweeper, weak=False)
signals.worker_shutdown.connect(_stop_sweeper, weak=False)
signals.task_received.connect(_mark_reserved, weak=False)

app = create_app()
"""The app ``celery -A relaygraph.workers.app worker`` runs (settings from the environment)."""
