"""The ancestor walk behind ``get_delta_channel_history`` and DeltaChannel-safe pruning.

Owns: deciding which ancestors a channel's value is rebuilt from, and assembling
``DeltaChannelHistory``.

A ``DeltaChannel`` stores a value (a ``_DeltaSnapshot``) only every few
super-steps; in between, its value is the nearest ancestor's stored value (the
*seed*) with every later pending write on the path replayed on top. The walk
follows parent links from the target, nearest first. Each store fetches
ancestors in rounds of growing depth (one query per round), so a walk costs a
bounded number of queries, never one per ancestor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langgraph.checkpoint.base import DeltaChannelHistory, PendingWrite, writes_sort_key
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.checks import check_id
from langgraph_persist_kit._core.codec import EMPTY, Target, Version
from langgraph_persist_kit._core.plan import Plan
from langgraph_persist_kit.errors import BackendError, ConfigurationError

FIRST_ROUND_DEPTH = 64
"""Ancestors fetched by the first round; each later round fetches 8x more."""

DELTA_COUNTERS_KEY = "counters_since_delta_snapshot"
"""Checkpoint metadata key naming the DeltaChannel-backed channels."""

PRUNE_STRATEGIES = ("keep_latest", "delete", "delete_all")
"""`prune` strategies: ``"delete_all"`` is the LangGraph Agent Server's name for ``"delete"``."""


def ancestor_chain(parent_of: dict[str, str | None], tip: str) -> list[str]:
    """``tip`` and its ancestors, nearest first, following ``parent_of`` links.

    Args:
        parent_of: checkpoint id -> its parent's id (``None`` or ``""`` at the root).
        tip: Where to start; an id missing from ``parent_of`` gives ``[]``.
    """
    chain: list[str] = []
    seen = set()
    current: str | None = tip
    while current and current in parent_of and current not in seen:  # a loop ends the walk
        seen.add(current)
        chain.append(current)
        current = parent_of[current]
    return chain


def delta_channels(metadata: dict[str, Any]) -> list[str]:
    """The DeltaChannel-backed channels of a checkpoint, from its metadata."""
    return sorted((metadata.get(DELTA_COUNTERS_KEY) or {}).keys())


