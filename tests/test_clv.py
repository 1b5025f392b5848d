"""Customer lifetime value: published CDNOW figures, recovery, agreement with lifetimes, input rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxresearch import clv, mle, sources
from cxresearch.errors import NotEstimable, ParameterError
from cxresearch.io import Ledger
from cxresearch.synth import ensure_world, load_truth
from tests.plain_words import RAW


@pytest.fixture(scope="module")
def cdnow():
    tx = clv.load_transactions(sources.cdnow().paths["transactions"], observation_end="1998-06-30", ledger=Ledger())
    return tx, clv.rfm_summary(tx.daily, "1997-09-30", "1998-06-30", "weeks")


def test_cdnow_counts(cdnow):
    _, s = cdnow
    assert len(s) == 2357
    assert int(s["frequency"].sum()) == 2457
    assert int((s["frequency"] == 0).sum()) == 1411
    assert int(s["holdout"].sum()) == 1882
    assert int(((s["frequency"] > 0) & (s["monetary"] > 0)).sum()) == 946


def test_cdnow_summary_matches_the_published_summary(cdnow):
    import importlib.util
    from pathlib import Path

    _, s = cdnow
    root = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0])
    ref = pd.read_csv(root / "datasets" / "cdnow_customers_summary.csv").set_index("ID")
    ours = s.set_axis(s.index.astype(int)).sort_index()
    assert (ours["frequency"].to_numpy() == ref["frequency"].to_numpy()).all()
    assert np.allclose(ours["recency"], ref["recency"], atol=0.006)  # the published file rounds to 2 decimals
    assert np.allclose(ours["T"], ref["T"], atol=0.006)


@pytest.mark.parametrize(
    ("fit", "published", "loglik"),
    [
        (clv.fit_bgnbd, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
        (clv.fit_pareto_nbd, {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0),
        (clv.fit_gamma_gamma, {"p": 6.25, "q": 3.74, "v": 15.44}, None),
    ],
)
def test_cdnow_published_estimates(cdnow, fit, published, loglik):
    _, s = cdnow
    res = fit(s)
    for name, value in published.items():
        decimals = len(str(value).split(".")[1])
        assert round(res.as_dict()[name], decimals) == value, (name, res.as_dict()[name])
    if loglik is not None:
        assert round(res.log_likelihood, 1) == loglik
    assert np.all(np.isfinite(res.se)) and np.all(res.se > 0)


def test_weighted_fit_equals_plain_likelihood(cdnow):
    _, s = cdnow
    res = clv.fit_bgnbd(s)
    plain = clv.bgnbd_ll(res.params, s["frequency"].to_numpy(float), s["recency"].to_numpy(float),
                         s["T"].to_numpy(float)).sum()
    assert math.isclose(plain, res.log_likelihood, rel_tol=1e-10)
    assert len(clv.compress(s)) < len(s)


def test_predictions_agree_with_lifetimes(cdnow):
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

    _, s = cdnow
    bg, pn, gg = clv.fit_bgnbd(s), clv.fit_pareto_nbd(s), clv.fit_gamma_gamma(s)
    x, tx, T = s["frequency"], s["recency"], s["T"]
    lb, lp, lg = BetaGeoFitter(), ParetoNBDFitter(), GammaGammaFitter()
    lb.params_, lp.params_, lg.params_ = pd.Series(bg.as_dict()), pd.Series(pn.as_dict()), pd.Series(gg.as_dict())
    pairs = [
        (bg.expected_purchases(39, x, tx, T), lb.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T)),
        (bg.p_alive(x, tx, T), lb.conditional_probability_alive(x, tx, T)),
        (pn.expected_purchases(39, x, tx, T), lp.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T)),
        (pn.p_alive(x, tx, T), lp.conditional_probability_alive(x, tx, T)),
        (gg.expected_spend(x[x > 0], s["monetary"][x > 0]),
         lg.conditional_expected_average_profit(x[x > 0], s["monetary"][x > 0])),
        (bg.expected_purchases_new_customer(np.array([5.0, 39.0, 78.0])),
         lb.expected_number_of_purchases_up_to_time(np.array([5.0, 39.0, 78.0]))),
        (pn.expected_purchases_new_customer(np.array([5.0, 39.0, 78.0])),
         lp.expected_number_of_purchases_up_to_time(np.array([5.0, 39.0, 78.0]))),
    ]
    for ours, theirs in pairs:
        assert np.allclose(np.asarray(ours, float), np.asarray(theirs, float), rtol=1e-8)


def test_mbgnbd_agrees_with_lifetimes_on_cdnow(cdnow):
    """MBG/NBD (Batislam et al. 2007) against lifetimes' ModifiedBetaGeoFitter: the same maximum (lifetimes'
    own optimiser, on the same rows) and the same predictions at our estimate."""
    from lifetimes import ModifiedBetaGeoFitter

    _, s = cdnow
    ours = clv.fit_mbgnbd(s)
    x, tx, T = s["frequency"], s["recency"], s["T"]
    theirs = ModifiedBetaGeoFitter().fit(x, tx, T)
    np.testing.assert_allclose(ours.params, theirs.params_[["r", "alpha", "a", "b"]].to_numpy(), rtol=1e-3)
    data = (x.to_numpy(float), tx.to_numpy(float), T.to_numpy(float))
    assert math.isclose(ours.log_likelihood, float(clv.mbgnbd_ll(ours.params, *data).sum()), rel_tol=1e-10)
    their_ll = float(clv.mbgnbd_ll(theirs.params_[["r", "alpha", "a", "b"]].to_numpy(), *data).sum())
    assert ours.log_likelihood >= their_ll - 1e-6  # ours is no worse a maximum
    assert np.all(np.isfinite(ours.se)) and np.all(ours.se > 0)
    theirs.params_ = pd.Series(ours.as_dict())
    t = np.array([5.0, 39.0, 78.0])
    for mine, ref in ((ours.expected_purchases(39, x, tx, T), theirs.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T)),
                      (ours.p_alive(x, tx, T), theirs.conditional_probability_alive(x, tx, T)),
                      (ours.expected_purchases_new_customer(t), theirs.expected_number_of_purchases_up_to_time(t))):
        np.testing.assert_allclose(np.asarray(mine, float), np.asarray(ref, float), rtol=1e-8)
    # unlike BG/NBD, a customer with no repeat purchase may already be gone
    assert ours.p_alive(0, 0, 39.0) < 1


def test_mbgnbd_intervals_cover_planted_parameters():
    """Purchase histories drawn from MBG/NBD itself (synth.mbgnbd_customers): the 95% intervals cover each
    planted parameter in most of 30 draws (nominal 0.95, about +-0.04 per standard error) and centre on it."""
    from cxresearch.synth import mbgnbd_customers

    planted = np.array([0.8, 8.0, 0.6, 2.5])
    hits, estimates = np.zeros(4), []
    for seed in range(30):
        t = clv.fit_mbgnbd(mbgnbd_customers(*planted, n_customers=3000, T=52.0, seed=seed)).table()
        hits += (t["ci_low"] <= planted) & (planted <= t["ci_high"])
        estimates.append(t["estimate"].to_numpy())
    assert np.all(hits / 30 >= 0.8), hits / 30
    np.testing.assert_allclose(np.median(estimates, axis=0), planted, rtol=0.15)


def test_recovery_on_the_synthetic_world():
    paths = ensure_world(n_customers=20_000, seed=7)
    truth = load_truth(paths).purchases
    tx = clv.load_transactions(paths["transactions"], observation_end="2023-12-31", ledger=Ledger())
    s = clv.rfm_summary(tx.daily, "2023-06-30", "2023-12-31")
    for fit, planted in ((clv.fit_pareto_nbd, truth.pareto_nbd_params), (clv.fit_gamma_gamma, truth.gamma_gamma_params)):
        table = fit(s).table().set_index("parameter")
        for name, value in planted.items():
            est, se = table.at[name, "estimate"], table.at[name, "se"]
            assert abs(est - value) <= 4 * se, (name, est, value, se)


def test_clv_discounting_and_concentration(cdnow):
    _, s = cdnow
    pn, gg = clv.fit_pareto_nbd(s), clv.fit_gamma_gamma(s)
    undiscounted = clv.customer_values(pn, gg, s, 52, 0.0, 1.0)
    discounted = clv.customer_values(pn, gg, s, 52, 0.10, 1.0)
    expected = pn.expected_purchases(52, s["frequency"], s["recency"], s["T"])
    assert np.allclose(undiscounted["discounted_purchases"].to_numpy(), np.asarray(expected), rtol=1e-10)
    # computed on distinct rows, mapped back to each customer by position
    assert tuple(undiscounted.columns) == clv.VALUE_COLUMNS and undiscounted.index.equals(s.index)
    assert np.allclose(undiscounted["p_alive"], pn.p_alive(s["frequency"], s["recency"], s["T"]), rtol=1e-12)
    assert (discounted["clv"] <= undiscounted["clv"] + 1e-12).all()
    assert 0.9 < discounted["clv"].sum() / undiscounted["clv"].sum() < 0.97  # one year at 10%
    values = pd.Series([10.0] * 90 + [100.0] * 10)
    assert math.isclose(clv.top_share(values, 0.1), 1000 / 1900)


def test_rules_returns_zero_values_same_day_and_late_rows(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("client;when;value\nA;2024-01-01 10:00;10,5\nA;2024-01-01 18:00;4,5\nA;2024-01-03;-10\n"
                    "A;2024-01-05;0\nB;2024-01-02;7\nB;2024-03-01;8\n")
    ledger = Ledger()
    tx = clv.load_transactions(path, "client", "when", "value", observation_end="2024-02-01", ledger=ledger)
    ex = ledger.exclusions_frame().set_index("rule")["rows_excluded"]
    assert ex["amount below zero (returns)"] == 1 and ex["timestamp after the observation end (2024-02-01)"] == 1
    notes = {n["rule"]: n["rows"] for n in tx.notes}
    assert notes["purchases by the same customer on the same day merged into one"] == 1
    assert notes["zero-value purchases kept: they count as purchases, not as spend"] == 1
    s = clv.rfm_summary(tx.daily, "2024-02-01", time_unit="days")
    assert s.loc["A", "frequency"] == 1 and s.loc["A", "revenue"] == 15.0 and s.loc["A", "monetary"] == 0.0


def test_rfm_segments_cover_everyone(cdnow):
    _, s = cdnow
    rfm = clv.rfm_segments(s)
    assert rfm[["R", "F", "M"]].isin([1, 2, 3, 4, 5]).all().all()
    champions = rfm["segment"] == "champions"
    assert champions.any() and s.loc[champions, "frequency"].mean() > s["frequency"].mean()
    table = clv.segment_table(rfm, s["revenue"])
    assert math.isclose(table["share of customers"].sum(), 1.0) or table["customers"].sum() < len(s)


def test_satisfaction_verdict_follows_the_planted_link():
    """The notebook's path (inputs, models, chosen model, value, satisfaction) on worlds with and without the link."""
    verdict = {}
    for name, corr in (("strong", 0.9), ("none", 0.0)):
        source = sources.synthetic_world(["transactions", "customers", "survey_responses", "survey_items"],
                                         n_customers=8000, effects={"satisfaction_purchase_corr": corr})
        inputs = clv.load_inputs(source, Ledger())
        models = clv.fit_models(inputs.summary)
        fit = clv.holdout_check(models, inputs).fit
        value = clv.lifetime_value(fit, models.spend, inputs.summary, 52, 0.1, 0.3, "weeks", n_boot=20)
        verdict[name] = clv.satisfaction_check(value.values, inputs.survey, "sat_1", 4).claim.verdict
    assert verdict == {"strong": "supported", "none": "inconclusive"}


