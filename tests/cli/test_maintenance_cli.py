"""``persist-kit cleanup``, ``prune``, ``stats`` and ``migrate`` through click's CliRunner:
their reports and progress lines, usage errors, help, and a section of docs/cli.md for
every command.

Each test runs on a real store of every backend: a SQLite file, a PostgreSQL
schema (``?schema=``) and a Redis key prefix (``?key_prefix=``). Threads are
made old without a race against the load: a second passes after they are
written, the cleanup's clock is set to a day after that moment, and a second
passes before any thread that must stay is written. The maintenance lock is in
test_maintenance_cli_lock.py, the crontab and Kubernetes examples in
test_maintenance_cli_examples.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

import click
import pytest
from langgraph.graph.message import add_messages

from langgraph_persist_kit import saver_from_url
from langgraph_persist_kit.cli import cli, progress
from langgraph_persist_kit.cli.maintenance import DURATION, Duration
from tests.helpers.graphs import one_node_graph
from tests.helpers.maintenance import cutoff_after_a_gap
from tests.helpers.maintenance_cli import (
    as_json,
    checkpoints_of,
    counts,
    error_line,
    fill,
    ok,
    run,
)
from tests.helpers.paths import ROOT


def chat_graph() -> Any:
    """A one-node chat: the state is an ``add_messages`` list, the node answers."""
    def bot(state: Chat) -> dict[str, Any]:
        return {"messages": [("ai", f"answer {len(state['messages'])} " + "text " * 40)]}

    return one_node_graph(Chat, bot)


class Chat(TypedDict):
    messages: Annotated[list, add_messages]

# --- cleanup, prune, stats, migrate --------------------------------------------------


def test_cleanup_deletes_idle_threads_only(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(url, ["old-1", "old-2", "old-3"])
    cutoff_after_a_gap(monkeypatch)
    fill(url, ["fresh"])
    before = counts(url)

    report = as_json("cleanup", url, "--older-than", "1d", "--dry-run", "--batch-size", "2")
    assert report["threads_deleted"] == 3 and report["checkpoints_deleted"] == 12
    assert report["dry_run"] is True and report["seconds"] >= 0
    assert set(report) == {"threads_deleted", "checkpoints_deleted", "dry_run", "seconds"}
    assert counts(url)["threads"] == before["threads"] == 4  # nothing deleted

    result = ok(run("cleanup", url, "--older-than", "1d"))
    assert result.stdout.startswith(
        "deleted 3 threads (12 checkpoints) idle for more than 1d in ")
    assert result.stderr.startswith("cleanup: batch 1: ")  # not a terminal: plain lines
    after = counts(url)
    assert after["threads"] == 1 and after["checkpoints"] == 4
    assert checkpoints_of(url, "fresh") == 4 and checkpoints_of(url, "old-1") == 0

    again = as_json("cleanup", url, "--older-than", "30d")
    assert again["threads_deleted"] == 0 and again["dry_run"] is False


def test_prune_keeps_the_newest(url: str) -> None:
    fill(url, ["a", "b"])
    fill(url, ["short"], checkpoints=2)
    report = as_json("prune", url, "--keep-latest", "2", "--dry-run")
    assert report == {**report, "threads_pruned": 2, "checkpoints_deleted": 4, "dry_run": True}
    assert checkpoints_of(url, "a") == 4

    result = ok(run("prune", url, "--keep-latest", "3", "--thread", "a", "--thread", "a"))
    assert result.stdout.startswith("pruned 1 threads: deleted 1 checkpoints, keeping the 3 ")
    assert result.stderr.splitlines() == ["prune: 1/1 threads: 1 pruned, 1 checkpoints deleted"]
    assert [checkpoints_of(url, t) for t in "ab"] == [3, 4]

    report = as_json("prune", url, "--keep-latest", "2")
    assert report["threads_pruned"] == 2 and report["checkpoints_deleted"] == 3
    assert report["dry_run"] is False
    assert [checkpoints_of(url, t) for t in ("a", "b", "short")] == [2, 2, 2]
    with saver_from_url(url) as saver:  # the kept ones still read back
        kept = saver.get_tuple({"configurable": {"thread_id": "b", "checkpoint_ns": ""}})
        assert kept is not None and kept.checkpoint["channel_values"] == {"n": 3}


def test_prune_of_a_missing_thread_fails_and_prunes_nothing(url: str) -> None:
    fill(url, ["a", "b"])
    line = error_line(run("prune", url, "--keep-latest", "1", "--thread", "nope"), 1)
    assert line.startswith("error: thread 'nope' has no checkpoints in ")
    assert line.endswith("; nothing was pruned")
    # every --thread is checked before anything is pruned; each missing one is named
    line = error_line(run("prune", url, "--keep-latest", "1", "--thread", "a", "--thread",
                          "nope", "--thread", "b", "--thread", "gone", "--json"), 1)
    assert line.startswith("error: threads 'nope', 'gone' have no checkpoints in ")
    assert [checkpoints_of(url, t) for t in "ab"] == [4, 4]
    for command in (("history", url, "nope"), ("fork", url, "nope")):  # the same exit code
        assert error_line(run(*command), 1).startswith("error: thread 'nope' has no checkpoint")


def test_cleanup_progress_ends_on_the_report(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of --batch-size threads on every backend (Redis: not one per bucket), and
    the last progress line shows the report's counts even when pacing skipped it."""
    fill(url, [f"old-{i}" for i in range(5)], checkpoints=2)
    cutoff_after_a_gap(monkeypatch)
    fill(url, ["fresh"])
    monkeypatch.setattr(progress, "PLAIN_SECONDS", 3600.0)  # only the first line is due
    for extra, verb in ((["--dry-run"], "to delete"), ([], "deleted")):
        result = ok(run("cleanup", url, "--older-than", "1d", "--batch-size", "2", *extra))
        assert result.stderr.splitlines() == [
            f"cleanup: batch 1: 2 threads (4 checkpoints) {verb} so far",
            f"cleanup: batch 3: 5 threads (10 checkpoints) {verb} so far",
        ]
        assert "5 threads (10 checkpoints)" in result.stdout
    assert counts(url)["threads"] == 1
    monkeypatch.setattr(progress, "PLAIN_SECONDS", 0.0)  # every batch
    fill(url, [f"new-old-{i}" for i in range(4)], checkpoints=1)
    cutoff_after_a_gap(monkeypatch)  # "fresh" (4 checkpoints) is old now too
    result = ok(run("cleanup", url, "--older-than", "1d", "--batch-size", "3"))
    first, last = result.stderr.splitlines()
    assert first.startswith("cleanup: batch 1: 3 threads (")
    assert last == "cleanup: batch 2: 5 threads (8 checkpoints) deleted so far"
    assert result.stdout.startswith("deleted 5 threads (8 checkpoints)")


