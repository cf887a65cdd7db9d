"""Copying, forking, cleaning up and counting on Redis.

Owns: ``copy_thread`` / ``fork_thread`` (dump a thread in one script, restore what is
kept in another), ``cleanup_batch`` and ``stats`` (`RedisUpkeep`, mixed into
`RedisPlans`).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from langgraph_persist_kit._core.checks import check_id, copied_metadata, dump_json
from langgraph_persist_kit._core.codec import kept_when_paused, thread_stats
from langgraph_persist_kit._core.deltas import LIST_TYPE, list_header
from langgraph_persist_kit._core.lineage import ancestor_chain
from langgraph_persist_kit._core.pieces import channel_totals
from langgraph_persist_kit.redis import _keys as k
from langgraph_persist_kit.redis._buckets import bucket_range
from langgraph_persist_kit.redis._listing import PAGE_SIZE
from langgraph_persist_kit.redis._protocol import Batch, Command, RedisPlan, Script


class RedisUpkeep:
    """Copy, fork, cleanup and stats of `RedisPlans`."""

    keys: k.KeySpace
    ttl: str

    def copy_thread(self, source: str, target: str) -> RedisPlan[None]:
        """Read the source in one script, write the target in another (each atomic;
        on a cluster the two threads may live on different nodes)."""
        yield from self._copy(source, target, None)

    def fork_thread(
        self, source: str, target: str, checkpoint_id: str, paused: bool
    ) -> RedisPlan[None]:
        """`copy_thread` of the root checkpoint ``checkpoint_id``, its ancestors, the
        subgraph checkpoints made under them, their pending writes and the values they use.
        ``paused``: keep only what `kept_when_paused` keeps on each namespace's
        newest checkpoint."""
        yield from self._copy(source, target, checkpoint_id, paused)

    def _copy(self, source: str, target: str, tip: str | None,
              paused: bool = False) -> RedisPlan[None]:
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
            used = _used_fields(checkpoints, dict(pairs))
            pairs = [(f, v) for f, v in pairs if f in used]
            newest = _newest_per_namespace(kept) if paused else set()
            write_pairs = [(w, v) for w, v in write_pairs if _write_kept(w, v, kept, newest)]
        args: list[Any] = [target, repr(time.time()), self.ttl, len(checkpoints), len(pairs)]
        for member, header in checkpoints:
            args += [member, _copied_header(header, target), body_of.get(member, b"")]
        for pair in (*pairs, *write_pairs):
            args += pair
        yield Script("restore", self.keys.thread_keys(target), args)

    def stats(self) -> RedisPlan[dict[str, int]]:
        """Counts and bytes (``MEMORY USAGE`` of every key): one read per thread, in
        pages of `PAGE_SIZE` threads, so it costs about a ``list_threads`` of the store."""
        buckets = [self.keys.bucket_keys(b) for b in bucket_range()]
        sizes = yield Batch([Command(("ZCARD", key)) for keys in buckets for key in keys[:2]])
        totals = {"threads": sum(sizes[0::2]), "checkpoints": sum(sizes[1::2]), "writes": 0,
                  "channel_values": 0, "bytes": 0}
        members = yield Batch([Command(("ZRANGE", keys[0], 0, -1)) for keys in buckets])
        threads = [k.decode(raw) for reply in members for raw in reply]
        for start in range(0, len(threads), PAGE_SIZE):
            requests = []
            for thread_id in threads[start:start + PAGE_SIZE]:
                keys = self.keys.thread_keys(thread_id)
                requests += [Command(("HLEN", keys[6])), Command(("HLEN", keys[4]))]
                requests += [Command(("MEMORY", "USAGE", key, "SAMPLES", 0)) for key in keys[:7]]
            replies = yield Batch(requests)
            for i in range(0, len(replies), 9):
                totals["writes"] += replies[i]
                totals["channel_values"] += replies[i + 1]
                totals["bytes"] += sum(size or 0 for size in replies[i + 2:i + 9])
        sizes = yield Batch([Command(("MEMORY", "USAGE", key, "SAMPLES", 0)) for keys in buckets
                             for key in keys])
        totals["bytes"] += sum(size or 0 for size in sizes)
        return totals

    def thread_stats(self, thread_id: str) -> RedisPlan[dict[str, Any]]:
        """One thread's checkpoints, pending writes and channel values, with the bytes of
        their payloads (``HSTRLEN``; a channel value's bytes without the type or piece
        link before them, so a piece counts the items it appended): two round trips on
        the thread's keys, no value sent (the ``value_heads`` script sends their heads)."""
        keys = self.keys.thread_keys(check_id(thread_id, "thread_id"))
        hashes = (keys[2], keys[3], keys[6])  # headers, bodies, writes
        *fields, heads = yield Batch([*(Command(("HKEYS", key)) for key in hashes),
                                      Script("value_heads", keys)])
        sizes = iter((yield Batch([Command(("HSTRLEN", key, field))
                                   for key, names in zip(hashes, fields, strict=True)
                                   for field in names])))
        headers, bodies, writes = ([next(sizes) for _ in names] for names in fields)
        rows = [_value_row(*head) for head in zip(heads[::3], heads[1::3], heads[2::3],
                                                   strict=True)]
        return thread_stats(thread_id, len(headers), sum(headers) + sum(bodies), len(writes),
                            sum(writes), channel_totals(rows))

    def thread_count(self) -> RedisPlan[int]:
        """How many threads the buckets' registries hold (expired ones until purged)."""
        sizes = yield Batch([Command(("ZCARD", self.keys.bucket_keys(b)[0]))
                             for b in bucket_range()])
        return int(sum(sizes))

    def thread_ids_page(self, cursor: Any, limit: int) -> RedisPlan[tuple[list[str], Any]]:
        """Up to ``limit`` thread ids of one bucket's registry from ``cursor``
        (``(bucket, rank)``); the next cursor, ``None`` after the last bucket."""
        bucket, rank = cursor or (0, 0)
        found = yield Command(("ZRANGE", self.keys.bucket_keys(bucket)[0], rank,
                               rank + limit - 1))
        if len(found) == limit:
            return [k.decode(raw) for raw in found], (bucket, rank + limit)
        next_cursor = (bucket + 1, 0) if bucket + 1 < k.BUCKETS else None
        return [k.decode(raw) for raw in found], next_cursor

    def cleanup_batch(self, cutoff: float, cursor: Any, batch_size: int,
                      dry_run: bool) -> RedisPlan[tuple[int, int, Any]]:
        """One batch of ``cleanup_expired``: up to ``batch_size`` idle threads, taken
        from the buckets' registries in bucket order (a batch may span buckets or end
        inside one), each checked and deleted by its own script (a thread written
        meanwhile is left; a registry entry whose thread expired is removed).

        Three round trips: the idle count of every bucket from the cursor's on, the
        ids of the batch, its scripts (each a pipeline, split per node on a cluster).

        Args:
            cutoff: Unix seconds; threads whose last write is older go.
            cursor: ``(bucket, offset)`` where the previous batch stopped (``None`` at
                first); the offset counts the entries of the bucket's idle range that
                stay (skipped, or counted in a dry run).
            batch_size: The most threads looked at (>= 1).
            dry_run: Count, delete nothing.

        Returns:
            ``(threads deleted, checkpoints deleted, next cursor or None at the end)``.
        """
        first, offset = cursor or (0, 0)
        buckets = range(first, k.BUCKETS)
        below = f"({cutoff!r}"
        idle = yield Batch([Command(("ZCOUNT", self.keys.bucket_keys(b)[0], "-inf", below))
                            for b in buckets])
        ranges = _batch_ranges(list(zip(buckets, idle, strict=True)), offset, batch_size)
        if not ranges:
            return 0, 0, None
        found = yield Batch([
            Command(("ZRANGEBYSCORE", self.keys.bucket_keys(b)[0], "-inf", below,
                     "LIMIT", start, count))
            for b, start, count in ranges
        ])
        ids = [k.decode(raw) for reply in found for raw in reply]
        replies = (yield Batch([
            Script("delete_if_idle", self.keys.thread_keys(t), [t, repr(cutoff),
                                                                "1" if dry_run else "0"])
            for t in ids
        ])) if ids else []
        deleted = sum(int(reply[0]) for reply in replies)
        checkpoints = sum(int(reply[1]) for reply in replies)
        last, start, count = ranges[-1]
        in_last = len(found[-1])  # fewer than planned if some were written meanwhile
        if dry_run:
            stay = in_last
        else:
            stay = sum(1 for reply in replies[len(ids) - in_last:] if int(reply[2]))
        more = start + count < idle[last - first] or any(idle[last - first + 1:])
        return deleted, checkpoints, (last, start + stay) if more else None


