"""Service audits: mystery-shopper and call checklists, compliance, unit ranking, trend, and the link to churn.

DataFrames in, typed results out: :func:`load` reads a run's :class:`~cxresearch.sources.Source` into
:class:`Audits`; :func:`criterion_pass_rates`, :func:`full_compliance` (:class:`Compliance`),
:func:`rank_units` (:class:`UnitRanking`), :func:`monthly_trend`, :func:`auditor_agreement`
(:class:`AuditorAgreement`) and :func:`churn_link` (:class:`ChurnLink`) compute;
:func:`compliance_claim` and :func:`churn_link_claim` return :class:`~cxresearch.stats.Claim` objects. The
rest is what a reader sees: sentences (``*_notes``, shown with :func:`tell`), tables with plain headers
(``*_table``), figures (``plot_*``: they draw, they compute nothing) and their descriptions (``*_alt``).

Interval methods: Wilson intervals for pass rates and shares (:func:`cxresearch.stats.wilson_interval`);
t intervals for mean scores; Fisher-z intervals for correlations; a bootstrap over each unit's audits for
rank intervals. Auditor agreement: Krippendorff's alpha (:func:`cxresearch.stats.krippendorff_alpha`) and
ICC(2,1).

Degenerate data never produce a NaN shown as a number: undefined values are reported as *not estimable*
with the reason. Units smaller than ``min_group_size`` are folded into "Other (small groups)" before
anything per unit is shown. Every ranking and ordering breaks ties by label
(:func:`cxresearch.stats.stable_sort`), so results are the same on every machine.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from cxresearch import contracts
from cxresearch import engine as engines
from cxresearch.display import filled, plain, table_labels
from cxresearch.io import (
    Column,
    Contract,
    InputError,
    Ledger,
    TableSource,
    first_row,
    hide_personal_labels,
    read_table,
    row_list,
    violation,
)
from cxresearch.privacy import OTHER, fold_groups
from cxresearch.stats import (
    Claim,
    fisher_z_interval,
    krippendorff_alpha,
    round_significant,
    stable_sort,
    verdict,
    wilson_interval,
)

DEFAULT_SCALE = (1.0, 5.0)  # scale criteria without a stated scale are scored 1..5
AUDIT_KINDS = {"binary": "pass/fail criteria", "scale": "scored criteria"}

Note = tuple[str, dict[str, Any]]  # a sentence: a display.say template and its values

CRITERIA = Contract("audit_criteria", (
    Column("criterion", "string"), Column("kind", "string", allowed=("binary", "scale")),
    Column("weight", "float", min=0), Column("must_have", "bool"),
    Column("label", "string", required=False, nullable=True,
           description="optional: the name a reader sees (empty: the name spelled out)")), key=("criterion",))


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass(frozen=True, eq=False)
class Audits:
    """The audit scores, criteria and (optionally) customers of one run.

    Attributes
    ----------
    audits
        One row per audit, criterion and auditor: ``audit_id``, ``unit``, ``date``, ``criterion``,
        ``kind`` (binary/scale), ``score``, optional ``auditor``; ``None`` when the table stays in an engine
        (then ``summary`` holds what the analyses need).
    criteria
        ``criterion``, ``kind``, ``weight``, ``must_have``, optional ``scale`` (or ``scale_min`` and
        ``scale_max``) and ``label`` (the name a reader sees).
    customers
        Customers with their unit, for churn by unit (``None`` when not given).
    synthetic
        Whether the tables are the built-in synthetic world.
    """

    audits: pd.DataFrame | None
    criteria: pd.DataFrame
    customers: pd.DataFrame | None = None
    synthetic: bool = False
    summary: AuditTables | None = None

    @cached_property
    def tables(self) -> AuditTables:
        """What the analyses use (:class:`AuditTables`): given by an engine, else summarised from ``audits``."""
        return self.summary if self.summary is not None else summarise(self.audits, self.criteria)

    @property
    def auditors(self) -> int:
        """Named auditors (0 without an ``auditor`` column)."""
        return self.tables.auditors


@dataclass(frozen=True, eq=False)
class AuditTables:
    """The audit table summarised, as every analysis here needs it (:func:`summarise` in memory, the same
    queries in an engine).

    Attributes
    ----------
    by_criterion
        ``criterion``, ``audits``, ``total`` and ``std`` (sample) of the primary scores
        (:func:`primary_scores`), by criterion: pass rates and scale means.
    by_audit
        One row per audit, by ``audit_id``: ``unit``, ``date``, ``score`` (weighted, 0–100; empty when its
        criteria all weigh 0), ``must_scored`` (must-have criteria scored) and ``must_min`` (the lowest of
        those scores): unit ranking, trend, full compliance.
    double
        The rows of every audit and criterion scored by two or more auditors: auditor agreement.
    rows, units, auditors
        Counts over every row.
    """

    by_criterion: pd.DataFrame
    by_audit: pd.DataFrame
    double: pd.DataFrame
    rows: int
    units: int
    auditors: int

    @property
    def audited(self) -> list[str]:
        """Criteria scored at least once."""
        return self.by_criterion.loc[self.by_criterion["audits"] > 0, "criterion"].tolist()


def load(source: TableSource, ledger: Ledger, engine: str = "duckdb", spark_master: str = "local[*]") -> Audits:
    """Audit scores, criteria with weights and (optionally) customers with their unit from ``source``.

    Every table is read through its contract and recorded in ``ledger`` (``results.ledger``). Refused
    with one message naming the file, column, rows and fix: criteria missing from the criteria file, an
    audit whose kind differs from its criterion's, binary scores other than 0/1, scale scores outside the
    criterion's scale, an audit with more than one unit or date, criteria whose weights are all 0, an
    unreadable scale, and must-have criteria that are not pass/fail. Negative weights are refused by the
    criteria contract.

    An audit table in Parquet files or a database (:func:`cxresearch.engine.in_engine`) stays in ``engine``
    (``duckdb``, or ``spark`` on ``spark_master``; a table URL in its database): the same checks run as
    queries and only :class:`AuditTables` come back (:func:`query_audits`).
    """
    paths = source.paths
    if "audits" not in paths or "audit_criteria" not in paths:
        raise InputError("'audits'", ["audits_path and criteria_path go together. Fix: give both."])
    if engines.in_engine(paths["audits"], engine):
        opened = engines.open_table(paths["audits"], "audits", engine, spark_master)
        table = engines.checked_table(opened, contracts.AUDITS, ledger=ledger)
        criteria = read_table(paths["audit_criteria"], CRITERIA, ledger=ledger)
        _check_criteria(criteria, paths["audit_criteria"])
        audits, summary = None, query_audits(opened, table, criteria, ledger)
    else:
        audits = read_table(paths["audits"], contracts.AUDITS, ledger=ledger)
        criteria = read_table(paths["audit_criteria"], CRITERIA, ledger=ledger)
        _check_criteria(criteria, paths["audit_criteria"])
        _check_audits(audits, criteria, paths["audits"])
        summary = None
    customers = read_table(paths["customers"], contracts.CUSTOMERS, ledger=ledger) if "customers" in paths else None
    return Audits(audits, criteria, customers, bool(source.synthetic), summary)


def query_audits(opened: engines.Opened, table: Any, criteria: pd.DataFrame, ledger: Ledger) -> AuditTables:
    """:func:`_check_audits` and :func:`summarise` as queries on an audit table checked by its contract
    (:func:`cxresearch.engine.checked_table`); rows are named by their key values."""
    import ibis

    backend, source = opened.con.name, opened.source
    crit = criterion_scales(criteria).merge(criteria[["criterion", "weight", "must_have"]], on="criterion")
    crit = ibis.memtable(crit.rename(columns={"criterion": "c_criterion", "kind": "c_kind"}).astype(
        {"scale_min": float, "scale_max": float, "weight": float, "must_have": bool}))
    j = table.left_join(crit, table.criterion == crit.c_criterion)
    unknown = j.c_criterion.isnull()
    wrong = ~unknown & (j.kind != j.c_kind)
    scale = ~unknown & ~wrong & (j.kind == "scale")
    outside = scale & ((j.score < j.scale_min) | (j.score > j.scale_max))
    names = engines.fetch(j.filter(unknown).select("criterion").distinct().order_by("criterion").limit(5),
                          source).column("criterion").to_pylist()
    checks = [("criterion", f"row(s) name criteria that are not in the criteria file ({names})",
               "add them to the criteria file with a kind and weight, or correct the names.", unknown),
              ("kind", "row(s) differ from their criterion's kind in the criteria file", "use the criteria file's kind.",
               wrong),
              ("score", "score(s) of binary criteria are not 0 or 1", "score pass as 1 and fail as 0.",
               ~unknown & ~wrong & (j.kind == "binary") & ~j.score.isin([0, 1]))]
    keys = [k for k in contracts.AUDITS.key if k in table.columns]
    problems = engines.rule_messages(j, checks, keys, source, raw=False)
    bad = engines.fetch(j.filter(outside).select("criterion", "scale_min", "scale_max").distinct(), source).to_pylist()
    if bad:
        ranges = sorted(f"'{r['criterion']}' {r['scale_min']:g}–{r['scale_max']:g}" for r in bad)
        problems += engines.rule_messages(j, [("score", f"score(s) lie outside their criterion's scale "
                                                        f"({', '.join(ranges[:5])})",
                                               "correct those scores, or state the scale in the criteria file "
                                               "(column 'scale', e.g. '0-10').", outside)], keys, source, raw=False)
    per_audit = table.group_by("audit_id").aggregate(units=table.unit.nunique(), dates=table.date.nunique())
    for col in ("unit", "date"):
        mixed = per_audit.filter(per_audit[f"{col}s"] > 1)
        n = engines.fetch(mixed.aggregate(n=mixed.count()), source).to_pylist()[0]["n"]
        if n:
            shown = engines.fetch(mixed.select("audit_id").order_by("audit_id").limit(engines.MAX_EXAMPLES), source)
            text = "; ".join(engines.key_text("audit_id", v) for v in shown.column("audit_id").to_pylist())
            more = f" (and {n - engines.MAX_EXAMPLES} more)" if n > engines.MAX_EXAMPLES else ""
            problems.append(f"column '{col}': {n} audit(s) have more than one {col}: {text}{more}. Fix: give each "
                            f"audit_id one {col} (or separate audits their own audit_id).")
    has_auditor = "auditor" in table.columns
    if not has_auditor and not problems:
        problems += [p.replace("may appear once.", "may appear once, or name the auditors (column 'auditor') when a "
                                                   "contact was scored twice.")
                     for p in engines._repeated_keys(table, ["audit_id", "criterion"], source)]
    if problems:
        raise InputError(source, problems)
    primary = table  # one row per audit and criterion (checked above) when no auditor is named
    if has_auditor:
        order = [table.auditor.isnull(), engines.text_order(table.auditor, backend)]
        first = ibis.row_number().over(group_by=[table.audit_id, table.criterion], order_by=order)
        primary = table.mutate(first_row=first).filter(lambda t: t.first_row == 0).drop("first_row")
    g = primary.group_by("criterion").aggregate(audits=primary.score.count(), total=primary.score.sum(),
                                                std=primary.score.std(how="sample"))
    by_criterion = engines.fetch(g, source).to_pandas()
    p = primary.inner_join(crit, primary.criterion == crit.c_criterion)
    value = (p.score - p.scale_min) / (p.scale_max - p.scale_min)
    a = p.group_by("audit_id").aggregate(
        unit=p.unit.min(), date=p.date.min(), weighted=(value * p.weight).sum(), weight=p.weight.sum(),
        must_scored=p.criterion.nunique(where=p.must_have), must_min=p.score.min(where=p.must_have))
    by_audit = engines.fetch(a, source).to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True)
    by_audit["score"] = 100 * by_audit["weighted"] / by_audit["weight"].where(by_audit["weight"] > 0)
    by_audit = by_audit[["audit_id", "unit", "date", "score", "must_scored", "must_min"]]
    double = table.limit(0)
    if has_auditor:
        named = table.filter(table.auditor.notnull())
        pairs = named.group_by(["audit_id", "criterion"]).aggregate(k=named.auditor.nunique())
        double = named.semi_join(pairs.filter(pairs.k >= 2), ["audit_id", "criterion"])
    counts = {"rows": table.count(), "units": table.unit.nunique(),
              **({"auditors": table.auditor.nunique()} if has_auditor else {})}
    n = engines.fetch(table.aggregate(**counts), source).to_pylist()[0]
    double = engines.fetch(double, source).to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True)

    # units named by a person, say: the pseudonyms the whole table gets in memory
    hide_personal_labels(by_audit, contracts.AUDITS, ledger, engines.labels_in(table, source), also=[double])
    return AuditTables(
        by_criterion.sort_values("criterion", key=_text_key, kind="mergesort").reset_index(drop=True),
        by_audit.sort_values("audit_id", key=_text_key, kind="mergesort").reset_index(drop=True),
        double, int(n["rows"]), int(n["units"]), int(n.get("auditors") or 0))


def _check_criteria(criteria: pd.DataFrame, path: Path) -> None:
    off = first_row(path)
    problems = []
    if not (criteria["weight"] > 0).any():
        problems.append("column 'weight': every weight is 0, so no audit can be scored. Fix: give the criteria "
                        "positive weights.")
    scales = criterion_scales(criteria)
    bad_scale = (criteria["kind"] == "scale") & ~(scales["scale_min"] < scales["scale_max"])
    violation(problems, bad_scale, criteria, "scale" if "scale" in criteria else "scale_min",
              "scale criteria have no readable range with minimum below maximum",
              "write the range as '1-5' (or fill scale_min and scale_max).", off)
    violation(problems, criteria["must_have"].astype(bool) & (criteria["kind"] == "scale"), criteria, "must_have",
              "must-have criteria are scales, but passing a must-have is pass/fail",
              "score them pass/fail (kind binary) or set must_have to no.", off, values_of="criterion")
    if problems:
        raise InputError(f"'audit_criteria' ({path})", problems)


def _check_audits(audits: pd.DataFrame, criteria: pd.DataFrame, path: Path) -> None:
    off = first_row(path)
    problems = []
    known = criteria.set_index("criterion")
    unknown = ~audits["criterion"].isin(known.index)
    names = sorted(set(audits.loc[unknown, "criterion"]), key=str)
    violation(problems, unknown, audits, "criterion", f"row(s) name criteria that are not in the criteria file "
              f"({names[:5]})", "add them to the criteria file with a kind and weight, or correct the names.", off)
    wrong_kind = ~unknown & (audits["kind"] != audits["criterion"].map(known["kind"]))
    violation(problems, wrong_kind, audits, "kind", "row(s) differ from their criterion's kind in the criteria file",
              "use the criteria file's kind.", off)
    binary = ~unknown & ~wrong_kind & (audits["kind"] == "binary")
    violation(problems, binary & ~audits["score"].isin([0, 1]), audits, "score",
              "score(s) of binary criteria are not 0 or 1", "score pass as 1 and fail as 0.", off)
    lim = criterion_scales(criteria).set_index("criterion")
    lo, hi = audits["criterion"].map(lim["scale_min"]), audits["criterion"].map(lim["scale_max"])
    scale = ~unknown & ~wrong_kind & (audits["kind"] == "scale")
    outside = scale & ((audits["score"] < lo) | (audits["score"] > hi))
    if outside.any():
        ranges = sorted({f"'{c}' {lim.at[c, 'scale_min']:g}–{lim.at[c, 'scale_max']:g}"
                         for c in audits.loc[outside, "criterion"]})
        problems.append(f"column 'score': {int(outside.sum())} score(s) lie outside their criterion's scale "
                        f"({', '.join(ranges[:5])}): {row_list(outside, audits, 'score', off)}. Fix: correct those "
                        "scores, or state the scale in the criteria file (column 'scale', e.g. '0-10').")
    if "auditor" not in audits:  # one score per audit and criterion when no auditor is named
        dup = audits.duplicated(["audit_id", "criterion"], keep=False)
        if dup.any():
            problems.append(f"key ['audit_id', 'criterion']: {int(dup.sum())} row(s) share a key with another row: "
                            f"{row_list(dup, audits, None, off)}. Fix: remove the duplicates, or name the auditors "
                            "(column 'auditor') when a contact was scored twice.")
    for col in ("unit", "date"):
        mixed = audits.groupby("audit_id")[col].transform("nunique") > 1
        if mixed.any():  # counted in audits, not rows
            problems.append(f"column '{col}': {int(audits.loc[mixed, 'audit_id'].nunique())} audit(s) have more than "
                            f"one {col}: {row_list(mixed, audits, 'audit_id', off)}. Fix: give each audit_id one {col} "
                            "(or separate audits their own audit_id).")
    if problems:
        raise InputError(f"'audits' ({path})", problems)


def reader_labels(data: Audits) -> dict[str, str]:
    """Labels of the criteria (the criteria file's ``label`` column) for :func:`cxresearch.display.use_labels`."""
    return table_labels(data.criteria, "criterion")


# ---------------------------------------------------------------------------------------------
# criteria


def primary_scores(audits: pd.DataFrame) -> pd.DataFrame:
    """One score per audit and criterion: the first auditor's (double-scored audits are for consistency)."""
    keys = ["audit_id", "criterion", *(["auditor"] if "auditor" in audits else [])]
    return audits.sort_values(keys, key=_text_key, kind="mergesort").drop_duplicates(["audit_id", "criterion"])


def criterion_totals(scores: pd.DataFrame) -> pd.DataFrame:
    """``audits``, ``total`` and ``std`` (sample; NaN for one audit) of the scores per criterion."""
    g = scores.assign(score=scores["score"].astype(float)).groupby("criterion", sort=False)["score"]
    out = g.agg(audits="count", total="sum", std="std").reset_index()
    return out.sort_values("criterion", key=_text_key, kind="mergesort").reset_index(drop=True)


def audit_table(scores: pd.DataFrame, criteria: pd.DataFrame) -> pd.DataFrame:
    """One row per audit (by ``audit_id``): ``unit``, ``date``, weighted ``score`` 0–100 (:func:`audit_scores`;
    empty when its criteria all weigh 0), ``must_scored`` and ``must_min`` (must-have criteria scored, lowest
    of their scores)."""
    scales = criterion_scales(criteria).set_index("criterion")
    c = criteria.set_index("criterion")[["weight", "must_have"]].join(scales[["scale_min", "scale_max"]])
    s = scores.join(c, on="criterion")
    value = (s["score"].astype(float) - s["scale_min"]) / (s["scale_max"] - s["scale_min"])
    must = s["must_have"].fillna(False).astype(bool)
    per = pd.DataFrame({"audit_id": s["audit_id"], "weighted": value * s["weight"], "weight": s["weight"],
                        "must": s["criterion"].where(must), "must_score": s["score"].astype(float).where(must)})
    g = per.groupby("audit_id", sort=False).agg(weighted=("weighted", "sum"), weight=("weight", "sum"),
                                                must_scored=("must", "nunique"), must_min=("must_score", "min"))
    meta = scores.drop_duplicates("audit_id").set_index("audit_id")[["unit", "date"]]
    out = meta.join(g)
    out["score"] = 100 * out["weighted"] / out["weight"].where(out["weight"] > 0)
    out = out.reset_index()[["audit_id", "unit", "date", "score", "must_scored", "must_min"]]
    return out.sort_values("audit_id", key=_text_key, kind="mergesort").reset_index(drop=True)


def double_scored(audits: pd.DataFrame) -> pd.DataFrame:
    """The rows of every audit and criterion scored by two or more auditors."""
    if "auditor" not in audits:
        return audits.iloc[:0]
    a = audits[audits["auditor"].notna()]
    two = a.groupby(["audit_id", "criterion"])["auditor"].transform("nunique") >= 2
    return a[two].reset_index(drop=True)


def summarise(audits: pd.DataFrame, criteria: pd.DataFrame) -> AuditTables:
    """The :class:`AuditTables` of an audit table held in memory."""
    scores = primary_scores(audits)
    auditors = int(audits["auditor"].nunique()) if "auditor" in audits else 0
    return AuditTables(criterion_totals(scores), audit_table(scores, criteria), double_scored(audits), len(audits),
                       int(audits["unit"].nunique()), auditors)


def _text_key(s: pd.Series) -> pd.Series:
    """Sort key: labels as text, missing last."""
    return s.astype(object).where(s.notna(), "\uffff").astype(str)


def criterion_scales(criteria: pd.DataFrame) -> pd.DataFrame:
    """Lowest and highest possible score per criterion: 0/1 for binary; for scales the criteria file's
    ``scale_min``/``scale_max`` columns, else its ``scale`` text ("1-5", "0–10"), else 1–5."""
    out = criteria[["criterion", "kind"]].copy()
    bounds = [(0.0, 1.0) if r.kind == "binary" else _scale_bounds(r._asdict()) for r in criteria.itertuples(index=False)]
    out["scale_min"], out["scale_max"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return out


_SCALE = re.compile(r"^\s*(-?\d+(?:[.,]\d+)?)\s*(?:-|–|—|\.\.|to)\s*(-?\d+(?:[.,]\d+)?)\s*$")


def _scale_bounds(row: dict[str, Any]) -> tuple[float, float]:
    """(min, max) of a scale criterion; NaN when the criteria file's scale cannot be read."""
    if filled(row.get("scale_min")) and filled(row.get("scale_max")):
        try:
            return float(row["scale_min"]), float(row["scale_max"])
        except (TypeError, ValueError):
            return math.nan, math.nan
    if filled(row.get("scale")):
        m = _SCALE.match(str(row["scale"]))
        if not m:
            return math.nan, math.nan
        return float(m.group(1).replace(",", ".")), float(m.group(2).replace(",", "."))
    return DEFAULT_SCALE


def _t_half_width(std: Any, n: Any) -> Any:
    """Half-width of a t 95% interval of a mean (``n`` ≥ 2)."""
    return stats.t.ppf(0.975, np.maximum(np.asarray(n) - 1, 1)) * std / np.sqrt(n)


def criterion_pass_rates(scores: pd.DataFrame, criteria: pd.DataFrame, min_n: int = 1) -> pd.DataFrame:
    """Binary criteria: pass rate with Wilson 95% CI; scale criteria: mean with t interval.

    ``scores``: one score per audit and criterion (:func:`primary_scores`), or their
    :func:`criterion_totals` (``AuditTables.by_criterion``). A criterion with fewer than ``min_n`` audits (or
    none) has no estimate (empty cells, ``note`` says why); a scale mean from one audit has no interval.
    """
    totals = (criterion_totals(scores) if "score" in scores else scores).set_index("criterion")
    rows = []
    for r in criteria.itertuples(index=False):
        n = int(totals.at[r.criterion, "audits"]) if r.criterion in totals.index else 0
        row = {"criterion": r.criterion, "kind": r.kind, "must_have": bool(r.must_have), "audits": n,
               "estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "note": ""}
        if n == 0:
            row["note"] = "not audited"
            rows.append(row)
            continue
        total, std = float(totals.at[r.criterion, "total"]), float(totals.at[r.criterion, "std"])
        mean = total / n
        if n < min_n:
            row["note"] = f"fewer than {min_n} audits: not shown"
        elif r.kind == "binary":
            lo, hi = wilson_interval(total, n)
            row.update(estimate=mean, ci_low=lo, ci_high=hi)
        else:
            row["estimate"] = mean
            if n >= 2:
                half = float(_t_half_width(std, n))
                row.update(ci_low=mean - half, ci_high=mean + half)
            else:
                row["note"] = "one audit: no interval"
        rows.append(row)
    return pd.DataFrame(rows)


def _none(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def rate_metrics(rates: pd.DataFrame, kind: str) -> dict[str, Any]:
    """``{criterion: interval}`` for criteria of one kind that have an estimate (never NaN)."""
    return {r.criterion: {"estimate": r.estimate, "ci_low": _none(r.ci_low), "ci_high": _none(r.ci_high)}
            for r in rates[rates["kind"] == kind].itertuples() if math.isfinite(r.estimate)}


@dataclass(frozen=True)
class Compliance:
    """Share of audits that pass every must-have criterion, with its Wilson 95% interval.

    ``audits`` counts the audits scored on every must-have criterion (the others are ``incomplete``);
    ``must_have`` lists the criteria checked; ``estimate`` is ``None`` when not estimable (``reason``).
    """

    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    audits: int = 0
    incomplete: int = 0
    must_have: list[str] = field(default_factory=list)
    reason: str | None = None


def full_compliance(scores: pd.DataFrame, criteria: pd.DataFrame, min_n: int = 1,
                    audited: Any = None) -> Compliance:
    """Share of audits that pass every must-have criterion (Wilson 95% CI).

    ``scores``: one score per audit and criterion, or the per-audit table (:func:`audit_table`,
    ``AuditTables.by_audit``) with the criteria scored at all as ``audited``. Only audits scored on every
    must-have criterion that was audited at all count. With no must-have criterion, or fewer than ``min_n``
    complete audits, the share is not estimable.
    """
    if "criterion" in scores:
        audited, scores = scores["criterion"], audit_table(scores, criteria)
    elif audited is None:
        raise ValueError("full_compliance of a per-audit table needs the criteria scored at all (audited=...).")
    must = sorted(set(criteria.loc[criteria["must_have"].astype(bool), "criterion"]) & set(audited), key=str)
    if not must:
        return Compliance(must_have=must, reason="no must-have criterion was audited")
    complete = scores[scores["must_scored"] == len(must)]
    incomplete = len(scores) - len(complete)
    k, n = int((complete["must_min"] >= 1).sum()), len(complete)
    base = {"audits": n, "incomplete": incomplete, "must_have": must}
    if n == 0:
        return Compliance(**base, reason="no audit was scored on every must-have criterion")
    if n < min_n:
        return Compliance(**base, reason=f"fewer than {min_n} audits were scored on every must-have criterion")
    lo, hi = wilson_interval(k, n)
    return Compliance(k / n, lo, hi, **base)


def compliance_claim(full: Compliance, low: float = 0.10, high: float = 0.20, truth: float | None = None) -> Claim:
    """The essays' claim "only 10–20% get the intended service": supported when the share's interval lies
    inside [``low``, ``high``] (unit "share": shown as %); ``truth`` is the planted share as auditors score it
    when the data are synthetic (:func:`cxresearch.checks.audit_compliance`)."""
    testable = full.estimate is not None
    test = (f"share of audited contacts passing every must-have criterion, Wilson 95% CI; supported when inside "
            f"{100 * low:g}–{100 * high:g}%" + ("" if testable else f" (not testable: {full.reason})"))
    return Claim(id="only_10_20_percent_get_intended_service",
                 claim="Without a deliberate system, only 10–20% of customers receive the intended service", test=test,
                 estimate=full.estimate, ci_low=full.ci_low, ci_high=full.ci_high,
                 verdict=verdict(full.ci_low, full.ci_high, within=(low, high)) if testable else "not testable",
                 n=int(full.audits), note=None if testable else f"not testable: {full.reason}", unit="share",
                 truth=truth)


# ---------------------------------------------------------------------------------------------
# units


def audit_scores(scores: pd.DataFrame, criteria: pd.DataFrame) -> pd.DataFrame:
    """Weighted total score per audit (0–100): binary 0/1, scales rescaled from their range to 0..1.

    ``scores``: one score per audit and criterion, or the per-audit table (:func:`audit_table`). Each scale
    criterion uses its own range (:func:`criterion_scales`). Audits whose criteria all weigh 0 get no score
    and are left out (``.attrs["unscored"]`` counts them).
    """
    if "criterion" in scores:
        scores = audit_table(scores, criteria)
    out = scores[["audit_id", "unit", "date", "score"]]
    unscored = int(out["score"].isna().sum())
    out = out[out["score"].notna()].reset_index(drop=True)
    out.attrs["unscored"] = unscored
    return out


def fold_small_units(audit_table: pd.DataFrame, min_n: int = 5) -> tuple[pd.DataFrame, list[str]]:
    """Units with fewer than ``min_n`` audits folded into "Other (small groups)" (itself at least ``min_n``;
    when all small units together stay below ``min_n`` their audits are left out of per-unit results)."""
    recoded, folded = fold_groups(audit_table["unit"], min_n)
    out = audit_table.assign(unit=recoded)
    return out[out["unit"].notna()].reset_index(drop=True), folded


def unit_ranking(audit_table: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean score per unit with a t interval, and a bootstrap 95% interval of its rank (1 = best).

    Each unit's audits are resampled within the unit. Means are compared at 9 significant digits (ties
    share the average rank) and the table is sorted by rank, then unit label. A row "Other (small groups)"
    (see :func:`fold_small_units`) is shown but not ranked. A unit with one audit has no interval.
    """
    g = audit_table.groupby("unit")["score"]
    out = g.agg(["mean", "std", "size"]).rename(columns={"size": "audits"})
    half = _t_half_width(out["std"], out["audits"]).where(out["audits"] >= 2)
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    units = sorted((u for u in out.index if not str(u).startswith(OTHER)), key=str)
    out["rank"] = out["rank_low"] = out["rank_high"] = math.nan
    if units:
        groups = {u: g.get_group(u).to_numpy(dtype=float) for u in units}
        rng = np.random.default_rng(seed)
        ranks = np.empty((int(n_boot), len(units)))
        for b in range(int(n_boot)):  # a stratified bootstrap: no replicate can fail
            means = np.array([rng.choice(groups[u], len(groups[u])).mean() for u in units])
            ranks[b] = stats.rankdata(-round_significant(means))
        out.loc[units, "rank"] = stats.rankdata(-round_significant(out.loc[units, "mean"].to_numpy()))
        out.loc[units, "rank_low"] = np.quantile(ranks, 0.025, axis=0)
        out.loc[units, "rank_high"] = np.quantile(ranks, 0.975, axis=0)
    out = out.drop(columns="std").rename_axis("unit").reset_index()
    return stable_sort(out, "rank", tie="unit").reset_index(drop=True)


def separable(ranking: pd.DataFrame) -> pd.DataFrame:
    """Mark units the data can single out: the whole 95% rank interval in the top (or bottom) quarter.

    Needs at least two ranked units (with one, "top" and "bottom" mean nothing).
    """
    r = ranking.copy()
    ranked = r["rank"].notna()
    n = int(ranked.sum())
    q = math.ceil(n / 4)
    r["clearly top"] = ranked & (r["rank_high"] <= q) & (n >= 2)
    r["clearly bottom"] = ranked & (r["rank_low"] > n - q) & (n >= 2)
    return r


def by_score(ranking: pd.DataFrame) -> pd.DataFrame:
    """Units best first by mean score (ties by unit): the order of :func:`plot_ranking`."""
    return stable_sort(ranking, "mean", ascending=False, tie="unit").reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class UnitRanking:
    """Audit scores per unit and what a ranking can say.

    ``audits``: one weighted score (0–100) per audit, small units folded (:func:`audit_scores`,
    :func:`fold_small_units`); ``ranking``: :func:`separable` of :func:`unit_ranking`; ``folded``: the units
    folded into "Other (small groups)"; ``unscored``: audits left out because their criteria all weigh 0.
    """

    audits: pd.DataFrame
    ranking: pd.DataFrame
    folded: list[str]
    unscored: int = 0

    @property
    def ranked(self) -> int:
        return int(self.ranking["rank"].notna().sum())

    @property
    def best_first(self) -> pd.DataFrame:
        """The ranking by mean score, best first (:func:`by_score`): the order of :func:`plot_ranking`."""
        return by_score(self.ranking)

    def singled_out(self, which: str = "top") -> list[str]:
        """Units whose whole rank interval lies in the top (``"top"``) or bottom quarter."""
        col = f"clearly {which}"
        return self.ranking.loc[self.ranking[col], "unit"].astype(str).tolist() if col in self.ranking else []


def rank_units(scores: pd.DataFrame, criteria: pd.DataFrame, min_n: int = 5, n_boot: int = 1000,
               seed: int = 0) -> UnitRanking:
    """Score every audit, fold units with fewer than ``min_n`` audits, rank the units with rank intervals."""
    table = audit_scores(scores, criteria)
    folded_table, folded = fold_small_units(table, min_n)
    return UnitRanking(folded_table, separable(unit_ranking(folded_table, n_boot, seed)), folded,
                       int(table.attrs.get("unscored", 0)))


def unit_metrics(ranking: pd.DataFrame) -> dict[str, Any]:
    """``{unit: interval}`` of unit mean scores (no interval for one-audit units; never NaN)."""
    return {str(r.unit): {"estimate": float(r.mean), "ci_low": _none(r.ci_low), "ci_high": _none(r.ci_high)}
            for r in ranking.itertuples()}


def monthly_trend(audit_table: pd.DataFrame, min_n: int = 1) -> pd.DataFrame:
    """Mean audit score per month with a t interval (no interval for a month with one audit).

    Months with fewer than ``min_n`` audits are left out (``.attrs["omitted"]`` counts them).
    """
    m = audit_table.assign(month=pd.to_datetime(audit_table["date"]).dt.to_period("M").astype(str))
    g = m.groupby("month")["score"].agg(["mean", "std", "size"]).rename(columns={"size": "audits"})
    omitted = int((g["audits"] < min_n).sum())
    g = g[g["audits"] >= min_n]
    half = _t_half_width(g["std"], g["audits"])
    g["ci_low"], g["ci_high"] = g["mean"] - half, g["mean"] + half
    out = g.drop(columns="std").reset_index()
    out.attrs["omitted"] = omitted
    return out


# ---------------------------------------------------------------------------------------------
# auditors


def icc_2_1(x: np.ndarray) -> float:
    """ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979).

    NaN when undefined: fewer than two targets or raters, or no variation at all.
    """
    x = np.asarray(x, float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2 or not np.all(np.isfinite(x)):
        return math.nan
    n, k = x.shape
    grand = x.mean()
    ms_r = k * np.sum((x.mean(axis=1) - grand) ** 2) / (n - 1)
    ms_c = n * np.sum((x.mean(axis=0) - grand) ** 2) / (k - 1)
    ss_e = np.sum((x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand) ** 2)
    ms_e = ss_e / ((n - 1) * (k - 1))
    denom = ms_r + (k - 1) * ms_e + k * (ms_c - ms_e) / n
    return float((ms_r - ms_e) / denom) if abs(denom) > 1e-12 * max(1.0, float(np.var(x))) else math.nan


@dataclass(frozen=True, eq=False)
class AuditorAgreement:
    """Agreement of two auditors scoring the same contacts, per kind of criterion (``table``), and how many
    auditors are named (``auditors``)."""

    table: pd.DataFrame
    auditors: int

    @property
    def testable(self) -> bool:
        return self.auditors >= 2 and not self.table.empty


def auditor_agreement(audits: pd.DataFrame, auditors: int | None = None) -> AuditorAgreement:
    """On double-scored audits: binary criteria by Krippendorff's alpha (nominal), scales by ICC(2,1) and
    alpha (interval). ``audits``: every row, or those of the double-scored audits
    (``AuditTables.double``) with the number of named ``auditors`` in the whole table.

    The table is empty when no audit was scored by two auditors (agreement not testable). Undefined values
    (no variation, fewer than two pairs) are left empty with the reason in ``note``.
    """
    cols = ["criteria", "pairs", "krippendorff_alpha", "icc_2_1", "exact agreement", "note"]
    if "auditor" not in audits:
        return AuditorAgreement(pd.DataFrame(columns=cols), 0)
    a = audits[audits["auditor"].notna()]
    counts = a.groupby(["audit_id", "criterion"])["auditor"].nunique()
    double = counts[counts >= 2].reset_index()[["audit_id", "criterion"]]
    d = a.merge(double, on=["audit_id", "criterion"])
    d = d.sort_values(["audit_id", "criterion", "auditor"], key=_text_key, kind="mergesort")
    d = d.assign(slot=d.groupby(["audit_id", "criterion"]).cumcount())
    rows = []
    for kind, level in (("binary", "nominal"), ("scale", "interval")):
        sub = d[(d["kind"] == kind) & (d["slot"] < 2)]
        if sub.empty:
            continue
        x = sub.pivot_table(index=["audit_id", "criterion"], columns="slot", values="score").dropna().to_numpy()
        alpha = krippendorff_alpha(x.T, level)
        icc = icc_2_1(x) if kind == "scale" else math.nan
        note = ""
        if len(x) < 2:
            note = "fewer than two double-scored contacts: agreement not testable"
            alpha = icc = math.nan
        elif not math.isfinite(alpha):
            note = "every score is the same: agreement is undefined (no variation)"
        rows.append({"criteria": kind, "pairs": len(x), "krippendorff_alpha": alpha, "icc_2_1": icc,
                     "exact agreement": float(np.mean(x[:, 0] == x[:, 1])) if len(x) else math.nan, "note": note})
    return AuditorAgreement(pd.DataFrame(rows, columns=cols), int(a["auditor"].nunique()) if auditors is None else auditors)


def auditor_metrics(consistency: pd.DataFrame) -> dict[str, Any]:
    """``{kind: {krippendorff_alpha, icc_2_1}}`` with only the defined values."""
    out = {}
    for r in consistency.itertuples():
        vals = {k: float(v) for k, v in (("krippendorff_alpha", r.krippendorff_alpha), ("icc_2_1", r.icc_2_1))
                if v is not None and math.isfinite(v)}
        if vals:
            out[r.criteria] = vals
    return out


# ---------------------------------------------------------------------------------------------
# audits and churn


@dataclass(frozen=True, eq=False)
class Correlation:
    """A correlation with its Fisher-z 95% interval; ``estimate`` is ``None`` when not estimable (``reason``)."""

    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    n: int = 0
    reason: str | None = None


def correlation(x: np.ndarray, y: np.ndarray, method: str = "spearman") -> Correlation:
    """Spearman (or Pearson) correlation with a Fisher-z 95% interval (not estimable with fewer than 4 pairs
    or a constant variable). The interval always contains the estimate (|r| = 1 gives a one-sided interval)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 4:
        return Correlation(n=n, reason=f"{n} units: a correlation needs at least 4")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(n=n, reason="one of the two variables is the same for every unit")
    r, p = (stats.spearmanr if method == "spearman" else stats.pearsonr)(x, y)
    if not math.isfinite(r):
        return Correlation(n=n, reason="the correlation is undefined")
    lo, hi = fisher_z_interval(float(np.clip(r, -1 + 1e-12, 1 - 1e-12)), n)
    return Correlation(float(r), float(min(lo, r)), float(max(hi, r)), float(p), n)


@dataclass(frozen=True, eq=False)
class ChurnLink(Correlation):
    """Ranked units' mean audit score against the share of their customers who left (``joined``: one row
    per unit with ``mean``, ``customers``, ``left``), and the Spearman correlation of the two."""

    joined: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["mean", "customers", "left"]))


def churn_by_unit(customers: pd.DataFrame, unit_col: str, min_n: int = 5) -> pd.DataFrame:
    """Customers and the share who left per unit (units with fewer than ``min_n`` customers left out).

    Empty when the customer table has no ``churn_date`` column.
    """
    if "churn_date" not in customers or unit_col not in customers:
        return pd.DataFrame(columns=["customers", "left"])
    g = customers.groupby(unit_col).agg(customers=("customer_id", "size"),
                                        left=("churn_date", lambda s: float(s.notna().mean())))
    return g[g["customers"] >= min_n]


def churn_link(ranking: pd.DataFrame, customers: pd.DataFrame | None, unit_col: str | None,
               min_n: int = 5) -> ChurnLink:
    """Ranked units' mean audit score joined with their churn (:func:`churn_by_unit`), and the Spearman link.

    Not estimable (``reason`` says why) without a customer table with the units (``unit_col``), or with
    fewer than ``max(min_n, 4)`` units that have both enough audits and enough customers.
    """
    if customers is None or not unit_col or unit_col not in customers:
        return ChurnLink(reason="no customer table with the customers' unit was given")
    by_unit = churn_by_unit(customers, unit_col, min_n)
    joined = ranking[ranking["rank"].notna()].set_index("unit")[["mean"]].join(by_unit, how="inner")
    need = max(int(min_n), 4)
    if len(joined) < need:
        return ChurnLink(n=len(joined), joined=joined,
                         reason=f"{len(joined)} unit(s) have both at least {min_n} audits and at least {min_n} "
                                f"customers; the link needs at least {need}")
    r = correlation(joined["mean"].to_numpy(), joined["left"].to_numpy())
    return ChurnLink(r.estimate, r.ci_low, r.ci_high, r.p_value, r.n, r.reason, joined)


def churn_link_claim(link: Correlation) -> Claim:
    """The claim "units with better audits keep their customers" (a negative correlation of audit score and
    the share of customers who left)."""
    testable = link.estimate is not None
    return Claim(id="better_audited_units_keep_customers", claim="Units with better audits keep their customers longer",
                 test=("Spearman correlation of unit audit score and share of the unit's customers who left, Fisher-z "
                       "CI" + ("" if testable else f" (not testable: {link.reason})")),
                 estimate=link.estimate, ci_low=link.ci_low, ci_high=link.ci_high, p_value=link.p_value,
                 verdict=verdict(link.ci_low, link.ci_high, direction=-1) if testable else "not testable",
                 n=int(link.n), note=None if testable else f"not testable: {link.reason}", unit="",
                 meaning=("A rank correlation from −1 to 1. Negative: units with better audits lose a smaller share of "
                          "their customers (the claim holds); 0: no link; positive: they lose more"))


# ---------------------------------------------------------------------------------------------
# the run's metrics


def metrics(data: Audits, rates: pd.DataFrame, units: UnitRanking, full: Compliance, agreement: AuditorAgreement,
            link: Correlation) -> dict[str, dict[str, Any]]:
    """The run's metrics as ``{name: keyword arguments of Results.metric}`` (``value``, ``headline``, ``label``,
    ``percent``)."""
    out: dict[str, dict[str, Any]] = {
        "n_audits": {"value": len(data.tables.by_audit), "headline": True, "label": "audits"},
        "criterion_pass_rate": {"value": rate_metrics(rates, "binary")},
        "criterion_scale_mean": {"value": rate_metrics(rates, "scale")},
        "unit_scores": {"value": unit_metrics(units.ranking)},
    }
    if full.estimate is not None:
        out["share_full_compliance"] = {"value": {"estimate": full.estimate, "ci_low": full.ci_low,
                                                  "ci_high": full.ci_high},
                                        "headline": True, "label": "audits passing every must-have", "percent": True}
    if auditor_metrics(agreement.table):
        out["auditor_agreement"] = {"value": auditor_metrics(agreement.table)}
    if link.estimate is not None:
        out["audit_churn_correlation"] = {"value": {"estimate": link.estimate, "ci_low": link.ci_low,
                                                    "ci_high": link.ci_high}}
    return out


# ---------------------------------------------------------------------------------------------
# sentences: what the report says in words (each a display.say template with its values)


def _names(values: list[Any]) -> str:
    return ", ".join(map(plain, values))


def overview_notes(data: Audits) -> list[Note]:
    t, c = data.tables, data.criteria
    return [("**{audits:,} audits** of {units} units, {criteria} criteria ({must} must-have), {auditors} auditor(s).",
             {"audits": len(t.by_audit), "units": t.units, "criteria": len(c),
              "must": int(c["must_have"].sum()), "auditors": max(data.auditors, 1)})]


def compliance_notes(full: Compliance, rates: pd.DataFrame) -> list[Note]:
    """The share passing every must-have, audits left out of it, and criteria no audit scored."""
    if full.estimate is not None:
        notes: list[Note] = [("Audits passing **every must-have criterion** ({must}): **{share:.0%}** (95% CI {lo:.0%} "
                              "to {hi:.0%}, {n:,} audits).",
                              {"must": _names(full.must_have), "share": full.estimate, "lo": full.ci_low,
                               "hi": full.ci_high, "n": full.audits})]
    else:
        notes = [("The share of audits passing every must-have criterion is **not estimable**: {reason}.",
                  {"reason": full.reason})]
    if full.incomplete:
        notes.append(("{n} audit(s) were not scored on every must-have criterion and are left out of that share.",
                      {"n": full.incomplete}))
    not_audited = rates.loc[rates["audits"] == 0, "criterion"].astype(str).tolist()
    if not_audited:
        notes.append(("Criteria in the list that no audit scored (no estimate): {names}.", {"names": _names(not_audited)}))
    return notes


def fold_notes(units: UnitRanking, min_n: int = 5) -> list[Note]:
    """Audits without a score and units folded into "Other (small groups)"."""
    notes: list[Note] = []
    if units.unscored:
        notes.append(("{n} audit(s) only cover criteria with weight 0 and get no score.", {"n": units.unscored}))
    if units.folded:
        notes.append(("Units with fewer than {m} audits are not shown on their own: together (when they reach {m} "
                      "audits) they appear as *Other (small groups)*, which is not ranked. Folded: {units}.",
                      {"m": min_n, "units": _names(units.folded)}))
    return notes


def ranking_notes(units: UnitRanking, min_n: int = 5) -> list[Note]:
    """Which units the data single out (or that no ranking can be made)."""
    if units.ranked < 2:
        return [("Fewer than two units have at least {m} audits: no ranking can be made.", {"m": min_n})]
    return [("Clearly in the top quarter: **{top}**; clearly in the bottom quarter: **{bottom}**. The others cannot "
             "be told apart reliably.", {"top": _names(units.singled_out("top")) or "none",
                                         "bottom": _names(units.singled_out("bottom")) or "none"})]


def trend_notes(trend: pd.DataFrame, min_n: int = 5) -> list[Note]:
    """Months left out of the trend, and whether there is a trend to show."""
    notes: list[Note] = []
    if trend.attrs.get("omitted"):
        notes.append(("{n} month(s) with fewer than {m} audits are left out of the trend.",
                      {"n": trend.attrs["omitted"], "m": min_n}))
    if len(trend) < 2:
        notes.append(("Fewer than two months have at least {m} audits: there is no trend to show.", {"m": min_n}))
    return notes


def auditor_notes(agreement: AuditorAgreement) -> list[Note]:
    """Why auditor agreement is not testable, when it is not."""
    if agreement.auditors < 2:
        return [("Only one auditor (or none named): agreement needs two auditors scoring the same contacts, so it is "
                 "**not testable**.", {})]
    if agreement.table.empty:
        return [("No contact was scored by two auditors, so auditor agreement is **not testable**.", {})]
    return []


def churn_link_notes(link: Correlation) -> list[Note]:
    """The audit–churn correlation in words: its direction, or why it was not tested."""
    if link.estimate is None:
        return [("This link is **not tested**: {reason}.", {"reason": link.reason})]
    meaning = ("units with better audits lost a smaller share of their customers" if link.estimate < 0
               else "units with better audits did not lose a smaller share of their customers")
    return [("Spearman correlation **{r:.2f}** (95% CI {lo:.2f} to {hi:.2f}, {n} units): {meaning}.",
             {"r": link.estimate, "lo": link.ci_low, "hi": link.ci_high, "n": link.n, "meaning": meaning})]


# ---------------------------------------------------------------------------------------------
# tables as the reader sees them: plain headers (criteria and units stay as values; cx.table shows them by
# their labels)


def _drop_empty(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """Leave out a text column that is empty everywhere (e.g. a note column with nothing to say)."""
    if col in df and not df[col].fillna("").astype(str).str.strip().ne("").any():
        return df.drop(columns=col)
    return df


def pass_rate_table(rates: pd.DataFrame) -> pd.DataFrame:
    """Pass/fail criteria of :func:`criterion_pass_rates`: pass rate and 95% CI (shares; show with
    ``percent=["pass rate", "ci_low"]``), must-have first, then by pass rate (lowest first: what to fix)."""
    b = rates[rates["kind"] == "binary"].assign(_must=lambda d: ~d["must_have"].astype(bool))
    b = stable_sort(b, ["_must", "estimate"], ascending=[True, True], tie="criterion")
    out = b[["criterion", "must_have", "audits", "estimate", "ci_low", "ci_high", "note"]].rename(
        columns={"must_have": "must-have", "estimate": "pass rate"})
    return _drop_empty(out.reset_index(drop=True), "note")


def scale_table(rates: pd.DataFrame, criteria: pd.DataFrame) -> pd.DataFrame:
    """Scored criteria of :func:`criterion_pass_rates`: the scale ("1–5"), mean and 95% CI, lowest mean first."""
    s = rates[rates["kind"] == "scale"]
    lim = criterion_scales(criteria).set_index("criterion")
    scale = [f"{lim.at[c, 'scale_min']:g}–{lim.at[c, 'scale_max']:g}" for c in s["criterion"]]
    out = s.assign(scale=scale)[["criterion", "scale", "audits", "estimate", "ci_low", "ci_high", "note"]]
    out = stable_sort(out, "estimate", tie="criterion").rename(columns={"estimate": "mean score"})
    return _drop_empty(out.reset_index(drop=True), "note")


def ranking_table(ranking: pd.DataFrame) -> pd.DataFrame:
    """:func:`separable` for the report: score (0–100) with its 95% CI, rank with its best and worst
    plausible rank, and whether the data single the unit out."""
    r = ranking.copy()
    top = r["clearly top"].astype(bool) if "clearly top" in r else pd.Series(False, index=r.index)
    bottom = r["clearly bottom"].astype(bool) if "clearly bottom" in r else pd.Series(False, index=r.index)
    single = np.where(top, "top quarter", np.where(bottom, "bottom quarter", ""))
    out = r[["unit", "mean", "ci_low", "ci_high", "audits", "rank", "rank_low", "rank_high"]].assign(
        **{"singled out": single})
    out = out.rename(columns={"mean": "score (0–100)", "rank_low": "rank (best)", "rank_high": "rank (worst)"})
    return _drop_empty(out, "singled out")


def auditor_table(consistency: pd.DataFrame) -> pd.DataFrame:
    """:func:`auditor_agreement` for the report ("exact agreement" is a share: show it as percent)."""
    c = consistency.assign(criteria=consistency["criteria"].map(lambda k: AUDIT_KINDS.get(k, k)))
    c = c.rename(columns={"pairs": "scored twice", "krippendorff_alpha": "Krippendorff's alpha", "icc_2_1": "ICC(2,1)"})
    if "ICC(2,1)" in c and not c["ICC(2,1)"].notna().any():
        c = c.drop(columns="ICC(2,1)")
    return _drop_empty(c, "note")


# ---------------------------------------------------------------------------------------------
# figures: they draw what they are given, compute nothing, and return the axes


def _percent_axis(axis: Any, xmax: float = 100) -> None:
    """Ticks at round steps (1, 2, 5, 10, ... never 2.5) written as whole percents."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    axis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 5, 10]))
    axis.set_major_formatter(PercentFormatter(xmax, decimals=0))


def plot_pass_rates(table: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Pass rate of each pass/fail criterion with its 95% CI, in the order of ``table`` (:func:`pass_rate_table`:
    must-have first, lowest first), must-have criteria in the accent colour; criteria without a pass rate
    are not drawn."""
    from matplotlib.lines import Line2D

    from cxresearch.plots import ACCENT, MAIN, labels

    b = table[table["pass rate"].notna()].reset_index(drop=True)
    ax = ax or plt.subplots(figsize=(8, 0.42 * len(b) + 1.6))[1]
    y = np.arange(len(b))[::-1]
    must = b["must-have"].astype(bool).to_numpy()
    for sel, colour in ((must, ACCENT), (~must, MAIN)):
        if sel.any():
            est = 100 * b["pass rate"].to_numpy(float)[sel]
            lo, hi = 100 * b["ci_low"].to_numpy(float)[sel], 100 * b["ci_high"].to_numpy(float)[sel]
            ax.errorbar(est, y[sel], xerr=[est - lo, hi - est], fmt="o", color=colour, capsize=3, lw=1.6, ms=6)
    ax.set_yticks(y, labels(b["criterion"], 30))
    ax.set_xlim(0, 100)
    _percent_axis(ax.xaxis)
    ax.set_xlabel("audits that passed (dot) with 95% CI (line)")
    ax.set_title("How often each pass/fail criterion is met")
    ax.grid(axis="y", visible=False)
    ax.set_ylim(-0.7, len(b) - 0.3)
    handles = [Line2D([], [], color=c, marker="o", lw=1.6, label=n)
               for n, c, sel in (("must-have", ACCENT, must), ("other", MAIN, ~must)) if sel.any()]
    if len(handles) > 1:
        ax.legend(handles=handles, loc="lower left", fontsize=9, frameon=True, framealpha=0.9)
    return ax


def plot_ranking(ranking: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Unit scores with 95% intervals in the order given (:func:`by_score`: best first); units the data single
    out in colour. ``ranking`` is :func:`separable` output (without its columns every unit is drawn alike)."""
    from matplotlib.lines import Line2D

    from cxresearch.plots import ACCENT, MAIN, PALETTE, labels

    r = ranking.reset_index(drop=True)
    ax = ax or plt.subplots(figsize=(8, 0.36 * len(r) + 1.6))[1]
    y = np.arange(len(r))[::-1]
    top = r["clearly top"].astype(bool).to_numpy() if "clearly top" in r else np.zeros(len(r), bool)
    bottom = r["clearly bottom"].astype(bool).to_numpy() if "clearly bottom" in r else np.zeros(len(r), bool)
    kinds = [("clearly in the top quarter", top, PALETTE[2]), ("clearly in the bottom quarter", bottom, ACCENT),
             ("cannot be told apart", ~top & ~bottom, MAIN)]
    handles = []
    for name, sel, colour in kinds:
        if not sel.any():
            continue
        est, lo, hi = r["mean"].to_numpy()[sel], r["ci_low"].to_numpy()[sel], r["ci_high"].to_numpy()[sel]
        err = np.vstack([np.where(np.isfinite(lo), est - lo, 0), np.where(np.isfinite(hi), hi - est, 0)])
        ax.errorbar(est, y[sel], xerr=err, fmt="o", color=colour, capsize=3, lw=1.6, ms=6)
        handles.append(Line2D([], [], color=colour, marker="o", lw=1.6, label=name))
    ax.set_yticks(y, labels(r["unit"], 30))
    _percent_axis(ax.xaxis)
    ax.set_xlabel("audit score (% of the maximum): dot = average, line = 95% CI")
    ax.set_title("Audit score per unit, best first")
    ax.grid(axis="y", visible=False)
    ax.set_ylim(-0.7, len(r) - 0.3)
    if len(handles) > 1:
        ax.legend(handles=handles, loc="lower right", fontsize=9, frameon=True, framealpha=0.9)
    return ax


def plot_trend(trend: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Average audit score per month (:func:`monthly_trend`) with its 95% interval as a band (months with
    one audit: the point only)."""
    from cxresearch.plots import MAIN, date_axis

    ax = ax or plt.subplots(figsize=(8, 3.6))[1]
    x = pd.to_datetime(trend["month"].astype(str)) + pd.Timedelta(days=14)  # the middle of the month
    ax.fill_between(x, trend["ci_low"].astype(float), trend["ci_high"].astype(float), color=MAIN, alpha=0.18, lw=0)
    ax.plot(x, trend["mean"], "o-", color=MAIN)
    ax.set_xlim(x.min() - pd.Timedelta(days=25), x.max() + pd.Timedelta(days=25))
    date_axis(ax)
    _percent_axis(ax.yaxis)
    ax.set_ylabel("audit score\n(% of the maximum)")
    ax.set_xlabel("")
    ax.set_title("Audit scores month by month (line: average, band: 95% CI)")
    return ax


def plot_churn_link(joined: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Each unit's average audit score against the share of its customers who left (:attr:`ChurnLink.joined`),
    units named by their labels."""
    from adjustText import adjust_text

    from cxresearch.plots import MAIN, MUTED, label

    ax = ax or plt.subplots(figsize=(7, 4.6))[1]
    ax.scatter(joined["mean"], joined["left"] * 100, color=MAIN, s=36, zorder=3)
    texts = [ax.text(x, y * 100, label(u, 18), fontsize=8, color=MUTED)
             for u, x, y in zip(joined.index, joined["mean"], joined["left"], strict=True)]
    if texts:
        adjust_text(texts, ax=ax, arrowprops={"arrowstyle": "-", "color": MUTED, "lw": 0.5})
    _percent_axis(ax.xaxis)
    _percent_axis(ax.yaxis)
    ax.set_xlabel("unit's average audit score (% of the maximum)")
    ax.set_ylabel("customers who left")
    ax.set_title("Audit score and customers lost, per unit")
    return ax


# ---------------------------------------------------------------------------------------------
# figure descriptions (alt text): what each chart shows, in words, for readers who cannot see it


def _pct(x: float) -> str:
    return f"{x:.0f}%"


def pass_rates_alt(table: pd.DataFrame) -> str:
    """Alt text of :func:`plot_pass_rates` (``table``: :func:`pass_rate_table`)."""
    b = table[table["pass rate"].notna()]
    if b.empty:
        return "Dot chart of pass rates: no pass/fail criterion has an estimate."
    b = stable_sort(b, "pass rate", tie="criterion")
    lo, hi = b.iloc[0], b.iloc[-1]
    return (f"Dot chart of the share of audits that passed each pass/fail criterion, with 95% intervals. Lowest: "
            f"{plain(lo['criterion'])} {_pct(100 * lo['pass rate'])}; highest: {plain(hi['criterion'])} "
            f"{_pct(100 * hi['pass rate'])}.")


def ranking_alt(ranking: pd.DataFrame) -> str:
    """Alt text of :func:`plot_ranking` (``ranking``: :func:`by_score`, best first)."""
    r = ranking
    if r.empty:
        return "Dot chart of unit audit scores: no unit to show."
    text = (f"Dot chart of each unit's average audit score with its 95% interval, best first: from "
            f"{plain(r.iloc[0]['unit'])} ({_pct(r.iloc[0]['mean'])} of the maximum) to {plain(r.iloc[-1]['unit'])} "
            f"({_pct(r.iloc[-1]['mean'])}).")
    for col, words in (("clearly top", "top"), ("clearly bottom", "bottom")):
        if col in r and r[col].any():
            text += f" Clearly in the {words} quarter: {', '.join(map(plain, r.loc[r[col], 'unit']))}."
    return text


def trend_alt(trend: pd.DataFrame) -> str:
    """Alt text of :func:`plot_trend`."""
    if trend.empty:
        return "Line chart of audit scores per month: no month to show."
    first, last = trend.iloc[0], trend.iloc[-1]
    lo, hi = trend.loc[trend["mean"].idxmin()], trend.loc[trend["mean"].idxmax()]

    def month(m: Any) -> str:
        return pd.Period(str(m), "M").strftime("%b %Y")

    return (f"Line chart of the average audit score per month with a 95% band, from {month(first['month'])} "
            f"({_pct(first['mean'])} of the maximum) to {month(last['month'])} ({_pct(last['mean'])}); lowest "
            f"{month(lo['month'])} ({_pct(lo['mean'])}), highest {month(hi['month'])} ({_pct(hi['mean'])}).")


def churn_link_alt(link: ChurnLink) -> str:
    """Alt text of :func:`plot_churn_link`."""
    text = (f"Scatter plot of {len(link.joined)} units: average audit score (across) against the share of the unit's "
            "customers who left (up).")
    if link.estimate is not None:
        text += f" Spearman correlation {link.estimate:.2f}"
        text += (": units with better audits lost fewer customers." if link.estimate < 0 else
                 ": units with better audits did not lose fewer customers.")
    return text
