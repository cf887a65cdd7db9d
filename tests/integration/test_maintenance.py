"""cleanup_expired and prune_threads on every backend x mode, with real graphs.

Every kept checkpoint must read back exactly as before a prune (values, next,
interrupts, subgraph namespaces, DeltaChannel values); dry runs count what a
real run deletes and change nothing; a thread written while a cleanup runs is
not deleted.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

import langgraph_persist_kit.maintenance as maintenance
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.maintenance import (
    BatchDone,
    acleanup_expired,
    aprune_threads,
    cleanup_expired,
    prune_threads,
)
from tests.helpers.backends import BACKENDS, Space
from tests.helpers.differential import normalise_snapshot, positions, thread
from tests.helpers.graphs import chat_graph, delta_graph, interrupt_graph, subgraph_graph
from tests.helpers.harness import Harness, open_harness
from tests.helpers.maintenance import DAY, cutoff_after_a_gap


def prune(h: Harness, **kwargs: Any) -> Any:
    if h.mode == "sync":
        return prune_threads(h.saver, **kwargs)
    return h.wait(aprune_threads(h.saver, **kwargs))


def cleanup(h: Harness, **kwargs: Any) -> Any:
    if h.mode == "sync":
        return cleanup_expired(h.saver, **kwargs)
    return h.wait(acleanup_expired(h.saver, **kwargs))


def checkpoint_count(h: Harness, thread_id: str | None = None) -> int:
    config = {"configurable": {"thread_id": thread_id}} if thread_id else None
    return len(h.call("list", config))


def build_threads(h: Harness) -> dict[str, Any]:
    """A long chat, a DeltaChannel loop, a thread paused at an interrupt and one paused
    inside a subgraph; returns the compiled graph of each thread."""
    graphs = {name: build().compile(checkpointer=h.saver) for name, build in (
        ("chat", chat_graph), ("delta", delta_graph), ("paused", interrupt_graph),
        ("sub", subgraph_graph))}
    for n in range(6):
        h.invoke(graphs["chat"], {"messages": [HumanMessage(f"turn {n}", id=f"h{n}")]},
                 thread("chat"))
    h.invoke(graphs["delta"], {"limit": 12}, thread("delta"))
    h.invoke(graphs["paused"], {"topic": "x"}, thread("paused"))
    h.invoke(graphs["paused"], Command(resume="yes"), thread("paused"))
    h.invoke(graphs["paused"], {"topic": "again"}, thread("paused"))
    h.invoke(graphs["sub"], {"log": []}, thread("sub"))
    return graphs


def kept_states(h: Harness, graphs: dict[str, Any], keep: int) -> dict[str, list]:
    """The normalised state at each root checkpoint a prune keeps (the ``keep`` newest)."""
    out = {}
    for name, graph in graphs.items():
        history = h.get_state_history(graph, thread(name))
        ids = positions(history)
        out[name] = [normalise_snapshot(h.get_state(graph, snap.config, subgraphs=True), ids)
                     for snap in history[:keep]]
        out[name].append(normalise_snapshot(h.get_state(graph, thread(name), subgraphs=True),
                                            ids))
    return out


@pytest.mark.parametrize("keep", [1, 3])
def test_prune_keeps_the_newest_checkpoints_exactly(harness: Harness, keep: int) -> None:
    h = harness
    graphs = build_threads(h)
    before = kept_states(h, graphs, keep)
    total = checkpoint_count(h)
    dry = prune(h, keep_latest=keep, dry_run=True)
    assert dry.dry_run and dry.checkpoints_deleted > 0 and checkpoint_count(h) == total
    report = prune(h, keep_latest=keep)
    assert (report.threads_pruned, report.checkpoints_deleted) == (
        dry.threads_pruned, dry.checkpoints_deleted)
    assert checkpoint_count(h) == total - report.checkpoints_deleted
    after = {name: [normalise_snapshot(h.get_state(graph, snap.config, subgraphs=True),
                                       positions(h.get_state_history(graph, thread(name))))
                    for snap in h.get_state_history(graph, thread(name))[:keep]]
             for name, graph in graphs.items()}
    for name in graphs:  # the kept checkpoints read back as before (positions may shift)
        assert [s["values"] for s in after[name]] == [s["values"] for s in before[name][:keep]]
        assert [s["next"] for s in after[name]] == [s["next"] for s in before[name][:keep]]
        assert [s["interrupts"] for s in after[name]] == [
            s["interrupts"] for s in before[name][:keep]]
    assert prune(h, keep_latest=keep).checkpoints_deleted == 0  # nothing left to prune
    done = h.invoke(graphs["paused"], Command(resume="later"), thread("paused"))
    assert done["log"][-1] == "publish:later"  # a pruned, paused thread resumes
    more = h.invoke(graphs["delta"], {"limit": 14}, thread("delta"))
    assert more["every"] == list(range(1, 15))  # DeltaChannel rebuilt from what was kept


def test_prune_some_threads_and_report_progress(harness: Harness) -> None:
    h = harness
    graphs = build_threads(h)
    delta_before = checkpoint_count(h, "delta")
    seen: list[BatchDone] = []
    report = prune(h, keep_latest=2, thread_ids=["chat", "delta"], on_batch=seen.append)
    assert report.threads_pruned == 1 and [b.done for b in seen] == [1, 2]
    assert seen[-1].total == 2 and seen[-1].checkpoints == report.checkpoints_deleted
    assert checkpoint_count(h, "chat") == 2
    # "every" snapshots once per 100 updates: every ancestor rebuilds it, none may go
    assert checkpoint_count(h, "delta") == delta_before
    assert h.get_state(graphs["delta"], thread("delta")).values["every"] == list(range(1, 13))


def steps(seen: list[BatchDone]) -> list[tuple[int, int]]:
    """What each batch added to the running totals: ``(threads, checkpoints)``."""
    before = [(0, 0)] + [(b.threads, b.checkpoints) for b in seen]
    return [(b.threads - t, b.checkpoints - c) for b, (t, c) in zip(seen, before, strict=False)]


def test_cleanup_deletes_idle_threads_in_batches(harness: Harness,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    graph = interrupt_graph().compile(checkpointer=h.saver)
    old = [f"old-{i}" for i in range(5)]
    for thread_id in old:
        h.invoke(graph, {"topic": thread_id}, thread(thread_id))
    cutoff_after_a_gap(monkeypatch)
    h.invoke(graph, {"topic": "new"}, thread("new"))
    each = checkpoint_count(h, old[0])
    assert all(checkpoint_count(h, t) == each for t in old)
    seen: list[BatchDone] = []
    dry = cleanup(h, older_than=DAY, batch_size=2, dry_run=True, on_batch=seen.append)
    assert (dry.threads_deleted, dry.checkpoints_deleted, dry.dry_run) == (5, 5 * each, True)
    # batches of 2, 2 and 1 threads on every backend (Redis: across its 256 buckets)
    assert [b.done for b in seen] == [1, 2, 3] and [b.total for b in seen] == [None] * 3
    assert steps(seen) == [(2, 2 * each), (2, 2 * each), (1, each)]
    assert len(h.call("list_threads")) == 6
    seen = []
    cleanup(h, older_than=DAY, batch_size=500, dry_run=True, on_batch=seen.append)
    assert [b.done for b in seen] == [1] and steps(seen) == [(5, 5 * each)]  # one batch
    seen = []
    report = cleanup(h, older_than=DAY, batch_size=2, on_batch=seen.append)
    assert (report.threads_deleted, report.checkpoints_deleted) == (5, 5 * each)
    assert steps(seen) == [(2, 2 * each), (2, 2 * each), (1, each)]
    assert (seen[-1].threads, seen[-1].checkpoints) == (5, 5 * each)  # the report's counts
    assert [t.thread_id for t in h.call("list_threads")] == ["new"]
    assert all(h.call("get_tuple", thread(t)) is None for t in old)
    seen = []
    again = cleanup(h, older_than=DAY, batch_size=2, on_batch=seen.append)
    assert again.threads_deleted == 0 and [b.done for b in seen] == [1]
    assert steps(seen) == [(0, 0)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thread_written_during_the_cleanup_is_kept(backend: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first batch, a graph answers the interrupt of a thread still to come."""
    for h in open_harness(backend, "sync", Space(tmp_path, __name__)):
        graph = interrupt_graph().compile(checkpointer=h.saver)
        for i in range(6):
            h.invoke(graph, {"topic": str(i)}, thread(f"idle-{i}"))
        cutoff_after_a_gap(monkeypatch)
        written: list[str] = []

        def write_while_running(progress: BatchDone, h: Harness = h, graph: Any = graph,
                                written: list[str] = written) -> None:
            if not written:
                target = max(t.thread_id for t in h.call("list_threads"))
                written.append(target)
                graph.invoke(Command(resume="late"), thread(target))

        report = cleanup_expired(h.saver, older_than=DAY, batch_size=1,
                                 on_batch=write_while_running)
        assert report.threads_deleted == 5
        assert [t.thread_id for t in h.call("list_threads")] == written
        assert h.get_state(graph, thread(written[0])).values["log"][-1] == "publish:late"


