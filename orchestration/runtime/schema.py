"""Warehouse bootstrap: schemas and the tables Python owns (raw landing, ops, pii, audit,
demo_truth). dbt owns staging, intermediate and marts. Idempotent: safe on every run, and it adds
columns the contract gained since a table was created."""

from __future__ import annotations

import psycopg
from psycopg import sql

from orchestration.sources.schemas import TABLES

SCHEMAS = (
    "raw_shopify",
    "raw_klaviyo",
    "raw_ga4",
    "raw_helpdesk",
    "raw_subscriptions",
    "pii",
    "staging",
    "intermediate",
    "marts",
    "ml",
    "segments",
    "audit",
    "privacy",
    "ops",
    "demo_truth",
)

# stg_ga4__events re-reads whole event dates (the GA4 export's shards arrive in date order)
BRIN_ALSO = {"raw_ga4.events": ("event_date",)}

OWNED_DDL = """
create table if not exists ops.load_batches (
    batch_id        text primary key,
    source          text not null,
    entity          text not null,
    producer        text not null,
    payload_sha256  text not null,
    rows_received   bigint not null,
    rows_loaded     bigint not null,
    rows_rejected   bigint not null,
    status          text not null check (status in ('loaded', 'failed')),
    error           text,
    started_at      timestamptz not null,
    finished_at     timestamptz
);
create index if not exists load_batches_source_entity on ops.load_batches (source, entity);

create table if not exists ops.rejected_records (
    batch_id     text not null,
    source       text not null,
    entity       text not null,
    row_number   bigint not null,
    reason       text not null,
    payload      jsonb not null,
    rejected_at  timestamptz not null default now(),
    primary key (batch_id, row_number)
);

create table if not exists ops.connector_state (
    source      text not null,
    stream      text not null,
    cursor      text,
    updated_at  timestamptz not null default now(),
    primary key (source, stream)
);

create table if not exists ops.demo_state (
    id            int primary key default 1 check (id = 1),
    seed          int not null,
    scale         double precision not null,
    as_of         date not null,
    loaded_through date not null,
    updated_at    timestamptz not null default now()
);

create table if not exists pii.vault (
    pii_type     text not null,
    value_hash   text not null,
    ciphertext   bytea not null,
    key_id       text not null,
    created_at   timestamptz not null default now(),
    primary key (pii_type, value_hash)
);

create table if not exists pii.blocked_values (
    pii_type     text not null,
    value_hash   text not null,
    rule         text not null,
    created_at   timestamptz not null default now(),
    primary key (pii_type, value_hash)
);

create table if not exists audit.events (
    event_id     bigint generated always as identity primary key,
    occurred_at  timestamptz not null default now(),
    actor        text not null,
    action       text not null,
    subject      text,
    segment      text,
    rows         bigint,
    details      jsonb not null default '{}'::jsonb
);

create table if not exists demo_truth.persons (
    person_id  bigint primary key,
    persona    text not null,
    is_buyer   boolean not null
);

create table if not exists demo_truth.identities (
    source         text not null,
    identity_type  text not null,
    source_id      text not null,
    person_id      bigint not null,
    primary key (source, identity_type, source_id)
);
"""


def ensure_warehouse(conn: psycopg.Connection) -> None:
    """Create every schema and Python-owned table that is missing."""
    with conn.transaction():
        # serialize concurrent bootstraps (two processes creating the same table race otherwise)
        conn.execute("select pg_advisory_xact_lock(hashtext('cdp_lite.ensure_warehouse'))")
        for schema in SCHEMAS:
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        conn.execute(OWNED_DDL)
        for table in TABLES:
            ident = sql.Identifier(table.schema, table.entity)
            cols = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pgtype))
                for name, pgtype in table.landed_columns
            )
            conn.execute(sql.SQL("create table if not exists {} ({})").format(ident, cols))
            # incremental dbt models read the rows landed since their last build
            # (macros/incremental.sql); rows arrive in _loaded_at order, so a BRIN index (a few
            # pages for millions of rows) finds them without scanning the table
            for column in ("_loaded_at", *BRIN_ALSO.get(table.qualified, ())):
                conn.execute(
                    sql.SQL("create index if not exists {} on {} using brin ({})").format(
                        sql.Identifier(f"{table.entity}__{column.lstrip('_')}__brin"),
                        ident,
                        sql.Identifier(column),
                    )
                )
            for name, pgtype in table.landed_columns:
                if "not null" in pgtype:
                    continue  # the loader's own columns, present since the table was created
                conn.execute(
                    sql.SQL("alter table {} add column if not exists {} {}").format(
                        ident, sql.Identifier(name), sql.SQL(pgtype)
                    )
                )
