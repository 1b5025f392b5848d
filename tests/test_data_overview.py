"""The data-overview notebook end to end: default world, a user's own files, bad input, confidentiality."""

from __future__ import annotations

import hashlib
import json
import re

import pandas as pd
import pytest

from cxresearch.results import schema_problems
from cxresearch.runner import RunSpec, run_notebook
from cxresearch.synth import ensure_world, load_truth


@pytest.fixture(scope="module")
def default_run(all_reports):
    """The default run of the README's run --all (once per session)."""
    folder = all_reports / "data_overview"
    return (json.loads((folder / "results.json").read_text(encoding="utf-8")),
            (folder / "report.html").read_text(encoding="utf-8"))


def test_default_run_is_complete(default_run):
    results, html = default_run
    assert results["status"] == "ok", results.get("error")
    assert schema_problems(results) == []
    assert {c["id"] for c in results["claims"]} == {"cleaning_removes_little", "response_differs_by_segment",
                                                    "respondents_spend_more"}
    tables = {i["table"] for i in results["provenance"]["inputs"]}
    assert {"customers", "transactions", "survey_invitations", "audits"} <= tables
    assert results["metrics"]["rows_excluded"]["transactions"] > 0  # returns and zero rows are counted
    for section in ("What was read", "Missing values", "Rows excluded by cleaning rules", "Who answers the survey?",
                    "Headline figures and claims", "How this report was made"):
        assert section in html
    assert html.count("data:image/png;base64") >= 3  # figures embedded


def test_default_run_speaks_plain_words_with_units(default_run):
    from tests.plain_words import raw_words

    results, html = default_run
    assert raw_words(html) == []
    units = {c["id"]: c["unit"] for c in results["claims"]}
    assert units == {"cleaning_removes_little": "share", "response_differs_by_segment": "pp",
                     "respondents_spend_more": "money"}
    assert results["currency"] == "RUB" and results["units"]["respondent_spend_gap"] == "money"
    truth = load_truth(ensure_world())
    planted = {c["id"]: c["truth"] for c in results["claims"]}["cleaning_removes_little"]
    kinds = truth.purchases.rows_by_kind
    assert planted == pytest.approx((kinds["return"] + kinds["zero_amount"]) / truth.rows["transactions"])
    for plain in ("complaint opened after the observation end", "customer not found in the customers table",
                  "survey answers", "date the customer left", "two year"):
        assert plain in html, plain


def test_default_run_respondents_truth(default_run):
    results, _ = default_run
    truth = load_truth(ensure_world())
    est = results["metrics"]["survey_response_rate"]
    assert est["ci_low"] <= truth.survey.response_rate <= est["ci_high"]


def test_report_shows_no_personal_data_or_code(default_run):
    _, html = default_run
    customers = pd.read_csv(ensure_world()["customers"])
    assert not re.search(r"C\d{7}", html), "customer IDs leaked"
    assert "@example.com" not in html
    assert not any(name in html for name in customers["name"].head(200))
    assert not any(phone in html for phone in customers["phone"].head(200))
    assert "import cxresearch" not in html and "ov.load_inputs" not in html


def test_own_data_cp1251_mapped_columns_and_excel(tmp_path):
    customers = tmp_path / "клиенты.csv"
    customers.write_bytes(
        ("Клиент;Дата регистрации;Сегмент;Дата ухода\n"
         + "".join(f"K{i:03d};{1 + i % 28:02d}.03.2023;{'опт' if i % 3 else 'розница'};"
                   f"{'' if i % 4 else '15.06.2024'}\n" for i in range(40))).encode("cp1251"))
    tx = pd.DataFrame({"customer_id": [f"K{i % 40:03d}" for i in range(120)] + ["UNKNOWN"],
                       "timestamp": pd.date_range("2023-04-01", periods=121, freq="D"),
                       "amount": [12.5] * 118 + [-3.0, 0.0, 7.0]})
    tx.to_excel(tmp_path / "tx.xlsx", index=False)
    res = run_notebook(
        RunSpec("data_overview", parameters={
            "customers_path": "клиенты.csv", "transactions_path": "tx.xlsx",
            "columns": {"customers": {"customer_id": "Клиент", "signup_date": "Дата регистрации",
                                      "segment": "Сегмент", "churn_date": "Дата ухода"}},
            "labels": {"segment": "Сегмент клиента"}, "currency": "EUR",
        }),
        tmp_path / "out", base=tmp_path)
    assert res["status"] == "ok", res.get("error")
    inputs = {i["table"]: i for i in res["provenance"]["inputs"]}
    assert set(inputs) == {"customers", "transactions"}
    assert inputs["customers"]["sha256"] == hashlib.sha256(customers.read_bytes()).hexdigest()
    assert res["metrics"]["n_customers"] == 40
    assert res["metrics"]["rows_excluded"]["transactions"] == 3  # a return, a zero row, an unknown customer
    verdicts = {c["id"]: c["verdict"] for c in res["claims"]}
    assert verdicts["respondents_spend_more"] == "not testable"  # no survey
    html = (tmp_path / "out" / "data_overview" / "report.html").read_text()
    assert "K001" not in html and "survey invitations" in html  # listed as not provided, in words
    assert "By Сегмент клиента" in html and res["currency"] == "EUR"  # the labels and currency parameters


def test_bad_input_gives_a_failed_report_naming_file_column_rows(tmp_path):
    bad = tmp_path / "customers.csv"
    bad.write_text("customer_id,signup_date\nA,2023-01-01\nB,2023-02-30\nC,2023-03-01\n")
    res = run_notebook(RunSpec("data_overview", parameters={"customers_path": str(bad)}), tmp_path / "out")
    assert res["status"] == "failed"
    assert res["error"]["ename"] == "InputError"
    html = (tmp_path / "out" / "data_overview" / "report.html").read_text()
    assert "This report is incomplete" in html
    assert "customers.csv" in html and "signup_date" in html and "row 3" in html and "2023-02-30" in html


def test_verdict_flips_when_the_planted_effect_is_removed(default_run, tmp_path):
    before = {c["id"]: c["verdict"] for c in default_run[0]["claims"]}
    assert before["respondents_spend_more"] == "supported"
    res = run_notebook(RunSpec("data_overview", parameters={
        "effects": {"response_satisfaction": 0.0, "response_purchase": 0.0}}), tmp_path / "out")
    after = {c["id"]: c["verdict"] for c in res["claims"]}
    assert res["status"] == "ok" and after["respondents_spend_more"] != "supported"
