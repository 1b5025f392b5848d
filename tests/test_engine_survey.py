"""The survey's customer table in an engine: checked by queries on every row, only the respondents' customers
come back, and the answers joined to them are the in-memory path's (DuckDB here; Spark in tests/test_spark.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxresearch import sources, survey
from cxresearch.io import InputError, Ledger
from cxresearch.synth import ensure_world

LEDGER_COLUMNS = ["table", "rule", "rows_excluded", "rows_before"]


@pytest.fixture(scope="module")
def world():
    return ensure_world(n_customers=600, seed=11)


def survey_inputs(world, customers: str, engine: str, **args) -> tuple[survey.SurveyInputs, Ledger]:
    ledger = Ledger()
    source = sources.from_files({"survey_responses": world["survey_responses"], "survey_items": world["survey_items"],
                                 "customers": customers})
    return survey.load_inputs(source, ledger, min_n=5, engine=engine, **args), ledger


def customers_parquet(world, path) -> str:
    cust = pd.read_csv(world["customers"], dtype={"customer_id": str}, parse_dates=["signup_date", "churn_date"])
    cust.to_parquet(path, index=False, coerce_timestamps="us")
    return str(path)


def assert_same_survey_inputs(got, memory) -> None:
    (a, la), (b, lb) = memory, got
    pd.testing.assert_frame_equal(b.responses, a.responses, check_dtype=False)
    pd.testing.assert_frame_equal(b.usable, a.usable) if a.usable is not None else None
    assert b.left_out == a.left_out
    respondents = a.customers[a.customers["customer_id"].isin(a.responses["customer_id"])].reset_index(drop=True)
    # the contract's columns: nothing else is read from the engine (the world's extra contact column stays there)
    assert set(b.customers.columns) < set(respondents.columns)
    ns = {c: "datetime64[ns]" for c in ("signup_date", "churn_date")}  # Parquet's microseconds, in memory
    pd.testing.assert_frame_equal(b.customers.astype(ns), respondents[b.customers.columns].astype(ns),
                                  check_dtype=False)
    assert [r["rows"] for r in lb.inputs] == [r["rows"] for r in la.inputs]
    pd.testing.assert_frame_equal(lb.exclusions_frame()[LEDGER_COLUMNS], la.exclusions_frame()[LEDGER_COLUMNS])


def test_only_the_respondents_customers_come_back_and_the_answers_are_the_same(world, tmp_path):
    path = customers_parquet(world, tmp_path / "customers.parquet")
    memory, duck = (survey_inputs(world, path, engine) for engine in ("pandas", "duckdb"))
    assert len(duck[0].customers) < len(memory[0].customers)  # not every customer answered
    assert_same_survey_inputs(duck, memory)
    weights = {name: survey.weighting(inputs.responses, {"segment": pd.Series({"mass": 0.5, "premium": 0.2,
                                                                               "value": 0.3})}).weights
               for name, (inputs, _) in (("memory", memory), ("duckdb", duck))}
    np.testing.assert_allclose(weights["duckdb"], weights["memory"], rtol=1e-12)


def test_invited_customers_come_back_too_for_the_response_bias_model(world, tmp_path):
    path = customers_parquet(world, tmp_path / "customers.parquet")
    runs = {}
    for engine in ("pandas", "duckdb"):
        source = sources.from_files({"survey_responses": world["survey_responses"], "survey_items": world["survey_items"],
                                     "customers": path, "survey_invitations": world["survey_invitations"]})
        runs[engine] = survey.load_inputs(source, Ledger(), min_n=5, engine=engine)
    invited = set(runs["pandas"].invitations["customer_id"]) | set(runs["pandas"].responses["customer_id"].dropna())
    got = set(runs["duckdb"].customers["customer_id"])
    assert got == invited & set(runs["pandas"].customers["customer_id"]) and len(got) < len(runs["pandas"].customers)


def test_the_contract_runs_on_every_customer_not_only_the_respondents(world, tmp_path):
    cust = pd.read_csv(world["customers"], dtype={"customer_id": str}, parse_dates=["signup_date", "churn_date"])
    answered = set(pd.read_csv(world["survey_responses"], dtype={"customer_id": str})["customer_id"])
    silent = cust[~cust["customer_id"].isin(answered)].iloc[[0]]
    pd.concat([cust, silent]).to_parquet(tmp_path / "c.parquet", index=False, coerce_timestamps="us")
    with pytest.raises(InputError) as err:
        survey_inputs(world, str(tmp_path / "c.parquet"), "duckdb")
    assert "customer_id" in str(err.value) and silent["customer_id"].iloc[0] in str(err.value)
