"""Lease heartbeats: one background thread per process renews every running task's lease.

A node that finishes within one heartbeat interval (most do) costs no renewal and no
thread start; a long node's lease is renewed every interval until it ends or is fenced
out (another worker took the task over under a new epoch). The same thread keeps other
claims alive (a run's start claim, :meth:`LeaseKeeper.keep`), so holding one starts no
thread either.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

__all__ = ["Lease", "LeaseKeeper"]

log = logging.getLogger("relaygraph.workers")


@dataclass(eq=False)
class Lease:
    """One task's lease while its node runs; ``held`` turns False when it is fenced out.

    ``renew``, when given, is called instead of the keeper's heartbeat (a claim that is
    not a task's lease, see :meth:`LeaseKeeper.keep`); it cannot be fenced out.
    """

    step: Any  # StepRef
    task_id: str
    epoch: int
    renewed: float = field(default_factory=time.monotonic)
    held: bool = True
    renew: Callable[[], object] | None = None


class LeaseKeeper:
    """Renews the leases of this process's running tasks every ``interval`` seconds.

    ``heartbeat(step, task_id, epoch) -> bool`` is the renewal (False: fenced out);
    ``on_tick()``, if given, runs every tick too (deferred work that must not wait for
    the next task, such as publish confirmations). The thread starts on first use in
    each process, so a keeper made before a fork (Celery's
    prefork pool) works in the children.
    """

    def __init__(self, heartbeat: Any, interval: float, on_tick: Any = None) -> None:
        self.heartbeat = heartbeat
        self.interval = interval
        self.on_tick = on_tick
        self._leases: set[Lease] = set()
        self._lock = threading.Lock()
        self._owner_pid: int | None = None
        self._unreachable = False  # Redis down: said once, not every tick

    def hold(self, step: Any, task_id: str, epoch: int) -> Lease:
        """Start renewing a lease just acquired."""
        return self._add(Lease(step, task_id, epoch))

    def keep(self, renew: Callable[[], object]) -> Lease:
        """Call ``renew()`` every interval until :meth:`release` (a claim's renewal: a
        run's start claim while its start runs). A blip is logged and tried again next
        tick, as a heartbeat's."""
        return self._add(Lease(None, "", 0, renew=renew))

    def _add(self, lease: Lease) -> Lease:
        with self._lock:
            self._leases.add(lease)
            if self._owner_pid != os.getpid():
                self._owner_pid = os.getpid()
                threading.Thread(target=self._loop, daemon=True, name="relaygraph-lease").start()
        return lease

    def release(self, lease: Lease) -> bool:
        """Stop renewing; whether the lease was still ours (no final renewal: the scripts
        that record the task refuse a superseded epoch anyway)."""
        with self._lock:
            self._leases.discard(lease)
        return lease.held

    def _due(self) -> list[Lease]:
        now = time.monotonic()
        with self._lock:
            return [lease for lease in self._leases if now - lease.renewed >= self.interval]

    def _loop(self) -> None:
        tick = max(0.01, self.interval / 4)
        while True:
            time.sleep(tick)
            if self.on_tick is not None:
                try:
                    self.on_tick()
                    self._reached()
                except Exception as exc:  # a blip: the next tick tries again
                    self._failed("lease keeper tick failed", exc)
            for lease in self._due():
                try:
                    if lease.renew is not None:
                        lease.renew()
                        held = True
                    else:
                        held = self.heartbeat(lease.step, lease.task_id, lease.epoch)
                    self._reached()
                except Exception as exc:  # a blip: the next tick retries, the lease has slack
                    self._failed("lease heartbeat failed", exc)
                    continue
                lease.renewed = time.monotonic()
                if not held:
                    lease.held = False
                    with self._lock:
                        self._leases.discard(lease)

    def _failed(self, what: str, exc: Exception) -> None:
        """Log a failed tick: an unreachable Redis once per outage, in one line; anything
        else with its traceback."""
        if not isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            log.warning(what, exc_info=True)
        elif not self._unreachable:
            self._unreachable = True
            log.warning("%s: Redis unreachable (%s); retrying every tick, quietly", what, exc)

    def _reached(self) -> None:
        if self._unreachable:
            self._unreachable = False
            log.warning("lease keeper: Redis reachable again")
