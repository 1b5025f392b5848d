"""Bad-input corpus: focus groups and service audits.

Most cases call the loaders and analysis functions of :mod:`cxresearch.focus_groups` and
:mod:`cxresearch.audits` directly on a tiny world
(2 focus-group sessions, 6 audited units); eight cases run a notebook end to end to show the refused or
handled report (one coder, script injection, personal data, scores outside the scale, mathtext, ...).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest

from cxresearch import audits as au
from cxresearch import focus_groups as fg
from cxresearch import sources
from cxresearch.io import InputError, Ledger
from cxresearch.privacy import OTHER
from cxresearch.results import Results
from cxresearch.synth import make_world

from .conftest import assert_handled, assert_inert_in_browser, assert_refused

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# payloads that mark <body> with data-pwned if they ever run (checked in headless Chromium)
EVIL = "<script>document.body.setAttribute('data-pwned','1')</script>"
IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"


@pytest.fixture(scope="module")
def world():
    return make_world(300, seed=3, n_fg_sessions=2, n_stores_audited=6, audits_per_store=6)


def _csv(tmp_path: Path, name: str, df: pd.DataFrame) -> str:
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    return str(path)


def fg_files(tmp_path: Path, world, transcripts=None, codes=None, codebook=None) -> dict[str, str]:
    return {"transcripts_path": _csv(tmp_path, "transcripts", world["fg_transcripts"] if transcripts is None else transcripts),
            "codes_path": _csv(tmp_path, "codes", world["fg_codes"] if codes is None else codes),
            "codebook_path": _csv(tmp_path, "codebook", world["fg_codebook"] if codebook is None else codebook)}


def au_files(tmp_path: Path, world, audits=None, criteria=None, customers: Any = True) -> dict[str, str]:
    out = {"audits_path": _csv(tmp_path, "audits", world["audits"] if audits is None else audits),
           "criteria_path": _csv(tmp_path, "criteria", world["audit_criteria"] if criteria is None else criteria)}
    if customers is not None:
        out["customers_path"] = _csv(tmp_path, "customers", world["customers"] if customers is True else customers)
    return out


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


def fg_source(files: dict[str, str]) -> sources.Source:
    return sources.from_files({"fg_transcripts": files["transcripts_path"], "fg_codes": files["codes_path"],
                               "fg_codebook": files["codebook_path"]})


def au_source(files: dict[str, str]) -> sources.Source:
    return sources.from_files({"audits": files["audits_path"], "audit_criteria": files["criteria_path"],
                               "customers": files.get("customers_path")})


def fg_pipeline(files: dict[str, str], min_group: int = 5, n_boot: int = 50) -> dict[str, Any]:
    """What the focus-group notebook computes, as functions; checks that nothing non-finite is published."""
    data = fg.load(fg_source(files), Ledger())
    t, b = data.transcripts, data.codebook
    grid = fg.coding_grid(t, data.codes, b)
    coding = fg.coder_agreement(grid, b, n_boot)
    found = fg.topics(data, grid, min_group)
    results = Results("focus_groups", "t", min_group_size=min_group)
    for name, metric in fg.metrics(data, coding, found).items():
        results.metric(name, **metric)
    results.add(fg.coding_claim(coding.overall))
    claim = results.claims[-1]
    payload = json.dumps(results.payload(), allow_nan=False)  # raises on NaN/inf
    assert all(math.isfinite(x) for x in _numbers(results.metrics))
    fg.agreement_notes(coding), fg.topic_notes(found)  # the sentences never fail
    return {"t": t, "codes": data.codes, "book": b, "grid": grid, "agree": coding.per_code, "coding": coding,
            "overall": coding.overall, "agreed": found.agreed, "freq": found.codes, "found": found, "claim": claim,
            "payload": payload, "quotes": fg.quotes(t, found.agreed, b, 5, min_group)}


def au_pipeline(files: dict[str, str], min_group: int = 5, n_boot: int = 50) -> dict[str, Any]:
    """What the audit notebook computes, as functions; checks that nothing non-finite is published."""
    data = au.load(au_source(files), Ledger())
    scores = au.primary_scores(data.audits)
    rates = au.criterion_pass_rates(scores, data.criteria, min_group)
    full = au.full_compliance(scores, data.criteria, min_group)
    units = au.rank_units(scores, data.criteria, min_group, n_boot)
    agreement = au.auditor_agreement(data.audits)
    link = au.churn_link(units.ranking, data.customers, "store", min_group)
    results = Results("service_audits", "t", min_group_size=min_group)
    for name, metric in au.metrics(data, rates, units, full, agreement, link).items():
        results.metric(name, **metric)
    results.add(au.compliance_claim(full), au.churn_link_claim(link))
    claims = results.claims
    json.dumps(results.payload(), allow_nan=False)
    assert all(math.isfinite(x) for x in _numbers(results.metrics))
    for notes in (au.compliance_notes(full, rates), au.fold_notes(units), au.ranking_notes(units),
                  au.auditor_notes(agreement), au.churn_link_notes(link)):
        assert all(isinstance(t, str) for t, _ in notes)
    return {"audits": data.audits, "rates": rates, "full": full, "ranking": units.ranking, "folded": units.folded,
            "consistency": agreement.table, "agreement": agreement, "link": link, "claims": claims,
            "table": units.audits}


# =============================================================================================
# focus groups: function level


def test_one_coder_makes_agreement_not_testable(tmp_path, world):
    codes = world["fg_codes"][world["fg_codes"]["coder"] == "coder_a"]
    r = fg_pipeline(fg_files(tmp_path, world, codes=codes))
    assert r["agree"]["krippendorff_alpha"].isna().all() and "kappa" not in r["agree"]
    assert r["agree"]["note"].str.contains("at least two coders").all()
    assert r["overall"].estimate is None and "only one coder" in r["overall"].reason
    assert r["claim"]["verdict"] == "not testable" and "at least two coders" in r["claim"]["test"]
    assert fg.weak_codes(r["agree"]) == []  # never "every code reaches 0.667"
    assert not any("reaches" in t for t, _ in fg.agreement_notes(r["coding"]))
    assert "NaN" not in r["payload"]


def test_code_nobody_applied_has_undefined_agreement_not_nan(tmp_path, world):
    book = pd.concat([world["fg_codebook"], pd.DataFrame([{"code": "never_used", "theme": "other",
                                                           "definition": "nobody"}])])
    r = fg_pipeline(fg_files(tmp_path, world, codebook=book))
    row = r["agree"].set_index("code").loc["never_used"]
    assert "nobody applied" in row["note"] and math.isnan(row["krippendorff_alpha"])
    assert "never_used" not in json.loads(r["payload"])["metrics"]["krippendorff_alpha"]
    assert r["freq"].set_index("code").at["never_used", "speakers"] == 0
    assert r["claim"]["verdict"] in ("supported", "not supported", "inconclusive")  # the others still count


def test_identical_codes_everywhere_give_not_estimable_alpha(tmp_path, world):
    t = world["fg_transcripts"]
    codes = pd.DataFrame([(s, n, cd, code) for s, n in zip(t["session_id"], t["turn"], strict=True)
                          for cd in ("coder_a", "coder_b") for code in world["fg_codebook"]["code"]],
                         columns=["session_id", "turn", "coder", "code"])
    r = fg_pipeline(fg_files(tmp_path, world, codes=codes))
    assert r["agree"]["note"].str.contains("no variation").all()
    assert r["overall"].estimate is None and "no code varies" in r["overall"].reason
    assert r["claim"]["verdict"] == "not testable"


def test_one_session_is_analysed(tmp_path, world):
    t = world["fg_transcripts"][world["fg_transcripts"]["session_id"] == "FG01"]
    codes = world["fg_codes"][world["fg_codes"]["session_id"] == "FG01"]
    r = fg_pipeline(fg_files(tmp_path, world, transcripts=t, codes=codes))
    assert r["t"]["session_id"].nunique() == 1
    assert r["overall"].turns == len(t)


def test_transcripts_with_header_only_are_refused(tmp_path, world):
    files = fg_files(tmp_path, world, transcripts=world["fg_transcripts"].iloc[0:0])
    with pytest.raises(InputError, match=r"(?s)'fg_transcripts'.*no rows.*Fix"):
        fg_pipeline(files)


def test_transcripts_without_any_text_give_no_quotes(tmp_path, world):
    t = world["fg_transcripts"].assign(text="")
    r = fg_pipeline(fg_files(tmp_path, world, transcripts=t), min_group=1)
    assert r["quotes"].empty and r["overall"].estimate is not None


def test_codes_for_turns_that_do_not_exist_are_refused_with_rows(tmp_path, world):
    codes = world["fg_codes"].copy()
    codes.loc[3, "turn"] = 999
    codes.loc[7, "session_id"] = "FG99"
    with pytest.raises(InputError, match=r"(?s)'fg_codes'.*codes\.csv.*columns 'session_id'/'turn': 2 coded "
                                         r"segment\(s\).*row 5: session 'FG01', turn 999.*row 9.*Fix"):
        fg_pipeline(fg_files(tmp_path, world, codes=codes))


def test_codes_missing_from_the_codebook_are_refused_with_rows(tmp_path, world):
    codes = world["fg_codes"].copy()
    codes.loc[0, "code"] = "not_a_code"
    with pytest.raises(InputError, match=r"(?s)column 'code': 1 row\(s\).*not_a_code.*row 2.*Fix"):
        fg_pipeline(fg_files(tmp_path, world, codes=codes))


def test_code_named_like_a_key_column_is_refused(tmp_path, world):
    book, codes = world["fg_codebook"].copy(), world["fg_codes"].copy()
    book.loc[0, "code"] = "turn"
    codes.loc[codes["code"] == world["fg_codebook"].loc[0, "code"], "code"] = "turn"
    with pytest.raises(InputError, match=r"(?s)'fg_codebook'.*reserved column name.*row 2: 'turn'.*Fix"):
        fg_pipeline(fg_files(tmp_path, world, codes=codes, codebook=book))


def test_coder_who_skipped_a_session_is_not_counted_as_disagreeing(tmp_path, world):
    codes = world["fg_codes"]
    skipped = codes[~((codes["coder"] == "coder_b") & (codes["session_id"] == "FG02"))]
    r = fg_pipeline(fg_files(tmp_path, world, codes=skipped))
    assert fg.uncoded_sessions(r["grid"]).to_dict("records") == [{"session_id": "FG02", "coder": "coder_b"}]
    fg01 = world["fg_transcripts"]["session_id"].eq("FG01").sum()
    assert r["overall"].turns == fg01  # only turns both coders coded
    only_fg01 = fg_pipeline(fg_files(tmp_path, world, codes=codes[codes["session_id"] == "FG01"],
                                     transcripts=world["fg_transcripts"].query("session_id == 'FG01'")))
    assert math.isclose(r["overall"].estimate, only_fg01["overall"].estimate, rel_tol=1e-12)


def test_bootstrap_replicates_without_variation_are_counted_not_dropped(tmp_path, world):
    t = world["fg_transcripts"]
    first = t.iloc[0]
    codes = pd.DataFrame([(first["session_id"], first["turn"], cd, "wait_time") for cd in ("coder_a", "coder_b")] +
                         [(s, 1, cd, "rude_staff") for s in ("FG01", "FG02") for cd in ("coder_a", "coder_b")],
                         columns=["session_id", "turn", "coder", "code"])
    r = fg_pipeline(fg_files(tmp_path, world, codes=codes.drop_duplicates()), n_boot=200)
    o = r["overall"]
    assert o.estimate == 1.0 and o.failed > 10  # resamples that miss the coded turns have no variation
    assert o.ci_low is None and "bootstrap replicates had no variation" in o.reason
    assert r["claim"]["verdict"] == "not testable" and f"{o.failed} of 200" in r["claim"]["test"]


def test_tied_top_pairs_are_ordered_by_label(tmp_path, world):
    co = pd.DataFrame(np.array([[3, 2, 2, 2], [2, 3, 1, 2], [2, 1, 3, 0], [2, 2, 0, 3]]),
                      index=["d", "c", "b", "a"], columns=["d", "c", "b", "a"])
    pairs = fg.top_pairs(co, k=3)
    assert pairs[["code A", "code B"]].values.tolist() == [["a", "c"], ["a", "d"], ["b", "d"]]
    assert fg.top_pairs(co.iloc[::-1, ::-1], k=3).equals(pairs)  # input order does not matter


def test_repeated_text_is_quoted_once_per_theme(tmp_path, world):
    t = world["fg_transcripts"].copy()
    turns = world["fg_codes"].query("code == 'rude_staff'")[["session_id", "turn"]].drop_duplicates()
    for s, n in zip(turns["session_id"], turns["turn"], strict=True):
        t.loc[(t["session_id"] == s) & (t["turn"] == n), "text"] = "Rude."
    r = fg_pipeline(fg_files(tmp_path, world, transcripts=t), min_group=1)
    q = r["quotes"]
    assert not q.duplicated(["theme", "quote"]).any()
    assert (q.loc[q["theme"] == "staff", "quote"] == "Rude.").sum() == 1


def test_small_speaker_group_is_folded_in_counts(tmp_path, world):
    t = world["fg_transcripts"].copy()
    first = t.drop_duplicates(["session_id", "speaker"]).iloc[0]
    t.loc[(t["session_id"] == first["session_id"]) & (t["speaker"] == first["speaker"]), "role"] = "moderator"
    r = fg_pipeline(fg_files(tmp_path, world, transcripts=t))
    assert "moderator" in r["freq"].attrs["folded"]
    assert not any("moderator" in c for c in r["freq"].columns)
    table, folded = fg.speaker_groups(r["t"], "role", 5)
    assert "moderator" not in set(table["role"]) and (table["speakers"] >= 5).all()


def test_many_themes_and_mathtext_labels_plot(tmp_path, world):
    book = world["fg_codebook"].copy()
    book["theme"] = [f"theme {i} $\\frac{{1}}{{0}}$ cost $5" for i in range(len(book))]
    book.loc[0, "code"] = "$x^2$ wait"
    codes = world["fg_codes"].replace({"code": {world["fg_codebook"].loc[0, "code"]: "$x^2$ wait"}})
    book = pd.concat([book, pd.DataFrame([{"code": f"extra_{i}", "theme": f"extra theme {i}", "definition": ""}
                                          for i in range(3)])])  # 13 themes: more than the 10 palette colours
    r = fg_pipeline(fg_files(tmp_path, world, codes=codes, codebook=book))
    fg.plot_themes(r["found"].bars)
    fg.plot_themes(fg.theme_bars(r["freq"]))  # without theme totals
    fg.plot_heatmap(r["found"].cooccurrence)
    plt.gcf().canvas.draw()
    plt.close("all")


# =============================================================================================
# service audits: function level


def _scale_row(audits: pd.DataFrame, criterion: str = "friendliness", k: int = 0) -> int:
    return int(audits.index[audits["criterion"] == criterion][k])


@pytest.mark.parametrize(("value", "fragment"), [
    pytest.param(7.0, "'friendliness' 1–5", id="scale-score-above-scale"),
    pytest.param(0.0, "'friendliness' 1–5", id="scale-score-below-scale"),
])
def test_scale_scores_outside_the_scale_are_refused(tmp_path, world, value, fragment):
    audits = world["audits"].copy()
    row = _scale_row(audits)
    audits.loc[row, "score"] = value
    with pytest.raises(InputError) as exc:
        au_pipeline(au_files(tmp_path, world, audits=audits))
    msg = str(exc.value)
    for f in ("'audits'", "audits.csv", "column 'score'", "outside their criterion's scale", fragment,
              f"row {row + 2}: {value}", "Fix"):
        assert f in msg, (f, msg)


@pytest.mark.parametrize("value", [pytest.param(2.0, id="binary-score-2"), pytest.param(0.5, id="binary-score-half"),
                                   pytest.param(-1.0, id="binary-score-negative")])
def test_binary_scores_other_than_0_1_are_refused(tmp_path, world, value):
    audits = world["audits"].copy()
    row = _scale_row(audits, "greeting", 1)
    audits.loc[row, "score"] = value
    with pytest.raises(InputError, match=rf"(?s)column 'score': 1 score\(s\) of binary criteria are not 0 or 1: "
                                         rf"row {row + 2}: {value}.*Fix"):
        au_pipeline(au_files(tmp_path, world, audits=audits))


def test_stated_scale_0_10_is_used(tmp_path, world):
    criteria = world["audit_criteria"].copy()
    criteria.loc[criteria["criterion"] == "friendliness", "scale"] = "0-10"
    audits = world["audits"].copy()
    audits.loc[_scale_row(audits), "score"] = 9.0  # inside 0-10, outside the default 1-5
    r = au_pipeline(au_files(tmp_path, world, audits=audits, criteria=criteria))
    assert au.criterion_scales(criteria).set_index("criterion").loc["friendliness", ["scale_min", "scale_max"]].tolist() == [0, 10]
    assert r["table"]["score"].between(0, 100).all()


def test_unreadable_scale_is_refused(tmp_path, world):
    criteria = world["audit_criteria"].copy()
    criteria.loc[criteria["criterion"] == "competence", "scale"] = "one to five"
    with pytest.raises(InputError, match=r"(?s)'audit_criteria'.*column 'scale'.*row 8: 'one to five'.*Fix"):
        au_pipeline(au_files(tmp_path, world, criteria=criteria))


def test_criteria_missing_from_the_criteria_file_are_refused(tmp_path, world):
    criteria = world["audit_criteria"][world["audit_criteria"]["criterion"] != "farewell"]
    with pytest.raises(InputError, match=r"(?s)column 'criterion': \d+ row\(s\) name criteria that are not in the "
                                         r"criteria file \(\['farewell'\]\): row \d+: 'farewell'.*Fix"):
        au_pipeline(au_files(tmp_path, world, criteria=criteria))


def test_negative_weight_is_refused(tmp_path, world):
    criteria = world["audit_criteria"].copy()
    criteria.loc[2, "weight"] = -1.0
    with pytest.raises(InputError, match=r"(?s)'audit_criteria'.*column 'weight'.*below the minimum 0.*row 4"):
        au_pipeline(au_files(tmp_path, world, criteria=criteria))


def test_all_weights_zero_is_refused(tmp_path, world):
    criteria = world["audit_criteria"].assign(weight=0.0)
    with pytest.raises(InputError, match=r"column 'weight': every weight is 0.*Fix"):
        au_pipeline(au_files(tmp_path, world, criteria=criteria))


def test_kind_that_contradicts_the_criteria_file_is_refused(tmp_path, world):
    audits = world["audits"].copy()
    row = _scale_row(audits, "greeting")
    audits.loc[row, "kind"] = "scale"
    with pytest.raises(InputError, match=rf"(?s)column 'kind': 1 row\(s\) differ.*row {row + 2}: 'scale'.*Fix"):
        au_pipeline(au_files(tmp_path, world, audits=audits))


def test_must_have_scale_criterion_is_refused(tmp_path, world):
    criteria = world["audit_criteria"].copy()
    criteria.loc[criteria["criterion"] == "competence", "must_have"] = True
    with pytest.raises(InputError, match=r"(?s)column 'must_have'.*'competence'.*Fix"):
        au_pipeline(au_files(tmp_path, world, criteria=criteria))


def test_audit_with_two_units_is_refused(tmp_path, world):
    audits = world["audits"].copy()
    audits.loc[1, "unit"] = "S99"
    with pytest.raises(InputError, match=r"(?s)column 'unit': 1 audit\(s\) have more than one unit.*row 2.*Fix"):
        au_pipeline(au_files(tmp_path, world, audits=audits))


def test_one_audit_gives_not_testable_claims_and_no_unit(tmp_path, world):
    audits = world["audits"][world["audits"]["audit_id"] == world["audits"]["audit_id"].iloc[0]]
    r = au_pipeline(au_files(tmp_path, world, audits=audits))
    assert [c["verdict"] for c in r["claims"]] == ["not testable", "not testable"]
    assert r["ranking"].empty  # one audit is below min_group_size: no unit shown, not even "Other"
    assert r["rates"]["audits"].eq(1).all() and r["rates"]["estimate"].isna().all()  # one audit: nothing shown
    assert "fewer than 5 audits" in r["full"].reason


def test_one_unit_is_not_singled_out(tmp_path, world):
    audits = world["audits"][world["audits"]["unit"] == "S01"]
    r = au_pipeline(au_files(tmp_path, world, audits=audits))
    assert len(r["ranking"]) == 1 and not r["ranking"]["clearly top"].any() and not r["ranking"]["clearly bottom"].any()
    assert r["link"].estimate is None and r["claims"][1]["verdict"] == "not testable"


def test_one_auditor_and_identical_double_scores_make_agreement_not_testable(tmp_path, world):
    one = world["audits"].assign(auditor="A1").drop_duplicates(["audit_id", "criterion"])
    r = au_pipeline(au_files(tmp_path, world, audits=one))
    assert r["consistency"].empty
    same = world["audits"].copy()
    same["score"] = same.groupby(["audit_id", "criterion"])["score"].transform("first")
    same.loc[same["kind"] == "scale", "score"] = 3.0
    files = au_files(tmp_path, world, audits=same, customers=None)
    c = au.auditor_agreement(au.load(au_source(files), Ledger()).audits).table
    scale = c.set_index("criteria").loc["scale"]
    assert math.isnan(scale["icc_2_1"]) and "no variation" in scale["note"]
    assert "scale" not in au.auditor_metrics(c)


def test_tied_unit_scores_rank_by_label_on_any_order(tmp_path):
    table = pd.DataFrame({"unit": list("CABD") * 5, "score": [70.0, 70.0, 70.0, 50.0] * 5,
                          "date": pd.Timestamp("2024-01-01")})
    a = au.separable(au.unit_ranking(table, 100))
    b = au.separable(au.unit_ranking(table.iloc[::-1], 100))
    assert a["unit"].tolist() == ["A", "B", "C", "D"] and a["rank"].tolist() == [2.0, 2.0, 2.0, 4.0]
    assert a.equals(b)


def test_small_units_are_folded_and_not_recoverable(tmp_path, world):
    audits = world["audits"]
    keep = audits["audit_id"].isin(audits.loc[audits["unit"] == "S02", "audit_id"].drop_duplicates().iloc[:2])
    audits = audits[(audits["unit"] != "S02") | keep]  # S02 keeps 2 audits
    r = au_pipeline(au_files(tmp_path, world, audits=audits))
    assert "S02" in r["folded"] and len(r["folded"]) >= 2  # S02 (2 audits) plus the next-smallest unit
    assert "S02" not in set(r["ranking"]["unit"])
    other = r["ranking"].set_index("unit").loc[OTHER]
    assert other["audits"] >= 5 and math.isnan(other["rank"])


def test_no_must_have_criterion_makes_the_compliance_claim_not_testable(tmp_path, world):
    criteria = world["audit_criteria"].assign(must_have=False)
    r = au_pipeline(au_files(tmp_path, world, criteria=criteria))
    assert r["full"].estimate is None and r["claims"][0]["verdict"] == "not testable"
    assert "no must-have criterion" in r["claims"][0]["test"]


def test_audits_without_auditor_column_run(tmp_path, world):
    audits = world["audits"].drop(columns="auditor").drop_duplicates(["audit_id", "criterion"])
    r = au_pipeline(au_files(tmp_path, world, audits=audits))
    assert r["consistency"].empty and r["full"].estimate is not None


def test_customers_without_churn_date_skip_the_link(tmp_path, world):
    r = au_pipeline(au_files(tmp_path, world, customers=world["customers"].drop(columns="churn_date")))
    assert r["link"].estimate is None and r["claims"][1]["verdict"] == "not testable"


# =============================================================================================
# full notebook runs


def _no_nan_shown(outcome) -> None:
    body = outcome.html.split("How this report was made")[0]
    for bad in (">nan<", ">NaN<", " nan ", "nan%", "inf<"):
        assert bad not in body, bad


@pytest.mark.slow
def test_notebook_one_coder_says_not_testable(tmp_path, case, world):
    codes = world["fg_codes"][world["fg_codes"]["coder"] == "coder_b"]
    out = case("focus_groups", n_boot=20, **fg_files(tmp_path, world, codes=codes))
    assert_handled(out, "not testable", "agreement needs at least two coders")
    assert "Every code reaches 0.667" not in out.html and "Every code with a defined alpha" not in out.html
    claim = next(c for c in out.results["claims"] if c["id"] == "coding_is_reliable")
    assert claim["verdict"] == "not testable" and claim["estimate"] is None
    assert "overall_alpha" not in out.results["metrics"]
    _no_nan_shown(out)


@pytest.mark.slow
def test_notebook_script_in_codes_themes_and_quotes_is_text(tmp_path, case, world):
    book, codes, t = world["fg_codebook"].copy(), world["fg_codes"].copy(), world["fg_transcripts"].copy()
    old = book.loc[0, "code"]
    book.loc[0, "code"], book.loc[0, "theme"] = EVIL, IMG
    book.loc[1, "theme"] = "$\\frac{1}{0}$ speed"
    codes["code"] = codes["code"].replace({old: EVIL})
    first = codes[codes["code"] == EVIL].iloc[0]
    t.loc[(t["session_id"] == first["session_id"]) & (t["turn"] == first["turn"]), "text"] = f"{EVIL} {IMG} short"
    codes = pd.concat([codes, pd.DataFrame([{**first.to_dict(), "coder": cd} for cd in ("coder_a", "coder_b")])])
    out = case("focus_groups", n_boot=20, min_group_size=1, quotes_per_theme=50,
               **fg_files(tmp_path, world, transcripts=t, codes=codes.drop_duplicates(), codebook=book))
    assert_handled(out)
    assert "&lt;script&gt;" in out.html and "&lt;img" in out.html  # shown, as text
    assert "<script>document" not in out.html and "<img src=x" not in out.html
    assert_inert_in_browser(out.folder / "report.html")
    assert_inert_in_browser(out.folder.parent / "index.html")


@pytest.mark.slow
def test_notebook_personal_data_in_speaker_names_and_sessions_never_published(tmp_path, case, world):
    t = world["fg_transcripts"].copy()
    speaker = t["speaker"].iloc[0]
    t["speaker"] = t["speaker"].replace({speaker: "Ivan Petrov +7 912 345-67-89"})
    t["session_id"] = t["session_id"].replace({"FG01": "Maria Ivanova"})
    t.loc[t.index[:3], "text"] = "My name is Ivan Petrov, call me on +7 912 345-67-89 or ivan.petrov@example.com."
    codes = world["fg_codes"].replace({"session_id": {"FG01": "Maria Ivanova"}})
    out = case("focus_groups", n_boot=20, min_group_size=1, quotes_per_theme=50,
               **fg_files(tmp_path, world, transcripts=t, codes=codes))
    assert_handled(out)
    published = out.html + json.dumps(out.results, ensure_ascii=False)
    for secret in ("Petrov", "912 345", "ivan.petrov@", "Maria Ivanova"):
        assert secret not in published, secret


@pytest.mark.slow
def test_notebook_refuses_scores_outside_the_scale(tmp_path, case, world):
    audits = world["audits"].copy()
    row = _scale_row(audits, "competence", 2)
    audits.loc[row, "score"] = 6.0
    out = case("service_audits", n_boot=20, **au_files(tmp_path, world, audits=audits, customers=None))
    assert_refused(out, "'audits'", "audits.csv", "column 'score'", f"row {row + 2}: 6.0", "'competence' 1–5", "Fix")


@pytest.mark.slow
def test_notebook_hostile_unit_names_are_text_mathtext_or_hidden(tmp_path, case, world):
    """One run, three kinds of unit name: script and markup (shown as text), mathtext (drawn literally, no crash)
    and personal data (never published)."""
    units = {"S01": EVIL, "S02": IMG, "S03": "**bold** [link](javascript:alert(1))",
             "S04": "$\\frac{1}{0}$", "S05": "Shop $5", "S06": "$x^2$ store", "S07": r"\$ escaped $",
             "S08": "Ivan Petrov", "S09": "anna.smirnova@example.com", "S10": "+7 912 345-67-89"}
    audits = world["audits"].replace({"unit": units, "auditor": {"A1": "Maria Ivanova"}})
    customers = world["customers"].replace({"store": units})
    out = case("service_audits", n_boot=20, **au_files(tmp_path, world, audits=audits, customers=customers))
    assert_handled(out, "personal data")
    assert "&lt;script&gt;" in out.html and "&lt;img" in out.html
    assert "<script>document" not in out.html and "<img src=x" not in out.html and 'href="javascript' not in out.html
    assert "unit_scores" in out.results["metrics"] and "Shop $5" in out.results["metrics"]["unit_scores"]
    published = out.html + json.dumps(out.results, ensure_ascii=False)
    for secret in ("Petrov", "anna.smirnova", "912 345", "Ivanova"):
        assert secret not in published, secret
    assert_inert_in_browser(out.folder / "report.html")


@pytest.mark.slow
def test_notebook_one_audit_one_auditor_is_handled(tmp_path, case, world):
    audits = world["audits"][world["audits"]["audit_id"] == world["audits"]["audit_id"].iloc[0]]
    audits = audits.drop_duplicates(["audit_id", "criterion"])
    out = case("service_audits", n_boot=20, **au_files(tmp_path, world, audits=audits))
    assert_handled(out, "not testable", "Only one auditor")
    assert {c["verdict"] for c in out.results["claims"]} == {"not testable"}
    assert out.results["metrics"]["unit_scores"] == {}
    _no_nan_shown(out)
