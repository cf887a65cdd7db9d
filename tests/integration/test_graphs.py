"""Differential graph tests: real compiled graphs on the saver under test vs ``InMemorySaver``.

Owns: running each scenario of ``graphs.py`` twice, once on ``harness.saver`` and
once on a fresh ``InMemorySaver`` in the same mode (sync ``invoke`` or async
``ainvoke``), then comparing ``get_state`` / ``get_state_history`` (normalised
by ``graphs.normalise_snapshot``) and, where a scenario needs it, the savers'
own ``list`` / ``get_delta_channel_history``. Tests use only the harness, never
backend specifics.
"""

from __future__ import annotations

import datetime
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from tests.helpers.differential import (
    assert_same_delta_values,
    assert_same_thread,
    normalise_snapshot,
    positions,
    run_concurrently,
    sides,
    stream,
    thread,
    without_interrupt_ids,
)
from tests.helpers.graphs import (
    chat_graph,
    delta_graph,
    echo_graph,
    fanout_graph,
    flaky_graph,
    interrupt_graph,
    linear_graph,
    parallel_interrupts_graph,
    subgraph_graph,
)
from tests.helpers.harness import Harness

# --- 1. multi-turn chat -------------------------------------------------------------


def test_multi_turn_chat_matches_in_memory(harness: Harness) -> None:
    pair = sides(harness, chat_graph)
    config = thread()
    turns = ["hello", "what's new?", "tell me more", "bye"]
    for n, text in enumerate(turns, start=1):
        turn = {"messages": [HumanMessage(text, id=f"h-{n}")]}
        outputs = [h.invoke(g, turn, config) for h, g in pair]
        assert outputs[0] == outputs[1]
    history = assert_same_thread(pair, config)
    messages = history[0]["values"]["messages"]
    assert [m.type for m in messages] == ["human", "ai"] * len(turns)
    assert messages[-1].content == "reply 4 to 'bye'"
    assert len(history) == 3 * len(turns)  # per turn: input, __start__ ran, bot ran


# --- 2. interrupt and resume --------------------------------------------------------


def test_interrupt_and_resume_match_in_memory(harness: Harness) -> None:
    pair = sides(harness, interrupt_graph)
    config = thread()
    for h, g in pair:
        paused = h.invoke(g, {"topic": "post"}, config)
        assert [i.value["question"] for i in paused["__interrupt__"]] == ["approve post?"]
    paused_history = assert_same_thread(pair, config)
    assert paused_history[0]["next"] == ("ask",)
    assert paused_history[0]["tasks"][0]["interrupts"] == [
        {"question": "approve post?", "log": ["draft:post"]}
    ]

    results = [h.invoke(g, Command(resume="yes"), config) for h, g in pair]
    assert results[0] == results[1]
    assert results[0]["log"] == ["draft:post", "ask:yes", "publish:yes"]
    history = assert_same_thread(pair, config)
    assert history[0]["next"] == () and history[0]["interrupts"] == []


def test_parallel_interrupts_resumed_one_by_one(harness: Harness) -> None:
    pair = sides(harness, parallel_interrupts_graph)
    config = thread()
    for h, g in pair:
        h.invoke(g, {"log": []}, config)
    assert_same_thread(pair, config)
    for answers, waiting in (({1: "one"}, [0, 1, 2]), ({0: "zero", 2: "two"}, [0, 2])):
        results = []
        for h, g in pair:
            pending = {i.value["item"]: i.id for i in h.get_state(g, config).interrupts}
            assert sorted(pending) == waiting
            resume = Command(resume={pending[item]: answer for item, answer in answers.items()})
            results.append(without_interrupt_ids(h.invoke(g, resume, config)))
        assert results[0] == results[1]
        history = assert_same_thread(pair, config)
    assert results[0]["log"] == ["plan", "n1", "n2", "n3", "0:zero", "1:one", "2:two"]
    assert history[0]["next"] == ()


# --- 3. subgraph namespaces ---------------------------------------------------------


