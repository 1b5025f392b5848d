"""Notebook regression: every committed notebook re-executed in a fresh kernel agrees with its outputs.

The fresh runs are those of the README's ``run --all`` command (the ``all_reports`` fixture, run once per
session): the runner executes each notebook with its defaults in a kernel of its own, one BLAS thread.

Numbers are compared at 4 significant digits (see ``notebook_compare``), so the suite is green on any
machine, not only where the notebooks were executed. The survey notebook is also run with a different BLAS
thread count to show that the results do not depend on it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from notebook_compare import RESULTS, compare_json, compare_notebooks, compare_text, numbers_close

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def execute(name: str, tmp_path: Path) -> dict:
    import papermill

    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), cwd=str(NOTEBOOKS), kernel_name="python3",
                               progress_bar=False, log_output=False)
    return json.loads(out.read_text(encoding="utf-8"))


def committed(name: str) -> dict:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def payload(nb: dict) -> dict:
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            if RESULTS in o.get("data", {}):
                return o["data"][RESULTS]
    raise AssertionError("no results payload")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_reproduces_its_committed_outputs(name, all_reports):
    fresh = json.loads((all_reports / name / "notebook.ipynb").read_text(encoding="utf-8"))
    problems = compare_notebooks(committed(name), fresh)
    assert not problems, f"{name}: " + "\n".join(problems[:10])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["survey_analysis"])  # the most linear algebra (factor analysis, PLS)
def test_results_do_not_depend_on_the_thread_count(name, tmp_path, monkeypatch):
    for var in THREAD_VARS:
        monkeypatch.setenv(var, "2")
    diff = compare_json(payload(committed(name)), payload(execute(name, tmp_path)), "payload")
    assert diff is None, diff


@pytest.mark.parametrize("name", NAMES)
def test_every_claim_is_honest(name):
    """Estimate inside its own interval, no verdict on missing numbers or on groups under min_group_size."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code"), name
    p = payload(committed(name))
    min_size = declared_default(name, "min_group_size")
    assert p["claims"], name
    for c in p["claims"]:
        if c["verdict"] in ("supported", "not supported", "inconclusive"):
            assert None not in (c["estimate"], c["ci_low"], c["ci_high"]), (name, c)
            assert c["ci_low"] <= c["estimate"] <= c["ci_high"], (name, c)
            assert c.get("n") is not None and c["n"] >= min_size, (name, c)
        else:
            assert c["verdict"] == "not testable" and c.get("note"), (name, c)


@pytest.mark.parametrize("name", NAMES)
def test_no_nan_or_inf_is_shown(name):
    nb = committed(name)
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            texts = ["".join(o.get("text", ""))] + ["".join(v) if isinstance(v, list) else str(v)
                                                    for k, v in o.get("data", {}).items()
                                                    if k in ("text/plain", "text/markdown", "text/html")]
            for t in texts:
                hits = re.findall(r"(?<![\w-])(nan|NaN|inf|-inf|Infinity)(?![\w-])", t)
                assert not hits, f"{name}: {hits} shown in an output: {t[:300]}"


def declared_default(name: str, parameter: str) -> int:
    from cxresearch.params import declared

    p = declared(NOTEBOOKS / f"{name}.ipynb").get(parameter)
    return p.default if p else 5


def test_tolerance_rules():
    assert numbers_close(6.83923, 6.83928) and numbers_close(7.46014, 7.46017)
    assert not numbers_close(6.839, 6.845)
    assert compare_text("alpha 0.885 (n = 1,411)", "alpha 0.884 (n = 1,411)") is None  # last digit on a border
    assert compare_text("alpha 0.885", "alpha 0.875") is not None
    for a, b in (("0 rows excluded", "1 rows excluded"), ("n = 1,411", "n = 1,412"), ("p = 0.04", "p = 0.05"),
                 ("NPS 32", "NPS 33"), ("12%", "13%"), ("until 2024-06-30", "until 2024-06-29")):
        assert compare_text(a, b) is not None, (a, b)  # counts, short numbers and dates are exact
    assert compare_text("segment   9.99  x", "segment  10  x") is None  # 9.99499 and 9.99501 at 3 digits
    assert compare_text("a    0.8845 b", "a 0.8846 b") is None  # column widths do not matter
    assert compare_text("weakest item: loy_1", "weakest item: loy_2") is not None  # words must match
    assert compare_json({"p": 6.83923, "v": "supported"}, {"p": 6.83928, "v": "supported"}) is None
    assert compare_json({"v": "supported"}, {"v": "inconclusive"}) is not None
