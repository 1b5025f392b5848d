"""Results recorder, verdict rule, number cleaning, suppression and the stakeholder table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import cxresearch as cx
from cxresearch.results import clean, schema_problems, suppress_small


@pytest.mark.parametrize(
    ("lo", "hi", "kwargs", "expected"),
    [
        (0.1, 0.5, {}, "supported"),
        (-0.5, -0.1, {}, "not supported"),
        (-0.1, 0.5, {}, "inconclusive"),
        (-0.5, -0.1, {"direction": -1}, "supported"),
        (0.01, 0.04, {"null": 0.05, "direction": -1}, "supported"),
        (0.06, 0.09, {"null": 0.05, "direction": -1}, "not supported"),
        (-0.02, 0.03, {"margin": 0.05}, "not supported"),  # equivalence: negligible effect
        (-0.02, 0.08, {"margin": 0.05}, "inconclusive"),
        (None, 0.3, {}, "not testable"),
        (float("nan"), 0.3, {}, "not testable"),
    ],
)
def test_verdict(lo, hi, kwargs, expected):
    assert cx.verdict(lo, hi, **kwargs) == expected


def test_clean_numbers_are_json_ready():
    out = clean({"a": np.float64(1.23456789), "b": np.int64(3), "c": [np.nan, np.inf], "d": {"e": np.bool_(True)}})
    assert out == {"a": 1.23457, "b": 3, "c": [None, None], "d": {"e": True}}
    assert isinstance(out["b"], int)


def test_results_records_metrics_and_claims():
    r = cx.Results("nb", "Title")
    r.metric("n", 10, headline=True, label="customers")
    r.metric("rate", cx.interval(0.5, 0.4, 0.6))
    r.claim("c1", "Claim", "test", 0.5, 0.4, 0.6, 0.01, "supported")
    r.claim("c1", "Claim again", "test", 0.5, 0.4, 0.6, 0.01, "inconclusive")  # same id replaces
    assert len(r.claims) == 1 and r.claims[0]["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="verdict must be one of"):
        r.claim("c2", "x", "y", 1.0, verdict="probably")
    payload = r.payload()
    full = {**payload, "status": "ok", "parameters": {},
            "provenance": {k: "" for k in ("cxresearch_version", "git_commit", "python", "packages", "started",
                                           "finished")} | {"inputs": []}}
    assert schema_problems(full) == []
    assert schema_problems({**full, "metrics": {"x": "text"}}) == ["metric 'x' is not a number, interval or nested dict of those"]


def test_suppress_small_groups():
    df = pd.DataFrame({"g": ["a", "b"], "n": [3, 40], "share": [0.1, 0.9]})
    out = suppress_small(df, "n", 5, ["share"])
    assert out["n"].tolist() == ["<5", 40] and out["share"].tolist()[0] is None


def test_table_formats_and_escapes():
    df = pd.DataFrame({"name": ["<script>alert(1)</script>", "b"], "n": [1234, 5], "share": [0.256, None]})
    t = cx.table(df, percent=["share"])
    html = t._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "1,234" in html and "25.6%" in html and "–" in html
    assert "index" not in repr(t) and "25.6%" in repr(t)
    assert math.isclose(df["share"][0], 0.256)


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    from cxresearch.stats import holm

    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 30):
        p = rng.random(m) ** 3
        assert np.allclose(holm(p), multipletests(p, method="holm")[1])


def test_plain_labels_in_tables_and_the_interval_on_one_column():
    from cxresearch.display import LABELS, plain, use_labels

    LABELS.reset()
    try:
        use_labels({"perc_website": "How good was the website?"}, None, {"two_year": "2-year contract"},
                   references={"plan": "monthly"})
        assert plain("perc_website") == "How good was the website?"
        assert plain("plan[annual]") == "plan: annual vs monthly" and plain("plan[T.two_year]") == \
            "plan: 2-year contract vs monthly"
        assert plain("region[East]") == "region[East]" and plain("region[East]", header=True) == "region: East"
        assert plain("Please ask [name]") == "Please ask [name]" and plain("fg_01") == "fg_01"  # text, ids stay
        assert plain("wait_time") == "wait time" and plain("p_value", header=True) == "p-value"
        assert plain("p") == "p"  # a model parameter called p is not a p-value
        assert plain("Waited 40 min, rude_staff?") == "Waited 40 min, rude_staff?"  # free text is left alone
        df = pd.DataFrame({"term": ["plan[annual]", "wait_time"], "hr": [0.5, 2.0], "ci_low": [0.4, 1.5],
                           "ci_high": [0.6, 2.6], "p_value": [0.0002, 0.2]})
        text = repr(cx.table(df))
        assert "plan: annual vs monthly" in text and "95% CI" in text and "0.400 to 0.600" in text
        assert "ci_low" not in text and "p-value" in text and "< 0.001" in text and "hazard ratio" in text
        shares = cx.table(pd.DataFrame({"x": ["a"], "share": [0.5], "ci_low": [0.4], "ci_high": [0.6]}),
                          percent=["share", "ci_low"])
        assert "40.0% to 60.0%" in repr(shares)
    finally:
        LABELS.reset()


@pytest.mark.parametrize("unit, value, text", [
    ("share", 0.885, "88.5%"), ("pp", 0.0846, "+8.5 pp"), ("pp", -0.02, "-2.0 pp"),
    ("rate ratio", 0.6427, "0.643× the rate"), ("ratio", 2.846, "2.85×"), ("money", 1250.4, "1,250 RUB"),
    ("months", 1.77, "1.77 months"), (None, 4450.0, "4,450"), ("share", None, "–"),
])
def test_numbers_carry_their_unit(unit, value, text):
    from cxresearch.display import fmt_value

    assert fmt_value(value, unit, "RUB") == text


def test_intervals_keep_signs_and_write_the_unit_once():
    from cxresearch.display import fmt_interval

    assert fmt_interval(-0.015, 0.154, "pp") == "-1.5 to +15.4 pp"
    assert fmt_interval(0.4, 0.6, "share") == "40.0% to 60.0%"
    assert fmt_interval(0.57, 0.72, "rate ratio") == "0.570 to 0.720× the rate"


def test_claims_carry_unit_meaning_and_a_missed_planted_value():
    from cxresearch.report import _cards, _claims

    r = cx.Results("nb", "Title", currency="EUR")
    r.claim("hr", "Fast fixes keep customers", "Cox", 0.64, 0.57, 0.72, 0.001, "supported", n=50,
            unit="rate ratio", meaning="Below 1: fewer leave", truth=0.65)
    r.claim("ratio", "One bad needs five good", "regression", 2.85, 1.51, 4.18, None, "not supported", n=50,
            unit="ratio", truth=5)
    r.metric("clv", cx.interval(1200.0, 1100.0, 1300.0), headline=True, label="mean CLV", unit="money")
    r.metric("top", 0.885, headline=True, label="value held by the top 20%", percent=True)
    hr, ratio = r.claims
    assert hr["unit"] == "rate ratio" and hr["truth"] == 0.65 and hr["note"] is None
    assert "planted value 5×" in ratio["note"] and "misses" in ratio["note"]
    payload = {**r.payload(), "status": "ok"}
    shown = {c["claim"]: c for c in _claims(payload)}
    assert shown["Fast fixes keep customers"]["estimate"] == "0.640× the rate"
    assert shown["Fast fixes keep customers"]["ci"] == "0.570 to 0.720× the rate"
    assert shown["Fast fixes keep customers"]["meaning"] == "Below 1: fewer leave"
    assert [c["value"] for c in _cards(payload)] == ["1,200 EUR (1,100 to 1,300 EUR)", "88.5%"]
    with pytest.raises(ValueError, match="unit must be one of"):
        r.claim("x", "x", "x", 1.0, 0.5, 1.5, unit="furlongs")


def test_an_inconclusive_claim_says_the_direction_is_open_only_when_its_interval_holds_no_effect():
    r = cx.Results("nb", "Title")
    r.claim("gap", "A gap", "t", 1.0, -3.0, 5.0, None, "inconclusive", n=50, unit="money", meaning="Positive: more")
    r.claim("range", "5-10%", "t", 0.076, 0.05, 0.108, None, "inconclusive", n=50, unit="share", meaning="The share")
    r.claim("hr", "Fewer leave", "t", 0.9, 0.7, 1.2, None, "inconclusive", n=50, unit="rate ratio", meaning="Below 1")
    gap, share, hr = r.claims
    assert "not even the direction" in gap["meaning"] and "not even the direction" in hr["meaning"]
    assert share["meaning"] == "The share"
