"""Focus groups: published and hand-computed agreement, independent checks, scrubbing, escaping, plain words."""

from __future__ import annotations

import math
import re
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxresearch import checks, sources
from cxresearch import focus_groups as fg
from cxresearch.io import InputError, Ledger
from cxresearch.privacy import OTHER, scrub
from cxresearch.results import Results
from cxresearch.stats import Claim, krippendorff_alpha
from cxresearch.synth import make_world, write_world

N = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units, missing values
KRIPPENDORFF_2011 = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
                              [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
                              [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
                              [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]])


def files(world, tmp_path: Path) -> sources.Source:
    paths = write_world(world, tmp_path)
    return sources.from_files({t: paths[t] for t in fg.TABLES})


# ---------------------------------------------------------------------------------------------
# agreement


@pytest.mark.parametrize(("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849),
                                                  ("ratio", 0.797)])
def test_krippendorff_alpha_published_values(level, published):
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, level), 3) == published


def test_krippendorff_alpha_equals_a_hand_computed_example():
    """Two coders, four units: coincidences o00 = 4, o01 = o10 = 1, o11 = 2 (n0 = 5, n1 = 3, n = 8), so
    alpha = 1 − (n − 1)·(o01 + o10) / (2·n0·n1) = 1 − 7·2/30 = 8/15."""
    x = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], float)
    assert math.isclose(krippendorff_alpha(x, "nominal"), 8 / 15, rel_tol=1e-12)


def _alpha_by_pairs(data: np.ndarray, level: str) -> float:
    """Reference: Krippendorff's alpha from an explicit loop over pairable values within each unit (the
    hand loop the suite used before the ``krippendorff`` package)."""
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
def test_alpha_equals_the_pairwise_definition(level):
    rng = np.random.default_rng(11)
    for _ in range(5):
        x = rng.integers(1, 6, size=(3, 40)).astype(float)
        x[rng.random(x.shape) < 0.2] = np.nan
        assert math.isclose(krippendorff_alpha(x, level), _alpha_by_pairs(x, level), rel_tol=1e-12)


def test_alpha_on_the_synthetic_coding_equals_the_pairwise_definition():
    world = make_world(300, seed=2)
    b = world["fg_codebook"]
    grid = fg.coding_grid(world["fg_transcripts"], world["fg_codes"], b)
    agree = fg.agreement(grid, b).set_index("code")
    for code in b["code"]:
        both = fg._wide(grid, code, ["coder_a", "coder_b"]).dropna().to_numpy().T
        assert math.isclose(agree.at[code, "krippendorff_alpha"], _alpha_by_pairs(both, "nominal"), rel_tol=1e-12)


def test_kappa_equals_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 300)
    b = np.where(rng.random(300) < 0.7, a, rng.integers(0, 3, 300))
    assert math.isclose(fg.cohen_kappa(a, b), cohen_kappa_score(a, b), rel_tol=1e-12)


def test_agreement_is_undefined_not_nan_for_degenerate_codes():
    assert math.isnan(krippendorff_alpha(np.ones((2, 10))))  # no variation
    assert math.isnan(krippendorff_alpha(np.array([[1.0, np.nan], [np.nan, 2.0]])))  # nothing pairable
    assert math.isnan(fg.cohen_kappa(np.zeros(5), np.zeros(5)))


def _perfect_grid() -> tuple[pd.DataFrame, pd.DataFrame]:
    grid = pd.DataFrame({"session_id": "S", "turn": np.repeat(np.arange(1, 41), 2), "coder": ["a", "b"] * 40})
    grid["c1"] = np.repeat(np.arange(40) % 3 == 0, 2).astype(float)
    grid["c2"] = np.repeat(np.arange(40) % 2 == 0, 2).astype(float)
    return grid, pd.DataFrame({"code": ["c1", "c2"], "theme": ["t", "t"]})


def test_perfect_agreement_is_supported_with_a_degenerate_but_valid_interval():
    grid, book = _perfect_grid()
    overall = fg.overall_agreement(grid, book, 100)
    assert overall.estimate == 1.0 and overall.ci_low == 1.0 and overall.failed == 0
    claim = fg.coding_claim(overall)
    assert isinstance(claim, Claim) and claim.verdict == "supported" and claim.n == 40
    results = Results("t", "t")
    results.add(claim)
    assert results.claims[-1]["verdict"] == "supported"


