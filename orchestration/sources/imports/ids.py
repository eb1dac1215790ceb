"""Stable synthetic ids for records a CSV export does not number.

Shopify's orders export has no customer id and no line item or refund id; a generic platform's
ids may be text (``ORD-1001``). The raw tables key records by ``bigint``, so such records get a
**negative** id derived from what identifies them — real Shopify ids are positive, so the two
never collide, and a negative id in the warehouse always means "derived by the importer":

- a customer known only by email: ``-(first 60 bits of the email's blind index) - 1``. The blind
  index is the keyed HMAC of the normalized email (trimmed, lower-cased) that the PII vault
  already uses, so the id is the same in every file and every import of this warehouse, and the
  plaintext email cannot be recovered from it; the phone's blind index when there is no email;
- an order, line, refund or generic customer id that is not a number: the same construction over
  sha256 of a namespaced key (``order:#1001``, ``line:<order id>:<position>``,
  ``refund:<order id>``, ``customer:C-123``).
"""

from __future__ import annotations

import hashlib

import pandas as pd

from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys, index_series, normalize

_BITS = 15  # hex digits: 60 bits, so -(x) - 1 fits a bigint with room to spare


def from_hex(hexes: pd.Series) -> pd.Series:
    """Negative Int64 ids from hex digests (missing stays missing)."""
    values = [None if h is None or h is pd.NA or h != h else -int(h[:_BITS], 16) - 1
              for h in hexes.astype(object)]  # fmt: skip
    return pd.Series(pd.array(values, dtype="Int64"), index=hexes.index)


def hashed(keys: pd.Series, namespace: str) -> pd.Series:
    """Negative ids from text keys: sha256 of ``namespace:key``."""
    hexes = keys.map(
        lambda k: hashlib.sha256(f"{namespace}:{k}".encode()).hexdigest(), na_action="ignore"
    )
    return from_hex(hexes.astype(object))


def customer_ids(
    keys: VaultKeys, blocklist: Blocklist, emails: pd.Series, phones: pd.Series
) -> pd.Series:
    """A customer id per row from the email's blind index, else the phone's. Values on the
    identity blocklist (``test@example.com``) give no id: one shared junk value must not make one
    customer of strangers."""
    out = pd.Series(pd.NA, index=emails.index, dtype="Int64")
    for values, pii_type in ((emails, "email"), (phones, "phone")):
        todo = out.isna() & values.notna()
        if not todo.any():
            continue
        norm = normalize(values[todo].astype(object), pii_type)
        usable = norm.notna() & ~blocklist.flags(norm, pii_type)
        picked = values[todo][usable]
        if len(picked):
            hashes, _ = index_series(keys, picked.astype(object), pii_type)
            out[picked.index] = from_hex(hashes)
    return out
