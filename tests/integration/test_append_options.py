"""``append_deltas`` / ``append_cache_bytes``: every saver takes them as constructor and
``from_conn_string`` keywords and in its URL's query (a keyword wins), refuses bad values
by name, stores no appended pieces when off, and reads a store written either way.

On every backend x mode (`BACKENDS`, `MODES`), each on a fresh store of its own
(`store_url`), opened as a user does: ``saver_from_url`` / ``async_saver_from_url``.
Whether pieces were stored is read from ``stats(thread_id=...)`` (`has_pieces`), and
from the table on PostgreSQL, whose stored bytes are counted after its compression.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from langchain_core.messages import HumanMessage
from psycopg import sql

from langgraph_persist_kit import async_saver_from_url, saver_from_url
from langgraph_persist_kit._core.deltas import APPEND, DEFAULT_CACHE_BYTES
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.postgres._common import check_conninfo
from tests.helpers.backends import BACKENDS, MODES, Space, store_url
from tests.helpers.differential import thread
from tests.helpers.graphs import chat_graph
from tests.helpers.harness import Harness, harness_of
from tests.helpers.maintenance_cli import ok, run

COMBINATIONS = [(backend, mode) for backend in BACKENDS for mode in MODES]

MIB = 1024 * 1024


@pytest.fixture(params=COMBINATIONS, ids=[f"{b}-{m}" for b, m in COMBINATIONS])
def combo(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.fixture
def url(combo: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh store of the combination's backend: a SQLite file, a PostgreSQL schema or a
    Redis key prefix (dropped afterwards)."""
    with store_url(combo[0], Space(tmp_path, request.module.__name__)) as found:
        yield found


def with_query(url: str, **options: Any) -> str:
    """``url`` with ``options`` added to its query."""
    return url + ("&" if "?" in url else "?") + urlencode(options)


@contextmanager
def opened(combo: tuple[str, str], url: str, **options: Any) -> Iterator[Harness]:
    """The combination's saver on ``url``, opened by ``saver_from_url`` /
    ``async_saver_from_url`` with ``options`` as ``from_conn_string`` keywords."""
    backend, mode = combo
    yield from harness_of(backend, mode, lambda: saver_from_url(url, **options),
                          lambda: async_saver_from_url(url, **options))


def chat(h: Harness, thread_id: str, turns: range) -> None:
    """Human turns on a chat graph (its ``messages`` channel grows by two per turn)."""
    graph = chat_graph().compile(checkpointer=h.saver)
    for n in turns:
        h.invoke(graph, {"messages": [HumanMessage("x" * 300 + f" {n}", id=f"h{n}")]},
                 thread(thread_id))


def channel_sizes(h: Harness, thread_id: str) -> dict[str, tuple[int, int]]:
    """``{channel: (stored bytes, rebuilt bytes)}`` of a thread's root namespace."""
    stats = h.call("stats", thread_id=thread_id)
    assert stats["channels"], stats
    return {c["channel"]: (c["bytes"], c["rebuilt_bytes"]) for c in stats["channels"]
            if c["checkpoint_ns"] == ""}


def postgres_pieces(h: Harness, url: str, thread_id: str) -> int:
    """How many of the thread's values PostgreSQL holds as appended pieces."""
    conninfo, _ = check_conninfo(url)
    query = sql.SQL("SELECT count(*) FROM {}.channel_values WHERE thread_id = %s AND type = %s")
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(query.format(sql.Identifier(h.saver.plans.schema)),
                           (thread_id, APPEND)).fetchone()
    assert row is not None
    return int(row[0])


def has_pieces(h: Harness, url: str, thread_id: str) -> bool:
    """Whether any value of the thread is stored as appended pieces.

    SQLite and Redis count stored bytes as they are: a channel stored whole throughout
    has ``bytes == rebuilt_bytes``, one with pieces fewer bytes than it rebuilds.
    PostgreSQL counts stored bytes after its compression, so its table is asked."""
    sizes = channel_sizes(h, thread_id)
    if h.backend == "postgres":
        return postgres_pieces(h, url, thread_id) > 0
    assert all(stored <= rebuilt for stored, rebuilt in sizes.values()), sizes
    return any(stored < rebuilt for stored, rebuilt in sizes.values())


