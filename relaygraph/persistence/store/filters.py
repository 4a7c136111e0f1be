"""The value filter of ``store.search(filter=...)``: validation and matching.

Every store backend applies the same rules (a backend that pushes part of a filter into
its query engine still re-checks with :func:`matches`), so results never depend on the
backend:

* A filter is a dict of ``{path: condition}``; all entries must hold (AND).
* A path is dotted: ``"a.b.c"`` walks nested dicts; a segment of digits indexes a list.
* A condition is either a dict of operators (every key starts with ``$``; all must
  hold), a dict without operators (a nested filter: ``{"a": {"b": 1}}`` means
  ``{"a.b": 1}``), or any other value, which means ``$eq``.
* Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists``.
* Equality is JSON equality: ``True`` is not ``1``, ``1 == 1.0``, lists and dicts compare
  element by element. ``$eq: None`` also matches a missing field; ``$ne`` and ``$nin``
  match a missing field.
* Ordering operators compare numbers with numbers and strings with strings; a field of
  another type (or a missing one) does not match.
* ``$in``/``$nin`` take a list; ``$exists`` takes a bool.

A malformed filter (unknown operator, wrong operand type, empty path) raises
:class:`FilterError` before anything is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from relaygraph.persistence.errors import RelaygraphError

__all__ = [
    "MISSING",
    "OPERATORS",
    "FilterError",
    "check",
    "compile_filter",
    "json_equal",
    "matches",
    "normalize_filter",
    "split_path",
    "validate_filter",
    "value_at_path",
]

OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"})
_ORDERING = frozenset({"$gt", "$gte", "$lt", "$lte"})


class FilterError(RelaygraphError, ValueError):
    """A search filter is malformed (the message names the path and operator)."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What :func:`value_at_path` returns when the path does not exist."""


# -- paths ---------------------------------------------------------------------------------


def split_path(path: str) -> list[str]:
    """``"a.b.c"`` -> ``["a", "b", "c"]``; an empty path or segment is a FilterError."""
    if not isinstance(path, str) or not path:
        raise FilterError(f"filter paths must be non-empty strings, got {path!r}")
    segments = path.split(".")
    if not all(segments):
        raise FilterError(f"filter path {path!r} has an empty segment")
    return segments


def value_at_path(value: Any, path: str | list[str]) -> Any:
    """The value at a dotted path of ``value``, or :data:`MISSING`."""
    current = value
    for segment in split_path(path) if isinstance(path, str) else path:
        if isinstance(current, Mapping):
            if segment not in current:
                return MISSING
            current = current[segment]
        elif isinstance(current, list | tuple) and segment.isdigit():
            index = int(segment)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


# -- normalization -------------------------------------------------------------------------


def _is_operator_dict(condition: Any) -> bool:
    return (
        isinstance(condition, Mapping)
        and bool(condition)
        and all(isinstance(k, str) and k.startswith("$") for k in condition)
    )


def _is_nested_dict(condition: Any) -> bool:
    return (
        isinstance(condition, Mapping)
        and bool(condition)
        and not any(isinstance(k, str) and k.startswith("$") for k in condition)
    )


def _check_operand(path: str, operator: str, operand: Any) -> None:
    if operator not in OPERATORS:
        raise FilterError(
            f"unsupported filter operator {operator!r} on {path!r}; supported: "
            + ", ".join(sorted(OPERATORS))
        )
    if operator in _ORDERING:
        if isinstance(operand, bool) or not isinstance(operand, int | float | str):
            raise FilterError(
                f"filter operator {operator!r} on {path!r} needs a number or a string, "
                f"got {operand!r}"
            )
    elif operator in ("$in", "$nin"):
        if not isinstance(operand, list | tuple | set | frozenset):
            raise FilterError(
                f"filter operator {operator!r} on {path!r} needs a list, got {operand!r}"
            )
    elif operator == "$exists" and not isinstance(operand, bool):
        raise FilterError(
            f"filter operator '$exists' on {path!r} needs true or false, got {operand!r}"
        )


def normalize_filter(filter: Mapping[str, Any] | None) -> list[tuple[str, str, Any]]:
    """Flatten a filter into ``(path, operator, operand)`` triples, validating it.

    Nested dicts become dotted paths and plain values become ``$eq``, so a backend that
    translates filters into its own query language only meets the nine operators.
    """
    if filter is None:
        return []
    if not isinstance(filter, Mapping):
        raise FilterError(f"a filter must be a dict, got {type(filter).__name__}: {filter!r}")
    triples: list[tuple[str, str, Any]] = []
    _flatten(filter, "", triples)
    return triples


def _flatten(filter: Mapping[str, Any], base: str, out: list[tuple[str, str, Any]]) -> None:
    for key, condition in filter.items():
        if not isinstance(key, str):
            raise FilterError(f"filter keys must be strings, got {key!r}")
        if key.startswith("$"):
            where = f" under {base!r}" if base else " at the top level of the filter"
            raise FilterError(
                f"unsupported filter operator {key!r}{where}; operators go inside a field's "
                "condition, e.g. {'score': {'$gt': 1}}"
            )
        path = f"{base}.{key}" if base else key
        split_path(path)
        if _is_operator_dict(condition):
            for operator, operand in condition.items():
                _check_operand(path, operator, operand)
                out.append((path, operator, operand))
        elif _is_nested_dict(condition):
            _flatten(condition, path, out)
        elif isinstance(condition, Mapping) and condition:
            raise FilterError(
                f"the condition on {path!r} mixes operators and field names: {condition!r}"
            )
        else:
            out.append((path, "$eq", condition))


def validate_filter(filter: Mapping[str, Any] | None) -> None:
    """Raise :class:`FilterError` when ``filter`` is malformed; otherwise do nothing."""
    normalize_filter(filter)


# -- matching ------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: booleans are not numbers; containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping | list | tuple) or isinstance(b, Mapping | list | tuple):
        return False
    return a == b


def _compare(value: Any, operator: str, operand: Any) -> bool:
    if _is_number(operand):
        if not _is_number(value):
            return False
    elif not isinstance(value, str):
        return False
    if operator == "$gt":
        return value > operand
    if operator == "$gte":
        return value >= operand
    if operator == "$lt":
        return value < operand
    return value <= operand


def _eq(value: Any, operand: Any) -> bool:
    if value is MISSING:
        return operand is None
    return json_equal(value, operand)


def check(value: Any, operator: str, operand: Any) -> bool:
    """Whether a field value (possibly :data:`MISSING`) satisfies one operator."""
    if operator == "$eq":
        return _eq(value, operand)
    if operator == "$ne":
        return not _eq(value, operand)
    if operator == "$in":
        return any(_eq(value, candidate) for candidate in operand)
    if operator == "$nin":
        return not any(_eq(value, candidate) for candidate in operand)
    if operator == "$exists":
        return (value is not MISSING) is operand
    if value is MISSING:
        return False
    return _compare(value, operator, operand)


def matches(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether a stored value satisfies ``filter`` (None or {} matches everything)."""
    return all(
        check(value_at_path(value, path), operator, operand)
        for path, operator, operand in normalize_filter(filter)
    )


def compile_filter(filter: Mapping[str, Any] | None) -> Callable[[Mapping[str, Any]], bool]:
    """Validate once and return a predicate on values (for scanning many items)."""
    triples = [(split_path(p), op, operand) for p, op, operand in normalize_filter(filter)]

    def predicate(value: Mapping[str, Any]) -> bool:
        return all(
            check(value_at_path(value, path), operator, operand)
            for path, operator, operand in triples
        )

    return predicate
