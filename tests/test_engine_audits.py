"""Service audits in an engine: an audit table in Parquet files or a database is checked by queries (the same
rules and messages as in memory, rows named by their keys) and only its summaries come back — per criterion
(pass rates, scale means), per audit (weighted score, must-have compliance) and the double-scored rows
(auditor agreement) — equal to the in-memory ones (Spark: tests/test_spark.py)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from cxresearch import audits as au
from cxresearch import sources
from cxresearch.io import InputError, Ledger
from cxresearch.runner import RunSpec, run_notebook
from cxresearch.synth import make_world, write_world
from tests.test_databases import postgres, same_results

#: auditor names whose code-point order (Python's) differs from a linguistic collation's: the first auditor
#: of a double-scored audit must be the same everywhere (engine.text_order; pgserver's own collation is
#: C.UTF-8, and its build has no ICU to try another)
AUDITORS = ["anna", "Boris", "élodie", "Zed", "zoë", "Åse", "Ivan", "ivan"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """The world's audit files (CSV) with named auditors, and the audits as Parquet."""
    root = tmp_path_factory.mktemp("audits")
    paths = write_world(make_world(600, seed=11), root)
    audits = pd.read_csv(paths["audits"], dtype={"audit_id": str, "auditor": str})
    codes = sorted(audits["auditor"].dropna().unique())
    audits["auditor"] = audits["auditor"].map(dict(zip(codes, AUDITORS, strict=False)))
    # one double-scored contact by "anna" and "Boris", scored differently: Python takes Boris's score first
    size = audits.groupby(["audit_id", "criterion"])["auditor"].transform("size")
    two = audits[(audits["kind"] == "binary") & (size == 2)]
    first_pair = two.index[(two["audit_id"] == two["audit_id"].iloc[0]) & (two["criterion"] == two["criterion"].iloc[0])]
    audits.loc[first_pair, "auditor"] = ["anna", "Boris"]
    audits.loc[first_pair, "score"] = [1.0, 0.0]
    audits.to_csv(paths["audits"], index=False)
    audits["date"] = pd.to_datetime(audits["date"])
    audits.to_parquet(root / "audits.parquet", index=False, coerce_timestamps="us")
    return {**{k: str(v) for k, v in paths.items()}, "audits.parquet": str(root / "audits.parquet"), "root": root,
            "pair": tuple(audits.loc[first_pair[0], ["audit_id", "criterion"]])}


def audit_tables(path, criteria, engine: str = "duckdb", **args) -> au.AuditTables:
    data = au.load(sources.from_files({"audits": path, "audit_criteria": criteria}), Ledger(), engine=engine, **args)
    assert (data.audits is None) == (engine != "pandas")
    return data.tables


def assert_same_audit_tables(got: au.AuditTables, memory: au.AuditTables) -> None:
    pd.testing.assert_frame_equal(got.by_criterion, memory.by_criterion, check_dtype=False, rtol=1e-12)
    pd.testing.assert_frame_equal(got.by_audit, memory.by_audit, check_dtype=False, rtol=1e-12)
    key = ["audit_id", "criterion", "auditor"]
    a = got.double[memory.double.columns].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, memory.double.sort_values(key).reset_index(drop=True), check_dtype=False)
    assert (got.rows, got.units, got.auditors) == (memory.rows, memory.units, memory.auditors)
    assert len(got.double) > 0 and got.by_audit["must_scored"].gt(0).any()


@pytest.fixture(scope="module")
def pg(tables, tmp_path_factory):
    with postgres(tmp_path_factory.mktemp("pg"),
                  lambda con: con.create_table("audits", pd.read_parquet(tables["audits.parquet"]))) as url:
        yield url


def test_duckdb_and_postgresql_give_the_in_memory_summaries(tables, pg):
    memory = audit_tables(tables["audits"], tables["audit_criteria"], "pandas")
    primary = au.primary_scores(pd.read_csv(tables["audits"], dtype={"audit_id": str, "auditor": str}))
    pair = primary.set_index(["audit_id", "criterion"]).loc[tables["pair"]]
    assert pair[["auditor", "score"]].tolist() == ["Boris", 0.0]  # Boris's 0, not anna's 1
    assert memory.auditors == len(set(AUDITORS) & set(pd.read_csv(tables["audits"])["auditor"]))
    assert_same_audit_tables(audit_tables(tables["audits.parquet"], tables["audit_criteria"]), memory)
    assert_same_audit_tables(audit_tables(pg + "audits", tables["audit_criteria"]), memory)


