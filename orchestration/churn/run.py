"""The churn steps as the Dagster assets (and the benchmark) call them: train + evaluate + save,
then score. Each returns a small summary for asset metadata."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orchestration.churn import snapshots as snap
from orchestration.churn import store
from orchestration.churn.config import ChurnConfig
from orchestration.churn.evaluate import best_baseline
from orchestration.churn.train import TrainedChurnModel, score_customers, train_and_evaluate
from orchestration.errors import CdpError
from orchestration.runtime import db


@dataclass
class TrainSummary:
    run_id: str
    version: str
    artifact: Path
    trained: TrainedChurnModel
    gate_passed: bool
    gate_reason: str
    seconds: dict[str, float]


@dataclass
class ScoreSummary:
    run_id: str
    version: str
    scores: pd.DataFrame
    seconds: float


def quality_gate(metrics: dict[str, dict], cfg: ChurnConfig) -> tuple[bool, str]:
    auc = metrics["model"]["roc_auc"]
    name, base_auc = best_baseline(metrics)
    if not auc >= cfg.min_roc_auc:
        return False, f"holdout ROC-AUC {auc:.4f} is below the floor {cfg.min_roc_auc}"
    if not auc > base_auc + cfg.min_auc_gain:
        return False, (
            f"holdout ROC-AUC {auc:.4f} does not beat the best baseline ({name} {base_auc:.4f}) "
            f"by more than {cfg.min_auc_gain}"
        )
    return True, f"holdout ROC-AUC {auc:.4f} >= {cfg.min_roc_auc}; beats {name} {base_auc:.4f}"


def scoring_cutoff(conn) -> object:
    if not db.table_exists(conn, "marts.churn_features"):
        raise CdpError("marts.churn_features does not exist yet: run the dbt build first")
    row = conn.execute("select max(cutoff_date) from marts.churn_features").fetchone()
    if row[0] is None:
        raise CdpError("marts.churn_features is empty: land data and run the dbt build first")
    return row[0]


def current_model(url: str, cfg: ChurnConfig) -> tuple[dict | None, str]:
    """The latest model that passed its gate, when it is still fresh enough to score with
    (trained with today's recipe, its artifact on disk, and the data not yet
    ``cfg.retrain_days`` past its scoring cutoff), else None; and why."""
    from datetime import date

    from orchestration.churn.train import FEATURES

    if cfg.retrain_days == 0:
        return None, "CDP_CHURN_RETRAIN_DAYS=0: retrain every run"
    with db.connect(url) as conn:
        run = store.latest_model_run(conn)
        if run is None:
            return None, "no model has passed its quality gate yet"
        cutoff = scoring_cutoff(conn)
        trained = conn.execute(
            "select cutoffs ->> 'scoring', horizon_days, features from ml.model_runs "
            "where run_id = %s",
            (run["run_id"],),
        ).fetchone()
    model_cutoff, horizon, features = date.fromisoformat(trained[0]), trained[1], trained[2]
    if horizon != cfg.horizon_days or list(features) != list(FEATURES):
        return None, "the features or label horizon changed since the last model"
    if not (Path(run["artifact_path"]) / "model.joblib").exists():
        return None, f"the last model's artifact is missing ({run['artifact_path']})"
    age = (cutoff - model_cutoff).days
    if age < 0 or age >= cfg.retrain_days:
        return None, f"the data moved {age} day(s) past the model ({cfg.retrain_days} allowed)"
    return run, (
        f"{run['model_version']} was trained {age} day(s) of data ago "
        f"(retrained every {cfg.retrain_days}): scoring with it"
    )


def train_model(
    url: str, cfg: ChurnConfig, home: Path, run_id: str | None = None, feature_sql=None
) -> TrainSummary:
    run_id = run_id or uuid.uuid4().hex
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    with db.connect(url) as conn:
        cutoffs = snap.plan_cutoffs(
            scoring_cutoff(conn), cfg.horizon_days, cfg.train_cutoffs, cfg.cutoff_step_days
        )
        orders, events = snap.load_label_events(conn)
    sql = feature_sql or snap.FeatureSql(url)
    feats = snap.load_features(url, sql, [*cutoffs.train, cutoffs.holdout])
    snapshots = snap.labelled_snapshots(feats, orders, events, cfg.horizon_days)
    seconds["snapshots"] = time.perf_counter() - t
    t = time.perf_counter()
    trained = train_and_evaluate(snapshots, cutoffs, cfg)
    seconds["train_evaluate"] = time.perf_counter() - t
    passed, reason = quality_gate(trained.metrics, cfg)
    version = store.model_version(trained, cfg.seed)
    artifact = store.save_artifact(
        home, version, trained, {"run_id": run_id, "horizon_days": cfg.horizon_days}
    )
    with db.connect(url) as conn:
        store.record_model_run(
            conn, run_id=run_id, version=version, trained=trained,
            horizon_days=cfg.horizon_days, artifact=artifact, gate_passed=passed,
        )  # fmt: skip
    return TrainSummary(run_id, version, artifact, trained, passed, reason, seconds)


def score(url: str, cfg: ChurnConfig, run_id: str | None = None) -> ScoreSummary:
    """Score every eligible customer of marts.churn_features with the latest model that passed
    its quality gate; replace ml.churn_scores; record the score distribution."""
    run_id = run_id or uuid.uuid4().hex
    t = time.perf_counter()
    with db.connect(url) as conn:
        run = store.latest_model_run(conn)
        if run is None:
            raise CdpError(
                "no churn model has passed its quality gate yet: materialize churn_model first"
            )
        model, reference, _ = store.load_artifact(Path(run["artifact_path"]))
        features = snap.scoring_features(conn)
        scores = score_customers(
            model, reference, features, model_version=run["model_version"],
            vip_value=cfg.vip_value, threads=cfg.threads,
        )  # fmt: skip
        store.write_scores(conn, scores)
        store.record_scoring_run(conn, run_id, run["model_version"], scores)
    return ScoreSummary(run_id, run["model_version"], scores, time.perf_counter() - t)
