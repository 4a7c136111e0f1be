"""The distributed protocol's atomic steps: Lua scripts over a thread's coordination keys.

Each method is one script on one thread's keys (one cluster slot), plus, where the
recovery sweeper needs to find the thread again, an entry in a global index. The index is
only a hint: the sweeper re-checks the thread's own keys in a script before acting.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from redis.commands import CoreCommands
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from relaygraph.persistence.redis_lane import ScriptLane
from relaygraph.workers import metrics
from relaygraph.workers.cluster_lane import REDIRECTS, ClusterLane
from relaygraph.workers.connect import is_cluster_client
from relaygraph.workers.keys import DEFAULT_BUCKETS, Indexes, ThreadKeys

__all__ = ["Acquired", "Coordinator", "StepRef", "compose", "event_batch", "now_ms"]

log = logging.getLogger("relaygraph.workers")

_LUA = Path(__file__).with_name("lua")
# Scripts that need the saver's scripts as functions (see compose).
_COMPOSED = ("finish_task", "hop", "commit_step", "start")
_SLICE = """local function slice(t, from, n)
  local out = {}
  for i = 0, n - 1 do out[i + 1] = t[from + i] end
  return out
end
"""
# Helpers shared by composed scripts, in files whose names start with "_" (not scripts).
_SECTION_CHECKS = (_LUA / "_section_checks.lua").read_text()


def compose(parts: dict[str, str], body: str) -> str:
    """One Lua script: the shared helpers (``slice``, ``check_section``), each part's source
    as ``local function <name>(KEYS, ARGV)``, then ``body``, which calls them with its own
    slices of keys and arguments.

    A part's ``KEYS``/``ARGV`` are its parameters, so its source runs unchanged (its
    ``return`` returns from the function). Every key stays in the thread's slot.
    """
    functions = "".join(
        f"local function {name}(KEYS, ARGV)\n{source}\nend\n" for name, source in parts.items()
    )
    return _SLICE + _SECTION_CHECKS + functions + body


def now_ms() -> int:
    """Wall-clock milliseconds (leases are compared across machines: keep clocks synced)."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class StepRef:
    """One superstep of one thread: the checkpoint its tasks read."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    run_id: str
    """Each run that executes the step has its own record (a resumed run re-runs it)."""

    @cached_property
    def key(self) -> str:
        return ThreadKeys(self.thread_id).step(self.checkpoint_ns, self.checkpoint_id, self.run_id)

    @cached_property
    def _member_head(self) -> str:
        ids = [self.thread_id, self.checkpoint_ns, self.checkpoint_id, self.run_id]
        return json.dumps(ids)[:-1] + ", "

    def member(self, task_id: str = "") -> str:
        """The member naming this step (and task) in a global index: the JSON list
        ``[thread, ns, checkpoint, run, task]`` (its head built once per step)."""
        return self._member_head + json.dumps(task_id) + "]"

    @classmethod
    def from_member(cls, member: str | bytes) -> tuple[StepRef, str]:
        thread_id, ns, checkpoint_id, run_id, task_id = json.loads(member)
        return cls(thread_id, ns, checkpoint_id, run_id), task_id


@dataclass(frozen=True)
class Acquired:
    """The answer of :meth:`Coordinator.acquire`."""

    status: str
    epoch: int
    attempts: int
    last: bool = False
    first_ms: int = 0
    """When the task's first attempt took its lease (ms; 0: not told)."""


