"""Survey analysis: NPS intervals, raking, reliability, drivers, bias; ECSI and planted truth."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cxresearch import sources, survey
from cxresearch.fits import FITS, FitError
from cxresearch.io import InputError, Ledger
from cxresearch.runner import RunSpec, run_notebook
from cxresearch.stats import Z95, Claim
from cxresearch.synth import make_world

ECSI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecsi_mobi.csv"
needs_ecsi = pytest.mark.skipif(not ECSI.exists(), reason="../shared/data/ecsi_mobi.csv not present")
BLOCKS = {"IMAG": "IMAG", "CUEX": "CUEX", "PERQ": "PERQ", "PERV": "PERV", "CUSA": "CUSA", "CUSCO": "CUSCO",
          "CUSL": "CUSL"}


def test_nps_variance_on_1_2_3_is_five_ninths():
    scores = np.array([10] + [7, 8] + [0, 3, 6])  # 1 promoter, 2 passives, 3 detractors
    r = survey.nps(scores, adjusted=False)
    assert math.isclose(r["variance"], 5 / 9) and math.isclose(r["estimate"], -100 / 3)


def test_adjusted_wald_nps_matches_rocks_2016():
    scores = np.array([10] * 5 + [8] * 3 + [2] * 2)
    r = survey.nps(scores)  # n = 10 < 100: adjusted Wald
    pp, pd_ = (5 + 0.75) / 13, (2 + 0.75) / 13
    half = Z95 * math.sqrt((pp + pd_ - (pp - pd_) ** 2) / 13)
    assert r["method"] == "adjusted Wald"
    assert math.isclose(r["ci_low"], 100 * (pp - pd_ - half)) and math.isclose(r["ci_high"], 100 * (pp - pd_ + half))


def test_nps_interval_coverage():
    rng = np.random.default_rng(2)
    p = np.array([0.3, 0.3, 0.4])  # detractor, passive, promoter -> true NPS 10
    hits = 0
    for _ in range(1000):
        cats = rng.choice([3, 7, 10], 60, p=p)
        r = survey.nps(cats)
        hits += r["ci_low"] <= 10 <= r["ci_high"]
    assert 0.93 <= hits / 1000 <= 0.97


def test_raking_reproduces_margins():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"segment": rng.choice(["a", "b", "c"], 2000, p=[0.6, 0.3, 0.1]),
                       "region": rng.choice(["N", "S"], 2000, p=[0.8, 0.2])})
    margins = {"segment": pd.Series({"a": 0.4, "b": 0.35, "c": 0.25}), "region": pd.Series({"N": 0.5, "S": 0.5})}
    rk = survey.rake(df, margins)
    for v, m in margins.items():
        got = pd.Series(rk.weights).groupby(df[v].to_numpy()).sum() / rk.weights.sum()
        assert np.allclose(got.reindex(m.index).to_numpy(), m.to_numpy(), atol=1e-8)
    assert math.isclose(rk.effective_n, 2000 / rk.design_effect) and rk.design_effect > 1


def test_alpha_equals_pingouin_and_weights_sum_to_r2():
    pingouin = pytest.importorskip("pingouin")
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.integers(1, 6, (300, 5)) + rng.integers(0, 3, (300, 1)))
    a = survey.cronbach_alpha(x)
    ref, ref_ci = pingouin.cronbach_alpha(x)
    assert math.isclose(a["estimate"], ref) and np.allclose([a["ci_low"], a["ci_high"]], ref_ci, atol=5e-4)
    xx = rng.normal(size=(400, 5))
    xx[:, 1] += xx[:, 0]
    y = xx @ [1.0, 0.5, 0.3, 0.0, -0.2] + rng.normal(size=400)
    w = survey.relative_weights(xx, y)
    assert math.isclose(w.sum(), sm.OLS(y, sm.add_constant(xx)).fit().rsquared, rel_tol=1e-10)


def relative_weights_svd(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Johnson (2000) as published: orthogonal counterpart Z = U Vᵀ of standardized X (independent path)."""
    xs = (x - x.mean(0)) / x.std(0, ddof=1)
    ys = (y - y.mean()) / y.std(ddof=1)
    u, _, vt = np.linalg.svd(xs, full_matrices=False)
    z = u @ vt * np.sqrt(len(xs) - 1)  # unit-variance columns, like X
    beta = np.linalg.lstsq(z, ys, rcond=None)[0]
    lam = np.linalg.lstsq(z, xs, rcond=None)[0]
    return (lam**2).T @ (beta**2)


