"""Storage operations written once, run by a sync or an async driver.

Owns: the sans-I/O protocol between plans and drivers; depends on nothing.

A *plan* is a generator. It yields a request and receives its reply: for SQL
stores a `Query`, answered with the rows it returned (a list of tuples, empty
for statements); Redis plans yield their own requests (scripts, pipelines).
Or it yields `Emit` to hand a
batch of results (one page) to the caller of an iterating method (``list``)
and receives ``None``. Its return value is the operation's result. Each backend supplies
one small function that executes a request; `run` / `arun` and `iterate` /
`aiterate` below drive any plan with it, so the logic of every operation
exists once for both modes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

R = TypeVar("R")
Rows = list[Sequence[Any]]


@dataclass(frozen=True)
class Query:
    """One statement to execute; ``params`` is a sequence or a mapping."""

    sql: str
    params: Any = ()


@dataclass(frozen=True)
class Emit:
    """Items for the caller of an iterating plan, in order."""

    items: Sequence[Any]


Step = Any  # a store's request, or Emit
Plan = Generator[Step, Any, R]


def run(plan: Plan[R], execute: Callable[[Any], Any]) -> R:
    """Drive ``plan`` to completion with a blocking ``execute``.

    A request that fails is thrown into the plan, which may clean up (a
    ``try`` around its ``yield``) before the error goes on to the caller.
    """
    try:
        step = next(plan)
        while True:
            if isinstance(step, Emit):
                raise TypeError("this plan emits items: drive it with iterate()")
            try:
                reply = execute(step)
            except Exception as exc:
                step = plan.throw(exc)
                continue
            step = plan.send(reply)
    except StopIteration as stop:
        return stop.value


async def arun(plan: Plan[R], execute: Callable[[Any], Awaitable[Any]]) -> R:
    """Drive ``plan`` to completion with an awaitable ``execute``; see `run`."""
    try:
        step = next(plan)
        while True:
            if isinstance(step, Emit):
                raise TypeError("this plan emits items: drive it with aiterate()")
            try:
                reply = await execute(step)
            except Exception as exc:
                step = plan.throw(exc)
                continue
            step = plan.send(reply)
    except StopIteration as stop:
        return stop.value


def iterate(plan: Plan[None], execute: Callable[[Any], Any]) -> Iterator[Any]:
    """Drive an emitting plan, yielding what it emits."""
    try:
        step = next(plan)
        while True:
            if isinstance(step, Emit):
                yield from step.items
                step = plan.send(None)
            else:
                step = plan.send(execute(step))
    except StopIteration:
        return


async def aiterate(
    plan: Plan[None], execute: Callable[[Any], Awaitable[Any]]
) -> AsyncIterator[Any]:
    """Drive an emitting plan asynchronously, yielding what it emits."""
    try:
        step = next(plan)
        while True:
            if isinstance(step, Emit):
                for item in step.items:
                    yield item
                step = plan.send(None)
            else:
                step = plan.send(await execute(step))
    except StopIteration:
        return


def single(query: Query) -> Plan[Rows]:
    """A plan of one query, returning its rows (drivers run each page of a list this way)."""
    rows: Rows = yield query
    return rows


PageFetch = Callable[[int], "Plan[tuple[list[Any], bool]]"]


def paged(fetch: PageFetch, limit: int | None, page_size: int) -> Plan[None]:
    """Emit pages until ``limit`` items or the end: the loop of every listing.

    Args:
        fetch: Builds the plan of the next page of at most ``size`` items; it
            returns the items and whether more may follow (a page whose items
            were all filtered out can still be followed by more).
        limit: The most items to emit; ``None`` for all.
        page_size: The most items fetched per page.
    """
    remaining = limit
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        items, more = yield from fetch(size)
        items = items[:size] if remaining is None else items[:remaining]
        yield Emit(items)
        if remaining is not None:
            remaining -= len(items)
        if not more:
            return
