"""Pure helpers of :class:`~relaygraph.persistence.store.redis.RedisStore` (no I/O).

How an item is laid out in Redis, and how a search becomes a RediSearch query:

* One JSON document per item, at ``<name>:item:<digest of (namespace, key)>``, so a put
  overwrites in place and a key never collides with another namespace's.
* No user string ever reaches a query. Namespaces and filter values are indexed as TAGs
  whose values are hex digests: every prefix of the namespace (``pfx``), every suffix
  (``sfx``), and for the value, one "exists" tag per path and one "equals" tag per
  (path, JSON value) (``ftag``). A query only ever holds ``@field:{<hex>}`` clauses, so
  quotes, braces, pipes, backslashes, spaces or unicode in a namespace or value cannot
  widen it, and ``("users", "bob")`` never matches ``("users", "bobby")``.
* A value filter is compiled into those tags where RediSearch can answer it exactly
  (``$eq $ne $in $nin $exists``, including nested lists and dicts). The compiled query is
  always a *necessary* condition (it never drops a match); when it is not also
  sufficient (ordering operators, long strings) the store re-checks every candidate
  with :func:`~relaygraph.persistence.store.filters.matches` and pages on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from relaygraph.persistence.store.base import MatchCondition
from relaygraph.persistence.store.filters import normalize_filter, split_path

__all__ = [
    "DOC_FORMAT",
    "FALSE",
    "TRUE",
    "And",
    "Expr",
    "Not",
    "Or",
    "Row",
    "Tag",
    "as_text",
    "build_document",
    "check_storable",
    "compile_value_filter",
    "conj",
    "index_schema",
    "item_digest",
    "match_conditions_expr",
    "namespace_prefix_expr",
    "parse_aggregate_rows",
    "parse_get_reply",
    "parse_search_reply",
    "prefer_batches",
    "render",
    "value_tags",
]

DOC_FORMAT = 1
"""Version of the document layout; part of the index fingerprint (a change migrates)."""

# Longer strings get no "equals" tag (they are rarely filtered on by equality, and each
# distinct value costs an entry in the tag index); a filter on one is re-checked.
MAX_TAGGED_STRING = 256

# The fields a search or get brings back (vectors and tags stay on the server).
RETURN_PATHS = ("ns", "key", "value", "created_at", "updated_at", "seq", "ttl_ms")
# A search returns them as one JSONPath union (one JSON array per document, in this
# order): RediSearch evaluates and the client parses one path instead of seven. The alias
# differs from the index's field names, since for a SORTABLE field RediSearch returns its
# sort value instead of the JSON path's text.
RETURN_UNION = "$[" + ",".join(f"'{name}'" for name in RETURN_PATHS) + "]"
RETURN_ALIAS = "r_item"


# -- digests -------------------------------------------------------------------------------


def _digest(kind: str, payload: Any) -> str:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return hashlib.blake2b(
        kind.encode() + b"\x00" + data.encode("utf-8", "surrogatepass"), digest_size=16
    ).hexdigest()


def item_digest(namespace: Sequence[str], key: str) -> str:
    """The id part of an item's Redis key."""
    return _digest("item", [list(namespace), key])


def prefix_tag(labels: Sequence[str]) -> str:
    """The tag of a namespace prefix (also used for the namespace itself)."""
    return _prefix_tag(tuple(labels))


@functools.lru_cache(maxsize=4096)
def _prefix_tag(labels: tuple[str, ...]) -> str:
    # Every search and put digests its namespace's prefixes; the same few recur.
    return _digest("p", list(labels))


def suffix_tag(labels: Sequence[str]) -> str:
    """The tag of a namespace suffix."""
    return _digest("s", list(labels))


def _exists_tag(path: Sequence[str]) -> str:
    return _digest("x", list(path))


def _equals_tag(path: Sequence[str], canonical: Any) -> str:
    return _digest("e", [list(path), canonical])


MAX_DEPTH = 100
"""Deepest nesting of a value (the value itself is level 1); RedisJSON stops near 128."""

_INT_RANGE = (-(2**63), 2**64 - 1)  # what RedisJSON keeps exactly; beyond, it rounds


