"""The raw landing contract: every ``raw_<source>.<entity>`` table, its columns and types.

Column names follow the real sources (Shopify Admin API, Recharge, Klaviyo JSON:API, the GA4
BigQuery export, Gorgias/Zendesk) so a data engineer recognises them and live connectors land
in the same tables as the demo generator.

A producer (the demo generator or a connector) hands the loader a pandas DataFrame per entity
with the columns below **plus plaintext PII columns** named in ``pii``. The loader encrypts each
PII value into the ``pii.vault`` and replaces it with a keyed blind index column (``<field>_hash``)
before anything touches a raw table. Plaintext PII never lands in ``raw_*``.

Every raw table also carries ``_batch_id`` and ``_loaded_at`` (added by the loader). Nested
payloads (GA4 ``event_params``, Klaviyo ``properties``) are ``json``: validated on load and kept
verbatim as received (cheaper to land than ``jsonb``; staging extracts what it needs).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PiiField:
    """A plaintext input column that the loader encrypts and replaces with a blind index."""

    column: str  # plaintext column in the producer's DataFrame, e.g. "email"
    pii_type: str  # vault type and normalization rule: email | phone | name | address
    hash_column: str  # blind index column in the raw table, e.g. "email_hash"


@dataclass(frozen=True)
class RawTable:
    source: str  # shopify | subscriptions | klaviyo | ga4 | helpdesk
    entity: str  # customers | orders | ...
    columns: tuple[tuple[str, str], ...]  # (name, postgres type), non-PII columns
    record_id: tuple[str, ...]  # columns identifying one record (latest version wins)
    required: tuple[str, ...] = ()  # non-null columns; a row missing one is rejected
    updated_at: str | None = None  # column that orders versions of one record
    pii: tuple[PiiField, ...] = field(default_factory=tuple)

    @property
    def schema(self) -> str:
        return f"raw_{self.source}"

    @property
    def qualified(self) -> str:
        return f"raw_{self.source}.{self.entity}"

    @property
    def landed_columns(self) -> list[tuple[str, str]]:
        """Columns as they exist in the raw table (PII replaced by hash columns)."""
        cols = list(self.columns)
        cols += [(p.hash_column, "text") for p in self.pii]
        cols += [
            # filled by column defaults inside the loader's transaction (see runtime/schema.py)
            ("_batch_id", "text not null default current_setting('cdp.batch_id')"),
            ("_loaded_at", "timestamptz not null default now()"),
        ]
        return cols

    @property
    def input_columns(self) -> list[str]:
        """Columns a producer's DataFrame must have (plaintext PII included)."""
        return [c for c, _ in self.columns] + [p.column for p in self.pii]


EMAIL = PiiField("email", "email", "email_hash")
PHONE = PiiField("phone", "phone", "phone_hash")
FIRST = PiiField("first_name", "name", "first_name_hash")
LAST = PiiField("last_name", "name", "last_name_hash")
ADDRESS = PiiField("address1", "address", "address1_hash")

