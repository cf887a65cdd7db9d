"""The ``harness`` fixture: a test taking it runs on every backend x {sync, async} of its
module's `combinations` (Valkey too for `VALKEY_MODULES`; tests/helpers/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.backends import Space
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
