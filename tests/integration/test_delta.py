"""get_delta_channel_history and DeltaChannel-safe pruning, against InMemorySaver.

Chains are built the way LangGraph stores a ``DeltaChannel``: the channel is
in ``new_versions`` at every step but holds a value (a snapshot) only every
``SNAPSHOT`` steps; its updates live in pending writes.
"""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tests.helpers.delta import SNAPSHOT, build_chain
from tests.helpers.harness import Harness


def run_on(h: Harness) -> Any:
    def call(saver: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if saver is h.saver:
            return h.call(name, *args, **kwargs)
        return getattr(saver, name)(*args, **kwargs)

    return call


def history(h: Harness, saver: Any, thread_id: str, checkpoint_id: str | None,
            channels: list[str]) -> dict:
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    if checkpoint_id:
        config["configurable"]["checkpoint_id"] = checkpoint_id
    if saver is h.saver:
        return dict(h.call("get_delta_channel_history", config=config, channels=channels))
    return dict(saver.get_delta_channel_history(config=config, channels=channels))


@pytest.mark.parametrize("steps", [3, 23, 80, 700], ids=lambda n: f"{n}-steps")
def test_history_matches_in_memory_saver(harness: Harness, steps: int) -> None:
    memory = InMemorySaver()
    savers = [harness.saver, memory]
    ids = build_chain(savers, run_on(harness), "t", steps,
                      snapshot_every=None if steps == 700 else SNAPSHOT)
    targets = [ids[0], ids[len(ids) // 2], ids[-1], None]
    for target in targets:
        for channels in (["d"], ["d", "plain", "other"], ["missing"], []):
            expected = history(harness, memory, "t", target, channels)
            assert history(harness, harness.saver, "t", target, channels) == expected
    deepest = history(harness, harness.saver, "t", None, ["d"])["d"]
    if steps == 700:  # no snapshot at all: every ancestor's writes, no seed
        assert "seed" not in deepest and len(deepest["writes"]) == 2 * (steps - 1)


def test_history_follows_parent_links_of_a_fork(harness: Harness) -> None:
    memory = InMemorySaver()
    savers = [harness.saver, memory]
    call = run_on(harness)
    main = build_chain(savers, call, "t", 12)
    branch = build_chain(savers, call, "t", 9, parent=main[3], start=100)
    for target in (branch[-1], branch[0], main[-1]):
        expected = history(harness, memory, "t", target, ["d", "plain"])
        assert history(harness, harness.saver, "t", target, ["d", "plain"]) == expected
    assert history(harness, harness.saver, "t", "no-such-id", ["d"]) == {"d": {"writes": []}}


def test_prune_keeps_what_delta_values_are_rebuilt_from(harness: Harness) -> None:
    memory = InMemorySaver()
    ids = build_chain([harness.saver, memory], run_on(harness), "t", 23)
    build_chain([harness.saver], run_on(harness), "other", 4)
    before = history(harness, harness.saver, "t", ids[-1], ["d", "plain"])
    latest_before = harness.call("get_tuple", {"configurable": {"thread_id": "t"}})

    harness.call("prune", ["t"], strategy="keep_latest")

    kept = [t.checkpoint["id"] for t in harness.call("list", {"configurable": {"thread_id": "t"}})]
    # step 22 is kept; its delta value is rebuilt from the snapshot at step 20
    assert kept == [ids[22], ids[21], ids[20]]
    assert history(harness, harness.saver, "t", ids[-1], ["d", "plain"]) == before
    latest = harness.call("get_tuple", {"configurable": {"thread_id": "t"}})
    assert latest.checkpoint["channel_values"] == latest_before.checkpoint["channel_values"]
    assert latest.pending_writes == latest_before.pending_writes
    assert len(harness.call("list", {"configurable": {"thread_id": "other"}})) == 4
