"""Survey figures a director reads: plain labels, legends, one answer scale per panel, no overlapping labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cxresearch import survey  # noqa: E402
from cxresearch.display import LABELS, use_labels  # noqa: E402

ITEMS = pd.DataFrame({
    "item": ["perc_website", "perc_call_centre", "emo_valued", "emo_trust", "tan_price", "tan_look"],
    "construct": ["service", "service", "emotional", "emotional", "tangible", "tangible"],
    "touchpoint": ["website", "call_centre", "", "", "", ""], "kind": "perception",
    "scale_min": 1, "scale_max": [7, 7, 5, 5, 5, 5],
    "label": ["How good was the website?", "How good was the call centre?", "I feel valued as a customer",
              "I trust this company", "Prices are clear", "Stores and website look good"],
    "attribute_group": ["touchpoint", "touchpoint", "emotional", "emotional", "tangible", "tangible"]})


@pytest.fixture(autouse=True)
def labels():
    LABELS.reset()
    use_labels(survey.dictionary_labels(ITEMS))
    yield
    LABELS.reset()
    plt.close("all")


def _responses(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.normal(size=n)
    out = {}
    for it in ITEMS.itertuples():
        out[it.item] = np.clip(np.round((it.scale_max + 1) / 2 + g + rng.normal(size=n)), 1, it.scale_max)
    out["nps"] = np.clip(np.round(6 + 2 * g + rng.normal(size=n)), 0, 10)
    return pd.DataFrame(out)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def test_likert_never_mixes_scales_and_has_a_legend_of_answers():
    shares = survey.likert_shares(_responses(), ITEMS)
    assert np.allclose(shares.groupby("item")["share"].sum(), 1.0)
    axes = survey.plot_likert(shares)
    assert len(axes) == 2  # a 1–7 panel and a 1–5 panel
    seven, five = axes
    assert set(_texts(seven)) == {"How good was the website?", "How good was the call centre?"}
    assert set(_texts(five)) == {"I feel valued as a customer", "I trust this company", "Prices are clear",
                                 "Stores and website look good"}
    for ax, k in ((seven, 7), (five, 5)):
        entries = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(entries) == k and entries[0] == "1 (lowest)" and entries[-1] == f"{k} (highest)"
        assert ax.get_title(loc="left") == f"Questions answered on a 1–{k} scale"
    assert seven.get_xlim() == five.get_xlim()  # the panels share one % axis


def test_weighted_likert_shares_follow_the_weights():
    resp = pd.DataFrame({"emo_valued": [1.0, 5.0]})
    shares = survey.likert_shares(resp, ITEMS[ITEMS["item"] == "emo_valued"], np.array([3.0, 1.0]))
    got = shares.set_index("answer")["share"]
    assert got[1] == pytest.approx(0.75) and got[5] == pytest.approx(0.25) and got[3] == 0


def _matrix() -> tuple[survey.IPA, survey.Drivers]:
    resp = _responses()
    inputs = survey.SurveyInputs(resp, ITEMS, None, None, None, None, False, "test",
                                 *survey.usable_items(resp, ITEMS), min_n=30)
    dr = survey.key_drivers_for(inputs, "nps", n_boot=30)
    return survey.ipa(survey.top_box(resp, ITEMS), dr.table), dr


def test_ipa_labels_are_plain_inside_the_axes_and_do_not_overlap():
    matrix, _ = _matrix()
    ax = survey.plot_ipa(matrix)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    texts = [t for t in ax.texts if t.get_text()]
    names = {t.get_text().replace("\n", " ") for t in texts}
    assert {"IMPROVE FIRST", "MAINTAIN", "MONITOR", "POSSIBLE OVERKILL"} <= names
    assert "How good was the call centre?" in names and not any("_" in n for n in names)
    boxes = [t.get_window_extent(renderer) for t in texts]
    for t, b in zip(texts, boxes, strict=True):  # nothing clipped: every label lies inside the axes
        assert axes_box.x0 - 1 <= b.x0 and b.x1 <= axes_box.x1 + 1, t.get_text()
        assert axes_box.y0 - 1 <= b.y0 and b.y1 <= axes_box.y1 + 1, t.get_text()
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    assert ax.get_ylim()[0] == 0  # importance from zero
    lo, hi = ax.get_xlim()
    assert 0 <= lo < hi <= 100 and "% of its scale" in ax.get_xlabel()
    if (lo, hi) != (0, 100):
        assert f"axis shows {lo:.0f}–{hi:.0f} of 0–100" in ax.get_xlabel()
    # the dashed borders are the ones ipa() judged the quadrants by, not recomputed
    borders = {(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ax.get_lines()}
    assert ((matrix.performance_border,) * 2, (0, 1)) in borders
    assert ((0, 1), (100 * matrix.importance_border,) * 2) in borders


def test_driver_and_nps_charts_use_labels_units_and_legends():
    _, dr = _matrix()
    ax = survey.plot_drivers(dr)
    assert "I feel valued as a customer" in _texts(ax) and not any("_" in t for t in _texts(ax))
    assert f"all drivers together: {100 * dr.r2:.0f}%" in ax.get_xlabel()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"service at the touchpoints",
                                                                   "emotional attributes", "tangible attributes"}
    resp = _responses().assign(wave=np.repeat([1, 2], 200))
    by_wave, _ = survey.nps_by(resp, "nps", "wave", None, 30, prefix="wave ")
    ax = survey.plot_nps(by_wave, "label")
    assert set(_texts(ax)) == {"wave 1", "wave 2"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["detractors (0–6)", "passives (7–8)",
                                                                     "promoters (9–10)"]
    assert ax.get_xlim() == (0, 100) and "%" in ax.get_xlabel()
