"""What callers give the savers, checked before anything is written: options, ids,
metadata JSON and metadata filters.

Owns: the refusals every store shares (unknown options, bad append-delta options, NUL
characters, lone surrogates, JSON nested past `MAX_JSON_DEPTH`, filters that are not
JSON), canonical metadata JSON, how a filter matches metadata, and the metadata
of a copied checkpoint.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from langgraph_persist_kit.errors import ConfigurationError

M = TypeVar("M", bound=Mapping[str, Any])

# --- options ------------------------------------------------------------------


def refuse_unknown(options: Mapping[str, object], accepted: Sequence[str], where: str) -> None:
    """Refuse the first option not in ``accepted``, by name (never its value: it may be
    secret), with the closest accepted name and the whole list.

    Args:
        options: The options given, e.g. a ``from_conn_string`` call's extra keywords.
        accepted: The names that are taken.
        where: Where they were given, for the message: ``"SQLite URL"``, ...

    Raises:
        ConfigurationError: For an option ``accepted`` lacks.
    """
    for name in options:
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(
                f"unknown {where} option {name!r}{hint}; accepted: {', '.join(accepted)}"
            )


APPEND_OPTIONS = ("append_deltas", "append_cache_bytes")
"""The append-delta options every saver takes (`_core/deltas.py`), as keywords of its
constructor and ``from_conn_string`` or in a store URL's query."""

_FLAGS = {"true": True, "1": True, "yes": True, "on": True,
          "false": False, "0": False, "no": False, "off": False}


def url_flag(text: str) -> bool | None:
    """A yes/no option written in a URL (true/false, 1/0, yes/no, on/off, any case);
    ``None`` for anything else."""
    return _FLAGS.get(text.strip().lower())


def check_append_options(append_deltas: object, append_cache_bytes: object) -> None:
    """Refuse append-delta options of the wrong type or range, by name.

    Raises:
        ConfigurationError: When ``append_deltas`` is not a bool, or
            ``append_cache_bytes`` is neither ``None`` nor a whole number of bytes >= 0.
    """
    if not isinstance(append_deltas, bool):
        raise ConfigurationError(f"append_deltas must be True or False, not {append_deltas!r}")
    if append_cache_bytes is not None and (
        isinstance(append_cache_bytes, bool) or not isinstance(append_cache_bytes, int)
        or append_cache_bytes < 0
    ):
        raise ConfigurationError(
            f"append_cache_bytes must be a whole number of bytes >= 0, not {append_cache_bytes!r}"
        )


def append_options(url_options: Mapping[str, str], append_deltas: bool | None = None,
                   append_cache_bytes: int | None = None) -> dict[str, Any]:
    """The saver constructor's ``append_deltas`` / ``append_cache_bytes``, from a URL's
    query and ``from_conn_string``'s keywords (a keyword that is not ``None`` wins).

    Args:
        url_options: The URL's query; only `APPEND_OPTIONS` are read from it
            (``append_deltas=false``: true/false, 1/0, yes/no or on/off;
            ``append_cache_bytes=1048576``).
        append_deltas, append_cache_bytes: The keywords; ``None`` is not given.

    Raises:
        ConfigurationError: For a bad value in the URL or the keywords, naming the option.
    """
    if "append_deltas" in url_options:
        text = url_options["append_deltas"]
        flag = url_flag(text)
        if flag is None:
            raise ConfigurationError(
                f"append_deltas in the URL must be true or false, not {text!r}"
            )
        append_deltas = flag if append_deltas is None else append_deltas
    if "append_cache_bytes" in url_options:
        text = url_options["append_cache_bytes"]
        try:
            size = int(text)
        except ValueError:
            raise ConfigurationError(
                f"append_cache_bytes in the URL must be a whole number of bytes, not {text!r}"
            ) from None
        append_cache_bytes = size if append_cache_bytes is None else append_cache_bytes
    options = {"append_deltas": True if append_deltas is None else append_deltas,
               "append_cache_bytes": append_cache_bytes}
    check_append_options(**options)
    return options


