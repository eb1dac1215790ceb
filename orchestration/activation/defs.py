"""Dagster wiring for activation: the export job, the sensor that launches it when a segment's
membership changes, the nightly refresh schedule and the run-failure alert sensor.

The logic lives in plain modules (``exports``, ``files``, ``webhooks``, ``delivery``); this file
only decides *when* and reports *what happened*.
"""
# no `from __future__ import annotations`: Dagster resolves config/resource annotations at runtime

import json

import dagster as dg

from orchestration.activation.alerting import post_alert
from orchestration.activation.config import config
from orchestration.activation.exports import ExportResult, export_segment
from orchestration.activation.ledger import segments_needing_export
from orchestration.resources import WarehouseResource
from orchestration.segments import defs as segments_defs
from orchestration.segments.spec import load_directory
from orchestration.segments.views import SEGMENTS_DIR

SENSOR_NAME = "segment_exports_sensor"
JOB_NAME = "segment_export"
SEGMENT_TAG = "cdp/segment"


def segment_keys() -> list[dg.AssetKey]:
    return sorted(
        (k for a in segments_defs.defs.assets or [] for k in getattr(a, "keys", ())),
        key=lambda k: k.to_user_string(),
    )


# ---------------------------------------------------------------------------------- the job


class ExportConfig(dg.Config):
    segment: str  # the segment's slug
    force: bool = False  # export even when nothing changed since the last export


def result_metadata(result: ExportResult) -> dict:
    md: dict = {
        "segment": result.segment,
        "status": result.status,
        "export_id": result.export_id,
        "members": result.members,
        "entered": result.entered,
        "exited": result.exited,
        "pii_values_decrypted": result.decrypted,
        "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        "files": len(result.files),
        "deliveries": sum(d.delivered for d in result.deliveries),
        "failed_batches": result.failed_batches,
        "retries": sum(d.retries for d in result.deliveries),
    }
    if result.reason:
        md["reason"] = result.reason
    if result.directory:
        md["directory"] = dg.MetadataValue.path(str(result.directory))
        md["file_table"] = dg.MetadataValue.md(
            "| file | rows | bytes | sha256 |\n| --- | --- | --- | --- |\n"
            + "\n".join(
                f"| {f.name} | {f.rows:,} | {f.bytes:,} | `{f.sha256[:16]}…` |"
                for f in result.files
            )
        )
    if result.deliveries:
        md["delivery_table"] = dg.MetadataValue.md(
            "| destination | target | batches | delivered | failed | retries | backlog re-sent |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n"
            + "\n".join(
                f"| {d.destination} | {d.target.split('?')[0]} | {d.batches} | {d.delivered} | "
                f"{d.failed} | {d.retries} | {d.backlog_resent} |"
                for d in result.deliveries
            )
        )
    return md


@dg.op(name="export_segment", tags={"kind": "activation"})
def export_segment_op(
    context: dg.OpExecutionContext, config: ExportConfig, warehouse: WarehouseResource
):
    """Write the segment's files and push its changes to its webhooks (segments/<slug>.yml)."""
    warehouse.ensure_schema()  # audit.events on a fresh warehouse
    result = export_segment(
        warehouse.url(),
        config.segment,
        context.run_id,
        keys=warehouse.vault_keys(),
        force=config.force,
        log=context.log.info,
    )
    metadata = result_metadata(result)
    if result.failed_batches:
        # files are complete and the state advanced; the failed batches are in the ledger and
        # go first next time. Fail the run so the failure sensor alerts someone.
        raise dg.Failure(
            description=f"segment {config.segment}: {result.failed_batches} batch(es) not "
            "delivered after every retry; they stay `failed` in activation.deliveries and are "
            "re-sent first by the next export of this segment. "
            + "; ".join(e for d in result.deliveries for e in d.errors[:3]),
            metadata=metadata,
        )
    context.log.info(
        f"segment {config.segment}: {result.status} {result.reason}".strip()
        + f" ({result.members:,} members, +{result.entered:,} / -{result.exited:,})"
    )
    return dg.Output(result.export_id, metadata=metadata)


@dg.job(
    name=JOB_NAME,
    description="Export one segment (config: segment slug): files with manifest and LATEST, "
    "signed webhook batches, audit events.",
    tags={"cdp/domain": "activation"},
)
def segment_export_job():
    export_segment_op()


def export_run_config(slug: str, force: bool = False) -> dict:
    return {"ops": {"export_segment": {"config": {"segment": slug, "force": force}}}}


# ------------------------------------------------------------------------------- the sensor


def _changed(metadata: dict) -> bool | None:
    """True/False from the refresh's entered/exited metadata; None when it does not say."""
    try:
        entered, exited = metadata["entered"].value, metadata["exited"].value
    except (KeyError, AttributeError):
        return None
    return bool(entered or exited)


