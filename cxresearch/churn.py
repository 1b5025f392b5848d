"""Churn as survival: how long customers stay, who leaves, and what complaints do to it.

Estimation builds on lifelines (Kaplan–Meier, log-rank, Cox, AFT models) and on statsmodels' ``PHReg``
for the counting-process Cox model with time-varying complaint states, which handles millions of
(start, stop] rows quickly. Interval methods:

* survival at t: Kaplan–Meier with Greenwood variance on the log(-log) scale (lifelines default);
* median lifetime: Brookmeyer–Crowley style interval read off the pointwise band (lifelines);
* restricted mean survival time: Greenwood-type variance of the area under the KM curve
  (Klein & Moeschberger 2003, eq. 4.5.1), normal interval; differences of independent groups add
  variances;
* hazard ratios: Wald intervals on the log scale from the partial likelihood.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from cxresearch.io import Column, Contract, Exclusion, InputError, Ledger, parse_bool, read_table
from cxresearch.stats import holm

TIME_UNITS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
REPORT_TIMES = (3, 6, 12, 24)
STATE_LABELS = {"fast": "complaint resolved fast", "slow": "complaint resolved slowly",
                "unresolved": "complaint unresolved"}


@dataclass
class SurvivalTable:
    """One row per customer: ``duration`` (in ``time_unit``), ``event`` (1 = left), group and covariates."""

    data: pd.DataFrame
    time_unit: str
    group_col: str | None
    covariates: list[str]
    id_col: str | None = None
    start_col: str | None = None
    source: str = ""
    notes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.data)

    @property
    def n_events(self) -> int:
        return int(self.data["event"].sum())


# ---------------------------------------------------------------------------------------------
# input


def survival_table(
    path: str,
    *,
    start_col: str | None = "signup_date",
    end_col: str | None = "churn_date",
    as_of: str | pd.Timestamp | None = None,
    duration_col: str | None = None,
    event_col: str | None = None,
    event_value: Any = None,
    group_col: str | None = None,
    covariates: list[str] | None = None,
    time_unit: str = "months",
    id_col: str | None = "customer_id",
    ledger: Ledger | None = None,
) -> SurvivalTable:
    """Read a customer table and turn it into durations and events.

    Either dates (``start_col``, ``end_col``; customers without an end date, or ending after ``as_of``,
    are censored at ``as_of``) or a ready duration (``duration_col``, already in ``time_unit``) and event
    indicator (``event_col``; the event is ``event_value``, or 1/true/yes when ``event_value`` is None).

    Raises
    ------
    InputError
        Negative durations, an event value that never occurs, a covariate that is missing, empty in some
        rows or constant, an unknown time unit.
    """
    if time_unit not in TIME_UNITS:
        raise InputError(f"'customers' ({path})", [f"time_unit {time_unit!r} is not one of {list(TIME_UNITS)}."])
    covariates = list(covariates or [])
    use_dates = duration_col is None
    cols: list[Column] = []
    if use_dates:
        if not start_col or not end_col:
            raise InputError(f"'customers' ({path})", [
                "give either start_col and end_col (dates) or duration_col and event_col. Fix: set the parameters."])
        cols += [Column(start_col, "date"), Column(end_col, "date", nullable=True)]
    else:
        if not event_col:
            raise InputError(f"'customers' ({path})", ["duration_col needs event_col. Fix: name the event column."])
        cols += [Column(duration_col, "float", min=0), Column(event_col, "string")]
    if id_col:
        cols.append(Column(id_col, "string", required=False))
    contract = Contract("customers", tuple(cols), key=(id_col,) if id_col else (),
                        ordered=((start_col, end_col),) if use_dates else ())
    rules: list[Exclusion] = []
    cutoff = pd.Timestamp(as_of) if as_of is not None else None
    if use_dates and cutoff is not None:
        rules.append(Exclusion(f"{start_col} after the observation end ({cutoff.date()})",
                               lambda d: d[start_col] > cutoff))
    df = read_table(path, contract, exclusions=rules, ledger=ledger)
    source = f"'customers' ({path})"
    problems: list[str] = []
    missing = [c for c in [*covariates, *([group_col] if group_col else [])] if c not in df.columns]
    if missing:
        raise InputError(source, [f"column '{c}' (a covariate or group_col) is missing. Columns in the file: "
                                  f"{list(df.columns)}. Fix: correct the name in the parameters." for c in missing])
    notes: list[dict[str, Any]] = []
    unit = TIME_UNITS[time_unit]
    if use_dates:
        cutoff = cutoff if cutoff is not None else max(df[start_col].max(), df[end_col].max())
        late = df[end_col].notna() & (df[end_col] > cutoff)
        if late.any():
            notes.append({"rule": f"{end_col} after the observation end: counted as still a customer at "
                                  f"{cutoff.date()}", "rows": int(late.sum())})
        ended = df[end_col].notna() & ~late
        end = df[end_col].where(ended, cutoff)
        duration = (end - df[start_col]).dt.total_seconds() / 86400 / unit
        event = ended.astype(int)
    else:
        duration = df[duration_col].astype(float)
        raw = df[event_col]
        if event_value is None:
            flag = parse_bool(raw)
            bad = raw.notna() & flag.isna()
            if bad.any():
                problems.append(f"column '{event_col}': values {sorted(raw[bad].astype(str).unique())[:5]} are not "
                                "1/0, yes/no or true/false. Fix: set event_value to the value that means 'left'.")
            event = flag.fillna(False).astype(int)
        else:
            event = (raw.astype(str).str.strip() == str(event_value)).astype(int)
            if event.sum() == 0:
                found = sorted(raw.dropna().astype(str).unique())[:10]
                problems.append(f"column '{event_col}': the event value {event_value!r} never occurs (values found: "
                                f"{found}). Fix: set event_value to the value that means 'left'.")
    for c in covariates:
        empty = df[c].isna()
        if empty.any():
            rows = ", ".join(str(i + 2) for i in np.flatnonzero(empty.to_numpy())[:5])
            problems.append(f"covariate '{c}': {int(empty.sum())} empty value(s), rows {rows}. Fix: fill them in or "
                            "leave the covariate out.")
        elif df[c].nunique() < 2:
            problems.append(f"covariate '{c}' has the single value {df[c].iloc[0]!r} in every row, so it cannot "
                            "explain churn. Fix: leave it out of covariates.")
    if problems:
        raise InputError(source, problems)
    data = pd.DataFrame({"duration": duration.to_numpy(), "event": event.to_numpy()})
    if id_col and id_col in df:
        data.insert(0, "id", df[id_col].to_numpy())
    if use_dates:
        data["start"] = df[start_col].to_numpy()
    for c in dict.fromkeys([*([group_col] if group_col else []), *covariates]):
        data[c] = df[c].to_numpy()
    zero = data["duration"] <= 0
    if zero.any():
        notes.append({"rule": "relationships of zero length (ended or observed on the day they started) left out",
                      "rows": int(zero.sum())})
        data = data[~zero].reset_index(drop=True)
    return SurvivalTable(data, time_unit, group_col, covariates, "id" if "id" in data else None,
                         start_col if use_dates else None, source, notes)


def design(st: SurvivalTable, covariates: list[str] | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """Covariate matrix: numbers as they are, text as dummies against the most frequent level.

    Returns the matrix (columns ``col`` or ``col[level]``) and the reference level of each text column.
    """
    covariates = st.covariates if covariates is None else covariates
    parts, refs = [], {}
    for c in covariates:
        s = st.data[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            parts.append(s.astype(float).rename(c))
            continue
        s = s.astype(str)
        counts = s.value_counts()
        ref = sorted(counts[counts == counts.max()].index)[0]
        refs[c] = ref
        levels = sorted(lv for lv in counts.index if lv != ref)
        parts.append(pd.DataFrame({f"{c}[{lv}]": (s == lv).astype(float) for lv in levels}, index=s.index))
    if not parts:
        return pd.DataFrame(index=st.data.index), refs
    return pd.concat(parts, axis=1), refs


# ---------------------------------------------------------------------------------------------
# Kaplan–Meier, log-rank, RMST


def groups_of(st: SurvivalTable, min_n: int = 5) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Data per group with at least ``min_n`` customers, and the names of suppressed groups."""
    if not st.group_col:
        return {"all customers": st.data}, []
    parts = dict(tuple(st.data.groupby(st.data[st.group_col].astype(str), sort=True)))
    small = [name for name, part in parts.items() if len(part) < min_n]
    return {name: part for name, part in parts.items() if name not in small}, small