@needs_ecsi
def test_ecsi_alphas_and_driver_weights_match_independent_computation():
    pingouin = pytest.importorskip("pingouin")
    raw = pd.read_csv(ECSI).iloc[:, 1:]
    for block in BLOCKS:
        cols = [c for c in raw.columns if c.rstrip("0123456789") == block]
        if len(cols) < 2:
            continue
        x = raw[cols]
        manual = len(cols) / (len(cols) - 1) * (1 - x.var(ddof=1).sum() / x.sum(axis=1).var(ddof=1))
        assert math.isclose(survey.cronbach_alpha(x)["estimate"], manual, rel_tol=1e-12)
        assert math.isclose(survey.cronbach_alpha(x)["estimate"], pingouin.cronbach_alpha(x)[0], rel_tol=1e-12)
    predictors = [c for c in raw.columns if c.startswith(("IMAG", "PERQ", "PERV"))]
    y = raw[["CUSL1", "CUSL2", "CUSL3"]].mean(axis=1).to_numpy()
    ours = survey.relative_weights(raw[predictors].to_numpy(float), y)
    assert np.allclose(ours, relative_weights_svd(raw[predictors].to_numpy(float), y), atol=1e-10)


@needs_ecsi
@pytest.mark.slow
def test_notebook_runs_on_ecsi_with_only_a_dictionary(tmp_path):
    raw = pd.read_csv(ECSI)
    items = [c for c in raw.columns[1:]]
    kinds = {"CUSA": "outcome", "CUSL": "outcome", "CUSCO": "outcome", "CUEX": "expectation"}
    dictionary = pd.DataFrame({"item": items, "construct": [c.rstrip("0123456789") for c in items],
                               "touchpoint": "", "kind": [kinds.get(c.rstrip("0123456789"), "perception") for c in items],
                               "scale_min": 1, "scale_max": 10, "label": items, "reverse": False})
    dictionary.to_csv(tmp_path / "items.csv", index=False)
    res = run_notebook(RunSpec("survey_analysis", parameters={
        "responses_path": str(ECSI), "items_path": str(tmp_path / "items.csv"), "nps_col": None, "outcome": "CUSL",
        "good_col": None, "bad_col": None, "satisfaction": "CUSA"}), tmp_path / "out")
    assert res["status"] == "ok", res.get("error")
    assert set(res["metrics"]["cronbach_alpha"]) >= {"IMAG", "PERQ", "CUSL", "CUSA"}
    assert math.isclose(sum(v["estimate"] for v in res["metrics"]["driver_weights"].values()),
                        res["metrics"]["driver_r2"], rel_tol=1e-4)


@pytest.mark.slow
def test_planted_negativity_ratio_and_driver_weights_are_recovered():
    ratios, inside = [], []
    for seed in range(8):
        w = make_world(5000, seed=300 + seed)
        s = w["survey_responses"]
        truth = w.truth.survey
        drivers = list(truth.nps_model["driver_coefs"])
        r = survey.negativity_ratio(s, "nps", "n_good", "n_bad", drivers)
        ratios.append(r["estimate"])
        inside.append(r["ci_low"] <= truth.negativity_ratio_observed_scale_large_sample <= r["ci_high"])
    assert np.mean(inside) >= 0.75
    assert abs(np.mean(ratios) - truth.negativity_ratio_observed_scale_large_sample) < 1.0
    # the planted weights describe all customers; respondents are selected on satisfaction, which narrows
    # its range and lowers the weights, so recovery is checked with response unrelated to satisfaction
    big = make_world(30000, seed=5, effects={"response_satisfaction": 0.0, "response_purchase": 0.0})
    s, truth = big["survey_responses"], big.truth.survey
    table, _ = survey.drivers(s, drivers, "nps", n_boot=100)
    planted = table["driver"].map(truth.driver_weights_large_sample)
    assert ((table["ci_low"] <= planted) & (planted <= table["ci_high"])).mean() >= 0.8


