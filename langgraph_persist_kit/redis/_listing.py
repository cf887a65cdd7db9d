"""Listing on Redis: checkpoints of a namespace, of a thread, across threads; threads.

Owns: the paging of ``list`` and ``list_threads`` (`RedisListing`, mixed into
`RedisPlans`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.checks import (
    before_checkpoint_id,
    check_id,
    filter_terms,
    metadata_matches,
)
from langgraph_persist_kit._core.codec import Target, target_of, thread_info
from langgraph_persist_kit._core.plan import Listing, paged
from langgraph_persist_kit.redis import _keys as k
from langgraph_persist_kit.redis._buckets import BucketMerge, LexCursor, ScoreCursor, bucket_range
from langgraph_persist_kit.redis._protocol import Batch, Command, RedisPlan, Script
from langgraph_persist_kit.types import ThreadInfo

PAGE_SIZE = 100
"""Checkpoints (and threads) read per round trip by ``list`` (and ``list_threads``)."""

Pages = Callable[[int], RedisPlan[tuple[list[Any], bool]]]


class RedisListing:
    """``list`` and ``list_threads`` of `RedisPlans`."""

    keys: k.KeySpace

    def _read(self, thread_id: str, parts: str, mode: str, *args: Any) -> Script:
        raise NotImplementedError

    def _tuples(self, serde: SerializerProtocol, thread_id: str, entries: list[list[Any]],
                filter: Mapping[str, Any] | None = None) -> list[CheckpointTuple]:
        raise NotImplementedError

    def list_checkpoints(self, serde: SerializerProtocol, config: RunnableConfig | None, *,
                         filter: Mapping[str, Any] | None, before: RunnableConfig | None,
                         limit: int | None) -> Listing:
        """Emit matching checkpoints newest first, a page per round trip.

        In one namespace, a page is one script call over its index; across a
        thread's namespaces, the thread's index is read once, then pages;
        across threads, the buckets' indexes are merged. A ``filter`` is
        matched on each page's metadata, so no key is out of reach.
        """
        filter_terms(filter)  # validates it
        configurable = {key: check_id(value, key) for key, value in
                        ((config or {}).get("configurable") or {}).items()
                        if key in ("thread_id", "checkpoint_ns", "checkpoint_id")
                        and value is not None}
        before_id = before_checkpoint_id(before)
        if configurable.get("thread_id") is None:
            pages = self._pages_across_threads(serde, configurable, before_id, filter)
        elif configurable.get("checkpoint_ns") is not None and not configurable.get(
            "checkpoint_id"
        ):
            pages = self._pages_in_namespace(serde, target_of(config), before_id, filter)
        else:
            pages = yield from self._pages_in_thread(serde, configurable, before_id, filter)
        return (yield from paged(pages, limit, PAGE_SIZE))

    def _pages_in_namespace(
        self, serde: SerializerProtocol, target: Target, before_id: str | None,
        filter: Mapping[str, Any] | None,
    ) -> Pages:
        ns = target.checkpoint_ns
        high: str | bytes = "(" + (k.member(ns, before_id) if before_id else ns + "\x01")
        low = "(" + ns + k.SEP

        def page(size: int) -> RedisPlan[tuple[list[CheckpointTuple], bool]]:
            nonlocal high
            entries = yield self._read(target.thread_id, "1", "range", high, low, size)
            if entries:
                high = b"(" + entries[-1][0]
            return self._tuples(serde, target.thread_id, entries, filter), len(entries) == size

        return page

    def _pages_in_thread(
        self, serde: SerializerProtocol, configurable: Mapping[str, Any],
        before_id: str | None, filter: Mapping[str, Any] | None,
    ) -> RedisPlan[Pages]:
        thread_id = check_id(configurable["thread_id"], "thread_id")
        checkpoint_id = configurable.get("checkpoint_id") or None
        ns = configurable.get("checkpoint_ns")
        members = []
        for raw in (yield self._read(thread_id, "0", "all")):
            m_ns, m_id = k.split_member(raw)
            if ((checkpoint_id is None or m_id == str(checkpoint_id))
                    and (ns is None or m_ns == ns)
                    and (before_id is None or m_id < before_id)):
                members.append((m_id, m_ns))
        members.sort(reverse=True)

        def page(size: int) -> RedisPlan[tuple[list[CheckpointTuple], bool]]:
            chunk = [k.member(ns_, id_) for id_, ns_ in members[:size]]
            del members[:size]
            entries = (yield self._read(thread_id, "1", "ids", *chunk)) if chunk else []
            return self._tuples(serde, thread_id, entries, filter), bool(members)

        return page

    def _pages_across_threads(
        self, serde: SerializerProtocol, configurable: Mapping[str, Any],
        before_id: str | None, filter: Mapping[str, Any] | None,
    ) -> Pages:
        high = b"(" + k.encode(str(before_id)) if before_id else b"+"
        merge = BucketMerge([LexCursor(self.keys.bucket_keys(b)[1], high)
                             for b in bucket_range()])
        ns, checkpoint_id = configurable.get("checkpoint_ns"), configurable.get("checkpoint_id")

        def page(size: int) -> RedisPlan[tuple[list[CheckpointTuple], bool]]:
            found = yield from merge.take(size)
            by_thread: dict[str, list[str]] = defaultdict(list)
            order = []
            for raw in found:
                m_id, thread_id, m_ns = k.split_member(raw)
                if (ns is None or m_ns == ns) and (not checkpoint_id or m_id == checkpoint_id):
                    by_thread[thread_id].append(k.member(m_ns, m_id))
                    order.append((thread_id, m_ns, m_id))
            threads = list(by_thread)
            replies = yield Batch([self._read(t, "1", "ids", *by_thread[t]) for t in threads])
            decoded = {}
            stale: dict[str, list[Any]] = {}
            for thread_id, entries in zip(threads, replies, strict=True):
                for tup in self._tuples(serde, thread_id, entries, filter):
                    c = tup.config["configurable"]
                    decoded[(thread_id, c["checkpoint_ns"], c["checkpoint_id"])] = tup
                present = {k.decode(entry[0]) for entry in entries}
                for member in by_thread[thread_id]:
                    if member not in present:  # its thread expired
                        ns_, id_ = member.split(k.SEP)
                        stale.setdefault(thread_id, []).extend(
                            [k.SEP.join((id_, thread_id, ns_)), member])
            yield from self._purge(stale)
            return [decoded[key] for key in order if key in decoded], len(found) == size

        return page

    def list_threads(self, *, filter: Mapping[str, Any] | None, limit: int | None) -> Listing:
        """Emit `ThreadInfo` of the buckets' registries, newest-updated first.

        A thread whose keys expired (TTL) is skipped, and its registry entry removed.
        """
        filter_terms(filter)
        merge = BucketMerge([ScoreCursor(self.keys.bucket_keys(b)[0]) for b in bucket_range()])

        def page(size: int) -> RedisPlan[tuple[list[ThreadInfo], bool]]:
            found = yield from merge.take(size)
            if not found:
                return [], False
            replies = yield Batch([
                Command(("HMGET", self.keys.thread_keys(k.decode(raw))[0],
                         "created", "updated", "metadata"))
                for raw, _score in found
            ])
            infos = [
                thread_info(k.decode(raw), float(created), float(updated),
                            None if metadata is None else k.decode(metadata))
                for (raw, _score), (created, updated, metadata) in zip(found, replies, strict=True)
                if created is not None
            ]
            yield from self._purge({k.decode(raw): [] for (raw, _score), reply
                                    in zip(found, replies, strict=True) if reply[0] is None})
            matching = [i for i in infos if not filter or metadata_matches(i.metadata, filter)]
            return matching, len(found) == size

        return paged(page, limit, PAGE_SIZE)

    def _purge(self, stale: Mapping[str, list[Any]]) -> RedisPlan[None]:
        """Drop the bucket index entries (and registry entries) of expired threads,
        as listings meet them; ``stale``: thread -> (index entry, member) pairs."""
        if stale:
            yield Batch([Script("purge", self.keys.thread_keys(t), [t, *entries])
                         for t, entries in stale.items()])
