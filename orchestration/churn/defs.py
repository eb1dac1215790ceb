"""Dagster wiring for churn: the model and scoring assets, their quality gates, and the alert
sensor. Logic lives in the plain modules; this file only wires and reports."""
# no `from __future__ import annotations`: Dagster resolves config/resource annotations at runtime

import dagster as dg

from orchestration.churn import alerts, store
from orchestration.churn import run as churn_run
from orchestration.churn.actions import BANDS
from orchestration.churn.config import churn_config
from orchestration.churn.evaluate import calibration_markdown, metrics_markdown
from orchestration.resources import WarehouseResource
from orchestration.runtime.settings import settings

CHURN_FEATURES = dg.AssetKey(["marts", "churn_features"])  # the dbt model (warehouse translator)
CHURN_MODEL = dg.AssetKey(["churn_model"])
# the key models/staging/ml/_ml__sources.yml gives the dbt source ml.churn_scores (meta.dagster),
# so staging.stg_ml__churn_scores and marts.customer_profiles are downstream of this asset
CHURN_SCORES = dg.AssetKey(["churn_scores"])


class ChurnModelConfig(dg.Config):
    # retrain even when the current model is fresh enough (CDP_CHURN_RETRAIN_DAYS)
    retrain: bool = False


@dg.asset(
    key=CHURN_MODEL,
    deps=[CHURN_FEATURES],
    group_name="ml",
    kinds={"scikit-learn", "postgres"},
    description=(
        "Churn model: calibrated gradient boosting and three baselines (recency, RFM logistic, "
        "BG/NBD) trained on feature snapshots at past cutoffs and evaluated on a later held-out "
        "cutoff; the best by holdout ROC-AUC is the champion that scores. Artifact saved under "
        "$CDP_HOME/models/churn/<version>/, every candidate's metrics and the champion recorded "
        "in ml.model_runs. Retrained once the data is CDP_CHURN_RETRAIN_DAYS past the current "
        "model (or with config retrain: true); in between, materializing it keeps the current "
        "model."
    ),
)
def churn_model(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config: ChurnModelConfig
):
    cfg = churn_config()
    if not config.retrain:
        current, why = churn_run.current_model(warehouse.url(), cfg)
        context.log.info(f"churn model: {why}")
        if current is not None:
            return dg.MaterializeResult(
                metadata={
                    "model_version": current["model_version"],
                    "retrained": False,
                    "reason": why,
                    "champion": current["champion"],
                    "roc_auc": current["metrics"]["model"]["roc_auc"],
                    "champion_roc_auc": current["metrics"][current["champion"]]["roc_auc"],
                    "warnings": dg.MetadataValue.json(current["warnings"]),
                }
            )
    summary = churn_run.train_model(warehouse.url(), cfg, settings().home, run_id=context.run_id)
    t, v = summary.trained, summary.verdict
    context.log.info(f"churn model {summary.version}: {v.summary}")
    delivery = "none"
    if v.warnings:
        delivery = alerts.alert_model_quality(
            run_id=context.run_id, model_version=summary.version, champion=v.champion,
            metrics=t.metrics, warnings=v.warnings, webhook_url=cfg.alert_webhook_url,
            log=context.log.warning,
        )  # fmt: skip
    validated = churn_run.MODEL in t.metrics  # False: too little history, BG/NBD unvalidated
    return dg.MaterializeResult(
        metadata={
            "model_version": summary.version,
            "champion": v.champion,
            "validated": validated,
            "model_won": v.model_won,
            "warnings": dg.MetadataValue.json(v.warnings),
            "quality_alert": delivery,
            "cutoffs": dg.MetadataValue.json(t.cutoffs.as_dict()),
            "rows": dg.MetadataValue.json(t.rows),
            "data_hash": t.data_hash,
            "artifact": dg.MetadataValue.path(str(summary.artifact)),
            "retrained": True,
            "seconds": dg.MetadataValue.json(
                {k: round(v, 2) for k, v in {**summary.seconds, **t.seconds}.items()}
            ),
            **(
                {
                    "champion_roc_auc": v.champion_roc_auc,
                    "metrics": dg.MetadataValue.md(
                        metrics_markdown(t.metrics, t.holdout_base_rate)
                    ),
                    "calibration": dg.MetadataValue.md(calibration_markdown(t.calibration)),
                    "metrics_json": dg.MetadataValue.json(t.metrics),
                    "roc_auc": t.metrics["model"]["roc_auc"],
                    "best_baseline_roc_auc": v.best_baseline_roc_auc,
                    "brier": t.metrics["model"]["brier"],
                }
                if validated
                else {}
            ),
        }
    )


@dg.asset_check(
    asset=CHURN_MODEL,
    name="holdout_quality_gate",
    blocking=False,
    description=(
        "Warns (never blocks) when the model does not beat the best baseline by "
        "CDP_CHURN_MIN_AUC_GAIN on the holdout — the baseline is then the champion that scores — "
        "or when the champion's holdout ROC-AUC is below CDP_CHURN_MIN_ROC_AUC. Scores, "
        "profiles, segments and exports are built either way."
    ),
)
def holdout_quality_gate(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    cfg = churn_config()
    with warehouse.connect() as conn:
        run = store.latest_model_run(conn)
    if run is None:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, description="no model run recorded"
        )
    v = churn_run.verdict(run["metrics"], run["champion"], cfg)
    if churn_run.MODEL not in run["metrics"]:  # too little history: no holdout to judge
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(run["warnings"] or v.warnings),
            metadata={"model_version": run["model_version"], "champion": v.champion,
                      "warnings": dg.MetadataValue.json(run["warnings"] or v.warnings)},
        )  # fmt: skip
    return dg.AssetCheckResult(
        passed=v.ok,
        severity=dg.AssetCheckSeverity.WARN,
        description=v.summary,
        metadata={
            "model_version": run["model_version"],
            "champion": v.champion,
            "champion_roc_auc": v.champion_roc_auc,
            "roc_auc": v.model_roc_auc,
            "floor": cfg.min_roc_auc,
            "best_baseline": v.best_baseline,
            "best_baseline_roc_auc": v.best_baseline_roc_auc,
            "warnings": dg.MetadataValue.json(v.warnings),
        },
    )


