"""The baselines the model must beat, fitted on the same training snapshots.

- Recency rule: days since the last order over the customer's usual interval (subscription
  cadence, else their mean gap between orders, else the population's median gap). The rule ranks;
  an isotonic map fitted on the training rows turns its ratio into a probability (for Brier).
- RFM logistic regression: log recency, log frequency, log monetary value, standardized.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _usual_interval(frame: pd.DataFrame, default: float) -> np.ndarray:
    sub = frame["subscription_interval_days"].to_numpy(float)
    gap = frame["avg_days_between_orders"].to_numpy(float)
    interval = np.where(sub > 0, sub, np.where(gap > 0, gap, default))
    return np.where(np.isfinite(interval) & (interval > 0), interval, default)


class RecencyRule:
    name = "recency_baseline"

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> RecencyRule:
        gaps = frame["avg_days_between_orders"].to_numpy(float)
        gaps = gaps[np.isfinite(gaps) & (gaps > 0)]
        self.default_interval_ = float(np.median(gaps)) if len(gaps) else 90.0
        self.iso_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        self.iso_.fit(self.ratio(frame), y)
        return self

    def ratio(self, frame: pd.DataFrame) -> np.ndarray:
        days = frame["days_since_last_order"].to_numpy(float)
        days = np.where(np.isfinite(days), days, 10_000.0)  # subscribed, never ordered: long ago
        return days / _usual_interval(frame, getattr(self, "default_interval_", 90.0))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.iso_.predict(self.ratio(frame))


def rfm_matrix(frame: pd.DataFrame) -> np.ndarray:
    recency = frame["days_since_last_order"].to_numpy(float)
    recency = np.where(np.isfinite(recency), recency, 10_000.0)
    return np.column_stack(
        [
            np.log1p(np.clip(recency, 0, None)),
            np.log1p(frame["orders_count"].to_numpy(float)),
            np.log1p(np.clip(np.nan_to_num(frame["monetary_value"].to_numpy(float)), 0, None)),
        ]
    )


class RfmLogistic:
    name = "rfm_baseline"

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> RfmLogistic:
        self.model_ = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        self.model_.fit(rfm_matrix(frame), y)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(rfm_matrix(frame))[:, 1]


def fit_baselines(frame: pd.DataFrame, y: np.ndarray) -> dict[str, object]:
    return {b.name: b.fit(frame, y) for b in (RecencyRule(), RfmLogistic())}
