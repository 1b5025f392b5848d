"""Stakeholder HTML: one report per run (answer first, code hidden, contents, embedded figures) and the index.

Pages are jinja2 templates in ``cxresearch/templates/`` with autoescaping on: every string that comes
from data (labels, claims, parameters, run names, error messages) is escaped by the template engine, never
by hand. The notebook's own outputs are converted by nbconvert (text from data reaches them only through
``cx.say`` and ``cx.table``, which escape) and inserted as one trusted block.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat

from cxresearch.display import fmt_interval, fmt_number, fmt_value, plain
from cxresearch.pages import TEMPLATES, VERDICT_ORDER, claim_rows, env
from cxresearch.paths import atomic_write
from cxresearch.schema import schema_problems

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
HIDDEN_TAGS = {"remove_cell", "hide", "remove"}


def _render(template: str, **context: Any) -> str:
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return env().get_template(template).render(csp=CSP, css=css, **context)


# ---------------------------------------------------------------------------------------------
# numbers for readers


def _unit(units: dict[str, Any], name: str) -> str:
    unit = str(units.get(name) or "")
    return "share" if unit == "percent" else unit  # "percent" in results.json written before units existed


def _metric_text(value: Any, unit: str, currency: str) -> str:
    if isinstance(value, dict) and "estimate" in value:
        est = fmt_value(value.get("estimate"), unit, currency)
        if value.get("ci_low") is None or value.get("ci_high") is None:
            return est
        return f"{est} ({fmt_interval(value['ci_low'], value['ci_high'], unit, currency)})"
    return fmt_value(value, unit, currency)


def _claims(results: dict[str, Any]) -> list[dict[str, str]]:
    return claim_rows(results.get("claims", []), str(results.get("currency") or ""))


def _cards(results: dict[str, Any]) -> list[dict[str, str]]:
    labels, units, metrics = results.get("labels", {}), results.get("units", {}), results.get("metrics", {})
    currency = str(results.get("currency") or "")
    return [{"value": _metric_text(metrics[n], _unit(units, n), currency), "label": str(labels.get(n) or plain(n, header=True))}
            for n in results.get("headline", []) if n in metrics]


def summary(results: dict[str, Any]) -> list[str]:
    """Two or three plain sentences: how many claims held, which ones, which could not be decided."""
    claims = results.get("claims", [])
    if results.get("status") != "ok":
        return ["The analysis did not finish, so it gives no answer yet: see the message below."]
    if not claims:
        return ["This analysis records no claims."]
    by = {v: [c["claim"] for c in claims if c.get("verdict") == v] for v in VERDICT_ORDER}
    counts = ", ".join(f"{len(by[v])} {v}" for v in VERDICT_ORDER if by[v])
    out = [f"{len(claims)} claim{'s' if len(claims) != 1 else ''} tested: {counts}."]
    if by["supported"]:
        out.append("The data support: " + "; ".join(by["supported"][:3])
                   + (f" (and {len(by['supported']) - 3} more)" if len(by["supported"]) > 3 else "") + ".")
    if by["not supported"]:
        out.append("The data contradict: " + "; ".join(by["not supported"][:2]) + ".")
    elif by["inconclusive"]:
        out.append("Not decided by these data: " + "; ".join(by["inconclusive"][:2]) + ".")
    return out


def is_synthetic(results: dict[str, Any]) -> bool:
    """Whether the run read the built-in synthetic world (every input file lies in a ``synthetic`` folder)."""
    inputs = results.get("provenance", {}).get("inputs", [])
    return bool(inputs) and all("synthetic" in Path(str(i.get("path", ""))).parts for i in inputs)


# ---------------------------------------------------------------------------------------------
# the notebook's outputs


def for_other_run(tags: set[str], parameters: dict[str, Any]) -> bool:
    """Whether a cell tagged ``KEY=VALUE`` (e.g. ``setting=contractual``) belongs to runs with another value of
    that parameter (the narrative of a setting this run did not take)."""
    for tag in tags:
        key, eq, value = tag.partition("=")
        if eq and key in parameters and str(parameters[key]) != value:
            return True
    return False


def _stakeholder_notebook(nb: nbformat.NotebookNode, parameters: dict[str, Any] | None = None
                          ) -> nbformat.NotebookNode:
    """Copy without code, stderr, parameter cells, papermill's error banner and cells for other settings
    (:func:`for_other_run`); figures get alt text."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells, heading, sentence = [], "", ""
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & (HIDDEN_TAGS | {"parameters", "injected-parameters", "papermill-error-cell-tag"}):
            continue
        if for_other_run(tags, parameters or {}):
            continue
        if cell.cell_type == "markdown":  # the alt text: the section heading and its first whole sentence
            for block in re.split(r"\n\s*\n", cell.source):
                lines = [line.strip() for line in block.splitlines() if line.strip()]
                for line in [line for line in lines if line.startswith("#")]:
                    heading, sentence = line.lstrip("#").strip(), ""
                text = " ".join(line for line in lines if not line.startswith("#"))
                if text and not sentence:
                    sentence = re.split(r"(?<=[.!?])\s", text)[0]
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream"
                                                                       and o.get("name") == "stderr")]
            for o in cell.outputs:  # the runner's JSON payloads are for machines only
                for key in [k for k in o.get("data", {}) if k.startswith("application/vnd.cxresearch")]:
                    del o["data"][key]
                if "image/png" in o.get("data", {}) and not o.get("metadata", {}).get("alt"):
                    alt = f"Chart for '{heading}'" + (f": {_plain(sentence)}" if sentence else "")
                    o.setdefault("metadata", {})["alt"] = alt[:300]
        cells.append(cell)
    nb.cells = cells
    return nb


