"""Purchase-history features: same-day orders are one occasion, nothing at or after the cutoff
counts, and the gap features say what they claim."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from orchestration.churn.history import HISTORY_FEATURES, history_features

CUTOFF = date(2026, 6, 1)


def _orders(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "total_price"])
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True)
    frame["is_cancelled"] = False
    frame["cancelled_at"] = pd.NaT
    frame["cancelled_at"] = pd.to_datetime(frame["cancelled_at"], utc=True)
    return frame


ORDERS = _orders(
    [
        ("a", "2026-01-01 10:00", 20.0),
        ("a", "2026-01-01 10:05", 5.0),  # same day: one purchase occasion of 25
        ("a", "2026-02-01 09:00", 30.0),
        ("a", "2026-03-31 09:00", 60.0),
        ("b", "2025-06-10 12:00", 50.0),  # same season a year before CUTOFF
        ("b", "2025-12-20 12:00", 50.0),
        ("c", "2026-05-20 12:00", 10.0),
    ]
)


def test_same_day_orders_are_one_occasion_and_gaps_are_read_from_occasions():
    f = history_features(ORDERS, CUTOFF, 90).set_index("customer_id")
    assert list(f.columns) == list(HISTORY_FEATURES)
    a = f.loc["a"]
    assert a["purchase_days_count"] == 3
    assert a["median_gap_days"] == pytest.approx((31 + 58) / 2)
    assert a["last_gap_days"] == 58
    assert a["gap_trend"] == pytest.approx(np.log1p(58) - np.log1p(31))
    assert a["spend_trend"] == pytest.approx(np.log1p(60) - np.log1p((25 + 30) / 2))
    # silence of 62 days: longer than both of a's gaps
    assert a["silence_gap_quantile"] == 1.0
    assert a["recency_vs_median_gap"] == pytest.approx(62 / 44.5)
    b = f.loc["b"]
    assert b["bought_same_season_last_year"] == 1.0 and a["bought_same_season_last_year"] == 0.0
    assert b["holiday_purchase_share"] == 0.5
    c = f.loc["c"]
    assert c["purchase_days_count"] == 1 and np.isnan(c["median_gap_days"])


def test_orders_at_or_after_the_cutoff_and_known_cancellations_do_not_count():
    before = history_features(ORDERS, CUTOFF, 90)
    later = _orders([("a", "2026-06-01 00:00", 99.0), ("c", "2026-07-01 12:00", 10.0)])
    cancelled_later = _orders([("b", "2026-05-01 12:00", 10.0)])
    cancelled_later["is_cancelled"] = True
    cancelled_later["cancelled_at"] = pd.Timestamp("2026-06-03", tz="UTC")  # not known yet
    after = history_features(pd.concat([ORDERS, later], ignore_index=True), CUTOFF, 90)
    pd.testing.assert_frame_equal(before, after)
    cancelled_before = cancelled_later.assign(cancelled_at=pd.Timestamp("2026-05-02", tz="UTC"))
    known = history_features(pd.concat([ORDERS, cancelled_before], ignore_index=True), CUTOFF, 90)
    pd.testing.assert_frame_equal(before, known)
    unknown = history_features(pd.concat([ORDERS, cancelled_later], ignore_index=True), CUTOFF, 90)
    assert unknown.set_index("customer_id").loc["b", "purchase_days_count"] == 3
