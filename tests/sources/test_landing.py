"""Raw landing against a real PostgreSQL: COPY, idempotent batches, rejects, the PII vault."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
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


def rejections(url, batch_id) -> tuple[dict[int, str], tuple]:
    """A batch's rejection reasons by row number, and its (received, loaded, rejected)."""
    with db.connect(url) as conn:
        reasons = dict(
            conn.execute(
                "select row_number, reason from ops.rejected_records where batch_id = %s",
                (batch_id,),
            ).fetchall()
        )
        counts = conn.execute(
            "select rows_received, rows_loaded, rows_rejected from ops.load_batches "
            "where batch_id = %s",
            (batch_id,),
        ).fetchone()
    return reasons, counts


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
    rejects, batch = rejections(warehouse_url, result.batch_id)
    payload = scalar(
        warehouse_url,
        "select payload::text from ops.rejected_records where batch_id = %s and row_number = 2",
        (result.batch_id,),
    )
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


# ------------------------------------------------------------------ Arrow input, binary COPY
GA4 = table("ga4", "events")


def ga4_rows(n: int = 3, **overrides) -> dict[str, list]:
    cols = {
        "event_date": ["20250101"] * n,
        "event_timestamp": [1_735_689_600_000_000 + i for i in range(n)],
        "event_name": ["page_view"] * n,
        "event_params": ['[{"key":"k","value":{"int_value":1}}]'] * n,
        "user_pseudo_id": [f"{i}.1" for i in range(n)],
        "user_id": [None] * n,
        "stream_id": ["s"] * n,
        "platform": ["WEB"] * n,
        "device_category": ["mobile"] * n,
        "geo_country": ["United States"] * n,
        "traffic_source_source": ["google"] * n,
        "traffic_source_medium": ["organic"] * n,
        "traffic_source_name": ["(organic)"] * n,
        "ecommerce_transaction_id": [None] * n,
        "ecommerce_purchase_revenue": [None] * n,
    }
    cols.update(overrides)
    return cols


def test_arrow_and_pandas_frames_land_the_same_rows_under_the_same_batch_id(warehouse_url):
    cols = ga4_rows(3, ecommerce_purchase_revenue=[19.99, None, 1.005], user_id=["42", None, ""])
    arrow = pa.table(cols)
    # the same records with INT64 as strings, as a BigQuery JSON export has them, in pandas
    frame = pd.DataFrame({**cols, "event_timestamp": [str(v) for v in cols["event_timestamp"]]})
    first, second = land(warehouse_url, arrow, GA4), land(warehouse_url, frame, GA4)
    assert (first.loaded, first.rejected, second.skipped) == (3, 0, True)
    assert second.batch_id == first.batch_id
    with db.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select user_id, ecommerce_purchase_revenue::text, event_params->0->>'key' "
            "from raw_ga4.events order by event_timestamp"
        ).fetchall()
    # NULL stays NULL and "" stays ""; 1.005 rounds half up like PostgreSQL's text input
    assert rows == [("42", "19.99", "k"), (None, None, "k"), ("", "1.01", "k")]


def test_arrow_rows_that_cannot_land_are_rejected_with_reasons(warehouse_url):
    cols = ga4_rows(
        6,
        event_timestamp=["1735689600000000", "soon", None, "1735689600000003", "4", "5"],
        event_params=["[]", "[]", "[]", '{"broken": ', "[]", "[]"],
        ecommerce_purchase_revenue=[1.0, 2.0, 3.0, 4.0, 1e10, float("inf")],
        user_pseudo_id=["a", "b", "c", "d", "e", "f\x00g"],
    )
    result = land(warehouse_url, pa.table(cols), GA4)
    assert (result.received, result.loaded, result.rejected) == (6, 1, 5)
    rejects, batch = rejections(warehouse_url, result.batch_id)
    payload = scalar(
        warehouse_url,
        "select payload from ops.rejected_records where batch_id = %s and row_number = 2",
        (result.batch_id,),
    )
    assert "column event_timestamp: 'soon' is not a valid bigint" in rejects[2]
    assert rejects[3] == "column event_timestamp: required value is missing"
    assert rejects[4] == "column event_params: '{\"broken\": ' is not valid JSON"
    assert "column ecommerce_purchase_revenue: '10000000000.0' is not a valid numeric" in rejects[5]
    assert "'inf' is not a valid numeric(12,2)" in rejects[6]
    assert "column user_pseudo_id" in rejects[6] and "NUL" in rejects[6]
    assert payload["event_timestamp"] == "soon"  # the value as received
    assert batch == (6, 1, 5)


def test_text_json_and_typed_values_from_pandas_objects(warehouse_url):
    events = table("klaviyo", "events")
    frame = pd.DataFrame(
        {
            "id": ["e1", "e2", "e3", "e4"],
            "profile_id": ["p", "p", "p", "p"],
            "metric_id": [7, "m", "m", "m"],  # a number in a text column is its text
            "metric_name": ["Opened Email"] * 4,
            "datetime": [
                "2025-01-01T00:00:00+02:00",
                pd.Timestamp("2025-01-01 00:00:00"),  # naive: UTC
                "2025-01-01 00:00:00.1234567Z",
                "2025-01-01",
            ],
            "campaign_id": ["c", None, "ü", "c"],
            "flow_id": [None, None, None, None],
            "value": ["12.5", None, 3, "7"],
            "properties": [{"subject": "Hi"}, ["x"], '{"n": 1}', "\x00"],
        }
    )
    result = land(warehouse_url, frame, events)
    assert (result.loaded, result.rejected) == (3, 1)
    with db.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select id, metric_id, datetime, campaign_id, value::text, properties::text "
            "from raw_klaviyo.events order by id"
        ).fetchall()
        reason = conn.execute("select reason from ops.rejected_records").fetchone()[0]
    utc = pd.Timestamp("2025-01-01", tz="UTC")
    assert rows[0] == ("e1", "7", utc - pd.Timedelta(hours=2), "c", "12.50", '{"subject":"Hi"}')
    assert rows[1] == ("e2", "m", utc, None, None, '["x"]')
    assert rows[2] == ("e3", "m", utc + pd.Timedelta(microseconds=123457), "ü", "3.00", '{"n": 1}')
    assert reason == "column properties: '\\x00' is not valid JSON"


def test_integer_columns_reject_out_of_range_and_fractional_values(warehouse_url):
    lines = table("shopify", "order_lines")
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "order_id": [10, 10, 10, 10],
            "product_id": [None, None, None, None],
            "variant_id": [None, None, None, None],
            "sku": ["a", "b", "c", "d"],
            "title": ["t"] * 4,
            "quantity": [1.0, 2.5, 2**31, -(2**31)],  # integer: 2**31 does not fit
            "price": [1.0, 1.0, 1.0, 1.0],
            "total_discount": [0.0] * 4,
            "updated_at": pd.to_datetime(["2025-01-01"] * 4, utc=True),
        }
    )
    result = land(warehouse_url, frame, lines)
    assert (result.loaded, result.rejected) == (2, 2)
    assert scalar(warehouse_url, "select sum(quantity) from raw_shopify.order_lines") == 1 - 2**31