def test_pareto_nbd_intervals_cover_about_95_percent(tmp_path):
    from cxresearch.synth import make_world, write_world

    inside = []
    for seed in range(10):
        world = make_world(n_customers=4000, seed=500 + seed)
        paths = write_world(world, tmp_path / str(seed))
        tx = clv.load_transactions(paths["transactions"], observation_end="2023-12-31", ledger=Ledger())
        table = clv.fit_pareto_nbd(clv.rfm_summary(tx.daily, "2023-06-30", "2023-12-31")).table().set_index("parameter")
        inside += [table.at[k, "ci_low"] <= v <= table.at[k, "ci_high"]
                   for k, v in world.truth.purchases.pareto_nbd_params.items()]
    assert np.mean(inside) >= 0.8, np.mean(inside)  # 40 intervals; 95% expected


# ---------------------------------------------------------------------------------------------
# convergence, degenerate data, small groups, ties (issue 10)


@pytest.mark.parametrize("fit", [clv.fit_bgnbd, clv.fit_pareto_nbd, clv.fit_gamma_gamma])
def test_refits_agree_to_1e7_whatever_the_row_order_and_optimiser(cdnow, fit, monkeypatch):
    """The payload once differed in the 6th digit between machines: every route must land on one optimum."""
    from cxresearch.fits import FITS

    _, s = cdnow
    FITS.reset()
    base = fit(s).params
    assert FITS.fits[-1]["converged"] and "Newton polish" in FITS.fits[-1]["method"]
    shuffled = fit(s.sample(frac=1, random_state=7)).params
    assert np.allclose(base, shuffled, rtol=1e-7, atol=0)
    # force the later attempts (other start values, BFGS, Nelder-Mead): same optimum
    original = mle._optimise
    for skip in range(1, 4):
        calls = {"n": 0}

        def failing_first(*args, _skip=skip, _calls=calls):
            _calls["n"] += 1
            out = original(*args)
            if _calls["n"] <= _skip:
                out.problem = "forced failure"
            return out

        monkeypatch.setattr(mle, "_optimise", failing_first)
        assert np.allclose(base, fit(s).params, rtol=1e-7, atol=0), skip
        assert FITS.fits[-1]["failed_attempts"] and len(FITS.fits[-1]["failed_attempts"]) == skip


