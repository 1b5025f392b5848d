"""Bad-input corpus: churn survival and customer lifetime value.

Most cases call :mod:`cxresearch.churn` and :mod:`cxresearch.clv` directly on tiny tables (tens of rows, or
a synthetic world of 300 customers); ten cases run a notebook end to end to show the refused or handled
report (telecom tables with ``event_value`` "Yes" and "1", script and ``$`` mathtext in segment labels,
personal data as a label, a segment under the minimum size, complaints for unknown customers, nobody
churned, purchases by unknown customers, no repeat buyers).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxresearch import churn, clv, sources
from cxresearch.errors import NotEstimable, ParameterError
from cxresearch.fits import FITS, FitError
from cxresearch.io import InputError, Ledger

from .conftest import assert_handled, assert_inert_in_browser, assert_refused

# payloads that mark <body> with data-pwned if they ever run (checked in headless Chromium)
EVIL = "<script>document.body.setAttribute('data-pwned','1')</script>"
MATH = r"$\alpha^{2}$ \frac{1}{0} $"
PERSON = "Ivan Petrov +7 912 345-67-89"


# ---------------------------------------------------------------------------------------------
# tiny inputs


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A synthetic world of 300 customers (customers, transactions, complaints, survey) as CSV files."""
    from cxresearch.synth import make_world, write_world

    return write_world(make_world(n_customers=300, seed=3), tmp_path_factory.mktemp("world300"))


def write(tmp_path: Path, name: str, df: pd.DataFrame) -> str:
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    return str(path)


