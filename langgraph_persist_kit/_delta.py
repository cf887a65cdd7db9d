"""The ancestor walk behind ``get_delta_channel_history`` and DeltaChannel-safe pruning.

Owns: deciding which ancestors a channel's value is rebuilt from, and
assembling ``DeltaChannelHistory``; depends on: `_codec`.

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

from langgraph_persist_kit._codec import EMPTY, Target, Version, check_id
from langgraph_persist_kit._plan import Plan
from langgraph_persist_kit.errors import BackendError, ConfigurationError

FIRST_ROUND_DEPTH = 64
"""Ancestors fetched by the first round; each later round fetches 8x more."""

DELTA_COUNTERS_KEY = "counters_since_delta_snapshot"
"""Checkpoint metadata key naming the DeltaChannel-backed channels."""


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


class PrunePlans:
    """``prune`` for a store's plans: the strategy, then the store's own deletes."""

    def delete_thread(self, thread_id: str) -> Plan[None]:
        raise NotImplementedError

    def keep_latest(self, thread_ids: list[str]) -> Plan[None]:
        """Delete all but what `kept_by` keeps in each namespace of ``thread_ids``."""
        raise NotImplementedError

    def prune(self, thread_ids: Sequence[str], strategy: str) -> Plan[None]:
        """``"delete"``: remove the threads. ``"keep_latest"``: keep each namespace's
        latest checkpoint plus the ancestors its DeltaChannel values are rebuilt from.

        Raises:
            ConfigurationError: For another strategy.
        """
        ids = sorted({check_id(t, "thread_id") for t in thread_ids})
        if strategy == "delete":
            for thread_id in ids:
                yield from self.delete_thread(thread_id)
        elif strategy == "keep_latest":
            if ids:
                yield from self.keep_latest(ids)
        else:
            raise ConfigurationError(
                f"prune strategy must be 'keep_latest' or 'delete', not {strategy!r}"
            )
