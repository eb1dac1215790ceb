"""Train, evaluate and score: the churn workflow in plain functions.

``train_and_evaluate`` fits the model and both baselines on the training cutoffs and measures all
three on the held-out cutoff. The model that scores is the same recipe (features, parameters,
seed) refitted on every labelled cutoff, training + holdout: the metrics measure the recipe on
data it never saw; the refit adds the most recent complete label window, which matters when
behaviour shifts. ``score_customers`` turns a scoring snapshot into ``ml.churn_scores`` rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from orchestration.churn import actions, explain
from orchestration.churn.baselines import fit_baselines
from orchestration.churn.config import ChurnConfig
from orchestration.churn.evaluate import evaluate_all
from orchestration.churn.model import (
    FEATURES,
    INPUT_COLUMNS,
    build_model,
    cutoff_folds,
    model_frame,
)
from orchestration.churn.snapshots import Cutoffs, data_hash
from orchestration.errors import CdpError

RAW_INPUTS = list(INPUT_COLUMNS)

SCORE_COLUMNS = (
    "customer_id",
    "scored_at",
    "churn_probability",
    "churn_risk_score",
    "risk_band",
    "top_drivers",
    "early_warnings",
    "recommended_action",
    "value_at_stake",
    "model_version",
)


@dataclass
class TrainedChurnModel:
    model: object  # fitted CalibratedClassifierCV, refitted on training + holdout cutoffs
    reference: dict[str, float]
    features: tuple[str, ...]
    cutoffs: Cutoffs
    data_hash: str
    metrics: dict[str, dict]  # {"model": {...}, "recency_baseline": {...}, "rfm_baseline": {...}}
    calibration: dict[str, pd.DataFrame]
    holdout_base_rate: float
    rows: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)


def _fit(frame: pd.DataFrame, cfg: ChurnConfig):
    x = model_frame(frame)
    y = frame["churned"].to_numpy(bool)
    folds = cutoff_folds(frame["cutoff_date"].reset_index(drop=True))
    with threadpool_limits(limits=cfg.threads):
        return build_model(cfg.seed, folds).fit(x, y), x, y


def train_and_evaluate(snapshots: pd.DataFrame, cutoffs: Cutoffs, cfg: ChurnConfig):
    train = snapshots[snapshots["cutoff_date"].isin(cutoffs.train)].reset_index(drop=True)
    holdout = snapshots[snapshots["cutoff_date"] == cutoffs.holdout].reset_index(drop=True)
    for name, part in (("training", train), ("holdout", holdout)):
        if part.empty or part["churned"].nunique() < 2:
            raise CdpError(
                f"not enough history for churn {name} snapshots (cutoffs {cutoffs.as_dict()}): "
                "each needs churned and retained customers; lower CDP_CHURN_TRAIN_CUTOFFS / "
                "CDP_CHURN_CUTOFF_STEP_DAYS or load more history"
            )
    seconds = {}
    t = time.perf_counter()
    model, _, _ = _fit(train, cfg)
    seconds["fit"] = time.perf_counter() - t
    baselines = fit_baselines(train, train["churned"].to_numpy(bool))
    y_hold = holdout["churned"].to_numpy(bool)
    with threadpool_limits(limits=cfg.threads):
        scores = {"model": model.predict_proba(model_frame(holdout))[:, 1]}
    scores.update({name: b.predict_proba(holdout) for name, b in baselines.items()})
    all_metrics, calibration = evaluate_all(y_hold, scores)
    # the scoring model: the same recipe refitted on every labelled cutoff (training + holdout),
    # so it has also learnt from the most recent complete label window
    t = time.perf_counter()
    labelled = pd.concat([train, holdout], ignore_index=True)
    final, x_all, y_all = _fit(labelled, cfg)
    seconds["refit"] = time.perf_counter() - t
    return TrainedChurnModel(
        model=final,
        reference=explain.reference_values(x_all, y_all),
        features=FEATURES,
        cutoffs=cutoffs,
        data_hash=data_hash(labelled[["customer_id", "cutoff_date", "churned", *RAW_INPUTS]]),
        metrics=all_metrics,
        calibration=calibration,
        holdout_base_rate=float(y_hold.mean()),
        rows={"train": len(train), "holdout": len(holdout), "refit": len(labelled)},
        seconds=seconds,
    )


def score_customers(
    trained_model,
    reference: dict[str, float],
    snapshot: pd.DataFrame,
    *,
    model_version: str,
    vip_value: float,
    threads: int = 1,
    scored_at: datetime | None = None,
) -> pd.DataFrame:
    """``ml.churn_scores`` rows for the eligible customers of a scoring snapshot."""
    f = snapshot.reset_index(drop=True)
    x = model_frame(f)
    with threadpool_limits(limits=threads):
        p = trained_model.predict_proba(x)[:, 1]
        contrib = explain.contributions(trained_model, x, reference)
    texts, _ = explain.top_drivers(contrib, explain.driver_texts(f))
    score = actions.risk_score(p)
    band = actions.risk_band(score)
    flags = actions.early_warnings(f)
    return pd.DataFrame(
        {
            "customer_id": f["customer_id"],
            "scored_at": scored_at or datetime.now(UTC),
            "churn_probability": np.round(p, 6),
            "churn_risk_score": score,
            "risk_band": band,
            "top_drivers": explain.json_arrays(texts),
            "early_warnings": explain.json_arrays(actions.flag_arrays(flags)),
            "recommended_action": actions.recommend(f, band, flags, vip_value),
            "value_at_stake": actions.value_at_stake(p, f),
            "model_version": model_version,
        }
    )[list(SCORE_COLUMNS)]
