"""How ``persist-kit`` shows threads and checkpoints.

Owns: turning `ThreadInfo` into plain records (the ``--json`` shapes of API.md section
6), and rendering records as JSON or rich tables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from langgraph_persist_kit.tree import checkpoint_record, short_id
from langgraph_persist_kit.types import ThreadInfo

__all__ = [
    "checkpoint_record",
    "echo_json",
    "history_table",
    "make_console",
    "short_id",
    "thread_record",
    "threads_table",
]

PIPE_WIDTH = 120
"""Columns rich lays out for when stdout is not a terminal and ``COLUMNS`` is unset."""


def make_console() -> Console:
    """A rich console on the current stdout.

    On a terminal it uses the terminal's width and colours. Piped or captured,
    it prints plain text (rich turns colour off) laid out for `PIPE_WIDTH`
    columns, so checkpoint ids are not folded at rich's default of 80.
    """
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (no colour, never wrapped)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# --- records -------------------------------------------------------------------------





def thread_record(info: ThreadInfo) -> dict[str, Any]:
    """The ``threads --json`` shape of one thread (ISO 8601 times)."""
    return {
        "thread_id": info.thread_id,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "metadata": info.metadata,
    }





# --- tables --------------------------------------------------------------------------


def _when(value: str | datetime | None) -> str:
    """A UTC time as ``2025-01-31 12:00:05`` (the text unchanged if it is not ISO)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _compact(metadata: dict[str, Any], *, leave_out: Sequence[str] = ()) -> str:
    """Metadata as compact JSON, without ``leave_out`` keys and an empty ``parents``."""
    shown = {
        key: value
        for key, value in metadata.items()
        if key not in leave_out and not (key == "parents" and not value)
    }
    return json.dumps(shown, ensure_ascii=False, default=str) if shown else ""


def threads_table(records: Iterable[dict[str, Any]], *, title: str | None = None) -> Table:
    """A rich table of `thread_record` dicts."""
    table = Table(title=title, title_justify="left")
    table.add_column("thread", no_wrap=True, style="bold")
    table.add_column("updated (UTC)", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("metadata of the latest checkpoint")
    for record in records:
        table.add_row(
            Text(record["thread_id"]),
            _when(record["updated_at"]),
            _when(record["created_at"]),
            Text(_compact(record["metadata"])),
        )
    return table


def history_table(records: Iterable[dict[str, Any]], *, title: str | None = None) -> Table:
    """A rich table of `checkpoint_record` dicts, in the order given (newest first)."""
    table = Table(title=title, title_justify="left")
    table.add_column("step", justify="right", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("checkpoint", no_wrap=True, style="bold")
    table.add_column("parent", no_wrap=True)
    table.add_column("namespace", overflow="fold")
    table.add_column("time (UTC)", no_wrap=True)
    for record in records:
        parent = record["parent_checkpoint_id"]
        table.add_row(
            "" if record["step"] is None else str(record["step"]),
            Text(str(record["source"] or "")),
            Text(record["checkpoint_id"]),
            Text("..." + short_id(parent) if parent else "-"),
            Text(record["checkpoint_ns"] or "(root)"),
            _when(record["ts"]),
        )
    return table
