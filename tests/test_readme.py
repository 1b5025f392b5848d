"""Every command in the README, run verbatim.

The commands are read from the README's ``bash`` blocks and run with ``bash`` in a scratch folder that
holds ``.venv`` (a link to this project's) and input files of the shapes the commands name: the public
files from ``../shared/data/`` when present, otherwise generated ones of the same columns. Only commands
that cannot run inside a test are skipped, each with its reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_browser import (
    check_console_and_requests,
    check_first_screen_and_alt_text,
    check_plain_words,
    needs_chromium,
)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Commands that cannot run inside the test suite verbatim are checked as far as they can be: the make
# targets resolve (make -n; make test is the command running this suite, make install ran before it, and
# make reports runs 'cxresearch run --all --jobs 2', which is run verbatim below), and JupyterLab is
# installed (it starts a server, so it is only asked for its version).
CHECKED_OTHERWISE = {
    "make ": lambda cmd: ["make", "-n", *cmd.split()[1:2]],
    ".venv/bin/jupyter lab": lambda cmd: [str(Path(sys.prefix) / "bin" / "jupyter"), "lab", "--version"],
}


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for cmd in block.replace("\\\n", " ").splitlines():
            if shlex.split(cmd, comments=True):  # bash itself drops the trailing comment
                commands.append(cmd.strip())
    return commands


def study_yaml() -> str:
    return re.search(r"```yaml\n(.*?)```", README, flags=re.S).group(1)


def _telco(path: Path, n: int = 1200) -> None:
    rng = np.random.default_rng(0)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    charges = np.round(rng.uniform(18, 118, n), 2)
    rate = 0.03 * np.where(contract == "Month-to-month", 1.0, np.where(contract == "One year", 0.35, 0.12))
    life, follow = rng.exponential(1 / rate), rng.uniform(0, 72, n)
    pd.DataFrame({"customerID": [f"{i:04d}-ABCDE" for i in range(n)],
                  "tenure": np.ceil(np.minimum(life, follow)).astype(int), "Contract": contract,
                  "MonthlyCharges": charges, "Churn": np.where(life <= follow, "Yes", "No")}).to_csv(path, index=False)


def _sales(path: Path, n: int = 400) -> None:
    """A purchase log from 2023-07 to 2024-12 (buy-till-you-die shaped), columns client, sold_at, total."""
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2023-07-01")
    rows = []
    for i in range(n):
        first = start + pd.Timedelta(days=int(rng.integers(0, 180)))
        rate, life = rng.gamma(0.8, 1 / 20), rng.exponential(400)
        t = 0.0
        while True:
            when = first + pd.Timedelta(days=t)
            if t > life or when > pd.Timestamp("2024-12-31"):
                break
            rows.append({"client": f"K{i:04d}", "sold_at": when.date().isoformat(),
                         "total": round(float(rng.gamma(4, 8)), 2)})
            t += rng.exponential(1 / rate)
    pd.DataFrame(rows).to_csv(path, index=False)


def _retention(path: Path) -> None:
    """A monthly cohort retention table per plan, as a Russian spreadsheet exports it (cp1251, ';')."""
    from cxresearch.synth import contract_cohorts

    parts = []
    for plan, (a, b, seed) in {"Базовый": (0.8, 3.0, 1), "Премиум": (1.2, 9.0, 2)}.items():
        t = contract_cohorts(a, b, 1.0, sizes=(400, 380, 350, 420, 390, 360), periods=18, seed=seed)
        months = {f"cohort {k:02d}": f"2024-{k:02d}" for k in range(1, 7)}
        parts.append(t.assign(cohort=plan + " " + t["cohort"].map(months), plan=plan))
    pd.concat(parts).to_csv(path, index=False, sep=";", encoding="cp1251")


#: what a README run must show beyond running (the published estimates, the planted truth), by run name
def _published_cdnow(m: dict) -> None:
    assert m["n_customers"] == 2357 and m["n_repeat_transactions_holdout"] == 1882
    assert round(m["bgnbd_params"]["r"], 3) == 0.243 and round(m["pareto_nbd_params"]["beta"], 3) == 11.669
    assert set(m["holdout_predicted_repeat_transactions"]) == {"bgnbd", "pareto_nbd", "mbgnbd"}
    assert set(m["mbgnbd_params"]) == {"r", "alpha", "a", "b"} and set(m["mbgnbd_se"]) == {"r", "alpha", "a", "b"}
    assert 0 < m["clv_top10_share"]["estimate"] < 1 and m["clv_total"] > 0


def _published_fader_hardie(m: dict) -> None:
    """Fader & Hardie (2007): sBG on years 0-7 of each cohort, to 3 decimals."""
    published = {"High End": {"alpha": 0.668, "beta": 3.806}, "Regular": {"alpha": 0.704, "beta": 1.182}}
    assert {g: {k: round(v, 3) for k, v in p.items()} for g, p in m["sbg_params"].items()} == published
    assert m["retention_fit_periods"] == {"High End": 7, "Regular": 7}
    assert set(m["bdw_params"]["Regular"]) == {"alpha", "beta", "c"}
    assert set(m["sbg_se"]["High End"]) == {"alpha", "beta"}


def _published_donations(m: dict) -> None:
    """Fader, Hardie & Shang (2010): BG/BB on the 1995 donor cohort."""
    assert {k: round(v, 3) for k, v in m["bgbb_params"].items()} == {"alpha": 1.204, "beta": 0.750, "gamma": 0.657,
                                                                     "delta": 2.783}
    assert round(m["loglik"]["bgbb"], 1) == -33225.6 and m["n_customers"] == 11104


def _world_contracts(m: dict) -> None:
    """The world's contracts: the chosen model projects the held-out months closely; money from value_per_period."""
    (chosen,) = [model for model, used in m["retention_model"].items() if used]
    assert m["retention_holdout_error"][chosen] < 0.05
    assert m["base_value_total"] > 0 and set(m["bdw_params"]) == {"alpha", "beta", "c"}


