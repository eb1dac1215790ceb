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
    exports: int = 0  # segment export runs that succeeded after the pipeline


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


def run_pipeline(
    *,
    seed: int,
    scale: float,
    as_of: str,
    next_day: bool,
    full_refresh: bool = False,
    retrain: bool = False,
    generate_demo: bool = True,
    build_as_of: str = "",
) -> PipelineResult:
    """Run ``cdp_pipeline`` on the demo generator's data (``full_refresh``: rebuild incremental
    dbt models from scratch; ``retrain``: the churn model even when it is fresh), then the
    segment exports its sensor asks for. ``generate_demo=False`` (``cdp run``) builds from what
    is landed; ``build_as_of`` is the dbt ``as_of_date`` every recency metric counts from."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.runtime import db
    from orchestration.runtime.dagster_home import ensure_dagster_home

    ensure_dagster_home()
    url = db.warehouse_url()
    # the console gets a line per failure, not Dagster's stack trace (the UI keeps that)
    job = defs.resolve_job_def("cdp_pipeline").with_logger_defs({"console": console_logger()})
    run_config = pipeline_run_config(
        job,
        seed=seed,
        scale=scale,
        as_of=as_of,
        next_day=next_day,
        full_refresh=full_refresh,
        retrain=retrain,
        generate_demo=generate_demo,
        build_as_of=build_as_of,
    )
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

            exports = export_pending(instance, defs, console=console_logger())
            failed = [r for r in exports if not r.success]
            out.exports = len(exports) - len(failed)
            out.notes.append(f"exports: {out.exports} segment export run(s)")
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


def pipeline_run_config(
    job,
    *,
    seed: int,
    scale: float,
    as_of: str,
    next_day: bool,
    full_refresh: bool = False,
    retrain: bool = False,
    generate_demo: bool = True,
    build_as_of: str = "",
) -> dict:
    """The run config of ``cdp_pipeline`` for ``cdp demo`` and ``cdp run``."""
    source_config: dict = {"seed": seed, "scale": scale, "as_of": as_of, "next_day": next_day}
    if not generate_demo:
        source_config["generate_demo"] = False
    ops: dict = {"demo_sources": {"config": source_config}}
    dbt_config: dict = {}
    if full_refresh:
        dbt_config["full_refresh"] = True
    if build_as_of:
        dbt_config["as_of_date"] = build_as_of
    if dbt_config:
        # every dbt step: cdp_dbt_models and cdp_dbt_profiles (and any cdp_dbt_models_2, … should
        # the asset graph ever make Dagster split a dbt asset into several steps)
        for name in dbt_step_names(job):
            ops[name] = {"config": dict(dbt_config)}
    if retrain:
        ops["churn_model"] = {"config": {"retrain": True}}
    return {"loggers": {"console": {"config": {"log_level": "INFO"}}}, "ops": ops}


def console_logger():
    """Dagster's colored console logger, with each failure's error cut to one line saying what
    failed (``describe_error``) instead of the traceback."""
    import logging

    import dagster as dg

    from orchestration.warehouse.run_results import describe_error, step_error_text

    class OneLineErrors(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            meta = getattr(record, "dagster_meta", None)
            event = meta.get("dagster_event") if isinstance(meta, dict) else None
            error = getattr(getattr(event, "event_specific_data", None), "error", None)
            if error is not None and isinstance(record.msg, str) and "\n\n" in record.msg:
                head = record.msg.split("\n\n", 1)[0]
                record.msg = f"{head} {describe_error(step_error_text(error))}"
                record.args = ()
            return True

    base = dg.colored_console_logger

    @dg.logger(base.config_schema, description="The colored console logger, one line per error.")
    def cdp_console(init_context):
        log = base.logger_fn(init_context)
        log.addFilter(OneLineErrors())
        return log

    return cdp_console


def dbt_step_names(job) -> list[str]:
    """The job's dbt build steps (ops of the ``cdp_dbt_models`` / ``cdp_dbt_profiles`` assets)."""
    return sorted(
        node.name
        for node in job.graph.nodes
        if node.name.startswith(("cdp_dbt_models", "cdp_dbt_profiles"))
    )


def _failures(result) -> list[str]:
    """A line per failed step with what failed and why: for a dbt step the tests and models named
    in its run_results.json, otherwise the error's first line (see ``step_failure_reason``)."""
    from rich.markup import escape

    from orchestration.warehouse.run_results import step_error_text, step_failure_reason

    notes = []
    events = list(result.all_events)
    for event in events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            reason = step_failure_reason(
                step_error_text(error),
                getattr(error, "cls_name", None),
                lambda key=event.step_key: (
                    e.event_specific_data
                    for e in events
                    if getattr(e, "event_type_value", None) == "ASSET_CHECK_EVALUATION"
                    and e.step_key == key
                ),
            )
            notes.append(f"[red]step {event.step_key} failed:[/red] {escape(reason)}")
    return notes


@dataclass
class BuildSummary:
    """What ``cdp run`` did, read from the warehouse after the run."""

    landed: list[tuple[str, int]]  # raw table -> rows landed since the previous run
    since: object  # when the previous pipeline run finished (None: first run)
    models_built: int
    customers: int
    profiled: int
    scored: int
    segments_refreshed: int
    as_of_date: object  # the date recency metrics count from


def last_run_finished(url: str):
    """When the last ``cdp_pipeline`` run recorded its last step (None: never ran)."""
    from orchestration.runtime import db

    with db.connect(url) as conn:
        if not db.table_exists(conn, "ops.stage_runs"):
            return None
        return conn.execute(
            "select max(finished_at) from ops.stage_runs where job = 'cdp_pipeline'"
        ).fetchone()[0]


def build_summary(url: str, run_id: str, since) -> BuildSummary:
    from orchestration.runtime import db

    def count(conn, relation: str, where: str = "", params=()) -> int:
        if not db.table_exists(conn, relation):
            return 0
        return conn.execute(f"select count(*) from {relation} {where}", params).fetchone()[0]

    with db.connect(url) as conn:
        landed = conn.execute(
            "select source || '.' || entity, sum(rows_loaded) from ops.load_batches "
            "where status = 'loaded' and (%s::timestamptz is null or finished_at > %s) "
            "group by 1 having sum(rows_loaded) > 0 order by 1",
            (since, since),
        ).fetchall()
        as_of = None
        if db.table_exists(conn, "intermediate.int_as_of_date"):
            as_of = conn.execute("select as_of_date from intermediate.int_as_of_date").fetchone()
        return BuildSummary(
            landed=[(f"raw_{name}", int(rows)) for name, rows in landed],
            since=since,
            models_built=count(conn, "ops.model_refreshes", "where run_id = %s", (run_id,)),
            customers=count(conn, "marts.customers"),
            profiled=count(conn, "marts.customer_profiles"),
            scored=count(conn, "ml.churn_scores"),
            segments_refreshed=count(conn, "segments.refreshes", "where run_id = %s", (run_id,)),
            as_of_date=as_of[0] if as_of else None,
        )
