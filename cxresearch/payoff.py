"""Does a loyalty programme pay off? Effects from experiments and observational roll-outs, and the money.

Interval methods:

* randomized difference in means: Welch (unequal variances) t interval (:func:`cxresearch.stats.welch`);
* regression adjustment (CUPED / Lin 2013): OLS of the outcome on the arm, centred pre-period covariates and
  their interactions with the arm, HC2 robust standard errors;
* multiplicity: Holm-adjusted p-values across arms and outcomes;
* propensity weighting (IPW) and doubly robust AIPW, both for the effect on members (ATT), with
  **normalised (Hájek) ATT weights**: every member weighs 1, every non-member e/(1 − e) (e: the estimated
  chance of joining), and the non-members' weights are divided by their sum, so the weighted non-members
  form an average, not a total:

      IPW  = mean over members of y − Σ_non-members w·y / Σ_non-members w
      AIPW = mean over members of (y − m0) − Σ_non-members w·(y − m0) / Σ_non-members w

  with m0 the outcome regression (OLS) fitted on non-members. Intervals: percentile bootstrap over units
  (members and non-members resampled separately), refitting both models in every replicate; replicates
  whose propensity model fails are counted and reported, and more than 5% of them makes IPW/AIPW not
  estimable. The percentile interval is checked to contain the point estimate; when it does not (a badly
  skewed or unstable bootstrap) no interval is shown;
* difference-in-differences: per-unit change (post minus pre), Welch interval of the member/non-member gap;
* ROI and payback: the effect's own 95% interval mapped through the money model. ROI is increasing and
  payback decreasing in the effect, so the mapped interval always contains the point estimate (a
  percentile bootstrap of ROI need not, e.g. with one customer in an arm). P(ROI > 0) is the normal
  approximation from the effect's standard error (bootstrap share for AIPW, whose interval is a bootstrap).

Covariates enter the models through one Wilkinson formula (:mod:`cxresearch.design`): ``covariate_formula``
(e.g. ``age + I(age**2) + educ + I(re74 == 0)``), or — when none is given — the covariates as given,
text columns as indicators against their most frequent level. Nothing is added silently (no logs).

Convergence: the propensity logit is :func:`cxresearch.fits.fit_logit` (the package's one checked logit):
IRLS on the covariates as given, then on standardised covariates with more iterations, then BFGS, each attempt
checked (converged, score equations solved, no separation). Groups below ``min_group_size`` are not tested.

Layout: the randomized and observational analyses, the money model, inputs (a
:class:`~cxresearch.sources.Source` and the run's ledger in), claims and metrics, plain tables, plots
(computing nothing) and report sections (``show_*``: sentences, figures and tables for the notebook).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

# statsmodels' modules, not statsmodels.api (which imports everything: 0.6 s per kernel)
from statsmodels.regression.linear_model import OLS
from statsmodels.tools.tools import add_constant

from cxresearch import engine as engines
from cxresearch import fits
from cxresearch.design import DesignMatrix, design_matrix, formula_of
from cxresearch.design import variables as formula_variables
from cxresearch.display import fmt_interval, fmt_value, plain, say
from cxresearch.errors import NotEstimable, ParameterError
from cxresearch.fits import FitError, LogitFit, is_number
from cxresearch.fits import standardise as _standardise
from cxresearch.io import Column, Contract, InputError, Ledger, read_table
from cxresearch.plots import show
from cxresearch.stats import Z95, Claim, holm, percentile_interval, pick, verdict, welch, welch_from_moments

#: Plain labels of the documented column names and arms (README, "Your own data"), registered by the notebook with
#: ``cx.display.use_labels(payoff.COLUMN_LABELS)`` (the ``labels`` parameter wins).
COLUMN_LABELS = {
    "spend": "spend", "visits": "visits", "converted": "bought anything", "retained": "still a customer",
    "pre_spend": "spend before the pilot", "pre_visits": "visits before the pilot",
    "pre_spend_12m": "spend in the 12 months before", "pre_visits_12m": "visits in the 12 months before",
    "tenure_months": "months as a customer", "member": "member", "arm": "group", "loyalty": "loyalty programme",
}
#: The tables a run reads: the unit table per design, and the optional panel (observational designs).
UNIT_TABLES = {"randomized": "loyalty_pilot", "observational": "loyalty_members"}
PANEL_TABLE = "loyalty_panel"
#: The enrolment window's parameters, taken from the data's own ``source.defaults`` when not given.
WINDOW = ("pre_end", "post_start")


# ---------------------------------------------------------------------------------------------
# randomized designs


def adjusted_effect(y: np.ndarray, treated: np.ndarray, covariates: pd.DataFrame) -> dict[str, float]:
    """Treatment effect adjusted for pre-period covariates (Lin 2013), HC2 standard errors.

    ``covariates`` is a design matrix (:func:`cxresearch.design.design_matrix`). Columns are centred and
    scaled (the effect and its HC2 error do not depend on the scale, and covariates on huge scales stay
    well conditioned); constant columns are left out.
    """
    x = covariates.astype(float)
    sd = x.std(ddof=0)
    x = x.loc[:, sd > 0]
    xc = (x - x.mean()) / sd[sd > 0]
    d = pd.Series(np.asarray(treated, float), index=x.index, name="treated")
    design = pd.concat([d, xc, xc.mul(d, axis=0).add_suffix(":treated")], axis=1)
    fit = OLS(np.asarray(y, float), add_constant(design, has_constant="add")).fit(cov_type="HC2")
    est, se = float(fit.params["treated"]), float(fit.bse["treated"])
    if not (math.isfinite(se) and se > 0):
        return {"estimate": est, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan, "se": math.nan}
    return {"estimate": est, "ci_low": est - Z95 * se, "ci_high": est + Z95 * se,
            "p_value": float(fit.pvalues["treated"]), "se": se}


def randomized_effects(df: pd.DataFrame, arm_col: str, control_arm: Any, outcomes: list[str],
                       covariates: list[str], min_group_size: int = 2, formula: str | None = None) -> pd.DataFrame:
    """Per treatment arm and outcome: difference in means, adjusted effect, variance reduction, Holm p.

    Arms are compared with ``control_arm`` as text. Arms with fewer than ``min_group_size`` customers are
    left out (see :func:`arm_sizes`); a comparison whose outcome has no spread gets no interval and is
    marked in ``note``. The adjustment uses ``formula`` (Wilkinson syntax), or ``covariates`` as given.
    Holm's correction runs over the comparisons that have a p-value.
    """
    labels = df[arm_col].astype(str)
    control = str(control_arm)
    sizes = labels.value_counts()
    arms = sorted((a for a in sizes.index if a != control and sizes[a] >= min_group_size), key=str)
    ctrl = df[labels == control]
    spec = formula if formula is not None else formula_of(covariates)
    x_all = design_matrix(df, spec).X if spec.strip() else None
    adjust = x_all is not None and x_all.shape[1] > 0
    rows = []
    for arm in arms:
        in_pair = labels.isin([arm, control]).to_numpy()
        sub = df[in_pair]
        treated = (labels[in_pair] == arm).to_numpy()
        for out in outcomes:
            raw = welch(sub.loc[treated, out], ctrl[out])
            row = {"arm": str(arm), "outcome": out, **{k: raw[k] for k in ("estimate", "ci_low", "ci_high", "p_value", "se")},
                   "n_treated": raw["n_treated"], "n_control": raw["n_control"], "note": ""}
            if not is_number(raw["ci_low"]):
                row["note"] = "no spread in the outcome (or fewer than 2 customers): not testable"
            if adjust:
                adj = adjusted_effect(sub[out].to_numpy(), treated, x_all[in_pair]) if is_number(raw["ci_low"]) else \
                    {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan, "se": math.nan}
                ok = is_number(adj["se"]) and is_number(raw["se"]) and raw["se"] > 0
                row.update({"adjusted": adj["estimate"] if ok else math.nan, "adjusted_ci_low": adj["ci_low"],
                            "adjusted_ci_high": adj["ci_high"], "adjusted_p_value": adj["p_value"],
                            "adjusted_se": adj["se"],
                            "variance_reduction": 1 - (adj["se"] / raw["se"]) ** 2 if ok else math.nan})
            rows.append(row)
    cols = ["arm", "outcome", "estimate", "ci_low", "ci_high", "p_value", "se", "n_treated", "n_control", "note"]
    out = pd.DataFrame(rows, columns=cols + (["adjusted", "adjusted_ci_low", "adjusted_ci_high", "adjusted_p_value",
                                             "adjusted_se", "variance_reduction"] if adjust else []))
    out["p_value_holm"] = _holm_where_finite(out["p_value"])
    if adjust:
        out["adjusted_p_value_holm"] = _holm_where_finite(out["adjusted_p_value"])
    return out


def _holm_where_finite(p: pd.Series) -> np.ndarray:
    p = pd.to_numeric(p, errors="coerce").to_numpy(float)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = holm(p[ok])
    return out


def minimum_detectable_effect(sd: float, n_treated: int, n_control: int, alpha: float = 0.05,
                              power: float = 0.8) -> float:
    """Smallest true difference a two-arm pilot of this size detects with the given power (two-sided, normal)."""
    if not (is_number(sd) and n_treated > 0 and n_control > 0):
        return math.nan
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return float((za + zb) * sd * math.sqrt(1 / n_treated + 1 / n_control))


def customers_needed(sd: float, effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Customers per arm needed to detect ``effect`` (equal arms, normal approximation); -1 when undefined."""
    if not (is_number(sd) and is_number(effect)) or effect == 0 or sd <= 0:
        return -1
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return int(math.ceil(2 * ((za + zb) * sd / abs(effect)) ** 2))


# ---------------------------------------------------------------------------------------------
# observational designs


def fit_logit(x: pd.DataFrame, d: np.ndarray, model: str = "propensity logit", record: bool = True) -> LogitFit:
    """Logistic regression of membership ``d`` on ``x``: :func:`cxresearch.fits.fit_logit` (checked
    convergence, safer retries) in the words of this analysis.

    ``record=False`` (bootstrap replicates) tries the same settings without recording each fit and
    raises :class:`FitError` when none works.
    """
    return fits.fit_logit(x, d, model, outcome="join", groups="members from non-members", decides="membership",
                          record=record)


def propensity(x: pd.DataFrame, treated: np.ndarray, record: bool = True) -> np.ndarray:
    """Probability of joining given the covariates (logistic regression, checked convergence)."""
    return fit_logit(x, np.asarray(treated, bool), record=record).probability


def smd(x: pd.DataFrame, treated: np.ndarray, weights: np.ndarray | None = None) -> pd.Series:
    """Standardized mean differences (pooled SD of the unweighted groups)."""
    w = np.ones(len(x)) if weights is None else weights
    t, c = treated.astype(bool), ~treated.astype(bool)
    mt = np.average(x[t], axis=0, weights=w[t])
    mc = np.average(x[c], axis=0, weights=w[c])
    sd = np.sqrt((x[t].var(ddof=1).to_numpy() + x[c].var(ddof=1).to_numpy()) / 2)
    return pd.Series((mt - mc) / np.where(sd > 0, sd, np.nan), index=x.columns)


