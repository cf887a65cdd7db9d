"""Export, import and copy threads between any checkpoint savers.

Owns: `export_threads`, `import_threads`, `copy_threads` and their async twins, the
reports they return and the rules for threads that already exist.

Each operation is written once as a plan that yields `Call` requests (a saver
method and its arguments, see `_core.calls`), so export, import and copy behave the
same in both modes.

Nothing read is rebuilt into arbitrary objects: both savers are used through
`transfer_view`. Where a saver keeps each value apart (ours, ``InMemorySaver``, the
official PostgreSQL savers) that is `raw_view`, so channel values and pending writes
move as their stored bytes (decrypted and encrypted again where a saver encrypts),
and what must be decoded (checkpoint bodies, ``InMemorySaver`` metadata) is decoded
with LangGraph's strict msgpack allowlist plus the ``allow_types`` given (docs/security.md). The
official savers that serialise values together (SQLite, plainredis) are read with
that strict serializer and written with objects; a type it would not rebuild stops
the copy (`refusing_blocked_types`). Their stores open by URL with
`official_saver_from_url` (`transfer.official`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from langgraph_persist_kit._core.calls import aexecute, execute
from langgraph_persist_kit._core.plan import Plan, arun, run
from langgraph_persist_kit._core.raw_values import raw_view, transfer_view
from langgraph_persist_kit.errors import ConfigurationError, PersistKitError
from langgraph_persist_kit.strict_serde import TypeName, refusing_blocked_types
from langgraph_persist_kit.transfer._format import (
    end_line,
    header_line,
    thread_lines,
)
from langgraph_persist_kit.transfer._reader import read_threads, to_tuples
from langgraph_persist_kit.transfer._threads import (
    read_thread,
    refuse_existing,
    thread_ids_of,
    write_thread,
)
from langgraph_persist_kit.transfer.official import official_saver_from_url

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
    "official_saver_from_url",
]

IfExists = Literal["fail", "skip", "replace"]
"""What import and copy do with a thread id the target already holds.

