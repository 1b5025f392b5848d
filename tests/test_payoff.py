"""Loyalty payoff: Hillstrom reference lifts, recovery and bias on the synthetic world, coverage, money."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cxresearch import payoff
from cxresearch.fits import FITS, FitError
from cxresearch.io import InputError
from cxresearch.results import NotEstimable
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
    s = payoff.money_summary(m, 5.0, 4.0, 6.0, draws=np.array([4.0, 5.0, 6.0, 1.0]))
    assert s["prob_roi_positive"] == 0.75
    assert math.isclose(s["roi_ci_low"], float(m.roi(4.0))) and math.isclose(s["roi_ci_high"], float(m.roi(6.0)))
    assert s["payback_ci_low"] <= s["payback"] <= s["payback_ci_high"]
    normal = payoff.money_summary(m, 5.0, 4.0, 6.0, se=0.5)
    assert math.isclose(normal["prob_roi_positive"], float(stats.norm.sf((m.break_even_effect - 5.0) / 0.5)))
    assert payoff.verdict_sentence({"roi_ci_low": 0.1, "roi_ci_high": 0.5})[1] == "supported"
    assert payoff.verdict_sentence({"roi_ci_low": -0.5, "roi_ci_high": -0.1})[0] == "The programme does not pay off."
    sentence, verdict = payoff.verdict_sentence({"roi_ci_low": -0.5, "roi_ci_high": 0.3}, 1200)
    assert verdict == "inconclusive" and "1,200 more customers" in sentence
    assert payoff.verdict_sentence({"roi_ci_low": float("nan"), "roi_ci_high": 0.3})[1] == "not testable"


def test_roi_interval_always_contains_its_estimate():
    """The old percentile bootstrap of ROI could exclude the ROI estimate (one treated customer); the interval
    is now the effect's own interval mapped through the money model, which always contains the estimate."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        est = rng.normal(0, 5)
        se = rng.gamma(1.0, 2.0)
        eff = payoff.Effect(est, est - 1.96 * se, est + 1.96 * se, se, int(rng.integers(5, 500)),
                            int(rng.integers(5, 500)), "test")
        pay = payoff.money_verdict(eff, margin=float(rng.uniform(0.05, 1)), cost_per_member=float(rng.uniform(0, 3)),
                                   horizon=float(rng.integers(1, 24)), setup_cost=float(rng.uniform(1, 1000)))
        m = pay.summary
        assert m["roi_ci_low"] <= m["roi"] <= m["roi_ci_high"]
        assert m["payback_ci_low"] <= m["payback"] <= m["payback_ci_high"]
        assert (pay.verdict == "supported") == (m["roi_ci_low"] > 0)