def att_weights(e: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """ATT weights: 1 for members, e/(1 − e) for non-members (normalise within each group: Hájek)."""
    return np.where(np.asarray(treated, bool), 1.0, e / (1 - e))


def att_estimates(y: np.ndarray, treated: np.ndarray, x: pd.DataFrame, e: np.ndarray | None = None,
                  record: bool = True) -> dict[str, float]:
    """Naive gap, IPW and doubly robust AIPW for the effect on members (ATT), Hájek-normalised, on one sample.

    ``IPW = mean_members(y) − Σ_c w·y / Σ_c w`` and ``AIPW = mean_members(y − m0) − Σ_c w·(y − m0) / Σ_c w``
    over non-members c with ``w = e/(1 − e)``; ``e`` is the propensity logit on ``x`` and ``m0`` the OLS
    of y on ``x`` among non-members.
    """
    y, d = np.asarray(y, float), np.asarray(treated, bool)
    e = propensity(x, d, record=record) if e is None else e
    w0 = att_weights(e, d)[~d]
    ipw = y[d].mean() - np.sum(w0 * y[~d]) / np.sum(w0)
    xc = add_constant(_standardise(x), has_constant="add")
    m0 = np.asarray(OLS(y[~d], xc[~d]).fit().predict(xc))
    r = y - m0
    aipw = r[d].mean() - np.sum(w0 * r[~d]) / np.sum(w0)
    return {"naive": float(y[d].mean() - y[~d].mean()), "ipw": float(ipw), "aipw": float(aipw)}


#: How each observational estimate is named for a reader.
METHODS = {
    "naive": "naive gap: members vs non-members as observed",
    "ipw": "weighted to look alike (propensity score)",
    "aipw": "weighted and modelled (doubly robust, AIPW)",
    "did": "change since joining vs non-members (difference-in-differences)",
}


@dataclass
class ObservationalResult:
    """ATT estimates with bootstrap intervals, the propensity scores and the balance, and the design used."""

    estimates: pd.DataFrame  # method, key, estimate, ci_low, ci_high, note
    propensity: np.ndarray | None
    balance: pd.DataFrame  # covariate (design term), smd_before, smd_after
    effective_n_controls: float
    boot: pd.DataFrame  # bootstrap draws per method
    failed_replicates: int = 0
    problem: str = ""  # why IPW/AIPW are not estimable ("" when they are)
    design: DesignMatrix | None = None
    n_boot: int = 0


def _covariate_design(df: pd.DataFrame, covariates: list[str], formula: str | None) -> DesignMatrix:
    return design_matrix(df, formula if formula is not None else formula_of(covariates))


def observational(df: pd.DataFrame, outcome: str, arm_col: str, control_arm: Any, covariates: list[str],
                  n_boot: int = 300, seed: int = 0, max_failed_share: float = 0.05,
                  formula: str | None = None) -> ObservationalResult:
    """Naive gap, propensity weighting and AIPW (both for the effect on members, ATT), bootstrap CIs.

    Units whose ``arm_col`` differs from ``control_arm`` (compared as text) are the members. The
    propensity logit and the outcome regression use ``formula`` (Wilkinson syntax, see
    :mod:`cxresearch.design`) or, without one, ``covariates`` as given. IPW and AIPW use normalised
    (Hájek) ATT weights (:func:`att_estimates`). Raises :class:`FitError` when the propensity logit does
    not converge; bootstrap replicates whose logit does not converge are counted, and more than
    ``max_failed_share`` of them makes IPW/AIPW not estimable.
    """
    d = (df[arm_col].astype(str) != str(control_arm)).to_numpy()
    design = _covariate_design(df, covariates, formula)
    x = design.X
    y = df[outcome].to_numpy(float)
    e = propensity(x, d)
    point = att_estimates(y, d, x, e)
    naive = welch(y[d], y[~d])
    rng = np.random.default_rng(seed)
    idx_t, idx_c = np.flatnonzero(d), np.flatnonzero(~d)
    draws, failed = [], 0
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(idx_t, len(idx_t)), rng.choice(idx_c, len(idx_c))])
        try:
            draws.append(att_estimates(y[idx], d[idx], x.iloc[idx].reset_index(drop=True), record=False))
        except (FitError, np.linalg.LinAlgError, ValueError):
            failed += 1
    boot = pd.DataFrame(draws, columns=["naive", "ipw", "aipw"])
    problem = ""
    if n_boot and failed > max_failed_share * n_boot:
        problem = (f"the propensity model did not converge in {failed} of {n_boot} bootstrap replicates "
                   "(near-separation): no interval is shown")
    rows = [{"method": METHODS["naive"], "key": "naive", "estimate": naive["estimate"],
             "ci_low": naive["ci_low"], "ci_high": naive["ci_high"], "note": ""}]
    for key, name in (("ipw", METHODS["ipw"]), ("aipw", METHODS["aipw"])):
        lo, hi, why = (math.nan, math.nan, problem) if problem else percentile_interval(boot[key], point[key])
        if not why and failed:
            why = f"{failed} of {n_boot} bootstrap replicates left out (propensity model did not converge)"
        rows.append({"method": name, "key": key, "estimate": point[key], "ci_low": lo, "ci_high": hi, "note": why})
    w = att_weights(e, d)
    balance = pd.DataFrame({"covariate": x.columns, "smd_before": smd(x, d).to_numpy(),
                            "smd_after": smd(x, d, w).to_numpy()})
    ess = float(w[~d].sum() ** 2 / np.sum(w[~d] ** 2))
    return ObservationalResult(pd.DataFrame(rows), e, balance, ess, boot, failed, problem, design, n_boot)


def naive_only(df: pd.DataFrame, outcome: str, arm_col: str, control_arm: Any, covariates: list[str],
               problem: str, formula: str | None = None) -> ObservationalResult:
    """The naive gap and the unweighted balance when the propensity model cannot be fitted."""
    d = (df[arm_col].astype(str) != str(control_arm)).to_numpy()
    design = _covariate_design(df, covariates, formula)
    x = design.X
    y = df[outcome].to_numpy(float)
    naive = welch(y[d], y[~d])
    rows = [{"method": METHODS["naive"], "key": "naive", "estimate": naive["estimate"],
             "ci_low": naive["ci_low"], "ci_high": naive["ci_high"], "note": ""}]
    rows += [{"method": name, "key": key, "estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan,
              "note": f"not estimable: {problem}"}
             for key, name in (("ipw", METHODS["ipw"]), ("aipw", METHODS["aipw"]))]
    balance = pd.DataFrame({"covariate": x.columns, "smd_before": smd(x, d).to_numpy(), "smd_after": math.nan})
    return ObservationalResult(pd.DataFrame(rows), None, balance, math.nan, pd.DataFrame(), 0, problem, design)


@dataclass
class PanelLog:
    """A panel kept in its engine (Parquet files, a database table): ``unit``, ``period`` (text) and the
    outcomes, checked by :func:`query_panel`. The functions below take it in place of a DataFrame and compute
    the per-unit means and per-period summaries there; only those come back."""

    table: Any  # Ibis expression with columns unit, period, outcomes
    source: str

    def frame(self, expr: Any) -> pd.DataFrame:
        return engines.fetch(expr, self.source).to_pandas()


def query_panel(path: Any, unit_col: str, period_col: str, outcomes: list[str], ledger: Ledger | None,
                engine: str = "duckdb", spark_master: str = "local[*]") -> PanelLog:
    """The panel at ``path`` checked by queries in ``engine`` (:func:`cxresearch.engine.checked_table`: the
    contract of :func:`load_inputs`, each unit and period once)."""
    opened = engines.open_table(path, "loyalty panel", engine, spark_master)
    contract = Contract("loyalty panel", (Column(unit_col, "string", role="id"), Column(period_col, "string"),
                                          *[Column(o, "float") for o in outcomes]), key=(unit_col, period_col))
    table = engines.checked_table(opened, contract, ledger=ledger)
    return PanelLog(table.rename(unit=unit_col, period=period_col), opened.source)


def panel_periods(panel: pd.DataFrame | PanelLog, period_col: str) -> list[str]:
    """The panel's periods as text, in order."""
    if isinstance(panel, PanelLog):
        t = panel.table
        return sorted(panel.frame(t.select(p=t.period).distinct())["p"].astype(str))
    return sorted(panel[period_col].astype(str).unique())


def panel_changes(panel: pd.DataFrame | PanelLog, units: pd.DataFrame, unit_col: str, period_col: str, outcome: str,
                  pre_end: str, post_start: str, until: str | None = None) -> pd.DataFrame:
    """Per unit: mean outcome before ``pre_end`` (exclusive) and from ``post_start`` on (before ``until``, when
    given), and the change; units of ``units`` with both."""
    if isinstance(panel, PanelLog):
        t = panel.table
        after = t.period >= post_start if until is None else (t.period >= post_start) & (t.period < until)
        means = t.group_by("unit").aggregate(pre=t[outcome].mean(where=t.period < pre_end),
                                             post=t[outcome].mean(where=after),
                                             n_pre=t.count(where=t.period < pre_end), n_post=t.count(where=after))
        means = means.filter((means.n_pre > 0) & (means.n_post > 0))
        m = panel.frame(means.select("unit", "pre", "post")).set_index("unit").rename_axis(unit_col)
        pre, post = m["pre"].astype(float), m["post"].astype(float)
    else:
        p = panel[[unit_col, period_col, outcome]]
        p = p if until is None else p[p[period_col] < until]
        pre = p[p[period_col] < pre_end].groupby(unit_col)[outcome].mean()
        post = p[p[period_col] >= post_start].groupby(unit_col)[outcome].mean()
    out = units.set_index(unit_col).join(pre.rename("pre"), how="inner").join(post.rename("post"), how="inner")
    out["change"] = out["post"] - out["pre"]
    return out


def difference_in_differences(changes: pd.DataFrame, treated: np.ndarray) -> dict[str, float]:
    """(post - pre) of members minus that of non-members, Welch 95% interval over units."""
    ch = changes["change"].to_numpy(float)
    return welch(ch[treated], ch[~treated])


