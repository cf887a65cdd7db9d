"""The three stores of the retention benchmark and their fast loaders."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Any

from benchmarks import servers
from benchmarks.retention.config import OLD_AGE, RECENT_AGE, thread_id
from benchmarks.retention.writer import Spec, open_saver
from benchmarks.trials import Space
from langgraph_persist_kit._core.urls import redact

# --- stores -------------------------------------------------------------------------------------


class Store:
    """A backend's scratch store: created on enter, dropped on exit. Subclasses load it fast
    (rows / keys replicated from a template thread the real saver wrote) and measure it."""

    name = ""

    def saver(self) -> AbstractContextManager[Any]:
        """The saver the maintenance calls run on: the writer's store, opened apart with the
        ``from_conn_string`` defaults."""
        return open_saver(self.writer_spec())

    def writer_spec(self) -> Spec:
        """The concurrent writer's saver (it opens its own connection)."""
        raise NotImplementedError

    def template_saver(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def load(self, threads: int, chunk: int) -> None:
        raise NotImplementedError

    def size(self, compact: bool) -> int:
        """Bytes the store takes; ``compact``: after compacting it (untimed)."""
        raise NotImplementedError

    def describe(self) -> str:
        return ""

    def close(self) -> None:
        pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def ages(now: float) -> tuple[float, float]:
    """Unix seconds the old and the recent threads' first rows are dated at."""
    return now - OLD_AGE, now - RECENT_AGE


class SqliteStore(Store):
    """A temporary file; the template thread lives in another file, ATTACHed while loading."""

    name = "sqlite"

    def __init__(self, root: str | None = None):
        self.space = Space(root, prefix="persist-kit-retention-")
        self.path, self.template = self.space.path("store.db"), self.space.path("template.db")

    def writer_spec(self) -> Spec:
        return ("sqlite", self.path, "")

    def template_saver(self) -> AbstractContextManager[Any]:
        from langgraph_persist_kit.sqlite import SqliteSaver
        return SqliteSaver.from_conn_string(self.template, synchronous="normal")

    def load(self, threads: int, chunk: int) -> None:
        with self.saver():  # the schema, by the saver's own migrations
            pass
        old, recent = ages(time.time())
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            # a rollback journal while loading (no WAL the size of the store), WAL after
            for pragma in ("journal_mode=DELETE", "synchronous=OFF", "cache_size=-262144"):
                conn.execute(f"PRAGMA {pragma}")
            conn.execute("ATTACH DATABASE ? AS tpl", (self.template,))
            t0 = conn.execute("SELECT min(created_at) FROM tpl.threads").fetchone()[0]
            # the triggers keep the registry, as for every row the savers store
            for lo in range(0, threads, chunk):
                params = {"lo": lo, "hi": min(lo + chunk, threads), "t0": t0, "old": old,
                          "recent": recent}
                conn.execute("BEGIN")
                for sql in SQLITE_LOAD:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            conn.execute("DETACH DATABASE tpl")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    def size(self, compact: bool) -> int:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            if compact:
                conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages, free, page = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                                 for p in ("page_count", "freelist_count", "page_size"))
            return int((pages - free) * page)
        finally:
            conn.close()

    def describe(self) -> str:
        return (f"SQLite {sqlite3.sqlite_version}, file {self.path} (WAL, the saver's default "
                "synchronous=FULL); size = (page_count - freelist_count) x page_size")

    def close(self) -> None:
        self.space.close()


_SQLITE_THREADS = """WITH RECURSIVE n(i) AS (
    SELECT :lo UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :hi)
"""
_SQLITE_AT = "CASE WHEN n.i % 2 = 0 THEN :old ELSE :recent END + (t.created_at - :t0)"
SQLITE_LOAD = [  # per chunk of threads [lo, hi): every row of the template thread, renamed
    _SQLITE_THREADS + """
INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
                         checkpoint, channel_versions, metadata, run_id, created_at)
SELECT printf('t-%07d', n.i), t.checkpoint_ns, t.checkpoint_id, t.parent_checkpoint_id, t.type,
       t.checkpoint, t.channel_versions, t.metadata, t.run_id, """ + _SQLITE_AT + """
FROM n CROSS JOIN tpl.checkpoints AS t
ORDER BY n.i, t.checkpoint_ns, t.checkpoint_id""",
    _SQLITE_THREADS + """
INSERT INTO channel_values (thread_id, checkpoint_ns, channel, version, type, value)
SELECT printf('t-%07d', n.i), t.checkpoint_ns, t.channel, t.version, t.type, t.value
FROM n CROSS JOIN tpl.channel_values AS t
ORDER BY n.i, t.checkpoint_ns, t.channel, t.version""",
    _SQLITE_THREADS + """
INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value,
                    task_path, created_at)
SELECT printf('t-%07d', n.i), t.checkpoint_ns, t.checkpoint_id, t.task_id, t.idx, t.channel,
       t.type, t.value, t.task_path, """ + _SQLITE_AT + """
FROM n CROSS JOIN tpl.writes AS t
ORDER BY n.i, t.checkpoint_ns, t.checkpoint_id, t.task_id, t.idx""",
]


