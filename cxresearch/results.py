"""Recording a notebook's metrics and claims for ``results.json``.

A notebook creates one :class:`Results`, records metrics and claims as it goes and calls
:meth:`Results.publish` in its last cell. ``publish`` shows the claims table and hands the data to the
runner as a display output with the MIME type :data:`RESULTS_MIME` (compared by nbval) plus the input
provenance under :data:`PROVENANCE_MIME` (not compared: paths and hashes change with the data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cxresearch import stats as _stats
from cxresearch.display import UNITS, fmt_value
from cxresearch.errors import NotEstimable  # noqa: F401  (re-exported)
from cxresearch.fits import FITS, is_number
from cxresearch.io import Ledger
from cxresearch.pages import claims_table
from cxresearch.schema import PROVENANCE_MIME, RESULTS_MIME, VERDICTS, schema_problems  # noqa: F401  (re-exported)

TESTED = VERDICTS[:3]
verdict = _stats.verdict  # re-exported as cx.verdict
suppress_small = _stats.suppress_small
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
    min_group_size: int = 5
    currency: str = ""
    ledger: Ledger = field(default_factory=Ledger)  # inputs read, rows excluded, notes: pass it to the loaders

    def __post_init__(self) -> None:
        FITS.reset()  # a new run starts a new record of fits

    def metric(self, name: str, value: Any, headline: bool = False, label: str | None = None,
               percent: bool = False, unit: str | None = None) -> Any:
        """Record a metric: a number, :func:`interval`, or a nested dict of those.

        ``headline`` metrics are shown on the index page and the report's first screen under ``label``;
        ``unit`` is one of :data:`cxresearch.display.UNITS` ("share" for 0.25 shown as 25%, "money" in the
        run's ``currency``, "months", ...); ``percent=True`` is short for ``unit="share"``.
        """
        self.metrics[name] = clean(value)
        unit = "share" if percent else unit
        if unit:
            if unit not in UNITS:
                raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
            self.units[name] = unit
        if headline and name not in self.headline:
            self.headline.append(name)
        if label:
            self.labels[name] = label
        return self.metrics[name]

    def claim(self, id: str, claim: str, test: str, estimate: float | None, ci_low: float | None = None,
              ci_high: float | None = None, p_value: float | None = None, verdict: str = "inconclusive",
              n: int | None = None, note: str | None = None, unit: str | None = None, meaning: str | None = None,
              truth: float | None = None) -> None:
        """Record a tested claim with its estimate, interval, p-value and verdict.

        ``n`` is the number of units in the smallest group the claim rests on. ``unit`` says how the
        estimate reads (:data:`cxresearch.display.UNITS`: "share", "rate ratio", "money", "months", ...);
        ``meaning`` says in words what the estimate and its sign mean ("below 1: fewer leave"). ``truth`` is
        the planted value when the data are synthetic: if the interval misses it, the note says so next to
        the claim. Safeguards: a claim whose
        estimate or interval is missing or not finite, or whose smallest group is below
        ``min_group_size``, becomes ``not testable`` (with the reason in ``note``) whatever verdict was
        passed; an estimate outside its own interval is a bug and raises ``ValueError``.
        """
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        if unit is not None and unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
        est, lo, hi, p = (clean_number(x) for x in (estimate, ci_low, ci_high, p_value))
        if verdict in TESTED and not (is_number(est) and is_number(lo) and is_number(hi)):
            verdict, note = "not testable", note or "the data do not allow an estimate with an interval"
            meaning = None  # it may quote the estimate
        if n is not None and int(n) < self.min_group_size:
            verdict, meaning = "not testable", None
            small = f"fewer than {self.min_group_size} units in a group (min_group_size): no estimate is shown"
            note = f"{note}; {small}" if note else small
            est = lo = hi = p = None
        if is_number(est) and is_number(lo) and is_number(hi):
            tol = 1e-9 * max(1.0, abs(est))
            if not (lo - tol <= est <= hi + tol):
                raise ValueError(f"claim {id!r}: estimate {est} lies outside its own interval [{lo}, {hi}]")
        no_effect = 1.0 if unit in ("rate ratio", "ratio") else 0.0
        if meaning and verdict == "inconclusive" and is_number(lo) and is_number(hi) and lo <= no_effect <= hi:
            meaning = (f"{meaning.rstrip('. ')}. The 95% interval includes no effect, so not even the direction is "
                       "established.")
        truth = clean_number(truth)
        if is_number(truth) and is_number(lo) and is_number(hi) and not (lo <= truth <= hi):
            miss = (f"Check against the synthetic world: the planted value {self.fmt(truth, unit)} lies outside "
                    "this interval, so this estimate misses the truth")
            note = f"{note}; {miss}" if note else miss
        self.claims = [c for c in self.claims if c["id"] != id]
        record = {"id": id, "claim": claim, "test": test, "estimate": est, "ci_low": lo, "ci_high": hi,
                  "p_value": p, "verdict": verdict, "n": None if n is None else int(n), "note": note,
                  "unit": unit or "", "meaning": meaning or "", "truth": truth}
        self.claims.append(record)

    def add_metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        """Record metrics returned by an analysis as ``{name: keyword arguments of metric()}``."""
        for name, kwargs in metrics.items():
            self.metric(name, **kwargs)

    def add(self, *claims: _stats.Claim | None) -> None:
        """Record claims returned by the analyses (``None`` — a claim the run could not pose — is skipped)."""
        for c in claims:
            if c is not None:
                self.claim(**{f: getattr(c, f) for f in c.__dataclass_fields__})

    def fmt(self, x: Any, unit: str | None) -> str:
        return fmt_value(x, unit, self.currency)

    def claims_frame(self) -> pd.DataFrame:
        cols = ["claim", "estimate", "ci_low", "ci_high", "p_value", "verdict", "test"]
        return pd.DataFrame(self.claims, columns=["id", *cols])[cols]

    def exclusions_frame(self) -> pd.DataFrame:
        return self.ledger.exclusions_frame()

    def payload(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "title": self.title,
            "metrics": self.metrics,
            "claims": self.claims,
            "headline": self.headline,
            "labels": self.labels,
            "units": self.units,
            "currency": self.currency,
            "exclusions": clean(self.ledger.exclusions_frame().drop(columns="example_rows").to_dict("records")),
            "notes": list(self.ledger.notes),
            "fits": clean(FITS.fits),
            "converged": FITS.all_converged(),
        }

    def publish(self) -> None:
        """Show the claims table and hand metrics, claims and inputs to the runner."""
        from IPython.display import display

        table = claims_table(self.claims, self.currency)  # escaped by the template engine
        text = "\n".join(f"{c['verdict']:>14}: {c['claim']}" for c in self.claims) or "(no claims)"
        inputs = [dict(i) for i in self.ledger.inputs]  # table, path, sha256, rows (and files for a folder)
        display({"text/plain": text, "text/html": table, RESULTS_MIME: self.payload(),
                 PROVENANCE_MIME: {"inputs": inputs}}, raw=True)
