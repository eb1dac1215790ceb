"""A fake Shopify GraphQL Admin API serving the demo generator's customers and orders.

Faithful to the documented protocol: ``POST /admin/api/{version}/graphql.json`` with
``X-Shopify-Access-Token`` (401 otherwise); every query is parsed and validated against a subset
of the Admin schema (graphql-core), so a client asking for a field Shopify does not have gets the
same kind of error it would get from Shopify; ``customers``/``orders`` connections with
``first``/``after``/``query: "updated_at:>='…'"``/``sortKey: UPDATED_AT``; ``pageInfo``; a
leaky-bucket cost limit reported in ``extensions.cost.throttleStatus``, with ``THROTTLED`` errors
(HTTP 200) when a query costs more than is available; ``MAX_COST_EXCEEDED`` over 1000 points.
"""

from __future__ import annotations

import base64
import bisect
import math
import re
import threading
import time
from functools import lru_cache

import graphql
import orjson
import pandas as pd

from .common import FakeServer, Request, Response

SDL = """
scalar DateTime
scalar Decimal
scalar URL
enum CustomerSortKeys { UPDATED_AT CREATED_AT ID }
enum OrderSortKeys { UPDATED_AT CREATED_AT ID PROCESSED_AT }
enum CustomerState { ENABLED DISABLED INVITED DECLINED }
enum CustomerEmailAddressMarketingState {
  SUBSCRIBED NOT_SUBSCRIBED UNSUBSCRIBED PENDING INVALID REDACTED
}
enum OrderDisplayFinancialStatus {
  PAID PARTIALLY_REFUNDED REFUNDED PENDING VOIDED AUTHORIZED PARTIALLY_PAID EXPIRED
}
enum OrderDisplayFulfillmentStatus {
  FULFILLED PARTIALLY_FULFILLED UNFULFILLED IN_PROGRESS ON_HOLD SCHEDULED
}
type PageInfo {
  hasNextPage: Boolean! hasPreviousPage: Boolean! endCursor: String startCursor: String
}
type MoneyV2 { amount: Decimal! currencyCode: String! }
type MoneyBag { shopMoney: MoneyV2! presentmentMoney: MoneyV2! }
type CustomerEmailAddress {
  emailAddress: String! marketingState: CustomerEmailAddressMarketingState!
}
type CustomerPhoneNumber { phoneNumber: String! }
type MailingAddress {
  address1: String address2: String city: String provinceCode: String countryCodeV2: String
  zip: String
}
type Customer {
  id: ID! state: CustomerState! verifiedEmail: Boolean! tags: [String!]! createdAt: DateTime!
  updatedAt: DateTime! firstName: String lastName: String
  defaultEmailAddress: CustomerEmailAddress defaultPhoneNumber: CustomerPhoneNumber
  defaultAddress: MailingAddress
}
type CustomerConnection { pageInfo: PageInfo! nodes: [Customer!]! }
type Product { id: ID! }
type ProductVariant { id: ID! }
type LineItem {
  id: ID! sku: String title: String! quantity: Int! product: Product variant: ProductVariant
  originalUnitPriceSet: MoneyBag! totalDiscountSet: MoneyBag!
}
type LineItemConnection { pageInfo: PageInfo! nodes: [LineItem!]! }
type OrderTransaction { processedAt: DateTime }
type OrderTransactionConnection { pageInfo: PageInfo! nodes: [OrderTransaction!]! }
type RefundLineItem { restocked: Boolean! quantity: Int! }
type RefundLineItemConnection { pageInfo: PageInfo! nodes: [RefundLineItem!]! }
type Refund {
  id: ID! note: String createdAt: DateTime updatedAt: DateTime! totalRefundedSet: MoneyBag!
  transactions(first: Int, after: String): OrderTransactionConnection!
  refundLineItems(first: Int, after: String): RefundLineItemConnection!
}
type CustomerVisit { landingPage: URL referrerUrl: URL }
type CustomerJourneySummary { firstVisit: CustomerVisit }
type Order {
  id: ID! name: String! email: String phone: String test: Boolean! tags: [String!]!
  discountCodes: [String!]! sourceName: String currencyCode: String! createdAt: DateTime!
  processedAt: DateTime! cancelledAt: DateTime updatedAt: DateTime!
  displayFinancialStatus: OrderDisplayFinancialStatus
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  customer: Customer subtotalPriceSet: MoneyBag totalDiscountsSet: MoneyBag
  totalShippingPriceSet: MoneyBag! totalTaxSet: MoneyBag totalPriceSet: MoneyBag!
  customerJourneySummary: CustomerJourneySummary shippingAddress: MailingAddress
  lineItems(first: Int, after: String): LineItemConnection!
  refunds(first: Int): [Refund!]!
}
type OrderConnection { pageInfo: PageInfo! nodes: [Order!]! }
type QueryRoot {
  customers(first: Int, after: String, query: String, sortKey: CustomerSortKeys,
            reverse: Boolean): CustomerConnection!
  orders(first: Int, after: String, query: String, sortKey: OrderSortKeys,
         reverse: Boolean): OrderConnection!
  order(id: ID!): Order
}
schema { query: QueryRoot }
"""
SCHEMA = graphql.build_schema(SDL)
MAX_QUERY_COST = 1000
_FILTER = re.compile(r"updated_at:(>=|>|<=|<)'?([^' ]+)'?")


