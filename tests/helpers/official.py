"""Stores of the official LangGraph savers for the switching tests
(test_transfer_official.py): a fresh one per test, named by its ``langgraph-*`` URL, and a
`Harness` over the official saver that URL opens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
from langgraph.checkpoint.base import empty_checkpoint

from langgraph_persist_kit.transfer.official import official_saver_from_url
from tests.helpers.backends import TEST_PREFIX, Space, drop_prefix, postgres_url, redis_url
from tests.helpers.harness import Harness

OFFICIAL_KINDS = ["sqlite", "postgres", "plainredis"]


@contextmanager
def official_store(kind: str, space: Space) -> Iterator[str]:
    """The ``langgraph-*`` URL of a fresh official store: a SQLite file, a PostgreSQL
    schema (the official saver has no schema option: ``options=-csearch_path=...``
    in its conninfo) or a plainredis key prefix; removed afterwards."""
    if kind == "sqlite":
        yield f"langgraph-sqlite:///{space.path / 'official.db'}"
    elif kind == "postgres":
        database, schema = postgres_url(space.module), "official_" + uuid.uuid4().hex[:10]
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"langgraph-{database}?options={quote(f'-csearch_path={schema}')}"
        finally:
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    else:
        server, prefix = redis_url(), TEST_PREFIX + uuid.uuid4().hex[:12]
        try:
            yield f"langgraph-plain{server}?prefix={prefix}"
        finally:
            drop_prefix(server, prefix)


@contextmanager
def official_harness(url: str) -> Iterator[Harness]:
    """A sync `Harness` over the official saver of ``url`` (its default serializer)."""
    with official_saver_from_url(url, create=True) as saver:
        yield Harness("official", "sync", saver, None)


@dataclass
class Point:
    """A type of the user's own, on no allowlist: it must survive a copy or stop it."""

    x: int
    y: int


def put_point_thread(saver: Any, thread_id: str = "p") -> None:
    """A thread ``p`` whose channel value and pending write are `Point`s."""
    config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"where": Point(1, 2)}
    checkpoint["channel_versions"] = {"where": 1}
    stored = saver.put(config, checkpoint, {"source": "input", "step": -1}, {"where": 1})
    saver.put_writes(stored, [("where", Point(3, 4))], "task-1", "~a")


def points_of(saver: Any, thread_id: str = "p") -> tuple[Any, Any]:
    """The thread's channel value and pending write, as the saver reads them."""
    found = saver.get_tuple({"configurable": {"thread_id": thread_id}})
    return found.checkpoint["channel_values"]["where"], found.pending_writes[0][2]
