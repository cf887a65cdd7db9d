"""The examples in ``examples/`` run: fork and replay (script and notebook), double texting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPT = EXAMPLES / "fork_and_replay.py"
NOTEBOOK = EXAMPLES / "fork_and_replay.ipynb"


def test_fork_and_replay_script(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert db.exists()
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
    # without --db the script makes a temp dir: TMPDIR puts it under pytest's
    env = {**os.environ, "TMPDIR": str(tmp_path), "TEMP": str(tmp_path), "TMP": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "branches: 2 (fork: 1)" in done.stdout
    assert list(tmp_path.glob("*/fork_and_replay.db"))


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


def test_fork_and_replay_notebook_runs(tmp_path: Path) -> None:
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = _code_cells(notebook)
    # keep the database in pytest's temp dir instead of a fresh mkdtemp()
    assert sum(cell.count("tempfile.mkdtemp()") for cell in cells) == 1
    cells = [cell.replace("tempfile.mkdtemp()", repr(str(tmp_path))) for cell in cells]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for number, source in enumerate(cells):
        # dont_inherit: this module's `from __future__ import annotations` must not leak in
        code = compile(source, f"{NOTEBOOK.name}[cell {number}]", "exec", dont_inherit=True)
        exec(code, namespace)
    assert (tmp_path / "fork_and_replay.db").exists()
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
