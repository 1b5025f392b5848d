"""Property-based tests (hypothesis) of two analysis steps: same-day merging of purchases before the RFM
summary (:func:`cxresearch.clv.merge_same_day`, :func:`cxresearch.clv.rfm_summary`) and raking
(:func:`cxresearch.survey.rake`, :func:`cxresearch.survey.weighting`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxresearch import clv, survey
from cxresearch.fits import FITS
from cxresearch.io import InputError
from cxresearch.stats import kish_n

FAST = settings(max_examples=100, deadline=None)
BASE = pd.Timestamp("2023-01-01")
SPAN_DAYS = 90


@pytest.fixture(autouse=True, scope="module")
def _keep_fit_log():
    """rake() records every fit in the global FITS log: leave it as this module found it."""
    before = list(FITS.fits)
    yield
    FITS.fits[:] = before


# ---------------------------------------------------------------------------------------------
# same-day merging and the RFM summary


@st.composite
def transaction_logs(draw, min_size: int = 1) -> pd.DataFrame:
    """A raw purchase log as load_transactions hands it on: timestamp (with time of day), date (its day),
    amount >= 0 in cents, customer ids of one kind (all text or all integers), many same-day repeats."""
    ids = draw(st.sampled_from([["c01", "c02", "c10", "b7", "z"], [1, 2, 3, 10, 42]]))
    n = draw(st.integers(min_value=min_size, max_value=40))
    rows = draw(st.lists(st.tuples(st.sampled_from(ids), st.integers(0, SPAN_DAYS), st.integers(0, 86_399),
                                   st.integers(0, 500_000)), min_size=n, max_size=n))
    df = pd.DataFrame(rows, columns=["customer_id", "day", "second", "cents"])
    ts = BASE + pd.to_timedelta(df["day"], unit="D") + pd.to_timedelta(df["second"], unit="s")
    out = pd.DataFrame({"customer_id": df["customer_id"], "timestamp": ts, "amount": df["cents"] / 100})
    out["date"] = out["timestamp"].dt.normalize()
    return out


def _assert_same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_exact=False, rtol=1e-12, atol=1e-9)


@FAST
@given(transaction_logs())
def test_merging_keeps_each_customers_total_and_leaves_one_row_per_customer_and_day(tx):
    daily = clv.merge_same_day(tx)
    assert list(daily.columns) == ["customer_id", "date", "amount"]
    # one row per (customer, day), and exactly the (customer, day) pairs of the log
    pairs = list(zip(daily["customer_id"], daily["date"], strict=True))
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == set(zip(tx["customer_id"], tx["date"], strict=True))
    assert len(daily) == tx.groupby(["customer_id", "date"]).ngroups
    # every date is a whole day, and the rows are sorted by customer, then date
    assert (daily["date"] == daily["date"].dt.normalize()).all()
    assert daily.equals(daily.sort_values(["customer_id", "date"], kind="stable"))
    # money is neither created nor lost: per customer and per (customer, day)
    want = tx.groupby("customer_id")["amount"].sum()
    got = daily.groupby("customer_id")["amount"].sum()
    pd.testing.assert_series_equal(got, want, check_exact=False, rtol=1e-12, atol=1e-9)
    per_day = tx.groupby(["customer_id", "date"])["amount"].sum()
    np.testing.assert_allclose(daily.set_index(["customer_id", "date"])["amount"].reindex(per_day.index),
                               per_day, rtol=1e-12, atol=1e-9)
    assert math.isclose(daily["amount"].sum(), tx["amount"].sum(), rel_tol=1e-12, abs_tol=1e-9)


@FAST
@given(transaction_logs())
def test_merging_is_idempotent(tx):
    once = clv.merge_same_day(tx)
    twice = clv.merge_same_day(once)
    _assert_same_frame(twice, once)


@FAST
@given(transaction_logs(), st.randoms(use_true_random=False))
def test_merging_does_not_depend_on_row_order(tx, rnd):
    order = list(range(len(tx)))
    rnd.shuffle(order)
    shuffled = tx.iloc[order]
    _assert_same_frame(clv.merge_same_day(shuffled), clv.merge_same_day(tx))
    # also with a shuffled, non-default index (as after the exclusions of read_table)
    _assert_same_frame(clv.merge_same_day(shuffled.reset_index(drop=True).set_axis(np.array(order) * 7 + 3)),
                       clv.merge_same_day(tx))


def test_merging_an_empty_log_gives_an_empty_table():
    empty = pd.DataFrame({"customer_id": pd.Series([], dtype=object), "timestamp": pd.to_datetime([]),
                          "amount": pd.Series([], dtype=float), "date": pd.to_datetime([])})
    out = clv.merge_same_day(empty)
    assert out.empty and list(out.columns) == ["customer_id", "date", "amount"]


@FAST
@given(transaction_logs(), st.integers(0, SPAN_DAYS), st.one_of(st.none(), st.integers(0, 60)),
       st.sampled_from(sorted(clv.UNIT_DAYS)))
def test_rfm_summary_of_merged_purchases_counts_purchase_days(tx, cal_day, holdout_days, unit):
    # at least one purchase by the calibration end, as check_periods guarantees before rfm_summary runs
    cal_end = max(BASE + pd.Timedelta(days=cal_day), tx["date"].min())
    hold_end = None if holdout_days is None else cal_end + pd.Timedelta(days=holdout_days)
    s = clv.rfm_summary(clv.merge_same_day(tx), cal_end, hold_end, unit)
    u = clv.UNIT_DAYS[unit]

    cal = tx[tx["date"] <= cal_end]
    days = cal.groupby("customer_id")["date"]
    # only customers with a purchase by the calibration end, each once
    assert s.index.is_unique and set(s.index) == set(cal["customer_id"])
    s = s.loc[days.size().index]
    # frequency = distinct purchase days (not purchases) minus one
    assert (s["frequency"].to_numpy() == days.nunique().to_numpy() - 1).all()
    assert (s["frequency"] >= 0).all()
    # recency and T: days from the first purchase, 0 <= recency <= T
    first, last = days.min(), days.max()
    np.testing.assert_allclose(s["recency"], (last - first).dt.days / u, rtol=1e-12)
    np.testing.assert_allclose(s["T"], (cal_end - first).dt.days / u, rtol=1e-12)
    assert (s["recency"] >= 0).all() and (s["recency"] <= s["T"]).all()
    assert ((s["frequency"] == 0) <= (s["recency"] == 0)).all()  # a one-day customer has recency 0
    assert ((s["frequency"] > 0) <= (s["recency"] > 0)).all()  # repeat days lie after the first
    # revenue = everything bought in the calibration period; monetary = mean of the repeat days
    revenue = cal.groupby("customer_id")["amount"].sum()
    np.testing.assert_allclose(s["revenue"], revenue, rtol=1e-12, atol=1e-9)
    first_day_spend = cal[cal["date"] == cal["customer_id"].map(first)].groupby("customer_id")["amount"].sum()
    repeat = (revenue - first_day_spend) / s["frequency"].clip(lower=1)
    np.testing.assert_allclose(s["monetary"], repeat.where(s["frequency"] > 0, 0.0), rtol=1e-9, atol=1e-9)
    if hold_end is None:
        assert "holdout" not in s
    else:
        later = tx[(tx["date"] > cal_end) & (tx["date"] <= hold_end)]
        want = later.groupby("customer_id")["date"].nunique().reindex(s.index, fill_value=0)
        assert (s["holdout"].to_numpy() == want.to_numpy()).all()
        spend = later.groupby("customer_id")["amount"].sum().reindex(s.index, fill_value=0.0)
        np.testing.assert_allclose(s["holdout_revenue"], spend, rtol=1e-12, atol=1e-9)


@FAST
@given(transaction_logs(), st.integers(0, SPAN_DAYS), st.randoms(use_true_random=False))
def test_rfm_summary_does_not_depend_on_row_order(tx, cal_day, rnd):
    daily = clv.merge_same_day(tx)
    order = list(range(len(daily)))
    rnd.shuffle(order)
    cal_end = max(BASE + pd.Timedelta(days=cal_day), daily["date"].min())
    a = clv.rfm_summary(daily, cal_end, cal_end + pd.Timedelta(days=30))
    b = clv.rfm_summary(daily.iloc[order], cal_end, cal_end + pd.Timedelta(days=30))
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("daily", [
    pd.DataFrame({"customer_id": ["c01"], "date": pd.to_datetime(["2023-01-02"]), "amount": [0.0]}),
    clv.merge_same_day(pd.DataFrame({"customer_id": pd.Series([], dtype=object), "date": pd.to_datetime([]),
                                     "amount": pd.Series([], dtype=float)})),
], ids=["first-purchase-after-calibration-end", "empty-log"])
def test_rfm_summary_without_calibration_purchases_is_empty(daily):
    s = clv.rfm_summary(daily, "2023-01-01", "2023-02-01")
    assert s.empty and {"frequency", "recency", "T", "monetary", "holdout"} <= set(s.columns)


# ---------------------------------------------------------------------------------------------
# raking

DOCUMENTED_TOL = 1e-9  # rake(): "converged when every weighted share is within 1e-9 of its target"


@st.composite
def raking_problems(draw, full_cross: bool = True):
    """Respondents with two categorical variables and feasible margins.

    ``full_cross``: every combination of levels has respondents, so any positive margins can be met;
    otherwise only some combinations have respondents and the margins are those of a positive population
    on exactly these combinations (feasible by construction).
    """
    na = draw(st.integers(2, 4))
    nb = draw(st.integers(2, 3))
    a_levels = [f"a{i}" for i in range(na)]
    b_levels = draw(st.sampled_from([[f"b{j}" for j in range(nb)], list(range(1, nb + 1))]))  # text or numbers
    cells = [(i, j) for i in range(na) for j in range(nb)]
    if not full_cross:
        # keep a connected subset that still covers every level: a "staircase" plus random extra cells
        chosen = {(i, min(i, nb - 1)) for i in range(na)} | {(na - 1, j) for j in range(nb)}
        extra = draw(st.lists(st.sampled_from(cells), max_size=len(cells)))
        cells = sorted(chosen | set(extra))
    counts = draw(st.lists(st.integers(1, 12), min_size=len(cells), max_size=len(cells)))
    rows = [(a_levels[i], b_levels[j]) for (i, j), k in zip(cells, counts, strict=True) for _ in range(k)]
    df = pd.DataFrame(rows, columns=["segment", "region"])
    mass = draw(st.lists(st.integers(1, 20), min_size=len(cells), max_size=len(cells)))
    if full_cross:
        sa = draw(st.lists(st.integers(1, 20), min_size=na, max_size=na))
        sb = draw(st.lists(st.integers(1, 20), min_size=nb, max_size=nb))
        ma = pd.Series(sa, index=a_levels, dtype=float)
        mb = pd.Series(sb, index=b_levels, dtype=float)
    else:
        pop = pd.DataFrame([(a_levels[i], b_levels[j], m) for (i, j), m in zip(cells, mass, strict=True)],
                           columns=["segment", "region", "mass"])
        ma = pop.groupby("segment")["mass"].sum().astype(float)
        mb = pop.groupby("region")["mass"].sum().astype(float)
    scale = draw(st.sampled_from([1.0, 0.01, 1000.0]))  # shares, percentages or counts
    return df, {"segment": ma * scale, "region": mb * scale}


def _weighted_shares(df: pd.DataFrame, w: np.ndarray, v: str) -> pd.Series:
    return pd.Series(w).groupby(df[v].astype(str).to_numpy()).sum() / w.sum()


def _assert_margins_met(df, margins, w, tol=DOCUMENTED_TOL):
    for v, m in margins.items():
        target = (m / m.sum()).rename(index=str)
        got = _weighted_shares(df, w, v).reindex(target.index, fill_value=0.0)
        assert np.max(np.abs(got.to_numpy() - target.to_numpy())) < tol, (v, got, target)


@FAST
@given(st.one_of(raking_problems(full_cross=True), raking_problems(full_cross=False)))
def test_raking_meets_every_margin_with_positive_weights_of_mean_one(problem):
    df, margins = problem
    rk = survey.rake(df, margins)
    w = rk.weights
    assert w.shape == (len(df),) and np.isfinite(w).all()
    assert (w > 0).all()
    assert math.isclose(w.mean(), 1.0, rel_tol=1e-12)
    assert rk.max_error < DOCUMENTED_TOL and rk.iterations >= 1
    _assert_margins_met(df, margins, w)
    # respondents in the same cell get the same weight (raking weights are a product of level factors)
    cell_spread = pd.Series(w).groupby([df["segment"].to_numpy(), df["region"].astype(str).to_numpy()]).agg(np.ptp)
    assert (cell_spread <= 1e-9 * w.max()).all()


@FAST
@given(st.one_of(raking_problems(full_cross=True), raking_problems(full_cross=False)))
def test_design_effect_is_at_least_one_and_is_kish(problem):
    df, margins = problem
    rk = survey.rake(df, margins)
    n = len(df)
    assert rk.design_effect >= 1 - 1e-12
    assert math.isclose(rk.effective_n, kish_n(rk.weights), rel_tol=1e-9)
    assert math.isclose(rk.design_effect, n / kish_n(rk.weights), rel_tol=1e-9)
    assert 1 - 1e-9 <= rk.effective_n <= n * (1 + 1e-12)


@FAST
@given(raking_problems(full_cross=False), st.randoms(use_true_random=False))
def test_raking_does_not_depend_on_row_order(problem, rnd):
    df, margins = problem
    order = list(range(len(df)))
    rnd.shuffle(order)
    w = survey.rake(df, margins).weights
    w_shuffled = survey.rake(df.iloc[order].reset_index(drop=True), margins).weights
    np.testing.assert_allclose(w_shuffled, w[order], rtol=1e-7)


@FAST
@given(raking_problems(full_cross=False))
def test_raking_does_not_depend_on_the_order_of_variables_or_levels(problem):
    df, margins = problem
    w = survey.rake(df, margins).weights
    reordered = {"region": margins["region"].iloc[::-1], "segment": margins["segment"].iloc[::-1]}
    np.testing.assert_allclose(survey.rake(df, reordered).weights, w, rtol=1e-6)


@FAST
@given(raking_problems(full_cross=False), st.floats(min_value=1e-3, max_value=1e6))
def test_margins_as_counts_or_shares_give_the_same_weights(problem, factor):
    df, margins = problem
    w = survey.rake(df, margins).weights
    scaled = {v: m * factor for v, m in margins.items()}
    np.testing.assert_allclose(survey.rake(df, scaled).weights, w, rtol=1e-9)


@FAST
@given(raking_problems(full_cross=False))
def test_a_sample_that_already_matches_the_margins_keeps_equal_weights(problem):
    df, _ = problem
    margins = {v: df[v].value_counts().astype(float) for v in ("segment", "region")}
    rk = survey.rake(df, margins)
    np.testing.assert_allclose(rk.weights, 1.0, rtol=0, atol=1e-9)
    assert math.isclose(rk.design_effect, 1.0, abs_tol=1e-12)
    assert math.isclose(rk.effective_n, len(df), rel_tol=1e-12)


@FAST
@given(raking_problems(full_cross=True), st.integers(0, 3))
def test_a_level_with_a_population_share_but_no_respondents_is_refused(problem, drop):
    df, margins = problem
    level = margins["segment"].index[drop % len(margins["segment"])]
    with pytest.raises(InputError, match="no respondents"):
        survey.rake(df[df["segment"] != level], margins)


@FAST
@given(raking_problems(full_cross=True))
def test_a_respondent_value_missing_from_the_margins_is_refused(problem):
    df, margins = problem
    with pytest.raises(InputError, match="margins do not list"):
        survey.rake(df, {"segment": margins["segment"].iloc[1:], "region": margins["region"]})


@settings(max_examples=60, deadline=None)
@given(raking_problems(full_cross=True), st.integers(1, 15))
def test_weighting_reports_shares_that_meet_the_targets_after_folding_small_levels(problem, min_n):
    df, margins = problem
    wt = survey.weighting(df, margins, min_n=min_n)
    assert wt.source == "raking" and wt.raking is not None
    w = wt.weights
    assert (w > 0).all() and math.isclose(w.mean(), 1.0, rel_tol=1e-12)
    check = wt.check
    assert set(check["variable"]) == {"segment", "region"}
    assert np.max(np.abs(check["weighted"] - check["target"])) < DOCUMENTED_TOL
    for v in ("segment", "region"):
        part = check[check["variable"] == v]
        assert math.isclose(part["target"].sum(), 1.0, rel_tol=1e-12)
        assert math.isclose(part["weighted"].sum(), 1.0, rel_tol=1e-12)
        shown = set(part["level"])
        counts = df[v].astype(str).value_counts()
        folded = set(wt.folded.get(v, []))
        # every shown level other than the folded group holds at least min_n respondents
        assert all(counts[lvl] >= min_n for lvl in shown - {survey.OTHER})
        assert folded.isdisjoint(shown)
        assert (shown - {survey.OTHER}) | folded == set(counts.index)
        assert (survey.OTHER in shown) == bool(folded)
