"""The package's one checked logistic regression (:func:`cxresearch.fits.fit_logit`) and its retry ladder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cxresearch import fits
from cxresearch.design import design_matrix
from cxresearch.fits import FITS, FitError

pytestmark = pytest.mark.usefixtures("clean_fits")  # fits are logged globally: each test starts empty


def simulated(n: int = 800, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """A number, a skewed number and a three-level text column (reference: the most frequent level)."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"age": rng.normal(40, 12, n), "spend": rng.gamma(2.0, 50.0, n),
                         "plan": rng.choice(["annual", "monthly", "quarterly"], n, p=[0.3, 0.5, 0.2])})
    eta = -1.0 + 0.03 * (data["age"] - 40) + 0.004 * data["spend"] + 0.6 * (data["plan"] == "annual")
    y = rng.random(n) < 1 / (1 + np.exp(-eta.to_numpy()))
    return design_matrix(data, "age + np.log1p(spend) + plan").X, y


def test_fit_logit_agrees_with_a_plain_statsmodels_logit():
    x, y = simulated()
    assert list(x.columns) == ["age", "np.log1p(spend)", "plan[annual]", "plan[quarterly]"]
    fit = fits.fit_logit(x, y, "test logit")
    plain = sm.Logit(y.astype(float), sm.add_constant(x)).fit(method="newton", tol=1e-12, maxiter=100, disp=False)
    assert fit.method == "IRLS"  # covariates as given: params are on the design's own scale
    np.testing.assert_allclose(fit.params, plain.params.to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.probability, plain.predict(sm.add_constant(x)), rtol=0, atol=1e-8)
    assert FITS.fits == [{"model": "test logit", "converged": True, "method": "IRLS, covariates as given",
                          "failed_attempts": []}]


def test_every_attempt_of_the_ladder_gives_the_same_probabilities():
    x, y = simulated(seed=4)
    ref = fits.fit_logit(x, y).probability
    for _, attempt in fits._logit_attempts(x, y.astype(float)):
        np.testing.assert_allclose(attempt().probability, ref, rtol=0, atol=1e-8)


def test_a_covariate_on_a_huge_offset_is_retried_standardised_and_the_ladder_is_recorded():
    x, y = simulated(seed=5)
    ref = fits.fit_logit(x, y, "reference").probability
    shifted = fits.fit_logit(x.assign(age=1e9 + x["age"]), y, "shifted")
    first, second = FITS.fits
    assert first["method"] == "IRLS, covariates as given" and first["failed_attempts"] == []
    assert second["converged"] and second["method"] == "IRLS, standardised covariates, 200 iterations"
    assert len(second["failed_attempts"]) == 1
    assert second["failed_attempts"][0].startswith("IRLS, covariates as given: the likelihood is not at its maximum")
    assert shifted.method == "IRLS, standardised"
    np.testing.assert_allclose(shifted.probability, ref, rtol=0, atol=1e-6)


def test_separation_fails_naming_the_separating_column_in_the_callers_words():
    rng = np.random.default_rng(2)
    n = 300
    seg = np.where(rng.random(n) < 0.15, "vip", "std")
    z = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))) | (seg == "vip")  # every vip responds
    x = design_matrix(pd.DataFrame({"z": z, "seg": seg}), "z + seg").X
    with pytest.raises(FitError) as err:
        fits.fit_logit(x, y, "response model", outcome="respond", groups="respondents from non-respondents",
                       decides="who responds", fix="merge rare segments")
    text = str(err.value)
    assert text.startswith("The response model did not converge (tried: IRLS, covariates as given: ")
    assert "predicted to respond (or not) with certainty: the covariates separate respondents from " \
           "non-respondents" in text
    assert text.endswith("Fix: seg = vip alone decides who responds for some customers; merge rare segments")
    assert "z alone" not in text  # z overlaps between the groups: not named
    assert FITS.fits == [{"model": "response model", "converged": False, "method": "BFGS, standardised covariates",
                          "failed_attempts": FITS.fits[0]["failed_attempts"]}]
    assert [a.split(":")[0] for a in FITS.fits[0]["failed_attempts"]] == [
        "IRLS, covariates as given", "IRLS, standardised covariates, 200 iterations", "BFGS, standardised covariates"]


def test_bootstrap_replicates_are_not_recorded_and_a_failure_still_names_the_culprit():
    x, y = simulated(seed=6)
    fits.fit_logit(x, y, record=False)
    assert FITS.fits == []
    sep = x["age"].to_numpy() > 45  # age alone decides the outcome
    with pytest.raises(FitError, match=r"Fix: age alone decides the outcome for some customers; leave out covariates"):
        fits.fit_logit(x, sep, record=False)
    assert FITS.fits == []


def test_separating_columns_names_levels_and_numbers_that_decide_alone():
    x = pd.DataFrame({"seg[vip]": [1, 1, 0, 0, 0, 0], "seg[mid]": [0, 0, 1, 0, 1, 0], "age": [50, 60, 20, 30, 40, 45],
                      "score": [1.0, 5.0, 2.0, 4.0, 3.0, 6.0]})
    y = np.array([1, 1, 0, 1, 0, 0])
    assert fits.separating_columns(x, y) == ["seg = vip", "seg = mid"]
    assert fits.separating_columns(x, np.array([1, 1, 0, 0, 0, 0])) == ["seg = vip", "seg = mid", "age"]


def test_term_text_and_standardise():
    assert fits.term_text("segment[premium]") == "segment = premium" and fits.term_text("age") == "age"
    assert fits.term_text("I(age ** 2)") == "I(age ** 2)"
    s = fits.standardise(pd.DataFrame({"a": [1.0, 2.0, 3.0], "const": [5.0, 5.0, 5.0]}))
    assert list(s.columns) == ["a"]  # a constant column is carried by the intercept
    np.testing.assert_allclose(s["a"], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)])


@pytest.mark.parametrize("y", [np.array([0, 1, 2, 1]), np.array([0.0, 1.0, np.nan, 1.0]), np.array([0, 1, 1])],
                         ids=["not-0-1", "missing-outcome", "wrong-length"])
def test_an_outcome_that_is_not_one_0_1_value_per_row_is_refused(y):
    x = pd.DataFrame({"a": [0.1, 0.4, 0.2, 0.9]})
    with pytest.raises(ValueError, match="needs one 0/1 \\(or true/false\\) outcome per row"):
        fits.fit_logit(x, y)
    assert FITS.fits == []
