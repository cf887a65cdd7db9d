"""The ``harness`` fixture: a test taking it runs on every backend x {sync, async} of its
module's `combinations` (Valkey too for `VALKEY_MODULES`; tests/helpers/harness.py); and
the single-store fixtures of the backend modules: ``schema`` (a fresh PostgreSQL schema)
and ``prefix`` (a Redis key prefix, removed afterwards); ``marker`` (tests/helpers/crafted.py)
fails a test in which a crafted store row ran code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.backends import Space, drop_prefix, fresh_schema, redis_url
from tests.helpers.crafted import marker  # noqa: F401  (the fixture of the safety tests)
from tests.helpers.harness import Harness, combination_ids, combinations, open_harness


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give the ``harness`` fixture its module's combinations."""
    if "harness" in metafunc.fixturenames:
        pairs = combinations(metafunc.module.__name__)
        metafunc.parametrize("harness", pairs, ids=combination_ids(pairs), indirect=True)


@pytest.fixture
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    backend, mode = request.param
    yield from open_harness(backend, mode, Space(tmp_path, request.module.__name__))


@pytest.fixture
def schema() -> str:
    """A PostgreSQL schema name no other test uses."""
    return fresh_schema()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix no other test uses; its keys are removed afterwards."""
    name = "pk-test-" + uuid.uuid4().hex[:12]
    yield name
    drop_prefix(redis_url(), name)
