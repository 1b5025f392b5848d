"""Focus groups and audits: published agreement values, independent checks, scrubbing, escaping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxresearch import qual
from cxresearch.io import InputError
from cxresearch.runner import RunSpec, run_notebook
from cxresearch.synth import make_world, write_world

N = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units, missing values
KRIPPENDORFF_2011 = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
                              [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
                              [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
                              [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]])


@pytest.mark.parametrize(("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849),
                                                  ("ratio", 0.797)])
def test_krippendorff_alpha_published_values(level, published):
    assert round(qual.krippendorff_alpha(KRIPPENDORFF_2011, level), 3) == published


def test_kappa_equals_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 300)
    b = np.where(rng.random(300) < 0.7, a, rng.integers(0, 3, 300))
    assert math.isclose(qual.cohen_kappa(a, b), cohen_kappa_score(a, b), rel_tol=1e-12)


def test_wilson_intervals_equal_statsmodels_and_icc_equals_pingouin():
    from statsmodels.stats.proportion import proportion_confint

    world = make_world(300, seed=2)
    scores = qual.primary_scores(world["audits"])
    rates = qual.criterion_pass_rates(scores, world["audit_criteria"]).set_index("criterion")
    s = scores.loc[scores["criterion"] == "greeting", "score"]
    lo, hi = proportion_confint(s.sum(), len(s), method="wilson")
    assert math.isclose(rates.at["greeting", "ci_low"], lo) and math.isclose(rates.at["greeting", "ci_high"], hi)
    pingouin = pytest.importorskip("pingouin")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 1)) + rng.normal(scale=0.5, size=(40, 3))
    long = pd.DataFrame([(i, j, x[i, j]) for i in range(40) for j in range(3)], columns=["target", "rater", "score"])
    table = pingouin.intraclass_corr(long, "target", "rater", "score").set_index("Type")
    ref = table.at["ICC(A,1)" if "ICC(A,1)" in table.index else "ICC2", "ICC"]  # label changed in pingouin 0.7
    assert math.isclose(qual.icc_2_1(x), ref, rel_tol=1e-10)


def test_planted_kappa_and_compliance_are_recovered():
    world = make_world(5000, seed=8, n_fg_sessions=30, audits_per_store=40)
    t, c, b = world["fg_transcripts"], world["fg_codes"], world["fg_codebook"]
    agree = qual.agreement(qual.coding_grid(t, c, b), b).set_index("code")
    expected = pd.Series(world.truth["focus_groups"]["expected_kappa"])
    assert (agree["kappa"] - expected).abs().max() < 0.12
    full = qual.full_compliance(qual.primary_scores(world["audits"]), world["audit_criteria"])
    assert full["ci_low"] <= world.truth["audits"]["share_full_compliance_observed"] <= full["ci_high"]


def test_scrubber_removes_every_planted_identifier():
    world = make_world(300, seed=4)
    t = world["fg_transcripts"]
    names = list(t["speaker"].unique())
    text = " ".join(qual.scrub(x, names) for x in t["text"])
    pii = world.truth["focus_groups"]["planted_pii"]
    for value in pii["emails"] + pii["phones"] + pii["names"]:
        assert value not in text, value
    assert qual.scrub("Я им доверяю уже много лет.") == "Я им доверяю уже много лет."  # no false positive
    assert "[phone]" in qual.scrub("звоните 8 (912) 345-67-89") and "[e-mail]" in qual.scrub("a.b@c.ru")


def test_script_and_img_onerror_are_inert_in_the_report(tmp_path):
    world = make_world(300, seed=5)
    t = world["fg_transcripts"].copy()
    evil = ["<script>alert('x')</script>", "<img src=x onerror=alert(1)>"]
    first = world["fg_codes"].iloc[0]
    row = t.index[(t["session_id"] == first["session_id"]) & (t["turn"] == first["turn"])][0]
    t.loc[row, "text"] = f"{evil[0]} {evil[1]} short"
    world.tables["fg_transcripts"] = t
    # make the poisoned turn an agreed, short, quotable one
    codes = world["fg_codes"]
    codes = pd.concat([codes, pd.DataFrame([{**first.to_dict(), "coder": cd} for cd in ("coder_a", "coder_b")])])
    world.tables["fg_codes"] = codes.drop_duplicates()
    paths = write_world(world, tmp_path / "w")
    res = run_notebook(RunSpec("focus_groups", parameters={
        "transcripts_path": str(paths["fg_transcripts"]), "codes_path": str(paths["fg_codes"]),
        "codebook_path": str(paths["fg_codebook"]), "min_group_size": 1, "quotes_per_theme": 50}), tmp_path / "out")
    assert res["status"] == "ok", res.get("error")
    html = (tmp_path / "out" / "focus_groups" / "report.html").read_text()
    assert "&lt;script&gt;" in html  # shown, but as text
    assert "<script>alert" not in html and "<img src=x" not in html


def test_focus_group_input_errors(tmp_path):
    world = make_world(200, seed=6)
    codes = world["fg_codes"].copy()
    codes.loc[0, "code"] = "not_a_code"
    world.tables["fg_codes"] = codes
    paths = write_world(world, tmp_path)
    with pytest.raises(InputError, match=r"column 'code': 1 row\(s\) use codes that are not in the codebook "
                                         r"\(\['not_a_code'\]\): row 2: 'not_a_code'"):
        qual.load_focus_groups(str(paths["fg_transcripts"]), str(paths["fg_codes"]), str(paths["fg_codebook"]))


def test_audit_input_errors(tmp_path):
    world = make_world(200, seed=6)
    audits = world["audits"].copy()
    audits.loc[audits.index[audits["kind"] == "binary"][0], "score"] = 3
    world.tables["audits"] = audits
    paths = write_world(world, tmp_path)
    with pytest.raises(InputError, match=r"column 'score': 1 score\(s\) of binary criteria are not 0 or 1: row \d+: 3.0"):
        qual.load_audits(str(paths["audits"]), str(paths["audit_criteria"]))


def test_notebooks_default_runs(tmp_path):
    fg = run_notebook(RunSpec("focus_groups"), tmp_path)
    au = run_notebook(RunSpec("service_audits"), tmp_path)
    assert fg["status"] == "ok" and au["status"] == "ok", (fg.get("error"), au.get("error"))
    for key in ("n_sessions", "n_speakers", "theme_counts", "kappa", "krippendorff_alpha", "cooccurrence_top_pairs"):
        assert key in fg["metrics"], key
    for key in ("n_audits", "criterion_pass_rate", "unit_scores", "share_full_compliance", "auditor_agreement"):
        assert key in au["metrics"], key
    html = (tmp_path / "focus_groups" / "report.html").read_text()
    assert "@example.com" not in html and "+7 9" not in html


def _alpha_by_pairs(data: np.ndarray, level: str) -> float:
    """Reference: Krippendorff's alpha from an explicit loop over pairable values within each unit."""
    from itertools import combinations

    d = np.asarray(data, float)
    values = np.unique(d[~np.isnan(d)])
    idx = {v: i for i, v in enumerate(values)}
    k = len(values)
    o = np.zeros((k, k))
    for u in range(d.shape[1]):
        col = d[:, u][~np.isnan(d[:, u])]
        if len(col) < 2:
            continue
        for i, j in combinations(range(len(col)), 2):
            a, b = idx[col[i]], idx[col[j]]
            o[a, b] += 1 / (len(col) - 1)
            o[b, a] += 1 / (len(col) - 1)
    n_c = o.sum(axis=1)
    if level == "nominal":
        delta = 1.0 - np.eye(k)
    elif level == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
    elif level == "ratio":
        delta = ((values[:, None] - values[None, :]) / (values[:, None] + values[None, :])) ** 2
    else:
        delta = np.array([[(n_c[min(a, b):max(a, b) + 1].sum() - (n_c[a] + n_c[b]) / 2) ** 2 for b in range(k)]
                          for a in range(k)])
    return float(1 - np.sum(o * delta) / (np.sum(np.outer(n_c, n_c) * delta) / (n_c.sum() - 1)))


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_vectorised_alpha_equals_the_pairwise_definition(level):
    rng = np.random.default_rng(11)
    for _ in range(5):
        x = rng.integers(1, 6, size=(3, 40)).astype(float)
        x[rng.random(x.shape) < 0.2] = np.nan
        assert math.isclose(qual.krippendorff_alpha(x, level), _alpha_by_pairs(x, level), rel_tol=1e-12)


