"""InMemoryStore: the memory store in a dict, with filters, TTL and semantic search.

Suited to development, tests and single-process agents; everything is lost when the
process exits. It is safe to share between threads (one lock guards the data; embedding
happens outside it) and between sync and async callers.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import itertools
import math
import operator
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from relaygraph.persistence.embeddings import StoreIndex
from relaygraph.persistence.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    namespace_matches,
    validate_op,
)
from relaygraph.persistence.store.filters import compile_filter

__all__ = ["InMemoryStore"]

Namespace = tuple[str, ...]


@dataclass(slots=True)
class _Record:
    """One stored item plus what search and expiry need."""

    item: Item
    vectors: list[list[float]]  # unit length, one per embedded text
    ttl_minutes: float | None
    expires_at: float | None  # on the store's clock; None = never
    seq: int  # write order: the recency ranking, exact even within one clock tick


@dataclass(slots=True)
class _Prepared:
    """What a batch computed before taking the lock: texts' vectors and queries' vectors."""

    put_vectors: dict[int, list[list[float]]]
    query_vectors: dict[str, list[float]]


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else list(vector)


def _dot(a: list[float], b: list[float]) -> float:
    return sum(map(operator.mul, a, b))


def _check_ttl_config(ttl: Mapping[str, Any] | None) -> TTLConfig | None:
    if ttl is None:
        return None
    if not isinstance(ttl, Mapping):
        raise TypeError(f"ttl must be a dict (a TTLConfig), got {ttl!r}")
    known = {"default_ttl", "refresh_on_read", "sweep_interval_minutes", "omit_expired"}
    unknown = set(ttl) - known
    if unknown:
        raise ValueError(f"unknown ttl config keys {sorted(unknown)}; expected {sorted(known)}")
    for name in ("default_ttl", "sweep_interval_minutes"):
        minutes = ttl.get(name)
        if minutes is not None and (
            isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0
        ):
            raise ValueError(f"ttl config {name!r} must be a positive number of minutes or None")
    if not isinstance(ttl.get("refresh_on_read", True), bool):
        raise ValueError("ttl config 'refresh_on_read' must be true or false")
    return TTLConfig(**ttl)  # type: ignore[typeddict-item]


class InMemoryStore(BaseStore):
    """A dict-backed :class:`BaseStore` with optional semantic search and TTL.

    ``index={"embed": ..., "dims": int, "fields": [...]}`` enables ranking ``search`` by
    cosine similarity to a ``query`` (an item's score is its best-matching embedded text).
    ``ttl={"default_ttl": minutes, "refresh_on_read": bool, "sweep_interval_minutes": m}``
    sets expiry: expired items are invisible at once and removed lazily, or by a
    background sweeper when ``sweep_interval_minutes`` is set (or
    :meth:`start_ttl_sweeper` is called). ``clock`` (monotonic seconds) is for tests.
    """

    supports_ttl = True

    def __init__(
        self,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index: StoreIndex | None = StoreIndex(index) if index else None
        self.index_config: IndexConfig | None = dict(index) if index else None  # type: ignore[assignment]
        # LangGraph's InMemoryStore exposes its embedder under this name.
        self.embeddings = self.index.embeddings if self.index else None
        self.ttl_config = _check_ttl_config(ttl)
        self._clock = clock
        self._data: dict[Namespace, dict[str, _Record]] = {}
        self._lock = threading.RLock()
        self._seq = itertools.count()
        self._sweeper: threading.Thread | None = None
        self._sweeper_stop: threading.Event | None = None
        if self.ttl_config and self.ttl_config.get("sweep_interval_minutes"):
            self.start_ttl_sweeper()

    # -- the primitive -----------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order (a read sees an earlier put of the same batch)."""
        ops = self._validated(ops)
        prepared = _Prepared(put_vectors={}, query_vectors={})
        if self.index is not None:
            puts = self._texts_to_embed(ops)
            texts = [text for _, batch_texts in puts for text in batch_texts]
            vectors = self.index.embed_documents(texts)
            prepared.put_vectors = self._split_vectors(puts, vectors)
            for query in self._queries(ops):
                prepared.query_vectors[query] = _unit(self.index.embed_query(query))
        return self._apply(ops, prepared)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async twin of :meth:`batch` (embeddings use the embedder's async methods)."""
        ops = self._validated(ops)
        prepared = _Prepared(put_vectors={}, query_vectors={})
        if self.index is not None:
            index = self.index
            puts = self._texts_to_embed(ops)
            texts = [text for _, batch_texts in puts for text in batch_texts]
            queries = self._queries(ops)
            vectors, *query_vectors = await asyncio.gather(
                index.aembed_documents(texts), *(index.aembed_query(q) for q in queries)
            )
            prepared.put_vectors = self._split_vectors(puts, vectors)
            prepared.query_vectors = {
                q: _unit(v) for q, v in zip(queries, query_vectors, strict=True)
            }
        return self._apply(ops, prepared)

    # -- preparation (outside the lock) ------------------------------------------------

    @staticmethod
    def _validated(ops: Iterable[Op]) -> list[Op]:
        ops = list(ops)
        for op in ops:  # all or nothing: a bad op fails the batch before any write
            validate_op(op)
        return ops

    def _texts_to_embed(self, ops: list[Op]) -> list[tuple[int, list[str]]]:
        assert self.index is not None
        puts = []
        for position, op in enumerate(ops):
            if isinstance(op, PutOp) and op.value is not None:
                texts = [text for _, text in self.index.texts_for(op.value, op.index)]
                if texts:
                    puts.append((position, texts))
        return puts

    @staticmethod
    def _split_vectors(
        puts: list[tuple[int, list[str]]], vectors: list[list[float]]
    ) -> dict[int, list[list[float]]]:
        result, start = {}, 0
        for position, texts in puts:
            result[position] = [_unit(v) for v in vectors[start : start + len(texts)]]
            start += len(texts)
        return result

    @staticmethod
    def _queries(ops: list[Op]) -> list[str]:
        return list(dict.fromkeys(op.query for op in ops if isinstance(op, SearchOp) and op.query))

    # -- application (under the lock) --------------------------------------------------

    def _apply(self, ops: list[Op], prepared: _Prepared) -> list[Result]:
        results: list[Result] = []
        with self._lock:
            now = self._clock()
            for position, op in enumerate(ops):
                if isinstance(op, PutOp):
                    self._put(op, prepared.put_vectors.get(position, []), now)
                    results.append(None)
                elif isinstance(op, GetOp):
                    results.append(self._get(op, now))
                elif isinstance(op, SearchOp):
                    query_vector = prepared.query_vectors.get(op.query) if op.query else None
                    results.append(self._search(op, query_vector, now))
                else:
                    assert isinstance(op, ListNamespacesOp)
                    results.append(self._list_namespaces(op, now))
        return results

    @staticmethod
    def _expired(record: _Record, now: float) -> bool:
        return record.expires_at is not None and record.expires_at <= now

    def _refresh(self, record: _Record, now: float) -> None:
        if record.ttl_minutes is not None:
            record.expires_at = now + record.ttl_minutes * 60

    def _drop(self, namespace: Namespace, key: str) -> None:
        records = self._data.get(namespace)
        if records is not None:
            records.pop(key, None)
            if not records:  # an emptied namespace disappears from list_namespaces
                del self._data[namespace]

    def _put(self, op: PutOp, vectors: list[list[float]], now: float) -> None:
        if op.value is None:
            self._drop(op.namespace, op.key)
            return
        timestamp = datetime.now(UTC)
        old = self._data.get(op.namespace, {}).get(op.key)
        created_at = old.item.created_at if old and not self._expired(old, now) else timestamp
        item = Item(
            value=copy.deepcopy(dict(op.value)),
            key=op.key,
            namespace=op.namespace,
            created_at=created_at,
            updated_at=timestamp,
        )
        ttl = op.ttl
        self._data.setdefault(op.namespace, {})[op.key] = _Record(
            item=item,
            vectors=vectors,
            ttl_minutes=ttl,
            expires_at=None if ttl is None else now + ttl * 60,
            seq=next(self._seq),
        )

    def _live(self, namespace: Namespace, key: str, now: float) -> _Record | None:
        record = self._data.get(namespace, {}).get(key)
        if record is not None and self._expired(record, now):
            self._drop(namespace, key)
            return None
        return record

    def _get(self, op: GetOp, now: float) -> Item | None:
        record = self._live(op.namespace, op.key, now)
        if record is None:
            return None
        if op.refresh_ttl:
            self._refresh(record, now)
        item = record.item
        return Item(
            value=copy.deepcopy(item.value),
            key=item.key,
            namespace=item.namespace,
            created_at=item.created_at,
            updated_at=item.updated_at,
        )

    def _candidates(self, op: SearchOp, now: float) -> list[_Record]:
        predicate = compile_filter(op.filter)
        prefix, depth = op.namespace_prefix, len(op.namespace_prefix)
        found, expired = [], []
        for namespace, records in self._data.items():
            if namespace[:depth] != prefix:
                continue
            for key, record in records.items():
                if self._expired(record, now):
                    expired.append((namespace, key))
                elif predicate(record.item.value):
                    found.append(record)
        for namespace, key in expired:
            self._drop(namespace, key)
        return found

    def _search(
        self, op: SearchOp, query_vector: list[float] | None, now: float
    ) -> list[SearchItem]:
        candidates = self._candidates(op, now)
        wanted = op.offset + op.limit
        ranked: list[tuple[float | None, _Record]]
        if query_vector is None:
            newest = heapq.nlargest(wanted, candidates, key=lambda r: r.seq)
            ranked = [(None, record) for record in newest]
        else:
            scored = [
                (max(_dot(query_vector, v) for v in record.vectors), record)
                for record in candidates
                if record.vectors
            ]
            best = heapq.nlargest(wanted, scored, key=lambda pair: (pair[0], pair[1].seq))
            ranked = list(best)
            if len(ranked) < wanted:  # items without an embedding follow, newest first
                unscored = [record for record in candidates if not record.vectors]
                missing = wanted - len(ranked)
                ranked += [
                    (None, r) for r in heapq.nlargest(missing, unscored, key=lambda r: r.seq)
                ]
        page = ranked[op.offset : wanted]
        results = []
        for score, record in page:
            if op.refresh_ttl:
                self._refresh(record, now)
            item = record.item
            results.append(
                SearchItem(
                    namespace=item.namespace,
                    key=item.key,
                    value=copy.deepcopy(item.value),
                    created_at=item.created_at,
                    updated_at=item.updated_at,
                    score=None if score is None else float(score),
                )
            )
        return results

    def _list_namespaces(self, op: ListNamespacesOp, now: float) -> list[Namespace]:
        conditions = op.match_conditions or ()
        namespaces = set()
        for namespace in list(self._data):
            if not all(namespace_matches(namespace, c) for c in conditions):
                continue
            records = self._data[namespace]
            if not any(not self._expired(r, now) for r in records.values()):
                for key in list(records):
                    self._drop(namespace, key)
                continue
            namespaces.add(namespace if op.max_depth is None else namespace[: op.max_depth])
        return sorted(namespaces)[op.offset : op.offset + op.limit]

    # -- expiry ------------------------------------------------------------------------

    def sweep_expired(self) -> int:
        """Remove every expired item now; returns how many were removed."""
        with self._lock:
            now = self._clock()
            expired = [
                (namespace, key)
                for namespace, records in self._data.items()
                for key, record in records.items()
                if self._expired(record, now)
            ]
            for namespace, key in expired:
                self._drop(namespace, key)
        return len(expired)

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> None:
        """Start a daemon thread that calls :meth:`sweep_expired` every interval.

        The interval defaults to the ttl config's ``sweep_interval_minutes``. Starting a
        running sweeper does nothing. The thread stops with :meth:`stop_ttl_sweeper`,
        :meth:`close`, or when the store is garbage collected.
        """
        interval = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes")
        if not interval or interval <= 0:
            raise ValueError(
                "the TTL sweeper needs a positive interval: pass sweep_interval_minutes or set "
                "it in the ttl config"
            )
        with self._lock:
            if self._sweeper is not None and self._sweeper.is_alive():
                return
            stop = threading.Event()
            store_ref = weakref.ref(self)

            def sweep_forever() -> None:
                while not stop.wait(interval * 60):
                    store = store_ref()
                    if store is None:
                        return
                    store.sweep_expired()
                    del store  # hold no reference while waiting, so the store can be freed

            thread = threading.Thread(
                target=sweep_forever, name="relaygraph-store-ttl-sweeper", daemon=True
            )
            weakref.finalize(self, stop.set)
            self._sweeper, self._sweeper_stop = thread, stop
            thread.start()

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; True when it has stopped (or never ran)."""
        with self._lock:
            thread, stop = self._sweeper, self._sweeper_stop
            self._sweeper = self._sweeper_stop = None
        if thread is None or stop is None:
            return True
        stop.set()
        thread.join(timeout)
        return not thread.is_alive()

    def close(self) -> None:
        """Stop background work (the sweeper). The data stays readable."""
        self.stop_ttl_sweeper()

    def __enter__(self) -> InMemoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
