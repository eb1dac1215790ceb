"""Raw landing: a producer's DataFrame becomes one batch in ``raw_<source>.<entity>``.

The contract (DESIGN.md): PII is encrypted into ``pii.vault`` and replaced by blind indexes before
anything lands; rows are validated and bad ones go to ``ops.rejected_records`` with the reason and
payload (PII already replaced), so ``received = loaded + rejected``; the good rows are bulk-loaded
with COPY; the batch is recorded in ``ops.load_batches``. Everything of one batch commits in one
transaction, and a batch whose payload was loaded before is skipped, so re-runs add nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson
import pandas as pd
import psycopg
import pyarrow as pa

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys, encrypt_many, index_series, normalize
from orchestration.runtime.db import connect, copy_csv, frame_chunks, frame_to_csv
from orchestration.sources.schemas import RawTable


@dataclass(frozen=True)
class LoadResult:
    table: str
    batch_id: str
    received: int
    loaded: int
    rejected: int
    skipped: bool  # the same payload was loaded before: nothing added
    seconds: float


def payload_sha256(table: RawTable, frame: pd.DataFrame) -> str:
    """A content hash of the producer's rows (vectorised row hashes, then sha256)."""
    digest = hashlib.sha256(f"{table.qualified}|{','.join(frame.columns)}|".encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def check_columns(table: RawTable, frame: pd.DataFrame) -> None:
    expected = table.input_columns
    missing = [c for c in expected if c not in frame.columns]
    unknown = [c for c in frame.columns if c not in expected]
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
    frame: pd.DataFrame,
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    producer: str = "demo",
) -> LoadResult:
    """Land one batch. The batch id is a hash of the landed payload, so the same records loaded
    twice are recognised and skipped."""
    started = time.perf_counter()
    check_columns(table, frame)
    frame = frame[table.input_columns].reset_index(drop=True)
    protected, vault_rows, blocked = _protect_pii(table, frame, keys, blocklist)
    # JSON text is checked by PostgreSQL during COPY (json columns); only when that fails is
    # every value parsed in Python to find and reject the bad rows.
    landed, reasons, payload, sha = _prepare(table, protected, producer, strict_json=False)
    try:
        return _land(
            conn,
            table,
            frame,
            landed,
            reasons,
            payload,
            sha,
            vault_rows,
            blocked,
            producer,
            started,
        )
    except psycopg.errors.InvalidTextRepresentation:
        if not any(t in ("json", "jsonb") for _, t in table.columns):
            raise
    landed, reasons, payload, sha = _prepare(table, protected, producer, strict_json=True)
    return _land(
        conn, table, frame, landed, reasons, payload, sha, vault_rows, blocked, producer, started
    )


def _prepare(table: RawTable, protected: pd.DataFrame, producer: str, *, strict_json: bool):
    landed, reasons = _validate(table, protected, strict_json=strict_json)
    bad = reasons.notna().to_numpy()
    arrow = pa.Table.from_pandas(landed, preserve_index=False)
    good = arrow.filter(pa.array(~bad)) if bad.any() else arrow
    payload = frame_to_csv(good)
    digest = hashlib.sha256(f"{table.qualified}|{producer}|".encode())
    digest.update(hashlib.sha256(frame_to_csv(arrow)).digest() if bad.any() else payload)
    return landed, reasons, payload, digest.hexdigest()


def _land(
    conn, table, frame, landed, reasons, payload, sha, vault_rows, blocked, producer, started
) -> LoadResult:
    bad = reasons.notna().to_numpy()
    n_good = len(landed) - int(bad.sum())
    batch_id = f"{table.source}.{table.entity}.{sha[:20]}"
    started_at = datetime.now(UTC)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (batch_id,))
        done = conn.execute(
            "select rows_received, rows_loaded, rows_rejected from ops.load_batches "
            "where batch_id = %s and status = 'loaded'",
            (batch_id,),
        ).fetchone()
        if done:
            return LoadResult(table.qualified, batch_id, *done, True, time.perf_counter() - started)
        # _batch_id and _loaded_at come from the raw tables' column defaults
        conn.execute("select set_config('cdp.batch_id', %s, true)", (batch_id,))
        copy_csv(conn, table.qualified, landed.columns, _split(payload))
        if bad.any():
            _reject(conn, table, batch_id, landed.loc[bad], reasons[bad])
        for rows, target in ((vault_rows, "pii.vault"), (blocked, "pii.blocked_values")):
            if len(rows):
                _insert_new(conn, target, rows)
        conn.execute(
            "insert into ops.load_batches (batch_id, source, entity, producer, payload_sha256, "
            "rows_received, rows_loaded, rows_rejected, status, started_at, finished_at) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, 'loaded', %s, clock_timestamp())",
            (
                batch_id,
                table.source,
                table.entity,
                producer,
                sha,
                len(frame),
                n_good,
                int(bad.sum()),
                started_at,
            ),
        )
    return LoadResult(
        table.qualified,
        batch_id,
        len(frame),
        n_good,
        int(bad.sum()),
        False,
        time.perf_counter() - started,
    )


