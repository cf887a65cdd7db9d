"""The live graph that keeps writing while a retention call runs (thread or process)."""

from __future__ import annotations

import multiprocessing
import operator
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from benchmarks import workloads as wl
from langgraph_persist_kit.urls import saver_from_url

# --- the concurrent writer ------------------------------------------------------------------


class LiveState(TypedDict):
    items: Annotated[list, operator.add]


def live_graph(saver: Any) -> Any:
    """One node appending to a list channel that grows by one item per invoke."""
    builder: Any = StateGraph(LiveState)
    builder.add_node("step", lambda state: {"items": [len(state["items"])]})
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=saver)


Spec = tuple[str, str, str]  # backend, file or URL, schema or key prefix: a saver, picklable


def open_saver(spec: Spec, pool: int | None = None) -> AbstractContextManager[Any]:
    """The saver of a `Spec`, from ``saver_from_url`` (``from_conn_string`` with its defaults;
    ``pool``: PostgreSQL's max size)."""
    backend, where, namespace = spec
    if backend == "sqlite":
        return saver_from_url("sqlite:///" + where)
    if backend == "redis":
        return saver_from_url(where, key_prefix=namespace)
    return saver_from_url(where, schema=namespace, **({} if pool is None else
                                                     {"pool_max_size": pool}))


def live_thread(spec: Spec, stack: ExitStack) -> Callable[[], Any]:
    """Open the writer's saver (closed with ``stack``) and its graph on a new live thread,
    warm them up; one step of it."""
    graph = live_graph(stack.enter_context(open_saver(spec, pool=2)))
    config = wl.latest(f"live-{uuid.uuid4().hex[:8]}")

    def step() -> Any:
        return graph.invoke({"items": []}, config)
    for _ in range(5):  # untimed: connections, prepared statements, scripts
        step()
    return step


def paced_steps(step: Callable[[], Any], interval: float, steps: int | None,
                stopped: Callable[[], bool], wait: Callable[[float], Any]
                ) -> list[tuple[float, float]]:
    """``step()`` every ``interval`` seconds (or as soon as the previous one ends), ``steps``
    times or until ``stopped()``; ``wait(seconds)`` sleeps, returning early on a stop.
    ``(start, seconds)`` per step (``perf_counter``: one clock for every process)."""
    clock, samples = time.perf_counter, list[tuple[float, float]]()
    while not stopped() and (steps is None or len(samples) < steps):
        t0 = clock()
        step()
        samples.append((t0, clock() - t0))
        pause = t0 + interval - clock()
        if pause > 0:
            wait(pause)
    return samples


class Writer:
    """A graph on a live thread, stepped from its own Python thread through its own saver;
    one step = one ``invoke`` (the loop's ``get_tuple``, the input checkpoint, the node's
    writes and its checkpoint), started every ``interval`` seconds."""

    def __init__(self, spec: Spec, interval: float):
        self.spec, self.interval = spec, interval
        self._stack = ExitStack()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: list[Any] = []

    def __enter__(self) -> Writer:
        self.step = live_thread(self.spec, self._stack)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.stop()
        finally:
            self._stack.close()

    def _run(self, steps: int | None) -> None:
        try:
            self._result = [paced_steps(self.step, self.interval, steps, self._stop.is_set,
                                        self._stop.wait)]
        except BaseException as exc:  # raised again by stop()
            self._result = [exc]

    def start(self, steps: int | None = None) -> None:
        """Step in the background (``steps`` times, or until `stop`)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(steps,), daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[float, float]]:
        """Stop stepping; ``(start, seconds)`` of each step since `start`."""
        if self._thread is None:
            return []
        self._stop.set()
        self._thread.join()
        self._thread = None
        result = self._result.pop()
        if isinstance(result, BaseException):
            raise RuntimeError("the concurrent writer failed") from result
        return result

    def alone(self, steps: int) -> list[float]:
        """``steps`` steps with nothing else running: seconds each."""
        self.start(steps)
        assert self._thread is not None
        self._thread.join()
        return [seconds for _start, seconds in self.stop()]


def _writer_process(spec: Spec, interval: float, conn: Any) -> None:
    """`ProcessWriter`'s child: runs ``("run", steps)`` commands until ``("exit", None)``;
    ``("stop", None)`` ends a run of ``steps=None``; replies ``("samples", [...])``."""
    try:
        with ExitStack() as stack:
            step = live_thread(spec, stack)
            conn.send(("ready", None))
            while True:
                command, steps = conn.recv()
                if command == "exit":
                    return
                if command == "run":
                    conn.send(("samples", paced_steps(step, interval, steps, conn.poll,
                                                      conn.poll)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))


class ProcessWriter(Writer):
    """`Writer` in a child process (``--writer-process``): no GIL shared with the maintenance
    call, as when cron runs the cleanup apart from the application."""

    def __enter__(self) -> ProcessWriter:
        self._running = False
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_writer_process,
                                        args=(self.spec, self.interval, child), daemon=True)
        self._process.start()
        self._stack.callback(self._end)
        self._reply()
        return self

    def _end(self) -> None:
        if self._process.is_alive():
            self._conn.send(("exit", None))
            self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
        self._conn.close()

    def _reply(self) -> Any:
        kind, payload = self._conn.recv()
        if kind == "error":
            raise RuntimeError(f"the concurrent writer process failed:\n{payload}")
        return payload

    def start(self, steps: int | None = None) -> None:
        self._conn.send(("run", steps))
        self._running = steps is None

    def stop(self) -> list[tuple[float, float]]:
        if not self._running:
            return []
        self._running = False
        self._conn.send(("stop", None))
        return self._reply()  # the child reads the stop itself

    def alone(self, steps: int) -> list[float]:
        self.start(steps)
        return [seconds for _start, seconds in self._reply()]
