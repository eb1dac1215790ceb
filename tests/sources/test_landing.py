"""Raw landing against a real PostgreSQL: COPY, idempotent batches, rejects, the PII vault."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import load_blocklist
from orchestration.privacy.vault import VaultKeys, blind_index, decrypt
from orchestration.runtime import db
from orchestration.sources.landing import load_frame
from orchestration.sources.schemas import table

KEYS = VaultKeys.from_master(b"t" * 32)
CUSTOMERS = table("shopify", "customers")


def customers(n: int = 3, **overrides) -> pd.DataFrame:
    rows = []
    for i in range(n):
        row = {
            "id": 6_000_000_000_000 + i,
            "state": "enabled",
            "verified_email": True,
            "email_marketing_consent": "subscribed",
            "tags": "",
            "city": "Austin",
            "province_code": "TX",
            "country_code": "US",
            "zip": "78701",
            "created_at": f"2025-01-0{i + 1}T10:00:00Z",
            "updated_at": f"2025-02-0{i + 1}T10:00:00Z",
            "email": f" Person.{i}@Example.org ",
            "phone": f"(555) 201-33{i:02d}",
            "first_name": "Sarah",
            "last_name": "Lee",
            "address1": f"{i} Main St",
        }
        row.update(overrides)
        rows.append(row)
    return pd.DataFrame(rows)[CUSTOMERS.input_columns]


def land(url, frame, tbl=CUSTOMERS):
    with db.connect(url) as conn:
        return load_frame(conn, tbl, frame, keys=KEYS, blocklist=load_blocklist())


def scalar(url, sql, params=None):
    with db.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_the_same_batch_twice_adds_nothing(warehouse_url):
    first = land(warehouse_url, customers())
    second = land(warehouse_url, customers())
    assert (first.loaded, first.skipped) == (3, False)
    assert second.skipped and second.batch_id == first.batch_id
    assert scalar(warehouse_url, "select count(*) from raw_shopify.customers") == 3
    assert scalar(warehouse_url, "select count(*) from ops.load_batches") == 1
    # an updated record is a new batch that keeps history
    land(warehouse_url, customers(1, updated_at="2025-03-01T00:00:00Z", city="Dallas"))
    assert scalar(warehouse_url, "select count(*) from raw_shopify.customers") == 4
    assert scalar(warehouse_url, "select count(distinct _batch_id) from raw_shopify.customers") == 2


def test_malformed_records_are_rejected_with_reasons_and_counts_reconcile(warehouse_url):
    frame = customers(4).astype({"id": object})
    frame.loc[1, "id"] = "abc"
    frame.loc[2, "created_at"] = "yesterday-ish"
    frame.loc[3, "updated_at"] = None
    result = land(warehouse_url, frame)
    assert (result.received, result.loaded, result.rejected) == (4, 1, 3)
    with db.connect(warehouse_url) as conn:
        rejects = dict(
            conn.execute(
                "select row_number, reason from ops.rejected_records where batch_id = %s",
                (result.batch_id,),
            ).fetchall()
        )
        batch = conn.execute(
            "select rows_received, rows_loaded, rows_rejected from ops.load_batches "
            "where batch_id = %s",
            (result.batch_id,),
        ).fetchone()
        payload = conn.execute(
            "select payload::text from ops.rejected_records where row_number = 2"
        ).fetchone()[0]
    assert "column id: 'abc' is not a valid bigint" in rejects[2]
    assert "column created_at: 'yesterday-ish' is not a timestamp" in rejects[3]
    assert "column updated_at: required value is missing" in rejects[4]
    assert batch[0] == batch[1] + batch[2]
    assert "example.org" not in payload.lower() and "email_hash" in payload


def test_unknown_or_missing_columns_are_named(warehouse_url):
    frame = customers().rename(columns={"email": "e_mail"})
    with pytest.raises(
        CdpError, match=r"missing columns \['email'\].*unknown columns \['e_mail'\]"
    ):
        land(warehouse_url, frame)


def test_no_plaintext_pii_lands_and_the_vault_round_trips(warehouse_url):
    result = land(warehouse_url, customers())
    assert result.loaded == 3
    with db.connect(warehouse_url) as conn:
        text_cols = conn.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema like 'raw\\_%' and data_type in ('text', 'json', 'jsonb')"
        ).fetchall()
        for schema, name, col in text_cols:
            hits = conn.execute(
                f'select count(*) from {schema}.{name} where "{col}"::text ~* %s',
                (r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}",),
            ).fetchone()[0]
            assert hits == 0, f"plaintext email in {schema}.{name}.{col}"
        h = blind_index(KEYS, "email", "person.1@example.org")
        assert (
            conn.execute(
                "select count(*) from raw_shopify.customers where email_hash = %s", (h,)
            ).fetchone()[0]
            == 1
        )
        blob = conn.execute(
            "select ciphertext from pii.vault where pii_type = 'email' and value_hash = %s", (h,)
        ).fetchone()[0]
    assert decrypt(KEYS, "email", h, blob) == "person.1@example.org"


def test_junk_identifiers_are_recorded_as_blocked(warehouse_url):
    land(warehouse_url, customers(2, email="test@example.com", phone="000-000-0000"))
    with db.connect(warehouse_url) as conn:
        blocked = conn.execute("select pii_type from pii.blocked_values order by 1").fetchall()
    assert blocked == [("email",), ("phone",)]


def test_json_columns_are_validated(warehouse_url):
    events = table("klaviyo", "events")
    frame = pd.DataFrame(
        {
            "id": ["e1", "e2"],
            "profile_id": ["p1", "p1"],
            "metric_id": ["m", "m"],
            "metric_name": ["Opened Email", "Opened Email"],
            "datetime": ["2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"],
            "campaign_id": ["c", "c"],
            "flow_id": [None, None],
            "value": [None, None],
            "properties": ['{"subject": "Hi"}', '{"subject": '],
        }
    )
    result = land(warehouse_url, frame, events)
    assert (result.loaded, result.rejected) == (1, 1)
    assert scalar(warehouse_url, "select properties->>'subject' from raw_klaviyo.events") == "Hi"
