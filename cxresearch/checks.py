"""Estimates beside the synthetic world's planted values: the recovery checks that end each notebook.

Apart from the data source (which takes the data's own defaults from it), only this module reads the planted
truth (:class:`cxresearch.truth.Truth`). Analyses never see it; where a
claim shows a planted value, the analysis takes it as a plain number (``planted=``, ``truth=``) and this
module supplies it. Every function accepts ``truth=None`` (a user's data): the planted values are then
empty and the notes say there is nothing to compare with.

>>> cx.tell(checks.churn_notes(drivers, source.truth, fast_resolution_hours))
>>> results.add(*churn.claims(..., planted=checks.churn_states(source.truth, fast_resolution_hours)))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from scipy import stats

from cxresearch import audits, churn, clv, focus_groups, overview, payoff, survey
from cxresearch.display import fmt_value, plain, sentence
from cxresearch.display import table as display_table
from cxresearch.fits import is_number
from cxresearch.stats import Z95
from cxresearch.truth import Truth

NOTHING = sentence("Not synthetic data: nothing to compare with.")


# ---------------------------------------------------------------------------------------------
# churn


def churn_states(truth: Truth | None, fast_hours: float) -> dict[str, float]:
    """The planted hazard ratios of the complaint states, on the scale of the time-varying model's estimates.

    Empty for real data, and when ``fast_hours`` differs from the synthetic world's own definition of a fast
    resolution (then "fast" and "slow" mean other things than what was planted).
    """
    if truth is None or not math.isclose(float(truth.churn.fast_resolution_hours), float(fast_hours)):
        return {}
    hr = truth.churn.complaint_hazard_ratios
    return {"fast": hr["fast_resolved"], "slow": hr["slow_resolved"], "unresolved": hr["unresolved"],
            "fast vs slow": hr["fast_resolved"] / hr["slow_resolved"]}


def churn_check(estimates: pd.DataFrame, truth: Truth, fast_hours: float, references: Mapping[str, str],
                family_alpha: float = 0.05) -> pd.DataFrame:
    """Planted hazard ratios beside the Cox estimates (``term``, ``hr``, ``ci_low``, ``ci_high``), with
    per-term 95% and simultaneous (Bonferroni over the compared terms) checks.

    A level's planted ratio is against the world's own reference level: it is compared only when the model
    used the same reference (``references``, text column → reference level). The complaint states are
    compared only when ``fast_hours`` is the world's own definition of a fast resolution
    (:func:`churn_states`); :func:`churn_skipped` says what was left out and why.
    """
    planted = _comparable_hazard_ratios(truth, fast_hours, references)
    est = estimates.set_index("term")
    terms = [t for t in planted if t in est.index]
    z_family = stats.norm.ppf(1 - family_alpha / (2 * max(1, len(terms))))
    rows = []
    for t in terms:
        hr, lo, hi = est.at[t, "hr"], est.at[t, "ci_low"], est.at[t, "ci_high"]
        se = (math.log(hi) - math.log(lo)) / (2 * Z95)
        rows.append({"term": t, "planted": planted[t], "estimate": hr, "ci_low": lo, "ci_high": hi,
                     "inside 95% CI": lo <= planted[t] <= hi,
                     "inside simultaneous CI": abs(math.log(hr) - math.log(planted[t])) <= z_family * se})
    return pd.DataFrame(rows, columns=["term", "planted", "estimate", "ci_low", "ci_high", "inside 95% CI",
                                       "inside simultaneous CI"])


def _comparable_hazard_ratios(truth: Truth, fast_hours: float, references: Mapping[str, str]) -> dict[str, float]:
    planted = {t: v for t, v in truth.churn.hazard_ratios.items()
               if references.get(t.split("[")[0]) == truth.churn.reference_levels.get(t.split("[")[0])}
    planted.update({k: v for k, v in churn_states(truth, fast_hours).items() if k != "fast vs slow"})
    return planted


def churn_skipped(truth: Truth, fast_hours: float, references: Mapping[str, str]) -> list[dict[str, Any]]:
    """Sentences for what :func:`churn_check` could not compare: factors whose reference level differs from the
    planted one, and the complaint states when "fast" is defined otherwise than in the world."""
    out = []
    other = sorted(c for c, ref in truth.churn.reference_levels.items() if c in references and references[c] != ref)
    for column in other:
        out.append(sentence("Not compared: {column}, whose levels are measured against **{used}** here but against "
                            "**{planted}** in the synthetic world.", column=plain(column),
                            used=plain(references[column]), planted=plain(truth.churn.reference_levels[column])))
    if not churn_states(truth, fast_hours):
        out.append(sentence("Not compared: the complaint states, because a fast resolution means within {here:g} "
                            "hours here but within {planted:g} hours in the synthetic world.", here=fast_hours,
                            planted=truth.churn.fast_resolution_hours))
    return out


def churn_notes(drivers: churn.Drivers, truth: Truth | None, fast_hours: float) -> list[Any]:
    """:func:`churn_check` as shown, with what could not be compared (or "nothing to compare with")."""
    if truth is None:
        return [NOTHING]
    references = drivers.cox.references
    check = churn_check(drivers.main, truth, fast_hours, references)
    return [display_table(churn.hazard_table(check)), *churn_skipped(truth, fast_hours, references)]


# ---------------------------------------------------------------------------------------------
# customer lifetime value


def clv_check(models: clv.FittedModels, truth: Truth | None) -> pd.DataFrame | None:
    """The Pareto/NBD and Gamma-Gamma estimates beside the planted values (None: nothing to compare with)."""
    if truth is None or "Pareto/NBD" not in models.purchase:
        return None
    planted = {**truth.purchases.pareto_nbd_params, **truth.purchases.gamma_gamma_params}
    return clv.parameter_check([models.purchase["Pareto/NBD"], models.spend], planted)


def clv_notes(models: clv.FittedModels, truth: Truth | None) -> list[Any]:
    """:func:`clv_check` as shown."""
    check = clv_check(models, truth)
    return [NOTHING] if check is None else [display_table(check)]


# ---------------------------------------------------------------------------------------------
# loyalty payoff


def loyalty_effect(truth: Truth | None, setup: payoff.Setup) -> float | None:
    """The planted effect on spend: the pilot's average extra spend per customer (randomized), or the members'
    extra spend per month (open enrolment, ATT); None for real data or another money outcome."""
    if truth is None or setup.money_outcome != "spend":
        return None
    value = truth.loyalty_pilot.true_ate_spend if setup.randomized else truth.loyalty_enrolment.true_att_spend_per_month
    return float(value) if is_number(value) else None


def loyalty_check(setup: payoff.Setup, fx: payoff.RandomizedAnalysis | payoff.ObservationalAnalysis,
                  truth: Truth | None) -> pd.DataFrame | None:
    """Each estimate of the money outcome beside the planted effect, and whether its interval covers it
    (None when there is no planted effect: :func:`loyalty_effect`)."""
    planted = loyalty_effect(truth, setup)
    if planted is None:
        return None
    check = payoff.money_estimates(setup, fx).assign(planted=planted)
    check["covers the planted effect"] = (check["ci_low"] <= planted) & (planted <= check["ci_high"])
    return check


def loyalty_notes(setup: payoff.Setup, fx: payoff.RandomizedAnalysis | payoff.ObservationalAnalysis,
            truth: Truth | None) -> list[Any]:
    """:func:`loyalty_check` as shown: the planted effect in words, then every estimate beside it."""
    check = loyalty_check(setup, fx, truth)
    if check is None:
        return [NOTHING if truth is None else sentence(
            "The synthetic world plants an effect on spend only: nothing to compare {outcome} with.",
            outcome=plain(setup.money_outcome))]
    cur = setup.currency
    return [sentence("Planted effect on {outcome}: **{planted}** {what}", outcome=plain(setup.money_outcome),
                     planted=fmt_value(float(check["planted"].iloc[0]), "money", cur),
                     what="(average over pilot customers)." if setup.randomized else
                     "(average over members, per month)."),
            display_table(check, rename={"estimate": f"estimate ({cur})", "planted": f"planted ({cur})"})]


# ---------------------------------------------------------------------------------------------
# survey


def survey_planted(truth: Truth | None, outcome: str, predictors: list[str], good_col: str | None,
                   bad_col: str | None) -> dict[str, float]:
    """Claim id -> the planted value on the same scale as the claim's estimate.

    Empty for real data, and a claim is left out when the analysis departs from the planted model (another
    outcome than ``nps``, other drivers, other experience counts). The negativity ratio is compared with the
    ratio on the observed 0–10 answers in a large sample of the same model, which is what the regression on
    the answers estimates; the planted ``negativity_ratio`` acts on a latent score before the answers are
    rounded and capped at 0 and 10, which changes the ratio. Attribute-group shares are the shares of
    explained variance in that large sample.
    """
    if truth is None:
        return {}
    s = truth.survey
    if outcome != "nps" or set(predictors) != set(s.drivers):
        return {}
    out: dict[str, float] = {}
    share = s.driver_group_share
    if {"emotional", "tangible"} <= set(share):
        out["emotional_beats_tangible"] = float(share["emotional"] - share["tangible"])
    if "tangible" in share:
        out["tangible_share_5_to_10"] = float(share["tangible"])
    observed = s.negativity_ratio_observed_scale_large_sample
    if (good_col, bad_col) == ("n_good", "n_bad") and is_number(observed):
        out["bad_experience_needs_five_good"] = float(observed)
    return out


def survey_notes(truth: Truth | None, dr: survey.Drivers, ratio: Mapping[str, Any] | None,
                 bias: survey.ResponseBias, planted: Mapping[str, float]) -> list[Any]:
    """Estimates next to the planted values: the driver weights (table), the negativity ratio on the observed
    0–10 scale, the attribute groups' shares and the positivity bias."""
    if truth is None or dr.table is None:
        return [NOTHING]
    t = truth.survey
    out: list[Any] = [survey.weight_check(dr.table, t.driver_weights_large_sample)]
    if ratio is not None and is_number(ratio.get("ci_low")) and is_number(ratio.get("ci_high")):
        out.append(sentence("- negativity ratio: planted {planted:g} on the hidden score, {observed:.2f} on the "
                            "observed 0–10 answers (the value the claim is checked against); estimated {est:.2f} "
                            "(95% CI {lo:.2f} to {hi:.2f})", planted=t.negativity_ratio,
                            observed=t.negativity_ratio_observed_scale_large_sample, est=ratio["estimate"],
                            lo=ratio["ci_low"], hi=ratio["ci_high"]))
    share = None if dr.group_table is None else dr.group_table.set_index("group")["share"]
    if "emotional_beats_tangible" in planted and share is not None:
        out.append(sentence("- emotional minus tangible attributes' share of explained variance: planted {p:+.1f} "
                            "pp, estimated {e:+.1f} pp", p=100 * planted["emotional_beats_tangible"],
                            e=100 * (share["emotional"] - share["tangible"])))
    if "tangible_share_5_to_10" in planted and share is not None:
        out.append(sentence("- tangible attributes' share of explained variance: planted {p:.1%}, estimated {e:.1%}",
                            p=planted["tangible_share_5_to_10"], e=share["tangible"]))
    if not bias.problem:
        out.append(sentence("- positivity bias: planted {planted:.1f} NPS points (respondents vs everyone invited); "
                            "the behaviour-based estimate finds {est:.1f}, the part explained by who replies",
                            planted=t.positivity_bias_nps_points, est=bias.estimate))
    return out