@pytest.mark.slow
def test_survey_notebook_default_run(all_reports):
    res = json.loads((all_reports / "survey_analysis" / "results.json").read_text(encoding="utf-8"))
    assert res["status"] == "ok", res.get("error")
    m = res["metrics"]
    for key in ("n_responses", "response_rate", "nps", "cronbach_alpha", "omega", "driver_weights", "driver_r2",
                "ipa_quadrant", "negativity_ratio", "positivity_bias"):
        assert key in m, key
    assert m["positivity_bias"]["estimate"] > 0
    assert {c["id"] for c in res["claims"]} == {"bad_experience_needs_five_good", "emotional_beats_tangible",
                                               "tangible_share_5_to_10", "satisfied_customers_recommend"}
    html = (all_reports / "survey_analysis" / "report.html").read_text(encoding="utf-8")
    assert "@example.com" not in html  # open answers with planted e-mails are never shown


@needs_ecsi
def test_pls_path_model_reproduces_the_seminr_reference():
    ref_dir = ECSI.parent / "reference"
    data = pd.read_csv(ECSI, index_col=0)
    blocks = {lv: [c for c in data.columns if c.rstrip("0123456789") == prefix]
              for lv, prefix in (("Image", "IMAG"), ("Expectation", "CUEX"), ("Quality", "PERQ"),
                                 ("Complaints", "CUSCO"), ("Loyalty", "CUSL"))}
    paths = [("Image", "Expectation"), ("Expectation", "Loyalty"), ("Quality", "Loyalty"), ("Complaints", "Loyalty")]
    model = survey.pls_path_model(data, blocks, paths, {"Quality": "B"})
    ref_paths = pd.read_csv(ref_dir / "ecsi_mobi_seminr-mobi-basic-paths.csv", index_col=0)
    ref_outer = pd.read_csv(ref_dir / "ecsi_mobi_seminr-mobi-basic-outer-model.csv", index_col=0)
    got = model.paths.reindex(index=ref_paths.index, columns=ref_paths.columns).to_numpy()
    assert np.allclose(got, ref_paths.to_numpy(), atol=1e-5)
    outer = model.outer.set_index("item").reindex(ref_outer.index)
    assert np.allclose(outer["weight"], ref_outer["weight"], atol=1e-5)
    assert np.allclose(outer["loading"], ref_outer["loading"], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# issue 10: ties, convergence, degenerate data, small groups


def _survey_frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small survey: two constructs of three items, a two-item loyalty scale and an NPS column."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=n)
    cols = {}
    for k, c in (("a", 1.0), ("b", 0.8)):
        f = 0.6 * g + 0.8 * rng.normal(size=n)
        for j in range(1, 4):
            cols[f"{k}{j}"] = np.clip(np.round(3 + c * f + rng.normal(size=n)), 1, 5)
    loy = 0.7 * g + rng.normal(size=n)
    cols["loy_2"] = np.clip(np.round(3 + loy + rng.normal(size=n)), 1, 5)
    cols["loy_1"] = np.clip(np.round(3 + loy + rng.normal(size=n)), 1, 5)
    cols["nps"] = np.clip(np.round(7 + 2 * g + rng.normal(size=n)), 0, 10)
    items = pd.DataFrame({"item": [c for c in cols if c != "nps"],
                          "construct": ["A"] * 3 + ["B"] * 3 + ["loyalty"] * 2,
                          "kind": ["perception"] * 6 + ["outcome"] * 2, "scale_min": 1.0, "scale_max": 5.0})
    return pd.DataFrame(cols), items


def test_weakest_item_of_a_two_item_scale_is_the_first_name_whatever_the_column_order():
    resp, items = _survey_frame()
    it = survey.item_total(resp[["loy_2", "loy_1"]])
    assert it["loy_1"] == pytest.approx(it["loy_2"], rel=1e-12)  # a tie by construction
    for order in (items, items.iloc[::-1]):
        rel = survey.reliability(resp, order).set_index("construct")
        assert rel.at["loyalty", "weakest item"] == "loy_1"


def test_principal_axis_matches_statsmodels_and_omega_is_unchanged():
    from statsmodels.multivariate.factor import Factor

    resp, _ = _survey_frame()
    x = resp[["a1", "a2", "a3", "b1", "b2", "b3"]]
    ours = survey.principal_axis(np.corrcoef(x.to_numpy(float), rowvar=False), 1)
    ref = Factor(x.to_numpy(float), n_factor=1, method="pa").fit(maxiter=2000, tol=1e-12)
    assert np.allclose(np.abs(ours.loadings[:, 0]), np.abs(np.asarray(ref.loadings)[:, 0]), atol=1e-7)
    lam, psi = np.abs(np.asarray(ref.loadings)[:, 0]), np.asarray(ref.uniqueness)
    assert math.isclose(survey.mcdonald_omega(x), lam.sum() ** 2 / (lam.sum() ** 2 + psi.sum()), rel_tol=1e-7)


def test_factor_check_retries_and_falls_back_to_components_on_a_heywood_case():
    """One general factor and six requested factors: principal-axis communalities run above 1 and never settle
    (the old code reported its 500th iteration as a result); every attempt is recorded and the check ends on
    principal components, saying so."""
    inp = survey.load_inputs(sources.resolve(survey.tables(None)), Ledger(), nps_col="nps")
    FITS.reset()
    efa = survey.efa_check(inp.responses, inp.usable)
    fit = [f for f in FITS.fits if f["model"] == "factor analysis (EFA check)"][0]
    assert fit["converged"] and fit["method"] == "principal components (no iteration)"
    assert len(fit["failed_attempts"]) == 3 and "still changing" in fit["failed_attempts"][0]
    assert efa.method == "principal components" and efa.table is not None
    # the same answers twice give the same assignment
    again = survey.efa_check(inp.responses, inp.usable)
    assert efa.table.equals(again.table)


def test_factor_assignment_gives_each_construct_its_own_factor():
    resp, items = _survey_frame(600, seed=3)
    rng = np.random.default_rng(9)
    for k in ("a", "b"):  # make A and B clearly distinct factors
        f = rng.normal(size=len(resp))
        for j in range(1, 4):
            resp[f"{k}{j}"] = np.clip(np.round(3 + 1.2 * f + 0.6 * rng.normal(size=len(resp))), 1, 5)
    efa = survey.efa_check(resp, items[items["construct"] != "loyalty"])
    assert efa.method == "principal axis" and efa.table["fits"].all()
    assert set(efa.table["loads most on"]) == {"A", "B"}


def test_pls_retries_with_more_iterations_when_the_first_attempt_stops_early():
    resp, items = _survey_frame()
    blocks = {"A": ["a1", "a2", "a3"], "B": ["b1", "b2", "b3"], "loyalty": ["loy_1", "loy_2"]}
    paths = [("A", "loyalty"), ("B", "loyalty")]
    FITS.reset()
    model = survey.fit_path_model(resp, blocks, paths, max_iter=2)
    assert FITS.fits[-1]["failed_attempts"][0].startswith("path weighting, 2 iterations: outer weights still changing")
    assert model.converged
    ref = survey.pls_path_model(resp, blocks, paths, max_iter=1000, tol=1e-12)
    assert np.allclose(model.paths.to_numpy(), ref.paths.to_numpy(), atol=1e-8)


def test_path_model_with_a_constant_item_is_not_estimable_not_a_number():
    resp, items = _survey_frame()
    resp["a1"] = 3.0
    usable, why = survey.usable_items(resp, items)
    assert why == {"a1": "every respondent gave the same answer"}
    res = survey.path_model_for(resp, items, usable, [["A", "loyalty"], ["B", "loyalty"]], [], min_n=30)
    assert res.model is not None and "a1" not in set(res.model.outer["item"])
    res = survey.path_model_for(resp, items, usable, [["A", "nowhere"]], [], min_n=30)
    assert res.model is None and "nowhere" in res.problem


def test_identical_answers_are_left_out_of_reliability_and_drivers():
    resp, items = _survey_frame()
    resp["b2"] = 4.0
    usable, why = survey.usable_items(resp, items)
    rel = survey.reliability(resp, usable).set_index("construct")
    assert rel.at["B", "items"] == 2 and np.isfinite(rel.at["B", "alpha"])
    assert not np.isfinite(survey.cronbach_alpha(resp[["b2"]].assign(c=4.0))["estimate"])
    dr = survey.key_drivers(resp, survey.driver_items(items, usable, "nps"), "nps", n_boot=50)
    assert "b2" not in set(dr.table["driver"]) and np.isclose(dr.table["weight"].sum(), dr.r2)


def test_drivers_not_estimable_with_too_few_answers_or_a_constant_outcome():
    resp, items = _survey_frame(20)
    preds = ["a1", "a2", "a3", "b1", "b2", "b3"]
    assert "at least 30 are needed" in survey.key_drivers(resp, preds, "nps", n_boot=20).problem
    resp, _ = _survey_frame()
    assert "same value for every respondent" in survey.key_drivers(resp.assign(nps=7.0), preds, "nps").problem


def test_relative_weight_intervals_contain_their_estimates_or_are_withheld():
    resp, _ = _survey_frame(120, seed=4)
    resp["noise"] = np.random.default_rng(1).normal(size=len(resp))
    table, boot = survey.drivers(resp, ["a1", "b1", "noise"], "nps", n_boot=200)
    for r in table.itertuples():
        assert (np.isnan(r.ci_low) and r.note) or (r.ci_low <= r.weight <= r.ci_high)


def test_ipa_point_on_a_border_counts_as_high_and_order_is_stable():
    top = pd.DataFrame({"item": ["x", "y", "z"], "mean": [2.0, 3.0, 4.0], "scale_min": 1.0, "scale_max": 5.0})
    weights = pd.DataFrame({"driver": ["x", "y", "z"], "share": [0.2, 1 / 3, 0.4666666666666667]})
    matrix = survey.ipa(top, weights)
    m = matrix.table.set_index("driver")
    # y sits exactly on both borders (mean importance 1/3, mean performance 50%)
    assert m.at["y", "quadrant"] == "maintain"
    assert m.at["x", "quadrant"] == "monitor" and m.at["z", "quadrant"] == "maintain"
    assert matrix.importance_border == pytest.approx(1 / 3) and matrix.performance_border == pytest.approx(50)
    tie = pd.DataFrame({"driver": ["b", "a"], "share": [0.5, 0.5]})
    tops = pd.DataFrame({"item": ["a", "b"], "mean": [3.0, 3.0], "scale_min": 1.0, "scale_max": 5.0})
    assert list(survey.ipa(tops, tie).table["driver"]) == ["a", "b"]


def test_nps_by_folds_small_groups_so_none_can_be_recovered():
    rng = np.random.default_rng(0)
    seg = np.array(["big"] * 80 + ["mid"] * 40 + ["tiny"] * 3 + ["small"] * 28)
    resp = pd.DataFrame({"segment": seg, "nps": rng.integers(0, 11, len(seg)).astype(float)})
    table, folded = survey.nps_by(resp, "nps", "segment", None, min_n=30)
    assert folded == ["small", "tiny"]
    assert set(table["segment"]) == {"big", "mid", "Other (small groups)"}
    assert (table["respondents"] >= 30).all() and table["respondents"].sum() == len(resp)
    table, folded = survey.nps_by(resp.iloc[:20], "nps", "segment", None, min_n=30)  # 20 answers in all
    assert table.empty


def test_raking_folds_small_cells_and_refuses_impossible_margins():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"segment": np.r_[["a"] * 150, ["b"] * 120, ["c"] * 4],
                       "region": rng.choice(["N", "S"], 274)})
    margins = {"segment": pd.Series({"a": 0.5, "b": 0.3, "c": 0.1, "d": 0.1}), "region": pd.Series({"N": 0.5, "S": 0.5})}
    wt = survey.weighting(df, margins, min_n=30)
    assert wt.folded == {"segment": ["b", "c", "d"]}  # c has 4 respondents, d none: folded with the next smallest
    chk = wt.check.set_index(["variable", "level"])
    assert chk.loc[("segment", "Other (small groups)"), "target"] == pytest.approx(0.5)
    assert np.allclose(chk["weighted"], chk["target"], atol=1e-9)
    with pytest.raises(InputError, match="values \\['z'\\] that the margins do not list"):
        survey.rake(df.assign(segment="z"), {"segment": pd.Series({"a": 1.0})})
    # structural zero: nobody is both 'a' and 'S', yet the margins ask for 'a' and 'S' to cover everyone
    odd = pd.DataFrame({"segment": ["a"] * 50 + ["b"] * 50, "region": ["N"] * 50 + ["S"] * 25 + ["N"] * 25})
    FITS.reset()
    with pytest.raises(FitError, match="raking did not converge"):
        survey.rake(odd, {"segment": pd.Series({"a": 0.5, "b": 0.5}), "region": pd.Series({"N": 0.1, "S": 0.9})},
                    max_iter=200)
    assert FITS.fits[-1]["converged"] is False


