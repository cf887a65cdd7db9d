"""The ``BaseCheckpointSaver`` methods of every sync saver, and what all savers share.

Owns: which plan each public method runs and whether it needs a transaction
(`SaverMethods`; `aio.AsyncSaverMethods` is the async side), the base of every
saver (`PersistSaverBase`) and what it asks of a store's plans (`StorePlans`).

A saver class mixes in `SaverMethods` and supplies its driver:
``plans`` (`_sql.plans.SqlPlans` for SQLite and PostgreSQL, ``redis._plans.RedisPlans``),
``_run(make_plan, transaction=...)`` and ``_iterate(plan)``. ``_run`` takes a plan
factory so that a driver can run a plan again on a fresh connection (PostgreSQL
after a dead idle connection). A ``put`` reads in three files: its method here,
the backend's ``_run`` (``sqlite/saver.py``), the backend's plan (``sqlite/_plans.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.checks import check_append_options
from langgraph_persist_kit._core.codec import Version, next_version
from langgraph_persist_kit._core.deltas import AppendDeltas, new_deltas
from langgraph_persist_kit._core.plan import Listing, Plan, R
from langgraph_persist_kit._core.versioning import check_loaded
from langgraph_persist_kit.types import ThreadInfo


class StorePlans(Protocol):
    """What a store's plans object offers; `SqlPlans` is the SQL family's."""

    @property
    def ATOMIC_PUT(self) -> bool:
        ...

    @property
    def WRITES_PER_STATEMENT(self) -> int | None:
        ...

    @property
    def schema_version(self) -> int:
        ...

    def setup(self) -> Plan[Any]: ...

    def get_tuple(self, serde: SerializerProtocol, config: RunnableConfig,
                  deltas: AppendDeltas | None) -> Plan[Any]: ...
    def list_checkpoints(self, serde: SerializerProtocol, config: RunnableConfig | None, *,
                         filter: Mapping[str, Any] | None, before: RunnableConfig | None,
                         limit: int | None) -> Listing: ...
    def list_threads(self, *, filter: Mapping[str, Any] | None,
                     limit: int | None) -> Listing: ...
    def put(self, serde: SerializerProtocol, config: RunnableConfig, checkpoint: Checkpoint,
            metadata: CheckpointMetadata, new_versions: ChannelVersions,
            deltas: AppendDeltas | None) -> Plan[Any]: ...
    def put_writes(self, serde: SerializerProtocol, config: RunnableConfig,
                   writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str) -> Plan[None]: ...
    def delete_thread(self, thread_id: str) -> Plan[None]: ...
    def delete_for_runs(self, run_ids: Sequence[str]) -> Plan[None]: ...
    def copy_thread(self, source: str, target: str) -> Plan[None]: ...
    def fork_thread(self, source: str, target: str, checkpoint_id: str,
                    paused: bool) -> Plan[None]: ...
    def prune(self, thread_ids: Sequence[str], strategy: str) -> Plan[None]: ...
    def prune_thread(self, thread_id: str, keep_latest: int, dry_run: bool) -> Plan[int]: ...
    def stats(self) -> Plan[dict[str, int]]: ...
    def thread_stats(self, thread_id: str) -> Plan[dict[str, Any]]: ...
    def thread_ids_page(self, cursor: Any, limit: int) -> Plan[tuple[Sequence[str], Any]]: ...
    def thread_count(self) -> Plan[int]: ...
    def cleanup_batch(self, cutoff: float, cursor: Any, batch_size: int,
                      dry_run: bool) -> Plan[tuple[int, int, Any]]: ...
    def delta_history(self, serde: SerializerProtocol, config: RunnableConfig,
                      channels: Sequence[str]) -> Plan[Any]: ...


class PersistSaverBase(BaseCheckpointSaver[str]):
    """Base of every saver: string channel versions and a setup flag."""

    def __init__(self, *, serde: SerializerProtocol | None = None, append_deltas: bool = True,
                 append_cache_bytes: int | None = None) -> None:
        check_append_options(append_deltas, append_cache_bytes)
        super().__init__(serde=serde)
        self.is_setup = False
        self.deltas = new_deltas(append_deltas, append_cache_bytes)
        """What the saver remembers to store appended list items only (`_core/deltas.py`);
        ``None`` when append-delta storage is off."""

    plans: StorePlans
    serde: SerializerProtocol

    batch_rest: float = 0.0
    """Seconds maintenance rests between batches at least (`maintenance.cleanup_expired`,
    `prune_threads`): a hook for a store whose waiting writers poll (SQLite)."""

    def latest_schema_version(self) -> int:
        """The newest schema version this release knows for the saver's store: what
        ``setup()`` migrates to (``persist-kit migrate`` reports it)."""
        return int(self.plans.schema_version)

    def _get_tuple_plan(self, config: RunnableConfig) -> Callable[[], Plan[Any]]:
        """``get_tuple``'s plan factory, for both modes."""
        return partial(self.plans.get_tuple, self.serde, config, self.deltas)

    def _put_plan(self, config: RunnableConfig, checkpoint: Checkpoint,
                  metadata: CheckpointMetadata,
                  new_versions: ChannelVersions) -> Callable[[], Plan[Any]]:
        """``put``'s plan factory, for both modes."""
        return partial(self.plans.put, self.serde, config, checkpoint, metadata, new_versions,
                       self.deltas)

    def _forget(self, thread_id: str) -> None:
        """After a thread was deleted: its remembered lists are no help any more."""
        if self.deltas is not None:
            self.deltas.forget(str(thread_id))

    def get_next_version(self, current: Version | None, channel: None = None) -> str:
        """A version greater than ``current``: ``"<32-digit counter>.<random>"``."""
        return next_version(current)


