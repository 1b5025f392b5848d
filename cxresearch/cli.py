"""Command line: ``cxresearch run``, ``cxresearch params``, ``cxresearch world``, ``cxresearch index``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# jsonschema (imported by nbformat) imports rfc3987_syntax when it is installed (JupyterLab brings it), which
# builds a grammar on import: 1.6 of the 4.4 s this command took to start (python -X importtime). Notebook
# schemas use no "iri" format, the only one it checks, so the command goes without it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from cxresearch import __version__  # noqa: E402
from cxresearch.params import ParameterError, describe  # noqa: E402
from cxresearch.runner import RunSpec, all_notebooks, notebook_path, read_study, run_many  # noqa: E402

EXAMPLES = """examples:
  cxresearch run data_overview -p n_customers 20000 -p seed 7
  cxresearch run churn_survival -p customers_path telco.csv -p duration_col tenure -p event_col Churn \\
      -p event_value Yes -p id_col null -p start_col null -p end_col null -p horizon 12
  cxresearch run customer_lifetime_value -p currency EUR -p labels "{sat_1: overall satisfaction}"
  cxresearch run --all --jobs 2
  cxresearch run --config study.yaml
  cxresearch params churn_survival        (every parameter with its type, default and meaning)

Values are typed from the notebook's declaration: text stays text (Yes, 0123, 2024-06-30), dates are
YYYY-MM-DD, lists and mappings are YAML ('[plan, region]', '{a: 1}'), null means none."""


def _notebook_list() -> str:
    try:
        return "notebooks: " + ", ".join(all_notebooks())
    except FileNotFoundError:
        return ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxresearch", description="CX research suite: run the notebooks, "
                                     "get reports with tested claims.", epilog=_notebook_list(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cxresearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run notebooks and write reports", epilog=f"{_notebook_list()}\n\n{EXAMPLES}",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("name", nargs="?", help="notebook name, e.g. data_overview")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                     help="notebook parameter, typed from the notebook's declaration (see 'cxresearch params NAME')")
    run.add_argument("--out", help="output folder (default: the study file's 'out', else reports)")
    run.add_argument("--all", action="store_true", help="run every notebook with its defaults")
    run.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel (default: 1)")
    run.add_argument("--config", help="study file (YAML) listing named runs with their parameters")
    run.add_argument("--name", dest="run_name", help="output folder name of a single run (default: the notebook)")
    run.add_argument("--notebooks", type=Path, help="folder of notebooks (default: the project's notebooks/)")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="a progress bar over each notebook's cells (default: on for a single run in a terminal)")
    params = sub.add_parser("params", help="list a notebook's parameters with types, defaults and meaning")
    params.add_argument("name", help="notebook name")
    params.add_argument("--notebooks", type=Path, help="folder of notebooks (default: the project's notebooks/)")
    world = sub.add_parser("world", help="write the synthetic world as files")
    world.add_argument("--n-customers", type=int, default=5000)
    world.add_argument("--seed", type=int, default=20240101)
    world.add_argument("--out", default="data/synthetic/default")
    world.add_argument("--format", choices=("csv", "parquet"), default="csv")
    index = sub.add_parser("index", help="rebuild reports/index.html")
    index.add_argument("--out", default="reports")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # a folder that cannot be written, a broken file: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace) -> int:
    if args.command == "world":
        from cxresearch.synth import make_world, write_world

        if args.n_customers < 100:
            raise ParameterError("--n-customers must be at least 100.")
        paths = write_world(make_world(args.n_customers, args.seed), args.out, args.format)
        print(f"wrote {len(paths)} tables and truth.json to {args.out}")
        return 0
    if args.command == "index":
        from cxresearch.report import write_index

        print(write_index(args.out))
        return 0
    if args.command == "params":
        print(describe(notebook_path(args.name, args.notebooks)))
        return 0
    out = args.out or "reports"
    if args.jobs < 1:
        raise ParameterError("--jobs must be at least 1.")
    if args.config:
        if args.name or args.all or args.parameter or args.run_name:
            raise ParameterError("Give either --config, --all or a notebook name, not several (a study file names "
                                 "its runs itself).")
        specs, config_out = read_study(args.config)
        out = args.out or config_out or "reports"
    elif args.all:
        if args.name or args.parameter or args.run_name:
            raise ParameterError("--all runs every notebook with its defaults; it takes no name, --name or -p.")
        specs = [RunSpec(n) for n in all_notebooks(args.notebooks)]
    elif args.name:
        given = {}
        for key, value in args.parameter:
            if key in given:
                raise ParameterError(f"-p {key} is given twice.")
            given[key] = value
        specs = [RunSpec(args.name, name=args.run_name, parameters=given, from_text=True)]
    else:
        raise ParameterError("Name a notebook, or use --all or --config. List them with: cxresearch run --help")
    results = run_many(specs, out_dir=out, jobs=args.jobs, notebooks=args.notebooks, progress=args.progress)
    failed = [r for r in results if r.get("status") != "ok"]
    print()
    for r in results:
        name = r.get("run") or r.get("notebook")
        err = r.get("error_detail") or r.get("error") or {}  # the full message: key values shown here only
        print(f"{r.get('status', '?'):>6}  {name}" + (f"  ({err.get('ename')}: {err.get('evalue')})" if err else ""))
    print(f"index: {Path(out) / 'index.html'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
