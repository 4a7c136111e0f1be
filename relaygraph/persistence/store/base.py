"""The memory store interface every store backend implements (LangGraph ``BaseStore`` shaped).

A store keeps JSON-like dict values under ``(namespace, key)``, where a namespace is a
tuple of strings such as ``("users", "alice")``. It spans threads: it is the agent's
long-term memory, where a checkpointer is one conversation's state.

Backends implement one primitive, :meth:`BaseStore.batch` (and :meth:`BaseStore.abatch`),
executing a sequence of operations (:class:`GetOp`, :class:`PutOp`, :class:`SearchOp`,
:class:`ListNamespacesOp`) *in order*: a read sees a put that came earlier in the same
batch. The convenience methods (``get``, ``put``, ``delete``, ``search``,
``list_namespaces`` and their ``a``-prefixed async twins) validate their arguments and
build those operations.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypedDict

from relaygraph.persistence.errors import RelaygraphError
from relaygraph.persistence.store.filters import validate_filter

__all__ = [
    "NOT_PROVIDED",
    "BaseStore",
    "GetOp",
    "IndexConfig",
    "InvalidNamespaceError",
    "Item",
    "ListNamespacesOp",
    "MatchCondition",
    "NamespacePath",
    "Op",
    "PutOp",
    "Result",
    "SearchItem",
    "SearchOp",
    "TTLConfig",
    "namespace_matches",
    "resolve_refresh",
    "resolve_ttl",
    "validate_namespace",
    "validate_namespace_labels",
    "validate_op",
    "validate_value",
]


class _NotProvided:
    """Sentinel for "argument not given" where None is a meaningful value (``ttl=None``)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_PROVIDED"


NOT_PROVIDED: Any = _NotProvided()


class InvalidNamespaceError(RelaygraphError, ValueError):
    """A namespace (or namespace prefix/suffix) is not a tuple of valid labels."""


# -- items ---------------------------------------------------------------------------------


class Item:
    """A stored value with its address and timestamps.

    ``created_at`` is when the key was first written in its namespace (kept on overwrite);
    ``updated_at`` is the last write. Both are timezone-aware UTC datetimes (ISO strings
    are accepted and parsed, so an item can be rebuilt from its :meth:`dict`).
    """

    __slots__ = ("created_at", "key", "namespace", "updated_at", "value")

    def __init__(
        self,
        *,
        value: dict[str, Any],
        key: str,
        namespace: tuple[str, ...],
        created_at: datetime | str,
        updated_at: datetime | str,
    ) -> None:
        self.value = value
        self.key = key
        self.namespace = tuple(namespace)
        self.created_at = _as_datetime(created_at)
        self.updated_at = _as_datetime(updated_at)

    def dict(self) -> dict[str, Any]:
        """A JSON-friendly view: namespace as a list, timestamps as ISO strings."""
        return {
            "namespace": list(self.namespace),
            "key": self.key,
            "value": self.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def _fields(self) -> tuple[Any, ...]:
        return (self.namespace, self.key, self.value, self.created_at, self.updated_at)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Item):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.namespace, self.key))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.dict().items())
        return f"{type(self).__name__}({fields})"


class SearchItem(Item):
    """An item returned by :meth:`BaseStore.search`, with its similarity ``score``.

    ``score`` is the cosine similarity to the query when the search was ranked by one,
    and None otherwise (and for items that have no embedding).
    """

    __slots__ = ("score",)

    def __init__(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created_at: datetime | str,
        updated_at: datetime | str,
        score: float | None = None,
    ) -> None:
        super().__init__(
            value=value,
            key=key,
            namespace=namespace,
            created_at=created_at,
            updated_at=updated_at,
        )
        self.score = score

    def dict(self) -> dict[str, Any]:
        """Like :meth:`Item.dict`, plus ``score``."""
        return {**super().dict(), "score": self.score}

    def _fields(self) -> tuple[Any, ...]:
        return (*super()._fields(), self.score)


