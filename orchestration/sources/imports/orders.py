"""Orders from a CSV export into ``raw_shopify.orders``, ``order_lines`` and ``refunds`` — the
tables the Shopify API connector fills, so the dbt models read imported history unchanged.

Two layouts come in, both one row per line item:

- **Shopify's orders export**: the first row of an order carries the order's fields (``Created
  at``, ``Total``, ``Financial Status``…), the following rows of the same ``Name`` only the line
  item (``Lineitem quantity``, ``Lineitem price``…);
- **the generic orders CSV** (``GENERIC_COLUMNS``): rows grouped by ``order_id``, the order's
  fields read from its first row.

Both are renamed to one canonical frame (``CANONICAL``) and mapped here. An order lands whole or
not at all: a row that does not read rejects every row of its order, each with the reason.
What the export does not say is derived, never guessed silently (README "Bring your own data"):
``updated_at`` is the latest of created, paid, fulfilled and cancelled; the ``Refunded Amount``
becomes one refund dated at that same moment (the export has no refund date); customers without
an id get one from their email (``ids``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.sources.imports import ids
from orchestration.sources.imports.values import (
    DateNotes,
    DateRules,
    Rejects,
    parse_datetimes,
    parse_id,
    parse_int,
    parse_money,
    strip_excel_guard,
    text,
)
from orchestration.sources.schemas import table

ORDERS, LINES, REFUNDS = (table("shopify", e) for e in ("orders", "order_lines", "refunds"))

# canonical name -> Shopify orders export column (docs: "Exporting orders", help.shopify.com)
SHOPIFY_COLUMNS = {
    "order_name": "Name",
    "order_id": "Id",
    "email": "Email",
    "phone": "Phone",
    "billing_phone": "Billing Phone",
    "financial_status": "Financial Status",
    "fulfillment_status": "Fulfillment Status",
    "currency": "Currency",
    "subtotal": "Subtotal",
    "shipping": "Shipping",
    "taxes": "Taxes",
    "total": "Total",
    "discount_code": "Discount Code",
    "discount_amount": "Discount Amount",
    "created_at": "Created at",
    "paid_at": "Paid at",
    "fulfilled_at": "Fulfilled at",
    "cancelled_at": "Cancelled at",
    "refunded_amount": "Refunded Amount",
    "tags": "Tags",
    "source": "Source",
    "shipping_city": "Shipping City",
    "shipping_province": "Shipping Province",
    "shipping_country": "Shipping Country",
    "line_quantity": "Lineitem quantity",
    "line_name": "Lineitem name",
    "line_price": "Lineitem price",
    "line_sku": "Lineitem sku",
    "line_discount": "Lineitem discount",
}
SHOPIFY_REQUIRED = ("Name", "Created at", "Total", "Lineitem quantity", "Lineitem price")

# canonical name -> (generic column, accepted aliases); README documents them
GENERIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "order_name": ("order_id", "order_number", "order"),
    "email": ("customer_email", "email"),
    "customer_key": ("customer_id",),
    "phone": ("customer_phone", "phone"),
    "created_at": ("ordered_at", "created_at", "order_date", "date"),
    "total": ("total", "total_price", "order_total", "amount"),
    "currency": ("currency",),
    "financial_status": ("financial_status", "status"),
    "fulfillment_status": ("fulfillment_status",),
    "subtotal": ("subtotal",),
    "shipping": ("shipping",),
    "taxes": ("tax", "taxes"),
    "discount_code": ("discount_code",),
    "discount_amount": ("discount", "discount_amount"),
    "cancelled_at": ("cancelled_at",),
    "updated_at": ("updated_at",),
    "refunded_amount": ("refunded", "refunded_amount"),
    "refunded_at": ("refunded_at",),
    "tags": ("tags",),
    "source": ("source", "channel"),
    "line_sku": ("sku",),
    "line_name": ("product", "product_name", "title"),
    "line_quantity": ("quantity",),
    "line_price": ("price", "unit_price"),
}
GENERIC_REQUIRED = ("order_name", "created_at", "total")

FINANCIAL = {
    "paid": "paid",
    "pending": "pending",
    "authorized": "authorized",
    "partially_paid": "partially_paid",
    "partially_refunded": "partially_refunded",
    "refunded": "refunded",
    "voided": "voided",
    # Shopify's "Expired": the authorization lapsed, no money was taken
    "expired": "voided",
    "unpaid": "pending",
}


@dataclass
class OrdersOut:
    orders: pd.DataFrame
    lines: pd.DataFrame
    refunds: pd.DataFrame
    rejects: Rejects
    notes: DateNotes
    rows: int
    without_customer: int  # orders landed with neither email nor phone: no customer


def header_index(frame: pd.DataFrame) -> dict[str, str]:
    """Lower-cased, trimmed header -> the file's own column name."""
    return {str(c).strip().lower(): c for c in frame.columns}


