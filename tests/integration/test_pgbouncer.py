"""The Postgres savers behind a real PgBouncer in transaction pooling mode.

The fixture starts ``pgbouncer`` (Debian package; `.ci/run` installs it) on a
free loopback port. In transaction mode each transaction may land on another
server connection, so the savers must use no server-side prepared statements
(``pgbouncer=True``) and no session state.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.types import Command

from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver
from tests.helpers.backends import fresh_schema, postgres_url, require_tool
from tests.helpers.graphs import interrupt_graph
from tests.helpers.sync_adapter import SyncSaverAdapter


def module_url() -> str:
    """This module's database (created on first use, never at import: worker
    processes re-import the module)."""
    return postgres_url(__name__)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def bouncer_url() -> Iterator[str]:
    installed = "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    exe = require_tool("pgbouncer", shutil.which("pgbouncer") or installed,
                       purpose="the PgBouncer tests (apt-get install pgbouncer; .ci/run does)")
    server = urlsplit(module_url())
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="pk-pgbouncer-")
    os.chmod(workdir, 0o777)  # pgbouncer refuses to run as root; it runs as postgres
    config = os.path.join(workdir, "pgbouncer.ini")
    with open(config, "w") as f:
        f.write(
            "[databases]\n"
            f"* = host={server.hostname} port={server.port or 5432} user={server.username}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
            "auth_type = any\npool_mode = transaction\n"
            "default_pool_size = 3\nmax_client_conn = 200\n"
            "unix_socket_dir =\n"
            f"logfile = {workdir}/pgbouncer.log\npidfile = {workdir}/pgbouncer.pid\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
    os.chmod(config, 0o644)
    command = [exe, config]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = urlunsplit(server._replace(netloc=f"{server.username}@127.0.0.1:{port}"))
    try:
        for _ in range(100):
            try:
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if process.poll() is not None:
                    pytest.fail(f"pgbouncer exited: {process.stderr.read()!r}", pytrace=False)
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def test_pool_mode_is_transaction(bouncer_url: str) -> None:
    admin = urlunsplit(urlsplit(bouncer_url)._replace(path="/pgbouncer"))
    with psycopg.connect(admin, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SHOW CONFIG")  # the admin console answers: this really is pgbouncer
        modes = {row[0]: row[1] for row in conn.execute("SHOW CONFIG").fetchall()}
    assert modes["pool_mode"] == "transaction"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_conformance_through_pgbouncer(bouncer_url: str, mode: str) -> None:
    @checkpointer_test(name=f"pgbouncer-{mode}")
    async def factory():  # a fresh schema per capability suite
        schema = fresh_schema()
        if mode == "async":
            async with AsyncPostgresSaver.from_conn_string(
                bouncer_url, schema=schema, pgbouncer=True
            ) as saver:
                yield saver
        else:
            with PostgresSaver.from_conn_string(
                bouncer_url, schema=schema, pgbouncer=True
            ) as saver:
                yield SyncSaverAdapter(saver)

    report = await validate(factory)
    failures = [f for r in report.results.values() for f in r.failures]
    assert not failures, "\n".join(failures)
    assert sum(r.tests_passed for r in report.results.values()) == 81


def test_graphs_through_pgbouncer_sync(bouncer_url: str) -> None:
    with PostgresSaver.from_conn_string(
        bouncer_url, schema=fresh_schema(), pgbouncer=True, pool_max_size=4
    ) as saver:
        graph = interrupt_graph().compile(checkpointer=saver)
        for i in range(12):  # well past psycopg's default prepare threshold of 5
            config = {"configurable": {"thread_id": f"t{i}"}}
            graph.invoke({"topic": f"topic {i}"}, config)
            result = graph.invoke(Command(resume=f"yes {i}"), config)
            assert result["log"] == [f"draft:topic {i}", f"ask:yes {i}", f"publish:yes {i}"]
        assert len(list(saver.list_threads())) == 12


async def test_graphs_through_pgbouncer_async(bouncer_url: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(
        bouncer_url, schema=fresh_schema(), pgbouncer=True, pool_max_size=4
    ) as saver:
        graph = interrupt_graph().compile(checkpointer=saver)

        async def converse(i: int) -> list:
            config = {"configurable": {"thread_id": f"t{i}"}}
            await graph.ainvoke({"topic": f"topic {i}"}, config)
            return (await graph.ainvoke(Command(resume=f"yes {i}"), config))["log"]

        logs = await asyncio.gather(*(converse(i) for i in range(12)))
        assert logs == [[f"draft:topic {i}", f"ask:yes {i}", f"publish:yes {i}"] for i in range(12)]


def test_versioned_runs_through_pgbouncer(bouncer_url: str) -> None:
    """Compare-and-set is one statement, so VersionedGraph works in transaction mode
    (session advisory locks, and so LockedGraph on PostgreSQL, do not)."""
    from concurrent.futures import ThreadPoolExecutor

    from langgraph_persist_kit.concurrency import StaleThreadError, VersionedGraph

    with PostgresSaver.from_conn_string(
        bouncer_url, schema=fresh_schema(), pgbouncer=True, pool_max_size=4
    ) as saver:
        graph = interrupt_graph().compile(checkpointer=saver)
        versioned = VersionedGraph(graph)
        for i in range(8):
            config = {"configurable": {"thread_id": f"t{i}"}}
            versioned.invoke({"topic": "x"}, config, expected_checkpoint_id=None)
            seen = graph.get_state(config).config["configurable"]["checkpoint_id"]

            def resume(answer: str, config: dict = config, seen: str = seen) -> str:
                try:
                    versioned.invoke(Command(resume=answer), config, expected_checkpoint_id=seen)
                    return "won"
                except StaleThreadError:
                    return "stale"

            with ThreadPoolExecutor(2) as pool:
                outcomes = sorted(pool.map(resume, ["a", "b"]))
            assert outcomes == ["stale", "won"]
            log = graph.get_state(config).values["log"]
            assert log[-1] in ("publish:a", "publish:b") and len(log) == 3