def test_a_treated_arm_of_one_customer_is_not_tested(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    arm = np.array(["control"] * n + ["big"] * n + ["solo"])
    df = pd.DataFrame({"id": [f"c{i}" for i in range(len(arm))], "arm": arm,
                       "spend": np.r_[rng.gamma(2, 10, 2 * n), 500.0], "pre": rng.gamma(2, 10, 2 * n + 1)})
    df.to_csv(tmp_path / "pilot.csv", index=False)
    setup = payoff.prepare("randomized", str(tmp_path / "pilot.csv"), unit_col="id", arm_col="arm", control_arm="control",
                           outcome_cols=["spend"], covariate_cols=["pre"], margin=0.3, cost_per_member=1.0, horizon=4)
    assert setup.treated_arms == ["big"] and setup.small_arms == ["solo"]
    assert "solo = <5" in setup.sizes_text
    fx = payoff.analyse_randomized(setup)
    assert set(fx.table["arm"]) == {"big"}
    # the only treated arm has one customer: refused, never "pays off"
    df[df["arm"] != "big"].to_csv(tmp_path / "solo.csv", index=False)
    with pytest.raises(NotEstimable, match="fewer than 5 customers"):
        payoff.prepare("randomized", str(tmp_path / "solo.csv"), unit_col="id", arm_col="arm", control_arm="control",
                       outcome_cols=["spend"], covariate_cols=["pre"], margin=0.3, cost_per_member=1.0, horizon=4)
    # a money verdict resting on a small group is not testable
    one = payoff.Effect(500.0, math.nan, math.nan, math.nan, 1, 200, "test")
    assert payoff.money_verdict(one, 0.3, 1.0, 4).verdict == "not testable"


def test_control_arm_is_compared_as_text_and_as_number():
    assert payoff.match_control(pd.Series(["No E-Mail", "Mens E-Mail"]), "No E-Mail", "segment", "x") == "No E-Mail"
    assert payoff.match_control(pd.Series(["0", "1", "1"]), "0", "member", "x") == "0"
    assert payoff.match_control(pd.Series(["0.0", "1.0"]), "0", "member", "x") == "0.0"
    assert payoff.match_control(pd.Series(["0", "1"]), 0, "member", "x") == "0"
    with pytest.raises(InputError, match=r"column 'segment': the control arm 'Control' .*'Mens E-Mail', 'No E-Mail'"):
        payoff.match_control(pd.Series(["No E-Mail", "Mens E-Mail"]), "Control", "segment", "x")


def test_one_arm_only_is_refused(tmp_path):
    pd.DataFrame({"id": ["a", "b", "c"], "arm": ["control"] * 3, "spend": [1.0, 2.0, 3.0]}).to_csv(
        tmp_path / "one.csv", index=False)
    with pytest.raises(NotEstimable, match="only the control arm 'control'"):
        payoff.prepare("randomized", str(tmp_path / "one.csv"), unit_col="id", arm_col="arm", control_arm="control",
                       outcome_cols=["spend"], covariate_cols=[], margin=0.3, cost_per_member=1.0, horizon=4)


@pytest.mark.parametrize("given, message", [
    ({"margin": 0.0}, "margin must be a share above 0"),
    ({"margin": 30}, "margin must be a share above 0"),
    ({"cost_per_member": -1.0}, "cost_per_member must be a number of at least 0"),
    ({"horizon": 0}, "horizon must be a number of periods above 0"),
    ({"cost_per_member": 0.0, "setup_cost": 0.0}, "a return on investment needs a cost"),
])
def test_money_parameters_are_checked(given, message):
    params = {"margin": 0.3, "cost_per_member": 1.0, "horizon": 4, "setup_cost": 0.0, **given}
    with pytest.raises(ValueError, match=message) as err:
        payoff.resolve_defaults("randomized", False, None, **params)
    assert type(err.value).__name__ == "ParameterError"


def test_propensity_logit_retries_when_a_covariate_sits_on_a_huge_offset():
    """IRLS on a covariate like 1e9 + x stops at a wrong maximum without a warning; the score check catches it
    and the standardised retry gives the right probabilities."""
    rng = np.random.default_rng(1)
    n = 400
    z, b = rng.normal(size=n), rng.normal(size=n)
    d = rng.random(n) < 1 / (1 + np.exp(-(0.3 + z - 0.5 * b)))
    FITS.reset()
    ref = payoff.fit_logit(pd.DataFrame({"z": z, "b": b}), d)
    shifted = payoff.fit_logit(pd.DataFrame({"z": 1e9 + z, "b": b}), d)
    assert FITS.fits[0]["failed_attempts"] == []
    assert FITS.fits[1]["converged"] and FITS.fits[1]["method"].startswith("IRLS, standardised")
    assert "not at its maximum" in FITS.fits[1]["failed_attempts"][0]
    assert np.allclose(shifted.probability, ref.probability, atol=1e-6)
    # refits agree far beyond the 4 digits the notebooks are compared at
    again = payoff.fit_logit(pd.DataFrame({"z": z, "b": b}), d)
    assert np.allclose(again.probability, ref.probability, rtol=1e-10, atol=0)


def test_propensity_logit_under_separation_fails_in_plain_words():
    rng = np.random.default_rng(2)
    n = 300
    z = rng.normal(size=n)
    seg = np.where(rng.random(n) < 0.15, "vip", "std")
    d = (rng.random(n) < 1 / (1 + np.exp(-z))) | (seg == "vip")  # every vip joins
    x = payoff.covariate_matrix(pd.DataFrame({"z": z, "seg": seg}), ["z", "seg"])
    FITS.reset()
    with pytest.raises(FitError, match=r"did not converge .*separation.*seg=vip alone decides membership"):
        payoff.fit_logit(x, d)
    assert FITS.fits[-1]["converged"] is False and len(FITS.fits[-1]["failed_attempts"]) == 3


def test_separation_makes_weighting_not_estimable_but_keeps_difference_in_differences():
    rng = np.random.default_rng(5)
    n, months = 300, [f"2024-{m:02d}" for m in range(1, 11)]
    seg = np.where(rng.random(n) < 0.15, "vip", "std")
    member = (rng.random(n) < 0.4) | (seg == "vip")
    units = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "member": np.where(member, "1", "0"),
                          "pre": rng.gamma(2, 10, n), "seg": seg})
    panel = pd.DataFrame([{"id": f"u{i}", "month": m,
                           "spend": 10 + rng.normal() + (3.0 if member[i] and m >= "2024-07" else 0.0)}
                          for i in range(n) for m in months])
    FITS.reset()
    a = payoff.analyse_observational(units, panel, unit_col="id", arm_col="member", control_arm="0", outcome="spend",
                                     covariates=["pre", "seg"], n_boot=50)
    est = a.estimates.set_index("key")
    assert np.isnan(est.at["aipw", "estimate"]) and "not estimable" in est.at["aipw", "note"]
    assert a.primary == "did" and est.at["did", "ci_low"] <= 3.0 <= est.at["did", "ci_high"]
    assert FITS.all_converged() is False
    # without a panel AIPW is the primary estimate: the run stops in plain words
    with pytest.raises(FitError, match="propensity logit did not converge"):
        payoff.analyse_observational(units.assign(spend=rng.normal(size=n)), None, unit_col="id", arm_col="member",
                                     control_arm="0", outcome="spend", covariates=["pre", "seg"], n_boot=20)


