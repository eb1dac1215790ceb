"""``cdp segment test``: what a segment would contain, without creating anything.

One aggregate query and one sample query over ``marts.customer_profiles`` in a read-only
transaction that is rolled back: no view, no registry row, no membership change.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from orchestration.segments.catalog import PROFILES, Catalog
from orchestration.segments.compiler import compile_segment
from orchestration.segments.spec import (
    EventCondition,
    FieldCondition,
    SegmentCondition,
    SegmentError,
    SegmentSpec,
    walk,
)

RELATIVE_OPERATORS = ("within_last_days", "more_than_days_ago")

SAMPLE_SIZE = 10


@dataclass
class SegmentTestResult:
    segment: str | None
    count: int | None = None
    base: int | None = None
    share: float | None = None
    ltv_total: float | None = None
    ltv_avg: float | None = None
    churn_risk_score_avg: float | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    sql: str | None = None
    rule_hash: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    milliseconds: float | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def errors_of(exc: SegmentError) -> list[dict[str, str]]:
    return [{"source": exc.source, "path": e.path, "message": e.message} for e in exc.errors]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _agg(column: str, func: str, catalog: Catalog) -> sql.Composable:
    if column not in catalog.fields:
        return sql.SQL("null")
    return sql.SQL("{}(m.{})").format(sql.SQL(func), sql.Identifier(column))


def _relative(spec: SegmentSpec) -> bool:
    """Does the rule count days back from "today" (or compose another segment that may)?"""
    return any(
        isinstance(n, EventCondition | SegmentCondition)
        or (isinstance(n, FieldCondition) and n.operator in RELATIVE_OPERATORS)
        for n in walk(spec.rules)
    )


def evaluate_segment(
    conn: psycopg.Connection,
    spec: SegmentSpec,
    catalog: Catalog,
    registry: dict[str, SegmentSpec] | None = None,
) -> SegmentTestResult:
    """Count, share, LTV and churn figures, a sample and the SQL; errors instead when invalid."""
    started = time.perf_counter()
    result = SegmentTestResult(segment=spec.slug)
    reference = None
    if catalog.reference_date and _relative(spec):
        reference = conn.execute(
            sql.SQL("select max({})::date from {}").format(
                sql.Identifier(catalog.reference_date), sql.Identifier(*PROFILES)
            )
        ).fetchone()[0]
    try:
        compiled = compile_segment(spec, catalog, registry, reference=reference)
    except SegmentError as exc:
        result.errors = errors_of(exc)
        return result
    result.sql = compiled.as_string(conn)
    result.rule_hash = compiled.rule_hash
    profiles = sql.Identifier(*PROFILES)
    sample_cols = catalog.sample_fields() or ["customer_id"]
    wanted = list(dict.fromkeys([*sample_cols, "lifetime_value", "churn_risk_score"]))
    columns = [c for c in wanted if c in catalog.fields]
    # one statement, the members computed once (behavioural rules scan the timeline)
    query = sql.SQL(
        "with m as materialized (select {cols} from {t} as p where {w}) "
        "select count(*), {ltv_sum}, {ltv_avg}, {churn_avg}, (select count(*) from {t}), "
        "(select coalesce(json_agg(s order by s.customer_id), '[]') "
        "from (select {sample} from m order by m.customer_id limit {n}) as s) from m"
    ).format(
        cols=sql.SQL(", ").join(sql.SQL("p.{}").format(sql.Identifier(c)) for c in columns),
        t=profiles,
        w=compiled.where,
        ltv_sum=_agg("lifetime_value", "sum", catalog),
        ltv_avg=_agg("lifetime_value", "avg", catalog),
        churn_avg=_agg("churn_risk_score", "avg", catalog),
        sample=sql.SQL(", ").join(sql.SQL("m.{}").format(sql.Identifier(c)) for c in sample_cols),
        n=sql.Literal(SAMPLE_SIZE),
    )
    idle = conn.info.transaction_status == TransactionStatus.IDLE
    with conn.transaction(force_rollback=True):
        if idle:
            conn.execute("set transaction read only")
        count, ltv_total, ltv_avg, churn_avg, base, sample = conn.execute(query).fetchone()
    result.count, result.base = count, base
    result.share = round(count / base, 4) if base else 0.0
    result.ltv_total = _plain(ltv_total)
    result.ltv_avg = round(float(ltv_avg), 2) if ltv_avg is not None else None
    result.churn_risk_score_avg = round(float(churn_avg), 1) if churn_avg is not None else None
    result.sample = sample
    result.milliseconds = round((time.perf_counter() - started) * 1000, 1)
    return result
