"""Customer lifetime value from a transaction log: RFM, buy-till-you-die models, CLV.

Models are fitted by maximum likelihood on the unique (frequency, recency, T) rows with their counts as
weights, so millions of customers fit in seconds:

* BG/NBD — Fader, Hardie & Lee (2005), "Counting your customers the easy way";
* Pareto/NBD — Schmittlein, Morrison & Colombo (1987), likelihood as in Fader & Hardie (2005), "A note on
  deriving the Pareto/NBD model" (Gaussian hypergeometric form);
* Gamma-Gamma spend — Fader, Hardie & Lee (2005), "RFM and CLV".

Standard errors come from the inverse numerical Hessian of the log-likelihood in log-parameter space,
mapped back by the delta method (Wald intervals are formed on the log scale, so they stay positive).

A fitted model is an object with its predictions (like ``lifetimes`` and ``pymc-marketing``):
:class:`BetaGeoFit` and :class:`ParetoNBDFit` (``p_alive``, ``expected_purchases``) and
:class:`GammaGammaFit` (``expected_spend``), each with ``params``, ``se``, ``log_likelihood`` and ``aic``.

The notebook's steps, each returning a typed result: :func:`load_inputs` (a data source in, the purchase
log and its per-customer summary out), :func:`rfm_analysis`, :func:`fit_models`, :func:`holdout_check`,
:func:`lifetime_value`, :func:`value_by_attributes`, :func:`spend_check`, :func:`satisfaction_check`,
then :func:`metrics` and the claims (:class:`cxresearch.stats.Claim`); the check against a simulation's
planted values is :mod:`cxresearch.checks`. Plot functions take these results and draw them; they compute
nothing.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import optimize, special
from scipy.stats import pearsonr

from cxresearch import contracts
from cxresearch import engine as engines
from cxresearch.display import Sentence, fmt_value, plain, sentence
from cxresearch.errors import NotEstimable, ParameterError
from cxresearch.io import Contract, Exclusion, InputError, Ledger, after, read_table, unlinked
from cxresearch.io import first_row as first_data_row
from cxresearch.mle import ModelFit, fit_each, fit_mle, five_point_gradient, value_hessian
from cxresearch.privacy import merge_small_groups
from cxresearch.stats import (
    Bootstrap,
    Claim,
    fisher_z_interval,
    percentile_bootstraps,
    pick,
    stable_sort,
    verdict,
    welch,
)

UNIT_DAYS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12}
#: the settings of the CLV notebook and the built-in data sets of each (``-p dataset``; the published ones come
#: from :func:`cxresearch.sources.builtin`)
DATASETS = {"noncontractual": ("synthetic", "cdnow"), "contractual": ("synthetic", "fader_hardie"),
            "discrete": ("synthetic", "donations")}
#: the length of a period when neither ``-p time_unit`` nor the data say
TIME_UNITS = {"noncontractual": "weeks", "contractual": "months", "discrete": "months"}

#: a Markdown sentence for :func:`cxresearch.display.say`: ``cx.say(**sentence)`` (values are escaped there)


# ---------------------------------------------------------------------------------------------
# data


def tables(dataset: str = "synthetic", transactions_path: str | Path | None = None,
           customers_path: str | Path | None = None, survey_path: str | Path | None = None, *,
           setting: str = "noncontractual", retention_path: str | Path | None = None
           ) -> dict[str, str | Path | None] | None:
    """The tables a run reads, for :func:`cxresearch.notebook.start`.

    Non-contractual (the default): the given purchase log with its optional customers and survey; with none
    given, the synthetic world's transactions, customers and survey (``dataset="synthetic"``). Contractual: a
    cohort retention table (``retention_path``) or a customers table with signup and churn dates
    (``customers_path``; the synthetic world's by default). Discrete: a purchase log (the synthetic world's by
    default). ``None`` for a published data set (:func:`cxresearch.sources.builtin`); ``dataset`` is ignored
    when a file is given.

    Raises
    ------
    ParameterError
        An unknown setting or ``dataset``, a data set of another setting, or a file the setting does not read.
    """
    if setting not in DATASETS:
        raise ParameterError(f"-p setting must be one of {list(DATASETS)}, got {setting!r}.")
    known = [d for names in DATASETS.values() for d in names]
    if dataset not in known:
        raise ParameterError(f"-p dataset must be one of {sorted(set(known))}, got {dataset!r}.")
    if dataset not in DATASETS[setting]:
        home = next(k for k, names in DATASETS.items() if dataset in names)
        raise ParameterError(f"-p dataset {dataset} belongs to the {home} setting, not the {setting} one. Fix: add "
                             f"-p setting {home}, or choose one of {list(DATASETS[setting])}.")
    given = {"transactions_path": transactions_path, "customers_path": customers_path, "survey_path": survey_path,
             "retention_path": retention_path}
    reads = {"noncontractual": ("transactions_path", "customers_path", "survey_path"),
             "contractual": ("retention_path", "customers_path"), "discrete": ("transactions_path",)}[setting]
    unused = [k for k, v in given.items() if v and k not in reads]
    if unused:
        raise ParameterError(f"-p {unused[0]} is not read in the {setting} setting (it reads "
                             f"{' or '.join('-p ' + r for r in reads)}). Fix: leave it out, or choose the setting "
                             "that reads it (-p setting noncontractual, contractual or discrete).")
    if setting == "contractual":
        if retention_path and customers_path:
            raise ParameterError("Give either -p retention_path (a cohort retention table) or -p customers_path (a "
                                 "customers table the retention table is counted from), not both.")
        if retention_path or customers_path:
            return {"retention": retention_path} if retention_path else {"customers": customers_path}
        return None if dataset != "synthetic" else {"customers": None}
    if setting == "discrete":
        if transactions_path:
            return {"transactions": transactions_path}
        return None if dataset != "synthetic" else {"transactions": None}
    if not transactions_path and (customers_path or survey_path):
        given_name = "customers_path" if customers_path else "survey_path"
        raise ParameterError(f"-p {given_name} needs -p transactions_path: customer attributes and survey answers are "
                             "linked to the customers of your own transaction log. Fix: give -p transactions_path "
                             "too, or leave both out to use the built-in data.")
    if transactions_path:
        return {"transactions": transactions_path, "customers": customers_path, "survey_responses": survey_path}
    if dataset == "cdnow":
        return None
    return {"transactions": None, "customers": None, "survey_responses": None, "survey_items": None}


#: parameters (default None) that only some settings read
SETTING_PARAMETERS = {"calibration_end": ("noncontractual", "discrete"), "holdout_end": ("noncontractual", "discrete"),
                      "value_per_period": ("contractual", "discrete"), "fit_by": ("contractual",),
                      "fit_periods": ("contractual",), "observation_end": ("contractual",)}


def check_setting(setting: str, **given: Any) -> None:
    """Refuse a parameter that the ``setting`` does not read (given, i.e. not None), naming the settings that do:
    a holdout end given to the contractual setting would otherwise be silently ignored."""
    unused = [k for k, v in given.items() if v is not None and setting not in SETTING_PARAMETERS.get(k, (setting,))]
    if unused:
        raise ParameterError("; ".join(f"-p {k} is not read in the {setting} setting (only in: "
                                       f"{', '.join(SETTING_PARAMETERS[k])})" for k in unused)
                             + ". Fix: leave it out, or give -p setting.")


def period_of(setting: str, time_unit: str | None, source: Any) -> str:
    """The length of a period: ``time_unit`` when given, else the data's own (``source.defaults``), else the
    setting's (weeks for purchases, months for contracts and occasions)."""
    defaults = source.defaults if source is not None else {}
    return time_unit or defaults.get("time_unit") or TIME_UNITS[setting]


def resolve_currency(currency: str | None, source: Any) -> str:
    """The currency money is shown in: ``currency`` when given, else the data's own (``source.defaults``:
    RUB for the synthetic world, USD for the CDNOW sample, none for a user's files)."""
    return currency or source.defaults.get("currency", "")


@dataclass
class ClvInputs:
    """The purchase log of a run, its per-customer summary and (when given) customer attributes and survey."""

    transactions: Transactions
    summary: pd.DataFrame  # per customer: frequency, recency, T, monetary, revenue, first_purchase (+ holdout)
    customers: pd.DataFrame | None
    survey: pd.DataFrame | None
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp | None
    time_unit: str
    description: str  # where the data come from, as a report names it
    currency: str = ""
    item_labels: pd.Series | None = None  # survey item -> its wording (from the item dictionary)
    repeats: pd.Series | None = None  # repeat purchases per day by the summary's customers (for tracking)

    @property
    def has_holdout(self) -> bool:
        return self.holdout_end is not None

    @property
    def holdout_length(self) -> float | None:
        """The holdout period in time units (None without a holdout)."""
        if self.holdout_end is None:
            return None
        return (self.holdout_end - self.calibration_end).days / UNIT_DAYS[self.time_unit]


def _periods(defaults: Mapping[str, Any], calibration_end: Any, holdout_end: Any) -> tuple[Any, Any]:
    """The calibration and holdout ends: as given, else the data's own (``defaults``); a calibration end given
    without a holdout end means no holdout."""
    cal = calibration_end or defaults.get("calibration_end")
    hold = holdout_end or (defaults.get("holdout_end") if not calibration_end else None)
    if hold is not None and cal is None:
        raise ParameterError(f"-p holdout_end ({hold}) needs -p calibration_end: the holdout is the period after the "
                             "calibration period. Fix: give both, e.g. -p calibration_end 2024-06-30 -p holdout_end "
                             "2024-12-31.")
    if hold is not None and pd.Timestamp(hold) <= pd.Timestamp(cal):
        raise ParameterError(f"-p holdout_end ({pd.Timestamp(hold).date()}) must come after -p calibration_end "
                             f"({pd.Timestamp(cal).date()}): the holdout is the period after the calibration period. "
                             "Fix: e.g. -p calibration_end 2024-06-30 -p holdout_end 2024-12-31.")
    return cal, hold


@dataclass
class PurchaseLog:
    """A purchase log in memory with its calibration and holdout ends (the discrete setting buckets it)."""

    transactions: Transactions
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp | None
    description: str

    @property
    def daily(self) -> pd.DataFrame:
        return self.transactions.daily


def purchase_log(source: Any, ledger: Ledger, *, customer_col: str = "customer_id", date_col: str = "timestamp",
                 amount_col: str = "amount", calibration_end: str | None = None,
                 holdout_end: str | None = None) -> PurchaseLog:
    """The purchase log of ``source`` read into memory (:func:`load_transactions`: every exclusion counted in
    ``ledger``), with the calibration and holdout ends resolved and checked as :func:`load_inputs` does."""
    if "transactions" not in source.paths:
        raise ParameterError("No transaction log was given. Fix: give -p transactions_path (a CSV, Parquet or Excel "
                             "file with a customer, a date and an amount column).")
    cal, hold = _periods(source.defaults, calibration_end, holdout_end)
    tx = load_transactions(source.paths["transactions"], customer_col, date_col, amount_col, ledger=ledger,
                           observation_end=hold or cal)
    check_periods(tx, cal, hold)
    return PurchaseLog(tx, pd.Timestamp(cal) if cal else tx.days.max(), pd.Timestamp(hold) if hold else None,
                       source.description)


