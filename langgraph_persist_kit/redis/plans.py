"""Every storage operation of the Redis store, as plans of scripts and commands.

Owns: which script or commands each operation sends and how replies become
results; depends on: `_codec`, `_delta`, `buckets`, `keys`, `requests`.

``put``, ``put_writes`` and ``get_tuple`` are one script call each: one round
trip, and atomic (a script runs alone on the server). Scripts only touch one
thread's keys and its bucket's indexes, which share a hash tag.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

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

from langgraph_persist_kit._codec import (
    EMPTY,
    StoredCheckpoint,
    StoredWrite,
    Target,
    ThreadInfo,
    check_id,
    encode_checkpoint,
    encode_writes,
    filter_terms,
    kept_when_paused,
    metadata_matches,
    target_of,
    thread_info,
)
from langgraph_persist_kit._delta import FIRST_ROUND_DEPTH, AncestorWalk, PrunePlans
from langgraph_persist_kit._plan import Plan, paged
from langgraph_persist_kit.errors import SchemaVersionError
from langgraph_persist_kit.redis import keys as k
from langgraph_persist_kit.redis.buckets import (
    BucketMerge,
    LexCursor,
    ScoreCursor,
    bucket_range,
)
from langgraph_persist_kit.redis.requests import Batch, Command, Script
from langgraph_persist_kit.tree import ancestor_chain

PAGE_SIZE = 100
"""Checkpoints read per round trip by ``list``."""

PRUNE_ATTEMPTS = 5
"""Plans of one thread's prune before giving up on a thread that keeps changing."""


