"""Segment materialized views: ``segments.<slug>`` (customer_id plus a few non-PII columns) with a
unique index on customer_id, refreshed CONCURRENTLY once built, rebuilt when the rules change.

``segments.definitions`` records each view's rule hash and SQL; a different hash (or SQL, when
the compiler or catalog changed) rebuilds the view. dbt replaces ``marts.customer_profiles`` on
every build and drops dependent views with it, so a missing view is simply built again; the
membership snapshot lives in its own table and the diff stays exact across that.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from orchestration.errors import CdpError
from orchestration.runtime.settings import PROJECT_ROOT
from orchestration.segments.catalog import Catalog, load_catalog
from orchestration.segments.compiler import Compiled, compile_segment
from orchestration.segments.membership import base_count, ensure_tables, record_changes
from orchestration.segments.spec import SegmentError, SegmentSpec, load_directory

SEGMENTS_DIR = PROJECT_ROOT / "segments"
SAMPLE_SIZE = 10


@dataclass
class RefreshResult:
    slug: str
    name: str
    rule_hash: str
    members: int
    previous_members: int
    base: int
    entered: int
    exited: int
    ltv_total: float | None
    rebuilt: bool
    seconds: float
    sql: str
    run_id: str
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.members / self.base if self.base else 0.0


def new_run_id(prefix: str = "cli") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _view_kind(conn: psycopg.Connection, slug: str) -> str | None:
    row = conn.execute(
        "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'segments' and c.relname = %s",
        (slug,),
    ).fetchone()
    return row[0] if row else None


def build_view(conn: psycopg.Connection, compiled: Compiled) -> bool:
    """Create, rebuild or refresh ``segments.<slug>``; True when (re)built from scratch."""
    spec = compiled.spec
    view = sql.Identifier("segments", spec.slug)
    text = compiled.as_string(conn)
    kind = _view_kind(conn, spec.slug)
    if kind not in (None, "m"):
        raise CdpError(
            f"segments.{spec.slug} exists and is not a segment view; drop it or give segment "
            f"{spec.source} another slug"
        )
    stored = conn.execute(
        "select rule_hash, sql from segments.definitions where slug = %s", (spec.slug,)
    ).fetchone()
    if kind == "m" and stored == (compiled.rule_hash, text):
        conn.execute(sql.SQL("refresh materialized view concurrently {}").format(view))
        return False
    conn.execute(sql.SQL("drop materialized view if exists {}").format(view))
    conn.execute(sql.SQL("create materialized view {} as {}").format(view, compiled.query))
    conn.execute(
        sql.SQL("create unique index {} on {} (customer_id)").format(
            sql.Identifier(f"{spec.slug[:50]}_customer_id"), view
        )
    )
    comment = f"Segment {spec.name} ({spec.source}), rule hash {compiled.rule_hash}. "
    conn.execute(
        sql.SQL("comment on materialized view {} is {}").format(
            view, sql.Literal(comment + spec.description)
        )
    )
    return True


_REGISTER = """
insert into segments.definitions as d
    (slug, name, description, owner, file, rule_hash, sql, columns, last_refreshed_at,
     last_run_id, members)
values (%(slug)s, %(name)s, %(description)s, %(owner)s, %(file)s, %(hash)s, %(sql)s,
        %(columns)s, now(), %(run_id)s, %(members)s)
on conflict (slug) do update set
    name = excluded.name, description = excluded.description, owner = excluded.owner,
    file = excluded.file, columns = excluded.columns, last_refreshed_at = now(),
    last_run_id = excluded.last_run_id, members = excluded.members,
    updated_at = case when d.rule_hash is distinct from excluded.rule_hash
        or d.sql is distinct from excluded.sql then now() else d.updated_at end,
    rule_hash = excluded.rule_hash, sql = excluded.sql
