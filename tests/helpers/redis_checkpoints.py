"""A checkpoint put on a Redis saver with the channel values, new versions and metadata a
test names: what the Redis test modules write (test_redis_storage.py, test_redis_ttl.py,
test_redis_config.py)."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)

from langgraph_persist_kit.redis import RedisSaver


def put_one(saver: RedisSaver, thread_id: str, values: dict, parent: Any = None,
            new: dict | None = None, **metadata: Any) -> Any:
    config = generate_config(thread_id)
    if parent:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    versions = {channel: f"{len(str(value)):05}" for channel, value in values.items()}
    checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
    new_versions = versions if new is None else {c: versions[c] for c in new}
    return saver.put(config, checkpoint, {**generate_metadata(), **metadata}, new_versions)
