"""The options of ``from_conn_string``, read from its URL and keywords.

Owns: which options a Redis URL or keyword may carry (each refused by name
otherwise) and their validation; the pools they open are `_pools`'.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from langgraph_persist_kit._core.checks import APPEND_OPTIONS, append_options
from langgraph_persist_kit._core.urls import backend_of, quote_userinfo, redact
from langgraph_persist_kit.errors import ConfigurationError

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a connection before failing."""

DEFAULT_POOL_MAX_SIZE = 50
"""Connections a saver opens at most (on a cluster: per node)."""

DEFAULT_POOL_TIMEOUT = 30.0
"""Seconds a call waits for a free connection before failing."""

POOL_EXHAUSTED = "No connection available."
"""redis-py's message when a blocking pool has no free connection in time (ours too)."""

SAVER_OPTIONS = ("key_prefix", "ttl", "refresh_on_read", "pool_max_size", "pool_timeout",
                 *APPEND_OPTIONS)
CONNECTION_OPTIONS = ("db", "socket_timeout", "socket_connect_timeout", "socket_keepalive",
                      "retry_on_timeout", "health_check_interval", "client_name", "protocol")
"""redis-py's own connection options, passed on to it."""
TLS_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile",
               "ssl_check_hostname")
"""redis-py's TLS options, for ``rediss://`` URLs only."""
ACCEPTED = SAVER_OPTIONS + CONNECTION_OPTIONS + TLS_OPTIONS
INSTEAD = {
    "max_connections": "use pool_max_size",
    "timeout": "use pool_timeout",
    "username": "put it in the URL: rediss://user:password@host:6379/0",
    "password": "put it in the URL: rediss://user:password@host:6379/0",
}


@dataclass(frozen=True)
class Settings:
    """What ``from_conn_string`` opens: read by `read_settings`.

    Attributes:
        url: The URL for redis-py: the saver's own options taken out.
        key_prefix, ttl, refresh_on_read: The saver's (see `RedisSaver`).
        pool_max_size: The most connections open at once (on a cluster: per node).
        pool_timeout: Seconds a call waits for a free connection, > 0.
        connection: redis-py connection options given as keywords.
        append_deltas, append_cache_bytes: The saver's (see `RedisSaver`).
    """

    url: str = field(repr=False)  # may hold a password
    key_prefix: str | None
    ttl: timedelta | float | None
    refresh_on_read: bool
    pool_max_size: int
    pool_timeout: float
    connection: dict[str, Any]
    append_deltas: bool = True
    append_cache_bytes: int | None = None

    def client_options(self) -> dict[str, Any]:
        """Keywords for redis-py's ``from_url`` (the URL's own options win)."""
        return {"socket_connect_timeout": CONNECT_TIMEOUT, **self.connection,
                "decode_responses": False, "max_connections": self.pool_max_size}

    def pool(self, pool_class: Any) -> Any:
        """A blocking pool (``pool_class``: sync or asyncio) for a standalone client."""
        return pool_class.from_url(self.url, timeout=self.pool_timeout, **self.client_options())


