"""Unit tier (no server): `_core/deltas.py`, append-delta storage of list values.

What is stored (`AppendDeltas.encode`: a piece holds exactly the appended items' bytes,
anything else is whole), what is rebuilt (`rebuild`: the serializer's very bytes), the
chain layout (`base_position`), the bounded memory and `channel_totals` (``stats``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import ormsgpack
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_persist_kit._core.codec import ChannelValueRow, Version
from langgraph_persist_kit._core.deltas import (
    APPEND,
    BRANCHING,
    ENTRY_BYTES,
    LINK_BYTES,
    LIST_TYPE,
    AppendDeltas,
    StoredValue,
    array_header,
    base_position,
    list_header,
)
from langgraph_persist_kit._core.pieces import BrokenChainError, Piece, channel_totals, rebuild
from langgraph_persist_kit.errors import BackendError

SERDE = JsonPlusSerializer()


def row(value: Any, version: str, channel: str = "messages") -> ChannelValueRow:
    """The row a put hands the store for ``value`` (as the serializer types it)."""
    return ChannelValueRow(channel, version, *SERDE.dumps_typed(value))


def put(deltas: AppendDeltas, *rows: ChannelValueRow, thread_id: str = "t") -> list[StoredValue]:
    """One put: encode, then remember what was stored (as a store does)."""
    done = deltas.encode(thread_id, "", rows)
    done.stored()
    return done.rows


def messages(count: int) -> list[BaseMessage]:
    """A chat of ``count`` messages, each with a fixed id."""
    return [(HumanMessage if i % 2 == 0 else AIMessage)(f"message {i} " + "x" * (i % 7), id=f"m{i}")
            for i in range(count)]


def as_piece(stored: StoredValue) -> Piece:
    return Piece(stored.type, stored.value, stored.base_version, stored.position, stored.items)


# --- msgpack array headers and the chain layout ----------------------------------------


@pytest.mark.parametrize("items", [0, 1, 15, 16, 17, 255, 65535, 65536, 70000])
def test_headers_round_trip_and_match_msgpack(items: int) -> None:
    """`array_header` writes what msgpack writes; `list_header` reads it back."""
    packed = ormsgpack.packb([None] * items)
    header = array_header(items)
    assert packed[: len(header)] == header
    assert len(packed) == len(header) + items  # nil is one byte: the header is all the rest
    assert list_header(packed) == (len(header), items)
    assert len(header) == (1 if items < 16 else 3 if items < 65536 else 5)


@pytest.mark.parametrize("data", [b"", ormsgpack.packb({"a": 1}), ormsgpack.packb("text"),
                                  ormsgpack.packb(7), b"\xdc\x00", b"\xdd\x00\x00\x01"])
def test_what_is_not_a_whole_array_header_is_none(data: bytes) -> None:
    assert list_header(data) is None


def base_chain(position: int) -> list[int]:
    chain = [position]
    while chain[-1]:
        chain.append(base_position(chain[-1]))
    return chain


def digits(n: int) -> list[int]:
    out = []
    while n:
        n, digit = divmod(n, BRANCHING)
        out.append(digit)
    return out


def test_base_positions_form_short_chains_ending_at_zero() -> None:
    """From any position the chain has one piece per digit unit, at most (B-1)*digits, ends
    at 0, and the next position's base is on it (what `encode` relies on)."""
    for k in range(1, BRANCHING**5 + 3):
        base = base_position(k)
        unit = k - base
        assert 0 <= base < k and k % unit == 0 and unit & (unit - 1) == 0  # a power of B
        assert k % (unit * BRANCHING) != 0  # the largest power of B dividing k
        chain = base_chain(k)
        assert chain[-1] == 0 and len(chain) - 1 == sum(digits(k))
        assert len(chain) - 1 <= (BRANCHING - 1) * len(digits(k))
        assert base_position(k + 1) in chain


# --- encode: pieces and whole values ----------------------------------------------------


def test_an_extending_list_is_stored_as_exactly_the_appended_items() -> None:
    deltas = AppendDeltas()
    values = [["a", 1], ["a", 1, {"b": 2}], ["a", 1, {"b": 2}, "c", None]]
    first, second, third = (put(deltas, row(v, f"v{i}"))[0] for i, v in enumerate(values))
    assert (first.base_version, first.position, first.items) == (None, 0, 2)
    assert first.type == LIST_TYPE and first.value == ormsgpack.packb(values[0])
    assert (second.type, second.base_version, second.position, second.items) == (
        APPEND, "v0", 1, 3)
    assert second.value == ormsgpack.packb({"b": 2})
    assert (third.base_version, third.position, third.items) == ("v1", 2, 5)
    assert third.value == ormsgpack.packb("c") + ormsgpack.packb(None)