def test_degenerate_purchase_data_is_not_estimable():
    one = pd.DataFrame({"frequency": [2], "recency": [3.0], "T": [10.0], "monetary": [5.0]}, index=["a"])
    with pytest.raises(NotEstimable, match=r"Only 1 customer\(s\) made a first purchase"):
        clv.check_estimable(one)
    none = pd.DataFrame({"frequency": [0] * 20, "recency": [0.0] * 20, "T": np.arange(20.0), "monetary": [0.0] * 20})
    with pytest.raises(NotEstimable, match="None of the 20 customers bought more than once"):
        clv.check_estimable(none)
    with pytest.raises(NotEstimable, match="cannot be estimated: 0 of 20"):
        clv.fit_bgnbd(none)
    few = none.assign(frequency=[1, 2] + [0] * 18, monetary=[5.0, 7.0] + [0.0] * 18)
    with pytest.raises(NotEstimable, match=r"Only 2 customer\(s\) made repeat purchases with a positive amount"):
        clv.check_estimable(few, min_n=5)


def test_value_parameters_are_checked():
    clv.check_value_parameters(52, 0.0, 0.3)
    for bad in ((-1, 0.1, 0.3), (0, 0.1, 0.3), (52, -0.1, 0.3), (52, 0.1, 1.5), (float("inf"), 0.1, 0.3)):
        with pytest.raises(ParameterError):
            clv.check_value_parameters(*bad)


