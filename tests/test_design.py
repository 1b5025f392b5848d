"""The one design-matrix builder: formulas in, numeric columns and reference levels out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxresearch.design import design_matrix, formula_of, reference_level, variables
from cxresearch.errors import ParameterError


def units() -> pd.DataFrame:
    return pd.DataFrame({"age": [20.0, 30, 40, 50, 60, 25], "plan": ["annual", "monthly", "monthly", "annual",
                                                                      "quarterly", "monthly"],
                         "re74": [0.0, 1.5, 0, 3, 0, 2], "black": [1, 0, 0, 1, 1, 0],
                         "vip": [True, False, True, True, False, False], "pre spend": [1.0, 2, 3, 4, 5, 6]})


def test_formula_terms_are_exactly_what_is_written():
    d = design_matrix(units(), "age + I(age**2) + plan + I(re74 == 0) + black + vip + `pre spend`")
    assert d.terms == ["age", "I(age ** 2)", "plan[annual]", "plan[quarterly]", "I(re74 == 0)", "black", "vip",
                       "pre spend"]
    assert list(d.X.columns) == d.terms and all(t == np.float64 for t in d.X.dtypes)
    assert d.references == {"plan": "monthly"}
    assert d.variables == ["age", "plan", "re74", "black", "vip", "pre spend"]
    np.testing.assert_array_equal(d.X["I(age ** 2)"], units()["age"] ** 2)
    np.testing.assert_array_equal(d.X["I(re74 == 0)"], [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(d.X["vip"], [1, 0, 1, 1, 0, 0])  # true/false as 0/1, no level columns


def test_covariates_as_given_add_nothing():
    """No log(1 + x) or anything else behind the analyst's back: 0/1 dummies stay single columns."""
    d = design_matrix(units(), formula_of(["age", "re74", "black", "plan", "pre spend"]))
    assert d.formula == "age + re74 + black + plan + `pre spend`"
    assert d.terms == ["age", "re74", "black", "plan[annual]", "plan[quarterly]", "pre spend"]
    assert not any("log" in t for t in d.terms)
    # with the intercept the columns are linearly independent (a log(1 + x) of a 0/1 column would not be)
    full = design_matrix(units(), "age + black + vip", intercept=True).X.to_numpy()
    assert np.linalg.matrix_rank(full) == full.shape[1]


def test_reference_rule_most_frequent_level_ties_to_the_first_in_sorted_order():
    df = pd.DataFrame({"seg": ["b", "a", "b", "a", "c"]})  # a and b tie as most frequent: a is the reference
    assert reference_level(df["seg"]) == "a"
    assert design_matrix(df, "seg").terms == ["seg[b]", "seg[c]"]
    assert design_matrix(df.iloc[::-1], "seg").terms == ["seg[b]", "seg[c]"]  # row order does not matter
    assert design_matrix(df, "seg").references == {"seg": "a"}
    assert reference_level(pd.Series(["x", "y", "y"])) == "y"  # the most frequent wins over sorted order


def test_reference_can_be_chosen_and_must_occur():
    d = design_matrix(units(), "plan", reference={"plan": "quarterly"})
    assert d.terms == ["plan[annual]", "plan[monthly]"] and d.references == {"plan": "quarterly"}
    with pytest.raises(ParameterError, match="reference level 'weekly' of 'plan' does not occur"):
        design_matrix(units(), "plan", reference={"plan": "weekly"})


def test_intercept_is_kept_only_when_asked_and_empty_formula_gives_no_columns():
    assert design_matrix(units(), "age", intercept=True).terms == ["Intercept", "age"]
    d = design_matrix(units(), "")
    assert d.X.shape == (6, 0) and d.terms == [] and d.variables == []
    assert list(d.X.index) == list(units().index)


def test_transforms_and_interactions():
    d = design_matrix(units(), "np.log1p(re74) + age:plan")
    assert d.terms[0] == "np.log1p(re74)"
    np.testing.assert_allclose(d.X["np.log1p(re74)"], np.log1p(units()["re74"]))
    assert any(t.startswith("age:plan[") for t in d.terms)


def test_index_of_the_data_is_kept():
    df = units().set_index(pd.Index(list("uvwxyz")))
    assert list(design_matrix(df, "age + plan").X.index) == list("uvwxyz")


@pytest.mark.parametrize("formula, message", [
    pytest.param("y ~ age", "give only the right-hand side", id="with-outcome"),
    pytest.param("age + (", "cannot be read", id="syntax-error"),
    pytest.param("age - 1", "removes the intercept", id="no-intercept"),
    pytest.param("0 + age", "removes the intercept", id="zero-plus"),
    pytest.param("age + income", "uses 'income', which the data do not have", id="unknown-column"),
])
def test_bad_formulas_are_refused_in_words(formula, message):
    with pytest.raises(ParameterError, match=message) as err:
        design_matrix(units(), formula)
    assert "\x1b[" not in str(err.value)  # no terminal colour codes from the parser


def test_missing_values_are_refused():
    df = units().assign(age=[20.0, None, 40, 50, 60, 25])
    with pytest.raises(ValueError, match="column 'age' has 1 missing value"):
        design_matrix(df, "age + plan")


def test_variables_in_order_of_appearance():
    assert variables("wage + age + I(age**2) + `pre spend` + np.log1p(re74)") == ["wage", "age", "pre spend", "re74"]
    assert formula_of(["a", "b c", "d_1"]) == "a + `b c` + d_1"
