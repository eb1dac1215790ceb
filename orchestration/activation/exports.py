"""One export of one segment: members, entered and exited since the last successful export,
to every destination in the segment file's ``exports``.

Steps (all plain Python; ``defs.py`` only wraps this):

1. Take the segment's advisory lock (two exports of one segment never overlap), load its file,
   check every destination before anything is written (columns exist, secrets are set).
2. Read members / entered / exited since the last successful export in one query and decrypt
   the PII columns asked for with one audited call (``members.py``).
3. Mark the export running (``activation.exports``).
4. Write the files (``files.py``: atomic, manifest, LATEST last).
5. In one transaction: put the push destinations' new batches in the ledger as pending, advance
   ``activation.exported_members``, mark the export succeeded, audit it.
6. Send every outstanding batch per push destination (older failures first), audit each.

A crash before 5 changes nothing (the next export recomputes the same changes); a crash after 5
leaves pending batches the next export sends under the same ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pyarrow.compute as pc

from orchestration.activation import files
from orchestration.activation.config import ActivationConfig, config, environment
from orchestration.activation.delivery import (
    DeliveryReport,
    RetryPolicy,
    has_history,
    outstanding,
    record_batches,
    send_all,
)
from orchestration.activation.destinations import FILE_DESTINATIONS, push_destination
from orchestration.activation.ledger import advance, backlog_count, ensure_tables, last_success
from orchestration.activation.members import (
    ACTOR,
    PII_COLUMNS,
    check_exports,
    decrypt_columns,
    load_segment,
    profile_columns,
    read_changes,
)
from orchestration.errors import CdpError
from orchestration.privacy.vault import VaultKeys, load_keys
from orchestration.runtime import db
from orchestration.runtime.settings import settings
from orchestration.segments.views import SEGMENTS_DIR


@dataclass
class PushContext:
    """What a push destination may know about the export it is part of."""

    url: str
    keys: VaultKeys
    segment: str
    segment_name: str
    source: str  # the segment file, for messages
    export_id: str
    run_id: str
    env: Mapping[str, str]

    def secret(self, name: str | None) -> str | None:
        return self.env.get(name) if name else None


@dataclass
class ExportResult:
    segment: str
    export_id: str
    status: str  # exported | skipped
    reason: str = ""
    members: int = 0
    entered: int = 0
    exited: int = 0
    rule_hash: str = ""
    directory: Path | None = None
    files: list[files.FileInfo] = field(default_factory=list)
    deliveries: list[DeliveryReport] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    decrypted: int = 0
    seconds: float = 0.0

    @property
    def failed_batches(self) -> int:
        return sum(d.failed for d in self.deliveries)


def _audit(conn, action: str, slug: str, rows: int, subject: str, details: dict) -> None:
    conn.execute(
        "insert into audit.events (actor, action, subject, segment, rows, details) "
        "values (%s, %s, %s, %s, %s, %s::jsonb)",
        (ACTOR, action, subject, slug, rows, json.dumps(details, default=str)),
    )


def export_segment(
    url: str,
    slug: str,
    run_id: str,
    *,
    segments_dir: Path | None = None,
    exports_dir: Path | None = None,
    keys: VaultKeys | None = None,
    cfg: ActivationConfig | None = None,
    policy: RetryPolicy | None = None,
    env: Mapping[str, str] | None = None,
    force: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
) -> ExportResult:
    started = time.perf_counter()
    cfg = cfg or config()
    policy = policy or RetryPolicy.from_config(cfg)
    base = settings()
    keys = keys or load_keys(base.pii_key, base.keys_dir)
    exports_dir = exports_dir or base.exports_dir
    spec = load_segment(segments_dir or SEGMENTS_DIR, slug)
    export_id = files.new_export_id(run_id)
    result = ExportResult(slug, export_id, "exported")
    if not spec.exports:
        result.status, result.reason = "skipped", f"{spec.source} has no `exports`"
        return result
    # ``ledger`` holds the segment's advisory lock (session-level: commits keep it) and writes
    # the closing transaction; ``conn`` does everything else
    with db.connect(url) as ledger, db.connect(url) as conn:
        ledger.execute("select pg_advisory_lock(hashtext(%s))", (f"cdp.activation:{slug}",))
        ledger.commit()
        ensure_tables(conn)
        definition = (
            conn.execute(
                "select rule_hash from segments.definitions where slug = %s", (slug,)
            ).fetchone()
            if db.table_exists(conn, "segments.definitions")
            else None
        )
        if definition is None:
            raise CdpError(
                f"segment `{slug}` has never been refreshed; materialize segments/{slug} first"
            )
        result.rule_hash = definition[0]
        columns = check_exports(spec, profile_columns(conn))
        ctx = PushContext(
            url,
            keys,
            slug,
            spec.name,
            spec.source,
            export_id,
            run_id,
            env if env is not None else environment(),
        )
        pushes = [
            (i, e, push_destination(e.destination))
            for i, e in enumerate(spec.exports)
            if e.destination not in FILE_DESTINATIONS
        ]
        for _, export, dest in pushes:
            dest.validate(ctx, export)

        wanted = list(dict.fromkeys(c for cols in columns.values() for c in cols))
        fields = [c for c in wanted if c not in PII_COLUMNS and c != "customer_id"]
        pii = [c for c in wanted if c in PII_COLUMNS]
        table = read_changes(conn, slug, fields, pii)
        change = table["change"]
        is_entered, is_exited = pc.equal(change, "entered"), pc.equal(change, "exited")
        result.entered = pc.sum(is_entered).as_py() or 0
        result.exited = pc.sum(is_exited).as_py() or 0
        result.members = table.num_rows - result.exited
        previous = last_success(conn, slug)
        unchanged = not (result.entered or result.exited)
        if not force and previous and unchanged and not backlog_count(conn, slug):
            result.status, result.reason = "skipped", "no change since the last export"
            return result

        # the server appends the new membership (uncommitted) while this process decrypts
        # and writes files; it commits with the rest of the ledger, only after the files
        background = ThreadPoolExecutor(1, thread_name_prefix=f"cdp-advance-{slug}")
        advancing = background.submit(
            advance,
            ledger,
            slug,
            table["customer_id"].filter(is_entered),
            table["customer_id"].filter(is_exited),
        )
        try:
            table, result.decrypted = decrypt_columns(
                conn, keys, table, pii, slug=slug, export_id=export_id
            )
            conn.commit()  # the access audit stands even if the export fails below
            members = table.filter(pc.invert(is_exited))
            # everyone is new (a first export): entered is members, written from one encoding
            entered = members if result.entered == result.members else table.filter(is_entered)
            exited = table.filter(is_exited)
            conn.execute(
                "insert into activation.exports (export_id, segment, run_id, rule_hash, status) "
                "values (%s, %s, %s, %s, 'running')",
                (export_id, slug, run_id, result.rule_hash),
            )
            conn.commit()
        except BaseException:
            _abandon(background, advancing, ledger)
            raise
        try:
            file_exports = [
                (i, e) for i, e in enumerate(spec.exports) if e.destination in FILE_DESTINATIONS
            ]
            if file_exports:
                outputs = {}
                for i, export in file_exports:
                    ext, cols, selected = export.destination, columns[i], {}
                    for name, part in (
                        ("members", members),
                        ("entered", entered),
                        ("exited", exited),
                    ):
                        if id(part) not in selected:
                            selected[id(part)] = part.select(cols)
                        outputs[f"{name}.{ext}"] = (selected[id(part)], ext)
                written = files.write_export(
                    exports_dir / slug,
                    export_id,
                    outputs,
                    {
                        "segment": slug,
                        "name": spec.name,
                        "rule_hash": result.rule_hash,
                        "run_id": run_id,
                        "columns": columns[file_exports[0][0]],
                        "members": result.members,
                        "entered": result.entered,
                        "exited": result.exited,
                        "previous_export_id": previous[0] if previous else None,
                    },
                    keep=cfg.exports_keep,
                )
                result.directory, result.files = written.directory, written.files
                result.pruned = written.pruned
                log(f"segments.{slug}: wrote {len(written.files)} files to {written.directory}")

            advancing.result()
            background.shutdown()
            # the ledger transaction: batches, membership, success, audit
            for i, export, dest in pushes:
                target, cols = dest.target(export), columns[i]
                new, gone = entered.select(cols), exited.select(cols)
                if not has_history(ledger, slug, dest.name, target):
                    new, gone = members.select(cols), gone.slice(0, 0)  # all new to it
                batches = dest.plan(ctx, export, new, gone)
                record_batches(
                    ledger,
                    keys,
                    segment=slug,
                    destination=dest.name,
                    target=target,
                    batches=batches,
                )
            ledger.execute(
                "update activation.exports set status = 'succeeded', members = %s, "
                "entered = %s, exited = %s, directory = %s, finished_at = now() "
                "where export_id = %s",
                (
                    result.members,
                    result.entered,
                    result.exited,
                    str(result.directory) if result.directory else None,
                    export_id,
                ),
            )
            _audit(
                ledger,
                "segment.exported",
                slug,
                result.members,
                export_id,
                {
                    "run_id": run_id,
                    "rule_hash": result.rule_hash,
                    "entered": result.entered,
                    "exited": result.exited,
                    "directory": result.directory,
                    "files": {f.name: {"rows": f.rows, "sha256": f.sha256} for f in result.files},
                    "destinations": [e.destination for e in spec.exports],
                },
            )
            ledger.commit()
        except BaseException as exc:
            _abandon(background, advancing, ledger)
            conn.rollback()
            conn.execute(
                "update activation.exports set status = 'failed', error = %s, finished_at = now() "
                "where export_id = %s",
                (f"{type(exc).__name__}: {exc}"[:2000], export_id),
            )
            _audit(
                conn,
                "segment.export_failed",
                slug,
                0,
                export_id,
                {"run_id": run_id, "error": f"{type(exc).__name__}: {exc}"[:2000]},
            )
            conn.commit()
            raise

        if pushes:  # a client loads the CA bundle (~0.1 s): only for push destinations
            _deliver(conn, url, keys, slug, export_id, ctx, pushes, policy, result, log)
    result.seconds = time.perf_counter() - started
    return result


def _deliver(conn, url, keys, slug, export_id, ctx, pushes, policy, result, log) -> None:
    """Send every outstanding batch per push destination (older failures first), audit each."""
    limits = httpx.Limits(
        max_connections=policy.concurrency, max_keepalive_connections=policy.concurrency
    )
    with httpx.Client(timeout=policy.timeout_s, limits=limits) as client:
        for _, export, dest in pushes:
            target = dest.target(export)
            report = DeliveryReport(dest.name, target)
            batches = outstanding(conn, keys, slug, dest.name, target)
            conn.commit()
            report.backlog_resent = sum(b.export_id != export_id for b in batches)
            send_all(url, batches, dest.sender(ctx, export, client), policy=policy, report=report)
            result.deliveries.append(report)
            _audit(
                conn,
                "segment.delivered",
                slug,
                report.records_delivered,
                export_id,
                {"destination": dest.name, "target": _redact(target), **report.as_dict()},
            )
            conn.commit()
            log(
                f"segments.{slug}: {dest.name} {_redact(target)}: {report.delivered}/"
                f"{report.batches} batches delivered, {report.failed} failed, "
                f"{report.retries} retries"
            )


def _abandon(background: ThreadPoolExecutor, advancing: Future, ledger) -> None:
    """Wait for the background membership update, whatever it did, and undo it."""
    background.shutdown(wait=True)
    if not advancing.cancelled():
        advancing.exception()  # the caller's error is the one that matters
    ledger.rollback()


def _redact(target: str) -> str:
    """A URL without credentials, query or fragment (tokens live there), for audit and logs."""
    parts = urlsplit(target)
    if not parts.scheme:
        return target
    return (
        urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))
        if not parts.port
        else urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port}", parts.path, "", ""))
    )