def event_study(panel: pd.DataFrame | PanelLog, units: pd.DataFrame, unit_col: str, period_col: str, outcome: str,
                treated: pd.Series, pre_end: str) -> pd.DataFrame:
    """Member minus non-member gap per period, relative to each unit's pre-period mean, with 95% CIs (Welch;
    from each group's count, mean and variance per period when the panel stays in its engine)."""
    if isinstance(panel, PanelLog):
        import ibis

        t = panel.table
        base = t.group_by("unit").aggregate(base=t[outcome].mean(where=t.period < pre_end))
        linked = ibis.memtable(pd.DataFrame({"unit": treated.index.astype(str).to_numpy(object),
                                             "member": treated.to_numpy(bool)}))
        j = t.join(linked, "unit").join(base, "unit")
        j = j.mutate(rel=j[outcome] - j.base)
        j = j.filter(j.rel.notnull())
        g = panel.frame(j.group_by("period", "member").aggregate(n=j.count(), mean=j.rel.mean(),
                                                                 var=j.rel.var(how="sample")))
        rows = []
        for period, by in g.groupby(g["period"].astype(str), sort=True):
            m, c = by[by["member"]], by[~by["member"]]
            r = welch_from_moments(*(_moments(m)), *(_moments(c)))
            rows.append({"period": period, "gap": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]})
        return pd.DataFrame(rows)
    p = panel[[unit_col, period_col, outcome]].merge(units[[unit_col]], on=unit_col)
    base = p[p[period_col] < pre_end].groupby(unit_col)[outcome].mean()
    p = p.assign(rel=p[outcome] - p[unit_col].map(base), member=p[unit_col].map(treated))
    rows = []
    for period, g in p.groupby(period_col, sort=True):
        r = welch(g.loc[g["member"] == True, "rel"].dropna(), g.loc[g["member"] == False, "rel"].dropna())  # noqa: E712
        rows.append({"period": period, "gap": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]})
    return pd.DataFrame(rows)


def _moments(group: pd.DataFrame) -> tuple[float, float, int]:
    if group.empty:
        return math.nan, math.nan, 0
    row = group.iloc[0]
    return float(row["mean"]), float(row["var"]) if row["var"] is not None else math.nan, int(row["n"])


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
            return np.where(net > 0, self.setup_cost / np.where(net > 0, net, 1.0), np.inf)

    @property
    def break_even_effect(self) -> float:
        """Smallest effect per member and period at which the programme pays over the horizon."""
        return (self.cost_per_member + self.setup_cost / (self.horizon * self.members)) / self.margin


def money_summary(money: Money, effect: float, ci_low: float, ci_high: float, se: float | None = None,
                  draws: np.ndarray | None = None) -> dict[str, Any]:
    """ROI and payback with the effect's 95% interval mapped through the money model, and P(ROI > 0).

    ROI rises and payback falls with the effect, so the mapped intervals always contain their point
    estimates. P(ROI > 0) is the share of bootstrap ``draws`` of the effect above break-even when given,
    otherwise the normal approximation from ``se``. Numbers that cannot be computed are NaN.
    """
    be = money.break_even_effect
    roi_lo, roi_hi = float(money.roi(ci_low)), float(money.roi(ci_high))
    if draws is not None and len(draws):
        prob = float(np.mean(np.asarray(draws, float) > be))
    elif is_number(se) and se > 0 and is_number(effect):
        prob = float(stats.norm.sf((be - effect) / se))
    else:
        prob = math.nan
    return {
        "roi": float(money.roi(effect)), "roi_ci_low": roi_lo, "roi_ci_high": roi_hi, "prob_roi_positive": prob,
        "payback": float(money.payback_periods(effect)), "payback_ci_low": float(money.payback_periods(ci_high)),
        "payback_ci_high": float(money.payback_periods(ci_low)), "break_even_effect": be,
        "net_profit_horizon": float(money.horizon * money.net_per_period(effect) - money.setup_cost),
    }


def verdict_sentence(summary: dict[str, Any], extra_needed: int | None = None) -> tuple[str, str]:
    """Plain verdict and the claim verdict from the ROI interval ("not testable" without a finite interval)."""
    tested = verdict(summary.get("roi_ci_low"), summary.get("roi_ci_high"))
    if tested == "not testable":
        return "Cannot tell: the data do not give an interval for the effect.", tested
    if tested == "supported":
        return "The programme pays off.", tested
    if tested == "not supported":
        return "The programme does not pay off.", tested
    more = f" — need about {extra_needed:,} more customers per group" if extra_needed and extra_needed > 0 else ""
    return f"Cannot tell yet{more}.", tested


def payback_sentence(summary: dict[str, Any], setup_cost: float, period: str = "period") -> str:
    """Payback in plain words (numbers only): periods to earn back the set-up cost, with its interval."""
    if not setup_cost > 0:
        return "No set-up cost was given, so there is nothing to pay back."
    pb, lo, hi = summary["payback"], summary["payback_ci_low"], summary["payback_ci_high"]
    if not math.isfinite(pb):
        return "At the estimated effect the programme never earns back its set-up cost."
    upper = f"{hi:.1f} {period}s" if math.isfinite(hi) else "never (at the low end of the interval it loses money)"
    return f"Payback after {pb:.1f} {period}s (95% CI {lo:.1f} to {upper})."


@dataclass
class Effect:
    """The effect the money rests on: estimate, interval, standard error, group sizes and how it was estimated."""

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    n_treated: int
    n_control: int
    method: str
    draws: np.ndarray | None = None  # bootstrap draws when the interval is a bootstrap interval
    note: str = ""


@dataclass
class Payoff:
    """The money verdict: summary numbers, the plain sentence and the claim pieces.

    ``roi_draws`` (the ROI of every bootstrap draw of the effect) or ``roi_curve`` (ROI and density of the
    effect's normal sampling distribution, columns ``roi`` and ``density``) describe the ROI's uncertainty
    for :func:`plot_roi`.
    """

    summary: dict[str, Any]
    sentence: str
    verdict: str
    extra_needed: int
    mde: float
    sd: float
    members: int
    test: str
    note: str | None = None
    money: Money | None = None
    effect: Effect | None = None
    testable: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    roi_draws: np.ndarray | None = None
    roi_curve: pd.DataFrame | None = None


def roi_distribution(money: Money, effect: Effect) -> tuple[np.ndarray | None, pd.DataFrame | None]:
    """The ROI's uncertainty: ROI of the bootstrap draws (AIPW), or ROI and density over ±4 standard errors
    of the effect's normal sampling distribution (None when the effect has no standard error)."""
    if effect.draws is not None and len(effect.draws):
        return np.asarray(money.roi(effect.draws), float), None
    if not (is_number(effect.se) and effect.se > 0):
        return None, None
    grid = effect.estimate + effect.se * np.linspace(-4, 4, 401)
    return None, pd.DataFrame({"roi": money.roi(grid), "density": stats.norm.pdf(grid, effect.estimate, effect.se)})


def money_verdict(effect: Effect, margin: float, cost_per_member: float, horizon: float, setup_cost: float = 0.0,
                  min_group_size: int = 5, period: str = "period") -> Payoff:
    """Does it pay? ROI, payback, P(ROI > 0), break-even, the plain verdict and the next pilot's size.

    Not testable (no numbers, verdict "not testable") when the effect has no finite interval or a group
    is smaller than ``min_group_size``. ``period`` names the outcome period in the test text ("month").
    """
    members = int(effect.n_treated)
    test = (f"return on investment over {horizon:g} {period}s = (margin × effect − cost) / cost, with the effect "
            f"from {effect.method}; the effect's 95% interval carried through this calculation")
    small = min(effect.n_treated, effect.n_control) < min_group_size
    if small or not all(is_number(v) for v in (effect.estimate, effect.ci_low, effect.ci_high)):
        why = (f"fewer than {min_group_size} customers in a group" if small else
               effect.note or "the effect has no interval in these data")
        return Payoff({}, f"Cannot tell: {why}.", "not testable", 0, math.nan, math.nan, members, test,
                      why, None, effect, False)
    money = Money(margin=margin, cost_per_member=cost_per_member, horizon=horizon, members=members,
                  setup_cost=setup_cost)
    m = money_summary(money, effect.estimate, effect.ci_low, effect.ci_high, effect.se, effect.draws)
    # per-customer spread implied by the effect's standard error
    sd = effect.se / math.sqrt(1 / effect.n_treated + 1 / effect.n_control) if is_number(effect.se) else math.nan
    needed = customers_needed(sd, effect.estimate - m["break_even_effect"])
    extra = needed - members if needed > 0 else -1
    sentence, tested = verdict_sentence(m, extra)
    mde = minimum_detectable_effect(sd, members, members)
    roi_draws, roi_curve = roi_distribution(money, effect)
    return Payoff(m, sentence, tested, max(extra, 0) if tested == "inconclusive" else 0, mde, sd, members, test,
                  effect.note or None, money, effect, roi_draws=roi_draws, roi_curve=roi_curve)


# ---------------------------------------------------------------------------------------------
# inputs


def check_design(design: str) -> None:
    """Refuse a design other than "randomized" or "observational" (:class:`ParameterError`)."""
    if design not in UNIT_TABLES:
        raise ParameterError(f"design must be 'randomized' or 'observational', got {design!r}. "
                             "Example: -p design randomized")


def tables(design: str, data_path: str | None = None, panel_path: str | None = None) -> dict[str, str | None]:
    """The tables a run reads, for ``cx.notebook.start(tables=...)``: the unit table (and, for an open
    roll-out, the panel); ``None`` paths are taken from the synthetic world when no path is given at all."""
    check_design(design)
    if design == "randomized":
        return {UNIT_TABLES[design]: data_path}
    return {UNIT_TABLES[design]: data_path, PANEL_TABLE: panel_path}


@dataclass
class PayoffInputs:
    """The unit table (and panel), and what is known about the data."""

    units: pd.DataFrame
    panel: pd.DataFrame | PanelLog | None  # a PanelLog when it stays in an engine
    synthetic: bool
    source: str


