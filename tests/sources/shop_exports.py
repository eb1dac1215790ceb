"""A shop's CSV exports in Shopify's layouts, written by the tests: messy values, multi-line
orders, refunds, a cancellation and bad rows, with what each file must land as."""

from __future__ import annotations

import csv
from pathlib import Path

ORDER_HEADER = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at",
    "Accepts Marketing", "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code",
    "Discount Amount", "Shipping Method", "Created at", "Lineitem quantity", "Lineitem name",
    "Lineitem price", "Lineitem sku", "Billing Name", "Billing Phone", "Shipping City",
    "Shipping Province", "Shipping Country", "Notes", "Cancelled at", "Refunded Amount", "Vendor",
    "Id", "Tags", "Source", "Lineitem discount", "Phone",
]  # fmt: skip


def _order(name, email="", status="", created="", total="", *, paid="", fulfilled="",
           currency="USD", subtotal="", shipping="", taxes="", qty="1", item="", price="",
           sku="", billing="", cancelled="", refunded="", oid="", phone="", code="",
           discount=""):  # fmt: skip
    row = dict.fromkeys(ORDER_HEADER, "")
    row.update({
        "Name": name, "Email": email, "Financial Status": status, "Paid at": paid,
        "Fulfillment Status": "fulfilled" if fulfilled else ("unfulfilled" if status else ""),
        "Fulfilled at": fulfilled, "Currency": currency if status else "",
        "Subtotal": subtotal, "Shipping": shipping, "Taxes": taxes, "Total": total,
        "Discount Code": code, "Discount Amount": discount, "Created at": created,
        "Lineitem quantity": qty, "Lineitem name": item, "Lineitem price": price,
        "Lineitem sku": sku, "Billing Name": billing, "Cancelled at": cancelled,
        "Refunded Amount": refunded, "Id": oid, "Phone": phone,
        "Notes": "leave at the door" if status else "", "Vendor": "GlowLab",
        "Shipping City": "Austin" if status else "", "Source": "web" if status else "",
    })  # fmt: skip
    return row


def order_rows() -> list[dict]:
    t1 = "2024-01-05 13:45:00 -0500"
    return [
        # row 2: a line item before any order row
        _order("#0999", "zed@example.org", item="Orphan", price="5.00"),
        # #1001: two lines, US money with $ and thousands separators, Shopify's offsets
        _order("#1001", "Ann@Example.org ", "paid", t1, "$1,239.50", paid=t1,
               fulfilled="2024-01-06 10:00:00 -0500", subtotal="$1,234.50", shipping="$5.00",
               taxes="$0.00", item="Serum", price="$1,000.00", sku="SER-1", billing="Ann Lee",
               oid="5100000001", code="WELCOME10", discount="$0.00"),
        _order("#1001", "Ann@Example.org ", qty="2", item="Cream", price="$117.25", sku="CRM-1"),
        # #1002: euro amounts with a decimal comma, partly refunded, three lines, no Id
        _order("#1002", "bob@example.org", "partially_refunded", "2024-02-01 09:00:00 +0100",
               "€20,00", currency="EUR", subtotal="€20,00", item="Mask", price="10,00",
               sku="MSK-1", refunded="5,00", billing="Bob Ray"),
        _order("#1002", "bob@example.org", item="Mask mini", price="5,00", sku="MSK-2"),
        _order("#1002", "bob@example.org", item="Sample", price="5,00", sku="SMP-1"),
        # #1003: cancelled
        _order("#1003", "cat@example.org", "voided", "2024-02-02 12:00:00 -0500", "15.00",
               item="Soap", price="15.00", cancelled="2024-02-03 12:00:00 -0500",
               oid="5100000003"),
        # #1004: refunded in full
        _order("#1004", "dan@example.org", "refunded", "2024-02-10 08:00:00 -0500", "$30.00",
               item="Oil", price="$30.00", refunded="$30.00", oid="5100000004"),
        # #1005: a created date that is not one: both of its rows rejected
        _order("#1005", "eve@example.org", "paid", "yesterday", "10.00", item="A",
               price="5.00", oid="5100000005"),
        _order("#1005", "eve@example.org", item="B", price="5.00"),
        # #1006: a total that is not an amount
        _order("#1006", "fay@example.org", "paid", "2024-02-11 08:00:00 -0500", "ten dollars",
               item="C", price="10.00", oid="5100000006"),
        # #1007: a financial status Shopify does not have
        _order("#1007", "gus@example.org", "sort of paid", "2024-02-12 08:00:00 -0500", "9.00",
               item="D", price="9.00", oid="5100000007"),
        # #1008: Ann again, written differently, ISO 8601 with Z
        _order("#1008", " ANN@example.ORG", "paid", "2024-03-01T08:00:00Z", "12.00",
               item="Serum mini", price="12.00", oid="5100000008"),
        # #1009: no email, a phone
        _order("#1009", "", "paid", "2024-03-02 08:00:00 -0500", "8.00", item="E",
               price="8.00", oid="5100000009", phone="+1 (555) 201-3399"),
        # #1010: neither email nor phone: lands without a customer
        _order("#1010", "", "paid", "2024-03-03 08:00:00 -0500", "7.00", item="F",
               price="7.00", oid="5100000010"),
        # #1011: a quantity that is not a number on its second line: both rows rejected
        _order("#1011", "hal@example.org", "paid", "2024-03-04 08:00:00 -0500", "6.00",
               item="G", price="3.00", oid="5100000011"),
        _order("#1011", "hal@example.org", qty="two", item="H", price="3.00"),
        # #1012: a junk email on the identity blocklist: no customer derived from it
        _order("#1012", "test@example.com", "paid", "2024-03-05 08:00:00 -0500", "5.00",
               item="I", price="5.00", oid="5100000012"),
    ]  # fmt: skip


