"""The CDP Lite code location: every domain's ``defs.py`` merged."""

from __future__ import annotations

import contextlib

import dagster as dg

from orchestration.activation import defs as activation_defs
from orchestration.churn import defs as churn_defs
from orchestration.resources import WarehouseResource
from orchestration.segments import defs as segments_defs
from orchestration.sources import defs as sources_defs
from orchestration.warehouse import defs as warehouse_defs


def _record_step(context: dg.HookContext, ok: bool) -> None:
    """Record the step's outcome in ops.stage_runs for `cdp status` (orchestration/status.py)."""
    from datetime import UTC, datetime

    from orchestration import status
    from orchestration.runtime import db

    message = None
    if not ok:
        message = _failure_reason(context)
    started_at = None
    with contextlib.suppress(Exception):  # the start time is a nicety; the outcome matters
        stats = context.instance.get_run_step_stats(context.run_id, step_keys=[context.step_key])
        if stats and stats[0].start_time:
            started_at = datetime.fromtimestamp(stats[0].start_time, UTC)
    with db.connect(context.resources.warehouse.url()) as conn:
        status.record_step(
            conn,
            run_id=context.run_id,
            step=context.step_key,
            job=context.job_name,
            ok=ok,
            message=message,
            started_at=started_at,
        )


def _failure_reason(context: dg.HookContext) -> str:
    """Why the step failed: its exception, or (a failure outside user code has none) the step
    failure in the event log; a failed blocking check by what the check said."""
    from orchestration.warehouse.run_results import step_error_text, step_failure_reason

    def records(event_type):
        return [
            r.event_log_entry.dagster_event
            for r in context.instance.get_records_for_run(
                context.run_id, of_type=event_type
            ).records
            if r.event_log_entry.dagster_event
            and r.event_log_entry.dagster_event.step_key == context.step_key
        ]

    def check_evaluations():
        return (e.event_specific_data for e in records(dg.DagsterEventType.ASSET_CHECK_EVALUATION))

    exc = context.op_exception
    if exc is not None:
        text = str(exc) if isinstance(exc, dg.Failure) else f"{type(exc).__name__}: {exc}"
        return step_failure_reason(text, type(exc).__name__, check_evaluations)
    failures = records(dg.DagsterEventType.STEP_FAILURE)
    if not failures:
        return "failed"
    error = failures[-1].step_failure_data.error
    return step_failure_reason(
        step_error_text(error), getattr(error, "cls_name", None), check_evaluations
    )


@dg.success_hook(required_resource_keys={"warehouse"})
def record_stage_success(context: dg.HookContext) -> None:
    _record_step(context, ok=True)


@dg.failure_hook(required_resource_keys={"warehouse"})
def record_stage_failure(context: dg.HookContext) -> None:
    _record_step(context, ok=False)


# The whole pipeline: sources -> dbt warehouse -> churn -> segments. `cdp demo` and the nightly
# schedule run it; exports follow through their sensor. Every step's outcome is recorded in
# ops.stage_runs, which `cdp status` reads.
cdp_pipeline = dg.define_asset_job(
    "cdp_pipeline",
    selection=dg.AssetSelection.all(),
    description="Land sources, build the warehouse, score churn and refresh segments.",
    hooks={record_stage_success, record_stage_failure},
)

defs = dg.Definitions.merge(
    sources_defs.defs,
    warehouse_defs.defs,
    churn_defs.defs,
    segments_defs.defs,
    activation_defs.defs,
    dg.Definitions(resources={"warehouse": WarehouseResource()}, jobs=[cdp_pipeline]),
)