def load_inputs(design: str, source: Any, ledger: Ledger | None = None, *, unit_col: str | None, arm_col: str,
                outcome_cols: list[str], covariate_cols: list[str], period_col: str = "month",
                formula: str | None = None, engine: str = "duckdb", spark_master: str = "local[*]") -> PayoffInputs:
    """Read the unit table (one row per unit) and, for observational designs, the panel if the source has one.

    A panel in Parquet files or a database table stays there (:class:`PanelLog`; checked by queries in
    ``engine``, ``duckdb`` or ``spark``): the per-unit means and per-period summaries of the
    difference-in-differences are computed where it is. ``engine="pandas"`` reads it whole.

    ``source`` is a :class:`cxresearch.sources.Source` with the tables of :func:`tables`; every read is
    recorded in ``ledger`` (the run's ``results.ledger``). The columns of ``covariate_cols`` and of the
    covariate ``formula`` must be present, complete and finite.
    """
    check_design(design)
    if engine not in engines.ENGINES:
        raise ParameterError(f"-p engine must be one of {list(engines.ENGINES)}, got {engine!r}.")
    path = source.path(UNIT_TABLES[design])
    if path is None:
        raise ParameterError("Give data_path, the table with one row per customer (a panel alone cannot be "
                             "analysed). Example: -p data_path units.csv")
    panel_path = source.path(PANEL_TABLE) if design == "observational" else None
    unit_outcomes = [] if panel_path is not None else outcome_cols
    cols = [Column(arm_col, "string"), *[Column(o, "float") for o in unit_outcomes]]
    if unit_col:
        cols.append(Column(unit_col, "string", role="id"))
    units = read_table(path, Contract("loyalty units", tuple(cols), key=(unit_col,) if unit_col else ()),
                       ledger=ledger)
    where = f"'loyalty units' ({path})"
    if units.empty:
        raise InputError(where, ["the table has no rows. Fix: export the customers with their arm and outcomes."])
    needed = list(dict.fromkeys([*covariate_cols, *(formula_variables(formula) if formula else [])]))
    missing = [c for c in needed if c not in units.columns]
    if missing:
        raise InputError(where, [
            f"covariate column '{c}' is missing. Columns: {list(units.columns)}. Fix: correct covariate_cols"
            + (" or covariate_formula." if formula else ".") for c in missing])
    empty = [c for c in needed if units[c].isna().any()]
    if empty:
        raise InputError(where, [
            f"covariate '{c}' has {int(units[c].isna().sum())} empty value(s). Fix: fill them or leave it out."
            for c in empty])
    bad = [c for c in needed if pd.api.types.is_numeric_dtype(units[c])
           and not np.isfinite(units[c].astype(float)).all()]
    if bad:
        raise InputError(where, [f"covariate '{c}' has infinite values. Fix: correct them or leave it out."
                                 for c in bad])
    panel = None
    if panel_path is not None:
        if not unit_col:
            raise InputError("'panel'", ["a panel needs unit_col to link units. Fix: set unit_col."])
        if engines.in_engine(panel_path, engine):
            panel = query_panel(panel_path, unit_col, period_col, outcome_cols, ledger, engine, spark_master)
        else:
            pcols = (Column(unit_col, "string", role="id"), Column(period_col, "string"),
                     *[Column(o, "float") for o in outcome_cols])
            panel = read_table(panel_path, Contract("loyalty panel", pcols, key=(unit_col, period_col)),
                               ledger=ledger)
    return PayoffInputs(units, panel, bool(source.synthetic), source.description)


def column_defaults(design: str, arm_col: str | None = None, outcome_cols: list[str] | None = None,
                    covariate_cols: list[str] | None = None) -> dict[str, Any]:
    """Column names of the design, defaults filled in: the documented table layout (README, "Your own data"),
    which the synthetic world follows."""
    randomized = design == "randomized"
    return {"arm_col": arm_col or ("arm" if randomized else "member"),
            "outcome_cols": list(outcome_cols) if outcome_cols is not None else
            (["spend", "visits", "converted", "retained"] if randomized else ["spend"]),
            "covariate_cols": list(covariate_cols) if covariate_cols is not None else
            (["pre_spend", "pre_visits"] if randomized else
             ["pre_spend_12m", "pre_visits_12m", "tenure_months", "segment", "region"])}


def resolve_defaults(design: str, source_defaults: Mapping[str, Any] | None = None, **given: Any) -> dict[str, Any]:
    """Fill parameters left as None with the design's defaults and what the data say about themselves.

    ``source_defaults`` (``source.defaults``) may hold the enrolment window (``pre_end``, ``post_start``),
    the ``margin`` and the ``cost_per_member`` (numbers, or mappings design → number); a user's files hold none of them, so a user's
    panel needs its window and every run its money given. Checks the money parameters: ``margin`` in (0, 1],
    costs not negative and some cost to earn back, ``horizon`` above 0. ``control_arm`` is returned as text.
    """
    randomized = design == "randomized"
    data = dict(source_defaults or {})

    def per_design(value: Any) -> Any:  # a number, or a mapping design -> number
        return value.get(design) if isinstance(value, Mapping) else value

    defaults: dict[str, Any] = {
        **column_defaults(design),
        "control_arm": "control" if randomized else "0",
        "horizon": 4 if randomized else 12,
        **{k: data.get(k) for k in WINDOW},
        "margin": per_design(data.get("margin")),
        "cost_per_member": per_design(data.get("cost_per_member")),
    }
    out = {k: (v if v is not None else defaults.get(k)) for k, v in given.items()}
    missing = [k for k in ("margin", "cost_per_member") if k in given and out.get(k) is None]
    if missing:
        raise ParameterError(
            f"Give {' and '.join(missing)} for your own data (gross margin on incremental spend as a share, "
            "programme cost per member and outcome period). Example: -p margin 0.3 -p cost_per_member 0.1")
    problems = []
    if "margin" in out and not (is_number(out["margin"]) and 0 < float(out["margin"]) <= 1):
        problems.append(f"margin must be a share above 0 and at most 1 (e.g. 0.3 for 30%), got {out['margin']!r}")
    for k in ("cost_per_member", "setup_cost"):
        if k in out and out[k] is not None and not (is_number(out[k]) and float(out[k]) >= 0):
            problems.append(f"{k} must be a number of at least 0, got {out[k]!r}")
    if "horizon" in out and not (is_number(out["horizon"]) and float(out["horizon"]) > 0):
        problems.append(f"horizon must be a number of periods above 0, got {out['horizon']!r}")
    if not problems and "cost_per_member" in out and float(out["cost_per_member"]) == 0 \
            and float(out.get("setup_cost") or 0) == 0:
        problems.append("cost_per_member and setup_cost are both 0: a return on investment needs a cost")
    if problems:
        raise ParameterError("; ".join(problems) + ". Example: -p margin 0.3 -p cost_per_member 0.1 -p horizon 12")
    if "control_arm" in out:
        out["control_arm"] = str(out["control_arm"])
    return out


def match_control(values: pd.Series, control_arm: Any, column: str, source: str) -> str:
    """The label in ``values`` that is the control arm ``control_arm`` (given as text).

    Compared as text first ("No E-Mail", "0", "control"), then as numbers for numeric labels ("0" matches
    0 and 0.0). When nothing matches, one :class:`InputError` names the column and the values present.
    """
    text = values.astype(str).str.strip()
    target = str(control_arm).strip()
    if (text == target).any():
        return target
    number = pd.to_numeric(pd.Series([target]), errors="coerce").iloc[0]
    if pd.notna(number):
        as_num = pd.to_numeric(text, errors="coerce")
        hit = text[as_num == number]
        if len(hit):
            return str(pick(hit.value_counts(), "max"))
    present = sorted(text.unique(), key=str)
    shown = ", ".join(f"'{v}'" for v in present[:20]) + (f" (and {len(present) - 20} more)" if len(present) > 20 else "")
    raise InputError(source, [f"column '{column}': the control arm '{target}' (control_arm) does not occur. "
                              f"Values present: {shown}. Fix: set control_arm to one of them."])


def arm_label(arm: Any) -> str:
    """An arm as the reader sees it: its registered label (``labels`` parameter, :data:`COLUMN_LABELS`) or the
    value as it is in the data."""
    from cxresearch.display import LABELS

    return LABELS.user.get(str(arm), LABELS.get(str(arm), str(arm)))


def arm_sizes(labels: pd.Series, min_group_size: int) -> str:
    """"a = 1,234, b = <5": customers per arm (by :func:`arm_label`), counts below ``min_group_size`` hidden."""
    sizes = labels.value_counts()
    order = sorted(sizes.index, key=str)
    return ", ".join(f"{arm_label(k)} = {sizes[k]:,}" if sizes[k] >= min_group_size
                     else f"{arm_label(k)} = <{min_group_size}" for k in order)


def period_word(design: str, period_col: str, has_panel: bool) -> str:
    """How the outcome period reads: "month" for a monthly panel, "pilot period" for a pilot, else "period"."""
    if design == "randomized":
        return "pilot period"
    return "month" if has_panel and str(period_col).lower() in ("month", "months") else "period"


@dataclass
class Setup:
    """Inputs read and checked, parameters resolved, arms labelled as text.

    ``params`` holds every resolved parameter (column names, control arm, money, enrolment window);
    ``formula`` is the covariate formula the models use (given, or the covariates entered as given);
    ``currency`` the resolved currency ("" for a user's files unless given).
    """

    inputs: PayoffInputs
    units: pd.DataFrame
    params: dict[str, Any]
    control: str
    treated_arms: list[str]  # arms with at least min_group_size customers (sorted)
    small_arms: list[str]  # arms below min_group_size (not tested)
    sizes_text: str
    design: str = "randomized"
    formula: str = ""
    formula_given: bool = False
    currency: str = ""
    min_group_size: int = 5
    ledger: Ledger | None = None

    @property
    def randomized(self) -> bool:
        return self.design == "randomized"

    @property
    def money_outcome(self) -> str:
        """The first outcome: the one the money rests on."""
        return self.params["outcome_cols"][0]

    @property
    def period(self) -> str:
        return period_word(self.design, self.params["period_col"], self.inputs.panel is not None)


