"""Reading store URLs.

Owns: what each backend accepts as ``conn`` / URL, and masking the secrets in them
(`redact`, `scrub`) wherever they reach a message.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from langgraph_persist_kit.errors import ConfigurationError

SQLITE_SCHEME = "sqlite://"


def backend_of(url: str) -> str:
    """``"sqlite"``, ``"postgres"`` or ``"redis"`` for a store URL.

    Raises:
        ConfigurationError: For a URL of no known backend.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a store URL must be a string, not {type(url).__name__}")
    lowered = url.lower()
    if lowered.startswith(SQLITE_SCHEME):
        return "sqlite"
    if lowered.startswith(("postgresql://", "postgres://")):
        return "postgres"
    if lowered.startswith(("redis://", "rediss://")):
        return "redis"
    raise ConfigurationError(
        f"unknown store URL {redact(url)!r}: use sqlite:///relative.db, sqlite:////absolute.db, "
        "postgresql://user@host/db, redis://host:6379/0 or rediss://..."
    )


def sqlite_path(conn: str | os.PathLike[str]) -> str:
    """The file path (or ``":memory:"``) that a SQLite ``conn`` names; see `sqlite_target`."""
    return sqlite_target(conn)[0]


def sqlite_target(conn: str | os.PathLike[str]) -> tuple[str, dict[str, str]]:
    """``(path, options)``: the file (or ``":memory:"``) a SQLite ``conn`` names, and
    the options in a URL's query (``sqlite:///agents.db?synchronous=normal``).

    Accepts a ``pathlib.Path``, ``"agents.db"``, ``":memory:"``, ``"sqlite:///relative.db"``,
    ``"sqlite:////absolute.db"`` and ``"sqlite:///:memory:"``. A plain path has no
    query: every character is part of the file name.

    Raises:
        ConfigurationError: For another scheme or an empty path.
    """
    if isinstance(conn, os.PathLike):
        conn = os.fspath(conn)
    if not isinstance(conn, str):
        raise ConfigurationError(
            f"a SQLite conn must be a path or URL string, not {type(conn).__name__}"
        )
    options: dict[str, str] = {}
    if "://" in conn:
        if not conn.lower().startswith(SQLITE_SCHEME + "/"):
            raise ConfigurationError(
                f"{redact(conn)!r} is not a SQLite URL: use sqlite:///relative.db or sqlite:////abs.db"
            )
        conn, _, query = conn[len(SQLITE_SCHEME) + 1 :].partition("?")
        options = dict(parse_qsl(query, keep_blank_values=True))
    if not conn:
        raise ConfigurationError("the SQLite URL names no file: use sqlite:///agents.db")
    return conn, options


def take_query_param(url: str, name: str) -> tuple[str, str | None]:
    """Take one of our own query parameters out of a URL (drivers would reject it).

    ``postgresql://host/db?schema=tenant_a&sslmode=require`` with ``"schema"``
    gives ``("postgresql://host/db?sslmode=require", "tenant_a")``.
    """
    parts = urlsplit(url)
    items = parts.query.split("&") if parts.query else []
    ours = [item for item in items if item.split("=", 1)[0] == name]
    if not ours:
        return url, None  # untouched: other parameters keep their exact encoding
    rest = "&".join(item for item in items if item not in ours)
    value = unquote(ours[-1].split("=", 1)[1] if "=" in ours[-1] else "")
    return urlunsplit(parts._replace(query=rest)), value


SECRET_KEYS = ("password", "passwd", "pwd", "sslpassword", "token", "secret", "auth",
               "access_token", "api_key", "apikey")
"""Option names whose values are secrets, in URL queries and libpq ``key=value`` strings."""

MASK = "***"
_USERINFO_SAFE = ":%!$&'()*+,;=~"  # RFC 3986 sub-delims, ":" and existing escapes

_KEYS = "|".join(SECRET_KEYS)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_QUERY_SECRET = re.compile(rf"(?i)([?&;](?:{_KEYS})=)[^&#]*")
# libpq key=value: a value is 'quoted (with \\ escapes)' or runs to the next space
_KEYWORD_SECRET = re.compile(
    rf"(?i)(?<![\w.-])((?:{_KEYS})\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s']*)"
)


