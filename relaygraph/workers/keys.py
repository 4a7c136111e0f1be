"""Redis key names of the distributed executor.

Every key of one thread carries the thread's hash tag, so each Lua script touches one
Redis Cluster slot (design invariant 7). The few global keys are indexes the recovery
sweeper scans; the authoritative state is always in the thread's own keys.
"""

from __future__ import annotations

__all__ = ["ThreadKeys", "hash_tag", "BARRIERS", "LEASES", "RUNS", "WORKERS"]

PREFIX = "rgw"  # the saver uses "rg"; the same hash tag keeps both in one slot
LEASES = f"{PREFIX}:leases"
"""Global sorted set: running/queued task -> lease deadline (ms), for the sweeper."""
BARRIERS = f"{PREFIX}:barriers"
"""Global sorted set: step in its barrier -> barrier deadline (ms), for the sweeper."""
RUNS = f"{PREFIX}:runs"
"""Global sorted set: active run -> time of its last progress (ms), for the sweeper."""
WORKERS = f"{PREFIX}:workers"
"""Global sorted set: worker main process -> liveness deadline (ms); see reservations.py."""


def hash_tag(thread_id: str) -> str:
    """``{tag}``: the same hash tag the RedisSaver gives the thread's checkpoint keys, so
    coordination keys and checkpoints of one thread live in one cluster slot."""
    from relaygraph.persistence.redis import thread_tag

    return "{" + thread_tag(thread_id) + "}"


class ThreadKeys:
    """The keys of one thread."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self.base = f"{PREFIX}:{hash_tag(thread_id)}"

    def step(self, checkpoint_ns: str, checkpoint_id: str, run_id: str) -> str:
        """Hash of one run's superstep: its tasks' status, epoch, attempts, lease deadline."""
        return f"{self.base}:step:{checkpoint_ns}:{checkpoint_id}:{run_id}"

    @property
    def active(self) -> str:
        """The id of the thread's active run."""
        return f"{self.base}:active"

    @property
    def queue(self) -> str:
        """Runs waiting for the active one (multitask strategy ``enqueue``)."""
        return f"{self.base}:queue"

    @property
    def runs(self) -> str:
        """Sorted set of the thread's runs: score +inf while unfinished, else the finish time
        (ms); finished ones leave it after the run TTL. What ``Client.delete`` removes."""
        return f"{self.base}:runs"

    def run(self, run_id: str) -> str:
        """Hash of a run: status, graph, input, config, error."""
        return f"{self.base}:run:{run_id}"

    def events(self, run_id: str) -> str:
        """Stream of a run's events."""
        return f"{self.base}:events:{run_id}"

    def event_keys(self, run_id: str) -> str:
        """Set of the event keys already written to a run's stream."""
        return f"{self.base}:evkeys:{run_id}"
