"""Synthetic CX world: one coherent, seeded population of customers with planted effects.

Every table is generated from explicit processes whose true parameters are recorded as a typed
:class:`cxresearch.truth.Truth` (written as ``truth.json``), so each estimator in the suite can be checked
for parameter recovery. :func:`make_world` runs one builder per area from one random stream:
:func:`build_customers`, :func:`build_complaints`, :func:`build_transactions`, :func:`build_pilot`,
:func:`build_enrolment`, :func:`build_survey`, :func:`build_focus_groups`, :func:`build_audits`, each
returning its tables and its typed part of the truth.

Processes (time origin: each customer's signup; calendar window 2021-01-01 .. 2024-12-31)

* Contract churn: Cox proportional hazards with a Weibull baseline (months) and fixed covariates
  plan, segment, channel, region, home-store quality, plus a time-varying complaint state: after a
  complaint the hazard is multiplied by the planted ratio for that complaint's outcome (resolved
  fast, resolved slowly, unresolved) from the complaint's timestamp until the next complaint.
* Purchases: Pareto/NBD (purchase rate ~ Gamma(r, alpha) per week, silent dropout rate ~ Gamma(s,
  beta)) with Gamma-Gamma spend (p, q, gamma). The first purchase is at signup. The purchase process is
  independent of the contract (the shop is open to everyone), so both truths are exact. Before
  2024-01-01 (the loyalty pilot) transactions are the pure process; loyalty members then make extra
  purchases (superposed Poisson process), recorded in truth. Returns and zero-amount rows are added as
  noise that the clean-up rules must remove.
* Loyalty: a randomized pilot (2024-01-01, 13 weeks) and an open enrolment (2024-04-01) where heavier
  buyers self-select.
* Surveys, focus groups and service audits: see :func:`make_world` and ``data/README.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from cxresearch import truth as truth_module
from cxresearch.truth import (
    AuditTruth,
    Calendar,
    ChurnTruth,
    ComplaintTruth,
    EnrolmentTruth,
    FocusGroupTruth,
    PersonalData,
    PilotTruth,
    PurchaseTruth,
    SurveyTruth,
    Truth,
)

WORLD_START = pd.Timestamp("2021-01-01")
SIGNUP_END = pd.Timestamp("2023-01-01")  # signups in [WORLD_START, SIGNUP_END)
OBSERVATION_END = pd.Timestamp("2024-12-31")
PILOT_START = pd.Timestamp("2024-01-01")
PILOT_WEEKS = 13
ENROLMENT_START = pd.Timestamp("2024-04-01")
ENROLMENT_DAYS = 91  # members join on one of the 91 days from ENROLMENT_START (staggered over three months)
PANEL_START = pd.Timestamp("2023-04-01")  # monthly panel for the open enrolment
SURVEY_WAVES = ("2023-03-15", "2023-09-15", "2024-03-15", "2024-09-15")
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_WEEK = 7.0

SEGMENTS = ("mass", "value", "premium")
REGIONS = ("North", "South", "East", "West", "Central")
CHANNELS = ("online", "store", "referral", "partner")
PLANS = ("monthly", "annual", "two_year")
COMPLAINT_TYPES = ("billing", "product", "service", "delivery")
TOUCHPOINTS = ("website", "store", "call_centre", "delivery")
EMOTIONAL = ("emo_valued", "emo_trust", "emo_care")
TANGIBLE = ("tan_price", "tan_range", "tan_look")
STORES_PER_REGION = 4

TABLES = (
    "customers",
    "transactions",
    "complaints",
    "loyalty_pilot",
    "loyalty_members",
    "loyalty_panel",
    "survey_responses",
    "survey_invitations",
    "survey_items",
    "survey_margins",
    "fg_transcripts",
    "fg_codes",
    "fg_codebook",
    "audits",
    "audit_criteria",
)


@dataclass
class Effects:
    """Planted effects of the synthetic world; every field can be overridden.

    Hazard ratios are relative to the reference level named in ``*_reference``.
    Setting an effect to its null value (hazard ratio 1, uplift 0, ratio 1) removes it, so a test can
    watch a verdict flip.
    """

    # contract churn: Weibull baseline in months for the reference customer
    baseline_shape: float = 1.15
    baseline_scale_months: float = 36.0
    plan_reference: str = "monthly"
    hr_plan: dict[str, float] = field(default_factory=lambda: {"annual": 0.65, "two_year": 0.45})
    segment_reference: str = "mass"
    hr_segment: dict[str, float] = field(default_factory=lambda: {"value": 1.40, "premium": 0.75})
    channel_reference: str = "online"
    hr_channel: dict[str, float] = field(
        default_factory=lambda: {"store": 0.90, "referral": 0.75, "partner": 1.20}
    )
    region_reference: str = "North"
    hr_region: dict[str, float] = field(default_factory=lambda: {r: 1.0 for r in REGIONS[1:]})
    hr_store_quality_per_sd: float = 0.90
    # complaints: time-varying state after each complaint (reference: no complaint yet)
    complaints_per_year: float = 0.8
    complaint_rate_shape: float = 2.0  # gamma heterogeneity of the complaint rate
    p_resolved: float = 0.8
    resolution_hours_median: float = 20.0
    resolution_hours_sigma: float = 1.2
    fast_resolution_hours: float = 24.0
    hr_complaint_fast: float = 0.70
    hr_complaint_slow: float = 1.40
    hr_complaint_unresolved: float = 2.20
    # purchases: Pareto/NBD (weeks) + Gamma-Gamma spend
    pnbd_r: float = 0.55
    pnbd_alpha: float = 10.5
    pnbd_s: float = 0.60
    pnbd_beta: float = 12.0
    gg_p: float = 6.0
    gg_q: float = 4.0
    gg_gamma: float = 15.0
    p_return: float = 0.03
    p_zero_amount: float = 0.01
    # latent satisfaction: correlation with the purchase-rate rank, segment shifts
    satisfaction_purchase_corr: float = 0.4
    satisfaction_segment_shift: dict[str, float] = field(
        default_factory=lambda: {"mass": 0.0, "value": -0.5, "premium": 0.35}
    )
    # loyalty programme
    loyalty_uplift: float = 0.30  # relative increase of the purchase rate while a member
    pilot_share: float = 0.50  # share of eligible customers in the randomized pilot
    enrolment_target_share: float = 0.30
    enrolment_selection: float = 1.2  # log-odds of joining per SD of log expected weekly spend
    cost_per_member_month: float = 0.5
    margin: float = 0.40
    # survey
    survey_invite_share: float = 0.15
    response_intercept: float = -0.7
    response_satisfaction: float = 0.6  # log-odds per SD of latent satisfaction (positivity bias)
    response_purchase: float = 0.3  # log-odds per SD of log purchase rate
    nps_good_effect: float = 0.20  # NPS points per good experience
    negativity_ratio: float = 5.0  # one bad experience weighs this many good ones
    driver_coefs: dict[str, float] = field(
        default_factory=lambda: {
            "perc_website": 0.15,
            "perc_store": 0.10,
            "perc_call_centre": 0.35,
            "perc_delivery": 0.20,
            "emo_valued": 0.55,
            "emo_trust": 0.50,
            "emo_care": 0.40,
            "tan_price": 0.10,
            "tan_range": 0.05,
            "tan_look": 0.03,
        }
    )
    nps_noise_sd: float = 1.2
    # focus groups: probability that a coder copies the true code (expected kappa = q**2)
    coder_accuracy: dict[str, float] = field(
        default_factory=lambda: {
            "wait_time": 0.92,
            "slow_resolution": 0.88,
            "rude_staff": 0.90,
            "helpful_staff": 0.90,
            "price_unclear": 0.85,
            "good_value": 0.85,
            "app_problems": 0.92,
            "app_praise": 0.88,
            "trust_brand": 0.70,
            "feeling_ignored": 0.75,
        }
    )
    # audits
    audit_store_effect: float = 0.8  # log-odds of passing per SD of store quality
    auditor_noise_sd: float = 0.45  # scale-criterion noise of one auditor (ICC planted)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None = None) -> Effects:
        """Defaults updated with ``overrides``; dict fields are merged key by key."""
        effects = cls()
        for key, value in (overrides or {}).items():
            if not hasattr(effects, key):
                known = ", ".join(f.name for f in dataclasses.fields(cls))
                raise ValueError(f"Unknown planted effect {key!r}. Known effects: {known}.")
            current = getattr(effects, key)
            if isinstance(current, dict):
                if not isinstance(value, dict):
                    raise ValueError(f"Effect {key!r} takes a mapping like {current!r}, got {value!r}.")
                unknown = set(value) - set(current)
                if unknown and key not in ("hr_plan", "hr_segment", "hr_channel", "hr_region"):
                    raise ValueError(f"Effect {key!r} has no keys {sorted(unknown)}; known: {sorted(current)}.")
                value = {**current, **value}
            setattr(effects, key, value)
        return effects


@dataclass
class World:
    """All tables of one synthetic world plus the truth that generated them."""

    tables: dict[str, pd.DataFrame]
    truth: Truth

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]


# ---------------------------------------------------------------------------------------------
# helpers


def _days(ts: pd.Timestamp) -> float:
    return float((ts - WORLD_START) / pd.Timedelta(days=1))


def _to_datetime(days: np.ndarray) -> pd.DatetimeIndex:
    """Day offsets from WORLD_START (float) to timestamps rounded to the second."""
    seconds = np.round(np.asarray(days, dtype=float) * 86400.0).astype("int64")
    return pd.DatetimeIndex(WORLD_START.to_datetime64() + seconds.astype("timedelta64[s]"))


def _to_date(days: np.ndarray) -> pd.DatetimeIndex:
    return _to_datetime(days).normalize()


def _ids(prefix: str, n: int, width: int | None = None) -> np.ndarray:
    width = width or max(6, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _poisson_process(
    rng: np.random.Generator, rate: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Event times of independent homogeneous Poisson processes, one per unit.

    Returns (unit index, time), sorted by unit then time. ``rate`` is per unit of ``start``/``end``.
    """
    length = np.clip(end - start, 0.0, None)
    counts = rng.poisson(rate * length)
    unit = np.repeat(np.arange(len(rate)), counts)
    times = start[unit] + rng.random(unit.size) * length[unit]
    order = np.lexsort((times, unit))
    return unit[order], times[order]


