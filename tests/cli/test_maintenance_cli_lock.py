"""The maintenance lock through the command line, on every backend: while the test
holds it, cleanup and prune exit with code 3 naming the holder and stats still reads; a
holder process killed with SIGKILL lets the next run through; a Redis lease is renewed
while held; an in-memory SQLite database locks within its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from langgraph_persist_kit import saver_from_url
from langgraph_persist_kit.maintenance import MaintenanceLockedError, maintenance_lock
from tests.helpers.backends import redis_prefix
from tests.helpers.maintenance_cli import (
    as_json,
    checkpoints_of,
    error_line,
    fill,
    ok,
    run,
)
from tests.helpers.paths import ROOT


def test_a_held_lock_exits_3(url: str) -> None:
    fill(url, ["a"])
    with saver_from_url(url) as saver, maintenance_lock(saver):
        for args in (("cleanup", url, "--older-than", "1s"), ("prune", url, "--keep-latest", "1"),
                     ("cleanup", url, "--older-than", "1s", "--json", "--dry-run")):
            line = error_line(run(*args), 3)
            assert "another maintenance run holds the maintenance lock" in line
            assert f"pid {os.getpid()} on " in line  # who holds it
        assert ok(run("stats", url)).stdout  # reading needs no lock
        with pytest.raises(MaintenanceLockedError), maintenance_lock(saver):
            pass
        with maintenance_lock(saver, name="other"):  # another name: another lock
            pass
    assert checkpoints_of(url, "a") == 4
    assert as_json("prune", url, "--keep-latest", "1")["checkpoints_deleted"] == 3
    with saver_from_url(url) as saver, maintenance_lock(saver):  # released again
        pass


def test_lock_on_an_in_memory_sqlite_database() -> None:
    with saver_from_url("sqlite:///:memory:") as saver:
        with (maintenance_lock(saver), pytest.raises(MaintenanceLockedError, match="in-memory"),
              maintenance_lock(saver)):
            pass
        with maintenance_lock(saver):
            pass
    assert MaintenanceLockedError.__module__ == "langgraph_persist_kit.maintenance"


HOLDER = """
import sys, time
from langgraph_persist_kit import saver_from_url
from langgraph_persist_kit.maintenance import maintenance_lock
with saver_from_url(sys.argv[1]) as saver, maintenance_lock(saver, lease=1.0):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_killed_holder_releases_the_lock(url: str) -> None:
    fill(url, ["a"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert "another maintenance run" in error_line(
            run("prune", url, "--keep-latest", "1"), 3)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 5  # Redis: the 1 s lease must run out; others: at once
    while (result := run("prune", url, "--keep-latest", "1")).exit_code == 3:
        assert time.monotonic() < deadline, result.stderr
        time.sleep(0.1)
    assert ok(result).stdout.startswith("pruned 1 threads: deleted 3 checkpoints")


def test_redis_lease_is_renewed_while_held() -> None:
    options: dict[str, Any] = {}
    with redis_prefix("redis", options) as server:
        url = f"{server}?key_prefix={options['key_prefix']}"
        with saver_from_url(url) as saver:
            key = f"{options['key_prefix']}:maintenance"
            with maintenance_lock(saver, lease=1.0):
                time.sleep(1.3)  # longer than the lease: renewed meanwhile
                assert 0 < saver.client.pttl(key) <= 1000
                assert "another" in error_line(run("cleanup", url, "--older-than", "1d"), 3)
            assert saver.client.exists(key) == 0

