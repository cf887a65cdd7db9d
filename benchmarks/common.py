"""The old home of the benchmark machinery, kept only for the smoke test's ``common.<name>``.

The machinery is split by concern: `benchmarks.cases` (what a suite is made of),
`benchmarks.trials` (building and timing a trial), `benchmarks.runner` (interleaved
rounds, medians), `benchmarks.report` (tables, machine info, JSON) and `benchmarks.cli`
(a suite's ``main``). The benchmarks import from those; this module re-exports just the
names ``tests/integration/test_benchmarks_smoke.py`` reads from it.
"""

from __future__ import annotations

from benchmarks.cases import SIDES, Case, Section
from benchmarks.report import machine_info, to_json
from benchmarks.runner import percentile, run_suite

__all__ = ["SIDES", "Case", "Section", "machine_info", "percentile", "run_suite", "to_json"]
