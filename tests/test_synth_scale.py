"""The synthetic world scales to a million customers (about 35 s and 5 GB on 2 cores)."""

import pytest

from cxresearch.synth import make_world


@pytest.mark.slow
def test_million_customers():
    w = make_world(n_customers=1_000_000, seed=11)
    assert len(w["customers"]) == 1_000_000
    assert w["customers"]["customer_id"].is_unique
    assert 3_000_000 < len(w["transactions"]) < 6_000_000
    assert w.truth.rows["survey_responses"] > 50_000