class AncestorWalk:
    """Follows a checkpoint's parents until every channel has found its seed.

    Feed it the rows of each round, ``(depth, checkpoint_id, parent_id,
    channel, version, value_type)`` ordered by depth, where depth 0 is the
    checkpoint the round started from (the target, or where the previous round
    stopped) and ``channel`` is ``None`` for an ancestor holding none of the
    channels.
    """

    def __init__(self, channels: Sequence[str]) -> None:
        self.channels = list(channels)
        self.remaining = set(channels)
        self.chains: dict[str, list[str]] = {ch: [] for ch in channels}
        self.seeds: dict[str, Version] = {}
        self._seen: set[str] = set()

    def feed(self, rows: Iterable[Sequence[Any]], depth_limit: int) -> str | None:
        """Take one round's rows; return the id to start the next round from, or ``None``."""
        by_depth: dict[int, tuple[str, str | None, dict[str, tuple[Version, str | None]]]] = {}
        for depth, checkpoint_id, parent_id, channel, version, value_type in rows:
            entry = by_depth.setdefault(int(depth), (checkpoint_id, parent_id, {}))
            if channel is not None:
                entry[2][channel] = (version, value_type)
        if 0 not in by_depth or not self.remaining:
            return None
        last_parent: str | None = None
        for depth in sorted(by_depth):
            checkpoint_id, parent_id, versions = by_depth[depth]
            last_parent = parent_id
            if checkpoint_id in self._seen:  # a re-put made the chain a loop
                return None
            self._seen.add(checkpoint_id)
            if depth == 0:
                continue
            for channel in sorted(self.remaining):
                self.chains[channel].append(checkpoint_id)
                version, value_type = versions.get(channel, (None, None))
                if value_type is not None and value_type != EMPTY:
                    self.seeds[channel] = version  # type: ignore[assignment]
                    self.remaining.discard(channel)
            if not self.remaining:
                return None
        if last_parent is None or max(by_depth) < depth_limit:
            return None  # reached the root, or the parent row is missing
        deepest = by_depth[max(by_depth)][0]
        self._seen.discard(deepest)  # it is depth 0 of the next round
        return deepest

    def checkpoint_ids(self) -> list[str]:
        """Every ancestor some channel's value is rebuilt from (for pruning)."""
        return sorted({cid for chain in self.chains.values() for cid in chain})

    def history(
        self,
        serde: SerializerProtocol,
        seed_values: dict[tuple[str, Version], tuple[str, bytes]],
        writes: Iterable[tuple[str, str, str, bytes, str, int, str]],
    ) -> dict[str, DeltaChannelHistory]:
        """Assemble the result of ``get_delta_channel_history``.

        Args:
            serde: The saver's serializer.
            seed_values: ``(channel, version) -> (type, bytes)`` of the seeds.
            writes: ``(checkpoint_id, channel, type, value, task_id, idx,
                task_path)`` rows of the walked ancestors, in any order.
        """
        by_checkpoint: dict[tuple[str, str], list[tuple[str, str, bytes, int, str]]]
        by_checkpoint = defaultdict(list)
        for checkpoint_id, channel, type_, value, task_id, idx, task_path in writes:
            by_checkpoint[(checkpoint_id, channel)].append((task_id, type_, value, idx, task_path))
        result: dict[str, DeltaChannelHistory] = {}
        for channel in self.channels:
            collected: list[PendingWrite] = []
            for checkpoint_id in reversed(self.chains[channel]):  # oldest first
                rows = by_checkpoint.get((checkpoint_id, channel), [])
                rows.sort(key=lambda w: writes_sort_key(w[4], w[0], w[3]))
                collected.extend(
                    (task_id, channel, serde.loads_typed((type_, value)))
                    for task_id, type_, value, _idx, _path in rows
                )
            entry: DeltaChannelHistory = {"writes": collected}
            if channel in self.seeds:
                stored = seed_values.get((channel, self.seeds[channel]))
                if stored is None:
                    raise BackendError(
                        "the thread changed while its DeltaChannel history was read "
                        "(pruned or deleted meanwhile); read it again"
                    )
                entry["seed"] = serde.loads_typed(stored)
            result[channel] = entry
        return result


Walker = Callable[[Target, AncestorWalk], Plan[None]]


def kept_by(walker: Walker, target: Target, metadata: dict[str, Any]) -> Plan[list[str]]:
    """What ``prune(keep_latest)`` keeps of a namespace whose latest checkpoint is
    ``target``: that checkpoint, and the ancestors its DeltaChannel values are rebuilt from.

    Args:
        walker: The store's walk: runs rounds of ``walk_ancestors`` into an `AncestorWalk`.
        target: The namespace's latest checkpoint.
        metadata: Its metadata (which names the DeltaChannel-backed channels).
    """
    keep = [str(target.checkpoint_id)]
    channels = delta_channels(metadata)
    if channels:
        walk = AncestorWalk(channels)
        yield from walker(target, walk)
        keep += walk.checkpoint_ids()
    return keep


PRUNE_ATTEMPTS = 5
"""Plans of one thread's prune before giving up on a thread that keeps changing."""