def fit_km(groups: dict[str, pd.DataFrame]) -> dict[str, Any]:
    from lifelines import KaplanMeierFitter

    return {name: KaplanMeierFitter(label=name).fit(d["duration"], d["event"]) for name, d in groups.items()}


def survival_at(kmf: Any, t: float) -> tuple[float, float, float]:
    """KM survival at ``t`` with its 95% log(-log) interval; NaN beyond the last observed time."""
    if t > kmf.timeline.max():
        return (math.nan, math.nan, math.nan)
    est = float(kmf.survival_function_at_times(t).iloc[0])
    ci = kmf.confidence_interval_survival_function_
    row = ci.loc[ci.index[ci.index <= t].max()]
    return est, float(row.iloc[0]), float(row.iloc[1])


def median_lifetime(kmf: Any) -> tuple[float, float, float]:
    """Median lifetime with 95% interval; ``inf`` where the curve never drops to one half."""
    from lifelines.utils import median_survival_times

    ci = median_survival_times(kmf.confidence_interval_)
    return float(kmf.median_survival_time_), float(ci.iloc[0, 0]), float(ci.iloc[0, 1])


def rmst(durations: np.ndarray, events: np.ndarray, tau: float) -> tuple[float, float]:
    """Restricted mean survival time up to ``tau`` and its standard error (area under KM, Greenwood)."""
    d = pd.DataFrame({"t": np.asarray(durations, float), "e": np.asarray(events, int)})
    table = d.groupby("t")["e"].agg(["sum", "size"]).sort_index()
    at_risk = table["size"][::-1].cumsum()[::-1].to_numpy()
    times, deaths = table.index.to_numpy(), table["sum"].to_numpy()
    surv = np.cumprod(1 - deaths / at_risk)
    keep = times < tau
    t_k, d_k, n_k, s_k = times[keep], deaths[keep], at_risk[keep], surv[keep]
    # S is constant on [t_k, t_{k+1}); area from t_k to tau for every k
    edges = np.append(t_k, tau)
    pieces = s_k * np.diff(edges)
    area0 = (t_k[0] if len(t_k) else tau) * 1.0  # S = 1 before the first time
    estimate = area0 + pieces.sum()
    tail = np.cumsum(pieces[::-1])[::-1]  # A_k = integral of S from t_k to tau
    ok = (n_k - d_k) > 0
    var = np.sum(tail[ok] ** 2 * d_k[ok] / (n_k[ok] * (n_k[ok] - d_k[ok])))
    return float(estimate), float(math.sqrt(var))


