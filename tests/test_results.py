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
