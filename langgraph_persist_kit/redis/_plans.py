"""Every storage operation of the Redis store, as plans of scripts and commands.

Owns: which script or commands each operation sends and how replies become results.
Listing lives in `_listing` and copying, forking, cleanup and stats in `_upkeep` (mixins).

``put``, ``put_writes`` and ``get_tuple`` are one script call each: one round
trip, and atomic (a script runs alone on the server). Scripts only touch one
thread's keys and its bucket's indexes, which share a hash tag.

List values that extend a stored version are stored as pieces (`_core/deltas.py`,
payloads in `_keys`); every read returns the versions their pieces extend with them,
and values are rebuilt here (`deltas.rebuild`).
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

from langgraph_persist_kit._core.checks import check_id, metadata_matches
from langgraph_persist_kit._core.codec import (
    EMPTY,
    StoredCheckpoint,
    StoredWrite,
    Target,
    encode_checkpoint,
    encode_writes,
    target_of,
)
from langgraph_persist_kit._core.deltas import AppendDeltas, DeltaPut, stored_values
from langgraph_persist_kit._core.lineage import FIRST_ROUND_DEPTH, AncestorWalk, PrunePlans
from langgraph_persist_kit._core.pieces import rebuild
from langgraph_persist_kit._core.versioning import put_head, stale
from langgraph_persist_kit.errors import BackendError, SchemaVersionError
from langgraph_persist_kit.redis import _keys as k
from langgraph_persist_kit.redis._buckets import (
    bucket_range,
)
from langgraph_persist_kit.redis._listing import RedisListing
from langgraph_persist_kit.redis._protocol import Batch, Command, RedisPlan, Script
from langgraph_persist_kit.redis._upkeep import RedisUpkeep

PUT_STORED, PUT_STALE, PUT_NO_BASE = 1, 0, 2
"""Replies of the ``put`` script: stored; a versioned run's parent is stale; a piece's
base version is gone (nothing stored: send the values whole)."""

PRUNE_ATTEMPTS = 5
"""Plans of one thread's prune before giving up on a thread that keeps changing."""