def writes_need_transaction(plans: StorePlans, writes: Sequence[Any]) -> bool:
    """Whether ``put_writes`` of ``writes`` spans several statements (so a transaction)."""
    limit = plans.WRITES_PER_STATEMENT
    return limit is not None and len(writes) > limit


class SaverMethods(PersistSaverBase):
    """Sync ``BaseCheckpointSaver`` methods on top of a driver's ``_run`` / ``_iterate``."""

    def _run(self, make_plan: Callable[[], Plan[R]], *, transaction: bool = False) -> R:
        """Run the plan ``make_plan()`` builds (a driver may build it again to retry)."""
        raise NotImplementedError

    def _iterate(self, plan: Listing) -> Iterator[Any]:
        raise NotImplementedError

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Fetch a checkpoint with its channel values and pending writes, in one query.

        Args:
            config: ``{"configurable": {"thread_id": str, "checkpoint_ns": str = "",
                "checkpoint_id": str | None}}``; without ``checkpoint_id``, the
                namespace's latest checkpoint.

        Returns:
            The tuple (pending writes in ``writes_sort_key`` order), or ``None``.

        Raises:
            ConfigurationError: When ``thread_id`` is missing.
            StaleThreadError: In a `VersionedGraph` run, when the latest root
                checkpoint is not the one the caller expected.
        """
        loaded = self._run(self._get_tuple_plan(config))
        check_loaded(config, loaded)
        return loaded

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None,
             limit: int | None = None) -> Iterator[CheckpointTuple]:
        """List checkpoints newest first, fetched 100 per query as you iterate.

        Args:
            config: ``{"configurable": {"thread_id": str, "checkpoint_ns": str}}``;
                each key is optional (``None`` lists every thread).
            filter: Metadata equality conditions, e.g. ``{"source": "input"}``,
                with ``InMemorySaver``'s semantics. Keys and values are bound
                parameters, never spliced into SQL.
            before: Only checkpoints whose id is below this one's: a config
                ``{"configurable": {"checkpoint_id": str}}``, the flat
                ``{"checkpoint_id": str}`` the LangGraph Agent Server passes, or the id.
            limit: The most tuples to yield.

        Raises:
            ConfigurationError: For a filter that is not a dict of JSON values, or a
                ``before`` of another type.
        """
        return self._iterate(
            self.plans.list_checkpoints(self.serde, config, filter=filter, before=before,
                                        limit=limit)
        )

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        """Store a checkpoint and the values of the channels in ``new_versions``, atomically.

        Args:
            config: ``{"configurable": {"thread_id": str, "checkpoint_ns": str,
                "checkpoint_id": str | None}}``; ``checkpoint_id`` is the parent.
            checkpoint: The checkpoint to store.
            metadata: Its metadata (stored as JSON, never encrypted).
            new_versions: The channels whose values changed, with their versions.

        Returns:
            The config naming the stored checkpoint.

        Raises:
            StaleThreadError: In a `VersionedGraph` run, when the parent is no
                longer the thread's latest root checkpoint; nothing is stored.
        """
        plan = self._put_plan(config, checkpoint, metadata, new_versions)
        return self._run(plan, transaction=not self.plans.ATOMIC_PUT)

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
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
        plan = partial(self.plans.put_writes, self.serde, config, writes, task_id, task_path)
        self._run(plan, transaction=writes_need_transaction(self.plans, writes))

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints, writes, channel values and registry row, atomically
        (and what the saver remembers of its lists)."""
        self._run(partial(self.plans.delete_thread, thread_id), transaction=True)
        self._forget(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that the runs ``run_ids`` wrote.

        Conformance capability ``delete_for_runs``. A checkpoint belongs to the
        run of its metadata ``run_id`` when it was put; the copies that
        `copy_thread` and forks make keep that ``run_id`` in their metadata but not
        as their run, so deleting the source's runs leaves them whole (as the
        LangGraph Agent Server, which deletes runs one thread at a time, expects).
        A thread moved into another store by ``copy_threads`` or an import is put
        again, so there its checkpoints belong to their metadata's runs. Channel
        values nothing refers to any more are removed too; one transaction.
        """
        self._run(partial(self.plans.delete_for_runs, run_ids), transaction=True)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, channel value and write of a thread, in one transaction.

        Conformance capability ``copy_thread``; done inside the store, and the
        whole parent chain is copied, so DeltaChannel values rebuild on the target.
        A metadata ``"thread_id"`` is set to the target (`copied_metadata`); the
        source's runs do not own the copies (see `delete_for_runs`).
        """
        plan = partial(self.plans.copy_thread, source_thread_id, target_thread_id)
        self._run(plan, transaction=True)

    def fork_thread(self, source_thread_id: str, target_thread_id: str,
                    checkpoint_id: str, *, paused: bool = False) -> None:
        """Copy a thread up to one of its root checkpoints, inside the store.

        The target gets root checkpoint ``checkpoint_id``, its ancestors and the
        subgraph checkpoints made under them, with their pending writes and
        channel values (so DeltaChannel values rebuild), and nothing else. Behind
        `langgraph_persist_kit.fork_session`; one transaction (SQL stores) or two
        scripts (Redis: read the source, write the target).

        Args:
            source_thread_id: The thread to fork.
            target_thread_id: The new thread (it should not exist yet).
            checkpoint_id: A root (``checkpoint_ns=""``) checkpoint of the source.
            paused: The source has moved on from that checkpoint: on the newest
                checkpoint of each namespace, keep only interrupts, errors and
                task-less writes, so the fork waits there again (task results and
                answers written later are not copied).
        """
        plan = partial(self.plans.fork_thread, source_thread_id, target_thread_id,
                       checkpoint_id, paused)
        self._run(plan, transaction=True)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads, in one transaction. Conformance capability ``prune``.

        Args:
            thread_ids: The threads to prune.
            strategy: ``"keep_latest"`` keeps each namespace's newest checkpoint
                and the ancestors its DeltaChannel values are rebuilt from;
                ``"delete"`` removes the threads, as does ``"delete_all"`` (the
                LangGraph Agent Server's name, sent by its thread prune).

        Raises:
            ConfigurationError: For another strategy.
        """
        self._run(partial(self.plans.prune, thread_ids, strategy), transaction=True)

    def prune_thread(self, thread_id: str, keep_latest: int, *, dry_run: bool = False) -> int:
        """Keep each namespace's ``keep_latest`` newest checkpoints (and what their
        DeltaChannel values are rebuilt from); behind `maintenance.prune_threads`.

        One short transaction (SQL stores) or one deleting script (Redis).

        Returns:
            The checkpoints deleted (with ``dry_run``: that would be).
        """
        plan = partial(self.plans.prune_thread, thread_id, keep_latest, dry_run)
        return self._run(plan, transaction=True)

    def cleanup_batch(self, cutoff: float, cursor: Any = None, batch_size: int = 500, *,
                      dry_run: bool = False) -> tuple[int, int, Any]:
        """One batch of `maintenance.cleanup_expired`, in its own short transaction.

        Args:
            cutoff: Unix seconds: threads whose last write is older are deleted,
                unless written again before the batch deletes them.
            cursor: ``None`` at first, then what the previous batch returned.
            batch_size: The most threads one batch looks at.
            dry_run: Count only.

        Returns:
            ``(threads deleted, checkpoints deleted, next cursor)``; the cursor is
            ``None`` once every thread was looked at.
        """
        plan = partial(self.plans.cleanup_batch, cutoff, cursor, batch_size, dry_run)
        return self._run(plan, transaction=True)

    def thread_count(self) -> int:
        """How many threads the store's registry holds (cheap: no thread is read)."""
        return self._run(self.plans.thread_count)

    def thread_ids_page(self, cursor: Any = None,
                        limit: int = 1000) -> tuple[Sequence[str], Any]:
        """A page of the store's thread ids (``prune_threads`` walks them without
        holding them all): ``(ids, next cursor)``, the cursor ``None`` at the end."""
        return self._run(partial(self.plans.thread_ids_page, cursor, limit))

    def stats(self, thread_id: str | None = None) -> dict[str, Any]:
        """Counts and bytes of the store, or of one thread (``persist-kit stats``).

        Args:
            thread_id: ``None`` for the whole store: ``{"threads", "checkpoints",
                "writes", "channel_values", "bytes"}``, bytes as the store counts them
                (the SQLite file's pages in use, the PostgreSQL tables with indexes,
                Redis ``MEMORY USAGE`` of the keys). A thread id for that thread:
                ``{"thread_id", "checkpoints", "checkpoint_bytes", "writes",
                "write_bytes", "channel_values", "channel_bytes", "bytes", "channels"}``,
                where ``channels`` lists ``{"checkpoint_ns", "channel", "versions",
                "bytes"}`` largest first and bytes are those of the stored payloads
                (PostgreSQL: after its compression). A thread the store does not hold
                gives zeros.

        Raises:
            ConfigurationError: For a ``thread_id`` that is not a valid id.
        """
        if thread_id is None:
            return self._run(self.plans.stats)
        return self._run(partial(self.plans.thread_stats, thread_id))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Seed and on-path writes of each DeltaChannel, in a bounded number of queries.

        Walks parent links in rounds of growing depth (64, 512, 4096 ancestors
        per query), then fetches seeds and writes in one query.
        """
        return self._run(partial(self.plans.delta_history, self.serde, config, channels))

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
        return self._iterate(self.plans.list_threads(filter=filter, limit=limit))
