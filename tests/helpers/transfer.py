"""Saver sides of every kind, mode-aware export, import and copy, and the scenario of
five threads of real graphs (test_transfer.py, test_transfer_cli.py,
test_transfer_safety.py)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from langgraph_persist_kit import (
    TransferReport,
    acopy_threads,
    aexport_threads,
    aimport_threads,
    copy_threads,
    export_threads,
    import_threads,
)
from tests.helpers.backends import Space
from tests.helpers.differential import thread
from tests.helpers.graphs import (
    delta_graph,
    fanout_graph,
    interrupt_graph,
    parallel_interrupts_graph,
    subgraph_graph,
)
from tests.helpers.harness import Harness, open_harness

# --- saver sides and mode-aware calls -------------------------------------------------


@contextmanager
def side(kind: str, mode: str, path: Path, **options: Any) -> Iterator[Harness]:
    """A fresh saver of ``kind`` (a backend of backends.py, or ``"memory"``) in ``mode``."""
    if kind == "memory":
        loop = asyncio.new_event_loop() if mode == "async" else None
        try:
            yield Harness("memory", mode, InMemorySaver(**options), loop)
        finally:
            if loop is not None:
                loop.close()
        return
    path.mkdir(parents=True, exist_ok=True)
    yield from open_harness(kind, mode, Space(path, __name__), **options)


def export_text(h: Harness, **kwargs: Any) -> str:
    out = io.StringIO()
    if h.mode == "sync":
        export_threads(h.saver, out, **kwargs)
    else:
        h.wait(aexport_threads(h.saver, out, **kwargs))
    return out.getvalue()


def import_text(h: Harness, text: str, **kwargs: Any) -> TransferReport:
    lines = io.StringIO(text)
    if h.mode == "sync":
        return import_threads(h.saver, lines, **kwargs)
    return h.wait(aimport_threads(h.saver, lines, **kwargs))


# --- the scenario: five threads of real graphs ------------------------------------------

GRAPHS = {
    "paused": interrupt_graph,
    "sub": subgraph_graph,
    "fan": fanout_graph,
    "parallel": parallel_interrupts_graph,
    "delta": delta_graph,
}
LIMITS = {"recursion_limit": 100}


def compiled(h: Harness) -> dict[str, Any]:
    return {name: build().compile(checkpointer=h.saver) for name, build in GRAPHS.items()}


def resume_map(h: Harness, graph: Any, answers: dict[int, str]) -> Command:
    pending = {i.value["item"]: i.id for i in h.get_state(graph, thread("parallel")).interrupts}
    return Command(resume={pending[item]: answer for item, answer in answers.items()})


def fill(h: Harness) -> None:
    """Run every graph of `GRAPHS` on ``h``: threads paused, finished, forked."""
    g = compiled(h)
    h.invoke(g["paused"], {"topic": "post"}, thread("paused"))
    h.invoke(g["paused"], Command(update={"log": ["edit-1"]}), thread("paused"))  # still paused
    h.invoke(g["sub"], {"log": []}, thread("sub"))
    h.invoke(g["fan"], {"count": 4}, thread("fan"))
    h.invoke(g["parallel"], {"log": []}, thread("parallel"))
    h.invoke(g["parallel"], resume_map(h, g["parallel"], {1: "one"}), thread("parallel"))
    h.invoke(g["delta"], {"limit": 8}, {**thread("delta"), **LIMITS})
    old = next(s for s in h.get_state_history(g["delta"], thread("delta"))
               if s.metadata["step"] == 4)
    forked = h.update_state(g["delta"], old.config, {"items": ["forked"]})
    h.invoke(g["delta"], None, {**forked, **LIMITS})


def copy(source: Harness, target: Harness, **kwargs: Any) -> TransferReport:
    assert source.mode == target.mode
    if source.mode == "sync":
        return copy_threads(source.saver, target.saver, **kwargs)
    return source.wait(acopy_threads(source.saver, target.saver, **kwargs))


def assert_identical_threads(a: Harness, b: Harness) -> None:
    """Same history and state, snapshot for snapshot, ids included (exports keep them)."""
    graphs_a, graphs_b = compiled(a), compiled(b)
    for name in GRAPHS:
        history = a.get_state_history(graphs_a[name], thread(name))
        assert history == b.get_state_history(graphs_b[name], thread(name)), name
        assert len(history) >= 3, name
        state = a.get_state(graphs_a[name], thread(name), subgraphs=True)
        assert state == b.get_state(graphs_b[name], thread(name), subgraphs=True), name
