"""Does a loyalty programme pay off? Effects from experiments and observational roll-outs, and the money.

Interval methods:

* randomized difference in means: Welch (unequal variances) t interval;
* regression adjustment (CUPED / Lin 2013): OLS of the outcome on the arm, centred pre-period covariates and
  their interactions with the arm, HC2 robust standard errors;
* multiplicity: Holm-adjusted p-values across arms and outcomes;
* propensity weighting (ATT, Hájek) and doubly robust AIPW for the ATT: percentile bootstrap over units,
  refitting the propensity and outcome models in every replicate;
* difference-in-differences: per-unit change (post minus pre), Welch interval of the member/non-member gap;
* ROI, payback and P(ROI > 0): bootstrap distribution of the effect mapped through the money model.
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

from cxresearch.stats import holm

Z = 1.959964


# ---------------------------------------------------------------------------------------------
# randomized designs


def welch(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Difference in means a - b with a Welch 95% interval and p-value."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    return {"estimate": float(a.mean() - b.mean()), "ci_low": float(ci.low), "ci_high": float(ci.high),
            "p_value": float(res.pvalue), "se": float(math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))),
            "n_treated": len(a), "n_control": len(b)}


def adjusted_effect(y: np.ndarray, treated: np.ndarray, covariates: pd.DataFrame) -> dict[str, float]:
    """Treatment effect adjusted for pre-period covariates (Lin 2013), HC2 standard errors."""
    x = covariates.astype(float)
    xc = x - x.mean()
    d = pd.Series(np.asarray(treated, float), index=x.index, name="treated")
    design = pd.concat([d, xc, xc.mul(d, axis=0).add_suffix(":treated")], axis=1)
    fit = sm.OLS(np.asarray(y, float), sm.add_constant(design)).fit(cov_type="HC2")
    est, se = float(fit.params["treated"]), float(fit.bse["treated"])
    return {"estimate": est, "ci_low": est - Z * se, "ci_high": est + Z * se, "p_value": float(fit.pvalues["treated"]),
            "se": se}


def randomized_effects(df: pd.DataFrame, arm_col: str, control_arm: Any, outcomes: list[str],
                       covariates: list[str]) -> pd.DataFrame:
    """Per treatment arm and outcome: difference in means, adjusted effect, variance reduction, Holm p."""
    arms = [a for a in pd.unique(df[arm_col]) if a != control_arm]
    control = df[df[arm_col] == control_arm]
    rows = []
    for arm in sorted(arms, key=str):
        sub = df[df[arm_col].isin([arm, control_arm])]
        treated = (sub[arm_col] == arm).to_numpy()
        for out in outcomes:
            raw = welch(sub.loc[treated, out], control[out])
            row = {"arm": str(arm), "outcome": out, **{k: raw[k] for k in ("estimate", "ci_low", "ci_high", "p_value", "se")},
                   "n_treated": raw["n_treated"], "n_control": raw["n_control"]}
            if covariates:
                adj = adjusted_effect(sub[out].to_numpy(), treated, sub[covariates])
                row.update({"adjusted": adj["estimate"], "adjusted_ci_low": adj["ci_low"],
                            "adjusted_ci_high": adj["ci_high"], "adjusted_p": adj["p_value"],
                            "variance_reduction": 1 - (adj["se"] / raw["se"]) ** 2 if raw["se"] > 0 else math.nan})
            rows.append(row)
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out["p_value"])
    if covariates:
        out["adjusted_p_holm"] = holm(out["adjusted_p"])
    return out


def minimum_detectable_effect(sd: float, n_treated: int, n_control: int, alpha: float = 0.05,
                              power: float = 0.8) -> float:
    """Smallest true difference a two-arm pilot of this size detects with the given power (two-sided)."""
    from statsmodels.stats.power import NormalIndPower

    d = NormalIndPower().solve_power(nobs1=n_treated, alpha=alpha, power=power, ratio=n_control / n_treated)
    return float(d * sd)


def customers_needed(sd: float, effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Customers per arm needed to detect ``effect`` (equal arms)."""
    from statsmodels.stats.power import NormalIndPower

    if effect == 0 or not math.isfinite(effect):
        return -1
    n = NormalIndPower().solve_power(effect_size=abs(effect) / sd, alpha=alpha, power=power, ratio=1.0)
    return int(math.ceil(n))