def stored_whole(combo: tuple[str, str], url: str, turns: range) -> dict[str, tuple[int, int]]:
    """`channel_sizes` of the same chat stored whole, for reference: written on ``url`` by a
    saver whose append-delta memory is taken away (``deltas`` ``None``)."""
    thread_id = f"stored-whole-{turns.start}-{turns.stop}"
    with opened(combo, url) as h:
        h.saver.deltas = None
        chat(h, thread_id, turns)
        return channel_sizes(h, thread_id)


def rebuilt(sizes: dict[str, tuple[int, int]]) -> dict[str, int]:
    return {channel: size for channel, (_, size) in sizes.items()}


def snapshot(h: Harness, thread_id: str) -> list[tuple[Any, ...]]:
    """Everything the saver reads back of a thread: ``list`` and ``get_tuple`` of each
    checkpoint, channel values included."""
    config = {"configurable": {"thread_id": thread_id}}
    listed = h.call("list", config)
    got = [h.call("get_tuple", t.config) for t in listed]
    return [(t.config, t.checkpoint, t.metadata, t.parent_config, t.pending_writes)
            for t in [*listed, *got]]


# --- on, off, from keywords and from the URL ------------------------------------------


def test_on_by_default_with_pieces(combo: tuple[str, str], url: str) -> None:
    with opened(combo, url) as h:
        assert h.saver.deltas is not None
        assert h.saver.deltas.cache_bytes == DEFAULT_CACHE_BYTES
        chat(h, "t", range(4))
        assert has_pieces(h, url, "t")


@pytest.mark.parametrize("given", ["keyword", "url"])
def test_off_stores_every_value_whole(combo: tuple[str, str], url: str, given: str) -> None:
    keywords = {"append_deltas": False} if given == "keyword" else {}
    target = with_query(url, append_deltas="false") if given == "url" else url
    with opened(combo, target, **keywords) as h:
        assert h.saver.deltas is None
        chat(h, "t", range(4))
        assert not has_pieces(h, url, "t")
        assert len(h.call("get_tuple", thread("t")).checkpoint["channel_values"]["messages"]) == 8


@pytest.mark.parametrize("given", ["keyword", "url"])
def test_cache_bytes(combo: tuple[str, str], url: str, given: str) -> None:
    keywords = {"append_cache_bytes": MIB} if given == "keyword" else {}
    target = with_query(url, append_cache_bytes=MIB) if given == "url" else url
    with opened(combo, target, **keywords) as h:
        assert h.saver.deltas is not None and h.saver.deltas.cache_bytes == MIB
        chat(h, "t", range(3))
        assert has_pieces(h, url, "t")


def test_zero_cache_bytes_remember_nothing(combo: tuple[str, str], url: str) -> None:
    with opened(combo, with_query(url, append_cache_bytes=0)) as h:
        assert h.saver.deltas is not None and h.saver.deltas.cache_bytes == 0
        chat(h, "t", range(3))
        assert not has_pieces(h, url, "t")


def test_a_keyword_wins_over_the_url(combo: tuple[str, str], url: str) -> None:
    with opened(combo, with_query(url, append_deltas="false", append_cache_bytes=MIB),
                append_deltas=True, append_cache_bytes=2 * MIB) as h:
        assert h.saver.deltas is not None and h.saver.deltas.cache_bytes == 2 * MIB
    with opened(combo, with_query(url, append_deltas="true"), append_deltas=False) as h:
        assert h.saver.deltas is None
    for text in ("FALSE", "0", "no", "off"):
        with opened(combo, with_query(url, append_deltas=text)) as h:
            assert h.saver.deltas is None, text


def test_the_constructor_takes_both_keyword_only(combo: tuple[str, str], url: str) -> None:
    with opened(combo, url) as h:
        saver = h.saver
        if combo[0] == "sqlite":
            target, store = (saver.conn,), {}
        elif combo[0] == "postgres":
            target, store = (saver.conn,), {"schema": saver.plans.schema}
        else:
            target, store = (saver.client,), {"key_prefix": saver.plans.keys.prefix}
        cls: Any = type(saver)
        for name in ("append_deltas", "append_cache_bytes"):
            assert inspect.signature(cls).parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert cls(*target, **store).deltas is not None
        assert cls(*target, **store, append_deltas=False).deltas is None
        assert cls(*target, **store, append_cache_bytes=MIB).deltas.cache_bytes == MIB
        for bad in ({"append_deltas": "maybe"}, {"append_deltas": None},
                    {"append_cache_bytes": -1}, {"append_cache_bytes": 1.5}):
            with pytest.raises(ConfigurationError, match=next(iter(bad))):
                cls(*target, **store, **bad)