def km_summary(kms: dict[str, Any], groups: dict[str, pd.DataFrame], times: list[float], horizon: float,
               z: float = 1.959964) -> pd.DataFrame:
    """Per group: customers, who left, median lifetime, survival at ``times`` and RMST up to ``horizon``."""
    rows = []
    for name, kmf in kms.items():
        d = groups[name]
        med, med_lo, med_hi = median_lifetime(kmf)
        row: dict[str, Any] = {"group": name, "customers": len(d), "left": int(d["event"].sum()),
                               "median": med, "median_low": med_lo, "median_high": med_hi}
        for t in times:
            row[f"S({t:g})"], row[f"S({t:g}) low"], row[f"S({t:g}) high"] = survival_at(kmf, t)
        est, se = rmst(d["duration"], d["event"], horizon)
        row["rmst"], row["rmst_low"], row["rmst_high"] = est, est - z * se, est + z * se
        row["rmst_se"] = se
        rows.append(row)
    return pd.DataFrame(rows)


def logrank(groups: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Log-rank test that all groups share one survival curve (chi-square with k-1 df)."""
    from lifelines.statistics import multivariate_logrank_test

    d = pd.concat([g.assign(_g=name) for name, g in groups.items()])
    res = multivariate_logrank_test(d["duration"], d["_g"], d["event"])
    return {"chi2": float(res.test_statistic), "df": int(res.degrees_of_freedom), "p": float(res.p_value)}


def pairwise_logrank(groups: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Log-rank test for every pair of groups with p-values adjusted for multiplicity (Holm)."""
    from lifelines.statistics import logrank_test
    rows = []
    for a, b in combinations(groups, 2):
        ga, gb = groups[a], groups[b]
        res = logrank_test(ga["duration"], gb["duration"], ga["event"], gb["event"])
        rows.append({"group A": a, "group B": b, "chi2": float(res.test_statistic), "p": float(res.p_value)})
    out = pd.DataFrame(rows, columns=["group A", "group B", "chi2", "p"])
    if len(out):
        out["p adjusted"] = holm(out["p"])
    return out


def rmst_differences(summary: pd.DataFrame, reference: str | None = None, z: float = 1.959964) -> pd.DataFrame:
    """RMST of each group minus the reference group's (default: the largest group), with 95% CI and p."""
    if len(summary) < 2:
        return pd.DataFrame(columns=["group", "reference", "difference", "ci_low", "ci_high", "p"])
    ref = reference or summary.sort_values(["customers", "group"], ascending=[False, True])["group"].iloc[0]
    r = summary.set_index("group")
    rows = []
    for g in r.index.drop(ref):
        diff = r.at[g, "rmst"] - r.at[ref, "rmst"]
        se = math.hypot(r.at[g, "rmst_se"], r.at[ref, "rmst_se"])
        rows.append({"group": g, "reference": ref, "difference": diff, "ci_low": diff - z * se,
                     "ci_high": diff + z * se, "p": float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else math.nan})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Cox models


@dataclass
class CoxResult:
    """A fitted Cox model with its hazard-ratio table and proportional-hazards check."""

    fitter: Any
    hazard_ratios: pd.DataFrame  # term, hr, ci_low, ci_high, p
    concordance: float
    references: dict[str, str]
    ph_test: pd.DataFrame  # term, statistic, p
    ph_failures: list[str]  # covariates (not terms) that fail the check
    stratified: Any = None  # refit stratified by the failing covariates, if any
    stratified_hazard_ratios: pd.DataFrame | None = None
    design_columns: list[str] = field(default_factory=list)


def _hr_table(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "term": summary.index,
        "hr": np.exp(summary["coef"]).to_numpy(),
        "ci_low": np.exp(summary["coef lower 95%"]).to_numpy(),
        "ci_high": np.exp(summary["coef upper 95%"]).to_numpy(),
        "p": summary["p"].to_numpy(),
    }).reset_index(drop=True)


