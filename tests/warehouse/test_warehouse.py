"""The warehouse on a small demo: dbt build passes, identity resolution matches the ground
truth, ids are stable across rebuilds, personas land where the brief says, and the overview
reproduces the brief's business impact (scaled)."""

from __future__ import annotations

import pytest

from orchestration.runtime import db
from orchestration.warehouse.identity_eval import identity_accuracy
from orchestration.warehouse.project import run_dbt

pytestmark = pytest.mark.db

# the majority person behind each customer, with that person's persona (test-only: truth)
PERSONA_SQL = """
with votes as (
    select i.customer_id, t.person_id, count(*) as n
    from marts.customer_identities i
    join demo_truth.identities t using (source, identity_type, source_id)
    group by 1, 2
),
best as (
    select distinct on (customer_id) customer_id, person_id
    from votes order by customer_id, n desc, person_id
)
select p.persona, c.lifecycle_stage, c.lifetime_value, c.subscription_status
from best b
join demo_truth.persons p using (person_id)
join marts.customers c using (customer_id)
"""


def test_dbt_build_passes_with_all_tests(built_warehouse):
    results = built_warehouse.first_build["results"]
    failed = [r["unique_id"] for r in results if r["status"] not in ("success", "pass")]
    assert not failed, failed
    kinds = {r["unique_id"].split(".")[0] for r in results}
    assert {"model", "test", "unit_test", "seed"} <= kinds


def test_identity_resolution_matches_truth(built_warehouse):
    with db.connect(built_warehouse.url) as conn:
        acc = identity_accuracy(conn)
    assert acc.coverage == 1.0, acc
    assert acc.precision >= 0.995, acc
    assert acc.recall >= 0.995, acc


def test_blocked_junk_values_link_nothing(built_warehouse):
    with db.connect(built_warehouse.url) as conn:
        linked = conn.execute(
            "select count(*) from intermediate.int_identity_edges e "
            "join pii.blocked_values b on b.pii_type = e.identifier_type "
            "and b.value_hash = e.identifier_value"
        ).fetchone()[0]
        blocked_in_data = conn.execute(
            "select count(*) from intermediate.int_identity_identifiers i "
            "join pii.blocked_values b on b.pii_type = i.identifier_type "
            "and b.value_hash = i.identifier_value"
        ).fetchone()[0]
    assert blocked_in_data > 0  # the demo does contain junk values
    assert linked == 0


def test_personas_land_in_the_right_stage(built_warehouse):
    with db.connect(built_warehouse.url) as conn:
        rows = conn.execute(PERSONA_SQL).fetchall()
    by = {}
    for persona, stage, ltv, status in rows:
        by.setdefault(persona, []).append((stage, float(ltv), status))
    at_risk = by["at_risk_subscriber"]
    assert sum(s == "at_risk" for s, _, _ in at_risk) / len(at_risk) >= 0.95
    churned = by["churned_high_value"]
    assert sum(s == "churned" for s, _, _ in churned) / len(churned) >= 0.95
    vips = by["vip_subscriber"]
    assert sum(1000 <= ltv <= 5000 for _, ltv, _ in vips) / len(vips) >= 0.95
    assert all(stage == "prospect" for stage, _, _ in by["prospect"])
    # no healthy subscriber is flagged at risk
    healthy = by["vip_subscriber"] + by["regular_subscriber"]
    assert sum(s == "at_risk" for s, _, _ in healthy) / len(healthy) <= 0.02


def test_overview_reproduces_the_brief(built_warehouse):
    s = built_warehouse.scale
    with db.connect(built_warehouse.url) as conn:
        conv, at_risk, winback, total = conn.execute(
            "select conversion_customers, at_risk_subscribers, winback_customers, "
            "total_opportunity_value from marts.overview"
        ).fetchone()
    assert abs(conv - 1200 * s) <= 0.15 * 1200 * s
    assert abs(at_risk - 800 * s) <= 0.15 * 800 * s
    assert abs(winback - 200 * s) <= 0.15 * 200 * s
    # "$400K+ in opportunities": at least 400K (scaled), within +15%
    assert 400_000 * s * 0.85 <= float(total) <= 400_000 * s * 1.15


def test_revenue_reconciles_and_every_order_has_a_customer(built_warehouse):
    with db.connect(built_warehouse.url) as conn:
        ltv, net = conn.execute(
            "select (select sum(lifetime_value) from marts.customers), "
            "(select sum(net_revenue) from marts.orders where customer_id is not null)"
        ).fetchone()
        orphans = conn.execute(
            "select count(*) from marts.orders where customer_id is null"
        ).fetchone()[0]
    assert ltv == net
    assert orphans == 0


def test_customer_ids_identical_across_rebuilds(built_warehouse):
    # runs last in this module: a second full build on the same data
    run_dbt(["build"], built_warehouse.url)
    with db.connect(built_warehouse.url) as conn:
        ids = dict(conn.execute("select node_key, customer_id from marts.customer_identities"))
        changes = conn.execute(
            "select count(*), count(distinct changed_at) from intermediate.int_identity_changes"
        ).fetchone()
    assert ids == built_warehouse.identities_after_first_build
    # the first build recorded every record as new; the unchanged rebuild recorded nothing
    assert changes == (len(ids), 1)