def _plain(markdown: str) -> str:
    return re.sub(r"[*_`#>\[\]]", "", re.sub(r"\]\([^)]*\)", "]", markdown)).strip()


def notebook_body(nb: nbformat.NotebookNode, parameters: dict[str, Any] | None = None
                  ) -> tuple[str, list[dict[str, Any]]]:
    """HTML of the notebook's outputs and markdown (for the run's ``parameters``), and the table of contents
    from its headings."""
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(_stakeholder_notebook(nb, parameters))
    soup = BeautifulSoup(html, "html.parser")
    first = soup.find("h1")
    if first is not None:  # the page header carries the title
        first.decompose()
    toc = []
    for h in soup.find_all(["h2", "h3"]):
        if h.get("id"):
            toc.append({"level": int(h.name[1]), "anchor": h["id"],
                        "text": h.get_text(" ", strip=True).replace("¶", "").strip()})
    return str(soup), toc


# ---------------------------------------------------------------------------------------------
# pages


def _short(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) < 300 else text[:297] + "…"


def _pairs(rows: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), _short(v)) for k, v in rows.items()]


def render_report(nb: nbformat.NotebookNode, results: dict[str, Any]) -> str:
    """The stakeholder page of one run: the answer first, then the analysis, then how it was made."""
    body, toc = notebook_body(nb, results.get("parameters", {}))
    toc = [{"level": 2, "anchor": "the-answer", "text": "The answer"}, *toc,
           {"level": 2, "anchor": "provenance", "text": "How this report was made"}]
    prov = results.get("provenance", {})
    status = "ok" if results.get("status") == "ok" else "failed"
    err = results.get("error") or {}
    failure = None if status == "ok" else {"cell": err.get("cell"), "ename": str(err.get("ename", "Error")),
                                           "evalue": str(err.get("evalue", "")), "source": err.get("source")}
    fits = [{"model": str(f.get("model", "")), "converged": "yes" if f.get("converged") else "NO",
             "method": str(f.get("method", "")), "failed": "; ".join(f.get("failed_attempts") or []) or "–"}
            for f in results.get("fits", [])]
    inputs = [{"table": str(i.get("table", "")), "path": str(i.get("path", "")),
               "sha": str(i.get("sha256", ""))[:16] + (f" ({i['hashed']})" if i.get("hashed") else ""),
               "rows": fmt_number(i.get("rows")) + (f" in {fmt_number(i['files'])} files" if i.get("files") else "")}
              for i in prov.get("inputs", [])]
    software = {k: prov.get(k) for k in ("cxresearch_version", "git_commit", "python", "started", "finished")}
    return _render(
        "report.html.j2", title=str(results.get("title") or results.get("notebook", "Report")), toc=toc,
        synthetic=is_synthetic(results), status=status, finished=str(prov.get("finished", "")),
        commit=str(prov.get("git_commit", ""))[:12], failure=failure, summary=summary(results),
        cards=_cards(results), claims=_claims(results), body=body, notes=[str(n) for n in results.get("notes", [])],
        fits=fits, parameters=_pairs(results.get("parameters", {})), inputs=inputs, software=_pairs(software),
        packages=_pairs(prov.get("packages", {})))


def render_index(runs: list[dict[str, Any]], out_dir: Path) -> str:
    """The overview page: every run with status, headline figures, verdicts, links and provenance."""
    counts = dict.fromkeys(VERDICT_ORDER, 0)
    for r in runs:
        for c in r.get("claims", []):
            if c.get("verdict") in counts:
                counts[c["verdict"]] += 1
    entries = []
    for r in sorted(runs, key=lambda x: str(x.get("run", ""))):
        run = str(r.get("run", r.get("notebook", "")))
        err = r.get("error") or {}
        prov = r.get("provenance", {})
        status = "ok" if r.get("status") == "ok" else "failed"
        entries.append({
            "anchor": run, "link": run, "title": str(r.get("title") or run), "status": status,
            "synthetic": is_synthetic(r),
            "error": None if status == "ok" else f"{err.get('ename', '')}: {str(err.get('evalue', ''))[:500]}",
            "cards": _cards(r), "claims": _claims(r), "parameters": _pairs(r.get("parameters", {})),
            "software": _pairs({k: prov.get(k) for k in ("git_commit", "cxresearch_version", "python", "started",
                                                          "finished")})})
    n = len(runs)
    overview = (f"{n} {'analysis' if n == 1 else 'analyses'} · " + " · ".join(
        f"{counts[v]} claim{'s' if counts[v] != 1 else ''} {v}" for v in VERDICT_ORDER) + ".")
    toc = [{"level": 2, "anchor": e["anchor"], "text": e["title"]} for e in entries]
    return _render("index.html.j2", title="CX research: overview of findings", folder=out_dir.name, toc=toc,
                   synthetic=bool(entries) and all(e["synthetic"] for e in entries), overview=overview,
                   runs=entries)


def write_index(out_dir: str | Path) -> Path:
    """(Re)build ``index.html`` from every ``*/results.json`` under ``out_dir``."""
    out_dir = Path(out_dir)
    runs = []
    for path in sorted(out_dir.glob("*/results.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            problems = schema_problems(data) if isinstance(data, dict) else ["it is not a JSON object"]
        except (OSError, ValueError) as exc:  # a half-written or edited file: list the run as failed
            problems = [f"it cannot be read: {exc}"]
        if problems:
            data = {"notebook": path.parent.name, "status": "failed",
                    "error": {"ename": "UnreadableResults",
                              "evalue": f"{path.name} is not a cxresearch result ({'; '.join(problems[:3])})"}}
        data["run"] = path.parent.name
        runs.append(data)
    target = out_dir / "index.html"
    atomic_write(target, render_index(runs, out_dir))
    return target