# --- ids ----------------------------------------------------------------------


def check_id(value: Any, what: str) -> str:
    """``value`` as a string id; NUL characters and lone surrogates are refused (stores
    cannot all hold them).

    Raises:
        ConfigurationError: For an id containing a NUL character or a lone surrogate.
    """
    text = str(value)
    if "\x00" in text:
        raise ConfigurationError(f"{what} must not contain NUL characters: {text!r}")
    check_text(text, what)
    return text


def before_checkpoint_id(before: Any) -> str | None:
    """The checkpoint id that ``list(before=...)`` names, in each shape LangGraph passes.

    ``before`` may be a config, ``{"configurable": {"checkpoint_id": str, ...}}``
    (``get_state_history``); the flat ``{"checkpoint_id": str, ...}`` that the LangGraph
    Agent Server passes from its history endpoint; or the id itself. ``None``, or a
    mapping without an id, means no bound.

    Raises:
        ConfigurationError: For another type, or an id `check_id` refuses.
    """
    if before is None:
        return None
    if isinstance(before, str):
        return check_id(before, "checkpoint_id")
    if not isinstance(before, Mapping):
        raise ConfigurationError(
            "before must be a config {'configurable': {'checkpoint_id': ...}}, "
            f"{{'checkpoint_id': ...}} or a checkpoint id, not {type(before).__name__}"
        )
    configurable = before.get("configurable")
    found = configurable.get("checkpoint_id") if isinstance(configurable, Mapping) else None
    if found is None:
        found = before.get("checkpoint_id")
    return None if found is None else check_id(found, "checkpoint_id")


def check_text(text: str, what: str) -> str:
    """``text`` if UTF-8 can encode it (no lone surrogate such as ``"\\udcff"``, which
    ``os.fsdecode`` and ``errors="surrogateescape"`` produce from undecodable bytes).

    Raises:
        ConfigurationError: Otherwise, naming where the first one is.
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigurationError(
                f"{what} must be valid Unicode: lone surrogate {text[exc.start]!r} at "
                f"position {exc.start} of {text[:80]!r}"
            ) from None
    return text


# --- metadata -----------------------------------------------------------------


MAX_JSON_DEPTH = 100
"""How deep metadata and filter values may nest (dicts and lists): far beyond any real
metadata, and well inside what Python's JSON encoder (recursion limit), orjson (1024),
SQLite's JSON functions (1000) and PostgreSQL's JSONB accept."""


def check_json(value: Any, what: str = "metadata") -> None:
    """Refuse a JSON value nested deeper than `MAX_JSON_DEPTH`, or holding a key or string
    with a lone surrogate; walks without recursion, so any depth gets this error.

    Raises:
        ConfigurationError: Naming the problem and the path to it.
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            check_text(item, f"{what}{path}")
        elif isinstance(item, (dict, list, tuple)):
            if depth >= MAX_JSON_DEPTH:
                raise ConfigurationError(
                    f"{what} nests deeper than {MAX_JSON_DEPTH} levels (at {what}{path[:80]})"
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str):
                        check_text(key, f"a key of {what}{path}")
                    stack.append((child, depth + 1, f"{path}[{key!r}]"))
            else:
                stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))


def dump_json(value: Any, what: str = "metadata") -> str:
    """Canonical JSON: sorted keys, compact, UTF-8 kept as is.

    On the hot path (every ``put``), so the encoder runs first and `check_json`'s walk
    only when the text could hide a problem: it is not valid UTF-8 (a lone surrogate),
    or it holds more brackets than `MAX_JSON_DEPTH` (it might nest too deep).

    Raises:
        ConfigurationError: When ``value`` holds something JSON cannot represent, nests
            too deep or holds a lone surrogate (`check_json`).
    """
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except RecursionError:
        check_json(value, what)  # raises, naming where
        raise ConfigurationError(f"{what} nests too deep") from None
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{what} must be JSON-serialisable: {exc}") from exc
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            check_json(value, what)  # raises, naming where
            raise
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        check_json(value, what)
    return text


