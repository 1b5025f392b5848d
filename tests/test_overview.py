"""Helpers of the data-overview notebook on small hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from cxresearch import overview as ov


def test_customers_by_folds_small_groups_so_nothing_is_recovered_by_subtraction():
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(19)],
                              "segment": ["a"] * 10 + ["b"] * 6 + ["c"] * 3,
                              "churn_date": [pd.Timestamp("2024-01-01")] * 4 + [pd.NaT] * 15})
    out = ov.customers_by(customers, "segment", pd.Timestamp("2024-12-31"), min_n=5).set_index("segment")
    assert out.loc["a", "customers"] == 10 and out.loc["a", "share_left"] == 0.4
    # c (3) alone would be recoverable from the total: it is folded with b into one group of 9
    assert "c" not in out.index and "b" not in out.index
    assert out.loc["Other (small groups)", "customers"] == 9 and out["customers"].min() >= 5


def test_response_rates_use_wilson_intervals():
    customers = pd.DataFrame({"customer_id": list("abcdefghij"), "segment": ["x"] * 6 + ["y"] * 4})
    inv = pd.DataFrame({"customer_id": list("abcdefghij"), "responded": [1, 1, 0, 0, 0, 1, 1, 0, 0, 0]})
    out = ov.response_rates(inv, customers, "segment", min_n=5).set_index("segment")
    lo, hi = proportion_confint(4, 10, method="wilson")
    other = out.loc["Other (small groups)"]
    assert np.isclose(other["ci_low"], lo) and np.isclose(other["ci_high"], hi)
    assert "y" not in out.index and (out["invited"] >= 5).all()  # y (4) folded with x into one group of 10


def test_spend_before_invitation_is_windowed():
    inv = pd.DataFrame({"customer_id": ["a", "a", "b"], "wave": [1, 2, 1], "responded": [1, 0, 0],
                        "invited_at": pd.to_datetime(["2024-01-10", "2024-06-01", "2024-01-10"])})
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
                       "timestamp": pd.to_datetime(["2023-01-01", "2024-01-05", "2024-03-01", "2024-02-01"]),
                       "amount": [100.0, 10.0, 5.0, 7.0]})
    assert ov.spend_before(inv, tx, days=365).tolist() == [10.0, 15.0, 0.0]


def test_respondent_spend_gap_matches_welch():
    rng = np.random.default_rng(1)
    inv = pd.DataFrame({"customer_id": [f"c{i}" for i in range(200)], "responded": rng.integers(0, 2, 200),
                        "invited_at": pd.Timestamp("2024-01-01")})
    tx = pd.DataFrame({"customer_id": inv["customer_id"], "timestamp": pd.Timestamp("2023-06-01"),
                       "amount": rng.gamma(2, 10, 200) + 5 * inv["responded"]})
    gap = ov.respondent_spend_gap(inv, tx)
    ref = stats.ttest_ind(tx["amount"][inv["responded"] == 1], tx["amount"][inv["responded"] == 0], equal_var=False)
    assert np.isclose(gap["p_value"], ref.pvalue) and np.isclose(gap["ci_low"], ref.confidence_interval().low)
