"""Small statistical helpers shared by the analysis modules."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch.fits import is_number


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (same as statsmodels' ``multipletests(method="holm")``).

    Written out because statsmodels' version costs about 0.1 s per call, which dominates simulations.
    """
    p = np.asarray(p_values, float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


# Ties are broken deterministically: values are compared at TIE_DIGITS significant digits (so that two
# equal item-total correlations computed in a different order count as equal on any machine), then by
# label. Every "weakest", "best", top-k and ranking choice goes through these helpers.
TIE_DIGITS = 9


def round_significant(values: np.ndarray | pd.Series | float, digits: int = TIE_DIGITS) -> np.ndarray:
    """Values rounded to ``digits`` significant digits (NaN stays NaN)."""
    x = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where((x == 0) | ~np.isfinite(x), 0, np.floor(np.log10(np.abs(x))))
    scale = 10.0 ** (digits - 1 - mag)
    return np.round(x * scale) / scale


def pick(values: pd.Series, which: str = "min", digits: int = TIE_DIGITS) -> object:
    """The label of the smallest (``which="min"``) or largest value; ties go to the first label in sorted order."""
    s = values.dropna()
    if s.empty:
        raise ValueError("no values to choose from")
    x = s.to_numpy(dtype=float)
    best = x.min() if which == "min" else x.max()
    # equal up to float noise (relative 10^-digits): rounding could split two such values at a border
    near = np.abs(x - best) <= 10.0 ** -digits * max(abs(best), 1e-3)
    return sorted(s.index[near], key=str)[0]


def stable_sort(df: pd.DataFrame, by: str | list[str], ascending: bool | list[bool] = True,
                tie: str | list[str] | None = None, digits: int = TIE_DIGITS) -> pd.DataFrame:
    """``df`` sorted by numeric column(s) compared at ``digits`` significant digits, ties broken by ``tie``.

    ``tie`` names the label column(s) (ascending); default: the index. The result keeps its index.
    """
    by = [by] if isinstance(by, str) else list(by)
    asc = [ascending] * len(by) if isinstance(ascending, bool) else list(ascending)
    keys = {f"__k{i}": round_significant(df[c].to_numpy(dtype=float), digits) if pd.api.types.is_numeric_dtype(df[c])
            else df[c] for i, c in enumerate(by)}
    tmp = df.assign(**keys)
    if tie is None:
        tmp = tmp.assign(__label=[str(i) for i in df.index])
        ties = ["__label"]
    else:
        ties = [tie] if isinstance(tie, str) else list(tie)
    out = tmp.sort_values([*keys, *ties], ascending=[*asc, *[True] * len(ties)], kind="mergesort",
                          na_position="last")
    return out.drop(columns=[*keys, *(["__label"] if tie is None else [])])


def verdict(ci_low: float | None, ci_high: float | None, null: float = 0.0, direction: int = 1,
            margin: float | None = None, within: tuple[float, float] | None = None) -> str:
    """Verdict of a claim from its confidence interval.

    Directional claims: ``supported`` when the whole interval lies on the claimed side of ``null``
    (``direction`` +1: above, -1: below); ``not supported`` when the whole interval lies on the other
    side, or — when an equivalence ``margin`` is given — inside ``null ± margin``; otherwise
    ``inconclusive``. Range claims (``within=(a, b)``, e.g. "tangible attributes drive 5–10%"):
    ``supported`` when the interval lies inside [a, b], ``not supported`` when it lies wholly outside,
    ``inconclusive`` otherwise. A missing or non-finite bound gives ``not testable``.
    """
    if not (is_number(ci_low) and is_number(ci_high)):
        return "not testable"
    if within is not None:
        a, b = within
        if a <= ci_low and ci_high <= b:
            return "supported"
        if ci_high < a or ci_low > b:
            return "not supported"
        return "inconclusive"
    lo, hi = (ci_low - null, ci_high - null) if direction > 0 else (null - ci_high, null - ci_low)
    if lo > 0:
        return "supported"
    if hi < 0:
        return "not supported"
    if margin is not None and -margin <= lo and hi <= margin:
        return "not supported"
    return "inconclusive"
