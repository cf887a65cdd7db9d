"""Which mode serves which call: sync savers refuse async calls, async savers
serve sync calls from other threads on their own event loop.

Owns: the sync/async mismatch of every saver. The methods it guards or bridges are
those `aio.AsyncSaverMethods` defines, found there: no list to keep in step.

A sync saver (``SqliteSaver``) serves ``graph.invoke`` / ``stream``; its
``a``-prefixed methods raise `ConfigurationError` naming the class to use
instead, rather than the bare ``NotImplementedError`` of ``BaseCheckpointSaver``.

An async saver (``AsyncSqliteSaver``) serves ``ainvoke`` / ``astream``. LangGraph
sometimes calls it synchronously from a worker thread: a sync node of an async
graph that runs a subgraph with ``invoke``, or
``await asyncio.to_thread(graph.get_state, config)``. As the official async
savers do, such a call is run on the saver's event loop
(``asyncio.run_coroutine_threadsafe(...).result()``). The one call that cannot
work, a sync call on the loop's own thread (it would wait for itself for ever),
raises `ConfigurationError`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, NoReturn, TypeVar

from langgraph_persist_kit._core.aio import AsyncSaverMethods
from langgraph_persist_kit.errors import ConfigurationError

T = TypeVar("T")



def _raiser(name: str, wrong: str, other: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        raise ConfigurationError(
            f"{type(self).__name__} is {wrong}: {name}() is not available. "
            f"Use {other.format(cls=type(self).__name__)} instead."
        )

    method.__name__ = name
    method.__doc__ = f"Not available on this {wrong} saver; raises `ConfigurationError`."
    return method


class SyncOnly:
    """Mixin for sync savers: every ``a``-prefixed method raises `ConfigurationError`."""

    athread_lock_handle = _raiser("athread_lock_handle", "synchronous",
                                  "Async{cls} with graph.ainvoke()/astream()")


class AsyncOnly:
    """Mixin for async savers: the sync methods run the async ones on the saver's loop.

    The loop is the one running when the saver is made, or else the one its
    ``setup()`` runs on (``from_conn_string`` and the first call run it).
    """

    loop: asyncio.AbstractEventLoop | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    def _setup_done(self) -> None:
        """Mark the saver set up, and the running loop as its own (end of ``setup()``)."""
        self.loop = asyncio.get_running_loop()
        self.is_setup = True

    def _loop_for(self, name: str) -> asyncio.AbstractEventLoop:
        """The loop a sync ``name()`` call runs on, or `ConfigurationError`."""
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            raise ConfigurationError(
                f"{type(self).__name__}.{name}() runs on the event loop the saver is used "
                "from, and none is running: use the a-prefixed method instead, or the sync "
                "saver class with graph.invoke()"
            )
        _refuse_on_loop_thread(loop, f"{type(self).__name__}.{name}()")
        return loop

    # A thread lock's handle belongs to one mode: `thread_lock` on an async saver is refused.
    thread_lock_handle = _raiser(
        "thread_lock_handle", "asynchronous",
        "the a-prefixed method, or the sync saver class, with graph.invoke()")

    @staticmethod
    def _call(coroutine: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _refuse_on_loop_thread(loop: asyncio.AbstractEventLoop, what: str) -> None:
    if _on_loop_thread(loop):
        raise ConfigurationError(
            f"{what} is a sync call on the async saver's own event loop thread, where it "
            "would block that loop: use the a-prefixed method (or graph.ainvoke / "
            "aget_state) instead, or call it from another thread."
        )


def _bridge(name: str) -> Any:
    def method(self: AsyncOnly, *args: Any, **kwargs: Any) -> Any:
        loop = self._loop_for(name)
        return self._call(getattr(self, "a" + name)(*args, **kwargs), loop)

    method.__name__ = name
    method.__doc__ = (f"Sync form of ``a{name}`` for other threads: runs it on the "
                      "saver's event loop. Raises `ConfigurationError` on that loop's thread.")
    return method


def _drain(aiterator: AsyncIterator[T], loop: asyncio.AbstractEventLoop,
           what: str) -> Iterator[T]:
    """Each item of ``aiterator``, fetched on ``loop`` from the calling thread.

    Every step checks the thread again: an iterator made in a worker thread can
    be advanced, or dropped, on the loop's own thread, where waiting would hang.
    """
    try:
        while True:
            _refuse_on_loop_thread(loop, what)
            try:
                yield AsyncOnly._call(aiterator.__anext__(), loop)  # type: ignore[arg-type]
            except StopAsyncIteration:
                return
    finally:
        close = getattr(aiterator, "aclose", None)
        if close is None or loop.is_closed():
            pass
        elif _on_loop_thread(loop):  # dropped on the loop's thread: close it there, later
            loop.create_task(close())
        elif loop.is_running():
            AsyncOnly._call(close(), loop)


def _bridge_iterator(name: str) -> Any:
    def method(self: AsyncOnly, *args: Any, **kwargs: Any) -> Iterator[Any]:
        loop = self._loop_for(name)  # checked now, not at the first next()
        return _drain(getattr(self, "a" + name)(*args, **kwargs), loop,
                      f"{type(self).__name__}.{name}()")

    method.__name__ = name
    method.__doc__ = (f"Sync form of ``a{name}`` for other threads: each item is fetched "
                      "on the saver's event loop. Raises `ConfigurationError` on that "
                      "loop's thread.")
    return method


def _async_methods() -> Iterator[tuple[str, bool]]:
    """``(sync name, returns an iterator)`` of each method `AsyncSaverMethods` defines."""
    for name, method in vars(AsyncSaverMethods).items():
        if name.startswith("a") and inspect.isfunction(method):
            yield name[1:], not inspect.iscoroutinefunction(method)


for _name, _iterates in _async_methods():
    setattr(SyncOnly, "a" + _name,
            _raiser("a" + _name, "synchronous", "Async{cls} with graph.ainvoke()/astream()"))
    setattr(AsyncOnly, _name, _bridge_iterator(_name) if _iterates else _bridge(_name))
