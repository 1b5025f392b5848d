"""Data-quality overview of all inputs: what was read, what is missing, what was excluded and why."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from cxresearch import contracts
from cxresearch.display import plain
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

#: Plain labels of the tables and of the contract columns a reader meets in this report. The notebook
#: registers them with ``cx.display.use_labels(overview.LABELS, labels)``; the ``labels`` parameter wins.
LABELS = {
    "survey_responses": "survey answers", "survey_invitations": "survey invitations", "loyalty_pilot": "loyalty pilot",
    "fg_transcripts": "focus-group transcripts", "audits": "service audits", "signups": "new customers (sign-ups)",
    "customer_id": "customer", "signup_date": "sign-up date", "churn_date": "date the customer left",
    "timestamp": "purchase time", "transaction_id": "transaction number", "opened_at": "complaint opened",
    "hours_to_resolve": "hours to resolve", "complaint_id": "complaint number", "respondent_id": "respondent",
    "responded_at": "survey answered", "invited_at": "invitation sent", "open_text": "open answer",
    "session_id": "session", "audit_id": "audit number", "share_left": "share who left",
}
#: Columns whose name alone is too generic to label everywhere (audits.date is the audit's date).
TABLE_COLUMN_LABELS = {("audits", "date"): "audit date", ("audits", "unit"): "audited unit",
                       ("survey_responses", "weight"): "survey weight"}


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


def column_label(table: str, column: str) -> str:
    """The reader's label of ``column`` of ``table``: a registered label (``labels`` parameter or :data:`LABELS`),
    then :data:`TABLE_COLUMN_LABELS`, then the name spelled out."""
    from cxresearch.display import LABELS as REGISTERED

    if column in REGISTERED:
        return REGISTERED[column]
    return TABLE_COLUMN_LABELS.get((table, column), plain(column))


_AFTER = re.compile(r"^(?P<col>[A-Za-z0-9_]+) after (?P<rest>.+)$")
_UNLINKED = re.compile(r"^(?P<col>[A-Za-z0-9_]+) not found in the (?P<parent>[A-Za-z0-9_]+) table$")


def rule_text(table: str, rule: str) -> str:
    """A cleaning rule in words: column and table names replaced by their labels
    ("opened_at after the observation end (2024-12-31)" → "complaint opened after the observation end (2024-12-31)")."""
    m = _UNLINKED.match(rule)
    if m:
        return f"{column_label(table, m.group('col'))} not found in the {plain(m.group('parent'))} table"
    m = _AFTER.match(rule)
    if m:
        return f"{column_label(table, m.group('col'))} after {m.group('rest')}"
    return rule


def exclusions_display(exclusions: pd.DataFrame) -> pd.DataFrame:
    """The exclusion ledger with plain table names, rules and headers (share as a fraction: show it as %)."""
    return pd.DataFrame({
        "input": exclusions["table"].map(plain),
        "rule": [rule_text(t, r) for t, r in zip(exclusions["table"], exclusions["rule"], strict=True)],
        "rows excluded": exclusions["rows_excluded"], "rows read": exclusions["rows_before"],
        "share excluded": exclusions["share"], "first rows (file row numbers)": exclusions["example_rows"],
    })


def missing_display(missing: pd.DataFrame) -> pd.DataFrame:
    """Missing values with plain table and column names (share as a fraction: show it as %)."""
    return pd.DataFrame({
        "input": missing["table"].map(plain),
        "column": [column_label(t, c) for t, c in zip(missing["table"], missing["column"], strict=True)],
        "empty cells": missing["missing"], "share empty": missing["share"],
    })


def table_summary(inputs: Inputs) -> pd.DataFrame:
    """Rows kept after cleaning, columns and date range of every table (plain headers and table names)."""
    rows = []
    for name, df in inputs.tables.items():
        dates = [df[c] for c in OVERVIEW_TABLES[name][1] if c in df and df[c].notna().any()]
        first = min(d.min() for d in dates) if dates else pd.NaT
        last = max(d.max() for d in dates) if dates else pd.NaT
        rows.append({"input": plain(name), "rows kept": len(df), "columns": df.shape[1],
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
    """Rows per calendar month for every dated table, one column per table named by its key ("signups" for
    customers: the month each customer signed up)."""
    series = {}
    for name, df in inputs.tables.items():
        cols = [c for c in OVERVIEW_TABLES[name][1] if c != "churn_date" and c in df]
        if not cols or df[cols[0]].notna().sum() == 0:
            continue
        key = "signups" if name == "customers" else name
        series[key] = df[cols[0]].dropna().dt.to_period("M").value_counts().sort_index()
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


def planted_noise_share(inputs: Inputs) -> float | None:
    """Share of transaction rows the synthetic world planted as noise (returns and zero amounts), the value the
    cleaning rules should remove; None for real data or when ``as_of`` cuts the world's observation period."""
    t = inputs.truth
    if not t or "transactions" not in inputs.tables or inputs.as_of is None \
            or inputs.as_of != pd.Timestamp(t["calendar"]["observation_end"]):
        return None
    kinds, rows = t["purchases"]["rows_by_kind"], t["rows"]["transactions"]
    return (kinds.get("return", 0) + kinds.get("zero_amount", 0)) / rows if rows else None


