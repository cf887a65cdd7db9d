"""examples/crontab.txt and examples/k8s-cronjob.yaml, run the way cron and Kubernetes
run them: the crontab line through its ``SHELL`` (nothing to mail on success or on a
held maintenance lock, a real failure mailed), the CronJob's command on PostgreSQL
(the example's backend), each pruning a long thread."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from langgraph_persist_kit import saver_from_url
from langgraph_persist_kit.maintenance import maintenance_lock
from tests.helpers.backends import fresh_schema, postgres_url
from tests.helpers.maintenance_cli import checkpoints_of, fill
from tests.helpers.paths import ROOT

EXAMPLES = ROOT / "examples"
SCRIPTS = Path(sys.executable).parent  # where the venv installed the persist-kit script


def crontab() -> tuple[dict[str, str], str]:
    """The example crontab's variables and its one command."""
    lines = [line for line in (EXAMPLES / "crontab.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    variables = dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))
    (entry,) = [line for line in lines if not re.match(r"^[A-Z_]+=", line)]
    minute, hour, day, month, weekday, command = entry.split(None, 5)
    assert (day, month, weekday) == ("*", "*", "*") and minute.isdigit() and hour.isdigit()
    assert "%" not in command  # cron would turn it into a newline
    return variables, command


def test_the_crontab_line_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fill(url, ["long"], checkpoints=22)
    log = tmp_path / "retention.log"
    variables, command = crontab()
    env = {**os.environ, **variables, "PERSIST_KIT": str(SCRIPTS / "persist-kit"),
           "PERSIST_KIT_URL": url, "PERSIST_KIT_LOG": str(log)}

    def cron() -> subprocess.CompletedProcess[str]:
        return subprocess.run([variables["SHELL"], "-c", command], env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    done = cron()
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # nothing to mail
    assert "deleted 0 threads (0 checkpoints) idle for more than 30d" in log.read_text()
    assert "pruned 1 threads: deleted 2 checkpoints" in log.read_text()
    assert checkpoints_of(url, "long") == 20

    with saver_from_url(url) as saver, maintenance_lock(saver):  # exit 3: fine, not mailed
        done = cron()
    assert (done.returncode, done.stdout) == (0, "")
    assert log.read_text().count("error: another maintenance run holds") == 2

    env["PERSIST_KIT_URL"] = f"sqlite:///{tmp_path / 'missing.db'}"  # a real failure: mailed
    done = cron()
    assert done.stdout.startswith("persist-kit retention failed: see ")
    assert log.read_text().count("error: no SQLite database") == 1  # prune did not run


def test_the_kubernetes_cronjob_runs() -> None:
    url = f"{postgres_url(__name__)}?schema={fresh_schema()}"  # the example's backend
    job = yaml.safe_load((EXAMPLES / "k8s-cronjob.yaml").read_text())
    assert job["kind"] == "CronJob" and job["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    (variable,) = container["env"]
    assert variable["name"] == "PERSIST_KIT_URL" and "secretKeyRef" in variable["valueFrom"]
    fill(url, ["long"], checkpoints=22)
    env = {**os.environ, "PATH": f"{SCRIPTS}{os.pathsep}{os.environ['PATH']}",
           "PERSIST_KIT_URL": url}

    def job_run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*container["command"], *container["args"]], env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    done = job_run()
    assert done.returncode == 0, done.stderr
    cleanup, prune = (json.loads("{" + part) for part in done.stdout.split("{")[1:])
    assert cleanup["threads_deleted"] == 0 and prune["checkpoints_deleted"] == 2

    with saver_from_url(url) as saver, maintenance_lock(saver):
        done = job_run()
    assert done.returncode == 0 and done.stderr.count("error: another maintenance run") == 2
