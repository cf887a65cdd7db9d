"""`VersionedGraph` on every backend, in both modes: a run continues only the checkpoint
it expects, one overtaken midway stores nothing more, subgraph checkpoints are not
constrained, what cannot be checked is refused, and a versioned put sent again after a
lost reply passes. Runs are compared with the same runs on an `InMemorySaver`."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from langgraph_persist_kit.concurrency import StaleThreadError, VersionedGraph
from langgraph_persist_kit.errors import ConfigurationError
from tests.helpers.concurrency import root_children
from tests.helpers.concurrency_worker import builder as counter_graph
from tests.helpers.differential import assert_same_thread, sides, stream, thread
from tests.helpers.graphs import interrupt_graph, subgraph_graph
from tests.helpers.harness import Harness


def head(h: Harness, graph: Any, config: dict) -> str | None:
    return h.get_state(graph, config).config["configurable"].get("checkpoint_id")


def test_versioned_runs_continue_only_the_expected_checkpoint(harness: Harness) -> None:
    config = thread("versioned")
    pairs = sides(harness, interrupt_graph)
    for h, graph in pairs:
        if isinstance(h.saver, InMemorySaver):
            h.invoke(graph, {"topic": "a"}, config)
            h.invoke(graph, Command(resume="yes"), config)
            continue
        versioned = VersionedGraph(graph)
        h.invoke(versioned, {"topic": "a"}, config, expected_checkpoint_id=None)
        with pytest.raises(StaleThreadError, match="expected its latest checkpoint"):
            h.invoke(versioned, {"topic": "b"}, config, expected_checkpoint_id=None)
        seen = head(h, graph, config)
        before = len(h.call("list", config))
        with pytest.raises(StaleThreadError):
            h.invoke(versioned, Command(resume="no"), config, expected_checkpoint_id="1f0-old")
        assert len(h.call("list", config)) == before  # refused before writing anything
        stream(h, versioned, Command(resume="yes"), config, expected_checkpoint_id=seen)
        with pytest.raises(StaleThreadError):
            h.invoke(versioned, Command(resume="again"), config, expected_checkpoint_id=seen)
    assert_same_thread(pairs, config)


def test_a_versioned_run_overtaken_midway_stores_nothing_more(harness: Harness) -> None:
    started, go_on = threading.Event(), threading.Event()

    def slow(state: dict) -> dict:
        started.set()
        go_on.wait(10)
        return {"log": ["slow"]}

    after: list[str] = []
    builder = counter_graph(0)
    builder.add_node("slow", slow)
    builder.add_node("after", lambda state: after.append("ran") or {"log": ["after"]})
    builder.add_edge("increment", "slow")
    builder.add_edge("slow", "after")
    graph = builder.compile(checkpointer=harness.saver)
    config = thread("overtaken")
    harness.invoke(graph.copy(update={"interrupt_before_nodes": ["slow"]}), {"log": []}, config)
    seen = head(harness, graph, config)
    versioned = VersionedGraph(graph)
    if harness.mode == "sync":
        def overtake() -> None:  # another writer, while the versioned run is in "slow"
            started.wait(10)
            graph.update_state(config, {"n": 50})
            go_on.set()

        other = threading.Thread(target=overtake)
        other.start()
        with pytest.raises(StaleThreadError):
            versioned.invoke(None, config, expected_checkpoint_id=seen)
        other.join()
    else:
        async def scenario() -> None:
            run = asyncio.ensure_future(
                versioned.ainvoke(None, config, expected_checkpoint_id=seen))
            while not started.is_set():
                await asyncio.sleep(0.01)
            await graph.aupdate_state(config, {"n": 50})
            go_on.set()
            with pytest.raises(StaleThreadError):
                await run

        harness.wait(scenario())
    state = harness.get_state(graph, config)
    assert state.values["n"] == 50 and "slow" not in state.values["log"]  # "slow" was refused
    assert after == []  # the run stopped at the refused checkpoint (durability="sync")
    assert set(root_children(harness, config)) == {1}
    # runs without the wrapper are never constrained: time travel to an older checkpoint
    harness.update_state(graph, thread("overtaken", checkpoint_id=seen), {"n": 100})
    assert harness.get_state(graph, config).values["n"] == 100


def test_versioned_subgraph_checkpoints_are_not_constrained(harness: Harness) -> None:
    config = thread("nested")
    pairs = sides(harness, subgraph_graph)
    for h, graph in pairs:
        runner = graph if isinstance(h.saver, InMemorySaver) else VersionedGraph(graph)
        extra = {} if runner is graph else {"expected_checkpoint_id": None}
        h.invoke(runner, {"log": []}, config, **extra)
        if runner is not graph:
            extra = {"expected_checkpoint_id": head(h, graph, config)}
        h.invoke(runner, Command(resume="ok"), config, **extra)
    assert_same_thread(pairs, config, subgraphs=True)


def test_versioned_graph_refuses_what_it_cannot_check(harness: Harness) -> None:
    graph = counter_graph(0).compile(checkpointer=harness.saver)
    versioned = VersionedGraph(graph)
    config = thread("checked")
    harness.invoke(graph, {"log": []}, config)
    seen = head(harness, graph, config)
    at_seen = thread("checked", checkpoint_id=seen)
    with pytest.raises(ConfigurationError, match="thread"):
        harness.invoke(versioned, {"log": []}, {}, expected_checkpoint_id=seen)
    with pytest.raises(ConfigurationError, match="replay"):
        harness.invoke(versioned, {"log": []}, at_seen, expected_checkpoint_id="other")
    with pytest.raises(ConfigurationError, match="expected_checkpoint_id"):
        harness.invoke(versioned, {"log": []}, config, expected_checkpoint_id="")
    harness.invoke(versioned, {"log": []}, at_seen, expected_checkpoint_id=seen)
    assert harness.get_state(graph, config).values["n"] == 2


def test_a_versioned_put_retried_after_a_lost_reply_passes(harness: Harness) -> None:
    """Drivers may send a put again when its reply was lost: the checkpoint already is
    the head then, and that is no conflict."""
    from langgraph.checkpoint.base import empty_checkpoint

    from langgraph_persist_kit._core.versioning import EXPECTED_KEY

    config = {"configurable": {"thread_id": "retried", "checkpoint_ns": "", EXPECTED_KEY: ""}}
    first = empty_checkpoint()
    for _ in range(2):
        stored = harness.call("put", config, first, {"step": -1}, {})
    assert stored["configurable"]["checkpoint_id"] == first["id"]
    other = empty_checkpoint()
    with pytest.raises(StaleThreadError):
        harness.call("put", config, other, {"step": -1}, {})
    assert [t.checkpoint["id"] for t in harness.call("list", thread("retried"))] == [first["id"]]