def _world_occasions(m: dict) -> None:
    """The world's purchases in monthly occasions: the BG/BB expects the held-out months within 10%."""
    assert abs(m["holdout_expected"] / m["holdout_periods_with_transactions"] - 1) < 0.10
    assert set(m["bgbb_params"]) == {"alpha", "beta", "gamma", "delta"} and 0 < m["p_alive_mean"] < 1


def _user_retention(m: dict) -> None:
    """A user's cp1251 table: one fit per plan, keyed by the plan's own name."""
    assert set(m["sbg_params"]) == {"Базовый", "Премиум"} and m["n_customers"] == 2 * (400 + 380 + 350 + 420 + 390 + 360)


RESULT_CHECKS = {"clv_cdnow": _published_cdnow, "clv_fader_hardie": _published_fader_hardie,
                 "clv_donations": _published_donations, "clv_contracts": _world_contracts,
                 "clv_occasions": _world_occasions, "clv_retention": _user_retention}


def _hillstrom(path: Path, n: int = 6000) -> None:
    rng = np.random.default_rng(2)
    arm = rng.choice(["Mens E-Mail", "Womens E-Mail", "No E-Mail"], n)
    recency, history = rng.integers(1, 13, n), np.round(rng.gamma(2, 120, n), 2)
    visit = rng.random(n) < 0.10 + 0.07 * (arm == "Mens E-Mail") + 0.04 * (arm == "Womens E-Mail")
    conversion = visit & (rng.random(n) < 0.1)
    pd.DataFrame({"recency": recency, "history_segment": "x", "history": history, "mens": 1, "womens": 0,
                  "zip_code": "Urban", "newbie": 0, "channel": "Web", "segment": arm, "visit": visit.astype(int),
                  "conversion": conversion.astype(int),
                  "spend": np.where(conversion, np.round(rng.gamma(3, 40, n), 2), 0.0)}).to_csv(path, index=False)