def load_frames(
    url: str,
    frames: list[tuple[RawTable, pd.DataFrame]],
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
    recognises each one), each with its own connection and transaction: PostgreSQL parses a COPY
    on one core per backend, so two at once keep both cores busy. A failure leaves whole batches
    landed or not, and a re-run lands only the missing ones. Largest first."""
    from concurrent.futures import ThreadPoolExecutor

    work = [
        (table, frame.iloc[start : start + rows_per_batch])
        for table, frame in frames
        for start in range(0, max(len(frame), 1), rows_per_batch)
    ]
    work.sort(key=lambda item: -len(item[1]))

    def land_one(item):
        table, frame = item
        for attempt in range(3):
            try:
                with connect(url) as conn:
                    return load_frame(
                        conn, table, frame, keys=keys, blocklist=blocklist, producer=producer
                    )
            except psycopg.errors.DeadlockDetected:
                # the batch rolled back whole; another batch shared vault keys with it
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(land_one, work))
    combined = []
    for table, _ in frames:
        parts = [r for r in results if r.table == table.qualified]
        result = LoadResult(
            table.qualified,
            ",".join(r.batch_id for r in parts),
            sum(r.received for r in parts),
            sum(r.loaded for r in parts),
            sum(r.rejected for r in parts),
            all(r.skipped for r in parts),
            sum(r.seconds for r in parts),
        )
        on_result(result)
        combined.append(result)
    return combined


def _split(payload: bytes, size: int = 8 << 20) -> Iterator[bytes]:
    """CSV bytes in ~8 MB pieces for the COPY sender thread (COPY accepts any split)."""
    view = memoryview(payload)
    for start in range(0, len(payload), size):
        yield view[start : start + size]


def _protect_pii(
    table: RawTable, frame: pd.DataFrame, keys: VaultKeys, blocklist: Blocklist
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Replace plaintext PII with blind indexes; return vault rows and blocked hashes."""
    out = frame.copy() if table.pii else frame
    vault_parts, blocked_parts = [], []
    for pii in table.pii:
        hashed, plain_by_hash = index_series(keys, frame[pii.column], pii.pii_type)
        out[pii.hash_column] = hashed
        del out[pii.column]
        if plain_by_hash:
            vault_parts.append(encrypt_many(keys, pii.pii_type, plain_by_hash))
        if pii.pii_type in ("email", "phone"):
            values = pd.Series(list(plain_by_hash.values()), dtype="string")
            flags = blocklist.flags(values, pii.pii_type).to_numpy()
            if flags.any():
                hashes = np.array(list(plain_by_hash.keys()))[flags]
                blocked_parts.append(
                    pd.DataFrame(
                        {"pii_type": pii.pii_type, "value_hash": hashes, "rule": "blocklist"}
                    )
                )
    vault = pd.concat(vault_parts) if vault_parts else pd.DataFrame()
    blocked = pd.concat(blocked_parts) if blocked_parts else pd.DataFrame()
    if len(vault):
        vault = vault.drop_duplicates(["pii_type", "value_hash"])
    if len(blocked):
        blocked = blocked.drop_duplicates(["pii_type", "value_hash"])
    return out, vault, blocked


_BOOL = {
    "true": True,
    "t": True,
    "1": True,
    "yes": True,
    "false": False,
    "f": False,
    "0": False,
    "no": False,
}


