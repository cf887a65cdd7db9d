"""Unit tier (no server): what `_checks` refuses and how it encodes metadata."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from langgraph_persist_kit._core.checks import (
    MAX_JSON_DEPTH,
    check_id,
    check_json,
    dump_json,
    filter_terms,
    metadata_matches,
    refuse_unknown,
)
from langgraph_persist_kit.errors import ConfigurationError


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("bad", ["a\x00b", "\udcff", "ok\ud800"])
def test_ids_no_store_can_hold_are_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="thread_id"):
        check_id(bad, "thread_id")


def test_ids_are_strings_of_their_value() -> None:
    assert check_id(42, "thread_id") == "42"
    assert check_id("emoji 🧵 'quote' {x}", "thread_id") == "emoji 🧵 'quote' {x}"


def test_json_depth_limit_is_exact() -> None:
    check_json(nested(MAX_JSON_DEPTH))
    with pytest.raises(ConfigurationError, match="nests deeper"):
        check_json(nested(MAX_JSON_DEPTH + 1))
    with pytest.raises(ConfigurationError, match="nests"):
        dump_json(nested(5000))  # past Python's recursion limit: still a clear error


@pytest.mark.parametrize("value", [{"\udcff": 1}, {"a": ["\udcff"]}, ["x", {"b": "\ud800"}]])
def test_lone_surrogates_anywhere_are_refused(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="lone surrogate"):
        dump_json(value)


def test_dump_json_is_canonical_and_agrees_with_the_full_walk() -> None:
    """The fast path (encode first, walk only when the text could hide a problem) refuses
    exactly what `check_json` refuses, on random metadata."""
    rng = random.Random(7)

    def make(depth: int) -> Any:
        kind = rng.choice(["str", "int", "list", "dict"] if depth < 120 else ["str"])
        if kind == "str":
            return rng.choice(["a", "é", "[{", "\udcff", "ok"])
        if kind == "int":
            return rng.randint(-5, 5)
        if kind == "list":
            return [make(depth + 1) for _ in range(rng.randint(0, 2))]
        return {rng.choice(["x", "y", "z"]): make(depth + 1) for _ in range(rng.randint(0, 2))}

    for _ in range(300):
        value = make(0)
        try:
            check_json(value)
            expected = None
        except ConfigurationError as exc:
            expected = exc
        if expected is None:
            text = dump_json(value)
            assert json.loads(text) == json.loads(json.dumps(value, sort_keys=True))
        else:
            with pytest.raises(ConfigurationError):
                dump_json(value)
    assert dump_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'


def test_filter_terms_and_matching_agree_with_in_memory_semantics() -> None:
    assert [t.kind for t in filter_terms({"a": None, "b": 1, "c": [1], "d": float("nan")})] == [
        "null", "scalar", "json", "never"]
    assert metadata_matches({"b": 1, "c": [1]}, {"a": None, "b": 1, "c": [1]})
    assert not metadata_matches({"b": 1}, {"b": "1"})
    with pytest.raises(ConfigurationError, match="filter keys"):
        filter_terms({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="JSON value"):
        filter_terms({"a": object()})


def test_unknown_options_are_named_with_a_hint_and_never_their_value() -> None:
    with pytest.raises(ConfigurationError) as caught:
        refuse_unknown({"synchronus": "s3cret"}, ("busy_timeout", "synchronous"), "SQLite URL")
    message = str(caught.value)
    assert "'synchronus'" in message and "did you mean 'synchronous'" in message
    assert "s3cret" not in message
    refuse_unknown({"synchronous": "full"}, ("busy_timeout", "synchronous"), "SQLite URL")
