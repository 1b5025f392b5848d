"""Bad-input corpus: files that cannot be read, broken tables, bad parameters, broken study files.

Most cases call the loader or the command line directly (fast); a few run the data_overview notebook end
to end to show the failed or handled report.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxresearch import contracts
from cxresearch.cli import main
from cxresearch.io import InputError, Ledger, read_table

from .conftest import assert_handled, assert_refused, run_case

CSV = "customer_id,timestamp,amount\nc1,2024-01-05,10\nc2,2024-01-06,12.5\n"
CUSTOMERS = "customer_id,signup_date,segment,churn_date\n" + "".join(
    f"c{i},2023-0{1 + i % 9}-1{i % 9},{'AB'[i % 2]},\n" for i in range(30))


def _write(tmp_path: Path, name: str, content: bytes | str | None) -> Path:
    path = tmp_path / name
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- files that cannot be read: (name, content, contract, fragments of the message) ------------------
UNREADABLE = [
    pytest.param("missing.csv", "SKIP", contracts.TRANSACTIONS, ["does not exist", "Fix"], id="missing-file"),
    pytest.param("folder.csv", None, contracts.TRANSACTIONS, ["is a folder", "Fix"], id="directory-as-path"),
    pytest.param("empty.parquet", b"", contracts.TRANSACTIONS, ["empty (0 bytes)", "Fix"], id="zero-byte-parquet"),
    pytest.param("empty.csv", b"", contracts.TRANSACTIONS, ["empty (0 bytes)"], id="zero-byte-csv"),
    pytest.param("blank.csv", "\n\n  \n", contracts.TRANSACTIONS, ["no text"], id="whitespace-only-csv"),
    pytest.param("cut.xlsx", b"PK\x03\x04\x14\x00\x00\x00broken", contracts.TRANSACTIONS,
                 ["not a readable Excel file", "Fix"], id="truncated-excel"),
    pytest.param("bad.parquet", b"PAR1 this is not parquet", contracts.TRANSACTIONS,
                 ["not a readable Parquet file", "Fix"], id="garbage-parquet"),
    pytest.param("image.csv", bytes(range(256)) * 8, contracts.TRANSACTIONS, ["not text", "binary", "Fix"],
                 id="binary-file-named-csv"),
    pytest.param("latin1.csv", "customer_id,timestamp,amount,note\nc1,2024-01-05,10,café crème\n".encode("latin-1"),
                 contracts.TRANSACTIONS, ["Latin-1", "row 2", "UTF-8"], id="latin1-export"),
    pytest.param("cp1252.csv", "customer_id;timestamp;amount;note\nc1;2024-01-05;10;Müller\n".encode("cp1252"),
                 contracts.TRANSACTIONS, ["Latin-1", "UTF-8"], id="windows1252-export"),
    pytest.param("ragged.csv", CSV + "c3,2024-01-07,1,extra,cells\n", contracts.TRANSACTIONS,
                 ["row 4", "separator", "Fix"], id="ragged-row"),
    pytest.param("header.csv", "customer_id,timestamp,amount\n", contracts.TRANSACTIONS, ["no rows"],
                 id="header-only"),
    pytest.param("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, contracts.TRANSACTIONS,
                 ["Fix", "Excel"], id="legacy-xls"),
]


@pytest.mark.parametrize(("name", "content", "contract", "fragments"), UNREADABLE)
def test_unreadable_files_are_refused_with_one_clear_message(tmp_path, name, content, contract, fragments):
    path = tmp_path / name if content == "SKIP" else _write(tmp_path, name, content)
    with pytest.raises(InputError) as err:
        read_table(path, contract, ledger=Ledger())
    text = str(err.value)
    assert name in text and "Traceback" not in text
    for f in fragments:
        assert f in text, (f, text)


# --- readable exports that must be read correctly --------------------------------------------------
READABLE = [
    pytest.param(CSV.encode("utf-16"), id="utf16-with-bom"),
    pytest.param(CSV.encode("utf-16-le"), id="utf16-le-without-bom"),
    pytest.param(CSV.encode("utf-16-be"), id="utf16-be-without-bom"),
    pytest.param(b"\xef\xbb\xbf" + CSV.encode(), id="utf8-with-bom"),
    pytest.param(CSV.replace(",", ";").replace("12.5", "12,5").encode("cp1251"), id="cp1251-semicolon-decimal-comma"),
    pytest.param(CSV.replace(",", "\t").encode(), id="tab-separated"),
    pytest.param(CSV.replace("\n", "\r\n").encode(), id="windows-line-ends"),
]


@pytest.mark.parametrize("content", READABLE)
def test_exports_in_other_encodings_are_read_exactly(tmp_path, content):
    df = read_table(_write(tmp_path, "tx.csv", content), contracts.TRANSACTIONS, ledger=Ledger())
    assert df["customer_id"].tolist() == ["c1", "c2"] and df["amount"].tolist() == [10.0, 12.5]


def test_russian_text_in_cp1251_is_not_mistaken_for_latin1(tmp_path):
    text = "customer_id;signup_date;segment\nК1;01.02.2023;Оптовые клиенты\nК2;02.02.2023;Розница\n"
    df = read_table(_write(tmp_path, "c.csv", text.encode("cp1251")), contracts.CUSTOMERS, ledger=Ledger())
    assert df["segment"].tolist() == ["Оптовые клиенты", "Розница"]


# --- tables that break their contract: (contract, csv text, fragments) ------------------------------
BROKEN = [
    pytest.param(contracts.TRANSACTIONS, "customer_id,timestamp,amount\nc1,2024-01-05,inf\nc2,2024-01-05,-Infinity\n",
                 ["column 'amount'", "infinite", "row 2", "row 3", "Fix"], id="inf-amounts"),
    pytest.param(contracts.TRANSACTIONS, "customer_id,timestamp,amount\nc1,2024-01-05,12 EUR\n",
                 ["column 'amount'", "not numbers", "row 2", "'12 EUR'"], id="amount-with-unit"),
    pytest.param(contracts.TRANSACTIONS, "customer_id,timestamp,amount\nc1,2023-02-30,1\n",
                 ["column 'timestamp'", "not dates", "'2023-02-30'"], id="impossible-date"),
    pytest.param(contracts.TRANSACTIONS, "customer_id,amount\nc1,1\n",
                 ["column 'timestamp'", "missing", "Columns in the file"], id="missing-column"),
    pytest.param(contracts.TRANSACTIONS, "customer_id,timestamp,amount\n,2024-01-05,1\n",
                 ["column 'customer_id'", "empty value", "row 2"], id="empty-key"),
    pytest.param(contracts.CUSTOMERS, "customer_id,signup_date\nc1,2024-01-01\nc1,2024-02-01\n",
                 ["row(s) share a key", "row 2", "row 3"], id="duplicate-customer"),
    pytest.param(contracts.CUSTOMERS, "customer_id,signup_date,churn_date\nc1,2024-05-01,2024-01-01\n",
                 ["'churn_date' is before 'signup_date'", "row 2"], id="churn-before-signup"),
    pytest.param(contracts.COMPLAINTS, "customer_id,opened_at,resolved,hours_to_resolve\nc1,2024-01-01,yes,-3\n",
                 ["column 'hours_to_resolve'", "below the minimum 0"], id="negative-resolution-time"),
    pytest.param(contracts.COMPLAINTS, "customer_id,opened_at,resolved,hours_to_resolve\nc1,2024-01-01,maybe,3\n",
                 ["column 'resolved'", "not yes/no", "'maybe'"], id="resolved-not-yes-no"),
    pytest.param(contracts.SURVEY_RESPONSES, "respondent_id,wave,nps\nr1,one,5\n",
                 ["column 'wave'", "not numbers"], id="wave-not-a-number"),
    pytest.param(contracts.SURVEY_RESPONSES, "respondent_id,wave,nps\nr1,1.5,5\n",
                 ["column 'wave'", "not whole numbers"], id="wave-fractional"),
    pytest.param(contracts.SURVEY_RESPONSES, "respondent_id,wave,nps\nr1,1,11\n",
                 ["column 'nps'", "above the maximum 10"], id="nps-out-of-range"),
    pytest.param(contracts.LOYALTY_PILOT, "customer_id,arm,converted\nc1,control,2\n",
                 ["column 'converted'", "above the maximum 1"], id="converted-not-0-1"),
    pytest.param(contracts.AUDITS, "audit_id,unit,date,criterion,kind,score\na1,u1,2024-01-01,greet,sometimes,1\n",
                 ["column 'kind'", "outside ['binary', 'scale']"], id="audit-kind-unknown"),
]


@pytest.mark.parametrize(("contract", "text", "fragments"), BROKEN)
def test_broken_tables_name_column_rows_and_fix(tmp_path, contract, text, fragments):
    with pytest.raises(InputError) as err:
        read_table(_write(tmp_path, "t.csv", text), contract, ledger=Ledger())
    for f in fragments:
        assert f in str(err.value), (f, str(err.value))


def test_inf_in_a_parquet_float_column_is_refused(tmp_path):
    path = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": ["a", "b"], "timestamp": pd.to_datetime(["2024-01-01"] * 2),
                  "amount": [1.0, np.inf]}).to_parquet(path)
    with pytest.raises(InputError, match="infinite"):
        read_table(path, contracts.TRANSACTIONS, ledger=Ledger())


def test_inf_in_an_extra_numeric_column_is_refused(tmp_path):
    text = "customer_id,signup_date,MonthlyCharges\nc1,2024-01-01,20.5\nc2,2024-01-01,inf\n"
    with pytest.raises(InputError, match="column 'MonthlyCharges'.*infinite.*row 3"):
        read_table(_write(tmp_path, "c.csv", text), contracts.CUSTOMERS, ledger=Ledger())


def test_column_map_naming_an_unknown_contract_column(tmp_path):
    with pytest.raises(InputError, match="the column map names \\['client'\\]"):
        read_table(_write(tmp_path, "t.csv", CSV), contracts.TRANSACTIONS, columns={"client": "customer_id"},
                   ledger=Ledger())


@pytest.mark.parametrize("label", ["Ivan Petrov +7 912 345-67-89", "ivan.petrov@example.com", "Иванова Мария",
                                   "+44 20 7946 0958"])
def test_personal_data_labels_are_pseudonymised_and_flagged(tmp_path, label):
    text = "customer_id,signup_date,segment\n" + "".join(
        f"c{i},2024-01-01,{label if i % 2 else 'Retail'}\n" for i in range(10))
    ledger = Ledger()
    df = read_table(_write(tmp_path, "c.csv", text), contracts.CUSTOMERS, ledger=ledger)
    assert label not in set(df["segment"]) and "label 1 (personal data hidden)" in set(df["segment"])
    assert "Retail" in set(df["segment"]) and any("personal data" in n for n in ledger.notes)


# --- parameters: refused before any cell runs -------------------------------------------------------
BAD_PARAMETERS = [
    pytest.param(["data_overview", "-p", "n_customer", "300"], ["did you mean 'n_customers'"], id="unknown-parameter"),
    pytest.param(["churn_survival", "-p", "horizon", "-1"], ["-p horizon", "greater than 0"], id="negative-horizon"),
    pytest.param(["churn_survival", "-p", "horizon", "0"], ["greater than 0"], id="zero-horizon"),
    pytest.param(["churn_survival", "-p", "horizon", "twelve"], ["not a number", "-p horizon 24"], id="horizon-text"),
    pytest.param(["churn_survival", "-p", "horizon", "inf"], ["not a finite number"], id="horizon-inf"),
    pytest.param(["churn_survival", "-p", "time_unit", "mnths"], ["did you mean 'months'"], id="time-unit-typo"),
    pytest.param(["churn_survival", "-p", "as_of", "2024-02-30"], ["not a real date"], id="impossible-as-of"),
    pytest.param(["churn_survival", "-p", "as_of", "31.12.2024"], ["YYYY-MM-DD"], id="as-of-russian-format"),
    pytest.param(["churn_survival", "-p", "covariates", "[plan, segment"], ["not a YAML list"], id="broken-yaml-list"),
    pytest.param(["churn_survival", "-p", "min_group_size", "0"], ["at least 1"], id="min-group-size-zero"),
    pytest.param(["customer_lifetime_value", "-p", "discount_rate", "-0.1"], ["between 0 and 10"], id="negative-discount"),
    pytest.param(["customer_lifetime_value", "-p", "margin", "30"], ["between 0 and 1"], id="margin-as-percent"),
    pytest.param(["customer_lifetime_value", "-p", "calibration_end", "2024-06-30", "-p", "holdout_end", "2024-01-31"],
                 ["must come after -p calibration_end"], id="holdout-before-calibration"),
    pytest.param(["customer_lifetime_value", "-p", "dataset", "cdnw"], ["did you mean 'cdnow'"], id="dataset-typo"),
    pytest.param(["customer_lifetime_value", "-p", "seed", "7.5"], ["not a whole number"], id="fractional-seed"),
    pytest.param(["loyalty_payoff", "-p", "n_boot", "0"], ["at least 1"], id="zero-bootstrap"),
    pytest.param(["loyalty_payoff", "-p", "design", "quasi"], ["not one of"], id="unknown-design"),
    pytest.param(["loyalty_payoff", "-p", "cost_per_member", "-1"], ["at least 0"], id="negative-cost"),
    pytest.param(["data_overview", "-p", "columns", "[customers]"], ["must be a mapping"], id="columns-not-a-mapping"),
    pytest.param(["data_overview", "-p", "columns", "{customers: [a]}"], ["must be a mapping"],
                 id="columns-inner-not-a-mapping"),
    pytest.param(["data_overview", "-p", "n_customers", "10"], ["at least 100"], id="tiny-world"),
    pytest.param(["data_overview", "-p", "seed", "1", "-p", "seed", "2"], ["given twice"], id="parameter-twice"),
    pytest.param(["survey_analysis", "-p", "min_n", "-5"], ["at least 1"], id="negative-min-n"),
    pytest.param(["focus_groups", "-p", "quotes_per_theme", "-1"], ["at least 0"], id="negative-quotes"),
    pytest.param(["overview"], ["no notebook 'overview'"], id="unknown-notebook"),
    pytest.param(["churn_survival", "-p", "labels", "[plan, segment]"], ["-p labels"], id="labels-not-a-mapping"),
    pytest.param(["customer_lifetime_value", "-p", "currency", "Russian roubles"], ["-p currency", "1 to 8"],
                 id="currency-too-long"),
    pytest.param(["loyalty_payoff", "-p", "covariate_formula", "pre_spend_12m +"], ["-p covariate_formula",
                 "cannot be read", "Wilkinson syntax"], id="formula-broken"),
    pytest.param(["loyalty_payoff", "-p", "covariate_formula", "y ~ pre_spend_12m"], ["right-hand side"],
                 id="formula-with-outcome"),
    pytest.param(["service_audits", "-p", "spark_master", "lokal[2]"], ["-p spark_master", "is not a Spark master",
                 "sc://host:15002"], id="spark-master-typo"),
    pytest.param(["churn_survival", "-p", "spark_master", "sc:/cluster:443/;token=s3cret"],
                 ["is not a Spark master", "sc:/cluster:443/'"], id="connect-url-one-slash"),
    pytest.param(["service_audits", "-p", "engine", "duck"], ["not one of", "did you mean 'duckdb'"],
                 id="engine-typo"),
]


@pytest.mark.parametrize(("argv", "fragments"), BAD_PARAMETERS)
def test_bad_parameters_are_refused_before_anything_runs(tmp_path, capsys, argv, fragments):
    out = tmp_path / "out"
    assert main(["run", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for f in fragments:
        assert f in err, (f, err)
    assert "Traceback" not in err and not out.exists()


def test_zero_jobs_is_refused(capsys):
    assert main(["run", "--all", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


# --- study files ------------------------------------------------------------------------------------
STUDIES = [
    pytest.param("runs:\n  - notebook: data_overview\n   parameters: {seed: 1\n", ["not valid YAML at line"],
                 id="study-yaml-syntax"),
    pytest.param("out: x\n", ["needs a non-empty 'runs:' list"], id="study-without-runs"),
    pytest.param("runs: []\n", ["needs a non-empty 'runs:' list"], id="study-empty-runs"),
    pytest.param("runs:\n  - name: a\n", ["needs at least 'notebook:'"], id="study-run-without-notebook"),
    pytest.param("runs:\n  - notebook: data_overview\n    params: {}\n", ["unknown keys ['params']"],
                 id="study-unknown-key"),
    pytest.param("runs:\n  - notebook: data_overview\n    parameters: [seed, 1]\n", ["must be a mapping"],
                 id="study-parameters-not-a-mapping"),
    pytest.param("runs:\n  - notebook: data_overview\n    parameters: {as_of: 2024-13-01}\n", ["not a real date"],
                 id="study-bad-date"),
    pytest.param("runs:\n  - {name: a, notebook: data_overview}\n  - {name: a, notebook: data_overview}\n",
                 ["names must be unique"], id="study-duplicate-names"),
    pytest.param("runs:\n  - {name: 'a/b', notebook: data_overview}\n  - {name: 'a_b', notebook: data_overview}\n",
                 ["names must be unique"], id="study-names-equal-as-folders"),
    pytest.param("runs:\n  - {name: '...', notebook: data_overview}\n", ["no usable characters"],
                 id="study-name-only-dots"),
    pytest.param(b"runs:\n  - notebook: data_overview # \xff\xfe\n", ["not UTF-8"], id="study-not-utf8"),
]


@pytest.mark.parametrize(("text", "fragments"), STUDIES)
def test_broken_study_files_are_one_clear_line(tmp_path, capsys, text, fragments):
    study = _write(tmp_path, "study.yaml", text)
    assert main(["run", "--config", str(study), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    for f in fragments:
        assert f in err, (f, err)
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_missing_study_file(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_study_file_that_is_a_folder(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path)]) == 2
    assert "it is a folder" in capsys.readouterr().err


def test_typed_study_values_keep_text(tmp_path):
    from cxresearch.runner import read_study, run_many  # noqa: F401

    study = _write(tmp_path, "study.yaml", "runs:\n  - notebook: churn_survival\n    parameters:\n"
                                           "      event_value: Yes\n      as_of: 2024-06-30\n      id_col: 0123\n")
    from cxresearch.params import check
    from cxresearch.runner import notebook_path

    specs, _ = read_study(study)
    typed = check(notebook_path("churn_survival"), specs[0].parameters, specs[0].from_text, tmp_path)
    assert typed == {"event_value": "Yes", "as_of": "2024-06-30", "id_col": "0123"}


# --- end to end: the failed or handled report ---------------------------------------------------------
@pytest.mark.slow
def test_directory_as_customers_path_gives_a_failed_report(tmp_path):
    (tmp_path / "exports").mkdir()
    outcome = run_case("data_overview", {"customers_path": "exports"}, tmp_path)
    assert_refused(outcome, "'customers'", "is a folder", "Fix")


@pytest.mark.slow
def test_binary_transactions_give_a_failed_report(tmp_path):
    _write(tmp_path, "c.csv", CUSTOMERS)
    _write(tmp_path, "tx.csv", os.urandom(2000) + b"\x00")
    outcome = run_case("data_overview", {"customers_path": "c.csv", "transactions_path": "tx.csv"}, tmp_path)
    assert_refused(outcome, "'transactions'", "not text", "Fix")


@pytest.mark.slow
def test_utf16_export_runs_and_hostile_labels_are_inert(tmp_path):
    labels = ["<script>document.body.setAttribute('data-pwned','1')</script>", "Ivan Petrov +7 912 345-67-89",
              "Cost $5 $x^2$ \\frac{a}{b}", "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"]
    table = pd.DataFrame({"customer_id": [f"c{i}" for i in range(40)],
                          "signup_date": [f"2023-0{1 + i % 9}-1{i % 9}" for i in range(40)],
                          "segment": [labels[i % 4] for i in range(40)], "churn_date": ""})
    _write(tmp_path, "c.csv", table.to_csv(index=False).encode("utf-16"))
    outcome = run_case("data_overview", {"customers_path": "c.csv"}, tmp_path)
    assert_handled(outcome, "personal data")
    page = outcome.html
    assert "<script>document" not in page and "<img src=x" not in page
    assert "Ivan Petrov" not in page and "912 345" not in page
    assert "Ivan Petrov" not in json.dumps(outcome.results, ensure_ascii=False)
    assert "Cost $5" in page or "Cost \\$5" in page or "Cost &#36;5" in page


@pytest.mark.slow
def test_small_segments_are_folded_not_shown(tmp_path):
    rows = "".join(f"c{i},2023-02-1{i % 9},{'Big' if i < 30 else 'Tiny'},\n" for i in range(33))
    _write(tmp_path, "c.csv", "customer_id,signup_date,segment,churn_date\n" + rows)
    outcome = run_case("data_overview", {"customers_path": "c.csv"}, tmp_path)
    assert_handled(outcome, "Other (small groups)")
    assert "Tiny" not in outcome.html


@pytest.mark.slow
def test_hostile_labels_do_not_run_in_a_browser(tmp_path):
    from .conftest import assert_inert_in_browser

    payloads = ["<script>document.body.setAttribute('data-pwned','1')</script>",
                "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">",
                "[click](javascript:document.body.setAttribute('data-pwned','1'))",
                "<svg onload=\"document.body.setAttribute('data-pwned','1')\"></svg>"]
    table = pd.DataFrame({"customer_id": [f"c{i}" for i in range(40)],
                          "signup_date": [f"2023-0{1 + i % 9}-1{i % 9}" for i in range(40)],
                          "segment": [payloads[i % 4] for i in range(40)], "churn_date": ""})
    table.to_csv(tmp_path / "c.csv", index=False)
    outcome = run_case("data_overview", {"customers_path": "c.csv", "columns": {"customers": {}}}, tmp_path)
    assert_handled(outcome)
    assert_inert_in_browser(outcome.folder / "report.html")
    assert_inert_in_browser(outcome.folder.parent / "index.html")


def test_the_browser_check_would_catch_a_live_script(tmp_path):
    from .conftest import assert_inert_in_browser

    page = tmp_path / "live.html"
    page.write_text("<html><body><p>x</p><script>document.body.setAttribute('data-pwned','1')</script></body></html>")
    with pytest.raises(AssertionError, match="hostile payload executed"):
        assert_inert_in_browser(page)


@pytest.mark.parametrize("label", ["Cost $5", "$x^2$", "a$b", r"\frac{a}{b} $\alpha", "$$", "50% $ off_{1}^{2}"])
def test_dollar_and_mathtext_labels_do_not_break_plots(tmp_path, label):
    import matplotlib

    matplotlib.use("Agg")
    import cxresearch  # noqa: F401  (sets the style)
    from cxresearch.plots import plot_intervals

    ax = plot_intervals([label, "plain"], [0.2, 0.4], [0.1, 0.3], [0.3, 0.5], title=label, xlabel=label)
    ax.figure.savefig(tmp_path / "fig.png")
    assert ax.get_yticklabels()[0].get_text() in (label, "plain")


# --- a table stored as many Parquet files (a folder or a glob) ---------------------------------------------
def _part(folder: Path, name: str, frame: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / name, index=False)


TX = pd.DataFrame({"customer_id": ["c1", "c2"], "timestamp": ["2024-01-05", "2024-01-06"], "amount": [10.0, 12.5]})


@pytest.mark.parametrize("layout, fragments", [
    ("empty-folder", ["is a folder with no Parquet file in it", "Fix"]),
    ("glob-matches-nothing", ["no Parquet file matches", "Fix"]),
    ("glob-matches-a-csv", ["not Parquet, e.g. b.csv", "Fix"]),
    ("parts-disagree", ["cannot be read as one table", "same columns and types"]),
    ("part-misses-a-column", ["column 'amount' is missing", "Fix"]),
])
def test_parquet_folders_and_globs_are_refused_with_one_clear_message(tmp_path, layout, fragments):
    folder = tmp_path / "tx"
    path: str | Path = folder
    if layout == "empty-folder":
        folder.mkdir()
    elif layout == "glob-matches-nothing":
        path = f"{folder}/*.parquet"
    elif layout == "glob-matches-a-csv":
        _part(folder, "a.parquet", TX)
        (folder / "b.csv").write_text(CSV)
        path = f"{folder}/*"
    elif layout == "parts-disagree":
        _part(folder / "year=2024", "a.parquet", TX)
        _part(folder / "year=2025", "b.parquet", TX.assign(customer_id=[1, 2], amount=["x", "y"]))
    else:
        _part(folder, "a.parquet", TX.drop(columns="amount"))
    with pytest.raises(InputError) as err:
        read_table(path, contracts.TRANSACTIONS, ledger=Ledger())
    text = str(err.value)
    assert str(folder) in text and all(f in text for f in fragments), text
    assert "Traceback" not in text and "pyarrow" not in text.split("(")[0]


def test_clv_run_on_a_parquet_folder_with_disagreeing_parts_is_refused(tmp_path):
    _part(tmp_path / "tx" / "month=01", "a.parquet", TX)
    _part(tmp_path / "tx" / "month=02", "b.parquet", TX.assign(amount=["ten", "twelve"]))
    outcome = run_case("customer_lifetime_value", {"transactions_path": "tx"}, tmp_path)
    assert_refused(outcome, "tx", "cannot be read as one table", "Fix")


def test_clv_run_on_a_parquet_log_with_unreadable_values_names_the_rows_by_key(tmp_path):
    """The engine path checks the contract by queries: the rows are named by their key values, which the
    console shows and the run's files (report, results, saved notebook) hide."""
    from cxresearch.runner import RunSpec, run_notebook

    bad = TX.assign(timestamp=["2024-01-05 10:00", "someday"], amount=[10.0, float("inf")])
    _part(tmp_path / "tx", "a.parquet", bad)
    outcome = run_case("customer_lifetime_value", {"transactions_path": "tx"}, tmp_path)
    assert_refused(outcome, "column 'timestamp': 1 value(s) are not datetimes", "customer_id ‹hidden›",
                   "timestamp 'someday'", "column 'amount': 1 value(s) are not finite numbers", "Fix")
    for name in ("report.html", "results.json", "notebook.ipynb"):
        text = (outcome.folder / name).read_text(encoding="utf-8")
        assert not re.search(r"\bc[12]\b", text), name
    console = run_notebook(RunSpec("customer_lifetime_value", name="again", parameters={"transactions_path": "tx"}),
                           tmp_path / "out", base=tmp_path)["error_detail"]["evalue"]
    assert "customer_id ‹c2›, timestamp 'someday'" in console and "customer_id ‹c2›, amount inf" in console


