"""Database tables named by URL, and keeping their passwords out of notebooks and reports.

A ``*_path`` parameter may name a table in a database: ``postgresql://user@host:5432/shop?table=transactions``,
``postgresql://postgres:@/postgres?host=/run/pg&table=transactions`` or
``duckdb:///data/shop.duckdb?table=transactions`` (``schema.table`` for another schema). Only the URL without
its password is ever shown or recorded (:func:`redact_url`). A password written in the URL is taken out by the
runner before the notebook starts and passed to it through the environment (:func:`stash_passwords`);
better still, leave it out and let the database client find it (``PGPASSWORD``, ``~/.pgpass``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: URL schemes of database tables and the engine each names
URL_SCHEMES = {"postgresql": "PostgreSQL", "postgres": "PostgreSQL", "duckdb": "DuckDB"}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: the environment variable the runner passes URL passwords in (never the notebook or the report)
PASSWORDS_ENV = "CXRESEARCH_DB_PASSWORDS"


def is_url(path: object) -> bool:
    """Whether a ``*_path`` value names a table by URL rather than a file."""
    return isinstance(path, str) and bool(_URL.match(path))


@dataclass(frozen=True)
class TableURL:
    """A database table named by URL: where to connect, which table, and the URL as reports show it."""

    scheme: str  # postgresql or duckdb
    connect: str  # the URL without the ``table`` parameter (with the password, when one was given)
    table: str  # the table name; ``schema.table`` names a table in another schema
    shown: str  # the URL without any password: what provenance and messages show

    @property
    def engine(self) -> str:
        return URL_SCHEMES[self.scheme]


def redact_url(url: str) -> str:
    """``url`` without a password (in the user part or a ``password`` query parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "password"],
                      safe="/:")
    out = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    if url.split(":", 1)[1].startswith("//") and not out.split(":", 1)[1].startswith("//"):
        out = f"{parts.scheme}://{out[len(parts.scheme) + 1:]}"  # urlunsplit drops an empty host's "//"
    return out


def url_password(url: str) -> str | None:
    """The password written in ``url`` (None without one)."""
    parts = urlsplit(url)
    given = dict(parse_qsl(parts.query)).get("password")
    return parts.password or given or None


def parse_url(url: str) -> TableURL:
    """Split a table URL into where to connect and which table (:class:`TableURL`).

    Raises
    ------
    ValueError
        An unknown scheme or no ``table`` parameter (the message is the problem and its fix).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    shown = redact_url(url)
    if scheme not in URL_SCHEMES:
        raise ValueError(f"{shown} is a URL of a kind this suite cannot read ({scheme}://). Fix: give a file, a "
                         "Parquet folder, or a table as postgresql://user@host:5432/db?table=name or "
                         "duckdb:///path/file.duckdb?table=name.")
    query = parse_qsl(parts.query, keep_blank_values=True)
    table = [v for k, v in query if k == "table"]
    if len(table) != 1 or not table[0].strip():
        raise ValueError(f"{shown} does not say which table to read. Fix: add ?table=name (or &table=name) to the "
                         "URL, e.g. postgresql://user@host:5432/shop?table=transactions.")
    rest = urlencode([(k, v) for k, v in query if k != "table"], safe="/:")
    connect = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
    return TableURL(scheme, connect, table[0].strip(), shown)


def stashed_password(url: TableURL | str) -> str | None:
    """The password (or Spark Connect token) the runner passed for this URL, as shown, out of band (see
    :data:`PASSWORDS_ENV`)."""
    try:
        stash = json.loads(os.environ.get(PASSWORDS_ENV, "{}"))
    except ValueError:
        return None
    return stash.get(url if isinstance(url, str) else url.shown) if isinstance(stash, dict) else None


_TOKEN = re.compile(r";token=([^;]*)", re.IGNORECASE)


def master_token(master: str) -> str | None:
    """The authentication token of a Spark Connect URL (``sc://host:443/;token=...``), if it has one."""
    m = _TOKEN.search(master) if master.startswith("sc://") else None
    return m.group(1) if m else None


def redact_master(master: str) -> str:
    """A Spark master URL without its Spark Connect token."""
    return _TOKEN.sub("", master)


def with_token(master: str) -> str:
    """A Spark Connect URL with the token the runner stashed for it put back (as given, when none was)."""
    token = stashed_password(master) if master.startswith("sc://") and not master_token(master) else None
    return f"{master};token={token}" if token else master


def stash_passwords(parameters: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parameters with every table URL's password taken out, and the passwords by URL as shown.

    The runner passes the second to the notebook's kernel in :data:`PASSWORDS_ENV`, so that neither the
    executed notebook nor its report holds a password.
    """
    out, secrets = dict(parameters), {}
    for name, value in parameters.items():
        if is_url(value) and url_password(value):
            out[name] = redact_url(value)
            secrets[redact_url(value)] = str(url_password(value))
        elif isinstance(value, str) and master_token(value):  # a Spark Connect token
            out[name] = redact_master(value)
            secrets[redact_master(value)] = str(master_token(value))
    return out, secrets


def passwords_env(secrets: Mapping[str, str]) -> str:
    """:data:`PASSWORDS_ENV`'s value: what is already there plus ``secrets``."""
    try:
        known = json.loads(os.environ.get(PASSWORDS_ENV, "{}"))
    except ValueError:
        known = {}
    return json.dumps({**(known if isinstance(known, dict) else {}), **secrets})


def resolve_file(url: str, base: Path | str) -> str:
    """A DuckDB URL whose file path is relative (``duckdb://shop.duckdb?table=t``) made absolute against
    ``base`` (the folder the command runs in); any other URL as it is."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "duckdb":
        return url
    file = parts.netloc + parts.path
    if not file or Path(file).expanduser().is_absolute():
        return url
    absolute = (Path(base) / Path(file).expanduser()).resolve()
    return f"{parts.scheme}://{absolute.as_posix()}" + (f"?{parts.query}" if parts.query else "")
