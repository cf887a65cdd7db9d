"""How ``persist-kit`` shows threads and checkpoints.

Owns: turning `ThreadInfo` and `CheckpointTuple` into plain records (the
``--json`` shapes of API.md section 6), and rendering them as JSON, rich
tables or a Mermaid diagram; depends on: rich, click, langgraph's checkpoint types.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import click
from langgraph.checkpoint.base import CheckpointTuple
from rich.console import Console
from rich.table import Table
from rich.text import Text

from langgraph_persist_kit._codec import ThreadInfo

__all__ = [
    "checkpoint_record",
    "echo_json",
    "history_mermaid",
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


def short_id(checkpoint_id: str) -> str:
    """The last 8 characters of a checkpoint id (the whole id when it is short).

    LangGraph's uuid6 ids begin with a timestamp, so checkpoints written in the
    same second share their first characters; the last ones are random.
    """
    return checkpoint_id if len(checkpoint_id) <= 12 else checkpoint_id[-8:]


def thread_record(info: ThreadInfo) -> dict[str, Any]:
    """The ``threads --json`` shape of one thread (ISO 8601 times)."""
    return {
        "thread_id": info.thread_id,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "metadata": info.metadata,
    }


def checkpoint_record(checkpoint: CheckpointTuple) -> dict[str, Any]:
    """The ``history --json`` shape of one checkpoint."""
    configurable = checkpoint.config["configurable"]
    parent = (checkpoint.parent_config or {}).get("configurable", {})
    metadata = dict(checkpoint.metadata or {})
    return {
        "checkpoint_id": configurable["checkpoint_id"],
        "parent_checkpoint_id": parent.get("checkpoint_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "step": metadata.get("step"),
        "source": metadata.get("source"),
        "ts": checkpoint.checkpoint.get("ts"),
        "metadata": metadata,
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


# --- mermaid -------------------------------------------------------------------------


def _label(text: str) -> str:
    """``text`` made safe inside a Mermaid ``["..."]`` label."""
    return text.replace('"', "#quot;")


def history_mermaid(records: Sequence[dict[str, Any]]) -> str:
    """A Mermaid ``graph TD`` of a thread's checkpoints, oldest at the top.

    One node per checkpoint, labelled ``step N, source, <short id>``, and an
    edge from each parent to its child, so a checkpoint that time travel
    branched from has several outgoing edges. Checkpoints of subgraphs are
    drawn inside a ``subgraph`` block per namespace, their first one joined to
    the enclosing graph's checkpoint by a dotted edge.

    Args:
        records: `checkpoint_record` dicts, in any order.

    Returns:
        The diagram, ending with a newline.
    """
    ordered = sorted(records, key=lambda r: (r["checkpoint_ns"], r["checkpoint_id"]))
    node_of = {(r["checkpoint_ns"], r["checkpoint_id"]): f"c{i}" for i, r in enumerate(ordered)}
    by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in ordered:
        by_namespace[record["checkpoint_ns"]].append(record)

    lines = ["graph TD"]
    for number, (namespace, members) in enumerate(sorted(by_namespace.items())):
        indent = "    "
        if namespace:
            lines.append(f'    subgraph ns{number}["{_label(namespace)}"]')
            indent = "        "
        for r in members:
            text = f"step {r['step']}, {r['source']}, {short_id(r['checkpoint_id'])}"
            node = node_of[(namespace, r["checkpoint_id"])]
            lines.append(f'{indent}{node}["{_label(text)}"]')
        if namespace:
            lines.append("    end")
    for r in ordered:
        node = node_of[(r["checkpoint_ns"], r["checkpoint_id"])]
        parent = node_of.get((r["checkpoint_ns"], r["parent_checkpoint_id"]))
        if parent is not None:
            lines.append(f"    {parent} --> {node}")
        elif (outer := _outer_checkpoint(r, node_of)) is not None:
            lines.append(f"    {outer} -.-> {node}")
    return "\n".join(lines) + "\n"


def _outer_checkpoint(record: dict[str, Any], node_of: dict[tuple[str, str], str]) -> str | None:
    """For the first checkpoint of a subgraph: the node of the enclosing graph's checkpoint.

    LangGraph records it in ``metadata["parents"]`` (namespace -> checkpoint id);
    the longest namespace is the immediately enclosing graph.
    """
    parents = record["metadata"].get("parents")
    if not isinstance(parents, dict) or not parents:
        return None
    namespace = max(parents, key=len)
    return node_of.get((namespace, parents[namespace]))
