"""Loyalty payoff: Hillstrom reference lifts, recovery and bias on the synthetic world, coverage, money."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxresearch import payoff
from cxresearch.runner import RunSpec, run_notebook

HILLSTROM = Path(__file__).resolve().parents[2] / "shared" / "data" / "hillstrom.csv"
needs_hillstrom = pytest.mark.skipif(not HILLSTROM.exists(), reason="../shared/data/hillstrom.csv not present")
OBS_COVARIATES = ["pre_spend_12m", "pre_visits_12m", "tenure_months", "segment", "region"]


@needs_hillstrom
def test_hillstrom_reference_lifts():
    inp = payoff.load_inputs("randomized", str(HILLSTROM), unit_col=None, arm_col="segment",
                             outcome_cols=["visit", "conversion", "spend"], covariate_cols=["recency", "history"])
    assert inp.units["segment"].value_counts().to_dict() == {"Womens E-Mail": 21387, "Mens E-Mail": 21307,
                                                            "No E-Mail": 21306}
    t = payoff.randomized_effects(inp.units, "segment", "No E-Mail", ["visit", "conversion", "spend"],
                                  ["recency", "history"]).set_index(["arm", "outcome"])
    ref = {("Mens E-Mail", "visit"): 0.0766, ("Mens E-Mail", "conversion"): 0.0068, ("Mens E-Mail", "spend"): 0.770,
           ("Womens E-Mail", "visit"): 0.0452, ("Womens E-Mail", "conversion"): 0.0031,
           ("Womens E-Mail", "spend"): 0.424}
    for key, value in ref.items():
        decimals = len(str(value).split(".")[1])
        assert round(t.at[key, "estimate"], decimals) == value, key
    mens = t.loc[("Mens E-Mail", "spend")]
    assert round(mens["ci_low"], 3) == 0.485 and round(mens["ci_high"], 3) == 1.055
    assert 0 <= mens["variance_reduction"] < 0.005  # CUPED barely helps here (about 0.05%)


@needs_hillstrom
def test_notebook_on_hillstrom(tmp_path):
    res = run_notebook(RunSpec("loyalty_payoff", parameters={
        "design": "randomized", "data_path": str(HILLSTROM), "unit_col": None, "arm_col": "segment",
        "control_arm": "No E-Mail", "outcome_cols": ["spend", "visit", "conversion"],
        "covariate_cols": ["recency", "history"], "margin": 0.3, "cost_per_member": 0.1}), tmp_path)
    assert res["status"] == "ok", res.get("error")
    assert round(res["metrics"]["effects"]["Mens E-Mail"]["spend"]["estimate"], 3) == 0.770


def test_synthetic_naive_gap_is_biased_and_did_covers_the_truth():
    inp = payoff.load_inputs("observational", None, unit_col="customer_id", arm_col="member", outcome_cols=["spend"],
                             covariate_cols=OBS_COVARIATES)
    truth = inp.truth["loyalty_enrolment"]["true_att_spend_per_month"]
    a = payoff.analyse_observational(inp.units, inp.panel, unit_col="customer_id", arm_col="member", control_arm="0",
                                     outcome="spend", covariates=OBS_COVARIATES, n_boot=200)
    est = a.result.estimates.set_index("key")
    assert est.at["naive", "ci_low"] > truth  # members look better than they are
    assert a.did["ci_low"] <= truth <= a.did["ci_high"]
    assert est.at["aipw", "ci_low"] <= truth <= est.at["aipw", "ci_high"]
    assert abs(est.at["aipw", "estimate"] - truth) < abs(est.at["naive", "estimate"] - truth)
    assert a.placebo["ci_low"] <= 0 <= a.placebo["ci_high"]
    assert (a.result.balance["smd_after"].abs() < 0.1).all()


def test_aipw_recovers_the_att_under_selection_on_observables():
    rng = np.random.default_rng(4)
    n = 4000
    x = rng.normal(size=n)
    d = rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 1.2 * x)))
    effect = 2.0 + 1.0 * x  # heterogeneous: ATT differs from ATE
    y = 5 + 3 * x + d * effect + rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "member": np.where(d, "1", "0")})
    res = payoff.observational(df, "y", "member", "0", ["x"], n_boot=300).estimates.set_index("key")
    att = float(effect[d].mean())
    assert res.at["aipw", "ci_low"] <= att <= res.at["aipw", "ci_high"]
    assert res.at["ipw", "ci_low"] <= att <= res.at["ipw", "ci_high"]
    assert res.at["naive", "ci_low"] > att


def test_randomized_intervals_cover_95_percent():
    rng = np.random.default_rng(11)
    hits_raw = hits_adj = 0
    reps = 400
    for _ in range(reps):
        n = 300
        pre = rng.gamma(2.0, 20.0, n)
        arm = np.where(rng.random(n) < 0.5, "t", "c")
        y = 0.6 * pre + rng.gamma(2.0, 10.0, n) + np.where(arm == "t", 3.0, 0.0)
        t = payoff.randomized_effects(pd.DataFrame({"arm": arm, "y": y, "pre": pre}), "arm", "c", ["y"], ["pre"]).iloc[0]
        hits_raw += t["ci_low"] <= 3.0 <= t["ci_high"]
        hits_adj += t["adjusted_ci_low"] <= 3.0 <= t["adjusted_ci_high"]
    assert 0.925 <= hits_raw / reps <= 0.975
    assert 0.925 <= hits_adj / reps <= 0.975


def test_money_model():
    m = payoff.Money(margin=0.4, cost_per_member=1.0, horizon=12, members=100, setup_cost=600.0)
    assert math.isclose(m.break_even_effect, (1.0 + 600 / 1200) / 0.4)
    assert math.isclose(float(m.roi(5.0)), (12 * 100 * 2.0 - 1200 - 600) / 1800)
    assert math.isclose(float(m.payback_periods(5.0)), 600 / (100 * (2.0 - 1.0)))
    assert math.isinf(float(m.payback_periods(1.0)))
    s = payoff.money_summary(m, 5.0, np.array([4.0, 5.0, 6.0, 1.0]))
    assert s["prob_roi_positive"] == 0.75
    assert payoff.verdict_sentence({"roi_ci_low": 0.1, "roi_ci_high": 0.5})[1] == "supported"
    assert payoff.verdict_sentence({"roi_ci_low": -0.5, "roi_ci_high": -0.1})[0] == "The programme does not pay off."
    sentence, verdict = payoff.verdict_sentence({"roi_ci_low": -0.5, "roi_ci_high": 0.3}, 1200)
    assert verdict == "inconclusive" and "1,200 more customers" in sentence


def test_minimum_detectable_effect_matches_the_normal_formula():
    mde = payoff.minimum_detectable_effect(sd=10.0, n_treated=500, n_control=500)
    assert math.isclose(mde, (1.959964 + 0.841621) * 10 * math.sqrt(2 / 500), rel_tol=1e-4)


def test_own_data_needs_money_parameters_and_covariates(tmp_path):
    with pytest.raises(ValueError, match="Give margin and cost_per_member"):
        payoff.resolve_defaults("randomized", False, None, margin=None, cost_per_member=None)
    path = tmp_path / "pilot.csv"
    path.write_text("id,arm,spend\na,control,1\nb,treat,2\n")
    with pytest.raises(Exception, match="covariate column 'pre' is missing"):
        payoff.load_inputs("randomized", str(path), unit_col="id", arm_col="arm", outcome_cols=["spend"],
                           covariate_cols=["pre"])


def test_notebook_verdict_flips_when_the_uplift_is_removed(tmp_path):
    verdicts = {}
    for name, fx in (("planted", {}), ("none", {"loyalty_uplift": 0.0})):
        res = run_notebook(RunSpec("loyalty_payoff", parameters={"n_customers": 20000, "effects": fx, "n_boot": 100}),
                           tmp_path / name)
        assert res["status"] == "ok", res.get("error")
        verdicts[name] = {c["id"]: c["verdict"] for c in res["claims"]}["loyalty_investment_pays_off"]
    assert verdicts == {"planted": "supported", "none": "not supported"}


def test_notebook_randomized_design_runs(tmp_path):
    res = run_notebook(RunSpec("loyalty_payoff", parameters={"design": "randomized"}), tmp_path)
    assert res["status"] == "ok", res.get("error")
    m = res["metrics"]
    assert set(m["effects"]["loyalty"]) == {"spend", "visits", "converted", "retained"}
    assert 0 < m["cuped_variance_reduction"]["loyalty"]["spend"] < 1 and m["mde_next_pilot"] > 0
