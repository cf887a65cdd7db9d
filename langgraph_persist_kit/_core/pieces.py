"""Reading append-delta storage: whole values rebuilt from pieces, and their bytes counted.

Owns: `rebuild` (what every store's read calls with the rows it fetched: a version's value
and every version its pieces extend) and `channel_totals` (``stats(thread_id=...)``). The
design, and how pieces are written, is in `deltas.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from langgraph_persist_kit._core.codec import Version
from langgraph_persist_kit._core.deltas import (
    APPEND,
    LIST_TYPE,
    MAX_POSITION,
    Chain,
    Link,
    array_header,
    list_header,
)
from langgraph_persist_kit.errors import BackendError


class BrokenChainError(BackendError):
    """A stored piece's base version is missing: the value cannot be rebuilt."""


class Piece(NamedTuple):
    """A stored channel value as read back: whole, or a piece with its base version."""

    type: str
    value: bytes
    base_version: Version | None = None
    position: int | None = None
    items: int | None = None


class Rebuilt(NamedTuple):
    """Values rebuilt from pieces: ``values[(channel, version)] = (type, bytes)``."""

    values: dict[tuple[str, Version], tuple[str, bytes]]
    chains: dict[tuple[str, Version], Chain]


def rebuild(stored: Mapping[tuple[str, Version], Piece],
            wanted: Iterable[tuple[str, Version]] | None = None) -> Rebuilt:
    """Rebuild whole values from the rows a read returned (a version's whole chain).

    Args:
        stored: ``(channel, version) -> Piece`` for the wanted versions and every
            version their pieces extend.
        wanted: The versions to rebuild (default: every stored one).

    Raises:
        BrokenChainError: A piece's base version is not among ``stored``.
    """
    values: dict[tuple[str, Version], tuple[str, bytes]] = {}
    chains: dict[tuple[str, Version], Chain] = {}
    for key in stored if wanted is None else wanted:
        piece = stored.get(key)
        if piece is None:
            continue
        if piece.type != APPEND:
            values[key] = (piece.type, piece.value)
            if piece.items is not None or piece.type == LIST_TYPE:
                chain = _root_chain(key[1], piece)
                if chain is not None:
                    chains[key] = chain
            continue
        chain = _rebuild_chain(stored, key)
        values[key] = (LIST_TYPE, chain.data)
        chains[key] = chain
    return Rebuilt(values, chains)


def _root_chain(version: Version, piece: Piece) -> Chain | None:
    header = list_header(piece.value) if piece.type == LIST_TYPE else None
    if header is None:
        return None
    start, items = header
    return Chain(piece.value, start,
                  (Link(piece.position or 0, version, items, len(piece.value) - start),))


def _rebuild_chain(stored: Mapping[tuple[str, Version], Piece],
                   key: tuple[str, Version]) -> Chain:
    pieces: list[tuple[Version, Piece]] = []
    channel, version = key
    piece = stored[key]
    while piece.type == APPEND:
        pieces.append((version, piece))
        if len(pieces) > MAX_POSITION:
            raise BrokenChainError(f"channel {channel!r}: a chain of pieces loops")
        version = piece.base_version  # type: ignore[assignment]
        found = stored.get((channel, version))
        if found is None:
            raise BrokenChainError(
                f"channel {channel!r} version {key[1]!r} extends version {version!r}, "
                "which is no longer stored")
        piece = found
    root = _root_chain(version, piece)
    if root is None:
        raise BrokenChainError(f"channel {channel!r}: version {version!r} is not a list")
    parts = [memoryview(root.data)[root.start:]]
    links = [Link(piece.position or 0, version, root.links[0].items, root.links[0].end)]
    end = links[0].end
    for piece_version, part in reversed(pieces):
        parts.append(memoryview(part.value))
        end += len(part.value)
        links.append(Link(part.position or 0, piece_version, part.items or 0, end))
    header = array_header(links[-1].items)
    data = b"".join([header, *parts])
    return Chain(data, len(header), tuple(links))


def channel_totals(rows: Iterable[Sequence[Any]]) -> list[tuple[str, str, int, int, int]]:
    """Per channel ``(ns, channel, versions, stored bytes, rebuilt bytes)`` of a thread:
    what ``stats(thread_id=...)`` reports.

    Args:
        rows: One per stored value: ``(ns, channel, version, base_version, stored bytes,
            items[, raw bytes[, first byte]])``. ``base_version`` is ``None`` for a whole
            value; raw bytes (before a store's compression) default to the stored bytes;
            the first byte of a whole value whose ``items`` is unknown (stored before
            migration 0002) gives its list header's length.
    """
    stored: dict[tuple[str, str, Version], int] = {}
    by_key = {}
    for ns, ch, v, base, size, items, *more in rows:
        stored[(ns, ch, v)] = int(size)
        if items is None and base is None and len(more) > 1 and more[1]:
            header = list_header(bytes(more[1]) + b"\0\0\0\0")
            items = None if header is None else {1: 0, 3: 16, 5: 1 << 16}[header[0]]
        by_key[(ns, ch, v)] = (base, int(more[0]) if more else int(size), items)
    items_bytes: dict[tuple[str, str, Version], int] = {}

    def items_of(start: tuple[str, str, Version]) -> int:
        """Bytes of a version's items (its whole list without the header)."""
        path: list[tuple[str, str, Version]] = []
        key = start
        while key not in items_bytes:
            base, size, items = by_key[key]
            base_key = (key[0], key[1], base)
            if base is None or base_key not in by_key or len(path) > MAX_POSITION:
                header = len(array_header(items)) if items is not None and base is None else 0
                items_bytes[key] = size - header
                break
            path.append(key)
            key = base_key
        for link in reversed(path):
            base_key = (link[0], link[1], by_key[link][0])
            items_bytes[link] = items_bytes[base_key] + by_key[link][1]
        return items_bytes[start]

    totals: dict[tuple[str, str], list[int]] = {}
    for key, (base, size, items) in by_key.items():
        rebuilt = size if base is None else len(array_header(items or 0)) + items_of(key)
        entry = totals.setdefault((key[0], key[1]), [0, 0, 0])
        entry[0] += 1
        entry[1] += stored[key]
        entry[2] += rebuilt
    return [(ns, channel, n, size, rebuilt) for (ns, channel), (n, size, rebuilt) in totals.items()]
