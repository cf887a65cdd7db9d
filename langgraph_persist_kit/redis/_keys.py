"""Where a thread lives in Redis, and how its parts are encoded there.

Owns: the key layout, member and field encodings, and the checkpoint header.

Threads are spread over `BUCKETS` buckets (CRC32 of the thread id). Every key
of a thread and of its bucket carries the bucket as its hash tag, so on a
cluster all of one thread's operations, index updates included, hit one slot
and run as one script. Keys (``P`` is the ``key_prefix``, ``b`` the bucket in
hex, ``T`` the thread id as UTF-8, last so that no id can collide with
another key)::

    P:{b}:threads          sorted set: thread id scored by last write (Unix seconds)
    P:{b}:checkpoints      sorted set: checkpoint_id NUL thread NUL ns (for list across threads)
    P:{b}:runs             sorted set: run_id NUL thread NUL ns NUL checkpoint_id
    P:{b}:info:T           hash: created, updated, root, metadata (the registry row)
    P:{b}:idx:T            sorted set: ns NUL checkpoint_id
    P:{b}:cp:T             hash: ns NUL checkpoint_id -> header (msgpack, read by scripts)
    P:{b}:body:T           hash: same field -> the serialised checkpoint body
    P:{b}:val:T            hash: ns NUL channel NUL version JSON -> type NUL bytes ("" if empty)
    P:{b}:widx:T           sorted set: ns NUL checkpoint_id NUL task_id NUL idx
    P:{b}:w:T              hash: same member -> msgpack [channel, type, value, task_path]
    P:{b}:lock:T           string: the thread's lock, a token with a lease (`redis.lease`)

Sorted sets of equal scores order members by bytes, and NUL sorts first, so a
namespace's checkpoints (or a checkpoint's writes) are one lexicographic range.
"""

from __future__ import annotations

import json
import zlib
from functools import lru_cache
from typing import Any

import ormsgpack

from langgraph_persist_kit._core.codec import EMPTY, Version
from langgraph_persist_kit.errors import ConfigurationError

BUCKETS = 256
"""Buckets threads are spread over; part of the stored layout, never changed."""

DEFAULT_PREFIX = "persist-kit"
SCHEMA_VERSION = 1
SEP = "\x00"

THREAD_KINDS = ("info", "idx", "cp", "body", "val", "widx", "w")
BUCKET_KINDS = ("threads", "checkpoints", "runs")


def encode(text: str) -> bytes:
    """A string as Redis bytes; ids may hold any code point."""
    return text.encode("utf-8", "surrogatepass")


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def bucket_of(thread_id: str) -> int:
    """The bucket a thread's keys live in."""
    return zlib.crc32(encode(thread_id)) % BUCKETS


class KeySpace:
    """The keys under one ``key_prefix``.

    Raises:
        ConfigurationError: For a prefix holding ``{`` or ``}`` (it would change
            the hash tag, and with it which slot a thread lives in).
    """

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix or SEP in prefix:
            raise ConfigurationError(
                f"key_prefix must be a string without '{{', '}}' or NUL, not {prefix!r}"
            )
        self.prefix = prefix
        self.schema_key = encode(f"{prefix}:schema")
        self.thread_keys = lru_cache(maxsize=4096)(self._thread_keys)

    def bucket_keys(self, bucket: int) -> list[bytes]:
        """``threads``, ``checkpoints`` and ``runs`` of a bucket."""
        return [encode(f"{self.prefix}:{{{bucket:02x}}}:{kind}") for kind in BUCKET_KINDS]

    def lock_key(self, thread_id: str) -> bytes:
        """The key of the thread's lock: in its slot, apart from the keys scripts touch."""
        return encode(f"{self.prefix}:{{{bucket_of(thread_id):02x}}}:lock:") + encode(thread_id)

    def _thread_keys(self, thread_id: str) -> list[bytes]:
        """The ten KEYS of every per-thread script (see ``scripts.lua``)."""
        bucket = bucket_of(thread_id)
        own = [
            encode(f"{self.prefix}:{{{bucket:02x}}}:{kind}:") + encode(thread_id)
            for kind in THREAD_KINDS
        ]
        return own + self.bucket_keys(bucket)


# --- members, fields and payloads ---------------------------------------------------


def member(checkpoint_ns: str, checkpoint_id: str) -> str:
    return checkpoint_ns + SEP + checkpoint_id


def split_member(raw: bytes) -> list[str]:
    return decode(raw).split(SEP)


def value_field(checkpoint_ns: str, channel: str, version: Version) -> str:
    """The field of one channel value; a version's JSON keeps ``1`` and ``"1"`` apart."""
    return checkpoint_ns + SEP + channel + SEP + json.dumps(version)


def value_payload(type_: str, value: bytes) -> bytes:
    return b"" if type_ == EMPTY else encode(type_) + b"\x00" + value


def split_payload(raw: bytes | None) -> tuple[str, bytes] | None:
    """``(type, bytes)`` of a stored value, or ``None`` when it holds none."""
    if not raw:
        return None
    type_, _, value = raw.partition(b"\x00")
    return decode(type_), value


def pack(items: list[object]) -> bytes:
    return ormsgpack.packb(items)


def unpack(raw: bytes) -> Any:
    return ormsgpack.unpackb(raw)
