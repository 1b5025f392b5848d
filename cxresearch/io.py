"""Reading and validating input tables.

Every notebook reads its inputs through :func:`read_table`, which

* accepts CSV (UTF-8 or cp1251; comma, semicolon or tab separated; decimal comma allowed), Parquet and
  Excel;
* maps the user's column names onto the contract's names (``columns={"customer_id": "Client"}``);
* converts and validates every column against a :class:`Contract` (required columns, types, ranges,
  allowed values, duplicate keys, dates in order) and raises one :class:`InputError` that names the
  file, the column, the first offending rows and the fix;
* applies the contract's exclusion rules and records every excluded row count in a ledger that the
  report shows (nothing is dropped silently);
* records the file's SHA-256 and row count for the report's provenance.
"""

from __future__ import annotations

import csv
import decimal
import glob
import hashlib
import io as _io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import numpy as np
import pandas as pd

from cxresearch.privacy import looks_personal, pseudonymise_labels
from cxresearch.urls import TableURL, is_url, parse_url, redact_url, stashed_password, url_password

Kind = Literal["string", "int", "float", "date", "datetime", "bool"]
NA_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "-"]
MAX_EXAMPLES = 5
TRUE_WORDS = {"1", "true", "t", "yes", "y", "да", "истина", "1.0"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "нет", "ложь", "0.0"}


class InputError(ValueError):
    """An input table breaks its contract. ``problems`` lists each violation."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Input {source} cannot be used ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Column:
    """One column of a contract."""

    name: str
    kind: Kind
    required: bool = True
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    description: str = ""
    role: Literal["label", "id", "text"] = "label"  # text columns: id = a key, text = free text (scrubbed later)


@dataclass(frozen=True)
class Exclusion:
    """A rule that removes rows on purpose; ``where`` returns True for the rows to exclude."""

    rule: str
    where: Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Contract:
    """What a table must look like."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    ordered: tuple[tuple[str, str], ...] = ()  # (earlier, later) pairs of date columns
    exclusions: tuple[Exclusion, ...] = ()
    description: str = ""

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass
class Ledger:
    """What was read and what was excluded, for the report."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    exclusions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pseudonyms: dict[str, str] = field(default_factory=dict)  # one mapping for every table of a run

    def reset(self) -> None:
        self.inputs.clear()
        self.exclusions.clear()
        self.notes.clear()
        self.pseudonyms.clear()

    def note(self, text: str) -> None:
        """Something done to the data that the reader must know (e.g. labels pseudonymised)."""
        if text not in self.notes:
            self.notes.append(text)

    def exclude(self, table: str, source: str, rule: str, n_rows: int, n_before: int,
                examples: Iterable[int] = ()) -> None:
        self.exclusions.append(
            {
                "table": table,
                "source": source,
                "rule": rule,
                "rows_excluded": int(n_rows),
                "rows_before": int(n_before),
                "share": float(n_rows / n_before) if n_before else 0.0,
                "example_rows": ", ".join(str(r) for r in list(examples)[:MAX_EXAMPLES]),
            }
        )

    def inputs_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.inputs, columns=["table", "path", "sha256", "rows"])

    def exclusions_frame(self) -> pd.DataFrame:
        cols = ["table", "rule", "rows_excluded", "rows_before", "share", "example_rows"]
        return pd.DataFrame(self.exclusions, columns=["source", *cols])[cols]




class TableSource(Protocol):
    """Where a run's tables come from, as an analysis's loader sees it (:class:`cxresearch.sources.Source`).

    Table name → file, whether they are the synthetic world, how a report names the data, and what the
    data say themselves (``defaults``: dates, currency, ...). Analyses never read the planted truth.
    """

    paths: Mapping[str, Path]
    synthetic: bool
    description: str
    defaults: Mapping[str, Any]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file; of a Parquet folder or glob, of its files' names (relative) and hashes in order."""
    parts = parquet_parts(path)
    if parts is not None:
        base = parts_base(path)
        lines = "".join(f"{f.relative_to(base).as_posix()}\0{file_sha256(f)}\n" for f in parts)
        return hashlib.sha256(lines.encode()).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


PARQUET = (".parquet", ".pq")
_GLOB = re.compile(r"[*?\[]")


def parquet_parts(path: str | Path) -> list[Path] | None:
    """The files of a table stored as many Parquet files, sorted by path: every ``*.parquet`` file under a
    folder (Hive-style partitions ``year=2024/`` included), or the files a glob matches
    (``exports/tx/*.parquet``, ``**`` for any depth). ``None`` for a single file."""
    text = str(path)
    if is_url(text):
        return None
    if _GLOB.search(text):
        return sorted(Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file())
    folder = Path(path)
    if folder.is_dir():
        return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in PARQUET
                      and not any(part.startswith((".", "_")) for part in f.relative_to(folder).parts))
    return None


def parts_base(path: str | Path) -> Path:
    """The folder a glob or folder starts from (partition names are read below it)."""
    text = str(path)
    match = _GLOB.search(text)
    if match is None:
        return Path(path)
    head = text[:match.start()]
    return Path(head) if head.endswith(("/", "\\")) else Path(head).parent