def fit_cox(st: SurvivalTable, alpha: float = 0.05, ph_sample: int = 20_000, seed: int = 0) -> CoxResult:
    """Cox model on the covariates, Schoenfeld-residual PH check, stratified refit when a covariate fails.

    The PH test (lifelines' ``proportional_hazard_test``, rank time transform) runs on a random sample of
    at most ``ph_sample`` customers: on very large tables every tiny deviation is "significant" and the
    test's memory grows with n². A covariate fails when any of its terms has a Holm-adjusted p < ``alpha``.
    """
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test
    x, refs = design(st)
    df = pd.concat([st.data[["duration", "event"]], x], axis=1)
    cph = CoxPHFitter().fit(df, "duration", "event")
    hr = _hr_table(cph.summary)
    sample = df.sample(n=min(ph_sample, len(df)), random_state=seed) if len(df) > ph_sample else df
    ph_fit = cph if sample is df else CoxPHFitter().fit(sample, "duration", "event")
    test = proportional_hazard_test(ph_fit, sample, time_transform="rank")
    ph = test.summary.reset_index().rename(columns={"index": "term", "test_statistic": "statistic"})
    ph = ph[["term", "statistic", "p"]]
    ph["p adjusted"] = holm(ph["p"])
    failing_terms = set(ph.loc[ph["p adjusted"] < alpha, "term"])
    failures = [c for c in st.covariates if any(t == c or t.startswith(f"{c}[") for t in failing_terms)]
    result = CoxResult(cph, hr, float(cph.concordance_index_), refs, ph, failures, design_columns=list(x.columns))
    if failures:
        keep = [c for c in st.covariates if c not in failures]
        xs, _ = design(st, keep)
        sdf = pd.concat([st.data[["duration", "event"]], xs, st.data[failures].astype(str)], axis=1)
        result.stratified = CoxPHFitter().fit(sdf, "duration", "event", strata=failures)
        result.stratified_hazard_ratios = _hr_table(result.stratified.summary)
    return result


