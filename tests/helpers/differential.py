"""Differential runs: one script on the saver under test and on an ``InMemorySaver`` in
the same mode, and the comparison of the two threads.

Owns: ``sides`` (the graph compiled on both savers), ``thread`` / ``stream`` /
``run_concurrently`` (running a script in a harness's mode), ``assert_same_thread`` and
``assert_same_delta_values`` (the comparisons), and ``normalise_history`` /
``normalise_snapshot``, which turn ``StateSnapshot``s into plain data that is equal
across two runs of one script: checkpoint ids become positions in the thread's history,
task ids and timestamps are dropped, subgraph namespaces keep only their node name. The
graphs themselves are in `tests.helpers.graphs`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.graph import StateGraph
from langgraph.types import Interrupt, StateSnapshot

from tests.helpers.harness import Harness

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
