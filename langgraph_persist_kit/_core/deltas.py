"""Append-delta storage of list values: store what a new version appended, rebuild on read.

Owns: deciding whether a channel value is stored whole or as the items it appended to
an earlier stored version (`AppendDeltas`); `pieces.py` rebuilds values from pieces.
Every store keeps the same three facts beside a value: the version it extends
(``base_version``), its ``position`` in the chain, and its number of ``items``.

**Why bytes.** LangGraph's serializer writes a list as a msgpack array: a header
holding the number of items, then each item's own encoding, one after the other. So
a new version extends a stored one exactly when its item bytes start with the stored
version's item bytes. That is decided by comparing bytes, never by decoding: a message
mutated in place, replaced by id or removed changes the bytes, and the value is stored
whole. A rebuilt value is ``header(items) + root items + piece + piece ...``, the very
bytes the serializer produced, so reads are exact by construction.

**Bounded reads.** Pieces form chains rooted at a whole value. Versions of a chain get
positions 0, 1, 2, ...; the version at position ``k`` extends the one at ``k - B**t``,
where ``B**t`` is the largest power of `BRANCHING` dividing ``k`` (a B-ary Fenwick
layout). A value is rebuilt from one piece per nonzero base-B digit unit of its position
(at most ``(B - 1) * log_B(k)`` pieces, 9 on average at 3,000 versions), and each
appended item is stored about ``log_B(k)`` times, so storage grows as ``n log n``
rather than ``n**2``. A chain reaching `MAX_POSITION` starts again with a whole value.

**Bounded memory.** The saver remembers, per (thread, namespace, channel), the latest
list it stored or read and where its chain's pieces end, up to ``cache_bytes`` bytes of
values in all (least recently used first out). A value it does not remember (a new
process, an evicted thread) is stored whole; a ``get_tuple`` teaches it the values it
read, so a thread resumed in another process goes on with pieces at its next write.

**Never trusted.** The memory is only a hint: a store writes a piece only if the
version it extends is still stored (a prune or a delete in another process may have
removed it) and otherwise stores the value whole. Stored values are never replaced
(a channel version names one value), so chains cannot form cycles.

Only values the serializer tagged ``"msgpack"`` are split; anything else, and every
value of an ``EncryptedSerializer`` (tagged ``"msgpack+aes"``), is stored whole, so
nothing is stored in plaintext that was meant to be encrypted.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from langgraph_persist_kit._core.codec import ChannelValueRow, Version

APPEND = "append"
"""Type tag of a stored piece: the items a version appended to its ``base_version``."""

LIST_TYPE = "msgpack"
"""The serializer type whose lists are split (a rebuilt value has this type)."""

BRANCHING = 4
"""The B of the chain layout: fewer pieces per read against fewer copies of each item."""

MAX_POSITION = BRANCHING**7
"""Chains restart with a whole value here: at most 21 pieces after the whole value."""

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
"""Bytes a saver's memory of list values takes at most (`AppendDeltas`)."""

ENTRY_BYTES, LINK_BYTES = 1024, 160
"""Bytes one remembered value takes besides the value itself, and per link of its chain
(measured with ``tracemalloc``, rounded up), so that ``cache_bytes`` bounds memory even
for many short lists."""


# --- msgpack array headers ------------------------------------------------------------


def list_header(data: bytes) -> tuple[int, int] | None:
    """``(header length, number of items)`` of a msgpack array, or ``None``."""
    if not data:
        return None
    first = data[0]
    if 0x90 <= first <= 0x9F:
        return 1, first & 0x0F
    if first == 0xDC and len(data) >= 3:
        return 3, int.from_bytes(data[1:3], "big")
    if first == 0xDD and len(data) >= 5:
        return 5, int.from_bytes(data[1:5], "big")
    return None


def array_header(items: int) -> bytes:
    """The shortest msgpack array header for ``items`` items (what msgpack writes)."""
    if items < 16:
        return bytes([0x90 | items])
    if items < 1 << 16:
        return b"\xdc" + items.to_bytes(2, "big")
    return b"\xdd" + items.to_bytes(4, "big")


