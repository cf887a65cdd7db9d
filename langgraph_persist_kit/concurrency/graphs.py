"""`LockedGraph` and `VersionedGraph`: one writer per thread around a compiled graph.

Owns: wrapping a compiled graph's ``invoke`` / ``ainvoke`` / ``stream`` / ``astream``.

Both wrappers pass every other attribute through to the graph, and they
compose: ``LockedGraph(VersionedGraph(graph))`` waits for the lock, then
checks the version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.runnables import RunnableConfig

from langgraph_persist_kit._core.saver import PersistSaverBase
from langgraph_persist_kit._core.versioning import EXPECTED_KEY
from langgraph_persist_kit.concurrency.locks import DEFAULT_LEASE, athread_lock, thread_lock
from langgraph_persist_kit.errors import ConfigurationError

__all__ = ["LockedGraph", "VersionedGraph"]


def _thread_id(config: RunnableConfig | None) -> Any:
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    if thread_id is None or thread_id == "":
        raise ConfigurationError(
            'a run needs a thread: pass config={"configurable": {"thread_id": ...}}'
        )
    return thread_id


class _Wrapper:
    """Passes every attribute it does not define through to the wrapped graph."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph

    def __getattr__(self, name: str) -> Any:
        return getattr(self.graph, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.graph!r})"

    def _saver(self) -> Any:
        saver = getattr(self.graph, "checkpointer", None)
        if saver is None or isinstance(saver, bool):
            raise ConfigurationError(
                f"{type(self).__name__} needs a graph compiled with a checkpointer: "
                "builder.compile(checkpointer=saver)"
            )
        return saver