def _as_datetime(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# -- operations ----------------------------------------------------------------------------


class GetOp(NamedTuple):
    """Read one item; ``refresh_ttl`` restarts its expiry timer when it has a TTL."""

    namespace: tuple[str, ...]
    key: str
    refresh_ttl: bool = True


class PutOp(NamedTuple):
    """Write one item, or delete it when ``value`` is None.

    ``index``: None embeds the fields of the store's index config, False embeds nothing,
    a list of paths embeds those instead. ``ttl`` is in minutes (None: never expires).
    """

    namespace: tuple[str, ...]
    key: str
    value: Mapping[str, Any] | None
    index: Literal[False] | list[str] | None = None
    ttl: float | None = None


class SearchOp(NamedTuple):
    """Search the items under ``namespace_prefix`` (filter first, then rank, then page)."""

    namespace_prefix: tuple[str, ...]
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    query: str | None = None
    refresh_ttl: bool = True


NamespacePath = tuple[str, ...]
"""A namespace pattern for :class:`MatchCondition`; the label ``"*"`` matches any label."""


class MatchCondition(NamedTuple):
    """Keep namespaces whose first (``prefix``) or last (``suffix``) labels match ``path``."""

    match_type: Literal["prefix", "suffix"]
    path: NamespacePath


class ListNamespacesOp(NamedTuple):
    """List the namespaces that hold items, sorted, optionally truncated to ``max_depth``."""

    match_conditions: tuple[MatchCondition, ...] | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


Op = GetOp | PutOp | SearchOp | ListNamespacesOp
Result = Item | list[Item] | list[SearchItem] | list[tuple[str, ...]] | None


# -- configuration -------------------------------------------------------------------------


class IndexConfig(TypedDict, total=False):
    """Semantic search configuration of a store.

    ``embed``: a callable on a list of texts (sync or async), an object with
    ``embed_documents``/``embed_query``, a RedisVL vectorizer, or the string ``"default"``
    (the offline all-MiniLM-L6-v2 model). ``dims``: the vector length. ``fields``: paths
    of the value to embed (``"$"``, the default, is the whole value).
    """

    embed: Any
    dims: int
    fields: list[str] | None


class TTLConfig(TypedDict, total=False):
    """Expiry configuration of a store (all durations in minutes).

    ``default_ttl`` applies to puts that give no ``ttl``; ``refresh_on_read`` (default
    True) makes get/search restart the timer of the items they return;
    ``sweep_interval_minutes`` opts in to a background sweeper where the store has one.
    """

    default_ttl: float | None
    refresh_on_read: bool
    sweep_interval_minutes: float | None


# -- validation ----------------------------------------------------------------------------


def validate_namespace_labels(namespace: Any, what: str = "namespace") -> tuple[str, ...]:
    """Check that ``namespace`` is a tuple of non-empty strings without "." (may be empty).

    Used for prefixes and suffixes too. Returns the namespace; raises
    :class:`InvalidNamespaceError` naming it otherwise.
    """
    if not isinstance(namespace, tuple):
        raise InvalidNamespaceError(
            f"{what} must be a tuple of strings, got {type(namespace).__name__}: {namespace!r}"
        )
    for label in namespace:
        if not isinstance(label, str):
            problem = f"labels must be strings, got {type(label).__name__} {label!r}"
        elif not label:
            problem = "labels must not be empty strings"
        elif "." in label:
            problem = f"labels must not contain '.', got {label!r}"
        elif "\x00" in label:
            problem = f"labels must not contain NUL bytes, got {label!r}"
        else:
            continue
        raise InvalidNamespaceError(f"invalid {what} {namespace!r}: {problem}")
    return namespace


def validate_namespace(namespace: Any) -> tuple[str, ...]:
    """Check a namespace to write to: non-empty, valid labels, root label not "langgraph"."""
    validate_namespace_labels(namespace)
    if not namespace:
        raise InvalidNamespaceError("invalid namespace (): a namespace must not be empty")
    if namespace[0] == "langgraph":
        raise InvalidNamespaceError(
            f"invalid namespace {namespace!r}: the root label 'langgraph' is reserved"
        )
    return namespace


def validate_value(namespace: tuple[str, ...], key: str, value: Any) -> dict[str, Any]:
    """Check that a put's value is a dict with string keys; returns it as a plain dict."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"store values must be dicts: got {type(value).__name__} for key {key!r} in "
            f"namespace {namespace!r}"
        )
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise TypeError(
            f"store values must have string keys: got {bad[0]!r} for key {key!r} in "
            f"namespace {namespace!r}"
        )
    return dict(value)


def _validate_key(key: Any) -> None:
    if not isinstance(key, str):
        raise TypeError(f"store keys must be strings, got {type(key).__name__}: {key!r}")


def _validate_page(limit: Any, offset: Any, what: str) -> None:
    for name, number in (("limit", limit), ("offset", offset)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValueError(f"{what}: {name} must be a non-negative integer, got {number!r}")


def _validate_ttl(ttl: Any) -> None:
    if ttl is None:
        return
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int | float)
        or not ttl > 0
        or (not math.isfinite(ttl))
    ):
        raise ValueError(f"ttl must be a positive number of minutes or None, got {ttl!r}")


def _validate_index_arg(index: Any) -> None:
    if index is None or index is False:
        return
    if not isinstance(index, list | tuple) or not all(isinstance(p, str) for p in index):
        raise TypeError(f"index must be None, False or a list of field paths, got {index!r}")


def validate_op(op: Any) -> None:
    """Validate one operation before a backend runs it (``batch`` may bypass the helpers).

    Raises :class:`InvalidNamespaceError`, ``TypeError`` or ``ValueError`` with a message
    naming the offending namespace, key, value, filter operator or page bound.
    """
    if isinstance(op, PutOp):
        if op.value is None:
            validate_namespace_labels(op.namespace)
        else:
            validate_namespace(op.namespace)
        _validate_key(op.key)
        if op.value is not None:
            validate_value(op.namespace, op.key, op.value)
            _validate_index_arg(op.index)
            _validate_ttl(op.ttl)
    elif isinstance(op, GetOp):
        validate_namespace_labels(op.namespace)
        _validate_key(op.key)
    elif isinstance(op, SearchOp):
        validate_namespace_labels(op.namespace_prefix, "namespace prefix")
        validate_filter(op.filter)
        _validate_page(op.limit, op.offset, "search")
        if op.query is not None and not isinstance(op.query, str):
            raise TypeError(f"search query must be a string, got {type(op.query).__name__}")
    elif isinstance(op, ListNamespacesOp):
        for condition in op.match_conditions or ():
            if condition.match_type not in ("prefix", "suffix"):
                raise ValueError(
                    f"match_type must be 'prefix' or 'suffix', got {condition.match_type!r}"
                )
            validate_namespace_labels(condition.path, condition.match_type)
        if op.max_depth is not None and (
            isinstance(op.max_depth, bool) or not isinstance(op.max_depth, int) or op.max_depth < 1
        ):
            raise ValueError(f"max_depth must be a positive integer, got {op.max_depth!r}")
        _validate_page(op.limit, op.offset, "list_namespaces")
    else:
        raise TypeError(f"unknown store operation: {op!r}")


def namespace_matches(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    """Whether ``namespace`` satisfies ``condition`` ("*" in the pattern matches any label)."""
    path = condition.path
    if len(path) > len(namespace):
        return False
    labels = (
        namespace[: len(path)]
        if condition.match_type == "prefix"
        else (namespace[len(namespace) - len(path) :])
    )
    return all(want in ("*", have) for want, have in zip(path, labels, strict=True))


def resolve_refresh(ttl_config: TTLConfig | None, refresh_ttl: bool | None) -> bool:
    """The effective ``refresh_ttl`` of a read: explicit, else the config's, else True."""
    if refresh_ttl is not None:
        return bool(refresh_ttl)
    return bool((ttl_config or {}).get("refresh_on_read", True))


def resolve_ttl(ttl_config: TTLConfig | None, ttl: Any) -> float | None:
    """The effective ``ttl`` of a put: explicit (None = never), else the config's default."""
    if ttl is NOT_PROVIDED:
        return (ttl_config or {}).get("default_ttl")
    return ttl


# -- the interface -------------------------------------------------------------------------


class BaseStore(ABC):
    """Cross-thread key-value memory with namespaces, filters, TTL and semantic search.

    Subclasses implement :meth:`batch` and :meth:`abatch`; everything else is built on
    them. ``supports_ttl`` says whether ``put(..., ttl=...)`` is honoured.
    """

    supports_ttl: bool = False
    ttl_config: TTLConfig | None = None

    @abstractmethod
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order and return one result per op (None for puts)."""

    @abstractmethod
    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async twin of :meth:`batch`."""

    # -- op builders (shared by the sync and async methods) --

    def _get_op(self, namespace: tuple[str, ...], key: str, refresh_ttl: bool | None) -> GetOp:
        validate_namespace_labels(namespace)
        return GetOp(namespace, str(key), resolve_refresh(self.ttl_config, refresh_ttl))

    def _put_op(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None,
        ttl: Any,
    ) -> PutOp:
        validate_namespace(namespace)
        value = validate_value(namespace, str(key), value)
        if ttl not in (NOT_PROVIDED, None) and not self.supports_ttl:
            raise NotImplementedError(
                f"{type(self).__name__} does not support TTL; pass ttl=None or use a store "
                "that supports expiry"
            )
        ttl = resolve_ttl(self.ttl_config, ttl) if self.supports_ttl else None
        op = PutOp(namespace, str(key), value, index, ttl)
        validate_op(op)
        return op

    def _delete_op(self, namespace: tuple[str, ...], key: str) -> PutOp:
        validate_namespace_labels(namespace)
        return PutOp(namespace, str(key), None)

    def _search_op(
        self,
        namespace_prefix: tuple[str, ...],
        query: str | None,
        filter: dict[str, Any] | None,
        limit: int,
        offset: int,
        refresh_ttl: bool | None,
    ) -> SearchOp:
        op = SearchOp(
            namespace_prefix,
            filter,
            limit,
            offset,
            query,
            resolve_refresh(self.ttl_config, refresh_ttl),
        )
        validate_op(op)
        return op

    @staticmethod
    def _list_op(
        prefix: NamespacePath | None,
        suffix: NamespacePath | None,
        max_depth: int | None,
        limit: int,
        offset: int,
    ) -> ListNamespacesOp:
        conditions = []
        if prefix:
            conditions.append(MatchCondition("prefix", validate_namespace_labels(prefix, "prefix")))
        if suffix:
            conditions.append(MatchCondition("suffix", validate_namespace_labels(suffix, "suffix")))
        op = ListNamespacesOp(tuple(conditions), max_depth, limit, offset)
        validate_op(op)
        return op

    # -- sync API --

    def get(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """The item at ``(namespace, key)``, or None when absent or expired."""
        return self.batch([self._get_op(namespace, key, refresh_ttl)])[0]  # type: ignore[return-value]

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | None = NOT_PROVIDED,
    ) -> None:
        """Create or overwrite the item at ``(namespace, key)`` (``created_at`` is kept).

        ``index``: None embeds the configured fields, False embeds nothing, a list of paths
        embeds those. ``ttl`` in minutes; omitted means the store's ``default_ttl``.
        """
        self.batch([self._put_op(namespace, key, value, index, ttl)])

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        """Delete the item at ``(namespace, key)``; deleting a missing item is a no-op."""
        self.batch([self._delete_op(namespace, key)])

    def search(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Items under ``namespace_prefix`` that match ``filter``, best first.

        With a ``query`` and an index configured, ranked by cosine similarity (items
        without an embedding come last, score None); otherwise most recently updated
        first. ``filter`` is applied before ``offset``/``limit`` (see ``filters.py``).
        """
        op = self._search_op(namespace_prefix, query, filter, limit, offset, refresh_ttl)
        return self.batch([op])[0]  # type: ignore[return-value]

    def list_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """Sorted namespaces holding at least one item, "*" matching any label.

        ``max_depth`` truncates namespaces to that many labels (duplicates removed).
        """
        op = self._list_op(prefix, suffix, max_depth, limit, offset)
        return self.batch([op])[0]  # type: ignore[return-value]

    # -- async API --

    async def aget(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """Async twin of :meth:`get`."""
        return (await self.abatch([self._get_op(namespace, key, refresh_ttl)]))[0]  # type: ignore[return-value]

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | None = NOT_PROVIDED,
    ) -> None:
        """Async twin of :meth:`put`."""
        await self.abatch([self._put_op(namespace, key, value, index, ttl)])

    async def adelete(self, namespace: tuple[str, ...], key: str) -> None:
        """Async twin of :meth:`delete`."""
        await self.abatch([self._delete_op(namespace, key)])

    async def asearch(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Async twin of :meth:`search`."""
        op = self._search_op(namespace_prefix, query, filter, limit, offset, refresh_ttl)
        return (await self.abatch([op]))[0]  # type: ignore[return-value]

    async def alist_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """Async twin of :meth:`list_namespaces`."""
        op = self._list_op(prefix, suffix, max_depth, limit, offset)
        return (await self.abatch([op]))[0]  # type: ignore[return-value]
