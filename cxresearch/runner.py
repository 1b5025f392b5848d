"""Run notebooks through papermill and write ``reports/NAME/`` (notebook, report, results)."""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import nbformat
import yaml

from cxresearch import __version__
from cxresearch.paths import notebooks_dir, project_root
from cxresearch.report import render_report, write_index
from cxresearch.results import PROVENANCE_MIME, RESULTS_MIME

PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "lifelines", "matplotlib", "seaborn", "papermill",
            "nbconvert", "pyarrow", "openpyxl")


class ParameterError(ValueError):
    """A run was asked for with parameters the notebook does not have."""


@dataclass
class RunSpec:
    """One run: which notebook, under which output name, with which parameters."""

    notebook: str
    name: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def run_name(self) -> str:
        return self.name or self.notebook


def parse_value(text: str) -> Any:
    """Command-line parameter values are YAML: ``5`` -> 5, ``[plan, region]`` -> list, ``null`` -> None."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def notebook_path(name: str, folder: Path | None = None) -> Path:
    folder = folder or notebooks_dir()
    path = folder / f"{name}.ipynb"
    if not path.exists():
        known = sorted(p.stem for p in folder.glob("*.ipynb"))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ParameterError(f"There is no notebook '{name}' in {folder}.{hint} Notebooks: {', '.join(known)}.")
    return path


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Default parameters of a notebook (its cell tagged 'parameters')."""
    import papermill

    out = {}
    for k, v in papermill.inspect_notebook(str(path)).items():
        text = v.get("default")
        try:
            out[k] = ast.literal_eval(text) if isinstance(text, str) else text
        except (ValueError, SyntaxError):
            out[k] = text
    return out


def check_parameters(path: Path, parameters: dict[str, Any], base: Path) -> dict[str, Any]:
    """Reject unknown parameters and make relative paths absolute (relative to ``base``)."""
    known = notebook_parameters(path)
    unknown = [k for k in parameters if k not in known]
    if unknown:
        lines = []
        for k in unknown:
            close = difflib.get_close_matches(k, list(known), n=1)
            lines.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ParameterError(
            f"Notebook {path.stem} has no parameter {', '.join(lines)}. Its parameters are: {', '.join(known)}."
        )
    out = {}
    for k, v in parameters.items():
        if isinstance(v, str) and (k.endswith("_path") or k.endswith("_dir")) and v:
            v = str((base / v).resolve()) if not Path(v).is_absolute() else v
        out[k] = v
    return out


def git_commit(root: Path | None) -> str:
    if root is None:
        return "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _extract(nb: nbformat.NotebookNode) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    payload, prov = None, {}
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = o.get("data", {})
            if RESULTS_MIME in data:
                payload = data[RESULTS_MIME]
                prov = data.get(PROVENANCE_MIME, {})
    return payload, prov


def _failure(nb: nbformat.NotebookNode | None, exc: BaseException) -> dict[str, Any]:
    """Which cell failed and why (papermill keeps the error in the executed notebook)."""
    info = {"ename": type(exc).__name__, "evalue": str(exc).strip().splitlines()[-1] if str(exc) else ""}
    if nb is None:
        return info
    step = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" not in tags and "injected-parameters" not in tags:
            step += 1
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                return {"cell": step, "ename": o.get("ename", ""), "evalue": o.get("evalue", ""),
                        "source": cell.source}
    return info


