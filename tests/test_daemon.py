"""The daemon path: the real ``dagster-daemon run`` on the CDP Lite workspace, with PostgreSQL
storage, evaluates every sensor and schedule of the code location against real event-log
records, and no tick fails.

What happens: before the daemon starts, runless materializations of ``churn_scores`` and of a
segment (with entered members) are reported. The daemon's first ticks then launch a
``churn_alert_job`` run (churn_alert_sensor) and a ``segment_export`` run (segment_exports_sensor)
that fails — the segment was never refreshed in this empty warehouse — which
``run_failure_alerts`` records in ``audit.events`` on its next tick. ``nightly_refresh`` runs
every minute here (CDP_NIGHTLY_CRON); its ``cdp_pipeline`` run is held in the run queue by a tag
concurrency limit of 0, so the tick is real (run config checked, run created) without the
pipeline itself running."""

from __future__ import annotations

import time

import pytest

from tests.dagster_kit import BIN, ROOT, isolated_dagster, start_logged, stop_tree

pytestmark = pytest.mark.e2e

SENSORS = {"churn_alert_sensor", "segment_exports_sensor", "run_failure_alerts"}
SCHEDULES = {"nightly_refresh"}
SEGMENT = "vip_customers"  # has exports; never refreshed in the empty warehouse
TIMEOUT_S = 150

WORKSPACE = f"""\
load_from:
  - python_module:
      module_name: orchestration.definitions
      location_name: cdp_lite
      working_directory: {ROOT}
"""


def ticks_by_name(instance) -> dict[str, list]:
    out: dict[str, list] = {}
    for state in instance.all_instigator_state():
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=50)
        out.setdefault(state.instigator_name, []).extend(ticks)
    return out


def failed_ticks(ticks: dict[str, list]) -> list[str]:
    from dagster._core.scheduler.instigation import TickStatus

    return [
        f"{name} tick failed:\n{tick.error.to_string() if tick.error else '(no error recorded)'}"
        for name, name_ticks in ticks.items()
        for tick in name_ticks
        if tick.status == TickStatus.FAILURE
    ]


def runs_of(instance, job: str) -> list:
    import dagster as dg

    return instance.get_runs(filters=dg.RunsFilter(job_name=job))


def failure_records(url: str) -> list[tuple]:
    from orchestration.runtime import db

    with db.connect(url) as conn:
        if not db.table_exists(conn, "audit.events"):
            return []
        return conn.execute(
            "select subject, segment, details->>'run_id' from audit.events "
            "where action = 'run.failed'"
        ).fetchall()


def test_every_sensor_and_schedule_ticks_without_error_in_the_real_daemon(server_url, tmp_path):
    import dagster as dg

    home = tmp_path / "home"
    hold_nightly = {
        "tag_concurrency_limits": [
            {"key": "dagster/schedule_name", "value": "nightly_refresh", "limit": 0}
        ]
    }
    with isolated_dagster(server_url, home, run_queue=hold_nightly) as (env, warehouse):
        env["CDP_NIGHTLY_CRON"] = "* * * * *"
        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(WORKSPACE)
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=dg.AssetKey(["churn_scores"]))
            )
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey(["segments", SEGMENT]),
                    metadata={"entered": 3, "exited": 0},
                )
            )
            log_path = tmp_path / "daemon.log"
            daemon = start_logged(
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, log_path
            )
            try:
                ticks, done, deadline = {}, False, time.monotonic() + TIMEOUT_S
                while time.monotonic() < deadline and not done:
                    time.sleep(3)
                    assert daemon.poll() is None, "dagster-daemon exited:\n" + log_path.read_text()
                    ticks = ticks_by_name(instance)
                    failures = failed_ticks(ticks)
                    assert not failures, "\n\n".join(failures)
                    alert_runs = runs_of(instance, "churn_alert_job")
                    done = (
                        {n for n, t in ticks.items() if t} >= SENSORS | SCHEDULES
                        and alert_runs
                        and alert_runs[0].is_finished
                        and failure_records(warehouse)
                    )
                summary = {n: [t.status.value for t in ts] for n, ts in ticks.items()}
                assert done, (
                    f"timed out after {TIMEOUT_S}s; ticks: {summary}\n"
                    + log_path.read_text()[-6000:]
                )
            finally:
                stop_tree(daemon)

            # churn_alert_sensor: one run for the one materialization, and it succeeded
            (alert_run,) = runs_of(instance, "churn_alert_job")
            assert alert_run.status == dg.DagsterRunStatus.SUCCESS
            assert alert_run.tags["dagster/sensor_name"] == "churn_alert_sensor"
            # segment_exports_sensor: one export of the changed segment, which failed...
            (export_run,) = runs_of(instance, "segment_export")
            assert export_run.tags["cdp/segment"] == SEGMENT
            assert export_run.status == dg.DagsterRunStatus.FAILURE
            # ...and run_failure_alerts recorded exactly that failure
            assert failure_records(warehouse) == [("segment_export", SEGMENT, export_run.run_id)]
            # nightly_refresh: the tick created a cdp_pipeline run (held in the queue)
            nightly = runs_of(instance, "cdp_pipeline")
            assert nightly and nightly[0].tags["dagster/schedule_name"] == "nightly_refresh"
