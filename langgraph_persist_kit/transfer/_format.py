"""The JSON Lines format of exported threads, version 1: writing it.

Owns: the lines an export writes, the order of a thread's checkpoints in it,
the header check, and the task paths imported pending writes get; depends
on: `errors`, ``langgraph.checkpoint``'s serializers (the saver's, and the plain
one to compare values under encryption). No I/O:
`transfer` writes the lines, `_reader` reads them back.

A file is one JSON object per line (ASCII only, compact, keys of free-form
objects sorted, so the same logical thread gives the same bytes whichever
backend held it)::

    {"format":"langgraph-persist-kit/threads","version":1}
    {"type":"thread","thread_id":"t-1","checkpoints":2}
    {"type":"checkpoint","thread_id":"t-1","checkpoint_ns":"","checkpoint_id":"1ef...", ...}
    {"type":"checkpoint", ...}
    {"type":"end","threads":1,"checkpoints":2}

The README ("Export, import and copy") documents each field.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    CheckpointTuple,
    PendingWrite,
    writes_sort_key,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_persist_kit._core.codec import PathedWrite
from langgraph_persist_kit._core.raw_values import RawValue
from langgraph_persist_kit.errors import ConfigurationError

FORMAT = "langgraph-persist-kit/threads"
"""The ``format`` of an export file's header line."""

VERSION = 1
"""The format version this package writes and the newest it reads."""

NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"
"""LangGraph's task id for writes made outside a task (``update_state``, ``Command``)."""

_BODY_LEAVES = ("channel_values", "channel_versions")  # stored beside the body, not in it


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True, allow_nan=False) + "\n"


def _sorted(value: Any) -> Any:
    """``value`` with the keys of every dict in it sorted (stores may reorder JSON keys)."""
    if isinstance(value, Mapping):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(item) for item in value]
    return value


# --- writing ----------------------------------------------------------------------


def header_line() -> str:
    """The first line of every export file."""
    return _line({"format": FORMAT, "version": VERSION})


def end_line(threads: int, checkpoints: int) -> str:
    """The last line: how many threads and checkpoints the file holds."""
    return _line({"type": "end", "threads": threads, "checkpoints": checkpoints})


_NO_VALUE = object()
_PLAIN = JsonPlusSerializer()


def _same_value(a: Any, b: Any) -> bool:
    """Whether two values serialise alike with LangGraph's plain serializer.

    For serdes whose output differs on every call (encryption's random nonce),
    so that an encrypted export gives each value once too. `RawValue`s (what
    `transfer` reads) are the same when their decrypted bytes are.
    """
    if a is _NO_VALUE or b is _NO_VALUE:
        return a is b
    if isinstance(a, RawValue) or isinstance(b, RawValue):  # compared as plaintext bytes
        return a == b
    try:
        return _PLAIN.dumps_typed(a) == _PLAIN.dumps_typed(b)
    except Exception:  # a type only the saver's own serde knows: count it as new
        return False


def _typed(serde: SerializerProtocol, value: Any) -> dict[str, str]:
    kind, data = serde.dumps_typed(value)
    return {"type": kind, "data": base64.b64encode(data).decode("ascii")}


def _checkpoint_id(config: Any) -> str | None:
    return (config or {}).get("configurable", {}).get("checkpoint_id") or None


def order_checkpoints(tuples: Iterable[CheckpointTuple]) -> list[CheckpointTuple]:
    """A thread's checkpoints in file order: by namespace, then id, parents before children.

    The root namespace ``""`` comes first. Ids are LangGraph's time-ordered
    uuid6 strings, so id order is creation order; a parent with a greater id
    (a hand-written thread) is still moved before its children.
    """
    by_key = {(t.config["configurable"].get("checkpoint_ns", ""), _checkpoint_id(t.config)): t
              for t in tuples}
    ordered: list[CheckpointTuple] = []
    placed: set[tuple[str, str | None]] = set()
    for key in sorted(by_key, key=lambda k: (k[0], k[1] or "")):
        chain = []
        while key in by_key and key not in placed:
            placed.add(key)  # before walking on: a cycle of parent links ends here
            chain.append(by_key[key])
            key = (key[0], _checkpoint_id(by_key[key].parent_config))
        ordered.extend(reversed(chain))
    return ordered


