"""The ``persist-kit`` commands that look after a store: ``cleanup``, ``prune``, ``stats``
and ``migrate``.

Owns: their options, help text and output, the ``30d`` duration type, and exit code 3
when another run holds the store's maintenance lock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import Any

import click
from langgraph.checkpoint.base import BaseCheckpointSaver
from rich.table import Table
from rich.text import Text

from langgraph_persist_kit._core.urls import redact
from langgraph_persist_kit.cli.base import Failure, one_line, open_store
from langgraph_persist_kit.cli.output import echo_json, make_console
from langgraph_persist_kit.cli.progress import ProgressDisplay
from langgraph_persist_kit.maintenance import (
    BatchDone,
    CleanupReport,
    PruneReport,
    cleanup_expired,
    prune_threads,
)
from langgraph_persist_kit.maintenance.lock import MaintenanceLockedError, maintenance_lock

__all__ = [
    "DURATION",
    "LOCKED_EXIT_CODE",
    "Duration",
    "LockBusy",
    "cleanup_command",
    "migrate_command",
    "prune_command",
    "stats_command",
]

LOCKED_EXIT_CODE = 3
"""Exit code of ``cleanup`` / ``prune`` when another run holds the store's maintenance lock."""

URL = click.argument("url", metavar="URL")
DRY_RUN = click.option(
    "--dry-run", is_flag=True, help="Count what would be deleted; delete nothing."
)
AS_JSON = click.option(
    "--json", "as_json", is_flag=True, help="Print the report as a JSON object."
)


