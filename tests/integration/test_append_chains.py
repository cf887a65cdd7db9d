"""Integration tier: chains of pieces stay short whatever order values arrive in
(`_core/deltas.py`), on every backend x mode.

An import (or a copy) re-puts every channel version of every checkpoint; a thread forked
at every turn re-puts older versions between new ones. The saver must not take a
version the store already held for a fresh chain root, or chains grow with the thread
(and PostgreSQL's read once stopped following them).
"""

from __future__ import annotations

import io
import operator
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver

from langgraph_persist_kit.transfer import export_threads
from tests.helpers.graphs import one_node_graph
from tests.helpers.harness import Harness
from tests.helpers.transfer import import_text

FORKS = 70
"""Turns of the forked thread: more than the 64 steps PostgreSQL's read once followed."""


class Forked(TypedDict, total=False):
    messages: Annotated[list, operator.add]
    note: str


def forked_graph() -> Any:
    def bot(state: Forked) -> dict[str, Any]:
        return {"messages": [f"reply to {state['messages'][-1]} " + "x" * 40]}

    return one_node_graph(Forked, bot)


def forked_thread(graph: Any, config: dict) -> None:
    """A turn, then ``update_state`` on the checkpoint before the reply (a fork that
    leaves ``messages`` at an older version), ``FORKS`` times."""
    for turn in range(FORKS):
        graph.invoke({"messages": [f"human {turn}"]}, config)
        before_reply = list(graph.get_state_history(config))[1].config
        graph.update_state(before_reply, {"note": f"n{turn}"})


def test_an_imported_forked_thread_reads_back_and_keeps_using_pieces(harness: Harness) -> None:
    """Imported into each store, a thread forked at every turn reads back exactly
    (PostgreSQL once failed past 64 steps of a chain) and still stores pieces."""
    h = harness
    memory = InMemorySaver()
    app = forked_graph().compile(checkpointer=memory)
    config = {"configurable": {"thread_id": "t"}}
    forked_thread(app, config)
    out = io.StringIO()
    export_threads(memory, out)
    import_text(h, out.getvalue())
    ours = forked_graph().compile(checkpointer=h.saver)
    assert h.get_state(ours, config).values == app.get_state(config).values
    history = [s.values for s in h.get_state_history(ours, config)]
    assert history == [s.values for s in app.get_state_history(config)]
    stats = h.call("stats", thread_id="t")
    (messages,) = [c for c in stats["channels"] if c["channel"] == "messages"]
    # a new turn on a fork extends the fork's older value, not the newest one the saver
    # remembers, so about half the values are whole here; the rest are pieces
    assert messages["rebuilt_bytes"] > 1.5 * messages["bytes"], messages


def test_a_thread_forked_at_every_turn_reads_back_on_each_store(harness: Harness) -> None:
    """The same forks made on our saver directly: every checkpoint reads back as on an
    ``InMemorySaver``, with pieces in use."""
    h = harness
    memory = InMemorySaver()
    app = forked_graph().compile(checkpointer=memory)
    ours = forked_graph().compile(checkpointer=h.saver)
    config = {"configurable": {"thread_id": "t"}}
    for turn in range(FORKS // 2):
        for graph, run in ((app, None), (ours, h)):
            if run is None:
                graph.invoke({"messages": [f"human {turn}"]}, config)
                before = list(graph.get_state_history(config))[1].config
                graph.update_state(before, {"note": f"n{turn}"})
            else:
                run.invoke(graph, {"messages": [f"human {turn}"]}, config)
                before = run.get_state_history(graph, config)[1].config
                run.update_state(graph, before, {"note": f"n{turn}"})
    history = [s.values for s in h.get_state_history(ours, config)]
    assert history == [s.values for s in app.get_state_history(config)]
    stats = h.call("stats", thread_id="t")
    (messages,) = [c for c in stats["channels"] if c["channel"] == "messages"]
    assert messages["rebuilt_bytes"] > 3 * messages["bytes"], messages
