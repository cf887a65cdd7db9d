"""Parent-linked chains of small checkpoints put through a `Harness`: what the contract
tests write when only metadata and order matter (test_contract.py,
test_agent_server_calls.py)."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)

from tests.helpers.harness import Harness


def put_chain(
    h: Harness, thread_id: str, metadatas: list[dict[str, Any]], *, ns: str = ""
) -> list[dict]:
    """Store a parent-linked chain of checkpoints, one per metadata dict."""
    configs: list[dict] = []
    for i, extra in enumerate(metadatas):
        config = generate_config(thread_id, checkpoint_ns=ns)
        if configs:
            config["configurable"]["checkpoint_id"] = configs[-1]["configurable"]["checkpoint_id"]
        checkpoint = generate_checkpoint(channel_values={"n": i}, channel_versions={"n": i + 1})
        metadata = {**generate_metadata(step=i), **extra}
        configs.append(h.call("put", config, checkpoint, metadata, {"n": i + 1}))
    return configs