TABLES: tuple[RawTable, ...] = (
    # ---------------------------------------------------------------- Shopify Admin API
    RawTable(
        "shopify",
        "customers",
        columns=(
            ("id", "bigint"),
            ("state", "text"),  # enabled | disabled | invited | declined
            ("verified_email", "boolean"),
            ("email_marketing_consent", "text"),  # subscribed | not_subscribed | unsubscribed
            ("tags", "text"),
            ("city", "text"),
            ("province_code", "text"),
            ("country_code", "text"),
            ("zip", "text"),
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
        ),
        record_id=("id",),
        required=("id", "created_at", "updated_at"),
        updated_at="updated_at",
        pii=(EMAIL, PHONE, FIRST, LAST, ADDRESS),
    ),
    RawTable(
        "shopify",
        "orders",
        columns=(
            ("id", "bigint"),
            ("name", "text"),  # "#1001"
            ("customer_id", "bigint"),
            ("financial_status", "text"),  # paid | partially_refunded | refunded | pending | voided
            ("fulfillment_status", "text"),  # fulfilled | partial | null
            ("currency", "text"),
            ("subtotal_price", "numeric(12,2)"),
            ("total_discounts", "numeric(12,2)"),
            ("total_shipping_price", "numeric(12,2)"),
            ("total_tax", "numeric(12,2)"),
            ("total_price", "numeric(12,2)"),
            ("discount_codes", "text"),  # comma-separated codes
            ("source_name", "text"),  # web | pos | subscription_contract
            ("landing_site", "text"),
            ("referring_site", "text"),
            ("tags", "text"),
            ("test", "boolean"),
            ("shipping_city", "text"),
            ("shipping_province_code", "text"),
            ("shipping_country_code", "text"),
            ("created_at", "timestamptz"),
            ("processed_at", "timestamptz"),
            ("cancelled_at", "timestamptz"),
            ("updated_at", "timestamptz"),
        ),
        record_id=("id",),
        required=("id", "created_at", "updated_at", "total_price"),
        updated_at="updated_at",
        pii=(EMAIL, PHONE),
    ),
    RawTable(
        "shopify",
        "order_lines",
        columns=(
            ("id", "bigint"),
            ("order_id", "bigint"),
            ("product_id", "bigint"),
            ("variant_id", "bigint"),
            ("sku", "text"),
            ("title", "text"),
            ("quantity", "integer"),
            ("price", "numeric(12,2)"),
            ("total_discount", "numeric(12,2)"),
            ("updated_at", "timestamptz"),  # the parent order's updated_at
        ),
        record_id=("id",),
        required=("id", "order_id", "quantity", "price"),
        updated_at="updated_at",
    ),
    RawTable(
        "shopify",
        "refunds",
        columns=(
            ("id", "bigint"),
            ("order_id", "bigint"),
            ("amount", "numeric(12,2)"),  # sum of the refund's transactions
            ("note", "text"),
            ("restock", "boolean"),
            ("created_at", "timestamptz"),
            ("processed_at", "timestamptz"),
        ),
        record_id=("id",),
        required=("id", "order_id", "amount", "created_at"),
        updated_at="processed_at",
    ),
    # ---------------------------------------------------------------- Recharge-like subscriptions
    RawTable(
        "subscriptions",
        "customers",
        columns=(
            ("id", "bigint"),
            ("external_customer_id", "bigint"),  # the Shopify customer id
            ("status", "text"),  # ACTIVE | INACTIVE
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
        ),
        record_id=("id",),
        required=("id", "created_at", "updated_at"),
        updated_at="updated_at",
        pii=(EMAIL, FIRST, LAST),
    ),
    RawTable(
        "subscriptions",
        "subscriptions",
        columns=(
            ("id", "bigint"),
            ("customer_id", "bigint"),  # the subscription app's customer id
            ("external_product_id", "bigint"),
            ("sku", "text"),
            ("product_title", "text"),
            ("quantity", "integer"),
            ("price", "numeric(12,2)"),
            ("order_interval_unit", "text"),  # day | week | month
            ("order_interval_frequency", "integer"),
            ("status", "text"),  # active | paused | cancelled
            ("cancellation_reason", "text"),
            ("cancellation_reason_comments", "text"),
            ("next_charge_scheduled_at", "timestamptz"),
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
            ("paused_at", "timestamptz"),
            ("cancelled_at", "timestamptz"),
        ),
        record_id=("id",),
        required=("id", "customer_id", "status", "created_at", "updated_at"),
        updated_at="updated_at",
    ),
    RawTable(
        "subscriptions",
        "events",
        columns=(
            ("id", "bigint"),
            ("subscription_id", "bigint"),
            ("customer_id", "bigint"),
            ("verb", "text"),  # created | skipped | paused | resumed | cancelled | charge_processed
            ("reason", "text"),
            ("created_at", "timestamptz"),
        ),
        record_id=("id",),
        required=("id", "subscription_id", "verb", "created_at"),
        updated_at="created_at",
    ),
    # ---------------------------------------------------------------- Klaviyo JSON:API
    RawTable(
        "klaviyo",
        "profiles",
        columns=(
            ("id", "text"),  # 26-char ULID-like id, e.g. 01GDDKASAP8TKDDA2GRZDSVP4H
            ("external_id", "text"),  # the Shopify customer id when synced
            ("email_consent", "text"),  # SUBSCRIBED | UNSUBSCRIBED | NEVER_SUBSCRIBED
            ("location_city", "text"),
            ("location_region", "text"),
            ("location_country", "text"),
            ("source", "text"),  # how the profile was created: shopify | signup_form | popup
            ("created", "timestamptz"),
            ("updated", "timestamptz"),
        ),
        record_id=("id",),
        required=("id", "created", "updated"),
        updated_at="updated",
        pii=(EMAIL, PHONE, FIRST, LAST),
    ),
    RawTable(
        "klaviyo",
        "events",
        columns=(
            ("id", "text"),
            ("profile_id", "text"),
            ("metric_id", "text"),
            ("metric_name", "text"),  # Received Email | Opened Email | Clicked Email | ...
            ("datetime", "timestamptz"),
            ("campaign_id", "text"),
            ("flow_id", "text"),
            ("value", "numeric(12,2)"),  # order value for Placed Order
            ("properties", "json"),
        ),
        record_id=("id",),
        required=("id", "profile_id", "metric_name", "datetime"),
        updated_at="datetime",
    ),
    # ---------------------------------------------------------------- GA4 BigQuery export
    RawTable(
        "ga4",
        "events",
        columns=(
            ("event_date", "text"),  # YYYYMMDD, the export's shard date
            ("event_timestamp", "bigint"),  # microseconds since the epoch (UTC)
            ("event_name", "text"),
            ("event_params", "json"),  # [{"key":..,"value":{"string_value"|"int_value":..}}]
            ("user_pseudo_id", "text"),
            ("user_id", "text"),  # the shop's customer id after login, else null
            ("stream_id", "text"),
            ("platform", "text"),  # WEB
            ("device_category", "text"),  # desktop | mobile | tablet
            ("geo_country", "text"),
            ("traffic_source_source", "text"),  # first-touch source of the user
            ("traffic_source_medium", "text"),
            ("traffic_source_name", "text"),
            ("ecommerce_transaction_id", "text"),
            ("ecommerce_purchase_revenue", "numeric(12,2)"),
        ),
        # the export has no event id: one event is one user, stream, timestamp and name
        record_id=("stream_id", "user_pseudo_id", "event_timestamp", "event_name"),
        required=("event_date", "event_timestamp", "event_name", "user_pseudo_id", "stream_id"),
        updated_at="event_timestamp",
    ),
    # ------------------------------------------------------- helpdesk (Gorgias/Zendesk-like)
    RawTable(
        "helpdesk",
        "tickets",
        columns=(
            ("id", "bigint"),
            ("requester_id", "bigint"),
            ("channel", "text"),  # email | chat | phone | contact_form | social
            ("subject", "text"),
            ("category", "text"),  # shipping | billing | product_issue | subscription | ...
            ("status", "text"),  # open | pending | solved | closed
            ("priority", "text"),  # low | normal | high | urgent
            ("satisfaction_score", "integer"),  # 1..5, null when not rated
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
            ("closed_at", "timestamptz"),
        ),
        record_id=("id",),
        required=("id", "requester_id", "created_at", "updated_at"),
        updated_at="updated_at",
        pii=(EMAIL,),  # the requester's email, as the helpdesk records it on the ticket
    ),
    RawTable(
        "helpdesk",
        "requesters",
        columns=(
            ("id", "bigint"),
            ("external_id", "text"),  # the Shopify customer id when the helpdesk is integrated
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
        ),
        record_id=("id",),
        required=("id", "created_at", "updated_at"),
        updated_at="updated_at",
        pii=(EMAIL, PHONE, FIRST, LAST),
    ),
)

BY_NAME: dict[str, RawTable] = {t.qualified: t for t in TABLES}
SOURCES: tuple[str, ...] = tuple(dict.fromkeys(t.source for t in TABLES))


def table(source: str, entity: str) -> RawTable:
    try:
        return BY_NAME[f"raw_{source}.{entity}"]
    except KeyError:
        known = ", ".join(sorted(BY_NAME))
        raise KeyError(f"unknown raw table raw_{source}.{entity}; known: {known}") from None
