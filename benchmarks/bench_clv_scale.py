"""The CLV path at benchmark sizes: a transaction log in partitioned Parquet, summarised in DuckDB.

Run (each step in a fresh process; wall time and peak memory from GNU time):

    .venv/bin/python benchmarks/bench_clv_scale.py write  /tmp/tx20m 5000000
    .venv/bin/python benchmarks/bench_clv_scale.py rfm    /tmp/tx10m          # a log of about 10M rows
    .venv/bin/python benchmarks/bench_clv_scale.py notebook /tmp/tx20m        # whole notebook vs lifetimes
    .venv/bin/python benchmarks/bench_clv_scale.py notebook /tmp/tx100m --only-cxresearch
    .venv/bin/python benchmarks/bench_clv_scale.py spark  /tmp/tx20m          # Spark local[2] vs DuckDB

``write`` draws the synthetic world's transaction log block by block (:func:`cxresearch.synth.write_transaction_log`).
``rfm`` times the per-customer summary three ways on the same log: the DuckDB queries the notebook uses, the
in-memory path (pandas read + ``merge_same_day`` + ``rfm_summary``) and lifetimes'
``calibration_and_holdout_data``. ``notebook`` runs the whole CLV notebook through the command line against the
pipeline a user would otherwise run: pandas reads the folder, lifetimes builds the calibration/holdout summary
and fits ``BetaGeoFitter``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CAL, HOLD = "2023-06-30", "2023-12-31"

WRITE = """
import json, sys
from cxresearch.synth import write_transaction_log
r = write_transaction_log(sys.argv[1], int(sys.argv[2]), seed=7)
print(json.dumps({k: v for k, v in r.items() if k != "truth"}))
"""

RFM_DUCKDB = """
import json, sys, time
from cxresearch import clv
from cxresearch.io import Ledger
CAL, HOLD = sys.argv[2:4]
t = time.perf_counter()
tx = clv.query_transactions(sys.argv[1], ledger=Ledger(), observation_end=HOLD)
s = tx.frame(clv.rfm_query(tx.query, CAL, HOLD, "weeks"), index="customer_id")
print(json.dumps({"seconds": time.perf_counter() - t, "customers": len(s), "repeat": int(s["frequency"].sum()),
                  "holdout": int(s["holdout"].sum())}))
"""

SUMMARY_ENGINE = """
import json, sys, time
from cxresearch import clv
from cxresearch.io import Ledger
folder, CAL, HOLD, engine = sys.argv[1:5]
t = time.perf_counter()
tx = clv.query_transactions(folder, ledger=Ledger(), observation_end=HOLD, engine=engine, spark_master="local[2]")
s = tx.frame(clv.rfm_query(tx.query, CAL, HOLD, "weeks"), index="customer_id")
r = tx.frame(clv.repeats_query(tx.query, CAL))
print(json.dumps({"seconds": time.perf_counter() - t, "customers": len(s), "repeat": int(s["frequency"].sum()),
                  "holdout": int(s["holdout"].sum()), "recency": float(s["recency"].sum()),
                  "monetary": float(s["monetary"].sum()), "repeat_days": int(r["purchases"].sum())}))
"""

RFM_PANDAS = """
import json, sys, time
import pandas as pd
from cxresearch import clv
CAL, HOLD = sys.argv[2:4]
t = time.perf_counter()
df = pd.read_parquet(sys.argv[1], columns=["customer_id", "timestamp", "amount"])
df = df[(df["amount"] >= 0) & (df["timestamp"] < pd.Timestamp(HOLD) + pd.Timedelta(days=1))]
df["date"] = df["timestamp"].dt.normalize()
s = clv.rfm_summary(clv.merge_same_day(df), CAL, HOLD, "weeks")
print(json.dumps({"seconds": time.perf_counter() - t, "customers": len(s), "repeat": int(s["frequency"].sum()),
                  "holdout": int(s["holdout"].sum())}))
"""

LIFETIMES = """
import json, sys, time
import pandas as pd
from lifetimes import BetaGeoFitter
from lifetimes.utils import calibration_and_holdout_data
CAL, HOLD = sys.argv[2:4]
t = time.perf_counter()
df = pd.read_parquet(sys.argv[1], columns=["customer_id", "timestamp", "amount"])
df = df[df["amount"] >= 0]
s = calibration_and_holdout_data(df, "customer_id", "timestamp", calibration_period_end=CAL,
                                 observation_period_end=HOLD, freq="W")
out = {"summary_seconds": time.perf_counter() - t, "customers": len(s), "repeat": int(s["frequency_cal"].sum())}
if sys.argv[4] == "fit":
    bgf = BetaGeoFitter().fit(s["frequency_cal"], s["recency_cal"], s["T_cal"])
    out["params"] = {k: float(v) for k, v in bgf.params_.items()}
