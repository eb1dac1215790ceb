"""Shopify GraphQL Admin API connector: customers and orders (with line items and refunds) into
``raw_shopify.*``, incremental by ``updated_at``, paced by the API's cost-based throttle.

Protocol (shopify.dev/docs/api/admin-graphql, /docs/api/usage/rate-limits):
``POST https://{shop}/admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token``;
connections take ``first``/``after``/``query``/``sortKey`` and return
``pageInfo { hasNextPage endCursor }``; every response carries
``extensions.cost.throttleStatus { maximumAvailable currentlyAvailable restoreRate }`` and an
over-budget query comes back (HTTP 200) with an error whose ``extensions.code`` is ``THROTTLED``.

Scopes a custom app needs: ``read_customers``, ``read_orders`` (plus ``read_all_orders`` for
orders older than 60 days).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
import psycopg

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.sources.connectors import state
from orchestration.sources.connectors.http import ApiClient
from orchestration.sources.schemas import table

SOURCE = "shopify"
CUSTOMERS, ORDERS, LINES, REFUNDS = (
    table(SOURCE, e) for e in ("customers", "orders", "order_lines", "refunds")
)
MAX_THROTTLE_RETRIES = 50

CUSTOMERS_QUERY = """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id state verifiedEmail tags createdAt updatedAt firstName lastName
      defaultEmailAddress { emailAddress marketingState }
      defaultPhoneNumber { phoneNumber }
      defaultAddress { address1 city provinceCode countryCodeV2 zip }
    }
  }
}"""

_MONEY = "{ shopMoney { amount } }"
_LINES = f"""pageInfo {{ hasNextPage endCursor }}
      nodes {{
        id sku title quantity product {{ id }} variant {{ id }}
        originalUnitPriceSet {_MONEY} totalDiscountSet {_MONEY}
      }}"""
ORDERS_QUERY = f"""
query Orders($first: Int!, $after: String, $query: String, $lines: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id name email phone test tags discountCodes sourceName currencyCode
      createdAt processedAt cancelledAt updatedAt
      displayFinancialStatus displayFulfillmentStatus
      customer {{ id }}
      subtotalPriceSet {_MONEY} totalDiscountsSet {_MONEY} totalShippingPriceSet {_MONEY}
      totalTaxSet {_MONEY} totalPriceSet {_MONEY}
      customerJourneySummary {{ firstVisit {{ landingPage referrerUrl }} }}
      shippingAddress {{ city provinceCode countryCodeV2 }}
      lineItems(first: $lines) {{
      {_LINES}
      }}
      refunds {{
        id note createdAt updatedAt totalRefundedSet {_MONEY}
        transactions(first: 1) {{ nodes {{ processedAt }} }}
        refundLineItems(first: 10) {{ nodes {{ restocked }} }}
      }}
    }}
  }}
}}"""
ORDER_LINES_QUERY = f"""
query OrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: 250, after: $after) {{
      {_LINES}
    }}
  }}
}}"""
_FULFILLMENT = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}


def client_from_settings(cfg, **kwargs) -> ApiClient:
    if not cfg.shopify_store_domain or not cfg.shopify_access_token:
        raise CdpError(
            "the Shopify connector is live but SHOPIFY_STORE_DOMAIN and/or SHOPIFY_ACCESS_TOKEN "
            "are not set (e.g. SHOPIFY_STORE_DOMAIN=my-shop.myshopify.com and an Admin API "
            "access token from a custom app with read_customers and read_orders)"
        )
    return make_client(
        cfg.shopify_base_url, cfg.shopify_access_token.value, cfg.shopify_api_version, **kwargs
    )


def make_client(base_url: str, token: str, api_version: str, **kwargs) -> ApiClient:
    return ApiClient(
        "Shopify",
        f"{base_url.rstrip('/')}/admin/api/{api_version}/",
        {"X-Shopify-Access-Token": token, "accept": "application/json"},
        auth_hint="Check SHOPIFY_ACCESS_TOKEN (and that the app has the read_customers and "
        "read_orders scopes) and SHOPIFY_STORE_DOMAIN.",
        **kwargs,
    )


class ShopifyGraphQL:
    """GraphQL calls paced by the leaky-bucket throttle the API reports."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.last_cost: float | None = None
        self.available: float | None = None
        self.restore_rate: float | None = None

    def execute(self, query: str, variables: dict) -> dict:
        for _ in range(MAX_THROTTLE_RETRIES):
            self._pace()
            body = self.client.post_json("graphql.json", {"query": query, "variables": variables})
            cost = (body.get("extensions") or {}).get("cost") or {}
            self._note(cost)
            errors = body.get("errors") or []
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                need = float(cost.get("requestedQueryCost") or self.last_cost or 50)
                rate = self.restore_rate or 50.0
                wait = max(0.05, (need - (self.available or 0.0)) / rate)
                self.client.wait(wait, "THROTTLED by the cost limit", throttle=True)
                continue
            if errors:
                messages = "; ".join(str(e.get("message")) for e in errors[:3])
                raise CdpError(f"Shopify GraphQL error: {messages}")
            return body["data"]
        raise CdpError(f"Shopify kept throttling after {MAX_THROTTLE_RETRIES} waits; re-run later")

    def _note(self, cost: dict) -> None:
        throttle = cost.get("throttleStatus") or {}
        if cost.get("requestedQueryCost") is not None:
            self.last_cost = float(cost["requestedQueryCost"])
        if throttle:
            self.available = float(throttle["currentlyAvailable"])
            self.restore_rate = float(throttle["restoreRate"])

    def _pace(self) -> None:
        """Wait before a query the bucket cannot pay for, instead of being refused."""
        if self.last_cost is None or self.available is None or not self.restore_rate:
            return
        if self.available < self.last_cost:
            wait = (self.last_cost - self.available) / self.restore_rate
            self.client.wait(wait, "cost budget low", throttle=True)
            self.available = self.last_cost

    def pages(self, query: str, root: str, variables: dict) -> Iterator[list[dict]]:
        after = None
        while True:
            data = self.execute(query, {**variables, "after": after})[root]
            yield data["nodes"]
            info = data["pageInfo"]
            if not info["hasNextPage"]:
                return
            after = info["endCursor"]


