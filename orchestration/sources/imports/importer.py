"""``cdp import``: a shop's CSV exports into the raw Shopify tables, through the same loader,
vault and batch records as every other producer.

One file is one import: read (every value as text), mapped (``orders`` / ``customers``), landed in
one transaction with its record in ``ops.connector_files`` (source ``import``) and the rows the
importer rejected in ``ops.rejected_records`` (batch ``import.<format>.<key>``, row numbers as a
spreadsheet shows them: the header is row 1). A file is recognised by the sha256 of its bytes and
the options it was read with, so importing the same file twice adds nothing; the landed batches
are content-addressed as well (``landing``), so the same rows arriving in another file land once.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.sources.connectors import state
from orchestration.sources.imports.customers import CUSTOMERS, map_customers
from orchestration.sources.imports.orders import (
    GENERIC_COLUMNS,
    LINES,
    ORDERS,
    REFUNDS,
    SHOPIFY_COLUMNS,
    from_generic,
    from_shopify,
    map_orders,
)
from orchestration.sources.imports.values import DateNotes, DateRules, Rejects

FORMATS = ("shopify-orders", "shopify-customers", "orders")
SOURCE = "import"
ROWS_PER_BATCH = 150_000
# columns a rejected row's payload may keep: never an email, phone, name or address
_PII_CANONICAL = {"email", "phone", "billing_phone", "customer_key"}
SAFE_COLUMNS = {
    c.lower() for k, c in SHOPIFY_COLUMNS.items() if k not in _PII_CANONICAL
} | {
    a for k, aliases in GENERIC_COLUMNS.items() if k not in _PII_CANONICAL for a in aliases
} | {
    "customer id", "accepts email marketing", "accepts marketing", "tags", "created at",
    "updated at", "total spent", "total orders", "default address city", "city",
    "default address province code", "province code", "default address country code",
    "country code", "vendor",
}  # fmt: skip


@dataclass
class FileReport:
    path: Path
    format: str
    rows: int = 0
    skipped: bool = False  # imported before (same bytes, same options): nothing added
    orders: int = 0
    lines: int = 0
    refunds: int = 0
    customers: int = 0
    cancelled: int = 0
    without_customer: int = 0
    rejected: int = 0  # rows the importer rejected
    by_reason: Counter = field(default_factory=Counter)
    examples: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    loader_rejected: int = 0  # rows the loader's validation rejected after mapping
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    landed: dict[str, int] = field(default_factory=dict)  # raw table -> rows added

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def read_csv(path: Path) -> tuple[pd.DataFrame, bytes]:
    """Every column as text (empty as missing), the data rows numbered 0.. ; and the bytes."""
    raw = path.read_bytes()
    data = gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CdpError(
            f"{path}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8 and import again"
        ) from None
    try:
        header = pacsv.read_csv(
            pa.py_buffer(data.split(b"\n", 1)[0] + b"\n"),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        )
        names = [str(c[0].as_py()).strip() for c in header.columns]
        table = pacsv.read_csv(
            pa.py_buffer(data),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in names},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid as exc:
        raise CdpError(f"{path}: not a readable CSV file: {exc}") from None
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    frame.columns = names
    return frame.reset_index(drop=True), raw


def detect(frame: pd.DataFrame) -> str | None:
    """The format a drop-folder file is in, from its header."""
    heads = {str(c).strip().lower() for c in frame.columns}
    if "lineitem quantity" in heads:
        return "shopify-orders"
    if heads & {"accepts email marketing", "accepts marketing", "total spent"}:
        return "shopify-customers"
    if heads & {"order_id", "order_number"}:
        return "orders"
    return None


def file_key(raw: bytes, fmt: str, rules: DateRules) -> str:
    digest = hashlib.sha256(raw)
    digest.update(f"|{fmt}|{rules.timezone or ''}|{rules.date_format or ''}".encode())
    return digest.hexdigest()


def import_file(
    url: str,
    path: Path,
    fmt: str,
    rules: DateRules,
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    frame: pd.DataFrame | None = None,
    raw: bytes | None = None,
) -> FileReport:
    from orchestration.runtime.db import connect

    started = time.perf_counter()
    if fmt not in FORMATS:
        raise CdpError(f"unknown import format {fmt!r}; one of {', '.join(FORMATS)}")
    if frame is None or raw is None:
        frame, raw = read_csv(path)
    report = FileReport(path, fmt, rows=len(frame))
    key = file_key(raw, fmt, rules)
    with connect(url, autocommit=True) as conn:
        state.ensure_connector_tables(conn)
        before = conn.execute(
            "select rows_received, rows_loaded, rows_rejected, loaded_at from ops.connector_files "
            "where source = %s and sha256 = %s",
            (SOURCE, key),
        ).fetchone()
        if before:
            report.skipped = True
            report.notes.append(f"imported before, on {before[3]:%Y-%m-%d %H:%M %Z}: nothing added")
            report.seconds = time.perf_counter() - started
            return report
        where = str(path)
        if fmt == "shopify-customers":
            out = map_customers(frame, where=where, rules=rules, keys=keys, blocklist=blocklist)
            customers = _fill_customer_dates(conn, out.customers, out.email_ids, report)
            frames = [(CUSTOMERS, customers)]
            rejects, notes, entity = out.rejects, out.notes, "customers"
        else:
            adapt = from_shopify if fmt == "shopify-orders" else from_generic
            canon, starts, shown = adapt(frame, where)
            out = map_orders(
                canon, starts, shown, where=where, rules=rules, keys=keys, blocklist=blocklist
            )
            frames = [(ORDERS, out.orders), (LINES, out.lines), (REFUNDS, out.refunds)]
            rejects, notes, entity = out.rejects, out.notes, "orders"
            report.cancelled = int(out.orders["cancelled_at"].notna().sum())
            report.without_customer = out.without_customer
            report.customers = int(out.orders["customer_id"].nunique())
        _note_dates(report, notes, rules)
        batch_id = f"import.{fmt}.{key[:20]}"
        chunks = [
            (t, f.iloc[i : i + ROWS_PER_BATCH])
            for t, f in frames
            for i in range(0, len(f), ROWS_PER_BATCH)
        ]

        def record(c, results) -> None:
            _record_rejects(c, batch_id, entity, frame, rejects)
            c.execute(
                "insert into ops.connector_files (source, stream, file_name, sha256, batch_ids, "
                "rows_received, rows_loaded, rows_rejected) values (%s, %s, %s, %s, %s, %s, %s, "
                "%s)",
                (
                    SOURCE,
                    fmt,
                    path.name,
                    key,
                    [batch_id, *(r.batch_id for r in results)],
                    len(frame),
                    len(frame) - len(rejects),
                    len(rejects),
                ),
            )

        results = state.commit_batch(
            conn, chunks, keys=keys, blocklist=blocklist, producer=SOURCE, then=record
        )
        for r in state.merge_results(results):
            added = 0 if r.skipped else r.loaded
            report.landed[r.table] = added
            report.loader_rejected += 0 if r.skipped else r.rejected
        report.orders = report.landed.get(ORDERS.qualified, 0)
        report.lines = report.landed.get(LINES.qualified, 0)
        report.refunds = report.landed.get(REFUNDS.qualified, 0)
        if fmt == "shopify-customers":
            report.customers = report.landed.get(CUSTOMERS.qualified, 0)
        if report.loader_rejected:
            ids = [r.batch_id for r in results]
            for (reason,) in conn.execute(
                "select reason from ops.rejected_records where batch_id = any(%s)", (ids,)
            ):
                report.by_reason[f"loader: {reason.split(':')[0]}"] += 1
    report.rejected = len(rejects)
    report.by_reason.update(rejects.by_reason())
    report.examples = [(row + 2, rejects.reason(row)) for row in sorted(rejects.problems)[:10]]
    report.seconds = time.perf_counter() - started
    return report


def import_files(
    url: str,
    paths: list[Path],
    fmt: str,
    rules: DateRules,
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    log: Callable[[FileReport], None] = lambda report: None,
) -> list[FileReport]:
    for p in paths:
        if not Path(p).is_file():
            raise CdpError(f"{p}: no such file")
    reports = []
    for p in paths:
        report = import_file(url, Path(p), fmt, rules, keys=keys, blocklist=blocklist)
        log(report)
        reports.append(report)
    return reports


def sync_import_dir(
    url: str,
    directory: Path,
    rules: DateRules,
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    log: Callable[[str], None] = lambda msg: None,
) -> list[FileReport]:
    """Import every ``*.csv`` / ``*.csv.gz`` of the drop folder not imported before, its format
    told by its header. Files that cannot be imported are named in one error at the end, after
    the others have landed."""
    if not directory.is_dir():
        raise CdpError(f"import drop folder {directory} does not exist (CDP_IMPORT_DIR)")
    reports, problems = [], []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        if not path.name.lower().endswith((".csv", ".csv.gz")):
            continue
        try:
            frame, raw = read_csv(path)
            fmt = detect(frame)
            if fmt is None:
                raise CdpError(
                    f"{path}: neither a Shopify orders or customers export nor a generic "
                    "orders CSV (no Lineitem quantity, Accepts Email Marketing or order_id "
                    "column)"
                )
            report = import_file(
                url, path, fmt, rules, keys=keys, blocklist=blocklist, frame=frame, raw=raw
            )
        except CdpError as exc:
            problems.append(str(exc))
            continue
        log(summary_line(report))
        reports.append(report)
    if problems:
        raise CdpError(
            f"{len(problems)} file(s) in {directory} were not imported: " + " | ".join(problems)
        )
    return reports


def summary_line(r: FileReport) -> str:
    if r.skipped:
        return f"{r.path.name}: {r.notes[0]}"
    what = (
        f"{r.customers:,} customers"
        if r.format == "shopify-customers"
        else f"{r.orders:,} orders, {r.lines:,} lines, {r.refunds:,} refunds, "
        f"{r.customers:,} customers"
    )
    return f"{r.path.name}: {r.rows:,} rows read, {what} landed, {r.rejected:,} rows rejected"


def _note_dates(report: FileReport, notes: DateNotes, rules: DateRules) -> None:
    if notes.naive_columns:
        report.notes.append(
            f"times without an offset ({', '.join(sorted(notes.naive_columns))}) read in "
            f"{rules.timezone} (--timezone)"
        )
    for column, order in sorted(notes.deduced.items()):
        report.notes.append(f"{column}: dates read as {order} (a day above 12 says so)")


def _fill_customer_dates(conn, customers: pd.DataFrame, email_ids, report) -> pd.DataFrame:
    """created_at where the export has none: the customer's earliest landed order, else now."""
    missing = customers["created_at"].isna()
    if not missing.any():
        return customers
    wanted = [int(i) for i in email_ids[missing].dropna().unique()]
    first = dict(
        conn.execute(
            "select customer_id, min(created_at) from raw_shopify.orders "
            "where customer_id = any(%s) group by customer_id",
            (wanted,),
        ).fetchall()
    )
    from_orders = pd.to_datetime(
        email_ids.map(lambda i: first.get(int(i)) if pd.notna(i) else None), utc=True
    )
    now = pd.Timestamp(datetime.now(UTC).replace(microsecond=0))
    customers = customers.copy()
    filled = customers["created_at"].fillna(from_orders)
    by_orders = int((missing & filled.notna()).sum())
    customers["created_at"] = filled.fillna(now)
    customers["updated_at"] = customers["updated_at"].fillna(customers["created_at"])
    report.notes.append(
        f"no creation date in the file: {by_orders:,} customers dated by their first landed "
        f"order, {int(missing.sum()) - by_orders:,} by this import"
    )
    return customers


def _record_rejects(conn, batch_id: str, entity: str, frame: pd.DataFrame, rejects: Rejects):
    if not len(rejects):
        return
    safe = [c for c in frame.columns if str(c).strip().lower() in SAFE_COLUMNS]
    rows = sorted(rejects.problems)
    payloads = frame.loc[rows, safe].astype(object).where(frame.loc[rows, safe].notna(), None)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into ops.rejected_records (batch_id, source, entity, row_number, reason, "
            "payload) values (%s, 'shopify', %s, %s, %s, %s) on conflict do nothing",
            [
                (batch_id, entity, row + 2, rejects.reason(row), orjson.dumps(payload).decode())
                for row, payload in zip(rows, payloads.to_dict("records"), strict=True)
            ],
        )