class RedisPlans(PrunePlans):
    """The plans of one Redis key space.

    Args:
        prefix: The ``key_prefix``.
        ttl_ms: Whole-thread expiry in milliseconds, pushed forward on every
            write; 0 for none.
        refresh_on_read: Push it forward on reads of the thread too.
    """

    ATOMIC_PUT = True
    WRITES_PER_STATEMENT = None

    def __init__(self, prefix: str, ttl_ms: int = 0, refresh_on_read: bool = False) -> None:
        self.keys = k.KeySpace(prefix)
        self.ttl = str(ttl_ms) if ttl_ms else "persist"  # writes without a TTL remove one
        self.read_ttl = self.ttl if refresh_on_read and ttl_ms else "0"

    def setup(self) -> Plan[None]:
        """Record the layout version; refuse a key space written by a newer one."""
        reply = yield Batch([
            Command(("SET", self.keys.schema_key, k.SCHEMA_VERSION, "NX")),
            Command(("GET", self.keys.schema_key)),
        ])
        stored = int(reply[1])
        if stored > k.SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the Redis key space {self.keys.prefix!r} has layout version {stored}; this "
                f"release reads up to {k.SCHEMA_VERSION}: upgrade langgraph-persist-kit"
            )

    # --- reading -------------------------------------------------------------------

    def _read(self, thread_id: str, parts: str, mode: str, *args: Any) -> Script:
        return Script("read", self.keys.thread_keys(thread_id),
                      [self.read_ttl, parts, mode, *args])

    def _tuples(
        self,
        serde: SerializerProtocol,
        thread_id: str,
        entries: list[list[Any]],
        filter: Mapping[str, Any] | None = None,
    ) -> list[CheckpointTuple]:
        """Decode ``read`` replies; metadata is matched before anything else is decoded."""
        out = []
        for raw_member, header, body, values, write_ids, writes in entries:
            checkpoint_ns, checkpoint_id = k.split_member(raw_member)
            parent, refs, _run, body_type, versions, metadata = k.unpack(header)
            if filter and not metadata_matches(orjson.loads(metadata), filter):
                continue
            version_of = orjson.loads(versions)
            stored_values = {}
            for channel, raw in zip(refs[::2], values, strict=True):
                payload = k.split_payload(raw)
                if payload is not None:
                    stored_values[(channel, version_of[channel])] = payload
            stored_writes = []
            for raw, payload in zip(write_ids, writes, strict=True):
                if payload is None:
                    continue
                task_id, idx = k.split_member(raw)
                channel, type_, value, task_path = k.unpack(payload)
                stored_writes.append(StoredWrite(task_id, channel, type_, value, int(idx),
                                                 task_path))
            stored = StoredCheckpoint(thread_id, checkpoint_ns, checkpoint_id, parent or None,
                                      body_type, body, versions, metadata)
            out.append(stored.to_tuple(serde, stored_values, stored_writes, version_of))
        return out

    def get_tuple(
        self, serde: SerializerProtocol, config: RunnableConfig
    ) -> Plan[CheckpointTuple | None]:
        """The named checkpoint (or the namespace's latest) in one script call."""
        target = target_of(config)
        if target.checkpoint_id:
            request = self._read(target.thread_id, "1", "ids",
                                 k.member(target.checkpoint_ns, target.checkpoint_id))
        else:
            request = self._read(target.thread_id, "1", "latest", target.checkpoint_ns)
        tuples = self._tuples(serde, target.thread_id, (yield request))
        return tuples[0] if tuples else None

    def list_checkpoints(
        self,
        serde: SerializerProtocol,
        config: RunnableConfig | None,
        *,
        filter: Mapping[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Plan[None]:
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
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        before_id = None if before_id is None else check_id(before_id, "checkpoint_id")
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

        def page(size: int) -> Plan[tuple[list[CheckpointTuple], bool]]:
            nonlocal high
            entries = yield self._read(target.thread_id, "1", "range", high, low, size)
            if entries:
                high = b"(" + entries[-1][0]
            return self._tuples(serde, target.thread_id, entries, filter), len(entries) == size

        return page

    def _pages_in_thread(
        self, serde: SerializerProtocol, configurable: Mapping[str, Any],
        before_id: str | None, filter: Mapping[str, Any] | None,
    ) -> Plan[Pages]:
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

        def page(size: int) -> Plan[tuple[list[CheckpointTuple], bool]]:
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

        def page(size: int) -> Plan[tuple[list[CheckpointTuple], bool]]:
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

    def list_threads(self, *, filter: Mapping[str, Any] | None, limit: int | None) -> Plan[None]:
        """Emit `ThreadInfo` of the buckets' registries, newest-updated first.

        A thread whose keys expired (TTL) is skipped, and its registry entry removed.
        """
        filter_terms(filter)
        merge = BucketMerge([ScoreCursor(self.keys.bucket_keys(b)[0]) for b in bucket_range()])

        def page(size: int) -> Plan[tuple[list[ThreadInfo], bool]]:
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

    def _purge(self, stale: Mapping[str, list[Any]]) -> Plan[None]:
        """Drop the bucket index entries (and registry entries) of expired threads,
        as listings meet them; ``stale``: thread -> (index entry, member) pairs."""
        if stale:
            yield Batch([Script("purge", self.keys.thread_keys(t), [t, *entries])
                         for t, entries in stale.items()])

    # --- writing -------------------------------------------------------------------

    def put(
        self,
        serde: SerializerProtocol,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Plan[RunnableConfig]:
        """One ``put`` script: the checkpoint, its new channel values and every index."""
        enc = encode_checkpoint(serde, config, checkpoint, metadata, new_versions)
        ns = enc.target.checkpoint_ns
        refs = [item for channel, version in checkpoint["channel_versions"].items()
                for item in (channel, k.value_field(ns, channel, version))]
        header = k.pack([enc.parent_checkpoint_id or "", refs, enc.run_id or "",
                         enc.body_type, enc.channel_versions, enc.metadata])
        args: list[Any] = [enc.target.thread_id, k.member(ns, check_id(enc.checkpoint_id,
                                                                       "checkpoint_id")),
                           header, enc.body, repr(time.time()), self.ttl]
        for row in enc.values:
            args += [k.value_field(ns, row.channel, row.version),
                     k.value_payload(row.type, row.value)]
        yield Script("put", self.keys.thread_keys(enc.target.thread_id), args)
        return enc.config

    def put_writes(
        self,
        serde: SerializerProtocol,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Plan[None]:
        """One ``put_writes`` script; a stored regular write is kept, special ones replaced."""
        target = target_of(config, need_checkpoint_id=True)
        prefix = k.member(target.checkpoint_ns, str(target.checkpoint_id)) + k.SEP
        rows = encode_writes(serde, writes, check_id(task_id, "task_id"), task_path)
        if not rows:
            return
        args: list[Any] = [target.thread_id, repr(time.time()), self.ttl]
        for row in rows:
            args += [prefix + row.task_id + k.SEP + str(row.idx),
                     k.pack([row.channel, row.type, row.value, row.task_path]),
                     "1" if row.idx < 0 else "0"]
        yield Script("put_writes", self.keys.thread_keys(target.thread_id), args)

    # --- deleting and copying ----------------------------------------------------------

    def delete_thread(self, thread_id: str) -> Plan[None]:
        """One script: the thread's keys and its entries in its bucket's indexes."""
        thread_id = check_id(thread_id, "thread_id")
        yield Script("delete_thread", self.keys.thread_keys(thread_id), [thread_id])

    def copy_thread(self, source: str, target: str) -> Plan[None]:
        """Read the source in one script, write the target in another (each atomic;
        on a cluster the two threads may live on different nodes)."""
        yield from self._copy(source, target, None)

    def fork_thread(
        self, source: str, target: str, checkpoint_id: str, paused: bool
    ) -> Plan[None]:
        """`copy_thread` of the root checkpoint ``checkpoint_id``, its ancestors, the
        subgraph checkpoints made under them, their pending writes and the values they use.
        ``paused``: keep only what `kept_when_paused` keeps on each namespace's
        newest checkpoint."""
        yield from self._copy(source, target, checkpoint_id, paused)

    def _copy(self, source: str, target: str, tip: str | None,
              paused: bool = False) -> Plan[None]:
        source, target = check_id(source, "thread_id"), check_id(target, "thread_id")
        headers, bodies, values, writes = yield Script("dump", self.keys.thread_keys(source))
        if not headers and not writes:
            return
        body_of = dict(zip(bodies[::2], bodies[1::2], strict=True))
        checkpoints = list(zip(headers[::2], headers[1::2], strict=True))
        pairs = list(zip(values[::2], values[1::2], strict=True))
        write_pairs = list(zip(writes[::2], writes[1::2], strict=True))
        if tip is not None:
            kept = _fork_members(checkpoints, tip)
            checkpoints = [(m, h) for m, h in checkpoints if m in kept]
            used = {k.encode(f) for _m, h in checkpoints for f in k.unpack(h)[1][1::2]}
            pairs = [(f, v) for f, v in pairs if f in used]
            newest = _newest_per_namespace(kept) if paused else set()
            write_pairs = [(w, v) for w, v in write_pairs if _write_kept(w, v, kept, newest)]
        args: list[Any] = [target, repr(time.time()), self.ttl, len(checkpoints), len(pairs)]
        for member, header in checkpoints:
            args += [member, header, body_of.get(member, b"")]
        for pair in (*pairs, *write_pairs):
            args += pair
        yield Script("restore", self.keys.thread_keys(target), args)

    def delete_for_runs(self, run_ids: Sequence[str]) -> Plan[None]:
        """Find the runs' checkpoints in every bucket's run index, then one script per thread."""
        if not run_ids:
            return
        runs = [check_id(r, "run_id") for r in run_ids]
        replies = yield Batch([
            Command(("ZRANGEBYLEX", self.keys.bucket_keys(b)[2], "[" + run + k.SEP,
                     "(" + run + "\x01"))
            for b in bucket_range() for run in runs
        ])
        members: dict[str, list[str]] = defaultdict(list)
        entries: dict[str, list[bytes]] = defaultdict(list)
        for reply in replies:
            for raw in reply:
                _run, thread_id, ns, checkpoint_id = k.split_member(raw)
                members[thread_id].append(k.member(ns, checkpoint_id))
                entries[thread_id].append(raw)
        if members:
            yield Batch([Script("delete_checkpoints", self.keys.thread_keys(t),
                                [t, "members", len(members[t]), *members[t], *entries[t]])
                         for t in sorted(members)])

    # --- DeltaChannel history and pruning ---------------------------------------------

    def _walk(self, target: Target, walk: AncestorWalk) -> Plan[None]:
        start: str | None = target.checkpoint_id
        depth = FIRST_ROUND_DEPTH
        while start is not None:
            reply = yield Script("walk", self.keys.thread_keys(target.thread_id),
                                 [target.checkpoint_ns, start, depth, *walk.channels])
            rows: list[tuple[Any, ...]] = []
            for d, (raw_id, raw_parent, per_channel) in enumerate(reply):
                cid, parent = k.decode(raw_id), k.decode(raw_parent) or None
                rows.append((d, cid, parent, None, None, None))
                for i, channel in enumerate(walk.channels):
                    field = per_channel[2 * i]
                    if field:
                        value_type = "value" if per_channel[2 * i + 1] == b"1" else EMPTY
                        rows.append((d, cid, parent, channel, k.decode(field), value_type))
            start = walk.feed(rows, depth)
            depth *= 8

    def delta_history(
        self, serde: SerializerProtocol, config: RunnableConfig, channels: Sequence[str]
    ) -> Plan[dict[str, DeltaChannelHistory]]:
        """``get_delta_channel_history``: walk rounds, then seeds and writes in one batch."""
        if not channels:
            return {}
        target = target_of(config)
        if target.checkpoint_id is None:
            latest = yield self._read(target.thread_id, "0", "latest", target.checkpoint_ns)
            if not latest:
                return AncestorWalk(channels).history(serde, {}, [])
            target = Target(target.thread_id, target.checkpoint_ns,
                            k.split_member(latest[0][0])[1])
        walk = AncestorWalk(channels)
        yield from self._walk(target, walk)
        chain = walk.checkpoint_ids()
        if not chain:
            return walk.history(serde, {}, [])
        seed_channels = list(walk.seeds)
        fields = [str(walk.seeds[c]) for c in seed_channels]
        keys = self.keys.thread_keys(target.thread_id)
        seed_reply, entries = yield Batch([
            Command(("HMGET", keys[4], *fields)) if fields else Command(("PING",)),
            self._read(target.thread_id, "w", "ids",
                       *[k.member(target.checkpoint_ns, cid) for cid in chain]),
        ])
        seeds: dict[tuple[str, Any], tuple[str, bytes]] = {}
        for channel, field, raw in zip(seed_channels, fields, seed_reply if fields else [],
                                       strict=False):
            payload = k.split_payload(raw)
            if payload is not None:
                seeds[(channel, field)] = payload
        wanted = set(channels)
        writes = []
        for raw_member, _h, _b, _v, write_ids, payloads in entries:
            cid = k.split_member(raw_member)[1]
            for raw, payload in zip(write_ids, payloads, strict=True):
                task_id, idx = k.split_member(raw)
                channel, type_, value, task_path = k.unpack(payload)
                if channel in wanted:
                    writes.append((cid, channel, type_, value, task_id, int(idx), task_path))
        return walk.history(serde, seeds, writes)

    def _thread_checkpoints(self, thread_id: str) -> Plan[list[tuple[str, str]]]:
        members = yield self._read(thread_id, "0", "all")
        return [tuple(k.split_member(raw)) for raw in members]  # type: ignore[misc]

    def _checkpoint_metadata(
        self, thread_id: str, members: list[tuple[str, str]]
    ) -> Plan[dict[tuple[str, str], dict[str, Any]]]:
        if not members:
            return {}
        entries = yield self._read(thread_id, "0", "ids", *[k.member(*m) for m in members])
        return {tuple(k.split_member(raw)): orjson.loads(k.unpack(header)[5])  # type: ignore[misc]
                for raw, header, *_ in entries}

    def _delete_all_but(
        self, thread_id: str, newest: dict[str, str], keep: list[tuple[str, str]]
    ) -> Plan[bool]:
        """One script; it refuses (-1) if a namespace got a newer checkpoint meanwhile."""
        pairs = [item for ns, cid in newest.items() for item in (ns, cid)]
        changed = yield Script("delete_checkpoints", self.keys.thread_keys(thread_id),
                               [thread_id, "keep", len(newest), *pairs,
                                *[k.member(ns, cid) for ns, cid in keep]])
        return changed != -1

    def cleanup_batch(self, cutoff: float, cursor: Any, batch_size: int,
                      dry_run: bool) -> Plan[tuple[int, int, Any]]:
        """One batch of ``cleanup_expired``: up to ``batch_size`` idle threads of one
        bucket's registry, each checked and deleted by its own script (a thread
        written meanwhile is left; a registry entry whose thread expired is removed).

        ``cursor`` is ``(bucket, offset)``: the offset counts the entries of the
        bucket's idle range that stay (skipped, or counted in a dry run).
        """
        bucket, offset = cursor or (0, 0)
        threads_key = self.keys.bucket_keys(bucket)[0]
        found = yield Command(("ZRANGEBYSCORE", threads_key, "-inf", f"({cutoff!r}",
                               "LIMIT", offset, batch_size))
        ids = [k.decode(raw) for raw in found]
        replies = (yield Batch([
            Script("delete_if_idle", self.keys.thread_keys(t), [t, repr(cutoff),
                                                                "1" if dry_run else "0"])
            for t in ids
        ])) if ids else []
        deleted = sum(int(reply[0]) for reply in replies)
        checkpoints = sum(int(reply[1]) for reply in replies)
        stay = len(ids) if dry_run else sum(1 for reply in replies if int(reply[2]))
        if len(ids) == batch_size:
            next_cursor: Any = (bucket, offset + stay)
        else:
            next_cursor = (bucket + 1, 0) if bucket + 1 < k.BUCKETS else None
        return deleted, checkpoints, next_cursor


def _fork_members(checkpoints: list[tuple[bytes, bytes]], tip: str) -> set[bytes]:
    """Members a fork at root checkpoint ``tip`` keeps: the tip's chain of parents,
    and the subgraph checkpoints made under one of them (metadata ``parents[""]``)."""
    parent_of: dict[str, str | None] = {}
    nested: list[tuple[bytes, str]] = []
    for raw, header in checkpoints:
        ns, checkpoint_id = k.split_member(raw)
        fields = k.unpack(header)
        if ns:
            nested.append((raw, orjson.loads(fields[5]).get("parents", {}).get("", "")))
        else:
            parent_of[checkpoint_id] = fields[0]
    chain = set(ancestor_chain(parent_of, tip))
    kept = {k.encode(k.member("", checkpoint_id)) for checkpoint_id in chain}
    return kept | {raw for raw, root in nested if root in chain}


def _newest_per_namespace(members: set[bytes]) -> set[bytes]:
    newest: dict[str, bytes] = {}
    for raw in members:
        ns, _checkpoint_id = k.split_member(raw)
        newest[ns] = max(newest.get(ns, raw), raw)
    return set(newest.values())


def _write_kept(raw: bytes, payload: bytes, kept: set[bytes], newest: set[bytes]) -> bool:
    """Whether a fork keeps a pending write (see `RedisPlans.fork_thread`)."""
    checkpoint = b"\x00".join(raw.split(b"\x00", 2)[:2])
    if checkpoint not in kept:
        return False
    if checkpoint not in newest:
        return True
    task_id = k.split_member(raw)[2]
    return kept_when_paused(task_id, k.unpack(payload)[0])


Pages = Any  # Callable[[int], Plan[tuple[list[CheckpointTuple], bool]]]
