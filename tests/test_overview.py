"""Helpers of the data-overview notebook on small hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from cxresearch import contracts
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
    assert contracts.spend_before(inv, tx, days=365).tolist() == [10.0, 15.0, 0.0]


def test_respondent_spend_gap_matches_welch():
    rng = np.random.default_rng(1)
    inv = pd.DataFrame({"customer_id": [f"c{i}" for i in range(200)], "responded": rng.integers(0, 2, 200),
                        "invited_at": pd.Timestamp("2024-01-01")})
    tx = pd.DataFrame({"customer_id": inv["customer_id"], "timestamp": pd.Timestamp("2023-06-01"),
                       "amount": rng.gamma(2, 10, 200) + 5 * inv["responded"]})
    gap = ov.respondent_spend_gap(inv, tx)
    ref = stats.ttest_ind(tx["amount"][inv["responded"] == 1], tx["amount"][inv["responded"] == 0], equal_var=False)
    assert np.isclose(gap["p_value"], ref.pvalue) and np.isclose(gap["ci_low"], ref.confidence_interval().low)


# ---------------------------------------------------------------------------------------------
# what a reader sees: plain table, column and rule names; units and planted truth on the claims


@pytest.fixture
def registered_labels():
    from cxresearch.display import LABELS, use_labels

    saved = dict(LABELS)
    LABELS.reset()
    use_labels(ov.LABELS, {"churn_date": "Дата ухода"})  # the labels parameter wins over the module's labels
    yield LABELS
    LABELS.reset()
    LABELS.update(saved)


def test_exclusion_rules_and_missing_columns_read_in_words(registered_labels):
    from tests.plain_words import RAW

    ex = pd.DataFrame({"table": ["complaints", "transactions", "audits", "transactions"],
                       "rule": ["opened_at after the observation end (2024-12-31)",
                                "customer_id not found in the customers table",
                                "date after the observation end (2024-12-31)", "amount below zero (returns)"],
                       "rows_excluded": [1, 2, 0, 5], "rows_before": [10, 20, 30, 20], "share": [0.1, 0.1, 0, 0.25],
                       "example_rows": ["2", "3, 4", "", "5"]})
    out = ov.exclusions_display(ex)
    assert list(out["rule"]) == ["complaint opened after the observation end (2024-12-31)",
                                 "customer not found in the customers table",
                                 "audit date after the observation end (2024-12-31)", "amount below zero (returns)"]
    assert list(out["input"]) == ["complaints", "transactions", "service audits", "transactions"]
    missing = pd.DataFrame({"table": ["customers", "survey_responses"], "column": ["churn_date", "open_text"],
                            "missing": [3, 4], "share": [0.3, 0.4]})
    shown = ov.missing_display(missing)
    assert list(shown["column"]) == ["Дата ухода", "open answer"] and list(shown["input"]) == ["customers",
                                                                                            "survey answers"]
    for frame in (out, shown):
        assert not any(RAW.search(str(v)) for v in [*frame.columns, *frame.select_dtypes(object).stack()])


def test_claims_carry_units_meaning_and_planted_truth():
    ex = pd.DataFrame({"table": ["transactions"], "rule": ["amount below zero (returns)"], "rows_excluded": [30],
                       "rows_before": [1000], "share": [0.03], "example_rows": [""]})
    c = ov.cleaning_claim(ex, truth=0.03)
    assert c.unit == "share" and c.truth == 0.03 and c.ci_low < 0.03 < c.ci_high
    assert (c.ci_low, c.ci_high) == pytest.approx(proportion_confint(30, 1000, method="wilson"), rel=1e-9)
    r = ov.response_claim({"gap": 0.08, "ci_low": 0.02, "ci_high": 0.14, "p_value": 0.01, "df": 2, "n": 300,
                           "highest": "premium", "lowest": "value"})
    assert r.unit == "pp" and "premium" in r.meaning and "value" in r.meaning and "df=" not in r.test
    s = ov.spend_claim({"estimate": 18.6, "ci_low": 7.5, "ci_high": 29.7, "p_value": 0.001, "n": 400})
    assert s.unit == "money" and s.meaning
    assert ov.spend_claim(None).verdict == "not testable"


def test_missing_chart_uses_plain_labels_and_a_percent_axis(registered_labels):
    import matplotlib.pyplot as plt

    missing = pd.DataFrame({"table": ["complaints", "audits"], "column": ["hours_to_resolve", "date"],
                            "missing": [3, 4], "share": [0.3, 0.4]})
    ax = ov.plot_missing(missing)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["complaints: hours to resolve", "service audits: audit date"]
    assert ax.get_xlim() == (0.0, 100.0)
    plt.close(ax.figure)


def test_figures_get_alt_texts_in_words(registered_labels):
    monthly = pd.DataFrame({"signups": [3, 0, 4], "survey_responses": [0, 5, 0]},
                           index=pd.Index(["2024-01", "2024-02", "2024-03"], name="month"))
    alt = ov.activity_alt(monthly)
    assert "new customers (sign-ups) Jan 2024 to Mar 2024" in alt and "survey answers Feb 2024 to Feb 2024" in alt
    rates = pd.DataFrame({"segment": ["a", "b"], "rate": [0.2, 0.4], "ci_low": [0.1, 0.3], "ci_high": [0.3, 0.5]})
    assert ov.response_rates_alt(rates, "segment", 0.3).endswith("b 40.0%, a 20.0%; all invited customers 30.0%.")
    missing = pd.DataFrame({"table": ["customers"], "column": ["churn_date"], "missing": [3], "share": [0.3]})
    assert "customers, Дата ухода: 30.0%" in ov.missing_alt(missing)


# ---------------------------------------------------------------------------------------------
# one-way architecture (issue 12): the loader takes a Source and a ledger; steps return typed results


def write_tables(tmp_path, segment: bool = True):
    from pathlib import Path

    n = 40
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "signup_date": "2023-01-01",
                              "churn_date": ["2023-06-01" if i % 4 == 0 else "" for i in range(n)]})
    if segment:
        customers["segment"] = ["a" if i % 2 else "b" for i in range(n)]
    invitations = pd.DataFrame({"customer_id": customers["customer_id"], "wave": 1, "invited_at": "2023-05-01",
                                "responded": [int(i % 3 == 0) for i in range(n)]})
    tx = pd.DataFrame({"customer_id": [f"c{i % n}" for i in range(3 * n)] + ["ghost"],
                       "timestamp": "2023-03-01 10:00", "amount": [10.0 + i % 7 for i in range(3 * n)] + [5.0]})
    paths = {}
    for name, df in (("customers", customers), ("survey_invitations", invitations), ("transactions", tx)):
        paths[name] = Path(tmp_path) / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    return paths


def test_loader_reads_a_source_into_the_given_ledger(tmp_path):
    from cxresearch.io import Ledger
    from cxresearch.sources import Source

    ledger = Ledger()
    inputs = ov.load_inputs(Source(write_tables(tmp_path), defaults={"observation_end": "2023-12-31"}), ledger)
    assert inputs.as_of == inputs.data_end == pd.Timestamp("2023-12-31") and not inputs.synthetic
    assert "customer_id not found in the customers table" in set(ledger.exclusions_frame()["rule"])
    assert ov.load_inputs(Source(write_tables(tmp_path)), Ledger()).as_of is None  # a user's files: nothing is cut


def test_customers_without_a_segment_column_are_handled(tmp_path):
    from cxresearch.io import Ledger
    from cxresearch.sources import from_files

    ledger = Ledger()
    inputs = ov.load_inputs(from_files(write_tables(tmp_path, segment=False)), ledger)
    survey = ov.survey_response(inputs, 5)
    assert survey.linked and survey.rates is None and survey.test is None and survey.rate[1] < survey.overall
    assert "no segment column" in ov.survey_sentences(survey)[0]["template"]
    assert "segment" not in ov.customer_tables(inputs, 5)
    claims = {c.id: c for c in ov.claims(inputs, ledger.exclusions_frame(), survey)}
    assert claims["response_differs_by_segment"].verdict == "not testable"
    names = [m["name"] for m in ov.metrics(inputs, ledger.exclusions_frame(), survey)]
    assert {"survey_response_rate", "share_left", "transactions_excluded_share"} <= set(names)


def test_survey_response_matches_the_direct_computation(tmp_path):
    from cxresearch.io import Ledger
    from cxresearch.sources import from_files

    inputs = ov.load_inputs(from_files(write_tables(tmp_path)), Ledger())
    survey = ov.survey_response(inputs, 5)
    lo, hi = proportion_confint(14, 40, method="wilson")
    assert survey.rate == pytest.approx((14 / 40, lo, hi), rel=1e-9)
    assert set(survey.rates["segment"]) == {"a", "b"} and survey.test["n"] == 20
    sentences = ov.survey_sentences(survey, "EUR")
    assert len(sentences) == 1 and sentences[0]["a"].endswith("EUR")
