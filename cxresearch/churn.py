"""Churn as survival: how long customers stay, who leaves, and what complaints do to it.

Estimation builds on lifelines (Kaplan–Meier, log-rank, Cox, AFT models; the AFT models fitted once per
distinct customer row with counts as weights) and, for the counting-process Cox model with time-varying
complaint states, on :class:`PatternCox` — the exact Efron partial likelihood on covariate patterns, for text
covariates — or statsmodels' ``PHReg`` when the covariates have too many patterns. The main Cox model of a
large table (above 20,000 customers) is fitted on patterns too. Interval methods:

* survival at t: Kaplan–Meier with Greenwood variance on the log(-log) scale (lifelines default);
* median lifetime: Brookmeyer–Crowley style interval read off the pointwise band (lifelines);
* restricted mean survival time: Greenwood-type variance of the area under the KM curve
  (Klein & Moeschberger 2003, eq. 4.5.1), normal interval; differences of independent groups add
  variances;
* hazard ratios: Wald intervals on the log scale from the partial likelihood.

Every model's covariates are coded by the package's one builder, :func:`cxresearch.design.design_matrix`
(:func:`covariate_design`): text as ``col[level]`` against the most frequent level, numbers as they are,
true/false as one 0/1 column. p-values are in columns (and keys) named ``p_value``.

The notebook reads a run's tables with :func:`load_inputs` (a :class:`cxresearch.sources.Source` and the run's
ledger), calls one step per section (:func:`lifetimes`, :func:`drivers`, :func:`extrapolate`, :func:`calibrate`,
:func:`service_and_churn`; each returns a typed result), shows what the presentation helpers at the end of this
module return, and records :func:`metrics` and :func:`claims` (verdicts are decided here, never in the notebook).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from cxresearch import contracts
from cxresearch import engine as engines
from cxresearch.design import DesignMatrix, design_matrix, formula_of
from cxresearch.display import Sentence, Table, fmt_value, plain, sentence
from cxresearch.display import table as display_table
from cxresearch.errors import NotEstimable, ParameterError
from cxresearch.fits import FitError, finite, fit_with_retries
from cxresearch.io import (
    Column,
    Contract,
    Exclusion,
    InputError,
    Ledger,
    first_row,
    key_rows,
    parse_bool,
    parse_number,
    read_table,
    shown_path,
)
from cxresearch.privacy import OTHER, merge_small_groups
from cxresearch.stats import Z95, Claim, holm, normal_interval, pick, stable_sort, verdict

TIME_UNITS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
REPORT_TIMES = (3, 6, 12, 24)
STATE_LABELS = {"fast": "complaint resolved fast", "slow": "complaint resolved slowly",
                "unresolved": "complaint unresolved"}
#: how the time-varying complaint states read in tables and figures (each compared with "no complaint yet")
STATE_TERMS = {**{k: f"{v} vs no complaint" for k, v in STATE_LABELS.items()},
               "fast vs slow": "complaint resolved fast vs slowly"}
NO_VALUE = "(no value)"


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
    folded: dict[str, list[str]] = field(default_factory=dict)  # column -> labels folded into "Other (small groups)"
    dropped: list[str] = field(default_factory=list)  # covariates left out: one level left after folding

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
    ledger: Ledger,
    engine: str = "duckdb",
    spark_master: str = "local[*]",
) -> SurvivalTable:
    """Read a customer table and turn it into durations and events.

    Either dates (``start_col``, ``end_col``; customers without an end date, or ending after ``as_of``,
    are censored at ``as_of``) or a ready duration (``duration_col``, already in ``time_unit``) and event
    indicator (``event_col``; the event is ``event_value``, or 1/true/yes when ``event_value`` is None).
    Rows read and excluded are recorded in ``ledger`` (the run's ``results.ledger``).

    A table in Parquet files or a database is checked and cut by queries in ``engine`` (DuckDB by default,
    Spark; see :mod:`cxresearch.engine`) and only the columns used come back, with messages naming rows by
    ``id_col``; ``engine="pandas"``, and a CSV or Excel file, read it whole.

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
    cutoff = pd.Timestamp(as_of) if as_of is not None else None
    late = f"{start_col} after the observation end ({cutoff.date()})" if use_dates and cutoff is not None else None
    source = f"'customers' ({shown_path(path)})"
    wanted = [*covariates, *([group_col] if group_col else [])]
    problems: list[str] = []
    if engines.in_engine(path, engine):
        df = _customers_in_engine(path, contract, wanted, ledger, engine, spark_master,
                                  engines.Rule(late, lambda t: t[start_col] > _timestamp(cutoff)) if late else None)
        by_key = True
    else:
        rules = [Exclusion(late, lambda d: d[start_col] > cutoff)] if late else []
        df = read_table(path, contract, exclusions=rules, ledger=ledger)
        by_key = False
        missing = [c for c in wanted if c not in df.columns]
        if missing:
            raise InputError(source, [_missing(c, df.columns) for c in missing])

    def rows(mask: pd.Series) -> str:  # the first flagged rows: file rows, or key values of a queried table
        flagged = np.flatnonzero(np.asarray(mask, bool))[:5]
        if by_key and id_col:
            return "; ".join(key_rows(df.iloc[flagged], [id_col]))
        first = 1 if by_key else first_row(path)  # a queried table without key: places in its fixed order
        return "rows " + ", ".join(str(int(i) + first) for i in flagged)

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
        if not np.all(np.isfinite(duration.to_numpy())):
            problems.append(f"column '{duration_col}': durations that are not finite numbers, "
                            f"{rows(~np.isfinite(duration.to_numpy()))}. Fix: write the real durations or remove "
                            "those rows.")
        event, problem = event_flags(df[event_col], event_value, event_col)
        if problem:
            problems.append(problem)
    for c in covariates:
        empty = df[c].isna()
        if empty.any():
            problems.append(f"covariate '{c}': {int(empty.sum())} empty value(s), {rows(empty)}. Fix: fill them in "
                            "or leave the covariate out.")
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
    if "id" in data:  # one order whatever the table's (a query's rows have none): samples do not depend on it
        data = data.sort_values("id", kind="mergesort").reset_index(drop=True)
    return SurvivalTable(data, time_unit, group_col, covariates, "id" if "id" in data else None,
                         start_col if use_dates else None, source, notes)


def event_flags(raw: pd.Series, event_value: Any, event_col: str) -> tuple[pd.Series, str | None]:
    """1 where ``raw`` (the event column) means "left", else 0; and a problem text when it cannot be read.

    ``event_value`` arrives as text from the command line ("Yes", "1"): it matches cells with the same text
    (spaces around ignored) and, when both are numbers, cells with the same numeric value ("1" matches
    1.0). None means the column holds 1/0, yes/no or true/false. A value that never occurs is a problem
    naming the column and the values present.
    """
    filled = raw.notna()
    if event_value is None or isinstance(event_value, bool):
        flag = parse_bool(raw)
        bad = filled & flag.isna()
        if bad.any():
            return pd.Series(0, index=raw.index), (
                f"column '{event_col}': values {sorted(raw[bad].astype(str).unique())[:5]} are not 1/0, yes/no or "
                "true/false. Fix: set event_value to the value that means 'left', e.g. -p event_value Yes.")
        flag = flag.fillna(False).astype(bool)
        return (flag if event_value is not False else ~flag).astype(int), None
    text = str(event_value).strip()
    as_text = raw.astype(str).str.strip()
    hit = filled & (as_text == text)
    target = parse_number(pd.Series([text]))[0]
    numbers = parse_number(raw)
    if np.isfinite(target) and numbers[filled].notna().all():
        hit |= filled & (numbers == target)
    if not hit.any():
        found = sorted(as_text[filled].unique())
        shown = found[:10] + (["..."] if len(found) > 10 else [])
        near = [f for f in found if f.lower() == text.lower()]
        hint = f" Did you mean {near[0]!r}?" if near else ""
        return pd.Series(0, index=raw.index), (
            f"column '{event_col}': the event value {text!r} never occurs (values found: {shown}).{hint} Fix: set "
            "event_value to the value that means 'left'.")
    return hit.astype(int), None


def check_estimable(st: SurvivalTable) -> None:
    """Refuse a table that cannot show churn at all: nobody left, or nothing left to analyse.

    Raises
    ------
    NotEstimable
        With one message that says what is wrong and what to change.
    """
    zero = sum(n["rows"] for n in st.notes if n["rule"].startswith("relationships of zero length"))
    dropped = (f" ({zero} relationship(s) of zero length — ended or observed on the day they started — were left out)"
               if zero else "")
    if st.n == 0:
        raise NotEstimable(f"Input {st.source}: no customer has a relationship longer than zero{dropped}, so there is "
                           "nothing to analyse. Fix: check the start and end dates (or the duration column) and as_of.")
    if st.n_events == 0:
        raise NotEstimable(f"Input {st.source}: nobody left during the observation window (0 of {st.n:,} customers"
                           f"{dropped}), so churn cannot be measured. Fix: check that the end date or event column and "
                           "event_value say who left, and that as_of is not too early.")


def check_parameters(horizon: Any, fast_resolution_hours: Any = 24.0, min_group_size: Any = 5) -> None:
    """Refuse a horizon not above 0, a negative fast-resolution threshold or a min_group_size below 1."""
    def number(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

    problems = []
    if not (number(horizon) and horizon > 0):
        problems.append(f"-p horizon must be a number greater than 0, got {horizon!r}; e.g. -p horizon 24.")
    if not (number(fast_resolution_hours) and fast_resolution_hours >= 0):
        problems.append(f"-p fast_resolution_hours must be 0 or more, got {fast_resolution_hours!r}; e.g. "
                        "-p fast_resolution_hours 24.")
    if not (isinstance(min_group_size, int) and not isinstance(min_group_size, bool) and min_group_size >= 1):
        problems.append(f"-p min_group_size must be a whole number of at least 1, got {min_group_size!r}.")
    if problems:
        raise ParameterError(" ".join(problems))


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def fold_small_groups(st: SurvivalTable, min_n: int = 5) -> SurvivalTable:
    """The table with every small group folded away, so no group under ``min_n`` customers is shown anywhere.

    Levels of ``group_col`` and of text covariates with fewer than ``min_n`` customers become
    "Other (small groups)" (:func:`cxresearch.privacy.merge_small_groups`: the folded group is itself at least
    ``min_n``). Missing group labels become "(no value)". A true/false covariate stays true/false (the models
    enter it as one 0/1 column) unless one side has fewer than ``min_n`` customers: then both sides are folded
    together. A covariate left with one level is dropped (listed in ``dropped``). A numeric or true/false
    covariate used as ``group_col`` keeps its values; the groups go to a copy.
    """
    data = st.data.copy()
    folded: dict[str, list[str]] = {}
    group_col = st.group_col
    if group_col:
        labels = data[group_col]
        if group_col in st.covariates and pd.api.types.is_numeric_dtype(labels):  # numbers and true/false
            group_col = f"{group_col} (group)"
        labels = labels.astype(object).where(labels.notna(), NO_VALUE).astype(str)
        data[group_col], folded_labels = merge_small_groups(labels, min_n)
        if folded_labels:
            folded[st.group_col] = folded_labels
    covariates, dropped = [], []
    for c in st.covariates:
        if c == group_col or _is_numeric(data[c]):
            pass
        elif pd.api.types.is_bool_dtype(data[c]):
            merged, folded_labels = merge_small_groups(data[c], min_n)
            if folded_labels:  # two levels: folding the small one folds both, so the covariate is dropped below
                data[c], folded[c] = merged, folded_labels
        else:
            data[c], folded_labels = merge_small_groups(data[c].astype(str), min_n)
            if folded_labels:
                folded[c] = folded_labels
        if data[c].nunique() < 2:
            dropped.append(c)
        else:
            covariates.append(c)
    return SurvivalTable(data, st.time_unit, group_col, covariates, st.id_col, st.start_col, st.source,
                         list(st.notes), folded, dropped)


def covariate_design(st: SurvivalTable, covariates: list[str] | None = None) -> DesignMatrix:
    """The models' covariate matrix, from the package's one builder :func:`cxresearch.design.design_matrix`.

    ``covariates`` (default: the table's) enter as given (:func:`cxresearch.design.formula_of`): numbers as they
    are, 0/1 and true/false columns as one 0/1 column, text as ``col[level]`` indicators against the reference
    level (the most frequent level, ties to the first in sorted order). ``references`` holds each text
    covariate's reference level, for labels (``cx.display.use_labels(references=...)``).
    """
    return design_matrix(st.data, formula_of(st.covariates if covariates is None else covariates))


# ---------------------------------------------------------------------------------------------
# Kaplan–Meier, log-rank, RMST


def groups_of(st: SurvivalTable, min_n: int = 5) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Data per group with at least ``min_n`` customers, and the names of suppressed groups."""
    if not st.group_col:
        return {"all customers": st.data}, []
    labels = st.data[st.group_col]
    labels = labels.astype(object).where(labels.notna(), NO_VALUE).astype(str)
    parts = dict(tuple(st.data.groupby(labels, sort=True)))
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
    if not (isinstance(tau, int | float) and math.isfinite(tau) and tau > 0):
        raise ParameterError(f"The horizon of the restricted mean must be a number greater than 0, got {tau!r}.")
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
               z: float = Z95) -> pd.DataFrame:
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
        row["rmst"], (row["rmst_low"], row["rmst_high"]) = est, normal_interval(est, se, z)
        row["rmst_se"] = se
        rows.append(row)
    return pd.DataFrame(rows)


def logrank(groups: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Log-rank test that all groups share one survival curve (chi-square with k-1 df)."""
    from lifelines.statistics import multivariate_logrank_test

    d = pd.concat([g.assign(_g=name) for name, g in groups.items()])
    res = multivariate_logrank_test(d["duration"], d["_g"], d["event"])
    return {"chi2": float(res.test_statistic), "df": int(res.degrees_of_freedom), "p_value": float(res.p_value)}


def pairwise_logrank(groups: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Log-rank test for every pair of groups with p-values adjusted for multiplicity (Holm)."""
    from lifelines.statistics import logrank_test
    rows = []
    for a, b in combinations(groups, 2):
        ga, gb = groups[a], groups[b]
        res = logrank_test(ga["duration"], gb["duration"], ga["event"], gb["event"])
        rows.append({"group A": a, "group B": b, "chi2": float(res.test_statistic), "p_value": float(res.p_value)})
    out = pd.DataFrame(rows, columns=["group A", "group B", "chi2", "p_value"])
    if len(out):
        out["p_value_holm"] = holm(out["p_value"])
    return out


def rmst_differences(summary: pd.DataFrame, reference: str | None = None, z: float = Z95) -> pd.DataFrame:
    """RMST of each group minus the reference group's (default: the largest group), with 95% CI and p-value."""
    if len(summary) < 2:
        return pd.DataFrame(columns=["group", "reference", "difference", "ci_low", "ci_high", "p_value"])
    ref = reference or stable_sort(summary, "customers", ascending=False, tie="group")["group"].iloc[0]
    r = summary.set_index("group")
    rows = []
    for g in r.index.drop(ref):
        diff = r.at[g, "rmst"] - r.at[ref, "rmst"]
        se = math.hypot(r.at[g, "rmst_se"], r.at[ref, "rmst_se"])
        lo, hi = normal_interval(diff, se, z)
        rows.append({"group": g, "reference": ref, "difference": diff, "ci_low": lo, "ci_high": hi,
                     "p_value": float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else math.nan})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Cox models


@dataclass
class CoxResult:
    """A fitted Cox model with its hazard-ratio table and proportional-hazards check."""

    fitter: Any
    hazard_ratios: pd.DataFrame  # term, hr, ci_low, ci_high, p_value
    concordance: float
    references: dict[str, str]  # text covariate -> its reference level (:func:`covariate_design`)
    ph_test: pd.DataFrame  # term, statistic, p_value, p_value_holm
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
        "p_value": summary["p"].to_numpy(),
    }).reset_index(drop=True)


#: Newton–Raphson settings for every Cox fit: stop only when a further step is negligible (precision) —
#: never on a small relative change of the log-likelihood, which can stop early by up to 1e-5 relative
COX_OPTIONS = {"precision": 1e-12, "r_precision": 0.0, "max_steps": 500}
MAX_LOG_HR_PER_SD = 10.0  # a log hazard ratio above this per standard deviation of a covariate is separation
COX_FIX = ("leave out covariates that almost decide who leaves (or merge rare levels), or rescale a covariate on a "
           "huge scale (e.g. thousands instead of units).")


def _term_text(term: str) -> str:
    """``plan[premium]`` -> ``plan = 'premium'``; other terms unchanged."""
    if term.endswith("]") and "[" in term:
        col, level = term[:-1].split("[", 1)
        return f"{col} = {level!r}"
    return f"'{term}'"


def separation(df: pd.DataFrame, terms: list[str], entry: str | None = None) -> str | None:
    """Why a Cox or AFT model cannot be estimated because a term perfectly separates leavers, in plain words.

    For 0/1 terms: nobody with the trait left (its hazard ratio would be 0), or everybody who left had it (infinite).
    For numeric terms (when there is no delayed ``entry``): at every departure the customer who left had the
    highest (or the lowest) value of everyone still at risk, so the likelihood keeps rising without limit.
    Returns None when no term separates.
    """
    e = df["event"].to_numpy() > 0
    t = df["duration"].to_numpy(float) if "duration" in df else df["stop"].to_numpy(float)
    collinear = _collinear(df[terms])
    if collinear:
        return collinear
    for term in terms:
        x = df[term].to_numpy(float)
        if np.unique(x).size < 2:
            return f"{_term_text(term)} has the same value for every customer, so its effect cannot be estimated"
        if set(np.unique(x)) <= {0.0, 1.0}:
            trait = _term_text(term) if term.endswith("]") else f"'{term}' = 1"
            with_it, events_with = int((x == 1).sum()), int((e & (x == 1)).sum())
            if events_with == 0:
                return (f"nobody with {trait} left ({with_it:,} customers), so its hazard ratio would be "
                        "zero (perfect separation)")
            if events_with == int(e.sum()):
                return (f"everybody who left had {trait}, so its hazard ratio would be infinite (perfect "
                        "separation)")
            continue
        if entry is not None or not e.any():
            continue
        order = np.argsort(-t, kind="mergesort")
        ts, xs = t[order], x[order]
        starts = np.r_[0, np.flatnonzero(np.diff(ts) != 0) + 1]
        high = np.maximum.accumulate(np.maximum.reduceat(xs, starts))  # max over everyone with time >= this time
        low = np.minimum.accumulate(np.minimum.reduceat(xs, starts))
        group = np.cumsum(np.r_[True, np.diff(ts) != 0]) - 1
        hi_at, lo_at = high[group][np.argsort(order)], low[group][np.argsort(order)]
        at_max, at_min = x[e] >= hi_at[e], x[e] <= lo_at[e]
        if at_max.all() and not at_min.all():
            return (f"every customer who left had the highest {_term_text(term)} of everyone still a customer at that "
                    "moment, so its hazard ratio would be infinite (perfect separation)")
        if at_min.all() and not at_max.all():
            return (f"every customer who left had the lowest {_term_text(term)} of everyone still a customer at that "
                    "moment, so its hazard ratio would be zero (perfect separation)")
    return None


def _collinear(x: pd.DataFrame) -> str | None:
    """Plain words when one term is a linear combination of others (their effects cannot be told apart)."""
    if x.shape[1] < 2:
        return None
    m = x.to_numpy(float)
    mean = m.mean(0)
    m = m[np.unique(row_patterns(m), return_index=True)[1]]  # the distinct rows span the same space: faster
    m = m - mean
    scale = np.abs(m).max(0)
    m = m / np.where(scale > 0, scale, 1.0)
    if np.linalg.matrix_rank(m) == m.shape[1]:
        return None
    kept: list[int] = []
    for j in range(m.shape[1]):
        if np.linalg.matrix_rank(m[:, [*kept, j]]) == len(kept) + 1:
            kept.append(j)
            continue
        coef = np.linalg.lstsq(m[:, kept], m[:, j], rcond=None)[0]
        others = ", ".join(_term_text(str(x.columns[k])) for k, c in zip(kept, coef, strict=True) if abs(c) > 1e-8)
        return (f"{_term_text(str(x.columns[j]))} carries the same information as {others} (the covariates are "
                "collinear), so their effects cannot be told apart")
    return None


def _refuse_separation(df: pd.DataFrame, terms: list[str], model: str, entry: str | None = None) -> None:
    from cxresearch.fits import FITS

    reason = separation(df, terms, entry)
    if reason:
        FITS.record(model, False, "not fitted", [f"perfect separation: {reason}"])
        raise FitError(f"The {model} cannot be estimated: {reason}. No estimate from it is shown. Fix: {COX_FIX}")


def _check_lifelines(fitter: Any, df: pd.DataFrame) -> str | None:
    """Accept a lifelines fit only with finite estimates and standard errors and no runaway coefficient."""
    params = fitter.params_
    se = fitter.standard_errors_
    if not finite(params.to_numpy()) or not finite(se.to_numpy()) or bool((se.to_numpy() <= 0).any()):
        return "some estimates or standard errors are not finite"
    names = params.index.get_level_values(-1)
    sd = np.array([float(df[c].std()) if c in df else 0.0 for c in names])
    scaled = np.abs(params.to_numpy() * np.where(sd > 0, sd, 0.0))
    if scaled.size and float(scaled.max()) > MAX_LOG_HR_PER_SD:
        return (f"a coefficient ran off ({float(scaled.max()):.3g} per standard deviation of "
                f"{_term_text(str(names[int(scaled.argmax())]))}): separation or a covariate on a huge scale")
    return None


def fit_cox_model(df: pd.DataFrame, model: str = "Cox model", strata: list[str] | None = None,
                  patterns: bool = False) -> Any:
    """A lifelines ``CoxPHFitter`` fitted through :func:`cxresearch.fits.fit_with_retries`.

    ``df`` has ``duration``, ``event`` and the covariate columns (and ``strata`` columns). Attempts:
    Newton–Raphson with step 0.95, then 0.5, then 0.1 (lifelines standardises the covariates), and only if
    all fail a lightly penalised fit (ridge 0.001, which shrinks hazard ratios slightly towards 1 — the fit
    record says so). Every attempt must converge tightly (:data:`COX_OPTIONS`) and pass
    :func:`_check_lifelines`. Perfect separation is refused first with a plain-words :class:`FitError`.

    With ``patterns`` (and no strata) the first two attempts fit on covariate patterns instead and return a
    :class:`PatternCoxFit` (the same estimates, standard errors, concordance and predictions; at 1M customers
    0.5 s against 8 s for lifelines' fit and concordance) when the covariates have few patterns; lifelines'
    attempts follow if they fail.
    """
    from lifelines import CoxPHFitter

    terms = [c for c in df.columns if c not in ("duration", "event", *(strata or []))]
    if strata:  # risk sets are per stratum: only the 0/1 checks apply
        terms = [t for t in terms if set(np.unique(df[t])) <= {0.0, 1.0}]
    _refuse_separation(df, terms, model)
    first = _pattern_attempts(df, terms) if patterns and not strata else []

    def attempt(step: float, penalizer: float = 0.0):
        def run() -> Any:
            return CoxPHFitter(penalizer=penalizer).fit(df, "duration", "event", strata=strata,
                                                        fit_options={"step_size": step, **COX_OPTIONS})
        return run

    return fit_with_retries(model, [
        *first,
        ("Newton–Raphson on standardised covariates, step 0.95", attempt(0.95)),
        ("Newton–Raphson on standardised covariates, step 0.5", attempt(0.5)),
        ("Newton–Raphson on standardised covariates, step 0.1", attempt(0.1)),
        ("PENALISED Newton–Raphson (ridge 0.001: hazard ratios shrunk slightly towards 1), step 0.1",
         attempt(0.1, 0.001)),
    ], check=lambda f: None if isinstance(f, PatternCoxFit) else _check_lifelines(f, df), fix=COX_FIX)


def is_penalised(fitter: Any) -> bool:
    """Whether a lifelines fit used a penalty (its hazard ratios are shrunk towards 1)."""
    pen = getattr(fitter, "penalizer", 0.0)
    return bool(np.any(np.asarray(pen, float) > 0))


def fit_cox(st: SurvivalTable, alpha: float = 0.05, ph_sample: int = 20_000, seed: int = 0) -> CoxResult:
    """Cox model on the covariates, Schoenfeld-residual PH check, stratified refit when a covariate fails.

    Above ``ph_sample`` customers the model is fitted on covariate patterns when the covariates allow
    (``fit_cox_model(..., patterns=True)``: the same estimates, standard errors, concordance and predictions as
    lifelines, tested).

    The PH test (lifelines' ``proportional_hazard_test``, rank time transform) runs on a random sample of
    at most ``ph_sample`` customers: on very large tables every tiny deviation is "significant" and the
    test's memory grows with n². A covariate fails when any of its terms has a Holm-adjusted p < ``alpha``.
    Every fit goes through :func:`fit_cox_model` (retries, convergence check, separation refused).
    """
    from lifelines.statistics import proportional_hazard_test
    d = covariate_design(st)
    x = d.X
    if x.shape[1] == 0:
        raise NotEstimable(f"Input {st.source}: no covariates are left for the Cox model"
                           + (f" ({', '.join(st.dropped)} had one level after small groups were folded)"
                              if st.dropped else "") + ". Fix: give covariates with at least two well-filled levels.")
    df = pd.concat([st.data[["duration", "event"]], x], axis=1)
    # above ph_sample customers, patterns: lifelines then fits the sample for the PH check
    cph = fit_cox_model(df, "Cox model", patterns=len(df) > ph_sample)
    hr = _hr_table(cph.summary)
    sample = df.sample(n=min(ph_sample, len(df)), random_state=seed) if len(df) > ph_sample else df
    ph_fit = cph if sample is df else fit_cox_model(sample, "Cox model (sample for the proportional-hazards check)")
    test = proportional_hazard_test(ph_fit, sample, time_transform="rank")
    ph = test.summary.reset_index().rename(columns={"index": "term", "test_statistic": "statistic"})
    ph = ph[["term", "statistic", "p"]].rename(columns={"p": "p_value"})
    ph["p_value_holm"] = holm(ph["p_value"])
    failing_terms = set(ph.loc[ph["p_value_holm"] < alpha, "term"])
    failures = [c for c in st.covariates if any(t == c or t.startswith(f"{c}[") for t in failing_terms)]
    result = CoxResult(cph, hr, float(cph.concordance_index_), d.references, ph, failures,
                       design_columns=list(x.columns))
    if failures:
        keep = [c for c in st.covariates if c not in failures]
        xs = covariate_design(st, keep).X
        sdf = pd.concat([st.data[["duration", "event"]], xs, st.data[failures].astype(str)], axis=1)
        if xs.shape[1]:
            result.stratified = fit_cox_model(sdf, "Cox model stratified by " + ", ".join(failures), strata=failures)
            result.stratified_hazard_ratios = _hr_table(result.stratified.summary)
        else:
            result.stratified_hazard_ratios = pd.DataFrame(columns=["term", "hr", "ci_low", "ci_high", "p_value"])
    return result


#: complaints opened at the same moment: the later in this order sets the state that follows (the worst)
STATE_ORDER = {"none": 0, "fast": 1, "slow": 2, "unresolved": 3}


def complaint_episodes(st: SurvivalTable, complaints: pd.DataFrame | ComplaintLog,
                       fast_hours: float = 24.0) -> pd.DataFrame:
    """Counting-process rows (start, stop] per customer, split at each complaint.

    The state after a complaint is ``fast`` (resolved within ``fast_hours``), ``slow`` (resolved later) or
    ``unresolved``, and holds until the next complaint; before any complaint it is ``none``. Of complaints
    opened at the same moment the worst sets the state. Complaints after a customer's last observed time do
    not split anything. A :class:`ComplaintLog` (complaints kept in their engine) builds the same rows by query.
    """
    if isinstance(complaints, ComplaintLog):
        return complaints.episodes(fast_hours)
    if st.id_col is None or st.start_col is None:
        raise ValueError("Complaints need customer IDs and start dates in the customer table.")
    unit = TIME_UNITS[st.time_unit]
    base = st.data[["id", "start", "duration", "event"]]
    c = complaints.merge(base[["id", "start", "duration"]], left_on="customer_id", right_on="id", how="inner")
    c["t"] = (c["opened_at"] - c["start"]).dt.total_seconds() / 86400 / unit
    c = c[(c["t"] >= 0) & (c["t"] < c["duration"])]  # load_inputs counts the others in the exclusion ledger
    resolved = c["resolved"].astype(bool)
    fast = resolved & (c["hours_to_resolve"] <= fast_hours)
    c["state"] = np.where(~resolved, "unresolved", np.where(fast, "fast", "slow"))
    rows = pd.concat([base[["id"]].assign(t=0.0, state="none"), c[["id", "t", "state"]]], ignore_index=True)
    rows["rank"] = rows["state"].map(STATE_ORDER)
    rows = rows.sort_values(["id", "t", "rank"], kind="mergesort").reset_index(drop=True)
    rows = rows.merge(base[["id", "duration", "event"]], on="id", how="left")
    nxt = rows.groupby("id", sort=False)["t"].shift(-1)
    last = nxt.isna()
    rows["stop"] = nxt.fillna(rows["duration"])
    rows["event"] = np.where(last, rows["event"], 0)
    rows = rows[rows["stop"] > rows["t"]].rename(columns={"t": "start"})
    return rows[["id", "start", "stop", "event", "state"]].reset_index(drop=True)


@dataclass
class ComplaintLog:
    """Complaints kept in their engine (Parquet files, a database table), each with ``t``, its time since the
    customer's start in ``time_unit``, joined to the analysed customers (``id``, ``duration``, ``event``);
    :func:`query_complaints` checks them and counts the exclusions. :meth:`episodes` builds the episodes."""

    table: Any  # Ibis expression: id, t, resolved, hours_to_resolve, duration, event
    customers: Any  # Ibis expression: id, duration, event
    source: str
    sorted_as_text: bool = False  # the engine orders text by code point, as Python does (DuckDB, Spark)

    def episodes(self, fast_hours: float = 24.0) -> pd.DataFrame:
        """:func:`complaint_episodes` as one query (window ``lead`` over each customer's complaint times)."""
        import ibis

        c = self.table
        state = ibis.cases((~c.resolved, "unresolved"), (c.hours_to_resolve <= fast_hours, "fast"), else_="slow")
        rank = ibis.cases(*[(state == k, v) for k, v in STATE_ORDER.items()], else_=0)
        points = self.customers.select("id", "duration", "event", t=ibis.literal(0.0), state=ibis.literal("none"),
                                       rank=ibis.literal(0)).union(
            c.select("id", "duration", "event", t=c.t, state=state, rank=rank))
        following = points.t.lead().over(ibis.window(group_by=points.id, order_by=[points.t, points.rank]))
        ep = points.mutate(stop=ibis.coalesce(following, points.duration),
                           event=ibis.ifelse(following.isnull(), points.event, 0))
        ep = ep.filter(ep.stop > ep.t).select("id", start=ep.t, stop=ep.stop, event=ep.event, state=ep.state)
        out = engines.fetch(ep.order_by(["id", "start"]), self.source).to_pandas()
        if self.sorted_as_text is False:  # a database's collation may order text otherwise than Python does
            out = out.sort_values(["id", "start"], kind="mergesort").reset_index(drop=True)
        return out.astype({"id": "string[pyarrow]", "start": float, "stop": float, "event": int, "state": object})


def query_complaints(path: Any, st: SurvivalTable, ledger: Ledger, engine: str = "duckdb",
                     spark_master: str = "local[*]") -> ComplaintLog:
    """The complaints of ``path`` checked by queries in ``engine`` (the contract
    :data:`cxresearch.contracts.COMPLAINTS`), with the rules of :func:`complaint_rules` counted in one query.

    The analysed customers' ``id``, start, ``duration`` and ``event`` are sent to the engine (a temporary
    table) to join them; the complaints stay there.
    """
    import ibis

    opened = engines.open_table(path, "complaints", engine, spark_master)
    table = engines.checked_table(opened, contracts.COMPLAINTS, ledger=ledger)
    known = st.data[["id", "start", "duration", "event"]]
    customers = ibis.memtable(pd.DataFrame({
        "id": known["id"].astype(str).to_numpy(object), "start_us": known["start"].to_numpy("datetime64[us]").astype(
            "int64"), "duration": known["duration"].to_numpy(float), "event": known["event"].to_numpy("int64")}))
    unit = TIME_UNITS[st.time_unit]
    joined = table.left_join(customers, table.customer_id == customers.id)
    joined = joined.mutate(t=(engines.epoch_micros(joined.opened_at, opened.con) - joined.start_us) / 1e6 / 86400
                           / unit)
    own, unknown, before, after = (*contracts.COMPLAINTS.exclusions, *complaint_rules(st))
    rules = [engines.Rule(own.rule, lambda d: d.resolved & d.hours_to_resolve.isnull()),
             engines.Rule(unknown.rule, lambda d: d.id.isnull()),
             engines.Rule(before.rule, lambda d: d.t < 0),
             engines.Rule(after.rule, lambda d: d.t >= d.duration)]
    kept, _ = engines.exclude(joined, "complaints", rules, ledger, opened.path)
    kept = kept.select("id", "t", "resolved", "hours_to_resolve", "duration", "event")
    return ComplaintLog(kept, customers.select("id", "duration", "event"), opened.source,
                        opened.con.name in ("duckdb", "pyspark"))


def row_patterns(x: np.ndarray) -> np.ndarray:
    """A code per row of ``x``, equal for equal rows, numbered in order of first appearance (column by column
    with pandas' factorize: seconds for millions of rows, where ``np.unique(axis=0)`` takes half a minute)."""
    codes = np.zeros(len(x), dtype=np.int64)
    for j in range(np.shape(x)[1]):
        level, levels = pd.factorize(x[:, j])
        codes = pd.factorize(codes * len(levels) + level)[0]
    return codes


class PatternCox:
    """The Cox partial likelihood with Efron ties for counting-process rows (start, stop], computed on covariate
    patterns: customers' episodes with the same covariate row are summed into at-risk and event counts per event
    time, so one Newton step costs patterns x event times instead of rows.

    Exact: the same likelihood, score and information as a per-row Efron implementation (lifelines'
    ``CoxTimeVaryingFitter``; statsmodels' ``PHReg`` with entry times, once entries on an event time are moved
    just after it — PHReg counts such a row as at risk then). A row is at risk at event time t when
    start < t <= stop. Worth it when there are few patterns — text covariates and complaint states: at 1M
    customers (2.6M episodes, ~700 patterns) the time-varying model takes about 11 s against about a minute with
    ``PHReg``. Written here because no library fits Efron's likelihood on counts (lifelines' case weights handle
    ties differently).
    """

    def __init__(self, start: np.ndarray, stop: np.ndarray, event: np.ndarray, x: np.ndarray,
                 which: np.ndarray | None = None) -> None:
        x = np.asarray(x, float)
        which = row_patterns(x) if which is None else which  # ``which``: row_patterns(x), when known
        self.patterns = x[np.unique(which, return_index=True)[1]]
        died = np.asarray(event) == 1
        self.times = np.unique(np.asarray(stop)[died])
        n_p, n_t = len(self.patterns), len(self.times)
        first = np.searchsorted(self.times, start, side="right")  # first event time after the entry
        last = np.searchsorted(self.times, stop, side="right")  # one past the last event time <= stop
        change = np.bincount(which * (n_t + 1) + first, minlength=n_p * (n_t + 1)) - np.bincount(
            which * (n_t + 1) + last, minlength=n_p * (n_t + 1))
        self.at_risk = np.cumsum(change.reshape(n_p, n_t + 1), axis=1)[:, :n_t].astype(float)
        self.deaths = np.bincount(which[died] * n_t + last[died] - 1, minlength=n_p * n_t).reshape(n_p, n_t).astype(
            float)
        d = self.deaths.sum(0).astype(int)
        self.slot_time = np.repeat(np.arange(n_t), d)  # one slot per death: Efron's j = 0..d-1 at each time
        self.slot_share = (np.arange(len(self.slot_time)) - np.repeat(np.cumsum(d) - d, d)) / np.repeat(d, d)
        self.starts = np.cumsum(d) - d
        self.dead_x = self.deaths.sum(1) @ self.patterns

    @staticmethod
    def feasible(n_patterns: int, n_times: int) -> bool:
        return n_patterns * n_times <= 20_000_000

    def _parts(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        x, a, k = self.patterns, self.slot_share, self.slot_time
        eta = x @ beta
        top = float(np.max(eta, initial=0.0))
        w = np.exp(eta - top)  # scaled: ratios are unchanged, the log-likelihood gets top back per death below
        rw, dw = self.at_risk * w[:, None], self.deaths * w[:, None]
        s, e = rw.sum(0), dw.sum(0)
        s1, e1 = rw.T @ x, dw.T @ x  # times x terms
        den = s[k] - a * e[k]
        if not np.all(den > 0):
            raise ArithmeticError("an empty risk set")
        def per_time(v: np.ndarray) -> np.ndarray:
            return np.add.reduceat(v, self.starts)

        c0, c1 = per_time(1 / den), per_time(a / den)
        q0, q1, q2 = per_time(1 / den**2), per_time(a / den**2), per_time(a**2 / den**2)
        loglik = float(self.deaths.sum(1) @ eta - np.log(den).sum() - top * len(den))
        score = self.dead_x - s1.T @ c0 + e1.T @ c1
        second = (x.T * (rw @ c0)) @ x - (x.T * (dw @ c1)) @ x
        outer = (s1.T * q0) @ s1 - (s1.T * q1) @ e1 - (e1.T * q1) @ s1 + (e1.T * q2) @ e1
        return loglik, score, second - outer  # the last: the observed information

    def loglik(self, beta: np.ndarray) -> float:
        return self._parts(np.asarray(beta, float))[0]

    def fit(self, tol: float = 1e-10, maxiter: int = 100, step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Newton–Raphson from 0 (each step halved until the likelihood rises); the estimates and their
        covariance (inverse information). Raises RuntimeError when it does not settle in ``maxiter`` steps."""
        beta = np.zeros(self.patterns.shape[1])
        ll, score, info = self._parts(beta)
        for _ in range(maxiter):
            delta = step * np.linalg.solve(info, score)
            for _ in range(30):
                try:
                    new = self._parts(beta + delta)
                except ArithmeticError:  # overflow on the way: a shorter step
                    new = (-math.inf, score, info)
                if np.isfinite(new[0]) and new[0] >= ll - 1e-12 * abs(ll):
                    break
                delta /= 2
            else:
                raise RuntimeError("no step along the Newton direction raises the likelihood")
            beta = beta + delta
            ll, score, info = new
            if np.max(np.abs(delta), initial=0) <= tol:
                return beta, np.linalg.inv(info)
        raise RuntimeError(f"Newton-Raphson did not settle in {maxiter} steps")

    def newton_step(self, beta: np.ndarray) -> np.ndarray:
        _, score, info = self._parts(np.asarray(beta, float))
        return np.linalg.solve(info, score)


def fit_time_varying(st: SurvivalTable, episodes: pd.DataFrame, ties: str = "efron") -> pd.DataFrame:
    """Cox model with the covariates and the time-varying complaint state (reference: no complaint yet).

    The counting-process likelihood (each episode's start a delayed entry) on standardised covariates, through
    :func:`cxresearch.fits.fit_with_retries`: on covariate patterns (:class:`PatternCox`, exact) when there are
    few, else with statsmodels ``PHReg``; Newton–Raphson (tolerance 1e-10), then half steps (patterns) or BFGS. A fit counts as converged only when one more Newton step would move no
    coefficient by more than 1e-6 and none runs off. Returns term, hr, ci_low, ci_high, p_value, plus the
    fast-vs-slow contrast. The covariates are coded by :func:`covariate_design`; the complaint states are 0/1
    columns against the fixed reference "no complaint yet" (not the most frequent state).
    """
    from statsmodels.duration.hazard_regression import PHReg

    x = covariate_design(st).X
    ep = episodes.reset_index(drop=True)
    row = pd.Index(st.data["id"]).get_indexer(ep["id"])  # each episode's customer (IDs are unique), not a merge
    if (row < 0).any():
        raise ValueError("Every episode must belong to a customer of the survival table.")
    states = pd.DataFrame({s: (ep["state"] == s).astype(float) for s in ("fast", "slow", "unresolved")})
    states = states.loc[:, states.sum() > 0]
    exog = pd.concat([pd.DataFrame(x.to_numpy(float)[row], columns=x.columns), states], axis=1)
    model_name = "Cox model with complaint states"
    _refuse_separation(pd.concat([ep[["stop", "event"]], exog], axis=1), list(exog.columns), model_name, entry="start")
    raw = exog.to_numpy(float)
    mean, sd = raw.mean(0), raw.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (raw - mean) / sd
    start, stop, event = ep["start"].to_numpy(float), ep["stop"].to_numpy(float), ep["event"].to_numpy()
    which = row_patterns(raw) if ties == "efron" else None  # standardising keeps equal rows equal
    if which is not None and PatternCox.feasible(int(which.max()) + 1, len(np.unique(stop[event == 1]))):
        params, cov = _fit_pattern_cox(model_name, PatternCox(start, stop, event, z, which))
        return _time_varying_table(list(exog.columns), params / sd, cov / np.outer(sd, sd))
    # PHReg counts a row entering at an event time as at risk then; the rule here (and PatternCox's, lifelines',
    # R's) is start < t <= stop: entries moved just after their time
    model = PHReg(stop, z, status=event, entry=np.nextafter(start, np.inf), ties=ties)

    def check(fit: Any) -> str | None:
        params = np.asarray(fit.params)
        if not finite(params) or not finite(np.asarray(fit.bse)):
            return "some estimates or standard errors are not finite"
        if np.max(np.abs(params), initial=0) > MAX_LOG_HR_PER_SD:
            return "a coefficient ran off (separation or a covariate on a huge scale)"
        step = np.linalg.solve(model.hessian(params), model.score(params))
        if np.max(np.abs(step), initial=0) > 1e-6:
            return f"did not settle: one more Newton step would move a coefficient by {np.max(np.abs(step)):.2g}"
        return None

    fit = fit_with_retries(model_name, [
        ("Newton–Raphson on standardised covariates, tolerance 1e-10",
         lambda: model.fit(method="newton", maxiter=200, tol=1e-10, disp=0)),
        ("BFGS on standardised covariates, gradient tolerance 1e-10",
         lambda: model.fit(method="bfgs", maxiter=5000, gtol=1e-10, disp=0)),
    ], check=check, fix=COX_FIX)
    return _time_varying_table(list(exog.columns), np.asarray(fit.params) / sd,
                               np.asarray(fit.cov_params()) / np.outer(sd, sd))


#: the settings :class:`PatternCox` is tried with, in order
PATTERN_SETTINGS = (("Newton–Raphson on covariate patterns (exact Efron likelihood), tolerance 1e-10", {}),
                    ("Newton–Raphson on covariate patterns, half steps, 400 iterations", {"maxiter": 400, "step": 0.5}))


def _pattern_check(model: PatternCox, params: np.ndarray, cov: np.ndarray) -> str | None:
    """The acceptance rule of a pattern fit, as for the ``PHReg`` fit: finite, no runaway coefficient, one more
    Newton step moves nothing by more than 1e-6."""
    if not finite(params) or not finite(np.diag(cov)) or np.any(np.diag(cov) <= 0):
        return "some estimates or standard errors are not finite"
    if np.max(np.abs(params), initial=0) > MAX_LOG_HR_PER_SD:
        return "a coefficient ran off (separation or a covariate on a huge scale)"
    step = model.newton_step(params)
    if np.max(np.abs(step), initial=0) > 1e-6:
        return f"did not settle: one more Newton step would move a coefficient by {np.max(np.abs(step)):.2g}"
    return None


def _fit_pattern_cox(model_name: str, model: PatternCox) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`PatternCox.fit` through :func:`cxresearch.fits.fit_with_retries` (:data:`PATTERN_SETTINGS`,
    accepted by :func:`_pattern_check`)."""
    return fit_with_retries(model_name, [
        (label, lambda kw=kw: model.fit(tol=1e-10, **kw)) for label, kw in PATTERN_SETTINGS
    ], check=lambda fit: _pattern_check(model, *fit), fix=COX_FIX)


def pattern_concordance(duration: np.ndarray, event: np.ndarray, predicted: np.ndarray) -> float | None:
    """Harrell's concordance as lifelines' ``concordance_index(duration, predicted, event)`` counts it, from
    counts per (predicted value, duration) when the predictions take few values (a model on text covariates).

    A pair is comparable when one customer left at t and the other's time is later, or the other was censored at
    t; it is concordant when the one who left first has the lower predicted time; equal predictions count half.
    Exact (the same integer counts as lifelines' sorted-tree walk, 4 s at 1M customers). None when the
    predictions x durations table would be too large, or when no pair is comparable (nobody left).
    """
    levels, lev = np.unique(np.asarray(predicted, float), return_inverse=True)
    times, k = np.unique(np.asarray(duration, float), return_inverse=True)
    n_l, n_t = len(levels), len(times)
    if n_l * n_t > 20_000_000:
        return None
    died = np.asarray(event) == 1
    D = np.bincount(lev[died] * n_t + k[died], minlength=n_l * n_t).reshape(n_l, n_t)
    C = np.bincount(lev[~died] * n_t + k[~died], minlength=n_l * n_t).reshape(n_l, n_t)
    before = np.cumsum(D, axis=1) - D  # left strictly earlier: comparable with one who leaves at t
    upto = before + D  # left at t or earlier: comparable with one censored at t
    correct = tied = pairs = 0
    for n, pool in ((D, before), (C, upto)):
        lower = np.cumsum(pool, axis=0) - pool  # pooled customers with a lower predicted time
        correct += int((n * lower).sum())
        tied += int((n * pool).sum())
        pairs += int((n.sum(0) * pool.sum(0)).sum())
    return (correct + tied / 2) / pairs if pairs else None


@dataclass
class PatternCoxFit:
    """A Cox model on (duration, event) fitted on covariate patterns (:class:`PatternCox`), offering what the
    analysis reads from lifelines' ``CoxPHFitter`` with the same values: ``summary`` (its columns),
    ``params_``, ``standard_errors_``, ``concordance_index_``, ``penalizer`` and ``predict_survival_function``
    (the Breslow baseline on centred covariates, interpolated between durations as lifelines does)."""

    summary: pd.DataFrame
    concordance_index_: float
    baseline: pd.Series  # cumulative baseline hazard at each distinct duration (covariates at their means)
    means: pd.Series  # the covariates' means
    penalizer: float = 0.0

    @property
    def params_(self) -> pd.Series:
        return self.summary["coef"]

    @property
    def standard_errors_(self) -> pd.Series:
        return self.summary["se(coef)"]

    def predict_survival_function(self, X: pd.DataFrame, times: Any) -> pd.DataFrame:
        """Survival at ``times`` (rows) for each row of ``X`` (columns), as lifelines returns it."""
        names = list(self.params_.index)
        eta = ((X[names] - self.means[names]) @ self.params_).to_numpy(float) if names else np.zeros(len(X))
        times = np.atleast_1d(np.asarray(times, float))
        H = np.interp(times, self.baseline.index.to_numpy(float), self.baseline.to_numpy(float))
        return pd.DataFrame(np.exp(-np.outer(H, np.exp(eta))), index=times, columns=X.index)


def _pattern_attempts(df: pd.DataFrame, terms: list[str]) -> list[tuple[str, Any]]:
    """:func:`fit_cox_model`'s attempts on covariate patterns (:data:`PATTERN_SETTINGS`), each returning a
    :class:`PatternCoxFit` or raising with the reason it is not accepted; none when there are too many patterns
    (numeric covariates)."""
    raw = df[terms].to_numpy(float)
    which = row_patterns(raw)
    duration, event = df["duration"].to_numpy(float), df["event"].to_numpy()
    if not PatternCox.feasible(int(which.max(initial=0)) + 1, len(np.unique(duration[event == 1]))):
        return []
    mean, sd = raw.mean(0), raw.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    # entry -inf: everyone is at risk from the start, also at a duration of 0 (lifelines: T >= t)
    model = PatternCox(np.full(len(df), -np.inf), duration, event, (raw - mean) / sd, which)

    def attempt(**kw: Any) -> PatternCoxFit:
        params, cov = model.fit(tol=1e-10, **kw)
        reason = _pattern_check(model, params, cov)
        if reason:
            raise ArithmeticError(reason)
        eta = (model.patterns @ params)[which]  # centred linear predictor, equal for equal rows
        concordance = pattern_concordance(duration, event, -np.exp(eta))
        if concordance is None:
            from lifelines.utils import concordance_index
            concordance = float(concordance_index(duration, -np.exp(eta), event))
        times, at = np.unique(duration, return_inverse=True)
        risk = np.cumsum(np.bincount(at, np.exp(eta), len(times))[::-1])[::-1]  # sum over T >= t
        baseline = pd.Series(np.cumsum(np.bincount(at, event.astype(float), len(times)) / risk), index=times)
        coef, se = params / sd, np.sqrt(np.diag(cov)) / sd
        summary = pd.DataFrame({"coef": coef, "exp(coef)": np.exp(coef), "se(coef)": se,
                                "coef lower 95%": coef - Z95 * se, "coef upper 95%": coef + Z95 * se,
                                "z": coef / se, "p": 2 * stats.norm.sf(np.abs(coef / se))},
                               index=pd.Index(terms, name="covariate"))
        return PatternCoxFit(summary, float(concordance), baseline, pd.Series(mean, index=terms))

    return [(label, lambda kw=kw: attempt(**kw)) for label, kw in PATTERN_SETTINGS]


def _time_varying_table(names: list[str], params: np.ndarray, cov: np.ndarray) -> pd.DataFrame:
    se = np.sqrt(np.diag(cov))
    z = Z95
    table = pd.DataFrame({"term": names, "hr": np.exp(params), "ci_low": np.exp(params - z * se),
                          "ci_high": np.exp(params + z * se), "p_value": 2 * stats.norm.sf(np.abs(params / se))})
    if {"fast", "slow"} <= set(names):
        i, j = names.index("fast"), names.index("slow")
        diff = params[i] - params[j]
        sd_diff = math.sqrt(cov[i, i] + cov[j, j] - 2 * cov[i, j])
        table.loc[len(table)] = ["fast vs slow", math.exp(diff), math.exp(diff - z * sd_diff),
                                 math.exp(diff + z * sd_diff), float(2 * stats.norm.sf(abs(diff / sd_diff)))]
    return table


def state_customers(episodes: pd.DataFrame) -> dict[str, int]:
    """How many distinct customers were ever in each complaint state (``none`` = before any complaint)."""
    return {str(k): int(v) for k, v in episodes.groupby("state")["id"].nunique().items()}


# ---------------------------------------------------------------------------------------------
# parametric extrapolation, calibration, at-risk segments


@dataclass
class ParametricResult:
    """The AFT model chosen by AIC and its fit statistics (with :func:`extrapolate`: the groups' curves)."""

    fitter: Any
    name: str
    aic: pd.DataFrame  # model, aic, log_likelihood
    curves: pd.DataFrame | None = None  # time -> each group's model survival (:func:`group_survival_curves`)
    observed_end: float = math.nan  # the longest follow-up: where the data end and the extrapolation begins


WEIGHT = "__customers"  # how many customers a compressed row stands for (a lifelines weights_col)


def fit_parametric(st: SurvivalTable) -> ParametricResult:
    """Weibull and log-logistic AFT models on the covariates; the lower AIC wins (ties: first name).

    Each is fitted through :func:`cxresearch.fits.fit_with_retries`: lifelines' BFGS with a tight gradient
    tolerance, then L-BFGS-B, then a lightly penalised L-BFGS-B (ridge 0.001; said in the fit record).
    """
    from lifelines import LogLogisticAFTFitter, WeibullAFTFitter

    x = covariate_design(st).X
    df = pd.concat([st.data[["duration", "event"]], x], axis=1)
    # customers with the same duration, event and covariates enter the likelihood identically: fitted once,
    # weighted by their number (the same estimates, standard errors and likelihood; 1M customers: 4x faster)
    rows_once = df.groupby(list(df.columns), sort=True).size().rename(WEIGHT).reset_index()
    fits, rows = {}, []
    for name, cls in (("Weibull AFT", WeibullAFTFitter), ("log-logistic AFT", LogLogisticAFTFitter)):
        _refuse_separation(df, [c for c in x.columns if set(np.unique(x[c])) <= {0.0, 1.0}], f"{name} model")

        def attempt(cls=cls, method: str = "BFGS", penalizer: float = 0.0, options: dict | None = None):
            def run() -> Any:
                f = cls(penalizer=penalizer)
                f._scipy_fit_method = method
                return f.fit(rows_once, "duration", "event", weights_col=WEIGHT, fit_options=options or {})
            return run

        fits[name] = fit_with_retries(f"{name} model", [
            ("BFGS, gradient tolerance 1e-8", attempt(options={"gtol": 1e-8, "maxiter": 2000})),
            ("L-BFGS-B, tolerances 1e-12", attempt(method="L-BFGS-B",
                                                   options={"ftol": 1e-12, "gtol": 1e-9, "maxiter": 5000})),
            ("PENALISED L-BFGS-B (ridge 0.001: coefficients shrunk slightly towards 0)",
             attempt(method="L-BFGS-B", penalizer=0.001, options={"ftol": 1e-12, "gtol": 1e-9, "maxiter": 5000})),
        ], check=lambda f: _check_lifelines(f, df), fix=COX_FIX)
        rows.append({"model": name, "aic": float(fits[name].AIC_), "log_likelihood": float(fits[name].log_likelihood_)})
    aic = stable_sort(pd.DataFrame(rows), "aic", tie="model").reset_index(drop=True)
    best = str(pick(aic.set_index("model")["aic"], "min"))
    return ParametricResult(fits[best], best, aic)


def group_survival_curves(fitter: Any, st: SurvivalTable, groups: dict[str, pd.DataFrame],
                          times: np.ndarray) -> pd.DataFrame:
    """Model survival averaged over each group's customers (exact, via unique covariate patterns)."""
    x = covariate_design(st).X
    out = {}
    for name, g in groups.items():
        patterns = x.loc[g.index].value_counts().reset_index(name="_n")
        curves = fitter.predict_survival_function(patterns.drop(columns="_n"), times=times)
        out[name] = curves.to_numpy() @ (patterns["_n"].to_numpy() / patterns["_n"].sum())
    return pd.DataFrame(out, index=times)


def predicted_survival(fitter: Any, st: SurvivalTable, horizon: float) -> pd.Series:
    """Each customer's model survival probability at ``horizon`` (computed per covariate pattern)."""
    x = covariate_design(st).X
    cols = list(x.columns)
    if not cols:
        s = float(fitter.predict_survival_function(pd.DataFrame(index=[0]), times=[horizon]).iloc[0, 0])
        return pd.Series(s, index=st.data.index)
    patterns = x.drop_duplicates().reset_index(drop=True)
    surv = fitter.predict_survival_function(patterns, times=[horizon]).iloc[0].to_numpy()
    lookup = patterns.assign(_s=surv)
    return x.merge(lookup, on=cols, how="left")["_s"].set_axis(x.index)


def calibration(st: SurvivalTable, predicted: pd.Series, horizon: float, bins: int = 10, min_n: int = 1
                ) -> pd.DataFrame:
    """Predicted vs Kaplan–Meier survival at ``horizon`` in groups of predicted risk (deciles).

    Fewer groups are used when needed so that each holds at least ``min_n`` customers. Ranks are broken
    by the customer's position in the table, so the groups are the same on any machine.
    """
    from lifelines import KaplanMeierFitter

    bins = max(1, min(bins, len(predicted) // max(1, min_n)))
    q = pd.qcut(predicted.rank(method="first"), bins, labels=False) if bins > 1 else pd.Series(0, index=predicted.index)
    rows = []
    for b in range(bins):
        sel = q == b
        d = st.data[sel]
        kmf = KaplanMeierFitter().fit(d["duration"], d["event"])
        obs, lo, hi = survival_at(kmf, horizon)
        rows.append({"risk group": b + 1, "customers": int(sel.sum()), "predicted": float(predicted[sel].mean()),
                     "observed": obs, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def calibration_error(cal: pd.DataFrame) -> float | None:
    """Mean absolute gap between predicted and observed survival over the risk groups that reach the horizon
    (None when none does: the horizon lies beyond the follow-up)."""
    gap = (cal["predicted"] - cal["observed"]).abs().dropna()
    return float(gap.mean()) if len(gap) else None


def at_risk_segments(st: SurvivalTable, predicted: pd.Series, by: list[str], horizon: float,
                     min_n: int = 5, top: int = 10) -> pd.DataFrame:
    """Segments (combinations of ``by``) with the highest predicted churn by ``horizon``; no individuals.

    Combinations with fewer than ``min_n`` customers are left out, and sizes are shown as bands, not counts.
    """
    by = [b for b in by if b in st.data]
    if not by:
        return pd.DataFrame()
    d = st.data[by].astype(str).assign(churn=1 - predicted, left=st.data["event"])
    g = d.groupby(by).agg(customers=("churn", "size"), predicted_churn=("churn", "mean"),
                          left_so_far=("left", "mean")).reset_index()
    g = g[g["customers"] >= min_n]
    g = stable_sort(g, "predicted_churn", ascending=False, tie=by).head(top).reset_index(drop=True)
    # exact counts of combinations could be subtracted from the one-way counts shown elsewhere to reveal a
    # hidden small combination: show a size band instead
    g["customers"] = pd.cut(g["customers"], [0, 49, 199, 999, np.inf], labels=[
        f"{min_n}–49", "50–199", "200–999", "1,000 or more"]).astype(str)
    return g


def worst_served_segment(responses: pd.DataFrame, customers: pd.DataFrame, segment_col: str,
                         items: list[str], id_col: str = "customer_id", min_n: int = 1) -> pd.DataFrame:
    """Mean service score per segment (average of ``items`` per response) with a 95% t interval.

    Only segments with at least ``min_n`` linked responses (and at least 2) are returned.

    Raises
    ------
    InputError
        When an item is not a column of the survey.
    """
    missing = [i for i in items if i not in responses.columns]
    if missing or not items:
        raise InputError("'survey_responses'", [
            f"service items {missing or items} are not columns of the survey (columns: {list(responses.columns)}). "
            "Fix: set service_items to the survey's perception columns."])
    r = responses.merge(customers[[id_col, segment_col]], left_on="customer_id", right_on=id_col, how="inner")
    score = r[items].apply(pd.to_numeric, errors="coerce").mean(axis=1)
    g = score.groupby(r[segment_col].astype(str)).agg(["mean", "std", "count"])
    g = g[g["count"] >= max(2, min_n)]
    half = stats.t.ppf(0.975, g["count"] - 1) * g["std"] / np.sqrt(g["count"])
    return pd.DataFrame({"segment": g.index, "responses": g["count"].to_numpy().astype(int),
                         "service_score": g["mean"].to_numpy(), "ci_low": (g["mean"] - half).to_numpy(),
                         "ci_high": (g["mean"] + half).to_numpy()}).reset_index(drop=True)


def worst_segment(service: pd.DataFrame) -> str:
    """The segment with the lowest mean service score (ties: first name in sorted order)."""
    return str(pick(service.set_index("segment")["service_score"], "min"))


def compare_with_worst(st: SurvivalTable, segment_col: str, segment: str) -> tuple[pd.DataFrame | None, str | None]:
    """:func:`hazard_vs_segment`, or (None, the reason in plain words) when that Cox model cannot be estimated
    (e.g. nobody in one segment left): the claim is then not testable instead of failing the whole report."""
    try:
        return hazard_vs_segment(st, segment_col, segment), None
    except FitError as exc:
        return None, f"{exc}".split(" No estimate from it is shown.")[0]


def hazard_vs_segment(st: SurvivalTable, segment_col: str, segment: str) -> pd.DataFrame:
    """Hazard ratio of every other segment relative to ``segment`` (Cox with segment only, Efron ties, fitted
    exactly on its few covariate patterns by :class:`PatternCox`).

    The segments are coded by :func:`cxresearch.design.design_matrix` with ``segment`` as the reference level.
    Returns segment, hr, ci_low, ci_high, p_value, customers.
    """
    s = st.data[segment_col].astype(str)
    d = design_matrix(s.to_frame(), formula_of([segment_col]), reference={segment_col: segment})
    df = d.X.assign(duration=st.data["duration"], event=st.data["event"])
    model = f"Cox model by {segment_col} (vs the worst-served)"
    _refuse_separation(df, list(d.X.columns), model)
    # one text column: a few covariate patterns, so the exact pattern fit (1M customers: 1 s, lifelines 10 s)
    x = d.X.to_numpy(float)
    params, cov = _fit_pattern_cox(model, PatternCox(np.zeros(len(df)), df["duration"].to_numpy(float),
                                                     df["event"].to_numpy(), x))
    level = {t: t[len(segment_col) + 1:-1] for t in d.terms}  # "segment[mass]" -> "mass"
    out = _time_varying_table(list(d.X.columns), params, cov).rename(columns={"term": "segment"})
    out["segment"] = out["segment"].map(level)
    counts = s.value_counts()
    out["customers"] = out["segment"].map(counts).astype(int)
    return out


# ---------------------------------------------------------------------------------------------
# plots


def _percent_axis(ax: plt.Axes, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def _time_axis(ax: plt.Axes, time_unit: str) -> None:
    """Time since joining on x, with ticks at round steps (every 6 or 12 months, ...)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 3, 6, 10]))
    ax.set_xlabel(f"{time_unit} since the customer joined")


def plot_km(kms: dict[str, Any], time_unit: str, ax: plt.Axes | None = None, at_risk: bool = True,
            group: str | None = None) -> plt.Axes:
    """Kaplan–Meier curves with 95% bands, a legend titled ``group`` and an at-risk table under the plot."""
    from lifelines.plotting import add_at_risk_counts

    from cxresearch.plots import MUTED, PALETTE, label

    ax = ax or plt.subplots(figsize=(10, 5.5))[1]
    for (name, kmf), color in zip(kms.items(), PALETTE, strict=False):
        kmf.plot_survival_function(ax=ax, ci_show=True, ci_alpha=0.18, color=color, lw=2, label=label(name, 30))
    ax.axhline(0.5, color=MUTED, ls=":", lw=1)
    ax.text(0.005, 0.5, "half have left", transform=ax.get_yaxis_transform(), ha="left", va="bottom",
            fontsize=8.5, color=MUTED)
    _time_axis(ax, time_unit)
    ax.set_xlim(left=0)
    ax.set_ylabel("share still a customer")
    ax.set_ylim(0, 1.02)
    _percent_axis(ax)
    ax.set_title("How long customers stay (Kaplan–Meier; shaded: 95% confidence band)")
    ax.legend(title=label(group) if group else None, loc="lower left")
    if at_risk and len(kms) <= 6:
        # lifelines pastes labels into a format string: braces from data must be doubled to stay literal
        names = [label(k, 18).replace("{", "{{").replace("}", "}}") for k in kms]
        add_at_risk_counts(*kms.values(), ax=ax, rows_to_show=["At risk"], labels=names)
    return ax


def plot_forest(table: pd.DataFrame, ax: plt.Axes | None = None, title: str = "What drives churn") -> plt.Axes:
    """Hazard ratios ("× the rate" of leaving) with 95% intervals on a log scale, reference line at 1×.

    ``table`` has term, hr, ci_low, ci_high and side (:func:`with_side`); terms are shown by :func:`term_label`.
    Colour says which side of 1× the whole interval lies on (leave sooner, stay longer, or no clear
    difference); a legend explains it.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullLocator
    from matplotlib.transforms import ScaledTranslation

    from cxresearch.plots import ACCENT, INK, MUTED, PALETTE, labels

    ax = ax or plt.subplots(figsize=(9, 0.42 * len(table) + 1.9))[1]
    y = np.arange(len(table))[::-1]
    lo, hi, hr = (table[c].to_numpy(float) for c in ("ci_low", "ci_high", "hr"))
    sooner, longer = ACCENT, PALETTE[2]
    color = [{"sooner": sooner, "longer": longer}.get(side, MUTED) for side in table["side"]]
    ax.hlines(y, lo, hi, color=color, lw=2.5)
    ax.scatter(hr, y, color=color, zorder=3, s=40)
    ax.axvline(1, color=INK, lw=1, ls="--")
    ax.set_xscale("log")
    left, right = min(float(np.nanmin(lo)), 1.0) / 1.15, max(float(np.nanmax(hi)), 1.0) * 1.15
    ax.set_xlim(left, right)
    ticks = [t for t in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20, 50) if left <= t <= right]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(y, labels([term_label(t) for t in table["term"]], 42))
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set_xlabel("rate of leaving, × the rate of the comparison group (log scale; 1× = no difference)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.4)
    ax.grid(axis="y", visible=False)
    handles = [Line2D([0], [0], color=sooner, marker="o", lw=2.5, label="leave sooner (interval above 1×)"),
               Line2D([0], [0], color=longer, marker="o", lw=2.5, label="stay longer (interval below 1×)"),
               Line2D([0], [0], color=MUTED, marker="o", lw=2.5, label="no clear difference")]
    ax.legend(handles=handles, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0), fontsize=9,
              bbox_transform=ax.transAxes + ScaledTranslation(0, -0.55, ax.figure.dpi_scale_trans))
    return ax


def plot_parametric(kms: dict[str, Any], curves: pd.DataFrame, model_name: str, time_unit: str,
                    observed_end: float, ax: plt.Axes | None = None, group: str | None = None) -> plt.Axes:
    """Kaplan–Meier steps beside the parametric model's curves, extended beyond the data."""
    from matplotlib.lines import Line2D

    from cxresearch.plots import MUTED, PALETTE, label

    ax = ax or plt.subplots(figsize=(10, 5))[1]
    handles = []
    for (name, kmf), color in zip(kms.items(), PALETTE, strict=False):
        kmf.plot_survival_function(ax=ax, ci_show=False, color=color, lw=1.2, label="_observed")
        ax.plot(curves.index, curves[name], color=color, ls="--", lw=2)
        handles.append(Line2D([0], [0], color=color, lw=3, label=label(name, 30)))
    handles += [Line2D([0], [0], color=MUTED, lw=1.2, label="observed (Kaplan–Meier)"),
                Line2D([0], [0], color=MUTED, lw=2, ls="--", label=f"{model_name} model")]
    ax.axvline(observed_end, color=MUTED, lw=1)
    ax.text(observed_end, 0.98, " end of the data →", va="top", fontsize=8.5, color=MUTED)
    _time_axis(ax, time_unit)
    ax.set_xlim(left=0)
    ax.set_ylabel("share still a customer")
    ax.set_ylim(0, 1.02)
    _percent_axis(ax)
    ax.legend(handles=handles, title=label(group) if group else None, loc="lower left", fontsize=9)
    ax.set_title(f"Observed survival and the {model_name} model, extended beyond the data")
    return ax


def plot_calibration(cal: pd.DataFrame, horizon: float, time_unit: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Predicted vs observed survival at the horizon per risk group (diagonal = perfect)."""
    from cxresearch.plots import MAIN, MUTED

    ax = ax or plt.subplots(figsize=(6, 5.5))[1]
    ok = cal["observed"].notna()
    c = cal[ok]
    lo = float(min(c["predicted"].min(), c["ci_low"].min(), 1.0)) - 0.03 if len(c) else 0
    ax.plot([lo, 1], [lo, 1], color=MUTED, ls="--", lw=1, label="perfect prediction")
    ax.errorbar(c["predicted"], c["observed"], yerr=[c["observed"] - c["ci_low"], c["ci_high"] - c["observed"]],
                fmt="o", color=MAIN, capsize=3, label="one risk group (tenth of customers), 95% CI")
    ax.set_xlabel(f"predicted share still a customer at {horizon:g} {time_unit}")
    ax.set_ylabel(f"observed share still a customer at {horizon:g} {time_unit}")
    _percent_axis(ax, "x")
    _percent_axis(ax, "y")
    ax.set_title("Does the model predict well?")
    ax.legend(loc="upper left", fontsize=9)
    return ax


def plot_rmst(summary: pd.DataFrame, horizon: float, time_unit: str, ax: plt.Axes | None = None,
              group: str | None = None) -> plt.Axes:
    """Restricted mean survival time per group with 95% intervals (``group`` labels the groups' axis)."""
    from cxresearch.plots import label, plot_intervals

    ax = plot_intervals(summary["group"], summary["rmst"], summary["rmst_low"], summary["rmst_high"], ax,
                        f"average {time_unit} as a customer within the first {horizon:g} {time_unit}",
                        f"Time as a customer within the first {horizon:g} {time_unit} (95% CI)")
    ax.set_ylabel(label(group) if group else "")
    return ax


# ---------------------------------------------------------------------------------------------
# reading a run's tables


def _missing(column: str, columns: Any) -> str:
    return (f"column '{column}' (a covariate or group_col) is missing. Columns in the file: {list(columns)}. Fix: "
            "correct the name in the parameters.")


def _timestamp(value: pd.Timestamp) -> Any:
    import ibis

    return ibis.timestamp(pd.Timestamp(value).to_pydatetime())


def _customers_in_engine(path: Any, contract: Contract, wanted: list[str], ledger: Ledger, engine: str,
                         spark_master: str, late: engines.Rule | None) -> pd.DataFrame:
    """The customer table checked and cut by queries (:func:`cxresearch.engine.read_checked`); the contract's
    columns and ``wanted`` come back, typed as :func:`cxresearch.io.read_table` types them."""
    opened = engines.open_table(path, "customers", engine, spark_master)
    schema = opened.table.schema()
    missing = [c for c in wanted if c not in schema]
    if missing:
        raise InputError(opened.source, [_missing(c, schema) for c in missing])
    return engines.read_checked(opened, contract, ledger, keep=wanted, rules=[late] if late else [])


@dataclass
class ChurnInputs:
    """Everything the churn notebook reads."""

    table: SurvivalTable
    complaints: pd.DataFrame | ComplaintLog | None  # a ComplaintLog when they stay in an engine
    survey: pd.DataFrame | None
    customers: pd.DataFrame | None  # id and group column, for linking the survey
    synthetic: bool
    as_of: pd.Timestamp | None


def load_inputs(source: Any, ledger: Ledger, *, as_of: str | None = None, min_group_size: int = 5,
                engine: str = "duckdb", spark_master: str = "local[*]", **table_args: Any) -> ChurnInputs:
    """Read the customer table of ``source`` and, when it has them, its complaints and survey answers.

    ``source`` is a :class:`cxresearch.sources.Source` (tables ``customers``, optionally ``complaints`` and
    ``survey_responses``); rows read and excluded are recorded in ``ledger`` (the run's ``results.ledger``).
    The observation end is ``as_of`` or, when it is not given, the data's own
    (``source.defaults["observation_end"]``; none: the last date in the customer table). ``table_args`` go to
    :func:`survival_table`. The survival table is checked (:func:`check_estimable`) and its small groups folded
    (:func:`fold_small_groups`). Complaints that cannot belong to an analysed customer's history are excluded
    and counted in the report's exclusions table: unknown customers, complaints before the customer's start,
    and complaints after the customer's observed time ended.

    Tables in Parquet files or a database are checked and summarised by queries in ``engine`` (``duckdb``, the
    default, or ``spark`` with ``spark_master``; :mod:`cxresearch.engine`): the survival table's columns come
    back, the complaints stay there (:class:`ComplaintLog`). ``engine="pandas"`` reads every table whole.
    """
    paths = source.paths
    if "customers" not in paths:
        raise InputError("'customers'", ["customers_path is needed when other tables are given. Fix: set it."])
    if engine not in engines.ENGINES:
        raise ParameterError(f"-p engine must be one of {list(engines.ENGINES)}, got {engine!r}.")
    cutoff = as_of or source.defaults.get("observation_end")
    st = survival_table(str(paths["customers"]), as_of=cutoff, ledger=ledger, engine=engine,
                        spark_master=spark_master, **table_args)
    check_estimable(st)
    st = fold_small_groups(st, min_group_size)
    complaints: pd.DataFrame | ComplaintLog | None = None
    survey = customers = None
    if "complaints" in paths and st.id_col and st.start_col:
        if engines.in_engine(paths["complaints"], engine):
            complaints = query_complaints(paths["complaints"], st, ledger, engine, spark_master)
        else:
            complaints = read_table(paths["complaints"], contracts.COMPLAINTS, exclusions=complaint_rules(st),
                                    ledger=ledger)
    if "survey_responses" in paths and st.id_col:
        survey = read_table(paths["survey_responses"], contracts.SURVEY_RESPONSES, ledger=ledger)
    if st.id_col:
        customers = st.data[["id", *([st.group_col] if st.group_col else [])]].rename(columns={"id": "customer_id"})
    return ChurnInputs(st, complaints, survey, customers, source.synthetic, pd.Timestamp(cutoff) if cutoff else None)


def complaint_rules(st: SurvivalTable) -> list[Exclusion]:
    """Exclusion rules that keep only complaints inside an analysed customer's observed time (each counted)."""
    known = st.data.set_index("id")
    start, duration = known["start"], known["duration"]
    unit = TIME_UNITS[st.time_unit]

    def since_start(d: pd.DataFrame) -> pd.Series:
        return (d["opened_at"] - d["customer_id"].map(start)).dt.total_seconds() / 86400 / unit

    return [
        Exclusion("customer_id not among the customers analysed (unknown, or a relationship of zero length)",
                  lambda d: ~d["customer_id"].isin(known.index)),
        Exclusion("opened_at before the customer's start date", lambda d: since_start(d) < 0),
        Exclusion("opened_at after the customer's observed time ended (after leaving or after the observation end)",
                  lambda d: since_start(d) >= d["customer_id"].map(duration)),
    ]


#: the exclusion rules above as a reader reads them (the ledger and ``results.json`` keep the exact rule text)
RULE_TEXT = {
    "customer_id not among the customers analysed (unknown, or a relationship of zero length)":
        "complaints by customers not among those analysed (unknown, or a relationship of zero length)",
    "opened_at before the customer's start date": "complaints opened before the customer's start date",
    "opened_at after the customer's observed time ended (after leaving or after the observation end)":
        "complaints opened after the customer's observed time ended (after leaving or after the observation end)",
}
_NAME = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b")


def rule_text(rule: str) -> str:
    """An input rule in plain words: the known rules rephrased, column names in other rules by their labels."""
    return RULE_TEXT.get(rule) or _NAME.sub(lambda m: plain(m.group()), str(rule))


def rules_table(exclusions: pd.DataFrame, notes: list[dict[str, Any]]) -> pd.DataFrame:
    """The input rules that changed something, as shown: table, rule (plain words), rows.

    ``exclusions`` is the ledger's exclusions frame (rows removed), ``notes`` the survival table's notes
    (rows counted differently, e.g. an end date after the observation end).
    """
    parts = [exclusions[["table", "rule", "rows_excluded"]].rename(columns={"rows_excluded": "rows"}),
             pd.DataFrame(notes, columns=["rule", "rows"]).assign(table="customers")]
    applied = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else \
        pd.DataFrame(columns=["table", "rule", "rows"])
    applied = applied[applied["rows"] > 0][["table", "rule", "rows"]].reset_index(drop=True)
    return applied.assign(rule=applied["rule"].map(rule_text))


def fold_note(st: SurvivalTable) -> str:
    """Plain text saying which labels were folded and which covariates were left out (empty when none)."""
    parts = [f"in {plain(col)}: {', '.join(plain(lv) for lv in labels)}" for col, labels in st.folded.items()]
    text = (f"Groups with too few customers are combined into '{OTHER}' — " + "; ".join(parts) + ".") if parts else ""
    if st.dropped:
        text += (" " if text else "") + ("Left out of the models (one level left after combining): "
                                         + ", ".join(plain(c) for c in st.dropped) + ".")
    return text


def median_text(row: Any) -> str:
    """Median lifetime with its interval as text; "not reached" where the curve stays above one half."""
    if not math.isfinite(row["median"]):
        return "not reached"
    lo = "–" if not math.isfinite(row["median_low"]) else f"{row['median_low']:.1f}"
    hi = "not reached" if not math.isfinite(row["median_high"]) else f"{row['median_high']:.1f}"
    return f"{row['median']:.1f} ({lo} to {hi})"


def km_table(life: Lifetimes) -> Table:
    """The Kaplan–Meier summary as shown: counts, median lifetime and survival at the reported times as text
    (the first column headed by the reader's name of the groups)."""
    summary, unit = life.summary, life.time_unit
    shown = pd.DataFrame({life.group: summary["group"], "customers": summary["customers"], "left": summary["left"],
                          f"median {unit} (95% CI)": summary.apply(median_text, axis=1)})
    for t in life.times:
        shown[f"still a customer at {t:g} {unit}"] = [
            "–" if not math.isfinite(e) else f"{e:.1%} ({lo:.1%} to {hi:.1%})"
            for e, lo, hi in zip(summary[f"S({t:g})"], summary[f"S({t:g}) low"], summary[f"S({t:g}) high"],
                                 strict=True)]
    return display_table(shown)


def overall_lifetime(st: SurvivalTable, horizon: float) -> dict[str, tuple[float, float, float]]:
    """All customers together: median lifetime and the share still a customer at ``horizon``, each with its
    95% interval (median ``inf`` when more than half are still customers; NaN beyond the follow-up)."""
    from lifelines import KaplanMeierFitter

    kmf = KaplanMeierFitter(label="all customers").fit(st.data["duration"], st.data["event"])
    return {"median": median_lifetime(kmf), "retained": survival_at(kmf, horizon)}


def term_label(term: str) -> str:
    """How a model term reads: ``plan[annual]`` → "plan: annual vs monthly" (the reference registered with
    :func:`cxresearch.display.use_labels`), complaint states → "complaint resolved fast vs no complaint",
    a numeric covariate → "MonthlyCharges (per 1 more)"."""
    term = str(term)
    if term in STATE_TERMS:
        return STATE_TERMS[term]
    if term.endswith("]") and "[" in term:
        return plain(term)
    return f"{plain(term)} (per 1 more)"


def hazard_table(table: pd.DataFrame) -> pd.DataFrame:
    """A hazard-ratio table as shown: "factor" (plain term labels), "hazard ratio", the interval bounds (shown as
    one "95% CI" column by :func:`cxresearch.display.table`), ``p_value`` (headed "p-value" there); other columns
    pass through (the forest plot's ``side`` is left out)."""
    out = table.drop(columns=["side"], errors="ignore").rename(columns={
        "hr": "hazard ratio", "estimate": "hazard ratio", "planted": "planted hazard ratio"})
    out.insert(0, "factor", [term_label(t) for t in table["term"]])
    return out.drop(columns="term").reset_index(drop=True)


def ph_table(ph: pd.DataFrame) -> pd.DataFrame:
    """The proportional-hazards check as shown: factor, test statistic, ``p_value`` and ``p_value_holm`` (headed
    "p-value" and "p-value (Holm)" by :func:`cxresearch.display.table`)."""
    out = ph.rename(columns={"statistic": "test statistic"})
    out.insert(0, "factor", [term_label(t) for t in ph["term"]])
    return out.drop(columns="term").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# claims (each returned as a :class:`cxresearch.stats.Claim`; the notebook records them with ``results.add``)


def groups_claim(diffs: pd.DataFrame, summary: pd.DataFrame, lr: dict[str, float] | None, group_col: str | None,
                 horizon: float, unit: str) -> Claim:
    """"Groups stay for different lengths of time": the largest RMST difference, gated by the log-rank test.

    The largest absolute difference is picked tie-safely (after looking), so the verdict also needs the
    overall log-rank test at 5%; ``n`` is the smaller of the two groups compared. The estimate is in ``unit``
    (the time unit): a group's average time as a customer within the horizon minus the reference group's, so
    a negative value means the group leaves sooner.
    """
    name = plain(group_col) if group_col else "group"
    claim = f"How long customers stay depends on their {name}"
    if not len(diffs) or lr is None:
        return Claim("groups_stay_differently", claim, "log-rank test and differences in average time as a customer",
                     None, verdict="not testable", n=int(summary["customers"].sum()), note="only one group to compare",
                     unit=unit)
    best = diffs.loc[pick(diffs["difference"].abs(), "max")]
    sizes = summary.set_index("group")["customers"]
    direction = 1 if best["difference"] > 0 else -1
    tested = verdict(best["ci_low"], best["ci_high"], direction=direction) if lr["p_value"] < 0.05 else "inconclusive"
    group, reference = plain(best["group"]), plain(best["reference"])
    size = fmt_value(abs(float(best["difference"])), unit, digits=2)
    word = "less" if best["difference"] < 0 else "more"
    return Claim(
        "groups_stay_differently", claim,
        f"log-rank test across {name} groups; estimate: the largest difference in average {unit} as a customer "
        f"within the first {horizon:g} ({group} vs {reference})",
        best["difference"], best["ci_low"], best["ci_high"], lr["p_value"], tested,
        int(min(sizes[best["group"]], sizes[best["reference"]])), unit=unit,
        meaning=f"{'Negative' if best['difference'] < 0 else 'Positive'}: customers in the {group} group stay "
                f"{size} {word} on average within their first {horizon:g} {unit} than those in the {reference} group.")


#: (claim id, claim, state term, expected direction, what is compared, with what)
STATE_CLAIMS = (
    ("service_recovery", "A complaint resolved fast lowers churn below that of customers without a complaint",
     "fast", -1, "customers whose complaint was resolved fast", "those without a complaint"),
    ("unresolved_complaints_raise_churn", "An unresolved complaint raises churn", "unresolved", 1,
     "customers with an unresolved complaint", "those without a complaint"),
    ("fast_resolution_beats_slow", "Resolving a complaint fast rather than slowly lowers churn", "fast vs slow", -1,
     "customers whose complaint was resolved fast", "those whose complaint was resolved slowly"),
)
STATE_TESTS = {"fast": "fast-resolved (within {hours:g} hours) vs no complaint",
               "unresolved": "unresolved vs no complaint",
               "fast vs slow": "resolved within {hours:g} hours vs later"}


def complaint_claims(tv: pd.DataFrame | None, episodes: pd.DataFrame | None, n_customers: int,
                     fast_hours: float = 24.0, planted: Mapping[str, float] | None = None) -> list[Claim]:
    """The three service-recovery claims from the time-varying model (``not testable`` without complaints).

    ``n`` is the number of customers who were ever in the state (for fast vs slow, the smaller of the two).
    Estimates are hazard ratios (unit "rate ratio": 0.64 reads "0.64× the rate"); ``planted`` maps a state
    term ("fast", "slow", "unresolved", "fast vs slow") to a known ratio to compare with (a simulation's:
    :func:`cxresearch.checks.churn_states`).
    """
    out = []
    counts = state_customers(episodes) if episodes is not None else {}
    table = tv.set_index("term") if tv is not None else None
    planted = planted or {}
    for cid, text, term, direction, who, than in STATE_CLAIMS:
        test = ("Cox model with each customer's complaint history over time, other factors held fixed: "
                + STATE_TESTS[term].format(hours=fast_hours))
        if table is None or term not in table.index:
            why = "no complaint table was given" if tv is None else f"no customer was in the state '{STATE_TERMS[term]}'"
            out.append(Claim(cid, text, test, None, verdict="not testable", n=n_customers,
                             note=f"{why}, so this was not tested", unit="rate ratio"))
            continue
        r = table.loc[term]
        n = min(counts.get(s, 0) for s in term.split(" vs "))
        out.append(Claim(cid, text, test, r["hr"], r["ci_low"], r["ci_high"], r["p_value"],
                         verdict(r["ci_low"], r["ci_high"], null=1.0, direction=direction), int(n), unit="rate ratio",
                         truth=planted.get(term),
                         meaning=f"{'Below' if r['hr'] < 1 else 'Above'} 1×: {who} leave at "
                                 f"{fmt_value(r['hr'], 'rate ratio', digits=2)} of {than}."))
    return out


def worst_served_claim(service: pd.DataFrame | None, vs_worst: pd.DataFrame | None, worst: str | None,
                       group_col: str | None, n_customers: int, reason: str | None = None) -> Claim:
    """"The worst-served segment churns fastest": its hazard vs the fastest-churning other segment.

    The fastest other segment is picked tie-safely; ``n`` is the smaller of the two segments' customers.
    ``reason`` says why the comparison could not be estimated (it is then not testable). No planted value is
    comparable: the model holds only the segment, so its ratio is not the synthetic world's adjusted one.
    """
    name = plain(group_col) if group_col else "segment"
    if service is None or vs_worst is None or worst is None or not len(vs_worst):
        return Claim("worst_served_segment_churns_fastest",
                     f"The {name} with the worst service scores loses customers fastest", f"Cox model by {name}",
                     None, verdict="not testable", n=n_customers,
                     note=reason or "no survey answers linked to customers in two or more groups, so this was not tested",
                     unit="rate ratio")
    closest = vs_worst.set_index("segment").loc[pick(vs_worst.set_index("segment")["hr"], "max")]
    est, lo, hi = 1 / closest["hr"], 1 / closest["ci_high"], 1 / closest["ci_low"]
    n_worst = int(service.set_index("segment").at[worst, "responses"])
    w, c = plain(worst), plain(closest.name)
    return Claim("worst_served_segment_churns_fastest",
                 f"The {name} with the worst service scores ({w}) loses customers fastest",
                 f"Cox model by {name}: {w} vs the fastest-leaving other group ({c})",
                 est, lo, hi, closest["p_value"], verdict(lo, hi, null=1.0, direction=1),
                 int(min(n_worst, int(closest["customers"]))), unit="rate ratio",
                 meaning=f"{'Above' if est > 1 else 'Below'} 1×: customers in {w} leave at "
                         f"{fmt_value(est, 'rate ratio', digits=2)} of those in {c}, the fastest-leaving other group.")


# ---------------------------------------------------------------------------------------------
# the notebook's steps: each takes the inputs (or an earlier step) and returns one typed result


@dataclass
class Lifetimes:
    """How long customers stay: Kaplan–Meier per group, its summary, log-rank tests and RMST differences."""

    groups: dict[str, pd.DataFrame]  # the customers of each group shown (at least min_group_size)
    fits: dict[str, Any]  # group -> fitted lifelines KaplanMeierFitter
    times: list[float]  # the times survival is reported at: REPORT_TIMES and the horizon
    summary: pd.DataFrame  # :func:`km_summary`
    logrank: dict[str, float] | None  # :func:`logrank`; None with one group
    pairwise: pd.DataFrame | None  # :func:`pairwise_logrank`; None with one group
    differences: pd.DataFrame  # :func:`rmst_differences`
    horizon: float
    time_unit: str
    group: str  # how a reader names the groups ("segment", or the label of the group column)


def lifetimes(st: SurvivalTable, horizon: float, min_group_size: int = 5) -> Lifetimes:
    """Kaplan–Meier curves of every group with at least ``min_group_size`` customers, median lifetime and
    survival at :data:`REPORT_TIMES` and ``horizon``, the restricted mean up to ``horizon``, the overall and
    pairwise (Holm) log-rank tests and each group's RMST difference from the largest group."""
    groups, _ = groups_of(st, min_group_size)
    kms = fit_km(groups)
    times = sorted({*REPORT_TIMES, horizon})
    summary = km_summary(kms, groups, times, horizon)
    lr = logrank(groups) if len(groups) > 1 else None
    return Lifetimes(groups, kms, times, summary, lr, pairwise_logrank(groups) if lr else None,
                     rmst_differences(summary), horizon, st.time_unit, plain(st.group_col or "group"))


#: how the forest plot colours a hazard ratio: by the side of 1× its whole 95% interval lies on
SIDES = {"supported": "sooner", "not supported": "longer"}


def with_side(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (term, hr, ci_low, ci_high, ...) with a ``side`` column for :func:`plot_forest`: "sooner" when
    the whole 95% interval lies above 1× (they leave sooner), "longer" when below, else "unclear"."""
    sides = [SIDES.get(verdict(lo, hi, null=1.0), "unclear") for lo, hi in zip(table["ci_low"], table["ci_high"],
                                                                                 strict=True)]
    return table.assign(side=sides)


@dataclass
class Drivers:
    """What drives churn: the Cox model and, with complaints, the model with complaint states over time."""

    cox: CoxResult
    time_varying: pd.DataFrame | None  # :func:`fit_time_varying` (with the "fast vs slow" contrast)
    episodes: pd.DataFrame | None  # :func:`complaint_episodes`
    main: pd.DataFrame  # the hazard ratios shown: the time-varying model's without the contrast, else the Cox model's
    states: pd.DataFrame | None  # the complaint states' rows of the time-varying model; None when there are none

    @property
    def penalised(self) -> bool:
        return is_penalised(self.cox.fitter)


def drivers(inputs: ChurnInputs, fast_hours: float = 24.0) -> Drivers:
    """The Cox model (:func:`fit_cox`) and, when complaints were read, the Cox model with each customer's
    complaint history as a time-varying state (``fast`` = resolved within ``fast_hours``). ``main`` and
    ``states`` carry the ``side`` column of :func:`with_side`."""
    st = inputs.table
    cox = fit_cox(st)
    tv = episodes = None
    if inputs.complaints is not None:
        episodes = complaint_episodes(st, inputs.complaints, fast_hours)
        tv = fit_time_varying(st, episodes)
    main = tv[tv["term"] != "fast vs slow"] if tv is not None else cox.hazard_ratios
    states = tv[tv["term"].isin([*STATE_LABELS, "fast vs slow"])] if tv is not None else None
    return Drivers(cox, tv, episodes, with_side(main),
                   with_side(states) if states is not None and len(states) else None)


def extrapolate(st: SurvivalTable, life: Lifetimes) -> ParametricResult:
    """:func:`fit_parametric` with each group's model curve (:func:`group_survival_curves`) from 0 to 1.5 times
    the later of the horizon and the longest follow-up, and the end of the data (``observed_end``)."""
    par = fit_parametric(st)
    par.observed_end = float(st.data["duration"].max())
    grid = np.arange(0, int(max(life.horizon, par.observed_end) * 1.5) + 1, dtype=float)
    par.curves = group_survival_curves(par.fitter, st, life.groups, grid)
    return par


@dataclass
class Calibration:
    """Predicted against observed survival at the horizon, and the segments most at risk."""

    predicted: pd.Series  # each customer's model survival at the horizon
    table: pd.DataFrame  # :func:`calibration`
    error: float | None  # :func:`calibration_error`
    segments: pd.DataFrame  # :func:`at_risk_segments`
    horizon: float
    time_unit: str


def calibrate(st: SurvivalTable, cox: CoxResult, horizon: float, min_group_size: int = 5) -> Calibration:
    """The Cox model's calibration at ``horizon`` in tenths of predicted risk, and the combinations of the first
    three covariates with the highest predicted churn by then (none under ``min_group_size``)."""
    predicted = predicted_survival(cox.fitter, st, horizon)
    table = calibration(st, predicted, horizon, min_n=min_group_size)
    segments = at_risk_segments(st, predicted, [c for c in st.covariates if c in st.data][:3], horizon, min_group_size)
    return Calibration(predicted, table, calibration_error(table), segments, horizon, st.time_unit)


@dataclass
class ServiceAndChurn:
    """Service scores per group from the linked survey, and how fast the worst-served group leaves."""

    scores: pd.DataFrame | None  # :func:`worst_served_segment`; None without a linked survey
    worst: str | None  # the group with the lowest score (None with fewer than two groups)
    vs_worst: pd.DataFrame | None  # :func:`hazard_vs_segment`
    reason: str | None  # why ``vs_worst`` could not be estimated
    group: str  # how a reader names the groups


def service_and_churn(inputs: ChurnInputs, items: list[str] | None = None, min_group_size: int = 5) -> ServiceAndChurn:
    """Mean service score per group (the survey's ``items``; None: every ``perc_*`` column) and the hazard ratio
    of every other group against the worst-served one. Needs survey answers linked to customers by ID."""
    st = inputs.table
    scores = vs_worst = worst = reason = None
    if inputs.survey is not None and inputs.customers is not None and st.group_col:
        items = items or [c for c in inputs.survey.columns if str(c).startswith("perc_")]
        scores = worst_served_segment(inputs.survey, inputs.customers, st.group_col, items, min_n=min_group_size)
    if scores is not None and len(scores) > 1:
        worst = worst_segment(scores)
        vs_worst, reason = compare_with_worst(st, st.group_col, worst)
    return ServiceAndChurn(scores, worst, vs_worst, reason, plain(st.group_col or "group"))


def _interval(estimate: float, low: float, high: float) -> dict[str, float]:
    return {"estimate": estimate, "ci_low": low, "ci_high": high}


def metrics(st: SurvivalTable, life: Lifetimes, drv: Drivers, par: ParametricResult,
            cal: Calibration) -> list[dict[str, Any]]:
    """The run's figures, each as the arguments of ``results.metric`` (``for m in ...: results.metric(**m)``).

    Headline: customers analysed, the share who left, and the median lifetime — or, when more than half are
    still customers, the share still a customer at the horizon.
    """
    overall = overall_lifetime(st, life.horizon)
    unit, s, h = st.time_unit, life.summary, f"S({life.horizon:g})"
    median_reached = math.isfinite(overall["median"][0])
    out: list[dict[str, Any]] = [
        {"name": "n_customers", "value": st.n, "headline": True, "label": "customers analysed"},
        {"name": "n_events", "value": st.n_events},
        {"name": "churn_rate", "value": st.n_events / st.n, "headline": True, "label": "share who left",
         "unit": "share"},
        {"name": "median_lifetime", "value": _interval(*overall["median"]), "headline": median_reached,
         "label": "median time as a customer", "unit": unit},
        {"name": "retained_at_horizon", "value": _interval(*overall["retained"]), "headline": not median_reached,
         "label": f"still a customer after {life.horizon:g} {unit}", "unit": "share"},
        {"name": "km_median", "unit": unit, "value": {r.group: _interval(r.median, r.median_low, r.median_high)
                                                      for r in s.itertuples()}},
        {"name": "survival_at_horizon", "unit": "share", "value": {
            g: _interval(e, lo, hi) for g, e, lo, hi in zip(s["group"], s[h], s[f"{h} low"], s[f"{h} high"],
                                                             strict=True)}},
        {"name": "rmst", "unit": unit, "value": {r.group: _interval(r.rmst, r.rmst_low, r.rmst_high)
                                                 for r in s.itertuples()}},
        {"name": "rmst_difference", "unit": unit, "value": {r.group: _interval(r.difference, r.ci_low, r.ci_high)
                                                            for r in life.differences.itertuples()}},
    ]
    if life.logrank:
        out += [{"name": f"logrank_{k}", "value": life.logrank[k]} for k in ("chi2", "df", "p_value")]
    out += [
        {"name": "hazard_ratios", "unit": "rate ratio",
         "value": {r.term: _interval(r.hr, r.ci_low, r.ci_high) for r in drv.main.itertuples()}},
        {"name": "hazard_ratios_static", "unit": "rate ratio",
         "value": {r.term: _interval(r.hr, r.ci_low, r.ci_high) for r in drv.cox.hazard_ratios.itertuples()}},
        {"name": "concordance", "value": drv.cox.concordance, "label": "concordance of the churn model"},
        {"name": "ph_test_p_value_holm", "value": dict(zip(drv.cox.ph_test["term"], drv.cox.ph_test["p_value_holm"], strict=True))},
        {"name": "parametric_aic", "value": dict(zip(par.aic["model"], par.aic["aic"], strict=True))},
    ]
    if cal.error is not None:
        out.append({"name": "calibration_error", "value": cal.error, "unit": "pp"})
    return out


def claims(st: SurvivalTable, life: Lifetimes, drv: Drivers, service: ServiceAndChurn, fast_hours: float = 24.0,
           planted: Mapping[str, float] | None = None) -> list[Claim]:
    """Every claim of the churn report: groups stay differently, the three service-recovery claims, and the
    worst-served group leaves fastest (``planted``: known complaint-state ratios, see :func:`complaint_claims`)."""
    return [groups_claim(life.differences, life.summary, life.logrank, st.group_col, life.horizon, st.time_unit),
            *complaint_claims(drv.time_varying, drv.episodes, st.n, fast_hours, planted),
            worst_served_claim(service.scores, service.vs_worst, service.worst, st.group_col, st.n, service.reason)]


# ---------------------------------------------------------------------------------------------
# what the notebook shows: sentences as the arguments of ``cx.say`` (``cx.say(**sentence)``: the Markdown
# template and its values, escaped by ``say``) and tables as :class:`cxresearch.display.Table`


#: a Markdown sentence for :func:`cxresearch.display.say`: ``cx.say(**sentence)`` (values are escaped there)


def customer_sentences(inputs: ChurnInputs, rules: pd.DataFrame, min_group_size: int = 5) -> list[Sentence]:
    """Who was analysed: customers, who left, follow-up; the groups folded for confidentiality; and a heading for
    the input rules when any applied (``rules``: :func:`rules_table`)."""
    st = inputs.table
    follow = st.data["duration"]
    ending = inputs.as_of is not None
    out = [sentence("**{n:,} customers**, of whom **{left:,} left** ({share:.1%}) during the observation window"
                + (" ending {end}" if ending else "") + ". Follow-up per customer: median {median:.1f} {unit}, "
                "longest {longest:.1f} {unit}.", n=st.n, left=st.n_events, share=st.n_events / st.n,
                end=str(inputs.as_of.date()) if ending else "", median=float(follow.median()),
                longest=float(follow.max()), unit=st.time_unit)]
    if fold_note(st):
        out.append(sentence("{note} (Groups smaller than {k} customers are never shown.)", note=fold_note(st),
                        k=min_group_size))
    if len(rules):
        out.append(sentence("Rules applied to the inputs (nothing is dropped silently):"))
    return out


def logrank_sentence(life: Lifetimes) -> Sentence:
    """The overall log-rank test in words (or that there is only one group)."""
    if not life.logrank:
        return sentence("Only one group: nothing to compare.")
    return sentence("Log-rank test across {k} groups: χ² = {chi2:.1f} on {df} degrees of freedom, {p:p}.",
                k=len(life.groups), chi2=life.logrank["chi2"], df=life.logrank["df"], p=life.logrank["p_value"])


def pairwise_table(life: Lifetimes) -> Table | None:
    """The pairwise log-rank tests as shown (None with one group)."""
    if life.pairwise is None:
        return None
    return display_table(life.pairwise, rename={"group A": life.group, "group B": "compared with", "chi2": "χ²"})


def rmst_sentences(life: Lifetimes) -> list[Sentence]:
    """One bullet per group: how much longer or shorter it stays within the horizon than the reference group."""
    unit = life.time_unit
    return [sentence("- Customers in **{group}** stay **{size:.2f} {unit} {word}** within {horizon:g} {unit} than those "
                 "in **{reference}** (95% CI {lo:.2f} to {hi:.2f}).", group=r.group, size=abs(r.difference),
                 unit=unit, word="longer" if r.difference > 0 else "shorter", horizon=float(life.horizon),
                 reference=r.reference, lo=r.ci_low, hi=r.ci_high) for r in life.differences.itertuples()]


def rmst_table(life: Lifetimes) -> Table:
    """The RMST differences as shown."""
    return display_table(life.differences, rename={"group": life.group, "reference": "compared with",
                                                   "difference": f"difference in {life.time_unit}"})


def driver_sentences(drv: Drivers) -> list[Sentence]:
    """The reference level of every text covariate, the model's concordance, and a warning when the Cox model
    needed a penalty (register the references first: ``cx.display.use_labels(references=drv.cox.references)``)."""
    refs = "; ".join(f"{plain(k)}: {plain(v)}" for k, v in drv.cox.references.items()) or "none"
    out = [sentence("Each factor is compared with its most common value: {refs}. Concordance of the model: **{c:.3f}** "
                "(0.5 = no better than chance, 1 = always ranks who leaves first correctly).", refs=refs,
                c=drv.cox.concordance)]
    if drv.penalised:
        out.append(sentence("**The Cox model converged only with a small ridge penalty**: its hazard ratios are shrunk "
                        "slightly towards 1 (see the model fits in the report)."))
    return out


def ph_sentence(drv: Drivers) -> Sentence:
    """Whether the proportional-hazards assumption holds, and what was done when it fails."""
    if drv.cox.ph_failures:
        return sentence("**The assumption fails for: {failing}.** Their effect changes over the customer's lifetime, so a "
                    "single hazard ratio would mislead. The model was refitted with a separate baseline for each of "
                    "their levels (stratified); the other factors' ratios from that model are:",
                    failing=", ".join(plain(c) for c in drv.cox.ph_failures))
    return sentence("The assumption holds for every factor (no Holm-adjusted p below 0.05): each hazard ratio can be read "
                "as one number for the whole relationship.")


def stratified_table(drv: Drivers) -> Table | None:
    """The stratified model's hazard ratios as shown (None when the assumption held)."""
    if drv.cox.stratified_hazard_ratios is None:
        return None
    return display_table(hazard_table(drv.cox.stratified_hazard_ratios))


def complaint_sentences(drv: Drivers, fast_hours: float = 24.0) -> list[Sentence]:
    """The rate of leaving after a complaint resolved fast, in words (or why this part is skipped)."""
    if drv.time_varying is None:
        return [sentence("No complaint table (with customer IDs and start dates) was given, so this part is skipped.")]
    table = drv.time_varying.set_index("term")
    if "fast" not in table.index:
        return []
    fast = table.loc["fast"]
    return [sentence("After a complaint resolved within {hours:g} hours, customers leave at **{hr:.2f}× the rate** of "
                 "customers without a complaint (95% CI {lo:.2f}× to {hi:.2f}×).", hours=float(fast_hours),
                 hr=fast["hr"], lo=fast["ci_low"], hi=fast["ci_high"])]


def calibration_sentence(cal: Calibration) -> Sentence:
    """The average gap between predicted and observed survival, or why it cannot be checked."""
    if cal.error is None:
        return sentence("The horizon lies beyond the follow-up of every risk group, so calibration at the horizon cannot "
                    "be checked.")
    return sentence("Average gap between predicted and observed: **{gap:.1f} percentage points**.", gap=100 * cal.error)


def segments_table(cal: Calibration) -> Table:
    """The segments most at risk as shown."""
    return display_table(cal.segments, percent=["predicted_churn", "left_so_far"], rename={
        "predicted_churn": f"predicted to leave by {cal.horizon:g} {cal.time_unit}", "left_so_far": "left so far"})


def service_table(service: ServiceAndChurn) -> Table | None:
    """Mean service score per group as shown (None unless two or more groups have linked answers)."""
    if service.worst is None:
        return None
    return display_table(service.scores, rename={"segment": service.group, "service_score": "mean service score"})


def service_sentence(service: ServiceAndChurn) -> Sentence:
    """Which group is served worst and whether its churn could be compared."""
    if service.worst is None:
        return sentence("No survey linked to customers by ID in two or more groups, so this claim is not tested.")
    if service.vs_worst is None:
        return sentence("Worst service scores: **{worst}**, but its churn cannot be compared: {why}.",
                    worst=plain(service.worst), why=service.reason)
    return sentence("Worst service scores: **{worst}**. Rate of leaving of the other groups compared with {worst} (below "
                "1×: they leave less often):", worst=plain(service.worst))


def vs_worst_table(service: ServiceAndChurn) -> Table | None:
    """Hazard ratios of the other groups against the worst-served one as shown (None when not estimated)."""
    if service.vs_worst is None:
        return None
    return display_table(service.vs_worst, rename={"segment": service.group, "hr": "hazard ratio vs "
                                                   + plain(service.worst)})