class PrunePlans:
    """Pruning for a store's plans: which checkpoints go, decided once for every store.

    A store supplies how to read a thread's checkpoints and their metadata, how
    to walk ancestors, and how to delete everything but the kept checkpoints;
    SQL stores run a prune in one transaction that locks the thread, Redis in
    one script that refuses (and so makes the thread be planned again) when a
    namespace got a newer checkpoint meanwhile.
    """

    def delete_thread(self, thread_id: str) -> Plan[None]:
        raise NotImplementedError

    def _walk(self, target: Target, walk: AncestorWalk) -> Plan[None]:
        raise NotImplementedError

    def _thread_checkpoints(self, thread_id: str) -> Plan[list[tuple[str, str]]]:
        """``(checkpoint_ns, checkpoint_id)`` of every checkpoint of the thread."""
        raise NotImplementedError

    def _checkpoint_metadata(
        self, thread_id: str, members: list[tuple[str, str]]
    ) -> Plan[dict[tuple[str, str], dict[str, Any]]]:
        """The metadata of some of the thread's checkpoints."""
        raise NotImplementedError

    def _delete_all_but(
        self, thread_id: str, newest: dict[str, str], keep: list[tuple[str, str]]
    ) -> Plan[bool]:
        """In each namespace of ``newest``, delete the checkpoints older than its newest
        that are not in ``keep``, with their writes and the values nothing uses any
        more; ``False`` if the thread changed first and nothing was deleted."""
        raise NotImplementedError

    def _lock_for_prune(self, thread_ids: list[str]) -> Plan[None]:
        """Hold the threads for the rest of the transaction, where the store needs it."""
        return
        yield

    def prune_thread(self, thread_id: str, keep_latest: int, dry_run: bool) -> Plan[int]:
        """Keep the ``keep_latest`` newest checkpoints of each namespace of a thread and
        what their DeltaChannel values are rebuilt from; delete the other checkpoints
        older than the namespace's newest (newer ones, stored meanwhile, stay).

        Returns:
            The checkpoints deleted (with ``dry_run``: that would be).

        Raises:
            ConfigurationError: For ``keep_latest`` below 1.
            BackendError: When the thread kept changing for `PRUNE_ATTEMPTS` plans.
        """
        if isinstance(keep_latest, bool) or not isinstance(keep_latest, int) or keep_latest < 1:
            raise ConfigurationError(f"keep_latest must be an int >= 1, not {keep_latest!r}")
        thread_id = check_id(thread_id, "thread_id")
        yield from self._lock_for_prune([thread_id])
        for _attempt in range(PRUNE_ATTEMPTS):
            by_ns: dict[str, list[str]] = {}
            for ns, checkpoint_id in (yield from self._thread_checkpoints(thread_id)):
                by_ns.setdefault(ns, []).append(checkpoint_id)
            kept_newest = {ns: sorted(ids, reverse=True)[:keep_latest] for ns, ids in by_ns.items()}
            metadata = yield from self._checkpoint_metadata(
                thread_id, [(ns, cid) for ns, ids in kept_newest.items() for cid in ids])
            keep: set[tuple[str, str]] = set()
            for (ns, cid), meta in metadata.items():
                kept = yield from kept_by(self._walk, Target(thread_id, ns, cid), meta)
                keep.update((ns, ancestor) for ancestor in kept)
            newest = {ns: ids[0] for ns, ids in kept_newest.items()}
            doomed = sum(1 for ns, ids in by_ns.items() for cid in ids
                         if cid < newest[ns] and (ns, cid) not in keep)
            if dry_run or not doomed:
                return doomed
            if (yield from self._delete_all_but(thread_id, newest, sorted(keep))):
                return doomed
        raise BackendError(
            f"thread {thread_id!r} kept changing while it was pruned; prune it again"
        )

    def prune(self, thread_ids: Sequence[str], strategy: str) -> Plan[None]:
        """``"delete"`` (or ``"delete_all"``, the Agent Server's name for it): remove the
        threads. ``"keep_latest"``: `prune_thread` with 1.

        Raises:
            ConfigurationError: For another strategy.
        """
        if strategy not in PRUNE_STRATEGIES:
            raise ConfigurationError(
                f"prune strategy must be one of {', '.join(map(repr, PRUNE_STRATEGIES))}, "
                f"not {strategy!r}"
            )
        ids = sorted({check_id(t, "thread_id") for t in thread_ids})
        if strategy == "keep_latest":
            yield from self._lock_for_prune(ids)
            for thread_id in ids:
                yield from self.prune_thread(thread_id, 1, False)
        else:
            for thread_id in ids:
                yield from self.delete_thread(thread_id)
