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
    P:{b}:val:T            hash: ns NUL channel NUL version JSON -> value payload (below)
    P:{b}:widx:T           sorted set: ns NUL checkpoint_id NUL task_id NUL idx
    P:{b}:w:T              hash: same member -> msgpack [channel, type, value, task_path]
    P:{b}:lock:T           string: the thread's lock, a token with a lease (`redis.lease`)

Sorted sets of equal scores order members by bytes, and NUL sorts first, so a
namespace's checkpoints (or a checkpoint's writes) are one lexicographic range.

A channel value's payload in ``val`` is one of (see `_core/deltas.py`)::

    ""                                   no value (type "empty")
    type NUL bytes                       a whole value, as the serializer wrote it
    append NUL base NUL position NUL items NUL bytes
                                         a piece: the items its version appended to
                                         version ``base`` (JSON, as in fields) of the
                                         same namespace and channel; ``position`` in
                                         its chain and the whole list's ``items``
                                         (decimal); ``bytes`` the appended items only

so a script finds the field a piece extends (its own field with the version replaced
by ``base``) from the payload's first bytes. Values are stored with ``HSETNX``: a
version names one value, never replaced, so chains of pieces cannot loop. Payloads
written before append-delta storage are whole values and read as before.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import ormsgpack

from langgraph_persist_kit._core.codec import EMPTY, Version
from langgraph_persist_kit._core.deltas import APPEND, StoredValue
from langgraph_persist_kit._core.pieces import Piece
from langgraph_persist_kit.errors import ConfigurationError

BUCKETS = 256
"""Buckets threads are spread over; part of the stored layout, never changed."""

DEFAULT_PREFIX = "persist-kit"
SCHEMA_VERSION = 2
"""1: whole values only; 2: values may be pieces. Older data needs no change (version 2
reads every version 1 payload); ``setup`` raises a key space's version, so a release
that reads version 1 only refuses it."""
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


PIECE_TAG = encode(APPEND) + b"\x00"
"""How the payload of a piece starts."""


def stored_payload(row: StoredValue) -> bytes:
    """The payload of a value a put stores: whole, or a piece with its link."""
    if row.base_version is None:
        return value_payload(row.type, row.value)
    link = f"{json.dumps(row.base_version)}\x00{row.position}\x00{row.items}\x00"
    return PIECE_TAG + encode(link) + row.value


def split_field(field: str) -> tuple[str, str, str]:
    """``(ns, channel, version JSON)`` of a value field."""
    ns, _, rest = field.partition(SEP)
    channel, _, version = rest.rpartition(SEP)
    return ns, channel, version


@lru_cache(maxsize=8192)
def field_key(field: str) -> tuple[str, Version]:
    """The key `deltas.rebuild` knows a field's value by: ``(ns NUL channel, version)``."""
    owner, _, version = field.rpartition(SEP)
    return owner, json.loads(version)


def base_json(payload: bytes | None) -> bytes | None:
    """The version JSON a piece's payload extends; ``None`` for anything else."""
    if not payload or not payload.startswith(PIECE_TAG):
        return None
    return payload[len(PIECE_TAG):payload.index(b"\x00", len(PIECE_TAG))]


def base_field(field: bytes, payload: bytes | None) -> bytes | None:
    """The field of the version a piece (``payload`` of ``field``) extends, or ``None``."""
    base = base_json(payload)
    return None if base is None else field[:field.rindex(b"\x00") + 1] + base


def split_stored(raw: bytes | None) -> tuple[Piece, str | None] | None:
    """A stored payload as a `Piece`, with the JSON of its base version (``None``: whole);
    ``None`` when it holds no value."""
    if not raw:
        return None
    if raw.startswith(PIECE_TAG):
        _tag, base, position, items, value = raw.split(b"\x00", 4)
        base_text = decode(base)
        return Piece(APPEND, value, json.loads(base_text), int(position), int(items)), base_text
    type_, _, value = raw.partition(b"\x00")
    return Piece(decode(type_), value), None


def pieces_for(payloads: dict[str, bytes], fields: Iterable[str]) -> dict[tuple[str, Version],
                                                                           Piece]:
    """What `deltas.rebuild` needs to rebuild ``fields``: their stored values and every
    version their pieces extend, keyed by `field_key`, from ``field -> payload``."""
    out: dict[tuple[str, Version], Piece] = {}
    todo = list(fields)
    seen: set[str] = set()
    while todo:
        field = todo.pop()
        if field in seen:
            continue
        seen.add(field)
        parsed = split_stored(payloads.get(field))
        if parsed is None:
            continue
        piece, base = parsed
        out[field_key(field)] = piece
        if base is not None:
            todo.append(field[:field.rindex(SEP) + 1] + base)
    return out


def pack(items: list[object]) -> bytes:
    return ormsgpack.packb(items)


def unpack(raw: bytes) -> Any:
    return ormsgpack.unpackb(raw)
