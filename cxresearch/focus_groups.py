"""Focus groups: coded transcripts, coder agreement, what people talked about, and safe quotes.

DataFrames in, typed results out: :func:`load` reads a run's :class:`~cxresearch.sources.Source` into
:class:`FocusGroups`; :func:`coding_grid`, :func:`coder_agreement` (:class:`CoderAgreement`) and
:func:`topics` (:class:`Topics`) compute; :func:`coding_claim` returns the claim as a
:class:`~cxresearch.stats.Claim`. The rest is what a reader sees: sentences (``*_notes``, shown with
:func:`tell`), tables with plain headers (``*_table``), figures (``plot_*``: they draw, they compute
nothing) and their descriptions (``*_alt``).

Interval methods: Krippendorff's alpha (:func:`cxresearch.stats.krippendorff_alpha`, the ``krippendorff``
package) with a percentile bootstrap over turns (:func:`cxresearch.stats.percentile_bootstrap`) for the
overall agreement; bootstrap replicates without variation (alpha undefined) are counted and reported.

Degenerate data never produce a NaN shown as a number: agreement with one coder, a code nobody applied or
a code applied everywhere (no variation) is reported as *not estimable* with the reason. Speaker groups
smaller than ``min_group_size`` are folded into "Other (small groups)" before anything per group is shown;
quotes never come from them. Every ordering breaks ties by label (:func:`cxresearch.stats.stable_sort`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cxresearch import contracts
from cxresearch.display import LABELS, filled, plain, table_labels
from cxresearch.io import Column, Contract, InputError, Ledger, TableSource, first_row, read_table, row_list
from cxresearch.privacy import fold_groups, pseudonymise_labels, scrub
from cxresearch.stats import (
    Claim,
    krippendorff_alpha,
    percentile_bootstrap,
    round_significant,
    stable_sort,
    verdict,
)

MIN_CODERS = 2
TENTATIVE_ALPHA = 0.667  # Krippendorff: tentative conclusions from alpha >= 0.667, firm from 0.8
MAX_FAILED_BOOT = 0.05  # more undefined bootstrap replicates than this share: no interval is shown
GRID_KEYS = ("session_id", "turn", "coder")
RESERVED = (*GRID_KEYS, "speaker", "role", "segment", "text")  # code names that would clash with columns

Note = tuple[str, dict[str, Any]]  # a sentence: a display.say template and its values

_LABEL = Column("label", "string", required=False, nullable=True,
                description="optional: the name a reader sees (empty: the name spelled out)")
CODES = Contract("fg_codes", (Column("session_id", "string"), Column("turn", "int", min=1), Column("coder", "string"),
                              Column("code", "string")), key=("session_id", "turn", "coder", "code"))
CODEBOOK = Contract("fg_codebook", (Column("code", "string"), Column("theme", "string"),
                                    Column("definition", "string", required=False, nullable=True), _LABEL),
                    key=("code",))
TABLES = ("fg_transcripts", "fg_codes", "fg_codebook")


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass(frozen=True, eq=False)
class FocusGroups:
    """The transcripts, coded segments and codebook of one run.

    Attributes
    ----------
    transcripts
        One row per turn: ``session_id``, ``turn``, ``speaker``, optional ``role``/``segment``, ``text``.
    codes
        One row per code a coder applied to a turn: ``session_id``, ``turn``, ``coder``, ``code``.
    codebook
        ``code``, ``theme``, optional ``definition`` and ``label`` (the name a reader sees).
    synthetic
        Whether the tables are the built-in synthetic world.
    """

    transcripts: pd.DataFrame
    codes: pd.DataFrame
    codebook: pd.DataFrame
    synthetic: bool = False

    @property
    def sessions(self) -> int:
        return int(self.transcripts["session_id"].nunique())

    @property
    def speakers(self) -> int:
        return int(self.transcripts[["session_id", "speaker"]].drop_duplicates().shape[0])

    @property
    def coders(self) -> int:
        return int(self.codes["coder"].nunique())


def load(source: TableSource, ledger: Ledger) -> FocusGroups:
    """Transcripts, coded segments and codebook of ``source`` (a :class:`~cxresearch.sources.Source`).

    Every table is read through its contract and recorded in ``ledger`` (``results.ledger``). Codes must
    exist in the codebook and point at existing turns, and code names must not clash with the key
    columns; otherwise one clear error that names the file, column, rows and fix. Session ids that look
    like personal data become pseudonyms (noted in the ledger).
    """
    paths = source.paths
    missing = [k for k in TABLES if k not in paths]
    if missing:
        raise InputError("'focus groups'", [f"{m} is needed (transcripts_path, codes_path and codebook_path go "
                                            "together). Fix: give all three." for m in missing])
    transcripts = read_table(paths["fg_transcripts"], contracts.FG_TRANSCRIPTS, ledger=ledger)
    codes = read_table(paths["fg_codes"], CODES, ledger=ledger)
    codebook = read_table(paths["fg_codebook"], CODEBOOK, ledger=ledger)
    _check_codebook(codebook, paths["fg_codebook"])
    _check_codes(codes, codebook, transcripts, paths["fg_codes"])
    transcripts, codes = _hide_personal_sessions(transcripts, codes, ledger)
    return FocusGroups(transcripts, codes, codebook, bool(source.synthetic))


def _check_codebook(codebook: pd.DataFrame, path: Path) -> None:
    reserved = codebook["code"].isin(RESERVED)
    if reserved.any():
        raise InputError(f"'fg_codebook' ({path})", [
            f"column 'code': {int(reserved.sum())} code(s) use a reserved column name: "
            f"{row_list(reserved, codebook, 'code', first_row(path))}. Fix: rename those codes "
            "(e.g. add a prefix) in the codebook and the codes file."])


def _check_codes(codes: pd.DataFrame, codebook: pd.DataFrame, transcripts: pd.DataFrame, path: Path) -> None:
    problems = []
    off = first_row(path)
    unknown = ~codes["code"].isin(set(codebook["code"]))
    if unknown.any():
        names = sorted(set(codes.loc[unknown, "code"]), key=str)
        problems.append(f"column 'code': {int(unknown.sum())} row(s) use codes that are not in the codebook "
                        f"({names[:5]}): {row_list(unknown, codes, 'code', off)}. Fix: add them to the codebook or "
                        "recode those rows.")
    turns = pd.MultiIndex.from_frame(transcripts[["session_id", "turn"]].astype({"turn": "int64"}))
    keys = pd.MultiIndex.from_frame(codes[["session_id", "turn"]].astype({"turn": "int64"}))
    orphan = pd.Series(~keys.isin(turns), index=codes.index)
    if orphan.any():
        shown = "; ".join(f"row {i + off}: session {codes.at[i, 'session_id']!r}, turn {codes.at[i, 'turn']}"
                          for i in codes.index[orphan][:5])
        more = f" (and {int(orphan.sum()) - 5} more)" if orphan.sum() > 5 else ""
        problems.append(f"columns 'session_id'/'turn': {int(orphan.sum())} coded segment(s) point at turns missing "
                        f"from the transcripts: {shown}{more}. Fix: check session_id and turn against the "
                        "transcripts (or give the matching transcripts file).")
    if problems:
        raise InputError(f"'fg_codes' ({path})", problems)


def _hide_personal_sessions(transcripts: pd.DataFrame, codes: pd.DataFrame,
                            ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Session ids that look like personal data (a moderator's name, an e-mail) become pseudonyms in both tables."""
    sessions = pd.Series(sorted(set(transcripts["session_id"]) | set(codes["session_id"]), key=str), dtype=object)
    renamed, hidden = pseudonymise_labels(sessions, prefix="session")
    if not hidden:
        return transcripts, codes
    mapping = dict(zip(sessions, renamed, strict=True))
    ledger.note(f"{hidden} session id(s) looked like personal data (a name, e-mail or phone number) and are shown "
                "as pseudonyms.")
    return (transcripts.assign(session_id=transcripts["session_id"].map(mapping)),
            codes.assign(session_id=codes["session_id"].map(mapping)))


