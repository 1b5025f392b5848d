"""BG/BB fitting and DERL: cxresearch vs lifetimes and vs the direct sums, side by side in one run.

* BG/BB: the donor cohort of Fader, Hardie & Shang (2010) (6 yearly occasions) and patterns drawn from the
  BG/BB with 30 monthly occasions, fitted by cxresearch (unique rows with counts) and by lifetimes'
  BetaGeoBetaBinomFitter (which takes the same rows with weights). cxresearch's time includes its checks: a
  Newton polish, the Hessian's definiteness and the standard errors.
* DERL with intervals: the BdW DERL of 13 tenures at 2,000 parameter draws, by the backward recursion
  (RetentionFit.derl) and by one discounted sum per tenure (the code it replaced).

Run: .venv/bin/python benchmarks/bench_retention.py
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from cxresearch import retention as R
from cxresearch import sources, synth


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_bgbb() -> None:
    from lifetimes import BetaGeoBetaBinomFitter

    warnings.simplefilter("ignore")
    cases = {"donor cohort (6 yearly occasions)": sources.donations(),
             "drawn from BG/BB (30 monthly occasions)": R.compress_bgbb(
                 synth.bgbb_customers(0.64, 2.8, 0.5, 1.9, n_customers=20000, opportunities=30, seed=1))}
    print("| data | unique rows | cxresearch (s) | lifetimes (s) | lifetimes / cxresearch | max rel. param gap "
          "| log-lik. cxresearch - lifetimes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rows in cases.items():
        ours, t_ours = timed(lambda rows=rows: R.fit_bgbb(rows))
        theirs, t_theirs = timed(lambda rows=rows: BetaGeoBetaBinomFitter().fit(
            rows["x"], rows["t_x"], rows["n"], weights=rows["weight"]))
        p = theirs.params_[["alpha", "beta", "gamma", "delta"]].to_numpy()
        gap = float(np.max(np.abs(p / ours.params - 1)))
        x, t_x, n, w = (rows[k].to_numpy(float) for k in ("x", "t_x", "n", "weight"))
        ll_gap = ours.log_likelihood - float(np.sum(w * R.bgbb_ll(p, x, t_x, n)))
        print(f"| {name} | {len(rows):,} | {t_ours:.2f} | {t_theirs:.2f} | {t_theirs / t_ours:.1f} | {gap:.1e} "
              f"| {ll_gap:.1e} |")


def derl_by_sums(fit: R.RetentionFit, renewals: np.ndarray, d: float) -> np.ndarray:
    """One discounted sum per tenure, as RetentionFit.derl computed it before the recursion."""
    horizon = int(math.ceil(math.log(1e12) / math.log1p(d)))
    k = np.arange(horizon + 1, dtype=float)
    return np.array([np.sum(np.exp(fit.log_survival(n + 1 + k) - fit.log_survival(n) - k * math.log1p(d)))
                     for n in renewals])


def bench_derl() -> None:
    fit = R.BdWFit(np.array([0.45, 0.78, 1.28]))
    fit.cov_log = np.diag([0.01, 0.01, 0.001])
    renewals = np.array(R.TENURE_ROWS)
    d = R.period_discount(0.1, "months")
    draws = [R.BdWFit(p) for p in fit.draws(2000, 0)]
    rec, t_rec = timed(lambda: np.array([f.derl(renewals, d) for f in draws]))
    sums, t_sums = timed(lambda: np.array([derl_by_sums(f, renewals, d) for f in draws]))
    gap = float(np.max(np.abs(rec / sums - 1)))
    print("| DERL, 13 tenures x 2,000 draws (monthly) | recursion (s) | sums (s) | sums / recursion | max rel. gap |")
    print("|---|---:|---:|---:|---:|")
    print(f"| BdW | {t_rec:.2f} | {t_sums:.2f} | {t_sums / t_rec:.1f} | {gap:.1e} |")


if __name__ == "__main__":
    bench_bgbb()
    print()
    bench_derl()
