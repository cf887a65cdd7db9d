"""Fork, replay and draw sessions: the helpers for notebooks and the command line.

Owns: `fork_session`, `replay`, `checkpoint_tree` and their async twins.

Each helper is written once as a plan of calls on a saver or a compiled graph
(`_calls.Call`): the sync helper makes them as they are, the async one awaits
their ``a``-prefixed twins (``aget_tuple``, ``ainvoke``, ...). They work with any
``BaseCheckpointSaver``; on this package's savers `fork_session` copies inside
the store (``fork_thread``) instead of putting each checkpoint again.
"""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.types import Command

from langgraph_persist_kit._core.calls import Call, aexecute, execute, same
from langgraph_persist_kit._core.checks import check_id, copied_metadata
from langgraph_persist_kit._core.codec import Target, kept_when_paused, target_of
from langgraph_persist_kit._core.lineage import ancestor_chain
from langgraph_persist_kit._core.plan import Plan, arun, run
from langgraph_persist_kit._core.raw_values import raw_view
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.transfer._format import with_task_paths, write_groups
from langgraph_persist_kit.tree import CheckpointTree, checkpoint_record


def _saver_of(graph: Any) -> BaseCheckpointSaver:
    """The graph's checkpointer (a saver given instead of a graph is used as it is)."""
    saver = graph if isinstance(graph, BaseCheckpointSaver) else getattr(graph, "checkpointer",
                                                                         None)
    if not isinstance(saver, BaseCheckpointSaver):
        raise ConfigurationError(
            "the graph has no checkpointer: compile it with graph.compile(checkpointer=saver)"
        )
    return saver


