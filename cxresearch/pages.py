"""The HTML templates (``cxresearch/templates/``, jinja2 with autoescaping) and the claims table built with them.

Every page and table of HTML that carries strings from data is rendered here, so escaping happens in one
place: the template engine.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from cxresearch.display import fmt_interval, fmt_p, fmt_value

TEMPLATES = Path(__file__).resolve().parent / "templates"
VERDICT_ORDER = ("supported", "not supported", "inconclusive", "not testable")


@cache
def env() -> Any:
    """The jinja2 environment of the templates (autoescape on, undefined names are errors)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def claim_rows(claims: list[dict[str, Any]], currency: str = "") -> list[dict[str, str]]:
    """Claims as the reader sees them: numbers with their units, the verdict and its CSS class."""
    out = []
    for c in claims:
        verdict = c.get("verdict") if c.get("verdict") in VERDICT_ORDER else "inconclusive"
        unit = str(c.get("unit") or "")
        out.append({"claim": str(c.get("claim", "")), "estimate": fmt_value(c.get("estimate"), unit, currency),
                    "ci": fmt_interval(c.get("ci_low"), c.get("ci_high"), unit, currency),
                    "p_value": fmt_p(c.get("p_value")), "verdict": verdict, "verdict_class": verdict.replace(" ", "-"),
                    "test": str(c.get("test", "")), "note": str(c.get("note") or ""),
                    "meaning": str(c.get("meaning") or "")})
    return out


def claims_table(claims: list[dict[str, Any]], currency: str = "", full: bool = True) -> str:
    """The claims table (the ``claims_table`` macro of ``macros.html.j2``) as HTML."""
    return str(env().get_template("macros.html.j2").module.claims_table(claim_rows(claims, currency), full))
