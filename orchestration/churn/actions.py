"""Risk bands, early-warning flags, the recommended retention action and the value at stake.

Early warnings are transparent rules on the feature snapshot (they hold whatever the model says):
- engagement_decline: email opens or site visits in the last 90 days at most half the 90 days
  before (which had at least 2), or an email unsubscribe;
- missed_subscription_cadence: an active or paused subscriber whose last order is more than 1.5
  subscription intervals ago;
- ticket_spike: 2+ support tickets in the last 30 days;
- skip_streak: 2+ skipped subscription deliveries in the last 90 days.

Actions, first match wins (bands medium and up; low risk gets no action):
- vip_outreach: projected 12-month value >= the VIP threshold and high/critical risk;
- skip_instead_of_cancel: an active/paused subscriber with a skip streak or missed cadence;
- save_offer: any other active/paused subscriber;
- win_back_discount: everyone else at risk (lapsed buyers, cancelled subscribers).

Value at stake = churn probability x projected 12-month value, where projected value is the
trailing 12-month net revenue, at least one average order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BANDS = ("low", "medium", "high", "critical")
BAND_FLOORS = (0, 25, 50, 75)  # churn_risk_score at which each band starts
HIGH_BANDS = ("high", "critical")
FLAGS = ("engagement_decline", "missed_subscription_cadence", "ticket_spike", "skip_streak")
ACTIONS = ("vip_outreach", "skip_instead_of_cancel", "save_offer", "win_back_discount", "no_action")
VIP_VALUE = 1000.0


def risk_score(probability: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(100 * np.asarray(probability, dtype=float)), 0, 100).astype(int)


def risk_band(score: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(np.asarray(BAND_FLOORS[1:]), np.asarray(score), side="right")
    return np.asarray(BANDS, dtype=object)[idx]


def early_warnings(f: pd.DataFrame) -> pd.DataFrame:
    """Boolean flag columns (FLAGS) per customer of a feature snapshot."""

    def declined(recent, prior):
        return (f[prior] >= 2) & (f[recent] <= 0.5 * f[prior])

    subscribed = f["subscription_status"].isin(["active", "paused"])
    overdue = f["days_since_last_order"] > 1.5 * f["subscription_interval_days"]
    return pd.DataFrame(
        {
            "engagement_decline": declined("email_opens_90d", "email_opens_prior_90d")
            | declined("web_sessions_90d", "web_sessions_prior_90d")
            | f["has_unsubscribed"].astype(bool),
            "missed_subscription_cadence": subscribed & overdue.fillna(False),
            "ticket_spike": f["tickets_30d"] >= 2,
            "skip_streak": f["subscription_skips_90d"] >= 2,
        },
        index=f.index,
    )[list(FLAGS)]


def flag_arrays(flags: pd.DataFrame) -> np.ndarray:
    """(rows x len(FLAGS)) object array: the flag name where raised, else None."""
    names = np.asarray(FLAGS, dtype=object)
    return np.where(flags[list(FLAGS)].to_numpy(bool), names[None, :], None)


def projected_value(f: pd.DataFrame) -> np.ndarray:
    trailing = np.nan_to_num(f["monetary_365d"].to_numpy(float))
    aov = np.nan_to_num(f["average_order_value"].to_numpy(float))
    return np.round(np.maximum(trailing, aov), 2)


def recommend(f: pd.DataFrame, bands: np.ndarray, flags: pd.DataFrame, vip_value=VIP_VALUE):
    value = projected_value(f)
    subscribed = f["subscription_status"].isin(["active", "paused"]).to_numpy()
    at_risk = bands != "low"
    high = np.isin(bands, HIGH_BANDS)
    slipping = (flags["skip_streak"] | flags["missed_subscription_cadence"]).to_numpy()
    return np.select(
        [
            ~at_risk,
            high & (value >= vip_value),
            subscribed & slipping,
            subscribed,
        ],
        ["no_action", "vip_outreach", "skip_instead_of_cancel", "save_offer"],
        default="win_back_discount",
    ).astype(object)


def value_at_stake(probability: np.ndarray, f: pd.DataFrame) -> np.ndarray:
    return np.round(np.asarray(probability, dtype=float) * projected_value(f), 2)
