"""The demo/live/off switch through Dagster: demo_sources runs a live connector for a source
switched to live and reports its metadata; sources switched off land nothing."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from orchestration.errors import CdpError
from orchestration.runtime import db
from orchestration.sources.connectors.config import connector_settings, load_connector_settings


def test_modes_from_env():
    cfg = load_connector_settings({"CDP_SOURCES": "live", "CDP_SOURCE_GA4": "off"})
    assert cfg.mode("shopify") == "live" and cfg.mode("ga4") == "off"
    assert load_connector_settings({}).mode("klaviyo") == "demo"
    with pytest.raises(CdpError, match="CDP_SOURCE_SHOPIFY"):
        load_connector_settings({"CDP_SOURCE_SHOPIFY": "maybe"})


def test_demo_sources_runs_live_helpdesk_and_skips_off_sources(
    warehouse_url, demo_data, tmp_path, monkeypatch
):
    from orchestration.resources import WarehouseResource
    from orchestration.sources.defs import demo_sources

    for entity in ("tickets", "requesters"):
        table = pa.Table.from_pandas(demo_data.tables[f"raw_helpdesk.{entity}"])
        pacsv.write_csv(table, tmp_path / f"{entity}.csv")
    monkeypatch.setenv("CDP_SOURCES", "off")
    monkeypatch.setenv("CDP_SOURCE_HELPDESK", "live")
    monkeypatch.setenv("CDP_HELPDESK_DROP_DIR", str(tmp_path))
    connector_settings.cache_clear()
    try:
        result = dg.materialize(
            [demo_sources], resources={"warehouse": WarehouseResource(database_url=warehouse_url)}
        )
    finally:
        connector_settings.cache_clear()
    assert result.success
    mats = {
        "/".join(m.asset_key.path): m.metadata
        for m in result.asset_materializations_for_node("demo_sources")
    }
    assert mats["raw_helpdesk/tickets"]["mode"].value == "live"
    assert mats["raw_helpdesk/tickets"]["files.records_fetched"].value == sum(
        len(demo_data.tables[f"raw_helpdesk.{e}"]) for e in ("tickets", "requesters")
    )
    assert mats["raw_shopify/orders"]["mode"].value == "off"
    with db.connect(warehouse_url) as conn:
        n = conn.execute("select count(*) from raw_helpdesk.tickets").fetchone()[0]
        assert n == len(demo_data.tables["raw_helpdesk.tickets"])
        assert conn.execute("select count(*) from raw_shopify.orders").fetchone()[0] == 0
