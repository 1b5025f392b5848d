"""Data sources: the given files, the synthetic world, the packaged CDNOW sample; the notebook start helper."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from cxresearch import sources


def test_given_files_are_used_alone(tmp_path):
    f = tmp_path / "customers.csv"
    f.write_text("customer_id\nA\n")
    src = sources.resolve({"customers": str(f), "complaints": None}, n_customers=100)
    assert src.paths == {"customers": f} and not src.synthetic and src.truth is None
    assert "complaints" not in src and src.path("complaints") is None and src.defaults == {}
    assert src.description == "the files given as parameters"


def test_without_files_the_synthetic_world_is_used_with_its_own_calendar():
    src = sources.resolve({"customers": None, "complaints": None}, seed=3, n_customers=300)
    assert src.synthetic and set(src.paths) == {"customers", "complaints"}
    assert all(p.exists() for p in src.paths.values())
    assert src.truth.n_customers == 300 and "300 customers, seed 3" in src.description
    assert src.defaults["observation_end"] == str(src.truth.calendar.observation_end)
    assert src.defaults["calibration_end"] < src.defaults["holdout_end"]


def test_the_packaged_cdnow_sample_equals_the_published_file():
    src = sources.cdnow()
    ours = pd.read_csv(src.paths["transactions"], dtype={"customer_id": str})
    assert len(ours) == 6919 and ours["customer_id"].nunique() == 2357
    assert src.defaults == {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30", "currency": "USD"}
    spec = importlib.util.find_spec("lifetimes")
    if spec is None:
        pytest.skip("lifetimes (a test dependency) is not installed")
    raw = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_sample.txt"
    ref = pd.read_csv(raw, sep=r"\s+", header=None, names=["master_id", "customer_id", "date", "cds", "amount"])
    assert (ours["customer_id"] == ref["customer_id"].astype(str)).all()
    assert (pd.to_datetime(ours["timestamp"]) == pd.to_datetime(ref["date"].astype(str), format="%Y%m%d")).all()
    assert (ours["amount"] - ref["amount"]).abs().max() < 1e-9


def test_notebook_start_makes_the_record_and_registers_the_users_labels(tmp_path):
    from cxresearch import notebook
    from cxresearch.display import LABELS, plain, use_labels

    f = tmp_path / "x.csv"
    f.write_text("a\n1\n")
    try:
        results, src = notebook.start("nb", "Title", {"x": str(f)}, min_group_size=7, labels={"wait_time": "Queue"},
                                      currency="EUR", announce=False)
        use_labels({"wait_time": "Waiting"})  # a data dictionary registered later does not override the user
        assert plain("wait_time") == "Queue" and results.min_group_size == 7 and results.currency == "EUR"
        assert src.paths == {"x": f}
    finally:
        LABELS.reset()


def test_notebook_start_falls_back_to_the_otherwise_source_only_without_tables(tmp_path):
    from cxresearch import notebook

    f = tmp_path / "tx.csv"
    f.write_text("customer_id,timestamp,amount\na,2024-01-01,1\n")
    results, src = notebook.start("nb", "Title", None, otherwise=sources.cdnow(), announce=False)
    assert src.description.startswith("the CDNOW sample") and results.currency == "USD"
    results, src = notebook.start("nb", "Title", {"transactions": str(f)}, otherwise=sources.cdnow(), announce=False)
    assert src.paths == {"transactions": f} and results.currency == ""
    assert notebook.start("nb", "Title", None, announce=False)[1] is None


def test_synthetic_defaults_come_from_its_truth():
    src = sources.resolve({"loyalty_members": None}, seed=3, n_customers=300)
    cal, d = src.truth.calendar, src.defaults
    assert (d["pre_end"], d["post_start"]) == ("2024-04", "2024-07") and cal.enrolment_end == "2024-06-30"
    assert d["margin"] == {"randomized": src.truth.loyalty_pilot.margin,
                           "observational": src.truth.loyalty_enrolment.margin}
    assert d["cost_per_member"]["observational"] == src.truth.loyalty_enrolment.cost_per_member_month