@dg.sensor(
    name=SENSOR_NAME,
    job=segment_export_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One export run per segment materialization that changed membership (or whose "
    "segment was never exported / has undelivered batches); run_key = segment + event id.",
)
def segment_exports_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    specs, _ = load_directory(SEGMENTS_DIR)
    exportable = {slug for slug, spec in specs.items() if spec.exports}
    candidates: list[tuple[str, object]] = []
    for key in segment_keys():
        slug = key.path[-1]
        after = cursor.get(slug)
        if after is None:  # first look at this segment: only its latest materialization counts
            records = context.instance.fetch_materializations(key, limit=1).records
        else:
            flt = dg.AssetRecordsFilter(asset_key=key, after_storage_id=int(after))
            records = context.instance.fetch_materializations(
                flt, limit=100, ascending=True
            ).records
        for record in records:
            cursor[slug] = max(int(cursor.get(slug, 0)), record.storage_id)
            if slug in exportable:
                candidates.append((slug, record))
    requests, pending = [], None
    for slug, record in candidates:
        if "skipped" in record.asset_materialization.metadata:
            continue  # not built for this kind of shop (applies_to): nothing to export
        changed = _changed(record.asset_materialization.metadata)
        reason = "membership changed" if changed or changed is None else None
        if reason is None:
            if pending is None:  # one query, only when some refresh changed nothing
                with warehouse.connect() as conn:
                    pending = segments_needing_export(conn, sorted(exportable))
            reason = pending.get(slug)
        if reason is None:
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{slug}:{record.storage_id}",
                run_config=export_run_config(slug),
                tags={
                    SEGMENT_TAG: slug,
                    "cdp/trigger": reason,
                    "cdp/refresh_run_id": record.run_id or "",
                },
            )
        )
    if not requests:
        return dg.SensorResult(
            skip_reason="no segment refresh with membership changes", cursor=json.dumps(cursor)
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


CONSOLE_INFO = {"console": {"config": {"log_level": "INFO"}}}


def export_pending(
    instance: dg.DagsterInstance,
    definitions: dg.Definitions,
    console: dg.LoggerDefinition | None = None,
) -> list:
    """Evaluate the sensor once and run what it asks for in this process (``cdp demo`` has no
    daemon). Runs carry the sensor's run_key tags, so the daemon will not launch them again.
    ``console`` replaces the runs' console logger."""
    sensor = definitions.get_sensor_def(SENSOR_NAME)
    ctx = dg.build_sensor_context(
        instance=instance, definitions=definitions, resources=dict(definitions.resources or {})
    )
    data = sensor.evaluate_tick(ctx)
    job = definitions.get_job_def(JOB_NAME)
    if console is not None:
        job = job.with_logger_defs({"console": console})
    results = []
    for request in data.run_requests or []:
        tag_filter = dg.RunsFilter(tags={"dagster/run_key": request.run_key})
        if instance.get_runs(filters=tag_filter, limit=1):
            continue
        results.append(
            job.execute_in_process(
                # INFO, as `cdp demo` runs the pipeline: Dagster's DEBUG events are UI material
                run_config={**request.run_config, "loggers": CONSOLE_INFO},
                instance=instance,
                tags={
                    **request.tags,
                    "dagster/run_key": request.run_key,
                    "dagster/sensor_name": SENSOR_NAME,
                },
                raise_on_error=False,
            )
        )
    return results


# ------------------------------------------------------------------- nightly and on failure

ACTIVATION = config()

nightly_refresh = dg.ScheduleDefinition(
    name="nightly_refresh",
    job_name="cdp_pipeline",
    cron_schedule=ACTIVATION.nightly_cron,
    execution_timezone=ACTIVATION.nightly_timezone,
    # demo mode appends the generator's next day, so each night has real changes to export
    run_config={"ops": {"demo_sources": {"config": {"next_day": True}}}},
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Ingestion -> dbt -> churn -> segments every night "
    "(CDP_NIGHTLY_CRON, CDP_NIGHTLY_TIMEZONE); the export sensor follows the changes.",
)


def alert_text(job: str, run_id: str, segment: str | None, error: str) -> str:
    what = f"segment {segment} " if segment else ""
    return f"CDP Lite: {job} run {run_id[:8]} {what}failed: {error[:500]}"


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed run in audit.events and posts it to CDP_ALERT_WEBHOOK_URL.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    run = context.dagster_run
    error = context.failure_event.message or "run failed"
    segment = run.tags.get(SEGMENT_TAG)
    alert_status = None
    if ACTIVATION.alert_webhook_url:
        # retried like any alert; an alerting outage must not hide the failure record below
        delivery = post_alert(
            ACTIVATION.alert_webhook_url,
            {
                "text": alert_text(run.job_name, run.run_id, segment, error),
                "job": run.job_name,
                "run_id": run.run_id,
                "segment": segment,
            },
            idempotency_key=f"run-failed-{run.run_id}",
            log=context.log.warning,
        )
        alert_status = delivery.status
        if not delivery.ok:
            context.log.warning(f"alert webhook failed: {delivery.status}")
    with warehouse.connect() as conn:
        conn.execute(
            "insert into audit.events (actor, action, subject, segment, rows, details) "
            "values ('dagster', 'run.failed', %s, %s, null, %s::jsonb)",
            (
                run.job_name,
                segment,
                json.dumps(
                    {
                        "run_id": run.run_id,
                        "error": error[:4000],
                        "tags": dict(run.tags),
                        "alert": alert_status,
                    },
                    default=str,
                ),
            ),
        )
        conn.commit()


defs = dg.Definitions(
    jobs=[segment_export_job],
    sensors=[segment_exports_sensor, run_failure_alerts],
    schedules=[nightly_refresh],
)