def test_reference_level_of_a_text_covariate_is_tie_safe():
    df = pd.DataFrame({"seg": ["b", "a", "b", "a", "c"]})  # a and b tie as most common: a is the reference
    assert list(payoff.covariate_matrix(df, ["seg"]).columns) == ["seg=b", "seg=c"]
    assert list(payoff.covariate_matrix(df.iloc[::-1], ["seg"]).columns) == ["seg=b", "seg=c"]


def test_outcome_without_spread_is_not_testable():
    df = pd.DataFrame({"arm": ["t"] * 20 + ["c"] * 20, "y": [1.0] * 40, "pre": np.arange(40.0)})
    t = payoff.randomized_effects(df, "arm", "c", ["y"], ["pre"]).iloc[0]
    assert np.isnan(t["ci_low"]) and np.isnan(t["adjusted"]) and "not testable" in t["note"]


def test_percentile_interval_is_withheld_when_it_excludes_the_estimate():
    draws = np.linspace(1, 2, 200)
    assert payoff.percentile_interval(draws, 1.5)[2] == ""
    lo, hi, why = payoff.percentile_interval(draws, 0.5)
    assert np.isnan(lo) and np.isnan(hi) and "does not contain the estimate" in why


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


# ---------------------------------------------------------------------------------------------
# what a reader sees: plain labels, units, planted truth on the same scale, readable figures


@pytest.fixture
def registered_labels():
    from cxresearch.display import LABELS, use_labels

    saved, refs = dict(LABELS), dict(LABELS.references)
    LABELS.reset()
    use_labels(payoff.COLUMN_LABELS)
    yield LABELS
    LABELS.reset()
    LABELS.update(saved)
    LABELS.references.update(refs)


def test_covariate_terms_read_in_words(registered_labels):
    assert payoff.term_label("log1p(pre_spend_12m)") == "spend in the 12 months before (log scale)"
    assert payoff.term_label("segment=premium", {"segment": "mass"}) == "segment: premium vs mass"
    assert payoff.term_label("tenure_months") == "months as a customer"
    assert payoff.term_label("odd_name") == "odd name"
    df = pd.DataFrame({"seg": ["b", "a", "b", "a", "c"]})
    assert payoff.reference_levels(df, ["seg"]) == {"seg": "a"}  # same tie rule as covariate_matrix


def test_balance_and_selection_claim_use_labels_and_units(registered_labels):
    rng = np.random.default_rng(6)
    n = 600
    pre = rng.gamma(2, 50, n)
    member = rng.random(n) < 1 / (1 + np.exp(-(pre - 100) / 50))
    units = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "member": np.where(member, "1", "0"),
                          "pre_spend_12m": pre, "region": rng.choice(["North", "South", "East"], n),
                          "spend": 0.1 * pre + 2 * member + rng.normal(size=n)})
    a = payoff.analyse_observational(units, None, unit_col="id", arm_col="member", control_arm="0", outcome="spend",
                                     covariates=["pre_spend_12m", "region"], n_boot=40)
    shown = list(a.result.balance["label"])
    assert "spend in the 12 months before" in shown and "spend in the 12 months before (log scale)" in shown
    assert any(s.startswith("region: ") and " vs " in s for s in shown)
    claim = payoff.self_selection_claim(a)
    assert claim["unit"] == "money" and claim["meaning"].startswith("Positive")
    assert "spend in the 12 months before" in claim["test"] and "pre_spend_12m" not in claim["test"]
    assert not payoff.is_money("tenure_months") and payoff.is_money("pre_spend")
    for text in a.estimates["method"]:
        assert "_" not in text and "ATT" not in text


