"""The format of ``results.json`` and of the outputs a notebook hands to the runner.

Kept apart from :mod:`cxresearch.results` (which needs the statistics stack) so that the runner and the
report pages check results without loading it.
"""

from __future__ import annotations

from typing import Any

RESULTS_MIME = "application/vnd.cxresearch.results+json"
PROVENANCE_MIME = "application/vnd.cxresearch.provenance+json"
VERDICTS = ("supported", "not supported", "inconclusive", "not testable")
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
