"""Input contracts of the suite's tables (documented for users in ``data/README.md``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch.io import Column, Contract, Exclusion

CUSTOMERS = Contract(
    "customers",
    (
        Column("customer_id", "string", description="customer key", role="id"),
        Column("signup_date", "date", description="start of the relationship"),
        Column("segment", "string", required=False, nullable=True),
        Column("region", "string", required=False, nullable=True),
        Column("store", "string", required=False, nullable=True),
        Column("channel", "string", required=False, nullable=True),
        Column("plan", "string", required=False, nullable=True),
        Column("churn_date", "date", required=False, nullable=True, description="empty = still a customer"),
    ),
    key=("customer_id",),
    ordered=(("signup_date", "churn_date"),),
    description="one row per customer",
)

RETENTION = Contract(
    "retention",
    (
        Column("cohort", "string", description="the group that started together (e.g. the signup month)"),
        Column("period", "int", min=0, description="periods since the start; 0 = the cohort's size"),
        Column("active", "int", min=0, description="customers still active at the start of the period"),
    ),
    # no key: a repeated (cohort, period) is named by check_retention_table, and the cohort stays a label, so a
    # cohort named after a person is pseudonymised like any other label
    description="one row per cohort and period (a cohort retention table); other columns, e.g. a segment, are kept",
)

OCCASIONS = Contract(
    "occasions",
    (
        Column("x", "int", min=0, description="repeat opportunities with a transaction"),
        Column("t_x", "int", min=0, description="the last such opportunity (0 when none)"),
        Column("n", "int", min=1, description="repeat opportunities"),
        Column("weight", "int", min=1, description="customers with this pattern"),
    ),
    key=("x", "t_x", "n"),
    description="one row per pattern of repeat transactions at discrete occasions (e.g. yearly donations)",
)

TRANSACTIONS = Contract(
    "transactions",
    (
        Column("customer_id", "string", role="id"),
        Column("timestamp", "datetime"),
        Column("amount", "float"),
        Column("transaction_id", "string", required=False, nullable=True, role="id"),
    ),
    exclusions=(
        Exclusion("amount below zero (returns)", lambda d: d["amount"] < 0),
        Exclusion("amount equal to zero", lambda d: d["amount"] == 0),
    ),
    description="one row per purchase",
)

COMPLAINTS = Contract(
    "complaints",
    (
        Column("customer_id", "string", role="id"),
        Column("opened_at", "datetime"),
        Column("type", "string", required=False, nullable=True),
        Column("resolved", "bool"),
        Column("hours_to_resolve", "float", nullable=True, min=0),
        Column("complaint_id", "string", required=False, nullable=True, role="id"),
    ),
    exclusions=(
        Exclusion("resolved but no resolution time", lambda d: d["resolved"].fillna(False).astype(bool)
                  & d["hours_to_resolve"].isna()),
    ),
    description="one row per complaint or contact",
)

LOYALTY_PILOT = Contract(
    "loyalty_pilot",
    (
        Column("customer_id", "string", role="id"),
        Column("arm", "string"),
        Column("pre_spend", "float", required=False, nullable=True, min=0),
        Column("pre_visits", "int", required=False, nullable=True, min=0),
        Column("spend", "float", required=False, nullable=True),
        Column("visits", "int", required=False, nullable=True, min=0),
        Column("converted", "int", required=False, nullable=True, min=0, max=1),
        Column("retained", "int", required=False, nullable=True, min=0, max=1),
    ),
    key=("customer_id",),
    description="one row per pilot customer",
)

LOYALTY_MEMBERS = Contract(
    "loyalty_members",
    (
        Column("customer_id", "string", role="id"),
        Column("member", "int", min=0, max=1),
        Column("enrol_date", "date", nullable=True),
        Column("pre_spend_12m", "float", required=False, nullable=True, min=0),
        Column("pre_visits_12m", "int", required=False, nullable=True, min=0),
    ),
    key=("customer_id",),
)

LOYALTY_PANEL = Contract(
    "loyalty_panel",
    (
        Column("customer_id", "string", role="id"),
        Column("month", "string"),
        Column("spend", "float"),
        Column("visits", "int", min=0),
    ),
    key=("customer_id", "month"),
)

SURVEY_RESPONSES = Contract(
    "survey_responses",
    (
        Column("respondent_id", "string", role="id"),
        Column("customer_id", "string", required=False, nullable=True, role="id"),
        Column("wave", "int", min=1),
        Column("responded_at", "date", required=False, nullable=True),
        Column("weight", "float", required=False, nullable=True, min=0),
        Column("nps", "int", required=False, nullable=True, min=0, max=10),
        Column("open_text", "string", required=False, nullable=True, role="text"),
    ),
    key=("respondent_id",),
    description="one row per respondent and wave; item columns as named in the item dictionary",
)

SURVEY_INVITATIONS = Contract(
    "survey_invitations",
    (
        Column("customer_id", "string", role="id"),
        Column("wave", "int", min=1),
        Column("invited_at", "date", required=False, nullable=True),
        Column("responded", "int", min=0, max=1),
    ),
    key=("customer_id", "wave"),
)

SURVEY_ITEMS = Contract(
    "survey_items",
    (
        Column("item", "string"),
        Column("construct", "string"),
        Column("touchpoint", "string", required=False, nullable=True),
        Column("kind", "string", allowed=("perception", "expectation", "importance", "outcome")),
        Column("scale_min", "float"),
        Column("scale_max", "float"),
        Column("label", "string", required=False, nullable=True),
        Column("reverse", "bool", required=False, nullable=True),
    ),
    key=("item",),
)

FG_TRANSCRIPTS = Contract(
    "fg_transcripts",
    (
        Column("session_id", "string", role="id"),
        Column("turn", "int", min=1),
        Column("speaker", "string", role="id"),
        Column("role", "string", required=False, nullable=True),
        Column("text", "string", nullable=True, role="text"),
    ),
    key=("session_id", "turn"),
)

AUDITS = Contract(
    "audits",
    (
        Column("audit_id", "string", role="id"),
        Column("unit", "string"),
        Column("date", "date"),
        Column("criterion", "string"),
        Column("kind", "string", allowed=("binary", "scale")),
        Column("score", "float"),
        Column("auditor", "string", required=False, nullable=True),
    ),
    key=("audit_id", "criterion", "auditor"),
)

ALL = {c.name: c for c in (CUSTOMERS, TRANSACTIONS, COMPLAINTS, LOYALTY_PILOT, LOYALTY_MEMBERS, LOYALTY_PANEL,
                           SURVEY_RESPONSES, SURVEY_INVITATIONS, SURVEY_ITEMS, FG_TRANSCRIPTS, AUDITS)}


def spend_before(invitations: pd.DataFrame, transactions: pd.DataFrame, days: int = 365) -> pd.Series:
    """Spend of each invited customer (``survey_invitations``) in the ``days`` before the invitation, from the
    ``transactions`` table: one value per invitation row, 0 without purchases."""
    inv = invitations.reset_index(drop=True).assign(_row=lambda d: np.arange(len(d)))
    tx = transactions[["customer_id", "timestamp", "amount"]]
    merged = inv[["_row", "customer_id", "invited_at"]].merge(tx, on="customer_id", how="inner")
    window = (merged["timestamp"] < merged["invited_at"]) & (
        merged["timestamp"] >= merged["invited_at"] - pd.Timedelta(days=days))
    spend = merged[window].groupby("_row")["amount"].sum()
    return spend.reindex(np.arange(len(inv)), fill_value=0.0)
