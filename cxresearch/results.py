"""Recording a notebook's metrics and claims for ``results.json``.

A notebook creates one :class:`Results`, records metrics and claims as it goes and calls
:meth:`Results.publish` in its last cell. ``publish`` shows the claims table and hands the data to the
runner as a display output with the MIME type :data:`RESULTS_MIME` (compared by nbval) plus the input
provenance under :data:`PROVENANCE_MIME` (not compared: paths and hashes change with the data).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cxresearch.io import LEDGER

RESULTS_MIME = "application/vnd.cxresearch.results+json"
PROVENANCE_MIME = "application/vnd.cxresearch.provenance+json"
VERDICTS = ("supported", "not supported", "inconclusive")
SIGNIFICANT = 6


def clean_number(x: Any) -> Any:
    """JSON-ready scalar: numpy types unwrapped, floats to 6 significant digits, NaN/inf to None."""
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        x = float(x)
        if not math.isfinite(x):
            return None
        return float(f"{x:.{SIGNIFICANT}g}")
    if x is None or x is pd.NA:
        return None
    return x


def clean(value: Any) -> Any:
    """Recursively make a metric value JSON-ready."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray | pd.Series):
        return [clean(v) for v in list(value)]
    return clean_number(value)


def interval(estimate: Any, ci_low: Any, ci_high: Any) -> dict[str, Any]:
    """A metric with a confidence interval."""
    return {"estimate": clean_number(estimate), "ci_low": clean_number(ci_low), "ci_high": clean_number(ci_high)}


def verdict(ci_low: float | None, ci_high: float | None, null: float = 0.0, direction: int = 1,
            margin: float | None = None) -> str:
    """Verdict of a directional claim from its confidence interval.

    ``supported`` when the whole interval lies on the claimed side of ``null`` (``direction`` +1: above,
    -1: below); ``not supported`` when the whole interval lies on the other side, or — when an
    equivalence ``margin`` is given — inside ``null ± margin``; otherwise ``inconclusive``.
    """
    if ci_low is None or ci_high is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "inconclusive"
    lo, hi = (ci_low - null, ci_high - null) if direction > 0 else (null - ci_high, null - ci_low)
    if lo > 0:
        return "supported"
    if hi < 0:
        return "not supported"
    if margin is not None and -margin <= lo and hi <= margin:
        return "not supported"
    return "inconclusive"


