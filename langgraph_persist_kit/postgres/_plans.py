"""The PostgreSQL dialect of the SQL plans, for one schema.

Owns: Postgres's ``{where}`` fragments, parameter binding, JSONB metadata filters and
its one-statement ``put`` / ``put_writes``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson
import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg import sql

from langgraph_persist_kit._core.checks import FilterTerm, dump_json, refuse_nul
from langgraph_persist_kit._core.codec import (
    Version,
    compact_json,
    encode_checkpoint,
    encode_writes,
    target_of,
)
from langgraph_persist_kit._core.deltas import AppendDeltas, DeltaPut, stored_values
from langgraph_persist_kit._core.plan import Query, SqlPlan
from langgraph_persist_kit._core.versioning import put_head, stale
from langgraph_persist_kit._sql.migrations import Migration, load_migrations, migrate, refuse_newer
from langgraph_persist_kit._sql.plans import SqlPlans
from langgraph_persist_kit._sql.queries import load_queries
from langgraph_persist_kit.postgres._common import advisory_key, check_schema
from langgraph_persist_kit.types import ThreadInfo

_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?(?:\n|$)")


def split_statements(script: str) -> list[str]:
    """Split a migration file into its statements, one per ``;`` at the end of a line.

    One statement per execute: a caller's connection with ``prepare_threshold=0``
    (LangGraph's documented setting) prepares every statement, and PostgreSQL
    cannot prepare several at once.

    Raises:
        ValueError: For dollar-quoted bodies (``$$``), which this split cannot see
            into, or text after the last ``;``.
    """
    if "$$" in script:
        raise ValueError("a Postgres migration must not use $$ bodies: split_statements")
    *statements, rest = _STATEMENT_END.split(script)
    if any(line.strip() and not line.strip().startswith("--") for line in rest.splitlines()):
        raise ValueError(f"incomplete statement at the end of a migration: {rest!r}")
    return [s.strip() for s in statements if s.strip()]


_QUERIES = load_queries("langgraph_persist_kit.postgres")
_MIGRATIONS = load_migrations("langgraph_persist_kit.postgres.migrations", split_statements)


def quote_schema(schema: str) -> str:
    """``schema`` as a quoted identifier, composed once by psycopg (``sql.Identifier``)
    into every statement of the schema's `PostgresPlans`.

    Raises:
        ConfigurationError: Unless it is a plain identifier (`_common.check_schema`).
    """
    return sql.Identifier(check_schema(schema)).as_string(None)


class PostgresPlans(SqlPlans):
    """Postgres: ``%(name)s`` parameters, lists bound as arrays, JSONB metadata."""

    LATEST = "TRUE"  # select_checkpoints orders newest first and takes one
    COPY_THREAD = (
        "copy_thread_channel_values",
        "copy_thread_checkpoints",
        "copy_thread_writes",
        "copy_thread_registry",
    )
    ATOMIC_PUT = True
    WRITES_PER_STATEMENT = None
    LOCKS_THREADS = True  # row locks: concurrent puts to those threads wait

    def __init__(self, schema: str) -> None:
        quoted = quote_schema(schema)
        self.schema = schema
        self.migrations_table = f"{quoted}.persist_kit_migrations"
        self.queries = {name: sql.replace("{schema}", quoted) for name, sql in _QUERIES.items()}
        self.migrations = [
            Migration(m.version, m.name, tuple(s.replace("{schema}", quoted) for s in m.statements))
            for m in _MIGRATIONS
        ]
        self.setup_lock_key = advisory_key(f"langgraph-persist-kit setup {schema}")
        insert = self.queries["insert_checkpoint"]
        self.put_sql = {  # by head (any put, or a versioned run's: see _core/versioning.py)
            (head, pieces):  # and by whether the put has pieces
            insert.replace("{head}", self.queries[f"head_{head}"]).replace(
                "{bases}", self.queries["bases_some" if pieces else "bases_none"])
            for head in ("any", "after_parent", "first") for pieces in (True, False)
        }

    def _param(self, name: str) -> str:
        return f"%({name})s"

    def array(self, items: Sequence[Any]) -> list[Any]:
        return list(items)

    def decode_version(self, stored: Any) -> Version:
        return orjson.loads(stored)  # JSONB as text

    def filter_clause(self, term: FilterTerm, column: str, n: int, params: dict[str, Any]) -> str:
        """Containment (``@>``, served by the GIN index) plus exact equality.

        JSONB cannot hold NUL characters, so a term that has one can match only
        a missing key.
        """
        if term.kind == "never":
            return "FALSE"
        if "\\u0000" in dump_json([term.key, term.value]):
            return "TRUE" if term.kind == "null" else "FALSE"
        key, doc, value = f"filter_key_{n}", f"filter_doc_{n}", f"filter_value_{n}"
        params[key] = term.key
        if term.kind == "null":
            return f"({column} -> %({key})s IS NULL OR {column} -> %({key})s = 'null'::jsonb)"
        if term.kind == "scalar":
            # Python (and so InMemorySaver) has True == 1 and False == 0; JSONB does not
            alternatives = [term.value]
            if isinstance(term.value, bool):
                alternatives.append(int(term.value))
            elif isinstance(term.value, (int, float)) and term.value in (0, 1):
                alternatives.append(term.value == 1)
            docs = []
            for i, alternative in enumerate(alternatives):
                params[f"{doc}_{i}"] = dump_json({term.key: alternative})
                docs.append(f"{column} @> %({doc}_{i})s::jsonb")
            return "(" + " OR ".join(docs) + ")"
        params[doc] = dump_json({term.key: json.loads(term.value)})
        params[value] = term.value
        return f"({column} @> %({doc})s::jsonb AND {column} -> %({key})s = %({value})s::jsonb)"

    def stats_params(self) -> dict[str, Any]:
        return {"schema_name": self.schema}

    def timestamp(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)

    def thread_info(self, row: Sequence[Any]) -> ThreadInfo:
        thread_id, created, updated, metadata = row
        return ThreadInfo(
            thread_id,
            created.astimezone(timezone.utc),
            updated.astimezone(timezone.utc),
            orjson.loads(metadata or "{}"),
        )

    def setup(self) -> SqlPlan[int]:
        """Apply pending migrations: lock, create the schema, migrate (one transaction).

        A schema that is already current is only read, so a role without the
        CREATE privilege can use a schema its owner migrated.
        """
        found = yield Query(self.queries["find_migrations_table"], {"table": self.migrations_table})
        if found[0][0] is not None:
            rows = yield Query(self.queries["select_migrations"])
            applied = {int(row[0]) for row in rows}
            refuse_newer(applied, self.migrations)
            if applied >= {m.version for m in self.migrations}:
                return 0
        yield Query(self.queries["lock_setup"], {"key": self.setup_lock_key})
        yield Query(self.queries["create_schema"])
        return (yield from migrate(self.migrations, self.queries))

    def put(self, serde: SerializerProtocol, config: RunnableConfig, checkpoint: Checkpoint,
            metadata: CheckpointMetadata, new_versions: ChannelVersions,
            deltas: AppendDeltas | None = None) -> SqlPlan[RunnableConfig]:
        """Checkpoint, new channel values and registry row: one statement, one round trip.

        In a versioned run the statement moves the thread's head only from
        the parent, with the row locked (`versioning.put_head`), and stores
        nothing otherwise. List values that extend a stored version are stored as
        pieces (``deltas``); if a version they extend is gone (the statement stores
        nothing and says so, or the foreign key catches a delete racing it), the put
        runs again with every value whole.

        Raises:
            ConfigurationError: For metadata holding a NUL character (JSONB cannot).
            StaleThreadError: A versioned run's parent is no longer the head.
        """
        enc = encode_checkpoint(serde, config, checkpoint, metadata, new_versions)
        if "\\u0000" in enc.metadata:  # cheap first look; then exactly
            refuse_nul(orjson.loads(enc.metadata), "metadata stored in PostgreSQL")
        compare, parent = put_head(config)
        head = "any" if not compare else "after_parent" if parent else "first"
        values = stored_values(deltas, enc.target.thread_id, enc.target.checkpoint_ns,
                               enc.values)
        params = enc.params()
        try:
            stored, found, written = (yield Query(self.put_sql[(head, values.has_pieces)],
                                                  {**params, **_value_params(values)}))[0]
        except psycopg.errors.ForeignKeyViolation:
            found = False
        if not found:
            values.whole_rows()
            stored, found, written = (yield Query(self.put_sql[(head, False)],
                                                  {**params, **_value_params(values)}))[0]
        if not stored:
            raise stale(enc.target.thread_id, parent)
        values.stored(kept={row.channel for row in values.rows} - set(written or ()))
        return enc.config

    def put_writes(self, serde: SerializerProtocol, config: RunnableConfig,
                   writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str) -> SqlPlan[None]:
        """Pending writes and the registry's last-write time: one statement."""
        target = target_of(config, need_checkpoint_id=True)
        rows = encode_writes(serde, writes, task_id, task_path)
        if not rows:
            return
        yield Query(
            self.queries["insert_writes"],
            {
                "thread_id": target.thread_id,
                "checkpoint_ns": target.checkpoint_ns,
                "checkpoint_id": target.checkpoint_id,
                "task_id": task_id,
                "task_path": task_path,
                "write_rows": dump_rows([(r.idx, r.channel, r.type) for r in rows]),
                "values": [r.value for r in rows],
            },
        )


def _value_params(values: DeltaPut) -> dict[str, Any]:
    """The channel values of ``insert_checkpoint``: their bytes, and their other columns as
    one JSON array (``[channel, version, type, base_version, position, items]`` each)."""
    rows = values.rows
    return {
        "value_rows": dump_rows([[v.channel, v.version, v.type, v.base_version, v.position,
                                  v.items] for v in rows]),
        "values": [v.value for v in rows],
        "bases": dump_rows(values.bases()),
    }


def dump_rows(rows: Sequence[Sequence[Any]]) -> str:
    """Rows as a JSON array of arrays (`codec.compact_json`: NaN and infinities refused)."""
    return compact_json(rows, (item for row in rows for item in row))


@lru_cache(maxsize=64)
def plans_for(schema: str) -> PostgresPlans:
    """The (cached) plans of one schema."""
    return PostgresPlans(schema)
