"""Loyalty payoff: Hillstrom reference lifts, recovery and bias on the synthetic world, coverage, money."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from cxresearch import checks, payoff, sources
from cxresearch.design import design_matrix
from cxresearch.errors import NotEstimable, ParameterError
from cxresearch.fits import FITS, FitError
from cxresearch.io import InputError, Ledger
from cxresearch.runner import RunSpec, run_notebook
from cxresearch.stats import Claim

HILLSTROM = Path(__file__).resolve().parents[2] / "shared" / "data" / "hillstrom.csv"
needs_hillstrom = pytest.mark.skipif(not HILLSTROM.exists(), reason="../shared/data/hillstrom.csv not present")
OBS_COVARIATES = ["pre_spend_12m", "pre_visits_12m", "tenure_months", "segment", "region"]
WINDOW = {"pre_end": "2024-04", "post_start": "2024-07"}


def files(design: str, data_path, panel_path=None) -> sources.Source:
    """A user's files as the notebook resolves them."""
    return sources.from_files(payoff.tables(design, str(data_path), panel_path and str(panel_path)))


@needs_hillstrom
def test_hillstrom_reference_lifts():
    inp = payoff.load_inputs("randomized", files("randomized", HILLSTROM), Ledger(), unit_col=None, arm_col="segment",
                             outcome_cols=["visit", "conversion", "spend"], covariate_cols=["recency", "history"])
    assert not inp.synthetic
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
    source = sources.resolve(payoff.tables("observational"))
    inp = payoff.load_inputs("observational", source, Ledger(), unit_col="customer_id", arm_col="member",
                             outcome_cols=["spend"], covariate_cols=OBS_COVARIATES)
    truth = source.truth.loyalty_enrolment.true_att_spend_per_month
    a = payoff.analyse_observational(inp.units, inp.panel, unit_col="customer_id", arm_col="member", control_arm="0",
                                     outcome="spend", covariates=OBS_COVARIATES, n_boot=200, **WINDOW)
    est = a.result.estimates.set_index("key")
    assert est.at["naive", "ci_low"] > truth  # members look better than they are
    assert a.did["ci_low"] <= truth <= a.did["ci_high"]
    assert est.at["aipw", "ci_low"] <= truth <= est.at["aipw", "ci_high"]
    assert abs(est.at["aipw", "estimate"] - truth) < abs(est.at["naive", "estimate"] - truth)
    assert a.placebo["ci_low"] <= 0 <= a.placebo["ci_high"]
    assert a.design.terms[:3] == OBS_COVARIATES[:3]  # entered as given: no log terms added
    # joining depends on log spend: written in the formula, the weights balance every characteristic
    logs = "np.log1p(pre_spend_12m) + np.log1p(pre_visits_12m) + tenure_months + segment + region"
    b = payoff.analyse_observational(inp.units, inp.panel, unit_col="customer_id", arm_col="member", control_arm="0",
                                     outcome="spend", covariates=OBS_COVARIATES, formula=logs, n_boot=50, **WINDOW)
    assert (b.result.balance["smd_after"].abs() < 0.1).all()
    assert b.design.formula == logs and b.references == {"segment": "mass", "region": "North"}


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
    setup = payoff.prepare("randomized", files("randomized", tmp_path / "pilot.csv"), Ledger(), unit_col="id", arm_col="arm", control_arm="control",
                           outcome_cols=["spend"], covariate_cols=["pre"], margin=0.3, cost_per_member=1.0, horizon=4)
    assert setup.treated_arms == ["big"] and setup.small_arms == ["solo"]
    assert "solo = <5" in setup.sizes_text
    fx = payoff.analyse_randomized(setup)
    assert set(fx.table["arm"]) == {"big"}
    # the only treated arm has one customer: refused, never "pays off"
    df[df["arm"] != "big"].to_csv(tmp_path / "solo.csv", index=False)
    with pytest.raises(NotEstimable, match="fewer than 5 customers"):
        payoff.prepare("randomized", files("randomized", tmp_path / "solo.csv"), Ledger(), unit_col="id", arm_col="arm", control_arm="control",
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
        payoff.prepare("randomized", files("randomized", tmp_path / "one.csv"), Ledger(), unit_col="id", arm_col="arm", control_arm="control",
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
        payoff.resolve_defaults("randomized", None, **params)
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
    x = design_matrix(pd.DataFrame({"z": z, "seg": seg}), "z + seg").X
    FITS.reset()
    with pytest.raises(FitError, match=r"did not converge .*separation.*seg = vip alone decides membership") as err:
        payoff.fit_logit(x, d)
    assert FITS.fits[-1]["converged"] is False and len(FITS.fits[-1]["failed_attempts"]) == 3
    # payoff's words around the package's one logit (cxresearch.fits.fit_logit)
    assert "predicted to join (or not) with certainty: the covariates separate members from non-members" in str(err.value)
    assert str(err.value).startswith("The propensity logit did not converge")


def test_propensity_is_the_packages_one_checked_logit():
    from cxresearch import fits

    rng = np.random.default_rng(7)
    x = design_matrix(pd.DataFrame({"pre": rng.gamma(2, 10, 300), "seg": rng.choice(["a", "b", "c"], 300)}),
                      "np.log1p(pre) + seg").X
    d = rng.random(300) < 0.4
    FITS.reset()
    shared = fits.fit_logit(x, d, "propensity logit")
    assert np.array_equal(payoff.propensity(x, d), shared.probability)
    assert np.array_equal(payoff.fit_logit(x, d).params, shared.params)
    assert [f["model"] for f in FITS.fits] == ["propensity logit"] * 3
    payoff.propensity(x, d, record=False)  # bootstrap replicates: not recorded
    assert len(FITS.fits) == 3


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
                                     covariates=["pre", "seg"], n_boot=50, **WINDOW)
    est = a.estimates.set_index("key")
    assert np.isnan(est.at["aipw", "estimate"]) and "not estimable" in est.at["aipw", "note"]
    assert a.primary == "did" and est.at["did", "ci_low"] <= 3.0 <= est.at["did", "ci_high"]
    assert FITS.all_converged() is False
    # without a panel AIPW is the primary estimate: the run stops in plain words
    with pytest.raises(FitError, match="propensity logit did not converge"):
        payoff.analyse_observational(units.assign(spend=rng.normal(size=n)), None, unit_col="id", arm_col="member",
                                     control_arm="0", outcome="spend", covariates=["pre", "seg"], n_boot=20)


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
        payoff.resolve_defaults("randomized", None, margin=None, cost_per_member=None)
    path = tmp_path / "pilot.csv"
    path.write_text("id,arm,spend\na,control,1\nb,treat,2\n")
    with pytest.raises(InputError, match="covariate column 'pre' is missing"):
        payoff.load_inputs("randomized", files("randomized", path), Ledger(), unit_col="id", arm_col="arm",
                           outcome_cols=["spend"], covariate_cols=["pre"])
    with pytest.raises(InputError, match="covariate column 'age' is missing.*covariate_formula"):
        payoff.load_inputs("randomized", files("randomized", path), Ledger(), unit_col="id", arm_col="arm",
                           outcome_cols=["spend"], covariate_cols=[], formula="age + I(age**2)")


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

    saved, refs, user = dict(LABELS), dict(LABELS.references), dict(LABELS.user)
    LABELS.reset()
    use_labels(payoff.COLUMN_LABELS)
    yield LABELS
    LABELS.reset()
    LABELS.update(saved)
    LABELS.references.update(refs)
    LABELS.user.update(user)


def test_covariate_terms_read_in_words(registered_labels):
    from cxresearch.display import plain, use_labels
    from cxresearch.fits import term_text

    d = design_matrix(pd.DataFrame({"segment": ["mass", "premium", "mass"], "tenure_months": [1.0, 2, 3]}),
                      "segment + tenure_months")
    use_labels(references=d.references)
    assert [plain(t) for t in d.terms] == ["segment: premium vs mass", "months as a customer"]
    # the same term in a fit's error message (cxresearch.fits.term_text, used by payoff's propensity logit)
    assert term_text("segment[premium]") == "segment = premium" and term_text("age") == "age"


def test_balance_and_selection_claim_use_labels_and_units(registered_labels):
    from cxresearch.display import plain, use_labels

    rng = np.random.default_rng(6)
    n = 600
    pre = rng.gamma(2, 50, n)
    member = rng.random(n) < 1 / (1 + np.exp(-(pre - 100) / 50))
    units = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "member": np.where(member, "1", "0"),
                          "pre_spend_12m": pre, "region": rng.choice(["North", "South", "East"], n),
                          "spend": 0.1 * pre + 2 * member + rng.normal(size=n)})
    a = payoff.analyse_observational(units, None, unit_col="id", arm_col="member", control_arm="0", outcome="spend",
                                     covariates=["pre_spend_12m", "region"], n_boot=40)
    use_labels(references=a.references)
    shown = [plain(t) for t in a.result.balance["covariate"]]
    assert shown[0] == "spend in the 12 months before" and not any("log" in s for s in shown)
    assert any(s.startswith("region: ") and " vs " in s for s in shown)
    claim = payoff.self_selection_claim(a)
    assert isinstance(claim, Claim) and claim.verdict == "supported" and claim.meaning.startswith("Positive")
    assert claim.unit == ""  # a covariate is a number: only the (first) outcome is known to be money
    assert "spend in the 12 months before" in claim.test and "pre_spend_12m" not in claim.test
    assert not hasattr(payoff, "is_money")
    for text in a.estimates["method"]:
        assert "_" not in text and "ATT" not in text