def from_shopify(frame: pd.DataFrame, where: str) -> tuple[pd.DataFrame, pd.Series, dict]:
    """Shopify's orders export as the canonical frame, which rows start an order, and the
    column name to show per canonical name."""
    heads = header_index(frame)
    missing = [c for c in SHOPIFY_REQUIRED if c.lower() not in heads]
    if missing:
        raise CdpError(
            f"{where}: not a Shopify orders export, missing columns {', '.join(missing)} "
            f"(Shopify: Orders > Export > CSV for Excel or plain CSV). For another platform's "
            f"orders use `cdp import orders` (columns in the README)"
        )
    n = len(frame)
    canon = pd.DataFrame(index=frame.index)
    shown = {}
    for name, column in SHOPIFY_COLUMNS.items():
        source = heads.get(column.lower())
        canon[name] = frame[source] if source is not None else pd.Series([None] * n, dtype=object)
        shown[name] = column
    canon["customer_key"] = None
    canon["updated_at"] = None
    canon["refunded_at"] = None
    # an order's first row carries its fields; its other rows only the line item
    starts = (
        text(canon["created_at"]).notna()
        | text(canon["total"]).notna()
        | text(canon["financial_status"]).notna()
    )
    canon["order_id"] = strip_excel_guard(text(canon["order_id"]))
    return canon, starts, shown


def from_generic(frame: pd.DataFrame, where: str) -> tuple[pd.DataFrame, pd.Series, dict]:
    """A generic orders CSV as the canonical frame (rows of one order brought together)."""
    heads = {k.replace(" ", "_").replace("-", "_"): v for k, v in header_index(frame).items()}
    canon = pd.DataFrame(index=frame.index)
    shown = {}
    for name, aliases in GENERIC_COLUMNS.items():
        found = next((a for a in aliases if a in heads), None)
        canon[name] = frame[heads[found]] if found else None
        shown[name] = heads[found] if found else aliases[0]
    missing = [GENERIC_COLUMNS[c][0] for c in GENERIC_REQUIRED if canon[c].isna().all()]
    if not any(a in heads for a in GENERIC_COLUMNS["email"] + GENERIC_COLUMNS["customer_key"]):
        missing.append("customer_email or customer_id")
    missing = [m for m in missing if m.split(" ")[0] not in heads]
    if missing:
        raise CdpError(
            f"{where}: missing columns {', '.join(missing)}. The generic orders CSV needs "
            "order_id, customer_email and/or customer_id, ordered_at and total; see the README"
        )
    if canon["line_price"].isna().all():
        # no line prices: one row per order, its one line worth the order's subtotal (or total)
        if text(canon["order_name"]).duplicated().any():
            raise CdpError(
                f"{where}: several rows per order need a price column (the line item's unit "
                "price); with one row per order it may be left out"
            )
        canon["line_price"] = text(canon["subtotal"]).fillna(text(canon["total"]))
        canon["line_quantity"] = "1"
    elif canon["line_quantity"].isna().all():
        canon["line_quantity"] = "1"
    canon["financial_status"] = text(canon["financial_status"]).fillna("paid")
    for name in ("order_id", "billing_phone", "paid_at", "fulfilled_at", "shipping_city",
                 "shipping_province", "shipping_country", "line_discount"):  # fmt: skip
        canon[name] = None
    # group an order's rows (first-seen order kept), first row of each starts it
    key = text(canon["order_name"])
    first_seen = pd.Series(pd.factorize(key, use_na_sentinel=True)[0], index=canon.index)
    canon = canon.assign(_o=first_seen).sort_values("_o", kind="stable")
    starts = ~key[canon.index].duplicated() | key[canon.index].isna()
    return canon.drop(columns="_o"), starts, shown