class Duration(click.ParamType):
    """A command-line duration: a whole number and a unit, ``90s``, ``15m``, ``12h``, ``30d``."""

    name = "duration"
    UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> timedelta:
        """``"30d"`` -> ``timedelta(days=30)``; a `timedelta` passes through.

        Raises:
            click.BadParameter: For anything else or a zero duration (exit code 2).
        """
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"\s*(\d{1,9})\s*([smhd])\s*", str(value), re.IGNORECASE)
        if not match:
            self.fail(f"{value!r} is not a duration: use e.g. 90s, 15m, 12h or 30d", param, ctx)
        amount = int(match[1])
        if amount == 0:
            self.fail(f"{value!r}: the duration must be more than zero", param, ctx)
        return timedelta(**{self.UNITS[match[2].lower()]: amount})

    @staticmethod
    def format(value: timedelta) -> str:
        """``timedelta(days=30)`` -> ``"30d"``: the largest unit that divides it."""
        seconds = int(value.total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds and seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"


DURATION = Duration()


class LockBusy(Failure):
    """Another maintenance run holds the store's lock: one ``error:`` line, exit code 3."""

    exit_code = LOCKED_EXIT_CODE


@contextmanager
def _holding_lock(saver: BaseCheckpointSaver) -> Iterator[None]:
    """The store's maintenance lock for the block, or `LockBusy` when another run has it."""
    with ExitStack() as stack:
        try:
            stack.enter_context(maintenance_lock(saver))
        except MaintenanceLockedError as exc:
            raise LockBusy(one_line(exc)) from exc
        yield


def _would(dry_run: bool, verb: str) -> str:
    return f"would {verb}" if dry_run else verb + "d"


def _echo(report: CleanupReport | PruneReport, text: str, as_json: bool) -> None:
    if as_json:
        echo_json(report._asdict())
    else:
        click.echo(text)


@click.command("cleanup")
@URL
@click.option(
    "--older-than", type=DURATION, required=True, metavar="DURATION",
    help="Delete threads whose last write is older than this: 90s, 15m, 12h, 30d.",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=500, show_default=True,
    metavar="N", help="Threads looked at per batch; each batch is one short transaction.",
)
@DRY_RUN
@AS_JSON
def cleanup_command(url: str, older_than: timedelta, batch_size: int, dry_run: bool,
                    as_json: bool) -> None:
    """Delete the threads of URL idle for longer than --older-than.

    A thread's last write is its newest checkpoint or pending write; each idle
    thread goes whole (checkpoints, writes, channel values). Graphs may keep
    running: each batch is short, and a thread written again meanwhile is kept.
    Holds the store's maintenance lock: exits with code 3, doing nothing, while
    another cleanup or prune runs on the same store. Progress goes to stderr,
    per batch of up to --batch-size threads; its last counts are the report's.
    """
    with (open_store(url) as saver, _holding_lock(saver),
          ProgressDisplay("cleaning up batches") as display):

        def show(batch: BatchDone) -> None:
            counts = (f"{batch.threads} threads ({batch.checkpoints} checkpoints) "
                      + ("to delete" if dry_run else "deleted"))
            display.update(batch.done, None, f"cleanup: batch {batch.done}: {counts} so far",
                           detail=counts)

        report = cleanup_expired(saver, older_than=older_than, batch_size=batch_size,
                                 dry_run=dry_run, on_batch=show)
    text = (f"{_would(dry_run, 'delete')} {report.threads_deleted} threads "
            f"({report.checkpoints_deleted} checkpoints) idle for more than "
            f"{Duration.format(older_than)} in {redact(url)}, in {report.seconds:.1f} s")
    _echo(report, text + (" (dry run: nothing was deleted)" if dry_run else ""), as_json)


@click.command("prune")
@URL
@click.option(
    "--keep-latest", type=click.IntRange(min=1), required=True, metavar="N",
    help="Checkpoints to keep per thread and namespace, newest first.",
)
@click.option(
    "--thread", "thread_ids", metavar="ID", multiple=True,
    help="Only this thread (repeat for several). Default: every thread.",
)
@DRY_RUN
@AS_JSON
def prune_command(url: str, keep_latest: int, thread_ids: tuple[str, ...], dry_run: bool,
                  as_json: bool) -> None:
    """Keep the --keep-latest newest checkpoints of each thread of URL.

    What the kept checkpoints need to read back exactly as before stays too
    (channel values they share, DeltaChannel ancestors); values nothing refers
    to any more are deleted, so the store shrinks. Each thread is one short
    transaction. Holds the store's maintenance lock: exits with code 3, doing
    nothing, while another cleanup or prune runs on the same store. Progress
    goes to stderr. A --thread that the store does not hold fails the command
    (exit 1) before anything is pruned; every --thread is checked first.
    """
    with open_store(url) as saver:
        _require_threads(saver, thread_ids, url)
        with _holding_lock(saver), ProgressDisplay("pruning threads") as display:
            report = _prune_with_progress(saver, keep_latest, thread_ids, dry_run, display)
    text = (f"{_would(dry_run, 'prune')} {report.threads_pruned} threads: "
            f"{_would(dry_run, 'delete')} {report.checkpoints_deleted} checkpoints, keeping "
            f"the {keep_latest} newest of each thread and namespace in {redact(url)}, "
            f"in {report.seconds:.1f} s")
    _echo(report, text + (" (dry run: nothing was deleted)" if dry_run else ""), as_json)


def _require_threads(saver: BaseCheckpointSaver, thread_ids: Sequence[str], url: str) -> None:
    """Check that the store holds each of ``thread_ids`` (a checkpoint in any namespace).

    Raises:
        Failure: Naming every thread it does not hold, in one line.
    """
    missing = [thread_id for thread_id in dict.fromkeys(thread_ids)
               if not list(saver.list({"configurable": {"thread_id": thread_id}}, limit=1))]
    if len(missing) == 1:
        raise Failure(f"thread {missing[0]!r} has no checkpoints in {redact(url)}; "
                      "nothing was pruned")
    if missing:
        raise Failure(f"threads {', '.join(map(repr, missing))} have no checkpoints in "
                      f"{redact(url)}; nothing was pruned")


def _prune_with_progress(saver: BaseCheckpointSaver, keep_latest: int,
                         thread_ids: Sequence[str], dry_run: bool,
                         display: ProgressDisplay) -> PruneReport:
    """`prune_threads`, its progress shown on ``display``."""

    def show(batch: BatchDone) -> None:
        counts = (f"{batch.threads} to prune, {batch.checkpoints} checkpoints to delete"
                  if dry_run else
                  f"{batch.threads} pruned, {batch.checkpoints} checkpoints deleted")
        display.update(batch.done, batch.total,
                       f"prune: {batch.done}/{batch.total} threads: {counts}", detail=counts)

    return prune_threads(saver, keep_latest=keep_latest, thread_ids=thread_ids or None,
                         dry_run=dry_run, on_batch=show)


STAT_LABELS = {
    "threads": "threads",
    "checkpoints": "checkpoints",
    "checkpoint_bytes": "checkpoint bytes",
    "writes": "pending writes",
    "write_bytes": "pending write bytes",
    "channel_values": "channel values",
    "channel_bytes": "channel value bytes",
    "rebuilt_bytes": "channel value bytes, rebuilt",
    "bytes": "bytes",
}


def _size(count: int) -> str:
    """``12,345,678 (11.8 MiB)``."""
    amount, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            break
        amount /= 1024
    return f"{count:,}" + ("" if unit == "B" else f" ({amount:.1f} {unit})")


@click.command("stats")
@URL
@click.option("--thread", "thread_id", metavar="ID", default=None,
              help="Count one thread: checkpoints, pending writes and each channel's bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as a JSON object.")
def stats_command(url: str, thread_id: str | None, as_json: bool) -> None:
    """Count the threads, checkpoints and bytes of the store at URL.

    Also pending writes and stored channel values. Bytes are as the store
    counts them: the SQLite file's pages in use, the PostgreSQL tables with
    their indexes, Redis MEMORY USAGE of the keys. With --thread, one thread's
    counts and the bytes of its stored payloads, channel by channel, largest
    first (PostgreSQL: after its compression).
    """
    with open_store(url) as saver:
        stats = getattr(saver, "stats", None)
        if stats is None:
            raise Failure(f"{type(saver).__name__} cannot count its store")
        counts: dict[str, Any] = stats(thread_id=thread_id)
    if thread_id is not None and not (counts["checkpoints"] or counts["writes"]):
        raise Failure(f"no thread {thread_id!r} in {redact(url)}: see persist-kit threads URL")
    if as_json:
        echo_json(counts)
        return
    console = make_console()
    # the title is a line of its own: as a table title, rich would fold it to the table's
    # width, and a long URL is more use whole (to copy, or to grep in a log)
    title = f"Store {redact(url)}" + ("" if thread_id is None else f", thread {thread_id}")
    console.print(Text(title, style="italic"), soft_wrap=True)
    table = Table()
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in counts.items():
        if key in STAT_LABELS:
            table.add_row(STAT_LABELS[key],
                          _size(value) if key.endswith("bytes") else f"{value:,}")
    console.print(table)
    if thread_id is not None:
        console.print(_channels_table(counts["channels"]))


def _channels_table(channels: list[dict[str, Any]]) -> Table:
    """One row per stored channel of a thread: namespace, channel, versions, bytes stored
    and rebuilt (the values' full length: far more than stored for a list kept as pieces)."""
    table = Table(title="channel values, largest first")
    table.add_column("namespace")
    table.add_column("channel")
    table.add_column("versions", justify="right")
    table.add_column("bytes", justify="right")
    table.add_column("rebuilt", justify="right")
    for channel in channels:
        table.add_row(channel["checkpoint_ns"] or "(root)", channel["channel"],
                      f"{channel['versions']:,}", _size(channel["bytes"]),
                      _size(channel["rebuilt_bytes"]))
    return table


def _schema_version(saver: BaseCheckpointSaver) -> int | None:
    """The newest schema version this release knows for ``saver``'s backend (``None``
    for a store of another package)."""
    hook = getattr(saver, "latest_schema_version", None)
    return None if hook is None else int(hook())


@click.command("migrate")
@URL
@click.option("--json", "as_json", is_flag=True, help="Print the result as a JSON object.")
def migrate_command(url: str, as_json: bool) -> None:
    """Apply pending schema migrations to the store at URL.

    Idempotent and safe to run from several processes at once (each migration
    is applied once, in the same transaction as its record). A SQLite file that
    does not exist is created. Fails (exit 1) when the store was migrated by a
    newer langgraph-persist-kit. Savers also migrate when they open; this
    command is for doing it ahead of a deploy, or with a database role that
    may change the schema while the application's role only reads it.
    """
    with open_store(url, create=True) as saver:  # opening runs setup(): the migrations
        version = _schema_version(saver)
    if as_json:
        echo_json({"url": redact(url), "schema_version": version, "current": True})
        return
    where = f" (version {version})" if version is not None else ""
    click.echo(f"schema of {redact(url)} is current{where}")