def _read_parquet_parts(path: str | Path, parts: list[Path], source: str) -> pd.DataFrame:
    """One table from many Parquet files (partition folders ``key=value`` become columns)."""
    import pyarrow.dataset as ds

    if not parts:
        what = (f"no Parquet file matches {path}" if _GLOB.search(str(path)) else
                f"{path} is a folder with no Parquet file in it")
        raise InputError(source, [f"{what}. Fix: give one CSV, Excel or Parquet file, a folder of Parquet files, "
                                  "or a glob such as exports/tx/*.parquet (check the *_path parameter)."])
    other = [f for f in parts if f.suffix.lower() not in PARQUET]
    if other:
        raise InputError(source, [f"{len(other)} matched file(s) are not Parquet, e.g. {other[0].name}. Fix: make the "
                                  "glob match only .parquet files (a folder or glob table must be Parquet)."])
    try:
        data = ds.dataset([str(f) for f in parts], format="parquet", partitioning="hive",
                          partition_base_dir=str(parts_base(path))).to_table()
    except Exception as exc:  # pyarrow: damaged files, or files whose columns do not agree
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(source, [f"the {len(parts)} Parquet files cannot be read as one table ({detail}). Fix: "
                                  "export every part with the same columns and types."]) from None
    df = data.to_pandas()
    for col in df.columns:  # partition values arrive as categories
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(object)
    return df


# ---------------------------------------------------------------------------------------------
# database tables by URL


def shown_path(path: str | Path) -> str:
    """A file path, or a table URL without its password: what messages and reports show."""
    return redact_url(path) if is_url(path) else str(path)


class KeyRows:
    """How messages name the rows of a database table, which has no file rows: by key values in errors (shown
    on the user's screen, hidden in reports: :func:`key_text`), by place in the fixed order of :func:`read_raw`
    in exclusions.

    The key columns are kept as they are now and a row's name is made only when a message needs it (naming a
    million rows up front took seconds)."""

    def __init__(self, df: pd.DataFrame, key: Iterable[str]) -> None:
        self.frame = df[[c for c in key if c in df.columns]].copy()

    def name(self, i: int) -> str:
        return key_rows(self.frame.iloc[[i]], self.frame.columns)[0] if len(self.frame.columns) else f"row {i + 1}"


def table_url(url: str, source: str = "the table") -> TableURL:
    """:func:`cxresearch.urls.parse_url`, refusing a bad URL with one :class:`InputError`."""
    try:
        return parse_url(url)
    except ValueError as exc:
        raise InputError(source, [str(exc)]) from None


def connect_url(url: TableURL, source: str = "the table") -> Any:
    """An Ibis connection to the database ``url`` names (a DuckDB file is opened read-only).

    Raises
    ------
    InputError
        The database cannot be reached or opened; the message never shows a password.
    """
    import ibis

    target = url.connect
    password = stashed_password(url)
    if password and not url_password(target):
        parts = urlsplit(target)
        user, _, host = parts.netloc.rpartition("@")
        target = urlunsplit((parts.scheme, f"{user.split(':', 1)[0]}:{quote(password, safe='')}@{host}", parts.path,
                             parts.query, parts.fragment))
    try:
        if url.scheme == "duckdb":
            parts = urlsplit(target)
            file = unquote(parts.netloc + parts.path)
            if not file or not Path(file).is_file():
                raise InputError(source, [f"the DuckDB database file {file or '(none)'} does not exist. Fix: give "
                                          "its path as duckdb:///absolute/path/file.duckdb?table=name."])
            return ibis.duckdb.connect(file, read_only=True)
        return ibis.connect(target)
    except InputError:
        raise
    except Exception as exc:  # psycopg / duckdb: server down, wrong user or password, no such database
        detail = redact_text(str(exc), url) or type(exc).__name__
        raise InputError(source, [f"cannot connect to the {url.engine} database {url.shown} ({detail}). Fix: check "
                                  "the host, port, database and user in the URL; give the password in the "
                                  "environment (PGPASSWORD or ~/.pgpass) rather than in the URL."]) from None


def redact_text(text: str, url: TableURL) -> str:
    """The first line of a driver's message, without the URL's password."""
    line = text.strip().splitlines()[0][:200] if text.strip() else ""
    for secret in {url_password(url.connect), stashed_password(url)} - {None, ""}:
        line = line.replace(str(secret), "***")
    return line


def _split_table(name: str) -> tuple[str, str | None]:
    schema, _, table = name.rpartition(".")
    return table, schema or None


def url_table(url: TableURL, source: str = "the table") -> tuple[Any, Any]:
    """``(connection, table expression)`` for a table URL.

    Raises
    ------
    InputError
        The connection fails or the table does not exist (the message lists the tables there are).
    """
    con = connect_url(url, source)
    table, schema = _split_table(url.table)
    try:
        return con, con.table(table, database=schema)
    except Exception:
        try:
            names = sorted(con.list_tables(database=schema))
        except Exception:
            names = []
        there = (f"Tables there: {names[:20]}" + (" …" if len(names) > 20 else "")) if names else "It has no tables."
        raise InputError(source, [f"the database {url.shown} has no table {url.table!r}. {there}. Fix: correct "
                                  "?table= in the URL (schema.table for another schema)."]) from None