def test_subgraph_checkpoints_match_in_memory(harness: Harness) -> None:
    pair = sides(harness, subgraph_graph)
    config = thread()
    for h, g in pair:
        h.invoke(g, {"log": []}, config)
    paused = assert_same_thread(pair, config, subgraphs=True)
    child_state = normalise_snapshot(pair[0][0].get_state(pair[0][1], config, subgraphs=True), {})
    child = child_state["tasks"][0]["state"]
    assert child["ns"] == "child" and child["next"] == ("inner_ask",)
    assert child["interrupts"] == ["need input"] and paused[0]["next"] == ("child",)

    listed = []
    for h, g in pair:
        task = h.get_state(g, config, subgraphs=True).tasks[0]
        ns = task.state.config["configurable"]["checkpoint_ns"]
        tuples = h.call("list", thread(checkpoint_ns=ns))
        listed.append([(t.metadata["source"], t.metadata["step"]) for t in tuples])
    assert listed[0] == listed[1] and len(listed[0]) >= 2

    results = [h.invoke(g, Command(resume="ok"), config) for h, g in pair]
    assert results[0] == results[1]
    # the child returns its whole state, so the parent's reducer adds "prep" again
    assert results[0]["log"] == ["prep", "prep", "inner_work", "inner_ask:ok", "post"]
    history = assert_same_thread(pair, config, subgraphs=True)
    assert history[0]["next"] == ()


# --- 4. Send fan-out ----------------------------------------------------------------


def test_send_fan_out_matches_in_memory(harness: Harness) -> None:
    pair = sides(harness, fanout_graph)
    config = thread()
    results = [h.invoke(g, {"count": 5}, config) for h, g in pair]
    expected = ["plan", "w0", 0, "w1", 10, "w2", 20, "w3", 30, "w4", 40, "collected 11"]
    assert results[0]["results"] == results[1]["results"] == expected
    history = assert_same_thread(pair, config)
    fan_step = next(snap for snap in history if snap["next"] == ("worker",) * 5)
    assert [t["result"] for t in fan_step["tasks"]] == [
        {"results": [f"w{i}", i * 10]} for i in range(5)
    ]


# --- 5. a failing task and its surviving sibling -----------------------------------


def test_failed_task_keeps_sibling_writes(harness: Harness) -> None:
    calls = [Counter(), Counter()]
    counters = iter(calls)
    pair = sides(harness, lambda: flaky_graph(next(counters)))
    config = thread()
    for h, g in pair:
        with pytest.raises(ValueError, match="flaky failed once"):
            h.invoke(g, {"log": []}, config)
    failed = assert_same_thread(pair, config)
    tasks = {t["name"]: t for t in failed[0]["tasks"]}
    assert "ValueError('flaky failed once')" in tasks["flaky"]["error"]
    assert tasks["steady"]["error"] is None and tasks["steady"]["result"] == {"log": ["steady"]}
    assert sorted(failed[0]["next"]) == ["flaky", "steady"]

    results = [h.invoke(g, None, config) for h, g in pair]
    assert results[0] == results[1]
    assert sorted(results[0]["log"]) == ["flaky", "join", "steady"]
    assert calls == [Counter(steady=1, flaky=2, join=1)] * 2  # steady did not run again
    assert_same_thread(pair, config)


# --- 6. DeltaChannel ----------------------------------------------------------------


def test_delta_channel_matches_in_memory_at_every_checkpoint(harness: Harness) -> None:
    pair = sides(harness, delta_graph)
    config = {**thread(), "recursion_limit": 200}
    results = [h.invoke(g, {"limit": 7}, config) for h, g in pair]
    results += [h.invoke(g, {"limit": 110, "items": ["again"]}, config) for h, g in pair]
    assert results[0] == results[1] and results[2] == results[3]
    assert len(results[2]["items"]) == 1 + 2 * 110 and results[2]["every"] == list(range(1, 111))
    assert results[2]["items"][:3] == ["t1", 1, "t2"] and "again" in results[2]["items"]

    forked = []  # update an early checkpoint, then run that branch to its end
    for h, g in pair:
        old = next(s for s in h.get_state_history(g, config) if s.metadata["step"] == 4)
        new_config = h.update_state(g, old.config, {"items": ["forked"]})
        forked.append(h.invoke(g, None, {**new_config, "recursion_limit": 200}))
    assert forked[0] == forked[1] and "forked" in forked[0]["items"] and forked[0]["step"] == 7

    history = assert_same_thread(pair, config)
    assert len(history) > 100  # more than one page of `list`, more than 64 ancestors
    stored = assert_same_delta_values(pair, (config, config))
    assert any(stored) and not all(stored), "want both snapshot and replayed checkpoints"


def test_copied_and_pruned_delta_thread_continues_like_in_memory(harness: Harness) -> None:
    pair = sides(harness, delta_graph)
    (ours, ours_graph), (ref, ref_graph) = pair
    source, copy = thread("source"), thread("copy")
    for h, g in pair:
        h.invoke(g, {"limit": 10}, source)
    ours.call("copy_thread", "source", "copy")
    assert_same_delta_values(pair, (copy, source))
    assert_same_delta_values(pair, (source, source))

    ours.invoke(ours_graph, {"limit": 14}, copy)
    ref.invoke(ref_graph, {"limit": 14}, source)
    assert_same_delta_values(pair, (copy, source))

    ours.call("prune", ["copy"], strategy="keep_latest")
    assert ours.get_state(ours_graph, copy).values == ref.get_state(ref_graph, source).values
    ours.invoke(ours_graph, {"limit": 16}, copy)
    ref.invoke(ref_graph, {"limit": 16}, source)
    assert ours.get_state(ours_graph, copy).values == ref.get_state(ref_graph, source).values
    assert ours.get_state(ours_graph, copy).values["every"] == list(range(1, 17))


