"""BG/NBD fitting and RFM summaries: cxresearch vs lifetimes side by side in one run.

* Fit: customers simulated from a BG/NBD process (times on a daily grid, as real logs have), fitted by
  cxresearch (unique rows with weights) and by lifetimes' BetaGeoFitter, plain and with weights.
* Summary: a transaction log with N rows, summarised by cxresearch.clv.rfm_summary (vectorized pandas)
  and by lifetimes.utils.summary_data_from_transaction_data.

Run: .venv/bin/python benchmarks/bench_clv.py [--fit 1000000 10000000] [--summary 10000000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from cxresearch import clv

TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


def simulate_bgnbd(n: int, seed: int = 0) -> pd.DataFrame:
    """(frequency, recency, T) in weeks for n BG/NBD customers, vectorized; times rounded to days."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    T = rng.integers(26 * 7, 52 * 7 + 1, n) / 7.0
    drop_after = rng.geometric(p)  # the customer leaves right after this repeat purchase
    k = rng.poisson(lam * T)
    unit = np.repeat(np.arange(n), k)
    times = np.round(rng.random(unit.size) * T[unit] * 7) / 7
    order = np.lexsort((times, unit))
    unit, times = unit[order], times[order]
    rank = np.arange(unit.size) - np.repeat(np.cumsum(k) - k, k)  # 0-based rank within customer
    keep = rank < drop_after[unit]
    x = np.bincount(unit[keep], minlength=n)
    recency = np.zeros(n)
    np.maximum.at(recency, unit[keep], times[keep])
    return pd.DataFrame({"frequency": x, "recency": np.where(x > 0, recency, 0.0), "T": T})


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_fit(sizes: list[int]) -> None:
    from lifetimes import BetaGeoFitter

    warnings.simplefilter("ignore")
    print("| customers | unique rows | cxresearch (s) | lifetimes plain (s) | lifetimes weighted (s) | "
          "plain / cxresearch | weighted / cxresearch | max rel. param gap |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        s = simulate_bgnbd(n)
        ours, t_ours = timed(lambda s=s: clv.fit_bgnbd(s))
        c = clv.compress(s)
        weighted, t_w = timed(lambda c=c: BetaGeoFitter().fit(c["frequency"], c["recency"], c["T"], weights=c["weight"]))
        plain, t_p = timed(lambda s=s: BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"]))
        gap = max(abs(ours.as_dict()[k] / plain.params_[k] - 1) for k in TRUE)
        print(f"| {n:,} | {len(c):,} | {t_ours:.2f} | {t_p:.1f} | {t_w:.2f} | {t_p / t_ours:.0f}× | "
              f"{t_w / t_ours:.1f}× | {gap:.1e} |")


def simulate_log(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_customers = rows // 5
    cust = rng.integers(0, n_customers, rows)
    day = rng.integers(0, 730, rows)
    return pd.DataFrame({"customer_id": cust, "date": pd.Timestamp("2022-01-01") + pd.to_timedelta(day, unit="D"),
                         "amount": np.round(rng.gamma(2.0, 15.0, rows), 2)})


def bench_summary(rows_list: list[int]) -> None:
    from lifetimes.utils import summary_data_from_transaction_data

    warnings.simplefilter("ignore")
    print("| log rows | customers | cxresearch rfm_summary (s) | lifetimes summary_data_from_transaction_data (s) | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for rows in rows_list:
        log = simulate_log(rows)
        ours, t_ours = timed(lambda lg=log: clv.rfm_summary(clv.merge_same_day(lg), "2023-12-31"))  # merge timed too
        theirs, t_lt = timed(lambda lg=log: summary_data_from_transaction_data(
            lg, "customer_id", "date", monetary_value_col="amount", observation_period_end="2023-12-31", freq="W",
            freq_multiplier=1))
        print(f"| {rows:,} | {len(ours):,} | {t_ours:.1f} | {t_lt:.1f} | {t_lt / t_ours:.1f}× |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--summary", type=int, nargs="*", default=[10_000_000])
    args = ap.parse_args()
    if args.fit:
        bench_fit(args.fit)
    if args.summary:
        bench_summary(args.summary)