@dg.asset(
    key=CHURN_SCORES,
    deps=[CHURN_MODEL, CHURN_FEATURES],
    group_name="ml",
    kinds={"postgres"},
    metadata={"dagster/table_name": "ml.churn_scores"},
    description=(
        "ml.churn_scores: every eligible customer's calibrated churn probability, 0-100 score, "
        "risk band, top-3 drivers, early warnings, recommended action and value at stake."
    ),
)
def churn_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    cfg = churn_config()
    summary = churn_run.score(warehouse.url(), cfg, run_id=context.run_id)
    s = summary.scores
    bands = s["risk_band"].value_counts().reindex(list(BANDS), fill_value=0)
    actions = s["recommended_action"].value_counts()
    preview = s.sort_values("value_at_stake", ascending=False).head(10)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(s),
            "model_version": summary.version,
            "champion": summary.champion,
            "model_cutoff": str(summary.model_cutoff),
            "shop_kind": summary.shop_kind,
            "risk_bands": dg.MetadataValue.json({k: int(v) for k, v in bands.items()}),
            "actions": dg.MetadataValue.json({k: int(v) for k, v in actions.items()}),
            "value_at_stake_total": round(float(s["value_at_stake"].sum()), 2),
            "seconds": round(summary.seconds, 2),
            "preview": dg.MetadataValue.md(
                preview[
                    ["customer_id", "churn_risk_score", "risk_band", "top_drivers",
                     "recommended_action", "value_at_stake"]
                ].to_markdown(index=False)
            ),
        }
    )  # fmt: skip


@dg.asset_check(
    asset=CHURN_SCORES,
    name="score_drift",
    blocking=False,
    description="PSI of the churn-probability distribution vs the previous scoring run.",
)
def score_drift(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    cfg = churn_config()
    with warehouse.connect() as conn:
        previous, latest = store.last_two_histograms(conn)
    if previous is None or latest is None:
        return dg.AssetCheckResult(passed=True, description="first scoring run: nothing to compare")
    value = store.psi(previous, latest)
    return dg.AssetCheckResult(
        passed=value <= cfg.max_psi,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"PSI {value:.4f} (limit {cfg.max_psi})",
        metadata={"psi": round(value, 4), "limit": cfg.max_psi},
    )


@dg.asset_check(
    asset=CHURN_SCORES,
    name="every_eligible_customer_scored",
    blocking=True,
    description="ml.churn_scores covers exactly the eligible customers of marts.churn_features "
    "(live subscription, or an order within CDP_CHURN_ACTIVE_DAYS).",
)
def every_eligible_customer_scored(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    import pandas as pd

    from orchestration.churn.labels import eligible

    with warehouse.connect() as conn:
        features = pd.DataFrame(
            conn.execute(
                "select customer_id, is_buyer, is_subscriber, days_since_last_order "
                "from marts.churn_features"
            ).fetchall(),
            columns=["customer_id", "is_buyer", "is_subscriber", "days_since_last_order"],
        )
        scored = {r[0] for r in conn.execute("select customer_id from ml.churn_scores")}
    expected = set(features.loc[eligible(features), "customer_id"])
    missing, extra = len(expected - scored), len(scored - expected)
    return dg.AssetCheckResult(
        passed=missing == 0 and extra == 0,
        metadata={
            "eligible": len(expected),
            "eligible_unscored": missing,
            "scored_not_eligible": extra,
        },
    )


@dg.op(description="Alert on valuable customers who newly entered the high churn-risk bands.")
def raise_churn_alerts(context: dg.OpExecutionContext, warehouse: WarehouseResource):
    cfg = churn_config()
    with warehouse.connect() as conn:
        result = alerts.raise_alerts(
            conn,
            min_value=cfg.alert_min_value,
            webhook_url=cfg.alert_webhook_url,
            log=context.log.info,
        )
    context.add_output_metadata(
        {"alert_id": result.alert_id or "", "customers": len(result.customers),
         "delivery": result.delivery, "earlier_alerts_resent": result.resent}
    )  # fmt: skip


@dg.job(description="Churn alerts after each scoring run.")
def churn_alert_job():
    raise_churn_alerts()


@dg.asset_sensor(
    asset_key=CHURN_SCORES,
    job=churn_alert_job,
    name="churn_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After churn_scores is materialized, alert on customers newly in the high bands.",
)
def churn_alert_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    # An EventLogEntry has no storage id (the record does; dagster stores it in the cursor only
    # after this function returns). The materializing run and the event's timestamp identify
    # the materialization, and read the same on every tick, so a retried tick or a daemon
    # restart never launches a second alert run for it. Runless (reported) events have run id "".
    yield dg.RunRequest(
        run_key=f"churn_scores:{asset_event.run_id or 'runless'}:{asset_event.timestamp!r}",
        tags={"cdp/churn_scores_run_id": asset_event.run_id},
    )


defs = dg.Definitions(
    assets=[churn_model, churn_scores],
    asset_checks=[holdout_quality_gate, score_drift, every_eligible_customer_scored],
    jobs=[churn_alert_job],
    sensors=[churn_alert_sensor],
)
