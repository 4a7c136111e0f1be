"""The allow-list serializer every saver stores values with: msgpack plus typed extensions.

Only these values can be stored, and each comes back with its exact type and value:
None, bool, int (any size), float, str, bytes, list, dict (any hashable keys), tuple, set,
frozenset, Decimal, datetime/date/time/timedelta (with UTC, fixed-offset and zoneinfo time
zones), UUID, exceptions (read back as :class:`StoredError`), and the Enum, dataclass,
pydantic model and NamedTuple classes given to :func:`register_type`.

``bytearray`` and ``memoryview`` are stored as (and read back as) ``bytes``: msgpack packs
them natively, before any type check could run.

Registered classes are stored under their registered *name* and found again by that name
alone: nothing read back ever imports a module or unpickles anything (design invariant 12).
A value outside the allow-list fails at ``dumps`` time with a :class:`SerializationError`
naming where it was going (``where``), its type and its path inside the value.

Nesting is capped (:data:`MAX_DEPTH`): each typed value (tuple, set, model, ...) is a
nested msgpack document, and reading one re-enters msgpack's C unpacker, whose frames are
large; without a cap a few hundred nested tuples exhaust the C stack and kill the process
(SIGSEGV) before Python's recursion limit can fire. ``dumps`` refuses a deeper value and
``loads`` refuses deeper bytes (crafted or corrupt), both with a :class:`SerializationError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar, overload
from zoneinfo import ZoneInfo

import msgpack

from relaygraph.persistence.errors import SerializationError

__all__ = [
    "MAX_DEPTH",
    "Serializer",
    "StoredError",
    "default_serializer",
    "register_decoder",
    "register_type",
    "registered_name",
]

T = TypeVar("T", bound=type)

# Extension type codes. Stored data depends on them: never renumber, only add.
_BIGINT = 1
_TUPLE = 2
_SET = 3
_FROZENSET = 4
_DECIMAL = 5
_DATETIME = 6
_DATE = 7
_TIME = 8
_TIMEDELTA = 9
_UUID = 10
_ENUM = 11
_DATACLASS = 12
_MODEL = 13
_NAMEDTUPLE = 14
_ERROR = 15
_MODELS = 16  # a list of registered pydantic models, flat (see Serializer.dumps_list)

_KNOWN_CODES = frozenset(range(_BIGINT, _MODELS + 1))
_BIGINT_BYTES = b"\x00"  # marks a _BIGINT payload of signed big-endian bytes (else: digits)

MAX_DEPTH = 16
"""How deep typed values (tuple, set, frozenset, datetime, registered types, ...) may nest
inside one another; lists and dicts between them do not count (msgpack caps those at 511
per level). Every level costs C stack: ~45 KB to read, and up to 511 native frames
(~0.5 KB each) to write, so 16 levels stay within half of a thread's default 8 MB."""

_depth = threading.local()


class _TooDeep(ValueError):
    """More than :data:`MAX_DEPTH` nested typed values (raised while packing or unpacking)."""

    def __init__(self) -> None:
        super().__init__(
            f"typed values (tuples, sets, models, ...) nested more than {MAX_DEPTH} deep"
        )


def _enter() -> int:
    """One level deeper (this thread); returns the depth to restore with :func:`_leave`."""
    depth = getattr(_depth, "n", 0)
    if depth >= MAX_DEPTH:
        raise _TooDeep()
    _depth.n = depth + 1
    return depth


def _leave(depth: int) -> None:
    _depth.n = depth


_KINDS = {_ENUM: "enum", _DATACLASS: "dataclass", _MODEL: "model", _NAMEDTUPLE: "namedtuple"}