def test_small_groups_are_folded_and_ties_are_stable():
    values = pd.Series([1.0] * 20 + [2.0] * 3 + [5.0] * 10, index=[f"c{i}" for i in range(33)])
    labels = pd.Series(["north"] * 20 + ["tiny"] * 3 + ["south"] * 10, index=values.index)
    table = clv.value_by(values, labels, 5)
    assert "tiny" not in set(table["group"]) and table["customers"].min() >= 5
    assert table.attrs["folded"] and "tiny" in table.attrs["folded"]
    comparison = pd.DataFrame({"model": ["Pareto/NBD", "BG/NBD"], "AIC": [100.0, 100.0 + 1e-12]})
    assert clv.choose_model(comparison, has_holdout=False) == ("BG/NBD", "AIC")  # equal to 9 digits: by name
    s = pd.DataFrame({"frequency": [0] * 30 + [1] * 10 + [2] * 6 + [3] * 2 + [5], "recency": 1.0, "T": 10.0,
                      "holdout": 1})
    ce = clv.conditional_expectations(clv.ParetoNBDFit([0.5, 10.0, 0.6, 11.0]), s, 10.0, min_n=5)
    assert ce["customers"].min() >= 5 and list(ce["calibration purchases"]) == ["0", "1", "2+"]


def test_spend_assumption_verdict_from_the_interval():
    assert clv.spend_independence({"ci_low": -0.05, "ci_high": 0.08}).startswith("holds")
    assert clv.spend_independence({"ci_low": 0.2, "ci_high": 0.4}).startswith("is questionable")
    assert clv.spend_independence({"ci_low": -0.2, "ci_high": 0.4}).startswith("cannot be confirmed")
    assert clv.spend_independence({"ci_low": float("nan"), "ci_high": 0.4}) is None


