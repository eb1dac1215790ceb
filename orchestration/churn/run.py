"""The churn steps as the Dagster assets (and the benchmark) call them: train + evaluate + pick the
champion + save, then score with it. Each returns a small summary for asset metadata.

Nothing here fails because the model is weak: a model that loses to a baseline, or a champion
below CDP_CHURN_MIN_ROC_AUC, is reported (``Verdict.warnings``: asset metadata, the non-blocking
``holdout_quality_gate`` check, ``cdp status``, an alert) and the champion scores anyway."""

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
from orchestration.churn.model import build_model
from orchestration.churn.train import (
    MODEL,
    NotEnoughHistory,
    TrainedChurnModel,
    fit_without_history,
    score_customers,
    train_and_evaluate,
)
from orchestration.errors import CdpError
from orchestration.runtime import db
from orchestration.warehouse.shop import shop_profile

UNVALIDATED = (
    "scoring with BG/NBD fitted on the purchase histories alone, unvalidated (no holdout): "
    "scores rank customers by how overdue they are against their own buying rate; a model is "
    "trained once orders span more than {least} days, with every training cutoff from {full}"
)


@dataclass
class Verdict:
    """What a training run's holdout says: who scores, and what to warn about."""

    champion: str
    champion_roc_auc: float
    model_roc_auc: float
    best_baseline: str
    best_baseline_roc_auc: float
    warnings: list[str]

    @property
    def model_won(self) -> bool:
        return self.champion == MODEL

    @property
    def ok(self) -> bool:
        """The model itself scores and meets the floor (what used to be "the gate passed")."""
        return not self.warnings

    @property
    def summary(self) -> str:
        head = (
            f"champion {self.champion} (holdout ROC-AUC {self.champion_roc_auc:.4f}); "
            f"model {self.model_roc_auc:.4f}, best baseline {self.best_baseline} "
            f"{self.best_baseline_roc_auc:.4f}"
        )
        return head + ("" if self.ok else ". " + "; ".join(self.warnings))


@dataclass
class TrainSummary:
    run_id: str
    version: str
    artifact: Path
    trained: TrainedChurnModel
    verdict: Verdict
    seconds: dict[str, float]


@dataclass
class ScoreSummary:
    run_id: str
    version: str
    champion: str
    model_cutoff: object  # the scoring cutoff the model was trained at (<= the scored one)
    scores: pd.DataFrame
    seconds: float
    shop_kind: str  # orchestration.warehouse.shop: which action rules applied


def verdict(metrics: dict[str, dict], champion: str, cfg: ChurnConfig) -> Verdict:
    """Warnings, never failures: the model lost to a baseline; the champion is below the floor
    CDP_CHURN_MIN_ROC_AUC. A run without a holdout (too little history) says so."""
    if MODEL not in metrics:
        nan = float("nan")
        least = 2 * cfg.horizon_days  # the holdout's window, then the latest training cutoff's
        full = least + cfg.cutoff_step_days * (cfg.train_cutoffs - 1)
        text = UNVALIDATED.format(least=least, full=full)
        return Verdict(champion, nan, nan, champion, nan, [text])
    model_auc = metrics[MODEL]["roc_auc"]
    base, base_auc = best_baseline(metrics)
    champ_auc = metrics[champion]["roc_auc"]
    warnings = []
    if champion != MODEL:
        margin = f" by more than {cfg.min_auc_gain}" if cfg.min_auc_gain else ""
        warnings.append(
            f"the model (holdout ROC-AUC {model_auc:.4f}) does not beat {champion} "
            f"({champ_auc:.4f}){margin}: scoring with {champion}"
        )
    if not champ_auc >= cfg.min_roc_auc:
        warnings.append(
            f"the champion's holdout ROC-AUC {champ_auc:.4f} is below CDP_CHURN_MIN_ROC_AUC "
            f"{cfg.min_roc_auc}: scores rank customers only that well"
        )
    return Verdict(champion, champ_auc, model_auc, base, base_auc, warnings)