def test_negativity_ratio_is_undefined_when_good_experiences_do_not_matter():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"good": rng.poisson(3, n).astype(float), "bad": rng.poisson(1, n).astype(float)})
    df["y"] = 5 - 1.0 * df["bad"] + rng.normal(size=n)
    r = survey.negativity_ratio(df, "y", "good", "bad", [])
    assert np.isnan(r["ci_low"]) and "not clearly above zero" in r["note"]
    assert survey.negativity_claim(r).verdict == "not testable"


def test_nps_interval_always_contains_the_estimate():
    for scores in ([10] * 12, [0] * 12, [10] * 40 + [0], [9, 10, 7]):
        r = survey.nps(np.array(scores, float))
        assert r["ci_low"] <= r["estimate"] <= r["ci_high"], scores


# ---------------------------------------------------------------------------------------------
# plain words, units and planted values


def _dictionary() -> pd.DataFrame:
    return pd.DataFrame({"item": ["perc_call_centre", "emo_trust", "sat_3"], "construct": ["service", "emotional",
                                                                                        "satisfaction"],
                         "touchpoint": ["call_centre", "", ""], "kind": ["perception", "perception", "outcome"],
                         "scale_min": 1, "scale_max": [7, 5, 5],
                         "label": ["How good was the call centre?", "I trust this company", "I am often disappointed"],
                         "reverse": [False, False, True]})


