"""GA4 export files and helpdesk/subscription CSV drops, written from the demo data set: what the
connectors land must equal what the generator lands directly."""

from __future__ import annotations

import gzip
from collections import Counter

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

from orchestration.errors import CdpError
from orchestration.runtime import db
from orchestration.sources.connectors.csv_drops import sync_drops
from orchestration.sources.connectors.ga4_files import sync_ga4
from orchestration.sources.schemas import BY_NAME


def raw_rows(url: str, qualified: str) -> Counter:
    t = BY_NAME[qualified]
    cols = [
        f'"{c}"::jsonb::text' if dict(t.columns).get(c) == "json" else f'"{c}"'
        for c, _ in t.landed_columns
        if not c.startswith("_")
    ]
    with db.connect(url) as conn:
        return Counter(conn.execute(f"select {', '.join(cols)} from {qualified}").fetchall())


def export_rows(frame) -> list[bytes]:
    """Generator rows as BigQuery-export JSON lines (nested records, INT64 as strings)."""
    out = []
    dumps, loads = orjson.dumps, orjson.loads
    for r in frame.to_dict("records"):
        rev = r["ecommerce_purchase_revenue"]
        out.append(
            dumps(
                {
                    "event_date": r["event_date"],
                    "event_timestamp": str(r["event_timestamp"]),
                    "event_name": r["event_name"],
                    "event_params": loads(r["event_params"]),
                    "user_pseudo_id": r["user_pseudo_id"],
                    "user_id": r["user_id"],
                    "stream_id": r["stream_id"],
                    "platform": r["platform"],
                    "device": {"category": r["device_category"], "operating_system": None},
                    "geo": {"country": r["geo_country"], "city": None},
                    "traffic_source": {
                        "name": r["traffic_source_name"],
                        "medium": r["traffic_source_medium"],
                        "source": r["traffic_source_source"],
                    },
                    "ecommerce": {
                        "transaction_id": r["ecommerce_transaction_id"],
                        "purchase_revenue": None if rev != rev else rev,
                    },
                    "items": [],
                }
            )
        )
    return out