def test_agreement_is_undefined_not_nan_for_degenerate_codes():
    assert math.isnan(qual.krippendorff_alpha(np.ones((2, 10))))  # no variation
    assert math.isnan(qual.krippendorff_alpha(np.array([[1.0, np.nan], [np.nan, 2.0]])))  # nothing pairable
    assert math.isnan(qual.cohen_kappa(np.zeros(5), np.zeros(5)))
    assert math.isnan(qual.icc_2_1(np.full((6, 2), 3.0))) and math.isnan(qual.icc_2_1(np.ones((1, 2))))


def test_perfect_agreement_is_supported_with_a_degenerate_but_valid_interval():
    grid = pd.DataFrame({"session_id": "S", "turn": np.repeat(np.arange(1, 41), 2), "coder": ["a", "b"] * 40})
    grid["c1"] = np.repeat(np.arange(40) % 3 == 0, 2).astype(float)
    grid["c2"] = np.repeat(np.arange(40) % 2 == 0, 2).astype(float)
    book = pd.DataFrame({"code": ["c1", "c2"], "theme": ["t", "t"]})
    overall = qual.overall_agreement(grid, book, 100)
    assert overall["estimate"] == 1.0 and overall["ci_low"] == 1.0 and overall["failed"] == 0
    pieces = qual.coding_claim(overall)
    assert pieces["verdict"] == "supported" and pieces["n"] == 40
    from cxresearch.results import Results

    results = Results("t", "t")
    results.claim(**pieces)
    assert results.claims[-1]["verdict"] == "supported"


