"""Turning checkpoints, metadata, channel values and pending writes into storable parts and back.

Owns: the storage model every backend shares.

A checkpoint is stored as three parts:

* its *body*: the checkpoint dict without ``channel_values`` and
  ``channel_versions``, serialised with the saver's serde (so an
  ``EncryptedSerializer`` encrypts it);
* its *channel versions* as JSON, so a store can join them to channel values
  without deserialising anything;
* one *channel value* per (thread, checkpoint_ns, channel, version), written
  only for the channels in ``new_versions``. An unchanged 100 KB field is
  stored once, however many checkpoints refer to it. A channel that was
  updated but holds no value (cleared, or a ``DeltaChannel`` between
  snapshots) is stored as the marker type ``"empty"``.

Metadata is stored as canonical JSON (sorted keys, compact) so stores can
filter on it; it is never encrypted.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple, cast

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.checks import check_id, dump_json
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.types import ThreadInfo

EMPTY = "empty"
"""Type tag of a channel value row that holds no value."""

Version = str | int | float

NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"
"""LangGraph's task id of writes that no task made (``update_state``)."""

PAUSE_CHANNELS = ("__interrupt__", "__error__")
"""Special write channels that record why a step stopped rather than what a task returned."""


def kept_when_paused(task_id: str, channel: str) -> bool:
    """Whether a pending write stays when a fork is taken at a checkpoint the source
    has moved on from: its interrupts, errors and task-less writes, not the task
    results and answers (``__resume__``) written there later."""
    return channel in PAUSE_CHANNELS or (task_id == NULL_TASK_ID and channel != "__resume__")


