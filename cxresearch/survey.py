"""Voice of the customer, quantitative: NPS, Likert items, weighting, measurement quality, key drivers.

Interval methods:

* NPS: per-respondent score +1/0/-1, variance p_P + p_D - NPS² (multinomial); Wald interval, or the
  adjusted Wald interval of Rocks (2016) — add 3/4 to each of the three counts and 3 to n — for small
  samples (n < 100 by default). Weighted figures use weighted shares and Kish's effective sample size.
* top-2-box: Wilson interval on the (effective) sample size;
* Cronbach's alpha: Feldt (1965) F-based interval; McDonald's omega from a one-factor principal-axis
  factor model (statsmodels; deterministic, unlike its ML fit), needs at least three items;
* Johnson's (2000) relative weights: percentile bootstrap over respondents; they sum to R² exactly;
* negativity ratio (effect of a bad experience / effect of a good one): delta method on OLS estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

Z = 1.959964
QUADRANTS = {(True, False): "improve first", (True, True): "maintain", (False, False): "monitor",
             (False, True): "possible overkill"}  # (important, performing well)


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
    n_eff = w.sum() ** 2 / np.sum(w**2) if len(w) else 0.0
    if n_eff == 0:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0, "variance": math.nan}
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
    return {"estimate": 100 * est, "ci_low": 100 * max(-1.0, centre - half), "ci_high": 100 * min(1.0, centre + half),
            "n": int(ok.sum()), "n_effective": float(n_eff), "variance": float(p_pro + p_det - est**2),
            "promoters": float(p_pro), "detractors": float(p_det), "method": "adjusted Wald" if use_adjusted else "Wald"}


def nps_by(responses: pd.DataFrame, nps_col: str, by: str, weights: np.ndarray | None = None,
           min_n: int = 30) -> pd.DataFrame:
    """NPS per group; groups under ``min_n`` respondents are suppressed (too uncertain to show)."""
    rows = []
    w = np.ones(len(responses)) if weights is None else np.asarray(weights, float)
    for level, idx in responses.groupby(by, sort=True).indices.items():
        r = nps(responses[nps_col].to_numpy()[idx], w[idx])
        small = r["n"] < min_n
        rows.append({by: level, "respondents": r["n"] if not small else f"<{min_n}",
                     **{k: (None if small else r[k]) for k in ("estimate", "ci_low", "ci_high", "promoters",
                                                                "detractors")},
                     "interval": None if small else r["method"]})
    return pd.DataFrame(rows)


def nps_change(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Change b - a in NPS points with a z-test (independent samples)."""
    se = 100 * math.sqrt(a["variance"] / a["n_effective"] + b["variance"] / b["n_effective"])
    diff = b["estimate"] - a["estimate"]
    return {"estimate": diff, "ci_low": diff - Z * se, "ci_high": diff + Z * se,
            "p_value": float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else math.nan}


# ---------------------------------------------------------------------------------------------
# Likert items