def _read_url(path: str, source: str) -> pd.DataFrame:
    """A whole database table as a DataFrame, rows in a fixed order (by every column), decimals as floats,
    times as naive UTC."""
    url = table_url(path, source)
    con, table = url_table(url, source)
    try:
        # dates and times as the file readers give them: nanosecond datetime64, time zones as UTC
        df = table.to_pyarrow().to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True)
    except Exception as exc:
        raise InputError(source, [f"the table {url.table!r} of {url.shown} cannot be read "
                                  f"({redact_text(str(exc), url) or type(exc).__name__}). Fix: check that the user "
                                  "may read it."]) from None
    finally:
        con.disconnect()
    for col in df.columns:
        if isinstance(df[col].dtype, pd.DatetimeTZDtype):
            df[col] = df[col].dt.tz_convert(None)
        if df[col].dtype == object and df[col].map(lambda v: isinstance(v, decimal.Decimal)).any():
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    if len(df):  # a database returns rows in no set order: fix one so that every run sees the same table
        df = df.sort_values(list(df.columns), kind="mergesort", na_position="last",
                            key=lambda s: s.astype(str) if s.dtype == object else s).reset_index(drop=True)
    return df


def url_fingerprint(df: pd.DataFrame) -> str:
    """SHA-256 over a table's column names and types and the order-free sum of its row hashes: the same for the
    same rows in any order (a database keeps none)."""
    rows = int(pd.util.hash_pandas_object(df, index=False).to_numpy(np.uint64).sum(dtype=np.uint64)) if len(df) else 0
    head = "\0".join(f"{c}:{t}" for c, t in zip(map(str, df.columns), map(str, df.dtypes), strict=True))
    return hashlib.sha256(f"{head}\n{len(df)}\n{rows}".encode()).hexdigest()


#: a key value in a message, set in ‹ › so that whatever reaches a report can hide it (:func:`hide_keys`)
KEY_VALUE = re.compile("‹[^›]*›")


def key_text(column: str, value: Any) -> str:
    """A row named by a key value in a message: ``customer_id ‹C017›``. The user's screen shows it; the
    runner's failed reports, results and saved notebook show ``customer_id ‹hidden›`` (IDs never reach
    reports)."""
    return f"{column} ‹{value}›"


def hide_keys(text: str) -> str:
    """``text`` with every key value written by :func:`key_text` hidden."""
    return KEY_VALUE.sub("‹hidden›", text)


def key_rows(df: pd.DataFrame, key: Iterable[str]) -> list[str]:
    """Names of a database table's rows for messages: its key values (``customer_id ‹C017›``), else the row's
    place in the fixed order :func:`read_raw` gives it."""
    cols = [c for c in key if c in df.columns]
    if not cols:
        return [f"row {i + 1}" for i in range(len(df))]
    values = df[cols].astype(str).to_numpy()
    return [", ".join(key_text(c, v) for c, v in zip(cols, row, strict=True)) for row in values]


# ---------------------------------------------------------------------------------------------
# raw reading


# A Latin-1/Windows-1252 export read as cp1251 shows single Cyrillic letters inside Latin words ("cafй",
# "Mьller") or lone ones between Latin words ("Livraison а domicile"); real Russian text has runs of three
# or more Cyrillic letters. Letters of cp1251 that Russian never uses are a second sign ("10€" -> "10Ђ").
SHORT_CYRILLIC_IN_LATIN = re.compile(r"(?<=[A-Za-z])[\u0400-\u04ff]{1,2}(?![\u0400-\u04ff])"
                                     r"|(?<![\u0400-\u04ff])[\u0400-\u04ff]{1,2}(?=[A-Za-z])")