@pytest.mark.parametrize("items", [14, 15, 16, 65535])
def test_pieces_across_header_boundaries_rebuild_what_msgpack_writes(items: int) -> None:
    """The header grows (15 -> 16, 65535 -> 65536 items) but a piece stays just the items."""
    deltas = AppendDeltas()
    stored = {}
    for n in (items, items + 1, items + 2):
        (value,) = put(deltas, row(list(range(n)), f"v{n}"))
        stored[("messages", value.version)] = as_piece(value)
        if n > items:
            assert value.type == APPEND and value.value == ormsgpack.packb(n - 1)
    rebuilt = rebuild(stored).values
    assert rebuilt == {("messages", f"v{n}"): (LIST_TYPE, ormsgpack.packb(list(range(n))))
                       for n in (items, items + 1, items + 2)}


def test_the_same_list_again_is_an_empty_piece() -> None:
    deltas = AppendDeltas()
    put(deltas, row([1, 2], "v1"))
    again = put(deltas, row([1, 2], "v2"))[0]
    assert (again.type, again.value, again.base_version, again.items) == (APPEND, b"", "v1", 2)


@pytest.mark.parametrize(("second", "kind"), [
    (["a", "B", "c"], "msgpack"),  # an earlier item changed
    (["a"], "msgpack"),  # shorter
    (["b", "a", "b"], "msgpack"),  # the same length of bytes, other items
    ({"a": "b"}, "msgpack"),  # a dict
    ("ab", "msgpack"),  # a string
    (["a", "b", "c"], "json"),  # another serializer type
    (["a", "b", "c"], "msgpack+aes"),  # encrypted: never split
], ids=["mutated", "shorter", "other-items", "dict", "str", "json", "aes"])
def test_a_value_that_does_not_extend_is_stored_whole(second: Any, kind: str) -> None:
    deltas = AppendDeltas()
    put(deltas, row(["a", "b"], "v1"))
    data = ormsgpack.packb(second)
    stored = put(deltas, ChannelValueRow("messages", "v2", kind, data))[0]
    assert (stored.type, stored.value, stored.base_version) == (kind, data, None)
    is_list = kind == LIST_TYPE and isinstance(second, list)
    assert (stored.position, stored.items) == ((0, len(second)) if is_list else (None, None))
    after = put(deltas, row(["a", "b", "c", "d"], "v3"))[0]  # extends v1, not v2
    assert after.base_version == ("v2" if second == ["a"] else None)  # v2 is the new root


def test_a_header_msgpack_would_not_write_is_stored_whole() -> None:
    deltas = AppendDeltas()
    put(deltas, row([1], "v1"))
    long_form = b"\xdc\x00\x02" + ormsgpack.packb(1) + ormsgpack.packb(2)
    stored = put(deltas, ChannelValueRow("messages", "v2", LIST_TYPE, long_form))[0]
    assert (stored.value, stored.base_version, stored.position) == (long_form, None, None)


def test_channels_and_threads_are_remembered_apart() -> None:
    deltas = AppendDeltas()
    put(deltas, row([1], "v1", "a"), row([2], "v1", "b"))
    put(deltas, row([1], "v1", "a"), thread_id="other")
    a, b = put(deltas, row([1, 3], "v2", "a"), row([1, 3], "v2", "b"))
    assert a.base_version == "v1" and b.base_version is None
    assert put(deltas, row([1], "v5", "a"), thread_id="other")[0].type == APPEND


# --- rebuild: exact bytes from pieces ----------------------------------------------------


def growing_chat(versions: int) -> Iterator[tuple[str, list[BaseMessage]]]:
    """``versions`` versions of a growing chat (1-3 messages a version, across 15/16)."""
    count = 0
    for i in range(versions):
        count += 1 + i % 3
        yield f"{i + 1:05}", messages(count)


def store_chain(deltas: AppendDeltas, versions: int) -> dict[tuple[str, Version], Piece]:
    return {(s.channel, s.version): as_piece(s)
            for version, value in growing_chat(versions)
            for s in put(deltas, row(value, version))}


def chain_of(stored: dict[tuple[str, Version], Piece],
             key: tuple[str, Version]) -> list[tuple[str, Version]]:
    """The keys a value is rebuilt from: itself, then its bases to the whole root."""
    out = [key]
    while (base := stored[out[-1]].base_version) is not None:
        out.append(("messages", base))
    return out