def prepare(design: str, source: Any, ledger: Ledger | None = None, *, unit_col: str | None, arm_col: str | None,
            control_arm: Any, outcome_cols: list[str] | None, covariate_cols: list[str] | None,
            margin: float | None, cost_per_member: float | None, horizon: float | None, setup_cost: float = 0.0,
            covariate_formula: str | None = None, period_col: str = "month", pre_end: str | None = None,
            post_start: str | None = None, currency: str | None = None, min_group_size: int = 5,
            engine: str = "duckdb", spark_master: str = "local[*]") -> Setup:
    """Read and check everything the notebook needs before any analysis.

    ``source`` is a :class:`cxresearch.sources.Source` with the tables of :func:`tables`; reads and
    exclusions are recorded in ``ledger``. ``covariate_formula`` (Wilkinson syntax) says how the
    pre-period covariates enter the models; without one ``covariate_cols`` enter as given (and without
    those, the columns the formula uses are the covariates). ``currency`` None: the data's own
    (``source.defaults["currency"]``: RUB for the synthetic world, none for a user's files). Refuses (one clear message) when the control arm does not occur, when
    there is no second arm, when the control group or every other arm is smaller than ``min_group_size``
    (nothing can be tested), or when a user's panel comes without its enrolment window. ``engine`` and
    ``spark_master``: where a panel in Parquet files is summarised (:func:`load_inputs`).
    """
    check_design(design)
    if covariate_cols is None and covariate_formula:
        covariate_cols = formula_variables(covariate_formula)
    names = column_defaults(design, arm_col, outcome_cols, covariate_cols)
    inputs = load_inputs(design, source, ledger, unit_col=unit_col, arm_col=names["arm_col"],
                         outcome_cols=names["outcome_cols"], covariate_cols=names["covariate_cols"],
                         period_col=period_col, formula=covariate_formula, engine=engine,
                         spark_master=spark_master)
    p = resolve_defaults(design, dict(getattr(source, "defaults", {}) or {}),
                         arm_col=arm_col, control_arm=control_arm, outcome_cols=outcome_cols,
                         covariate_cols=names["covariate_cols"], margin=margin, cost_per_member=cost_per_member,
                         horizon=horizon, pre_end=pre_end, post_start=post_start, setup_cost=setup_cost)
    p.update(unit_col=unit_col, period_col=period_col)
    if inputs.panel is not None and not (p["pre_end"] and p["post_start"]):
        raise ParameterError("A panel needs its enrolment window: give pre_end (first period of the window) and "
                             "post_start (first period after it). Example: -p pre_end 2024-04 -p post_start 2024-07")
    col = p["arm_col"]
    where = f"'loyalty units' ({source.path(UNIT_TABLES[design]) if not inputs.synthetic else 'synthetic world'})"
    labels = inputs.units[col].astype(str).str.strip()
    control = match_control(labels, p["control_arm"], col, where)
    units = inputs.units.assign(**{col: labels})
    sizes = labels.value_counts()
    others = sorted((a for a in sizes.index if a != control), key=str)
    if not others:
        raise NotEstimable(f"Column '{col}' of {where} has only the control arm '{control}' "
                           f"({sizes[control]:,} customers): there is nothing to compare it with. Fix: include the "
                           "customers of the programme arm(s), or check arm_col.")
    if sizes[control] < min_group_size:
        raise NotEstimable(f"The control arm '{control}' of column '{col}' has fewer than {min_group_size} customers "
                           "(min_group_size): no comparison can be tested. Fix: include more control customers.")
    if design == "observational":
        treated = int(sizes[others].sum())
        small = [] if treated >= min_group_size else others
        ok = others if treated >= min_group_size else []
    else:
        ok = [a for a in others if sizes[a] >= min_group_size]
        small = [a for a in others if sizes[a] < min_group_size]
    if not ok:
        raise NotEstimable(f"Every arm of column '{col}' other than the control '{control}' has fewer than "
                           f"{min_group_size} customers (min_group_size): no effect can be tested. Fix: include "
                           "more customers of the programme arm.")
    for out_col in p["outcome_cols"] if design == "randomized" or inputs.panel is None else []:
        if out_col not in units:
            raise InputError(where, [f"outcome column '{out_col}' is missing. Fix: correct outcome_cols."])
    formula = covariate_formula.strip() if covariate_formula else formula_of(p["covariate_cols"])
    currency = currency or (getattr(source, "defaults", {}) or {}).get("currency", "")
    return Setup(inputs, units, p, control, ok, small, arm_sizes(labels, min_group_size), design, formula,
                 bool(covariate_formula), currency, min_group_size, ledger)


# ---------------------------------------------------------------------------------------------
# analyses


@dataclass
class RandomizedAnalysis:
    """Effects per arm and outcome, and the effect the money rests on."""

    table: pd.DataFrame
    effect: Effect
    arm: str
    adjusted: bool
    binary: list[str] = field(default_factory=list)  # 0/1 outcomes: their differences are shares (percentage points)
    design: DesignMatrix | None = None  # the covariates of the regression adjustment

    @property
    def references(self) -> dict[str, str]:
        return dict(self.design.references) if self.design is not None else {}


def analyse_randomized(setup: Setup) -> RandomizedAnalysis:
    """Effects of every testable arm on every outcome; the money effect is the first arm (sorted) on the
    first outcome, regression-adjusted when there are covariates (``setup.formula``)."""
    p = setup.params
    design = design_matrix(setup.units, setup.formula) if setup.formula else None
    table = randomized_effects(setup.units, p["arm_col"], setup.control, p["outcome_cols"], p["covariate_cols"],
                               min_group_size=1, formula=setup.formula)
    table = table[table["arm"].isin(setup.treated_arms)].reset_index(drop=True)
    for col, adj in (("p_value_holm", "p_value"), ("adjusted_p_value_holm", "adjusted_p_value")):
        if col in table:
            table[col] = _holm_where_finite(table[adj])
    adjusted = "adjusted" in table
    arm = setup.treated_arms[0]
    row = table[(table["arm"] == arm) & (table["outcome"] == setup.money_outcome)].iloc[0]
    pre = "adjusted_" if adjusted else ""
    est = row["adjusted"] if adjusted else row["estimate"]
    effect = Effect(float(est), float(row[f"{pre}ci_low"]), float(row[f"{pre}ci_high"]), float(row[f"{pre}se"]),
                    int(row["n_treated"]), int(row["n_control"]),
                    f"the randomized pilot, {plain(arm)} vs {plain(setup.control)} ("
                    + ("adjusted for what customers did before, robust interval" if adjusted else "Welch interval") + ")",
                    note=row["note"] or "")
    binary = [o for o in p["outcome_cols"] if setup.units[o].dropna().isin([0, 1]).all()]
    return RandomizedAnalysis(table, effect, arm, adjusted, binary, design)


@dataclass
class ObservationalAnalysis:
    """Everything the observational part of the report shows."""

    result: ObservationalResult
    treated: np.ndarray
    did: dict[str, float] | None
    event: pd.DataFrame | None
    placebo: dict[str, float] | None
    primary: str  # "did" or "aipw"
    draws: np.ndarray  # bootstrap draws of the primary effect (AIPW); empty for DiD
    pre_gap: dict[str, float]  # members minus non-members before joining (Welch)
    pre_covariate: str | None = None  # the covariate compared before joining (None: the outcome itself)
    estimates: pd.DataFrame | None = None  # every method, DiD included
    effect: Effect | None = None
    dropped_units: int = 0
    outcome: str = ""
    pre_from_outcome: bool = False  # pre_gap compares the outcome's own mean before the enrolment window

    @property
    def design(self) -> DesignMatrix | None:
        return self.result.design

    @property
    def references(self) -> dict[str, str]:
        return dict(self.design.references) if self.design is not None else {}


