"""What every tier needs: the session's PostgreSQL databases are dropped and the local
Redis Cluster and Valkey server stopped at the end (a tier that used none of them opens
no connection). The ``harness`` fixture lives in integration/conftest.py; shared code in
`tests.helpers`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.backends import drop_databases, stop_local_servers


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    drop_databases()
    stop_local_servers()