# ---------------------------------------------------------------------------------------------
# plain words, units and figures (issue 11)




def test_claims_carry_units_meanings_and_item_labels(clean_labels):
    from cxresearch import display

    values = pd.Series(np.r_[np.full(20, 100.0), np.full(80, 1.0)])
    top = clv.concentration_claim(values, 0.96, (0.9, 0.98))
    assert top.unit == "share" and "96.0% of all lifetime value" in top.meaning and top.verdict == "supported"
    display.use_labels({"sat_1": "Overall I am satisfied"})
    gap = pd.DataFrame({"measure": ["clv", "expected_purchases"], "satisfied": [60.0, 2.0], "others": [48.0, 1.5],
                        "n_satisfied": [40, 40], "n_others": [30, 30], "difference": [12.3, 0.5],
                        "ci_low": [4.0, 0.1], "ci_high": [20.0, 0.9], "p_value": [0.004, 0.02]})
    sat = clv.satisfaction_claim(gap, "sat_1", 4, 100, "EUR")
    assert sat.unit == "money" and sat.verdict == "supported" and sat.n == 30 and sat.p_value == 0.004
    assert "“Overall I am satisfied”" in sat.test and not RAW.search(sat.test)
    assert sat.meaning == "Positive: a satisfied customer is worth 12 EUR more on average than the others."
    assert clv.satisfaction_claim(None, "sat_1", 4, 100).unit == "money"
    shown = repr(display.table(clv.gap_table(gap, "EUR")))
    assert "lifetime value (EUR)" in shown and "expected purchases" in shown and not RAW.search(shown)


def test_money_tables_name_the_currency_and_parameters_stay_parameters(cdnow, clean_labels):
    from cxresearch import display

    _, s = cdnow
    gg = clv.fit_gamma_gamma(s)
    shown = repr(display.table(clv.parameter_table(gg)))
    assert "p-value" not in shown  # the spend model's p is a parameter, not a p-value
    assert "p — spend per purchase" in shown and "standard error" in shown
    by = clv.value_by(pd.Series(np.arange(40.0)), pd.Series(["a", "b"] * 20), 5)
    assert list(clv.value_display(by, "channel", "USD").columns) == [
        "channel", "customers", "mean lifetime value (USD)", "total lifetime value (USD)"]
    exclusions = pd.DataFrame({"table": ["transactions"] * 3, "rule": [
        "customer_id not found in the customers table", "amount below zero (returns)",
        "timestamp after the observation end (2024-02-01)"], "rows_excluded": [2, 1, 0]})
    rules = clv.rules_table(exclusions, [{"rule": "purchases by the same customer on the same day merged into one",
                                          "rows": 3}])
    assert list(rules["rule"]) == ["purchases by customers missing from the customer table",
                                   "purchases with an amount below zero (returns)",
                                   "purchases after the observation end (2024-02-01)",
                                   "purchases by the same customer on the same day merged into one"]


def test_tracking_leaves_a_partial_last_period_out_of_the_weekly_plot(cdnow):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tx, s = cdnow
    fit = clv.fit_pareto_nbd(s)
    track = clv.tracking(fit, s, clv.repeat_purchases(tx.daily, s), "1997-09-30", "1998-06-30")
    assert int(track["actual"].sum()) == int(s["frequency"].sum() + s["holdout"].sum())  # every repeat purchase
    assert track["complete"].all()  # 1997-01-01 to 1998-06-30 is exactly 78 weeks
    track = clv.tracking(fit, s, clv.repeat_purchases(tx.daily, s), "1997-09-30", "1998-06-26")
    assert not track["complete"].iloc[-1] and track["complete"].iloc[:-1].all()  # 1998-06-26 ends mid-week
    assert track["period_start"].iloc[-1] + pd.Timedelta(days=7) > pd.Timestamp("1998-06-27")
    ax = clv.plot_tracking(track, "Pareto/NBD", cumulative=False)
    assert len(ax.get_lines()[0].get_xdata()) == len(track) - 1
    assert ax.get_ylabel() == "repeat purchases per week"
    plt.close("all")


