"""The synthetic world at scale: a quarter of a million customers in memory (millions are written to Parquet block by
block by benchmarks/bench_clv_scale.py; times and memory in benchmarks/README.md)."""

import pytest

from cxresearch.synth import make_world


@pytest.mark.slow
def test_world_at_scale():
    """A quarter of a million customers in memory (the benchmarks write millions block by block: benchmarks/)."""
    w = make_world(n_customers=250_000, seed=11)
    assert len(w["customers"]) == 250_000
    assert w["customers"]["customer_id"].is_unique
    assert 750_000 < len(w["transactions"]) < 1_500_000
    assert w.truth.rows["survey_responses"] > 12_500
