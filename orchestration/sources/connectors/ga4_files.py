"""GA4 BigQuery-export files into ``raw_ga4.events``, incremental by date shard.

The export's ``events_YYYYMMDD`` (daily) and ``events_intraday_YYYYMMDD`` tables, exported to a
directory as newline-delimited JSON (``.json``/``.jsonl``/``.ndjson``, optionally ``.gz``) or
Parquet; large tables come in parts (``events_20250101-000000000001.json.gz``), which form one
shard. Each shard is loaded once (by checksum). When the daily shard of a date arrives, the rows
of that date's intraday shard are removed in the same transaction (the daily table is the
complete, final version of the day); a re-exported daily shard replaces the previous one the
same way. Intraday shards of a date whose daily shard is in are ignored.

The export is read with a BigQuery service account that has ``roles/bigquery.dataViewer`` on the
GA4 dataset (``bq extract --destination_format NEWLINE_DELIMITED_JSON --compression GZIP``);
CDP Lite itself only reads the directory ``CDP_GA4_EXPORT_DIR``.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson
import pandas as pd

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.sources.connectors import state
from orchestration.sources.landing import load_frame
from orchestration.sources.schemas import table

SOURCE, STREAM = "ga4", "events"
EVENTS = table(SOURCE, "events")
CHUNK_ROWS = 250_000  # rows per load batch (one COPY each)
FILE_RE = re.compile(
    r"^events_(?P<intraday>intraday_)?(?P<date>\d{8})(?:[-_]\d+)?"
    r"\.(?P<fmt>json|jsonl|ndjson|parquet)(?P<gz>\.gz)?$"
)


@dataclass
class Shard:
    kind: str  # daily | intraday
    day: date
    files: list[Path]
    sha256: str = ""

    @property
    def name(self) -> str:
        prefix = "events_intraday_" if self.kind == "intraday" else "events_"
        return prefix + self.day.strftime("%Y%m%d")


def find_shards(directory: Path) -> list[Shard]:
    if not directory.is_dir():
        raise CdpError(f"GA4 export directory {directory} does not exist (CDP_GA4_EXPORT_DIR)")
    shards: dict[tuple[str, str], Shard] = {}
    for path in sorted(directory.iterdir()):
        m = FILE_RE.match(path.name)
        if not m:
            continue
        kind = "intraday" if m["intraday"] else "daily"
        day = date(int(m["date"][:4]), int(m["date"][4:6]), int(m["date"][6:]))
        shards.setdefault((m["date"], kind), Shard(kind, day, [])).files.append(path)
    out = []
    for (_, _), shard in sorted(shards.items()):
        digest = hashlib.sha256()
        for path in shard.files:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        shard.sha256 = digest.hexdigest()
        out.append(shard)
    # a date's daily shard before its intraday shard, so the intraday one is seen as superseded
    out.sort(key=lambda s: (s.day, s.kind != "daily"))
    return out


def _int(v):
    return None if v is None else int(v)


def read_json_rows(data: bytes) -> dict[str, list]:
    cols: dict[str, list] = {c: [] for c in EVENTS.input_columns}
    (
        e_date,
        e_ts,
        e_name,
        e_params,
        e_pseudo,
        e_user,
        e_stream,
        e_platform,
        e_device,
        e_geo,
        e_src,
        e_med,
        e_tname,
        e_tid,
        e_rev,
    ) = cols.values()
    loads, dumps = orjson.loads, orjson.dumps
    for line in data.splitlines():
        if not line.strip():
            continue
        r = loads(line)
        device = r.get("device") or {}
        geo = r.get("geo") or {}
        ts = r.get("traffic_source") or {}
        ec = r.get("ecommerce") or {}
        params = r.get("event_params")
        e_date.append(r.get("event_date"))
        e_ts.append(_int(r.get("event_timestamp")))
        e_name.append(r.get("event_name"))
        e_params.append(None if params is None else dumps(params).decode())
        e_pseudo.append(r.get("user_pseudo_id"))
        e_user.append(r.get("user_id"))
        e_stream.append(r.get("stream_id"))
        e_platform.append(r.get("platform"))
        e_device.append(device.get("category"))
        e_geo.append(geo.get("country"))
        e_src.append(ts.get("source"))
        e_med.append(ts.get("medium"))
        e_tname.append(ts.get("name"))
        e_tid.append(ec.get("transaction_id"))
        e_rev.append(ec.get("purchase_revenue"))
    return cols


def read_parquet_rows(path: Path) -> dict[str, list]:
    import pyarrow.parquet as pq

    t = pq.read_table(path)

    def col(name: str, sub: str | None = None) -> list:
        if name not in t.column_names:
            return [None] * t.num_rows
        c = t.column(name).combine_chunks()
        return (c.field(sub) if sub else c).to_pylist()

    dumps = orjson.dumps
    # Parquet structs hold every value field (string/int/float/double); keep only the set ones,
    # as the JSON export writes them
    params = [
        None
        if p is None
        else [
            {
                "key": kv["key"],
                "value": {k: v for k, v in (kv["value"] or {}).items() if v is not None},
            }
            for kv in p
        ]
        for p in col("event_params")
    ]
    return {
        "event_date": col("event_date"),
        "event_timestamp": [_int(v) for v in col("event_timestamp")],
        "event_name": col("event_name"),
        "event_params": [None if p is None else dumps(p).decode() for p in params],
        "user_pseudo_id": col("user_pseudo_id"),
        "user_id": col("user_id"),
        "stream_id": col("stream_id"),
        "platform": col("platform"),
        "device_category": col("device", "category"),
        "geo_country": col("geo", "country"),
        "traffic_source_source": col("traffic_source", "source"),
        "traffic_source_medium": col("traffic_source", "medium"),
        "traffic_source_name": col("traffic_source", "name"),
        "ecommerce_transaction_id": col("ecommerce", "transaction_id"),
        "ecommerce_purchase_revenue": col("ecommerce", "purchase_revenue"),
    }


def read_shard(shard: Shard) -> dict[str, list]:
    """A shard's rows as columns (lists); several shards become one frame in ``to_frame``."""
    out: dict[str, list] = {c: [] for c in EVENTS.input_columns}
    for path in shard.files:
        try:
            if path.name.endswith(".parquet"):
                cols = read_parquet_rows(path)
            else:
                raw = path.read_bytes()
                cols = read_json_rows(gzip.decompress(raw) if path.name.endswith(".gz") else raw)
        except (orjson.JSONDecodeError, OSError, EOFError) as exc:
            raise CdpError(f"GA4 export file {path} cannot be read: {exc}") from None
        for c, values in cols.items():
            out[c] += values
    return out


