"""Contractual and discrete-time models: published estimates, closed forms against sums, lifetimes, recovery
and interval coverage on planted parameters, input rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxresearch import retention as R
from cxresearch import sources, synth
from cxresearch.errors import ParameterError
from cxresearch.io import InputError
from cxresearch.stats import Z95

# Fader & Hardie (2007), "How to Project Customer Retention", Table 1: customers active at the start of years
# 0..12 of two cohorts of 1,000; the models are fitted on years 0..7 and projected on 8..12.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]


def cohort(name: str, active: list[int]) -> pd.DataFrame:
    return R.check_retention_table(pd.DataFrame({"cohort": name, "period": range(len(active)), "active": active}))


@pytest.mark.parametrize(("active", "published"), [(REGULAR, (0.704, 1.182)), (HIGH_END, (0.668, 3.806))],
                         ids=["regular", "high-end"])
def test_sbg_reproduces_fader_hardie_2007(active, published):
    table, held = R.split_periods(cohort("c", active), 7)
    fit = R.fit_retention(table, "sBG")
    assert tuple(np.round(fit.params, 3)) == published
    assert np.all(np.isfinite(fit.se)) and np.all(fit.se > 0) and "Newton polish" in fit.method
    projection = R.project([fit], cohort("c", active), 7)
    assert projection.has_holdout and len(held) == 5
    assert projection.mape["sBG"] < 0.05  # the paper's point: the sBG projects years 8-12 within a few percent


def test_the_shipped_published_tables_and_donations():
    assert sources.fader_hardie_2007().equals(pd.concat([cohort("High End", HIGH_END), cohort("Regular", REGULAR)],
                                                        ignore_index=True))
    donors = sources.donations()
    assert int(donors["weight"].sum()) == 11104 and set(donors["n"]) == {6}


def test_bdw_nests_the_sbg_and_finds_duration_dependence_in_the_high_end_cohort():
    table, _ = R.split_periods(cohort("c", HIGH_END), 7)
    sbg, bdw = R.fit_retention(table, "sBG"), R.fit_retention(table, "BdW")
    t = np.arange(0, 13)
    np.testing.assert_allclose(R.BdWFit([*sbg.params, 1.0]).survival(t), sbg.survival(t), rtol=1e-12)
    assert bdw.log_likelihood >= sbg.log_likelihood - 1e-9  # one more parameter never fits worse
    # c > 1: each high-end customer's chance of leaving rises with tenure; the aggregate rise is sorting
    claim = R.loyalty_growth_claim(bdw, n=1000)
    assert claim.estimate > 1 and claim.ci_low > 1 and claim.verdict == "not supported"
    both = R.project([sbg, bdw], cohort("c", HIGH_END), 7)
    comparison = R.compare_retention_models([sbg, bdw], both)
    assert list(comparison["model"]) == ["sBG", "BdW"] and "held-out error" in comparison
    assert R.choose_retention_model(comparison) == "BdW"  # it projects years 8-12 better here


def test_derl_closed_form_equals_the_discounted_sum():
    fit = R.SBGFit([0.704, 1.182])
    renewals = np.array([0, 1, 4, 10])
    for d in (0.1, 0.01):
        np.testing.assert_allclose(fit.derl(renewals, d), R.RetentionFit.derl(fit, renewals, d), rtol=1e-9)
    # a hand sum for one customer: sum over t >= n of S(t)/S(n-1) / 1.1^(t-n)
    t = np.arange(1, 3000)
    by_hand = np.sum(fit.survival(t) / fit.survival(0) / 1.1 ** (t - 1))
    assert math.isclose(fit.derl(0, 0.1), by_hand, rel_tol=1e-9)
    # a longer-tenured customer is worth more (sorting): DERL rises with renewals
    assert np.all(np.diff(fit.derl(renewals, 0.1)) > 0)


def test_value_by_tenure_and_of_the_base_carry_intervals():
    table = cohort("c", REGULAR)
    fit = R.fit_retention(table, "sBG")
    v = R.value_by_tenure(fit, [0, 3, 12], R.period_discount(0.1, "years"), 100.0, n_draws=500)
    assert np.all(v["value_low"] < v["value"]) and np.all(v["value"] < v["value_high"])
    np.testing.assert_allclose(v["value"], 100 * fit.derl(np.array([0, 3, 12]), 0.1), rtol=1e-12)
    active = R.active_by_renewals(table)
    assert active.to_dict() == {12: 173}
    base = R.base_value(fit, active, 0.1, 100.0, n_draws=500)
    assert math.isclose(base.total, 173 * 100 * fit.derl(12, 0.1), rel_tol=1e-12)
    assert base.ci_low < base.total < base.ci_high
    assert math.isclose(R.period_discount(0.1, "months"), 1.1 ** (1 / 12) - 1)


@pytest.mark.parametrize(("model", "planted", "reps"), [("sBG", (0.8, 2.5), 120), ("BdW", (0.8, 2.5, 0.7), 60)])
def test_planted_parameters_are_recovered_with_nominal_coverage(model, planted, reps):
    """Retention tables drawn from the model itself: the 95% intervals (Wald on the log scale) cover each
    planted parameter in about 95% of the tables, and the estimates centre on the truth."""
    hits, estimates = np.zeros(len(planted)), []
    for seed in range(reps):
        table = synth.contract_cohorts(*planted[:2], c=planted[2] if len(planted) > 2 else 1.0,
                                       sizes=(800, 800, 800), periods=10, seed=seed)
        t = R.fit_retention(R.check_retention_table(table), model).table()
        hits += (t["ci_low"] <= planted) & (planted <= t["ci_high"])
        estimates.append(t["estimate"].to_numpy())
    coverage = hits / reps
    # binomial noise around 0.95 with this many tables: about +-0.02 (sBG) to +-0.03 (BdW) per standard error
    assert np.all(coverage >= 0.88), coverage
    assert np.all(coverage <= 0.995), coverage
    # the medians: within 15% (alpha and beta of 2,400 customers are pinned down to about 25% each)
    np.testing.assert_allclose(np.median(estimates, axis=0), planted, rtol=0.15)


def test_bgbb_reproduces_the_published_donor_cohort():
    """Fader, Hardie & Shang (2010): 11,104 first-time donors of 1995, six repeat opportunities (1996-2001)."""
    donors = sources.donations()
    fit = R.fit_bgbb(donors)
    assert tuple(np.round(fit.params, 3)) == (1.204, 0.750, 0.657, 2.783)
    assert round(fit.log_likelihood, 1) == -33225.6
    assert np.all(fit.se > 0)


def test_bgbb_predictions_agree_with_lifetimes_and_dert_with_its_sum():
    from lifetimes import BetaGeoBetaBinomFitter

    donors = sources.donations()
    fit = R.fit_bgbb(donors)
    x, t_x, n = (donors[k].to_numpy(float) for k in ("x", "t_x", "n"))
    theirs = BetaGeoBetaBinomFitter()
    theirs.params_ = pd.Series(fit.as_dict())
    np.testing.assert_allclose(fit.p_alive(x, t_x, n), theirs.conditional_probability_alive(1, x, t_x, n), rtol=1e-9)
    np.testing.assert_allclose(fit.expected_transactions(5, x, t_x, n),
                               theirs.conditional_expected_number_of_purchases_up_to_time(5, x, t_x, n), rtol=1e-9)
    # DERT: expected transactions in each future opportunity, the k-th discounted k times
    k = np.arange(1, 2000)
    cumulative = np.array([fit.expected_transactions(kk, x, t_x, n) for kk in k])
    by_sum = np.sum(np.diff(np.vstack([np.zeros(len(x)), cumulative]), axis=0) / 1.1 ** k[:, None], axis=0)
    np.testing.assert_allclose(fit.dert(0.1, x, t_x, n), by_sum, rtol=1e-6)


def test_bgbb_recovers_planted_parameters():
    planted = np.array([1.2, 0.75, 0.66, 2.8])
    hits = np.zeros(4)
    reps = 20
    for seed in range(reps):
        t = R.fit_bgbb(synth.bgbb_customers(*planted, n_customers=4000, opportunities=6, seed=seed)).table()
        hits += (t["ci_low"] <= planted) & (planted <= t["ci_high"])
    assert np.all(hits / reps >= 0.8), hits / reps  # 20 draws: nominal 0.95 +- 0.05 per standard error


def test_bgbb_summary_from_periods():
    periods = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c", "c"], "period": [0, 2, 5, 0, 0, 1]})
    s = R.bgbb_summary(periods, opportunities=6).sort_index()
    assert s.loc["a"].tolist() == [2, 5, 6] and s.loc["b"].tolist() == [0, 0, 6] and s.loc["c"].tolist() == [1, 1, 6]


def test_broken_retention_tables_are_refused_by_cohort():
    bad = pd.DataFrame({"cohort": ["A"] * 3 + ["B"] * 3 + ["C"] * 2,
                        "period": [0, 1, 3, 0, 1, 2, 1, 2], "active": [10, 8, 7, 10, 8, 9, 5, 4]})
    with pytest.raises(InputError) as err:
        R.check_retention_table(bad)
    text = str(err.value)
    assert "cohort 'A' skips from period 1 to 3" in text
    assert "cohort 'B' gains customers from period 1 to 2 (8 to 9 active)" in text
    assert "cohort 'C' has no period 0" in text and text.count("Fix:") == 3
    with pytest.raises(InputError, match="column\\(s\\) \\['active'\\] are missing"):
        R.check_retention_table(bad.drop(columns="active"))


def test_retention_values_that_are_not_counts_and_repeated_periods_are_refused():
    bad = pd.DataFrame({"cohort": ["A", "A", "B", "B", "B"], "period": [0, 1, 0, 1, 1],
                        "active": [10, "x", 5, 4.5, 3]})
    with pytest.raises(InputError) as err:
        R.check_retention_table(bad)
    text = str(err.value)
    assert "column 'active' has 2 value(s) that are not whole numbers of 0 or more (row 2 of the table, cohort 'A', " \
           "row 4 of the table, cohort 'B')" in text
    assert "1 (cohort, period) pair(s) appear twice, e.g. cohort 'B' period 1" in text
    assert text.count("Fix:") == 2
    fine = R.check_retention_table(pd.DataFrame({"cohort": [1, 1], "period": ["0", "1"], "active": [5.0, 4.0]}))
    assert fine["period"].tolist() == [0, 1] and fine["active"].dtype.kind == "i" and fine["cohort"].iloc[0] == "1"


def test_value_needs_a_discount_rate_above_zero():
    from cxresearch.errors import ParameterError

    fit = R.SBGFit([0.704, 1.182])
    for bad in (0, -0.1, float("nan"), "0.1", True):
        with pytest.raises(ParameterError, match="discount rate per period must be a number above 0"):
            fit.derl(0, bad)
        with pytest.raises(ParameterError):
            R.BdWFit([0.7, 1.2, 1.0]).derl(0, bad)
        with pytest.raises(ParameterError):
            R.BGBBFit([1.2, 0.75, 0.66, 2.8]).dert(bad, 1, 1, 6)


def test_bgbb_expected_transactions_at_gamma_one_is_the_limit():
    near = [R.BGBBFit([1.2, 0.75, g, 2.8]).expected_transactions(5, 2, 4, 6) for g in (1 - 1e-6, 1 + 1e-6)]
    at = R.BGBBFit([1.2, 0.75, 1.0, 2.8]).expected_transactions(5, 2, 4, 6)
    assert np.isfinite(at) and math.isclose(at, np.mean(near), rel_tol=1e-5)
    with pytest.raises(ValueError, match="either opportunities"):
        R.bgbb_summary(pd.DataFrame({"customer_id": ["a"], "period": [0]}))


def test_plots_take_results_and_return_the_axes():
    import matplotlib.pyplot as plt

    table = cohort("c", HIGH_END)
    fits = R.fit_retention_models(R.split_periods(table, 7)[0]).all
    ax = R.plot_projection(R.project(fits, table, 7), time_unit="years")
    assert ax.get_ylabel() == "customers still active" and len(ax.lines) == 3
    ax2 = R.plot_retention_rates(fits, R.observed_rates(table), time_unit="years")
    assert len(ax2.lines) == 3 and ax2.get_ylabel() == "renewal rate, %"
    plt.close("all")


def test_too_short_a_table_is_not_estimable():
    from cxresearch.errors import NotEstimable

    with pytest.raises(NotEstimable, match="BdW model cannot be estimated"):
        R.fit_retention(cohort("c", [100, 80, 70]), "BdW")


def test_retention_from_a_customers_table():
    customers = pd.DataFrame({
        "signup_date": pd.to_datetime(["2024-01-10", "2024-01-20", "2024-01-25", "2024-02-05"]),
        "churn_date": pd.to_datetime(["2024-02-15", None, "2024-04-30", None])})
    t = R.retention_from_customers(customers, "2024-04-30", "months")
    jan = t[t["cohort"] == "2024-01"].set_index("period")["active"].to_dict()
    assert jan == {0: 3, 1: 3, 2: 2, 3: 2}  # one left in her 2nd month, one at the end of her 4th (after as_of)
    assert t[t["cohort"] == "2024-02"]["period"].max() == 2


def test_on_the_synthetic_world_the_projection_tracks_the_held_out_months():
    """The world's contracts (Cox churn, Weibull baseline): cohort retention by month; models fitted on the
    first 24 months project months 25-36 within a few percent."""
    world = synth.make_world(n_customers=6000, seed=5)
    table = R.check_retention_table(R.retention_from_customers(world["customers"], "2024-12-31", "months",
                                                               min_size=20))
    fit_rows, _ = R.split_periods(table, 24)
    models = R.fit_retention_models(fit_rows)
    assert "BdW" in models.fits
    projection = R.project(models.all, table[table["period"] <= 36], 24)
    assert projection.mape["BdW"] < 0.05, projection.mape


def test_the_loyalty_claim_needs_enough_customers_and_a_fit():
    claim = R.loyalty_growth_claim(None, n=3, min_n=5)
    assert claim.verdict == "not testable" and claim.estimate is None and "fewer than 5" in claim.note
    sorted_only = R.BdWFit([0.8, 2.0, 1.0], se=[0.05, 0.1, 0.01])
    assert R.loyalty_growth_claim(sorted_only, n=500).verdict == "not supported"  # c = 1 within the margin
    growing = R.BdWFit([0.8, 2.0, 0.6], se=[0.05, 0.1, 0.05])
    c = R.loyalty_growth_claim(growing, n=500)
    assert c.verdict == "supported" and math.isclose(c.ci_high, 0.6 * math.exp(Z95 * 0.05 / 0.6))


# ---------------------------------------------------------------------------------------------
# the churn notebook's cohort view: the same retention table from a survival table


def test_cohorts_of_a_survival_table_are_the_customer_table_s_cohorts():
    """The churn notebook's route (start date + duration + event) gives the table that the customers' own
    signup and churn dates give, and the same fits."""
    from cxresearch import churn
    from cxresearch.io import Ledger

    world = synth.ensure_world()
    customers = pd.read_csv(world["customers"], parse_dates=["signup_date", "churn_date"])
    st = churn.survival_table(str(world["customers"]), ledger=Ledger(), time_unit="months", covariates=[],
                              group_col=None, as_of="2024-12-31")
    direct = R.retention_from_customers(customers, "2024-12-31", "months", min_size=5)
    via = R.retention_from_durations(st.data, "months", "2024-12-31", "months", min_size=5)
    assert not (customers["churn_date"] == customers["signup_date"]).any()  # no zero-length relationships
    pd.testing.assert_frame_equal(via, direct)
    cr = R.cohorts_from_durations(st.data, "months", "2024-12-31", 5)
    assert cr.projection is not None and cr.projection.fit_periods == (2 * int(direct["period"].max())) // 3
    assert cr.left_out == len(customers) - int(direct.loc[direct["period"] == 0, "active"].sum())
    assert cr.chosen in cr.models.fits and cr.projection.mape[cr.chosen] < 0.05
    names = [m["name"] for m in R.retention_metrics(cr)]
    assert {"bdw_params", "bdw_se", "retention_fit_periods", "retention_holdout_error"} <= set(names)
    shown = R.projection_display(cr)
    assert shown["still active"].iloc[0] == 1.0 and set(shown["used in fitting"]) == {"yes", "no (held out)"}


def test_durations_without_start_dates_have_no_cohorts_and_no_claim():
    data = pd.DataFrame({"duration": [1.0, 2.0, 3.0], "event": [1, 0, 1]})
    cr = R.cohorts_from_durations(data, "months")
    assert cr.projection is None and "without start dates" in cr.reason
    claim = cr.claim(5)
    assert claim.verdict == "not testable" and "without start dates" in claim.note
    assert R.retention_metrics(cr) == []
    small = pd.DataFrame({"start": pd.to_datetime(["2022-01-03"] * 6 + ["2022-02-01"] * 2), "duration": 5.0,
                          "event": 1})
    cr = R.cohorts_from_durations(small, "months", "2022-12-31", 5)
    said = cr.sentence()
    assert cr.left_out == 2 and said["left"] == 2 and "customers in cohorts smaller than" in said["template"]
    # everyone left before the held-out months: no percentage error, and none is quoted
    assert math.isnan(cr.projection.mape["sBG"]) and "{error}" not in said["template"]
    nobody_left = pd.DataFrame({"start": pd.date_range("2022-01-01", periods=60, freq="7D"), "duration": 20.0,
                                "event": 0})
    cr = R.cohorts_from_durations(nobody_left, "months", "2024-06-30", 5)
    assert cr.projection is None and "neither model could be fitted" in cr.reason and "Fix:" in cr.reason
    assert cr.claim(5).verdict == "not testable"


def test_a_fit_whose_heterogeneity_runs_off_gives_up_instead_of_spinning(monkeypatch):
    """The synthetic world's monthly cohorts, fitted on 30 months: customers differ too little for the sBG's
    beta mixture, whose parameters run off along a flat ridge. Nelder-Mead, the last attempt, stops once its
    best point stops moving; it used to spin to 10,000 iterations (about 125,000 survival evaluations,
    5.6 s). Whether or not the sBG is accepted on this machine, the work stays bounded."""
    from cxresearch import churn
    from cxresearch.fits import FitError
    from cxresearch.io import Ledger

    world = synth.ensure_world()
    st = churn.survival_table(str(world["customers"]), ledger=Ledger(), time_unit="months", covariates=[],
                              group_col=None)
    fitted, _ = R.split_periods(R.retention_from_durations(st.data, "months", min_size=5), 30)
    calls = []
    survival = R.SBGFit.log_survival
    monkeypatch.setattr(R.SBGFit, "log_survival", lambda self, t: calls.append(1) or survival(self, t))
    try:
        R.fit_retention(fitted, "sBG")
    except FitError as exc:
        assert "did not converge" in str(exc) and "Nelder-Mead" in str(exc)
    assert len(calls) < 30_000, len(calls)


# ---------------------------------------------------------------------------------------------
# the CLV notebook's contractual and discrete settings


def test_the_contractual_setting_fits_the_churn_notebooks_retention_model():
    """The CLV notebook's contractual route counts the table the churn notebook counts and fits it with the same
    function, so both notebooks report one retention model."""
    from cxresearch.io import Ledger

    source = sources.synthetic_world(["customers"])
    contracts = R.load_contracts(source, Ledger(), time_unit="months")
    customers = pd.read_csv(source.paths["customers"], parse_dates=["signup_date", "churn_date"])
    direct = R.retention_from_customers(customers, source.defaults["observation_end"], "months", min_size=5)
    pd.testing.assert_frame_equal(contracts.table.drop(columns="group"), direct)
    value = R.contractual_value(contracts, None, 5, 0.1, 0.3, 1500.0)
    (group,) = value.groups
    same = R.cohort_retention(direct, "months", None, 5)
    for model, fit in same.models.fits.items():
        np.testing.assert_allclose(group.cohorts.models.fits[model].params, fit.params, rtol=1e-9)
    assert group.cohorts.chosen == same.chosen
    # value: the margin per period times DERL, the base summed over the active customers by tenure
    t = group.tenure
    np.testing.assert_allclose(t["value"], 0.3 * 1500.0 * t["derl"], rtol=1e-12)
    assert (t["value_low"] <= t["value"]).all() and (t["value"] <= t["value_high"]).all()
    assert group.base.active.sum() == R.active_by_renewals(direct).sum()
    metrics = {m["name"]: m for m in value.metrics()}
    assert set(metrics["sbg_params"]["value"]) == {"alpha", "beta"} and metrics["base_value_total"]["unit"] == "money"


def test_fader_hardie_by_cohort_gives_each_segment_its_published_fit_and_claim():
    from cxresearch.io import Ledger

    source = sources.fader_hardie()
    contracts = R.load_contracts(source, Ledger(), time_unit="years")
    assert contracts.fit_by == "cohort" and contracts.groups == ["High End", "Regular"]
    value = R.contractual_value(contracts, None, 5, 0.1, 0.3)
    published = {"High End": (0.668, 3.806), "Regular": (0.704, 1.182)}
    for g in value.groups:
        assert tuple(np.round(g.cohorts.models.fits["sBG"].params, 3)) == published[g.group]
        assert g.cohorts.projection.fit_periods == 7
    claims = value.claims()
    assert [c.id for c in claims] == ["loyalty_grows_with_tenure_1", "loyalty_grows_with_tenure_2"]
    assert claims[0].claim.endswith("(High End)")
    # without a value per period the value is counted in discounted payments (DERL), not money
    metrics = {m["name"]: m for m in value.metrics()}
    assert metrics["base_value_total"]["unit"] == ""
    assert set(metrics["sbg_params"]["value"]) == {"High End", "Regular"}
    assert sum(metrics["retention_model"]["value"]["Regular"].values()) == 1


def test_bdw_derl_by_recursion_equals_the_discounted_sum():
    fit = R.BdWFit([0.45, 0.78, 1.28])
    for n, d in ((0, 0.1), (5, 0.1), (12, 0.008)):
        t = np.arange(n + 1, n + 20000)
        by_hand = np.sum(fit.survival(t) / fit.survival(n) * np.exp(-(t - n - 1) * math.log1p(d)))
        assert math.isclose(fit.derl(n, d), by_hand, rel_tol=1e-9)


def test_bgbb_likelihood_by_term_ratios_equals_the_beta_functions():
    """eq. 5 of Fader, Hardie & Shang (2010) written with beta functions, term by term."""
    from scipy import special

    params = np.array([1.2, 0.75, 0.66, 2.8])
    a, b, g, d = params
    rows = [(0, 0, 6), (1, 1, 6), (3, 5, 6), (6, 6, 6), (2, 3, 29), (0, 0, 1)]
    for x, t_x, n in rows:
        terms = [special.betaln(a + x, b + n - x) - special.betaln(a, b) + special.betaln(g, d + n) - special.betaln(g, d)]
        terms += [special.betaln(a + x, b + t_x - x + i) - special.betaln(a, b) + special.betaln(g + 1, d + t_x + i)
                  - special.betaln(g, d) for i in range(n - t_x)]
        assert math.isclose(R.bgbb_ll(params, x, t_x, n), special.logsumexp(terms), rel_tol=1e-12)
    x, t_x, n = (np.array(v) for v in zip(*rows, strict=True))
    assert R.bgbb_ll(params, x, t_x, n).shape == (len(rows),)


def test_occasions_from_a_log_count_whole_periods_after_the_first():
    daily = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b", "b", "c"],
                          "date": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-03-02", "2024-08-01",
                                                  "2024-02-10", "2024-07-15", "2024-06-30"])})
    occ = R.occasions_from_log(daily, "months", "2024-06-30", "2024-09-15")
    s = occ.summary.loc[["a", "b"]]
    # a: first in January, repeat opportunities February..June (5), bought in March (period 2); August held out
    # b: first in February, opportunities March..June (4), none; July held out. c first bought in June: none yet
    assert s[["x", "t_x", "n", "holdout"]].to_numpy().tolist() == [[1, 2, 5, 1], [0, 0, 4, 1]]
    assert occ.holdout_periods == 2 and occ.no_opportunity == 1 and occ.n == 2
    # calibration ending mid-June: it stops with May; June to August are held out, c (first in June) is counted late
    mid = R.occasions_from_log(daily, "months", "2024-06-15", "2024-09-15")
    assert mid.summary.loc[["a", "b"], ["x", "t_x", "n", "holdout"]].to_numpy().tolist() == [[1, 2, 4, 1], [0, 0, 3, 1]]
    assert (mid.holdout_periods, mid.late, mid.partial, mid.last_period) == (3, 1, 0, "2024-05")
    # no holdout, the log ending mid-August: the unfinished month's purchase is left out and counted
    cut = R.occasions_from_log(daily, "months", "2024-08-20")
    assert cut.partial == 1 and "holdout" not in cut.summary and "Left out" in cut.sentence()["template"]
    with pytest.raises(ParameterError, match="holds no whole month after the calibration"):
        R.occasions_from_log(daily, "months", "2024-06-30", "2024-07-20")


def test_holdout_rows_are_merged_until_each_holds_min_group_size():
    s = synth.bgbb_customers(0.64, 2.8, 0.5, 1.9, n_customers=600, opportunities=6, seed=3)
    s = s.assign(weight=1, holdout=np.minimum(s["x"], 3))
    occ = R.Occasions(s[["x", "t_x", "n", "weight", "holdout"]], "years", "test", holdout_periods=3)
    dv = R.discrete_value(occ, 0.1)
    by_x = dv.holdout().set_index("x")
    shown = R.holdout_display(dv, 60)
    assert shown["customers"].min() >= 60 and shown["customers"].sum() == len(s)
    assert by_x["customers"].min() < 60 and len(shown) < len(by_x)  # something was merged
    last = shown.iloc[-1]
    lo, hi = (int(v) for v in last.iloc[0].split(" to "))
    part = by_x.loc[lo:hi]
    assert hi == by_x.index.max() and last["customers"] == part["customers"].sum()
    assert math.isclose(last.iloc[2], (part["actual"] * part["customers"]).sum() / part["customers"].sum())
    assert math.isclose(last.iloc[3], (part["expected"] * part["customers"]).sum() / part["customers"].sum())


def test_reports_leave_out_the_narrative_of_other_settings():
    from cxresearch.report import for_other_run

    run = {"setting": "discrete", "dataset": "synthetic"}
    assert for_other_run({"setting=contractual"}, run) and not for_other_run({"setting=discrete"}, run)
    assert not for_other_run({"remove_cell", "setting=discrete"}, run)
    assert not for_other_run({"setting=contractual"}, {})  # a notebook without the parameter keeps its cells


def test_the_bgbb_gradient_matches_the_five_point_stencil_row_by_row():
    from cxresearch.mle import five_point_gradient

    rows = R.compress_bgbb(synth.bgbb_customers(0.64, 2.8, 0.5, 1.9, n_customers=2000, opportunities=12, seed=1))
    x, t_x, n = (rows[k].to_numpy(float) for k in ("x", "t_x", "n"))
    p = np.array([0.7, 2.5, 0.6, 1.7])
    grad = R.bgbb_ll_grad(p, x, t_x, n)
    assert grad.shape == (len(rows), 4) and len(rows) > 30
    for k in range(len(rows)):
        row = (x[k:k + 1], t_x[k:k + 1], n[k:k + 1])
        numeric = five_point_gradient(lambda q, row=row: float(R.bgbb_ll(q, *row)[0]), p, 1e-4)
        np.testing.assert_allclose(grad[k], numeric, rtol=1e-6, atol=1e-8)
