"""Embedding adapters, field paths, index configs and the offline default model."""

from __future__ import annotations

import asyncio
import math
import sys

import numpy as np
import pytest

from relaygraph.persistence.embeddings import (
    DEFAULT_MODEL_DIMS,
    Embeddings,
    StoreIndex,
    default_embeddings,
    ensure_embeddings,
    texts_at_path,
    tokenize_path,
)
from relaygraph.persistence.store.memory import InMemoryStore


def two_dims(texts: list[str]) -> list[list[float]]:
    return [[float(len(t)), 1.0] for t in texts]


async def two_dims_async(texts: list[str]) -> list[list[float]]:
    await asyncio.sleep(0)
    return two_dims(texts)


class AsyncCallable:
    async def __call__(self, texts: list[str]) -> list[list[float]]:
        return two_dims(texts)


class SyncOnly:
    def embed_documents(self, texts):
        return two_dims(texts)

    def embed_query(self, text):
        return two_dims([text])[0]


class WithAsync(SyncOnly):
    def __init__(self) -> None:
        self.async_calls = 0

    async def aembed_documents(self, texts):
        self.async_calls += 1
        return two_dims(texts)

    async def aembed_query(self, text):
        self.async_calls += 1
        return two_dims([text])[0]


class Vectorizer:
    """The RedisVL vectorizer shape (embed/embed_many and async twins)."""

    def embed(self, text):
        return two_dims([text])[0]

    def embed_many(self, texts):
        return two_dims(texts)

    async def aembed(self, text):
        return two_dims([text])[0]

    async def aembed_many(self, texts):
        return two_dims(texts)


# -- adapters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "embed",
    [two_dims, two_dims_async, AsyncCallable(), SyncOnly(), WithAsync(), Vectorizer()],
    ids=["sync-fn", "async-fn", "async-callable", "object", "object-async", "vectorizer"],
)
async def test_every_embed_shape_gives_sync_and_async_methods(embed) -> None:
    embeddings = ensure_embeddings(embed)
    assert isinstance(embeddings, Embeddings)
    assert await embeddings.aembed_documents(["ab", "abc"]) == [[2.0, 1.0], [3.0, 1.0]]
    assert await embeddings.aembed_query("abcd") == [4.0, 1.0]
    # the sync methods work even with an async embedder inside a running loop
    assert embeddings.embed_documents(["a"]) == [[1.0, 1.0]]
    assert embeddings.embed_query("") == [0.0, 1.0]


def test_async_function_from_sync_code_without_a_loop() -> None:
    assert ensure_embeddings(two_dims_async).embed_documents(["xyz"]) == [[3.0, 1.0]]


async def test_native_async_methods_are_preferred() -> None:
    obj = WithAsync()
    embeddings = ensure_embeddings(obj)
    await embeddings.aembed_documents(["a"])
    await embeddings.aembed_query("a")
    assert obj.async_calls == 2


def test_numpy_vectors_become_float_lists() -> None:
    embeddings = ensure_embeddings(lambda texts: np.ones((len(texts), 3), dtype=np.float32))
    vectors = embeddings.embed_documents(["a", "b"])
    assert vectors == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    assert all(type(x) is float for x in vectors[0])


def test_wrong_vector_count_is_an_error() -> None:
    embeddings = ensure_embeddings(lambda texts: [[1.0]])
    with pytest.raises(ValueError, match="1 vectors for 3 texts"):
        embeddings.embed_documents(["a", "b", "c"])


def test_non_vector_output_is_an_error() -> None:
    with pytest.raises(TypeError, match="sequence of numbers"):
        ensure_embeddings(lambda texts: ["not a vector"]).embed_documents(["a"])


def test_bad_embed_arguments() -> None:
    with pytest.raises(ValueError, match="needs 'embed'"):
        ensure_embeddings(None)
    with pytest.raises(TypeError, match="embed must be"):
        ensure_embeddings(42)
    with pytest.raises(
        ValueError, match="'openai:text-embedding-3-small' is not available offline"
    ):
        ensure_embeddings("openai:text-embedding-3-small")


def test_missing_sentence_transformers_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match=r"relaygraph\[embeddings\]"):
        default_embeddings.__wrapped__()  # bypass the cache: nothing is loaded or kept


# -- field paths ---------------------------------------------------------------------------

DOC = {
    "title": "Notes",
    "n": 3,
    "ok": False,
    "none": None,
    "meta": {"author": {"name": "ada"}, "tags": ["x", "y"]},
    "items": [{"text": "one"}, {"text": "two"}, {"other": 1}],
    "grid": [[1, 2], [3]],
}


