"""A graph of three parallel interrupts answered into a DeltaChannel (test_sessions.py,
test_transfer_safety.py)."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langgraph.channels import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

from tests.helpers.differential import thread
from tests.helpers.graphs import extend
from tests.helpers.harness import Harness


class ReviewState(TypedDict, total=False):
    items: Annotated[list, DeltaChannel(extend)]  # no snapshot: rebuilt from writes


def review_graph() -> Any:
    """``plan`` sends three ``review`` tasks that each interrupt; answers land in a
    DeltaChannel in task-path order, whatever order they are given in."""

    def review(arg: dict) -> dict:
        return {"items": [f"{arg['i']}:{interrupt(arg['i'])}"]}

    builder = StateGraph(ReviewState)
    builder.add_node("plan", lambda s: {"items": ["plan"]})
    builder.add_node("review", review)
    builder.add_node("after", lambda s: {"items": ["after"]})
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", lambda s: [Send("review", {"i": i}) for i in range(3)],
                                  ["review"])
    builder.add_edge("review", "after")
    builder.add_edge("after", END)
    return builder


def answer(h: Harness, graph: Any, thread_id: str, items: list[int]) -> Any:
    pending = {i.value: i.id for i in h.get_state(graph, thread(thread_id)).interrupts}
    return h.invoke(graph, Command(resume={pending[i]: f"a{i}" for i in items}), thread(thread_id))
