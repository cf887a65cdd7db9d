"""Export, import and copy threads between any checkpoint savers.

Owns: `export_threads`, `import_threads`, `copy_threads` and their async twins,
the reports they return and the rules for threads that already exist;
depends on: `_threads_format` / `_threads_reader` (the JSON Lines format),
`_plan` (drivers) and ``BaseCheckpointSaver``'s public API only (``list``,
``put``, ``put_writes``, ``delete_thread``, plus ``list_threads`` where a saver
has it), so every saver works: this package's, LangGraph's ``InMemorySaver``,
anyone's.

Each operation is written once as a plan that yields `Call` requests (a saver
method and its arguments, see `_calls`), so export, import and copy behave the
same in both modes.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from langgraph_persist_kit._calls import Call, aexecute, execute, same
from langgraph_persist_kit._plan import Plan, arun, run
from langgraph_persist_kit._threads_format import (
    end_line,
    header_line,
    order_checkpoints,
    thread_lines,
    with_task_paths,
    write_groups,
)
from langgraph_persist_kit._threads_reader import read_threads, to_tuples
from langgraph_persist_kit.errors import BackendError, ConfigurationError

__all__ = [
    "IfExists",
    "ThreadCopied",
    "TransferReport",
    "acopy_threads",
    "aexport_threads",
    "aimport_threads",
    "copy_threads",
    "export_threads",
    "import_threads",
]

IfExists = Literal["fail", "skip", "replace"]
"""What import and copy do with a thread id the target already holds.

``"fail"`` (the default) raises `ConfigurationError` before writing anything of
that thread; ``"skip"`` leaves the target's thread as it is and goes on;
``"replace"`` writes the imported thread under a staging id, then deletes the
target's thread and writes it again under its own id: a failed import leaves the
old thread as it was.
"""

_IF_EXISTS = ("fail", "skip", "replace")


class Writable(Protocol):
    """A text stream: an open file, ``sys.stdout``, ``io.StringIO``."""

    def write(self, text: str, /) -> Any: ...


class TransferReport(NamedTuple):
    """What an export, import or copy did.

    Attributes:
        threads: Threads written (to the file, or to the target saver).
        checkpoints: Their checkpoints, all namespaces.
        writes: Their pending writes.
        skipped: Ids of threads left alone because the target held them
            (``if_exists="skip"``).
        seconds: Wall-clock time taken, in seconds.
    """

    threads: int
    checkpoints: int
    writes: int
    skipped: tuple[str, ...]
    seconds: float


class ThreadCopied(NamedTuple):
    """Progress of a copy, given to ``on_thread`` after each thread.

    Attributes:
        thread_id: The thread just copied (or skipped).
        done: Threads handled so far, this one included.
        total: Threads the copy will handle.
        checkpoints: Checkpoints of this thread that were written (0 if skipped).
        skipped: Whether the target already held it and it was skipped.
    """

    thread_id: str
    done: int
    total: int
    checkpoints: int
    skipped: bool


# --- the plans ----------------------------------------------------------------------


def _thread_config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


def _thread_ids(saver: Any, thread_ids: Iterable[str] | None) -> Plan[list[str]]:
    """The threads to handle: ``thread_ids`` (deduplicated, in order) or all, sorted.

    All threads come from ``list_threads`` where the saver has it, else from
    the thread ids of ``list(None)`` (``InMemorySaver``).
    """
    if thread_ids is not None:
        if isinstance(thread_ids, str):
            raise ConfigurationError("thread_ids must be a list of ids, not one string")
        return list(dict.fromkeys(str(thread_id) for thread_id in thread_ids))
    if hasattr(saver, "list_threads") or hasattr(saver, "alist_threads"):
        ids = yield Call(saver, "list_threads", each=lambda info: info.thread_id)
    else:
        ids = yield Call(saver, "list", (None,),
                         each=lambda t: t.config["configurable"]["thread_id"])
    return sorted(set(ids))


def _read_thread(saver: Any, thread_id: str, *, required: bool) -> Plan[list[CheckpointTuple]]:
    """Every checkpoint of a thread, all namespaces, in file order (`order_checkpoints`).

    Raises:
        ConfigurationError: When ``required`` and the thread has no checkpoints.
    """
    tuples = yield Call(saver, "list", (_thread_config(thread_id),), each=same)
    if not tuples and required:
        raise ConfigurationError(f"thread {thread_id!r} has no checkpoints")
    return order_checkpoints(with_task_paths(saver, tuples))


def _write_thread(
    saver: Any, thread_id: str, tuples: Sequence[CheckpointTuple], if_exists: str
) -> Plan[bool]:
    """Write a thread's checkpoints through ``put`` and ``put_writes``; False if skipped.

    Each ``put`` passes every channel version as ``new_versions``, so every
    value is stored; pending writes get the task paths of `write_groups`. A
    write that fails part-way deletes what it wrote, so no half thread is left.
    ``"replace"`` writes the thread under a staging id first and swaps it in
    only once it is complete: a failed import leaves the old thread as it was.

    Raises:
        ConfigurationError: When the target holds the thread and ``if_exists``
            is ``"fail"``.
    """
    existing = yield Call(saver, "list", (_thread_config(thread_id),), {"limit": 1}, each=same)
    if existing and if_exists == "skip":
        return False
    if existing and if_exists == "fail":
        raise ConfigurationError(
            f"thread {thread_id!r} already exists in the target: delete it first, or pass "
            "if_exists='skip' or 'replace' (--if-exists on the command line)"
        )
    groups = [write_groups(t.pending_writes or []) for t in tuples]  # check all, then write
    staging = f"{thread_id}.persist-kit-import-{uuid.uuid4().hex}" if existing else thread_id
    yield from _put_all(saver, staging, tuples, groups)
    if existing:
        yield Call(saver, "delete_thread", (thread_id,))
        try:
            yield from _put_all(saver, thread_id, tuples, groups)
        except Exception as exc:
            raise BackendError(
                f"thread {thread_id!r} was deleted to be replaced, and writing the new one "
                f"failed: the imported thread is kept as {staging!r}"
            ) from exc
        yield Call(saver, "delete_thread", (staging,))
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
            stored = yield Call(saver, "put", (config, t.checkpoint, t.metadata, versions))
            for task_path, task_id, writes in calls:
                yield Call(saver, "put_writes", (stored, writes, task_id, task_path))
    except Exception:
        with contextlib.suppress(Exception):
            yield Call(saver, "delete_thread", (thread_id,))
        raise


class _Tally:
    """Counts for a `TransferReport`."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.threads = self.checkpoints = self.writes = 0
        self.skipped: list[str] = []

    def add(self, tuples: Sequence[CheckpointTuple]) -> None:
        self.threads += 1
        self.checkpoints += len(tuples)
        self.writes += sum(len(t.pending_writes or ()) for t in tuples)

    def report(self) -> TransferReport:
        return TransferReport(self.threads, self.checkpoints, self.writes, tuple(self.skipped),
                              time.perf_counter() - self.started)


