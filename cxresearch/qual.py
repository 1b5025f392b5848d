"""Focus groups and service audits: coded transcripts, coder agreement, safe quotes, audit compliance.

Interval methods: Wilson intervals for pass rates and shares (statsmodels); t intervals for mean scores;
Fisher-z intervals for correlations; percentile bootstrap over turns for overall coder agreement and over
audits for unit ranks.

Degenerate data never produces a NaN shown as a number: agreement with one coder, a code nobody applied
or a code applied everywhere (no variation) is reported as *not estimable* with the reason; bootstrap
replicates that cannot be computed are counted and reported; units and speaker groups smaller than
``min_group_size`` are folded into "Other (small groups)" (:func:`cxresearch.privacy.merge_small_groups`)
before anything per group is shown. Every ranking, top-k and ordering breaks ties by label
(:func:`cxresearch.stats.stable_sort`), so results are the same on every machine.

What a reader sees: codes, criteria and coders by their labels (the codebook's and criteria file's optional
``label`` column, "coder A" for ``coder_a``, else spelled out); tables with plain headers (``*_table``);
quotes with their language; figures in the :mod:`cxresearch.plots` style, each with a description
(``*_alt``) for its alt text.
"""

from __future__ import annotations

import math
import re
import unicodedata
from itertools import combinations
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from cxresearch.display import plain
from cxresearch.privacy import EMAIL, NAME_INTRO, OTHER, PHONE, merge_small_groups, scrub  # noqa: F401  (re-exported)
from cxresearch.stats import round_significant, stable_sort

MIN_CODERS = 2
TENTATIVE_ALPHA = 0.667  # Krippendorff: tentative conclusions from alpha >= 0.667, firm from 0.8
MAX_FAILED_BOOT = 0.05  # more undefined bootstrap replicates than this share: no interval is shown
DEFAULT_SCALE = (1.0, 5.0)  # scale criteria without a stated scale are scored 1..5
GRID_KEYS = ("session_id", "turn", "coder")

# ---------------------------------------------------------------------------------------------
# labels: what the reader sees instead of codes, criteria and coder names


def table_labels(table: pd.DataFrame, key: str, label_col: str = "label") -> dict[str, str]:
    """``{key: label}`` from a codebook's or criteria file's optional ``label`` column (rows with an empty
    label are left out, so :func:`cxresearch.display.plain` spells those names out: ``wait_time`` → "wait
    time")."""
    if label_col not in table or key not in table:
        return {}
    out = {}
    for k, v in zip(table[key], table[label_col], strict=True):
        if _filled(v) and _filled(k):
            out[str(k)] = str(v).strip()
    return out


_CODER = re.compile(r"(?i)^(coder|rater|annotator)[\s_.-]*([A-Za-z0-9]{1,3})$")


def coder_labels(coders: pd.Series | list) -> dict[str, str]:
    """Coder names as a reader writes them: ``coder_a`` → "coder A", ``rater_2`` → "rater 2"; other names
    are spelled out (:func:`cxresearch.display.plain`)."""
    out = {}
    for c in pd.unique(pd.Series(list(coders), dtype=object).dropna()):
        m = _CODER.match(str(c).strip())
        out[str(c)] = f"{m.group(1).lower()} {m.group(2).upper()}" if m else plain(c)
    return out


# ---------------------------------------------------------------------------------------------
# confidentiality


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
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or not str(value).strip():
        return "Participant"
    return str(value).strip().capitalize()


def fold_groups(groups: pd.Series, min_n: int = 5) -> tuple[pd.Series, list[str]]:
    """:func:`merge_small_groups`, and when even everything folded together stays below ``min_n`` the
    folded rows become missing (shown nowhere). Returns the recoded series and the folded labels."""
    recoded, folded = merge_small_groups(groups, min_n)
    if folded:
        mask = groups.notna() & groups.astype(str).isin(folded)
        if int(mask.sum()) < min_n:
            recoded = recoded.astype(object).where(~mask, None)
    return recoded, folded


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
# agreement


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two raters' labels on the same items (NaN when it is undefined: no variation)."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) == 0:
        return math.nan
    cats = np.union1d(a, b)
    po = np.mean(a == b)
    pe = sum(np.mean(a == c) * np.mean(b == c) for c in cats)
    return float((po - pe) / (1 - pe)) if pe < 1 else math.nan


def krippendorff_alpha(data: np.ndarray, level: str = "nominal") -> float:
    """Krippendorff's alpha for a raters × units matrix (NaN = missing), nominal/ordinal/interval/ratio.

    Built from the coincidence matrix as in Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability"
    (vectorised: o = Σ_u n_u n_uᵀ / (m_u − 1) minus the self-pairs). Returns NaN when alpha is undefined:
    fewer than two pairable values, or no variation at all (every value the same).
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    d = np.asarray(data, float)
    if d.ndim != 2 or d.size == 0:
        return math.nan
    mask = ~np.isnan(d)
    values = np.unique(d[mask])
    k = len(values)
    if k == 0:
        return math.nan
    idx = np.searchsorted(values, np.where(mask, d, values[0]))
    counts = np.zeros((d.shape[1], k))
    units = np.arange(d.shape[1])
    for r in range(d.shape[0]):
        np.add.at(counts, (units[mask[r]], idx[r][mask[r]]), 1)
    m = counts.sum(axis=1)
    c = counts[m >= 2]
    if len(c) == 0:
        return math.nan
    w = c / (m[m >= 2] - 1)[:, None]
    o = w.T @ c - np.diag(w.sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return math.nan
    if level == "nominal":
        delta = 1.0 - np.eye(k)
    elif level == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
    elif level == "ratio":
        s = values[:, None] + values[None, :]
        delta = np.where(s != 0, ((values[:, None] - values[None, :]) / np.where(s != 0, s, 1)) ** 2, 0.0)
    else:
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo, hi = np.minimum.outer(np.arange(k), np.arange(k)), np.maximum.outer(np.arange(k), np.arange(k))
        delta = (cum[hi + 1] - cum[lo] - (n_c[lo] + n_c[hi]) / 2) ** 2
    observed = np.sum(o * delta)
    expected = np.sum(np.outer(n_c, n_c) * delta) / (n - 1)
    return float(1 - observed / expected) if expected > 0 else math.nan


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
    """Per code: how often each coder applied it, Cohen's kappa (two coders) and Krippendorff's alpha.

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


