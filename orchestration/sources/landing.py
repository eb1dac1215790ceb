"""Raw landing: a producer's frame becomes one batch in ``raw_<source>.<entity>``.

The contract (DESIGN.md): PII is encrypted into ``pii.vault`` and replaced by blind indexes before
anything lands; rows are validated and bad ones go to ``ops.rejected_records`` with the reason and
payload (PII already replaced), so ``received = loaded + rejected``; the good rows are bulk-loaded
with COPY; the batch is recorded in ``ops.load_batches``. Everything of one batch commits in one
transaction, and a batch whose payload was loaded before is skipped, so re-runs add nothing.

A frame is a pandas DataFrame or a pyarrow Table. Columns that already carry their type (Arrow
strings, int64, timestamps...) are landed without a Python loop per value: validation works on
whole columns (``validation``), COPY uses PostgreSQL's binary format built from the Arrow
buffers (``runtime.pgbinary``), and the batch id hashes the typed columns' buffers.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys, normalize
from orchestration.runtime.db import LANDING_LOCK, connect, copy_binary
from orchestration.runtime.pgbinary import copy_order, encode_rows
from orchestration.sources.protect import insert_new, protect_pii
from orchestration.sources.schemas import RawTable
from orchestration.sources.validation import (
    check,
    column_values,
    shown,
    string_bytes,
    string_offsets,
)

Frame = pd.DataFrame | pa.Table


@dataclass(frozen=True)
class LoadResult:
    table: str
    batch_id: str
    received: int
    loaded: int
    rejected: int
    skipped: bool  # the same payload was loaded before: nothing added
    seconds: float

    @classmethod
    def combined(cls, table: str, parts: list[LoadResult]) -> LoadResult:
        """One table's result over several batches (parallel slices, demo shards)."""
        return cls(
            table,
            ",".join(r.batch_id for r in parts),
            sum(r.received for r in parts),
            sum(r.loaded for r in parts),
            sum(r.rejected for r in parts),
            all(r.skipped for r in parts),
            sum(r.seconds for r in parts),
        )


@dataclass
class Prepared:
    """A batch ready to land: typed columns in COPY order, rejected rows and why, content hash."""

    names: list[str]
    types: list[str]
    arrays: list[pa.Array]
    source: dict  # landed column -> the producer's values (PII already replaced)
    bad: np.ndarray  # row numbers (0-based) rejected
    reasons: list[str]
    sha256: str

    @property
    def received(self) -> int:
        return len(self.arrays[0]) if self.arrays else 0


def num_rows(frame: Frame) -> int:
    return frame.num_rows if isinstance(frame, pa.Table) else len(frame)


def _names(frame: Frame) -> list[str]:
    return list(frame.column_names if isinstance(frame, pa.Table) else frame.columns)


def check_columns(table: RawTable, frame: Frame) -> None:
    expected = table.input_columns
    names = _names(frame)
    missing = [c for c in expected if c not in names]
    unknown = [c for c in names if c not in expected]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unknown:
            parts.append(f"unknown columns {unknown}")
        raise CdpError(f"{table.qualified}: {'; '.join(parts)}. Expected: {expected}")


def load_frame(
    conn: psycopg.Connection,
    table: RawTable,
    frame: Frame,
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    producer: str = "demo",
) -> LoadResult:
    """Land one batch. The batch id is a hash of the landed payload, so the same records loaded
    twice are recognised and skipped."""
    started = time.perf_counter()
    check_columns(table, frame)
    source, vault_rows, blocked = protect_pii(table, frame, keys, blocklist)
    # JSON text is checked by PostgreSQL during COPY (json columns); only when that fails is
    # every value parsed in Python to find and reject the bad rows.
    batch = prepare(table, source, producer, strict_json=False)
    try:
        return _land(conn, table, batch, vault_rows, blocked, producer, started)
    except (psycopg.errors.InvalidTextRepresentation, psycopg.errors.CharacterNotInRepertoire):
        # bad JSON syntax, or a NUL byte (not looked for in JSON up front, see validation)
        if not any(t in ("json", "jsonb") for _, t in table.columns):
            raise
    batch = prepare(table, source, producer, strict_json=True)
    return _land(conn, table, batch, vault_rows, blocked, producer, started)


