"""The heavy steps in an engine: a transaction log in Parquet files is checked, cleaned, merged and
summarised by queries (DuckDB here; PostgreSQL in tests/test_databases.py), with the same numbers, counts
and messages as the in-memory path."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxresearch import clv, contracts, engine, sources
from cxresearch.io import InputError, Ledger, read_table
from cxresearch.synth import ensure_world
from tests.test_properties_analyses import BASE, SPAN_DAYS, transaction_logs


@pytest.fixture(scope="module")
def world():
    return ensure_world(n_customers=600, seed=11)


@pytest.fixture(scope="module")
def tx_parquet(world, tmp_path_factory):
    tx = pd.read_csv(world["transactions"], dtype={"customer_id": str})
    tx["timestamp"] = pd.to_datetime(tx["timestamp"])
    path = tmp_path_factory.mktemp("tx") / "tx.parquet"
    tx.to_parquet(path, index=False)
    return path


def summaries(tx: pd.DataFrame, cal_end, hold_end, unit: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    daily = clv.merge_same_day(tx)
    in_memory = clv.rfm_summary(daily, cal_end, hold_end, unit)
    log = ibis.memtable(tx[["customer_id", "timestamp", "amount"]])
    merged = log.group_by(customer_id=log.customer_id, date=log.timestamp.date()).aggregate(amount=log.amount.sum())
    queried = engine.duckdb().to_pyarrow(clv.rfm_query(merged, cal_end, hold_end, unit)).to_pandas()
    return in_memory, queried.set_index("customer_id").sort_index()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transaction_logs(), st.integers(0, SPAN_DAYS), st.one_of(st.none(), st.integers(0, 60)),
       st.sampled_from(sorted(clv.UNIT_DAYS)))
def test_the_summary_query_equals_the_in_memory_summary(tx, cal_day, holdout_days, unit):
    tx = tx.assign(customer_id=tx["customer_id"].astype(str))
    cal_end = max(BASE + pd.Timedelta(days=cal_day), tx["date"].min())
    hold_end = None if holdout_days is None else cal_end + pd.Timedelta(days=holdout_days)
    in_memory, queried = summaries(tx, cal_end, hold_end, unit)
    epoch_days = (in_memory.pop("first_purchase") - pd.Timestamp("1970-01-01")).dt.days
    assert (queried.pop("first_day").to_numpy() == epoch_days.to_numpy()).all()
    pd.testing.assert_frame_equal(queried, in_memory, check_exact=False, rtol=1e-12, atol=1e-9, check_dtype=False,
                                  check_names=False)


def test_the_log_read_by_queries_gives_the_in_memory_inputs(world, tx_parquet):
    runs = {}
    for name in ("pandas", "duckdb"):
        ledger = Ledger()
        source = sources.from_files({"transactions": tx_parquet, "customers": world["customers"]})
        runs[name] = (clv.load_inputs(source, ledger, calibration_end="2023-06-30", holdout_end="2023-12-31",
                                      engine=name), ledger)
    (a, la), (b, lb) = runs["pandas"], runs["duckdb"]
    assert a.transactions.daily is not None and b.transactions.daily is None and b.transactions.engine == "duckdb"
    pd.testing.assert_frame_equal(b.summary, a.summary, check_exact=False, rtol=1e-12)
    pd.testing.assert_series_equal(b.repeats, a.repeats, check_dtype=False, check_names=False)
    assert b.transactions.days.equals(a.transactions.days)
    assert (b.transactions.first_date, b.transactions.last_date) == (a.transactions.first_date,
                                                                     a.transactions.last_date)
    assert b.transactions.notes == a.transactions.notes
    cols = ["table", "rule", "rows_excluded", "rows_before"]
    pd.testing.assert_frame_equal(lb.exclusions_frame()[cols], la.exclusions_frame()[cols])
    assert lb.exclusions_frame()["rows_excluded"].sum() > 0
    assert lb.inputs == la.inputs  # same file, same hash and row count


def write(df: pd.DataFrame, tmp_path, name: str = "tx.parquet"):
    path = tmp_path / name
    df.to_parquet(path, index=False)
    return path


def test_the_contract_runs_as_queries_with_key_values_in_the_message(tmp_path):
    good = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "timestamp": ["2024-01-01 10:00", "2024-01-02",
                                                                             "someday", None],
                         "amount": [10.0, np.inf, 5.0, 1.0]})
    opened = engine.open_table(write(good, tmp_path), "transactions")
    with pytest.raises(InputError) as err:
        engine.checked_table(opened, contracts.TRANSACTIONS)
    text = str(err.value)
    assert "column 'timestamp': 1 value(s) are not datetimes: customer_id ‹C›, timestamp 'someday'" in text
    assert "column 'timestamp': 1 empty value(s): customer_id ‹D›" in text
    assert "column 'amount': 1 value(s) are not finite numbers (inf or NaN): customer_id ‹B›, amount inf" in text
    renamed = good.rename(columns={"amount": "sum"}).iloc[:1]
    with pytest.raises(InputError, match=r"column 'amount' is missing\. Columns in the table: \['customer_id', "
                                         r"'timestamp', 'sum'\]"):
        engine.checked_table(engine.open_table(write(renamed, tmp_path, "r.parquet"), "transactions"),
                             contracts.TRANSACTIONS)
    ledger = Ledger()
    table = engine.checked_table(engine.open_table(write(renamed, tmp_path, "r.parquet"), "transactions"),
                                 contracts.TRANSACTIONS, {"amount": "sum"}, ledger)
    assert table.count().to_pyarrow().as_py() == 1 and ledger.inputs[0]["rows"] == 1


def test_exclusions_are_counted_in_turn_in_one_query():
    t = ibis.memtable(pd.DataFrame({"x": [-1.0, -2.0, 0.0, 5.0, 50.0, None]}))
    ledger = Ledger()
    rules = [engine.Rule("negative", lambda d: d.x < 0), engine.Rule("small", lambda d: d.x < 1),
             engine.Rule("big", lambda d: d.x > 10)]
    kept, span = engine.exclude(t, "t", rules, ledger, "'t'", span=(2, "x"))
    assert [(e["rule"], e["rows_excluded"], e["rows_before"]) for e in ledger.exclusions] == [
        ("negative", 2, 6), ("small", 1, 4), ("big", 1, 3)]
    assert span == (5.0, 50.0)  # before the last rule: the rows not negative and not small
    assert sorted(engine.duckdb().to_pyarrow(kept).column("x").to_pylist(), key=str) == [5.0, None]


def test_a_bad_folder_gets_the_file_readers_message(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="is a folder with no Parquet file in it"):
        engine.open_table(tmp_path / "empty", "transactions")
    with pytest.raises(InputError, match="no Parquet file matches"):
        engine.open_table(f"{tmp_path}/none/*.parquet", "transactions")


def test_per_customer_values_are_written_as_parquet_with_a_note(world, tx_parquet, tmp_path):
    import pyarrow.parquet as pq

    ledger = Ledger()
    source = sources.from_files({"transactions": tx_parquet, "customers": world["customers"]})
    inputs = clv.load_inputs(source, ledger, calibration_end="2023-06-30", holdout_end="2023-12-31")
    fit = clv.fit_bgnbd(inputs.summary)
    spend = clv.fit_gamma_gamma(inputs.summary)
    value = clv.lifetime_value(fit, spend, inputs.summary, 52, 0.1, 0.3, n_boot=20)
    path = clv.write_values(value, tmp_path / "out" / "values.parquet", ledger, rows_per_group=100)
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-len(value.values) // 100)
    back = pd.read_parquet(path).set_index("customer_id")
    assert list(back.columns) == list(clv.VALUE_COLUMNS) and back.index.is_monotonic_increasing
    expected = value.values.set_axis(value.values.index.astype(str)).sort_index()[list(clv.VALUE_COLUMNS)]
    pd.testing.assert_frame_equal(back, expected, check_dtype=False,
                                  check_names=False)
    assert any("values.parquet" in n and "customer IDs" in n for n in ledger.notes)
    with pytest.raises(clv.ParameterError, match="values_path must name a .parquet file"):
        clv.check_value_parameters(52, 0.1, 0.3, "values.csv")


def test_personal_labels_of_some_rows_are_numbered_as_in_the_whole_table(tmp_path):
    """Only the rows asked for come back (e.g. the survey respondents'), but their pseudonyms are those the
    whole table gives in memory: "Ivan Petrov" stays "label 2" although "Anna Smirnova" does not come back."""
    df = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"], "signup_date": pd.to_datetime(["2024-01-01"] * 4),
                       "segment": ["Anna Smirnova", "Ivan Petrov", "basic", "anna@mail.ru"]})
    path = write(df, tmp_path, "customers.parquet")
    memory_ledger, ledger = Ledger(), Ledger()
    memory = read_table(path, contracts.CUSTOMERS, ledger=memory_ledger).set_index("customer_id")["segment"]
    opened = engine.open_table(path, "customers")
    got = engine.read_checked(opened, contracts.CUSTOMERS, ledger, only=("customer_id", ["C2", "C3"]))
    assert got["segment"].tolist() == [memory["C2"], "basic"] == ["label 2 (personal data hidden)", "basic"]
    assert ledger.notes == memory_ledger.notes and "3 label(s) in column 'segment'" in ledger.notes[0]
    assert ledger.pseudonyms == memory_ledger.pseudonyms
