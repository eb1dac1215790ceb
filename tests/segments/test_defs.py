"""Segment assets: one per file, keyed segments/<slug>, downstream of the dbt profiles, with the
metadata the UI shows; run through Dagster against the real database."""

from __future__ import annotations

import dagster as dg

from orchestration.resources import WarehouseResource
from orchestration.segments.defs import build_defs


def test_code_location_has_one_asset_per_prebuilt_segment():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    slugs = {
        "vip_customers",
        "at_risk_subscribers",
        "prime_for_subscription",
        "churned_high_value",
        "high_value_at_risk",
    }
    assert {f"segments/{s}" for s in slugs} <= keys
    node = graph.get(dg.AssetKey(["segments", "vip_customers"]))
    assert node.group_name == "segments"
    parents = {k.to_user_string() for k in node.parent_keys}
    assert parents == {"marts/customer_profiles"}
    assert "marts/customer_profiles" in keys  # the dbt asset, not a dangling key


def test_asset_materializes_with_metadata_and_records_changes(segment_db, tmp_path):
    (tmp_path / "big.yml").write_text(
        "name: Big Spenders\nowner: crm@example.com\ndescription: over 500\n"
        "rules: {logic: AND, conditions: [{field: lifetime_value, operator: greater_than, "
        "value: 500}, {event: order_placed, within_last_days: 365}]}\n"
    )
    (tmp_path / "broken.yml").write_text("name: [unclosed\n")
    defs = build_defs(tmp_path)
    assets = {a.key.to_user_string(): a for a in defs.assets}
    assert set(assets) == {"segments/big_spenders", "segments/broken"}
    big = assets["segments/big_spenders"]
    assert {k.to_user_string() for k in big.dependency_keys} == {
        "marts/customer_profiles",
        "marts/customer_timeline",
    }
    assert (
        "INVALID"
        in assets["segments/broken"].descriptions_by_key[dg.AssetKey(["segments", "broken"])]
    )

    resources = {"warehouse": WarehouseResource(database_url=segment_db)}
    first = dg.materialize([big], resources=resources)
    assert first.success
    meta = first.asset_materializations_for_node(big.node_def.name)[0].metadata
    # lifetime_value > 500 and an order in the last year: c01, c02, c03 (200 days ago), c08
    assert meta["members"].value == 4 and meta["entered"].value == 4
    assert meta["share_of_base"].value == 50.0
    assert meta["revenue_lifetime_value"].value == 7900.0
    assert "select" in meta["compiled_sql"].value and "c01" in meta["sample"].value
    assert meta["dagster/row_count"].value == 4

    second = dg.materialize([big], resources=resources)
    meta2 = second.asset_materializations_for_node(big.node_def.name)[0].metadata
    assert (meta2["entered"].value, meta2["exited"].value) == (0, 0)
    assert meta2["change_since_last_refresh"].value == 0
    from orchestration.runtime import db

    with db.connect(segment_db) as conn:
        runs = conn.execute(
            "select run_id, count(*) from segments.membership_changes"
            " where segment = 'big_spenders' group by 1"
        ).fetchall()
    assert runs == [(first.run_id, 4)]

    broken = dg.materialize([assets["segments/broken"]], resources=resources, raise_on_error=False)
    assert not broken.success