def _check_if_exists(if_exists: str) -> None:
    if if_exists not in _IF_EXISTS:
        raise ConfigurationError(f"if_exists must be one of {_IF_EXISTS}, not {if_exists!r}")


def _export(saver: Any, out: Writable, thread_ids: Iterable[str] | None) -> Plan[TransferReport]:
    tally = _Tally()
    out.write(header_line())
    for thread_id in (yield from _thread_ids(saver, thread_ids)):
        tuples = yield from _read_thread(saver, thread_id, required=thread_ids is not None)
        if tuples:  # a listed thread that vanished meanwhile (deleted, expired) is left out
            for line in thread_lines(saver.serde, thread_id, tuples):
                out.write(line)
            tally.add(tuples)
    out.write(end_line(tally.threads, tally.checkpoints))
    return tally.report()


def _import(saver: Any, lines: Iterable[str], if_exists: str) -> Plan[TransferReport]:
    _check_if_exists(if_exists)
    tally = _Tally()
    for thread in read_threads(lines.splitlines() if isinstance(lines, str) else lines):
        tuples = to_tuples(saver.serde, thread)
        if (yield from _write_thread(saver, thread.thread_id, tuples, if_exists)):
            tally.add(tuples)
        else:
            tally.skipped.append(thread.thread_id)
    return tally.report()


def _copy(
    source: Any,
    target: Any,
    thread_ids: Iterable[str] | None,
    if_exists: str,
    on_thread: Callable[[ThreadCopied], Any] | None,
) -> Plan[TransferReport]:
    _check_if_exists(if_exists)
    tally = _Tally()
    ids = yield from _thread_ids(source, thread_ids)
    for done, thread_id in enumerate(ids, start=1):
        tuples = yield from _read_thread(source, thread_id, required=thread_ids is not None)
        written = bool(tuples) and (yield from _write_thread(target, thread_id, tuples,
                                                              if_exists))
        if written:
            tally.add(tuples)
        elif tuples:
            tally.skipped.append(thread_id)
        if on_thread is not None:
            on_thread(ThreadCopied(thread_id, done, len(ids), len(tuples) if written else 0,
                                   bool(tuples) and not written))
    return tally.report()