def test_display_frames_have_plain_headers(registered_labels):
    from tests.plain_words import RAW

    table = pd.DataFrame({"arm": ["loyalty"], "outcome": ["converted"], "estimate": [0.05], "ci_low": [0.01],
                          "ci_high": [0.09], "p_value": [0.01], "se": [0.02], "n_treated": [1200], "n_control": [1100],
                          "note": [""], "adjusted": [0.04], "adjusted_ci_low": [0.01], "adjusted_ci_high": [0.07],
                          "adjusted_p": [0.02], "adjusted_se": [0.015], "variance_reduction": [0.3], "p_holm": [0.02],
                          "adjusted_p_holm": [0.03]})
    out = payoff.effects_display(table, adjusted=True)
    assert not [c for c in out.columns if RAW.search(c) and c not in ("ci_low", "ci_high")]
    assert out.at[0, "group"] == "loyalty programme" and out.at[0, "outcome"] == "bought anything"
    assert out.at[0, "customers (group / control)"] == "1,200 / 1,100" and "note" not in out
    est = pd.DataFrame({"method": ["naive"], "key": ["naive"], "estimate": [1.0], "ci_low": [0.5], "ci_high": [1.5],
                        "note": [""]})
    assert list(payoff.estimates_display(est, "RUB", "month").columns) == [
        "method", "effect per member and month (RUB)", "ci_low", "ci_high"]
    assert payoff.period_word("observational", "month", True) == "month"
    assert payoff.period_word("randomized", "month", False) == "pilot period"
    assert payoff.arm_label("loyalty") == "loyalty programme" and payoff.arm_label("a_solo") == "a_solo"


def test_planted_roi_goes_through_the_same_money_model():
    eff = payoff.Effect(3.0, 1.0, 5.0, 1.0, 250, 570, "test")
    pay = payoff.money_verdict(eff, margin=0.4, cost_per_member=0.5, horizon=12)
    assert math.isclose(payoff.planted_roi(pay, 3.4), (0.4 * 3.4 - 0.5) / 0.5)
    assert payoff.planted_roi(pay, None) is None
    assert "12 months" in payoff.money_verdict(eff, 0.4, 0.5, 12, period="month").test


def test_event_study_has_a_date_axis_when_periods_are_months():
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    es = pd.DataFrame({"period": [f"2024-{m:02d}" for m in range(1, 11)], "gap": np.linspace(0, 2, 10)})
    es["ci_low"], es["ci_high"] = es["gap"] - 1, es["gap"] + 1
    ax = payoff.plot_event_study(es, "2024-04", "2024-07")
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    assert ax.get_xlabel() == "January 2024 to October 2024"
    plt.close(ax.figure)
    ax = payoff.plot_event_study(es.assign(period=[f"w{i}" for i in range(10)]), "w3", "w6")
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["w0", "w1"]
    plt.close(ax.figure)


def test_figures_get_alt_texts_in_words(registered_labels):
    from tests.plain_words import RAW

    es = pd.DataFrame({"period": [f"2024-{m:02d}" for m in range(1, 11)], "gap": np.r_[np.zeros(3), np.full(7, 2.0)]})
    es["ci_low"], es["ci_high"] = es["gap"] - 1, es["gap"] + 1
    alt = payoff.event_study_alt(es, "2024-04", "2024-07", "RUB")
    assert "3 of 3 intervals include zero" in alt and "2 RUB" in alt
    balance = pd.DataFrame({"covariate": ["pre_spend_12m", "region=East"],
                            "label": ["spend in the 12 months before", "region: East vs North"],
                            "smd_before": [0.6, -0.1], "smd_after": [0.05, 0.02]})
    alt = payoff.balance_alt(balance)
    assert "spend in the 12 months before (0.60)" in alt and "within ±0.1" in alt
    eff = payoff.Effect(3.0, 1.0, 5.0, 1.0, 250, 570, "test")
    alt = payoff.roi_alt(payoff.money_verdict(eff, margin=0.4, cost_per_member=0.5, horizon=12))
    assert alt.startswith("Curve") and "chance that it is above 0%" in alt
    table = pd.DataFrame({"arm": ["loyalty"], "outcome": ["converted"], "adjusted": [0.05],
                          "adjusted_ci_low": [0.01], "adjusted_ci_high": [0.09]})
    alt = payoff.randomized_alt(table, True, "spend", "RUB", ["converted"])
    assert "loyalty programme on bought anything: +5.0 pp" in alt and not RAW.search(alt)