def run_notebook(spec: RunSpec, out_dir: str | Path = "reports", base: str | Path | None = None,
                 notebooks: Path | None = None) -> dict[str, Any]:
    """Execute one notebook and write ``notebook.ipynb``, ``report.html`` and ``results.json``.

    Returns the results dictionary (``status`` is ``ok`` or ``failed``); never raises for a failing
    notebook, so that other runs can continue.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    base = Path(base or Path.cwd())
    folder = notebooks or notebooks_dir()
    path = notebook_path(spec.notebook, folder)
    parameters = check_parameters(path, spec.parameters, base)
    target = Path(out_dir) / spec.run_name
    target.mkdir(parents=True, exist_ok=True)
    executed = target / "notebook.ipynb"
    # the kernel must be this interpreter (the one with cxresearch installed)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    started = dt.datetime.now(dt.UTC)
    status, error = "ok", None
    try:
        papermill.execute_notebook(str(path), str(executed), parameters=parameters, cwd=str(folder),
                                   kernel_name="python3", progress_bar=False, log_output=False)
    except PapermillExecutionError as exc:
        status = "failed"
        error = _failure(nbformat.read(executed, as_version=4) if executed.exists() else None, exc)
    except Exception as exc:  # kernel died, timeout, …: still leave a report
        status = "failed"
        error = _failure(nbformat.read(executed, as_version=4) if executed.exists() else None, exc)
    finished = dt.datetime.now(dt.UTC)
    nb = nbformat.read(executed, as_version=4) if executed.exists() else nbformat.v4.new_notebook()
    payload, prov = _extract(nb)
    if payload is None and status == "ok":
        status = "failed"
        error = {"ename": "NoResults", "evalue": "the notebook ran but never called Results.publish()"}
    payload = payload or {}
    results = {
        "notebook": spec.notebook,
        "title": payload.get("title") or _title(nb) or spec.notebook,
        "status": status,
        "parameters": {**notebook_parameters(path), **parameters},
        "provenance": {
            "cxresearch_version": __version__,
            "git_commit": git_commit(project_root(folder)),
            "python": platform.python_version(),
            "packages": package_versions(),
            "inputs": [{**i, "path": _relative(i.get("path", ""), project_root(folder))}
                       for i in prov.get("inputs", [])],
            "started": started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
        },
        "metrics": payload.get("metrics", {}),
        "claims": payload.get("claims", []),
        "headline": payload.get("headline", []),
        "labels": payload.get("labels", {}),
        "units": payload.get("units", {}),
        "exclusions": payload.get("exclusions", []),
        "error": error,
    }
    (target / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (target / "report.html").write_text(render_report(nb, results), encoding="utf-8")
    return results


def _relative(path: str, root: Path | None) -> str:
    try:
        return str(Path(path).resolve().relative_to(root)) if root else path
    except ValueError:
        return path


def _title(nb: nbformat.NotebookNode) -> str | None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def _run_one(args: tuple[RunSpec, str, str, Path | None]) -> dict[str, Any]:
    spec, out_dir, base, notebooks = args
    try:
        return {**run_notebook(spec, out_dir, base, notebooks), "run": spec.run_name}
    except ParameterError as exc:
        return {"notebook": spec.notebook, "run": spec.run_name, "status": "failed",
                "error": {"ename": "ParameterError", "evalue": str(exc)}}


def run_many(specs: list[RunSpec], out_dir: str | Path = "reports", jobs: int = 1,
             base: str | Path | None = None, notebooks: Path | None = None) -> list[dict[str, Any]]:
    """Run several notebooks (in parallel processes when ``jobs`` > 1) and rebuild the index page.

    Parameters are checked for every run before any notebook executes.
    """
    base = str(Path(base or Path.cwd()))
    for spec in specs:
        check_parameters(notebook_path(spec.notebook, notebooks), spec.parameters, Path(base))
    names = [s.run_name for s in specs]
    if len(set(names)) != len(names):
        raise ParameterError(f"Run names must be unique, got {names}.")
    args = [(s, str(out_dir), base, notebooks) for s in specs]
    if jobs > 1 and len(specs) > 1:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_run_one, args))
    else:
        results = [_run_one(a) for a in args]
    write_index(out_dir)
    return results


def all_notebooks(notebooks: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (notebooks or notebooks_dir()).glob("*.ipynb") if not p.stem.startswith("_"))


def read_study(path: str | Path) -> tuple[list[RunSpec], str | None]:
    """Runs listed in a study file; relative paths in it are relative to the file's folder.

    Format::

        out: reports/by_region          # optional
        runs:
          - name: overview_north
            notebook: data_overview
            parameters: {customers_path: north/customers.csv}
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise ParameterError(f"{path}: a study file needs a 'runs:' list (see README).")
    specs = []
    for i, run in enumerate(data["runs"], start=1):
        if not isinstance(run, dict) or "notebook" not in run:
            raise ParameterError(f"{path}: run {i} needs at least 'notebook:'.")
        extra = set(run) - {"name", "notebook", "parameters"}
        if extra:
            raise ParameterError(f"{path}: run {i} has unknown keys {sorted(extra)}; use name, notebook, parameters.")
        params = dict(run.get("parameters") or {})
        for k, v in params.items():
            if isinstance(v, str) and (k.endswith("_path") or k.endswith("_dir")) and v and not Path(v).is_absolute():
                params[k] = str((path.parent / v).resolve())
        specs.append(RunSpec(notebook=run["notebook"], name=run.get("name"), parameters=params))
    out = data.get("out")
    return specs, (str((path.parent / out).resolve()) if out else None)
