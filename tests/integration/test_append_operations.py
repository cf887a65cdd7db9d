"""Every operation stays right on threads whose list values are stored as appended pieces
(`_core/deltas.py`), on every backend x mode.

Threads come from a real ``add_messages`` chat graph of `TURNS` turns, one message
replaced by id on the way (a whole value mid-chain); each test first checks that pieces
were used (`assert_pieces`). Reads are compared with an ``InMemorySaver`` that ran the same
turns (`reference`), or with what the saver read before the operation (`read`).
"""

from __future__ import annotations

import hashlib
import operator
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, TypedDict, cast

import pytest
from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

import langgraph_persist_kit.maintenance as maintenance
from langgraph_persist_kit import afork_session, fork_session
from langgraph_persist_kit._sql import plans as sql_plans
from langgraph_persist_kit.maintenance import (
    acleanup_expired,
    aprune_threads,
    cleanup_expired,
    prune_threads,
)
from langgraph_persist_kit.redis import _listing as redis_listing
from tests.helpers.differential import assert_same_delta_values, sides, thread
from tests.helpers.graphs import chat_graph, extend
from tests.helpers.harness import Harness
from tests.helpers.maintenance import DAY
from tests.helpers.transfer import export_text, import_text, side

TURNS = 20
EDIT_AT = 12
"""Before this turn the script replaces message ``h3`` by id: the list is stored whole."""

EMPTY_STATS = {"checkpoints": 0, "checkpoint_bytes": 0, "writes": 0, "write_bytes": 0,
               "channel_values": 0, "channel_bytes": 0, "rebuilt_bytes": 0, "bytes": 0,
               "channels": []}


def text(n: int) -> str:
    """Hex, so that PostgreSQL's compression cannot pass for pieces in `assert_pieces`."""
    return " ".join(hashlib.sha256(f"{n}-{i}".encode()).hexdigest() for i in range(4))


def script(h: Harness, thread_id: str, turns: Iterable[int] = range(TURNS), *,
           edit: bool = True, run: str | None = None) -> Any:
    """Chat turns on ``thread_id`` (``run``: each turn's metadata ``run_id`` is
    ``<run>-<turn>``); returns the compiled graph."""
    graph = chat_graph().compile(checkpointer=h.saver)
    for n in turns:
        if edit and n == EDIT_AT:
            h.update_state(graph, thread(thread_id),
                           {"messages": [HumanMessage("edited " + text(-1), id="h3")]})
        config: dict[str, Any] = thread(thread_id)
        if run is not None:
            config["metadata"] = {"run_id": f"{run}-{n}"}
        h.invoke(graph, {"messages": [HumanMessage(text(n), id=f"h{n}")]}, config)
    return graph


def reference(turns: Iterable[int] = range(TURNS), **kwargs: Any) -> Harness:
    """An InMemorySaver that ran `script` on thread ``"t"``."""
    memory = Harness("memory", "sync", InMemorySaver(), None)
    script(memory, "t", turns, **kwargs)
    return memory


def channel_stats(h: Harness, thread_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["checkpoint_ns"], c["channel"]): c
            for c in h.call("stats", thread_id=thread_id)["channels"]}


def assert_pieces(h: Harness, thread_id: str, channel: str = "messages") -> None:
    """The channel rebuilds to over three times what it stores: pieces were used (a whole
    store of these values rebuilds to what it stores, PostgreSQL's compression < 3x)."""
    stats = channel_stats(h, thread_id)[("", channel)]
    assert stats["rebuilt_bytes"] > 3 * stats["bytes"] > 0, stats


