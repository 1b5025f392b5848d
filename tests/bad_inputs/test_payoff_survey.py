"""Bad-input corpus: loyalty payoff and survey analysis.

Most cases call :mod:`cxresearch.payoff` and :mod:`cxresearch.survey` directly on tiny tables (a pilot of
a few hundred customers, a survey of about a hundred respondents); ten cases run a notebook end to end to
show the refused or handled report (script and image payloads in arm labels and item names, ``$`` in
labels, personal data as a label, a treated arm of one customer, a segment under the minimum size, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxresearch import payoff, sources, survey
from cxresearch.errors import NotEstimable, ParameterError
from cxresearch.fits import FITS, FitError
from cxresearch.io import InputError, Ledger

from .conftest import assert_handled, assert_inert_in_browser, assert_refused

# payloads that mark <body> with data-pwned if they ever run (checked in headless Chromium)
EVIL = "<script>document.body.setAttribute('data-pwned','1')</script>"
IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
PERSON = "Ivan Petrov +7 912 345-67-89"


# ---------------------------------------------------------------------------------------------
# tiny inputs


def pilot(n: int = 120, arms: dict[str, int] | None = None, seed: int = 0, effect: float = 4.0) -> pd.DataFrame:
    """A randomized pilot: ``arms`` maps arm label -> customers (default control and treat, n each)."""
    rng = np.random.default_rng(seed)
    arms = arms or {"control": n, "treat": n}
    rows = []
    for label, k in arms.items():
        pre = rng.gamma(2.0, 10.0, k)
        lift = 0.0 if label == "control" else effect
        rows.append(pd.DataFrame({"arm": label, "pre": pre, "spend": 0.5 * pre + rng.gamma(2.0, 5.0, k) + lift}))
    df = pd.concat(rows, ignore_index=True)
    df.insert(0, "id", [f"c{i:04d}" for i in range(len(df))])
    return df


def write(tmp_path: Path, name: str, df: pd.DataFrame) -> str:
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    return str(path)


def prepare(path: str, design: str = "randomized", **kw):
    args = {"unit_col": "id", "arm_col": "arm", "control_arm": "control", "outcome_cols": ["spend"],
            "covariate_cols": ["pre"], "margin": 0.3, "cost_per_member": 1.0, "horizon": 4, **kw}
    return payoff.prepare(design, sources.from_files(payoff.tables(design, path)), Ledger(), **args)


def payoff_params(path: str, **kw) -> dict:
    return {"design": "randomized", "data_path": path, "unit_col": "id", "arm_col": "arm", "control_arm": "control",
            "outcome_cols": ["spend"], "covariate_cols": ["pre"], "margin": 0.3, "cost_per_member": 1.0, **kw}


def survey_tables(n: int = 90, seed: int = 0, names: dict[str, str] | None = None,
                  segments: dict[str, int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Responses and item dictionary: constructs A, B (perceptions) and satisfaction, an NPS column."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=n)
    cols: dict[str, np.ndarray] = {}
    spec = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("b2", "B"), ("b3", "B"),
            ("sat_1", "satisfaction"), ("sat_2", "satisfaction")]
    for item, _ in spec:
        cols[item] = np.clip(np.round(3 + 0.8 * g + rng.normal(size=n)), 1, 5)
    cols["nps"] = np.clip(np.round(7 + 2 * g + rng.normal(size=n)), 0, 10)
    resp = pd.DataFrame(cols)
    resp.insert(0, "respondent_id", [f"R{i:04d}" for i in range(n)])
    if segments:
        resp["segment"] = np.repeat(list(segments), list(segments.values()))[:n]
    names = names or {}
    resp = resp.rename(columns=names)
    items = pd.DataFrame({"item": [names.get(i, i) for i, _ in spec], "construct": [c for _, c in spec],
                          "touchpoint": "", "kind": ["perception"] * 6 + ["outcome"] * 2, "scale_min": 1,
                          "scale_max": 5, "label": [names.get(i, i) for i, _ in spec]})
    return resp, items


def load_survey(responses_path: str, items_path: str, margins_path: str | None = None, **kw):
    """:func:`cxresearch.survey.load_inputs` on a user's files, as the notebook resolves them."""
    source = sources.from_files(survey.tables(responses_path, items_path, margins_path))
    return survey.load_inputs(source, Ledger(), **kw)


def survey_params(tmp_path: Path, resp: pd.DataFrame, items: pd.DataFrame, **kw) -> dict:
    return {"responses_path": write(tmp_path, "responses", resp), "items_path": write(tmp_path, "items", items),
            "good_col": None, "bad_col": None, "path_model": [["A", "satisfaction"], ["B", "satisfaction"]],
            "n_boot": 50, **kw}