# ---------------------------------------------------------------------------------------------
# focus groups


def kappa_check(truth: Truth | None, coding: focus_groups.CoderAgreement) -> pd.DataFrame | None:
    """Estimated against planted Cohen's kappa per code (synthetic data with two coders; else None)."""
    if truth is None or "kappa" not in coding.per_code:
        return None
    a = coding.per_code
    check = a[["code", "kappa"]].assign(planted=a["code"].map(truth.focus_groups.expected_kappa))
    return check.rename(columns={"kappa": "Cohen's kappa (estimated)", "planted": "Cohen's kappa (planted, q²)"})


def leaked_identifiers(truth: Truth | None, quotes: pd.DataFrame) -> int | None:
    """How many of the planted names, e-mails and phone numbers appear in the quotes (None for real data)."""
    if truth is None:
        return None
    text = " ".join(quotes["quote"])
    return sum(v in text for v in truth.focus_groups.planted_pii.all())


def focus_group_notes(truth: Truth | None, coding: focus_groups.CoderAgreement, quotes: pd.DataFrame) -> list[Any]:
    """The kappa check (when two coders coded) and the planted personal data found in the quotes."""
    if truth is None:
        return [NOTHING]
    check = kappa_check(truth, coding)
    return [display_table(check) if check is not None else
            sentence("Agreement is not compared: Cohen's kappa needs two coders, and these data have another number."),
            sentence("Planted personal data found in the quotes: **{n}**.", n=leaked_identifiers(truth, quotes))]


