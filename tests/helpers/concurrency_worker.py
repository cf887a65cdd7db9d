"""A separate OS process driving one thread, for the multi-process concurrency tests.

Usage: ``python tests/helpers/concurrency_worker.py ROLE MODE URL THREAD [ARG]`` where MODE is
``sync`` or ``async`` and ROLE one of:

- ``hammer RUNS``: RUNS runs of the counter graph through `LockedGraph`
  (``unlocked``: the same without the wrapper, to show what is lost then);
- ``versioned GO_FILE``: read the thread's latest checkpoint id, print
  ``ready``, wait for GO_FILE to exist, then one `VersionedGraph` run with that
  id; prints ``won`` or ``stale``;
- ``hold LEASE``: take the thread's lock with a LEASE-second lease, print
  ``locked`` and sleep until killed.
"""

from __future__ import annotations

import asyncio
import operator
import os
import random
import sys
import time
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from langgraph_persist_kit import async_saver_from_url, saver_from_url
from langgraph_persist_kit.concurrency import (
    LockedGraph,
    StaleThreadError,
    VersionedGraph,
    athread_lock,
    thread_lock,
)


class Counter(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]


def builder(pause: float) -> StateGraph:
    """One node that reads ``n``, pauses, and writes ``n + 1``: a read-modify-write."""

    def increment(state: Counter) -> Counter:
        seen = state.get("n", 0)
        time.sleep(pause)
        return {"n": seen + 1, "log": [f"{os.getpid()}:{seen}"]}

    graph = StateGraph(Counter)
    graph.add_node("increment", increment)
    graph.add_edge(START, "increment")
    graph.add_edge("increment", END)
    return graph


def _say(text: str) -> None:
    print(text, flush=True)


def run_sync(role: str, url: str, thread: str, arg: str) -> None:
    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    with saver_from_url(url) as saver:
        if role in ("hammer", "unlocked"):
            graph = builder(0.002).compile(checkpointer=saver)
            runner = LockedGraph(graph) if role == "hammer" else graph
            for _ in range(int(arg)):
                runner.invoke({"log": []}, config)
                time.sleep(random.uniform(0, 0.004))  # requests arrive, they do not queue
            _say("done")
        elif role == "versioned":
            graph = builder(0.3).compile(checkpointer=saver)
            seen = graph.get_state(config).config["configurable"].get("checkpoint_id")
            _say("ready")
            while not os.path.exists(arg):
                time.sleep(0.005)
            try:
                VersionedGraph(graph).invoke({"log": []}, config, expected_checkpoint_id=seen)
                _say("won")
            except StaleThreadError:
                _say("stale")
        elif role == "hold":
            with thread_lock(saver, thread, lease=float(arg)):
                _say("locked")
                time.sleep(3600)


async def run_async(role: str, url: str, thread: str, arg: str) -> None:
    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    async with async_saver_from_url(url) as saver:
        if role in ("hammer", "unlocked"):
            graph = builder(0.002).compile(checkpointer=saver)
            runner = LockedGraph(graph) if role == "hammer" else graph
            for _ in range(int(arg)):
                await runner.ainvoke({"log": []}, config)
                await asyncio.sleep(random.uniform(0, 0.004))
            _say("done")
        elif role == "versioned":
            graph = builder(0.3).compile(checkpointer=saver)
            state = await graph.aget_state(config)
            seen = state.config["configurable"].get("checkpoint_id")
            _say("ready")
            while not os.path.exists(arg):
                await asyncio.sleep(0.005)
            try:
                await VersionedGraph(graph).ainvoke({"log": []}, config,
                                                    expected_checkpoint_id=seen)
                _say("won")
            except StaleThreadError:
                _say("stale")
        elif role == "hold":
            async with athread_lock(saver, thread, lease=float(arg)):
                _say("locked")
                await asyncio.sleep(3600)


if __name__ == "__main__":
    role, mode, url, thread, arg = sys.argv[1:6]
    if mode == "sync":
        run_sync(role, url, thread, arg)
    else:
        asyncio.run(run_async(role, url, thread, arg))