def base_position(position: int) -> int:
    """The position the version at ``position`` (>= 1) extends."""
    unit = 1
    while position % (unit * BRANCHING) == 0:
        unit *= BRANCHING
    return position - unit


# --- what a store writes --------------------------------------------------------------


class StoredValue(NamedTuple):
    """One channel value row as a store writes it.

    ``base_version`` is ``None`` for a whole value; ``position`` and ``items`` are
    ``None`` for a value that is not a list.
    """

    channel: str
    version: Version
    type: str
    value: bytes
    base_version: Version | None
    position: int | None
    items: int | None


@dataclass(frozen=True)
class Link:
    """A stored version of a chain: its position, items, and where its items end."""

    position: int
    version: Version
    items: int
    end: int


@dataclass(frozen=True)
class Chain:
    """A list value and its chain: what the saver remembers per channel, and what a read
    that rebuilt a value teaches it (`pieces.Rebuilt.chains`)."""

    data: bytes  # the latest value, whole
    start: int  # where its items start (after the header)
    links: tuple[Link, ...]  # the latest version's chain, whole value first

    @property
    def size(self) -> int:
        """What it counts for against ``cache_bytes``: the value, and the memory an
        entry takes beside it (its key, its links, the cache's own bookkeeping)."""
        return len(self.data) + ENTRY_BYTES + LINK_BYTES * len(self.links)


@dataclass
class DeltaPut:
    """The channel values of one ``put``, with pieces where the saver saw appends.

    A store writes `rows`; if a piece's base version is gone, it writes `whole_rows()`
    instead. Then it calls `stored` so that the saver remembers what it wrote.
    """

    rows: list[StoredValue]
    _deltas: AppendDeltas | None
    _key: tuple[str, str]
    _chains: dict[str, Chain | None]
    _known: dict[str, Chain | None] = field(default_factory=dict)  # remembered before

    @property
    def has_pieces(self) -> bool:
        return any(row.base_version is not None for row in self.rows)

    def bases(self) -> list[tuple[str, Version]]:
        """``(channel, base_version)`` of each piece: what must still be stored."""
        return [(r.channel, r.base_version) for r in self.rows if r.base_version is not None]

    def whole_rows(self) -> list[StoredValue]:
        """Every value whole (lists as chain roots): when a base version is gone."""
        self.rows = [_whole(row, self._chains.get(row.channel)) for row in self.rows]
        for channel, chain in self._chains.items():
            if chain is not None:
                link = chain.links[-1]
                self._chains[channel] = Chain(chain.data, chain.start,
                                               (Link(0, link.version, link.items, link.end),))
        return self.rows

    def stored(self, kept: Iterable[str] = ()) -> None:
        """Remember the values written (call after the store committed them).

        Args:
            kept: Channels whose row the store did not write because it held that
                version already (an import, a fork re-putting an older version): what
                is stored there may be a piece elsewhere in a chain, so the saver keeps
                what it remembered before for those channels.
        """
        if self._deltas is None:
            return
        chains = dict(self._chains)
        for channel in kept:
            chains[channel] = self._known.get(channel)
        self._deltas.remember(self._key, chains)


def _whole(row: StoredValue, chain: Chain | None) -> StoredValue:
    if row.base_version is None:
        return row
    assert chain is not None
    return StoredValue(row.channel, row.version, LIST_TYPE, chain.data, None, 0, row.items)