def test_failed_bootstrap_replicates_are_counted_and_reported():
    grid, book = _perfect_grid()
    grid.loc[grid["turn"] > 2, ["c1", "c2"]] = 0.0  # only turns 1 and 2 vary: most resamples have no variation
    overall = fg.overall_agreement(grid, book, 200)
    assert overall.estimate == 1.0 and overall.failed > 10 and overall.ci_low is None
    assert f"{overall.failed} of 200 bootstrap replicates had no variation" in overall.reason
    claim = fg.coding_claim(overall)
    assert claim.verdict == "not testable" and f"{overall.failed} of 200 replicates undefined" in claim.test
    assert any("bootstrap replicates had no variation" in t for t, _ in fg.agreement_notes(
        fg.CoderAgreement(fg.agreement(grid, book), overall, 2)))


def test_planted_kappa_is_recovered():
    world = make_world(5000, seed=8, n_fg_sessions=30)
    t, c, b = world["fg_transcripts"], world["fg_codes"], world["fg_codebook"]
    agree = fg.agreement(fg.coding_grid(t, c, b), b).set_index("code")
    expected = pd.Series(world.truth.focus_groups.expected_kappa)
    assert (agree["kappa"] - expected).abs().max() < 0.12


def test_theme_counts_are_distinct_speakers():
    t = pd.DataFrame({"session_id": "S", "turn": [1, 2, 3], "speaker": ["x", "x", "y"], "text": ["a", "b", "c"]})
    agreed = pd.DataFrame({"session_id": "S", "turn": [1, 2, 3], "c1": [1, 0, 0], "c2": [0, 1, 1]})
    book = pd.DataFrame({"code": ["c1", "c2"], "theme": ["speed", "speed"]})
    assert fg.theme_frequencies(t, agreed, book).set_index("theme").at["speed", "speakers"] == 2  # not 3


def test_fold_groups_hides_a_folded_group_that_stays_small():
    recoded, folded = fg.fold_groups(pd.Series(["a"] * 3 + ["b"] * 1), 5)
    assert folded == ["a", "b"] and recoded.isna().all()
    recoded, folded = fg.fold_groups(pd.Series(["a"] * 9 + ["b"] * 2 + ["c"] * 6), 5)
    assert folded == ["b", "c"] and (recoded == OTHER).sum() == 8  # b alone would be recoverable


# ---------------------------------------------------------------------------------------------
# inputs


def test_synthetic_source_loads_with_its_truth_and_records_the_inputs():
    ledger = Ledger()
    source = sources.synthetic_world(fg.TABLES, n_customers=300, seed=4)
    data = fg.load(source, ledger)
    assert data.synthetic and source.truth.focus_groups.expected_kappa and data.coders == 2
    assert [i["table"] for i in ledger.inputs] == list(fg.TABLES)


def test_focus_group_input_errors(tmp_path):
    world = make_world(200, seed=6)
    codes = world["fg_codes"].copy()
    codes.loc[0, "code"] = "not_a_code"
    world.tables["fg_codes"] = codes
    with pytest.raises(InputError, match=r"column 'code': 1 row\(s\) use codes that are not in the codebook "
                                         r"\(\['not_a_code'\]\): row 2: 'not_a_code'"):
        fg.load(files(world, tmp_path), Ledger())


def test_missing_table_is_refused():
    with pytest.raises(InputError, match="give all three"):
        fg.load(sources.from_files({"fg_transcripts": "t.csv"}), Ledger())


def test_personal_session_ids_become_pseudonyms_noted_in_the_ledger(tmp_path):
    world = make_world(200, seed=6)
    world.tables["fg_transcripts"] = world["fg_transcripts"].replace({"session_id": {"FG01": "Maria Ivanova"}})
    world.tables["fg_codes"] = world["fg_codes"].replace({"session_id": {"FG01": "Maria Ivanova"}})
    ledger = Ledger()
    data = fg.load(files(world, tmp_path), ledger)
    assert "Maria Ivanova" not in set(data.transcripts["session_id"]) | set(data.codes["session_id"])
    assert any("session id(s) looked like personal data" in n for n in ledger.notes)


# ---------------------------------------------------------------------------------------------
# confidentiality and quotes


