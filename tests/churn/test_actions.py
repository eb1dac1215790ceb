"""Recommended actions by the shop's kind: a shop without subscriptions gets no subscription
save offers, and its customers are told apart (one-and-done, due, lapsing, VIP)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.churn import actions


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "monetary_value": [50, 2000, 30, 300, 20, 40, 60],
            "monetary_365d": [50, 2000, 30, 300, 20, 40, 60],
            "average_order_value": [25] * 7,
            "purchase_days_count": [2, 5, 1, 3, 3, 2, 2],
            "recency_vs_median_gap": [1.5, 1.0, np.nan, 3.0, 3.0, 0.5, 0.5],
            "subscription_status": ["never"] * 6 + ["active"],
            "subscription_interval_days": [np.nan] * 6 + [30],
            "days_since_last_order": [30, 20, 70, 90, 90, 10, 60],
            "subscription_skips_90d": [0] * 7,
            "email_opens_90d": [0] * 7,
            "email_opens_prior_90d": [0] * 7,
            "web_sessions_90d": [0] * 7,
            "web_sessions_prior_90d": [0] * 7,
            "has_unsubscribed": [False] * 7,
            "tickets_30d": [0] * 7,
        }
    )


def test_one_off_shop_actions_fit_each_customer():
    f = _customers()
    bands = np.array(["high", "high", "medium", "high", "high", "medium", "low"])
    got = actions.recommend(f, bands, actions.early_warnings(f), 1000, "one_off")
    assert list(got) == [
        "replenishment_reminder",  # past the usual interval, not twice
        "vip_outreach",  # valuable and at high risk
        "second_purchase_nudge",  # one purchase day
        "win_back_discount",  # lapsing and in the top quarter by lifetime value
        "reactivation_email",  # lapsing, not worth a discount
        "no_action",  # at risk but within the usual interval
        "no_action",  # low risk
    ]
    assert set(got) <= set(actions.ONE_OFF_ACTIONS)
    assert not {"save_offer", "skip_instead_of_cancel"} & set(got)


def test_subscription_shop_keeps_its_rules():
    f = _customers()
    bands = np.array(["high"] * 7)
    got = actions.recommend(f, bands, actions.early_warnings(f), 1000, "subscription")
    assert got[1] == "vip_outreach" and got[6] in ("save_offer", "skip_instead_of_cancel")
    assert set(got[[0, 2, 3, 4, 5]]) == {"win_back_discount"}