def test_figures_show_money_percent_and_whole_counts(cdnow, clean_labels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cxresearch import display

    _, s = cdnow
    display.use_labels({"champions": "Champions"})
    table = clv.segment_table(clv.rfm_segments(s), s["revenue"])
    ax = clv.plot_segments(table, currency="USD")
    assert "Champions" in [t.get_text() for t in ax.get_yticklabels()]
    money = [t.get_text() for t in ax.texts]
    assert len(money) == len(table) and all(m.endswith(" USD") for m in money)
    assert ax.xaxis.get_major_formatter()(50, 0) == "50%" and ax.get_legend() is not None
    plt.close("all")
    fit = clv.fit_pareto_nbd(s)
    grid = clv.p_alive_grid(fit, s)
    assert grid.p_alive.shape == (21, 60) and grid.T == float(s["T"].max()) and grid.crosses_half
    assert np.allclose(grid.p_alive[3], fit.p_alive(3, grid.recency, grid.T))
    ax = clv.plot_p_alive_matrix(grid)
    assert all(float(t).is_integer() for t in ax.get_yticks())
    assert "weeks" in ax.get_xlabel() and "weeks ago" in ax.get_title()
    plt.close("all")
    lorenz = clv.lorenz_curve(pd.Series(np.arange(1.0, 101.0)))
    assert math.isclose(lorenz.points[0.1], sum(range(91, 101)) / 5050) and lorenz.value[-1] == 1.0
    many = pd.Series(np.random.default_rng(1).lognormal(size=10_000))
    full, thin = clv.lorenz_curve(many, points=20_000), clv.lorenz_curve(many, points=101)
    assert len(full.value) == 10_001 and len(thin.value) == 101 and thin.points == full.points
    assert np.allclose(thin.value, np.interp(thin.customers, full.customers, full.value), rtol=1e-12)
    ax = clv.plot_lorenz(lorenz)
    assert ax.xaxis.get_major_formatter()(20, 0) == "20%" and ax.get_legend() is not None
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# fitted models as objects, sources in, claims out (issue 12)


def test_an_unknown_model_name_raises_instead_of_falling_back():
    params = [0.243, 4.414, 0.793, 2.426]
    with pytest.raises(ValueError, match="unknown model 'BG-NBD'"):
        clv.model_fit("BG-NBD", params)
    bg = clv.model_fit("BG/NBD", params)
    assert isinstance(bg, clv.BetaGeoFit) and bg.key == "bgnbd"
    pn = clv.model_fit("Pareto/NBD", params)
    assert not np.allclose(bg.p_alive([2, 5], [10.0, 20.0], [30.0, 30.0]), pn.p_alive([2, 5], [10.0, 20.0], [30.0, 30.0]))
    with pytest.raises(ValueError, match="has 3 parameters"):
        clv.GammaGammaFit(params)


def test_fits_carry_standard_errors_aic_and_the_optimiser_record(cdnow):
    from cxresearch.fits import FITS

    _, s = cdnow
    FITS.reset()
    bg = clv.fit_bgnbd(s)
    assert isinstance(bg, clv.PurchaseFit) and bg.n == len(s) and bg.method == FITS.fits[-1]["method"]
    assert bg.failed_attempts == () and "Newton polish" in bg.method
    assert math.isclose(bg.aic, 8 - 2 * bg.log_likelihood)
    assert list(bg.table()["parameter"]) == ["r", "alpha", "a", "b"]
    known = clv.BetaGeoFit(bg.params)  # parameters alone predict the same
    assert np.allclose(known.p_alive(s["frequency"], s["recency"], s["T"]), bg.p_alive(s["frequency"], s["recency"], s["T"]))
    assert np.isnan(known.se).all() and np.isnan(known.log_likelihood)


def test_the_loader_takes_a_source_its_dates_and_an_explicit_ledger():
    ledger = Ledger()
    inputs = clv.load_inputs(sources.cdnow(), ledger)
    assert str(inputs.calibration_end.date()) == "1997-09-30" and str(inputs.holdout_end.date()) == "1998-06-30"
    assert inputs.currency == "USD" and len(inputs.summary) == 2357
    assert math.isclose(inputs.holdout_length, 273 / 7) and inputs.customers is None
    assert len(ledger.inputs) == 1 and set(ledger.exclusions_frame()["rule"]) == {
        "amount below zero (returns)", "timestamp after the observation end (1998-06-30)"}
    assert clv.load_inputs(sources.cdnow(), Ledger(), currency="EUR", calibration_end="1997-12-31").holdout_end is None
    with pytest.raises(ParameterError, match="No transaction log"):
        clv.load_inputs(sources.from_files({"customers": "c.csv"}), Ledger())


def test_the_loader_on_the_synthetic_world_and_on_a_users_file(tmp_path):
    source = sources.synthetic_world(["transactions", "customers", "survey_responses", "survey_items"])
    inputs = clv.load_inputs(source, Ledger())
    assert inputs.currency == "RUB" and inputs.has_holdout
    assert inputs.customers is not None and inputs.survey is not None and inputs.item_labels is not None
    path = tmp_path / "tx.csv"
    pd.read_csv(source.paths["transactions"]).head(3000).rename(columns={"customer_id": "client"}).to_csv(path,
                                                                                                          index=False)
    mine = clv.load_inputs(sources.from_files({"transactions": path}), Ledger(), customer_col="client")
    assert mine.currency == "" and not mine.has_holdout


def test_tables_for_the_notebook():
    assert clv.tables("cdnow") is None  # the notebook takes the CDNOW sample from cxresearch.sources
    assert clv.tables("synthetic") == dict.fromkeys(["transactions", "customers", "survey_responses", "survey_items"])
    assert clv.tables("cdnow", "tx.csv") == {"transactions": "tx.csv", "customers": None, "survey_responses": None}
    with pytest.raises(ParameterError, match=r"dataset must be one of \['cdnow', 'donations', 'fader_hardie', "):
        clv.tables("cdnw")
    with pytest.raises(ParameterError, match="customers_path needs -p transactions_path"):
        clv.tables("synthetic", customers_path="customers.csv")


def test_tables_of_each_setting():
    """Each setting reads its own tables; a data set or file of another setting is refused, naming the fix."""
    assert clv.tables(setting="contractual") == {"customers": None}
    assert clv.tables("fader_hardie", setting="contractual") is None  # from cxresearch.sources.builtin
    assert clv.tables(setting="contractual", retention_path="r.csv") == {"retention": "r.csv"}
    assert clv.tables(setting="contractual", customers_path="c.csv") == {"customers": "c.csv"}
    assert clv.tables(setting="discrete") == {"transactions": None}
    assert clv.tables("donations", setting="discrete") is None
    assert clv.tables(transactions_path="t.csv", setting="discrete") == {"transactions": "t.csv"}
    with pytest.raises(ParameterError, match="belongs to the contractual setting.*-p setting contractual"):
        clv.tables("fader_hardie")
    with pytest.raises(ParameterError, match="retention_path is not read in the noncontractual setting"):
        clv.tables(retention_path="r.csv")
    with pytest.raises(ParameterError, match="transactions_path is not read in the contractual setting"):
        clv.tables(transactions_path="t.csv", setting="contractual")
    with pytest.raises(ParameterError, match="either -p retention_path .* or -p customers_path"):
        clv.tables(setting="contractual", retention_path="r.csv", customers_path="c.csv")
    with pytest.raises(ParameterError, match="setting must be one of"):
        clv.tables(setting="subscription")
    assert sources.builtin("fader_hardie").defaults["time_unit"] == "years" and sources.builtin("synthetic") is None
    assert clv.period_of("contractual", None, None) == "months"
    assert clv.period_of("discrete", None, sources.builtin("donations")) == "years"
    assert clv.period_of("discrete", "weeks", sources.builtin("donations")) == "weeks"


def test_value_parameters_of_the_contractual_and_discrete_settings():
    clv.check_value_parameters(52, 0.1, 0.3, None, "contractual", 1500.0)
    with pytest.raises(ParameterError, match="discount_rate must be above 0 in the discrete setting"):
        clv.check_value_parameters(52, 0.0, 0.3, None, "discrete")
    with pytest.raises(ParameterError, match="value_per_period must be a number above 0"):
        clv.check_value_parameters(52, 0.1, 0.3, None, "contractual", -5.0)
    with pytest.raises(ParameterError, match="values_path is written by the non-contractual setting only"):
        clv.check_value_parameters(52, 0.1, 0.3, "v.parquet", "contractual")


def test_top_share_bootstrap_counts_failed_replicates():
    values = pd.Series(np.random.default_rng(3).gamma(0.5, 100.0, 400))
    boot = clv.bootstrap_top_share(values, 0.2, n_boot=200, seed=1)
    rng, v, draws = np.random.default_rng(1), values.to_numpy(), []
    for _ in range(200):  # the loop it replaces: same resamples, same interval
        s = np.sort(rng.choice(v, len(v)))[::-1]
        draws.append(s[:80].sum() / s.sum())
    # same resamples; the top values are summed in another order (np.partition), so equal to rounding
    assert (boot.ci_low, boot.ci_high) == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])), rel=1e-12)
    assert boot.failed == 0
    zero = clv.bootstrap_top_share(pd.Series(np.zeros(50)), 0.2, n_boot=20)
    assert zero.failed == 20 and zero.problem and math.isnan(zero.ci_low)


