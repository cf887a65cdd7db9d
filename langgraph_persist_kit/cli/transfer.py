"""The ``persist-kit`` commands that move threads: ``export``, ``import`` and ``copy``.

Owns: their options, help text and the opening of a store to write into (created when it
is a SQLite file that does not exist yet).

Values move as stored bytes (`transfer` reads and writes through raw views) and
every store is opened with a strict serializer: no command rebuilds an arbitrary
object from a store or a file (docs/security.md).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from itertools import chain
from typing import IO, cast

import click

from langgraph_persist_kit._core.urls import redact
from langgraph_persist_kit.cli.base import ALLOW_TYPE, Failure, command_allow_types, open_store
from langgraph_persist_kit.cli.progress import ProgressDisplay
from langgraph_persist_kit.transfer import (
    IfExists,
    ThreadCopied,
    TransferReport,
    copy_threads,
    export_threads,
    import_threads,
)
from langgraph_persist_kit.transfer._format import check_header
from langgraph_persist_kit.transfer._reader import numbered_lines

__all__ = ["copy_command", "export_command", "import_command"]

THREADS = click.option(
    "--thread",
    "thread_ids",
    metavar="ID",
    multiple=True,
    help="Only this thread (repeat for several). Default: every thread, sorted by id.",
)
IF_EXISTS = click.option(
    "--if-exists",
    type=click.Choice(["fail", "skip", "replace"]),
    default="fail",
    show_default=True,
    help="For a thread the target already holds: fail before writing it, skip it, or "
    "replace it (delete, then write).",
)
AS_JSON = click.option(
    "--json", "as_json", is_flag=True, help="Print the report as a JSON object."
)


def _summary(verb: str, report: TransferReport, where: str) -> str:
    text = (f"{verb} {report.threads} threads ({report.checkpoints} checkpoints, "
            f"{report.writes} pending writes) {where} in {report.seconds:.1f} s")
    if report.skipped:
        text += f"; skipped {len(report.skipped)} that the target already holds"
    return text


def _progress_text(progress: ThreadCopied, skipped: int) -> str:
    """``copied 3/6 threads``; with skipped threads ``3/6 threads: copied 1, skipped 2``."""
    if not skipped:
        return f"copied {progress.done}/{progress.total} threads"
    return (f"{progress.done}/{progress.total} threads: copied {progress.done - skipped}, "
            f"skipped {skipped}")


def _echo_report(report: TransferReport, text: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report._asdict(), indent=2, ensure_ascii=False))
    else:
        click.echo(text)


@contextmanager
def _output_file(path: str) -> Iterator[IO[str]]:
    """``path`` opened for writing through a temporary file, renamed over it on success.

    A failed export leaves ``path`` as it was (no half-written file).

    Raises:
        Failure: When ``path``'s directory does not exist.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise Failure(f"cannot write {path!r}: no directory {folder!r}")
    with tempfile.NamedTemporaryFile(
        "w", encoding="ascii", newline="\n", dir=folder, prefix=".persist-kit-export-",
        delete=False,
    ) as handle:
        try:
            yield handle
            handle.close()
            os.replace(handle.name, path)
        except BaseException:
            handle.close()
            with suppress(FileNotFoundError):
                os.unlink(handle.name)
            raise


@click.command("export")
@click.argument("url", metavar="URL")
@THREADS
@ALLOW_TYPE
@click.option(
    "-o", "--output", metavar="FILE", default="-", show_default=True,
    help="File to write (replaced only once the export succeeded); - for stdout.",
)
def export_command(url: str, thread_ids: tuple[str, ...], output: str) -> None:
    """Write the threads stored at URL as JSON Lines.

    The format is the same whichever backend URL names (see the README,
    "Export, import and copy"); checkpoint ids are kept. Channel values are
    written as the store holds them, never decoded. A summary goes to stderr.
    """
    with open_store(url) as saver:
        stdout: AbstractContextManager[IO[str]] = nullcontext(sys.stdout)
        with stdout if output == "-" else _output_file(output) as out:
            report = export_threads(saver, out, thread_ids=thread_ids or None,
                                    allow_types=command_allow_types())
    where = "to stdout" if output == "-" else f"to {output}"
    click.echo(_summary("exported", report, where), err=True)


@click.command("import")
@click.argument("url", metavar="URL")
@click.argument("file", metavar="FILE", type=click.File("r", encoding="utf-8"))
@IF_EXISTS
@ALLOW_TYPE
@AS_JSON
def import_command(url: str, file: IO[str], if_exists: str, as_json: bool) -> None:
    """Write the threads of FILE (made by `persist-kit export`; - for stdin) into URL.

    Thread and checkpoint ids are kept. A SQLite file that does not exist is
    created. Threads are written one by one once each was read whole, so a
    truncated FILE fails at its first incomplete thread and keeps the ones
    before it (the error names the line and how many were imported). Values
    are stored as FILE gives them, never decoded.
    """
    lines = (text for _number, text in numbered_lines(file))
    first = next(lines, "")
    check_header(first)  # before opening URL: a wrong file creates no database
    with open_store(url, create=True) as saver:
        report = import_threads(saver, chain([first], lines), if_exists=cast(IfExists, if_exists),
                                allow_types=command_allow_types())
    _echo_report(report, _summary("imported", report, f"into {redact(url)}"), as_json)


@click.command("copy")
@click.argument("source", metavar="SRC_URL")
@click.argument("target", metavar="DST_URL")
@THREADS
@IF_EXISTS
@ALLOW_TYPE
@AS_JSON
def copy_command(source: str, target: str, thread_ids: tuple[str, ...], if_exists: str,
         as_json: bool) -> None:
    """Copy threads from the store at SRC_URL to the one at DST_URL.

    Works between any two backends (sqlite:///..., postgresql://...?schema=...,
    redis://...?key_prefix=...) and the official savers' stores, either side:
    langgraph-sqlite:///..., langgraph-postgres://..., langgraph-plainredis://...
    (?prefix=lg). Ids are kept, and the result is what export then import would
    give. A SQLite DST_URL that does not exist is created.
    With --if-exists fail (the default), every thread is checked first and a
    conflict copies nothing. Progress goes to stderr: a bar on a terminal,
    else a line per 5%.
    """
    with (open_store(source, official=True) as src,
          open_store(target, create=True, official=True) as dst,
          ProgressDisplay("copying threads") as display):
        skipped = 0

        def show(progress: ThreadCopied) -> None:
            nonlocal skipped
            skipped += progress.skipped
            display.update(progress.done, progress.total, _progress_text(progress, skipped))

        report = copy_threads(src, dst, thread_ids=thread_ids or None,
                              if_exists=cast(IfExists, if_exists), on_thread=show,
                              allow_types=command_allow_types())
    where = f"from {redact(source)} to {redact(target)}"
    _echo_report(report, _summary("copied", report, where), as_json)
