"""The code location loads, and every job, schedule and sensor resolves."""

from __future__ import annotations

import dagster as dg


def test_definitions_load_and_resolve():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw_shopify/customers", "raw_ga4/events", "raw_klaviyo/events"} <= keys
    for job in defs.resolve_all_job_defs():
        assert isinstance(job, dg.JobDefinition)
    assert defs.resolve_job_def("cdp_pipeline") is not None
    for schedule in defs.schedules or []:
        assert defs.resolve_schedule_def(schedule.name)
    for sensor in defs.sensors or []:
        assert defs.resolve_sensor_def(sensor.name)
