"""What kind of shop the warehouse holds: one that sells subscriptions, or one whose customers
buy one order at a time. The one owner of that decision; churn actions and the pre-built segments
read it from here.

A shop is a **subscription** shop when its data has subscriptions: any record from the
subscription app (its subscriptions, as ``intermediate.int_customer_subscriptions_rolled_up``
counts them per customer) or any Shopify order flagged as a subscription order
(``intermediate.int_orders_rolled_up.is_subscription_order``: tagged ``subscription`` or from a
subscription contract). Otherwise it is a **one_off** shop. The decision is read from the data
every time (a shop that starts selling subscriptions becomes a subscription shop on its next
build). A warehouse whose models are not built yet is **unknown**: nothing is skipped for it
and the churn actions keep the subscription rules (what they were before shops had kinds).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from orchestration.runtime import db

SUBSCRIPTION = "subscription"
ONE_OFF = "one_off"
UNKNOWN = "unknown"
KINDS = (SUBSCRIPTION, ONE_OFF, UNKNOWN)


@dataclass(frozen=True)
class ShopProfile:
    kind: str
    subscription_records: int  # rows in staging.stg_subscriptions__subscriptions
    subscription_orders: int  # Shopify orders flagged is_subscription_order

    @property
    def sells_subscriptions(self) -> bool:
        return self.kind == SUBSCRIPTION

    @property
    def reason(self) -> str:
        if self.sells_subscriptions:
            return (
                f"subscription shop: {self.subscription_records:,} subscription record(s), "
                f"{self.subscription_orders:,} subscription order(s)"
            )
        if self.kind == ONE_OFF:
            return "one_off shop: no subscription records and no subscription orders"
        return "shop kind unknown: the staging views are not built yet"


def _count(conn: psycopg.Connection, table: str, expression: str) -> int | None:
    if not db.table_exists(conn, table):
        return None
    return int(conn.execute(f"select coalesce({expression}, 0) from {table}").fetchone()[0])


def shop_profile(conn: psycopg.Connection) -> ShopProfile:
    """The shop's kind, detected from what is landed (see the module docstring). Counted on the
    built tables downstream of the staging views (each segment step and the scoring ask; the
    views de-duplicate every raw version on each read, ~1 s each at scale 10)."""
    records = _count(
        conn, "intermediate.int_customer_subscriptions_rolled_up", "sum(subscriptions_count)"
    )
    orders = _count(
        conn, "intermediate.int_orders_rolled_up", "count(*) filter (where is_subscription_order)"
    )
    if records is None and orders is None:
        return ShopProfile(UNKNOWN, 0, 0)
    records, orders = records or 0, orders or 0
    kind = SUBSCRIPTION if records or orders else ONE_OFF
    return ShopProfile(kind, records, orders)
