"""Export files on disk, written so a reader never sees a partial export.

Layout: ``<exports_dir>/<slug>/<export_id>/{members,entered,exited}.{csv,parquet}`` plus
``manifest.json``, and ``<exports_dir>/<slug>/LATEST`` holding the id of the newest complete
export. Every file is written to a hidden temporary name, fsynced and renamed into place; the
manifest (rows, bytes and sha256 per file) is written last, the same way; only then is LATEST
replaced (temp file + fsync + ``os.replace`` + directory fsync). An export killed at any point
leaves LATEST naming the previous complete export; its half-written directory has no manifest
and is removed by the next export of the segment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

LATEST = "LATEST"
MANIFEST = "manifest.json"
EXPORT_ID_RE = re.compile(r"^\d{8}T\d{6}\d{6}Z-[0-9a-z]{8}$")
FORMATS = ("csv", "parquet")


def new_export_id(run_id: str, now: datetime | None = None) -> str:
    """Sortable by time, unique per run: ``20261120T020000123456Z-1a2b3c4d``."""
    now = now or datetime.now(UTC)
    tail = re.sub(r"[^0-9a-z]", "", run_id.lower())[:8].ljust(8, "0")
    return f"{now.strftime('%Y%m%dT%H%M%S%f')}Z-{tail}"


@dataclass
class FileInfo:
    name: str
    rows: int
    bytes: int
    sha256: str
    columns: list[str]


@dataclass
class WrittenExport:
    export_id: str
    directory: Path
    manifest: dict
    files: list[FileInfo] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to a temporary sibling, fsync it, rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def encode(table: pa.Table, fmt: str) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    if fmt == "csv":
        pacsv.write_csv(
            table,
            sink,
            pacsv.WriteOptions(include_header=True, batch_size=65_536, quoting_style="needed"),
        )
    elif fmt == "parquet":
        pq.write_table(table, sink, compression="zstd")
    else:
        raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    return sink.getvalue()


def write_file(
    directory: Path, name: str, table: pa.Table, fmt: str, encoded: dict | None = None
) -> FileInfo:
    """Encode, write atomically, hash the bytes in memory (never re-read). ``encoded`` caches
    (bytes, sha256) by table object and format, so one table written twice (a first export's
    members and entered) is encoded and hashed once."""
    key = (id(table), fmt)
    if encoded is not None and key in encoded:
        buf, digest = encoded[key]
    else:
        buf = encode(table, fmt)
        digest = hashlib.sha256(memoryview(buf)).hexdigest()
        if encoded is not None:
            encoded[key] = (buf, digest)
    atomic_write(directory / name, memoryview(buf))
    return FileInfo(
        name=name,
        rows=table.num_rows,
        bytes=buf.size,
        sha256=digest,
        columns=list(table.column_names),
    )


def read_latest(segment_dir: Path) -> str | None:
    try:
        value = (segment_dir / LATEST).read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


def write_export(
    segment_dir: Path,
    export_id: str,
    tables: dict[str, tuple[pa.Table, str]],
    manifest: dict,
    keep: int,
) -> WrittenExport:
    """Write ``{file name: (table, format)}`` and the manifest, then point LATEST at them.

    ``manifest`` carries the export's facts (segment, rule hash, run id, columns, ...); the
    ``files`` entry and ``generated_at`` are added here."""
    segment_dir.mkdir(parents=True, exist_ok=True)
    directory = segment_dir / export_id
    directory.mkdir(exist_ok=False)
    written = WrittenExport(export_id, directory, {})
    encoded: dict = {}
    for name, (table, fmt) in tables.items():
        written.files.append(write_file(directory, name, table, fmt, encoded))
    _fsync_dir(directory)
    written.manifest = {
        **manifest,
        "export_id": export_id,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {
            f.name: {"rows": f.rows, "bytes": f.bytes, "sha256": f.sha256, "columns": f.columns}
            for f in written.files
        },
    }
    body = json.dumps(written.manifest, indent=2, default=str).encode() + b"\n"
    atomic_write(directory / MANIFEST, body)
    _fsync_dir(directory)
    # the export is complete on disk; only now may readers see it
    atomic_write(segment_dir / LATEST, f"{export_id}\n".encode())
    _fsync_dir(segment_dir)
    written.pruned = prune(segment_dir, keep)
    return written


def prune(segment_dir: Path, keep: int) -> list[str]:
    """Delete incomplete export directories and complete ones beyond the newest ``keep``.

    The export LATEST names is never deleted."""
    latest = read_latest(segment_dir)
    complete, removed = [], []
    for child in sorted(segment_dir.iterdir()):
        if not child.is_dir() or not EXPORT_ID_RE.match(child.name):
            continue
        if (child / MANIFEST).is_file():
            complete.append(child)
        elif child.name != latest:
            shutil.rmtree(child, ignore_errors=True)  # left by an export killed midway
            removed.append(child.name)
    for child in complete[: max(0, len(complete) - keep)]:
        if child.name != latest:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child.name)
    return removed


def verify_export(directory: Path) -> dict:
    """Check every file against the manifest (rows, bytes, sha256); the manifest, or raise."""
    manifest = json.loads((directory / MANIFEST).read_text())
    for name, info in manifest["files"].items():
        data = (directory / name).read_bytes()
        if len(data) != info["bytes"] or hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise ValueError(f"{directory / name} does not match its manifest entry")
        if name.endswith(".parquet"):
            rows = pq.read_metadata(directory / name).num_rows
        else:
            rows = pacsv.read_csv(directory / name).num_rows
        if rows != info["rows"]:
            raise ValueError(f"{directory / name}: {rows} rows, manifest says {info['rows']}")
    return manifest