def test_display_frames_have_plain_headers(registered_labels):
    from tests.plain_words import RAW

    table = pd.DataFrame({"arm": ["loyalty"], "outcome": ["converted"], "estimate": [0.05], "ci_low": [0.01],
                          "ci_high": [0.09], "p_value": [0.01], "se": [0.02], "n_treated": [1200], "n_control": [1100],
                          "note": [""], "adjusted": [0.04], "adjusted_ci_low": [0.01], "adjusted_ci_high": [0.07],
                          "adjusted_p_value": [0.02], "adjusted_se": [0.015], "variance_reduction": [0.3], "p_value_holm": [0.02],
                          "adjusted_p_value_holm": [0.03]})
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


# ---------------------------------------------------------------------------------------------
# the observational design takes an explicit formula; IPW/AIPW equal a plain Logit + OLS computation

LALONDE_FORMULA = ("age + I(age**2) + educ + black + hispan + married + nodegree + re74 + re75 + I(re74 == 0) "
                   "+ I(re75 == 0)")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def lalonde_like(n: int = 700, seed: int = 12) -> pd.DataFrame:
    """The NSW/Lalonde job-training layout: 0/1 dummies, earnings with many zeros, selection on observables."""
    rng = np.random.default_rng(seed)
    age = rng.integers(17, 55, n).astype(float)
    educ = rng.integers(3, 17, n).astype(float)
    black, hispan = (rng.random(n) < 0.4).astype(int), (rng.random(n) < 0.1).astype(int)
    married, nodegree = (rng.random(n) < 0.3).astype(int), (educ < 12).astype(int)
    re74 = np.where(rng.random(n) < 0.4, 0.0, rng.gamma(2.0, 5000.0, n))
    re75 = np.where(rng.random(n) < 0.4, 0.0, 0.5 * re74 + rng.gamma(2.0, 2500.0, n))
    lin = -1.0 + 0.8 * black - 0.03 * (age - 30) - 0.00008 * re74 + 0.7 * (re75 == 0) + 0.3 * nodegree
    treat = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    re78 = np.maximum(0.0, 2000 + 0.4 * re75 + 300 * educ + 1500 * treat + rng.normal(0, 4000, n))
    return pd.DataFrame({"treat": treat, "age": age, "educ": educ, "black": black, "hispan": hispan,
                         "married": married, "nodegree": nodegree, "re74": re74, "re75": re75, "re78": re78})


