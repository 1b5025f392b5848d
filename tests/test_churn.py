"""Churn survival analysis: recovery of planted effects, agreement with lifelines/statsmodels, validation."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxresearch import checks, churn, contracts, sources
from cxresearch.design import design_matrix, formula_of
from cxresearch.errors import NotEstimable, ParameterError
from cxresearch.io import InputError, Ledger, read_table
from cxresearch.runner import RunSpec, run_notebook
from cxresearch.synth import ensure_world, load_truth, make_world, write_world
from tests.plain_words import RAW

COVARIATES = ["plan", "segment", "channel", "region"]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def world_table(paths, **kw):
    return churn.survival_table(str(paths["customers"]), as_of="2024-12-31", group_col="segment",
                                covariates=COVARIATES, ledger=Ledger(), **kw)


def fit_full(paths):
    st = world_table(paths)
    comp = read_table(paths["complaints"], contracts.COMPLAINTS, ledger=Ledger())
    return st, churn.fit_time_varying(st, churn.complaint_episodes(st, comp))


def test_planted_hazard_ratios_inside_simultaneous_intervals():
    paths = ensure_world(n_customers=5000)
    st, tv = fit_full(paths)
    truth = load_truth(paths)
    references = churn.covariate_design(st).references
    check = checks.churn_check(tv, truth, 24, references)
    assert len(check) == 14
    assert check["inside simultaneous CI"].all(), check
    assert check["inside 95% CI"].mean() >= 0.85
    assert checks.churn_skipped(truth, 24, references) == []
    # another reference level or another meaning of "fast": those rows are left out, and the notes say why
    other = checks.churn_check(tv, truth, 48, {**references, "plan": "annual"})
    assert not {"fast", "slow", "unresolved"} & set(other["term"]) and not other["term"].str.startswith("plan").any()
    notes = [n["template"] for n in checks.churn_skipped(truth, 48, {**references, "plan": "annual"})]
    assert len(notes) == 2 and "measured against" in notes[0] and "within {here:g} hours here" in notes[1]


def test_hazard_ratio_intervals_cover_about_95_percent(tmp_path):
    inside = []
    for seed in range(12):
        world = make_world(n_customers=3000, seed=100 + seed)
        paths = write_world(world, tmp_path / str(seed))
        st, tv = fit_full(paths)
        inside += list(checks.churn_check(tv, world.truth, 24, churn.covariate_design(st).references)["inside 95% CI"])
    coverage = float(np.mean(inside))
    assert 0.88 <= coverage <= 1.0, coverage  # 168 intervals; 95% expected, 4 SD below is 0.88


def test_rmst_matches_lifelines_and_covers():
    from lifelines import KaplanMeierFitter
    from lifelines.utils import restricted_mean_survival_time

    rng = np.random.default_rng(3)
    t, c = rng.exponential(10, 500), rng.uniform(0, 30, 500)
    d, e = np.minimum(t, c), (t <= c).astype(int)
    est, _ = churn.rmst(d, e, 12)
    assert math.isclose(est, restricted_mean_survival_time(KaplanMeierFitter().fit(d, e), t=12), rel_tol=1e-9)
    truth = 10 * (1 - math.exp(-12 / 10))
    hits = 0
    for _ in range(300):
        t, c = rng.exponential(10, 150), rng.uniform(0, 30, 150)
        est, se = churn.rmst(np.minimum(t, c), (t <= c).astype(int), 12)
        hits += abs(est - truth) <= 1.959964 * se
    assert 0.91 <= hits / 300 <= 0.98


def test_km_figures_match_lifelines():
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(5)
    d, e = rng.exponential(8, 300), rng.integers(0, 2, 300)
    kmf = KaplanMeierFitter().fit(d, e)
    s, lo, hi = churn.survival_at(kmf, 6.0)
    assert math.isclose(s, float(kmf.predict(6.0)))
    assert lo < s < hi
    med, mlo, mhi = churn.median_lifetime(kmf)
    assert med == kmf.median_survival_time_ and mlo <= med <= mhi


def test_complaint_episodes_split_histories():
    st = churn.SurvivalTable(
        pd.DataFrame({"id": ["a", "b"], "duration": [10.0, 5.0], "event": [1, 0],
                      "start": pd.to_datetime(["2024-01-01", "2024-01-01"])}),
        "days", None, [], "id", "signup_date")
    comp = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
                         "opened_at": pd.to_datetime(["2024-01-03", "2024-01-06", "2024-01-20", "2024-01-02"]),
                         "resolved": [True, False, True, True], "hours_to_resolve": [2.0, np.nan, 1.0, 50.0]})
    ep = churn.complaint_episodes(st, comp, fast_hours=24)
    a = ep[ep["id"] == "a"]
    assert a[["start", "stop", "event", "state"]].values.tolist() == [[0.0, 2.0, 0, "none"], [2.0, 5.0, 0, "fast"],
                                                                       [5.0, 10.0, 1, "unresolved"]]
    assert ep[ep["id"] == "b"]["state"].tolist() == ["none", "slow"]


def test_time_varying_fit_agrees_with_lifelines():
    from lifelines import CoxTimeVaryingFitter

    paths = ensure_world(n_customers=1500, seed=9)
    st, tv = fit_full(paths)
    comp = read_table(paths["complaints"], contracts.COMPLAINTS, ledger=Ledger())
    ep = churn.complaint_episodes(st, comp)
    x = design_matrix(st.data, formula_of(COVARIATES)).X
    long = ep.merge(pd.concat([st.data[["id"]], x], axis=1), on="id")
    for s in ("fast", "slow", "unresolved"):
        long[s] = (long["state"] == s).astype(float)
    ref = CoxTimeVaryingFitter().fit(long.drop(columns="state"), id_col="id", start_col="start", stop_col="stop",
                                     event_col="event")
    ours = tv.set_index("term")["hr"]
    for term, coef in ref.params_.items():
        assert math.isclose(ours[term], math.exp(coef), rel_tol=1e-4), term


def test_pattern_cox_is_the_efron_likelihood_of_every_row():
    """The pattern fitter gives statsmodels PHReg's estimates, standard errors and log-likelihood with heavy ties
    of event times; with entries on event times it keeps the counting-process rule start < t <= stop, as
    lifelines' CoxTimeVaryingFitter does (PHReg counts a row entering at t as at risk at t)."""
    from lifelines import CoxTimeVaryingFitter
    from statsmodels.duration.hazard_regression import PHReg

    rng = np.random.default_rng(5)
    n = 3000
    x = np.column_stack([rng.integers(0, 2, n), rng.integers(0, 3, n) == 1, rng.integers(0, 3, n) == 2]).astype(float)
    stop = np.ceil(rng.exponential(20 * np.exp(-0.5 * x[:, 0] + 0.3 * x[:, 1]))).clip(1, 40)  # many ties
    start = np.where(rng.random(n) < 0.3, np.floor(stop * rng.random(n)), 0.0)  # entries on event times
    event = (stop < 40).astype(int)
    between = np.where(start > 0, start + 0.5, 0.0)  # entries between event times
    model = churn.PatternCox(between, stop, event, x)
    params, cov = model.fit()
    ref = PHReg(stop, x, status=event, entry=between, ties="efron").fit(method="newton", tol=1e-12, disp=0)
    np.testing.assert_allclose(params, ref.params, rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), ref.bse, rtol=1e-9)
    assert model.loglik(params) == pytest.approx(ref.llf, rel=1e-12)
    assert model.patterns.shape[0] <= 12 and np.max(np.abs(model.newton_step(params))) < 1e-9
    on_times = churn.PatternCox(start, stop, event, x).fit()[0]
    long = pd.DataFrame(x, columns=["a", "b", "c"]).assign(id=np.arange(n), start=start, stop=stop, event=event)
    lifelines = CoxTimeVaryingFitter().fit(long, id_col="id", start_col="start", stop_col="stop", event_col="event")
    np.testing.assert_allclose(on_times, lifelines.params_.to_numpy(), rtol=1e-6)