def map_orders(
    canon: pd.DataFrame,
    starts: pd.Series,
    shown: dict,
    *,
    where: str,
    rules: DateRules,
    keys: VaultKeys,
    blocklist: Blocklist,
) -> OrdersOut:
    """The canonical frame (index: the file's data rows, 0-based) as raw order, line and refund
    frames; rows that do not read are in ``rejects``."""
    rejects, notes = Rejects(), DateNotes()
    rows = canon.index
    starts = starts.reindex(rows).fillna(False).astype(bool)
    order_no = starts.cumsum()  # which order each row belongs to (its start row's number)
    orphan = order_no == 0
    if orphan.any():
        rejects.add(_at(orphan), shown["order_name"], "a line item before any order row")
    name = text(canon["order_name"])
    head = canon[starts]
    head_name = name[starts]
    # a continuation row naming another order than the one above it is out of place
    start_row = pd.Series(rows[starts], index=order_no[starts].to_numpy())
    owner = pd.Series(start_row.reindex(order_no.to_numpy()).to_numpy(), index=rows)
    cont = ~starts & ~orphan
    owner_name = pd.Series(
        name.reindex(owner.fillna(-1).astype(int)).to_numpy(), index=rows, dtype="string"
    )
    other = (cont & name.notna() & (name != owner_name)).fillna(False).astype(bool)
    if other.any():
        rejects.add(_at(other), shown["order_name"], "line item away from its order's rows")

    def col(c: str) -> pd.Series:
        return head[c]

    missing_name = head_name.isna()
    if missing_name.any():
        rejects.add(head.index[missing_name], shown["order_name"], "required value is missing")
    created = parse_datetimes(col("created_at"), shown["created_at"], rules, rejects, notes, where)
    no_created = text(col("created_at")).isna()
    if no_created.any():
        rejects.add(head.index[no_created], shown["created_at"], "required value is missing")
    stamps = {
        c: parse_datetimes(col(c), shown.get(c, c), rules, rejects, notes, where)
        for c in ("paid_at", "fulfilled_at", "cancelled_at", "updated_at", "refunded_at")
    }
    money = {
        c: parse_money(col(c), shown.get(c, c), rejects)
        for c in ("subtotal", "shipping", "taxes", "total", "discount_amount", "refunded_amount")
    }
    no_total = text(col("total")).isna()
    if no_total.any():
        rejects.add(head.index[no_total], shown["total"], "required value is missing")
    status = text(col("financial_status")).str.lower().str.replace(r"[\s-]+", "_", regex=True)
    fin = status.map(FINANCIAL, na_action="ignore")
    bad_status = status.notna() & fin.isna()
    if bad_status.any():
        rejects.add(
            head.index[bad_status],
            shown["financial_status"],
            f"not a financial status ({', '.join(FINANCIAL)})",
            status[bad_status],
        )
    fulfil = text(col("fulfillment_status")).str.lower()
    fulfil = fulfil.where(~fulfil.isin(["unfulfilled", "unshipped", "pending"]))
    fulfil = fulfil.replace({"shipped": "fulfilled", "partially_fulfilled": "partial"})

    # order ids: the export's Id, else derived from the order's name
    given = parse_id(col("order_id"), shown.get("order_id", "Id"), rejects)
    order_id = given.fillna(ids.hashed(head_name, "order")).astype("Int64")
    dup = order_id.duplicated() & order_id.notna()
    if dup.any():
        firsts = order_id[~order_id.duplicated()]
        first_row = pd.Series(firsts.index, index=firsts.to_numpy())
        rejects.add(
            head.index[dup],
            shown["order_name"],
            "the same order again",
            [f"{n}, first at row {first_row[i] + 2}" for n, i in zip(
                head_name[dup].fillna(""), order_id[dup], strict=True)],
        )  # fmt: skip

    # customers: the platform's id when the file has one, else from email, else from phone
    email = text(col("email"))
    phone = text(col("phone")).fillna(text(col("billing_phone")))
    customer = ids.hashed(text(col("customer_key")), "customer")
    todo = customer.isna()
    customer[todo] = ids.customer_ids(keys, blocklist, email[todo], phone[todo])

    # lines: every row of an order with a line item
    qty = parse_int(canon["line_quantity"], shown["line_quantity"], rejects)
    price = parse_money(canon["line_price"], shown["line_price"], rejects)
    line_discount = parse_money(canon["line_discount"], shown.get("line_discount", ""), rejects)
    has_line = (
        text(canon["line_quantity"]).notna()
        | text(canon["line_price"]).notna()
        | text(canon["line_name"]).notna()
    )
    for c in ("line_quantity", "line_price"):
        gone = has_line & text(canon[c]).isna()
        if gone.any():
            rejects.add(_at(gone), shown[c], "required value is missing")

    # an order lands whole: one bad row rejects every row of its order
    bad_rows = pd.Series(rejects.mask(len(canon))[_positions(rows)], index=rows)
    bad_orders = set(order_no[bad_rows & ~orphan])
    whole = order_no.isin(bad_orders) & ~bad_rows & ~orphan
    if whole.any():
        rejects.add(_at(whole), shown["order_name"], "another row of this order was rejected")
    ok_head = ~order_no[starts].isin(bad_orders)
    ok_head.index = head.index

    updated = pd.concat(
        [created, stamps["paid_at"], stamps["fulfilled_at"], stamps["cancelled_at"],
         stamps["updated_at"]], axis=1,
    ).max(axis=1)  # fmt: skip
    keep = ok_head[ok_head].index
    orders = pd.DataFrame(
        {
            "id": order_id[keep],
            "name": head_name[keep],
            "customer_id": customer[keep],
            "financial_status": fin[keep],
            "fulfillment_status": fulfil[keep],
            "currency": text(col("currency"))[keep].str.upper(),
            "subtotal_price": money["subtotal"][keep],
            "total_discounts": money["discount_amount"][keep],
            "total_shipping_price": money["shipping"][keep],
            "total_tax": money["taxes"][keep],
            "total_price": money["total"][keep],
            "discount_codes": text(col("discount_code"))[keep],
            "source_name": text(col("source"))[keep],
            "landing_site": None,
            "referring_site": None,
            "tags": text(col("tags"))[keep],
            "test": False,
            "shipping_city": text(col("shipping_city"))[keep],
            "shipping_province_code": text(col("shipping_province"))[keep],
            "shipping_country_code": text(col("shipping_country"))[keep],
            "created_at": created[keep],
            "processed_at": created[keep],
            "cancelled_at": stamps["cancelled_at"][keep],
            "updated_at": updated[keep],
            "email": email[keep],
            "phone": phone[keep],
        }
    ).reset_index(drop=True)
    orders["test"] = orders["test"].astype("boolean")

    line_rows = has_line & order_no.isin(set(order_no[keep])) & ~bad_rows
    line_order = pd.Series(
        order_id.reindex(owner[line_rows].astype(int)).to_numpy(), index=rows[line_rows]
    )
    line_updated = pd.Series(
        updated.reindex(owner[line_rows].astype(int)).to_numpy(), index=rows[line_rows]
    )
    position = line_order.groupby(line_order).cumcount()
    lines = pd.DataFrame(
        {
            "id": ids.hashed(line_order.astype(str) + ":" + position.astype(str), "line"),
            "order_id": line_order.astype("Int64"),
            "product_id": pd.Series(pd.NA, index=line_order.index, dtype="Int64"),
            "variant_id": pd.Series(pd.NA, index=line_order.index, dtype="Int64"),
            "sku": text(canon["line_sku"])[line_rows],
            "title": text(canon["line_name"])[line_rows],
            "quantity": qty[line_rows],
            "price": price[line_rows],
            "total_discount": line_discount[line_rows],
            "updated_at": line_updated,
        }
    ).reset_index(drop=True)

    refunded = money["refunded_amount"][keep]
    has_refund = refunded.fillna(0) > 0
    refund_at = stamps["refunded_at"][keep].fillna(updated[keep])[has_refund]
    refund_orders = order_id[keep][has_refund]
    refunds = pd.DataFrame(
        {
            "id": ids.hashed(refund_orders.astype(str), "refund"),
            "order_id": refund_orders,
            "amount": refunded[has_refund],
            "note": "imported: refunded amount of the order",
            "restock": pd.Series(pd.NA, index=refund_orders.index, dtype="boolean"),
            "created_at": refund_at,
            "processed_at": refund_at,
        }
    ).reset_index(drop=True)
    return OrdersOut(
        orders[ORDERS.input_columns],
        lines[LINES.input_columns],
        refunds[REFUNDS.input_columns],
        rejects,
        notes,
        len(canon),
        int(orders["customer_id"].isna().sum()),
    )


def _at(mask: pd.Series) -> pd.Index:
    """The row labels where a boolean mask holds."""
    return mask.index[mask.to_numpy(dtype=bool)]


def _positions(rows: pd.Index) -> np.ndarray:
    return np.asarray(rows, dtype=np.int64)
