"""Data-quality overview of all inputs: what was read, what is missing, what was excluded and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from cxresearch import contracts
from cxresearch.io import Exclusion, after, read_table, unlinked
from cxresearch.privacy import merge_small_groups
from cxresearch.stats import pick, stable_sort, verdict
from cxresearch.synth import resolve_inputs

#: table name -> (contract, columns that carry dates)
OVERVIEW_TABLES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "customers": (contracts.CUSTOMERS, ("signup_date", "churn_date")),
    "transactions": (contracts.TRANSACTIONS, ("timestamp",)),
    "complaints": (contracts.COMPLAINTS, ("opened_at",)),
    "survey_responses": (contracts.SURVEY_RESPONSES, ("responded_at",)),
    "survey_invitations": (contracts.SURVEY_INVITATIONS, ("invited_at",)),
    "loyalty_pilot": (contracts.LOYALTY_PILOT, ()),
    "fg_transcripts": (contracts.FG_TRANSCRIPTS, ()),
    "audits": (contracts.AUDITS, ("date",)),
}
LINKED = ("transactions", "complaints", "survey_responses", "survey_invitations", "loyalty_pilot")


@dataclass
class Inputs:
    """The validated tables of one run."""

    tables: dict[str, pd.DataFrame]
    paths: dict[str, Path]
    as_of: pd.Timestamp | None
    synthetic: bool
    truth: dict[str, Any] | None = None
    skipped: list[str] = field(default_factory=list)


def load_inputs(paths: dict[str, str | None], seed: int = 20240101, n_customers: int = 5000,
                effects: dict[str, Any] | None = None, columns: dict[str, dict[str, str]] | None = None,
                as_of: str | None = None) -> Inputs:
    """Read and validate every available input; link child tables to the customers table.

    Rows of child tables whose customer is unknown, and rows dated after ``as_of``, are excluded and
    counted (see the ledger in :mod:`cxresearch.io`).
    """
    unknown = set(paths) - set(OVERVIEW_TABLES)
    if unknown:
        raise ValueError(f"No overview table named {sorted(unknown)}; tables: {sorted(OVERVIEW_TABLES)}.")
    columns = columns or {}
    bad_cols = set(columns) - set(OVERVIEW_TABLES)
    if bad_cols:
        raise ValueError(f"The 'columns' parameter names unknown tables {sorted(bad_cols)}; "
                         f"use table names {sorted(OVERVIEW_TABLES)}.")
    resolved, synthetic, truth = resolve_inputs(paths, seed, n_customers, effects)
    cutoff = pd.Timestamp(as_of) if as_of else (pd.Timestamp(truth["calendar"]["observation_end"])
                                                 if truth else None)
    tables: dict[str, pd.DataFrame] = {}
    order = ["customers"] + [t for t in OVERVIEW_TABLES if t != "customers"]
    for name in order:
        if name not in resolved:
            continue
        contract, date_cols = OVERVIEW_TABLES[name]
        rules: list[Exclusion] = []
        if name in LINKED and "customers" in tables:
            rules.append(unlinked("customer_id", tables["customers"]["customer_id"], "customers"))
        if cutoff is not None:
            rules += [after(c, cutoff) for c in date_cols if c != "churn_date"]
        tables[name] = read_table(resolved[name], contract, columns.get(name), exclusions=rules)
    skipped = [t for t in OVERVIEW_TABLES if t not in tables]
    return Inputs(tables, resolved, cutoff, synthetic, truth, skipped)


def table_summary(inputs: Inputs) -> pd.DataFrame:
    """Rows, columns and date range of every table."""
    rows = []
    for name, df in inputs.tables.items():
        dates = [df[c] for c in OVERVIEW_TABLES[name][1] if c in df and df[c].notna().any()]
        first = min(d.min() for d in dates) if dates else pd.NaT
        last = max(d.max() for d in dates) if dates else pd.NaT
        rows.append({"table": name, "rows": len(df), "columns": df.shape[1],
                     "first date": first.date() if pd.notna(first) else "–",
                     "last date": last.date() if pd.notna(last) else "–"})
    return pd.DataFrame(rows)


def missing_values(inputs: Inputs) -> pd.DataFrame:
    """Share of empty cells per table and column (only columns with any gap)."""
    rows = []
    for name, df in inputs.tables.items():
        for col in df.columns:
            s = df[col]
            empty = s.isna() | (s.astype("string").str.strip() == "")
            if empty.any():
                rows.append({"table": name, "column": col, "missing": int(empty.sum()),
                             "share": float(empty.mean())})
    return pd.DataFrame(rows, columns=["table", "column", "missing", "share"])


def customers_by(customers: pd.DataFrame, by: str, as_of: pd.Timestamp | None, min_n: int = 5) -> pd.DataFrame:
    """Customers and the share who left, per level of ``by``.

    Groups under ``min_n`` are folded into "Other (small groups)", itself at least ``min_n`` (see
    :func:`cxresearch.privacy.merge_small_groups`), so no small group can be recovered from the total.
    """
    if by not in customers:
        return pd.DataFrame(columns=[by, "customers", "share", "left", "share_left"])
    left = customers["churn_date"].notna()
    if as_of is not None:
        left &= customers["churn_date"] <= as_of
    groups, _ = merge_small_groups(customers[by].fillna("(missing)"), min_n)
    g = customers.assign(left=left, _g=groups).groupby("_g")
    out = pd.DataFrame({"customers": g.size(), "left": g["left"].sum()}).reset_index().rename(columns={"_g": by})
    out["share"] = out["customers"] / out["customers"].sum()
    out["share_left"] = out["left"] / out["customers"]
    out = out[[by, "customers", "share", "left", "share_left"]]
    if (out["customers"] < min_n).any():  # everything folded and still too few: show nothing per group
        return out.iloc[0:0]
    return stable_sort(out, "customers", ascending=False, tie=by).reset_index(drop=True)


def monthly_activity(inputs: Inputs) -> pd.DataFrame:
    """Rows per calendar month for every dated table (signups for customers)."""
    series = {}
    for name, df in inputs.tables.items():
        cols = [c for c in OVERVIEW_TABLES[name][1] if c != "churn_date" and c in df]
        if not cols or df[cols[0]].notna().sum() == 0:
            continue
        label = "signups" if name == "customers" else name.replace("_", " ")
        series[label] = df[cols[0]].dropna().dt.to_period("M").value_counts().sort_index()
    if not series:
        return pd.DataFrame()
    out = pd.DataFrame(series).fillna(0).astype(int)
    out.index = out.index.astype(str)
    out.index.name = "month"
    return out


def _linked(invitations: pd.DataFrame, customers: pd.DataFrame, by: str, min_n: int) -> pd.DataFrame:
    df = invitations.merge(customers[["customer_id", by]], on="customer_id", how="left")
    df[by], _ = merge_small_groups(df[by].fillna("(missing)"), min_n)
    return df


def response_rates(invitations: pd.DataFrame, customers: pd.DataFrame, by: str = "segment",
                   min_n: int = 5) -> pd.DataFrame:
    """Survey response rate per group with Wilson 95% intervals; groups under ``min_n`` folded into "Other"."""
    df = _linked(invitations, customers, by, min_n)
    g = df.groupby(by)["responded"].agg(["size", "sum"]).reset_index()
    g.columns = [by, "invited", "responded"]
    g = g[g["invited"] >= min_n]
    lo, hi = proportion_confint(g["responded"], g["invited"], alpha=0.05, method="wilson")
    g["rate"], g["ci_low"], g["ci_high"] = g["responded"] / g["invited"], lo, hi
    return g.reset_index(drop=True)


def response_by_group_test(invitations: pd.DataFrame, customers: pd.DataFrame, by: str = "segment",
                           min_n: int = 5) -> dict:
    """Chi-square test that the response rate is the same in every group, and the largest gap.

    Groups are folded as in :func:`response_rates`; ``n`` is the smallest group's invitations.
    """
    df = _linked(invitations, customers, by, min_n)
    table = pd.crosstab(df[by], df["responded"])
    if table.shape[0] < 2 or table.shape[1] < 2:
        return {"chi2": None, "df": None, "p_value": None, "gap": None, "ci_low": None, "ci_high": None, "n": None}
    chi2, p, dof, _ = stats.chi2_contingency(table)
    rates = df.groupby(by)["responded"].agg(["mean", "size"])
    hi, lo = pick(rates["mean"], "max"), pick(rates["mean"], "min")
    gap = rates.loc[hi, "mean"] - rates.loc[lo, "mean"]
    se = np.sqrt(sum(rates.loc[k, "mean"] * (1 - rates.loc[k, "mean"]) / rates.loc[k, "size"] for k in (hi, lo)))
    return {"chi2": chi2, "df": dof, "p_value": p, "gap": gap, "ci_low": gap - 1.96 * se,
            "ci_high": gap + 1.96 * se, "highest": hi, "lowest": lo, "n": int(rates["size"].min())}


def spend_before(invitations: pd.DataFrame, transactions: pd.DataFrame, days: int = 365) -> pd.Series:
    """Spend of each invited customer in the ``days`` before the invitation (vectorised)."""
    inv = invitations.reset_index(drop=True).assign(_row=lambda d: np.arange(len(d)))
    tx = transactions[["customer_id", "timestamp", "amount"]]
    merged = inv[["_row", "customer_id", "invited_at"]].merge(tx, on="customer_id", how="inner")
    window = (merged["timestamp"] < merged["invited_at"]) & (
        merged["timestamp"] >= merged["invited_at"] - pd.Timedelta(days=days))
    spend = merged[window].groupby("_row")["amount"].sum()
    return spend.reindex(np.arange(len(inv)), fill_value=0.0)


def respondent_spend_gap(invitations: pd.DataFrame, transactions: pd.DataFrame, days: int = 365) -> dict:
    """Mean prior-year spend of respondents minus non-respondents (Welch 95% CI)."""
    inv = invitations.dropna(subset=["invited_at"]).reset_index(drop=True)
    spend = spend_before(inv, transactions, days)
    a, b = spend[inv["responded"] == 1], spend[inv["responded"] == 0]
    if len(a) < 2 or len(b) < 2:
        return {"estimate": None, "ci_low": None, "ci_high": None, "p_value": None}
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    return {"estimate": float(a.mean() - b.mean()), "ci_low": float(ci.low), "ci_high": float(ci.high),
            "p_value": float(res.pvalue), "respondents": float(a.mean()), "non_respondents": float(b.mean()),
            "n": int(min(len(a), len(b)))}


def exclusion_share(exclusions: pd.DataFrame, table: str) -> tuple[int, int]:
    """Rows excluded from ``table`` by all rules, and the rows read."""
    sub = exclusions[exclusions["table"] == table]
    if sub.empty:
        return 0, 0
    return int(sub["rows_excluded"].sum()), int(sub["rows_before"].iloc[0])


def cleaning_claim(exclusions: pd.DataFrame) -> dict[str, Any]:
    """Claim "cleaning removes less than 5% of transaction rows" (Wilson interval) as ``Results.claim`` arguments."""
    claim = {"id": "cleaning_removes_little", "claim": "Cleaning rules remove less than 5% of transaction rows"}
    n_out, n_read = exclusion_share(exclusions, "transactions")
    if not n_read:
        return {**claim, "test": "needs a transactions table", "estimate": None, "verdict": "not testable"}
    lo, hi = proportion_confint(n_out, n_read, method="wilson")
    return {**claim, "test": "share excluded with a Wilson 95% interval, compared with 5%", "estimate": n_out / n_read,
            "ci_low": lo, "ci_high": hi, "verdict": verdict(lo, hi, null=0.05, direction=-1), "n": n_read}


def response_claim(test: dict[str, Any] | None) -> dict[str, Any]:
    """Claim "response rates differ between segments": the gap's interval, and p < 0.05 for the chi-square test.

    The gap between the highest and the lowest segment is picked after looking, so its Wald interval alone
    would overstate the evidence: the verdict also requires the overall chi-square test at 5%.
    """
    claim = {"id": "response_differs_by_segment", "claim": "Survey response rates differ between customer segments"}
    if not test or test.get("gap") is None:
        return {**claim, "test": "needs survey invitations linked to customers in two or more segments",
                "estimate": None, "verdict": "not testable"}
    ok = test["p_value"] is not None and test["p_value"] < 0.05
    return {**claim, "test": f"chi-square test of equal response rates across segments (df={test['df']}); "
            "estimate: gap between the highest and lowest segment (Wald interval, not adjusted for picking the "
            "extremes, so the verdict also requires p < 0.05)", "estimate": test["gap"], "ci_low": test["ci_low"],
            "ci_high": test["ci_high"], "p_value": test["p_value"],
            "verdict": verdict(test["ci_low"], test["ci_high"]) if ok else "inconclusive", "n": test["n"]}


def spend_claim(gap: dict[str, Any] | None) -> dict[str, Any]:
    """Claim "survey respondents are heavier buyers" from :func:`respondent_spend_gap`."""
    claim = {"id": "respondents_spend_more",
             "claim": "Customers who answer surveys are heavier buyers than those who do not"}
    if not gap or gap.get("estimate") is None:
        return {**claim, "test": "needs survey invitations and transactions", "estimate": None,
                "verdict": "not testable"}
    return {**claim, "test": "difference in mean spend over the year before the invitation, Welch t-test",
            "estimate": gap["estimate"], "ci_low": gap["ci_low"], "ci_high": gap["ci_high"],
            "p_value": gap["p_value"], "verdict": verdict(gap["ci_low"], gap["ci_high"]), "n": gap["n"]}


# ---------------------------------------------------------------------------------------------
# plots (take results, optional ax, return the axes)


def plot_activity(monthly: pd.DataFrame, axes: np.ndarray | None = None) -> np.ndarray:
    """Rows per month, one small panel per dated table (shared time axis)."""
    n = max(1, monthly.shape[1])
    if axes is None:
        cols = 2 if n > 1 else 1
        rows = int(np.ceil(n / cols))
        _, axes = plt.subplots(rows, cols, figsize=(11, 2.0 * rows + 0.6), sharex=True, squeeze=False)
    flat = np.asarray(axes).ravel()
    when = pd.PeriodIndex(monthly.index, freq="M").to_timestamp()
    for ax, col in zip(flat, monthly.columns, strict=False):
        ax.bar(when, monthly[col], width=25, color="#4a78a8")
        ax.set_title(col, fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in flat[len(monthly.columns):]:
        ax.set_axis_off()
    flat[0].figure.suptitle("Rows per month in each input", fontsize=11)
    flat[0].figure.tight_layout()
    return np.asarray(axes)


def plot_missing(missing: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of empty cells per table.column."""
    ax = ax or plt.subplots(figsize=(8, max(2.0, 0.35 * len(missing) + 1)))[1]
    if missing.empty:
        ax.text(0.5, 0.5, "No empty cells in any input", ha="center", va="center")
        ax.set_axis_off()
        return ax
    labels = missing["table"] + " · " + missing["column"]
    ax.barh(labels, missing["share"] * 100, color="#7a9cc6")
    ax.invert_yaxis()
    ax.set_xlabel("% of rows empty")
    ax.set_title("Where values are missing")
    return ax


def plot_response_rates(rates: pd.DataFrame, by: str = "segment", ax: plt.Axes | None = None) -> plt.Axes:
    """Response rate per group with its 95% interval (suppressed groups left out)."""
    from cxresearch.plots import plot_intervals

    shown = rates.dropna(subset=["rate"])
    return plot_intervals(shown[by], shown["rate"], shown["ci_low"], shown["ci_high"], ax,
                          "% of invited customers who answered (95% CI)", f"Survey response rate by {by}", scale=100)