def comparable(t: CheckpointTuple) -> tuple[Any, ...]:
    """Everything a saver reads back of a checkpoint, but the thread id."""
    parent = (t.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    conf = t.config["configurable"]
    return (conf["checkpoint_ns"], conf["checkpoint_id"], parent, t.checkpoint, t.metadata,
            t.pending_writes)


def read(h: Harness, thread_id: str) -> list[tuple[Any, ...]]:
    """`comparable` of each checkpoint of a thread by ``list``; ``get_tuple`` must agree
    (asked of every 5th, so of each of the 3 kinds of checkpoint a turn makes)."""
    listed = [comparable(t) for t in h.call("list", thread(thread_id))]
    for at in range(0, len(listed), 5):
        got = h.call("get_tuple", {"configurable": {"thread_id": thread_id,
                                                    "checkpoint_ns": listed[at][0],
                                                    "checkpoint_id": listed[at][1]}})
        assert comparable(got) == listed[at], at
    return listed


def values(tuples: list[CheckpointTuple]) -> list[tuple[Any, ...]]:
    """What two savers running one script agree on (ids, versions, task ids differ)."""
    return [(t.checkpoint["channel_values"], sorted(t.checkpoint["channel_versions"]),
             {k: v for k, v in t.metadata.items() if k != "run_id"},
             [(channel, value) for _, channel, value in t.pending_writes or []])
            for t in tuples]


def latest_messages(h: Harness, thread_id: str) -> list[BaseMessage]:
    return h.call("get_tuple", thread(thread_id)).checkpoint["channel_values"]["messages"]


def assert_rebuilt_bytes(h: Harness, thread_id: str) -> None:
    """``stats`` rebuilt bytes of each channel = the serialized lengths of its versions
    (each distinct version once; every stored version is in some checkpoint)."""
    sizes: dict[tuple[str, str, Any], int] = {}
    for t in h.call("list", thread(thread_id)):
        ns, stored = t.config["configurable"]["checkpoint_ns"], t.checkpoint["channel_values"]
        for channel, version in t.checkpoint["channel_versions"].items():
            size = len(h.saver.serde.dumps_typed(stored[channel])[1]) if channel in stored else 0
            assert sizes.setdefault((ns, channel, version), size) == size
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for (ns, channel, _), size in sizes.items():
        count, total = expected.get((ns, channel), (0, 0))
        expected[(ns, channel)] = (count + 1, total + size)
    got = {key: (c["versions"], c["rebuilt_bytes"])
           for key, c in channel_stats(h, thread_id).items()}
    assert got == expected


def prune(h: Harness, **kwargs: Any) -> Any:
    if h.mode == "sync":
        return prune_threads(h.saver, **kwargs)
    return h.wait(aprune_threads(h.saver, **kwargs))


def fork(h: Harness, graph: Any, config: Any, new_thread_id: str) -> str:
    if h.mode == "sync":
        return fork_session(graph, config, new_thread_id=new_thread_id)
    return h.wait(afork_session(graph, config, new_thread_id=new_thread_id))


def assert_empty(h: Harness, thread_id: str) -> None:
    stats = h.call("stats", thread_id=thread_id)
    assert {k: v for k, v in stats.items() if k != "thread_id"} == EMPTY_STATS


# --- reads ----------------------------------------------------------------------------


def test_reads_match_in_memory_saver(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """get_tuple at every checkpoint and list (limit, before, filter; pages of 7, so a
    page's values extend versions of other pages) read what an InMemorySaver holds after
    the same turns, pending writes included."""
    monkeypatch.setattr(sql_plans, "PAGE_SIZE", 7)
    monkeypatch.setattr(redis_listing, "PAGE_SIZE", 7)
    h, memory = harness, reference()
    script(h, "t")
    assert_pieces(h, "t")
    ours, ref = h.call("list", thread("t")), memory.call("list", thread("t"))
    assert values(ours) == values(ref) and len(ours) > 3 * TURNS
    assert values([h.call("get_tuple", t.config) for t in ours]) == values(ref)
    assert sum(1 for t in ours if t.pending_writes) > TURNS
    for kwargs, ref_kwargs in [
        ({"limit": 5}, {"limit": 5}),
        ({"before": ours[17].config}, {"before": ref[17].config}),
        ({"filter": {"source": "update"}}, {"filter": {"source": "update"}}),
        ({"filter": {"source": "loop"}, "before": ours[30].config, "limit": 4},
         {"filter": {"source": "loop"}, "before": ref[30].config, "limit": 4}),
    ]:
        got = h.call("list", thread("t"), **kwargs)
        assert got and values(got) == values(memory.call("list", thread("t"), **ref_kwargs))
    assert_rebuilt_bytes(h, "t")


@pytest.mark.parametrize("whole_first", [False, True], ids=["pieces", "whole-first"])
def test_stats_rebuilt_bytes_are_the_serialized_lengths(harness: Harness,
                                                         whole_first: bool) -> None:
    """stats(thread_id) rebuilt_bytes per channel = the lengths of its versions' values,
    while the stored bytes are far fewer; also when the thread's first turns were stored
    whole (append deltas off, or before migration 0002) and later ones extend them."""
    h, saver = harness, cast(Any, harness.saver)
    deltas = saver.deltas
    if whole_first:
        saver.deltas = None  # as a saver with append_deltas=False on the same store
        script(h, "t", range(TURNS // 2))
        saver.deltas = deltas
    script(h, "t", range(TURNS // 2 if whole_first else 0, TURNS))
    script(h, "short", range(3), edit=False)
    assert_pieces(h, "t")
    assert_rebuilt_bytes(h, "t")
    assert_rebuilt_bytes(h, "short")


# --- copies, forks, export and import -------------------------------------------------


def test_copies_and_forks_stay_right_without_their_source(harness: Harness) -> None:
    """copy_thread and fork_session (latest and mid-thread) read as the source did, and
    keep doing so as the copy goes on and the source is pruned, then deleted."""
    h = harness
    graph = script(h, "src")
    assert_pieces(h, "src")
    source = read(h, "src")
    h.call("copy_thread", "src", "copy")
    mid = h.call("list", thread("src"))[TURNS]
    fork(h, graph, thread("src"), "fork")
    fork(h, graph, mid.config, "mid")
    mid_chain = [c for c in source if c[1] <= mid.config["configurable"]["checkpoint_id"]]
    forked_mid = read(h, "mid")  # its tip keeps no task results: they run again
    assert forked_mid[1:] == mid_chain[1:] and forked_mid[0][:5] == mid_chain[0][:5]
    expected = {"copy": source, "fork": source, "mid": forked_mid}
    assert {t: read(h, t) for t in expected} == expected
    assert channel_stats(h, "copy") == channel_stats(h, "src")
    script(h, "copy", range(TURNS, TURNS + 2))  # goes on with pieces of its own
    assert read(h, "src") == source
    expected["copy"] = read(h, "copy")
    prune(h, keep_latest=1, thread_ids=["src"])
    assert read(h, "src") == source[:1]
    assert {t: read(h, t) for t in expected} == expected
    h.call("delete_thread", "src")
    assert_empty(h, "src")
    assert {t: read(h, t) for t in expected} == expected
    for thread_id in expected:
        assert_rebuilt_bytes(h, thread_id)
    script(h, "fork", range(TURNS, TURNS + 2))
    memory = reference(range(TURNS + 2))
    for thread_id in ("copy", "fork"):
        assert latest_messages(h, thread_id) == latest_messages(memory, "t")


def test_export_is_the_same_bytes_however_values_are_stored(harness: Harness,
                                                             tmp_path: Path) -> None:
    """An export of a delta-stored thread equals the export of the same thread stored
    whole (append_deltas=False) and of it imported into other backends; imports read
    back equal."""
    h = harness
    script(h, "t")
    assert_pieces(h, "t")
    exported = export_text(h, thread_ids=["t"])
    source = read(h, "t")
    with side(h.backend, h.mode, tmp_path / "whole", append_deltas=False) as whole, \
            side("sqlite", "sync", tmp_path / "sqlite") as sqlite, \
            side("memory", "sync", tmp_path / "memory") as memory:
        assert cast(Any, whole.saver).deltas is None
        for target in (whole, sqlite, memory):
            import_text(target, exported)
            assert read(target, "t") == source, target.backend
            assert export_text(target) == exported, target.backend
        assert_pieces(sqlite, "t")  # an import stores pieces too
        stats = channel_stats(whole, "t")[("", "messages")]
        assert stats["rebuilt_bytes"] < 3 * stats["bytes"]  # and a whole store does not
        import_text(h, export_text(whole), if_exists="replace")
    assert read(h, "t") == source
    assert export_text(h, thread_ids=["t"]) == exported


# --- pruning and cleanup --------------------------------------------------------------


@pytest.mark.parametrize(("how", "keep"), [("prune_threads", 1), ("prune_threads", 3),
                                           ("prune", 1)])
def test_prune_keeps_what_kept_values_are_rebuilt_from(harness: Harness, how: str,
                                                       keep: int) -> None:
    """Kept checkpoints read back exactly as before (no piece they need is deleted),
    stored bytes shrink, and the thread goes on right."""
    h = harness
    script(h, "t")
    script(h, "other", range(6), edit=False)
    assert_pieces(h, "t")
    before = {t: read(h, t) for t in ("t", "other")}
    stored = h.call("stats", thread_id="t")["channel_bytes"]
    if how == "prune":
        h.call("prune", ["t", "other"], strategy="keep_latest")
    else:
        prune(h, keep_latest=keep)
    assert {t: read(h, t) for t in before} == {t: c[:keep] for t, c in before.items()}
    assert 0 < h.call("stats", thread_id="t")["channel_bytes"] < stored
    script(h, "t", range(TURNS, TURNS + 2))
    assert latest_messages(h, "t") == latest_messages(reference(range(TURNS + 2)), "t")
    assert read(h, "t")[2 * 3:] == before["t"][:keep]  # 3 checkpoints a turn


def test_cleanup_deletes_delta_threads_fully(harness: Harness,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """cleanup_expired leaves nothing of an idle delta-stored thread and a newer one intact."""
    h = harness
    script(h, "old")
    assert_pieces(h, "old")
    time.sleep(0.05)  # every store keeps sub-second write times
    middle = time.time()
    time.sleep(0.05)
    monkeypatch.setattr(maintenance, "CLOCK", lambda: middle + DAY.total_seconds())
    script(h, "new", range(8), edit=False)
    new = read(h, "new")
    report = cleanup_expired(h.saver, older_than=DAY) if h.mode == "sync" else h.wait(
        acleanup_expired(h.saver, older_than=DAY))
    assert report.threads_deleted == 1
    assert_empty(h, "old")
    assert read(h, "new") == new
    assert_rebuilt_bytes(h, "new")


# --- deletes --------------------------------------------------------------------------


@pytest.mark.parametrize("deleted", ["a", "b"], ids=["first-run", "second-run"])
def test_delete_for_runs_keeps_the_other_runs_readable(harness: Harness, deleted: str) -> None:
    """Run B's values extend run A's. Deleting either run's checkpoints leaves the other's
    reading exactly as before, and the thread goes on right. (InMemorySaver does not
    implement delete_for_runs: the official semantics are "delete the checkpoints and
    writes of those runs", so the rest is compared with what was read before.)"""
    h, half = harness, TURNS // 2
    script(h, "t", range(half), edit=False, run="a")
    script(h, "t", range(half, TURNS), edit=False, run="b")
    script(h, "other", range(4), edit=False, run="a")
    assert_pieces(h, "t")
    before = read(h, "t")
    other = read(h, "other")
    h.call("delete_for_runs", [f"{deleted}-{n}" for n in range(TURNS)])
    kept = [c for c in before if not c[4]["run_id"].startswith(deleted + "-")]
    assert read(h, "t") == kept and len(kept) == 3 * half
    assert read(h, "other") == ([] if deleted == "a" else other)
    script(h, "t", range(TURNS, TURNS + 2), edit=False)
    turns = [*range(half), *range(TURNS, TURNS + 2)] if deleted == "b" else range(TURNS + 2)
    assert latest_messages(h, "t") == latest_messages(reference(turns, edit=False), "t")


def test_delete_thread_leaves_no_values_and_a_rewrite_is_whole(harness: Harness) -> None:
    """delete_thread leaves no channel value and other threads intact; writing the same
    messages again (the saver still remembers them) reads back right."""
    h = harness
    graph = script(h, "t")
    script(h, "other", range(5), edit=False)
    assert_pieces(h, "t")
    other, messages = read(h, "other"), latest_messages(h, "t")
    h.call("delete_thread", "t")
    assert_empty(h, "t")
    assert read(h, "t") == []
    assert read(h, "other") == other
    assert_rebuilt_bytes(h, "other")
    h.update_state(graph, thread("t"), {"messages": messages})  # extends a deleted version
    assert latest_messages(h, "t") == messages
    h.invoke(graph, {"messages": [HumanMessage("again", id="again")]}, thread("t"))
    assert [m.id for m in latest_messages(h, "t")] == [*(m.id for m in messages), "again",
                                                        f"ai-{TURNS + 1}"]
    assert_rebuilt_bytes(h, "t")


# --- DeltaChannel history -------------------------------------------------------------


class MixedState(TypedDict, total=False):
    items: Annotated[list, DeltaChannel(extend, snapshot_frequency=3)]
    every: Annotated[list, DeltaChannel(extend)]
    log: Annotated[list, operator.add]  # a plain list: stored as appended pieces
    step: int
    limit: int


def mixed_graph() -> StateGraph:
    """``tick`` loops to ``limit``, appending to two DeltaChannels and a plain list."""

    def tick(state: MixedState) -> dict:
        step = state.get("step", 0) + 1
        return {"items": [f"t{step}", step], "every": [step], "log": [text(step)], "step": step}

    builder = StateGraph(MixedState)
    builder.add_node("tick", tick)
    builder.add_edge(START, "tick")
    builder.add_conditional_edges(
        "tick", lambda s: "tick" if s["step"] < s["limit"] else END, ["tick", END])
    return builder


def test_delta_channel_history_matches_in_memory_saver(harness: Harness) -> None:
    """get_delta_channel_history and every checkpoint's values match InMemorySaver on a
    graph whose DeltaChannels sit beside a list stored as pieces."""
    pair = sides(harness, mixed_graph)
    for h, graph in pair:
        h.invoke(graph, {"limit": 20}, {**thread("d"), "recursion_limit": 50})
    assert_pieces(harness, "d", "log")
    stored = assert_same_delta_values(pair, (thread("d"), thread("d")))
    assert any(stored) and not all(stored)  # snapshots at some checkpoints only
    (ours, graph), (ref, ref_graph) = pair  # a plain list's value seeds its history
    for a, b in zip(ours.get_state_history(graph, thread("d")),
                    ref.get_state_history(ref_graph, thread("d")), strict=True):
        got, want = (on.call("get_delta_channel_history", config=snap.config,
                             channels=["log"])["log"] for on, snap in ((ours, a), (ref, b)))
        assert got.get("seed") == want.get("seed")
        assert [w[1:] for w in got["writes"]] == [w[1:] for w in want["writes"]]
    assert_rebuilt_bytes(harness, "d")