# ---------------------------------------------------------------------------------------------
# loyalty payoff: function level


def test_control_arm_that_does_not_occur_names_column_and_values(tmp_path):
    path = write(tmp_path, "pilot", pilot(30))
    with pytest.raises(InputError, match=r"column 'arm': the control arm 'Control' \(control_arm\) does not occur\. "
                                         r"Values present: 'control', 'treat'\. Fix"):
        prepare(path, control_arm="Control")


@pytest.mark.parametrize("control", [pytest.param("0", id="control-arm-text-0"),
                                     pytest.param(0, id="control-arm-int-0")])
def test_control_arm_given_as_text_matches_a_numeric_member_column(tmp_path, control):
    df = pilot(40, {"0": 40, "1": 40})
    df["arm"] = df["arm"].astype(int)  # written as numbers 0/1
    setup = prepare(write(tmp_path, "pilot", df), control_arm=control)
    assert setup.control == "0" and setup.treated_arms == ["1"]


def test_one_arm_only_is_refused(tmp_path):
    with pytest.raises(NotEstimable, match="only the control arm 'control'.*nothing to compare"):
        prepare(write(tmp_path, "pilot", pilot(30, {"control": 30})))


def test_treated_arm_of_one_customer_is_refused(tmp_path):
    with pytest.raises(NotEstimable, match="fewer than 5 customers .*no effect can be tested"):
        prepare(write(tmp_path, "pilot", pilot(30, {"control": 30, "treat": 1})))


def test_control_group_under_min_group_size_is_refused(tmp_path):
    with pytest.raises(NotEstimable, match="control arm 'control' .* fewer than 5 customers"):
        prepare(write(tmp_path, "pilot", pilot(30, {"control": 3, "treat": 30})))


@pytest.mark.parametrize("given, message", [
    pytest.param({"cost_per_member": -1.0}, "cost_per_member must be a number of at least 0", id="negative-cost"),
    pytest.param({"margin": 0.0}, "margin must be a share above 0", id="zero-margin"),
    pytest.param({"margin": 35.0}, "margin must be a share above 0 and at most 1", id="margin-as-percent"),
    pytest.param({"horizon": -4}, "horizon must be a number of periods above 0", id="negative-horizon"),
    pytest.param({"setup_cost": -100.0}, "setup_cost must be a number of at least 0", id="negative-setup-cost"),
    pytest.param({"cost_per_member": 0.0}, "a return on investment needs a cost", id="no-cost-at-all"),
])
def test_invalid_money_parameters_are_refused(tmp_path, given, message):
    with pytest.raises(ValueError, match=message) as err:
        prepare(write(tmp_path, "pilot", pilot(30)), **given)
    assert type(err.value).__name__ == "ParameterError"


def test_unknown_design_is_refused(tmp_path):
    with pytest.raises(ValueError, match="design must be 'randomized' or 'observational'") as err:
        payoff.tables("pilot", write(tmp_path, "pilot", pilot(10)))
    assert type(err.value).__name__ == "ParameterError"
    source = sources.from_files({"loyalty_pilot": write(tmp_path, "pilot", pilot(10))})
    with pytest.raises(ParameterError, match="design must be"):
        payoff.load_inputs("pilot", source, Ledger(), unit_col="id", arm_col="arm", outcome_cols=["spend"],
                           covariate_cols=[])


@pytest.mark.parametrize("formula, error, message", [
    pytest.param("pre + I(pre**2) + age", InputError, "covariate column 'age' is missing.*covariate_formula",
                 id="formula-names-a-missing-column"),
    pytest.param("spend ~ pre", ParameterError, "give only the right-hand side", id="formula-with-outcome"),
    pytest.param("pre + (", ParameterError, "cannot be read", id="formula-syntax-error"),
    pytest.param("pre - 1", ParameterError, "removes the intercept", id="formula-without-intercept"),
])
def test_bad_covariate_formula_is_refused(tmp_path, formula, error, message):
    with pytest.raises(error, match=message):
        setup = prepare(write(tmp_path, "pilot", pilot(30)), covariate_cols=None, covariate_formula=formula)
        payoff.analyse(setup)