def analyse_observational(units: pd.DataFrame, panel: pd.DataFrame | None, *, unit_col: str | None, arm_col: str,
                          control_arm: str, outcome: str, covariates: list[str], formula: str | None = None,
                          period_col: str = "month", pre_end: str | None = None, post_start: str | None = None,
                          n_boot: int = 300, seed: int = 0, min_group_size: int = 5,
                          ledger: Ledger | None = None) -> ObservationalAnalysis:
    """Naive gap, IPW, AIPW and — with a panel — difference-in-differences, event study and a placebo.

    With a panel the outcome for IPW/AIPW is the mean per period from ``post_start`` on, and DiD compares
    each unit's change from its mean before ``pre_end`` (both required with a panel). The placebo
    pretends the programme started in the middle of the pre-period: its DiD should be near zero. With a
    panel DiD is the primary estimate and IPW/AIPW are side analyses (not estimable when the propensity
    model does not converge); without one AIPW is primary and a propensity model that does not converge
    stops the run (:class:`FitError`). Self-selection compares members and non-members before joining on
    the outcome's own mean before ``pre_end`` (with a panel) or on the first numeric covariate. Units left
    out for lack of panel periods are recorded in ``ledger``.
    """
    data, y_col = units.copy(), outcome
    did = event = placebo = None
    dropped = 0
    has_panel = panel is not None and bool(unit_col)
    if has_panel:
        if not (pre_end and post_start):
            raise ParameterError("A panel needs its enrolment window: give pre_end and post_start. "
                                 "Example: -p pre_end 2024-04 -p post_start 2024-07")
        where = "'loyalty panel'"
        periods = panel_periods(panel, period_col)
        if pre_end > post_start:
            raise ParameterError(f"pre_end ({pre_end}) must not be after post_start ({post_start}).")
        if not any(q < pre_end for q in periods) or not any(q >= post_start for q in periods):
            raise InputError(where, [f"column '{period_col}': the panel has periods {periods[0]} to {periods[-1]}; "
                                     f"it needs periods before pre_end ({pre_end}) and from post_start "
                                     f"({post_start}) on. Fix: set pre_end and post_start inside that range."])
        ch = panel_changes(panel, units[[unit_col]], unit_col, period_col, outcome, pre_end, post_start)
        # internal names: the unit table may have its own "pre"/"post"/"change" columns
        data = units.set_index(unit_col).join(ch[["pre", "post", "change"]].add_prefix("__did_"),
                                              how="inner").reset_index()
        dropped = len(units) - len(data)
        (ledger if ledger is not None else Ledger()).exclude(
            "loyalty units", "panel", "units without panel periods both before pre_end and from post_start on",
            dropped, len(units))
        y_col = "__did_post"
    treated = (data[arm_col].astype(str) != str(control_arm)).to_numpy()
    if min(treated.sum(), (~treated).sum()) < min_group_size:
        raise NotEstimable(f"After linking the panel, members or non-members number fewer than {min_group_size} "
                           "(min_group_size): no effect can be tested. Fix: check that the panel covers the units.")
    try:
        result = observational(data, y_col, arm_col, control_arm, covariates, n_boot=n_boot, seed=seed,
                               formula=formula)
    except FitError as exc:
        if not has_panel:
            raise
        result = naive_only(data, y_col, arm_col, control_arm, covariates, str(exc), formula=formula)
    est = result.estimates
    draws = np.array([])
    if has_panel:
        did = difference_in_differences(pd.DataFrame({"change": data["__did_change"]}), treated)
        member_of = pd.Series(treated, index=data[unit_col])
        event = event_study(panel, data[[unit_col]], unit_col, period_col, outcome, member_of, pre_end)
        pre_periods = [q for q in periods if q < pre_end]
        if len(pre_periods) >= 2:
            mid = pre_periods[len(pre_periods) // 2]
            fake = panel_changes(panel, data[[unit_col]], unit_col, period_col, outcome, mid, mid, until=pre_end)
            placebo = difference_in_differences(fake, member_of.reindex(fake.index).to_numpy())
        est = pd.concat([est, pd.DataFrame([{"method": METHODS["did"], "key": "did",
                                             **{k: did[k] for k in ("estimate", "ci_low", "ci_high")},
                                             "note": "" if is_number(did["ci_low"]) else "no spread: not testable"}])],
                        ignore_index=True)
        primary = "did"
        effect = Effect(did["estimate"], did["ci_low"], did["ci_high"], did["se"], int(treated.sum()),
                        int((~treated).sum()), "difference-in-differences (Welch interval)")
    else:
        primary = "aipw"
        a = est.set_index("key").loc["aipw"]
        draws = result.boot["aipw"].to_numpy() if "aipw" in result.boot else np.array([])
        effect = Effect(float(a["estimate"]), float(a["ci_low"]), float(a["ci_high"]),
                        float(np.std(draws, ddof=1)) if len(draws) > 1 else math.nan, int(treated.sum()),
                        int((~treated).sum()), "doubly robust AIPW (bootstrap interval)", draws=draws,
                        note=a["note"])
    if has_panel:
        first, pre = None, data["__did_pre"]
    else:
        numeric = [c for c in covariates if c in data and pd.api.types.is_numeric_dtype(data[c])
                   and not pd.api.types.is_bool_dtype(data[c])]
        first = numeric[0] if numeric else None
        pre = data[first] if first else None
    pre_gap = welch(pre[treated], pre[~treated]) if pre is not None else {}
    return ObservationalAnalysis(result, treated, did, event, placebo, primary, draws, pre_gap, first, est, effect,
                                 dropped, outcome, has_panel)


def analyse(setup: Setup, n_boot: int = 300, seed: int = 0) -> RandomizedAnalysis | ObservationalAnalysis:
    """The analysis of the setup's design (:func:`analyse_randomized` or :func:`analyse_observational`).

    The covariate formula and its reference levels are recorded in the run's ledger (``results.json``
    notes and the report's appendix).
    """
    p = setup.params
    if setup.randomized:
        fx: RandomizedAnalysis | ObservationalAnalysis = analyse_randomized(setup)
        models = "the regression adjustment"
    else:
        fx = analyse_observational(setup.units, setup.inputs.panel, unit_col=p["unit_col"], arm_col=p["arm_col"],
                                   control_arm=setup.control, outcome=setup.money_outcome,
                                   covariates=p["covariate_cols"], formula=setup.formula, period_col=p["period_col"],
                                   pre_end=p["pre_end"], post_start=p["post_start"], n_boot=n_boot, seed=seed,
                                   min_group_size=setup.min_group_size, ledger=setup.ledger)
        models = "the propensity logit and the outcome regression (IPW and AIPW)"
    if setup.ledger is not None and fx.design is not None:
        refs = "; ".join(f"{k} = {v}" for k, v in fx.references.items())
        setup.ledger.note(f"Covariate formula of {models}: {fx.design.formula or 'none (no covariates)'} ("
                          + ("given as covariate_formula" if setup.formula_given else "covariates entered as given")
                          + (f"; reference levels: {refs})" if refs else ")"))
    return fx


def pays_off(setup: Setup, effect: Effect) -> Payoff:
    """The money verdict of ``effect`` with the setup's margin, cost, horizon and set-up cost (:func:`money_verdict`)."""
    p = setup.params
    return money_verdict(effect, p["margin"], p["cost_per_member"], p["horizon"], p["setup_cost"] or 0.0,
                         setup.min_group_size, period=setup.period)


# ---------------------------------------------------------------------------------------------
# claims, metrics and the money estimates a check compares with known values


def pre_period_measure(obs: ObservationalAnalysis, period: str = "period") -> str:
    """What members and non-members are compared on before joining, in words."""
    if obs.pre_from_outcome:
        return f"{plain(obs.outcome)} per {period} before the enrolment window"
    return plain(obs.pre_covariate) if obs.pre_covariate else "a number measured before joining"


def self_selection_claim(obs: ObservationalAnalysis, period: str = "period") -> Claim:
    """"Customers who joined were already heavier buyers": members minus non-members before joining (Welch).

    Compared on the outcome's own mean per ``period`` before the enrolment window when there is a panel
    (in the outcome's money), otherwise on the first numeric covariate (as a number).
    """
    g = obs.pre_gap
    n = int(min(obs.treated.sum(), (~obs.treated).sum()))
    what = pre_period_measure(obs, period)
    return Claim("members_were_heavier_buyers", "Customers who joined were already heavier buyers (self-selection)",
                 f"members minus non-members: {what} (measured before joining; Welch t-test)", g.get("estimate"),
                 g.get("ci_low"), g.get("ci_high"), g.get("p_value"), verdict(g.get("ci_low"), g.get("ci_high")), n,
                 None if g else "no numeric pre-period covariate was given", "money" if obs.pre_from_outcome else "",
                 f"Positive means members were higher than non-members on {what}"
                 + ("" if obs.pre_from_outcome else " before joining") if g else None)


def planted_roi(pay: Payoff, planted_effect: float | None) -> float | None:
    """The return on investment at the planted effect, through the same money model (None without one)."""
    if pay.money is None or not is_number(planted_effect):
        return None
    return float(pay.money.roi(planted_effect))


def payoff_claim(setup: Setup, pay: Payoff, planted_effect: float | None = None) -> Claim:
    """"The loyalty investment pays off": ROI over the horizon with its 95% interval (verdict from its sign).

    ``planted_effect``: a known effect on the money outcome (a simulation's), shown as the ROI it implies."""
    m, effect = pay.summary, pay.effect
    return Claim("loyalty_investment_pays_off", "The loyalty investment pays off", pay.test, m.get("roi"),
                 m.get("roi_ci_low"), m.get("roi_ci_high"), None, pay.verdict,
                 min(effect.n_treated, effect.n_control), pay.note, "share",
                 f"Return on investment over {setup.params['horizon']:g} {setup.period}s. Above 0%: the extra gross "
                 "profit is more than the programme costs; 100%: it is twice the cost",
                 planted_roi(pay, planted_effect))


def claims(setup: Setup, fx: RandomizedAnalysis | ObservationalAnalysis, pay: Payoff,
           planted_effect: float | None = None) -> list[Claim]:
    """The run's claims: the money verdict, and for an open roll-out the self-selection of members
    (``planted_effect``: a known effect on the money outcome, e.g. :func:`cxresearch.checks.loyalty_effect`)."""
    out = [payoff_claim(setup, pay, planted_effect)]
    if not setup.randomized:
        out.append(self_selection_claim(fx, setup.period))
    return out


def money_estimates(setup: Setup, fx: RandomizedAnalysis | ObservationalAnalysis) -> pd.DataFrame:
    """Every estimate of the effect on the money outcome, one row per method (randomized: per arm, CUPED-adjusted
    when covariates were given; observational: naive, regression, IPW, AIPW, difference-in-differences):
    ``method``, ``estimate``, ``ci_low``, ``ci_high``."""
    if setup.randomized:
        table = fx.table[fx.table["outcome"] == setup.money_outcome]
        cols = ["adjusted", "adjusted_ci_low", "adjusted_ci_high"] if fx.adjusted else ["estimate", "ci_low", "ci_high"]
        rows = pd.DataFrame({"method": table["arm"].map(plain) + ": " + table["outcome"].map(plain),
                             **dict(zip(["estimate", "ci_low", "ci_high"], (table[c] for c in cols), strict=True))})
    else:
        rows = fx.estimates[["method", "estimate", "ci_low", "ci_high"]]
    return rows.reset_index(drop=True)


def _interval(estimate: Any, ci_low: Any, ci_high: Any) -> dict[str, Any]:
    return {"estimate": estimate, "ci_low": ci_low, "ci_high": ci_high}


def metrics(setup: Setup, fx: RandomizedAnalysis | ObservationalAnalysis, pay: Payoff) -> list[dict[str, Any]]:
    """The run's metrics as keyword arguments of ``results.metric`` (name, value, headline, label, unit)."""
    period, money = setup.period, setup.money_outcome
    out: list[dict[str, Any]] = []
    if setup.randomized:
        table = fx.table
        out.append({"name": "effects", "value": {
            a: {r.outcome: {"estimate": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high, "p_value": r.p_value}
                for r in g.itertuples()} for a, g in table.groupby("arm")}})
        if fx.adjusted:
            out.append({"name": "cuped_variance_reduction", "unit": "share", "value": {
                a: dict(zip(g["outcome"], g["variance_reduction"], strict=True)) for a, g in table.groupby("arm")}})
    else:
        e = fx.estimates.set_index("key")
        iv = {k: _interval(e.at[k, "estimate"], e.at[k, "ci_low"], e.at[k, "ci_high"]) for k in e.index}
        out.append({"name": "effects", "value": {"member": {money: {
            **iv[fx.primary], "p_value": fx.did["p_value"] if fx.primary == "did" else None}}}})
        out.append({"name": "naive_gap", "value": iv["naive"], "headline": True, "unit": "money",
                    "label": f"members vs non-members as observed, per {period} (naive gap)"})
        if is_number(e.at["ipw", "estimate"]):
            out.append({"name": "ipw_effect", "value": iv["ipw"], "unit": "money"})
            out.append({"name": "aipw_effect", "value": iv["aipw"], "headline": fx.primary == "aipw", "unit": "money",
                        "label": f"effect per member and {period} (doubly robust AIPW)"})
            out.append({"name": "effective_n_controls", "value": fx.result.effective_n_controls})
            out.append({"name": "bootstrap_replicates_failed", "value": fx.result.failed_replicates})
        if "did" in iv:
            out.append({"name": "did_effect", "value": iv["did"], "headline": True, "unit": "money",
                        "label": f"effect per member and {period} (difference-in-differences)"})
        if fx.placebo is not None:
            out.append({"name": "placebo_did", "unit": "money",
                        "value": _interval(fx.placebo["estimate"], fx.placebo["ci_low"], fx.placebo["ci_high"])})
    if pay.testable:
        m = pay.summary
        out.append({"name": "roi", "value": _interval(m["roi"], m["roi_ci_low"], m["roi_ci_high"]), "headline": True,
                    "label": "return on investment (95% CI)", "unit": "share"})
        out.append({"name": "prob_roi_positive", "value": m["prob_roi_positive"], "headline": True,
                    "label": "plausible effects with ROI above 0%", "unit": "share"})
        out.append({"name": "break_even_effect", "value": m["break_even_effect"], "unit": "money"})
        if (setup.params["setup_cost"] or 0) > 0:
            out.append({"name": "payback_periods", "unit": "months" if period == "month" else None,
                        "value": _interval(m["payback"], m["payback_ci_low"], m["payback_ci_high"])})
        out.append({"name": "mde_next_pilot", "value": pay.mde, "unit": "money"})
        out.append({"name": "customers_needed_per_group", "value": pay.extra_needed})
    return out


# ---------------------------------------------------------------------------------------------
# presentation: plain-named tables and sentences for the report


def design_sentence(setup: Setup) -> str:
    """The design and the group sizes in words (groups below ``min_group_size`` shown as "<5")."""
    col = setup.params["arm_col"]
    if not setup.randomized:
        sizes = setup.units[col].value_counts()
        members = int(sizes.drop(setup.control, errors="ignore").sum())
        n0 = int(sizes.get(setup.control, 0))
        return (f"open roll-out (customers chose whether to join): {members:,} members and {n0:,} non-members, "
                f"told apart by the column {plain(col)}")
    return f"randomized pilot, customers per group: {setup.sizes_text}"


def estimates_display(est: pd.DataFrame, currency: str = "", period: str = "period") -> pd.DataFrame:
    """Observational estimates with plain headers: method, effect (money per member and period), 95% CI."""
    head = f"effect per member and {period}" + (f" ({currency})" if currency else "")
    out = est[["method", "estimate", "ci_low", "ci_high", "note"]].rename(columns={"estimate": head})
    return out.drop(columns="note") if (out["note"].fillna("") == "").all() else out


def effects_display(table: pd.DataFrame, adjusted: bool, money_outcome: str | None = None, currency: str = "",
                    binary: list[str] | None = None) -> pd.DataFrame:
    """Randomized effects per group and outcome with plain headers, each difference in its outcome's unit.

    Money outcomes in ``currency``, ``binary`` (0/1) outcomes in percentage points, others as numbers.
    """
    units = [_outcome_unit(o, money_outcome, binary) for o in table["outcome"]]
    out = pd.DataFrame({"group": table["arm"].map(plain), "outcome": table["outcome"].map(plain),
                        "difference": [fmt_value(v, u, currency) for v, u in zip(table["estimate"], units, strict=True)],
                        "95% CI": [fmt_interval(lo, hi, u, currency) for lo, hi, u in
                                   zip(table["ci_low"], table["ci_high"], units, strict=True)],
                        "p-value (Holm)": table["p_value_holm"]})
    if adjusted:
        out["adjusted difference"] = [fmt_value(v, u, currency) for v, u in zip(table["adjusted"], units, strict=True)]
        out["adjusted 95% CI"] = [fmt_interval(lo, hi, u, currency) for lo, hi, u in
                                  zip(table["adjusted_ci_low"], table["adjusted_ci_high"], units, strict=True)]
        out["adjusted p-value (Holm)"] = table["adjusted_p_value_holm"]
        out["variance removed"] = table["variance_reduction"]
    out["customers (group / control)"] = [f"{a:,} / {b:,}" for a, b in
                                          zip(table["n_treated"], table["n_control"], strict=True)]
    if (table["note"].fillna("") != "").any():
        out["note"] = table["note"]
    return out


def _outcome_unit(outcome: str, money_outcome: str | None, binary: list[str] | None) -> str:
    if outcome == money_outcome:
        return "money"
    return "pp" if outcome in (binary or []) else ""


# ---------------------------------------------------------------------------------------------
# plots (take results, optional ax, compute nothing, return the axes)


def _percent_axis(ax: plt.Axes, axis: str = "x", whole: float = 100) -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(PercentFormatter(whole, decimals=0))


def plot_effects(table: pd.DataFrame, est: str = "estimate", lo: str = "ci_low", hi: str = "ci_high",
                 label: str = "label", ax: plt.Axes | None = None, title: str = "Effect with 95% CI",
                 xlabel: str = "") -> plt.Axes:
    """Point estimates with intervals; the dashed line is no effect. Rows without an interval are left out."""
    from cxresearch.plots import MUTED, plot_intervals

    t = table[table[[est, lo, hi]].apply(pd.to_numeric, errors="coerce").notna().all(axis=1)]
    ax = plot_intervals(t[label], t[est], t[lo], t[hi], ax, xlabel=xlabel, title=title, reference=0.0)
    top = len(t) - 1  # the reference line's name, in headroom above the first row
    ax.set_ylim(-0.6, top + 0.9)
    ax.text(0, top + 0.55, " no effect", va="center", fontsize=8.5, color=MUTED)
    return ax


def plot_randomized(table: pd.DataFrame, adjusted: bool, money_outcome: str | None = None, currency: str = "",
                    binary: list[str] | None = None, axes: np.ndarray | None = None) -> np.ndarray:
    """One panel per outcome (each on its own scale): the effect of every programme group vs control, 95% CI.

    The adjusted estimate is shown when ``adjusted``; the money outcome's axis is labelled with ``currency``;
    ``binary`` (0/1) outcomes are shown in percentage points.
    """
    from cxresearch.plots import label, plot_intervals

    outcomes = list(dict.fromkeys(table["outcome"]))
    if axes is None:
        n_arms = table["arm"].nunique()
        cols = min(2, len(outcomes))
        rows = int(np.ceil(len(outcomes) / cols))
        _, axes = plt.subplots(rows, cols, figsize=(11 if cols > 1 else 7.5, rows * (0.5 * n_arms + 1.6)),
                               squeeze=False)
    flat = np.asarray(axes).ravel()
    est, lo, hi = ("adjusted", "adjusted_ci_low", "adjusted_ci_high") if adjusted else ("estimate", "ci_low", "ci_high")
    for ax, out in zip(flat, outcomes, strict=False):
        t = table[(table["outcome"] == out) & table[[est, lo, hi]].notna().all(axis=1)]
        share = out in (binary or []) and out != money_outcome
        unit = " (percentage points)" if share else (f" ({currency})" if out == money_outcome and currency else "")
        plot_intervals(list(t["arm"]), t[est], t[lo], t[hi], ax, xlabel=f"difference vs control{unit}",
                       title=label(out), reference=0.0, scale=100 if share else 1.0)
    for ax in flat[len(outcomes):]:
        ax.set_axis_off()
    flat[0].figure.suptitle("Effect of the programme vs control (95% CI; dashed line: no effect)", fontweight="bold")
    flat[0].figure.tight_layout()
    return np.asarray(axes)


def plot_balance(balance: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Standardized mean differences before and after weighting (|SMD| < 0.1 is usually taken as balanced).

    Terms are named by their labels (``segment[premium]`` reads "segment: premium vs mass" once the design's
    reference levels are registered with ``cx.display.use_labels(references=...)``).
    """
    from cxresearch.plots import ACCENT, MAIN, MUTED, labels

    ax = ax or plt.subplots(figsize=(8, 0.42 * len(balance) + 1.8))[1]
    y = np.arange(len(balance))[::-1]
    ax.axvspan(-0.1, 0.1, color=MUTED, alpha=0.12, lw=0, label="balanced (within ±0.1)")
    ax.axvline(0, color=MUTED, lw=1)
    ax.scatter(balance["smd_before"], y, color=ACCENT, s=36, label="before weighting", zorder=3)
    if balance["smd_after"].notna().any():
        ax.scatter(balance["smd_after"], y, color=MAIN, s=36, label="after weighting", zorder=3)
    ax.set_yticks(y, labels(balance["covariate"], 48))
    ax.set_ylim(-0.7, len(balance) - 0.3)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("difference, members minus non-members (in standard deviations)")
    ax.set_title("Were members different before they joined?")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ax


def plot_overlap(score: np.ndarray, treated: np.ndarray, ax: plt.Axes | None = None) -> plt.Axes:
    """Propensity score distributions of members and non-members."""
    import seaborn as sns

    from cxresearch.plots import MAIN, MUTED

    ax = ax or plt.subplots(figsize=(8, 3.6))[1]
    df = pd.DataFrame({"score": np.asarray(score, float),
                       "group": np.where(np.asarray(treated, bool), "members", "non-members")})
    sns.histplot(df, x="score", hue="group", hue_order=["non-members", "members"], bins=np.linspace(0, 1, 31),
                 stat="density", common_norm=False, element="step", alpha=0.35,
                 palette={"non-members": MUTED, "members": MAIN}, ax=ax)
    _percent_axis(ax, whole=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("estimated chance of joining, from what we knew before")
    ax.set_ylabel("share of customers (density)")
    ax.set_yticks([])
    ax.set_title("Overlap: are there comparable non-members for every member?")
    legend = ax.get_legend()
    if legend is not None:
        legend.set_title(None)
    return ax


_DATE_PERIOD = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


def _period_dates(periods: pd.Series) -> pd.DatetimeIndex | None:
    """Periods such as "2024-05" or "2024-05-31" as dates (None when any is not a date)."""
    text = pd.Series(periods).astype(str)
    if not text.str.match(_DATE_PERIOD).all():
        return None
    when = pd.to_datetime(text.where(text.str.len() > 7, text + "-01"), format="%Y-%m-%d", errors="coerce")
    return None if when.isna().any() else pd.DatetimeIndex(when)


def plot_event_study(es: pd.DataFrame, pre_end: str, post_start: str, ax: plt.Axes | None = None,
                     ylabel: str = "members minus non-members") -> plt.Axes:
    """Member minus non-member gap per period relative to the pre-period (0 before joining = parallel trends).

    Periods that read as dates ("2024-05") get a date axis; others are shown as they are.
    """
    from cxresearch.plots import MAIN, MUTED, date_axis

    ax = ax or plt.subplots(figsize=(10, 4))[1]
    periods = list(es["period"].astype(str))
    when = _period_dates(es["period"])
    bounds = _period_dates(pd.Series([pre_end, post_start])) if when is not None else None
    if when is not None and bounds is not None:
        x, half = when, pd.Timedelta(days=15)
        ax.axvspan(bounds[0] - half, bounds[1] - half, color=MUTED, alpha=0.15, lw=0, label="enrolment window")
    else:
        x = np.arange(len(es))
        if pre_end in periods:
            ax.axvspan(periods.index(pre_end) - 0.5,
                       (periods.index(post_start) - 0.5) if post_start in periods else len(x),
                       color=MUTED, alpha=0.15, lw=0, label="enrolment window")
    ax.errorbar(x, es["gap"], yerr=[es["gap"] - es["ci_low"], es["ci_high"] - es["gap"]], fmt="o-", color=MAIN,
                ecolor=MAIN, elinewidth=1, capsize=3, label="gap with 95% CI")
    ax.axhline(0, color=MUTED, lw=1)
    if when is not None and bounds is not None:
        date_axis(ax)
        ax.set_xlabel(f"{when.min():%B %Y} to {when.max():%B %Y}")
    else:
        step = max(1, len(periods) // 12)
        ax.set_xticks(x[::step], periods[::step])
    ax.set_ylabel(ylabel)
    ax.set_title("Members minus non-members over time")
    ax.legend(loc="upper left")
    return ax


def plot_roi(result: Payoff, ax: plt.Axes | None = None) -> plt.Axes:
    """Uncertainty of the ROI: histogram of the bootstrap draws' ROI (AIPW) or the ROI's sampling curve
    (``result.roi_draws`` / ``result.roi_curve``, computed by :func:`money_verdict`)."""
    import seaborn as sns

    from cxresearch.plots import ACCENT, MAIN

    ax = ax or plt.subplots(figsize=(8, 3.6))[1]
    if result.roi_draws is not None:
        sns.histplot(x=result.roi_draws, bins=40, color=MAIN, ax=ax)
        ax.set_ylabel("bootstrap draws")
    elif result.roi_curve is not None:
        roi, density = result.roi_curve["roi"], result.roi_curve["density"]
        ax.plot(roi, density, color=MAIN)
        ax.fill_between(roi, density, where=roi >= 0, color=MAIN, alpha=0.25, lw=0, label="pays off (ROI above 0%)")
        ax.set_ylabel("how likely")
        ax.set_yticks([])
        ax.set_ylim(bottom=0)
    ax.axvline(0, color=ACCENT, lw=2, label="break-even (ROI 0%)")
    _percent_axis(ax, whole=1)
    ax.set_xlabel("return on investment over the horizon")
    ax.set_title(f"How sure are we that it pays? Chance that ROI is above 0%: "
                 f"{result.summary['prob_roi_positive']:.0%}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


# ---------------------------------------------------------------------------------------------
# figure descriptions (alt text): what each chart shows, in words, for readers who cannot see it


def effects_alt(est: pd.DataFrame, currency: str = "", outcome: str = "spend", period: str = "period") -> str:
    """Alt text of :func:`plot_effects` on the observational estimates."""
    rows = est.dropna(subset=["estimate", "ci_low", "ci_high"])
    parts = [f"{r.method}: {fmt_value(r.estimate, 'money', currency)} ({fmt_value(r.ci_low, '', '')} to "
             f"{fmt_value(r.ci_high, 'money', currency)})" for r in rows.itertuples()]
    return (f"Dot chart of the effect on {plain(outcome)} per member and {period}, with 95% intervals, by method. "
            + "; ".join(parts) + ".")


def randomized_alt(table: pd.DataFrame, adjusted: bool, money_outcome: str | None = None, currency: str = "",
                   binary: list[str] | None = None) -> str:
    """Alt text of :func:`plot_randomized`."""
    est, lo, hi = ("adjusted", "adjusted_ci_low", "adjusted_ci_high") if adjusted else ("estimate", "ci_low", "ci_high")
    parts = []
    for r in table.dropna(subset=[est, lo, hi]).itertuples():
        unit = _outcome_unit(r.outcome, money_outcome, binary)
        parts.append(f"{plain(r.arm)} on {plain(r.outcome)}: {fmt_value(getattr(r, est), unit, currency)} "
                     f"(95% CI {fmt_interval(getattr(r, lo), getattr(r, hi), unit, currency)})")
    return "Dot charts of the effect of the programme vs control, one per outcome. " + "; ".join(parts) + "."


def balance_alt(balance: pd.DataFrame) -> str:
    """Alt text of :func:`plot_balance` (terms named by their labels)."""
    names = balance["covariate"].map(plain)
    before = balance["smd_before"].abs()
    if before.notna().sum() == 0:
        return "Dot chart of how members differed from non-members before joining: no difference could be computed."
    i = before.idxmax()
    text = (f"Dot chart of how far members differed from non-members before joining, in standard deviations. "
            f"Largest difference before weighting: {names[i]} ({balance.at[i, 'smd_before']:.2f}).")
    after = balance["smd_after"].abs()
    if after.notna().any():
        j = after.idxmax()
        text += (" After weighting every characteristic is within ±0.1 (balanced)." if after.max() < 0.1 else
                 f" After weighting the largest is {names[j]} ({balance.at[j, 'smd_after']:.2f}).")
    return text


def overlap_alt(score: np.ndarray, treated: np.ndarray) -> str:
    """Alt text of :func:`plot_overlap`."""
    s, d = np.asarray(score, float), np.asarray(treated, bool)
    return (f"Histograms of the estimated chance of joining: members from {s[d].min():.0%} to {s[d].max():.0%} "
            f"(median {np.median(s[d]):.0%}), non-members from {s[~d].min():.0%} to {s[~d].max():.0%} "
            f"(median {np.median(s[~d]):.0%}).")


def event_study_alt(es: pd.DataFrame, pre_end: str, post_start: str, currency: str = "") -> str:
    """Alt text of :func:`plot_event_study`."""
    period = es["period"].astype(str)
    pre, post = es[period < str(pre_end)], es[period >= str(post_start)]
    text = (f"Line chart of the gap between members and non-members per period, from {period.iloc[0]} to "
            f"{period.iloc[-1]}, with 95% intervals; the enrolment window runs from {pre_end} to before {post_start}.")
    if len(pre):
        zero = int(((pre["ci_low"] <= 0) & (pre["ci_high"] >= 0)).sum())
        text += f" Before the window {zero} of {len(pre)} intervals include zero (no gap)"
        text += (f"; after it the gap averages {fmt_value(post['gap'].mean(), 'money', currency)}." if len(post)
                 else ".")
    return text


def roi_alt(result: Payoff) -> str:
    """Alt text of :func:`plot_roi`."""
    m = result.summary
    return (f"Curve of how likely each return on investment is: estimate {m['roi']:.0%}, 95% interval "
            f"{m['roi_ci_low']:.0%} to {m['roi_ci_high']:.0%}; the chance that it is above 0% (break-even) is "
            f"{m['prob_roi_positive']:.0%}.")


# ---------------------------------------------------------------------------------------------
# report sections: what the notebook shows, in order (sentences, figures with alt text, tables; no computing)


def _show_table(df: pd.DataFrame, **kw: Any) -> None:
    from IPython.display import display

    from cxresearch.display import table

    display(table(df, **kw))


def show_design(setup: Setup) -> None:
    """The design, the group sizes and the control group; arms too small to test."""
    say("Design: {design}; control group: **{control}**.", design=design_sentence(setup),
        control=arm_label(setup.control))
    if setup.small_arms:
        say("Arms with fewer than {m} customers are not tested (the confidentiality threshold): {arms}.",
            m=setup.min_group_size, arms=", ".join(arm_label(a) for a in setup.small_arms))


def show_effects(setup: Setup, fx: RandomizedAnalysis | ObservationalAnalysis) -> None:
    """The effects: per group and outcome (pilot), or per method with how the groups were made alike (roll-out)."""
    cur, money, period = setup.currency, setup.money_outcome, setup.period
    if setup.randomized:
        axes = plot_randomized(fx.table, fx.adjusted, money, cur, fx.binary)
        show(axes.flat[0].figure, randomized_alt(fx.table, fx.adjusted, money, cur, fx.binary))
        _show_table(effects_display(fx.table, fx.adjusted, money, cur, fx.binary), percent=["variance removed"])
        return
    est = fx.estimates
    ax = plot_effects(est.assign(label=est["method"]), title=f"Effect on {plain(money)} per member and {period} (95% CI)",
                      xlabel=f"extra {plain(money)} per member and {period}" + (f" ({cur})" if cur else ""))
    show(ax.figure, effects_alt(est, cur, money, period))
    _show_table(estimates_display(est, cur, period))
    if len(fx.result.balance):
        say("Weighting and AIPW compare members with non-members weighted by their odds of joining, normalised to "
            "an average (Hájek weights), on the {n} characteristics in the balance chart below — entered {how}, "
            "with nothing added (the formula is listed under Data handling at the end).",
            n=len(fx.result.balance), how="as the covariate formula gives them" if setup.formula_given else "as given")
    if fx.result.problem:
        say("Propensity weighting and AIPW are **not estimable** here: {why}", why=fx.result.problem)


def show_selection(setup: Setup, fx: RandomizedAnalysis | ObservationalAnalysis) -> None:
    """Why the naive gap misleads (open roll-outs only): self-selection, balance, overlap, event study, placebo."""
    if setup.randomized:
        return
    cur, period = setup.currency, setup.period
    selection = self_selection_claim(fx, period)
    if selection.verdict != "not testable":
        say("**Why the naive gap misleads.** Before joining, members already differed from non-members: "
            "members minus non-members on {covariate} = **{gap}** (95% CI {ci}). The chart shows each "
            "characteristic measured before joining, before and after weighting non-members to look like members; "
            "differences within ±0.1 standard deviations count as balanced.",
            covariate=pre_period_measure(fx, period),
            gap=fmt_value(selection.estimate, selection.unit, cur),
            ci=fmt_interval(selection.ci_low, selection.ci_high, selection.unit, cur))
    balance = fx.result.balance
    show(plot_balance(balance).figure, balance_alt(balance))
    if fx.result.propensity is not None:
        show(plot_overlap(fx.result.propensity, fx.treated).figure, overlap_alt(fx.result.propensity, fx.treated))
        say("Weighted non-members count as **{ess:,.0f}** customers (effective sample size) out of {n:,}.",
            ess=fx.result.effective_n_controls, n=int((~fx.treated).sum()))
    p = setup.params
    if fx.event is not None:
        say("**Before and after joining.** Each point is the gap between members and non-members in one {period}, "
            "measured from each customer's own average before the enrolment window. Before the window the gap "
            "should hover around zero (the groups moved in parallel); after it, the gap is the programme's effect.",
            period=period)
        unit = f", {cur}" if cur else ""
        ax = plot_event_study(fx.event, p["pre_end"], p["post_start"],
                              ylabel=f"members minus non-members{unit}\n(change from own average before)")
        show(ax.figure, event_study_alt(fx.event, p["pre_end"], p["post_start"], cur))
    if fx.placebo is not None and is_number(fx.placebo["ci_low"]):
        pl = fx.placebo
        say("Placebo test: pretending the programme started halfway through the period before enrolment gives a "
            "difference-in-differences of {e} (95% CI {ci}, {p:p}); an interval that contains zero supports "
            "parallel trends.", e=fmt_value(pl["estimate"], "money", cur),
            ci=fmt_interval(pl["ci_low"], pl["ci_high"], "money", cur), p=pl["p_value"])


def show_money(setup: Setup, pay: Payoff) -> None:
    """Does it pay: the ROI chart, the plain verdict with ROI, payback and break-even, the next pilot's power."""
    if not pay.testable:
        say("### {sentence}\n\nNo return on investment is shown: the claim below is *not testable*.",
            sentence=pay.sentence)
        return
    m, effect, p, cur, period = pay.summary, pay.effect, setup.params, setup.currency, setup.period
    show(plot_roi(pay).figure, roi_alt(pay))
    say("### {sentence}\n\nEffect on {outcome}: **{effect}** per member and {period} (95% CI {ci}); break-even "
        "effect **{be}** (margin {margin:.0%}, cost {cost} per member and {period}). Return on investment over "
        "{horizon:g} {period}s for {members:,} members: **{roi:.0%}** (95% CI {roi_lo:.0%} to {roi_hi:.0%}); chance "
        "that it is above 0%: **{prob:.0%}**. {payback}",
        sentence=pay.sentence, outcome=plain(setup.money_outcome), effect=fmt_value(effect.estimate, "money", cur),
        ci=fmt_interval(effect.ci_low, effect.ci_high, "money", cur), period=period,
        be=fmt_value(m["break_even_effect"], "money", cur), margin=float(p["margin"]),
        cost=fmt_value(float(p["cost_per_member"]), "money", cur), horizon=float(p["horizon"]),
        members=pay.members, roi=m["roi"], roi_lo=m["roi_ci_low"], roi_hi=m["roi_ci_high"],
        prob=m["prob_roi_positive"], payback=payback_sentence(m, p["setup_cost"] or 0.0, period))
    if is_number(pay.mde):
        say("A randomized pilot with {members:,} customers per group would detect an effect of **{mde}** on "
            "{outcome} with 80% power (5% two-sided).", members=pay.members,
            mde=fmt_value(pay.mde, "money", cur), outcome=plain(setup.money_outcome))