def test_a_chain_of_100_versions_rebuilds_the_serializers_bytes() -> None:
    deltas = AppendDeltas()
    stored = store_chain(deltas, 100)
    pieces = [p for p in stored.values() if p.type == APPEND]
    assert len(pieces) == 99 and stored[("messages", "00001")].base_version is None
    assert sum(len(p.value) for p in stored.values()) * 3 < sum(
        len(SERDE.dumps_typed(v)[1]) for _, v in growing_chat(100))
    rebuilt = rebuild(stored).values
    for version, value in growing_chat(100):
        assert rebuilt[("messages", version)] == SERDE.dumps_typed(value), version
        assert SERDE.loads_typed(rebuilt[("messages", version)]) == value
        # each version needs only its own chain: (B-1) pieces per base-B digit at most
        chain = chain_of(stored, ("messages", version))
        assert len(chain) - 1 <= (BRANCHING - 1) * len(digits(stored[chain[0]].position or 1))
        alone = rebuild({k: stored[k] for k in chain}, [("messages", version)]).values
        assert alone == {("messages", version): SERDE.dumps_typed(value)}


def test_a_saver_that_read_a_value_goes_on_with_pieces() -> None:
    """`learn` from a read (a new process): the next version extends the read chain."""
    stored = store_chain(AppendDeltas(), 100)
    fresh = AppendDeltas()
    chains = rebuild(stored, [("messages", "00100")]).chains
    fresh.learn("t", "", {channel: chain for (channel, _), chain in chains.items()})
    value = [*messages(sum(1 + i % 3 for i in range(100))), HumanMessage("next", id="n")]
    piece = put(fresh, row(value, "00101"))[0]
    assert piece.type == APPEND and piece.position == 100
    assert piece.base_version == "00097"  # position 96: 100 minus its lowest digit unit
    stored[("messages", "00101")] = as_piece(piece)
    assert rebuild(stored, [("messages", "00101")]).values[("messages", "00101")] == (
        SERDE.dumps_typed(value))


def test_a_missing_base_breaks_the_chain() -> None:
    stored = store_chain(AppendDeltas(), 6)
    del stored[("messages", "00005")]  # position 4, the base of 00006 (position 5)
    with pytest.raises(BrokenChainError, match="no longer stored") as raised:
        rebuild(stored, [("messages", "00006")])
    assert isinstance(raised.value, BackendError)
    loop: dict[tuple[str, Version], Piece] = {("c", "v"): Piece(APPEND, b"\x01", "v", 1, 1)}
    with pytest.raises(BrokenChainError, match="loops"):
        rebuild(loop)


# --- bounded memory --------------------------------------------------------------------


