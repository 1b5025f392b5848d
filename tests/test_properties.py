"""Property-based tests (hypothesis) of the parsers and core statistics: invariants over many inputs."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from cxresearch import stats
from cxresearch.io import parse_dates, parse_number

FAST = settings(max_examples=150, deadline=None)
money = st.decimals(min_value=-10**7, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)


def russian(x) -> str:
    """1234567.5 as a Russian export writes it: '1 234 567,50'."""
    sign = "-" if x < 0 else ""
    whole, frac = f"{abs(x):.2f}".split(".")
    groups = f"{int(whole):,}".replace(",", "\u00a0")
    return f"{sign}{groups},{frac}"


@FAST
@given(st.lists(money, min_size=1, max_size=20))
def test_numbers_round_trip_in_every_written_form(values):
    expected = np.array([float(v) for v in values])
    for written in ([f"{v:.2f}" for v in values],                 # 1234.50
                    [russian(v) for v in values],                  # 1 234,50
                    [f"{v:,.2f}" for v in values],                 # 1,234.50
                    [f"{v:,.2f}".replace(",", " ").replace(".", ",") for v in values]):  # 1 234,50
        got = parse_number(pd.Series(written, dtype=object)).to_numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, err_msg=str(written[:3]))


@FAST
@given(st.lists(st.integers(min_value=1000, max_value=999_999), min_size=1, max_size=10))
def test_a_bare_thousands_comma_is_never_guessed(values):
    # "1,250" alone could be 1250 or 1.25: parsed as missing (the reader refuses it), never as a number
    written = pd.Series([f"{v // 1000},{v % 1000:03d}" for v in values], dtype=object)
    assert parse_number(written).isna().all()


@FAST
@given(st.lists(st.dates(min_value=pd.Timestamp("1950-01-01").date(), max_value=pd.Timestamp("2150-12-31").date()),
                min_size=1, max_size=15))
def test_dates_round_trip_in_iso_and_russian_form(dates):
    expected = pd.to_datetime(pd.Series(dates))
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        got = parse_dates(pd.Series([d.strftime(fmt) for d in dates], dtype=object))
        assert (got.reset_index(drop=True) == expected.reset_index(drop=True)).all(), fmt


@FAST
@given(st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=1, max_size=30))
def test_holm_equals_statsmodels_and_keeps_the_order(p):
    adjusted = stats.holm(p)
    with mock.patch("gc.collect"):  # multipletests collects garbage on every call: 0.3 s in a test process
        reference = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(adjusted, reference, rtol=0, atol=1e-12)
    assert (adjusted >= np.asarray(p) - 1e-15).all() and (adjusted <= 1).all()
    order = np.argsort(p, kind="stable")
    assert (np.diff(adjusted[order]) >= -1e-15).all()  # a smaller p never gets a larger adjusted p


@FAST
@given(st.integers(min_value=1, max_value=5000), st.data())
def test_wilson_interval_equals_statsmodels_and_holds_the_share(n, data):
    k = data.draw(st.integers(min_value=0, max_value=n))
    lo, hi = stats.wilson_interval(k, n)
    ref = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert lo == pytest.approx(ref[0], abs=1e-12) and hi == pytest.approx(ref[1], abs=1e-12)
    assert 0 <= lo <= k / n <= hi <= 1


@FAST
@given(st.floats(min_value=-0.99, max_value=0.99), st.integers(min_value=4, max_value=10_000))
def test_fisher_z_interval_contains_r_and_narrows_with_n(r, n):
    lo, hi = stats.fisher_z_interval(r, n)
    assert -1 < lo <= r <= hi < 1
    lo2, hi2 = stats.fisher_z_interval(r, 4 * n)
    assert hi2 - lo2 < hi - lo


@FAST
@given(st.lists(st.floats(min_value=0.01, max_value=100), min_size=1, max_size=50))
def test_kish_n_lies_between_one_and_n(w):
    n_eff = stats.kish_n(np.array(w))
    assert 1 - 1e-9 <= n_eff <= len(w) + 1e-9
    assert stats.kish_n(np.ones(len(w))) == pytest.approx(len(w))


@FAST
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=40),
       st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=40))
def test_welch_interval_holds_the_difference(a, b):
    out = stats.welch(np.array(a), np.array(b))
    assert out["estimate"] == pytest.approx(np.mean(a) - np.mean(b), rel=1e-9, abs=1e-6)
    if math.isfinite(out["ci_low"]):
        assert out["ci_low"] <= out["estimate"] <= out["ci_high"] and 0 <= out["p_value"] <= 1


@FAST
@given(st.integers(min_value=2, max_value=4), st.integers(min_value=2, max_value=30), st.data())
def test_krippendorff_alpha_is_one_for_identical_coders(coders, units, data):
    values = data.draw(st.lists(st.integers(min_value=0, max_value=3), min_size=units, max_size=units))
    if len(set(values)) < 2:
        assert math.isnan(stats.krippendorff_alpha(np.tile(values, (coders, 1))))
    else:
        assert stats.krippendorff_alpha(np.tile(values, (coders, 1))) == pytest.approx(1.0)


def test_percentile_bootstrap_counts_failures_and_refuses_an_interval_that_misses():
    x = np.arange(40.0)
    ok = stats.percentile_bootstrap(lambda i: x[i].mean(), 40, 200, seed=1, estimate=x.mean())
    assert ok.failed == 0 and ok.ci_low < x.mean() < ok.ci_high and len(ok.draws) == 200
    flaky = stats.percentile_bootstrap(lambda i: x[i].mean() if i[0] % 3 else math.nan, 40, 200, seed=1)
    assert flaky.failed > 10 and math.isnan(flaky.ci_low) and "could not be computed" in flaky.problem
    missed = stats.percentile_bootstrap(lambda i: x[i].mean(), 40, 200, seed=1, estimate=1000.0)
    assert math.isnan(missed.ci_low) and "does not contain the estimate" in missed.problem