class RedisPlans(RedisListing, RedisUpkeep, PrunePlans):
    """The plans of one Redis key space.

    Args:
        prefix: The ``key_prefix``.
        ttl_ms: Whole-thread expiry in milliseconds, pushed forward on every
            write; 0 for none.
        refresh_on_read: Push it forward on reads of the thread too.
    """

    ATOMIC_PUT = True
    WRITES_PER_STATEMENT = None

    schema_version = k.SCHEMA_VERSION
    """The key layout's version this release writes (nothing to migrate: see `_keys`)."""

    def __init__(self, prefix: str, ttl_ms: int = 0, refresh_on_read: bool = False) -> None:
        self.keys = k.KeySpace(prefix)
        self.ttl = str(ttl_ms) if ttl_ms else "persist"  # writes without a TTL remove one
        self.read_ttl = self.ttl if refresh_on_read and ttl_ms else "0"

    def setup(self) -> RedisPlan[None]:
        """Record the layout version, raising an older one (a release that cannot read
        pieces then refuses the key space); refuse a key space written by a newer one."""
        stored = int((yield Script("setup", [self.keys.schema_key], [k.SCHEMA_VERSION])))
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
        deltas: AppendDeltas | None = None,
    ) -> list[CheckpointTuple]:
        """Decode ``read`` replies; metadata is matched before anything else is decoded.

        Values are rebuilt from the payloads of the whole reply (a version a piece
        extends comes once per reply); ``deltas`` (``get_tuple``) learns the lists read.
        """
        payloads: dict[str, bytes] = {}
        chosen = []
        for entry in entries:
            raw_member, header, body, values, write_ids, writes, bases = entry
            fields = k.unpack(header)
            refs = fields[1]
            payloads.update((f, raw) for f, raw in zip(refs[1::2], values, strict=True) if raw)
            payloads.update((k.decode(f), raw) for f, raw in zip(bases[::2], bases[1::2],
                                                                  strict=True))
            if filter and not metadata_matches(orjson.loads(fields[5]), filter):
                continue
            chosen.append((raw_member, fields, body, write_ids, writes))
        wanted = [field for _m, fields, *_ in chosen for field in fields[1][1::2]]
        rebuilt = rebuild(k.pieces_for(payloads, wanted), map(k.field_key, wanted))
        out = []
        for raw_member, (parent, refs, _run, body_type, versions, metadata), body, write_ids, \
                writes in chosen:
            checkpoint_ns, checkpoint_id = k.split_member(raw_member)
            version_of = orjson.loads(versions)
            stored_values = {}
            for channel, field in zip(refs[::2], refs[1::2], strict=True):
                value = rebuilt.values.get(k.field_key(field))
                if value is not None:
                    stored_values[(channel, version_of[channel])] = value
            if deltas is not None:
                deltas.learn(thread_id, checkpoint_ns, {
                    channel: chain for channel, field in zip(refs[::2], refs[1::2], strict=True)
                    if (chain := rebuilt.chains.get(k.field_key(field))) is not None})
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
        self, serde: SerializerProtocol, config: RunnableConfig,
        deltas: AppendDeltas | None = None,
    ) -> RedisPlan[CheckpointTuple | None]:
        """The named checkpoint (or the namespace's latest) in one script call, with the
        versions its pieces extend; ``deltas`` learns the list values read."""
        target = target_of(config)
        if target.checkpoint_id:
            request = self._read(target.thread_id, "1", "ids",
                                 k.member(target.checkpoint_ns, target.checkpoint_id))
        else:
            request = self._read(target.thread_id, "1", "latest", target.checkpoint_ns)
        tuples = self._tuples(serde, target.thread_id, (yield request), deltas=deltas)
        return tuples[0] if tuples else None

    # --- writing -------------------------------------------------------------------

    def put(self, serde: SerializerProtocol, config: RunnableConfig, checkpoint: Checkpoint,
            metadata: CheckpointMetadata, new_versions: ChannelVersions,
            deltas: AppendDeltas | None = None) -> RedisPlan[RunnableConfig]:
        """One ``put`` script: the checkpoint, its new channel values and every index.

        List values that extend a stored version go as pieces (``deltas``); the script
        stores them only if the versions they extend are still stored, else nothing, and
        the put is sent again with every value whole (a second call, rare).

        Raises:
            StaleThreadError: A versioned run's parent is no longer the latest
                root checkpoint (checked in the script; nothing is stored).
        """
        enc = encode_checkpoint(serde, config, checkpoint, metadata, new_versions)
        ns = enc.target.checkpoint_ns
        values = stored_values(deltas, enc.target.thread_id, ns, enc.values)
        refs = [item for channel, version in checkpoint["channel_versions"].items()
                for item in (channel, k.value_field(ns, channel, version))]
        header = k.pack([enc.parent_checkpoint_id or "", refs, enc.run_id or "",
                         enc.body_type, enc.channel_versions, enc.metadata])
        compare, parent = put_head(config)
        head = "" if not compare else "=" + (k.member("", parent) if parent else "")
        args: list[Any] = [enc.target.thread_id, k.member(ns, check_id(enc.checkpoint_id,
                                                                       "checkpoint_id")),
                           header, enc.body, repr(time.time()), self.ttl, head]
        keys = self.keys.thread_keys(enc.target.thread_id)
        reply = yield Script("put", keys, args + _value_args(ns, values))
        if reply == PUT_NO_BASE:
            values.whole_rows()
            reply = yield Script("put", keys, args + _value_args(ns, values))
        if reply == PUT_STALE:
            raise stale(enc.target.thread_id, parent)
        if not isinstance(reply, list) or reply[0] != PUT_STORED:
            raise BackendError(f"the Redis put script replied {reply!r}")
        values.stored(kept={values.rows[int(i)].channel for i in reply[1:]})
        return enc.config

    def put_writes(self, serde: SerializerProtocol, config: RunnableConfig,
                   writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str) -> RedisPlan[None]:
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

    def delete_thread(self, thread_id: str) -> RedisPlan[None]:
        """One script: the thread's keys and its entries in its bucket's indexes."""
        thread_id = check_id(thread_id, "thread_id")
        yield Script("delete_thread", self.keys.thread_keys(thread_id), [thread_id])

    def delete_for_runs(self, run_ids: Sequence[str]) -> RedisPlan[None]:
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

    def _walk(self, target: Target, walk: AncestorWalk) -> RedisPlan[None]:
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
    ) -> RedisPlan[dict[str, DeltaChannelHistory]]:
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
            Script("values", keys, fields) if fields else Command(("PING",)),
            self._read(target.thread_id, "w", "ids",
                       *[k.member(target.checkpoint_ns, cid) for cid in chain]),
        ])
        stored = {k.decode(f): raw for f, raw in zip(seed_reply[::2], seed_reply[1::2],
                                                     strict=True)} if fields else {}
        values = rebuild(k.pieces_for(stored, fields), map(k.field_key, fields)).values
        seeds: dict[tuple[str, Any], tuple[str, bytes]] = {}
        for channel, field in zip(seed_channels, fields, strict=True):
            value = values.get(k.field_key(field))
            if value is not None:
                seeds[(channel, field)] = value
        wanted = set(channels)
        writes = []
        for raw_member, _h, _b, _v, write_ids, payloads, _bases in entries:
            cid = k.split_member(raw_member)[1]
            for raw, payload in zip(write_ids, payloads, strict=True):
                task_id, idx = k.split_member(raw)
                channel, type_, value, task_path = k.unpack(payload)
                if channel in wanted:
                    writes.append((cid, channel, type_, value, task_id, int(idx), task_path))
        return walk.history(serde, seeds, writes)

    def _thread_checkpoints(self, thread_id: str) -> RedisPlan[list[tuple[str, str]]]:
        members = yield self._read(thread_id, "0", "all")
        return [tuple(k.split_member(raw)) for raw in members]  # type: ignore[misc]

    def _checkpoint_metadata(
        self, thread_id: str, members: list[tuple[str, str]]
    ) -> RedisPlan[dict[tuple[str, str], dict[str, Any]]]:
        if not members:
            return {}
        entries = yield self._read(thread_id, "0", "ids", *[k.member(*m) for m in members])
        return {tuple(k.split_member(raw)): orjson.loads(k.unpack(header)[5])  # type: ignore[misc]
                for raw, header, *_ in entries}

    def _delete_all_but(
        self, thread_id: str, newest: dict[str, str], keep: list[tuple[str, str]]
    ) -> RedisPlan[bool]:
        """One script; it refuses (-1) if a namespace got a newer checkpoint meanwhile."""
        pairs = [item for ns, cid in newest.items() for item in (ns, cid)]
        changed = yield Script("delete_checkpoints", self.keys.thread_keys(thread_id),
                               [thread_id, "keep", len(newest), *pairs,
                                *[k.member(ns, cid) for ns, cid in keep]])
        return changed != -1


def _value_args(checkpoint_ns: str, values: DeltaPut) -> list[Any]:
    """The ``put`` script's field, payload pairs of a put's values."""
    return [item for row in values.rows
            for item in (k.value_field(checkpoint_ns, row.channel, row.version),
                         k.stored_payload(row))]