def test_theme_counts_are_distinct_speakers():
    t = pd.DataFrame({"session_id": "S", "turn": [1, 2, 3], "speaker": ["x", "x", "y"], "text": ["a", "b", "c"]})
    agreed = pd.DataFrame({"session_id": "S", "turn": [1, 2, 3], "c1": [1, 0, 0], "c2": [0, 1, 1]})
    book = pd.DataFrame({"code": ["c1", "c2"], "theme": ["speed", "speed"]})
    assert qual.theme_frequencies(t, agreed, book).set_index("theme").at["speed", "speakers"] == 2  # not 3


def test_audit_score_uses_each_criterion_scale():
    criteria = pd.DataFrame({"criterion": ["b", "s5", "s10"], "kind": ["binary", "scale", "scale"],
                             "weight": [1.0, 1.0, 2.0], "must_have": [True, False, False],
                             "scale": ["pass/fail", "1-5", "0–10"]})
    scores = pd.DataFrame({"audit_id": ["A"] * 3 + ["B"] * 3, "unit": "U", "date": pd.Timestamp("2024-01-01"),
                           "criterion": ["b", "s5", "s10"] * 2, "score": [1, 5, 10, 0, 1, 5]})
    table = qual.audit_scores(scores, criteria).set_index("audit_id")["score"]
    assert table["A"] == 100 and math.isclose(table["B"], 100 * (0 + 0 + 2 * 0.5) / 4)


def test_fold_groups_hides_a_folded_group_that_stays_small():
    recoded, folded = qual.fold_groups(pd.Series(["a"] * 3 + ["b"] * 1), 5)
    assert folded == ["a", "b"] and recoded.isna().all()
    recoded, folded = qual.fold_groups(pd.Series(["a"] * 9 + ["b"] * 2 + ["c"] * 6), 5)
    assert folded == ["b", "c"] and (recoded == qual.OTHER).sum() == 8  # b alone would be recoverable


def test_ranking_singles_out_planted_best_and_worst_units():
    rng = np.random.default_rng(3)
    means = {"U1": 90, "U2": 60, "U3": 60, "U4": 60, "U5": 60, "U6": 60, "U7": 60, "U8": 20}
    table = pd.DataFrame([(u, m + rng.normal(0, 5)) for u, m in means.items() for _ in range(12)],
                         columns=["unit", "score"])
    r = qual.separable(qual.unit_ranking(table, 300))
    assert r.loc[r["clearly top"], "unit"].tolist() == ["U1"]
    assert r.loc[r["clearly bottom"], "unit"].tolist() == ["U8"]
    one = qual.separable(qual.unit_ranking(table[table["unit"] == "U1"], 50))
    assert not one["clearly top"].any() and not one["clearly bottom"].any()


def test_compliance_claim_uses_the_range_verdict():
    from cxresearch.results import Results

    inside = {"estimate": 0.15, "ci_low": 0.11, "ci_high": 0.19, "audits": 400, "reason": None}
    above = {**inside, "estimate": 0.5, "ci_low": 0.45, "ci_high": 0.55}
    results = Results("t", "t")
    results.claim(**qual.compliance_claim(inside))
    assert results.claims[-1]["verdict"] == "supported"
    results.claim(**qual.compliance_claim(above))
    assert results.claims[-1]["verdict"] == "not supported"


def test_correlation_not_estimable_cases():
    assert qual.correlation(np.arange(3), np.arange(3))["estimate"] is None
    assert qual.correlation(np.arange(6), np.ones(6))["estimate"] is None
    r = qual.correlation(np.arange(8), np.arange(8)[::-1])
    assert r["estimate"] == -1.0 and r["ci_low"] <= r["estimate"] <= r["ci_high"]


def test_notebooks_put_data_in_markdown_only_through_say():
    from pathlib import Path

    for name in ("focus_groups", "service_audits"):
        text = (Path(__file__).resolve().parents[1] / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8")
        assert "Markdown(f" not in text and "min_group_size=min_group_size" in text, name