def plain_ipw_aipw(y: np.ndarray, d: np.ndarray, x: pd.DataFrame) -> tuple[float, float]:
    """IPW and AIPW for the ATT with normalised (Hájek) weights, written out with statsmodels."""
    xc = sm.add_constant(x.astype(float), has_constant="add")
    e = np.asarray(sm.Logit(d.astype(float), xc).fit(disp=False, method="newton", maxiter=200, tol=1e-12).predict(xc))
    w = e[~d] / (1 - e[~d])
    ipw = y[d].mean() - np.sum(w * y[~d]) / np.sum(w)
    m0 = np.asarray(sm.OLS(y[~d], xc[~d]).fit().predict(xc))
    aipw = np.mean(y[d] - m0[d]) - np.sum(w * (y[~d] - m0[~d])) / np.sum(w)
    return float(ipw), float(aipw)


def payoff_ipw_aipw(df: pd.DataFrame, outcome: str, arm: str, formula: str) -> tuple[float, float]:
    est = payoff.observational(df, outcome, arm, "0", [], n_boot=0, formula=formula).estimates.set_index("key")
    return float(est.at["ipw", "estimate"]), float(est.at["aipw", "estimate"])


def test_ipw_and_aipw_equal_a_plain_logit_and_ols_on_simulated_data():
    rng = np.random.default_rng(21)
    n = 1500
    x1, x2 = rng.normal(size=n), rng.gamma(2.0, 1.0, n)
    seg = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    d = rng.random(n) < 1 / (1 + np.exp(-(-0.4 + 0.8 * x1 - 0.3 * x2 + 0.5 * (seg == "b"))))
    y = 3 + 2 * x1 + x2 ** 2 + (seg == "c") + d * (1.0 + 0.5 * x1) + rng.normal(size=n)
    df = pd.DataFrame({"y": y, "member": d.astype(int), "x1": x1, "x2": x2, "seg": seg})
    formula = "x1 + x2 + I(x2**2) + seg"
    by_hand = pd.DataFrame({"x1": x1, "x2": x2, "x2sq": x2 ** 2, "seg_b": (seg == "b") * 1.0, "seg_c": (seg == "c") * 1.0})
    np.testing.assert_allclose(payoff_ipw_aipw(df, "y", "member", formula), plain_ipw_aipw(y, d, by_hand),
                               rtol=1e-6, atol=1e-6)


