"""One writer per thread across real OS processes (tests/helpers/concurrency_worker.py).

Every backend (Redis Cluster too), both modes: processes hammering one thread through
`LockedGraph` lose no update; of two processes racing with one
``expected_checkpoint_id`` through `VersionedGraph`, exactly one wins; a lock
holder killed with SIGKILL blocks its thread no longer than documented.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from langgraph_persist_kit import saver_from_url
from langgraph_persist_kit.concurrency import ThreadBusyError, thread_lock
from tests.helpers import concurrency_worker
from tests.helpers.backends import Space
from tests.helpers.backends import store_url as fresh_store_url
from tests.helpers.concurrency_worker import builder

WORKER = Path(concurrency_worker.__file__)  # run as a script: it imports no test code
STORES = ["sqlite", "postgres", "redis", "redis-cluster"]
MODES = ["sync", "async"]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh store that several processes open."""
    with fresh_store_url(request.param, Space(tmp_path, __name__)) as url:
        yield url


def _start(role: str, mode: str, url: str, thread: str, arg: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), role, mode, url, thread, str(arg)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out.strip().splitlines()[-1]


def _expect_line(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdout is not None
    got = process.stdout.readline().strip()
    if got != line:
        process.kill()
        raise AssertionError(f"worker said {got!r}, not {line!r}: {process.stderr.read()}")


@contextmanager
def _graph(url: str) -> Iterator[tuple[Any, Any]]:
    with saver_from_url(url) as saver:
        yield saver, builder(0).compile(checkpointer=saver)


def _root_children(saver: Any, thread: str) -> dict[str | None, int]:
    """How many root checkpoints have each parent: a linear history has no count > 1."""
    children: dict[str | None, int] = {}
    for item in saver.list({"configurable": {"thread_id": thread, "checkpoint_ns": ""}}):
        parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        children[parent] = children.get(parent, 0) + 1
    return children


@pytest.mark.parametrize("mode", MODES)
def test_processes_hammering_one_thread_through_locked_graph_lose_no_update(
    store_url: str, mode: str
) -> None:
    processes, runs = 3, 70
    thread = "hammered"
    workers = [_start("hammer", mode, store_url, thread, runs) for _ in range(processes)]
    assert [_finish(w) for w in workers] == ["done"] * processes
    with _graph(store_url) as (saver, graph):
        values = graph.get_state({"configurable": {"thread_id": thread}}).values
        assert values["n"] == processes * runs  # every read-modify-write saw the one before
        assert sorted(int(entry.split(":")[1]) for entry in values["log"]) == list(
            range(processes * runs))
        assert len({entry.split(":")[0] for entry in values["log"]}) == processes
        assert max(_root_children(saver, thread).values()) == 1  # never forked


def test_without_the_lock_the_same_processes_do_lose_updates(tmp_path: Path) -> None:
    """The control: what `LockedGraph` prevents does happen without it."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    processes, runs = 3, 40
    workers = [_start("unlocked", "sync", url, "raced", runs) for _ in range(processes)]
    assert [_finish(w) for w in workers] == ["done"] * processes
    with _graph(url) as (saver, graph):
        n = graph.get_state({"configurable": {"thread_id": "raced"}}).values["n"]
        assert n < processes * runs
        assert max(_root_children(saver, "raced").values()) > 1


@pytest.mark.parametrize("mode", MODES)
def test_of_two_processes_racing_through_versioned_graph_exactly_one_wins(
    store_url: str, mode: str, tmp_path: Path
) -> None:
    thread = "contested"
    with _graph(store_url) as (saver, graph):
        for round_ in range(3):  # round 0: a new thread (expected None); then a known head
            go = tmp_path / f"go-{round_}"
            workers = [_start("versioned", mode, store_url, thread, go) for _ in range(2)]
            for worker in workers:
                _expect_line(worker, "ready")
            go.touch()
            assert sorted(_finish(w) for w in workers) == ["stale", "won"]
            state = graph.get_state({"configurable": {"thread_id": thread}})
            assert state.values["n"] == round_ + 1
            assert max(_root_children(saver, thread).values()) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_killed_holder_blocks_its_thread_no_longer_than_documented(
    store_url: str, mode: str
) -> None:
    """SQLite and PostgreSQL release at death; Redis when the lease runs out."""
    lease = 2.0
    thread = "held 'by' {a}: dead*process%🙂"
    holder = _start("hold", mode, store_url, thread, lease)
    try:
        _expect_line(holder, "locked")
        with saver_from_url(store_url) as saver:
            with pytest.raises(ThreadBusyError), thread_lock(saver, thread, wait=0):
                pass
            with thread_lock(saver, "another thread", wait=0):
                pass  # one thread's lock leaves the others free
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
            bound = lease if store_url.startswith("redis") else 0.0
            started = time.monotonic()
            with thread_lock(saver, thread, wait=bound + 3.0):  # ThreadBusyError if longer
                taken_after = time.monotonic() - started
            assert taken_after <= bound + 3.0
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()
