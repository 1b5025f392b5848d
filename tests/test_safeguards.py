"""Shared safeguards: claim rules, convergence retries, tie-breaking, small groups, escaping, privacy."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import cxresearch as cx
from cxresearch.display import escape_md
from cxresearch.fits import FITS, FitError, check_params, fit_with_retries
from cxresearch.privacy import looks_personal, merge_small_groups, pseudonymise_labels, scrub
from cxresearch.stats import pick, stable_sort


def test_claim_rules():
    r = cx.Results("nb", "T", min_group_size=5)
    r.claim("nan", "c", "t", float("nan"), 0.1, 0.2, verdict="supported", n=50)
    r.claim("small", "c", "t", 0.3, 0.1, 0.5, 0.01, verdict="supported", n=3, note="arm B")
    r.claim("ok", "c", "t", 0.3, 0.1, 0.5, 0.01, verdict="supported", n=50)
    by = {c["id"]: c for c in r.claims}
    assert by["nan"]["verdict"] == "not testable" and by["nan"]["estimate"] is None and by["nan"]["note"]
    assert by["small"]["verdict"] == "not testable" and by["small"]["estimate"] is None
    assert by["small"]["note"].startswith("arm B;") and "min_group_size" in by["small"]["note"]
    assert by["ok"]["verdict"] == "supported" and by["ok"]["n"] == 50
    with pytest.raises(ValueError, match="outside its own interval"):
        r.claim("bad", "c", "t", 0.9, 0.1, 0.5, verdict="supported", n=50)


def test_range_verdict():
    assert cx.verdict(0.06, 0.09, within=(0.05, 0.10)) == "supported"
    assert cx.verdict(0.12, 0.30, within=(0.05, 0.10)) == "not supported"
    assert cx.verdict(0.02, 0.08, within=(0.05, 0.10)) == "inconclusive"


def test_fit_with_retries_uses_the_first_converged_setting_and_records_it():
    FITS.reset()

    def diverges():
        warnings.warn("step diverged", type("ConvergenceWarning", (UserWarning,), {}), stacklevel=1)
        return np.array([1.0])

    out = fit_with_retries("toy model", [("fast", diverges), ("nan", lambda: np.array([np.nan])),
                                         ("safe", lambda: np.array([2.0]))], check=check_params)
    assert out.tolist() == [2.0]
    record = FITS.fits[-1]
    assert record["converged"] and record["method"] == "safe" and len(record["failed_attempts"]) == 2
    with pytest.raises(FitError, match="The toy model did not converge.*Fix: rescale"):
        fit_with_retries("toy model", [("a", lambda: np.array([1e9]))], check=check_params, fix="rescale x")
    assert FITS.fits[-1]["converged"] is False and not FITS.all_converged()
    n = len(FITS.fits)
    fit_with_retries("replicate", [("a", lambda: 1.0)], record=False)
    assert len(FITS.fits) == n


def test_ties_are_broken_by_label_on_any_machine():
    a = 0.1132221085
    b = np.nextafter(a, 1)
    assert pick(pd.Series({"loy_2": a, "loy_1": b})) == "loy_1" == pick(pd.Series({"loy_2": b, "loy_1": a}))
    df = pd.DataFrame({"item": ["c", "b", "a"], "w": [0.5, 0.5 + 1e-15, 0.2]})
    assert stable_sort(df, "w", ascending=False, tie="item")["item"].tolist() == ["b", "c", "a"]


def test_small_groups_fold_until_nothing_can_be_subtracted():
    g = pd.Series(["a"] * 20 + ["b"] * 6 + ["c"] * 2 + [None])
    out, folded = merge_small_groups(g, 5)
    assert folded == ["b", "c"] and out.value_counts()["Other (small groups)"] == 8
    assert out.isna().sum() == 1
    same, none = merge_small_groups(pd.Series(["a"] * 5 + ["b"] * 5), 5)
    assert none == [] and same.tolist() == ["a"] * 5 + ["b"] * 5


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", "[x](javascript:alert(1))", "**bold** _i_ `c`",
                                  "$x^2$", "# heading", "| a | b |", "http://evil.example/x", "line\n\n    code"])
def test_escape_md_leaves_no_markup(text):
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    rendered = markdown2html_mistune(f"Label {escape_md(text)} end")
    for tag in ("<script", "<a ", "<strong", "<em", "<code", "<h1", "<table", "<pre"):
        assert tag not in rendered, (text, rendered)


def test_personal_labels_share_one_pseudonym_across_tables():
    mapping: dict[str, str] = {}
    a, n_a = pseudonymise_labels(pd.Series(["Ivan Petrov", "Retail"]), mapping=mapping)
    b, n_b = pseudonymise_labels(pd.Series(["North", "Ivan Petrov"]), mapping=mapping)
    assert n_a == n_b == 1 and a[0] == b[1] == "label 1 (personal data hidden)" and a[1] == "Retail"


@pytest.mark.parametrize("label", ["Pushkin Street", "Rostov Region", "Невский Проспект", "Московская Область",
                                   "SKU 100-200-300", "192.168.100.200", "2024-01-15", "Month-to-month",
                                   "Mens E-Mail", "Premium Plus", "Ivanovo"])
def test_ordinary_labels_are_not_personal(label):
    assert not looks_personal(label)


@pytest.mark.parametrize("label", ["Ivan Petrov", "ПЕТРОВ ИВАН", "Иванов И.И.", "Petrov I.", "89123456789",
                                   "Иванова Мария Петровна", "John Smith", "x@y.ru", "+44 20 7946 0958"])
def test_personal_labels_are_recognised(label):
    assert looks_personal(label)


def test_scrub_keeps_dates_amounts_and_decimals():
    assert scrub("on 2024-06-30 12:00 it cost 1 500 000, ratio 3.1415926") == \
        "on 2024-06-30 12:00 it cost 1 500 000, ratio 3.1415926"
    assert scrub("call 8 (912) 345-67-89 or +7 912 345 67 89") == "call [phone] or [phone]"