def _logit_intercept(target: float, lin: np.ndarray) -> float:
    """Intercept a such that mean(expit(a + lin)) equals ``target`` (bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if special.expit(mid + lin).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _ordinal(latent: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Cut a latent continuous score into categories 1..len(cuts)+1."""
    return (np.searchsorted(cuts, latent) + 1).astype("int64")


FIRST_NAMES = (
    "Anna", "Maria", "Olga", "Elena", "Irina", "Natalia", "Svetlana", "Tatiana", "Ivan", "Sergey",
    "Dmitry", "Alexei", "Mikhail", "Pavel", "Oliver", "Emma", "James", "Sophie", "Lucas", "Mia",
)
LAST_NAMES = (
    "Petrova", "Ivanova", "Smirnova", "Kuznetsova", "Popova", "Sokolova", "Volkova", "Morozova",
    "Petrov", "Ivanov", "Smirnov", "Kuznetsov", "Popov", "Sokolov", "Smith", "Jones", "Taylor",
    "Brown", "Wilson", "Evans",
)


def _names(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first = np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n)]
    last = np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n)]
    name = np.char.add(np.char.add(first, " "), last)
    suffix = rng.integers(10, 9999, n).astype(str)
    email = np.char.add(np.char.add(np.char.lower(first), "."), np.char.lower(last))
    email = np.char.add(np.char.add(email, suffix), "@example.com")
    phone = _phones(rng.integers(0, 10, (n, 9)))
    return name, email, phone


def _phones(digits: np.ndarray) -> np.ndarray:
    """Russian mobile numbers like '+7 912 345-67-89' from a (n, 9) digit array."""
    d = digits.astype(str)
    out = np.full(len(d), "+7 9")
    for i, sep in enumerate(("", "", " ", "", "", "-", "", "-", "")):
        out = np.char.add(np.char.add(out, sep), d[:, i])
    return out


# ---------------------------------------------------------------------------------------------
# generators per area


def _customers(rng: np.random.Generator, n: int, fx: Effects) -> dict[str, np.ndarray]:
    signup = rng.random(n) * _days(SIGNUP_END)
    segment = rng.choice(SEGMENTS, n, p=[0.6, 0.25, 0.15])
    region = rng.choice(REGIONS, n, p=[0.25, 0.2, 0.2, 0.2, 0.15])
    region_pos = pd.Categorical(region, categories=REGIONS).codes.astype(int)
    store_num = region_pos * STORES_PER_REGION + rng.integers(0, STORES_PER_REGION, n)
    channel = rng.choice(CHANNELS, n, p=[0.45, 0.25, 0.15, 0.15])
    plan = rng.choice(PLANS, n, p=[0.5, 0.35, 0.15])
    return {
        "signup": signup,
        "segment": segment,
        "region": region,
        "store_num": store_num,
        "channel": channel,
        "plan": plan,
    }


def _linear_predictor(c: dict[str, np.ndarray], store_quality: np.ndarray, fx: Effects) -> np.ndarray:
    eta = np.zeros(len(c["signup"]))
    for col, hrs in (("plan", fx.hr_plan), ("segment", fx.hr_segment), ("channel", fx.hr_channel),
                     ("region", fx.hr_region)):
        for level, hr in hrs.items():
            eta += np.where(c[col] == level, math.log(hr), 0.0)
    eta += math.log(fx.hr_store_quality_per_sd) * store_quality[c["store_num"]]
    return eta