def test_stats_title_keeps_a_long_url_on_one_line(tmp_path: Path) -> None:
    folder = tmp_path / ("a-long-folder-name-" * 8)
    folder.mkdir()
    url = f"sqlite:///{folder / 'store.db'}"
    fill(url, ["a"])
    assert len(url) > 160
    for env in ({}, {"COLUMNS": "80"}):  # piped: rich's own width, and a narrow one
        table = ok(run("stats", url, env=env)).stdout
        assert table.splitlines()[0] == f"Store {url}", table
        assert " threads " in table


def test_prune_draws_a_bar_on_a_terminal(url: str) -> None:
    fill(url, ["a", "b"], checkpoints=3)
    result = ok(run("prune", url, "--keep-latest", "1",
                    env={"TTY_COMPATIBLE": "1", "COLUMNS": "120"}))
    assert "pruning threads" in result.stderr and "2/2" in result.stderr
    assert "━" in result.stderr and "prune: 1/2" not in result.stderr
    assert result.stdout.startswith("pruned 2 threads: deleted 4 checkpoints")


def test_stats_match_the_saver(url: str) -> None:
    fill(url, ["a", "b"], checkpoints=3)
    with saver_from_url(url) as saver:
        saver.put_writes(
            {"configurable": {"thread_id": "a", "checkpoint_ns": "",
                              "checkpoint_id": next(iter(saver.list(None))).checkpoint["id"]}},
            [("n", 9)], "task-1")
        expected = saver.stats()
    assert expected["threads"] == 2 and expected["checkpoints"] == 6 and expected["writes"] == 1
    assert as_json("stats", url) == expected
    table = ok(run("stats", url)).stdout
    for label, key in (("threads", "threads"), ("checkpoints", "checkpoints"),
                       ("pending writes", "writes"), ("channel values", "channel_values")):
        line = next(row for row in table.splitlines() if f" {label} " in row)
        assert f" {expected[key]:,} " in line, table
    assert f"{expected['bytes']:,}" in table