def test_clv_run_on_an_unreachable_database_is_refused_without_the_password(tmp_path):
    url = f"postgresql://ann:hunter2@/shop?host={tmp_path}&table=tx"
    outcome = run_case("customer_lifetime_value", {"transactions_path": url}, tmp_path)
    assert_refused(outcome, "cannot connect to the PostgreSQL database", "PGPASSWORD", "Fix")
    assert "hunter2" not in outcome.message


def test_churn_run_on_a_parquet_customer_table_with_a_repeated_key_is_refused_without_showing_it(tmp_path):
    """The churn notebook's engine path: a repeated customer key is refused (before the empty covariate), naming the
    table, the column and the rows; the rows' keys show on the console only."""
    from cxresearch.runner import RunSpec, run_notebook

    customers = pd.DataFrame({"customer_id": ["q1", "q2", "q2", "q3", "q4", "q5"],
                              "signup_date": pd.to_datetime(["2023-01-01"] * 6),
                              "churn_date": pd.to_datetime([None, "2023-05-01", None, None, "2023-03-01", None]),
                              "plan": ["a", "b", "a", None, "b", "a"], "segment": ["x", "y"] * 3})
    customers.to_parquet(tmp_path / "customers.parquet", index=False)
    params = {"customers_path": "customers.parquet", "covariates": ["plan"], "as_of": "2023-12-31"}
    outcome = run_case("churn_survival", params, tmp_path)
    assert_refused(outcome, "customers.parquet", "key ['customer_id']: 2 row(s) share a key",
                   "customer_id ‹hidden›", "Fix")
    for name in ("report.html", "results.json", "notebook.ipynb"):
        assert not re.search(r"\bq[1-5]\b", (outcome.folder / name).read_text(encoding="utf-8")), name
    console = run_notebook(RunSpec("churn_survival", name="again", parameters=params), tmp_path / "out",
                           base=tmp_path)["error_detail"]["evalue"]
    assert "customer_id ‹q2› (2 rows)" in console


