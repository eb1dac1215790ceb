"""The field catalog segments may use, read at runtime from ``marts.customer_profiles``, and the
one mapping from behavioural event names to ``marts.customer_timeline`` event types.

Nothing here hard-codes the profile's columns: new dbt columns become segment fields on the next
run. Types come from ``pg_attribute`` (the same facts as ``information_schema.columns`` at a
fraction of the cost, which keeps ``cdp segment test`` instant); descriptions from the column
comments dbt's ``persist_docs`` writes, else from ``target/manifest.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from orchestration.errors import CdpError
from orchestration.runtime.settings import PROJECT_ROOT

PROFILES = ("marts", "customer_profiles")
TIMELINE = ("marts", "customer_timeline")
ORDERS = ("marts", "orders")
MANIFEST = PROJECT_ROOT / "target" / "manifest.json"

# PostgreSQL type -> catalog kind; anything else (jsonb, arrays) supports is_set/is_not_set only
KINDS = {
    "smallint": "number",
    "integer": "number",
    "bigint": "number",
    "numeric": "number",
    "real": "number",
    "double precision": "number",
    "text": "text",
    "character varying": "text",
    "character": "text",
    "boolean": "boolean",
    "date": "date",
    "timestamp without time zone": "date",
    "timestamp with time zone": "date",
}
# blind indexes are pseudonymous join keys, never segment criteria
EXCLUDED_SUFFIXES = ("_hash",)
# the fields `cdp segment test` samples and views carry, when the profile has them (no PII)
SAMPLE_FIELDS = (
    "customer_id",
    "lifecycle_stage",
    "subscription_status",
    "lifetime_value",
    "orders_count",
    "days_since_last_order",
    "churn_risk_score",
)


@dataclass(frozen=True)
class EventProperty:
    kind: str  # number | text | boolean | category (a comma-separated list: equals = contains)
    column: str
    relation: str = "timeline"  # timeline | orders (joined on the order id)


@dataclass(frozen=True)
class EventSource:
    event_types: tuple[str, ...]
    sources: tuple[str, ...]
    properties: dict[str, EventProperty] = field(default_factory=dict)


_COMMON = {"amount": EventProperty("number", "amount"), "summary": EventProperty("text", "summary")}

# THE mapping from the rule language's event names to customer_timeline rows. Orders come from
# Shopify only (Klaviyo's "Placed Order" metric mirrors them and would double-count).
EVENTS: dict[str, EventSource] = {
    "order_placed": EventSource(
        ("order_placed",),
        ("shopify",),
        {
            **_COMMON,
            "product_category": EventProperty("category", "categories", "orders"),
            "discount_code": EventProperty("category", "discount_codes", "orders"),
            "is_subscription_order": EventProperty("boolean", "is_subscription_order", "orders"),
            "items_count": EventProperty("number", "items_count", "orders"),
        },
    ),
    "email_opened": EventSource(("email_opened",), ("klaviyo",), dict(_COMMON)),
    "email_clicked": EventSource(("email_clicked",), ("klaviyo",), dict(_COMMON)),
    "site_visit": EventSource(("web_session",), ("ga4",), dict(_COMMON)),
    "ticket_opened": EventSource(("ticket_opened",), ("helpdesk",), dict(_COMMON)),
    "subscription_skipped": EventSource(
        ("subscription_skipped",), ("subscriptions",), dict(_COMMON)
    ),
}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # number | text | boolean | date | other
    pg_type: str
    description: str = ""


@dataclass
class Catalog:
    fields: dict[str, Field]
    has_timeline: bool = False
    has_orders: bool = False

    def sample_fields(self) -> list[str]:
        return [f for f in SAMPLE_FIELDS if f in self.fields]

    @property
    def reference_date(self) -> str | None:
        """The profile column relative dates count from: ``as_of_date`` (the data's "today", so
        demo data ending in the past segments sensibly), else None for current_date."""
        return "as_of_date" if "as_of_date" in self.fields else None


_COLUMNS_SQL = """
select a.attname, format_type(a.atttypid, null), col_description(a.attrelid, a.attnum)
from pg_attribute a
where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""


def load_catalog(
    conn: psycopg.Connection, *, manifest: Path | None = MANIFEST, descriptions: bool = True
) -> Catalog:
    """The typed catalog of ``marts.customer_profiles``; CdpError when it is not built yet."""
    rows = conn.execute(_COLUMNS_SQL, (".".join(PROFILES),)).fetchall()
    if not rows:
        raise CdpError(
            "marts.customer_profiles does not exist yet in the warehouse: build it first "
            "(`cdp demo`, or `dbt build` then rerun)"
        )
    docs = _manifest_descriptions(manifest) if descriptions and manifest else {}
    fields = {}
    for name, pg_type, comment in rows:
        if name.endswith(EXCLUDED_SUFFIXES):
            continue
        kind = KINDS.get(pg_type.split("(")[0], "other")
        desc = (comment or docs.get(name, "")).strip() if descriptions else ""
        fields[name] = Field(name, kind, pg_type, " ".join(desc.split()))
    present = conn.execute(
        "select to_regclass(%s) is not null, to_regclass(%s) is not null",
        (".".join(TIMELINE), ".".join(ORDERS)),
    ).fetchone()
    return Catalog(fields, has_timeline=present[0], has_orders=present[1])


def _manifest_descriptions(path: Path) -> dict[str, str]:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    for key, node in manifest.get("nodes", {}).items():
        if key.startswith("model.") and key.endswith(".customer_profiles"):
            return {c: v.get("description") or "" for c, v in node.get("columns", {}).items()}
    return {}


def operators_for(kind: str) -> tuple[str, ...]:
    from orchestration.segments import spec

    by_kind = {
        "number": spec.NUMBER_OPERATORS,
        "text": spec.TEXT_OPERATORS,
        "boolean": spec.BOOLEAN_OPERATORS,
        "date": spec.DATE_OPERATORS,
    }
    return by_kind.get(kind, ()) + spec.ANY_OPERATORS
