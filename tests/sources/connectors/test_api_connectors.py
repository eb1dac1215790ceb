"""Shopify and Klaviyo connectors against fake servers that speak the real protocols and serve
the demo data set: what they land must equal what the generator lands directly."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from fakes.klaviyo import FakeKlaviyo
from fakes.shopify import FakeShopify

from orchestration.errors import CdpError
from orchestration.runtime import db
from orchestration.sources.connectors import klaviyo, klaviyo_list, shopify, state
from orchestration.sources.connectors.config import load_connector_settings
from orchestration.sources.connectors.http import AuthError
from orchestration.sources.connectors.live import run_live_source
from orchestration.sources.schemas import BY_NAME

TOKEN = "shpat_FAKE_9f8e7d6c5b4a_do_not_log"
API_KEY = "pk_FAKE_0123456789abcdef_do_not_log"
SHOPIFY_TABLES = ("customers", "orders", "order_lines", "refunds")
KLAVIYO_TABLES = ("profiles", "events")


def raw_rows(url: str, qualified: str) -> Counter:
    t = BY_NAME[qualified]
    cols = [
        f'"{c}"::jsonb::text' if dict(t.columns).get(c) == "json" else f'"{c}"'
        for c, _ in t.landed_columns
        if not c.startswith("_")
    ]
    with db.connect(url) as conn:
        return Counter(conn.execute(f"select {', '.join(cols)} from {qualified}").fetchall())


def frame_ids(frame, cols=("id",)) -> Counter:
    return Counter(tuple(r) for r in frame[list(cols)].astype(str).itertuples(index=False))


def landed_ids(url: str, qualified: str, cols=("id",)) -> Counter:
    with db.connect(url) as conn:
        sel = ", ".join(f"{c}::text" for c in cols)
        return Counter(conn.execute(f"select {sel} from {qualified}").fetchall())


def run_shopify(url, fake, vault, *, token=TOKEN, max_attempts=6, **kwargs):
    keys, blocklist = vault
    client = shopify.make_client(
        fake.url, token, "2025-07", backoff_base=0.01, max_attempts=max_attempts
    )
    with client:
        streams = shopify.sync_shopify(url, client, keys=keys, blocklist=blocklist, **kwargs)
    return {s.stream: s for s in streams}, client.stats


def run_klaviyo(url, fake, vault, *, key=API_KEY, **kwargs):
    keys, blocklist = vault
    client = klaviyo.make_client(fake.url, key, "2025-07-15", backoff_base=0.01)
    with client:
        streams = klaviyo.sync_klaviyo(url, client, keys=keys, blocklist=blocklist, **kwargs)
    return {s.stream: s for s in streams}, client.stats


def assert_same_rows(url_a, url_b, source, entities):
    for entity in entities:
        name = f"raw_{source}.{entity}"
        a, b = raw_rows(url_a, name), raw_rows(url_b, name)
        assert sum(b.values()) > 0, name
        assert a == b, f"{name}: {len(a - b)} rows only live, {len(b - a)} only generator"


def test_full_then_incremental_equals_generator(
    live_db, generator_db, demo_data, next_day_data, vault
):
    # 5xx and a 429 along the way: retried, nothing lost
    shop = FakeShopify(demo_data.tables, token=TOKEN, restore_rate=100_000, faults={3: 502, 9: 503})
    klav = FakeKlaviyo(
        demo_data.tables, api_key=API_KEY, faults={4: 500}, throttle_at={6}, retry_after="0"
    )
    with shop as fs, klav as fk:
        s_streams, s_stats = run_shopify(live_db, fs, vault)
        k_streams, k_stats = run_klaviyo(live_db, fk, vault)
        assert s_stats.server_errors == 2 and k_stats.server_errors == 1 and k_stats.throttled == 1
        assert_same_rows(live_db, generator_db, "shopify", SHOPIFY_TABLES)
        assert_same_rows(live_db, generator_db, "klaviyo", KLAVIYO_TABLES)
        assert s_streams["orders"].fetched == len(demo_data.tables["raw_shopify.orders"])
        assert s_streams["orders"].pages == -(-s_streams["orders"].fetched // 50)

        # second run: the next day's changes only
        fs.load(next_day_data.tables)
        fk.load(next_day_data.tables)
        before = len(fs.queries)
        s2, _ = run_shopify(live_db, fs, vault)
        k2, _ = run_klaviyo(live_db, fk, vault)
        # the incremental queries carried the stored cursor
        assert all(v["query"].startswith("updated_at:>='") for _, v in fs.queries[before:])
        nd = next_day_data.tables
        for stream, name in (
            ("customers", "raw_shopify.customers"),
            ("orders", "raw_shopify.orders"),
        ):
            assert s2[stream].fetched == len(nd[name]) > 0, stream
        for stream, name in (
            ("profiles", "raw_klaviyo.profiles"),
            ("events", "raw_klaviyo.events"),
        ):
            assert k2[stream].fetched == len(nd[name]) > 0, stream
        # all rows = the full load + the next day's, each exactly once
        for source, entities in (("shopify", SHOPIFY_TABLES), ("klaviyo", KLAVIYO_TABLES)):
            for e in entities:
                name = f"raw_{source}.{e}"
                t = BY_NAME[name]
                cols = (t.record_id[0], t.updated_at) if t.updated_at else t.record_id
                want = frame_ids(demo_data.tables[name], cols) + frame_ids(nd[name], cols)
                got = Counter(
                    tuple(str(pd_norm(v)) for v in r)
                    for r in db.connect(live_db).execute(f"select {', '.join(cols)} from {name}")
                )
                assert got == want, name
        # a third run with nothing new fetches nothing
        s3, _ = run_shopify(live_db, fs, vault)
        assert s3["orders"].fetched == 0 and s3["customers"].fetched == 0


def pd_norm(v):
    import pandas as pd

    return pd.Timestamp(v).tz_convert("UTC") if hasattr(v, "tzinfo") else v


def test_killed_midway_restart_loses_and_duplicates_nothing(
    live_db, generator_db, demo_data, vault
):
    orders = demo_data.tables["raw_shopify.orders"]
    # the store goes down after 20 requests: customers are in, orders half-way
    with FakeShopify(demo_data.tables, token=TOKEN, restore_rate=100_000, fail_from=20) as fs:
        with pytest.raises(CdpError, match="HTTP 500"):
            run_shopify(live_db, fs, vault, max_attempts=2, batch_records=300)
        with db.connect(live_db) as conn:
            cursor = state.get_cursor(conn, "shopify", "orders")
            landed = conn.execute("select count(*) from raw_shopify.orders").fetchone()[0]
        assert cursor is not None and 0 < landed < len(orders)
    with FakeShopify(demo_data.tables, token=TOKEN, restore_rate=100_000) as fs:
        streams, _ = run_shopify(live_db, fs, vault, batch_records=300)
        # restarted from the committed cursor, not from the beginning
        assert streams["orders"].fetched < len(orders)
        assert streams["orders"].cursor_before == cursor
    assert_same_rows(live_db, generator_db, "shopify", SHOPIFY_TABLES)
    assert landed_ids(live_db, "raw_shopify.orders") == Counter((str(i),) for i in orders["id"])


def test_throttling_and_429_are_survived_and_reported(live_db, demo_data, vault):
    customers = demo_data.tables["raw_shopify.customers"]
    with FakeShopify(
        demo_data.tables, token=TOKEN, maximum=1000, restore_rate=2000, throttle_at={2}
    ) as fs:
        streams, stats = run_shopify(live_db, fs, vault, streams=("customers",), customers_page=100)
    assert fs.throttled >= 1 and stats.throttled >= 1 and stats.wait_seconds > 0
    assert streams["customers"].fetched == len(customers)
    with FakeKlaviyo(demo_data.tables, api_key=API_KEY, throttle_at={2, 3}, retry_after="1") as fk:
        streams, stats = run_klaviyo(live_db, fk, vault, streams=("profiles",))
    assert fk.statuses.count(429) == 2 and stats.throttled == 2
    assert stats.wait_seconds >= 2.0  # Retry-After honoured
    assert streams["profiles"].fetched == len(demo_data.tables["raw_klaviyo.profiles"])


def test_401_fails_fast_with_a_clear_message_and_tokens_never_logged(
    live_db, demo_data, vault, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("cdp.test.connectors")
    env = {
        "CDP_SOURCES": "live",
        "SHOPIFY_ACCESS_TOKEN": "shpat_WRONG_do_not_log",
        "KLAVIYO_API_KEY": "pk_WRONG_do_not_log",
    }
    keys, blocklist = vault
    with (
        FakeShopify(demo_data.tables, token=TOKEN) as fs,
        FakeKlaviyo(demo_data.tables, api_key=API_KEY) as fk,
    ):
        cfg = load_connector_settings(
            {**env, "SHOPIFY_STORE_DOMAIN": fs.url, "KLAVIYO_BASE_URL": fk.url}
        )
        with pytest.raises(AuthError, match="(?i)check SHOPIFY_ACCESS_TOKEN") as exc:
            run_live_source("shopify", live_db, keys, blocklist, log.info, cfg=cfg)
        assert len(fs.requests) == 1 and "401" in str(exc.value)  # no retry loop
        with pytest.raises(AuthError, match="KLAVIYO_API_KEY"):
            run_live_source("klaviyo", live_db, keys, blocklist, log.info, cfg=cfg)
        assert len(fk.requests) == 1
        # the right credentials: a full run, logging everything
        good = load_connector_settings(
            {
                "SHOPIFY_ACCESS_TOKEN": TOKEN,
                "KLAVIYO_API_KEY": API_KEY,
                "SHOPIFY_STORE_DOMAIN": fs.url,
                "KLAVIYO_BASE_URL": fk.url,
            }
        )
        log.info("settings: %r", good)
        run = run_live_source("klaviyo", live_db, keys, blocklist, log.info, cfg=good)
        assert run.metadata()["profiles.records_fetched"] > 0
    text = caplog.text + "".join(capsys.readouterr()) + repr(good) + str(exc.value)
    assert "HTTP Request" in caplog.text or "klaviyo/" in caplog.text  # logs were captured
    for secret in (TOKEN, API_KEY, "shpat_WRONG_do_not_log", "pk_WRONG_do_not_log"):
        assert secret not in text


def test_klaviyo_list_destination_batches_and_retries(demo_data):
    profiles = demo_data.tables["raw_klaviyo.profiles"]["id"].tolist()
    entered = (profiles * 4)[:1500] + [f"01EXTRA{i:019d}" for i in range(1000)]
    with FakeKlaviyo(api_key=API_KEY, throttle_at={2}, retry_after="0", faults={3: 503}) as fk:
        client = klaviyo.make_client(fk.url, API_KEY, "2025-07-15", backoff_base=0.01)
        with client:
            result = klaviyo_list.sync_list(client, "LiSt01", entered=entered, exited=profiles[:10])
        unique = set(entered)
        assert result.added == len(unique) and result.removed == 10
        assert fk.lists["LiSt01"] == unique - set(profiles[:10])
        assert all(size <= 1000 for _, _, size in fk.list_requests)
        assert result.stats.throttled == 1 and result.stats.server_errors == 1
    with FakeKlaviyo(api_key=API_KEY) as fk:
        client = klaviyo.make_client(fk.url, "pk_bad", "2025-07-15")
        with client, pytest.raises(AuthError):
            klaviyo_list.sync_list(client, "LiSt01", entered=["a"])
        assert len(fk.requests) == 1


def test_shopify_fake_rejects_unknown_fields_like_shopify():
    """The fake validates queries against the schema, so a client typo cannot pass silently."""
    with FakeShopify(token=TOKEN) as fs:
        client = shopify.make_client(fs.url, TOKEN, "2025-07")
        with client, pytest.raises(CdpError, match="Cannot query field"):
            shopify.ShopifyGraphQL(client).execute("{ customers(first: 1) { nodes { idd } } }", {})
