"""Churn settings, read once from the environment (every variable is listed in the README).

| variable | default | meaning |
| --- | --- | --- |
| CDP_CHURN_HORIZON_DAYS | 90 | label window: no order in this many days after the cutoff = churn |
| CDP_CHURN_ACTIVE_DAYS | 180 | eligible = live subscription or an order within this many days |
| CDP_CHURN_TRAIN_CUTOFFS | 4 | training snapshots (cutoffs) |
| CDP_CHURN_RETRAIN_DAYS | 7 | retrain when the data is this many days past the model (0: always) |
| CDP_CHURN_CUTOFF_STEP_DAYS | 30 | days between training cutoffs |
| CDP_CHURN_SEED | 42 | random state of the model |
| CDP_CHURN_THREADS | 1 | OpenMP threads for training (1 is fastest on a busy 2-core box) |
| CDP_CHURN_MIN_ROC_AUC | 0.75 | warning threshold: a champion below it is reported, and scores |
| CDP_CHURN_MIN_AUC_GAIN | 0.0 | ROC-AUC margin the model needs over the best baseline to score |
| CDP_CHURN_MAX_PSI | 0.25 | drift check: PSI of the score distribution vs the previous run |
| CDP_CHURN_VIP_VALUE | 1000 | 12-month value from which at-risk customers get VIP outreach |
| CDP_CHURN_ALERT_MIN_VALUE | 500 | alert on customers entering the high band worth more than this |
| CDP_ALERT_WEBHOOK_URL | (unset) | alerts are POSTed here as JSON; unset = only logged |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from orchestration.errors import CdpError


@dataclass(frozen=True)
class ChurnConfig:
    horizon_days: int = 90
    active_days: int = 180
    train_cutoffs: int = 4
    cutoff_step_days: int = 30
    retrain_days: int = 7
    seed: int = 42
    threads: int = 1
    min_roc_auc: float = 0.75
    min_auc_gain: float = 0.0
    max_psi: float = 0.25
    vip_value: float = 1000.0
    alert_min_value: float = 500.0
    alert_webhook_url: str | None = None


_ENV = {
    "horizon_days": ("CDP_CHURN_HORIZON_DAYS", int),
    "active_days": ("CDP_CHURN_ACTIVE_DAYS", int),
    "train_cutoffs": ("CDP_CHURN_TRAIN_CUTOFFS", int),
    "cutoff_step_days": ("CDP_CHURN_CUTOFF_STEP_DAYS", int),
    "retrain_days": ("CDP_CHURN_RETRAIN_DAYS", int),
    "seed": ("CDP_CHURN_SEED", int),
    "threads": ("CDP_CHURN_THREADS", int),
    "min_roc_auc": ("CDP_CHURN_MIN_ROC_AUC", float),
    "min_auc_gain": ("CDP_CHURN_MIN_AUC_GAIN", float),
    "max_psi": ("CDP_CHURN_MAX_PSI", float),
    "vip_value": ("CDP_CHURN_VIP_VALUE", float),
    "alert_min_value": ("CDP_CHURN_ALERT_MIN_VALUE", float),
}


def load_config(env: dict[str, str] | None = None) -> ChurnConfig:
    env = dict(os.environ) if env is None else env
    values: dict = {}
    for field, (name, kind) in _ENV.items():
        raw = env.get(name)
        if raw in (None, ""):
            continue
        try:
            values[field] = kind(raw)
        except ValueError:
            raise CdpError(f"{name}={raw!r} is not a {kind.__name__}") from None
    values["alert_webhook_url"] = env.get("CDP_ALERT_WEBHOOK_URL") or None
    cfg = ChurnConfig(**values)
    if cfg.horizon_days < 7 or cfg.train_cutoffs < 1 or cfg.cutoff_step_days < 1:
        raise CdpError(
            "CDP_CHURN_HORIZON_DAYS must be >= 7 and CDP_CHURN_TRAIN_CUTOFFS, "
            "CDP_CHURN_CUTOFF_STEP_DAYS >= 1"
        )
    if cfg.retrain_days < 0:
        raise CdpError(f"CDP_CHURN_RETRAIN_DAYS must be >= 0, got {cfg.retrain_days}")
    return cfg


@lru_cache(maxsize=1)
def churn_config() -> ChurnConfig:
    return load_config()
