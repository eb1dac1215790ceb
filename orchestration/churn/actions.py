"""Risk bands, early-warning flags, the recommended retention action and the value at stake.

Early warnings are transparent rules on the feature snapshot (they hold whatever the model says):
- engagement_decline: email opens or site visits in the last 90 days at most half the 90 days
  before (which had at least 2), or an email unsubscribe;
- missed_subscription_cadence: an active or paused subscriber whose last order is more than 1.5
  subscription intervals ago;
- ticket_spike: 2+ support tickets in the last 30 days;
- skip_streak: 2+ skipped subscription deliveries in the last 90 days.

Actions depend on the shop's kind (``orchestration.warehouse.shop``). First match wins.

A subscription shop (bands medium and up; low risk gets no action):
- vip_outreach: projected 12-month value >= the VIP threshold and high/critical risk;
- skip_instead_of_cancel: an active/paused subscriber with a skip streak or missed cadence;
- save_offer: any other active/paused subscriber;
- win_back_discount: everyone else at risk (lapsed buyers, cancelled subscribers).

A one_off shop (no subscriptions to save, so no save offers or skips). "VIP" is a projected value
>= the VIP threshold or in the top 5% of the scored customers' projected value (a shop of $30
orders has VIPs far below $1,000); the "usual interval" is the customer's median gap between
purchase days (same-day orders merged):
- vip_outreach: a VIP at high/critical risk (a personal note, not a discount);
- vip_recognition: any other VIP (thank them: early access, loyalty perks);
- no_action: everyone else at low risk;
- second_purchase_nudge: one purchase day so far (the one-and-done: a reason to come back);
- replenishment_reminder: a repeat buyer past their usual interval but not twice past it;
- win_back_discount: a repeat buyer more than twice past their usual interval (lapsing) whose
  lifetime value is in the top quarter of the scored customers;
- reactivation_email: any other lapsing repeat buyer (a "we miss you" note, no discount);
- no_action: the rest (at risk but still within their usual interval).

Value at stake = churn probability x projected 12-month value, where projected value is the
trailing 12-month net revenue, at least one average order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.warehouse.shop import ONE_OFF, SUBSCRIPTION

BANDS = ("low", "medium", "high", "critical")
BAND_FLOORS = (0, 25, 50, 75)  # churn_risk_score at which each band starts
HIGH_BANDS = ("high", "critical")
FLAGS = ("engagement_decline", "missed_subscription_cadence", "ticket_spike", "skip_streak")
ACTIONS = ("vip_outreach", "skip_instead_of_cancel", "save_offer", "win_back_discount", "no_action")
ONE_OFF_ACTIONS = (
    "vip_outreach",
    "vip_recognition",
    "second_purchase_nudge",
    "replenishment_reminder",
    "win_back_discount",
    "reactivation_email",
    "no_action",
)
VIP_VALUE = 1000.0
VIP_TOP_SHARE = 0.05  # one_off shops: the top 5% of projected value are VIPs too
WIN_BACK_VALUE_QUANTILE = 0.75  # one_off shops: win back only the top quarter by lifetime value
LAPSED_GAPS = 2.0  # more than twice past the usual interval: lapsing, not merely due


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


def recommend(
    f: pd.DataFrame,
    bands: np.ndarray,
    flags: pd.DataFrame,
    vip_value=VIP_VALUE,
    shop_kind: str = SUBSCRIPTION,
):
    """One action per customer by the rules of the shop's kind (module docstring)."""
    if shop_kind == ONE_OFF:
        return recommend_one_off(f, bands, vip_value)
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


def _top_share(values: np.ndarray, share: float) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype=bool)
    return values >= np.quantile(values, 1.0 - share)


def recommend_one_off(f: pd.DataFrame, bands: np.ndarray, vip_value=VIP_VALUE) -> np.ndarray:
    value = projected_value(f)
    lifetime = np.nan_to_num(f["monetary_value"].to_numpy(float))
    vip = (value >= vip_value) | _top_share(value, VIP_TOP_SHARE)
    at_risk = bands != "low"
    high = np.isin(bands, HIGH_BANDS)
    occasions = f["purchase_days_count"] if "purchase_days_count" in f else f["orders_count"]
    one_and_done = np.nan_to_num(occasions.to_numpy(float)) <= 1
    overdue = f["recency_vs_median_gap"].to_numpy(float)  # NaN for one purchase day
    due = overdue > 1.0
    lapsing = overdue > LAPSED_GAPS
    valuable = _top_share(lifetime, 1.0 - WIN_BACK_VALUE_QUANTILE)
    return np.select(
        [
            high & vip,
            vip,
            ~at_risk,
            one_and_done,
            due & ~lapsing,
            lapsing & valuable,
            lapsing,
        ],
        [
            "vip_outreach",
            "vip_recognition",
            "no_action",
            "second_purchase_nudge",
            "replenishment_reminder",
            "win_back_discount",
            "reactivation_email",
        ],
        default="no_action",
    ).astype(object)


def value_at_stake(probability: np.ndarray, f: pd.DataFrame) -> np.ndarray:
    return np.round(np.asarray(probability, dtype=float) * projected_value(f), 2)