def scoring_cutoff(conn) -> object:
    if not db.table_exists(conn, "marts.churn_features"):
        raise CdpError("marts.churn_features does not exist yet: run the dbt build first")
    row = conn.execute("select max(cutoff_date) from marts.churn_features").fetchone()
    if row[0] is None:
        raise CdpError("marts.churn_features is empty: land data and run the dbt build first")
    return row[0]


def current_model(url: str, cfg: ChurnConfig) -> tuple[dict | None, str]:
    """The latest model trained on data before the scoring cutoff, when it is still fresh enough
    to score with (trained with today's recipe, its artifact on disk, and the data not yet
    ``cfg.retrain_days`` past its scoring cutoff), else None; and why."""
    from orchestration.churn.train import FEATURES

    if cfg.retrain_days == 0:
        return None, "CDP_CHURN_RETRAIN_DAYS=0: retrain every run"
    with db.connect(url) as conn:
        cutoff = scoring_cutoff(conn)
        run = store.model_run_for(conn, cutoff)
        if run is None:
            return None, f"no model trained on data before {cutoff} yet"
    if MODEL not in run["metrics"]:
        return None, "the last run had too little history for a model: trying again"
    model_cutoff, horizon, features = run["scoring_cutoff"], run["horizon_days"], run["features"]
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
    url: str,
    cfg: ChurnConfig,
    home: Path,
    run_id: str | None = None,
    feature_sql=None,
    builder=build_model,
) -> TrainSummary:
    """Train every candidate, evaluate on the holdout, save the champion and record the run.
    ``builder`` makes the model candidate (tests pass a deliberately useless one)."""
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
    try:
        trained = train_and_evaluate(snapshots, cutoffs, cfg, builder=builder)
        result = verdict(trained.metrics, trained.champion, cfg)
    except NotEnoughHistory as exc:
        # profiles, segments and exports never depend on the model: score with what needs no
        # labelled history, and say so (ml.model_runs.warnings, cdp status, the quality alert)
        with db.connect(url) as conn:
            scoring = snap.scoring_features(conn, cfg.horizon_days)
        trained = fit_without_history(scoring, cutoffs, cfg, str(exc))
        result = verdict(trained.metrics, trained.champion, cfg)
        result.warnings.insert(
            0,
            f"not enough history for churn training: {exc.part} snapshots need churned and "
            f"retained customers (cutoffs {cutoffs.as_dict()})",
        )
    seconds["train_evaluate"] = time.perf_counter() - t
    version = store.model_version(trained, cfg.seed)
    artifact = store.save_artifact(
        home, version, trained, {"run_id": run_id, "horizon_days": cfg.horizon_days}
    )
    with db.connect(url) as conn:
        store.record_model_run(
            conn, run_id=run_id, version=version, trained=trained,
            horizon_days=cfg.horizon_days, artifact=artifact, model_ok=result.ok,
            warnings=result.warnings,
        )  # fmt: skip
    return TrainSummary(run_id, version, artifact, trained, result, seconds)


def score(url: str, cfg: ChurnConfig, run_id: str | None = None) -> ScoreSummary:
    """Score every eligible customer of marts.churn_features with the champion of the newest
    model trained on data before its cutoff (never a model that saw what came after);
    replace ml.churn_scores; record the score distribution."""
    run_id = run_id or uuid.uuid4().hex
    t = time.perf_counter()
    with db.connect(url) as conn:
        cutoff = scoring_cutoff(conn)
        run = store.model_run_for(conn, cutoff)
        if run is None:
            raise CdpError(
                f"no churn model trained on data before {cutoff}: materialize churn_model first"
            )
        model, reference, _ = store.load_artifact(Path(run["artifact_path"]))
        features = snap.scoring_features(conn, cfg.horizon_days)
        shop = shop_profile(conn)
        scores = score_customers(
            model, reference, features, model_version=run["model_version"],
            vip_value=cfg.vip_value, threads=cfg.threads, shop_kind=shop.kind,
        )  # fmt: skip
        store.write_scores(conn, scores)
        store.record_scoring_run(conn, run_id, run["model_version"], scores)
    return ScoreSummary(
        run_id, run["model_version"], run["champion"], run["scoring_cutoff"], scores,
        time.perf_counter() - t, shop.kind,
    )  # fmt: skip