# --- the public functions -------------------------------------------------------------


def export_threads(
    saver: BaseCheckpointSaver, out: Writable, *, thread_ids: Iterable[str] | None = None
) -> TransferReport:
    """Write threads to ``out`` in the JSON Lines format (README, "Export, import and copy").

    Each thread is read with one ``list`` call and written once read, so memory
    holds one thread at a time. Values are written as the saver's serde
    serialises them: an ``EncryptedSerializer`` store exports ciphertext.

    Args:
        saver: Any sync-capable ``BaseCheckpointSaver``.
        out: A text stream to write to (e.g. ``open(path, "w")``, ``sys.stdout``).
        thread_ids: The threads to export, in this order; ``None`` for every
            thread, sorted by id (from ``list_threads`` where the saver has it,
            else from ``list(None)``).

    Returns:
        What was written.

    Raises:
        ConfigurationError: When a thread named in ``thread_ids`` has no
            checkpoints, or a checkpoint's metadata is not JSON.
        BackendError: When the store fails.
    """
    return run(_export(saver, out, thread_ids), execute)


async def aexport_threads(
    saver: BaseCheckpointSaver, out: Writable, *, thread_ids: Iterable[str] | None = None
) -> TransferReport:
    """Write threads to ``out`` with the saver's async methods; see `export_threads`."""
    return await arun(_export(saver, out, thread_ids), aexecute)


def import_threads(
    saver: BaseCheckpointSaver, lines: Iterable[str], *, if_exists: IfExists = "fail"
) -> TransferReport:
    """Write the threads of an export file into ``saver``, keeping ids, checkpoints and writes.

    Threads are imported in file order, each once all its lines were read and
    checked: a truncated or damaged file stops the import at the first bad
    thread, whose earlier threads stay imported (the error says where). Values
    are read with ``saver.serde``, so a file from an encrypted store needs the
    same key. Pending writes get task paths that reproduce their exported
    order (README, "Task paths").

    Args:
        saver: Any sync-capable ``BaseCheckpointSaver``.
        lines: The file's lines, header first: an open text file, a list of
            lines, or the whole text as one string.
        if_exists: For a thread id the saver already holds: ``"fail"``
            (raise), ``"skip"`` or ``"replace"`` (delete it, then import).

    Returns:
        What was written, and which threads were skipped.

    Raises:
        ConfigurationError: For input that is not this format, a newer format
            version, a truncated or damaged line, values ``saver.serde`` cannot
            read, or an existing thread with ``if_exists="fail"``.
        BackendError: When the store fails.
    """
    return run(_import(saver, lines, if_exists), execute)


async def aimport_threads(
    saver: BaseCheckpointSaver, lines: Iterable[str], *, if_exists: IfExists = "fail"
) -> TransferReport:
    """Import threads with the saver's async methods; see `import_threads`."""
    return await arun(_import(saver, lines, if_exists), aexecute)


def copy_threads(
    source: BaseCheckpointSaver,
    target: BaseCheckpointSaver,
    *,
    thread_ids: Iterable[str] | None = None,
    if_exists: IfExists = "fail",
    on_thread: Callable[[ThreadCopied], Any] | None = None,
) -> TransferReport:
    """Copy threads from one saver to another, as an export then an import would.

    Values pass as Python objects, never through a file, so the two savers
    may use different serdes (copying into an encrypted store encrypts).

    Args:
        source: The saver to read (sync-capable).
        target: The saver to write (sync-capable).
        thread_ids: The threads to copy, in order; ``None`` for all, sorted.
        if_exists: For a thread id the target already holds: ``"fail"``,
            ``"skip"`` or ``"replace"``; see `IfExists`.
        on_thread: Called after each thread with a `ThreadCopied` (for
            progress bars).

    Returns:
        What was copied, and which threads were skipped.

    Raises:
        ConfigurationError: When a thread named in ``thread_ids`` has no
            checkpoints, or the target holds one and ``if_exists="fail"``.
        BackendError: When either store fails.
    """
    return run(_copy(source, target, thread_ids, if_exists, on_thread), execute)


async def acopy_threads(
    source: BaseCheckpointSaver,
    target: BaseCheckpointSaver,
    *,
    thread_ids: Iterable[str] | None = None,
    if_exists: IfExists = "fail",
    on_thread: Callable[[ThreadCopied], Any] | None = None,
) -> TransferReport:
    """Copy threads with both savers' async methods; see `copy_threads`."""
    return await arun(_copy(source, target, thread_ids, if_exists, on_thread), aexecute)
