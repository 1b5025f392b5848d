"""Voice of the customer, quantitative: NPS, Likert items, weighting, measurement quality, key drivers.

Interval methods:

* NPS: per-respondent score +1/0/-1, variance p_P + p_D - NPS² (multinomial); Wald interval, or the
  adjusted Wald interval of Rocks (2016) — add 3/4 to each of the three counts and 3 to n — for small
  samples (n < 100 by default). Weighted figures use weighted shares and Kish's effective sample size.
* top-2-box: Wilson interval on the (effective) sample size;
* Cronbach's alpha: Feldt (1965) F-based interval; McDonald's omega from a one-factor principal-axis
  factor model (deterministic, unlike a maximum-likelihood fit), needs at least three items;
* Johnson's (2000) relative weights: percentile bootstrap over respondents; they sum to R² exactly. A
  percentile interval that does not contain its own point estimate (small weights: the bootstrap is
  biased upwards) is not shown, and claims resting on it become "not testable";
* negativity ratio (effect of a bad experience / effect of a good one): delta method on OLS estimates,
  only when the effect of a good experience is clearly above zero (otherwise the ratio is undefined).

Convergence: raking, the principal-axis factor fits (omega, factor-analysis check), the PLS path model and
the response model run through :func:`cxresearch.fits.fit_with_retries` with safer retries (more
iterations, other start values, standardised covariates) and a check (converged, finite, margins met, no
Heywood case). Raking that cannot meet its margins stops the run; the factor-analysis check and the path
model are side analyses and are reported as not estimable.

Ties are broken deterministically (:func:`cxresearch.stats.pick`, :func:`cxresearch.stats.stable_sort`):
the weakest item, rankings, factor assignment and the quadrant of a driver that lies exactly on a border
(it counts as important / performing well). Groups (waves, segments, raking cells) smaller than the
minimum are folded into "Other (small groups)" so that none can be recovered by subtraction.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from cxresearch import plots
from cxresearch.display import LABELS, Table, fmt_value, plain, table
from cxresearch.fits import FitError, fit_with_retries, is_number
from cxresearch.io import InputError
from cxresearch.params import ParameterError
from cxresearch.privacy import OTHER, merge_small_groups
from cxresearch.results import NotEstimable, verdict
from cxresearch.stats import pick, round_significant, stable_sort

Z = 1.959964
QUADRANTS = {(True, False): "improve first", (True, True): "maintain", (False, False): "monitor",
             (False, True): "possible overkill"}  # (important, performing well)
MAX_FAILED_SHARE = 0.05  # bootstrap replicates that may fail before intervals are withheld
# how a reader sees the usual construct and attribute-group names (the notebook's ``labels`` parameter wins)
CONSTRUCT_LABELS = {"service": "service at the touchpoints", "expectation": "expectations",
                    "emotional": "emotional attributes", "tangible": "tangible attributes",
                    "recommend": "likelihood to recommend"}
GROUP_LABELS = {"touchpoint": "service at the touchpoints", "emotional": "emotional attributes",
                "tangible": "tangible attributes"}


def dictionary_labels(items: pd.DataFrame) -> dict[str, str]:
    """What a reader sees instead of the dictionary's names: the usual constructs spelled out
    (:data:`CONSTRUCT_LABELS`) and each item's ``label`` (items without one keep their name); a reverse-coded
    item's label says "(reverse-scored)", since its answers are flipped before any figure is computed.

    Register with ``cx.display.use_labels(survey.dictionary_labels(items), labels)``.
    """
    out = {c: CONSTRUCT_LABELS[c] for c in items["construct"].dropna().astype(str) if c in CONSTRUCT_LABELS}
    reverse = items["reverse"] if "reverse" in items else pd.Series(False, index=items.index)
    for item, lab, flag in zip(items["item"], items["label"] if "label" in items else items["item"], reverse,
                               strict=True):
        if isinstance(lab, str) and lab.strip():
            flipped = flag is True or (isinstance(flag, np.bool_) and bool(flag))
            out[str(item)] = lab.strip() + (" (reverse-scored)" if flipped else "")
    return out


def planted_values(truth: dict[str, Any] | None, outcome: str, predictors: list[str], good_col: str | None,
                   bad_col: str | None) -> dict[str, float]:
    """Claim id -> the synthetic world's planted value on the same scale as the claim's estimate.

    Empty for real data, and a claim is left out when the analysis departs from the planted model (another
    outcome than ``nps``, other drivers, other experience counts). The negativity ratio is compared with the
    ratio on the observed 0–10 answers in a large sample of the same model
    (``negativity_ratio_observed_scale_large_sample``), which is what the regression on the answers
    estimates; the planted ``negativity_ratio`` acts on a latent score before the answers are rounded and
    capped at 0 and 10, which changes the ratio. Attribute-group shares are the shares of explained variance
    in that large sample.
    """
    s = (truth or {}).get("survey")
    if not s or outcome != "nps" or set(predictors) != set(s.get("nps_model", {}).get("driver_coefs", {})):
        return {}
    out: dict[str, float] = {}
    share = s.get("driver_group_share") or {}
    if {"emotional", "tangible"} <= set(share):
        out["emotional_beats_tangible"] = float(share["emotional"] - share["tangible"])
    if "tangible" in share:
        out["tangible_share_5_to_10"] = float(share["tangible"])
    observed = s.get("negativity_ratio_observed_scale_large_sample")
    if (good_col, bad_col) == ("n_good", "n_bad") and is_number(observed):
        out["bad_experience_needs_five_good"] = float(observed)
    return out


def percentile_interval(draws: np.ndarray, estimate: float) -> tuple[float, float, str]:
    """Percentile bootstrap 95% interval, checked to contain ``estimate`` (else NaN and the reason)."""
    from cxresearch.payoff import percentile_interval as _pi

    return _pi(draws, estimate)


# ---------------------------------------------------------------------------------------------
# NPS


def nps(scores: pd.Series | np.ndarray, weights: np.ndarray | None = None, adjusted: bool | None = None,
        small_n: int = 100) -> dict[str, float]:
    """Net Promoter Score in points (-100..100) with a 95% interval.

    ``adjusted`` None chooses the adjusted Wald interval when the (effective) n is below ``small_n``.
    """
    s = pd.Series(np.asarray(scores, float)).reset_index(drop=True)
    ok = s.notna().to_numpy()
    w = np.ones(len(s)) if weights is None else np.asarray(weights, float)
    s, w = s[ok].to_numpy(), w[ok]
    n_eff = w.sum() ** 2 / np.sum(w**2) if len(w) and np.sum(w**2) > 0 else 0.0
    if n_eff == 0:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0, "n_effective": 0.0,
                "variance": math.nan, "promoters": math.nan, "detractors": math.nan, "method": ""}
    p_pro = np.sum(w * (s >= 9)) / w.sum()
    p_det = np.sum(w * (s <= 6)) / w.sum()
    est = p_pro - p_det
    use_adjusted = (n_eff < small_n) if adjusted is None else adjusted
    if use_adjusted:
        n_adj = n_eff + 3
        pp, pd_ = (p_pro * n_eff + 0.75) / n_adj, (p_det * n_eff + 0.75) / n_adj
        centre, var = pp - pd_, (pp + pd_ - (pp - pd_) ** 2) / n_adj
    else:
        centre, var = est, (p_pro + p_det - est**2) / n_eff
    half = Z * math.sqrt(max(var, 0.0))
    # the adjusted Wald interval is centred on the adjusted estimate; it is widened (never narrowed) so that
    # it always contains the reported estimate
    lo, hi = min(centre - half, est), max(centre + half, est)
    return {"estimate": 100 * est, "ci_low": 100 * max(-1.0, lo), "ci_high": 100 * min(1.0, hi),
            "n": int(ok.sum()), "n_effective": float(n_eff), "variance": float(p_pro + p_det - est**2),
            "promoters": float(p_pro), "detractors": float(p_det), "method": "adjusted Wald" if use_adjusted else "Wald"}


def fold_groups(groups: pd.Series, min_n: int) -> tuple[pd.Series, list[str]]:
    """Groups with fewer than ``min_n`` members merged into "Other (small groups)" (missing: "(missing)")."""
    g = groups.astype(object).where(groups.notna(), "(missing)")
    return merge_small_groups(g, min_n)


def nps_by(responses: pd.DataFrame, nps_col: str, by: str, weights: np.ndarray | None = None,
           min_n: int = 30, prefix: str = "") -> tuple[pd.DataFrame, list[str]]:
    """NPS per group of ``by`` with groups under ``min_n`` NPS answers folded into "Other (small groups)".

    Folding (rather than hiding) means no small group can be recovered by subtracting the shown counts
    from the total. Returns the table (``label`` is ``prefix`` + group) and the folded labels. When even
    all groups together have fewer than ``min_n`` answers the table is empty.
    """
    answered = responses[nps_col].notna().to_numpy()
    w = np.ones(len(responses)) if weights is None else np.asarray(weights, float)
    cols = [by, "label", "respondents", "estimate", "ci_low", "ci_high", "promoters", "detractors", "interval"]
    if answered.sum() < min_n:
        return pd.DataFrame(columns=cols), []
    groups, folded = fold_groups(responses.loc[answered, by], min_n)
    sub, ws = responses.loc[answered, nps_col].to_numpy(), w[answered]
    rows = []
    levels = sorted(pd.unique(groups), key=lambda v: (str(v).startswith(OTHER), _sort_key(v)))
    for level in levels:
        idx = (groups == level).to_numpy()
        r = nps(sub[idx], ws[idx])
        if r["n"] < min_n:
            continue
        label = level if str(level).startswith(OTHER) else f"{prefix}{level}"
        rows.append({by: level, "label": label, "respondents": r["n"],
                     **{k: r[k] for k in ("estimate", "ci_low", "ci_high", "promoters", "detractors")},
                     "interval": r["method"]})
    return pd.DataFrame(rows, columns=cols), folded


def _sort_key(v: Any) -> tuple:
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def nps_change(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Change b - a in NPS points with a z-test (independent samples)."""
    se = 100 * math.sqrt(a["variance"] / a["n_effective"] + b["variance"] / b["n_effective"])
    diff = b["estimate"] - a["estimate"]
    if not (math.isfinite(se) and se > 0):
        return {"estimate": diff, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    return {"estimate": diff, "ci_low": diff - Z * se, "ci_high": diff + Z * se,
            "p_value": float(2 * stats.norm.sf(abs(diff) / se))}


def nps_changes(responses: pd.DataFrame, nps_col: str, weights: np.ndarray, min_n: int = 30) -> pd.DataFrame:
    """Change in NPS between consecutive waves that each have at least ``min_n`` NPS answers (z-test)."""
    answered = responses[nps_col].notna()
    counts = responses.loc[answered, "wave"].value_counts()
    waves = sorted((v for v in counts.index if counts[v] >= min_n), key=_sort_key)
    rows = []
    for a, b in zip(waves[:-1], waves[1:], strict=True):
        ia, ib = (responses["wave"] == a).to_numpy(), (responses["wave"] == b).to_numpy()
        ra = nps(responses.loc[ia, nps_col], np.asarray(weights)[ia])
        rb = nps(responses.loc[ib, nps_col], np.asarray(weights)[ib])
        rows.append({"from wave": a, "to wave": b, **nps_change(ra, rb)})
    return pd.DataFrame(rows, columns=["from wave", "to wave", "estimate", "ci_low", "ci_high", "p_value"])


# ---------------------------------------------------------------------------------------------
# Likert items


def reverse_coded(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Item columns with reverse-coded items flipped (scale_min + scale_max - x)."""
    out = responses.copy()
    for row in items.itertuples(index=False):
        flag = getattr(row, "reverse", False)
        if flag is True or (isinstance(flag, np.bool_) and bool(flag)):
            if row.item in out:
                out[row.item] = row.scale_min + row.scale_max - out[row.item]
    return out


def top_box(responses: pd.DataFrame, items: pd.DataFrame, weights: np.ndarray | None = None,
            boxes: int = 2) -> pd.DataFrame:
    """Share answering in the top ``boxes`` categories per item, with a Wilson 95% interval.

    Items nobody answered are left out.
    """
    rows = []
    for it in items.itertuples(index=False):
        x = responses[it.item].to_numpy(float)
        ok = ~np.isnan(x)
        w = np.ones(len(x)) if weights is None else np.asarray(weights, float)
        x, w = x[ok], w[ok]
        if not len(x) or w.sum() <= 0:
            continue
        top = x >= it.scale_max - boxes + 1
        share = float(np.sum(w * top) / w.sum())
        n_eff = w.sum() ** 2 / np.sum(w**2)
        lo, hi = proportion_confint(share * n_eff, n_eff, method="wilson")
        rows.append({"item": it.item, "label": getattr(it, "label", it.item), "touchpoint": getattr(it, "touchpoint", ""),
                     "top_box": share, "ci_low": float(min(lo, share)), "ci_high": float(max(hi, share)),
                     "mean": float(np.average(x, weights=w)), "scale_min": it.scale_min, "scale_max": it.scale_max})
    return pd.DataFrame(rows, columns=["item", "label", "touchpoint", "top_box", "ci_low", "ci_high", "mean",
                                       "scale_min", "scale_max"])


# ---------------------------------------------------------------------------------------------
# weighting


@dataclass
class Raking:
    """Raking weights (mean 1) and their diagnostics."""

    weights: np.ndarray
    iterations: int
    max_error: float
    design_effect: float
    effective_n: float


def _ipf(codes: dict[str, np.ndarray], targets: dict[str, pd.Series], max_iter: int, tol: float) -> Raking:
    """Iterative proportional fitting on integer level codes (numpy only, fast enough for many iterations)."""
    idx, tgt = {}, {}
    for v, t in targets.items():
        pos = {lvl: i for i, lvl in enumerate(t.index)}
        idx[v] = np.array([pos[c] for c in codes[v]], dtype=np.int64)
        tgt[v] = t.to_numpy(float)
    w = np.ones(len(next(iter(codes.values()))))
    iterations, err = 0, math.inf
    while iterations < max_iter and err >= tol:
        iterations += 1
        for v in targets:
            current = np.bincount(idx[v], weights=w, minlength=len(tgt[v])) / w.sum()
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(current > 0, tgt[v] / current, 0.0)
            w = w * factor[idx[v]]
        if not (np.isfinite(w).all() and w.sum() > 0):
            raise ArithmeticError("weights became undefined")
        err = max(float(np.max(np.abs(np.bincount(idx[v], weights=w, minlength=len(tgt[v])) / w.sum() - tgt[v])))
                  for v in targets)
    w = w / w.mean()
    deff = float(1 + np.var(w) / np.mean(w) ** 2)
    return Raking(w, iterations, err, deff, float(len(w) / deff))


def rake(df: pd.DataFrame, margins: dict[str, pd.Series], max_iter: int = 1000, tol: float = 1e-12,
         source: str = "'margins'") -> Raking:
    """Iterative proportional fitting of weights to population shares of each variable in ``margins``.

    Converged when every weighted share is within 1e-9 of its target; IPF is retried with 20 times as
    many iterations, and a raking that still misses its margins stops with :class:`FitError` (the margins
    cannot all be met by these respondents).
    """
    codes = {v: df[v].astype(str).to_numpy() for v in margins}
    targets = {v: (m / m.sum()).rename(index=str) for v, m in margins.items()}
    for v, t in targets.items():
        missing = sorted(set(np.unique(codes[v])) - set(t.index))
        if missing:
            raise InputError(source, [f"variable '{v}': respondents have values {missing[:10]} that the margins do "
                                      "not list. Fix: add them to the margins file (with their population share)."])
        empty = sorted(set(t.index[t > 0]) - set(np.unique(codes[v])))
        if empty:
            raise InputError(source, [f"variable '{v}': levels {empty[:10]} have a population share but no "
                                      "respondents. Fix: merge them with a neighbouring level."])

    def check(r: Raking) -> str | None:
        if not r.max_error < 1e-9:
            return f"the weighted shares miss the margins by up to {r.max_error:.1e} after {r.iterations} iterations"
        return None

    return fit_with_retries("raking", [(f"IPF, {max_iter} iterations", lambda: _ipf(codes, targets, max_iter, tol)),
                                       (f"IPF, {20 * max_iter} iterations",
                                        lambda: _ipf(codes, targets, 20 * max_iter, tol))],
                            check=check, fix="the margins cannot all be met by these respondents (some combinations "
                                             "of levels have no respondents); merge levels or rake to fewer variables.")


@dataclass
class Weighting:
    """Weights of the respondents and how they were made."""

    weights: np.ndarray
    raking: Raking | None = None
    check: pd.DataFrame | None = None  # variable, level, target, weighted
    folded: dict[str, list[str]] = field(default_factory=dict)  # variable -> levels merged before raking
    source: str = "none"  # "raking", "column" or "none"


def weighting(responses: pd.DataFrame, margins: dict[str, pd.Series] | None, weight_col: str | None = None,
              min_n: int = 30, source: str = "'margins'") -> Weighting:
    """Raking weights to the margins (levels with fewer than ``min_n`` respondents merged first), a ready
    weight column, or equal weights."""
    if margins:
        missing = [v for v in margins if v not in responses]
        if missing:
            raise InputError(source, [f"margin variable '{v}' is neither a column of the responses nor of the "
                                      "customers. Fix: give customers_path or remove it from the margins." for v in missing])
        empty = [v for v in margins if responses[v].isna().any()]
        if empty:
            raise InputError(source, [f"margin variable '{v}': {int(responses[v].isna().sum())} respondent(s) have "
                                      "no value (not linked to a customer?). Fix: fill it in for every respondent."
                                      for v in empty])
        data, targets, folded = {}, {}, {}
        for v, m in margins.items():
            codes = responses[v].astype(str)
            share = m.rename(index=str).groupby(level=0).sum()
            counts = codes.value_counts()
            _, small = merge_small_groups(codes, min_n)
            # population levels nobody answered from are folded too; "Other" must then still hold min_n
            small = set(small) | {lvl for lvl in share.index if share[lvl] > 0 and lvl not in counts.index}
            rest = sorted((g for g in counts.index if g not in small), key=lambda g: (int(counts[g]), str(g)))
            while small and sum(int(counts.get(g, 0)) for g in small) < min_n and rest:
                small.add(rest.pop(0))
            data[v] = codes.where(~codes.isin(small), OTHER)
            targets[v] = share.groupby(lambda lvl, s=frozenset(small): OTHER if lvl in s else lvl).sum()
            if small:
                folded[v] = sorted(small)
        rk = rake(pd.DataFrame(data), targets, tol=1e-10, source=source)
        check = pd.concat([(pd.Series(rk.weights).groupby(data[v].to_numpy()).sum() / rk.weights.sum())
                           .rename("weighted").to_frame().assign(target=targets[v] / targets[v].sum(), variable=v)
                           for v in targets])
        check = check.reset_index(names="level")[["variable", "level", "target", "weighted"]]
        return Weighting(rk.weights, rk, check, folded, "raking")
    if weight_col:
        w = responses[weight_col].to_numpy(float)
        if not (np.isfinite(w).all() and w.sum() > 0):
            raise InputError(f"'survey_responses' column '{weight_col}'", [
                f"column '{weight_col}': the weights are all 0 (or not finite). Fix: give positive weights."])
        return Weighting(w / w.mean(), source="column")
    return Weighting(np.ones(len(responses)))


# ---------------------------------------------------------------------------------------------
# measurement quality


def cronbach_alpha(x: pd.DataFrame, ci: float = 0.95) -> dict[str, float]:
    """Cronbach's alpha with the Feldt (1965) interval (complete cases); NaN when undefined."""
    x = x.dropna()
    n, k = x.shape
    var_items = x.var(ddof=1).sum()
    var_total = x.sum(axis=1).var(ddof=1)
    if n < 3 or k < 2 or not var_total > 0:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "items": k, "n": n}
    alpha = k / (k - 1) * (1 - var_items / var_total)
    f_lo = stats.f.ppf((1 + ci) / 2, n - 1, (n - 1) * (k - 1))
    f_hi = stats.f.ppf((1 - ci) / 2, n - 1, (n - 1) * (k - 1))
    return {"estimate": float(alpha), "ci_low": float(1 - (1 - alpha) * f_lo), "ci_high": float(1 - (1 - alpha) * f_hi),
            "items": k, "n": n}


@dataclass
class FactorFit:
    """Principal-axis factor loadings (unrotated) and communalities."""

    loadings: np.ndarray
    communality: np.ndarray
    iterations: int
    method: str = "principal axis"


def principal_axis(r: np.ndarray, n_factor: int, max_iter: int = 1000, tol: float = 1e-10,
                   start: str = "smc") -> FactorFit:
    """Iterated principal-axis factoring of the correlation matrix ``r``.

    Communalities start at the squared multiple correlations (``start="smc"``) or at each item's largest
    absolute correlation (``"maxcor"``, usable when ``r`` is singular). Raises ``RuntimeError`` when the
    communalities have not settled (largest change below ``tol``) within ``max_iter`` iterations. Each
    factor's sign is chosen so that its loadings sum to a positive number.
    """
    r = np.asarray(r, float)
    if start == "smc":
        c = 1 - 1 / np.diag(np.linalg.inv(r))
    else:
        off = np.abs(r - np.diag(np.diag(r)))
        c = off.max(axis=1)
    if not np.all(np.isfinite(c)):
        raise ArithmeticError("start values are not finite (singular correlation matrix)")
    rr = r.copy()
    for it in range(1, max_iter + 1):
        np.fill_diagonal(rr, c)
        vals, vecs = np.linalg.eigh(rr)
        order = np.argsort(vals)[::-1][:n_factor]
        vals, vecs = vals[order], vecs[:, order]
        if vals.min() <= 0:
            raise ArithmeticError(f"fewer than {n_factor} factors with a positive eigenvalue")
        a = vecs * np.sqrt(vals)
        new = (a**2).sum(axis=1)
        change = float(np.max(np.abs(new - c)))
        c = new
        if change < tol:
            signs = np.where(a.sum(axis=0) < 0, -1.0, 1.0)
            return FactorFit(a * signs, c, it)
    raise RuntimeError(f"communalities still changing after {max_iter} iterations")


def _factor_check(fit: FactorFit) -> str | None:
    if not (np.all(np.isfinite(fit.loadings)) and np.all(np.isfinite(fit.communality))):
        return "some loadings are not finite"
    if fit.communality.max() > 1 + 1e-6:
        return "an item's communality exceeds 1 (Heywood case)"
    return None


def principal_components(r: np.ndarray, n_factor: int) -> FactorFit:
    """Loadings of the first ``n_factor`` principal components of ``r`` (no iteration, always defined)."""
    vals, vecs = np.linalg.eigh(np.asarray(r, float))
    order = np.argsort(vals)[::-1][:n_factor]
    a = vecs[:, order] * np.sqrt(np.clip(vals[order], 0, None))
    a = a * np.where(a.sum(axis=0) < 0, -1.0, 1.0)
    return FactorFit(a, (a**2).sum(axis=1), 0, "principal components")


def fit_factors(x: pd.DataFrame, n_factor: int, model: str, components_fallback: bool = False) -> FactorFit:
    """Principal-axis factors of the items in ``x`` (complete cases) with checked convergence and retries.

    Retries: more iterations, then start values that need no matrix inverse. With ``components_fallback``
    (the factor-analysis check, which only asks which items group together) principal components are the
    last resort when principal-axis factoring does not converge or gives a Heywood case; ``method`` of
    the result says which was used.
    """
    r = np.corrcoef(x.to_numpy(float), rowvar=False)
    attempts = [("principal axis, SMC start, 1000 iterations", lambda: principal_axis(r, n_factor, 1000)),
                ("principal axis, SMC start, 10000 iterations", lambda: principal_axis(r, n_factor, 10000)),
                ("principal axis, largest-correlation start, 10000 iterations",
                 lambda: principal_axis(r, n_factor, 10000, start="maxcor"))]
    if components_fallback:
        attempts.append(("principal components (no iteration)", lambda: principal_components(r, n_factor)))
    return fit_with_retries(model, attempts, check=_factor_check,
                            fix="check for duplicated items or items that (almost) repeat another one.")


def mcdonald_omega(x: pd.DataFrame, name: str = "") -> float:
    """Omega total from a one-factor principal-axis model on the correlation matrix (NaN below 3 items).

    Raises :class:`FitError` when the factor model does not converge.
    """
    x = x.dropna()
    if x.shape[1] < 3 or len(x) <= x.shape[1]:
        return math.nan
    fa = fit_factors(x, 1, f"one-factor model for omega{f' ({name})' if name else ''}")
    lam = np.abs(fa.loadings[:, 0])
    psi = 1 - fa.communality
    return float(lam.sum() ** 2 / (lam.sum() ** 2 + psi.sum()))


def item_total(x: pd.DataFrame) -> pd.Series:
    """Corrected item-total correlation: each item with the sum of the other items (NaN without spread)."""
    x = x.dropna()
    total = x.sum(axis=1)
    out = {}
    for c in x.columns:
        a, b = x[c].to_numpy(float), (total - x[c]).to_numpy(float)
        out[c] = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 0 and b.std() > 0 else math.nan
    return pd.Series(out, dtype=float)


def usable_items(responses: pd.DataFrame, items: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Items that can enter correlations: answered by somebody and not the same answer from everybody.

    Returns the usable rows of ``items`` and, for each left-out item, why.
    """
    why = {}
    for it in items["item"]:
        x = pd.to_numeric(responses[it], errors="coerce").dropna()
        if x.empty:
            why[it] = "nobody answered it"
        elif x.nunique() < 2:
            why[it] = "every respondent gave the same answer"
    return items[~items["item"].isin(list(why))].reset_index(drop=True), why


def reliability(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Alpha (with CI), omega and the weakest item-total correlation per construct with at least two items.

    The weakest item is chosen with :func:`cxresearch.stats.pick` (equal correlations — always the case
    with two items — go to the first item name in sorted order). Numbers that cannot be computed are
    left empty with the reason in ``note``.
    """
    rows = []
    for construct, g in items.groupby("construct", sort=True):
        cols = [c for c in g["item"] if c in responses]
        if len(cols) < 2:
            continue
        x = responses[cols].astype(float)
        a = cronbach_alpha(x)
        it = item_total(x)
        note = "" if is_number(a["estimate"]) else "too few complete answers"
        try:
            omega = mcdonald_omega(x, str(construct))
        except FitError as exc:
            omega, note = math.nan, f"omega not estimable: {exc}"
        weakest = pick(it, "min") if it.notna().any() else None
        rows.append({"construct": construct, "items": len(cols), "alpha": a["estimate"], "ci_low": a["ci_low"],
                     "ci_high": a["ci_high"], "omega": omega, "weakest item": weakest,
                     "weakest item-total r": float(it[weakest]) if weakest is not None else math.nan, "note": note})
    return pd.DataFrame(rows, columns=["construct", "items", "alpha", "ci_low", "ci_high", "omega", "weakest item",
                                       "weakest item-total r", "note"])


def varimax(a: np.ndarray, max_iter: int = 1000, tol: float = 1e-12) -> np.ndarray:
    """Varimax rotation (Kaiser's criterion, SVD algorithm); raises ``RuntimeError`` without convergence."""
    p, k = a.shape
    if k < 2:
        return a
    t = np.eye(k)
    d = 0.0
    for _ in range(max_iter):
        z = a @ t
        b = a.T @ (z**3 - z @ np.diag((z**2).sum(axis=0)) / p)
        u, s, vt = np.linalg.svd(b)
        t = u @ vt
        d_old, d = d, float(s.sum())
        if d_old and d < d_old * (1 + tol):
            return a @ t
    raise RuntimeError(f"varimax rotation did not settle in {max_iter} iterations")


@dataclass
class EFAResult:
    """Which factor each item loads on most, and whether that is its own construct's factor."""

    table: pd.DataFrame | None
    problem: str = ""
    method: str = ""  # "principal axis" or "principal components" (when principal axis did not converge)


def efa_check(responses: pd.DataFrame, items: pd.DataFrame) -> EFAResult:
    """Exploratory factor analysis (principal axis, varimax) with one factor per multi-item construct.

    Each construct gets its own factor (the assignment that maximises the total mean absolute loading of
    the constructs' items, ties broken at 9 significant digits); an item "fits" when its strongest
    loading is on its own construct's factor. A side analysis: when the factor model cannot be fitted
    the result carries the reason in ``problem`` instead of a table.
    """
    from scipy.optimize import linear_sum_assignment

    groups = items.groupby("construct", sort=True)["item"].apply(lambda s: [c for c in s if c in responses])
    groups = groups[groups.apply(len) >= 2]
    if len(groups) < 2:
        return EFAResult(None, "fewer than two constructs with at least two usable items")
    cols = [c for g in groups for c in g]
    x = responses[cols].astype(float).dropna()
    if len(x) <= len(cols):
        return EFAResult(None, f"{len(x)} complete answers for {len(cols)} items: too few")
    try:
        fa = fit_factors(x, len(groups), "factor analysis (EFA check)", components_fallback=True)
        rotated = fit_with_retries("varimax rotation (EFA check)",
                                   [("varimax, 1000 iterations", lambda: varimax(fa.loadings, 1000)),
                                    ("varimax, 100000 iterations", lambda: varimax(fa.loadings, 100000))],
                                   check=lambda a: None if np.all(np.isfinite(a)) else "loadings not finite")
    except FitError as exc:
        return EFAResult(None, str(exc))
    load = pd.DataFrame(np.abs(rotated), index=cols)
    names = list(groups.index)
    score = np.array([[load.loc[groups[k], f].mean() for f in load.columns] for k in names])
    rows_idx, cols_idx = linear_sum_assignment(-round_significant(score))
    factor_of = {names[i]: int(j) for i, j in zip(rows_idx, cols_idx, strict=True)}
    load = load[[factor_of[k] for k in names]].set_axis(names, axis=1)  # factor columns named by construct
    construct_of = {c: k for k, g in groups.items() for c in g}
    signed = pd.DataFrame(rotated, index=cols)[[factor_of[k] for k in names]].set_axis(names, axis=1)
    rows = []
    for c in cols:
        best = pick(load.loc[c], "max")
        own = construct_of[c]
        rows.append({"item": c, "construct": own, "loading on own factor": float(signed.at[c, own]),
                     "highest loading": float(load.loc[c].max()), "loads most on": best, "fits": best == own})
    return EFAResult(pd.DataFrame(rows), "", fa.method)


# ---------------------------------------------------------------------------------------------
# key drivers


def relative_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Johnson's (2000) relative weights of the columns of ``x`` for ``y``; they sum to R²."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    rxx = np.corrcoef(x, rowvar=False)
    rxy = np.array([np.corrcoef(x[:, j], y)[0, 1] for j in range(x.shape[1])])
    if not (np.all(np.isfinite(rxx)) and np.all(np.isfinite(rxy))):
        raise ValueError("a driver or the outcome has no spread in this sample")
    evals, evecs = np.linalg.eigh(rxx)
    lam = evecs @ np.diag(np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    beta = np.linalg.solve(lam, rxy)
    return (lam**2) @ (beta**2)


@dataclass
class Drivers:
    """Relative weights with bootstrap intervals; ``problem`` says why there are none."""

    table: pd.DataFrame | None
    boot: np.ndarray | None
    r2: float
    n: int
    predictors: list[str]
    problem: str = ""
    failed_replicates: int = 0


def drivers(df: pd.DataFrame, predictors: list[str], outcome: str, n_boot: int = 300,
            seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Relative weights with percentile bootstrap 95% intervals and each weight's share of R².

    Returns the table and the bootstrap draws (replicates × predictors). Replicates in which a driver has
    no spread are left out; a weight whose percentile interval does not contain it gets no interval
    (``note`` says why).
    """
    d = df[[*predictors, outcome]].astype(float).dropna()
    x, y = d[predictors].to_numpy(), d[outcome].to_numpy()
    point = relative_weights(x, y)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        i = rng.integers(0, len(d), len(d))
        try:
            draws.append(relative_weights(x[i], y[i]))
        except (ValueError, np.linalg.LinAlgError):
            draws.append(np.full(len(predictors), np.nan))
    boot = np.array(draws).reshape(n_boot, len(predictors))
    ok = np.all(np.isfinite(boot), axis=1)
    rows = []
    for j, p in enumerate(predictors):
        lo, hi, why = percentile_interval(boot[ok, j], point[j])
        rows.append({"driver": p, "weight": float(point[j]), "ci_low": lo, "ci_high": hi,
                     "share": float(point[j] / point.sum()), "note": why})
    return pd.DataFrame(rows), boot[ok]


def key_drivers(df: pd.DataFrame, predictors: list[str], outcome: str, n_boot: int = 300, seed: int = 0,
                min_n: int = 30) -> Drivers:
    """:func:`drivers` with the checks a report needs: enough complete answers, spread in the outcome,
    and most bootstrap replicates usable. Not estimable (``problem``) otherwise."""
    if not predictors:
        return Drivers(None, None, math.nan, 0, predictors, "no usable perception items to act as drivers")
    d = df[[*predictors, outcome]].astype(float).dropna()
    n = len(d)
    if n < max(min_n, len(predictors) + 3):
        return Drivers(None, None, math.nan, n, predictors,
                       f"only {n} respondents answered every driver and the outcome; at least "
                       f"{max(min_n, len(predictors) + 3)} are needed")
    if d[outcome].nunique() < 2:
        return Drivers(None, None, math.nan, n, predictors, "the outcome has the same value for every respondent")
    try:
        table, boot = drivers(d, predictors, outcome, n_boot, seed)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return Drivers(None, None, math.nan, n, predictors, f"relative weights cannot be computed ({exc})")
    failed = n_boot - len(boot)
    if failed > MAX_FAILED_SHARE * n_boot:
        table[["ci_low", "ci_high"]] = math.nan
        table["note"] = f"{failed} of {n_boot} bootstrap replicates unusable: no interval is shown"
        boot = None
    return Drivers(table, boot, float(table["weight"].sum()), n, predictors, "", failed)


def group_shares(boot: np.ndarray, predictors: list[str], groups: dict[str, list[str]],
                 point: np.ndarray | None = None) -> pd.DataFrame:
    """Share of R² per attribute group with percentile bootstrap intervals (draws of :func:`drivers`).

    The estimate is the share computed from the point weights (``point``; without it the bootstrap
    median); an interval that does not contain it is not shown.
    """
    share = boot / boot.sum(axis=1, keepdims=True)
    rows = []
    for g, members in groups.items():
        idx = [predictors.index(m) for m in members if m in predictors]
        s = share[:, idx].sum(axis=1)
        est = float(point[idx].sum() / point.sum()) if point is not None else float(np.median(s))
        lo, hi, why = percentile_interval(s, est)
        rows.append({"group": g, "share": est, "ci_low": lo, "ci_high": hi, "note": why, "draws": s})
    return pd.DataFrame(rows, columns=["group", "share", "ci_low", "ci_high", "note", "draws"])


def attribute_groups(items: pd.DataFrame, predictors: list[str]) -> dict[str, list[str]]:
    """Attribute group -> its driver items (from the dictionary's optional ``attribute_group`` column)."""
    if "attribute_group" not in items:
        return {}
    sub = items[items["item"].isin(predictors) & items["attribute_group"].notna()]
    return {str(g): list(s) for g, s in sub.groupby("attribute_group", sort=True)["item"] if str(g).strip()}


def negativity_ratio(df: pd.DataFrame, outcome: str, good: str, bad: str, controls: list[str]) -> dict[str, float]:
    """How many good experiences offset one bad one: -beta_bad / beta_good from OLS (delta-method CI).

    The ratio is only defined when the effect of a good experience is clearly above zero (its 95% interval
    excludes zero); otherwise the interval is NaN and ``note`` says why.
    """
    d = df[[outcome, good, bad, *controls]].astype(float).dropna()
    out = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "good_effect": math.nan,
           "bad_effect": math.nan, "n": int(len(d)), "note": ""}
    if len(d) < len(controls) + 5 or d[good].nunique() < 2 or d[bad].nunique() < 2 or d[outcome].nunique() < 2:
        out["note"] = "too few answers, or no spread in the outcome or the experience counts"
        return out
    fit = sm.OLS(d[outcome], sm.add_constant(d[[good, bad, *controls]], has_constant="add")).fit(cov_type="HC1")
    g, b = float(fit.params[good]), float(fit.params[bad])
    g_se = float(fit.bse[good])
    out.update({"good_effect": g, "bad_effect": b})
    if not (is_number(g_se) and g - Z * g_se > 0):
        out["note"] = ("the effect of a good experience is not clearly above zero, so the ratio is undefined "
                       f"(good: {g:.3g} ± {Z * g_se:.2g})")
        return out
    cov = fit.cov_params().loc[[good, bad], [good, bad]].to_numpy()
    grad = np.array([b / g**2, -1 / g])
    se = float(math.sqrt(max(grad @ cov @ grad, 0.0)))
    ratio = float(-b / g)
    out.update({"estimate": ratio, "ci_low": ratio - Z * se, "ci_high": ratio + Z * se})
    return out


def negativity_claim(ratio: dict[str, Any]) -> dict[str, Any]:
    """Claim pieces for "one bad experience needs about five good ones": supported when the interval
    contains 5 and excludes 1, not supported when it excludes 5, inconclusive otherwise."""
    lo, hi = ratio["ci_low"], ratio["ci_high"]
    if not (is_number(lo) and is_number(hi)):
        v = "not testable"
    elif lo <= 5 <= hi and lo > 1:
        v = "supported"
    elif hi < 5 or lo > 5:
        v = "not supported"
    else:
        v = "inconclusive"
    return {"test": "ratio of OLS effects of bad and good experience counts on the outcome, drivers held fixed; "
                    "delta-method 95% CI; supported when the interval contains 5 and excludes 1",
            "estimate": ratio["estimate"], "ci_low": lo, "ci_high": hi, "p_value": None, "verdict": v,
            "n": int(ratio["n"]), "note": ratio.get("note") or None, "unit": "ratio",
            "meaning": "How many good experiences it takes to offset one bad one (5× = five)"}


GROUP_CLAIM_UNITS = {
    "emotional_beats_tangible": {
        "unit": "pp", "meaning": "Emotional minus tangible attributes' share of what the drivers explain"},
    "tangible_share_5_to_10": {
        "unit": "share", "meaning": "The tangible attributes' share of what the drivers explain"}}


def group_claims(groups: pd.DataFrame | None, n: int, available: dict[str, list[str]] | None = None,
                 reason: str = "") -> dict[str, dict[str, Any]]:
    """Claim pieces for "emotional attributes drive more than tangible ones" (difference of shares) and
    "tangible attributes account for 5–10%" (``cx.verdict(within=(0.05, 0.10))``).

    Without a ``groups`` table (drivers not estimable) the claims whose attribute groups exist in
    ``available`` are returned as "not testable" with ``reason``.
    """
    out: dict[str, dict[str, Any]] = {}
    tests = {"emotional_beats_tangible": "difference in share of explained variance (relative weights), percentile "
                                         "bootstrap 95% CI",
             "tangible_share_5_to_10": "tangible share of explained variance, percentile bootstrap 95% CI; supported "
                                       "when inside 5–10%"}
    if groups is None:
        have = set(available or {})
        needs = {"emotional_beats_tangible": {"emotional", "tangible"}, "tangible_share_5_to_10": {"tangible"}}
        return {k: {"test": tests[k], "estimate": None, "ci_low": None, "ci_high": None, "p_value": None,
                    "verdict": "not testable", "n": n, "note": reason or "the key drivers could not be estimated",
                    **GROUP_CLAIM_UNITS[k]}
                for k, need in needs.items() if need <= have}
    g = groups.set_index("group")
    if {"emotional", "tangible"} <= set(g.index):
        diff = np.asarray(g.at["emotional", "draws"]) - np.asarray(g.at["tangible", "draws"])
        est = float(g.at["emotional", "share"] - g.at["tangible", "share"])
        lo, hi, why = percentile_interval(diff, est)
        out["emotional_beats_tangible"] = {
            "test": tests["emotional_beats_tangible"], "estimate": est, "ci_low": lo, "ci_high": hi, "p_value": None,
            "verdict": verdict(lo, hi), "n": n, "note": why or None, **GROUP_CLAIM_UNITS["emotional_beats_tangible"]}
    if "tangible" in g.index:
        lo, hi = g.at["tangible", "ci_low"], g.at["tangible", "ci_high"]
        out["tangible_share_5_to_10"] = {
            "test": tests["tangible_share_5_to_10"], "estimate": float(g.at["tangible", "share"]), "ci_low": lo,
            "ci_high": hi, "p_value": None, "verdict": verdict(lo, hi, within=(0.05, 0.10)), "n": n,
            "note": g.at["tangible", "note"] or None, **GROUP_CLAIM_UNITS["tangible_share_5_to_10"]}
    return out


def satisfied_vs_others(responses: pd.DataFrame, items: pd.DataFrame, satisfaction: str, nps_col: str,
                        min_n: int = 30) -> dict[str, Any]:
    """NPS of satisfied customers (top two answers on ``satisfaction``) minus the others', with claim pieces.

    ``testable`` is False (and the claim "not testable") when either group has fewer than ``min_n`` NPS
    answers; ``n`` is the smaller group.
    """
    sat = construct_score(responses, items, satisfaction)
    sat_max = float(items.loc[(items["construct"] == satisfaction) | (items["item"] == satisfaction), "scale_max"].max())
    answered = sat.notna().to_numpy()
    happy = (sat >= sat_max - 1).to_numpy() & answered
    a, b = nps(responses.loc[happy, nps_col]), nps(responses.loc[answered & ~happy, nps_col])
    n = int(min(a["n"], b["n"]))
    test = "NPS of satisfied customers minus NPS of the others, z-test"
    unit = {"unit": "points", "meaning": "NPS of satisfied customers minus NPS of the others"}
    if n < min_n:
        return {"testable": False, "n": n, "claim": {
            "test": test, "estimate": None, "ci_low": None, "ci_high": None, "p_value": None,
            "verdict": "not testable", "n": n,
            "note": f"fewer than {min_n} NPS answers among the satisfied customers or among the others", **unit}}
    change = nps_change(b, a)
    return {"testable": True, "satisfied": a["estimate"], "others": b["estimate"], **change, "n": n,
            "claim": {"test": test, "estimate": change["estimate"], "ci_low": change["ci_low"],
                      "ci_high": change["ci_high"], "p_value": change["p_value"],
                      "verdict": verdict(change["ci_low"], change["ci_high"]), "n": n, **unit}}


def ipa(top: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """Importance (share of R²) vs performance (mean as % of the scale) with the action quadrant.

    Borders are the means of importance and performance. Values are compared at 9 significant digits and
    a driver exactly on a border counts as important (or performing well). Rows are sorted by importance
    (descending), ties by driver name.
    """
    d = weights[["driver", "share"]].merge(top[["item", "mean", "scale_min", "scale_max"]], left_on="driver",
                                           right_on="item")
    d["performance"] = 100 * (d["mean"] - d["scale_min"]) / (d["scale_max"] - d["scale_min"])
    imp, perf = round_significant(d["share"]), round_significant(d["performance"])
    imp_cut, perf_cut = round_significant(np.mean(imp)), round_significant(np.mean(perf))
    d["quadrant"] = [QUADRANTS[(bool(s >= imp_cut), bool(p >= perf_cut))] for s, p in zip(imp, perf, strict=True)]
    out = d[["driver", "share", "performance", "quadrant"]].rename(columns={"share": "importance"})
    return stable_sort(out, "importance", ascending=False, tie="driver").reset_index(drop=True)


def expectation_gaps(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Perception minus expectation per touchpoint (paired t 95% interval); negative = below expectations."""
    rows = []
    perc = items[items["kind"] == "perception"].set_index("touchpoint")
    exp_ = items[items["kind"] == "expectation"].set_index("touchpoint")
    for tp in sorted(set(perc.index.dropna()) & set(exp_.index.dropna()) - {""}, key=str):
        p_item, e_item = perc.loc[tp, "item"], exp_.loc[tp, "item"]
        if isinstance(p_item, pd.Series) or isinstance(e_item, pd.Series):
            continue
        diff = (responses[p_item] - responses[e_item]).astype(float).dropna()
        if len(diff) < 2:
            continue
        sd = diff.std(ddof=1)
        half = stats.t.ppf(0.975, len(diff) - 1) * sd / math.sqrt(len(diff)) if sd > 0 else math.nan
        rows.append({"touchpoint": tp, "gap": float(diff.mean()), "ci_low": float(diff.mean() - half),
                     "ci_high": float(diff.mean() + half), "n": len(diff)})
    return pd.DataFrame(rows, columns=["touchpoint", "gap", "ci_low", "ci_high", "n"])


# ---------------------------------------------------------------------------------------------
# tables for readers: cx.table views with plain column names; item, construct and touchpoint names are shown by
# their labels (cx.table runs every text cell through cxresearch.display.plain); ci_low/ci_high become "95% CI"


def _without_empty_notes(df: pd.DataFrame) -> pd.DataFrame:
    if "note" in df and not df["note"].fillna("").astype(str).str.strip().any():
        return df.drop(columns="note")
    return df


def weighting_table(check: pd.DataFrame) -> Table:
    """Population share and weighted share of each level raked to (:attr:`Weighting.check`)."""
    return table(check.rename(columns={"variable": "weighted by", "target": "customer base",
                                       "weighted": "respondents after weighting"}),
                 percent=["customer base", "respondents after weighting"])


def nps_overall_table(overall: dict[str, dict[str, Any]]) -> Table:
    """Overall NPS (unweighted and weighted): NPS, 95% CI, respondents, interval method."""
    names = {"unweighted": "unweighted", "weighted": "weighted to the customer mix"}
    return table(pd.DataFrame([{"": names.get(k, k), "NPS": v["estimate"], "ci_low": v["ci_low"],
                                "ci_high": v["ci_high"], "respondents": v["n"], "interval method": v["method"]}
                               for k, v in overall.items()]))


def nps_group_table(groups: pd.DataFrame, by: str) -> Table:
    """NPS per group of :func:`nps_by` with the shares of promoters and detractors."""
    return table(groups[[by, "respondents", "estimate", "ci_low", "ci_high", "promoters", "detractors", "interval"]]
                 .rename(columns={"estimate": "NPS", "interval": "interval method"}),
                 percent=["promoters", "detractors"])


def nps_change_table(changes: pd.DataFrame) -> Table:
    """Wave-to-wave changes of :func:`nps_changes`."""
    return table(changes.rename(columns={"estimate": "change in NPS (points)"}))


def top_box_table(top: pd.DataFrame) -> Table:
    """Top-2-box share per item of :func:`top_box` with its 95% CI, the mean answer and the scale."""
    out = pd.DataFrame({"question": top["item"], "touchpoint": top["touchpoint"].fillna("").astype(str),
                        "top-2-box": top["top_box"], "ci_low": top["ci_low"], "ci_high": top["ci_high"],
                        "mean answer": top["mean"],
                        "scale": [f"{lo:g}–{hi:g}" for lo, hi in zip(top["scale_min"], top["scale_max"], strict=True)]})
    if not out["touchpoint"].str.strip().any():
        out = out.drop(columns="touchpoint")
    return table(out, percent=["top-2-box", "ci_low", "ci_high"])


BEHAVIOUR = {"prior_spend": ("average spend in the year before the invitation", "money"),
             "tenure_months": ("average time as a customer", "months"),
             "left_within_a_year": ("left within a year of the invitation", "share")}


def behaviour_table(behaviour: pd.DataFrame, currency: str = "") -> Table:
    """Respondents vs non-respondents (:func:`response_bias`), each number written with its unit."""
    rows = []
    for r in behaviour.to_dict("records"):
        name, unit = BEHAVIOUR.get(r["measure"], (r["measure"], ""))
        rows.append({"": name, **{k: fmt_value(v, unit, currency) for k, v in r.items() if k != "measure"}})
    return table(pd.DataFrame(rows))


def reliability_table(rel: pd.DataFrame) -> Table:
    """:func:`reliability` with plain headers (the 95% CI is alpha's)."""
    out = rel.rename(columns={"alpha": "Cronbach's alpha", "omega": "McDonald's omega",
                              "weakest item-total r": "weakest item's correlation with the others"})
    return table(_without_empty_notes(out), rename={"ci": "alpha 95% CI"})


def efa_table(efa: pd.DataFrame) -> Table:
    """The factor-analysis check of :func:`efa_check` with plain headers."""
    return table(efa.rename(columns={"item": "question", "fits": "fits its construct"}))


def groups_table(groups: pd.DataFrame) -> Table:
    """Attribute-group shares of :func:`group_shares`, as %."""
    out = pd.DataFrame({"attribute group": [LABELS.user.get(str(g)) or GROUP_LABELS.get(str(g), plain(str(g))) for g in groups["group"]],
                        "share of explained variance": groups["share"], "ci_low": groups["ci_low"],
                        "ci_high": groups["ci_high"], "note": groups["note"]})
    return table(_without_empty_notes(out), percent=["share of explained variance", "ci_low", "ci_high"])


def drivers_table(weights: pd.DataFrame) -> Table:
    """Relative weights, largest first, as %: the part of the outcome's variation each driver explains (with
    its 95% CI) and its share of what all drivers explain."""
    t = stable_sort(weights, "weight", ascending=False, tie="driver")
    out = pd.DataFrame({"driver": t["driver"], "explains (% of the variation)": t["weight"],
                        "ci_low": t["ci_low"], "ci_high": t["ci_high"],
                        "share of explained variance": t["share"], "note": t["note"]})
    return table(_without_empty_notes(out), percent=["explains (% of the variation)", "ci_low", "ci_high",
                                                     "share of explained variance"])


def ipa_table(matrix: pd.DataFrame) -> Table:
    """The importance–performance matrix of :func:`ipa`."""
    return table(matrix.rename(columns={"importance": "importance (share of explained variance)",
                                        "performance": "performance (% of the scale)", "quadrant": "action"}),
                 percent=["importance (share of explained variance)"])


def gaps_table(gaps: pd.DataFrame) -> Table:
    """Perception minus expectation per touchpoint (:func:`expectation_gaps`), in points of the answer scale."""
    return table(gaps.rename(columns={"gap": "perception minus expectation (scale points)", "n": "respondents"}))


def path_table(model: PathModel, path_model: list) -> Table:
    """Each arrow of the path model with its standardized coefficient."""
    return table(pd.DataFrame([{"from": a, "to": b, "standardized effect": float(model.paths.at[a, b])}
                               for a, b in path_model]))


def r2_table(model: PathModel) -> Table:
    """R² of each construct the path model explains."""
    return table(pd.DataFrame({"construct": model.r2.index, "R²": model.r2.to_numpy()}))


def truth_table(weights: pd.DataFrame, planted: dict[str, float]) -> Table:
    """Estimated driver weights next to the synthetic world's planted ones (large sample, all customers), as %."""
    out = pd.DataFrame({"driver": weights["driver"], "estimated weight": weights["weight"],
                        "ci_low": weights["ci_low"], "ci_high": weights["ci_high"],
                        "planted weight": weights["driver"].map(planted)})
    out["planted inside the 95% CI"] = ((out["ci_low"] <= out["planted weight"])
                                        & (out["planted weight"] <= out["ci_high"]))
    return table(out, percent=["estimated weight", "ci_low", "ci_high", "planted weight"])


# ---------------------------------------------------------------------------------------------
# plots


def _light(colour: Any, amount: float = 0.35) -> tuple[float, float, float]:
    """``colour`` mixed with white (opaque, so grid lines do not show through a bar)."""
    return tuple(1 - amount * (1 - c) for c in mcolors.to_rgb(colour))


def _nps_colours() -> list:
    """Detractors, passives, promoters: the ends of the diverging palette and a neutral grey."""
    div = sns.color_palette(plots.DIVERGING, 7)
    return [div[1], _light(plots.MUTED), div[5]]


def _minus(x: float) -> str:
    return f"{x:+.0f}".replace("-", "−")


def plot_nps(table: pd.DataFrame, label: str, ax: plt.Axes | None = None,
             title: str = "Net Promoter Score: detractors, passives and promoters") -> plt.Axes:
    """Detractors, passives and promoters per row (stacked to 100%) with the NPS and its 95% CI beside."""
    t = table.dropna(subset=["estimate"])
    ax = ax or plt.subplots(figsize=(9, 0.55 * len(t) + 1.9), layout="constrained")[1]
    y = np.arange(len(t))[::-1]
    det, pro = t["detractors"].to_numpy(float) * 100, t["promoters"].to_numpy(float) * 100
    parts = [("detractors (0–6)", det), ("passives (7–8)", 100 - det - pro), ("promoters (9–10)", pro)]
    left = np.zeros(len(t))
    for (name, width), colour in zip(parts, _nps_colours(), strict=True):
        ax.barh(y, width, left=left, color=colour, label=name, edgecolor=plots.PAPER, linewidth=0.6)
        for yi, lft, w in zip(y, left, width, strict=True):
            if w >= 8:
                ax.text(lft + w / 2, yi, f"{w:.0f}%", ha="center", va="center", fontsize=8.5)
        left = left + width
    for yi, e, lo, hi in zip(y, t["estimate"], t["ci_low"], t["ci_high"], strict=True):
        ax.text(1.02, yi, f"NPS {_minus(e)}  (95% CI {_minus(lo)} to {_minus(hi)})", va="center", fontsize=9,
                transform=ax.get_yaxis_transform(), clip_on=False)
    ax.set_yticks(y, plots.labels(t[label].astype(str), 28))
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of respondents")
    ax.grid(axis="y", visible=False)
    ax.legend(ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.35 / max(len(t), 1) - 0.1))
    ax.set_title(title, loc="left")
    return ax


def likert_shares(responses: pd.DataFrame, items: pd.DataFrame, weights: np.ndarray | None = None,
                  max_categories: int = 11) -> pd.DataFrame:
    """Share of (weighted) respondents giving each answer, per item: item, scale, answer, share.

    Answers are rounded to whole categories of the item's scale; items nobody answered, or with more than
    ``max_categories`` categories (not a Likert item), are left out.
    """
    w_all = np.ones(len(responses)) if weights is None else np.asarray(weights, float)
    rows = []
    for it in items.itertuples(index=False):
        lo, hi = int(it.scale_min), int(it.scale_max)
        x = responses[it.item].to_numpy(float)
        ok = ~np.isnan(x)
        if not ok.any() or hi - lo + 1 > max_categories or w_all[ok].sum() <= 0:
            continue
        x, w = np.clip(np.rint(x[ok]), lo, hi), w_all[ok]
        for level in range(lo, hi + 1):
            rows.append({"item": it.item, "scale": f"{lo}–{hi}", "scale_min": lo, "scale_max": hi, "answer": level,
                         "share": float(w[x == level].sum() / w.sum())})
    return pd.DataFrame(rows, columns=["item", "scale", "scale_min", "scale_max", "answer", "share"])


def _likert_colours(k: int) -> list:
    colours = list(sns.color_palette(plots.DIVERGING, k))
    if k % 2:  # the middle answer: neutral grey (the palette's own middle is almost white)
        colours[k // 2] = _light(plots.MUTED)
    return colours


def plot_likert(shares: pd.DataFrame, axes: Any = None, title: str = "How customers rate each question") -> list:
    """Diverging stacked bars from :func:`likert_shares`: answers below the middle of the scale left of zero,
    above it right, the middle answer split. One panel per answer scale (1–5 and 1–7 are never mixed), each
    with its legend; all panels share the % axis. Returns the axes."""
    scales = list(dict.fromkeys(shares["scale"]))
    counts = [shares.loc[shares["scale"] == sc, "item"].nunique() for sc in scales]
    if axes is None:
        fig, axes = plt.subplots(len(scales), 1, figsize=(11, sum(0.42 * n + 1.3 for n in counts) + 0.6),
                                 height_ratios=[n + 2 for n in counts], layout="constrained", squeeze=False)
        axes = list(axes[:, 0])
        fig.suptitle(title, fontweight="bold", fontsize=12, x=0.02, ha="left")
        fig.get_layout_engine().set(h_pad=0.12)
    extent = [0.0, 0.0]
    for ax, sc in zip(axes, scales, strict=True):
        sub = shares[shares["scale"] == sc]
        lo, hi = int(sub["scale_min"].iloc[0]), int(sub["scale_max"].iloc[0])
        levels = list(range(lo, hi + 1))
        wide = sub.pivot_table(index="item", columns="answer", values="share", sort=False).reindex(columns=levels)
        wide = wide.fillna(0.0) * 100
        mid = (lo + hi) / 2
        below = wide[[lv for lv in levels if lv < mid]].sum(axis=1) + (wide[mid] / 2 if mid in levels else 0)
        left = -below.to_numpy()
        extent = [min(extent[0], left.min()), max(extent[1], (left + wide.sum(axis=1).to_numpy()).max())]
        y = np.arange(len(wide))[::-1]
        colours = _likert_colours(len(levels))
        for i, lv in enumerate(levels):
            name = f"{lv} (lowest)" if i == 0 else f"{lv} (highest)" if i == len(levels) - 1 else str(lv)
            ax.barh(y, wide[lv].to_numpy(), left=left, color=colours[i], edgecolor=plots.PAPER, linewidth=0.5, label=name)
            left = left + wide[lv].to_numpy()
        ax.axvline(0, color=plots.MUTED, lw=1)
        ax.set_yticks(y, plots.labels(wide.index, 48))
        ax.grid(axis="y", visible=False)
        ax.set_title(f"Questions answered on a {lo}–{hi} scale", loc="left", fontsize=10.5)
        ax.legend(title="answer", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, title_fontsize=9)
    pad = 5
    for ax in axes:
        ax.set_xlim(extent[0] - pad, extent[1] + pad)
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{abs(v):.0f}%"))
    axes[-1].set_xlabel("% of respondents: lower answers left of the line, higher answers right "
                        "(the middle answer is split)")
    return axes


def plot_drivers(table: pd.DataFrame, outcome: str | None = None, groups: dict[str, list[str]] | None = None,
                 ax: plt.Axes | None = None) -> plt.Axes:
    """Relative weights as % of the outcome's variation, with bootstrap 95% intervals (largest on top);
    bars coloured by attribute group when ``groups`` are given."""
    t = stable_sort(table, "weight", ascending=False, tie="driver").reset_index(drop=True)
    ax = ax or plt.subplots(figsize=(9, 0.42 * len(t) + 1.9), layout="constrained")[1]
    group_of = {d: LABELS.user.get(g) or GROUP_LABELS.get(g, plots.label(g)) for g, ds in (groups or {}).items() for d in ds}
    d = pd.DataFrame({"driver": plots.labels(t["driver"], 42), "pct": t["weight"] * 100,
                      "group": [group_of.get(x, "other") for x in t["driver"]]})
    if groups:
        order = list(dict.fromkeys(d["group"]))
        sns.barplot(data=d, y="driver", x="pct", hue="group", hue_order=order, dodge=False, orient="h", ax=ax,
                    palette=dict(zip(order, plots.PALETTE, strict=False)), saturation=1)
        ax.legend(title="attribute group", loc="lower right")
    else:
        sns.barplot(data=d, y="driver", x="pct", color=plots.MAIN, orient="h", ax=ax, saturation=1)
    has = t["ci_low"].notna().to_numpy()
    y = np.arange(len(t))
    est, lo, hi = t["weight"].to_numpy() * 100, t["ci_low"].to_numpy() * 100, t["ci_high"].to_numpy() * 100
    ax.errorbar(est[has], y[has], xerr=[(est - lo)[has], (hi - est)[has]], fmt="none", ecolor=plots.MUTED,
                capsize=3, lw=1.2)
    total = float(t["weight"].sum()) * 100
    ax.set_xlabel(f"% of the variation in the answers each driver explains (95% CI); all drivers together: "
                  f"{total:.0f}%")
    ax.set_ylabel("")
    ax.grid(axis="y", visible=False)
    what = plots.label(outcome) if outcome else "the outcome"
    ax.set_title(plots.label(f"What drives the answers to “{what}”" if outcome else "What drives the outcome", 55),
                 loc="left")
    return ax


def plot_ipa(matrix: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Importance–performance matrix: each driver by importance (share of explained variance, from 0) and
    performance (mean answer as % of its scale), the borders at their averages, the four action quadrants
    named in the corners. Labels are pushed apart (adjustText) and kept inside the axes."""
    from adjustText import adjust_text

    ax = ax or plt.subplots(figsize=(10, 7.5), layout="constrained")[1]
    x, y = matrix["performance"].to_numpy(float), matrix["importance"].to_numpy(float) * 100
    first = (matrix["quadrant"] == "improve first").to_numpy()
    ax.scatter(x[~first], y[~first], color=plots.MAIN, s=45, zorder=3)
    ax.scatter(x[first], y[first], color=plots.ACCENT, s=60, zorder=3)
    lo, hi = max(0.0, 5 * math.floor((x.min() - 4) / 5)), min(100.0, 5 * math.ceil((x.max() + 4) / 5))
    full = hi - lo >= 60
    if full:
        lo, hi = 0.0, 100.0
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, max(y.max() * 1.25, 1.0))
    ax.axvline(x.mean(), color=plots.MUTED, ls="--", lw=1)
    ax.axhline(y.mean(), color=plots.MUTED, ls="--", lw=1)
    ax.fill_between([lo, x.mean()], y.mean(), ax.get_ylim()[1], color=_light(plots.ACCENT, 0.08), zorder=0)
    corners = []
    for text, cx_, cy, ha, va in (("IMPROVE FIRST", 0.01, 0.99, "left", "top"), ("MAINTAIN", 0.99, 0.99, "right", "top"),
                                  ("MONITOR", 0.01, 0.01, "left", "bottom"),
                                  ("POSSIBLE OVERKILL", 0.99, 0.01, "right", "bottom")):
        colour = plots.ACCENT if text == "IMPROVE FIRST" else plots.MUTED
        corners.append(ax.text(cx_, cy, text, transform=ax.transAxes, ha=ha, va=va, fontsize=9.5, color=colour,
                               weight="bold", zorder=4))
    texts = [ax.text(xi, yi, plots.label(d, 24), fontsize=8.5, zorder=5,
                     color=plots.ACCENT if f else plots.INK)
             for xi, yi, d, f in zip(x, y, matrix["driver"], first, strict=True)]
    ax.figure.canvas.draw()
    adjust_text(texts, x=x, y=y, objects=corners, ax=ax, expand=(1.15, 1.35), force_text=(0.3, 0.5),
                force_static=(0.3, 0.5), arrowprops={"arrowstyle": "-", "color": plots.MUTED, "lw": 0.6},
                ensure_inside_axes=True)
    scale = "" if full else f"; axis shows {lo:.0f}–{hi:.0f} of 0–100"
    ax.set_xlabel(f"Performance: mean answer as % of its scale (0 = everyone lowest, 100 = everyone highest{scale})")
    ax.set_ylabel("Importance: share of explained variance (%)")
    ax.set_title("Importance–performance: where to act (dashed lines: averages)", loc="left")
    return ax


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass
class SurveyInputs:
    """Responses (reverse-coded items flipped), item dictionary and optional linked tables."""

    responses: pd.DataFrame
    items: pd.DataFrame
    margins: dict[str, pd.Series] | None
    customers: pd.DataFrame | None
    invitations: pd.DataFrame | None
    transactions: pd.DataFrame | None
    synthetic: bool
    truth: dict[str, Any] | None
    source: str
    usable: pd.DataFrame | None = None  # items that can enter correlations (see usable_items)
    left_out: dict[str, str] = field(default_factory=dict)  # item -> why it cannot
    margins_source: str = "'margins'"


def load_inputs(responses_path: str | None, items_path: str | None = None, margins_path: str | None = None,
                customers_path: str | None = None, *, nps_col: str | None = "nps", weight_col: str | None = None,
                good_col: str | None = None, bad_col: str | None = None, outcome: str | None = None,
                satisfaction: str | None = None, min_n: int = 1, seed: int = 20240101, n_customers: int = 5000,
                effects: dict[str, Any] | None = None) -> SurveyInputs:
    """Read responses and the item dictionary (and margins, customers) or, with no paths, the synthetic world.

    Responses without ``respondent_id`` get row numbers, without ``wave`` a single wave 1. Every dictionary
    item must be a column with answers inside its scale; reverse-coded items are flipped. Columns named by
    parameters (``nps_col``, ``good_col``, ``bad_col``, ``outcome``, ``satisfaction``) must exist. Rows
    without any answer are excluded and counted; fewer than ``min_n`` respondents with answers refuses
    the run (:class:`NotEstimable`).
    """
    from cxresearch import contracts
    from cxresearch.io import LEDGER, Column, Contract, read_table, require_items
    from cxresearch.synth import resolve_inputs

    names = {"survey_responses": responses_path, "survey_items": items_path, "survey_margins": margins_path,
             "customers": customers_path}
    if responses_path is None and items_path is None:
        names.update({"survey_invitations": None, "transactions": None})
    paths, synthetic, truth = resolve_inputs(names, seed, n_customers, effects)
    if "survey_responses" not in paths or "survey_items" not in paths:
        raise InputError("'survey'", ["give both responses_path and items_path (the item dictionary). Fix: set them."])
    items = read_table(paths["survey_items"], contracts.SURVEY_ITEMS)
    items_source = f"'survey_items' ({paths['survey_items']})"
    if items.empty:
        raise InputError(items_source, ["the item dictionary has no rows. Fix: list every item with its construct."])
    bad_scale = items[~(items["scale_min"] < items["scale_max"])]
    if len(bad_scale):
        raise InputError(items_source, [
            f"columns 'scale_min'/'scale_max': {len(bad_scale)} item(s) whose scale_min is not below scale_max: "
            + "; ".join(f"row {i + 2}: {r['item']!r}" for i, r in bad_scale.head(5).iterrows())
            + ". Fix: give the lowest and highest possible answer, e.g. 1 and 5."])
    cols = [Column("respondent_id", "string", required=False, role="id"),
            Column("customer_id", "string", required=False, role="id"),
            Column("wave", "int", required=False, min=1)]
    if weight_col:
        cols.append(Column(weight_col, "float", min=0))
    if nps_col:
        cols.append(Column(nps_col, "int", nullable=True, min=0, max=10,
                           description="0-10 likelihood to recommend; -p nps_col null when there is none"))
    for c in (good_col, bad_col):
        if c:
            cols.append(Column(c, "float", nullable=True, min=0))
    responses = read_table(paths["survey_responses"], Contract("survey_responses", tuple(cols)))
    source = f"'survey_responses' ({paths['survey_responses']})"
    if "respondent_id" not in responses:
        responses.insert(0, "respondent_id", [f"row {i + 2}" for i in range(len(responses))])
    if "wave" not in responses:
        responses["wave"] = 1
    require_items(responses, items, source)
    for it in items["item"]:
        responses[it] = pd.to_numeric(responses[it], errors="coerce")
    responses = reverse_coded(responses, items)
    answer_cols = list(items["item"]) + ([nps_col] if nps_col and nps_col not in set(items["item"]) else [])
    blank = responses[answer_cols].isna().all(axis=1).to_numpy()
    LEDGER.exclude("survey_responses", str(paths["survey_responses"]), "responses without any answer", int(blank.sum()),
                   len(responses), (np.flatnonzero(blank) + 2).tolist())
    responses = responses.loc[~blank].reset_index(drop=True)
    if len(responses) < max(min_n, 1):
        raise NotEstimable(f"Input {source}: {len(responses)} respondent(s) with any answer; every figure needs at "
                           f"least {max(min_n, 1)} (min_n). Fix: collect more responses (or lower min_n).")
    kinds = set(items["item"]) | set(items["construct"]) | set(responses.columns)
    for name, value in (("outcome", outcome), ("satisfaction", satisfaction)):
        if value is not None and value not in kinds:
            raise ParameterError(
                f"{name} '{value}' is neither an item nor a construct of the item dictionary. Constructs: "
                f"{', '.join(sorted(map(str, set(items['construct']))))}. Example: -p {name} "
                f"{sorted(map(str, set(items['construct'])))[0]}")
    margins, margins_source = None, "'margins'"
    if "survey_margins" in paths:
        margins_source = f"'margins' ({paths['survey_margins']})"
        m = read_table(paths["survey_margins"], Contract("margins", (Column("share", "float", min=0),)))
        variables = [v for v in m.columns if v != "share"]
        if not variables:
            raise InputError(margins_source, ["no variable columns next to 'share'. Fix: add e.g. segment, region."])
        if not m["share"].sum() > 0:
            raise InputError(margins_source, ["column 'share': every share is 0. Fix: give the population shares."])
        margins = {v: m.groupby(v)["share"].sum() for v in variables}
    customers = read_table(paths["customers"], contracts.CUSTOMERS) if "customers" in paths else None
    invitations = read_table(paths["survey_invitations"], contracts.SURVEY_INVITATIONS) \
        if "survey_invitations" in paths else None
    transactions = read_table(paths["transactions"], contracts.TRANSACTIONS) if "transactions" in paths else None
    if customers is not None and "customer_id" in responses:
        attrs = [c for c in ("segment", "region", "channel", "plan") if c in customers and c not in responses]
        responses = responses.merge(customers[["customer_id", *attrs]], on="customer_id", how="left")
    what = f"the built-in synthetic world ({n_customers:,} customers, seed {seed})" if synthetic \
        else "the files given as parameters"
    usable, left_out = usable_items(responses, items)
    return SurveyInputs(responses, items, margins, customers, invitations, transactions, synthetic, truth, what,
                        usable, left_out, margins_source)


def construct_score(responses: pd.DataFrame, items: pd.DataFrame, name: str) -> pd.Series:
    """An item's answers, or the mean of a construct's items (reverse-coded items already flipped)."""
    if name in responses:
        return responses[name].astype(float)
    cols = list(items.loc[items["construct"] == name, "item"])
    if not cols:
        raise ParameterError(f"{name!r} is neither an item column nor a construct of the item dictionary.")
    return responses[cols].astype(float).mean(axis=1)


def driver_items(items: pd.DataFrame, usable: pd.DataFrame, outcome: str) -> list[str]:
    """Perception items that can act as drivers of ``outcome`` (usable, not the outcome or its construct)."""
    own = set(items.loc[items["construct"] == outcome, "item"]) | {outcome}
    return [i for i in usable.loc[usable["kind"] == "perception", "item"] if i not in own]


def nps_problem(responses: pd.DataFrame, nps_col: str | None, min_n: int) -> str:
    """Why there is no NPS section ("" when there is one)."""
    if not nps_col:
        return "No NPS column was given"
    n = int(responses[nps_col].notna().sum())
    if n < min_n:
        return f"Only {n} respondents answered the NPS question; at least {min_n} (min_n) are needed"
    return ""


def response_bias(invitations: pd.DataFrame, customers: pd.DataFrame, transactions: pd.DataFrame,
                  responses: pd.DataFrame, nps_col: str, n_boot: int = 300, seed: int = 0,
                  min_n: int = 30) -> dict[str, Any] | None:
    """Respondents vs non-respondents on behaviour, and how much the raw NPS overstates.

    A response model (logistic: prior-year spend, tenure, segment; fitted with checked convergence and
    retries) weights respondents by 1/P(respond). The raw NPS minus that weighted NPS is the part of the
    positivity bias that behaviour explains; bias from satisfaction itself (happier customers answer
    more) is not visible in behaviour, so this is a lower bound. Interval: percentile bootstrap over
    respondents, checked to contain the estimate. None when respondents or non-respondents number fewer
    than ``min_n``.
    """
    from cxresearch.overview import spend_before
    from cxresearch.payoff import fit_logit

    inv = invitations.dropna(subset=["invited_at"]).reset_index(drop=True)
    inv = inv.merge(customers[["customer_id", "signup_date", "churn_date", *[c for c in ("segment",) if c in customers]]],
                    on="customer_id", how="left")
    counts = inv["responded"].value_counts()
    if min(int(counts.get(0, 0)), int(counts.get(1, 0))) < min_n:
        return None
    inv["prior_spend"] = spend_before(inv, transactions).to_numpy()
    inv["tenure_months"] = (inv["invited_at"] - inv["signup_date"]).dt.days / 30.44
    inv["left_within_a_year"] = (inv["churn_date"].notna() & (inv["churn_date"] <= inv["invited_at"] + pd.Timedelta(days=365))).astype(float)
    behaviour = inv.groupby("responded")[["prior_spend", "tenure_months", "left_within_a_year"]].mean().T
    behaviour.columns = ["non-respondents" if c == 0 else "respondents" for c in behaviour.columns]
    seg = fold_groups(inv["segment"], min_n)[0] if "segment" in inv else None
    x = pd.concat([np.log1p(inv[["prior_spend"]].clip(lower=0)), inv[["tenure_months"]].fillna(0.0),
                   pd.get_dummies(seg, drop_first=True, dtype=float) if seg is not None else None], axis=1)
    fit = fit_logit(x, inv["responded"].astype(bool).to_numpy(), model="response model")
    inv["p_respond"] = fit.probability
    key = ["customer_id", "wave"]
    r = responses.merge(inv[[*key, "p_respond"]], on=key, how="inner").dropna(subset=[nps_col])
    if len(r) < min_n:
        return None
    raw = nps(r[nps_col]).get("estimate")
    weighted = nps(r[nps_col], 1 / r["p_respond"].to_numpy()).get("estimate")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        i = rng.integers(0, len(r), len(r))
        s, w = r[nps_col].to_numpy()[i], 1 / r["p_respond"].to_numpy()[i]
        draws.append(nps(s)["estimate"] - nps(s, w)["estimate"])
    lo, hi, why = percentile_interval(np.array(draws), raw - weighted)
    return {"behaviour": behaviour.reset_index(names="measure"), "raw_nps": raw, "weighted_nps": weighted,
            "estimate": raw - weighted, "ci_low": lo, "ci_high": hi, "note": why,
            "response_rate": float(inv["responded"].mean()), "n_invited": len(inv)}


# ---------------------------------------------------------------------------------------------
# PLS path model


@dataclass
class PathModel:
    """A fitted PLS path model: path coefficients (row = from, column = to), outer weights and loadings."""

    paths: pd.DataFrame
    outer: pd.DataFrame  # item, construct, weight, loading
    r2: pd.Series
    iterations: int
    scores: pd.DataFrame
    converged: bool = True


def pls_path_model(data: pd.DataFrame, blocks: dict[str, list[str]], paths: list[tuple[str, str]],
                   modes: dict[str, str] | None = None, max_iter: int = 300, tol: float = 1e-7,
                   start: str = "ones") -> PathModel:
    """Partial least squares path model (Lohmöller's algorithm, path weighting scheme, standardized data).

    ``blocks`` maps each construct to its indicator columns, ``paths`` lists (from, to) arrows and
    ``modes`` gives "A" (reflective, the default) or "B" (formative) per construct. Conventions follow R
    seminr: indicators standardized with the sample SD, construct scores scaled to unit variance, stop when
    no outer weight changes by more than ``tol``. Reproduces seminr's ECSI reference to about 1e-8.
    ``start="pc"`` starts from each block's first principal component instead of equal weights.
    ``converged`` is False when ``max_iter`` was reached first.
    """
    modes = {k: (modes or {}).get(k, "A") for k in blocks}
    lvs = list(blocks)
    d = data[[c for cols in blocks.values() for c in cols]].astype(float).dropna()
    x = {k: ((d[c] - d[c].mean()) / d[c].std(ddof=1)).to_numpy() for k, c in blocks.items()}
    preds = {k: [a for a, b in paths if b == k] for k in lvs}
    succs = {k: [b for a, b in paths if a == k] for k in lvs}

    def lv_scores(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for k in lvs:
            y = x[k] @ w[k]
            out[k] = y / y.std(ddof=1)
        return out

    if start == "pc":
        w = {}
        for k in lvs:
            vals, vecs = np.linalg.eigh(np.atleast_2d(np.corrcoef(x[k], rowvar=False)))
            v = vecs[:, -1]
            w[k] = v * (1 if v.sum() >= 0 else -1)
    else:
        w = {k: np.ones(len(c)) for k, c in blocks.items()}
    iterations, change = 0, math.inf
    while iterations < max_iter and change >= tol:
        iterations += 1
        y = lv_scores(w)
        new = {}
        for k in lvs:
            z = np.zeros(len(d))
            if preds[k]:
                p = np.column_stack([y[q] for q in preds[k]])
                z += p @ np.linalg.lstsq(p, y[k], rcond=None)[0]
            for s in succs[k]:
                z += np.corrcoef(y[k], y[s])[0, 1] * y[s]
            wk = x[k].T @ z / (len(d) - 1) if modes[k] == "A" else np.linalg.lstsq(x[k], z, rcond=None)[0]
            new[k] = wk / (x[k] @ wk).std(ddof=1)
        change = max(float(np.max(np.abs(new[k] - w[k]))) for k in lvs)
        w = new
    y = lv_scores(w)
    coef = pd.DataFrame(0.0, index=lvs, columns=lvs)
    r2 = {}
    for k in lvs:
        if preds[k]:
            p = np.column_stack([y[q] for q in preds[k]])
            b = np.linalg.lstsq(p, y[k], rcond=None)[0]
            coef.loc[preds[k], k] = b
            r2[k] = float(1 - np.var(y[k] - p @ b) / np.var(y[k]))
    outer = pd.DataFrame([{"item": c, "construct": k, "weight": float(w[k][j]),
                           "loading": float(np.corrcoef(x[k][:, j], y[k])[0, 1])}
                          for k in lvs for j, c in enumerate(blocks[k])])
    return PathModel(coef, outer, pd.Series(r2, dtype=float), iterations, pd.DataFrame(y, index=d.index),
                     bool(change < tol))


def _pls_check(m: PathModel) -> str | None:
    if not m.converged:
        return f"outer weights still changing after {m.iterations} iterations"
    if not (np.all(np.isfinite(m.paths.to_numpy())) and np.all(np.isfinite(m.outer[["weight", "loading"]].to_numpy()))):
        return "some estimates are not finite"
    return None


def fit_path_model(data: pd.DataFrame, blocks: dict[str, list[str]], paths: list[tuple[str, str]],
                   modes: dict[str, str] | None = None, max_iter: int = 300, tol: float = 1e-10) -> PathModel:
    """:func:`pls_path_model` with checked convergence: ``max_iter`` iterations, then 100 times as many,
    then principal-component start values. Raises :class:`FitError` when none converges."""
    def attempt(n: int, start: str):
        return lambda: pls_path_model(data, blocks, paths, modes, n, tol, start)

    return fit_with_retries("PLS path model", [
        (f"path weighting, {max_iter} iterations", attempt(max_iter, "ones")),
        (f"path weighting, {100 * max_iter} iterations", attempt(100 * max_iter, "ones")),
        (f"path weighting, principal-component start, {100 * max_iter} iterations", attempt(100 * max_iter, "pc"))],
        check=_pls_check, fix="check that each construct's items measure one thing (reflective blocks) and "
                              "that no item repeats another one.")


@dataclass
class PathResult:
    """A path model, or why there is none."""

    model: PathModel | None
    problem: str = ""
    n: int = 0


def path_model_for(responses: pd.DataFrame, items: pd.DataFrame, usable: pd.DataFrame, path_model: list,
                   formative: list[str], min_n: int = 30) -> PathResult:
    """Fit the requested path model on the usable items; a side analysis, so problems are reported
    (``problem``) rather than raised."""
    if not path_model:
        return PathResult(None, "No path model was requested.")
    constructs = set(items["construct"])
    missing = sorted({c for pair in path_model for c in pair if c not in constructs}, key=str)
    if missing:
        return PathResult(None, f"The path model names constructs that are not in the item dictionary: "
                                f"{', '.join(map(str, missing))}. It is not estimated.")
    used = sorted({c for pair in path_model for c in pair}, key=str)
    blocks = {k: list(usable.loc[usable["construct"] == k, "item"]) for k in used}
    empty = [k for k, v in blocks.items() if not v]
    if empty:
        return PathResult(None, f"Constructs without usable items: {', '.join(map(str, empty))}. The path model is "
                                "not estimable.")
    n = int(len(responses[[c for v in blocks.values() for c in v]].dropna()))
    if n < max(min_n, 10):
        return PathResult(None, f"Only {n} respondents answered every item of the path model: not estimable.", n)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model = fit_path_model(responses, blocks, [tuple(p) for p in path_model], {k: "B" for k in formative})
    except FitError as exc:
        return PathResult(None, f"The path model is not estimable: {exc}", n)
    return PathResult(model, "", n)