CYRILLIC_RUN = re.compile(r"[\u0400-\u04ff]+")
NON_RUSSIAN = re.compile(r"[ЂЃЉЊЌЋЏђѓљњќћџЈјЅѕ]")
UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _decode(raw: bytes, source: str = "the file") -> tuple[str, str]:
    """Text of a CSV export: UTF-8 (with or without BOM), UTF-16 (BOM or NUL pattern) or cp1251.

    cp1251 decodes almost every byte, so it is accepted only when the result reads as Russian: a Latin-1 or
    Windows-1252 export ("café" -> "cafй") and a UTF-8 file with a few broken bytes are refused rather than
    silently garbled.
    """
    def refuse(problem: str) -> InputError:
        return InputError(source, [problem])

    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise refuse("the file is UTF-16 but cut off or damaged. Fix: export the table again.") from None
    head = raw[:4000]
    # UTF-16 without BOM: every second byte is the high byte of a Latin (0x00) or Cyrillic (0x04) letter
    even, odd = (sum(b in (0, 4) for b in head[i::2]) / max(1, len(head[i::2])) for i in (0, 1))
    if len(head) >= 4 and max(even, odd) > 0.7 and min(even, odd) < 0.3:
        enc = "utf-16-le" if odd > even else "utf-16-be"
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            raise refuse("the file looks like UTF-16 but is cut off or damaged. Fix: export the table again.") from None
    if b"\x00" in head:
        raise refuse("the file is not text (it contains binary data). Fix: export the table as CSV, Excel (.xlsx) "
                     "or Parquet and give that file.")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        if len(UTF8_MULTIBYTE.findall(raw)) >= 3:
            row = raw.count(b"\n", 0, exc.start) + 1
            raise refuse(f"the file is UTF-8 but has bytes that are not UTF-8 (first at row {row}); read as "
                         "another encoding it would be garbled. Fix: correct or remove that row, or export the "
                         "table again as UTF-8.") from None
    try:
        text = raw.decode("cp1251")
    except UnicodeDecodeError as exc:
        row = raw.count(b"\n", 0, exc.start) + 1
        raise refuse(f"the file is neither UTF-8 nor Russian cp1251 (byte {raw[exc.start]:#x} at row {row}). "
                     "Fix: save the file as UTF-8.") from None
    mixed = SHORT_CYRILLIC_IN_LATIN.search(text)
    runs = [len(r) for r in CYRILLIC_RUN.findall(text)]
    odd_letter = NON_RUSSIAN.search(text)
    if mixed or odd_letter or (runs and max(runs) <= 2 and re.search(r"[A-Za-z]{3}", text)):
        pos = (mixed or odd_letter).start() if (mixed or odd_letter) else CYRILLIC_RUN.search(text).start()
        raise refuse(f"the file is neither UTF-8 nor Russian cp1251: read as cp1251, row {_line_of(text, pos)} "
                     "has letters that Russian text never has there, so it is probably Latin-1/Windows-1252 and "
                     "would be garbled. Fix: save the file as UTF-8 (in Excel: 'CSV UTF-8').")
    return text, "cp1251"


def _separator(text: str) -> str:
    """The column separator: the one that splits the header into the most columns and every other of the first
    20 lines into as many (a label holding commas, e.g. ``'a','b'``, does not fool it); else csv's sniffer."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    best, width = None, 1
    for sep in ",;\t|":
        counts = [len(row) for row in csv.reader(lines, delimiter=sep)]
        if counts and counts[0] > width and all(c == counts[0] for c in counts):
            best, width = sep, counts[0]
    if best is not None:
        return best
    head = "\n".join(lines)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        first = lines[0] if lines else ""
        return max(",;\t|", key=first.count)


def read_raw(path: str | Path, sheet: str | int | None = 0, table: str | None = None) -> pd.DataFrame:
    """Read a file as it is (CSV cells as text) without any validation.

    Any file that cannot be read (missing, a folder, empty, binary, truncated, another encoding, a broken
    CSV line) raises one :class:`InputError` that names the file and the fix.
    """
    source = f"'{table}' ({shown_path(path)})" if table else shown_path(path)
    if is_url(path):
        return _read_url(str(path), source)
    parts = parquet_parts(path)
    if parts is not None:
        return _read_parquet_parts(path, parts, source)
    path = Path(path)
    if not path.exists():
        raise InputError(source, [f"the file {path} does not exist. Fix: check the *_path parameter (relative "
                                  "paths are taken from the folder you run the command in)."])
    if path.is_dir():
        raise InputError(source, [f"{path} is a folder, not a file. Fix: give the path of one CSV, Excel or "
                                  "Parquet file."])
    if path.stat().st_size == 0:
        raise InputError(source, ["the file is empty (0 bytes). Fix: export the table again."])
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".xlsx", ".xlsm", ".xls"):
            return pd.read_excel(path, sheet_name=sheet if sheet is not None else 0)
    except ImportError as exc:
        raise InputError(source, [f"this kind of Excel or Parquet file cannot be read here ({exc}). Fix: save it "
                                  "as .xlsx, CSV or Parquet."]) from None
    except Exception as exc:  # pyarrow, openpyxl and zipfile errors: a damaged or mislabelled file
        kind = "Parquet" if suffix in (".parquet", ".pq") else "Excel"
        raise InputError(source, [f"the file is not a readable {kind} file ({type(exc).__name__}: "
                                  f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else 'damaged'}). "
                                  f"Fix: export the table again as {kind}, or as CSV."]) from None
    text, _ = _decode(path.read_bytes(), source)
    if not text.strip():
        raise InputError(source, ["the file has no text. Fix: export the table again."])
    sep = _separator(text)
    try:
        return pd.read_csv(_io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=NA_VALUES)
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0]
        m = re.search(r"line (\d+)", detail)
        where = f"row {m.group(1)}" if m else "a row"
        raise InputError(source, [f"the CSV cannot be split into columns at {where} ({detail}; separator "
                                  f"{sep!r}). Fix: quote cells that contain the separator, or remove the broken "
                                  "row."]) from None


# ---------------------------------------------------------------------------------------------
# conversion


def _as_text(s: pd.Series) -> pd.Series:
    """Text, trimmed, as the engines give it (cxresearch.engine): whole numbers without '.0' (an ID column
    with gaps reads as floats), times in UTC as 'YYYY-MM-DD HH:MM:SS[.f]' ('YYYY-MM-DD' for a column of
    midnights)."""
    if pd.api.types.is_float_dtype(s):
        whole = s.notna() & (s % 1 == 0) & (s.abs() < 2**53)
        s = s.astype("string[pyarrow]").where(~whole, s.where(whole).astype("Int64").astype("string[pyarrow]"))
    elif pd.api.types.is_datetime64_any_dtype(s):
        s = _time_text(s)
    # Arrow-backed strings: vectorized in C++, several times faster than Python strings on large tables
    return s.astype("string[pyarrow]").str.strip()


def _time_text(s: pd.Series) -> pd.Series:
    """Times as text: UTC without the zone; fractions of a second without trailing zeros, as SQL casts write
    them ('10:00:00.5'); dates only for a column of midnights."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert(None)
    filled = s.dropna()
    if (filled == filled.dt.normalize()).all():
        return s.dt.strftime("%Y-%m-%d")
    digits = s.dt.microsecond.fillna(0).astype(int).map("{:06d}".format).str.rstrip("0")
    return s.dt.strftime("%Y-%m-%d %H:%M:%S") + ("." + digits).where(digits != "", "")