def redact(conn: object) -> str:
    """``conn`` (a store URL, a libpq ``key=value`` string, or a message holding them)
    with every secret replaced by ``***``.

    Masks a URL's userinfo password, even one holding raw ``@``, ``:``, ``/``
    or spaces (everything up to the URL's last ``@`` is userinfo), and the
    values of ``password``, ``token``, ``secret`` and the other `SECRET_KEYS`
    in URL queries and libpq ``key=value`` strings (quoted values included).
    Works on text that no driver could parse, so an error about a malformed
    URL never echoes its secret. Non-strings are turned into ``str`` first.

    Args:
        conn: e.g. ``"postgresql://me:p@ss@db/app?sslpassword=x"`` or
            ``"host=db password='a b'"``; or a message such as
            ``"cannot reach redis://:tok@cache:6379"``.

    Returns:
        e.g. ``"postgresql://me:***@db/app?sslpassword=***"``.
    """
    text = str(conn)
    if _SCHEME.match(text.strip()):
        return _redact_url(text)  # one whole URL: its userinfo may hold spaces
    pieces, done = [], 0
    for url in _URL_IN_TEXT.finditer(text):  # in a message, a URL ends at whitespace
        found = url.group().rstrip("'\",;.)>]")  # not the message's punctuation
        pieces += [_KEYWORD_SECRET.sub(rf"\1{MASK}", text[done:url.start()]),
                   _redact_url(found)]
        done = url.start() + len(found)
    return "".join([*pieces, _KEYWORD_SECRET.sub(rf"\1{MASK}", text[done:])])


def _userinfo(url: str) -> tuple[int, int]:
    """``(start, end)`` of a URL's userinfo (``end`` is its ``@``; ``-1`` without one).

    Passwords hold raw ``@`` (and ``?``) in practice, so the userinfo runs to
    the last ``@`` before the first ``?``, or to the last ``@`` when none comes
    before a ``?``.
    """
    scheme = _SCHEME.search(url)
    start = scheme.end() if scheme else 0
    query = url.find("?", start)
    at = url.rfind("@", start, query) if query >= 0 else -1
    return start, at if at >= 0 else url.rfind("@", start)


def _redact_url(url: str) -> str:
    url = _QUERY_SECRET.sub(rf"\1{MASK}", url)
    start, at = _userinfo(url)
    user, colon, _ = url[start:at].partition(":") if at >= 0 else ("", "", "")
    return f"{url[:start]}{user}:{MASK}{url[at:]}" if colon else url


def quote_userinfo(url: str) -> str:
    """``url`` with the characters a URL's userinfo may not hold raw (``@``, ``?``, ``#``,
    ``/``) percent-encoded, as URLs require: libpq would split
    ``postgresql://me:p@ss@db/app`` at the first ``@`` and look for host ``ss@db``, and
    ``urlsplit`` would start the query at a ``?`` in a password. Existing ``%XX`` stay."""
    start, at = _userinfo(url)
    userinfo = url[start:at] if at >= 0 else ""
    query = userinfo.find("?")
    if not userinfo or (query >= 0 and "/" in userinfo[:query]):
        return url  # no userinfo: that "@" is in the query of a path (``/db?name=a@b``)
    return f"{url[:start]}{quote(userinfo, safe=_USERINFO_SAFE)}{url[at:]}"


def secrets_of(conn: str) -> list[str]:
    """The secrets in ``conn`` (a URL's userinfo password and secret query values, or a
    ``key=value`` string's secret values), as written, unquoted and percent-decoded,
    longest first: to mask in driver messages that might echo a piece of ``conn``."""
    text = conn.strip() if isinstance(conn, str) else ""
    found: set[str] = set()
    scheme = _SCHEME.match(text)
    if scheme:
        found |= {text[m.end(1):m.end()] for m in _QUERY_SECRET.finditer(text)}
        start, at = _userinfo(_QUERY_SECRET.sub(rf"\1{MASK}", text))
        found.add(text[start:at].partition(":")[2] if at >= 0 else "")
    else:
        for match in _KEYWORD_SECRET.finditer(text):
            value = match.group(2)
            found |= {value, re.sub(r"\\(.)", r"\1", value.strip("'"))}
    found |= {unquote(secret) for secret in found}
    return sorted((s for s in found if s and s != MASK), key=len, reverse=True)


def scrub(message: str, conn: str | None) -> str:
    """``message`` (e.g. a driver's error) with `redact` applied and every secret of
    ``conn`` (see `secrets_of`) masked wherever it appears, and its pieces between URL
    delimiters too (of 2 characters or more): a driver that misread a malformed URL
    may quote ``t@db`` of the password ``p@t@db``."""
    text = redact(message)
    for secret in secrets_of(conn or ""):
        pieces = [piece for piece in re.split(r"[@:/?#&=]", secret) if len(piece) >= 2]
        for piece in sorted({secret, *pieces}, key=len, reverse=True):
            text = text.replace(piece, MASK)
    return text
