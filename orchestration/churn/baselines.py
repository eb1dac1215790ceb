"""The candidates the model competes with, fitted on the same training snapshots. Each one turns
a model frame (``model.model_frame``) into P(no purchase in the horizon), the same meaning as the
model's probability, through ``predict_proba`` like a scikit-learn classifier (so scoring and
the driver explanations take any of them):

- ``recency_baseline``: plain days since the last order, mapped to a probability by a logistic
  regression on log days fitted on the training rows (monotone: it ranks exactly as recency).
- ``rfm_baseline``: logistic regression on log recency, log frequency, log monetary value.
- ``bgnbd_baseline``: BG/NBD's probability of no purchase in the horizon (``bgnbd``), fitted on
  the training rows' purchase histories (it needs no labels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from orchestration.churn import bgnbd

NEVER_ORDERED_DAYS = 10_000.0  # a subscriber who never ordered: as if their last order was long ago


def _recency(x: pd.DataFrame) -> np.ndarray:
    days = x["days_since_last_order"].to_numpy(float)
    return np.clip(np.where(np.isfinite(days), days, NEVER_ORDERED_DAYS), 0, None)


def _two_columns(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 0.0, 1.0)
    return np.column_stack([1.0 - p, p])


class RecencyBaseline:
    name = "recency_baseline"

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> RecencyBaseline:
        self.model_ = LogisticRegression(max_iter=1000).fit(self._matrix(x), y)
        return self

    @staticmethod
    def _matrix(x: pd.DataFrame) -> np.ndarray:
        return np.log1p(_recency(x))[:, None]

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(self._matrix(x))

    def get_params(self, deep: bool = True) -> dict:
        return {"score": "log1p(days_since_last_order)", "calibration": "logistic"}


def rfm_matrix(x: pd.DataFrame) -> np.ndarray:
    return np.column_stack(
        [
            np.log1p(_recency(x)),
            np.log1p(np.nan_to_num(x["orders_count"].to_numpy(float))),
            np.log1p(np.clip(np.nan_to_num(x["monetary_value"].to_numpy(float)), 0, None)),
        ]
    )


class RfmLogistic:
    name = "rfm_baseline"

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> RfmLogistic:
        self.model_ = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        self.model_.fit(rfm_matrix(x), y)
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(rfm_matrix(x))

    def get_params(self, deep: bool = True) -> dict:
        return {"features": ["log recency", "log frequency", "log monetary"]}


def purchase_history(x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD's (x, t_x, T) in days from a model frame: repeat purchase occasions (purchase days
    when the frame has them, else orders), first-to-last purchase, first purchase to cutoff."""
    occasions = x["purchase_days_count"] if "purchase_days_count" in x else x["orders_count"]
    first = x["days_since_first_order"].to_numpy(float)
    last = x["days_since_last_order"].to_numpy(float)
    repeat = np.clip(np.nan_to_num(occasions.to_numpy(float)) - 1, 0, None)
    return repeat, np.clip(first - last, 0, None), first


class BgNbdBaseline:
    name = "bgnbd_baseline"

    def __init__(self, horizon_days: int = 90):
        self.horizon_days = horizon_days

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> BgNbdBaseline:
        self.model_ = bgnbd.fit(*purchase_history(x))
        # customers without a purchase history (subscribers who never ordered) get the
        # training churn rate
        self.default_ = float(np.mean(y))
        return self

    def fit_unlabelled(self, x: pd.DataFrame) -> BgNbdBaseline:
        """Fitted on purchase histories alone (too little history for labels): customers
        without one get the mean probability of those with one."""
        self.model_ = bgnbd.fit(*purchase_history(x))
        self.default_ = 0.5
        self.default_ = float(np.mean(self.predict_proba(x)[self._known(x), 1]))
        return self

    @staticmethod
    def _known(x: pd.DataFrame) -> np.ndarray:
        _, t_x, T = purchase_history(x)
        return np.isfinite(T) & np.isfinite(t_x) & (T > 0)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        repeat, t_x, T = purchase_history(x)
        known = np.isfinite(T) & np.isfinite(t_x) & (T > 0)
        p = np.full(len(x), self.default_)
        p[known] = self.model_.p_no_purchase(repeat[known], t_x[known], T[known], self.horizon_days)
        return _two_columns(p)

    def get_params(self, deep: bool = True) -> dict:
        return {"horizon_days": self.horizon_days}


def fit_baselines(x: pd.DataFrame, y: np.ndarray, horizon_days: int) -> dict[str, object]:
    """Every baseline fitted on a model frame ``x`` and its labels."""
    baselines = (RecencyBaseline(), RfmLogistic(), BgNbdBaseline(horizon_days))
    return {b.name: b.fit(x, y) for b in baselines}