def check_storable(value: Any) -> None:
    """Raise ValueError when RedisJSON would refuse or silently change ``value``: nesting
    deeper than :data:`MAX_DEPTH`, integers outside 64 bits, strings that are not UTF-8
    (lone surrogates)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping | list | tuple):
            if depth > MAX_DEPTH:
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            children = node.items() if isinstance(node, Mapping) else enumerate(node)
            for key, child in children:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(node, int) and not isinstance(node, bool):
            if not _INT_RANGE[0] <= node <= _INT_RANGE[1]:
                raise ValueError(f"integer {node} does not fit in 64 bits")
        elif isinstance(node, str):
            _check_text(node)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"string {text[:40]!r} is not valid UTF-8 ({error.reason})") from None


def _canonical_scalar(value: Any) -> Any:
    """A JSON-equality key for a scalar, or None when it gets no tag.

    Booleans are not numbers, ``1 == 1.0``: mirrors ``filters.json_equal``.
    """
    if value is None:
        return ["null"]
    if isinstance(value, bool):
        return ["bool", value]
    # Subclasses (IntEnum, StrEnum) are stored as their plain value: key on that too.
    if isinstance(value, int):
        return ["num", int.__repr__(value)]
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return ["num", str(int(value)) if value.is_integer() else float.__repr__(value)]
    if isinstance(value, str):
        return ["str", str.__str__(value)] if len(value) <= MAX_TAGGED_STRING else None
    return None


# -- documents -----------------------------------------------------------------------------


def value_tags(value: Mapping[str, Any]) -> list[str]:
    """Every "exists" and "equals" tag of a value (paths as lists of segments)."""
    tags: list[str] = []

    def walk(node: Any, path: list[str]) -> None:
        tags.append(_exists_tag(path))
        if isinstance(node, Mapping):
            tags.append(_equals_tag(path, ["dict", len(node)]))
            for key, child in node.items():
                walk(child, [*path, str(key)])
        elif isinstance(node, list | tuple):
            tags.append(_equals_tag(path, ["list", len(node)]))
            for position, child in enumerate(node):
                walk(child, [*path, str(position)])
        else:
            canonical = _canonical_scalar(node)
            if canonical is not None:
                tags.append(_equals_tag(path, canonical))

    for key, child in value.items():
        walk(child, [key])
    return list(dict.fromkeys(tags))


def build_document(
    namespace: Sequence[str],
    key: str,
    value: Mapping[str, Any],
    vectors: Sequence[Sequence[float]],
    ttl_ms: int,
    embedded_fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The JSON document of an item, without the fields the put script adds
    (``created_at``, ``updated_at`` and ``seq``).

    ``embedded_fields`` records the put's field choice (None: the index config's, []:
    none) so a migration can re-embed the same texts.
    """
    labels = list(namespace)
    doc: dict[str, Any] = {
        "v": DOC_FORMAT,
        "ns": labels,
        "key": key,
        "value": value,
        "depth": len(labels),
        "pfx": [prefix_tag(labels[:n]) for n in range(1, len(labels) + 1)],
        "sfx": [suffix_tag(labels[-n:]) for n in range(1, len(labels) + 1)],
        "ftag": value_tags(value),
        "nvec": len(vectors),
        "ttl_ms": ttl_ms,
        "vfields": None if embedded_fields is None else list(embedded_fields),
    }
    if vectors:
        doc["vec"] = [[float(x) for x in vector] for vector in vectors]
    return doc


