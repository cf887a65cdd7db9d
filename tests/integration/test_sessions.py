"""fork_session, replay and checkpoint_tree on real compiled graphs.

Every test runs on each backend x {sync, async} and on ``InMemorySaver`` (which
takes the helpers' generic path: each checkpoint put again). A fork is compared
with the source at the forked checkpoint: ``get_state`` and the chain of
``get_state_history`` must be equal, checkpoint ids included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from langgraph_persist_kit import (
    acheckpoint_tree,
    afork_session,
    areplay,
    checkpoint_tree,
    fork_session,
    replay,
)
from langgraph_persist_kit.errors import ConfigurationError
from tests.helpers.differential import normalise_history, normalise_snapshot, positions, thread
from tests.helpers.graphs import (
    delta_graph,
    fanout_graph,
    interrupt_graph,
    linear_graph,
    subgraph_graph,
)
from tests.helpers.harness import COMBINATIONS, Harness, open_harness
from tests.helpers.sessions import answer, review_graph

SESSION_CASES = [*COMBINATIONS, ("memory", "sync"), ("memory", "async")]


@pytest.fixture(params=SESSION_CASES, ids=[f"{b}-{m}" for b, m in SESSION_CASES])
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    backend, mode = request.param
    if backend != "memory":
        from tests.helpers.backends import Space

        yield from open_harness(backend, mode, Space(tmp_path, request.module.__name__))
        return
    loop = asyncio.new_event_loop() if mode == "async" else None
    try:
        yield Harness("memory", mode, InMemorySaver(), loop)
    finally:
        if loop is not None:
            loop.close()


def fork(h: Harness, graph: Any, config: dict, **kwargs: Any) -> str:
    if h.mode == "sync":
        return fork_session(graph, config, **kwargs)
    return h.wait(afork_session(graph, config, **kwargs))


def rerun(h: Harness, graph: Any, config: dict, **kwargs: Any) -> Any:
    if h.mode == "sync":
        return replay(graph, config, **kwargs)
    return h.wait(areplay(graph, config, **kwargs))


def tree(h: Harness, thread_id: str) -> Any:
    if h.mode == "sync":
        return checkpoint_tree(h.saver, thread_id)
    return h.wait(acheckpoint_tree(h.saver, thread_id))


def at(thread_id: str, checkpoint_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}}


def chain(history: list, checkpoint_id: str) -> list:
    """The snapshots of ``history`` on the parent chain of ``checkpoint_id``, newest first."""
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in history}
    out, current = [], by_id.get(checkpoint_id)
    while current is not None:
        out.append(current)
        parent = (current.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        current = by_id.get(parent) if parent else None
    return out


def assert_fork_matches(h: Harness, graph: Any, source: str, checkpoint_id: str, fork_id: str,
                        **get_state_kwargs: Any) -> list:
    """The fork's history is the source's chain up to ``checkpoint_id``, and its state
    equals the source's state there. Returns the fork's normalised history."""
    expected = chain(h.get_state_history(graph, thread(source)), checkpoint_id)
    forked = h.get_state_history(graph, thread(fork_id))
    latest = h.get_state(graph, thread(source), **get_state_kwargs)
    at_latest = latest.config["configurable"]["checkpoint_id"] == checkpoint_id
    ours, theirs = normalise_history(forked), normalise_history(expected)
    if not at_latest:  # the source's record of that step shows what its tasks returned
        _without_results(theirs[0])  # later; the fork waits to run them again
    assert ours == theirs
    assert [s.config["configurable"]["checkpoint_id"] for s in forked] == [
        s.config["configurable"]["checkpoint_id"] for s in expected]
    ids = positions(expected)
    state = normalise_snapshot(h.get_state(graph, thread(fork_id), **get_state_kwargs), ids)
    there = normalise_snapshot(
        latest if at_latest else h.get_state(graph, at(source, checkpoint_id),
                                             **get_state_kwargs), ids)
    if not at_latest:
        _without_results(there)
    assert state == there
    return ours


def _without_results(snapshot: dict) -> None:
    for task in snapshot["tasks"]:
        task["result"] = None


def latest_id(h: Harness, graph: Any, thread_id: str) -> str:
    return h.get_state(graph, thread(thread_id)).config["configurable"]["checkpoint_id"]


def test_fork_at_an_interrupt_is_paused_and_resumes_on_its_own(h: Harness) -> None:
    graph = interrupt_graph().compile(checkpointer=h.saver)
    h.invoke(graph, {"topic": "post"}, thread("src"))
    paused_at = latest_id(h, graph, "src")
    forked = fork(h, graph, thread("src"), new_thread_id="copy")
    assert forked == "copy"
    history = assert_fork_matches(h, graph, "src", paused_at, "copy")
    assert history[0]["next"] == ("ask",) and history[0]["interrupts"]
    assert h.invoke(graph, Command(resume="yes"), thread("copy"))["log"][-1] == "publish:yes"
    assert h.get_state(graph, thread("src")).next == ("ask",)  # the source still waits
    assert h.invoke(graph, Command(resume="no"), thread("src"))["log"][-1] == "publish:no"
    again = fork(h, graph, at("src", paused_at))  # the source answered; the fork waits again
    assert_fork_matches(h, graph, "src", paused_at, again)
    assert h.get_state(graph, thread(again)).next == ("ask",)
    h.invoke(graph, None, thread(again))  # the source's answer did not come along
    assert h.get_state(graph, thread(again)).next == ("ask",)
    assert h.invoke(graph, Command(resume="maybe"), thread(again))["log"][-1] == "publish:maybe"
    assert h.get_state(graph, thread("copy")).values["log"][-1] == "publish:yes"
    assert h.get_state(graph, thread("src")).values["log"][-1] == "publish:no"


def test_fork_inside_a_subgraph_interrupt(h: Harness) -> None:
    graph = subgraph_graph().compile(checkpointer=h.saver)
    h.invoke(graph, {"log": []}, thread("src"))
    paused_at = latest_id(h, graph, "src")
    forked = fork(h, graph, thread("src"))
    assert_fork_matches(h, graph, "src", paused_at, forked, subgraphs=True)
    done = h.invoke(graph, Command(resume="same answer"), thread(forked))
    assert "inner_ask:same answer" in done["log"] and done["log"][-1] == "post"
    assert h.get_state(graph, thread("src")).next == ("child",)
    assert h.invoke(graph, Command(resume="same answer"), thread("src")) == done


def test_fork_before_send_tasks_runs_them_on_the_fork(h: Harness) -> None:
    graph = fanout_graph().compile(checkpointer=h.saver)
    final = h.invoke(graph, {"count": 4}, thread("src"))
    history = h.get_state_history(graph, thread("src"))
    before_workers = next(s for s in history if "worker" in s.next)
    checkpoint_id = before_workers.config["configurable"]["checkpoint_id"]
    forked = fork(h, graph, at("src", checkpoint_id))
    assert_fork_matches(h, graph, "src", checkpoint_id, forked)
    assert h.invoke(graph, None, thread(forked)) == final
    assert len(h.get_state_history(graph, thread("src"))) == len(history)


def test_fork_in_the_middle_of_delta_channels(h: Harness) -> None:
    graph = delta_graph().compile(checkpointer=h.saver)
    final = h.invoke(graph, {"limit": 10}, thread("src"))
    history = h.get_state_history(graph, thread("src"))
    middle = next(s for s in history if s.values.get("step") == 5)
    checkpoint_id = middle.config["configurable"]["checkpoint_id"]
    forked = fork(h, graph, at("src", checkpoint_id))
    assert_fork_matches(h, graph, "src", checkpoint_id, forked)
    assert h.get_state(graph, thread(forked)).values["items"] == middle.values["items"]
    assert h.invoke(graph, None, thread(forked)) == final
    extended = h.invoke(graph, {"limit": 12}, thread(forked))
    assert extended["every"] == list(range(1, 13))
    assert h.get_state(graph, thread("src")).values == final  # the source did not move


def test_fork_refuses_what_it_cannot_do(h: Harness) -> None:
    graph = linear_graph().compile(checkpointer=h.saver)
    h.invoke(graph, {"log": []}, thread("src"))
    h.invoke(graph, {"log": []}, thread("taken"))
    with pytest.raises(ConfigurationError, match="exists"):
        fork(h, graph, thread("src"), new_thread_id="taken")
    with pytest.raises(ConfigurationError, match="no checkpoint"):
        fork(h, graph, thread("missing"))
    with pytest.raises(ConfigurationError, match="checkpointer"):
        fork(h, linear_graph().compile(), thread("src"))


def test_replay_with_an_edited_state_keeps_the_original_branch(h: Harness) -> None:
    graph = linear_graph().compile(checkpointer=h.saver)
    assert h.invoke(graph, {"log": []}, thread("t"))["log"] == ["a", "b", "c"]
    before_b = next(s for s in h.get_state_history(graph, thread("t")) if s.next == ("b",))
    config = before_b.config
    result = rerun(h, graph, config, update={"log": ["edited"]}, as_node="a")
    assert result["log"] == ["a", "edited", "b", "c"]
    branches = tree(h, "t").branches()
    assert len(branches) == 2
    assert [len(b) for b in branches] == [5, 6]  # input, a, b, c (+ start); the edit adds one
    again = rerun(h, graph, config)  # re-run what was next, unchanged
    assert again["log"] == ["a", "b", "c"]
    assert len(tree(h, "t").branches()) == 3
    with pytest.raises(ConfigurationError, match="checkpoint"):
        rerun(h, graph, thread("t"))


def test_replay_answers_an_interrupt_again(h: Harness) -> None:
    graph = interrupt_graph().compile(checkpointer=h.saver)
    h.invoke(graph, {"topic": "post"}, thread("t"))
    paused = h.get_state(graph, thread("t")).config
    assert h.invoke(graph, Command(resume="yes"), thread("t"))["log"][-1] == "publish:yes"
    result = rerun(h, graph, paused, input=Command(resume="no"))
    assert result["log"] == ["draft:post", "ask:no", "publish:no"]
    logs = {tuple(h.get_state(graph, at("t", b[-1]["checkpoint_id"])).values["log"])
            for b in tree(h, "t").branches()}
    assert ("draft:post", "ask:yes", "publish:yes") in logs  # the original branch stays
    assert ("draft:post", "ask:no", "publish:no") in logs


def test_replay_fills_in_the_default_namespace(h: Harness) -> None:
    graph = interrupt_graph().compile(checkpointer=h.saver)
    h.invoke(graph, {"topic": "post"}, thread("t"))
    paused_id = h.get_state(graph, thread("t")).config["configurable"]["checkpoint_id"]
    bare = {"configurable": {"thread_id": "t", "checkpoint_id": paused_id}}  # as users write it
    result = rerun(h, graph, bare, input=Command(resume="ok"))
    assert result["log"] == ["draft:post", "ask:ok", "publish:ok"]
    edited = rerun(h, graph, bare, update={"topic": "edited"}, as_node="draft")
    assert edited["log"][0] == "draft:post" and "__interrupt__" in edited
    assert bare == {"configurable": {"thread_id": "t", "checkpoint_id": paused_id}}  # untouched


def test_checkpoint_tree_draws_every_namespace(h: Harness) -> None:
    graph = subgraph_graph().compile(checkpointer=h.saver)
    h.invoke(graph, {"log": []}, thread("t"))
    h.invoke(graph, Command(resume="x"), thread("t"))
    drawn = tree(h, "t")
    history = h.get_state_history(graph, thread("t"))
    assert len(drawn.branches()) == 1 and len(drawn.branches()[0]) == len(history)
    diagram = drawn.to_mermaid()
    assert diagram.startswith("graph TD\n") and "subgraph ns" in diagram and "-.->" in diagram
    assert diagram.count(" --> ") == len(drawn.records) - len(
        {r["checkpoint_ns"] for r in drawn.records})
    assert "```mermaid" in drawn._repr_markdown_()


def test_forking_a_long_thread_on_postgres_stays_in_the_store() -> None:
    """Forking 1,000 checkpoints takes as many round trips as forking 10."""
    import psycopg

    from langgraph_persist_kit.postgres import PostgresSaver
    from tests.helpers.backends import fresh_schema, postgres_url
    from tests.helpers.postgres import CountingCursor, count_round_trips

    conn = psycopg.connect(postgres_url(__name__), autocommit=True,
                           cursor_factory=CountingCursor)
    saver = PostgresSaver(conn, schema=fresh_schema())
    saver.setup()
    graph = linear_graph().compile(checkpointer=saver)
    trips = {}
    for runs in (2, 200):  # 5 checkpoints per run
        for _ in range(runs):
            graph.invoke({"log": []}, thread(f"long-{runs}"))
        history = list(graph.get_state_history(thread(f"long-{runs}")))
        assert len(history) == 5 * runs
        middle = history[len(history) // 2].config["configurable"]["checkpoint_id"]
        trips[runs] = count_round_trips(lambda runs=runs, middle=middle: fork_session(
            graph, at(f"long-{runs}", middle), new_thread_id=f"copy-{runs}"))
        assert len(list(graph.get_state_history(thread(f"copy-{runs}")))) == len(history) // 2
    assert trips[200] == trips[2] <= 16  # 3 reads, then one transaction of a few statements
    conn.close()


def test_fork_from_the_command_line(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from langgraph_persist_kit.cli import cli
    from langgraph_persist_kit.sqlite import SqliteSaver

    url = f"sqlite:///{tmp_path / 'store.db'}"
    with SqliteSaver.from_conn_string(url) as saver:
        graph = interrupt_graph().compile(checkpointer=saver)
        graph.invoke({"topic": "post"}, thread("src"))
        paused = graph.get_state(thread("src")).config["configurable"]["checkpoint_id"]
        graph.invoke(Command(resume="yes"), thread("src"))
    runner = CliRunner()
    result = runner.invoke(cli, ["fork", url, "src", "--checkpoint", paused,
                                 "--new-thread", "copy", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"thread_id": "copy"}
    with SqliteSaver.from_conn_string(url) as saver:
        graph = interrupt_graph().compile(checkpointer=saver)
        assert graph.get_state(thread("copy")).next == ("ask",)
        assert graph.invoke(Command(resume="no"), thread("copy"))["log"][-1] == "publish:no"
    again = runner.invoke(cli, ["fork", url, "src", "--new-thread", "copy"])
    assert again.exit_code == 1 and "exists" in again.output
    plain = runner.invoke(cli, ["fork", url, "src"])
    assert plain.exit_code == 0 and len(plain.output.strip()) == 36  # a new UUID


def test_a_fork_keeps_the_order_later_writes_take(h: Harness) -> None:
    """Writes made on the fork after it was taken sort among the copied ones as on the
    source: the copied writes keep their task paths."""
    graph = review_graph().compile(checkpointer=h.saver)
    h.invoke(graph, {"items": []}, thread("src"))
    answer(h, graph, "src", [1])
    forked = fork(h, graph, thread("src"))
    for thread_id in ("src", forked):
        answer(h, graph, thread_id, [0, 2])
    final = h.get_state(graph, thread("src")).values["items"]
    assert final == ["plan", "0:a0", "1:a1", "2:a2", "after"]
    assert h.get_state(graph, thread(forked)).values["items"] == final
