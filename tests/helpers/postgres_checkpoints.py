"""One small checkpoint put on a PostgreSQL saver, sync or async: what the PostgreSQL
test modules write when the content does not matter (test_postgres_connections.py,
test_postgres_schemas.py, test_postgres_storage.py)."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)

from langgraph_persist_kit.postgres import AsyncPostgresSaver


def put_one(saver: Any, thread_id: str, parent: dict | None = None) -> Any:
    """A put call (a coroutine for async savers) of one small checkpoint."""
    config = generate_config(thread_id)
    if parent:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    checkpoint = generate_checkpoint(channel_values={"v": thread_id}, channel_versions={"v": 1})
    put = saver.aput if isinstance(saver, AsyncPostgresSaver) else saver.put
    return put(config, checkpoint, generate_metadata(), {"v": 1})