def test_panel_without_enrolment_window_is_refused(tmp_path):
    units = pilot(20, {"0": 20, "1": 20}).rename(columns={"arm": "member"})
    panel = pd.DataFrame([{"id": i, "month": m, "spend": 1.0} for i in units["id"] for m in ("2024-01", "2024-09")])
    source = sources.from_files(payoff.tables("observational", write(tmp_path, "u", units), write(tmp_path, "p", panel)))
    with pytest.raises(ParameterError, match="A panel needs its enrolment window"):
        payoff.prepare("observational", source, Ledger(), unit_col="id", arm_col="member", control_arm="0",
                       outcome_cols=["spend"], covariate_cols=["pre"], margin=0.3, cost_per_member=1.0, horizon=12)


def test_header_only_unit_table_is_refused(tmp_path):
    with pytest.raises(InputError, match="the table has no rows"):
        prepare(write(tmp_path, "pilot", pilot(5).iloc[:0]))


def test_missing_and_empty_covariates_are_refused(tmp_path):
    df = pilot(30)
    with pytest.raises(InputError, match="covariate column 'pre_12m' is missing"):
        prepare(write(tmp_path, "pilot", df), covariate_cols=["pre_12m"])
    df.loc[[3, 7], "pre"] = np.nan
    with pytest.raises(InputError, match="covariate 'pre' has 2 empty value"):
        prepare(write(tmp_path, "pilot2", df))


def test_outcome_with_identical_values_is_not_testable(tmp_path):
    df = pilot(40).assign(spend=0.0)
    setup = prepare(write(tmp_path, "pilot", df))
    fx = payoff.analyse_randomized(setup)
    assert "not testable" in fx.table.at[0, "note"]
    pay = payoff.money_verdict(fx.effect, 0.3, 1.0, 4)
    assert pay.verdict == "not testable" and pay.summary == {}


def test_quasi_separation_in_the_propensity_model_fails_in_plain_words():
    rng = np.random.default_rng(4)
    n = 300
    seg = np.where(rng.random(n) < 0.2, "gold", "std")
    member = (rng.random(n) < 0.4) | (seg == "gold")  # every gold customer joined
    units = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "member": np.where(member, "1", "0"),
                          "pre": rng.gamma(2, 10, n), "seg": seg, "spend": rng.gamma(2, 10, n)})
    with pytest.raises(FitError, match=r"propensity logit did not converge .*seg = gold alone decides membership"):
        payoff.analyse_observational(units, None, unit_col="id", arm_col="member", control_arm="0", outcome="spend",
                                     covariates=["pre", "seg"], n_boot=20)


def test_covariate_on_a_huge_offset_is_refitted_standardised():
    rng = np.random.default_rng(6)
    n = 300
    pre = rng.gamma(2, 10, n)
    member = rng.random(n) < 1 / (1 + np.exp(-(pre - 20) / 10))
    units = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "member": np.where(member, "1", "0"),
                          "signup_epoch": 1.7e9 + rng.normal(0, 1, n), "pre": pre,
                          "spend": pre + 3 * member + rng.normal(size=n)})
    FITS.reset()
    a = payoff.analyse_observational(units, None, unit_col="id", arm_col="member", control_arm="0", outcome="spend",
                                     covariates=["signup_epoch", "pre"], n_boot=30)
    first = FITS.fits[0]
    assert first["converged"] and first["failed_attempts"], first  # the first attempt was rejected, a retry worked
    assert np.isfinite(a.effect.estimate)


# ---------------------------------------------------------------------------------------------
# survey: function level


def test_item_dictionary_with_an_inverted_scale_is_refused(tmp_path):
    resp, items = survey_tables()
    items.loc[2, ["scale_min", "scale_max"]] = [5, 1]
    with pytest.raises(InputError, match=r"scale_min is not below scale_max: row 4: 'a3'"):
        load_survey(write(tmp_path, "r", resp), write(tmp_path, "i", items), min_n=30)


def test_all_answers_empty_is_refused_and_the_rows_are_counted(tmp_path):
    resp, items = survey_tables(40)
    answers = [c for c in resp.columns if c != "respondent_id"]
    resp[answers] = np.nan
    with pytest.raises(NotEstimable, match="0 respondent\\(s\\) with any answer"):
        load_survey(write(tmp_path, "r", resp), write(tmp_path, "i", items), min_n=30)


def test_one_respondent_is_refused(tmp_path):
    resp, items = survey_tables(1)
    with pytest.raises(NotEstimable, match="1 respondent\\(s\\) with any answer; every figure needs at least 30"):
        load_survey(write(tmp_path, "r", resp), write(tmp_path, "i", items), min_n=30)