def complaint_episodes(st: SurvivalTable, complaints: pd.DataFrame, fast_hours: float = 24.0) -> pd.DataFrame:
    """Counting-process rows (start, stop] per customer, split at each complaint.

    The state after a complaint is ``fast`` (resolved within ``fast_hours``), ``slow`` (resolved later) or
    ``unresolved``, and holds until the next complaint; before any complaint it is ``none``. Complaints
    after a customer's last observed time do not split anything.
    """
    if st.id_col is None or st.start_col is None:
        raise ValueError("Complaints need customer IDs and start dates in the customer table.")
    unit = TIME_UNITS[st.time_unit]
    base = st.data[["id", "start", "duration", "event"]]
    c = complaints.merge(base[["id", "start", "duration"]], left_on="customer_id", right_on="id", how="inner")
    c["t"] = (c["opened_at"] - c["start"]).dt.total_seconds() / 86400 / unit
    c = c[(c["t"] > 0) & (c["t"] < c["duration"])]
    resolved = c["resolved"].astype(bool)
    fast = resolved & (c["hours_to_resolve"] <= fast_hours)
    c["state"] = np.where(~resolved, "unresolved", np.where(fast, "fast", "slow"))
    rows = pd.concat([base[["id"]].assign(t=0.0, state="none"), c[["id", "t", "state"]]], ignore_index=True)
    rows = rows.sort_values(["id", "t"], kind="mergesort").reset_index(drop=True)
    rows = rows.merge(base[["id", "duration", "event"]], on="id", how="left")
    nxt = rows.groupby("id", sort=False)["t"].shift(-1)
    last = nxt.isna()
    rows["stop"] = nxt.fillna(rows["duration"])
    rows["event"] = np.where(last, rows["event"], 0)
    rows = rows[rows["stop"] > rows["t"]].rename(columns={"t": "start"})
    return rows[["id", "start", "stop", "event", "state"]].reset_index(drop=True)


def fit_time_varying(st: SurvivalTable, episodes: pd.DataFrame, ties: str = "efron") -> pd.DataFrame:
    """Cox model with the covariates and the time-varying complaint state (reference: no complaint yet).

    Fitted with statsmodels ``PHReg`` using each episode's start as delayed entry (counting-process
    likelihood). Returns term, hr, ci_low, ci_high, p, plus the fast-vs-slow contrast.
    """
    from statsmodels.duration.hazard_regression import PHReg

    x, _ = design(st)
    ep = episodes.merge(pd.concat([st.data[["id"]], x], axis=1), on="id", how="left")
    states = pd.DataFrame({s: (ep["state"] == s).astype(float) for s in ("fast", "slow", "unresolved")})
    states = states.loc[:, states.sum() > 0]
    exog = pd.concat([ep[x.columns], states], axis=1)
    fit = PHReg(ep["stop"].to_numpy(), exog.to_numpy(), status=ep["event"].to_numpy(),
                entry=ep["start"].to_numpy(), ties=ties).fit()
    params, se = np.asarray(fit.params), np.asarray(fit.bse)
    z = 1.959964
    table = pd.DataFrame({"term": exog.columns, "hr": np.exp(params), "ci_low": np.exp(params - z * se),
                          "ci_high": np.exp(params + z * se), "p": 2 * stats.norm.sf(np.abs(params / se))})
    names = list(exog.columns)
    if {"fast", "slow"} <= set(names):
        i, j = names.index("fast"), names.index("slow")
        cov = np.asarray(fit.cov_params())
        diff = params[i] - params[j]
        sd = math.sqrt(cov[i, i] + cov[j, j] - 2 * cov[i, j])
        table.loc[len(table)] = ["fast vs slow", math.exp(diff), math.exp(diff - z * sd), math.exp(diff + z * sd),
                                 float(2 * stats.norm.sf(abs(diff / sd)))]
    return table


# ---------------------------------------------------------------------------------------------
# parametric extrapolation, calibration, at-risk segments


@dataclass
class ParametricResult:
    """The AFT model chosen by AIC and its fit statistics."""

    fitter: Any
    name: str
    aic: pd.DataFrame  # model, aic, log_likelihood


