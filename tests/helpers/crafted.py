"""A store row as an attacker would craft it: msgpack that LangGraph's default
serializer turns into ``os.system("touch marker")``, and the ``marker`` fixture that
fails a test in which it ran (test_transfer_safety.py, test_transfer_official.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.jsonplus import EXT_CONSTRUCTOR_POS_ARGS, JsonPlusSerializer

__all__ = ["CraftingSerde", "marker", "payload", "put_crafted_thread"]


def payload(marker: Path) -> bytes:
    """msgpack that LangGraph's default serializer turns into ``os.system("touch marker")``."""
    call = ormsgpack.packb(["os", "system", [f"touch {marker}"]])
    return ormsgpack.packb(ormsgpack.Ext(EXT_CONSTRUCTOR_POS_ARGS, call))


class CraftingSerde(JsonPlusSerializer):
    """Writes the string ``"EVIL"`` as `payload`: how an attacker's row looks in a store."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = marker

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return ("msgpack", payload(self.marker)) if obj == "EVIL" else super().dumps_typed(obj)


def put_crafted_thread(saver: Any) -> None:
    """A thread ``t`` whose channel value and pending write are `payload`s."""
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"a": "EVIL", "b": "fine"}
    checkpoint["channel_versions"] = {"a": 1, "b": 1}
    stored = saver.put(config, checkpoint, {"source": "input", "step": -1}, {"a": 1, "b": 1})
    saver.put_writes(stored, [("a", "EVIL")], "task-1", "~a")


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pwned"
    JsonPlusSerializer().loads_typed(("msgpack", payload(path)))  # the payload is live
    assert path.exists()
    path.unlink()
    yield path
    assert not path.exists(), "a command ran code from what it read"
