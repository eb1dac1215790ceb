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

import hashlib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson
import pyarrow as pa

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.sources.connectors import ga4_arrow, state
from orchestration.sources.connectors.ordered import OrderedCommits
from orchestration.sources.landing import load_frame
from orchestration.sources.schemas import table

SOURCE, STREAM = "ga4", "events"
EVENTS = table(SOURCE, "events")
CHUNK_ROWS = 250_000  # rows per load_frame call (one COPY each) in a big batch
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


def _file_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return _gunzip(raw) if path.name.endswith(".gz") else raw


def _gunzip(raw: bytes) -> bytes:
    """gzip.decompress without its second pass over the output for the CRC (zlib checks it
    while inflating); every member of a multi-member file."""
    parts = []
    while raw:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        parts.append(inflate.decompress(raw))
        if not inflate.eof:
            raise EOFError("compressed file ended before the end-of-stream marker was reached")
        raw = inflate.unused_data.lstrip(b"\x00")  # members may be padded with zeros
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _json_table(path: Path, data: bytes) -> pa.Table:
    """One file's records as raw columns: Arrow first, orjson when Arrow refuses the file."""
    try:
        return ga4_arrow.to_raw(ga4_arrow.parse_ndjson(data))
    except (pa.ArrowInvalid, ga4_arrow.Unsupported):
        pass
    cols = ga4_arrow.read_json_rows(data)  # a malformed line raises, named by the caller
    return pa.Table.from_pydict(cols, schema=ga4_arrow.SCHEMA)


@dataclass
class _Contents:
    """A shard's files in memory: decompressed JSON text or a Parquet table, and its records."""

    shard: Shard
    parts: list[tuple[Path, bytes | pa.Table]]
    records: int  # JSON lines and Parquet rows (a blank line counts until the parse corrects it)


def _load(shard: Shard) -> _Contents:
    parts: list[tuple[Path, bytes | pa.Table]] = []
    records = 0
    for path in shard.files:
        try:
            if path.name.endswith(".parquet"):
                import pyarrow.parquet as pq

                table = pq.read_table(path)
                parts.append((path, table))
                records += table.num_rows
                continue
            data = _file_bytes(path).strip()
        except (OSError, EOFError, zlib.error, pa.ArrowException) as exc:
            raise CdpError(f"GA4 export file {path} cannot be read: {exc}") from None
        if data:
            parts.append((path, data))
            records += data.count(b"\n") + 1
    return _Contents(shard, parts, records)


def _parse(contents: list[_Contents]) -> tuple[pa.Table, list[int]]:
    """Shards' contents as one table of raw columns (all text: the loader types and validates
    them) and each shard's event count.

    Consecutive JSON files are parsed together in one multithreaded ``pyarrow.json`` call: an
    export has a file per day or part, and per-call overhead would dominate otherwise."""
    tables: list[pa.Table] = []
    group: list[tuple[Path, bytes]] = []

    def flush_group() -> None:
        if group:
            tables.extend(_json_group(group))
            group.clear()

    for c in contents:
        for path, part in c.parts:
            if isinstance(part, pa.Table):
                flush_group()
                try:
                    tables.append(ga4_arrow.to_raw(part))
                except ga4_arrow.Unsupported as exc:
                    raise CdpError(f"GA4 export file {path} cannot be read: {exc}") from None
            else:
                group.append((path, part))
    flush_group()
    table = pa.concat_tables(tables) if tables else ga4_arrow.SCHEMA.empty_table()
    counts = [c.records for c in contents]
    if table.num_rows != sum(counts):  # blank lines in a file: count its records
        counts = [
            sum(
                p.num_rows
                if isinstance(p, pa.Table)
                else sum(1 for line in p.splitlines() if line.strip())
                for _, p in c.parts
            )
            for c in contents
        ]
    return table, counts


def _json_group(group: list[tuple[Path, bytes]]) -> list[pa.Table]:
    if len(group) > 1:
        try:
            data = b"\n".join(d for _, d in group)
            return [ga4_arrow.to_raw(ga4_arrow.parse_ndjson(data))]
        except (pa.ArrowInvalid, ga4_arrow.Unsupported):
            pass  # types differ between files, or one is malformed: file by file
    out = []
    for path, data in group:
        try:
            out.append(_json_table(path, data))
        except (orjson.JSONDecodeError, pa.ArrowException) as exc:
            raise CdpError(f"GA4 export file {path} cannot be read: {exc}") from None
    return out


