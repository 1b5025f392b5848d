"""Run notebooks through papermill and write ``reports/NAME/`` (notebook, report, results)."""

from __future__ import annotations

import atexit
import datetime as dt
import difflib
import fcntl
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import nbformat
import yaml

from cxresearch import __version__
from cxresearch.io import hide_keys
from cxresearch.params import ParameterError, check, declared
from cxresearch.paths import atomic_write, notebooks_dir, project_root
from cxresearch.report import render_report, write_index
from cxresearch.schema import PROVENANCE_MIME, RESULTS_MIME
from cxresearch.urls import PASSWORDS_ENV, is_url, passwords_env, stash_passwords

PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "lifelines", "matplotlib", "seaborn", "papermill",
            "nbconvert", "pyarrow", "openpyxl")


# BLAS/OpenMP threads of every kernel: fixed, so that sums are added in the same order on any machine.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class RunSpec:
    """One run: which notebook, under which output name, with which parameters.

    ``from_text``: the parameter values are raw command-line text, typed from the notebook's declaration
    when the run is checked; otherwise they are already parsed (a study file, Python).
    ``base``: the folder relative paths are taken from (default: the current folder).
    """

    notebook: str
    name: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    from_text: bool = False
    base: str | None = None

    @property
    def run_name(self) -> str:
        return safe_name(self.name or self.notebook)


def safe_name(name: str) -> str:
    """A run name usable as one folder name: letters, digits, ``.``, ``_`` and ``-``; nothing else, no ``..``."""
    text = re.sub(r"[^\w.-]+", "_", str(name), flags=re.UNICODE).strip("._")
    if not text:
        raise ParameterError(f"Run name {name!r} has no usable characters; use letters, digits, '_' or '-'.")
    if text.lower() == "index.html":  # the overview page of the output folder
        text += "_"
    return text[:100]


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
    return {k: p.default for k, p in declared(path).items()}


def check_parameters(path: Path, parameters: dict[str, Any], base: Path, from_text: bool = False) -> dict[str, Any]:
    """Typed, range-checked parameters (unknown names and bad values raise :class:`ParameterError`)."""
    return check(path, parameters, from_text, base)


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
                 notebooks: Path | None = None, checked: bool = False, progress: bool = False) -> dict[str, Any]:
    """Execute one notebook and write ``notebook.ipynb``, ``report.html`` and ``results.json``.

    ``progress`` shows papermill's progress bar over the notebook's cells on standard error.

    Returns the results dictionary (``status`` is ``ok`` or ``failed``). Bad parameters raise
    :class:`ParameterError` before anything runs; after that it never raises: whatever goes wrong (the
    notebook, the kernel, writing the outputs) ends in a failed ``results.json`` and report that say why.
    """
    folder = notebooks or notebooks_dir()
    path = notebook_path(spec.notebook, folder)
    base = Path(spec.base or base or Path.cwd())
    parameters = spec.parameters if checked else check_parameters(path, spec.parameters, base, spec.from_text)
    # passwords in table URLs reach the kernel through the environment, never the notebook or the report
    parameters, secrets = stash_passwords(parameters)
    if secrets:
        os.environ[PASSWORDS_ENV] = passwords_env(secrets)
    out_dir = Path(out_dir)
    target = out_dir / spec.run_name
    if out_dir.resolve() not in target.resolve().parents:
        raise ParameterError(f"Run name {spec.name!r} would write outside {out_dir}.")
    target.mkdir(parents=True, exist_ok=True)
    with _lock(target / ".lock") as locked:
        if not locked:
            return _write_failure(spec, path, parameters, target, {
                "ename": "Busy", "evalue": f"another run is writing to {target} right now; give this run another "
                                          "name or --out, or wait for the other run to finish"}, write=False)
        try:
            return _execute(spec, path, parameters, target, folder, progress)
        except Exception as exc:  # the runner itself failed (serialising, writing): still leave a report
            return _write_failure(spec, path, parameters, target, {
                "ename": type(exc).__name__, "evalue": f"the runner failed while writing the outputs: {exc}"})


