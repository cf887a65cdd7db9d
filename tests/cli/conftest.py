"""The ``url`` fixture of the maintenance commands' tests: one store per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.backends import Space, store_url
from tests.helpers.maintenance_cli import BACKENDS


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL on a fresh SQLite file, PostgreSQL schema or Redis key prefix."""
    with store_url(request.param, Space(tmp_path, request.module.__name__)) as url:
        yield url