def test_outcome_that_is_neither_item_nor_construct_is_refused(tmp_path):
    resp, items = survey_tables()
    with pytest.raises(ValueError, match="outcome 'loyalty' is neither an item nor a construct") as err:
        load_survey(write(tmp_path, "r", resp), write(tmp_path, "i", items), outcome="loyalty", min_n=30)
    assert type(err.value).__name__ == "ParameterError"


def test_named_nps_column_that_is_missing_is_refused(tmp_path):
    resp, items = survey_tables()
    with pytest.raises(InputError, match="'NPS'"):
        load_survey(write(tmp_path, "r", resp), write(tmp_path, "i", items), nps_col="NPS", min_n=30)


def test_answers_outside_the_scale_are_refused(tmp_path):
    resp, items = survey_tables()
    resp.loc[4, "b2"] = 7
    with pytest.raises(InputError, match=r"column 'b2': 1 value\(s\) outside the scale 1..5: row 6"):
        load_survey(write(tmp_path, "r", resp), write(tmp_path, "i", items), min_n=30)


@pytest.mark.parametrize("margins, message", [
    pytest.param(pd.DataFrame({"segment": ["x", "y"], "share": [0.7, -0.3]}), "below the minimum 0",
                 id="negative-margin-share"),
    pytest.param(pd.DataFrame({"segment": ["x"], "share": [1.0]}), "values \\['y'\\] that the margins do not list",
                 id="margin-level-missing"),
    pytest.param(pd.DataFrame({"region": ["N", "S"], "share": [0.5, 0.5]}), "margin variable 'region' is neither",
                 id="margin-variable-not-in-responses"),
    pytest.param(pd.DataFrame({"segment": ["x", "y"], "share": [0.0, 0.0]}), "every share is 0",
                 id="margin-shares-all-zero"),
])
def test_invalid_margins_are_refused(tmp_path, margins, message):
    resp, items = survey_tables(90, segments={"x": 50, "y": 40})
    with pytest.raises(InputError, match=message):
        inp = load_survey(write(tmp_path, "r", resp), write(tmp_path, "i", items),
                                 write(tmp_path, "m", margins), min_n=30)
        survey.weighting(inp.responses, inp.margins, None, 30, inp.margins_source)


def test_margins_no_respondents_can_meet_stop_the_raking(tmp_path):
    resp, items = survey_tables(200)
    resp["segment"] = ["x"] * 100 + ["y"] * 100
    resp["region"] = ["N"] * 100 + ["S"] * 50 + ["N"] * 50  # nobody in x is in S
    margins = pd.DataFrame({"segment": ["x", "y", "x", "y"], "region": ["N", "N", "S", "S"],
                            "share": [0.05, 0.05, 0.45, 0.45]})
    inp = load_survey(write(tmp_path, "r", resp), write(tmp_path, "i", items), write(tmp_path, "m", margins),
                             min_n=30)
    with pytest.raises(FitError, match="raking did not converge .*margins cannot all be met"):
        survey.weighting(inp.responses, inp.margins, None, 30, inp.margins_source)


def test_weights_that_are_all_zero_are_refused(tmp_path):
    resp, items = survey_tables()
    resp["w"] = 0.0
    inp = load_survey(write(tmp_path, "r", resp), write(tmp_path, "i", items), weight_col="w", min_n=30)
    with pytest.raises(InputError, match="the weights are all 0"):
        survey.weighting(inp.responses, None, "w", 30)


def test_two_item_scale_weakest_item_does_not_depend_on_the_column_order(tmp_path):
    resp, items = survey_tables()
    forward = survey.reliability(resp, items).set_index("construct").at["satisfaction", "weakest item"]
    backward = survey.reliability(resp[resp.columns[::-1]], items.iloc[::-1]).set_index("construct")
    assert forward == backward.at["satisfaction", "weakest item"] == "sat_1"


# ---------------------------------------------------------------------------------------------
# full notebook runs


@pytest.mark.slow
def test_payoff_arm_labels_with_script_image_and_dollar_are_inert(tmp_path, case):
    df = pilot(60, {"control": 60, EVIL: 60, f"{IMG} $5 off $$": 60})
    out = case("loyalty_payoff", **payoff_params(write(tmp_path, "pilot", df), n_boot=50))
    assert_handled(out)
    assert "<script>document" not in out.html and "<img src=x" not in out.html
    assert "&lt;script&gt;" in out.html
    assert_inert_in_browser(out.folder / "report.html")