def _churn_with_complaints(
    rng: np.random.Generator, c: dict[str, np.ndarray], eta: np.ndarray, fx: Effects
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Churn time (days after signup, inf = censored) with time-varying complaint states."""
    n = len(eta)
    end = _days(OBSERVATION_END) - c["signup"]  # follow-up in days
    rate = rng.gamma(fx.complaint_rate_shape, fx.complaints_per_year / fx.complaint_rate_shape, n) / 365.25
    unit, t = _poisson_process(rng, rate, np.zeros(n), end)
    m = unit.size
    resolved = rng.random(m) < fx.p_resolved
    hours = np.exp(math.log(fx.resolution_hours_median) + fx.resolution_hours_sigma * rng.standard_normal(m))
    hours = np.round(hours, 1)
    fast = resolved & (hours <= fx.fast_resolution_hours)
    mult = np.where(~resolved, fx.hr_complaint_unresolved, np.where(fast, fx.hr_complaint_fast,
                                                                      fx.hr_complaint_slow))
    # segments per customer: [0, t1), [t1, t2), ..., [tk, end)
    seg_unit = np.concatenate([np.arange(n), unit])
    seg_start = np.concatenate([np.zeros(n), t])
    seg_mult = np.concatenate([np.ones(n), mult])
    order = np.lexsort((seg_start, seg_unit))
    seg_unit, seg_start, seg_mult = seg_unit[order], seg_start[order], seg_mult[order]
    nxt_same = np.r_[seg_unit[1:] == seg_unit[:-1], False]
    seg_end = np.where(nxt_same, np.r_[seg_start[1:], 0.0], end[seg_unit])
    k, scale = fx.baseline_shape, fx.baseline_scale_months * DAYS_PER_MONTH
    h0 = lambda x: (x / scale) ** k  # noqa: E731
    risk = np.exp(eta[seg_unit]) * seg_mult
    dH = risk * (h0(seg_end) - h0(seg_start))
    cum = np.cumsum(dH)
    first = np.r_[0, np.flatnonzero(seg_unit[1:] != seg_unit[:-1]) + 1]
    offset = np.repeat(cum[first] - dH[first], np.diff(np.r_[first, seg_unit.size]))
    cum_within = cum - offset
    before = cum_within - dH
    e = rng.exponential(1.0, n)[seg_unit]
    hit = (cum_within >= e) & (before < e)
    churn = np.full(n, np.inf)
    hu = seg_unit[hit]
    target = h0(seg_start[hit]) + (e[hit] - before[hit]) / risk[hit]
    churn[hu] = scale * target ** (1.0 / k)
    keep = t < churn[unit]
    complaints = {
        "unit": unit[keep],
        "t": t[keep],
        "type": rng.choice(COMPLAINT_TYPES, m, p=[0.3, 0.25, 0.3, 0.15])[keep],
        "resolved": resolved[keep],
        "hours": np.where(resolved, hours, np.nan)[keep],
        "fast": fast[keep],
    }
    return churn, end, complaints


def _purchases(rng: np.random.Generator, n: int, signup: np.ndarray, fx: Effects) -> dict[str, np.ndarray]:
    lam = rng.gamma(fx.pnbd_r, 1.0 / fx.pnbd_alpha, n)  # per week
    mu = rng.gamma(fx.pnbd_s, 1.0 / fx.pnbd_beta, n)
    tau = rng.exponential(1.0, n) / mu * DAYS_PER_WEEK  # purchase lifetime in days
    nu = rng.gamma(fx.gg_q, 1.0 / fx.gg_gamma, n)
    end = np.minimum(signup + tau, _days(OBSERVATION_END) + 1.0)
    unit, t = _poisson_process(rng, lam / DAYS_PER_WEEK, signup, end)
    return {"lam": lam, "mu": mu, "tau": tau, "nu": nu, "death": signup + tau, "unit": unit, "t": t}


def _amounts(rng: np.random.Generator, p: float, nu: np.ndarray) -> np.ndarray:
    return np.round(rng.gamma(p, 1.0 / nu), 2)


@dataclass
class _People:
    """The customers every area shares: attributes, contracts, stores and complaints (generator state)."""

    c: dict[str, np.ndarray]  # signup (days), segment, region, store_num, channel, plan
    customer_id: np.ndarray
    store_names: np.ndarray
    store_quality: np.ndarray
    churn: np.ndarray  # days after signup; inf = still a customer at the end
    churned: np.ndarray
    complaints: pd.DataFrame
    complaint_draws: dict[str, np.ndarray]  # unit, t, type, resolved, hours, fast
    contacts: tuple[np.ndarray, np.ndarray, np.ndarray]  # name, e-mail, phone

    @property
    def n(self) -> int:
        return len(self.customer_id)


@dataclass
class _Buying:
    """The latent purchase process (Pareto/NBD rates, Gamma-Gamma spend) and latent satisfaction."""

    lam: np.ndarray  # purchase rate per week
    nu: np.ndarray  # spend rate: amount ~ Gamma(p, nu)
    death: np.ndarray  # end of the purchase life (days)
    sat: np.ndarray  # latent satisfaction
    unit: np.ndarray  # repeat purchases: customer index and day
    t: np.ndarray
    spend_shape: float  # Gamma-Gamma p

    @property
    def mean_spend(self) -> np.ndarray:
        return self.spend_shape / self.nu


@dataclass
class _Programme:
    """Who is in the loyalty pilot and the open enrolment, and their extra purchases."""

    pilot: np.ndarray
    arm: np.ndarray
    expected_effect: np.ndarray
    extra_spend: np.ndarray
    extra_visits: np.ndarray
    population: np.ndarray
    member: np.ndarray
    enrol_day: np.ndarray
    att_month: float
    ate_month: float
    events: tuple[np.ndarray, np.ndarray, np.ndarray]  # unit, day, kind of every purchase so far


@dataclass
class _Events:
    """Every transaction row: purchases with amounts, returns and zero rows (kind 0 first purchase, 1 repeat,
    2 pilot extra, 3 member extra, 4 return, 5 zero amount), and the purchases alone before noise was added."""

    unit: np.ndarray
    t: np.ndarray
    amount: np.ndarray
    kind: np.ndarray
    purchase_t: np.ndarray
    purchase_kind: np.ndarray

    @property
    def real(self) -> np.ndarray:
        """Rows that are purchases (not returns or zero rows)."""
        return self.kind <= 3


def make_world(
    n_customers: int = 5000,
    seed: int = 20240101,
    effects: Effects | dict[str, Any] | None = None,
    n_fg_sessions: int = 6,
    n_stores_audited: int | None = None,
    audits_per_store: int = 12,
) -> World:
    """Generate a coherent synthetic CX world, area by area from one random stream.

    Parameters
    ----------
    n_customers
        Number of customers (1,000,000 works; tables scale linearly).
    seed
        Seed of the random generator; the same seed and effects give identical tables.
    effects
        :class:`Effects` or a mapping of overrides of the planted effects.
    n_fg_sessions, n_stores_audited, audits_per_store
        Sizes of the focus-group and audit tables (independent of ``n_customers``).

    Returns
    -------
    World
        ``tables`` (name -> DataFrame) and ``truth`` (:class:`cxresearch.truth.Truth`).
    """
    if n_customers < 50:
        raise ValueError("n_customers must be at least 50 so that every segment and arm is populated.")
    fx = effects if isinstance(effects, Effects) else Effects.from_overrides(effects)
    rng = np.random.default_rng(seed)
    # the shared state, drawn in this order from the one random stream
    people = _population(rng, int(n_customers), fx)
    buying = _buying(rng, people, fx)
    programme = _loyalty_programme(rng, people, buying, fx)
    events = _transaction_events(rng, buying, programme, fx)
    # one builder per area: (its tables, its planted truth)
    customers, churn_truth = build_customers(people, fx)
    complaints, complaint_truth = build_complaints(people)
    transactions, purchase_truth = build_transactions(people, buying, events, fx)
    pilot, pilot_truth = build_pilot(people, programme, events, fx)
    enrolment, enrolment_truth = build_enrolment(people, programme, events, fx)
    survey, survey_truth = build_survey(rng, fx, people, buying)
    focus_groups, fg_truth = build_focus_groups(rng, fx, n_fg_sessions)
    audits, audit_truth = build_audits(rng, fx, people, n_stores_audited, audits_per_store)
    tables = {**customers, **complaints, **transactions, **pilot, **enrolment, **survey, **focus_groups, **audits}
    tables = {name: tables[name] for name in TABLES}
    truth = Truth(seed, int(n_customers), fx.to_dict(), CALENDAR, churn_truth, complaint_truth, purchase_truth,
                  pilot_truth, enrolment_truth, survey_truth, fg_truth, audit_truth,
                  {k: int(len(v)) for k, v in tables.items()})
    # through JSON and back: NumPy numbers become Python ones and undefined values None, as when read from disk
    return World(tables=tables, truth=Truth.from_json(truth.to_json()))


CALENDAR = Calendar(str(WORLD_START.date()), str((SIGNUP_END - pd.Timedelta(days=1)).date()),
                    str(OBSERVATION_END.date()), str(PILOT_START.date()), PILOT_WEEKS, str(ENROLMENT_START.date()),
                    str((ENROLMENT_START + pd.Timedelta(days=ENROLMENT_DAYS - 1)).date()), str(PANEL_START.date()),
                    list(SURVEY_WAVES))


def _population(rng: np.random.Generator, n: int, fx: Effects) -> _People:
    """Customers, their stores, contracts (Cox churn with a time-varying complaint state), complaints and
    contact details: every draw the customer and complaint tables need."""
    c = _customers(rng, n, fx)
    n_stores = len(REGIONS) * STORES_PER_REGION
    store_quality = rng.standard_normal(n_stores)
    eta = _linear_predictor(c, store_quality, fx)
    churn, _, comp = _churn_with_complaints(rng, c, eta, fx)
    customer_id = _ids("C", n, width=7)
    contacts = _names(rng, n)
    cu = comp["unit"]
    complaints = pd.DataFrame(
        {
            "complaint_id": _ids("K", cu.size, width=8),
            "customer_id": customer_id[cu],
            "opened_at": _to_datetime(c["signup"][cu] + comp["t"]),
            "type": comp["type"],
            "resolved": comp["resolved"],
            "hours_to_resolve": comp["hours"],
        }
    )
    return _People(c, customer_id, _ids("S", n_stores, width=2), store_quality, churn, np.isfinite(churn),
                   complaints, comp, contacts)


def build_customers(people: _People, fx: Effects) -> tuple[dict[str, pd.DataFrame], ChurnTruth]:
    """The customer table (with personal data, so tests can prove reports never show it) and the churn truth."""
    c, churn, churned, store_names = people.c, people.churn, people.churned, people.store_names
    name, email, phone = people.contacts
    churn_days = np.where(churned, c["signup"] + np.where(churned, churn, 0.0), np.nan)
    customers = pd.DataFrame(
        {
            "customer_id": people.customer_id,
            "name": name,
            "email": email,
            "phone": phone,
            "signup_date": _to_date(c["signup"]),
            "segment": c["segment"],
            "region": c["region"],
            "store": store_names[c["store_num"]],
            "channel": c["channel"],
            "plan": c["plan"],
            "churn_date": pd.Series(_to_date(np.nan_to_num(churn_days))).where(churned).values,
        }
    )
    # a churn on the signup day would give a zero duration: keep the day-level date consistent
    same_day = customers["churn_date"] == customers["signup_date"]
    customers.loc[same_day, "churn_date"] = customers.loc[same_day, "signup_date"] + pd.Timedelta(days=1)
    truth = ChurnTruth(
        model="Cox PH, Weibull baseline in months, time-varying complaint state",
        baseline_shape=fx.baseline_shape,
        baseline_scale_months=fx.baseline_scale_months,
        hazard_ratios={
            **{f"plan[{k}]": v for k, v in fx.hr_plan.items()},
            **{f"segment[{k}]": v for k, v in fx.hr_segment.items()},
            **{f"channel[{k}]": v for k, v in fx.hr_channel.items()},
            **{f"region[{k}]": v for k, v in fx.hr_region.items()},
        },
        reference_levels={"plan": fx.plan_reference, "segment": fx.segment_reference,
                          "channel": fx.channel_reference, "region": fx.region_reference},
        hr_store_quality_per_sd=fx.hr_store_quality_per_sd,
        store_quality=dict(zip(store_names.tolist(), np.round(people.store_quality, 6).tolist(), strict=True)),
        complaint_hazard_ratios={"fast_resolved": fx.hr_complaint_fast, "slow_resolved": fx.hr_complaint_slow,
                                 "unresolved": fx.hr_complaint_unresolved},
        complaint_state_rule="state of the most recent complaint applies from its timestamp on; "
        f"fast = resolved within {fx.fast_resolution_hours:g} hours",
        fast_resolution_hours=fx.fast_resolution_hours,
        n_churned=int(churned.sum()),
        churn_rate=float(churned.mean()),
    )
    return {"customers": customers}, truth


def build_complaints(people: _People) -> tuple[dict[str, pd.DataFrame], ComplaintTruth]:
    """The complaint table (type, resolved, hours to resolve) and how many were resolved, and fast."""
    comp = people.complaint_draws
    n = comp["unit"].size
    truth = ComplaintTruth(n, float(comp["resolved"].mean()) if n else None, float(comp["fast"].mean()) if n else None)
    return {"complaints": people.complaints}, truth


def _buying(rng: np.random.Generator, people: _People, fx: Effects) -> _Buying:
    """Latent purchase rates and lives (Pareto/NBD), spend rates, and satisfaction (a Gaussian copula with the
    purchase-rate rank, plus segment shifts)."""
    n, c = people.n, people.c
    pur = _purchases(rng, n, c["signup"], fx)
    lam = pur["lam"]
    z_lam = stats.norm.ppf(np.clip(stats.gamma.cdf(lam, fx.pnbd_r, scale=1 / fx.pnbd_alpha), 1e-12, 1 - 1e-12))
    rho = fx.satisfaction_purchase_corr
    shift = np.array([fx.satisfaction_segment_shift.get(s, 0.0) for s in SEGMENTS])
    seg_pos = pd.Categorical(c["segment"], categories=SEGMENTS).codes.astype(int)
    sat = rho * z_lam + math.sqrt(1 - rho**2) * rng.standard_normal(n) + shift[seg_pos]
    return _Buying(lam, pur["nu"], pur["death"], sat, pur["unit"], pur["t"], fx.gg_p)


def _loyalty_programme(rng: np.random.Generator, people: _People, buying: _Buying, fx: Effects) -> _Programme:
    """The randomized pilot and the open enrolment (heavier buyers self-select), with members' extra purchases."""
    n, c, churn, churned = people.n, people.c, people.churn, people.churned
    lam, nu, mean_spend = buying.lam, buying.nu, buying.mean_spend
    tx_unit = np.concatenate([np.arange(n), buying.unit])
    tx_t = np.concatenate([c["signup"], buying.t])
    tx_src = np.concatenate([np.zeros(n, "int8"), np.ones(buying.unit.size, "int8")])  # 0 first, 1 repeat

    # randomized pilot
    p0, p1 = _days(PILOT_START), _days(PILOT_START) + PILOT_WEEKS * DAYS_PER_WEEK
    bought_2023 = np.zeros(n, bool)
    in_2023 = (tx_t >= _days(pd.Timestamp("2023-01-01"))) & (tx_t < p0)
    bought_2023[tx_unit[in_2023]] = True
    contract_active = c["signup"] + np.where(churned, churn, np.inf) > p0
    eligible = np.flatnonzero(bought_2023 & contract_active)
    pilot = np.sort(rng.choice(eligible, int(round(fx.pilot_share * eligible.size)), replace=False))
    arm = np.where(rng.random(pilot.size) < 0.5, "loyalty", "control")
    alive_weeks = np.clip(np.minimum(buying.death[pilot], p1) - p0, 0, None) / DAYS_PER_WEEK
    extra_rate = fx.loyalty_uplift * lam[pilot] / DAYS_PER_WEEK
    x_unit, x_t = _poisson_process(rng, extra_rate, np.full(pilot.size, p0), np.minimum(buying.death[pilot], p1))
    x_amount = _amounts(rng, fx.gg_p, nu[pilot][x_unit])
    extra_spend = np.bincount(x_unit, weights=x_amount, minlength=pilot.size)
    extra_visits = np.bincount(x_unit, minlength=pilot.size)
    treated = arm == "loyalty"
    tx_unit = np.concatenate([tx_unit, pilot[x_unit[treated[x_unit]]]])
    tx_t = np.concatenate([tx_t, x_t[treated[x_unit]]])
    tx_src = np.concatenate([tx_src, np.full(int(treated[x_unit].sum()), 2, "int8")])
    expected_effect = fx.loyalty_uplift * lam[pilot] * alive_weeks * mean_spend[pilot]

    # open enrolment
    e0 = _days(ENROLMENT_START)
    panel_start, panel_end = _days(PANEL_START), _days(OBSERVATION_END) + 1.0
    in_pilot = np.zeros(n, bool)
    in_pilot[pilot] = True
    # population: outside the pilot, purchase life spanning the whole panel window, signed up before it
    population = np.flatnonzero(~in_pilot & (buying.death > panel_end) & (c["signup"] < panel_start))
    heavy = np.log(lam[population] * mean_spend[population])
    heavy_z = (heavy - heavy.mean()) / (heavy.std() or 1.0)
    lin = fx.enrolment_selection * heavy_z
    a0 = _logit_intercept(fx.enrolment_target_share, lin) if population.size else 0.0
    member = rng.random(population.size) < special.expit(a0 + lin)
    enrol_day = e0 + np.floor(rng.random(population.size) * float(ENROLMENT_DAYS))
    members = population[member]
    m_unit, m_t = _poisson_process(rng, fx.loyalty_uplift * lam[members] / DAYS_PER_WEEK,
                                   enrol_day[member], np.full(members.size, panel_end))
    tx_unit = np.concatenate([tx_unit, members[m_unit]])
    tx_t = np.concatenate([tx_t, m_t])
    tx_src = np.concatenate([tx_src, np.full(m_unit.size, 3, "int8")])
    weeks_per_month = DAYS_PER_MONTH / DAYS_PER_WEEK
    att_month = fx.loyalty_uplift * float(np.mean(lam[members] * mean_spend[members])) * weeks_per_month
    ate_month = fx.loyalty_uplift * float(np.mean(lam[population] * mean_spend[population])) * weeks_per_month
    return _Programme(pilot, arm, expected_effect, extra_spend, extra_visits, population, member, enrol_day,
                      att_month, ate_month, (tx_unit, tx_t, tx_src))


def _transaction_events(rng: np.random.Generator, buying: _Buying, programme: _Programme, fx: Effects) -> _Events:
    """Amounts of every purchase (Gamma-Gamma), then returns and zero-amount rows added as noise."""
    tx_unit, tx_t, tx_src = programme.events
    order = np.lexsort((tx_t, tx_unit))
    tx_unit, tx_t, tx_src = tx_unit[order], tx_t[order], tx_src[order]
    amount = _amounts(rng, fx.gg_p, buying.nu[tx_unit])
    amount = np.maximum(amount, 0.01)
    panel_end = _days(OBSERVATION_END) + 1.0
    is_return = rng.random(tx_unit.size) < fx.p_return
    ret_t = tx_t[is_return] + 1 + rng.random(int(is_return.sum())) * 20
    ret_ok = ret_t < panel_end
    is_zero = rng.random(tx_unit.size) < fx.p_zero_amount
    all_unit = np.concatenate([tx_unit, tx_unit[is_return][ret_ok], tx_unit[is_zero]])
    all_t = np.concatenate([tx_t, ret_t[ret_ok], tx_t[is_zero] + rng.random(int(is_zero.sum())) * 0.01])
    all_amount = np.concatenate([amount, -amount[is_return][ret_ok], np.zeros(int(is_zero.sum()))])
    all_kind = np.concatenate([tx_src, np.full(int(ret_ok.sum()), 4, "int8"),
                               np.full(int(is_zero.sum()), 5, "int8")])
    return _Events(all_unit, all_t, all_amount, all_kind, tx_t, tx_src)


def build_transactions(people: _People, buying: _Buying, events: _Events, fx: Effects
                       ) -> tuple[dict[str, pd.DataFrame], PurchaseTruth]:
    """The transaction log (every purchase, return and zero row, by customer and time) and the buying truth."""
    order = np.lexsort((events.t, events.unit))
    transactions = pd.DataFrame(
        {
            "transaction_id": _ids("T", events.unit.size, width=9),
            "customer_id": people.customer_id[events.unit[order]],
            "timestamp": _to_datetime(events.t[order]),
            "amount": events.amount[order],
        }
    )
    kinds = events.kind[order]
    tx_src, tx_t = events.purchase_kind, events.purchase_t
    pure_end = _days(PILOT_START)
    repeat_pure = (tx_src == 1) & (tx_t < pure_end)
    truth = PurchaseTruth(
        model="Pareto/NBD (weeks) with Gamma-Gamma spend; first purchase at signup",
        pareto_nbd_params={"r": fx.pnbd_r, "alpha": fx.pnbd_alpha, "s": fx.pnbd_s, "beta": fx.pnbd_beta},
        gamma_gamma_params={"p": fx.gg_p, "q": fx.gg_q, "v": fx.gg_gamma},
        pure_process_until=str(PILOT_START.date()),
        n_repeat_transactions_before_pilot=int(repeat_pure.sum()),
        share_alive_at_pilot_start=float(np.mean(buying.death > pure_end)),
        mean_purchase_rate_per_week=float(buying.lam.mean()),
        rows_by_kind={name: int((kinds == k).sum()) for k, name in enumerate(
            ("first", "repeat", "loyalty_pilot_extra", "loyalty_member_extra", "return", "zero_amount"))},
        rule="returns (amount < 0) and zero amounts are noise: drop them to recover the parameters",
        satisfaction_purchase_rank_corr=fx.satisfaction_purchase_corr,
    )
    return {"transactions": transactions}, truth


def build_pilot(people: _People, programme: _Programme, events: _Events, fx: Effects
                ) -> tuple[dict[str, pd.DataFrame], PilotTruth]:
    """The randomized pilot's customer table (arm, spend and visits before and during it) and its truth."""
    n, c, churn, churned, customer_id = people.n, people.c, people.churn, people.churned, people.customer_id
    pilot, arm = programme.pilot, programme.arm
    real = events.real
    all_unit, all_t, all_amount = events.unit, events.t, events.amount
    p0, p1 = _days(PILOT_START), _days(PILOT_START) + PILOT_WEEKS * DAYS_PER_WEEK
    pre0 = p0 - 52 * DAYS_PER_WEEK
    spend_pre = _window_sum(all_unit[real], all_t[real], all_amount[real], n, pre0, p0)
    visits_pre = _window_sum(all_unit[real], all_t[real], None, n, pre0, p0)
    spend_pilot = _window_sum(all_unit[real], all_t[real], all_amount[real], n, p0, p1)
    visits_pilot = _window_sum(all_unit[real], all_t[real], None, n, p0, p1)
    loyalty_pilot = pd.DataFrame(
        {
            "customer_id": customer_id[pilot],
            "arm": arm,
            "segment": c["segment"][pilot],
            "pre_spend": np.round(spend_pre[pilot], 2),
            "pre_visits": visits_pre[pilot].astype(int),
            "spend": np.round(spend_pilot[pilot], 2),
            "visits": visits_pilot[pilot].astype(int),
            "converted": (visits_pilot[pilot] > 0).astype(int),
            "retained": (c["signup"][pilot] + np.where(churned[pilot], churn[pilot], np.inf) > p1).astype(int),
        }
    )
    pilot_truth = PilotTruth(
        arms={"control": "control", "treatment": "loyalty"},
        n_units=int(pilot.size),
        uplift_purchase_rate=fx.loyalty_uplift,
        true_ate_spend=float(programme.expected_effect.mean()) if pilot.size else None,
        realized_sate_spend=float(programme.extra_spend.mean()) if pilot.size else None,
        realized_sate_visits=float(programme.extra_visits.mean()) if pilot.size else None,
        estimand="mean over pilot customers of extra 13-week spend (expected given latent rates)",
        retention_effect=0.0,
        cost_per_member_month=fx.cost_per_member_month,
        margin=fx.margin,
    )
    return {"loyalty_pilot": loyalty_pilot}, pilot_truth


def build_enrolment(people: _People, programme: _Programme, events: _Events, fx: Effects
                    ) -> tuple[dict[str, pd.DataFrame], EnrolmentTruth]:
    """The open enrolment: its members table (who joined, when, their past spend) and monthly panel."""
    n, c, customer_id = people.n, people.c, people.customer_id
    population, member, enrol_day = programme.population, programme.member, programme.enrol_day
    real = events.real
    all_unit, all_t, all_amount = events.unit, events.t, events.amount
    e0 = _days(ENROLMENT_START)
    pre_e0 = e0 - 365.25
    members_tbl = pd.DataFrame(
        {
            "customer_id": customer_id[population],
            "member": member.astype(int),
            "enrol_date": pd.Series(_to_date(enrol_day)).where(member).values,
            "segment": c["segment"][population],
            "region": c["region"][population],
            "tenure_months": np.round((e0 - c["signup"][population]) / DAYS_PER_MONTH, 1),
            "pre_spend_12m": np.round(_window_sum(all_unit[real], all_t[real], all_amount[real], n,
                                                  pre_e0, e0)[population], 2),
            "pre_visits_12m": _window_sum(all_unit[real], all_t[real], None, n, pre_e0, e0)[population]
            .astype(int),
        }
    )
    loyalty_panel = _monthly_panel(all_unit[real], all_t[real], all_amount[real], population, customer_id)
    members_n = int(member.sum())
    post_months = (_days(OBSERVATION_END) + 1.0 - enrol_day[member]) / DAYS_PER_MONTH
    profit = fx.margin * programme.att_month - fx.cost_per_member_month
    enrolment_truth = EnrolmentTruth(
        population="customers outside the pilot whose purchase life spans the panel window",
        n_population=int(population.size),
        n_members=members_n,
        selection=f"log-odds of joining rise {fx.enrolment_selection} per SD of log expected spend",
        true_att_spend_per_month=programme.att_month,
        true_ate_spend_per_month=programme.ate_month,
        naive_gap_expectation_note="members are heavier buyers: naive gap > ATT",
        cost_per_member_month=fx.cost_per_member_month,
        margin=fx.margin,
        true_profit_per_member_month=profit,
        true_roi=profit / fx.cost_per_member_month if fx.cost_per_member_month else None,
        pays_off=bool(profit > 0),
        mean_post_months=float(post_months.mean()) if members_n else None,
        parallel_trends="hold by construction (stationary purchase rates in the population)",
    )
    return {"loyalty_members": members_tbl, "loyalty_panel": loyalty_panel}, enrolment_truth


def _window_sum(unit, t, weights, n, start, end) -> np.ndarray:
    sel = (t >= start) & (t < end)
    w = None if weights is None else weights[sel]
    return np.bincount(unit[sel], weights=w, minlength=n).astype(float)


def _monthly_panel(unit, t, amount, population, customer_id) -> pd.DataFrame:
    months = pd.period_range(PANEL_START, OBSERVATION_END, freq="M")
    starts = np.array([_days(m.start_time) for m in months] + [_days(OBSERVATION_END) + 1.0])
    pos = np.full(len(customer_id), -1)
    pos[population] = np.arange(population.size)
    sel = (pos[unit] >= 0) & (t >= starts[0]) & (t < starts[-1])
    month_idx = np.searchsorted(starts, t[sel], side="right") - 1
    cell = pos[unit[sel]] * len(months) + month_idx
    size = population.size * len(months)
    spend = np.bincount(cell, weights=amount[sel], minlength=size)
    visits = np.bincount(cell, minlength=size)
    return pd.DataFrame(
        {
            "customer_id": np.repeat(customer_id[population], len(months)),
            "month": np.tile(months.strftime("%Y-%m"), population.size),
            "spend": np.round(spend, 2),
            "visits": visits.astype(int),
        }
    )


SURVEY_TEXT = {
    "promoter": (
        "Great service, the staff really care.",
        "Fast delivery and friendly people.",
        "Всё отлично, быстро решили мой вопрос.",
        "I trust this company and recommend it to friends.",
    ),
    "passive": (
        "It is fine, nothing special.",
        "Prices could be clearer.",
        "Нормально, но приложение иногда зависает.",
        "Delivery was late once, otherwise ok.",
    ),
    "detractor": (
        "Waited forty minutes on the phone.",
        "Nobody answered my complaint.",
        "Очень долго ждал ответа, никто не перезвонил.",
        "The app keeps crashing and support is rude.",
    ),
}


def build_survey(rng: np.random.Generator, fx: Effects, people: _People, buying: _Buying
                 ) -> tuple[dict[str, pd.DataFrame], SurveyTruth]:
    """Survey waves: invitations, answers (touchpoints, attributes, satisfaction, loyalty, NPS, experiences),
    the item dictionary and population margins; respondents skew satisfied (positivity bias)."""
    c, customer_id, churn, complaints = people.c, people.customer_id, people.churn, people.complaints
    sat, lam = buying.sat, buying.lam
    n = len(customer_id)
    waves = [pd.Timestamp(w) for w in SURVEY_WAVES]
    rows = []
    invitations = []
    invited_total = 0
    all_nps, resp_nps = [], []
    z_loglam = (np.log(lam) - np.log(lam).mean()) / np.log(lam).std()
    comp_unit = pd.Series(complaints["customer_id"].to_numpy())
    comp_day = (complaints["opened_at"] - WORLD_START).dt.total_seconds().to_numpy() / 86400.0
    id_to_idx = pd.Series(np.arange(n), index=customer_id)
    comp_idx = id_to_idx.reindex(comp_unit).to_numpy()
    coefs = fx.driver_coefs
    drivers = list(coefs)
    cuts7 = np.array([-2.2, -1.5, -0.8, -0.1, 0.6, 1.4])  # 7-point scale, skewed positive
    cuts5 = np.array([-1.9, -1.0, -0.1, 0.9])  # 5-point scale
    exp_shift = {"website": 0.2, "store": 0.0, "call_centre": 0.6, "delivery": 0.4}
    load = {"website": 0.6, "store": 0.55, "call_centre": 0.7, "delivery": 0.6}
    gamma_good = fx.nps_good_effect
    gamma_bad = fx.nps_good_effect * fx.negativity_ratio

    def answers(idx: np.ndarray, wave_day: float) -> dict[str, np.ndarray]:
        m = idx.size
        s = sat[idx] + 0.3 * rng.standard_normal(m)
        out: dict[str, np.ndarray] = {}
        for tp in TOUCHPOINTS:
            out[f"perc_{tp}"] = _ordinal(0.3 + load[tp] * s + 0.75 * rng.standard_normal(m), cuts7)
            out[f"exp_{tp}"] = _ordinal(0.3 + exp_shift[tp] + 0.3 * s + 0.8 * rng.standard_normal(m), cuts7)
        for it in EMOTIONAL:
            out[it] = _ordinal(0.2 + 0.75 * s + 0.6 * rng.standard_normal(m), cuts5)
        for it in TANGIBLE:
            out[it] = _ordinal(0.3 + 0.35 * s + 0.9 * rng.standard_normal(m), cuts5)
        for k in (1, 2, 3):
            latent = 0.2 + 0.8 * s + 0.55 * rng.standard_normal(m)
            out[f"sat_{k}"] = _ordinal(-latent if k == 3 else latent, cuts5)
        for k in (1, 2):
            out[f"loy_{k}"] = _ordinal(0.2 + 0.65 * s + 0.7 * rng.standard_normal(m), cuts5)
        recent = np.zeros(n)
        sel = (comp_day < wave_day) & (comp_day >= wave_day - 91)
        np.add.at(recent, comp_idx[sel], 1.0)
        out["n_good"] = rng.poisson(np.exp(0.7 + 0.3 * s))
        out["n_bad"] = rng.poisson(np.exp(-1.0 - 0.3 * s + 0.7 * recent[idx]))
        lin = sum(coefs[d] * out[d] for d in drivers)
        nps_latent = (
            NPS_INTERCEPT
            + lin
            + gamma_good * out["n_good"]
            - gamma_bad * out["n_bad"]
            + fx.nps_noise_sd * rng.standard_normal(m)
        )
        out["nps"] = np.clip(np.round(nps_latent), 0, 10).astype(int)
        return out

    for w, wave in enumerate(waves):
        wave_day = _days(wave)
        active = (c["signup"] < wave_day) & (c["signup"] + churn > wave_day)
        pool = np.flatnonzero(active)
        k = int(round(fx.survey_invite_share * pool.size))
        invited = np.sort(rng.choice(pool, k, replace=False))
        invited_total += k
        ans = answers(invited, wave_day)
        p = special.expit(fx.response_intercept + fx.response_satisfaction * sat[invited]
                          + fx.response_purchase * z_loglam[invited])
        responded = rng.random(k) < p
        all_nps.append(ans["nps"])
        resp_nps.append(ans["nps"][responded])
        wave_tbl = pd.DataFrame({key: val[responded] for key, val in ans.items()})
        wave_tbl.insert(0, "customer_id", customer_id[invited[responded]])
        wave_tbl.insert(1, "wave", w + 1)
        wave_tbl.insert(2, "responded_at", _to_date(np.full(int(responded.sum()), wave_day)
                                                   + rng.integers(0, 14, int(responded.sum()))))
        groups = np.where(wave_tbl["nps"] >= 9, "promoter", np.where(wave_tbl["nps"] >= 7, "passive",
                                                                     "detractor"))
        texts = np.array([SURVEY_TEXT[g][rng.integers(0, 4)] for g in groups], dtype=object)
        blank = rng.random(len(texts)) < 0.35
        texts[blank] = ""
        rows.append((wave_tbl, texts, invited.size))
        invitations.append(pd.DataFrame({"customer_id": customer_id[invited], "wave": w + 1,
                                         "invited_at": wave.normalize(), "responded": responded.astype(int)}))
    survey = pd.concat([r[0] for r in rows], ignore_index=True)
    texts = np.concatenate([r[1] for r in rows]) if rows else np.array([], dtype=object)
    # plant personal data in a few answers (a scrubber must remove it)
    pii_rows = np.flatnonzero(rng.random(len(texts)) < 0.02)
    planted_pii = []
    for i in pii_rows:
        cid = survey.at[i, "customer_id"]
        email = f"reply.{cid.lower()}@example.com"
        texts[i] = f"{texts[i]} Please contact me at {email}".strip()
        planted_pii.append(email)
    survey["open_text"] = texts
    survey.insert(0, "respondent_id", _ids("R", len(survey), width=7))
    invited_all = np.concatenate(all_nps) if all_nps else np.zeros(0)
    responded_all = np.concatenate(resp_nps) if resp_nps else np.zeros(0)

    items = _item_dictionary()
    # driver truth: the model's population moments, taken from 100,000 simulated answers of all customers
    big = answers(rng.integers(0, n, 100_000), _days(waves[-1]))
    x = np.column_stack([big[d] for d in drivers]).astype(float)
    x_full = np.column_stack([x, big["n_good"], big["n_bad"]])
    rw = _planted_driver_weights(np.corrcoef(np.column_stack([x, big["nps"]]), rowvar=False))
    groups = {"touchpoint": [d for d in drivers if d.startswith("perc_")],
              "emotional": list(EMOTIONAL), "tangible": list(TANGIBLE)}
    share = {g: float(sum(rw[drivers.index(d)] for d in ds) / rw.sum()) for g, ds in groups.items()}
    ols = np.linalg.lstsq(np.column_stack([np.ones(len(x_full)), x_full]), big["nps"].astype(float),
                          rcond=None)[0]

    def nps_of(a: np.ndarray) -> float:
        return float(100 * (np.mean(a >= 9) - np.mean(a <= 6))) if a.size else float("nan")

    seg_counts = pd.crosstab(c["segment"], c["region"], normalize=True).stack()
    margins = seg_counts.rename("share").reset_index()
    margins.columns = ["segment", "region", "share"]
    margins["share"] = margins["share"].round(8)
    truth = SurveyTruth(**{
        "n_invited": int(invited_total),
        "n_responses": int(len(survey)),
        "response_rate": float(len(survey) / invited_total) if invited_total else float("nan"),
        "response_model": {
            "intercept": fx.response_intercept,
            "per_sd_satisfaction": fx.response_satisfaction,
            "per_sd_log_purchase_rate": fx.response_purchase,
        },
        "nps_all_invited": nps_of(invited_all),
        "nps_respondents": nps_of(responded_all),
        "positivity_bias_nps_points": nps_of(responded_all) - nps_of(invited_all),
        "nps_model": {
            "intercept": NPS_INTERCEPT,
            "driver_coefs": coefs,
            "good_experience_effect": gamma_good,
            "bad_experience_effect": -gamma_bad,
            "noise_sd": fx.nps_noise_sd,
            "scale": "latent score, then rounded and clipped to 0..10",
        },
        "negativity_ratio": fx.negativity_ratio,
        "negativity_ratio_observed_scale_large_sample": float(-ols[-1] / ols[-2]) if ols[-2] else None,
        "driver_weights_large_sample": dict(zip(drivers, np.round(rw, 6).tolist(), strict=True)),
        "driver_r2_large_sample": float(rw.sum()),
        "driver_weights_definition": "share of the 0-10 answers' variance each driver accounts for (Johnson's "
        "decomposition of R²), from the correlations in 100,000 simulated answers of all customers",
        "driver_group_share": share,
        "segment_satisfaction_shift": fx.satisfaction_segment_shift,
        "worst_service_segment": min(fx.satisfaction_segment_shift, key=fx.satisfaction_segment_shift.get),
        "planted_pii": planted_pii,
    })
    tables = {"survey_responses": survey, "survey_invitations": pd.concat(invitations, ignore_index=True),
              "survey_items": items, "survey_margins": margins}
    return tables, truth


NPS_INTERCEPT = -4.0


def _planted_driver_weights(corr: np.ndarray) -> np.ndarray:
    """How much of the NPS answers' variance each driver accounts for, from the population correlations.

    ``corr`` is the correlation matrix of the drivers (all but the last row/column) and the NPS answer
    (last). The explained variance R² of the answers on the drivers is split among the drivers by
    Johnson's (2000) decomposition: the drivers' symmetric square root Λ = R_xx^½ gives orthogonal
    counterparts, β = Λ⁻¹ r_xy their effects, and driver j accounts for Σ_k Λ_jk² β_k² (the parts sum to
    R²). This defines the planted weight on the scale the survey's relative weights estimate; it is
    computed here from the generator's own moments, independently of the analysis code it checks.
    """
    rxx, rxy = corr[:-1, :-1], corr[:-1, -1]
    evals, evecs = np.linalg.eigh(rxx)
    root = evecs @ np.diag(np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    beta = np.linalg.solve(root, rxy)
    return (root**2) @ (beta**2)


def _item_dictionary() -> pd.DataFrame:
    rows = []
    for tp in TOUCHPOINTS:
        label = tp.replace("_", " ")
        rows.append((f"perc_{tp}", "service", tp, "perception", 1, 7, f"How good was the {label}?", False,
                     "touchpoint"))
        rows.append((f"exp_{tp}", "expectation", tp, "expectation", 1, 7,
                     f"How good did you expect the {label} to be?", False, ""))
    labels = {
        "emo_valued": "I feel valued as a customer",
        "emo_trust": "I trust this company",
        "emo_care": "They care about my problems",
        "tan_price": "Prices are clear",
        "tan_range": "The product range fits my needs",
        "tan_look": "Stores and website look good",
    }
    for it in EMOTIONAL:
        rows.append((it, "emotional", "", "perception", 1, 5, labels[it], False, "emotional"))
    for it in TANGIBLE:
        rows.append((it, "tangible", "", "perception", 1, 5, labels[it], False, "tangible"))
    sat_labels = ("Overall I am satisfied", "The service meets my needs", "I am often disappointed")
    for k, lab in enumerate(sat_labels, start=1):
        rows.append((f"sat_{k}", "satisfaction", "", "outcome", 1, 5, lab, k == 3, ""))
    rows.append(("loy_1", "loyalty", "", "outcome", 1, 5, "I will stay with this company", False, ""))
    rows.append(("loy_2", "loyalty", "", "outcome", 1, 5, "I will buy more from this company", False, ""))
    rows.append(("nps", "recommend", "", "outcome", 0, 10, "How likely are you to recommend us?", False, ""))
    return pd.DataFrame(rows, columns=["item", "construct", "touchpoint", "kind", "scale_min", "scale_max",
                                       "label", "reverse", "attribute_group"])


CODEBOOK = (
    ("wait_time", "speed", "Customer waited too long (queue, phone, delivery)",
     ("I waited forty minutes on the line.", "Очередь была огромная, ждал полчаса."), 0.18),
    ("slow_resolution", "speed", "A problem took too long to be solved",
     ("My complaint took three weeks to close.", "Проблему решали почти месяц."), 0.12),
    ("rude_staff", "staff", "Staff were impolite or dismissive",
     ("The agent was rude to me.", "Сотрудник разговаривал грубо."), 0.10),
    ("helpful_staff", "staff", "Staff went out of their way to help",
     ("The girl in the store really helped me.", "Консультант всё подробно объяснил."), 0.14),
    ("price_unclear", "value", "Prices, fees or bills were confusing",
     ("I never understand my bill.", "Непонятно, за что списали деньги."), 0.10),
    ("good_value", "value", "The offer is worth the money",
     ("For this price it is a good deal.", "За эти деньги это хорошее предложение."), 0.08),
    ("app_problems", "digital", "The app or website failed",
     ("The app crashes when I pay.", "Приложение постоянно вылетает."), 0.12),
    ("app_praise", "digital", "The app or website made things easy",
     ("I do everything in the app now.", "В приложении всё удобно."), 0.08),
    ("trust_brand", "emotion", "Customer trusts (or distrusts) the brand",
     ("I have been with them for years, I trust them.", "Я им доверяю уже много лет."), 0.09),
    ("feeling_ignored", "emotion", "Customer felt nobody listened",
     ("Nobody listens to what we say.", "Нас никто не слышит."), 0.08),
)
FILLER = ("Yes, I agree.", "Hmm, hard to say.", "Да, согласен.", "Well, it depends.", "Можно я добавлю?")


def build_focus_groups(rng: np.random.Generator, fx: Effects, n_sessions: int
                       ) -> tuple[dict[str, pd.DataFrame], FocusGroupTruth]:
    """Focus-group transcripts (personal data in the introductions), two coders' codes and the codebook."""
    codebook = pd.DataFrame([(c, t, d) for c, t, d, _, _ in CODEBOOK], columns=["code", "theme", "definition"])
    prevalence = {c: p for c, _, _, _, p in CODEBOOK}
    phrases = {c: ph for c, _, _, ph, _ in CODEBOOK}
    turns, codes_rows = [], []
    truth_codes = []
    planted = {"emails": [], "phones": [], "names": []}
    for s in range(1, n_sessions + 1):
        session = f"FG{s:02d}"
        n_speakers = int(rng.integers(7, 10))
        roles = np.array(["customer"] * (n_speakers - 2) + ["employee"] * 2)
        names, emails, phones = _names(rng, n_speakers)
        segs = rng.choice(SEGMENTS, n_speakers, p=[0.5, 0.3, 0.2])
        n_turns = int(rng.integers(40, 70))
        for t in range(1, n_turns + 1):
            sp = int(rng.integers(0, n_speakers))
            true = [c for c in prevalence if rng.random() < prevalence[c]][:2]
            parts = [phrases[c][int(rng.integers(0, 2))] for c in true] or [FILLER[int(rng.integers(0, 5))]]
            if t <= n_speakers:  # introductions carry personal data
                sp = t - 1
                intro = f"My name is {names[sp]}."
                if rng.random() < 0.5:
                    intro += f" You can write to {emails[sp]}."
                    planted["emails"].append(str(emails[sp]))
                if rng.random() < 0.4:
                    intro += f" My number is {phones[sp]}."
                    planted["phones"].append(str(phones[sp]))
                planted["names"].append(str(names[sp]))
                parts = [intro, *parts]
            turns.append((session, t, names[sp], roles[sp], segs[sp] if roles[sp] == "customer" else "",
                          " ".join(parts)))
            for c in prevalence:
                is_true = c in true
                truth_codes.append(is_true)
                for coder in ("coder_a", "coder_b"):
                    q = fx.coder_accuracy.get(c, 0.85)
                    label = is_true if rng.random() < q else rng.random() < prevalence[c]
                    if label:
                        codes_rows.append((session, t, coder, c))
    transcripts = pd.DataFrame(turns, columns=["session_id", "turn", "speaker", "role", "segment", "text"])
    codes = pd.DataFrame(codes_rows, columns=["session_id", "turn", "coder", "code"])
    truth = FocusGroupTruth(**{
        "n_sessions": n_sessions,
        "n_turns": int(len(transcripts)),
        "n_speakers": int(transcripts.groupby(["session_id", "speaker"]).ngroups),
        "coders": ["coder_a", "coder_b"],
        "coder_model": "per turn and code a coder copies the true code with probability q, "
        "otherwise draws it at the code's prevalence: expected Cohen's kappa = q**2",
        "expected_kappa": {c: fx.coder_accuracy.get(c, 0.85) ** 2 for c in prevalence},
        "prevalence": prevalence,
        "planted_pii": PersonalData(**planted),
    })
    return {"fg_transcripts": transcripts, "fg_codes": codes, "fg_codebook": codebook}, truth


AUDIT_CRITERIA = (
    # criterion, kind, weight, must_have, base log-odds (binary) or base mean (scale)
    ("greeting", "binary", 1.0, True, 2.2),
    ("needs_question", "binary", 1.5, True, 0.9),
    ("solution_offered", "binary", 2.0, True, 1.2),
    ("next_steps_confirmed", "binary", 1.0, False, 0.2),
    ("farewell", "binary", 0.5, False, 1.8),
    ("friendliness", "scale", 1.5, False, 3.6),
    ("competence", "scale", 2.0, False, 3.3),
    ("cleanliness", "scale", 1.0, False, 3.8),
)


def build_audits(rng: np.random.Generator, fx: Effects, people: _People, n_stores: int | None, per_store: int
                 ) -> tuple[dict[str, pd.DataFrame], AuditTruth]:
    """Mystery-shopper audits of the stores (quality drives passing), some scored by two auditors."""
    store_names, store_quality = people.store_names, people.store_quality
    n_stores = len(store_names) if n_stores is None else min(n_stores, len(store_names))
    criteria = pd.DataFrame(
        [(c, k, w, m, "1-5" if k == "scale" else "pass/fail") for c, k, w, m, _ in AUDIT_CRITERIA],
        columns=["criterion", "kind", "weight", "must_have", "scale"],
    )
    auditors = np.array([f"A{i}" for i in range(1, 7)])
    rows = []
    p_full, p_full_obs = [], []
    flip = 0.05  # an auditor marks a binary criterion wrongly with this probability
    year_start = _days(pd.Timestamp("2024-01-01"))
    audit_no = 0
    for s in range(n_stores):
        q = store_quality[s]
        for k in range(per_store):
            audit_no += 1
            audit_id = f"AU{audit_no:05d}"
            day = year_start + k * 30 + float(rng.integers(0, 28))
            trend = 0.04 * k  # slow improvement over the year
            first_auditor = auditors[rng.integers(0, len(auditors))]
            double = rng.random() < 0.25
            raters = [first_auditor]
            if double:
                raters.append(rng.choice(auditors[auditors != first_auditor]))
            probs = []
            passed_true = {}
            true_scale = {}
            for crit, kind, _, must, base in AUDIT_CRITERIA:
                if kind == "binary":
                    p = special.expit(base + fx.audit_store_effect * q + trend)
                    passed_true[crit] = rng.random() < p
                    if must:
                        probs.append(p)
                else:
                    true_scale[crit] = base + 0.5 * q + 0.6 * rng.standard_normal()
            p_full.append(float(np.prod(probs)))
            p_full_obs.append(float(np.prod([p * (1 - flip) + (1 - p) * flip for p in probs])))
            for r in raters:
                for crit, kind, _, _, _ in AUDIT_CRITERIA:
                    if kind == "binary":
                        score = float(passed_true[crit] if rng.random() > flip else not passed_true[crit])
                    else:
                        score = float(np.clip(np.round(true_scale[crit] + fx.auditor_noise_sd
                                                       * rng.standard_normal()), 1, 5))
                    rows.append((audit_id, store_names[s], _to_date(np.array([day]))[0], crit, kind, score, r))
    audits = pd.DataFrame(rows, columns=["audit_id", "unit", "date", "criterion", "kind", "score", "auditor"])
    var_true = 0.5**2 * float(np.var(store_quality[:n_stores])) + 0.6**2
    truth = AuditTruth(**{
        "n_audits": audit_no,
        "n_units": n_stores,
        "share_full_compliance_expected": float(np.mean(p_full)) if p_full else float("nan"),
        "share_full_compliance_observed": float(np.mean(p_full_obs)) if p_full else float("nan"),
        "must_have": [c for c, _, _, m, _ in AUDIT_CRITERIA if m],
        "store_effect_log_odds_per_sd": fx.audit_store_effect,
        "auditor_noise_sd": fx.auditor_noise_sd,
        "binary_flip_rate": flip,
        "scale_icc_expected": var_true / (var_true + fx.auditor_noise_sd**2),
        "share_double_scored": 0.25,
    })
    return {"audits": audits, "audit_criteria": criteria}, truth


# ---------------------------------------------------------------------------------------------
# files


def write_world(world: World, directory: str | Path, fmt: str = "csv") -> dict[str, Path]:
    """Write every table (CSV or Parquet) and ``truth.json`` into ``directory``.

    Returns the mapping table name -> file path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, df in world.tables.items():
        path = directory / f"{name}.{ 'parquet' if fmt == 'parquet' else 'csv'}"
        if fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S" if name in (
                "transactions", "complaints") else "%Y-%m-%d", lineterminator="\n")
        paths[name] = path
    (directory / "truth.json").write_text(json.dumps(world.truth.to_json(), indent=2, sort_keys=True) + "\n")
    return paths


def write_transaction_log(directory: str | Path, n_customers: int, seed: int = 20240101,
                          effects: dict[str, Any] | None = None, block: int = 250_000) -> dict[str, Any]:
    """Write the synthetic world's transaction log for ``n_customers`` as Parquet files partitioned by year and
    month (``year=2023/month=05/part-0007.parquet``), one block of customers at a time.

    For benchmark sizes (5M customers give about 20M rows, 25M about 100M) that would not fit in memory as one
    world: each block of ``block`` customers is a world of its own drawn from the same population (its own
    random stream, seeded by ``(seed, block number)``), its customer and transaction keys offset so that they
    stay unique. Peak memory is that of one block (about 1 GB at 250,000 customers). The planted purchase
    process is the same in every block, so the log recovers the same Pareto/NBD and Gamma-Gamma parameters.

    Returns
    -------
    dict
        ``rows`` written, ``customers``, ``files`` and the ``truth`` of the purchase process.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fx = Effects.from_overrides(effects)
    rows = files = 0
    truth = None
    for b, start in enumerate(range(0, n_customers, block)):
        n = min(block, n_customers - start)
        rng = np.random.default_rng([seed, b])
        people = _population(rng, n, fx)
        buying = _buying(rng, people, fx)
        events = _transaction_events(rng, buying, _loyalty_programme(rng, people, buying, fx), fx)
        tables, truth = build_transactions(people, buying, events, fx)
        tx = tables["transactions"]
        tx["customer_id"] = "C" + (tx["customer_id"].str[1:].astype(np.int64) + start).astype(str).str.zfill(9)
        tx["transaction_id"] = "T" + (np.arange(1, len(tx) + 1) + rows).astype(str)
        ts = tx["timestamp"]
        for (year, month), part in tx.groupby([ts.dt.year, ts.dt.month], sort=True):
            target = directory / f"year={year}" / f"month={month:02d}"
            target.mkdir(parents=True, exist_ok=True)
            # microsecond timestamps: what Spark reads (it refuses Parquet's nanosecond ones)
            part.to_parquet(target / f"part-{b:04d}.parquet", index=False, coerce_timestamps="us")
            files += 1
        rows += len(tx)
        del people, buying, events, tables, tx
    return {"rows": rows, "customers": n_customers, "files": files,
            "truth": None if truth is None else json.loads(json.dumps(asdict(truth), default=str))}


def world_fingerprint(seed: int, n_customers: int, effects: dict[str, Any] | None) -> str:
    from cxresearch import __version__

    # a changed generator (or truth record) means a new world
    code = hashlib.sha256(Path(__file__).read_bytes() + Path(truth_module.__file__).read_bytes()).hexdigest()
    payload = json.dumps({"v": __version__, "code": code, "seed": seed, "n": n_customers,
                          "effects": Effects.from_overrides(effects).to_dict()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def ensure_world(
    seed: int = 20240101,
    n_customers: int = 5000,
    effects: dict[str, Any] | None = None,
    root: str | Path | None = None,
) -> dict[str, Path]:
    """Paths of the synthetic world's files, generating them once per (seed, size, effects).

    The files live in ``<data dir>/synthetic/<fingerprint>/`` so that notebooks read them through
    the same validated loaders as a user's own data.
    """
    from cxresearch.paths import data_dir

    root = Path(root) if root is not None else data_dir() / "synthetic"
    target = root / f"n{n_customers}-seed{seed}-{world_fingerprint(seed, n_customers, effects)}"
    expected = {name: target / f"{name}.csv" for name in TABLES}
    if not all(p.exists() for p in expected.values()) or not (target / "truth.json").exists():
        tmp = target.with_name(target.name + f".tmp{np.random.default_rng().integers(1 << 30)}")
        write_world(make_world(n_customers=n_customers, seed=seed, effects=effects), tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race: use its copy
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return {**expected, "truth": target / "truth.json"}


def load_truth(paths: dict[str, Path]) -> Truth:
    """The planted values written beside a world's tables."""
    return Truth.from_json(json.loads(Path(paths["truth"]).read_text()))



# ---------------------------------------------------------------------------------------------
# contractual and discrete-time customers with planted model parameters (for recovery and coverage tests)


def contract_cohorts(alpha: float, beta: float, c: float = 1.0, sizes: tuple[int, ...] = (1000,),
                     periods: int = 12, seed: int = 0) -> pd.DataFrame:
    """A cohort retention table (cohort, period, active) drawn from the BdW model (c = 1: the sBG): each
    customer's churn probability theta ~ beta(alpha, beta); she is still active at the start of period t with
    probability (1 - theta)^(t^c). Cohort k is observed for ``periods - k`` periods (later cohorts are younger)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, size in enumerate(sizes):
        theta = rng.beta(alpha, beta, size)
        u = rng.random(size)
        # lifetime T = smallest t with (1 - theta)^(t^c) < u, i.e. t^c > log u / log(1 - theta)
        with np.errstate(divide="ignore"):
            stay = np.log(u) / np.log1p(-theta)
        lifetime = np.floor(np.power(stay, 1.0 / c)) + 1
        for t in range(periods - k + 1):
            rows.append({"cohort": f"cohort {k + 1:02d}", "period": t, "active": int((lifetime > t).sum())})
    return pd.DataFrame(rows)


def bgbb_customers(alpha: float, beta: float, gamma: float, delta: float, n_customers: int = 5000,
                   opportunities: int = 6, seed: int = 0) -> pd.DataFrame:
    """(x, t_x, n) per customer drawn from the BG/BB model: transaction probability p ~ beta(alpha, beta),
    dropout probability theta ~ beta(gamma, delta) at the start of each opportunity after the first purchase."""
    rng = np.random.default_rng(seed)
    p = rng.beta(alpha, beta, n_customers)
    theta = rng.beta(gamma, delta, n_customers)
    alive_for = rng.geometric(theta) - 1  # opportunities 1..alive_for are while alive
    buys = rng.random((n_customers, opportunities)) < p[:, None]
    buys &= np.arange(1, opportunities + 1)[None, :] <= alive_for[:, None]
    x = buys.sum(axis=1)
    t_x = np.where(x > 0, opportunities - np.argmax(buys[:, ::-1], axis=1), 0)
    return pd.DataFrame({"x": x, "t_x": t_x, "n": opportunities})


def mbgnbd_customers(r: float, alpha: float, a: float, b: float, n_customers: int = 3000, T: float = 52.0,
                     seed: int = 0) -> pd.DataFrame:
    """(frequency, recency, T) per customer drawn from the MBG/NBD model (Batislam et al. 2007): purchase rate
    lambda ~ Gamma(r, rate alpha), dropout probability p ~ beta(a, b); a customer may drop out right after the
    first purchase (time 0) and after every repeat purchase; observed for ``T`` time units."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n_customers)
    p = rng.beta(a, b, n_customers)
    alive = rng.random(n_customers) >= p  # survived the drop-out chance at the first purchase
    t = np.zeros(n_customers)
    x = np.zeros(n_customers, int)
    tx = np.zeros(n_customers)
    while alive.any():
        nxt = t + rng.exponential(1.0, n_customers) / np.maximum(lam, 1e-300)
        buys = alive & (nxt <= T)
        x[buys] += 1
        tx[buys] = nxt[buys]
        t = np.where(buys, nxt, t)
        alive = buys & (rng.random(n_customers) >= p)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T})