def _batch_ranges(idle: list[tuple[int, int]], offset: int,
                  batch_size: int) -> list[tuple[int, int, int]]:
    """Which entries of which buckets one cleanup batch reads.

    Args:
        idle: ``(bucket, idle entries)`` from the cursor's bucket on, in order.
        offset: Entries of the first bucket's idle range to skip.
        batch_size: The most entries in all.

    Returns:
        ``(bucket, start, count)`` for each bucket read, ``count`` > 0, the counts
        adding up to at most ``batch_size``.
    """
    ranges = []
    room = batch_size
    for bucket, count in idle:
        available = count - offset
        if available > 0:
            take = min(available, room)
            ranges.append((bucket, offset, take))
            room -= take
            if not room:
                break
        offset = 0
    return ranges


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


def _used_fields(checkpoints: list[tuple[bytes, bytes]],
                 payloads: dict[bytes, bytes]) -> set[bytes]:
    """The value fields ``checkpoints`` refer to, with every version their pieces extend."""
    used = {k.encode(f) for _m, h in checkpoints for f in k.unpack(h)[1][1::2]}
    for field in list(used):
        base = k.base_field(field, payloads.get(field))
        while base is not None and base not in used:
            used.add(base)
            base = k.base_field(base, payloads.get(base))
    return used


def _value_row(field: bytes, length: int, head: bytes) -> tuple[Any, ...]:
    """A `deltas.channel_totals` row from a ``value_heads`` entry: ``(ns, channel,
    version JSON, base version JSON or None, bytes, items)``."""
    ns, channel, version = k.split_field(k.decode(field))
    base = k.base_json(head)
    if base is not None:
        _tag, _base, _position, items, _ = head.split(b"\x00", 4)
        return ns, channel, version, k.decode(base), int(length) - len(head), int(items)
    type_, sep, start = head.partition(b"\x00")
    header = list_header(start) if k.decode(type_) == LIST_TYPE else None
    return (ns, channel, version, None, int(length) - len(type_) - len(sep),
            None if header is None else header[1])


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


def _copied_header(header: bytes, target: str) -> bytes:
    """A checkpoint header as the copy in ``target`` holds it: no run id (the source's
    ``delete_for_runs`` must not reach the copy; the metadata keeps it) and the
    metadata's ``"thread_id"`` naming the target (`copied_metadata`)."""
    parent, refs, _run, body_type, versions, metadata = k.unpack(header)
    loaded = orjson.loads(metadata)
    copied = copied_metadata(loaded, target)
    if copied is not loaded:
        metadata = dump_json(copied)
    return k.pack([parent, refs, "", body_type, versions, metadata])