# --- copy, prune and delete while a run waits ---------------------------------------


@pytest.mark.parametrize("operation", ["copy_thread", "prune", "delete_thread"])
def test_thread_maintenance_on_a_paused_subgraph(harness: Harness, operation: str) -> None:
    """``copy_thread`` / ``prune`` / ``delete_thread`` while a subgraph waits, then resume."""
    pair = sides(harness, subgraph_graph)
    for h, g in pair:
        h.invoke(g, {"log": []}, thread("src"))
    target = thread("dst" if operation == "copy_thread" else "src")
    if operation == "copy_thread":
        harness.call("copy_thread", "src", "dst")
    elif operation == "prune":
        harness.call("prune", ["src"], strategy="keep_latest")
    else:
        for h, g in pair:
            h.call("delete_thread", "src")
            assert h.get_state(g, target).values == {}
            h.invoke(g, {"log": ["again"]}, target)
    runs = list(zip(pair, (target, thread("src")), strict=True))  # ours on target, ref on src
    paused = [h.get_state(g, config, subgraphs=True) for (h, g), config in runs]
    assert normalise_snapshot(paused[0], {}) == normalise_snapshot(paused[1], {})
    assert paused[0].tasks[0].state.next == ("inner_ask",)
    results = [h.invoke(g, Command(resume="ok"), config) for (h, g), config in runs]
    assert results[0] == results[1] and results[0]["log"][-2:] == ["inner_ask:ok", "post"]
    if operation != "prune":  # pruning drops history InMemorySaver keeps
        assert_same_thread(pair, target, ref_config=thread("src"), subgraphs=True)


# --- 7. time travel -----------------------------------------------------------------


def _oldest(history: list, next_: tuple) -> Any:
    return [snap for snap in history if snap.next == next_][-1]


def test_replay_and_fork_from_old_checkpoints(harness: Harness) -> None:
    pair = sides(harness, linear_graph)
    config = thread()
    for h, g in pair:
        h.invoke(g, {"log": ["start"]}, config)
    first = assert_same_thread(pair, config)

    replayed = [
        h.invoke(g, None, _oldest(h.get_state_history(g, config), ("b",)).config) for h, g in pair
    ]
    assert replayed[0] == replayed[1] == {"log": ["start", "a", "b", "c"]}
    assert len(assert_same_thread(pair, config)) > len(first)

    forked = []
    for h, g in pair:
        old = _oldest(h.get_state_history(g, config), ("c",)).config
        new_config = h.update_state(g, old, {"log": ["edited"]}, as_node="b")
        assert new_config["configurable"]["checkpoint_id"] != old["configurable"]["checkpoint_id"]
        forked.append(h.invoke(g, None, new_config))
    assert forked[0] == forked[1] == {"log": ["start", "a", "b", "edited", "c"]}
    history = assert_same_thread(pair, config)
    assert history[0]["values"] == forked[0]
    sources = [snap["metadata"]["source"] for snap in history]
    assert sources.count("update") == 1 and sources.count("input") == 1


# --- 8. what else users rely on -----------------------------------------------------


@pytest.mark.parametrize("mode", ["values", "updates", "checkpoints"])
def test_stream_matches_in_memory(harness: Harness, mode: str) -> None:
    pair = sides(harness, interrupt_graph)
    config = thread()
    inputs = [{"topic": "s"}, Command(resume="fine")]
    streamed = [
        without_interrupt_ids(stream(h, g, input, config, stream_mode=mode))
        for input in inputs
        for h, g in pair
    ]
    if mode == "checkpoints":  # ids differ between runs: compare their shape only
        streamed = [[(c["values"], c["next"], c["metadata"]) for c in run] for run in streamed]
    assert streamed[0] == streamed[1] and streamed[2] == streamed[3]
    assert streamed[0] and streamed[2]
    assert_same_thread(pair, config)


