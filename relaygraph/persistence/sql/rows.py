"""Rows <-> checkpoints: what an operation reads (raw rows, decoded outside the transaction)
and writes (a put serialized before its transaction), and how the two map to the saver API.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relaygraph.persistence.base import (
    SPECIAL_WRITE_INDEX,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    checkpoint_id_of,
    checkpoint_ns_of,
    make_config,
    thread_id_of,
)
from relaygraph.persistence.blobs import (
    blobs_for_put,
    decode_blob,
    decode_header,
    encode_header,
    load_channel_values,
)
from relaygraph.persistence.errors import CorruptCheckpointError, SerializationError
from relaygraph.persistence.serde import Serializer
from relaygraph.persistence.sql.cache import ScopedValues

if TYPE_CHECKING:
    from relaygraph.persistence.sql.cache import ResolvedValues
    from relaygraph.persistence.sql.dialect import Dialect

__all__ = [
    "Key",
    "PreparedPut",
    "RawCheckpoint",
    "RawPage",
    "append_base",
    "build_tuple",
    "jsonable",
    "metadata_as_json",
    "prepare_put",
    "prepare_writes",
]

Key = tuple[str, str, str, str]
"""A blob's key: (thread_id, checkpoint_ns, channel, version)."""


@dataclass(slots=True)
class RawCheckpoint:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    header: bytes
    metadata: bytes
    versions: dict[str, str] = field(default_factory=dict)
    writes: list[tuple[str, str, bytes]] = field(default_factory=list)
    decoded: Checkpoint | None = None  # the header, once decoded for its versions


@dataclass(slots=True)
class RawPage:
    items: list[RawCheckpoint]
    blobs: dict[Key, bytes]
    exhausted: bool
    cached: dict[Key, Any] = field(default_factory=dict)  # resolved lists the read relied on


@dataclass(slots=True)
class PreparedPut:
    thread_id: str
    checkpoint_ns: str
    parent_id: str | None
    checkpoint: Checkpoint
    versions: dict[str, str]
    new_versions: dict[str, str]
    header: bytes
    metadata: bytes
    metadata_json: str
    run_id: str | None
    blobs: dict[tuple[str, str], bytes]
    # append_base of each of ``blobs`` (decoded once: the put asks several times)
    bases: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def base_of(self, key: tuple[str, str], data: bytes) -> str | None:
        """``append_base(data)``, remembered for the blobs the put was prepared with."""
        if self.blobs.get(key) is data:
            if key not in self.bases:
                self.bases[key] = append_base(data)
            return self.bases[key]
        return append_base(data)


def append_base(data: bytes) -> str | None:
    """The version an append blob extends (None for other blobs and unreadable ones)."""
    if data[:1] != b"A":
        return None
    try:
        _, base, _ = decode_blob(data)
    except Exception:
        return None  # resolve_channel reports it, naming the checkpoint
    return base[0] if base else None