# ---------------------------------------------------------------------------------------------
# labels: what the reader sees instead of codes and coder names


_CODER = re.compile(r"(?i)^(coder|rater|annotator)[\s_.-]*([A-Za-z0-9]{1,3})$")


def coder_labels(coders: pd.Series | list) -> dict[str, str]:
    """Coder names as a reader writes them: ``coder_a`` → "coder A", ``rater_2`` → "rater 2"; other names
    are spelled out (:func:`cxresearch.display.plain`)."""
    out = {}
    for c in pd.unique(pd.Series(list(coders), dtype=object).dropna()):
        m = _CODER.match(str(c).strip())
        out[str(c)] = f"{m.group(1).lower()} {m.group(2).upper()}" if m else plain(c)
    return out


def reader_labels(data: FocusGroups) -> dict[str, str]:
    """Labels of the coders and codes (the codebook's ``label`` column) for :func:`cxresearch.display.use_labels`."""
    return {**coder_labels(data.codes["coder"]), **table_labels(data.codebook, "code")}


# ---------------------------------------------------------------------------------------------
# speaker groups and confidentiality


def pseudonyms(transcripts: pd.DataFrame, speaker_col: str = "speaker", role_col: str | None = "role") -> pd.Series:
    """A stable pseudonym per (session, speaker), e.g. 'Customer 3' or 'Participant 5'."""
    keys = transcripts[["session_id", speaker_col]].drop_duplicates().reset_index(drop=True)
    if role_col and role_col in transcripts:
        roles = transcripts.drop_duplicates(["session_id", speaker_col]).set_index(["session_id", speaker_col])[role_col]
        keys["role"] = [_role_name(roles.loc[(s, p)]) for s, p in zip(keys["session_id"], keys[speaker_col], strict=True)]
    else:
        keys["role"] = "Participant"
    keys["pseudonym"] = keys["role"] + " " + (keys.groupby("role").cumcount() + 1).astype(str)
    return keys.set_index(["session_id", speaker_col])["pseudonym"]


def _role_name(value: Any) -> str:
    return str(value).strip().capitalize() if filled(value) else "Participant"


def speaker_groups(transcripts: pd.DataFrame, group_col: str = "role", min_n: int = 5) -> tuple[pd.DataFrame, list[str]]:
    """Distinct speakers per group, groups smaller than ``min_n`` folded into "Other (small groups)".

    Returns the table (group, speakers) and the folded labels (so the notebook can say which were folded).
    """
    speakers = transcripts.drop_duplicates(["session_id", "speaker"])
    if group_col not in speakers:
        return pd.DataFrame(columns=[group_col, "speakers"]), []
    recoded, folded = fold_groups(speakers[group_col], min_n)
    table = recoded.value_counts().rename_axis(group_col).rename("speakers").reset_index()
    return stable_sort(table, "speakers", ascending=False, tie=group_col).reset_index(drop=True), folded


def _fold_speaker_column(d: pd.DataFrame, group_col: str, min_n: int) -> tuple[pd.Series, list[str]]:
    """The group of each row of ``d`` with speaker groups below ``min_n`` folded (counted by distinct speakers)."""
    speakers = d.drop_duplicates(["session_id", "speaker"])
    recoded, folded = fold_groups(speakers[group_col], min_n)
    mapping = dict(zip(zip(speakers["session_id"], speakers["speaker"], strict=True), recoded, strict=True))
    return pd.Series([mapping[k] for k in zip(d["session_id"], d["speaker"], strict=True)], index=d.index), folded