def refuse_nul(value: Any, what: str) -> None:
    """Refuse NUL characters anywhere in a JSON value (keys included).

    PostgreSQL's JSONB cannot hold them; a clear error beats the server's
    "unsupported Unicode escape sequence".

    Raises:
        ConfigurationError: When a string or key of ``value`` holds ``"\\x00"``.
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise ConfigurationError(f"{what} must not contain NUL characters: {value!r}")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, what)
            refuse_nul(item, what)
    elif isinstance(value, (list, tuple)):
        for item in value:
            refuse_nul(item, what)


class FilterTerm(NamedTuple):
    """One ``key == value`` condition of a metadata filter, ready for a store."""

    key: str
    kind: str  # "scalar", "null", "json" or "never"
    value: Any  # the scalar itself, None, or canonical JSON text


def filter_terms(filter: Mapping[str, Any] | None) -> list[FilterTerm]:
    """Validate a ``list(filter=...)`` / ``list_threads(filter=...)`` mapping.

    Keys are never spliced into queries: stores bind them as parameters, so a
    key such as ``"a') OR 1=1 --"`` simply matches nothing. ``None`` matches a
    missing key too, as ``InMemorySaver`` does.

    Raises:
        ConfigurationError: When the filter is not a mapping of string keys to
            JSON values.
    """
    if not filter:
        return []
    if not isinstance(filter, Mapping):
        raise ConfigurationError(f"filter must be a dict, not {type(filter).__name__}")
    terms = []
    for key, value in filter.items():
        if not isinstance(key, str):
            raise ConfigurationError(f"filter keys must be strings, not {key!r}")
        check_text(key, "a filter key")
        if isinstance(value, str):
            check_text(value, f"the filter value for {key!r}")
        if value is None:
            terms.append(FilterTerm(key, "null", None))
        elif isinstance(value, float) and not math.isfinite(value):
            terms.append(FilterTerm(key, "never", value))  # stored metadata holds no NaN/inf
        elif isinstance(value, (str, int, float, bool)):
            terms.append(FilterTerm(key, "scalar", value))
        elif isinstance(value, (dict, list, tuple)):
            terms.append(FilterTerm(key, "json", dump_json(value, f"the filter value for {key!r}")))
        else:
            raise ConfigurationError(
                f"filter value for {key!r} must be a JSON value, not {type(value).__name__}"
            )
    return terms


def copied_metadata(metadata: M, thread_id: str) -> M | dict[str, Any]:
    """The metadata of a checkpoint copied, forked or imported into ``thread_id``.

    A ``"thread_id"`` key names the new thread, as the LangGraph Agent Server's own
    thread copy does (so ``list(filter={"thread_id": ...})`` finds each thread's own
    checkpoints); every other key is kept, ``run_id`` included. Metadata that needs
    no change is returned as given (a saver's raw form stays raw).
    """
    if metadata.get("thread_id", thread_id) == thread_id:
        return metadata
    return {**metadata, "thread_id": thread_id}


def metadata_matches(metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    """Whether decoded ``metadata`` passes ``filter``, as the SQL stores' filters decide.

    For stores that match in Python (Redis): same terms as `filter_terms`, so a
    filter selects the same checkpoints on every backend.
    """
    for term in filter_terms(filter):
        stored = metadata.get(term.key)
        if term.kind == "null":
            ok = stored is None
        elif term.kind == "json":
            ok = isinstance(stored, (dict, list)) and dump_json(stored) == term.value
        elif term.kind == "scalar":
            ok = not isinstance(stored, (dict, list)) and stored == term.value
        else:
            ok = False
        if not ok:
            return False
    return True