def test_other_savers_and_bad_arguments_are_refused(harness: Harness) -> None:
    with pytest.raises(ConfigurationError, match="retention"):
        prune_threads(InMemorySaver(), keep_latest=1)
    with pytest.raises(ConfigurationError, match="keep_latest"):
        prune(harness, keep_latest=0)
    with pytest.raises(ConfigurationError, match="older_than"):
        cleanup(harness, older_than=timedelta(0))
    with pytest.raises(ConfigurationError, match="batch_size"):
        cleanup(harness, older_than=timedelta(days=1), batch_size=0)


def test_stats_count_what_a_prune_removes(harness: Harness) -> None:
    h = harness
    build_threads(h)
    before = h.call("stats")
    assert before["threads"] == 4 and before["checkpoints"] == checkpoint_count(h)
    assert before["writes"] > 0 and before["channel_values"] > 0 and before["bytes"] > 0
    report = prune(h, keep_latest=1)
    after = h.call("stats")
    assert after["checkpoints"] == before["checkpoints"] - report.checkpoints_deleted
    assert after["channel_values"] < before["channel_values"]  # unused values went too
    assert after["writes"] < before["writes"] and after["threads"] == 4


def test_prune_pages_through_every_thread(harness: Harness,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "THREAD_PAGE", 2)  # 7 threads: several pages (buckets)
    h = harness
    graph = interrupt_graph().compile(checkpointer=h.saver)
    for i in range(7):
        h.invoke(graph, {"topic": str(i)}, thread(f"p-{i}"))
    seen: list[BatchDone] = []
    report = prune(h, keep_latest=1, on_batch=seen.append)
    assert report.threads_pruned == 7 and seen[-1].done == 7 and seen[-1].total == 7
    assert all(checkpoint_count(h, f"p-{i}") == 1 for i in range(7))
