"""The Dagster wiring, on real instances: the export sensor (one run per change, none for
unchanged segments, none twice for one materialization), the export job, the nightly schedule
and the run-failure sensor."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.activation import defs as activation_defs
from orchestration.activation.config import ActivationConfig, load_config
from orchestration.activation.ledger import ensure_tables
from orchestration.definitions import defs
from orchestration.errors import CdpError
from orchestration.resources import WarehouseResource
from orchestration.runtime import db

SENSOR = activation_defs.segment_exports_sensor


def materialize(instance, slug, entered, exited):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(["segments", slug], metadata={"entered": entered, "exited": exited})
    )


def tick(instance, url, cursor=None):
    ctx = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources={"warehouse": WarehouseResource(database_url=url)},
    )
    result = SENSOR(ctx)
    return {r.tags["cdp/segment"]: r for r in result.run_requests or []}, result.cursor


def test_sensor_exports_nothing_for_a_segment_skipped_for_the_shops_kind(warehouse_url):
    with dg.instance_for_test() as instance:
        # never exported, so it would be exported if it had been built
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                ["segments", "at_risk_subscribers"],
                metadata={"skipped": "skipped: applies_to subscription", "shop_kind": "one_off"},
            )
        )
        materialize(instance, "one_and_done", 5, 0)
        requests, _ = tick(instance, warehouse_url)
        assert set(requests) == {"one_and_done"}


def test_sensor_requests_one_run_per_change_and_none_for_unchanged(warehouse_url):
    with db.connect(warehouse_url) as conn:
        ensure_tables(conn)
        for slug in ("vip_customers", "at_risk_subscribers", "prime_for_subscription"):
            conn.execute(
                "insert into activation.exports (export_id, segment, status, "
                "finished_at) values (%s, %s, 'succeeded', now())",
                (f"e-{slug}", slug),
            )
        conn.execute(
            "insert into activation.deliveries (delivery_id, segment, export_id, "
            "destination, target, batch, records, status) values ('d1', "
            "'prime_for_subscription', 'e-x', 'webhook', 'http://x', 1, 5, 'failed')"
        )
        conn.commit()
    with dg.instance_for_test() as instance:
        materialize(instance, "vip_customers", 3, 1)  # changed
        materialize(instance, "at_risk_subscribers", 0, 0)  # unchanged, exported before
        materialize(instance, "churned_high_value", 0, 0)  # unchanged, but never exported
        materialize(instance, "prime_for_subscription", 0, 0)  # unchanged, undelivered batch
        requests, cursor = tick(instance, warehouse_url)
        assert set(requests) == {"vip_customers", "churned_high_value", "prime_for_subscription"}
        assert requests["vip_customers"].tags["cdp/trigger"] == "membership changed"
        assert requests["churned_high_value"].tags["cdp/trigger"] == "never exported"
        assert requests["prime_for_subscription"].tags["cdp/trigger"] == "undelivered batches"
        assert requests["vip_customers"].run_config == activation_defs.export_run_config(
            "vip_customers"
        )
        first_key = requests["vip_customers"].run_key

        # the sensor ticks again: nothing new, nothing requested
        again, cursor2 = tick(instance, warehouse_url, cursor)
        assert again == {}

        # a daemon restart that lost the cursor re-proposes the *same* run keys, which Dagster
        # refuses to launch twice
        replay, _ = tick(instance, warehouse_url)
        assert replay["vip_customers"].run_key == first_key

        # a new refresh: one new request with a new key; an unchanged refresh: none
        materialize(instance, "vip_customers", 0, 2)
        materialize(instance, "at_risk_subscribers", 0, 0)
        later, cursor3 = tick(instance, warehouse_url, cursor2)
        assert set(later) == {"vip_customers"} and later["vip_customers"].run_key != first_key
        # two changed refreshes between ticks: one run each
        materialize(instance, "vip_customers", 1, 0)
        materialize(instance, "vip_customers", 0, 1)
        both = SENSOR(
            dg.build_sensor_context(
                instance=instance,
                cursor=cursor3,
                definitions=defs,
                resources={"warehouse": WarehouseResource(database_url=warehouse_url)},
            )
        )
        keys = [r.run_key for r in both.run_requests]
        assert len(keys) == 2 == len(set(keys)) and first_key not in keys


def test_export_job_runs_in_dagster_and_is_not_launched_twice(warehouse_url, kit):
    from orchestration.activation import files
    from orchestration.runtime.settings import settings

    with db.connect(warehouse_url, autocommit=True) as conn:
        kit.populate(conn, 30)
        kit.define_segment(conn, "vip_customers", "lifetime_value > 200")
        kit.refresh(conn, "vip_customers")
        members = kit.view_members(conn, "vip_customers")
    with dg.instance_for_test() as instance:
        materialize(instance, "vip_customers", len(members), 0)
        results = activation_defs.export_pending(instance, defs)
        assert len(results) == 1 and results[0].success
        (output,) = [e for e in results[0].all_events if e.event_type_value == "STEP_OUTPUT"]
        metadata = output.event_specific_data.metadata
        assert metadata["members"].value == len(members) == metadata["entered"].value
        assert metadata["files"].value == 6  # csv and parquet (segments/vip_customers.yml)
        export_id = results[0].output_for_node("export_segment")
        seg_dir = settings().exports_dir / "vip_customers"
        assert files.read_latest(seg_dir) == export_id
        manifest = files.verify_export(seg_dir / export_id)
        assert manifest["files"]["members.csv"]["rows"] == len(members)
        run = instance.get_run_by_id(results[0].run_id)
        assert run.tags["dagster/sensor_name"] == activation_defs.SENSOR_NAME
        assert activation_defs.export_pending(instance, defs) == []  # same materialization


def test_definitions_resolve_schedule_and_sensors():
    repo = defs.get_repository_def()
    assert {"segment_export", "cdp_pipeline"} <= set(repo.job_names)
    assert {"segment_exports_sensor", "run_failure_alerts"} <= {s.name for s in repo.sensor_defs}
    schedule = repo.get_schedule_def("nightly_refresh")
    assert schedule.job_name == "cdp_pipeline"
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    config = schedule.evaluate_tick(dg.build_schedule_context()).run_requests[0].run_config
    assert config["ops"]["demo_sources"]["config"]["next_day"] is True
    dg.validate_run_config(repo.get_job("cdp_pipeline"), config)


def test_activation_env_vars():
    cfg = load_config(
        {
            "CDP_NIGHTLY_CRON": "30 4 * * 1-5",
            "CDP_NIGHTLY_TIMEZONE": "Europe/Berlin",
            "CDP_EXPORTS_KEEP": "3",
        }
    )
    assert (cfg.nightly_cron, cfg.nightly_timezone, cfg.exports_keep) == (
        "30 4 * * 1-5",
        "Europe/Berlin",
        3,
    )
    with pytest.raises(CdpError, match="CDP_NIGHTLY_TIMEZONE"):
        load_config({"CDP_NIGHTLY_TIMEZONE": "Mars/Olympus"})
    with pytest.raises(CdpError, match="CDP_EXPORTS_KEEP"):
        load_config({"CDP_EXPORTS_KEEP": "zero"})


def test_failed_run_is_audited_and_alerted(warehouse_url, receiver, monkeypatch):
    alert = receiver(plain=True).start()
    monkeypatch.setattr(
        activation_defs, "ACTIVATION", ActivationConfig(alert_webhook_url=alert.url)
    )
    job = defs.get_job_def("segment_export")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            run_config=activation_defs.export_run_config("no_such_segment"),
            instance=instance,
            tags={"cdp/segment": "no_such_segment"},
            raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        ctx = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alerts",
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            resources={"warehouse": WarehouseResource(database_url=warehouse_url)},
        ).for_run_failure()
        activation_defs.run_failure_alerts(ctx)
    with db.connect(warehouse_url) as conn:
        ((subject, segment, details),) = conn.execute(
            "select subject, segment, details from audit.events where action = 'run.failed'"
        ).fetchall()
    assert subject == "segment_export" and segment == "no_such_segment"
    assert details["run_id"] == result.run_id and details["alert"] == "posted 200"
    assert len(alert.posts) == 1 and "no_such_segment" in alert.posts[0]["text"]
