"""Run LangGraph's own checkpointer tests with this package's savers.

LangGraph ships its tests in its sdist. Its ``tests/conftest.py`` parametrises every
Pregel test that takes ``sync_checkpointer`` / ``async_checkpointer`` over the
official savers; this script fetches the sdist of the installed ``langgraph``
(``pip download --no-binary :all:``), swaps those two fixtures for ours
(`compat/persist_kit_fixtures.py`: SQLite, PostgreSQL and Redis, sync and async)
and runs only the tests that take one of them::

    python -m compat.langgraph_suite                      # all three backends
    python -m compat.langgraph_suite --backends sqlite    # one
    python -m compat.langgraph_suite -- -x -k interrupt   # extra pytest arguments

It needs PostgreSQL and Redis as the package's own tests do
(``PERSIST_KIT_TEST_POSTGRES_URL``, ``PERSIST_KIT_TEST_REDIS_URL``), and the extra test
packages LangGraph's suite imports (``pip install -e ".[test]"`` has them). The exit
code is pytest's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / ".langgraph-suite"
BACKENDS = ("sqlite", "postgres", "redis")
# Appended to LangGraph's conftest.py: a later binding of a fixture's name wins.
OVERRIDE = """

# --- langgraph-persist-kit: the checkpointer fixtures run on our savers ---
from tests.persist_kit_fixtures import (  # noqa: E402,F401
    _persist_kit_postgres_url,
    async_checkpointer,
    pytest_collection_modifyitems,
    sync_checkpointer,
)
"""


def suite_dir(langgraph_version: str) -> Path:
    """LangGraph's ``tests/`` (and its pytest settings) for ``langgraph_version``,
    downloaded once into ``.langgraph-suite/``."""
    root = CACHE / f"langgraph-{langgraph_version}"
    if not (root / "tests" / "conftest.py").exists():
        with tempfile.TemporaryDirectory() as download:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--no-binary", ":all:", f"langgraph=={langgraph_version}", "-d", download],
                check=True,
            )
            (sdist,) = Path(download).glob("langgraph-*.tar.gz")
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            prefix = f"langgraph-{langgraph_version}/"
            with tarfile.open(sdist) as archive:
                for member in archive.getmembers():
                    name = member.name.removeprefix(prefix)
                    if name.startswith("tests/") or name == "pyproject.toml":
                        member.name = name
                        archive.extract(member, root, filter="data")
    conftest = root / "tests" / "conftest.py"
    if OVERRIDE not in conftest.read_text():
        with conftest.open("a") as file:
            file.write(OVERRIDE)
    shutil.copy(HERE / "persist_kit_fixtures.py", root / "tests" / "persist_kit_fixtures.py")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated: sqlite, postgres, redis (default: all)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    root = suite_dir(version("langgraph"))
    env = {
        **os.environ,
        "PERSIST_KIT_SUITE_BACKENDS": ",".join(backends),
        # LangGraph's own stores and caches stay in memory; only checkpointers are ours.
        "NO_DOCKER": "true",
    }
    command = [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
               # LangGraph's own addopts, less --strict-config (our pytest plugins add
               # settings it does not know) and --full-trace; syrupy must only warn of
               # the snapshots of the tests we deselect
               "-o", "addopts=", "--strict-markers", "--snapshot-warn-unused",
               "-o", "asyncio_default_fixture_loop_scope=function",
               # a RemoteGraph client against a server in Docker: no checkpointer
               "--ignore=tests/test_remote_graph.py",
               "--timeout=300", *args.pytest_args]
    return subprocess.run(command, cwd=root, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
