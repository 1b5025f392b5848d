"""No raw variable name, model term or e-notation number reaches a stakeholder.

Each committed notebook (whose outputs ``test_notebooks.py`` keeps equal to a fresh run) is rendered as
its report; the visible text and alt texts before the "How this report was made" appendix must read in
plain words.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from cxresearch.report import render_report
from cxresearch.runner import _extract, notebook_parameters
from tests.plain_words import raw_words

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_reports_speak_plain_words(path):
    nb = nbformat.read(path, as_version=4)
    payload, _ = _extract(nb)
    assert payload is not None, f"{path.name} has no results output: re-execute it (make notebooks)"
    results = {**payload, "status": "ok", "parameters": notebook_parameters(path), "provenance": {}}
    words = raw_words(render_report(nb, results))
    assert not words, f"{path.stem}: a reader sees raw names or e-notation: {words[:8]}"


def test_the_checker_finds_raw_words():
    page = ("<p>Driver perc_call_centre and plan[annual] cost 4.45e+03.</p><img alt='x'>"
            "<h2 id='provenance'>How</h2><table><tr><th>n_boot</th></tr></table>")
    assert [w for _, w, _ in raw_words(page)] == ["perc_call_centre", "plan[annual]", "4.45e+03"]
