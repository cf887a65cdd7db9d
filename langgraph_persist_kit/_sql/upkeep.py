"""Forking, pruning, cleanup and stats of the SQL stores.

Owns: `SqlUpkeep`, mixed into `SqlPlans`: ``fork_thread``, the store side of
``PrunePlans`` (read a thread's checkpoints, delete all but the kept ones), ``stats``
and ``cleanup_batch``. The named statements live in each dialect's ``queries.sql``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from langgraph_persist_kit._core.checks import check_id
from langgraph_persist_kit._core.codec import NULL_TASK_ID, thread_stats
from langgraph_persist_kit._core.lineage import ancestor_chain
from langgraph_persist_kit._core.pieces import channel_totals
from langgraph_persist_kit._core.plan import Query, SqlPlan


def as_dict(metadata: Any) -> dict[str, Any]:
    """Metadata as read back: a dict already, or JSON text."""
    return metadata if isinstance(metadata, dict) else orjson.loads(metadata)


class SqlUpkeep:
    """The statements behind fork, prune, cleanup and stats (see `SqlPlans`)."""

    queries: Mapping[str, str]

    def array(self, items: Sequence[Any]) -> Any:
        raise NotImplementedError

    def copy_thread(self, source: str, target: str) -> SqlPlan[None]:
        raise NotImplementedError

    def _lock_threads(self, thread_ids: Sequence[str]) -> SqlPlan[None]:
        raise NotImplementedError

    def _forget_unreferenced(self, thread_ids: Sequence[str]) -> SqlPlan[None]:
        raise NotImplementedError

    def fork_thread(
        self, source: str, target: str, checkpoint_id: str, paused: bool
    ) -> SqlPlan[None]:
        """Copy ``source`` to ``target``, then keep only the root checkpoint
        ``checkpoint_id``, its ancestors and the subgraph checkpoints made under them (run in
        one transaction: every statement stays in the store). ``paused``: keep only
        what `kept_when_paused` keeps on each namespace's newest checkpoint."""
        yield from self.copy_thread(source, target)
        links = yield Query(self.queries["select_parent_links"], {"thread_id": target})
        # the chain in Python: a long recursive query can plan badly
        chain = ancestor_chain({row[0]: row[1] for row in links}, checkpoint_id)
        params = {"thread_id": target, "keep": self.array(chain)}
        yield Query(self.queries["delete_fork_checkpoints"], params)
        yield Query(self.queries["delete_fork_writes"], {"thread_id": target})
        if paused:
            yield Query(self.queries["delete_fork_task_writes"],
                        {"thread_id": target, "null_task": NULL_TASK_ID})
        yield from self._forget_unreferenced([target])

    def _lock_for_prune(self, thread_ids: list[str]) -> SqlPlan[None]:
        yield from self._lock_threads(thread_ids)

    def _thread_checkpoints(self, thread_id: str) -> SqlPlan[list[tuple[str, str]]]:
        rows = yield Query(self.queries["select_thread_checkpoints"], {"thread_id": thread_id})
        return [(ns, cid) for ns, cid in rows]

    def _checkpoint_metadata(
        self, thread_id: str, members: list[tuple[str, str]]
    ) -> SqlPlan[dict[tuple[str, str], dict[str, Any]]]:
        if not members:
            return {}
        rows = yield Query(self.queries["select_checkpoint_metadata"], {
            "thread_id": thread_id,
            "checkpoint_ids": self.array(sorted({cid for _ns, cid in members})),
        })
        wanted = set(members)
        return {(ns, cid): as_dict(meta) for ns, cid, meta in rows if (ns, cid) in wanted}

    def _delete_all_but(
        self, thread_id: str, newest: dict[str, str], keep: list[tuple[str, str]]
    ) -> SqlPlan[bool]:
        """Per namespace, two deletes; the transaction holds the thread (`_lock_for_prune`)."""
        for ns, latest in newest.items():
            params = {"thread_id": thread_id, "checkpoint_ns": ns, "latest": latest,
                      "keep": self.array([cid for k_ns, cid in keep if k_ns == ns])}
            yield Query(self.queries["delete_writes_except"], params)
            yield Query(self.queries["delete_checkpoints_except"], params)
        yield from self._forget_unreferenced([thread_id])
        return True

    def stats(self) -> SqlPlan[dict[str, int]]:
        """Counts of threads, checkpoints, pending writes and channel values, and bytes."""
        rows = yield Query(self.queries["select_stats"], self.stats_params())
        threads, checkpoints, writes, values, size = rows[0]
        return {"threads": threads, "checkpoints": checkpoints, "writes": writes,
                "channel_values": values, "bytes": int(size or 0)}

    def thread_stats(self, thread_id: str) -> SqlPlan[dict[str, Any]]:
        """One thread's checkpoints, pending writes and channel values, with bytes."""
        params = {"thread_id": check_id(thread_id, "thread_id")}
        rows = yield Query(self.queries["select_thread_stats"], params)
        values = yield Query(self.queries["select_thread_channel_stats"], params)
        checkpoints, checkpoint_bytes, writes, write_bytes = rows[0]
        return thread_stats(params["thread_id"], checkpoints, checkpoint_bytes, writes,
                            write_bytes, channel_totals(values))

    def thread_ids_page(self, cursor: Any, limit: int) -> SqlPlan[tuple[list[str], Any]]:
        """Up to ``limit`` thread ids after ``cursor``; the next cursor, ``None`` at the end."""
        rows = yield Query(self.queries["select_thread_ids"],
                           {"after": cursor or "", "limit": limit})
        ids = [row[0] for row in rows]
        return ids, (ids[-1] if len(ids) == limit else None)

    def thread_count(self) -> SqlPlan[int]:
        """How many threads the registry holds."""
        rows = yield Query(self.queries["count_threads"], {})
        return int(rows[0][0])

    def stats_params(self) -> dict[str, Any]:
        return {}

    # --- cleanup of idle threads ----------------------------------------------------

    def timestamp(self, seconds: float) -> Any:
        """How the dialect binds a point in time given as Unix seconds."""
        return seconds

    def cleanup_batch(self, cutoff: float, cursor: Any, batch_size: int,
                      dry_run: bool) -> SqlPlan[tuple[int, int, Any]]:
        """One batch of ``cleanup_expired``, run in its own transaction.

        Args:
            cutoff: Unix seconds; threads whose last write is older go.
            cursor: Where the previous batch stopped (``None`` at first).
            batch_size: The most threads looked at.
            dry_run: Count, delete nothing.

        Returns:
            ``(threads deleted, checkpoints deleted, next cursor or None at the end)``.
        """
        when = self.timestamp(cutoff)
        rows = yield Query(self.queries["select_idle_threads"],
                           {"cutoff": when, "after": cursor or "", "limit": batch_size})
        ids = [row[0] for row in rows]
        if not ids:
            return 0, 0, None
        params = {"thread_ids": self.array(ids), "cutoff": when}
        idle = yield Query(self.queries["select_still_idle"], params)  # locks them (Postgres)
        if idle and not dry_run:
            params = {"thread_ids": self.array([row[0] for row in idle])}
            for name in ("delete_threads_writes", "delete_threads_checkpoints",
                         "delete_threads_channel_values", "delete_threads_registry"):
                yield Query(self.queries[name], params)
        next_cursor = ids[-1] if len(ids) == batch_size else None
        return len(idle), sum(int(row[1]) for row in idle), next_cursor