# what the orders file must land as
EXPECTED_ORDERS = {
    "rows": 18,
    "orders": 8,  # 1001 1002 1003 1004 1008 1009 1010 1012
    "lines": 11,
    "refunds": 2,
    "cancelled": 1,
    "customers": 5,  # ann (twice), bob, cat, dan, the phone-only one
    "without_customer": 2,  # 1010 and the blocklisted 1012
    "rejected": 7,
}
EXPECTED_REASONS = {
    "Name: a line item before any order row": 1,
    "Created at: not a date": 1,
    "Name: another row of this order was rejected": 2,
    "Total: not an amount": 1,
    "Lineitem quantity: not a whole number": 1,
}
REJECTED_ROWS = {2, 10, 11, 12, 13, 17, 18}  # as a spreadsheet numbers them (header = 1)

CUSTOMER_HEADER = [
    "Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing",
    "Default Address Company", "Default Address Address1", "Default Address City",
    "Default Address Province Code", "Default Address Country Code", "Default Address Zip",
    "Default Address Phone", "Phone", "Accepts SMS Marketing", "Total Spent", "Total Orders",
    "Note", "Tax Exempt", "Tags",
]  # fmt: skip


def customer_rows() -> list[dict]:
    def row(cid, first, last, email, accepts, phone="", tags=""):
        r = dict.fromkeys(CUSTOMER_HEADER, "")
        r.update({
            "Customer ID": cid, "First Name": first, "Last Name": last, "Email": email,
            "Accepts Email Marketing": accepts, "Default Address Address1": "1 Main St",
            "Default Address City": "Austin", "Default Address Province Code": "TX",
            "Default Address Country Code": "US", "Default Address Zip": "'78701",
            "Phone": phone, "Total Spent": "$1,251.50", "Total Orders": "2", "Tags": tags,
        })  # fmt: skip
        return r

    return [
        row("'7000000001", "Ann", "Lee", "ann@example.org", "yes", "'+15552013300", "vip"),
        row("", "Bob", "Ray", "bob@example.org", "no"),  # recent exports aside, no id
        row("7000000003", "Eve", "Ito", "eve@example.org", "maybe"),  # not yes/no
        row("7000000001", "Ann", "Lee", "ann@example.org", "yes"),  # the same customer again
        row("", "No", "Body", "", "no"),  # nothing to identify
        row("7000000006", "Ivy", "Fox", "ivy@example.org", "yes"),  # a prospect: no orders
    ]


EXPECTED_CUSTOMERS = {"rows": 6, "customers": 3, "rejected": 3}


def write_csv(path: Path, header: list[str], rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, fieldnames=header)
        out.writeheader()
        out.writerows(rows)
    return path


def write_shop_exports(directory: Path) -> tuple[Path, Path]:
    """(orders_export.csv, customers_export.csv) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return (
        write_csv(directory / "orders_export.csv", ORDER_HEADER, order_rows()),
        write_csv(directory / "customers_export.csv", CUSTOMER_HEADER, customer_rows()),
    )


def write_history_export(
    path: Path, *, customers: int = 500, seed: int = 3, start=None, end=None
) -> Path:
    """Two years (2022-07-01 to 2024-06-30, or ``start`` to ``end``) of a shop's orders in
    Shopify's export layout: customers who start at some point, buy every few weeks or months,
    and stop after a while (or not) — by default enough history, churned and retained, for the
    churn model's cutoffs."""
    import random
    from datetime import date, timedelta

    rng = random.Random(seed)
    start, end = start or date(2022, 7, 1), end or date(2024, 6, 30)
    rows, number = [], 5000
    for c in range(customers):
        day = start + timedelta(days=rng.randrange((end - start).days - 30))
        gap = rng.choice((20, 35, 60, 120))
        stop = day + timedelta(days=int(rng.expovariate(1 / 300)))
        while day <= min(stop, end):
            number += 1
            stamp = f"{day.isoformat()} {rng.randrange(8, 22):02d}:15:00 -0500"
            qty = rng.choice((1, 1, 2, 3))
            price = rng.choice((18.0, 24.5, 32.0, 45.0))
            total = f"${qty * price:,.2f}"
            rows.append(
                _order(f"#{number}", f"shopper{c:04d}@shop.example", "paid", stamp, total,
                       paid=stamp, subtotal=total, qty=str(qty), item="Serum",
                       price=f"${price:.2f}", sku="SER-1", oid=str(6_000_000 + number))
            )  # fmt: skip
            day += timedelta(days=max(1, int(rng.gauss(gap, gap / 4))))
    return write_csv(path, ORDER_HEADER, rows)
