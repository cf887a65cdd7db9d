"""No secret (password, token) ever reaches a message, a log, a traceback or the CLI's
output: `redact` on every form of URL and conninfo, then real failing connections to
PostgreSQL and Redis and the ``persist-kit`` commands given URLs with passwords."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from langgraph_persist_kit._core.urls import quote_userinfo, redact, scrub
from langgraph_persist_kit.cli import cli
from langgraph_persist_kit.errors import ConfigurationError, PersistKitError
from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver
from langgraph_persist_kit.redis import AsyncRedisSaver, RedisSaver
from langgraph_persist_kit.redis._options import read_settings
from langgraph_persist_kit.sqlite import SqliteSaver
from langgraph_persist_kit.urls import saver_from_url
from tests.helpers.backends import fresh_schema, postgres_url, redis_url

SECRET = "Zq7@Pw!x"
"""A password with a raw ``@``: drivers and naive regexes split it."""


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql://me:hunter2@db/app", "postgresql://me:***@db/app"),
        ("postgresql://me:p@ss@db:5432/app", "postgresql://me:***@db:5432/app"),
        ("postgres://me@db/app?password=hunter2&sslmode=require",
         "postgres://me@db/app?password=***&sslmode=require"),
        ("postgresql://db/app?sslmode=verify-full&sslpassword=k3y",
         "postgresql://db/app?sslmode=verify-full&sslpassword=***"),
        ("postgresql://me:a b/c?d@db/app", "postgresql://me:***@db/app"),
        ("rediss://:tok@en@cache:6380/0", "rediss://:***@cache:6380/0"),
        ("redis://default:pw@cache/0?key_prefix=a", "redis://default:***@cache/0?key_prefix=a"),
        ("redis://cache/0?token=t0k&Secret=s", "redis://cache/0?token=***&Secret=***"),
        ("host=db user=me password=hunter2 dbname=app", "host=db user=me password=*** dbname=app"),
        ("host=db password='two words\\' q' dbname=app", "host=db password=*** dbname=app"),
        ("host=db PASSWORD = hunter2", "host=db PASSWORD = ***"),
        ("failed: 'postgresql://u:pw@h/db' is down", "failed: 'postgresql://u:***@h/db' is down"),
        ("postgresql://db/app?application_name=me@x", "postgresql://db/app?application_name=me@x"),
        ("sqlite:///agents.db", "sqlite:///agents.db"),
    ],
)
def test_redact_masks_every_form(given: str, shown: str) -> None:
    assert redact(given) == shown


def test_scrub_masks_secrets_a_driver_echoes() -> None:
    conn = "postgresql://me:Zq7@Pw!x@db/app"
    assert scrub('could not translate host name "Pw!x@db"', conn) == (
        'could not translate host name "***@db"')
    assert "hunter2" not in scrub("bad value hunter2", "host=db password=hunter2")


# --- real failing connections ----------------------------------------------------


def shown_to_user(exc: BaseException) -> str:
    """Everything a user can see of an exception: its traceback, chain included."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


def assert_hidden(text: str) -> None:
    for piece in (SECRET, SECRET.split("@")[0], SECRET.split("@")[1]):
        assert piece not in text, text


def postgres_forms(url: str, *, port: int | None = None, dbname: str | None = None) -> list[str]:
    """``url`` with `SECRET` as its password, in each way users write one."""
    info = conninfo_to_dict(url)
    info.update({k: v for k, v in {"port": port, "dbname": dbname}.items() if v is not None})
    host, user = f"{info['host']}:{info['port']}", info["user"]
    return [
        f"postgresql://{user}:{SECRET}@{host}/{info['dbname']}",  # raw "@"
        f"postgresql://{user}@{host}/{info['dbname']}?password={SECRET}",
        make_conninfo(**info, password=SECRET),
    ]


