"""Reading and writing one thread through any saver's public API, for `transfer`.

Owns: listing the threads to move, reading a thread in file order, writing it (with the
``if_exists`` rules and the staging id of ``"replace"``) and refusing a copy whose
target already holds some of its threads.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, cast

from langgraph.checkpoint.base import Checkpoint, CheckpointTuple

from langgraph_persist_kit._core.calls import Call, same
from langgraph_persist_kit._core.checks import copied_metadata
from langgraph_persist_kit._core.plan import Plan
from langgraph_persist_kit._core.raw_values import RawValue, keeps_values_apart, plain
from langgraph_persist_kit.errors import BackendError, ConfigurationError
from langgraph_persist_kit.strict_serde import refusing_blocked_types
from langgraph_persist_kit.transfer._format import order_checkpoints, with_task_paths, write_groups

__all__ = ["read_thread", "refuse_existing", "thread_ids_of", "write_thread"]


def _thread_config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


def thread_ids_of(saver: Any, thread_ids: Iterable[str] | None) -> Plan[list[str]]:
    """The threads to handle: ``thread_ids`` (deduplicated, in order) or all, sorted.

    All threads come from ``list_threads`` where the saver has it, else from
    the thread ids of ``list(None)`` (``InMemorySaver``).
    """
    if thread_ids is not None:
        if isinstance(thread_ids, str):
            raise ConfigurationError("thread_ids must be a list of ids, not one string")
        return list(dict.fromkeys(str(thread_id) for thread_id in thread_ids))
    if hasattr(saver, "list_threads") or hasattr(saver, "alist_threads"):
        ids = yield Call(saver.list_threads, saver.alist_threads, each=lambda info: info.thread_id)
    else:
        ids = yield Call(saver.list, saver.alist, (None,),
                         each=lambda t: t.config["configurable"]["thread_id"])
    return sorted(set(ids))


def read_thread(saver: Any, thread_id: str, *, required: bool) -> Plan[list[CheckpointTuple]]:
    """Every checkpoint of a thread, all namespaces, in file order (`order_checkpoints`).

    Raises:
        ConfigurationError: When ``required`` and the thread has no checkpoints.
    """
    tuples = yield Call(saver.list, saver.alist, (_thread_config(thread_id),), each=same)
    if not tuples and required:
        raise ConfigurationError(f"thread {thread_id!r} has no checkpoints")
    tuples = [t._replace(metadata=dict(t.metadata)) if isinstance(t.metadata, RawValue) else t
              for t in tuples]  # a saver that keeps metadata through its serde
    return order_checkpoints(with_task_paths(saver, tuples))


def write_thread(
    saver: Any, thread_id: str, tuples: Sequence[CheckpointTuple], if_exists: str
) -> Plan[bool]:
    """Write a thread's checkpoints through ``put`` and ``put_writes``; False if skipped.

    Each ``put`` passes every channel version as ``new_versions``, so every
    value is stored; pending writes get the task paths of `write_groups`. A
    write that fails part-way deletes what it wrote, so no half thread is left.
    ``"replace"`` writes the thread under a staging id first, then deletes the
    old thread and writes it again under its own id (see `IfExists`).

    Raises:
        ConfigurationError: When the target holds the thread and ``if_exists``
            is ``"fail"``.
    """
    existing = yield Call(saver.list, saver.alist, (_thread_config(thread_id),), {"limit": 1},
                          each=same)
    if existing and if_exists == "skip":
        return False
    if existing and if_exists == "fail":
        raise ConfigurationError(
            f"thread {thread_id!r} already exists in the target: delete it first, or pass "
            "if_exists='skip' or 'replace' (--if-exists on the command line)"
        )
    groups = [write_groups(t.pending_writes or []) for t in tuples]  # check all, then write
    if not keeps_values_apart(saver):  # it needs values as objects: decode all, then write
        with refusing_blocked_types(f"thread {thread_id!r}"):
            pairs = [_as_objects(t, calls) for t, calls in zip(tuples, groups, strict=True)]
        tuples, groups = [t for t, _ in pairs], [calls for _, calls in pairs]
    staging = f"{thread_id}.persist-kit-import-{uuid.uuid4().hex}" if existing else thread_id
    yield from _put_all(saver, staging, tuples, groups)
    if existing:
        yield Call(saver.delete_thread, saver.adelete_thread, (thread_id,))
        try:
            yield from _put_all(saver, thread_id, tuples, groups)
        except Exception as exc:
            raise BackendError(
                f"thread {thread_id!r} was deleted to be replaced, and writing the new one "
                f"failed: the imported thread is kept as {staging!r}"
            ) from exc
        yield Call(saver.delete_thread, saver.adelete_thread, (staging,))
    return True


def _put_all(saver: Any, thread_id: str, tuples: Sequence[CheckpointTuple],
             groups: Sequence[list[tuple[str, str, list[tuple[str, Any]]]]]) -> Plan[None]:
    """``put`` and ``put_writes`` every checkpoint of ``tuples`` under ``thread_id``;
    on a failure, delete what was written (best effort) and raise."""
    try:
        for t, calls in zip(tuples, groups, strict=True):
            ns = t.config["configurable"].get("checkpoint_ns", "")
            parent = (t.parent_config or {}).get("configurable", {}).get("checkpoint_id")
            config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                       "checkpoint_id": parent}}
            versions = dict(t.checkpoint["channel_versions"])
            metadata = copied_metadata(t.metadata, thread_id)
            stored = yield Call(saver.put, saver.aput, (config, t.checkpoint, metadata, versions))
            for task_path, task_id, writes in calls:
                yield Call(saver.put_writes, saver.aput_writes,
                           (stored, writes, task_id, task_path))
    except Exception:
        with contextlib.suppress(Exception):
            yield Call(saver.delete_thread, saver.adelete_thread, (thread_id,))
        raise


def _as_objects(t: CheckpointTuple, calls: list[tuple[str, str, list[tuple[str, Any]]]]
                ) -> tuple[CheckpointTuple, list[tuple[str, str, list[tuple[str, Any]]]]]:
    """A checkpoint and its write groups with every raw value decoded (`plain`)."""
    values = t.checkpoint["channel_values"]
    checkpoint = cast(Checkpoint, {**t.checkpoint,
                                   "channel_values": {k: plain(v) for k, v in values.items()}})
    return t._replace(checkpoint=checkpoint), [
        (path, task, [(channel, plain(value)) for channel, value in writes])
        for path, task, writes in calls]


def refuse_existing(target: Any, ids: Sequence[str]) -> Plan[None]:
    """Before a copy writes anything: fail if the target holds any of ``ids``.

    Raises:
        ConfigurationError: Naming the threads the target holds (the first five).
    """
    wanted = set(ids)
    held = sorted(wanted.intersection((yield from thread_ids_of(target, None))))
    if held:
        shown = ", ".join(repr(thread_id) for thread_id in held[:5])
        more = f" and {len(held) - 5} more" if len(held) > 5 else ""
        raise ConfigurationError(
            f"{len(held)} of the {len(ids)} threads already exist in the target ({shown}{more}): "
            "nothing was copied; delete them first, or pass if_exists='skip' or 'replace' "
            "(--if-exists on the command line)"
        )