def test_the_time_varying_fit_on_patterns_equals_phreg_per_row():
    from statsmodels.duration.hazard_regression import PHReg

    st, tv = fit_full(ensure_world(n_customers=1500, seed=9))
    comp = read_table(ensure_world(n_customers=1500, seed=9)["complaints"], contracts.COMPLAINTS, ledger=Ledger())
    ep = churn.complaint_episodes(st, comp)
    x = churn.covariate_design(st).X
    long = ep.merge(pd.concat([st.data[["id"]], x], axis=1), on="id", how="left")
    states = pd.DataFrame({s: (long["state"] == s).astype(float) for s in ("fast", "slow", "unresolved")})
    exog = pd.concat([long[x.columns], states], axis=1)
    ref = PHReg(long["stop"], exog, status=long["event"], entry=long["start"], ties="efron").fit(
        method="newton", tol=1e-12, disp=0)
    ours = tv.set_index("term").loc[list(exog.columns)]
    np.testing.assert_allclose(np.log(ours["hr"]), ref.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["p_value"], ref.pvalues, rtol=1e-6, atol=1e-300)
    from cxresearch.fits import FITS

    assert any(f["method"].startswith("Newton–Raphson on covariate patterns") for f in FITS.fits)


def test_hazard_vs_the_worst_served_segment_equals_lifelines():
    from lifelines import CoxPHFitter

    st = world_table(ensure_world(n_customers=1500, seed=9))
    ours = churn.hazard_vs_segment(st, "segment", "value").set_index("segment")
    d = design_matrix(st.data[["segment"]].astype(str), formula_of(["segment"]), reference={"segment": "value"})
    ref = CoxPHFitter().fit(d.X.assign(duration=st.data["duration"], event=st.data["event"]), "duration", "event",
                            fit_options=churn.COX_OPTIONS).summary
    for term, row in ref.iterrows():
        level = term[len("segment["):-1]
        assert ours.at[level, "hr"] == pytest.approx(math.exp(row["coef"]), rel=1e-9)
        assert ours.at[level, "ci_high"] == pytest.approx(math.exp(row["coef upper 95%"]), rel=1e-7)
        assert ours.at[level, "p_value"] == pytest.approx(row["p"], rel=1e-6, abs=1e-300)


def test_the_main_cox_model_on_patterns_equals_lifelines():
    """Above ph_sample customers the Cox model is fitted on covariate patterns: the same estimates, standard
    errors, p-values, concordance and predicted survival as lifelines' CoxPHFitter on every customer."""
    from cxresearch.fits import FITS

    st = world_table(ensure_world(n_customers=1500, seed=9))
    FITS.reset()
    ours = churn.fit_cox(st, ph_sample=500)
    assert isinstance(ours.fitter, churn.PatternCoxFit)
    assert any(f["model"] == "Cox model" and f["method"].startswith("Newton–Raphson on covariate patterns")
               for f in FITS.fits)
    x = churn.covariate_design(st).X
    from lifelines import CoxPHFitter  # converged further than fit_cox_model's 1e-12 (which leaves 3e-8 here)

    ref = CoxPHFitter().fit(pd.concat([st.data[["duration", "event"]], x], axis=1), "duration", "event",
                            fit_options={"precision": 1e-14, "r_precision": 0.0, "max_steps": 500, "step_size": 0.5})
    cols = ["coef", "se(coef)", "coef lower 95%", "coef upper 95%", "z"]
    pd.testing.assert_frame_equal(ours.fitter.summary[cols], ref.summary[cols], check_exact=False, rtol=1e-8)
    np.testing.assert_allclose(ours.fitter.summary["p"], ref.summary["p"], rtol=1e-6, atol=1e-300)
    assert ours.concordance == pytest.approx(ref.concordance_index_, abs=1e-12)
    for horizon in (6.5, 24.0, 1e3):
        np.testing.assert_allclose(churn.predicted_survival(ours.fitter, st, horizon),
                                   churn.predicted_survival(ref, st, horizon), rtol=1e-8)
    assert sorted(ours.ph_test["term"]) == sorted(x.columns)  # the PH check on the sample, by lifelines


def test_when_the_pattern_fit_fails_lifelines_attempts_follow_in_the_same_record(monkeypatch):
    from cxresearch.fits import FITS

    st = world_table(ensure_world(n_customers=1500, seed=9))
    df = pd.concat([st.data[["duration", "event"]], churn.covariate_design(st).X], axis=1)

    def fail(self, *args, **kwargs):
        raise RuntimeError("Newton-Raphson did not settle in 100 steps")

    monkeypatch.setattr(churn.PatternCox, "fit", fail)
    FITS.reset()
    fit = churn.fit_cox_model(df, "Cox model", patterns=True)
    assert not isinstance(fit, churn.PatternCoxFit) and hasattr(fit, "baseline_cumulative_hazard_")
    [record] = FITS.fits
    assert record["converged"] and record["method"].endswith("step 0.95")
    assert [a.split(":")[0] for a in record["failed_attempts"]] == [label for label, _ in churn.PATTERN_SETTINGS]


