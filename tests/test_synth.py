"""The synthetic world plants what truth.json says.

Each planted effect is re-estimated from the written tables with an independent, standard estimator
and must lie within 4 standard errors of the truth (fixed seed, so the checks are deterministic).
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from cxresearch import synth
from cxresearch.synth import Effects, ensure_world, load_truth, make_world, write_world
from cxresearch.truth import ChurnTruth, PersonalData, SurveyTruth, Truth

N = 20_000
Z = 4.0


@pytest.fixture(scope="module")
def world():
    return make_world(n_customers=N, seed=7)


def within(estimate: float, truth: float, se: float, z: float = Z) -> bool:
    return abs(estimate - truth) <= z * se


def test_same_seed_same_files(tmp_path):
    a, b = make_world(300, seed=3), make_world(300, seed=3)
    for name in a.tables:
        pd.testing.assert_frame_equal(a[name], b[name])
    write_world(a, tmp_path / "a")
    write_world(b, tmp_path / "b")
    for f in (tmp_path / "a").iterdir():
        assert hashlib.sha256(f.read_bytes()).digest() == hashlib.sha256((tmp_path / "b" / f.name).read_bytes()).digest()
    c = make_world(300, seed=4)
    assert not a["transactions"]["amount"].equals(c["transactions"]["amount"])


def test_truth_is_typed_complete_and_round_trips_through_json(world, tmp_path):
    data = json.loads(json.dumps(world.truth.to_json(), allow_nan=False))
    for key in ("churn", "complaints", "purchases", "loyalty_pilot", "loyalty_enrolment", "survey", "focus_groups",
                "audits", "effects", "calendar", "rows"):
        assert key in data
    assert world.truth.rows == {k: len(v) for k, v in world.tables.items()}
    back = Truth.from_json(data)
    assert isinstance(back.survey, SurveyTruth) and isinstance(back.focus_groups.planted_pii, PersonalData)
    assert back.to_json() == data
    paths = write_world(world, tmp_path)
    assert load_truth({"truth": tmp_path / "truth.json"}) == back == world.truth and set(paths) == set(world.tables)
    del data["churn"]["fast_resolution_hours"]
    with pytest.raises(ValueError, match=r"truth\.churn\.fast_resolution_hours is missing"):
        Truth.from_json(data)


def test_one_builder_per_area_returns_its_tables_and_truth():
    fx = Effects()
    rng = np.random.default_rng(5)
    people = synth._population(rng, 200, fx)
    customers, churn_truth = synth.build_customers(people, fx)
    complaints, complaint_truth = synth.build_complaints(people)
    assert set(customers) == {"customers"} and isinstance(churn_truth, ChurnTruth) and len(customers["customers"]) == 200
    assert set(complaints) == {"complaints"} and complaint_truth.n_complaints == len(complaints["complaints"])
    buying = synth._buying(rng, people, fx)
    programme = synth._loyalty_programme(rng, people, buying, fx)
    events = synth._transaction_events(rng, buying, programme, fx)
    transactions, purchase_truth = synth.build_transactions(people, buying, events, fx)
    assert sum(purchase_truth.rows_by_kind.values()) == len(transactions["transactions"])
    pilot, pilot_truth = synth.build_pilot(people, programme, events, fx)
    enrolment, enrolment_truth = synth.build_enrolment(people, programme, events, fx)
    assert pilot_truth.n_units == len(pilot["loyalty_pilot"]) and set(enrolment) == {"loyalty_members", "loyalty_panel"}
    assert enrolment_truth.n_population == len(enrolment["loyalty_members"])
    fg_tables, fg_truth = synth.build_focus_groups(rng, fx, 2)
    assert set(fg_tables) == {"fg_transcripts", "fg_codes", "fg_codebook"} and fg_truth.n_sessions == 2
    audit_tables, audit_truth = synth.build_audits(rng, fx, people, 3, 2)
    assert set(audit_tables) == {"audits", "audit_criteria"} and audit_truth.n_audits == 6


def test_effect_overrides():
    fx = Effects.from_overrides({"hr_complaint_fast": 1.0, "hr_plan": {"annual": 1.0}})
    assert fx.hr_complaint_fast == 1.0 and fx.hr_plan == {"annual": 1.0, "two_year": 0.45}
    with pytest.raises(ValueError, match="Unknown planted effect 'hr_complain_fast'"):
        Effects.from_overrides({"hr_complain_fast": 1.0})
    w = make_world(200, seed=1, effects={"loyalty_uplift": 0.0})
    assert w.truth.loyalty_enrolment.true_att_spend_per_month == 0.0
    assert w.truth.loyalty_enrolment.pays_off is False


def test_every_customer_has_a_consistent_history(world):
    c, tx = world["customers"], world["transactions"]
    assert c["customer_id"].is_unique
    assert (c["churn_date"].dropna() > c.loc[c["churn_date"].notna(), "signup_date"]).all()
    assert (c["churn_date"].dropna() <= pd.Timestamp("2024-12-31")).all()
    first = tx[tx["amount"] > 0].groupby("customer_id")["timestamp"].min()
    assert (first.reindex(c["customer_id"]).dt.normalize().values == c["signup_date"].values).all()
    comp = world["complaints"].merge(c, on="customer_id")
    ended = comp["churn_date"].notna()
    assert (comp.loc[ended, "opened_at"].dt.normalize() <= comp.loc[ended, "churn_date"]).all()


def _long_format(world) -> pd.DataFrame:
    """Counting-process rows (start, stop] per customer, split at each complaint."""
    c = world["customers"].copy()
    end = pd.Timestamp(world.truth.calendar.observation_end) + pd.Timedelta(days=1)
    c["event"] = c["churn_date"].notna().astype(int)
    c["duration"] = ((c["churn_date"].fillna(end) - c["signup_date"]).dt.total_seconds() / 86400)
    comp = world["complaints"].merge(c[["customer_id", "signup_date", "duration"]], on="customer_id")
    comp["t"] = (comp["opened_at"] - comp["signup_date"]).dt.total_seconds() / 86400
    comp = comp[comp["t"] < comp["duration"]]
    fast = comp["resolved"] & (comp["hours_to_resolve"] <= 24)
    comp["state"] = np.where(~comp["resolved"], "unresolved", np.where(fast, "fast", "slow"))
    starts = pd.concat([c[["customer_id"]].assign(t=0.0, state="none"), comp[["customer_id", "t", "state"]]])
    starts = starts.sort_values(["customer_id", "t"]).reset_index(drop=True)
    starts = starts.merge(c[["customer_id", "duration", "event", "plan", "segment", "channel", "region", "store"]],
                          on="customer_id")
    nxt = starts.groupby("customer_id")["t"].shift(-1)
    starts["stop"] = nxt.fillna(starts["duration"])
    starts["event"] = np.where(nxt.isna(), starts["event"], 0)
    starts = starts[starts["stop"] > starts["t"]].rename(columns={"t": "start"})
    quality = world.truth.churn.store_quality
    starts["store_quality"] = starts["store"].map(quality)
    dummies = []
    for col, ref in world.truth.churn.reference_levels.items():
        d = pd.get_dummies(starts[col], prefix=col, prefix_sep="[", dtype=float).drop(columns=f"{col}[{ref}")
        dummies.append(d.rename(columns=lambda x: x + "]"))
    states = pd.get_dummies(starts["state"], dtype=float).drop(columns="none")
    return pd.concat([starts[["customer_id", "start", "stop", "event", "store_quality"]], *dummies, states], axis=1)


def test_churn_hazard_ratios_and_complaint_effects_are_recovered(world):
    # statsmodels' PHReg with delayed entry: the same counting-process likelihood as lifelines'
    # CoxTimeVaryingFitter (benchmarks/README.md: hazard ratios agree to 1e-7), about 10x faster here
    from statsmodels.duration.hazard_regression import PHReg

    long = _long_format(world)
    terms = [c for c in long.columns if c not in ("customer_id", "start", "stop", "event")]
    fit = PHReg(long["stop"], long[terms], status=long["event"], entry=long["start"], ties="efron").fit(
        method="newton", maxiter=200, tol=1e-10, disp=0)
    est = pd.Series(np.asarray(fit.params), index=terms)
    se = pd.Series(np.asarray(fit.bse), index=terms)
    truth = world.truth.churn
    planted = {**truth.hazard_ratios, "store_quality": truth.hr_store_quality_per_sd,
               "fast": truth.complaint_hazard_ratios["fast_resolved"],
               "slow": truth.complaint_hazard_ratios["slow_resolved"],
               "unresolved": truth.complaint_hazard_ratios["unresolved"]}
    for term, hr in planted.items():
        assert within(est[term], math.log(hr), se[term]), f"{term}: estimated HR {math.exp(est[term]):.3f}, planted {hr}"


def test_purchase_counts_follow_pareto_nbd(world):
    p = world.truth.purchases.pareto_nbd_params
    tx = world["transactions"]
    tx = tx[tx["amount"] > 0]
    first = tx.groupby("customer_id")["timestamp"].transform("min")
    t_weeks = 52
    in_window = tx["timestamp"] < first + pd.Timedelta(weeks=t_weeks)
    repeat = in_window.groupby(tx["customer_id"]).sum() - 1
    r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
    expected = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t_weeks)) ** (s - 1))
    assert within(repeat.mean(), expected, repeat.std() / math.sqrt(len(repeat)))
    # share with no repeat purchase in the window: P(X(t)=0) has no short closed form; check it is plausible
    assert 0.4 < (repeat == 0).mean() < 0.8


def test_spend_per_transaction_follows_gamma_gamma(world):
    g = world.truth.purchases.gamma_gamma_params
    tx = world["transactions"]
    first = tx[tx["amount"] > 0].sort_values("timestamp").groupby("customer_id")["amount"].first()
    expected = g["p"] * g["v"] / (g["q"] - 1)
    assert within(first.mean(), expected, first.std() / math.sqrt(len(first)))


def test_noise_rows_match_truth(world):
    kinds = world.truth.purchases.rows_by_kind
    tx = world["transactions"]
    assert (tx["amount"] < 0).sum() == kinds["return"]
    assert (tx["amount"] == 0).sum() == kinds["zero_amount"]


def test_complaint_resolution(world):
    comp = world["complaints"]
    fx = world.truth.effects
    share = comp["resolved"].mean()
    assert within(share, fx["p_resolved"], math.sqrt(share * (1 - share) / len(comp)))
    log_hours = np.log(comp["hours_to_resolve"].dropna())
    assert within(log_hours.mean(), math.log(fx["resolution_hours_median"]), log_hours.std() / math.sqrt(len(log_hours)),
                  z=6)  # hours are rounded to 0.1


def test_randomized_pilot_effect(world):
    pilot = world["loyalty_pilot"]
    truth = world.truth.loyalty_pilot
    a, b = pilot.loc[pilot["arm"] == "loyalty", "spend"], pilot.loc[pilot["arm"] == "control", "spend"]
    se = math.sqrt(a.var() / len(a) + b.var() / len(b))
    assert within(a.mean() - b.mean(), truth.true_ate_spend, se)
    # randomization balances the pre-period
    pa, pb = pilot.loc[pilot["arm"] == "loyalty", "pre_spend"], pilot.loc[pilot["arm"] == "control", "pre_spend"]
    assert stats.ttest_ind(pa, pb, equal_var=False).pvalue > 0.001


def test_open_enrolment_naive_gap_is_biased_and_did_recovers_att(world):
    members, panel = world["loyalty_members"], world["loyalty_panel"]
    truth = world.truth.loyalty_enrolment
    panel = panel.merge(members[["customer_id", "member"]], on="customer_id")
    pre = panel[panel["month"] < "2024-04"].groupby("customer_id")["spend"].mean()
    post = panel[panel["month"] >= "2024-07"].groupby("customer_id")["spend"].mean()
    member = members.set_index("customer_id")["member"].reindex(pre.index)
    naive = post[member == 1].mean() - post[member == 0].mean()
    naive_se = math.sqrt(post[member == 1].var() / (member == 1).sum() + post[member == 0].var() / (member == 0).sum())
    assert naive - 2 * naive_se > truth.true_att_spend_per_month, "members should look better than they are"
    change = post - pre
    did = change[member == 1].mean() - change[member == 0].mean()
    se = math.sqrt(change[member == 1].var() / (member == 1).sum() + change[member == 0].var() / (member == 0).sum())
    assert within(did, truth.true_att_spend_per_month, se)
    # heavier buyers self-select
    assert members.loc[members["member"] == 1, "pre_spend_12m"].mean() > members.loc[members["member"] == 0,
                                                                                     "pre_spend_12m"].mean()


def test_survey_negativity_ratio_and_positivity_bias(world):
    s = world["survey_responses"]
    truth = world.truth.survey
    drivers = list(truth.nps_model["driver_coefs"])
    x = sm.add_constant(s[[*drivers, "n_good", "n_bad"]].astype(float))
    fit = sm.OLS(s["nps"].astype(float), x).fit()
    g, b = fit.params["n_good"], fit.params["n_bad"]
    cov = fit.cov_params().loc[["n_good", "n_bad"], ["n_good", "n_bad"]].to_numpy()
    ratio = -b / g
    grad = np.array([b / g**2, -1 / g])
    se = math.sqrt(grad @ cov @ grad)
    assert within(ratio, truth.negativity_ratio_observed_scale_large_sample, se)
    assert abs(truth.negativity_ratio_observed_scale_large_sample - truth.negativity_ratio) < 1.0
    inv = world["survey_invitations"]
    assert inv["responded"].sum() == len(s)
    assert truth.positivity_bias_nps_points > 0
    assert math.isclose(sum(truth.driver_weights_large_sample.values()), truth.driver_r2_large_sample, rel_tol=1e-4)
    assert 0.05 <= truth.driver_group_share["tangible"] <= 0.10
    for email in truth.planted_pii:
        assert s["open_text"].str.contains(email, regex=False).any()


def test_worst_service_segment_churns_fastest(world):
    truth = world.truth
    worst = truth.survey.worst_service_segment
    s = world["survey_responses"].merge(world["customers"][["customer_id", "segment"]], on="customer_id")
    assert s.groupby("segment")["sat_1"].mean().idxmin() == worst
    hr = {k.split("[")[1][:-1]: v for k, v in truth.churn.hazard_ratios.items() if k.startswith("segment")}
    assert max(hr, key=hr.get) == worst


def test_coder_agreement(world):
    t, codes = world["fg_transcripts"], world["fg_codes"]
    expected = world.truth.focus_groups.expected_kappa
    kappas = {}
    for code in expected:
        grid = t[["session_id", "turn"]].copy()
        for coder in ("coder_a", "coder_b"):
            hit = codes[(codes["code"] == code) & (codes["coder"] == coder)][["session_id", "turn"]].assign(v=1)
            grid[coder] = grid.merge(hit, on=["session_id", "turn"], how="left")["v"].fillna(0).to_numpy()
        po = (grid["coder_a"] == grid["coder_b"]).mean()
        pa, pb = grid["coder_a"].mean(), grid["coder_b"].mean()
        pe = pa * pb + (1 - pa) * (1 - pb)
        kappas[code] = (po - pe) / (1 - pe)
    assert abs(np.mean(list(kappas.values())) - np.mean(list(expected.values()))) < 0.06
    assert min(kappas, key=kappas.get) in ("trust_brand", "feeling_ignored")


def test_transcripts_carry_the_planted_personal_data(world):
    text = " ".join(world["fg_transcripts"]["text"])
    pii = world.truth.focus_groups.planted_pii
    for value in pii.all():
        assert value in text


def test_audit_full_compliance(world):
    a = world["audits"]
    truth = world.truth.audits
    first = a.sort_values("auditor").groupby(["audit_id", "criterion"]).first().reset_index()
    must = first[first["criterion"].isin(truth.must_have)]
    full = must.groupby("audit_id")["score"].min()
    assert within(full.mean(), truth.share_full_compliance_observed, math.sqrt(0.25 / len(full)))
    assert truth.n_audits == a["audit_id"].nunique()


def test_ensure_world_caches(tmp_path):
    paths = ensure_world(seed=5, n_customers=100, root=tmp_path)
    stamp = paths["customers"].stat().st_mtime_ns
    again = ensure_world(seed=5, n_customers=100, root=tmp_path)
    assert again == paths and again["customers"].stat().st_mtime_ns == stamp
    other = ensure_world(seed=5, n_customers=100, effects={"hr_complaint_fast": 1.0}, root=tmp_path)
    assert other["customers"].parent != paths["customers"].parent


def test_planted_driver_weights_are_defined_without_the_survey_module():
    """The generator defines the planted weights itself (Johnson's R² decomposition of its population
    correlations); an independent computation (SVD of the data, Johnson 2000 as published) agrees, the
    weights add up to the R² of OLS, and uncorrelated drivers get their squared correlations."""
    import ast
    from pathlib import Path

    from cxresearch import synth

    tree = ast.parse(Path(synth.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "cxresearch.survey" not in imported  # the truth is not defined by the estimator it checks
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5000, 4))
    x[:, 1] += 0.8 * x[:, 0]
    y = x @ [0.6, 0.3, 0.2, 0.0] + rng.normal(size=5000)
    w = synth._planted_driver_weights(np.corrcoef(np.column_stack([x, y]), rowvar=False))
    xs, ys = (x - x.mean(0)) / x.std(0, ddof=1), (y - y.mean()) / y.std(ddof=1)
    u, _, vt = np.linalg.svd(xs, full_matrices=False)
    z = u @ vt * np.sqrt(len(xs) - 1)
    beta, lam = np.linalg.lstsq(z, ys, rcond=None)[0], np.linalg.lstsq(z, xs, rcond=None)[0]
    assert np.allclose(w, (lam**2).T @ (beta**2), atol=1e-10)
    assert math.isclose(w.sum(), sm.OLS(y, sm.add_constant(x)).fit().rsquared, rel_tol=1e-10)
    r = np.corrcoef(np.column_stack([x[:, [0, 2]], x[:, [0, 2]] @ [1.0, 1.0]]), rowvar=False)
    r[0, 1] = r[1, 0] = 0.0  # exactly uncorrelated drivers
    assert np.allclose(synth._planted_driver_weights(r), r[:2, 2] ** 2)