"""


def refresh_segment(conn: psycopg.Connection, compiled: Compiled, run_id: str) -> RefreshResult:
    """Build or refresh one view and record its membership changes, in one transaction."""
    spec = compiled.spec
    started = time.perf_counter()
    ensure_tables(conn)
    with conn.transaction():
        # one refresher per segment at a time; others wait rather than double-record changes
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"cdp.segment:{spec.slug}",))
        rebuilt = build_view(conn, compiled)
        diff = record_changes(conn, spec.slug, run_id)
        text = compiled.as_string(conn)
        conn.execute(
            _REGISTER,
            {
                "slug": spec.slug,
                "name": spec.name,
                "description": spec.description,
                "owner": spec.owner,
                "file": spec.source,
                "hash": compiled.rule_hash,
                "sql": text,
                "columns": compiled.columns,
                "run_id": run_id,
                "members": diff.members,
            },
        )
        conn.execute(
            "insert into segments.refreshes (segment, run_id, rule_hash, members, entered, "
            "exited, rebuilt) values (%s, %s, %s, %s, %s, %s, %s)",
            (
                spec.slug,
                run_id,
                compiled.rule_hash,
                diff.members,
                diff.entered,
                diff.exited,
                rebuilt,
            ),
        )
        base = base_count(conn)
        view = sql.Identifier("segments", spec.slug)
        ltv = None
        if "lifetime_value" in compiled.columns:
            ltv = conn.execute(
                sql.SQL("select sum(lifetime_value) from {}").format(view)
            ).fetchone()[0]
        cur = conn.execute(
            sql.SQL("select * from {} order by customer_id limit {}").format(
                view, sql.Literal(SAMPLE_SIZE)
            )
        )
        names = [d.name for d in cur.description]
        sample = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return RefreshResult(
        slug=spec.slug,
        name=spec.name,
        rule_hash=compiled.rule_hash,
        members=diff.members,
        previous_members=diff.previous_members,
        base=base,
        entered=diff.entered,
        exited=diff.exited,
        ltv_total=float(ltv) if ltv is not None else None,
        rebuilt=rebuilt,
        seconds=time.perf_counter() - started,
        sql=text,
        run_id=run_id,
        sample=sample,
    )


def refresh_spec(
    conn: psycopg.Connection,
    spec: SegmentSpec,
    run_id: str,
    *,
    registry: dict[str, SegmentSpec] | None = None,
    catalog: Catalog | None = None,
) -> RefreshResult:
    catalog = catalog or load_catalog(conn, descriptions=False)
    return refresh_segment(conn, compile_segment(spec, catalog, registry), run_id)


def skipped_segments(conn: psycopg.Connection, specs: dict[str, SegmentSpec]) -> dict[str, str]:
    """{slug: note} of the segments that do not apply to this shop's kind (``applies_to``)."""
    from orchestration.warehouse.shop import shop_profile

    kind = shop_profile(conn).kind
    return {slug: note for slug, spec in specs.items() if (note := spec.skip_note(kind))}


def refresh_all(
    conn: psycopg.Connection,
    directory: Path = SEGMENTS_DIR,
    run_id: str | None = None,
    only: list[str] | None = None,
) -> tuple[list[RefreshResult], list[SegmentError]]:
    """Refresh every valid segment in ``directory`` (or the slugs in ``only``) that applies to
    the shop's kind (``skipped_segments`` lists the others); a bad file is reported and
    skipped, never stops the others."""
    run_id = run_id or new_run_id()
    specs, errors = load_directory(directory)
    if only:
        unknown = [s for s in only if s not in specs]
        if unknown:
            raise CdpError(
                f"no segment {', '.join(unknown)} in {directory} "
                f"(segments: {', '.join(sorted(specs)) or 'none'})"
            )
    catalog = load_catalog(conn, descriptions=False)
    skipped = skipped_segments(conn, specs)
    results = []
    for slug, spec in specs.items():
        if (only and slug not in only) or slug in skipped:
            continue
        try:
            results.append(refresh_spec(conn, spec, run_id, registry=specs, catalog=catalog))
        except SegmentError as exc:
            errors.append(exc)
    return results, errors


def list_segments(conn: psycopg.Connection, directory: Path = SEGMENTS_DIR) -> list[dict[str, Any]]:
    """Every segment file and every registered view: size, last refresh, rule hash."""
    specs, errors = load_directory(directory)
    ensure_tables(conn)
    rows = conn.execute(
        "select slug, name, file, rule_hash, members, last_refreshed_at, "
        "to_regclass('segments.' || quote_ident(slug)) is not null from segments.definitions"
    ).fetchall()
    registered = {r[0]: r for r in rows}
    try:
        catalog = load_catalog(conn, descriptions=False)
    except CdpError:
        catalog = None  # profiles not built yet: structure checked only
    skipped = skipped_segments(conn, specs)
    out = []
    for slug in sorted(set(specs) | set(registered)):
        spec, reg = specs.get(slug), registered.get(slug)
        problems: list[str] = []
        if spec and catalog:
            try:
                compile_segment(spec, catalog, specs)
            except SegmentError as exc:
                problems = [str(e) for e in exc.errors]
        out.append(
            {
                "slug": slug,
                "name": spec.name if spec else reg[1],
                "file": spec.source if spec else (reg[2] if reg else None),
                "owner": spec.owner if spec else None,
                "members": reg[4] if reg else None,
                "last_refreshed_at": reg[5].isoformat() if reg and reg[5] else None,
                "rule_hash": reg[3] if reg else None,
                "view_exists": bool(reg and reg[6]),
                "applies_to": spec.applies_to if spec else None,
                "status": ("invalid" if problems else "skipped" if slug in skipped else "ok")
                if spec
                else "file removed",
                **({"errors": problems} if problems else {}),
                **({"note": skipped[slug]} if slug in skipped else {}),
            }
        )
    for exc in errors:
        out.append(
            {
                "slug": None,
                "name": None,
                "file": exc.source,
                "status": "invalid",
                "errors": [str(e) for e in exc.errors],
            }
        )
    return out
