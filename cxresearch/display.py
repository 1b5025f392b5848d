"""What a stakeholder reads: plain labels, numbers with units, escaped text, clean tables.

Everything that turns a variable name or a number into words lives here: :data:`LABELS` (column or
value → label, filled from item dictionaries and the notebooks' ``labels`` parameter), :func:`plain`,
:func:`fmt_number`, :func:`fmt_value` (numbers with their unit: %, months, × the rate, money) and
:class:`Table`.
"""

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


UNITS = ("share", "pp", "rate ratio", "ratio", "money", "points", "days", "weeks", "months", "years", "")


def fmt_value(x: Any, unit: str | None = None, currency: str = "", digits: int = 3) -> str:
    """A number with its unit, as a reader expects it.

    ``share`` 0.885 → "88.5%"; ``pp`` (a difference of shares) 0.085 → "+8.5 pp"; ``rate ratio`` (a hazard
    ratio) 0.64 → "0.64× the rate"; ``ratio`` 2.8 → "2.8×"; ``money`` → "1,250 RUB" (``currency``);
    ``points``, ``days``, ``weeks``, ``months``, ``years`` are written after the number. Missing → "–".
    """
    text = fmt_number(x, percent=unit in ("share", "pp"), digits=digits)
    if text == "–" or not unit:
        return text
    if unit == "share":
        return text
    if unit == "pp":
        return (text if text.startswith("-") else "+" + text).replace("%", " pp")
    if unit == "rate ratio":
        return f"{text}× the rate"
    if unit == "ratio":
        return f"{text}×"
    if unit == "money":
        return f"{text} {currency}".strip()
    return f"{text} {unit}"


def fmt_interval(lo: Any, hi: Any, unit: str | None = None, currency: str = "", digits: int = 3) -> str:
    """An interval on one line: "0.57 to 0.72" (the unit written once, after the upper bound)."""
    if not _finite(lo) or not _finite(hi):
        return "–"
    if unit == "share":
        return f"{fmt_number(lo, True, digits)} to {fmt_number(hi, True, digits)}"
    if unit == "pp":  # "+1.5 to +15.4 pp"
        a, b = (fmt_value(v, "pp", digits=digits).removesuffix(" pp") for v in (lo, hi))
        return f"{a} to {b} pp"
    return f"{fmt_number(lo, digits=digits)} to {fmt_value(hi, unit, currency, digits)}"


def _finite(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


# ---------------------------------------------------------------------------------------------
# labels

STANDARD_LABELS = {
    "ci": "95% CI", "p_value": "p-value", "p": "p-value", "p_value_holm": "p-value (Holm)", "adjusted_p_value": "adjusted p-value",
    "adjusted_p_value_holm": "adjusted p-value (Holm)",
    "n": "n", "hr": "hazard ratio", "se": "standard error", "aic": "AIC", "bic": "BIC", "r2": "R²",
    "log_likelihood": "log-likelihood", "n_customers": "customers", "n_responses": "responses",
    "krippendorff_alpha": "Krippendorff's alpha", "icc_2_1": "ICC(2,1)", "rows_excluded": "rows excluded",
    "rows_before": "rows before",
}
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+$")  # snake_case names, never free text
_TERM = re.compile(r"^(?P<var>[^\[\]]+)\[(?:T\.)?(?P<level>[^\[\]]+)\]$")  # plan[annual], plan[T.annual]


class Labels(dict):
    """Column or value → the label a reader sees.

    Filled by :func:`use_labels` (item dictionaries, codebooks, the notebook's ``labels`` parameter); looked
    up by :func:`plain`, by :class:`Table` for headers and text cells, and by the plot helpers for tick
    labels and legends. ``references`` holds the reference level of each categorical covariate so that a
    model term ``plan[annual]`` reads "plan: annual vs monthly".
    """

    def __init__(self) -> None:
        super().__init__()
        self.references: dict[str, str] = {}
        self.user: dict[str, str] = {}  # the notebook's ``labels`` parameter: wins over every other label

    def reset(self) -> None:
        self.clear()
        self.references.clear()
        self.user.clear()


LABELS = Labels()


def use_labels(*mappings: Any, references: dict[str, Any] | None = None, user: Any = None) -> Labels:
    """Register labels (later mappings win): dicts, Series (index → value) or None.

    Data dictionaries (item labels, codebooks) are registered as ``mappings``; the user's ``labels``
    parameter as ``user``, which wins over them whenever either is registered, e.g.
    ``cx.display.use_labels(items.set_index("item")["label"], user=labels)``.
    """
    for m, target in [*((m, LABELS) for m in mappings), (user, LABELS.user)]:
        if m is None:
            continue
        pairs = m.items() if hasattr(m, "items") else m
        for k, v in pairs:
            if v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v).strip():
                target[str(k)] = str(v)
    for var, level in (references or {}).items():
        LABELS.references[str(var)] = str(level)
    return LABELS


