"""Train, evaluate and score: the churn workflow in plain functions.

``train_and_evaluate`` fits the candidates — the model and the baselines (recency, RFM logistic,
BG/NBD) — on the training cutoffs, measures them all on the held-out cutoff and names the best by
holdout ROC-AUC the *champion*: that is what scores, whichever it is. Each candidate is then
refitted with the same recipe on every labelled cutoff, training + holdout: the metrics measure
the recipe on data it never saw; the refit adds the most recent complete label window, which
matters when behaviour shifts. ``score_customers`` turns a scoring snapshot into
``ml.churn_scores`` rows with the champion."""

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
from orchestration.churn.evaluate import choose_champion, evaluate_all
from orchestration.churn.model import (
    FEATURES,
    INPUT_COLUMNS,
    build_model,
    cutoff_folds,
    model_frame,
)
from orchestration.churn.snapshots import Cutoffs, data_hash
from orchestration.errors import CdpError
from orchestration.warehouse.shop import SUBSCRIPTION

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


MODEL = "model"
BGNBD = "bgnbd_baseline"
NO_METRICS = {k: None for k in ("roc_auc", "pr_auc", "brier", "top_decile_lift")}


class NotEnoughHistory(CdpError):
    """Too little history for labelled training and holdout snapshots (``fit_without_history``
    then scores). ``part``: "training" or "holdout"."""

    def __init__(self, message: str, part: str):
        super().__init__(message)
        self.part = part


@dataclass
class TrainedChurnModel:
    model: object  # the champion, refitted on training + holdout cutoffs: what scores
    champion: str  # its name: "model" or a baseline's
    candidates: dict[str, object]  # every candidate refitted, champion included
    reference: dict[str, float]
    features: tuple[str, ...]
    cutoffs: Cutoffs
    data_hash: str
    metrics: dict[str, dict]  # {"model": {...}, "recency_baseline": {...}, ...} on the holdout
    calibration: dict[str, pd.DataFrame]
    holdout_base_rate: float
    rows: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)


def _fit(frame: pd.DataFrame, cfg: ChurnConfig, builder=build_model) -> dict[str, object]:
    """Every candidate fitted on ``frame``: {name: fitted scorer}, the model first."""
    x = model_frame(frame)
    y = frame["churned"].to_numpy(bool)
    folds = cutoff_folds(frame["cutoff_date"].reset_index(drop=True))
    with threadpool_limits(limits=cfg.threads):
        fitted = {MODEL: builder(cfg.seed, folds).fit(x, y)}
    fitted.update(fit_baselines(x, y, cfg.horizon_days))
    return fitted


def predict(scorer, x: pd.DataFrame, threads: int = 1) -> np.ndarray:
    with threadpool_limits(limits=threads):
        return np.asarray(scorer.predict_proba(x))[:, 1]


def train_and_evaluate(
    snapshots: pd.DataFrame, cutoffs: Cutoffs, cfg: ChurnConfig, *, builder=build_model
) -> TrainedChurnModel:
    """``builder(seed, calibration_folds)`` makes the model candidate (default: the gradient
    boosting of ``model.build_model``)."""
    train = snapshots[snapshots["cutoff_date"].isin(cutoffs.train)].reset_index(drop=True)
    holdout = snapshots[snapshots["cutoff_date"] == cutoffs.holdout].reset_index(drop=True)
    for name, part in (("training", train), ("holdout", holdout)):
        if part.empty or part["churned"].nunique() < 2:
            raise NotEnoughHistory(
                f"not enough history for churn {name} snapshots (cutoffs {cutoffs.as_dict()}): "
                "each needs churned and retained customers; lower CDP_CHURN_TRAIN_CUTOFFS / "
                "CDP_CHURN_CUTOFF_STEP_DAYS or load more history",
                name,
            )
    seconds = {}
    t = time.perf_counter()
    fitted = _fit(train, cfg, builder)
    seconds["fit"] = time.perf_counter() - t
    y_hold = holdout["churned"].to_numpy(bool)
    x_hold = model_frame(holdout)
    scores = {name: predict(scorer, x_hold, cfg.threads) for name, scorer in fitted.items()}
    all_metrics, calibration = evaluate_all(y_hold, scores)
    champion = choose_champion(all_metrics, cfg.min_auc_gain)
    # the scorers: the same recipes refitted on every labelled cutoff (training + holdout), so
    # they have also learnt from the most recent complete label window
    t = time.perf_counter()
    labelled = pd.concat([train, holdout], ignore_index=True)
    final = _fit(labelled, cfg, builder)
    seconds["refit"] = time.perf_counter() - t
    x_all, y_all = model_frame(labelled), labelled["churned"].to_numpy(bool)
    return TrainedChurnModel(
        model=final[champion],
        champion=champion,
        candidates=final,
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


def fit_without_history(
    scoring: pd.DataFrame, cutoffs: Cutoffs, cfg: ChurnConfig, reason: str
) -> TrainedChurnModel:
    """When there is too little history for labelled snapshots: BG/NBD fitted on the scoring
    snapshot's own purchase histories. It needs no labels (each customer's purchase count, first
    and last purchase are enough) and its score means what every candidate's does, P(no
    purchase in the horizon), so bands, segments and actions work unchanged. It is unvalidated:
    no holdout, no metrics; ``reason`` says why."""
    from orchestration.churn.baselines import BgNbdBaseline

    x = model_frame(scoring.reset_index(drop=True))
    if x.empty:
        raise CdpError(f"{reason}; and no eligible customer to score: land orders first")
    try:
        scorer = BgNbdBaseline(cfg.horizon_days).fit_unlabelled(x)
    except ValueError as exc:  # fewer than 10 buyers: nothing to fit a purchase model on
        raise CdpError(
            f"{reason}; and too few customers to score churn at all ({len(x)} eligible: {exc}). "
            "Land more orders (cdp import shopify-orders FILE) and run again"
        ) from exc
    stayed = np.zeros(len(x), dtype=bool)  # no labels: drivers compare with the typical customer
    return TrainedChurnModel(
        model=scorer,
        champion=BGNBD,
        candidates={BGNBD: scorer},
        reference=explain.reference_values(x, stayed),
        features=FEATURES,
        cutoffs=cutoffs,
        data_hash=data_hash(
            scoring.assign(churned=False, cutoff_date=cutoffs.scoring)[
                ["customer_id", "cutoff_date", "churned", *RAW_INPUTS]
            ]
        ),
        metrics={BGNBD: dict(NO_METRICS)},
        calibration={},
        holdout_base_rate=float("nan"),
        rows={"train": 0, "holdout": 0, "refit": 0, "unlabelled": len(x)},
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
    shop_kind: str = SUBSCRIPTION,
) -> pd.DataFrame:
    """``ml.churn_scores`` rows for the eligible customers of a scoring snapshot; the
    recommended actions follow the rules of ``shop_kind`` (``actions``)."""
    f = snapshot.reset_index(drop=True)
    x = model_frame(f)
    p = predict(trained_model, x, threads)
    with threadpool_limits(limits=threads):
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
            "recommended_action": actions.recommend(f, band, flags, vip_value, shop_kind),
            "value_at_stake": actions.value_at_stake(p, f),
            "model_version": model_version,
        }
    )[list(SCORE_COLUMNS)]
