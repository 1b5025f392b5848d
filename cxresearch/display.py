"""Tables for stakeholders: no index column, formatted numbers, escaped text."""

from __future__ import annotations

import html
import math
import numbers
import re
import string
from collections.abc import Iterable
from typing import Any

import pandas as pd


def fmt_number(x: Any, percent: bool = False, digits: int = 3) -> str:
    """A number as a reader expects it: thousands separators, about ``digits`` significant digits, never
    e-notation; shares as percent with one decimal; None, NaN and inf as a dash."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if x is None or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
        return "–"
    x = float(x) if not isinstance(x, numbers.Integral) else int(x)
    if percent:
        return f"{100 * x:,.1f}%"
    if isinstance(x, int) or (x.is_integer() and abs(x) < 1e15):
        return f"{int(x):,}"
    a = abs(x)
    if a >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    decimals = min(6, max(1, digits - 1 - math.floor(math.log10(a))))
    text = f"{x:,.{decimals}f}"
    return text if float(text.replace(",", "")) != 0 else ("< 0.000001" if x > 0 else "> -0.000001")


def fmt_p(p: Any) -> str:
    """p-values as "< 0.001" or with three decimals."""
    if p is None or isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(float(p)):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


P_COLUMN = re.compile(r"^(p\b.*|p[_-]?value|.*\bp-value\b.*)$", re.IGNORECASE)  # not p_alive, plan


def _cell(value: Any, kind: str, digits: int) -> str:
    if value is pd.NA or value is pd.NaT:
        return "–"
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if kind == "p":
            return fmt_p(value)
        if kind == "rank" and math.isfinite(float(value)):
            return f"{round(float(value)):,}"
        return fmt_number(value, kind == "percent", digits)
    if value is None or isinstance(value, bool):
        return fmt_number(value)
    return str(value)


def _kind(column: Any, percent: set[str]) -> str:
    name = str(column)
    if column in percent:
        return "percent"
    if P_COLUMN.match(name.strip()):
        return "p"
    if "rank" in name.lower():
        return "rank"
    return "number"


class Table:
    """A DataFrame shown as a clean table (HTML for reports, text for nbval and terminals)."""

    def __init__(self, df: pd.DataFrame, percent: Iterable[str] = (), digits: int = 3,
                 rename: dict[str, str] | None = None):
        self.df = df.reset_index(drop=True)
        self.percent = set(percent)
        self.digits = digits
        self.rename = rename or {}

    def formatted(self) -> pd.DataFrame:
        out = pd.DataFrame({c: [_cell(v, _kind(c, self.percent), self.digits) for v in self.df[c]]
                            for c in self.df.columns})
        return out.rename(columns=self.rename)

    def _numeric(self, col: str) -> bool:
        s = self.df[col].dropna()
        return bool(len(s)) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                    or pd.api.types.is_number(v) for v in s)

    def _repr_html_(self) -> str:
        f = self.formatted()
        num = [self._numeric(c) for c in self.df.columns]
        head = "".join(f"<th class='{'num' if n else 'txt'}'>{html.escape(str(c))}</th>"
                       for c, n in zip(f.columns, num, strict=True))
        body = "".join(
            "<tr>" + "".join(f"<td class='{'num' if n else 'txt'}'>{html.escape(v)}</td>"
                             for v, n in zip(row, num, strict=True)) + "</tr>"
            for row in f.itertuples(index=False)
        )
        return f"<table class='cx'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return self.formatted().to_string(index=False)


def table(df: pd.DataFrame, percent: Iterable[str] = (), digits: int = 3,
          rename: dict[str, str] | None = None) -> Table:
    """Wrap ``df`` for display; ``percent`` columns hold shares (0.25 is shown as 25.0%)."""
    return Table(df, percent, digits, rename)


_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def escape_md(value: Any) -> str:
    """Text from data made inert for Markdown and HTML.

    Every ASCII punctuation character is backslash-escaped (CommonMark treats ``\\x`` as a literal ``x``:
    no emphasis, links, autolinks, code, headings, tables or math), then ``&``, ``<`` and ``>`` become
    entities, and line breaks become spaces so a value cannot open a new block.
    """
    text = re.sub(r"[\r\n\t]+", " ", str(value))
    out = []
    for ch in text:
        if ch in "&<>":
            out.append({"&": "&amp;", "<": "&lt;", ">": "&gt;"}[ch])
        elif _MD_SPECIAL.fullmatch(ch):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


class _SafeFormatter(string.Formatter):
    """``str.format`` where strings are escaped and missing or non-finite numbers show as a dash."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool)
                             and not math.isfinite(float(value))):
            return "–"
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if format_spec == "p":  # {p:p} -> "p < 0.001" or "p = 0.041"
                text = fmt_p(value)
                return f"p {text}" if text.startswith("<") else f"p = {text}"
            return format(value, format_spec)
        return escape_md(format(str(value), format_spec))


def say(template: str, **values: Any) -> None:
    """Show a Markdown sentence in which every value from data is escaped.

    ``template`` is the notebook author's Markdown with ``str.format`` fields; strings passed as
    ``values`` (labels, column names, codes) are escaped with :func:`escape_md`; numbers (Python or NumPy)
    are formatted by the field's format spec (``{p:p}`` writes a p-value as "p < 0.001" or "p = 0.041");
    None, NaN and inf show as "–". This is the only way
    notebooks put data into Markdown.

    Examples
    --------
    >>> say("The weakest segment is **{segment}** ({share:.0%} churned).", segment=label, share=0.31)
    """
    from IPython.display import Markdown, display

    display(Markdown(_SafeFormatter().format(template, **values)))