def test_survey_run_on_a_parquet_customer_table_with_a_repeated_key_is_refused_without_showing_it(tmp_path):
    """The survey's engine path checks every customer, not only those who answered: a repeated key of a customer
    who never answered is refused, naming the table, the column and the rows; the key shows on the console only."""
    import shutil

    from cxresearch.runner import RunSpec, run_notebook
    from cxresearch.synth import ensure_world

    world = ensure_world(n_customers=600, seed=11)
    for name in ("survey_responses", "survey_items"):
        shutil.copy(world[name], tmp_path / f"{name}.csv")
    customers = pd.read_csv(world["customers"], dtype={"customer_id": str}, parse_dates=["signup_date", "churn_date"])
    answered = set(pd.read_csv(world["survey_responses"], dtype={"customer_id": str})["customer_id"])
    silent = customers[~customers["customer_id"].isin(answered)].iloc[[0]]
    pd.concat([customers, silent]).to_parquet(tmp_path / "customers.parquet", index=False, coerce_timestamps="us")
    params = {"responses_path": "survey_responses.csv", "items_path": "survey_items.csv",
              "customers_path": "customers.parquet"}
    outcome = run_case("survey_analysis", params, tmp_path)
    assert_refused(outcome, "customers.parquet", "key ['customer_id']: 2 row(s) share a key", "customer_id ‹hidden›",
                   "Fix")
    key = silent["customer_id"].iloc[0]
    for name in ("report.html", "results.json", "notebook.ipynb"):
        assert key not in (outcome.folder / name).read_text(encoding="utf-8"), name
    console = run_notebook(RunSpec("survey_analysis", name="again", parameters=params), tmp_path / "out",
                           base=tmp_path)["error_detail"]["evalue"]
    assert f"customer_id ‹{key}› (2 rows)" in console


