"""Shopify's customers export into ``raw_shopify.customers``.

Recent exports start with ``Customer ID`` and name the address ``Default Address …``; older ones
have no id and plain ``Address1``/``City``/… — both are read. A customer without ``Customer ID``
gets the id the orders import derives from the same email (``ids``), so the two files describe
one customer. The export has no creation date: ``created_at`` comes from a ``Created at`` column
when there is one, else from the customer's earliest order already landed, else it is the time
of the import (when the customer was first seen); ``updated_at`` is the same moment.
``Total Spent`` and ``Total Orders`` are not landed: the warehouse computes both from the orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.sources.imports import ids
from orchestration.sources.imports.orders import header_index
from orchestration.sources.imports.values import (
    DateNotes,
    DateRules,
    Rejects,
    parse_bool,
    parse_datetimes,
    parse_id,
    strip_excel_guard,
    text,
)
from orchestration.sources.schemas import table

CUSTOMERS = table("shopify", "customers")

# landed column -> the export's column names, newest layout first
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("Customer ID", "Id"),
    "email": ("Email",),
    "phone": ("Phone", "Default Address Phone"),
    "first_name": ("First Name",),
    "last_name": ("Last Name",),
    "address1": ("Default Address Address1", "Address1"),
    "city": ("Default Address City", "City"),
    "province_code": ("Default Address Province Code", "Province Code"),
    "country_code": ("Default Address Country Code", "Country Code"),
    "zip": ("Default Address Zip", "Zip"),
    "accepts": ("Accepts Email Marketing", "Accepts Marketing"),
    "tags": ("Tags",),
    "created_at": ("Created at", "Created At"),
    "updated_at": ("Updated at", "Updated At"),
}


@dataclass
class CustomersOut:
    customers: pd.DataFrame  # created_at / updated_at missing where the file has no date
    email_ids: pd.Series  # per landed row, the id its orders carry (from email or phone)
    rejects: Rejects
    notes: DateNotes
    rows: int


def map_customers(
    frame: pd.DataFrame, *, where: str, rules: DateRules, keys: VaultKeys, blocklist: Blocklist
) -> CustomersOut:
    heads = header_index(frame)
    if "email" not in heads:
        raise CdpError(
            f"{where}: not a Shopify customers export, no Email column (Shopify: Customers > "
            "Export > CSV)"
        )
    n = len(frame)
    rejects, notes = Rejects(), DateNotes()

    def get(name: str) -> tuple[pd.Series, str]:
        for column in COLUMNS[name]:
            if column.lower() in heads:
                return frame[heads[column.lower()]], column
        return pd.Series([None] * n, index=frame.index, dtype=object), COLUMNS[name][0]

    given_id = parse_id(*get("id"), rejects)
    email = text(get("email")[0])
    phone = strip_excel_guard(text(get("phone")[0]))
    derived = ids.customer_ids(keys, blocklist, email, phone)
    customer_id = given_id.fillna(derived).astype("Int64")
    nobody = customer_id.isna() & given_id.isna() & ~frame.index.isin(rejects.problems)
    if nobody.any():
        rejects.add(
            nobody[nobody].index,
            "Customer ID",
            "no Customer ID, and no Email or Phone to derive one",
        )
    dup = customer_id.duplicated() & customer_id.notna()
    if dup.any():
        rejects.add(dup[dup].index, get("id")[1], "the same customer again")
    accepts = parse_bool(*get("accepts"), rejects)
    consent = accepts.map({True: "subscribed", False: "not_subscribed"}).astype(object)
    created = parse_datetimes(*get("created_at"), rules, rejects, notes, where)
    updated = parse_datetimes(*get("updated_at"), rules, rejects, notes, where)
    bad = pd.Series(rejects.mask(n), index=frame.index)
    keep = ~bad
    out = pd.DataFrame(
        {
            "id": customer_id,
            "state": None,
            "verified_email": pd.Series(pd.NA, index=frame.index, dtype="boolean"),
            "email_marketing_consent": consent.where(accepts.notna(), None),
            "tags": text(get("tags")[0]),
            "city": text(get("city")[0]),
            "province_code": text(get("province_code")[0]),
            "country_code": text(get("country_code")[0]),
            "zip": strip_excel_guard(text(get("zip")[0])),
            "created_at": created,
            "updated_at": updated.fillna(created),
            "email": email,
            "phone": phone,
            "first_name": text(get("first_name")[0]),
            "last_name": text(get("last_name")[0]),
            "address1": text(get("address1")[0]),
        }
    )[keep].reset_index(drop=True)
    email_ids = derived[keep].reset_index(drop=True)
    return CustomersOut(out[CUSTOMERS.input_columns], email_ids, rejects, notes, n)