def _comma_values(s: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Cleaned text, values with a comma and no point, and whether the column uses commas for thousands.

    A comma is a decimal comma (Russian exports: 10,5) unless every comma-only value has the thousands form
    ``1,250`` / ``1,250,000`` and the column shows it: some value with two groups, or plain decimal points
    elsewhere. Values like ``1,250`` in a column that shows neither are ambiguous (1250 or 1.25).
    """
    t = _as_text(s).str.replace("[\\s\u00a0\u202f']", "", regex=True)  # spaces, nbsp, thin space, apostrophe
    comma_only = (t.str.contains(",", regex=False) & ~t.str.contains(".", regex=False)).fillna(False).astype(bool)
    form = t[comma_only].str.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+").fillna(False).astype(bool)
    thousands = pd.Series(False, index=s.index)
    if comma_only.any() and form.all():
        several = (t[comma_only].str.count(",") > 1).any()
        points = t.str.fullmatch(r"[-+]?\d+\.\d+").fillna(False).astype(bool).any()
        thousands = comma_only if (several or points) else thousands
    return t, comma_only, thousands


def ambiguous_commas(s: pd.Series) -> pd.Series:
    """Values like ``1,250`` that could be 1250 or 1.25 in a column that does not say which (see above)."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return pd.Series(False, index=s.index)
    t, comma_only, thousands = _comma_values(s)
    if thousands.any() or not comma_only.any():
        return pd.Series(False, index=s.index)
    form = t.str.fullmatch(r"[-+]?\d{1,3},\d{3}").fillna(False).astype(bool)
    return comma_only & form if (form | ~comma_only).all() else pd.Series(False, index=s.index)


def parse_number(s: pd.Series) -> pd.Series:
    """Numbers written with a decimal comma, spaces or thousand separators become floats.

    Ambiguous values (``1,250`` with nothing in the column saying whether the comma is a decimal comma or a
    thousands separator) become NaN, never a guess.
    """
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    t, _, thousands = _comma_values(s)
    unclear = ambiguous_commas(s)
    t = t.where(~thousands, t.str.replace(",", "", regex=False))
    both = t.str.contains(",", regex=False) & t.str.contains(".", regex=False)
    # 1.234,5 -> 1234.5 and 1,234.5 -> 1234.5
    comma_last = both & (t.str.rfind(",") > t.str.rfind("."))
    t = t.where(~comma_last, t.str.replace(".", "", regex=False))
    t = t.where(~(both & ~comma_last), t.str.replace(",", "", regex=False))
    t = t.str.replace(",", ".", regex=False)
    return pd.to_numeric(t, errors="coerce").astype(float).where(~unclear)


DATE_FORMATS = ("ISO8601", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d/%m/%Y", "%d/%m/%Y %H:%M",
                "%m/%d/%Y", "%Y%m%d")


def parse_dates(s: pd.Series) -> pd.Series:
    """Dates in ISO, Russian (DD.MM.YYYY), DD/MM/YYYY or YYYYMMDD form; the format that parses most wins."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return pd.to_datetime(s).dt.tz_convert(None) if getattr(s.dt, "tz", None) else s  # zoned: in UTC
    t = _as_text(s)
    best = None
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(t, format=fmt, errors="coerce")
        if best is None or parsed.notna().sum() > best.notna().sum():
            best = parsed
        if parsed.notna().sum() == t.notna().sum():
            break
    if getattr(best.dt, "tz", None) is not None:
        best = best.dt.tz_convert(None)
    return best


def parse_bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean")
    t = _as_text(s).str.lower()
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[t.isin(TRUE_WORDS).fillna(False).astype(bool)] = True
    out[t.isin(FALSE_WORDS).fillna(False).astype(bool)] = False
    return out


def _infer(s: pd.Series) -> pd.Series:
    """Extra columns: numbers when every filled cell is a number, else text."""
    if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
        return s
    head = s.dropna().head(1000)
    if len(head) and parse_number(head).isna().any():  # clearly text: skip parsing every row
        return _as_text(s).astype(object).where(_as_text(s).notna(), None)
    nums = parse_number(s)
    filled = _as_text(s).notna()
    if filled.any() and nums[filled].notna().all():
        return nums.astype("Int64") if (nums.dropna() % 1 == 0).all() else nums
    return _as_text(s).astype(object).where(filled, None)


# ---------------------------------------------------------------------------------------------
# validation


def first_row(path: str | Path) -> int:
    """Row number of a table's first data row as the file shows it (the header is row 1 in CSV/Excel; Parquet
    rows, those of a Parquet folder or glob read as one table, and a database table's in its fixed order count
    from 0)."""
    return 0 if is_url(path) or parquet_parts(path) is not None or Path(path).suffix.lower() in PARQUET else 2


#: where a table's rows start (:func:`first_row`), or the names of a database table's rows (:class:`KeyRows`)
RowNames = int | KeyRows


def _row_name(i: int, line_offset: RowNames) -> str:
    return line_offset.name(i) if isinstance(line_offset, KeyRows) else f"row {i + line_offset}"


def row_list(mask: pd.Series, df: pd.DataFrame, col: str | None, line_offset: RowNames) -> str:
    """``row 3: 'x'; row 7: 'y' (and 4 more)`` for the flagged rows of ``df`` (values that look personal hidden)."""
    idx = np.flatnonzero(np.asarray(mask, bool))
    shown = []
    for i in idx[:MAX_EXAMPLES]:
        raw = None if col is None else df[col].iloc[i]
        raw = raw.item() if isinstance(raw, np.generic) else raw
        value = "" if col is None else f" {raw!r}"
        if isinstance(raw, str) and looks_personal(raw):
            value = " (value hidden: it looks like personal data)"
        shown.append(f"{_row_name(i, line_offset)}{':' if value else ''}{value}")
    more = f" (and {len(idx) - MAX_EXAMPLES} more)" if len(idx) > MAX_EXAMPLES else ""
    return "; ".join(shown) + more


def read_table(
    path: str | Path,
    contract: Contract,
    columns: dict[str, str] | None = None,
    exclusions: Iterable[Exclusion] = (),
    sheet: str | int | None = 0,
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Read, convert and validate one input table.

    Parameters
    ----------
    path
        CSV, Parquet or Excel file; or a table stored as many Parquet files: a folder (Hive partitions
        ``year=2024/`` become columns) or a glob (:func:`parquet_parts`).
    contract
        The table's :class:`Contract`.
    columns
        Map of contract column name -> the column's name in the file, for files with other names.
    exclusions
        Extra exclusion rules (e.g. rows after the observation end), applied after the contract's own.
    sheet
        Excel sheet name or number.
    ledger
        The run's record of inputs, exclusions and notes (``results.ledger`` in a notebook). Without one,
        nothing is recorded: a notebook must pass its ledger so that every exclusion reaches the report.

    Returns
    -------
    pandas.DataFrame
        Contract columns (converted) plus any extra columns (numbers or text), with excluded rows removed.

    Raises
    ------
    InputError
        Listing every broken rule with the column, first offending rows and the fix.
    """
    ledger = Ledger() if ledger is None else ledger
    path = path if is_url(path) else Path(path)
    source = f"'{contract.name}' ({shown_path(path)})"
    raw = read_raw(path, sheet, contract.name)
    problems: list[str] = []
    mapping = dict(columns or {})
    unknown_map = [k for k in mapping if k not in {c.name for c in contract.columns}]
    if unknown_map:
        problems.append(
            f"the column map names {unknown_map}, which are not columns of the '{contract.name}' contract "
            f"({[c.name for c in contract.columns]}). Fix the map's keys."
        )
    rename = {}
    for col in contract.columns:
        file_col = mapping.get(col.name, col.name)
        if file_col in raw.columns:
            rename[file_col] = col.name
        elif col.required:
            hint = f" (looked for {file_col!r})" if file_col != col.name else ""
            fix = (col.description[col.description.index("-p "):] if "-p " in col.description else
                   f"rename the column in the file or map it, e.g. columns={{'{col.name}': 'your name'}}")
            problems.append(
                f"column '{col.name}'{hint} is missing. Columns in the file: {list(map(str, raw.columns))}. "
                f"Fix: {fix}."
            )
    if problems:
        raise InputError(source, problems)
    if raw.empty:
        raise InputError(source, ["the table has no rows. Fix: check that the right file was given."])
    df = raw.rename(columns=rename)
    # row numbers as a spreadsheet shows them (header is row 1); a database table's rows by their key
    names = contract.key or tuple(c.name for c in contract.columns if c.role == "id")
    line_offset: RowNames = KeyRows(df, names) if is_url(path) else first_row(path)
    present = [c for c in contract.columns if c.name in df.columns]  # absent optional columns stay absent
    for col in present:
        problems += _convert(df, col, line_offset, raw[next(k for k, v in rename.items() if v == col.name)])
    problems += infer_extras(df, contract, line_offset, raw)
    if not problems:
        problems += _check_table(df, contract, present, line_offset)
    if problems:
        raise InputError(source, problems)
    hide_personal_labels(df, contract, ledger)
    parts = parquet_parts(path)
    ledger.inputs.append({"table": contract.name, "path": shown_path(path),
                          "sha256": url_fingerprint(raw) if is_url(path) else file_sha256(path),
                          "rows": int(len(raw)), **({"files": len(parts)} if parts is not None else {}),
                          **({"hashed": "every value"} if is_url(path) else {})})
    return apply_exclusions(df, contract.name, (*contract.exclusions, *exclusions), shown_path(path), line_offset,
                            ledger)


