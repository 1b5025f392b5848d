"""Tables read from a database by URL: a real PostgreSQL server (the ``pgserver`` wheel) and a DuckDB file,
both loaded with the synthetic world.

The tables read as the CSV files do; the CLV, churn and payoff notebooks give the same numbers by URL as on
the files; a password never reaches the notebook, results or report; bad URLs get one clear message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ibis
import pandas as pd
import pytest

from cxresearch import contracts
from cxresearch.errors import ParameterError
from cxresearch.io import InputError, Ledger, read_table, url_fingerprint
from cxresearch.runner import RunSpec, run_notebook
from cxresearch.synth import ensure_world, load_truth
from cxresearch.urls import PASSWORDS_ENV, parse_url, redact_url, stash_passwords
from tests.conftest import shared_folder
from tests.test_parquet_folders import flat

TABLES = ("transactions", "customers", "complaints", "loyalty_members", "loyalty_panel")


def typed(path) -> pd.DataFrame:
    """A world CSV with its date columns as timestamps, as a database would hold them."""
    df = pd.read_csv(path)
    for col in df.columns:
        if col.endswith(("date", "_at", "timestamp")):
            df[col] = pd.to_datetime(df[col])
    return df


def load(con, world, names=TABLES, shuffle: int | None = None) -> None:
    for name in names:
        df = typed(world[name])
        if shuffle is not None:
            df = df.sample(frac=1.0, random_state=shuffle)
        con.create_table(name, df)
    for leftover in [t for t in con.list_tables() if t.startswith("ibis_pandas_memtable")]:
        con.drop_table(leftover)


@pytest.fixture(scope="module")
def world():
    return ensure_world(n_customers=600, seed=11)


@contextmanager
def postgres(folder, fill: Callable[[Any], None]) -> Iterator[str]:
    """A PostgreSQL server (the pgserver wheel) in ``folder``, its tables made by ``fill(connection)``; yields
    the URL prefix up to ``table=``."""
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    con = ibis.connect(server.get_uri())
    fill(con)
    con.disconnect()
    try:
        yield f"postgresql://postgres@/postgres?host={folder}&table="
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def pg(tmp_path_factory, world):
    """A PostgreSQL server holding the world's tables; yields the URL prefix up to ``table=``."""
    def fill(con) -> None:
        load(con, world)
        con.raw_sql("CREATE SCHEMA shop")
        con.create_table("shuffled", typed(world["transactions"]).sample(frac=1.0, random_state=3), database="shop")

    with postgres(tmp_path_factory.mktemp("pg"), fill) as url:
        yield url


@pytest.fixture(scope="module")
def duck(tmp_path_factory, world):
    """A DuckDB file holding the world's tables; yields the URL prefix up to ``table=``."""
    file = tmp_path_factory.mktemp("duck") / "shop.duckdb"
    con = ibis.duckdb.connect(str(file))
    load(con, world, ("transactions", "customers"))
    con.disconnect()
    return f"duckdb://{file}?table="


def key(df: pd.DataFrame) -> pd.DataFrame:
    cols = sorted(df.columns)
    return df[cols].sort_values(cols, kind="mergesort").reset_index(drop=True)


@pytest.mark.parametrize("name,contract", [("transactions", contracts.TRANSACTIONS),
                                           ("customers", contracts.CUSTOMERS),
                                           ("complaints", contracts.COMPLAINTS)])
def test_a_database_table_reads_as_the_csv_does(world, pg, duck, name, contract):
    from_csv = read_table(world[name], contract, ledger=Ledger())
    ledger = Ledger()
    from_pg = read_table(pg + name, contract, ledger=ledger)
    pd.testing.assert_frame_equal(key(from_pg), key(from_csv), check_dtype=False)
    record = ledger.inputs[0]
    assert record["path"] == pg + name and record["rows"] == len(pd.read_csv(world[name])) and len(record["sha256"]) == 64
    if name in ("transactions", "customers"):
        pd.testing.assert_frame_equal(key(read_table(duck + name, contract, ledger=Ledger())), key(from_csv),
                                      check_dtype=False)


def test_rows_come_in_one_order_and_the_fingerprint_ignores_order(pg):
    a, b = Ledger(), Ledger()
    first = read_table(pg + "transactions", contracts.TRANSACTIONS, ledger=a)
    second = read_table(pg + "shop.shuffled", contracts.TRANSACTIONS, ledger=b)
    pd.testing.assert_frame_equal(first, second)
    assert a.inputs[0]["sha256"] == b.inputs[0]["sha256"]
    assert url_fingerprint(first) != url_fingerprint(first.iloc[1:])