def reverse_coded(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Item columns with reverse-coded items flipped (scale_min + scale_max - x)."""
    out = responses.copy()
    for row in items.itertuples(index=False):
        if bool(getattr(row, "reverse", False)) and row.item in out:
            out[row.item] = row.scale_min + row.scale_max - out[row.item]
    return out


def top_box(responses: pd.DataFrame, items: pd.DataFrame, weights: np.ndarray | None = None,
            boxes: int = 2) -> pd.DataFrame:
    """Share answering in the top ``boxes`` categories per item, with a Wilson 95% interval."""
    rows = []
    for it in items.itertuples(index=False):
        x = responses[it.item].to_numpy(float)
        ok = ~np.isnan(x)
        w = np.ones(len(x)) if weights is None else np.asarray(weights, float)
        x, w = x[ok], w[ok]
        top = x >= it.scale_max - boxes + 1
        share = float(np.sum(w * top) / w.sum())
        n_eff = w.sum() ** 2 / np.sum(w**2)
        lo, hi = proportion_confint(share * n_eff, n_eff, method="wilson")
        rows.append({"item": it.item, "label": getattr(it, "label", it.item), "touchpoint": getattr(it, "touchpoint", ""),
                     "top_box": share, "ci_low": float(lo), "ci_high": float(hi), "mean": float(np.average(x, weights=w)),
                     "scale_min": it.scale_min, "scale_max": it.scale_max})
    return pd.DataFrame(rows)


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


def rake(df: pd.DataFrame, margins: dict[str, pd.Series], max_iter: int = 1000, tol: float = 1e-12) -> Raking:
    """Iterative proportional fitting of weights to population shares of each variable in ``margins``."""
    w = np.ones(len(df))
    codes = {v: df[v].astype(str).to_numpy() for v in margins}
    targets = {v: (m / m.sum()).rename(index=str) for v, m in margins.items()}
    for v, t in targets.items():
        missing = set(np.unique(codes[v])) - set(t.index)
        if missing:
            raise ValueError(f"Respondents have {v} values {sorted(missing)} that the margins do not list.")
    iterations, err = 0, math.inf
    while iterations < max_iter and err >= tol:
        iterations += 1
        for v, t in targets.items():
            current = pd.Series(w).groupby(codes[v]).sum() / w.sum()
            factor = (t / current.reindex(t.index)).fillna(0.0)
            w = w * pd.Series(codes[v]).map(factor).to_numpy()
        err = max(float(np.max(np.abs(pd.Series(w).groupby(codes[v]).sum().reindex(t.index).fillna(0) / w.sum() - t)))
                  for v, t in targets.items())
    w = w / w.mean()
    deff = float(1 + np.var(w) / np.mean(w) ** 2)
    return Raking(w, iterations, err, deff, float(len(w) / deff))


# ---------------------------------------------------------------------------------------------
# measurement quality


def cronbach_alpha(x: pd.DataFrame, ci: float = 0.95) -> dict[str, float]:
    """Cronbach's alpha with the Feldt (1965) interval (complete cases)."""
    x = x.dropna()
    n, k = x.shape
    var_items = x.var(ddof=1).sum()
    var_total = x.sum(axis=1).var(ddof=1)
    alpha = k / (k - 1) * (1 - var_items / var_total)
    f_lo = stats.f.ppf((1 + ci) / 2, n - 1, (n - 1) * (k - 1))
    f_hi = stats.f.ppf((1 - ci) / 2, n - 1, (n - 1) * (k - 1))
    return {"estimate": float(alpha), "ci_low": float(1 - (1 - alpha) * f_lo), "ci_high": float(1 - (1 - alpha) * f_hi),
            "items": k, "n": n}


def mcdonald_omega(x: pd.DataFrame) -> float:
    """Omega total from a one-factor principal-axis model on the correlation matrix (NaN below 3 items)."""
    from statsmodels.multivariate.factor import Factor

    x = x.dropna()
    if x.shape[1] < 3:
        return math.nan
    fa = Factor(x.to_numpy(float), n_factor=1, method="pa").fit(maxiter=500, tol=1e-10)
    lam = np.abs(np.asarray(fa.loadings)[:, 0])
    psi = np.asarray(fa.uniqueness)
    return float(lam.sum() ** 2 / (lam.sum() ** 2 + psi.sum()))


def item_total(x: pd.DataFrame) -> pd.Series:
    """Corrected item-total correlation: each item with the sum of the other items."""
    x = x.dropna()
    total = x.sum(axis=1)
    return pd.Series({c: float(np.corrcoef(x[c], total - x[c])[0, 1]) for c in x.columns})


def reliability(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Alpha (with CI), omega and the weakest item-total correlation per construct with at least two items."""
    rows = []
    for construct, g in items.groupby("construct", sort=True):
        cols = [c for c in g["item"] if c in responses]
        if len(cols) < 2:
            continue
        x = responses[cols].astype(float)
        a = cronbach_alpha(x)
        it = item_total(x)
        rows.append({"construct": construct, "items": len(cols), "alpha": a["estimate"], "ci_low": a["ci_low"],
                     "ci_high": a["ci_high"], "omega": mcdonald_omega(x), "weakest item": it.idxmin(),
                     "weakest item-total r": float(it.min())})
    return pd.DataFrame(rows)


def efa_check(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Exploratory factor analysis (principal axis, varimax) with one factor per multi-item construct.

    Each factor is named after the construct whose items load on it most; an item "fits" when its
    strongest loading is on its own construct's factor.
    """
    from statsmodels.multivariate.factor import Factor

    groups = items.groupby("construct")["item"].apply(lambda s: [c for c in s if c in responses])
    groups = groups[groups.apply(len) >= 2]
    cols = [c for g in groups for c in g]
    x = responses[cols].astype(float).dropna()
    fa = Factor(x.to_numpy(), n_factor=len(groups), method="pa").fit(maxiter=500, tol=1e-10)
    fa.rotate("varimax")
    load = pd.DataFrame(np.asarray(fa.loadings), index=cols)
    factor_of = {}
    for construct, g in groups.items():
        factor_of[construct] = int(load.loc[g].abs().mean().idxmax())
    construct_of = {c: k for k, g in groups.items() for c in g}
    rows = []
    for c in cols:
        best = int(load.loc[c].abs().idxmax())
        own = factor_of[construct_of[c]]
        rows.append({"item": c, "construct": construct_of[c], "loading on own factor": float(load.at[c, own]),
                     "highest loading": float(load.loc[c].abs().max()), "fits": best == own})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# key drivers


def relative_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Johnson's (2000) relative weights of the columns of ``x`` for ``y``; they sum to R²."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    rxx = np.corrcoef(x, rowvar=False)
    rxy = np.array([np.corrcoef(x[:, j], y)[0, 1] for j in range(x.shape[1])])
    evals, evecs = np.linalg.eigh(rxx)
    lam = evecs @ np.diag(np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    beta = np.linalg.solve(lam, rxy)
    return (lam**2) @ (beta**2)


def drivers(df: pd.DataFrame, predictors: list[str], outcome: str, n_boot: int = 300,
            seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Relative weights with percentile bootstrap 95% intervals and each weight's share of R².

    Returns the table and the bootstrap draws (replicates × predictors).
    """
    d = df[[*predictors, outcome]].astype(float).dropna()
    x, y = d[predictors].to_numpy(), d[outcome].to_numpy()
    point = relative_weights(x, y)
    rng = np.random.default_rng(seed)
    boot = np.array([relative_weights(x[i], y[i]) for i in (rng.integers(0, len(d), len(d)) for _ in range(n_boot))])
    return pd.DataFrame({"driver": predictors, "weight": point, "ci_low": np.quantile(boot, 0.025, axis=0),
                         "ci_high": np.quantile(boot, 0.975, axis=0), "share": point / point.sum()}), boot


def group_shares(boot: np.ndarray, predictors: list[str], groups: dict[str, list[str]]) -> pd.DataFrame:
    """Share of R² per attribute group with bootstrap intervals (from the draws of :func:`drivers`)."""
    share = boot / boot.sum(axis=1, keepdims=True)
    rows = []
    for g, members in groups.items():
        idx = [predictors.index(m) for m in members if m in predictors]
        s = share[:, idx].sum(axis=1)
        rows.append({"group": g, "share": float(np.median(s)), "ci_low": float(np.quantile(s, 0.025)),
                     "ci_high": float(np.quantile(s, 0.975)), "draws": s})
    return pd.DataFrame(rows)


def negativity_ratio(df: pd.DataFrame, outcome: str, good: str, bad: str, controls: list[str]) -> dict[str, float]:
    """How many good experiences offset one bad one: -beta_bad / beta_good from OLS (delta-method CI)."""
    d = df[[outcome, good, bad, *controls]].astype(float).dropna()
    fit = sm.OLS(d[outcome], sm.add_constant(d[[good, bad, *controls]])).fit(cov_type="HC1")
    g, b = fit.params[good], fit.params[bad]
    cov = fit.cov_params().loc[[good, bad], [good, bad]].to_numpy()
    grad = np.array([b / g**2, -1 / g])
    se = float(math.sqrt(grad @ cov @ grad))
    ratio = float(-b / g)
    return {"estimate": ratio, "ci_low": ratio - Z * se, "ci_high": ratio + Z * se, "good_effect": float(g),
            "bad_effect": float(b), "n": int(len(d))}


def ipa(top: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """Importance (share of R²) vs performance (mean as % of the scale) with the action quadrant."""
    d = weights[["driver", "share"]].merge(top[["item", "mean", "scale_min", "scale_max"]], left_on="driver",
                                           right_on="item")
    d["performance"] = 100 * (d["mean"] - d["scale_min"]) / (d["scale_max"] - d["scale_min"])
    imp_cut, perf_cut = d["share"].mean(), d["performance"].mean()
    d["quadrant"] = [QUADRANTS[(s >= imp_cut, p >= perf_cut)] for s, p in zip(d["share"], d["performance"], strict=True)]
    return d[["driver", "share", "performance", "quadrant"]].rename(columns={"share": "importance"})


def expectation_gaps(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Perception minus expectation per touchpoint (paired t 95% interval); negative = below expectations."""
    rows = []
    perc = items[items["kind"] == "perception"].set_index("touchpoint")
    exp_ = items[items["kind"] == "expectation"].set_index("touchpoint")
    for tp in sorted(set(perc.index.dropna()) & set(exp_.index.dropna()) - {""}):
        p_item, e_item = perc.loc[tp, "item"], exp_.loc[tp, "item"]
        if isinstance(p_item, pd.Series) or isinstance(e_item, pd.Series):
            continue
        diff = (responses[p_item] - responses[e_item]).astype(float).dropna()
        half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff))
        rows.append({"touchpoint": tp, "gap": float(diff.mean()), "ci_low": float(diff.mean() - half),
                     "ci_high": float(diff.mean() + half), "n": len(diff)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# plots


NPS_COLORS = ("#c0504d", "#bfbfbf", "#4f8f3a")


def plot_nps(table: pd.DataFrame, label: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Promoters, passives and detractors per row (stacked to 100%) with the NPS written beside."""
    t = table.dropna(subset=["estimate"])
    ax = ax or plt.subplots(figsize=(8, 0.5 * len(t) + 1.3))[1]
    y = np.arange(len(t))[::-1]
    det, pro = t["detractors"].to_numpy(float) * 100, t["promoters"].to_numpy(float) * 100
    pas = 100 - det - pro
    ax.barh(y, det, color=NPS_COLORS[0], label="detractors (0–6)")
    ax.barh(y, pas, left=det, color=NPS_COLORS[1], label="passives (7–8)")
    ax.barh(y, pro, left=det + pas, color=NPS_COLORS[2], label="promoters (9–10)")
    for yi, e, lo, hi in zip(y, t["estimate"], t["ci_low"], t["ci_high"], strict=True):
        ax.text(101, yi, f"NPS {e:+.0f} ({lo:+.0f} to {hi:+.0f})", va="center", fontsize=8)
    ax.set_yticks(y, t[label].astype(str))
    ax.set_xlim(0, 135)
    ax.set_xlabel("% of respondents")
    ax.legend(ncol=3, fontsize=8, frameon=False, loc="lower center", bbox_to_anchor=(0.4, -0.45))
    ax.set_title("Net Promoter Score (95% CI)")
    return ax


def plot_likert(responses: pd.DataFrame, items: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Diverging stacked bars: disagreeing answers left of zero, agreeing right, the middle split."""
    ax = ax or plt.subplots(figsize=(10, 0.45 * len(items) + 1.5))[1]
    cmap = plt.get_cmap("RdYlGn")
    for yi, it in zip(np.arange(len(items))[::-1], items.itertuples(index=False), strict=True):
        lo, hi = int(it.scale_min), int(it.scale_max)
        levels = np.arange(lo, hi + 1)
        share = responses[it.item].value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy() * 100
        mid = (lo + hi) / 2
        left = -share[levels < mid].sum() - (share[levels == mid].sum() / 2 if (levels == mid).any() else 0)
        for lv, sh in zip(levels, share, strict=True):
            ax.barh(yi, sh, left=left, color=cmap((lv - lo) / (hi - lo)), edgecolor="white", lw=0.5)
            left += sh
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(np.arange(len(items))[::-1], [f"{getattr(i, 'label', i.item)}" for i in items.itertuples()],
                  fontsize=8)
    ax.set_xlabel("% of respondents (left: low scores, right: high scores)")
    ax.set_title("How customers rate each item")
    return ax


def plot_drivers(table: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Relative weights (share of explained variance) with bootstrap intervals."""
    t = table.sort_values("weight")
    ax = ax or plt.subplots(figsize=(7, 0.4 * len(t) + 1.3))[1]
    y = np.arange(len(t))
    ax.barh(y, t["weight"], color="#1f4e79", alpha=0.8)
    ax.errorbar(t["weight"], y, xerr=[t["weight"] - t["ci_low"], t["ci_high"] - t["weight"]], fmt="none",
                color="black", capsize=3)
    ax.set_yticks(y, t["driver"])
    ax.set_xlabel("relative weight (part of R² each driver accounts for)")
    ax.set_title("What drives the outcome")
    return ax


def plot_ipa(matrix: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Importance–performance matrix with the four action quadrants."""
    ax = ax or plt.subplots(figsize=(7.5, 6))[1]
    ax.scatter(matrix["performance"], matrix["importance"] * 100, color="#1f4e79")
    for r in matrix.itertuples():
        ax.annotate(r.driver, (r.performance, r.importance * 100), xytext=(4, 4), textcoords="offset points",
                    fontsize=8)
    px, iy = matrix["performance"].mean(), matrix["importance"].mean() * 100
    ax.axvline(px, color="grey", ls="--")
    ax.axhline(iy, color="grey", ls="--")
    lims_x, lims_y = ax.get_xlim(), ax.get_ylim()
    for text, x, y, ha in (("IMPROVE FIRST", lims_x[0], lims_y[1], "left"), ("MAINTAIN", lims_x[1], lims_y[1], "right"),
                           ("MONITOR", lims_x[0], lims_y[0], "left"), ("POSSIBLE OVERKILL", lims_x[1], lims_y[0], "right")):
        ax.text(x, y, text, ha=ha, va="top" if y == lims_y[1] else "bottom", fontsize=9, color="#c0504d", weight="bold")
    ax.set_xlabel("performance (mean score, % of the scale)")
    ax.set_ylabel("importance (% of explained variance)")
    ax.set_title("Importance–performance: where to act")
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


def load_inputs(responses_path: str | None, items_path: str | None = None, margins_path: str | None = None,
                customers_path: str | None = None, *, nps_col: str | None = "nps", weight_col: str | None = None,
                seed: int = 20240101, n_customers: int = 5000, effects: dict[str, Any] | None = None) -> SurveyInputs:
    """Read responses and the item dictionary (and margins, customers) or, with no paths, the synthetic world.

    Responses without ``respondent_id`` get row numbers, without ``wave`` a single wave 1. Every dictionary
    item must be a column with answers inside its scale; reverse-coded items are flipped.
    """
    from cxresearch import contracts
    from cxresearch.io import Column, Contract, InputError, read_table, require_items
    from cxresearch.synth import resolve_inputs

    names = {"survey_responses": responses_path, "survey_items": items_path, "survey_margins": margins_path,
             "customers": customers_path}
    if responses_path is None and items_path is None:
        names.update({"survey_invitations": None, "transactions": None})
    paths, synthetic, truth = resolve_inputs(names, seed, n_customers, effects)
    if "survey_responses" not in paths or "survey_items" not in paths:
        raise InputError("'survey'", ["give both responses_path and items_path (the item dictionary). Fix: set them."])
    items = read_table(paths["survey_items"], contracts.SURVEY_ITEMS)
    cols = [Column("respondent_id", "string", required=False), Column("customer_id", "string", required=False),
            Column("wave", "int", required=False, min=1)]
    if weight_col:
        cols.append(Column(weight_col, "float", min=0))
    if nps_col:
        cols.append(Column(nps_col, "int", required=False, nullable=True, min=0, max=10))
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
    margins = None
    if "survey_margins" in paths:
        m = pd.read_csv(paths["survey_margins"]) if str(paths["survey_margins"]).endswith(".csv") else \
            read_table(paths["survey_margins"], Contract("margins", (Column("share", "float", min=0),)))
        if "share" not in m:
            raise InputError(f"'margins' ({paths['survey_margins']})", ["column 'share' is missing. Fix: add it."])
        margins = {v: m.groupby(v)["share"].sum() for v in m.columns if v != "share"}
    customers = read_table(paths["customers"], contracts.CUSTOMERS) if "customers" in paths else None
    invitations = read_table(paths["survey_invitations"], contracts.SURVEY_INVITATIONS) \
        if "survey_invitations" in paths else None
    transactions = read_table(paths["transactions"], contracts.TRANSACTIONS) if "transactions" in paths else None
    if customers is not None and "customer_id" in responses:
        attrs = [c for c in ("segment", "region", "channel", "plan") if c in customers and c not in responses]
        responses = responses.merge(customers[["customer_id", *attrs]], on="customer_id", how="left")
    what = f"the built-in synthetic world ({n_customers:,} customers, seed {seed})" if synthetic \
        else "the files given as parameters"
    return SurveyInputs(responses, items, margins, customers, invitations, transactions, synthetic, truth, what)


def construct_score(responses: pd.DataFrame, items: pd.DataFrame, name: str) -> pd.Series:
    """An item's answers, or the mean of a construct's items (reverse-coded items already flipped)."""
    if name in responses:
        return responses[name].astype(float)
    cols = list(items.loc[items["construct"] == name, "item"])
    if not cols:
        raise ValueError(f"{name!r} is neither an item column nor a construct of the item dictionary.")
    return responses[cols].astype(float).mean(axis=1)


def response_bias(invitations: pd.DataFrame, customers: pd.DataFrame, transactions: pd.DataFrame,
                  responses: pd.DataFrame, nps_col: str, n_boot: int = 300, seed: int = 0) -> dict[str, Any]:
    """Respondents vs non-respondents on behaviour, and how much the raw NPS overstates.

    A response model (logistic: prior-year spend, tenure, segment) weights respondents by 1/P(respond).
    The raw NPS minus that weighted NPS is the part of the positivity bias that behaviour explains; bias
    from satisfaction itself (happier customers answer more) is not visible in behaviour, so this is a
    lower bound. Interval: bootstrap over invitations.
    """
    from cxresearch.overview import spend_before

    inv = invitations.dropna(subset=["invited_at"]).reset_index(drop=True)
    inv = inv.merge(customers[["customer_id", "signup_date", "churn_date", *[c for c in ("segment",) if c in customers]]],
                    on="customer_id", how="left")
    inv["prior_spend"] = spend_before(inv, transactions).to_numpy()
    inv["tenure_months"] = (inv["invited_at"] - inv["signup_date"]).dt.days / 30.44
    inv["left_within_a_year"] = (inv["churn_date"].notna() & (inv["churn_date"] <= inv["invited_at"] + pd.Timedelta(days=365))).astype(float)
    behaviour = inv.groupby("responded")[["prior_spend", "tenure_months", "left_within_a_year"]].mean().T
    behaviour.columns = ["non-respondents" if c == 0 else "respondents" for c in behaviour.columns]
    x = pd.concat([np.log1p(inv[["prior_spend"]]), inv[["tenure_months"]],
                   pd.get_dummies(inv["segment"], drop_first=True, dtype=float) if "segment" in inv else None], axis=1)
    fit = sm.GLM(inv["responded"].astype(float), sm.add_constant(x), family=sm.families.Binomial()).fit()
    inv["p_respond"] = np.asarray(fit.predict(sm.add_constant(x)))
    key = ["customer_id", "wave"]
    r = responses.merge(inv[[*key, "p_respond"]], on=key, how="inner").dropna(subset=[nps_col])
    raw = nps(r[nps_col]).get("estimate")
    weighted = nps(r[nps_col], 1 / r["p_respond"].to_numpy()).get("estimate")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        i = rng.integers(0, len(r), len(r))
        s, w = r[nps_col].to_numpy()[i], 1 / r["p_respond"].to_numpy()[i]
        draws.append(nps(s)["estimate"] - nps(s, w)["estimate"])
    return {"behaviour": behaviour.reset_index(names="measure"), "raw_nps": raw, "weighted_nps": weighted,
            "estimate": raw - weighted, "ci_low": float(np.quantile(draws, 0.025)),
            "ci_high": float(np.quantile(draws, 0.975)), "response_rate": float(inv["responded"].mean()),
            "n_invited": len(inv)}


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


def pls_path_model(data: pd.DataFrame, blocks: dict[str, list[str]], paths: list[tuple[str, str]],
                   modes: dict[str, str] | None = None, max_iter: int = 300, tol: float = 1e-7) -> PathModel:
    """Partial least squares path model (Lohmöller's algorithm, path weighting scheme, standardized data).

    ``blocks`` maps each construct to its indicator columns, ``paths`` lists (from, to) arrows and
    ``modes`` gives "A" (reflective, the default) or "B" (formative) per construct. Conventions follow R
    seminr: indicators standardized with the sample SD, construct scores scaled to unit variance, stop when
    no outer weight changes by more than ``tol``. Reproduces seminr's ECSI reference to about 1e-8.
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
    return PathModel(coef, outer, pd.Series(r2, dtype=float), iterations, pd.DataFrame(y, index=d.index))
