"""Focus groups and service audits: coded transcripts, coder agreement, safe quotes, audit compliance.

Interval methods: Wilson intervals for pass rates and shares (statsmodels); t intervals for mean scores;
Fisher-z intervals for correlations; percentile bootstrap over audits for unit ranks.
"""

from __future__ import annotations

import math
import re
from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

# ---------------------------------------------------------------------------------------------
# confidentiality

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
PHONE = re.compile(r"(?<!\w)\+?\d[\d\s().-]{6,}\d(?!\w)")
# a self-introduction followed by a capitalised name; only the introduction is case-insensitive
NAME_INTRO = re.compile(r"\b((?i:my name is|i am|i'm|меня зовут))\s+([A-ZА-ЯЁ][\w-]+(?:\s+[A-ZА-ЯЁ][\w-]+)?)")


def scrub(text: str, names: list[str] | tuple[str, ...] = ()) -> str:
    """Remove e-mail addresses, phone numbers and names (given ones, and self-introductions)."""
    if not isinstance(text, str):
        return ""
    out = EMAIL.sub("[e-mail]", text)
    out = PHONE.sub("[phone]", out)
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        for part in (name, *name.split()):
            if len(part) > 2:
                out = re.sub(rf"\b{re.escape(part)}\b", "[name]", out)
    out = NAME_INTRO.sub(lambda m: f"{m.group(1)} [name]", out)
    return out


def pseudonyms(transcripts: pd.DataFrame, speaker_col: str = "speaker", role_col: str | None = "role") -> pd.Series:
    """A stable pseudonym per (session, speaker), e.g. 'Customer 3' or 'Participant 5'."""
    keys = transcripts[["session_id", speaker_col]].drop_duplicates().reset_index(drop=True)
    if role_col and role_col in transcripts:
        roles = transcripts.drop_duplicates(["session_id", speaker_col]).set_index(["session_id", speaker_col])[role_col]
        keys["role"] = [str(roles.loc[(s, p)] or "participant").capitalize() for s, p in
                        zip(keys["session_id"], keys[speaker_col], strict=True)]
    else:
        keys["role"] = "Participant"
    keys["pseudonym"] = keys["role"] + " " + (keys.groupby("role").cumcount() + 1).astype(str)
    return keys.set_index(["session_id", speaker_col])["pseudonym"]


# ---------------------------------------------------------------------------------------------
# agreement


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two raters' labels on the same items."""
    a, b = np.asarray(a), np.asarray(b)
    cats = np.union1d(a, b)
    po = np.mean(a == b)
    pe = sum(np.mean(a == c) * np.mean(b == c) for c in cats)
    return float((po - pe) / (1 - pe)) if pe < 1 else math.nan


def krippendorff_alpha(data: np.ndarray, level: str = "nominal") -> float:
    """Krippendorff's alpha for a raters × units matrix (NaN = missing), nominal/ordinal/interval/ratio.

    Built from the coincidence matrix as in Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability".
    """
    d = np.asarray(data, float)
    values = np.unique(d[~np.isnan(d)])
    idx = {v: i for i, v in enumerate(values)}
    k = len(values)
    o = np.zeros((k, k))
    for u in range(d.shape[1]):
        col = d[:, u][~np.isnan(d[:, u])]
        m = len(col)
        if m < 2:
            continue
        for i, j in combinations(range(m), 2):
            a, b = idx[col[i]], idx[col[j]]
            o[a, b] += 1 / (m - 1)
            o[b, a] += 1 / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(k)
    elif level == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
    elif level == "ratio":
        s = values[:, None] + values[None, :]
        delta = np.where(s != 0, ((values[:, None] - values[None, :]) / np.where(s != 0, s, 1)) ** 2, 0.0)
    elif level == "ordinal":
        delta = np.zeros((k, k))
        for a in range(k):
            for b in range(k):
                lo, hi = min(a, b), max(a, b)
                delta[a, b] = (n_c[lo:hi + 1].sum() - (n_c[lo] + n_c[hi]) / 2) ** 2
    else:
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    observed = np.sum(o * delta)
    expected = np.sum(np.outer(n_c, n_c) * delta) / (n - 1)
    return float(1 - observed / expected) if expected > 0 else math.nan