class AppendDeltas:
    """What one saver remembers to store appended items only (see the module).

    Args:
        cache_bytes: The most memory, in bytes, the remembered lists take with their
            bookkeeping (`Chain.size`); 0 remembers nothing (every value is stored whole).
    """

    def __init__(self, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.cache_bytes = cache_bytes
        self._chains: OrderedDict[tuple[str, str, str], Chain] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def _get(self, key: tuple[str, str, str]) -> Chain | None:
        with self._lock:
            chain = self._chains.get(key)
            if chain is not None:
                self._chains.move_to_end(key)
            return chain

    def _set(self, key: tuple[str, str, str], chain: Chain | None) -> None:
        with self._lock:
            old = self._chains.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            if chain is None or chain.size > self.cache_bytes:
                return
            self._chains[key] = chain
            self._bytes += chain.size
            while self._bytes > self.cache_bytes:
                _, evicted = self._chains.popitem(last=False)
                self._bytes -= evicted.size

    def __len__(self) -> int:
        return len(self._chains)

    @property
    def bytes(self) -> int:
        """Bytes the remembered lists take now, bookkeeping included (`Chain.size`)."""
        return self._bytes

    def forget(self, thread_id: str | None = None) -> None:
        """Forget one thread (or everything)."""
        with self._lock:
            for key in [k for k in self._chains if thread_id is None or k[0] == thread_id]:
                self._bytes -= self._chains.pop(key).size

    def encode(self, thread_id: str, checkpoint_ns: str,
               rows: Sequence[ChannelValueRow]) -> DeltaPut:
        """Turn a put's channel values into stored rows, pieces where they extend."""
        chains: dict[str, Chain | None] = {}
        known: dict[str, Chain | None] = {}
        out = []
        for row in rows:
            known[row.channel] = self._get((thread_id, checkpoint_ns, row.channel))
            stored, chains[row.channel] = self._encode_one(known[row.channel], row)
            out.append(stored)
        return DeltaPut(out, self, (thread_id, checkpoint_ns), chains, known)

    def _encode_one(self, known: Chain | None,
                    row: ChannelValueRow) -> tuple[StoredValue, Chain | None]:
        header = (list_header(row.value)
                  if row.type == LIST_TYPE and isinstance(row.value, bytes) else None)
        if header is None or row.value[: header[0]] != array_header(header[1]):
            return StoredValue(*row, None, None, None), None
        start, items = header
        end = len(row.value) - start
        if known is not None:
            top = known.links[-1]
            if top.version == row.version:  # the same version again (an import): no change
                return StoredValue(*row, None, 0, items), known
            if (items >= top.items and top.position + 1 < MAX_POSITION
                    and end >= top.end
                    # bytes.startswith compares with memcmp (== on memoryviews goes item
                    # by item: 150x slower)
                    and row.value.startswith(memoryview(known.data)[known.start:], start)):
                position = top.position + 1
                wanted = base_position(position)
                chain = tuple(link for link in known.links if link.position <= wanted)
                base = chain[-1]
                piece = row.value[start + base.end:]
                link = Link(position, row.version, items, end)
                return (StoredValue(row.channel, row.version, APPEND, piece, base.version,
                                    position, items),
                        Chain(row.value, start, (*chain, link)))
        return (StoredValue(*row, None, 0, items),
                Chain(row.value, start, (Link(0, row.version, items, end),)))

    def remember(self, key: tuple[str, str], chains: Mapping[str, Chain | None]) -> None:
        """Remember the latest value of each channel (``None``: not a list, forget it)."""
        for channel, chain in chains.items():
            self._set((*key, channel), chain)

    def learn(self, thread_id: str, checkpoint_ns: str,
              rebuilt: Mapping[str, Chain]) -> None:
        """Remember values a read rebuilt (see `pieces.Rebuilt.chains`)."""
        self.remember((thread_id, checkpoint_ns), rebuilt)


def stored_values(deltas: AppendDeltas | None, thread_id: str, checkpoint_ns: str,
                  rows: Sequence[ChannelValueRow]) -> DeltaPut:
    """The rows a put stores: with pieces when ``deltas`` is on, else every value whole."""
    if deltas is None:
        return DeltaPut([_whole_value(row) for row in rows], None, (thread_id, checkpoint_ns), {})
    return deltas.encode(thread_id, checkpoint_ns, rows)


def _whole_value(row: ChannelValueRow) -> StoredValue:
    """A value stored whole; a list records its items as a chain root does (so ``stats``
    knows its header even when append deltas are off)."""
    header = (list_header(row.value)
              if row.type == LIST_TYPE and isinstance(row.value, bytes) else None)
    return StoredValue(*row, None, None if header is None else 0,
                       None if header is None else header[1])


def new_deltas(enabled: bool, cache_bytes: int | None) -> AppendDeltas | None:
    """The saver's `AppendDeltas`, or ``None`` when append-delta storage is off."""
    if not enabled:
        return None
    return AppendDeltas(DEFAULT_CACHE_BYTES if cache_bytes is None else int(cache_bytes))
