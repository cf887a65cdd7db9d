"""The langgraph-checkpoint-conformance suite, all 8 capabilities, on every saver.

Async savers run it directly; sync savers through `SyncSaverAdapter`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from tests.helpers.backends import Space, async_saver, sync_saver
from tests.helpers.harness import combination_ids, combinations
from tests.helpers.sync_adapter import SyncSaverAdapter

EXPECTED_TESTS = 81


@pytest.mark.parametrize(
    ("backend", "mode"), combinations(__name__), ids=combination_ids(combinations(__name__))
)
async def test_conformance_all_capabilities(backend: str, mode: str, tmp_path: Path) -> None:
    counter = iter(range(1000))

    @checkpointer_test(name=f"{backend}-{mode}")
    async def factory():  # a fresh store per capability suite
        path = tmp_path / f"suite-{next(counter)}"
        path.mkdir()
        space = Space(path, __name__)
        if mode == "async":
            async with async_saver(backend, space) as saver:
                yield saver
        else:
            with sync_saver(backend, space) as saver:
                yield SyncSaverAdapter(saver)

    report = await validate(factory)
    failures = [f for result in report.results.values() for f in result.failures]
    assert not failures, "\n".join(failures)
    assert {name for name, r in report.results.items() if r.detected and r.passed} == {
        c.value for c in ALL_CAPABILITIES
    }
    assert sum(r.tests_passed for r in report.results.values()) == EXPECTED_TESTS