def _validate(
    table: RawTable, frame: pd.DataFrame, strict_json: bool = True
) -> tuple[pd.DataFrame, pd.Series]:
    """Typed columns and, per row, why it is rejected (None when it is fine).

    Columns that already have the right dtype (what the generator and connectors hand over) skip
    parsing; only text input is parsed, so validation stays cheap at millions of rows."""
    out = frame.copy()
    problems: list[pd.Series] = []

    def flag(col: str, bad: pd.Series, what: str) -> None:
        if bad.any():
            shown = frame[col].astype("string").str.slice(0, 60).fillna("")
            message = f"column {col}: '" + shown + f"' {what}"
            problems.append(message.where(bad, None).astype(object))

    for col, pgtype in table.columns:
        raw = frame[col]
        is_int = pgtype in ("bigint", "integer")
        if is_int or pgtype.startswith("numeric"):
            num = raw if pd.api.types.is_numeric_dtype(raw) else pd.to_numeric(raw, errors="coerce")
            bad = _present(raw) & num.isna()
            if is_int:
                bad |= num.notna() & (num != np.floor(num.fillna(0)))
                out[col] = num.where(~bad).astype("Int64")
            else:
                out[col] = num.where(~bad)
            flag(col, bad, f"is not a valid {pgtype}")
        elif pgtype == "timestamptz":
            if pd.api.types.is_datetime64_any_dtype(raw):
                out[col] = raw if raw.dt.tz is not None else raw.dt.tz_localize("UTC")
                continue
            ts = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
            bad = _present(raw) & ts.isna()
            out[col] = ts.where(~bad)
            flag(col, bad, "is not a timestamp")
        elif pgtype == "boolean":
            if pd.api.types.is_bool_dtype(raw):
                continue
            mapped = raw.map(lambda v: _BOOL.get(str(v).strip().lower()) if pd.notna(v) else None)
            bad = _present(raw) & mapped.isna()
            out[col] = mapped.where(~bad).astype("boolean")
            flag(col, bad, "is not a boolean")
        elif pgtype in ("json", "jsonb") and (strict_json or raw.dtype != object):
            values = [
                orjson.dumps(v).decode() if isinstance(v, dict | list) else v for v in raw.tolist()
            ]
            out[col] = values
            bad = pd.Series(_json_invalid(values), index=frame.index)
            flag(col, bad, "is not valid JSON")
    for col in table.required:
        missing = out[col].isna()
        if missing.any():
            problems.append(
                pd.Series(
                    np.where(missing, f"column {col}: required value is missing", None),
                    index=frame.index,
                    dtype=object,
                )
            )
    if not problems:
        return out, pd.Series(None, index=frame.index, dtype=object)
    joined = pd.concat(problems, axis=1)
    reasons = joined.apply(lambda row: "; ".join(v for v in row if isinstance(v, str)), axis=1)
    return out, reasons.where(reasons != "", None)


def _present(raw: pd.Series) -> pd.Series:
    """Non-null and, for text, non-empty."""
    present = raw.notna()
    if raw.dtype == object:
        present &= raw.astype(str).str.len() > 0
    return present


def _json_invalid(values: list) -> np.ndarray:
    """True where a value is neither null nor valid JSON text."""
    loads, err = orjson.loads, orjson.JSONDecodeError
    try:  # the common case: every value parses, one tight loop
        for v in values:
            if v is not None and v == v:  # v == v is False for NaN
                loads(v)
        return np.zeros(len(values), dtype=bool)
    except (err, TypeError):
        pass
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None or v != v:
            continue
        try:
            loads(v)
        except (err, TypeError):
            bad[i] = True
    return bad


def _reject(conn, table: RawTable, batch_id: str, rows: pd.DataFrame, reasons: pd.Series) -> None:
    payloads = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    with conn.cursor() as cur:
        cur.executemany(
            "insert into ops.rejected_records (batch_id, source, entity, row_number, reason, "
            "payload) values (%s, %s, %s, %s, %s, %s)",
            [
                (
                    batch_id,
                    table.source,
                    table.entity,
                    int(i) + 1,
                    reason,
                    orjson.dumps(p, default=str).decode(),
                )
                for (i, reason), p in zip(reasons.items(), payloads, strict=True)
            ],
        )


def _insert_new(conn: psycopg.Connection, target: str, rows: pd.DataFrame) -> None:
    """Insert rows whose key is not there yet (COPY into a temp table, then one insert)."""
    tmp = "tmp_" + target.replace(".", "_")
    conn.execute(
        f"create temp table if not exists {tmp} (like {target} including defaults) on commit drop"
    )
    conn.execute(f"truncate {tmp}")
    copy_csv(conn, tmp, rows.columns, frame_chunks(rows))
    cols = ", ".join(rows.columns)
    # key order: concurrent batches inserting overlapping keys lock them in the same order
    key = "pii_type, value_hash"
    conn.execute(
        f"insert into {target} ({cols}) select {cols} from {tmp} order by {key} "
        "on conflict do nothing"
    )


__all__ = ["LoadResult", "check_columns", "load_frame", "normalize", "payload_sha256"]
