"""Per-customer drivers: how much each group of features moves this customer's churn probability,
and the top three in plain words.

A group's contribution is margin(customer) - margin(customer with that group set to a healthy
reference: the median of customers who stayed in the training data), where the margin is the
boosted model's log-odds before calibration (calibrated probabilities saturate near 0 and 1, where
no single group would seem to matter). Positive = it raises the risk. One batch prediction per
group, vectorised over customers (no per-customer Python)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.churn.model import FEATURES

GROUPS: dict[str, tuple[str, ...]] = {
    "recency": (
        "days_since_last_order",
        "recency_vs_interval",
        "order_overdue_ratio",
        "recency_vs_median_gap",
        "silence_gap_quantile",
    ),
    "frequency": (
        "orders_count",
        "orders_90d",
        "orders_prior_90d",
        "orders_365d",
        "order_trend",
        "avg_days_between_orders",
        "stddev_days_between_orders",
        "days_since_first_order",
        "tenure_days",
        "purchase_days_count",
        "median_gap_days",
        "last_gap_days",
        "gap_cv",
        "gap_trend",
        "bought_same_season_last_year",
        "holiday_purchase_share",
    ),
    "spend": (
        "monetary_value",
        "monetary_365d",
        "average_order_value",
        "discount_order_share",
        "refund_share",
        "spend_trend",
    ),
    "subscription": (
        "subscription_status_code",
        "subscription_interval_days",
        "subscription_order_share",
        "subscription_pauses_total",
    ),
    "skips": ("subscription_skips_90d",),
    "email": (
        "emails_sent_30d",
        "emails_sent_90d",
        "email_opens_30d",
        "email_opens_90d",
        "email_opens_prior_90d",
        "email_clicks_30d",
        "email_clicks_90d",
        "email_clicks_prior_90d",
        "email_open_rate_90d",
        "email_click_trend",
        "email_open_trend",
        "has_unsubscribed",
    ),
    "web": (
        "web_sessions_30d",
        "web_sessions_90d",
        "web_sessions_prior_90d",
        "product_views_90d",
        "add_to_carts_90d",
        "web_session_trend",
    ),
    "support": ("tickets_30d", "tickets_90d", "tickets_total", "csat_avg"),
}
assert sorted(c for g in GROUPS.values() for c in g) == sorted(FEATURES), "groups cover features"
TOP_N = 3


def reference_values(x_train: pd.DataFrame, y_train: np.ndarray) -> dict[str, float]:
    """Per feature: the median among customers who did not churn (NaN stays NaN)."""
    stayed = x_train[~np.asarray(y_train, dtype=bool)]
    ref = stayed.median(numeric_only=True)
    mode = stayed["subscription_status_code"].mode()
    ref["subscription_status_code"] = float(mode.iloc[0]) if len(mode) else 1.0
    return {k: float(v) for k, v in ref.items()}


def margin(model, x: pd.DataFrame) -> np.ndarray:
    """Log-odds of the uncalibrated boosters (averaged over a calibrated ensemble)."""
    members = getattr(model, "calibrated_classifiers_", None)
    if members:
        return np.mean([m.estimator.decision_function(x) for m in members], axis=0)
    p = np.clip(model.predict_proba(x)[:, 1], 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def contributions(model, x: pd.DataFrame, reference: dict[str, float]) -> pd.DataFrame:
    """(customers x groups) log-odds deltas; columns = GROUPS."""
    base = margin(model, x)
    out = {}
    for group, cols in GROUPS.items():
        moved = x.copy()
        for c in cols:
            moved[c] = reference.get(c, np.nan)
        out[group] = base - margin(model, moved)
    return pd.DataFrame(out, index=x.index)


def _fmt_int(s: pd.Series) -> pd.Series:
    return s.fillna(0).round().astype(np.int64).astype(str)


def _pct_down(recent: pd.Series, prior: pd.Series) -> pd.Series:
    return _fmt_int(100 * (1 - recent / prior.where(prior > 0)))


def driver_texts(f: pd.DataFrame) -> pd.DataFrame:
    """Plain-words text per group for every customer of a feature snapshot (vectorised)."""
    idx = f.index

    def pick(*cases, default):
        conds = [c.to_numpy(bool) for c, _ in cases]
        vals = [np.asarray(v, dtype=object) for _, v in cases]
        return pd.Series(np.select(conds, vals, default=default), index=idx, dtype=object)

    days = _fmt_int(f["days_since_last_order"])
    # the usual interval: the subscription's, else the median gap between purchase days (orders
    # on the same day are one purchase: counting them apart shrinks the interval), else the mean
    # gap between orders
    gap = f["avg_days_between_orders"]
    if "median_gap_days" in f:
        gap = f["median_gap_days"].where(f["median_gap_days"] > 0, gap)
    ratio = f["days_since_last_order"] / f["subscription_interval_days"].where(
        f["subscription_interval_days"] > 0, gap
    ).where(lambda s: s > 0)
    times = ratio.round(1).astype(str).str.replace(r"\.0$", "", regex=True)
    recency = pick(
        (ratio.notna(), "no order for " + days + " days, " + times + "× the usual interval"),
        default="no order for " + days + " days",
    )
    orders, o90, op90 = f["orders_count"], f["orders_90d"], f["orders_prior_90d"]
    frequency = pick(
        (orders <= 1, "only one order so far"),
        (
            o90 < op90,
            "orders down from " + _fmt_int(op90) + " to " + _fmt_int(o90) + " vs prior 90 days",
        ),
        default=_fmt_int(orders) + " orders, " + _fmt_int(f["orders_365d"]) + " in the last year",
    )
    spend = pick(
        (f["refund_share"] >= 0.2, _fmt_int(100 * f["refund_share"]) + "% of spend refunded"),
        (
            f["discount_order_share"] >= 0.5,
            _fmt_int(100 * f["discount_order_share"]) + "% of orders bought on discount",
        ),
        default="$" + _fmt_int(f["monetary_365d"]) + " spent in the last 12 months",
    )
    status = f["subscription_status"]
    subscription = pick(
        (status == "paused", "subscription paused"),
        (status == "cancelled", "subscription cancelled"),
        (status == "never", "no subscription"),
        default="active subscription every " + _fmt_int(f["subscription_interval_days"]) + " days",
    )
    skips = pick(
        (f["subscription_skips_90d"] == 1, "skipped a subscription delivery in 90 days"),
        default="skipped "
        + _fmt_int(f["subscription_skips_90d"])
        + " subscription deliveries in 90 days",
    )
    opens, prior_opens = f["email_opens_90d"], f["email_opens_prior_90d"]
    email = pick(
        (f["has_unsubscribed"], "unsubscribed from email"),
        (
            (prior_opens > 0) & (opens == 0),
            "no email opens in 90 days, down from " + _fmt_int(prior_opens),
        ),
        (
            (prior_opens > 0) & (opens < prior_opens),
            "email opens down " + _pct_down(opens, prior_opens) + "% vs prior 90 days",
        ),
        (opens == 0, "no email opens in 90 days"),
        default=_fmt_int(opens) + " email opens in 90 days",
    )
    visits, prior_visits = f["web_sessions_90d"], f["web_sessions_prior_90d"]
    web = pick(
        (
            (prior_visits > 0) & (visits == 0),
            "no site visits in 90 days, down from " + _fmt_int(prior_visits),
        ),
        (
            (prior_visits > 0) & (visits < prior_visits),
            "site visits down " + _pct_down(visits, prior_visits) + "% vs prior 90 days",
        ),
        (visits == 0, "no site visits in 90 days"),
        default=_fmt_int(visits) + " site visits in 90 days",
    )
    t30, t90 = f["tickets_30d"], f["tickets_90d"]
    support = pick(
        (t30 == 1, "1 support ticket in 30 days"),
        (t30 > 1, _fmt_int(t30) + " support tickets in 30 days"),
        (t90 > 0, _fmt_int(t90) + " support tickets in 90 days"),
        (
            f["csat_avg"] < 3,
            "low support satisfaction (" + f["csat_avg"].round(1).astype(str) + "/5)",
        ),
        default=_fmt_int(f["tickets_total"]) + " support tickets in total",
    )
    return pd.DataFrame(
        {
            "recency": recency,
            "frequency": frequency,
            "spend": spend,
            "subscription": subscription,
            "skips": skips,
            "email": email,
            "web": web,
            "support": support,
        }
    )[list(GROUPS)]


def top_drivers(contrib: pd.DataFrame, texts: pd.DataFrame, n: int = TOP_N, min_delta=0.05):
    """(texts, groups): (customers x n) object arrays, None where fewer drivers raise the risk."""
    values = contrib[list(GROUPS)].to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :n]
    top_vals = np.take_along_axis(values, order, axis=1)
    keep = top_vals > min_delta
    top_text = np.take_along_axis(texts[list(GROUPS)].to_numpy(object), order, axis=1)
    top_group = np.asarray(list(GROUPS), dtype=object)[order]
    return np.where(keep, top_text, None), np.where(keep, top_group, None)


def json_arrays(items: np.ndarray) -> pd.Series:
    """(rows x k) object array of strings/None -> JSON array text per row, vectorised.

    Texts come from ``driver_texts``/flag names: no quotes or backslashes to escape."""
    cols = []
    for j in range(items.shape[1]):
        col = pd.Series(items[:, j], dtype=object)
        cols.append(('"' + col.fillna("").astype(str) + '"').where(col.notna(), ""))
    if not cols:
        return pd.Series(["[]"] * items.shape[0])
    joined = cols[0].str.cat(cols[1:], sep=",")
    joined = joined.str.replace(r",{2,}", ",", regex=True).str.strip(",")
    return "[" + joined + "]"
