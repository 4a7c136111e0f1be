"""Cross-thread memory stores: the interface, the shared filter rules, and backends.

``InMemoryStore`` lives in :mod:`relaygraph.persistence.store.memory`; durable backends
(Redis) live beside it and implement :class:`BaseStore`.
"""

from relaygraph.persistence.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from relaygraph.persistence.store.filters import FilterError
from relaygraph.persistence.store.memory import InMemoryStore

__all__ = [
    "BaseStore",
    "FilterError",
    "GetOp",
    "InMemoryStore",
    "IndexConfig",
    "InvalidNamespaceError",
    "Item",
    "ListNamespacesOp",
    "MatchCondition",
    "Op",
    "PutOp",
    "Result",
    "SearchItem",
    "SearchOp",
    "TTLConfig",
]
