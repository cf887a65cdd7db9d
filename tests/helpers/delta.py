"""Checkpoint chains stored the way LangGraph stores a ``DeltaChannel``: the channel is
in ``new_versions`` at every step but holds a value (a snapshot) only every
``SNAPSHOT`` steps; its updates live in pending writes (test_delta.py, test_postgres_storage.py,
test_redis_storage.py)."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_metadata
from langgraph.checkpoint.serde.types import _DeltaSnapshot

SNAPSHOT = 5


def build_chain(
    savers: list[Any], call: Any, thread_id: str, steps: int, *, parent: str | None = None,
    start: int = 0, snapshot_every: int | None = SNAPSHOT,
) -> list[str]:
    """Store ``steps`` checkpoints on every saver; return their ids (oldest first)."""
    ids: list[str] = []
    for i in range(start, start + steps):
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        if parent:
            config["configurable"]["checkpoint_id"] = parent
        values: dict[str, Any] = {"plain": f"p{i // 7}"}
        if snapshot_every and i % snapshot_every == 0:
            values["d"] = _DeltaSnapshot(list(range(i)))
        versions = {"d": f"{i + 1:05}", "plain": f"{i // 7 + 1:05}", "other": "00001"}
        checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
        since = i % snapshot_every if snapshot_every else i
        metadata = {**generate_metadata(step=i),
                    "counters_since_delta_snapshot": {"d": [since, since]}}
        new_versions = {"d": versions["d"]}
        if i % 7 == 0 or i == start:
            new_versions["plain"] = versions["plain"]
        for saver in savers:
            stored = call(saver, "put", config, checkpoint, metadata, new_versions)
            call(saver, "put_writes", stored, [("d", [i]), ("other", f"o{i}")], f"task-{i}",
                 task_path=f"~{i}")
            call(saver, "put_writes", stored, [("d", [i, "b"])], f"atask-{i}", task_path=f"~{i}")
        parent = checkpoint["id"]
        ids.append(checkpoint["id"])
    return ids