@dataclass(frozen=True)
class Target:
    """The thread, namespace and (optional) checkpoint a config names."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None

    def config(self, checkpoint_id: str | None = None) -> RunnableConfig:
        """The ``RunnableConfig`` naming this target (or another checkpoint of it)."""
        return {
            "configurable": {
                "thread_id": self.thread_id,
                "checkpoint_ns": self.checkpoint_ns,
                "checkpoint_id": checkpoint_id or self.checkpoint_id,
            }
        }


def target_of(config: RunnableConfig | None, *, need_checkpoint_id: bool = False) -> Target:
    """Read ``{"configurable": {"thread_id": str, "checkpoint_ns"?: str, "checkpoint_id"?: str}}``.

    Raises:
        ConfigurationError: When ``thread_id`` (or a required ``checkpoint_id``) is missing.
    """
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or thread_id == "":
        raise ConfigurationError(
            'config must name a thread: {"configurable": {"thread_id": "..."}}'
        )
    check_id(thread_id, "thread_id")
    checkpoint_id = configurable.get("checkpoint_id") or None
    if need_checkpoint_id and checkpoint_id is None:
        raise ConfigurationError(
            'config must name a checkpoint: {"configurable": {"checkpoint_id": "..."}}'
        )
    return Target(
        thread_id=str(thread_id),
        checkpoint_ns=check_id(configurable.get("checkpoint_ns") or "", "checkpoint_ns"),
        checkpoint_id=None if checkpoint_id is None else check_id(checkpoint_id, "checkpoint_id"),
    )


def next_version(current: Version | None) -> str:
    """A channel version greater than ``current``: ``"<32-digit counter>.<random>"``.

    Same scheme as ``InMemorySaver``: strings compare correctly in every store
    and the random suffix keeps concurrent forks from colliding.
    """
    if current is None:
        number = 0
    elif isinstance(current, (int, float)):
        number = int(current)
    else:
        number = int(current.split(".")[0])
    return f"{number + 1:032}.{random.random():016}"


# --- writing ------------------------------------------------------------------


class ChannelValueRow(NamedTuple):
    channel: str
    version: Version
    type: str
    value: bytes


@dataclass(frozen=True)
class EncodedCheckpoint:
    """What a store writes for one ``put``."""

    target: Target
    checkpoint_id: str
    parent_checkpoint_id: str | None
    body_type: str
    body: bytes
    channel_versions: str
    metadata: str
    run_id: str | None
    values: list[ChannelValueRow]

    @property
    def config(self) -> RunnableConfig:
        """The config ``put`` returns."""
        return self.target.config(self.checkpoint_id)

    def params(self) -> dict[str, Any]:
        """The checkpoint row's columns as named parameters (both SQL stores' names)."""
        return {
            "thread_id": self.target.thread_id,
            "checkpoint_ns": self.target.checkpoint_ns,
            "checkpoint_id": self.checkpoint_id,
            "parent_checkpoint_id": self.parent_checkpoint_id,
            "type": self.body_type,
            "checkpoint": self.body,
            "channel_versions": self.channel_versions,
            "metadata": self.metadata,
            "run_id": self.run_id,
        }


_CHECKED_CHANNELS: set[str] = set()
"""Channel names `check_channels` has accepted (a graph has a few dozen; bounded)."""


def check_channels(channels: Iterable[Any]) -> None:
    """`check_id` each channel name, once per name (every ``put`` names the same ones).

    Raises:
        ConfigurationError: For a name no store can hold.
    """
    for channel in channels:
        if channel not in _CHECKED_CHANNELS:
            check_id(channel, "channel name")
            if len(_CHECKED_CHANNELS) >= 10_000:
                _CHECKED_CHANNELS.clear()
            _CHECKED_CHANNELS.add(channel)


def dump_versions(versions: ChannelVersions) -> str:
    """``channel_versions`` as compact JSON (see `compact_json`).

    Raises:
        ConfigurationError: For a version that is NaN or infinite.
    """
    return compact_json(versions, versions.values())


def compact_json(value: Any, scalars: Iterable[Any]) -> str:
    """``value`` as compact JSON: orjson, or ``json`` where orjson would differ: an int
    beyond 64 bits, or a float among ``scalars`` (orjson writes NaN and infinities as
    ``null``; they are refused instead).

    Raises:
        ConfigurationError: For a NaN or infinite float.
    """
    if any(type(item) is float for item in scalars):
        try:
            return json.dumps(value, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise ConfigurationError(
                "channel versions must be strings, integers or finite numbers, "
                f"not NaN or infinity: {value!r}"[:300]) from None
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


def encode_checkpoint(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> EncodedCheckpoint:
    """Split a ``put`` into body, versions, metadata and new channel values.

    Raises:
        ConfigurationError: For ids, channel names or metadata no store can hold
            (NUL in an id, a lone surrogate, metadata nested too deep): before
            anything is written.
    """
    target = target_of(config)
    check_id(checkpoint["id"], "checkpoint id")
    check_channels(checkpoint["channel_versions"])
    check_channels(new_versions)
    body = {
        k: v for k, v in checkpoint.items() if k not in ("channel_values", "channel_versions")
    }
    values = checkpoint["channel_values"]
    rows = [
        ChannelValueRow(channel, version, *serde.dumps_typed(values[channel]))
        if channel in values
        else ChannelValueRow(channel, version, EMPTY, b"")
        for channel, version in new_versions.items()
    ]
    body_type, body_bytes = serde.dumps_typed(body)
    stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
    run_id = stored_metadata.get("run_id")
    return EncodedCheckpoint(
        target=target,
        checkpoint_id=checkpoint["id"],
        parent_checkpoint_id=target.checkpoint_id,
        body_type=body_type,
        body=body_bytes,
        channel_versions=dump_versions(checkpoint["channel_versions"]),
        metadata=dump_json(stored_metadata),
        run_id=None if run_id is None else str(run_id),
        values=rows,
    )


class WriteRow(NamedTuple):
    task_id: str
    idx: int
    channel: str
    type: str
    value: bytes
    task_path: str


def encode_writes(
    serde: SerializerProtocol,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> list[WriteRow]:
    """Pending writes as rows; special channels (errors, interrupts) get negative indexes.

    A store inserts regular rows only when absent (a retried task does not
    duplicate its writes) and replaces special rows, as ``InMemorySaver`` does.

    Raises:
        ConfigurationError: For a task id, task path or channel no store can hold.
    """
    check_id(task_id, "task_id")
    check_id(task_path, "task_path")
    check_channels(channel for channel, _ in writes)
    rows = {
        WRITES_IDX_MAP.get(channel, idx): WriteRow(
            task_id, WRITES_IDX_MAP.get(channel, idx), channel, *serde.dumps_typed(value), task_path
        )
        for idx, (channel, value) in enumerate(writes)
    }
    return list(rows.values())  # one row per index: a repeated special channel keeps its last


# --- reading ------------------------------------------------------------------


class StoredWrite(NamedTuple):
    task_id: str
    channel: str
    type: str
    value: bytes
    idx: int
    task_path: str


class PathedWrite(tuple):
    """A pending write ``(task_id, channel, value)`` that also knows its ``task_path``.

    ``get_tuple`` returns these: they are plain 3-tuples to LangGraph, and let
    export and fork store the writes again in the same order (``put_writes``
    takes the path, but the public API never returns it).
    """

    task_path: str

    def __new__(cls, task_id: str, channel: str, value: Any, task_path: str) -> PathedWrite:
        write = super().__new__(cls, (task_id, channel, value))
        write.task_path = task_path
        return write

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (*self, self.task_path)


def decode_writes(serde: SerializerProtocol, rows: Iterable[StoredWrite]) -> list[PendingWrite]:
    """Pending writes in ``writes_sort_key`` order, as ``get_tuple`` must return them."""
    ordered = sorted(rows, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))
    return [
        PathedWrite(w.task_id, w.channel, serde.loads_typed((w.type, w.value)), w.task_path)
        for w in ordered
    ]


@dataclass
class StoredCheckpoint:
    """A checkpoint row as read back, before its values and writes are attached."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    body_type: str
    body: bytes
    channel_versions: str
    metadata: str

    def to_tuple(
        self,
        serde: SerializerProtocol,
        values: Mapping[tuple[str, Version], tuple[str, bytes]],
        writes: Iterable[StoredWrite],
        versions: ChannelVersions | None = None,
    ) -> CheckpointTuple:
        """Assemble the ``CheckpointTuple``.

        Args:
            serde: The saver's serializer.
            values: ``(channel, version) -> (type, bytes)`` for at least this
                checkpoint's channel versions; rows of type ``"empty"`` are skipped.
            writes: This checkpoint's pending writes, in any order.
            versions: ``channel_versions`` already parsed, if the caller has them.
        """
        if versions is None:
            versions = orjson.loads(self.channel_versions)
        channel_values = {}
        for channel, version in versions.items():
            stored = values.get((channel, version))
            if stored is not None and stored[0] != EMPTY:
                channel_values[channel] = serde.loads_typed(stored)
        checkpoint = cast(Checkpoint, {
            **serde.loads_typed((self.body_type, self.body)),
            "channel_versions": versions,
            "channel_values": channel_values,
        })
        target = Target(self.thread_id, self.checkpoint_ns, None)
        return CheckpointTuple(
            config=target.config(self.checkpoint_id),
            checkpoint=checkpoint,
            metadata=orjson.loads(self.metadata),
            parent_config=(
                target.config(self.parent_checkpoint_id) if self.parent_checkpoint_id else None
            ),
            pending_writes=decode_writes(serde, writes),
        )


