"""Churn labels for a cutoff date.

Definition (non-contractual shop): a customer is *eligible* at a cutoff when they are an active
customer then: they hold a live (active or paused) subscription, or they bought within the last
``active_days`` days (default 180, ``CDP_CHURN_ACTIVE_DAYS``). Prospects without orders are not
scored, and neither are customers who had already lapsed (no order for longer than that, no live
subscription): they are gone already — win-back targets (lifecycle stage lapsed/churned), not
churn risks, and counting them as "churners" would make most of the base trivially positive.
An eligible customer *churned* when they place no order in the ``horizon_days`` days from the
cutoff (the window ``[cutoff, cutoff + horizon)``), or — for someone subscribed (active or
paused) at the cutoff — when their subscriptions end the window cancelled after a cancellation
inside it. Cancelled orders do not count as orders. Features use only events strictly before
the cutoff; labels use only events on or after it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

ORDER_COLUMNS = ("customer_id", "ordered_at", "is_cancelled")
SUB_EVENT_COLUMNS = ("customer_id", "subscription_id", "event_type", "occurred_at")
# the latest event before a moment sets a subscription's state (same mapping as the feature SQL)
_STATE_EVENTS = ("created", "resumed", "charge_processed", "skipped", "paused", "cancelled")


def window(cutoff: date, horizon_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The label window [start, end) as UTC timestamps."""
    start = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
    return pd.Timestamp(start), pd.Timestamp(start + timedelta(days=horizon_days))


def eligible(customers: pd.DataFrame, active_days: int | None = None) -> pd.Series:
    """Active at the cutoff: a live subscription, or an order within ``active_days`` days
    (from the feature snapshot's ``is_subscriber``, ``is_buyer``, ``days_since_last_order``)."""
    if active_days is None:
        from orchestration.churn.config import churn_config

        active_days = churn_config().active_days
    recent = customers["days_since_last_order"].astype("float64") <= active_days
    return customers["is_subscriber"].astype(bool) | (
        customers["is_buyer"].astype(bool) & recent.fillna(False).astype(bool)
    )


def churn_labels(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    sub_events: pd.DataFrame,
    cutoff: date,
    horizon_days: int,
) -> pd.DataFrame:
    """One row per eligible customer of the snapshot ``customers`` (customer_id, is_buyer,
    is_subscriber, days_since_last_order): ``ordered_in_window``, ``cancelled_in_window`` and
    ``churned``."""
    start, end = window(cutoff, horizon_days)
    base = customers.loc[eligible(customers), ["customer_id", "is_subscriber"]].reset_index(
        drop=True
    )
    ids = base["customer_id"]

    o = orders
    in_window = (o["ordered_at"] >= start) & (o["ordered_at"] < end) & ~o["is_cancelled"]
    ordered = ids.isin(o.loc[in_window, "customer_id"])

    e = sub_events[sub_events["occurred_at"] < end]
    cancelled_in = e.loc[
        (e["event_type"] == "cancelled") & (e["occurred_at"] >= start), "customer_id"
    ]
    state_events = e[e["event_type"].isin(_STATE_EVENTS)].sort_values(
        ["subscription_id", "occurred_at"], kind="stable"
    )
    last = state_events.drop_duplicates("subscription_id", keep="last")
    live = last.loc[last["event_type"] != "cancelled", "customer_id"]
    cancelled = (
        base["is_subscriber"].astype(bool).to_numpy()
        & ids.isin(cancelled_in).to_numpy()
        & ~ids.isin(live).to_numpy()
    )
    return pd.DataFrame(
        {
            "customer_id": ids,
            "ordered_in_window": ordered.to_numpy(),
            "cancelled_in_window": cancelled,
            "churned": (~ordered.to_numpy()) | cancelled,
        }
    ).astype({"churned": np.bool_})