@pytest.mark.slow
def test_payoff_treated_arm_of_one_customer_is_not_tested_and_roi_is_inside_its_interval(tmp_path, case):
    df = pilot(80, {"control": 80, "a_solo": 1, "treat": 80})
    out = case("loyalty_payoff", **payoff_params(write(tmp_path, "pilot", df), n_boot=50))
    assert_handled(out, "Arms with fewer than 5 customers are not tested", "a_solo = &lt;5")
    assert set(out.results["metrics"]["effects"]) == {"treat"}
    roi = out.results["claims"][0]
    assert roi["n"] == 80 and roi["ci_low"] <= roi["estimate"] <= roi["ci_high"]


@pytest.mark.slow
def test_payoff_only_treated_customer_is_one_is_refused(tmp_path, case):
    df = pilot(60, {"control": 60, "treat": 1})
    out = case("loyalty_payoff", **payoff_params(write(tmp_path, "pilot", df)))
    assert_refused(out, "Every arm of column 'arm' other than the control 'control' has fewer than 5 customers")


@pytest.mark.slow
def test_payoff_control_arm_missing_is_refused_with_the_values_present(tmp_path, case):
    df = pilot(40, {"No E-Mail": 40, "Mens E-Mail": 40})
    out = case("loyalty_payoff", **payoff_params(write(tmp_path, "pilot", df), control_arm="No Email"))
    assert_refused(out, "column 'arm'", "'No Email'", "Values present: 'Mens E-Mail', 'No E-Mail'", "Fix")


@pytest.mark.slow
def test_payoff_personal_data_as_arm_label_is_pseudonymised(tmp_path, case):
    df = pilot(60, {"control": 60, PERSON: 60})
    out = case("loyalty_payoff", **payoff_params(write(tmp_path, "pilot", df), n_boot=50))
    assert_handled(out, "looked like personal data")
    published = out.html + json.dumps(out.results, ensure_ascii=False)
    assert "Petrov" not in published and "912" not in published


@pytest.mark.slow
def test_payoff_observational_numeric_member_column_with_text_control(tmp_path, case):
    rng = np.random.default_rng(8)
    n = 300
    pre = rng.gamma(2, 10, n)
    member = (rng.random(n) < 1 / (1 + np.exp(-(pre - 20) / 10))).astype(int)
    df = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "member": member, "pre": pre,
                       "spend": 0.5 * pre + 3 * member + rng.normal(size=n)})
    out = case("loyalty_payoff", design="observational", data_path=write(tmp_path, "units", df), unit_col="id",
               arm_col="member", control_arm="0", outcome_cols=["spend"], covariate_cols=["pre"], margin=0.5,
               cost_per_member=1.0, n_boot=60)
    assert_handled(out, "control group: <strong>0</strong>")
    assert out.results["converged"] is True and out.results["fits"][0]["model"] == "propensity logit"


@pytest.mark.slow
def test_survey_item_names_with_script_image_and_dollar_are_inert(tmp_path, case):
    resp, items = survey_tables(90, names={"a1": EVIL, "b2": IMG, "b3": "price $ vs $$ value"})
    out = case("survey_analysis", **survey_params(tmp_path, resp, items))
    assert_handled(out)
    assert "<script>document" not in out.html and "<img src=x" not in out.html
    assert_inert_in_browser(out.folder / "report.html")


@pytest.mark.slow
def test_survey_segment_under_min_n_is_folded_everywhere(tmp_path, case):
    resp, items = survey_tables(100, segments={"north": 60, "south": 33, "island": 7})
    out = case("survey_analysis", **survey_params(tmp_path, resp, items))
    assert_handled(out, "Other (small groups)")
    text = out.html
    # the small segment is named only in the sentence that says it was merged; its count appears nowhere
    assert text.count("island") == 1
    assert ">40<" in text and ">7<" not in text  # south + island = 40 respondents shown together


@pytest.mark.slow
def test_survey_identical_answers_to_an_item_are_left_out_and_said(tmp_path, case):
    resp, items = survey_tables(90)
    resp["b1"] = 4
    out = case("survey_analysis", **survey_params(tmp_path, resp, items))
    assert_handled(out, "b1 (every respondent gave the same answer)")


@pytest.mark.slow
def test_survey_personal_data_as_segment_label_is_pseudonymised(tmp_path, case):
    resp, items = survey_tables(100, segments={"north": 60, PERSON: 40})
    out = case("survey_analysis", **survey_params(tmp_path, resp, items))
    assert_handled(out, "looked like personal data")
    published = out.html + json.dumps(out.results, ensure_ascii=False)
    assert "Petrov" not in published and "345-67" not in published
