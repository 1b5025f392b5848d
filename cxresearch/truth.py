"""What the synthetic world planted, as typed records: one per area, gathered in :class:`Truth`.

The generator (:mod:`cxresearch.synth`) fills them while it builds each area's tables and writes them as
``truth.json`` beside the tables; :func:`cxresearch.sources.synthetic_world` reads them back with
:meth:`Truth.from_json`. Analyses never see them: :mod:`cxresearch.checks` turns them into the plain numbers
an analysis compares its estimates with. Values are defined directly by the generator's parameters or its own
population moments, never by running one of the estimators they check.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Calendar:
    """The synthetic world's dates (ISO text)."""

    world_start: str
    signup_end: str
    observation_end: str
    pilot_start: str
    pilot_weeks: int
    enrolment_start: str
    enrolment_end: str  # the last day a member can join
    panel_start: str
    survey_waves: list[str]


@dataclass(frozen=True)
class ChurnTruth:
    """Contract churn: a Cox model with a Weibull baseline and a time-varying complaint state."""

    model: str
    baseline_shape: float
    baseline_scale_months: float
    hazard_ratios: dict[str, float]  # model term ("plan[annual]") -> hazard ratio against its reference level
    reference_levels: dict[str, str]
    hr_store_quality_per_sd: float
    store_quality: dict[str, float]
    complaint_hazard_ratios: dict[str, float]  # fast_resolved, slow_resolved, unresolved
    complaint_state_rule: str
    fast_resolution_hours: float
    n_churned: int
    churn_rate: float


@dataclass(frozen=True)
class ComplaintTruth:
    n_complaints: int
    share_resolved: float | None
    share_fast: float | None


@dataclass(frozen=True)
class PurchaseTruth:
    """Buying: Pareto/NBD purchases (weeks) with Gamma-Gamma spend, plus the rows planted as noise."""

    model: str
    pareto_nbd_params: dict[str, float]  # r, alpha, s, beta
    gamma_gamma_params: dict[str, float]  # p, q, v
    pure_process_until: str
    n_repeat_transactions_before_pilot: int
    share_alive_at_pilot_start: float
    mean_purchase_rate_per_week: float
    rows_by_kind: dict[str, int]  # first, repeat, loyalty_pilot_extra, loyalty_member_extra, return, zero_amount
    rule: str
    satisfaction_purchase_rank_corr: float

    @property
    def noise_rows(self) -> int:
        """Rows that are not purchases: returns and zero amounts."""
        return self.rows_by_kind.get("return", 0) + self.rows_by_kind.get("zero_amount", 0)


@dataclass(frozen=True)
class PilotTruth:
    """The randomized loyalty pilot."""

    arms: dict[str, str]
    n_units: int
    uplift_purchase_rate: float
    true_ate_spend: float | None  # extra spend over the pilot per customer, expected given latent rates
    realized_sate_spend: float | None
    realized_sate_visits: float | None
    estimand: str
    retention_effect: float
    cost_per_member_month: float
    margin: float


@dataclass(frozen=True)
class EnrolmentTruth:
    """The open enrolment, where heavier buyers select themselves into the programme."""

    population: str
    n_population: int
    n_members: int
    selection: str
    true_att_spend_per_month: float
    true_ate_spend_per_month: float
    naive_gap_expectation_note: str
    cost_per_member_month: float
    margin: float
    true_profit_per_member_month: float
    true_roi: float | None
    pays_off: bool
    mean_post_months: float | None
    parallel_trends: str


@dataclass(frozen=True)
class SurveyTruth:
    """Invitations, answers and the NPS model, with driver weights from the model's population moments."""

    n_invited: int
    n_responses: int
    response_rate: float | None
    response_model: dict[str, float]
    nps_all_invited: float | None
    nps_respondents: float | None
    positivity_bias_nps_points: float | None
    nps_model: dict[str, Any]
    negativity_ratio: float
    negativity_ratio_observed_scale_large_sample: float | None
    driver_weights_large_sample: dict[str, float]
    driver_r2_large_sample: float
    driver_weights_definition: str
    driver_group_share: dict[str, float]  # touchpoint, emotional, tangible
    segment_satisfaction_shift: dict[str, float]
    worst_service_segment: str
    planted_pii: list[str]

    @property
    def drivers(self) -> list[str]:
        """The drivers of the NPS model, in order."""
        return list(self.nps_model.get("driver_coefs", {}))


@dataclass(frozen=True)
class PersonalData:
    """Names, e-mails and phone numbers planted in the transcripts (a scrubber must remove them)."""

    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return [*self.emails, *self.phones, *self.names]


@dataclass(frozen=True)
class FocusGroupTruth:
    n_sessions: int
    n_turns: int
    n_speakers: int
    coders: list[str]
    coder_model: str
    expected_kappa: dict[str, float]  # code -> q**2
    prevalence: dict[str, float]
    planted_pii: PersonalData


@dataclass(frozen=True)
class AuditTruth:
    n_audits: int
    n_units: int
    share_full_compliance_expected: float | None  # before auditor errors
    share_full_compliance_observed: float | None  # as auditors score it
    must_have: list[str]
    store_effect_log_odds_per_sd: float
    auditor_noise_sd: float
    binary_flip_rate: float
    scale_icc_expected: float
    share_double_scored: float


@dataclass(frozen=True)
class Truth:
    """Everything one synthetic world planted, area by area."""

    seed: int
    n_customers: int
    effects: dict[str, Any]
    calendar: Calendar
    churn: ChurnTruth
    complaints: ComplaintTruth
    purchases: PurchaseTruth
    loyalty_pilot: PilotTruth
    loyalty_enrolment: EnrolmentTruth
    survey: SurveyTruth
    focus_groups: FocusGroupTruth
    audits: AuditTruth
    rows: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become null)."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Truth:
        """The record written by :meth:`to_json`; a missing field is an error that names it."""
        return _build(cls, data, "truth")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where} in truth.json should be a mapping, got {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise ValueError(f"{where}.{f.name} is missing from truth.json: regenerate the synthetic world.")
        kind = hints[f.name]
        value = data[f.name]
        values[f.name] = _build(kind, value, f"{where}.{f.name}") if dataclasses.is_dataclass(kind) else value
    return cls(**values)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):  # numpy scalars
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
