"""The examples in ``examples/`` run: fork and replay (script and notebook), double texting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from langgraph_persist_kit import saver_from_url
from tests.helpers.backends import Space, store_url
from tests.helpers.paths import ROOT

EXAMPLES = ROOT / "examples"
SCRIPT = EXAMPLES / "fork_and_replay.py"
NOTEBOOK = EXAMPLES / "fork_and_replay.ipynb"


def run_fork_and_replay(tmp: Path, *args: str) -> str:
    """Run the script with ``tmp`` as its temp dir; check that it leaves nothing there."""
    tmp.mkdir()
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "TMPDIR": str(tmp), "TEMP": str(tmp),
           "TMP": str(tmp)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert list(tmp.iterdir()) == []  # no temporary directory left behind
    return done.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_fork_and_replay_script(tmp_path: Path, backend: str) -> None:
    with store_url(backend, Space(tmp_path, __name__)) as url:
        out = run_fork_and_replay(tmp_path / "tmp", "--db", url)
        with saver_from_url(url) as saver:  # the threads are in the store named
            assert len(list(saver.list_threads())) == 2
    assert "paused: Refund $120? (approve/reject)" in out
    # the fork and the original end differently, and the fork is not changed afterwards
    fork = out.split("fork (approve):", 1)[1].split("original (reject):", 1)[0]
    original = out.split("original (reject):", 1)[1].split("\n\n", 1)[0]
    assert "human said 'approve'" in fork and "tool: refunded $120" in fork
    assert "human said 'reject'" in original and "refunded" not in original
    assert "fork unchanged: approved=True" in out
    # the replay with an edited state takes a new path; the rejected branch stays
    assert "approval: auto-approved (small amount)" in out
    assert "tool: refunded $30" in out
    kept = out.split("original branch is still there:", 1)[1].split("\n\n", 1)[0]
    assert "human said 'reject'" in kept and "refunded" not in kept
    assert "branches: 2 (fork: 1)" in out
    mermaid = out.split("graph TD", 1)[1]
    assert "update" in mermaid and mermaid.count("-->") >= 6


def test_fork_and_replay_script_default_db(tmp_path: Path) -> None:
    # without --db: a SQLite file in a temp dir (under pytest's, through TMPDIR), removed
    out = run_fork_and_replay(tmp_path / "tmp")
    assert "branches: 2 (fork: 1)" in out
    assert out.startswith(f"database: sqlite:///{tmp_path / 'tmp'}")


def _code_cells(notebook: dict[str, Any]) -> list[str]:
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_fork_and_replay_notebook_is_nbformat_4() -> None:
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    assert {cell["cell_type"] for cell in notebook["cells"]} == {"markdown", "code"}
    for cell in notebook["cells"]:
        assert isinstance(cell["source"], list) and "metadata" in cell
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_fork_and_replay_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = _code_cells(notebook)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its temp dir under pytest's
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for number, source in enumerate(cells):
        if number == len(cells) - 1:  # before the last cell closes everything
            assert [p.name for p in tmp_path.glob("*/*.db")] == ["fork_and_replay.db"]
        # dont_inherit: this module's `from __future__ import annotations` must not leak in
        code = compile(source, f"{NOTEBOOK.name}[cell {number}]", "exec", dont_inherit=True)
        exec(code, namespace)
    assert list(tmp_path.iterdir()) == []  # the last cell removed the temporary directory
    assert namespace["fork_result"]["approved"] is True
    assert namespace["original_result"]["approved"] is False
    assert namespace["replayed"]["log"][-1] == "tool: refunded $30"
    tree = namespace["tree"]
    assert len(tree.branches()) == 2
    shown = tree._repr_markdown_()
    assert shown.startswith("```mermaid\ngraph TD\n") and shown.endswith("```")


def test_double_texting_script(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "double_texting.py"), "--db",
         f"sqlite:///{tmp_path / 'chat.db'}"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    parts = {line.split(".", 1)[0]: line for line in done.stdout.splitlines()
             if line[:2] in ("1.", "2.", "3.", "4.")}
    assert parts["2"].endswith("['200 ok', '200 ok']; the agent answered 2 time(s); "
                               "2 user message(s) kept")
    assert "'409 busy'" in parts["3"] and "'200 ok'" in parts["3"]
    assert parts["3"].endswith("answered 1 time(s); 1 user message(s) kept")
    assert parts["4"].count("409 stale") == 1 and parts["4"].count("200 ok") == 1
    assert parts["4"].endswith("answered 2 time(s); 1 user message(s) kept")