class Coordinator:
    """Runs the protocol's scripts with a redis-py client (``decode_responses`` off)."""

    def __init__(
        self,
        redis: Any,
        *,
        lease_ttl: float = 5.0,
        saver: Any = None,
        run_ttl: int = 7 * 24 * 3600,
        index_buckets: int = DEFAULT_BUCKETS,
        commit_replicas: int = 0,
        commit_replicas_timeout: float = 1.0,
    ) -> None:
        self.redis = redis
        self.run_ttl = max(0, int(run_ttl))  # finished runs' records and steps (0: forever)
        self.indexes = Indexes(index_buckets)
        self.cluster = is_cluster_client(redis)
        # The leases asked ahead (acquire_later): on a cluster, a lane per shard.
        self._lane = ClusterLane(redis) if self.cluster else ScriptLane(redis)
        self.commit_replicas = max(0, int(commit_replicas))
        self.commit_replicas_timeout_ms = max(1, int(commit_replicas_timeout * 1000))
        self.ttl_ms = int(lease_ttl * 1000)
        self.saver = saver
        self._sent_later: list[tuple[str, list[str], list[Any]]] = []
        self._sent_lock = threading.Lock()
        sources = {p.stem: p.read_text() for p in _LUA.glob("*.lua") if not p.stem.startswith("_")}
        composed = {name: sources.pop(name) for name in _COMPOSED}
        self._scripts = {name: redis.register_script(text) for name, text in sources.items()}
        if saver is not None:  # scripts that change checkpoints and coordination at once
            parts = {
                "saver_commit": saver.script_source("commit"),
                "saver_writes": saver.script_source("writes"),
                "register_step": sources["register_step"],
                "emit_event": sources["emit_event"],
            }
            for name, body in composed.items():
                self._scripts[name] = redis.register_script(compose(parts, body))
            self._scripts["saver_read"] = redis.register_script(saver.script_source("read"))

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self._scripts[name](keys=keys, args=args)

    # -- steps and tasks -------------------------------------------------------------

    def register_step(
        self, step: StepRef, run_id: str, graph: str, tasks: list[tuple[str, str]]
    ) -> bool:
        """Record a step's tasks (once); True when this call created it."""
        call, index = self._registration(step, run_id, graph, tasks)
        (created,) = self._pipeline([call], index)
        return bool(created)

    def _registration(
        self, step: StepRef, run_id: str, graph: str, tasks: list[tuple[str, str]]
    ) -> tuple[tuple[str, list[str], list[Any]], Any]:
        """register_step.lua's call for a step's tasks, and the lease index entries that
        ride in the same round trip (nx: the entries of a step registered before stay as
        they are; the sweeper drops entries of finished tasks)."""
        args: list[Any] = [run_id, graph, now_ms()]
        for task_id, name in tasks:
            args.extend((task_id, name))
        deadline = now_ms() + self.ttl_ms
        members = {step.member(tid): deadline for tid, _ in tasks}
        run_key = ThreadKeys(step.thread_id).run(run_id)
        leases = self.indexes.leases(step.thread_id)
        call = ("register_step", [step.key, run_key], args)
        return call, lambda pipe: pipe.zadd(leases, members, nx=True)

    def _pipeline(
        self,
        calls: list[tuple[str, list[str], list[Any]]],
        extra: Any = None,
        extra_replies: list[Any] | None = None,
        *,
        lane: bool = False,
        ordered: bool = False,
    ) -> list:
        """Scripts (and index updates ``extra(pipe)``) in one round trip; their replies
        (``extra``'s replies are appended to ``extra_replies`` when given).

        ``lane``: on this thread's own connection (see :meth:`_on_lane`), for the node
        task's hot path.

        ``EVALSHA`` straight away (redis-py's own script pipelining asks ``SCRIPT EXISTS``
        first: a second round trip). A script the server does not know yet (first use, or
        a restarted server) is loaded and run again on its own, after the calls that
        followed it, so the calls of one pipeline must not depend on each other's order;
        unless ``ordered``: then every call but those of the last call's script goes by its
        source (``EVAL``, which a server never refuses as unknown), and the calls take
        effect in their order.
        """
        by_source = {i for i, (name, _, _) in enumerate(calls) if ordered and name != calls[-1][0]}
        deferred = self._take_sent()  # confirmations waiting for a round trip: this one
        by_source = {i + len(deferred) for i in by_source}
        calls = deferred + calls
        try:
            lanes = lane and not self.cluster
            replies = self._on_lane(calls, extra, by_source) if lanes else None
            if replies is None:
                pipe = self.redis.pipeline(transaction=False)
                for i, (name, keys, args) in enumerate(calls):
                    if i in by_source:  # (a cluster pipeline's eval() is something else)
                        source = self._scripts[name].script
                        pipe.execute_command("EVAL", source, len(keys), *keys, *args)
                    else:
                        pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
                if extra is not None:
                    extra(pipe)
                replies = pipe.execute(raise_on_error=False)
        except Exception:
            with self._sent_lock:  # not sent: keep them for the next round trip
                self._sent_later[:0] = deferred
            raise
        for reply in replies[len(calls) :]:
            if isinstance(reply, Exception):
                raise reply
        if extra_replies is not None:
            extra_replies.extend(replies[len(calls) :])
        out = []
        for (name, keys, args), reply in zip(calls, replies, strict=False):
            if isinstance(reply, NoScriptError):
                reply = self._scripts[name](keys=keys, args=args)  # loads it, runs it once
            elif isinstance(reply, Exception):
                raise reply
            out.append(reply)
        return out[len(deferred) :]

    def _on_lane(
        self,
        calls: list[tuple[str, list[str], list[Any]]],
        extra: Any,
        by_source: Container[int] = (),
    ) -> list[Any] | None:
        """:meth:`_pipeline`'s round trip on this thread's lane (the connection the leases
        asked ahead use, see :mod:`relaygraph.persistence.redis_lane`): the same commands
        without redis-py's per-pipeline path (pool checkout, retry wrapper, response
        callbacks), about a tenth of a millisecond of a hop's worker CPU. None when the
        connection failed (the lane dropped it): the caller sends them again through the
        client, whose retry policy a redis-py pipeline would have applied to the same
        failure.
        """
        commands: list[tuple[Any, ...]] = [
            ("EVAL", self._scripts[name].script, len(keys), *keys, *args)
            if i in by_source
            else ("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args)
            for i, (name, keys, args) in enumerate(calls)
        ]
        if extra is not None:
            recorder = _Recorder()
            extra(recorder)
            commands += recorder.commands
        try:
            return self._lane.send(commands)()
        except (RedisConnectionError, RedisTimeoutError):
            log.info("coordination lane: connection failed, through the client instead")
            return None

    def acquire(
        self, step: StepRef, task_id: str, epoch: int, max_attempts: int, worker: str
    ) -> Acquired:
        """Take a task's lease (counting the attempt) before running it.

        The lease index entry is written in the same round trip, before the answer is
        known: an entry for a task that did not get the lease is dropped by the sweeper.
        It only ever moves earlier (``LT``): a duplicate delivery answered ``busy`` must
        not put off the sweeper's look at a lease that expires before (its holder's pool
        process was killed, and the broker redelivered the message seconds later).
        """
        keys, args, leases, deadline = self._acquire_call(
            step, task_id, epoch, max_attempts, worker
        )
        (reply,) = self._pipeline(
            [("acquire", keys, args)],
            lambda pipe: pipe.zadd(leases, {step.member(task_id): deadline}, lt=True),
        )
        return _acquired(reply)

    def _acquire_call(
        self,
        step: StepRef,
        task_id: str,
        epoch: int,
        max_attempts: int,
        worker: str,
        now: int | None = None,
    ) -> tuple[list[str], list[Any], str, int]:
        """acquire.lua's keys and arguments, the lease index and the entry's deadline."""
        now = now or now_ms()
        keys = [step.key, ThreadKeys(step.thread_id).run(step.run_id)]
        args = [task_id, epoch, now, self.ttl_ms, max_attempts, worker]
        return keys, args, self.indexes.leases(step.thread_id), now + self.ttl_ms

    def acquire_later(
        self,
        step: StepRef,
        task_id: str,
        epoch: int,
        max_attempts: int,
        worker: str,
        now: int | None = None,
    ) -> Callable[[], Acquired]:
        """:meth:`acquire`, sent now and answered when the returned function is called
        (``now``: the time it gives the script, ms, e.g. the first attempt's start).

        The round trip then overlaps what the caller does meanwhile (running the node):
        Redis runs the acquire as soon as it arrives, so the lease is taken when the node
        starts, only its answer is read later (on this thread's lane, see
        :mod:`relaygraph.persistence.redis_lane`). The answer must be read, in a
        ``finally`` by a caller that may fail before.
        """
        keys, args, leases, deadline = self._acquire_call(
            step, task_id, epoch, max_attempts, worker, now
        )
        commands = [
            ("EVALSHA", self._scripts["acquire"].sha, 2, *keys, *args),
            ("ZADD", leases, "LT", deadline, step.member(task_id)),
        ]
        read = self._lane.send(commands)
        answered: list[Acquired] = []

        def answer() -> Acquired:
            if answered:
                return answered[0]
            reply, indexed = read()
            if isinstance(indexed, REDIRECTS):  # a cluster's slot moved: via the client
                indexed = self.redis.zadd(leases, {step.member(task_id): deadline}, lt=True)
            if isinstance(indexed, Exception):
                raise indexed
            if isinstance(reply, (NoScriptError, *REDIRECTS)):  # first use here, or moved
                reply = self._scripts["acquire"](keys=keys, args=args)
            elif isinstance(reply, Exception):
                raise reply
            answered.append(_acquired(reply))
            return answered[0]

        return answer

    def heartbeat(self, step: StepRef, task_id: str, epoch: int, worker: str = "") -> bool:
        """Renew the lease; False when the task was taken over (stop writing), or, with
        ``worker``, when the lease is not that worker's."""
        args = [task_id, epoch, now_ms(), self.ttl_ms, worker]
        held = bool(self._run("heartbeat", [step.key], args))
        if held:
            leases = self.indexes.leases(step.thread_id)
            self.redis.zadd(leases, {step.member(task_id): now_ms() + self.ttl_ms})
        return held

    def release(self, step: StepRef, task_id: str, epoch: int, due_ms: int | None = None) -> bool:
        """Hand a running task back: its broker retry, due at ``due_ms`` (default now),
        takes the lease again; until then it counts as on the broker ('sent')."""
        due = now_ms() if due_ms is None else due_ms
        return bool(self._run("release", [step.key], [task_id, epoch, due]))

    def mark_sent(
        self, step: StepRef, sent: list[tuple[str, int, str]], *, later: bool = False
    ) -> None:
        """Confirm ``(task id, epoch, broker id)`` tasks were published (mark_sent.lua).

        ``later``: ride along with this process's next round trip (or
        :meth:`flush_sent`) instead of paying one now. Until then the tasks count as
        never sent, which only matters after a lease TTL: far longer than the wait.
        """
        args: list[Any] = [part for triple in sent for part in triple]
        if not args:
            return
        if later:
            with self._sent_lock:
                self._sent_later.append(("mark_sent", [step.key], args))
            return
        self._run("mark_sent", [step.key], args)

    def flush_sent(self) -> None:
        """Send the confirmations :meth:`mark_sent` deferred, if any."""
        if self._sent_later:
            self._pipeline([])

    def _take_sent(self) -> list[tuple[str, list[str], list[Any]]]:
        with self._sent_lock:
            taken, self._sent_later = self._sent_later, []
        return taken

    def acquire_and_read(
        self,
        step: StepRef,
        task_id: str,
        epoch: int,
        max_attempts: int,
        worker: str,
        read: Any,
    ) -> tuple[Acquired, Any]:
        """:meth:`acquire` and the saver's read of the step's checkpoint, one round trip.

        ``read`` is a :meth:`RedisSaver.prepare_read` request; the second item is the raw
        reply for :meth:`RedisSaver.finish_read`. The read is independent of the lease: a
        task that does not get the lease just drops it.
        """
        keys, args, leases, deadline = self._acquire_call(
            step, task_id, epoch, max_attempts, worker
        )
        raw, reply = self._pipeline(
            [("saver_read", read.keys, read.args), ("acquire", keys, args)],
            lambda pipe: pipe.zadd(leases, {step.member(task_id): deadline}, lt=True),
        )
        return _acquired(reply), raw

    def finish_task(
        self,
        step: StepRef,
        task_id: str,
        epoch: int,
        status: str,
        saver_keys: list[str],
        sections: list[tuple[str, list[Any]]],
    ) -> str:
        """Store a task's writes and events and record its end under its epoch.

        ``sections`` are ``("writes", saver writes arguments)`` (from
        :meth:`RedisSaver.prepare_writes`) and ``("event", emit arguments)`` (from
        :func:`event_batch`). Returns ``last`` when this was the step's last open task (the
        caller runs the barrier), ``ok``, ``dup`` (already recorded: a duplicate delivery)
        or ``stale`` (fenced out: nothing was stored).
        """
        keys = ThreadKeys(step.thread_id)
        deadline = now_ms() + self.ttl_ms
        args: list[Any] = [task_id, epoch, status, now_ms(), self.ttl_ms]
        for name, values in sections:
            args += [name, len(values), *values]
        script_keys = [
            *saver_keys,
            step.key,
            keys.events(step.run_id),
            keys.event_keys(step.run_id),
        ]

        leases = self.indexes.leases(step.thread_id)
        barriers = self.indexes.barriers(step.thread_id)

        def indexes(pipe: Any) -> None:
            pipe.zrem(leases, step.member(task_id))
            pipe.zadd(barriers, {step.member(): deadline})

        (reply,) = self._pipeline([("finish_task", script_keys, args)], indexes, lane=True)
        return _text(reply)

    def hop(
        self,
        step: StepRef,
        task_id: str,
        epoch: int,
        saver_keys: list[str],
        sections: list[tuple[str, list[Any]]],
        next_step: StepRef | None,
        next_tasks: list[str],
        extra: Any = None,
        queue_keys: Sequence[str] = (),
    ) -> list[str]:
        """Finish a single-task step in one script (hop.lua) and update the indexes.

        ``sections`` start with the saver's commit; the reply is ``["ok"]``, a refusal
        (``["refused", why]``) or the commit's own answer — in both of the latter nothing
        was stored. ``extra(pipe)`` adds commands of other slots (the saver's run
        registry) to the same round trip. ``queue_keys`` are the broker lists a
        ``publish`` section pushes to (the broker is this Redis; see outbox.py).
        """
        keys = ThreadKeys(step.thread_id)
        member = next_step.member() if next_step is not None and next_tasks else ""
        args: list[Any] = [task_id, epoch, now_ms(), member, self.run_ttl]
        for name, values in sections:
            args += [name, len(values), *values]
        script_keys = [
            *saver_keys,
            step.key,
            keys.run(step.run_id),
            next_step.key if next_step is not None else step.key,
            keys.events(step.run_id),
            keys.event_keys(step.run_id),
            *queue_keys,
        ]
        deadline = now_ms() + self.ttl_ms
        leases, runs = self.indexes.leases(step.thread_id), self.indexes.runs(step.thread_id)

        def indexes(pipe: Any) -> None:
            if extra is not None:
                extra(pipe)
            pipe.zrem(leases, step.member(task_id))
            if member:
                assert next_step is not None
                pipe.zadd(leases, {next_step.member(tid): deadline for tid in next_tasks})
            pipe.zadd(runs, {json.dumps([step.thread_id, step.run_id]): now_ms()})
            self._wait_replicas(pipe, step.key)

        replies: list[Any] = []
        (reply,) = self._pipeline([("hop", script_keys, args)], indexes, replies, lane=True)
        self._check_replicas(replies)
        return [_text(part) for part in reply]

    def start(
        self,
        step: StepRef,
        worker: str,
        start_step: int,
        saver_keys: list[str],
        sections: list[tuple[str, list[Any]]],
        tasks: list[str],
        extra: Any = None,
        queue_keys: Sequence[str] = (),
    ) -> list[str] | None:
        """A run's start in one script (start.lua): commit the input checkpoint, append
        its events, register the first step ``step`` with ``tasks``, put them on the
        broker (a ``publish`` section) and mark the run running, while the run is pending
        and ``worker`` holds its start claim.

        ``sections`` start with the saver's commit. The reply is ``["ok"]``, a refusal
        (``["refused", "run" | "claim"]``) or the commit's own answer; in both of the
        latter nothing was stored. None when this coordinator has no saver scripts.
        ``extra(pipe)`` adds commands of other slots to the same round trip.
        """
        if "start" not in self._scripts:
            return None
        thread_id, run_id = step.thread_id, step.run_id
        keys = ThreadKeys(thread_id)
        args: list[Any] = [now_ms(), worker, start_step, step.member()]
        for name, values in sections:
            args += [name, len(values), *values]
        script_keys = [
            *saver_keys,
            keys.run(run_id),
            step.key,
            keys.events(run_id),
            keys.event_keys(run_id),
            *queue_keys,
        ]
        deadline = now_ms() + self.ttl_ms
        leases, runs = self.indexes.leases(thread_id), self.indexes.runs(thread_id)

        def indexes(pipe: Any) -> None:
            if extra is not None:
                extra(pipe)
            pipe.zadd(leases, {step.member(tid): deadline for tid in tasks}, nx=True)
            pipe.zadd(runs, {json.dumps([thread_id, run_id]): now_ms()})
            self._wait_replicas(pipe, keys.run(run_id))

        replies: list[Any] = []
        (reply,) = self._pipeline([("start", script_keys, args)], indexes, replies, lane=True)
        self._check_replicas(replies)
        return [_text(part) for part in reply]

    def commit_step(
        self,
        step: StepRef,
        saver_keys: list[str],
        sections: list[tuple[str, list[Any]]],
        extra: Any = None,
    ) -> list[str] | None:
        """A barrier's commit and events, only while the run is active (commit_step.lua).

        ``sections``: the saver's ``commit`` arguments first, then ``event`` sections.
        The reply is ``["ok"]``, ``["refused", "run"]`` or the commit's own refusal (in
        both nothing was stored); None when this coordinator has no saver scripts.
        """
        if "commit_step" not in self._scripts:
            return None
        keys = ThreadKeys(step.thread_id)
        args: list[Any] = [now_ms()]
        for name, values in sections:
            args += [name, len(values), *values]
        script_keys = [
            *saver_keys,
            step.key,
            keys.run(step.run_id),
            keys.events(step.run_id),
            keys.event_keys(step.run_id),
        ]

        def then(pipe: Any) -> None:
            if extra is not None:
                extra(pipe)
            self._wait_replicas(pipe, step.key)

        replies: list[Any] = []
        (reply,) = self._pipeline([("commit_step", script_keys, args)], then, replies)
        self._check_replicas(replies)
        return [_text(part) for part in reply]

    def _wait_replicas(self, pipe: Any, key: str) -> None:
        """``RELAYGRAPH_COMMIT_REPLICAS``: queue ``WAIT n timeout`` behind a commit script
        in ``pipe``, on the connection that sent the script (on a cluster, to the node of
        the thread's slot), so the round trip returns only once ``n`` replicas have the
        commit or the timeout passed (see :meth:`_check_replicas`).

        WAIT counts the writes of its own connection: behind the script on one
        connection it covers the commit (replication is in order, so everything before).
        """
        if not self.commit_replicas:
            return
        options: dict[str, Any] = {}
        if self.cluster:
            options["target_nodes"] = self.redis.get_node_from_key(key)
        timeout = self.commit_replicas_timeout_ms
        pipe.execute_command("WAIT", self.commit_replicas, timeout, **options)

    def _check_replicas(self, replies: list[Any]) -> None:
        """Fewer replicas acknowledged a commit than ``commit_replicas`` asked: the commit
        stands (WAIT cannot undo it), but it may be lost if its primary fails now."""
        if not self.commit_replicas or not replies:
            return
        acked = int(replies[-1])
        if acked < self.commit_replicas:
            metrics.count_replica_shortfall()
            log.warning(
                "commit acknowledged by %d replica(s) of the %d asked within %d ms",
                acked,
                self.commit_replicas,
                self.commit_replicas_timeout_ms,
            )

    def requeue(self, step: StepRef, task_id: str, queued_grace_ms: int) -> int:
        """Recovery: a new epoch for a stuck task (see requeue.lua), or -1."""
        args = [task_id, now_ms(), queued_grace_ms, self.ttl_ms]
        return int(self._run("requeue", [step.key], args))

    def requeue_reserved(self, step: StepRef, task_id: str, mark: str) -> int:
        """Recovery: a new epoch for a task reserved (``mark``) by a worker found dead
        (see requeue_reserved.lua and :mod:`relaygraph.workers.reservations`), or -1."""
        return int(self._run("requeue_reserved", [step.key], [task_id, now_ms(), mark]))

    def lock_buckets(self, token: str, ttl_ms: int) -> list[int]:
        """The index buckets whose sweep lock ``token`` now holds for ``ttl_ms`` (taken,
        or kept: a holder takes its own again), each in its bucket's slot, one round trip."""
        buckets = range(self.indexes.buckets)
        calls = [("sweep_lock", [self.indexes.lock(n)], [token, ttl_ms]) for n in buckets]
        return [n for n, held in zip(buckets, self._pipeline(calls), strict=True) if held]

    def script(self, name: str) -> Any:
        """The registered script ``name`` (for a caller that sends it on its own lane)."""
        return self._scripts[name]

    def claim_barrier(self, step: StepRef) -> bool:
        """Recovery: take over a barrier whose holder died."""
        return bool(self._run("claim_barrier", [step.key], [now_ms(), self.ttl_ms]))

    def set_step_state(self, step: StepRef, state: str) -> None:
        """Mark a step committed / failed / interrupted / cancelled (it is kept the run TTL
        from now on); drop it from indexes."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(step.key, "state", state)
        if self.run_ttl:
            pipe.expire(step.key, self.run_ttl)
        pipe.zrem(self.indexes.barriers(step.thread_id), step.member())
        pipe.execute()

    def step_info(self, step: StepRef) -> dict[str, str]:
        """The step hash, decoded."""
        raw = self.redis.hgetall(step.key)
        return {k.decode(): v.decode() for k, v in raw.items()}

    def task_error(self, step: StepRef, task_id: str) -> str | None:
        """Why the protocol failed a task (e.g. its attempt budget was spent), if it did."""
        value = self.redis.hget(step.key, f"x:{task_id}")
        return value.decode() if value else None

    # -- runs -----------------------------------------------------------------------

    def submit_run(
        self, thread_id: str, run_id: str, strategy: str, fields: dict[str, Any]
    ) -> tuple[str, str]:
        """Create a run record; returns (decision, other run id) — see submit_run.lua.

        The run index entry rides in the same round trip (it lives in another cluster
        slot, so it cannot be in the script): a client that dies before sending the run's
        start message leaves a run the sweeper finds and starts. A run that did not become
        active (rejected, queued) is taken out of the index again; one the client died
        before taking out, the sweeper drops.
        """
        keys = ThreadKeys(thread_id)
        now = now_ms()
        args: list[Any] = [run_id, strategy, now]
        for name, value in fields.items():
            args.extend((name, value))
        member = json.dumps([thread_id, run_id])
        runs = self.indexes.runs(thread_id)
        (reply,) = self._pipeline(
            [("submit_run", [keys.active, keys.run(run_id), keys.queue, keys.runs], args)],
            lambda pipe: pipe.zadd(runs, {member: now}),
        )
        decision, other = (part.decode() if isinstance(part, bytes) else part for part in reply)
        if decision in ("reject", "queued"):
            self.redis.zrem(runs, member)
        return decision, other

    def claim_start(self, thread_id: str, run_id: str, worker: str) -> bool:
        """Claim the start of a pending run (see claim_start.lua)."""
        key = ThreadKeys(thread_id).run(run_id)
        return bool(self._run("claim_start", [key], [now_ms(), self.ttl_ms, worker]))

    def claim_start_reading(
        self, thread_id: str, run_id: str, worker: str
    ) -> tuple[bool, dict[str, bytes]]:
        """:meth:`claim_start` and the run hash (as :meth:`run_info`), one round trip. The
        claim refuses a run that is not pending by itself, so it need not wait for the read.
        """
        key = ThreadKeys(thread_id).run(run_id)
        raw: list[Any] = []
        (claimed,) = self._pipeline(
            [("claim_start", [key], [now_ms(), self.ttl_ms, worker])],
            lambda pipe: pipe.hgetall(key),
            raw,
        )
        return bool(claimed), {k.decode(): v for k, v in raw[0].items()}

    def renew_start(self, thread_id: str, run_id: str) -> None:
        """Keep a start claim alive while its holder works."""
        key = ThreadKeys(thread_id).run(run_id)
        self.redis.hset(key, "start_lease", now_ms() + self.ttl_ms)

    def finish_run(
        self,
        thread_id: str,
        run_id: str,
        status: str,
        error: str = "",
        events: Sequence[tuple[str, dict[str, Any]]] = (),
        *,
        maxlen: int = 0,
        ttl: int = 0,
    ) -> str:
        """Give a run its final status; returns the next queued run to start, or ''.

        ``events`` (``(event key, fields)``, as :meth:`emit_events`; ``maxlen`` and
        ``ttl`` its stream limits) are appended after the status is final, and the run
        leaves the run index, in the same round trip.
        """
        keys = ThreadKeys(thread_id)
        runs = self.indexes.runs(thread_id)
        stream_keys = [keys.events(run_id), keys.event_keys(run_id)]
        calls: list[tuple[str, list[str], list[Any]]] = [
            (
                "finish_run",
                [keys.active, keys.run(run_id), keys.queue, keys.runs],
                [run_id, status, now_ms(), error, self.run_ttl],
            )
        ]
        if events:
            calls += [
                ("emit_event", stream_keys, args)
                for args in event_batch(list(events), maxlen=maxlen, ttl=ttl)
            ]
        reply = self._pipeline(  # ordered: the end event never before the final status
            calls, lambda pipe: pipe.zrem(runs, json.dumps([thread_id, run_id])), ordered=True
        )[0]
        next_run = reply.decode() if isinstance(reply, bytes) else (reply or "")
        if next_run:  # the sweeper starts it if the caller dies before it does
            self.redis.zadd(runs, {json.dumps([thread_id, next_run]): now_ms()})
        return next_run

    def touch_run(
        self,
        thread_id: str,
        run_id: str,
        *,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
        maxlen: int = 0,
        ttl: int = 0,
        **fields: Any,
    ) -> bool:
        """Record progress of a run (and any changed fields); False when ``status`` was to
        become ``running`` but the run had ended meanwhile (cancelled, interrupted by another
        submission): it then keeps its final status and the caller schedules nothing.

        ``events`` (with ``status="running"`` only; ``(event key, fields)`` as
        :meth:`emit_events`, ``maxlen`` and ``ttl`` its stream limits) are appended first,
        in the same round trip.
        """
        if fields.get("status") == "running":  # never over a status set concurrently
            keys = ThreadKeys(thread_id)
            stream = [keys.events(run_id), keys.event_keys(run_id)]
            before = [
                ("emit_event", stream, args)
                for args in event_batch(list(events), maxlen=maxlen, ttl=ttl)
            ]
            return self._mark_running(thread_id, run_id, fields, before)[-1]
        if events:
            raise ValueError("touch_run sends events only with status='running'")
        keys = ThreadKeys(thread_id)
        runs, member = self.indexes.runs(thread_id), json.dumps([thread_id, run_id])
        pipe = self.redis.pipeline(transaction=False)
        if fields:
            pipe.hset(keys.run(run_id), mapping={**fields, "updated": now_ms()})
        pipe.zadd(runs, {member: now_ms()})
        pipe.execute()
        return True

    def _mark_running(
        self,
        thread_id: str,
        run_id: str,
        fields: dict[str, Any],
        before: list[tuple[str, list[str], list[Any]]],
        extra: Any = None,
    ) -> list[Any]:
        """Scripts ``before``, then mark_running.lua with ``fields``, in one round trip:
        the replies of ``before`` and last whether the run is still active."""
        keys = ThreadKeys(thread_id)
        runs, member = self.indexes.runs(thread_id), json.dumps([thread_id, run_id])
        args: list[Any] = [now_ms()]
        for name, value in fields.items():
            args += [name, value]

        def then(pipe: Any) -> None:
            if extra is not None:
                extra(pipe)
            pipe.zadd(runs, {member: now_ms()})
            # a run's start commits its input checkpoint (the saver's own connection)
            # before this: WAIT here covers it too, as it covers every earlier write
            self._wait_replicas(pipe, keys.run(run_id))

        replies: list[Any] = []
        calls = [*before, ("mark_running", [keys.run(run_id)], args)]
        out = self._pipeline(calls, then, replies, ordered=True)
        self._check_replicas(replies)
        return [*out[:-1], bool(out[-1])]

    def register_and_mark(
        self, step: StepRef, run_id: str, graph: str, tasks: list[tuple[str, str]]
    ) -> bool:
        """:meth:`register_step`, then ``touch_run(step=..., status="running")``, in one
        round trip (in that order); False when the run ended meanwhile."""
        call, indexes = self._registration(step, run_id, graph, tasks)
        fields = {"step": step.member(), "status": "running"}
        return self._mark_running(step.thread_id, run_id, fields, [call], indexes)[-1]

    def run_status(self, thread_id: str, run_id: str) -> str | None:
        """Just the run's status (one small read)."""
        value = self.redis.hget(ThreadKeys(thread_id).run(run_id), "status")
        return value.decode() if value else None

    def run_info(self, thread_id: str, run_id: str) -> dict[str, bytes]:
        """The run hash (values as bytes)."""
        raw = self.redis.hgetall(ThreadKeys(thread_id).run(run_id))
        return {k.decode(): v for k, v in raw.items()}

    def emit_events(
        self,
        thread_id: str,
        run_id: str,
        events: list[tuple[str, dict[str, Any]]],
        *,
        maxlen: int,
        ttl: int,
    ) -> None:
        """Append ``(event key, fields)`` events to the run's stream in one round trip, in
        order, each once per event key (a retried node never repeats one)."""
        if not events:
            return
        keys = ThreadKeys(thread_id)
        stream_keys = [keys.events(run_id), keys.event_keys(run_id)]
        calls = [
            ("emit_event", stream_keys, args)
            for args in event_batch(events, maxlen=maxlen, ttl=ttl)
        ]
        self._pipeline(calls)


class _Recorder(CoreCommands):
    """A stand-in for a redis-py pipeline that keeps the commands its methods build
    (``zadd``, ``sadd``, ``execute_command``, ...) as argument tuples, to send raw."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **_options: Any) -> None:
        # options (keys=, target_nodes=) only route a command; a lane has one server
        self.commands.append(args)


def event_batch(
    events: list[tuple[str, dict[str, Any]]], *, maxlen: int, ttl: int
) -> list[list[Any]]:
    """emit_event.lua's arguments for each ``(event key, fields)`` of a batch (also the
    event sections of finish_task / hop); only the last one refreshes the stream's TTL."""
    batch = []
    for n, (event_key, fields) in enumerate(events):
        args: list[Any] = [event_key, maxlen, ttl if n == len(events) - 1 else 0]
        for name, value in fields.items():
            args.extend((name, value))
        batch.append(args)
    return batch


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _acquired(reply: list[Any]) -> Acquired:
    last = len(reply) > 3 and int(reply[3]) == 1
    first_ms = int(reply[4]) if len(reply) > 4 else 0
    return Acquired(_text(reply[0]), int(reply[1]), int(reply[2]), last, first_ms)
