"""What a benchmark suite is made of: sections of measured `Case`s and `Derived` rows.

Owns the data model every suite builds and every report reads: `Case` (a trial factory
per side, built afresh every round; setup untimed), `Derived` (a row computed from rows
measured before it), `Section`, `Target` (a row's goal), `Row` and `SectionResult` (the
figures), `SIDES` and the display `UNITS`. Building trials: `benchmarks.trials`; running
sections: `benchmarks.runner`; tables and JSON: `benchmarks.report`.
Design notes: benchmarks/README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

SIDES = ("ours", "official")
UNITS = {"us": (1e6, "µs"), "ms": (1e3, "ms"), "B": (1.0, "B"), "x": (1.0, "x")}


@dataclass
class Row:
    """The figures of one table row, in the row's display unit."""

    name: str
    ours: float | None
    official: float | None
    ours_p90: float | None = None
    official_p90: float | None = None
    unit: str = "us"
    note: str = ""
    has_ratio: bool = True  # False where ours/official means nothing (rows of ratios)

    @property
    def ratio(self) -> float | None:
        if not self.has_ratio or self.ours is None or not self.official:
            return None
        return self.ours / self.official


@dataclass(frozen=True)
class Target:
    """A goal for one row: ``text`` for the table; ``check`` says met (True) or missed."""

    text: str
    check: Callable[[Row], bool | None]

    @staticmethod
    def ratio_at_most(limit: float) -> Target:
        return Target(f"ratio <= {limit:g}",
                      lambda r: None if r.ratio is None else r.ratio <= limit)

    @staticmethod
    def ours_at_most(limit: float, text: str, strict: bool = False) -> Target:
        return Target(text, lambda r: None if r.ours is None else
                      r.ours < limit if strict else r.ours <= limit)


@dataclass
class Case:
    """A measured row: one trial factory per side, called afresh every round."""

    name: str
    trials: dict[str, Callable[[], Any]]
    unit: str = "us"
    kind: Literal["time", "value"] = "time"
    rounds: int | None = None  # at most this many rounds (None: the suite's count)
    target: Target | None = None
    note: str = ""


@dataclass
class Derived:
    """A row computed from rows measured before it in the same section."""

    name: str
    compute: Callable[[dict[str, Row]], Row]
    target: Target | None = None

    @staticmethod
    def quotient(name: str, top: str, bottom: str, note: str = "",
                 target: Target | None = None) -> Derived:
        """Per side, row ``top`` / row ``bottom`` (e.g. a growth factor); no ours/official ratio."""
        def compute(rows: dict[str, Row]) -> Row:
            a, b = rows[top], rows[bottom]
            return Row(name, a.ours / b.ours if a.ours and b.ours else None,
                       a.official / b.official if a.official and b.official else None,
                       unit="x", note=note, has_ratio=False)
        return Derived(name, compute, target)

    @staticmethod
    def scaled(name: str, source: str, factor: Callable[[], float], unit: str, note: str = "",
               target: Target | None = None) -> Derived:
        """Row ``source``'s medians times ``factor()`` (read when the row is computed)."""
        def compute(rows: dict[str, Row]) -> Row:
            r, k = rows[source], factor()
            return Row(name, None if r.ours is None else r.ours * k,
                       None if r.official is None else r.official * k, unit=unit, note=note)
        return Derived(name, compute, target)


    @staticmethod
    def floor(name: str, ping: str, trips: int, serde: str, note: str,
              more: Sequence[tuple[str, int]] = ()) -> Derived:
        """``trips`` x row ``ping`` (+ ``count`` x row ``row`` for each ``(row, count)`` of
        ``more``) + row ``serde``, their *ours* column in µs: the time a client doing those
        round trips (or commits) and nothing but that serialisation would take."""
        def compute(rows: dict[str, Row]) -> Row:
            parts = [(rows[row].ours, count) for row, count in [(ping, trips), *more]]
            s = rows[serde].ours
            if s is None or any(figure is None for figure, _ in parts):
                return Row(name, None, None, unit="us", note=note)
            total = s + sum((figure or 0.0) * count for figure, count in parts)
            return Row(name, total, None, unit="us", note=note)
        return Derived(name, compute)

    @staticmethod
    def over_floor(source: str, floor: str, earlier: Mapping[str, Row]) -> Derived:
        """Row ``source`` of an earlier section (read from ``earlier`` when computed), each
        side divided by row ``floor``'s figure: "how close to the floor" (1.0x is the floor)."""
        name = f"{source} / floor"

        def compute(rows: dict[str, Row]) -> Row:
            r, f = earlier[source], rows[floor]
            base = None if f.ours is None else f.ours / UNITS[f.unit][0]  # seconds

            def over(value: float | None) -> float | None:
                return None if value is None or not base else value / UNITS[r.unit][0] / base
            return Row(name, over(r.ours), over(r.official), unit="x", note=f"/ {floor}",
                       has_ratio=False)
        return Derived(name, compute)


@dataclass
class Section:
    title: str
    items: Sequence[Case | Derived]
    note: str = ""


@dataclass
class SectionResult:
    title: str
    rows: list[tuple[Row, Target | None]] = field(default_factory=list)
    note: str = ""