def infer_extras(df: pd.DataFrame, contract: Contract, line_offset: RowNames, raw: pd.DataFrame | None = None
                 ) -> list[str]:
    """Columns outside the contract typed in place as :func:`read_table` types them (numbers when every value
    reads as one, else text); returns the problems (infinite numbers) in the usual message shape."""
    problems: list[str] = []
    for extra in [c for c in df.columns if c not in {col.name for col in contract.columns}]:
        df[extra] = _infer(df[extra])
        if pd.api.types.is_float_dtype(df[extra]):
            infinite = df[extra].notna() & ~np.isfinite(df[extra].to_numpy(dtype=float, na_value=np.nan))
            violation(problems, infinite, df if raw is None else raw, extra, "value(s) are infinite (inf)",
                      "write finite numbers; an unknown value is an empty cell.", line_offset)
    return problems


MAX_LABELS = 2000  # a text column with more distinct values is not a category label


def _label_columns(df: pd.DataFrame, contract: Contract) -> list[str]:
    roles = {c.name: c.role for c in contract.columns}
    out = []
    for name in df.columns:
        role = roles.get(name, "label")
        if role != "label" or name in contract.key or str(name).lower().endswith("id"):
            continue
        if df[name].dtype == object or pd.api.types.is_string_dtype(df[name]):
            out.append(name)
    return out


