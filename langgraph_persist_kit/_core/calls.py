"""Plans of calls on a saver or a compiled graph, made in either mode.

Owns: `Call` and its two drivers; depends on: nothing. The session helpers and
export/import/copy are written once as plans (`_plan`) that yield `Call`s:
`execute` makes them on the sync methods (``get_tuple``, ``invoke``) and
`aexecute` awaits the ``a``-prefixed twins (``aget_tuple``, ``ainvoke``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Call:
    """Call ``target.<method>`` (``a<method>`` in async mode).

    With ``each``, the method returns an iterator and the reply is
    ``[each(item) for item in it]``, built as it is consumed.
    """

    target: Any
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    each: Callable[[Any], Any] | None = None


def same(item: Any) -> Any:
    """``each`` for a plain list of the iterator's items."""
    return item


def execute(call: Call) -> Any:
    result = getattr(call.target, call.method)(*call.args, **call.kwargs)
    return result if call.each is None else [call.each(item) for item in result]


async def aexecute(call: Call) -> Any:
    result = getattr(call.target, "a" + call.method)(*call.args, **call.kwargs)
    if call.each is None:
        return await result
    return [call.each(item) async for item in result]