class PostgresStore(Store):
    """A database ``pk_retention_<pid>`` (dropped at exit): the store in schema ``bench``, the
    template thread in schema ``tpl``."""

    name = "postgres"
    TABLES = ("threads", "checkpoints", "channel_values", "writes")

    def __init__(self, url: str):
        self.server_url, self.db = url, f"pk_retention_{os.getpid()}"
        self.url = servers.create_database(url, self.db)

    def writer_spec(self) -> Spec:
        return ("postgres", self.url, "bench")

    def template_saver(self) -> AbstractContextManager[Any]:
        from langgraph_persist_kit.postgres import PostgresSaver
        return PostgresSaver.from_conn_string(self.url, schema="tpl")

    def load(self, threads: int, chunk: int) -> None:
        import psycopg
        with self.saver():  # the schema, by the saver's own migrations
            pass
        old, recent = ages(time.time())
        with psycopg.connect(self.url) as conn:
            conn.execute("SET synchronous_commit = off")
            for lo in range(0, threads, chunk):
                params = {"lo": lo, "hi": min(lo + chunk, threads), "old": old, "recent": recent}
                for sql in POSTGRES_LOAD:
                    conn.execute(sql, params)
                conn.commit()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # what autovacuum would have done by now
            conn.execute("CHECKPOINT")  # the load's WAL is not the measured calls' to flush

    def size(self, compact: bool) -> int:
        import psycopg
        with psycopg.connect(self.url, autocommit=True) as conn:
            tables = ", ".join(f"bench.{t}" for t in self.TABLES)
            conn.execute(f"VACUUM {'FULL ' if compact else ''}ANALYZE {tables}")
            conn.execute("CHECKPOINT")
            row = conn.execute(" + ".join(f"pg_total_relation_size('bench.{t}')"
                                          for t in self.TABLES).join(("SELECT ", ""))).fetchone()
            return int(row[0]) if row else 0

    def describe(self) -> str:
        import psycopg
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT current_setting('server_version'), "
                               "current_setting('synchronous_commit')").fetchone()
        assert row is not None
        return (f"PostgreSQL {row[0]} at {redact(self.server_url)} (synchronous_commit="
                f"{row[1]}), database {self.db}, schema bench; size = pg_total_relation_size of "
                "its 4 tables (with indexes and TOAST) after VACUUM, compacted: VACUUM FULL")

    def close(self) -> None:
        servers.drop_databases(self.server_url, [self.db])


_PG_FROM = """FROM generate_series(%(lo)s, %(hi)s - 1) AS g
CROSS JOIN tpl.{table} AS t CROSS JOIN (SELECT created_at AS t0 FROM tpl.threads) AS z"""
_PG_ID = "'t-' || lpad(g::text, 7, '0')"
_PG_AT = ("to_timestamp(CASE WHEN g %% 2 = 0 THEN %(old)s ELSE %(recent)s END) "
          "+ (t.{column} - z.t0)")
