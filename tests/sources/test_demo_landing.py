"""The demo generator landed into a real warehouse: personas, idempotency, next day, no PII."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from orchestration.privacy.blocklist import load_blocklist
from orchestration.privacy.vault import blind_index, decrypt, load_keys, normalize
from orchestration.runtime import db
from orchestration.runtime.settings import load_settings
from orchestration.sources.demo import DemoConfig, generate_demo
from orchestration.sources.demo_landing import land_demo

SEED, AS_OF = 11, date(2026, 11, 20)
EMAIL_RE = r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}"


def keys():
    cfg = load_settings()
    return load_keys(cfg.pii_key, cfg.keys_dir)


def land(url, scale=0.1, next_day=False, as_of=AS_OF):
    return land_demo(
        url,
        seed=SEED,
        scale=scale,
        as_of=as_of,
        keys=keys(),
        blocklist=load_blocklist(),
        next_day=next_day,
    )


def test_personas_idempotency_and_next_day(warehouse_url):
    first = land(warehouse_url)
    with db.connect(warehouse_url) as conn:
        personas = dict(
            conn.execute("select persona, count(*) from demo_truth.persons group by 1").fetchall()
        )
        counts = dict(conn.execute(_COUNTS).fetchall())
    assert personas["vip_subscriber"] == 50
    assert personas["regular_subscriber"] == 200
    assert personas["at_risk_subscriber"] == 80
    assert personas["one_time_buyer"] == 400
    assert personas["churned_high_value"] == 20
    assert personas["prospect"] >= 250
    assert first.rows_loaded == sum(counts.values())

    # the same seed and as-of again: every batch recognised, nothing added
    again = land(warehouse_url)
    assert again.mode == "unchanged" and again.rows_loaded == 0
    with db.connect(warehouse_url) as conn:
        assert dict(conn.execute(_COUNTS).fetchall()) == counts

    # next day: only activity of (as_of, as_of + 1 day] arrives
    with db.connect(warehouse_url) as conn:
        before = conn.execute("select max(finished_at) from ops.load_batches").fetchone()[0]
    nxt = land(warehouse_url, next_day=True)
    assert nxt.mode == "next_day" and nxt.loaded_through == AS_OF + timedelta(days=1)
    assert nxt.rows_loaded > 0
    with db.connect(warehouse_url) as conn:
        new_orders = conn.execute(
            "select min(updated_at), max(updated_at), count(*) from raw_shopify.orders "
            "where _batch_id in (select batch_id from ops.load_batches where finished_at > %s)",
            (before,),
        ).fetchone()
        state = conn.execute("select loaded_through from ops.demo_state").fetchone()[0]
    assert new_orders[2] > 0  # a day of a DTC shop has orders or order updates
    if new_orders[2]:
        assert new_orders[0] >= pd.Timestamp(AS_OF + timedelta(days=1), tz="UTC")
        assert new_orders[1] < pd.Timestamp(AS_OF + timedelta(days=2), tz="UTC")
    assert state == AS_OF + timedelta(days=1)


def test_a_sharded_demo_lands_shard_by_shard_and_equals_it_generated_whole(warehouse_url):
    """Landing generates and lands one shard at a time; what lands is the demo generated
    whole, and a second run recognises every shard's batches."""
    kw = {"seed": SEED, "scale": 0.06, "as_of": AS_OF, "keys": keys(), "chunk": 0.03}
    first = land_demo(warehouse_url, blocklist=load_blocklist(), **kw)
    whole = generate_demo(DemoConfig(seed=SEED, scale=0.06, as_of=AS_OF, chunk=0.03))
    received = {r.table: r.received for r in first.results}
    assert received == {name: len(frame) for name, frame in whole.tables.items()}
    assert first.persons == len(whole.truth["demo_truth.persons"])
    with db.connect(warehouse_url) as conn:
        ids = [
            r[0] for r in conn.execute("select id from raw_shopify.orders order by 1, _loaded_at")
        ]
        batches = conn.execute(
            "select count(*) from ops.load_batches where entity = 'events' and source = 'ga4'"
        ).fetchone()[0]
        truth = conn.execute("select count(*) from demo_truth.identities").fetchone()[0]
    assert ids == sorted(whole.tables["raw_shopify.orders"]["id"].tolist())
    assert batches == 2  # one per shard
    assert truth == len(whole.truth["demo_truth.identities"])
    again = land_demo(warehouse_url, blocklist=load_blocklist(), **kw)
    assert again.mode == "unchanged" and again.rows_loaded == 0


def test_no_plaintext_email_anywhere_in_raw_and_vault_round_trips(demo_warehouse):
    url, _ = demo_warehouse
    with db.connect(url) as conn:
        cols = conn.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema like 'raw\\_%' and data_type in ('text', 'json', 'jsonb')"
        ).fetchall()
        assert len(cols) > 40
        for schema, name, col in cols:
            hits = conn.execute(
                f'select count(*) from {schema}.{name} where "{col}"::text ~* %s', (EMAIL_RE,)
            ).fetchone()[0]
            assert hits == 0, f"plaintext email in {schema}.{name}.{col}"
        # a known customer's email: its blind index is in raw, its ciphertext decrypts
        from tests.conftest import TEST_AS_OF, TEST_SEED  # noqa: PLC0415

        data = generate_demo(
            DemoConfig(seed=TEST_SEED, scale=0.1, as_of=date.fromisoformat(TEST_AS_OF))
        )
        customer = data.tables["raw_shopify.customers"].dropna(subset=["email"]).iloc[0]
        plain = normalize(pd.Series([customer["email"]]), "email")[0]
        h = blind_index(keys(), "email", plain)
        found = conn.execute(
            "select count(*) from raw_shopify.customers where id = %s and email_hash = %s",
            (int(customer["id"]), h),
        ).fetchone()[0]
        blob = conn.execute(
            "select ciphertext from pii.vault where pii_type = 'email' and value_hash = %s", (h,)
        ).fetchone()[0]
    assert found == 1
    assert decrypt(keys(), "email", h, blob) == plain


def test_batches_reconcile(demo_warehouse):
    url, _ = demo_warehouse
    with db.connect(url) as conn:
        rows = conn.execute(
            "select source, entity, sum(rows_received), sum(rows_loaded), sum(rows_rejected) "
            "from ops.load_batches group by 1, 2"
        ).fetchall()
        for source, entity, received, loaded, rejected in rows:
            assert received == loaded + rejected
            landed = conn.execute(f"select count(*) from raw_{source}.{entity}").fetchone()[0]
            assert landed == loaded, f"raw_{source}.{entity}"
    assert len(rows) == 12


_COUNTS = """
select 'shopify.customers', count(*) from raw_shopify.customers union all
select 'shopify.orders', count(*) from raw_shopify.orders union all
select 'shopify.order_lines', count(*) from raw_shopify.order_lines union all
select 'shopify.refunds', count(*) from raw_shopify.refunds union all
select 'subscriptions.customers', count(*) from raw_subscriptions.customers union all
select 'subscriptions.subscriptions', count(*) from raw_subscriptions.subscriptions union all
select 'subscriptions.events', count(*) from raw_subscriptions.events union all
select 'klaviyo.profiles', count(*) from raw_klaviyo.profiles union all
select 'klaviyo.events', count(*) from raw_klaviyo.events union all
select 'ga4.events', count(*) from raw_ga4.events union all
select 'helpdesk.tickets', count(*) from raw_helpdesk.tickets union all
select 'helpdesk.requesters', count(*) from raw_helpdesk.requesters
"""