def search_query(cursor: dict | None) -> str | None:
    return f"updated_at:>='{cursor['ts']}'" if cursor else None


def gid_id(gid: str | None) -> int | None:
    """gid://shopify/Order/5101234035945 -> 5101234035945"""
    return int(gid.rsplit("/", 1)[1]) if gid else None


def _money(node: dict | None) -> str | None:
    return node["shopMoney"]["amount"] if node else None


def _ts(values: list) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")


def _num(values: list) -> pd.Series:
    return pd.to_numeric(pd.Series(values, dtype=object))


def _ints(values: list) -> pd.Series:
    return pd.Series(pd.array(values, dtype="Int64"))


def customers_frame(nodes: list[dict]) -> pd.DataFrame:
    cols: dict[str, list] = {c: [] for c in CUSTOMERS.input_columns}
    for n in nodes:
        email = n.get("defaultEmailAddress") or {}
        phone = n.get("defaultPhoneNumber") or {}
        addr = n.get("defaultAddress") or {}
        state_ = n.get("state")
        consent = email.get("marketingState")
        row = (
            gid_id(n["id"]),
            state_.lower() if state_ else None,
            n.get("verifiedEmail"),
            consent.lower() if consent else None,
            ", ".join(n.get("tags") or ()),
            addr.get("city"),
            addr.get("provinceCode"),
            addr.get("countryCodeV2"),
            addr.get("zip"),
            n.get("createdAt"),
            n.get("updatedAt"),
            email.get("emailAddress"),
            phone.get("phoneNumber"),
            n.get("firstName"),
            n.get("lastName"),
            addr.get("address1"),
        )
        for values, v in zip(cols.values(), row, strict=True):
            values.append(v)
    frame = pd.DataFrame(cols)
    frame["id"] = _ints(cols["id"])
    for c in ("created_at", "updated_at"):
        frame[c] = _ts(cols[c])
    frame["verified_email"] = frame["verified_email"].astype("boolean")
    return frame


