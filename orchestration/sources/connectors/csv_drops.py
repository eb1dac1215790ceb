"""Helpdesk and subscription CSV exports dropped into a directory, into ``raw_helpdesk.*`` and
``raw_subscriptions.*``.

A file's entity comes from its name: ``tickets*.csv`` / ``requesters*.csv`` in
``CDP_HELPDESK_DROP_DIR``; ``customers*.csv`` / ``subscriptions*.csv`` / ``events*.csv`` in
``CDP_SUBSCRIPTIONS_DROP_DIR`` (``.csv.gz`` too). The header must name exactly the raw table's
columns (any order); otherwise nothing is loaded and the error lists, per file, the missing and
unknown columns. Each file is loaded once, recognised by its checksum (renaming or re-dropping
the same bytes adds nothing). An empty unquoted field is NULL, a quoted ``""`` an empty string
(PostgreSQL's CSV convention); values are typed and bad rows rejected by the loader.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.sources.connectors import state
from orchestration.sources.schemas import TABLES, RawTable

ENV_VARS = {"helpdesk": "CDP_HELPDESK_DROP_DIR", "subscriptions": "CDP_SUBSCRIPTIONS_DROP_DIR"}


@dataclass
class DropFile:
    path: Path
    table: RawTable
    data: bytes
    sha256: str


@dataclass
class DropStats:
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0  # loaded before (same checksum)
    ignored: list[str] = field(default_factory=list)  # names matching no entity


def entity_of(source: str, name: str) -> RawTable | None:
    """The raw table a file name belongs to (longest entity-name prefix wins)."""
    lower = name.lower()
    if not (lower.endswith(".csv") or lower.endswith(".csv.gz")):
        return None
    candidates = [t for t in TABLES if t.source == source and lower.startswith(t.entity)]
    return max(candidates, key=lambda t: len(t.entity), default=None)


def read_header(data: bytes) -> list[str]:
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    reader = pacsv.read_csv(
        pa.py_buffer(first + b"\n"),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
    )
    return [str(v[0].as_py()).strip() for v in reader.columns]


def header_problems(table: RawTable, header: list[str]) -> str | None:
    expected = table.input_columns
    missing = [c for c in expected if c not in header]
    unknown = [c for c in header if c not in expected]
    dupes = sorted({c for c in header if header.count(c) > 1})
    parts = []
    if missing:
        parts.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        parts.append(f"unknown columns: {', '.join(unknown)}")
    if dupes:
        parts.append(f"repeated columns: {', '.join(dupes)}")
    return "; ".join(parts) or None


def read_csv(data: bytes, table: RawTable) -> pd.DataFrame:
    """Every column as text (the loader types and validates them)."""
    header = read_header(data)
    frame = pacsv.read_csv(
        pa.py_buffer(data),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    ).to_pandas()
    frame = frame.astype(object).where(frame.notna(), None)
    return frame[table.input_columns]


def scan(source: str, directory: Path) -> tuple[list[DropFile], DropStats]:
    env = ENV_VARS[source]
    if not directory.is_dir():
        raise CdpError(f"{source} drop directory {directory} does not exist ({env})")
    files, stats, problems = [], DropStats(), []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        table = entity_of(source, path.name)
        if table is None:
            stats.ignored.append(path.name)
            continue
        raw = path.read_bytes()
        try:
            data = gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw
            problem = header_problems(table, read_header(data))
        except (OSError, EOFError, pa.ArrowInvalid) as exc:
            problem = f"cannot be read as CSV: {exc}"
            data = b""
        if problem:
            problems.append(f"{path} ({table.qualified}): {problem}")
            continue
        files.append(DropFile(path, table, data, hashlib.sha256(raw).hexdigest()))
    stats.files_seen = len(files)
    if problems:
        expected = {t.entity: ", ".join(t.input_columns) for t in TABLES if t.source == source}
        raise CdpError(
            f"{len(problems)} {source} CSV file(s) in {directory} have a wrong header; nothing "
            "was loaded. "
            + " | ".join(problems)
            + ". Expected headers: "
            + " | ".join(f"{k}: {v}" for k, v in expected.items())
        )
    return files, stats


def sync_drops(
    url: str,
    source: str,
    directory: Path,
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    log: Callable[[str], None] = lambda msg: None,
) -> tuple[state.StreamStats, DropStats]:
    from orchestration.runtime.db import connect

    files, drop = scan(source, Path(directory))
    stats = state.StreamStats("files")
    with connect(url, autocommit=True) as conn:
        state.ensure_connector_tables(conn)
        seen = {
            r[0]
            for r in conn.execute(
                "select sha256 from ops.connector_files where source = %s", (source,)
            )
        }
        for f in files:
            if f.sha256 in seen:
                drop.files_skipped += 1
                continue
            try:
                frame = read_csv(f.data, f.table)
            except pa.ArrowInvalid as exc:
                raise CdpError(f"{f.path}: not a valid CSV file: {exc}") from None

            def record(c, results, f=f):
                r = results[0]
                c.execute(
                    "insert into ops.connector_files (source, stream, file_name, sha256, "
                    "batch_ids, rows_received, rows_loaded, rows_rejected) "
                    "values (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        source,
                        f.table.entity,
                        f.path.name,
                        f.sha256,
                        [r.batch_id],
                        r.received,
                        r.loaded,
                        r.rejected,
                    ),
                )

            results = state.commit_batch(
                conn,
                [(f.table, frame)],
                keys=keys,
                blocklist=blocklist,
                producer=source,
                then=record,
            )
            r = results[0]
            seen.add(f.sha256)
            stats.results += results
            stats.fetched += len(frame)
            stats.batches += 1
            drop.files_loaded += 1
            log(
                f"{source}: {f.path.name} -> {f.table.qualified}: {r.loaded:,} loaded, "
                f"{r.rejected} rejected"
            )
    stats.results = state.merge_results(stats.results)
    return stats, drop
