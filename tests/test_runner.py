"""Runner: parameters checked before execution, failures reported, index page built."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from cxresearch.cli import main
from cxresearch.params import coerce, declared
from cxresearch.results import schema_problems
from cxresearch.runner import ParameterError, RunSpec, read_study, run_many, run_notebook

OK_BODY = """
import cxresearch as cx
results = cx.Results("ok", "A small analysis")
results.metric("n", n, headline=True, label="units")
results.metric("share", cx.interval(0.4, 0.3, 0.5))
results.metric("by_group", {"a": 1.5, "b": {"estimate": 2.0, "ci_low": 1.0, "ci_high": 3.0}})
print("data file:", data_path)
results.claim("effect_positive", "The effect is positive", "made-up interval", 0.4, 0.3, 0.5, 0.01,
              cx.verdict(0.3, 0.5))
results.publish()
"""


def make_notebook(folder: Path, name: str, params: str, cells: list[str], title: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nIntro.\n\n## Section one")]
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells.append(p)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    make_notebook(folder, "ok", "n: \"int\" = 3\ndata_path: \"path | None\" = None", [OK_BODY], "A small analysis")
    make_notebook(folder, "broken", "n = 3", ["x = n * 2", "raise ValueError('column amount is broken')",
                                             "print('never')"], "A broken analysis")
    return folder


def test_values_are_typed_from_the_declaration():
    assert coerce("5", "int", True) == 5 and coerce("0.25", "float", True) == 0.25
    assert coerce("null", "str | None", True) is None
    assert coerce("[plan, region]", "list[str]", True) == ["plan", "region"]
    assert coerce("{hr_complaint_fast: 1.0}", "dict", True) == {"hr_complaint_fast": 1.0}
    assert coerce("data/x.csv", "path | None", True) == "data/x.csv"
    for text in ("Yes", "No", "on", "0123", "2024-06-30", "true"):
        assert coerce(text, "str | None", True) == text  # text stays text
    assert coerce("2024-06-30", "date | None", True) == "2024-06-30"
    assert coerce("[Yes, 0123]", "list[str]", True) == ["Yes", "0123"]


def test_every_notebook_parameter_is_declared_with_a_type():
    from cxresearch.paths import notebooks_dir

    for path in sorted(notebooks_dir().glob("*.ipynb")):
        decl = declared(path)
        assert decl, path
        for p in decl.values():
            assert p.type, (path.stem, p)
            assert coerce(p.default, p.type, False) == p.default, (path.stem, p)


def test_unknown_parameter_fails_before_execution(notebooks, tmp_path):
    out = tmp_path / "reports"
    with pytest.raises(ParameterError, match=r"no parameter 'm'\. Its parameters are: n, data_path"):
        run_many([RunSpec("ok", parameters={"m": 1})], out_dir=out, notebooks=notebooks)
    with pytest.raises(ParameterError, match=r"did you mean 'data_path'"):
        run_many([RunSpec("ok", parameters={"data_pth": "x"})], out_dir=out, notebooks=notebooks)
    assert not out.exists()


def test_unknown_notebook_suggests_a_name(notebooks):
    with pytest.raises(ParameterError, match="Did you mean 'broken'"):
        run_many([RunSpec("brokn")], notebooks=notebooks)


def test_cli_unknown_parameter_exit_code(capsys):
    assert main(["run", "data_overview", "-p", "n_customer", "10", "--out", "/tmp/cx-never"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'n_customers'" in err
    assert not Path("/tmp/cx-never").exists()


def test_run_writes_notebook_report_results(notebooks, tmp_path):
    (tmp_path / "in.csv").write_text("a\n1\n")
    res = run_notebook(RunSpec("ok", parameters={"n": 7, "data_path": "in.csv"}), tmp_path / "out", base=tmp_path,
                       notebooks=notebooks)
    folder = tmp_path / "out" / "ok"
    assert res["status"] == "ok"
    saved = json.loads((folder / "results.json").read_text())
    assert schema_problems(saved) == []
    assert saved["parameters"] == {"n": 7, "data_path": str(tmp_path / "in.csv")}
    assert saved["metrics"]["n"] == 7 and saved["claims"][0]["verdict"] == "supported"
    assert saved["provenance"]["packages"]["pandas"]
    executed = nbformat.read(folder / "notebook.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    html = (folder / "report.html").read_text()
    assert "results.publish()" not in html and "import cxresearch" not in html  # code hidden
    assert "The effect is positive" in html and "supported" in html
    assert 'href="#Section-one"' in html  # table of contents
    assert "<script" not in html and "http://" not in html and "https://" not in html  # works offline


def test_failing_notebook_leaves_partial_outputs_and_others_continue(notebooks, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--all", "--out", str(out), "--notebooks", str(notebooks)])
    assert code == 1
    printed = capsys.readouterr().out
    assert "failed  broken" in printed and "ok  ok" in printed
    broken = json.loads((out / "broken" / "results.json").read_text())
    assert broken["status"] == "failed"
    assert broken["error"]["cell"] == 2 and broken["error"]["ename"] == "ValueError"
    assert schema_problems(broken) == []
    executed = nbformat.read(out / "broken" / "notebook.ipynb", as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    html = (out / "broken" / "report.html").read_text()
    assert "This report is incomplete" in html and "stopped at step 2" in html
    assert "column amount is broken" in html
    assert json.loads((out / "ok" / "results.json").read_text())["status"] == "ok"


def test_index_lists_every_run(notebooks, tmp_path):
    out = tmp_path / "out"
    run_many([RunSpec("ok"), RunSpec("broken"), RunSpec("ok", name="ok_bigger", parameters={"n": 50})],
             out_dir=out, jobs=2, notebooks=notebooks)
    html = (out / "index.html").read_text()
    for text in ("A small analysis", "A broken analysis", "ok_bigger/report.html", "broken/report.html",
                 "ok/results.json", "The effect is positive", "supported", "badge failed", "badge ok",
                 "column amount is broken", "units"):
        assert text in html, text
    assert json.loads((out / "ok_bigger" / "results.json").read_text())["metrics"]["n"] == 50


def test_study_file_runs_named_runs_with_paths_relative_to_it(notebooks, tmp_path):
    study = tmp_path / "studies" / "regions.yaml"
    study.parent.mkdir()
    study.write_text(
        "out: ../by_region\n"
        "runs:\n"
        "  - name: north\n    notebook: ok\n    parameters: {n: 1, data_path: north.csv}\n"
        "  - name: south\n    notebook: ok\n    parameters: {n: 2}\n"
    )
    specs, out = read_study(study)
    assert [s.run_name for s in specs] == ["north", "south"]
    assert specs[0].base == str(tmp_path / "studies")  # relative paths are taken from the study's folder
    assert main(["run", "--config", str(study), "--notebooks", str(notebooks)]) == 0
    north = json.loads((tmp_path / "by_region" / "north" / "results.json").read_text())
    assert north["parameters"]["data_path"] == str(tmp_path / "studies" / "north.csv")
    assert json.loads((tmp_path / "by_region" / "south" / "results.json").read_text())["metrics"]["n"] == 2
    assert (tmp_path / "by_region" / "index.html").exists()


def test_study_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - notebook: ok\n    params: {}\n")
    with pytest.raises(ParameterError, match="unknown keys \\['params'\\]"):
        read_study(bad)


def test_cli_writes_a_world(tmp_path, capsys):
    assert main(["world", "--n-customers", "120", "--seed", "2", "--out", str(tmp_path / "w")]) == 0
    truth = json.loads((tmp_path / "w" / "truth.json").read_text())
    assert truth["n_customers"] == 120 and (tmp_path / "w" / "transactions.csv").exists()
    assert main(["world", "--n-customers", "120", "--out", str(tmp_path / "p"), "--format", "parquet"]) == 0
    assert (tmp_path / "p" / "customers.parquet").exists()


def test_study_values_are_typed_like_the_command_line(notebooks, tmp_path):
    study = tmp_path / "s.yaml"
    study.write_text("runs:\n  - notebook: ok\n    parameters: {n: '7'}\n")
    specs, _ = read_study(study)
    res = run_many(specs, out_dir=tmp_path / "out", notebooks=notebooks)
    assert res[0]["status"] == "ok" and res[0]["parameters"]["n"] == 7


def test_run_names_from_a_study_stay_inside_out(notebooks, tmp_path):
    study = tmp_path / "s.yaml"
    study.write_text("runs:\n  - name: ../../escape\n    notebook: ok\n  - name: 'a/b'\n    notebook: ok\n")
    out = tmp_path / "deep" / "out"
    assert main(["run", "--config", str(study), "--out", str(out), "--notebooks", str(notebooks)]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["a_b", "escape"]
    assert not (tmp_path / "escape").exists() and not (tmp_path / "deep" / "escape").exists()


def test_a_run_folder_in_use_is_refused_not_overwritten(notebooks, tmp_path):
    import fcntl

    target = tmp_path / "out" / "ok"
    target.mkdir(parents=True)
    (target / "results.json").write_text('{"keep": "me"}')
    with open(target / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # another run holds the folder
        res = run_notebook(RunSpec("ok"), tmp_path / "out", notebooks=notebooks)
    assert res["status"] == "failed" and "another run is writing" in res["error"]["evalue"]
    assert json.loads((target / "results.json").read_text()) == {"keep": "me"}


def test_a_runner_failure_still_leaves_a_failed_report(notebooks, tmp_path, monkeypatch):
    import cxresearch.runner as runner

    def broken(*args, **kwargs):
        raise TypeError("Object of type date is not JSON serializable")

    monkeypatch.setattr(runner, "render_report", broken)
    res = run_notebook(RunSpec("ok"), tmp_path / "out", notebooks=notebooks)
    assert res["status"] == "failed" and "not JSON serializable" in res["error"]["evalue"]
    saved = json.loads((tmp_path / "out" / "ok" / "results.json").read_text())
    assert saved["status"] == "failed" and schema_problems(saved) == []


def test_cli_config_errors_are_one_line(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - notebook: ok\n   parameters: {a: 1\n")
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML at line" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_params_and_version(capsys):
    assert main(["params", "churn_survival"]) == 0
    out = capsys.readouterr().out
    assert "event_value" in out and "str | None" in out and "horizon" in out
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and "cxresearch" in capsys.readouterr().out


def test_a_single_run_can_show_a_progress_bar_over_cells(notebooks, tmp_path, capfd):
    assert main(["run", "ok", "--out", str(tmp_path / "out"), "--notebooks", str(notebooks), "--progress"]) == 0
    captured = capfd.readouterr()
    assert "start   ok" in captured.out and "ok      ok (" in captured.out
    assert "Executing" in captured.err and "cell/s" in captured.err


def test_currency_is_checked_like_other_parameters(tmp_path):
    with pytest.raises(ParameterError, match="currency"):
        run_many([RunSpec("customer_lifetime_value", parameters={"currency": "x" * 20})], out_dir=tmp_path)


def test_the_kernel_is_this_interpreter_whatever_path_says(tmp_path, monkeypatch):
    import os
    import sys

    from cxresearch.runner import THREAD_VARS, refresh

    for var in THREAD_VARS:  # refresh() pins them in this process: restore them after the test
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os, sys; print(sys.executable); print(os.environ['OMP_NUM_THREADS'])")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "which.ipynb"
    nbformat.write(nb, path)
    path_before = "/usr/bin" + os.pathsep + "/bin"
    monkeypatch.setenv("PATH", path_before)
    refresh([path])
    printed = nbformat.read(path, as_version=4).cells[0].outputs[0]["text"].split()
    assert printed == [sys.executable, "1"] and os.environ["PATH"] == path_before  # PATH left as it was
