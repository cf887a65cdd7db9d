"""Every storage operation of the SQL stores (SQLite, PostgreSQL) as plans.

Owns: which named statements each operation runs, in what order, and how their rows
become results.

A backend subclasses `SqlPlans` with its dialect: its named queries (same
names and parameter names in both ``queries.sql`` files), how it spells a
parameter and binds a list, how it decodes a stored channel version, the
condition naming a namespace's latest checkpoint, and its own ``put`` /
``put_writes`` (the statements that differ most). Every row layout below is
shared by both dialects' queries.

Two statements take a ``{where}``: ``select_checkpoints`` and ``select_threads``,
whose conditions (a namespace, a page's keyset, metadata filters) are assembled
here from fixed text and the dialect's parameter names, ``AND``-joined. User
input only ever reaches a store as bound parameters.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.checks import (
    FilterTerm,
    before_checkpoint_id,
    check_id,
    filter_terms,
)
from langgraph_persist_kit._core.codec import (
    StoredCheckpoint,
    StoredWrite,
    Target,
    Version,
    target_of,
)
from langgraph_persist_kit._core.deltas import AppendDeltas
from langgraph_persist_kit._core.lineage import FIRST_ROUND_DEPTH, AncestorWalk, PrunePlans
from langgraph_persist_kit._core.pieces import Piece, rebuild
from langgraph_persist_kit._core.plan import Listing, Query, Rows, SqlPlan, paged
from langgraph_persist_kit._sql.migrations import Migration
from langgraph_persist_kit._sql.upkeep import SqlUpkeep
from langgraph_persist_kit.types import ThreadInfo

CHECKPOINT_ROW, VALUE_ROW, WRITE_ROW = 0, 1, 2
"""The first column of a ``select_checkpoints`` row: which layout the row has."""

PAGE_SIZE = 100
"""Checkpoints fetched per round trip by ``list``."""

THREAD_PAGE_SIZE = 1000
"""Threads fetched per round trip by ``list_threads``."""


class SqlPlans(SqlUpkeep, PrunePlans):
    """The plans of one SQL store. Subclasses set the class attributes and hooks.

    The rows of ``select_checkpoints`` have ten columns; the first says which of
    three layouts the other nine follow (`_assemble` names each column):

    * `CHECKPOINT_ROW`: thread, ns, checkpoint_id, parent_id, type, body, versions JSON,
      metadata JSON, -
    * `VALUE_ROW`: thread, ns, channel, version, type, value, base_version, position, items
      (the checkpoints' channel values and every version their pieces extend; see
      `_core/deltas.py`)
    * `WRITE_ROW`: thread, ns, checkpoint_id, task_id, type, value, channel, task_path, idx
    """

    queries: Mapping[str, str]
    LATEST: ClassVar[str]  # the namespace's newest checkpoint_id, as a condition
    COPY_THREAD: ClassVar[tuple[str, ...]]  # statements of copy_thread, in order
    ATOMIC_PUT: ClassVar[bool]  # put is one statement (no explicit transaction needed)
    WRITES_PER_STATEMENT: ClassVar[int | None]  # put_writes rows per statement; None: any
    LOCKS_THREADS: ClassVar[bool]  # deletes and copies lock registry rows (lock_threads)
    migrations: list[Migration]  # the store's migrations, oldest first

    @property
    def schema_version(self) -> int:
        """The newest schema version this release knows: its last migration's."""
        return int(self.migrations[-1].version)

    # --- dialect hooks ---------------------------------------------------------------

    def array(self, items: Sequence[Any]) -> Any:
        """How the dialect binds a list parameter."""
        raise NotImplementedError

    def decode_version(self, stored: Any) -> Version:
        """A channel version as the store returns it."""
        raise NotImplementedError

    def filter_clause(self, term: FilterTerm, column: str, n: int, params: dict[str, Any]) -> str:
        """The condition for one metadata filter term; adds its parameters to ``params``."""
        raise NotImplementedError

    def thread_info(self, row: Sequence[Any]) -> ThreadInfo:
        """A `ThreadInfo` from a ``select_threads`` row."""
        raise NotImplementedError

    def _param(self, name: str) -> str:
        """How the dialect's SQL names parameter ``name``."""
        raise NotImplementedError

    def setup(self) -> SqlPlan[int]:
        """Create or migrate the schema; the driver runs it in one exclusive transaction."""
        raise NotImplementedError

    def put(self, serde: SerializerProtocol, config: RunnableConfig, checkpoint: Checkpoint,
            metadata: CheckpointMetadata, new_versions: ChannelVersions) -> SqlPlan[RunnableConfig]:
        raise NotImplementedError

    def put_writes(self, serde: SerializerProtocol, config: RunnableConfig,
                   writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str) -> SqlPlan[None]:
        raise NotImplementedError

    # --- reading ---------------------------------------------------------------------

    def _piece(self, value_type: str, value: Any, base: Any, position: Any,
               items: Any) -> Piece:
        """A stored value as read back (a dialect may return ints as text where a
        ``UNION`` gives a column another row layout's type)."""
        return Piece(value_type, bytes(value),
                     None if base is None else self.decode_version(base),
                     None if position is None else int(position),
                     None if items is None else int(items))

    def _select(self, where: str) -> str:
        return self.queries["select_checkpoints"].format(where=where)

    @cached_property
    def _get_sql(self) -> tuple[str, str]:
        """``get_tuple``'s two statements (by id, latest), built once: it is the hot read."""
        p = self._param
        in_namespace = f"thread_id = {p('thread_id')} AND checkpoint_ns = {p('checkpoint_ns')}"
        by_id = f"{in_namespace} AND checkpoint_id = {p('checkpoint_id')}"
        return self._select(by_id), self._select(f"{in_namespace} AND {self.LATEST}")

    def _assemble(self, serde: SerializerProtocol, rows: Rows,
                  deltas: AppendDeltas | None = None) -> list[CheckpointTuple]:
        """Turn `select_checkpoints` rows into tuples, newest first.

        With ``deltas`` (``get_tuple``), the saver learns the list values it read.
        """
        checkpoints: list[StoredCheckpoint] = []
        pieces: dict[tuple[str, str], dict[Any, Piece]] = defaultdict(dict)
        writes: dict[tuple[str, str, str], list[StoredWrite]] = defaultdict(list)
        for row in rows:  # three row layouts, told apart by the first column
            if row[0] == CHECKPOINT_ROW:
                _, thread, ns, checkpoint_id, parent, body_type, body, versions, metadata, _ = row
                checkpoints.append(StoredCheckpoint(thread, ns, checkpoint_id, parent,
                                                    body_type, bytes(body), versions, metadata))
            elif row[0] == VALUE_ROW:
                _, thread, ns, channel, version, value_type, value, base, position, items = row
                pieces[(thread, ns)][(channel, self.decode_version(version))] = self._piece(
                    value_type, value, base, position, items)
            else:
                _, thread, ns, checkpoint_id, task_id, value_type, value, channel, path, idx = row
                writes[(thread, ns, checkpoint_id)].append(
                    StoredWrite(task_id, channel, value_type, bytes(value), idx, path))
        checkpoints.sort(
            key=lambda cp: (cp.checkpoint_id, cp.thread_id, cp.checkpoint_ns), reverse=True
        )
        versions = [orjson.loads(cp.channel_versions) for cp in checkpoints]
        wanted: dict[tuple[str, str], set[tuple[str, Any]]] = defaultdict(set)
        for cp, cp_versions in zip(checkpoints, versions, strict=True):
            wanted[(cp.thread_id, cp.checkpoint_ns)].update(cp_versions.items())
        rebuilt = {group: rebuild(pieces[group], keys) for group, keys in wanted.items()}
        if deltas is not None:
            for (thread, ns), found in rebuilt.items():
                deltas.learn(thread, ns, {channel: chain
                                          for (channel, _), chain in found.chains.items()})
        return [
            cp.to_tuple(
                serde,
                rebuilt[(cp.thread_id, cp.checkpoint_ns)].values,
                writes[(cp.thread_id, cp.checkpoint_ns, cp.checkpoint_id)],
                cp_versions,
            )
            for cp, cp_versions in zip(checkpoints, versions, strict=True)
        ]

    def get_tuple(
        self, serde: SerializerProtocol, config: RunnableConfig,
        deltas: AppendDeltas | None = None,
    ) -> SqlPlan[CheckpointTuple | None]:
        """The named checkpoint (or the namespace's latest) in one query; ``deltas``
        learns the list values read (see `_core/deltas.py`)."""
        target = target_of(config)
        by_id, latest = self._get_sql
        rows = yield Query(
            by_id if target.checkpoint_id else latest,
            {
                "thread_id": target.thread_id,
                "checkpoint_ns": target.checkpoint_ns,
                "checkpoint_id": target.checkpoint_id,
                "limit": 1,
            },
        )
        tuples = self._assemble(serde, rows, deltas)
        return tuples[0] if tuples else None

    def _filters(self, filter: Mapping[str, Any] | None, params: dict[str, Any]) -> list[str]:
        return [
            self.filter_clause(term, "metadata", n, params)
            for n, term in enumerate(filter_terms(filter))
        ]

    def list_checkpoints(self, serde: SerializerProtocol, config: RunnableConfig | None, *,
                         filter: Mapping[str, Any] | None, before: RunnableConfig | None,
                         limit: int | None) -> Listing:
        """Emit matching checkpoints newest first, a page per query."""
        params: dict[str, Any] = {}
        clauses = []
        configurable = (config or {}).get("configurable") or {}
        before_id = before_checkpoint_id(before)
        for key, value, op in (
            ("thread_id", configurable.get("thread_id"), "="),
            ("checkpoint_ns", configurable.get("checkpoint_ns"), "="),
            ("checkpoint_id", configurable.get("checkpoint_id") or None, "="),
            ("before", before_id, "<"),
        ):
            if value is not None:
                params[key] = check_id(value, key)
                column = "checkpoint_id" if key == "before" else key
                clauses.append(f"{column} {op} {self._param(key)}")
        clauses += self._filters(filter, params)
        sql = self._select(" AND ".join(clauses) or "TRUE")
        p = self._param  # the keyset of the next page: below the last row's sort key
        after = (f"(checkpoint_id, thread_id, checkpoint_ns) < "
                 f"({p('page_id')}, {p('page_thread')}, {p('page_ns')})")
        next_sql = self._select(" AND ".join([*clauses, after]))

        def page(size: int) -> SqlPlan[tuple[list[CheckpointTuple], bool]]:
            nonlocal sql
            tuples = self._assemble(serde, (yield Query(sql, {**params, "limit": size})))
            if tuples:
                last = tuples[-1].config["configurable"]
                params.update(page_id=last["checkpoint_id"], page_thread=last["thread_id"],
                              page_ns=last["checkpoint_ns"])
                sql = next_sql
            return tuples, len(tuples) == size

        return paged(page, limit, PAGE_SIZE)

    def list_threads(self, *, filter: Mapping[str, Any] | None, limit: int | None) -> Listing:
        """Emit `ThreadInfo` rows of the registry, newest-updated first."""
        params: dict[str, Any] = {}
        clauses = self._filters(filter, params)
        query = self.queries["select_threads"]
        sql = query.format(where=" AND ".join(clauses) or "TRUE")
        p = self._param  # the keyset of the next page: below the last row's sort key
        after = f"(updated_at, thread_id) < ({p('page_updated')}, {p('page_thread')})"
        next_sql = query.format(where=" AND ".join([*clauses, after]))

        def page(size: int) -> SqlPlan[tuple[list[ThreadInfo], bool]]:
            nonlocal sql
            rows = yield Query(sql, {**params, "limit": size})
            if rows:
                params.update(page_updated=rows[-1][2], page_thread=rows[-1][0])
                sql = next_sql
            return [self.thread_info(row) for row in rows], len(rows) == size

        return paged(page, limit, THREAD_PAGE_SIZE)

    # --- deleting and copying -----------------------------------------------------------

    def _lock_threads(self, thread_ids: Sequence[str]) -> SqlPlan[None]:
        """Hold the threads' registry rows for the transaction, where the store needs it.

        SQLite's ``BEGIN IMMEDIATE`` already excludes other writers; Postgres
        locks the rows so that concurrent writes to those threads wait.
        """
        if self.LOCKS_THREADS:
            yield Query(self.queries["lock_threads"], {"thread_ids": self.array(list(thread_ids))})

    def delete_thread(self, thread_id: str) -> SqlPlan[None]:
        """Remove every row of one thread (run in a transaction)."""
        yield from self._lock_threads([check_id(thread_id, "thread_id")])
        for name in (
            "delete_thread_writes",
            "delete_thread_checkpoints",
            "delete_thread_channel_values",
            "delete_thread_registry",
        ):
            yield Query(self.queries[name], {"thread_id": check_id(thread_id, "thread_id")})

    def copy_thread(self, source: str, target: str) -> SqlPlan[None]:
        """Copy every row of ``source`` to ``target`` with INSERT ... SELECT statements."""
        source, target = check_id(source, "thread_id"), check_id(target, "thread_id")
        params = {"source": source, "target": target, "now": time.time()}
        yield from self._lock_threads(sorted({str(source), str(target)}))
        for name in self.COPY_THREAD:
            yield Query(self.queries[name], params)

    def _forget_unreferenced(self, thread_ids: Sequence[str]) -> SqlPlan[None]:
        """After deleting checkpoints: drop orphan channel values, fix the registry."""
        params = {"thread_ids": self.array(list(thread_ids))}
        for name in ("delete_unreferenced_channel_values", "refresh_threads",
                     "delete_empty_threads"):
            yield Query(self.queries[name], params)

    def delete_for_runs(self, run_ids: Sequence[str]) -> SqlPlan[None]:
        """Remove the checkpoints (and their writes) created by ``run_ids``."""
        if not run_ids:
            return
        params = {"run_ids": self.array([check_id(r, "run_id") for r in run_ids])}
        rows = yield Query(self.queries["select_run_threads"], params)
        yield from self._lock_threads([row[0] for row in rows])
        yield Query(self.queries["delete_run_writes"], params)
        yield Query(self.queries["delete_run_checkpoints"], params)
        yield from self._forget_unreferenced([row[0] for row in rows])

    # --- DeltaChannel history and pruning ---------------------------------------------

    def _walk(self, target: Target, walk: AncestorWalk) -> SqlPlan[None]:
        """Run `walk_ancestors` rounds of growing depth until the walk is done."""
        start, depth = target.checkpoint_id, FIRST_ROUND_DEPTH
        channels = self.array(walk.channels)
        while start is not None:
            rows = yield Query(
                self.queries["walk_ancestors"],
                {
                    "thread_id": target.thread_id,
                    "checkpoint_ns": target.checkpoint_ns,
                    "checkpoint_id": start,
                    "depth": depth,
                    "channels": channels,
                },
            )
            rows = [
                (d, cid, parent, ch, None if ch is None else self.decode_version(v), t)
                for d, cid, parent, ch, v, t in rows
            ]
            start = walk.feed(rows, depth)
            depth *= 8

    def delta_history(
        self, serde: SerializerProtocol, config: RunnableConfig, channels: Sequence[str]
    ) -> SqlPlan[dict[str, DeltaChannelHistory]]:
        """``get_delta_channel_history``: walk rounds, then one query for seeds and writes."""
        if not channels:
            return {}
        target = target_of(config)
        if target.checkpoint_id is None:
            latest = yield Query(
                self.queries["select_latest_checkpoint_id"],
                {"thread_id": target.thread_id, "checkpoint_ns": target.checkpoint_ns},
            )
            target = Target(target.thread_id, target.checkpoint_ns, latest[0][0])
        walk = AncestorWalk(channels)
        yield from self._walk(target, walk)
        checkpoint_ids = walk.checkpoint_ids()
        if not checkpoint_ids:
            return walk.history(serde, {}, [])
        seed_channels = list(walk.seeds)
        rows = yield Query(
            self.queries["select_delta_history"],
            {
                "thread_id": target.thread_id,
                "checkpoint_ns": target.checkpoint_ns,
                "seed_channels": self.array(seed_channels),
                "seed_versions": self.array([_dump_version(walk.seeds[c]) for c in seed_channels]),
                "checkpoint_ids": self.array(checkpoint_ids),
                "channels": self.array(list(channels)),
            },
        )
        pieces = {
            (channel, self.decode_version(version)): self._piece(
                value_type, value, base, position, items)
            for kind, channel, version, value_type, value, base, position, items in rows
            if kind == 0
        }
        seeds = rebuild(pieces, walk.seeds.items()).values
        writes = [(a, b, c, bytes(d), e, f, g) for kind, a, b, c, d, e, f, g in rows if kind == 1]
        return walk.history(serde, seeds, writes)


def _dump_version(version: Version) -> str:
    """A channel version as JSON text, the one way both dialects accept it as a parameter."""
    return json.dumps(version)