def read_shards(shards: list[Shard]) -> tuple[pa.Table, list[int]]:
    """The events of shards as one table of raw columns, and each shard's event count."""
    return _parse([_load(s) for s in shards])


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
    batch_rows: int = 50_000,
    workers: int = 2,
    log: Callable[[str], None] = lambda msg: None,
) -> tuple[state.StreamStats, Ga4Stats]:
    """Land the shards not loaded yet. Small shards are grouped into batches of about
    ``batch_rows`` events; ``workers`` batches land at once on their own connections (the
    server's COPY of a batch uses one core) and commit in order, each with the cursor and its
    shards' ``ops.connector_files`` rows. A daily shard that replaces rows of its date waits for
    the batches before it and lands alone."""
    from orchestration.runtime.db import connect

    shards = find_shards(Path(directory))
    g = Ga4Stats(shards_seen=len(shards))
    with connect(url, autocommit=True) as conn, OrderedCommits(url, workers) as commits:
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
        pending: list[_Contents] = []
        jobs: list = []

        def flush(replaced=()) -> None:
            nonlocal pending
            if pending:
                table, counts = _parse(pending)
                shards_rows = [(c.shard, n) for c, n in zip(pending, counts, strict=True)]
                g.rows += table.num_rows
                stats.fetched += table.num_rows
                stats.cursor_after = _cursor_after(stats.cursor_after, pending)
                job = _batch_job(shards_rows, table, replaced, stats.cursor_after, keys, blocklist)
                commits.submit(job)
                jobs.append(job)
                stats.batches += 1
                pending = []

        for shard in shards:
            previous = live.get(shard.day, [])
            if shard.sha256 in loaded or (
                shard.kind == "intraday" and any(k == "daily" for k, _, _ in previous)
            ):
                g.shards_skipped += 1
                continue
            contents = _load(shard)
            g.shards_loaded += 1
            stats.pages += len(shard.files)
            if previous:  # replaces an intraday (or an earlier daily) shard of that date
                flush()
                commits.drain()
                previous = _live_shards(conn, shard.day)
                pending = [contents]
                flush(previous)
                commits.drain()
                g.intraday_replaced += sum(k == "intraday" for k, _, _ in previous)
                log(f"ga4: {shard.name} replaced {len(previous)} earlier shard(s) of that date")
            else:
                pending.append(contents)
                if sum(c.records for c in pending) >= batch_rows:
                    flush()
            live[shard.day] = [(shard.kind, shard.sha256, None)]
        flush()
        commits.drain()
    stats.results = state.merge_results([r for job in jobs for r in job.results])
    log(f"ga4: {g.shards_loaded} shard(s) loaded, {g.shards_skipped} skipped, {g.rows:,} events")
    return stats, g


def _live_shards(conn, day: date) -> list[tuple]:
    return conn.execute(
        "select shard_kind, sha256, batch_ids from ops.connector_files "
        "where source = 'ga4' and shard_date = %s and status = 'loaded'",
        (day,),
    ).fetchall()


def _cursor_after(cursor: dict | None, contents: list[_Contents]) -> dict | None:
    days = [c.shard.day for c in contents if c.shard.kind == "daily"]
    if days and (cursor is None or max(days).isoformat() > cursor["ts"]):
        return {"ts": max(days).isoformat(), "ids": []}
    return cursor


def _batch_job(shards_rows, table, replaced, cursor, keys, blocklist):
    """Land shards (several small ones together) and record them: run inside the batch's
    transaction by ``OrderedCommits``."""

    def job(conn) -> None:
        results = [
            load_frame(
                conn,
                EVENTS,
                table.slice(i, CHUNK_ROWS),
                keys=keys,
                blocklist=blocklist,
                producer=SOURCE,
            )
            for i in range(0, max(table.num_rows, 1), CHUNK_ROWS)
        ]
        new_ids = [r.batch_id for r in results]
        for _kind, sha, batch_ids in replaced:
            # the daily shard is the final version of the day: drop the rows the earlier shard of
            # that date landed (unless it was byte-identical and its batch was just reused)
            old = [b for b in (batch_ids or []) if b not in new_ids]
            if old:
                day = shards_rows[0][0].day.strftime("%Y%m%d")
                conn.execute(
                    "delete from raw_ga4.events where _batch_id = any(%s) and event_date = %s",
                    (old, day),
                )
            conn.execute(
                "update ops.connector_files set status = 'replaced', replaced_at = now() "
                "where source = 'ga4' and sha256 = %s",
                (sha,),
            )
        one = len(shards_rows) == 1
        for shard, n in shards_rows:
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
                    n,
                    sum(r.loaded for r in results) if one else n,
                    sum(r.rejected for r in results) if one else 0,
                ),
            )
        job.results = results
        # the cursor row is updated by every batch: only after the ones before committed
        return lambda conn: state.save_cursor(conn, SOURCE, STREAM, cursor)

    job.results = []
    return job
