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
    from tests.plain_words import raw_words

    fg = run_notebook(RunSpec("focus_groups", parameters={"labels": {"wait_time": "Waiting too long"}}), tmp_path)
    au = run_notebook(RunSpec("service_audits", parameters={"labels": {"S01": "Tverskaya store"}}), tmp_path)
    assert fg["status"] == "ok" and au["status"] == "ok", (fg.get("error"), au.get("error"))
    for key in ("n_sessions", "n_speakers", "theme_counts", "kappa", "krippendorff_alpha", "cooccurrence_top_pairs"):
        assert key in fg["metrics"], key
    for key in ("n_audits", "criterion_pass_rate", "unit_scores", "share_full_compliance", "auditor_agreement"):
        assert key in au["metrics"], key
    html = (tmp_path / "focus_groups" / "report.html").read_text()
    assert "@example.com" not in html and "+7 9" not in html
    assert "Waiting too long" in html and "coder A" in html and "Russian" in html and "English" in html
    audit_html = (tmp_path / "service_audits" / "report.html").read_text()
    assert "Tverskaya store" in audit_html and "rank (worst)" in audit_html and "must-have" in audit_html
    for page in (html, audit_html):
        assert raw_words(page) == [], raw_words(page)
        assert "Chart for" not in page  # every figure describes itself
    claims = {c["id"]: c for c in fg["claims"] + au["claims"]}
    assert claims["only_10_20_percent_get_intended_service"]["unit"] == "share"
    assert claims["only_10_20_percent_get_intended_service"]["truth"] is not None
    assert "Negative" in claims["better_audited_units_keep_customers"]["meaning"]
    assert "chance" in claims["coding_is_reliable"]["meaning"]


# ---------------------------------------------------------------------------------------------
# plain words: labels, quotes with their language, tables and figures a director reads


def test_labels_come_from_an_optional_label_column_and_coder_names(tmp_path, clean_labels):
    from cxresearch.display import plain, use_labels

    world = make_world(300, seed=4)
    book = world["fg_codebook"].assign(label="")
    book.loc[book["code"] == "wait_time", "label"] = "Waiting too long"
    world.tables["fg_codebook"] = book
    paths = write_world(world, tmp_path)
    _, codes, codebook, _, _ = qual.load_focus_groups(str(paths["fg_transcripts"]), str(paths["fg_codes"]),
                                                      str(paths["fg_codebook"]))
    assert qual.table_labels(codebook, "code") == {"wait_time": "Waiting too long"}  # empty labels: spelled out
    assert qual.table_labels(world["audit_criteria"], "criterion") == {}  # no label column at all
    assert qual.coder_labels(["coder_a", "rater_2", "Anna"]) == {"coder_a": "coder A", "rater_2": "rater 2",
                                                                 "Anna": "Anna"}
    use_labels(qual.coder_labels(codes["coder"]), qual.table_labels(codebook, "code"), {"trust_brand": "Trust"})
    assert [plain(c) for c in ("wait_time", "trust_brand", "feeling_ignored", "coder_b")] == [
        "Waiting too long", "Trust", "feeling ignored", "coder B"]
    criteria = world["audit_criteria"].assign(label=lambda d: d["criterion"].str.upper())
    criteria.to_csv(tmp_path / "criteria.csv", index=False)
    _, crit, *_ = qual.load_audits(str(paths["audits"]), str(tmp_path / "criteria.csv"))
    assert qual.table_labels(crit, "criterion")["needs_question"] == "NEEDS_QUESTION"


@pytest.mark.parametrize(("text", "language"), [
    ("Я им доверяю уже много лет.", "Russian"), ("The app crashes when I pay.", "English"),
    ("Очередь была огромная. I waited forty minutes.", "Russian and English"),
    ("Купил iPhone в магазине на Тверской улице", "Russian"),  # a brand name does not make it bilingual
    ("Меня зовут [name], пишите на [e-mail].", "Russian"),  # scrubbing placeholders are not the speaker's words
    ("123 456", ""), ("日本語です", "other language"),
])
def test_quote_language_is_told_by_script(text, language):
    assert qual.quote_language(text) == language


def test_quotes_are_deduplicated_on_normalised_text_and_carry_their_language():
    t = pd.DataFrame({"session_id": "S", "turn": [1, 2, 3, 4, 5], "speaker": list("abcde"), "role": "customer",
                      "text": ["Rude!", " rude. ", "RUDE", "Грубо.", "Ещё грубо"]})
    agreed = pd.DataFrame({"session_id": "S", "turn": [1, 2, 3, 4, 5], "rude_staff": 1})
    book = pd.DataFrame({"code": ["rude_staff"], "theme": ["staff"]})
    q = qual.quotes(t, agreed, book, k=5, min_group=1)
    assert q["quote"].tolist() == ["RUDE", "Грубо.", "Ещё грубо"]  # shortest first; "Rude!" and "rude." repeat it
    assert q["language"].tolist() == ["English", "Russian", "Russian"]
    assert qual.normalised("  Ещё,  ГРУБО!") == qual.normalised("еще грубо")
    assert "language" in qual.quotes_table(q) and "what was said" in qual.quotes_table(q)


