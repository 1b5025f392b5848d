"""Service audits: independent checks of intervals and ICC, planted compliance, ranking, claims, plain words."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxresearch import audits as au
from cxresearch import checks, sources
from cxresearch.io import InputError, Ledger
from cxresearch.results import Results
from cxresearch.stats import Claim
from cxresearch.synth import make_world, write_world

TABLES = ("audits", "audit_criteria", "customers")


def files(world, tmp_path: Path, tables: tuple[str, ...] = TABLES) -> sources.Source:
    paths = write_world(world, tmp_path)
    return sources.from_files({t: paths[t] for t in tables})


@pytest.fixture(scope="module")
def world():
    return make_world(300, seed=2)


def test_wilson_intervals_equal_statsmodels_and_icc_equals_pingouin(world):
    from statsmodels.stats.proportion import proportion_confint

    scores = au.primary_scores(world["audits"])
    rates = au.criterion_pass_rates(scores, world["audit_criteria"]).set_index("criterion")
    s = scores.loc[scores["criterion"] == "greeting", "score"]
    lo, hi = proportion_confint(s.sum(), len(s), method="wilson")
    assert math.isclose(rates.at["greeting", "ci_low"], lo) and math.isclose(rates.at["greeting", "ci_high"], hi)
    pingouin = pytest.importorskip("pingouin")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 1)) + rng.normal(scale=0.5, size=(40, 3))
    long = pd.DataFrame([(i, j, x[i, j]) for i in range(40) for j in range(3)], columns=["target", "rater", "score"])
    table = pingouin.intraclass_corr(long, "target", "rater", "score").set_index("Type")
    ref = table.at["ICC(A,1)" if "ICC(A,1)" in table.index else "ICC2", "ICC"]  # label changed in pingouin 0.7
    assert math.isclose(au.icc_2_1(x), ref, rel_tol=1e-10)


def test_scale_means_have_t_intervals(world):
    from scipy import stats

    scores = au.primary_scores(world["audits"])
    rates = au.criterion_pass_rates(scores, world["audit_criteria"]).set_index("criterion")
    s = scores.loc[scores["criterion"] == "friendliness", "score"].astype(float)
    lo, hi = stats.t.interval(0.95, len(s) - 1, loc=s.mean(), scale=stats.sem(s))
    assert math.isclose(rates.at["friendliness", "ci_low"], lo) and math.isclose(rates.at["friendliness", "ci_high"], hi)


def test_undefined_icc_is_nan():
    assert math.isnan(au.icc_2_1(np.full((6, 2), 3.0))) and math.isnan(au.icc_2_1(np.ones((1, 2))))


def test_planted_compliance_is_recovered():
    world = make_world(5000, seed=8, audits_per_store=40)
    full = au.full_compliance(au.primary_scores(world["audits"]), world["audit_criteria"])
    assert full.ci_low <= world.truth.audits.share_full_compliance_observed <= full.ci_high


def test_audit_score_uses_each_criterion_scale():
    criteria = pd.DataFrame({"criterion": ["b", "s5", "s10"], "kind": ["binary", "scale", "scale"],
                             "weight": [1.0, 1.0, 2.0], "must_have": [True, False, False],
                             "scale": ["pass/fail", "1-5", "0–10"]})
    scores = pd.DataFrame({"audit_id": ["A"] * 3 + ["B"] * 3, "unit": "U", "date": pd.Timestamp("2024-01-01"),
                           "criterion": ["b", "s5", "s10"] * 2, "score": [1, 5, 10, 0, 1, 5]})
    table = au.audit_scores(scores, criteria).set_index("audit_id")["score"]
    assert table["A"] == 100 and math.isclose(table["B"], 100 * (0 + 0 + 2 * 0.5) / 4)


def test_ranking_singles_out_planted_best_and_worst_units():
    rng = np.random.default_rng(3)
    means = {"U1": 90, "U2": 60, "U3": 60, "U4": 60, "U5": 60, "U6": 60, "U7": 60, "U8": 20}
    table = pd.DataFrame([(u, m + rng.normal(0, 5)) for u, m in means.items() for _ in range(12)],
                         columns=["unit", "score"])
    r = au.separable(au.unit_ranking(table, 300))
    assert r.loc[r["clearly top"], "unit"].tolist() == ["U1"]
    assert r.loc[r["clearly bottom"], "unit"].tolist() == ["U8"]
    one = au.separable(au.unit_ranking(table[table["unit"] == "U1"], 50))
    assert not one["clearly top"].any() and not one["clearly bottom"].any()


def test_rank_units_folds_small_units_and_counts_unscored_audits(world):
    scores = au.primary_scores(world["audits"])
    criteria = world["audit_criteria"]
    units = au.rank_units(scores, criteria, 5, 50)
    assert units.ranked == len(units.ranking) and units.unscored == 0
    assert units.best_first["mean"].is_monotonic_decreasing
    zero = criteria.assign(weight=np.where(criteria["criterion"] == "greeting", 1.0, 0.0))
    one = scores[scores["audit_id"] == scores["audit_id"].iloc[0]]
    only_zero = one[one["criterion"] != "greeting"]
    assert au.rank_units(pd.concat([scores, only_zero.assign(audit_id="X")]), zero, 5, 20).unscored == 1


def test_compliance_claim_uses_the_range_verdict_and_carries_the_truth():
    inside = au.Compliance(0.15, 0.11, 0.19, 400)
    above = au.Compliance(0.5, 0.45, 0.55, 400)
    assert au.compliance_claim(inside).verdict == "supported"
    assert au.compliance_claim(above).verdict == "not supported"
    results = Results("t", "t")
    full = au.Compliance(0.52, 0.46, 0.58, 240)
    results.add(au.compliance_claim(full, truth=0.532))
    assert results.claims[-1]["unit"] == "share" and results.claims[-1]["note"] is None  # the truth is inside
    results.add(au.compliance_claim(full, truth=0.15))
    assert "planted value 15.0%" in results.claims[-1]["note"]
    missing = au.compliance_claim(au.Compliance(reason="no must-have criterion was audited"))
    assert missing.verdict == "not testable" and "no must-have criterion" in missing.test


def test_churn_link_claim_and_sentence_read_the_sign():
    link = au.Correlation(-0.54, -0.79, -0.13, 0.01, 20)
    claim = au.churn_link_claim(link)
    assert isinstance(claim, Claim) and claim.verdict == "supported" and claim.meaning.startswith("A rank correlation")
    assert "lost a smaller share" in au.churn_link_notes(link)[0][1]["meaning"]
    assert "did not lose" in au.churn_link_notes(au.Correlation(0.3, 0.1, 0.5, 0.01, 20))[0][1]["meaning"]
    assert "not tested" in au.churn_link_notes(au.Correlation(reason="x"))[0][0]


def test_churn_link_needs_customers_with_their_unit(world):
    units = au.rank_units(au.primary_scores(world["audits"]), world["audit_criteria"], 5, 50)
    assert "no customer table" in au.churn_link(units.ranking, None, "store").reason
    assert "no customer table" in au.churn_link(units.ranking, world["customers"], "no_such_column").reason
    link = au.churn_link(units.ranking, world["customers"], "store", 5)
    assert link.n == len(link.joined) and (link.estimate is None) == (link.reason is not None)


def test_correlation_not_estimable_cases():
    assert au.correlation(np.arange(3), np.arange(3)).estimate is None
    assert au.correlation(np.arange(6), np.ones(6)).estimate is None
    r = au.correlation(np.arange(8), np.arange(8)[::-1])
    assert r.estimate == -1.0 and r.ci_low <= r.estimate <= r.ci_high


# ---------------------------------------------------------------------------------------------
# inputs


def test_synthetic_source_loads_customers_and_truth():
    ledger = Ledger()
    source = sources.synthetic_world(TABLES, n_customers=300, seed=4)
    data = au.load(source, ledger)
    assert data.customers is not None and data.auditors >= 2
    planted = checks.audit_compliance(source.truth)
    assert planted == source.truth.audits.share_full_compliance_observed and checks.audit_compliance(None) is None
    full = au.full_compliance(data.audits, data.criteria)
    assert "planted" in checks.audit_notes(source.truth, full)[0]["template"]
    assert checks.audit_notes(None, full)[0]["template"].startswith("Not synthetic data")
    assert [i["table"] for i in ledger.inputs] == list(TABLES)


def test_audit_input_errors(tmp_path):
    world = make_world(200, seed=6)
    audits = world["audits"].copy()
    audits.loc[audits.index[audits["kind"] == "binary"][0], "score"] = 3
    world.tables["audits"] = audits
    with pytest.raises(InputError, match=r"column 'score': 1 score\(s\) of binary criteria are not 0 or 1: row \d+: 3.0"):
        au.load(files(world, tmp_path, ("audits", "audit_criteria")), Ledger())
    with pytest.raises(InputError, match="go together"):
        au.load(files(world, tmp_path, ("audits",)), Ledger())


def test_labels_come_from_the_criteria_file(tmp_path, world, clean_labels):
    assert au.table_labels(world["audit_criteria"], "criterion") == {}  # no label column at all
    criteria = world["audit_criteria"].assign(label=lambda d: d["criterion"].str.upper())
    paths = write_world(world, tmp_path)
    criteria.to_csv(tmp_path / "criteria.csv", index=False)
    data = au.load(sources.from_files({"audits": paths["audits"], "audit_criteria": tmp_path / "criteria.csv"}),
                   Ledger())
    assert au.reader_labels(data)["needs_question"] == "NEEDS_QUESTION" and data.customers is None


# ---------------------------------------------------------------------------------------------
# what a reader sees


SNAKE = r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b"


def test_report_tables_have_plain_headers(world):
    scores = au.primary_scores(world["audits"])
    rates = au.criterion_pass_rates(scores, world["audit_criteria"])
    units = au.rank_units(scores, world["audit_criteria"], 5, 50)
    tables = [au.pass_rate_table(rates), au.scale_table(rates, world["audit_criteria"]),
              au.ranking_table(units.ranking), au.auditor_table(au.auditor_agreement(world["audits"]).table)]
    for table in tables:
        assert not [h for h in table.columns if re.search(SNAKE, str(h)) and h not in ("ci_low", "ci_high")], table.columns
    assert {"rank (best)", "rank (worst)", "score (0–100)"} <= set(tables[2].columns)
    assert tables[0].columns.tolist()[:3] == ["criterion", "must-have", "audits"]
    assert tables[0]["must-have"].iloc[0]  # must-have criteria first


def test_metrics_of_a_run(world):
    data = au.Audits(world["audits"], world["audit_criteria"], world["customers"])
    scores = au.primary_scores(data.audits)
    rates = au.criterion_pass_rates(scores, data.criteria, 5)
    full = au.full_compliance(scores, data.criteria, 5)
    units = au.rank_units(scores, data.criteria, 5, 50)
    agreement = au.auditor_agreement(data.audits)
    m = au.metrics(data, rates, units, full, agreement, au.churn_link(units.ranking, data.customers, "store", 5))
    assert {"n_audits", "criterion_pass_rate", "unit_scores", "share_full_compliance", "auditor_agreement"} <= set(m)
    results = Results("t", "t")
    for name, metric in m.items():
        results.metric(name, **metric)
    assert results.units["share_full_compliance"] == "share" and "share_full_compliance" in results.headline
    assert agreement.testable and au.auditor_notes(agreement) == []


def test_figures_use_labels_dates_and_percent_axes(world, clean_labels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from cxresearch.display import use_labels

    use_labels({"S01": "Tverskaya store"})
    scores = au.primary_scores(world["audits"])
    units = au.rank_units(scores, world["audit_criteria"], 1, 50)
    ax = au.plot_ranking(units.best_first)
    assert "Tverskaya store" in [x.get_text() for x in ax.get_yticklabels()]
    plt.gcf().canvas.draw()
    assert all(x.get_text().endswith("%") for x in ax.get_xticklabels() if x.get_text())
    ax = au.plot_trend(au.monthly_trend(units.audits, 1))
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    assert "% of the maximum" in ax.get_ylabel()
    table = au.pass_rate_table(au.criterion_pass_rates(scores, world["audit_criteria"]))
    ax = au.plot_pass_rates(table)
    assert len(ax.get_yticklabels()) == int(table["pass rate"].notna().sum())
    plt.close("all")


def test_alt_texts_describe_the_figures(world, clean_labels):
    scores = au.primary_scores(world["audits"])
    rates = au.criterion_pass_rates(scores, world["audit_criteria"])
    units = au.rank_units(scores, world["audit_criteria"], 1, 50)
    assert "Lowest: next steps confirmed" in au.pass_rates_alt(au.pass_rate_table(rates))
    assert au.trend_alt(au.monthly_trend(units.audits, 1)).startswith("Line chart of the average audit score per month")
    assert "best first" in au.ranking_alt(units.best_first) and "_" not in au.ranking_alt(units.best_first)
    link = au.ChurnLink(-0.5, -0.8, -0.1, 0.01, 6, joined=pd.DataFrame({"mean": [1.0] * 6, "left": [0.1] * 6}))
    assert "lost fewer customers" in au.churn_link_alt(link)


# ---------------------------------------------------------------------------------------------
# the notebook end to end


@pytest.mark.slow
def test_notebook_default_run_speaks_plain_words(tmp_path):
    from cxresearch.runner import RunSpec, run_notebook
    from tests.plain_words import raw_words

    res = run_notebook(RunSpec("service_audits", parameters={"labels": {"S01": "Tverskaya store"}}), tmp_path)
    assert res["status"] == "ok", res.get("error")
    for key in ("n_audits", "criterion_pass_rate", "unit_scores", "share_full_compliance", "auditor_agreement"):
        assert key in res["metrics"], key
    html = (tmp_path / "service_audits" / "report.html").read_text()
    assert "Tverskaya store" in html and "rank (worst)" in html and "must-have" in html
    assert raw_words(html) == [] and "Chart for" not in html  # every figure describes itself
    claims = {c["id"]: c for c in res["claims"]}
    assert claims["only_10_20_percent_get_intended_service"]["unit"] == "share"
    assert claims["only_10_20_percent_get_intended_service"]["truth"] is not None
    assert "Negative" in claims["better_audited_units_keep_customers"]["meaning"]


def test_notebook_holds_calls_only():
    import nbformat

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "service_audits.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "Markdown(f" not in code and "min_group_size=min_group_size" in code and "notebook.start(" in code
    assert not re.search(r"[<>]=? ?0\b|p_value", code)  # no sign or significance rule in the notebook