def fit_parametric(st: SurvivalTable) -> ParametricResult:
    """Weibull and log-logistic AFT models on the covariates; the lower AIC wins."""
    from lifelines import LogLogisticAFTFitter, WeibullAFTFitter

    x, _ = design(st)
    df = pd.concat([st.data[["duration", "event"]], x], axis=1)
    fits = {"Weibull AFT": WeibullAFTFitter(), "log-logistic AFT": LogLogisticAFTFitter()}
    rows = []
    for name, f in fits.items():
        f.fit(df, "duration", "event")
        rows.append({"model": name, "aic": float(f.AIC_), "log_likelihood": float(f.log_likelihood_)})
    aic = pd.DataFrame(rows).sort_values("aic").reset_index(drop=True)
    best = aic["model"].iloc[0]
    return ParametricResult(fits[best], best, aic)


def group_survival_curves(fitter: Any, st: SurvivalTable, groups: dict[str, pd.DataFrame],
                          times: np.ndarray) -> pd.DataFrame:
    """Model survival averaged over each group's customers (exact, via unique covariate patterns)."""
    x, _ = design(st)
    out = {}
    for name, g in groups.items():
        patterns = x.loc[g.index].value_counts().reset_index(name="_n")
        curves = fitter.predict_survival_function(patterns.drop(columns="_n"), times=times)
        out[name] = curves.to_numpy() @ (patterns["_n"].to_numpy() / patterns["_n"].sum())
    return pd.DataFrame(out, index=times)


def predicted_survival(fitter: Any, st: SurvivalTable, horizon: float) -> pd.Series:
    """Each customer's model survival probability at ``horizon`` (computed per covariate pattern)."""
    x, _ = design(st)
    cols = list(x.columns)
    if not cols:
        s = float(fitter.predict_survival_function(pd.DataFrame(index=[0]), times=[horizon]).iloc[0, 0])
        return pd.Series(s, index=st.data.index)
    patterns = x.drop_duplicates().reset_index(drop=True)
    surv = fitter.predict_survival_function(patterns, times=[horizon]).iloc[0].to_numpy()
    lookup = patterns.assign(_s=surv)
    return x.merge(lookup, on=cols, how="left")["_s"].set_axis(x.index)


