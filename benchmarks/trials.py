"""How a trial is built and timed: the setup outside the clock, the timed calls inside it.

Owns `Work` (untimed setup `Call`s, then timed ops, of the package's `Call`s from
``langgraph_persist_kit._core.calls``, written once for sync and async savers),
`time_each` / `atime_each` (the clock), the trial builders `work_trial` / `side_case`
(a saver's work) and `repeat_trial` (bare round trips), and `Space` (a trial's temporary
files). A trial is a context manager whose value, called once, returns its samples;
`benchmarks.runner` runs it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from benchmarks.cases import SIDES, Case
from langgraph_persist_kit._core.calls import Call, aexecute, execute


@dataclass
class Work:
    """Untimed ``setup`` calls, then timed ``ops``; ``check(result of an op's last call)``.

    A `Call` names both forms of a method (``Call(saver.put, saver.aput, args)``): a sync
    trial makes ``execute(call)``, an async one ``await aexecute(call)``. A listing's calls
    give ``each`` (`same` for the items themselves), so it is drained inside the op.
    """

    ops: Sequence[Sequence[Call]]
    setup: Sequence[Call] = ()
    check: Callable[[Any], None] | None = None


def time_each(items: Iterable[Any], fn: Callable[[Any], Any],
              check: Callable[[Any], None] | None = None) -> list[float]:
    """Seconds each ``fn(item)`` took; ``check(result)`` runs after the clock stops."""
    clock, out = time.perf_counter, []
    for item in items:
        t0 = clock()
        result = fn(item)
        out.append(clock() - t0)
        if check is not None:
            check(result)
    return out


async def atime_each(items: Iterable[Any], fn: Callable[[Any], Any],
                     check: Callable[[Any], None] | None = None) -> list[float]:
    """Seconds each ``await fn(item)`` took (see `time_each`)."""
    clock, out = time.perf_counter, []
    for item in items:
        t0 = clock()
        result = await fn(item)
        out.append(clock() - t0)
        if check is not None:
            check(result)
    return out


def _run_op(op: Sequence[Call]) -> Any:
    result = None
    for c in op:
        result = execute(c)
    return result


async def _arun_op(op: Sequence[Call]) -> Any:
    result = None
    for c in op:
        result = await aexecute(c)
    return result


def _time_picked(ops: Sequence[Sequence[Call]], at: int) -> list[float]:
    """Seconds call ``at`` of each op took; the op's other calls run in order, unclocked."""
    clock, out = time.perf_counter, []
    for op in ops:
        _run_op(op[:at])
        t0 = clock()
        execute(op[at])
        out.append(clock() - t0)
        _run_op(op[at + 1:])
    return out


async def _atime_picked(ops: Sequence[Sequence[Call]], at: int) -> list[float]:
    """`_time_picked`, awaiting each call."""
    clock, out = time.perf_counter, []
    for op in ops:
        await _arun_op(op[:at])
        t0 = clock()
        await aexecute(op[at])
        out.append(clock() - t0)
        await _arun_op(op[at + 1:])
    return out


def work_trial(opened: Any, work_of: Callable[[Any], Work], at: int | None = None) -> Any:
    """A trial: enter ``opened`` (a saver's sync or async context manager), build the
    `Work` from the saver, run its setup; the measured callable times its ops (with ``at``,
    only call ``at`` of each op: its other calls run outside the clock, in order)."""
    if hasattr(opened, "__aenter__"):
        @asynccontextmanager
        async def atrial() -> Any:
            async with opened as saver:
                work = work_of(saver)
                for c in work.setup:
                    await aexecute(c)
                if at is None:
                    yield lambda: atime_each(work.ops, _arun_op, work.check)
                else:
                    yield lambda: _atime_picked(work.ops, at)
        return atrial()

    @contextmanager
    def strial() -> Iterator[Any]:
        with opened as saver:
            work = work_of(saver)
            for c in work.setup:
                execute(c)
            if at is None:
                yield lambda: time_each(work.ops, _run_op, work.check)
            else:
                yield lambda: _time_picked(work.ops, at)
    return strial()


def side_case(name: str, opened: Callable[[str], Any], work_of: Callable[[Any], Work],
              **kw: Any) -> Case:
    """A `Case` running ``work_of(saver)`` on each side's saver, ``opened(side)`` (a sync or
    async context manager yielding it) entered afresh every trial."""
    def make(side: str) -> Any:
        return work_trial(opened(side), work_of)
    return Case(name, {side: partial(make, side) for side in SIDES}, **kw)


def repeat_trial(opened: Any, op: Callable[[Any], Any], n: int, warm: int = 10) -> Any:
    """A trial: enter ``opened`` (a client's sync or async context manager), call ``op(client)``
    ``warm`` times untimed, then time ``n`` calls (``op`` returns an awaitable for an async
    client). For round trips outside any saver, e.g. a PING or a ``SELECT 1``."""
    if hasattr(opened, "__aenter__"):
        @asynccontextmanager
        async def atrial() -> Any:
            async with opened as client:
                for _ in range(warm):
                    await op(client)
                yield lambda: atime_each(range(n), lambda _: op(client))
        return atrial()

    @contextmanager
    def strial() -> Iterator[Any]:
        with opened as client:
            for _ in range(warm):
                op(client)
            yield lambda: time_each(range(n), lambda _: op(client))
    return strial()


class Space:
    """A temporary root directory; `scratch` gives a trial its own, removed afterwards."""

    def __init__(self, root: str | None = None, prefix: str = "persist-kit-bench-"):
        self.root = tempfile.mkdtemp(prefix=prefix, dir=root)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    @contextmanager
    def scratch(self, name: str = "bench.db") -> Iterator[str]:
        path = tempfile.mkdtemp(dir=self.root)
        try:
            yield os.path.join(path, name)
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