def load_inputs(source: Any, ledger: Ledger, *, customer_col: str = "customer_id", date_col: str = "timestamp",
                amount_col: str = "amount", calibration_end: str | None = None, holdout_end: str | None = None,
                time_unit: str = "weeks", min_group_size: int = 5, currency: str | None = None,
                engine: str = "duckdb", spark_master: str = "local[*]") -> ClvInputs:
    """The purchase log of ``source`` (a :class:`cxresearch.sources.Source`), summarised per customer.

    A log in Parquet files or a database table stays where it is (``engine="duckdb"``, the default, or
    ``"spark"`` on ``spark_master``; a table URL is queried in its database): its contract runs as queries, and the same-day merge, the per-customer summary and the daily repeat purchases
    are computed there (:func:`rfm_query`); only those come back. ``engine="pandas"``, and any CSV or Excel
    file, read the whole log into memory (:func:`load_transactions`, :func:`rfm_summary`).

    Reads ``source.paths``: ``transactions`` (required), and when present ``customers``, ``survey_responses``
    and ``survey_items``; every read and excluded row is recorded in ``ledger``. The periods default to the
    data's own (``source.defaults``: ``calibration_end``, ``holdout_end``); with a user's file and no
    ``calibration_end`` the whole log is calibration and there is no holdout. When a customer table is
    given, purchases by customers missing from it are excluded (and counted).

    Raises
    ------
    ParameterError
        No transaction log; the periods do not fit the data (holdout not after calibration, calibration
        before the first or after the last purchase, holdout after the last purchase); an unknown time unit.
    NotEstimable
        Every purchase is on one day, or too few customers or repeat buyers (:func:`check_estimable`).
    """
    if "transactions" not in source.paths:
        raise ParameterError("No transaction log was given. Fix: give -p transactions_path (a CSV, Parquet or Excel "
                             "file with a customer, a date and an amount column).")
    _unit_days(time_unit)
    cal, hold = _periods(source.defaults, calibration_end, holdout_end)
    paths = source.paths
    customers = read_table(paths["customers"], contracts.CUSTOMERS, ledger=ledger) if "customers" in paths else None
    known = [unlinked("customer_id", customers["customer_id"], "customers")] if customers is not None else []
    if engine not in engines.ENGINES:
        raise ParameterError(f"-p engine must be one of {list(engines.ENGINES)}, got {engine!r}.")
    if engines.in_engine(paths["transactions"], engine):
        tx = query_transactions(paths["transactions"], customer_col, date_col, amount_col, ledger=ledger,
                                observation_end=hold or cal,
                                known=customers["customer_id"] if customers is not None else None,
                                engine=engine, spark_master=spark_master)
    else:
        tx = load_transactions(paths["transactions"], customer_col, date_col, amount_col, ledger=ledger,
                               observation_end=hold or cal, exclusions=known)
    check_periods(tx, cal, hold)
    cal_ts = pd.Timestamp(cal) if cal else tx.days.max()
    hold_ts = pd.Timestamp(hold) if hold else None
    survey = item_labels = None
    if "survey_responses" in paths:
        survey = read_table(paths["survey_responses"], contracts.SURVEY_RESPONSES, ledger=ledger)
    if "survey_items" in paths:
        items = read_table(paths["survey_items"], contracts.SURVEY_ITEMS, ledger=ledger)
        if "label" in items:
            item_labels = items.set_index("item")["label"].dropna()
    if tx.query is not None:
        summary = tx.frame(rfm_query(tx.query, cal_ts, hold_ts, time_unit), index="customer_id")
        at = summary.columns.get_loc("first_day")
        summary.insert(at, "first_purchase", pd.to_datetime(summary.pop("first_day"), unit="D").astype("datetime64[ns]"))
        repeats = tx.frame(repeats_query(tx.query, cal_ts)).set_index("date")["purchases"]
        tx.release()
    else:
        summary = rfm_summary(tx.daily, cal_ts, hold_ts, time_unit)
        repeats = repeat_purchases(tx.daily, summary)
    check_estimable(summary, min_group_size)
    return ClvInputs(tx, summary, customers, survey, cal_ts, hold_ts, time_unit, source.description,
                     resolve_currency(currency, source), item_labels, repeats)


def purchases_sentence(inputs: ClvInputs) -> Sentence:
    """Where the data come from, the periods, and how many customers and repeat purchases they hold (then a
    line that introduces the input rules, :func:`rules_table`)."""
    s, hold = inputs.summary, inputs.has_holdout
    return sentence(
        "Data: {source}. **{n:,} customers** made their first purchase by the end of the calibration period; "
        "calibration up to **{cal}**"
        + (", holdout to **{hold}** ({length:.0f} {unit})" if hold else ", no holdout period")
        + ". In the calibration period they made **{repeat:,} repeat purchases**; {never:.0%} of them never bought "
          "again." + (" In the holdout they made **{bought:,}** purchases." if hold else "")
        + "\n\nRules applied to the inputs (nothing is dropped silently):",
        source=inputs.description, n=len(s), cal=str(inputs.calibration_end.date()),
        hold=str(inputs.holdout_end.date()) if hold else "", length=inputs.holdout_length or 0.0,
        unit=inputs.time_unit, repeat=int(s["frequency"].sum()), never=float((s["frequency"] == 0).mean()),
        bought=int(s["holdout"].sum()) if hold else 0)


def check_periods(tx: Transactions, calibration_end: Any, holdout_end: Any) -> None:
    """Refuse periods that do not fit the purchase log (see :func:`load_inputs`)."""
    days = tx.days
    first = tx.first_date if tx.first_date is not None else (days.min() if len(days) else None)
    last = tx.last_date if tx.last_date is not None else (days.max() if len(days) else None)
    cal = pd.Timestamp(calibration_end) if calibration_end is not None else None
    if cal is not None and first is not None and cal < first:
        raise ParameterError(f"-p calibration_end ({cal.date()}) is before the first purchase in the log "
                             f"({first.date()}): no customer is in the calibration period. Fix: choose a date between "
                             f"{first.date()} and {last.date()}.")
    if days.empty:
        raise NotEstimable(f"The purchase log {tx.source} has no purchases left after the rules above (returns, "
                           "purchases after the observation end, unknown customers). Fix: check the file and the "
                           "calibration_end/holdout_end parameters.")
    last = max(last, days.max())
    if days.nunique() == 1 and (tx.first_date is None or tx.first_date == tx.last_date):
        raise NotEstimable(f"Every purchase in {tx.source} is on one day ({days.min().date()}): nobody can have "
                           "bought twice, so purchase rates and lifetime value cannot be estimated. Fix: use a log "
                           "that covers a longer period.")
    if cal is None:
        return
    # a date after the last purchase is plausible while the quiet spell is no longer than any seen in the log
    spell = int(np.diff(np.unique(days.to_numpy("datetime64[D]")).astype(np.int64)).max(initial=1))
    for name, date in (("calibration_end", cal), ("holdout_end", holdout_end)):
        if date is None or pd.Timestamp(date) <= last + pd.Timedelta(days=spell):
            continue
        gap = (pd.Timestamp(date) - last).days
        raise ParameterError(
            f"-p {name} ({pd.Timestamp(date).date()}) is after the last purchase in the log ({last.date()}): "
            f"{gap} days without a purchase, longer than any quiet spell inside the log (at most {spell} days), so "
            "the data most likely end there and the models would count unobserved time as time without purchases. "
            f"Fix: choose a date between {days.min().date()} and {last.date()}.")


#: transactions for buy-till-you-die models: returns are excluded, zero-value purchases are purchases
PURCHASES = Contract(
    "transactions", contracts.TRANSACTIONS.columns,
    exclusions=(Exclusion("amount below zero (returns)", lambda d: (d["amount"] < 0) & np.isfinite(d["amount"])),),
)


@dataclass
class Transactions:
    """Purchases merged per customer and day, and what the clean-up did.

    In memory (``daily``), or left in an engine (``query``: the same columns as an Ibis expression; ``daily``
    is then None and only summaries are fetched, through :meth:`frame`, until :meth:`release`).
    """

    daily: pd.DataFrame | None  # customer_id, date, amount (one row per customer and day)
    notes: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    first_date: pd.Timestamp | None = None  # the first and last purchase in the file (also those cut off by
    last_date: pd.Timestamp | None = None  # the observation end); None: as in ``daily``
    query: Any = None
    days: pd.Series = field(default_factory=lambda: pd.Series([], dtype="datetime64[ns]"))  # purchase days, sorted
    engine: str | None = None  # where the log was summarised (Ibis backend name); None: in memory

    def release(self) -> None:
        """Drop the merged log kept in the engine once every summary is fetched (:func:`load_inputs` does): at
        100M purchases it holds gigabytes that the rest of the analysis needs."""
        if self.query is not None:
            import pyarrow as pa

            self.query.release()
            self.query = None
            pa.default_memory_pool().release_unused()  # Arrow's pool kept 1.4 GB of fetched results at 5M customers

    def __post_init__(self) -> None:
        if self.daily is not None and self.days.empty:
            self.days = pd.Series(np.unique(self.daily["date"].to_numpy("datetime64[ns]")), dtype="datetime64[ns]")

    def frame(self, expr: Any, index: str | None = None) -> pd.DataFrame:
        """A query result as a DataFrame: dates as datetime64[ns], rows sorted by ``index``.

        The engine sorts first (pandas then only checks the order: re-sorting 25M text keys in pandas takes
        minutes; a database whose collation differs is re-sorted here), the Arrow result is freed column by
        column as it is converted (``self_destruct``) and the index set in place, so that a per-customer summary
        is not copied on the way.
        """
        table = engines.fetch(expr.order_by(index) if index else expr, self.source)
        out = table.to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True, split_blocks=True,
                              self_destruct=True)
        del table
        if index:
            out.set_index(index, inplace=True)
            if not out.index.is_monotonic_increasing:
                out = out.sort_index(kind="mergesort")
        return out


def load_transactions(path: str | Path, customer_col: str = "customer_id", date_col: str = "timestamp",
                      amount_col: str = "amount", *, ledger: Ledger,
                      observation_end: str | pd.Timestamp | None = None,
                      exclusions: list[Exclusion] | tuple[Exclusion, ...] = ()) -> Transactions:
    """Read a transaction log and merge purchases on the same day.

    Rules (each counted in ``ledger``): amounts below zero (returns) are excluded; zero-value purchases are
    kept as purchases; ``exclusions`` (e.g. purchases by customers missing from the customer table) are
    applied; purchases after ``observation_end`` are excluded; purchases by one customer on the same day
    become one purchase with the summed amount. Amounts that are not finite (``inf``) are refused.
    """
    source = f"'transactions' ({path})"
    first_row = first_data_row(path)
    seen: dict[str, Any] = {}

    def returns(d: pd.DataFrame) -> pd.Series:
        """Rows to exclude as returns; refuses amounts that are not finite (they are neither sales nor returns)."""
        amount = d["amount"].to_numpy(float)
        bad = ~np.isfinite(amount)
        if bad.any():
            rows = "; ".join(f"row {i + first_row}: {d['amount'].iloc[k]!r}" for k, i in enumerate(d.index) if bad[k])
            raise InputError(source, [f"column '{amount_col}': {int(bad.sum())} amount(s) are not finite numbers: "
                                      f"{rows[:200]}. Fix: write the real amounts or remove those rows."])
        return d["amount"] < 0

    rules: list[Exclusion] = list(exclusions)
    if observation_end is not None:
        cutoff = after("timestamp", observation_end)

        def late(d: pd.DataFrame) -> pd.Series:
            if len(d):  # the file's first and last purchase, before the cut
                seen["first"], seen["last"] = d["timestamp"].min(), d["timestamp"].max()
            return cutoff.where(d)

        rules.append(Exclusion(cutoff.rule, late))
    contract = Contract(PURCHASES.name, PURCHASES.columns, exclusions=(Exclusion(PURCHASES.exclusions[0].rule, returns),))
    df = read_table(path, contract, columns={"customer_id": customer_col, "timestamp": date_col, "amount": amount_col},
                    exclusions=rules, ledger=ledger)
    df["date"] = df["timestamp"].dt.normalize()
    daily = merge_same_day(df)
    notes = [{"rule": "zero-value purchases kept: they count as purchases, not as spend", "rows": int((df["amount"] == 0).sum())},
             {"rule": "purchases by the same customer on the same day merged into one",
              "rows": int(len(df) - len(daily))}]

    def day(key: str) -> pd.Timestamp | None:
        value = seen.get(key)
        return pd.Timestamp(value).normalize() if value is not None and pd.notna(value) else None

    return Transactions(daily, notes, source, day("first"), day("last"))