def test_dictionary_labels_name_items_and_constructs_and_the_users_labels_win(clean_labels):
    from cxresearch.display import plain, use_labels

    labels = survey.dictionary_labels(_dictionary())
    assert labels["perc_call_centre"] == "How good was the call centre?"
    assert labels["sat_3"] == "I am often disappointed (reverse-scored)"
    assert labels["service"] == "service at the touchpoints" and labels["emotional"] == "emotional attributes"
    use_labels(labels, {"perc_call_centre": "Call centre"})
    assert plain("perc_call_centre") == "Call centre" and plain("emo_trust") == "I trust this company"
    assert plain("call_centre") == "call centre"  # touchpoints are spelled out


def test_reader_tables_use_labels_and_plain_headers(clean_labels):
    from cxresearch.display import use_labels

    use_labels(survey.dictionary_labels(_dictionary()))
    weights = pd.DataFrame({"driver": ["emo_trust", "perc_call_centre"], "weight": [0.1, 0.3], "ci_low": [0.05, 0.2],
                            "ci_high": [0.15, 0.4], "share": [0.25, 0.75], "note": ["", ""]})
    f = survey.drivers_table(weights).formatted()
    assert list(f.columns) == ["driver", "explains (% of the variation)", "95% CI", "share of explained variance"]
    assert list(f["driver"]) == ["How good was the call centre?", "I trust this company"]  # largest first
    assert f.iloc[0].tolist()[1:] == ["30.0%", "20.0% to 40.0%", "75.0%"]
    top = pd.DataFrame({"item": ["perc_call_centre"], "label": ["x"], "touchpoint": ["call_centre"], "top_box": [0.45],
                        "ci_low": [0.41], "ci_high": [0.49], "mean": [5.28], "scale_min": [1], "scale_max": [7]})
    f = survey.top_box_table(top).formatted()
    assert f.iloc[0].tolist() == ["How good was the call centre?", "call centre", "45.0%", "41.0% to 49.0%", "5.28",
                                  "1–7"]
    behaviour = pd.DataFrame({"measure": ["prior_spend", "tenure_months", "left_within_a_year"],
                              "non-respondents": [27.5, 21.3, 0.2], "respondents": [46.1, 21.2, 0.221]})
    f = survey.behaviour_table(behaviour, "EUR").formatted()
    assert f["respondents"].tolist() == ["46.1 EUR", "21.2 months", "22.1%"]
    for t in (survey.drivers_table(weights), survey.top_box_table(top), survey.behaviour_table(behaviour, "EUR")):
        assert not any("_" in str(c) for c in t.formatted().columns)