def test_ga4_shards_land_like_the_generator_and_intraday_is_replaced(
    live_db, generator_db, demo_data, vault, tmp_path
):
    keys, blocklist = vault
    events = demo_data.tables["raw_ga4.events"]
    dates = sorted(events["event_date"].unique())
    last, parquet_day = dates[-1], dates[-2]
    by_day: dict[str, list[bytes]] = {}
    for day, line in zip(events["event_date"], export_rows(events), strict=True):
        by_day.setdefault(day, []).append(line)
    for day, lines in by_day.items():
        if day == last:
            continue
        if day == parquet_day:
            table = pajson.read_json(pa.py_buffer(b"\n".join(lines)))
            pq.write_table(table, tmp_path / f"events_{day}.parquet")
        elif int(day) % 2:
            (tmp_path / f"events_{day}.json.gz").write_bytes(gzip.compress(b"\n".join(lines)))
        else:
            (tmp_path / f"events_{day}.json").write_bytes(b"\n".join(lines) + b"\n")
    # the last day so far only as an intraday shard: half its events plus one that the daily
    # processing later drops
    final = events[events["event_date"] == last]
    stray = final.iloc[:1].copy()
    stray["event_name"] = "stray_intraday_event"
    intraday = export_rows(final.iloc[: len(final) // 2]) + export_rows(stray)
    (tmp_path / f"events_intraday_{last}.json").write_bytes(b"\n".join(intraday))
    stats, g = sync_ga4(live_db, tmp_path, keys=keys, blocklist=blocklist, batch_rows=5_000)
    assert (
        g.shards_loaded == len(dates)
        and stats.cursor_after["ts"] == f"{parquet_day[:4]}-{parquet_day[4:6]}-{parquet_day[6:]}"
    )
    with db.connect(live_db) as conn:
        n = conn.execute("select count(*) from raw_ga4.events where event_date = %s", (last,))
        assert n.fetchone()[0] == len(final) // 2 + 1
    # the daily shard arrives: it replaces the intraday rows of that date
    (tmp_path / f"events_{last}.json.gz").write_bytes(gzip.compress(b"\n".join(export_rows(final))))
    _, g2 = sync_ga4(live_db, tmp_path, keys=keys, blocklist=blocklist)
    assert (g2.shards_loaded, g2.intraday_replaced) == (1, 1)
    assert raw_rows(live_db, "raw_ga4.events") == raw_rows(generator_db, "raw_ga4.events")
    # every file again: nothing loads (checksums), the superseded intraday shard stays out
    _, g3 = sync_ga4(live_db, tmp_path, keys=keys, blocklist=blocklist)
    assert g3.shards_loaded == 0 and g3.shards_skipped == len(dates) + 1
    assert sum(raw_rows(live_db, "raw_ga4.events").values()) == len(events)


def write_csv(frame, path) -> None:
    """Strings quoted, nulls as empty unquoted fields (what pyarrow and PostgreSQL write)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, path)


def test_csv_drops_land_like_the_generator_once_and_bad_headers_are_named(
    live_db, generator_db, demo_data, vault, tmp_path
):
    keys, blocklist = vault
    T = demo_data.tables
    help_dir, subs_dir = tmp_path / "helpdesk", tmp_path / "subs"
    help_dir.mkdir()
    subs_dir.mkdir()
    tickets = T["raw_helpdesk.tickets"]
    half = len(tickets) // 2
    write_csv(tickets.iloc[:half], help_dir / "tickets_2026-11-01.csv")
    write_csv(tickets.iloc[half:], help_dir / "tickets_2026-11-02.csv")
    write_csv(T["raw_helpdesk.requesters"], help_dir / "requesters.csv")
    (help_dir / "README.txt").write_text("not a drop")
    for entity in ("customers", "subscriptions", "events"):
        write_csv(T[f"raw_subscriptions.{entity}"], subs_dir / f"{entity}_export.csv")
    s, d = sync_drops(live_db, "helpdesk", help_dir, keys=keys, blocklist=blocklist)
    assert d.files_loaded == 3 and d.ignored == ["README.txt"]
    sync_drops(live_db, "subscriptions", subs_dir, keys=keys, blocklist=blocklist)
    for name in (
        "raw_helpdesk.tickets",
        "raw_helpdesk.requesters",
        "raw_subscriptions.customers",
        "raw_subscriptions.subscriptions",
        "raw_subscriptions.events",
    ):
        assert raw_rows(live_db, name) == raw_rows(generator_db, name), name
    # the same bytes under another name: loaded once
    (help_dir / "tickets_copy.csv").write_bytes((help_dir / "tickets_2026-11-01.csv").read_bytes())
    _, d2 = sync_drops(live_db, "helpdesk", help_dir, keys=keys, blocklist=blocklist)
    assert d2.files_loaded == 0 and d2.files_skipped == 4
    # a bad header: nothing loads, the message names the file and the columns
    bad = tickets.rename(columns={"channel": "via"}).drop(columns=["priority"])
    write_csv(bad.iloc[:5], help_dir / "tickets_bad.csv")
    with pytest.raises(CdpError) as exc:
        sync_drops(live_db, "helpdesk", help_dir, keys=keys, blocklist=blocklist)
    message = str(exc.value)
    assert "tickets_bad.csv" in message and "missing columns: channel, priority" in message
    assert "unknown columns: via" in message
    # a bad value: the row is rejected with its reason, the rest lands
    (help_dir / "tickets_bad.csv").unlink()
    broken = tickets.iloc[:3].copy()
    broken["id"] = broken["id"] + 10**9
    created = broken["created_at"].astype(str).tolist()
    broken["created_at"] = [created[0], "not a date", created[2]]
    write_csv(broken, help_dir / "tickets_broken.csv")
    _, d3 = sync_drops(live_db, "helpdesk", help_dir, keys=keys, blocklist=blocklist)
    assert d3.files_loaded == 1
    with db.connect(live_db) as conn:
        reason = conn.execute(
            "select reason from ops.rejected_records where entity = 'tickets'"
        ).fetchone()[0]
    assert "created_at" in reason


def _ga4_line(ts, params, **extra) -> bytes:
    record = {
        "event_date": "20250101",
        "event_timestamp": ts,
        "event_name": "page_view",
        "event_params": params,
        "user_pseudo_id": "1.1",
        "stream_id": "9",
        "platform": "WEB",
        "device": {"category": "mobile"},
        "geo": {"country": "France"},
        "traffic_source": {"source": "google", "medium": "organic", "name": "(organic)"},
        "ecommerce": {"transaction_id": None, "purchase_revenue": None},
    }
    record.update(extra)
    return orjson.dumps(record)


def test_ga4_files_with_int64_as_strings_or_numbers_gzip_plain_and_parquet(
    live_db, vault, tmp_path
):
    keys, blocklist = vault
    quoted = [{"key": "ga_session_id", "value": {"int_value": "1784790999"}}]
    as_number = [{"key": "ga_session_id", "value": {"int_value": 1784790999}}]
    text = [{"key": "page_title", "value": {"string_value": 'Caf\u00e9 "Noir" \\ \t'}}]
    # BigQuery's JSON export: INT64 values as strings, gzip
    (tmp_path / "events_20250101.json.gz").write_bytes(
        gzip.compress(
            _ga4_line("1735689600000001", quoted, user_id="42")
            + b"\n"
            + _ga4_line("1735689600000002", text, ecommerce={"purchase_revenue": 19.99})
            + b"\n"
        )
    )
    # another tool's export: numbers, plain, with a blank line
    (tmp_path / "events_20250102.jsonl").write_bytes(
        _ga4_line(1735776000000001, as_number, event_date="20250102", user_id="")
        + b"\n\n"
        + _ga4_line(1735776000000002, None, event_date="20250102")
    )
    # a file whose records disagree on a field's JSON type: read record by record
    (tmp_path / "events_20250103.ndjson").write_bytes(
        _ga4_line("1735862400000001", quoted, event_date="20250103")
        + b"\n"
        + _ga4_line(1735862400000002, as_number, event_date="20250103")
    )
    # Parquet: struct value fields all present, only the set ones are kept
    lines = [_ga4_line(1735948800000001, as_number + text, event_date="20250104")]
    pq.write_table(
        pajson.read_json(pa.py_buffer(b"\n".join(lines))), tmp_path / "events_20250104.parquet"
    )
    stats, g = sync_ga4(live_db, tmp_path, keys=keys, blocklist=blocklist, batch_rows=2)
    assert (g.shards_loaded, g.rows, stats.cursor_after["ts"]) == (4, 7, "2025-01-04")
    with db.connect(live_db) as conn:
        rows = conn.execute(
            "select event_timestamp, event_params::jsonb, user_id, ecommerce_purchase_revenue "
            "from raw_ga4.events order by event_timestamp"
        ).fetchall()
        files = conn.execute(
            "select file_name, rows_received from ops.connector_files order by 1"
        ).fetchall()
    assert [r[0] for r in rows] == [
        1735689600000001,
        1735689600000002,
        1735776000000001,
        1735776000000002,
        1735862400000001,
        1735862400000002,
        1735948800000001,
    ]
    assert rows[0][1:3] == (quoted, "42")  # the string stays a string inside event_params
    assert rows[1][1] == text and str(rows[1][3]) == "19.99"
    assert rows[2][1:3] == (as_number, "") and rows[3][1] is None and rows[3][2] is None
    assert rows[4][1] == quoted and rows[5][1] == as_number
    assert rows[6][1] == as_number + text
    assert [n for _, n in files] == [2, 2, 2, 1]


def test_ga4_unreadable_files_are_named_and_earlier_batches_stay(live_db, vault, tmp_path):
    keys, blocklist = vault
    good = _ga4_line("1735689600000001", [])
    (tmp_path / "events_20250101.json").write_bytes(good)
    (tmp_path / "events_20250102.json").write_bytes(good + b'\n{"event_date": "2025')
    with pytest.raises(CdpError, match=r"events_20250102\.json cannot be read"):
        sync_ga4(live_db, tmp_path, keys=keys, blocklist=blocklist, batch_rows=1)
    with db.connect(live_db) as conn:
        assert conn.execute("select count(*) from raw_ga4.events").fetchone()[0] == 1
    (tmp_path / "events_20250102.json").unlink()
    (tmp_path / "events_20250103.json.gz").write_bytes(gzip.compress(good)[:-6])
    with pytest.raises(CdpError, match=r"events_20250103\.json\.gz cannot be read"):
        sync_ga4(live_db, tmp_path, keys=keys, blocklist=blocklist)
