"""Plans of calls on a saver or a compiled graph, made in either mode.

Owns: `Call` and its two executors. The session helpers, maintenance and
export/import/copy are written once as plans (`plan`) that yield `Call`s naming both
forms of a method (``saver.get_tuple, saver.aget_tuple``): `execute` makes the sync
call, `aexecute` awaits the async one.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Call:
    """Call ``sync(*args, **kwargs)``, or await ``aio(*args, **kwargs)`` in async mode.

    With ``each``, the method returns an iterator (an async one in async mode) and
    the reply is ``[each(item) for item in it]``, built as it is consumed.
    """

    sync: Callable[..., Any]
    aio: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    each: Callable[[Any], Any] | None = None


CallPlan = Generator[Call, Any, R]
"""A plan of calls: yields `Call`, receives what the call returned."""


def same(item: Any) -> Any:
    """``each`` for a plain list of the iterator's items."""
    return item


def execute(call: Call) -> Any:
    """Make ``call`` in sync mode."""
    result = call.sync(*call.args, **call.kwargs)
    return result if call.each is None else [call.each(item) for item in result]


async def aexecute(call: Call) -> Any:
    """Make ``call`` in async mode."""
    result = call.aio(*call.args, **call.kwargs)
    if call.each is None:
        return await result
    return [call.each(item) async for item in result]
