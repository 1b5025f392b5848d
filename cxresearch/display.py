"""Tables for stakeholders: no index column, formatted numbers, escaped text."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd


def _cell(value: Any, percent: bool, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
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
