"""Unit tier (no server): the sync/async bridge of `_modes` on a stand-in async saver."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from langgraph_persist_kit._core.modes import AsyncOnly, SyncOnly
from langgraph_persist_kit.errors import ConfigurationError


class StandIn(AsyncOnly):
    """Records the thread each async method ran on."""

    async def aget_tuple(self, config: Any) -> tuple[Any, int]:
        return config, threading.get_ident()

    async def alist(self, config: Any) -> AsyncIterator[int]:
        for _ in range(3):
            yield threading.get_ident()


def test_sync_calls_from_a_worker_run_on_the_saver_loop() -> None:
    async def main() -> None:
        saver = StandIn()
        loop_thread = threading.get_ident()
        assert await asyncio.to_thread(saver.get_tuple, "c") == ("c", loop_thread)
        assert await asyncio.to_thread(lambda: list(saver.list("c"))) == [loop_thread] * 3
        with pytest.raises(ConfigurationError, match="own event loop thread"):
            saver.get_tuple("c")

    asyncio.run(main())


def test_without_a_running_loop_the_error_says_what_to_use() -> None:
    saver = StandIn()  # made outside any loop, never set up
    with pytest.raises(ConfigurationError, match="a-prefixed method instead"):
        saver.get_tuple("c")


def test_sync_savers_refuse_async_calls() -> None:
    class SyncStandIn(SyncOnly):
        pass

    with pytest.raises(ConfigurationError, match="synchronous"):
        SyncStandIn().aget_tuple("c")  # type: ignore[attr-defined]
