"""Stakeholder HTML: one report per run (code hidden, contents, embedded figures) and the index page."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import nbformat

from cxresearch.paths import atomic_write
from cxresearch.results import schema_problems

CSS = """
:root { --ink:#1d2733; --muted:#5b6877; --line:#dfe4ea; --accent:#1f6feb; --bg:#fbfcfd; }
* { box-sizing: border-box; }
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; color: var(--ink);
       margin: 0; background: var(--bg); line-height: 1.5; }
header.top { background: #14324f; color: #fff; padding: 18px 32px; }
header.top h1 { margin: 0; font-size: 1.5em; }
header.top .sub { color: #c9d6e3; font-size: .9em; }
header.top a { color: #c9d6e3; }
.layout { display: flex; gap: 24px; padding: 0 32px 40px; }
nav.toc { flex: 0 0 240px; position: sticky; top: 0; align-self: flex-start; max-height: 100vh;
          overflow-y: auto; padding: 20px 0; font-size: .9em; }
nav.toc ul { list-style: none; padding-left: 0; margin: 0; }
nav.toc li.h3 { padding-left: 14px; }
nav.toc a { color: var(--muted); text-decoration: none; display: block; padding: 3px 0; }
nav.toc a:hover { color: var(--accent); }
main { flex: 1 1 auto; min-width: 0; max-width: 1100px; }
h1, h2, h3 { line-height: 1.25; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 1.8em; }
a.anchor-link { display: none; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 10px 0 18px; font-size: .9em; background: #fff; }
th, td { border: 1px solid var(--line); padding: 5px 9px; text-align: right; vertical-align: top; }
th { background: #f1f4f7; }
td:first-child, th:first-child { text-align: left; }
table.dataframe tbody tr:nth-child(odd) { background: #fafbfc; }
table.claims td, table.claims th, th.txt, td.txt { text-align: left; }
th.num, td.num { text-align: right; }
td.verdict { font-weight: 600; white-space: nowrap; }
td.verdict.supported, .badge.supported, .badge.ok { color: #0b6b2f; }
td.verdict.not-supported, .badge.not-supported, .badge.failed { color: #a11d1d; }
td.verdict.inconclusive, .badge.inconclusive { color: #8a5a00; }
td.verdict.not-testable { color: #5b6877; }
.badge { font-weight: 600; }
.banner { border-left: 5px solid #a11d1d; background: #fff1f1; padding: 12px 16px; margin: 20px 0; }
.note { color: var(--muted); font-size: .9em; }
details { margin: 10px 0; }
pre { background: #f4f6f8; padding: 10px; overflow-x: auto; font-size: .85em; }
.jp-OutputArea-output pre, .output_text pre { background: none; padding: 0; }
.jp-RenderedText pre { white-space: pre-wrap; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.card .v { font-size: 1.35em; font-weight: 600; }
.card .k { color: var(--muted); font-size: .8em; }
footer { color: var(--muted); font-size: .85em; border-top: 1px solid var(--line); margin-top: 40px; padding-top: 10px; }
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
HIDDEN_TAGS = {"remove_cell", "hide", "remove"}


def _page(title: str, subtitle: str, body: str, toc: str = "") -> str:
    nav = f"<nav class='toc'><strong>Contents</strong>{toc}</nav>" if toc else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        # reports run no script and load nothing from outside: the browser refuses both, a second line of
        # defence behind the escaping of every data string
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header class='top'><h1>{html.escape(title)}</h1><div class='sub'>{subtitle}</div></header>"
        f"<div class='layout'>{nav}<main>{body}</main></div></body></html>"
    )


def _stakeholder_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Copy without code, stderr, parameter cells and papermill's error banner."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & (HIDDEN_TAGS | {"parameters", "injected-parameters", "papermill-error-cell-tag"}):
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream"
                                                                       and o.get("name") == "stderr")]
            for o in cell.outputs:  # the runner's JSON payloads are for machines only
                for key in [k for k in o.get("data", {}) if k.startswith("application/vnd.cxresearch")]:
                    del o["data"][key]
        cells.append(cell)
    nb.cells = cells
    return nb


def notebook_body(nb: nbformat.NotebookNode) -> tuple[str, str]:
    """HTML of the notebook's outputs and markdown, and a table of contents built from its headings."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(_stakeholder_notebook(nb))
    # drop the first <h1>: the page header carries the title
    body = re.sub(r"<h1[^>]*>.*?</h1>", "", body, count=1, flags=re.S)
    items = []
    for level, anchor, text in re.findall(r'<h([23]) id="([^"]+)"[^>]*>(.*?)</h\1>', body, flags=re.S):
        label = re.sub(r"<[^>]+>", "", text).replace("¶", "").strip()
        items.append(f"<li class='h{level}'><a href='#{html.escape(anchor)}'>{html.escape(label)}</a></li>")
    toc = f"<ul>{''.join(items)}</ul>" if items else ""
    return body, toc


def _kv_table(rows: dict[str, Any]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_short(v))}</td></tr>"
                    for k, v in rows.items())
    return f"<table>{cells}</table>"


def _short(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) < 300 else text[:297] + "…"


def provenance_html(results: dict[str, Any]) -> str:
    prov = results.get("provenance", {})
    inputs = prov.get("inputs", [])
    input_rows = "".join(
        f"<tr><td>{html.escape(i.get('table', ''))}</td><td>{html.escape(str(i.get('path', '')))}</td>"
        f"<td><code>{html.escape(str(i.get('sha256', ''))[:16])}…</code></td><td>{i.get('rows', '')}</td></tr>"
        for i in inputs
    )
    inputs_tbl = (f"<table><tr><th>Table</th><th>File</th><th>SHA-256</th><th>Rows</th></tr>{input_rows}</table>"
                  if inputs else "<p class='note'>No input files were recorded.</p>")
    env = {k: prov.get(k) for k in ("cxresearch_version", "git_commit", "python", "started", "finished")}
    notes = "".join(f"<li>{html.escape(str(n))}</li>" for n in results.get("notes", []))
    fits = results.get("fits", [])
    fit_rows = "".join(
        f"<tr><td>{html.escape(str(f.get('model', '')))}</td><td>{'yes' if f.get('converged') else 'NO'}</td>"
        f"<td>{html.escape(str(f.get('method', '')))}</td>"
        f"<td>{html.escape('; '.join(f.get('failed_attempts') or []) or '–')}</td></tr>" for f in fits)
    handling = ((f"<h3>Data handling</h3><ul>{notes}</ul>" if notes else "")
                + (f"<h3>Model fits</h3><table><tr><th>Model</th><th>Converged</th><th>Setting used</th>"
                   f"<th>Settings that failed first</th></tr>{fit_rows}</table>" if fits else ""))
    return (
        "<h2 id='provenance'>How this report was made</h2>"
        "<p class='note'>Same inputs and parameters give the same numbers. The parameters, input files "
        "(with their SHA-256 fingerprints), software versions and the code version are recorded here.</p>"
        f"{handling}<h3>Parameters</h3>{_kv_table(results.get('parameters', {}))}"
        f"<h3>Inputs</h3>{inputs_tbl}<h3>Software</h3>{_kv_table(env)}"
        f"<details><summary>Package versions</summary>{_kv_table(prov.get('packages', {}))}</details>"
    )


def failure_html(results: dict[str, Any]) -> str:
    err = results.get("error") or {}
    if results.get("status") == "ok":
        return ""
    where = f"at step {err['cell']}" if err.get("cell") is not None else ""
    source = (f"<details><summary>Code of the failing step (for the analyst)</summary>"
              f"<pre>{html.escape(err.get('source', ''))}</pre></details>") if err.get("source") else ""
    return (
        f"<div class='banner'><strong>This report is incomplete.</strong> The analysis stopped {where}: "
        f"{html.escape(err.get('ename', 'Error'))}: {html.escape(err.get('evalue', ''))}<br>"
        "The figures below stop where the failure happened. Fix the input or parameter named in the message "
        f"and run it again.{source}</div>"
    )


def render_report(nb: nbformat.NotebookNode, results: dict[str, Any]) -> str:
    """The stakeholder page of one run."""
    body, toc = notebook_body(nb)
    toc = toc.replace("</ul>", "<li class='h2'><a href='#provenance'>How this report was made</a></li></ul>") \
        if toc else "<ul><li class='h2'><a href='#provenance'>How this report was made</a></li></ul>"
    prov = results.get("provenance", {})
    status = results.get("status", "ok")
    subtitle = (f"Status: <span class='badge {html.escape(status)}'>{html.escape(status)}</span> · "
                f"finished {html.escape(str(prov.get('finished', '')))} · "
                f"code {html.escape(str(prov.get('git_commit', ''))[:12])} · <a href='../index.html'>all reports</a>")
    content = failure_html(results) + body + provenance_html(results)
    return _page(results.get("title") or results.get("notebook", "Report"), subtitle, content, toc)


def _format_metric(value: Any, percent: bool = False) -> str:
    if isinstance(value, dict) and "estimate" in value:
        est, lo, hi = value.get("estimate"), value.get("ci_low"), value.get("ci_high")
        if lo is None and hi is None:
            return _num(est, percent)
        return f"{_num(est, percent)} ({_num(lo, percent)} – {_num(hi, percent)})"
    return _num(value, percent)


def _num(x: Any, percent: bool = False) -> str:
    if isinstance(x, bool) or x is None:
        return "–" if x is None else str(x)
    if percent and isinstance(x, int | float):
        return f"{100 * x:.1f}%"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.3g}"
    return html.escape(str(x))


def headline_cards(results: dict[str, Any]) -> str:
    labels = results.get("labels", {})
    cards = []
    for name in results.get("headline", []):
        if name in results.get("metrics", {}):
            pct = results.get("units", {}).get(name) == "percent"
            cards.append(f"<div class='card'><div class='v'>{_format_metric(results['metrics'][name], pct)}</div>"
                         f"<div class='k'>{html.escape(labels.get(name, name))}</div></div>")
    return f"<div class='cards'>{''.join(cards)}</div>" if cards else ""


def render_index(runs: list[dict[str, Any]], out_dir: Path) -> str:
    """The overview page: every run with status, headline figures, verdicts, links and provenance."""
    sections = []
    counts = {"supported": 0, "not supported": 0, "inconclusive": 0, "not testable": 0}
    for r in runs:
        for c in r.get("claims", []):
            counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    for r in sorted(runs, key=lambda x: x.get("run", "")):
        run = r.get("run", r.get("notebook", ""))
        status = r.get("status", "unknown")
        claims = "".join(
            f"<tr><td>{html.escape(c['claim'])}</td><td>{_format_metric(c)}</td>"
            f"<td class='verdict {html.escape(c['verdict'].replace(' ', '-'))}'>{html.escape(c['verdict'])}</td></tr>"
            for c in r.get("claims", [])
        )
        claims_tbl = (f"<table class='claims'><tr><th>Claim</th><th>Estimate (95% CI)</th><th>Verdict</th></tr>"
                      f"{claims}</table>") if claims else "<p class='note'>No claims recorded.</p>"
        prov = r.get("provenance", {})
        err = r.get("error") or {}
        problem = (f"<div class='banner'>Failed: {html.escape(err.get('ename', ''))}: "
                   f"{html.escape(err.get('evalue', ''))[:500]}</div>") if status != "ok" else ""
        sections.append(
            f"<h2 id='{html.escape(run)}'>{html.escape(r.get('title') or run)} "
            f"<span class='badge {html.escape(status)}'>[{html.escape(status)}]</span></h2>{problem}"
            f"<p><a href='{html.escape(run)}/report.html'>Read the report</a> · "
            f"<a href='{html.escape(run)}/notebook.ipynb'>notebook with code</a> · "
            f"<a href='{html.escape(run)}/results.json'>results.json</a></p>"
            f"{headline_cards(r)}{claims_tbl}"
            f"<details><summary>Parameters and provenance</summary>{_kv_table(r.get('parameters', {}))}"
            f"{_kv_table({k: prov.get(k) for k in ('git_commit', 'cxresearch_version', 'python', 'started', 'finished')})}"
            f"</details>"
        )
    summary = (f"<p>{len(runs)} {'analysis' if len(runs) == 1 else 'analyses'} · "
               f"{counts['supported']} claims supported · "
               f"{counts['not supported']} not supported · {counts['inconclusive']} inconclusive · "
               f"{counts['not testable']} not testable.</p>"
               "<p class='note'>Each claim comes with an estimate, a 95% confidence interval and a verdict: "
               "<b>supported</b> when the whole interval points the claimed way, <b>not supported</b> when it "
               "points the other way (or shows the effect is negligible), <b>inconclusive</b> otherwise; "
               "<b>not testable</b> when the data cannot answer it (no data, or groups below the "
               "confidentiality threshold).</p>")
    toc = "<ul>" + "".join(f"<li class='h2'><a href='#{html.escape(r.get('run', ''))}'>"
                           f"{html.escape(r.get('title') or r.get('run', ''))}</a></li>"
                           for r in sorted(runs, key=lambda x: x.get("run", ""))) + "</ul>"
    return _page("CX research: overview of findings", f"Reports in {html.escape(out_dir.name)}",
                 summary + "".join(sections), toc)


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
