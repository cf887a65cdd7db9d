"""``persist-kit export``, ``import`` and ``copy`` through click's CliRunner on real stores.

A SQLite file is filled by real graphs (the scenario of ``test_transfer``);
the commands move its threads to PostgreSQL (``?schema=``), Redis
(``?key_prefix=``) and new SQLite files, and every result is checked by
exporting it again: the bytes must equal the source's export. The 1,000-thread
copy builds its threads with direct ``put`` calls.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from langgraph.checkpoint.base import empty_checkpoint

from langgraph_persist_kit import export_threads, saver_from_url
from langgraph_persist_kit.cli import cli
from langgraph_persist_kit.sqlite import SqliteSaver
from tests.helpers.backends import fresh_schema, postgres_url, redis_prefix
from tests.helpers.harness import Harness
from tests.helpers.transfer import GRAPHS, fill


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env=env)


def exported(url: str) -> str:
    """The store's threads in the export format, through the Python API."""
    out = io.StringIO()
    with saver_from_url(url) as saver:
        export_threads(saver, out)
    return out.getvalue()


def one_error_line(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def source(tmp_path: Path) -> str:
    """A SQLite store holding the five scenario threads."""
    path = tmp_path / "source.db"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        fill(Harness("sqlite", "sync", saver, None))
    return f"sqlite:///{path}"


@pytest.fixture
def pg_url() -> str:
    return f"{postgres_url(__name__)}?schema={fresh_schema()}"


@pytest.fixture
def redis_url() -> Iterator[str]:
    options: dict[str, Any] = {}
    with redis_prefix("redis", options) as url:
        yield f"{url}?key_prefix={options['key_prefix']}"


def test_export_then_import_everywhere(
    source: str, pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "threads.jsonl"
    result = run("export", source, "-o", str(file))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr.startswith("exported 5 threads (") and \
        f"to {file}" in result.stderr
    text = file.read_text()
    assert text == exported(source)
    assert run("export", source).stdout == text  # stdout by default, summary on stderr

    picked = run("export", source, "--thread", "sub", "--thread", "paused").stdout
    assert [json.loads(line)["thread_id"] for line in picked.splitlines()
            if '"type":"thread"' in line] == ["sub", "paused"]

    result = run("import", pg_url, str(file))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("imported 5 threads (") and "?schema=" in result.stdout
    assert exported(pg_url) == text
    result = run("import", redis_url, "-", input=text)  # - reads stdin
    assert result.exit_code == 0, result.output
    assert exported(redis_url) == text
    new_file = tmp_path / "new.db"  # a SQLite target that does not exist is created
    assert run("import", f"sqlite:///{new_file}", str(file)).exit_code == 0
    assert exported(f"sqlite:///{new_file}") == text

    error = one_error_line(run("import", pg_url, str(file)))
    assert "thread 'delta' already exists" in error and "--if-exists" in error
    result = run("import", pg_url, str(file), "--if-exists", "skip", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["threads"] == 0 and report["skipped"] == sorted(GRAPHS)
    result = run("import", redis_url, str(file), "--if-exists", "replace")
    assert result.exit_code == 0 and exported(redis_url) == text


def test_failures_are_one_line_and_usage_errors_exit_2(source: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    assert "no SQLite database" in one_error_line(run("export", f"sqlite:///{missing}"))
    assert "no SQLite database" in one_error_line(run("copy", f"sqlite:///{missing}", source))
    assert not missing.exists()

    not_ours = tmp_path / "notes.txt"
    not_ours.write_text("hello\n")
    error = one_error_line(run("import", f"sqlite:///{missing}", str(not_ours)))
    assert "not a langgraph-persist-kit threads file" in error
    assert not missing.exists()  # a wrong file creates no database

    text = run("export", source).stdout
    cut = tmp_path / "cut.jsonl"
    cut.write_text(text[: len(text) // 2])
    error = one_error_line(run("import", f"sqlite:///{tmp_path / 'cut.db'}", str(cut)))
    assert "not valid JSON, the file may be truncated" in error

    newer = tmp_path / "newer.jsonl"
    newer.write_text(text.replace('"version":1', '"version":2', 1))
    assert "newer" in one_error_line(run("import", source, str(newer)))
    assert "unknown store URL" in one_error_line(run("export", "mysql://db/x"))
    error = one_error_line(run("import", f"sqlite:///{tmp_path}/no/dir/x.db", str(cut)))
    assert "no directory" in error
    output = tmp_path / "no" / "dir" / "out.jsonl"
    one_error_line(run("export", source, "-o", str(output)))
    assert not output.exists()
    error = one_error_line(run("export", source, "--thread", "nope", "-o", str(tmp_path / "o")))
    assert "'nope' has no checkpoints" in error
    assert list(tmp_path.glob("o")) == [] and list(tmp_path.glob(".persist-kit-export-*")) == []

    for args in (["export"], ["import", source], ["copy", source],
                 ["import", source, str(tmp_path / "absent.jsonl")],
                 ["import", source, str(cut), "--if-exists", "merge"]):
        assert run(*args).exit_code == 2, args


def _build_threads(path: Path, count: int) -> None:
    """``count`` threads of two checkpoints and one pending write each, by direct puts."""
    with SqliteSaver.from_conn_string(str(path), synchronous="normal") as saver:
        for n in range(count):
            config: Any = {"configurable": {"thread_id": f"t-{n:04d}", "checkpoint_ns": ""}}
            version = None
            for step in (-1, 0):
                checkpoint = empty_checkpoint()
                version = saver.get_next_version(version)
                checkpoint["channel_values"] = {"n": n + step}
                checkpoint["channel_versions"] = {"n": version}
                metadata: Any = {"source": "input" if step < 0 else "loop", "step": step}
                config = saver.put(config, checkpoint, metadata, {"n": version})
            saver.put_writes(config, [("n", n + 1)], "task-1", "~__pregel_pull, x")


def test_copy_moves_1000_threads_to_postgres_with_progress(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "a.db"
    _build_threads(path, 1000)
    result = run("copy", f"sqlite:///{path}", pg_url)
    assert result.exit_code == 0, result.output
    progress = result.stderr.splitlines()  # not a terminal: one plain line per 5%
    assert progress == [f"copied {n}/1000 threads" for n in range(50, 1001, 50)]
    assert result.stdout.startswith(
        "copied 1000 threads (2000 checkpoints, 1000 pending writes) from sqlite:///")
    assert exported(pg_url) == exported(f"sqlite:///{path}")

    assert "1000 of the 1000 threads already exist" in one_error_line(
        run("copy", f"sqlite:///{path}", pg_url))
    result = run("copy", f"sqlite:///{path}", pg_url, "--if-exists", "skip", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped"][:2] == ["t-0000", "t-0001"]


def test_copy_draws_a_bar_on_a_terminal(source: str, redis_url: str, tmp_path: Path) -> None:
    env = {"TTY_COMPATIBLE": "1", "COLUMNS": "100"}  # rich treats stderr as a terminal
    result = run("copy", source, redis_url, "--thread", "fan", "--thread", "sub", env=env)
    assert result.exit_code == 0, result.output
    assert "copying threads" in result.stderr and "2/2" in result.stderr
    assert "━" in result.stderr and "copied 1/2" not in result.stderr
    assert result.stdout.startswith("copied 2 threads (")

    target = f"sqlite:///{tmp_path / 'copy.db'}"  # created
    result = run("copy", source, target)
    assert result.exit_code == 0, result.output
    assert exported(target) == exported(source)


def test_copy_checks_conflicts_first_and_says_skipped(source: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    assert run("copy", source, target, "--thread", "sub").exit_code == 0
    before = exported(target)
    error = one_error_line(run("copy", source, target))  # "sub" sorts fourth of five
    assert "1 of the 5 threads already exist in the target ('sub')" in error
    assert "nothing was copied" in error
    assert exported(target) == before  # no thread written before the conflict
    result = run("copy", source, target, "--if-exists", "skip")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == "5/5 threads: copied 4, skipped 1"
    assert "copied 4 threads (" in result.stdout and "skipped 1 that" in result.stdout


def test_a_truncated_import_says_what_it_imported(source: str, tmp_path: Path) -> None:
    lines = run("export", source).stdout.splitlines(keepends=True)
    starts = [n for n, line in enumerate(lines) if '"type":"thread"' in line]
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[: starts[3] + 2]))  # three threads, then one line of the 4th
    target = f"sqlite:///{tmp_path / 'cut.db'}"
    error = one_error_line(run("import", target, str(cut)))
    assert f"(line {starts[3] + 2})" in error and "it is truncated" in error
    assert "3 threads were imported and stay" in error
    assert exported(target).count('"type":"thread"') == 3


def test_export_to_a_missing_directory_names_it(source: str, tmp_path: Path) -> None:
    output = tmp_path / "no" / "dir" / "out.jsonl"
    error = one_error_line(run("export", source, "-o", str(output)))
    assert error == f"error: cannot write {str(output)!r}: no directory {str(output.parent)!r}"
