"""`cdp status` and what feeds it: failures read from dbt's run_results.json, step outcomes
recorded by the pipeline's hooks, model refresh times, and the per-stage verdict."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import dagster as dg
import pytest

from orchestration import status
from orchestration.warehouse import run_results

TEST_FAIL = {
    "status": "fail",
    "timing": [
        {"name": "compile", "started_at": "2026-12-07T15:12:52.981873Z",
         "completed_at": "2026-12-07T15:12:52.990948Z"},
        {"name": "execute", "started_at": "2026-12-07T15:12:52.991595Z",
         "completed_at": "2026-12-07T15:12:53.796482Z"},
    ],
    "thread_id": "Thread-1 (worker)",
    "execution_time": 0.82,
    "adapter_response": {"_message": "SELECT 1", "code": "SELECT", "rows_affected": 1},
    "message": "Got 5 results, configured to fail if != 0",
    "failures": 5,
    "unique_id": "test.cdp_lite.unique_customer_timeline_timeline_event_id.4741770602",
    "compiled": True,
    "relation_name": None,
    "batch_results": None,
}  # fmt: skip
MODEL_ERROR = {
    "status": "error",
    "timing": [],
    "adapter_response": {},
    "message": (
        "Database Error in model customer_timeline "
        "(models/marts/customers/customer_timeline.sql)\n"
        '  column "changed" does not exist\n'
        "  LINE 39:         changed\n"
        "                   ^\n"
        "  compiled code at target/run/cdp_lite/models/marts/customers/customer_timeline.sql"
    ),
    "failures": None,
    "unique_id": "model.cdp_lite.customer_timeline",
    "relation_name": '"cdp"."marts"."customer_timeline"',
}
MODEL_OK = {
    "status": "success",
    "timing": [
        {"name": "compile", "started_at": "2026-12-07T15:16:56.77Z",
         "completed_at": "2026-12-07T15:16:56.89Z"},
        {"name": "execute", "started_at": "2026-12-07T15:16:56.89Z",
         "completed_at": "2026-12-07T15:16:57.093642Z"},
    ],
    "adapter_response": {"_message": "SELECT 1039", "code": "SELECT", "rows_affected": 1039},
    "message": "SELECT 1039",
    "failures": None,
    "unique_id": "model.cdp_lite.customers",
    "relation_name": '"cdp"."marts"."customers"',
}  # fmt: skip
VIEW_OK = {
    **MODEL_OK,
    "adapter_response": {"_message": "CREATE VIEW", "code": "CREATE VIEW", "rows_affected": -1},
    "unique_id": "model.cdp_lite.stg_shopify__orders",
    "relation_name": '"cdp"."staging"."stg_shopify__orders"',
}
TEST_PASS = {**TEST_FAIL, "status": "pass", "failures": 0, "message": None,
             "unique_id": "test.cdp_lite.not_null_customers_customer_id.84dbf8840a"}  # fmt: skip
SKIPPED = {"status": "skipped", "timing": [], "message": None, "failures": None,
           "unique_id": "model.cdp_lite.orders"}  # fmt: skip


def _run_results(*results) -> dict:
    return {
        "metadata": {"dbt_version": "1.11.16", "invocation_id": "18529bce-a115-4414"},
        "results": list(results),
        "elapsed_time": 12.0,
        "args": {"which": "build"},
    }


def _dagster_dbt_error(target) -> str:
    """The message DagsterDbtCliRuntimeError carries, as dagster-dbt 0.29 writes it."""
    return (
        "dagster_dbt.errors.DagsterDbtCliRuntimeError: The dbt CLI process with command\n\n"
        "`dbt build --indirect-selection buildable --select fqn:*`\n\n"
        "failed with exit code `1`. Check the stdout in the Dagster compute logs for the full "
        f"information about the error, or view the dbt debug log: {target}/dbt.log.\n"
    )


# ------------------------------------------------------------------------ failures in a line


def test_a_failed_dbt_build_is_described_by_its_run_results(tmp_path):
    target = tmp_path / "target" / "cdp_dbt_models-d376453-fabdc6a"
    target.mkdir(parents=True)
    (target / "run_results.json").write_text(
        json.dumps(_run_results(MODEL_OK, TEST_PASS, TEST_FAIL, MODEL_ERROR, SKIPPED, SKIPPED))
    )
    (target / "dbt.log").write_text("")

    text = run_results.describe_error(_dagster_dbt_error(target))

    assert text == (
        "dbt test unique_customer_timeline_timeline_event_id failed (5 rows); "
        'dbt model customer_timeline errored: column "changed" does not exist; '
        "2 dependent nodes skipped"
    )
    assert "Traceback" not in text and "compute logs" not in text


def test_long_failure_lists_are_cut(tmp_path):
    target = tmp_path / "cdp_dbt_profiles-1-2"
    target.mkdir()
    tests = [
        {**TEST_FAIL, "unique_id": f"test.cdp_lite.check_{i}.abc", "failures": i}
        for i in range(1, 6)
    ]
    (target / "run_results.json").write_text(json.dumps(_run_results(*tests)))
    text = run_results.describe_error(_dagster_dbt_error(target))
    assert text.startswith("dbt test check_1 failed (1 row); dbt test check_2 failed (2 rows)")
    assert text.endswith("and 2 more")


def test_failures_fall_back_to_dbt_log_errors_then_the_first_line(tmp_path):
    gone = tmp_path / "no-such-target"
    parsed = (
        _dagster_dbt_error(gone) + "\n\nErrors parsed from dbt logs:\n"
        "Failure in test unique_orders_order_id (models/marts/orders/orders.yml)\n"
        "  Got 2 results, configured to fail if != 0"
    )
    assert (
        run_results.describe_error(parsed)
        == "Failure in test unique_orders_order_id (models/marts/orders/orders.yml)"
    )
    assert (
        run_results.describe_error(
            "orchestration.errors.CdpError: holdout ROC-AUC 0.61 below 0.75\n\nStack Trace: …"
        )
        == "holdout ROC-AUC 0.61 below 0.75"
    )
    assert run_results.describe_error("KeyError: 'segment'\n") == "KeyError: 'segment'"
    assert run_results.describe_error(None) == "unknown error"


def test_pipeline_failure_notes_name_the_step_and_the_failing_test(tmp_path):
    from orchestration.pipeline import _failures

    target = tmp_path / "cdp_dbt_models-d376453-fabdc6a"
    target.mkdir()
    (target / "run_results.json").write_text(json.dumps(_run_results(TEST_FAIL)))
    user_error = SimpleNamespace(
        cls_name="DagsterDbtCliRuntimeError", message=_dagster_dbt_error(target), cause=None
    )
    wrapped = SimpleNamespace(
        cls_name="DagsterExecutionStepExecutionError",
        message='Error occurred while executing op "churn_model":',
        cause=SimpleNamespace(cls_name="ValueError", message="ValueError: no eligible customers"),
    )
    events = [
        SimpleNamespace(is_step_failure=False),
        SimpleNamespace(
            is_step_failure=True,
            step_key="cdp_dbt_models",
            step_failure_data=SimpleNamespace(error=user_error),
        ),
        SimpleNamespace(
            is_step_failure=True,
            step_key="churn_model",
            step_failure_data=SimpleNamespace(error=wrapped),
        ),
    ]
    notes = _failures(SimpleNamespace(all_events=events))
    assert notes == [
        "[red]step cdp_dbt_models failed:[/red] "
        "dbt test unique_customer_timeline_timeline_event_id failed (5 rows)",
        "[red]step churn_model failed:[/red] ValueError: no eligible customers",
    ]


def test_model_refreshes_come_from_successful_models_only():
    refreshes = run_results.model_refreshes(
        _run_results(MODEL_OK, VIEW_OK, MODEL_ERROR, TEST_PASS, SKIPPED)
    )
    assert [(r.model, r.relation, r.rows) for r in refreshes] == [
        ("customers", "marts.customers", 1039),
        ("stg_shopify__orders", "staging.stg_shopify__orders", None),
    ]
    assert refreshes[0].refreshed_at == datetime(2026, 12, 7, 15, 16, 57, 93642, tzinfo=UTC)


# ---------------------------------------------------------------------- full refresh config


def test_demo_full_refresh_reaches_every_dbt_step():
    from orchestration.definitions import defs
    from orchestration.pipeline import dbt_step_names, pipeline_run_config
    from orchestration.warehouse.defs import DbtBuildConfig, _build_args

    job = defs.resolve_job_def("cdp_pipeline")
    steps = dbt_step_names(job)
    assert {"cdp_dbt_models", "cdp_dbt_profiles"} <= set(steps)
    config = pipeline_run_config(
        job, seed=7, scale=0.1, as_of="2026-11-20", next_day=False, full_refresh=True
    )
    for step in steps:
        assert config["ops"][step] == {"config": {"full_refresh": True}}
    assert dg.validate_run_config(job, config)  # every op named exists and takes that config
    plain = pipeline_run_config(job, seed=7, scale=0.1, as_of="", next_day=False)
    assert set(plain["ops"]) == {"demo_sources"}
    assert "--full-refresh" in _build_args(DbtBuildConfig(full_refresh=True))


# ------------------------------------------------------------------- the verdict, per stage


def test_a_warehouse_that_never_ran_says_never(fresh_db):
    current = status.collect(fresh_db)
    assert [s.state for s in current.stages] == ["never"] * 5
    assert current.ok and current.last_run is None
    assert current.sources == [] and current.marts == []
    assert current.as_dict()["stages"]["dbt"]["last_success"] is None


def _step(conn, run_id, step, ok, message=None):
    status.record_step(conn, run_id=run_id, step=step, job="cdp_pipeline", ok=ok, message=message)


def test_the_latest_outcome_of_each_stage_decides(warehouse_url):
    from orchestration.runtime import db

    with db.connect(warehouse_url) as conn:
        for step in ("demo_sources", "cdp_dbt_models", "churn_model", "segments__vip_customers"):
            _step(conn, "run-1", step, True)
        _step(conn, "run-2", "demo_sources", True)
        _step(conn, "run-2", "cdp_dbt_models", True)
        _step(conn, "run-2", "cdp_dbt_models_3", False, "dbt test unique_x failed (5 rows)")

    current = status.collect(warehouse_url)
    dbt = current.stage("dbt")
    assert dbt.state == "failing" and not current.ok
    assert dbt.last_failure.run_id == "run-2"
    assert dbt.last_failure.message == "cdp_dbt_models_3: dbt test unique_x failed (5 rows)"
    assert dbt.last_success.run_id == "run-1"  # run-2's dbt stage failed as a whole
    assert current.stage("sources").state == "ok"
    assert current.stage("churn").state == "ok"  # skipped in run-2: its last outcome stands
    assert current.stage("exports").state == "never"
    assert current.last_run.run_id == "run-2" and current.last_run.failed_steps == [
        "cdp_dbt_models_3"
    ]

    with db.connect(warehouse_url) as conn:
        for step in ("demo_sources", "cdp_dbt_models", "cdp_dbt_models_3"):
            _step(conn, "run-3", step, True)
    current = status.collect(warehouse_url)
    assert current.ok and current.stage("dbt").state == "ok"
    assert current.stage("dbt").last_failure.run_id == "run-2"  # still shown, with its reason
    payload = current.as_dict()
    assert payload["ok"] is True and payload["last_run"]["status"] == "succeeded"
    assert json.loads(json.dumps(payload)) == payload


def test_one_failing_source_or_segment_export_fails_its_stage(warehouse_url):
    from orchestration.activation.ledger import ensure_tables as ensure_activation
    from orchestration.runtime import db

    now = datetime.now(UTC)
    with db.connect(warehouse_url) as conn:
        ensure_activation(conn)
        batches = [
            ("b1", "shopify", "orders", "loaded", None, now - timedelta(hours=2)),
            ("b2", "klaviyo", "events", "loaded", None, now - timedelta(hours=2)),
            ("b3", "klaviyo", "events", "failed", "401: check KLAVIYO_API_KEY",
             now - timedelta(hours=1)),
            ("b4", "shopify", "orders", "loaded", None, now - timedelta(minutes=5)),
        ]  # fmt: skip
        for batch_id, source, entity, state, error, at in batches:
            conn.execute(
                """insert into ops.load_batches (batch_id, source, entity, producer,
                       payload_sha256, rows_received, rows_loaded, rows_rejected, status, error,
                       started_at, finished_at)
                   values (%s, %s, %s, 'test', 'x', 10, 10, 0, %s, %s, %s, %s)""",
                (batch_id, source, entity, state, error, at, at),
            )
        exports = [
            ("e1", "vip_customers", "failed", "disk full", now - timedelta(minutes=30)),
            ("e2", "at_risk_subscribers", "succeeded", None, now - timedelta(minutes=10)),
        ]
        for export_id, segment, state, error, at in exports:
            conn.execute(
                """insert into activation.exports (export_id, segment, status, error,
                       started_at, finished_at) values (%s, %s, %s, %s, %s, %s)""",
                (export_id, segment, state, error, at, at),
            )
        conn.commit()

    current = status.collect(warehouse_url)
    sources = current.stage("sources")
    # shopify loaded after klaviyo failed, yet klaviyo's own last load failed
    assert sources.state == "failing" and sources.failing_parts == ["klaviyo: last load failed"]
    assert sources.last_failure.message == "klaviyo.events: 401: check KLAVIYO_API_KEY"
    klaviyo = next(s for s in current.sources if s.source == "klaviyo")
    assert klaviyo.failing and not next(s for s in current.sources if s.source == "shopify").failing
    exports_stage = current.stage("exports")
    assert exports_stage.state == "failing"
    assert exports_stage.failing_parts == ["vip_customers: disk full"]
    assert not current.ok


def test_model_refreshes_show_when_each_mart_was_built(warehouse_url):
    from orchestration.runtime import db

    older = {**MODEL_OK, "unique_id": "model.cdp_lite.orders",
             "relation_name": '"cdp"."marts"."orders"'}  # fmt: skip
    older["timing"] = [{"name": "execute", "completed_at": "2026-12-07T15:00:00Z"}]
    with db.connect(warehouse_url) as conn:
        refreshes = run_results.model_refreshes(_run_results(MODEL_OK, VIEW_OK, older))
        assert status.record_model_refreshes(conn, refreshes, "run-9") == 3
        # an older build recorded late does not move a model's time back
        stale = {
            **MODEL_OK,
            "timing": [{"name": "execute", "completed_at": "2026-01-01T00:00:00Z"}],
        }
        status.record_model_refreshes(
            conn, run_results.model_refreshes(_run_results(stale)), "run-0"
        )

    current = status.collect(warehouse_url)
    marts = {m.relation: m for m in current.marts}
    assert set(marts) == {"marts.customers", "marts.orders"}  # staging views are not marts
    assert marts["marts.customers"].rows == 1039 and marts["marts.customers"].run_id == "run-9"
    assert marts["marts.orders"].refreshed_at == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    dbt = current.stage("dbt")
    assert dbt.state == "ok"  # built by hand, no pipeline run: the newest build counts
    assert "marts refreshed at 2026-12-07 15:00 UTC or later" in dbt.detail


# ----------------------------------------------------------------------- the pipeline's hooks


def test_pipeline_hooks_record_each_steps_outcome(warehouse_url):
    from orchestration.definitions import defs as cdp_defs
    from orchestration.definitions import record_stage_failure, record_stage_success
    from orchestration.resources import WarehouseResource
    from orchestration.runtime import db

    pipeline_hooks = cdp_defs.resolve_job_def("cdp_pipeline").hook_defs
    assert {record_stage_success, record_stage_failure} <= set(pipeline_hooks)

    @dg.asset(name="demo_sources")
    def demo_sources():
        return 1

    @dg.asset(name="churn_model", deps=[demo_sources])
    def churn_model():
        return 1

    @dg.asset_check(asset=churn_model, name="holdout_quality_gate", blocking=True)
    def gate():
        return dg.AssetCheckResult(passed=False, description="holdout ROC-AUC 0.61 below 0.75")

    @dg.asset(name="segments__vip_customers", deps=[demo_sources])
    def vip():
        raise RuntimeError("relation marts.customer_profiles does not exist")

    defs = dg.Definitions(
        assets=[demo_sources, churn_model, vip],
        asset_checks=[gate],
        jobs=[
            dg.define_asset_job("cdp_pipeline", hooks={record_stage_success, record_stage_failure})
        ],
        resources={"warehouse": WarehouseResource(database_url=warehouse_url)},
    )
    result = defs.resolve_job_def("cdp_pipeline").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    with db.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select step, stage, status, message, started_at <= finished_at, job "
            "from ops.stage_runs where run_id = %s order by step",
            (result.run_id,),
        ).fetchall()
    assert rows == [
        ("churn_model", "churn", "succeeded", None, True, "cdp_pipeline"),
        ("churn_model_holdout_quality_gate", "churn", "failed",
         "check churn_model holdout_quality_gate failed: holdout ROC-AUC 0.61 below 0.75", True,
         "cdp_pipeline"),
        ("demo_sources", "sources", "succeeded", None, True, "cdp_pipeline"),
        ("segments__vip_customers", "segments", "failed",
         "RuntimeError: relation marts.customer_profiles does not exist", True, "cdp_pipeline"),
    ]  # fmt: skip
    # what `cdp demo` prints for the same run
    from orchestration.pipeline import _failures

    assert sorted(_failures(result)) == [
        "[red]step churn_model_holdout_quality_gate failed:[/red] "
        "check churn_model holdout_quality_gate failed: holdout ROC-AUC 0.61 below 0.75",
        "[red]step segments__vip_customers failed:[/red] "
        "RuntimeError: relation marts.customer_profiles does not exist",
    ]
    current = status.collect(warehouse_url)
    assert current.stage("churn").state == "failing" and not current.ok
    assert current.stage("segments").state == "failing"
    assert current.stage("sources").state == "ok"


@pytest.mark.parametrize(
    ("step", "stage"),
    [
        ("demo_sources", "sources"),
        ("cdp_dbt_models_3", "dbt"),
        ("cdp_dbt_profiles", "dbt"),
        ("marts__customer_identities_identity_accuracy_vs_demo_truth", "dbt"),
        ("churn_scores_score_drift", "churn"),
        ("segments__vip_customers", "segments"),
        ("export_segment", "exports"),
    ],
)
def test_steps_map_to_stages(step, stage):
    assert status.stage_of(step) == stage


def test_ages_read_naturally():
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert status.ago(None, now) == "never"
    assert status.ago(now - timedelta(seconds=42), now) == "42s ago"
    assert status.ago(now - timedelta(hours=3, minutes=12), now) == "3h 12m ago"
    assert status.ago(now - timedelta(days=16, hours=18), now) == "16d 18h ago"
    assert status.ago(now + timedelta(days=1), now) == "24h ahead"
