"""Compare-and-set of a thread's head during a versioned run.

Owns: how a run says it is versioned (a key in ``config["configurable"]``), the two
checks every store makes for it, and the `StaleThreadError` they raise.

`VersionedGraph` puts ``EXPECTED_KEY`` (the caller's ``expected_checkpoint_id``,
``""`` for "no checkpoint yet") into the run's config. LangGraph passes the
configurable dict on to every ``get_tuple`` and ``put`` of the run, and keeps
keys starting with ``__`` out of checkpoint metadata. Then:

- the run's first read, LangGraph's ``get_tuple`` of the thread's latest root
  checkpoint, refuses a thread whose latest root checkpoint is not the
  expected one (`check_loaded`): nothing has been written yet;
- every root checkpoint the run puts must have as parent the thread's latest
  root checkpoint, checked by the store in the same atomic write (the head of
  a put, `put_head`): a run that another writer overtook stops at its next
  checkpoint write, and that write stores nothing. A put whose checkpoint
  already is the head passes too: drivers retry a put whose reply was lost.

Runs without the key (time travel, replay, forks, plain ``invoke``) are never
constrained. Subgraph checkpoints (``checkpoint_ns != ""``) are not either:
they hang off the root checkpoint that their run started from.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from langgraph_persist_kit.errors import StaleThreadError

EXPECTED_KEY = "__persist_kit_expected_checkpoint_id"
"""``config["configurable"]`` key of a versioned run: the expected latest root
checkpoint id, or ``""`` for a thread that must have no checkpoint yet."""


_UNKNOWN = object()


def versioned(config: RunnableConfig) -> bool:
    """Whether ``config`` belongs to a versioned run, on the root namespace."""
    configurable = config.get("configurable") or {}
    return EXPECTED_KEY in configurable and not configurable.get("checkpoint_ns")


def stale(thread_id: Any, expected: str | None, found: object = _UNKNOWN
          ) -> StaleThreadError:
    """The error of a versioned run that expected the latest root checkpoint ``expected``
    (``None``: none) and found ``found`` (when the store says which)."""
    def name(checkpoint_id: Any) -> str:
        return f"checkpoint {checkpoint_id}" if checkpoint_id else "no checkpoint"

    found_text = "" if found is _UNKNOWN else f", found {name(found)}"
    return StaleThreadError(
        f"thread {thread_id!r} has moved on (expected its latest checkpoint to be "
        f"{name(expected)}{found_text}): another writer got there first; read its state "
        "again and retry"
    )


def check_loaded(config: RunnableConfig, loaded: CheckpointTuple | None) -> None:
    """Refuse the latest root checkpoint a versioned run loaded if it is not the expected one.

    Applies to reads of the latest checkpoint only (no ``checkpoint_id`` in
    ``config``): that is the read LangGraph makes before a run writes anything.

    Raises:
        StaleThreadError: The thread's latest root checkpoint is not the expected one.
    """
    configurable = config.get("configurable") or {}
    if not versioned(config) or configurable.get("checkpoint_id"):
        return
    expected = configurable[EXPECTED_KEY] or None
    found = loaded.checkpoint["id"] if loaded is not None else None
    if found != expected:
        raise stale(configurable.get("thread_id"), expected, found)


def put_head(config: RunnableConfig) -> tuple[bool, str | None]:
    """Whether a put must compare-and-set the thread's head, and the parent it expects.

    Returns:
        ``(True, parent_checkpoint_id)`` for a root checkpoint of a versioned
        run (``None``: the thread must have no root checkpoint yet), else
        ``(False, None)``.
    """
    if not versioned(config):
        return False, None
    return True, config["configurable"].get("checkpoint_id") or None