class StoredError(Exception):
    """An exception read back from storage: its original type's name and its message.

    The original class is never re-imported; two stored errors are equal when both
    their type name and message are.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredError):
            return NotImplemented
        return (self.type_name, self.message) == (other.type_name, other.message)

    def __hash__(self) -> int:
        return hash((self.type_name, self.message))

    def __reduce__(self) -> tuple[Any, ...]:
        return (StoredError, (self.type_name, self.message))


# -- registry --------------------------------------------------------------------------

_registry_lock = threading.Lock()
_by_name: dict[str, tuple[int, type]] = {}
_by_type: dict[type, tuple[int, str]] = {}


def _kind_of(cls: type) -> int:
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return _ENUM
    if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _NAMEDTUPLE
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        return _DATACLASS
    base_model = _pydantic_base()
    if base_model is not None and isinstance(cls, type) and issubclass(cls, base_model):
        return _MODEL
    raise TypeError(
        f"register_type: {cls!r} is not an Enum, dataclass, pydantic model or NamedTuple class"
    )


@overload
def register_type(cls: T, *, name: str | None = None) -> T: ...
@overload
def register_type(cls: None = None, *, name: str | None = None) -> Callable[[T], T]: ...
def register_type(cls: Any = None, *, name: str | None = None) -> Any:
    """Allow instances of ``cls`` to be stored, under ``name`` (default: module.qualname).

    Usable as ``@register_type`` or ``@register_type(name="...")``. The name is what is
    stored, so keep it stable when moving the class. Registering the same class again under
    the same name is a no-op; one name for two classes (or two names for one) is an error.
    """
    if cls is None:
        return lambda c: register_type(c, name=name)
    kind = _kind_of(cls)
    key = name or f"{cls.__module__}.{cls.__qualname__}"
    with _registry_lock:
        known = _by_name.get(key)
        if known is not None and known[1] is not cls:
            raise ValueError(f"register_type: name {key!r} is already registered for {known[1]!r}")
        previous = _by_type.get(cls)
        if previous is not None and previous[1] != key:
            raise ValueError(f"register_type: {cls!r} is already registered as {previous[1]!r}")
        _by_name[key] = (kind, cls)
        _by_type[cls] = (kind, key)
    return cls


ModelDecoder = Callable[[dict[str, Any], list[str]], Any]
_decoders: dict[type, ModelDecoder] = {}


def register_decoder(cls: type, decode: ModelDecoder) -> None:
    """Rebuild stored instances of the registered pydantic class ``cls`` with ``decode``.

    ``decode(fields, unset)`` gets the stored field values (extras included) and the names
    of fields that were not set; it returns the instance, or None to fall back to full
    pydantic validation. A ``decode.for_shape(keys)`` attribute, when there is one, may
    give a function ``build(entry, unset)`` for lists of such models whose entries hold
    exactly ``keys``: it reads the flat entry ``[shape, unset, *values]`` without a dict
    made first (None from it falls back to ``decode``). For hot classes whose validation
    costs far more than a check of the stored shape (langchain_core's messages: ~100 us
    each against ~2 us).
    """
    if _by_type.get(cls, (None,))[0] != _MODEL:
        raise ValueError(f"register_decoder: {cls!r} is not a registered pydantic model")
    _decoders[cls] = decode


def registered_name(cls: type) -> str | None:
    """The name ``cls`` is stored under, or None when it is not registered."""
    entry = _by_type.get(cls)
    return entry[1] if entry else None


_pydantic_model: Any = None


def _pydantic_base() -> type | None:
    global _pydantic_model
    if _pydantic_model is None:
        try:
            from pydantic import BaseModel
        except ImportError:  # pydantic is optional for the serializer itself
            _pydantic_model = False
        else:
            _pydantic_model = BaseModel
    return _pydantic_model or None


_runtime_imported = False


def _import_runtime_types() -> None:
    """Import the runtime modules whose classes register themselves (Send, messages, ...)."""
    global _runtime_imported
    if _runtime_imported:
        return
    _runtime_imported = True
    import importlib

    for module in ("relaygraph.runtime.types", "relaygraph.runtime.messages"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


# -- encoding --------------------------------------------------------------------------


class _Unstorable(TypeError):
    """Raised inside msgpack's ``default`` hook; :meth:`Serializer.dumps` explains it."""