def test_clv_values_path_that_is_not_a_parquet_file_is_refused_before_anything_is_computed(tmp_path):
    outcome = run_case("customer_lifetime_value", {"values_path": "values.csv"}, tmp_path)
    assert_refused(outcome, "-p values_path must name a .parquet file", "values.csv", "out/customer_values.parquet")
    assert not (tmp_path / "values.csv").exists()


AUDIT_CRITERIA = "criterion,kind,weight,must_have\ngreeting,binary,1,yes\nfriendliness,scale,1,no\n"


def test_audit_run_on_a_parquet_table_with_broken_scores_names_the_rows_by_key(tmp_path):
    """The audit table stays in DuckDB: its own rules (0/1 scores, scales, known criteria) run as queries and
    name the rows by their keys, as the contract's rules do."""
    audits = pd.DataFrame({"audit_id": ["a1", "a1", "a2", "a2", "a3"], "unit": ["S1", "S1", "S2", "S2", "S1"],
                           "date": pd.to_datetime(["2024-01-05"] * 5),
                           "criterion": ["greeting", "friendliness", "greeting", "friendliness", "smiling"],
                           "kind": ["binary", "scale", "binary", "scale", "binary"], "score": [3.0, 4, 1, 9, 1],
                           "auditor": ["x"] * 5})
    audits.to_parquet(tmp_path / "audits.parquet", index=False, coerce_timestamps="us")
    (tmp_path / "criteria.csv").write_text(AUDIT_CRITERIA, encoding="utf-8")
    outcome = run_case("service_audits", {"audits_path": "audits.parquet", "criteria_path": "criteria.csv"}, tmp_path)
    assert_refused(outcome, "audits.parquet", "column 'criterion': 1 row(s) name criteria that are not in the "
                   "criteria file (['smiling'])", "column 'score': 1 score(s) of binary criteria are not 0 or 1",
                   "score 3.0", "column 'score': 1 score(s) lie outside their criterion's scale ('friendliness' 1–5)",
                   "score 9.0", "audit_id ‹hidden›", "Fix")


def test_audit_run_on_spark_connect_nobody_answers_at_fails_at_once_without_the_token(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pd.DataFrame({"audit_id": ["a1"], "unit": ["S1"], "date": pd.to_datetime(["2024-01-05"]), "criterion": ["greeting"],
                  "kind": ["binary"], "score": [1.0]}).to_parquet(tmp_path / "a.parquet", coerce_timestamps="us")
    (tmp_path / "criteria.csv").write_text(AUDIT_CRITERIA, encoding="utf-8")
    master = f"sc://127.0.0.1:{port}/;token=s3cret"
    outcome = run_case("service_audits", {"audits_path": "a.parquet", "criteria_path": "criteria.csv",
                                          "engine": "spark", "spark_master": master}, tmp_path)
    assert_refused(outcome, f"spark_master 'sc://127.0.0.1:{port}/': nothing answers at 127.0.0.1:{port}",
                   "Fix: start the server")
    for name in ("report.html", "results.json", "notebook.ipynb"):
        assert "s3cret" not in (outcome.folder / name).read_text(encoding="utf-8"), name