def _ecsi(path: Path, n: int = 250) -> None:
    """ECSI-shaped answers (1-10) driven by one latent satisfaction per block chain."""
    rng = np.random.default_rng(3)
    blocks = {"IMAG": 5, "CUEX": 3, "PERQ": 7, "PERV": 2, "CUSA": 3, "CUSCO": 1, "CUSL": 3}
    latent = {"IMAG": rng.normal(size=n)}
    latent["CUEX"] = 0.5 * latent["IMAG"] + rng.normal(size=n) * 0.8
    latent["PERQ"] = 0.6 * latent["CUEX"] + rng.normal(size=n) * 0.8
    latent["PERV"] = 0.5 * latent["PERQ"] + rng.normal(size=n) * 0.8
    latent["CUSA"] = 0.4 * latent["PERQ"] + 0.3 * latent["PERV"] + 0.2 * latent["IMAG"] + rng.normal(size=n) * 0.6
    latent["CUSCO"] = 0.5 * latent["CUSA"] + rng.normal(size=n) * 0.8
    latent["CUSL"] = 0.6 * latent["CUSA"] + rng.normal(size=n) * 0.7
    cols = {}
    for block, k in blocks.items():
        for j in range(1, k + 1):
            cols[f"{block}{j}"] = np.clip(np.round(7 + 1.5 * latent[block] + rng.normal(size=n)), 1, 10).astype(int)
    pd.DataFrame(cols, index=pd.RangeIndex(1, n + 1)).to_csv(path)


def _items(responses: Path, path: Path) -> None:
    items = list(pd.read_csv(responses, nrows=1).columns[1:])
    kinds = {"CUSA": "outcome", "CUSL": "outcome", "CUSCO": "outcome", "CUEX": "expectation"}
    blocks = [c.rstrip("0123456789") for c in items]
    pd.DataFrame({"item": items, "construct": blocks, "touchpoint": "", "kind": [kinds.get(b, "perception") for b in blocks],
                  "scale_min": 1, "scale_max": 10, "label": items, "reverse": False}).to_csv(path, index=False)


def _exports(folder: Path) -> None:
    """Russian-named customer export, Excel sales, per-region files for the study example, and the tables of
    the section on data that does not fit in memory (Parquet files, a DuckDB file)."""
    from cxresearch.synth import make_world

    world = make_world(n_customers=600, seed=11)
    customers, tx = world["customers"], world["transactions"][["customer_id", "timestamp", "amount"]]
    folder.mkdir()
    renamed = customers.rename(columns={"customer_id": "Клиент", "signup_date": "Дата регистрации"})
    renamed.to_csv(folder / "clients.csv", index=False, sep=";", encoding="cp1251")
    tx.to_excel(folder / "sales.xlsx", index=False)
    _large(world["transactions"], folder)
    world["customers"].to_parquet(folder / "customers.parquet", index=False, coerce_timestamps="us")
    world["complaints"].to_parquet(folder / "complaints.parquet", index=False, coerce_timestamps="us")
    world["loyalty_members"].to_csv(folder / "members.csv", index=False)
    world["loyalty_panel"].to_parquet(folder / "panel.parquet", index=False)
    world["audits"].to_parquet(folder / "audits.parquet", index=False, coerce_timestamps="us")
    world["audit_criteria"].to_csv(folder / "criteria.csv", index=False)
    regions = sorted(customers["region"].unique())
    for name, region in (("north", regions[0]), ("south", regions[1])):
        part = customers[customers["region"] == region]
        part.to_csv(folder / f"{name}_customers.csv", index=False)
        tx[tx["customer_id"].isin(part["customer_id"])].to_excel(folder / f"{name}_tx.xlsx", index=False)