def thread_lines(
    serde: SerializerProtocol, thread_id: str, tuples: Sequence[CheckpointTuple]
) -> list[str]:
    """The ``thread`` line and one ``checkpoint`` line per tuple (already in file order).

    A channel value is written once per (namespace, channel, version), in the
    first checkpoint line that holds it; later lines with that version give
    none (as the stores keep it). Values are the same when their serialised
    bytes are, or (for a serde such as encryption whose bytes differ on every
    call) when LangGraph's plain serializer gives equal bytes. A value that
    differs at the same version (a saver whose versions repeat across
    branches) is written again, and ``null`` marks a channel that holds no
    value where the version last had one.

    Args:
        serde: The source saver's serializer: values are written as its
            ``dumps_typed`` gives them (ciphertext for an ``EncryptedSerializer``).
        thread_id: The thread's id.
        tuples: Its checkpoints, as `order_checkpoints` returns them.

    Raises:
        ConfigurationError: When a checkpoint's metadata is not JSON.
    """
    lines = [_line({"type": "thread", "thread_id": thread_id, "checkpoints": len(tuples)})]
    given: dict[tuple[str, str, Any], tuple[dict[str, str] | None, Any]] = {}  # typed, value
    for t in tuples:
        checkpoint = t.checkpoint
        ns = t.config["configurable"].get("checkpoint_ns", "")
        body = {key: value for key, value in checkpoint.items() if key not in _BODY_LEAVES}
        if isinstance(body.get("versions_seen"), Mapping):
            body["versions_seen"] = _sorted(body["versions_seen"])
        values = checkpoint["channel_values"]
        versions = _sorted(checkpoint["channel_versions"])
        new_values = {}
        for channel, version in versions.items():
            key, value = (ns, channel, version), values.get(channel, _NO_VALUE)
            typed = None if value is _NO_VALUE else _typed(serde, value)
            known, known_value = given.get(key, (None, _NO_VALUE))
            if known != typed and not _same_value(known_value, value):
                new_values[channel] = typed
                given[key] = (typed, value)
        record = {
            "type": "checkpoint",
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": _checkpoint_id(t.parent_config),
            "metadata": _sorted(t.metadata),
            "checkpoint": _typed(serde, {key: body[key] for key in sorted(body)}),
            "channel_versions": versions,
            "channel_values": new_values,
            "pending_writes": [_write_record(serde, write) for write in t.pending_writes or ()],
        }
        try:
            lines.append(_line(record))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"thread {thread_id!r}, checkpoint {checkpoint['id']!r}: metadata is not "
                f"JSON, so it cannot be exported: {exc}"
            ) from exc
    return lines


def _write_record(serde: SerializerProtocol, write: PendingWrite) -> dict[str, Any]:
    task_id, channel, value = write
    record = {"task_id": task_id, "channel": channel, "value": _typed(serde, value)}
    if (task_path := getattr(write, "task_path", None)) is not None:
        record["task_path"] = task_path
    return record


