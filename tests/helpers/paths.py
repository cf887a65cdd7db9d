"""Where the repository's files are, wherever a test module sits under tests/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository: the package, docs/, examples/ and benchmarks/ are under it."""