def test_ipw_and_aipw_equal_a_plain_logit_and_ols_on_the_lalonde_layout():
    df = lalonde_like()
    d, y = df["treat"].to_numpy(bool), df["re78"].to_numpy(float)
    by_hand = df[["age"]].assign(age2=df["age"] ** 2, educ=df["educ"], black=df["black"], hispan=df["hispan"],
                                 married=df["married"], nodegree=df["nodegree"], re74=df["re74"], re75=df["re75"],
                                 u74=(df["re74"] == 0) * 1.0, u75=(df["re75"] == 0) * 1.0)
    np.testing.assert_allclose(payoff_ipw_aipw(df, "re78", "treat", LALONDE_FORMULA), plain_ipw_aipw(y, d, by_hand),
                               rtol=1e-6, atol=1e-6)


def test_covariates_as_given_add_no_log_terms_and_fit_without_warnings():
    """The old default added log(1 + x) of every non-negative covariate, 0/1 dummies included: a singular
    outcome regression (SingularMatrix warnings in every replicate on the job-training study)."""
    import warnings

    df = lalonde_like()
    covariates = ["age", "educ", "black", "hispan", "married", "nodegree", "re74", "re75"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = payoff.observational(df, "re78", "treat", "0", covariates, n_boot=30)
    assert res.design.terms == covariates and res.design.formula == " + ".join(covariates)
    assert not [w for w in caught if "ingular" in str(w.message)], [str(w.message) for w in caught][:3]
    assert res.failed_replicates == 0 and np.isfinite(res.estimates["ci_low"]).all()


def _shared_lalonde() -> Path | None:
    for name in ("lalonde.csv", "nsw_dw.csv", "nsw.csv", "lalonde_nsw.csv"):
        if (SHARED / name).exists():
            return SHARED / name
    return None


@pytest.mark.skipif(_shared_lalonde() is None, reason="no Lalonde/NSW file in ../shared/data")
def test_ipw_and_aipw_equal_a_plain_logit_and_ols_on_the_real_lalonde_data():
    df = pd.read_csv(_shared_lalonde())
    df = df.rename(columns={"hisp": "hispan", "nodegr": "nodegree", "treatment": "treat"})
    needed = ["treat", "age", "educ", "black", "hispan", "married", "nodegree", "re74", "re75", "re78"]
    if not set(needed) <= set(df.columns):
        pytest.skip(f"the Lalonde file lacks {sorted(set(needed) - set(df.columns))}")
    df = df[needed].astype(float).assign(treat=lambda t: t["treat"].astype(int))
    d, y = df["treat"].to_numpy(bool), df["re78"].to_numpy(float)
    by_hand = df[["age"]].assign(age2=df["age"] ** 2, **{c: df[c] for c in needed[2:9]},
                                 u74=(df["re74"] == 0) * 1.0, u75=(df["re75"] == 0) * 1.0)
    np.testing.assert_allclose(payoff_ipw_aipw(df, "re78", "treat", LALONDE_FORMULA), plain_ipw_aipw(y, d, by_hand),
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# claims, the planted truth, currency and the formula as the module decides them (not the notebook)


def pilot_file(tmp_path: Path, n: int = 150, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    arm = np.repeat(["control", "treat"], n)
    pre = rng.gamma(2, 10, 2 * n)
    pd.DataFrame({"id": [f"c{i}" for i in range(2 * n)], "arm": arm, "pre": pre, "plan": rng.choice(["m", "y"], 2 * n),
                  "spend": 0.5 * pre + rng.gamma(2, 5, 2 * n) + 4 * (arm == "treat")}).to_csv(tmp_path / "p.csv",
                                                                                            index=False)
    return tmp_path / "p.csv"


def test_currency_is_resolved_in_the_module(tmp_path):
    args = {"unit_col": "id", "arm_col": "arm", "control_arm": "control", "outcome_cols": ["spend"],
            "covariate_cols": ["pre"], "margin": 0.3, "cost_per_member": 1.0, "horizon": 4}
    source = files("randomized", pilot_file(tmp_path))
    assert payoff.prepare("randomized", source, Ledger(), **args).currency == ""  # a user's files: none
    assert payoff.prepare("randomized", source, Ledger(), currency="EUR", **args).currency == "EUR"
    synthetic = payoff.prepare("randomized", sources.resolve(payoff.tables("randomized")), Ledger(), unit_col="customer_id",
                               arm_col=None, control_arm=None, outcome_cols=None, covariate_cols=None, margin=None,
                               cost_per_member=None, horizon=None)
    assert synthetic.currency == "RUB"
    # the money and the enrolment window come from what the data say about themselves (source.defaults)
    truth = sources.resolve(payoff.tables("randomized")).truth
    weeks_in_months = truth.calendar.pilot_weeks * 7 / (365.25 / 12)
    assert synthetic.params["margin"] == truth.loyalty_pilot.margin
    assert synthetic.params["cost_per_member"] == pytest.approx(truth.loyalty_pilot.cost_per_member_month * weeks_in_months)
    window = payoff.resolve_defaults("observational", sources.resolve(payoff.tables("observational")).defaults,
                                     margin=None, cost_per_member=None, pre_end=None, post_start=None)
    assert (window["pre_end"], window["post_start"]) == ("2024-04", "2024-07")
    assert window["cost_per_member"] == truth.loyalty_enrolment.cost_per_member_month
    assert window["margin"] == truth.loyalty_enrolment.margin


def test_formula_drives_the_adjustment_and_is_recorded(tmp_path):
    ledger = Ledger()
    setup = payoff.prepare("randomized", files("randomized", pilot_file(tmp_path)), ledger, unit_col="id",
                           arm_col="arm", control_arm="control", outcome_cols=["spend"], covariate_cols=None,
                           covariate_formula="pre + I(pre**2) + plan", margin=0.3, cost_per_member=1.0, horizon=4)
    assert setup.params["covariate_cols"] == ["pre", "plan"] and setup.formula_given
    fx = payoff.analyse(setup)
    assert fx.design.terms == ["pre", "I(pre ** 2)", "plan[y]"] or fx.design.terms == ["pre", "I(pre ** 2)", "plan[m]"]
    assert fx.adjusted and ledger.notes and "pre + I(pre**2) + plan" in ledger.notes[-1]
    assert "reference levels: plan = " in ledger.notes[-1]


def test_a_users_panel_needs_its_enrolment_window(tmp_path):
    units = pd.DataFrame({"id": [f"u{i}" for i in range(20)], "member": [0, 1] * 10})
    panel = pd.DataFrame([{"id": f"u{i}", "month": f"2024-{m:02d}", "spend": 1.0} for i in range(20) for m in (1, 5)])
    units.to_csv(tmp_path / "u.csv", index=False)
    panel.to_csv(tmp_path / "panel.csv", index=False)
    with pytest.raises(ParameterError, match="A panel needs its enrolment window: give pre_end"):
        payoff.prepare("observational", files("observational", tmp_path / "u.csv", tmp_path / "panel.csv"), Ledger(),
                       unit_col="id", arm_col="member", control_arm="0", outcome_cols=["spend"], covariate_cols=[],
                       margin=0.3, cost_per_member=1.0, horizon=12)


def test_claims_truth_check_and_metrics_come_from_the_module():
    setup = payoff.prepare("randomized", sources.resolve(payoff.tables("randomized")), Ledger(),
                           unit_col="customer_id", arm_col=None, control_arm=None, outcome_cols=None,
                           covariate_cols=None, margin=None, cost_per_member=None, horizon=None)
    fx = payoff.analyse(setup)
    pay = payoff.pays_off(setup, fx.effect)
    truth = sources.resolve(payoff.tables("randomized")).truth
    planted = checks.loyalty_effect(truth, setup)
    assert planted == truth.loyalty_pilot.true_ate_spend
    claims = payoff.claims(setup, fx, pay, planted)
    assert [c.id for c in claims] == ["loyalty_investment_pays_off"] and isinstance(claims[0], Claim)
    assert claims[0].truth == pytest.approx(float(pay.money.roi(planted)))
    assert payoff.claims(setup, fx, pay)[0].truth is None
    check = checks.loyalty_check(setup, fx, truth)
    assert (check["planted"] == planted).all()
    assert list(check["covers the planted effect"]) == [lo <= planted <= hi for lo, hi in
                                                        zip(check["ci_low"], check["ci_high"], strict=True)]
    names = [m["name"] for m in payoff.metrics(setup, fx, pay)]
    assert names[:2] == ["effects", "cuped_variance_reduction"] and "roi" in names
    # another money outcome has no planted value: nothing is compared
    other = payoff.prepare("randomized", sources.resolve(payoff.tables("randomized")), Ledger(),
                           unit_col="customer_id", arm_col=None, control_arm=None, outcome_cols=["visits"],
                           covariate_cols=None, margin=None, cost_per_member=None, horizon=None)
    assert checks.loyalty_effect(truth, other) is None and checks.loyalty_check(other, fx, truth) is None
    assert checks.loyalty_effect(None, setup) is None


def test_roi_plot_draws_what_the_analysis_computed():
    import matplotlib.pyplot as plt

    eff = payoff.Effect(3.0, 1.0, 5.0, 1.0, 250, 570, "test")
    pay = payoff.money_verdict(eff, margin=0.4, cost_per_member=0.5, horizon=12)
    assert pay.roi_draws is None and len(pay.roi_curve) == 401
    grid = 3.0 + np.linspace(-4, 4, 401)
    np.testing.assert_allclose(pay.roi_curve["roi"], pay.money.roi(grid))
    np.testing.assert_allclose(pay.roi_curve["density"], stats.norm.pdf(grid, 3.0, 1.0))
    ax = payoff.plot_roi(pay)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), pay.roi_curve["roi"])
    plt.close(ax.figure)
    boot = payoff.Effect(3.0, 1.0, 5.0, 1.0, 250, 570, "test", draws=np.array([1.0, 3.0, 5.0]))
    assert np.allclose(payoff.money_verdict(boot, 0.4, 0.5, 12).roi_draws, (0.4 * np.array([1, 3, 5.0]) - 0.5) / 0.5)


def test_notebook_takes_a_covariate_formula_and_records_it(tmp_path):
    df = lalonde_like(400).assign(id=lambda t: [f"p{i}" for i in range(len(t))])
    df.to_csv(tmp_path / "nsw.csv", index=False)
    res = run_notebook(RunSpec("loyalty_payoff", parameters={
        "design": "observational", "data_path": str(tmp_path / "nsw.csv"), "unit_col": "id", "arm_col": "treat",
        "control_arm": "0", "outcome_cols": ["re78"], "covariate_formula": LALONDE_FORMULA, "margin": 0.5,
        "cost_per_member": 500.0, "horizon": 1, "n_boot": 50}), tmp_path / "out")
    assert res["status"] == "ok", res.get("error")
    assert res["parameters"]["covariate_formula"] == LALONDE_FORMULA
    assert any(LALONDE_FORMULA in note for note in res["notes"]) and res["currency"] == ""
    expected = payoff_ipw_aipw(df, "re78", "treat", LALONDE_FORMULA)
    assert res["metrics"]["aipw_effect"]["estimate"] == pytest.approx(expected[1], rel=1e-5)
    assert res["metrics"]["bootstrap_replicates_failed"] == 0