def test_stats_of_one_thread_match_the_saver(url: str) -> None:
    fill(url, ["a", "b"], checkpoints=3)
    with saver_from_url(url) as saver:
        expected = saver.stats(thread_id="a")
    assert expected["checkpoints"] == 3 and expected["channel_values"] == 3
    assert [(c["channel"], c["versions"]) for c in expected["channels"]] == [("n", 3)]
    assert as_json("stats", url, "--thread", "a") == expected
    table = ok(run("stats", url, "--thread", "a")).stdout
    assert "thread a" in table.splitlines()[0]
    line = next(row for row in table.splitlines() if " checkpoints " in row)
    assert " 3 " in line, table
    row = next(row for row in table.splitlines() if " n " in row)
    assert "(root)" in row and " 3 " in row, table
    assert "no thread 'nobody'" in error_line(run("stats", url, "--thread", "nobody"), 1)


def test_stats_of_a_chat_show_its_messages_stored_as_pieces_and_rebuilt(url: str) -> None:
    """A list that grows by appends is stored as pieces: the table shows the messages
    channel's stored bytes and, far larger, its bytes rebuilt."""
    with saver_from_url(url) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        for turn in range(12):
            graph.invoke({"messages": [("user", f"turn {turn} " + "words " * 40)]},
                         {"configurable": {"thread_id": "chat"}})
        expected = saver.stats(thread_id="chat")
    messages = next(c for c in expected["channels"] if c["channel"] == "messages")
    assert messages["rebuilt_bytes"] > 3 * messages["bytes"], messages
    assert as_json("stats", url, "--thread", "chat") == expected
    table = ok(run("stats", url, "--thread", "chat")).stdout
    row = next(line for line in table.splitlines() if " messages " in line)
    assert f"{messages['bytes']:,}" in row and f"{messages['rebuilt_bytes']:,}" in row, table
    assert "rebuilt" in table


def test_migrate_sets_a_store_up(url: str) -> None:
    report = as_json("migrate", url)
    assert report["current"] is True and report["schema_version"] >= 1
    assert "://" in report["url"]
    result = ok(run("migrate", url))  # idempotent
    assert result.stdout.startswith("schema of ") and "is current (version " in result.stdout
    assert counts(url)["threads"] == 0


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'typo.db'}"
    assert "no SQLite database" in error_line(run("cleanup", missing, "--older-than", "1d"), 1)
    assert "no SQLite database" in error_line(run("stats", missing), 1)
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize("bad", ["0s", "3w", "abc", "-1d", "1.5h", "", "d"])
def test_bad_durations_are_usage_errors(tmp_path: Path, bad: str) -> None:
    result = run("cleanup", f"sqlite:///{tmp_path / 'x.db'}", "--older-than", bad)
    assert result.exit_code == 2 and "--older-than" in result.stderr, result.stderr


def test_other_usage_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert run("cleanup", url).exit_code == 2  # --older-than is required
    assert run("cleanup", url, "--older-than", "1d", "--batch-size", "0").exit_code == 2
    assert run("prune", url).exit_code == 2
    assert run("prune", url, "--keep-latest", "0").exit_code == 2


def test_durations() -> None:
    assert DURATION.convert("90s", None, None) == timedelta(seconds=90)
    assert DURATION.convert("15m", None, None) == timedelta(minutes=15)
    assert DURATION.convert("12H", None, None) == timedelta(hours=12)
    assert DURATION.convert(" 30d ", None, None) == timedelta(days=30)
    with pytest.raises(click.BadParameter):
        DURATION.convert("30 days", None, None)
    assert [Duration.format(timedelta(seconds=s)) for s in (90, 900, 43200, 2592000, 120)] == [
        "90s", "15m", "12h", "30d", "2m"]


def test_every_maintenance_command_has_help() -> None:
    for command in ("cleanup", "prune", "stats", "migrate"):
        result = ok(run(command, "--help"))
        assert "--json" in result.stdout and "URL" in result.stdout
    assert "3 another cleanup" in ok(run("--help")).stdout


def test_every_command_is_documented() -> None:
    """docs/cli.md has a section for each command of ``persist-kit --help``, with its options."""
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert cli.commands, "no commands registered"
    for name, command in cli.commands.items():
        heading = next((line for line in reference.splitlines()
                        if line.startswith(f"### `persist-kit {name} ")), None)
        assert heading is not None, f"docs/cli.md has no section for {name}"
        for option in command.params:
            if isinstance(option, click.Option):
                assert any(o in heading for o in option.opts), (name, option.opts)
        assert command.help, f"{name} has no help text"

