"""Rules -> SQL, composed with psycopg's ``sql`` module: identifiers only from the catalog (or the
event mapping), every value a typed ``sql.Literal`` quoted by the driver. Nothing a user writes is
ever pasted into SQL text.

Semantics worth knowing:
- ``not_equals`` / ``not_in`` include customers whose field is not set, so a condition and its
  negation always partition the base.
- ``contains`` / ``starts_with`` ignore case; ``equals`` / ``in`` do not.
- Relative dates (``within_last_days``, ``more_than_days_ago``, an event's ``within_last_days``)
  count back from the profile's ``as_of_date`` (the data's "today"), or ``current_date``.
- ``in_segment`` inlines the other segment's rules (no dependency between views; refresh order
  never matters); cycles are reported.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from psycopg import sql

from orchestration.segments.catalog import EVENTS, ORDERS, PROFILES, TIMELINE, Catalog
from orchestration.segments.catalog import operators_for as _operators_for
from orchestration.segments.exports import PII_EXPORT_COLUMNS
from orchestration.segments.spec import (
    EventCondition,
    FieldCondition,
    Group,
    Node,
    RuleError,
    SegmentCondition,
    SegmentError,
    SegmentSpec,
    slugify,
    suggest,
)

COMPARISONS = {
    "greater_than": ">",
    "greater_than_or_equal": ">=",
    "less_than": "<",
    "less_than_or_equal": "<=",
    "equals": "=",
}
CATEGORY_OPERATORS = ("equals", "not_equals", "in", "not_in", "contains")


@dataclass
class Compiled:
    spec: SegmentSpec
    where: sql.Composable  # predicate over alias ``p`` of marts.customer_profiles
    query: sql.Composed  # select <columns> from marts.customer_profiles p where ...
    columns: list[str]
    rule_hash: str
    references: list[str]  # segments inlined through in_segment / not_in_segment

    def as_string(self, conn) -> str:
        return self.query.as_string(conn)


class _Compiler:
    def __init__(
        self, catalog: Catalog, registry: dict[str, SegmentSpec], reference: date | None = None
    ):
        self.catalog = catalog
        self.reference = reference
        self.registry = registry
        self.errors: list[RuleError] = []
        self.references: dict[str, str] = {}  # slug -> own hash, for the rule hash
        self.depth = 0

    def err(self, path: str, message: str) -> sql.Composable:
        self.errors.append(RuleError(path, message))
        return sql.SQL("false")

    # --------------------------------------------------------------------------------- nodes

    def node(self, node: Node, alias: str, stack: tuple[str, ...]) -> sql.Composable:
        if isinstance(node, Group):
            parts = [self.node(c, alias, stack) for c in node.conditions]
            joiner = sql.SQL(" and " if node.logic == "AND" else " or ")
            return sql.SQL("({})").format(joiner.join(parts))
        if isinstance(node, FieldCondition):
            return self.field(node, alias)
        if isinstance(node, SegmentCondition):
            return self.segment(node, alias, stack)
        return self.event(node, alias)

    def field(self, node: FieldCondition, alias: str) -> sql.Composable:
        fld = self.catalog.fields.get(node.field)
        if fld is None:
            hint = suggest(node.field, self.catalog.fields) or " (see `cdp segment fields`)"
            return self.err(f"{node.path}.field", f"unknown field `{node.field}`{hint}")
        allowed = _operators_for(fld.kind)
        if node.operator not in allowed:
            return self.err(
                f"{node.path}.operator",
                f"operator `{node.operator}` does not apply to {fld.kind} field `{fld.name}` "
                f"(use {', '.join(allowed)})",
            )
        column = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(fld.name))
        return self.predicate(column, fld.kind, node.operator, node.value, f"{node.path}.value")

    def segment(self, node: SegmentCondition, alias: str, stack: tuple[str, ...]) -> sql.Composable:
        slug = node.segment if node.segment in self.registry else slugify(node.segment)
        other = self.registry.get(slug)
        if other is None:
            hint = suggest(node.segment, self.registry) or (
                f" (segments: {', '.join(sorted(self.registry)) or 'none'})"
            )
            return self.err(f"{node.path}.value", f"unknown segment `{node.segment}`{hint}")
        if slug in stack:
            cycle = " → ".join((*stack[stack.index(slug) :], slug))
            return self.err(f"{node.path}.value", f"segment composition cycle: {cycle}")
        self.references[slug] = other.own_hash
        self.depth += 1
        inner = f"p{self.depth}"
        before = len(self.errors)
        where = self.node(other.rules, inner, (*stack, slug))
        if len(self.errors) > before:
            nested = self.errors[before:]
            del self.errors[before:]
            detail = "; ".join(str(e) for e in nested)
            return self.err(f"{node.path}.value", f"segment `{slug}` ({other.source}): {detail}")
        subquery = sql.SQL("(select {a}.customer_id from {t} as {a} where {w})").format(
            a=sql.Identifier(inner), t=sql.Identifier(*PROFILES), w=where
        )
        keyword = "in" if node.operator == "in_segment" else "not in"
        return sql.SQL("{}.customer_id {} {}").format(
            sql.Identifier(alias), sql.SQL(keyword), subquery
        )

    def event(self, node: EventCondition, alias: str) -> sql.Composable:
        if not self.catalog.has_timeline:
            return self.err(node.path, "behavioural conditions need marts.customer_timeline")
        source = EVENTS[node.event]
        t = sql.Identifier("t")
        filters = [
            sql.SQL("{}.event_type in ({})").format(
                t, sql.SQL(", ").join(map(sql.Literal, source.event_types))
            ),
            sql.SQL("{}.source in ({})").format(
                t, sql.SQL(", ").join(map(sql.Literal, source.sources))
            ),
        ]
        if node.within_last_days:
            occurred = sql.SQL("{}.occurred_at").format(t)
            filters.append(self.relative(occurred, "within_last_days", node.within_last_days))
        order_filters = []
        for name, value in node.where.items():
            prop = source.properties[name]
            table = "o" if prop.relation == "orders" else "t"
            column = sql.SQL("{}.{}").format(sql.Identifier(table), sql.Identifier(prop.column))
            op, val = _property_operator(prop.kind, value)
            path = f"{node.path}.where.{name}"
            allowed = CATEGORY_OPERATORS if prop.kind == "category" else _operators_for(prop.kind)
            if prop.kind == "boolean" and op == "equals":
                self.err(path, f"value `{val}` is not true or false")
                continue
            if op not in allowed:
                self.err(path, f"operator `{op}` does not apply to {prop.kind} property `{name}`")
                continue
            pred = self.predicate(column, prop.kind, op, val, path)
            (order_filters if table == "o" else filters).append(pred)
        if order_filters:
            if not self.catalog.has_orders:
                return self.err(f"{node.path}.where", "order properties need marts.orders")
            filters.append(
                # uncorrelated, so the planner can hash the matching orders once
                sql.SQL(
                    "t.source_event_id in (select o.order_id::text from {orders} as o where {f})"
                ).format(orders=sql.Identifier(*ORDERS), f=sql.SQL(" and ").join(order_filters))
            )
        count = self.count(node.count_operator, node.count_value)
        zero_matches = _count_matches_zero(node.count_operator, node.count_value)
        having = sql.SQL("not ({})").format(count) if zero_matches else count
        subquery = sql.SQL(
            "(select t.customer_id from {timeline} as t where {f}"
            " group by t.customer_id having {h})"
        ).format(timeline=sql.Identifier(*TIMELINE), f=sql.SQL(" and ").join(filters), h=having)
        # a count that zero satisfies ("fewer than 2 orders") must include customers with no
        # events at all: members are everyone except those whose count fails it
        keyword = "not in" if zero_matches else "in"
        return sql.SQL("{}.customer_id {} {}").format(
            sql.Identifier(alias), sql.SQL(keyword), subquery
        )

    def count(self, op: str, value: Any) -> sql.Composable:
        if op == "between":
            return sql.SQL("count(*) between {} and {}").format(
                sql.Literal(value[0]), sql.Literal(value[1])
            )
        return sql.SQL("count(*) {} {}").format(sql.SQL(COMPARISONS[op]), sql.Literal(value))

    # ---------------------------------------------------------------------------- predicates

    def reference_date(self) -> sql.Composable:
        if self.reference is not None:  # ad-hoc tests: a literal gives the planner estimates
            return sql.Literal(self.reference)
        ref = self.catalog.reference_date
        if ref is None:
            return sql.SQL("current_date")
        # an InitPlan: evaluated once per query, keeps event subqueries uncorrelated
        return sql.SQL("(select max({})::date from {})").format(
            sql.Identifier(ref), sql.Identifier(*PROFILES)
        )

    def relative(self, column: sql.Composable, op: str, days: int) -> sql.Composable:
        ref = self.reference_date()
        if op == "within_last_days":
            return sql.SQL("({c} >= {r} - {n} and {c} < {r} + 1)").format(
                c=column, r=ref, n=sql.Literal(days)
            )
        return sql.SQL("{} < {} - {}").format(column, ref, sql.Literal(days))

    def predicate(
        self, column: sql.Composable, kind: str, op: str, value: Any, path: str
    ) -> sql.Composable:
        if op == "is_set":
            return sql.SQL("{} is not null").format(column)
        if op == "is_not_set":
            return sql.SQL("{} is null").format(column)
        if op == "is_true":
            return sql.SQL("{} is true").format(column)
        if op == "is_false":
            return sql.SQL("{} is false").format(column)
        if op in ("within_last_days", "more_than_days_ago"):
            if not _whole(value) or value <= 0:
                return self.err(path, f"`{value}` is not a whole number of days > 0")
            return self.relative(column, op, value)
        if op in ("before", "after"):
            day = _as_date(value)
            if day is None:
                return self.err(path, f"value `{value}` is not a date (use YYYY-MM-DD)")
            if op == "before":
                return sql.SQL("{} < {}").format(column, sql.Literal(day))
            return sql.SQL("{} >= {} + 1").format(column, sql.Literal(day))
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                return self.err(path, f"`{op}` needs a non-empty list of values, e.g. [a, b]")
            items = [self.scalar(kind, v, path) for v in value]
            if any(i is None for i in items):
                return sql.SQL("false")
            if kind == "category":
                return self.category_any(column, items, negate=op == "not_in")
            listed = sql.SQL(", ").join(map(sql.Literal, items))
            if op == "in":
                return sql.SQL("{} in ({})").format(column, listed)
            return sql.SQL("({c} is null or {c} not in ({l}))").format(c=column, l=listed)
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                return self.err(path, "`between` needs a [low, high] pair, e.g. [100, 500]")
            low, high = (self.scalar(kind, v, path) for v in value)
            if low is None or high is None:
                return sql.SQL("false")
            if low > high:
                return self.err(path, f"`between` low {low} is greater than high {high}")
            return sql.SQL("{} between {} and {}").format(
                column, sql.Literal(low), sql.Literal(high)
            )
        item = self.scalar(kind, value, path)
        if item is None:
            return sql.SQL("false")
        lit = sql.Literal(item)
        if kind == "category" and op in ("equals", "not_equals"):
            return self.category_any(column, [item], negate=op == "not_equals")
        if op == "contains":
            return sql.SQL("strpos(lower({}), lower({})) > 0").format(column, lit)
        if op == "starts_with":
            return sql.SQL("starts_with(lower({}), lower({}))").format(column, lit)
        if op == "not_equals":
            return sql.SQL("{} is distinct from {}").format(column, lit)
        return sql.SQL("{} {} {}").format(column, sql.SQL(COMPARISONS[op]), lit)

    def category_any(self, column: sql.Composable, items: list, *, negate: bool) -> sql.Composable:
        # a comma-separated list column ("cleanser, serum"): does it name any of the items?
        listed = sql.SQL(", ").join(sql.SQL("lower({})").format(sql.Literal(i)) for i in items)
        test = sql.SQL("regexp_split_to_array(lower({}), {}) && array[{}]").format(
            column, sql.Literal(r"\s*,\s*"), listed
        )
        if negate:
            return sql.SQL("({c} is null or not ({t}))").format(c=column, t=test)
        return sql.SQL("coalesce({}, false)").format(test)

    def scalar(self, kind: str, value: Any, path: str) -> Any:
        if kind == "number":
            number = _as_number(value)
            if number is None:
                self.err(path, f"value `{value}` is not a number")
            return number
        if kind in ("text", "category"):
            if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
                self.err(path, f"value `{value}` is not text")
                return None
            if "\x00" in str(value):
                self.err(path, "text values cannot contain NUL characters")
                return None
            return str(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                self.err(path, f"value `{value}` is not true or false")
                return None
            return value
        if kind == "date":
            day = _as_date(value)
            if day is None:
                self.err(path, f"value `{value}` is not a date (use YYYY-MM-DD)")
            return day
        self.err(path, f"fields of type {kind} support only is_set and is_not_set")
        return None


def _property_operator(kind: str, value: Any) -> tuple[str, Any]:
    """`where` values: a scalar (equals), a list (in) or one {operator: value}."""
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value.items()))
    if isinstance(value, list):
        return "in", value
    if kind == "boolean" and isinstance(value, bool):
        return ("is_true" if value else "is_false"), None
    return "equals", value


def _count_matches_zero(op: str, value: Any) -> bool:
    if op == "between":
        return value[0] <= 0
    return {
        "equals": value == 0,
        "greater_than": False,
        "greater_than_or_equal": value <= 0,
        "less_than": value > 0,
        "less_than_or_equal": value >= 0,
    }[op]


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_number(value: Any) -> int | Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10]) if len(value.strip()) == 10 else None
        except ValueError:
            return None
    return None


# ------------------------------------------------------------------------------ entry points


def view_columns(catalog: Catalog) -> list[str]:
    return catalog.sample_fields() or ["customer_id"]


def compile_segment(
    spec: SegmentSpec,
    catalog: Catalog,
    registry: dict[str, SegmentSpec] | None = None,
    *,
    reference: date | None = None,
) -> Compiled:
    """Compile (and type-check) a segment; SegmentError lists every problem with its path.

    ``reference`` fixes "today" for relative dates as a literal (one-off queries); views leave
    it None so the date is read from the profiles at every refresh."""
    registry = dict(registry or {})
    registry.setdefault(spec.slug, spec)
    c = _Compiler(catalog, registry, reference)
    where = c.node(spec.rules, "p", (spec.slug,))
    c.errors.extend(check_exports(spec, catalog))
    if c.errors:
        raise SegmentError(spec.source, c.errors)
    columns = view_columns(catalog)
    query = sql.SQL("select {cols} from {profiles} as p where {where}").format(
        cols=sql.SQL(", ").join(sql.SQL("p.{}").format(sql.Identifier(x)) for x in columns),
        profiles=sql.Identifier(*PROFILES),
        where=where,
    )
    parts = [spec.own_hash, *(f"{s}:{h}" for s, h in sorted(c.references.items()))]
    rule_hash = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return Compiled(spec, where, query, columns, rule_hash, sorted(c.references))


def check_exports(spec: SegmentSpec, catalog: Catalog) -> list[RuleError]:
    """Export columns must be catalog fields or the vault's PII fields."""
    allowed = [*catalog.fields, *PII_EXPORT_COLUMNS]
    errors = []
    for i, export in enumerate(spec.exports):
        for j, column in enumerate(export.columns or ()):
            if column not in allowed:
                hint = suggest(column, allowed) or " (see `cdp segment fields`)"
                errors.append(
                    RuleError(f"exports[{i}].columns[{j}]", f"unknown column `{column}`{hint}")
                )
    return errors
