"""One face for every saver under test, whatever its backend and mode.

Tests are written once against `Harness`; the ``harness`` fixture
(tests/integration/conftest.py) parametrises them over backend x {sync, async}
(`combinations`) and opens each with `open_harness`. In async mode each call runs to
completion on the harness's own event loop, so test bodies stay plain functions.

Valkey joins the backends only in `VALKEY_MODULES`: the contract, conformance and
graph tests are the ones that show the Redis savers work on Valkey, and running
every harness module on it again would add minutes for little (the rest exercise
the same Lua scripts and commands on Redis).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from tests.helpers.backends import BACKENDS, MODES, VALKEY, Space, async_saver, sync_saver


@dataclass
class Harness:
    backend: str
    mode: str  # "sync" or "async"
    saver: BaseCheckpointSaver
    loop: asyncio.AbstractEventLoop | None

    @property
    def id(self) -> str:
        return f"{self.backend}-{self.mode}"

    def wait(self, awaitable: Any) -> Any:
        """Run a coroutine to completion on this harness's loop."""
        assert self.loop is not None, "wait() is for async harnesses"
        return self.loop.run_until_complete(awaitable)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call saver method ``name`` (sync spelling) in this harness's mode.

        Iterators (``list``, ``list_threads``) come back as lists.
        """
        if self.mode == "sync":
            result = getattr(self.saver, name)(*args, **kwargs)
            return list(result) if inspect.isgenerator(result) or _is_iter(result) else result
        result = getattr(self.saver, "a" + name)(*args, **kwargs)
        if inspect.isasyncgen(result) or hasattr(result, "__aiter__"):
            return self.wait(_collect(result))
        return self.wait(result)

    # graph helpers: the same calls a user makes, in this harness's mode

    def invoke(self, graph: Any, input: Any, config: dict, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return graph.invoke(input, config, **kwargs)
        return self.wait(graph.ainvoke(input, config, **kwargs))

    def get_state(self, graph: Any, config: dict, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return graph.get_state(config, **kwargs)
        return self.wait(graph.aget_state(config, **kwargs))

    def get_state_history(self, graph: Any, config: dict, **kwargs: Any) -> list:
        if self.mode == "sync":
            return list(graph.get_state_history(config, **kwargs))
        return self.wait(_collect(graph.aget_state_history(config, **kwargs)))

    def update_state(self, graph: Any, config: dict, values: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return graph.update_state(config, values, **kwargs)
        return self.wait(graph.aupdate_state(config, values, **kwargs))


def _is_iter(value: Any) -> bool:
    return hasattr(value, "__next__") and hasattr(value, "__iter__")


async def _collect(aiter: Any) -> list:
    return [item async for item in aiter]


SaverFactory = Callable[[str], "AbstractContextManager[Any] | AbstractAsyncContextManager[Any]"]


COMBINATIONS = [(backend, mode) for backend in BACKENDS for mode in MODES]
VALKEY_MODULES = {"test_contract", "test_conformance", "test_graphs"}


def combinations(module: str) -> list[tuple[str, str]]:
    """The ``(backend, mode)`` pairs a test module runs on (Valkey for `VALKEY_MODULES`)."""
    valkey = module.rsplit(".", 1)[-1] in VALKEY_MODULES
    return COMBINATIONS + ([(VALKEY, mode) for mode in MODES] if valkey else [])


def combination_ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{backend}-{mode}" for backend, mode in pairs]


def open_harness(backend: str, mode: str, space: Space, **options: object) -> Iterator[Harness]:
    yield from harness_of(backend, mode, lambda: sync_saver(backend, space, **options),
                          lambda: async_saver(backend, space, **options))


def harness_of(backend: str, mode: str,
               sync_open: Callable[[], AbstractContextManager[BaseCheckpointSaver]],
               async_open: Callable[[], AbstractAsyncContextManager[BaseCheckpointSaver]],
               ) -> Iterator[Harness]:
    """A `Harness` over the saver ``sync_open()`` (sync mode) or ``async_open()`` (async
    mode, entered on a loop of the harness's own) opens, for the time of the ``yield``."""
    if mode == "sync":
        with sync_open() as saver:
            yield Harness(backend, mode, saver, None)
        return
    loop = asyncio.new_event_loop()
    try:
        manager = async_open()
        saver = loop.run_until_complete(manager.__aenter__())
        try:
            yield Harness(backend, mode, saver, loop)
        finally:
            loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()