``"fail"`` (the default) raises `ConfigurationError` before writing anything of
that thread; ``"skip"`` leaves the target's thread as it is and goes on;
``"replace"`` first writes the imported thread whole under a staging id (a
failure there leaves the target's thread as it was), then deletes the target's
thread and writes it again under its own id. Should that second write fail, the
error names the staging id the imported thread is kept under; a process killed
in between leaves a ``<id>.persist-kit-import-<hex>`` thread, which
``persist-kit threads`` lists. It is not one transaction.
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


def _export(saver: Any, out: Writable, thread_ids: Iterable[str] | None,
            allow_types: Iterable[TypeName]) -> Plan[TransferReport]:
    saver = raw_view(saver, allow_types)
    tally = _Tally()
    out.write(header_line())
    for thread_id in (yield from thread_ids_of(saver, thread_ids)):
        tuples = yield from read_thread(saver, thread_id, required=thread_ids is not None)
        if tuples:  # a listed thread that vanished meanwhile (deleted, expired) is left out
            for line in thread_lines(saver.serde, thread_id, tuples):
                out.write(line)
            tally.add(tuples)
    out.write(end_line(tally.threads, tally.checkpoints))
    return tally.report()


def _import(saver: Any, lines: Iterable[str], if_exists: str,
            allow_types: Iterable[TypeName]) -> Plan[TransferReport]:
    _check_if_exists(if_exists)
    saver = raw_view(saver, allow_types)
    tally = _Tally()
    try:
        for thread in read_threads(lines.splitlines() if isinstance(lines, str) else lines):
            tuples = to_tuples(saver.serde, thread)
            if (yield from write_thread(saver, thread.thread_id, tuples, if_exists)):
                tally.add(tuples)
            else:
                tally.skipped.append(thread.thread_id)
    except PersistKitError as exc:
        if tally.threads or tally.skipped:
            raise type(exc)(f"{exc} (before it, {_done(tally)})") from exc
        raise
    return tally.report()


def _done(tally: _Tally) -> str:
    """What an import did before it failed, for the error message."""
    text = f"{tally.threads} threads were imported and stay"
    if tally.skipped:
        text += f", {len(tally.skipped)} skipped"
    return text


def _copy(
    source: Any,
    target: Any,
    thread_ids: Iterable[str] | None,
    if_exists: str,
    on_thread: Callable[[ThreadCopied], Any] | None,
    allow_types: Iterable[TypeName],
) -> Plan[TransferReport]:
    _check_if_exists(if_exists)
    source, target = transfer_view(source, allow_types), transfer_view(target, allow_types)
    tally = _Tally()
    ids = yield from thread_ids_of(source, thread_ids)
    if if_exists == "fail":
        yield from refuse_existing(target, ids)
    for done, thread_id in enumerate(ids, start=1):
        with refusing_blocked_types(f"thread {thread_id!r}"):  # a strict view loses no type
            tuples = yield from read_thread(source, thread_id, required=thread_ids is not None)
        written = bool(tuples) and (yield from write_thread(target, thread_id, tuples,
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
    saver: BaseCheckpointSaver, out: Writable, *, thread_ids: Iterable[str] | None = None,
    allow_types: Iterable[TypeName] = (),
) -> TransferReport:
    """Write threads to ``out`` in the JSON Lines format (README, "Export, import and copy").

    Each thread is read with one ``list`` call and written once read, so memory
    holds one thread at a time. Values are written as the store holds them,
    never decoded: an ``EncryptedSerializer`` store exports ciphertext.

    Args:
        saver: Any sync-capable ``BaseCheckpointSaver``.
        out: A text stream to write to (e.g. ``open(path, "w")``, ``sys.stdout``).
        thread_ids: The threads to export, in this order; ``None`` for every
            thread, sorted by id (from ``list_threads`` where the saver has it,
            else from ``list(None)``).
        allow_types: Types the strict decoding of checkpoint bodies may rebuild
            besides LangGraph's safe ones (``"module.Class"``, a class, or a
            ``(module, name)`` pair); bodies written by LangGraph need none.

    Returns:
        What was written.

    Raises:
        ConfigurationError: When a thread named in ``thread_ids`` has no
            checkpoints, or a checkpoint's metadata is not JSON.
        BackendError: When the store fails.
    """
    return run(_export(saver, out, thread_ids, allow_types), execute)


async def aexport_threads(
    saver: BaseCheckpointSaver, out: Writable, *, thread_ids: Iterable[str] | None = None,
    allow_types: Iterable[TypeName] = (),
) -> TransferReport:
    """Write threads to ``out`` with the saver's async methods; see `export_threads`."""
    return await arun(_export(saver, out, thread_ids, allow_types), aexecute)


def import_threads(
    saver: BaseCheckpointSaver, lines: Iterable[str], *, if_exists: IfExists = "fail",
    allow_types: Iterable[TypeName] = (),
) -> TransferReport:
    """Write the threads of an export file into ``saver``, keeping ids, checkpoints and writes.

    Threads are imported in file order, each once all its lines were read and
    checked: a truncated or damaged file stops the import at the first bad
    thread, whose earlier threads stay imported (the error names the line and
    says how many threads were imported). Values are stored as the file gives
    them, never decoded (only decrypted and encrypted again by an
    ``EncryptedSerializer`` saver, so a file from an encrypted store needs the
    same key); checkpoint bodies are decoded strictly. Pending writes get task
    paths that reproduce their exported order (README, "Task paths").

    Args:
        saver: Any sync-capable ``BaseCheckpointSaver``.
        lines: The file's lines, header first: an open text file, a list of
            lines, or the whole text as one string.
        if_exists: For a thread id the saver already holds: ``"fail"``
            (raise), ``"skip"`` or ``"replace"`` (see `IfExists`).
        allow_types: See `export_threads`.

    Returns:
        What was written, and which threads were skipped.

    Raises:
        ConfigurationError: For input that is not this format, a newer format
            version, a truncated or damaged line, values ``saver.serde`` cannot
            read, or an existing thread with ``if_exists="fail"``.
        BackendError: When the store fails.
    """
    return run(_import(saver, lines, if_exists, allow_types), execute)


async def aimport_threads(
    saver: BaseCheckpointSaver, lines: Iterable[str], *, if_exists: IfExists = "fail",
    allow_types: Iterable[TypeName] = (),
) -> TransferReport:
    """Import threads with the saver's async methods; see `import_threads`."""
    return await arun(_import(saver, lines, if_exists, allow_types), aexecute)


def copy_threads(source: BaseCheckpointSaver, target: BaseCheckpointSaver, *,
                 thread_ids: Iterable[str] | None = None, if_exists: IfExists = "fail",
                 on_thread: Callable[[ThreadCopied], Any] | None = None,
                 allow_types: Iterable[TypeName] = ()) -> TransferReport:
    """Copy threads from one saver to another, as an export then an import would.

    Values pass as their stored bytes, never decoded and never through a
    file; an ``EncryptedSerializer`` on either side decrypts or encrypts them,
    so the two savers may use different keys, or one none. The official SQLite
    saver and plainredis serialise values together, so from and to them values
    pass as objects, read with the strict twin of the source's serializer; a type
    it does not rebuild fails that thread before it is written (allow it with
    ``allow_types``). Stores by URL: `official_saver_from_url`. With
    ``if_exists="fail"`` every thread is checked first: a conflict copies nothing.

    Args:
        source: The saver to read (sync-capable).
        target: The saver to write (sync-capable).
        thread_ids: The threads to copy, in order; ``None`` for all, sorted.
        if_exists: For a thread id the target already holds: ``"fail"``,
            ``"skip"`` or ``"replace"``; see `IfExists`.
        on_thread: Called after each thread with a `ThreadCopied` (for
            progress bars).
        allow_types: See `export_threads`.

    Returns:
        What was copied, and which threads were skipped.

    Raises:
        ConfigurationError: When a thread named in ``thread_ids`` has no
            checkpoints, the target holds one and ``if_exists="fail"``, or a value
            that must be decoded is of a type ``allow_types`` does not allow.
        BackendError: When either store fails.
    """
    return run(_copy(source, target, thread_ids, if_exists, on_thread, allow_types), execute)


async def acopy_threads(source: BaseCheckpointSaver, target: BaseCheckpointSaver, *,
                        thread_ids: Iterable[str] | None = None, if_exists: IfExists = "fail",
                        on_thread: Callable[[ThreadCopied], Any] | None = None,
                        allow_types: Iterable[TypeName] = ()) -> TransferReport:
    """Copy threads with both savers' async methods; see `copy_threads`."""
    return await arun(_copy(source, target, thread_ids, if_exists, on_thread, allow_types),
                      aexecute)
