"""Deterministic LangGraph graphs for the differential tests.

Owns: the graph builders used by ``test_graphs.py`` and the other harness tests (no
LLM, no network; every builder returns an uncompiled ``StateGraph`` so a test compiles
it once per saver). Running a script on two savers and comparing the threads is
`tests.helpers.differential`.
"""

from __future__ import annotations

import operator
import threading
import time
from collections import Counter
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, Send, interrupt

# --- graphs -------------------------------------------------------------------


def one_node_graph(state: type, bot: Any) -> StateGraph:
    """``START -> bot -> END`` over ``state``: the shape of every one-node chat here."""
    builder = StateGraph(state)
    builder.add_node("bot", bot)
    builder.add_edge(START, "bot")
    builder.add_edge("bot", END)
    return builder


def chat_graph() -> StateGraph:
    """One "bot" node answering each human turn with a scripted, fixed-id reply."""

    def bot(state: MessagesState) -> dict:
        turn = sum(1 for m in state["messages"] if m.type == "human")
        last = state["messages"][-1].content
        return {"messages": [AIMessage(content=f"reply {turn} to {last!r}", id=f"ai-{turn}")]}

    return one_node_graph(MessagesState, bot)


class LogState(TypedDict, total=False):
    topic: str
    answer: Any
    log: Annotated[list, operator.add]


def interrupt_graph() -> StateGraph:
    """``draft`` -> ``ask`` (interrupts for an answer) -> ``publish``."""

    def draft(state: LogState) -> dict:
        return {"log": [f"draft:{state['topic']}"]}

    def ask(state: LogState) -> dict:
        answer = interrupt({"question": f"approve {state['topic']}?", "log": state["log"]})
        return {"answer": answer, "log": [f"ask:{answer}"]}

    def publish(state: LogState) -> dict:
        return {"log": [f"publish:{state['answer']}"]}

    builder = StateGraph(LogState)
    builder.add_node("draft", draft)
    builder.add_node("ask", ask)
    builder.add_node("publish", publish)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "ask")
    builder.add_edge("ask", "publish")
    builder.add_edge("publish", END)
    return builder


def subgraph_graph() -> StateGraph:
    """``prep`` -> ``child`` (a compiled subgraph that interrupts) -> ``post``."""
    child = StateGraph(LogState)
    child.add_node("inner_work", lambda s: {"log": ["inner_work"]})
    child.add_node("inner_ask", lambda s: {"log": [f"inner_ask:{interrupt('need input')}"]})
    child.add_edge(START, "inner_work")
    child.add_edge("inner_work", "inner_ask")
    child.add_edge("inner_ask", END)

    builder = StateGraph(LogState)
    builder.add_node("prep", lambda s: {"log": ["prep"]})
    builder.add_node("child", child.compile())
    builder.add_node("post", lambda s: {"log": ["post"]})
    builder.add_edge(START, "prep")
    builder.add_edge("prep", "child")
    builder.add_edge("child", "post")
    builder.add_edge("post", END)
    return builder


class FanState(TypedDict, total=False):
    count: int
    results: Annotated[list, operator.add]


def fanout_graph() -> StateGraph:
    """``plan`` sends ``count`` parallel ``worker`` tasks, each appending to ``results``."""

    def fan_out(state: FanState) -> list[Send]:
        return [Send("worker", {"index": i}) for i in range(state["count"])]

    def worker(arg: dict) -> dict:
        return {"results": [f"w{arg['index']}", arg["index"] * 10]}

    builder = StateGraph(FanState)
    builder.add_node("plan", lambda s: {"results": ["plan"]})
    builder.add_node("worker", worker)
    builder.add_node("collect", lambda s: {"results": [f"collected {len(s['results'])}"]})
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out, ["worker"])
    builder.add_edge("worker", "collect")
    builder.add_edge("collect", END)
    return builder


def parallel_interrupts_graph() -> StateGraph:
    """``plan`` sends three ``review`` tasks that each interrupt for their own answer.

    Alongside them ``notes`` finishes at once with three ordered writes to ``log``,
    which wait as pending writes until every review is answered.
    """

    def review(arg: dict) -> dict:
        return {"log": [f"{arg['i']}:{interrupt({'item': arg['i']})}"]}

    builder = StateGraph(LogState)
    builder.add_node("plan", lambda s: {"log": ["plan"]})
    builder.add_node("review", review)
    builder.add_node("notes", lambda s: Command(update=[("log", [n]) for n in ("n1", "n2", "n3")]))
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "notes")
    builder.add_conditional_edges(
        "plan", lambda s: [Send("review", {"i": i}) for i in range(3)], ["review"]
    )
    return builder


class EchoState(TypedDict, total=False):
    value: Any
    echo: Any


def echo_graph() -> StateGraph:
    """``echo`` copies ``value`` to ``echo``: any value crosses the store twice per run."""
    builder = StateGraph(EchoState)
    builder.add_node("echo", lambda s: {"echo": s["value"]})
    builder.add_edge(START, "echo")
    return builder


def flaky_graph(calls: Counter) -> StateGraph:
    """``steady`` and ``flaky`` run in one super-step; ``flaky`` fails on its first call.

    ``calls`` counts each node's calls; give every compiled copy its own. ``flaky``
    raises only once ``steady`` has returned (a failure cancels the step's
    unfinished tasks, so a sibling still running would lose its writes).
    """
    steady_done = threading.Event()

    def steady(state: LogState) -> dict:
        calls["steady"] += 1
        steady_done.set()
        return {"log": ["steady"]}

    def flaky(state: LogState) -> dict:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            steady_done.wait(timeout=5)
            time.sleep(0.05)  # let the runner record steady's result first
            raise ValueError("flaky failed once")
        return {"log": ["flaky"]}

    def join(state: LogState) -> dict:
        calls["join"] += 1
        return {"log": ["join"]}

    builder = StateGraph(LogState)
    builder.add_node("steady", steady)
    builder.add_node("flaky", flaky)
    builder.add_node("join", join)
    builder.add_edge(START, "steady")
    builder.add_edge(START, "flaky")
    builder.add_edge(["steady", "flaky"], "join")
    builder.add_edge("join", END)
    return builder


def extend(state: list, writes: list) -> list:
    """DeltaChannel reducer: appends every item of every write (batching-invariant)."""
    return state + [item for write in writes for item in write]


class DeltaState(TypedDict, total=False):
    items: Annotated[list, DeltaChannel(extend, snapshot_frequency=3)]
    every: Annotated[list, DeltaChannel(extend)]  # snapshots every 100 updates
    step: int
    limit: int


def delta_graph() -> StateGraph:
    """``tick`` loops until ``step`` reaches ``limit``, appending to two DeltaChannels."""

    def tick(state: DeltaState) -> dict:
        step = state.get("step", 0) + 1
        return {"items": [f"t{step}", step], "every": [step], "step": step}

    builder = StateGraph(DeltaState)
    builder.add_node("tick", tick)
    builder.add_edge(START, "tick")
    builder.add_conditional_edges(
        "tick", lambda s: "tick" if s["step"] < s["limit"] else END, ["tick", END]
    )
    return builder


def linear_graph() -> StateGraph:
    """``a`` -> ``b`` -> ``c``, each appending its name to ``log``."""
    builder = StateGraph(LogState)
    for name in "abc":
        builder.add_node(name, lambda s, name=name: {"log": [name]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder

