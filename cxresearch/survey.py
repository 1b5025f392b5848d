"""Voice of the customer, quantitative: NPS, Likert items, weighting, measurement quality, key drivers.

Interval methods:

* NPS: per-respondent score +1/0/-1, variance p_P + p_D - NPS² (multinomial); Wald interval, or the
  adjusted Wald interval of Rocks (2016) — add 3/4 to each of the three counts and 3 to n — for small
  samples (n < 100 by default). Weighted figures use weighted shares and Kish's effective sample size.
* top-2-box: Wilson interval on the (effective) sample size;
* Cronbach's alpha: Feldt (1965) F-based interval; McDonald's omega from a one-factor principal-axis
  factor model (deterministic, unlike a maximum-likelihood fit), needs at least three items;
* Johnson's (2000) relative weights: percentile bootstrap over respondents; they sum to R² exactly. A
  percentile interval that does not contain its own point estimate (small weights: the bootstrap is
  biased upwards) is not shown, and claims resting on it become "not testable";
* negativity ratio (effect of a bad experience / effect of a good one): delta method on OLS estimates,
  only when the effect of a good experience is clearly above zero (otherwise the ratio is undefined).

Convergence: raking, the principal-axis factor fits (omega, factor-analysis check), the PLS path model and
the response model (:func:`cxresearch.fits.fit_logit`) run through :func:`cxresearch.fits.fit_with_retries` with safer retries (more
iterations, other start values, standardised covariates) and a check (converged, finite, margins met, no
Heywood case). Raking that cannot meet its margins stops the run; the factor-analysis check and the path
model are side analyses and are reported as not estimable.

Ties are broken deterministically (:func:`cxresearch.stats.pick`, :func:`cxresearch.stats.stable_sort`):
the weakest item, rankings, factor assignment and the quadrant of a driver that lies exactly on a border
(it counts as important / performing well). Groups (waves, segments, raking cells) smaller than the
minimum are folded into "Other (small groups)" so that none can be recovered by subtraction.

How a notebook uses this module: :func:`load_inputs` reads a :class:`~cxresearch.sources.Source`'s tables
into :class:`SurveyInputs`; each section calls one analysis (``weighting``, :func:`nps_results`,
:func:`response_bias`, :func:`reliability`, :func:`key_drivers_for`, :func:`ipa_for`, ...) that returns a
typed result, then ``display(*survey.<section>_notes(result))``: the tables and sentences a reader sees
(:class:`Say`), chosen here (what to say when a figure is missing or has no interval) rather than in the
notebook. :func:`claims` returns the essays' claims as :class:`cxresearch.stats.Claim` and :func:`metrics`
the figures for ``results.json``. Plot functions take results and draw them; they compute nothing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

# statsmodels' modules, not statsmodels.api (which imports everything: 0.6 s per kernel)
from statsmodels.regression.linear_model import OLS
from statsmodels.tools.tools import add_constant

from cxresearch import contracts, plots
from cxresearch import engine as engines
from cxresearch.design import design_matrix, formula_of, reference_level
from cxresearch.display import LABELS, Table, fmt_value, plain, say, table
from cxresearch.errors import NotEstimable, ParameterError
from cxresearch.fits import FitError, fit_logit, fit_with_retries, is_number
from cxresearch.io import Column, Contract, InputError, Ledger, TableSource, read_table, require_items
from cxresearch.privacy import OTHER, merge_small_groups
from cxresearch.stats import (
    Z95,
    Claim,
    kish_n,
    percentile_bootstrap,
    percentile_interval,
    pick,
    round_significant,
    stable_sort,
    verdict,
    wilson_interval,
)

QUADRANTS = {(True, False): "improve first", (True, True): "maintain", (False, False): "monitor",
             (False, True): "possible overkill"}  # (important, performing well)
MAX_FAILED_SHARE = 0.05  # bootstrap replicates that may fail before intervals are withheld
# how a reader sees the usual construct and attribute-group names (the notebook's ``labels`` parameter wins)
CONSTRUCT_LABELS = {"service": "service at the touchpoints", "expectation": "expectations",
                    "emotional": "emotional attributes", "tangible": "tangible attributes",
                    "recommend": "likelihood to recommend"}
GROUP_LABELS = {"touchpoint": "service at the touchpoints", "emotional": "emotional attributes",
                "tangible": "tangible attributes"}


def dictionary_labels(items: pd.DataFrame) -> dict[str, str]:
    """What a reader sees instead of the dictionary's names: the usual constructs spelled out
    (:data:`CONSTRUCT_LABELS`) and each item's ``label`` (items without one keep their name); a reverse-coded
    item's label says "(reverse-scored)", since its answers are flipped before any figure is computed.

    Register with ``cx.display.use_labels(survey.dictionary_labels(items), labels)``.
    """
    out = {c: CONSTRUCT_LABELS[c] for c in items["construct"].dropna().astype(str) if c in CONSTRUCT_LABELS}
    reverse = items["reverse"] if "reverse" in items else pd.Series(False, index=items.index)
    for item, lab, flag in zip(items["item"], items["label"] if "label" in items else items["item"], reverse,
                               strict=True):
        if isinstance(lab, str) and lab.strip():
            flipped = flag is True or (isinstance(flag, np.bool_) and bool(flag))
            out[str(item)] = lab.strip() + (" (reverse-scored)" if flipped else "")
    return out


@dataclass(frozen=True)
class Say:
    """A sentence for the reader: a Markdown template and the values it shows.

    The ``*_notes`` functions return these (with tables) so that the choice of what to say stays out of
    the notebook; ``display(note)`` shows it through :func:`cxresearch.display.say`, which escapes every
    string value and writes missing numbers as a dash.
    """

    template: str
    values: dict[str, Any] = field(default_factory=dict)

    def _ipython_display_(self) -> None:
        say(self.template, **self.values)


def _say(template: str, **values: Any) -> Say:
    return Say(template, values)


def _interval(estimate: Any, ci_low: Any, ci_high: Any) -> dict[str, Any]:
    """A metric with its 95% interval (the shape ``results.metric`` records)."""
    return {"estimate": estimate, "ci_low": ci_low, "ci_high": ci_high}


def _has_interval(x: Mapping[str, Any]) -> bool:
    return is_number(x.get("ci_low")) and is_number(x.get("ci_high"))


# ---------------------------------------------------------------------------------------------
# NPS


def nps(scores: pd.Series | np.ndarray, weights: np.ndarray | None = None, adjusted: bool | None = None,
        small_n: int = 100) -> dict[str, float]:
    """Net Promoter Score in points (-100..100) with a 95% interval.

    ``adjusted`` None chooses the adjusted Wald interval when the (effective) n is below ``small_n``.
    """
    s = pd.Series(np.asarray(scores, float)).reset_index(drop=True)
    ok = s.notna().to_numpy()
    w = np.ones(len(s)) if weights is None else np.asarray(weights, float)
    s, w = s[ok].to_numpy(), w[ok]
    n_eff = kish_n(w)
    if n_eff == 0:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0, "n_effective": 0.0,
                "variance": math.nan, "promoters": math.nan, "detractors": math.nan, "method": ""}
    p_pro = np.sum(w * (s >= 9)) / w.sum()
    p_det = np.sum(w * (s <= 6)) / w.sum()
    est = p_pro - p_det
    use_adjusted = (n_eff < small_n) if adjusted is None else adjusted
    if use_adjusted:
        n_adj = n_eff + 3
        pp, pd_ = (p_pro * n_eff + 0.75) / n_adj, (p_det * n_eff + 0.75) / n_adj
        centre, var = pp - pd_, (pp + pd_ - (pp - pd_) ** 2) / n_adj
    else:
        centre, var = est, (p_pro + p_det - est**2) / n_eff
    half = Z95 * math.sqrt(max(var, 0.0))
    # the adjusted Wald interval is centred on the adjusted estimate; it is widened (never narrowed) so that
    # it always contains the reported estimate
    lo, hi = min(centre - half, est), max(centre + half, est)
    return {"estimate": 100 * est, "ci_low": 100 * max(-1.0, lo), "ci_high": 100 * min(1.0, hi),
            "n": int(ok.sum()), "n_effective": float(n_eff), "variance": float(p_pro + p_det - est**2),
            "promoters": float(p_pro), "detractors": float(p_det), "method": "adjusted Wald" if use_adjusted else "Wald"}


def fold_groups(groups: pd.Series, min_n: int) -> tuple[pd.Series, list[str]]:
    """Groups with fewer than ``min_n`` members merged into "Other (small groups)" (missing: "(missing)")."""
    g = groups.astype(object).where(groups.notna(), "(missing)")
    return merge_small_groups(g, min_n)


def nps_by(responses: pd.DataFrame, nps_col: str, by: str, weights: np.ndarray | None = None,
           min_n: int = 30, prefix: str = "") -> tuple[pd.DataFrame, list[str]]:
    """NPS per group of ``by`` with groups under ``min_n`` NPS answers folded into "Other (small groups)".

    Folding (rather than hiding) means no small group can be recovered by subtracting the shown counts
    from the total. Returns the table (``label`` is ``prefix`` + group) and the folded labels. When even
    all groups together have fewer than ``min_n`` answers the table is empty.
    """
    answered = responses[nps_col].notna().to_numpy()
    w = np.ones(len(responses)) if weights is None else np.asarray(weights, float)
    cols = [by, "label", "respondents", "estimate", "ci_low", "ci_high", "promoters", "detractors", "interval"]
    if answered.sum() < min_n:
        return pd.DataFrame(columns=cols), []
    groups, folded = fold_groups(responses.loc[answered, by], min_n)
    sub, ws = responses.loc[answered, nps_col].to_numpy(), w[answered]
    rows = []
    levels = sorted(pd.unique(groups), key=lambda v: (str(v).startswith(OTHER), _sort_key(v)))
    for level in levels:
        idx = (groups == level).to_numpy()
        r = nps(sub[idx], ws[idx])
        if r["n"] < min_n:
            continue
        label = level if str(level).startswith(OTHER) else f"{prefix}{level}"
        rows.append({by: level, "label": label, "respondents": r["n"],
                     **{k: r[k] for k in ("estimate", "ci_low", "ci_high", "promoters", "detractors")},
                     "interval": r["method"]})
    return pd.DataFrame(rows, columns=cols), folded


def _sort_key(v: Any) -> tuple:
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def nps_change(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Change b - a in NPS points with a z-test (independent samples)."""
    se = 100 * math.sqrt(a["variance"] / a["n_effective"] + b["variance"] / b["n_effective"])
    diff = b["estimate"] - a["estimate"]
    if not (math.isfinite(se) and se > 0):
        return {"estimate": diff, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    return {"estimate": diff, "ci_low": diff - Z95 * se, "ci_high": diff + Z95 * se,
            "p_value": float(2 * stats.norm.sf(abs(diff) / se))}


def nps_changes(responses: pd.DataFrame, nps_col: str, weights: np.ndarray, min_n: int = 30) -> pd.DataFrame:
    """Change in NPS between consecutive waves that each have at least ``min_n`` NPS answers (z-test)."""
    answered = responses[nps_col].notna()
    counts = responses.loc[answered, "wave"].value_counts()
    waves = sorted((v for v in counts.index if counts[v] >= min_n), key=_sort_key)
    rows = []
    for a, b in zip(waves[:-1], waves[1:], strict=True):
        ia, ib = (responses["wave"] == a).to_numpy(), (responses["wave"] == b).to_numpy()
        ra = nps(responses.loc[ia, nps_col], np.asarray(weights)[ia])
        rb = nps(responses.loc[ib, nps_col], np.asarray(weights)[ib])
        rows.append({"from wave": a, "to wave": b, **nps_change(ra, rb)})
    return pd.DataFrame(rows, columns=["from wave", "to wave", "estimate", "ci_low", "ci_high", "p_value"])


@dataclass
class NPSResults:
    """The NPS section: overall (unweighted and weighted), per wave with the changes, per segment.

    ``problem`` says why there is no NPS (then every table is None).
    """

    problem: str = ""
    overall: dict[str, dict[str, Any]] = field(default_factory=dict)  # "unweighted", "weighted" -> nps()
    by_wave: pd.DataFrame | None = None
    folded_waves: list[str] = field(default_factory=list)
    changes: pd.DataFrame | None = None
    by_segment: pd.DataFrame | None = None
    folded_segments: list[str] = field(default_factory=list)
    min_n: int = 30


def nps_results(inputs: SurveyInputs, nps_col: str | None, weights: np.ndarray) -> NPSResults:
    """NPS overall, per wave (with wave-to-wave changes) and per segment (when the responses have one);
    groups under ``inputs.min_n`` NPS answers are folded."""
    resp, min_n = inputs.responses, inputs.min_n
    problem = nps_problem(resp, nps_col, min_n)
    if problem:
        return NPSResults(problem, min_n=min_n)
    overall = {"unweighted": nps(resp[nps_col]), "weighted": nps(resp[nps_col], weights)}
    by_wave, folded_waves = nps_by(resp, nps_col, "wave", weights, min_n, prefix="wave ")
    by_segment, folded_segments = nps_by(resp, nps_col, "segment", weights, min_n) if "segment" in resp else (None, [])
    return NPSResults("", overall, by_wave, folded_waves, nps_changes(resp, nps_col, weights, min_n), by_segment,
                      folded_segments, min_n)


def nps_notes(r: NPSResults) -> list[Any]:
    """The NPS tables and what was folded (or why there is no NPS section)."""
    if r.problem:
        return [_say("{why}: this section is skipped.", why=r.problem)]
    out: list[Any] = [nps_overall_table(r.overall)]
    if r.folded_waves:
        out.append(_say("Waves with fewer than {m} NPS answers are shown together as *Other (small groups)*: "
                        "{waves}.", m=r.min_n, waves=", ".join(r.folded_waves)))
    if r.changes is not None and len(r.changes):
        out += [_say("**Change between waves** (z-test):"), nps_change_table(r.changes)]
    if r.by_segment is not None:
        out.append(_say("**By segment**"))
        if r.folded_segments:
            out.append(_say("Segments with fewer than {m} NPS answers are shown together as *Other (small groups)*: "
                            "{segments}.", m=r.min_n, segments=", ".join(r.folded_segments)))
        out.append(nps_group_table(r.by_segment, "segment"))
    return out


# ---------------------------------------------------------------------------------------------
# Likert items


def reverse_coded(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Item columns with reverse-coded items flipped (scale_min + scale_max - x)."""
    out = responses.copy()
    for row in items.itertuples(index=False):
        flag = getattr(row, "reverse", False)
        if flag is True or (isinstance(flag, np.bool_) and bool(flag)):
            if row.item in out:
                out[row.item] = row.scale_min + row.scale_max - out[row.item]
    return out


def top_box(responses: pd.DataFrame, items: pd.DataFrame, weights: np.ndarray | None = None,
            boxes: int = 2) -> pd.DataFrame:
    """Share answering in the top ``boxes`` categories per item, with a Wilson 95% interval.

    Items nobody answered are left out.
    """
    rows = []
    for it in items.itertuples(index=False):
        x = responses[it.item].to_numpy(float)
        ok = ~np.isnan(x)
        w = np.ones(len(x)) if weights is None else np.asarray(weights, float)
        x, w = x[ok], w[ok]
        if not len(x) or w.sum() <= 0:
            continue
        top = x >= it.scale_max - boxes + 1
        share = float(np.sum(w * top) / w.sum())
        n_eff = kish_n(w)
        lo, hi = wilson_interval(share * n_eff, n_eff)
        rows.append({"item": it.item, "label": getattr(it, "label", it.item), "touchpoint": getattr(it, "touchpoint", ""),
                     "top_box": share, "ci_low": float(min(lo, share)), "ci_high": float(max(hi, share)),
                     "mean": float(np.average(x, weights=w)), "scale_min": it.scale_min, "scale_max": it.scale_max})
    return pd.DataFrame(rows, columns=["item", "label", "touchpoint", "top_box", "ci_low", "ci_high", "mean",
                                       "scale_min", "scale_max"])


RATED_KINDS = ("perception", "expectation", "importance")


def rated_items(inputs: SurveyInputs) -> pd.DataFrame:
    """The dictionary rows of the rating items (perceptions, expectations, importances) somebody answered."""
    nobody = [i for i, why in inputs.left_out.items() if why == "nobody answered it"]
    items = inputs.items
    return items[~items["item"].isin(nobody) & items["kind"].isin(RATED_KINDS)]


# ---------------------------------------------------------------------------------------------
# weighting


@dataclass
class Raking:
    """Raking weights (mean 1) and their diagnostics."""

    weights: np.ndarray
    iterations: int
    max_error: float
    design_effect: float
    effective_n: float


def _ipf(codes: dict[str, np.ndarray], targets: dict[str, pd.Series], max_iter: int, tol: float) -> Raking:
    """Iterative proportional fitting on integer level codes (numpy only, fast enough for many iterations)."""
    idx, tgt = {}, {}
    for v, t in targets.items():
        pos = {lvl: i for i, lvl in enumerate(t.index)}
        idx[v] = np.array([pos[c] for c in codes[v]], dtype=np.int64)
        tgt[v] = t.to_numpy(float)
    w = np.ones(len(next(iter(codes.values()))))
    iterations, err = 0, math.inf
    while iterations < max_iter and err >= tol:
        iterations += 1
        for v in targets:
            current = np.bincount(idx[v], weights=w, minlength=len(tgt[v])) / w.sum()
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(current > 0, tgt[v] / current, 0.0)
            w = w * factor[idx[v]]
        if not (np.isfinite(w).all() and w.sum() > 0):
            raise ArithmeticError("weights became undefined")
        err = max(float(np.max(np.abs(np.bincount(idx[v], weights=w, minlength=len(tgt[v])) / w.sum() - tgt[v])))
                  for v in targets)
    w = w / w.mean()
    deff = float(1 + np.var(w) / np.mean(w) ** 2)
    return Raking(w, iterations, err, deff, float(len(w) / deff))


def rake(df: pd.DataFrame, margins: dict[str, pd.Series], max_iter: int = 1000, tol: float = 1e-12,
         source: str = "'margins'") -> Raking:
    """Iterative proportional fitting of weights to population shares of each variable in ``margins``.

    Converged when every weighted share is within 1e-9 of its target; IPF is retried with 20 times as
    many iterations, and a raking that still misses its margins stops with :class:`FitError` (the margins
    cannot all be met by these respondents).
    """
    codes = {v: df[v].astype(str).to_numpy() for v in margins}
    targets = {v: (m / m.sum()).rename(index=str) for v, m in margins.items()}
    for v, t in targets.items():
        missing = sorted(set(np.unique(codes[v])) - set(t.index))
        if missing:
            raise InputError(source, [f"variable '{v}': respondents have values {missing[:10]} that the margins do "
                                      "not list. Fix: add them to the margins file (with their population share)."])
        empty = sorted(set(t.index[t > 0]) - set(np.unique(codes[v])))
        if empty:
            raise InputError(source, [f"variable '{v}': levels {empty[:10]} have a population share but no "
                                      "respondents. Fix: merge them with a neighbouring level."])

    def check(r: Raking) -> str | None:
        if not r.max_error < 1e-9:
            return f"the weighted shares miss the margins by up to {r.max_error:.1e} after {r.iterations} iterations"
        return None

    return fit_with_retries("raking", [(f"IPF, {max_iter} iterations", lambda: _ipf(codes, targets, max_iter, tol)),
                                       (f"IPF, {20 * max_iter} iterations",
                                        lambda: _ipf(codes, targets, 20 * max_iter, tol))],
                            check=check, fix="the margins cannot all be met by these respondents (some combinations "
                                             "of levels have no respondents); merge levels or rake to fewer variables.")


@dataclass
class Weighting:
    """Weights of the respondents and how they were made."""

    weights: np.ndarray
    raking: Raking | None = None
    check: pd.DataFrame | None = None  # variable, level, target, weighted
    folded: dict[str, list[str]] = field(default_factory=dict)  # variable -> levels merged before raking
    source: str = "none"  # "raking", "column" or "none"
    column: str | None = None  # the weight column used (source "column")
    min_n: int = 30  # levels with fewer respondents were merged before raking
    # variable -> (respondent values the margins do not list, respondents with them): weighted as the margins'
    # own "Other (small groups)" level, the only place such values may go
    unlisted: dict[str, tuple[list[str], int]] = field(default_factory=dict)


def weighting(responses: pd.DataFrame, margins: dict[str, pd.Series] | None, weight_col: str | None = None,
              min_n: int = 30, source: str = "'margins'") -> Weighting:
    """Raking weights to the margins (levels with fewer than ``min_n`` respondents merged first), a ready
    weight column, or equal weights.

    A respondent value that the margins do not list has no population share to be weighted to, so it is
    refused (:class:`~cxresearch.io.InputError` naming the margins file, the column, the values and the fix),
    however few respondents have it — folding it into "Other (small groups)" with listed levels would give it
    their share. The one exception: margins that list an "Other (small groups)" level themselves (the
    population share of everything else); then the unlisted values are weighted as that level and
    :attr:`Weighting.unlisted` says which and how many respondents (:func:`weighting_notes` shows it).
    """
    if margins:
        missing = [v for v in margins if v not in responses]
        if missing:
            raise InputError(source, [f"margin variable '{v}' is neither a column of the responses nor of the "
                                      "customers. Fix: give customers_path or remove it from the margins." for v in missing])
        empty = [v for v in margins if responses[v].isna().any()]
        if empty:
            raise InputError(source, [f"margin variable '{v}': {int(responses[v].isna().sum())} respondent(s) have "
                                      "no value (not linked to a customer?). Fix: fill it in for every respondent."
                                      for v in empty])
        shares = {v: m.rename(index=str).groupby(level=0).sum() for v, m in margins.items()}
        unlisted = {v: sorted(set(responses[v].astype(str)) - set(share.index)) for v, share in shares.items()}
        unlisted = {v: values for v, values in unlisted.items() if values}
        refused = [v for v in unlisted if OTHER not in shares[v].index]
        if refused:
            raise InputError(source, [
                f"column '{v}': {int(responses[v].astype(str).isin(unlisted[v]).sum())} respondent(s) have values "
                f"{unlisted[v][:10]} that the margins do not list (they list {sorted(shares[v].index)[:10]}), so they "
                "have no population share to be weighted to. Fix: add these values to the margins file with their "
                "population share, recode them in the responses (or customers) to a level the margins list, or add a "
                f"level '{OTHER}' to the margins with the population share of everything they do not list."
                for v in refused])
        data, targets, folded = {}, {}, {}
        for v in margins:
            share, codes = shares[v], responses[v].astype(str)
            # values the margins do not list are weighted as the margins' own "Other (small groups)" level
            codes = codes.where(~codes.isin(unlisted.get(v, [])), OTHER)
            counts = codes.value_counts()
            _, small = merge_small_groups(codes, min_n)
            # population levels nobody answered from are folded too; "Other" must then still hold min_n
            small = set(small) | {lvl for lvl in share.index if share[lvl] > 0 and lvl not in counts.index}
            rest = sorted((g for g in counts.index if g not in small), key=lambda g: (int(counts[g]), str(g)))
            while small and sum(int(counts.get(g, 0)) for g in small) < min_n and rest:
                small.add(rest.pop(0))
            data[v] = codes.where(~codes.isin(small), OTHER)
            targets[v] = share.groupby(lambda lvl, s=frozenset(small): OTHER if lvl in s else lvl).sum()
            if small - {OTHER}:
                folded[v] = sorted(small - {OTHER})
        rk = rake(pd.DataFrame(data), targets, tol=1e-10, source=source)
        check = pd.concat([(pd.Series(rk.weights).groupby(data[v].to_numpy()).sum() / rk.weights.sum())
                           .rename("weighted").to_frame().assign(target=targets[v] / targets[v].sum(), variable=v)
                           for v in targets])
        check = check.reset_index(names="level")[["variable", "level", "target", "weighted"]]
        kept = {v: (values, int(responses[v].astype(str).isin(values).sum())) for v, values in unlisted.items()}
        return Weighting(rk.weights, rk, check, folded, "raking", min_n=min_n, unlisted=kept)
    if weight_col:
        w = responses[weight_col].to_numpy(float)
        if not (np.isfinite(w).all() and w.sum() > 0):
            raise InputError(f"'survey_responses' column '{weight_col}'", [
                f"column '{weight_col}': the weights are all 0 (or not finite). Fix: give positive weights."])
        return Weighting(w / w.mean(), source="column", column=weight_col, min_n=min_n)
    return Weighting(np.ones(len(responses)), min_n=min_n)


def weighting_notes(wt: Weighting) -> list[Any]:
    """What the reader is told about the weights: raking with its design effect and merged levels (and the
    check table), a weight column, or none."""
    if wt.raking is not None:
        variables = list(dict.fromkeys(wt.check["variable"])) if wt.check is not None else []
        out: list[Any] = [_say(
            "Weighted to the customer mix by {variables}: every weighted share matches the customer base. Design "
            "effect **{deff:.2f}**: the {n:,} responses are worth **{neff:,.0f}** unweighted ones.",
            variables=" and ".join(plain(v) for v in variables), deff=wt.raking.design_effect, n=len(wt.weights),
            neff=wt.raking.effective_n)]
        out += [_say("{variable}: weighted together as *Other (small groups)*, so that every weighting group holds "
                     "at least {m} respondents (levels with fewer, or with a population share but no respondents, "
                     "and the next smallest when needed): {levels}.", variable=plain(v), m=wt.min_n,
                     levels=", ".join(levels))
                for v, levels in wt.folded.items()]
        out += [_say("{variable}: the margins do not list {values}; {who} with these values are weighted as the "
                     "margins' own *Other (small groups)* level.", variable=plain(v), values=", ".join(values),
                     who=f"the {k:,} respondents" if k >= wt.min_n else f"fewer than {wt.min_n} respondents")
                for v, (values, k) in wt.unlisted.items()]
        return [*out, weighting_table(wt.check)]
    if wt.source == "column":
        return [_say("Weights from the column **{col}**.", col=plain(wt.column))]
    return [_say("No population margins or weights were given: figures are unweighted.")]


# ---------------------------------------------------------------------------------------------
# measurement quality


def cronbach_alpha(x: pd.DataFrame, ci: float = 0.95) -> dict[str, float]:
    """Cronbach's alpha with the Feldt (1965) interval (complete cases); NaN when undefined."""
    x = x.dropna()
    n, k = x.shape
    var_items = x.var(ddof=1).sum()
    var_total = x.sum(axis=1).var(ddof=1)
    if n < 3 or k < 2 or not var_total > 0:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "items": k, "n": n}
    alpha = k / (k - 1) * (1 - var_items / var_total)
    f_lo = stats.f.ppf((1 + ci) / 2, n - 1, (n - 1) * (k - 1))
    f_hi = stats.f.ppf((1 - ci) / 2, n - 1, (n - 1) * (k - 1))
    return {"estimate": float(alpha), "ci_low": float(1 - (1 - alpha) * f_lo), "ci_high": float(1 - (1 - alpha) * f_hi),
            "items": k, "n": n}


@dataclass
class FactorFit:
    """Principal-axis factor loadings (unrotated) and communalities."""

    loadings: np.ndarray
    communality: np.ndarray
    iterations: int
    method: str = "principal axis"


def principal_axis(r: np.ndarray, n_factor: int, max_iter: int = 1000, tol: float = 1e-10,
                   start: str = "smc") -> FactorFit:
    """Iterated principal-axis factoring of the correlation matrix ``r``.

    Communalities start at the squared multiple correlations (``start="smc"``) or at each item's largest
    absolute correlation (``"maxcor"``, usable when ``r`` is singular). Raises ``RuntimeError`` when the
    communalities have not settled (largest change below ``tol``) within ``max_iter`` iterations. Each
    factor's sign is chosen so that its loadings sum to a positive number.
    """
    r = np.asarray(r, float)
    if start == "smc":
        c = 1 - 1 / np.diag(np.linalg.inv(r))
    else:
        off = np.abs(r - np.diag(np.diag(r)))
        c = off.max(axis=1)
    if not np.all(np.isfinite(c)):
        raise ArithmeticError("start values are not finite (singular correlation matrix)")
    rr = r.copy()
    for it in range(1, max_iter + 1):
        np.fill_diagonal(rr, c)
        vals, vecs = np.linalg.eigh(rr)
        order = np.argsort(vals)[::-1][:n_factor]
        vals, vecs = vals[order], vecs[:, order]
        if vals.min() <= 0:
            raise ArithmeticError(f"fewer than {n_factor} factors with a positive eigenvalue")
        a = vecs * np.sqrt(vals)
        new = (a**2).sum(axis=1)
        change = float(np.max(np.abs(new - c)))
        c = new
        if change < tol:
            signs = np.where(a.sum(axis=0) < 0, -1.0, 1.0)
            return FactorFit(a * signs, c, it)
    raise RuntimeError(f"communalities still changing after {max_iter} iterations")


def _factor_check(fit: FactorFit) -> str | None:
    if not (np.all(np.isfinite(fit.loadings)) and np.all(np.isfinite(fit.communality))):
        return "some loadings are not finite"
    if fit.communality.max() > 1 + 1e-6:
        return "an item's communality exceeds 1 (Heywood case)"
    return None


def principal_components(r: np.ndarray, n_factor: int) -> FactorFit:
    """Loadings of the first ``n_factor`` principal components of ``r`` (no iteration, always defined)."""
    vals, vecs = np.linalg.eigh(np.asarray(r, float))
    order = np.argsort(vals)[::-1][:n_factor]
    a = vecs[:, order] * np.sqrt(np.clip(vals[order], 0, None))
    a = a * np.where(a.sum(axis=0) < 0, -1.0, 1.0)
    return FactorFit(a, (a**2).sum(axis=1), 0, "principal components")


def fit_factors(x: pd.DataFrame, n_factor: int, model: str, components_fallback: bool = False) -> FactorFit:
    """Principal-axis factors of the items in ``x`` (complete cases) with checked convergence and retries.

    Retries: more iterations, then start values that need no matrix inverse. With ``components_fallback``
    (the factor-analysis check, which only asks which items group together) principal components are the
    last resort when principal-axis factoring does not converge or gives a Heywood case; ``method`` of
    the result says which was used.
    """
    r = np.corrcoef(x.to_numpy(float), rowvar=False)
    attempts = [("principal axis, SMC start, 1000 iterations", lambda: principal_axis(r, n_factor, 1000)),
                ("principal axis, SMC start, 10000 iterations", lambda: principal_axis(r, n_factor, 10000)),
                ("principal axis, largest-correlation start, 10000 iterations",
                 lambda: principal_axis(r, n_factor, 10000, start="maxcor"))]
    if components_fallback:
        attempts.append(("principal components (no iteration)", lambda: principal_components(r, n_factor)))
    return fit_with_retries(model, attempts, check=_factor_check,
                            fix="check for duplicated items or items that (almost) repeat another one.")


def mcdonald_omega(x: pd.DataFrame, name: str = "") -> float:
    """Omega total from a one-factor principal-axis model on the correlation matrix (NaN below 3 items).

    Raises :class:`FitError` when the factor model does not converge.
    """
    x = x.dropna()
    if x.shape[1] < 3 or len(x) <= x.shape[1]:
        return math.nan
    fa = fit_factors(x, 1, f"one-factor model for omega{f' ({name})' if name else ''}")
    lam = np.abs(fa.loadings[:, 0])
    psi = 1 - fa.communality
    return float(lam.sum() ** 2 / (lam.sum() ** 2 + psi.sum()))


def item_total(x: pd.DataFrame) -> pd.Series:
    """Corrected item-total correlation: each item with the sum of the other items (NaN without spread)."""
    x = x.dropna()
    total = x.sum(axis=1)
    out = {}
    for c in x.columns:
        a, b = x[c].to_numpy(float), (total - x[c]).to_numpy(float)
        out[c] = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 0 and b.std() > 0 else math.nan
    return pd.Series(out, dtype=float)


def usable_items(responses: pd.DataFrame, items: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Items that can enter correlations: answered by somebody and not the same answer from everybody.

    Returns the usable rows of ``items`` and, for each left-out item, why.
    """
    why = {}
    for it in items["item"]:
        x = pd.to_numeric(responses[it], errors="coerce").dropna()
        if x.empty:
            why[it] = "nobody answered it"
        elif x.nunique() < 2:
            why[it] = "every respondent gave the same answer"
    return items[~items["item"].isin(list(why))].reset_index(drop=True), why


def reliability(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Alpha (with CI), omega and the weakest item-total correlation per construct with at least two items.

    The weakest item is chosen with :func:`cxresearch.stats.pick` (equal correlations — always the case
    with two items — go to the first item name in sorted order). Numbers that cannot be computed are
    left empty with the reason in ``note``.
    """
    rows = []
    for construct, g in items.groupby("construct", sort=True):
        cols = [c for c in g["item"] if c in responses]
        if len(cols) < 2:
            continue
        x = responses[cols].astype(float)
        a = cronbach_alpha(x)
        it = item_total(x)
        note = "" if is_number(a["estimate"]) else "too few complete answers"
        try:
            omega = mcdonald_omega(x, str(construct))
        except FitError as exc:
            omega, note = math.nan, f"omega not estimable: {exc}"
        weakest = pick(it, "min") if it.notna().any() else None
        rows.append({"construct": construct, "items": len(cols), "alpha": a["estimate"], "ci_low": a["ci_low"],
                     "ci_high": a["ci_high"], "omega": omega, "weakest item": weakest,
                     "weakest item-total r": float(it[weakest]) if weakest is not None else math.nan, "note": note})
    return pd.DataFrame(rows, columns=["construct", "items", "alpha", "ci_low", "ci_high", "omega", "weakest item",
                                       "weakest item-total r", "note"])


def varimax(a: np.ndarray, max_iter: int = 1000, tol: float = 1e-12) -> np.ndarray:
    """Varimax rotation (Kaiser's criterion, SVD algorithm); raises ``RuntimeError`` without convergence."""
    p, k = a.shape
    if k < 2:
        return a
    t = np.eye(k)
    d = 0.0
    for _ in range(max_iter):
        z = a @ t
        b = a.T @ (z**3 - z @ np.diag((z**2).sum(axis=0)) / p)
        u, s, vt = np.linalg.svd(b)
        t = u @ vt
        d_old, d = d, float(s.sum())
        if d_old and d < d_old * (1 + tol):
            return a @ t
    raise RuntimeError(f"varimax rotation did not settle in {max_iter} iterations")


@dataclass
class EFAResult:
    """Which factor each item loads on most, and whether that is its own construct's factor."""

    table: pd.DataFrame | None
    problem: str = ""
    method: str = ""  # "principal axis" or "principal components" (when principal axis did not converge)


def efa_check(responses: pd.DataFrame, items: pd.DataFrame) -> EFAResult:
    """Exploratory factor analysis (principal axis, varimax) with one factor per multi-item construct.

    Each construct gets its own factor (the assignment that maximises the total mean absolute loading of
    the constructs' items, ties broken at 9 significant digits); an item "fits" when its strongest
    loading is on its own construct's factor. A side analysis: when the factor model cannot be fitted
    the result carries the reason in ``problem`` instead of a table.
    """
    from scipy.optimize import linear_sum_assignment

    groups = items.groupby("construct", sort=True)["item"].apply(lambda s: [c for c in s if c in responses])
    groups = groups[groups.apply(len) >= 2]
    if len(groups) < 2:
        return EFAResult(None, "fewer than two constructs with at least two usable items")
    cols = [c for g in groups for c in g]
    x = responses[cols].astype(float).dropna()
    if len(x) <= len(cols):
        return EFAResult(None, f"{len(x)} complete answers for {len(cols)} items: too few")
    try:
        fa = fit_factors(x, len(groups), "factor analysis (EFA check)", components_fallback=True)
        rotated = fit_with_retries("varimax rotation (EFA check)",
                                   [("varimax, 1000 iterations", lambda: varimax(fa.loadings, 1000)),
                                    ("varimax, 100000 iterations", lambda: varimax(fa.loadings, 100000))],
                                   check=lambda a: None if np.all(np.isfinite(a)) else "loadings not finite")
    except FitError as exc:
        return EFAResult(None, str(exc))
    load = pd.DataFrame(np.abs(rotated), index=cols)
    names = list(groups.index)
    score = np.array([[load.loc[groups[k], f].mean() for f in load.columns] for k in names])
    rows_idx, cols_idx = linear_sum_assignment(-round_significant(score))
    factor_of = {names[i]: int(j) for i, j in zip(rows_idx, cols_idx, strict=True)}
    load = load[[factor_of[k] for k in names]].set_axis(names, axis=1)  # factor columns named by construct
    construct_of = {c: k for k, g in groups.items() for c in g}
    signed = pd.DataFrame(rotated, index=cols)[[factor_of[k] for k in names]].set_axis(names, axis=1)
    rows = []
    for c in cols:
        best = pick(load.loc[c], "max")
        own = construct_of[c]
        rows.append({"item": c, "construct": own, "loading on own factor": float(signed.at[c, own]),
                     "highest loading": float(load.loc[c].max()), "loads most on": best, "fits": best == own})
    return EFAResult(pd.DataFrame(rows), "", fa.method)


def efa_notes(efa: EFAResult) -> list[Any]:
    """The factor-analysis check in words (which questions load on another construct's factor) and its table."""
    if efa.table is None:
        return [_say("Factor analysis: not estimable — {why}", why=efa.problem)]
    out: list[Any] = []
    if efa.method == "principal components":
        out.append(_say("Principal-axis factoring with one factor per construct does not converge on these answers "
                        "(an item's communality runs above 1: the answers hold fewer distinct factors than "
                        "constructs), so the check uses principal components with varimax rotation instead."))
    misfits = [f"“{plain(i)}”" for i in efa.table.loc[~efa.table["fits"], "item"]]
    if misfits:
        out.append(_say("Factor analysis: **{k} of {n} questions** load more strongly on another construct's factor: "
                        "{items}.", k=len(misfits), n=len(efa.table), items="; ".join(misfits)))
    else:
        out.append(_say("Factor analysis: every question loads most strongly on its own construct."))
    return [*out, efa_table(efa.table)]


# ---------------------------------------------------------------------------------------------
# key drivers


def relative_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Johnson's (2000) relative weights of the columns of ``x`` for ``y``; they sum to R²."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    rxx = np.corrcoef(x, rowvar=False)
    rxy = np.array([np.corrcoef(x[:, j], y)[0, 1] for j in range(x.shape[1])])
    if not (np.all(np.isfinite(rxx)) and np.all(np.isfinite(rxy))):
        raise ValueError("a driver or the outcome has no spread in this sample")
    evals, evecs = np.linalg.eigh(rxx)
    lam = evecs @ np.diag(np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    beta = np.linalg.solve(lam, rxy)
    return (lam**2) @ (beta**2)


@dataclass
class Drivers:
    """Relative weights with bootstrap intervals (one row per driver, in the order of ``predictors``) and the
    attribute groups' shares; ``problem`` says why there are none."""

    table: pd.DataFrame | None
    boot: np.ndarray | None
    r2: float
    n: int
    predictors: list[str]
    problem: str = ""
    failed_replicates: int = 0
    outcome: str = ""  # the item or construct explained
    groups: dict[str, list[str]] = field(default_factory=dict)  # attribute group -> its drivers
    group_table: pd.DataFrame | None = None  # group_shares(), when there are groups and usable bootstrap draws

    def ranked(self) -> pd.DataFrame:
        """The table largest weight first (ties by driver name)."""
        return stable_sort(self.table, "weight", ascending=False, tie="driver").reset_index(drop=True)


def drivers(df: pd.DataFrame, predictors: list[str], outcome: str, n_boot: int = 300,
            seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Relative weights with percentile bootstrap 95% intervals and each weight's share of R².

    Returns the table and the bootstrap draws (replicates × predictors). Replicates in which a driver has
    no spread are left out; a weight whose percentile interval does not contain it gets no interval
    (``note`` says why). The draws are kept (rather than using
    :func:`cxresearch.stats.percentile_bootstrap` per weight) because the attribute groups' shares and
    their difference are computed from the same replicates.
    """
    d = df[[*predictors, outcome]].astype(float).dropna()
    x, y = d[predictors].to_numpy(), d[outcome].to_numpy()
    point = relative_weights(x, y)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        i = rng.integers(0, len(d), len(d))
        try:
            draws.append(relative_weights(x[i], y[i]))
        except (ValueError, np.linalg.LinAlgError):
            draws.append(np.full(len(predictors), np.nan))
    boot = np.array(draws).reshape(n_boot, len(predictors))
    ok = np.all(np.isfinite(boot), axis=1)
    rows = []
    for j, p in enumerate(predictors):
        lo, hi, why = percentile_interval(boot[ok, j], point[j])
        rows.append({"driver": p, "weight": float(point[j]), "ci_low": lo, "ci_high": hi,
                     "share": float(point[j] / point.sum()), "note": why})
    return pd.DataFrame(rows), boot[ok]


def key_drivers(df: pd.DataFrame, predictors: list[str], outcome: str, n_boot: int = 300, seed: int = 0,
                min_n: int = 30) -> Drivers:
    """:func:`drivers` with the checks a report needs: enough complete answers, spread in the outcome,
    and most bootstrap replicates usable. Not estimable (``problem``) otherwise."""
    if not predictors:
        return Drivers(None, None, math.nan, 0, predictors, "no usable perception items to act as drivers")
    d = df[[*predictors, outcome]].astype(float).dropna()
    n = len(d)
    if n < max(min_n, len(predictors) + 3):
        return Drivers(None, None, math.nan, n, predictors,
                       f"only {n} respondents answered every driver and the outcome; at least "
                       f"{max(min_n, len(predictors) + 3)} are needed")
    if d[outcome].nunique() < 2:
        return Drivers(None, None, math.nan, n, predictors, "the outcome has the same value for every respondent")
    try:
        table, boot = drivers(d, predictors, outcome, n_boot, seed)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return Drivers(None, None, math.nan, n, predictors, f"relative weights cannot be computed ({exc})")
    failed = n_boot - len(boot)
    if failed > MAX_FAILED_SHARE * n_boot:
        table[["ci_low", "ci_high"]] = math.nan
        table["note"] = f"{failed} of {n_boot} bootstrap replicates unusable: no interval is shown"
        boot = None
    return Drivers(table, boot, float(table["weight"].sum()), n, predictors, "", failed)


def key_drivers_for(inputs: SurveyInputs, outcome: str, n_boot: int = 300, seed: int = 0) -> Drivers:
    """Key drivers of ``outcome`` (an item, or the mean of a construct's items) among the usable perception
    items, with the attribute groups' shares of explained variance when the dictionary names groups."""
    resp, items = inputs.responses, inputs.items
    predictors = driver_items(items, inputs.usable, outcome)
    y = construct_score(resp, items, outcome)
    dr = key_drivers(resp.assign(_outcome=y), predictors, "_outcome", n_boot, seed, min_n=inputs.min_n)
    dr.outcome, dr.groups = outcome, attribute_groups(items, predictors)
    if dr.groups and dr.table is not None and dr.boot is not None:
        dr.group_table = group_shares(dr.boot, predictors, dr.groups, dr.table["weight"].to_numpy())
    return dr


def drivers_notes(dr: Drivers) -> list[Any]:
    """How much the drivers explain, the attribute groups' shares and the weights (or why there are none)."""
    if dr.table is None:
        return [_say("Key drivers: not estimable — {why}.", why=dr.problem)]
    out: list[Any] = [_say("The drivers together explain **{r2:.0%}** of the variation in the answers to “{outcome}” "
                           "({n:,} respondents).", r2=dr.r2, outcome=plain(dr.outcome), n=dr.n)]
    if dr.group_table is not None:
        out.append(groups_table(dr.group_table))
    return [*out, drivers_table(dr.table)]


def group_shares(boot: np.ndarray, predictors: list[str], groups: dict[str, list[str]],
                 point: np.ndarray | None = None) -> pd.DataFrame:
    """Share of R² per attribute group with percentile bootstrap intervals (draws of :func:`drivers`).

    The estimate is the share computed from the point weights (``point``; without it the bootstrap
    median); an interval that does not contain it is not shown.
    """
    share = boot / boot.sum(axis=1, keepdims=True)
    rows = []
    for g, members in groups.items():
        idx = [predictors.index(m) for m in members if m in predictors]
        s = share[:, idx].sum(axis=1)
        est = float(point[idx].sum() / point.sum()) if point is not None else float(np.median(s))
        lo, hi, why = percentile_interval(s, est)
        rows.append({"group": g, "share": est, "ci_low": lo, "ci_high": hi, "note": why, "draws": s})
    return pd.DataFrame(rows, columns=["group", "share", "ci_low", "ci_high", "note", "draws"])


def attribute_groups(items: pd.DataFrame, predictors: list[str]) -> dict[str, list[str]]:
    """Attribute group -> its driver items (from the dictionary's optional ``attribute_group`` column)."""
    if "attribute_group" not in items:
        return {}
    sub = items[items["item"].isin(predictors) & items["attribute_group"].notna()]
    return {str(g): list(s) for g, s in sub.groupby("attribute_group", sort=True)["item"] if str(g).strip()}


def negativity_ratio(df: pd.DataFrame, outcome: str, good: str, bad: str, controls: list[str]) -> dict[str, float]:
    """How many good experiences offset one bad one: -beta_bad / beta_good from OLS (delta-method CI).

    The ratio is only defined when the effect of a good experience is clearly above zero (its 95% interval
    excludes zero); otherwise the interval is NaN and ``note`` says why.
    """
    d = df[[outcome, good, bad, *controls]].astype(float).dropna()
    out = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "good_effect": math.nan,
           "bad_effect": math.nan, "n": int(len(d)), "note": ""}
    if len(d) < len(controls) + 5 or d[good].nunique() < 2 or d[bad].nunique() < 2 or d[outcome].nunique() < 2:
        out["note"] = "too few answers, or no spread in the outcome or the experience counts"
        return out
    fit = OLS(d[outcome], add_constant(d[[good, bad, *controls]], has_constant="add")).fit(cov_type="HC1")
    g, b = float(fit.params[good]), float(fit.params[bad])
    g_se = float(fit.bse[good])
    out.update({"good_effect": g, "bad_effect": b})
    if not (is_number(g_se) and g - Z95 * g_se > 0):
        out["note"] = ("the effect of a good experience is not clearly above zero, so the ratio is undefined "
                       f"(good: {g:.3g} ± {Z95 * g_se:.2g})")
        return out
    cov = fit.cov_params().loc[[good, bad], [good, bad]].to_numpy()
    grad = np.array([b / g**2, -1 / g])
    se = float(math.sqrt(max(grad @ cov @ grad, 0.0)))
    ratio = float(-b / g)
    out.update({"estimate": ratio, "ci_low": ratio - Z95 * se, "ci_high": ratio + Z95 * se})
    return out


def negativity_ratio_for(inputs: SurveyInputs, dr: Drivers, good_col: str | None,
                         bad_col: str | None) -> dict[str, float] | None:
    """:func:`negativity_ratio` of the drivers' outcome, the drivers held fixed; None without both counts."""
    if not (good_col and bad_col):
        return None
    y = construct_score(inputs.responses, inputs.items, dr.outcome)
    return negativity_ratio(inputs.responses.assign(_outcome=y), "_outcome", good_col, bad_col, dr.predictors)


def negativity_claim(ratio: dict[str, Any] | None, truth: float | None = None) -> Claim | None:
    """"One bad experience needs about five good ones": supported when the interval contains 5 and excludes
    1, not supported when it excludes 5, inconclusive otherwise (not testable without an interval). None
    when the ratio was not asked for."""
    if ratio is None:
        return None
    lo, hi = ratio["ci_low"], ratio["ci_high"]
    v = verdict(lo, hi)  # "not testable" without a finite interval
    if v != "not testable":
        v = "supported" if lo <= 5 <= hi and lo > 1 else "not supported" if hi < 5 or lo > 5 else "inconclusive"
    return Claim("bad_experience_needs_five_good", "One bad experience needs about five good ones to offset it",
                 "ratio of OLS effects of bad and good experience counts on the outcome, drivers held fixed; "
                 "delta-method 95% CI; supported when the interval contains 5 and excludes 1",
                 ratio["estimate"], lo, hi, None, v, int(ratio["n"]), ratio.get("note") or None, "ratio",
                 "How many good experiences it takes to offset one bad one (5× = five)", truth)


GROUP_CLAIMS = {  # id -> (claim, test, unit, meaning, attribute groups it needs)
    "emotional_beats_tangible": (
        "Emotional attributes drive more of the decision than tangible ones",
        "difference in share of explained variance (relative weights), percentile bootstrap 95% CI", "pp",
        "Emotional minus tangible attributes' share of what the drivers explain", {"emotional", "tangible"}),
    "tangible_share_5_to_10": (
        "Tangible attributes account for 5–10% of the decision",
        "tangible share of explained variance, percentile bootstrap 95% CI; supported when inside 5–10%", "share",
        "The tangible attributes' share of what the drivers explain", {"tangible"})}


def group_claims(groups: pd.DataFrame | None, n: int, available: dict[str, list[str]] | None = None,
                 reason: str = "", planted: Mapping[str, float] | None = None) -> list[Claim]:
    """"Emotional attributes drive more than tangible ones" (difference of shares, percentile bootstrap) and
    "tangible attributes account for 5–10%" (``verdict(within=(0.05, 0.10))``), for the groups present.

    Without a ``groups`` table (drivers not estimable) the claims whose attribute groups exist in
    ``available`` are "not testable" with ``reason``. ``planted`` gives the synthetic world's values.
    """
    planted = planted or {}
    present = set(available or {}) if groups is None else set(groups["group"])
    g = None if groups is None else groups.set_index("group")
    out = []
    for cid, (claim, test, unit, meaning, needs) in GROUP_CLAIMS.items():
        if not needs <= present:
            continue
        if g is None:
            est = lo = hi = None
            v, note = "not testable", reason or "the key drivers could not be estimated"
        elif cid == "emotional_beats_tangible":
            diff = np.asarray(g.at["emotional", "draws"]) - np.asarray(g.at["tangible", "draws"])
            est = float(g.at["emotional", "share"] - g.at["tangible", "share"])
            lo, hi, note = percentile_interval(diff, est)
            v = verdict(lo, hi)
        else:
            est, lo, hi, note = (float(g.at["tangible", "share"]), g.at["tangible", "ci_low"],
                                 g.at["tangible", "ci_high"], g.at["tangible", "note"])
            v = verdict(lo, hi, within=(0.05, 0.10))
        out.append(Claim(cid, claim, test, est, lo, hi, None, v, n, note or None, unit, meaning, planted.get(cid)))
    return out


def satisfied_vs_others(responses: pd.DataFrame, items: pd.DataFrame, satisfaction: str, nps_col: str,
                        min_n: int = 30) -> dict[str, Any]:
    """NPS of satisfied customers (top two answers on ``satisfaction``) minus the others' (z-test).

    ``testable`` is False when either group has fewer than ``min_n`` NPS answers; ``n`` is the smaller
    group. :func:`satisfied_claim` turns it into the claim "satisfied customers recommend you".
    """
    sat = construct_score(responses, items, satisfaction)
    sat_max = float(items.loc[(items["construct"] == satisfaction) | (items["item"] == satisfaction), "scale_max"].max())
    answered = sat.notna().to_numpy()
    happy = (sat >= sat_max - 1).to_numpy() & answered
    a, b = nps(responses.loc[happy, nps_col]), nps(responses.loc[answered & ~happy, nps_col])
    n = int(min(a["n"], b["n"]))
    out = {"testable": n >= min_n, "n": n, "min_n": min_n, "satisfaction": satisfaction}
    if n < min_n:
        return out
    return {**out, "satisfied": a["estimate"], "others": b["estimate"], **nps_change(b, a)}


def satisfaction_gap(inputs: SurveyInputs, nps: NPSResults, satisfaction: str | None,
                     nps_col: str | None) -> dict[str, Any] | None:
    """:func:`satisfied_vs_others` when there is an NPS section and a satisfaction measure (else None)."""
    if nps.problem or not satisfaction or not nps_col:
        return None
    return satisfied_vs_others(inputs.responses, inputs.items, satisfaction, nps_col, inputs.min_n)


def satisfied_claim(gap: dict[str, Any] | None) -> Claim | None:
    """"Satisfied customers recommend you": their NPS above the others' (not testable in a small group)."""
    if gap is None:
        return None
    test = "NPS of satisfied customers minus NPS of the others, z-test"
    unit, meaning = "points", "NPS of satisfied customers minus NPS of the others"
    claim = "Satisfied customers recommend you"
    if not gap["testable"]:
        return Claim("satisfied_customers_recommend", claim, test, None, verdict="not testable", n=gap["n"],
                     note=f"fewer than {gap['min_n']} NPS answers among the satisfied customers or among the others",
                     unit=unit, meaning=meaning)
    return Claim("satisfied_customers_recommend", claim, test, gap["estimate"], gap["ci_low"], gap["ci_high"],
                 gap["p_value"], verdict(gap["ci_low"], gap["ci_high"]), gap["n"], None, unit, meaning)


def claim_notes(ratio: dict[str, Any] | None, gap: dict[str, Any] | None) -> list[Say]:
    """The negativity ratio and the satisfied customers' NPS in words (or why they are not tested)."""
    out = []
    if ratio is not None and _has_interval(ratio):
        out.append(_say("One bad experience weighs as much as **{est:.1f}** good ones (95% CI {lo:.1f} to {hi:.1f}), "
                        "holding the ratings of all drivers fixed.", est=ratio["estimate"], lo=ratio["ci_low"],
                        hi=ratio["ci_high"]))
    elif ratio is not None:
        out.append(_say("Negativity ratio: not testable — {why}.", why=ratio["note"]))
    if gap is not None and gap["testable"]:
        out.append(_say("Satisfied customers (top two answers on {satisfaction}): NPS **{a:+.0f}**; the others: "
                        "**{b:+.0f}** (difference {d:.0f} points, 95% CI {lo:.0f} to {hi:.0f}).",
                        satisfaction=plain(gap["satisfaction"]), a=gap["satisfied"], b=gap["others"],
                        d=gap["estimate"], lo=gap["ci_low"], hi=gap["ci_high"]))
    elif gap is not None:
        out.append(_say("Satisfied customers vs the others: fewer than {m} NPS answers in one of the groups, not "
                        "tested.", m=gap["min_n"]))
    return out


@dataclass
class IPA:
    """The importance–performance matrix and its borders (the averages a quadrant is judged against)."""

    table: pd.DataFrame  # driver, importance (share of R²), performance (% of the scale), quadrant
    importance_border: float  # share of R²
    performance_border: float  # % of the scale


def ipa(top: pd.DataFrame, weights: pd.DataFrame) -> IPA:
    """Importance (share of R²) vs performance (mean as % of the scale) with the action quadrant.

    Borders are the means of importance and performance. Values are compared at 9 significant digits and
    a driver exactly on a border counts as important (or performing well). Rows are sorted by importance
    (descending), ties by driver name.
    """
    d = weights[["driver", "share"]].merge(top[["item", "mean", "scale_min", "scale_max"]], left_on="driver",
                                           right_on="item")
    d["performance"] = 100 * (d["mean"] - d["scale_min"]) / (d["scale_max"] - d["scale_min"])
    imp, perf = round_significant(d["share"]), round_significant(d["performance"])
    imp_cut, perf_cut = round_significant(np.mean(imp)), round_significant(np.mean(perf))
    d["quadrant"] = [QUADRANTS[(bool(s >= imp_cut), bool(p >= perf_cut))] for s, p in zip(imp, perf, strict=True)]
    out = d[["driver", "share", "performance", "quadrant"]].rename(columns={"share": "importance"})
    return IPA(stable_sort(out, "importance", ascending=False, tie="driver").reset_index(drop=True), float(imp_cut),
               float(perf_cut))


def ipa_for(inputs: SurveyInputs, dr: Drivers, weights: np.ndarray) -> IPA | None:
    """The importance–performance matrix of the key drivers (weighted performance); None without drivers."""
    if dr.table is None:
        return None
    top = top_box(inputs.responses, inputs.items[inputs.items["item"].isin(dr.predictors)], weights)
    return ipa(top, dr.table)


QUADRANT_CODES = {"improve first": 0, "maintain": 1, "monitor": 2, "possible overkill": 3}


def ipa_notes(matrix: IPA | None, gaps: pd.DataFrame) -> list[Any]:
    """The importance–performance table and the perception-minus-expectation gaps per touchpoint."""
    out: list[Any] = [] if matrix is None else [ipa_table(matrix)]
    if len(gaps):
        out += [_say("**Perception minus expectation per touchpoint**, in points of the answer scale (negative: "
                     "below expectations; paired t interval)"), gaps_table(gaps)]
    return out


def expectation_gaps(responses: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Perception minus expectation per touchpoint (paired t 95% interval); negative = below expectations.
    Empty when the item dictionary has no (optional) ``touchpoint`` column."""
    rows = []
    if "touchpoint" not in items:
        items = items.assign(touchpoint="")
    perc = items[items["kind"] == "perception"].set_index("touchpoint")
    exp_ = items[items["kind"] == "expectation"].set_index("touchpoint")
    for tp in sorted(set(perc.index.dropna()) & set(exp_.index.dropna()) - {""}, key=str):
        p_item, e_item = perc.loc[tp, "item"], exp_.loc[tp, "item"]
        if isinstance(p_item, pd.Series) or isinstance(e_item, pd.Series):
            continue
        diff = (responses[p_item] - responses[e_item]).astype(float).dropna()
        if len(diff) < 2:
            continue
        sd = diff.std(ddof=1)
        half = stats.t.ppf(0.975, len(diff) - 1) * sd / math.sqrt(len(diff)) if sd > 0 else math.nan
        rows.append({"touchpoint": tp, "gap": float(diff.mean()), "ci_low": float(diff.mean() - half),
                     "ci_high": float(diff.mean() + half), "n": len(diff)})
    return pd.DataFrame(rows, columns=["touchpoint", "gap", "ci_low", "ci_high", "n"])


# ---------------------------------------------------------------------------------------------
# tables for readers: cx.table views with plain column names; item, construct and touchpoint names are shown by
# their labels (cx.table runs every text cell through cxresearch.display.plain); ci_low/ci_high become "95% CI"


def _without_empty_notes(df: pd.DataFrame) -> pd.DataFrame:
    if "note" in df and not df["note"].fillna("").astype(str).str.strip().any():
        return df.drop(columns="note")
    return df


def weighting_table(check: pd.DataFrame) -> Table:
    """Population share and weighted share of each level raked to (:attr:`Weighting.check`)."""
    return table(check.rename(columns={"variable": "weighted by", "target": "customer base",
                                       "weighted": "respondents after weighting"}),
                 percent=["customer base", "respondents after weighting"])


def nps_overall_table(overall: dict[str, dict[str, Any]]) -> Table:
    """Overall NPS (unweighted and weighted): NPS, 95% CI, respondents, interval method."""
    names = {"unweighted": "unweighted", "weighted": "weighted to the customer mix"}
    return table(pd.DataFrame([{"": names.get(k, k), "NPS": v["estimate"], "ci_low": v["ci_low"],
                                "ci_high": v["ci_high"], "respondents": v["n"], "interval method": v["method"]}
                               for k, v in overall.items()]))


def nps_group_table(groups: pd.DataFrame, by: str) -> Table:
    """NPS per group of :func:`nps_by` with the shares of promoters and detractors."""
    return table(groups[[by, "respondents", "estimate", "ci_low", "ci_high", "promoters", "detractors", "interval"]]
                 .rename(columns={"estimate": "NPS", "interval": "interval method"}),
                 percent=["promoters", "detractors"])


def nps_change_table(changes: pd.DataFrame) -> Table:
    """Wave-to-wave changes of :func:`nps_changes`."""
    return table(changes.rename(columns={"estimate": "change in NPS (points)"}))


def top_box_table(top: pd.DataFrame) -> Table:
    """Top-2-box share per item of :func:`top_box` with its 95% CI, the mean answer and the scale."""
    out = pd.DataFrame({"question": top["item"], "touchpoint": top["touchpoint"].fillna("").astype(str),
                        "top-2-box": top["top_box"], "ci_low": top["ci_low"], "ci_high": top["ci_high"],
                        "mean answer": top["mean"],
                        "scale": [f"{lo:g}–{hi:g}" for lo, hi in zip(top["scale_min"], top["scale_max"], strict=True)]})
    if not out["touchpoint"].str.strip().any():
        out = out.drop(columns="touchpoint")
    return table(out, percent=["top-2-box", "ci_low", "ci_high"])


BEHAVIOUR = {"prior_spend": ("average spend in the year before the invitation", "money"),
             "tenure_months": ("average time as a customer", "months"),
             "left_within_a_year": ("left within a year of the invitation", "share")}


def behaviour_table(behaviour: pd.DataFrame, currency: str = "") -> Table:
    """Respondents vs non-respondents (:func:`response_bias`), each number written with its unit."""
    rows = []
    for r in behaviour.to_dict("records"):
        name, unit = BEHAVIOUR.get(r["measure"], (r["measure"], ""))
        rows.append({"": name, **{k: fmt_value(v, unit, currency) for k, v in r.items() if k != "measure"}})
    return table(pd.DataFrame(rows))


def reliability_table(rel: pd.DataFrame) -> Table:
    """:func:`reliability` with plain headers (the 95% CI is alpha's)."""
    out = rel.rename(columns={"alpha": "Cronbach's alpha", "omega": "McDonald's omega",
                              "weakest item-total r": "weakest item's correlation with the others"})
    return table(_without_empty_notes(out), rename={"ci": "alpha 95% CI"})


def efa_table(efa: pd.DataFrame) -> Table:
    """The factor-analysis check of :func:`efa_check` with plain headers."""
    return table(efa.rename(columns={"item": "question", "fits": "fits its construct"}))


def groups_table(groups: pd.DataFrame) -> Table:
    """Attribute-group shares of :func:`group_shares`, as %."""
    out = pd.DataFrame({"attribute group": [LABELS.user.get(str(g)) or GROUP_LABELS.get(str(g), plain(str(g))) for g in groups["group"]],
                        "share of explained variance": groups["share"], "ci_low": groups["ci_low"],
                        "ci_high": groups["ci_high"], "note": groups["note"]})
    return table(_without_empty_notes(out), percent=["share of explained variance", "ci_low", "ci_high"])


def drivers_table(weights: pd.DataFrame) -> Table:
    """Relative weights, largest first, as %: the part of the outcome's variation each driver explains (with
    its 95% CI) and its share of what all drivers explain."""
    t = stable_sort(weights, "weight", ascending=False, tie="driver")
    out = pd.DataFrame({"driver": t["driver"], "explains (% of the variation)": t["weight"],
                        "ci_low": t["ci_low"], "ci_high": t["ci_high"],
                        "share of explained variance": t["share"], "note": t["note"]})
    return table(_without_empty_notes(out), percent=["explains (% of the variation)", "ci_low", "ci_high",
                                                     "share of explained variance"])


def ipa_table(matrix: IPA) -> Table:
    """The importance–performance matrix of :func:`ipa`."""
    return table(matrix.table.rename(columns={"importance": "importance (share of explained variance)",
                                        "performance": "performance (% of the scale)", "quadrant": "action"}),
                 percent=["importance (share of explained variance)"])


def gaps_table(gaps: pd.DataFrame) -> Table:
    """Perception minus expectation per touchpoint (:func:`expectation_gaps`), in points of the answer scale."""
    return table(gaps.rename(columns={"gap": "perception minus expectation (scale points)", "n": "respondents"}))


def path_table(model: PathModel, path_model: list) -> Table:
    """Each arrow of the path model with its standardized coefficient."""
    return table(pd.DataFrame([{"from": a, "to": b, "standardized effect": float(model.paths.at[a, b])}
                               for a, b in path_model]))


def r2_table(model: PathModel) -> Table:
    """R² of each construct the path model explains."""
    return table(pd.DataFrame({"construct": model.r2.index, "R²": model.r2.to_numpy()}))


def weight_check(weights: pd.DataFrame, planted: Mapping[str, float]) -> Table:
    """Estimated driver weights next to known ones (a simulation's planted weights), as %."""
    out = pd.DataFrame({"driver": weights["driver"], "estimated weight": weights["weight"],
                        "ci_low": weights["ci_low"], "ci_high": weights["ci_high"],
                        "planted weight": weights["driver"].map(planted)})
    out["planted inside the 95% CI"] = ((out["ci_low"] <= out["planted weight"])
                                        & (out["planted weight"] <= out["ci_high"]))
    return table(out, percent=["estimated weight", "ci_low", "ci_high", "planted weight"])


# ---------------------------------------------------------------------------------------------
# plots


def _light(colour: Any, amount: float = 0.35) -> tuple[float, float, float]:
    """``colour`` mixed with white (opaque, so grid lines do not show through a bar)."""
    return tuple(1 - amount * (1 - c) for c in mcolors.to_rgb(colour))


def _nps_colours() -> list:
    """Detractors, passives, promoters: the ends of the diverging palette and a neutral grey."""
    div = sns.color_palette(plots.DIVERGING, 7)
    return [div[1], _light(plots.MUTED), div[5]]


def _minus(x: float) -> str:
    return f"{x:+.0f}".replace("-", "−")


def plot_nps(table: pd.DataFrame, label: str, ax: plt.Axes | None = None,
             title: str = "Net Promoter Score: detractors, passives and promoters") -> plt.Axes:
    """Detractors, passives and promoters per row (stacked to 100%) with the NPS and its 95% CI beside."""
    t = table.dropna(subset=["estimate"])
    ax = ax or plt.subplots(figsize=(9, 0.55 * len(t) + 1.9), layout="constrained")[1]
    y = np.arange(len(t))[::-1]
    det, pro = t["detractors"].to_numpy(float) * 100, t["promoters"].to_numpy(float) * 100
    parts = [("detractors (0–6)", det), ("passives (7–8)", 100 - det - pro), ("promoters (9–10)", pro)]
    left = np.zeros(len(t))
    for (name, width), colour in zip(parts, _nps_colours(), strict=True):
        ax.barh(y, width, left=left, color=colour, label=name, edgecolor=plots.PAPER, linewidth=0.6)
        for yi, lft, w in zip(y, left, width, strict=True):
            if w >= 8:
                ax.text(lft + w / 2, yi, f"{w:.0f}%", ha="center", va="center", fontsize=8.5)
        left = left + width
    for yi, e, lo, hi in zip(y, t["estimate"], t["ci_low"], t["ci_high"], strict=True):
        ax.text(1.02, yi, f"NPS {_minus(e)}  (95% CI {_minus(lo)} to {_minus(hi)})", va="center", fontsize=9,
                transform=ax.get_yaxis_transform(), clip_on=False)
    ax.set_yticks(y, plots.labels(t[label].astype(str), 28))
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of respondents")
    ax.grid(axis="y", visible=False)
    ax.legend(ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.35 / max(len(t), 1) - 0.1))
    ax.set_title(title, loc="left")
    return ax


def likert_shares(responses: pd.DataFrame, items: pd.DataFrame, weights: np.ndarray | None = None,
                  max_categories: int = 11) -> pd.DataFrame:
    """Share of (weighted) respondents giving each answer, per item: item, scale, answer, share.

    Answers are rounded to whole categories of the item's scale; items nobody answered, or with more than
    ``max_categories`` categories (not a Likert item), are left out.
    """
    w_all = np.ones(len(responses)) if weights is None else np.asarray(weights, float)
    rows = []
    for it in items.itertuples(index=False):
        lo, hi = int(it.scale_min), int(it.scale_max)
        x = responses[it.item].to_numpy(float)
        ok = ~np.isnan(x)
        if not ok.any() or hi - lo + 1 > max_categories or w_all[ok].sum() <= 0:
            continue
        x, w = np.clip(np.rint(x[ok]), lo, hi), w_all[ok]
        for level in range(lo, hi + 1):
            rows.append({"item": it.item, "scale": f"{lo}–{hi}", "scale_min": lo, "scale_max": hi, "answer": level,
                         "share": float(w[x == level].sum() / w.sum())})
    return pd.DataFrame(rows, columns=["item", "scale", "scale_min", "scale_max", "answer", "share"])


def _likert_colours(k: int) -> list:
    colours = list(sns.color_palette(plots.DIVERGING, k))
    if k % 2:  # the middle answer: neutral grey (the palette's own middle is almost white)
        colours[k // 2] = _light(plots.MUTED)
    return colours


def plot_likert(shares: pd.DataFrame, axes: Any = None, title: str = "How customers rate each question") -> list:
    """Diverging stacked bars from :func:`likert_shares`: answers below the middle of the scale left of zero,
    above it right, the middle answer split. One panel per answer scale (1–5 and 1–7 are never mixed), each
    with its legend; all panels share the % axis. Returns the axes."""
    scales = list(dict.fromkeys(shares["scale"]))
    counts = [shares.loc[shares["scale"] == sc, "item"].nunique() for sc in scales]
    if axes is None:
        fig, axes = plt.subplots(len(scales), 1, figsize=(11, sum(0.42 * n + 1.3 for n in counts) + 0.6),
                                 height_ratios=[n + 2 for n in counts], layout="constrained", squeeze=False)
        axes = list(axes[:, 0])
        fig.suptitle(title, fontweight="bold", fontsize=12, x=0.02, ha="left")
        fig.get_layout_engine().set(h_pad=0.12)
    extent = [0.0, 0.0]
    for ax, sc in zip(axes, scales, strict=True):
        sub = shares[shares["scale"] == sc]
        lo, hi = int(sub["scale_min"].iloc[0]), int(sub["scale_max"].iloc[0])
        levels = list(range(lo, hi + 1))
        wide = sub.pivot_table(index="item", columns="answer", values="share", sort=False).reindex(columns=levels)
        wide = wide.fillna(0.0) * 100
        mid = (lo + hi) / 2
        below = wide[[lv for lv in levels if lv < mid]].sum(axis=1) + (wide[mid] / 2 if mid in levels else 0)
        left = -below.to_numpy()
        extent = [min(extent[0], left.min()), max(extent[1], (left + wide.sum(axis=1).to_numpy()).max())]
        y = np.arange(len(wide))[::-1]
        colours = _likert_colours(len(levels))
        for i, lv in enumerate(levels):
            name = f"{lv} (lowest)" if i == 0 else f"{lv} (highest)" if i == len(levels) - 1 else str(lv)
            ax.barh(y, wide[lv].to_numpy(), left=left, color=colours[i], edgecolor=plots.PAPER, linewidth=0.5, label=name)
            left = left + wide[lv].to_numpy()
        ax.axvline(0, color=plots.MUTED, lw=1)
        ax.set_yticks(y, plots.labels(wide.index, 48))
        ax.grid(axis="y", visible=False)
        ax.set_title(f"Questions answered on a {lo}–{hi} scale", loc="left", fontsize=10.5)
        ax.legend(title="answer", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, title_fontsize=9)
    pad = 5
    for ax in axes:
        ax.set_xlim(extent[0] - pad, extent[1] + pad)
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{abs(v):.0f}%"))
    axes[-1].set_xlabel("% of respondents: lower answers left of the line, higher answers right "
                        "(the middle answer is split)")
    return axes


def plot_drivers(dr: Drivers, ax: plt.Axes | None = None) -> plt.Axes:
    """Relative weights of :func:`key_drivers_for` as % of the outcome's variation, with bootstrap 95%
    intervals (largest on top), the drivers' total R² in the axis label; bars coloured by attribute group
    when the dictionary names groups."""
    t, groups, outcome = dr.ranked(), dr.groups, dr.outcome
    ax = ax or plt.subplots(figsize=(9, 0.42 * len(t) + 1.9), layout="constrained")[1]
    group_of = {d: LABELS.user.get(g) or GROUP_LABELS.get(g, plots.label(g)) for g, ds in groups.items() for d in ds}
    d = pd.DataFrame({"driver": plots.labels(t["driver"], 42), "pct": t["weight"] * 100,
                      "group": [group_of.get(x, "other") for x in t["driver"]]})
    if groups:
        order = list(dict.fromkeys(d["group"]))
        sns.barplot(data=d, y="driver", x="pct", hue="group", hue_order=order, dodge=False, orient="h", ax=ax,
                    palette=dict(zip(order, plots.PALETTE, strict=False)), saturation=1)
        ax.legend(title="attribute group", loc="lower right")
    else:
        sns.barplot(data=d, y="driver", x="pct", color=plots.MAIN, orient="h", ax=ax, saturation=1)
    has = t["ci_low"].notna().to_numpy()
    y = np.arange(len(t))
    est, lo, hi = t["weight"].to_numpy() * 100, t["ci_low"].to_numpy() * 100, t["ci_high"].to_numpy() * 100
    ax.errorbar(est[has], y[has], xerr=[(est - lo)[has], (hi - est)[has]], fmt="none", ecolor=plots.MUTED,
                capsize=3, lw=1.2)
    ax.set_xlabel(f"% of the variation in the answers each driver explains (95% CI); all drivers together: "
                  f"{100 * dr.r2:.0f}%")
    ax.set_ylabel("")
    ax.grid(axis="y", visible=False)
    what = plots.label(outcome) if outcome else "the outcome"
    ax.set_title(plots.label(f"What drives the answers to “{what}”" if outcome else "What drives the outcome", 55),
                 loc="left")
    return ax


def plot_ipa(matrix: IPA, ax: plt.Axes | None = None) -> plt.Axes:
    """Importance–performance matrix of :func:`ipa`: each driver by importance (share of explained variance,
    from 0) and performance (mean answer as % of its scale), the borders :func:`ipa` judged the quadrants by,
    the four action quadrants named in the corners. Labels are pushed apart (adjustText) and kept inside
    the axes."""
    from adjustText import adjust_text

    ax = ax or plt.subplots(figsize=(10, 7.5), layout="constrained")[1]
    m = matrix.table
    x, y = m["performance"].to_numpy(float), m["importance"].to_numpy(float) * 100
    x_cut, y_cut = matrix.performance_border, 100 * matrix.importance_border
    first = (m["quadrant"] == "improve first").to_numpy()
    ax.scatter(x[~first], y[~first], color=plots.MAIN, s=45, zorder=3)
    ax.scatter(x[first], y[first], color=plots.ACCENT, s=60, zorder=3)
    lo, hi = max(0.0, 5 * math.floor((x.min() - 4) / 5)), min(100.0, 5 * math.ceil((x.max() + 4) / 5))
    full = hi - lo >= 60
    if full:
        lo, hi = 0.0, 100.0
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, max(y.max() * 1.25, 1.0))
    ax.axvline(x_cut, color=plots.MUTED, ls="--", lw=1)
    ax.axhline(y_cut, color=plots.MUTED, ls="--", lw=1)
    ax.fill_between([lo, x_cut], y_cut, ax.get_ylim()[1], color=_light(plots.ACCENT, 0.08), zorder=0)
    corners = []
    for text, cx_, cy, ha, va in (("IMPROVE FIRST", 0.01, 0.99, "left", "top"), ("MAINTAIN", 0.99, 0.99, "right", "top"),
                                  ("MONITOR", 0.01, 0.01, "left", "bottom"),
                                  ("POSSIBLE OVERKILL", 0.99, 0.01, "right", "bottom")):
        colour = plots.ACCENT if text == "IMPROVE FIRST" else plots.MUTED
        corners.append(ax.text(cx_, cy, text, transform=ax.transAxes, ha=ha, va=va, fontsize=9.5, color=colour,
                               weight="bold", zorder=4))
    texts = [ax.text(xi, yi, plots.label(d, 24), fontsize=8.5, zorder=5,
                     color=plots.ACCENT if f else plots.INK)
             for xi, yi, d, f in zip(x, y, m["driver"], first, strict=True)]
    ax.figure.canvas.draw()
    adjust_text(texts, x=x, y=y, objects=corners, ax=ax, expand=(1.15, 1.35), force_text=(0.3, 0.5),
                force_static=(0.3, 0.5), arrowprops={"arrowstyle": "-", "color": plots.MUTED, "lw": 0.6},
                ensure_inside_axes=True)
    scale = "" if full else f"; axis shows {lo:.0f}–{hi:.0f} of 0–100"
    ax.set_xlabel(f"Performance: mean answer as % of its scale (0 = everyone lowest, 100 = everyone highest{scale})")
    ax.set_ylabel("Importance: share of explained variance (%)")
    ax.set_title("Importance–performance: where to act (dashed lines: averages)", loc="left")
    return ax


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass
class SurveyInputs:
    """Responses (reverse-coded items flipped), item dictionary and optional linked tables."""

    responses: pd.DataFrame
    items: pd.DataFrame
    margins: dict[str, pd.Series] | None
    customers: pd.DataFrame | None
    invitations: pd.DataFrame | None
    transactions: pd.DataFrame | None
    synthetic: bool
    source: str
    usable: pd.DataFrame | None = None  # items that can enter correlations (see usable_items)
    left_out: dict[str, str] = field(default_factory=dict)  # item -> why it cannot
    margins_source: str = "'margins'"
    min_n: int = 30  # no group (wave, segment, raking cell) with fewer respondents is shown


def tables(responses_path: str | Path | None, items_path: str | Path | None = None,
           margins_path: str | Path | None = None, customers_path: str | Path | None = None) -> dict[str, Any]:
    """The tables a survey run reads, for :func:`cxresearch.notebook.start`: the files given or — when none is
    given — the synthetic world's, with its invitations and purchases (for the response-bias section)."""
    return {"survey_responses": responses_path, "survey_items": items_path, "survey_margins": margins_path,
            "customers": customers_path, "survey_invitations": None, "transactions": None}


def load_inputs(source: TableSource, ledger: Ledger, *, nps_col: str | None = "nps", weight_col: str | None = None,
                good_col: str | None = None, bad_col: str | None = None, outcome: str | None = None,
                satisfaction: str | None = None, min_n: int = 1, min_group_size: int = 0, engine: str = "duckdb",
                spark_master: str = "local[*]") -> SurveyInputs:
    """Read the responses and the item dictionary (and margins, customers, invitations, purchases when the
    source has them) of ``source``, recording every input and exclusion in ``ledger``.

    Responses without ``respondent_id`` get row numbers, without ``wave`` a single wave 1. Every dictionary
    item must be a column with answers inside its scale; reverse-coded items are flipped. Columns named by
    parameters (``nps_col``, ``good_col``, ``bad_col``, ``outcome``, and ``satisfaction`` when there is an
    NPS column) must exist. Rows without any answer are excluded and counted. ``min_n`` is raised to
    ``min_group_size`` (a group shown is never below the confidentiality threshold) and kept as
    ``SurveyInputs.min_n``; fewer respondents with answers refuses the run (:class:`NotEstimable`).

    A customer table in Parquet files or a database (``engine``: ``duckdb``, the default, or ``spark`` on
    ``spark_master``; a table URL in its database) is checked by queries and only the customers who answered or
    were invited come back (:func:`cxresearch.engine.read_checked`): their segment, region, channel and plan join
    the answers for weighting and comparisons, and the invited ones' tenure feeds the response-bias model.
    ``engine="pandas"`` reads the whole table into memory; invitations and purchases are always read into
    memory.
    """
    paths, min_n = dict(source.paths), max(min_n, min_group_size)
    if "survey_responses" not in paths or "survey_items" not in paths:
        raise InputError("'survey'", ["give both responses_path and items_path (the item dictionary). Fix: set them."])
    items = read_table(paths["survey_items"], contracts.SURVEY_ITEMS, ledger=ledger)
    items_source = f"'survey_items' ({paths['survey_items']})"
    if items.empty:
        raise InputError(items_source, ["the item dictionary has no rows. Fix: list every item with its construct."])
    bad_scale = items[~(items["scale_min"] < items["scale_max"])]
    if len(bad_scale):
        raise InputError(items_source, [
            f"columns 'scale_min'/'scale_max': {len(bad_scale)} item(s) whose scale_min is not below scale_max: "
            + "; ".join(f"row {i + 2}: {r['item']!r}" for i, r in bad_scale.head(5).iterrows())
            + ". Fix: give the lowest and highest possible answer, e.g. 1 and 5."])
    cols = [Column("respondent_id", "string", required=False, role="id"),
            Column("customer_id", "string", required=False, role="id"),
            Column("wave", "int", required=False, min=1)]
    if weight_col:
        cols.append(Column(weight_col, "float", min=0))
    if nps_col:
        cols.append(Column(nps_col, "int", nullable=True, min=0, max=10,
                           description="0-10 likelihood to recommend; -p nps_col null when there is none"))
    for c in (good_col, bad_col):
        if c:
            cols.append(Column(c, "float", nullable=True, min=0))
    responses = read_table(paths["survey_responses"], Contract("survey_responses", tuple(cols)), ledger=ledger)
    where = f"'survey_responses' ({paths['survey_responses']})"
    if "respondent_id" not in responses:
        responses.insert(0, "respondent_id", [f"row {i + 2}" for i in range(len(responses))])
    if "wave" not in responses:
        responses["wave"] = 1
    require_items(responses, items, where)
    for it in items["item"]:
        responses[it] = pd.to_numeric(responses[it], errors="coerce")
    responses = reverse_coded(responses, items)
    answer_cols = list(items["item"]) + ([nps_col] if nps_col and nps_col not in set(items["item"]) else [])
    blank = responses[answer_cols].isna().all(axis=1).to_numpy()
    ledger.exclude("survey_responses", str(paths["survey_responses"]), "responses without any answer",
                   int(blank.sum()), len(responses), (np.flatnonzero(blank) + 2).tolist())
    responses = responses.loc[~blank].reset_index(drop=True)
    if len(responses) < max(min_n, 1):
        raise NotEstimable(f"Input {where}: {len(responses)} respondent(s) with any answer; every figure needs at "
                           f"least {max(min_n, 1)} (min_n). Fix: collect more responses (or lower min_n).")
    kinds = set(items["item"]) | set(items["construct"]) | set(responses.columns)
    for name, value in (("outcome", outcome), ("satisfaction", satisfaction if nps_col else None)):
        if value is not None and value not in kinds:
            raise ParameterError(
                f"{name} '{value}' is neither an item nor a construct of the item dictionary. Constructs: "
                f"{', '.join(sorted(map(str, set(items['construct']))))}. Example: -p {name} "
                f"{sorted(map(str, set(items['construct'])))[0]}")
    margins, margins_source = None, "'margins'"
    if "survey_margins" in paths:
        margins_source = f"'margins' ({paths['survey_margins']})"
        m = read_table(paths["survey_margins"], Contract("margins", (Column("share", "float", min=0),)), ledger=ledger)
        variables = [v for v in m.columns if v != "share"]
        if not variables:
            raise InputError(margins_source, ["no variable columns next to 'share'. Fix: add e.g. segment, region."])
        if not m["share"].sum() > 0:
            raise InputError(margins_source, ["column 'share': every share is 0. Fix: give the population shares."])
        margins = {v: m.groupby(v)["share"].sum() for v in variables}
    if engine not in engines.ENGINES:
        raise ParameterError(f"-p engine must be one of {list(engines.ENGINES)}, got {engine!r}.")
    linked = {name: read_table(paths[name], contract, ledger=ledger) if name in paths else None
              for name, contract in (("customers", contracts.CUSTOMERS), ("survey_invitations",
                                                                           contracts.SURVEY_INVITATIONS),
                                     ("transactions", contracts.TRANSACTIONS))
              if not (name == "customers" and engines.in_engine(paths.get(name), engine))}
    if "customers" not in linked:  # in an engine: the rows of the respondents (and of everyone invited) only
        opened = engines.open_table(paths["customers"], "customers", engine, spark_master)
        ids = [t["customer_id"] for t in (responses, linked.get("survey_invitations")) if t is not None
               and "customer_id" in t]
        linked["customers"] = engines.read_checked(
            opened, contracts.CUSTOMERS, ledger, only=("customer_id", pd.concat(ids) if ids else []))
    customers = linked["customers"]
    if customers is not None and "customer_id" in responses:
        attrs = [c for c in ("segment", "region", "channel", "plan") if c in customers and c not in responses]
        responses = responses.merge(customers[["customer_id", *attrs]], on="customer_id", how="left")
    usable, left_out = usable_items(responses, items)
    return SurveyInputs(responses, items, margins, customers, linked["survey_invitations"], linked["transactions"],
                        source.synthetic, source.description, usable, left_out, margins_source,
                        min_n)


def input_notes(inputs: SurveyInputs) -> list[Say]:
    """How many responses, waves, questions and constructs, and which items are left out and why."""
    resp, items = inputs.responses, inputs.items
    out = [_say("**{n:,} responses** in {waves} wave(s); {k} questions in {c} constructs.", n=len(resp),
                waves=int(resp["wave"].nunique()), k=len(items), c=int(items["construct"].nunique()))]
    if inputs.left_out:
        out.append(_say("Left out of reliability, factor analysis, drivers and the path model: {left}.",
                        left="; ".join(f"{plain(item)} ({why})" for item, why in inputs.left_out.items())))
    return out


def construct_score(responses: pd.DataFrame, items: pd.DataFrame, name: str) -> pd.Series:
    """An item's answers, or the mean of a construct's items (reverse-coded items already flipped)."""
    if name in responses:
        return responses[name].astype(float)
    cols = list(items.loc[items["construct"] == name, "item"])
    if not cols:
        raise ParameterError(f"{name!r} is neither an item column nor a construct of the item dictionary.")
    return responses[cols].astype(float).mean(axis=1)


def driver_items(items: pd.DataFrame, usable: pd.DataFrame, outcome: str) -> list[str]:
    """Perception items that can act as drivers of ``outcome`` (usable, not the outcome or its construct)."""
    own = set(items.loc[items["construct"] == outcome, "item"]) | {outcome}
    return [i for i in usable.loc[usable["kind"] == "perception", "item"] if i not in own]


def nps_problem(responses: pd.DataFrame, nps_col: str | None, min_n: int) -> str:
    """Why there is no NPS section ("" when there is one)."""
    if not nps_col:
        return "No NPS column was given"
    n = int(responses[nps_col].notna().sum())
    if n < min_n:
        return f"Only {n} respondents answered the NPS question; at least {min_n} (min_n) are needed"
    return ""


def response_probability(x: pd.DataFrame, responded: np.ndarray, model: str = "response model") -> np.ndarray:
    """P(respond | x) from the package's checked logistic regression (:func:`cxresearch.fits.fit_logit`:
    IRLS as given, IRLS on standardised covariates with more iterations, BFGS). A fit is accepted only when
    the score equations are solved and nobody is predicted with certainty; :class:`FitError` otherwise,
    naming the terms that decide on their own who responds."""
    return fit_logit(x, np.asarray(responded, bool), model, outcome="respond",
                     groups="respondents from non-respondents", decides="who responds",
                     fix="merge rare segments, or leave out the response-bias section (no invitations)").probability


@dataclass
class ResponseBias:
    """Respondents vs non-respondents, and how much the raw NPS overstates (``problem``: why not shown)."""

    problem: str = ""
    behaviour: pd.DataFrame | None = None  # measure, non-respondents, respondents
    raw_nps: float = math.nan
    weighted_nps: float = math.nan
    estimate: float = math.nan  # raw minus reweighted NPS, in points
    ci_low: float = math.nan
    ci_high: float = math.nan
    note: str = ""  # why there is no interval
    response_rate: float = math.nan
    n_invited: int = 0
    failed_replicates: int = 0


def response_bias(inputs: SurveyInputs, nps_col: str | None, n_boot: int = 300, seed: int = 0) -> ResponseBias:
    """Respondents vs non-respondents on behaviour, and how much the raw NPS overstates.

    A response model (logistic regression on ``np.log1p(prior_spend) + tenure_months + segment``, segments
    below ``min_n`` folded and entered against the most frequent one (:mod:`cxresearch.design`); fitted by
    :func:`cxresearch.fits.fit_logit`) weights respondents by 1/P(respond). The raw NPS minus that weighted NPS is the part of the
    positivity bias that behaviour explains; bias from satisfaction itself (happier customers answer
    more) is not visible in behaviour, so this is a lower bound. Interval: percentile bootstrap over
    respondents (:func:`cxresearch.stats.percentile_bootstrap`), checked to contain the estimate. Needs
    invitations, customers and purchases, an NPS section and at least ``inputs.min_n`` respondents and
    non-respondents; otherwise ``problem`` says so.
    """
    min_n = inputs.min_n
    problem = (f"Invitations, customers and purchases (and at least {min_n} respondents and non-respondents) are "
               "needed to compare respondents with non-respondents; not available here")
    tables_ = (inputs.invitations, inputs.customers, inputs.transactions)
    if any(t is None for t in tables_) or nps_problem(inputs.responses, nps_col, min_n):
        return ResponseBias(problem)
    invitations, customers, transactions = tables_
    inv = invitations.dropna(subset=["invited_at"]).reset_index(drop=True)
    inv = inv.merge(customers[["customer_id", "signup_date", "churn_date", *[c for c in ("segment",) if c in customers]]],
                    on="customer_id", how="left")
    counts = inv["responded"].value_counts()
    if min(int(counts.get(0, 0)), int(counts.get(1, 0))) < min_n:
        return ResponseBias(problem)
    inv["prior_spend"] = contracts.spend_before(inv, transactions).to_numpy()
    inv["tenure_months"] = (inv["invited_at"] - inv["signup_date"]).dt.days / 30.44
    inv["left_within_a_year"] = (inv["churn_date"].notna() & (inv["churn_date"] <= inv["invited_at"] + pd.Timedelta(days=365))).astype(float)
    behaviour = inv.groupby("responded")[["prior_spend", "tenure_months", "left_within_a_year"]].mean().T
    behaviour.columns = ["non-respondents" if c == 0 else "respondents" for c in behaviour.columns]
    covariates = pd.DataFrame({"prior_spend": inv["prior_spend"].clip(lower=0),
                               "tenure_months": inv["tenure_months"].fillna(0.0)})
    if "segment" in inv:
        # small segments are folded; invitations without a known segment (customers missing from the customer
        # table, or too few to show even folded) join the reference level instead of a level of their own
        known = fold_groups(inv["segment"].dropna().astype(str), min_n)[0].dropna()
        covariates["segment"] = known.reindex(inv.index).astype(object).fillna(
            reference_level(known) if len(known) else "")
    formula = " + ".join(["np.log1p(prior_spend)", formula_of(covariates.columns[1:])])
    x = design_matrix(covariates, formula).X  # segment: indicators against its most frequent level
    inv["p_respond"] = response_probability(x, inv["responded"].astype(bool).to_numpy())
    key = ["customer_id", "wave"]
    r = inputs.responses.merge(inv[[*key, "p_respond"]], on=key, how="inner").dropna(subset=[nps_col])
    if len(r) < min_n:
        return ResponseBias(problem)
    s, w = r[nps_col].to_numpy(), 1 / r["p_respond"].to_numpy()
    raw, weighted = nps(s)["estimate"], nps(s, w)["estimate"]
    boot = percentile_bootstrap(lambda i: nps(s[i])["estimate"] - nps(s[i], w[i])["estimate"], len(r), n_boot, seed,
                                estimate=raw - weighted, max_failed_share=MAX_FAILED_SHARE)
    return ResponseBias("", behaviour.reset_index(names="measure"), raw, weighted, raw - weighted, boot.ci_low,
                        boot.ci_high, boot.problem or "", float(inv["responded"].mean()), len(inv), boot.failed)


def bias_notes(bias: ResponseBias, currency: str = "") -> list[Any]:
    """Respondents vs non-respondents and the overstatement of the raw NPS in words (or why not shown)."""
    if bias.problem:
        return [_say("{why}.", why=bias.problem)]
    out: list[Any] = [behaviour_table(bias.behaviour, currency), _say(
        "Response rate **{rate:.0%}** of {n:,} invitations. Raw NPS **{raw:+.1f}**, reweighted for who replies "
        "**{weighted:+.1f}**: the raw figure differs by **{est:+.1f} points** (positive: the raw figure looks better "
        "than the customer base).", rate=bias.response_rate, n=bias.n_invited, raw=bias.raw_nps,
        weighted=bias.weighted_nps, est=bias.estimate)]
    if is_number(bias.ci_low) and is_number(bias.ci_high):
        out.append(_say("95% CI of the overstatement: {lo:.1f} to {hi:.1f} points.", lo=bias.ci_low, hi=bias.ci_high))
    else:
        out.append(_say("No interval is shown: {why}.", why=bias.note))
    return out


# ---------------------------------------------------------------------------------------------
# PLS path model


@dataclass
class PathModel:
    """A fitted PLS path model: path coefficients (row = from, column = to), outer weights and loadings."""

    paths: pd.DataFrame
    outer: pd.DataFrame  # item, construct, weight, loading
    r2: pd.Series
    iterations: int
    scores: pd.DataFrame
    converged: bool = True


def pls_path_model(data: pd.DataFrame, blocks: dict[str, list[str]], paths: list[tuple[str, str]],
                   modes: dict[str, str] | None = None, max_iter: int = 300, tol: float = 1e-7,
                   start: str = "ones") -> PathModel:
    """Partial least squares path model (Lohmöller's algorithm, path weighting scheme, standardized data).

    ``blocks`` maps each construct to its indicator columns, ``paths`` lists (from, to) arrows and
    ``modes`` gives "A" (reflective, the default) or "B" (formative) per construct. Conventions follow R
    seminr: indicators standardized with the sample SD, construct scores scaled to unit variance, stop when
    no outer weight changes by more than ``tol``. Reproduces seminr's ECSI reference to about 1e-8.
    ``start="pc"`` starts from each block's first principal component instead of equal weights.
    ``converged`` is False when ``max_iter`` was reached first.
    """
    modes = {k: (modes or {}).get(k, "A") for k in blocks}
    lvs = list(blocks)
    d = data[[c for cols in blocks.values() for c in cols]].astype(float).dropna()
    x = {k: ((d[c] - d[c].mean()) / d[c].std(ddof=1)).to_numpy() for k, c in blocks.items()}
    preds = {k: [a for a, b in paths if b == k] for k in lvs}
    succs = {k: [b for a, b in paths if a == k] for k in lvs}

    def lv_scores(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for k in lvs:
            y = x[k] @ w[k]
            out[k] = y / y.std(ddof=1)
        return out

    if start == "pc":
        w = {}
        for k in lvs:
            vals, vecs = np.linalg.eigh(np.atleast_2d(np.corrcoef(x[k], rowvar=False)))
            v = vecs[:, -1]
            w[k] = v * (1 if v.sum() >= 0 else -1)
    else:
        w = {k: np.ones(len(c)) for k, c in blocks.items()}
    iterations, change = 0, math.inf
    while iterations < max_iter and change >= tol:
        iterations += 1
        y = lv_scores(w)
        new = {}
        for k in lvs:
            z = np.zeros(len(d))
            if preds[k]:
                p = np.column_stack([y[q] for q in preds[k]])
                z += p @ np.linalg.lstsq(p, y[k], rcond=None)[0]
            for s in succs[k]:
                z += np.corrcoef(y[k], y[s])[0, 1] * y[s]
            wk = x[k].T @ z / (len(d) - 1) if modes[k] == "A" else np.linalg.lstsq(x[k], z, rcond=None)[0]
            new[k] = wk / (x[k] @ wk).std(ddof=1)
        change = max(float(np.max(np.abs(new[k] - w[k]))) for k in lvs)
        w = new
    y = lv_scores(w)
    coef = pd.DataFrame(0.0, index=lvs, columns=lvs)
    r2 = {}
    for k in lvs:
        if preds[k]:
            p = np.column_stack([y[q] for q in preds[k]])
            b = np.linalg.lstsq(p, y[k], rcond=None)[0]
            coef.loc[preds[k], k] = b
            r2[k] = float(1 - np.var(y[k] - p @ b) / np.var(y[k]))
    outer = pd.DataFrame([{"item": c, "construct": k, "weight": float(w[k][j]),
                           "loading": float(np.corrcoef(x[k][:, j], y[k])[0, 1])}
                          for k in lvs for j, c in enumerate(blocks[k])])
    return PathModel(coef, outer, pd.Series(r2, dtype=float), iterations, pd.DataFrame(y, index=d.index),
                     bool(change < tol))


def _pls_check(m: PathModel) -> str | None:
    if not m.converged:
        return f"outer weights still changing after {m.iterations} iterations"
    if not (np.all(np.isfinite(m.paths.to_numpy())) and np.all(np.isfinite(m.outer[["weight", "loading"]].to_numpy()))):
        return "some estimates are not finite"
    return None


def fit_path_model(data: pd.DataFrame, blocks: dict[str, list[str]], paths: list[tuple[str, str]],
                   modes: dict[str, str] | None = None, max_iter: int = 300, tol: float = 1e-10) -> PathModel:
    """:func:`pls_path_model` with checked convergence: ``max_iter`` iterations, then 100 times as many,
    then principal-component start values. Raises :class:`FitError` when none converges."""
    def attempt(n: int, start: str):
        return lambda: pls_path_model(data, blocks, paths, modes, n, tol, start)

    return fit_with_retries("PLS path model", [
        (f"path weighting, {max_iter} iterations", attempt(max_iter, "ones")),
        (f"path weighting, {100 * max_iter} iterations", attempt(100 * max_iter, "ones")),
        (f"path weighting, principal-component start, {100 * max_iter} iterations", attempt(100 * max_iter, "pc"))],
        check=_pls_check, fix="check that each construct's items measure one thing (reflective blocks) and "
                              "that no item repeats another one.")


@dataclass
class PathResult:
    """A path model, or why there is none."""

    model: PathModel | None
    problem: str = ""
    n: int = 0


def path_model_for(responses: pd.DataFrame, items: pd.DataFrame, usable: pd.DataFrame, path_model: list,
                   formative: list[str], min_n: int = 30) -> PathResult:
    """Fit the requested path model on the usable items; a side analysis, so problems are reported
    (``problem``) rather than raised."""
    if not path_model:
        return PathResult(None, "No path model was requested.")
    constructs = set(items["construct"])
    missing = sorted({c for pair in path_model for c in pair if c not in constructs}, key=str)
    if missing:
        return PathResult(None, f"The path model names constructs that are not in the item dictionary: "
                                f"{', '.join(map(str, missing))}. It is not estimated.")
    used = sorted({c for pair in path_model for c in pair}, key=str)
    blocks = {k: list(usable.loc[usable["construct"] == k, "item"]) for k in used}
    empty = [k for k, v in blocks.items() if not v]
    if empty:
        return PathResult(None, f"Constructs without usable items: {', '.join(map(str, empty))}. The path model is "
                                "not estimable.")
    n = int(len(responses[[c for v in blocks.values() for c in v]].dropna()))
    if n < max(min_n, 10):
        return PathResult(None, f"Only {n} respondents answered every item of the path model: not estimable.", n)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model = fit_path_model(responses, blocks, [tuple(p) for p in path_model], {k: "B" for k in formative})
    except FitError as exc:
        return PathResult(None, f"The path model is not estimable: {exc}", n)
    return PathResult(model, "", n)


def path_notes(pls: PathResult, path_model: list) -> list[Any]:
    """The path model's arrows and R², or why it was not estimated."""
    if pls.model is None:
        return [_say("{why}", why=pls.problem)]
    return [path_table(pls.model, path_model), r2_table(pls.model)]


# ---------------------------------------------------------------------------------------------
# metrics and claims


def metrics(inputs: SurveyInputs, nps: NPSResults, bias: ResponseBias, rel: pd.DataFrame, dr: Drivers,
            matrix: IPA | None, pls: PathResult, path_model: list, ratio: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The run's figures for ``results.json``, each as keyword arguments of ``results.metric``."""
    out: list[dict[str, Any]] = [{"name": "n_responses", "value": len(inputs.responses), "headline": True,
                                  "label": "responses"}]
    if not bias.problem:
        out += [{"name": "response_rate", "value": bias.response_rate, "headline": True, "label": "response rate",
                 "unit": "share"},
                {"name": "positivity_bias", "value": _interval(bias.estimate, bias.ci_low, bias.ci_high),
                 "unit": "points"}]
    if not nps.problem:
        w, u = nps.overall["weighted"], nps.overall["unweighted"]
        weighted = _interval(w["estimate"], w["ci_low"], w["ci_high"])
        out += [{"name": "nps", "unit": "points", "value": {
                    "overall": weighted, "overall_unweighted": _interval(u["estimate"], u["ci_low"], u["ci_high"]),
                    "by_wave": {str(r.wave): _interval(r.estimate, r.ci_low, r.ci_high)
                                for r in nps.by_wave.itertuples()}}},
                {"name": "nps_overall", "value": weighted, "headline": True, "label": "NPS, weighted (95% CI)",
                 "unit": "points"}]
    out += [{"name": "cronbach_alpha", "value": {r.construct: _interval(r.alpha, r.ci_low, r.ci_high)
                                                 for r in rel.itertuples()}},
            {"name": "omega", "value": dict(zip(rel["construct"], rel["omega"], strict=True))}]
    if dr.table is not None:
        out += [{"name": "driver_weights", "unit": "share", "value": {
                    r.driver: _interval(r.weight, r.ci_low, r.ci_high) for r in dr.table.itertuples()}},
                {"name": "driver_r2", "value": dr.r2, "unit": "share"}]
    if matrix is not None:
        out += [{"name": "ipa_quadrant", "value": {r.driver: QUADRANT_CODES[r.quadrant]
                                                   for r in matrix.table.itertuples()}},
                {"name": "ipa_quadrant_codes", "value": dict(QUADRANT_CODES)}]
    if pls.model is not None:
        out += [{"name": "pls_paths", "value": {f"{a} -> {b}": pls.model.paths.at[a, b] for a, b in path_model}},
                {"name": "pls_r2", "value": pls.model.r2.to_dict()}]
    if ratio is not None and _has_interval(ratio):
        out.append({"name": "negativity_ratio", "value": _interval(ratio["estimate"], ratio["ci_low"],
                                                                   ratio["ci_high"]), "unit": "ratio"})
    return out


def claims(dr: Drivers, ratio: dict[str, Any] | None, gap: dict[str, Any] | None,
           planted: Mapping[str, float]) -> list[Claim | None]:
    """The essays' claims this run can pose (None: not asked for), with the planted values when synthetic."""
    return [negativity_claim(ratio, planted.get("bad_experience_needs_five_good")),
            *group_claims(dr.group_table, dr.n, dr.groups, dr.problem or "no bootstrap interval for the attribute groups",
                          planted),
            satisfied_claim(gap)]
