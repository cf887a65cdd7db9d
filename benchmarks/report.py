"""A run's report: its rich tables, the machine it ran on, its JSON.

Owns the formatting of figures (`fmt`, `with_p90`, `mark`, `verdict`), the tables
(`render` for a section; `print_table` for the other suites' own tables), the header
(`machine_info`, `print_header`) and the JSON (`to_json`, `payload`, `dump_json`).
Nothing here measures.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.cases import UNITS, Row, SectionResult, Target


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "B":
        return f"{value:,.0f} B ({value / 1e6:,.2f} MB)" if value >= 1e5 else f"{value:,.0f} B"
    if unit == "x":
        return f"{value:.2f}x"
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:,.{digits}f} {UNITS[unit][1]}"


def with_p90(value: float | None, p90: float | None, unit: str) -> str:
    """A table cell: the median, and the p90 underneath in grey."""
    return fmt(value, unit) + ("" if p90 is None else f"\n[dim]p90 {fmt(p90, unit)}[/]")


def mark(met: bool | None) -> str:
    """A target's verdict in a table: met, MISSED, or n/a (no figure to judge)."""
    return "n/a" if met is None else "[green]met[/]" if met else "[red]MISSED[/]"


def verdict(target: Target | None, row: Row) -> tuple[str, bool | None]:
    if target is None:
        return "", None
    met = target.check(row)
    return f"{target.text}: {mark(met)}", met


def print_table(console: Console, table: Table, note: str = "") -> None:
    """The table, its ``note`` in grey under it, and a blank line."""
    console.print(table)
    if note:
        console.print(f"[dim]{note}[/]")
    console.print()


def render(console: Console, result: SectionResult) -> None:
    table = Table(title=result.title, title_justify="left")
    table.add_column("case", overflow="fold", max_width=56)
    for column in ("ours", "official", "ratio"):
        table.add_column(column, justify="right")
    table.add_column("target")
    for row, target in result.rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
        name = row.name + (f"\n[dim]{row.note}[/]" if row.note else "")
        table.add_row(name, with_p90(row.ours, row.ours_p90, row.unit),
                      with_p90(row.official, row.official_p90, row.unit), ratio,
                      verdict(target, row)[0])
    print_table(console, table, result.note)


def machine_info(packages: Sequence[str], **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0], **extra,
                            "cpu_count": os.cpu_count(), "platform": platform.platform()}
    for name in packages:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


def print_header(console: Console, info: dict[str, Any], command: str, *extra: str) -> None:
    console.print(f"[bold]command:[/] {command}")
    console.print("[bold]machine:[/] " + ", ".join(f"{k}={v}" for k, v in info.items()))
    for line in extra:
        console.print(line)
    console.print()


def to_json(results: Sequence[SectionResult], info: dict[str, Any], command: str,
            settings: dict[str, Any]) -> dict[str, Any]:
    sections = [{"title": r.title, "note": r.note, "rows": [{
        "case": row.name, "unit": row.unit, "note": row.note,
        "ours": row.ours, "official": row.official,
        "ours_p90": row.ours_p90, "official_p90": row.official_p90, "ratio": row.ratio,
        "target": target.text if target else None, "target_met": verdict(target, row)[1],
    } for row, target in r.rows]} for r in results]
    return payload(command, info, settings, sections=sections)


def payload(command: str, info: dict[str, Any], settings: dict[str, Any],
            **figures: Any) -> dict[str, Any]:
    """A run's JSON: how it was started, the machine, its sizes, then its figures."""
    return {"command": command, "machine": info, "settings": settings, **figures}


def dump_json(path: str, payload: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
