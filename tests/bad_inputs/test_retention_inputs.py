"""Bad-input corpus: the lifetime-value notebook's contractual and discrete settings.

The retention table (``-p retention_path``), a customers table counted into one, and a file of repeat-transaction
patterns are checked by :mod:`cxresearch.retention` directly on tiny tables; one case runs the notebook end to
end with script, ``$`` mathtext and personal data as cohort and plan names and a cohort under the minimum size.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cxresearch import retention, sources
from cxresearch.errors import ParameterError
from cxresearch.io import InputError, Ledger

from .conftest import assert_handled, assert_inert_in_browser

EVIL = "<script>document.body.setAttribute('data-pwned','1')</script>"
MATH = r"$\alpha^{2}$ \frac{1}{0} $"
PERSON = "Ivan Petrov +7 912 345-67-89"


def table(rows: dict[str, list[int]], **extra: list[str]) -> pd.DataFrame:
    """A retention table from {cohort: active by period} (+ per-cohort columns)."""
    out = [{"cohort": c, "period": p, "active": a, **{k: v[i] for k, v in extra.items()}}
           for i, (c, active) in enumerate(rows.items()) for p, a in enumerate(active)]
    return pd.DataFrame(out)


def contracts_of(tmp_path: Path, df: pd.DataFrame, fit_by: str | None = None, **kw) -> retention.Contracts:
    path = tmp_path / "retention.csv"
    df.to_csv(path, index=False)
    return retention.load_contracts(sources.from_files({"retention": path}), Ledger(), fit_by=fit_by, **kw)


GOOD = {"A": [100, 80, 68, 60, 55, 51], "B": [120, 95, 80, 71, 64]}


def test_a_good_table_reads(tmp_path):
    c = contracts_of(tmp_path, table(GOOD))
    assert c.n == 220 and c.groups == [retention.ALL_CUSTOMERS] and c.left_out == 0


@pytest.mark.parametrize(("df", "fragments"), [
    (table(GOOD).drop(columns="active"), ["'active'", "Fix:"]),
    (table({"A": [100, 80, 85, 60]}), ["cohort 'A' gains customers from period 1 to 2", "Fix:"]),
    (table(GOOD).query("not (cohort == 'A' and period == 2)"), ["cohort 'A' skips from period 1 to 3", "Fix:"]),
    (table(GOOD).query("period > 0"), ["cohort 'A' has no period 0", "Fix:"]),
    (pd.concat([table(GOOD), table({"A": [100]})]), ["cohort", "period", "Fix:"]),
    (table(GOOD).assign(active=lambda d: d["active"].astype(float) + 0.5), ["active", "Fix:"]),
    (table(GOOD).assign(active=lambda d: -d["active"]), ["active", "Fix:"]),
])
def test_a_broken_retention_table_is_refused_naming_cohort_and_fix(tmp_path, df, fragments):
    with pytest.raises(InputError) as err:
        contracts_of(tmp_path, df)
    text = str(err.value)
    assert "retention" in text and all(f in text for f in fragments), text


def test_a_fit_by_column_that_is_missing_or_changes_within_a_cohort_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"-p fit_by 'plan' is not a column.*Fix: give 'all', 'cohort'"):
        contracts_of(tmp_path, table(GOOD), fit_by="plan")
    df = table(GOOD, plan=["x", "y"])
    df.loc[df.index[2], "plan"] = "y"  # cohort A switches plan in period 2
    with pytest.raises(InputError, match=r"column 'plan' changes within cohort\(s\) \['A'\].*Fix: one value per cohort"):
        contracts_of(tmp_path, df, fit_by="plan")


def test_small_cohorts_and_groups_are_left_out_and_counted(tmp_path):
    c = contracts_of(tmp_path, table({**GOOD, "tiny": [3, 2, 2]}, plan=["x", "x", "y"]), fit_by="plan",
                     min_group_size=5)
    assert c.groups == ["x"] and c.left_out == 3 and "{left:,} customers" in c.sentence()["template"]
    with pytest.raises(Exception, match="No cohort or group has 500 customers or more"):
        contracts_of(tmp_path, table(GOOD), min_group_size=500)


def test_wrong_periods_and_fit_by_for_a_customers_table_are_refused(tmp_path):
    path = tmp_path / "customers.csv"
    pd.DataFrame({"customer_id": ["a", "b"], "signup_date": ["2024-01-01", "2024-02-01"],
                  "churn_date": ["", "2024-05-01"]}).to_csv(path, index=False)
    source = sources.from_files({"customers": path})
    with pytest.raises(ParameterError, match="a period is weeks, months or years"):
        retention.load_contracts(source, Ledger(), time_unit="days")
    with pytest.raises(ParameterError, match="fit_by cohort fits each signup cohort on its own"):
        retention.load_contracts(source, Ledger(), fit_by="cohort")


def test_nobody_leaving_gives_a_reason_and_an_untestable_claim(tmp_path):
    c = contracts_of(tmp_path, table({"A": [100] * 8, "B": [90] * 7}))
    value = retention.contractual_value(c, None, 5, 0.1, 0.3)
    group = value.groups[0]
    assert group.fit is None and group.cohorts.reason and "0 customers left" in group.cohorts.reason
    claim = value.claims()[0]
    assert claim.verdict == "not testable" and claim.estimate is None
    assert [m["name"] for m in value.metrics()] == ["n_customers"]


def test_impossible_repeat_patterns_are_refused(tmp_path):
    path = tmp_path / "occasions.csv"
    pd.DataFrame({"x": [0, 2, 3], "t_x": [0, 1, 3], "n": [6, 6, 2], "weight": [10, 5, 4]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"columns x, t_x, n: 2 pattern\(s\) are impossible \(row 3, row 4\).*Fix: recount"):
        retention.load_occasions(sources.from_files({"occasions": path}), Ledger())


def test_a_log_whose_customers_all_started_in_the_last_period_has_no_opportunity(tmp_path):
    daily = pd.DataFrame({"customer_id": ["a", "b"], "date": pd.to_datetime(["2024-06-03", "2024-06-20"])})
    occ = retention.occasions_from_log(daily, "months", "2024-06-30")
    assert occ.no_opportunity == 2 and occ.n == 0
    with pytest.raises(ParameterError, match="an occasion is a week, month or year"):
        retention.occasions_from_log(daily, "days", "2024-06-30")


def test_a_cohort_named_after_a_person_is_pseudonymised(tmp_path):
    c = contracts_of(tmp_path, table({f"{PERSON} 2024-01": GOOD["A"], "2024-02": GOOD["B"]}), fit_by="cohort")
    assert "Petrov" not in " ".join(c.groups) and "2024-02" in c.groups and len(c.groups) == 2


def test_parameters_the_setting_does_not_read_are_refused():
    from cxresearch import clv

    clv.check_setting("contractual", fit_by="plan", value_per_period=20.0, calibration_end=None)
    with pytest.raises(ParameterError, match=r"-p holdout_end is not read in the contractual setting \(only in: "
                                             r"noncontractual, discrete\).*Fix"):
        clv.check_setting("contractual", holdout_end="2024-12-31")
    with pytest.raises(ParameterError, match="-p fit_by is not read in the discrete setting"):
        clv.check_setting("discrete", fit_by="plan")


@pytest.mark.slow
def test_notebook_hostile_cohort_and_plan_names(case, tmp_path):
    curves = {"steady": [200, 170, 150, 137, 128, 121, 116, 112, 109],
              "fickle": [220, 160, 126, 105, 92, 83, 77, 72, 69]}
    rows = {f"{EVIL} 2024-01": curves["steady"], f"{MATH} 2024-02": curves["fickle"][:8],
            "2024-03": curves["steady"][:7], f"{PERSON} 2024-04": curves["fickle"][:6], "tiny": [3, 2, 2]}
    df = table(rows, plan=[EVIL, MATH, MATH, PERSON, MATH])
    path = tmp_path / "retention.csv"
    df.to_csv(path, index=False, sep=";", encoding="cp1251")
    out = case("customer_lifetime_value", setting="contractual", retention_path=str(path), time_unit="months",
               fit_by="plan", fit_periods=4)
    assert_handled(out, "3 customers in cohorts or groups smaller than the minimum group size")
    blob = out.html + json.dumps(out.results, ensure_ascii=False)
    assert "Petrov" not in blob and "912 345" not in blob and EVIL not in out.html
    assert_inert_in_browser(out.folder / "report.html")
