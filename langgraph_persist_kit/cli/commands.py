"""The ``persist-kit`` commands of this release: ``demo``, ``threads`` and ``history``.

Owns: each command's options, help text and flow.
"""

from __future__ import annotations

from typing import Any

import click
from langchain_core.runnables import RunnableConfig
from rich.markup import escape

from langgraph_persist_kit._core.urls import redact
from langgraph_persist_kit.cli.base import (
    Failure,
    open_store,
    parse_filters,
    require_thread_listing,
)
from langgraph_persist_kit.cli.output import (
    checkpoint_record,
    echo_json,
    history_table,
    make_console,
    thread_record,
    threads_table,
)
from langgraph_persist_kit.sessions import fork_session
from langgraph_persist_kit.tree import CheckpointTree

__all__ = ["demo", "history", "threads"]

URL = click.argument("url", metavar="URL")


def _history_records(url: str, thread_id: str) -> list[dict[str, Any]]:
    """Every checkpoint of ``thread_id`` in every namespace, newest first.

    Raises:
        Failure: When the thread has no checkpoints.
    """
    with open_store(url) as saver:
        records = [
            checkpoint_record(checkpoint)
            for checkpoint in saver.list({"configurable": {"thread_id": thread_id}})
        ]
    if not records:
        raise Failure(f"thread {thread_id!r} has no checkpoints in {redact(url)}")
    return records


@click.command()
@click.option(
    "--db",
    "url",
    metavar="URL",
    default="sqlite:///persist-kit-demo.db",
    show_default=True,
    help="Store URL to keep the demo's threads in.",
)
def demo(url: str) -> None:
    """Run the quickstart: an agent that survives a restart.

    Runs a small LangGraph agent with scripted replies (no LLM, no network) on a
    fresh thread until it pauses at an interrupt(), resumes that thread in a NEW
    Python process, branches from the paused checkpoint (time travel), then
    prints the thread's history. Takes a few seconds.
    """
    from langgraph_persist_kit.demo import run_demo  # langgraph graphs: import on use

    console = make_console()
    thread_id = run_demo(url, console)
    records = _history_records(url, thread_id)
    console.print()
    console.print(history_table(records, title=f"History of {thread_id}, newest first"))
    console.print(
        "\n[bold]Next[/], try:\n"
        f"  persist-kit threads {escape(redact(url))}\n"
        f"  persist-kit history {escape(redact(url))} {escape(thread_id)} --format mermaid"
    )


@click.command()
@URL
@click.option(
    "--filter",
    "filters",
    metavar="KEY=VALUE",
    multiple=True,
    callback=parse_filters,
    help="Only threads whose latest checkpoint metadata has KEY equal to VALUE. "
    "VALUE is read as JSON when it parses (step=3 is the number 3, flag=true a boolean), "
    "else as a string. Repeat for several keys.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    metavar="N",
    help="Show at most N threads.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def threads(url: str, filters: dict[str, Any], limit: int | None, as_json: bool) -> None:
    """List the threads stored at URL, most recently updated first.

    URL names the store, e.g. sqlite:///agents.db (relative path) or
    sqlite:////var/data/agents.db (absolute path).
    """
    with open_store(url) as saver:
        listing = require_thread_listing(saver)
        records = [
            thread_record(info)
            for info in listing.list_threads(filter=filters or None, limit=limit)
        ]
    if as_json:
        echo_json(records)
        return
    console = make_console()
    if not records:
        console.print(f"No threads in {escape(redact(url))}"
                      + (" match the filter." if filters else "."))
        return
    console.print(threads_table(records))


@click.command()
@URL
@click.argument("thread_id", metavar="THREAD")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "mermaid"]),
    default=None,
    help="table (default), json, or mermaid: a graph TD diagram where branches made by "
    "time travel show as a tree.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def history(url: str, thread_id: str, output_format: str | None, as_json: bool) -> None:
    """Show every checkpoint of THREAD at URL, newest first.

    Lists the checkpoints of all namespaces (subgraphs included) with their
    step, source, parent and time.
    """
    if as_json and output_format not in (None, "json"):
        raise click.UsageError(f"--json conflicts with --format {output_format}")
    output_format = "json" if as_json else output_format or "table"
    records = _history_records(url, thread_id)
    if output_format == "json":
        echo_json(records)
    elif output_format == "mermaid":
        click.echo(CheckpointTree.from_records(thread_id, records).to_mermaid(), nl=False)
    else:
        make_console().print(history_table(records, title=f"History of {thread_id}"))


@click.command()
@URL
@click.argument("thread_id", metavar="THREAD")
@click.option("--checkpoint", "checkpoint_id", metavar="ID", default=None,
              help="The checkpoint to fork at (default: the thread's latest).")
@click.option("--new-thread", "new_thread_id", metavar="ID", default=None,
              help="The new thread's id (default: a random UUID).")
@click.option("--json", "as_json", is_flag=True, help='Print {"thread_id": ...} as JSON.')
def fork(url: str, thread_id: str, checkpoint_id: str | None, new_thread_id: str | None,
         as_json: bool) -> None:
    """Fork THREAD at URL into a new thread (see fork_session) and print its id.

    The new thread holds THREAD's history up to the checkpoint, ids included;
    continuing either thread never changes the other.
    """
    config: RunnableConfig = {
        "configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}}
    with open_store(url) as saver:
        new_id = fork_session(saver, config, new_thread_id=new_thread_id)
    if as_json:
        echo_json({"thread_id": new_id})
    else:
        click.echo(new_id)