def prepare(table: RawTable, source: dict, producer: str, *, strict_json: bool) -> Prepared:
    """Type and validate every landed column, collect rejections, hash the typed batch."""
    columns = list(table.columns) + [(p.hash_column, "text") for p in table.pii]
    columns = [columns[i] for i in copy_order([t for _, t in columns])]
    names, types, arrays, problems = [], [], [], []
    for name, pgtype in columns:
        checked = check(source[name], pgtype, strict_json=strict_json)
        names.append(name)
        types.append(pgtype)
        arrays.append(checked.typed)
        if checked.bad is not None:
            rows = np.flatnonzero(checked.bad)
            texts = shown(source[name], rows)
            problems.append((rows, [f"column {name}: '{s}' {checked.what}" for s in texts]))
    for name in table.required:
        typed = arrays[names.index(name)]
        if typed.null_count:
            rows = np.flatnonzero(typed.is_null().to_numpy(zero_copy_only=False))
            problems.append((rows, [f"column {name}: required value is missing"] * len(rows)))
    by_row: dict[int, list[str]] = {}
    for rows, messages in problems:
        for row, message in zip(rows.tolist(), messages, strict=True):
            by_row.setdefault(row, []).append(message)
    bad = np.array(sorted(by_row), dtype=np.int64)
    reasons = ["; ".join(by_row[r]) for r in bad.tolist()]
    sha = _digest(table, producer, names, types, arrays, bad, reasons)
    return Prepared(names, types, arrays, source, bad, reasons, sha)


def _digest(table, producer, names, types, arrays, bad, reasons) -> str:
    """sha256 of the typed batch: per column its validity and values as Arrow lays them out
    (string lengths and bytes; int64 units for numbers, microseconds for timestamps), plus the
    rejected rows. The same records hash the same whether they came as pandas or Arrow, CSV text
    or typed values, and whatever the wire format of the COPY."""
    rows = len(arrays[0]) if arrays else 0
    digest = hashlib.sha256(f"{table.qualified}|{producer}|{rows}|".encode())
    for name, pgtype, arr in zip(names, types, arrays, strict=True):
        digest.update(f"{name}:{pgtype}|{arr.null_count}|".encode())
        if arr.null_count:
            digest.update(np.packbits(arr.is_valid().to_numpy(zero_copy_only=False)).tobytes())
            fill = "" if pa.types.is_string(arr.type) else pa.scalar(0).cast(arr.type)
            arr = pc.fill_null(arr, fill)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            digest.update(np.diff(string_offsets(arr)).astype("<i8").tobytes())
            digest.update(string_bytes(arr))  # hashlib releases the GIL on large buffers
        else:
            digest.update(np.ascontiguousarray(arr.to_numpy(zero_copy_only=False)).tobytes())
    if len(bad):
        digest.update(orjson.dumps([bad.tolist(), reasons]))
    return digest.hexdigest()


def _land(conn, table, batch: Prepared, vault_rows, blocked, producer, started) -> LoadResult:
    n_bad = len(batch.bad)
    n_good = batch.received - n_bad
    batch_id = f"{table.source}.{table.entity}.{batch.sha256[:20]}"
    started_at = datetime.now(UTC)
    with conn.transaction():
        conn.execute(LANDING_LOCK)  # first: see orchestration/runtime/db.py
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (batch_id,))
        done = conn.execute(
            "select rows_received, rows_loaded, rows_rejected from ops.load_batches "
            "where batch_id = %s and status = 'loaded'",
            (batch_id,),
        ).fetchone()
        if done:
            return LoadResult(table.qualified, batch_id, *done, True, time.perf_counter() - started)
        arrays = batch.arrays
        if n_bad:
            keep = np.ones(batch.received, dtype=bool)
            keep[batch.bad] = False
            mask = pa.array(keep)
            arrays = [a.filter(mask) for a in arrays]
        # encoded only now: a batch loaded before costs its validation and hash, not this
        payload = encode_rows(list(zip(arrays, batch.types, strict=True)))
        # _batch_id and _loaded_at come from the raw tables' column defaults
        conn.execute("select set_config('cdp.batch_id', %s, true)", (batch_id,))
        copy_binary(conn, table.qualified, batch.names, payload)
        if n_bad:
            _reject(conn, table, batch_id, batch)
        for rows, target in ((vault_rows, "pii.vault"), (blocked, "pii.blocked_values")):
            if len(rows):
                insert_new(conn, target, rows)
        conn.execute(
            "insert into ops.load_batches (batch_id, source, entity, producer, payload_sha256, "
            "rows_received, rows_loaded, rows_rejected, status, started_at, finished_at) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, 'loaded', %s, clock_timestamp())",
            (
                batch_id,
                table.source,
                table.entity,
                producer,
                batch.sha256,
                batch.received,
                n_good,
                n_bad,
                started_at,
            ),
        )
    return LoadResult(
        table.qualified,
        batch_id,
        batch.received,
        n_good,
        n_bad,
        False,
        time.perf_counter() - started,
    )


