"""`SqliteSaver`: the synchronous SQLite checkpoint saver.

Owns: running the SQLite plans (`sqlite/plans.py`) on a ``sqlite3`` connection; depends on:
`plans`, `_common`, `_plan`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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

from langgraph_persist_kit._codec import ThreadInfo
from langgraph_persist_kit._modes import SyncOnly
from langgraph_persist_kit._plan import Plan, Query, R, Rows, iterate, run
from langgraph_persist_kit._saver_base import PersistSaverBase
from langgraph_persist_kit._urls import sqlite_path
from langgraph_persist_kit.sqlite._common import (
    BEGIN,
    DEFAULT_BUSY_TIMEOUT,
    JOURNAL_MODE,
    Synchronous,
    connect_kwargs,
    connection_pragmas,
    sqlite_errors,
)
from langgraph_persist_kit.sqlite.plans import PLANS, ROWS_PER_STATEMENT


class SqliteSaver(SyncOnly, PersistSaverBase):
    """A checkpoint saver on a SQLite file, for ``graph.invoke`` / ``graph.stream``.

    Channel values are stored once per (thread, namespace, channel, version),
    so an unchanged field is not copied into every checkpoint. Writes run in
    ``BEGIN IMMEDIATE`` transactions on a WAL database, so several processes
    can write different threads of one file at once. Safe to share between
    threads: calls are serialised on one connection.

    Args:
        conn: An open ``sqlite3.Connection`` that the caller owns and closes.
            Open it with ``check_same_thread=False`` (LangGraph writes
            checkpoints from a background thread).
        serde: The serializer for checkpoints, channel values and writes;
            defaults to ``JsonPlusSerializer``. Pass an ``EncryptedSerializer``
            to encrypt them (metadata stays plain JSON, to stay filterable).

    Example:
        ```python
        from langgraph_persist_kit.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string("agents.db") as saver:
            graph = builder.compile(checkpointer=saver)
            graph.invoke(inputs, {"configurable": {"thread_id": "t-1"}})
        ```
    """

    def __init__(self, conn: sqlite3.Connection, *, serde: SerializerProtocol | None = None):
        super().__init__(serde=serde)
        self.conn = conn
        self.lock = threading.RLock()

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn: str | os.PathLike[str],
        *,
        serde: SerializerProtocol | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: Synchronous = "full",
    ) -> Iterator[SqliteSaver]:
        """Open a database, set its schema up, yield a saver, close the database.

        Args:
            conn: A file path, ``":memory:"``, ``"sqlite:///relative.db"`` or
                ``"sqlite:////absolute.db"``.
            serde: See the class.
            busy_timeout: Seconds a write waits for another process's write
                transaction before failing.
            synchronous: ``"full"`` (default) or ``"normal"``; see the README's
                durability notes.

        Raises:
            ConfigurationError: For a URL that is not SQLite, or a bad option.
            BackendError: When the file cannot be opened or migrated.
        """
        path = sqlite_path(conn)
        pragmas = connection_pragmas(synchronous)
        with sqlite_errors():
            connection = sqlite3.connect(path, **connect_kwargs(busy_timeout))
        try:
            with sqlite_errors():
                for pragma in pragmas:
                    connection.execute(pragma)
            saver = cls(connection, serde=serde)
            saver.setup()
            yield saver
        finally:
            connection.close()

    # --- the driver ---------------------------------------------------------------

    def _execute(self, query: Query) -> Rows:
        return self.conn.execute(query.sql, query.params).fetchall()

    def _run(self, plan: Plan[R], *, transaction: bool = False) -> R:
        """Run a plan under the lock; writes in one ``BEGIN IMMEDIATE`` transaction."""
        if not self.is_setup:
            self.setup()
        return self._drive(plan, transaction)

    def _drive(self, plan: Plan[R], transaction: bool) -> R:
        with self.lock, sqlite_errors():
            if not transaction:
                result = run(plan, self._execute)
                if self.conn.in_transaction:  # a caller-owned connection in legacy mode
                    self.conn.commit()
                return result
            self.conn.execute(BEGIN)
            try:
                result = run(plan, self._execute)
            except BaseException:
                self.conn.rollback()
                raise
            self.conn.commit()
            return result

    def _iterate(self, plan: Plan[None]) -> Iterator[Any]:
        """Drive an emitting plan; the lock is held per query, never across a yield."""

        def execute(query: Query) -> Rows:
            if not self.is_setup:
                self.setup()
            with self.lock, sqlite_errors():
                return self._execute(query)

        return iterate(plan, execute)

    def setup(self) -> None:
        """Create or migrate the schema. Idempotent; safe from several processes at once.

        Runs automatically on first use. Switches the file to WAL mode, then
        applies pending migrations in one ``BEGIN IMMEDIATE`` transaction.

        Raises:
            SchemaVersionError: The file was migrated by a newer version.
            BackendError: SQLite failed.
        """
        with self.lock:
            with sqlite_errors():
                self.conn.execute(JOURNAL_MODE)
            self._drive(PLANS.setup(), transaction=True)
            self.is_setup = True

    # --- BaseCheckpointSaver ---------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Fetch a checkpoint with its channel values and pending writes, in one query.

        Args:
            config: ``{"configurable": {"thread_id": str, "checkpoint_ns": str = "",
                "checkpoint_id": str | None}}``; without ``checkpoint_id``, the
                namespace's latest checkpoint.

        Returns:
            The tuple (pending writes in ``writes_sort_key`` order), or ``None``.
        """
        return self._run(PLANS.get_tuple(self.serde, config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """List checkpoints newest first, fetched a page at a time.

        Args:
            config: ``{"configurable": {"thread_id": str, "checkpoint_ns": str}}``;
                each key is optional (``None`` lists every thread).
            filter: Metadata equality conditions, e.g. ``{"source": "input"}``.
                Keys are bound as parameters, never spliced into SQL.
            before: Only checkpoints whose id is below this config's ``checkpoint_id``.
            limit: The most tuples to yield.

        Raises:
            ConfigurationError: For a filter that is not a dict of JSON values.
        """
        return self._iterate(
            PLANS.list_checkpoints(self.serde, config, filter=filter, before=before, limit=limit)
        )

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the values of the channels in ``new_versions``, atomically.

        Args:
            config: ``{"configurable": {"thread_id": str, "checkpoint_ns": str,
                "checkpoint_id": str | None}}``; ``checkpoint_id`` is the parent.
            checkpoint: The checkpoint to store.
            metadata: Its metadata (stored as JSON).
            new_versions: The channels whose values changed, with their versions.

        Returns:
            The config naming the stored checkpoint.
        """
        return self._run(
            PLANS.put(self.serde, config, checkpoint, metadata, new_versions), transaction=True
        )

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes against a checkpoint, atomically.

        A regular write already stored for ``(task_id, idx)`` is kept; special
        writes (errors, interrupts) replace theirs.

        Args:
            config: ``{"configurable": {"thread_id": str, "checkpoint_ns": str,
                "checkpoint_id": str}}``.
            writes: ``(channel, value)`` pairs.
            task_id: The task that produced them.
            task_path: The task's path, used to order writes.
        """
        self._run(
            PLANS.put_writes(self.serde, config, writes, task_id, task_path),
            transaction=len(writes) > ROWS_PER_STATEMENT,
        )

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints, writes, channel values and registry row, atomically."""
        self._run(PLANS.delete_thread(thread_id), transaction=True)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is in ``run_ids``.

        Conformance capability ``delete_for_runs``. Channel values nothing
        refers to any more are removed too; one transaction.
        """
        self._run(PLANS.delete_for_runs(run_ids), transaction=True)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, channel value and write of a thread, in one transaction.

        Conformance capability ``copy_thread``; the whole parent chain is
        copied, so DeltaChannel values rebuild on the target.
        """
        self._run(PLANS.copy_thread(source_thread_id, target_thread_id), transaction=True)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads, in one transaction.

        Conformance capability ``prune``.

        Args:
            thread_ids: The threads to prune.
            strategy: ``"keep_latest"`` keeps each namespace's newest checkpoint
                and the ancestors its DeltaChannel values are rebuilt from;
                ``"delete"`` removes the threads.

        Raises:
            ConfigurationError: For another strategy.
        """
        self._run(PLANS.prune(thread_ids, strategy), transaction=True)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Seed and on-path writes of each DeltaChannel, in a bounded number of queries.

        Walks parent links in rounds of growing depth (64, 512, ... ancestors
        per query), then fetches seeds and writes in one query.
        """
        return self._run(PLANS.delta_history(self.serde, config, channels))

    def list_threads(
        self, *, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> Iterator[ThreadInfo]:
        """List threads newest-updated first, from the registry (no checkpoint is read).

        Args:
            filter: Equality conditions on the metadata of each thread's latest
                root checkpoint, as in `list`.
            limit: The most threads to yield.

        Yields:
            `ThreadInfo(thread_id, created_at, updated_at, metadata)`, times in UTC.
        """
        return self._iterate(PLANS.list_threads(filter=filter, limit=limit))