POSTGRES_LOAD = [  # per chunk of threads [lo, hi): every row of the template thread, renamed
    f"""INSERT INTO bench.threads (thread_id, created_at, updated_at, latest_checkpoint_id,
                                   metadata)
SELECT {_PG_ID}, {_PG_AT.format(column="created_at")}, {_PG_AT.format(column="updated_at")},
       t.latest_checkpoint_id, t.metadata
{_PG_FROM.format(table="threads")}
ORDER BY 1""",
    f"""INSERT INTO bench.checkpoints (thread_id, checkpoint_ns, checkpoint_id,
    parent_checkpoint_id, type, checkpoint, channel_versions, metadata, run_id, created_at)
SELECT {_PG_ID}, t.checkpoint_ns, t.checkpoint_id, t.parent_checkpoint_id, t.type, t.checkpoint,
       t.channel_versions, t.metadata, t.run_id, {_PG_AT.format(column="created_at")}
{_PG_FROM.format(table="checkpoints")}
ORDER BY 1, 2, 3""",
    f"""INSERT INTO bench.channel_values (thread_id, checkpoint_ns, channel, version, type, value)
SELECT {_PG_ID}, t.checkpoint_ns, t.channel, t.version, t.type, t.value
{_PG_FROM.format(table="channel_values")}
ORDER BY 1, 2, 3""",
    f"""INSERT INTO bench.writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel,
                              type, value, task_path, created_at)
SELECT {_PG_ID}, t.checkpoint_ns, t.checkpoint_id, t.task_id, t.idx, t.channel, t.type, t.value,
       t.task_path, {_PG_AT.format(column="created_at")}
{_PG_FROM.format(table="writes")}
ORDER BY 1, 2, 3, 4, 5""",
]


class RedisStore(Store):
    """Keys under ``pk-bench-<pid>-<hex>-retention-*`` (SCAN + UNLINK at exit): the store under
    ``...-store``, the template thread under ``...-tpl``."""

    name = "redis"

    def __init__(self, url: str):
        import redis
        self.url, self.run = url, f"pk-bench-{servers.run_id()}-retention"
        self.prefix, self.tpl_prefix = f"{self.run}-store", f"{self.run}-tpl"
        self.client: Any = redis.Redis.from_url(url)
        self.client.ping()
        self.baseline = self.used_memory()

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def writer_spec(self) -> Spec:
        return ("redis", self.url, self.prefix)

    def template_saver(self) -> AbstractContextManager[Any]:
        from langgraph_persist_kit.redis import RedisSaver
        return RedisSaver.from_conn_string(self.url, key_prefix=self.tpl_prefix)

    def load(self, threads: int, chunk: int) -> None:
        from langgraph_persist_kit.redis import _keys as k
        with self.saver():  # the key space's schema marker
            pass
        kinds = (*k.THREAD_KINDS, *k.BUCKET_KINDS)  # the order of KeySpace.thread_keys
        tpl = dict(zip(kinds, k.KeySpace(self.tpl_prefix).thread_keys("template"), strict=True))
        info = self.client.hgetall(tpl["info"])
        members = self.client.zrange(tpl["idx"], 0, -1)
        headers = self.client.hmget(tpl["cp"], members)
        assert all(k.unpack(h)[2] == "" for h in headers if h), "template has run ids"
        t0 = float(info[b"created"])
        offset = float(info[b"updated"]) - t0
        entries = [k.split_member(m) for m in members]  # [checkpoint_ns, checkpoint_id]
        space = k.KeySpace(self.prefix)
        old, recent = ages(time.time())
        pipe = self.client.pipeline(transaction=False)
        for i in range(threads):
            tid = thread_id(i)
            keys = dict(zip(kinds, space.thread_keys(tid), strict=True))
            for kind in k.THREAD_KINDS[1:]:  # idx cp body val widx w: as the template's
                pipe.copy(tpl[kind], keys[kind])
            born = old if i % 2 == 0 else recent
            pipe.hset(keys["info"], mapping={**info, b"created": repr(born),
                                             b"updated": repr(born + offset)})
            pipe.zadd(keys["threads"], {tid: born + offset})
            pipe.zadd(keys["checkpoints"], {k.SEP.join((cid, tid, ns)): 0 for ns, cid in entries})
            if (i + 1) % chunk == 0 or i + 1 == threads:
                pipe.execute()
        space.thread_keys.cache_clear()

    def size(self, compact: bool) -> int:
        return self.used_memory() - self.baseline

    def describe(self) -> str:
        server = self.client.info("server")["redis_version"]
        return (f"Redis {server} at {redact(self.url)}, keys under {self.run}-*; size = "
                "INFO memory used_memory minus its value before the run (other clients of the "
                "server count too)")

    def close(self) -> None:
        servers.unlink_keys(self.url, f"{self.run}-*", batch=2000)
        self.client.close()


def open_store(backend: str, urls: dict[str, str]) -> Store:
    """A fresh store; ``urls``: the servers by backend, and optionally ``"sqlite"``: the
    directory the SQLite files go in (a temporary one under it, removed at exit)."""
    if backend == "sqlite":
        return SqliteStore(urls.get("sqlite"))
    if backend == "postgres":
        return PostgresStore(urls["postgres"])
    return RedisStore(urls["redis"])
