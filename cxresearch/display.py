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


def _cell(value: Any, percent: bool, digits: int) -> str:
    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, float | int) and not isinstance(value, bool) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (hasattr(value, "is_integer") and isinstance(value, float) is False
                                  and pd.api.types.is_integer(value)):
        return f"{int(value):,}"
    if isinstance(value, float) or pd.api.types.is_float(value):
        v = float(value)
        if percent:
            return f"{100 * v:.1f}%"
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:,.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    return str(value)


class Table:
    """A DataFrame shown as a clean table (HTML for reports, text for nbval and terminals)."""

    def __init__(self, df: pd.DataFrame, percent: Iterable[str] = (), digits: int = 3,
                 rename: dict[str, str] | None = None):
        self.df = df.reset_index(drop=True)
        self.percent = set(percent)
        self.digits = digits
        self.rename = rename or {}

    def formatted(self) -> pd.DataFrame:
        out = pd.DataFrame({c: [_cell(v, c in self.percent, self.digits) for v in self.df[c]]
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
            return format(value, format_spec)
        return escape_md(format(str(value), format_spec))


def say(template: str, **values: Any) -> None:
    """Show a Markdown sentence in which every value from data is escaped.

    ``template`` is the notebook author's Markdown with ``str.format`` fields; strings passed as
    ``values`` (labels, column names, codes) are escaped with :func:`escape_md`; numbers (Python or NumPy)
    are formatted by the field's format spec; None, NaN and inf show as "–". This is the only way
    notebooks put data into Markdown.

    Examples
    --------
    >>> say("The weakest segment is **{segment}** ({share:.0%} churned).", segment=label, share=0.31)
    """
    from IPython.display import Markdown, display

    display(Markdown(_SafeFormatter().format(template, **values)))