def orders_frames(nodes: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(orders, order_lines, refunds) from order nodes whose line items are complete."""
    o: dict[str, list] = {c: [] for c in ORDERS.input_columns}
    li: dict[str, list] = {c: [] for c in LINES.input_columns}
    rf: dict[str, list] = {c: [] for c in REFUNDS.input_columns}
    for n in nodes:
        order_id = gid_id(n["id"])
        ship = n.get("shippingAddress") or {}
        visit = (n.get("customerJourneySummary") or {}).get("firstVisit") or {}
        fin = n.get("displayFinancialStatus")
        row = (
            order_id,
            n.get("name"),
            gid_id((n.get("customer") or {}).get("id")),
            fin.lower() if fin else None,
            _FULFILLMENT.get(n.get("displayFulfillmentStatus")),
            n.get("currencyCode"),
            _money(n.get("subtotalPriceSet")),
            _money(n.get("totalDiscountsSet")),
            _money(n.get("totalShippingPriceSet")),
            _money(n.get("totalTaxSet")),
            _money(n.get("totalPriceSet")),
            ",".join(n.get("discountCodes") or ()),
            n.get("sourceName"),
            visit.get("landingPage"),
            visit.get("referrerUrl"),
            ", ".join(n.get("tags") or ()),
            n.get("test"),
            ship.get("city"),
            ship.get("provinceCode"),
            ship.get("countryCodeV2"),
            n.get("createdAt"),
            n.get("processedAt"),
            n.get("cancelledAt"),
            n.get("updatedAt"),
            n.get("email"),
            n.get("phone"),
        )
        for values, v in zip(o.values(), row, strict=True):
            values.append(v)
        for line in n["lineItems"]["nodes"]:
            li["id"].append(gid_id(line["id"]))
            li["order_id"].append(order_id)
            li["product_id"].append(gid_id((line.get("product") or {}).get("id")))
            li["variant_id"].append(gid_id((line.get("variant") or {}).get("id")))
            li["sku"].append(line.get("sku"))
            li["title"].append(line.get("title"))
            li["quantity"].append(line.get("quantity"))
            li["price"].append(_money(line.get("originalUnitPriceSet")))
            li["total_discount"].append(_money(line.get("totalDiscountSet")))
            li["updated_at"].append(n.get("updatedAt"))
        for r in n.get("refunds") or ():
            txs = r["transactions"]["nodes"]
            rf["id"].append(gid_id(r["id"]))
            rf["order_id"].append(order_id)
            rf["amount"].append(_money(r.get("totalRefundedSet")))
            rf["note"].append(r.get("note"))
            rf["restock"].append(any(x.get("restocked") for x in r["refundLineItems"]["nodes"]))
            rf["created_at"].append(r.get("createdAt"))
            rf["processed_at"].append(txs[0].get("processedAt") if txs else None)
    orders = pd.DataFrame(o)
    for c in ("id", "customer_id"):
        orders[c] = _ints(o[c])
    for c in ("subtotal_price", "total_discounts", "total_shipping_price", "total_tax"):
        orders[c] = _num(o[c])
    orders["total_price"] = _num(o["total_price"])
    for c in ("created_at", "processed_at", "cancelled_at", "updated_at"):
        orders[c] = _ts(o[c])
    orders["test"] = orders["test"].astype("boolean")
    lines = pd.DataFrame(li)
    for c in ("id", "order_id", "product_id", "variant_id", "quantity"):
        lines[c] = _ints(li[c])
    for c in ("price", "total_discount"):
        lines[c] = _num(li[c])
    lines["updated_at"] = _ts(li["updated_at"])
    refunds = pd.DataFrame(rf)
    for c in ("id", "order_id"):
        refunds[c] = _ints(rf[c])
    refunds["amount"] = _num(rf["amount"])
    for c in ("created_at", "processed_at"):
        refunds[c] = _ts(rf[c])
    refunds["restock"] = refunds["restock"].astype("boolean")
    return orders, lines, refunds


def _complete_lines(gql: ShopifyGraphQL, nodes: list[dict]) -> None:
    """Fetch the rest of an order's line items when the first page did not hold them all."""
    for n in nodes:
        page = n["lineItems"]
        while page["pageInfo"]["hasNextPage"]:
            data = gql.execute(
                ORDER_LINES_QUERY, {"id": n["id"], "after": page["pageInfo"]["endCursor"]}
            )
            page = data["order"]["lineItems"]
            n["lineItems"]["nodes"].extend(page["nodes"])
        n["lineItems"]["pageInfo"] = {"hasNextPage": False, "endCursor": None}


def sync_shopify(
    url: str,
    client: ApiClient,
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    customers_page: int = 250,
    orders_page: int = 50,
    lines_page: int = 10,
    batch_records: int = 5_000,
    streams: tuple[str, ...] = ("customers", "orders"),
    log: Callable[[str], None] = lambda msg: None,
) -> list[state.StreamStats]:
    """Fetch customers and orders updated since the stored cursors and land them in batches,
    each batch committed together with its advanced cursor."""
    from orchestration.runtime.db import connect

    gql = ShopifyGraphQL(client)
    out = []

    def key(node: dict) -> tuple[str, str | None]:
        return str(gid_id(node["id"])), norm_stamp(node["updatedAt"])

    with connect(url, autocommit=True) as conn:
        state.ensure_connector_tables(conn)
        lock = "select pg_try_advisory_lock(hashtext('cdp.connector.shopify'))"
        if not conn.execute(lock).fetchone()[0]:
            raise CdpError("another Shopify sync is running against this warehouse; try later")

        def order_frames(nodes: list[dict]):
            _complete_lines(gql, nodes)
            orders, lines, refunds = orders_frames(nodes)
            return [(ORDERS, orders), (LINES, lines), (REFUNDS, _new_refunds(conn, refunds))]

        plans = {
            "customers": (
                CUSTOMERS_QUERY,
                {"first": customers_page},
                lambda nodes: [(CUSTOMERS, customers_frame(nodes))],
            ),
            "orders": (ORDERS_QUERY, {"first": orders_page, "lines": lines_page}, order_frames),
        }
        for stream in streams:
            query, variables, frames = plans[stream]
            out.append(
                state.sync_incremental(
                    conn,
                    SOURCE,
                    stream,
                    fetch=lambda cursor, q=query, v=variables, s=stream: gql.pages(
                        q, s, {**v, "query": search_query(cursor)}
                    ),
                    key=key,
                    frames=frames,
                    keys=keys,
                    blocklist=blocklist,
                    batch_records=batch_records,
                    log=log,
                )
            )
    return out


def _new_refunds(conn: psycopg.Connection, refunds: pd.DataFrame) -> pd.DataFrame:
    """Refunds not landed yet: an updated order brings all its refunds again, but a refund
    itself never changes, so only the new ones land."""
    if not len(refunds):
        return refunds
    ids = [int(i) for i in refunds["id"].dropna()]
    seen = {
        r[0]
        for r in conn.execute(
            "select distinct id from raw_shopify.refunds where id = any(%s)", (ids,)
        )
    }
    return refunds[~refunds["id"].isin(seen)].reset_index(drop=True)


def norm_stamp(stamp: str | None) -> str | None:
    """An API timestamp as ``YYYY-MM-DDTHH:MM:SSZ`` (the cursor format)."""
    if stamp is None or (len(stamp) == 20 and stamp.endswith("Z")):
        return stamp
    return pd.Timestamp(stamp).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
