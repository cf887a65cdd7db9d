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

from langgraph_persist_kit._core.calls import Call, aexecute, execute, same
from langgraph_persist_kit._core.plan import Emit, Query, aiterate, arun, iterate, run
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


def listing(pages: list[list[int]], cleaned: list[str]) -> Any:
    """Emits each page after one query, and records a failed query before re-raising."""
    for page in pages:
        try:
            yield Query(f"page {page}")
        except RuntimeError:
            cleaned.append("cleaned")
            raise
        yield Emit(page)


def drain(mode: str, plan: Any, execute: Any) -> list[Any]:
    if mode == "sync":
        return list(iterate(plan, execute))

    async def collect() -> list[Any]:
        async def aexecute(query: Query) -> Any:
            return execute(query)
        return [item async for item in aiterate(plan, aexecute)]

    return asyncio.run(collect())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_listing_yields_every_page_in_order_then_stops(mode: str) -> None:
    asked: list[str] = []
    items = drain(mode, listing([[1, 2], [], [3]], []), lambda q: asked.append(q.sql))
    assert items == [1, 2, 3]
    assert asked == ["page [1, 2]", "page []", "page [3]"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_listing_yields_a_page_before_its_next_query_runs(mode: str) -> None:
    asked: list[str] = []
    plan = listing([[1], [2]], [])
    if mode == "sync":
        items = iterate(plan, lambda q: asked.append(q.sql))
        assert next(items) == 1
        assert asked == ["page [1]"]  # the second page's query has not run yet
    else:
        async def first() -> Any:
            async def aexecute(query: Query) -> Any:
                asked.append(query.sql)
            return await aiterate(plan, aexecute).__anext__()
        assert asyncio.run(first()) == 1
        assert asked == ["page [1]"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failed_query_of_a_listing_is_thrown_into_it_as_into_any_plan(mode: str) -> None:
    cleaned: list[str] = []

    def execute(query: Query) -> Any:
        if query.sql == "page [2]":
            raise RuntimeError("the store failed")

    with pytest.raises(RuntimeError, match="the store failed"):
        drain(mode, listing([[1], [2], [3]], cleaned), execute)
    assert cleaned == ["cleaned"]


def test_run_refuses_a_plan_that_emits() -> None:
    with pytest.raises(TypeError, match="iterate"):
        run(listing([[1]], []), lambda q: None)


def test_a_call_plan_names_both_methods_and_each_mode_calls_its_own() -> None:
    class Target:
        def get(self, key: str) -> str:
            return f"sync {key}"

        async def aget(self, key: str) -> str:
            return f"async {key}"

        def items(self) -> Any:
            return iter([1, 2])

        async def aitems(self) -> Any:
            for item in (1, 2):
                yield item

    target = Target()

    def plan() -> Any:
        got = yield Call(target.get, target.aget, ("k",))
        items = yield Call(target.items, target.aitems, each=same)
        return got, items

    assert run(plan(), execute) == ("sync k", [1, 2])
    assert asyncio.run(arun(plan(), aexecute)) == ("async k", [1, 2])