def cleaning_claim(exclusions: pd.DataFrame, truth: float | None = None) -> dict[str, Any]:
    """Claim "cleaning removes less than 5% of transaction rows" (Wilson interval) as ``Results.claim`` arguments.

    ``truth`` is the share of planted noise rows in a synthetic world (:func:`planted_noise_share`).
    """
    claim = {"id": "cleaning_removes_little", "claim": "Cleaning rules remove less than 5% of transaction rows",
             "unit": "share"}
    n_out, n_read = exclusion_share(exclusions, "transactions")
    if not n_read:
        return {**claim, "test": "needs a transactions table", "estimate": None, "verdict": "not testable"}
    lo, hi = proportion_confint(n_out, n_read, method="wilson")
    return {**claim, "test": "share of transaction rows excluded, with a Wilson 95% interval, compared with 5%",
            "estimate": n_out / n_read, "ci_low": lo, "ci_high": hi, "verdict": verdict(lo, hi, null=0.05, direction=-1),
            "n": n_read, "truth": truth}


def response_claim(test: dict[str, Any] | None) -> dict[str, Any]:
    """Claim "response rates differ between segments": the gap's interval, and p < 0.05 for the chi-square test.

    The gap between the highest and the lowest segment is picked after looking, so its Wald interval alone
    would overstate the evidence: the verdict also requires the overall chi-square test at 5%.
    """
    claim = {"id": "response_differs_by_segment", "claim": "Survey response rates differ between customer segments",
             "unit": "pp"}
    if not test or test.get("gap") is None:
        return {**claim, "test": "needs survey invitations linked to customers in two or more segments",
                "estimate": None, "verdict": "not testable"}
    ok = test["p_value"] is not None and test["p_value"] < 0.05
    return {**claim, "test": f"chi-square test that every segment answers at the same rate ({test['df']} degrees of "
            "freedom); the estimate is the gap between the segments that answer most and least (Wald interval; as "
            "the two were picked after looking, the verdict also needs p < 0.05)", "estimate": test["gap"],
            "ci_low": test["ci_low"], "ci_high": test["ci_high"], "p_value": test["p_value"],
            "verdict": verdict(test["ci_low"], test["ci_high"]) if ok else "inconclusive", "n": test["n"],
            "meaning": f"Response rate of {plain(test['highest'])} minus that of {plain(test['lowest'])}, in "
                       "percentage points"}


def spend_claim(gap: dict[str, Any] | None) -> dict[str, Any]:
    """Claim "survey respondents are heavier buyers" from :func:`respondent_spend_gap`."""
    claim = {"id": "respondents_spend_more",
             "claim": "Customers who answer surveys are heavier buyers than those who do not", "unit": "money"}
    if not gap or gap.get("estimate") is None:
        return {**claim, "test": "needs survey invitations and transactions", "estimate": None,
                "verdict": "not testable"}
    return {**claim, "test": "difference in mean spend over the year before the invitation, Welch t-test",
            "meaning": "Average spend in the year before the invitation: customers who answered minus those who did "
                       "not",
            "estimate": gap["estimate"], "ci_low": gap["ci_low"], "ci_high": gap["ci_high"],
            "p_value": gap["p_value"], "verdict": verdict(gap["ci_low"], gap["ci_high"]), "n": gap["n"]}


# ---------------------------------------------------------------------------------------------
# plots (take results, optional ax, return the axes)


