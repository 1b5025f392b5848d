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
    with pytest.raises(InputError, match=r"codes \['not_a_code'\] are not in the codebook"):
        qual.load_focus_groups(str(paths["fg_transcripts"]), str(paths["fg_codes"]), str(paths["fg_codebook"]))


def test_audit_input_errors(tmp_path):
    world = make_world(200, seed=6)
    audits = world["audits"].copy()
    audits.loc[audits.index[audits["kind"] == "binary"][0], "score"] = 3
    world.tables["audits"] = audits
    paths = write_world(world, tmp_path)
    with pytest.raises(InputError, match="binary criteria must score 0 or 1"):
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