def test_scrubber_removes_every_planted_identifier():
    world = make_world(300, seed=4)
    t = world["fg_transcripts"]
    names = list(t["speaker"].unique())
    text = " ".join(scrub(x, names) for x in t["text"])
    pii = world.truth.focus_groups.planted_pii
    for value in pii.all():
        assert value not in text, value
    assert scrub("Я им доверяю уже много лет.") == "Я им доверяю уже много лет."  # no false positive
    assert "[phone]" in scrub("звоните 8 (912) 345-67-89") and "[e-mail]" in scrub("a.b@c.ru")


@pytest.mark.parametrize(("text", "language"), [
    ("Я им доверяю уже много лет.", "Russian"), ("The app crashes when I pay.", "English"),
    ("Очередь была огромная. I waited forty minutes.", "Russian and English"),
    ("Купил iPhone в магазине на Тверской улице", "Russian"),  # a brand name does not make it bilingual
    ("Меня зовут [name], пишите на [e-mail].", "Russian"),  # scrubbing placeholders are not the speaker's words
    ("123 456", ""), ("日本語です", "other language"),
])
def test_quote_language_is_told_by_script(text, language):
    assert fg.quote_language(text) == language


def test_quotes_are_deduplicated_on_normalised_text_and_carry_their_language():
    t = pd.DataFrame({"session_id": "S", "turn": [1, 2, 3, 4, 5], "speaker": list("abcde"), "role": "customer",
                      "text": ["Rude!", " rude. ", "RUDE", "Грубо.", "Ещё грубо"]})
    agreed = pd.DataFrame({"session_id": "S", "turn": [1, 2, 3, 4, 5], "rude_staff": 1})
    book = pd.DataFrame({"code": ["rude_staff"], "theme": ["staff"]})
    q = fg.quotes(t, agreed, book, k=5, min_group=1)
    assert q["quote"].tolist() == ["RUDE", "Грубо.", "Ещё грубо"]  # shortest first; "Rude!" and "rude." repeat it
    assert q["language"].tolist() == ["English", "Russian", "Russian"]
    assert fg.normalised("  Ещё,  ГРУБО!") == fg.normalised("еще грубо")
    assert "language" in fg.quotes_table(q) and "what was said" in fg.quotes_table(q)


# ---------------------------------------------------------------------------------------------
# what a reader sees: labels, sentences, tables, figures


def test_labels_come_from_an_optional_label_column_and_coder_names(tmp_path, clean_labels):
    from cxresearch.display import plain, use_labels

    world = make_world(300, seed=4)
    book = world["fg_codebook"].assign(label="")
    book.loc[book["code"] == "wait_time", "label"] = "Waiting too long"
    world.tables["fg_codebook"] = book
    data = fg.load(files(world, tmp_path), Ledger())
    assert fg.table_labels(data.codebook, "code") == {"wait_time": "Waiting too long"}  # empty labels: spelled out
    assert fg.coder_labels(["coder_a", "rater_2", "Anna"]) == {"coder_a": "coder A", "rater_2": "rater 2",
                                                               "Anna": "Anna"}
    use_labels(fg.reader_labels(data), user={"trust_brand": "Trust", "coder_b": "Olga"})
    assert [plain(c) for c in ("wait_time", "trust_brand", "feeling_ignored", "coder_a", "coder_b")] == [
        "Waiting too long", "Trust", "feeling ignored", "coder A", "Olga"]
    grid = fg.coding_grid(data.transcripts, data.codes, data.codebook)
    assert "applied by Olga" in fg.agreement_table(fg.agreement(grid, data.codebook)).columns  # the user's label wins


def test_sentences_say_what_the_numbers_mean():
    grid, book = _perfect_grid()
    t = pd.DataFrame({"session_id": "S", "turn": range(1, 41), "speaker": [f"p{i % 6}" for i in range(40)],
                      "role": "customer", "text": "x"})
    data = fg.FocusGroups(t, grid.assign(code="c1").iloc[:0], book)
    notes = fg.overview_notes(data, grid, ["moderator"], 5)
    assert "one session" in notes[1][0] and "Folded" in notes[-1][0] and notes[-1][1]["labels"] == "moderator"
    coding = fg.coder_agreement(grid, book, 50)
    text = " ".join(t for t, _ in fg.agreement_notes(coding))
    assert "Krippendorff's alpha **{a:.3f}**" in text and "Every code with a defined alpha reaches 0.667" in text
    assert checks.focus_group_notes(None, coding, pd.DataFrame(columns=["quote"]))[0]["template"].startswith(
        "Not synthetic data")


