"""Reading across threads: every bucket's index, merged newest first.

Owns: the k-way merge of per-bucket sorted sets behind ``list_threads``, ``list``
without a thread, and ``delete_for_runs``.

Each bucket is read a page at a time with plain commands (a cluster pipeline
sends them to each node at once). Only buckets whose page ran out are read
again, so a page of results costs one round trip per cluster node in the
steady state, and memory stays bounded by buckets x page size.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from typing import Any

from langgraph_persist_kit.redis._keys import BUCKETS
from langgraph_persist_kit.redis._protocol import Batch, Command, RedisPlan

BUCKET_PAGE = 32
"""Entries read from one bucket per round trip."""


class _Desc:
    """Heap key that makes ``heapq`` (a min-heap) pop the largest first."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Desc) -> bool:
        return bool(self.key > other.key)


class Cursor:
    """One bucket's sorted set, read newest first a page at a time."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.buffer: deque[tuple[Any, Any]] = deque()  # (sort key, item)
        self.done = False

    def commands(self) -> list[Command]:
        """What reads the next page (one reply each)."""
        raise NotImplementedError

    def feed(self, replies: list[Any]) -> None:
        raise NotImplementedError


class LexCursor(Cursor):
    """Members of equal score, in byte order descending, below an optional bound."""

    def __init__(self, key: bytes, high: bytes = b"+") -> None:
        super().__init__(key)
        self.high = high

    def commands(self) -> list[Command]:
        return [Command(("ZREVRANGEBYLEX", self.key, self.high, b"-", "LIMIT", 0, BUCKET_PAGE))]

    def feed(self, replies: list[Any]) -> None:
        (reply,) = replies
        self.buffer.extend((member, member) for member in reply)
        self.done = len(reply) < BUCKET_PAGE
        if reply:
            self.high = b"(" + reply[-1]


def _pairs(reply: list[Any]) -> list[tuple[bytes, float]]:
    """``(member, score)`` pairs of a WITHSCORES reply (RESP2 flat or RESP3 nested)."""
    if reply and not isinstance(reply[0], (list, tuple)):
        reply = list(zip(reply[::2], reply[1::2], strict=True))
    return [(member, float(score)) for member, score in reply]


class ScoreCursor(Cursor):
    """Members by score descending (ties: member descending), as ``(member, score)``.

    The next page starts strictly after the last entry read, ``(score, member)``:
    the rest of its tie group (usually empty), then what scores lower. An entry
    whose score changes meanwhile is seen where it then stands, or not at all;
    no other entry is skipped.
    """

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.last: tuple[float, bytes] | None = None

    def commands(self) -> list[Command]:
        if self.last is None:
            return [Command(("ZREVRANGEBYSCORE", self.key, "+inf", "-inf", "WITHSCORES",
                             "LIMIT", 0, BUCKET_PAGE))]
        score = repr(self.last[0])
        return [
            Command(("ZREVRANGEBYSCORE", self.key, score, score, "WITHSCORES")),
            Command(("ZREVRANGEBYSCORE", self.key, "(" + score, "-inf", "WITHSCORES",
                     "LIMIT", 0, BUCKET_PAGE)),
        ]

    def feed(self, replies: list[Any]) -> None:
        below = _pairs(replies[-1])
        ties = []
        if self.last is not None:
            last_member = self.last[1]
            ties = [(m, s) for m, s in _pairs(replies[0]) if m < last_member]
        pairs = ties + below
        self.buffer.extend(((score, member), (member, score)) for member, score in pairs)
        self.done = len(below) < BUCKET_PAGE
        if pairs:
            member, score = pairs[-1]
            self.last = (score, member)


class BucketMerge:
    """Items of every bucket's cursor, in one descending order."""

    def __init__(self, cursors: Sequence[Cursor]) -> None:
        self.cursors = list(cursors)
        self.heap: list[tuple[_Desc, int]] = []
        self.waiting = list(range(len(self.cursors)))  # cursors to read before choosing

    def take(self, count: int) -> RedisPlan[list[Any]]:
        """Up to ``count`` next items (fewer only when every bucket is exhausted)."""
        out: list[Any] = []
        while len(out) < count:
            if self.waiting:
                commands = [self.cursors[i].commands() for i in self.waiting]
                replies = yield Batch([c for group in commands for c in group])
                start = 0
                for i, group in zip(self.waiting, commands, strict=True):
                    self.cursors[i].feed(replies[start:start + len(group)])
                    start += len(group)
                    self._push(i)
                self.waiting = []
            if not self.heap:
                break
            _, i = heapq.heappop(self.heap)
            cursor = self.cursors[i]
            out.append(cursor.buffer.popleft()[1])
            if cursor.buffer:
                self._push(i)
            elif not cursor.done:
                self.waiting.append(i)
        return out

    def _push(self, i: int) -> None:
        buffer = self.cursors[i].buffer
        if buffer:
            heapq.heappush(self.heap, (_Desc(buffer[0][0]), i))


def bucket_range() -> range:
    return range(BUCKETS)