def bad(tables, tmp_path, change) -> tuple[str, str]:
    """The memory and engine messages for the audit table changed by ``change``."""
    audits = pd.read_parquet(tables["audits.parquet"])
    change(audits)
    audits.to_parquet(tmp_path / "bad.parquet", index=False, coerce_timestamps="us")
    audits.to_csv(tmp_path / "bad.csv", index=False)
    out = []
    for path, engine in ((tmp_path / "bad.csv", "pandas"), (tmp_path / "bad.parquet", "duckdb")):
        with pytest.raises(InputError) as err:
            audit_tables(path, tables["audit_criteria"], engine)
        out.append(str(err.value))
    return out[0], out[1]


def first(audits: pd.DataFrame, kind: str) -> int:
    return int(audits.index[audits["kind"] == kind][0])


@pytest.mark.parametrize("change,message", [
    (lambda a: a.__setitem__("criterion", a["criterion"].where(a.index != 0, "smiling")),
     r"column 'criterion': 1 row\(s\) name criteria that are not in the criteria file \(\['smiling'\]\): "),
    (lambda a: a.loc.__setitem__((first(a, "binary"), "score"), 3),
     r"column 'score': 1 score\(s\) of binary criteria are not 0 or 1: "),
    (lambda a: a.loc.__setitem__((first(a, "scale"), "score"), 9),
     r"column 'score': 1 score\(s\) lie outside their criterion's scale \('\w+' 1–5\): "),
    (lambda a: a.loc.__setitem__((first(a, "scale"), "kind"), "binary"),
     r"column 'kind': 1 row\(s\) differ from their criterion's kind in the criteria file: "),
    (lambda a: a.loc.__setitem__((0, "unit"), "S99"), r"column 'unit': 1 audit\(s\) have more than one unit: "),
])
def test_broken_audits_get_the_in_memory_message_with_keys_for_rows(tables, tmp_path, change, message):
    memory, engine = bad(tables, tmp_path, change)
    assert re.search(message, memory) and re.search(message + "rows? \\d", memory), memory
    assert re.search(message + "audit_id ‹", engine), engine


@pytest.mark.slow
def test_the_audit_notebook_gives_the_csv_numbers_on_parquet(tables, tmp_path):
    runs = {}
    for name, path in (("csv", tables["audits"]), ("parquet", tables["audits.parquet"])):
        parameters = {"audits_path": path, "criteria_path": tables["audit_criteria"],
                      "customers_path": tables["customers"], "n_boot": 200}
        runs[name] = run_notebook(RunSpec("service_audits", parameters=parameters), tmp_path / name)
        assert runs[name]["status"] == "ok", runs[name].get("error")
    same_results(runs["parquet"], runs["csv"])


def test_without_auditors_a_contact_scored_twice_is_refused(tables, tmp_path):
    def twice(a: pd.DataFrame) -> None:
        a.drop(columns="auditor", inplace=True)
        a.drop_duplicates(["audit_id", "criterion"], inplace=True, ignore_index=True)
        a.loc[len(a)] = a.loc[0]

    memory, engine = bad(tables, tmp_path, twice)
    message = r"key \['audit_id', 'criterion'\]: 2 row\(s\) share a key with another row: "
    assert re.search(message + "rows? \\d", memory) and re.search(message + "audit_id ‹", engine), (memory, engine)
    assert "name the auditors (column 'auditor')" in memory and "name the auditors (column 'auditor')" in engine


def test_units_named_by_a_person_get_the_pseudonyms_they_get_in_memory(tables, tmp_path):
    audits = pd.read_parquet(tables["audits.parquet"])
    units = sorted(audits["unit"].unique())
    audits["unit"] = audits["unit"].replace({units[0]: "Ivan Petrov", units[1]: "anna@mail.ru"})
    audits.to_parquet(tmp_path / "a.parquet", index=False, coerce_timestamps="us")
    audits.to_csv(tmp_path / "a.csv", index=False)
    ledgers, got = {}, {}
    for name, path, engine in (("memory", tmp_path / "a.csv", "pandas"), ("duckdb", tmp_path / "a.parquet", "duckdb")):
        ledgers[name] = Ledger()
        source = sources.from_files({"audits": path, "audit_criteria": tables["audit_criteria"]})
        got[name] = au.load(source, ledgers[name], engine=engine).tables
    for name in got:
        shown = set(got[name].by_audit["unit"]) | set(got[name].double["unit"])
        assert "Ivan Petrov" not in shown and "anna@mail.ru" not in shown
        assert "label 2 (personal data hidden)" in set(got[name].by_audit["unit"])
    assert_same_audit_tables(got["duckdb"], got["memory"])
    assert ledgers["duckdb"].notes == ledgers["memory"].notes and ledgers["duckdb"].notes