def test_the_memory_stays_within_its_bytes_and_evicts_the_least_recent() -> None:
    value = list(range(40))
    # an entry counts its value, and the memory beside it: key, bookkeeping, one link
    size = len(ormsgpack.packb(value)) + ENTRY_BYTES + LINK_BYTES
    deltas = AppendDeltas(cache_bytes=2 * size + size // 2)
    for thread_id in ("a", "b", "c"):
        put(deltas, row(value, "v1"), thread_id=thread_id)
        assert deltas.bytes <= deltas.cache_bytes
    assert len(deltas) == 2 and deltas.bytes == 2 * size  # "a" went first
    grown = row([*value, 40], "v2")
    assert put(deltas, grown, thread_id="a")[0].base_version is None  # forgotten: whole
    assert deltas.bytes <= deltas.cache_bytes and len(deltas) == 2  # "b" went next
    assert put(deltas, grown, thread_id="c")[0].base_version == "v1"
    assert put(deltas, row(list(range(1000)), "v9"), thread_id="d")[0].position == 0
    assert deltas.bytes <= deltas.cache_bytes  # a value above the bound is not remembered


def test_zero_cache_bytes_store_every_value_whole() -> None:
    deltas = AppendDeltas(cache_bytes=0)
    for version, value in growing_chat(20):
        stored = put(deltas, row(value, version))[0]
        assert stored.base_version is None and stored.value == SERDE.dumps_typed(value)[1]
    assert (len(deltas), deltas.bytes) == (0, 0)


def test_forget_one_thread_or_all() -> None:
    deltas = AppendDeltas()
    for thread_id in ("a", "b"):
        put(deltas, row([1], "v1"), row([2], "v1", "other"), thread_id=thread_id)
    per_thread = deltas.bytes // 2
    deltas.forget("a")
    assert (len(deltas), deltas.bytes) == (2, per_thread)
    assert put(deltas, row([1, 2], "v2"), thread_id="a")[0].base_version is None
    assert put(deltas, row([1, 2], "v2"), thread_id="b")[0].base_version == "v1"
    deltas.forget()
    assert (len(deltas), deltas.bytes) == (0, 0)


# --- when a base is gone: whole rows --------------------------------------------------------


def test_whole_rows_store_every_piece_whole_and_restart_the_chain() -> None:
    deltas = AppendDeltas()
    put(deltas, row([1, 2], "v1"), row("text", "v1", "plain"))
    done = deltas.encode("t", "", [row([1, 2, 3], "v2"), row("more", "v2", "plain")])
    assert done.has_pieces and done.bases() == [("messages", "v1")]
    whole = done.whole_rows()
    assert not done.has_pieces and done.rows == whole
    assert whole[0] == StoredValue("messages", "v2", LIST_TYPE, ormsgpack.packb([1, 2, 3]),
                                   None, 0, 3)
    assert whole[1] == StoredValue("plain", "v2", *SERDE.dumps_typed("more"), None, None, None)
    done.stored()
    after = put(deltas, row([1, 2, 3, 4], "v3"))[0]
    assert (after.base_version, after.position, after.value) == ("v2", 1, ormsgpack.packb(4))


# --- channel_totals: what stats report -------------------------------------------------


def totals_of(rows: Sequence[Sequence[Any]]) -> dict[str, tuple[int, int, int]]:
    return {ch: (n, size, rebuilt) for _, ch, n, size, rebuilt in channel_totals(rows)}


def test_channel_totals_count_rebuilt_bytes_of_a_chain() -> None:
    stored = store_chain(AppendDeltas(), 100)
    rows = [("", ch, v, p.base_version, len(p.value), p.items) for (ch, v), p in stored.items()]
    rows.append(("", "plain", "v1", None, 5, None))
    expected = sum(len(SERDE.dumps_typed(value)[1]) for _, value in growing_chat(100))
    stored_bytes = sum(len(p.value) for p in stored.values())
    assert totals_of(rows) == {"messages": (100, stored_bytes, expected), "plain": (1, 5, 5)}
    compressed = [(*r[:4], r[4] // 2, r[5], r[4]) for r in rows]  # raw bytes given apart
    assert totals_of(compressed)["messages"] == (100, sum(r[4] for r in compressed
                                                          if r[1] == "messages"), expected)


def test_channel_totals_of_pieces_on_a_root_stored_without_items() -> None:
    """A whole list stored with append deltas off (or before migration 0002: no items) that a
    saver later extends with pieces: rebuilt bytes are still the values' lengths (the store
    gives the root's first byte, which tells its header's length)."""
    root, grown = ormsgpack.packb(list(range(20))), ormsgpack.packb(list(range(25)))
    piece = grown[len(array_header(25)):][20:]
    rows = [("", "messages", "v1", None, len(root), None, len(root), root[:1]),
            ("", "messages", "v2", "v1", len(piece), 25)]
    assert totals_of(rows)["messages"] == (2, len(root) + len(piece), len(root) + len(grown))


def test_many_short_lists_stay_within_the_bound() -> None:
    """The bound counts each entry's own memory, not only its value's bytes: a server
    remembering an empty list per thread does not grow without limit."""
    deltas = AppendDeltas(cache_bytes=100_000)
    for n in range(2_000):
        put(deltas, row([], "v1"), thread_id=f"t{n}")
    assert deltas.bytes <= deltas.cache_bytes
    assert len(deltas) <= 100_000 // (ENTRY_BYTES + LINK_BYTES)


def test_a_version_the_store_held_already_leaves_the_memory_as_it_was() -> None:
    """A put whose row the store skipped (it held that version, maybe as a piece deep in a
    chain) must not become the root of later pieces: the saver keeps what it remembered."""
    deltas = AppendDeltas()
    put(deltas, row([1, 2], "v1"))
    again = deltas.encode("t", "", [row([1, 2], "v1")])  # an import re-puts v1
    again.stored(kept={"messages"})
    assert deltas.encode("t", "", [row([1, 2, 3], "v2")]).rows[0].base_version == "v1"
    older = deltas.encode("t", "", [row([1], "v0")])  # a fork re-puts an older version
    assert older.rows[0].base_version is None
    older.stored(kept={"messages"})
    after = deltas.encode("t", "", [row([1, 2, 9], "v3")]).rows[0]
    assert (after.base_version, after.position) == ("v1", 1)  # not a chain rooted at v0
