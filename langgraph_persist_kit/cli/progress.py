"""How long ``persist-kit`` commands show progress: on stderr, a bar or plain lines.

Owns: `ProgressDisplay`, shared by ``copy``, ``cleanup`` and ``prune``; depends
on: rich.

On a terminal it draws a rich progress bar. Otherwise (cron, CI, a pipe) it
prints plain lines that a log keeps readable: one per 5% when the total is
known, else the first update and then at most one every `PLAIN_SECONDS`. When
the work ends without an error, the last update is shown whatever the pacing
(its line printed if it was skipped; the bar's total set to where it stopped),
so the progress ends on the same counts as the command's report.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["PLAIN_SECONDS", "PLAIN_STEPS", "ProgressDisplay"]

PLAIN_STEPS = 20
"""Plain lines printed for a known total (one per 5%)."""

PLAIN_SECONDS = 10.0
"""Seconds between plain lines when the total is not known."""


class ProgressDisplay:
    """Shows progress on stderr: a rich bar on a terminal, else plain lines.

    Use it as a context manager and call `update` after each unit of work.

    Args:
        label: What the bar is doing, e.g. ``"copying threads"``.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.console = Console(stderr=True, highlight=False)
        self.bar: Progress | None = None
        self.task: Any = None
        self.last_line: float | None = None
        self.pending: str | None = None  # the last update's line, if not printed

    def __enter__(self) -> ProgressDisplay:
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn(self.label, markup=False), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}", markup=False), TimeElapsedColumn(),
                console=self.console, transient=False,
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        failed = exc[0] is not None
        if self.bar is not None:
            if self.task is not None and not failed:
                task = self.bar.tasks[0]
                self.bar.update(self.task, total=task.completed)
            self.bar.__exit__(*exc)
        elif self.pending is not None and not failed:
            self._print(self.pending)

    def update(self, done: int, total: int | None, line: str, *, detail: str = "") -> None:
        """Show that ``done`` units of ``total`` are handled.

        Args:
            done: Units handled so far (threads, batches).
            total: Units there are, or ``None`` when not known in advance.
            line: The plain line for this point, printed when not on a terminal
                and due (see the module docstring).
            detail: Text beside the bar on a terminal, e.g. running counts.
        """
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task(self.label, total=total, detail=detail)
            self.bar.update(self.task, completed=done, total=total, detail=detail)
            return
        if total is not None:
            step = max(1, total // PLAIN_STEPS)
            due = done % step == 0 or done == total
        else:
            now = time.monotonic()
            due = self.last_line is None or now - self.last_line >= PLAIN_SECONDS
        if due:
            self._print(line)
        else:
            self.pending = line

    def _print(self, line: str) -> None:
        self.last_line = time.monotonic()
        self.pending = None
        self.console.print(line, markup=False, soft_wrap=True)