# ---------------------------------------------------------------------------------------------
# coding and agreement


def coding_grid(transcripts: pd.DataFrame, codes: pd.DataFrame, codebook: pd.DataFrame) -> pd.DataFrame:
    """One row per (session, turn, coder) with a 0/1 column per code.

    A coder who applied no code at all in a session is taken not to have coded that session: those rows
    are missing (NaN), not 0, so that an uncoded session does not count as disagreement. The sessions
    concerned are listed by :func:`uncoded_sessions`.
    """
    coders = sorted(codes["coder"].unique(), key=str)
    turns = transcripts[["session_id", "turn"]]
    grid = pd.concat([turns.assign(coder=c) for c in coders], ignore_index=True)
    hits = (codes.assign(v=1).pivot_table(index=list(GRID_KEYS), columns="code", values="v", aggfunc="max",
                                          fill_value=0).reset_index())
    hits.columns.name = None
    grid = grid.merge(hits, on=list(GRID_KEYS), how="left")
    coded = set(zip(codes["session_id"], codes["coder"], strict=True))
    was_coded = pd.Series([k in coded for k in zip(grid["session_id"], grid["coder"], strict=True)], index=grid.index)
    for c in codebook["code"]:
        col = grid[c].fillna(0).astype(float) if c in grid else pd.Series(0.0, index=grid.index)
        grid[c] = col.where(was_coded)
    return grid[[*GRID_KEYS, *codebook["code"]]]


def uncoded_sessions(grid: pd.DataFrame) -> pd.DataFrame:
    """(session, coder) pairs in which the coder applied no code (treated as not coded, see :func:`coding_grid`)."""
    codes_ = [c for c in grid.columns if c not in GRID_KEYS]
    miss = grid[grid[codes_].isna().all(axis=1)] if codes_ else grid.iloc[0:0]
    return miss[["session_id", "coder"]].drop_duplicates().sort_values(["session_id", "coder"]).reset_index(drop=True)


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two raters' labels on the same items (NaN when it is undefined: no variation)."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) == 0:
        return math.nan
    po = np.mean(a == b)
    pe = sum(np.mean(a == c) * np.mean(b == c) for c in np.union1d(a, b))
    return float((po - pe) / (1 - pe)) if pe < 1 else math.nan


def _wide(grid: pd.DataFrame, code: str, coders: list) -> pd.DataFrame:
    """Turns × coders matrix of one code (NaN: the coder did not code that turn's session)."""
    return grid.set_index(["session_id", "turn", "coder"])[code].unstack("coder").reindex(columns=coders)


def _no_variation(values: np.ndarray) -> str | None:
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return "no turn was coded by two coders"
    if np.all(v == 0):
        return "nobody applied this code: agreement is undefined (no variation)"
    if np.all(v == v[0]):
        return "every coder applied it to every turn: agreement is undefined (no variation)"
    return None


def agreement(grid: pd.DataFrame, codebook: pd.DataFrame) -> pd.DataFrame:
    """Per code: how often each coder applied it, Cohen's kappa (two coders) and Krippendorff's alpha (nominal).

    Undefined agreement (one coder, a code nobody applied, a code applied everywhere) is left empty and
    explained in the ``note`` column, never shown as NaN.
    """
    coders = sorted(grid["coder"].unique(), key=str)
    rows = []
    for code in codebook["code"]:
        wide = _wide(grid, code, coders)
        row: dict[str, Any] = {"code": code, **{f"applied by {c}": int(np.nansum(wide[c].to_numpy())) for c in coders}}
        both = wide[coders].dropna(thresh=2) if len(coders) >= MIN_CODERS else wide.iloc[0:0]
        note = (f"one coder only ({coders[0]}): agreement needs at least two coders" if len(coders) < MIN_CODERS
                else _no_variation(both.to_numpy().ravel()))
        if len(coders) == 2:
            pair = wide[coders].dropna()
            row["kappa"] = math.nan if note else cohen_kappa(pair[coders[0]].to_numpy(), pair[coders[1]].to_numpy())
        row["krippendorff_alpha"] = math.nan if note else krippendorff_alpha(both.to_numpy().T, "nominal")
        row["disagreements"] = int((both.nunique(axis=1) > 1).sum()) if len(coders) >= MIN_CODERS else None
        row["note"] = note or ""
        rows.append(row)
    return pd.DataFrame(rows)


def weak_codes(agree: pd.DataFrame, threshold: float = TENTATIVE_ALPHA) -> list[str]:
    """Codes whose (defined) alpha is below ``threshold``, in codebook order."""
    a = agree["krippendorff_alpha"]
    return agree.loc[a.notna() & (round_significant(a) < threshold), "code"].tolist()


@dataclass(frozen=True)
class OverallAgreement:
    """Krippendorff's alpha over all codes and turns, with its bootstrap interval.

    ``estimate``, ``ci_low`` and ``ci_high`` are ``None`` when not estimable (``reason`` says why);
    ``turns`` counts turns coded by at least two coders; ``failed`` counts bootstrap replicates whose alpha
    is undefined (the resample has no variation): left out of the interval and reported.
    """

    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    turns: int = 0
    coders: int = 0
    n_boot: int = 0
    failed: int = 0
    reason: str | None = None