def test_times_keep_their_microseconds_in_postgresql(pg):
    from cxresearch import engine

    times = pd.to_datetime(["2024-03-01 10:00:00.250001", "1969-12-31 23:59:59.500000", "2024-03-01 10:00:00.000000"])
    con = ibis.connect(pg.replace("&table=", ""))
    try:
        t = con.create_table("micro_times", pd.DataFrame({"ts": times}), temp=True)
        got = t.select(us=engine.epoch_micros(t.ts, con)).to_pandas()["us"].tolist()
    finally:
        con.disconnect()
    assert got == [int(v) for v in (times - pd.Timestamp("1970-01-01")) // pd.Timedelta(microseconds=1)]


def test_the_engine_hashes_every_value_of_a_table_whatever_the_row_order(world, pg, duck):
    """Provenance of a table queried where it lives: the same for the same rows in another order, different when
    two customers' IDs are swapped (row count, column sums and distinct counts would not change)."""
    from cxresearch import engine

    tx = typed(world["transactions"])
    swapped = tx.copy()
    other = int((tx["customer_id"] != tx["customer_id"].iloc[0]).to_numpy().argmax())
    swapped.loc[[0, other], "customer_id"] = tx.loc[[other, 0], "customer_id"].to_numpy()
    for prefix, con in ((pg, ibis.connect(pg.replace("&table=", ""))), (duck, ibis.connect(duck.replace("?table=", "")))):
        try:
            con.create_table("swapped", swapped, overwrite=True)
        finally:
            con.disconnect()

        def digest(table: str, prefix: str = prefix) -> str:
            ledger = Ledger()
            opened = engine.open_table(prefix + table, "transactions")
            typed = engine.checked_table(opened, contracts.TRANSACTIONS, ledger=ledger)
            assert typed.count().execute() == len(tx)  # the connection is still open after the hash
            opened.con.disconnect()
            assert ledger.inputs[0]["hashed"] == "every value"
            return ledger.inputs[0]["sha256"]

        assert digest("transactions") != digest("swapped")
        if prefix == pg:
            assert digest("transactions") == digest("shop.shuffled")


def test_a_table_the_database_cannot_hash_by_row_says_what_its_hash_covers(pg, monkeypatch):
    import nbformat

    from cxresearch import engine
    from cxresearch.report import render_report

    def refuse(opened):
        raise RuntimeError("function md5(record) does not exist\nLINE 1: ...")

    monkeypatch.setattr(engine, "_content_sum", refuse)
    ledger = Ledger()
    opened = engine.open_table(pg + "transactions", "transactions")
    engine.checked_table(opened, contracts.TRANSACTIONS, ledger=ledger)
    opened.con.disconnect()
    record = ledger.inputs[0]
    assert record["hashed"] == "row count and column sums: the database refused the row hash (RuntimeError)"
    assert len(record["sha256"]) == 64
    page = render_report(nbformat.v4.new_notebook(), {"status": "ok", "provenance": {"inputs": [record]}})
    assert f"{record['sha256'][:16]} (row count and column sums: the database refused the row hash" in page


def test_urls_are_split_and_passwords_kept_out():
    url = parse_url("postgresql://ann:s3cret@db.example:5432/shop?sslmode=require&table=sales.tx")
    assert (url.scheme, url.table, url.engine) == ("postgresql", "sales.tx", "PostgreSQL")
    assert url.connect == "postgresql://ann:s3cret@db.example:5432/shop?sslmode=require"
    assert url.shown == "postgresql://ann@db.example:5432/shop?sslmode=require&table=sales.tx"
    assert redact_url("postgresql://ann@h/db?password=x&table=t") == "postgresql://ann@h/db?table=t"
    for url in ("duckdb:///data/shop.duckdb?table=t", "postgresql:///shop?host=/run/pg&table=t"):  # no host
        assert redact_url(url) == url
    assert redact_url("DuckDB:///data/shop.duckdb?table=t") == "duckdb:///data/shop.duckdb?table=t"
    params, secrets = stash_passwords({"transactions_path": "postgresql://ann:s3cret@h/db?table=t", "seed": 1})
    assert params == {"transactions_path": "postgresql://ann@h/db?table=t", "seed": 1}
    assert secrets == {"postgresql://ann@h/db?table=t": "s3cret"}


def same_results(a: dict, b: dict) -> None:
    fa, fb = flat(a["metrics"]), flat(b["metrics"])
    assert fa.keys() == fb.keys() and len(fa) >= 20
    for k, v in fa.items():
        assert v == pytest.approx(fb[k], rel=1e-9, abs=1e-12) if isinstance(v, float) else v == fb[k], k
    assert [(c["id"], c["verdict"]) for c in a["claims"]] == [(c["id"], c["verdict"]) for c in b["claims"]]


def payoff_parameters(world) -> dict:
    defaults = __import__("cxresearch.sources", fromlist=["x"]).synthetic_defaults(load_truth(world))
    return {"margin": defaults["margin"]["observational"], "cost_per_member": defaults["cost_per_member"][
        "observational"], "pre_end": defaults["pre_end"], "post_start": defaults["post_start"], "n_boot": 50}


#: the CLV, churn and payoff notebooks with their tables (world names) and other parameters (None: payoff's)
NOTEBOOK_TABLES = [
    ("customer_lifetime_value", {"transactions_path": "transactions"},
     {"calibration_end": "2023-06-30", "holdout_end": "2023-12-31", "satisfaction_item": None}),
    ("churn_survival", {"customers_path": "customers", "complaints_path": "complaints"}, {}),
    ("loyalty_payoff", {"data_path": "loyalty_members", "panel_path": "loyalty_panel"}, None),
]


def csv_run(notebook: str, parameters: dict, tmp_path_factory) -> dict:
    """The notebook's results on the world's CSV files: the baseline the runs on other stores are compared with,
    run once for all test files (kept in the session's temporary folder, which pytest-xdist's workers share)."""
    import hashlib

    key = hashlib.sha256(json.dumps([notebook, parameters], sort_keys=True, default=str).encode()).hexdigest()[:16]
    saved = shared_folder(tmp_path_factory, "csv-baselines") / f"{notebook}-{key}.json"
    if saved.exists():
        return json.loads(saved.read_text())
    result = run_notebook(RunSpec(notebook, parameters=parameters), tmp_path_factory.mktemp("csv"))
    assert result["status"] == "ok", result.get("error")
    partial = saved.with_suffix(f".{os.getpid()}")
    partial.write_text(json.dumps(result, default=str))
    partial.replace(saved)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("notebook,tables,extra", NOTEBOOK_TABLES)
def test_the_notebooks_give_the_same_numbers_by_url(world, pg, tmp_path, tmp_path_factory, monkeypatch, notebook,
                                                   tables, extra):
    monkeypatch.delenv(PASSWORDS_ENV, raising=False)
    extra = payoff_parameters(world) if extra is None else extra
    secret = "pw-only-in-the-url"
    with_password = pg.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    runs = {"csv": csv_run(notebook, {**{p: str(world[t]) for p, t in tables.items()}, **extra}, tmp_path_factory)}
    paths = {p: with_password + t for p, t in tables.items()}
    runs["postgresql"] = run_notebook(RunSpec(notebook, parameters={**paths, **extra}), tmp_path / "postgresql")
    assert runs["postgresql"]["status"] == "ok", runs["postgresql"].get("error")
    same_results(runs["postgresql"], runs["csv"])
    inputs = runs["postgresql"]["provenance"]["inputs"]
    assert {i["path"] for i in inputs} == {pg + t for t in tables.values()}
    assert all(i["rows"] > 0 and len(i["sha256"]) == 64 for i in inputs)
    for file in (tmp_path / "postgresql").rglob("*"):
        if file.is_file():
            assert secret not in file.read_text(errors="replace"), file


# ---------------------------------------------------------------------------------------------
# bad URLs and bad tables: one clear message


def test_a_url_without_a_table_or_of_an_unknown_kind_is_refused_before_the_run(tmp_path):
    for url, words in (("postgresql://ann:pw@localhost/shop", "does not say which table"),
                       ("mysql://ann@localhost/shop?table=tx", "cannot read (mysql://)")):
        with pytest.raises(ParameterError) as err:
            run_notebook(RunSpec("customer_lifetime_value", parameters={"transactions_path": url}), tmp_path)
        assert words in str(err.value) and ":pw@" not in str(err.value)
    assert not list(tmp_path.iterdir())


def test_a_missing_table_names_the_tables_there_are(pg):
    with pytest.raises(InputError) as err:
        read_table(pg + "transaction", contracts.TRANSACTIONS)
    text = str(err.value)
    assert "has no table 'transaction'" in text and "'transactions'" in text and "Traceback" not in text


def test_an_unreachable_server_or_missing_file_is_one_message(tmp_path):
    with pytest.raises(InputError) as err:
        read_table(f"postgresql://ann:hunter2@/shop?host={tmp_path}&table=tx", contracts.TRANSACTIONS)
    text = str(err.value)
    assert "cannot connect to the PostgreSQL database" in text and "hunter2" not in text and "PGPASSWORD" in text
    with pytest.raises(InputError, match="DuckDB database file .* does not exist"):
        read_table(f"duckdb://{tmp_path}/none.duckdb?table=tx", contracts.TRANSACTIONS)
    assert not (tmp_path / "none.duckdb").exists()


def test_a_broken_rule_names_key_values_and_exclusions_stay_row_numbers(world, pg):
    con = ibis.connect(pg.split("&table=")[0])
    bad = typed(world["customers"])
    bad.loc[3, "customer_id"] = bad.loc[2, "customer_id"]
    con.create_table("customers_dup", bad, overwrite=True)
    with pytest.raises(InputError) as err:
        read_table(pg + "customers_dup", contracts.CUSTOMERS)
    assert f"customer_id ‹{bad.loc[2, 'customer_id']}›" in str(err.value)
    ledger = Ledger()
    read_table(pg + "transactions", contracts.TRANSACTIONS, ledger=ledger)
    returns = next(e for e in ledger.exclusions if "returns" in e["rule"])
    assert returns["rows_excluded"] > 0
    assert all(part.strip().isdigit() for part in returns["example_rows"].split(","))
    con.disconnect()


def test_the_kernel_gets_the_password_through_the_environment(monkeypatch):
    monkeypatch.setenv(PASSWORDS_ENV, json.dumps({"postgresql://ann@h/db?table=t": "pw"}))
    from cxresearch.urls import stashed_password

    assert stashed_password(parse_url("postgresql://ann@h/db?table=t")) == "pw"
    assert stashed_password(parse_url("postgresql://bob@h/db?table=t")) is None


def tricky_text() -> pd.DataFrame:
    """Text as exports store it: IDs as floats with a gap, Unicode spaces around labels, times with fractions
    of a second and in a zone, in text columns."""
    return pd.DataFrame({
        "customer_id": [123.0, 7.0, 8.5, 40.0],
        "signup_date": pd.to_datetime(["2024-01-01"] * 4),
        "segment": ["\xa0vip\u3000", "\x1cbasic\x85", " mid\u2009", "\u202fvip\tv"],
        "region": [1.0, None, 3.0, 2.5],  # a numeric column with a gap
        "store": pd.to_datetime(["2024-03-01 10:00:00.5", "2024-03-01 10:00:00", None, "2024-03-02 23:59:59.000250"], format="ISO8601"),
        "channel": pd.to_datetime(["2024-03-01", None, "2024-03-02", "2024-03-03"]),
        "plan": pd.to_datetime(["2024-03-01 13:00"] * 4).tz_localize("Europe/Moscow"),
    })


#: :func:`tricky_text` read as the customers contract, rows by customer_id
TRICKY_TEXT_READ = {"customer_id": ["123", "40", "7", "8.5"], "segment": ["vip", "vip\tv", "basic", "mid"],
                    "region": ["1", "2.5", None, "3"],
                    "store": ["2024-03-01 10:00:00.5", "2024-03-02 23:59:59.00025", "2024-03-01 10:00:00", None],
                    "channel": ["2024-03-01", "2024-03-03", None, "2024-03-02"],
                    "plan": ["2024-03-01 10:00:00"] * 4}


def test_text_reads_the_same_in_memory_and_in_every_engine(pg, tmp_path):
    """(Spark: tests/test_spark.py.)"""
    from cxresearch import engine

    df = tricky_text()
    df.to_parquet(tmp_path / "c.parquet", index=False, coerce_timestamps="us")
    con = ibis.connect(pg.replace("&table=", ""))
    con.create_table("tricky_text", df, overwrite=True)
    con.disconnect()
    cols = list(TRICKY_TEXT_READ)
    reads = {"memory": read_table(tmp_path / "c.parquet", contracts.CUSTOMERS, ledger=Ledger()),
             "memory, PostgreSQL": read_table(pg + "tricky_text", contracts.CUSTOMERS, ledger=Ledger())}
    for name, path in (("DuckDB", tmp_path / "c.parquet"), ("PostgreSQL", pg + "tricky_text")):
        reads[name] = engine.read_checked(engine.open_table(path, "customers"), contracts.CUSTOMERS, Ledger())
    for name, got in reads.items():
        got = got.sort_values("customer_id").reset_index(drop=True)
        for col in cols:
            assert [None if pd.isna(v) else v for v in got[col]] == TRICKY_TEXT_READ[col], (name, col)