def test_lifetime_value_claims_and_checks_are_typed(cdnow):
    from cxresearch.stats import Claim, fisher_z_interval

    _, s = cdnow
    pn, gg = clv.fit_pareto_nbd(s), clv.fit_gamma_gamma(s)
    value = clv.lifetime_value(pn, gg, s, 52, 0.1, 0.3, n_boot=50)
    assert isinstance(value.claim, Claim) and value.claim.id == "value_is_concentrated"
    assert value.top20_ci.ci_low <= value.top20 <= value.top20_ci.ci_high and value.top10_ci.n_boot == 50
    assert math.isclose(value.lorenz.points[0.2], value.top20) and 0 < value.share_likely_active < 1
    assert "{caveat}" not in value.sentence("USD")["template"]
    spend = clv.spend_check(s)
    c = spend.correlation
    assert (c["ci_low"], c["ci_high"]) == fisher_z_interval(c["estimate"], c["n"]) and "p_value" in c
    assert spend.sentence["template"].startswith("Correlation of purchase frequency")
    assert isinstance(clv.referral_claim(10), Claim)
    sat = clv.satisfaction_check(value.values, None, "sat_1", 4)
    assert sat.table is None and sat.claim.verdict == "not testable" and sat.reason is not None


def test_a_warm_start_and_the_value_hessian_reach_the_same_pareto_nbd_fit(cdnow, monkeypatch):
    """Many distinct rows: Newton from a subsample's estimate, with the Hessian from function values, ends at
    the same maximum as the full L-BFGS path, with the same standard errors."""
    _, summary = cdnow
    plain = clv.fit_pareto_nbd(summary)
    rows = len(clv.compress(summary))
    monkeypatch.setattr(clv, "WARM_START_ROWS", rows // 2)  # CDNOW's distinct rows count as many: every 2nd
    warm = clv.fit_pareto_nbd(summary)
    assert warm.method.startswith("from the estimate on a subsample")
    np.testing.assert_allclose(warm.params, plain.params, rtol=1e-6)
    np.testing.assert_allclose(warm.se, plain.se, rtol=1e-4)
    x = np.log(plain.params)
    c = clv.compress(summary)
    data = (c["frequency"].to_numpy(float), c["recency"].to_numpy(float), c["T"].to_numpy(float))

    def value(p):
        return float(-np.sum(c["weight"].to_numpy(float) * clv.pareto_nbd_ll(np.exp(p), *data)))

    by_values = mle.value_hessian(value, x)
    by_gradient = mle._hessian(lambda p: mle.five_point_gradient(value, p), x)
    np.testing.assert_allclose(by_values, by_gradient, rtol=1e-4, atol=1e-3 * np.abs(by_gradient).max())
