"""Integration tier: a store set up before append deltas (schema version 1, Redis layout
1) migrates without rewriting its data; its whole values read back, and the thread goes
on with pieces (`docs/storage.md`, "Existing stores").

The old store is made by taking migration 0002 back on a store a saver wrote with append
deltas off (its columns dropped, its record deleted), which is what version 1 held.
"""

from __future__ import annotations

import operator
import sqlite3
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
import redis
from langgraph.checkpoint.memory import InMemorySaver
from psycopg import sql

from langgraph_persist_kit import saver_from_url
from tests.helpers.backends import drop_prefix, fresh_schema, postgres_url, redis_url
from tests.helpers.graphs import one_node_graph

NEW_COLUMNS = ("base_version", "position", "items")


class Chat(TypedDict):
    messages: Annotated[list, operator.add]


def chat_graph() -> Any:
    def bot(state: Chat) -> dict[str, Any]:
        return {"messages": [f"answer {len(state['messages'])} " + "text " * 30]}

    return one_node_graph(Chat, bot)


def turns(graph: Any, numbers: range) -> None:
    for n in numbers:
        graph.invoke({"messages": [f"question {n} " + "words " * 30]},
                     {"configurable": {"thread_id": "t"}})


def take_back_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        for column in NEW_COLUMNS:
            conn.execute(f"ALTER TABLE channel_values DROP COLUMN {column}")
        conn.execute("DELETE FROM persist_kit_migrations WHERE version = 2")


def take_back_postgres(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        table = sql.SQL("{}.channel_values").format(sql.Identifier(schema))
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT channel_values_base_version_fkey")
                     .format(table))
        for column in NEW_COLUMNS:  # the partial index goes with base_version
            conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN {}")
                         .format(table, sql.Identifier(column)))
        conn.execute(sql.SQL("DELETE FROM {}.persist_kit_migrations WHERE version = 2")
                     .format(sql.Identifier(schema)))


def take_back_redis(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.set(f"{prefix}:schema", 1)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """``(url, take_back)``: a store URL, and what turns it into a version 1 store."""
    if request.param == "sqlite":
        path = tmp_path / "old.db"
        yield f"sqlite:///{path}", lambda: take_back_sqlite(path)
    elif request.param == "postgres":
        url, schema = postgres_url(__name__), fresh_schema()
        yield f"{url}?schema={schema}", lambda: take_back_postgres(url, schema)
    else:
        prefix = "pk-test-" + uuid.uuid4().hex[:12]
        yield (f"{redis_url()}?key_prefix={prefix}", lambda: take_back_redis(redis_url(), prefix))
        drop_prefix(redis_url(), prefix)


def test_an_old_store_migrates_reads_back_and_goes_on_with_pieces(old_store: Any) -> None:
    url, take_back = old_store
    memory = chat_graph().compile(checkpointer=InMemorySaver())
    turns(memory, range(8))
    with saver_from_url(url, append_deltas=False) as saver:  # what version 1 wrote
        turns(chat_graph().compile(checkpointer=saver), range(8))
    take_back()
    config = {"configurable": {"thread_id": "t"}}
    with saver_from_url(url) as saver:  # setup() migrates
        graph = chat_graph().compile(checkpointer=saver)
        assert [s.values for s in graph.get_state_history(config)] == \
            [s.values for s in memory.get_state_history(config)]
        turns(graph, range(8, 20))
        turns(memory, range(8, 20))
        assert [s.values for s in graph.get_state_history(config)] == \
            [s.values for s in memory.get_state_history(config)]
        stats = saver.stats(thread_id="t")
    (messages,) = [c for c in stats["channels"] if c["channel"] == "messages"]
    assert messages["versions"] == 40
    assert messages["rebuilt_bytes"] > 2 * messages["bytes"], messages  # pieces after it