def test_claims_carry_units_meanings_and_the_planted_truth():
    from cxresearch.results import Results

    overall = {"estimate": 0.75, "ci_low": 0.7, "ci_high": 0.8, "turns": 300, "failed": 0, "n_boot": 100, "reason": None}
    coding = qual.coding_claim(overall)
    assert coding["unit"] == "" and "0.667" in coding["meaning"]
    full = {"estimate": 0.52, "ci_low": 0.46, "ci_high": 0.58, "audits": 240, "reason": None}
    results = Results("t", "t")
    results.claim(**qual.compliance_claim(full, truth=0.532))
    assert results.claims[-1]["unit"] == "share" and results.claims[-1]["note"] is None  # the truth is inside
    results.claim(**qual.compliance_claim(full, truth=0.15))
    assert "planted value 15.0%" in results.claims[-1]["note"]
    link = {"estimate": -0.54, "ci_low": -0.79, "ci_high": -0.13, "p_value": 0.01, "n": 20, "reason": None}
    pieces = qual.churn_link_claim(link)
    assert pieces["verdict"] == "supported" and pieces["meaning"].startswith("A rank correlation")


SNAKE = r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b"


def test_report_tables_have_plain_headers():
    import re

    world = make_world(300, seed=2)
    t, c, b = world["fg_transcripts"], world["fg_codes"], world["fg_codebook"]
    grid = qual.coding_grid(t, c, b)
    agree = qual.agreement(grid, b)
    agreed = qual.consensus(grid, b)
    freq = qual.code_frequencies(t, agreed, b, "role", 1)
    scores = qual.primary_scores(world["audits"])
    rates = qual.criterion_pass_rates(scores, world["audit_criteria"])
    ranking = qual.separable(qual.unit_ranking(qual.audit_scores(scores, world["audit_criteria"]), 50))
    tables = [qual.agreement_table(agree), qual.frequency_table(freq, b), qual.theme_table(
        qual.theme_frequencies(t, agreed, b)), qual.pairs_table(qual.top_pairs(qual.cooccurrence(agreed, b))),
        qual.pass_rate_table(rates), qual.scale_table(rates, world["audit_criteria"]), qual.ranking_table(ranking),
        qual.auditor_table(qual.auditor_agreement(world["audits"]))]
    for table in tables:
        assert not [h for h in table.columns if re.search(SNAKE, str(h)) and h not in ("ci_low", "ci_high")], table.columns
    assert "applied by coder A" in tables[0].columns and "Cohen's kappa" in tables[0].columns
    assert "note" not in tables[0].columns  # nothing to say: no empty column
    assert {"rank (best)", "rank (worst)", "score (0–100)"} <= set(tables[6].columns)
    assert tables[4].columns.tolist()[:3] == ["criterion", "must-have", "audits"]
    assert tables[4]["must-have"].iloc[0]  # must-have criteria first


def test_figures_use_labels_dates_and_percent_axes(clean_labels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from cxresearch.display import use_labels

    world = make_world(300, seed=2)
    t, c, b = world["fg_transcripts"], world["fg_codes"], world["fg_codebook"]
    use_labels({"wait_time": "Waiting too long", "S01": "Tverskaya store"})
    agreed = qual.consensus(qual.coding_grid(t, c, b), b)
    ax = qual.plot_heatmap(qual.cooccurrence(agreed, b))
    ticks = [x.get_text() for x in ax.get_xticklabels() + ax.get_yticklabels()]
    assert "Waiting too long" in ticks and not any("_" in x for x in ticks)
    assert len(ax.texts) == len(b) * (len(b) - 1) // 2  # every cell of the lower triangle is annotated
    ax = qual.plot_themes(qual.code_frequencies(t, agreed, b, "role", 1), themes=qual.theme_frequencies(t, agreed, b))
    assert "Waiting too long" in [x.get_text() for x in ax.get_yticklabels()]
    assert ax.get_legend() is not None and "speakers" in ax.get_legend().get_texts()[0].get_text()
    scores = qual.primary_scores(world["audits"])
    table = qual.audit_scores(scores, world["audit_criteria"])
    ax = qual.plot_ranking(qual.separable(qual.unit_ranking(table, 50)))
    assert "Tverskaya store" in [x.get_text() for x in ax.get_yticklabels()]
    plt.gcf().canvas.draw()
    assert all(x.get_text().endswith("%") for x in ax.get_xticklabels() if x.get_text())
    ax = qual.plot_trend(qual.monthly_trend(table, 1))
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    assert "% of the maximum" in ax.get_ylabel()
    plt.close("all")


def test_alt_texts_describe_the_figures(clean_labels):
    world = make_world(300, seed=2)
    scores = qual.primary_scores(world["audits"])
    rates = qual.criterion_pass_rates(scores, world["audit_criteria"])
    table = qual.audit_scores(scores, world["audit_criteria"])
    assert "Lowest: next steps confirmed" in qual.pass_rates_alt(rates)
    assert qual.trend_alt(qual.monthly_trend(table, 1)).startswith("Line chart of the average audit score per month")
    ranking = qual.separable(qual.unit_ranking(table, 50))
    assert "best first" in qual.ranking_alt(ranking) and "_" not in qual.ranking_alt(ranking)


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
