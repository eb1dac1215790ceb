"""Activation's own tables (schema ``activation``): exports, the exported membership, and the
delivery ledger.

- ``activation.exports``: one row per export run of a segment (status, counts, directory).
- ``activation.exported_members``: who a segment's destinations were last told is a member. The
  next export's entered/exited are the difference between ``segments.membership_snapshot`` (kept
  equal to the view by every refresh) and this set, i.e. the net membership change since the
  last successful export however many refreshes happened in between.
- ``activation.deliveries``: one row per pushed batch (webhook, and any other push destination):
  delivery id (the ``webhook-id``), attempts, status, last HTTP status and error, and every
  attempt in ``attempts``. The body is kept encrypted with the vault key (it carries PII) until
  the batch is delivered, so a failed batch is re-sent byte for byte under the same id.
"""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

DDL = """
create schema if not exists activation;
create table if not exists activation.exports (
    export_id    text primary key,
    segment      text not null,
    run_id       text,
    rule_hash    text,
    status       text not null check (status in ('running', 'succeeded', 'failed')),
    members      bigint,
    entered      bigint,
    exited       bigint,
    directory    text,
    error        text,
    started_at   timestamptz not null default now(),
    finished_at  timestamptz
);
create index if not exists exports_segment_started on activation.exports (segment, started_at);
create table if not exists activation.exported_members (
    segment      text not null,
    customer_id  text not null,
    primary key (segment, customer_id)
);
create table if not exists activation.deliveries (
    delivery_id      text primary key,
    segment          text not null,
    export_id        text not null,
    destination      text not null,
    target           text not null,
    batch            int not null,
    records          int not null,
    body_ciphertext  bytea,
    attempt_count    int not null default 0,
    status           text not null check (status in ('pending', 'delivered', 'failed')),
    http_status      int,
    last_error       text,
    attempts         jsonb not null default '[]'::jsonb,
    created_at       timestamptz not null default now(),
    last_attempt_at  timestamptz,
    delivered_at     timestamptz
);
create index if not exists deliveries_backlog
    on activation.deliveries (segment, destination, target, status);
"""

_TABLES = ("exports", "exported_members", "deliveries")


def ensure_tables(conn: psycopg.Connection) -> None:
    present = conn.execute(
        "select count(*) from pg_tables where schemaname = 'activation' and tablename = any(%s)",
        (list(_TABLES),),
    ).fetchone()[0]
    if present == len(_TABLES):
        return
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('cdp.activation.ddl'))")
        conn.execute(DDL)
    conn.commit()


def last_success(conn: psycopg.Connection, segment: str) -> tuple | None:
    """(export_id, finished_at) of the segment's last successful export, or None."""
    return conn.execute(
        "select export_id, finished_at from activation.exports "
        "where segment = %s and status = 'succeeded' order by finished_at desc limit 1",
        (segment,),
    ).fetchone()


def backlog_count(conn: psycopg.Connection, segment: str) -> int:
    return conn.execute(
        "select count(*) from activation.deliveries "
        "where segment = %s and status in ('pending', 'failed')",
        (segment,),
    ).fetchone()[0]


def segments_needing_export(conn: psycopg.Connection, slugs: list[str]) -> dict[str, str]:
    """{slug: reason} for segments never exported successfully or with undelivered batches."""
    if not conn.execute("select to_regclass('activation.exports') is not null").fetchone()[0]:
        return {s: "never exported" for s in slugs}
    rows = conn.execute(
        """
        select s.slug,
            exists (select 1 from activation.exports e
                    where e.segment = s.slug and e.status = 'succeeded'),
            exists (select 1 from activation.deliveries d
                    where d.segment = s.slug and d.status in ('pending', 'failed'))
        from unnest(%s::text[]) as s(slug)
        """,
        (slugs,),
    ).fetchall()
    out = {}
    for slug, exported, backlog in rows:
        if not exported:
            out[slug] = "never exported"
        elif backlog:
            out[slug] = "undelivered batches"
    return out


def advance(
    conn: psycopg.Connection,
    segment: str,
    entered: pa.Array | pa.ChunkedArray,
    exited: pa.Array | pa.ChunkedArray,
) -> None:
    """Record what the destinations now know: the current membership, in the caller's
    transaction. Entered ids are new to the set by construction (computed under the segment's
    lock), so COPY appends them: one CSV buffer written by Arrow, not a Python call per row."""
    if len(exited):
        conn.execute(
            "delete from activation.exported_members where segment = %s "
            "and customer_id = any(string_to_array(%s, chr(31)))",
            (segment, "\x1f".join(exited.to_pylist())),
        )
    if len(entered):
        sink = pa.BufferOutputStream()
        ids = pa.table({"segment": pa.repeat(segment, len(entered)), "customer_id": entered})
        pacsv.write_csv(ids, sink, pacsv.WriteOptions(include_header=False))
        with (
            conn.cursor() as cur,
            cur.copy(
                "copy activation.exported_members (segment, customer_id) from stdin (format csv)"
            ) as copy,
        ):
            copy.write(sink.getvalue())