def index_schema(
    name: str, prefix: str, dims: int | None, hnsw: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The RedisVL schema dict of the store's index (a vector field only with ``dims``)."""
    fields: list[dict[str, Any]] = [
        {"name": tag, "type": "tag", "path": f"$.{tag}[*]", "attrs": {"case_sensitive": True}}
        for tag in ("pfx", "sfx", "ftag")
    ]
    fields += [
        {"name": "depth", "type": "numeric", "path": "$.depth"},
        {"name": "nvec", "type": "numeric", "path": "$.nvec"},
        {"name": "created_at", "type": "numeric", "path": "$.created_at"},
        {"name": "updated_at", "type": "numeric", "path": "$.updated_at"},
        {"name": "seq", "type": "numeric", "path": "$.seq", "attrs": {"sortable": True}},
    ]
    if dims is not None:
        attrs = {
            "algorithm": "hnsw",
            "dims": dims,
            "distance_metric": "cosine",
            "datatype": "float32",
            "m": 16,
            "ef_construction": 200,
            "ef_runtime": 100,
            **(hnsw or {}),
        }
        fields.append({"name": "vec", "type": "vector", "path": "$.vec[*]", "attrs": attrs})
    return {
        "index": {"name": name, "prefix": prefix, "storage_type": "json"},
        "fields": fields,
    }


# -- query expressions ---------------------------------------------------------------------


class Expr:
    """A boolean query over tags; rendered to RediSearch syntax by :func:`render`."""


@dataclass(frozen=True)
class _Const(Expr):
    value: bool


TRUE = _Const(True)
FALSE = _Const(False)


@dataclass(frozen=True)
class Tag(Expr):
    """``@field:{tag}``: the document carries this tag (a hex digest, never user text)."""

    field: str
    tag: str


@dataclass(frozen=True)
class Raw(Expr):
    """A fixed clause written by this module (numeric ranges)."""

    text: str


@dataclass(frozen=True)
class And(Expr):
    """All parts hold."""

    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Or(Expr):
    """At least one part holds."""

    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Not(Expr):
    """The part does not hold."""

    part: Expr


def conj(parts: Iterable[Expr]) -> Expr:
    """AND of ``parts``, with TRUE/FALSE folded away."""
    kept: list[Expr] = []
    for part in parts:
        if part == FALSE:
            return FALSE
        if part == TRUE:
            continue
        kept.extend(part.parts if isinstance(part, And) else (part,))
    if not kept:
        return TRUE
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def disj(parts: Iterable[Expr]) -> Expr:
    """OR of ``parts``, with TRUE/FALSE folded away."""
    kept: list[Expr] = []
    for part in parts:
        if part == TRUE:
            return TRUE
        if part == FALSE:
            continue
        kept.extend(part.parts if isinstance(part, Or) else (part,))
    if not kept:
        return FALSE
    return kept[0] if len(kept) == 1 else Or(tuple(dict.fromkeys(kept)))


def neg(part: Expr) -> Expr:
    """NOT ``part``."""
    if isinstance(part, _Const):
        return FALSE if part.value else TRUE
    if isinstance(part, Not):
        return part.part
    return Not(part)


def render(expr: Expr) -> str:
    """RediSearch query text (dialect 2+) for ``expr``; TRUE is ``*``.

    FALSE cannot be rendered: callers answer it without asking Redis.
    """
    if expr == TRUE:
        return "*"
    if expr == FALSE:
        raise ValueError("a query that matches nothing has no RediSearch form")
    return _render(expr)


def _render(expr: Expr) -> str:
    if isinstance(expr, Tag):
        return f"@{expr.field}:{{{expr.tag}}}"
    if isinstance(expr, Raw):
        return expr.text
    if isinstance(expr, Not):
        return f"-{_render(expr.part)}"
    if isinstance(expr, And):
        return "(" + " ".join(_render(p) for p in expr.parts) + ")"
    if isinstance(expr, Or):
        tags = [p for p in expr.parts if isinstance(p, Tag)]
        if len(tags) == len(expr.parts) and len({t.field for t in tags}) == 1:
            return f"@{tags[0].field}:{{" + " | ".join(t.tag for t in tags) + "}"
        return "(" + " | ".join(_render(p) for p in expr.parts) + ")"
    raise TypeError(f"not a query expression: {expr!r}")


# -- namespaces ----------------------------------------------------------------------------


def namespace_prefix_expr(prefix: Sequence[str]) -> Expr:
    """Items whose namespace starts with ``prefix`` (exactly, label by label)."""
    return Tag("pfx", prefix_tag(prefix)) if prefix else TRUE


def match_conditions_expr(conditions: Iterable[MatchCondition]) -> tuple[Expr, bool]:
    """A necessary condition for ``list_namespaces`` match conditions, and whether it is
    also sufficient (it is unless a pattern holds the ``"*"`` wildcard)."""
    parts: list[Expr] = []
    exact = True
    for condition in conditions:
        path = list(condition.path)
        if not path:
            continue
        if "*" in path:
            exact = False
        if condition.match_type == "prefix":
            run = path[: path.index("*")] if "*" in path else path
            if run:
                parts.append(Tag("pfx", prefix_tag(run)))
        else:
            run = path[len(path) - path[::-1].index("*") :] if "*" in path else path
            if run:
                parts.append(Tag("sfx", suffix_tag(run)))
        if len(path) > len(run):
            parts.append(Raw(f"@depth:[{len(path)} +inf]"))
    return conj(parts), exact


# -- value filters -------------------------------------------------------------------------


def _canonical_path(path: str) -> list[str] | None:
    """Segments of a filter path, or None when a segment could index a list under a
    different spelling than the stored one (``"01"``, non-ASCII digits)."""
    segments = split_path(path)
    for segment in segments:
        if segment.isdigit() and not (segment.isascii() and str(int(segment)) == segment):
            return None
    return segments


def _equals(path: list[str], operand: Any) -> tuple[Expr, bool]:
    """(necessary condition, exact) for "the value at ``path`` JSON-equals ``operand``"."""
    if isinstance(operand, Mapping):
        if not all(isinstance(k, str) for k in operand):
            return Tag("ftag", _exists_tag(path)), False
        parts = [Tag("ftag", _equals_tag(path, ["dict", len(operand)]))]
        exact = True
        for key, child in operand.items():
            expr, child_exact = _equals([*path, key], child)
            parts.append(expr)
            exact = exact and child_exact
        return conj(parts), exact
    if isinstance(operand, list | tuple):
        parts = [Tag("ftag", _equals_tag(path, ["list", len(operand)]))]
        exact = True
        for position, child in enumerate(operand):
            expr, child_exact = _equals([*path, str(position)], child)
            parts.append(expr)
            exact = exact and child_exact
        return conj(parts), exact
    canonical = _canonical_scalar(operand)
    if canonical is None:
        return Tag("ftag", _exists_tag(path)), False
    return Tag("ftag", _equals_tag(path, canonical)), True


def _eq_or_missing(path: list[str], operand: Any) -> tuple[Expr, bool]:
    """``$eq`` as the filter rules define it: ``None`` also matches a missing field."""
    expr, exact = _equals(path, operand)
    if operand is None:
        return disj([expr, neg(Tag("ftag", _exists_tag(path)))]), exact
    return expr, exact


def _condition(path_text: str, operator: str, operand: Any) -> tuple[Expr, bool]:
    path = _canonical_path(path_text)
    if path is None:
        return TRUE, False
    exists = Tag("ftag", _exists_tag(path))
    if operator == "$exists":
        return (exists if operand else neg(exists)), True
    if operator == "$eq":
        return _eq_or_missing(path, operand)
    if operator in ("$in", "$nin"):
        choices = [_eq_or_missing(path, candidate) for candidate in operand]
        expr = disj(e for e, _ in choices)
        exact = all(x for _, x in choices)
        if operator == "$in":
            return expr, exact
        return (neg(expr), True) if exact else (TRUE, False)
    if operator == "$ne":
        expr, exact = _eq_or_missing(path, operand)
        return (neg(expr), True) if exact else (TRUE, False)
    # $gt $gte $lt $lte: only present values can match; the rest is checked client-side.
    return exists, False


def compile_value_filter(filter: Mapping[str, Any] | None) -> tuple[Expr, bool]:
    """A necessary query condition for ``filter`` and whether it is exact.

    Raises :class:`~relaygraph.persistence.store.filters.FilterError` for a malformed
    filter.
    """
    parts: list[Expr] = []
    exact = True
    for path, operator, operand in normalize_filter(filter):
        expr, part_exact = _condition(path, operator, operand)
        parts.append(expr)
        exact = exact and part_exact
    return conj(parts), exact


# -- replies -------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One item as read back from Redis."""

    redis_key: str
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    seq: int
    ttl_ms: int
    distance: float | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- the search plan -----------------------------------------------------------------------

#: The cost model of :func:`prefer_batches`, in units of one document scanned.
_BATCHES_BASE = 200
_BATCHES_STEP = 170


def prefer_batches(subset: int, total: int, k: int) -> bool:
    """Whether a KNN of ``k`` over the ``subset`` of ``total`` items that a filter lets
    through should force RediSearch's BATCHES plan instead of leaving the choice to it.

    RediSearch chooses between scanning every filtered document (ad hoc brute force) and
    walking the HNSW graph in batches with a decision tree tuned on HASH documents. Under
    30,000 items (under 300,000 for k > 12) it scans even when the filter lets everything
    through; on this store's JSON documents a scan parses each document's vectors from
    JSON, so scanning 10,000 items takes ~8 ms where batches take ~1 ms, and 100,000 ~70 ms.
    Measured on 384-dim documents: a scan costs ~1 unit per filtered document, batches
    ~200 + 170 * sqrt(k * total / subset) units (more candidates per batch the rarer the
    filter's items). Batches are forced only when clearly cheaper; otherwise RediSearch
    keeps its own choice (a scan is right for a small namespace).
    """
    if subset <= 0 or total <= 0 or k <= 0:
        return False
    subset = min(subset, total)
    return subset > _BATCHES_BASE + _BATCHES_STEP * math.sqrt(k * total / subset)


def micros_to_datetime(micros: int) -> datetime:
    """A UTC datetime from microseconds since the epoch (exact, no float rounding)."""
    return _EPOCH + timedelta(microseconds=int(micros))


def as_text(raw: Any) -> str:
    """A reply value as text (replies are bytes unless the client decodes them)."""
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


_ALIAS_BYTES = RETURN_ALIAS.encode()


def _row(redis_key: str, union: Any, distance: Any = None) -> Row | None:
    """A Row from a search result's union of :data:`RETURN_PATHS` (one JSON array), or
    None when the document vanished mid-query (expired) or is not one of ours."""
    try:
        found = json.loads(union)  # bytes or str
    except (TypeError, ValueError):
        return None
    return _row_of(redis_key, found, distance)


def _row_of(redis_key: str, found: Any, distance: Any = None) -> Row | None:
    """A Row from the values of :data:`RETURN_PATHS`, in order; None if they do not fit."""
    if not isinstance(found, list) or len(found) != len(RETURN_PATHS):
        return None  # a member missing: the union cannot be matched to the names
    ns, key, value, created_at, updated_at, seq, ttl_ms = found
    try:
        return Row(
            redis_key=redis_key,
            namespace=tuple(ns),
            key=key,
            value=value,
            created_at=micros_to_datetime(created_at),
            updated_at=micros_to_datetime(updated_at),
            seq=int(seq),
            ttl_ms=int(ttl_ms),
            distance=None if distance is None else float(distance),
        )
    except (TypeError, ValueError):
        return None


def parse_search_reply(reply: Any) -> tuple[list[Row], int]:
    """Rows and the number of documents the FT.SEARCH reply returned (RESP2 or RESP3).

    The count includes documents dropped because they expired while the query ran, so a
    caller paging through results knows whether the server had more.
    """
    rows: list[Row] = []
    if isinstance(reply, Mapping):  # RESP3
        results = reply.get(b"results", reply.get("results", []))
        for result in results:
            get = result.get
            attrs = get(b"extra_attributes", get("extra_attributes")) or {}
            attrs = {as_text(k): v for k, v in attrs.items()}
            row = _row(
                as_text(get(b"id", get("id"))),
                attrs.get(RETURN_ALIAS),
                attrs.get("vector_distance"),
            )
            if row is not None:
                rows.append(row)
        return rows, len(results)
    count = 0
    for position in range(1, len(reply) - 1, 2):
        count += 1
        flat = reply[position + 1] or []
        attrs = dict(zip(flat[::2], flat[1::2], strict=False))  # names stay bytes: no decoding
        union = attrs.get(_ALIAS_BYTES, attrs.get(RETURN_ALIAS))
        distance = attrs.get(b"vector_distance", attrs.get("vector_distance"))
        row = _row(as_text(reply[position]), union, distance)
        if row is not None:
            rows.append(row)
    return rows, count


def parse_get_reply(redis_key: str, reply: Any) -> Row | None:
    """A Row from the get script's reply: ``JSON.GET key $.ns $.key ...`` text, or nil."""
    if reply is None:
        return None
    by_path = json.loads(as_text(reply))
    try:
        found = [by_path[f"$.{name}"][0] for name in RETURN_PATHS]
    except (KeyError, IndexError, TypeError):
        return None
    return _row_of(redis_key, found)


def parse_aggregate_rows(reply: Any) -> tuple[list[tuple[str, ...]], int]:
    """Namespaces and the cursor id of an ``FT.AGGREGATE ... WITHCURSOR`` (or
    ``FT.CURSOR READ``) reply grouped by ``@ns`` (RESP2 or RESP3)."""
    body, cursor = reply[0], int(reply[1])
    namespaces: list[tuple[str, ...]] = []
    if isinstance(body, Mapping):  # RESP3
        results = body.get(b"results", body.get("results", []))
        rows = []
        for result in results:
            attrs = result.get(b"extra_attributes", result.get("extra_attributes")) or {}
            rows.append({as_text(k): v for k, v in attrs.items()})
    else:
        rows = []
        for flat in body[1:]:
            rows.append({as_text(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)})
    for row in rows:
        raw = row.get("ns")
        if raw is None:
            continue
        labels = json.loads(as_text(raw))
        if labels and isinstance(labels[0], list):  # dialect 3 wraps the match in an array
            labels = labels[0]
        namespaces.append(tuple(labels))
    return namespaces, cursor


def info_field(reply: Any, name: str) -> Any:
    """A top-level number of an ``FT.INFO`` reply (RESP2 list or RESP3 map), or 0."""
    if isinstance(reply, Mapping):
        pairs = list(reply.items())
    else:
        pairs = list(zip(reply[::2], reply[1::2], strict=False))
    for key, value in pairs:
        if as_text(key) == name:
            try:
                return float(as_text(value))
            except ValueError:
                return 0
    return 0