def plain(name: Any, header: bool = False) -> str:
    """The reader's label for a column, item, code or model term.

    Registered labels win; then, for a column ``header``, standard statistics headers (``p_value`` →
    "p-value"; a value "p" in a cell stays "p"); then model terms
    (``plan[annual]`` → "plan: annual vs monthly", for covariates whose reference level is registered);
    then snake_case names are spelled out (``wait_time`` → "wait time"; in cells only names made of
    letters, so an id like ``fg_01`` stays). Anything else (free text such as "ask for [name]", numbers)
    is returned unchanged.
    """
    text = str(name)
    if text in LABELS.user:
        return LABELS.user[text]
    if text in LABELS:
        return LABELS[text]
    if header and text in STANDARD_LABELS:
        return STANDARD_LABELS[text]
    m = _TERM.match(text)
    if m and (m.group("var") in LABELS.references or header):
        var, level = m.group("var"), m.group("level")
        ref = LABELS.references.get(var)
        head = f"{plain(var)}: {plain(level)}"
        return f"{head} vs {plain(ref)}" if ref is not None else head
    if _IDENTIFIER.match(text) and (header or not any(ch.isdigit() for ch in text)):
        return text.replace("_", " ")
    return text


P_COLUMN = re.compile(r"^((adjusted_)?p[_-]?value(_holm)?|p\b.*|.*\bp-value\b.*)$", re.IGNORECASE)  # not p_alive


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


def _interval_cell(lo: Any, hi: Any, percent: bool, digits: int) -> str:
    if not _finite(lo) or not _finite(hi):
        return "–"
    return f"{fmt_number(lo, percent, digits)} to {fmt_number(hi, percent, digits)}"


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
    """A DataFrame shown as a clean table (HTML for reports, text for the notebook regression and terminals).

    Headers and text cells go through :func:`plain` (registered labels, "p-value", model terms, snake_case
    spelled out); a ``ci_low``/``ci_high`` pair becomes one "95% CI" column written "a to b" on one line.
    """

    def __init__(self, df: pd.DataFrame, percent: Iterable[str] = (), digits: int = 3,
                 rename: dict[str, str] | None = None):
        self.df = df.reset_index(drop=True)
        self.percent = set(percent)
        self.digits = digits
        self.rename = rename or {}

    def _columns(self) -> list[tuple[str, list[str]]]:
        """(header, cells) per shown column, the interval bounds merged into one column."""
        cols = list(self.df.columns)
        out = []
        for c in cols:
            if c == "ci_high" and "ci_low" in cols:
                continue
            if c == "ci_low" and "ci_high" in cols:
                pct = "ci_low" in self.percent
                cells = [_interval_cell(lo, hi, pct, self.digits) for lo, hi in zip(self.df["ci_low"], self.df["ci_high"],
                                                                                   strict=True)]
                out.append((self.rename.get("ci", "95% CI"), cells))
                continue
            kind = _kind(c, self.percent)
            cells = [_cell(v, kind, self.digits) for v in self.df[c]]
            if not self._numeric(c):
                cells = [plain(v) if isinstance(v, str) else cell for v, cell in zip(self.df[c], cells, strict=True)]
            out.append((self.rename.get(c, plain(c, header=True)), cells))
        return out

    def formatted(self) -> pd.DataFrame:
        cols = self._columns()
        out = pd.DataFrame({i: cells for i, (_, cells) in enumerate(cols)}, index=range(len(self.df)))
        out.columns = [h for h, _ in cols]
        return out

    def _numeric(self, col: str) -> bool:
        s = self.df[col].dropna()
        return bool(len(s)) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                    or pd.api.types.is_number(v) for v in s)

    def _repr_html_(self) -> str:
        f = self.formatted()
        num = [self._numeric(c) or (c == "ci_low" and "ci_high" in self.df) for c in self.df.columns
               if not (c == "ci_high" and "ci_low" in self.df)]
        head = "".join(f"<th class='{'num' if n else 'txt'}'>{html.escape(str(c))}</th>"
                       for c, n in zip(f.columns, num, strict=True))
        body = "".join(
            "<tr>" + "".join(f"<td class='{'num' if n else 'txt'}'>{html.escape(str(v))}</td>"
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

    if template:  # an analysis says nothing with an empty sentence
        display(Markdown(_SafeFormatter().format(template, **values)))


Sentence = dict[str, Any]  # {"template": markdown with fields, **values}: shown with say(**sentence)


def sentence(template: str, **values: Any) -> Sentence:
    """A sentence for :func:`say`, built by an analysis and shown by the notebook: ``cx.say(**s)`` or :func:`tell`."""
    return {"template": template, **values}


def tell(notes: Iterable[Any]) -> None:
    """Show what an analysis or check returns, in order: sentences with :func:`say` (values from data escaped) —
    :func:`sentence` dicts, ``(template, values)`` pairs or objects with ``template`` and ``values`` — and
    anything else (a :class:`Table`, a figure) with IPython's ``display``."""
    from IPython.display import display

    for s in notes:
        if isinstance(s, dict):
            say(**s)
        elif isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str):
            say(s[0], **s[1])
        elif isinstance(getattr(s, "template", None), str) and isinstance(getattr(s, "values", None), dict):
            say(s.template, **s.values)
        else:
            display(s)


def table_labels(table: pd.DataFrame, key: str, label_col: str = "label") -> dict[str, str]:
    """``{key: label}`` from a data dictionary's optional ``label`` column (codebook, criteria file).

    Rows with an empty label are left out, so :func:`plain` spells those names out (``wait_time`` → "wait time").
    """
    if label_col not in table or key not in table:
        return {}
    return {str(k): str(v).strip() for k, v in zip(table[key], table[label_col], strict=True)
            if filled(v) and filled(k)}


def filled(v: Any) -> bool:
    """Whether a cell holds something (not None, NA, NaN or blank text)."""
    return v is not None and v is not pd.NA and not (isinstance(v, float) and math.isnan(v)) and str(v).strip() != ""