def _root(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    return Target(thread_id, "", None).config(checkpoint_id)


# --- fork ---------------------------------------------------------------------------


def _fork(graph: Any, config: RunnableConfig, new_thread_id: Any) -> Plan[str]:
    saver: Any = raw_view(_saver_of(graph))  # values move as stored bytes: nothing is decoded
    source = target_of(config)
    if source.checkpoint_ns:
        raise ConfigurationError("fork a thread at a root checkpoint: leave checkpoint_ns empty")
    tip = yield Call(saver.get_tuple, saver.aget_tuple,
                     (_root(source.thread_id, source.checkpoint_id),))
    if tip is None:
        raise ConfigurationError(
            f"thread {source.thread_id!r} has no checkpoint {source.checkpoint_id or ''}".rstrip()
        )
    new_id = check_id(new_thread_id if new_thread_id is not None else uuid.uuid4(), "thread_id")
    if (yield Call(saver.get_tuple, saver.aget_tuple, (_root(new_id),))) is not None:
        raise ConfigurationError(f"thread {new_id!r} exists already: pick a new thread id")
    tip_id = tip.config["configurable"]["checkpoint_id"]
    paused = False  # the source moved on from the tip: its later answers are not copied
    if source.checkpoint_id is not None:
        latest = yield Call(saver.get_tuple, saver.aget_tuple, (_root(source.thread_id),))
        paused = latest.config["configurable"]["checkpoint_id"] != tip_id
    if hasattr(saver, "fork_thread"):  # the saver hook of this package's: the store copies
        yield Call(saver.fork_thread, saver.afork_thread, (source.thread_id, new_id, tip_id),
                   {"paused": paused})
        return new_id
    everything = yield Call(saver.list, saver.alist,
                            ({"configurable": {"thread_id": source.thread_id}},), each=same)
    selection = _fork_selection(with_task_paths(saver, everything), tip_id)
    newest = {_ns(t): t for t in selection}  # oldest first: the last of each namespace stays
    for checkpoint in selection:
        if paused and newest[_ns(checkpoint)] is checkpoint:
            writes = [w for w in checkpoint.pending_writes or [] if kept_when_paused(*w[:2])]
            checkpoint = checkpoint._replace(pending_writes=writes)
        yield from _put_again(saver, checkpoint, new_id)
    return new_id


def _ns(checkpoint: CheckpointTuple) -> str:
    return str(checkpoint.config["configurable"].get("checkpoint_ns", ""))


def _fork_selection(tuples: list[CheckpointTuple], tip_id: str) -> list[CheckpointTuple]:
    """What a fork at root checkpoint ``tip_id`` holds, oldest first: the tip's chain of
    parents, and the subgraph checkpoints made under one of them (``parents[""]``)."""
    root = {t.config["configurable"]["checkpoint_id"]: t for t in tuples if not _ns(t)}
    ids = set(ancestor_chain({cid: _parent_id(t) for cid, t in root.items()}, tip_id))
    nested = [t for t in tuples
              if _ns(t) and (t.metadata or {}).get("parents", {}).get("") in ids]
    return sorted([*(root[cid] for cid in ids), *nested],
                  key=lambda t: t.config["configurable"]["checkpoint_id"])


def _parent_id(checkpoint: CheckpointTuple) -> str | None:
    return (checkpoint.parent_config or {}).get("configurable", {}).get("checkpoint_id")


def _put_again(
    saver: BaseCheckpointSaver, checkpoint: CheckpointTuple, thread_id: str
) -> Plan[None]:
    """Store ``checkpoint`` (with its pending writes) again under ``thread_id``.

    Every channel value is stored (``new_versions`` = all versions). Pending
    writes keep their task paths where the saver tells them, else their order
    (`write_groups`, as an import does).
    """
    config = Target(thread_id, _ns(checkpoint), None).config(_parent_id(checkpoint))
    metadata = copied_metadata(checkpoint.metadata, thread_id)
    stored = yield Call(saver.put, saver.aput, (config, checkpoint.checkpoint, metadata,
                                       dict(checkpoint.checkpoint["channel_versions"])))
    for task_path, task_id, writes in write_groups(checkpoint.pending_writes or []):
        yield Call(saver.put_writes, saver.aput_writes, (stored, writes, task_id, task_path))


def fork_session(graph: Any, config: RunnableConfig, *, new_thread_id: Any = None) -> str:
    """Fork a thread at one of its checkpoints into a new thread.

    The new thread's ``get_state`` equals the source's ``get_state`` at that
    checkpoint (values, ``next``, pending interrupts, subgraph namespaces,
    DeltaChannel values), and its ``get_state_history`` is the source's chain up
    to it, checkpoint ids included, with no checkpoint added. The source is not
    touched, and continuing either thread never changes the other.

    Pending writes: a fork at the thread's latest checkpoint carries them all
    (tasks that finished, answers given). A fork at an earlier checkpoint carries
    only its interrupts, errors and task-less writes, so it waits there as the
    history shows it (a fork taken at an interrupt the source later answered is
    paused there again) and its tasks run again when it is continued.

    Works with any ``BaseCheckpointSaver`` (it puts each checkpoint again); this
    package's savers copy inside the store (``fork_thread``), so forking a long
    thread costs about one round trip.

    Args:
        graph: A compiled graph with a checkpointer (or the checkpointer itself:
            forking needs no graph, which is how ``persist-kit fork`` calls it).
        config: ``{"configurable": {"thread_id": str, "checkpoint_id": str | None}}``;
            without ``checkpoint_id``, the thread's latest checkpoint.
        new_thread_id: The new thread's id; default a random UUID.

    Returns:
        The new thread's id.

    Raises:
        ConfigurationError: No checkpointer, no such checkpoint, a subgraph
            namespace in ``config``, or ``new_thread_id`` already in use.
    """
    return run(_fork(graph, config, new_thread_id), execute)


async def afork_session(graph: Any, config: RunnableConfig, *, new_thread_id: Any = None) -> str:
    """Fork a thread into a new one; see `fork_session`."""
    return await arun(_fork(graph, config, new_thread_id), aexecute)


# --- replay -------------------------------------------------------------------------


def _replay(graph: Any, config: RunnableConfig, input: Any, update: Any, as_node: str | None,
            invoke_kwargs: dict[str, Any]) -> Plan[Any]:
    _saver_of(graph)
    target = target_of(config, need_checkpoint_id=True)
    # fill in the default namespace: InMemorySaver (and others) read it unchecked
    config = {**config, "configurable": {**config["configurable"],
                                         "checkpoint_ns": target.checkpoint_ns}}
    start = config
    if update is not None or as_node is not None:
        kwargs = {"as_node": as_node} if as_node is not None else {}
        start = yield Call(graph.update_state, graph.aupdate_state, (config, update), kwargs)
    elif isinstance(input, Command) and input.resume is not None:
        # LangGraph reuses an answered interrupt's stored resume value when run
        # again from the same checkpoint: branch first, so the new answer counts.
        start = yield Call(graph.update_state, graph.aupdate_state, (config, None))
    return (yield Call(graph.invoke, graph.ainvoke, (input, start), invoke_kwargs))


def replay(graph: Any, config: RunnableConfig, *, input: Any = None, update: Any = None,
           as_node: str | None = None, **invoke_kwargs: Any) -> Any:
    """Run a graph again from a past checkpoint; the original branch stays in the history.

    Args:
        graph: A compiled graph with a checkpointer.
        config: ``{"configurable": {"thread_id": str, "checkpoint_id": str}}``.
        input: ``None`` to re-run what was next at that checkpoint, or a
            ``Command(resume=...)`` to answer the interrupt pending there.
        update: Values applied first, as ``graph.update_state(config, update,
            as_node=as_node)`` would (a new branch from that checkpoint).
        as_node: The node the update is applied as.
        **invoke_kwargs: Passed to ``graph.invoke`` (e.g. ``stream_mode``).

    Returns:
        What ``graph.invoke`` returns.

    Raises:
        ConfigurationError: No checkpointer, or no ``checkpoint_id`` in ``config``.
    """
    return run(_replay(graph, config, input, update, as_node, invoke_kwargs), execute)


async def areplay(graph: Any, config: RunnableConfig, *, input: Any = None, update: Any = None,
                  as_node: str | None = None, **invoke_kwargs: Any) -> Any:
    """Run a graph again from a past checkpoint with ``ainvoke``; see `replay`."""
    return await arun(_replay(graph, config, input, update, as_node, invoke_kwargs), aexecute)


# --- tree ---------------------------------------------------------------------------


def _tree(saver: BaseCheckpointSaver, thread_id: str) -> Plan[CheckpointTree]:
    thread_id = check_id(thread_id, "thread_id")
    tuples = yield Call(saver.list, saver.alist, ({"configurable": {"thread_id": thread_id}},),
                        each=same)
    return CheckpointTree.from_records(thread_id, [checkpoint_record(t) for t in tuples])


def checkpoint_tree(saver: BaseCheckpointSaver, thread_id: str) -> CheckpointTree:
    """A thread's checkpoints (every namespace) as a tree of branches.

    Args:
        saver: Any checkpoint saver.
        thread_id: The thread.

    Returns:
        A `CheckpointTree`: ``.branches()`` lists each branch root first,
        ``.to_mermaid()`` draws it (a notebook shows the diagram).
    """
    return run(_tree(saver, thread_id), execute)


async def acheckpoint_tree(saver: BaseCheckpointSaver, thread_id: str) -> CheckpointTree:
    """A thread's checkpoints as a tree of branches; see `checkpoint_tree`."""
    return await arun(_tree(saver, thread_id), aexecute)
