"""A small, hand-written warehouse with the shapes segments read: ``marts.customer_profiles``,
``marts.customer_timeline`` and ``marts.orders``. Every expected count in the tests can be
checked by reading the rows below. One database per test module (module-scoped fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

AS_OF = "2026-11-20"

PROFILES_DDL = """
create schema if not exists marts;
create table marts.customer_profiles (
    customer_id             text primary key,
    lifecycle_stage         text not null,
    subscription_status     text not null,
    acquisition_channel     text,
    lifetime_value          numeric(12,2) not null,
    orders_count            integer not null,
    days_since_last_order   integer,
    churn_risk_score        integer,
    is_vip                  boolean,
    has_bought_replenishable boolean not null,
    email_hash              text,
    churn_top_drivers       jsonb,
    last_order_at           timestamptz,
    first_order_date        date,
    as_of_date              date not null
);
comment on column marts.customer_profiles.lifetime_value is 'Net lifetime value.';
create table marts.customer_timeline (
    timeline_event_id  text primary key,
    customer_id        text not null,
    occurred_at        timestamptz not null,
    source             text not null,
    event_type         text not null,
    source_event_id    text not null,
    amount             numeric(12,2),
    summary            text
);
create index on marts.customer_timeline (customer_id, occurred_at);
create table marts.orders (
    order_id               bigint primary key,
    customer_id            text,
    categories             text,
    discount_codes         text,
    is_subscription_order  boolean not null,
    items_count            integer not null,
    total_price            numeric(12,2) not null,
    ordered_at             timestamptz not null
);
create table marts.customers (customer_id text primary key);
"""

HOSTILE_CHANNEL = "x' or '1'='1"

# id, stage, subscription, channel, ltv, orders, days since order, churn, vip, replenishable,
# days since last order (for last_order_at), first order date
PROFILES = [
    ("c01", "active", "active", "paid_search", 1500, 12, 5, 10, True, True, "2024-01-15"),
    ("c02", "at_risk", "active", "email", 800, 6, 100, 85, False, True, "2024-03-01"),
    ("c03", "churned", "cancelled", "organic_search", 600, 4, 200, 90, False, True, "2023-12-24"),
    ("c04", "new", "never", None, 45.5, 1, 10, None, False, False, "2026-11-10"),
    ("c05", "prospect", "never", "unknown", 0, 0, None, None, False, False, None),
    ("c06", "lapsed", "never", "paid_social", 250, 2, 300, 60, False, True, "2025-06-01"),
    ("c07", "active", "paused", HOSTILE_CHANNEL, 300, 3, 40, None, None, True, "2025-02-02"),
    ("c08", "active", "active", "Email Newsletter", 5000, 30, 1, 5, True, True, "2024-02-29"),
]

# customer, days ago, source, event type, amount, order (id, categories, codes, subscription)
EVENTS = [
    ("c01", 3, "shopify", "order_placed", 60, (1001, "serum, toner", "WELCOME10", False)),
    ("c01", 20, "shopify", "order_placed", 40, (1002, "cleanser", None, True)),
    ("c01", 50, "shopify", "order_placed", 45, (1003, "moisturizer", None, True)),
    ("c01", 3, "klaviyo", "order_placed", 60, None),
    ("c01", 20, "klaviyo", "order_placed", 40, None),
    ("c01", 50, "klaviyo", "order_placed", 45, None),
    ("c01", 2, "klaviyo", "email_opened", None, None),
    ("c01", 9, "klaviyo", "email_opened", None, None),
    ("c01", 1, "ga4", "web_session", None, None),
    ("c02", 100, "shopify", "order_placed", 80, (2001, "eye cream", None, True)),
    ("c02", 10, "helpdesk", "ticket_opened", None, None),
    ("c02", 25, "helpdesk", "ticket_opened", None, None),
    ("c02", 15, "subscriptions", "subscription_skipped", None, None),
    ("c02", 45, "subscriptions", "subscription_skipped", None, None),
    ("c03", 200, "shopify", "order_placed", 150, (3001, "serum", None, False)),
    ("c08", 1, "shopify", "order_placed", 200, (8001, "serum", "VIP20", False)),
    ("c08", 30, "shopify", "order_placed", 180, (8002, "serum, mask", None, False)),
    ("c08", 60, "shopify", "order_placed", 150, (8003, "toner", None, False)),
    ("c08", 80, "shopify", "order_placed", 120, (8004, "cleanser", None, False)),
    ("c08", 89, "shopify", "order_placed", 100, (8005, "cleanser", None, False)),
    ("c08", 5, "klaviyo", "email_clicked", None, None),
    ("c08", 400, "ga4", "web_session", None, None),
]


def populate(conn: psycopg.Connection) -> None:
    conn.execute(PROFILES_DDL)
    for cid, stage, sub, ch, ltv, orders, days, churn, vip, repl, first in PROFILES:
        conn.execute(
            "insert into marts.customer_profiles values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " md5(%s), %s, %s::date - %s::int, %s, %s)",
            (
                cid,
                stage,
                sub,
                ch,
                ltv,
                orders,
                days,
                churn,
                vip,
                repl,
                cid,
                '{"a": 1}' if churn else None,
                AS_OF,
                days,
                first,
                AS_OF,
            ),
        )
        conn.execute("insert into marts.customers values (%s)", (cid,))
    for i, (cid, ago, source, etype, amount, order) in enumerate(EVENTS):
        source_id = str(order[0]) if order else f"e{i}"
        conn.execute(
            "insert into marts.customer_timeline values (%s, %s, %s::date - %s::int + time '12:00',"
            " %s, %s, %s, %s, %s)",
            (f"t{i}", cid, AS_OF, ago, source, etype, source_id, amount, f"{etype} {i}"),
        )
        if order:
            oid, cats, codes, sub = order
            conn.execute(
                "insert into marts.orders values (%s, %s, %s, %s, %s, 1, %s,"
                " %s::date - %s::int + time '12:00')",
                (oid, cid, cats, codes, sub, amount, AS_OF, ago),
            )


@pytest.fixture(scope="module")
def segment_db(server_url) -> Iterator[str]:
    """A database with the small warehouse above (and CDP Lite's schemas)."""
    from orchestration.runtime import db
    from orchestration.runtime.schema import ensure_warehouse

    name = f"cdp_test_seg_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = db.with_database(server_url, name)
    with db.connect(url) as conn:
        ensure_warehouse(conn)
        populate(conn)
    yield url
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def conn(segment_db) -> Iterator[psycopg.Connection]:
    from orchestration.runtime import db

    with db.connect(segment_db, autocommit=True) as connection:
        yield connection


@pytest.fixture
def catalog(conn):
    from orchestration.segments.catalog import load_catalog

    return load_catalog(conn, manifest=None)
