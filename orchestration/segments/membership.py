"""Dynamic membership: who entered and who exited a segment at each refresh.

The previous membership lives in ``segments.membership_snapshot``; each refresh diffs the view
against it set-based in SQL (two anti-joins), appends the differences to
``segments.membership_changes``, brings the snapshot up to date and adds the day's figures to
``segments.membership_history``. Unchanged data yields no rows. Runs inside the caller's
transaction, so the view, the diff and the snapshot always move together.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from orchestration.runtime import db
from orchestration.segments.catalog import PROFILES

TABLES_DDL = """
create schema if not exists segments;
create table if not exists segments.definitions (
    slug              text primary key,
    name              text not null,
    description       text,
    owner             text,
    file              text,
    rule_hash         text not null,
    sql               text not null,
    columns           text[] not null,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    last_refreshed_at timestamptz,
    last_run_id       text,
    members           bigint
);
create table if not exists segments.membership_snapshot (
    segment      text not null,
    customer_id  text not null,
    primary key (segment, customer_id)
);
create table if not exists segments.membership_changes (
    segment      text not null,
    customer_id  text not null,
    change       text not null,
    changed_at   timestamptz not null,
    run_id       text
);
create index if not exists membership_changes_segment_changed_at
    on segments.membership_changes (segment, changed_at);
create index if not exists membership_changes_run_id on segments.membership_changes (run_id);
create table if not exists segments.membership_history (
    segment  text not null,
    date     date not null,
    members  bigint not null,
    entered  bigint not null,
    exited   bigint not null,
    primary key (segment, date)
);
create table if not exists segments.refreshes (
    segment       text not null,
    run_id        text not null,
    refreshed_at  timestamptz not null default now(),
    rule_hash     text not null,
    members       bigint not null,
    entered       bigint not null,
    exited        bigint not null,
    rebuilt       boolean not null,
    primary key (segment, refreshed_at, run_id)
);
"""


def ensure_tables(conn: psycopg.Connection) -> None:
    """Create the segments schema's tables once."""
    db.ensure_tables(
        conn,
        "segments",
        ["definitions", "membership_snapshot", "membership_changes", "membership_history",
         "refreshes"],
        TABLES_DDL,
    )  # fmt: skip


@dataclass
class Diff:
    members: int
    previous_members: int
    entered: int
    exited: int


_DIFF = """
with current_members as (
    select customer_id from {view}
),
previous as (
    select customer_id from segments.membership_snapshot where segment = {seg}
),
entered as (
    select c.customer_id from current_members c
    where not exists (select 1 from previous s where s.customer_id = c.customer_id)
),
exited as (
    select s.customer_id from previous s
    where not exists (select 1 from current_members c where c.customer_id = s.customer_id)
),
recorded as (
    insert into segments.membership_changes (segment, customer_id, change, changed_at, run_id)
    select {seg}, customer_id, 'entered', now(), {run} from entered
    union all
    select {seg}, customer_id, 'exited', now(), {run} from exited
    returning change
)
select
    (select count(*) from current_members),
    (select count(*) from previous),
    count(*) filter (where change = 'entered'),
    count(*) filter (where change = 'exited')
from recorded
"""

_SNAPSHOT = """
delete from segments.membership_snapshot s
where s.segment = {seg}
    and not exists (select 1 from {view} v where v.customer_id = s.customer_id);
insert into segments.membership_snapshot (segment, customer_id)
select {seg}, customer_id from {view}
on conflict do nothing;
"""

_HISTORY = """
insert into segments.membership_history as h (segment, date, members, entered, exited)
values (%(seg)s, current_date, %(members)s, %(entered)s, %(exited)s)
on conflict (segment, date) do update set
    members = excluded.members,
    entered = h.entered + excluded.entered,
    exited = h.exited + excluded.exited
"""


def record_changes(conn: psycopg.Connection, slug: str, run_id: str) -> Diff:
    """Diff ``segments.<slug>`` against the snapshot; record entries, exits and history."""
    view = sql.Identifier("segments", slug)
    params = {"view": view, "seg": sql.Literal(slug), "run": sql.Literal(run_id)}
    members, previous, entered, exited = conn.execute(sql.SQL(_DIFF).format(**params)).fetchone()
    if entered or exited:
        conn.execute(sql.SQL(_SNAPSHOT).format(**params))
    conn.execute(_HISTORY, {"seg": slug, "members": members, "entered": entered, "exited": exited})
    return Diff(members, previous, entered, exited)


def base_count(conn: psycopg.Connection) -> int:
    return conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(*PROFILES))
    ).fetchone()[0]