def utc_datetime(seconds: float) -> datetime:
    """A timezone-aware UTC datetime from Unix seconds."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def thread_info(thread_id: str, created: float, updated: float, metadata: str | None) -> ThreadInfo:
    """A `ThreadInfo` from a registry row (Unix seconds, metadata JSON)."""
    return ThreadInfo(
        thread_id, utc_datetime(created), utc_datetime(updated), orjson.loads(metadata or "{}")
    )


def thread_stats(thread_id: str, checkpoints: int, checkpoint_bytes: int, writes: int,
                 write_bytes: int, channels: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """What ``stats(thread_id=...)`` returns, from a store's counts.

    Args:
        channels: ``(checkpoint_ns, channel, versions, stored bytes, rebuilt bytes)``
            per stored channel (`deltas.channel_totals`).
    """
    per_channel = sorted(
        ({"checkpoint_ns": ns, "channel": channel, "versions": int(versions),
          "bytes": int(size), "rebuilt_bytes": int(rebuilt)}
         for ns, channel, versions, size, rebuilt in channels),
        key=lambda c: (-c["bytes"], c["checkpoint_ns"], c["channel"]))
    channel_bytes = sum(c["bytes"] for c in per_channel)
    return {
        "thread_id": thread_id,
        "checkpoints": int(checkpoints),
        "checkpoint_bytes": int(checkpoint_bytes),
        "writes": int(writes),
        "write_bytes": int(write_bytes),
        "channel_values": sum(c["versions"] for c in per_channel),
        "channel_bytes": channel_bytes,
        "rebuilt_bytes": sum(c["rebuilt_bytes"] for c in per_channel),
        "bytes": int(checkpoint_bytes) + int(write_bytes) + channel_bytes,
        "channels": per_channel,
    }
