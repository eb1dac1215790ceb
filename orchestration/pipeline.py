"""Running the whole pipeline (the ``cdp_pipeline`` job) through Dagster, on the persistent
instance in DAGSTER_HOME, so every run shows in the UI's run history."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestration.errors import CdpError


@dataclass
class PipelineResult:
    success: bool
    run_id: str
    url: str
    row_counts: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


SUMMARY_TABLES = (
    "raw_shopify.customers",
    "raw_shopify.orders",
    "raw_shopify.order_lines",
    "raw_shopify.refunds",
    "raw_subscriptions.customers",
    "raw_subscriptions.subscriptions",
    "raw_subscriptions.events",
    "raw_klaviyo.profiles",
    "raw_klaviyo.events",
    "raw_ga4.events",
    "raw_helpdesk.requesters",
    "raw_helpdesk.tickets",
    "demo_truth.persons",
    "marts.customers",
    "ml.churn_scores",
    "segments.vip_customers",
    "segments.at_risk_subscribers",
    "segments.prime_for_subscription",
    "segments.churned_high_value",
    "segments.high_value_at_risk",
)


def run_pipeline(*, seed: int, scale: float, as_of: str, next_day: bool) -> PipelineResult:
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.runtime import db
    from orchestration.runtime.dagster_home import ensure_dagster_home

    ensure_dagster_home()
    url = db.warehouse_url()
    job = defs.resolve_job_def("cdp_pipeline")
    run_config = {
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
        "ops": {
            "demo_sources": {
                "config": {"seed": seed, "scale": scale, "as_of": as_of, "next_day": next_day}
            }
        },
    }
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            run_config=run_config, instance=instance, raise_on_error=False
        )
        out = PipelineResult(result.success, result.run_id, url)
        out.notes += _failures(result)
        if result.success:
            # No daemon runs under `cdp demo`: evaluate the export sensor once and run what it
            # requests here, with its run keys, so a daemon started later does not repeat them.
            from orchestration.activation.defs import export_pending

            exports = export_pending(instance, defs)
            failed = [r for r in exports if not r.success]
            out.notes.append(f"exports: {len(exports) - len(failed)} segment export run(s)")
            for r in failed:
                out.success = False
                out.notes += _failures(r)
    with db.connect(url) as conn:
        for name in SUMMARY_TABLES:
            if db.table_exists(conn, name):
                count = conn.execute(f"select count(*) from {name}").fetchone()[0]
                out.row_counts.append((name, count))
    if not out.row_counts:
        raise CdpError(f"the pipeline loaded nothing into {db.describe(url)}")
    return out


def _failures(result) -> list[str]:
    notes = []
    for event in result.all_events:
        if event.is_step_failure:
            err = event.step_failure_data.error
            message = err.message.strip() if err else "unknown error"
            notes.append(f"[red]step {event.step_key} failed:[/red] {message}")
    return notes
