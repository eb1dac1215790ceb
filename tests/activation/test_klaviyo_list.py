"""``destination: klaviyo_list`` end to end against a real PostgreSQL and the fake Klaviyo API
(tests/sources/connectors/fakes): the segment file parses, members' profiles come from the
identity graph, batches go through the ledger with retries, later exports send only changes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestration.activation import klaviyo_list
from orchestration.errors import CdpError
from orchestration.runtime import db
from orchestration.segments.spec import SegmentError, load_file
from orchestration.sources.connectors.config import connector_settings

sys.path.insert(0, str(Path(__file__).parents[1] / "sources" / "connectors"))
from fakes.klaviyo import FakeKlaviyo  # noqa: E402

KEY = "pk_test_activation_0123456789"
LIST = "LiSt01"


def profile(i: int, n: int = 0) -> str:
    return f"01PROFILE{i:05d}{n:012d}"


@pytest.fixture
def klaviyo_db(act_db):
    """Customers 30-60 have a Klaviyo profile in marts.customer_identities (55 has two)."""
    with db.connect(act_db, autocommit=True) as conn:
        conn.execute(
            "create table marts.customer_identities (node_key text primary key, "
            "customer_id text, source text, identity_type text, source_id text)"
        )
        rows = [(f"cus_{i:05d}", "klaviyo", "profile_id", profile(i)) for i in range(30, 61)]
        rows += [("cus_00055", "klaviyo", "profile_id", profile(55, 1))]
        rows += [(f"cus_{i:05d}", "shopify", "customer_id", str(i)) for i in range(1, 61)]
        with conn.cursor() as cur:
            cur.executemany(
                "insert into marts.customer_identities values "
                "(%s || ':' || %s || ':' || %s, %s, %s, %s, %s)",
                [(s, t, v, c, s, t, v) for c, s, t, v in rows],
            )
    return act_db


@pytest.fixture
def fake_klaviyo(monkeypatch):
    def make(**kwargs) -> FakeKlaviyo:
        fake = FakeKlaviyo(api_key=KEY, **kwargs).start()
        started.append(fake)
        monkeypatch.setenv("KLAVIYO_BASE_URL", fake.url)
        connector_settings.cache_clear()
        return fake

    started: list[FakeKlaviyo] = []
    yield make
    for fake in started:
        fake.stop()
    connector_settings.cache_clear()


def run(url, kit, segments_dir, tmp_path, run_id, key=KEY):
    return kit.export(url, segments_dir, tmp_path, run_id, env={"KLAVIYO_TEST_KEY": key})


def write(kit, segments_dir):
    return kit.write_segment_file(
        segments_dir,
        kit.SLUG,
        [{"destination": "klaviyo_list", "list_id": LIST, "api_key_env": "KLAVIYO_TEST_KEY"}],
    )


def test_list_follows_the_segment_through_retries_and_changes(
    klaviyo_db, kit, segments_dir, tmp_path, fake_klaviyo, monkeypatch
):
    monkeypatch.setattr(klaviyo_list, "BATCH", 7)
    fake = fake_klaviyo(throttle_at={1}, retry_after="0", faults={2: 503})
    write(kit, segments_dir)
    first = run(klaviyo_db, kit, segments_dir, tmp_path, "run-kl000001")
    report = first.deliveries[0]
    # members are customers 41-60: 21 profiles (55 has two), in batches of at most 7
    expected = {profile(i) for i in range(41, 61)} | {profile(55, 1)}
    assert fake.lists[LIST] == expected
    assert (report.batches, report.delivered, report.failed) == (3, 3, 0)
    assert report.retries == 2 and report.records_delivered == 21
    assert all(size <= 7 for _, _, size in fake.list_requests)
    with db.connect(klaviyo_db) as conn:
        actions = [r[0] for r in conn.execute("select action from audit.events").fetchall()]
        assert "pii.decrypted" not in actions  # profile ids only: nothing decrypted
        assert "segment.delivered" in actions

    with db.connect(klaviyo_db, autocommit=True) as conn:
        conn.execute(
            "update marts.customer_profiles set lifetime_value = 0 "
            "where customer_id in ('cus_00055', 'cus_00060')"
        )
        conn.execute(
            "update marts.customer_profiles set lifetime_value = 999 "
            "where customer_id in ('cus_00035', 'cus_00003')"  # 3 has no Klaviyo profile
        )
        kit.refresh(conn)
    fake.list_requests.clear()
    second = run(klaviyo_db, kit, segments_dir, tmp_path, "run-kl000002")
    assert (second.entered, second.exited) == (2, 2)
    assert fake.lists[LIST] == (expected - {profile(55), profile(55, 1), profile(60)}) | {
        profile(35)
    }
    assert sorted((m, n) for m, _, n in fake.list_requests) == [("DELETE", 3), ("POST", 1)]


def test_a_bad_key_fails_once_and_is_resent_by_the_next_export(
    klaviyo_db, kit, segments_dir, tmp_path, fake_klaviyo
):
    fake = fake_klaviyo()
    write(kit, segments_dir)
    first = run(klaviyo_db, kit, segments_dir, tmp_path, "run-kl000003", key="pk_wrong")
    report = first.deliveries[0]
    assert (report.delivered, report.failed) == (0, 1) and len(fake.requests) == 1  # no retry
    assert "401" in report.errors[0] and "pk_wrong" not in report.errors[0]
    assert "check the API key and its lists:write scope" in report.errors[0]
    assert LIST not in fake.lists
    again = run(klaviyo_db, kit, segments_dir, tmp_path, "run-kl000004")
    assert again.deliveries[0].backlog_resent == 1 and again.deliveries[0].failed == 0
    assert len(fake.lists[LIST]) == 21


def test_klaviyo_list_exports_are_checked_before_anything_runs(
    klaviyo_db, kit, segments_dir, tmp_path
):
    path = kit.write_segment_file(
        segments_dir,
        kit.SLUG,
        [{"destination": "klaviyo_list", "list_id": "bad id!", "api_key_env": "lower"}],
    )
    with pytest.raises(SegmentError, match=r"list_id.*Xy12Ab[\s\S]*api_key_env"):
        load_file(path)
    write(kit, segments_dir)
    with pytest.raises(CdpError, match="KLAVIYO_TEST_KEY, which is not set"):
        kit.export(klaviyo_db, segments_dir, tmp_path, "run-kl000005", env={})
