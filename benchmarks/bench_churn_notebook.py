"""Run the churn notebook on a large synthetic world; report wall time per step and peak memory.

Run: .venv/bin/python benchmarks/bench_churn_notebook.py [n_customers] [csv|parquet]   (default 1,000,000, csv)
The world is generated first (cached under data/synthetic/), so the notebook time excludes it. ``parquet``
writes its customers, complaints and survey answers as Parquet files first (not timed) and runs the notebook
on them: the customer table and complaints are then checked and summarised in DuckDB (``-p engine duckdb``).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from cxresearch.runner import RunSpec, run_notebook
from cxresearch.synth import ensure_world


def parquet_tables(paths: dict, folder: Path) -> dict[str, str]:
    """The world's churn tables as Parquet files (times in microseconds), as a warehouse would export them."""
    import pandas as pd

    out = {}
    for name, param, dates in (("customers", "customers_path", ["signup_date", "churn_date"]),
                               ("complaints", "complaints_path", ["opened_at"]),
                               ("survey_responses", "survey_path", [])):
        df = pd.read_csv(paths[name], dtype={"customer_id": str}, parse_dates=dates)
        df.to_parquet(folder / f"{name}.parquet", index=False, coerce_timestamps="us")
        out[param] = str(folder / f"{name}.parquet")
    return out


def main(n: int, form: str = "csv") -> None:
    t0 = time.perf_counter()
    paths = ensure_world(n_customers=n)
    world_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as out:
        params = {"n_customers": n}
        if form == "parquet":
            params = {**parquet_tables(paths, Path(out)), "as_of": "2024-12-31"}
        t1 = time.perf_counter()
        res = run_notebook(RunSpec("churn_survival", parameters=params), out)
        total = time.perf_counter() - t1
        nb = nbformat.read(Path(out) / "churn_survival" / "notebook.ipynb", as_version=4)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"customers: {n:,} ({form}); status: {res['status']}; world generation (cached afterwards): {world_s:.0f} s")
    print(f"notebook wall time: {total:.0f} s; peak memory of the kernel: {peak:,.0f} MB\n")
    print("| step (first line of the cell) | seconds |\n|---|---:|")
    steps = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            first = next((ln for ln in cell.source.splitlines() if ln and not ln.startswith(("#", "%", "import", "from"))),
                         cell.source.splitlines()[0])
            steps.append((cell.metadata.get("papermill", {}).get("duration") or 0.0, first[:70]))
    for sec, first in steps:
        print(f"| `{first}` | {sec:.1f} |")
    if form == "parquet":
        return
    print("\n| function (same data, in-process) | seconds |\n|---|---:|")
    for name, sec in function_timings(n):
        print(f"| `{name}` | {sec:.1f} |")


def function_timings(n: int) -> list[tuple[str, float]]:
    """Seconds per analysis function on the same world, to split the notebook's cells."""
    from cxresearch import churn, contracts
    from cxresearch.io import Ledger, read_table

    paths = ensure_world(n_customers=n)
    out = []

    def timed(name, fn):
        t = time.perf_counter()
        value = fn()
        out.append((name, time.perf_counter() - t))
        return value

    st = timed("survival_table (read + validate customers)", lambda: churn.survival_table(
        str(paths["customers"]), as_of="2024-12-31", group_col="segment",
        covariates=["plan", "segment", "channel", "region"], ledger=Ledger()))
    comp = timed("read_table complaints", lambda: read_table(paths["complaints"], contracts.COMPLAINTS, ledger=Ledger()))
    groups, _ = churn.groups_of(st)
    kms = timed("fit_km", lambda: churn.fit_km(groups))
    timed("km_summary (incl. RMST)", lambda: churn.km_summary(kms, groups, [3, 6, 12, 24], 24))
    timed("logrank + pairwise", lambda: (churn.logrank(groups), churn.pairwise_logrank(groups)))
    timed("fit_cox (lifelines + PH test on 20k sample)", lambda: churn.fit_cox(st))
    ep = timed("complaint_episodes", lambda: churn.complaint_episodes(st, comp))
    timed(f"fit_time_varying (statsmodels PHReg, {len(ep):,} rows)", lambda: churn.fit_time_varying(st, ep))
    timed("fit_parametric (Weibull + log-logistic AFT)", lambda: churn.fit_parametric(st))
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, sys.argv[2] if len(sys.argv) > 2 else "csv")