_DECIMAL_SAFE_BITS = 14_000  # ints this wide always convert to decimal (4,300 digits)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON (NUL-free strings, finite numbers, anything else as repr)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > _DECIMAL_SAFE_BITS:
            try:
                str(value)  # JSON writes ints in decimal: Python refuses past 4,300 digits
            except ValueError:
                return f"int:{value:#x}"  # no float can equal it: filters compare as text
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {jsonable(str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return jsonable(repr(value))


def metadata_as_json(metadata: CheckpointMetadata) -> str:
    # Only for filtering in SQL; the serializer's bytes are what is read back.
    return json.dumps(jsonable(metadata))


def build_tuple(
    raw: RawCheckpoint, page: RawPage, serde: Serializer, values: ResolvedValues
) -> CheckpointTuple:
    """The saver's tuple for a raw checkpoint of ``page``; corrupt bytes raise
    :class:`CorruptCheckpointError` naming the checkpoint."""
    thread_id, ns, checkpoint_id = raw.thread_id, raw.checkpoint_ns, raw.checkpoint_id
    where = f"checkpoint {checkpoint_id!r} of thread {thread_id!r} (namespace {ns!r})"
    try:
        checkpoint = raw.decoded if raw.decoded is not None else decode_header(raw.header)
        raw.decoded = None  # the tuple owns it now
        if checkpoint["id"] != checkpoint_id:
            raise SerializationError(f"header names checkpoint {checkpoint['id']!r}")
    except SerializationError as exc:
        raise CorruptCheckpointError(f"{where}: corrupt header: {exc}") from exc
    try:
        metadata = serde.loads(raw.metadata, where="checkpoint metadata")
        if not isinstance(metadata, dict):
            raise SerializationError(f"metadata is a {type(metadata).__name__}, not a mapping")
    except SerializationError as exc:
        raise CorruptCheckpointError(f"{where}: corrupt metadata: {exc}") from exc
    checkpoint["channel_values"] = load_channel_values(
        checkpoint["channel_versions"],
        lambda channel, version: page.blobs.get((thread_id, ns, channel, version)),
        serde=serde,
        thread_id=thread_id,
        checkpoint_ns=ns,
        checkpoint_id=checkpoint_id,
        cache=ScopedValues(values, page.cached, thread_id, ns),
    )
    writes = []
    for task_id, channel, data in raw.writes:
        try:
            value = serde.loads(data, where=f"write {channel!r} of task {task_id!r}")
        except SerializationError as exc:
            raise CorruptCheckpointError(f"{where}: corrupt pending write: {exc}") from exc
        writes.append(PendingWrite(task_id, channel, value))
    parent = make_config(thread_id, ns, raw.parent_id) if raw.parent_id else None
    return CheckpointTuple(
        config=make_config(thread_id, ns, checkpoint_id),
        checkpoint=checkpoint,
        metadata=metadata,
        parent_config=parent,
        pending_writes=writes,
    )


def prepare_put(
    dialect: Dialect,
    serde: Serializer,
    config: dict[str, Any],
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: dict[str, str],
) -> PreparedPut:
    """Serialize everything before the transaction, so a bad value stores nothing."""
    checkpoint_id = checkpoint["id"]
    versions = dict(checkpoint.get("channel_versions") or {})
    for channel in checkpoint.get("channel_values") or {}:
        if channel not in versions:
            raise ValueError(
                f"checkpoint {checkpoint_id!r}: channel {channel!r} has a value but no "
                "version in channel_versions, so it cannot be stored"
            )
    wanted = {c: v for c, v in new_versions.items() if versions.get(c) == v}
    run_id = (metadata or {}).get("run_id")
    check = dialect.check_ids
    check(
        thread_id_of(config),
        checkpoint_ns_of(config),
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=checkpoint_id_of(config),
        run_id=None if run_id is None else str(run_id),
    )
    for channel, version in versions.items():
        check(None, None, channel=channel, version=str(version))
    return PreparedPut(
        thread_id=thread_id_of(config),
        checkpoint_ns=checkpoint_ns_of(config),
        parent_id=checkpoint_id_of(config),
        checkpoint=checkpoint,
        versions=versions,
        new_versions=wanted,
        header=encode_header(checkpoint),
        metadata=serde.dumps(metadata, where="checkpoint metadata"),
        metadata_json=metadata_as_json(metadata or {}),
        run_id=None if run_id is None else str(run_id),
        blobs=blobs_for_put(serde, checkpoint, wanted, lambda c, v: True),
    )


def prepare_writes(
    dialect: Dialect,
    serde: Serializer,
    config: dict[str, Any],
    writes: Sequence[tuple[str, Any]],
    task_id: str,
) -> tuple[str, str, str, list[tuple[str, int, bytes]]]:
    thread_id = thread_id_of(config)
    checkpoint_id = checkpoint_id_of(config)
    if checkpoint_id is None:
        raise ValueError("put_writes needs a config naming a checkpoint_id")
    dialect.check_ids(
        thread_id, checkpoint_ns_of(config), checkpoint_id=checkpoint_id, task_id=task_id
    )
    rows = [
        (
            channel,
            SPECIAL_WRITE_INDEX.get(channel, index),
            serde.dumps(value, where=f"write {channel!r} of task {task_id!r}"),
        )
        for index, (channel, value) in enumerate(writes)
    ]
    return thread_id, checkpoint_ns_of(config), checkpoint_id, rows
