"""Survey: the response model (the package's checked logit on one design matrix) and weighting to margins
that do not list every respondent value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cxresearch import sources, survey
from cxresearch.fits import FITS, FitError
from cxresearch.io import InputError, Ledger

pytestmark = pytest.mark.usefixtures("clean_fits")  # fits are logged globally: each test starts empty


def response_inputs(tmp_path: Path, segments: dict[str, int], everyone_responds: str | None = None,
                    seed: int = 0) -> survey.SurveyInputs:
    """Invited customers (segment, signup, a year of purchases), who responded, and their answers."""
    rng = np.random.default_rng(seed)
    seg = np.repeat(list(segments), list(segments.values()))
    n = len(seg)
    ids = [f"c{i:04d}" for i in range(n)]
    customers = pd.DataFrame({"customer_id": ids, "segment": seg, "churn_date": "",
                              "signup_date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1400, n), "D")})
    k = rng.poisson(3, n)
    tx = pd.DataFrame({"customer_id": np.repeat(ids, k), "amount": rng.gamma(2.0, 40.0, k.sum()).round(2),
                       "timestamp": pd.Timestamp("2023-02-01") + pd.to_timedelta(rng.integers(0, 330, k.sum()), "D")})
    spend = tx.groupby("customer_id")["amount"].sum().reindex(ids, fill_value=0.0).to_numpy()
    eta = -1.2 + 0.25 * np.log1p(spend) + 0.5 * (seg == "premium")
    responded = rng.random(n) < 1 / (1 + np.exp(-eta))
    if everyone_responds:
        responded |= seg == everyone_responds
    inv = pd.DataFrame({"customer_id": ids, "wave": 1, "invited_at": "2024-01-15", "responded": responded.astype(int)})
    r = int(responded.sum())
    g = rng.normal(size=r)
    resp = pd.DataFrame({"respondent_id": [f"R{i:04d}" for i in range(r)], "customer_id": np.array(ids)[responded],
                         "wave": 1, "a1": np.clip(np.round(3 + g + rng.normal(size=r)), 1, 5),
                         "a2": np.clip(np.round(3 + g + rng.normal(size=r)), 1, 5),
                         "nps": np.clip(np.round(7 + 2 * g + rng.normal(size=r)), 0, 10)})
    items = pd.DataFrame({"item": ["a1", "a2"], "construct": "A", "kind": "perception", "scale_min": 1, "scale_max": 5})
    paths = {}
    for name, df in (("survey_responses", resp), ("survey_items", items), ("customers", customers),
                     ("survey_invitations", inv), ("transactions", tx)):
        paths[name] = tmp_path / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    return survey.load_inputs(sources.from_files(paths), Ledger(), min_n=30)


def test_response_model_enters_segment_against_its_most_frequent_level(tmp_path, monkeypatch):
    inputs = response_inputs(tmp_path, {"basic": 150, "mass": 400, "premium": 250})
    seen = {}

    def spy(x, responded, *args, **kw):
        seen["x"], seen["y"] = x, responded
        seen["p"] = fit(x, responded, *args, **kw)
        return seen["p"]

    fit = survey.response_probability
    monkeypatch.setattr(survey, "response_probability", spy)
    bias = survey.response_bias(inputs, "nps", n_boot=20)
    assert bias.problem == "" and np.isfinite(bias.estimate)
    x = seen["x"]
    assert list(x.columns) == ["np.log1p(prior_spend)", "tenure_months", "segment[basic]", "segment[premium]"]
    # the reference level (mass, the most frequent) has no column; probabilities do not depend on that choice:
    # a plain statsmodels logit on pandas' first-level dummies (reference basic) gives the same ones
    other = pd.concat([x.iloc[:, :2], pd.get_dummies(pd.Series(np.select(
        [x["segment[basic]"] == 1, x["segment[premium]"] == 1], ["basic", "premium"], "mass")), drop_first=True,
        dtype=float).set_axis(x.index)], axis=1)
    assert list(other.columns[2:]) == ["mass", "premium"]
    plain = sm.Logit(seen["y"].astype(float), sm.add_constant(other)).fit(method="newton", tol=1e-12, disp=False)
    np.testing.assert_allclose(seen["p"], plain.predict(sm.add_constant(other)), rtol=0, atol=1e-8)
    assert FITS.fits[0] == {"model": "response model", "converged": True, "method": "IRLS, covariates as given",
                            "failed_attempts": []}


def test_response_model_under_separation_names_the_segment_that_decides_who_responds(tmp_path):
    inputs = response_inputs(tmp_path, {"mass": 300, "premium": 200, "vip": 40}, everyone_responds="vip")
    with pytest.raises(FitError) as err:
        survey.response_bias(inputs, "nps", n_boot=20)
    text = str(err.value)
    assert text.startswith("The response model did not converge")
    assert "predicted to respond (or not) with certainty" in text
    assert "Fix: segment = vip alone decides who responds for some customers; merge rare segments" in text
    assert FITS.fits[-1]["model"] == "response model" and FITS.fits[-1]["converged"] is False


# ---------------------------------------------------------------------------------------------
# weighting: respondent values the margins do not list


def respondents(unlisted: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seg = np.r_[["a"] * 150, ["b"] * 120, ["z"] * unlisted]
    return pd.DataFrame({"segment": seg, "region": rng.choice(["N", "S"], len(seg))})


REGION = pd.Series({"N": 0.5, "S": 0.5})


@pytest.mark.parametrize("unlisted", [4, 40], ids=["fewer-than-min-n", "at-least-min-n"])
def test_a_respondent_value_the_margins_do_not_list_is_refused_however_few_have_it(unlisted):
    margins = {"segment": pd.Series({"a": 0.6, "b": 0.4}), "region": REGION}
    with pytest.raises(InputError) as err:
        survey.weighting(respondents(unlisted), margins, min_n=30, source="'margins' (m.csv)")
    text = str(err.value)
    assert text.startswith("Input 'margins' (m.csv) cannot be used (1 problem(s))")
    assert (f"column 'segment': {unlisted} respondent(s) have values ['z'] that the margins do not list (they list "
            "['a', 'b'])") in text
    assert "Fix: add these values to the margins file with their population share" in text
    assert FITS.fits == []  # refused before any raking


def test_unlisted_values_are_weighted_as_the_margins_own_other_level_and_said():
    margins = {"segment": pd.Series({"a": 0.5, "b": 0.4, survey.OTHER: 0.1}), "region": REGION}
    df = respondents(40)
    wt = survey.weighting(df, margins, min_n=30)
    assert wt.unlisted == {"segment": (["z"], 40)} and wt.folded == {}
    chk = wt.check.set_index(["variable", "level"])
    assert chk.loc[("segment", survey.OTHER), "target"] == pytest.approx(0.1)
    np.testing.assert_allclose(chk["weighted"], chk["target"], atol=1e-9)
    z = (df["segment"] == "z").to_numpy()
    assert wt.weights[z].sum() / wt.weights.sum() == pytest.approx(0.1, abs=1e-9)
    said = [s for s in survey.weighting_notes(wt) if "do not list" in getattr(s, "template", "")]
    assert len(said) == 1 and said[0].values == {"variable": "segment", "values": "z", "who": "the 40 respondents"}


def test_few_unlisted_respondents_are_folded_with_the_next_smallest_and_not_counted():
    margins = {"segment": pd.Series({"a": 0.5, "b": 0.4, survey.OTHER: 0.1}), "region": REGION}
    wt = survey.weighting(respondents(4), margins, min_n=30)
    assert wt.unlisted == {"segment": (["z"], 4)}
    assert wt.folded == {"segment": ["b"]}  # the margins' Other (4 respondents) needs the next smallest level
    chk = wt.check.set_index(["variable", "level"])
    assert chk.loc[("segment", survey.OTHER), "target"] == pytest.approx(0.5)
    notes = [s.values for s in survey.weighting_notes(wt) if "do not list" in getattr(s, "template", "")]
    assert notes == [{"variable": "segment", "values": "z", "who": "fewer than 30 respondents"}]


def test_invitations_of_unknown_customers_join_the_reference_segment(tmp_path, monkeypatch):
    """Invited customers missing from the customer table have no segment; six of them who all replied must not
    become a level of their own (it would decide response alone and stop the fit)."""
    import dataclasses

    inputs = response_inputs(tmp_path, {"basic": 150, "mass": 400, "premium": 250})
    extra = pd.DataFrame({"customer_id": [f"x{i}" for i in range(6)], "wave": 1,
                          "invited_at": pd.Timestamp("2024-01-15"), "responded": 1})
    inputs = dataclasses.replace(inputs, invitations=pd.concat([inputs.invitations, extra], ignore_index=True))
    seen = {}
    fit = survey.response_probability

    def spy(x, responded, *args, **kw):
        seen["x"] = x
        return fit(x, responded, *args, **kw)

    monkeypatch.setattr(survey, "response_probability", spy)
    bias = survey.response_bias(inputs, "nps", n_boot=20)
    assert not bias.problem and bias.n_invited == 806
    assert list(seen["x"].columns) == ["np.log1p(prior_spend)", "tenure_months", "segment[basic]", "segment[premium]"]
    assert (seen["x"].iloc[-6:][["segment[basic]", "segment[premium]"]] == 0).all().all()  # with "mass"