# ---------------------------------------------------------------------------------------------
# observational designs


def covariate_matrix(df: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """Numbers as they are (plus log(1+x) for non-negative ones), text as dummies (most common level left out)."""
    parts = []
    for c in covariates:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).rename(c))
            if (s >= 0).all():
                parts.append(np.log1p(s.astype(float)).rename(f"log1p({c})"))
        else:
            s = s.astype(str)
            ref = s.value_counts().idxmax()
            parts.append(pd.get_dummies(s, prefix=c, prefix_sep="=", dtype=float).drop(columns=f"{c}={ref}"))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=df.index)


def propensity(x: pd.DataFrame, treated: np.ndarray) -> np.ndarray:
    """Probability of joining given the covariates (logistic regression)."""
    fit = sm.GLM(treated.astype(float), sm.add_constant(x, has_constant="add"), family=sm.families.Binomial()).fit()
    return np.clip(np.asarray(fit.predict(sm.add_constant(x, has_constant="add"))), 1e-6, 1 - 1e-6)


def smd(x: pd.DataFrame, treated: np.ndarray, weights: np.ndarray | None = None) -> pd.Series:
    """Standardized mean differences (pooled SD of the unweighted groups)."""
    w = np.ones(len(x)) if weights is None else weights
    t, c = treated.astype(bool), ~treated.astype(bool)
    mt = np.average(x[t], axis=0, weights=w[t])
    mc = np.average(x[c], axis=0, weights=w[c])
    sd = np.sqrt((x[t].var(ddof=1).to_numpy() + x[c].var(ddof=1).to_numpy()) / 2)
    return pd.Series((mt - mc) / np.where(sd > 0, sd, np.nan), index=x.columns)


def att_estimates(y: np.ndarray, treated: np.ndarray, x: pd.DataFrame) -> dict[str, float]:
    """Naive gap, IPW (ATT, Hájek) and doubly robust AIPW for the ATT, on one sample."""
    y, d = np.asarray(y, float), np.asarray(treated, bool)
    e = propensity(x, d)
    w0 = e / (1 - e)
    ipw = y[d].mean() - np.sum(w0[~d] * y[~d]) / np.sum(w0[~d])
    xc = sm.add_constant(x, has_constant="add")
    m0 = np.asarray(sm.OLS(y[~d], xc[~d]).fit().predict(xc))
    aipw = (np.sum(y[d] - m0[d]) - np.sum(w0[~d] * (y[~d] - m0[~d]))) / d.sum()
    return {"naive": float(y[d].mean() - y[~d].mean()), "ipw": float(ipw), "aipw": float(aipw)}


@dataclass
class ObservationalResult:
    """ATT estimates with bootstrap intervals, and the propensity scores for diagnostics."""

    estimates: pd.DataFrame  # method, estimate, ci_low, ci_high
    propensity: np.ndarray
    balance: pd.DataFrame  # covariate, smd_before, smd_after
    effective_n_controls: float
    boot: pd.DataFrame  # bootstrap draws per method


def observational(df: pd.DataFrame, outcome: str, arm_col: str, control_arm: Any, covariates: list[str],
                  n_boot: int = 300, seed: int = 0) -> ObservationalResult:
    """Naive gap, propensity weighting and AIPW (both for the effect on members, ATT), bootstrap CIs.

    Units whose ``arm_col`` differs from ``control_arm`` are the members.
    """
    d = (df[arm_col].astype(str) != str(control_arm)).to_numpy()
    x = covariate_matrix(df, covariates)
    y = df[outcome].to_numpy(float)
    point = att_estimates(y, d, x)
    naive = welch(y[d], y[~d])
    rng = np.random.default_rng(seed)
    idx_t, idx_c = np.flatnonzero(d), np.flatnonzero(~d)
    draws = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(idx_t, len(idx_t)), rng.choice(idx_c, len(idx_c))])
        try:
            draws.append(att_estimates(y[idx], d[idx], x.iloc[idx].reset_index(drop=True)))
        except (np.linalg.LinAlgError, ValueError):
            continue
    boot = pd.DataFrame(draws)
    rows = [{"method": "naive member vs non-member gap", "key": "naive", "estimate": naive["estimate"],
             "ci_low": naive["ci_low"], "ci_high": naive["ci_high"]}]
    for key, name in (("ipw", "propensity-score weighting (ATT)"), ("aipw", "doubly robust AIPW (ATT)")):
        rows.append({"method": name, "key": key, "estimate": point[key],
                     "ci_low": float(boot[key].quantile(0.025)), "ci_high": float(boot[key].quantile(0.975))})
    e = propensity(x, d)
    w = np.where(d, 1.0, e / (1 - e))
    balance = pd.DataFrame({"covariate": x.columns, "smd_before": smd(x, d).to_numpy(),
                            "smd_after": smd(x, d, w).to_numpy()})
    ess = float(w[~d].sum() ** 2 / np.sum(w[~d] ** 2))
    return ObservationalResult(pd.DataFrame(rows), e, balance, ess, boot)