def read_settings(conn: str, given: dict[str, Any]) -> Settings:
    """Check and combine the options of a URL and of keywords (a keyword wins).

    Args:
        conn: A ``redis://`` or ``rediss://`` URL; its query may hold any of
            `ACCEPTED`.
        given: The keywords; ``None`` values count as not given.

    Raises:
        ConfigurationError: For a URL that is not Redis, an option not in
            `ACCEPTED` (named, with the accepted ones), a TLS option on a
            ``redis://`` URL, or a value of the wrong type or range.
    """
    if not isinstance(conn, str):
        raise ConfigurationError(f"a Redis conn must be a URL string, not {type(conn).__name__}")
    if backend_of(conn) != "redis":
        raise ConfigurationError(f"{redact(conn)!r} is not a Redis URL: use redis:// or rediss://")
    conn = quote_userinfo(conn)  # a raw "?" or "@" in a password is not a query
    tls = conn.lower().startswith("rediss://")
    given = {name: value for name, value in given.items() if value is not None}
    for name in given:
        check_name(name, "keyword", tls)
    url, from_url = _take_saver_options(conn, tls)
    mine = {**from_url, **{k: v for k, v in given.items() if k in SAVER_OPTIONS}}
    size = mine.get("pool_max_size", DEFAULT_POOL_MAX_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigurationError(f"pool_max_size must be a whole number >= 1, not {size!r}")
    timeout = mine.get("pool_timeout", DEFAULT_POOL_TIMEOUT)
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout) or timeout <= 0):
        raise ConfigurationError(f"pool_timeout must be seconds > 0, not {timeout!r}")
    refresh = mine.get("refresh_on_read", False)
    if not isinstance(refresh, bool):
        raise ConfigurationError(f"refresh_on_read must be true or false, not {refresh!r}")
    appends = append_options({k: v for k, v in from_url.items() if k in APPEND_OPTIONS},
                             given.get("append_deltas"), given.get("append_cache_bytes"))
    return Settings(url, mine.get("key_prefix"), mine.get("ttl"), refresh, size, float(timeout),
                    {k: v for k, v in given.items() if k not in SAVER_OPTIONS}, **appends)


def check_name(name: str, where: str, tls: bool) -> None:
    """Refuse an option name a saver cannot take, saying why and what it accepts.

    Raises:
        ConfigurationError: Naming the option (never its value: it may be secret).
    """
    place = "in the URL" if where == "url" else "(keyword)"
    if name in INSTEAD:
        raise ConfigurationError(f"Redis option {name!r} {place} is not taken: {INSTEAD[name]}")
    if name in TLS_OPTIONS and not tls:
        raise ConfigurationError(f"Redis option {name!r} {place} needs a rediss:// URL")
    if name not in ACCEPTED:
        close = difflib.get_close_matches(name, ACCEPTED, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigurationError(
            f"unknown Redis option {name!r} {place}{hint}; accepted: {', '.join(ACCEPTED)}"
        )


def _take_saver_options(url: str, tls: bool) -> tuple[str, dict[str, Any]]:
    """``(url without the saver's options, those options as values)``; checks every name."""
    parts = urlsplit(url)
    kept, ours = [], {}
    for item in filter(None, parts.query.split("&")):
        raw_name, _, raw_value = item.partition("=")
        name = unquote(raw_name)
        check_name(name, "url", tls)
        if name in APPEND_OPTIONS:
            ours[name] = unquote(raw_value)  # read by `append_options`
        elif name in SAVER_OPTIONS:
            ours[name] = _url_value(name, unquote(raw_value))
        else:
            kept.append(item)  # redis-py reads it; other items keep their exact encoding
    return urlunsplit(parts._replace(query="&".join(kept))), ours


def _url_value(name: str, text: str) -> Any:
    """The value of one of the saver's options written in a URL.

    Raises:
        ConfigurationError: When ``text`` is not of the option's type.
    """
    try:
        if name == "key_prefix":
            return text
        if name == "pool_max_size":
            return int(text)
        if name in ("ttl", "pool_timeout"):
            return float(text)
        return {"true": True, "1": True, "yes": True,
                "false": False, "0": False, "no": False}[text.lower()]
    except (KeyError, ValueError):
        kind = {"pool_max_size": "a whole number", "refresh_on_read": "true or false"}
        raise ConfigurationError(
            f"{name} in the URL must be {kind.get(name, 'seconds')}, not {text!r}"
        ) from None


@contextmanager
def driver_configuration_errors() -> Iterator[None]:
    """redis-py's refusal of an option value (``?db=x``) as a `ConfigurationError`."""
    try:
        yield
    except ConfigurationError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"bad Redis option: {exc}") from exc
