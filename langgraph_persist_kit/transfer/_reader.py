"""Reading the JSON Lines format of `_format`: checking each line, rebuilding threads.

Owns: validation of export files (line by line, with line numbers in every error) and
turning records back into ``CheckpointTuple``s with a saver's serde. No I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from langgraph.checkpoint.base import (
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.codec import PathedWrite
from langgraph_persist_kit._core.raw_values import RawValue
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.transfer._format import check_header


@dataclass(frozen=True)
class CheckpointRecord:
    """One ``checkpoint`` line, checked but not yet deserialised."""

    line: int
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    metadata: dict[str, Any]
    body: tuple[str, bytes]
    channel_versions: dict[str, str | int | float]
    channel_values: dict[str, tuple[str, bytes] | None]  # None: no value
    pending_writes: list[tuple[str, str, tuple[str, bytes], str | None]]


@dataclass(frozen=True)
class ThreadRecords:
    """A ``thread`` line and all of its ``checkpoint`` lines."""

    thread_id: str
    checkpoints: list[CheckpointRecord]


_NONE = object()
"""A channel that holds no value at some version."""


def _fail(line: int, message: str) -> ConfigurationError:
    return ConfigurationError(f"line {line}: {message}")


def _get(record: Mapping[str, Any], key: str, kind: type, line: int) -> Any:
    value = record.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _fail(line, f"field {key!r} is missing or has the wrong type ({value!r:.60})")
    return value


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> Any:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns,
                             "checkpoint_id": checkpoint_id}}


def _value(raw: Any, what: str, line: int) -> tuple[str, bytes]:
    if not isinstance(raw, Mapping):
        raise _fail(line, f"{what} must be an object of 'type' and 'data'")
    kind, data = _get(raw, "type", str, line), _get(raw, "data", str, line)
    try:
        return kind, base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise _fail(line, f"{what} holds data that is not base64") from exc


def _checkpoint_record(record: Mapping[str, Any], thread_id: str, line: int) -> CheckpointRecord:
    if record.get("type") != "checkpoint":
        raise _fail(line, f"expected a checkpoint of thread {thread_id!r}: the file is cut short "
                          f"or edited ({record.get('type')!r} record)")
    if _get(record, "thread_id", str, line) != thread_id:
        raise _fail(line, f"checkpoint of thread {record['thread_id']!r} inside {thread_id!r}")
    versions = _get(record, "channel_versions", dict, line)
    for channel, version in versions.items():
        if isinstance(version, bool) or not isinstance(version, str | int | float):
            raise _fail(line, f"channel {channel!r} has version {version!r}: want a str or int")
    values = _get(record, "channel_values", dict, line)
    if unversioned := sorted(set(values) - set(versions)):
        raise _fail(line, f"channel values without a version: {unversioned}")
    given = {ch: None if v is None else _value(v, f"channel {ch!r}", line)
             for ch, v in values.items()}
    writes = []
    for write in _get(record, "pending_writes", list, line):
        if not isinstance(write, Mapping):
            raise _fail(line, "each pending write must be an object")
        task_path = write.get("task_path")
        if task_path is not None and not isinstance(task_path, str):
            raise _fail(line, f"task_path must be a string, not {task_path!r}")
        writes.append((_get(write, "task_id", str, line), _get(write, "channel", str, line),
                       _value(write.get("value"), "a pending write's value", line), task_path))
    parent = record.get("parent_checkpoint_id")
    if parent is not None and not isinstance(parent, str):
        raise _fail(line, f"parent_checkpoint_id must be a string or null, not {parent!r}")
    return CheckpointRecord(
        line=line,
        checkpoint_ns=_get(record, "checkpoint_ns", str, line),
        checkpoint_id=_get(record, "checkpoint_id", str, line),
        parent_checkpoint_id=parent or None,
        metadata=_get(record, "metadata", dict, line),
        body=_value(record.get("checkpoint"), "the checkpoint body", line),
        channel_versions=versions,
        channel_values=given,
        pending_writes=writes,
    )


def numbered_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(line number, text)``; a file that is not UTF-8 text is a `ConfigurationError`."""
    iterator = iter(lines)
    number = 0
    while True:
        number += 1
        try:
            text = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise _fail(number, f"not UTF-8 text ({exc.reason}): not an export file") from exc
        yield number, text