@dataclass
class Results:
    """Metrics and claims of one notebook run."""

    notebook: str
    title: str
    metrics: dict[str, Any] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    headline: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        LEDGER.reset()  # a new run starts a new record of inputs and exclusions

    def metric(self, name: str, value: Any, headline: bool = False, label: str | None = None,
               percent: bool = False) -> Any:
        """Record a metric: a number, :func:`interval`, or a nested dict of those.

        ``headline`` metrics are shown on the index page under ``label``; ``percent`` marks shares
        (0.25) to be shown as percentages (25%).
        """
        self.metrics[name] = clean(value)
        if percent:
            self.units[name] = "percent"
        if headline and name not in self.headline:
            self.headline.append(name)
        if label:
            self.labels[name] = label
        return self.metrics[name]

    def claim(self, id: str, claim: str, test: str, estimate: float | None, ci_low: float | None = None,
              ci_high: float | None = None, p_value: float | None = None, verdict: str = "inconclusive") -> None:
        """Record a tested claim with its estimate, interval, p-value and verdict."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        self.claims = [c for c in self.claims if c["id"] != id]
        self.claims.append({"id": id, "claim": claim, "test": test, "estimate": clean_number(estimate),
                            "ci_low": clean_number(ci_low), "ci_high": clean_number(ci_high),
                            "p_value": clean_number(p_value), "verdict": verdict})

    def claims_frame(self) -> pd.DataFrame:
        cols = ["claim", "estimate", "ci_low", "ci_high", "p_value", "verdict", "test"]
        return pd.DataFrame(self.claims, columns=["id", *cols])[cols]

    def exclusions_frame(self) -> pd.DataFrame:
        return LEDGER.exclusions_frame()

    def payload(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "title": self.title,
            "metrics": self.metrics,
            "claims": self.claims,
            "headline": self.headline,
            "labels": self.labels,
            "units": self.units,
            "exclusions": clean(LEDGER.exclusions_frame().drop(columns="example_rows").to_dict("records")),
        }

    def publish(self) -> None:
        """Show the claims table and hand metrics, claims and inputs to the runner."""
        from IPython.display import display

        rows = "".join(
            f"<tr><td>{html.escape(c['claim'])}</td><td>{_fmt(c['estimate'])}</td>"
            f"<td>{_fmt(c['ci_low'])} – {_fmt(c['ci_high'])}</td><td>{_fmt(c['p_value'])}</td>"
            f"<td class='verdict {c['verdict'].replace(' ', '-')}'>{c['verdict']}</td>"
            f"<td>{html.escape(c['test'])}</td></tr>"
            for c in self.claims
        )
        table = ("<table class='claims'><thead><tr><th>Claim</th><th>Estimate</th><th>95% CI</th>"
                 f"<th>p-value</th><th>Verdict</th><th>How it was tested</th></tr></thead><tbody>{rows}</tbody></table>")
        text = "\n".join(f"{c['verdict']:>14}: {c['claim']}" for c in self.claims) or "(no claims)"
        inputs = LEDGER.inputs_frame().to_dict("records")
        display({"text/plain": text, "text/html": table, RESULTS_MIME: self.payload(),
                 PROVENANCE_MIME: {"inputs": inputs}}, raw=True)


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1e5 else f"{x:,.0f}"
    return html.escape(str(x))


def suppress_small(counts: pd.DataFrame, count_col: str, min_n: int = 5, cols: list[str] | None = None) -> pd.DataFrame:
    """Blank out cells that describe fewer than ``min_n`` people (confidentiality).

    ``count_col`` is replaced by text ("<5" for suppressed groups) and the ``cols`` derived from it are
    emptied on those rows.
    """
    out = counts.copy()
    small = out[count_col] < min_n
    for c in cols or []:
        out[c] = out[c].astype(object).where(~small, None)
    out[count_col] = out[count_col].astype(object).where(~small, f"<{min_n}")
    return out


TOP_KEYS = ("notebook", "title", "status", "parameters", "provenance", "metrics", "claims")
PROVENANCE_KEYS = ("cxresearch_version", "git_commit", "python", "packages", "inputs", "started", "finished")
CLAIM_KEYS = ("id", "claim", "test", "estimate", "ci_low", "ci_high", "p_value", "verdict")


def _metric_ok(value: Any) -> bool:
    if value is None or isinstance(value, int | float):
        return True
    if isinstance(value, dict):
        return all(_metric_ok(v) for v in value.values())
    if isinstance(value, list):
        return all(_metric_ok(v) for v in value)
    return False


def schema_problems(results: dict[str, Any]) -> list[str]:
    """What in a ``results.json`` payload breaks the documented schema (empty list: valid)."""
    problems = [f"missing key '{k}'" for k in TOP_KEYS if k not in results]
    if results.get("status") not in ("ok", "failed"):
        problems.append(f"status {results.get('status')!r} is not 'ok' or 'failed'")
    prov = results.get("provenance", {})
    problems += [f"provenance lacks '{k}'" for k in PROVENANCE_KEYS if k not in prov]
    for i in prov.get("inputs", []):
        if set(i) < {"path", "sha256", "rows"}:
            problems.append(f"input {i} lacks path, sha256 or rows")
    for name, value in results.get("metrics", {}).items():
        if not _metric_ok(value):
            problems.append(f"metric '{name}' is not a number, interval or nested dict of those")
    for c in results.get("claims", []):
        problems += [f"claim {c.get('id')!r} lacks '{k}'" for k in CLAIM_KEYS if k not in c]
        if c.get("verdict") not in VERDICTS:
            problems.append(f"claim {c.get('id')!r} has verdict {c.get('verdict')!r}")
    return problems