def to_frame(parts: list[dict[str, list]]) -> pd.DataFrame:
    cols = {c: [v for p in parts for v in p[c]] for c in EVENTS.input_columns}
    frame = pd.DataFrame(cols)
    frame["event_timestamp"] = pd.array(cols["event_timestamp"], dtype="Int64")
    frame["ecommerce_purchase_revenue"] = pd.to_numeric(
        pd.Series(cols["ecommerce_purchase_revenue"], dtype=object)
    )
    return frame


@dataclass
class Ga4Stats:
    shards_seen: int = 0
    shards_loaded: int = 0
    shards_skipped: int = 0  # loaded before (same checksum) or superseded by a daily shard
    intraday_replaced: int = 0
    rows: int = 0


def sync_ga4(
    url: str,
    directory: Path,
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    batch_rows: int = 250_000,
    log: Callable[[str], None] = lambda msg: None,
) -> tuple[state.StreamStats, Ga4Stats]:
    from orchestration.runtime.db import connect

    shards = find_shards(Path(directory))
    g = Ga4Stats(shards_seen=len(shards))
    with connect(url, autocommit=True) as conn:
        state.ensure_connector_tables(conn)
        cursor = state.get_cursor(conn, SOURCE, STREAM)
        stats = state.StreamStats(STREAM, cursor_before=cursor, cursor_after=cursor)
        loaded = {
            row[0]: row[1:]
            for row in conn.execute(
                "select sha256, shard_date, shard_kind, batch_ids, status from ops.connector_files "
                "where source = 'ga4'"
            )
        }
        live = {}  # shard date -> [(kind, sha, batch_ids)] currently in raw_ga4.events
        for sha, (day, kind, batch_ids, status) in loaded.items():
            if status == "loaded":
                live.setdefault(day, []).append((kind, sha, batch_ids))
        pending: list[tuple[Shard, dict[str, list]]] = []

        def flush() -> None:
            nonlocal pending
            if pending:
                _commit(conn, pending, [], keys, blocklist, stats)
                pending = []

        for shard in shards:
            previous = live.get(shard.day, [])
            if shard.sha256 in loaded or (
                shard.kind == "intraday" and any(k == "daily" for k, _, _ in previous)
            ):
                g.shards_skipped += 1
                continue
            frame = read_shard(shard)
            n = len(frame["event_name"])
            g.shards_loaded += 1
            g.rows += n
            stats.fetched += n
            stats.pages += len(shard.files)
            if previous:  # replaces an intraday (or an earlier daily) shard of that date
                flush()
                previous = _live_shards(conn, shard.day)
                _commit(conn, [(shard, frame)], previous, keys, blocklist, stats)
                g.intraday_replaced += sum(k == "intraday" for k, _, _ in previous)
                log(f"ga4: {shard.name} replaced {len(previous)} earlier shard(s) of that date")
            else:
                pending.append((shard, frame))
                if sum(len(c["event_name"]) for _, c in pending) >= batch_rows:
                    flush()
            live[shard.day] = [(shard.kind, shard.sha256, None)]
        flush()
    stats.results = state.merge_results(stats.results)
    log(f"ga4: {g.shards_loaded} shard(s) loaded, {g.shards_skipped} skipped, {g.rows:,} events")
    return stats, g