def _records(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """``(line number, decoded JSON)`` of each non-blank line after the header."""
    numbered = numbered_lines(lines)
    first = next(numbered, None)
    if first is None:
        raise ConfigurationError("the input is empty: not a langgraph-persist-kit threads file")
    check_header(first[1])
    for number, text in numbered:
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise _fail(number, f"not valid JSON, the file may be truncated ({exc})") from exc
        except RecursionError as exc:
            raise _fail(number, "JSON nested too deeply: not an export file") from exc
        if not isinstance(record, dict):
            raise _fail(number, "each line must be a JSON object")
        yield number, record


def read_threads(lines: Iterable[str]) -> Iterator[ThreadRecords]:
    """Check an export file's lines and yield its threads, each once all of it was read.

    A thread is yielded only when every line of it is present and valid, so a
    truncated file never yields half a thread.

    Args:
        lines: The file's lines (a text file object works), header first.

    Raises:
        ConfigurationError: For input that is not this format, a newer format
            version, a line that is not valid JSON (a truncated file), a
            missing field, or a file that ends before its ``end`` record; the
            message names the line.
    """
    records = _records(lines)
    threads = checkpoints = 0
    last = 1  # the last line read
    for last, record in records:
        kind = record.get("type")
        if kind == "end":
            if record.get("threads") != threads or record.get("checkpoints") != checkpoints:
                raise _fail(last, f"the end record counts {record.get('threads')!r} threads and "
                                  f"{record.get('checkpoints')!r} checkpoints, the file holds "
                                  f"{threads} and {checkpoints}")
            for extra, _ in records:
                raise _fail(extra, "data after the end record")
            return
        if kind != "thread":
            raise _fail(last, f"expected a thread or end record, got {kind!r}")
        thread_id = _get(record, "thread_id", str, last)
        count = _get(record, "checkpoints", int, last)
        if count < 0:
            raise _fail(last, f"a thread cannot hold {count} checkpoints")
        items: list[CheckpointRecord] = []
        for _ in range(count):
            following = next(records, None)
            if following is None:
                raise ConfigurationError(
                    f"the file ends inside thread {thread_id!r} after {len(items)} of its "
                    f"{count} checkpoints (line {last}): it is truncated"
                )
            last = following[0]
            items.append(_checkpoint_record(following[1], thread_id, last))
        threads, checkpoints = threads + 1, checkpoints + count
        yield ThreadRecords(thread_id, items)
    raise ConfigurationError(f"the file ends after line {last} without its end record: "
                             "it is truncated")


def _loads(serde: SerializerProtocol, typed: tuple[str, bytes], what: str, line: int,
           decode: bool = False) -> Any:
    try:
        value = serde.loads_typed(typed)
        return value.decoded() if decode and isinstance(value, RawValue) else value
    except Exception as exc:  # any serde's failure: wrong key, unknown type, corrupt data
        raise _fail(line, f"this saver's serializer cannot read {what} (type {typed[0]!r}); "
                          f"import with the serde the file was exported with: {exc}") from exc


def to_tuples(serde: SerializerProtocol, thread: ThreadRecords) -> list[CheckpointTuple]:
    """Deserialise a thread's records with the target saver's serde.

    With a `RawSerde` (what `transfer` passes), values and writes stay
    `RawValue`s, never decoded; the body is decoded strictly.

    Each checkpoint gets the value of every channel in its ``channel_versions``:
    the one its line gives, else the last one given for that (namespace,
    channel, version) on an earlier line of the thread, else none. A value is
    deserialised once and shared by the checkpoints that hold it.

    Raises:
        ConfigurationError: When ``serde`` cannot read a value (e.g. the file was
            exported from an encrypted store with another key), or a body's id
            differs from its record's ``checkpoint_id``.
    """
    out = []
    known: dict[tuple[str, str, Any], Any] = {}  # (ns, channel, version) -> value or _NONE
    for r in thread.checkpoints:
        body = _loads(serde, r.body, "the checkpoint body", r.line, decode=True)
        if not isinstance(body, dict) or body.get("id") != r.checkpoint_id:
            raise _fail(r.line, f"the checkpoint body does not hold checkpoint {r.checkpoint_id!r}")
        values = {}
        for channel, version in r.channel_versions.items():
            key = (r.checkpoint_ns, channel, version)
            if channel in r.channel_values:
                typed = r.channel_values[channel]
                known[key] = _NONE if typed is None else _loads(
                    serde, typed, f"channel {channel!r}", r.line)
            if known.get(key, _NONE) is not _NONE:
                values[channel] = known[key]
        checkpoint = cast(Checkpoint, {**body, "channel_versions": dict(r.channel_versions),
                                       "channel_values": values})
        writes: list[PendingWrite] = [
            (task_id, channel, _loads(serde, v, "a write", r.line)) if path is None
            else PathedWrite(task_id, channel, _loads(serde, v, "a write", r.line), path)
            for task_id, channel, v, path in r.pending_writes
        ]

        parent = r.parent_checkpoint_id
        out.append(CheckpointTuple(
            config=_config(thread.thread_id, r.checkpoint_ns, r.checkpoint_id),
            checkpoint=checkpoint,
            metadata=cast(CheckpointMetadata, r.metadata),
            parent_config=_config(thread.thread_id, r.checkpoint_ns, parent) if parent else None,
            pending_writes=writes,
        ))
    return out
