"""The SQLite dialect of the SQL plans.

Owns: SQLite's ``{where}`` fragments, parameter binding, metadata filters and its
``put`` / ``put_writes`` statements.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.checks import FilterTerm
from langgraph_persist_kit._core.codec import (
    Version,
    encode_checkpoint,
    encode_writes,
    target_of,
    thread_info,
)
from langgraph_persist_kit._core.deltas import AppendDeltas, stored_values
from langgraph_persist_kit._core.plan import Query, SqlPlan
from langgraph_persist_kit._core.versioning import put_head, stale
from langgraph_persist_kit._sql.migrations import load_migrations, migrate
from langgraph_persist_kit._sql.plans import SqlPlans
from langgraph_persist_kit._sql.queries import load_queries
from langgraph_persist_kit.types import ThreadInfo

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
    if any(line.strip() and not line.strip().startswith("--") for line in current.splitlines()):
        raise ValueError(f"incomplete statement at the end of a migration: {current!r}")
    return statements


_FILTERS = {
    "scalar": "EXISTS (SELECT 1 FROM json_each({column}) AS m WHERE m.key = :{key}"
    " AND m.value = :{value} AND m.type NOT IN ('object', 'array'))",
    "json": "EXISTS (SELECT 1 FROM json_each({column}) AS m WHERE m.key = :{key}"
    " AND m.value = :{value} AND m.type IN ('object', 'array'))",
    "null": "NOT EXISTS (SELECT 1 FROM json_each({column}) AS m WHERE m.key = :{key}"
    " AND m.type <> 'null')",
    "never": "FALSE",
}


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SqlitePlans(SqlPlans):
    """SQLite: named ``:param`` parameters, lists bound as JSON arrays, REAL Unix times."""

    queries = load_queries("langgraph_persist_kit.sqlite")
    migrations = load_migrations("langgraph_persist_kit.sqlite.migrations", split_statements)
    LATEST = (
        "checkpoint_id = (SELECT max(checkpoint_id) FROM checkpoints"
        " WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns)"
    )
    COPY_THREAD = ("copy_thread_channel_values", "copy_thread_checkpoints", "copy_thread_writes")
    ATOMIC_PUT = False  # channel values, then the checkpoint row
    WRITES_PER_STATEMENT = ROWS_PER_STATEMENT
    LOCKS_THREADS = False  # BEGIN IMMEDIATE already excludes other writers

    def _param(self, name: str) -> str:
        return ":" + name

    def array(self, items: Sequence[Any]) -> str:
        return json.dumps(list(items))

    def decode_version(self, stored: Any) -> Version:
        return stored  # the column has no affinity: ints, floats, strings as stored

    def filter_clause(self, term: FilterTerm, column: str, n: int, params: dict[str, Any]) -> str:
        params[f"filter_key_{n}"] = term.key
        params[f"filter_value_{n}"] = term.value
        return _FILTERS[term.kind].format(
            column=column, key=f"filter_key_{n}", value=f"filter_value_{n}"
        )

    def thread_info(self, row: Sequence[Any]) -> ThreadInfo:
        return thread_info(*row)

    def setup(self) -> SqlPlan[int]:
        """Apply pending migrations (the driver holds ``BEGIN IMMEDIATE``)."""
        return migrate(self.migrations, self.queries)

    def _rows_sql(self, name: str, width: int, count: int) -> str:
        row = "(" + ", ".join("?" * width) + ")"
        return self.queries[name].format(rows=", ".join([row] * count))

    def put(self, serde: SerializerProtocol, config: RunnableConfig, checkpoint: Checkpoint,
            metadata: CheckpointMetadata, new_versions: ChannelVersions,
            deltas: AppendDeltas | None = None) -> SqlPlan[RunnableConfig]:
        """Store the new channel values, then the checkpoint row (run in a transaction).

        In a versioned run, first compare the thread's head with the parent
        (`versioning.put_head`): the transaction holds SQLite's write lock. List values
        that extend a stored version are stored as pieces (``deltas``), if the versions
        they extend are still stored; otherwise whole.
        """
        enc = encode_checkpoint(serde, config, checkpoint, metadata, new_versions)
        target = enc.target
        values = stored_values(deltas, target.thread_id, target.checkpoint_ns, enc.values)
        compare, parent = put_head(config)
        if compare:
            rows = yield Query(self.queries["select_head"], {"thread_id": target.thread_id})
            head = rows[0][0] if rows else None
            if head not in (parent, enc.checkpoint_id):  # the latter: a put retried
                raise stale(target.thread_id, parent, head)
        if values.has_pieces:
            bases = values.bases()
            found = yield Query(self.queries["select_bases"], {
                "thread_id": target.thread_id, "checkpoint_ns": target.checkpoint_ns,
                "channels": self.array([channel for channel, _ in bases]),
                "versions": self.array([json.dumps(version) for _, version in bases]),
            })
            if len(found) < len(bases):
                values.whole_rows()
        written: set[str] = set()
        for chunk in _chunks(values.rows, ROWS_PER_STATEMENT):
            params = [p for row in chunk for p in (target.thread_id, target.checkpoint_ns, *row)]
            rows = yield Query(self._rows_sql("insert_channel_values", 9, len(chunk)), params)
            written.update(row[0] for row in rows)
        yield Query(self.queries["insert_checkpoint"], {**enc.params(), "created_at": time.time()})
        values.stored(kept={row.channel for row in values.rows} - written)
        return enc.config

    def put_writes(self, serde: SerializerProtocol, config: RunnableConfig,
                   writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str) -> SqlPlan[None]:
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
            yield Query(self._rows_sql("insert_writes", 10, len(chunk)), params)


PLANS = SqlitePlans()