def hide_personal_labels(df: pd.DataFrame, contract: Contract, ledger: Ledger,
                         labels_of: Callable[[str], pd.Series] | None = None,
                         also: Iterable[pd.DataFrame] = ()) -> None:
    """Category labels that look like personal data (names, e-mails, phones) become pseudonyms, flagged.

    ``labels_of(column)``: the column's distinct labels in the whole table, when ``df`` holds only some of its
    rows (an engine's query), so that the pseudonyms are numbered as for the whole table. ``also``: other
    frames from the same table (e.g. another summary of it) whose labels get the same pseudonyms."""
    also = list(also)
    for name in _label_columns(df, contract):
        labels = df[name] if labels_of is None else labels_of(name)
        if labels.nunique(dropna=True) > MAX_LABELS:
            continue
        _, hidden = pseudonymise_labels(labels, prefix="label", mapping=ledger.pseudonyms)
        if hidden:
            for frame in [df, *[f for f in also if name in f]]:
                frame[name] = frame[name].map(lambda v: ledger.pseudonyms.get(v, v) if isinstance(v, str) else v)
            ledger.note(f"{hidden} label(s) in column '{name}' of '{contract.name}' looked like personal data "
                        "(a name, e-mail or phone number) and are shown as pseudonyms.")


def violation(problems: list[str], mask: pd.Series, df: pd.DataFrame, col: str, what: str, fix: str,
              line_offset: RowNames, show_values: bool = True, values_of: str | None = None) -> None:
    """Append "column 'x': N <what>: <rows>. Fix: <fix>" when ``mask`` flags any row (the one shape of a broken
    rule's message). The rows show the values of ``values_of`` (default: ``col``; none with ``show_values=False``)."""
    if mask.any():
        rows = row_list(mask, df, (values_of or col) if show_values else None, line_offset)
        problems.append(f"column '{col}': {int(mask.sum())} {what}: {rows}. Fix: {fix}")


def _convert(df: pd.DataFrame, col: Column, line_offset: RowNames, original: pd.Series) -> list[str]:
    problems: list[str] = []
    filled = _as_text(original).notna() if not pd.api.types.is_numeric_dtype(original) else original.notna()
    name = col.name
    if col.kind in ("int", "float"):
        values = parse_number(df[name])
        unclear = ambiguous_commas(df[name])
        violation(problems, unclear, df, name, "value(s) could be read two ways (1,250 = 1250 or 1.25?)",
                   "write numbers without thousands separators (1250) or with a decimal point (1.25).", line_offset)
        bad = filled & values.isna() & ~unclear
        violation(problems, bad, df, name, "value(s) are not numbers",
                   "write plain numbers (decimal point or comma, no units).", line_offset)
        infinite = values.notna() & ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        violation(problems, infinite, df, name, "value(s) are infinite (inf)",
                   "write finite numbers; an unknown value is an empty cell.", line_offset)
        values = values.where(~infinite)
        bad = bad | infinite
        if col.kind == "int" and not bad.any():
            frac = values.notna() & (values % 1 != 0)
            violation(problems, frac, df, name, "value(s) are not whole numbers", "use whole numbers.", line_offset)
            values = values if frac.any() else values.astype("Int64")
    elif col.kind in ("date", "datetime"):
        values = parse_dates(df[name])
        violation(problems, filled & values.isna(), df, name, "value(s) are not dates",
                   "write dates as YYYY-MM-DD (or DD.MM.YYYY), times as HH:MM:SS.", line_offset)
        if col.kind == "date":
            values = values.dt.normalize()
    elif col.kind == "bool":
        values = parse_bool(df[name])
        violation(problems, filled & values.isna(), df, name, "value(s) are not yes/no",
                   "use 1/0, true/false or yes/no.", line_offset)
    else:
        values = _as_text(df[name]).astype(object).where(filled, None)
    df[name] = values
    return problems


