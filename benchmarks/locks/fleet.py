"""Target 2: N worker processes, each running the counter graph on its own thread.

The workers are started once per benchmark run, from a ``forkserver`` that has imported
LangGraph and the three savers (8 ``spawn`` children would each spend ~1 s of CPU importing
them), and then serve every backend in turn. Per backend each opens its own saver with
``saver_from_url`` (its defaults), makes its thread exist, and then, per command, runs the
graph ``n`` times bare or in a `LockedGraph`, all workers starting together (a barrier).
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
import traceback
from contextlib import ExitStack, suppress
from multiprocessing.connection import Connection, wait
from typing import Any

from benchmarks.locks.config import THROUGHPUT_RATIO, Sizes
from benchmarks.locks.stores import Store

PRELOAD = ["benchmarks.locks.runs", "langgraph_persist_kit.sqlite",
           "langgraph_persist_kit.postgres", "langgraph_persist_kit.redis"]
BARRIER_TIMEOUT = 120.0


def _serve(index: int, conn: Any, barrier: Any) -> None:
    """A worker: ``("open", url, warm)``, ``("run", locked, n)`` -> ``(start, end)``
    (``perf_counter``, one clock for every process), ``("close",)``, ``("exit",)``."""
    from benchmarks.locks.runs import INPUT, CounterState, bump
    from benchmarks.workloads import compile_graph, latest
    from langgraph_persist_kit.concurrency import LockedGraph
    from langgraph_persist_kit.urls import saver_from_url

    stack, graphs, config = ExitStack(), {}, latest(f"process-{index}")
    while True:
        command, *args = conn.recv()
        try:
            if command == "exit":
                stack.close()
                return
            if command == "open":
                url, warm = args
                stack.close()
                graph = compile_graph(CounterState, {"bump": bump},
                                      stack.enter_context(saver_from_url(url)), False)
                graphs = {False: graph, True: LockedGraph(graph)}
                for locked in (False, True):
                    for _ in range(warm):
                        graphs[locked].invoke(INPUT, config)
                reply: Any = None
            elif command == "run":
                locked, n = args
                graph = graphs[locked]
                barrier.wait(BARRIER_TIMEOUT)
                start = time.perf_counter()
                for _ in range(n):
                    graph.invoke(INPUT, config)
                reply = (start, time.perf_counter())
            else:  # close
                stack.close()
                reply = None
            conn.send(("ok", reply))
        except BaseException:
            conn.send(("error", f"worker {index}: {traceback.format_exc()}"))


class Fleet:
    """``processes`` workers; `command` sends one command to all and gathers the replies."""

    def __init__(self, processes: int):
        self.size = processes

    def __enter__(self) -> Fleet:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)  # ignored if this process started one before
        self.barrier = context.Barrier(self.size)
        self.workers = []
        try:
            for index in range(self.size):
                mine, theirs = context.Pipe()
                process = context.Process(target=_serve, args=(index, theirs, self.barrier),
                                          name=f"locks-bench-{index}", daemon=True)
                process.start()
                theirs.close()
                self.workers.append((mine, process))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for conn, process in self.workers:
            if process.is_alive():
                with suppress(OSError):
                    conn.send(("exit",))
        for conn, process in self.workers:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
            conn.close()

    def command(self, *message: Any) -> list[Any]:
        """Every worker's reply, in order.

        Raises:
            RuntimeError: A worker failed (the barrier is broken so no other waits on it).
        """
        replies: dict[int, Any] = {}
        errors, pending = [], {}
        for index, (conn, _) in enumerate(self.workers):
            try:
                conn.send(message)
                pending[conn] = index
            except OSError:
                errors.append(f"worker {index} is gone")
        if errors:
            self.barrier.abort()  # the others would wait for it
        while pending:
            for ready in wait(list(pending)):
                assert isinstance(ready, Connection)
                index = pending.pop(ready)
                try:
                    kind, payload = ready.recv()
                except EOFError:
                    kind, payload = "error", f"worker {index} died"
                if kind == "error":
                    errors.append(payload)
                    self.barrier.abort()
                replies[index] = payload
        if errors:
            self.barrier.reset()
            raise RuntimeError("a throughput worker failed:\n" + errors[0])
        return [replies[i] for i in range(self.size)]


def throughput(fleet: Fleet, store: Store, sizes: Sizes, log: Any) -> dict[str, Any]:
    """``tp_rounds`` rounds of both configurations (bare first on even rounds); a sample is
    all runs of a round over the time from the first worker's start to the last one's end."""
    fleet.command("open", store.url, sizes.warm)
    samples: dict[bool, list[float]] = {False: [], True: []}
    try:
        for r in range(sizes.tp_rounds):
            for wrapped in (False, True) if r % 2 == 0 else (True, False):
                spans = fleet.command("run", wrapped, sizes.tp_runs)
                wall = max(end for _, end in spans) - min(start for start, _ in spans)
                samples[wrapped].append(fleet.size * sizes.tp_runs / wall)
            log(f"{store.backend}: throughput, round {r + 1}/{sizes.tp_rounds}")
    finally:
        fleet.command("close")
    bare, locked = statistics.median(samples[False]), statistics.median(samples[True])
    paired = [lk / b for b, lk in zip(samples[False], samples[True], strict=True)]
    ratio = locked / bare
    return {"processes": fleet.size, "runs_per_process": sizes.tp_runs,
            "rounds": sizes.tp_rounds, "bare_runs_per_s": bare, "locked_runs_per_s": locked,
            "bare_samples": samples[False], "locked_samples": samples[True],
            "ratio": ratio, "paired_ratio_median": statistics.median(paired),
            "target": f"ratio >= {THROUGHPUT_RATIO:g}", "target_met": ratio >= THROUGHPUT_RATIO}