def coding_grid(transcripts: pd.DataFrame, codes: pd.DataFrame, codebook: pd.DataFrame) -> pd.DataFrame:
    """One row per (session, turn, coder) with a 0/1 column per code (every turn of every coder)."""
    coders = sorted(codes["coder"].unique())
    turns = transcripts[["session_id", "turn"]]
    grid = pd.concat([turns.assign(coder=c) for c in coders], ignore_index=True)
    hits = codes.assign(v=1).pivot_table(index=["session_id", "turn", "coder"], columns="code", values="v",
                                        aggfunc="max", fill_value=0)
    grid = grid.merge(hits.reset_index(), on=["session_id", "turn", "coder"], how="left")
    for c in codebook["code"]:
        grid[c] = grid[c].fillna(0).astype(int) if c in grid else 0
    return grid[["session_id", "turn", "coder", *codebook["code"]]]


def agreement(grid: pd.DataFrame, codebook: pd.DataFrame) -> pd.DataFrame:
    """Per code: how often each coder applied it, Cohen's kappa (two coders) and Krippendorff's alpha."""
    coders = sorted(grid["coder"].unique())
    rows = []
    for code in codebook["code"]:
        wide = grid.pivot_table(index=["session_id", "turn"], columns="coder", values=code)
        row = {"code": code, **{f"applied by {c}": int(wide[c].sum()) for c in coders}}
        if len(coders) == 2:
            row["kappa"] = cohen_kappa(wide[coders[0]].to_numpy(), wide[coders[1]].to_numpy())
        row["krippendorff_alpha"] = krippendorff_alpha(wide[coders].to_numpy().T, "nominal")
        row["disagreements"] = int((wide[coders].nunique(axis=1) > 1).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def consensus(grid: pd.DataFrame, codebook: pd.DataFrame, rule: str = "all") -> pd.DataFrame:
    """Codes per turn agreed by all coders (``rule='all'``) or applied by any (``'any'``)."""
    agg = grid.groupby(["session_id", "turn"])[list(codebook["code"])]
    return (agg.min() if rule == "all" else agg.max()).reset_index()


def code_frequencies(transcripts: pd.DataFrame, agreed: pd.DataFrame, codebook: pd.DataFrame,
                     group_col: str | None = "role") -> pd.DataFrame:
    """Per code: turns, sessions and distinct speakers raising it (agreed codes), by group when given."""
    d = transcripts.merge(agreed, on=["session_id", "turn"])
    rows = []
    for r in codebook.itertuples(index=False):
        hit = d[d[r.code] == 1]
        row = {"theme": r.theme, "code": r.code, "turns": len(hit), "sessions": hit["session_id"].nunique(),
               "speakers": hit[["session_id", "speaker"]].drop_duplicates().shape[0]}
        if group_col and group_col in d:
            for g, sub in hit.groupby(group_col):
                row[f"speakers ({g})"] = sub[["session_id", "speaker"]].drop_duplicates().shape[0]
        rows.append(row)
    return pd.DataFrame(rows).fillna(0)


def cooccurrence(agreed: pd.DataFrame, codebook: pd.DataFrame) -> pd.DataFrame:
    """How many turns carry each pair of codes together."""
    m = agreed[list(codebook["code"])].to_numpy()
    return pd.DataFrame(m.T @ m, index=codebook["code"], columns=codebook["code"])


def top_pairs(co: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    rows = [{"code A": a, "code B": b, "turns": int(co.at[a, b])} for a, b in combinations(co.index, 2) if co.at[a, b] > 0]
    return pd.DataFrame(rows, columns=["code A", "code B", "turns"]).sort_values("turns", ascending=False).head(k)


def quotes(transcripts: pd.DataFrame, agreed: pd.DataFrame, codebook: pd.DataFrame, k: int = 2, min_group: int = 5,
           group_cols: tuple[str, ...] = ("role", "segment"), max_chars: int = 240) -> pd.DataFrame:
    """Up to ``k`` quotes per theme: scrubbed, pseudonymous, escaped later by the report.

    Turns agreed by all coders come first, shorter ones preferred. A quote is never taken from a speaker
    group (``group_cols``) with fewer than ``min_group`` distinct speakers in all sessions.
    """
    d = transcripts.merge(agreed, on=["session_id", "turn"])
    names = list(transcripts["speaker"].astype(str).unique())
    alias = pseudonyms(transcripts)
    cols = [c for c in group_cols if c in d]
    if cols:
        size = d.drop_duplicates(["session_id", "speaker"]).groupby(cols, dropna=False)["speaker"].size()
        d = d.join(size.rename("_group_size"), on=cols)
    else:
        d["_group_size"] = d[["session_id", "speaker"]].drop_duplicates().shape[0]
    rows = []
    for theme, codes_ in codebook.groupby("theme", sort=True)["code"]:
        hit = d[(d[list(codes_)].sum(axis=1) > 0) & (d["_group_size"] >= min_group)]
        hit = hit.assign(_len=hit["text"].astype(str).str.len()).sort_values(["_len", "session_id", "turn"])
        for r in hit.head(k).itertuples(index=False):
            text = scrub(str(r.text), names)
            rows.append({"theme": theme, "quote": text if len(text) <= max_chars else text[:max_chars] + "…",
                         "speaker": alias.loc[(r.session_id, r.speaker)], "session": r.session_id})
    return pd.DataFrame(rows, columns=["theme", "quote", "speaker", "session"])


# ---------------------------------------------------------------------------------------------
# audits


def primary_scores(audits: pd.DataFrame) -> pd.DataFrame:
    """One score per audit and criterion: the first auditor's (double-scored audits are for consistency)."""
    return audits.sort_values(["audit_id", "criterion", "auditor"]).drop_duplicates(["audit_id", "criterion"])


def criterion_pass_rates(scores: pd.DataFrame, criteria: pd.DataFrame) -> pd.DataFrame:
    """Binary criteria: pass rate with Wilson 95% CI; scale criteria: mean with t interval."""
    rows = []
    for r in criteria.itertuples(index=False):
        s = scores.loc[scores["criterion"] == r.criterion, "score"].astype(float)
        if r.kind == "binary":
            lo, hi = proportion_confint(s.sum(), len(s), method="wilson")
            rows.append({"criterion": r.criterion, "kind": r.kind, "must_have": bool(r.must_have), "audits": len(s),
                         "estimate": float(s.mean()), "ci_low": float(lo), "ci_high": float(hi)})
        else:
            half = stats.t.ppf(0.975, len(s) - 1) * s.std(ddof=1) / math.sqrt(len(s))
            rows.append({"criterion": r.criterion, "kind": r.kind, "must_have": bool(r.must_have), "audits": len(s),
                         "estimate": float(s.mean()), "ci_low": float(s.mean() - half), "ci_high": float(s.mean() + half)})
    return pd.DataFrame(rows)


def audit_scores(scores: pd.DataFrame, criteria: pd.DataFrame, scale_max: float = 5.0) -> pd.DataFrame:
    """Weighted total score per audit (0–100): binary 0/1, scale rescaled from 1..scale_max to 0..1."""
    c = criteria.set_index("criterion")
    s = scores.join(c[["weight", "kind"]].rename(columns={"kind": "_kind"}), on="criterion")
    s["value"] = np.where(s["_kind"] == "binary", s["score"], (s["score"] - 1) / (scale_max - 1))
    total = (s["value"] * s["weight"]).groupby(s["audit_id"]).sum() / s.groupby("audit_id")["weight"].sum()
    meta = scores.drop_duplicates("audit_id").set_index("audit_id")[["unit", "date"]]
    return meta.join((100 * total).rename("score")).reset_index()


def full_compliance(scores: pd.DataFrame, criteria: pd.DataFrame) -> dict[str, float]:
    """Share of audits that pass every must-have criterion (Wilson 95% CI)."""
    must = set(criteria.loc[criteria["must_have"].astype(bool), "criterion"])
    per_audit = scores[scores["criterion"].isin(must)].groupby("audit_id")["score"].min()
    k, n = int((per_audit >= 1).sum()), len(per_audit)
    lo, hi = proportion_confint(k, n, method="wilson")
    return {"estimate": k / n if n else math.nan, "ci_low": float(lo), "ci_high": float(hi), "audits": n}


def unit_ranking(audit_table: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean score per unit with a t interval, and a bootstrap 95% interval of its rank (1 = best)."""
    g = audit_table.groupby("unit")["score"]
    out = g.agg(["mean", "std", "size"]).rename(columns={"size": "audits"})
    half = stats.t.ppf(0.975, out["audits"] - 1) * out["std"] / np.sqrt(out["audits"])
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    rng = np.random.default_rng(seed)
    groups = {u: s.to_numpy() for u, s in g}
    units = list(groups)
    ranks = np.empty((n_boot, len(units)))
    for b in range(n_boot):
        means = np.array([rng.choice(groups[u], len(groups[u])).mean() for u in units])
        ranks[b] = stats.rankdata(-means)
    out["rank"] = stats.rankdata(-out.loc[units, "mean"].to_numpy())
    out["rank_low"] = np.quantile(ranks, 0.025, axis=0)
    out["rank_high"] = np.quantile(ranks, 0.975, axis=0)
    return out.drop(columns="std").reset_index().sort_values("rank").reset_index(drop=True)


def separable(ranking: pd.DataFrame) -> pd.DataFrame:
    """Mark units the data can single out: the whole 95% rank interval in the top (or bottom) quarter."""
    r = ranking.copy()
    q = math.ceil(len(r) / 4)
    r["clearly top"] = r["rank_high"] <= q
    r["clearly bottom"] = r["rank_low"] > len(r) - q
    return r


def icc_2_1(x: np.ndarray) -> float:
    """ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979)."""
    x = np.asarray(x, float)
    n, k = x.shape
    grand = x.mean()
    ms_r = k * np.sum((x.mean(axis=1) - grand) ** 2) / (n - 1)
    ms_c = n * np.sum((x.mean(axis=0) - grand) ** 2) / (k - 1)
    ss_e = np.sum((x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand) ** 2)
    ms_e = ss_e / ((n - 1) * (k - 1))
    return float((ms_r - ms_e) / (ms_r + (k - 1) * ms_e + k * (ms_c - ms_e) / n))


def auditor_agreement(audits: pd.DataFrame) -> pd.DataFrame:
    """On double-scored audits: agreement on binary criteria (Krippendorff nominal) and scale (ICC, alpha interval)."""
    counts = audits.groupby(["audit_id", "criterion"])["auditor"].nunique()
    double = counts[counts >= 2].reset_index()[["audit_id", "criterion"]]
    d = audits.merge(double, on=["audit_id", "criterion"])
    d = d.assign(slot=d.sort_values("auditor").groupby(["audit_id", "criterion"]).cumcount())
    rows = []
    for kind, level in (("binary", "nominal"), ("scale", "interval")):
        sub = d[(d["kind"] == kind) & (d["slot"] < 2)]
        if sub.empty:
            continue
        wide = sub.pivot_table(index=["audit_id", "criterion"], columns="slot", values="score")
        x = wide.dropna().to_numpy()
        rows.append({"criteria": kind, "pairs": len(x), "krippendorff_alpha": krippendorff_alpha(x.T, level),
                     "icc_2_1": icc_2_1(x) if kind == "scale" else math.nan,
                     "exact agreement": float(np.mean(x[:, 0] == x[:, 1]))})
    return pd.DataFrame(rows)


def correlation(x: np.ndarray, y: np.ndarray, method: str = "spearman") -> dict[str, float]:
    """Correlation with a Fisher-z 95% interval."""
    r, p = (stats.spearmanr if method == "spearman" else stats.pearsonr)(x, y)
    n = len(x)
    z, se = np.arctanh(r), 1 / math.sqrt(max(n - 3, 1))
    return {"estimate": float(r), "ci_low": float(np.tanh(z - 1.959964 * se)), "ci_high": float(np.tanh(z + 1.959964 * se)),
            "p_value": float(p), "n": n}


# ---------------------------------------------------------------------------------------------
# plots


def plot_heatmap(co: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Code co-occurrence heatmap (turns with both codes)."""
    ax = ax or plt.subplots(figsize=(7, 6))[1]
    m = co.to_numpy().astype(float)
    np.fill_diagonal(m, np.nan)
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(co)), co.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(co)), co.index, fontsize=8)
    ax.figure.colorbar(im, ax=ax, label="turns with both codes")
    ax.set_title("Which topics come up together")
    return ax


