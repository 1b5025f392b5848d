"""Time-varying Cox fit: statsmodels PHReg with entry times (used by cxresearch) vs lifelines
CoxTimeVaryingFitter, side by side on the same synthetic episodes; prints seconds and the ratio.

Run: .venv/bin/python benchmarks/bench_time_varying_cox.py [sizes...]
"""

from __future__ import annotations

import sys
import time
import warnings

import pandas as pd

from cxresearch import churn, contracts
from cxresearch.io import Ledger, read_table
from cxresearch.synth import ensure_world


def episodes(n: int) -> tuple[churn.SurvivalTable, pd.DataFrame]:
    paths = ensure_world(n_customers=n)
    st = churn.survival_table(str(paths["customers"]), as_of="2024-12-31", group_col="segment",
                              covariates=["plan", "segment", "channel", "region"], ledger=Ledger())
    comp = read_table(paths["complaints"], contracts.COMPLAINTS, ledger=Ledger())
    return st, churn.complaint_episodes(st, comp)


def main(sizes: list[int]) -> None:
    from lifelines import CoxTimeVaryingFitter

    warnings.simplefilter("ignore")
    print("| customers | episode rows | statsmodels PHReg (s) | lifelines CoxTimeVarying (s) | lifelines / statsmodels |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        st, ep = episodes(n)
        t0 = time.perf_counter()
        ours = churn.fit_time_varying(st, ep)
        t1 = time.perf_counter()
        x = churn.covariate_design(st).X
        long = ep.merge(pd.concat([st.data[["id"]], x], axis=1), on="id")
        for s in ("fast", "slow", "unresolved"):
            long[s] = (long["state"] == s).astype(float)
        long = long.drop(columns="state")
        t2 = time.perf_counter()
        ref = CoxTimeVaryingFitter().fit(long, id_col="id", start_col="start", stop_col="stop", event_col="event")
        t3 = time.perf_counter()
        gap = (ours.set_index("term")["hr"].drop("fast vs slow") / ref.hazard_ratios_).abs().sub(1).abs().max()
        print(f"| {n:,} | {len(ep):,} | {t1 - t0:.1f} | {t3 - t2:.1f} | {(t3 - t2) / (t1 - t0):.1f}× "
              f"(max rel. HR gap {gap:.1e}) |")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 50_000, 200_000])
