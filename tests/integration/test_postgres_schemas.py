"""Where a Postgres saver keeps its tables and how it is pointed there: schemas as
tenants, migrations (four processes setting up one fresh database, a newer schema
refused, no index built CONCURRENTLY, a role without CREATE using a migrated schema),
and the schema and connection options a URL or a libpq key/value string carries."""

from __future__ import annotations

import multiprocessing
import os

import psycopg
import pytest
from langgraph.checkpoint.conformance.test_utils import generate_config
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from langgraph_persist_kit.errors import ConfigurationError, SchemaVersionError
from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver
from langgraph_persist_kit.postgres._plans import plans_for
from tests.helpers.backends import POSTGRES_URL, fresh_schema, postgres_url
from tests.helpers.paths import ROOT
from tests.helpers.postgres_checkpoints import put_one


def module_url() -> str:
    """This module's database (created on first use, never at import: worker
    processes re-import the module)."""
    return postgres_url(__name__)


MIGRATIONS_DIR = ROOT / "langgraph_persist_kit" / "postgres" / "migrations"



def test_schemas_isolate_tenants() -> None:
    a, b = fresh_schema(), fresh_schema()
    with (
        PostgresSaver.from_conn_string(module_url(), schema=a) as sa,
        PostgresSaver.from_conn_string(module_url(), schema=b) as sb,
    ):
        put_one(sa, "shared-name")
        put_one(sa, "only-a")
        put_one(sb, "shared-name")
        assert {t.thread_id for t in sa.list_threads()} == {"shared-name", "only-a"}
        assert [t.thread_id for t in sb.list_threads()] == ["shared-name"]
        assert sb.get_tuple(generate_config("only-a")) is None
        sb.delete_thread("shared-name")
        assert sa.get_tuple(generate_config("shared-name")) is not None
    with psycopg.connect(module_url()) as conn:
        tables = conn.execute(
            "SELECT table_schema, count(*) FROM information_schema.tables"
            " WHERE table_schema IN (%s, %s) GROUP BY 1 ORDER BY 1",
            (a, b),
        ).fetchall()
    assert sorted(tables) == sorted([(a, 5), (b, 5)])


def _setup_in(url: str, schema: str) -> None:
    with PostgresSaver.from_conn_string(url, schema=schema):
        pass


def test_four_processes_set_up_a_fresh_database_at_once() -> None:
    name = f"pk_fresh_{os.getpid()}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = module_url().rsplit("/", 1)[0] + "/" + name
    try:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_setup_in, args=(url, "shared")) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        with psycopg.connect(url) as conn:
            versions = conn.execute(
                'SELECT version FROM "shared".persist_kit_migrations ORDER BY version'
            ).fetchall()
        assert versions == [(m.version,) for m in plans_for("shared").migrations]  # each once
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_newer_schema_is_refused(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema):
        pass
    with psycopg.connect(module_url(), autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".persist_kit_migrations VALUES (999, %s, 0)', ("future",)
        )
    with (
        pytest.raises(SchemaVersionError, match="999"),
        PostgresSaver.from_conn_string(module_url(), schema=schema),
    ):
        pass


def test_migrations_never_build_indexes_concurrently() -> None:
    files = sorted(MIGRATIONS_DIR.glob("*.sql"))
    assert files
    for path in files:
        assert "CONCURRENTLY" not in path.read_text().upper(), path.name


def test_a_role_without_create_privilege_uses_a_migrated_schema(schema: str) -> None:
    role = f"pk_app_{os.getpid()}"
    with PostgresSaver.from_conn_string(module_url(), schema=schema):
        pass  # the owner migrates
    with psycopg.connect(module_url(), autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'
        )
    app_url = module_url().replace("postgres@", f"{role}@", 1)
    try:
        with PostgresSaver.from_conn_string(app_url, schema=schema) as saver:
            put_one(saver, "least-privilege")
            assert [t.thread_id for t in saver.list_threads()] == ["least-privilege"]
    finally:
        with psycopg.connect(module_url(), autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_schema_can_come_from_the_url(schema: str) -> None:
    with PostgresSaver.from_conn_string(f"{module_url()}?schema={schema}") as saver:
        put_one(saver, "via-url")
        assert saver.plans.schema == schema
    with PostgresSaver.from_conn_string(module_url(), schema=schema) as saver:
        assert [t.thread_id for t in saver.list_threads()] == ["via-url"]
    with PostgresSaver.from_conn_string(module_url()) as saver:  # public: another tenant
        assert saver.get_tuple(generate_config("via-url")) is None


def test_url_parameters_keep_their_encoding(schema: str) -> None:
    query = f"application_name=my%20app&schema={schema}&options=-c%20statement_timeout%3D5000"
    url = f"{module_url()}?{query}"
    with PostgresSaver.from_conn_string(url) as saver:
        put_one(saver, "t")
        assert saver.plans.schema == schema
        with saver.conn.connection() as conn:  # the saver's own pool
            assert conn.execute("SHOW application_name").fetchone() == ("my app",)
            assert conn.execute("SHOW statement_timeout").fetchone() == ("5s",)


def test_libpq_key_value_strings_are_accepted(schema: str) -> None:
    info = conninfo_to_dict(module_url())
    conninfo = make_conninfo(**info)  # "host=127.0.0.1 port=5432 dbname=... user=postgres"
    assert "://" not in conninfo
    with PostgresSaver.from_conn_string(conninfo, schema=schema) as saver:
        put_one(saver, "kv")
        assert saver.plans.schema == schema
    with PostgresSaver.from_conn_string(f"{module_url()}?schema={schema}") as saver:
        assert [t.thread_id for t in saver.list_threads()] == ["kv"]  # the same schema
    with (pytest.raises(ConfigurationError, match="pass schema=") as caught,
          PostgresSaver.from_conn_string(f"{conninfo} schema={schema}")):
        pass
    assert caught.value.__cause__ is None


async def test_libpq_key_value_strings_are_accepted_async(schema: str) -> None:
    conninfo = make_conninfo(**conninfo_to_dict(module_url()))
    async with AsyncPostgresSaver.from_conn_string(conninfo, schema=schema) as saver:
        await put_one(saver, "kv")
        assert [t.thread_id async for t in saver.alist_threads()] == ["kv"]


def test_unknown_url_options_are_named(schema: str) -> None:
    with (pytest.raises(ConfigurationError, match='"shema"'),
          PostgresSaver.from_conn_string(f"{module_url()}?shema={schema}")):
        pass
