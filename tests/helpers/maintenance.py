"""A cleanup cutoff that does not race the load (test_maintenance.py,
test_maintenance_cli.py)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

import langgraph_persist_kit.maintenance as maintenance

DAY = timedelta(days=1)


def cutoff_after_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the next cleanups' cutoff (``older_than=DAY``) a second after every write so
    far and a second before any write from now on, whatever the load: the clock a
    cleanup counts back from is set, not read."""
    time.sleep(1.0)
    middle = time.time()
    time.sleep(1.0)
    monkeypatch.setattr(maintenance, "CLOCK", lambda: middle + DAY.total_seconds())
