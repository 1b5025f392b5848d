"""Command line: ``cxresearch run``, ``cxresearch world``, ``cxresearch index``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cxresearch.runner import ParameterError, RunSpec, all_notebooks, parse_value, read_study, run_many


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxresearch", description="CX research suite")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run notebooks and write reports")
    run.add_argument("name", nargs="?", help="notebook name, e.g. data_overview")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                     help="notebook parameter; VALUE is YAML (5, 0.3, '[plan, region]', '{a: 1}')")
    run.add_argument("--out", default="reports", help="output folder (default: reports)")
    run.add_argument("--all", action="store_true", help="run every notebook")
    run.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel")
    run.add_argument("--config", help="study file (YAML) listing named runs with their parameters")
    run.add_argument("--notebooks", type=Path, help="folder of notebooks (default: the project's notebooks/)")
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
    if args.command == "world":
        from cxresearch.synth import make_world, write_world

        paths = write_world(make_world(args.n_customers, args.seed), args.out, args.format)
        print(f"wrote {len(paths)} tables and truth.json to {args.out}")
        return 0
    if args.command == "index":
        from cxresearch.report import write_index

        print(write_index(args.out))
        return 0
    try:
        out = args.out
        if args.config:
            if args.name or args.all:
                raise ParameterError("Give either --config, --all or a notebook name, not several.")
            specs, config_out = read_study(args.config)
            out = config_out if (config_out and args.out == "reports") else args.out
        elif args.all:
            if args.name or args.parameter:
                raise ParameterError("--all runs every notebook with its defaults; it takes no name or -p.")
            specs = [RunSpec(n) for n in all_notebooks(args.notebooks)]
        elif args.name:
            params = {}
            for key, value in args.parameter:
                params[key] = parse_value(value)
            specs = [RunSpec(args.name, parameters=params)]
        else:
            raise ParameterError("Name a notebook, or use --all or --config.")
        results = run_many(specs, out_dir=out, jobs=max(1, args.jobs), notebooks=args.notebooks)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in results if r.get("status") != "ok"]
    for r in results:
        name = r.get("run") or r.get("notebook")
        err = r.get("error") or {}
        print(f"{r.get('status', '?'):>6}  {name}" + (f"  ({err.get('ename')}: {err.get('evalue')})" if err else ""))
    print(f"index: {Path(out) / 'index.html'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