@lru_cache(maxsize=64)
def parse_query(text: str):
    """(errors, root field name, {arg: AST value}) for a query text; validated once per text."""
    try:
        doc = graphql.parse(text)
    except graphql.GraphQLError as exc:
        return [exc.message], None, None
    errors = graphql.validate(SCHEMA, doc)
    if errors:
        return [e.message for e in errors], None, None
    op = doc.definitions[0]
    root = op.selection_set.selections[0]
    lines = None
    for sel in root.selection_set.selections:
        if sel.name.value == "nodes":
            for f in sel.selection_set.selections:
                if f.name.value == "lineItems":
                    lines = {a.name.value: a.value for a in f.arguments}
    return [], root.name.value, ({a.name.value: a.value for a in root.arguments}, lines)


def _arg(ast_value, variables: dict):
    if ast_value is None:
        return None
    if isinstance(ast_value, graphql.VariableNode):
        return variables.get(ast_value.name.value)
    return graphql.value_from_ast_untyped(ast_value)


def _stamp(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(value) -> dict | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    m = {"amount": f"{value:.2f}", "currencyCode": "USD"}
    return {"shopMoney": m, "presentmentMoney": m}


def _clean(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _tags(value) -> list[str]:
    return [t for t in (value or "").split(", ") if t]


def customer_node(r: dict) -> dict:
    return {
        "id": f"gid://shopify/Customer/{r['id']}",
        "state": r["state"].upper(),
        "verifiedEmail": bool(r["verified_email"]),
        "tags": _tags(r["tags"]),
        "createdAt": _stamp(r["created_at"]),
        "updatedAt": _stamp(r["updated_at"]),
        "firstName": _clean(r["first_name"]),
        "lastName": _clean(r["last_name"]),
        "defaultEmailAddress": {
            "emailAddress": r["email"],
            "marketingState": (r["email_marketing_consent"] or "not_subscribed").upper(),
        }
        if _clean(r["email"]) is not None
        else None,
        "defaultPhoneNumber": {"phoneNumber": r["phone"]} if _clean(r["phone"]) else None,
        "defaultAddress": {
            "address1": _clean(r["address1"]),
            "address2": None,
            "city": _clean(r["city"]),
            "provinceCode": _clean(r["province_code"]),
            "countryCodeV2": _clean(r["country_code"]),
            "zip": _clean(r["zip"]),
        },
    }


def line_node(r: dict) -> dict:
    return {
        "id": f"gid://shopify/LineItem/{r['id']}",
        "sku": _clean(r["sku"]),
        "title": r["title"],
        "quantity": int(r["quantity"]),
        "product": {"id": f"gid://shopify/Product/{r['product_id']}"},
        "variant": {"id": f"gid://shopify/ProductVariant/{r['variant_id']}"},
        "originalUnitPriceSet": _money(r["price"]),
        "totalDiscountSet": _money(r["total_discount"]),
    }


def refund_node(r: dict) -> dict:
    return {
        "id": f"gid://shopify/Refund/{r['id']}",
        "note": _clean(r["note"]),
        "createdAt": _stamp(r["created_at"]),
        "updatedAt": _stamp(r["processed_at"]),
        "totalRefundedSet": _money(r["amount"]),
        "transactions": {
            "pageInfo": _no_more(),
            "nodes": [{"processedAt": _stamp(r["processed_at"])}],
        },
        "refundLineItems": {
            "pageInfo": _no_more(),
            "nodes": [{"restocked": True, "quantity": 1}] if r["restock"] else [],
        },
    }


def order_node(r: dict, lines: list[dict], refunds: list[dict]) -> dict:
    fulfillment = {"fulfilled": "FULFILLED", "partial": "PARTIALLY_FULFILLED"}
    return {
        "id": f"gid://shopify/Order/{r['id']}",
        "name": r["name"],
        "email": _clean(r["email"]),
        "phone": _clean(r["phone"]),
        "test": bool(r["test"]),
        "tags": _tags(r["tags"]),
        "discountCodes": [c for c in (r["discount_codes"] or "").split(",") if c],
        "sourceName": _clean(r["source_name"]),
        "currencyCode": r["currency"],
        "createdAt": _stamp(r["created_at"]),
        "processedAt": _stamp(r["processed_at"]),
        "cancelledAt": _stamp(r["cancelled_at"]),
        "updatedAt": _stamp(r["updated_at"]),
        "displayFinancialStatus": (r["financial_status"] or "").upper() or None,
        "displayFulfillmentStatus": fulfillment.get(r["fulfillment_status"], "UNFULFILLED"),
        "customer": {"id": f"gid://shopify/Customer/{r['customer_id']}"}
        if _clean(r["customer_id"]) is not None
        else None,
        "subtotalPriceSet": _money(r["subtotal_price"]),
        "totalDiscountsSet": _money(r["total_discounts"]),
        "totalShippingPriceSet": _money(r["total_shipping_price"]),
        "totalTaxSet": _money(r["total_tax"]),
        "totalPriceSet": _money(r["total_price"]),
        "customerJourneySummary": {
            "firstVisit": {
                "landingPage": _clean(r["landing_site"]),
                "referrerUrl": _clean(r["referring_site"]),
            }
        },
        "shippingAddress": {
            "address1": None,
            "address2": None,
            "city": _clean(r["shipping_city"]),
            "provinceCode": _clean(r["shipping_province_code"]),
            "countryCodeV2": _clean(r["shipping_country_code"]),
            "zip": None,
        },
        "_lines": lines,
        "refunds": refunds,
    }


def _no_more() -> dict:
    return {"hasNextPage": False, "hasPreviousPage": False, "endCursor": None, "startCursor": None}


def _encode(key: tuple) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode()


def _decode(cursor: str) -> tuple:
    return tuple(orjson.loads(base64.urlsafe_b64decode(cursor)))


class Collection:
    """Records by id, kept sorted by (updatedAt, id) for UPDATED_AT pagination."""

    def __init__(self) -> None:
        self.by_id: dict[int, dict] = {}
        self.keys: list[tuple] = []
        self.nodes: list[dict] = []

    def upsert(self, nodes: list[dict]) -> None:
        for n in nodes:
            self.by_id[int(n["id"].rsplit("/", 1)[1])] = n
        items = sorted(((n["updatedAt"], i), n) for i, n in self.by_id.items())
        self.keys = [k for k, _ in items]
        self.nodes = [n for _, n in items]

    def page(self, first: int, after: str | None, query: str | None):
        lo, hi = 0, len(self.keys)
        for op, value in _FILTER.findall(query or ""):
            value = _stamp(value)
            if op == ">=":
                lo = max(lo, bisect.bisect_left(self.keys, (value,)))
            elif op == ">":
                lo = max(lo, bisect.bisect_left(self.keys, (value + "\x7f",)))
            elif op == "<":
                hi = min(hi, bisect.bisect_left(self.keys, (value,)))
            else:
                hi = min(hi, bisect.bisect_left(self.keys, (value + "\x7f",)))
        if after:
            lo = max(lo, bisect.bisect_right(self.keys, _decode(after)))
        end = min(hi, lo + first)
        nodes = self.nodes[lo:end]
        info = {
            "hasNextPage": end < hi,
            "hasPreviousPage": lo > 0,
            "startCursor": _encode(self.keys[lo]) if nodes else None,
            "endCursor": _encode(self.keys[end - 1]) if nodes else None,
        }
        return nodes, info


class FakeShopify(FakeServer):
    def __init__(
        self,
        tables: dict[str, pd.DataFrame] | None = None,
        *,
        token: str = "shpat_test",
        api_version: str = "2025-07",
        maximum: float = 2000.0,
        restore_rate: float = 100.0,
        throttle_at: set[int] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.throttle_at = set(throttle_at or ())  # request numbers answered THROTTLED
        self.token = token
        self.api_version = api_version
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.available = maximum
        self._bucket_at = time.monotonic()
        self._bucket_lock = threading.Lock()
        self.customers = Collection()
        self.orders = Collection()
        self._refunds: dict[int, dict[int, dict]] = {}
        self.throttled = 0
        self.queries: list[tuple[str, dict]] = []  # (root field, variables) of answered queries
        if tables:
            self.load(tables)

    def load(self, tables: dict[str, pd.DataFrame]) -> None:
        """Add or replace records (the next day's versions replace the old ones by id)."""
        cust = tables["raw_shopify.customers"]
        self.customers.upsert([customer_node(r) for r in cust.to_dict("records")])
        lines: dict[int, list[dict]] = {}
        for r in tables["raw_shopify.order_lines"].to_dict("records"):
            lines.setdefault(int(r["order_id"]), []).append(line_node(r))
        for r in tables["raw_shopify.refunds"].to_dict("records"):
            self._refunds.setdefault(int(r["order_id"]), {})[int(r["id"])] = refund_node(r)
        nodes = []
        for r in tables["raw_shopify.orders"].to_dict("records"):
            oid = int(r["id"])
            refunds = list(self._refunds.get(oid, {}).values())
            nodes.append(order_node(r, lines.get(oid, []), refunds))
        self.orders.upsert(nodes)

    # ------------------------------------------------------------------ cost bucket
    def _cost_status(self) -> dict:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self.available, 1),
            "restoreRate": self.restore_rate,
        }

    def _refill(self) -> None:
        now = time.monotonic()
        self.available = min(
            self.maximum, self.available + (now - self._bucket_at) * self.restore_rate
        )
        self._bucket_at = now

    # ------------------------------------------------------------------ HTTP
    def route(self, request: Request) -> Response:
        if (
            request.path != f"/admin/api/{self.api_version}/graphql.json"
            or request.method != "POST"
        ):
            return Response.json(404, {"errors": "Not Found"})
        if request.headers.get("x-shopify-access-token") != self.token:
            return Response.json(
                401,
                {
                    "errors": "[API] Invalid API key or access token "
                    "(unrecognized login or wrong password)"
                },
            )
        payload = orjson.loads(request.body)
        variables = payload.get("variables") or {}
        errors, root, args = parse_query(payload.get("query", ""))
        if errors:
            return Response.json(200, {"errors": [{"message": m} for m in errors]})
        root_args, line_args = args
        first = _arg(root_args.get("first"), variables) or 0
        lines_first = _arg((line_args or {}).get("first"), variables) or 0
        if root == "order":
            requested = 2 + 250
        elif root == "orders":
            requested = 2 + first * (1 + 2 + lines_first)
        else:
            requested = 2 + first
        if requested > MAX_QUERY_COST:
            return Response.json(
                200,
                {
                    "errors": [
                        {
                            "message": f"Query cost is {requested}, which exceeds the "
                            f"single query max cost limit ({MAX_QUERY_COST}).",
                            "extensions": {"code": "MAX_COST_EXCEEDED"},
                        }
                    ]
                },
            )
        with self._bucket_lock:
            self._refill()
            if request.number in self.throttle_at:
                self.available = 0.0  # as if other apps had spent the shop's budget
            if requested > self.available:
                self.throttled += 1
                return Response.json(
                    200,
                    {
                        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                        "extensions": {
                            "cost": {
                                "requestedQueryCost": requested,
                                "actualQueryCost": None,
                                "throttleStatus": self._cost_status(),
                            }
                        },
                    },
                )
            self.available -= requested
        data, actual = self._resolve(root, root_args, variables, lines_first)
        with self._bucket_lock:
            self.available = min(self.maximum, self.available + requested - actual)
            cost = {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": self._cost_status(),
            }
        self.queries.append((root, variables))
        return Response.json(200, {"data": data, "extensions": {"cost": cost}})

    def _resolve(self, root, root_args, variables, lines_first):
        if root == "order":
            oid = int(str(_arg(root_args["id"], variables)).rsplit("/", 1)[1])
            node = self.orders.by_id.get(oid)
            if node is None:
                return {"order": None}, 1
            after = variables.get("after")
            start = int(after) if after else 0
            lines = node["_lines"][start : start + 250]
            end = start + len(lines)
            conn = {
                "pageInfo": {
                    "hasNextPage": end < len(node["_lines"]),
                    "hasPreviousPage": start > 0,
                    "endCursor": str(end),
                    "startCursor": str(start),
                },
                "nodes": lines,
            }
            return {"order": {"lineItems": conn}}, 2 + len(lines)
        first = _arg(root_args.get("first"), variables)
        if not first or first > 250:
            raise ValueError("first must be between 1 and 250")
        collection = self.orders if root == "orders" else self.customers
        nodes, info = collection.page(
            first, _arg(root_args.get("after"), variables), _arg(root_args.get("query"), variables)
        )
        if root == "orders":
            out = []
            for n in nodes:
                lines = n["_lines"]
                shown = lines[:lines_first]
                node = {k: v for k, v in n.items() if k != "_lines"}
                node["lineItems"] = {
                    "pageInfo": {
                        "hasNextPage": len(lines) > lines_first,
                        "hasPreviousPage": False,
                        "endCursor": str(len(shown)),
                        "startCursor": "0",
                    },
                    "nodes": shown,
                }
                out.append(node)
            actual = 2 + sum(3 + len(n["lineItems"]["nodes"]) for n in out)
            nodes = out
        else:
            actual = 2 + len(nodes)
        return {root: {"pageInfo": info, "nodes": nodes}}, actual
