"""Notebook parameters: declared types, typed parsing of command-line and study-file values, range checks.

Every notebook declares its parameters in the cell tagged ``parameters`` with a type annotation::

    as_of: "date | None" = None  # observation end, YYYY-MM-DD
    horizon: "float" = 24  # survival at this time

Values given on the command line (``-p KEY VALUE``) or in a study file are typed from that declaration,
never guessed: a ``str`` parameter keeps ``Yes``, ``on``, ``0123`` and ``2024-06-30`` as text; a ``date``
is ISO text checked to be a real date; numbers are numbers; lists and mappings are YAML. ``null`` (or
``None``, ``~``) gives None where the type allows it. Ranges that hold across notebooks (``horizon > 0``,
``n_boot >= 1``, ``0 <= margin <= 1``, holdout after calibration, ...) are checked too. Every problem is
reported before any cell runs, naming the parameter and giving an example.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

from cxresearch.errors import ParameterError
from cxresearch.urls import is_url, parse_url, redact_master, resolve_file


@dataclass(frozen=True)
class Parameter:
    """One declared notebook parameter."""

    name: str
    type: str  # the declaration, e.g. "float", "date | None", "list[str]"
    default: Any
    help: str = ""


NULL_WORDS = {"null", "none", "~", ""}
EXAMPLES = {"int": "5", "float": "0.3", "bool": "true", "date": "2024-06-30", "str": "Yes", "path": "data/file.csv",
            "list": "'[a, b]'", "dict": "'{a: 1}'"}


# -------------------------------------------------------------------------------------------------
# declarations


def parameters_cell(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell.source
    raise ParameterError(f"Notebook {path.name} has no cell tagged 'parameters'.")


def declared(path: Path) -> dict[str, Parameter]:
    """The parameters a notebook declares, in order, with their types, defaults and help text."""
    source = parameters_cell(path)
    lines = source.splitlines()
    out: dict[str, Parameter] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            ann = node.annotation
            kind = ann.value if isinstance(ann, ast.Constant) and isinstance(ann.value, str) else ast.unparse(ann)
            target, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value, kind = node.targets[0].id, node.value, None
        else:
            continue
        default = ast.literal_eval(value) if value is not None else None
        if kind is None:  # undeclared: typed from the name and the default
            kind = "path | None" if target.endswith(("_path", "_dir")) else _kind_of(default)
        last = lines[node.end_lineno - 1]
        help_text = last.split("#", 1)[1].strip() if "#" in last[node.end_col_offset:] else ""
        out[target] = Parameter(target, kind, default, help_text)
    return out


def _kind_of(value: Any) -> str:
    if value is None:
        return "str | None"
    for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (list, "list"), (dict, "dict")):
        if isinstance(value, t):
            return name
    return "str"


# -------------------------------------------------------------------------------------------------
# parsing values


class _Loader(yaml.SafeLoader):
    """YAML for list/dict values without YAML 1.1 surprises: ``Yes``/``on`` stay text, dates stay text."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.yaml_implicit_resolvers = {  # decimal integers only: 0123 stays text, never octal
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:int"] for k, v in _Loader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float",  # YAML 1.2 numbers: 1e-3 and 5e-2 are floats
                              re.compile(r"^[-+]?(?:\.\d+|(?:0|[1-9]\d*)(?:\.\d*)?)(?:[eE][-+]?\d+)?$"), list("-+.0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def load_yaml(text: str) -> Any:
    """YAML with booleans only for true/false and no date conversion (text stays text)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _alternatives(kind: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in kind:
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "|" and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [p for p in parts if p]


class _Bad(ValueError):
    pass


def coerce(value: Any, kind: str, from_text: bool) -> Any:
    """``value`` as the declared ``kind``; ``from_text``: the value is raw command-line text."""
    alts = _alternatives(kind)
    optional = "None" in alts
    alts = [a for a in alts if a != "None"]
    if value is None or (from_text and isinstance(value, str) and value.strip().lower() in NULL_WORDS):
        if optional:
            return None
        raise _Bad("it cannot be empty (null)")
    errors = []
    for alt in alts:
        try:
            return _coerce_one(value, alt, from_text)
        except _Bad as exc:
            errors.append(str(exc))
    raise _Bad(errors[0] if errors else "no type declared")


def _coerce_one(value: Any, kind: str, from_text: bool) -> Any:
    base = kind.split("[", 1)[0].strip()
    inner = kind[len(base) + 1:-1].strip() if "[" in kind else ""
    if base in ("str", "path"):
        if isinstance(value, str):
            return value
        if isinstance(value, bool) or isinstance(value, int | float):
            # a study file value the YAML parser turned into a number: keep what was written
            return str(value).lower() if isinstance(value, bool) else str(value)
        raise _Bad("it must be text")
    if base == "date":
        text = value.isoformat() if isinstance(value, dt.date) else str(value).strip()
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise _Bad(f"{text!r} is not a date written as YYYY-MM-DD")
        try:
            day = dt.date.fromisoformat(text)
        except ValueError as exc:
            raise _Bad(f"{text!r} is not a real date ({exc})") from None
        if not dt.date(1900, 1, 1) <= day <= dt.date(2200, 12, 31):
            raise _Bad(f"{text!r} is outside the years 1900-2200 (for 'no end', leave the parameter out)")
        return text
    if base == "int":
        if isinstance(value, bool):
            raise _Bad("it must be a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip().replace("_", ""))
        except ValueError:
            raise _Bad(f"{value!r} is not a whole number") from None
    if base == "float":
        if isinstance(value, bool):
            raise _Bad("it must be a number")
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+", text):
                raise _Bad(f"{value!r} could be a number with a thousands separator or a decimal comma; write "
                           f"{text.replace(',', '')} or {text.replace(',', '.', 1) if text.count(',') == 1 else '...'}")
            if text.count(",") == 1 and "." not in text:
                text = text.replace(",", ".")  # decimal comma: 0,3
        try:
            x = float(text) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise _Bad(f"{value!r} is not a number") from None
        if not math.isfinite(x):
            raise _Bad(f"{value!r} is not a finite number")
        return int(x) if isinstance(value, int) else x
    if base == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in ("true", "yes", "1", "on"):
            return True
        if word in ("false", "no", "0", "off"):
            return False
        raise _Bad(f"{value!r} is not true or false")
    if base == "Literal":
        choices = ast.literal_eval(f"[{inner}]")
        text = str(value)
        if text not in choices:
            close = difflib.get_close_matches(text, choices, n=1)
            raise _Bad(f"{text!r} is not one of {choices}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return text
    if base == "list":
        if from_text and isinstance(value, str):
            value = _yaml(value, "list")
            if isinstance(value, str | int | float):  # a single name: a list of one
                value = [value]
        if not isinstance(value, list):
            raise _Bad("it must be a list, e.g. '[a, b]'")
        return [coerce(v, inner, from_text) for v in value] if inner else _scalars(value, from_text)
    if base == "dict":
        if from_text and isinstance(value, str):
            value = _yaml(value, "mapping")
        if not isinstance(value, dict):
            raise _Bad("it must be a mapping, e.g. '{a: 1}'")
        if not inner:
            return _scalars(value, from_text)
        key_kind, val_kind = _alternatives_comma(inner)
        return {coerce(k, key_kind, from_text): coerce(v, val_kind, from_text) for k, v in value.items()}
    raise _Bad(f"unknown declared type {kind!r}")


def _yaml(text: str, what: str) -> Any:
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise _Bad(f"it is not a YAML {what} ({_first(exc)})") from None


def _scalars(value: Any, from_text: bool) -> Any:
    """Untyped lists and mappings from raw text (a study file): each text leaf read as a YAML scalar."""
    if isinstance(value, dict):
        return {k: _scalars(v, from_text) for k, v in value.items()}
    if isinstance(value, list):
        return [_scalars(v, from_text) for v in value]
    if from_text and isinstance(value, str):
        return load_yaml(value) if value.strip() else None
    return value


def _alternatives_comma(inner: str) -> tuple[str, str]:
    depth = 0
    for i, ch in enumerate(inner):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            return inner[:i].strip(), inner[i + 1:].strip()
    raise _Bad(f"bad mapping type {inner!r}")


def _first(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


# -------------------------------------------------------------------------------------------------
# ranges that hold in every notebook that has the parameter

RANGES: dict[str, tuple[str, Any]] = {
    "seed": ("at least 0", lambda x: x >= 0),
    "n_customers": ("at least 100 (the synthetic world needs some customers)", lambda x: x >= 100),
    "min_group_size": ("at least 1", lambda x: x >= 1),
    "min_n": ("at least 1", lambda x: x >= 1),
    "n_boot": ("at least 1", lambda x: x >= 1),
    "horizon": ("greater than 0", lambda x: x > 0),
    "fast_resolution_hours": ("greater than 0", lambda x: x > 0),
    "discount_rate": ("between 0 and 10 (an annual rate, e.g. 0.1 for 10%)", lambda x: 0 <= x < 10),
    "margin": ("between 0 and 1 (a share of spend, e.g. 0.3)", lambda x: 0 <= x <= 1),
    "cost_per_member": ("at least 0", lambda x: x >= 0),
    "setup_cost": ("at least 0", lambda x: x >= 0),
    "quotes_per_theme": ("at least 0", lambda x: x >= 0),
    "currency": ("1 to 8 printable characters, e.g. RUB, EUR or $",
                 lambda x: isinstance(x, str) and 1 <= len(x.strip()) <= 8 and x.isprintable()),
}
ORDERED_DATES = (("calibration_end", "holdout_end"),)


#: what ``-p spark_master`` takes (the examples a refusal names)
MASTER_FORMS = ("local", "local[4]", "local[*]", "spark://host:7077", "sc://host:15002", "yarn", "k8s://https://host")


def check_master(master: str) -> None:
    """Refuse a ``spark_master`` that is none of Spark's forms (:data:`MASTER_FORMS`) before anything runs."""
    if not re.fullmatch(r"local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|(spark|sc|k8s|mesos)://\S+|yarn",
                        master):
        raise ParameterError(f"{redact_master(master)!r} is not a Spark master; use one of {', '.join(MASTER_FORMS)}.")


def check(path: Path, given: dict[str, Any], from_text: bool, base: Path) -> dict[str, Any]:
    """Typed, range-checked values of ``given`` for the notebook at ``path``.

    ``from_text``: values are raw command-line text (else already parsed, e.g. from a study file).
    Relative ``path`` parameters become absolute (relative to ``base``). Raises one
    :class:`ParameterError` listing every problem.
    """
    decl = declared(path)
    unknown = [k for k in given if k not in decl]
    if unknown:
        lines = []
        for k in unknown:
            close = difflib.get_close_matches(k, list(decl), n=1)
            lines.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ParameterError(
            f"Notebook {path.stem} has no parameter {', '.join(lines)}. Its parameters are: {', '.join(decl)}. "
            f"See them with: cxresearch params {path.stem}"
        )
    out, problems = {}, []
    for name, value in given.items():
        p = decl[name]
        try:
            v = coerce(value, p.type, from_text)
        except _Bad as exc:
            problems.append(f"-p {name}: {exc}. It takes {p.type}, e.g. -p {name} {_example(p)}")
            continue
        rule = RANGES.get(name)
        if rule and isinstance(v, int | float | str) and not isinstance(v, bool) and not _holds(rule[1], v):
            problems.append(f"-p {name}: {v} is not allowed; it must be {rule[0]}, e.g. -p {name} {_example(p)}.")
            continue
        if name == "covariate_formula" and isinstance(v, str):  # a formula that cannot be read fails now
            from cxresearch.design import variables

            try:
                variables(v)
            except ParameterError as exc:
                problems.append(f"-p {name}: {exc}")
                continue
        if name == "spark_master" and isinstance(v, str):
            try:
                check_master(v)
            except ParameterError as exc:
                problems.append(f"-p {name}: {exc}")
                continue
        if "path" in _alternatives(p.type) and isinstance(v, str) and is_url(v):
            try:
                parse_url(v)
            except ValueError as exc:
                problems.append(f"-p {name}: {exc}")
                continue
            v = resolve_file(v, base)
        elif "path" in _alternatives(p.type) and isinstance(v, str) and v:
            v = Path(v).expanduser()
            v = str(v if v.is_absolute() else (base / v).resolve())
        out[name] = v
    merged = {k: p.default for k, p in decl.items()} | out
    for early, late in ORDERED_DATES:
        a, b = merged.get(early), merged.get(late)
        if isinstance(a, str) and isinstance(b, str) and (early in out or late in out) and b <= a:
            problems.append(f"-p {late} ({b}) must come after -p {early} ({a}): the holdout period follows "
                            "the calibration period.")
    if problems:
        raise ParameterError(f"Notebook {path.stem} cannot run with these parameters:\n  - " + "\n  - ".join(problems))
    return out


def _holds(rule: Any, value: Any) -> bool:
    try:
        return bool(rule(value))
    except TypeError:  # a number rule given text (the type check reports that) or the reverse
        return True


def _example(p: Parameter) -> str:
    alts = [a for a in _alternatives(p.type) if a != "None"]
    base = alts[0].split("[", 1)[0] if alts else "str"
    if base == "Literal":
        return repr(ast.literal_eval(f"[{alts[0][8:-1]}]")[0])
    if p.default is not None and base in ("int", "float", "str"):
        return str(p.default)
    return EXAMPLES.get(base, "...")


def describe(path: Path) -> str:
    """Plain-text list of a notebook's parameters: name, type, default, help."""
    decl = declared(path)
    width = max(len(n) for n in decl) if decl else 0
    rows = [f"{n:<{width}}  {p.type:<26} default {p.default!r}" + (f"\n{'':<{width}}  {p.help}" if p.help else "")
            for n, p in decl.items()]
    return f"Parameters of {path.stem} (give each as -p NAME VALUE):\n" + "\n".join(rows)