def load_frames(
    url: str,
    frames: list[tuple[RawTable, Frame]],
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    producer: str = "demo",
    workers: int = 2,
    rows_per_batch: int = 150_000,
    on_result=lambda result: None,
) -> list[LoadResult]:
    """Land several tables concurrently; one result per table (its batches summed).

    A large frame is cut into batches of ``rows_per_batch`` rows (deterministically, so a re-run
    recognises each one), each in its own transaction; each worker thread keeps one connection.
    A failure leaves whole batches landed or not, and a re-run lands only the missing ones.

    Scheduling keeps both cores busy: PostgreSQL runs a COPY on one core per backend, and the
    Python side of a plain batch (validation, encoding, hashing) is mostly Arrow and numpy
    kernels that release the GIL. Tables with PII are the exception — their vault work holds
    the GIL and their vault inserts wait on each other's transactions when they share values —
    so they run one at a time, biggest first, while the other worker lands the plain batches,
    heaviest first (most bytes: GA4's JSON before Klaviyo's), the small ones filling the tail."""

    def cut(frame: Frame, start: int) -> Frame:
        if isinstance(frame, pa.Table):
            return frame.slice(start, rows_per_batch)
        return frame.iloc[start : start + rows_per_batch]

    work = [
        (table, cut(frame, start))
        for table, frame in frames
        for start in range(0, max(num_rows(frame), 1), rows_per_batch)
    ]
    with_pii = sorted(
        (i for i, (t, _) in enumerate(work) if t.pii),
        key=lambda i: -num_rows(work[i][1]) * len(work[i][0].pii),
    )
    plain = sorted(
        (i for i, (t, _) in enumerate(work) if not t.pii), key=lambda i: -_weight(work[i][1])
    )
    results: dict[int, LoadResult] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    pii_running = [False]

    def pick() -> int | None:
        with lock:
            if errors:
                return None
            if with_pii and not pii_running[0]:
                pii_running[0] = True
                return with_pii.pop(0)
            if plain:
                return plain.pop(0)
            return with_pii.pop(0) if with_pii else None  # the tail: better than idling

    def worker() -> None:
        try:
            with connect(url) as conn:
                while (i := pick()) is not None:
                    results[i] = _land_retrying(conn, *work[i], keys, blocklist, producer)
                    if work[i][0].pii:
                        pii_running[0] = False
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    combined = []
    for table, _ in frames:
        parts = [results[i] for i in range(len(work)) if work[i][0] is table]
        result = LoadResult.combined(table.qualified, parts)
        on_result(result)
        combined.append(result)
    return combined


def _weight(frame: Frame) -> int:
    """Roughly the bytes a batch sends (what the server's COPY time follows): Arrow columns'
    sizes, 16 bytes a value for the others."""
    total = 0
    for name in _names(frame):
        values = column_values(frame, name)
        if isinstance(values, pa.Array):
            total += values.nbytes
        elif isinstance(values.dtype, pd.ArrowDtype):
            total += values.array.__arrow_array__().nbytes
        else:
            total += 16 * len(values)
    return total


def _land_retrying(conn, table, frame, keys, blocklist, producer) -> LoadResult:
    for attempt in range(3):
        try:
            return load_frame(conn, table, frame, keys=keys, blocklist=blocklist, producer=producer)
        except psycopg.errors.DeadlockDetected:
            # the batch rolled back whole; another batch shared vault keys with it
            if attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _reject(conn, table: RawTable, batch_id: str, batch: Prepared) -> None:
    """Rejected rows with their reasons and payload: the producer's values (PII replaced)."""
    columns = {name: _plain(batch.source[name], batch.bad) for name in batch.names}
    payloads = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into ops.rejected_records (batch_id, source, entity, row_number, reason, "
            "payload) values (%s, %s, %s, %s, %s, %s)",
            [
                (
                    batch_id,
                    table.source,
                    table.entity,
                    int(row) + 1,
                    reason,
                    orjson.dumps(payload, default=str).decode(),
                )
                for row, reason, payload in zip(
                    batch.bad.tolist(), batch.reasons, payloads, strict=True
                )
            ],
        )


def _plain(values, rows: np.ndarray) -> list:
    """JSON-ready Python values of some rows (NULL, NaN and NA as None; a NUL, which jsonb
    cannot hold, as the text \\u0000)."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        picked = values.take(pa.array(rows)).to_pylist()
    else:
        picked = values.iloc[rows].astype(object).tolist()
    return [
        None
        if v is None or v is pd.NA or v is pd.NaT or v != v
        else v.replace("\x00", "\\u0000")
        if isinstance(v, str)
        else v
        for v in picked
    ]


__all__ = ["LoadResult", "check_columns", "load_frame", "load_frames", "normalize", "num_rows"]