def with_task_paths(saver: Any, tuples: list[CheckpointTuple]) -> list[CheckpointTuple]:
    """``tuples`` with each pending write knowing its task path, where the saver keeps it.

    This package's savers return `PathedWrite`s already. LangGraph's
    ``InMemorySaver`` keeps the paths in its ``writes`` dict, read here; other
    savers' writes are returned as they are (`write_groups` then numbers them).
    """
    store = getattr(saver, "writes", None) if isinstance(saver, InMemorySaver) else None
    if store is None:
        return tuples
    out = []
    for t in tuples:
        c = t.config["configurable"]
        kept = store.get((c["thread_id"], c.get("checkpoint_ns", ""), c["checkpoint_id"]), {})
        ordered = sorted(kept.items(), key=lambda item: writes_sort_key(
            item[1][3], item[0][0], item[0][1]))
        writes = list(t.pending_writes or ())
        rows = [row for _key, row in ordered]
        if len(rows) == len(writes) and all(
                w[0] == row[0] and w[1] == row[1] for w, row in zip(writes, rows, strict=True)):
            t = t._replace(pending_writes=[PathedWrite(*w, row[3])
                                           for w, row in zip(writes, rows, strict=True)])
        out.append(t)
    return out


# --- the header -------------------------------------------------------------------


def check_header(text: str) -> None:
    """Check the first line of an export file.

    Raises:
        ConfigurationError: For a line that is not this format's header, or
            the header of a newer format version.
    """
    try:
        header = json.loads(text)
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ConfigurationError(
            f"not a langgraph-persist-kit threads file: line 1 should be "
            f'{{"format": "{FORMAT}", "version": {VERSION}}}, got {text.strip()!r:.80}'
        )
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigurationError(f"line 1: format version {version!r} is not valid")
    if version > VERSION:
        raise ConfigurationError(
            f"the file has format version {version}, written by a newer langgraph-persist-kit; "
            f"this one reads version {VERSION} at most: upgrade the package"
        )


# --- task paths of imported writes -------------------------------------------------


def write_groups(writes: Sequence[PendingWrite]) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    """Split a checkpoint's pending writes into ``put_writes`` calls that keep their order.

    Savers return pending writes sorted by ``(task_path, task_id, idx)``. Each
    run of consecutive writes of one task becomes one call (its ``idx`` is the
    position in the call). A write that knows its task path (`PathedWrite`: this
    package's savers, ``InMemorySaver`` through `with_task_paths`, a file that
    carries ``task_path``) keeps it, so writes a graph adds later sort as on the
    source. Otherwise the public API does not expose the path, and the calls get
    task paths that sort in file order: ``""`` for a leading run of LangGraph's
    null task (the path LangGraph gives it, so later ``Command`` writes continue
    it as on the source), else the run's zero-padded position ``"00000000"``,
    ``"00000001"``, ... (below LangGraph's own paths, which start with ``~``).

    Args:
        writes: A checkpoint's pending writes ``(task_id, channel, value)``, in
            ``get_tuple`` order.

    Returns:
        ``(task_path, task_id, [(channel, value), ...])`` per call, in order.

    Raises:
        ConfigurationError: When one task's writes are split by another's in a
            way no ``put_writes`` order can reproduce (a saver's ``(task_id, idx)``
            key would collide); LangGraph never writes such threads.
    """
    runs: list[tuple[str, list[tuple[str, Any]]]] = []
    paths: list[str | None] = []
    for write in writes:
        task_id, channel, value = write
        path = getattr(write, "task_path", None)
        if not runs or runs[-1][0] != task_id or paths[-1] != path:
            runs.append((task_id, []))
            paths.append(path)
        runs[-1][1].append((channel, value))
    width = max(8, len(str(len(runs))))
    used: set[tuple[str, int]] = set()
    groups = []
    for position, (task_id, run) in enumerate(runs):
        keys = [(task_id, WRITES_IDX_MAP.get(channel, idx)) for idx, (channel, _) in
                enumerate(run)]
        order = [key[1] for key in keys]
        if used.intersection(keys) or len(set(keys)) != len(keys) or order != sorted(order):
            raise ConfigurationError(
                f"the pending writes of task {task_id!r} cannot be stored in their exported order"
            )
        used.update(keys)
        path = paths[position]
        if path is None:
            path = "" if position == 0 and task_id == NULL_TASK_ID else f"{position:0{width}d}"
        groups.append((path, task_id, run))
    return groups
