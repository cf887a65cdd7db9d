"""What the Postgres savers send and what they leave in the tables: one round trip per
call, sessions that plan each statement once, a bounded number of queries for a deep
DeltaChannel history, filters that can use the GIN indexes, no value in plaintext under
an EncryptedSerializer, and a NUL in metadata refused with a clear error."""

from __future__ import annotations

import ormsgpack
import psycopg
import pytest
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.types import Command

from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.postgres import PostgresSaver
from tests.helpers.backends import postgres_url
from tests.helpers.delta import build_chain
from tests.helpers.graphs import interrupt_graph
from tests.helpers.postgres import CountingCursor, count_round_trips
from tests.helpers.postgres_checkpoints import put_one


def module_url() -> str:
    """This module's database (created on first use, never at import: worker
    processes re-import the module)."""
    return postgres_url(__name__)



def test_one_round_trip_per_call(schema: str) -> None:
    conn = psycopg.connect(module_url(), autocommit=True, cursor_factory=CountingCursor)
    saver = PostgresSaver(conn, schema=schema)
    saver.setup()
    parent = put_one(saver, "t")
    assert count_round_trips(lambda: put_one(saver, "t", parent)) == 1
    latest = saver.get_tuple(generate_config("t"))
    writes = [("a", 1), ("b", 2)]
    assert count_round_trips(lambda: saver.put_writes(latest.config, writes, "x")) == 1
    assert count_round_trips(lambda: saver.get_tuple(generate_config("t"))) == 1
    config = None
    for _ in range(250):
        config = put_one(saver, "long", config)
    assert count_round_trips(lambda: next(iter(saver.list(generate_config("long"))))) == 1
    assert count_round_trips(lambda: list(saver.list(generate_config("long")))) == 3
    conn.close()


def _session_settings(saver: PostgresSaver) -> tuple[str, str, str]:
    with saver.conn.connection() as conn:  # type: ignore[union-attr]  # from_conn_string: a pool
        row = conn.execute("SELECT current_setting('plan_cache_mode'), current_setting('jit'),"
                           " current_setting('statement_timeout')").fetchone()
    assert row is not None
    return row


def test_pooled_sessions_plan_once_and_keep_the_urls_options(schema: str) -> None:
    url = psycopg.conninfo.make_conninfo(module_url(), options="-c statement_timeout=12345")
    with PostgresSaver.from_conn_string(url, schema=schema) as saver:
        assert _session_settings(saver) == ("force_generic_plan", "off", "12345ms")
        parent = put_one(saver, "t")
        for _ in range(7):  # prepared from the sixth use, then run with the generic plan
            parent = put_one(saver, "t", parent)
        assert saver.get_tuple(generate_config("t")).config == parent
    with PostgresSaver.from_conn_string(module_url(), schema=schema, pgbouncer=True) as saver:
        assert _session_settings(saver)[0] == "auto"  # PgBouncer refuses startup options


def test_delta_history_takes_a_bounded_number_of_queries(schema: str) -> None:
    conn = psycopg.connect(module_url(), autocommit=True, cursor_factory=CountingCursor)
    saver = PostgresSaver(conn, schema=schema)
    saver.setup()
    ids = build_chain(
        [saver],
        lambda s, name, *a, **k: getattr(s, name)(*a, **k),
        "deep",
        700,
        snapshot_every=None,
    )
    config = {"configurable": {"thread_id": "deep", "checkpoint_ns": "", "checkpoint_id": ids[-1]}}
    result: dict = {}
    queries = count_round_trips(
        lambda: result.update(saver.get_delta_channel_history(config=config, channels=["d"]))
    )
    assert len(result["d"]["writes"]) == 2 * 699  # every ancestor's writes, oldest first
    assert queries <= 4  # walk rounds of 64, 512, 4096 ancestors, then seeds and writes
    conn.close()


def test_filters_can_use_the_gin_indexes(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema) as saver:
        put_one(saver, "t")
        plans = saver.plans
        queries = [
            next(
                plans.list_checkpoints(
                    saver.serde, None, filter={"user": "ann"}, before=None, limit=10
                )
            ),
            next(plans.list_threads(filter={"user": "ann", "tags": ["a"]}, limit=10)),
        ]
    with psycopg.connect(module_url()) as conn:
        conn.execute("SET enable_seqscan = off")
        for query, index in zip(
            queries, ("checkpoints_by_metadata", "threads_by_metadata"), strict=True
        ):
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query.sql, query.params))
            assert index in plan, plan


def test_encryption_leaves_no_value_in_plaintext(schema: str) -> None:
    secret, number = "TOPSECRET-7f3a", 987_654_321_123
    serde = EncryptedSerializer.from_pycryptodome_aes(key=b"0123456789abcdef")
    with PostgresSaver.from_conn_string(module_url(), schema=schema, serde=serde) as saver:
        graph = interrupt_graph().compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "enc"}}
        graph.invoke({"topic": secret, "answer": number}, config)
        assert graph.get_state(config).next == ("ask",)  # paused: the interrupt is a pending write
        saver.put_writes(saver.get_tuple(config).config, [("log", secret)], "extra-task")
        snapshot = graph.invoke(Command(resume=secret), config)
        assert snapshot["answer"] == secret
    with psycopg.connect(module_url()) as conn:
        dump = "\n".join(
            row[0]
            for table in ("threads", "checkpoints", "channel_values", "writes")
            for row in conn.execute(f'SELECT t::text FROM "{schema}".{table} AS t').fetchall()
        )
    assert dump.count("\n") >= 10  # threads, checkpoints, values and writes were stored
    for plain in (secret.encode(), ormsgpack.packb(number)):
        assert plain.hex() not in dump
    assert secret not in dump


def test_nul_in_nested_metadata_is_a_clear_error(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema) as saver:
        config = generate_config("t")
        checkpoint = generate_checkpoint()
        with pytest.raises(ConfigurationError, match="NUL"):
            saver.put(config, checkpoint, {"a": {"b": "x\x00y"}}, {})
        stored = saver.put(config, checkpoint, {"a": {"b": "x\\u0000y"}}, {})  # text, no NUL
        assert saver.get_tuple(stored).metadata["a"] == {"b": "x\\u0000y"}