def overall_agreement(grid: pd.DataFrame, codebook: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """Krippendorff's alpha (nominal) over all codes and turns, with a percentile bootstrap 95% CI over turns.

    Returns ``estimate``, ``ci_low``, ``ci_high`` (``None`` when not estimable), ``turns`` (turns coded by at
    least two coders), ``coders``, ``n_boot``, ``failed`` (replicates whose alpha is undefined because the
    resample has no variation; counted, left out of the interval and reported) and ``reason`` (why
    something is not estimable, else ``None``). With more than 5% failed replicates no interval is shown.
    """
    coders = sorted(grid["coder"].unique(), key=str)
    codes_ = list(codebook["code"])
    out: dict[str, Any] = {"estimate": None, "ci_low": None, "ci_high": None, "turns": 0, "coders": len(coders),
                           "n_boot": int(n_boot), "failed": 0, "reason": None}
    if len(coders) < MIN_CODERS:
        out["reason"] = (f"only one coder ({coders[0]}) coded the transcripts: agreement needs at least two "
                         "coders coding the same turns")
        return out
    per_code = np.stack([_wide(grid, code, coders).to_numpy().T for code in codes_])  # codes x coders x turns
    pairable = (~np.isnan(per_code[0])).sum(axis=0) >= 2
    per_code = per_code[:, :, pairable]
    n = per_code.shape[2]
    out["turns"] = int(n)
    if n == 0:
        out["reason"] = "no turn was coded by two coders"
        return out
    alpha = krippendorff_alpha(np.concatenate(list(per_code), axis=1), "nominal")
    if not math.isfinite(alpha):
        out["reason"] = ("no code varies across turns (each is applied everywhere or nowhere): alpha is undefined "
                         "without variation")
        return out
    out["estimate"] = alpha
    rng = np.random.default_rng(seed)
    draws = np.array([krippendorff_alpha(np.concatenate(list(per_code[:, :, rng.integers(0, n, n)]), axis=1),
                                         "nominal") for _ in range(int(n_boot))])
    ok = draws[np.isfinite(draws)]
    out["failed"] = int(len(draws) - len(ok))
    if len(ok) < 2 or out["failed"] > MAX_FAILED_BOOT * len(draws):
        out["reason"] = (f"{out['failed']} of {len(draws)} bootstrap replicates had no variation (alpha undefined), "
                         "so the interval would not be reliable")
        return out
    lo, hi = (float(x) for x in np.quantile(ok, [0.025, 0.975]))
    if not lo - 1e-12 <= alpha <= hi + 1e-12:
        out["reason"] = "the bootstrap interval does not contain the estimate (too few coded turns for a bootstrap)"
        return out
    out["ci_low"], out["ci_high"] = lo, hi
    return out


def coding_claim(overall: dict[str, Any], threshold: float = TENTATIVE_ALPHA) -> dict[str, Any]:
    """The pieces of the claim "the coders agree well enough" for :meth:`Results.claim` (``**pieces``)."""
    from cxresearch.results import verdict

    test = (f"Krippendorff's alpha over all codes and turns (nominal), bootstrap 95% CI over turns, compared with "
            f"{threshold}")
    if overall["failed"]:
        test += f"; {overall['failed']} of {overall['n_boot']} replicates undefined (no variation) and left out"
    lo, hi = overall["ci_low"], overall["ci_high"]
    testable = lo is not None and hi is not None
    if not testable:
        test += f" (not testable: {overall['reason']})"
    return {"id": "coding_is_reliable", "claim": "The coders agree well enough to draw tentative conclusions",
            "test": test, "estimate": overall["estimate"] if testable else None, "ci_low": lo, "ci_high": hi,
            "p_value": None, "verdict": verdict(lo, hi, null=threshold) if testable else "not testable",
            "n": int(overall["turns"]), "note": None if testable else f"not testable: {overall['reason']}",
            "unit": "", "meaning": (f"Krippendorff's alpha: 1 = the coders always agree, 0 = no better than chance; "
                                    f"{threshold} is the minimum for tentative conclusions, 0.8 for firm ones")}


def agreement_metrics(agree: pd.DataFrame, overall: dict[str, Any]) -> dict[str, Any]:
    """Metric values: defined per-code alphas and kappas only (undefined ones are omitted, never NaN)."""
    out: dict[str, Any] = {}
    if "kappa" in agree:
        out["kappa"] = {r.code: float(r.kappa) for r in agree.itertuples() if math.isfinite(r.kappa)}
    alpha = {r.code: float(r.krippendorff_alpha) for r in agree.itertuples() if math.isfinite(r.krippendorff_alpha)}
    if overall["ci_low"] is not None:
        alpha["overall"] = {"estimate": overall["estimate"], "ci_low": overall["ci_low"], "ci_high": overall["ci_high"]}
    out["krippendorff_alpha"] = alpha
    return out


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
    names = [n for n in transcripts["speaker"].dropna().astype(str).unique()]
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
# audits


def primary_scores(audits: pd.DataFrame) -> pd.DataFrame:
    """One score per audit and criterion: the first auditor's (double-scored audits are for consistency)."""
    keys = ["audit_id", "criterion", *(["auditor"] if "auditor" in audits else [])]
    return audits.sort_values(keys, key=_text_key, kind="mergesort").drop_duplicates(
        ["audit_id", "criterion"])


def _text_key(s: pd.Series) -> pd.Series:
    """Sort key: labels as text, missing last."""
    return s.astype(object).where(s.notna(), "\uffff").astype(str)


def criterion_scales(criteria: pd.DataFrame) -> pd.DataFrame:
    """Lowest and highest possible score per criterion: 0/1 for binary; for scales the criteria file's
    ``scale_min``/``scale_max`` columns, else its ``scale`` text ("1-5", "0–10"), else 1–5."""
    out = criteria[["criterion", "kind"]].copy()
    lo, hi = [], []
    for r in criteria.itertuples(index=False):
        a, b = (0.0, 1.0) if r.kind == "binary" else _scale_bounds(r._asdict())
        lo.append(a)
        hi.append(b)
    out["scale_min"], out["scale_max"] = lo, hi
    return out


_SCALE = re.compile(r"^\s*(-?\d+(?:[.,]\d+)?)\s*(?:-|–|—|\.\.|to)\s*(-?\d+(?:[.,]\d+)?)\s*$")


def _scale_bounds(row: dict[str, Any]) -> tuple[float, float]:
    """(min, max) of a scale criterion; NaN when the criteria file's scale cannot be read."""
    if _filled(row.get("scale_min")) and _filled(row.get("scale_max")):
        try:
            return float(row["scale_min"]), float(row["scale_max"])
        except (TypeError, ValueError):
            return math.nan, math.nan
    if _filled(row.get("scale")):
        m = _SCALE.match(str(row["scale"]))
        if not m:
            return math.nan, math.nan
        return float(m.group(1).replace(",", ".")), float(m.group(2).replace(",", "."))
    return DEFAULT_SCALE


def _filled(v: Any) -> bool:
    return v is not None and v is not pd.NA and not (isinstance(v, float) and math.isnan(v)) and str(v).strip() != ""


def criterion_pass_rates(scores: pd.DataFrame, criteria: pd.DataFrame, min_n: int = 1) -> pd.DataFrame:
    """Binary criteria: pass rate with Wilson 95% CI; scale criteria: mean with t interval.

    A criterion with fewer than ``min_n`` audits (or none) has no estimate (empty cells, ``note`` says
    why); a scale mean from one audit has no interval.
    """
    rows = []
    for r in criteria.itertuples(index=False):
        s = scores.loc[scores["criterion"] == r.criterion, "score"].astype(float)
        row = {"criterion": r.criterion, "kind": r.kind, "must_have": bool(r.must_have), "audits": len(s),
               "estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "note": ""}
        if len(s) == 0:
            row["note"] = "not audited"
        elif len(s) < min_n:
            row["note"] = f"fewer than {min_n} audits: not shown"
        elif r.kind == "binary":
            lo, hi = proportion_confint(s.sum(), len(s), method="wilson")
            row.update(estimate=float(s.mean()), ci_low=float(lo), ci_high=float(hi))
        else:
            row["estimate"] = float(s.mean())
            if len(s) >= 2:
                half = stats.t.ppf(0.975, len(s) - 1) * s.std(ddof=1) / math.sqrt(len(s))
                row.update(ci_low=float(s.mean() - half), ci_high=float(s.mean() + half))
            else:
                row["note"] = "one audit: no interval"
        rows.append(row)
    return pd.DataFrame(rows)


def rate_metrics(rates: pd.DataFrame, kind: str) -> dict[str, Any]:
    """``{criterion: interval}`` for criteria of one kind that have an estimate (never NaN)."""
    out = {}
    for r in rates[rates["kind"] == kind].itertuples():
        if math.isfinite(r.estimate):
            out[r.criterion] = {"estimate": r.estimate, "ci_low": _none(r.ci_low), "ci_high": _none(r.ci_high)}
    return out


def _none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def audit_scores(scores: pd.DataFrame, criteria: pd.DataFrame, scale_max: float | None = None) -> pd.DataFrame:
    """Weighted total score per audit (0–100): binary 0/1, scales rescaled from their range to 0..1.

    Each scale criterion uses its own range (:func:`criterion_scales`); ``scale_max`` (with minimum 1)
    overrides it for every scale criterion. Audits whose criteria all weigh 0 get no score and are left
    out (``.attrs["unscored"]`` counts them).
    """
    scales = criterion_scales(criteria).set_index("criterion")
    if scale_max is not None:
        scales.loc[scales["kind"] == "scale", ["scale_min", "scale_max"]] = (1.0, float(scale_max))
    c = criteria.set_index("criterion")[["weight"]].join(scales[["scale_min", "scale_max"]])
    s = scores.join(c, on="criterion")
    s["value"] = (s["score"].astype(float) - s["scale_min"]) / (s["scale_max"] - s["scale_min"])
    weight = s.groupby("audit_id")["weight"].sum()
    total = (s["value"] * s["weight"]).groupby(s["audit_id"]).sum() / weight.where(weight > 0)
    meta = scores.drop_duplicates("audit_id").set_index("audit_id")[["unit", "date"]]
    out = meta.join((100 * total).rename("score")).reset_index()
    unscored = int(out["score"].isna().sum())
    out = out[out["score"].notna()].reset_index(drop=True)
    out.attrs["unscored"] = unscored
    return out


def full_compliance(scores: pd.DataFrame, criteria: pd.DataFrame, min_n: int = 1) -> dict[str, Any]:
    """Share of audits that pass every must-have criterion (Wilson 95% CI).

    Only audits scored on every must-have criterion that was audited at all count; the others are left
    out and counted in ``incomplete``. ``must_have`` lists the criteria checked. With no must-have
    criterion, or fewer than ``min_n`` complete audits, the share is not estimable (``estimate`` None,
    ``reason`` says why).
    """
    must = sorted(set(criteria.loc[criteria["must_have"].astype(bool), "criterion"]) & set(scores["criterion"]), key=str)
    out: dict[str, Any] = {"estimate": None, "ci_low": None, "ci_high": None, "audits": 0, "incomplete": 0,
                           "must_have": must, "reason": None}
    if not must:
        out["reason"] = "no must-have criterion was audited"
        return out
    sub = scores[scores["criterion"].isin(must)]
    n_scored = sub.groupby("audit_id")["criterion"].nunique()
    complete = n_scored.index[n_scored == len(must)]
    out["incomplete"] = int(scores["audit_id"].nunique() - len(complete))
    per_audit = sub[sub["audit_id"].isin(complete)].groupby("audit_id")["score"].min()
    k, n = int((per_audit >= 1).sum()), len(per_audit)
    out["audits"] = n
    if n == 0:
        out["reason"] = "no audit was scored on every must-have criterion"
        return out
    if n < min_n:
        out["reason"] = f"fewer than {min_n} audits were scored on every must-have criterion"
        return out
    lo, hi = proportion_confint(k, n, method="wilson")
    out.update(estimate=k / n, ci_low=float(lo), ci_high=float(hi))
    return out


def compliance_claim(full: dict[str, Any], low: float = 0.10, high: float = 0.20,
                     truth: float | None = None) -> dict[str, Any]:
    """The pieces of the essays' "only 10–20% get the intended service" claim for :meth:`Results.claim`.

    The estimate is a share (unit "share": shown as %); ``truth`` is the planted share as auditors score it
    when the data are synthetic (``truth["audits"]["share_full_compliance_observed"]``).
    """
    from cxresearch.results import verdict

    lo, hi = full["ci_low"], full["ci_high"]
    testable = full["estimate"] is not None
    test = (f"share of audited contacts passing every must-have criterion, Wilson 95% CI; supported when inside "
            f"{100 * low:g}–{100 * high:g}%" + ("" if testable else f" (not testable: {full['reason']})"))
    return {"id": "only_10_20_percent_get_intended_service",
            "claim": "Without a deliberate system, only 10–20% of customers receive the intended service",
            "test": test,
            "estimate": full["estimate"], "ci_low": lo, "ci_high": hi, "p_value": None,
            "verdict": verdict(lo, hi, within=(low, high)) if testable else "not testable", "n": int(full["audits"]),
            "note": None if testable else f"not testable: {full['reason']}", "unit": "share", "truth": truth}


def fold_small_units(audit_table: pd.DataFrame, min_n: int = 5) -> tuple[pd.DataFrame, list[str]]:
    """Units with fewer than ``min_n`` audits folded into "Other (small groups)" (itself at least ``min_n``;
    when all small units together stay below ``min_n`` their audits are left out of per-unit results)."""
    recoded, folded = fold_groups(audit_table["unit"], min_n)
    out = audit_table.assign(unit=recoded)
    return out[out["unit"].notna()].reset_index(drop=True), folded


def unit_ranking(audit_table: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean score per unit with a t interval, and a bootstrap 95% interval of its rank (1 = best).

    Means are compared at 9 significant digits (ties share the average rank) and the table is sorted by
    rank, then unit label. A row "Other (small groups)" (see :func:`fold_small_units`) is shown but not
    ranked. A unit with one audit has no interval.
    """
    g = audit_table.groupby("unit")["score"]
    out = g.agg(["mean", "std", "size"]).rename(columns={"size": "audits"})
    half = stats.t.ppf(0.975, (out["audits"] - 1).clip(lower=1)) * out["std"] / np.sqrt(out["audits"])
    half = half.where(out["audits"] >= 2)
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    units = sorted((u for u in out.index if not str(u).startswith(OTHER)), key=str)
    out["rank"] = out["rank_low"] = out["rank_high"] = math.nan
    if units:
        groups = {u: g.get_group(u).to_numpy(dtype=float) for u in units}
        rng = np.random.default_rng(seed)
        ranks = np.empty((int(n_boot), len(units)))
        for b in range(int(n_boot)):
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


def unit_metrics(ranking: pd.DataFrame) -> dict[str, Any]:
    """``{unit: interval}`` of unit mean scores (no interval for one-audit units; never NaN)."""
    return {str(r.unit): {"estimate": float(r.mean), "ci_low": _none(r.ci_low), "ci_high": _none(r.ci_high)}
            for r in ranking.itertuples()}


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


def auditor_agreement(audits: pd.DataFrame) -> pd.DataFrame:
    """On double-scored audits: agreement on binary criteria (Krippendorff nominal) and scale (ICC, alpha interval).

    Empty when no audit was scored by two auditors (agreement not testable). Undefined values (no variation,
    fewer than two pairs) are left empty with the reason in ``note``.
    """
    cols = ["criteria", "pairs", "krippendorff_alpha", "icc_2_1", "exact agreement", "note"]
    if "auditor" not in audits:
        return pd.DataFrame(columns=cols)
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
        wide = sub.pivot_table(index=["audit_id", "criterion"], columns="slot", values="score")
        x = wide.dropna().to_numpy()
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
    return pd.DataFrame(rows, columns=cols)


def auditor_metrics(consistency: pd.DataFrame) -> dict[str, Any]:
    """``{kind: {krippendorff_alpha, icc_2_1}}`` with only the defined values."""
    out = {}
    for r in consistency.itertuples():
        vals = {k: float(v) for k, v in (("krippendorff_alpha", r.krippendorff_alpha), ("icc_2_1", r.icc_2_1))
                if v is not None and math.isfinite(v)}
        if vals:
            out[r.criteria] = vals
    return out


def correlation(x: np.ndarray, y: np.ndarray, method: str = "spearman") -> dict[str, Any]:
    """Correlation with a Fisher-z 95% interval (estimate and interval ``None`` when not estimable:
    fewer than 4 pairs or a constant variable)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    out: dict[str, Any] = {"estimate": None, "ci_low": None, "ci_high": None, "p_value": None, "n": n, "reason": None}
    if n < 4:
        out["reason"] = f"{n} units: a correlation needs at least 4"
        return out
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        out["reason"] = "one of the two variables is the same for every unit"
        return out
    r, p = (stats.spearmanr if method == "spearman" else stats.pearsonr)(x, y)
    if not math.isfinite(r):
        out["reason"] = "the correlation is undefined"
        return out
    rc = float(np.clip(r, -1 + 1e-12, 1 - 1e-12))
    z, se = np.arctanh(rc), 1 / math.sqrt(n - 3)
    out.update(estimate=float(r), ci_low=float(min(np.tanh(z - 1.959964 * se), r)),
               ci_high=float(max(np.tanh(z + 1.959964 * se), r)), p_value=float(p))
    return out


def churn_link(ranking: pd.DataFrame, by_unit: pd.DataFrame | None, min_n: int = 5) -> tuple[pd.DataFrame, dict]:
    """Ranked units' mean audit score joined with their churn (:func:`churn_by_unit`), and the Spearman link.

    Not estimable (``estimate`` None, ``reason`` says why) without a customer table with units, or with
    fewer than ``max(min_n, 4)`` units that have both enough audits and enough customers.
    """
    empty = pd.DataFrame(columns=["mean", "customers", "left"])
    if by_unit is None:
        return empty, {"estimate": None, "ci_low": None, "ci_high": None, "p_value": None, "n": 0,
                       "reason": "no customer table with the customers' unit was given"}
    ranked = ranking[ranking["rank"].notna()].set_index("unit")[["mean"]]
    joined = ranked.join(by_unit, how="inner")
    need = max(int(min_n), 4)
    if len(joined) < need:
        return joined, {"estimate": None, "ci_low": None, "ci_high": None, "p_value": None, "n": len(joined),
                        "reason": f"{len(joined)} unit(s) have both at least {min_n} audits and at least {min_n} "
                                  f"customers; the link needs at least {need}"}
    return joined, correlation(joined["mean"].to_numpy(), joined["left"].to_numpy())


def churn_link_claim(link: dict[str, Any]) -> dict[str, Any]:
    """The pieces of the claim "units with better audits keep their customers" for :meth:`Results.claim`."""
    from cxresearch.results import verdict

    testable = link["estimate"] is not None
    return {"id": "better_audited_units_keep_customers", "claim": "Units with better audits keep their customers longer",
            "test": "Spearman correlation of unit audit score and share of the unit's customers who left, Fisher-z CI"
                    + ("" if testable else f" (not testable: {link['reason']})"),
            "estimate": link["estimate"], "ci_low": link["ci_low"], "ci_high": link["ci_high"],
            "p_value": link["p_value"],
            "verdict": verdict(link["ci_low"], link["ci_high"], direction=-1) if testable else "not testable",
            "n": int(link["n"]), "note": None if testable else f"not testable: {link['reason']}", "unit": "",
            "meaning": "A rank correlation from −1 to 1. Negative: units with better audits lose a smaller share of "
                       "their customers (the claim holds); 0: no link; positive: they lose more"}


def churn_by_unit(customers: pd.DataFrame, unit_col: str, min_n: int = 5) -> pd.DataFrame:
    """Customers and the share who left per unit (units with fewer than ``min_n`` customers left out).

    Empty when the customer table has no ``churn_date`` column.
    """
    if "churn_date" not in customers or unit_col not in customers:
        return pd.DataFrame(columns=["customers", "left"])
    g = customers.groupby(unit_col).agg(customers=("customer_id", "size"),
                                        left=("churn_date", lambda s: float(s.notna().mean())))
    return g[g["customers"] >= min_n]


def monthly_trend(audit_table: pd.DataFrame, min_n: int = 1) -> pd.DataFrame:
    """Mean audit score per month with a t interval (no interval for a month with one audit).

    Months with fewer than ``min_n`` audits are left out (``.attrs["omitted"]`` counts them).
    """
    m = audit_table.assign(month=pd.to_datetime(audit_table["date"]).dt.to_period("M").astype(str))
    g = m.groupby("month")["score"].agg(["mean", "std", "size"]).rename(columns={"size": "audits"})
    omitted = int((g["audits"] < min_n).sum())
    g = g[g["audits"] >= min_n]
    half = stats.t.ppf(0.975, (g["audits"] - 1).clip(lower=1)) * g["std"] / np.sqrt(g["audits"])
    g["ci_low"], g["ci_high"] = g["mean"] - half, g["mean"] + half
    out = g.drop(columns="std").reset_index()
    out.attrs["omitted"] = omitted
    return out


# ---------------------------------------------------------------------------------------------
# tables as the reader sees them: plain headers (codes, criteria and units stay as values; cx.table shows
# them by their labels)


def _drop_empty(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """Leave out a text column that is empty everywhere (e.g. a note column with nothing to say)."""
    if col in df and not df[col].fillna("").astype(str).str.strip().ne("").any():
        return df.drop(columns=col)
    return df


def agreement_table(agree: pd.DataFrame) -> pd.DataFrame:
    """:func:`agreement` for the report: "applied by coder A", "Cohen's kappa", "Krippendorff's alpha"."""
    from cxresearch.display import LABELS

    def coder(name: str) -> str:  # a registered label wins, else "coder A" for coder_a
        return plain(name) if name in LABELS else coder_labels([name])[name]

    ren = {c: f"applied by {coder(c[len('applied by '):])}" for c in agree.columns if str(c).startswith("applied by ")}
    ren.update({"kappa": "Cohen's kappa", "krippendorff_alpha": "Krippendorff's alpha",
                "disagreements": "turns coded differently"})
    return _drop_empty(agree.rename(columns=ren), "note")


def frequency_table(freq: pd.DataFrame, codebook: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`code_frequencies` for the report: most-raised first (ties by code), the codebook's definition
    as "what it covers" when there is one, group columns as "speakers: customer"."""
    f = stable_sort(freq, "speakers", ascending=False, tie="code").reset_index(drop=True)
    if codebook is not None and "definition" in codebook:
        defs = codebook.set_index("code")["definition"]
        f.insert(2, "what it covers", [str(defs.get(c)) if _filled(defs.get(c)) else "" for c in f["code"]])
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


AUDIT_KINDS = {"binary": "pass/fail criteria", "scale": "scored criteria"}


def auditor_table(consistency: pd.DataFrame) -> pd.DataFrame:
    """:func:`auditor_agreement` for the report ("exact agreement" is a share: show it as percent)."""
    c = consistency.assign(criteria=consistency["criteria"].map(lambda k: AUDIT_KINDS.get(k, k)))
    c = c.rename(columns={"pairs": "scored twice", "krippendorff_alpha": "Krippendorff's alpha", "icc_2_1": "ICC(2,1)"})
    if "ICC(2,1)" in c and not c["ICC(2,1)"].notna().any():
        c = c.drop(columns="ICC(2,1)")
    return _drop_empty(c, "note")


# ---------------------------------------------------------------------------------------------
# plots


def _percent_axis(axis, xmax: float = 100) -> None:
    """Ticks at round steps (1, 2, 5, 10, ... never 2.5) written as whole percents."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    axis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 5, 10]))
    axis.set_major_formatter(PercentFormatter(xmax, decimals=0))


def plot_heatmap(co: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Code co-occurrence heatmap: how many turns carry both codes (agreed codes), one cell per pair.

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


def plot_themes(freq: pd.DataFrame, ax: plt.Axes | None = None, themes: pd.DataFrame | None = None) -> plt.Axes:
    """Distinct speakers per code, grouped and coloured by theme (themes and codes most-raised first).

    With ``themes`` (:func:`theme_frequencies`) the legend gives each theme's distinct speakers too.
    """
    import seaborn as sns

    from cxresearch.plots import PALETTE, label

    f = freq.assign(theme=freq["theme"].astype(str), code=freq["code"].astype(str))
    if themes is not None and len(themes):
        order = stable_sort(themes.assign(theme=themes["theme"].astype(str)), "speakers", ascending=False,
                            tie="theme")["theme"].tolist()
        totals = dict(zip(themes["theme"].astype(str), themes["speakers"], strict=True))
    else:
        top = f.groupby("theme")["speakers"].max().rename("speakers").reset_index()
        order, totals = stable_sort(top, "speakers", ascending=False, tie="theme")["theme"].tolist(), {}
    order += sorted(set(f["theme"]) - set(order))
    rank = {t: i for i, t in enumerate(order)}
    f = stable_sort(f.assign(_t=f["theme"].map(rank)), ["_t", "speakers"], ascending=[True, False], tie="code")
    f = f.assign(name=[label(c, 28) for c in f["code"]],
                 group=[label(t, 24) + (f" ({totals[t]} speakers)" if t in totals else "") for t in f["theme"]])
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


def plot_pass_rates(rates: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Pass rate of each pass/fail criterion with its 95% CI, in the order of :func:`pass_rate_table`
    (must-have first, lowest first), must-have criteria in the accent colour."""
    from matplotlib.lines import Line2D

    from cxresearch.plots import ACCENT, MAIN, labels

    b = pass_rate_table(rates)
    b = b[b["pass rate"].notna()].reset_index(drop=True)
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
    """Unit scores with 95% intervals, best first (ties by unit); units the data single out in colour.

    ``ranking`` is :func:`separable` output (without its columns every unit is drawn alike).
    """
    from matplotlib.lines import Line2D

    from cxresearch.plots import ACCENT, MAIN, PALETTE, labels

    r = stable_sort(ranking, "mean", ascending=False, tie="unit").reset_index(drop=True)
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
    """Each unit's average audit score against the share of its customers who left (:func:`churn_link`),
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


def heatmap_alt(co: pd.DataFrame) -> str:
    """Alt text of :func:`plot_heatmap`."""
    pairs = top_pairs(co, 3)
    text = "Heatmap of how many turns carry two codes together."
    if len(pairs):
        text += " Most frequent: " + "; ".join(f"{plain(r['code A'])} with {plain(r['code B'])} ({r['turns']} turns)"
                                               for _, r in pairs.iterrows()) + "."
    return text


def pass_rates_alt(rates: pd.DataFrame) -> str:
    """Alt text of :func:`plot_pass_rates`."""
    b = rates[(rates["kind"] == "binary") & rates["estimate"].notna()]
    if b.empty:
        return "Dot chart of pass rates: no pass/fail criterion has an estimate."
    b = stable_sort(b, "estimate", tie="criterion")
    lo, hi = b.iloc[0], b.iloc[-1]
    return (f"Dot chart of the share of audits that passed each pass/fail criterion, with 95% intervals. Lowest: "
            f"{plain(lo['criterion'])} {_pct(100 * lo['estimate'])}; highest: {plain(hi['criterion'])} "
            f"{_pct(100 * hi['estimate'])}.")


def ranking_alt(ranking: pd.DataFrame) -> str:
    """Alt text of :func:`plot_ranking`."""
    r = stable_sort(ranking, "mean", ascending=False, tie="unit")
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


def churn_link_alt(joined: pd.DataFrame, link: dict[str, Any]) -> str:
    """Alt text of :func:`plot_churn_link`."""
    text = (f"Scatter plot of {len(joined)} units: average audit score (across) against the share of the unit's "
            "customers who left (up).")
    if link.get("estimate") is not None:
        text += f" Spearman correlation {link['estimate']:.2f}"
        text += (": units with better audits lost fewer customers." if link["estimate"] < 0 else
                 ": units with better audits did not lose fewer customers.")
    return text


# ---------------------------------------------------------------------------------------------
# inputs


def _contracts():
    from cxresearch import contracts
    from cxresearch.io import Column, Contract

    codes = Contract("fg_codes", (Column("session_id", "string"), Column("turn", "int", min=1),
                                  Column("coder", "string"), Column("code", "string")),
                     key=("session_id", "turn", "coder", "code"))
    label = Column("label", "string", required=False, nullable=True,
                   description="optional: the name a reader sees (empty: the name spelled out)")
    codebook = Contract("fg_codebook", (Column("code", "string"), Column("theme", "string"),
                                        Column("definition", "string", required=False, nullable=True), label),
                        key=("code",))
    criteria = Contract("audit_criteria", (Column("criterion", "string"), Column("kind", "string", allowed=("binary", "scale")),
                                           Column("weight", "float", min=0), Column("must_have", "bool"), label),
                        key=("criterion",))
    return contracts.FG_TRANSCRIPTS, codes, codebook, contracts.AUDITS, criteria, contracts.CUSTOMERS


def _offset(path: Path) -> int:
    """Row number of a table's first data row as the file shows it (the header is row 1 in CSV/Excel)."""
    return 0 if Path(path).suffix.lower() in (".parquet", ".pq") else 2


def _where(mask: pd.Series, df: pd.DataFrame, col: str | None, offset: int, limit: int = 5) -> str:
    """``row 3: 'x'; row 7: 'y' (and 4 more)`` for the flagged rows of ``df``."""
    idx = np.flatnonzero(np.asarray(mask, bool))
    parts = []
    for i in idx[:limit]:
        v = "" if col is None else df[col].iloc[i]
        v = v.item() if isinstance(v, np.generic) else v
        parts.append(f"row {i + offset}" + ("" if col is None else f": {v!r}"))
    return "; ".join(parts) + (f" (and {len(idx) - limit} more)" if len(idx) > limit else "")


def load_focus_groups(transcripts_path: str | None, codes_path: str | None, codebook_path: str | None, *,
                      seed: int = 20240101, n_customers: int = 5000, effects: dict | None = None):
    """Transcripts, coded segments and codebook (the synthetic world's when no path is given).

    The codebook may carry a ``label`` column: the name a reader sees for each code (see
    :func:`table_labels`; codes without one are spelled out, ``wait_time`` → "wait time").

    Codes must exist in the codebook and point at existing turns, and code names must not clash with the
    key columns; otherwise one clear error that names the file, column, rows and fix.
    """
    from cxresearch.io import InputError, read_table
    from cxresearch.synth import resolve_inputs

    tr_c, codes_c, book_c, *_ = _contracts()
    paths, synthetic, truth = resolve_inputs({"fg_transcripts": transcripts_path, "fg_codes": codes_path,
                                              "fg_codebook": codebook_path}, seed, n_customers, effects)
    missing = [k for k in ("fg_transcripts", "fg_codes", "fg_codebook") if k not in paths]
    if missing:
        raise InputError("'focus groups'", [f"{m} is needed (transcripts_path, codes_path and codebook_path go "
                                            "together). Fix: give all three." for m in missing])
    transcripts = read_table(paths["fg_transcripts"], tr_c)
    codes = read_table(paths["fg_codes"], codes_c)
    codebook = read_table(paths["fg_codebook"], book_c)
    reserved = codebook["code"].isin([*GRID_KEYS, "speaker", "role", "segment", "text"])
    if reserved.any():
        raise InputError(f"'fg_codebook' ({paths['fg_codebook']})", [
            f"column 'code': {int(reserved.sum())} code(s) use a reserved column name: "
            f"{_where(reserved, codebook, 'code', _offset(paths['fg_codebook']))}. Fix: rename those codes "
            "(e.g. add a prefix) in the codebook and the codes file."])
    problems = []
    off = _offset(paths["fg_codes"])
    unknown = ~codes["code"].isin(set(codebook["code"]))
    if unknown.any():
        names = sorted(set(codes.loc[unknown, "code"]), key=str)
        problems.append(f"column 'code': {int(unknown.sum())} row(s) use codes that are not in the codebook "
                        f"({names[:5]}): {_where(unknown, codes, 'code', off)}. Fix: add them to the codebook or "
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
        raise InputError(f"'fg_codes' ({paths['fg_codes']})", problems)
    transcripts, codes = _hide_personal_sessions(transcripts, codes)
    return transcripts, codes, codebook, synthetic, truth


def _hide_personal_sessions(transcripts: pd.DataFrame, codes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Session ids that look like personal data (a moderator's name, an e-mail) become pseudonyms in both tables."""
    from cxresearch.io import LEDGER
    from cxresearch.privacy import pseudonymise_labels

    sessions = pd.Series(sorted(set(transcripts["session_id"]) | set(codes["session_id"]), key=str), dtype=object)
    renamed, hidden = pseudonymise_labels(sessions, prefix="session")
    if not hidden:
        return transcripts, codes
    mapping = dict(zip(sessions, renamed, strict=True))
    LEDGER.note(f"{hidden} session id(s) looked like personal data (a name, e-mail or phone number) and are shown "
                "as pseudonyms.")
    return (transcripts.assign(session_id=transcripts["session_id"].map(mapping)),
            codes.assign(session_id=codes["session_id"].map(mapping)))


def load_audits(audits_path: str | None, criteria_path: str | None, customers_path: str | None = None, *,
                seed: int = 20240101, n_customers: int = 5000, effects: dict | None = None):
    """Audit scores, criteria with weights, and (optionally) customers with their unit for churn by unit.

    The criteria file may carry a ``label`` column (the name a reader sees, see :func:`table_labels`).

    Refused with one message naming the file, column, rows and fix: criteria missing from the criteria
    file, an audit whose kind differs from its criterion's, binary scores other than 0/1, scale scores
    outside the criterion's scale, an audit with more than one unit or date, criteria whose weights are
    all 0, an unreadable scale, and must-have criteria that are not pass/fail. Negative weights are
    refused by the criteria contract.
    """
    from cxresearch.io import InputError, read_table
    from cxresearch.synth import resolve_inputs

    *_, audit_c, crit_c, cust_c = _contracts()
    names = {"audits": audits_path, "audit_criteria": criteria_path}
    if audits_path is None or customers_path:
        names["customers"] = customers_path
    paths, synthetic, truth = resolve_inputs(names, seed, n_customers, effects)
    if "audits" not in paths or "audit_criteria" not in paths:
        raise InputError("'audits'", ["audits_path and criteria_path go together. Fix: give both."])
    audits = read_table(paths["audits"], audit_c)
    criteria = read_table(paths["audit_criteria"], crit_c)
    crit_src = f"'audit_criteria' ({paths['audit_criteria']})"
    coff = _offset(paths["audit_criteria"])
    problems = []
    if not (criteria["weight"] > 0).any():
        problems.append("column 'weight': every weight is 0, so no audit can be scored. Fix: give the criteria "
                        "positive weights.")
    scales = criterion_scales(criteria)
    bad_scale = (criteria["kind"] == "scale") & ~(scales["scale_min"] < scales["scale_max"])
    if bad_scale.any():
        col = "scale" if "scale" in criteria else "scale_min"
        problems.append(f"column '{col}': {int(bad_scale.sum())} scale criteria have no readable range with minimum "
                        f"below maximum: {_where(bad_scale, criteria, col, coff)}. Fix: write the range as "
                        "'1-5' (or fill scale_min and scale_max).")
    must_scale = criteria["must_have"].astype(bool) & (criteria["kind"] == "scale")
    if must_scale.any():
        problems.append(f"column 'must_have': {int(must_scale.sum())} must-have criteria are scales, but passing a "
                        f"must-have is pass/fail: {_where(must_scale, criteria, 'criterion', coff)}. Fix: score them "
                        "pass/fail (kind binary) or set must_have to no.")
    if problems:
        raise InputError(crit_src, problems)

    off = _offset(paths["audits"])
    problems = []
    known = criteria.set_index("criterion")
    unknown = ~audits["criterion"].isin(known.index)
    if unknown.any():
        names_ = sorted(set(audits.loc[unknown, "criterion"]), key=str)
        problems.append(f"column 'criterion': {int(unknown.sum())} row(s) name criteria that are not in the criteria "
                        f"file ({names_[:5]}): {_where(unknown, audits, 'criterion', off)}. Fix: add them to the "
                        "criteria file with a kind and weight, or correct the names.")
    expected_kind = audits["criterion"].map(known["kind"])
    wrong_kind = ~unknown & (audits["kind"] != expected_kind)
    if wrong_kind.any():
        problems.append(f"column 'kind': {int(wrong_kind.sum())} row(s) differ from their criterion's kind in the "
                        f"criteria file: {_where(wrong_kind, audits, 'kind', off)}. Fix: use the criteria file's kind.")
    binary = ~unknown & ~wrong_kind & (audits["kind"] == "binary")
    bad_bin = binary & ~audits["score"].isin([0, 1])
    if bad_bin.any():
        problems.append(f"column 'score': {int(bad_bin.sum())} score(s) of binary criteria are not 0 or 1: "
                        f"{_where(bad_bin, audits, 'score', off)}. Fix: score pass as 1 and fail as 0.")
    lim = scales.set_index("criterion")
    lo, hi = audits["criterion"].map(lim["scale_min"]), audits["criterion"].map(lim["scale_max"])
    scale = ~unknown & ~wrong_kind & (audits["kind"] == "scale")
    outside = scale & ((audits["score"] < lo) | (audits["score"] > hi))
    if outside.any():
        ranges = sorted({f"'{c}' {lim.at[c, 'scale_min']:g}–{lim.at[c, 'scale_max']:g}"
                         for c in audits.loc[outside, "criterion"]})
        problems.append(f"column 'score': {int(outside.sum())} score(s) lie outside their criterion's scale "
                        f"({', '.join(ranges[:5])}): {_where(outside, audits, 'score', off)}. Fix: correct those "
                        "scores, or state the scale in the criteria file (column 'scale', e.g. '0-10').")
    for col in ("unit", "date"):
        n_values = audits.groupby("audit_id")[col].transform("nunique")
        mixed = n_values > 1
        if mixed.any():
            problems.append(f"column '{col}': {int(audits.loc[mixed, 'audit_id'].nunique())} audit(s) have more than "
                            f"one {col}: {_where(mixed, audits, 'audit_id', off)}. Fix: give each audit_id one {col} "
                            "(or separate audits their own audit_id).")
    if problems:
        raise InputError(f"'audits' ({paths['audits']})", problems)
    customers = read_table(paths["customers"], cust_c) if "customers" in paths else None
    return audits, criteria, customers, synthetic, truth
