"""Async savers serving sync calls from other threads, as the official async savers do.

LangGraph makes such calls: a sync node of an async graph that runs a subgraph with
``invoke`` (the subgraph uses the parent's checkpointer), and
``await asyncio.to_thread(graph.get_state, config)``. Each test runs on every backend's
async saver and compares with ``InMemorySaver``; a sync call on the saver's own loop
thread must still fail clearly instead of blocking that loop for ever.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from langgraph_persist_kit.errors import ConfigurationError
from tests.helpers.backends import BACKENDS, Space
from tests.helpers.differential import normalise_snapshot, positions, sides, thread
from tests.helpers.graphs import interrupt_graph
from tests.helpers.harness import Harness, open_harness


@pytest.fixture(params=BACKENDS)
def async_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield from open_harness(request.param, "async", Space(tmp_path, request.module.__name__))


class Log(TypedDict, total=False):
    log: Annotated[list, operator.add]


def nested_invoke_graph(saver: Any) -> StateGraph:
    """A parent whose *sync* node runs a subgraph with ``invoke`` (LangGraph's
    ``test_weather_subgraph`` shape): in an async run, that node runs in a worker
    thread and the subgraph calls the async saver synchronously."""
    child = StateGraph(Log)
    child.add_node("look", lambda s: {"log": ["look"]})
    child.add_node("answer", lambda s: {"log": ["answer"]})
    child.add_edge(START, "look")
    child.add_edge("look", "answer")
    child.add_edge("answer", END)
    compiled_child = child.compile(checkpointer=saver)

    def call_child(state: Log, config: RunnableConfig) -> Log:
        result = compiled_child.invoke({"log": ["asked"]}, config)
        return {"log": [f"child said {len(result['log'])} things"]}

    builder = StateGraph(Log)
    builder.add_node("prep", lambda s: {"log": ["prep"]})
    builder.add_node("call_child", call_child)
    builder.add_edge(START, "prep")
    builder.add_edge("prep", "call_child")
    builder.add_edge("call_child", END)
    return builder


def test_sync_subgraph_in_async_graph_matches_in_memory(async_harness: Harness) -> None:
    memory = InMemorySaver()
    results, states = [], []
    for saver in (async_harness.saver, memory):
        graph = nested_invoke_graph(saver).compile(checkpointer=saver)
        results.append(async_harness.wait(graph.ainvoke({"log": []}, thread())))
        history = async_harness.wait(_collect(graph.aget_state_history(thread())))
        states.append([normalise_snapshot(s, positions(history)) for s in history])
    assert results[0] == results[1] == {"log": ["prep", "child said 3 things"]}
    assert states[0] == states[1]


def test_get_state_from_a_worker_thread_matches_aget_state(async_harness: Harness) -> None:
    pair = sides(async_harness, interrupt_graph)
    for h, g in pair:
        h.invoke(g, {"topic": "post"}, thread())

    async def both_ways(graph: Any) -> tuple[Any, Any, list, list]:
        threaded = await asyncio.to_thread(graph.get_state, thread())
        direct = await graph.aget_state(thread())
        threaded_history = await asyncio.to_thread(
            lambda: list(graph.get_state_history(thread())))
        direct_history = [s async for s in graph.aget_state_history(thread())]
        return threaded, direct, threaded_history, direct_history

    seen = []
    for h, g in pair:
        threaded, direct, threaded_history, direct_history = h.wait(both_ways(g))
        ids = positions(direct_history)
        assert normalise_snapshot(threaded, ids) == normalise_snapshot(direct, ids)
        assert [s.config for s in threaded_history] == [s.config for s in direct_history]
        seen.append(normalise_snapshot(threaded, ids))
    assert seen[0] == seen[1] and seen[0]["next"]  # paused at the interrupt on both

    # resume from a worker thread: the sync graph API on the async saver
    ours, ours_graph = pair[0]
    result = ours.wait(asyncio.to_thread(ours_graph.invoke, Command(resume="yes"), thread()))
    assert result == pair[1][0].invoke(pair[1][1], Command(resume="yes"), thread())


def test_saver_methods_from_a_worker_thread(async_harness: Harness) -> None:
    h = async_harness
    graph = interrupt_graph().compile(checkpointer=h.saver)
    h.invoke(graph, {"topic": "a"}, thread("a"))
    h.invoke(graph, {"topic": "b"}, thread("b"))
    saver: Any = h.saver

    async def compare() -> None:
        config = thread("a")
        assert await asyncio.to_thread(saver.get_tuple, config) == await saver.aget_tuple(config)
        listed = await asyncio.to_thread(lambda: list(saver.list(config)))
        assert listed == [t async for t in saver.alist(config)] and len(listed) >= 2
        first = await asyncio.to_thread(lambda: next(iter(saver.list(None))))  # closed early
        assert first.config["configurable"]["thread_id"] in {"a", "b"}
        threads = await asyncio.to_thread(lambda: [t.thread_id for t in saver.list_threads()])
        assert sorted(threads) == ["a", "b"]
        await asyncio.to_thread(saver.delete_thread, "b")
        assert [t.thread_id async for t in saver.alist_threads()] == ["a"]

    h.wait(compare())


def test_sync_call_on_the_loop_thread_is_refused(async_harness: Harness) -> None:
    saver: Any = async_harness.saver

    async def on_loop() -> None:
        with pytest.raises(ConfigurationError, match="own event loop thread"):
            saver.get_tuple(thread("t"))
        with pytest.raises(ConfigurationError, match="own event loop thread"):
            saver.list(thread("t"))

    async_harness.wait(asyncio.wait_for(on_loop(), timeout=30))
    # with no loop running at all, the call says what to use instead
    with pytest.raises(ConfigurationError, match="instead"):
        saver.get_tuple(thread("t"))


@pytest.mark.timeout(60, method="thread")  # a regression hangs the loop thread: fail loudly
def test_an_iterator_made_in_a_worker_never_blocks_the_loop_thread(
    async_harness: Harness,
) -> None:
    h = async_harness
    graph = interrupt_graph().compile(checkpointer=h.saver)
    h.invoke(graph, {"topic": "a"}, thread("a"))
    saver: Any = h.saver

    async def advanced_on_the_loop() -> None:
        iterator = await asyncio.to_thread(saver.list, thread("a"))
        with pytest.raises(ConfigurationError, match="own event loop thread"):
            next(iterator)

    async def dropped_on_the_loop() -> int:
        def first_then_hand_back() -> Any:
            iterator = iter(saver.list(thread("a")))
            next(iterator)
            return iterator

        iterator = await asyncio.to_thread(first_then_hand_back)
        del iterator  # closed here, on the loop's thread: must not wait for the loop
        await asyncio.sleep(0)
        return len([t async for t in saver.alist(thread("a"))])

    h.wait(advanced_on_the_loop())
    assert h.wait(dropped_on_the_loop()) >= 2  # the saver still works afterwards


async def _collect(aiterator: Any) -> list:
    return [item async for item in aiterator]
