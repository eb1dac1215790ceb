"""Materialized views, the definitions registry and dynamic membership against real PostgreSQL."""

from __future__ import annotations

import pytest

from orchestration.segments.catalog import load_catalog
from orchestration.segments.compiler import compile_segment
from orchestration.segments.spec import parse_segment
from orchestration.segments.views import list_segments, refresh_all, refresh_segment


def spec_of(slug, *conditions, logic="AND"):
    return parse_segment(
        {
            "name": slug.title(),
            "slug": slug,
            "description": "d",
            "owner": "me@example.com",
            "rules": {"logic": logic, "conditions": list(conditions)},
        },
        f"{slug}.yml",
    )


def refresh(conn, spec, run_id, registry=None):
    catalog = load_catalog(conn, manifest=None)
    return refresh_segment(conn, compile_segment(spec, catalog, registry), run_id)


def changes(conn, slug, run_id=None):
    rows = conn.execute(
        "select customer_id, change from segments.membership_changes where segment = %s"
        " and (%s::text is null or run_id = %s) order by 1",
        (slug, run_id, run_id),
    ).fetchall()
    return sorted(rows)


HIGH = {"field": "lifetime_value", "operator": "greater_than", "value": 500}


def test_view_lifecycle_membership_and_history(conn):
    spec = spec_of("big_spenders", HIGH)
    first = refresh(conn, spec, "run-1")
    assert first.rebuilt and first.members == 4 and first.entered == 4 and first.exited == 0
    assert first.base == 8 and first.share == 0.5
    assert first.ltv_total == 1500 + 800 + 600 + 5000
    assert [r["customer_id"] for r in first.sample] == ["c01", "c02", "c03", "c08"]
    assert set(first.sample[0]) >= {"customer_id", "lifetime_value", "lifecycle_stage"}
    assert changes(conn, "big_spenders", "run-1") == [
        ("c01", "entered"),
        ("c02", "entered"),
        ("c03", "entered"),
        ("c08", "entered"),
    ]
    # the view: a materialized view with a unique index on customer_id
    kind = conn.execute(
        "select relkind from pg_class where oid = 'segments.big_spenders'::regclass"
    ).fetchone()[0]
    assert kind == "m"
    unique = conn.execute(
        "select indisunique from pg_index where indrelid = 'segments.big_spenders'::regclass"
    ).fetchone()[0]
    assert unique

    # unchanged data: refreshed concurrently (not rebuilt), no changes recorded
    second = refresh(conn, spec, "run-2")
    assert not second.rebuilt and (second.members, second.entered, second.exited) == (4, 0, 0)
    assert changes(conn, "big_spenders", "run-2") == []

    # data changes: one customer drops out, one comes in
    conn.execute(
        "update marts.customer_profiles set lifetime_value = 100 where customer_id = 'c03'"
    )
    conn.execute(
        "update marts.customer_profiles set lifetime_value = 900 where customer_id = 'c07'"
    )
    try:
        third = refresh(conn, spec, "run-3")
    finally:
        conn.execute(
            "update marts.customer_profiles set lifetime_value = 600 where customer_id = 'c03'"
        )
        conn.execute(
            "update marts.customer_profiles set lifetime_value = 300 where customer_id = 'c07'"
        )
    assert not third.rebuilt and (third.members, third.entered, third.exited) == (4, 1, 1)
    assert changes(conn, "big_spenders", "run-3") == [("c03", "exited"), ("c07", "entered")]
    assert third.previous_members == 4

    # a changed rule rebuilds the view; the diff is against the previous membership
    old_hash = third.rule_hash
    narrower = spec_of("big_spenders", {**HIGH, "value": 1000})
    fourth = refresh(conn, narrower, "run-4")
    assert fourth.rebuilt and fourth.rule_hash != old_hash
    assert changes(conn, "big_spenders", "run-4") == [("c02", "exited"), ("c07", "exited")]
    reg = conn.execute(
        "select rule_hash, sql, members, last_run_id, owner from segments.definitions"
        " where slug = 'big_spenders'"
    ).fetchone()
    assert (
        reg[0] == fourth.rule_hash
        and reg[1] == fourth.sql
        and reg[2:] == (2, "run-4", "me@example.com")
    )
    history = conn.execute(
        "select members, entered, exited from segments.membership_history"
        " where segment = 'big_spenders'"
    ).fetchall()
    assert history == [(2, 5, 3)]  # one row per day: latest size, the day's entries and exits
    log = conn.execute(
        "select count(*), count(*) filter (where rebuilt) from segments.refreshes"
        " where segment = 'big_spenders'"
    ).fetchone()
    assert log == (4, 2)


def test_view_dropped_by_dbt_is_rebuilt_without_spurious_changes(conn):
    spec = spec_of("vips", {"field": "is_vip", "operator": "is_true"})
    refresh(conn, spec, "a")
    # dbt replaces marts.customer_profiles with `drop ... cascade`, taking the views with it
    conn.execute("drop materialized view segments.vips")
    again = refresh(conn, spec, "b")
    assert again.rebuilt and (again.members, again.entered, again.exited) == (2, 0, 0)


def test_refresh_all_from_a_directory_isolates_bad_files(conn, tmp_path):
    (tmp_path / "one.yml").write_text(
        "name: One\nrules: {logic: AND, conditions: [{field: orders_count, operator: greater_than,"
        " value: 5}]}\n"
    )
    (tmp_path / "two.yml").write_text(
        "name: Two\nrules: {conditions: [{operator: not_in_segment, value: one}]}\n"
    )
    (tmp_path / "bad.yml").write_text(
        "name: Bad\n"
        "rules: {conditions: [{field: lifetime_valu, operator: greater_than, value: 1}]}\n"
    )
    results, errors = refresh_all(conn, tmp_path, run_id="dir-1")
    sizes = {r.slug: r.members for r in results}
    assert sizes == {"one": 3, "two": 5}
    assert len(errors) == 1 and "did you mean `lifetime_value`" in str(errors[0])
    again, _ = refresh_all(conn, tmp_path, run_id="dir-2")
    assert all(r.entered == r.exited == 0 for r in again)
    listed = {r["slug"]: r for r in list_segments(conn, tmp_path) if r["slug"]}
    assert listed["one"]["members"] == 3 and listed["one"]["view_exists"]
    assert any(r["status"] == "invalid" for r in list_segments(conn, tmp_path))


def test_a_table_in_the_way_is_reported(conn):
    conn.execute("create table segments.squatter (customer_id text)")
    from orchestration.errors import CdpError

    with pytest.raises(CdpError, match="segments.squatter exists and is not a segment view"):
        refresh(conn, spec_of("squatter", HIGH), "x")


def test_membership_changes_feed_the_timeline_contract(conn):
    cols = conn.execute(
        "select column_name from information_schema.columns where table_schema = 'segments'"
        " and table_name = 'membership_changes' order by ordinal_position"
    ).fetchall()
    assert [c[0] for c in cols] == ["segment", "customer_id", "change", "changed_at", "run_id"]
    assert {
        r[0] for r in conn.execute("select distinct change from segments.membership_changes")
    } <= {"entered", "exited"}
