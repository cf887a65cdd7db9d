"""Storage operations written once, run by a sync or an async driver.

Owns: the sans-I/O protocol between plans and drivers, and the drivers.

A *plan* is a generator, in the manner of psycopg's ``PQGen``
(``psycopg/generators.py``). It yields a request of its store family and
receives the reply:

* SQL stores (`SqlPlan`): a `Query`, answered with the rows it returned (a list
  of tuples, empty for statements);
* Redis (`RedisPlan`, in ``redis/_protocol.py``): a script, a command or a batch
  of them, answered with Redis's reply;
* calls on a saver or a graph (`calls.CallPlan`): a `calls.Call`, answered with
  what the call returned.

A listing plan (``list``) also yields `Emit` to hand a page of results to the
caller, and receives ``None``. A plan's return value is the operation's result.

`run` / `arun` drive a plan to its result and `iterate` / `aiterate` drive a
listing; each backend gives them one function that executes a request. Every
driver has one error policy: a request that fails is thrown into the plan, which
may clean up (a ``try`` around its ``yield``) before the error goes on to the
caller. A driver's loop is a few lines around `Turn`, which holds the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

R = TypeVar("R")
T = TypeVar("T")
Rows = list[Sequence[Any]]


@dataclass(frozen=True)
class Query:
    """One SQL statement to execute; ``params`` is a sequence or a mapping."""

    sql: str
    params: Any = ()


@dataclass(frozen=True)
class Emit:
    """Items for the caller of a listing plan, in order."""

    items: Sequence[Any]


Plan = Generator[Any, Any, R]
"""A plan of any store family (the helpers all families share: `paged`, the ancestor walk)."""

SqlPlan = Generator[Query, Rows, R]
"""A plan of the SQL stores: yields `Query`, receives its rows."""

Listing = Generator[Any, Any, None]
"""A listing plan: yields its family's requests and `Emit`; returns nothing."""


class Turn(Generic[R]):
    """A plan being driven: the request it waits on (``step``), or its ``result``.

    Emitted pages are collected in ``emitted`` (answered with ``None``) for
    `iterate`; `run` refuses them.
    """

    __slots__ = ("emitted", "listing", "plan", "result", "step")

    def __init__(self, plan: Generator[Any, Any, R], *, listing: bool = False) -> None:
        self.plan = plan
        self.result: R | None = None
        self.emitted: list[Any] = []
        self.listing = listing
        self.answer(None)

    def answer(self, reply: Any, error: Exception | None = None) -> None:
        """Send ``reply`` to the plan, or throw the request's ``error`` into it (it may
        clean up, or re-raise); the plan now waits on its next request, or is done."""
        try:
            step = self.plan.send(reply) if error is None else self.plan.throw(error)
        except StopIteration as stop:
            self.step, self.result = None, stop.value
            return
        self.step = self._emitted(step) if step.__class__ is Emit else step

    def fail(self, error: Exception) -> None:
        """Throw the request's ``error`` into the plan; see `answer`."""
        self.answer(None, error)

    def request(self, execute: Callable[[Any], Any]) -> None:
        """Make the waiting request with ``execute``: its reply goes to the plan, its error
        into the plan (an error the plan raises itself goes out to the caller)."""
        try:
            reply = execute(self.step)
        except Exception as exc:
            return self.fail(exc)
        self.answer(reply)

    async def arequest(self, execute: Callable[[Any], Awaitable[Any]]) -> None:
        """`request`, with an awaitable ``execute``."""
        try:
            reply = await execute(self.step)
        except Exception as exc:
            return self.fail(exc)
        self.answer(reply)

    def take(self) -> list[Any]:
        """The items emitted since the last take."""
        items, self.emitted = self.emitted, []
        return items

    def _emitted(self, step: Emit) -> Any:
        """Collect emitted pages up to the plan's next request (``None``: it is done)."""
        if not self.listing:
            raise TypeError("this plan emits items: drive it with iterate()")
        try:
            while step.__class__ is Emit:
                self.emitted.extend(step.items)
                step = self.plan.send(None)
        except StopIteration as stop:
            self.result = stop.value
            return None
        return step


def run(plan: Generator[Any, Any, R], execute: Callable[[Any], Any]) -> R:
    """Drive ``plan`` to its result with a blocking ``execute``."""
    return finish(Turn(plan), execute)


def finish(turn: Turn[R], execute: Callable[[Any], Any]) -> R:
    """Drive a started plan (`Turn`) to its result with a blocking ``execute``: a driver
    may run a plan's first step (its encoding) in one place and its requests in another."""
    while turn.step is not None:
        turn.request(execute)
    return turn.result  # type: ignore[return-value]  # set when step is None


async def arun(plan: Generator[Any, Any, R], execute: Callable[[Any], Awaitable[Any]]) -> R:
    """Drive ``plan`` to its result with an awaitable ``execute``; see `run`."""
    turn = Turn(plan)
    while turn.step is not None:
        await turn.arequest(execute)
    return turn.result  # type: ignore[return-value]


def iterate(plan: Listing, execute: Callable[[Any], Any]) -> Iterator[Any]:
    """Drive a listing plan, yielding what it emits as it emits it."""
    turn = Turn(plan, listing=True)
    while True:
        yield from turn.take()
        if turn.step is None:
            return
        turn.request(execute)


async def aiterate(plan: Listing, execute: Callable[[Any], Awaitable[Any]]) -> AsyncIterator[Any]:
    """Drive a listing plan asynchronously; see `iterate`."""
    turn = Turn(plan, listing=True)
    while True:
        for item in turn.take():
            yield item
        if turn.step is None:
            return
        await turn.arequest(execute)


def single(query: Query) -> SqlPlan[Rows]:
    """A plan of one query, returning its rows (drivers run each page of a list this way)."""
    rows = yield query
    return rows


PageFetch = Callable[[int], "Plan[tuple[list[Any], bool]]"]


def paged(fetch: PageFetch, limit: int | None, page_size: int) -> Listing:
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