def _live_shards(conn, day: date) -> list[tuple]:
    return conn.execute(
        "select shard_kind, sha256, batch_ids from ops.connector_files "
        "where source = 'ga4' and shard_date = %s and status = 'loaded'",
        (day,),
    ).fetchall()


def _commit(conn, shards_frames, replaced, keys, blocklist, stats: state.StreamStats) -> None:
    """Land shards (several small ones together) and record them, in one transaction."""
    frame = to_frame([c for _, c in shards_frames])
    days = [s.day for s, _ in shards_frames if s.kind == "daily"]
    cursor = stats.cursor_after
    if days and (cursor is None or max(days).isoformat() > cursor["ts"]):
        cursor = {"ts": max(days).isoformat(), "ids": []}
    with conn.transaction():
        results = [
            load_frame(
                conn,
                EVENTS,
                frame.iloc[i : i + CHUNK_ROWS],
                keys=keys,
                blocklist=blocklist,
                producer=SOURCE,
            )
            for i in range(0, len(frame), CHUNK_ROWS)
        ]
        new_ids = [r.batch_id for r in results]
        for _kind, sha, batch_ids in replaced:
            # the daily shard is the final version of the day: drop the rows the earlier shard of
            # that date landed (unless it was byte-identical and its batch was just reused)
            old = [b for b in (batch_ids or []) if b not in new_ids]
            if old:
                day = shards_frames[0][0].day.strftime("%Y%m%d")
                conn.execute(
                    "delete from raw_ga4.events where _batch_id = any(%s) and event_date = %s",
                    (old, day),
                )
            conn.execute(
                "update ops.connector_files set status = 'replaced', replaced_at = now() "
                "where source = 'ga4' and sha256 = %s",
                (sha,),
            )
        for shard, f in shards_frames:
            conn.execute(
                "insert into ops.connector_files (source, stream, file_name, sha256, shard_date, "
                "shard_kind, batch_ids, rows_received, rows_loaded, rows_rejected) "
                "values ('ga4', 'events', %s, %s, %s, %s, %s, %s, %s, %s) "
                "on conflict (source, sha256) do nothing",
                (
                    ",".join(p.name for p in shard.files),
                    shard.sha256,
                    shard.day,
                    shard.kind,
                    new_ids,
                    len(f["event_name"]),
                    sum(r.loaded for r in results)
                    if len(shards_frames) == 1
                    else len(f["event_name"]),
                    sum(r.rejected for r in results) if len(shards_frames) == 1 else 0,
                ),
            )
        state.save_cursor(conn, SOURCE, STREAM, cursor)
    stats.results += results
    stats.batches += 1
    stats.cursor_after = cursor