def plot_themes(freq: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Distinct speakers per code, coloured by theme."""
    f = freq.sort_values("speakers")
    ax = ax or plt.subplots(figsize=(7, 0.4 * len(f) + 1.2))[1]
    themes = sorted(f["theme"].unique())
    colors = dict(zip(themes, plt.get_cmap("tab10").colors, strict=False))
    from matplotlib.patches import Patch

    ax.barh(f["code"], f["speakers"], color=[colors[t] for t in f["theme"]])
    ax.legend(handles=[Patch(color=colors[t], label=t) for t in themes], fontsize=8, frameon=False)
    ax.set_xlabel("distinct speakers who raised it")
    ax.set_title("What participants talked about")
    return ax


def plot_ranking(ranking: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Unit scores with 95% intervals, best first."""
    from cxresearch.plots import plot_intervals

    r = ranking.sort_values("mean", ascending=False)
    return plot_intervals(r["unit"], r["mean"], r["ci_low"], r["ci_high"], ax, "audit score (0–100, 95% CI)",
                          "Audit score per unit")


def plot_trend(audit_table: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Mean audit score per month with 95% intervals."""
    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    m = audit_table.assign(month=pd.to_datetime(audit_table["date"]).dt.to_period("M").astype(str))
    g = m.groupby("month")["score"].agg(["mean", "std", "size"])
    half = stats.t.ppf(0.975, g["size"] - 1) * g["std"] / np.sqrt(g["size"])
    x = np.arange(len(g))
    ax.errorbar(x, g["mean"], yerr=half, fmt="o-", color="#1f4e79", capsize=3)
    ax.set_xticks(x, g.index, rotation=45, fontsize=8)
    ax.set_ylabel("mean audit score")
    ax.set_title("Audit scores over time")
    ax.grid(alpha=0.3)
    return ax



# ---------------------------------------------------------------------------------------------
# inputs



def _contracts():
    from cxresearch import contracts
    from cxresearch.io import Column, Contract

    codes = Contract("fg_codes", (Column("session_id", "string"), Column("turn", "int", min=1),
                                  Column("coder", "string"), Column("code", "string")),
                     key=("session_id", "turn", "coder", "code"))
    codebook = Contract("fg_codebook", (Column("code", "string"), Column("theme", "string"),
                                        Column("definition", "string", required=False, nullable=True)), key=("code",))
    criteria = Contract("audit_criteria", (Column("criterion", "string"), Column("kind", "string", allowed=("binary", "scale")),
                                           Column("weight", "float", min=0), Column("must_have", "bool")),
                        key=("criterion",))
    return contracts.FG_TRANSCRIPTS, codes, codebook, contracts.AUDITS, criteria, contracts.CUSTOMERS


def load_focus_groups(transcripts_path: str | None, codes_path: str | None, codebook_path: str | None, *,
                      seed: int = 20240101, n_customers: int = 5000, effects: dict | None = None):
    """Transcripts, coded segments and codebook (the synthetic world's when no path is given).

    Codes must exist in the codebook and point at existing turns; otherwise a clear error.
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
    problems = []
    unknown = sorted(set(codes["code"]) - set(codebook["code"]))
    if unknown:
        problems.append(f"codes {unknown[:5]} are not in the codebook. Fix: add them to the codebook or recode.")
    turns = set(zip(transcripts["session_id"], transcripts["turn"], strict=True))
    orphan = [i for i, k in enumerate(zip(codes["session_id"], codes["turn"], strict=True)) if k not in turns]
    if orphan:
        problems.append(f"{len(orphan)} coded segment(s) point at turns missing from the transcripts: rows "
                        f"{', '.join(str(i + 2) for i in orphan[:5])}. Fix: check session_id and turn.")
    if problems:
        raise InputError(f"'fg_codes' ({paths['fg_codes']})", problems)
    return transcripts, codes, codebook, synthetic, truth


def load_audits(audits_path: str | None, criteria_path: str | None, customers_path: str | None = None, *,
                seed: int = 20240101, n_customers: int = 5000, effects: dict | None = None):
    """Audit scores, criteria with weights, and (optionally) customers with their unit for churn by unit."""
    from cxresearch.io import InputError, read_table
    from cxresearch.synth import resolve_inputs

    *_, audit_c, crit_c, cust_c = _contracts()
    names = {"audits": audits_path, "audit_criteria": criteria_path}
    if audits_path is None:
        names["customers"] = customers_path
    elif customers_path:
        names["customers"] = customers_path
    paths, synthetic, truth = resolve_inputs(names, seed, n_customers, effects)
    if "audits" not in paths or "audit_criteria" not in paths:
        raise InputError("'audits'", ["audits_path and criteria_path go together. Fix: give both."])
    audits = read_table(paths["audits"], audit_c)
    criteria = read_table(paths["audit_criteria"], crit_c)
    unknown = sorted(set(audits["criterion"]) - set(criteria["criterion"]))
    if unknown:
        raise InputError(f"'audits' ({paths['audits']})", [f"criteria {unknown[:5]} are not in the criteria list. "
                                                           "Fix: add them with a weight."])
    bad = audits[(audits["kind"] == "binary") & ~audits["score"].isin([0, 1])]
    if len(bad):
        raise InputError(f"'audits' ({paths['audits']})", [f"binary criteria must score 0 or 1; rows "
                                                           f"{', '.join(str(i + 2) for i in bad.index[:5])} do not."])
    customers = read_table(paths["customers"], cust_c) if "customers" in paths else None
    return audits, criteria, customers, synthetic, truth


def overall_agreement(grid: pd.DataFrame, codebook: pd.DataFrame, n_boot: int = 200,
                      seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Krippendorff's alpha (nominal) over all codes and turns, with a bootstrap 95% CI over turns."""
    coders = sorted(grid["coder"].unique())
    codes_ = list(codebook["code"])
    wide = grid.pivot_table(index=["session_id", "turn"], columns="coder", values=codes_)
    per_code = np.stack([wide[code][coders].to_numpy().T for code in codes_])  # codes x coders x turns
    alpha = krippendorff_alpha(np.concatenate(list(per_code), axis=1), "nominal")
    rng = np.random.default_rng(seed)
    n = per_code.shape[2]
    draws = [krippendorff_alpha(np.concatenate(list(per_code[:, :, rng.integers(0, n, n)]), axis=1), "nominal")
             for _ in range(n_boot)]
    return alpha, (float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975)))


def churn_by_unit(customers: pd.DataFrame, unit_col: str, min_n: int = 5) -> pd.DataFrame:
    """Customers and the share who left per unit (units with fewer than ``min_n`` customers left out)."""
    g = customers.groupby(unit_col).agg(customers=("customer_id", "size"),
                                        left=("churn_date", lambda s: float(s.notna().mean())))
    return g[g["customers"] >= min_n]