@pytest.mark.parametrize(
    "path, texts",
    [
        ("title", ["Notes"]),
        ("n", ["3"]),
        ("ok", ["False"]),
        ("none", []),
        ("missing", []),
        ("meta.author.name", ["ada"]),
        ("meta.author", ['{"name": "ada"}']),
        ("meta.tags", ['["x", "y"]']),
        ("meta.tags[*]", ["x", "y"]),
        ("meta.tags[0]", ["x"]),
        ("meta.tags[-1]", ["y"]),
        ("meta.tags[5]", []),
        ("items[*].text", ["one", "two"]),
        ("items[1].text", ["two"]),
        ("grid[0][1]", ["2"]),
        ("grid[*][*]", ["1", "2", "3"]),
        ("meta.*.name", ["ada"]),
        ("title[0]", []),
        ("$.title", ["Notes"]),
    ],
)
def test_texts_at_path(path: str, texts: list[str]) -> None:
    assert texts_at_path(DOC, path) == texts


def test_whole_value_path_is_sorted_json() -> None:
    assert texts_at_path({"b": 1, "a": "é"}, "$") == ['{"a": "é", "b": 1}']


@pytest.mark.parametrize("path", ["", "a..b", "a[", "a[x]", "a[]", "[0]", "a[0]b"])
def test_malformed_paths(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        tokenize_path(path)


# -- index configs -------------------------------------------------------------------------


def test_store_index_texts_for_put() -> None:
    index = StoreIndex({"embed": two_dims, "dims": 2, "fields": ["title", "items[*].text"]})
    assert index.texts_for(DOC) == [
        ("title", "Notes"),
        ("items[*].text", "one"),
        ("items[*].text", "two"),
    ]
    assert index.texts_for(DOC, False) == []
    assert index.texts_for(DOC, ["meta.author.name"]) == [("meta.author.name", "ada")]
    assert StoreIndex({"embed": two_dims, "dims": 2}).fields == ["$"]


def test_store_index_checks_dims() -> None:
    index = StoreIndex({"embed": two_dims, "dims": 3})
    with pytest.raises(ValueError, match=r"2 dimensions.*dims=3"):
        index.embed_documents(["a"])
    with pytest.raises(ValueError, match="dims=3"):
        index.embed_query("a")
    with pytest.raises(ValueError, match="dims=3"):
        asyncio.run(index.aembed_documents(["a"]))
    assert index.embed_documents([]) == []


@pytest.mark.parametrize(
    "config, error, message",
    [
        ({"embed": two_dims}, ValueError, "dims"),
        ({"embed": two_dims, "dims": True}, ValueError, "dims"),
        ({"embed": "default", "dims": 1536}, ValueError, "384"),
        ({"embed": two_dims, "dims": 2, "fields": "title"}, TypeError, "fields"),
        ({"embed": two_dims, "dims": 2, "fields": ["a[*"]}, ValueError, "unclosed"),
        ({"embed": two_dims, "dims": 2, "field": ["a"]}, ValueError, "'field'"),
        ("default", TypeError, "index must be a dict"),
    ],
)
def test_bad_index_configs(config, error, message: str) -> None:
    with pytest.raises(error, match=message):
        StoreIndex(config)


def test_backends_may_allow_extra_index_keys() -> None:
    index = StoreIndex(
        {"embed": two_dims, "dims": 2, "distance": "cosine"}, extra_keys=["distance"]
    )
    assert index.config["distance"] == "cosine"


# -- the offline default model -------------------------------------------------------------

FACTS = {
    "hiking": "I love hiking in the mountains",
    "job": "I am a software engineer",
    "theme": "I prefer dark mode in my editor",
    "food": "My favourite food is sushi",
}


@pytest.fixture(scope="module")
def model():
    return default_embeddings()  # loaded once for the module (and cached per process)


@pytest.mark.slow
def test_default_model_vectors(model) -> None:
    vectors = model.embed_documents(["hello world", "outdoor activities"])
    assert len(vectors) == 2
    assert all(len(v) == DEFAULT_MODEL_DIMS for v in vectors)
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vectors)
    assert model.embed_documents([]) == []
    for alias in ("default", "sentence-transformers:all-MiniLM-L6-v2", "DEFAULT"):
        assert ensure_embeddings(alias) is model


@pytest.mark.slow
def test_default_model_ranks_hiking_for_outdoor_activities(model) -> None:
    store = InMemoryStore(index={"embed": "default", "dims": 384, "fields": ["fact"]})
    for key, fact in FACTS.items():
        store.put(("users", "me"), key, {"fact": fact})
    results = store.search(("users", "me"), query="outdoor activities")
    assert results[0].value["fact"] == "I love hiking in the mountains"
    assert results[0].score > results[1].score


@pytest.mark.slow
async def test_default_model_async_and_without_dims(model) -> None:
    store = InMemoryStore(index={"embed": "default", "fields": ["fact"]})
    assert store.index.dims == DEFAULT_MODEL_DIMS
    for key, fact in FACTS.items():
        await store.aput(("users", "me"), key, {"fact": fact})
    results = await store.asearch(("users", "me"), query="what do I eat?", limit=1)
    assert results[0].key == "food"
