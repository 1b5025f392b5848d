"""Core statistics shared by every analysis: intervals, tests, bootstrap, weights, agreement, ties.

No file I/O and nothing about any particular data set. Interval methods: normal (Wald) with :data:`Z95`,
Welch t, Wilson score for proportions, Fisher z for correlations, percentile bootstrap.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

from cxresearch.fits import is_number

Z95 = 1.959963984540054  # two-sided 95% normal quantile (scipy.stats.norm.ppf(0.975)), the one used everywhere


def normal_interval(estimate: float, se: float, z: float = Z95) -> tuple[float, float]:
    """Wald interval ``estimate ± z·se`` (NaN bounds when ``se`` is not a positive number)."""
    if not (is_number(estimate) and is_number(se) and se >= 0):
        return math.nan, math.nan
    return estimate - z * se, estimate + z * se


def wilson_interval(successes: float, n: float) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion (NaN when ``n`` is 0)."""
    if not n:
        return math.nan, math.nan
    p, z2 = successes / n, Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # float rounding must not push a bound past the share itself (0 of n: the lower bound is exactly 0)
    return min(max(0.0, centre - half), p), max(min(1.0, centre + half), p)


def fisher_z_interval(r: float, n: int) -> tuple[float, float]:
    """95% interval of a correlation by Fisher's z transform (NaN when n ≤ 3 or |r| = 1)."""
    if n <= 3 or not is_number(r) or abs(r) >= 1:
        return math.nan, math.nan
    z, se = math.atanh(r), 1 / math.sqrt(n - 3)
    return math.tanh(z - Z95 * se), math.tanh(z + Z95 * se)


