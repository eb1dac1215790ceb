"""Purchase-history features computed in Python from the orders (``int_orders_rolled_up``) at a
cutoff, from orders strictly before it, like the SQL features. What real transaction data carries
beyond counts and sums:

- orders on the same day are one purchase occasion (a second checkout minutes after the first is
  not a second visit): every feature here counts purchase days;
- the customer's own inter-purchase time distribution: median and last gap, their spread, and how
  far the current silence is into it (the share of their own gaps shorter than it);
- trends: the last gap against the earlier ones, the last occasion's spend against the earlier
  ones;
- the calendar: whether they bought in the same season a year before (the coming horizon's window
  last year), and the share of their occasions in November and December (holiday buyers).

Vectorised over all customers (one sort, group-wise shifts and reductions)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

HISTORY_FEATURES: tuple[str, ...] = (
    "purchase_days_count",
    "median_gap_days",
    "last_gap_days",
    "gap_cv",
    "recency_vs_median_gap",
    "silence_gap_quantile",
    "gap_trend",
    "spend_trend",
    "bought_same_season_last_year",
    "holiday_purchase_share",
)
HISTORY_ORDER_COLUMNS = ("customer_id", "ordered_at", "is_cancelled", "cancelled_at", "total_price")


def purchase_days(orders: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """One row per customer and purchase day before ``cutoff`` (orders cancelled before the
    cutoff do not count; a later cancellation was not known then): day, spend."""
    start = pd.Timestamp(cutoff, tz="UTC")
    o = orders[(orders["ordered_at"] < start) & orders["customer_id"].notna()]
    cancelled = o["is_cancelled"].astype(bool) & (o["cancelled_at"] < start).fillna(True)
    o = o[~cancelled]
    day = o["ordered_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    days = (
        pd.DataFrame(
            {
                "customer_id": o["customer_id"].to_numpy(),
                "day": day.to_numpy(),
                "spend": pd.to_numeric(o["total_price"], errors="coerce").fillna(0).to_numpy(),
            }
        )
        .groupby(["customer_id", "day"], as_index=False, sort=True)["spend"]
        .sum()
    )
    return days


def history_features(orders: pd.DataFrame, cutoff: date, horizon_days: int) -> pd.DataFrame:
    """customer_id + HISTORY_FEATURES for every customer with a purchase before ``cutoff``."""
    d = purchase_days(orders, cutoff)
    if d.empty:
        return pd.DataFrame(columns=["customer_id", *HISTORY_FEATURES])
    cut = pd.Timestamp(cutoff)
    g = d.groupby("customer_id", sort=False)
    d["gap"] = g["day"].diff().dt.days.astype(float)
    d["n"] = g.cumcount(ascending=False)  # 0 = the customer's last purchase day
    last = d[d["n"] == 0].set_index("customer_id")
    recency = (cut - last["day"]).dt.days.astype(float)
    gaps = d.dropna(subset=["gap"])
    gg = gaps.groupby("customer_id")["gap"]
    median_gap = gg.median()
    mean_gap = gg.mean()
    cv = gg.std() / mean_gap
    last_gap = last["gap"]
    earlier = gaps[gaps["n"] > 0].groupby("customer_id")["gap"].mean()
    # share of the customer's own gaps shorter than the current silence
    gaps = gaps.assign(silence=recency.reindex(gaps["customer_id"]).to_numpy())
    quantile = (gaps["gap"] < gaps["silence"]).groupby(gaps["customer_id"]).mean()
    earlier_spend = d[d["n"] > 0].groupby("customer_id")["spend"].mean()
    season_start = cut - pd.Timedelta(days=365)
    season_end = season_start + pd.Timedelta(days=horizon_days)
    in_season = d[(d["day"] >= season_start) & (d["day"] < season_end)]["customer_id"].unique()
    holiday = d["day"].dt.month.isin([11, 12]).groupby(d["customer_id"]).mean()

    out = pd.DataFrame(index=last.index)
    out["purchase_days_count"] = g.size().reindex(out.index).astype(float)
    out["median_gap_days"] = median_gap
    out["last_gap_days"] = last_gap
    out["gap_cv"] = cv
    out["recency_vs_median_gap"] = recency / median_gap.where(median_gap > 0)
    out["silence_gap_quantile"] = quantile
    out["gap_trend"] = np.log1p(last_gap) - np.log1p(earlier.reindex(out.index))
    out["spend_trend"] = np.log1p(last["spend"].clip(lower=0)) - np.log1p(
        earlier_spend.reindex(out.index).clip(lower=0)
    )
    out["bought_same_season_last_year"] = out.index.isin(in_season).astype(float)
    out["holiday_purchase_share"] = holiday
    return out[list(HISTORY_FEATURES)].astype(float).reset_index()


def with_history(
    features: pd.DataFrame, orders: pd.DataFrame, cutoff: date, horizon_days: int
) -> pd.DataFrame:
    """A feature snapshot with the history features joined on (NaN for customers who never
    bought)."""
    hist = history_features(orders, cutoff, horizon_days)
    hist["customer_id"] = hist["customer_id"].astype(features["customer_id"].dtype)
    out = features.drop(columns=[c for c in HISTORY_FEATURES if c in features])
    return out.merge(hist, on="customer_id", how="left", validate="one_to_one")
