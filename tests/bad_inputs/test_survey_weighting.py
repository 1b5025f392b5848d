"""Bad-input corpus: survey margins that do not list a value the respondents have.

A respondent value the margins do not list has no population share: the survey notebook refuses it with
one message naming the margins file, the column, the values and the fix, however few respondents have it
(it is never folded silently into "Other (small groups)" with listed levels). Margins that list an
"Other (small groups)" level themselves are the one place such values may go; the report says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxresearch import survey

from .conftest import assert_handled, assert_refused


def tables(segments: dict[str, int], seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Responses (constructs A, B, satisfaction; NPS; a segment column) and their item dictionary."""
    rng = np.random.default_rng(seed)
    n = sum(segments.values())
    g = rng.normal(size=n)
    spec = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("b2", "B"), ("b3", "B"),
            ("sat_1", "satisfaction"), ("sat_2", "satisfaction")]
    resp = pd.DataFrame({item: np.clip(np.round(3 + 0.8 * g + rng.normal(size=n)), 1, 5) for item, _ in spec})
    resp["nps"] = np.clip(np.round(7 + 2 * g + rng.normal(size=n)), 0, 10)
    resp.insert(0, "respondent_id", [f"R{i:04d}" for i in range(n)])
    resp["segment"] = np.repeat(list(segments), list(segments.values()))
    items = pd.DataFrame({"item": [i for i, _ in spec], "construct": [c for _, c in spec], "kind":
                          ["perception"] * 6 + ["outcome"] * 2, "scale_min": 1, "scale_max": 5})
    return resp, items


def params(tmp_path: Path, margins: pd.DataFrame) -> dict:
    resp, items = tables({"north": 60, "south": 33, "island": 7})
    paths = {}
    for name, df in (("responses", resp), ("items", items), ("margins", margins)):
        paths[name] = tmp_path / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    return {"responses_path": str(paths["responses"]), "items_path": str(paths["items"]),
            "margins_path": str(paths["margins"]), "good_col": None, "bad_col": None,
            "path_model": [["A", "satisfaction"], ["B", "satisfaction"]], "n_boot": 50}


@pytest.mark.slow
def test_survey_respondent_value_missing_from_the_margins_is_refused_not_folded(tmp_path, case):
    margins = pd.DataFrame({"segment": ["north", "south"], "share": [0.6, 0.4]})
    out = case("survey_analysis", **params(tmp_path, margins))
    assert_refused(out, "'margins' (", "margins.csv", "column 'segment'", "values ['island'] that the margins do not "
                   "list (they list ['north', 'south'])", "Fix: add these values to the margins file")


@pytest.mark.slow
def test_survey_unlisted_value_goes_to_the_margins_own_other_level_and_is_said(tmp_path, case):
    margins = pd.DataFrame({"segment": ["north", "south", survey.OTHER], "share": [0.5, 0.4, 0.1]})
    out = case("survey_analysis", **params(tmp_path, margins))
    assert_handled(out, "segment: the margins do not list island; fewer than 30 respondents with these values are "
                        "weighted as the margins")
    assert ">7<" not in out.html  # the unlisted value's small count is shown nowhere