def _large(tx: pd.DataFrame, folder: Path) -> None:
    """The log as Parquet files per year and month, and as a table in a DuckDB file."""
    import ibis

    ts = tx["timestamp"]
    for (year, month), part in tx.groupby([ts.dt.year, ts.dt.month]):
        target = folder / "tx" / f"year={year}" / f"month={month:02d}"
        target.mkdir(parents=True)
        part.to_parquet(target / "part-0.parquet", index=False, coerce_timestamps="us")  # as Spark reads them
    con = ibis.duckdb.connect(str(folder / "shop.duckdb"))
    con.create_table("transactions", tx)
    con.disconnect()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A PostgreSQL server with the synthetic log as ``transactions``, found through PGHOST as the README
    says."""
    import ibis
    import pgserver

    from cxresearch.synth import make_world

    folder = tmp_path_factory.mktemp("pg")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    con = ibis.connect(server.get_uri())
    con.create_table("transactions", make_world(n_customers=600, seed=11)["transactions"][
        ["customer_id", "timestamp", "amount"]])
    con.disconnect()
    before = os.environ.get("PGHOST")
    os.environ["PGHOST"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("PGHOST", None)
    else:
        os.environ["PGHOST"] = before
    server.cleanup()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, postgres) -> Path:
    ws = tmp_path_factory.mktemp("readme")
    (ws / ".venv").symlink_to(Path(sys.prefix))  # the environment running the tests (make test's .venv)
    _telco(ws / "telco.csv")
    _sales(ws / "sales.csv")
    _retention(ws / "retention.csv")
    for name, make in (("hillstrom.csv", _hillstrom), ("ecsi_mobi.csv", _ecsi)):
        if (SHARED / name).exists():
            shutil.copy(SHARED / name, ws / name)
        else:
            make(ws / name)
    _items(ws / "ecsi_mobi.csv", ws / "items.csv")
    _exports(ws / "exports")
    (ws / "study.yaml").write_text(study_yaml(), encoding="utf-8")
    return ws


COMMANDS = readme_commands()
#: commands on tables outside memory (Parquet folders, a DuckDB file, PostgreSQL, Spark): run by
#: tests/test_readme_engines.py, so that pytest-xdist's file-by-file split puts them on the other worker
ENGINE_MARKERS = ("exports/tx", "duckdb://", "postgresql://", ".parquet")
ENGINE_COMMANDS = [c for c in COMMANDS if any(m in c for m in ENGINE_MARKERS)]
MEMORY_COMMANDS = [c for c in COMMANDS if c not in ENGINE_COMMANDS]


def test_the_readme_has_commands():
    assert any(c.startswith(".venv/bin/cxresearch run churn_survival") for c in COMMANDS)
    names = {m for c in COMMANDS for m in re.findall(r"--name (\S+)", c)}
    assert set(RESULT_CHECKS) <= names, set(RESULT_CHECKS) - names  # every check has its README run
    assert any("event_value Yes" in c for c in COMMANDS) and any("calibration_end 2024-06-30" in c for c in COMMANDS)


RUN_ALL = next(c for c in COMMANDS if " run --all" in c)


@pytest.mark.slow
@pytest.mark.parametrize("command", MEMORY_COMMANDS, ids=[c[:60] for c in MEMORY_COMMANDS])
def test_readme_command_runs_verbatim(command, request):
    if command == RUN_ALL:
        request.getfixturevalue("all_reports")
    else:
        run_verbatim(command, request.getfixturevalue("workspace"))


@pytest.mark.slow
@needs_chromium
def test_the_answer_is_on_the_first_screen_and_every_image_has_alt_text(all_reports):
    check_first_screen_and_alt_text(all_reports)


@pytest.mark.slow
@needs_chromium
def test_pages_log_no_console_errors_and_request_nothing(all_reports):
    check_console_and_requests(all_reports)


@pytest.mark.slow
def test_fresh_reports_speak_plain_words(all_reports):
    check_plain_words(all_reports)


def run_verbatim(command: str, workspace: Path) -> None:
    other = next((make for prefix, make in CHECKED_OTHERWISE.items() if command.startswith(prefix)), None)
    if other:
        proc = subprocess.run(other(command), cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return
    before = {p: p.stat().st_mtime for p in workspace.rglob("results.json")}
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(["bash", "-c", command], cwd=workspace, capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, f"{command}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    written = [p for p in workspace.rglob("results.json") if before.get(p) != p.stat().st_mtime]
    if " run " in f" {command} ":
        assert written, "the command wrote no results"
    for path in written:
        res = json.loads(path.read_text(encoding="utf-8"))
        assert res["status"] == "ok", (path, res.get("error"))
        if path.parent.name in RESULT_CHECKS:
            RESULT_CHECKS[path.parent.name](res["metrics"])