def telco(n: int = 240, seed: int = 0, churn_as: str = "text") -> pd.DataFrame:
    """A table shaped like the public telecom churn data: tenure in months, Churn Yes/No (or 1/0), Contract."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    charges = np.round(rng.uniform(18, 118, n), 2)
    rate = 0.04 * np.where(contract == "Month-to-month", 1.0, np.where(contract == "One year", 0.35, 0.12))
    life, follow = rng.exponential(1 / rate), rng.uniform(1, 72, n)
    left = life <= follow
    return pd.DataFrame({"customerID": [f"{i:04d}-QWERT" for i in range(n)],
                         "tenure": np.ceil(np.minimum(life, follow)).astype(int), "Contract": contract,
                         "MonthlyCharges": charges,
                         "Churn": np.where(left, "Yes", "No") if churn_as == "text" else left.astype(int)})


TELCO = {"duration_col": "tenure", "event_col": "Churn", "group_col": "Contract", "id_col": None,
         "covariates": ["Contract", "MonthlyCharges"], "start_col": None, "end_col": None, "horizon": 12}


def survival(path: str, **kw) -> churn.SurvivalTable:
    args = {"duration_col": "tenure", "event_col": "Churn", "id_col": None, **kw}
    return churn.survival_table(path, ledger=Ledger(), **args)


def summary_of(rows: list[tuple[str, str, float]], cal: str, hold: str | None = None) -> pd.DataFrame:
    daily = pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).assign(
        date=lambda d: pd.to_datetime(d["date"]))
    return clv.rfm_summary(daily, cal, hold)


def tx_file(tmp_path: Path, rows: list[tuple[str, str, float]]) -> str:
    return write(tmp_path, "tx", pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]))


# ---------------------------------------------------------------------------------------------
# churn: event values arriving as text


@pytest.mark.parametrize(("column", "value", "churn_as"), [
    pytest.param("Churn", "Yes", "text", id="event-value-Yes-as-text"),
    pytest.param("Churn", "1", "number", id="event-value-1-as-text-on-a-0-1-column"),
    pytest.param("Churn", 1, "number", id="event-value-1-as-a-number"),
])
def test_event_value_matches_as_text_and_number(tmp_path, column, value, churn_as):
    df = telco(churn_as=churn_as)
    st = survival(write(tmp_path, "telco", df), event_value=value)
    expected = (df["Churn"].astype(str).isin(["Yes", "1"]) & (df["tenure"] > 0)).sum()
    assert st.n_events == expected > 0


def test_event_value_1_matches_a_column_written_as_1_0(tmp_path):
    df = telco(churn_as="number").assign(Churn=lambda d: d["Churn"].map({1: "1.0", 0: "0.0"}))
    st = survival(write(tmp_path, "telco", df), event_value="1")
    assert st.n_events == (df["Churn"] == "1.0").sum()


def test_event_value_that_never_occurs_names_column_and_values(tmp_path):
    path = write(tmp_path, "telco", telco())
    with pytest.raises(InputError, match=r"column 'Churn': the event value 'True' never occurs \(values found: "
                                         r"\['No', 'Yes'\]\)\. .*Fix: set event_value"):
        survival(path, event_value="True")


def test_event_value_in_the_wrong_case_suggests_the_right_one(tmp_path):
    with pytest.raises(InputError, match=r"never occurs .* Did you mean 'Yes'\?"):
        survival(write(tmp_path, "telco", telco()), event_value="YES")


# ---------------------------------------------------------------------------------------------
# churn: degenerate data


def test_nobody_churned_is_not_estimable(tmp_path):
    st = survival(write(tmp_path, "telco", telco().assign(Churn="No")))  # yes/no column, every answer "No"
    assert st.n_events == 0
    with pytest.raises(NotEstimable, match=r"nobody left during the observation window \(0 of \d+ customers"):
        churn.check_estimable(st)


def test_everyone_churned_on_day_zero_is_not_estimable(tmp_path):
    df = pd.DataFrame({"customer_id": [f"c{i}" for i in range(12)], "signup_date": "2024-03-01",
                       "churn_date": "2024-03-01"})
    st = churn.survival_table(write(tmp_path, "customers", df), as_of="2024-12-31", ledger=Ledger())
    with pytest.raises(NotEstimable, match=r"no customer has a relationship longer than zero \(12 relationship"):
        churn.check_estimable(st)


@pytest.mark.parametrize("horizon", [pytest.param(-12, id="negative-horizon"), pytest.param(0, id="zero-horizon"),
                                     pytest.param(float("nan"), id="nan-horizon")])
def test_churn_horizon_must_be_positive(horizon):
    with pytest.raises(ParameterError, match="horizon must be a number greater than 0"):
        churn.check_parameters(horizon)
    with pytest.raises(ParameterError):
        churn.rmst(np.array([1.0, 2.0, 3.0]), np.array([1, 0, 1]), horizon)


def test_perfect_separation_is_a_plain_fit_error(tmp_path):
    df = telco()
    df["Churn"] = np.where(df["Contract"] == "Month-to-month", "Yes", "No")  # the contract decides who leaves
    st = churn.fold_small_groups(survival(write(tmp_path, "telco", df), event_value="Yes",
                                          covariates=["Contract", "MonthlyCharges"]), 5)
    with pytest.raises(FitError, match=r"nobody with Contract = '(One|Two) year' left .*perfect separation"):
        churn.fit_cox(st)
    assert FITS.fits[-1]["converged"] is False


def test_a_lab_value_on_a_huge_scale_is_refitted_not_reported_wrong():
    """Default Newton diverges (HR ~0, concordance ~0.5); the retry recovers the planted HR of 1.5 per 1e5."""
    rng = np.random.default_rng(0)
    n = 200
    age, sex = rng.normal(62, 12, n), rng.integers(0, 2, n).astype(float)
    lab = np.where(rng.random(n) < 0.05, rng.uniform(5e5, 1e6, n), rng.uniform(1e4, 3e4, n))
    lp = 0.03 * age + 0.5 * sex + math.log(1.5) * lab / 1e5
    t = rng.exponential(1 / (0.01 * np.exp(lp - lp.mean())))
    c = rng.uniform(0, np.quantile(t, 0.8), n)
    df = pd.DataFrame({"duration": np.minimum(t, c), "event": (t <= c).astype(int), "age": age, "sex": sex,
                       "lab": lab})
    FITS.reset()
    res = churn.fit_cox(churn.SurvivalTable(df, "months", None, ["age", "sex", "lab"]))
    assert FITS.fits[0]["converged"] and FITS.fits[0]["failed_attempts"]
    row = res.hazard_ratios.set_index("term").loc["lab"]
    assert row["ci_low"] ** 1e5 <= 1.5 <= row["ci_high"] ** 1e5 and res.concordance > 0.6


def test_infinite_tenure_is_refused(tmp_path):
    df = telco().astype({"tenure": object})
    df.loc[4, "tenure"] = "inf"
    with pytest.raises(InputError, match=r"column 'tenure'.*(infinite|not finite).*row 6"):
        survival(write(tmp_path, "telco", df), event_value="Yes")


def test_missing_service_items_are_named(world):
    survey = pd.read_csv(world["survey_responses"])
    customers = pd.DataFrame({"customer_id": survey["customer_id"].dropna().unique(), "segment": "a"})
    with pytest.raises(InputError, match=r"service items \['perc_nothing'\] are not columns of the survey"):
        churn.worst_served_segment(survey, customers, "segment", ["perc_nothing"])


# ---------------------------------------------------------------------------------------------
# churn: small groups and data rules


def test_a_segment_under_min_group_size_is_folded_everywhere(tmp_path):
    df = telco()
    df.loc[:2, "Contract"] = "Lifetime deal"  # three customers
    st = churn.fold_small_groups(survival(write(tmp_path, "telco", df), event_value="Yes", group_col="Contract",
                                          covariates=["Contract", "MonthlyCharges"]), 5)
    groups, _ = churn.groups_of(st, 5)
    assert "Lifetime deal" not in groups and min(len(g) for g in groups.values()) >= 5
    assert not any("Lifetime" in t for t in churn.fit_cox(st).hazard_ratios["term"])
    assert st.folded == {"Contract": ["Lifetime deal", *st.folded["Contract"][1:]]}


def test_missing_group_labels_form_their_own_group(tmp_path):
    df = telco().astype({"Contract": object})
    df.loc[:19, "Contract"] = None
    st = churn.fold_small_groups(survival(write(tmp_path, "telco", df), event_value="Yes", group_col="Contract"), 5)
    assert "(no value)" in churn.groups_of(st, 5)[0]


def test_complaints_before_signup_are_excluded_and_counted(world, tmp_path):
    comp = pd.read_csv(world["complaints"])
    comp.loc[:6, "opened_at"] = "2001-01-01 09:00:00"  # before anybody signed up
    ledger = Ledger()
    source = sources.from_files({"customers": world["customers"], "complaints": write(tmp_path, "complaints", comp)})
    inputs = churn.load_inputs(source, ledger, group_col="segment", covariates=["plan"], as_of="2024-12-31")
    ex = ledger.exclusions_frame().set_index("rule")["rows_excluded"]
    assert ex["opened_at before the customer's start date"] == 7
    assert (inputs.complaints["opened_at"] > pd.Timestamp("2002-01-01")).all()
    assert len(inputs.complaints) == len(comp) - int(ex.loc[ex.index != "signup_date after the observation end "
                                                                        "(2024-12-31)"].sum())


# ---------------------------------------------------------------------------------------------
# CLV: degenerate data and periods


def test_one_customer_is_not_estimable():
    s = summary_of([("a", "2024-01-01", 10.0), ("a", "2024-02-01", 12.0)], "2024-06-30")
    with pytest.raises(NotEstimable, match=r"Only 1 customer\(s\) made a first purchase .* at least 10"):
        clv.check_estimable(s)


def test_no_repeat_buyers_is_not_estimable():
    s = summary_of([(f"c{i}", f"2024-01-{i + 1:02d}", 10.0) for i in range(25)], "2024-06-30")
    with pytest.raises(NotEstimable, match="None of the 25 customers bought more than once"):
        clv.check_estimable(s)
    with pytest.raises(NotEstimable, match="Pareto/NBD model cannot be estimated"):
        clv.fit_pareto_nbd(s)


def test_too_few_repeat_spenders_is_not_estimable():
    rows = [(f"c{i}", f"2024-01-{i + 1:02d}", 10.0) for i in range(25)] + [("c0", "2024-03-01", 5.0)]
    with pytest.raises(NotEstimable, match=r"Only 1 customer\(s\) made repeat purchases with a positive amount"):
        clv.check_estimable(summary_of(rows, "2024-06-30"), min_n=5)


def test_all_purchases_on_one_day_are_not_estimable(tmp_path):
    path = tx_file(tmp_path, [(f"c{i % 7}", f"2024-05-01 1{i % 10}:00", 10.0 + i) for i in range(30)])
    with pytest.raises(NotEstimable, match=r"Every purchase in .* is on one day \(2024-05-01\)"):
        clv.load_inputs(sources.from_files({"transactions": path}), Ledger())


def rhythm(n: int = 40) -> list[tuple[str, str, float]]:
    """Purchases of ``n`` customers from January to June 2024."""
    rng = np.random.default_rng(1)
    days = pd.date_range("2024-01-01", "2024-06-30")
    return [(f"c{i}", str(pd.Timestamp(d).date()), float(rng.integers(5, 50))) for i in range(n)
            for d in sorted(rng.choice(days, rng.integers(1, 6), replace=False))]


@pytest.mark.parametrize(("cal", "hold", "message"), [
    pytest.param("2024-05-31", "2024-03-31", r"holdout_end \(2024-03-31\) must come after -p calibration_end",
                 id="holdout-before-calibration"),
    pytest.param("2024-05-31", "2024-05-31", "must come after", id="holdout-equal-to-calibration"),
    pytest.param(None, "2024-05-31", "holdout_end .* needs -p calibration_end", id="holdout-without-calibration"),
    pytest.param("2025-03-31", None, r"calibration_end \(2025-03-31\) is after the last purchase in the log",
                 id="calibration-after-the-data-ends"),
    pytest.param("2023-01-31", None, r"calibration_end \(2023-01-31\) is before the first purchase",
                 id="calibration-before-the-data-starts"),
    pytest.param("2024-04-30", "2025-06-30", r"holdout_end \(2025-06-30\) is after the last purchase",
                 id="holdout-after-the-data-ends"),
])
def test_periods_that_do_not_fit_the_log_are_refused(tmp_path, cal, hold, message):
    path = tx_file(tmp_path, rhythm())
    with pytest.raises(ParameterError, match=message):
        clv.load_inputs(sources.from_files({"transactions": path}), Ledger(), calibration_end=cal, holdout_end=hold)


@pytest.mark.parametrize(("horizon", "discount", "margin", "message"), [
    pytest.param(-52, 0.1, 0.3, "horizon must be a number greater than 0", id="negative-horizon"),
    pytest.param(52, -0.05, 0.3, "discount_rate must be 0 or more", id="negative-discount"),
    pytest.param(52, 0.1, 1.4, "margin must be a share between 0 and 1", id="margin-above-one"),
])
def test_value_parameters_are_refused_by_the_library(horizon, discount, margin, message):
    with pytest.raises(ParameterError, match=message):
        clv.check_value_parameters(horizon, discount, margin)
    s = summary_of(rhythm(), "2024-06-30")
    with pytest.raises(ParameterError, match=message):
        clv.customer_values(clv.BetaGeoFit([0.5, 5.0, 1.0, 2.0]), clv.GammaGammaFit([6.0, 4.0, 15.0]), s, horizon, discount,
                            margin)


@pytest.mark.parametrize("value", [pytest.param("inf", id="inf-amount"), pytest.param("-Infinity", id="minus-inf"),
                                   pytest.param("Infinity", id="Infinity-amount")])
def test_infinite_amounts_are_refused(tmp_path, value):
    rows = [(c, d, str(a)) for c, d, a in rhythm(12)]
    rows[3] = (rows[3][0], rows[3][1], value)
    path = write(tmp_path, "tx", pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]))
    with pytest.raises(InputError, match=r"column 'amount': 1 (value|amount)\(s\) (are infinite|are not finite)"
                                         r".*row 5"):
        clv.load_transactions(path, ledger=Ledger())


def test_unknown_time_unit_is_refused():
    daily = pd.DataFrame({"customer_id": ["a"], "date": pd.to_datetime(["2024-01-01"]), "amount": [1.0]})
    with pytest.raises(ParameterError, match="time_unit must be one of"):
        clv.rfm_summary(daily, "2024-06-30", time_unit="fortnights")


def test_purchases_by_unknown_customers_are_excluded_and_counted(world, tmp_path):
    tx = pd.read_csv(world["transactions"])
    extra = tx.head(9).assign(customer_id="GHOST-1")
    ledger = Ledger()
    source = sources.from_files({"transactions": write(tmp_path, "tx", pd.concat([tx, extra])),
                                 "customers": world["customers"]})
    inputs = clv.load_inputs(source, ledger, calibration_end="2023-06-30", holdout_end="2023-12-31")
    ex = ledger.exclusions_frame().set_index("rule")["rows_excluded"]
    assert ex["customer_id not found in the customers table"] == 9
    assert "GHOST-1" not in set(inputs.transactions.daily["customer_id"])


def test_a_small_segment_never_gets_its_own_row():
    values = pd.Series(np.arange(40.0), index=[f"c{i}" for i in range(40)])
    labels = pd.Series(["north"] * 30 + ["south"] * 8 + [PERSON] * 2, index=values.index)
    table = clv.value_by(values, labels, 5)
    assert PERSON not in set(table["group"]) and table["customers"].min() >= 5
    assert table["customers"].sum() == 40  # nothing recoverable: the small group sits inside "Other"


# ---------------------------------------------------------------------------------------------
# full notebook runs (10)


@pytest.mark.slow
@pytest.mark.parametrize("churn_as", [pytest.param("text", id="telecom-event-value-Yes"),
                                      pytest.param("number", id="telecom-event-value-1")])
def test_notebook_telecom_table_with_text_event_value(case, tmp_path, churn_as):
    path = write(tmp_path, "telco", telco(churn_as=churn_as))
    out = case("churn_survival", customers_path=path, event_value="Yes" if churn_as == "text" else "1", **TELCO)
    assert_handled(out, "Month-to-month")
    assert out.results["metrics"]["n_events"] > 0
    assert {c["id"]: c["verdict"] for c in out.results["claims"]}["service_recovery"] == "not testable"
    assert "QWERT" not in out.html  # no customer IDs


@pytest.mark.slow
def test_notebook_hostile_and_small_segment_labels(case, world, tmp_path):
    """One run, three kinds of segment label: mathtext with script (shown escaped), personal data (hidden) and a
    segment under min_group_size (folded into "Other (small groups)", never named)."""
    df = pd.read_csv(world["customers"], dtype=str, keep_default_na=False)
    df.loc[:59, "segment"] = f"{MATH} {EVIL}"
    df.loc[60:119, "segment"] = PERSON
    df.loc[120:122, "segment"] = "Tiny"
    out = case("churn_survival", customers_path=write(tmp_path, "customers", df), covariates=["plan", "segment"],
               min_group_size=5)
    assert_handled(out, "personal data", "Other (small groups)")
    assert EVIL not in out.html and "<script>document" not in out.html
    m = out.results["metrics"]
    assert any("alpha" in g for g in m["km_median"])  # the group is shown, escaped
    blob = out.html + json.dumps(out.results, ensure_ascii=False)
    for fragment in ("Ivan", "Petrov", "912 345", "345-67-89"):
        assert fragment not in blob
    for name in ("km_median", "rmst", "survival_at_horizon", "hazard_ratios"):
        assert not any("Tiny" in key for key in m[name]), name
    assert "Other (small groups)" in m["km_median"]
    assert_inert_in_browser(out.folder / "report.html")


@pytest.mark.slow
def test_notebook_complaints_for_unknown_customers(case, world, tmp_path):
    comp = pd.read_csv(world["complaints"])
    ghosts = comp.head(21).assign(customer_id=[f"GHOST-{i}" for i in range(21)])
    path = write(tmp_path, "complaints", pd.concat([comp, ghosts]))
    out = case("churn_survival", customers_path=str(world["customers"]), complaints_path=path,
               covariates=["plan", "segment"])
    assert_handled(out, "customer_id not among the customers analysed")
    rows = {e["rule"]: e["rows_excluded"] for e in out.results["exclusions"]}
    assert rows["customer_id not among the customers analysed (unknown, or a relationship of zero length)"] == 21


@pytest.mark.slow
def test_notebook_nobody_churned(case, world, tmp_path):
    df = pd.read_csv(world["customers"], dtype=str, keep_default_na=False).assign(churn_date="")
    out = case("churn_survival", customers_path=write(tmp_path, "customers", df), covariates=["plan"])
    assert_refused(out, "nobody left during the observation window", "Fix:")
    assert out.results["error"]["ename"] == "NotEstimable"


@pytest.mark.slow
def test_notebook_purchases_by_unknown_customers(case, world, tmp_path):
    tx = pd.read_csv(world["transactions"])
    path = write(tmp_path, "tx", pd.concat([tx, tx.head(13).assign(customer_id="GHOST-7")]))
    out = case("customer_lifetime_value", transactions_path=path, customers_path=str(world["customers"]),
               calibration_end="2023-06-30", holdout_end="2023-12-31")
    assert_handled(out, "customer_id not found in the customers table")
    rows = {e["rule"]: e["rows_excluded"] for e in out.results["exclusions"]}
    assert rows["customer_id not found in the customers table"] == 13
    assert out.results["converged"] is True


@pytest.mark.slow
def test_notebook_personal_data_and_script_as_channel_labels(case, world, tmp_path):
    df = pd.read_csv(world["customers"], dtype=str, keep_default_na=False)
    df.loc[:39, "segment"] = PERSON
    df.loc[40:79, "channel"] = EVIL
    out = case("customer_lifetime_value", transactions_path=str(world["transactions"]),
               customers_path=write(tmp_path, "customers", df), calibration_end="2023-06-30",
               holdout_end="2023-12-31")
    assert_handled(out, "personal data")
    blob = out.html + json.dumps(out.results, ensure_ascii=False)
    assert "Petrov" not in blob and "912 345" not in blob and EVIL not in out.html
    assert_inert_in_browser(out.folder / "report.html")


@pytest.mark.slow
def test_notebook_no_repeat_buyers(case, tmp_path):
    rows = [(f"c{i}", str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=i)), 20.0) for i in range(60)]
    out = case("customer_lifetime_value", transactions_path=tx_file(tmp_path, rows))
    assert_refused(out, "bought more than once", "Fix:")
    assert out.results["error"]["ename"] == "NotEstimable"
