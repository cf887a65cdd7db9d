"""The ``BaseCheckpointSaver`` methods of every async saver.

Owns: the async side of `saver.SaverMethods`: each method runs the same plan as
its sync twin, with the same transaction, through the backend's awaiting
``_run`` / ``_iterate``. An async ``put`` reads in three files: its method here,
the backend's ``_run`` (``sqlite/aio.py``), the backend's plan (``sqlite/_plans.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

from langgraph_persist_kit._core.plan import Listing, Plan, R
from langgraph_persist_kit._core.saver import PersistSaverBase, writes_need_transaction
from langgraph_persist_kit._core.versioning import check_loaded
from langgraph_persist_kit.types import ThreadInfo


class AsyncSaverMethods(PersistSaverBase):
    """Async ``BaseCheckpointSaver`` methods; each behaves as its sync twin in
    `SaverMethods`."""

    def _run(
        self, make_plan: Callable[[], Plan[R]], *, transaction: bool = False
    ) -> Awaitable[R]:
        """Run the plan ``make_plan()`` builds (a driver may build it again to retry)."""
        raise NotImplementedError

    def _iterate(self, plan: Listing) -> AsyncIterator[Any]:
        raise NotImplementedError

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Fetch a checkpoint in one query; see `SaverMethods.get_tuple`."""
        loaded = await self._run(self._get_tuple_plan(config))
        check_loaded(config, loaded)
        return loaded

    def alist(  # returns the async iterator directly: one generator layer, not two
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """List checkpoints newest first, a page per query; see `SaverMethods.list`."""
        return self._iterate(
            self.plans.list_checkpoints(self.serde, config, filter=filter, before=before,
                                        limit=limit)
        )

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        """Store a checkpoint atomically; see `SaverMethods.put`."""
        plan = self._put_plan(config, checkpoint, metadata, new_versions)
        return await self._run(plan, transaction=not self.plans.ATOMIC_PUT)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        """Store pending writes atomically; see `SaverMethods.put_writes`."""
        plan = partial(self.plans.put_writes, self.serde, config, writes, task_id, task_path)
        await self._run(plan, transaction=writes_need_transaction(self.plans, writes))

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete a thread atomically; see `SaverMethods.delete_thread`."""
        await self._run(partial(self.plans.delete_thread, thread_id), transaction=True)
        self._forget(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints of runs; see `SaverMethods.delete_for_runs`."""
        await self._run(partial(self.plans.delete_for_runs, run_ids), transaction=True)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread in one transaction; see `SaverMethods.copy_thread`."""
        await self._run(
            partial(self.plans.copy_thread, source_thread_id, target_thread_id), transaction=True
        )

    async def afork_thread(self, source_thread_id: str, target_thread_id: str,
                           checkpoint_id: str, *, paused: bool = False) -> None:
        """Copy a thread up to a root checkpoint; see `SaverMethods.fork_thread`."""
        plan = partial(self.plans.fork_thread, source_thread_id, target_thread_id,
                       checkpoint_id, paused)
        await self._run(plan, transaction=True)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads in one transaction; see `SaverMethods.prune`."""
        await self._run(partial(self.plans.prune, thread_ids, strategy), transaction=True)

    async def aprune_thread(self, thread_id: str, keep_latest: int, *,
                            dry_run: bool = False) -> int:
        """Prune one thread; see `SaverMethods.prune_thread`."""
        plan = partial(self.plans.prune_thread, thread_id, keep_latest, dry_run)
        return await self._run(plan, transaction=True)

    async def acleanup_batch(self, cutoff: float, cursor: Any = None, batch_size: int = 500, *,
                             dry_run: bool = False) -> tuple[int, int, Any]:
        """One batch of cleanup; see `SaverMethods.cleanup_batch`."""
        plan = partial(self.plans.cleanup_batch, cutoff, cursor, batch_size, dry_run)
        return await self._run(plan, transaction=True)

    async def athread_count(self) -> int:
        """How many threads the registry holds; see `SaverMethods.thread_count`."""
        return await self._run(self.plans.thread_count)

    async def athread_ids_page(self, cursor: Any = None,
                               limit: int = 1000) -> tuple[Sequence[str], Any]:
        """A page of thread ids; see `SaverMethods.thread_ids_page`."""
        return await self._run(partial(self.plans.thread_ids_page, cursor, limit))

    async def astats(self, thread_id: str | None = None) -> dict[str, Any]:
        """Counts and bytes of the store, or of one thread; see `SaverMethods.stats`."""
        if thread_id is None:
            return await self._run(self.plans.stats)
        return await self._run(partial(self.plans.thread_stats, thread_id))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """DeltaChannel seeds and writes; see `SaverMethods.get_delta_channel_history`."""
        return await self._run(partial(self.plans.delta_history, self.serde, config, channels))

    def alist_threads(
        self, *, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> AsyncIterator[ThreadInfo]:
        """List threads newest-updated first; see `SaverMethods.list_threads`."""
        return self._iterate(self.plans.list_threads(filter=filter, limit=limit))