FAILURES = {"wrong port": {"port": 1}, "wrong database": {"dbname": "pk_no_such_db"}}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failed_postgres_connections_hide_the_password(
    failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for conn in postgres_forms(postgres_url(__name__), **FAILURES[failure]):
        with pytest.raises(PersistKitError) as caught, \
                PostgresSaver.from_conn_string(conn, pool_timeout=2):
            pass
        assert_hidden(shown_to_user(caught.value))
    assert_hidden(caplog.text)


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_failed_async_postgres_connections_hide_the_password(failure: str) -> None:
    for conn in postgres_forms(postgres_url(__name__), **FAILURES[failure]):
        with pytest.raises(PersistKitError) as caught:
            async with AsyncPostgresSaver.from_conn_string(conn, pool_timeout=2):
                pass
        assert_hidden(shown_to_user(caught.value))


def test_a_raw_at_in_a_postgres_password_connects() -> None:
    """libpq alone would split at the first "@" and look for host "Pw!x@127.0.0.1"."""
    url = postgres_forms(postgres_url(__name__))[0]
    with PostgresSaver.from_conn_string(url, schema=fresh_schema()) as saver:
        assert list(saver.list_threads()) == []


@pytest.mark.parametrize(
    "conn",
    ["postgresql://u:Zq7@Pw!x@h/db?bogus=1", "host=h password=Zq7@Pw!x bogus",
     "host=h password='Zq7@Pw!x' schema=x", "mysql://u:Zq7@Pw!x@h/db"],
)
def test_malformed_postgres_conninfo_hides_the_password(conn: str) -> None:
    with pytest.raises(ConfigurationError) as caught, PostgresSaver.from_conn_string(conn):
        pass
    assert_hidden(shown_to_user(caught.value))


def test_other_savers_never_echo_a_postgres_password() -> None:
    for opener in (SqliteSaver.from_conn_string, RedisSaver.from_conn_string):
        with pytest.raises(ConfigurationError) as caught, opener(f"postgresql://u:{SECRET}@h/db"):
            pass
        assert_hidden(shown_to_user(caught.value))
    with pytest.raises(ConfigurationError) as caught, saver_from_url(f"mysql://u:{SECRET}@h/db"):
        pass
    assert_hidden(shown_to_user(caught.value))


def redis_forms(port: int) -> list[str]:
    host = redis_url().split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    return [f"redis://:{SECRET}@{host}:{port}/0", f"redis://default:{SECRET}@{host}:{port}/0",
            f"rediss://:{SECRET}@{host}:{port}/0"]


def test_failed_redis_connections_hide_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for conn in redis_forms(port=1):
        with pytest.raises(PersistKitError) as caught, RedisSaver.from_conn_string(conn):
            pass
        assert_hidden(shown_to_user(caught.value))
    assert_hidden(caplog.text)


async def test_failed_async_redis_connections_hide_the_password() -> None:
    for conn in redis_forms(port=1):
        with pytest.raises(PersistKitError) as caught:
            async with AsyncRedisSaver.from_conn_string(conn):
                pass
        assert_hidden(shown_to_user(caught.value))


@pytest.mark.parametrize(
    ("given", "quoted"),
    [
        ("postgresql://me:p@ss@db/app", "postgresql://me:p%40ss@db/app"),
        ("redis://:pa?ss#w/d@cache:6379/0", "redis://:pa%3Fss%23w%2Fd@cache:6379/0"),
        ("postgresql://me:p%40ss@db/app", "postgresql://me:p%40ss@db/app"),
        ("postgresql://db/app?application_name=me@x", "postgresql://db/app?application_name=me@x"),
        ("redis://cache:6379/0?client_name=a@b", "redis://cache:6379/0?client_name=a@b"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ],
)
def test_quote_userinfo_encodes_only_a_password(given: str, quoted: str) -> None:
    assert quote_userinfo(given) == quoted


@pytest.mark.parametrize("password", ["pa?sswordX", "p&key_prefix=x", "a#b/cd"])
def test_redis_passwords_holding_url_delimiters_stay_secret(password: str) -> None:
    """A raw ``?``, ``&``, ``#`` or ``/`` in a password is part of it: never read as the
    query (an "unknown option" echoing it, or a saver option taken from it)."""
    conn = f"redis://:{password}@127.0.0.1:1/0"
    with pytest.raises(PersistKitError) as caught, RedisSaver.from_conn_string(conn):
        pass
    assert not isinstance(caught.value, ConfigurationError), caught.value  # connecting failed
    text = shown_to_user(caught.value)
    for piece in {password, *password.replace("?", "@").replace("&", "@").split("@")}:
        if len(piece) >= 3:
            assert piece not in text, text
    settings = read_settings(conn, {})
    assert password not in repr(settings) and settings.key_prefix is None


# --- the command line ----------------------------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def store_url() -> Iterator[str]:
    """A PostgreSQL store URL with `SECRET` as its password (raw "@") and a schema of its
    own (the test server trusts local connections, so any password gets in)."""
    yield f"{postgres_forms(postgres_url(__name__))[0]}?schema={fresh_schema()}"


def test_threads_on_an_empty_store_hides_the_password(store_url: str) -> None:
    for url in (store_url, store_url.replace(f":{SECRET}@", "@") + f"&password={SECRET}"):
        result = run("threads", url)
        assert result.exit_code == 0, result.output
        assert "No threads in" in result.output
        assert_hidden(result.output)


def test_failing_commands_hide_the_password(store_url: str) -> None:
    for args in (["history", store_url, "nobody"],
                 ["threads", store_url.replace(":5432/", ":1/")],
                 ["threads", store_url + "&bogus=1"]):
        result = run(*args)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("error: ")
        assert_hidden(result.output)


@pytest.mark.slow
def test_demo_on_postgres_hides_the_password(store_url: str) -> None:
    result = run("demo", "--db", store_url)
    assert result.exit_code == 0, result.output
    assert "The conversation survived the restart" in result.output  # the 2nd process got in
    assert "postgresql://postgres:***@" in result.output
    assert_hidden(result.output)



def test_reprs_hide_the_password(store_url: str) -> None:
    with PostgresSaver.from_conn_string(store_url) as saver:
        lock = saver.thread_lock_handle("t", lease=30)
        assert lock.try_acquire()  # opens the lock pool beside the saver's
        try:
            with saver.conn.connection() as conn:
                shown = [repr(saver), repr(saver.conn), repr(conn), str(conn.info.dsn),
                         repr(lock.pool), repr(lock.conn)]
        finally:
            lock.release()
    assert_hidden(" ".join(shown))