def test_every_survey_claim_carries_its_unit_and_meaning():
    ratio = {"estimate": 2.8, "ci_low": 1.5, "ci_high": 4.2, "n": 600}
    c = survey.negativity_claim(ratio)
    assert isinstance(c, Claim) and c.unit == "ratio" and "5×" in c.meaning
    draws = np.random.default_rng(0).normal(size=(200, 1))
    groups = pd.DataFrame({"group": ["emotional", "tangible"], "share": [0.5, 0.08], "ci_low": [0.45, 0.05],
                           "ci_high": [0.55, 0.11], "note": ["", ""],
                           "draws": [list(0.5 + 0.01 * draws[:, 0]), list(0.08 + 0.01 * draws[:, 0])]})
    claims = {c.id: c for c in survey.group_claims(groups, 600)}
    assert claims["emotional_beats_tangible"].unit == "pp" and claims["tangible_share_5_to_10"].unit == "share"
    untestable = survey.group_claims(None, 0, {"emotional": ["a"], "tangible": ["b"]})
    assert {c.unit for c in untestable} == {"pp", "share"} and {c.verdict for c in untestable} == {"not testable"}
    resp, items = _survey_frame()
    gap = survey.satisfied_vs_others(resp, items, "loyalty", "nps", min_n=5)
    assert gap["testable"]
    claim = survey.satisfied_claim(gap)
    assert claim.unit == "points" and claim.meaning and claim.verdict != "not testable"
    small = survey.satisfied_claim(survey.satisfied_vs_others(resp, items, "loyalty", "nps", min_n=10_000))
    assert small.verdict == "not testable" and "fewer than 10000 NPS answers" in small.note