out["seconds"] = time.perf_counter() - t
print(json.dumps(out))
"""


def measured(args: list[str]) -> tuple[dict, float, float]:
    """Run ``args`` under GNU time: (the JSON it printed last, wall seconds, peak memory in MB of the process
    and its children, e.g. the notebook's kernel)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as fh:
        out = subprocess.run(["/usr/bin/time", "-o", fh.name, "-f", "%e %M", *args], capture_output=True,
                             text=True, check=True)
        wall, kb = fh.read().split()[-2:]
    lines = [ln for ln in out.stdout.strip().splitlines() if ln.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), float(wall), int(kb) / 1024


def write(folder: str, n_customers: int) -> None:
    info, wall, peak = measured([sys.executable, "-c", WRITE, folder, str(n_customers)])
    print(f"| {n_customers:,} | {info['rows']:,} | {info['files']:,} | {wall:.0f} | {peak:,.0f} |")


def rfm(folder: str) -> None:
    duck, w_duck, m_duck = measured([sys.executable, "-c", RFM_DUCKDB, folder, CAL, HOLD])
    mem, w_mem, m_mem = measured([sys.executable, "-c", RFM_PANDAS, folder, CAL, HOLD])
    lt, w_lt, m_lt = measured([sys.executable, "-c", LIFETIMES, folder, CAL, HOLD, "summary"])
    assert duck["customers"] == mem["customers"] and duck["repeat"] == mem["repeat"], (duck, mem)
    print("| path | seconds (in process) | wall s | peak MB | customers | repeat purchase days |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r, w, m in (("cxresearch, DuckDB queries (the notebook's path)", duck, w_duck, m_duck),
                          ("cxresearch in memory (pandas + NumPy)", mem, w_mem, m_mem),
                          ("lifetimes `calibration_and_holdout_data`", lt, w_lt, m_lt)):
        print(f"| {name} | {r['seconds']:.1f} | {w:.1f} | {m:,.0f} | {r['customers']:,} | {r['repeat']:,} |")
    print(f"\nlifetimes / DuckDB: {lt['seconds'] / duck['seconds']:.1f}x; "
          f"in memory / DuckDB: {mem['seconds'] / duck['seconds']:.1f}x")


def spark_vs_duckdb(folder: str) -> None:
    runs = {e: measured([sys.executable, "-c", SUMMARY_ENGINE, folder, CAL, HOLD, e]) for e in ("duckdb", "spark")}
    (d, wd, md), (sp, ws, ms) = runs["duckdb"], runs["spark"]
    same = all(d[k] == sp[k] for k in ("customers", "repeat", "holdout", "repeat_days"))
    gap = max(abs(d[k] - sp[k]) / max(abs(d[k]), 1) for k in ("recency", "monetary"))
    print("| engine | seconds (in process) | wall s | peak MB (process and children: the JVM) |\n|---|---:|---:|---:|")
    print(f"| DuckDB | {d['seconds']:.1f} | {wd:.1f} | {md:,.0f} |\n| Spark local[2] | {sp['seconds']:.1f} | {ws:.1f} | "
          f"{ms:,.0f} |")
    print(f"\nsame counts: {same} ({d['customers']:,} customers, {d['repeat']:,} repeat purchase days); largest "
          f"relative gap in summed recency and spend: {gap:.1e}")


def notebook(folder: str, only_ours: bool = False) -> None:
    with tempfile.TemporaryDirectory() as out:
        ours, w_ours, m_ours = measured([str(Path(sys.executable).parent / "cxresearch"), "run",
                                         "customer_lifetime_value", "-p", "transactions_path", folder,
                                         "-p", "calibration_end", CAL, "-p", "holdout_end", HOLD, "--out", out])
        res = json.loads((Path(out) / "customer_lifetime_value" / "results.json").read_text())
        cells = json.loads((Path(out) / "customer_lifetime_value" / "notebook.ipynb").read_text())["cells"]
    slow = sorted(((c["metadata"].get("papermill", {}).get("duration") or 0.0, "".join(c["source"]).splitlines()[0])
                   for c in cells if c["cell_type"] == "code" and c["source"]), reverse=True)[:6]
    m = res["metrics"]
    print(f"cxresearch notebook: status {res['status']}, {w_ours:.0f} s wall, peak {m_ours:,.0f} MB "
          f"(runner + kernel); customers {m.get('n_customers')}; BG/NBD {m.get('bgnbd_params')}")
    print("slowest cells: " + "; ".join(f"{sec:.0f} s `{first[:60]}`" for sec, first in slow))
    print("fits: " + "; ".join(f"{f['model']}: {f['method']}" for f in res.get("fits", [])))
    if only_ours:
        return
    lt, w_lt, m_lt = measured([sys.executable, "-c", LIFETIMES, folder, CAL, HOLD, "fit"])
    print(f"lifetimes pipeline: {w_lt:.0f} s wall (summary {lt['summary_seconds']:.0f} s), peak {m_lt:,.0f} MB; "
          f"customers {lt['customers']:,}; BG/NBD {lt['params']}")
    print(f"lifetimes / cxresearch wall time: {w_lt / w_ours:.1f}x")


if __name__ == "__main__":
    step, folder, *rest = sys.argv[1:]
    if step == "write":
        write(folder, int(rest[0]))
    elif step == "rfm":
        rfm(folder)
    elif step == "spark":
        spark_vs_duckdb(folder)
    else:
        notebook(folder, "--only-cxresearch" in rest)