def panel_changes(panel: pd.DataFrame, units: pd.DataFrame, unit_col: str, period_col: str, outcome: str,
                  pre_end: str, post_start: str) -> pd.DataFrame:
    """Per unit: mean outcome before ``pre_end`` (exclusive) and from ``post_start`` on, and the change."""
    p = panel[[unit_col, period_col, outcome]]
    pre = p[p[period_col] < pre_end].groupby(unit_col)[outcome].mean()
    post = p[p[period_col] >= post_start].groupby(unit_col)[outcome].mean()
    out = units.set_index(unit_col).join(pre.rename("pre"), how="inner").join(post.rename("post"), how="inner")
    out["change"] = out["post"] - out["pre"]
    return out


def difference_in_differences(changes: pd.DataFrame, treated: np.ndarray) -> dict[str, float]:
    """(post - pre) of members minus that of non-members, Welch 95% interval over units."""
    ch = changes["change"].to_numpy(float)
    return welch(ch[treated], ch[~treated])


def event_study(panel: pd.DataFrame, units: pd.DataFrame, unit_col: str, period_col: str, outcome: str,
                treated: pd.Series, pre_end: str) -> pd.DataFrame:
    """Member minus non-member gap per period, relative to each unit's pre-period mean, with 95% CIs."""
    p = panel[[unit_col, period_col, outcome]].merge(units[[unit_col]], on=unit_col)
    base = p[p[period_col] < pre_end].groupby(unit_col)[outcome].mean()
    p = p.assign(rel=p[outcome] - p[unit_col].map(base), member=p[unit_col].map(treated))
    rows = []
    for period, g in p.groupby(period_col, sort=True):
        r = welch(g.loc[g["member"], "rel"], g.loc[~g["member"], "rel"])
        rows.append({"period": period, "gap": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# money


@dataclass
class Money:
    """The programme's economics per member and outcome period."""

    margin: float
    cost_per_member: float
    horizon: float  # number of outcome periods the programme runs
    members: int
    setup_cost: float = 0.0

    def roi(self, effect: np.ndarray | float) -> np.ndarray:
        """(incremental gross profit - cost) / cost over the horizon."""
        effect = np.asarray(effect, float)
        profit = self.horizon * self.members * self.margin * effect
        cost = self.horizon * self.members * self.cost_per_member + self.setup_cost
        return (profit - cost) / cost

    def net_per_period(self, effect: np.ndarray | float) -> np.ndarray:
        return self.members * (self.margin * np.asarray(effect, float) - self.cost_per_member)

    def payback_periods(self, effect: np.ndarray | float) -> np.ndarray:
        """Periods until the set-up cost is earned back (inf when the programme loses money every period)."""
        net = self.net_per_period(effect)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(net > 0, self.setup_cost / net, np.inf)

    @property
    def break_even_effect(self) -> float:
        """Smallest effect per member and period at which the programme pays over the horizon."""
        return (self.cost_per_member + self.setup_cost / (self.horizon * self.members)) / self.margin


def money_summary(money: Money, effect: float, draws: np.ndarray) -> dict[str, Any]:
    """ROI and payback with percentile bootstrap intervals, and P(ROI > 0) over the bootstrap draws."""
    roi_draws = money.roi(draws)
    pay = money.payback_periods(draws)
    return {
        "roi": float(money.roi(effect)), "roi_ci_low": float(np.quantile(roi_draws, 0.025)),
        "roi_ci_high": float(np.quantile(roi_draws, 0.975)), "prob_roi_positive": float(np.mean(roi_draws > 0)),
        "payback": float(money.payback_periods(effect)), "payback_ci_low": float(np.quantile(pay, 0.025)),
        "payback_ci_high": float(np.quantile(pay, 0.975)), "break_even_effect": money.break_even_effect,
        "net_profit_horizon": float(money.horizon * money.net_per_period(effect) - money.setup_cost),
    }


def verdict_sentence(summary: dict[str, Any], extra_needed: int | None = None) -> tuple[str, str]:
    """Plain verdict and the claim verdict from the ROI interval."""
    lo, hi = summary["roi_ci_low"], summary["roi_ci_high"]
    if lo > 0:
        return "The programme pays off.", "supported"
    if hi < 0:
        return "The programme does not pay off.", "not supported"
    more = f" — need about {extra_needed:,} more customers per group" if extra_needed and extra_needed > 0 else ""
    return f"Cannot tell yet{more}.", "inconclusive"


# ---------------------------------------------------------------------------------------------
# plots


def plot_effects(table: pd.DataFrame, est: str = "estimate", lo: str = "ci_low", hi: str = "ci_high",
                 label: str = "label", ax: plt.Axes | None = None, title: str = "Effect with 95% CI") -> plt.Axes:
    """Point estimates with intervals; the dashed line is no effect."""
    from cxresearch.plots import plot_intervals

    return plot_intervals(table[label], table[est], table[lo], table[hi], ax, title=title, reference=0.0)


def plot_balance(balance: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Standardized mean differences before and after weighting (|SMD| < 0.1 is usually taken as balanced)."""
    ax = ax or plt.subplots(figsize=(7, 0.45 * len(balance) + 1.3))[1]
    y = np.arange(len(balance))[::-1]
    ax.scatter(balance["smd_before"], y, color="#c0504d", label="before weighting")
    ax.scatter(balance["smd_after"], y, color="#1f4e79", label="after weighting")
    for v in (-0.1, 0.1):
        ax.axvline(v, color="grey", ls=":", lw=1)
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(y, balance["covariate"])
    ax.set_xlabel("standardized mean difference, members minus non-members")
    ax.set_title("Were members different before they joined?")
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_overlap(score: np.ndarray, treated: np.ndarray, ax: plt.Axes | None = None) -> plt.Axes:
    """Propensity score distributions of members and non-members."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    bins = np.linspace(0, 1, 31)
    ax.hist(score[~treated], bins=bins, alpha=0.6, color="#9bb7d4", label="non-members", density=True)
    ax.hist(score[treated], bins=bins, alpha=0.6, color="#1f4e79", label="members", density=True)
    ax.set_xlabel("estimated probability of joining")
    ax.set_ylabel("density")
    ax.set_title("Overlap: are there comparable non-members for every member?")
    ax.legend(frameon=False)
    return ax


def plot_event_study(es: pd.DataFrame, pre_end: str, post_start: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Member minus non-member gap per period relative to the pre-period (0 before joining = parallel trends)."""
    ax = ax or plt.subplots(figsize=(10, 4))[1]
    x = np.arange(len(es))
    ax.errorbar(x, es["gap"], yerr=[es["gap"] - es["ci_low"], es["ci_high"] - es["gap"]], fmt="o-", color="#1f4e79",
                capsize=3)
    ax.axhline(0, color="black", lw=1)
    periods = list(es["period"])
    if pre_end in periods:
        ax.axvspan(periods.index(pre_end) - 0.5, (periods.index(post_start) - 0.5) if post_start in periods else len(x),
                   color="grey", alpha=0.15, label="enrolment window")
    ax.set_xticks(x, periods, rotation=60, fontsize=8)
    ax.set_ylabel("members minus non-members\n(change from own pre-period mean)")
    ax.set_title("Event study: no gap before joining, a gap after")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def plot_roi(draws: np.ndarray, money: Money, ax: plt.Axes | None = None) -> plt.Axes:
    """Bootstrap distribution of ROI; the share right of zero is P(ROI > 0)."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    roi = money.roi(draws) * 100
    ax.hist(roi, bins=40, color="#1f4e79", alpha=0.8)
    ax.axvline(0, color="#c0504d", lw=2)
    ax.set_xlabel("return on investment over the horizon, %")
    ax.set_ylabel("bootstrap draws")
    ax.set_title(f"How sure are we it pays? P(ROI > 0) = {np.mean(roi > 0):.0%}")
    return ax


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass
class PayoffInputs:
    """The unit table (and panel), with the money defaults of the synthetic world when used."""

    units: pd.DataFrame
    panel: pd.DataFrame | None
    synthetic: bool
    truth: dict[str, Any] | None
    source: str


def load_inputs(design: str, data_path: str | None, panel_path: str | None = None, *, unit_col: str | None,
                arm_col: str, outcome_cols: list[str], covariate_cols: list[str], period_col: str = "month",
                seed: int = 20240101, n_customers: int = 5000, effects: dict[str, Any] | None = None) -> PayoffInputs:
    """Read the unit table (one row per unit) and, for observational designs, an optional panel.

    With no ``data_path`` the synthetic world's loyalty pilot (randomized) or open enrolment
    (observational, with its monthly panel) is used.
    """
    from cxresearch.io import Column, Contract, InputError, read_table
    from cxresearch.synth import resolve_inputs

    if design not in ("randomized", "observational"):
        raise ValueError(f"design must be 'randomized' or 'observational', got {design!r}")
    truth = None
    if data_path:
        paths = {"units": data_path, **({"panel": panel_path} if panel_path else {})}
        synthetic, source = False, "the files given as parameters"
    else:
        tables = {"units": "loyalty_pilot"} if design == "randomized" else {"units": "loyalty_members",
                                                                           "panel": "loyalty_panel"}
        world, synthetic, truth = resolve_inputs({v: None for v in tables.values()}, seed, n_customers, effects)
        paths = {k: world[v] for k, v in tables.items()}
        source = f"the built-in synthetic world ({n_customers:,} customers, seed {seed})"
    in_panel = design == "observational" and "panel" in paths
    unit_outcomes = [] if in_panel else outcome_cols
    cols = [Column(arm_col, "string"), *[Column(o, "float") for o in unit_outcomes]]
    if unit_col:
        cols.append(Column(unit_col, "string"))
    units = read_table(paths["units"], Contract("loyalty units", tuple(cols), key=(unit_col,) if unit_col else ()))
    missing = [c for c in covariate_cols if c not in units.columns]
    if missing:
        raise InputError(f"'loyalty units' ({paths['units']})", [
            f"covariate column '{c}' is missing. Columns: {list(units.columns)}. Fix: correct covariate_cols."
            for c in missing])
    empty = [c for c in covariate_cols if units[c].isna().any()]
    if empty:
        raise InputError(f"'loyalty units' ({paths['units']})", [
            f"covariate '{c}' has {int(units[c].isna().sum())} empty value(s). Fix: fill them or leave it out."
            for c in empty])
    panel = None
    if in_panel:
        if not unit_col:
            raise InputError("'panel'", ["a panel needs unit_col to link units. Fix: set unit_col."])
        pcols = (Column(unit_col, "string"), Column(period_col, "string"), *[Column(o, "float") for o in outcome_cols])
        panel = read_table(paths["panel"], Contract("loyalty panel", pcols, key=(unit_col, period_col)))
    return PayoffInputs(units, panel, synthetic, truth, source)


def resolve_defaults(design: str, synthetic: bool, truth: dict[str, Any] | None, **given: Any) -> dict[str, Any]:
    """Fill parameters left as None with the design's defaults (money from the synthetic world's truth)."""
    randomized = design == "randomized"
    defaults: dict[str, Any] = {
        "arm_col": "arm" if randomized else "member",
        "control_arm": "control" if randomized else "0",
        "outcome_cols": ["spend", "visits", "converted", "retained"] if randomized else ["spend"],
        "covariate_cols": ["pre_spend", "pre_visits"] if randomized else
        ["pre_spend_12m", "pre_visits_12m", "tenure_months", "segment", "region"],
        "horizon": 4 if randomized else 12,
        "pre_end": "2024-04", "post_start": "2024-07",
    }
    if synthetic and truth is not None:
        t = truth["loyalty_pilot" if randomized else "loyalty_enrolment"]
        months = truth["calendar"]["pilot_weeks"] * 7 / (365.25 / 12) if randomized else 1.0
        defaults.update({"margin": t["margin"], "cost_per_member": t["cost_per_member_month"] * months})
    out = {k: (v if v is not None else defaults.get(k)) for k, v in given.items()}
    missing = [k for k in ("margin", "cost_per_member") if out.get(k) is None]
    if missing:
        raise ValueError(f"Give {' and '.join(missing)} for your own data (gross margin on incremental spend, "
                         "programme cost per member and outcome period).")
    if "control_arm" in out:
        out["control_arm"] = str(out["control_arm"])
    return out


@dataclass
class ObservationalAnalysis:
    """Everything the observational part of the report shows."""

    result: ObservationalResult
    treated: np.ndarray
    did: dict[str, float] | None
    event: pd.DataFrame | None
    placebo: dict[str, float] | None
    primary: str  # "did" or "aipw"
    draws: np.ndarray  # bootstrap draws of the primary effect
    pre_gap: dict[str, float]  # members minus non-members on the first covariate, before joining


def analyse_observational(units: pd.DataFrame, panel: pd.DataFrame | None, *, unit_col: str | None, arm_col: str,
                          control_arm: str, outcome: str, covariates: list[str], period_col: str = "month",
                          pre_end: str = "2024-04", post_start: str = "2024-07", n_boot: int = 300,
                          seed: int = 0) -> ObservationalAnalysis:
    """Naive gap, IPW, AIPW and — with a panel — difference-in-differences, event study and a placebo.

    With a panel the outcome for IPW/AIPW is the mean per period from ``post_start`` on, and DiD compares
    each unit's change from its mean before ``pre_end``. The placebo pretends the programme started in the
    middle of the pre-period: its DiD should be near zero.
    """
    rng = np.random.default_rng(seed)
    data, y_col = units.copy(), outcome
    did = event = placebo = None
    if panel is not None and unit_col:
        ch = panel_changes(panel, units[[unit_col]], unit_col, period_col, outcome, pre_end, post_start)
        data = units.set_index(unit_col).join(ch[["pre", "post", "change"]], how="inner").reset_index()
        y_col = "post"
    treated = (data[arm_col].astype(str) != str(control_arm)).to_numpy()
    result = observational(data, y_col, arm_col, control_arm, covariates, n_boot=n_boot, seed=seed)
    if panel is not None and unit_col:
        did = difference_in_differences(data, treated)
        member_of = pd.Series(treated, index=data[unit_col])
        event = event_study(panel, data[[unit_col]], unit_col, period_col, outcome, member_of, pre_end)
        pre_periods = sorted(p for p in panel[period_col].unique() if p < pre_end)
        mid = pre_periods[len(pre_periods) // 2]
        fake = panel_changes(panel[panel[period_col] < pre_end], data[[unit_col]], unit_col, period_col, outcome,
                             mid, mid)
        placebo = difference_in_differences(fake, member_of.reindex(fake.index).to_numpy())
        ch = data["change"].to_numpy(float)
        t_idx, c_idx = np.flatnonzero(treated), np.flatnonzero(~treated)
        draws = np.array([ch[rng.choice(t_idx, len(t_idx))].mean() - ch[rng.choice(c_idx, len(c_idx))].mean()
                          for _ in range(max(n_boot, 1000))])
        primary = "did"
    else:
        draws, primary = result.boot["aipw"].to_numpy(), "aipw"
    first = result.balance["covariate"].iloc[0] if len(result.balance) else None
    pre_gap = welch(data.loc[treated, first], data.loc[~treated, first]) if first in data else {}
    return ObservationalAnalysis(result, treated, did, event, placebo, primary, draws, pre_gap)


def randomized_draws(units: pd.DataFrame, arm_col: str, control_arm: str, arm: str, outcome: str,
                     covariates: list[str], n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap draws of the (CUPED-adjusted) effect of one arm on one outcome, resampling within arms."""
    rng = np.random.default_rng(seed)
    sub = units[units[arm_col].astype(str).isin([str(arm), str(control_arm)])]
    y = sub[outcome].to_numpy(float)
    if covariates:
        x = sub[covariates].to_numpy(float)
        xc = x - x.mean(axis=0)
        theta = np.linalg.lstsq(np.column_stack([np.ones(len(y)), xc]), y, rcond=None)[0][1:]
        y = y - xc @ theta
    t = (sub[arm_col].astype(str) == str(arm)).to_numpy()
    yt, yc = y[t], y[~t]
    return np.array([rng.choice(yt, len(yt)).mean() - rng.choice(yc, len(yc)).mean() for _ in range(n_boot)])
