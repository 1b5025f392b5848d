"""Loaders and validation: one test per rule, each checking the message names file, column, rows and fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cxresearch import contracts
from cxresearch.io import InputError, Ledger, after, read_table, require_items, unlinked


def write(tmp_path: Path, text: str, name: str = "table.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


CUSTOMERS_OK = "customer_id,signup_date,segment,churn_date\nC1,2022-01-05,mass,\nC2,2022-02-01,value,2023-03-01\n"
TX_HEADER = "customer_id,timestamp,amount\n"


def problem(exc: pytest.ExceptionInfo) -> str:
    return str(exc.value)


def test_reads_valid_csv_and_converts_types(tmp_path):
    ledger = Ledger()
    df = read_table(write(tmp_path, CUSTOMERS_OK), contracts.CUSTOMERS, ledger=ledger)
    assert list(df["customer_id"]) == ["C1", "C2"]
    assert df["signup_date"].dtype.kind == "M"
    assert pd.isna(df.loc[0, "churn_date"]) and df.loc[1, "churn_date"] == pd.Timestamp("2023-03-01")
    assert ledger.inputs[0]["rows"] == 2 and len(ledger.inputs[0]["sha256"]) == 64


def test_cp1251_semicolon_and_decimal_comma(tmp_path):
    text = "customer_id;timestamp;amount;комментарий\nК1;05.01.2023 10:00;1 234,50;возврат нет\nК2;06.01.2023 11:30;12,5;да\n"
    path = write(tmp_path, text, encoding="cp1251")
    df = read_table(path, contracts.TRANSACTIONS, ledger=Ledger())
    assert df["amount"].tolist() == [1234.5, 12.5]
    assert df["customer_id"].tolist() == ["К1", "К2"]
    assert df["timestamp"].iloc[0] == pd.Timestamp("2023-01-05 10:00")
    assert df["комментарий"].tolist() == ["возврат нет", "да"]


def test_utf8_bom_tab_separated(tmp_path):
    path = write(tmp_path, "\ufeffcustomer_id\ttimestamp\tamount\nA\t2023-01-01\t1.5\n")
    df = read_table(path, contracts.TRANSACTIONS, ledger=Ledger())
    assert df["amount"].tolist() == [1.5]


def test_parquet_and_excel(tmp_path):
    frame = pd.DataFrame({"customer_id": ["A", "B"], "timestamp": pd.to_datetime(["2023-01-01", "2023-02-01"]),
                          "amount": [10.0, 20.0]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_excel(tmp_path / "t.xlsx", index=False)
    for name in ("t.parquet", "t.xlsx"):
        df = read_table(tmp_path / name, contracts.TRANSACTIONS, ledger=Ledger())
        assert df["amount"].tolist() == [10.0, 20.0]
        assert df["timestamp"].iloc[1] == pd.Timestamp("2023-02-01")


def test_column_map(tmp_path):
    path = write(tmp_path, "client,bought_at,value\nA,2023-01-01,5\n")
    df = read_table(path, contracts.TRANSACTIONS,
                    columns={"customer_id": "client", "timestamp": "bought_at", "amount": "value"}, ledger=Ledger())
    assert df.columns[:3].tolist() == ["customer_id", "timestamp", "amount"]


def test_missing_required_column_names_file_and_fix(tmp_path):
    path = write(tmp_path, "customer_id,timestamp\nA,2023-01-01\n")
    with pytest.raises(InputError) as exc:
        read_table(path, contracts.TRANSACTIONS, ledger=Ledger())
    msg = problem(exc)
    assert str(path) in msg and "'amount'" in msg and "is missing" in msg and "columns={'amount'" in msg


def test_column_map_with_unknown_key(tmp_path):
    with pytest.raises(InputError, match="not columns of the 'transactions' contract"):
        read_table(write(tmp_path, TX_HEADER + "A,2023-01-01,1\n"), contracts.TRANSACTIONS,
                   columns={"amout": "amount"}, ledger=Ledger())


def test_not_a_number_lists_rows(tmp_path):
    path = write(tmp_path, TX_HEADER + "A,2023-01-01,1\nB,2023-01-02,ten\nC,2023-01-03,5 EUR\n")
    with pytest.raises(InputError) as exc:
        read_table(path, contracts.TRANSACTIONS, ledger=Ledger())
    msg = problem(exc)
    assert "column 'amount': 2 value(s) are not numbers" in msg
    assert "row 3: 'ten'" in msg and "row 4: '5 EUR'" in msg and "Fix:" in msg


def test_not_a_whole_number(tmp_path):
    path = write(tmp_path, "respondent_id,wave\nR1,1\nR2,1.5\n")
    with pytest.raises(InputError, match=r"column 'wave': 1 value\(s\) are not whole numbers: row 3"):
        read_table(path, contracts.SURVEY_RESPONSES, ledger=Ledger())


def test_not_a_date(tmp_path):
    path = write(tmp_path, "customer_id,signup_date\nA,2022-01-01\nB,yesterday\n")
    with pytest.raises(InputError, match=r"column 'signup_date': 1 value\(s\) are not dates: row 3: 'yesterday'"):
        read_table(path, contracts.CUSTOMERS, ledger=Ledger())


def test_not_yes_no(tmp_path):
    path = write(tmp_path, "customer_id,opened_at,resolved,hours_to_resolve\nA,2023-01-01,yes,2\nB,2023-01-01,maybe,\n")
    with pytest.raises(InputError, match=r"column 'resolved': 1 value\(s\) are not yes/no: row 3: 'maybe'"):
        read_table(path, contracts.COMPLAINTS, ledger=Ledger())


def test_empty_required_value(tmp_path):
    path = write(tmp_path, "customer_id,signup_date\nA,2022-01-01\n,2022-01-02\n")
    with pytest.raises(InputError, match=r"column 'customer_id': 1 empty value\(s\): row 3"):
        read_table(path, contracts.CUSTOMERS, ledger=Ledger())


def test_below_minimum(tmp_path):
    path = write(tmp_path, "customer_id,opened_at,resolved,hours_to_resolve\nA,2023-01-01,1,-3\n")
    with pytest.raises(InputError, match=r"'hours_to_resolve': 1 value\(s\) below the minimum 0: row 2"):
        read_table(path, contracts.COMPLAINTS, ledger=Ledger())


def test_above_maximum(tmp_path):
    path = write(tmp_path, "respondent_id,wave,nps\nR1,1,9\nR2,1,11\n")
    with pytest.raises(InputError, match=r"column 'nps': 1 value\(s\) above the maximum 10: row 3"):
        read_table(path, contracts.SURVEY_RESPONSES, ledger=Ledger())


def test_value_not_allowed(tmp_path):
    path = write(tmp_path, "audit_id,unit,date,criterion,kind,score,auditor\nA1,S1,2024-01-01,greet,ordinal,1,X\n")
    with pytest.raises(InputError, match=r"column 'kind': 1 value\(s\) outside \['binary', 'scale'\]"):
        read_table(path, contracts.AUDITS, ledger=Ledger())


def test_duplicate_key(tmp_path):
    path = write(tmp_path, "customer_id,signup_date\nA,2022-01-01\nB,2022-01-02\nA,2022-01-03\n")
    with pytest.raises(InputError) as exc:
        read_table(path, contracts.CUSTOMERS, ledger=Ledger())
    assert "key ['customer_id']: 2 row(s) share a key" in problem(exc) and "row 2; row 4" in problem(exc)


def test_dates_out_of_order(tmp_path):
    path = write(tmp_path, "customer_id,signup_date,churn_date\nA,2022-05-01,2022-04-01\n")
    with pytest.raises(InputError, match="'churn_date' is before 'signup_date'"):
        read_table(path, contracts.CUSTOMERS, ledger=Ledger())


def test_empty_table(tmp_path):
    with pytest.raises(InputError, match="the table has no rows"):
        read_table(write(tmp_path, "customer_id,signup_date\n"), contracts.CUSTOMERS, ledger=Ledger())


def test_missing_file_says_which_parameter():
    with pytest.raises(InputError, match="does not exist"):
        read_table("no/such/file.csv", contracts.CUSTOMERS, ledger=Ledger())


def test_all_problems_reported_together(tmp_path):
    path = write(tmp_path, TX_HEADER + "A,notadate,x\n")
    with pytest.raises(InputError) as exc:
        read_table(path, contracts.TRANSACTIONS, ledger=Ledger())
    assert len(exc.value.problems) == 2


def test_contract_exclusions_are_counted_not_silent(tmp_path):
    ledger = Ledger()
    path = write(tmp_path, TX_HEADER + "A,2023-01-01,10\nA,2023-01-02,-10\nB,2023-01-03,0\nB,2023-01-04,3\n")
    df = read_table(path, contracts.TRANSACTIONS, ledger=ledger)
    assert df["amount"].tolist() == [10.0, 3.0]
    ex = ledger.exclusions_frame().set_index("rule")
    assert ex.loc["amount below zero (returns)", "rows_excluded"] == 1
    assert ex.loc["amount below zero (returns)", "example_rows"] == "3"
    assert ex.loc["amount equal to zero", "rows_excluded"] == 1
    assert ex.loc["amount equal to zero", "rows_before"] == 3


def test_after_observation_end_and_unlinked_rules(tmp_path):
    ledger = Ledger()
    path = write(tmp_path, TX_HEADER + "A,2023-01-01,10\nZ,2023-01-02,5\nA,2025-01-01 00:00:01,4\nA,2024-12-31 23:00,1\n")
    df = read_table(path, contracts.TRANSACTIONS, ledger=ledger,
                    exclusions=[unlinked("customer_id", ["A", "B"], "customers"), after("timestamp", "2024-12-31")])
    assert df["amount"].tolist() == [10.0, 1.0]
    counts = ledger.exclusions_frame().set_index("rule")["rows_excluded"]
    assert counts["customer_id not found in the customers table"] == 1
    assert counts["timestamp after the observation end (2024-12-31)"] == 1


def test_resolved_without_time_is_excluded(tmp_path):
    ledger = Ledger()
    path = write(tmp_path, "customer_id,opened_at,resolved,hours_to_resolve\nA,2023-01-01,да,\nB,2023-01-01,нет,\n")
    df = read_table(path, contracts.COMPLAINTS, ledger=ledger)
    assert df["customer_id"].tolist() == ["B"]
    assert ledger.exclusions_frame()["rows_excluded"].sum() == 1


def test_survey_items_checked_against_dictionary():
    items = pd.DataFrame({"item": ["q1", "q2"], "scale_min": [1, 1], "scale_max": [5, 5]})
    with pytest.raises(InputError) as exc:
        require_items(pd.DataFrame({"q1": [1, 6, 3]}), items)
    msg = problem(exc)
    assert "item 'q2'" in msg and "column 'q1': 1 value(s) outside the scale 1..5: row 3: 6" in msg
