"""Unit tier (no server): the sans-I/O plans driven by a fake executor keyed by statement
name, in the manner of procrastinate's ``InMemoryConnector``, and the drivers' error policy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_persist_kit._core.plan import Query, arun, run
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.sqlite._plans import PLANS

SERDE = JsonPlusSerializer()


class FakeStore:
    """Answers each statement by its name in ``PLANS.queries`` (``rows_for``) and records
    the names it was asked, in order."""

    def __init__(self, rows_for: dict[str, list[Any]] | None = None) -> None:
        self.rows_for = rows_for or {}
        self.by_sql: dict[str, str] = {}
        for name, sql in PLANS.queries.items():
            self.by_sql.setdefault(sql, name)
        self.seen: list[str] = []

    def execute(self, query: Query) -> list[Any]:
        name = self.by_sql.get(query.sql) or next(  # a template: "... VALUES {rows}"
            (n for n, sql in PLANS.queries.items()
             if "{" in sql and query.sql.startswith(sql.split("{")[0])), "?")
        self.seen.append(name)
        return self.rows_for.get(name, [])


def put_plan(**metadata: Any) -> Any:
    checkpoint = generate_checkpoint(channel_values={"a": 1}, channel_versions={"a": 1})
    return PLANS.put(SERDE, generate_config("t"), checkpoint,
                     {**generate_metadata(), **metadata}, {"a": 1})


def test_a_put_stores_the_new_values_then_the_checkpoint() -> None:
    store = FakeStore()
    config = run(put_plan(), store.execute)
    assert store.seen == ["insert_channel_values", "insert_checkpoint"]
    assert config["configurable"]["thread_id"] == "t"


def test_a_bad_put_sends_no_statement() -> None:
    store = FakeStore()
    with pytest.raises(ConfigurationError, match="lone surrogate"):
        run(put_plan(note="\udcff"), store.execute)
    assert store.seen == []


def test_a_get_tuple_is_one_statement_and_none_when_nothing_is_stored() -> None:
    store = FakeStore()
    assert run(PLANS.get_tuple(SERDE, generate_config("t")), store.execute) is None
    assert len(store.seen) == 1


def test_a_failing_statement_is_thrown_into_the_plan_which_may_clean_up() -> None:
    cleaned: list[str] = []

    def plan() -> Any:
        try:
            yield Query("first")
        except RuntimeError:
            cleaned.append("cleaned")
            raise
        return "unreachable"

    def execute(query: Query) -> Any:
        raise RuntimeError("the store failed")

    async def aexecute(query: Query) -> Any:
        raise RuntimeError("the store failed")

    with pytest.raises(RuntimeError, match="the store failed"):
        run(plan(), execute)
    with pytest.raises(RuntimeError, match="the store failed"):
        asyncio.run(arun(plan(), aexecute))
    assert cleaned == ["cleaned", "cleaned"]  # the same policy in both drivers
