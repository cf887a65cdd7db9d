"""Every storage operation of the SQLite savers, as a plan both drivers run.

Owns: which statements each operation executes and how their rows become
results; depends on: `queries.sql`, `_codec`, `_delta`, `_migrations`, `_plan`.

The ``{where}`` fragments below are constants of this module; user input only
ever reaches SQLite as bound parameters.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._codec import (
    FilterTerm,
    StoredCheckpoint,
    StoredWrite,
    Target,
    encode_checkpoint,
    encode_writes,
    filter_terms,
    target_of,
    thread_info,
)
from langgraph_persist_kit._delta import FIRST_ROUND_DEPTH, AncestorWalk, delta_channels
from langgraph_persist_kit._migrations import load_migrations, migrate
from langgraph_persist_kit._plan import Emit, Plan, Query
from langgraph_persist_kit._queries import load_queries
from langgraph_persist_kit.errors import ConfigurationError

Q = load_queries("langgraph_persist_kit.sqlite")

PAGE_SIZE = 100
"""Checkpoints (or threads) fetched per round trip by iterating methods."""

ROWS_PER_STATEMENT = 500
"""Rows per multi-row INSERT; far below SQLite's 32,766 bound parameters."""


def split_statements(script: str) -> list[str]:
    """Split a migration file into statements (trigger bodies stay whole)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(
        line.strip().startswith("--") or not line.strip() for line in current.splitlines()
    ):
        raise ValueError(f"incomplete statement at the end of a migration: {current!r}")
    return statements


MIGRATIONS = load_migrations("langgraph_persist_kit.sqlite.migrations", split_statements)


def setup() -> Plan[int]:
    """Apply pending migrations (the driver holds ``BEGIN IMMEDIATE``)."""
    return migrate(MIGRATIONS, Q)


# --- where-clause fragments ------------------------------------------------------

_LATEST = (
    "checkpoint_id = (SELECT max(checkpoint_id) FROM checkpoints"
    " WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns)"
)
_AFTER_PAGE = "(checkpoint_id, thread_id, checkpoint_ns) < (:page_id, :page_thread, :page_ns)"
_THREADS_AFTER_PAGE = "(updated_at, thread_id) < (:page_updated, :page_thread)"
_FILTERS = {
    "scalar": "EXISTS (SELECT 1 FROM json_each({column}) AS m WHERE m.key = :{key}"
    " AND m.value = :{value} AND m.type NOT IN ('object', 'array'))",
    "json": "EXISTS (SELECT 1 FROM json_each({column}) AS m WHERE m.key = :{key}"
    " AND m.value = :{value} AND m.type IN ('object', 'array'))",
    "null": "NOT EXISTS (SELECT 1 FROM json_each({column}) AS m WHERE m.key = :{key}"
    " AND m.type <> 'null')",
}


def _filter_clauses(terms: list[FilterTerm], column: str, params: dict[str, Any]) -> list[str]:
    clauses = []
    for i, term in enumerate(terms):
        params[f"filter_key_{i}"] = term.key
        params[f"filter_value_{i}"] = term.value
        clauses.append(
            _FILTERS[term.kind].format(column=column, key=f"filter_key_{i}",
                                       value=f"filter_value_{i}")
        )
    return clauses


def _rows_sql(name: str, width: int, count: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return Q[name].format(rows=", ".join([row] * count))


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- reading checkpoints ----------------------------------------------------------


def _assemble(serde: SerializerProtocol, rows: list[Sequence[Any]]) -> list[CheckpointTuple]:
    """Turn `select_checkpoints` rows into tuples, newest first."""
    checkpoints: list[StoredCheckpoint] = []
    values: dict[tuple[str, str], dict[Any, tuple[str, bytes]]] = defaultdict(dict)
    writes: dict[tuple[str, str, str], list[StoredWrite]] = defaultdict(list)
    for kind, a, b, c, d, e, f, g, h, i in rows:
        if kind == 0:
            checkpoints.append(StoredCheckpoint(a, b, c, d, e, f, g, h))
        elif kind == 1:
            values[(a, b)][(c, d)] = (e, f)
        else:
            writes[(a, b, c)].append(StoredWrite(d, e, f, g, h, i))
    checkpoints.sort(
        key=lambda cp: (cp.checkpoint_id, cp.thread_id, cp.checkpoint_ns), reverse=True
    )
    return [
        cp.to_tuple(
            serde,
            values[(cp.thread_id, cp.checkpoint_ns)],
            writes[(cp.thread_id, cp.checkpoint_ns, cp.checkpoint_id)],
        )
        for cp in checkpoints
    ]


_IN_NAMESPACE = "thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND "
_GET_BY_ID = Q["select_checkpoints"].format(where=_IN_NAMESPACE + "checkpoint_id = :checkpoint_id")
_GET_LATEST = Q["select_checkpoints"].format(where=_IN_NAMESPACE + _LATEST)


def get_tuple(serde: SerializerProtocol, config: RunnableConfig) -> Plan[CheckpointTuple | None]:
    """The named checkpoint (or the namespace's latest) in one query."""
    target = target_of(config)
    rows = yield Query(
        _GET_BY_ID if target.checkpoint_id else _GET_LATEST,
        {
            "thread_id": target.thread_id,
            "checkpoint_ns": target.checkpoint_ns,
            "checkpoint_id": target.checkpoint_id,
            "limit": 1,
        },
    )
    tuples = _assemble(serde, rows)
    return tuples[0] if tuples else None


def list_checkpoints(
    serde: SerializerProtocol,
    config: RunnableConfig | None,
    *,
    filter: Mapping[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
) -> Plan[None]:
    """Emit matching checkpoints newest first, a page per query."""
    params: dict[str, Any] = {}
    clauses = []
    configurable = (config or {}).get("configurable") or {}
    if configurable.get("thread_id") is not None:
        params["thread_id"] = str(configurable["thread_id"])
        clauses.append("thread_id = :thread_id")
    if configurable.get("checkpoint_ns") is not None:
        params["checkpoint_ns"] = configurable["checkpoint_ns"]
        clauses.append("checkpoint_ns = :checkpoint_ns")
    if configurable.get("checkpoint_id"):
        params["checkpoint_id"] = configurable["checkpoint_id"]
        clauses.append("checkpoint_id = :checkpoint_id")
    before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
    if before_id:
        params["before"] = before_id
        clauses.append("checkpoint_id < :before")
    clauses += _filter_clauses(filter_terms(filter), "metadata", params)
    remaining = limit
    first_page_sql = Q["select_checkpoints"].format(where=" AND ".join(clauses) or "1")
    next_page_sql = Q["select_checkpoints"].format(where=" AND ".join([*clauses, _AFTER_PAGE]))
    sql = first_page_sql
    while remaining is None or remaining > 0:
        size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
        tuples = _assemble(serde, (yield Query(sql, {**params, "limit": size})))
        yield Emit(tuples)
        if len(tuples) < size:
            return
        last = tuples[-1].config["configurable"]
        params.update(
            page_id=last["checkpoint_id"],
            page_thread=last["thread_id"],
            page_ns=last["checkpoint_ns"],
        )
        sql = next_page_sql
        if remaining is not None:
            remaining -= len(tuples)


def list_threads(*, filter: Mapping[str, Any] | None, limit: int | None) -> Plan[None]:
    """Emit `ThreadInfo` rows of the registry, newest-updated first."""
    params: dict[str, Any] = {}
    clauses = _filter_clauses(filter_terms(filter), "metadata", params)
    remaining = limit
    sql = Q["select_threads"].format(where=" AND ".join(clauses) or "1")
    next_sql = Q["select_threads"].format(where=" AND ".join([*clauses, _THREADS_AFTER_PAGE]))
    while remaining is None or remaining > 0:
        size = PAGE_SIZE * 10 if remaining is None else min(PAGE_SIZE * 10, remaining)
        rows = yield Query(sql, {**params, "limit": size})
        yield Emit([thread_info(*row) for row in rows])
        if len(rows) < size:
            return
        params.update(page_updated=rows[-1][2], page_thread=rows[-1][0])
        sql = next_sql
        if remaining is not None:
            remaining -= len(rows)


# --- writing ----------------------------------------------------------------------


def put(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> Plan[RunnableConfig]:
    """Store the new channel values, then the checkpoint row (run in a transaction)."""
    enc = encode_checkpoint(serde, config, checkpoint, metadata, new_versions)
    target = enc.target
    for chunk in _chunks(enc.values, ROWS_PER_STATEMENT):
        params = [p for row in chunk for p in (target.thread_id, target.checkpoint_ns, *row)]
        yield Query(_rows_sql("insert_channel_values", 6, len(chunk)), params)
    yield Query(
        Q["insert_checkpoint"],
        {
            "thread_id": target.thread_id,
            "checkpoint_ns": target.checkpoint_ns,
            "checkpoint_id": enc.checkpoint_id,
            "parent_checkpoint_id": enc.parent_checkpoint_id,
            "type": enc.body_type,
            "checkpoint": enc.body,
            "channel_versions": enc.channel_versions,
            "metadata": enc.metadata,
            "run_id": enc.run_id,
            "created_at": time.time(),
        },
    )
    return enc.config


def put_writes(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> Plan[None]:
    """Store pending writes; up to `ROWS_PER_STATEMENT` in one atomic statement."""
    target = target_of(config, need_checkpoint_id=True)
    rows = encode_writes(serde, writes, task_id, task_path)
    now = time.time()
    for chunk in _chunks(rows, ROWS_PER_STATEMENT):
        params = [
            p
            for row in chunk
            for p in (target.thread_id, target.checkpoint_ns, target.checkpoint_id, *row, now)
        ]
        yield Query(_rows_sql("insert_writes", 10, len(chunk)), params)


def delete_thread(thread_id: str) -> Plan[None]:
    """Remove every row of one thread (run in a transaction)."""
    for name in (
        "delete_thread_writes",
        "delete_thread_checkpoints",
        "delete_thread_channel_values",
        "delete_thread_registry",
    ):
        yield Query(Q[name], {"thread_id": str(thread_id)})


def copy_thread(source: str, target: str) -> Plan[None]:
    """Copy every row of ``source`` to ``target`` with three INSERT ... SELECT."""
    params = {"source": str(source), "target": str(target), "now": time.time()}
    for name in ("copy_thread_channel_values", "copy_thread_checkpoints", "copy_thread_writes"):
        yield Query(Q[name], params)


def _forget_unreferenced(thread_ids: str) -> Plan[None]:
    """After deleting checkpoints of ``thread_ids`` (JSON): drop orphan values, fix the registry."""
    params = {"thread_ids": thread_ids}
    for name in ("delete_unreferenced_channel_values", "refresh_threads", "delete_empty_threads"):
        yield Query(Q[name], params)


def delete_for_runs(run_ids: Sequence[str]) -> Plan[None]:
    """Remove the checkpoints (and their writes) created by ``run_ids``."""
    if not run_ids:
        return
    params = {"run_ids": json.dumps([str(r) for r in run_ids])}
    rows = yield Query(Q["select_run_threads"], params)
    yield Query(Q["delete_run_writes"], params)
    yield Query(Q["delete_run_checkpoints"], params)
    yield from _forget_unreferenced(json.dumps([row[0] for row in rows]))


def _walk(target: Target, walk: AncestorWalk) -> Plan[None]:
    """Run `walk_ancestors` rounds of growing depth until the walk is done."""
    start, depth = target.checkpoint_id, FIRST_ROUND_DEPTH
    channels = json.dumps(walk.channels)
    while start is not None:
        rows = yield Query(
            Q["walk_ancestors"],
            {
                "thread_id": target.thread_id,
                "checkpoint_ns": target.checkpoint_ns,
                "checkpoint_id": start,
                "depth": depth,
                "channels": channels,
            },
        )
        start = walk.feed(rows, depth)
        depth *= 8


def prune(thread_ids: Sequence[str], strategy: str) -> Plan[None]:
    """``"delete"``: remove the threads. ``"keep_latest"``: keep each namespace's
    latest checkpoint plus the ancestors its DeltaChannel values are rebuilt from."""
    if strategy == "delete":
        for thread_id in thread_ids:
            yield from delete_thread(thread_id)
        return
    if strategy != "keep_latest":
        raise ConfigurationError(
            f"prune strategy must be 'keep_latest' or 'delete', not {strategy!r}"
        )
    if not thread_ids:
        return
    ids_json = json.dumps([str(t) for t in thread_ids])
    latest = yield Query(Q["select_latest_per_namespace"], {"thread_ids": ids_json})
    for thread_id, checkpoint_ns, checkpoint_id, metadata in latest:
        keep = [checkpoint_id]
        channels = delta_channels(json.loads(metadata))
        if channels:
            walk = AncestorWalk(channels)
            yield from _walk(Target(thread_id, checkpoint_ns, checkpoint_id), walk)
            keep += walk.checkpoint_ids()
        params = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "keep": json.dumps(keep)}
        yield Query(Q["delete_writes_except"], params)
        yield Query(Q["delete_checkpoints_except"], params)
    yield from _forget_unreferenced(ids_json)


def delta_history(
    serde: SerializerProtocol, config: RunnableConfig, channels: Sequence[str]
) -> Plan[dict[str, DeltaChannelHistory]]:
    """``get_delta_channel_history``: walk rounds, then one query for seeds and writes."""
    if not channels:
        return {}
    target = target_of(config)
    if target.checkpoint_id is None:
        latest = yield Query(
            Q["select_latest_checkpoint_id"],
            {"thread_id": target.thread_id, "checkpoint_ns": target.checkpoint_ns},
        )
        target = Target(target.thread_id, target.checkpoint_ns, latest[0][0])
    walk = AncestorWalk(channels)
    yield from _walk(target, walk)
    checkpoint_ids = walk.checkpoint_ids()
    if not checkpoint_ids:
        return walk.history(serde, {}, [])
    rows = yield Query(
        Q["select_delta_history"],
        {
            "thread_id": target.thread_id,
            "checkpoint_ns": target.checkpoint_ns,
            "seeds": json.dumps([[ch, v] for ch, v in walk.seeds.items()]),
            "checkpoint_ids": json.dumps(checkpoint_ids),
            "channels": json.dumps(list(channels)),
        },
    )
    seeds = {(row[1], row[2]): (row[3], row[4]) for row in rows if row[0] == 0}
    writes = [row[1:] for row in rows if row[0] == 1]
    return walk.history(serde, seeds, writes)
