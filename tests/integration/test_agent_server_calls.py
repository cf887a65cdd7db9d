"""The saver calls the LangGraph Agent Server makes, shaped as it makes them, on every
backend x mode (issue 16): prune's strategy names, a copy's or fork's metadata
``thread_id``, run deletion that stays in its thread, and ``list``'s ``before``."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph

from langgraph_persist_kit import fork_session
from langgraph_persist_kit.errors import ConfigurationError
from tests.helpers.chains import put_chain
from tests.helpers.harness import Harness


def thread(h: Harness, thread_id: str) -> list:
    return h.call("list", {"configurable": {"thread_id": thread_id}})


def ids(tuples: list) -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] for t in tuples]


@pytest.mark.parametrize("strategy", ["delete_all", "delete"])
def test_prune_deletes_under_both_names(harness: Harness, strategy: str) -> None:
    put_chain(harness, "gone", [{}, {}, {}])
    put_chain(harness, "kept", [{}, {}])
    harness.call("prune", ["gone"], strategy=strategy)
    assert thread(harness, "gone") == []
    assert [t.thread_id for t in harness.call("list_threads")] == ["kept"]
    assert len(thread(harness, "kept")) == 2


def test_prune_keep_latest_and_refusal(harness: Harness) -> None:
    configs = put_chain(harness, "t", [{}, {}, {}])
    harness.call("prune", ["t"], strategy="keep_latest")
    assert ids(thread(harness, "t")) == [configs[-1]["configurable"]["checkpoint_id"]]
    with pytest.raises(ConfigurationError, match="'delete_all'"):
        harness.call("prune", ["t"], strategy="delete-all")
    assert len(thread(harness, "t")) == 1


def test_a_copy_and_a_fork_name_themselves_in_their_metadata(harness: Harness) -> None:
    configs = put_chain(harness, "src", [
        {"thread_id": "src", "run_id": "run-1", "graph_id": "agent"},
        {"thread_id": "src", "run_id": "run-1", "graph_id": "agent"},
    ])
    put_chain(harness, "plain", [{"run_id": "run-9"}])
    harness.call("copy_thread", "src", "copy")
    harness.call("copy_thread", "plain", "plain-copy")
    harness.call("fork_thread", "src", "fork", configs[0]["configurable"]["checkpoint_id"])
    for name, count in (("src", 2), ("copy", 2), ("fork", 1)):
        found = thread(harness, name)
        assert [t.metadata["thread_id"] for t in found] == [name] * count
        assert {t.metadata["run_id"] for t in found} == {"run-1"}  # the rest is kept
        assert {t.metadata["graph_id"] for t in found} == {"agent"}
        assert ids(harness.call("list", None, filter={"thread_id": name})) == ids(found)
    listed = harness.call("list_threads", filter={"thread_id": "src"})
    assert [t.thread_id for t in listed] == ["src"]
    assert harness.call("list_threads", filter={"thread_id": "copy"})[0].metadata == {
        **thread(harness, "src")[0].metadata, "thread_id": "copy"}
    assert "thread_id" not in thread(harness, "plain-copy")[0].metadata  # none is added


def test_deleting_a_run_leaves_its_copies_and_forks(harness: Harness) -> None:
    configs = put_chain(harness, "src", [{"run_id": "run-1"}, {"run_id": "run-1"},
                                         {"run_id": "run-2"}])
    harness.call("put_writes", configs[1], [("n", 5)], "task-1")
    harness.call("copy_thread", "src", "copy")
    harness.call("fork_thread", "src", "fork", configs[1]["configurable"]["checkpoint_id"])
    before = {name: thread(harness, name) for name in ("copy", "fork")}
    harness.call("delete_for_runs", ["run-1"])
    assert ids(thread(harness, "src")) == [configs[2]["configurable"]["checkpoint_id"]]
    for name, tuples in before.items():
        after = thread(harness, name)
        assert ids(after) == ids(tuples) and len(after) >= 2
        assert [t.pending_writes for t in after] == [t.pending_writes for t in tuples]
    # the copy's own runs are its own: deleting one reaches it
    own = put_chain(harness, "copy", [{"run_id": "run-3"}])
    harness.call("delete_for_runs", ["run-3"])
    assert own[0]["configurable"]["checkpoint_id"] not in ids(thread(harness, "copy"))
    assert ids(thread(harness, "copy")) == ids(before["copy"])


def test_list_before_in_every_shape_langgraph_passes(harness: Harness) -> None:
    configs = put_chain(harness, "t", [{}, {}, {}, {}])
    put_chain(harness, "other", [{}, {}])
    cut = configs[2]["configurable"]["checkpoint_id"]
    expected = [c["configurable"]["checkpoint_id"] for c in reversed(configs[:2])]
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""},
              "metadata": {"thread_id": "t"}}  # as the Agent Server's history asks
    for before in ({"configurable": {"checkpoint_id": cut}},  # get_state_history
                   {"checkpoint_id": cut},  # the server's POST /history, flat
                   {"checkpoint_id": cut, "thread_id": "t", "checkpoint_ns": ""},
                   cut):
        assert ids(harness.call("list", config, before=before)) == expected, before
        assert ids(harness.call("list", config, before=before, limit=1)) == expected[:1]
    assert len(harness.call("list", config, before={})) == 4  # no id: no bound
    with pytest.raises(ConfigurationError, match="before"):
        harness.call("list", config, before=42)


def test_a_fork_on_another_saver_names_itself_too() -> None:
    """`fork_session` on a saver without the fork hook puts each checkpoint again: the
    same rewrite of ``metadata["thread_id"]`` (`copied_metadata`)."""
    saver = InMemorySaver()
    h = Harness("memory", "sync", saver, None)
    configs = put_chain(h, "src", [{"thread_id": "src"}, {"thread_id": "src", "k": 1}])
    graph = StateGraph(dict).add_node("n", lambda s: s).add_edge(START, "n").compile(
        checkpointer=saver)
    forked = fork_session(graph, configs[-1], new_thread_id="fork")
    found = h.call("list", {"configurable": {"thread_id": forked}})
    assert [t.metadata["thread_id"] for t in found] == ["fork", "fork"]
    assert found[0].metadata["k"] == 1
    assert [t.metadata["thread_id"] for t in h.call("list", {"configurable": {
        "thread_id": "src"}})] == ["src", "src"]