@contextmanager
def _lock(path: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock on ``path`` (released when the process ends, even on a crash)."""
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@cache
def _ipc_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="cxresearch-kernels-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _kernel_manager_class() -> type:
    """Kernels that talk over local IPC sockets instead of TCP.

    Nothing listens on the network, and ipykernel does not print its "running over TCP without
    encryption" warning into every run's output.
    """
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = str(_ipc_dir() / "kernel")

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            # the kernel's own stderr is not the user's: cell errors reach the notebook and the report, a dead
            # kernel is reported by papermill; left attached, ipykernel's shutdown races (a ZMQError traceback
            # after a finished run) print into the console of a run that succeeded
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super()._async_launch_kernel(kernel_cmd, **kw)

        @property
        def kernel_spec(self) -> Any:
            # the kernel is this interpreter (the one with cxresearch installed), whatever PATH says
            spec = super().kernel_spec
            if spec is not None and spec.argv and spec.argv[0] in ("python", "python3"):
                spec.argv = [sys.executable, *spec.argv[1:]]
            return spec

    return IPCKernelManager


def _execute(spec: RunSpec, path: Path, parameters: dict[str, Any], target: Path, folder: Path,
             progress: bool = False) -> dict[str, Any]:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    executed = target / "notebook.ipynb"
    # fixed BLAS threads in the kernel (the kernel is this interpreter: see _kernel_manager_class)
    threads = os.environ.get("CXRESEARCH_THREADS", "1")
    for var in THREAD_VARS:
        os.environ[var] = threads
    # papermill's own parameter inspection cannot read typed declarations ("path | None") and would warn
    # "Passed unknown parameter" for parameters we have already checked ourselves
    logging.getLogger("papermill").setLevel(logging.ERROR)
    started = dt.datetime.now(dt.UTC)
    status, error = "ok", None
    try:
        papermill.execute_notebook(str(path), str(executed), parameters=parameters, cwd=str(folder),
                                   kernel_name="python3", progress_bar=progress, log_output=False,
                                   kernel_manager_class=_kernel_manager_class())
    except PapermillExecutionError as exc:
        status = "failed"
        error = _failure(nbformat.read(executed, as_version=4) if executed.exists() else None, exc)
    except Exception as exc:  # kernel died, timeout, …: still leave a report
        status = "failed"
        error = _failure(nbformat.read(executed, as_version=4) if executed.exists() else None, exc)
    finished = dt.datetime.now(dt.UTC)
    detail = error  # the full message, for the console
    if error is not None:  # key values (customer IDs) in a message never reach the files of a run
        error = {k: hide_keys(v) if isinstance(v, str) else v for k, v in error.items()}
        if executed.exists():
            _hide_keys_in_notebook(executed)
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
        "provenance": _provenance(folder, prov, started, finished),
        "metrics": payload.get("metrics", {}),
        "claims": payload.get("claims", []),
        "headline": payload.get("headline", []),
        "labels": payload.get("labels", {}),
        "units": payload.get("units", {}),
        "currency": payload.get("currency", ""),
        "exclusions": payload.get("exclusions", []),
        "notes": payload.get("notes", []),
        "fits": payload.get("fits", []),
        "converged": payload.get("converged", True),
        "error": error,
    }
    atomic_write(target / "results.json", json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    atomic_write(target / "report.html", render_report(nb, results))
    return {**results, "error_detail": detail} if detail != error else results


def _hide_keys_in_notebook(path: Path) -> None:
    """The executed notebook's error outputs with key values hidden (:func:`cxresearch.io.hide_keys`)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                out["evalue"] = hide_keys(out.get("evalue", ""))
                out["traceback"] = [hide_keys(line) for line in out.get("traceback", [])]
    atomic_write(path, nbformat.writes(nb))


def _provenance(folder: Path, prov: dict[str, Any], started: dt.datetime, finished: dt.datetime) -> dict[str, Any]:
    root = project_root(folder)
    return {
        "cxresearch_version": __version__,
        "git_commit": git_commit(root),
        "python": platform.python_version(),
        "packages": package_versions(),
        "inputs": [{**i, "path": _relative(i.get("path", ""), root)} for i in prov.get("inputs", [])],
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
    }


def _write_failure(spec: RunSpec, path: Path, parameters: dict[str, Any], target: Path, error: dict[str, Any],
                   write: bool = True) -> dict[str, Any]:
    """A failed run's results (and, unless another run owns the folder, its results.json and report)."""
    now = dt.datetime.now(dt.UTC)
    results = {
        "notebook": spec.notebook, "title": spec.notebook, "status": "failed",
        "parameters": json.loads(json.dumps({**notebook_parameters(path), **parameters}, default=str)),
        "provenance": _provenance(path.parent, {}, now, now),
        "metrics": {}, "claims": [], "headline": [], "labels": {}, "units": {}, "currency": "", "exclusions": [],
        "notes": [],
        "fits": [], "converged": True, "error": error,
    }
    if write:
        try:
            atomic_write(target / "results.json", json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
            atomic_write(target / "report.html", render_report(nbformat.v4.new_notebook(), results))
        except Exception as exc:  # nothing more can be written: the caller still gets the reason
            results["error"]["evalue"] += f" (and the failure report could not be written: {exc})"
    return results


def _relative(path: str, root: Path | None) -> str:
    if is_url(path):
        return path
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


def _run_one(args: tuple[RunSpec, str, str, Path | None, bool]) -> dict[str, Any]:
    spec, out_dir, base, notebooks, progress = args
    t0 = time.monotonic()
    print(f"start   {spec.run_name}", flush=True)
    try:
        res = run_notebook(spec, out_dir, base, notebooks, checked=True, progress=progress)
    except Exception as exc:  # never let one run stop the others
        res = {"notebook": spec.notebook, "status": "failed",
               "error": {"ename": type(exc).__name__, "evalue": str(exc)}}
    print(f"{res.get('status', '?'):<7} {spec.run_name} ({time.monotonic() - t0:.0f} s)", flush=True)
    return {**res, "run": spec.run_name}


def run_many(specs: list[RunSpec], out_dir: str | Path = "reports", jobs: int = 1,
             base: str | Path | None = None, notebooks: Path | None = None,
             progress: bool | None = None) -> list[dict[str, Any]]:
    """Run several notebooks (in parallel processes when ``jobs`` > 1) and rebuild the index page.

    Every run's parameters are typed and checked before any notebook executes; one
    :class:`ParameterError` lists the problems. Each run prints a line when it starts and when it ends
    (with its time); ``progress`` adds a progress bar over cells (default: for a single run when standard
    error is a terminal; parallel runs never draw bars over each other).
    """
    base = str(Path(base or Path.cwd()))
    checked, problems = [], []
    for spec in specs:
        try:
            path = notebook_path(spec.notebook, notebooks)
            params = check_parameters(path, spec.parameters, Path(spec.base or base), spec.from_text)
            checked.append(RunSpec(spec.notebook, spec.name, params, False, spec.base))
        except ParameterError as exc:
            problems.append(f"{spec.run_name}: {exc}" if len(specs) > 1 else str(exc))
    if problems:
        raise ParameterError("\n".join(problems))
    names = [s.run_name.casefold() for s in checked]  # North and north are one folder on macOS and Windows
    if len(set(names)) != len(names):
        dup = sorted({s.run_name for s in checked if names.count(s.run_name.casefold()) > 1})
        raise ParameterError(f"Run names must be unique (as folder names); repeated: {dup}.")
    if progress is None:
        progress = len(checked) == 1 and sys.stderr.isatty()
    bars = bool(progress) and (jobs == 1 or len(checked) == 1)
    args = [(s, str(out_dir), base, notebooks, bars) for s in checked]
    if jobs > 1 and len(checked) > 1:
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

    Parameter values are read as written (``Yes``, ``0123``, ``1.10`` and ``2024-06-30`` stay as text) and
    typed from each notebook's declaration when the runs are checked, exactly as on the command line.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"Study file {path} does not exist{' (it is a folder)' if path.is_dir() else ''}. "
                             "Fix: give the path of a .yaml file with a 'runs:' list.")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}  # noqa: S506 - text only
    except UnicodeDecodeError:
        raise ParameterError(f"Study file {path} is not UTF-8 text. Fix: save it as UTF-8.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParameterError(f"Study file {path} is not valid YAML{where}: {problem}. Fix: check the indentation "
                             "and quoting there (see the README's example).") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or not data["runs"]:
        raise ParameterError(f"{path}: a study file needs a non-empty 'runs:' list (see README).")
    specs = []
    for i, run in enumerate(data["runs"], start=1):
        if not isinstance(run, dict) or "notebook" not in run:
            raise ParameterError(f"{path}: run {i} needs at least 'notebook:'.")
        extra = set(run) - {"name", "notebook", "parameters"}
        if extra:
            raise ParameterError(f"{path}: run {i} has unknown keys {sorted(extra)}; use name, notebook, parameters.")
        params = run.get("parameters") or {}
        if not isinstance(params, dict):
            raise ParameterError(f"{path}: run {i}: 'parameters' must be a mapping, e.g. {{seed: 7}}.")
        name = run.get("name")
        specs.append(RunSpec(notebook=str(run["notebook"]), name=None if name is None else str(name),
                             parameters=dict(params), from_text=True, base=str(path.parent.resolve())))
    out = data.get("out")
    return specs, (str((path.parent / str(out)).resolve()) if out else None)


def refresh(paths: list[str | Path]) -> None:
    """Re-execute notebooks in place with their defaults (``make notebooks``): one BLAS thread, IPC kernels.

    The committed outputs are what ``tests/test_notebooks.py`` compares fresh runs with.
    """
    import papermill

    for var in THREAD_VARS:
        os.environ[var] = os.environ.get("CXRESEARCH_THREADS", "1")
    logging.getLogger("papermill").setLevel(logging.ERROR)
    for path in map(Path, paths):
        t0 = time.monotonic()
        papermill.execute_notebook(str(path), str(path), cwd=str(path.parent), kernel_name="python3",
                                   progress_bar=False, log_output=False, kernel_manager_class=_kernel_manager_class())
        print(f"refreshed {path} ({time.monotonic() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    refresh(sys.argv[1:])