@pytest.mark.parametrize("lo, hi, expected", [(1.5, 4.2, "not supported"), (3.0, 6.0, "supported"),
                                              (0.5, 6.0, "inconclusive"), (math.nan, math.nan, "not testable")])
def test_negativity_verdict_is_decided_in_the_module(lo, hi, expected):
    est = 2.8 if math.isnan(lo) else (lo + hi) / 2
    assert survey.negativity_claim({"estimate": est, "ci_low": lo, "ci_high": hi, "n": 600}).verdict == expected
    assert survey.negativity_claim(None) is None  # not asked for: no claim


def test_tangible_share_uses_the_range_verdict():
    groups = pd.DataFrame({"group": ["tangible"], "share": [0.07], "ci_low": [0.055], "ci_high": [0.09], "note": [""],
                           "draws": [[0.07] * 50]})
    (c,) = survey.group_claims(groups, 600, planted={"tangible_share_5_to_10": 0.08})
    assert c.id == "tangible_share_5_to_10" and c.verdict == "supported" and c.truth == 0.08
    (c,) = survey.group_claims(groups.assign(ci_low=0.11, ci_high=0.2, share=0.15), 600)
    assert c.verdict == "not supported"


def test_notes_say_what_is_missing_instead_of_the_notebook():
    """Sentences about a missing interval are chosen by the module (no verdict rules in the notebook)."""
    bias = survey.ResponseBias("", pd.DataFrame({"measure": ["tenure_months"], "non-respondents": [20.0],
                                                 "respondents": [21.0]}), 30.0, 25.0, 5.0, math.nan, math.nan,
                               "the bootstrap distribution does not contain the estimate", 0.3, 1000)
    notes = survey.bias_notes(bias)
    assert notes[-1].template.startswith("No interval is shown") and "does not contain" in notes[-1].values["why"]
    ok = survey.bias_notes(survey.ResponseBias(**{**bias.__dict__, "ci_low": 2.0, "ci_high": 8.0}))
    assert ok[-1].template.startswith("95% CI of the overstatement")
    assert survey.bias_notes(survey.ResponseBias("not available here"))[0].values["why"] == "not available here"
    ratio = {"estimate": 2.8, "ci_low": math.nan, "ci_high": math.nan, "n": 600, "note": "good effect unclear"}
    (note,) = survey.claim_notes(ratio, None)
    assert note.template.startswith("Negativity ratio: not testable") and note.values["why"] == "good effect unclear"
    assert survey.claim_notes(None, None) == []


