"""What the Postgres savers send and what they leave in the tables: one round trip per
call, statements planned once, a bounded number of queries for a deep DeltaChannel
history, filters that can use the GIN indexes, no value in plaintext under an
EncryptedSerializer, and a NUL in metadata refused with a clear error."""

from __future__ import annotations

import ormsgpack
import psycopg
import pytest
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
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


def test_each_statement_is_planned_once_not_at_every_call(schema: str) -> None:
    # PostgreSQL re-plans a prepared statement at every call while each custom plan looks
    # cheaper than the generic one (as put's did while its bases check was in every put)
    with PostgresSaver.from_conn_string(module_url(), schema=schema, pool_max_size=1) as saver:
        parent, version, items = None, None, []
        for n in range(12):  # a growing list: after the first put, pieces with their bases
            version, items = saver.get_next_version(version), [*items, f"message {n}"]
            config = generate_config("t")
            if parent:
                config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
            checkpoint = generate_checkpoint(channel_values={"m": items},
                                             channel_versions={"m": version})
            parent = saver.put(config, checkpoint, generate_metadata(), {"m": version})
            saver.put_writes(parent, [("a", 1), ("b", 2)], "task")
            assert saver.get_tuple(parent).checkpoint["channel_values"]["m"] == items
        with saver.conn.connection() as conn:
            plans = conn.execute("SELECT statement, generic_plans, custom_plans"
                                 " FROM pg_prepared_statements").fetchall()
    assert len(plans) == 3  # put (with pieces), put_writes, get_tuple: prepared at 6 calls
    for statement, generic, custom in plans:
        assert custom <= 5 and generic > 0, statement[:60]


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