# ---------------------------------------------------------------------------------------------
# audits


def audit_compliance(truth: Truth | None) -> float | None:
    """The planted share of contacts passing every must-have, as auditors score it (None for real data)."""
    if truth is None or not is_number(truth.audits.share_full_compliance_observed):
        return None
    return float(truth.audits.share_full_compliance_observed)


def audit_notes(truth: Truth | None, full: audits.Compliance) -> list[Any]:
    """The estimated share passing every must-have against the planted one, and the planted auditor agreement."""
    if truth is None:
        return [NOTHING]
    t = truth.audits
    if full.estimate is None:
        return [sentence("The share passing every must-have has no estimate here, so it is not compared with the "
                         "planted {obs:.1%}.", obs=t.share_full_compliance_observed)]
    return [sentence("- share passing every must-have: planted {obs:.1%} as auditors score it ({exp:.1%} before "
                     "auditor errors), estimated {est:.1%} (95% CI {lo:.1%} to {hi:.1%})\n"
                     "- auditor agreement on scored criteria: planted ICC {icc:.2f}",
                     obs=t.share_full_compliance_observed, exp=t.share_full_compliance_expected, est=full.estimate,
                     lo=full.ci_low, hi=full.ci_high, icc=t.scale_icc_expected)]


# ---------------------------------------------------------------------------------------------
# data overview


def noise_share(truth: Truth | None, inputs: overview.Inputs) -> float | None:
    """Share of transaction rows planted as noise (returns and zero amounts): what the cleaning rules should
    remove. None for real data, without a transactions table, or when ``as_of`` cuts the data's own period."""
    if truth is None or "transactions" not in inputs.tables or inputs.as_of is None or inputs.as_of != inputs.data_end:
        return None
    rows = truth.rows.get("transactions", 0)
    return truth.purchases.noise_rows / rows if rows else None