def welch(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Difference in means ``a - b`` with a Welch t 95% interval and p-value.

    Needs at least two units per group and some spread; otherwise the interval and p-value are NaN (the
    caller reports "not testable").
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    out = {"estimate": float(a.mean() - b.mean()) if len(a) and len(b) else math.nan, "ci_low": math.nan,
           "ci_high": math.nan, "p_value": math.nan, "se": math.nan, "n_treated": len(a), "n_control": len(b)}
    if len(a) < 2 or len(b) < 2:
        return out
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    if not se > 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = _st.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(0.95)
    out.update({"ci_low": float(ci.low), "ci_high": float(ci.high), "p_value": float(res.pvalue), "se": se})
    return out


def welch_from_moments(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int
                       ) -> dict[str, float]:
    """:func:`welch` from each group's mean, sample variance and count (a query's summary), with the same
    rules: NaN interval and p-value with fewer than two units in a group or no spread."""
    out = {"estimate": float(mean_a - mean_b) if n_a and n_b else math.nan, "ci_low": math.nan,
           "ci_high": math.nan, "p_value": math.nan, "se": math.nan, "n_treated": int(n_a), "n_control": int(n_b)}
    if n_a < 2 or n_b < 2:
        return out
    va, vb = var_a / n_a, var_b / n_b
    se = math.sqrt(va + vb)
    if not se > 0:
        return out
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    half = _st.t.ppf(0.975, df) * se
    p = _st.ttest_ind_from_stats(mean_a, math.sqrt(var_a), n_a, mean_b, math.sqrt(var_b), n_b, equal_var=False).pvalue
    out.update({"ci_low": out["estimate"] - half, "ci_high": out["estimate"] + half, "p_value": float(p), "se": se})
    return out


@dataclass(frozen=True)
class Bootstrap:
    """A percentile bootstrap: the interval, the draws, and how many replicates failed."""

    ci_low: float
    ci_high: float
    draws: np.ndarray
    n_boot: int
    failed: int
    problem: str | None = None  # why no interval is given (too many failures, interval misses the estimate)


def percentile_bootstrap(statistic: Callable[[np.ndarray], float], n: int, n_boot: int, seed: int = 0,
                         estimate: float | None = None, max_failed_share: float = 0.05) -> Bootstrap:
    """Percentile 95% interval of ``statistic(indices)`` over ``n_boot`` resamples of ``n`` units.

    ``statistic`` receives the resampled row indices and returns a number; replicates that raise or give
    NaN count as failed (reported, never silently dropped). No interval is given when more than
    ``max_failed_share`` of the replicates failed or when it does not contain ``estimate``. Use
    ``scipy.stats.bootstrap`` instead where the statistic vectorises.
    """
    return percentile_bootstraps(lambda idx: [statistic(idx)], n, n_boot, seed, [estimate],
                                 max_failed_share)[0]


def percentile_bootstraps(statistics: Callable[[np.ndarray], Sequence[float]], n: int, n_boot: int, seed: int,
                          estimates: Sequence[float | None], max_failed_share: float = 0.05) -> list[Bootstrap]:
    """:func:`percentile_bootstrap` of several statistics computed from the same resamples: ``statistics(idx)``
    returns one value per entry of ``estimates``. The same intervals as one bootstrap per statistic with the
    same seed, for the cost of one resampling."""
    rng = np.random.default_rng(seed)
    k = len(estimates)
    draws = np.full((int(n_boot), k), np.nan)
    for b in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        try:
            draws[b] = [float(v) for v in statistics(idx)]
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            pass  # a failed replicate stays NaN and is counted
    out = []
    for j, estimate in enumerate(estimates):
        ok = np.isfinite(draws[:, j])
        out.append(_percentile_interval(draws[ok, j], int(n_boot), int((~ok).sum()), estimate, max_failed_share))
    return out


def _percentile_interval(arr: np.ndarray, n_boot: int, failed: int, estimate: float | None,
                         max_failed_share: float) -> Bootstrap:
    if not n_boot or failed > max_failed_share * n_boot or len(arr) < 2:
        return Bootstrap(math.nan, math.nan, arr, int(n_boot), failed,
                         f"{failed} of {int(n_boot)} bootstrap replicates could not be computed")
    lo, hi = (float(v) for v in np.quantile(arr, [0.025, 0.975]))
    if estimate is not None and is_number(estimate) and not lo <= estimate <= hi:
        return Bootstrap(math.nan, math.nan, arr, int(n_boot), failed,
                         "the bootstrap distribution does not contain the estimate (unstable in these data)")
    return Bootstrap(lo, hi, arr, int(n_boot), failed)


def kish_n(weights: np.ndarray) -> float:
    """Kish's effective sample size (Σw)² / Σw² of a weighted sample."""
    w = np.asarray(weights, float)
    return float(w.sum() ** 2 / (w ** 2).sum()) if len(w) and (w ** 2).sum() > 0 else 0.0


def krippendorff_alpha(data: np.ndarray, level: str = "nominal") -> float:
    """Krippendorff's alpha of a coders × units matrix (NaN = not coded), by the ``krippendorff`` package.

    NaN when it is undefined (fewer than two coded values per unit anywhere, or no variation at all).
    """
    import krippendorff

    x = np.asarray(data, float)
    pairable = (np.sum(~np.isnan(x), axis=0) >= 2).sum()
    values = x[~np.isnan(x)]
    if pairable == 0 or len(np.unique(values)) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(krippendorff.alpha(reliability_data=x, level_of_measurement=level))


def suppress_small(counts: pd.DataFrame, count_col: str, min_n: int = 5, cols: list[str] | None = None) -> pd.DataFrame:
    """Blank out cells that describe fewer than ``min_n`` people (confidentiality).

    ``count_col`` is replaced by text ("<5" for suppressed groups) and the ``cols`` derived from it are
    emptied on those rows.
    """
    out = counts.copy()
    small = out[count_col] < min_n
    for c in cols or []:
        out[c] = out[c].astype(object).where(~small, None)
    out[count_col] = out[count_col].astype(object).where(~small, f"<{min_n}")
    return out


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


@dataclass(frozen=True)
class Claim:
    """A tested claim as an analysis returns it; the notebook records it with ``results.add(claim)``.

    ``verdict`` comes from :func:`verdict` inside the analysis (never from a rule in a notebook); ``n`` is
    the number of units in the smallest group the claim rests on; ``unit`` and ``meaning`` tell the reader
    how the estimate reads (see :data:`cxresearch.display.UNITS`); ``truth`` is the planted value when
    the data are synthetic and the estimate targets it on the same scale.
    """

    id: str
    claim: str
    test: str
    estimate: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    verdict: str = "not testable"
    n: int | None = None
    note: str | None = None
    unit: str | None = None
    meaning: str | None = None
    truth: float | None = None


def percentile_interval(draws: np.ndarray, estimate: float, min_draws: int = 20) -> tuple[float, float, str]:
    """Percentile 95% interval of bootstrap ``draws`` already made, checked to contain ``estimate``.

    For draws a caller made itself (several statistics per replicate, stratified resampling); a single
    statistic is bootstrapped with :func:`percentile_bootstrap`. Returns ``(low, high, "")``, or
    ``(nan, nan, reason)`` when fewer than ``min_draws`` draws are finite or the interval excludes the
    estimate (no interval is better than one that contradicts its estimate).
    """
    draws = np.asarray(draws, float)
    draws = draws[np.isfinite(draws)]
    if len(draws) < min_draws or not is_number(estimate):
        return math.nan, math.nan, "too few bootstrap replicates succeeded"
    lo, hi = float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))
    if not lo <= estimate <= hi:
        return math.nan, math.nan, ("the bootstrap distribution does not contain the estimate (unstable in these "
                                    "data): no interval is shown")
    return lo, hi, ""
