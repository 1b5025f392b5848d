"""Churn and payoff in an engine: the customer table, complaints and loyalty panel in Parquet files are checked
and summarised by queries (DuckDB here; Spark in tests/test_spark.py, PostgreSQL in tests/test_databases.py),
giving the in-memory path's survival table, complaint episodes, exclusions, difference-in-differences, event
study and placebo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxresearch import churn, payoff, sources, stats
from cxresearch.io import InputError, Ledger
from cxresearch.synth import ensure_world

COVARIATES = ["plan", "segment", "channel", "region"]
LEDGER_COLUMNS = ["table", "rule", "rows_excluded", "rows_before"]


@pytest.fixture(scope="module")
def world():
    return ensure_world(n_customers=600, seed=11)


def churn_parquet(world, folder) -> dict[str, str]:
    """Customers and complaints as Parquet (microsecond times), with three complaints each rule excludes."""
    cust = pd.read_csv(world["customers"], dtype={"customer_id": str}, parse_dates=["signup_date", "churn_date"])
    comp = pd.read_csv(world["complaints"], dtype={"customer_id": str}, parse_dates=["opened_at"])
    odd = comp.head(3).copy()
    odd["customer_id"] = ["nobody", odd["customer_id"].iloc[1], odd["customer_id"].iloc[2]]
    odd["opened_at"] = [odd["opened_at"].iloc[0], pd.Timestamp("2015-01-01"), pd.Timestamp("2030-01-01")]
    paths = {"customers": str(folder / "customers.parquet"), "complaints": str(folder / "complaints.parquet")}
    cust.to_parquet(paths["customers"], index=False, coerce_timestamps="us")
    pd.concat([comp, odd], ignore_index=True).to_parquet(paths["complaints"], index=False, coerce_timestamps="us")
    return paths


def churn_inputs(paths: dict[str, str], engine: str, **args) -> tuple[churn.ChurnInputs, pd.DataFrame, Ledger]:
    ledger = Ledger()
    args = {"as_of": "2024-12-31", "group_col": "segment", "covariates": COVARIATES, **args}
    inputs = churn.load_inputs(sources.from_files(paths), ledger, engine=engine, **args)
    return inputs, churn.complaint_episodes(inputs.table, inputs.complaints, 24), ledger


def assert_same_churn_inputs(got, memory) -> None:
    (a, ep_a, la), (b, ep_b, lb) = memory, got
    pd.testing.assert_frame_equal(b.table.data, a.table.data, check_dtype=False, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(ep_b, ep_a, check_dtype=False, check_exact=False, rtol=1e-12)
    assert (ep_b["event"].to_numpy() == ep_a["event"].to_numpy()).all()
    assert b.table.notes == a.table.notes and b.table.folded == a.table.folded
    pd.testing.assert_frame_equal(lb.exclusions_frame()[LEDGER_COLUMNS], la.exclusions_frame()[LEDGER_COLUMNS])
    assert [e["rows_excluded"] for e in lb.exclusions if e["table"] == "complaints"][1:] == [1, 1, 1]


def test_churn_inputs_by_query_equal_the_in_memory_ones(world, tmp_path):
    paths = churn_parquet(world, tmp_path)
    memory, queried = churn_inputs(paths, "pandas"), churn_inputs(paths, "duckdb")
    assert isinstance(queried[0].complaints, churn.ComplaintLog) and isinstance(memory[0].complaints, pd.DataFrame)
    assert_same_churn_inputs(queried, memory)
    assert queried[2].inputs == memory[2].inputs  # same files: same hashes and row counts
    a = churn.fit_time_varying(memory[0].table, memory[1])
    b = churn.fit_time_varying(queried[0].table, queried[1])
    pd.testing.assert_frame_equal(b, a, check_exact=False, rtol=1e-9)


def test_complaints_at_the_same_moment_leave_the_worst_state(world, tmp_path):
    cust = pd.DataFrame({"customer_id": ["a", "b"], "signup_date": pd.to_datetime(["2023-01-01", "2023-01-01"]),
                         "churn_date": pd.to_datetime(["2023-06-01", None])})
    when = pd.Timestamp("2023-03-01 12:00")
    comp = pd.DataFrame({"customer_id": ["a", "a", "b"], "opened_at": [when, when, when],
                         "resolved": [False, True, True], "hours_to_resolve": [None, 2.0, 2.0]})
    paths = {"customers": str(tmp_path / "c.parquet"), "complaints": str(tmp_path / "k.parquet")}
    cust.to_parquet(paths["customers"], index=False, coerce_timestamps="us")
    comp.to_parquet(paths["complaints"], index=False, coerce_timestamps="us")
    for engine in ("pandas", "duckdb"):
        ledger = Ledger()
        inputs = churn.load_inputs(sources.from_files(paths), ledger, as_of="2023-12-31", group_col=None,
                                   covariates=[], engine=engine)
        ep = churn.complaint_episodes(inputs.table, inputs.complaints, 24)
        assert ep["state"].tolist() == ["none", "unresolved", "none", "fast"], engine


def test_the_customer_table_is_checked_by_query_with_keys_in_the_messages(tmp_path):
    cust = pd.DataFrame({"customer_id": ["a", "b", "b", "c", "d", "e"],
                         "signup_date": pd.to_datetime(["2023-01-01"] * 6),
                         "churn_date": pd.to_datetime([None, "2023-05-01", None, None, "2023-02-01", None]),
                         "plan": ["x", "y", "x", "y", "x", "y"]})
    path = tmp_path / "c.parquet"
    cust.to_parquet(path, index=False)
    with pytest.raises(InputError) as err:
        churn.survival_table(str(path), as_of="2023-12-31", covariates=["plan"], ledger=Ledger())
    assert "key ['customer_id']: 2 row(s) share a key with another row: customer_id ‹b› (2 rows)" in str(err.value)
    cust.loc[2, "customer_id"] = "f"
    cust.loc[3, "plan"] = None
    cust.to_parquet(path, index=False)
    with pytest.raises(InputError) as err:
        churn.survival_table(str(path), as_of="2023-12-31", covariates=["plan"], ledger=Ledger())
    assert "covariate 'plan': 1 empty value(s), customer_id ‹c›" in str(err.value)
    with pytest.raises(InputError, match=r"column 'tier' \(a covariate or group_col\) is missing"):
        churn.survival_table(str(path), as_of="2023-12-31", covariates=["tier"], ledger=Ledger())


def panel_setup(world, panel_path, engine: str, **args) -> payoff.Setup:
    src = sources.from_files({"loyalty_members": world["loyalty_members"], "loyalty_panel": panel_path})
    return payoff.prepare("observational", src, Ledger(), unit_col="customer_id", arm_col=None, control_arm=None,
                          outcome_cols=None, covariate_cols=None, margin=0.3, cost_per_member=100, horizon=12,
                          pre_end="2024-04", post_start="2024-07", engine=engine, **args)


def assert_same_panel_analysis(got, memory) -> None:
    for k in ("estimate", "ci_low", "ci_high", "se", "p_value"):
        assert got.did[k] == pytest.approx(memory.did[k], rel=1e-9, abs=1e-12), k
        assert got.placebo[k] == pytest.approx(memory.placebo[k], rel=1e-9, abs=1e-12), k
    assert (got.did["n_treated"], got.did["n_control"]) == (memory.did["n_treated"], memory.did["n_control"])
    pd.testing.assert_frame_equal(got.event, memory.event, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(got.estimates, memory.estimates, check_exact=False, rtol=1e-9)


def test_the_panel_by_query_gives_the_in_memory_did_event_study_and_placebo(world, tmp_path):
    panel = pd.read_csv(world["loyalty_panel"], dtype={"customer_id": str, "month": str})
    panel = panel[~((panel["customer_id"] == panel["customer_id"].iloc[0]) & (panel["month"] >= "2024-07"))]
    path = tmp_path / "panel.parquet"
    panel.to_parquet(path, index=False)
    runs = {e: panel_setup(world, path, e) for e in ("pandas", "duckdb")}
    assert isinstance(runs["duckdb"].inputs.panel, payoff.PanelLog)
    fx = {e: payoff.analyse(s, n_boot=20) for e, s in runs.items()}
    assert fx["pandas"].dropped_units == fx["duckdb"].dropped_units == 1  # the unit without periods after the window
    assert_same_panel_analysis(fx["duckdb"], fx["pandas"])


def test_welch_from_moments_equals_welch():
    rng = np.random.default_rng(3)
    for n_a, n_b in ((2, 3), (12, 40), (800, 500), (1, 9)):
        a, b = rng.normal(1, 2, n_a), rng.normal(0, 1, n_b)
        direct = stats.welch(a, b)
        summary = stats.welch_from_moments(a.mean(), a.var(ddof=1) if n_a > 1 else np.nan, n_a, b.mean(),
                                           b.var(ddof=1), n_b)
        for k, v in direct.items():
            assert summary[k] == pytest.approx(v, rel=1e-12, abs=1e-14, nan_ok=True), k


def test_dates_with_times_zoned_times_and_a_table_without_ids_read_as_in_memory(tmp_path):
    """Dates are cut to the day and zoned times are taken in UTC on both paths (a Parquet column in Moscow time
    used to keep its wall-clock time in memory, 3 hours off the engine's); a customer table
    without its optional ID column is read (rows ordered by every column)."""
    signup = pd.to_datetime(["2023-01-01 10:30", "2023-02-01 18:00", "2023-03-01 09:00"] * 4)
    cust = pd.DataFrame({"customer_id": [f"k{i:02d}" for i in range(12)], "signup_date": signup,
                         "churn_date": pd.to_datetime(["2023-06-01 12:00", None, None] * 4),
                         "plan": ["a", "b"] * 6})
    comp = pd.DataFrame({"customer_id": ["k00", "k01", "k03"],
                         "opened_at": pd.to_datetime(["2023-01-01 11:00", "2023-02-01 10:00", "2023-01-01 12:00"]
                                                     ).tz_localize("Europe/Moscow"),  # 08:00, 07:00, 09:00 UTC
                         "resolved": [True, False, True], "hours_to_resolve": [3.0, None, 30.0]})
    paths = {"customers": str(tmp_path / "c.parquet"), "complaints": str(tmp_path / "k.parquet")}
    cust.to_parquet(paths["customers"], index=False)
    comp.to_parquet(paths["complaints"], index=False)
    runs = {e: churn_inputs(paths, e, as_of="2023-12-31", group_col=None, covariates=["plan"])
            for e in ("pandas", "duckdb")}
    for run in runs.values():  # complaints hours before the signup time, on the signup day, are kept
        assert [x["rows_excluded"] for x in run[2].exclusions if x["table"] == "complaints"] == [0, 0, 0, 0]
    assert_same = runs["duckdb"], runs["pandas"]
    pd.testing.assert_frame_equal(assert_same[0][0].table.data, assert_same[1][0].table.data, check_dtype=False)
    pd.testing.assert_frame_equal(assert_same[0][1], assert_same[1][1], check_dtype=False)
    cust.drop(columns="customer_id").to_parquet(paths["customers"], index=False)
    tables = {}
    for e in ("pandas", "duckdb"):
        tables[e] = churn.survival_table(paths["customers"], as_of="2023-12-31", covariates=["plan"], ledger=Ledger(),
                                         engine=e).data
    cols = ["duration", "event", "plan"]
    pd.testing.assert_frame_equal(tables["duckdb"][cols].sort_values(cols, ignore_index=True),
                                  tables["pandas"][cols].sort_values(cols, ignore_index=True), check_dtype=False)


def test_periods_stored_as_times_read_as_the_same_text_on_both_paths(world, tmp_path):
    """A month column written as timestamps (midnights) reads as "2024-01-01" on both paths, not as
    "2024-01-01 00:00:00" in the engine; a column with other times keeps them."""
    from cxresearch import engine
    from cxresearch.io import Column, Contract, read_table

    panel = pd.read_csv(world["loyalty_panel"], dtype={"customer_id": str, "month": str})
    panel["month"] = pd.to_datetime(panel["month"] + "-01")
    panel.to_parquet(tmp_path / "panel.parquet", index=False, coerce_timestamps="us")
    fx = {e: payoff.analyse(panel_setup(world, tmp_path / "panel.parquet", e), n_boot=20) for e in ("pandas", "duckdb")}
    assert fx["duckdb"].event["period"].str.fullmatch(r"\d{4}-\d\d-01").all()
    assert_same_panel_analysis(fx["duckdb"], fx["pandas"])
    times = pd.DataFrame({"k": ["a", "b"], "when": pd.to_datetime(["2024-01-01 00:00", "2024-01-02 10:30"])})
    times.to_parquet(tmp_path / "t.parquet", index=False, coerce_timestamps="us")
    contract = Contract("t", (Column("k", "string", role="id"), Column("when", "string")), key=("k",))
    memory = read_table(tmp_path / "t.parquet", contract, ledger=Ledger())
    got = engine.read_checked(engine.open_table(tmp_path / "t.parquet", "t"), contract, Ledger())
    assert got["when"].tolist() == memory["when"].tolist() == ["2024-01-01 00:00:00", "2024-01-02 10:30:00"]


def test_a_true_false_event_column_matches_the_same_event_value_on_both_paths(tmp_path):
    df = pd.DataFrame({"customer_id": [f"k{i}" for i in range(8)], "tenure": [3, 5, 7, 9, 2, 4, 6, 8],
                       "Churn": [True, False] * 4, "plan": ["a", "b", "a", "b", "b", "a", "b", "a"]})
    df.to_parquet(tmp_path / "t.parquet", index=False)
    events = {e: churn.survival_table(str(tmp_path / "t.parquet"), duration_col="tenure", event_col="Churn",
                                      event_value="True", start_col=None, end_col=None, covariates=["plan"],
                                      ledger=Ledger(), engine=e).data["event"].tolist() for e in ("pandas", "duckdb")}
    assert events["duckdb"] == events["pandas"] == [1, 0] * 4