def overall_agreement(grid: pd.DataFrame, codebook: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> OverallAgreement:
    """Krippendorff's alpha (nominal) over all codes and turns, with a percentile bootstrap 95% CI over turns.

    With more than 5% undefined replicates, or an interval that misses the estimate, no interval is shown.
    """
    coders = sorted(grid["coder"].unique(), key=str)
    base = {"coders": len(coders), "n_boot": int(n_boot)}
    if len(coders) < MIN_CODERS:
        return OverallAgreement(**base, reason=(f"only one coder ({coders[0]}) coded the transcripts: agreement needs "
                                                "at least two coders coding the same turns"))
    per_code = np.stack([_wide(grid, code, coders).to_numpy().T for code in codebook["code"]])  # codes × coders × turns
    per_code = per_code[:, :, (~np.isnan(per_code[0])).sum(axis=0) >= 2]  # turns coded by two coders or more
    n = per_code.shape[2]
    base["turns"] = int(n)
    if n == 0:
        return OverallAgreement(**base, reason="no turn was coded by two coders")

    def alpha(idx: np.ndarray) -> float:  # codes side by side: one coders × (codes · turns) matrix
        return krippendorff_alpha(np.concatenate(list(per_code[:, :, idx]), axis=1), "nominal")

    estimate = alpha(np.arange(n))
    if not math.isfinite(estimate):
        return OverallAgreement(**base, reason=("no code varies across turns (each is applied everywhere or nowhere): "
                                                "alpha is undefined without variation"))
    boot = percentile_bootstrap(alpha, n, n_boot, seed, estimate=None, max_failed_share=MAX_FAILED_BOOT)
    base.update(estimate=estimate, failed=boot.failed)
    if boot.problem:
        return OverallAgreement(**base, reason=(f"{boot.failed} of {boot.n_boot} bootstrap replicates had no variation "
                                                "(alpha undefined), so the interval would not be reliable"))
    if not boot.ci_low - 1e-12 <= estimate <= boot.ci_high + 1e-12:
        return OverallAgreement(**base, reason=("the bootstrap interval does not contain the estimate (too few coded "
                                                "turns for a bootstrap)"))
    return OverallAgreement(**base, ci_low=boot.ci_low, ci_high=boot.ci_high)


@dataclass(frozen=True, eq=False)
class CoderAgreement:
    """How far the coders agree: per code (:func:`agreement`) and overall (:class:`OverallAgreement`)."""

    per_code: pd.DataFrame
    overall: OverallAgreement
    coders: int
    weak: list[str] = field(default_factory=list)  # defined alpha below 0.667
    undefined: list[str] = field(default_factory=list)  # agreement undefined (see the note column)


def coder_agreement(grid: pd.DataFrame, codebook: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> CoderAgreement:
    """Agreement per code and overall (see :func:`agreement` and :func:`overall_agreement`)."""
    per_code = agreement(grid, codebook)
    return CoderAgreement(per_code, overall_agreement(grid, codebook, n_boot, seed), int(grid["coder"].nunique()),
                          weak_codes(per_code), per_code.loc[per_code["note"] != "", "code"].astype(str).tolist())


def coding_claim(overall: OverallAgreement, threshold: float = TENTATIVE_ALPHA) -> Claim:
    """The claim "the coders agree well enough to draw tentative conclusions" (alpha above ``threshold``)."""
    test = (f"Krippendorff's alpha over all codes and turns (nominal), bootstrap 95% CI over turns, compared with "
            f"{threshold}")
    if overall.failed:
        test += f"; {overall.failed} of {overall.n_boot} replicates undefined (no variation) and left out"
    lo, hi = overall.ci_low, overall.ci_high
    testable = lo is not None and hi is not None
    if not testable:
        test += f" (not testable: {overall.reason})"
    return Claim(id="coding_is_reliable", claim="The coders agree well enough to draw tentative conclusions",
                 test=test, estimate=overall.estimate if testable else None, ci_low=lo, ci_high=hi,
                 verdict=verdict(lo, hi, null=threshold) if testable else "not testable", n=int(overall.turns),
                 note=None if testable else f"not testable: {overall.reason}", unit="",
                 meaning=(f"Krippendorff's alpha: 1 = the coders always agree, 0 = no better than chance; {threshold} "
                          "is the minimum for tentative conclusions, 0.8 for firm ones"))


# ---------------------------------------------------------------------------------------------
# what people talked about


def consensus(grid: pd.DataFrame, codebook: pd.DataFrame, rule: str = "all") -> pd.DataFrame:
    """Codes per turn agreed by all coders who coded it (``rule='all'``) or applied by any (``'any'``).

    A turn nobody coded carries no code (0).
    """
    agg = grid.groupby(["session_id", "turn"])[list(codebook["code"])]
    out = agg.min() if rule == "all" else agg.max()
    return out.fillna(0).astype(int).reset_index()


def code_frequencies(transcripts: pd.DataFrame, agreed: pd.DataFrame, codebook: pd.DataFrame,
                     group_col: str | None = "role", min_group: int = 5) -> pd.DataFrame:
    """Per code: turns, sessions and distinct speakers raising it (agreed codes), by speaker group when given.

    Speaker groups with fewer than ``min_group`` distinct speakers are folded into "Other (small groups)"
    before counting (the folded labels are in ``.attrs["folded"]``).
    """
    d = transcripts.merge(agreed, on=["session_id", "turn"])
    folded: list[str] = []
    if group_col and group_col in d:
        group, folded = _fold_speaker_column(d, group_col, min_group)
        d = d.assign(_group=group)
    groups = sorted(d["_group"].dropna().unique(), key=str) if "_group" in d else []
    groups = groups if len(groups) >= 2 else []  # one group (everything folded) adds nothing
    rows = []
    for r in codebook.itertuples(index=False):
        hit = d[d[r.code] == 1]
        row = {"theme": r.theme, "code": r.code, "turns": len(hit), "sessions": hit["session_id"].nunique(),
               "speakers": hit[["session_id", "speaker"]].drop_duplicates().shape[0]}
        for g in groups:
            sub = hit[hit["_group"] == g]
            row[f"speakers ({g})"] = sub[["session_id", "speaker"]].drop_duplicates().shape[0]
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["folded"] = folded
    return out


def theme_frequencies(transcripts: pd.DataFrame, agreed: pd.DataFrame, codebook: pd.DataFrame) -> pd.DataFrame:
    """Per theme (sorted by label): distinct speakers who raised any of its codes (agreed codes)."""
    d = transcripts.merge(agreed, on=["session_id", "turn"])
    rows = []
    for theme, codes_ in codebook.groupby("theme", sort=False)["code"]:
        hit = d[d[list(codes_)].sum(axis=1) > 0]
        rows.append({"theme": theme, "codes": len(codes_), "turns": len(hit),
                     "speakers": hit[["session_id", "speaker"]].drop_duplicates().shape[0]})
    out = pd.DataFrame(rows, columns=["theme", "codes", "turns", "speakers"])
    return out.sort_values("theme", key=lambda s: s.astype(str), kind="mergesort").reset_index(drop=True)


def cooccurrence(agreed: pd.DataFrame, codebook: pd.DataFrame) -> pd.DataFrame:
    """How many turns carry each pair of codes together."""
    m = agreed[list(codebook["code"])].to_numpy(dtype=float)
    return pd.DataFrame((m.T @ m).astype(int), index=codebook["code"], columns=codebook["code"])


def top_pairs(co: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The ``k`` pairs of codes found together most often; ties broken by the codes' labels."""
    rows = []
    for a, b in combinations(co.index, 2):
        if co.at[a, b] > 0:
            first, second = sorted((a, b), key=str)
            rows.append({"code A": first, "code B": second, "turns": int(co.at[a, b])})
    df = pd.DataFrame(rows, columns=["code A", "code B", "turns"])
    if df.empty:
        return df
    return stable_sort(df, "turns", ascending=False, tie=["code A", "code B"]).head(k).reset_index(drop=True)


def theme_bars(freq: pd.DataFrame, themes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The bars of :func:`plot_themes` in drawing order: themes most-raised first (ties by theme), codes
    most-raised first within their theme (ties by code); ``theme speakers`` is the theme's distinct
    speakers (missing without ``themes``)."""
    f = freq.assign(theme=freq["theme"].astype(str), code=freq["code"].astype(str))
    if themes is not None and len(themes):
        t = themes.assign(theme=themes["theme"].astype(str))
        order = stable_sort(t, "speakers", ascending=False, tie="theme")["theme"].tolist()
        totals = dict(zip(t["theme"], t["speakers"], strict=True))
    else:
        top = f.groupby("theme")["speakers"].max().rename("speakers").reset_index()
        order, totals = stable_sort(top, "speakers", ascending=False, tie="theme")["theme"].tolist(), {}
    order += sorted(set(f["theme"]) - set(order))
    rank = {t: i for i, t in enumerate(order)}
    f = stable_sort(f.assign(_t=f["theme"].map(rank)), ["_t", "speakers"], ascending=[True, False], tie="code")
    out = f[["theme", "code", "speakers"]].assign(**{"theme speakers": f["theme"].map(totals)})
    return out.reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class Topics:
    """What people talked about, counted on the agreed codes (:func:`consensus`).

    ``codes``: :func:`code_frequencies`; ``themes``: :func:`theme_frequencies`; ``cooccurrence``: turns
    per pair of codes; ``pairs``: the five most frequent pairs (:func:`top_pairs`); ``bars``: the
    theme chart's bars in drawing order (:func:`theme_bars`).
    """

    agreed: pd.DataFrame
    codes: pd.DataFrame
    themes: pd.DataFrame
    cooccurrence: pd.DataFrame
    pairs: pd.DataFrame
    bars: pd.DataFrame

    @property
    def single_speaker(self) -> list[str]:
        """Codes raised by one speaker only (not a theme)."""
        return self.codes.loc[self.codes["speakers"] == 1, "code"].astype(str).tolist()

    @property
    def never_raised(self) -> list[str]:
        return self.codes.loc[self.codes["speakers"] == 0, "code"].astype(str).tolist()


def topics(data: FocusGroups, grid: pd.DataFrame, min_group: int = 5, group_col: str = "role") -> Topics:
    """Code and theme frequencies (distinct speakers), co-occurrence and top pairs on the agreed codes."""
    agreed = consensus(grid, data.codebook, "all")
    freq = code_frequencies(data.transcripts, agreed, data.codebook, group_col, min_group)
    themes = theme_frequencies(data.transcripts, agreed, data.codebook)
    co = cooccurrence(agreed, data.codebook)
    return Topics(agreed, freq, themes, co, top_pairs(co), theme_bars(freq, themes))


# ---------------------------------------------------------------------------------------------
# quotes

SCRIPT_LANGUAGES = {"Cyrillic": "Russian", "Latin": "English"}  # the language a quote's script is shown as
_PLACEHOLDER = re.compile(r"\[(?:name|e-mail|phone)\]")  # what :func:`scrub` puts in: not the speaker's words


def _script(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    for script in SCRIPT_LANGUAGES:
        if name.startswith(script.upper()):
            return script
    return "other" if ch.isalpha() else None


def quote_language(text: str, minor_share: float = 0.2) -> str:
    """The language of a quote, told by its script: Cyrillic → "Russian", Latin → "English" (see
    :data:`SCRIPT_LANGUAGES`), other letters → "other language".

    A quote in two scripts is "Russian and English" when the smaller script holds at least ``minor_share``
    of the letters (a stray brand name in a Russian sentence does not make it bilingual). The placeholders
    that scrubbing puts in ("[name]", "[e-mail]", "[phone]") are not counted. No letters at all: "".
    """
    counts: dict[str, int] = {}
    for ch in _PLACEHOLDER.sub(" ", str(text)):
        script = _script(ch)
        if script:
            counts[script] = counts.get(script, 0) + 1
    total = sum(counts.values())
    if not total:
        return ""
    top = max(counts.values())
    kept = [s for s in (*SCRIPT_LANGUAGES, "other") if counts.get(s, 0) >= max(minor_share * total, 1) or
            counts.get(s, 0) == top]
    names = [SCRIPT_LANGUAGES.get(s, "other language") for s in kept]
    return " and ".join(dict.fromkeys(names))


def normalised(text: str) -> str:
    """A quote's text for finding repeats: Unicode-normalised, case-folded, "ё" as "е", punctuation dropped,
    spaces collapsed ("Rude!" and " rude." are the same quote)."""
    t = unicodedata.normalize("NFKC", str(text)).casefold().replace("ё", "е")
    return " ".join(re.sub(r"[^\w\s]|_", " ", t).split())


def quotes(transcripts: pd.DataFrame, agreed: pd.DataFrame, codebook: pd.DataFrame, k: int = 2, min_group: int = 5,
           group_cols: tuple[str, ...] = ("role", "segment"), max_chars: int = 240) -> pd.DataFrame:
    """Up to ``k`` quotes per theme: scrubbed, pseudonymous, with their language, escaped later by the report.

    Shorter turns first (ties: session, then turn). A quote is never taken from a speaker group
    (``group_cols``) with fewer than ``min_group`` distinct speakers in all sessions, never from an empty
    turn, and the same text is quoted at most once per theme: repeats are found on the scrubbed text
    :func:`normalised` (case, punctuation and spacing ignored). ``language`` is told by the script
    (:func:`quote_language`).
    """
    d = transcripts.merge(agreed, on=["session_id", "turn"])
    names = list(transcripts["speaker"].dropna().astype(str).unique())
    alias = pseudonyms(transcripts)
    cols = [c for c in group_cols if c in d]
    if cols:
        keyed = d.assign(**{c: d[c].astype(object).where(d[c].notna(), "") for c in cols})
        size = keyed.drop_duplicates(["session_id", "speaker"]).groupby(cols)["speaker"].size()
        d = d.assign(_group_size=keyed.join(size.rename("_group_size"), on=cols)["_group_size"].to_numpy())
    else:
        d["_group_size"] = d[["session_id", "speaker"]].drop_duplicates().shape[0]
    d = d.assign(_text=[scrub(t, names) if isinstance(t, str) else "" for t in d["text"]])
    d = d.assign(_text=d["_text"].str.strip(), _len=d["_text"].str.strip().str.len())
    d = d.assign(_key=[normalised(t) for t in d["_text"]])
    rows = []
    for theme, codes_ in codebook.groupby("theme", sort=False)["code"]:
        hit = d[(d[list(codes_)].sum(axis=1) > 0) & (d["_group_size"] >= min_group) & (d["_len"] > 0)]
        hit = stable_sort(hit, "_len", tie=["session_id", "turn"]).drop_duplicates("_key")
        for r in hit.head(max(int(k), 0)).to_dict("records"):
            text = r["_text"] if len(r["_text"]) <= max_chars else r["_text"][:max_chars] + "…"
            rows.append({"theme": theme, "quote": text, "language": quote_language(r["_text"]),
                         "speaker": alias.loc[(r["session_id"], r["speaker"])], "session": r["session_id"]})
    out = pd.DataFrame(rows, columns=["theme", "quote", "language", "speaker", "session"])
    return out.sort_values("theme", key=lambda s: s.astype(str), kind="mergesort").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# the run's metrics


def agreement_metrics(per_code: pd.DataFrame, overall: OverallAgreement) -> dict[str, Any]:
    """Metric values: defined per-code alphas and kappas only (undefined ones are omitted, never NaN)."""
    out: dict[str, Any] = {}
    if "kappa" in per_code:
        out["kappa"] = {r.code: float(r.kappa) for r in per_code.itertuples() if math.isfinite(r.kappa)}
    alpha: dict[str, Any] = {r.code: float(r.krippendorff_alpha) for r in per_code.itertuples()
                             if math.isfinite(r.krippendorff_alpha)}
    if overall.ci_low is not None:
        alpha["overall"] = {"estimate": overall.estimate, "ci_low": overall.ci_low, "ci_high": overall.ci_high}
    out["krippendorff_alpha"] = alpha
    return out


def metrics(data: FocusGroups, coding: CoderAgreement, found: Topics) -> dict[str, dict[str, Any]]:
    """The run's metrics as ``{name: keyword arguments of Results.metric}`` (``value``, ``headline``, ``label``)."""
    o = coding.overall
    out: dict[str, dict[str, Any]] = {
        "n_sessions": {"value": data.sessions, "headline": True, "label": "sessions"},
        "n_speakers": {"value": data.speakers, "headline": True, "label": "speakers"},
        "theme_counts": {"value": {str(r.theme): int(r.speakers) for r in found.themes.itertuples()}},
        **{name: {"value": v} for name, v in agreement_metrics(coding.per_code, o).items()},
    }
    if o.estimate is not None:
        out["overall_alpha"] = {"value": {"estimate": o.estimate, "ci_low": o.ci_low, "ci_high": o.ci_high},
                                "headline": True, "label": "coder agreement (Krippendorff's alpha)"}
    out["cooccurrence_top_pairs"] = {"value": {f"{r['code A']} + {r['code B']}": int(r["turns"])
                                               for _, r in found.pairs.iterrows()}}
    return out


# ---------------------------------------------------------------------------------------------
# sentences: what the report says in words (each a display.say template with its values)


def _names(values: list[Any]) -> str:
    return ", ".join(map(plain, values))


def overview_notes(data: FocusGroups, grid: pd.DataFrame, folded_groups: list[str], min_group: int = 5) -> list[Note]:
    """Sessions, speakers and turns; a single session; empty turns; sessions a coder skipped; folded groups."""
    t = data.transcripts
    notes: list[Note] = [("**{sessions} session(s)**, {speakers} speakers, {turns:,} turns; {coders} coder(s), "
                          "{codes} codes in {themes} themes.",
                          {"sessions": data.sessions, "speakers": data.speakers, "turns": len(t), "coders": data.coders,
                           "codes": len(data.codebook), "themes": data.codebook["theme"].nunique()})]
    if data.sessions < 2:
        notes.append(("Only **one session**: everything below describes a single group discussion; it cannot show "
                      "whether views differ between groups.", {}))
    empty = int(t["text"].fillna("").astype(str).str.strip().eq("").sum())
    if empty:
        notes.append(("{n} turn(s) have no text: they keep their codes but are never quoted.", {"n": empty}))
    uncoded = uncoded_sessions(grid)
    if len(uncoded):
        pairs = ", ".join(f"{s} ({plain(c)})" for s, c in zip(uncoded["session_id"], uncoded["coder"], strict=True))
        notes.append(("In {n} session(s) a coder applied no code at all; those sessions count as *not coded* by that "
                      "coder (not as disagreement): {pairs}.", {"n": uncoded["session_id"].nunique(), "pairs": pairs}))
    if folded_groups:
        notes.append(("Speaker groups with fewer than {m} speakers are not shown on their own: together (when they "
                      "reach {m} speakers) they appear as *Other (small groups)*. Folded: {labels}.",
                      {"m": min_group, "labels": _names(folded_groups)}))
    return notes


def agreement_notes(coding: CoderAgreement, threshold: float = TENTATIVE_ALPHA) -> list[Note]:
    """Overall agreement in words, failed bootstrap replicates, codes below ``threshold`` and undefined ones."""
    o = coding.overall
    if o.ci_low is not None:
        notes: list[Note] = [("Overall agreement across all codes: Krippendorff's alpha **{a:.3f}** (95% bootstrap CI "
                              "over turns {lo:.3f} to {hi:.3f}, {n:,} turns coded by at least two coders).",
                              {"a": o.estimate, "lo": o.ci_low, "hi": o.ci_high, "n": o.turns})]
    elif o.estimate is not None:
        notes = [("Overall agreement across all codes: Krippendorff's alpha **{a:.3f}**, but no reliable interval: "
                  "{reason}. Claims about agreement are **not testable**.", {"a": o.estimate, "reason": o.reason})]
    else:
        notes = [("Overall agreement is **not estimable**: {reason}. Claims about agreement are **not testable**.",
                  {"reason": o.reason})]
    if o.failed:
        notes.append(("{k} of {n} bootstrap replicates had no variation (alpha undefined) and were left out of the "
                      "interval.", {"k": o.failed, "n": o.n_boot}))
    if coding.coders >= MIN_CODERS:
        if coding.weak:
            notes.append((f"Codes below {threshold}, to define more sharply before their counts are trusted: "
                          "**{codes}**.", {"codes": _names(coding.weak)}))
        elif len(coding.undefined) < len(coding.per_code):
            notes.append((f"Every code with a defined alpha reaches {threshold}.", {}))
        if coding.undefined:
            notes.append(("Agreement is undefined for **{codes}** (see the note).", {"codes": _names(coding.undefined)}))
    return notes


def topic_notes(found: Topics) -> list[Note]:
    """Codes raised by a single speaker and codes never raised."""
    notes: list[Note] = []
    if found.single_speaker:
        notes.append(("Raised by a single speaker only (not a theme): {codes}.", {"codes": _names(found.single_speaker)}))
    if found.never_raised:
        notes.append(("Never raised in an agreed turn: {codes}.", {"codes": _names(found.never_raised)}))
    return notes


def pair_notes(found: Topics) -> list[Note]:
    return [("No two codes were agreed on the same turn.", {})] if found.pairs.empty else []


def quote_notes(q: pd.DataFrame, min_group: int = 5) -> list[Note]:
    if not q.empty:
        return []
    return [("No quotable turn: no agreed turn with text comes from a speaker group of at least {m} speakers.",
             {"m": min_group})]


# ---------------------------------------------------------------------------------------------
# tables as the reader sees them: plain headers (codes stay as values; cx.table shows them by their labels)


def _drop_empty(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """Leave out a text column that is empty everywhere (e.g. a note column with nothing to say)."""
    if col in df and not df[col].fillna("").astype(str).str.strip().ne("").any():
        return df.drop(columns=col)
    return df


def agreement_table(per_code: pd.DataFrame) -> pd.DataFrame:
    """:func:`agreement` for the report: "applied by coder A", "Cohen's kappa", "Krippendorff's alpha"."""

    def coder(name: str) -> str:  # a registered label wins, else "coder A" for coder_a
        return plain(name) if name in LABELS or name in LABELS.user else coder_labels([name])[name]

    ren = {c: f"applied by {coder(c[len('applied by '):])}" for c in per_code.columns
           if str(c).startswith("applied by ")}
    ren.update({"kappa": "Cohen's kappa", "krippendorff_alpha": "Krippendorff's alpha",
                "disagreements": "turns coded differently"})
    return _drop_empty(per_code.rename(columns=ren), "note")


def frequency_table(freq: pd.DataFrame, codebook: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`code_frequencies` for the report: most-raised first (ties by code), the codebook's definition
    as "what it covers" when there is one, group columns as "speakers: customer"."""
    f = stable_sort(freq, "speakers", ascending=False, tie="code").reset_index(drop=True)
    if codebook is not None and "definition" in codebook:
        defs = codebook.set_index("code")["definition"]
        f.insert(2, "what it covers", [str(defs.get(c)) if filled(defs.get(c)) else "" for c in f["code"]])
        f = _drop_empty(f, "what it covers")
    ren = {c: f"speakers: {plain(c[len('speakers ('):-1])}" for c in f.columns
           if str(c).startswith("speakers (") and str(c).endswith(")")}
    ren.update({"speakers": "speakers (all)", "turns": "turns", "sessions": "sessions"})
    return f.rename(columns=ren)


def theme_table(themes: pd.DataFrame) -> pd.DataFrame:
    """:func:`theme_frequencies` for the report: most-raised first (ties by theme)."""
    t = stable_sort(themes, "speakers", ascending=False, tie="theme").reset_index(drop=True)
    return t[["theme", "speakers", "turns", "codes"]].rename(columns={"speakers": "distinct speakers"})


def pairs_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """:func:`top_pairs` for the report."""
    return pairs.rename(columns={"code A": "topic", "code B": "raised together with", "turns": "turns with both"})


def quotes_table(q: pd.DataFrame) -> pd.DataFrame:
    """:func:`quotes` for the report (the session is shown as it is: ids that look personal were pseudonymised
    on reading)."""
    return q.rename(columns={"quote": "what was said"})


# ---------------------------------------------------------------------------------------------
# figures: they draw what they are given, compute nothing, and return the axes


def plot_heatmap(co: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Code co-occurrence heatmap (:func:`cooccurrence`): how many turns carry both codes, one cell per pair.

    The matrix is symmetric, so only the lower triangle is drawn (no code with itself); every cell shows
    its count; codes are named by their labels (:func:`cxresearch.plots.label`, wrapped).
    """
    import seaborn as sns

    from cxresearch.plots import PAPER, SEQUENTIAL, labels

    n = len(co)
    if n < 2:
        ax = ax or plt.subplots(figsize=(5, 2))[1]
        ax.set_axis_off()
        ax.set_title("Which topics come up together: fewer than two codes")
        return ax
    m = co.iloc[1:, :-1].to_numpy().astype(float)  # rows 2..n, columns 1..n-1: the lower triangle
    mask = np.triu(np.ones_like(m, dtype=bool), k=1)
    size = max(5.0, 0.62 * (n - 1) + 2.6)
    ax = ax or plt.subplots(figsize=(size + 1.2, size))[1]
    annot_size = 10 if n <= 12 else 8 if n <= 20 else 0
    sns.heatmap(pd.DataFrame(m, index=labels(co.index[1:], 22), columns=labels(co.columns[:-1])), mask=mask,
                cmap=SEQUENTIAL, annot=annot_size > 0, fmt=".0f", annot_kws={"size": annot_size}, linewidths=0.6,
                linecolor=PAPER, square=True, vmin=0, cbar_kws={"label": "turns with both codes", "shrink": 0.7},
                ax=ax)
    ax.grid(False)
    ax.tick_params(axis="both", length=0, labelsize=10)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")  # one line each: never overlap
    plt.setp(ax.get_yticklabels(), rotation=0)
    ax.set_title("Which topics come up together\n(turns where the coders agreed on both)")
    return ax


def plot_themes(bars: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Distinct speakers per code, grouped and coloured by theme, in the order of ``bars`` (:func:`theme_bars`);
    the legend gives each theme's distinct speakers when known."""
    import seaborn as sns

    from cxresearch.plots import PALETTE, label

    totals = bars["theme speakers"]
    f = bars.assign(name=[label(c, 28) for c in bars["code"]],
                    group=[label(t, 24) + (f" ({int(n)} speakers)" if pd.notna(n) else "")
                           for t, n in zip(bars["theme"], totals, strict=True)])
    groups = list(dict.fromkeys(f["group"]))
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(groups))]
    ax = ax or plt.subplots(figsize=(8, 0.38 * len(f) + 1.6))[1]
    sns.barplot(data=f, y="name", x="speakers", hue="group", hue_order=groups, palette=colours, dodge=False,
                orient="h", ax=ax)
    for bar_container in ax.containers:
        ax.bar_label(bar_container, fmt="%d", padding=3, fontsize=9)
    ax.set_ylabel("")
    ax.set_xlabel("distinct speakers who raised it")
    ax.set_title("What participants talked about")
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.08)
    ax.legend(title="theme", loc="lower right", fontsize=9, title_fontsize=9, frameon=True, framealpha=0.9)
    return ax


# ---------------------------------------------------------------------------------------------
# figure descriptions (alt text): what each chart shows, in words, for readers who cannot see it


def themes_alt(freq: pd.DataFrame, themes: pd.DataFrame | None = None) -> str:
    """Alt text of :func:`plot_themes`."""
    if freq.empty:
        return "Bar chart of distinct speakers per code: no code was raised."
    f = stable_sort(freq, "speakers", ascending=False, tie="code")
    top, low = f.iloc[0], f.iloc[-1]
    text = (f"Bar chart of how many different speakers raised each code, grouped by theme. Most raised: "
            f"{plain(top['code'])} ({int(top['speakers'])} speakers); least: {plain(low['code'])} "
            f"({int(low['speakers'])}).")
    if themes is not None and len(themes):
        t = stable_sort(themes, "speakers", ascending=False, tie="theme")
        text += " Themes by speakers: " + ", ".join(f"{plain(r.theme)} {int(r.speakers)}" for r in t.itertuples()) + "."
    return text


def heatmap_alt(pairs: pd.DataFrame) -> str:
    """Alt text of :func:`plot_heatmap`, naming the three most frequent pairs (:func:`top_pairs`)."""
    text = "Heatmap of how many turns carry two codes together."
    if len(pairs):
        text += " Most frequent: " + "; ".join(f"{plain(r['code A'])} with {plain(r['code B'])} ({r['turns']} turns)"
                                               for _, r in pairs.head(3).iterrows()) + "."
    return text
