"""One design-matrix builder for every model: a Wilkinson formula in, numeric columns and reference levels out.

>>> d = design_matrix(units, "age + I(age**2) + educ + I(re74 == 0) + plan")
>>> d.X.columns        # age, I(age ** 2), educ, I(re74 == 0), plan[annual], plan[quarterly]
>>> d.references       # {"plan": "monthly"}

Formulas are read by `formulaic <https://matthewwardrop.github.io/formulaic/>`_ (the syntax of R and
patsy: ``a + b``, ``a:b``, ``a*b``, ``I(x**2)``, ``np.log1p(x)``, ``C(x)``; names that are not Python
names in backticks, e.g. ```pre spend```). How columns enter:

* numbers as they are; 0/1 and true/false columns as 0/1 numbers; nothing is added behind the analyst's
  back (no logs, no squares: write them in the formula);
* text (and categorical) columns as 0/1 indicator columns, one per level except the **reference level**.

**The reference-level rule** (one rule for the whole package): the reference level of a text column is its
most frequent value; ties go to the first in sorted order (values compared as text). So the comparison is
against the typical customer, and the choice does not depend on the row order. ``reference`` overrides it
per column. Indicator columns are named ``column[level]`` (levels in sorted order), which the display layer
shows as "column: level vs reference" once the references are registered:
``cx.display.use_labels(references=d.references)``.

The intercept is always part of the model (it is what makes one level the reference); :attr:`DesignMatrix.X`
leaves its column out unless ``intercept=True`` (the fitting code adds its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxresearch.errors import ParameterError
from cxresearch.stats import pick

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TREATMENT = re.compile(r"\[T\.")  # formulaic's "plan[T.annual]" -> "plan[annual]"
_ANSI = re.compile(r"\x1b\[[0-9;]*m|⧛|⧚")  # formulaic marks the bad part of a formula with terminal colours


@dataclass(frozen=True)
class DesignMatrix:
    """A model's numeric columns and how they were made.

    Attributes
    ----------
    X
        One float column per term, indexed like the data (no intercept column unless asked for).
    terms
        The column names of ``X`` in order: numbers by their expression (``age``, ``I(age ** 2)``), levels of
        a text column as ``column[level]``.
    references
        Text column → its reference level (the level without a column).
    formula
        The formula as used (right-hand side; given, or built from a list of covariates by :func:`formula_of`).
    variables
        The data columns the formula uses, in the order they first appear in it.
    """

    X: pd.DataFrame
    terms: list[str]
    references: dict[str, str]
    formula: str
    variables: list[str]


def quote(name: str) -> str:
    """A column name as a formula term: as it is when it is a Python name, else in backticks."""
    return name if _NAME.match(name) else f"`{name}`"


def formula_of(covariates: Iterable[str]) -> str:
    """The formula that enters ``covariates`` as given: ``a + b + c`` (empty text for no covariates)."""
    return " + ".join(quote(str(c)) for c in covariates)


def _parse(formula: str):
    from formulaic import Formula
    from formulaic.errors import FormulaicError

    text = str(formula).strip()
    if "~" in text:
        raise ParameterError(f"covariate formula {text!r}: give only the right-hand side (the covariates), without "
                             "'~' and an outcome. Example: age + I(age**2) + educ + I(re74 == 0)")
    try:
        parsed = Formula(text or "1")
    except (FormulaicError, SyntaxError, ValueError) as exc:
        why = _ANSI.sub("", str(exc)).strip().splitlines()[0]
        raise ParameterError(f"covariate formula {text!r} cannot be read ({why}). Write it in Wilkinson syntax, "
                             "e.g. age + I(age**2) + educ + I(re74 == 0); names with spaces in backticks.") from exc
    return parsed


def variables(formula: str) -> list[str]:
    """The data columns a formula uses, in the order they first appear in it."""
    text = str(formula)

    def first(v: str) -> int:
        m = re.search(rf"`{re.escape(v)}`|(?<![\w.]){re.escape(v)}(?!\w)", text)
        return m.start() if m else len(text)

    return sorted(_parse(text).required_variables, key=lambda v: (first(v), v))


def reference_level(values: pd.Series) -> str:
    """The reference level of a text column: the most frequent value, ties to the first in sorted order."""
    return str(pick(values.astype(str).value_counts(), "max"))


def is_text(values: pd.Series) -> bool:
    """Whether a column enters as levels (text or categorical) rather than as a number (numbers, 0/1, bool)."""
    return not pd.api.types.is_numeric_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype)


def design_matrix(data: pd.DataFrame, formula: str, reference: Mapping[str, object] | None = None,
                  intercept: bool = False) -> DesignMatrix:
    """The design matrix of ``formula`` (right-hand side, Wilkinson syntax) on ``data``.

    Parameters
    ----------
    data
        One row per unit; every column the formula names must be present and complete.
    formula
        E.g. ``"age + I(age**2) + educ + I(re74 == 0)"``; :func:`formula_of` builds one from a list.
    reference
        Text column → its reference level, overriding the rule (most frequent level, ties to the first in
        sorted order).
    intercept
        Keep the ``Intercept`` column in ``X``.

    Raises
    ------
    ParameterError
        The formula cannot be read, removes the intercept, names a column the data do not have, or a
        ``reference`` level does not occur.
    ValueError
        A column the formula uses has missing values (loaders check this first, in the data's words).
    """
    from formulaic import model_matrix
    from formulaic.errors import FormulaicError

    text = str(formula).strip()
    parsed = _parse(text)
    if "1" not in {str(t) for t in parsed}:
        raise ParameterError(f"covariate formula {text!r} removes the intercept ('- 1' or '0 +'): leave it in, so "
                             "that one level of each text column is the reference.")
    used = variables(text)
    missing = [v for v in used if v not in data.columns]
    if missing:
        raise ParameterError(f"covariate formula {text!r} uses {', '.join(repr(v) for v in missing)}, which the data "
                             f"do not have. Columns: {list(map(str, data.columns))}.")
    refs: dict[str, str] = {}
    frame = pd.DataFrame(index=data.index)
    for v in used:
        s = data[v]
        if s.isna().any():
            raise ValueError(f"column '{v}' has {int(s.isna().sum())} missing value(s): a design matrix needs every "
                             "value")
        if is_text(s):
            s = s.astype(str)
            levels = sorted(s.unique())
            ref = reference_level(s) if reference is None or v not in reference else str(reference[v])
            if ref not in levels:
                raise ParameterError(f"reference level {ref!r} of '{v}' does not occur. Levels: {levels}.")
            s = pd.Series(pd.Categorical(s, categories=[ref, *(lv for lv in levels if lv != ref)]), index=s.index)
            refs[v] = ref
        frame[v] = s
    try:
        mm = model_matrix(text or "1", frame, na_action="raise", context={"np": np})
    except FormulaicError as exc:
        why = _ANSI.sub("", str(exc)).strip().splitlines()[0]
        raise ParameterError(f"covariate formula {text!r} cannot be evaluated on the data ({why}).") from exc
    X = pd.DataFrame(np.asarray(mm, float), index=data.index,
                     columns=[_TREATMENT.sub("[", str(c)) for c in mm.columns])
    if not intercept:
        X = X.drop(columns="Intercept", errors="ignore")
    return DesignMatrix(X, list(X.columns), refs, text, used)
