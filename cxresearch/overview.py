"""Data-quality overview of all inputs: what was read, what is missing, what was excluded and why.

The notebook reads a run's tables with :func:`load_inputs` (a :class:`cxresearch.sources.Source` and the run's
ledger), computes each section with one call (:func:`monthly_activity`, :func:`missing_values`,
:func:`survey_response`, ...), shows what the presentation helpers return, and records :func:`metrics` and
:func:`claims` (verdicts are decided here, never in the notebook).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from cxresearch import contracts
from cxresearch.display import Sentence, Table, fmt_interval, fmt_value, plain, sentence
from cxresearch.display import table as display_table
from cxresearch.io import Exclusion, Ledger, after, read_table, unlinked
from cxresearch.privacy import merge_small_groups
from cxresearch.stats import Claim, normal_interval, pick, stable_sort, verdict, welch, wilson_interval

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
    skipped: list[str] = field(default_factory=list)
    data_end: pd.Timestamp | None = None  # the data's own observation end (``source.defaults``), if they have one


def load_inputs(source: Any, ledger: Ledger, *, columns: dict[str, dict[str, str]] | None = None,
                as_of: str | None = None) -> Inputs:
    """Read and validate every table of ``source``; link child tables to the customers table.

    ``source`` is a :class:`cxresearch.sources.Source` with any of :data:`OVERVIEW_TABLES`; rows read and
    excluded are recorded in ``ledger`` (the run's ``results.ledger``). Rows of child tables whose customer is
    unknown, and rows dated after the observation end, are excluded and counted. The observation end is
    ``as_of`` or, when it is not given, the data's own (``source.defaults["observation_end"]``; none for a
    user's files: nothing is cut).
    """
    resolved = dict(source.paths)
    unknown = set(resolved) - set(OVERVIEW_TABLES)
    if unknown:
        raise ValueError(f"No overview table named {sorted(unknown)}; tables: {sorted(OVERVIEW_TABLES)}.")
    columns = columns or {}
    bad_cols = set(columns) - set(OVERVIEW_TABLES)
    if bad_cols:
        raise ValueError(f"The 'columns' parameter names unknown tables {sorted(bad_cols)}; "
                         f"use table names {sorted(OVERVIEW_TABLES)}.")
    data_end = source.defaults.get("observation_end")
    data_end = pd.Timestamp(data_end) if data_end else None
    cutoff = pd.Timestamp(as_of) if as_of else data_end
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
        tables[name] = read_table(resolved[name], contract, columns.get(name), exclusions=rules, ledger=ledger)
    skipped = [t for t in OVERVIEW_TABLES if t not in tables]
    return Inputs(tables, resolved, cutoff, source.synthetic, skipped, data_end)


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
    g = g[g["invited"] >= min_n].reset_index(drop=True)
    bounds = [wilson_interval(k, n) for k, n in zip(g["responded"], g["invited"], strict=True)]
    g["rate"] = g["responded"] / g["invited"]
    g["ci_low"], g["ci_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return g


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
    ci_low, ci_high = normal_interval(gap, se)
    return {"chi2": chi2, "df": dof, "p_value": p, "gap": gap, "ci_low": ci_low, "ci_high": ci_high, "highest": hi,
            "lowest": lo, "n": int(rates["size"].min())}


def respondent_spend_gap(invitations: pd.DataFrame, transactions: pd.DataFrame, days: int = 365) -> dict:
    """Mean prior-year spend of respondents minus non-respondents (Welch 95% CI)."""
    inv = invitations.dropna(subset=["invited_at"]).reset_index(drop=True)
    spend = contracts.spend_before(inv, transactions, days)
    a, b = spend[inv["responded"] == 1], spend[inv["responded"] == 0]
    if len(a) < 2 or len(b) < 2:
        return {"estimate": None, "ci_low": None, "ci_high": None, "p_value": None}
    res = welch(a, b)
    return {"estimate": res["estimate"], "ci_low": res["ci_low"], "ci_high": res["ci_high"], "p_value": res["p_value"],
            "respondents": float(a.mean()), "non_respondents": float(b.mean()), "n": int(min(len(a), len(b)))}


def exclusion_share(exclusions: pd.DataFrame, table: str) -> tuple[int, int]:
    """Rows excluded from ``table`` by all rules, and the rows read."""
    sub = exclusions[exclusions["table"] == table]
    if sub.empty:
        return 0, 0
    return int(sub["rows_excluded"].sum()), int(sub["rows_before"].iloc[0])



def cleaning_claim(exclusions: pd.DataFrame, truth: float | None = None) -> Claim:
    """Claim "cleaning removes less than 5% of transaction rows" (Wilson 95% interval compared with 5%).

    ``truth`` is the share of planted noise rows in a synthetic world (:func:`cxresearch.checks.noise_share`).
    """
    cid, text = "cleaning_removes_little", "Cleaning rules remove less than 5% of transaction rows"
    n_out, n_read = exclusion_share(exclusions, "transactions")
    if not n_read:
        return Claim(cid, text, "needs a transactions table", None, unit="share")
    lo, hi = wilson_interval(n_out, n_read)
    return Claim(cid, text, "share of transaction rows excluded, with a Wilson 95% interval, compared with 5%",
                 n_out / n_read, lo, hi, verdict=verdict(lo, hi, null=0.05, direction=-1), n=n_read, unit="share",
                 truth=truth)


def response_claim(test: dict[str, Any] | None) -> Claim:
    """Claim "response rates differ between segments": the gap's interval, and p < 0.05 for the chi-square test.

    The gap between the highest and the lowest segment is picked after looking, so its Wald interval alone
    would overstate the evidence: the verdict also requires the overall chi-square test at 5%.
    """
    cid, text = "response_differs_by_segment", "Survey response rates differ between customer segments"
    if not test or test.get("gap") is None:
        return Claim(cid, text, "needs survey invitations linked to customers in two or more segments", None, unit="pp")
    ok = test["p_value"] is not None and test["p_value"] < 0.05
    return Claim(cid, text, f"chi-square test that every segment answers at the same rate ({test['df']} degrees of "
                 "freedom); the estimate is the gap between the segments that answer most and least (Wald interval; as "
                 "the two were picked after looking, the verdict also needs p < 0.05)", test["gap"], test["ci_low"],
                 test["ci_high"], test["p_value"], verdict(test["ci_low"], test["ci_high"]) if ok else "inconclusive",
                 test["n"], unit="pp", meaning=f"Response rate of {plain(test['highest'])} minus that of "
                 f"{plain(test['lowest'])}, in percentage points")


def spend_claim(gap: dict[str, Any] | None) -> Claim:
    """Claim "survey respondents are heavier buyers" from :func:`respondent_spend_gap`."""
    cid, text = "respondents_spend_more", "Customers who answer surveys are heavier buyers than those who do not"
    if not gap or gap.get("estimate") is None:
        return Claim(cid, text, "needs survey invitations and transactions", None, unit="money")
    return Claim(cid, text, "difference in mean spend over the year before the invitation, Welch t-test",
                 gap["estimate"], gap["ci_low"], gap["ci_high"], gap["p_value"], verdict(gap["ci_low"], gap["ci_high"]),
                 gap["n"], unit="money", meaning="Average spend in the year before the invitation: customers who "
                 "answered minus those who did not")


# ---------------------------------------------------------------------------------------------
# the notebook's steps beyond reading: typed results, the figures of the run, its claims


@dataclass
class SurveyResponse:
    """Who answers the survey: response rates by segment, the test that they differ, and the respondents' spend."""

    linked: bool  # survey invitations and a customers table were given
    invited: int
    responded: int
    rate: tuple[float, float, float] | None  # overall response rate with its Wilson 95% interval
    rates: pd.DataFrame | None  # :func:`response_rates` by segment; None when the customers have no segment
    test: dict[str, Any] | None  # :func:`response_by_group_test`
    spend_gap: dict[str, Any] | None  # :func:`respondent_spend_gap`; None without transactions

    @property
    def overall(self) -> float | None:
        return self.rate[0] if self.rate else None


def survey_response(inputs: Inputs, min_group_size: int = 5, by: str = "segment") -> SurveyResponse:
    """Response rates overall and per ``by`` group (folded below ``min_group_size``), the chi-square test that
    they are equal, and the spend gap between respondents and non-respondents in the year before the invitation.
    Parts that need a missing table or column are None."""
    invitations, customers = inputs.tables.get("survey_invitations"), inputs.tables.get("customers")
    if invitations is None or customers is None:
        return SurveyResponse(False, 0, 0, None, None, None, None)
    invited, responded = len(invitations), int(invitations["responded"].sum())
    rate = (float(invitations["responded"].mean()), *wilson_interval(responded, invited)) if invited else None
    rates = test = None
    if by in customers:
        rates = response_rates(invitations, customers, by, min_group_size)
        test = response_by_group_test(invitations, customers, by, min_group_size)
    gap = respondent_spend_gap(invitations, inputs.tables["transactions"]) if "transactions" in inputs.tables else None
    return SurveyResponse(True, invited, responded, rate, rates, test, gap)


def _interval(estimate: float, low: float, high: float) -> dict[str, float]:
    return {"estimate": estimate, "ci_low": low, "ci_high": high}


def metrics(inputs: Inputs, exclusions: pd.DataFrame, survey: SurveyResponse) -> list[dict[str, Any]]:
    """The run's figures, each as the arguments of ``results.metric`` (``for m in ...: results.metric(**m)``).

    Headline: customers, the share who left, the share of transaction rows excluded and the survey response
    rate (each when its table was given).
    """
    tables = inputs.tables
    rows = {name: len(df) for name, df in tables.items()}
    out: list[dict[str, Any]] = [
        {"name": "n_customers", "value": rows.get("customers"), "headline": True, "label": "customers"},
        {"name": "rows", "value": rows},
        {"name": "rows_excluded", "value": {t: exclusion_share(exclusions, t)[0] for t in tables}},
        {"name": "n_exclusion_rules", "value": len(exclusions)},
    ]
    customers = tables.get("customers")
    if customers is not None and "churn_date" in customers:
        out.append({"name": "share_left", "value": customers["churn_date"].notna().mean(), "headline": True,
                    "label": "customers who left", "unit": "share"})
    cleaning = cleaning_claim(exclusions)
    if cleaning.estimate is not None:
        out.append({"name": "transactions_excluded_share", "headline": True, "unit": "share",
                    "value": _interval(cleaning.estimate, cleaning.ci_low, cleaning.ci_high),
                    "label": "transaction rows excluded (95% CI)"})
    if survey.rate is not None:
        out.append({"name": "survey_response_rate", "value": _interval(*survey.rate), "headline": True,
                    "label": "survey response rate (95% CI)", "unit": "share"})
    gap = survey.spend_gap
    if gap and gap["estimate"] is not None:
        out.append({"name": "respondent_spend_gap", "unit": "money",
                    "value": _interval(gap["estimate"], gap["ci_low"], gap["ci_high"])})
    return out


def claims(inputs: Inputs, exclusions: pd.DataFrame, survey: SurveyResponse,
           planted_noise: float | None = None) -> list[Claim]:
    """Every claim of the overview: cleaning removes little, response differs by segment, respondents spend more
    (``planted_noise``: the known share of noise rows, see :func:`cxresearch.checks.noise_share`)."""
    return [cleaning_claim(exclusions, truth=planted_noise), response_claim(survey.test),
            spend_claim(survey.spend_gap)]


# ---------------------------------------------------------------------------------------------
# what the notebook shows: sentences as the arguments of ``cx.say`` (``cx.say(**sentence)``), tables as
# :class:`cxresearch.display.Table`, figures with their alt text


#: a Markdown sentence for :func:`cxresearch.display.say`: ``cx.say(**sentence)`` (values are escaped there)


def read_sentences(inputs: Inputs) -> list[Sentence]:
    """The observation end and the tables not provided."""
    out = []
    if inputs.as_of is not None:
        out.append(sentence("Observation end: **{as_of}**.", as_of=str(inputs.as_of.date())))
    if inputs.skipped:
        out.append(sentence("Not provided: {tables}.", tables=", ".join(plain(t) for t in inputs.skipped)))
    return out


def customer_tables(inputs: Inputs, min_n: int = 5) -> dict[str, Table]:
    """Customers and the share who left by segment, plan, channel and region (those present), as shown."""
    customers = inputs.tables.get("customers")
    if customers is None:
        return {}
    return {by: display_table(customers_by(customers, by, inputs.as_of, min_n), percent=["share", "share_left"],
                              rename={"share": "share of all", "left": "customers who left"})
            for by in ("segment", "plan", "channel", "region") if by in customers}


def rates_table(survey: SurveyResponse) -> Table:
    """Response rates by segment as shown."""
    return display_table(survey.rates, percent=["rate", "ci_low"], rename={"rate": "response rate"})


def survey_sentences(survey: SurveyResponse, currency: str = "") -> list[Sentence]:
    """Why response rates by segment are missing, if they are, and the respondents' spend in words."""
    out = []
    if not survey.linked:
        out.append(sentence("No survey invitations linked to customers were given, so response rates cannot be computed."))
    elif survey.rates is None:
        out.append(sentence("The customers table has no segment column, so response rates by segment cannot be compared."))
    gap = survey.spend_gap
    if gap and gap["estimate"] is not None:
        out.append(sentence("In the year before the invitation, customers who answered spent on average **{a}** against "
                        "**{b}** for those who did not (difference {d}, 95% CI {ci}).",
                        a=fmt_value(gap["respondents"], "money", currency),
                        b=fmt_value(gap["non_respondents"], "money", currency),
                        d=fmt_value(gap["estimate"], "money", currency),
                        ci=fmt_interval(gap["ci_low"], gap["ci_high"], "money", currency)))
    return out


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