def test_a_build_waits_for_a_load_in_flight_and_reads_its_rows_once(built_warehouse):
    """The landing barrier (macros/incremental.sql): a raw row stamped before a build starts but
    committed after it would be skipped by every later incremental build if the build did not
    wait for it. Runs after the rebuild test (the warehouse is built and unchanged)."""
    import threading
    import time

    url = built_warehouse.url
    with db.connect(url) as conn:
        profile = conn.execute("select klaviyo_profile_id from staging.stg_klaviyo__profiles "
                               "order by 1 limit 1").fetchone()[0]  # fmt: skip
    load = db.connect(url)
    try:
        load.execute(db.LANDING_LOCK)  # what every landing transaction does first
        load.execute("select set_config('cdp.batch_id', 'test.in_flight', true)")
        load.execute(
            "insert into raw_klaviyo.events (id, profile_id, metric_name, datetime, properties) "
            "values ('in-flight-1', %s, 'Opened Email', now(), '{}')",
            (profile,),
        )
        time.sleep(1.0)  # the row is stamped well before the build starts
        builds = []
        build = threading.Thread(
            target=lambda: builds.append(
                run_dbt(["build", "--select", "stg_klaviyo__events"], url, check=False)
            )
        )
        build.start()
        build.join(timeout=15)
        assert build.is_alive(), "the build did not wait for the load in flight"
        load.commit()
        build.join(timeout=120)
        assert builds and builds[0].returncode == 0, builds[0].stdout[-3000:]
    finally:
        load.close()
    run_dbt(["build", "--select", "stg_klaviyo__events"], url)  # the next night: nothing new
    with db.connect(url) as conn:
        seen = conn.execute(
            "select count(*) from staging.stg_klaviyo__events "
            "where klaviyo_event_id = 'in-flight-1'"
        ).fetchone()[0]
    assert seen == 1


def test_a_nightly_build_re_resolves_only_what_changed_and_agrees_with_a_full_one(
    built_warehouse,
):
    """Incremental identity (macros/identity.sql identity_stitch_scope): a new record that links
    two existing customers merges them, a new record with nothing in common stays alone, every
    other record keeps its customer without being rewritten, and a full resolution of the same
    data gives the same assignment. Runs after the barrier test (it lands rows of its own)."""
    url = built_warehouse.url
    stitched = (
        "select node_key, customer_id, cluster_size, _built_at "
        "from intermediate.int_identities_stitched"
    )
    with db.connect(url) as conn:
        before = {r[0]: r[1:] for r in conn.execute(stitched)}
        # two Shopify customers that are different customers today
        (a_id, a_email, a_customer), (b_id, _, b_customer) = conn.execute(
            """
            select c.shopify_customer_id, c.email_hash, i.customer_id
            from staging.stg_shopify__customers c
            join intermediate.int_identities_stitched i
              on i.node_key = 'shopify:customer_id:' || c.shopify_customer_id
            left join staging.stg_pii__blocked_values b
              on b.pii_type = 'email' and b.value_hash = c.email_hash
            where c.email_hash is not null and b.value_hash is null and i.cluster_size = 1
            order by c.shopify_customer_id
            limit 2
            """
        ).fetchall()
    assert a_customer != b_customer
    load = db.connect(url)
    try:
        load.execute(db.LANDING_LOCK)
        load.execute("select set_config('cdp.batch_id', 'test.identity_probe', true)")
        load.execute(
            "insert into raw_klaviyo.profiles (id, external_id, email_hash, created, updated) "
            "values ('probe-merge', %s, %s, '2020-01-01', '2020-01-01'), "
            "('probe-alone', null, 'probe-hash-nobody-has', now(), now())",
            (str(b_id), a_email),
        )
        load.commit()
    finally:
        load.close()

    run_dbt(["build"], url)
    with db.connect(url) as conn:
        after = {r[0]: r[1:] for r in conn.execute(stitched)}
        changes = conn.execute(
            "select node_key, change_type from intermediate.int_identity_changes "
            "where changed_at = (select max(changed_at) from intermediate.int_identity_changes)"
        ).fetchall()
    merged = {
        after[f"shopify:customer_id:{a_id}"][0],
        after[f"shopify:customer_id:{b_id}"][0],
        after["klaviyo:profile_id:probe-merge"][0],
    }
    assert len(merged) == 1
    assert after["klaviyo:profile_id:probe-alone"][1] == 1
    # the probe is the earliest member (2020): its key names the merged customer
    assert merged != {a_customer} and merged != {b_customer}
    recorded = dict(changes)
    assert recorded["klaviyo:profile_id:probe-alone"] == "new"
    assert recorded[f"shopify:customer_id:{a_id}"] == "merged"
    assert recorded[f"shopify:customer_id:{b_id}"] == "merged"
    untouched = [k for k in before if after[k][0] not in merged]
    rewritten = [k for k in untouched if after[k][2] != before[k][2]]
    assert len(untouched) > 100 and rewritten == []

    # a full resolution of the same records gives the same customers and cluster sizes
    run_dbt(["run", "--full-refresh", "--select", "int_identities_stitched"], url)
    with db.connect(url) as conn:
        full = {r[0]: r[1:3] for r in conn.execute(stitched)}
        recorded_before = conn.execute(
            "select count(*) from intermediate.int_identity_changes"
        ).fetchone()[0]
    assert full == {k: v[:2] for k, v in after.items()}
    run_dbt(["run", "--select", "int_identity_changes"], url)
    with db.connect(url) as conn:
        recorded_after = conn.execute(
            "select count(*) from intermediate.int_identity_changes"
        ).fetchone()[0]
    assert recorded_after == recorded_before  # the full resolution changed no assignment