def merge_same_day(df: pd.DataFrame) -> pd.DataFrame:
    """One row per customer and day with the summed amount (sorted by customer, then date).

    Uses one integer key per (customer, day) and ``np.unique``: several times faster than a two-column
    groupby on large logs.
    """
    codes, names = pd.factorize(df["customer_id"], sort=True)
    day = df["date"].to_numpy("datetime64[D]").astype(np.int64)
    if len(day) == 0:
        return pd.DataFrame({"customer_id": [], "date": pd.to_datetime([]), "amount": []})
    first, span = day.min(), int(day.max() - day.min() + 1)
    key, inverse = np.unique(codes.astype(np.int64) * span + (day - first), return_inverse=True)
    amount = np.bincount(inverse, weights=df["amount"].to_numpy(float))
    return pd.DataFrame({"customer_id": np.asarray(names)[key // span],
                         "date": ((key % span) + first).astype("datetime64[D]").astype("datetime64[ns]"),
                         "amount": amount})


def rfm_summary(daily: pd.DataFrame, calibration_end: str | pd.Timestamp, holdout_end: str | pd.Timestamp | None = None,
                time_unit: str = "weeks") -> pd.DataFrame:
    """Frequency, recency, T, monetary value (and holdout purchases) per customer, vectorized.

    ``frequency`` = repeat purchase days in the calibration period, ``recency`` = time from the first to
    the last purchase, ``T`` = time from the first purchase to ``calibration_end``, ``monetary`` = mean
    value of the repeat purchases (0 without any), ``holdout`` = purchase days in (calibration_end,
    holdout_end]. Customers whose first purchase is after ``calibration_end`` are left out.
    """
    unit = _unit_days(time_unit)
    cal_end = pd.Timestamp(calibration_end)
    codes, names = pd.factorize(daily["customer_id"], sort=True)
    day = daily["date"].to_numpy("datetime64[D]").astype(np.int64)
    amount = daily["amount"].to_numpy(float)
    order = np.lexsort((day, codes))
    codes, day, amount = codes[order], day[order], amount[order]
    end_day = np.datetime64(cal_end.date(), "D").astype(np.int64)
    cal = day <= end_day
    c_codes, c_day, c_amount = codes[cal], day[cal], amount[cal]
    starts = np.flatnonzero(np.r_[True, c_codes[1:] != c_codes[:-1]]) if len(c_codes) else np.array([], int)
    ends = np.r_[starts[1:], len(c_codes)][: len(starts)] - 1  # no calibration purchase: no customer
    n_days = ends - starts + 1
    total = np.add.reduceat(c_amount, starts) if len(starts) else np.array([])
    first_day = c_day[starts]
    freq = n_days - 1
    idx = pd.Index(np.asarray(names)[c_codes[starts]], name="customer_id")
    out = pd.DataFrame({
        "frequency": freq,
        "recency": (c_day[ends] - first_day) / unit,
        "T": (end_day - first_day) / unit,
        "monetary": np.where(freq > 0, (total - c_amount[starts]) / np.maximum(freq, 1), 0.0),
        "revenue": total,
        "first_purchase": first_day.astype("datetime64[D]").astype("datetime64[ns]"),
    }, index=idx)
    if holdout_end is not None:
        hold_end = np.datetime64(pd.Timestamp(holdout_end).date(), "D").astype(np.int64)
        h = (day > end_day) & (day <= hold_end)
        pos = np.full(len(names), -1)
        pos[c_codes[starts]] = np.arange(len(starts))
        hp = pos[codes[h]]
        keep = hp >= 0  # holdout purchases of customers known in the calibration period
        out["holdout"] = np.bincount(hp[keep], minlength=len(out))
        out["holdout_revenue"] = np.bincount(hp[keep], weights=amount[h][keep], minlength=len(out))
    out.index.name = "customer_id"
    return out


def query_transactions(path: str | Path, customer_col: str = "customer_id", date_col: str = "timestamp",
                       amount_col: str = "amount", *, ledger: Ledger,
                       observation_end: str | pd.Timestamp | None = None,
                       known: pd.Series | None = None, engine: str = "duckdb",
                       spark_master: str = "local[*]") -> Transactions:
    """:func:`load_transactions` as queries, for a log in Parquet files or a database table.

    The same rules, counted the same way, in one pass: returns excluded, purchases by customers missing from
    ``known`` (the customer table's keys) and after ``observation_end`` excluded, zero-value purchases kept,
    purchases by one customer on one day merged. The merged log stays in the engine (``query``).
    """
    import ibis

    opened = engines.open_table(path, "transactions", engine, spark_master)
    table = engines.checked_table(opened, PURCHASES, {"customer_id": customer_col, "timestamp": date_col,
                                                      "amount": amount_col}, ledger)
    rules = [engines.Rule(PURCHASES.exclusions[0].rule, lambda d: d.amount < 0)]
    if known is not None:
        ids = ibis.memtable(pd.DataFrame({"customer_id": pd.unique(known.astype(str))}))
        rules.append(engines.Rule(unlinked("customer_id", [], "customers").rule,
                                  lambda d: ~d.customer_id.isin(ids.customer_id)))
    if observation_end is not None:
        cutoff = after("timestamp", observation_end)
        limit = pd.Timestamp(observation_end).normalize() + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
        rules.append(engines.Rule(cutoff.rule, lambda d: d.timestamp > ibis.timestamp(limit.to_pydatetime())))
    kept, span = engines.exclude(table, PURCHASES.name, rules, ledger, opened.path,
                                 span=(len(rules) - 1, "timestamp") if observation_end is not None else None)
    daily = kept.group_by(customer_id=kept.customer_id, date=kept.timestamp.date()).aggregate(
        amount=kept.amount.sum())
    daily = engines.materialise(daily, opened.source)  # merged once, then read by every summary
    first, last = ((pd.Timestamp(v).normalize() if v is not None else None) for v in (span or (None, None)))
    tx = Transactions(None, [], opened.source, first, last, query=daily, engine=opened.con.name)
    counts = tx.frame(kept.aggregate(rows=kept.count(), zero=kept.count(where=kept.amount == 0))).iloc[0]
    per_day = tx.frame(daily.group_by("date").aggregate(n=daily.count()), index="date")["n"]
    tx.days = pd.Series(per_day.index.to_numpy("datetime64[ns]"), dtype="datetime64[ns]")
    tx.notes = [{"rule": "zero-value purchases kept: they count as purchases, not as spend",
                 "rows": int(counts["zero"])},
                {"rule": "purchases by the same customer on the same day merged into one",
                 "rows": int(counts["rows"]) - int(per_day.sum())}]
    return tx


def rfm_query(daily: Any, calibration_end: str | pd.Timestamp, holdout_end: str | pd.Timestamp | None = None,
              time_unit: str = "weeks") -> Any:
    """:func:`rfm_summary` as one Ibis expression over a merged log (``customer_id``, ``date``, ``amount``).

    The same columns, except ``first_purchase``, which comes as ``first_day`` (days since 1970-01-01).
    Runs where the log is (DuckDB, PostgreSQL); agrees with :func:`rfm_summary` to rounding (tested).
    """
    import ibis

    unit = _unit_days(time_unit)
    epoch = pd.Timestamp("1970-01-01")
    end_day = (pd.Timestamp(calibration_end).normalize() - epoch).days
    d = daily.mutate(day=daily.date.epoch_days())
    cal = d.filter(d.day <= end_day)
    # one row per customer and day, so the amount at the first day is well defined (arg_min / min_by)
    out = cal.group_by("customer_id").aggregate(n=cal.count(), first_day=cal.day.min(), last_day=cal.day.max(),
                                                revenue=cal.amount.sum(), first_amount=cal.amount.argmin(cal.day))
    freq = out.n - 1
    days = (out.last_day - out.first_day).cast("float64")  # doubles: Spark would divide decimals
    out = out.select(
        customer_id=out.customer_id, frequency=freq, recency=days / unit,
        T=(end_day - out.first_day).cast("float64") / unit,
        monetary=(freq > 0).ifelse((out.revenue - out.first_amount) / ibis.greatest(freq, 1).cast("float64"),
                                   ibis.literal(0.0, "float64")),
        revenue=out.revenue, first_day=out.first_day)
    if holdout_end is None:
        return out
    hold_day = (pd.Timestamp(holdout_end).normalize() - epoch).days
    h = d.filter((d.day > end_day) & (d.day <= hold_day))
    h = h.group_by(hid=h.customer_id).aggregate(holdout=h.count(), holdout_revenue=h.amount.sum())
    joined = out.left_join(h, out.customer_id == h.hid)
    return joined.select(*out.columns, holdout=joined.holdout.fill_null(0),
                         holdout_revenue=joined.holdout_revenue.fill_null(ibis.literal(0.0, "float64")))


def repeats_query(daily: Any, calibration_end: str | pd.Timestamp) -> Any:
    """Repeat purchases per day (``date``, ``purchases``) by the customers whose first purchase is by
    ``calibration_end``, as one Ibis expression (the in-memory twin: :func:`repeat_purchases`)."""
    end = pd.Timestamp(calibration_end).normalize().date()
    firsts = daily.group_by(cid=daily.customer_id).aggregate(start=daily.date.min())
    firsts = firsts.filter(firsts.start <= end)
    j = daily.join(firsts, daily.customer_id == firsts.cid)
    j = j.filter(j.date > j.start)
    return j.group_by("date").aggregate(purchases=j.count()).order_by("date")


def repeat_purchases(daily: pd.DataFrame, summary: pd.DataFrame) -> pd.Series:
    """Repeat purchases per day by ``summary``'s customers (date → count), for :func:`tracking`."""
    first = summary["first_purchase"]
    d = daily[daily["customer_id"].isin(summary.index)]
    d = d[d["date"] > d["customer_id"].map(first)]
    return d.groupby("date").size().rename("purchases").rename_axis("date")


def _unit_days(time_unit: str) -> float:
    if time_unit not in UNIT_DAYS:
        raise ParameterError(f"-p time_unit must be one of {list(UNIT_DAYS)} for purchases at any time, got "
                             f"{time_unit!r} (years are for -p setting contractual or discrete).")
    return UNIT_DAYS[time_unit]


#: the models need at least this many customers in the calibration period
MIN_CUSTOMERS = 10


def check_estimable(summary: pd.DataFrame, min_n: int = 5) -> None:
    """Refuse data that cannot answer the CLV question at all, with one message saying why and what to change.

    Needs at least :data:`MIN_CUSTOMERS` customers in the calibration period, someone who bought again
    (purchase rates), and at least ``min_n`` repeat buyers with a positive amount (the spend model).

    Raises
    ------
    NotEstimable
    """
    n = len(summary)
    repeat = summary["frequency"] > 0
    spenders = int((repeat & (summary["monetary"] > 0)).sum())
    if n < MIN_CUSTOMERS:
        raise NotEstimable(f"Only {n} customer(s) made a first purchase by the end of the calibration period; the "
                           f"purchase models need at least {MIN_CUSTOMERS}. Fix: use a log with more customers or a "
                           "later calibration_end.")
    if not repeat.any():
        raise NotEstimable(f"None of the {n} customers bought more than once in the calibration period, so there is "
                           "no purchase rhythm to learn from and lifetime value cannot be estimated. Fix: use a "
                           "longer calibration period (a later calibration_end) or a log with repeat purchases.")
    if spenders < max(min_n, 2):
        raise NotEstimable(f"Only {spenders} customer(s) made repeat purchases with a positive amount in the "
                           f"calibration period; the spend model needs at least {max(min_n, 2)} (min_group_size). "
                           "Fix: use a longer calibration period or a log with more repeat buyers.")


def distinct_rows(summary: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Unique (frequency, recency, T) rows with their counts in ``weight`` (in order of first appearance), and
    each customer's row in them."""
    g = summary.groupby(["frequency", "recency", "T"], sort=False, dropna=False, observed=True)
    return g.size().rename("weight").reset_index(), g.ngroup().to_numpy()


def compress(summary: pd.DataFrame) -> pd.DataFrame:
    """Unique (frequency, recency, T) rows with their counts in ``weight``."""
    return distinct_rows(summary)[0]


# ---------------------------------------------------------------------------------------------
# log-likelihoods (per row)


def bgnbd_ll(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def mbgnbd_ll(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007): as BG/NBD, but a customer may also drop out right after the
    first purchase, so customers without repeat purchases can be inactive too."""
    r, alpha, a, b = params
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x + 1) - special.gammaln(b) - special.gammaln(a + b + x + 1)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
    return a1 + a2 + np.logaddexp(a3, a4)


def pnbd_pairs(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> tuple:
    """The distinct (x, t_x) and (x, T) pairs of a summary and where each row's pair is: the Gauss
    hypergeometric terms of Pareto/NBD depend only on them. Distinct rows of a large log have far fewer distinct
    pairs (5M customers: 1.3M rows, tens of thousands of pairs), so computing the terms once per pair makes
    one likelihood evaluation about 10x faster (measured), with identical values."""
    out = []
    for t in (tx, T):
        # one complex number per pair: a 1-D unique, several times faster than unique rows of a 2-D array
        pairs, inverse = np.unique(np.asarray(x, float) + 1j * np.asarray(t, float), return_inverse=True)
        out.append((pairs.real.copy(), pairs.imag.copy(), inverse.ravel()))
    return tuple(out)


def _pnbd_log_a0_parts(params, x, tx, T, pairs: tuple | None = None):
    if pairs is not None:  # the terms once per distinct pair, then one per row
        (x1, t1, i1), (x2, t2, i2) = pairs
        return _pnbd_log_a0_parts(params, x1, t1, t1)[0][i1], _pnbd_log_a0_parts(params, x2, t2, t2)[0][i2]
    r, alpha, s, beta = params
    rsx = r + s + x
    if alpha >= beta:
        b1, base, diff = s + 1, alpha, alpha - beta
    else:
        b1, base, diff = r + x, beta, beta - alpha
    def part(t):  # noqa: E306
        return np.log(special.hyp2f1(rsx, b1, rsx + 1, diff / (base + t))) - rsx * np.log(base + t)
    return part(tx), part(T)


def pareto_nbd_ll(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                  pairs: tuple | None = None) -> np.ndarray:
    """Pareto/NBD log-likelihood per row (``pairs``: :func:`pnbd_pairs` of the same rows, for speed)."""
    r, alpha, s, beta = params
    head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    term1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    p_tx, p_T = _pnbd_log_a0_parts(params, x, tx, T, pairs)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a0 = p_tx + np.log1p(-np.exp(p_T - p_tx))
    term2 = np.log(s) - np.log(r + s + x) + log_a0
    term2 = np.where(tx < T, term2, -np.inf)
    return head + np.logaddexp(term1, term2)


def gamma_gamma_ll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    p, q, v = params
    return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
            + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + m * x))


# ---------------------------------------------------------------------------------------------
# fitted models: parameters and predictions


CLV_FIX = ("check the purchase log (enough customers with repeat purchases, dates and amounts plausible) and the "
           "calibration period; a longer calibration period or more customers usually helps.")


class PurchaseFit(ModelFit, ABC):
    """A fitted purchase ("buy till you die") model: how often customers buy and whether they are still active.

    Abstract: :class:`BetaGeoFit` and :class:`ParetoNBDFit` give the formulas.
    """

    @abstractmethod
    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Probability that a customer with ``frequency`` repeat purchases, the last at ``recency``, observed
        for ``T`` time units since the first purchase, is still active."""

    @abstractmethod
    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Expected purchases in the next ``t`` time units of a customer with history (frequency, recency, T)."""

    @abstractmethod
    def expected_purchases_new_customer(self, t: Any) -> np.ndarray:
        """Expected repeat purchases of a new customer in the ``t`` time units after the first purchase."""


class BetaGeoFit(PurchaseFit):
    """BG/NBD (Fader, Hardie & Lee 2005): parameters r, alpha (purchase rates), a, b (dropout after a purchase)."""

    model, key, names = "BG/NBD", "bgnbd", ("r", "alpha", "a", "b")

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        r, alpha, a, b = self.params
        x, tx, T = (np.asarray(v, float) for v in (frequency, recency, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
        return 1 / (1 + ratio)

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        r, alpha, a, b = self.params
        x, tx, T = (np.asarray(v, float) for v in (frequency, recency, T))
        t = np.asarray(t, float)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        with np.errstate(divide="ignore", invalid="ignore"):
            den = 1 + np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
        return num / den

    def expected_purchases_new_customer(self, t: Any) -> np.ndarray:
        r, alpha, a, b = self.params
        t = np.asarray(t, float)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1,
                                                                                        t / (alpha + t)))


class ModifiedBetaGeoFit(PurchaseFit):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007): r, alpha (purchase rates), a, b (dropout at each purchase,
    the first included)."""

    model, key, names = "MBG/NBD", "mbgnbd", ("r", "alpha", "a", "b")

    def _odds_gone(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = self.params
        return a / (b + x) * ((alpha + T) / (alpha + tx)) ** (r + x)

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        x, tx, T = (np.asarray(v, float) for v in (frequency, recency, T))
        return 1 / (1 + self._odds_gone(x, tx, T))

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        r, alpha, a, b = self.params
        x, tx, T = (np.asarray(v, float) for v in (frequency, recency, T))
        t = np.asarray(t, float)
        hyp = special.hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
        num = (a + b + x) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        return num / (1 + self._odds_gone(x, tx, T))

    def expected_purchases_new_customer(self, t: Any) -> np.ndarray:
        r, alpha, a, b = self.params
        t = np.asarray(t, float)
        return b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b + 1, a + b, t / (alpha + t)))


class ParetoNBDFit(PurchaseFit):
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987): r, alpha (purchase rates), s, beta (dropout rates)."""

    model, key, names = "Pareto/NBD", "pareto_nbd", ("r", "alpha", "s", "beta")

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        r, alpha, s, beta = self.params
        x, tx, T = (np.asarray(v, float) for v in (frequency, recency, T))
        p_tx, p_T = _pnbd_log_a0_parts(self.params, x, tx, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_a0 = p_tx + np.log1p(-np.exp(p_T - p_tx))
            log_ratio = np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T) + log_a0
        log_ratio = np.where(tx < T, log_ratio, -np.inf)
        return 1 / (1 + np.exp(log_ratio))

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        r, alpha, s, beta = self.params
        x, tx, T = (np.asarray(v, float) for v in (frequency, recency, T))
        t = np.asarray(t, float)
        if abs(s - 1) < 1e-9:
            core = (r + x) * (beta + T) / (alpha + T) * np.log1p(t / (beta + T))
        else:
            core = (r + x) * (beta + T) / ((alpha + T) * (s - 1)) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
        return core * self.p_alive(x, tx, T)

    def expected_purchases_new_customer(self, t: Any) -> np.ndarray:
        r, alpha, s, beta = self.params
        t = np.asarray(t, float)
        if abs(s - 1) < 1e-9:
            return r * beta / alpha * np.log1p(t / beta)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


class GammaGammaFit(ModelFit):
    """Gamma-Gamma spend model (Fader, Hardie & Lee 2005): p, q, v."""

    model, key, names = "Gamma-Gamma", "gamma_gamma", ("p", "q", "v")

    def expected_spend(self, frequency: Any, monetary: Any) -> np.ndarray:
        """Expected average purchase value of a customer with ``frequency`` repeat purchases averaging
        ``monetary`` (frequency 0: the population mean, defined when q > 1)."""
        p, q, v = self.params
        x, m = np.asarray(frequency, float), np.asarray(monetary, float)
        return p * (v + x * m) / (p * x + q - 1)


#: every model by the name a reader sees
MODELS: dict[str, type[ModelFit]] = {c.model: c for c in (BetaGeoFit, ParetoNBDFit, ModifiedBetaGeoFit,
                                                           GammaGammaFit)}
#: model name -> its key in results.json
MODEL_KEYS = {name: c.key for name, c in MODELS.items()}


def model_fit(model: str, params: Any, **fitted: Any) -> ModelFit:
    """The model called ``model`` ("BG/NBD", "Pareto/NBD", "Gamma-Gamma") with ``params``.

    Raises
    ------
    ValueError
        An unknown model name (nothing falls back to another model).
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: the models are {', '.join(map(repr, MODELS))}")
    return MODELS[model](params, **fitted)


# ---------------------------------------------------------------------------------------------
# fitting


def _bgnbd_value_grad(log_p: np.ndarray, x_idx: np.ndarray, xu: np.ndarray, tx: np.ndarray, T: np.ndarray,
                      w: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD log-likelihood and its gradient in log-parameter space.

    Terms that depend only on the purchase count x are computed once per distinct x (``xu``) and
    indexed by ``x_idx``; only the logs of (alpha + T) and (alpha + t_x) are per row.
    """
    r, alpha, a, b = np.exp(log_p)
    gl, dg = special.gammaln, special.digamma
    pos = xu > 0
    a1_x = gl(r + xu) - gl(r)
    a2_x = gl(a + b) + gl(b + xu) - gl(b) - gl(a + b + xu)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4c_x = np.where(pos, np.log(a) - np.log(np.where(pos, b + xu - 1, 1.0)), -np.inf)
    rx = (r + xu)[x_idx]
    la_T, la_tx = np.log(alpha + T), np.log(alpha + tx)
    a3 = -rx * la_T
    a4 = a4c_x[x_idx] - rx * la_tx
    m = np.logaddexp(a3, a4)
    value = np.sum(w * (a1_x[x_idx] + r * np.log(alpha) + a2_x[x_idx] + m))
    w3 = np.exp(a3 - m)
    w4 = 1.0 - w3
    g_r = (dg(r + xu) - dg(r))[x_idx] + np.log(alpha) - w3 * la_T - w4 * la_tx
    g_alpha = r / alpha - rx * (w3 / (alpha + T) + w4 / (alpha + tx))
    g_a = (dg(a + b) - dg(a + b + xu))[x_idx] + w4 / a
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_b = np.where(pos, 1.0 / np.where(pos, b + xu - 1, 1.0), 0.0)
    g_b = (dg(a + b) + dg(b + xu) - dg(b) - dg(a + b + xu))[x_idx] - w4 * inv_b[x_idx]
    grad = np.array([r * np.sum(w * g_r), alpha * np.sum(w * g_alpha), a * np.sum(w * g_a), b * np.sum(w * g_b)])
    return float(value), grad


def _require_repeat_buyers(summary: pd.DataFrame, model: str, need: int = 1) -> None:
    repeat = int((summary["frequency"] > 0).sum())
    if len(summary) == 0 or repeat < need:
        raise NotEstimable(
            f"The {model} model cannot be estimated: {repeat} of {len(summary)} customer(s) bought more than once "
            f"in the calibration period (at least {need} needed), so there is no purchase rhythm to learn from. "
            "Fix: use a longer calibration period (a later calibration_end) or a log with repeat purchases.")


def fit_bgnbd(summary: pd.DataFrame) -> BetaGeoFit:
    """BG/NBD by maximum likelihood on unique rows (weights = counts), with the analytic gradient."""
    _require_repeat_buyers(summary, "BG/NBD")
    c = compress(summary)
    xu, x_idx = np.unique(c["frequency"].to_numpy(float), return_inverse=True)
    args = (x_idx, xu, c["recency"].to_numpy(float), c["T"].to_numpy(float), c["weight"].to_numpy(float))

    def value(log_p: np.ndarray) -> float:
        return -_bgnbd_value_grad(log_p, *args)[0]

    def grad(log_p: np.ndarray) -> np.ndarray:
        return -_bgnbd_value_grad(log_p, *args)[1]

    t_scale = max(1.0, float(summary["T"].mean()) / 4)
    starts = [np.log([0.5, t_scale, 1.0, 2.0]), np.log([1.0, 4 * t_scale, 0.5, 5.0])]
    return fit_mle(BetaGeoFit, value, grad, starts, int(c["weight"].sum()), fix=CLV_FIX)


def fit_mbgnbd(summary: pd.DataFrame) -> ModifiedBetaGeoFit:
    """MBG/NBD by maximum likelihood on unique rows (weights = counts); five-point numerical gradient (a few
    hundred distinct rows: fast enough without an analytic one)."""
    _require_repeat_buyers(summary, "MBG/NBD")
    c = compress(summary)
    x, tx, T, w = (c[k].to_numpy(float) for k in ("frequency", "recency", "T", "weight"))

    def value(log_p: np.ndarray) -> float:
        return -float(np.sum(w * mbgnbd_ll(np.exp(log_p), x, tx, T)))

    def grad(log_p: np.ndarray) -> np.ndarray:
        return five_point_gradient(value, log_p)

    t_scale = max(1.0, float(summary["T"].mean()) / 4)
    starts = [np.log([0.5, t_scale, 1.0, 2.0]), np.log([1.0, 4 * t_scale, 0.5, 5.0])]
    return fit_mle(ModifiedBetaGeoFit, value, grad, starts, int(w.sum()), fix=CLV_FIX)


def fit_pareto_nbd(summary: pd.DataFrame) -> ParetoNBDFit:
    """Pareto/NBD by maximum likelihood on unique rows (weights = counts); five-point numerical gradient."""
    _require_repeat_buyers(summary, "Pareto/NBD")
    c = compress(summary)
    data = (c["frequency"].to_numpy(float), c["recency"].to_numpy(float), c["T"].to_numpy(float))
    w = c["weight"].to_numpy(float)
    pairs = pnbd_pairs(*data)

    def value(log_p: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            return float(-np.sum(w * pareto_nbd_ll(np.exp(log_p), *data, pairs=pairs)))

    def grad(log_p: np.ndarray) -> np.ndarray:
        return five_point_gradient(value, log_p)

    def hessian(log_p: np.ndarray) -> np.ndarray:
        return value_hessian(value, log_p)

    t_scale = max(1.0, float(summary["T"].mean()) / 4)
    starts = [np.log([0.5, t_scale, 0.5, t_scale]), np.log([1.0, 4 * t_scale, 1.0, 4 * t_scale])]
    warm = _warm_start(c, starts[0]) if len(c) > WARM_START_ROWS else None
    return fit_mle(ParetoNBDFit, value, grad, starts, int(w.sum()), hessian, warm, fix=CLV_FIX)


#: above this many distinct (frequency, recency, T) rows, Pareto/NBD starts from a fit on a subsample of them
WARM_START_ROWS = 100_000


def _warm_start(c: pd.DataFrame, start: np.ndarray) -> np.ndarray:
    """Log-parameters of Pareto/NBD fitted by L-BFGS on every k-th distinct row (weights times k): only a
    start value; the estimate itself is the maximum of the full likelihood."""
    k = int(np.ceil(len(c) / WARM_START_ROWS))
    sub = c.sort_values(["frequency", "recency", "T"], kind="mergesort").iloc[::k]
    data = (sub["frequency"].to_numpy(float), sub["recency"].to_numpy(float), sub["T"].to_numpy(float))
    w = sub["weight"].to_numpy(float) * k

    def value(log_p: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            v = float(-np.sum(w * pareto_nbd_ll(np.exp(log_p), *data)))
        return v if np.isfinite(v) else 1e300

    res = optimize.minimize(value, start, jac=lambda x: five_point_gradient(value, x), method="L-BFGS-B",
                            options={"maxiter": 500, "gtol": 1e-5})
    return np.asarray(res.x, float) if np.all(np.isfinite(res.x)) and res.fun < 1e300 else start


def _gamma_gamma_value_grad(log_p: np.ndarray, x: np.ndarray, m: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted Gamma-Gamma log-likelihood and its analytic gradient in log-parameter space."""
    p, q, v = np.exp(log_p)
    dg = special.digamma
    px = p * x
    lvm = np.log(v + m * x)
    value = np.sum(w * gamma_gamma_ll((p, q, v), x, m))
    g_p = x * (dg(px + q) - dg(px) + np.log(m) + np.log(x) - lvm)
    g_q = dg(px + q) - dg(q) + np.log(v) - lvm
    g_v = q / v - (px + q) / (v + m * x)
    grad = np.array([p * np.sum(w * g_p), q * np.sum(w * g_q), v * np.sum(w * g_v)])
    return float(value), grad


def fit_gamma_gamma(summary: pd.DataFrame) -> GammaGammaFit:
    """Gamma-Gamma spend model on repeat buyers (frequency > 0, monetary > 0), analytic gradient."""
    rep = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
    if len(rep) < 2 or rep["monetary"].nunique() < 2:
        raise NotEstimable(
            f"The Gamma-Gamma spend model cannot be estimated: {len(rep)} customer(s) made repeat purchases with a "
            "positive amount and their average spends do not vary, so spend per purchase cannot be modelled. Fix: "
            "use a longer calibration period or a log with amounts for repeat purchases.")
    c = rep.groupby(["frequency", "monetary"], sort=True).size().rename("weight").reset_index()
    args = (c["frequency"].to_numpy(float), c["monetary"].to_numpy(float), c["weight"].to_numpy(float))

    def value(log_p: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            return -_gamma_gamma_value_grad(log_p, *args)[0]

    def grad(log_p: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return -_gamma_gamma_value_grad(log_p, *args)[1]

    mean = float(rep["monetary"].mean())
    starts = [np.log([2.0, 3.0, mean]), np.log([1.0, 1.5, mean / 2])]
    return fit_mle(GammaGammaFit, value, grad, starts, int(len(rep)), fix=CLV_FIX)


@dataclass
class FittedModels:
    """The purchase models that converged (by name), the spend model, and why any model was left out."""

    purchase: dict[str, PurchaseFit]
    spend: GammaGammaFit
    not_fitted: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[ModelFit]:
        """Every fitted model: the purchase models, then the spend model."""
        return [*self.purchase.values(), self.spend]


def fit_models(summary: pd.DataFrame) -> FittedModels:
    """BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma on the calibration period.

    A purchase model that cannot be fitted is left out with the reason (plain words in ``not_fitted``);
    lifetime value then rests on the model(s) that did converge. When neither purchase model converges,
    the first one's :class:`~cxresearch.fits.FitError` (or :class:`NotEstimable`) is raised; so is the spend
    model's.
    """
    models, problems = fit_each({f.__name__: (lambda f=f: f(summary))
                                 for f in (fit_bgnbd, fit_pareto_nbd, fit_mbgnbd)})
    models = {m.model: m for m in models.values()}
    return FittedModels(models, fit_gamma_gamma(summary), problems)


# ---------------------------------------------------------------------------------------------
# which model predicts the holdout


def check_value_parameters(horizon: Any, annual_discount: Any, margin: Any, values_path: Any = None,
                           setting: str = "noncontractual", value_per_period: Any = None) -> None:
    """Refuse a horizon not above 0, a negative discount rate, a margin outside 0..1 or a ``values_path`` that is
    not a ``.parquet`` file name (ParameterError), before anything is computed. The contractual and discrete
    settings need a discount rate above 0 (a lifetime there has no end to cut it off) and a ``value_per_period``
    above 0 when given; ``values_path`` is written by the non-contractual setting only."""
    def number(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

    problems = []
    if not (number(horizon) and horizon > 0):
        problems.append(f"-p horizon must be a number greater than 0 (time units ahead), got {horizon!r}; e.g. "
                        "-p horizon 52.")
    if not (number(annual_discount) and annual_discount >= 0):
        problems.append(f"-p discount_rate must be 0 or more (an annual rate), got {annual_discount!r}; e.g. "
                        "-p discount_rate 0.1.")
    if not (number(margin) and 0 <= margin <= 1):
        problems.append(f"-p margin must be a share between 0 and 1, got {margin!r}; e.g. -p margin 0.3.")
    if values_path is not None and (Path(str(values_path)).suffix.lower() != ".parquet"
                                    or Path(str(values_path)).is_dir()):
        problems.append(f"-p values_path must name a .parquet file to write, got {values_path!r}; e.g. "
                        "-p values_path out/customer_values.parquet.")
    if setting != "noncontractual":
        if values_path is not None:
            problems.append(f"-p values_path is written by the non-contractual setting only, not the {setting} one. "
                            "Fix: leave it out.")
        if number(annual_discount) and annual_discount <= 0:
            problems.append(f"-p discount_rate must be above 0 in the {setting} setting (the value of a customer "
                            "who may stay for ever needs discounting), got 0; e.g. -p discount_rate 0.1.")
        if value_per_period is not None and not (number(value_per_period) and value_per_period > 0):
            problems.append(f"-p value_per_period must be a number above 0 (what an active customer pays per "
                            f"period), got {value_per_period!r}; e.g. -p value_per_period 1500.")
    if problems:
        raise ParameterError(" ".join(problems))


def compare_models(models: dict[str, PurchaseFit], summary: pd.DataFrame, holdout_length: float | None
                   ) -> pd.DataFrame:
    """Log-likelihood, AIC and (with a holdout) predicted vs actual holdout purchases per purchase model."""
    rows = []
    for name, fit in models.items():
        row: dict[str, Any] = {"model": name, "log-likelihood": fit.log_likelihood, "AIC": fit.aic}
        if holdout_length is not None:
            pred = fit.expected_purchases(holdout_length, summary["frequency"], summary["recency"], summary["T"])
            row.update({"holdout predicted": float(pred.sum()), "holdout actual": int(summary["holdout"].sum()),
                        "mean abs. error per customer": float((pred - summary["holdout"]).abs().mean())})
        rows.append(row)
    return pd.DataFrame(rows)


def choose_model(comparison: pd.DataFrame, has_holdout: bool) -> tuple[str, str]:
    """The model used for lifetime value: smaller holdout error per customer, or smaller AIC without a holdout.

    Ties (equal to 9 significant digits) go to the first model name in sorted order. Returns the model
    and the criterion's column name.
    """
    key = "mean abs. error per customer" if has_holdout else "AIC"
    return str(pick(comparison.set_index("model")[key], "min")), key


@dataclass
class HoldoutCheck:
    """The purchase models compared, the one chosen for lifetime value, and its checks on the holdout."""

    comparison: pd.DataFrame  # one row per purchase model
    model: str  # the chosen model's name
    criterion: str  # the comparison column that chose it
    fit: PurchaseFit
    track: pd.DataFrame | None = None  # repeat purchases per period, actual vs model (with a holdout)
    conditional: pd.DataFrame | None = None  # holdout purchases by calibration purchases (with a holdout)

    @property
    def sentence(self) -> Sentence:
        return sentence("Model used for lifetime value: **{chosen}** (lower {key}).", chosen=self.model,
                        key="error per customer on the holdout" if self.track is not None else "AIC")


def holdout_check(models: FittedModels, inputs: ClvInputs, min_n: int = 5) -> HoldoutCheck:
    """Compare the purchase models, choose one (:func:`choose_model`) and check it on the holdout.

    With a holdout: the tracking of repeat purchases over time (:func:`tracking`) and the conditional
    expectations by calibration purchases (:func:`conditional_expectations`, rows of at least ``min_n``).
    """
    comparison = compare_models(models.purchase, inputs.summary, inputs.holdout_length)
    chosen, key = choose_model(comparison, inputs.has_holdout)
    fit = models.purchase[chosen]
    if not inputs.has_holdout:
        return HoldoutCheck(comparison, chosen, key, fit)
    track = tracking(fit, inputs.summary, inputs.repeats, inputs.calibration_end, inputs.holdout_end,
                     inputs.time_unit)
    ce = conditional_expectations(fit, inputs.summary, inputs.holdout_length, min_n=min_n)
    return HoldoutCheck(comparison, chosen, key, fit, track, ce)


def tracking(fit: PurchaseFit, summary: pd.DataFrame, repeats: pd.Series, calibration_end: Any, holdout_end: Any,
             time_unit: str = "weeks") -> pd.DataFrame:
    """Repeat purchases per period, actual vs model, from the first purchase date to the holdout end.

    The last period ends with the holdout; when it is shorter than a whole period, ``complete`` is False on that
    row (it counts in the cumulative totals, but a per-period plot leaves it out: it would look like a drop).
    """
    unit = UNIT_DAYS[time_unit]
    start = summary["first_purchase"].min()
    stop = pd.Timestamp(holdout_end).normalize() + pd.Timedelta(days=1)  # purchases on the last day count
    edges = pd.date_range(start, stop, freq=pd.Timedelta(days=unit))
    if edges[-1] < stop:
        edges = edges.append(pd.DatetimeIndex([stop]))
    first = summary["first_purchase"]
    days = pd.DatetimeIndex(repeats.index).to_numpy("datetime64[ns]").astype("int64")
    actual = np.histogram(days, bins=edges.to_numpy("datetime64[ns]").astype("int64"),
                          weights=repeats.to_numpy(float))[0].round().astype(np.int64)
    cohorts = first.value_counts()
    cum = np.zeros(len(edges))
    for day, n in cohorts.items():
        age = np.clip((edges - day).days / unit, 0, None)
        cum += n * fit.expected_purchases_new_customer(age.to_numpy(float))
    predicted = np.diff(cum)
    out = pd.DataFrame({"period_start": edges[:-1], "actual": actual, "predicted": predicted,
                        "complete": np.diff(edges.to_numpy("datetime64[ns]").astype("int64"))
                        >= pd.Timedelta(days=unit).value * (1 - 1e-9)})
    out["actual_cum"] = out["actual"].cumsum()
    out["predicted_cum"] = out["predicted"].cumsum()
    out["holdout"] = out["period_start"] > pd.Timestamp(calibration_end)
    return out


def conditional_expectations(fit: PurchaseFit, summary: pd.DataFrame, holdout_length: float,
                             max_frequency: int = 7, min_n: int = 1) -> pd.DataFrame:
    """Mean holdout purchases by calibration frequency: actual vs model (``7+`` pools the tail).

    The tail is pooled from a lower count when needed so that every row describes at least ``min_n``
    customers (a row of fewer is never shown).
    """
    pred = fit.expected_purchases(holdout_length, summary["frequency"], summary["recency"], summary["T"])
    counts = summary["frequency"].value_counts()

    def has_small_row(cap: int) -> bool:
        rows = [int(counts.get(k, 0)) for k in range(cap)] + [int(counts[counts.index >= cap].sum())]
        return any(0 < r < min_n for r in rows)

    while max_frequency > 1 and has_small_row(max_frequency):
        max_frequency -= 1
    f = summary["frequency"].clip(upper=max_frequency)
    g = pd.DataFrame({"f": f, "actual": summary["holdout"], "predicted": pred}).groupby("f")
    out = g.agg(customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")).reset_index()
    out["calibration purchases"] = out["f"].astype(int).astype(str).where(out["f"] < max_frequency, f"{max_frequency}+")
    out = out[out["customers"] >= min_n]  # only possible when even "0" or "1+" is small: nothing is shown then
    return out[["calibration purchases", "customers", "actual", "predicted"]].reset_index(drop=True)


@dataclass
class PAliveGrid:
    """P(alive) of a customer first seen ``T`` time units ago, for every (frequency, recency) on a grid."""

    model: str
    T: float
    recency: np.ndarray  # grid columns, 0..T
    frequency: np.ndarray  # grid rows, 0..max_frequency
    p_alive: np.ndarray  # frequency × recency

    @property
    def crosses_half(self) -> bool:
        """Whether the 50% line runs through the repeat buyers' part of the grid."""
        inner = self.p_alive[1:]
        return bool(inner.size) and bool(np.nanmin(inner) < 0.5 < np.nanmax(inner))


def p_alive_grid(fit: PurchaseFit, summary: pd.DataFrame, max_frequency: int = 20, points: int = 60) -> PAliveGrid:
    """P(alive) at the longest tenure in ``summary`` for 0..``max_frequency`` repeat purchases and ``points``
    recencies from 0 to that tenure (customers without repeat purchases have recency 0)."""
    T = float(summary["T"].max())
    rec = np.linspace(0, T, points)
    freq = np.arange(0, max_frequency + 1)
    f, r = np.meshgrid(freq, rec, indexing="ij")
    pa = fit.p_alive(f, np.where(f > 0, r, 0), np.full_like(r, T))
    return PAliveGrid(fit.model, T, rec, freq, pa)


# ---------------------------------------------------------------------------------------------
# lifetime value


def customer_values(fit: PurchaseFit, spend: GammaGammaFit, summary: pd.DataFrame, horizon: float,
                    annual_discount: float, margin: float, time_unit: str = "weeks") -> pd.DataFrame:
    """Discounted value of each customer's purchases over the next ``horizon`` time units.

    Expected purchases per period come from differences of the conditional expectation, each discounted
    at the period rate implied by ``annual_discount``; value = purchases × expected spend × margin.
    Computed on unique (x, t_x, T) rows, then mapped back to customers. Columns: :data:`VALUE_COLUMNS`
    (``frequency``, ``recency``, ``T``, ``monetary`` from the summary, then ``p_alive``, ``expected_purchases``,
    ``discounted_purchases``, ``expected_spend``, ``clv``), indexed as the summary.

    Raises
    ------
    ParameterError
        ``horizon`` not above 0, ``annual_discount`` below 0 or ``margin`` outside 0..1.
    NotEstimable
        The spend model's q is not above 1 (the mean spend of a customer without repeat purchases is undefined).
    """
    check_value_parameters(horizon, annual_discount, margin)
    per_year = 365.25 / _unit_days(time_unit)
    if spend.params[1] <= 1:
        raise NotEstimable(f"The spend model's q is {spend.params[1]:.3g} (not above 1), so the expected spend of a "
                           "customer without repeat purchases is not defined and lifetime value cannot be computed. "
                           "Fix: use a longer calibration period or a log with more repeat buyers.")
    c, row = distinct_rows(summary)
    periods = np.arange(1, int(math.ceil(horizon)) + 1, dtype=float)
    periods[-1] = horizon
    disc = (1 + annual_discount) ** (-periods / per_year)
    x, tx, T = (c[k].to_numpy(float)[:, None] for k in ("frequency", "recency", "T"))
    cum = fit.expected_purchases(periods[None, :], x, tx, T)
    step = np.diff(np.concatenate([np.zeros((len(c), 1)), cum], axis=1), axis=1)
    c["expected_purchases"] = cum[:, -1]
    c["discounted_purchases"] = step @ disc
    c["p_alive"] = fit.p_alive(c["frequency"], c["recency"], c["T"])
    # mapped back by position, not by a merge on the three columns: at 25M customers the merge copied the
    # whole summary several times over (the 100M-row benchmark)
    out = summary[["frequency", "recency", "T", "monetary"]].copy()
    for col in ("p_alive", "expected_purchases", "discounted_purchases"):
        out[col] = c[col].to_numpy()[row]
    out["expected_spend"] = spend.expected_spend(out["frequency"], out["monetary"])
    out["clv"] = out["discounted_purchases"] * out["expected_spend"] * margin
    return out


def top_share(values: pd.Series, share: float) -> float:
    """Share of the total held by the top ``share`` of customers."""
    v = np.sort(values.to_numpy(float))[::-1]
    k = max(1, int(round(share * len(v))))
    return float(v[:k].sum() / v.sum()) if len(v) and v.sum() > 0 else float("nan")


def bootstrap_top_share(values: pd.Series, share: float, n_boot: int = 500, seed: int = 0) -> Bootstrap:
    """Percentile bootstrap 95% interval of :func:`top_share` over customers (failed replicates counted)."""
    return bootstrap_top_shares(values, (share,), n_boot, seed)[0]


def bootstrap_top_shares(values: pd.Series, shares: Sequence[float], n_boot: int = 500, seed: int = 0
                         ) -> list[Bootstrap]:
    """:func:`bootstrap_top_share` for several shares from the same resamples (the same intervals as one
    bootstrap per share with the same seed; at 5M customers, half the time)."""
    v = values.to_numpy(float)
    ks = sorted({max(1, int(round(share * len(v)))) for share in shares}, reverse=True)

    def statistics(idx: np.ndarray) -> list[float]:
        s = v[idx]
        top, total, sums = s, s.sum(), {}
        for k in ks:  # the k largest, unsorted (np.partition: O(n), not a full sort), largest k first
            top = np.partition(top, len(top) - k)[len(top) - k:]
            sums[k] = top.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            return [sums[max(1, int(round(share * len(v))))] / total for share in shares]

    return percentile_bootstraps(statistics, len(v), n_boot, seed, [top_share(values, sh) for sh in shares])


@dataclass
class Lorenz:
    """Share of total value held by the most valuable customers, from the most valuable down."""

    customers: np.ndarray  # share of customers, 0..1
    value: np.ndarray  # share of total value they hold
    points: dict[float, float]  # e.g. 0.1 -> share of value held by the top 10%


def lorenz_curve(values: pd.Series, marks: tuple[float, ...] = (0.1, 0.2), points: int = 2001) -> Lorenz:
    """The concentration curve of ``values`` with the shares held by the top ``marks`` of customers.

    The curve keeps at most ``points`` points, evenly spaced in customers (every customer when there are fewer):
    it is concave, so a plot of 2,001 points cannot be told from one of 25 million. The marks are exact.
    """
    v = np.sort(values.to_numpy(float))[::-1]
    cum = np.concatenate([[0], np.cumsum(v) / v.sum()])
    keep = np.unique(np.round(np.linspace(0, len(v), min(points, len(cum)))).astype(int))
    return Lorenz(keep / max(len(v), 1), cum[keep], {s: float(cum[int(round(s * len(v)))]) for s in marks})


@dataclass
class LifetimeValue:
    """Each customer's discounted lifetime value and how concentrated it is."""

    values: pd.DataFrame  # per customer (see :func:`customer_values`)
    horizon: float
    time_unit: str
    margin: float
    annual_discount: float
    top10: float
    top20: float
    top10_ci: Bootstrap
    top20_ci: Bootstrap
    lorenz: Lorenz

    @property
    def total(self) -> float:
        return float(self.values["clv"].sum())

    @property
    def mean(self) -> float:
        return float(self.values["clv"].mean())

    @property
    def share_likely_active(self) -> float:
        """Share of customers more likely active than not (P(alive) above 50%)."""
        return float((self.values["p_alive"] > 0.5).mean())

    @property
    def claim(self) -> Claim:
        return concentration_claim(self.values["clv"], self.top20, (self.top20_ci.ci_low, self.top20_ci.ci_high),
                                   note=self.top20_ci.problem)

    def sentence(self, currency: str = "") -> Sentence:
        caveat = "".join(f" Top {s}: {b.problem or f'{b.failed} of {b.n_boot} bootstrap replicates failed'}."
                         for s, b in (("10%", self.top10_ci), ("20%", self.top20_ci)) if b.failed or b.problem)
        return sentence(
            "Total lifetime value over the next {horizon:g} {unit}: **{total:,.0f} {money}** (margin {margin:.0%}, "
            "discount rate {rate:.0%} a year). The top 10% of customers hold **{top10:.0%}** of it (95% CI {lo10:.0%} "
            "to {hi10:.0%}), the top 20% hold **{top20:.0%}** ({lo20:.0%} to {hi20:.0%}). On average a customer is "
            "expected to make **{purchases:.2f}** purchases in that time; **{active:.0%}** of customers are more "
            "likely active than not." + ("{caveat}" if caveat else ""),
            horizon=float(self.horizon), unit=self.time_unit, total=self.total, money=currency,
            margin=float(self.margin), rate=float(self.annual_discount), top10=self.top10, lo10=self.top10_ci.ci_low,
            hi10=self.top10_ci.ci_high, top20=self.top20, lo20=self.top20_ci.ci_low, hi20=self.top20_ci.ci_high,
            purchases=float(self.values["expected_purchases"].mean()), active=self.share_likely_active, caveat=caveat)


def lifetime_value(fit: PurchaseFit, spend: GammaGammaFit, summary: pd.DataFrame, horizon: float,
                   annual_discount: float, margin: float, time_unit: str = "weeks", n_boot: int = 500,
                   seed: int = 0) -> LifetimeValue:
    """Lifetime value per customer (:func:`customer_values`), the shares held by the top 10% and 20% with
    percentile bootstrap 95% intervals (``n_boot`` resamples of customers), and the concentration curve."""
    values = customer_values(fit, spend, summary, horizon, annual_discount, margin, time_unit)
    v = values["clv"]
    boot10, boot20 = bootstrap_top_shares(v, (0.1, 0.2), n_boot, seed)
    return LifetimeValue(values, horizon, time_unit, margin, annual_discount, top_share(v, 0.1), top_share(v, 0.2),
                         boot10, boot20, lorenz_curve(v))


#: the columns of the per-customer file (:func:`write_values`), after ``customer_id``
VALUE_COLUMNS = ("frequency", "recency", "T", "monetary", "p_alive", "expected_purchases", "discounted_purchases",
                 "expected_spend", "clv")


def write_values(value: LifetimeValue, path: str | Path, ledger: Ledger, rows_per_group: int = 1_000_000) -> Path:
    """Each customer's summary, P(alive), expected purchases, expected spend and lifetime value as a Parquet file
    at ``path`` (:data:`VALUE_COLUMNS` after ``customer_id``, sorted by it; written in row groups of
    ``rows_per_group`` customers so that a reader can take it in parts).

    The file holds customer IDs — it is for acting on (targeting, a CRM import), not for sharing: the report
    only says that it was written, under which file name and for how many customers (a note in ``ledger``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    values = value.values[list(VALUE_COLUMNS)].reset_index().rename(
        columns={value.values.index.name or "index": "customer_id"}).astype({"customer_id": str})
    values = values.sort_values("customer_id", kind="mergesort")  # as text, whatever the IDs' type
    table = pa.Table.from_pandas(values, preserve_index=False)
    pq.write_table(table, target, row_group_size=rows_per_group)
    ledger.note(f"Each customer's lifetime value, P(alive) and expected purchases were written to {target.name} "
                f"({len(values):,} customers, {pq.ParquetFile(target).metadata.num_row_groups} row group(s)). It "
                "holds customer IDs and is not part of this report.")
    return target


# ---------------------------------------------------------------------------------------------
# RFM segments, value by group


RFM_SEGMENTS = (  # first match wins: (name, R range, F range)
    ("champions", (4, 5), (4, 5)),
    ("loyal", (3, 5), (3, 5)),
    ("new customers", (5, 5), (1, 1)),
    ("potential loyalists", (4, 5), (1, 3)),
    ("can't lose them", (1, 1), (5, 5)),
    ("at risk", (1, 2), (3, 5)),
    ("need attention", (3, 3), (1, 2)),
    ("hibernating", (1, 2), (1, 2)),
)


def _score(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Quintile score 1-5 from average ranks (ties share a score)."""
    pct = values.rank(method="average", pct=True, ascending=higher_is_better)
    return np.ceil(pct * 5).clip(1, 5).astype(int)


def rfm_segments(summary: pd.DataFrame) -> pd.DataFrame:
    """R, F, M quintile scores and a named segment per customer."""
    out = pd.DataFrame(index=summary.index)
    out["R"] = _score(-(summary["T"] - summary["recency"]))  # recent purchase = high R
    out["F"] = _score(summary["frequency"].astype(float))
    out["M"] = _score(summary["revenue"] / (summary["frequency"] + 1))
    seg = pd.Series("other", index=summary.index)
    for name, (r0, r1), (f0, f1) in RFM_SEGMENTS[::-1]:  # reversed so the first rule wins
        hit = out["R"].between(r0, r1) & out["F"].between(f0, f1)
        seg[hit] = name
    out["segment"] = seg
    return out


def segment_table(segments: pd.DataFrame, value: pd.Series, min_n: int = 5) -> pd.DataFrame:
    """Customers and share of value per named segment, largest share of value first (ties by name).

    Segments under ``min_n`` customers are folded into "Other (small groups)" (see
    :func:`cxresearch.privacy.merge_small_groups`); their names are in ``table.attrs["folded"]``.
    """
    labels, folded = merge_small_groups(segments["segment"], min_n)
    g = pd.DataFrame({"segment": labels, "value": value}).groupby("segment")
    out = g.agg(customers=("value", "size"), value=("value", "sum")).reset_index()
    out["share of customers"] = out["customers"] / out["customers"].sum()
    out["share of value"] = out["value"] / out["value"].sum()
    out = stable_sort(out, "share of value", ascending=False, tie="segment").reset_index(drop=True)
    out.attrs["folded"] = folded
    return out


def _folded_note(folded: list[str], min_n: int, what: str = "Groups") -> str:
    """A sentence template saying that groups were folded into "Other (small groups)" (their names fill
    ``{names}``; empty when none was)."""
    if not folded:
        return ""
    return f"{what} with fewer than {min_n} customers are combined into *Other (small groups)*: {{names}}."


@dataclass
class RfmSegments:
    """RFM scores and segment per customer, and the segments' shares of customers and revenue."""

    scores: pd.DataFrame  # per customer: R, F, M, segment
    table: pd.DataFrame  # per segment: customers, value, shares (see :func:`segment_table`)
    min_n: int = 5

    @property
    def note(self) -> Sentence | None:
        """Which segments were combined because they are small (None: none was)."""
        folded = list(self.table.attrs.get("folded", []))
        if not folded:
            return None
        return sentence(_folded_note(folded, self.min_n, "Segments"), names=", ".join(folded))


def rfm_analysis(summary: pd.DataFrame, min_n: int = 5) -> RfmSegments:
    """RFM scores and named segments (:func:`rfm_segments`) and their shares of calibration revenue."""
    scores = rfm_segments(summary)
    return RfmSegments(scores, segment_table(scores, summary["revenue"], min_n), min_n)


NO_VALUE = "(no value)"


def value_by(values: pd.Series, labels: pd.Series, min_n: int = 5) -> pd.DataFrame:
    """Customers, mean and total of ``values`` per label, largest total first (ties by label).

    Customers without a label count as "(no value)"; labels under ``min_n`` customers are folded into
    "Other (small groups)" (names in ``table.attrs["folded"]``), so every row has at least ``min_n``.
    """
    lab = labels.reindex(values.index)
    lab = lab.astype(object).where(lab.notna(), NO_VALUE).astype(str)
    lab, folded = merge_small_groups(lab, min_n)
    g = values.groupby(lab.rename("group")).agg(["size", "mean", "sum"]).reset_index()
    g = g.rename(columns={"size": "customers", "mean": "mean value", "sum": "total value"})
    g = stable_sort(g, "total value", ascending=False, tie="group").reset_index(drop=True)
    g.attrs["folded"] = folded
    return g


def value_by_segment(value: LifetimeValue, rfm: RfmSegments, min_n: int = 5, currency: str = "") -> pd.DataFrame:
    """Lifetime value by RFM segment, as shown (:func:`value_by`, :func:`value_display`)."""
    return value_display(value_by(value.values["clv"], rfm.scores["segment"], min_n), "RFM segment", currency)


@dataclass
class GroupValue:
    """Lifetime value by one customer attribute, as shown: a heading and the table."""

    heading: Sentence
    table: pd.DataFrame  # as shown (:func:`value_display`)


def value_by_attributes(values: pd.DataFrame, customers: pd.DataFrame | None, min_n: int = 5, currency: str = "",
                        columns: tuple[str, ...] = ("channel", "segment")) -> list[GroupValue]:
    """Lifetime value by each of ``columns`` the customer table has (:func:`value_by`); empty without one."""
    if customers is None:
        return []
    attrs = customers.set_index("customer_id")
    out = []
    for col in (c for c in columns if c in attrs):
        table = value_by(values["clv"], attrs[col], min_n)
        folded = list(table.attrs["folded"])
        note = _folded_note(folded, min_n)
        heading = sentence("**Lifetime value by {col}**" + (f"\n\n{note}" if note else ""), col=plain(col),
                           names=", ".join(folded))
        out.append(GroupValue(heading, value_display(table, plain(col), currency)))
    return out


# ---------------------------------------------------------------------------------------------
# the spend model's assumption, satisfaction and value, the check of parameters against known values


def frequency_spend_correlation(summary: pd.DataFrame) -> dict[str, float]:
    """Pearson correlation of frequency and average spend among repeat buyers (Fisher-z 95% CI)."""
    rep = summary[summary["frequency"] > 0]
    n = len(rep)
    if n < 4 or rep["frequency"].nunique() < 2 or rep["monetary"].nunique() < 2:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan, "n": n}
    r, p = pearsonr(rep["frequency"], rep["monetary"])
    lo, hi = fisher_z_interval(float(r), n)
    return {"estimate": float(r), "ci_low": lo, "ci_high": hi, "p_value": float(p), "n": n}


def spend_independence(corr: dict[str, Any], small: float = 0.1) -> str | None:
    """Plain verdict on the Gamma-Gamma assumption from the frequency–spend correlation (None: not estimable).

    "holds" when the whole 95% interval lies within ±``small``; "is questionable" when it lies wholly
    outside; otherwise "cannot be confirmed" (too few repeat buyers to tell).
    """
    decided = verdict(corr.get("ci_low"), corr.get("ci_high"), within=(-small, small))
    return {"supported": "holds: the correlation is small",
            "not supported": "is questionable: treat spend estimates with care",
            "inconclusive": "cannot be confirmed or ruled out with these data: treat spend estimates with some care",
            }.get(decided)


@dataclass
class SpendCheck:
    """The Gamma-Gamma assumption: is spend per purchase unrelated to purchase frequency?"""

    correlation: dict[str, float]  # estimate, ci_low, ci_high, p_value, n
    verdict: str | None  # "holds: ...", "is questionable: ...", "cannot be confirmed ...", None: not estimable

    @property
    def sentence(self) -> Sentence:
        c = self.correlation
        if self.verdict is None:
            return sentence("Too few repeat buyers with varying spend ({n:,}) to check this assumption.", n=int(c["n"]))
        return sentence("Correlation of purchase frequency and average spend among {n:,} repeat buyers: **{r:.3f}** "
                        "(95% CI {lo:.3f} to {hi:.3f}). The assumption {verdict}.", n=int(c["n"]), r=c["estimate"],
                        lo=c["ci_low"], hi=c["ci_high"], verdict=self.verdict)


def spend_check(summary: pd.DataFrame, small: float = 0.1) -> SpendCheck:
    """:func:`frequency_spend_correlation` and its verdict (:func:`spend_independence`)."""
    corr = frequency_spend_correlation(summary)
    return SpendCheck(corr, spend_independence(corr, small))


def satisfaction_gap(values: pd.DataFrame, survey: pd.DataFrame, item: str, threshold: float,
                     columns: tuple[str, ...] = ("clv", "expected_purchases"), min_n: int = 2) -> pd.DataFrame:
    """Mean of ``columns`` for satisfied (``item`` ≥ threshold) vs other linked customers, Welch 95% CI.

    A customer's satisfaction is the mean of their answers to ``item`` across waves (customers without an
    answer are left out). No row is returned when either side has fewer than ``min_n`` customers.
    """
    sat = pd.to_numeric(survey[item], errors="coerce").groupby(survey["customer_id"]).mean().dropna()
    linked = values.join(sat.rename("_sat"), how="inner")
    happy = linked["_sat"] >= threshold
    rows = []
    for c in columns:
        a, b = linked.loc[happy, c], linked.loc[~happy, c]
        if len(a) < max(2, min_n) or len(b) < max(2, min_n):
            continue
        w = welch(a.to_numpy(float), b.to_numpy(float))
        rows.append({"measure": c, "satisfied": float(a.mean()), "others": float(b.mean()),
                     "n_satisfied": len(a), "n_others": len(b), "difference": w["estimate"],
                     "ci_low": w["ci_low"], "ci_high": w["ci_high"], "p_value": w["p_value"]})
    return pd.DataFrame(rows)


@dataclass
class SatisfactionCheck:
    """Satisfied customers vs the others: the comparison (None when not tested), why not, and the claim."""

    gap: pd.DataFrame | None  # see :func:`satisfaction_gap`
    reason: Sentence | None  # why the claim was not tested
    claim: Claim
    currency: str = ""

    @property
    def table(self) -> pd.DataFrame | None:
        """The comparison as shown (:func:`gap_table`)."""
        return None if self.gap is None else gap_table(self.gap, self.currency)


def satisfaction_check(values: pd.DataFrame, survey: pd.DataFrame | None, item: str | None, threshold: float,
                       min_n: int = 5, currency: str = "") -> SatisfactionCheck:
    """Compare satisfied customers with the others (:func:`satisfaction_gap`) when the survey has ``item``."""
    gap, reason = None, None
    if survey is not None and item in survey:
        gap = satisfaction_gap(values, survey, item, threshold, min_n=min_n)
        if not len(gap):
            reason = sentence("Fewer than {k} linked customers on one side of the threshold, so this claim is not "
                              "tested.", k=min_n)
    elif survey is not None:
        reason = sentence("The survey has no column **{item}**, so this claim is not tested.", item=str(item))
    else:
        reason = sentence("No survey linked to customers, so this claim is not tested.")
    claim = satisfaction_claim(gap, item, threshold, len(values), currency)
    return SatisfactionCheck(gap if gap is not None and len(gap) else None, reason, claim, currency)


def parameter_check(fits: list[ModelFit], planted: Mapping[str, float]) -> pd.DataFrame:
    """Estimates beside known parameter values (a simulation's planted ones): is each inside the 95% CI?"""
    rows = pd.concat([f.table() for f in fits], ignore_index=True)
    rows["planted"] = rows["parameter"].map(planted)
    rows["inside 95% CI"] = (rows["ci_low"] <= rows["planted"]) & (rows["planted"] <= rows["ci_high"])
    rows["parameter"] = rows["parameter"].map(_parameter_text)
    return rows[["parameter", "planted", "estimate", "ci_low", "ci_high", "inside 95% CI"]]



def _interval(estimate: float, lo: float, hi: float) -> dict[str, float]:
    return {"estimate": estimate, "ci_low": lo, "ci_high": hi}


def metrics(inputs: ClvInputs, models: FittedModels, holdout: HoldoutCheck, value: LifetimeValue,
            spend: SpendCheck) -> list[dict[str, Any]]:
    """The run's metrics as keyword arguments of :meth:`cxresearch.results.Results.metric`."""
    s = inputs.summary
    keyed = {fit.key: fit for fit in models.all}
    out: list[dict[str, Any]] = [
        {"name": "n_customers", "value": len(s), "headline": True, "label": "customers"},
        {"name": "n_repeat_transactions_calibration", "value": int(s["frequency"].sum())}]
    if inputs.has_holdout:
        keys = holdout.comparison["model"].map(MODEL_KEYS)
        out += [{"name": "n_repeat_transactions_holdout", "value": int(s["holdout"].sum())},
                {"name": "holdout_predicted_repeat_transactions",
                 "value": dict(zip(keys, holdout.comparison["holdout predicted"], strict=True))},
                {"name": "holdout_mae", "value": dict(zip(keys, holdout.comparison["mean abs. error per customer"],
                                                          strict=True))}]
    out.append({"name": "chosen_model", "value": {holdout.fit.key: 1}})
    for key, fit in keyed.items():
        out += [{"name": f"{key}_params", "value": fit.as_dict()},
                {"name": f"{key}_se", "value": dict(zip(fit.names, fit.se, strict=True))}]
    corr = spend.correlation
    out += [
        {"name": "loglik", "value": {k: f.log_likelihood for k, f in keyed.items()}},
        {"name": "aic", "value": {k: f.aic for k, f in keyed.items()}},
        {"name": "clv_total", "value": value.total, "headline": True,
         "label": f"total lifetime value, next {value.horizon:g} {value.time_unit}", "unit": "money"},
        {"name": "clv_mean", "value": value.mean, "label": "average lifetime value per customer", "unit": "money"},
        {"name": "clv_top10_share", "value": _interval(value.top10, value.top10_ci.ci_low, value.top10_ci.ci_high),
         "headline": True, "label": "value held by the top 10%", "unit": "share"},
        {"name": "clv_top20_share", "value": _interval(value.top20, value.top20_ci.ci_low, value.top20_ci.ci_high),
         "unit": "share"},
        {"name": "clv_top_share_bootstrap_failed", "value": {"top10": value.top10_ci.failed,
                                                              "top20": value.top20_ci.failed}},
        {"name": "frequency_spend_correlation", "value": _interval(corr["estimate"], corr["ci_low"], corr["ci_high"])},
        {"name": "share_likely_active", "value": value.share_likely_active, "unit": "share"},
    ]
    return out


def concentration_claim(values: pd.Series, top20: float, ci: tuple[float, float], note: str | None = None,
                        measure: str = "lifetime value", measured_as: str | None = None) -> Claim:
    """"The top 20% of customers hold most of the value": share held by the top 20% vs 50%.

    ``n`` is the size of the top-20% group (the smaller side of the comparison). Unit "share". ``measure``: what
    the value is, in a few words; ``measured_as``: how it is counted, for the test's description.
    """
    k = max(1, int(round(0.2 * len(values))))
    return Claim("value_is_concentrated", f"The top 20% of customers hold most (over half) of the {measure}",
                 f"share of total {measured_as or measure} held by the top 20%, percentile bootstrap 95% CI, "
                 "compared with 50%",
                 top20, ci[0], ci[1], None, verdict(ci[0], ci[1], null=0.5), k, note, "share",
                 f"The 20% most valuable customers are expected to bring {fmt_value(top20, 'share')} of all "
                 f"{measure} (over 50% supports the claim).")


def value_concentration_claim(values: pd.Series, n_boot: int = 500, seed: int = 0, measure: str = "lifetime value",
                              measured_as: str | None = None) -> Claim:
    """:func:`concentration_claim` of any per-customer values (e.g. the discrete setting's DERT), with its
    percentile bootstrap interval over customers."""
    boot = bootstrap_top_share(values, 0.2, n_boot, seed)
    return concentration_claim(values, top_share(values, 0.2), (boot.ci_low, boot.ci_high), note=boot.problem,
                               measure=measure, measured_as=measured_as)


def satisfaction_claim(gap: pd.DataFrame | None, item: str | None, threshold: float, n_customers: int,
                       currency: str = "") -> Claim:
    """"Satisfied customers are worth more": difference in mean CLV (Welch), or not testable without a survey.

    The estimate is money (unit "money", shown in ``currency``); the item is named by its label.
    """
    claim = "Satisfied customers buy more often and more (higher lifetime value)"
    if gap is None or not len(gap) or "clv" not in set(gap["measure"]):
        return Claim("satisfied_customers_worth_more", claim, "difference in mean lifetime value, satisfied customers "
                     "vs the others; Welch t-test", None, verdict="not testable", n=n_customers, unit="money",
                     note="no survey answers linked to customers (or too few on one side), so this was not tested")
    row = gap.set_index("measure").loc["clv"]
    diff = float(row["difference"])
    return Claim("satisfied_customers_worth_more", claim,
                 f"difference in mean lifetime value, customers answering {threshold:g} or more to “{plain(item)}” "
                 "vs the others; Welch t-test", diff, row["ci_low"], row["ci_high"], row["p_value"],
                 verdict(row["ci_low"], row["ci_high"]), int(min(row["n_satisfied"], row["n_others"])), unit="money",
                 meaning=f"{'Positive' if diff >= 0 else 'Negative'}: a satisfied customer is worth "
                         f"{fmt_value(abs(diff), 'money', currency, digits=2)} {'more' if diff >= 0 else 'less'} on "
                         "average than the others.")


def referral_claim(n_customers: int) -> Claim:
    """"A loyal customer brings several others": never testable from a purchase log."""
    return Claim("loyal_customers_bring_others", "A loyal customer brings several others",
                 "needs referral links (who referred whom)", None, verdict="not testable", n=n_customers,
                 note="the data have no referral links, so this was not tested")


# ---------------------------------------------------------------------------------------------
# tables as shown (plain headers; money columns name the currency)


#: the exclusion rules as a reader reads them, by how the rule text starts (the ledger and ``results.json`` keep the
#: exact rule text)
RULE_TEXT = (("customer_id not found in the customers table", "purchases by customers missing from the customer table"),
             ("amount below zero", "purchases with an amount below zero"),
             ("timestamp after", "purchases after"))
_NAME = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b")


def rule_text(rule: str) -> str:
    """An input rule in plain words: known rules rephrased, column names in others by their labels."""
    rule = str(rule)
    for start, words in RULE_TEXT:
        if rule.startswith(start):
            return words + rule[len(start):]
    return _NAME.sub(lambda m: plain(m.group()), rule)


def rules_table(exclusions: pd.DataFrame, notes: list[dict[str, Any]]) -> pd.DataFrame:
    """The input rules as shown: table, rule in plain words, rows (exclusions from the ledger, then ``notes``)."""
    parts = [exclusions[["table", "rule", "rows_excluded"]].rename(columns={"rows_excluded": "rows"}),
             pd.DataFrame(notes, columns=["rule", "rows"]).assign(table="transactions")]
    parts = [x for x in parts if len(x)]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["table", "rule", "rows"])
    out = out[["table", "rule", "rows"]].reset_index(drop=True)
    return out.assign(rule=out["rule"].map(rule_text))


#: what each model parameter describes, in words
PARAMETER_MEANINGS = {
    "r": "how purchase rates vary across customers (shape)",
    "alpha": "how purchase rates vary across customers (scale, in time units)",
    "a": "chance of dropping out after a purchase (first shape)",
    "b": "chance of dropping out after a purchase (second shape)",
    "s": "how dropout rates vary across customers (shape)",
    "beta": "how dropout rates vary across customers (scale, in time units)",
    "p": "spend per purchase around a customer's own average (shape)",
    "q": "how average spend varies across customers (shape)",
    "v": "how average spend varies across customers (scale, money)",
}


def _parameter_text(name: str) -> str:
    meaning = PARAMETER_MEANINGS.get(name)
    return f"{name} — {meaning}" if meaning else name


def parameter_table(fit: ModelFit) -> pd.DataFrame:
    """A model's parameters as shown: parameter with what it describes, estimate, standard error, 95% CI."""
    t = fit.table()
    return t.assign(parameter=t["parameter"].map(_parameter_text)).rename(columns={"se": "standard error"})


def comparison_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The model comparison as shown (holdout purchases predicted and actual, error per customer)."""
    return comparison.rename(columns={"holdout predicted": "holdout purchases, predicted",
                                      "holdout actual": "holdout purchases, actual",
                                      "mean abs. error per customer": "mean error per customer (purchases)"})


def conditional_table(ce: pd.DataFrame) -> pd.DataFrame:
    """Holdout purchases by calibration purchases, as shown."""
    return ce.rename(columns={"calibration purchases": "repeat purchases, calibration period",
                              "actual": "mean holdout purchases, actual", "predicted": "mean holdout purchases, model"})


def segment_display(table: pd.DataFrame, currency: str = "") -> pd.DataFrame:
    """:func:`segment_table` as shown: revenue in ``currency``."""
    money = f" ({currency})" if currency else ""
    return table.rename(columns={"value": f"revenue{money}", "share of value": "share of revenue"})


def value_display(table: pd.DataFrame, group: str, currency: str = "") -> pd.DataFrame:
    """:func:`value_by` as shown: the group column named ``group``, lifetime value in ``currency``."""
    money = f" ({currency})" if currency else ""
    return table.rename(columns={"group": group, "mean value": f"mean lifetime value{money}",
                                 "total value": f"total lifetime value{money}"})


def gap_table(gap: pd.DataFrame, currency: str = "") -> pd.DataFrame:
    """:func:`satisfaction_gap` as shown: measures in words (lifetime value in ``currency``), plain headers."""
    money = f" ({currency})" if currency else ""
    measures = {"clv": f"lifetime value{money}", "expected_purchases": "expected purchases"}
    out = gap.assign(measure=gap["measure"].map(lambda m: measures.get(m, plain(m))))
    return out.rename(columns={"satisfied": "mean, satisfied", "others": "mean, others",
                               "n_satisfied": "satisfied customers", "n_others": "other customers",
                               "difference": "difference"})


# ---------------------------------------------------------------------------------------------
# plots


PER = {"days": "day", "weeks": "week", "months": "month"}


def _thousands(ax: plt.Axes, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def plot_tracking(track: pd.DataFrame, model: str, cumulative: bool = True, ax: plt.Axes | None = None,
                  time_unit: str = "weeks") -> plt.Axes:
    """Actual vs model repeat purchases per period (or cumulative); the holdout is shaded; readable dates."""
    from cxresearch.plots import ACCENT, MAIN, MUTED, date_axis

    ax = ax or plt.subplots(figsize=(10, 4))[1]
    a, p = ("actual_cum", "predicted_cum") if cumulative else ("actual", "predicted")
    if not cumulative and "complete" in track:
        track = track[track["complete"]]
    ax.plot(track["period_start"], track[a], color=MAIN, lw=2, label="actual")
    ax.plot(track["period_start"], track[p], color=ACCENT, lw=2, ls="--", label=f"{model} model")
    hold = track[track["holdout"]]
    if len(hold):
        ax.axvspan(hold["period_start"].min(), hold["period_start"].max(), color=MUTED, alpha=0.15,
                   label="holdout (not used for fitting)")
    per = PER.get(time_unit, time_unit)
    ax.set_ylabel("repeat purchases so far" if cumulative else f"repeat purchases per {per}")
    ax.set_title(("Repeat purchases so far" if cumulative else f"Repeat purchases per {per}") + ": actual vs model")
    _thousands(ax)
    date_axis(ax)
    ax.legend(loc="upper left")
    return ax


def plot_tracking_pair(track: pd.DataFrame, model: str, time_unit: str = "weeks") -> np.ndarray:
    """:func:`plot_tracking` twice in one figure: repeat purchases so far (top) and per period (bottom)."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    plot_tracking(track, model, cumulative=True, ax=axes[0], time_unit=time_unit)
    plot_tracking(track, model, cumulative=False, ax=axes[1], time_unit=time_unit)
    fig.tight_layout()
    return axes


def plot_conditional(ce: pd.DataFrame, model: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Holdout purchases by calibration purchases: actual vs model."""
    from cxresearch.plots import ACCENT, MAIN

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    x = np.arange(len(ce))
    ax.plot(x, ce["actual"], "o-", color=MAIN, label="actual")
    ax.plot(x, ce["predicted"], "s--", color=ACCENT, label=f"{model} model")
    ax.set_xticks(x, ce["calibration purchases"])
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout")
    ax.set_title("Do customers who bought more keep buying more?")
    ax.legend(loc="upper left")
    return ax


def plot_p_alive_matrix(grid: PAliveGrid, ax: plt.Axes | None = None, time_unit: str = "weeks") -> plt.Axes:
    """P(alive) for every (recency, frequency) at tenure T (:func:`p_alive_grid`), with the 50% line."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    from cxresearch.plots import DIVERGING, INK

    ax = ax or plt.subplots(figsize=(8, 5.5))[1]
    T, top = grid.T, int(grid.frequency[-1])
    im = ax.imshow(grid.p_alive, origin="lower", aspect="auto", extent=(0, T, -0.5, top + 0.5), cmap=DIVERGING,
                   vmin=0, vmax=1)
    if grid.crosses_half:
        lines = ax.contour(grid.recency, grid.frequency[1:], grid.p_alive[1:], levels=[0.5], colors=INK, linewidths=1,
                           linestyles="--")
        ax.clabel(lines, fmt={0.5: "50%"}, fontsize=9)
    bar = ax.figure.colorbar(im, ax=ax, format=PercentFormatter(1.0, decimals=0))
    bar.set_label("chance the customer is still active")
    ax.grid(False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"{time_unit} from first to last purchase (recency)")
    ax.set_ylabel("repeat purchases")
    ax.set_title(f"Who is still active? Customers who first bought {T:,.0f} {time_unit} ago ({grid.model})")
    return ax


def plot_segments(table: pd.DataFrame, ax: plt.Axes | None = None, currency: str = "") -> plt.Axes:
    """Share of customers vs share of revenue per RFM segment; each revenue bar is labelled with the money."""
    import seaborn as sns
    from matplotlib.ticker import PercentFormatter

    from cxresearch.plots import MAIN, PALETTE, label

    ax = ax or plt.subplots(figsize=(9, 0.55 * len(table) + 1.4))[1]
    names = [label(s, 24) for s in table["segment"]]
    long = pd.DataFrame({
        "segment": names * 2,
        "share": np.r_[table["share of customers"].to_numpy(float), table["share of value"].to_numpy(float)] * 100,
        "measure": ["share of customers"] * len(table) + ["share of revenue"] * len(table)})
    sns.barplot(data=long, y="segment", x="share", hue="measure", order=names, orient="h",
                palette=[PALETTE[9], MAIN], ax=ax)
    money = [fmt_value(v, "money", currency) for v in table["value"]]
    ax.bar_label(ax.containers[1], labels=money, padding=3, fontsize=8.5)
    ax.set_xlim(0, float(long["share"].max()) * 1.3)
    ax.xaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    ax.set_xlabel("share of all customers / of all revenue in the calibration period")
    ax.set_ylabel("")
    ax.set_title("RFM segments: how many customers, how much revenue")
    ax.legend(title=None, loc="lower right")
    return ax


def plot_lorenz(lorenz: Lorenz, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of total value held by the top x% of customers (:func:`lorenz_curve`)."""
    from matplotlib.ticker import PercentFormatter

    from cxresearch.plots import ACCENT, MAIN, MUTED

    ax = ax or plt.subplots(figsize=(6, 5.5))[1]
    ax.plot(lorenz.customers * 100, lorenz.value * 100, color=MAIN, lw=2, label="customers, most valuable first")
    ax.plot([0, 100], [0, 100], color=MUTED, ls="--", lw=1, label="if every customer were worth the same")
    for s, held in lorenz.points.items():
        ax.scatter([s * 100], [held * 100], color=ACCENT, zorder=3)
        ax.annotate(f"top {s:.0%} of customers: {held:.0%} of value", (s * 100, held * 100), xytext=(8, -14),
                    textcoords="offset points", fontsize=9)
    ax.xaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    ax.set_xlabel("share of customers (most valuable first)")
    ax.set_ylabel("share of total lifetime value")
    ax.set_title("How concentrated is customer value?")
    ax.legend(loc="lower right", fontsize=9)
    return ax