# --- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "keywords", "named"), [
    ({"append_deltas": "maybe"}, {}, "append_deltas"),
    ({"append_deltas": ""}, {}, "append_deltas"),
    ({}, {"append_deltas": "false"}, "append_deltas"),
    ({}, {"append_deltas": 1}, "append_deltas"),
    ({"append_cache_bytes": "-1"}, {}, "append_cache_bytes"),
    ({"append_cache_bytes": "64MiB"}, {}, "append_cache_bytes"),
    ({}, {"append_cache_bytes": -1}, "append_cache_bytes"),
    ({}, {"append_cache_bytes": True}, "append_cache_bytes"),
    ({"append_delta": "false"}, {}, "append_delta"),
], ids=["url-maybe", "url-empty", "keyword-str", "keyword-int", "url-negative", "url-unit",
        "keyword-negative", "keyword-bool", "url-unknown"])
def test_bad_values_and_unknown_options_are_refused(
    combo: tuple[str, str], url: str, query: dict[str, str], keywords: dict[str, Any],
    named: str,
) -> None:
    target = with_query(url, **query) if query else url
    with pytest.raises(ConfigurationError, match=named), opened(combo, target, **keywords):
        pass


def test_an_unknown_keyword_is_refused(combo: tuple[str, str], url: str) -> None:
    with pytest.raises(ConfigurationError, match="append_cache_bytes"), opened(
        combo, url, append_cache_size=MIB
    ):
        pass  # the message names the close match


# --- a store written one way reads the same the other way -----------------------------


@pytest.mark.parametrize("first", [True, False], ids=["on-then-off", "off-then-on"])
def test_a_store_reads_the_same_either_way(combo: tuple[str, str], url: str,
                                           first: bool) -> None:
    with opened(combo, url, append_deltas=first) as writer:
        chat(writer, "t", range(4))
        assert has_pieces(writer, url, "t") is first
        written = snapshot(writer, "t")
    with opened(combo, url, append_deltas=not first) as reader:
        assert snapshot(reader, "t") == written
        chat(reader, "t", range(4, 6))  # goes on with the thread the other way
        continued = snapshot(reader, "t")
        values = reader.call("get_tuple", thread("t")).checkpoint["channel_values"]
        assert [m.id for m in values["messages"]] == [
            i for n in range(1, 7) for i in (f"h{n - 1}", f"ai-{n}")]
    with opened(combo, url, append_deltas=first) as again:  # a new process, cache empty
        assert snapshot(again, "t") == continued
        assert has_pieces(again, url, "t")  # the turns written with pieces, whichever


@pytest.mark.parametrize("first", [True, False], ids=["on-then-off", "off-then-on"])
def test_rebuilt_bytes_do_not_depend_on_how_values_were_stored(
    combo: tuple[str, str], url: str, first: bool,
) -> None:
    whole = stored_whole(combo, url, range(6))
    with opened(combo, url, append_deltas=first) as writer:
        chat(writer, "t", range(4))
    with opened(combo, url, append_deltas=not first) as other:
        chat(other, "t", range(4, 6))
        assert rebuilt(channel_sizes(other, "t")) == rebuilt(whole)


# --- the CLI: the URL's query ---------------------------------------------------------


@pytest.mark.parametrize("combo", [(b, "sync") for b in BACKENDS], ids=BACKENDS)
def test_the_cli_takes_the_options_in_the_url(combo: tuple[str, str], url: str) -> None:
    with opened(combo, url) as h:
        chat(h, "t", range(3))
        expected = h.call("stats", thread_id="t")
    for query in ({"append_deltas": "false"}, {"append_cache_bytes": MIB}):
        result = ok(run("stats", with_query(url, **query), "--thread", "t", "--json"))
        assert json.loads(result.stdout) == expected
    refused = run("stats", with_query(url, append_deltas="maybe"), "--thread", "t")
    assert refused.exit_code == 1 and "append_deltas" in refused.stderr
