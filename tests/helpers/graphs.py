"""Deterministic LangGraph graphs for the differential tests, and how runs are compared.

Owns: the graph builders used by ``test_graphs.py`` (no LLM, no network; every
builder returns an uncompiled ``StateGraph`` so a test compiles it once per
saver); ``sides`` / ``assert_same_thread``, which run one script on the saver
under test and on an ``InMemorySaver`` in the same mode and compare the
threads; and ``normalise_history`` / ``normalise_snapshot``, which turn
``StateSnapshot``s into plain data that is equal across two runs of one script:
checkpoint ids become positions in the thread's history, task ids and
timestamps are dropped, subgraph namespaces keep only their node name.
"""

from __future__ import annotations

import asyncio
import operator
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, Interrupt, Send, StateSnapshot, interrupt

from tests.helpers.harness import Harness

# --- graphs -------------------------------------------------------------------


def chat_graph() -> StateGraph:
    """One "bot" node answering each human turn with a scripted, fixed-id reply."""

    def bot(state: MessagesState) -> dict:
        turn = sum(1 for m in state["messages"] if m.type == "human")
        last = state["messages"][-1].content
        return {"messages": [AIMessage(content=f"reply {turn} to {last!r}", id=f"ai-{turn}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("bot", bot)
    builder.add_edge(START, "bot")
    builder.add_edge("bot", END)
    return builder


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


# --- running one script on both savers ----------------------------------------

Side = tuple[Harness, Any]  # (harness running the graph, graph compiled on its saver)


def sides(harness: Harness, build: Callable[[], StateGraph]) -> list[Side]:
    """The graph compiled on the saver under test, then on an InMemorySaver run in the same mode."""
    reference = Harness("memory", harness.mode, InMemorySaver(), harness.loop)
    return [(h, build().compile(checkpointer=h.saver)) for h in (harness, reference)]


def thread(thread_id: Any = "thread-1", **configurable: Any) -> dict:
    return {"configurable": {"thread_id": thread_id, **configurable}}


def assert_same_thread(
    pair: list[Side], config: dict, ref_config: dict | None = None, **get_state_kwargs: Any
) -> list[dict]:
    """Assert both sides hold the same history and latest state; return the normalised history.

    ``ref_config`` names the InMemorySaver's thread when it is not ``config``'s.
    """
    (ours, ours_graph), (ref, ref_graph) = pair
    ref_config = ref_config or config
    ours_history = ours.get_state_history(ours_graph, config)
    ref_history = ref.get_state_history(ref_graph, ref_config)
    assert normalise_history(ours_history) == normalise_history(ref_history)
    ours_state = ours.get_state(ours_graph, config, **get_state_kwargs)
    ref_state = ref.get_state(ref_graph, ref_config, **get_state_kwargs)
    assert normalise_snapshot(ours_state, positions(ours_history)) == normalise_snapshot(
        ref_state, positions(ref_history)
    )
    assert ours_history, "the run left no checkpoints"
    return normalise_history(ours_history)


def stream(h: Harness, graph: Any, input: Any, config: dict, **kwargs: Any) -> list:
    if h.mode == "sync":
        return list(graph.stream(input, config, **kwargs))

    async def collect() -> list:
        return [chunk async for chunk in graph.astream(input, config, **kwargs)]

    return h.wait(collect())


def run_concurrently(h: Harness, calls: list[tuple[Any, Any, dict]]) -> None:
    """Invoke every ``(graph, input, config)`` at once: on threads (sync) or as tasks (async)."""
    if h.mode == "sync":
        with ThreadPoolExecutor(len(calls)) as pool:
            list(pool.map(lambda call: call[0].invoke(call[1], call[2]), calls))
        return

    async def run_all() -> None:
        await asyncio.gather(*(graph.ainvoke(input, config) for graph, input, config in calls))

    h.wait(run_all())


# --- comparing DeltaChannel reconstruction ------------------------------------

DELTA_CHANNELS = ["items", "every"]


def _delta_entries(history: dict) -> dict:
    out = {}
    for channel in DELTA_CHANNELS:
        seed = history[channel].get("seed", "<absent>")
        if isinstance(seed, _DeltaSnapshot):
            seed = ("snapshot", seed.value)
        writes = [(ch, value) for _task, ch, value in history[channel]["writes"]]
        out[channel] = {"writes": writes, "seed": seed}
    return out


def assert_same_delta_values(pair: list[Side], configs: tuple[dict, dict]) -> list[bool]:
    """Compare every checkpoint's values and delta history; return which stored ``items``."""
    (ours, ours_graph), (ref, ref_graph) = pair
    ours_history = ours.get_state_history(ours_graph, configs[0])
    ref_history = ref.get_state_history(ref_graph, configs[1])
    assert len(ours_history) == len(ref_history)
    stored = []
    for at, (ours_snap, ref_snap) in enumerate(zip(ours_history, ref_history, strict=True)):
        ours_values = ours.get_state(ours_graph, ours_snap.config).values
        assert ours_values == ref.get_state(ref_graph, ref_snap.config).values, at
        assert ours_values == ours_snap.values, at
        got = ours.call(
            "get_delta_channel_history", config=ours_snap.config, channels=DELTA_CHANNELS
        )
        want = ref.call(
            "get_delta_channel_history", config=ref_snap.config, channels=DELTA_CHANNELS
        )
        assert _delta_entries(got) == _delta_entries(want), at
        checkpoint = ours.call("get_tuple", ours_snap.config).checkpoint
        stored.append("items" in checkpoint["channel_values"])
    return stored


# --- normalising snapshots ----------------------------------------------------

RANDOM_METADATA = {"run_id"}
"""Metadata keys whose values differ between two runs of the same script."""


def positions(history: list) -> dict[str, int]:
    """checkpoint id -> its position in ``history`` (newest first)."""
    return {snap.config["configurable"]["checkpoint_id"]: i for i, snap in enumerate(history)}


def normalise_history(history: list) -> list[dict]:
    ids = positions(history)
    return [normalise_snapshot(snap, ids) for snap in history]


def normalise_snapshot(snap: Any, ids: dict[str, int]) -> dict:
    """A snapshot as comparable data; ids not in ``ids`` (other namespaces) become ``"?"``."""
    return {
        "values": snap.values,
        "next": snap.next,
        "checkpoint": _position(snap.config, ids),
        "parent": _position(snap.parent_config, ids),
        "ns": _ns(snap.config),
        "metadata": _metadata(snap.metadata, ids),
        "tasks": [_task(task, ids) for task in snap.tasks],
        "interrupts": [i.value for i in snap.interrupts],
    }


def without_interrupt_ids(value: Any) -> Any:
    """``value`` (a graph output or stream chunk) with each ``Interrupt`` replaced by its value.

    Interrupt ids hash the task's namespace, which holds run-specific ids. The
    ``__interrupt__`` list of an output is sorted: parallel tasks interrupt in the
    order their threads happen to finish, whatever the saver.
    """
    if isinstance(value, Interrupt):
        return ("Interrupt", value.value)
    if isinstance(value, dict):
        return {k: sorted(without_interrupt_ids(v), key=repr) if k == "__interrupt__"
                else without_interrupt_ids(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(without_interrupt_ids(v) for v in value)
    return value


def _position(config: dict | None, ids: dict[str, int]) -> int | str | None:
    if config is None:
        return None
    return ids.get(config["configurable"].get("checkpoint_id"), "?")


def _ns(config: dict) -> str:
    """``"child:<task id>|inner:<task id>"`` -> ``"child|inner"``."""
    ns = config["configurable"].get("checkpoint_ns", "")
    return "|".join(part.split(":")[0] for part in ns.split("|")) if ns else ""


def _metadata(metadata: dict | None, ids: dict[str, int]) -> dict | None:
    if metadata is None:
        return None
    out = {k: v for k, v in metadata.items() if k not in RANDOM_METADATA}
    if "parents" in out:
        out["parents"] = {_short(ns): ids.get(cid, "?") for ns, cid in out["parents"].items()}
    return out


def _short(ns: str) -> str:
    return _ns({"configurable": {"checkpoint_ns": ns}})


def _task(task: Any, ids: dict[str, int]) -> dict:
    state = task.state
    if isinstance(state, StateSnapshot):  # get_state(..., subgraphs=True)
        state = normalise_snapshot(state, ids)  # its "parents" point into ``ids``
    elif state is not None:  # a subgraph's config
        state = _ns(state)
    return {
        "name": task.name,
        "path": task.path,
        "error": None if task.error is None else str(task.error),
        "interrupts": [i.value for i in task.interrupts],
        "state": state,
        "result": task.result,
    }
