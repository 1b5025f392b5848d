"""Tables stored as many Parquet files: a folder (Hive partitions) or a glob reads as one table, with its
provenance; the CLV notebook gives the same numbers on a Parquet folder as on the CSV (bad folders and globs:
tests/bad_inputs/test_files_and_cli.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from cxresearch import contracts
from cxresearch.io import Ledger, file_sha256, first_row, parquet_parts, read_table
from cxresearch.runner import RunSpec, run_notebook
from cxresearch.synth import ensure_world


@pytest.fixture(scope="module")
def world():
    return ensure_world(n_customers=600, seed=11)


def write_partitioned(tx: pd.DataFrame, folder) -> None:
    """One Parquet file per year and month, in Hive folders year=YYYY/month=MM."""
    ts = pd.to_datetime(tx["timestamp"])
    for (year, month), part in tx.groupby([ts.dt.year, ts.dt.month]):
        target = folder / f"year={year}" / f"month={month:02d}"
        target.mkdir(parents=True)
        part.to_parquet(target / "part-0.parquet", index=False)


def flat(value, prefix: str = "") -> dict:
    """Nested results as {"a.b.c": leaf}."""
    if isinstance(value, dict):
        return {k: v for key_, sub in value.items() for k, v in flat(sub, f"{prefix}{key_}.").items()}
    if isinstance(value, list):
        return {k: v for i, sub in enumerate(value) for k, v in flat(sub, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): value}


def key(df: pd.DataFrame) -> pd.DataFrame:
    cols = ["customer_id", "timestamp", "amount"]
    return df[cols].sort_values(cols, kind="mergesort").reset_index(drop=True)


def test_a_partitioned_folder_and_a_glob_read_as_the_csv_does(world, tmp_path):
    tx = pd.read_csv(world["transactions"])
    write_partitioned(tx, tmp_path / "tx")
    from_csv = read_table(world["transactions"], contracts.TRANSACTIONS, ledger=Ledger())
    ledger = Ledger()
    from_folder = read_table(tmp_path / "tx", contracts.TRANSACTIONS, ledger=ledger)
    pd.testing.assert_frame_equal(key(from_folder), key(from_csv))
    assert {"year", "month"} <= set(from_folder.columns)  # partition values become columns
    parts = parquet_parts(tmp_path / "tx")
    record = ledger.inputs[0]
    assert record["files"] == len(parts) > 10 and record["rows"] == len(tx) and first_row(tmp_path / "tx") == 0
    assert record["sha256"] == file_sha256(tmp_path / "tx") != file_sha256(parts[0])
    from_glob = read_table(f"{tmp_path}/tx/year=2024/**/*.parquet", contracts.TRANSACTIONS, ledger=Ledger())
    expected = key(from_csv[pd.to_datetime(from_csv["timestamp"]).dt.year == 2024])
    pd.testing.assert_frame_equal(key(from_glob), expected)
    assert (from_glob["month"].astype(int) >= 1).all()


def test_the_clv_notebook_gives_the_same_numbers_on_a_parquet_folder(world, tmp_path):
    write_partitioned(pd.read_csv(world["transactions"]), tmp_path / "tx")
    params = {"calibration_end": "2023-06-30", "holdout_end": "2023-12-31", "satisfaction_item": None}
    runs = {}
    for name, path in (("csv", str(world["transactions"])), ("parquet", str(tmp_path / "tx"))):
        res = run_notebook(RunSpec("customer_lifetime_value", parameters={"transactions_path": path, **params}),
                           tmp_path / name)
        assert res["status"] == "ok", res.get("error")
        runs[name] = res
    a, b = flat(runs["csv"]["metrics"]), flat(runs["parquet"]["metrics"])
    assert a.keys() == b.keys() and len(a) >= 40
    for k, v in a.items():
        assert v == pytest.approx(b[k], rel=1e-9, abs=1e-12) if isinstance(v, float) else v == b[k], k
    for x, y in zip(runs["csv"]["claims"], runs["parquet"]["claims"], strict=True):
        assert (x["id"], x["verdict"]) == (y["id"], y["verdict"])
        assert x["estimate"] == (y["estimate"] if y["estimate"] is None else pytest.approx(y["estimate"], rel=1e-9))
    inputs = runs["parquet"]["provenance"]["inputs"]
    assert inputs[0]["files"] > 10 and inputs[0]["sha256"]