def test_load_inputs_reads_a_source_into_the_runs_own_ledger(tmp_path):
    resp, items = _survey_frame(60)
    resp.loc[3, list(resp.columns)] = np.nan  # a response without any answer
    resp.to_csv(tmp_path / "r.csv", index=False)
    items.to_csv(tmp_path / "i.csv", index=False)
    source = sources.from_files(survey.tables(tmp_path / "r.csv", tmp_path / "i.csv"))
    ledger = Ledger()
    inp = survey.load_inputs(source, ledger, min_n=30, min_group_size=40)
    assert len(inp.responses) == 59 and inp.min_n == 40 and not inp.synthetic
    assert [i["table"] for i in ledger.inputs] == ["survey_items", "survey_responses"]
    (excluded,) = [e for e in ledger.exclusions if e["rule"] == "responses without any answer"]
    assert excluded["rows_excluded"] == 1 and excluded["example_rows"] == "5"
    with pytest.raises(InputError, match="give both responses_path and items_path"):
        survey.load_inputs(sources.from_files(survey.tables(tmp_path / "r.csv")), Ledger())


def test_section_results_for_a_survey_without_nps_or_linked_tables(tmp_path):
    resp, items = _survey_frame(120)
    inp = survey.SurveyInputs(resp.assign(wave=1), items, None, None, None, None, False, "test",
                              *survey.usable_items(resp, items), min_n=30)
    wt = survey.weighting(inp.responses, None)
    nps = survey.nps_results(inp, None, wt.weights)
    assert nps.problem == "No NPS column was given" and nps.by_wave is None
    assert survey.nps_notes(nps)[0].template.endswith("this section is skipped.")
    bias = survey.response_bias(inp, None)
    assert bias.problem.startswith("Invitations, customers and purchases")
    dr = survey.key_drivers_for(inp, "loyalty", n_boot=40)
    assert dr.table is not None and dr.outcome == "loyalty" and dr.groups == {}
    assert survey.satisfaction_gap(inp, nps, "loyalty", None) is None
    names = [m["name"] for m in survey.metrics(inp, nps, bias, survey.reliability(resp, items), dr,
                                               survey.ipa_for(inp, dr, wt.weights), survey.PathResult(None), [], None)]
    assert names == ["n_responses", "cronbach_alpha", "omega", "driver_weights", "driver_r2", "ipa_quadrant",
                     "ipa_quadrant_codes"]
    assert survey.claims(dr, None, None, {}) == [None, None]


def test_planted_values_are_on_the_estimates_scale_and_only_for_the_planted_model():
    import dataclasses

    from cxresearch import checks
    from cxresearch.synth import ensure_world, load_truth

    world = load_truth(ensure_world(n_customers=300))
    truth = dataclasses.replace(world, survey=dataclasses.replace(
        world.survey, negativity_ratio=5.0, negativity_ratio_observed_scale_large_sample=5.1,
        driver_group_share={"emotional": 0.5, "tangible": 0.08, "touchpoint": 0.42},
        nps_model={"driver_coefs": {"a": 1.0, "b": 0.5}}))
    planted = checks.survey_planted(truth, "nps", ["b", "a"], "n_good", "n_bad")
    assert planted == pytest.approx({"bad_experience_needs_five_good": 5.1, "emotional_beats_tangible": 0.42,
                                     "tangible_share_5_to_10": 0.08})
    assert checks.survey_planted(truth, "loyalty", ["a", "b"], "n_good", "n_bad") == {}  # another outcome
    assert checks.survey_planted(truth, "nps", ["a"], "n_good", "n_bad") == {}  # other drivers
    assert "bad_experience_needs_five_good" not in checks.survey_planted(truth, "nps", ["a", "b"], None, None)
    assert checks.survey_planted(None, "nps", ["a", "b"], "n_good", "n_bad") == {}


def test_a_missed_planted_ratio_is_said_next_to_the_claim():
    from cxresearch.results import Results

    r = Results("t", "t")
    r.add(survey.negativity_claim({"estimate": 2.8, "ci_low": 1.5, "ci_high": 4.2, "n": 600}, truth=5.1))
    c = r.claims[0]
    assert c["id"] == "bad_experience_needs_five_good" and c["unit"] == "ratio" and c["truth"] == 5.1
    assert "planted value 5.10× lies outside this interval" in c["note"]