def plot_activity(monthly: pd.DataFrame, axes: np.ndarray | None = None) -> np.ndarray:
    """Rows per month, one small panel per dated table (shared date axis, each panel on its own count scale)."""
    from cxresearch.plots import MAIN, date_axis, label

    n = max(1, monthly.shape[1])
    if axes is None:
        cols = 2 if n > 1 else 1
        rows = int(np.ceil(n / cols))
        _, axes = plt.subplots(rows, cols, figsize=(11, 2.1 * rows + 0.8), sharex=True, squeeze=False)
    flat = np.asarray(axes).ravel()
    when = pd.PeriodIndex(monthly.index, freq="M").to_timestamp()
    for ax, col in zip(flat, monthly.columns, strict=False):
        ax.bar(when, monthly[col], width=25, color=MAIN, align="edge")
        ax.set_title(label(col), loc="left")
        ax.grid(axis="x", visible=False)
        ax.set_ylim(bottom=0)
        date_axis(ax)
        ax.tick_params(axis="x", labelbottom=True)
    for ax in flat[len(monthly.columns):]:
        ax.set_axis_off()
    fig = flat[0].figure
    fig.suptitle("Rows per month in each input", fontweight="bold")
    fig.supylabel("rows per month")
    fig.tight_layout()
    return np.asarray(axes)


def plot_missing(missing: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of empty cells per input and column, on a 0–100% axis."""
    import seaborn as sns
    from matplotlib.ticker import PercentFormatter

    from cxresearch.plots import MAIN, label

    ax = ax or plt.subplots(figsize=(8, max(2.0, 0.4 * len(missing) + 1.2)))[1]
    if missing.empty:
        ax.text(0.5, 0.5, "No empty cells in any input", ha="center", va="center")
        ax.set_axis_off()
        return ax
    names = [f"{label(t)}: {column_label(t, c)}" for t, c in zip(missing["table"], missing["column"], strict=True)]
    shares = missing["share"].to_numpy(float) * 100
    sns.barplot(x=shares, y=names, color=MAIN, saturation=1, orient="h", ax=ax)
    for y, v in enumerate(shares):
        ax.annotate(f"{v:.1f}%", (v, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_xlim(0, 100)
    ax.xaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    ax.set_xlabel("share of rows with this value empty")
    ax.set_ylabel("")
    ax.grid(axis="y", visible=False)
    ax.set_title("Where values are missing")
    return ax


def plot_response_rates(rates: pd.DataFrame, by: str = "segment", ax: plt.Axes | None = None,
                        overall: float | None = None) -> plt.Axes:
    """Response rate per group with its 95% interval (suppressed groups left out); ``overall`` is drawn as a
    dashed line (the rate over all invited customers)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from cxresearch.plots import MUTED, label, plot_intervals

    shown = rates.dropna(subset=["rate"])
    ax = plot_intervals(shown[by], shown["rate"], shown["ci_low"], shown["ci_high"], ax,
                        "invited customers who answered (95% CI)", f"Survey response rate by {label(by)}", scale=100,
                        reference=overall)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    if overall is not None:  # the reference line's name, in headroom above the first group
        top = len(shown) - 1
        ax.set_ylim(-0.6, top + 0.9)
        ax.text(overall * 100, top + 0.55, f" all invited: {overall:.1%}", va="center", fontsize=8.5, color=MUTED)
    return ax


# ---------------------------------------------------------------------------------------------
# figure descriptions (alt text): what each chart shows, in words, for readers who cannot see it


def activity_alt(monthly: pd.DataFrame) -> str:
    """Alt text of :func:`plot_activity`: each input's months and any empty month inside its range."""
    if monthly.empty:
        return "Bar charts of rows per month: no input has dates."
    when = pd.PeriodIndex(monthly.index, freq="M")
    parts = []
    for col in monthly.columns:
        active = when[monthly[col].to_numpy() > 0]
        if not len(active):
            continue
        span = f"{active.min().strftime('%b %Y')} to {active.max().strftime('%b %Y')}"
        parts.append(f"{plain(col)} {span}, at most {int(monthly[col].max()):,} a month")
    return "Bar charts of rows per month in each dated input: " + "; ".join(parts) + "."


def missing_alt(missing: pd.DataFrame) -> str:
    """Alt text of :func:`plot_missing`."""
    if missing.empty:
        return "No empty cells in any input."
    m = stable_sort(missing, "share", ascending=False, tie="column")
    return ("Bar chart of the share of rows with an empty value, per input and column: "
            + "; ".join(f"{plain(r.table)}, {column_label(r.table, r.column)}: {100 * r.share:.1f}%"
                        for r in m.itertuples()) + ".")


def response_rates_alt(rates: pd.DataFrame, by: str = "segment", overall: float | None = None) -> str:
    """Alt text of :func:`plot_response_rates`."""
    shown = stable_sort(rates.dropna(subset=["rate"]), "rate", ascending=False, tie=by)
    text = (f"Dot chart of the survey response rate by {plain(by)} with 95% intervals: "
            + ", ".join(f"{plain(r[by])} {100 * r['rate']:.1f}%" for _, r in shown.iterrows()))
    return text + (f"; all invited customers {100 * overall:.1f}%." if overall is not None else ".")
