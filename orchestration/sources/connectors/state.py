"""Connector state: per-stream cursors in ``ops.connector_state`` and loaded files in
``ops.connector_files``, both written in the same transaction as the batch they describe.

That is the whole crash-safety story: a batch's raw rows, vault entries and load record
(``landing.load_frame``) and the cursor that says "everything up to here is in" commit together or
not at all. A run killed midway restarts from the last committed cursor and fetches the
uncommitted records again; nothing is skipped, and nothing committed is fetched twice.

Cursors are JSON: ``{"ts": "<ISO timestamp>", "ids": [ids whose timestamp == ts]}``. Connectors
ask the API for records updated at or after ``ts`` (``>=``) and drop the ids already landed at
exactly ``ts``: with a strict ``>`` a record updated in the same second as the last one landed, but
after that run read it, would be skipped forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
import pandas as pd
import psycopg

from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.runtime.db import LANDING_LOCK
from orchestration.sources.landing import LoadResult, load_frame
from orchestration.sources.schemas import RawTable

CONNECTOR_DDL = """
create table if not exists ops.connector_files (
    source         text not null,
    stream         text not null,
    file_name      text not null,
    sha256         text not null,
    shard_date     date,
    shard_kind     text,            -- ga4: daily | intraday
    batch_ids      text[] not null default '{}',
    rows_received  bigint not null default 0,
    rows_loaded    bigint not null default 0,
    rows_rejected  bigint not null default 0,
    status         text not null default 'loaded' check (status in ('loaded', 'replaced')),
    loaded_at      timestamptz not null default now(),
    replaced_at    timestamptz,
    primary key (source, sha256)
);
create index if not exists connector_files_shard on ops.connector_files (source, shard_date);
"""


def ensure_connector_tables(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('cdp_lite.connector_tables'))")
        conn.execute(CONNECTOR_DDL)


def get_cursor(conn: psycopg.Connection, source: str, stream: str) -> dict | None:
    row = conn.execute(
        "select cursor from ops.connector_state where source = %s and stream = %s",
        (source, stream),
    ).fetchone()
    return orjson.loads(row[0]) if row and row[0] else None


def save_cursor(conn: psycopg.Connection, source: str, stream: str, cursor: dict | None) -> None:
    conn.execute(
        "insert into ops.connector_state (source, stream, cursor, updated_at) "
        "values (%s, %s, %s, now()) on conflict (source, stream) do update "
        "set cursor = excluded.cursor, updated_at = now()",
        (source, stream, orjson.dumps(cursor).decode() if cursor is not None else None),
    )


def advance(cursor: dict | None, ids: Iterable[str], stamps: Iterable[str]) -> dict | None:
    """The cursor after records (ids with their ISO-UTC timestamps) have been landed.

    Timestamps must share one format (the connectors normalise to ``YYYY-MM-DDTHH:MM:SSZ``), so
    string order is time order."""
    ts = cursor["ts"] if cursor else None
    at_ts = set(cursor["ids"]) if cursor else set()
    for rid, stamp in zip(ids, stamps, strict=True):
        if stamp is None:
            continue
        if ts is None or stamp > ts:
            ts, at_ts = stamp, {str(rid)}
        elif stamp == ts:
            at_ts.add(str(rid))
    return None if ts is None else {"ts": ts, "ids": sorted(at_ts)}


def already_landed(cursor: dict | None, rid: str, stamp: str) -> bool:
    """True for a record the ``>=`` query returns again although it was landed last time."""
    return bool(cursor) and stamp == cursor["ts"] and str(rid) in cursor["ids"]


@dataclass
class StreamStats:
    """What a stream did in one run (shown as Dagster metadata)."""

    stream: str
    fetched: int = 0
    pages: int = 0
    batches: int = 0
    cursor_before: dict | None = None
    cursor_after: dict | None = None
    results: list[LoadResult] = field(default_factory=list)

    def as_metadata(self) -> dict:
        return {
            "records_fetched": self.fetched,
            "pages": self.pages,
            "batches_committed": self.batches,
            "rows_rejected": sum(r.rejected for r in self.results),
            "cursor_before": (self.cursor_before or {}).get("ts"),
            "cursor_after": (self.cursor_after or {}).get("ts"),
        }


def commit_batch(
    conn: psycopg.Connection,
    frames: list[tuple[RawTable, pd.DataFrame]],
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    producer: str,
    then: Callable[[psycopg.Connection, list[LoadResult]], None] = lambda conn, results: None,
) -> list[LoadResult]:
    """Land several frames and run ``then`` (save a cursor, record a file) in ONE transaction.

    ``conn`` must be in autocommit mode: ``load_frame``'s own transaction then nests as a
    savepoint inside this one, so the raw rows and the state commit together."""
    if not conn.autocommit:
        raise ValueError("commit_batch needs an autocommit connection")
    with conn.transaction():
        conn.execute(LANDING_LOCK)  # first: see orchestration/runtime/db.py
        results = [
            load_frame(conn, table, frame, keys=keys, blocklist=blocklist, producer=producer)
            for table, frame in frames
        ]
        then(conn, results)
    return results


def merge_results(results: list[LoadResult]) -> list[LoadResult]:
    """One result per table, in first-seen order (several batches summed)."""
    by_table: dict[str, list[LoadResult]] = {}
    for r in results:
        by_table.setdefault(r.table, []).append(r)
    return [
        LoadResult(
            table,
            ",".join(r.batch_id for r in parts),
            sum(r.received for r in parts),
            sum(r.loaded for r in parts if not r.skipped),
            sum(r.rejected for r in parts if not r.skipped),
            all(r.skipped for r in parts),
            sum(r.seconds for r in parts),
        )
        for table, parts in by_table.items()
    ]


def sync_incremental(
    conn: psycopg.Connection,
    source: str,
    stream: str,
    *,
    fetch: Callable[[dict | None], Iterable[list[dict]]],
    key: Callable[[dict], tuple[str, str | None]],
    frames: Callable[[list[dict]], list[tuple[RawTable, pd.DataFrame]]],
    keys: VaultKeys,
    blocklist: Blocklist,
    batch_records: int,
    log: Callable[[str], None] = lambda msg: None,
) -> StreamStats:
    """Page through records updated since the stream's cursor, landing them in batches of about
    ``batch_records``; each batch commits with the cursor advanced past it.

    ``fetch(cursor)`` yields pages in ascending update order, ``key(record)`` gives a record's id
    and ISO-UTC update stamp, ``frames(records)`` builds the raw frames for one batch."""
    cursor = get_cursor(conn, source, stream)
    stats = StreamStats(stream, cursor_before=cursor, cursor_after=cursor)
    since = cursor["ts"] if cursor else "the beginning"
    log(f"{source}/{stream}: fetching records updated since {since}")
    pending: list[dict] = []
    pending_keys: list[tuple[str, str | None]] = []

    def flush() -> None:
        nonlocal cursor, pending, pending_keys
        if not pending:
            return
        # the log line below reports stats.fetched, which the caller bumps before flushing
        new_cursor = advance(cursor, [k[0] for k in pending_keys], [k[1] for k in pending_keys])
        results = commit_batch(
            conn,
            [(t, f) for t, f in frames(pending) if len(f)],
            keys=keys,
            blocklist=blocklist,
            producer=source,
            then=lambda c, _results: save_cursor(c, source, stream, new_cursor),
        )
        cursor, pending, pending_keys = new_cursor, [], []
        stats.results += results
        stats.batches += 1
        stats.cursor_after = cursor
        log(f"{source}/{stream}: {stats.fetched:,} records committed, cursor {cursor['ts']}")

    for page in fetch(cursor):
        stats.pages += 1
        for record in page:
            rid, stamp = key(record)
            if already_landed(cursor, rid, stamp):
                continue
            pending.append(record)
            pending_keys.append((rid, stamp))
        if len(pending) >= batch_records:
            stats.fetched += len(pending)
            flush()
    stats.fetched += len(pending)
    flush()
    stats.results = merge_results(stats.results)
    return stats
