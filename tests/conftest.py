"""Fixtures: ``harness`` runs a test on every backend x {sync, async}.

Valkey joins the backends only in `VALKEY_MODULES`: the contract, conformance and
graph tests are the ones that show the Redis savers work on Valkey, and running
every harness module on it again would add minutes for little (the rest exercise
the same Lua scripts and commands on Redis).
"""

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
    VALKEY,
    Space,
    async_saver,
    drop_databases,
    stop_local_servers,
    sync_saver,
)
from harness import Harness

COMBINATIONS = [(backend, mode) for backend in BACKENDS for mode in MODES]
VALKEY_MODULES = {"test_contract", "test_conformance", "test_graphs"}


def combinations(module: str) -> list[tuple[str, str]]:
    """The ``(backend, mode)`` pairs a test module runs on (Valkey for `VALKEY_MODULES`)."""
    valkey = module.rsplit(".", 1)[-1] in VALKEY_MODULES
    return COMBINATIONS + ([(VALKEY, mode) for mode in MODES] if valkey else [])


def combination_ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{backend}-{mode}" for backend, mode in pairs]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give the ``harness`` fixture its module's combinations."""
    if "harness" in metafunc.fixturenames:
        pairs = combinations(metafunc.module.__name__)
        metafunc.parametrize("harness", pairs, ids=combination_ids(pairs), indirect=True)


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


@pytest.fixture
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    backend, mode = request.param
    yield from open_harness(backend, mode, Space(tmp_path, request.module.__name__))


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    drop_databases()
    stop_local_servers()
