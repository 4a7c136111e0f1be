"""The shared search-filter rules (relaygraph.persistence.store.filters)."""

from __future__ import annotations

import pytest

from relaygraph.persistence.store.filters import (
    MISSING,
    FilterError,
    compile_filter,
    json_equal,
    matches,
    normalize_filter,
    value_at_path,
)

VALUE = {
    "name": "ada",
    "age": 36,
    "score": 9.5,
    "active": True,
    "none": None,
    "tags": ["math", "code"],
    "profile": {"city": "london", "langs": [{"name": "en"}, {"name": "fr"}]},
}


def test_value_at_path() -> None:
    assert value_at_path(VALUE, "name") == "ada"
    assert value_at_path(VALUE, "profile.city") == "london"
    assert value_at_path(VALUE, "profile.langs.1.name") == "fr"
    assert value_at_path(VALUE, "tags.0") == "math"
    assert value_at_path(VALUE, "none") is None
    assert value_at_path(VALUE, "tags.9") is MISSING
    assert value_at_path(VALUE, "name.first") is MISSING
    assert value_at_path(VALUE, "profile.zip") is MISSING


@pytest.mark.parametrize(
    "filter, expected",
    [
        ({"name": "ada"}, True),
        ({"name": "bob"}, False),
        ({"age": 36.0}, True),
        ({"active": 1}, False),
        ({"active": True}, True),
        ({"age": True}, False),
        ({"none": None}, True),
        ({"missing": None}, True),
        ({"missing": {"$eq": None}}, True),
        ({"missing": {"$ne": None}}, False),
        ({"missing": {"$ne": 3}}, True),
        ({"missing": {"$gt": 3}}, False),
        ({"missing": {"$nin": [1]}}, True),
        ({"missing": {"$in": [1]}}, False),
        ({"missing": {"$exists": False}}, True),
        ({"none": {"$exists": True}}, True),
        ({"age": {"$gt": 30, "$lt": 40}}, True),
        ({"age": {"$gt": 36}}, False),
        ({"age": {"$gte": 36}}, True),
        ({"score": {"$lte": 9.5}}, True),
        ({"score": {"$lt": 9.5}}, False),
        ({"name": {"$gt": "a", "$lt": "b"}}, True),
        ({"name": {"$gt": 1}}, False),
        ({"age": {"$gt": "1"}}, False),
        ({"active": {"$gt": 0}}, False),
        ({"name": {"$in": ["bob", "ada"]}}, True),
        ({"name": {"$nin": ["bob", "ada"]}}, False),
        ({"tags": ["math", "code"]}, True),
        ({"tags": ["code", "math"]}, False),
        ({"tags": "math"}, False),
        ({"tags": {"$in": [["math", "code"]]}}, True),
        ({"profile.city": "london"}, True),
        ({"profile": {"city": "london"}}, True),
        ({"profile": {"city": {"$ne": "london"}}}, False),
        ({"profile": {"$eq": {"city": "london"}}}, False),
        ({"profile.langs.0.name": "en"}, True),
        ({"name": "ada", "age": {"$lt": 30}}, False),
        ({}, True),
    ],
)
def test_matches(filter, expected: bool) -> None:
    assert matches(VALUE, filter) is expected
    assert compile_filter(filter)(VALUE) is expected


def test_none_filter_matches_everything() -> None:
    assert matches(VALUE, None)
    assert normalize_filter(None) == []


def test_normalize_flattens_nested_conditions() -> None:
    assert normalize_filter({"a": {"b": {"c": 1, "d": {"$gt": 2}}}, "e": [1]}) == [
        ("a.b.c", "$eq", 1),
        ("a.b.d", "$gt", 2),
        ("e", "$eq", [1]),
    ]


def test_json_equal() -> None:
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal([True], [1])
    assert not json_equal(0, False)
    assert not json_equal("1", 1)
    assert not json_equal([1], (1, 2))


@pytest.mark.parametrize(
    "filter, message",
    [
        ({"a": {"$regex": "x"}}, r"unsupported filter operator '\$regex' on 'a'"),
        ({"a": {"b": {"$foo": 1}}}, r"'\$foo' on 'a\.b'"),
        ({"$or": [{"a": 1}]}, r"'\$or' at the top level"),
        ({"a": {"$gt": 1, "b": 2}}, "mixes operators and field names"),
        ({"a": {"$in": 3}}, r"'\$in' on 'a' needs a list"),
        ({"a": {"$nin": "ab"}}, r"'\$nin' on 'a' needs a list"),
        ({"a": {"$exists": 1}}, r"'\$exists' on 'a' needs true or false"),
        ({"a": {"$gt": None}}, r"'\$gt' on 'a' needs a number or a string"),
        ({"a": {"$lte": True}}, r"'\$lte' on 'a' needs a number or a string"),
        ({"a..b": 1}, "empty segment"),
        ({"": 1}, "non-empty"),
        ({1: 1}, "keys must be strings"),
        (["a", 1], "must be a dict"),
    ],
)
def test_malformed_filters(filter, message: str) -> None:
    with pytest.raises(FilterError, match=message) as info:
        matches(VALUE, filter)
    assert isinstance(info.value, ValueError)
    with pytest.raises(FilterError):
        compile_filter(filter)