def _tz_encode(tz: dt.tzinfo | None) -> Any:
    if tz is None:
        return None
    if type(tz) is dt.timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        explicit = name if name != dt.timezone(offset).tzname(None) else None
        return ["o", offset // dt.timedelta(microseconds=1), explicit]
    if type(tz) is ZoneInfo:
        if tz.key is None:
            raise _Unstorable("a ZoneInfo made from a file (no key)")
        return ["z", tz.key]
    if type(tz).__name__ == "TzInfo" and type(tz).__module__.startswith("pydantic_core"):
        # pydantic parses "...+01:00" into its own fixed-offset class
        return ["p", tz.utcoffset(None) // dt.timedelta(seconds=1)]
    raise _Unstorable(f"time zone of type {type(tz).__qualname__}")


def _tz_decode(raw: Any) -> dt.tzinfo | None:
    if raw is None:
        return None
    tag = raw[0]
    if tag == "o":
        offset = dt.timedelta(microseconds=raw[1])
        return dt.timezone(offset, raw[2]) if raw[2] is not None else dt.timezone(offset)
    if tag == "z":
        return ZoneInfo(raw[1])
    if tag == "p":
        from pydantic_core import TzInfo

        return TzInfo(raw[1])
    raise ValueError(f"unknown time zone tag {tag!r}")


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, strict_types=True, use_bin_type=True)


def _ext(code: int, value: Any) -> msgpack.ExtType:
    depth = _enter()
    try:
        return msgpack.ExtType(code, _pack(value))
    finally:
        _leave(depth)


def _model_fields(obj: Any) -> tuple[dict[str, Any], list[str]]:
    """A pydantic model's field values (and extras) plus the names of unset fields."""
    cls = type(obj)
    fields = {name: getattr(obj, name) for name in cls.model_fields}
    extra = obj.__pydantic_extra__
    if extra:
        fields.update(extra)
    unset = [name for name in cls.model_fields if name not in obj.model_fields_set]
    return fields, unset


def _default(obj: Any) -> Any:
    """msgpack's hook for everything it does not pack natively (with ``strict_types``)."""
    kind = type(obj)
    if kind is int:  # beyond 64 bits; bytes, as str() stops at 4,300 digits
        size = (obj.bit_length() + 8) // 8  # room for the sign bit
        return msgpack.ExtType(_BIGINT, _BIGINT_BYTES + obj.to_bytes(size, "big", signed=True))
    if kind is tuple:
        return _ext(_TUPLE, list(obj))
    if kind is set:
        return _ext(_SET, list(obj))
    if kind is frozenset:
        return _ext(_FROZENSET, list(obj))
    if kind is dt.datetime:
        tz = _tz_encode(obj.tzinfo)
        return _ext(
            _DATETIME,
            [obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second,
             obj.microsecond, obj.fold, tz],
        )  # fmt: skip
    if kind is dt.date:
        return _ext(_DATE, [obj.year, obj.month, obj.day])
    if kind is dt.time:
        tz = _tz_encode(obj.tzinfo)
        return _ext(_TIME, [obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold, tz])
    if kind is dt.timedelta:
        return _ext(_TIMEDELTA, [obj.days, obj.seconds, obj.microseconds])
    if kind is uuid.UUID:
        return msgpack.ExtType(_UUID, obj.bytes)
    if kind is Decimal:
        return msgpack.ExtType(_DECIMAL, str(obj).encode())
    entry = _by_type.get(kind)
    if entry is not None:
        code, name = entry
        if code == _ENUM:
            return _ext(_ENUM, [name, obj.value])
        if code == _NAMEDTUPLE:
            return _ext(_NAMEDTUPLE, [name, list(obj)])
        if code == _DATACLASS:
            values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            return _ext(_DATACLASS, [name, values])
        fields, unset = _model_fields(obj)
        return _ext(_MODEL, [name, fields, unset])
    if isinstance(obj, StoredError):
        return _ext(_ERROR, [obj.type_name, obj.message])
    if isinstance(obj, BaseException):
        return _ext(_ERROR, [_exception_name(kind), str(obj)])
    raise _Unstorable(kind)


def _exception_name(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


# -- decoding --------------------------------------------------------------------------


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def _registered(name: str, code: int) -> type:
    entry = _by_name.get(name)
    if entry is None:
        raise _UnknownType(f"unknown type name {name!r} (register the class with register_type)")
    if entry[0] != code:
        raise ValueError(f"type {name!r} is registered as a {_KINDS[entry[0]]}, not {_KINDS[code]}")
    return entry[1]


class _UnknownType(ValueError):
    pass


def _ext_hook(code: int, data: bytes) -> Any:
    if code not in _KNOWN_CODES:
        raise ValueError(f"unknown extension type {code}")
    if code == _BIGINT:
        if data[:1] == _BIGINT_BYTES:
            return int.from_bytes(data[1:], "big", signed=True)
        return int(data.decode())  # digits: what versions before bytes stored
    if code == _UUID:
        return uuid.UUID(bytes=data)
    if code == _DECIMAL:
        return Decimal(data.decode())
    depth = _enter()
    try:
        value = _unpack(data)
    finally:
        _leave(depth)
    if code == _TUPLE:
        return tuple(value)
    if code == _SET:
        return set(value)
    if code == _FROZENSET:
        return frozenset(value)
    if code == _DATETIME:
        *parts, fold, tz = value
        return dt.datetime(*parts, tzinfo=_tz_decode(tz), fold=fold)
    if code == _DATE:
        return dt.date(*value)
    if code == _TIME:
        *parts, fold, tz = value
        return dt.time(*parts, tzinfo=_tz_decode(tz), fold=fold)
    if code == _TIMEDELTA:
        return dt.timedelta(days=value[0], seconds=value[1], microseconds=value[2])
    if code == _ERROR:
        return StoredError(value[0], value[1])
    if code == _ENUM:
        return _registered(value[0], code)(value[1])
    if code == _NAMEDTUPLE:
        return _registered(value[0], code)(*value[1])
    if code == _DATACLASS:
        return _restore_dataclass(_registered(value[0], code), value[1])
    if code == _MODEL:
        return _model(_registered(value[0], code), value[1], value[2])
    if code == _MODELS:
        return _models(value)
    raise AssertionError(code)


def _model(cls: Any, fields: Any, unset: Any) -> Any:
    """A stored pydantic model: its fast decoder's, else fully validated."""
    decode = _decoders.get(cls)
    if decode is not None:
        built = decode(fields, unset)
        if built is not None:
            return built
    if getattr(cls, "__pydantic_root_model__", False):
        model = cls.model_validate(fields["root"])
    else:
        model = cls.model_validate(fields, by_name=True)
    if unset:
        model.__pydantic_fields_set__.difference_update(unset)
    return model


def _models(value: list[Any]) -> list[Any]:
    """A list stored by :meth:`Serializer.dumps_list`: one model per entry."""
    shapes, unsets, entries = value
    kinds = []
    for name, keys in shapes:
        cls = _registered(name, _MODEL)
        decode = _decoders.get(cls) or _no_decoder
        # A decoder may build entries of one shape straight from the entry (for_shape).
        for_shape = getattr(decode, "for_shape", None)
        build = for_shape(tuple(keys)) if for_shape is not None else None
        kinds.append((cls, tuple(keys), len(keys) + 2, decode, build))
    out = []
    append = out.append
    for entry in entries:
        cls, keys, size, decode, build = kinds[entry[0]]
        if len(entry) != size:
            raise ValueError("a flat model entry does not match its shape")
        unset = unsets[entry[1]]
        if build is not None:
            built = build(entry, unset)
            if built is not None:
                append(built)
                continue
        fields = dict(zip(keys, entry[2:], strict=False))  # length checked above
        built = decode(fields, unset)
        append(built if built is not None else _model(cls, fields, unset))
    return out


def _no_decoder(_fields: dict[str, Any], _unset: list[str]) -> None:
    return None


def _restore_dataclass(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a dataclass field by field, as stored (``__init__``/``__post_init__`` not rerun)."""
    obj = cls.__new__(cls)
    for f in dataclasses.fields(cls):
        if f.name in values:
            value = values[f.name]
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            raise ValueError(f"stored {cls.__qualname__} lacks field {f.name!r}")
        object.__setattr__(obj, f.name, value)
    return obj


# -- explaining a failure --------------------------------------------------------------

_LEAVES = (
    type(None), bool, int, float, str, bytes, bytearray, Decimal,
    dt.datetime, dt.date, dt.time, dt.timedelta, uuid.UUID,
)  # fmt: skip


def _find_unstorable(value: Any) -> tuple[str, str] | None:
    """``(path, reason)`` of the first part of ``value`` that cannot be stored, if any.

    Only run after a failure, so the fast path never pays for path tracking. Iterative
    (an explicit stack) so a deep value cannot blow the interpreter's recursion limit.
    """
    stack: list[tuple[str, Any, frozenset[int]]] = [("", value, frozenset())]
    while stack:
        path, obj, ancestors = stack.pop()
        kind = type(obj)
        if id(obj) in ancestors:
            return path, f"a reference cycle (a {kind.__qualname__} contains itself)"
        if kind is str:
            try:
                obj.encode()
            except UnicodeEncodeError:
                return path, "a str that is not valid UTF-8 (lone surrogate)"
            continue
        if kind in _LEAVES:
            if kind in (dt.datetime, dt.time):
                try:
                    _tz_encode(obj.tzinfo)
                except _Unstorable as exc:
                    return path, str(exc)
            continue
        inner = ancestors | {id(obj)}
        children: list[tuple[str, Any]]
        if kind in (list, tuple):
            children = [(f"{path}[{i}]", item) for i, item in enumerate(obj)]
        elif kind in (set, frozenset):
            children = [(f"{path}{{{item!r}}}", item) for item in obj]
        elif kind is dict:
            children = []
            for key, item in obj.items():
                children.append((f"{path}[{key!r}]", item))
                if type(key) is not str:
                    children.append((f"{path}<key {key!r}>", key))
        elif kind in _by_type:
            code = _by_type[kind][0]
            if code == _ENUM:
                children = [(f"{path}.value", obj.value)]
            elif code == _NAMEDTUPLE:
                pairs = zip(obj._fields, obj, strict=True)
                children = [(f"{path}.{name}", item) for name, item in pairs]
            elif code == _DATACLASS:
                children = [
                    (f"{path}.{f.name}", getattr(obj, f.name)) for f in dataclasses.fields(obj)
                ]
            else:
                children = [(f"{path}.{k}", v) for k, v in _model_fields(obj)[0].items()]
        elif isinstance(obj, BaseException):
            continue
        else:
            return path, f"type {_describe(kind)} is not storable"
        for child_path, child in reversed(children):
            stack.append((child_path, child, inner))
    return None


def _describe(kind: type) -> str:
    return repr(kind.__qualname__ if kind.__module__ == "builtins" else _exception_name(kind))


_ALLOWED = (
    "allowed: None, bool, int, float, str, bytes, list, dict, tuple, set, frozenset, "
    "Decimal, datetime/date/time/timedelta, UUID, exceptions, and Enum/dataclass/pydantic/"
    "NamedTuple classes registered with relaygraph.register_type"
)


class Serializer:
    """Turns allowed values into bytes and back (see the module docstring for the list)."""

    def dumps(self, value: Any, *, where: str | None = None) -> bytes:
        """Serialize ``value``; ``where`` (e.g. ``"channel 'messages'"``) names it in errors."""
        if not _runtime_imported:
            _import_runtime_types()
        try:
            return _pack(value)
        except (_TooDeep, RecursionError) as exc:
            # RecursionError: deep registered types can exhaust Python frames first
            raise self._too_deep(value, where, exc) from None
        except (TypeError, ValueError, OverflowError, UnicodeEncodeError) as exc:
            raise self._explain(value, where, exc) from None

    def dumps_list(self, items: list[Any], *, where: str | None = None) -> bytes:
        """:meth:`dumps` for a list, which :meth:`loads` reads back the same.

        A list of registered pydantic models only (a chunk of chat messages) is stored as
        one flat document: a table of shapes (class name and field names), a table of
        unset-field lists, and per item its shape, its unset list and its field values.
        That is half the bytes of one nested document per item and reads back faster.
        Any other list is stored as :meth:`dumps` does.
        """
        if not _runtime_imported:
            _import_runtime_types()
        shapes: dict[tuple[str, tuple[str, ...]], int] = {}
        unsets: dict[tuple[str, ...], int] = {}
        entries = []
        for item in items:
            entry = _by_type.get(type(item))
            if entry is None or entry[0] != _MODEL:
                return self.dumps(items, where=where)
            fields, unset = _model_fields(item)
            shape = shapes.setdefault((entry[1], tuple(fields)), len(shapes))
            missing = unsets.setdefault(tuple(unset), len(unsets))
            entries.append([shape, missing, *fields.values()])
        table = [[name, list(keys)] for name, keys in shapes]
        try:
            return _pack(msgpack.ExtType(_MODELS, _pack([table, list(map(list, unsets)), entries])))
        except Exception:  # let dumps explain what cannot be stored
            return self.dumps(items, where=where)

    def loads(self, data: bytes, *, where: str | None = None) -> Any:
        """Read back bytes made by :meth:`dumps`; corrupt data raises SerializationError."""
        if not _runtime_imported:
            _import_runtime_types()
        try:
            return _unpack(data)
        except Exception as exc:  # any decoding failure means the bytes are not ours
            what = "unknown stored type" if isinstance(exc, _UnknownType) else "corrupt data"
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            error = SerializationError(f"cannot read {where or 'value'}: {what} ({detail})")
            error.where = where  # type: ignore[attr-defined]
            raise error from exc

    @staticmethod
    def _too_deep(value: Any, where: str | None, cause: Exception) -> SerializationError:
        detail = str(cause) if isinstance(cause, _TooDeep) else "Python's recursion limit"
        error = SerializationError(
            f"cannot store {where or 'value'} of type {_describe(type(value))}: it nests too "
            f"deep ({detail}); the limit is {MAX_DEPTH} levels of tuples, sets and registered "
            "types, and msgpack's own limit for lists and dicts"
        )
        error.where = where  # type: ignore[attr-defined]
        error.path = None  # type: ignore[attr-defined]
        return error

    @staticmethod
    def _explain(value: Any, where: str | None, cause: Exception) -> SerializationError:
        found = _find_unstorable(value)
        target = where or "value"
        if found is None:
            message = f"cannot store {target}: {cause}"
            path = None
        else:
            path, reason = found
            message = f"cannot store {target}: at value{path}: {reason}; {_ALLOWED}"
        error = SerializationError(message)
        error.where = where  # type: ignore[attr-defined]
        error.path = path  # type: ignore[attr-defined]
        return error


default_serializer = Serializer()
"""The serializer savers use unless given another."""