@pytest.mark.parametrize("durability", ["exit", "sync", "async"])
def test_durability_modes_match_in_memory(harness: Harness, durability: str) -> None:
    pair = sides(harness, interrupt_graph)
    config = thread()
    for h, g in pair:
        h.invoke(g, {"topic": "d"}, config, durability=durability)
    assert_same_thread(pair, config)
    results = [h.invoke(g, Command(resume="r"), config, durability=durability) for h, g in pair]
    assert results[0] == results[1]
    assert results[0]["log"] == ["draft:d", "ask:r", "publish:r"]
    history = assert_same_thread(pair, config)
    assert (len(history) <= 3) == (durability == "exit")


def test_history_filters_match_in_memory(harness: Harness) -> None:
    pair = sides(harness, chat_graph)
    config = thread()
    tagged = {**thread(user_id="u-1"), "metadata": {"team": "red", "score": 1.5, "flag": True}}
    for n in range(3):
        for h, g in pair:
            turn = {"messages": [HumanMessage(f"m{n}", id=f"h-{n}")]}
            h.invoke(g, turn, tagged if n == 1 else config)
    full = [h.get_state_history(g, config) for h, g in pair]
    queries = [
        {"limit": 2},
        {"filter": {"source": "input"}},
        {"filter": {"step": 1}, "limit": 1},
        {"filter": {"team": "red", "flag": True}},
        {"filter": {"user_id": "u-1", "source": "loop", "score": 1.5}},
        {"before": 4},
        {"before": 4, "filter": {"source": "loop"}, "limit": 3},
    ]
    for query in queries:
        got = []
        for (h, g), history in zip(pair, full, strict=True):
            kwargs = dict(query)
            if "before" in kwargs:  # a position in the full history
                kwargs["before"] = history[kwargs["before"]].config
            snaps = h.get_state_history(g, config, **kwargs)
            got.append([normalise_snapshot(s, positions(history)) for s in snaps])
        assert got[0] == got[1], query
        assert got[0], query
    assert len(full[0]) == 9


EXOTIC_VALUES = [datetime.datetime(2024, 2, 29, 23, 59, 59, 999, tzinfo=datetime.timezone.utc)]
EXOTIC_VALUES += [Decimal("10.10"), {"a", "b"}, (1, (2, 3)), b"\x00\xff raw", uuid.UUID(int=7)]
EXOTIC_VALUES += [2**63 - 1, "nul \x00, ünïcødé, 🧵", "x" * 1_000_000, {"n": [None, {"z": 1.5}]}]


def test_exotic_values_round_trip_like_in_memory(harness: Harness) -> None:
    pair = sides(harness, echo_graph)
    config = thread()
    for value in EXOTIC_VALUES:
        results = [h.invoke(g, {"value": value}, config) for h, g in pair]
        assert results[0] == results[1] == {"value": value, "echo": value}
        assert type(results[0]["echo"]) is type(value)
    assert_same_thread(pair, config)


def test_concurrent_threads_match_in_memory(harness: Harness) -> None:
    """Several threads run at once on one saver (a server's load) and stay apart."""
    fans, deltas = sides(harness, fanout_graph), sides(harness, delta_graph)
    runs = [(0, {"count": n + 1}, thread(f"fan-{n}")) for n in range(4)]
    runs += [(1, {"limit": 8 + n}, thread(f"delta-{n}")) for n in range(4)]
    for side in (0, 1):
        graphs = (fans[side][1], deltas[side][1])
        run_concurrently(fans[side][0], [(graphs[g], i, c) for g, i, c in runs])
    for which, _input, config in runs:
        history = assert_same_thread((fans, deltas)[which], config)
        assert history[0]["next"] == ()


ODD_THREAD_IDS = ["t", "t%", "t_", "t*", "t?", "t[1]", 'it\'s "quoted"', "ns:with:colons"]
ODD_THREAD_IDS += ["{braces}", "back\\slash", " spaced\tout\n", "ünïcødé 🧵", "x" * 1000]
ODD_THREAD_IDS += [4242, uuid.UUID(int=42)]  # LangGraph turns these into strings


def test_odd_thread_ids_stay_separate(harness: Harness) -> None:
    pair = sides(harness, chat_graph)
    for n, thread_id in enumerate(ODD_THREAD_IDS):
        for h, g in pair:
            h.invoke(g, {"messages": [HumanMessage(f"hi {n}", id=f"h-{n}")]}, thread(thread_id))
    for n, thread_id in enumerate(ODD_THREAD_IDS):
        history = assert_same_thread(pair, thread(thread_id))
        contents = [m.content for m in history[0]["values"]["messages"]]
        assert contents == [f"hi {n}", f"reply 1 to 'hi {n}'"]
        listed = harness.call("list", thread(thread_id))
        assert {t.config["configurable"]["thread_id"] for t in listed} == {str(thread_id)}
        assert len(listed) == len(history)
