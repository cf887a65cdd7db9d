"""The ``persist-kit`` command line (also ``python -m langgraph_persist_kit``).

Owns: the click group, its registered commands and `main`, the console script's entry
point.

Exit codes: 0 on success, 1 on failure (one ``error: ...`` line on stderr,
no traceback), 2 on usage errors, 3 when ``cleanup`` or ``prune`` finds
another maintenance run holding the store's lock (one ``error: ...`` line).
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from langgraph_persist_kit import __version__
from langgraph_persist_kit.cli.base import PersistKitGroup
from langgraph_persist_kit.cli.commands import demo, fork, history, threads
from langgraph_persist_kit.cli.maintenance import (
    cleanup_command,
    migrate_command,
    prune_command,
    stats_command,
)
from langgraph_persist_kit.cli.transfer import copy_command, export_command, import_command

__all__ = ["cli", "main"]


@click.group(cls=PersistKitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="persist-kit")
def cli() -> None:
    """Inspect and manage LangGraph checkpoints stored by langgraph-persist-kit.

    Every command takes a store URL: sqlite:///relative.db,
    sqlite:////absolute/path.db, postgresql://user@host/db (add ?schema=NAME
    for a schema other than public) or redis://host:6379/0 (add
    ?key_prefix=NAME for a prefix other than persist-kit). New here? Run
    `persist-kit demo`.

    Exit codes: 0 success, 1 failure, 2 usage error, 3 another cleanup or
    prune holds the store's maintenance lock (safe to retry later).
    """


cli.add_command(demo)
cli.add_command(threads)
cli.add_command(history)
cli.add_command(fork)
cli.add_command(export_command)
cli.add_command(import_command)
cli.add_command(copy_command)
cli.add_command(cleanup_command)
cli.add_command(prune_command)
cli.add_command(stats_command)
cli.add_command(migrate_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line and exit with its status code.

    Args:
        argv: The arguments (``sys.argv[1:]`` when ``None``).
    """
    cli.main(args=list(argv) if argv is not None else None)