def calibration(st: SurvivalTable, predicted: pd.Series, horizon: float, bins: int = 10) -> pd.DataFrame:
    """Predicted vs Kaplan–Meier survival at ``horizon`` in groups of predicted risk (deciles)."""
    from lifelines import KaplanMeierFitter

    q = pd.qcut(predicted.rank(method="first"), bins, labels=False)
    rows = []
    for b in range(bins):
        sel = q == b
        d = st.data[sel]
        kmf = KaplanMeierFitter().fit(d["duration"], d["event"])
        obs, lo, hi = survival_at(kmf, horizon)
        rows.append({"risk group": b + 1, "customers": int(sel.sum()), "predicted": float(predicted[sel].mean()),
                     "observed": obs, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def at_risk_segments(st: SurvivalTable, predicted: pd.Series, by: list[str], horizon: float,
                     min_n: int = 5, top: int = 10) -> pd.DataFrame:
    """Segments (combinations of ``by``) with the highest predicted churn by ``horizon``; no individuals."""
    by = [b for b in by if b in st.data]
    if not by:
        return pd.DataFrame()
    d = st.data[by].astype(str).assign(churn=1 - predicted, left=st.data["event"])
    g = d.groupby(by).agg(customers=("churn", "size"), predicted_churn=("churn", "mean"),
                          left_so_far=("left", "mean")).reset_index()
    g = g[g["customers"] >= min_n]
    return g.sort_values("predicted_churn", ascending=False).head(top).reset_index(drop=True)


def worst_served_segment(responses: pd.DataFrame, customers: pd.DataFrame, segment_col: str,
                         items: list[str], id_col: str = "customer_id") -> pd.DataFrame:
    """Mean service score per segment (average of ``items`` per response) with a 95% t interval."""
    r = responses.merge(customers[[id_col, segment_col]], left_on="customer_id", right_on=id_col, how="inner")
    score = r[items].astype(float).mean(axis=1)
    g = score.groupby(r[segment_col].astype(str)).agg(["mean", "std", "size"])
    half = stats.t.ppf(0.975, g["size"] - 1) * g["std"] / np.sqrt(g["size"])
    return pd.DataFrame({"segment": g.index, "responses": g["size"].to_numpy(), "service_score": g["mean"].to_numpy(),
                         "ci_low": (g["mean"] - half).to_numpy(), "ci_high": (g["mean"] + half).to_numpy()})


def hazard_vs_segment(st: SurvivalTable, segment_col: str, segment: str) -> pd.DataFrame:
    """Hazard ratio of every other segment relative to ``segment`` (Cox with segment only)."""
    from lifelines import CoxPHFitter

    s = st.data[segment_col].astype(str)
    others = sorted(set(s) - {segment})
    df = pd.DataFrame({o: (s == o).astype(float) for o in others}).assign(duration=st.data["duration"],
                                                                           event=st.data["event"])
    fit = CoxPHFitter().fit(df, "duration", "event")
    return _hr_table(fit.summary).rename(columns={"term": "segment"})


# ---------------------------------------------------------------------------------------------
# plots


PALETTE = ("#1f4e79", "#c0504d", "#4f8f3a", "#8064a2", "#d08b2c", "#2c9fa8", "#7f7f7f")


def plot_km(kms: dict[str, Any], time_unit: str, ax: plt.Axes | None = None, at_risk: bool = True) -> plt.Axes:
    """Kaplan–Meier curves with 95% bands and an at-risk table under the plot."""
    from lifelines.plotting import add_at_risk_counts

    ax = ax or plt.subplots(figsize=(10, 5.5))[1]
    for kmf, color in zip(kms.values(), PALETTE, strict=False):
        kmf.plot_survival_function(ax=ax, ci_show=True, color=color)
    ax.set_xlabel(f"{time_unit} since the customer joined")
    ax.set_ylabel("share still a customer")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("How long customers stay (Kaplan–Meier, 95% bands)")
    if at_risk and len(kms) <= 6:
        add_at_risk_counts(*kms.values(), ax=ax, rows_to_show=["At risk"])
    return ax


def plot_forest(table: pd.DataFrame, ax: plt.Axes | None = None, title: str = "What drives churn") -> plt.Axes:
    """Hazard ratios with 95% intervals on a log scale (1 = no effect)."""
    ax = ax or plt.subplots(figsize=(8, 0.38 * len(table) + 1.2))[1]
    y = np.arange(len(table))[::-1]
    color = np.where(table["ci_low"] > 1, "#c0504d", np.where(table["ci_high"] < 1, "#4f8f3a", "#7f7f7f"))
    ax.hlines(y, table["ci_low"], table["ci_high"], color=color, lw=2)
    ax.scatter(table["hr"], y, color=color, zorder=3)
    ax.axvline(1, color="black", lw=1, ls="--")
    ax.set_xscale("log")
    ticks = [t for t in (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10)
             if table["ci_low"].min() * 0.8 <= t <= table["ci_high"].max() * 1.25]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_yticks(y, table["term"])
    ax.set_xlabel("hazard ratio (log scale): >1 leaves sooner, <1 stays longer")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3, which="both")
    return ax


def plot_parametric(kms: dict[str, Any], curves: pd.DataFrame, model_name: str, time_unit: str,
                    observed_end: float, ax: plt.Axes | None = None) -> plt.Axes:
    """Kaplan–Meier steps beside the parametric model's curves, extended beyond the data."""
    ax = ax or plt.subplots(figsize=(10, 5))[1]
    for (name, kmf), color in zip(kms.items(), PALETTE, strict=False):
        kmf.plot_survival_function(ax=ax, ci_show=False, color=color, lw=1.2, label=f"{name} (observed)")
        ax.plot(curves.index, curves[name], color=color, ls="--", lw=2, label=f"{name} ({model_name})")
    ax.axvline(observed_end, color="grey", lw=1)
    ax.text(observed_end, 0.98, " end of the data", va="top", fontsize=8, color="grey")
    ax.set_xlabel(f"{time_unit} since the customer joined")
    ax.set_ylabel("share still a customer")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title(f"Observed survival and the {model_name} model, extended beyond the data")
    return ax


def plot_calibration(cal: pd.DataFrame, horizon: float, time_unit: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Predicted vs observed survival at the horizon per risk group (diagonal = perfect)."""
    ax = ax or plt.subplots(figsize=(5.5, 5))[1]
    ok = cal["observed"].notna()
    c = cal[ok]
    ax.errorbar(c["predicted"], c["observed"], yerr=[c["observed"] - c["ci_low"], c["ci_high"] - c["observed"]],
                fmt="o", color="#1f4e79", capsize=3)
    lo = float(min(c["predicted"].min(), c["ci_low"].min(), 1.0)) - 0.02 if len(c) else 0
    ax.plot([lo, 1], [lo, 1], color="grey", ls="--", lw=1)
    ax.set_xlabel(f"predicted share still a customer at {horizon:g} {time_unit}")
    ax.set_ylabel("observed share (Kaplan–Meier, 95% CI)")
    ax.set_title("Does the model predict well?")
    ax.grid(alpha=0.3)
    return ax


def plot_rmst(summary: pd.DataFrame, horizon: float, time_unit: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Restricted mean survival time per group with 95% intervals."""
    from cxresearch.plots import plot_intervals

    return plot_intervals(summary["group"], summary["rmst"], summary["rmst_low"], summary["rmst_high"], ax,
                          f"average {time_unit} as a customer within the first {horizon:g} {time_unit}",
                          "Time as a customer within the horizon (RMST, 95% CI)")


# ---------------------------------------------------------------------------------------------
# notebook plumbing


@dataclass
class ChurnInputs:
    """Everything the churn notebook reads."""

    table: SurvivalTable
    complaints: pd.DataFrame | None
    survey: pd.DataFrame | None
    customers: pd.DataFrame | None  # id and group column, for linking the survey
    synthetic: bool
    truth: dict[str, Any] | None
    as_of: pd.Timestamp | None


def load_inputs(customers_path: str | None, complaints_path: str | None = None, survey_path: str | None = None,
                *, seed: int = 20240101, n_customers: int = 5000, effects: dict[str, Any] | None = None,
                as_of: str | None = None, **table_args: Any) -> ChurnInputs:
    """Read the customer table (and optional complaints and survey) or, with no paths, the synthetic world."""
    from cxresearch import contracts
    from cxresearch.synth import resolve_inputs

    paths, synthetic, truth = resolve_inputs(
        {"customers": customers_path, "complaints": complaints_path, "survey_responses": survey_path},
        seed, n_customers, effects)
    if "customers" not in paths:
        raise InputError("'customers'", ["customers_path is needed when other tables are given. Fix: set it."])
    cutoff = as_of or (truth["calendar"]["observation_end"] if truth else None)
    st = survival_table(str(paths["customers"]), as_of=cutoff, **table_args)
    complaints = survey = customers = None
    if "complaints" in paths and st.id_col and st.start_col:
        complaints = read_table(paths["complaints"], contracts.COMPLAINTS)
    if "survey_responses" in paths and st.id_col:
        survey = read_table(paths["survey_responses"], contracts.SURVEY_RESPONSES)
    if st.id_col:
        customers = st.data[["id", *([st.group_col] if st.group_col else [])]].rename(columns={"id": "customer_id"})
    return ChurnInputs(st, complaints, survey, customers, synthetic, truth,
                       pd.Timestamp(cutoff) if cutoff else None)


def truth_check(estimates: pd.DataFrame, truth: dict[str, Any], family_alpha: float = 0.05) -> pd.DataFrame:
    """Planted hazard ratios beside the estimates, with per-term 95% and simultaneous (Bonferroni) checks."""
    states = truth["churn"]["complaint_hazard_ratios"]
    planted = {**truth["churn"]["hazard_ratios"], "fast": states["fast_resolved"], "slow": states["slow_resolved"],
               "unresolved": states["unresolved"]}
    est = estimates.set_index("term")
    terms = [t for t in planted if t in est.index]
    z_family = stats.norm.ppf(1 - family_alpha / (2 * max(1, len(terms))))
    rows = []
    for t in terms:
        log_hr = math.log(est.at[t, "hr"])
        se = (math.log(est.at[t, "ci_high"]) - math.log(est.at[t, "ci_low"])) / (2 * 1.959964)
        rows.append({"term": t, "planted": planted[t], "estimate": est.at[t, "hr"], "ci_low": est.at[t, "ci_low"],
                     "ci_high": est.at[t, "ci_high"],
                     "inside 95% CI": est.at[t, "ci_low"] <= planted[t] <= est.at[t, "ci_high"],
                     "inside simultaneous CI": abs(log_hr - math.log(planted[t])) <= z_family * se})
    return pd.DataFrame(rows)
