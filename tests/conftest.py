"""Fixtures: ``harness`` runs a test on every backend x {sync, async}."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from backends import (
    BACKENDS,
    MODES,
    Space,
    async_saver,
    drop_databases,
    stop_redis_cluster,
    sync_saver,
)
from harness import Harness

COMBINATIONS = [(backend, mode) for backend in BACKENDS for mode in MODES]


def open_harness(backend: str, mode: str, space: Space, **options: object) -> Iterator[Harness]:
    if mode == "sync":
        with sync_saver(backend, space, **options) as saver:
            yield Harness(backend, mode, saver, None)
        return
    loop = asyncio.new_event_loop()
    try:
        manager = async_saver(backend, space, **options)
        saver = loop.run_until_complete(manager.__aenter__())
        try:
            yield Harness(backend, mode, saver, loop)
        finally:
            loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()


@pytest.fixture(params=COMBINATIONS, ids=[f"{b}-{m}" for b, m in COMBINATIONS])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    backend, mode = request.param
    yield from open_harness(backend, mode, Space(tmp_path, request.module.__name__))


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    drop_databases()
    stop_redis_cluster()