def test_concordance_counted_per_pattern_equals_lifelines():
    """Ties in time (left and censored at the same moment), ties in prediction, zero durations."""
    from lifelines.utils import concordance_index

    rng = np.random.default_rng(3)
    for n in (50, 4000):
        duration = rng.integers(0, 30, n).astype(float)
        event = rng.random(n) < 0.6
        predicted = rng.integers(0, 7, n) * 0.5
        assert churn.pattern_concordance(duration, event, predicted) == pytest.approx(
            concordance_index(duration, predicted, event), abs=1e-14)


def test_aft_models_fitted_on_distinct_rows_equal_the_fits_on_every_customer():
    from lifelines import LogLogisticAFTFitter, WeibullAFTFitter

    st = world_table(ensure_world(n_customers=1500, seed=9))
    par = churn.fit_parametric(st)
    df = pd.concat([st.data[["duration", "event"]], churn.covariate_design(st).X], axis=1)
    for name, cls in (("Weibull AFT", WeibullAFTFitter), ("log-logistic AFT", LogLogisticAFTFitter)):
        full = cls().fit(df, "duration", "event", fit_options={"gtol": 1e-8, "maxiter": 2000})
        row = par.aic.set_index("model").loc[name]
        # the same optimum, within the optimiser's tolerance (BFGS, gradient 1e-8)
        assert row["log_likelihood"] == pytest.approx(full.log_likelihood_, rel=1e-6)
        assert row["aic"] == pytest.approx(full.AIC_, rel=1e-6)
    best = WeibullAFTFitter if par.name == "Weibull AFT" else LogLogisticAFTFitter
    full = best().fit(df, "duration", "event", fit_options={"gtol": 1e-8, "maxiter": 2000})
    np.testing.assert_allclose(par.fitter.params_, full.params_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(par.fitter.standard_errors_, full.standard_errors_, rtol=1e-4)


def telco_like(path: Path, n: int = 1500, seed: int = 0) -> Path:
    """A table shaped like the public telecom churn data: tenure in months, Churn Yes/No, Contract."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    charges = np.round(rng.uniform(18, 118, n), 2)
    rate = 0.03 * np.where(contract == "Month-to-month", 1.0, np.where(contract == "One year", 0.35, 0.12))
    rate *= np.exp(0.01 * (charges - 65))
    life = rng.exponential(1 / rate)
    follow = rng.uniform(0, 72, n)
    tenure = np.ceil(np.minimum(life, follow)).astype(int)
    churned = np.where(life <= follow, "Yes", "No")
    pd.DataFrame({"customerID": [f"{i:04d}-ABCDE" for i in range(n)], "tenure": tenure, "Contract": contract,
                  "MonthlyCharges": charges, "Churn": churned}).to_csv(path, index=False)
    return path


def agreement(path: Path, duration: str, event: str, event_value: str, group: str, covariates: list[str]):
    from lifelines import CoxPHFitter
    from lifelines.statistics import multivariate_logrank_test
    from statsmodels.duration.hazard_regression import PHReg

    st = churn.survival_table(str(path), duration_col=duration, event_col=event, event_value=event_value,
                              group_col=group, covariates=covariates, id_col=None, ledger=Ledger())
    raw = pd.read_csv(path)
    raw = raw[raw[duration] > 0]  # the stated rule: zero-length relationships are left out
    direct = multivariate_logrank_test(raw[duration], raw[group], (raw[event] == event_value).astype(int))
    ours = churn.logrank(churn.groups_of(st)[0])
    assert math.isclose(ours["chi2"], direct.test_statistic, rel_tol=1e-9)
    assert ours["df"] == direct.degrees_of_freedom
    d = design_matrix(st.data, formula_of(covariates))
    x, refs = d.X, d.references
    cox = churn.fit_cox(st).hazard_ratios.set_index("term")
    df = pd.concat([st.data[["duration", "event"]], x], axis=1)
    # lifelines' default stops on a 1e-9 relative change of the log-likelihood; ours only when a Newton step
    # is negligible, so ours is the tighter optimum: equal to a tight lifelines fit, close to the default one
    tight = np.exp(CoxPHFitter().fit(df, "duration", "event", fit_options=churn.COX_OPTIONS).params_)
    default = np.exp(CoxPHFitter().fit(df, "duration", "event").params_)
    sm_fit = PHReg(df["duration"], x, status=df["event"], ties="efron").fit(method="newton", tol=1e-12)
    for i, term in enumerate(x.columns):
        assert math.isclose(cox.at[term, "hr"], tight[term], rel_tol=1e-9)
        assert math.isclose(cox.at[term, "hr"], default[term], rel_tol=1e-4)
        assert math.isclose(cox.at[term, "hr"], math.exp(np.asarray(sm_fit.params)[i]), rel_tol=1e-7)
    return st, refs


def test_agreement_on_telecom_shaped_table(tmp_path):
    st, refs = agreement(telco_like(tmp_path / "telco.csv"), "tenure", "Churn", "Yes", "Contract",
                         ["Contract", "MonthlyCharges"])
    assert refs == {"Contract": "Month-to-month"}
    assert any(n["rule"].startswith("relationships of zero length") for n in st.notes) or (st.data["duration"] > 0).all()


def _public_telco() -> Path | None:
    candidates = [os.environ.get("CXRESEARCH_TELCO_CSV", ""), *map(str, SHARED.glob("*elco*.csv"))]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


@pytest.mark.skipif(_public_telco() is None, reason="no public telecom churn copy (set CXRESEARCH_TELCO_CSV)")
def test_agreement_on_public_telecom_data():
    agreement(_public_telco(), "tenure", "Churn", "Yes", "Contract", ["Contract", "MonthlyCharges"])


def test_ph_violation_leads_to_stratified_model():
    rng = np.random.default_rng(0)
    n = 3000
    g = rng.choice(["early", "late"], n)
    # crossing hazards: "early" leaves fast at first, "late" later (Weibull shapes 0.5 vs 3)
    t = np.where(g == "early", rng.weibull(0.5, n) * 10, rng.weibull(3.0, n) * 10)
    x = rng.normal(size=n)  # no effect: proportional by construction
    st = churn.SurvivalTable(pd.DataFrame({"duration": np.minimum(t, 25), "event": (t < 25).astype(int),
                                           "grp": g, "x": x}), "months", None, ["grp", "x"])
    res = churn.fit_cox(st)
    assert res.ph_failures == ["grp"]
    assert res.stratified is not None and list(res.stratified_hazard_ratios["term"]) == ["x"]


def test_calibration_of_a_well_specified_model():
    paths = ensure_world(n_customers=5000)
    st = world_table(paths)
    cox = churn.fit_cox(st)
    cal = churn.calibration(st, churn.predicted_survival(cox.fitter, st, 24), 24)
    assert (cal["predicted"] - cal["observed"]).abs().mean() < 0.04
    assert cal["customers"].sum() == st.n


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "customers.csv"
    p.write_text(text)
    return str(p)


def test_negative_duration_is_an_error(tmp_path):
    path = write(tmp_path, "id,tenure,Churn\na,3,Yes\nb,-2,No\n")
    with pytest.raises(InputError, match=r"column 'tenure': 1 value\(s\) below the minimum 0: row 3"):
        churn.survival_table(path, duration_col="tenure", event_col="Churn", event_value="Yes", id_col=None,
                             ledger=Ledger())


def test_event_value_that_never_occurs(tmp_path):
    path = write(tmp_path, "tenure,Churn\n3,Yes\n5,No\n")
    with pytest.raises(InputError, match=r"the event value 'yes' never occurs \(values found: \['No', 'Yes'\]\)"):
        churn.survival_table(path, duration_col="tenure", event_col="Churn", event_value="yes", id_col=None,
                             ledger=Ledger())


def test_constant_and_missing_covariates(tmp_path):
    path = write(tmp_path, "tenure,Churn,plan,region\n3,1,a,N\n5,0,a,\n7,1,a,S\n")
    with pytest.raises(InputError) as exc:
        churn.survival_table(path, duration_col="tenure", event_col="Churn", covariates=["plan", "region"],
                             id_col=None, ledger=Ledger())
    msg = str(exc.value)
    assert "covariate 'plan' has the single value 'a'" in msg
    assert "covariate 'region': 1 empty value(s), rows 3" in msg and "customers.csv" in msg


def test_missing_covariate_column_and_time_unit(tmp_path):
    path = write(tmp_path, "tenure,Churn\n3,1\n5,0\n")
    with pytest.raises(InputError, match="column 'plan' \\(a covariate or group_col\\) is missing"):
        churn.survival_table(path, duration_col="tenure", event_col="Churn", covariates=["plan"], id_col=None,
                             ledger=Ledger())
    with pytest.raises(InputError, match="time_unit 'fortnights'"):
        churn.survival_table(path, duration_col="tenure", event_col="Churn", time_unit="fortnights", ledger=Ledger())


def test_dates_censor_at_as_of(tmp_path):
    path = write(tmp_path, "customer_id,signup_date,churn_date\na,2024-01-01,2024-03-01\nb,2024-01-01,2025-02-01\n"
                           "c,2024-01-01,\nd,2025-03-01,\n")
    st = churn.survival_table(path, as_of="2024-12-31", time_unit="days", ledger=Ledger())
    assert st.data["event"].tolist() == [1, 0, 0]
    assert st.data["duration"].tolist() == [60.0, 365.0, 365.0]
    assert st.notes[0]["rows"] == 1  # b's churn after as_of counted as still a customer


def test_notebook_verdict_flips_when_complaint_effects_are_removed(tmp_path):
    res = run_notebook(RunSpec("churn_survival", parameters={
        "effects": {"hr_complaint_fast": 1.0, "hr_complaint_unresolved": 1.0}}), tmp_path)
    assert res["status"] == "ok", res.get("error")
    verdicts = {c["id"]: c["verdict"] for c in res["claims"]}
    assert verdicts["service_recovery"] != "supported"
    assert verdicts["unresolved_complaints_raise_churn"] != "supported"


def test_notebook_runs_on_a_telecom_shaped_table(tmp_path):
    path = telco_like(tmp_path / "telco.csv")
    res = run_notebook(RunSpec("churn_survival", parameters={
        "customers_path": str(path), "duration_col": "tenure", "event_col": "Churn", "event_value": "Yes",
        "group_col": "Contract", "covariates": ["Contract", "MonthlyCharges"], "id_col": None, "horizon": 12,
        "start_col": None, "end_col": None}), tmp_path / "out")
    assert res["status"] == "ok", res.get("error")
    assert set(res["metrics"]["km_median"]) == {"Month-to-month", "One year", "Two year"}
    assert res["metrics"]["hazard_ratios"]["Contract[Two year]"]["estimate"] < 1
    verdicts = {c["id"]: c["verdict"] for c in res["claims"]}
    assert verdicts["service_recovery"] == "not testable"  # no complaints table
    html = (tmp_path / "out" / "churn_survival" / "report.html").read_text()
    assert "ABCDE" not in html  # no customer IDs


# ---------------------------------------------------------------------------------------------
# convergence, degenerate data, data rules, small groups, ties (issue 10)


def lab_cohort(n: int = 200, seed: int = 0, hr_per_1e5: float = 1.5) -> pd.DataFrame:
    """A mortality-cohort shape: age, sex and a lab value on a 1e4–1e6 scale (5% extreme values), planted HRs.

    On seeds 0 and 5 lifelines' default Newton step (0.95) overshoots and then shrinks its step to nothing:
    it stops with a ConvergenceWarning and a lab hazard ratio near 0 (concordance about 0.5).
    """
    rng = np.random.default_rng(seed)
    age = rng.normal(62, 12, n)
    sex = rng.integers(0, 2, n).astype(float)
    lab = np.where(rng.random(n) < 0.05, rng.uniform(5e5, 1e6, n), rng.uniform(1e4, 3e4, n))
    lp = 0.03 * age + 0.5 * sex + math.log(hr_per_1e5) * lab / 1e5
    t = rng.exponential(1 / (0.01 * np.exp(lp - lp.mean())))
    c = rng.uniform(0, np.quantile(t, 0.8), n)
    return pd.DataFrame({"age": age, "sex": sex, "lab": lab, "duration": np.minimum(t, c),
                         "event": (t <= c).astype(int)})


@pytest.mark.parametrize("seed", [0, 5])
def test_retry_recovers_the_planted_hazard_ratio_when_newton_diverges(seed):
    import warnings

    from lifelines import CoxPHFitter

    from cxresearch.fits import FITS

    df = lab_cohort(seed=seed)
    with warnings.catch_warnings(record=True) as caught:  # the failure this guards against
        warnings.simplefilter("always")
        naive = CoxPHFitter().fit(df, "duration", "event")
    assert any("Convergence" in w.category.__name__ for w in caught)
    assert math.exp(naive.params_["lab"] * 1e5) < 1.0  # way off the planted 1.5
    FITS.reset()
    res = churn.fit_cox(churn.SurvivalTable(df, "months", None, ["age", "sex", "lab"]))
    record = FITS.fits[0]
    assert record["converged"] and record["failed_attempts"] and "step 0.95" in record["failed_attempts"][0]
    hr = res.hazard_ratios.set_index("term")
    lab_hr = hr.at["lab", "hr"] ** 1e5
    lo, hi = hr.at["lab", "ci_low"] ** 1e5, hr.at["lab", "ci_high"] ** 1e5
    assert lo <= 1.5 <= hi and 1.3 < lab_hr < 1.8
    assert res.concordance > 0.6


def test_perfect_separation_fails_in_plain_words():
    from cxresearch.fits import FitError

    rng = np.random.default_rng(1)
    g = rng.integers(0, 2, 200).astype(float)
    df = pd.DataFrame({"duration": rng.exponential(10, 200), "event": (g == 1).astype(int), "vip": g,
                       "age": rng.normal(size=200)})
    with pytest.raises(FitError, match=r"everybody who left had 'vip' = 1, so its hazard ratio would be infinite "
                                       r"\(perfect separation\)"):
        churn.fit_cox(churn.SurvivalTable(df, "months", None, ["vip", "age"]))
    d = np.arange(1, 101, dtype=float)  # a numeric covariate that orders every departure
    df = pd.DataFrame({"duration": d, "event": 1, "score": -d})
    with pytest.raises(FitError, match="had the highest 'score' of everyone still a customer"):
        churn.fit_cox(churn.SurvivalTable(df, "months", None, ["score"]))


def test_collinear_covariates_fail_in_plain_words():
    from cxresearch.fits import FitError

    rng = np.random.default_rng(2)
    plan = rng.choice(["a", "b"], 300)
    df = pd.DataFrame({"duration": rng.exponential(10, 300), "event": rng.integers(0, 2, 300), "plan": plan,
                       "tariff": np.where(plan == "a", "x", "y")})
    st = churn.SurvivalTable(df, "months", None, ["plan", "tariff"])
    with pytest.raises(FitError, match=r"tariff = '[xy]' carries the same information as plan = '[ab]' \(the "
                                       r"covariates are collinear\)"):
        churn.fit_cox(st)


def test_refits_agree_tightly_whatever_the_row_order():
    paths = ensure_world(n_customers=1500, seed=9)
    st = world_table(paths)
    shuffled = churn.SurvivalTable(st.data.sample(frac=1, random_state=1).reset_index(drop=True), st.time_unit,
                                   st.group_col, st.covariates, st.id_col, st.start_col)
    a = churn.fit_cox(st).hazard_ratios.set_index("term")["hr"]
    b = churn.fit_cox(shuffled).hazard_ratios.set_index("term")["hr"]
    assert np.allclose(a, b[a.index], rtol=1e-8, atol=0)


def test_event_value_as_text_and_as_number(tmp_path):
    p = tmp_path / "c.csv"
    pd.DataFrame({"tenure": [3, 5, 7, 9], "Churn": ["Yes", "No", "Yes", "No"], "flag": [1, 0, 1, 0],
                  "f": ["1.0", "0.0", "1.0", "0.0"]}).to_csv(p, index=False)
    for col, value in (("Churn", "Yes"), ("flag", "1"), ("f", "1"), ("f", 1), ("flag", True)):
        st = churn.survival_table(str(p), duration_col="tenure", event_col=col, event_value=value, id_col=None,
                                  ledger=Ledger())
        assert st.data["event"].tolist() == [1, 0, 1, 0], (col, value)
    with pytest.raises(InputError, match=r"column 'Churn': the event value 'yes' never occurs \(values found: "
                                         r"\['No', 'Yes'\]\)\. Did you mean 'Yes'\?"):
        churn.survival_table(str(p), duration_col="tenure", event_col="Churn", event_value="yes", id_col=None,
                             ledger=Ledger())


def test_degenerate_tables_are_not_estimable(tmp_path):
    nobody = write(tmp_path, "customer_id,signup_date,churn_date\na,2024-01-01,\nb,2024-02-01,\n")
    st = churn.survival_table(nobody, as_of="2024-12-31", ledger=Ledger())
    with pytest.raises(NotEstimable, match=r"nobody left during the observation window \(0 of 2 customers\)"):
        churn.check_estimable(st)
    day0 = write(tmp_path, "customer_id,signup_date,churn_date\na,2024-01-01,2024-01-01\nb,2024-02-01,2024-02-01\n")
    st = churn.survival_table(day0, as_of="2024-12-31", ledger=Ledger())
    with pytest.raises(NotEstimable, match=r"no customer has a relationship longer than zero \(2 relationship"):
        churn.check_estimable(st)
    with pytest.raises(ParameterError, match="horizon must be a number greater than 0"):
        churn.check_parameters(-12)
    with pytest.raises(ParameterError):
        churn.rmst(np.array([1.0, 2.0]), np.array([1, 0]), 0)


def test_small_groups_are_folded_everywhere():
    rng = np.random.default_rng(4)
    n = 400
    seg = np.array(["big"] * 250 + ["mid"] * 143 + ["tiny"] * 3 + ["wee"] * 4)
    plan = np.where(rng.random(n) < 0.99, "basic", "gold")
    plan[:2] = "gold"
    df = pd.DataFrame({"duration": rng.exponential(10, n), "event": rng.integers(0, 2, n), "segment": seg,
                       "plan": plan, "x": rng.normal(size=n)})
    st = churn.fold_small_groups(churn.SurvivalTable(df, "months", "segment", ["segment", "plan", "x"]), 5)
    groups, suppressed = churn.groups_of(st, 5)
    assert set(groups) == {"big", "mid", "Other (small groups)"} and not suppressed
    assert min(len(g) for g in groups.values()) >= 5
    assert st.folded["segment"] == ["tiny", "wee"]
    if (plan == "gold").sum() < 5:
        assert "plan" in st.dropped  # one level left after folding: not a covariate any more
    terms = set(churn.fit_cox(st).hazard_ratios["term"])
    assert not any("tiny" in t or "wee" in t for t in terms)
    assert "tiny" in churn.fold_note(st) and "3" not in churn.fold_note(st)


def test_complaints_outside_a_customers_history_are_counted(tmp_path):
    customers = write(tmp_path, "customer_id,signup_date,churn_date\na,2024-01-01,2024-06-01\nb,2024-01-01,\n"
                                "c,2024-03-01,2024-09-01\nd,2024-02-01,\ne,2024-01-15,2024-04-01\n")
    comp = tmp_path / "complaints.csv"
    comp.write_text("customer_id,opened_at,resolved,hours_to_resolve\na,2024-02-01 10:00,1,5\n"
                    "zz,2024-02-01 10:00,1,5\nc,2024-02-01 10:00,1,5\na,2024-07-01 10:00,0,\nb,2024-03-01,1,30\n")
    ledger = Ledger()
    source = sources.from_files({"customers": customers, "complaints": str(comp), "survey_responses": None})
    inputs = churn.load_inputs(source, ledger, as_of="2024-12-31", time_unit="days", group_col=None, covariates=[],
                               min_group_size=1)
    ex = ledger.exclusions_frame().set_index("rule")["rows_excluded"]
    assert ex[[r for r in ex.index if r.startswith("customer_id not among")][0]] == 1
    assert ex["opened_at before the customer's start date"] == 1
    assert ex[[r for r in ex.index if r.startswith("opened_at after")][0]] == 1
    assert sorted(inputs.complaints["customer_id"]) == ["a", "b"]
    ep = churn.complaint_episodes(inputs.table, inputs.complaints)
    assert set(ep.loc[ep["state"] != "none", "id"]) == {"a", "b"}


def test_claims_break_ties_deterministically():
    summary = pd.DataFrame({"group": ["a", "b", "c"], "customers": [50, 40, 40]})
    diffs = pd.DataFrame({"group": ["c", "b"], "reference": ["a", "a"], "difference": [-1.0, 1.0],
                          "ci_low": [-1.5, 0.5], "ci_high": [-0.5, 1.5]})
    claim = churn.groups_claim(diffs, summary, {"p_value": 0.01}, "segment", 12, "months")
    assert "(c vs a" in claim.test and claim.n == 40  # equal |difference|: first row label wins
    again = churn.groups_claim(diffs.iloc[::-1], summary, {"p_value": 0.01}, "segment", 12, "months")
    assert "(c vs a" in again.test
    service = pd.DataFrame({"segment": ["x", "w"], "responses": [9, 9], "service_score": [3.2, 3.2]})
    assert churn.worst_segment(service) == "w"
    assert churn.worst_segment(service.iloc[::-1]) == "w"


# ---------------------------------------------------------------------------------------------
# one design-matrix builder and p_value keys (issue 12)


def mixed_table(n: int = 800, seed: int = 11) -> churn.SurvivalTable:
    """Text, number and true/false covariates; ``vip`` (mostly true) triples the rate of leaving."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["monthly", "annual", "two_year"], n, p=[0.5, 0.3, 0.2])
    spend = rng.normal(50, 10, n)
    vip = rng.random(n) < 0.7
    rate = 0.05 * np.exp(np.log(3.0) * vip + np.where(plan == "annual", np.log(0.6), 0.0) + 0.01 * (spend - 50))
    t, c = rng.exponential(1 / rate), rng.uniform(5, 40, n)
    data = pd.DataFrame({"id": [f"c{i}" for i in range(n)], "duration": np.minimum(t, c),
                         "event": (t <= c).astype(int), "plan": plan, "spend": spend, "vip": vip})
    return churn.SurvivalTable(data, "months", "plan", ["plan", "spend", "vip"], "id")


def test_a_true_false_covariate_enters_as_one_0_1_term():
    st = churn.fold_small_groups(mixed_table(), 5)
    assert st.data["vip"].dtype == bool and "vip" not in st.folded and st.covariates == ["plan", "spend", "vip"]
    cox = churn.fit_cox(st)
    terms = list(cox.hazard_ratios["term"])
    assert "vip" in terms and not any(t.startswith("vip[") for t in terms)  # not "vip[False]" against "True"
    assert "vip" not in cox.references and cox.references == {"plan": "monthly"}
    vip = cox.hazard_ratios.set_index("term").loc["vip"]
    assert vip["ci_low"] < 3.0 < vip["ci_high"] and vip["ci_low"] > 1  # true vs false, though true is more common
    assert churn.term_label("vip") == "vip (per 1 more)"
    # used as the groups too: the groups go to a copy, the covariate stays 0/1
    both = churn.fold_small_groups(churn.SurvivalTable(mixed_table().data, "months", "vip", ["plan", "vip"]), 5)
    assert both.group_col == "vip (group)" and set(both.data["vip (group)"]) == {"True", "False"}
    assert list(churn.covariate_design(both).X.columns) == ["plan[annual]", "plan[two_year]", "vip"]
    # a side with fewer than min_group_size customers folds both sides: the covariate is left out
    few = mixed_table().data.assign(vip=False)
    few.loc[:2, "vip"] = True
    small = churn.fold_small_groups(churn.SurvivalTable(few, "months", None, ["plan", "vip"]), 5)
    assert "vip" in small.dropped and small.folded["vip"] == ["False", "True"]


def test_cox_design_is_the_one_builders_matrix():
    """The models' matrix is design_matrix's X for a mixed text/number/true-false table, and the Cox fit on it
    equals a tight lifelines fit on that X."""
    from lifelines import CoxPHFitter

    st = churn.fold_small_groups(mixed_table(), 5)
    d = design_matrix(st.data, "plan + spend + vip")
    ours = churn.covariate_design(st)
    pd.testing.assert_frame_equal(ours.X, d.X)
    assert ours.terms == ["plan[annual]", "plan[two_year]", "spend", "vip"] and ours.references == d.references
    assert set(d.X["vip"]) == {0.0, 1.0}
    cox = churn.fit_cox(st)
    assert cox.design_columns == d.terms and cox.references == d.references
    ref = CoxPHFitter().fit(pd.concat([st.data[["duration", "event"]], d.X], axis=1), "duration", "event",
                            fit_options=churn.COX_OPTIONS)
    hr = cox.hazard_ratios.set_index("term")["hr"]
    for term, coef in ref.params_.items():
        assert math.isclose(hr[term], math.exp(coef), rel_tol=1e-9), term
    # constant and all-missing covariates are left out before the design is built
    data = st.data.assign(same="x", empty=np.nan)
    folded = churn.fold_small_groups(churn.SurvivalTable(data, "months", None, ["plan", "same", "empty", "vip"]), 5)
    assert folded.dropped == ["same", "empty"]
    assert list(churn.fit_cox(folded).hazard_ratios["term"]) == ["plan[annual]", "plan[two_year]", "vip"]


def test_the_penalised_retry_keeps_the_design_terms(monkeypatch):
    check = churn._check_lifelines
    monkeypatch.setattr(churn, "_check_lifelines",
                        lambda f, df: check(f, df) if churn.is_penalised(f) else "refused for this test")
    cox = churn.fit_cox(churn.fold_small_groups(mixed_table(), 5))
    assert churn.is_penalised(cox.fitter)
    assert list(cox.hazard_ratios["term"]) == ["plan[annual]", "plan[two_year]", "spend", "vip"]


def test_p_values_are_named_p_value_everywhere(clean_labels):
    from cxresearch import display

    st = churn.fold_small_groups(mixed_table(), 5)
    cox = churn.fit_cox(st)
    life = churn.lifetimes(st, 24)
    frames = {"hazard ratios": cox.hazard_ratios, "PH test": cox.ph_test, "pairwise": life.pairwise,
              "RMST differences": life.differences,
              "vs worst": churn.hazard_vs_segment(st, "plan", "monthly")}
    for name, frame in frames.items():
        assert "p_value" in frame.columns and "p" not in frame.columns, name
    assert set(life.logrank) == {"chi2", "df", "p_value"}
    assert set(frames["vs worst"]["segment"]) == {"annual", "two_year"}  # levels, not "plan[annual]"
    assert "p-value" in repr(display.table(churn.hazard_table(cox.hazard_ratios)))
    assert "p-value (Holm)" in repr(display.table(churn.ph_table(cox.ph_test)))


# ---------------------------------------------------------------------------------------------
# plain words, units and figures (issue 11)




def small_table(n: int = 600, seed: int = 5) -> churn.SurvivalTable:
    rng = np.random.default_rng(seed)
    plan = rng.choice(["monthly", "annual", "two_year"], n, p=[0.5, 0.3, 0.2])
    spend = rng.normal(50, 10, n)
    rate = np.exp(np.where(plan == "annual", np.log(0.6), 0) + np.where(plan == "two_year", np.log(0.4), 0))
    t = rng.exponential(20 / rate)
    c = rng.uniform(5, 40, n)
    data = pd.DataFrame({"id": [f"c{i}" for i in range(n)], "duration": np.minimum(t, c), "event": (t <= c).astype(int),
                         "plan": plan, "spend": spend})
    return churn.SurvivalTable(data, "months", "plan", ["plan", "spend"], "id")


def test_model_terms_read_as_plain_words(clean_labels):
    from cxresearch import display

    st = small_table()
    cox = churn.fit_cox(st)
    assert cox.references == {"plan": "monthly"}  # the most common level, exposed for the notebook
    display.use_labels({"two_year": "two-year contract"}, references=cox.references)
    shown = churn.hazard_table(cox.hazard_ratios)
    assert list(shown.columns) == ["factor", "hazard ratio", "ci_low", "ci_high", "p_value"]
    assert set(shown["factor"]) == {"plan: annual vs monthly", "plan: two-year contract vs monthly",
                                    "spend (per 1 more)"}
    text = repr(display.table(shown))
    assert "95% CI" in text and "ci_low" not in text and not RAW.search(text)
    states = pd.DataFrame({"term": ["fast", "unresolved", "fast vs slow"], "hr": [0.6, 2.0, 0.5],
                           "ci_low": [0.5, 1.5, 0.4], "ci_high": [0.7, 2.5, 0.6], "p_value": [0.01, 0.001, 0.02]})
    assert list(churn.hazard_table(states)["factor"]) == [
        "complaint resolved fast vs no complaint", "complaint unresolved vs no complaint",
        "complaint resolved fast vs slowly"]
    ph = repr(display.table(churn.ph_table(cox.ph_test)))
    assert "p-value (Holm)" in ph and not RAW.search(ph)


def test_claims_carry_units_meanings_and_comparable_truth(clean_labels):
    tv = pd.DataFrame({"term": ["fast", "slow", "unresolved", "fast vs slow"], "hr": [0.64, 1.4, 2.1, 0.46],
                       "ci_low": [0.57, 1.2, 1.9, 0.4], "ci_high": [0.72, 1.6, 2.4, 0.55], "p_value": [1e-6] * 4})
    episodes = pd.DataFrame({"id": ["a", "b", "c", "d"] * 10, "state": ["fast", "slow", "unresolved", "none"] * 10})
    truth = load_truth(ensure_world(n_customers=300))  # planted 0.7, 1.4 and 2.2 within 24 hours
    claims = {c.id: c for c in churn.complaint_claims(tv, episodes, 40, 24, checks.churn_states(truth, 24))}
    fast = claims["service_recovery"]
    assert fast.unit == "rate ratio" and fast.truth == 0.7
    assert fast.meaning.startswith("Below 1×") and "0.64× the rate of those without a complaint" in fast.meaning
    assert claims["unresolved_complaints_raise_churn"].meaning.startswith("Above 1×")
    assert claims["fast_resolution_beats_slow"].truth == pytest.approx(0.5)
    # another definition of "fast" than the planted one: nothing comparable to check against
    assert checks.churn_states(truth, 48) == {} and checks.churn_states(None, 24) == {}
    assert all(c.truth is None for c in churn.complaint_claims(tv, episodes, 40, 48, checks.churn_states(truth, 48)))
    assert all(c.truth is None for c in churn.complaint_claims(tv, episodes, 40, 24, None))
    summary = pd.DataFrame({"group": ["mass", "value"], "customers": [50, 40]})
    diffs = pd.DataFrame({"group": ["value"], "reference": ["mass"], "difference": [-1.78], "ci_low": [-2.29],
                          "ci_high": [-1.27]})
    groups = churn.groups_claim(diffs, summary, {"p_value": 0.001}, "customer_segment", 24, "months")
    assert groups.unit == "months" and groups.verdict == "supported"
    assert groups.meaning.startswith("Negative: customers in the value group stay 1.8 months less")
    assert "customer segment" in groups.claim and not RAW.search(groups.claim + groups.test)
    service = pd.DataFrame({"segment": ["value", "mass"], "responses": [30, 40], "service_score": [3.0, 3.5]})
    vs = pd.DataFrame({"segment": ["mass"], "hr": [0.7], "ci_low": [0.6], "ci_high": [0.8], "p_value": [0.001],
                       "customers": [50]})
    worst = churn.worst_served_claim(service, vs, "value", "segment", 90)
    assert worst.unit == "rate ratio" and worst.truth is None  # the segment-only model is not the planted one
    assert worst.meaning.startswith("Above 1×: customers in value leave at 1.4× the rate")
    from cxresearch.results import Results

    results = Results("x", "x")
    results.add(*claims.values())
    assert {c["unit"] for c in results.claims} == {"rate ratio"}


def test_input_rules_are_shown_in_plain_words():
    exclusions = pd.DataFrame({"table": ["complaints", "complaints", "customers"],
                               "rule": ["opened_at before the customer's start date",
                                        "customer_id not among the customers analysed (unknown, or a relationship of "
                                        "zero length)", "signup_date after the observation end (2024-12-31)"],
                               "rows_excluded": [3, 0, 2]})
    notes = [{"rule": "churn_date after the observation end: counted as still a customer at 2024-12-31", "rows": 4}]
    shown = churn.rules_table(exclusions, notes)
    assert list(shown["rows"]) == [3, 2, 4]  # rules that changed nothing are left out
    assert shown["rule"].iloc[0] == "complaints opened before the customer's start date"
    assert not any(RAW.search(r) for r in shown["rule"]), list(shown["rule"])


def test_figures_name_things_plainly_with_units(clean_labels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cxresearch import display

    st = small_table()
    cox = churn.fit_cox(st)
    display.use_labels({"plan": "contract"}, references=cox.references)
    ax = churn.plot_forest(churn.with_side(cox.hazard_ratios))
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "contract: annual vs monthly" in ticks and not any(RAW.search(t) for t in ticks)
    assert ax.get_xscale() == "log" and all(t.get_text().endswith("×") for t in ax.get_xticklabels())
    assert "1×" in [t.get_text() for t in ax.get_xticklabels()] and "× the rate" in ax.get_xlabel()
    assert ax.get_legend() is not None
    plt.close("all")
    groups, _ = churn.groups_of(st)
    ax = churn.plot_km(churn.fit_km(groups), "months", group="plan")
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "contract"
    assert {t.get_text() for t in legend.get_texts()} == {"annual", "monthly", "two year"}
    assert "months" in ax.get_xlabel() and ax.yaxis.get_major_formatter()(0.5, 0) == "50%"
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# one-way architecture (issue 12): loaders take a Source and a ledger, steps return typed results


def test_loader_takes_the_observation_end_from_the_source_and_records_in_the_given_ledger(tmp_path):
    customers = write(tmp_path, "customer_id,signup_date,churn_date\na,2024-01-01,2024-06-01\nb,2024-01-01,\n"
                                "c,2024-03-01,2024-09-01\nd,2024-08-01,\n")
    source = sources.Source({"customers": Path(customers)}, defaults={"observation_end": "2024-06-30"})
    ledger = Ledger()
    inputs = churn.load_inputs(source, ledger, time_unit="days", group_col=None, covariates=[], min_group_size=1)
    assert inputs.as_of == pd.Timestamp("2024-06-30") and not inputs.synthetic
    assert inputs.table.data["event"].tolist() == [1, 0, 0]  # c leaves after the data's own end: still a customer
    assert ledger.exclusions_frame()["rows_excluded"].tolist() == [1]  # d signed up after it
    later = churn.load_inputs(source, Ledger(), as_of="2024-12-31", time_unit="days", group_col=None, covariates=[],
                              min_group_size=1)
    assert later.as_of == pd.Timestamp("2024-12-31") and later.table.n_events == 2
    with pytest.raises(InputError, match="customers_path is needed"):
        churn.load_inputs(sources.from_files({"complaints": customers}), Ledger())


def test_forest_colours_come_from_the_analysis():
    table = pd.DataFrame({"term": ["a", "b", "c"], "hr": [2.0, 0.5, 1.1], "ci_low": [1.5, 0.4, 0.9],
                          "ci_high": [2.5, 0.7, 1.3]})
    assert list(churn.with_side(table)["side"]) == ["sooner", "longer", "unclear"]
    assert "side" not in churn.hazard_table(churn.with_side(table)).columns


def test_notebook_steps_return_typed_results_and_claims():
    from cxresearch.results import Results
    from cxresearch.stats import Claim

    source = sources.synthetic_world(["customers", "complaints", "survey_responses"], seed=9, n_customers=1500)
    inputs = churn.load_inputs(source, Ledger(), group_col="segment", covariates=COVARIATES)
    assert inputs.as_of == pd.Timestamp(source.defaults["observation_end"]) and inputs.synthetic
    life = churn.lifetimes(inputs.table, 24)
    drv = churn.drivers(inputs)
    par = churn.extrapolate(inputs.table, life)
    cal = churn.calibrate(inputs.table, drv.cox, 24)
    service = churn.service_and_churn(inputs)
    assert set(par.curves.columns) == set(life.groups) and par.observed_end == inputs.table.data["duration"].max()
    assert set(drv.states["term"]) == {"fast", "slow", "unresolved", "fast vs slow"}
    claims = churn.claims(inputs.table, life, drv, service, 24, checks.churn_states(source.truth, 24))
    assert all(isinstance(c, Claim) for c in claims) and len({c.id for c in claims}) == 5
    results = Results("churn_survival", "x")
    for metric in churn.metrics(inputs.table, life, drv, par, cal):
        results.metric(**metric)
    results.add(*claims)
    assert results.headline == ["n_customers", "churn_rate", "median_lifetime"]
    assert {"km_median", "hazard_ratios", "logrank_p_value", "calibration_error"} <= set(results.metrics)
    assert {c["id"]: c["verdict"] for c in results.claims}["service_recovery"] == "supported"
    for sentence in [*churn.customer_sentences(inputs, pd.DataFrame()), churn.logrank_sentence(life),
                     churn.ph_sentence(drv), churn.service_sentence(service), churn.calibration_sentence(cal)]:
        assert "template" in sentence and not RAW.search(sentence["template"])