SNAKE = r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b"


def test_report_tables_have_plain_headers():
    world = make_world(300, seed=2)
    t, c, b = world["fg_transcripts"], world["fg_codes"], world["fg_codebook"]
    data = fg.FocusGroups(t, c, b)
    grid = fg.coding_grid(t, c, b)
    found = fg.topics(data, grid, 1)
    tables = [fg.agreement_table(fg.agreement(grid, b)), fg.frequency_table(found.codes, b),
              fg.theme_table(found.themes), fg.pairs_table(found.pairs)]
    for table in tables:
        assert not [h for h in table.columns if re.search(SNAKE, str(h))], table.columns
    assert "applied by coder A" in tables[0].columns and "Cohen's kappa" in tables[0].columns
    assert "note" not in tables[0].columns  # nothing to say: no empty column


def test_metrics_and_claim_of_a_run():
    world = make_world(300, seed=2)
    data = fg.FocusGroups(world["fg_transcripts"], world["fg_codes"], world["fg_codebook"])
    grid = fg.coding_grid(data.transcripts, data.codes, data.codebook)
    coding = fg.coder_agreement(grid, data.codebook, 50)
    m = fg.metrics(data, coding, fg.topics(data, grid, 5))
    assert m["n_sessions"]["headline"] and {"kappa", "krippendorff_alpha", "cooccurrence_top_pairs"} <= set(m)
    results = Results("t", "t")
    for name, metric in m.items():
        results.metric(name, **metric)
    assert results.headline == ["n_sessions", "n_speakers", "overall_alpha"]
    claim = fg.coding_claim(coding.overall)
    assert claim.unit == "" and "0.667" in claim.meaning and "chance" in claim.meaning


def test_figures_draw_what_they_are_given(clean_labels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cxresearch.display import use_labels

    world = make_world(300, seed=2)
    data = fg.FocusGroups(world["fg_transcripts"], world["fg_codes"], world["fg_codebook"])
    use_labels({"wait_time": "Waiting too long"})
    found = fg.topics(data, fg.coding_grid(data.transcripts, data.codes, data.codebook), 1)
    ax = fg.plot_heatmap(found.cooccurrence)
    ticks = [x.get_text() for x in ax.get_xticklabels() + ax.get_yticklabels()]
    assert "Waiting too long" in ticks and not any("_" in x for x in ticks)
    n = len(data.codebook)
    assert len(ax.texts) == n * (n - 1) // 2  # every cell of the lower triangle is annotated
    ax = fg.plot_themes(found.bars)
    names = [x.get_text() for x in ax.get_yticklabels()]
    assert "Waiting too long" in names and len(names) == n
    assert ax.get_legend() is not None and "speakers" in ax.get_legend().get_texts()[0].get_text()
    assert found.bars["theme speakers"].notna().all()
    assert "Most frequent" in fg.heatmap_alt(found.pairs) and "grouped by theme" in fg.themes_alt(found.codes)
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# the notebook end to end


@pytest.mark.slow
def test_notebook_default_run_speaks_plain_words(tmp_path):
    from cxresearch.runner import RunSpec, run_notebook
    from tests.plain_words import raw_words

    res = run_notebook(RunSpec("focus_groups", parameters={"labels": {"wait_time": "Waiting too long"}}), tmp_path)
    assert res["status"] == "ok", res.get("error")
    for key in ("n_sessions", "n_speakers", "theme_counts", "kappa", "krippendorff_alpha", "cooccurrence_top_pairs"):
        assert key in res["metrics"], key
    html = (tmp_path / "focus_groups" / "report.html").read_text()
    assert "@example.com" not in html and "+7 9" not in html
    assert "Waiting too long" in html and "coder A" in html and "Russian" in html and "English" in html
    assert raw_words(html) == [] and "Chart for" not in html  # every figure describes itself
    assert "chance" in {c["id"]: c for c in res["claims"]}["coding_is_reliable"]["meaning"]


@pytest.mark.slow
def test_script_and_img_onerror_are_inert_in_the_report(tmp_path):
    from cxresearch.runner import RunSpec, run_notebook

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


def test_notebook_holds_calls_only():
    text = (Path(__file__).resolve().parents[1] / "notebooks" / "focus_groups.ipynb").read_text(encoding="utf-8")
    assert "Markdown(f" not in text and "min_group_size=min_group_size" in text and "notebook.start(" in text