def _check_table(df: pd.DataFrame, contract: Contract, present: list[Column], line_offset: RowNames) -> list[str]:
    problems: list[str] = []
    for col in present:
        s = df[col.name]
        filled = s.notna()
        if not col.nullable and col.required:
            violation(problems, ~filled, df, col.name, "empty value(s)", "fill them in or remove those rows.",
                       line_offset, show_values=False)
        fix = "correct or remove those rows."
        if col.min is not None:
            violation(problems, filled & (s < col.min), df, col.name, f"value(s) below the minimum {col.min:g}",
                       fix, line_offset)
        if col.max is not None:
            violation(problems, filled & (s > col.max), df, col.name, f"value(s) above the maximum {col.max:g}",
                       fix, line_offset)
        if col.allowed is not None:
            violation(problems, filled & ~s.isin(col.allowed), df, col.name,
                       f"value(s) outside {list(col.allowed)}", "use one of the allowed values.", line_offset)
    if contract.key and all(k in df for k in contract.key):
        dup = df.duplicated(list(contract.key), keep=False)
        if dup.any():
            problems.append(f"key {list(contract.key)}: {int(dup.sum())} row(s) share a key with another row: "
                            f"{row_list(dup, df, None, line_offset)}. Fix: remove the duplicates; each "
                            f"{'/'.join(contract.key)} may appear once.")
    for earlier, later in contract.ordered:
        if earlier not in df or later not in df:
            continue
        wrong = df[earlier].notna() & df[later].notna() & (df[later] < df[earlier])
        if wrong.any():
            problems.append(f"columns '{earlier}' and '{later}': {int(wrong.sum())} row(s) where '{later}' is "
                            f"before '{earlier}': {row_list(wrong, df, later, line_offset)}. Fix: correct the dates.")
    return problems


def apply_exclusions(
    df: pd.DataFrame,
    table: str,
    rules: Iterable[Exclusion],
    source: str = "",
    line_offset: RowNames = 2,
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Remove rows matched by each rule in turn and record the counts (also when zero); the example rows are
    file row numbers (a database table's: places in its fixed order, never key values)."""
    ledger = Ledger() if ledger is None else ledger
    start = 1 if isinstance(line_offset, KeyRows) else line_offset
    for rule in rules:
        n_before = len(df)
        hit = rule.where(df).fillna(False).astype(bool).to_numpy()
        rows = (df.index[hit] + start).tolist()
        ledger.exclude(table, source, rule.rule, int(hit.sum()), n_before, rows)
        df = df.loc[~hit]
    return df.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# cross-table checks and parameterised rules


def after(column: str, limit: Any, what: str = "the observation end") -> Exclusion:
    """Exclude rows whose ``column`` falls after ``limit``."""
    limit_ts = pd.Timestamp(limit)
    return Exclusion(f"{column} after {what} ({limit_ts.date()})", lambda d: d[column] > limit_ts + pd.Timedelta(
        days=1) - pd.Timedelta(seconds=1))


def unlinked(column: str, known: Iterable[Any], parent: str) -> Exclusion:
    """Exclude rows whose ``column`` is not among the parent table's keys."""
    known_index = pd.Index(pd.unique(pd.Series(list(known), dtype=object)))
    return Exclusion(f"{column} not found in the {parent} table", lambda d: ~d[column].isin(known_index))


def require_items(responses: pd.DataFrame, items: pd.DataFrame, source: str = "survey responses") -> None:
    """Check that every dictionary item is a column of ``responses`` with values inside its scale."""
    problems = []
    for row in items.itertuples(index=False):
        if row.item not in responses.columns:
            problems.append(f"item '{row.item}' from the item dictionary is not a column of the responses. "
                            "Fix: rename the column or remove the item from the dictionary.")
            continue
        values = parse_number(responses[row.item])
        violation(problems, responses[row.item].notna() & values.isna(), responses, row.item,
                  "value(s) are not numbers", "code answers as numbers.", 2)
        violation(problems, values.notna() & ((values < row.scale_min) | (values > row.scale_max)), responses,
                  row.item, f"value(s) outside the scale {row.scale_min:g}..{row.scale_max:g}",
                  "correct the answers or the scale in the item dictionary.", 2)
    if problems:
        raise InputError(f"'{source}'", problems)
