"""Compare a re-executed notebook with its committed outputs at a stated tolerance.

Text outputs (stdout, ``text/plain``, ``text/markdown``) must match word for word (runs of spaces count
as one: table columns widen with their values), except that numbers are compared as numbers: equal when
they differ by at most ``RTOL`` relative (4 significant digits) or — for decimals printed with at least
three significant digits — by one unit of the last digit printed (a value on a rounding border may print
0.884 on one machine and 0.885 on another). Counts and other short numbers must match exactly; dates are
words. The results payload is compared value by value at ``RTOL`` (plus ``ATOL`` absolute for values
near zero). HTML, PNG, stderr and the provenance payload are not compared: they carry markup, pixels,
paths and times that differ between machines by design.
"""

from __future__ import annotations

import math
import re
from typing import Any

RTOL = 1e-4  # 4 significant digits
ATOL = 1e-6
NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")
SANITIZE = [
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?"), "TIMESTAMP"),
    (re.compile(r"0x[0-9a-fA-F]{6,16}"), "0xADDRESS"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "SHA256"),
    (re.compile(r"<Figure size \d+x\d+ with \d+ Axes>"), "<Figure>"),
]
TEXT_TYPES = ("text/plain", "text/markdown")
RESULTS = "application/vnd.cxresearch.results+json"


DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _unit(token: str) -> float:
    """One unit of the last printed digit, for decimals with 3+ significant digits; 0 otherwise."""
    mant, _, exp = token.lower().replace(",", "").lstrip("+-").partition("e")
    if "." not in mant or len(mant.replace(".", "").lstrip("0")) < 3:
        return 0.0
    decimals = len(mant.split(".")[1])
    return 10.0 ** (-decimals + (int(exp) if exp else 0))


def _words(text: str) -> str:
    """Dates become words (digits to letters) and runs of white space one space."""
    text = DATE.sub(lambda m: m.group(0).translate(str.maketrans("0123456789", "abcdefghij")), text)
    return re.sub(r"[ \t]+", " ", text)


def _value(token: str) -> float:
    return float(token.replace(",", ""))


def numbers_close(a: float, b: float, unit: float = 0.0) -> bool:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    return abs(a - b) <= max(RTOL * max(abs(a), abs(b)), ATOL, 1.01 * unit)


def compare_text(expected: str, actual: str) -> str | None:
    """None when equal at the tolerance, else a description of the first difference."""
    for rx, rep in SANITIZE:
        expected, actual = rx.sub(rep, expected), rx.sub(rep, actual)
    expected, actual = _words(expected), _words(actual)
    e_parts, a_parts = NUMBER.split(expected), NUMBER.split(actual)
    e_nums, a_nums = NUMBER.findall(expected), NUMBER.findall(actual)
    if e_parts != a_parts or len(e_nums) != len(a_nums):
        for i, (x, y) in enumerate(zip(expected.splitlines(), actual.splitlines(), strict=False)):
            if NUMBER.split(x) != NUMBER.split(y):
                return f"line {i + 1} differs in words:\n  expected: {x}\n  actual:   {y}"
        return f"text differs in length:\n  expected: {expected[-300:]}\n  actual:   {actual[-300:]}"
    for x, y in zip(e_nums, a_nums, strict=True):
        if not numbers_close(_value(x), _value(y), max(_unit(x), _unit(y))):
            return f"number {x} became {y}"
    return None


def compare_json(expected: Any, actual: Any, path: str = "") -> str | None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) != set(actual):
            return f"{path}: keys differ: {sorted(set(expected) ^ set(actual))}"
        for k in expected:
            if diff := compare_json(expected[k], actual[k], f"{path}.{k}"):
                return diff
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path}: {len(expected)} items became {len(actual)}"
        for i, (x, y) in enumerate(zip(expected, actual, strict=True)):
            if diff := compare_json(x, y, f"{path}[{i}]"):
                return diff
        return None
    numeric = (int, float)
    if isinstance(expected, numeric) and isinstance(actual, numeric) and not isinstance(expected, bool):
        return None if numbers_close(float(expected), float(actual)) else f"{path}: {expected} became {actual}"
    if isinstance(expected, str) and isinstance(actual, str):
        diff = compare_text(expected, actual)
        return None if diff is None else f"{path}: {diff}"
    return None if expected == actual else f"{path}: {expected!r} became {actual!r}"


def _outputs(cell: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for o in cell.get("outputs", []):
        kind = o.get("output_type")
        if kind == "stream" and o.get("name") == "stdout":
            out.append(("stdout", "".join(o.get("text", ""))))
        elif kind in ("execute_result", "display_data"):
            data = o.get("data", {})
            if RESULTS in data:
                out.append((RESULTS, data[RESULTS]))
            for t in TEXT_TYPES:
                if t in data:
                    out.append((t, "".join(data[t]) if isinstance(data[t], list) else data[t]))
        elif kind == "error":
            out.append(("error", f"{o.get('ename')}: {o.get('evalue')}"))
    # consecutive stdout chunks are one stream: how print() output is split into chunks varies
    merged: list[tuple[str, Any]] = []
    for kind, value in out:
        if merged and kind == "stdout" and merged[-1][0] == "stdout":
            merged[-1] = ("stdout", merged[-1][1] + value)
        else:
            merged.append((kind, value))
    return merged


def compare_notebooks(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Every difference between the committed and the re-executed notebook (empty: they agree)."""
    problems = []
    e_cells = [c for c in expected["cells"] if c["cell_type"] == "code"
               and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    a_cells = [c for c in actual["cells"] if c["cell_type"] == "code"
               and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    if len(e_cells) != len(a_cells):
        return [f"{len(e_cells)} code cells became {len(a_cells)}"]
    for i, (e, a) in enumerate(zip(e_cells, a_cells, strict=True), start=1):
        eo, ao = _outputs(e), _outputs(a)
        if [k for k, _ in eo] != [k for k, _ in ao]:
            problems.append(f"code cell {i}: outputs {[k for k, _ in eo]} became {[k for k, _ in ao]}")
            continue
        for (kind, x), (_, y) in zip(eo, ao, strict=True):
            diff = compare_json(x, y, kind) if kind == RESULTS else compare_text(x, y)
            if diff:
                problems.append(f"code cell {i} ({kind}): {diff}")
    return problems