class LockedGraph(_Wrapper):
    """A compiled graph whose runs hold their thread's lock from start to end.

    ``invoke`` / ``ainvoke`` / ``stream`` / ``astream`` take the lock of
    ``config["configurable"]["thread_id"]`` before the run reads anything and
    release it when the run ends, raises or (streams) is closed, so two runs
    on one thread never interleave, in any process that uses `LockedGraph`.
    See `thread_lock` for the lock each store holds and why it cannot leak.

    Args:
        graph: A compiled graph with one of this package's savers (or an
            `InMemorySaver`) as checkpointer; the sync methods need a sync
            saver, the async ones an async saver.
        wait: Seconds a run waits for a busy thread: ``None`` as long as it
            takes, ``0`` not at all, ``5.0`` up to 5 seconds.
        lease: Redis only: seconds a lock outlives a run whose process died.

    Raises:
        ThreadBusyError: (from the run methods) The thread stayed busy for ``wait`` seconds.
        ConfigurationError: (from the run methods) No ``thread_id``, or a graph
            without a checkpointer that has thread locks.

    Example:
        ```python
        graph = LockedGraph(builder.compile(checkpointer=saver), wait=10)
        graph.invoke({"messages": [msg]}, {"configurable": {"thread_id": user_id}})
        ```
    """

    def __init__(self, graph: Any, *, wait: float | None = None,
                 lease: float = DEFAULT_LEASE) -> None:
        super().__init__(graph)
        self.wait = wait
        self.lease = lease

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """``graph.invoke`` holding the thread's lock."""
        with thread_lock(self._saver(), _thread_id(config), wait=self.wait, lease=self.lease):
            return self.graph.invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> Any:
        """``graph.ainvoke`` holding the thread's lock."""
        async with athread_lock(self._saver(), _thread_id(config), wait=self.wait,
                                lease=self.lease):
            return await self.graph.ainvoke(input, config, **kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[Any]:
        """``graph.stream`` holding the thread's lock from the first chunk asked for until
        the stream ends or is closed (``close()``, or leaving a ``for`` loop early and
        dropping the iterator)."""
        with thread_lock(self._saver(), _thread_id(config), wait=self.wait, lease=self.lease):
            yield from self.graph.stream(input, config, **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[Any]:
        """``graph.astream`` holding the thread's lock; see `stream` (``aclose()``)."""
        async with athread_lock(self._saver(), _thread_id(config), wait=self.wait,
                                lease=self.lease):
            async for chunk in self.graph.astream(input, config, **kwargs):
                yield chunk


class VersionedGraph(_Wrapper):
    """A compiled graph whose runs continue a thread only from the version the caller saw.

    Each run method takes ``expected_checkpoint_id``: the id of the thread's
    latest root checkpoint when the caller read its state (for example
    ``graph.get_state(config).config["configurable"]["checkpoint_id"]``), or
    ``None`` for a thread that must not exist yet. The run raises
    `StaleThreadError` before writing anything if the thread has moved on; and
    if another writer moves it during the run, the run's next checkpoint write
    raises `StaleThreadError` and stores nothing (the store compares and sets
    atomically). Runs default to ``durability="sync"`` (each checkpoint written
    before the next super-step starts), so an overtaken run stops at that
    checkpoint; with LangGraph's ``"async"`` the error comes when the run ends,
    and nodes after the refused checkpoint may have run meanwhile. The caller
    then reads the state again and decides. Runs
    without the wrapper (time travel, replay, forks) are not constrained.

    Args:
        graph: A compiled graph whose checkpointer is one of this package's savers.

    Raises:
        StaleThreadError: (from the run methods) Another writer got there first.
        ConfigurationError: (from the run methods) No ``thread_id``, a config
            ``checkpoint_id`` other than ``expected_checkpoint_id``, or a
            checkpointer without compare-and-set.

    Example:
        ```python
        graph = VersionedGraph(builder.compile(checkpointer=saver))
        graph.invoke(inputs, config, expected_checkpoint_id=seen)
        ```
    """

    def _versioned(self, config: RunnableConfig | None, expected: str | None) -> RunnableConfig:
        """``config`` marked as a versioned run (see `_core.versioning`)."""
        saver = self._saver()
        if not isinstance(saver, PersistSaverBase):
            raise ConfigurationError(
                "VersionedGraph needs one of this package's savers (compare-and-set happens "
                f"in the store), not {type(saver).__name__}"
            )
        _thread_id(config)
        if expected is not None and (not isinstance(expected, str) or not expected):
            raise ConfigurationError(
                f"expected_checkpoint_id must be a checkpoint id or None, not {expected!r}"
            )
        configurable = dict((config or {}).get("configurable") or {})
        given = configurable.pop("checkpoint_id", None)
        if given and given != expected:
            raise ConfigurationError(
                f"config names checkpoint {given} but expected_checkpoint_id is {expected}: "
                "a versioned run continues the latest checkpoint; to branch from a past "
                "one, use replay()"
            )
        configurable[EXPECTED_KEY] = expected or ""
        return {**(config or {}), "configurable": configurable}

    @staticmethod
    def _durability(kwargs: dict[str, Any]) -> dict[str, Any]:
        """``durability="sync"`` unless the caller chose: each checkpoint is written
        before the next super-step starts, so an overtaken run stops there."""
        kwargs.setdefault("durability", "sync")
        return kwargs

    def invoke(self, input: Any, config: RunnableConfig | None = None, *,
               expected_checkpoint_id: str | None, **kwargs: Any) -> Any:
        """``graph.invoke`` if the thread is still at ``expected_checkpoint_id``."""
        return self.graph.invoke(input, self._versioned(config, expected_checkpoint_id),
                                 **self._durability(kwargs))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, *,
                      expected_checkpoint_id: str | None, **kwargs: Any) -> Any:
        """``graph.ainvoke`` if the thread is still at ``expected_checkpoint_id``."""
        return await self.graph.ainvoke(
            input, self._versioned(config, expected_checkpoint_id), **self._durability(kwargs))

    def stream(self, input: Any, config: RunnableConfig | None = None, *,
               expected_checkpoint_id: str | None, **kwargs: Any) -> Iterator[Any]:
        """``graph.stream`` if the thread is still at ``expected_checkpoint_id``."""
        return self.graph.stream(input, self._versioned(config, expected_checkpoint_id),
                                 **self._durability(kwargs))

    def astream(self, input: Any, config: RunnableConfig | None = None, *,
                expected_checkpoint_id: str | None, **kwargs: Any) -> AsyncIterator[Any]:
        """``graph.astream`` if the thread is still at ``expected_checkpoint_id``."""
        return self.graph.astream(input, self._versioned(config, expected_checkpoint_id),
                                  **self._durability(kwargs))
