"""``stats(thread_id=...)``: one thread's checkpoints, pending writes and stored channel
values with their bytes, on every backend x mode, checked against what the saver lists."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from langgraph_persist_kit.errors import ConfigurationError
from tests.helpers.differential import thread
from tests.helpers.graphs import chat_graph, subgraph_graph
from tests.helpers.harness import Harness


def listed(h: Harness, thread_id: str) -> tuple[int, int, dict[tuple[str, str], int]]:
    """Checkpoints, pending writes and the versions of each ``(namespace, channel)`` as the
    saver lists them."""
    tuples = h.call("list", {"configurable": {"thread_id": thread_id}})
    versions: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for t in tuples:
        ns = t.config["configurable"]["checkpoint_ns"]
        for channel, version in t.checkpoint["channel_versions"].items():
            versions[(ns, channel)].add(version)
    writes = sum(len(t.pending_writes or []) for t in tuples)
    return len(tuples), writes, {key: len(v) for key, v in versions.items()}


def chat(h: Harness, thread_id: str, turns: int) -> None:
    graph = chat_graph().compile(checkpointer=h.saver)
    for n in range(turns):
        h.invoke(graph, {"messages": [HumanMessage("x" * 400 + f" {n}", id=f"h{n}")]},
                 thread(thread_id))


def test_a_thread_is_counted_as_the_saver_lists_it(harness: Harness) -> None:
    h = harness
    chat(h, "chat", 6)
    chat(h, "other", 2)  # another thread's rows are not counted
    sub = subgraph_graph().compile(checkpointer=h.saver)
    h.invoke(sub, {"log": []}, thread("sub"))  # stops at the subgraph's interrupt
    for thread_id in ("chat", "sub"):
        stats = h.call("stats", thread_id=thread_id)
        checkpoints, writes, versions = listed(h, thread_id)
        assert stats["thread_id"] == thread_id
        assert (stats["checkpoints"], stats["writes"]) == (checkpoints, writes)
        counted = {(c["checkpoint_ns"], c["channel"]): c["versions"] for c in stats["channels"]}
        assert counted == versions
        assert stats["channel_values"] == sum(versions.values())
        assert stats["bytes"] == (stats["checkpoint_bytes"] + stats["write_bytes"]
                                  + stats["channel_bytes"])
        assert stats["channel_bytes"] == sum(c["bytes"] for c in stats["channels"])
        sizes = [c["bytes"] for c in stats["channels"]]
        assert sizes == sorted(sizes, reverse=True)  # largest first
    chat_stats = h.call("stats", thread_id="chat")
    assert chat_stats["channels"][0]["channel"] == "messages"  # the list that grows
    assert chat_stats["checkpoint_bytes"] > 0
    assert any(c["checkpoint_ns"] for c in h.call("stats", thread_id="sub")["channels"])
    assert h.call("stats", thread_id="sub")["writes"] > 0  # the pending interrupt


def test_bytes_grow_with_the_thread_and_a_delete_empties_it(harness: Harness) -> None:
    h = harness
    chat(h, "t", 2)
    before = h.call("stats", thread_id="t")
    chat(h, "t", 2)
    after = h.call("stats", thread_id="t")
    assert after["checkpoints"] > before["checkpoints"]
    assert after["channel_bytes"] > before["channel_bytes"] > 0
    h.call("delete_thread", "t")
    empty = h.call("stats", thread_id="t")
    assert {k: v for k, v in empty.items() if k != "thread_id"} == {
        "checkpoints": 0, "checkpoint_bytes": 0, "writes": 0, "write_bytes": 0,
        "channel_values": 0, "channel_bytes": 0, "rebuilt_bytes": 0, "bytes": 0,
        "channels": []}


@pytest.mark.parametrize("thread_id", ["it's", "a:b{c}*%", "🧵" * 3, "x" * 1000])
def test_odd_thread_ids_are_counted_and_a_bad_one_is_refused(harness: Harness,
                                                              thread_id: str) -> None:
    h = harness
    chat(h, thread_id, 1)
    chat(h, thread_id + "-neighbour", 1)
    stats = h.call("stats", thread_id=thread_id)
    assert (stats["checkpoints"], stats["writes"]) == listed(h, thread_id)[:2]
    with pytest.raises(ConfigurationError):
        h.call("stats", thread_id="nul\x00byte")


def test_the_store_wide_stats_are_unchanged(harness: Harness) -> None:
    h = harness
    chat(h, "t", 1)
    h.invoke(subgraph_graph().compile(checkpointer=h.saver), {"log": []}, thread("s"))
    h.invoke(subgraph_graph().compile(checkpointer=h.saver), Command(resume="ok"), thread("s"))
    stats = h.call("stats")
    assert set(stats) == {"threads", "checkpoints", "writes", "channel_values", "bytes"}
    assert stats["threads"] == 2
    assert stats["checkpoints"] == sum(h.call("stats", thread_id=t)["checkpoints"]
                                       for t in ("t", "s"))
