"""The package's imports point one way: core statistics → inputs → data sources → analyses → results → runner.

Every ``import`` of a cxresearch module, at the top of a file or inside a function, is read from the
source; no module may import one of a higher layer, analyses never import each other or the synthetic
world's generator, and there is no import circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

PACKAGE = Path(__file__).parents[1] / "cxresearch"
LAYERS = [
    # 0 core: statistics, fitting, formatting and the plot style; no file I/O of data
    {"errors", "paths", "urls", "fits", "stats", "mle", "design", "privacy", "params", "display", "plots", "pages"},
    # 1 inputs: reading, parsing, contracts, the exclusion ledger
    {"io", "contracts", "engine"},
    # 2 data sources: where a run's tables come from (the synthetic world is one of them)
    {"sources", "synth", "truth"},
    # 3 analyses: DataFrames in, typed results out
    {"churn", "clv", "retention", "payoff", "survey", "focus_groups", "audits", "overview"},
    # 4 results and reports
    {"results", "schema", "report", "checks"},
    # 5 runner, command line, package front door, notebook helper
    {"runner", "cli", "__init__", "notebook"},
]
ANALYSES = LAYERS[3]


def layer(module: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if module in names)


def imports(path: Path) -> set[str]:
    """cxresearch modules imported anywhere in ``path`` (``from cxresearch import x`` counts as ``x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cxresearch":
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found |= {a.name for a in node.names if (PACKAGE / f"{a.name}.py").exists()}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("cxresearch.")}
    return found - {path.stem}


def graph() -> dict[str, set[str]]:
    return {p.stem: imports(p) for p in sorted(PACKAGE.glob("*.py"))}


def test_every_module_has_a_layer():
    unknown = [m for m in graph() if not any(m in names for names in LAYERS)]
    assert not unknown, f"place these modules in a layer of tests/test_architecture.py: {unknown}"


def test_no_module_imports_a_higher_layer():
    upward = [f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
              for m, deps in graph().items() for d in sorted(deps) if layer(d) > layer(m)]
    assert not upward, upward


def test_analyses_import_neither_each_other_nor_the_generator():
    bad = [f"{m} imports {d}" for m, deps in graph().items() if m in ANALYSES
           for d in sorted(deps) if d in ANALYSES or d in ("synth", "sources", "truth")]
    assert not bad, bad


def test_there_is_no_import_circle():
    g = graph()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                return [*path, m, d]
            if d not in state and (cycle := visit(d, [*path, m])):
                return cycle
        state[m] = 2
        return None

    for m in g:
        if m not in state:
            cycle = visit(m, [])
            assert cycle is None, " -> ".join(cycle)


def test_the_checker_sees_lazy_imports(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from cxresearch.synth import ensure_world\n    from cxresearch import stats, io\n")
    assert imports(f) == {"synth", "stats", "io"}


NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_notebooks_are_thin():
    """Notebooks hold parameters, narrative and calls: no functions or classes, at most 600 code lines."""
    total = 0
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(line for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
                         if not line.startswith("%"))  # IPython magics are not Python
        tree = ast.parse(code)
        defs = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
        lambdas = sum(isinstance(n, ast.Lambda) for n in ast.walk(tree))
        assert not defs and not lambdas, f"{path.stem} defines {defs or 'lambdas'}: move them into cxresearch"
        total += sum(1 for line in code.splitlines() if line.strip() and not line.strip().startswith("#"))
    assert total <= 600, f"notebooks hold {total} code lines (at most 600): move logic into cxresearch"


def test_analyses_never_read_the_planted_truth():
    """Only ``checks`` reads a synthetic world's truth; analyses take planted values as plain numbers."""
    bad = []
    for name in sorted(ANALYSES):
        tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
        bad += [f"{name}.py:{n.lineno} reads .truth" for n in ast.walk(tree)
                if isinstance(n, ast.Attribute) and n.attr == "truth"]
    assert not bad, bad
